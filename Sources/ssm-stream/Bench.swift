import ArgumentParser
import SSM
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

        Examples:
          ssm-stream bench --family s5 --H 64 --P 64
          ssm-stream bench --family lru --H 256 --P 256 --block 256 --json
          ssm-stream bench --family h3 --H 64 --P 64
        """)

    @Option(help: "Layer family: \(Family.allCases.filter { $0 != .identity }.map(\.rawValue).joined(separator: ", ")).")
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

    func validate() throws {
        if family == .identity { throw ValidationError("identity is not a sequence layer (it has nothing to time)") }
        guard h >= 1, h <= 8192, p >= 1, p <= 8192 else { throw ValidationError("--H and --P must be in 1…8192") }
        if [.s4, .s4d, .h3].contains(family) && p % 2 != 0 { throw ValidationError("\(family.rawValue) needs an even --P (N)") }
        guard block >= 1, block <= 65536 else { throw ValidationError("--block must be in 1…65536") }
        guard seconds > 0, repeats >= 1 else { throw ValidationError("--seconds and --repeats must be positive") }
    }

    func run() throws {
        setBLASThreads(1)
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
