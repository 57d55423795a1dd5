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
                           d: D.map { Double($0) }, arena: arena)
    }

    /// Pullback of `load` (see S5.pullback): engine gradient → the file's tensors, by name. With
    /// Λ = −exp(A_real) ∓ i·A_imag: g_A_real = −exp(A_real)·Re g_Λ, g_A_imag = ∓Im g_Λ; Δ is per
    /// channel, so g_inv_dt[h] = Δ_h·Σ_j g_Δ[h, j]; B̄ = f·B (f alone in the minimal form).
    public static func pullback(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, gradient g: DiagonalSSM) throws(ModelError) -> [String: [Scalar]] {
        let H = spec.dModel, n = spec.dState / 2
        let disc = spec.discretization ?? .zoh
        let minimal = (spec.parametrization ?? "fftconv") == "minimal"
        let logDt = try r.take(p + (minimal ? "kernel.log_dt" : "kernel.inv_dt"), minimal ? [H] : [H, 1])
        let aRe = try r.take(p + (minimal ? "kernel.log_A_real" : "kernel.A_real"), [H, n])
        let aIm = try r.take(p + "kernel.A_imag", [H, n])
        let B = minimal ? nil : try r.takeComplex(p + "kernel.B", [1, H, n])
        let e = g.complexGradients(outputScale: 2)
        let sign: Double = minimal ? 1 : -1
        var gDt = [Scalar](), gRe = [Scalar](), gIm = [Scalar](), gB = [Scalar](), gC = [Scalar]()
        for h in 0..<H {
            let dt = Double.exp(Double(logDt[h]))
            var sumDt = 0.0
            for j in 0..<n {
                let i = h * n + j
                let er = Double.exp(Double(aRe[i]))
                let lam = Complex(-er, sign * Double(aIm[i]))
                let (_, f) = disc.discretize(lam, dt: dt)
                let gb = e.b[i][0]
                let b = B.map { Complex($0[i].re, $0[i].im) } ?? Complex(1, 0)
                if B != nil { let gBt = f.conjugate * gb; gB += [Scalar(gBt.real), Scalar(gBt.imaginary)] }
                let (gl, gd) = disc.pullback(lam, dt: dt, gA: e.lambda[i], gF: b.conjugate * gb)
                gRe.append(Scalar(-er * gl.real)); gIm.append(Scalar(sign * gl.imaginary))
                sumDt += gd
                gC += [Scalar(e.c[0][i].real), Scalar(e.c[0][i].imaginary)]
            }
            gDt.append(Scalar(dt * sumDt))
        }
        var out: [String: [Scalar]] = [
            minimal ? "kernel.log_dt" : "kernel.inv_dt": gDt, minimal ? "kernel.log_A_real" : "kernel.A_real": gRe,
            "kernel.A_imag": gIm, "kernel.C": gC, "D": e.d.map { Scalar($0) },
        ]
        if !minimal { out["kernel.B"] = gB }
        return out
    }

    /// The tensors with their own learning rate and no weight decay (the S4 papers' "SSM parameters").
    public static let ssmParameters: Set<String> = ["kernel.inv_dt", "kernel.log_dt", "kernel.A_real", "kernel.log_A_real",
                                                    "kernel.A_imag", "kernel.B"]

    /// A fresh layer in FFTConv names (or the minimal module's, with `"parametrization": "minimal"`): Λ from `spec.initialization` (legs | lin | inv | real, default
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
        let logDt = (0..<H).map { _ in Double.log(rng.logUniform(lo, hi)) }
        let C = (0..<(H * n * 2)).map { _ in rng.normal() * Double.sqrt(0.5) }
        let D = (0..<H).map { _ in rng.normal() }
        if spec.parametrization == "minimal" {
            // The minimal module: Λ = −exp(log_A_real) + i·A_imag, B = 1 (so B's init is dropped).
            t["kernel.log_dt"] = Tensor(logDt, shape: [H])
            t["kernel.log_A_real"] = Tensor((0..<H).flatMap { _ in lambda.map { Double.log(-$0.real) } }, shape: [H, n])
            t["kernel.A_imag"] = Tensor((0..<H).flatMap { _ in lambda.map { $0.imaginary } }, shape: [H, n])
            t["kernel.C"] = Tensor(C, shape: [H, n, 2])
            t["D"] = Tensor(D, shape: [H])
            return t
        }
        t["kernel.inv_dt"] = Tensor(logDt, shape: [H, 1])
        t["kernel.A_real"] = Tensor((0..<H).flatMap { _ in lambda.map { Double.log(-$0.real) } }, shape: [H, n])
        t["kernel.A_imag"] = Tensor((0..<H).flatMap { _ in lambda.map { -$0.imaginary } }, shape: [H, n])
        t["kernel.B"] = Tensor((0..<H).flatMap { _ in B.flatMap { [$0.real, $0.imaginary] } }, shape: [1, H, n, 2])
        t["kernel.C"] = Tensor(C, shape: [1, H, n, 2])
        t["D"] = Tensor(D, shape: [1, H])
        return t
    }
}
