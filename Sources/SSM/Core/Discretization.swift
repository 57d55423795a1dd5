import ComplexModule
import RealModule

/// How a continuous-time diagonal system ẋ = Λx + Bu becomes x_k = Ā x_{k-1} + B̄ u_k at step Δ.
/// Everything is per eigenvalue (diagonal Λ), computed in Double and rounded once to Float.
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

    /// Whether Re Λ < 0 ⇒ |Ā| < 1 for every Δ > 0. Not for forward Euler, and not for `none`,
    /// whose Λ is already discrete (stable iff |Λ| < 1).
    public var isAStable: Bool { self != .euler && self != .none }
}
