import ComplexModule
import RealModule

/// S4D (Gu, Gupta, Goel, Ré 2022: "On the Parameterization and Initialization of Diagonal State
/// Space Models"): H independent SISO channels, each a diagonal system of N/2 complex lanes (one of
/// each conjugate pair, hence the factor 2):
///
///     Λ = −exp(A_real) − i·A_imag,  Δ = exp(inv_dt)                (FFTConv names)
///     Λ = −exp(log_A_real) + i·A_imag,  Δ = exp(log_dt), B = 1     (minimal S4D module names)
///     x_k = Λ̄ x_{k-1} + B̄ u_k,  y_k = 2·Re(Σ_n C_n x_{k,n}) + D u_k
///
/// Tensors (FFTConv, channels = 1): kernel.inv_dt (H,1) · kernel.A_real, kernel.A_imag (H,N/2) ·
/// kernel.B, kernel.C (1,H,N/2,2) · D (1,H). Minimal: kernel.log_dt (H) · kernel.log_A_real,
/// kernel.A_imag (H,N/2) · kernel.C (H,N/2,2) · D (H).
public enum S4D {
    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> DiagonalSSM {
        let H = spec.dModel, n = spec.dState / 2
        guard n >= 1 else { throw ModelError("s4d: d_state must be at least 2 (got \(spec.dState))") }
        let disc = spec.discretization ?? .zoh
        let minimal = (spec.parametrization ?? "fftconv") == "minimal"
        guard minimal || spec.parametrization == nil || spec.parametrization == "fftconv" else {
            throw ModelError("s4d: unknown parametrization '\(spec.parametrization!)' (fftconv | minimal)")
        }
        let logDt = try r.take(p + (minimal ? "kernel.log_dt" : "kernel.inv_dt"), minimal ? [H] : [H, 1])
        let aRe = try r.take(p + (minimal ? "kernel.log_A_real" : "kernel.A_real"), [H, n])
        let aIm = try r.take(p + "kernel.A_imag", [H, n])
        let B = minimal ? nil : try r.takeComplex(p + "kernel.B", [1, H, n])
        let C = try r.takeComplex(p + "kernel.C", minimal ? [H, n] : [1, H, n])
        let D = try r.take(p + "D", minimal ? [H] : [1, H])
        var lam = [Complex<Double>](), bBar = [Complex<Double>](), c = [Complex<Double>]()
        for h in 0..<H {
            let dt = Double.exp(Double(logDt[h]))
            for j in 0..<n {
                let i = h * n + j
                let L = Complex(-Double.exp(Double(aRe[i])), (minimal ? 1 : -1) * Double(aIm[i]))
                let (a, f) = disc.discretize(L, dt: dt)
                lam.append(a)
                bBar.append(f * (B.map { Complex($0[i].re, $0[i].im) } ?? Complex(1, 0)))
                c.append(Complex(C[i].re, C[i].im))
            }
        }
        return DiagonalSSM(statesPerChannel: n, lambdaBar: lam, bBar: bBar, c: c, outputScale: 2,
                           d: D.map(Double.init), arena: arena)
    }

    /// A fresh layer in FFTConv names: Λ from `spec.initialization` (legs | lin | inv | real, default
    /// legs), B from the init (HiPPO B for legs, 1 otherwise), C ~ complex N(0, 1), D ~ N(0, 1),
    /// log Δ ~ U[log dt_min, log dt_max].
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        let H = spec.dModel, N = spec.dState, n = N / 2
        let lambda: [Complex<Double>], B: [Complex<Double>]
        switch spec.initialization ?? "legs" {
        case "legs":
            let (l, V) = Initialization.hippoLegSNormal(N)
            // As upstream: Im B clipped to ±2.
            lambda = l; B = Initialization.hippoLegSB(V).map { Complex($0.real, min(max($0.imaginary, -2), 2)) }
        case "lin": lambda = Initialization.s4dLin(N); B = Array(repeating: Complex(1, 0), count: n)
        case "inv": lambda = Initialization.s4dInv(N); B = Array(repeating: Complex(1, 0), count: n)
        case "real":
            lambda = Initialization.s4dReal(n).map { Complex($0, 0) }; B = Array(repeating: Complex(1, 0), count: n)
        case let other: throw ModelError("s4d: unknown init '\(other)' (legs | lin | inv | real)")
        }
        var t: [String: Tensor] = [:]
        let (lo, hi) = (spec.dtMin ?? 1e-3, spec.dtMax ?? 1e-1)
        t["kernel.inv_dt"] = Tensor((0..<H).map { _ in Double.log(rng.logUniform(lo, hi)) }, shape: [H, 1])
        t["kernel.A_real"] = Tensor((0..<H).flatMap { _ in lambda.map { Double.log(-$0.real) } }, shape: [H, n])
        t["kernel.A_imag"] = Tensor((0..<H).flatMap { _ in lambda.map { -$0.imaginary } }, shape: [H, n])
        t["kernel.B"] = Tensor((0..<H).flatMap { _ in B.flatMap { [$0.real, $0.imaginary] } }, shape: [1, H, n, 2])
        t["kernel.C"] = Tensor((0..<(H * n * 2)).map { _ in rng.normal() * Double.sqrt(0.5) }, shape: [1, H, n, 2])
        t["D"] = Tensor((0..<H).map { _ in rng.normal() }, shape: [1, H])
        return t
    }
}
