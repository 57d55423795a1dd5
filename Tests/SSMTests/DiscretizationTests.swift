// Discretization against the closed forms, written out here in Double with the test's own complex
// arithmetic, and the A-stability claim of each rule checked numerically.

import Foundation
import Testing
@testable import SSM

/// (Ā, f) with B̄ = f·B from the textbook formulas (Cx arithmetic, independent of the package).
private func closedForm(_ d: Discretization, _ l: Cx, _ dt: Double) -> (a: Cx, f: Cx) {
    let z = dt * l, one = Cx(1)
    switch d {
    case .euler: return (one + z, Cx(dt))
    case .backwardEuler: return (one / (one - z), Cx(dt) / (one - z))
    case .bilinear: return ((one + 0.5 * z) / (one - 0.5 * z), Cx(dt) / (one - 0.5 * z))
    case .zoh: return (Cx.exp(z), (Cx.exp(z) - one) / l)
    case .none: return (l, one)
    }
}

private func discretize(_ d: Discretization, _ l: Cx, _ dt: Double) -> (a: Cx, f: Cx) {
    let r = d.discretize(.init(l.re, l.im), dt: dt)
    return (Cx(r.a.real, r.a.imaginary), Cx(r.bScale.real, r.bScale.imaginary))
}

private func relDiff(_ x: Cx, _ y: Cx) -> Double { (x - y).abs / max(y.abs, 1e-300) }

private let sampleLambdas: [Cx] = [Cx(-0.5, 0), Cx(-0.5, -Double.pi), Cx(-0.5, 3 * Double.pi), Cx(-1, 0), Cx(-2, 10), Cx(-1e-3, -100), Cx(-10, 0.5)]
private let sampleDts: [Double] = [1e-3, 1e-2, 0.1, 0.5, 1]

/// Δ ∈ logspace(1e-4, 1e2): 121 points, 20 per decade.
private let logspaceDts: [Double] = (0...120).map { pow(10, -4 + Double($0) / 20) }

@Suite("Discretization")
struct DiscretizationTests {
    @Test("Ā and B̄ match the closed forms", arguments: Discretization.allCases)
    func closedForms(_ d: Discretization) {
        for l in sampleLambdas {
            for dt in sampleDts {
                let got = discretize(d, l, dt), want = closedForm(d, l, dt)
                // The naive e^z − 1 of the reference loses ~eps/|z| relative; allow for it.
                let tol = 1e-13 + 4e-16 / min((dt * l).abs, 1)
                #expect(relDiff(got.a, want.a) <= 1e-13, "\(d) Ā for Λ=\(l), Δ=\(dt): \(got.a) vs \(want.a)")
                #expect(relDiff(got.f, want.f) <= tol, "\(d) B̄/B for Λ=\(l), Δ=\(dt): \(got.f) vs \(want.f)")
            }
        }
    }

    @Test("explicit values")
    func explicitValues() {
        // Euler, Λ = −1 + 2i, Δ = 0.25: Ā = 0.75 + 0.5i.
        let e = discretize(.euler, Cx(-1, 2), 0.25)
        #expect(relDiff(e.a, Cx(0.75, 0.5)) < 1e-15 && relDiff(e.f, Cx(0.25)) < 1e-15)
        // Backward Euler, Λ = −1, Δ = 1: Ā = 1/2, B̄/B = 1/2.
        let be = discretize(.backwardEuler, Cx(-1), 1)
        #expect(relDiff(be.a, Cx(0.5)) < 1e-15 && relDiff(be.f, Cx(0.5)) < 1e-15)
        // Bilinear, Λ = −2, Δ = 1: Ā = 0/2 = 0, B̄/B = 1/2.
        let bl = discretize(.bilinear, Cx(-2), 1)
        #expect(bl.a.abs < 1e-15 && relDiff(bl.f, Cx(0.5)) < 1e-15)
        // ZOH, Λ = −iπ, Δ = 1: Ā = e^{−iπ} = −1, B̄/B = (−1 − 1)/(−iπ) = −2i/π.
        let z = discretize(.zoh, Cx(0, -Double.pi), 1)
        #expect(relDiff(z.a, Cx(-1, 0)) < 1e-15 && relDiff(z.f, Cx(0, -2 / Double.pi)) < 1e-14)
        // ZOH, Λ = −ln 2, Δ = 1: Ā = 1/2, B̄/B = (1/2 − 1)/(−ln 2) = 1/(2 ln 2).
        let z2 = discretize(.zoh, Cx(-log(2.0)), 1)
        #expect(relDiff(z2.a, Cx(0.5)) < 1e-15 && relDiff(z2.f, Cx(1 / (2 * log(2.0)))) < 1e-15)
        // none: Ā = Λ, B̄ = B.
        let n = discretize(.none, Cx(0.3, -0.4), 123)
        #expect(n.a == Cx(0.3, -0.4) && n.f == Cx(1))
    }

    /// (e^{ΔΛ} − 1)/Λ → Δ(1 + z/2 + z²/6 + …) as z = ΔΛ → 0; computed naively it loses all digits.
    @Test("ZOH's B̄ keeps full precision as ΔΛ → 0")
    func zohSmallLimit() {
        for l in [Cx(-0.5, -Double.pi), Cx(-1, 0), Cx(-1e-3, 2), Cx(0, -1)] {
            for dt in [1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-15] {
                let z = dt * l
                // Taylor series to z⁴: error O(z⁵) ≤ 1e-19 relative here.
                let series = dt * (Cx(1) + 0.5 * z + (1.0 / 6) * (z * z) + (1.0 / 24) * (z * z * z) + (1.0 / 120) * (z * z * z * z))
                let got = discretize(.zoh, l, dt)
                #expect(relDiff(got.f, series) <= 1e-13, "ZOH B̄/B for Λ=\(l), Δ=\(dt): \(got.f) vs \(series)")
                #expect(relDiff(got.a, Cx.exp(z)) <= 1e-15)
            }
        }
        // The exact limit Δ·1 at Λ → 0 itself is finite (no 0/0).
        let zero = discretize(.zoh, Cx(0, 0), 0.1)
        #expect(zero.f.re.isFinite && zero.f.im.isFinite)
        #expect(relDiff(zero.f, Cx(0.1)) < 1e-15)
    }

    @Test("ZOH, bilinear, backward Euler: Re Λ < 0 ⇒ |Ā| < 1 for Δ ∈ logspace(1e-4, 1e2)",
          arguments: [Discretization.zoh, .bilinear, .backwardEuler])
    func aStable(_ d: Discretization) {
        #expect(d.isAStable)
        let reals = [-1e-3, -0.05, -0.5, -1, -10, -100]
        let imags = [0, 1, -1, 10 * Double.pi, -10 * Double.pi, 1000, -1000]
        for re in reals {
            for im in imags {
                for dt in logspaceDts {
                    let a = discretize(d, Cx(re, im), dt).a
                    if !(a.abs < 1) { Issue.record("\(d): |Ā| = \(a.abs) for Λ = \(Cx(re, im)), Δ = \(dt)") }
                }
            }
        }
    }

    @Test("forward Euler is not A-stable: some Re Λ < 0 and Δ give |Ā| > 1")
    func eulerNotAStable() {
        #expect(!Discretization.euler.isAStable)
        // Λ = −1: |1 − Δ| > 1 once Δ > 2.
        let bad = logspaceDts.filter { discretize(.euler, Cx(-1), $0).a.abs > 1 }
        #expect(!bad.isEmpty)
        #expect(bad.allSatisfy { $0 > 2 }, "Euler, Λ = −1 unstable only for Δ > 2, got \(bad.prefix(3))")
        // Λ = −0.5 + 10i: |1 + ΔΛ| < 1 exactly when Δ < −2 Re Λ/|Λ|² (≈ 0.00998).
        let l = Cx(-0.5, 10), limit = -2 * l.re / (l.abs * l.abs)
        for dt in logspaceDts {
            let mag = discretize(.euler, l, dt).a.abs
            if dt < limit * 0.999 { #expect(mag < 1, "Δ = \(dt) below the limit \(limit)") }
            if dt > limit * 1.001 { #expect(mag > 1, "Δ = \(dt) above the limit \(limit)") }
        }
    }

    /// `isAStable` is documented as "Re Λ < 0 ⇒ |Ā| < 1 for every Δ > 0". Check that claim for every
    /// case: a rule that claims it must hold on the whole grid, one that does not must break somewhere.
    @Test("isAStable is honest for every case")
    func isAStableHonest() {
        for d in Discretization.allCases {
            var violated = false
            for re in [-1e-3, -0.5, -1, -3] {
                for im in [0.0, 1, 100] {
                    for dt in logspaceDts where discretize(d, Cx(re, im), dt).a.abs >= 1 { violated = true }
                }
            }
            #expect(d.isAStable == !violated, "\(d): isAStable \(d.isAStable), violated \(violated)")
        }
    }
}
