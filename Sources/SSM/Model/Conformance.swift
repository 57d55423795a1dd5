import FoundationEssentials

#if !SSM_FLOAT64  // conformance is of the product build (float32) against the upstream vectors

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
        let delta_softplus: Bool?
        let tolerance: Tol
    }

    /// One comparison under the golden README's criterion.
    static func check(_ mode: String, _ refName: String, _ got: [Scalar], _ ref: [Scalar], _ tol: Meta.Tol) -> Check {
        let scale = max(1, ref.map { abs(Double($0)) }.max() ?? 0)
        let refMax = max(ref.map { abs(Double($0)) }.max() ?? 0, Double.leastNormalMagnitude)
        var maxAbs = 0.0, pass = got.count == ref.count
        for (g, r) in zip(got, ref) {
            let d = abs(Double(g) - Double(r))
            maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
            if !(d <= tol.atol * scale + tol.rtol * abs(Double(r))) { pass = false }
        }
        return Check(mode: mode, reference: refName, maxAbs: maxAbs, maxRel: maxAbs / refMax, pass: pass)
    }

    /// The bare S6 kernel: inputs u, δ, z (B, D, L), B, C (B, N, L); param.A (D, N), param.D (D),
    /// param.delta_bias (D) when present; delta_softplus from the metadata.
    static func selectiveScanChecks(_ st: SafeTensors, _ meta: Meta) throws(ModelError) -> [Check] {
        func read(_ n: String) throws(ModelError) -> Tensor? {
            guard let info = st.tensors[n] else { return nil }
            do { return Tensor(shape: info.shape, floats: try st.floats(n)) } catch { throw ModelError(error.message) }
        }
        func need(_ n: String) throws(ModelError) -> Tensor {
            guard let t = try read(n) else { throw ModelError("golden case lacks '\(n)'") }
            return t
        }
        let A = try need("param.A"), Dskip = try need("param.D"), u = try need("input")
        let delta = try need("input.delta"), Bt = try need("input.B"), Ct = try need("input.C"), z = try read("input.z")
        guard A.shape.count == 2, u.shape.count == 3, Bt.shape.count == 3 else { throw ModelError("selective_scan: unexpected ranks") }
        let D = A.shape[0], N = A.shape[1], B = u.shape[0], L = u.shape[2]
        let arena = Arena()   // keeps the scan's weights alive for the whole check
        let ss = SelectiveScan(A: A.values, D: Dskip.values, deltaBias: try read("param.delta_bias")?.values,
                               softplus: meta.delta_softplus ?? false, arena: arena)
        // (B, C, L) channels-first → per batch (L, C) rows.
        func rows(_ t: [Scalar], _ b: Int, _ C: Int) -> [Scalar] {
            (0..<(L * C)).map { i in t[b * C * L + (i % C) * L + i / C] }
        }
        var outs: [String: [Scalar]] = [:], finals: [String: [Scalar]] = [:]
        for mode in ["step", "block", "parallel"] {
            var yAll = [Scalar](), sAll = [Scalar]()
            for b in 0..<B {
                // Owned copies of this batch row, laid out (L, ·); the scan reads them through pointers.
                let arena = Arena()
                let U = arena.copy(rows(u.values, b, D)), Dl = arena.copy(rows(delta.values, b, D))
                let Bs = arena.copy(rows(Bt.values, b, N)), Cs = arena.copy(rows(Ct.values, b, N))
                let Z = z.map { arena.copy(rows($0.values, b, D)) }
                let Y = arena.floats(L * D), S = arena.floats(D * N)
                let scratch = arena.floats(max(ss.scratchCount, ss.blockScratchCount(L)))
                if mode == "step" {
                    for k in 0..<L {
                        ss.step(u: U + k * D, delta: Dl + k * D, B: Bs + k * N, C: Cs + k * N, z: Z.map { UnsafePointer($0 + k * D) },
                                y: Y + k * D, state: S, scratch: scratch)
                    }
                } else {
                    ss.forward(U: U, Delta: Dl, Bs: Bs, Cs: Cs, Z: Z.map { UnsafePointer($0) }, Y: Y, length: L, state: S,
                               scratch: scratch, parallel: mode == "parallel")
                }
                // Back to (D, L) channels-first.
                yAll += (0..<(D * L)).map { i in Y[(i % L) * D + i / L] }
                sAll += Array(UnsafeBufferPointer(start: S, count: D * N))
            }
            outs[mode] = yAll; finals[mode] = sAll
        }
        var checks: [Check] = []
        for mode in ["step", "block", "parallel"] {
            for r in ["output", "output_step"] {
                if let t = try read(r) { checks.append(check(mode, r, outs[mode]!, t.values, meta.tolerance)) }
            }
            for r in ["state_final", "state_final_step"] {
                if let t = try read(r) { checks.append(check(mode + "+state", r, finals[mode]!, t.values, meta.tolerance)) }
            }
        }
        return checks
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

    /// Maps the engine's state snapshot of one stream to a golden state tensor's layout (per batch row).
    typealias StateMap = (name: String, map: ([Scalar]) -> [Scalar])

    /// Split [Re(0..<P); Im(0..<P)] → interleaved (P, 2), the golden complex layout.
    static func interleaved(_ s: [Scalar]) -> [Scalar] {
        let P = s.count / 2
        var out = [Scalar](repeating: 0, count: 2 * P)
        for p in 0..<P { out[2 * p] = s[p]; out[2 * p + 1] = s[P + p] }
        return out
    }

    /// S4's half state split [Re; Im] (H·N/2 lanes) → the dense (H, N, 2) state conj(x) = (x, x̄) per channel.
    static func denseS4(_ n: Int) -> ([Scalar]) -> [Scalar] {
        { s in
            let P = s.count / 2
            var out: [Scalar] = []
            for h in 0..<(P / n) {
                for j in 0..<n { out += [s[h * n + j], s[P + h * n + j]] }
                for j in 0..<n { out += [s[h * n + j], -s[P + h * n + j]] }
            }
            return out
        }
    }

    /// The single-layer or block model a case describes, with its tensors renamed into model names,
    /// and how its state compares with the case's state tensors.
    static func model(_ st: SafeTensors, _ meta: Meta) throws(ModelError) -> (Model, channelsFirst: Bool, states: [StateMap]) {
        var params: [String: Tensor] = [:]
        for (n, info) in st.tensors where n.hasPrefix("param.") {
            do { params["layers.0." + n.dropFirst(6)] = Tensor(shape: info.shape, floats: try st.floats(n)) }
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
        var prefix = ""
        var states: [StateMap] = []
        let bare = { (l: LayerSpec) in BlockSpec(layer: l, norm: .none, residual: false, activation: .none, output: .none) }
        switch (meta.family, meta.kind) {
        case ("s4d", "fftconv_diag"):
            let s = try shape("kernel.A_real")
            layer = LayerSpec(family: .s4d, dModel: s[0], dState: 2 * s[1], discretization: disc)
            block = bare(layer)
            states = [("state_final", interleaved)]
        case ("s4d", "s4d_minimal"):
            let s = try shape("kernel.log_A_real")
            layer = LayerSpec(family: .s4d, dModel: s[0], dState: 2 * s[1], discretization: .zoh)
            layer.parametrization = "minimal"
            block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .gelu, output: .glu)
        case ("s4", "fftconv_dplr"):
            let s = try shape("kernel.A_real")
            layer = LayerSpec(family: .s4, dModel: s[0], dState: 2 * s[1], discretization: .bilinear)
            block = bare(layer)
            states = [("state_final_linear", interleaved), ("state_final", denseS4(s[1]))]
        case ("s4", "s4block"):
            let s = try shape("layer.kernel.A_real")
            layer = LayerSpec(family: .s4, dModel: s[0], dState: 2 * s[1], discretization: .bilinear)
            block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .gelu, output: .glu)
            prefix = "layer."
            states = [("state_final", denseS4(s[1]))]
        case ("s5", _):
            let s = try shape("B")
            layer = LayerSpec(family: .s5, dModel: s[1], dState: s[0], discretization: disc)
            layer.conjSym = meta.conj_sym ?? true
            block = bare(layer)
            states = [("state_final", interleaved)]
        case ("lru", _):
            let s = try shape("B_re")
            layer = LayerSpec(family: .lru, dModel: s[1], dState: s[0])
            block = bare(layer)
            states = [("state_final", interleaved)]
        case ("s6", "mamba_block"):
            let inP = try shape("in_proj.weight"), aLog = try shape("A_log"), conv = try shape("conv1d.weight")
            let dt = try shape("dt_proj.weight")
            let H = inP[1], E = inP[0] / 2, N = aLog[1], T = conv[2]
            layer = LayerSpec(family: .mamba, dModel: H, dState: N)
            layer.expand = E / max(H, 1); layer.dConv = T; layer.dtRank = dt[1]
            block = bare(layer)
            let convMap: ([Scalar]) -> [Scalar] = { s in (0..<(E * T)).map { s[($0 % T) * E + $0 / T] } }  // (T, E) → (E, T)
            let ssmMap: ([Scalar]) -> [Scalar] = { s in Array(s[(T * E)..<(T * E + E * N)]) }
            states = [("conv_state_final", convMap), ("conv_state_final_step", convMap),
                      ("ssm_state_final", ssmMap), ("ssm_state_final_step", ssmMap)]
        case ("rglru", "rglru"):
            let g = try shape("a_gate.w")
            let W = try shape("a_param")[0]
            layer = LayerSpec(family: .rglru, dModel: W, dState: W)
            layer.heads = g[0]
            block = bare(layer)
            let lanes: ([Scalar]) -> [Scalar] = { s in Array(s[0..<W]) }
            states = [("state_final", lanes), ("state_final_step", lanes)]
        case ("rglru", "recurrent_block"):
            let lx = try shape("linear_x.weight"), g = try shape("rg_lru.a_gate.w"), c = try shape("conv_1d.w")
            let W = lx[0], H = lx[1], T = c[0]
            layer = LayerSpec(family: .hawk, dModel: H, dState: W)
            layer.heads = g[0]; layer.convWidth = T
            block = bare(layer)
            let convMap: ([Scalar]) -> [Scalar] = { s in Array(s[W..<(T * W)]) }          // last T−1 inputs
            let lruMap: ([Scalar]) -> [Scalar] = { s in Array(s[(T * W)..<(T * W + W)]) }
            states = [("conv1d_state_final", convMap), ("conv1d_state_final_step", convMap),
                      ("rg_lru_state_final", lruMap), ("rg_lru_state_final_step", lruMap)]
        default:
            throw ModelError("family '\(meta.family)' (kind '\(meta.kind)') is not implemented in this build")
        }
        block.layerPrefix = prefix
        let H = layer.dModel
        let spec = ModelSpec(sampleRate: 1, dInput: H, dModel: H, dOutput: H, encoder: false, decoder: false, blocks: [block])
        let channelsFirst = meta.family == "s4d" || meta.family == "s4"
        return (try Model(spec: spec, tensors: params), channelsFirst, states)
    }

    static func runChecks(_ st: SafeTensors, _ meta: Meta) throws(ModelError) -> [Check] {
        if meta.kind == "selective_scan" { return try selectiveScanChecks(st, meta) }
        let (m, channelsFirst, stateMaps) = try model(st, meta)
        func read(_ n: String) throws(ModelError) -> Tensor? {
            guard let info = st.tensors[n] else { return nil }
            do { return Tensor(shape: info.shape, floats: try st.floats(n)) } catch { throw ModelError(error.message) }
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
        func rows(_ t: [Scalar], _ b: Int) -> [Scalar] {
            channelsFirst ? (0..<(L * H)).map { i in t[b * L * H + (i % H) * L + i / H] } : Array(t[(b * L * H)..<((b + 1) * L * H)])
        }
        var modes: [(String, ForwardMode?)] = [("step", nil), ("block", .scan), ("parallel", .parallelScan)]
        if m.allBlocks.allSatisfy(\.layer.hasConvolutionMode) { modes.append(("conv", .convolution)) }
        var outputs: [String: [[Scalar]]] = [:]   // mode → per batch (L, H)
        var states: [String: [[Scalar]]] = [:]
        for (name, mode) in modes {
            let state = m.makeState(maxBlock: max(L, 1))
            var perBatch: [[Scalar]] = [], perState: [[Scalar]] = []
            for b in 0..<B {
                state.reset()
                let u = rows(input.values, b)
                var y = [Scalar](repeating: 0, count: L * H)
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
        func compare(_ mode: String, _ refName: String, _ got: [Scalar], _ ref: [Scalar]) {
            checks.append(check(mode, refName, got, ref, meta.tolerance))
        }
        let refs = ["output"] + (st.tensors["output_step"] != nil ? ["output_step"] : [])
        for (name, _) in modes {
            let got = (0..<B).flatMap { outputs[name]![$0] }
            for r in refs {
                let t = try read(r)!
                compare(name, r, got, (0..<B).flatMap { rows(t.values, $0) })
            }
        }
        // Final states, mapped to each golden state tensor's layout.
        for (refName, map) in stateMaps {
            guard let t = try read(refName) else { continue }
            for mode in ["step", "block", "parallel"] {
                let got = states[mode]!.flatMap(map)
                guard got.count == t.values.count else {
                    throw ModelError("state '\(refName)' has \(t.values.count) values, the engine's maps to \(got.count)")
                }
                compare(mode + "+state", refName, got, t.values)
            }
        }
        return checks
    }
}
#endif
