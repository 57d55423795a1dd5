import ArgumentParser
import Foundation
import SSM
import SSMStreaming
import SSMIO
import SSMService
import SSMTrain

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a model on a labelled data set: accuracy and confusion (classifiers), SNR and SI-SDR improvement (filters).",
        discussion: """
        DATA is as for `train` (a folder of class subfolders or a CSV manifest). Each recording runs \
        whole through the model, from rest, as a stream would. A classifier trained with the pooled \
        readout predicts the class of the mean logits. One trained per step (its metadata says so) is \
        scored on what `ssm-stream run` would report: the recording, followed by the seconds of \
        silence during which training holds a word's class (its `tail`), goes through the same \
        scores and event detector with the model's own event settings (--grouping overrides its \
        grouping, as for `run`); the prediction is the class of the event that peaks highest, or \
        the background class if no event fires. Classes the data lacks are fine (a test set of \
        words without silence clips).

        With --json, one object: accuracy (0–1), per_class, confusion (rows: true class), labels, \
        clips — or snr_improvement_db, si_sdr_improvement_db and clips.

        Examples:
          ssm-stream eval models/digits.safetensors digits-test/
          ssm-stream eval denoiser.safetensors pairs.csv --json
        """)

    @Argument(help: "Model file.")
    var model: String
    @Argument(help: "Data: a folder of class subfolders or a CSV manifest.")
    var data: String
    @Flag(help: "Unreadable recordings are fatal (default: skipped and counted).")
    var strict = false
    @Option(help: ArgumentHelp("A per-step classifier's event grouping, as for `run` (default: the one `run` would use).", valueName: "exclusive|per-class"))
    var grouping: EventDetector.Grouping?
    @Flag(help: "One JSON object on stdout.")
    var json = false

    func run() throws {
        let fail = { (status: Int32, message: String) -> ExitCode in warn("ssm-stream eval: " + message); return ExitCode(status) }
        let st: SafeTensors, m: Model
        do {
            st = try SafeTensors(contentsOfFile: model)
            let parsed = try ModelFile.parse(st)
            m = try Model(spec: parsed.spec, tensors: parsed.tensors)
        } catch let e as SafeTensorsError { throw fail(ExitStatus.badModel, "model '\(model)': \(e.message)") }
        catch let e as ModelError { throw fail(ExitStatus.badModel, "model '\(model)': \(e.message)") }
        let spec = m.spec
        let options = st.metadata["ssm_train_options"].flatMap { try? JSONDecoder().decode(TrainOptions.self, from: Data($0.utf8)) }
        if grouping != nil && !(spec.task == .classify && options?.readout == .perStep) {
            throw fail(ExitStatus.usage, "--grouping is for classifiers trained per step (their events); '\(model)' "
                       + (spec.task == .classify ? "predicts from its mean logits" : "is a filter"))
        }
        guard spec.dInput == 1 else { throw fail(ExitStatus.badModel, "model '\(model)': eval reads mono recordings (d_input 1, got \(spec.dInput))") }
        let set: TrainData
        do { set = try TrainData.load(data, task: spec.task, rate: spec.sampleRate, labels: spec.labels, strict: strict, strictRate: false, everyClass: false) }
        catch { throw fail(error.status, error.message) }
        if !set.skipped.isEmpty { warn("ssm-stream eval: skipped \(set.skipped.count) unreadable recording(s), e.g. \(set.skipped[0])") }
        setBLASThreads(1)
        let clips = set.set.clips
        if spec.task == .classify {
            let labels = spec.labels ?? set.set.labels, C = labels.count
            // Per step: the stream's own event detector, on the recording and then `tail` of silence.
            let stream: (EventDetector.Options, tail: Int)?
            if let o = options, o.readout == .perStep {
                do { stream = (try EventSettings(grouping: grouping).resolve(model: spec, labels: labels, rate: spec.sampleRate), Int((o.tail * Double(spec.sampleRate)).rounded())) }
                catch { throw fail(ExitStatus.badModel, "model '\(model)': \(error.message)") }
            } else { stream = nil }
            let background = options?.background.flatMap { labels.firstIndex(of: $0) }
            var confusion = [[Int]](repeating: [Int](repeating: 0, count: C), count: C)
            var results = [Int](repeating: 0, count: clips.count)
            results.withUnsafeMutableBufferPointer { res in
                let res = res
                concurrentPerform(systemCoreCount()) { t in
                    let state = m.makeState(maxBlock: 4096)
                    var i = t
                    while i < clips.count { res[i] = Self.classify(m, state, clips[i].samples, stream: stream, background: background); i += systemCoreCount() }
                }
            }
            for (i, c) in clips.enumerated() { confusion[c.label][results[i]] += 1 }
            let correct = (0..<C).reduce(0) { $0 + confusion[$1][$1] }
            let accuracy = Double(correct) / Double(max(1, clips.count))
            let perClass = (0..<C).map { c -> Double? in
                let n = confusion[c].reduce(0, +); return n > 0 ? Double(confusion[c][c]) / Double(n) : nil
            }
            if json {
                var pc: [String] = []
                for (i, l) in labels.enumerated() { if let a = perClass[i] { pc.append("\(jsonString(l)):\(a)") } }
                let conf = confusion.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",")
                print("{\"accuracy\":\(accuracy),\"clips\":\(clips.count),\"correct\":\(correct),\"labels\":[\(labels.map(jsonString).joined(separator: ","))],"
                      + "\"per_class\":{\(pc.joined(separator: ","))},\"confusion\":[\(conf)],\"skipped\":\(set.skipped.count)}")
            } else {
                print("accuracy \(fixed(100 * accuracy, 2)) % (\(correct) of \(clips.count))")
                let w = max(6, labels.map(\.count).max() ?? 6)
                func pad(_ s: String) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
                print(pad("true\\pred") + " " + labels.map { pad(String($0.prefix(w))) }.joined(separator: " ") + "   accuracy")
                for c in 0..<C {
                    print(pad(labels[c]) + " " + confusion[c].map { pad(String($0)) }.joined(separator: " ")
                          + "   " + (perClass[c].map { fixed(100 * $0, 1) + " %" } ?? "-"))
                }
            }
        } else {
            let state = m.makeState(maxBlock: 4096)
            var snr = 0.0, si = 0.0, n = 0
            for c in clips {
                guard let clean = c.target else { continue }
                let y = Self.filter(m, state, c.samples)
                let t = clean.map { Scalar($0) }, x = c.samples.map { Scalar($0) }
                si += Loss.siSDR(y, t) - Loss.siSDR(x, t)
                snr += Self.snr(y, t) - Self.snr(x, t)
                n += 1
            }
            let dsnr = snr / Double(max(1, n)), dsi = si / Double(max(1, n))
            if json { print("{\"snr_improvement_db\":\(dsnr),\"si_sdr_improvement_db\":\(dsi),\"clips\":\(n)}") }
            else { print("SNR improvement \(fixed(dsnr, 2)) dB, SI-SDR improvement \(fixed(dsi, 2)) dB (\(n) pairs)") }
        }
    }

    /// One recording from rest through the model: the predicted class. `stream`: score it as a
    /// stream would (the detector's options and the samples of silence to append): the class of
    /// the event that peaks highest, else `background`; otherwise (or without a background class
    /// when no event fires) the class of the mean logits.
    static func classify(_ m: Model, _ state: ModelState, _ x: [Float], stream: (EventDetector.Options, tail: Int)?, background: Int?) -> Int {
        let C = m.spec.dOutput
        let input = (x.isEmpty ? [0] : x).map { Scalar($0) } + [Scalar](repeating: 0, count: stream?.tail ?? 0)
        let L = input.count
        var y = [Scalar](repeating: 0, count: L * C)
        state.reset()
        y.withUnsafeMutableBufferPointer { yp in input.withUnsafeBufferPointer { m.forward($0.baseAddress!, yp.baseAddress!, length: L, state: state) } }
        var mean = [Double](repeating: 0, count: C)
        for k in 0..<L { for c in 0..<C { mean[c] += Double(y[k * C + c]) } }
        let byMean = mean.indices.max { mean[$0] < mean[$1] }!
        guard let (options, _) = stream else { return byMean }
        let ring = EventRing<DetectedEvent>(capacity: 64)
        let classifier = Classifier(output: .ring(ring), options: options, classes: C, groups: 1, scores: m.spec.scoring)
        y.withUnsafeBufferPointer { try? classifier.push($0.baseAddress!, frames: L, at: 0) }
        try? classifier.finish(at: L)
        var best: DetectedEvent? = nil
        while let e = ring.pop() { if best.map({ e.peak > $0.peak }) ?? true { best = e } }
        return best?.classIndex ?? background ?? byMean
    }
    static func filter(_ m: Model, _ state: ModelState, _ x: [Float]) -> [Scalar] {
        var y = [Scalar](repeating: 0, count: max(1, x.count))
        state.reset()
        let input = x.map { Scalar($0) }
        if !x.isEmpty {
            y.withUnsafeMutableBufferPointer { yp in input.withUnsafeBufferPointer { m.forward($0.baseAddress!, yp.baseAddress!, length: x.count, state: state) } }
        }
        return y
    }

    static func snr(_ y: [Scalar], _ t: [Scalar]) -> Double {
        var s = 1e-12, e = 1e-12
        for i in 0..<min(y.count, t.count) { s += Double(t[i]) * Double(t[i]); let d = Double(y[i]) - Double(t[i]); e += d * d }
        return 10 * log10(s / e)
    }
}

/// A JSON string literal (the I/O layer's escaping).
func jsonString(_ s: String) -> String { String(decoding: LineWriter.jsonString(s), as: UTF8.self) }
