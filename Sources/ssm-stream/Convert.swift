import ArgumentParser
import Foundation
import SSM
import SSMStreaming

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a model's weight matrices in half precision (f16) or back in float32.",
        discussion: """
        --weights f16 stores every weight matrix (projections, encoder, decoder, GLU and MLP \
        weights, B and C; see the README's "Half-precision weights") as F16: the file shrinks by \
        about half, and in step mode S5, LRU and every block's projections read the half weights, \
        converted in registers (F16C) while the state and the arithmetic stay float32 — half the \
        bytes per sample. Eigenvalues, step sizes, D, biases and norms stay float32. Other \
        families' matrices are stored in f16 and widened when the model loads. --weights f32 \
        writes every tensor as float32 again (the values stay the rounded ones).

        The output is loaded before it is written (the same checks as any model file). A value \
        beyond ±65504 cannot be a half: that tensor stays float32, with a note.

        With f16 the summary says how far the halves move the model's output on a probe signal \
        (--probe AUDIO, else 1 s of a seeded chirp in noise): max |y16 − y32| ÷ max |y32| over \
        block-mode outputs (a classifier's scores), relative to the input model. --max-error E \
        keeps that within E: the matrices \
        that move the output most on their own go back to float32, one at a time, until it is \
        within E (named in the summary). Give a probe like the model's real input: a chirp does \
        not move a speech classifier as speech does.

        Examples:
          ssm-stream convert model.safetensors --weights f16 -o model-f16.safetensors
          ssm-stream convert model.safetensors --weights f16 --max-error 1e-3 \\
                     --probe speech.wav -o model-f16.safetensors
          ssm-stream inspect model-f16.safetensors
          ssm-stream convert model-f16.safetensors --weights f32 -o m32.safetensors
        """)

    enum Precision: String, ExpressibleByArgument, CaseIterable { case f16, f32 }

    @Argument(help: "Model file.")
    var model: String

    @Option(help: "Precision of the weight matrices: f16 or f32.")
    var weights: Precision

    @Option(name: .shortAndLong, help: "Model file to write (.safetensors).")
    var output: String

    @Option(name: .customLong("max-error"),
            help: "With f16: the largest output deviation allowed on the probe, relative to its peak (e.g. 1e-3).")
    var maxError: Double?

    @Option(help: "With f16: audio to measure the deviation on (mixed to mono, resampled to the model's rate).")
    var probe: String?

    @Flag(name: .shortAndLong, help: "No summary on stderr.")
    var quiet = false

    func validate() throws {
        if let e = maxError, !(e > 0 && e.isFinite) { throw ValidationError("--max-error must be a positive number, not \(e)") }
        if weights == .f32 && (maxError != nil || probe != nil) {
            throw ValidationError("--max-error and --probe apply to --weights f16")
        }
    }

    func run() throws {
        if let probe, !FileManager.default.fileExists(atPath: probe) {
            warn("ssm-stream convert: probe '\(probe)': no such file")
            throw ExitCode(ExitStatus.noInput)
        }
        let read = try Chain.read(model, command: "convert")
        let spec = read.spec
        var (tensors, changed, kept) = ModelFile.withWeights(read.tensors, half: weights == .f16)
        var deviation: (before: Double, after: Double, restored: [String])? = nil
        if weights == .f16 && changed > 0 && (!quiet || maxError != nil) {
            let signal = try probeSignal(spec)
            let search = try HalfDeviation(spec: spec, float: read.tensors, signal: signal)
            let d = try search.fit(&tensors, maxError: maxError)
            changed -= d.restored.count
            deviation = d
        }
        do { _ = try Model(spec: spec, tensors: tensors) } catch {
            warn("ssm-stream convert: the converted model cannot be loaded: \(error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        let bytes = ModelFile.serialize(spec: spec, tensors: tensors, metadata: read.metadata)
        do { try SafeTensors.write(bytes, toFile: output) } catch {
            warn("ssm-stream convert: \(error.message)")
            throw ExitCode(ExitStatus.cantCreate)
        }
        if !quiet {
            for k in kept { warn("ssm-stream convert: '\(k)' has values beyond ±65504: kept in float32") }
            let half = tensors.values.filter(\.half)
            warn("ssm-stream convert: \(changed) tensor\(changed == 1 ? "" : "s") to \(weights.rawValue); "
                 + "\(half.count) of \(tensors.count) tensors (\(half.reduce(0) { $0 + $1.values.count }) of "
                 + "\(tensors.values.reduce(0) { $0 + $1.values.count }) values) in f16, \(bytes.count) bytes → \(output)")
            if maxError != nil && deviation == nil {
                warn("ssm-stream convert: no matrix was halved, so the output does not move (--max-error holds)")
            }
            if let d = deviation {
                let on = probe.map { "'\($0)'" } ?? "the probe (1 s of a chirp in noise)"
                if d.restored.isEmpty {
                    warn("ssm-stream convert: on \(on) the output moves by \(sci(d.after)) of its peak")
                } else {
                    warn("ssm-stream convert: on \(on) the output moved by \(sci(d.before)) of its peak, above --max-error; "
                         + "kept in float32: \(d.restored.map { "'\($0)'" }.joined(separator: ", ")); now \(sci(d.after))")
                }
            }
        }
    }

    /// The probe: --probe as mono at the model's rate, else 1 s of a seeded chirp (20 Hz to 0.45 of
    /// the rate, amplitude 0.3) in white noise (0.05 rms); the same signal on every input channel.
    private func probeSignal(_ spec: ModelSpec) throws -> [Scalar] {
        let rate = spec.sampleRate
        if let probe {
            do {
                let x = try TrainData.readMono(probe, rate: rate, strictRate: false)
                guard !x.isEmpty else {
                    warn("ssm-stream convert: probe '\(probe)' holds no samples")
                    throw ExitCode(ExitStatus.dataError)
                }
                return x
            } catch let f as TrainData.Failure {
                warn("ssm-stream convert: probe: \(f.message)")
                throw ExitCode(f.status)
            }
        }
        var rng = SeededRandom(seed: 7)
        let n = rate, f0 = 20.0, f1 = 0.45 * Double(rate), T = 1.0
        return (0..<n).map { i in
            let t = Double(i) / Double(rate)
            let phase = 2 * Double.pi * (f0 * t + (f1 - f0) * t * t / (2 * T))
            return Scalar(0.3 * sin(phase) + 0.05 * rng.normal())
        }
    }
}

/// How far half-precision weights move a model's output on a signal, and which matrices to keep in
/// float32 to stay within a bound (`convert --max-error`): each halved matrix is measured alone
/// (the rest float32), and the ones that move the output most go back to float32, one at a time,
/// until the whole is within the bound — at most 2k + 2 passes over the probe for k matrices (the
/// reference, the whole, k alone, k − 1 restores: the last would restore the input itself).
struct HalfDeviation {
    let spec: ModelSpec
    let float: [String: Tensor]
    let input: [Scalar]      // (L, d_input)
    let length: Int
    let reference: [Scalar]  // float32 model's outputs (scores for a classifier), (L, d_output)
    let peak: Double

    init(spec: ModelSpec, float: [String: Tensor], signal: [Scalar]) throws {
        self.spec = spec; self.float = float
        length = signal.count
        input = signal.flatMap { [Scalar](repeating: $0, count: spec.dInput) }
        reference = try Self.outputs(spec, float, input, length)
        peak = reference.reduce(0) { max($0, Double(Swift.abs($1))) }
    }

    /// Block-mode outputs from a zero state; a classifier's as scores (softmax, sigmoid or identity).
    static func outputs(_ spec: ModelSpec, _ tensors: [String: Tensor], _ x: [Scalar], _ L: Int) throws -> [Scalar] {
        let model: Model
        do { model = try Model(spec: spec, tensors: tensors) } catch {
            warn("ssm-stream convert: the converted model cannot be loaded: \(error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        let state = model.makeState(maxBlock: 256), D = spec.dOutput
        var y = [Scalar](repeating: 0, count: L * D)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in model.forward(xp.baseAddress!, yp.baseAddress!, length: L, state: state) }
        }
        if spec.task == .classify {
            y.withUnsafeMutableBufferPointer { yp in for k in 0..<L { Scoring.apply(spec.scoring, yp.baseAddress! + k * D, D) } }
        }
        return y
    }

    /// max |y − reference| ÷ max |reference| for the model of `tensors`.
    func deviation(_ tensors: [String: Tensor]) throws -> Double {
        let y = try Self.outputs(spec, tensors, input, length)
        var worst = 0.0
        for (a, b) in zip(y, reference) {
            let d = Double(Swift.abs(a - b))
            if !(d <= worst) { worst = d }   // a NaN counts as the worst
        }
        return peak > 0 ? worst / peak : worst
    }

    /// Measures `tensors` (float32 values already rounded to halves where `half`); with a bound,
    /// returns matrices to float32 until the deviation is within it.
    func fit(_ tensors: inout [String: Tensor], maxError: Double?) throws -> (before: Double, after: Double, restored: [String]) {
        let before = try deviation(tensors)
        guard let bound = maxError, before > bound else { return (before, before, []) }
        // The matrices this conversion halved (an input's own halves have no float32 values to return to).
        let halved = tensors.keys.filter { tensors[$0]!.half && float[$0]?.half == false }.sorted()
        var alone: [(name: String, deviation: Double)] = []
        for name in halved {
            var trial = float
            trial[name] = tensors[name]
            alone.append((name, try deviation(trial)))
        }
        var now = before, restored: [String] = []
        let order = alone.sorted { $0.deviation > $1.deviation || ($0.deviation == $1.deviation && $0.name < $1.name) }
        for (i, (name, _)) in order.enumerated() {
            tensors[name] = float[name]
            restored.append(name)
            // With every matrix back the model is the input itself: nothing left to measure.
            now = i == order.count - 1 ? 0 : try deviation(tensors)
            if now <= bound { break }
        }
        return (before, now, restored)
    }
}
