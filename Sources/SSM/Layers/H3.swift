import ComplexModule
import RealModule

/// The H3 layer (Fu, Dao, Saab, Thomas, Rudra, Ré 2023: "Hungry Hungry Hippos: Towards Language
/// Modeling with State Space Models", §3.1, Fig. 1 and Alg. 1; upstream HazyResearch/H3
/// `src/models/ssm/h3.py` `H3.forward`): a shift SSM and a diagonal SSM joined by multiplicative
/// interactions, for u (H) per sample, H = d_model, d = head_dim, H/d heads:
///
///     q, k, v = q_proj(u), k_proj(u), v_proj(u)                     (H each, Linear with bias)
///     k̃ = SSM_shift(k) + ssm_k_D ⊙ k                                (H)
///     kv[h, d₁, d₂] = k̃[h·d + d₁] · v[h·d + d₂]                     (H/d, d, d)
///     y[h, d₁, d₂] = SSM_diag,h(kv[h, d₁, d₂]) + D[h] · kv[h, d₁, d₂]     one SISO system per head
///     o[d₂·(H/d) + h] = Σ_{d₁} q[h·d + d₁] · y[h, d₁, d₂]            (H)   upstream's `mul_sum`, 'b d h l -> b (d h) l'
///     out = output_linear(o)                                         (H)
///
/// With d = 1 (upstream's default) this is out = output_linear(q ⊙ SSM_diag(k̃ ⊙ v)). For d > 1 the
/// step computes exactly what upstream's (parallel) `forward` does; upstream's own `H3.step` only runs
/// with d = 1 (its final rearrange expects a length axis that a single step does not have).
///
/// **Shift SSM** (upstream `SSKernelShift`, per channel, state size N): A = the N×N shift matrix,
/// B (N) (initialized to e₁), C (N): x_k = A x_{k−1} + B k_k, y_k = C x_k is the causal FIR
/// y_k = Σ_{l<N} K_l k_{k−l} with K_l = Σ_m B_m C_{m+l} (= C_l for B = e₁, when x_k is exactly the last
/// N inputs). Whatever B, the output depends only on the last N inputs, so it runs as a `CausalConv1D`
/// of N taps with ssm_k_D folded into the tap on the current sample; its state is the conv history
/// (N, H), the last N values of k.
///
/// **Diagonal SSM**: any per-channel (SISO) LTI family of the engine, `inner` in the layer spec:
/// - `s4d` (default; upstream H3's `SSKernelDiag`): Λ = −exp(inv_A_real) + i·A_imag, Δ = exp(log_dt),
///   discretized by `discretization` (default bilinear, as upstream), y = 2·Re(C x) — a `DiagonalSSM`;
/// - `s4` (DPLR, state-spaces/s4 `FFTConv` kernel names): a `DPLRSSM`.
///
/// Both run on the scan core through those layers' own code, over H/d·d² channels (channel
/// h·d² + d₁·d + d₂ is a copy of head h's system), so streaming state is (H/d)·d²·N/2 complex lanes.
///
/// Tensors (upstream names, under the layer prefix): q_proj, k_proj, v_proj, output_linear
/// .weight (H, H) .bias (H) · ssm_k_kernel.kernel.B (H, N) · ssm_k_kernel.kernel.C (1, H, N) ·
/// ssm_k_D (H) · D (H/d) · s4d: kernel.kernel.log_dt (H/d), kernel.kernel.inv_A_real,
/// kernel.kernel.A_imag (H/d, N/2), kernel.kernel.B (H/d, N/2, 2), kernel.kernel.C (1, H/d, N/2, 2) ·
/// s4: kernel.inv_dt (H/d, 1), kernel.A_real, kernel.A_imag (H/d, N/2), kernel.B, kernel.C,
/// kernel.P (1, H/d, N/2, 2), kernel.l_kernel (optional, 0).
/// State: shift history (N, H), then the diagonal branch's state.
public struct H3Layer: @unchecked Sendable {  // read-only weights after init
    /// The diagonal branch, in the engine form of its family.
    public enum Inner: Sendable {
        case diagonal(DiagonalSSM)   // S4D
        case dplr(DPLRSSM)           // S4
    }

    public let dModel: Int, headDim: Int, N: Int
    public var heads: Int { dModel / headDim }
    /// Channels of the diagonal branch: (H/d)·d².
    public var innerChannels: Int { heads * headDim * headDim }
    public let inner: Inner
    /// q, k, v projections packed into one (3H, H) Linear: one pass over u per sample, one sgemm per block.
    let qkv: Linear
    let outputLinear: Linear
    let shift: CausalConv1D

    /// The shift branch's FIR taps K_l (+ ssm_k_D at l = 0) as the step uses them, (H, N).
    public var shiftKernel: [[Double]] {
        (0..<dModel).map { h in (0..<N).map { l in Double(shift.w[(N - 1 - l) * dModel + h]) } }
    }

    /// The inner families H3 runs around.
    public static let innerFamilies: [Family] = [.s4d, .s4]

    static func sizes(_ spec: LayerSpec) throws(ModelError) -> (H: Int, N: Int, d: Int, inner: Family) {
        let H = spec.dModel, N = spec.dState, d = spec.headDim ?? 1, inner = spec.inner ?? .s4d
        guard d >= 1, H % d == 0 else { throw ModelError("h3: head_dim \(d) must be positive and divide d_model \(H)") }
        guard N >= 2, N % 2 == 0 else {
            throw ModelError("h3: d_state must be even and at least 2 (got \(N)): N shift taps, N/2 complex lanes per diagonal channel")
        }
        guard innerFamilies.contains(inner) else {
            throw ModelError("h3: inner family '\(inner.rawValue)' is not supported (s4d | s4): the diagonal branch must be a per-channel (SISO) LTI system")
        }
        return (H, N, d, inner)
    }

    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> H3Layer {
        let (H, N, d, innerFamily) = try sizes(spec)
        let heads = H / d, copies = d * d
        // q, k, v: three (H, H) PyTorch weights stacked into one (3H, H).
        var w = [Scalar](), b = [Scalar]()
        for name in ["q_proj.", "k_proj.", "v_proj."] {
            w += try r.take(p + name + "weight", [H, H])
            b += try r.take(p + name + "bias", [H])
        }
        let qkv = Linear(weight: w, bias: b, inputs: H, outputs: 3 * H, arena: arena)
        // Shift SSM → FIR taps K_l = Σ_m B_m C_{m+l}, plus ssm_k_D on the current sample.
        let sB = try r.take(p + "ssm_k_kernel.kernel.B", [H, N])
        let sC = try r.take(p + "ssm_k_kernel.kernel.C", [1, H, N])
        let sD = try r.take(p + "ssm_k_D", [H])
        var taps = [[Double]](repeating: [Double](repeating: 0, count: N), count: H)
        for h in 0..<H {
            for l in 0..<N {
                var s = 0.0
                for m in 0..<(N - l) { s += Double(sB[h * N + m]) * Double(sC[h * N + m + l]) }
                taps[h][l] = s
            }
            taps[h][0] += Double(sD[h])
        }
        // CausalConv1D rows (N, H): row N−1 multiplies the current sample, row N−1−l the sample l back.
        var rows = [Scalar](repeating: 0, count: N * H)
        for h in 0..<H { for l in 0..<N { rows[(N - 1 - l) * H + h] = Scalar(taps[h][l]) } }
        let shift = CausalConv1D(taps: N, width: H, weights: rows, bias: [Scalar](repeating: 0, count: H), arena: arena)

        // The diagonal branch: head h's system copied to its d² channels h·d² + d₁·d + d₂.
        func replicate<T>(_ x: [T]) -> [T] { x.flatMap { v in [T](repeating: v, count: copies) } }
        let inner: Inner
        switch innerFamily {
        case .s4d:
            let n = N / 2
            let logDt = try r.take(p + "kernel.kernel.log_dt", [heads])
            let aRe = try r.take(p + "kernel.kernel.inv_A_real", [heads, n])
            let aIm = try r.take(p + "kernel.kernel.A_imag", [heads, n])
            let B = try r.takeComplex(p + "kernel.kernel.B", [heads, n])
            let C = try r.takeComplex(p + "kernel.kernel.C", [1, heads, n])
            let D = try r.take(p + "D", [heads])
            let disc = spec.discretization ?? .bilinear
            var lam = [[Complex<Double>]](), bBar = [[Complex<Double>]](), c = [[Complex<Double>]]()
            for h in 0..<heads {
                let dt = Double.exp(Double(logDt[h]))
                guard dt.isFinite, dt > 0 else {
                    throw ModelError("h3: '\(p)kernel.kernel.log_dt' gives a step Δ = exp(log_dt) that is not a finite positive number")
                }
                var lh = [Complex<Double>](), bh = [Complex<Double>](), ch = [Complex<Double>]()
                for j in 0..<n {
                    let i = h * n + j
                    let (a, f) = disc.discretize(Complex(-Double.exp(Double(aRe[i])), Double(aIm[i])), dt: dt)
                    lh.append(a); bh.append(f * Complex(B[i].re, B[i].im)); ch.append(Complex(C[i].re, C[i].im))
                }
                lam.append(lh); bBar.append(bh); c.append(ch)
            }
            inner = .diagonal(DiagonalSSM(statesPerChannel: n, lambdaBar: replicate(lam).flatMap { $0 },
                                          bBar: replicate(bBar).flatMap { $0 }, c: replicate(c).flatMap { $0 },
                                          outputScale: 2, d: replicate(D.map { Double($0) }), arena: arena))
        default:  // .s4 (sizes() admits nothing else)
            var ispec = spec
            ispec.family = .s4; ispec.dModel = heads
            let s = try S4Parameters.read(ispec, r, prefix: p)
            inner = .dplr(DPLRSSM(S4Parameters(dt: replicate(s.dt), lambda: replicate(s.lambda), p: replicate(s.p),
                                               b: replicate(s.b), c: replicate(s.c), d: replicate(s.d)), arena: arena))
        }
        let out = try Linear(r, prefix: p + "output_linear.", inputs: H, outputs: H, arena: arena)
        return H3Layer(dModel: H, headDim: d, N: N, inner: inner, qkv: qkv, outputLinear: out, shift: shift)
    }

    /// Fresh parameters as upstream initializes them: the Linears as torch's default, shift B = e₁,
    /// shift C ~ U(±1/√N) (kaiming_uniform(a = √5) of the (H, 1, N) tensor), ssm_k_D, D ~ N(0, 1);
    /// the diagonal branch by its family's init (S4D: `init`, default `lin`, i.e. upstream's
    /// `diag-lin`; S4: HiPPO-LegS), Δ ~ logU[dt_min, dt_max].
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        let (H, N, d, innerFamily) = try sizes(spec)
        let heads = H / d, n = N / 2
        var t: [String: Tensor] = [:]
        for name in ["q_proj.", "k_proj.", "v_proj."] { Linear.initialize(&t, prefix: name, inputs: H, outputs: H, rng: &rng) }
        t["ssm_k_kernel.kernel.B"] = Tensor((0..<(H * N)).map { $0 % N == 0 ? 1 : 0 }, shape: [H, N])
        let k = 1 / Double(N).squareRoot()
        t["ssm_k_kernel.kernel.C"] = Tensor((0..<(H * N)).map { _ in rng.uniform(-k, k) }, shape: [1, H, N])
        t["ssm_k_D"] = Tensor((0..<H).map { _ in rng.normal() }, shape: [H])
        var ispec = LayerSpec(family: innerFamily, dModel: heads, dState: N)
        ispec.dtMin = spec.dtMin; ispec.dtMax = spec.dtMax
        switch innerFamily {
        case .s4d:
            // S4D's init in FFTConv names, renamed to H3's SSKernelDiag: Λ = −exp(inv_A_real) + i·A_imag.
            ispec.initialization = spec.initialization ?? "lin"
            let s = try S4D.initialize(ispec, rng: &rng)
            t["kernel.kernel.log_dt"] = Tensor(shape: [heads], values: s["kernel.inv_dt"]!.values)
            t["kernel.kernel.inv_A_real"] = s["kernel.A_real"]!
            t["kernel.kernel.A_imag"] = Tensor(shape: [heads, n], values: s["kernel.A_imag"]!.values.map { -$0 })
            t["kernel.kernel.B"] = Tensor(shape: [heads, n, 2], values: s["kernel.B"]!.values)
            t["kernel.kernel.C"] = s["kernel.C"]!
            t["D"] = Tensor(shape: [heads], values: s["D"]!.values)
        default:
            ispec.initialization = spec.initialization
            for (name, v) in try S4.initialize(ispec, rng: &rng) { t[name] = v }
        }
        Linear.initialize(&t, prefix: "output_linear.", inputs: H, outputs: H, rng: &rng)
        return t
    }

    // MARK: sizes

    var innerStateCount: Int {
        switch inner {
        case .diagonal(let l): l.stateCount
        case .dplr(let l): l.stateCount
        }
    }

    /// Shift history (N, H), then the diagonal branch's state.
    public var stateCount: Int { shift.stateCount + innerStateCount }

    /// Per sample: q, k, v (3H), kv and y (2·(H/d)·d²), the diagonal branch's scratch.
    public var scratchCount: Int {
        let s: Int
        switch inner {
        case .diagonal(let l): s = l.scratchCount
        case .dplr(let l): s = l.scratchCount
        }
        return 3 * dModel + 2 * innerChannels + s
    }

    /// A block of L: QKV (L, 3H), KV and Y (L, (H/d)·d²) each, O (L, H), and the diagonal branch's
    /// block scratch (the (L, 2P) scan buffer of the parallel scan; the DPLR step's 2P).
    public func blockScratchCount(_ L: Int) -> Int {
        let s: Int
        switch inner {
        case .diagonal(let l): s = L * 2 * l.P
        case .dplr(let l): s = l.scratchCount
        }
        return L * (4 * dModel + 2 * innerChannels) + s
    }

    // MARK: step — one sample (the streaming path)

    /// kv = k̃ ⊗ v per head: kv[h·d² + d₁·d + d₂] = k̃[h·d + d₁]·v[h·d + d₂].
    @inline(__always)
    func outer(_ k: UnsafePointer<Scalar>, _ v: UnsafePointer<Scalar>, _ kv: UnsafeMutablePointer<Scalar>) {
        let d = headDim
        if d == 1 { for i in 0..<dModel { kv[i] = k[i] * v[i] }; return }
        var j = 0
        for h in 0..<heads {
            for d1 in 0..<d {
                let kk = k[h * d + d1]
                for d2 in 0..<d { kv[j] = kk * v[h * d + d2]; j += 1 }
            }
        }
    }

    /// o[d₂·(H/d) + h] = Σ_{d₁} q[h·d + d₁]·y[h·d² + d₁·d + d₂].
    @inline(__always)
    func contract(_ q: UnsafePointer<Scalar>, _ y: UnsafePointer<Scalar>, _ o: UnsafeMutablePointer<Scalar>) {
        let d = headDim, nh = heads
        if d == 1 { for i in 0..<dModel { o[i] = q[i] * y[i] }; return }
        for h in 0..<nh {
            for d2 in 0..<d {
                var s: Scalar = 0
                for d1 in 0..<d { s += q[h * d + d1] * y[h * d * d + d1 * d + d2] }
                o[d2 * nh + h] = s
            }
        }
    }

    /// u, out: (H); state (stateCount); scratch (scratchCount).
    public func step(_ u: UnsafePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>) {
        let H = dModel
        let q = s, k = s + H, v = s + 2 * H, kv = s + 3 * H, y = kv + innerChannels, innerScratch = y + innerChannels
        qkv.apply(u, q)                                  // [q; k; v] = W_qkv u + b
        shift.step(k, k, history: state)                // k̃ = K_shift ∗ k + ssm_k_D ⊙ k
        outer(k, v, kv)
        let innerState = state + shift.stateCount
        switch inner {
        case .diagonal(let l): l.step(kv, y, state: innerState, scratch: innerScratch)
        case .dplr(let l): l.step(kv, y, state: innerState, scratch: innerScratch)
        }
        contract(q, y, v)                                // o → v's slot (v is spent)
        outputLinear.apply(v, out)
    }

    // MARK: forward — a block of L samples (projections batched, same recurrences)

    /// U, Y: (L, H); state carried in and out; scratch (blockScratchCount(L)). `parallel` runs the
    /// S4D branch on the scan core's parallel scan (S4's DPLR step is sequential).
    public func forward(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>, parallel: Bool) {
        let H = dModel, Hi = innerChannels
        let QKV = s, KV = QKV + L * 3 * H, YI = KV + L * Hi, O = YI + L * Hi, innerScratch = O + L * H
        qkv.apply(U, QKV, length: L)
        for t in 0..<L {
            let row = QKV + t * 3 * H
            shift.step(row + H, row + H, history: state)
            outer(row + H, row + 2 * H, KV + t * Hi)
        }
        let innerState = state + shift.stateCount
        switch inner {
        case .diagonal(let l): l.forward(KV, YI, length: L, state: innerState, scratch: innerScratch, parallel: parallel)
        case .dplr(let l): l.forward(KV, YI, length: L, state: innerState, scratch: innerScratch)
        }
        for t in 0..<L { contract(QKV + t * 3 * H, YI + t * Hi, O + t * H) }
        outputLinear.apply(O, Y, length: L)
    }

    // MARK: convolution — both SSMs as kernels applied by FFT (offline, zero initial state)

    /// Convolution mode from a zero state (the recurrent state is not touched): k̃ = K_shift ∗ k by
    /// FFT in Double, then the diagonal branch's own convolution mode. U, Y: (L, H).
    public func convolve(_ U: [Scalar], length L: Int) -> [Scalar] {
        let H = dModel, Hi = innerChannels
        var QKV = [Scalar](repeating: 0, count: L * 3 * H)
        U.withUnsafeBufferPointer { u in QKV.withUnsafeMutableBufferPointer { qkv.apply(u.baseAddress!, $0.baseAddress!, length: L) } }
        let kIn = (0..<H).map { h in (0..<L).map { Double(QKV[$0 * 3 * H + H + h]) } }
        let shiftKernel = self.shiftKernel
        let kernels = (0..<H).map { o in (0..<H).map { i in
            i == o ? (0..<L).map { $0 < N ? shiftKernel[o][$0] : 0 } : [Double]()
        } }
        let kt = causalConvolution(kernels: kernels, inputs: kIn, length: L)
        var KV = [Scalar](repeating: 0, count: L * Hi), kRow = [Scalar](repeating: 0, count: H)
        for t in 0..<L {
            for h in 0..<H { kRow[h] = Scalar(kt[h][t]) }
            kRow.withUnsafeBufferPointer { k in
                QKV.withUnsafeBufferPointer { q in
                    KV.withUnsafeMutableBufferPointer { outer(k.baseAddress!, q.baseAddress! + t * 3 * H + 2 * H, $0.baseAddress! + t * Hi) }
                }
            }
        }
        let YI: [Scalar]
        switch inner {
        case .diagonal(let l): YI = l.convolve(KV, length: L)
        case .dplr(let l): YI = l.convolve(KV, length: L)
        }
        var O = [Scalar](repeating: 0, count: L * H), Y = [Scalar](repeating: 0, count: L * H)
        QKV.withUnsafeBufferPointer { q in
            YI.withUnsafeBufferPointer { y in
                O.withUnsafeMutableBufferPointer { o in
                    for t in 0..<L { contract(q.baseAddress! + t * 3 * H, y.baseAddress! + t * Hi, o.baseAddress! + t * H) }
                }
            }
        }
        O.withUnsafeBufferPointer { o in Y.withUnsafeMutableBufferPointer { outputLinear.apply(o.baseAddress!, $0.baseAddress!, length: L) } }
        return Y
    }

    // MARK: inspection

    /// |λ| of the S4D branch (the load-time stability check); S4's Λ has Re < 0 by parametrization.
    public var eigenvalues: [Complex<Double>] {
        switch inner {
        case .diagonal(let l): l.eigenvalues
        case .dplr: []
        }
    }

    public var eigenvalueMagnitudes: [Double] {
        switch inner {
        case .diagonal(let l): l.eigenvalueMagnitudes
        case .dplr: []
        }
    }

    public var weightsAreFinite: Bool {
        let innerFinite: Bool
        switch inner {
        case .diagonal(let l): innerFinite = l.weightsAreFinite
        case .dplr(let l): innerFinite = l.weightsAreFinite
        }
        return innerFinite && UnsafeBufferPointer(start: shift.w, count: N * dModel).allSatisfy(\.isFinite)
    }

    /// Multiply-adds counted as 2 FLOPs, per sample: q/k/v and output projections, the N-tap shift,
    /// kv, the diagonal branch, the q contraction.
    public var flopsPerSample: Int {
        let innerFlops: Int
        switch inner {
        case .diagonal(let l): innerFlops = l.flopsPerSample
        case .dplr(let l): innerFlops = l.flopsPerSample
        }
        return 2 * 4 * dModel * dModel + 2 * N * dModel + 3 * innerChannels + innerFlops
    }
}
