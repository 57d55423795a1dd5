import ArgumentParser
import Foundation
import SSM
import SSMIO

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: layers, parameters, state, cost per sample, stability.",
        discussion: """
        Prints the task, rate and channels; per block the family and its sizes, discretization, \
        scaffold (norm, activation, output, residual), parameter count and FLOPs per sample; the \
        recurrent-state bytes one stream needs; and for the time-invariant diagonal layers (S4D, S5, \
        LRU) the eigenvalue magnitudes of the discretized state matrix Ā — min and max |λ| and the \
        slowest time constant τ = −1 / (rate · ln max|λ|), i.e. how long the model remembers. S4's \
        state matrix is diagonal plus rank one and the selective layers' (Mamba, RG-LRU, Hawk) \
        depends on the input, so they have no fixed spectrum to print.

        With --bench, times the whole model on this machine (random input, one core) in step and \
        block mode and prints the real-time factor at the model's rate.

        Examples:
          ssm-stream inspect models/butter8-lowpass-1k.safetensors
          ssm-stream inspect model.safetensors --bench --json | jq .blocks
        """)

    @Argument(help: "Model file.")
    var model: String

    @Flag(help: "Also time the model (about a second).")
    var bench = false

    @Flag(help: "One JSON object on stdout.")
    var json = false

    func run() throws {
        let bytes: [UInt8]
        do { bytes = try SafeTensors.fileBytes(model) } catch {
            warn("ssm-stream inspect: \(error.message.hasPrefix("safetensors: ") ? String(error.message.dropFirst(13)) : error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        let m: Model
        let parsed: (spec: ModelSpec, tensors: [String: Tensor])
        do {
            parsed = try ModelFile.parse(bytes)
            m = try Model(spec: parsed.spec, tensors: parsed.tensors)
        } catch {
            warn("ssm-stream inspect: model '\(model)': \(error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        let report = Report(m, tensors: parsed.tensors, fileBytes: bytes.count)
        let timing = bench ? Timing(m) : nil
        if json { print(report.json(timing)) } else { print(report.text(timing, path: model)) }
    }
}

/// What `inspect` computes, independent of how it is printed.
struct Report {
    struct Layer {
        /// The stage of a chain it belongs to (nil in an ordinary model) and its index there.
        var stage: Int?
        var index: Int
        var spec: BlockSpec
        var parameters: Int
        var flops: Int
        var stateBytes: Int
        /// |λ(Ā)| of the time-invariant diagonal layers; nil where there is no fixed diagonal.
        var magnitudes: [Double]?
    }

    let spec: ModelSpec
    let layers: [Layer]
    let parameters: Int
    let flops: Int
    let stateBytes: Int
    let fileBytes: Int
    /// Tensors (and their values) stored in half precision.
    let halfTensors: Int, halfValues: Int

    init(_ m: Model, tensors: [String: Tensor], fileBytes: Int) {
        spec = m.spec
        func count(_ prefix: String) -> Int {
            tensors.filter { $0.key.hasPrefix(prefix) }.reduce(0) { $0 + $1.value.values.count }
        }
        let stageModels = m.stages.isEmpty ? [m] : m.stages
        layers = stageModels.enumerated().flatMap { s, sm in sm.blocks.enumerated().map { i, b in
            let prefix = m.stages.isEmpty ? "" : "stages.\(s)."
            let mags = b.layer.eigenvalueMagnitudes
            let fixed: Bool
            // The diagonal LTI layers, and H3 around an S4D branch (its shift branch is an FIR: λ = 0).
            switch b.layer {
            case .diagonal: fixed = true
            case .h3: fixed = (b.spec.layer.inner ?? .s4d) == .s4d && !mags.isEmpty
            default: fixed = false
            }
            return Layer(stage: m.stages.isEmpty ? nil : s, index: i, spec: b.spec, parameters: count(prefix + "layers.\(i)."),
                         flops: b.flopsPerSample, stateBytes: b.layer.stateCount * MemoryLayout<Float>.stride, magnitudes: fixed ? mags : nil)
        } }
        parameters = tensors.values.reduce(0) { $0 + $1.values.count }
        halfTensors = tensors.values.filter(\.half).count
        halfValues = tensors.values.filter(\.half).reduce(0) { $0 + $1.values.count }
        flops = m.flopsPerSample
        stateBytes = m.makeState(maxBlock: 1).stateBytes
        self.fileBytes = fileBytes
    }

    /// The rate in Hz block `l` runs at: the sample rate divided by the pools up to it.
    func rate(_ l: Layer) -> Double {
        let blocks = spec.stageList[l.stage ?? 0].blocks
        return Double(spec.sampleRate) / Double(blocks.prefix(l.index + 1).reduce(1) { $0 * ($1.pool ?? 1) })
    }

    /// Slowest time constant in seconds of eigenvalues with magnitude `r` in block `l`:
    /// e^(−t/τ) = r^(rate·t).
    func timeConstant(_ r: Double, _ l: Layer) -> Double {
        r <= 0 ? 0 : -1 / (rate(l) * log(r))
    }

    func describe(_ l: Layer) -> String {
        let s = l.spec.layer
        var parts = ["H=\(s.dModel)"]
        switch s.family {
        case .s4, .s4d: parts.append("N=\(s.dState)")
        case .s5, .lru: parts.append("P=\(s.dState)")
        case .mamba: parts += ["N=\(s.dState)", "E=\((s.expand ?? 2) * s.dModel)", "d_conv=\(s.dConv ?? 4)"]
        case .rglru: parts.append("heads=\(s.heads ?? 1)")
        case .hawk: parts += ["lru_width=\(s.dState)", "conv=\(s.convWidth ?? 4)"]
        case .identity: break
        case .meanNorm: parts.append("window=\(s.window ?? 0)")
        case .h3: parts += ["N=\(s.dState)", "inner=\((s.inner ?? .s4d).rawValue)", "head_dim=\(s.headDim ?? 1)"]
        }
        if let d = s.discretization { parts.append(d.rawValue) }
        return "\(s.family.rawValue)(\(parts.joined(separator: ", ")))"
    }

    func scaffold(_ b: BlockSpec) -> String {
        (b.pool.map { $0 > 1 ? "pooled by \($0), " : "" } ?? "") + (b.compress == .log ? "log-compressed, " : "") + "norm \(b.norm.rawValue)\(b.norm == .none ? "" : b.prenorm ? " (pre)" : " (post)"), activation \(b.activation.rawValue), output \(b.output.rawValue), residual \(b.residual ? "yes" : "no")"
    }

    func text(_ t: Timing?, path: String) -> String {
        let chain = spec.stages != nil
        var out = "\(path): \(spec.task.rawValue) model, \(spec.sampleRate) Hz, \(spec.dInput) → \(spec.dOutput) channel(s)"
            + (chain ? ", a chain of \(spec.stageList.count) models in series\n" : ", d_model \(spec.dModel)\n")
        if let d = spec.description, !chain { out += "  \(d)\n" }
        for (s, st) in spec.stageList.enumerated() {
            let indent = chain ? "    " : "  "
            if chain {
                out += "  stage \(s + 1): \(st.task.rawValue) model, \(st.dInput) → \(st.dOutput) channel(s), d_model \(st.dModel)"
                    + (st.description.map { " — " + $0 } ?? "") + "\n"
            }
            if st.encoder { out += indent + "encoder: linear \(st.dInput) → \(st.dModel)\n" }
            for l in layers where (l.stage ?? 0) == s {
                out += indent + "block \(l.index): \(describe(l)); \(scaffold(l.spec))\n"
                out += indent + "         \(l.parameters) parameters, \(l.flops) FLOP/sample, state \(l.stateBytes) bytes"
                if let m = l.magnitudes, let lo = m.min(), let hi = m.max() {
                    out += ", |λ(Ā)| \(fixed(lo, 4))…\(fixed(hi, 6)), slowest τ \(fixed(timeConstant(hi, l) * 1000, 3)) ms"
                } else if l.spec.layer.family == .s4 || l.spec.layer.family == .h3 {
                    out += ", Ā diagonal plus rank one (stable by construction: Re Λ < 0, bilinear)"
                } else if l.spec.layer.family == .identity {
                    out += ", no recurrence (channel mixing only)"
                } else if l.spec.layer.family == .meanNorm {
                    let w = l.spec.layer.window ?? 0
                    out += ", running mean over \(w) steps (\(fixed(Double(w) / rate(l) * 1000, 1)) ms) subtracted per channel"
                } else {
                    out += ", Ā input-dependent (0 < a_t < 1 by construction)"
                }
                out += "\n"
            }
            if st.decoder { out += indent + "decoder: linear \(st.dModel) → \(st.dOutput)\n" }
        }
        if let labels = spec.labels { out += "  classes: \(labels.joined(separator: ", ")) (scores: \(spec.scoring.rawValue))\n" }
        if halfTensors > 0 {
            out += "  weights: \(halfTensors) weight matri\(halfTensors == 1 ? "x" : "ces") in f16 (\(halfValues) of \(parameters) parameters; "
                + "the step reads S5/LRU B and C and every projection as halves, the rest widened at load)\n"
        }
        out += "  total: \(parameters) parameters (\(fileBytes) bytes on disk), \(flops) FLOP/sample, recurrent state \(stateBytes) bytes per stream"
        if let t {
            // The load (compute seconds per audio second) is what says whether it keeps up live.
            func figures(_ ns: Double) -> String { speedFigures(audio: 1, wall: ns * 1e-9 * Double(spec.sampleRate), cpu: ns * 1e-9 * Double(spec.sampleRate)) }
            out += "\n  measured: step \(fixed(t.stepNs, 1)) ns/sample (\(figures(t.stepNs))), "
                + "block \(fixed(t.blockNs, 1)) ns/sample (\(figures(t.blockNs))) at \(spec.sampleRate) Hz, one core"
        }
        return out
    }

    func json(_ t: Timing?) -> String {
        func num(_ x: Double) -> String { x.isFinite ? fixed(x, 9) : "null" }
        func str(_ s: String) -> String { String(decoding: LineWriter.jsonString(s), as: UTF8.self) }
        let blocks = layers.map { l -> String in
            var o = "{\"stage\":\(l.stage.map { "\($0 + 1)" } ?? "null"),\"index\":\(l.index),\"family\":\(str(l.spec.layer.family.rawValue)),\"d_model\":\(l.spec.layer.dModel),"
                + "\"d_state\":\(l.spec.layer.dState),\"discretization\":\(l.spec.layer.discretization.map { str($0.rawValue) } ?? "null"),"
                + "\"norm\":\(str(l.spec.norm.rawValue)),\"activation\":\(str(l.spec.activation.rawValue)),"
                + "\"output\":\(str(l.spec.output.rawValue)),\"residual\":\(l.spec.residual),"
                + "\"parameters\":\(l.parameters),\"flops_per_sample\":\(l.flops),\"state_bytes\":\(l.stateBytes)"
                + (l.spec.layer.family == .meanNorm ? ",\"window\":\(l.spec.layer.window ?? 0)" : "")
            if let m = l.magnitudes, let lo = m.min(), let hi = m.max() {
                o += ",\"eigenvalue_magnitude_min\":\(num(lo)),\"eigenvalue_magnitude_max\":\(num(hi)),\"slowest_time_constant_ms\":\(num(timeConstant(hi, l) * 1000))"
            } else {
                o += ",\"eigenvalue_magnitude_min\":null,\"eigenvalue_magnitude_max\":null,\"slowest_time_constant_ms\":null"
            }
            return o + "}"
        }
        var o = "{\"task\":\(str(spec.task.rawValue)),\"sample_rate\":\(spec.sampleRate),\"d_input\":\(spec.dInput),"
            + "\"d_model\":\(spec.dModel),\"d_output\":\(spec.dOutput),\"encoder\":\(spec.encoder),\"decoder\":\(spec.decoder),"
            + "\"labels\":\(spec.labels.map { "[" + $0.map(str).joined(separator: ",") + "]" } ?? "null"),"
            + "\"parameters\":\(parameters),\"f16_tensors\":\(halfTensors),\"f16_parameters\":\(halfValues),\"file_bytes\":\(fileBytes),\"flops_per_sample\":\(flops),\"state_bytes\":\(stateBytes),"
            + "\"stages\":\(spec.stages?.count ?? 1),\"blocks\":[\(blocks.joined(separator: ","))]"
        if let t {
            o += ",\"step_ns_per_sample\":\(num(t.stepNs)),\"block_ns_per_sample\":\(num(t.blockNs)),"
                + "\"step_realtime_factor\":\(num(t.stepRTF)),\"block_realtime_factor\":\(num(t.blockRTF))"
        }
        return o + "}"
    }
}

/// The whole model timed on random input: step mode sample by sample, block mode 256 at a time.
struct Timing {
    let stepNs: Double
    let blockNs: Double
    let stepRTF: Double
    let blockRTF: Double

    init(_ m: Model, seconds: Double = 0.4) {
        setBLASThreads(1)
        let L = 256
        let state = m.makeState(maxBlock: L)
        var rng = SeededRandom(seed: 1)
        let x = (0..<(L * m.spec.dInput)).map { _ in Float(rng.normal() * 0.3) }
        var y = [Float](repeating: 0, count: L * m.spec.dOutput)
        let dIn = m.spec.dInput, dOut = m.spec.dOutput
        func time(_ body: () -> Void) -> Double {
            body()
            var runs = 0
            let t0 = monotonicSeconds()
            repeat { body(); runs += 1 } while monotonicSeconds() - t0 < seconds
            return (monotonicSeconds() - t0) * 1e9 / Double(runs * L)
        }
        stepNs = x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            time { for k in 0..<L { m.step(xp.baseAddress! + k * dIn, yp.baseAddress! + k * dOut, state: state) } }
        } }
        blockNs = x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            time { m.forward(xp.baseAddress!, yp.baseAddress!, length: L, state: state) }
        } }
        let rate = Double(m.spec.sampleRate)
        stepRTF = 1e9 / (stepNs * rate)
        blockRTF = 1e9 / (blockNs * rate)
    }
}
