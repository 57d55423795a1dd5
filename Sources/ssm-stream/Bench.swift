import ArgumentParser
import Foundation
import SSM
import SSMStreaming
import SSMTrain
#if canImport(Glibc)
import Glibc
#endif

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a randomly initialized layer in step and block-scan mode (like `openssl speed`).",
        discussion: """
        Prints ns per sample, GFLOP/s (multiply-adds count 2) and the real-time factor at 16 kHz, \
        for single-sample steps and for block scans of --block samples, on one core (the best of \
        --repeats runs of about --seconds each).

        With --train ARCH.json it times training instead: a batch of --batch random sequences of         --length samples through `ssm-stream train`'s trainer on --threads threads (default all         cores), forward only and a full step (forward, backward, AdamW), in samples·steps per         second, with the tape's memory and the process's peak RSS.

        With --streams MODEL it times MODEL over G independent streams (as `run --per-channel` and \
        the daemon's per_channel run them) for each G of --counts, in step and block mode: CPU time \
        per stream-sample, and the cost of G streams as a multiple of one stream's.

        Examples:
          ssm-stream bench --family s5 --H 64 --P 64
          ssm-stream bench --streams model.safetensors --counts 1,2,4,8,16
          ssm-stream bench --train examples/train/s5-anchor.json --batch 16 \\
              --length 8000 --json
          ssm-stream bench --family lru --H 256 --P 256 --block 256 --json
          ssm-stream bench --family h3 --H 64 --P 64
        """)

    @Option(help: "Layer family: \(Family.allCases.filter(\.isSequenceModel).map(\.rawValue).joined(separator: ", ")).")
    var family: Family = .s5

    @Option(name: .customLong("H"), help: "Channels (d_model).")
    var h: Int = 64

    @Option(name: .customLong("P"), help: "State size (S4D: N per channel).")
    var p: Int = 64

    @Option(help: "Samples per block scan.")
    var block: Int = 256

    @Option(help: "Seconds per timing run.")
    var seconds: Double = 0.3

    @Option(help: "Timing runs (the best is reported).")
    var repeats: Int = 5

    @Flag(help: "One JSON object on stdout.")
    var json = false

    @Option(help: "Time training of this architecture instead of one layer.")
    var train: String?

    @Option(help: "--train: sequences per batch.")
    var batch: Int = 16

    @Option(help: "--train: samples per sequence.")
    var length: Int = 8000

    @Option(help: "--train: threads (default: all cores).")
    var threads: Int?

    @Option(help: "Time this model over many independent streams instead of one layer.")
    var streams: String?

    @Option(help: "--streams: stream counts, comma-separated.")
    var counts: String = "1,2,4,8,16"

    func validate() throws {
        if streams != nil {
            guard let c = streamCounts, !c.isEmpty, c.allSatisfy({ $0 >= 1 && $0 <= 1024 }) else {
                throw ValidationError("--counts takes stream counts in 1…1024, comma-separated (e.g. 1,2,4,8,16)")
            }
            guard seconds > 0, repeats >= 1, block >= 1 else { throw ValidationError("--seconds, --repeats and --block must be positive") }
            return
        }
        if train != nil {
            guard batch >= 1, length >= 1, (threads ?? 1) >= 1, repeats >= 1 else {
                throw ValidationError("--batch, --length, --threads and --repeats must be positive")
            }
            return
        }
        if !family.isSequenceModel { throw ValidationError("\(family.rawValue) is not a sequence layer to time (bench a model with it: inspect --bench)") }
        guard h >= 1, h <= 8192, p >= 1, p <= 8192 else { throw ValidationError("--H and --P must be in 1…8192") }
        if [.s4, .s4d, .h3].contains(family) && p % 2 != 0 { throw ValidationError("\(family.rawValue) needs an even --P (N)") }
        guard block >= 1, block <= 65536 else { throw ValidationError("--block must be in 1…65536") }
        guard seconds > 0, repeats >= 1 else { throw ValidationError("--seconds and --repeats must be positive") }
    }

    func run() throws {
        setBLASThreads(1)
        if let train { return try trainBench(train) }
        if let streams { return try streamsBench(streams) }
        let b: LayerBench
        do { b = try LayerBench(family: family, H: h, P: p, block: block) } catch {
            warn("ssm-stream bench: \(error.message)"); throw ExitCode(ExitStatus.usage)
        }
        let stepNs = best { b.runSteps() }
        let blockNs = best { b.runBlock() }
        let flops = Double(b.flopsPerSample)
        let rate = 16000.0
        if json {
            print("""
            {"family":"\(family.rawValue)","H":\(h),"P":\(p),"block":\(block),"flops_per_sample":\(b.flopsPerSample),\
            "step_ns_per_sample":\(fixed(stepNs, 2)),"block_ns_per_sample":\(fixed(blockNs, 2)),\
            "step_gflops":\(fixed(flops / stepNs, 3)),"block_gflops":\(fixed(flops / blockNs, 3)),\
            "step_realtime_factor_16k":\(fixed(1e9 / (stepNs * rate), 1)),"block_realtime_factor_16k":\(fixed(1e9 / (blockNs * rate), 1))}
            """)
        } else {
            print("\(family.rawValue)  H=\(h) P=\(p)  \(b.flopsPerSample) FLOP/sample  state \(b.layer.stateCount * 4) bytes")
            print(pad("mode", 14) + pad("ns/sample", 12) + pad("GFLOP/s", 10) + "× real time @16 kHz")
            for (name, ns) in [("step", stepNs), ("block \(block)", blockNs)] {
                print(pad(name, 14) + pad(fixed(ns, 1), 12) + pad(fixed(flops / ns, 2), 10) + fixed(1e9 / (ns * rate), 0))
            }
        }
    }

    /// Training throughput on random data: forward (the loss, no gradients) and a full step.
    func trainBench(_ path: String) throws {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            warn("ssm-stream bench: architecture '\(path)': cannot read the file"); throw ExitCode(ExitStatus.noInput)
        }
        let trainer: Trainer
        let spec: ModelSpec
        do {
            spec = try ModelFile.decodeSpec(String(decoding: bytes, as: UTF8.self))
            let objective: Objective = spec.task == .classify ? .classify(.pooled) : .filter(.mse)
            trainer = try Trainer(spec: spec, tensors: try Model.initialize(spec, seed: 0), objective: objective, length: length,
                                  threads: threads ?? systemCoreCount(),
                                  schedule: Schedule(learningRate: 1e-4, ssmLearningRate: 1e-4, warmupSteps: 0, totalSteps: 1_000_000, finalFraction: 1),
                                  weightDecay: 0, clipNorm: 1)
        } catch let e as ModelError { warn("ssm-stream bench: architecture '\(path)': \(e.message)"); throw ExitCode(ExitStatus.badModel) }
        catch let e as TrainError { warn("ssm-stream bench: architecture '\(path)': \(e.message)"); throw ExitCode(ExitStatus.badModel) }
        var rng = SeededRandom(seed: 1)
        let batchData = (0..<batch).map { _ in
            TrainingSequence(x: (0..<(length * spec.dInput)).map { _ in Scalar(rng.normal()) }, label: Int(rng.next() % UInt64(spec.dOutput)),
                             target: (0..<(length * spec.dOutput)).map { _ in Scalar(rng.normal()) })
        }
        func time(_ body: () throws -> Void) rethrows -> Double {
            try body()  // warm-up
            var bestT = Double.infinity
            for _ in 0..<repeats { let t = monotonicSeconds(); try body(); bestT = min(bestT, monotonicSeconds() - t) }
            return bestT
        }
        let forward = time { _ = trainer.evaluate(batchData) }
        let step: Double
        do { step = try time { _ = try trainer.step(batchData) } } catch {
            warn("ssm-stream bench: \(error)"); throw ExitCode(ExitStatus.failure)
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rssMiB = Double(usage.ru_maxrss) / 1024
        let st = Double(batch * length)
        let f = st / forward, t = st / step
        if json {
            print("{\"architecture\":\(jsonString(path)),\"parameters\":\(trainer.parameters.count),\"batch\":\(batch),\"length\":\(length),"
                  + "\"threads\":\(trainer.threads),\"forward_samples_steps_per_s\":\(fixed(f, 0)),\"train_samples_steps_per_s\":\(fixed(t, 0)),"
                  + "\"train_to_forward_cost\":\(fixed(step / forward, 3)),\"tape_mib\":\(fixed(Double(trainer.tapeBytes) / 1_048_576, 1)),"
                  + "\"peak_rss_mib\":\(fixed(rssMiB, 1))}")
        } else {
            print("\(path): \(trainer.parameters.count) parameters, batch \(batch) × \(length) samples, \(trainer.threads) threads")
            print("forward        \(humanRate(f)) samples·steps/s   (\(fixed(forward * 1000, 1)) ms per batch)")
            print("train step     \(humanRate(t)) samples·steps/s   (\(fixed(step * 1000, 1)) ms per batch: forward + backward + AdamW, \(fixed(step / forward, 2))× forward)")
            print("memory         tape \(fixed(Double(trainer.tapeBytes) / 1_048_576, 1)) MiB, peak RSS \(fixed(rssMiB, 1)) MiB")
        }
    }

    var streamCounts: [Int]? {
        let parts = counts.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(nil) ? nil : parts.map { $0! }
    }

    /// One model over G streams, through the engine `run` and the daemon use: thread CPU time per
    /// stream-sample in step and block mode, and G streams' cost over one stream's.
    func streamsBench(_ path: String) throws {
        let m: Model
        do { m = try ModelFile.load(path: path) } catch { warn("ssm-stream bench: \(error.message)"); throw ExitCode(ExitStatus.badModel) }
        let frames = block
        var rng = SeededRandom(seed: 3)
        var rows: [(g: Int, step: Double, block: Double)] = []
        for g in streamCounts! {
            let x = (0..<(frames * g * m.spec.dInput)).map { _ in Float(rng.normal() * 0.3) }
            var y = [Float](repeating: 0, count: frames * g * m.spec.dOutput)
            func cpu(_ mode: StreamEngine.Mode) -> Double {
                let engine = StreamEngine(model: m, groups: g, mode: mode, maxFrames: frames)
                let run = { x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    _ = engine.process(xp.baseAddress!, yp.baseAddress!, frames: frames) } } }
                run()
                let t0 = threadCPUSeconds(); run()
                let iterations = max(1, Int(seconds / max(threadCPUSeconds() - t0, 1e-7)))
                var bestNs = Double.infinity
                for _ in 0..<repeats {
                    let s = threadCPUSeconds()
                    for _ in 0..<iterations { run() }
                    bestNs = min(bestNs, (threadCPUSeconds() - s) * 1e9 / Double(iterations * frames * g))
                }
                return bestNs
            }
            rows.append((g, cpu(.step), cpu(.block)))
        }
        let one = rows.first { $0.g == 1 }
        func ratio(_ v: Double, _ g: Int, _ base: Double?) -> String { base.map { fixed(v * Double(g) / $0, 2) } ?? "null" }
        if json {
            for r in rows {
                print("{\"model\":\(jsonString(path)),\"streams\":\(r.g),\"step_ns_per_stream_sample\":\(fixed(r.step, 2)),"
                      + "\"block_ns_per_stream_sample\":\(fixed(r.block, 2)),\"step_cost_vs_one_stream\":\(ratio(r.step, r.g, one?.step)),"
                      + "\"block_cost_vs_one_stream\":\(ratio(r.block, r.g, one?.block)),\"block\":\(frames)}")
            }
        } else {
            print("\(path): \(m.spec.dInput) → \(m.spec.dOutput) channel(s) per stream, thread CPU time, one core")
            print(pad("streams", 9) + pad("step ns/stream-sample", 23) + pad("step cost ÷ 1 stream", 22)
                  + pad("block ns/stream-sample", 24) + "block cost ÷ 1 stream")
            for r in rows {
                print(pad("\(r.g)", 9) + pad(fixed(r.step, 1), 23) + pad(ratio(r.step, r.g, one?.step) + "×", 22)
                      + pad(fixed(r.block, 1), 24) + ratio(r.block, r.g, one?.block) + "×")
            }
        }
    }

    /// Best ns per sample over `repeats` runs of ~`seconds` each; each run calls body (one block of
    /// samples) as often as fits.
    func best(_ body: () -> Void) -> Double {
        body()  // warm caches
        let t0 = monotonicSeconds()
        body()
        let once = max(monotonicSeconds() - t0, 1e-7)
        let iterations = max(1, Int(seconds / once))
        var bestNs = Double.infinity
        for _ in 0..<repeats {
            let s = monotonicSeconds()
            for _ in 0..<iterations { body() }
            bestNs = min(bestNs, (monotonicSeconds() - s) * 1e9 / Double(iterations * block))
        }
        return bestNs
    }
}

extension Family: ExpressibleByArgument {}
