import ComplexModule
import RealModule

/// LRU (Orvieto et al. 2023: "Resurrecting Recurrent Neural Networks for Long Sequences"), directly
/// parametrized in discrete time (no discretization):
///
///     λ = exp(−exp(nu_log) + i·exp(theta_log)),  B_n = (B_re + i B_im) · exp(gamma_log)[:, None]
///     h_k = λ ⊙ h_{k-1} + B_n u_k,  y_k = Re(C h_k) + D ⊙ u_k      (no factor 2)
///
/// γ = exp(gamma_log) is a free parameter (initialized to √(1 − |λ|²), not recomputed).
/// Tensors (minimal-LRU names): nu_log, theta_log, gamma_log (N) · B_re, B_im (N,H) · C_re, C_im (H,N) · D (H).
public enum LRU {
    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> DiagonalSSM {
        let H = spec.dModel, N = spec.dState
        let nu = try r.take(p + "nu_log", [N]), theta = try r.take(p + "theta_log", [N])
        let gamma = try r.take(p + "gamma_log", [N])
        let bre = try r.take(p + "B_re", [N, H]), bim = try r.take(p + "B_im", [N, H])
        let cre = try r.take(p + "C_re", [H, N]), cim = try r.take(p + "C_im", [H, N])
        let D = try r.take(p + "D", [H])
        var lam = [Complex<Double>](), bTilde = [[Complex<Double>]](), c = [[Complex<Double>]](), gammas = [Complex<Double>]()
        for n in 0..<N {
            let logLambda = Complex<Double>(-Double.exp(Double(nu[n])), Double.exp(Double(theta[n])))
            lam.append(Complex.exp(logLambda))
            gammas.append(Complex(Double.exp(Double(gamma[n])), 0))
            bTilde.append((0..<H).map { h in Complex<Double>(Double(bre[n * H + h]), Double(bim[n * H + h])) })
        }
        for h in 0..<H {
            c.append((0..<N).map { n in Complex<Double>(Double(cre[h * N + n]), Double(cim[h * N + n])) })
        }
        // B̄ = γ ⊙ B per lane, formed inside: B may stay in half precision.
        return DiagonalSSM(lambdaBar: lam, bBar: bTilde, c: c, outputScale: 1, d: D.map { Double($0) }, inputScale: gammas,
                           half: (r.isHalf(p + "B_re") || r.isHalf(p + "B_im"), r.isHalf(p + "C_re") || r.isHalf(p + "C_im")), arena: arena)
    }

    /// Pullback of `load`: engine gradient → the file's tensors, by name. With λ = exp(−e^ν + i·e^θ):
    /// g_ν = −e^ν·Re(conj(λ)·g_λ), g_θ = e^θ·Im(conj(λ)·g_λ); B̄ = B·γ: g_B = γ·g_B̄,
    /// g_gamma_log = γ·Σ_h Re(conj(B)·g_B̄); C, D directly.
    public static func pullback(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, gradient g: DiagonalSSM) throws(ModelError) -> [String: [Scalar]] {
        let H = spec.dModel, N = spec.dState
        let nu = try r.take(p + "nu_log", [N]), theta = try r.take(p + "theta_log", [N])
        let gamma = try r.take(p + "gamma_log", [N])
        let bre = try r.take(p + "B_re", [N, H]), bim = try r.take(p + "B_im", [N, H])
        let e = g.complexGradients(outputScale: 1)
        var gNu = [Scalar](), gTheta = [Scalar](), gGamma = [Scalar]()
        var gBre = [Scalar](repeating: 0, count: N * H), gBim = gBre
        for n in 0..<N {
            let en = Double.exp(Double(nu[n])), et = Double.exp(Double(theta[n]))
            let lam = Complex.exp(Complex<Double>(-en, et))
            let q = lam.conjugate * e.lambda[n]
            gNu.append(Scalar(-en * q.real)); gTheta.append(Scalar(et * q.imaginary))
            let gm = Double.exp(Double(gamma[n]))
            var sg = 0.0
            for h in 0..<H {
                let gb = e.b[n][h]
                gBre[n * H + h] = Scalar(gm * gb.real); gBim[n * H + h] = Scalar(gm * gb.imaginary)
                sg += Double(bre[n * H + h]) * gb.real + Double(bim[n * H + h]) * gb.imaginary
            }
            gGamma.append(Scalar(gm * sg))
        }
        return [
            "nu_log": gNu, "theta_log": gTheta, "gamma_log": gGamma, "B_re": gBre, "B_im": gBim,
            "C_re": (0..<H).flatMap { h in (0..<N).map { Scalar(e.c[h][$0].real) } },
            "C_im": (0..<H).flatMap { h in (0..<N).map { Scalar(e.c[h][$0].imaginary) } },
            "D": e.d.map { Scalar($0) },
        ]
    }

    /// The tensors with their own learning rate and no weight decay (the LRU paper: λ, γ and B).
    public static let ssmParameters: Set<String> = ["nu_log", "theta_log", "gamma_log", "B_re", "B_im"]

    /// A fresh layer: ring init (r_min, r_max, max_phase; defaults 0.9, 0.999, π/10),
    /// B ~ N(0,1)/√(2H), C ~ N(0,1)/√N, D ~ N(0,1).
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        let H = spec.dModel, N = spec.dState
        let rMin = spec.rMin ?? 0.9, rMax = spec.rMax ?? 0.999, phase = spec.maxPhase ?? Double.pi / 10
        guard 0 <= rMin, rMin < rMax, rMax < 1 else {
            throw ModelError("lru: ring init needs 0 ≤ r_min < r_max < 1 (got r_min \(rMin), r_max \(rMax))")
        }
        let (nu, theta, gamma) = Initialization.lruRing(N, rMin: rMin, rMax: rMax, maxPhase: phase, rng: &rng)
        func normal(_ count: Int, _ scale: Double) -> [Double] { (0..<count).map { _ in rng.normal() * scale } }
        return [
            "nu_log": Tensor(nu, shape: [N]), "theta_log": Tensor(theta, shape: [N]), "gamma_log": Tensor(gamma, shape: [N]),
            "B_re": Tensor(normal(N * H, 1 / Double.sqrt(2 * Double(H))), shape: [N, H]),
            "B_im": Tensor(normal(N * H, 1 / Double.sqrt(2 * Double(H))), shape: [N, H]),
            "C_re": Tensor(normal(H * N, 1 / Double.sqrt(Double(N))), shape: [H, N]),
            "C_im": Tensor(normal(H * N, 1 / Double.sqrt(Double(N))), shape: [H, N]),
            "D": Tensor(normal(H, 1), shape: [H]),
        ]
    }
}
