import ComplexModule
import RealModule

/// S4 (Gu, Goel, Ré 2022: "Efficiently Modeling Long Sequences with Structured State Spaces"), the
/// DPLR layer of state-spaces/s4 `FFTConv(mode='dplr')`: H independent SISO channels, each with a
/// diagonal-plus-rank-one state matrix. Per channel, with conj(x) := concat(x, x̄) (length N):
///
///     Λ = −exp(A_real) − i·A_imag,  Δ = exp(inv_dt)                       (N/2 stored, one per pair)
///     A = diag(conj Λ) − conj(P) conj(P)ᴴ,  B = conj(B),  C = conj(C)     (full N×N)
///     bilinear: Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A),  B̄ = (I − Δ/2·A)⁻¹·Δ·B
///     x_k = Ā x_{k−1} + B̄ u_k,  y_k = Re(C x_k) + D u_k
///
/// Tensors (FFTConv names, channels = 1): kernel.inv_dt (H,1) · kernel.A_real, kernel.A_imag (H,N/2) ·
/// kernel.B, kernel.C, kernel.P (1,H,N/2,2) · D (1,H) · kernel.l_kernel (1), optional, must be 0.
/// Glossary: H channels, N state size (`d_state`, the full one), n = N/2, L length, P = H·lanes.
///
/// Three ways to run it, all from the same parameters:
///
/// 1. **Convolution** (`S4Parameters.kernel`, `convolve`): the kernel from the generating function at
///    the roots of unity, through the Cauchy kernel and the Woodbury identity for the rank-one term
///    (S4 paper, Alg. 1 and Lemmas C.2–C.4), in Double. Exact to ~1e-13 for every N.
///
/// 2. **Diagonalized recurrence** (`S4Layer.diagonal`, a `DiagonalSSM` on the scan core): A = V diag(a) V⁻¹,
///    Ā = V diag(μ) V⁻¹ with μ = (1 + Δa/2)/(1 − Δa/2), lanes z = V⁻¹x with B̃ = V⁻¹B̄, C̃ = C V.
///    **Only safe for N = 4.** The diagonal realization of a transfer function is unique (partial
///    fractions): lane i carries the residue r_i = C̃_i B̃_i whatever the basis or the eigensolver, and a
///    float32 lane holds its state and its μ_i to relative ε₃₂, so the output error is ≈ ε₃₂·Σ|r_i|/|K|
///    (times a memory factor ~1/(Δ·|a|) for the rounding of μ). For HiPPO-LegS, whose exact eigenvalues
///    are −1, −2, …, −N, the residues grow exponentially with N (S4 paper, Lemma 3.2: the eigenvector
///    matrix has entries up to 2^{4N/3}). Measured by S4Tests (`S4_MEASURE=1`): H = 1, HiPPO-LegS init
///    with float32-stored parameters, D = 0, L = 4096 samples of N(0,1), normwise relative error
///    max|y − y₆₄|/max|y₆₄| against a float64 dense recurrence, worst over Δ ∈ {1e-3, 1e-2, 1e-1}:
///
///        N     cond₂(V)   Σ|r_i|/max|K|   diagonal f32   DPLR step f32   S4D, same Λ/B/C (floor)
///        4     8.6e1      1.6e2           1.3e-5         3.7e-6          9.9e-6
///        6     2.5e3      1.1e3           3.1e-4         2.0e-6          1.1e-5
///        8     7.7e4      2.7e4           6.2e-3         1.1e-5          2.2e-5
///        10    2.4e6      1.6e6           3.5e-2         2.9e-6          1.4e-5
///        12    2.5e7      4.7e6           7.6e-1         3.4e-6          8.3e-6
///        16    3.6e8      9.8e7           5.1            1.1e-5          8.9e-6
///        32    3.9e8      9.8e7           3.6e1          4.9e-6          8.6e-6
///        64    5.9e8      9.9e7           4.0            7.7e-6          2.7e-5
///        128   8.0e8      2.5e8           6.4            9.3e-6          2.6e-5
///        256   8.9e8      1.5e8           8.4            9.0e-6          3.0e-5
///
///    (cond₂ is Δ-independent: Ā shares A's eigenvectors. From N ≈ 12 the float32 rounding of Λ and P
///    already moves A's spectrum off −1 … −N into complex pairs, so cond₂ saturates near 1e9 instead of
///    the exact HiPPO's 8e10 at N = 16 and ≥ 1e14 from N = 32; the residues still ruin the diagonal form.)
///    Rule of thumb from the first three rows: error ≈ 1.5e-7·cond₂(V). A 1e-5 target is out of reach
///    for any diagonal float32 layer with these poles at Δ = 1e-3 (the S4D floor is already ~1e-5), so the
///    target is **≤ 1e-4 relative** (10× that floor), and `S4.load` refuses the diagonal form when a
///    channel's cond₂(V) > `S4.maxConditionNumber` = 500 (predicted error ≲ 7.5e-5). At HiPPO-LegS init
///    that admits N = 4 and refuses N ≥ 6; a trained layer is judged by its own V, channel by channel.
///    The golden N = 8, L = 64 case, forced through the diagonal form, misses its tolerance (1.8×).
///
/// 3. **DPLR step** (`DPLRSSM`, also on the scan core): Ā = (2/Δ − A)⁻¹(2/Δ + A) applied with the
///    Woodbury identity, i.e. x_k = μ∘x_{k−1} + B̄u_k − σ_k·v, a diagonal scan step plus one scalar
///    feedback σ_k = 2Re(g·x_{k−1}) + βu_k per channel (upstream's `step_linear`; O(N) per sample; state
///    N/2 complex per channel). It works in the NPLR basis, unitarily equivalent to HiPPO's, so nothing
///    is ill-conditioned: its float32 error (table above) is ≤ 1.1e-5 for every N up to 256, the same
///    as the S4D floor. This is the engine form S4 should stream with for N > 4.
public enum S4 {
    /// Largest cond₂(V) (eigenvectors with unit columns) for which `load` builds the diagonalized form:
    /// the float32 step error is ≈ 1.5e-7·cond₂(V), so 500 keeps it below 1e-4 relative (see above).
    public static let maxConditionNumber: Double = 500

    /// The layer with its diagonalized recurrence (refused, naming N and cond₂(V), when a channel's
    /// eigenvector basis is worse conditioned than `maxConditionNumber`), its DPLR step and conv mode.
    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena,
                            maxConditionNumber: Double = S4.maxConditionNumber) throws(ModelError) -> S4Layer {
        let params = try S4Parameters.read(spec, r, prefix: p)
        return try S4Layer(params, arena: arena, maxConditionNumber: maxConditionNumber)
    }

    /// The DPLR step form only (no diagonalization, so no conditioning limit) — any N.
    public static func loadDPLR(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> DPLRSSM {
        DPLRSSM(try S4Parameters.read(spec, r, prefix: p), arena: arena)
    }

    /// A fresh layer in FFTConv names, HiPPO-LegS NPLR init (`init` legs, the only one): Λ the
    /// eigenvalues of the normal part (−½ + iω, negative-ω half), P = Vᴴ·√(n+½), B = Vᴴ·√(2n+1) with
    /// Im B clipped to ±2, C ~ complex N(0, 1) (each part N(0, ½), torch's complex randn), D ~ N(0, 1),
    /// log Δ ~ U[log dt_min, log dt_max], kernel.l_kernel = 0.
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        let H = spec.dModel, N = spec.dState, n = N / 2
        guard H >= 1, N >= 2, N % 2 == 0 else {
            throw ModelError("s4: d_state must be even and at least 2, d_model positive (got d_state \(N), d_model \(H))")
        }
        guard (spec.initialization ?? "legs") == "legs" else {
            throw ModelError("s4: unknown init '\(spec.initialization!)' (legs)")
        }
        let (lambda, V) = Initialization.hippoLegSNormal(N)
        let P = (0..<n).map { j in
            (0..<N).reduce(Complex<Double>.zero) { $0 + V[$1][j].conjugate * Double.sqrt(Double($1) + 0.5) }
        }
        let B = Initialization.hippoLegSB(V).map { Complex($0.real, min(max($0.imaginary, -2), 2)) }
        let (lo, hi) = (spec.dtMin ?? 1e-3, spec.dtMax ?? 1e-1)
        var t: [String: Tensor] = [:]
        t["kernel.inv_dt"] = Tensor((0..<H).map { _ in Double.log(rng.logUniform(lo, hi)) }, shape: [H, 1])
        t["kernel.A_real"] = Tensor((0..<H).flatMap { _ in lambda.map { Double.log(-$0.real) } }, shape: [H, n])
        t["kernel.A_imag"] = Tensor((0..<H).flatMap { _ in lambda.map { -$0.imaginary } }, shape: [H, n])
        t["kernel.P"] = Tensor((0..<H).flatMap { _ in P.flatMap { [$0.real, $0.imaginary] } }, shape: [1, H, n, 2])
        t["kernel.B"] = Tensor((0..<H).flatMap { _ in B.flatMap { [$0.real, $0.imaginary] } }, shape: [1, H, n, 2])
        t["kernel.C"] = Tensor((0..<(H * n * 2)).map { _ in rng.normal() * Double.sqrt(0.5) }, shape: [1, H, n, 2])
        t["D"] = Tensor((0..<H).map { _ in rng.normal() }, shape: [1, H])
        t["kernel.l_kernel"] = Tensor([0], shape: [1])
        return t
    }
}

// MARK: - Parameters, dense discretization and convolution mode (Double)

/// An S4 layer's parameters in Double, one of each conjugate pair (n = N/2 per channel), and what
/// follows from them without any float32: the dense discrete matrices and the convolution kernel.
public struct S4Parameters: Sendable {
    public let H: Int
    /// Full state size (the conjugate pairs included).
    public let N: Int
    public var n: Int { N / 2 }
    public let dt: [Double]                  // (H)
    public let lambda: [[Complex<Double>]]   // (H, n)
    public let p: [[Complex<Double>]]        // (H, n)
    public let b: [[Complex<Double>]]        // (H, n)
    public let c: [[Complex<Double>]]        // (H, n)
    public let d: [Double]                   // (H)

    public init(dt: [Double], lambda: [[Complex<Double>]], p: [[Complex<Double>]], b: [[Complex<Double>]],
                c: [[Complex<Double>]], d: [Double]) {
        self.H = dt.count; self.N = 2 * (lambda.first?.count ?? 0)
        self.dt = dt; self.lambda = lambda; self.p = p; self.b = b; self.c = c; self.d = d
    }

    static func read(_ spec: LayerSpec, _ r: TensorReader, prefix p: String) throws(ModelError) -> S4Parameters {
        let H = spec.dModel, N = spec.dState, n = N / 2
        guard H >= 1, N >= 2, N % 2 == 0 else {
            throw ModelError("s4: d_state must be even and at least 2, d_model positive (got d_state \(N), d_model \(H))")
        }
        let invDt = try r.take(p + "kernel.inv_dt", [H, 1])
        let aRe = try r.take(p + "kernel.A_real", [H, n]), aIm = try r.take(p + "kernel.A_imag", [H, n])
        let B = try r.takeComplex(p + "kernel.B", [1, H, n]), C = try r.takeComplex(p + "kernel.C", [1, H, n])
        let P = try r.takeComplex(p + "kernel.P", [1, H, n])
        let D = try r.take(p + "D", [1, H])
        if r.has(p + "kernel.l_kernel") {
            let l = try r.take(p + "kernel.l_kernel", [1])[0]
            guard l == 0 else {
                throw ModelError("s4: '\(p)kernel.l_kernel' is \(Int(l)), so the stored kernel.C is upstream's C̃ = (I − Ā^\(Int(l)))ᵀ·conj(C) "
                                 + "for a kernel of length \(Int(l)), not C; export the layer before its first forward call (l_kernel = 0)")
            }
        }
        func cx(_ v: [(re: Double, im: Double)], _ h: Int) -> [Complex<Double>] { (0..<n).map { Complex(v[h * n + $0].re, v[h * n + $0].im) } }
        var dt = [Double](), lam = [[Complex<Double>]](), pp = [[Complex<Double>]](), bb = [[Complex<Double>]](), cc = [[Complex<Double>]]()
        for h in 0..<H {
            dt.append(Double.exp(Double(invDt[h])))
            lam.append((0..<n).map { Complex(-Double.exp(Double(aRe[h * n + $0])), -Double(aIm[h * n + $0])) })
            pp.append(cx(P, h)); bb.append(cx(B, h)); cc.append(cx(C, h))
        }
        guard dt.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw ModelError("s4: '\(p)kernel.inv_dt' gives a step Δ = exp(inv_dt) that is not a finite positive number")
        }
        return S4Parameters(dt: dt, lambda: lam, p: pp, b: bb, c: cc, d: D.map { Double($0) })
    }

    /// conj(x) := concat(x, x̄).
    static func full(_ x: [Complex<Double>]) -> [Complex<Double>] { x + x.map(\.conjugate) }

    /// The continuous state matrix of channel h: A = diag(conj Λ) − conj(P) conj(P)ᴴ (N×N).
    func stateMatrix(_ h: Int) -> CMatrix {
        let l = S4Parameters.full(lambda[h]), q = S4Parameters.full(p[h])
        var A = CMatrix(n: N)
        for i in 0..<N {
            for j in 0..<N {
                var v = -(q[i] * q[j].conjugate)
                if i == j { v = v + l[i] }
                A[i, j] = v
            }
        }
        return A
    }

    /// The dense bilinear matrices of channel h: Ā (N×N, row-major) and B̄ (N), by LU solves of
    /// (I − Δ/2·A) against (I + Δ/2·A) and Δ·B.
    public func discreteMatrices(channel h: Int) -> (dA: [Complex<Double>], dB: [Complex<Double>]) {
        let A = stateMatrix(h), half = dt[h] / 2
        var M = CMatrix(n: N), R = CMatrix(n: N)
        for i in 0..<N {
            for j in 0..<N {
                let a = A[i, j] * half
                M[i, j] = (i == j ? Complex(1, 0) : .zero) - a
                R[i, j] = (i == j ? Complex(1, 0) : .zero) + a
            }
        }
        let lu = CLU(M)
        var dA = [Complex<Double>](repeating: .zero, count: N * N)
        for j in 0..<N {
            let col = lu.solve((0..<N).map { R[$0, j] })
            for i in 0..<N { dA[i * N + j] = col[i] }
        }
        let dB = lu.solve(S4Parameters.full(b[h]).map { $0 * dt[h] })
        return (dA, dB)
    }

    /// Row vector r ← r·Ā in O(N), through the DPLR structure: Ā = (2/Δ − A)⁻¹(2/Δ + A) with
    /// (2/Δ − A)⁻¹ = Dg − Dg q (1 + qᴴDg q)⁻¹ qᴴ Dg, Dg = diag(1/(2/Δ − λ)), q = conj(P).
    func rowTimesDA(_ r: inout [Complex<Double>], lambda l: [Complex<Double>], q: [Complex<Double>], dt: Double) {
        let N = r.count, two = 2 / dt
        // s = r (2/Δ − A)⁻¹
        var rq = Complex<Double>.zero, qq = Complex<Double>.zero
        var dg = [Complex<Double>](repeating: .zero, count: N)
        for j in 0..<N {
            dg[j] = Complex(1, 0) / (Complex(two, 0) - l[j])
            rq = rq + r[j] * dg[j] * q[j]
            qq = qq + q[j].conjugate * dg[j] * q[j]
        }
        let f = rq / (Complex(1, 0) + qq)
        var s = [Complex<Double>](repeating: .zero, count: N)
        for j in 0..<N { s[j] = r[j] * dg[j] - f * q[j].conjugate * dg[j] }
        // r = s (2/Δ + A) = s∘(2/Δ + λ) − (s·q) qᴴ
        var sq = Complex<Double>.zero
        for j in 0..<N { sq = sq + s[j] * q[j] }
        for j in 0..<N { r[j] = s[j] * (Complex(two, 0) + l[j]) - sq * q[j].conjugate }
    }

    /// The convolution kernel K_l = Re(C Ā^l B̄), l < L, per channel: (H, L).
    ///
    /// For M = 2^⌈log₂ L⌉ nodes z_k = exp(−2πik/M), the truncated generating function is
    /// Σ_{l<M} C Ā^l B̄ z^l = C̃ (I − zĀ)⁻¹ B̄ with C̃ = C (I − Ā^M) (z^M = 1), and for the bilinear Ā
    ///     C̃ (I − zĀ)⁻¹ B̄ = Δ · C̃ (αI − βA)⁻¹ B,   α = 1 − z,  β = (Δ/2)(1 + z)
    /// — the paper's (2/(1+z))·C̃ (g(z) − A)⁻¹ B with g = (2/Δ)(1−z)/(1+z), multiplied through by (1+z)
    /// so that z = −1 needs no special case. With A = Λ − q qᴴ, Woodbury gives
    ///     Δ·[k00 − β k01 k10 / (1 + β k11)],   k_ab = Σ_j a_j b_j / (α − βλ_j)
    /// over (a, b) ∈ {C̃, qᴴ} × {B, q} (a Cauchy kernel). K is the inverse FFT, truncated to L.
    /// C̃ is computed with M O(N) row products r ← r·Ā, in Double.
    public func kernel(length L: Int) -> [[Double]] {
        guard L > 0 else { return Array(repeating: [], count: H) }
        var M = 1
        while M < L { M <<= 1 }
        let plan = FFTPlan(size: M)
        return (0..<H).map { h in
            let l = S4Parameters.full(lambda[h]), q = S4Parameters.full(p[h])
            let B = S4Parameters.full(b[h]), C = S4Parameters.full(c[h])
            var r = C
            for _ in 0..<M { rowTimesDA(&r, lambda: l, q: q, dt: dt[h]) }
            let Ct = (0..<N).map { C[$0] - r[$0] }
            let half = dt[h] / 2
            var re = [Double](repeating: 0, count: M), im = [Double](repeating: 0, count: M)
            for k in 0...(M / 2) {
                let theta = -2 * Double.pi * Double(k) / Double(M)
                let z = Complex(Double.cos(theta), Double.sin(theta))
                let alpha = Complex<Double>(1, 0) - z, beta = (Complex<Double>(1, 0) + z) * half
                var k00 = Complex<Double>.zero, k01 = Complex<Double>.zero, k10 = Complex<Double>.zero, k11 = Complex<Double>.zero
                for j in 0..<N {
                    let w = Complex<Double>(1, 0) / (alpha - beta * l[j])
                    let cw = Ct[j] * w, qw = q[j].conjugate * w
                    k00 = k00 + cw * B[j]; k01 = k01 + cw * q[j]
                    k10 = k10 + qw * B[j]; k11 = k11 + qw * q[j]
                }
                let value = (k00 - beta * k01 * k10 / (Complex(1, 0) + beta * k11)) * dt[h]
                re[k] = value.real; im[k] = value.imaginary
                if k > 0 && k < M / 2 { re[M - k] = value.real; im[M - k] = -value.imaginary }
            }
            plan.transform(&re, &im, inverse: true)
            return (0..<L).map { re[$0] / Double(M) }
        }
    }

    /// Convolution mode from a zero state: Y = K ∗ U + D⊙U. U, Y: (L, H) row-major.
    public func convolve(_ U: [Scalar], length L: Int) -> [Scalar] {
        precondition(U.count == L * H, "convolve: U has \(U.count) values, expected L·H = \(L * H)")
        let inputs = (0..<H).map { i in (0..<L).map { Double(U[$0 * H + i]) } }
        let K = kernel(length: L)
        let kernels = (0..<H).map { o in (0..<H).map { $0 == o ? K[o] : [] } }
        let out = causalConvolution(kernels: kernels, inputs: inputs, length: L)
        var Y = [Scalar](repeating: 0, count: L * H)
        for o in 0..<H { for t in 0..<L { Y[t * H + o] = Scalar(out[o][t] + d[o] * inputs[o][t]) } }
        return Y
    }
}

// MARK: - The diagonalized layer

/// An S4 layer whose recurrence runs diagonalized on the scan core (`diagonal`, H·N complex lanes,
/// SISO, y = Re(C̃ z) + D u), with its DPLR step (`dplr`) and convolution mode (`parameters`).
/// Built by `S4.load`, which refuses ill-conditioned eigenvector bases (see `S4`).
///
/// Eigensolver: A (not Ā) is diagonalized, since Ā = r(A) with r(a) = (1 + Δa/2)/(1 − Δa/2) shares
/// its eigenvectors, and A's eigenvalues are O(1) apart while Ā's crowd within O(Δ) of 1. A general
/// complex Schur decomposition (Householder Hessenberg reduction, then single-shift QR with Wilkinson
/// shifts, all in Double) is backward stable, needs no assumption on P (a zero or tiny P_j, i.e. a
/// deflated pair, is handled like any other), and gives eigenvectors by back-substitution on the
/// triangular factor. The closed form of the rank-one structure — roots of the secular equation
/// 1 + Σ|q_j|²/(a − λ_j) = 0, eigenvectors (λ − a)⁻¹q — was not used: for a non-Hermitian diagonal
/// the roots are not interlaced, so there is no safe bracketing for the root finder, and it breaks
/// down as q_j → 0. Neither choice matters for accuracy where the diagonal form is admitted:
/// cond₂(V) ≤ 500 keeps the Double errors (≲ cond·1e-16) far below the float32 lanes' ε₃₂·cond.
/// B̃ = V⁻¹B̄ is an LU solve (partial pivoting) with V; C̃ = C V; V has unit columns.
public struct S4Layer: @unchecked Sendable {
    public let H: Int
    /// Full state size per channel (conjugate pairs included); the diagonal form has N lanes per channel.
    public let N: Int
    public let parameters: S4Parameters
    public let diagonal: DiagonalSSM
    /// The O(N) DPLR step (always accurate; see `S4`).
    public let dplr: DPLRSSM
    /// cond₂(V) per channel (V with unit columns): max/min singular value.
    public let conditionNumbers: [Double]
    /// Eigenvectors per channel, N×N row-major (column i belongs to lane i), and eigenvalues of A.
    public let eigenvectors: [[Complex<Double>]]
    public let eigenvalues: [[Complex<Double>]]
    /// The arena holding the weights of `diagonal` and `dplr`, kept alive with the layer.
    let arena: Arena

    /// Floats of recurrent state of the diagonal form (2·H·N).
    public var stateCount: Int { diagonal.stateCount }
    public var scratchCount: Int { diagonal.scratchCount }

    init(_ params: S4Parameters, arena: Arena, maxConditionNumber: Double) throws(ModelError) {
        let H = params.H, N = params.N
        var cache: [(lambda: [Complex<Double>], p: [Complex<Double>], eig: ChannelEigen)] = []
        var mu = [Complex<Double>](), bt = [Complex<Double>](), ct = [Complex<Double>]()
        var conds = [Double](), vecs = [[Complex<Double>]](), vals = [[Complex<Double>]]()
        for h in 0..<H {
            let eig: ChannelEigen
            if let hit = cache.first(where: { $0.lambda == params.lambda[h] && $0.p == params.p[h] }) {
                eig = hit.eig
            } else {
                guard let e = ChannelEigen(params.stateMatrix(h)) else {
                    throw ModelError("s4: channel \(h): the eigenvalue iteration for the N = \(N) state matrix did not converge")
                }
                eig = e
                cache.append((params.lambda[h], params.p[h], e))
            }
            guard eig.condition <= maxConditionNumber else {
                throw ModelError("s4: channel \(h): the diagonalized recurrence needs an eigenvector basis with condition number "
                                 + "\(shortDouble(eig.condition)) for N = \(N) (limit \(shortDouble(maxConditionNumber))); in float32 it would "
                                 + "lose about \(Int(Double.log10(max(eig.condition, 1)).rounded())) digits. Use the DPLR step (S4.loadDPLR) "
                                 + "or the convolution mode, or a smaller d_state")
            }
            let B = S4Parameters.full(params.b[h]), C = S4Parameters.full(params.c[h])
            let vinvB = eig.lu.solve(B)
            for i in 0..<N {
                let (m, f) = Discretization.bilinear.discretize(eig.values[i], dt: params.dt[h])
                mu.append(m)
                bt.append(f * vinvB[i])
                var s = Complex<Double>.zero
                for j in 0..<N { s = s + C[j] * eig.vectors[j, i] }
                ct.append(s)
            }
            conds.append(eig.condition)
            vecs.append((0..<(N * N)).map { eig.vectors[$0 / N, $0 % N] })
            vals.append(eig.values)
        }
        let diag = DiagonalSSM(statesPerChannel: N, lambdaBar: mu, bBar: bt, c: ct, outputScale: 1, d: params.d, arena: arena)
        guard diag.weightsAreFinite else {
            throw ModelError("s4: the diagonalized weights for N = \(N) are not finite float32 values (condition numbers up to "
                             + "\(shortDouble(conds.max() ?? .nan))); use the DPLR step (S4.loadDPLR)")
        }
        self.H = H; self.N = N; self.parameters = params; self.diagonal = diag
        self.dplr = DPLRSSM(params, arena: arena)
        self.conditionNumbers = conds; self.eigenvectors = vecs; self.eigenvalues = vals; self.arena = arena
    }

    /// The dense state x = V z of every channel from the diagonal state z (2·H·N floats, split
    /// [Re; Im] as the scan core keeps it): (H, N, 2) interleaved (re, im), in the golden `state_final`
    /// order (the N axis is conj order: the n stored entries, then their conjugates).
    public func denseState(_ z: UnsafePointer<Scalar>) -> [Scalar] {
        let P = H * N
        var out = [Scalar](repeating: 0, count: 2 * P)
        for h in 0..<H {
            for r in 0..<N {
                var sr = 0.0, si = 0.0
                for i in 0..<N {
                    let v = eigenvectors[h][r * N + i]
                    let zr = Double(z[h * N + i]), zi = Double(z[P + h * N + i])
                    sr += v.real * zr - v.imaginary * zi
                    si += v.real * zi + v.imaginary * zr
                }
                out[2 * (h * N + r)] = Scalar(sr); out[2 * (h * N + r) + 1] = Scalar(si)
            }
        }
        return out
    }

    /// Convolution kernel (H, L) in Double (see `S4Parameters.kernel`).
    public func kernel(length L: Int) -> [[Double]] { parameters.kernel(length: L) }
    /// Convolution mode from a zero state. U, Y: (L, H) row-major.
    public func convolve(_ U: [Scalar], length L: Int) -> [Scalar] { parameters.convolve(U, length: L) }
}

// MARK: - The DPLR step (O(N) per sample, on the scan core)

/// S4's DPLR recurrence in its O(N) form (upstream `_step_state_linear`), with the conjugate-symmetric
/// half state (n = N/2 complex lanes per channel). From Ā = (2/Δ − A)⁻¹(2/Δ + A), A = Λ − q qᴴ:
///
///     D = 1/(2/Δ − Λ),  E = 2/Δ + Λ,  Q = P̄,  R = Q∘D / (1 + 2Re Σ Q∘D∘P)
///     x_k = μ∘x_{k−1} + B̄ u_k − σ_k·v,   σ_k = 2Re(g·x_{k−1}) + β u_k
///     μ = D∘E (S4D's bilinear Λ̄),  B̄ = 2D∘B,  v = D∘P,
///     g = (1 − ρ)Q + R∘E,  ρ = 2Re Σ R∘P,  β = 4Re Σ R∘B
///     y_k = 2Re(C·x_k) + D u_k
///
/// (σ folds upstream's two rank-one contractions into one.) Per sample: a dot product for σ per
/// channel, then the scan core's diagonal `step` with b = B̄u − σv. Shapes: u, y (H); state,
/// scratch (2P), P = H·n, split [Re; Im].
public struct DPLRSSM: @unchecked Sendable {  // read-only weights after init
    public let H: Int
    /// Lanes per channel (N/2).
    public let n: Int
    public let P: Int
    public let parameters: S4Parameters
    /// The arena holding the weights, kept alive with the layer.
    let arena: Arena
    @usableFromInline let mu: UnsafeMutablePointer<Scalar>   // (2P)
    @usableFromInline let bw: UnsafeMutablePointer<Scalar>   // (2P) [Re B̄; Im B̄]
    @usableFromInline let vw: UnsafeMutablePointer<Scalar>   // (2P) [Re v; Im v]
    @usableFromInline let gw: UnsafeMutablePointer<Scalar>   // (2P) [2Re g; −2Im g]
    @usableFromInline let cw: UnsafeMutablePointer<Scalar>   // (2P) [2Re C; −2Im C]
    @usableFromInline let beta: UnsafeMutablePointer<Scalar> // (H)
    @usableFromInline let d: UnsafeMutablePointer<Scalar>    // (H)

    public var stateCount: Int { 2 * P }
    public var scratchCount: Int { 2 * P }
    /// Multiply-adds counted as 2 FLOPs, per sample: σ (4P), b (4P), scan step (8P), output (4P).
    public var flopsPerSample: Int { 20 * P + 4 * H }

    init(_ params: S4Parameters, arena: Arena) {
        let H = params.H, n = params.n, P = H * n
        self.H = H; self.n = n; self.P = P; self.parameters = params; self.arena = arena
        var m = [Complex<Double>](), bb = [Complex<Double>](), vv = [Complex<Double>](), gg = [Complex<Double>]()
        var be = [Double]()
        for h in 0..<H {
            let two = 2 / params.dt[h]
            let l = params.lambda[h], p = params.p[h], b = params.b[h]
            let D = l.map { Complex<Double>(1, 0) / (Complex(two, 0) - $0) }
            let E = l.map { Complex(two, 0) + $0 }
            let Q = p.map(\.conjugate)
            var kappa = 1.0
            for j in 0..<n { kappa += 2 * (Q[j] * D[j] * p[j]).real }
            let R = (0..<n).map { Q[$0] * D[$0] / kappa }
            var rho = 0.0, bet = 0.0
            for j in 0..<n { rho += 2 * (R[j] * p[j]).real; bet += 4 * (R[j] * b[j]).real }
            for j in 0..<n {
                m.append(D[j] * E[j]); bb.append(D[j] * b[j] * 2); vv.append(D[j] * p[j])
                gg.append(Q[j] * (1 - rho) + R[j] * E[j])
            }
            be.append(bet)
        }
        func split(_ x: [Complex<Double>], _ s: Double = 1, _ si: Double = 1) -> [Scalar] {
            x.map { Scalar(s * $0.real) } + x.map { Scalar(si * $0.imaginary) }
        }
        let c = params.c.flatMap { $0 }
        mu = arena.copy(split(m)); bw = arena.copy(split(bb)); vw = arena.copy(split(vv))
        gw = arena.copy(split(gg, 2, -2)); cw = arena.copy(split(c, 2, -2))
        beta = arena.copy(be.map { Scalar($0) }); d = arena.copy(params.d.map { Scalar($0) })
    }

    /// One sample: x ← μ∘x + B̄u − σv (σ from the previous x), y = 2Re(C x) + D u.
    /// u, y: (H); state, scratch: (2P). Two passes over the lanes, eight at a time: every channel's
    /// σ = β u + Σ gw·x first (into the scratch: no channel waits for its own σ's reduction), then
    /// per channel b = B̄u − σv, x ← μ⊙x + b and y's sum in one (the scan core's complex `step`
    /// fused with its input and output, as S4D's SISO step is).
    @inlinable
    public func step(_ u: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                     state x: UnsafeMutablePointer<Scalar>, scratch sigmas: UnsafeMutablePointer<Scalar>) {
        let P = self.P, n = self.n, n8 = n & ~7
        for ch in 0..<H {
            let o = ch * n, xr = x + o, xi = x + P + o, gr = gw + o, gi = gw + P + o
            var s8 = V8(), t8 = V8(), j = 0   // two chains: half the dependent FMA latency
            while j < n8 { s8 = s8.addingProduct(load8(gr + j), load8(xr + j)); t8 = t8.addingProduct(load8(gi + j), load8(xi + j)); j += 8 }
            var sigma = beta[ch] * u[ch] + (s8 + t8).sum()
            while j < n { sigma += gr[j] * xr[j] + gi[j] * xi[j]; j += 1 }
            sigmas[ch] = sigma
        }
        for ch in 0..<H {
            let o = ch * n, uc = u[ch], sigma = sigmas[ch]
            let xr = x + o, xi = x + P + o
            // b = B̄u − σv;  x ← μ ⊙ x + b;  y = D u + Σ (cw_re x_re + cw_im x_im).
            let br = bw + o, bi = bw + P + o, vr = vw + o, vi = vw + P + o, mr = mu + o, mi = mu + P + o
            let cr = cw + o, ci = cw + P + o
            let u8 = V8(repeating: uc), sg8 = V8(repeating: -sigma)
            var a8 = V8(), c8 = V8(), j = 0
            while j < n8 {
                let bre = (load8(br + j) * u8).addingProduct(sg8, load8(vr + j))
                let bim = (load8(bi + j) * u8).addingProduct(sg8, load8(vi + j))
                let hr = load8(xr + j), hi = load8(xi + j), ar = load8(mr + j), ai = load8(mi + j)
                let nr = bre.addingProduct(ar, hr).addingProduct(-ai, hi)
                let ni = bim.addingProduct(ar, hi).addingProduct(ai, hr)
                store8(nr, xr + j); store8(ni, xi + j)
                a8 = a8.addingProduct(load8(cr + j), nr); c8 = c8.addingProduct(load8(ci + j), ni)
                j += 8
            }
            var acc = d[ch] * uc + (a8 + c8).sum()
            while j < n {
                let bre = br[j] * uc - sigma * vr[j], bim = bi[j] * uc - sigma * vi[j]
                let hr = xr[j], hi = xi[j]
                let nr = mr[j] * hr - mi[j] * hi + bre, ni = mr[j] * hi + mi[j] * hr + bim
                xr[j] = nr; xi[j] = ni
                acc += cr[j] * nr + ci[j] * ni
                j += 1
            }
            y[ch] = acc
        }
    }

    /// A block of L samples: L steps. U, Y: (L, H); state (2P) carried in and out; scratch (2P).
    public func forward(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch: UnsafeMutablePointer<Scalar>) {
        for k in 0..<L { step(U + k * H, Y + k * H, state: state, scratch: scratch) }
    }

    /// The dense state conj(x) = concat(x, x̄) per channel: (H, N, 2) interleaved, golden `state_final` order.
    public func denseState(_ x: UnsafePointer<Scalar>) -> [Scalar] {
        var out = [Scalar]()
        out.reserveCapacity(4 * P)
        for h in 0..<H {
            for j in 0..<n { out += [x[h * n + j], x[P + h * n + j]] }
            for j in 0..<n { out += [x[h * n + j], -x[P + h * n + j]] }
        }
        return out
    }

    /// The half state as golden `state_final_linear`: (H, n, 2) interleaved.
    public func halfState(_ x: UnsafePointer<Scalar>) -> [Scalar] {
        (0..<P).flatMap { [x[$0], x[P + $0]] }
    }

    public var weightsAreFinite: Bool {
        func finite(_ p: UnsafeMutablePointer<Scalar>, _ count: Int) -> Bool {
            UnsafeBufferPointer(start: p, count: count).allSatisfy { $0.isFinite }
        }
        return [mu, bw, vw, gw, cw].allSatisfy { finite($0, 2 * P) } && finite(beta, H) && finite(d, H)
    }

    /// Convolution kernel (H, L) in Double and convolution mode (see `S4Parameters`).
    public func kernel(length L: Int) -> [[Double]] { parameters.kernel(length: L) }
    public func convolve(_ U: [Scalar], length L: Int) -> [Scalar] { parameters.convolve(U, length: L) }
}

private func shortDouble(_ x: Double) -> String {
    guard x.isFinite, x != 0 else { return "\(x)" }
    let e = Int(Double.log10(abs(x)).rounded(.down))
    let m = x / Double.pow(10, Double(e))
    let mr = (m * 10).rounded() / 10
    return e == 0 ? "\(mr)" : "\(mr)e\(e)"
}

// MARK: - Dense complex linear algebra in Double (for the diagonalization)

/// An n×n complex matrix, row-major, real and imaginary parts in separate arrays.
struct CMatrix {
    let n: Int
    var re: [Double]
    var im: [Double]

    init(n: Int) {
        self.n = n
        re = [Double](repeating: 0, count: n * n); im = [Double](repeating: 0, count: n * n)
    }

    static func identity(_ n: Int) -> CMatrix {
        var m = CMatrix(n: n)
        for i in 0..<n { m.re[i * n + i] = 1 }
        return m
    }

    subscript(i: Int, j: Int) -> Complex<Double> {
        get { Complex(re[i * n + j], im[i * n + j]) }
        set { re[i * n + j] = newValue.real; im[i * n + j] = newValue.imaginary }
    }
}

/// LU factorization with partial pivoting (by |re| + |im|).
struct CLU {
    let n: Int
    var re: [Double], im: [Double]
    var perm: [Int]

    init(_ A: CMatrix) {
        n = A.n; re = A.re; im = A.im; perm = Array(0..<A.n)
        let n = self.n
        re.withUnsafeMutableBufferPointer { rp in
            im.withUnsafeMutableBufferPointer { ip in
                let r = rp.baseAddress!, i = ip.baseAddress!
                for k in 0..<n {
                    var best = k, bestMag = -1.0
                    for row in k..<n {
                        let m = abs(r[row * n + k]) + abs(i[row * n + k])
                        if m > bestMag { bestMag = m; best = row }
                    }
                    if best != k {
                        for col in 0..<n {
                            swap(&r[k * n + col], &r[best * n + col]); swap(&i[k * n + col], &i[best * n + col])
                        }
                        perm.swapAt(k, best)
                    }
                    let pr = r[k * n + k], pi = i[k * n + k]
                    let den = pr * pr + pi * pi
                    if den == 0 { continue }
                    for row in (k + 1)..<max(n, k + 1) {
                        // l = a[row,k] / pivot
                        let ar = r[row * n + k], ai = i[row * n + k]
                        let lr = (ar * pr + ai * pi) / den, li = (ai * pr - ar * pi) / den
                        r[row * n + k] = lr; i[row * n + k] = li
                        if lr == 0 && li == 0 { continue }
                        for col in (k + 1)..<n {
                            let ur = r[k * n + col], ui = i[k * n + col]
                            r[row * n + col] -= lr * ur - li * ui
                            i[row * n + col] -= lr * ui + li * ur
                        }
                    }
                }
            }
        }
    }

    /// x with A x = b.
    func solve(_ b: [Complex<Double>]) -> [Complex<Double>] {
        var xr = perm.map { b[$0].real }, xi = perm.map { b[$0].imaginary }
        for row in 0..<n {
            for k in 0..<row {
                let lr = re[row * n + k], li = im[row * n + k]
                xr[row] -= lr * xr[k] - li * xi[k]; xi[row] -= lr * xi[k] + li * xr[k]
            }
        }
        var row = n - 1
        while row >= 0 {
            var sr = xr[row], si = xi[row]
            for k in (row + 1)..<max(n, row + 1) {
                let ur = re[row * n + k], ui = im[row * n + k]
                sr -= ur * xr[k] - ui * xi[k]; si -= ur * xi[k] + ui * xr[k]
            }
            let pr = re[row * n + row], pi = im[row * n + row], den = pr * pr + pi * pi
            xr[row] = (sr * pr + si * pi) / den; xi[row] = (si * pr - sr * pi) / den
            row -= 1
        }
        return (0..<n).map { Complex(xr[$0], xi[$0]) }
    }
}

/// Eigen-decomposition of one channel's A: eigenvalues, unit eigenvectors (columns of V), an LU of V
/// and cond₂(V).
struct ChannelEigen {
    let values: [Complex<Double>]
    let vectors: CMatrix
    let lu: CLU
    let condition: Double

    init?(_ A: CMatrix) {
        guard let (values, V) = ComplexEigen.decompose(A) else { return nil }
        self.values = values; self.vectors = V
        self.lu = CLU(V)
        let s = ComplexEigen.singularValues(V)
        let smax = s.max() ?? 0, smin = s.min() ?? 0
        self.condition = smin > 0 ? smax / smin : .infinity
    }
}

enum ComplexEigen {
    /// Eigenvalues and eigenvectors (unit 2-norm columns) of a general complex matrix: Householder
    /// reduction to Hessenberg form, single-shift QR (Wilkinson shifts, exceptional shifts every 10
    /// iterations) to the Schur form A = Z T Zᴴ, eigenvectors of T by back-substitution, V = Z Y.
    /// nil if QR does not converge in 60·n iterations.
    static func decompose(_ A: CMatrix) -> (values: [Complex<Double>], vectors: CMatrix)? {
        let n = A.n
        guard n > 0 else { return ([], CMatrix(n: 0)) }
        var T = A, Z = CMatrix.identity(n)
        let ok = T.re.withUnsafeMutableBufferPointer { trb in
            T.im.withUnsafeMutableBufferPointer { tib in
                Z.re.withUnsafeMutableBufferPointer { zrb in
                    Z.im.withUnsafeMutableBufferPointer { zib in
                        schur(n, trb.baseAddress!, tib.baseAddress!, zrb.baseAddress!, zib.baseAddress!)
                    }
                }
            }
        }
        guard ok else { return nil }
        // Eigenvectors of the upper triangular T: T y = t_ii y with y_i = 1, y_j = 0 for j > i.
        var norm = 0.0
        for k in 0..<(n * n) { norm = max(norm, abs(T.re[k]) + abs(T.im[k])) }
        let small = max(norm * Double.ulpOfOne, Double.leastNormalMagnitude)
        var V = CMatrix(n: n)
        var yr = [Double](repeating: 0, count: n), yi = [Double](repeating: 0, count: n)
        for i in 0..<n {
            for k in 0..<n { yr[k] = 0; yi[k] = 0 }
            yr[i] = 1
            let tr = T.re[i * n + i], ti = T.im[i * n + i]
            var j = i - 1
            while j >= 0 {
                var sr = 0.0, si = 0.0
                for k in (j + 1)...i {
                    let ar = T.re[j * n + k], ai = T.im[j * n + k]
                    sr += ar * yr[k] - ai * yi[k]; si += ar * yi[k] + ai * yr[k]
                }
                var dr = T.re[j * n + j] - tr, di = T.im[j * n + j] - ti
                if abs(dr) + abs(di) < small { dr = small; di = 0 }
                let den = dr * dr + di * di
                // y_j = −s / (t_jj − t_ii)
                yr[j] = -(sr * dr + si * di) / den; yi[j] = -(si * dr - sr * di) / den
                j -= 1
            }
            // v = Z y, normalized.
            var vr = [Double](repeating: 0, count: n), vi = [Double](repeating: 0, count: n)
            var s2 = 0.0
            for r in 0..<n {
                var ar = 0.0, ai = 0.0
                for k in 0...i {
                    let zr = Z.re[r * n + k], zi = Z.im[r * n + k]
                    ar += zr * yr[k] - zi * yi[k]; ai += zr * yi[k] + zi * yr[k]
                }
                vr[r] = ar; vi[r] = ai; s2 += ar * ar + ai * ai
            }
            let inv = 1 / s2.squareRoot()
            for r in 0..<n { V.re[r * n + i] = vr[r] * inv; V.im[r * n + i] = vi[r] * inv }
        }
        return ((0..<n).map { Complex(T.re[$0 * n + $0], T.im[$0 * n + $0]) }, V)
    }

    /// In place: H (n×n) → upper triangular T, Z ← Z·Q with A = Q T Qᴴ. False if QR did not converge.
    static func schur(_ n: Int, _ hr: UnsafeMutablePointer<Double>, _ hi: UnsafeMutablePointer<Double>,
                      _ zr: UnsafeMutablePointer<Double>, _ zi: UnsafeMutablePointer<Double>) -> Bool {
        // 1. Householder reduction to upper Hessenberg form.
        var vr = [Double](repeating: 0, count: n), vi = [Double](repeating: 0, count: n)
        for k in 0..<max(n - 2, 0) {
            let m = n - k - 1
            var x2 = 0.0
            for t in 0..<m { let i = k + 1 + t; x2 += hr[i * n + k] * hr[i * n + k] + hi[i * n + k] * hi[i * n + k] }
            let xn = x2.squareRoot()
            if xn == 0 { continue }
            let x0r = hr[(k + 1) * n + k], x0i = hi[(k + 1) * n + k], x0 = (x0r * x0r + x0i * x0i).squareRoot()
            let (pr, pi) = x0 > 0 ? (x0r / x0, x0i / x0) : (1.0, 0.0)
            let ar = -pr * xn, ai = -pi * xn          // α = −e^{i arg x0}‖x‖
            var v2 = 0.0
            for t in 0..<m {
                let i = k + 1 + t
                vr[t] = hr[i * n + k] - (t == 0 ? ar : 0); vi[t] = hi[i * n + k] - (t == 0 ? ai : 0)
                v2 += vr[t] * vr[t] + vi[t] * vi[t]
            }
            if v2 == 0 { continue }
            let vs = 1 / v2.squareRoot()
            for t in 0..<m { vr[t] *= vs; vi[t] *= vs }
            // H ← (I − 2vvᴴ) H on rows k+1..<n (columns k..<n).
            for j in k..<n {
                var wr = 0.0, wi = 0.0
                for t in 0..<m { let i = k + 1 + t; wr += vr[t] * hr[i * n + j] + vi[t] * hi[i * n + j]; wi += vr[t] * hi[i * n + j] - vi[t] * hr[i * n + j] }
                for t in 0..<m { let i = k + 1 + t; hr[i * n + j] -= 2 * (vr[t] * wr - vi[t] * wi); hi[i * n + j] -= 2 * (vr[t] * wi + vi[t] * wr) }
            }
            // H ← H (I − 2vvᴴ) and Z ← Z (I − 2vvᴴ) on columns k+1..<n.
            for (mr, mi) in [(hr, hi), (zr, zi)] {
                for i in 0..<n {
                    var wr = 0.0, wi = 0.0
                    for t in 0..<m { let j = k + 1 + t; wr += mr[i * n + j] * vr[t] - mi[i * n + j] * vi[t]; wi += mr[i * n + j] * vi[t] + mi[i * n + j] * vr[t] }
                    for t in 0..<m { let j = k + 1 + t; mr[i * n + j] -= 2 * (wr * vr[t] + wi * vi[t]); mi[i * n + j] -= 2 * (wi * vr[t] - wr * vi[t]) }
                }
            }
            hr[(k + 1) * n + k] = ar; hi[(k + 1) * n + k] = ai
            for i in (k + 2)..<n { hr[i * n + k] = 0; hi[i * n + k] = 0 }
        }
        // 2. Single-shift QR on the active block [lo, top], deflating from the bottom.
        var hnorm = 0.0
        for k in 0..<(n * n) { hnorm = max(hnorm, abs(hr[k]) + abs(hi[k])) }
        if hnorm == 0 { return true }
        let eps = Double.ulpOfOne
        var cs = [Double](repeating: 0, count: n), snr = [Double](repeating: 0, count: n), sni = [Double](repeating: 0, count: n)
        var top = n - 1, iter = 0, total = 0
        while top > 0 {
            var lo = top
            while lo > 0 {
                let s = abs(hr[(lo - 1) * n + lo - 1]) + abs(hi[(lo - 1) * n + lo - 1]) + abs(hr[lo * n + lo]) + abs(hi[lo * n + lo])
                if abs(hr[lo * n + lo - 1]) + abs(hi[lo * n + lo - 1]) <= eps * (s == 0 ? hnorm : s) {
                    hr[lo * n + lo - 1] = 0; hi[lo * n + lo - 1] = 0
                    break
                }
                lo -= 1
            }
            if lo == top { top -= 1; iter = 0; continue }
            iter += 1; total += 1
            if total > 60 * n { return false }
            // Shift: the eigenvalue of the trailing 2×2 closer to its last entry (Wilkinson).
            let a = Complex(hr[(top - 1) * n + top - 1], hi[(top - 1) * n + top - 1]), b = Complex(hr[(top - 1) * n + top], hi[(top - 1) * n + top])
            let c = Complex(hr[top * n + top - 1], hi[top * n + top - 1]), d = Complex(hr[top * n + top], hi[top * n + top])
            var shift: Complex<Double>
            if iter % 10 == 0 {
                shift = d + Complex(0.75 * (abs(c.real) + abs(c.imaginary)), 0)   // exceptional shift
            } else {
                let delta = (a - d) / 2, bc = b * c
                var s = Complex.sqrt(delta * delta + bc)
                if (delta + s).length < (delta - s).length { s = -s }
                let den = delta + s
                shift = den.length == 0 ? d : d - bc / den
            }
            for i in lo...top { hr[i * n + i] -= shift.real; hi[i * n + i] -= shift.imaginary }
            // Left Givens rotations G_k (rows k, k+1, columns k..<n): R = Gᴴ…(H − μI).
            for k in lo..<top {
                let xr = hr[k * n + k], xi = hi[k * n + k], yr = hr[(k + 1) * n + k], yi = hi[(k + 1) * n + k]
                let ax = (xr * xr + xi * xi).squareRoot(), ay = (yr * yr + yi * yi).squareRoot()
                let rr = (ax * ax + ay * ay).squareRoot()
                var c = 1.0, sr = 0.0, si = 0.0
                if rr > 0 {
                    if ax == 0 { c = 0; sr = yr / ay; si = -yi / ay }
                    else { c = ax / rr; let ur = xr / ax, ui = xi / ax; sr = (ur * yr + ui * yi) / rr; si = (ui * yr - ur * yi) / rr }
                }
                cs[k] = c; snr[k] = sr; sni[k] = si
                // [c s; −s̄ c] on rows k, k+1.
                for j in k..<n {
                    let pr = hr[k * n + j], pi = hi[k * n + j], qr = hr[(k + 1) * n + j], qi = hi[(k + 1) * n + j]
                    hr[k * n + j] = c * pr + sr * qr - si * qi
                    hi[k * n + j] = c * pi + sr * qi + si * qr
                    hr[(k + 1) * n + j] = -(sr * pr + si * pi) + c * qr
                    hi[(k + 1) * n + j] = -(sr * pi - si * pr) + c * qi
                }
            }
            // Right rotations (columns k, k+1) on H rows 0…k+1 and on Z: RQ.
            for k in lo..<top {
                let c = cs[k], sr = snr[k], si = sni[k]
                for (mr, mi, rows) in [(hr, hi, k + 2), (zr, zi, n)] {
                    for i in 0..<rows {
                        let pr = mr[i * n + k], pi = mi[i * n + k], qr = mr[i * n + k + 1], qi = mi[i * n + k + 1]
                        // new_k = p c + q s̄,  new_{k+1} = −p s + q c
                        mr[i * n + k] = c * pr + sr * qr + si * qi
                        mi[i * n + k] = c * pi + sr * qi - si * qr
                        mr[i * n + k + 1] = -(pr * sr - pi * si) + c * qr
                        mi[i * n + k + 1] = -(pr * si + pi * sr) + c * qi
                    }
                }
            }
            for i in lo...top { hr[i * n + i] += shift.real; hi[i * n + i] += shift.imaginary }
        }
        // Clear the strictly lower part (zero up to round-off after deflation).
        for i in 0..<n { for j in 0..<i { hr[i * n + j] = 0; hi[i * n + j] = 0 } }
        return true
    }

    /// Singular values by one-sided (Hestenes) Jacobi: rotate column pairs of a copy of M until all
    /// are orthogonal; the column norms are then the singular values. Accurate for the small ones too
    /// (unlike eigenvalues of MᴴM), so cond₂ is meaningful up to ~1e15.
    static func singularValues(_ M: CMatrix) -> [Double] {
        let n = M.n
        // Column-major copy: column j at [j*n ..< (j+1)*n].
        var cr = [Double](repeating: 0, count: n * n), ci = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { cr[j * n + i] = M.re[i * n + j]; ci[j * n + i] = M.im[i * n + j] } }
        cr.withUnsafeMutableBufferPointer { rb in
            ci.withUnsafeMutableBufferPointer { ib in
                let r = rb.baseAddress!, im = ib.baseAddress!
                for _ in 0..<80 {
                    var rotated = false
                    for p in 0..<n {
                        for q in (p + 1)..<max(n, p + 1) {
                            var a = 0.0, b = 0.0, gr = 0.0, gi = 0.0
                            for k in 0..<n {
                                let pr = r[p * n + k], pi = im[p * n + k], qr = r[q * n + k], qi = im[q * n + k]
                                a += pr * pr + pi * pi; b += qr * qr + qi * qi
                                gr += pr * qr + pi * qi; gi += pr * qi - pi * qr    // γ = v_pᴴ v_q
                            }
                            let g = (gr * gr + gi * gi).squareRoot()
                            if g <= 1e-15 * (a * b).squareRoot() || g == 0 { continue }
                            rotated = true
                            // With e^{iφ} = γ/|γ|, columns [v_p, e^{−iφ}… ] reduce to the real symmetric case.
                            let er = gr / g, ei = gi / g
                            let zeta = (b - a) / (2 * g)
                            let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                            let c = 1 / (1 + t * t).squareRoot(), s = c * t
                            for k in 0..<n {
                                let pr = r[p * n + k], pi = im[p * n + k]
                                // w = e^{−iφ} v_q  (so that v_pᴴ w = |γ| is real)
                                let qr0 = r[q * n + k], qi0 = im[q * n + k]
                                let wr = er * qr0 + ei * qi0, wi = er * qi0 - ei * qr0
                                r[p * n + k] = c * pr - s * wr; im[p * n + k] = c * pi - s * wi
                                r[q * n + k] = s * pr + c * wr; im[q * n + k] = s * pi + c * wi
                            }
                        }
                    }
                    if !rotated { break }
                }
            }
        }
        return (0..<n).map { j in
            var s = 0.0
            for k in 0..<n { s += cr[j * n + k] * cr[j * n + k] + ci[j * n + k] * ci[j * n + k] }
            return s.squareRoot()
        }
    }
}
