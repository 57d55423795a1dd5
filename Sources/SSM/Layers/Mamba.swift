import RealModule

/// The Mamba block's mixer (Gu & Dao 2023, Fig. 3; upstream `Mamba` with `use_fast_path=False`
/// and its `step`), around the selective scan:
///
///     [x; z] = in_proj(u)                              (2E)      E = expand·d_model
///     x = silu(conv1d(x))                              causal depthwise, d_conv taps, w[:, d_conv−1] on the current sample
///     [δ_low; B; C] = x_proj(x)                        (R + 2N)  R = dt_rank
///     δ = dt_proj.weight · δ_low                       (E)       dt_proj.bias is the scan's delta bias, softplus on
///     y = S6(x, δ, B, C, z)                            (E)       A = −exp(A_log), D skip, ·silu(z)
///     out = out_proj(y)                                (d_model)
///
/// Tensors (upstream names): in_proj.weight (2E, d_model), conv1d.weight (E, 1, d_conv),
/// conv1d.bias (E), x_proj.weight (R + 2N, E), dt_proj.weight (E, R), dt_proj.bias (E),
/// A_log (E, N), D (E), out_proj.weight (d_model, E). No Linear biases besides dt_proj.
/// State: the last d_conv pre-conv x (d_conv, E), oldest first, then the scan state (E·N).
public struct MambaMixer: @unchecked Sendable {  // read-only weights after init
    public let dModel: Int, E: Int, N: Int, R: Int, dConv: Int
    let inProj: Linear, xProj: Linear, dtProj: Linear, outProj: Linear
    let scan: SelectiveScan
    let conv: CausalConv1D

    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> MambaMixer {
        let H = spec.dModel, N = spec.dState
        let E = (spec.expand ?? 2) * H, dConv = spec.dConv ?? 4
        let R = spec.dtRank ?? (H + 15) / 16
        guard E >= 1, dConv >= 1, R >= 1 else { throw ModelError("mamba: expand, d_conv and dt_rank must be positive") }
        let inProj = try Linear(r, prefix: p + "in_proj.", inputs: H, outputs: 2 * E, bias: false, arena: arena)
        let w = try r.take(p + "conv1d.weight", [E, 1, dConv])
        var rows = [Scalar](repeating: 0, count: dConv * E)
        for e in 0..<E { for j in 0..<dConv { rows[j * E + e] = w[e * dConv + j] } }
        let conv = CausalConv1D(taps: dConv, width: E, weights: rows, bias: try r.take(p + "conv1d.bias", [E]), arena: arena)
        let xProj = try Linear(r, prefix: p + "x_proj.", inputs: E, outputs: R + 2 * N, bias: false, arena: arena)
        // dt_proj's bias goes to the scan (as upstream's delta_bias), so the Linear itself has none.
        let dtW = try r.take(p + "dt_proj.weight", [E, R])
        let dtBias = try r.take(p + "dt_proj.bias", [E])
        let dtProj = Linear(weight: dtW, inputs: R, outputs: E, arena: arena)
        let aLog = try r.take(p + "A_log", [E, N])
        let scan = SelectiveScan(A: aLog.map { -Scalar.exp($0) }, D: try r.take(p + "D", [E]), deltaBias: dtBias,
                                 softplus: true, arena: arena)
        let outProj = try Linear(r, prefix: p + "out_proj.", inputs: E, outputs: H, bias: false, arena: arena)
        return MambaMixer(dModel: H, E: E, N: N, R: R, dConv: dConv, inProj: inProj, xProj: xProj, dtProj: dtProj,
                          outProj: outProj, scan: scan, conv: conv)
    }

    /// Fresh parameters as upstream initializes them: A_log = log(1…N) (S4D-Real), D = 1,
    /// dt_proj.bias = softplus⁻¹(Δ) with Δ ~ logU[dt_min, dt_max] clamped ≥ 1e-4,
    /// dt_proj.weight ~ U(±R^−½), the other Linears and conv1d as torch defaults.
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) -> [String: Tensor] {
        let H = spec.dModel, N = spec.dState, E = (spec.expand ?? 2) * H, dConv = spec.dConv ?? 4
        let R = spec.dtRank ?? (H + 15) / 16
        var t: [String: Tensor] = [:]
        func uniform(_ n: Int, _ k: Double) -> [Double] { (0..<n).map { _ in rng.uniform(-k, k) } }
        t["in_proj.weight"] = Tensor(uniform(2 * E * H, 1 / Double(H).squareRoot()), shape: [2 * E, H])
        t["conv1d.weight"] = Tensor(uniform(E * dConv, 1 / Double(dConv).squareRoot()), shape: [E, 1, dConv])
        t["conv1d.bias"] = Tensor(uniform(E, 1 / Double(dConv).squareRoot()), shape: [E])
        t["x_proj.weight"] = Tensor(uniform((R + 2 * N) * E, 1 / Double(E).squareRoot()), shape: [R + 2 * N, E])
        t["dt_proj.weight"] = Tensor(uniform(E * R, 1 / Double(R).squareRoot()), shape: [E, R])
        t["dt_proj.bias"] = Tensor((0..<E).map { _ in
            let dt = max(rng.logUniform(spec.dtMin ?? 1e-3, spec.dtMax ?? 1e-1), 1e-4)
            return softplusInverse(dt)
        }, shape: [E])
        t["A_log"] = Tensor((0..<E).flatMap { _ in Initialization.s4dReal(N).map { Double.log(-$0) } }, shape: [E, N])
        t["D"] = Tensor(shape: [E], values: Array(repeating: 1, count: E))
        t["out_proj.weight"] = Tensor(uniform(H * E, 1 / Double(E).squareRoot()), shape: [H, E])
        return t
    }

    /// State: conv history (d_conv, E) then the scan state (E·N).
    public var stateCount: Int { dConv * E + E * N }
    /// Per-sample scratch: xz (2E), x_dbl (R + 2N), δ (E), y (E), the scan's scratch.
    public var scratchCount: Int { 2 * E + (R + 2 * N) + 2 * E + scan.scratchCount }
    /// Block scratch: xz (L, 2E), conv out (L, E), x_dbl (L, R + 2N), δ (L, E), y (L, E), the scan's.
    public func blockScratchCount(_ L: Int) -> Int { L * (5 * E + R + 2 * N) + scan.blockScratchCount(L) }

    /// Pushes x (E) into the conv history and returns silu(conv) into `out` (may alias x).
    @inline(__always)
    func convolve(_ x: UnsafePointer<Scalar>, _ hist: UnsafeMutablePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>) {
        conv.step(x, out, history: hist)
        VectorMath.silu(out, E)
    }

    public func step(_ u: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>) {
        let xz = s, dbl = s + 2 * E, delta = dbl + R + 2 * N, ys = delta + E, scanScratch = ys + E
        let xc = xz   // the conv output overwrites x once x is in the history
        inProj.apply(u, xz)
        convolve(xz, state, xc)
        xProj.apply(xc, dbl)
        dtProj.apply(dbl, delta)
        scan.step(u: xc, delta: delta, B: dbl + R, C: dbl + R + N, z: xz + E, y: ys,
                  state: state + dConv * E, scratch: scanScratch)
        outProj.apply(ys, y)
    }

    /// L samples: the projections as sgemm over the block, the conv row by row (its history is
    /// the state), the selective scan on the scan core.
    public func forward(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>, parallel: Bool) {
        let W = R + 2 * N
        let xz = s, xc = xz + L * 2 * E, dbl = xc + L * E, delta = dbl + L * W, ys = delta + L * E
        let scanScratch = ys + L * E
        inProj.apply(U, xz, length: L)
        for k in 0..<L { convolve(xz + k * 2 * E, state, xc + k * E) }
        xProj.apply(xc, dbl, length: L)
        dtProj.apply(dbl, delta, length: L, inputStride: W)
        scan.forward(U: xc, Delta: delta, Bs: dbl + R, Cs: dbl + R + N, bcStride: W, Z: xz + E, zStride: 2 * E,
                     Y: ys, length: L, state: state + dConv * E, scratch: scanScratch, parallel: parallel)
        outProj.apply(ys, Y, length: L)
    }

    /// The engine-layout weights (read-only views), for the C reference benchmarks: every Linear
    /// transposed to (in, out) row-major (in_proj (d_model, 2E), x_proj (E, R + 2N), dt_proj (R, E),
    /// out_proj (E, d_model)), conv taps (d_conv, E) with its bias (E), dt_proj.bias (E),
    /// A = −exp(A_log) (E, N), D (E).
    public var weights: (inProj: UnsafePointer<Scalar>, conv: UnsafePointer<Scalar>, convBias: UnsafePointer<Scalar>,
                         xProj: UnsafePointer<Scalar>, dtProj: UnsafePointer<Scalar>, dtBias: UnsafePointer<Scalar>,
                         A: UnsafePointer<Scalar>, D: UnsafePointer<Scalar>, outProj: UnsafePointer<Scalar>) {
        (UnsafePointer(inProj.wt), UnsafePointer(conv.w), UnsafePointer(conv.b), UnsafePointer(xProj.wt),
         UnsafePointer(dtProj.wt), UnsafePointer(scan.deltaBias), UnsafePointer(scan.A), UnsafePointer(scan.skip),
         UnsafePointer(outProj.wt))
    }

    public var flopsPerSample: Int {
        2 * (inProj.inputs * inProj.outputs + xProj.inputs * xProj.outputs + dtProj.inputs * dtProj.outputs
             + outProj.inputs * outProj.outputs) + 2 * dConv * E + scan.flopsPerSample
    }
}
