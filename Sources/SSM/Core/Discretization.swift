import ComplexModule
import RealModule

/// How a continuous-time diagonal system ẋ = Λx + Bu becomes x_k = Ā x_{k-1} + B̄ u_k at step Δ.
/// Everything is per eigenvalue (diagonal Λ), computed in Double and rounded once to Scalar.
///
/// | case            | Ā                          | B̄                           |
/// |-----------------|----------------------------|-----------------------------|
/// | euler           | 1 + ΔΛ                     | Δ B                         |
/// | backwardEuler   | (1 − ΔΛ)⁻¹                 | (1 − ΔΛ)⁻¹ Δ B              |
/// | bilinear        | (1 − ΔΛ/2)⁻¹ (1 + ΔΛ/2)    | (1 − ΔΛ/2)⁻¹ Δ B            |
/// | zoh             | exp(ΔΛ)                    | (ΔΛ)⁻¹ (exp(ΔΛ) − 1) Δ B    |
/// | none            | Λ (already discrete: LRU)  | B                           |
///
/// ZOH, bilinear and backward Euler are A-stable: Re Λ < 0 gives |Ā| < 1 for every Δ > 0. Forward
/// Euler is only stable for Δ < −2 Re Λ / |Λ|²; a model whose Ā leaves the unit disc is refused at load.
public enum Discretization: String, Codable, Sendable, CaseIterable {
    case euler
    case backwardEuler = "backward_euler"
    case bilinear
    case zoh
    case none

    /// Ā and the factor f with B̄ = f·B, for one eigenvalue Λ and step Δ.
    public func discretize(_ lambda: Complex<Double>, dt: Double) -> (a: Complex<Double>, bScale: Complex<Double>) {
        let z = lambda * dt
        let one = Complex<Double>(1, 0)
        switch self {
        case .euler:
            return (one + z, Complex(dt, 0))
        case .backwardEuler:
            let inv = one / (one - z)
            return (inv, inv * dt)
        case .bilinear:
            let inv = one / (one - z / 2)
            return (inv * (one + z / 2), inv * dt)
        case .zoh:
            let a = Complex.exp(z)
            // (exp(z) − 1)/Λ, with its limit Δ as z → 0 (expm1 keeps precision there).
            if z.length < 1e-8 { return (a, Complex(dt, 0) * (one + z / 2)) }
            let em1 = Complex(Double.expMinusOne(z.real) * Double.cos(z.imaginary) - 2 * Double.pow(Double.sin(z.imaginary / 2), 2),
                              Double.exp(z.real) * Double.sin(z.imaginary))
            return (a, em1 / lambda)
        case .none:
            return (lambda, one)
        }
    }

    /// Pullback of `discretize` for training: given the loss gradients of Ā and of f (as ∂/∂Re +
    /// i·∂/∂Im), the gradients of Λ (likewise) and of the real step Δ. Ā and f are holomorphic in Λ
    /// and in Δ, so g_Λ = conj(∂Ā/∂Λ)·g_Ā + conj(∂f/∂Λ)·g_f and g_Δ = Re(conj(∂Ā/∂Δ)·g_Ā + conj(∂f/∂Δ)·g_f), with
    ///
    /// | case          | ∂Ā/∂Λ   | ∂Ā/∂Δ   | ∂f/∂Λ              | ∂f/∂Δ  |  (z = ΔΛ, q = (1 − z/2)⁻¹ or (1 − z)⁻¹)
    /// |---------------|---------|---------|--------------------|--------|
    /// | euler         | Δ       | Λ       | 0                  | 1      |
    /// | backwardEuler | Δq²     | Λq²     | Δ²q²               | q²     |
    /// | bilinear      | Δq²     | Λq²     | Δ²q²/2             | q²     |
    /// | zoh           | ΔĀ      | ΛĀ      | (ΔĀ − f)/Λ         | Ā      |
    /// | none          | 1       | 0       | 0                  | 0      |
    public func pullback(_ lambda: Complex<Double>, dt: Double, gA: Complex<Double>, gF: Complex<Double>)
        -> (gLambda: Complex<Double>, gDt: Double) {
        let z = lambda * dt, one = Complex<Double>(1, 0), d = Complex<Double>(dt, 0)
        let daL: Complex<Double>, daD: Complex<Double>, dfL: Complex<Double>, dfD: Complex<Double>
        switch self {
        case .euler: daL = d; daD = lambda; dfL = .zero; dfD = one
        case .backwardEuler:
            let q = one / (one - z), q2 = q * q
            daL = d * q2; daD = lambda * q2; dfL = d * d * q2; dfD = q2
        case .bilinear:
            let q = one / (one - z / 2), q2 = q * q
            daL = d * q2; daD = lambda * q2; dfL = d * d * q2 / 2; dfD = q2
        case .zoh:
            let (a, f) = discretize(lambda, dt: dt)
            daL = d * a; daD = lambda * a; dfD = a
            if z.length < 1e-3 {
                // f = Δ·Σ zⁿ/(n+1)!, so ∂f/∂Λ = Δ²·Σ n·zⁿ⁻¹/(n+1)! (the quotient cancels badly near 0).
                let c3 = Complex<Double>(1.0 / 8, 0) + z / 30
                let c2 = Complex<Double>(1.0 / 3, 0) + z * c3
                dfL = d * d * (Complex<Double>(1.0 / 2, 0) + z * c2)
            } else {
                dfL = (d * a - f) / lambda
            }
        case .none: daL = one; daD = .zero; dfL = .zero; dfD = .zero
        }
        let gLambda = daL.conjugate * gA + dfL.conjugate * gF
        let gDt = (daD.conjugate * gA + dfD.conjugate * gF).real
        return (gLambda, gDt)
    }

    /// Whether Re Λ < 0 ⇒ |Ā| < 1 for every Δ > 0. Not for forward Euler, and not for `none`,
    /// whose Λ is already discrete (stable iff |Λ| < 1).
    public var isAStable: Bool { self != .euler && self != .none }
}
