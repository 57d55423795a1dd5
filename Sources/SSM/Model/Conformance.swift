import FoundationEssentials

/// Runs a golden case file (see ../shared/golden/README.md: upstream parameters, input, outputs and
/// final states, with `__metadata__["golden"]` naming family, kind and tolerance) through this
/// engine in every mode the family has, and compares.
///
/// Pass criterion per element (the golden README's): |y − y_ref| ≤ atol·max(1, max|y_ref|) + rtol·|y_ref|.
/// Reported errors: max |y − y_ref| and the normwise relative error max|y − y_ref| / max|y_ref|.
public enum Conformance {
    public struct Check: Sendable {
        public let mode: String        // "step", "block", "parallel", "conv"; "+state" for final states
        public let reference: String   // tensor compared against
        public let maxAbs: Double
        public let maxRel: Double
        public let pass: Bool
    }

    public struct Result: Sendable {
        public let family: String
        public let caseName: String
        public let atol: Double, rtol: Double
        public let checks: [Check]
        /// Set when the case could not be run (unknown family, unreadable file …): a failure.
        public let problem: String?
        public var pass: Bool { problem == nil && !checks.isEmpty && checks.allSatisfy(\.pass) }
        public var maxAbs: Double { checks.map(\.maxAbs).max() ?? .nan }
        public var maxRel: Double { checks.map(\.maxRel).max() ?? .nan }
    }

    struct Meta: Decodable {
        struct Tol: Decodable { let atol: Double; let rtol: Double }
        let family: String
        let `case`: String
        let kind: String
        let discretization: String?
        let conj_sym: Bool?
        let tolerance: Tol
    }

    public static func run(path: String) -> Result {
        let name = String(path.split(separator: "/").last ?? Substring(path))
        do {
            let st = try SafeTensors(contentsOfFile: path)
            return run(st, fallbackName: name)
        } catch {
            return Result(family: "?", caseName: name, atol: .nan, rtol: .nan, checks: [], problem: error.message)
        }
    }

    public static func run(_ st: SafeTensors, fallbackName: String) -> Result {
        guard let json = st.metadata["golden"],
              let meta = try? JSONDecoder().decode(Meta.self, from: Data(json.utf8)) else {
            return Result(family: "?", caseName: fallbackName, atol: .nan, rtol: .nan, checks: [],
                          problem: "no readable __metadata__[\"golden\"] (family, case, kind, tolerance)")
        }
        do {
            let checks = try runChecks(st, meta)
            return Result(family: meta.family, caseName: meta.case, atol: meta.tolerance.atol, rtol: meta.tolerance.rtol,
                          checks: checks, problem: nil)
        } catch {
            return Result(family: meta.family, caseName: meta.case, atol: meta.tolerance.atol, rtol: meta.tolerance.rtol,
                          checks: [], problem: error.message)
        }
    }

    /// The single-layer or block model a case describes, with its tensors renamed into model names.
    static func model(_ st: SafeTensors, _ meta: Meta) throws(ModelError) -> (Model, channelsFirst: Bool) {
        var params: [String: Tensor] = [:]
        for (n, info) in st.tensors where n.hasPrefix("param.") {
            do { params["layers.0." + n.dropFirst(6)] = Tensor(shape: info.shape, values: try st.floats(n)) }
            catch { throw ModelError(error.message) }
        }
        func shape(_ n: String) throws(ModelError) -> [Int] {
            guard let s = params["layers.0." + n]?.shape else { throw ModelError("golden case lacks 'param.\(n)'") }
            return s
        }
        let disc: Discretization? = meta.discretization.flatMap { d in
            d.hasPrefix("none") ? Discretization.none : Discretization(rawValue: d)
        }
        var layer: LayerSpec
        var block: BlockSpec
        switch (meta.family, meta.kind) {
        case ("s4d", "fftconv_diag"):
            let s = try shape("kernel.A_real")
            layer = LayerSpec(family: .s4d, dModel: s[0], dState: 2 * s[1], discretization: disc)
            block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .none, output: .none)
        case ("s4d", "s4d_minimal"):
            let s = try shape("kernel.log_A_real")
            layer = LayerSpec(family: .s4d, dModel: s[0], dState: 2 * s[1], discretization: .zoh)
            layer.parametrization = "minimal"
            block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .gelu, output: .glu)
        case ("s5", _):
            let s = try shape("B")
            layer = LayerSpec(family: .s5, dModel: s[1], dState: s[0], discretization: disc)
            layer.conjSym = meta.conj_sym ?? true
            block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .none, output: .none)
        case ("lru", _):
            let s = try shape("B_re")
            layer = LayerSpec(family: .lru, dModel: s[1], dState: s[0])
            block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .none, output: .none)
        default:
            throw ModelError("family '\(meta.family)' (kind '\(meta.kind)') is not implemented in this build")
        }
        block.layerPrefix = ""
        params = params.filter { !$0.key.hasSuffix("kernel.l_kernel") }
        let H = layer.dModel
        let spec = ModelSpec(sampleRate: 1, dInput: H, dModel: H, dOutput: H, encoder: false, decoder: false, blocks: [block])
        return (try Model(spec: spec, tensors: params), meta.family == "s4d")
    }

    static func runChecks(_ st: SafeTensors, _ meta: Meta) throws(ModelError) -> [Check] {
        let (m, channelsFirst) = try model(st, meta)
        func read(_ n: String) throws(ModelError) -> Tensor? {
            guard let info = st.tensors[n] else { return nil }
            do { return Tensor(shape: info.shape, values: try st.floats(n)) } catch { throw ModelError(error.message) }
        }
        guard let input = try read("input"), let output = try read("output"), input.shape.count == 3 else {
            throw ModelError("golden case lacks 'input'/'output' of rank 3")
        }
        let B = input.shape[0]
        let (L, H) = channelsFirst ? (input.shape[2], input.shape[1]) : (input.shape[1], input.shape[2])
        guard H == m.spec.dModel, output.values.count == input.values.count else {
            throw ModelError("input shape \(input.shape) does not fit a layer of width \(m.spec.dModel)")
        }
        // (B, ·, ·) in the case's layout ↔ per-batch (L, H) rows.
        func rows(_ t: [Float], _ b: Int) -> [Float] {
            channelsFirst ? (0..<(L * H)).map { i in t[b * L * H + (i % H) * L + i / H] } : Array(t[(b * L * H)..<((b + 1) * L * H)])
        }
        let modes: [(String, ForwardMode?)] = [("step", nil), ("block", .scan), ("parallel", .parallelScan), ("conv", .convolution)]
        var outputs: [String: [[Float]]] = [:]   // mode → per batch (L, H)
        var states: [String: [[Float]]] = [:]
        for (name, mode) in modes {
            let state = m.makeState(maxBlock: max(L, 1))
            var perBatch: [[Float]] = [], perState: [[Float]] = []
            for b in 0..<B {
                state.reset()
                let u = rows(input.values, b)
                var y = [Float](repeating: 0, count: L * H)
                u.withUnsafeBufferPointer { up in
                    y.withUnsafeMutableBufferPointer { yp in
                        if let mode { m.forward(up.baseAddress!, yp.baseAddress!, length: L, state: state, mode: mode) }
                        else { for k in 0..<L { m.step(up.baseAddress! + k * H, yp.baseAddress! + k * H, state: state) } }
                    }
                }
                perBatch.append(y); perState.append(state.snapshot)
            }
            outputs[name] = perBatch; states[name] = perState
        }
        var checks: [Check] = []
        func compare(_ mode: String, _ refName: String, _ got: [Float], _ ref: [Float]) {
            let scale = max(1, ref.map { abs(Double($0)) }.max() ?? 0)
            let refMax = max(ref.map { abs(Double($0)) }.max() ?? 0, Double.leastNormalMagnitude)
            var maxAbs = 0.0, pass = got.count == ref.count
            for (g, r) in zip(got, ref) {
                let d = abs(Double(g) - Double(r))
                maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
                if !(d <= meta.tolerance.atol * scale + meta.tolerance.rtol * abs(Double(r))) { pass = false }
            }
            checks.append(Check(mode: mode, reference: refName, maxAbs: maxAbs, maxRel: maxAbs / refMax, pass: pass))
        }
        let refs = ["output"] + (st.tensors["output_step"] != nil ? ["output_step"] : [])
        for (name, _) in modes {
            let got = (0..<B).flatMap { outputs[name]![$0] }
            for r in refs {
                let t = try read(r)!
                compare(name, r, got, (0..<B).flatMap { rows(t.values, $0) })
            }
        }
        // Final states (B, lanes, 2) or (B, H, N/2, 2) complex (re, im) ↔ engine's split [Re; Im].
        for refName in ["state_final", "state_final_step"] {
            guard let t = try read(refName), t.shape.last == 2, t.values.count == B * m.stateCount else { continue }
            let P = m.stateCount / 2
            var ref: [Float] = []
            for b in 0..<B {
                for part in 0..<2 { for p in 0..<P { ref.append(t.values[(b * P + p) * 2 + part]) } }
            }
            for mode in ["step", "block", "parallel"] { compare(mode + "+state", refName, states[mode]!.flatMap { $0 }, ref) }
        }
        return checks
    }
}
