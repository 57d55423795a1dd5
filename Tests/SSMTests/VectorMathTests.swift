// The vectorized gate functions (exp8, log8, sigmoid8, softplus8 and the VectorMath buffer forms)
// against Double libm over dense grids of float inputs: the reference is evaluated at the exact
// float input, so every difference is the kernel's own error. The buffer forms are also checked
// for their scalar tail (lengths that are not multiples of 8) and for not writing past n.

import Foundation
import Testing
@testable import SSM

// MARK: - Grids and error measures

/// n floats evenly spaced over [lo, hi], both ends included.
private func linearGrid(_ lo: Double, _ hi: Double, _ n: Int) -> [Float] {
    (0..<n).map { Float(lo + (hi - lo) * Double($0) / Double(n - 1)) }
}

/// n floats evenly spaced in log over [lo, hi] (lo, hi > 0), both ends included.
private func logGrid(_ lo: Double, _ hi: Double, _ n: Int) -> [Float] {
    let a = log(lo), b = log(hi)
    return (0..<n).map { Float(exp(a + (b - a) * Double($0) / Double(n - 1))) }
}

/// Runs an 8-lane kernel over xs (the last partial vector padded with `pad`).
private func kernel(_ xs: [Float], pad: Float = 1, _ f: (V8) -> V8) -> [Float] {
    var out = [Float]()
    out.reserveCapacity(xs.count)
    var i = 0
    while i < xs.count {
        var v = V8(repeating: pad)
        let n = min(8, xs.count - i)
        for j in 0..<n { v[j] = xs[i + j] }
        let r = f(v)
        for j in 0..<n { out.append(r[j]) }
        i += 8
    }
    return out
}

/// Runs a VectorMath buffer function over a copy of xs.
private func buffer(_ xs: [Float], _ f: (UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
    var y = xs
    y.withUnsafeMutableBufferPointer { f($0.baseAddress!, $0.count) }
    return y
}

/// The worst point of a comparison, for the failure message.
private struct Worst: CustomStringConvertible {
    var err = 0.0, x: Float = 0, got: Float = 0, ref = 0.0
    var description: String { "error \(err) at x = \(x) (bits 0x\(String(x.bitPattern, radix: 16))): got \(got), reference \(ref)" }
}

/// max over i of err(got_i, ref(x_i)), with NaN errors counted as +inf.
private func worst(_ xs: [Float], _ got: [Float], _ ref: (Double) -> Double,
                   where include: (Double) -> Bool = { _ in true }, _ err: (Double, Double) -> Double) -> Worst {
    precondition(xs.count == got.count)
    var w = Worst()
    for (x, g) in zip(xs, got) {
        let r = ref(Double(x))
        guard include(r) else { continue }
        var e = err(Double(g), r)
        if e.isNaN { e = .infinity }
        if e > w.err || (w.err == 0 && e == .infinity) { w = Worst(err: e, x: x, got: g, ref: r) }
    }
    return w
}

private func relative(_ g: Double, _ r: Double) -> Double { abs(g - r) / abs(r) }
private func absolute(_ g: Double, _ r: Double) -> Double { abs(g - r) }

// Double references.
private func refSigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
private func refSoftplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }
private func refSilu(_ x: Double) -> Double { x / (1 + exp(-x)) }

/// The dense grid size: ~5·10⁴ points, an odd count so the buffer forms also take their tail.
private let gridPoints = 50_003

@Suite("Vector math")
struct VectorMathTests {
    // MARK: exp

    @Test("exp8 on [−87, 88]: relative error ≤ 5e-7 vs Double exp; exp8(0) == 1")
    func exp8Accuracy() {
        let xs = linearGrid(-87, 88, gridPoints) + [-1e-7, 1e-7, -0.5, 0.5, 0.34657359, -0.34657359, 1, -1]
        let w = worst(xs, kernel(xs, exp8), exp, relative)
        #expect(w.err <= 5e-7, "exp8: \(w)")
        #expect(kernel([0], exp8) == [1])
        // The same through the buffer form (length 100 011: a tail of 3).
        let wb = worst(xs, buffer(xs, VectorMath.exp), exp, relative)
        #expect(wb.err <= 5e-7, "VectorMath.exp: \(wb)")
    }

    /// Documented clamp at −87.3: below it exp8 returns ≈ e^−87.3 = 1.219e-38 (absolute error < 1.22e-38,
    /// never negative, never NaN), which is what the gates need (a_t = e^{ΔA} may underflow to ~0).
    @Test("exp8 below the clamp (x ≤ −87.3, down to −Float.max): 0 ≤ exp8(x) ≤ e^−87.3")
    func exp8Underflow() {
        let xs = linearGrid(-200, -87.3, 1001) + [-Float.greatestFiniteMagnitude, -1e30]
        let cap = Float(exp(-87.3) * (1 + 1e-6))
        let bad = zip(xs, kernel(xs, exp8)).filter { !($0.1 >= 0 && $0.1 <= cap) }
        #expect(bad.isEmpty, "\(bad.count) bad values, first exp8(\(bad.first?.0 ?? 0)) = \(bad.first?.1 ?? 0)")
    }

    /// The doc comment clamps x to [−87.3, 88.7] and e^88.7 ≈ 3.3e38 is below Float.max (3.4e38), so
    /// the whole top of the range is finite. Round(x/ln 2) reaches 128 from x ≈ 88.376 on, and 2^128
    /// built from exponent bits is +inf.
    @Test("exp8 on [88, 88.7]: finite and relative error ≤ 5e-7 (e^x < Float.max there)")
    func exp8Overflow() {
        let xs = linearGrid(88, 88.7, 701)
        #expect(xs.allSatisfy { exp(Double($0)) < Double(Float.greatestFiniteMagnitude) })
        let w = worst(xs, kernel(xs, exp8), exp, relative)
        #expect(w.err <= 5e-7, "exp8: \(w)")
        // Up to the overflow point it is accurate.
        let below = xs.filter { $0 < 88.37 }
        let wb = worst(below, kernel(below, exp8), exp, relative)
        #expect(wb.err <= 5e-7, "exp8: \(wb)")
    }

    // MARK: GELU-tanh

    /// Hawk's y branch: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), computed as x·σ(2·√(2/π)(…)).
    @Test("geluTanh8 on [−20, 20]: error ≤ 1e-6·max(1, |ref|) vs Double 0.5·x·(1 + tanh(…))")
    func geluTanhAccuracy() {
        let ref = { (x: Double) in 0.5 * x * (1 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x))) }
        let xs = linearGrid(-20, 20, gridPoints) + [0, -1e-7, 1e-7]
        let w = worst(xs, kernel(xs, geluTanh8), ref) { abs(($0 - $1) / max(abs($1), 1)) }
        #expect(w.err <= 1e-6, "geluTanh8: \(w)")
        let wb = worst(xs, buffer(xs, VectorMath.geluTanh), ref) { abs(($0 - $1) / max(abs($1), 1)) }
        #expect(wb.err <= 1e-6, "VectorMath.geluTanh: \(wb)")
    }

    // MARK: log

    @Test("log8 on [1e-30, 1e30]: relative error ≤ 5e-7 (absolute ≤ 1.2e-7 where |ln x| < 1)")
    func log8Accuracy() {
        let xs = logGrid(1e-30, 1e30, gridPoints) + linearGrid(0.5, 2, 20_001) + [1, Float(1).nextUp, Float(1).nextDown]
        let got = kernel(xs, log8)
        let wr = worst(xs, got, log, where: { abs($0) >= 1 }, relative)
        #expect(wr.err <= 5e-7, "log8 (|ln x| ≥ 1): \(wr)")
        let wa = worst(xs, got, log, where: { abs($0) < 1 }, absolute)
        #expect(wa.err <= 1.2e-7, "log8 (|ln x| < 1): \(wa)")
        #expect(kernel([1], log8) == [0])
        let wb = worst(xs, buffer(xs, VectorMath.log), log) { abs(($0 - $1) / max(abs($1), 1)) }
        #expect(wb.err <= 5e-7, "VectorMath.log: \(wb)")
    }

    @Test("log8 keeps relative accuracy near 1: |log8(x) − ln x| ≤ 1e-6·|ln x| on [0.9, 1.1]")
    func log8NearOne() {
        let xs = linearGrid(0.9, 1.1, 20_001).filter { $0 != 1 }
        let w = worst(xs, kernel(xs, log8), log, relative)
        #expect(w.err <= 1e-6, "log8 near 1: \(w)")
    }

    // MARK: sigmoid, softplus, silu

    @Test("sigmoid8 on [−50, 50]: absolute error ≤ 1e-6, relative ≤ 1e-6; σ(0) == 0.5")
    func sigmoidAccuracy() {
        let xs = linearGrid(-50, 50, gridPoints)
        let got = kernel(xs, sigmoid8)
        let wa = worst(xs, got, refSigmoid, absolute)
        #expect(wa.err <= 1e-6, "sigmoid8: \(wa)")
        // The gates' small values (r_t, i_t near 0) keep relative accuracy too.
        let wr = worst(xs, got, refSigmoid, relative)
        #expect(wr.err <= 1e-6, "sigmoid8 relative: \(wr)")
        #expect(kernel([0], sigmoid8) == [0.5])
        let wb = worst(xs, buffer(xs, VectorMath.sigmoid), refSigmoid, absolute)
        #expect(wb.err <= 1e-6, "VectorMath.sigmoid: \(wb)")
    }

    @Test("softplus8 on [0, 50]: relative error ≤ 1e-6 vs x + log1p(e^−x), and == x exactly for x ≥ 30")
    func softplusPositive() {
        let xs = linearGrid(0, 50, gridPoints)
        let got = kernel(xs, softplus8)
        let w = worst(xs, got, refSoftplus, relative)
        #expect(w.err <= 1e-6, "softplus8: \(w)")
        for (x, y) in zip(xs, got) where x >= 30 {
            if y != x { Issue.record("softplus8(\(x)) = \(y), expected \(x)"); break }
        }
        let wb = worst(xs, buffer(xs, VectorMath.softplus), refSoftplus, relative)
        #expect(wb.err <= 1e-6, "VectorMath.softplus: \(wb)")
    }

    /// softplus(x) = log(1 + e^x) for x < 0 is e^x·(1 − e^x/2 + …): computing 1 + e^x in float first
    /// rounds away all but log2(1/ε·e^x) bits of e^x, a relative error ≈ 6e-8·e^{−x} (1e-6 at x ≈ −2.8,
    /// total at x < −16.6 where 1 + e^x == 1). Mamba's Δ = softplus(δ + dt_bias) lives exactly there:
    /// dt_bias = softplus⁻¹(U[1e-3, 1e-1]) ∈ [−6.9, −2.25].
    @Test("softplus8 on [−50, 0): relative error ≤ 1e-6 vs log1p(e^x) (value > 1e-30)")
    func softplusNegative() {
        let xs = linearGrid(-50, 0, gridPoints).filter { $0 < 0 }
        let got = kernel(xs, softplus8)
        // Where upstream's Δ lives (bias ≥ −6.9, δ of either sign) and far below it.
        let wMamba = worst(xs.filter { $0 >= -2 }, kernel(xs.filter { $0 >= -2 }, softplus8), refSoftplus, relative)
        #expect(wMamba.err <= 1e-6, "softplus8 on [−2, 0): \(wMamba)")
        let w = worst(xs, got, refSoftplus, where: { $0 > 1e-30 }, relative)
        #expect(w.err <= 1e-6, "softplus8: \(w)")
        // Absolute accuracy does hold (the value is below ~1e-7 where relative accuracy is lost).
        let wa = worst(xs, got, refSoftplus, absolute)
        #expect(wa.err <= 1e-7, "softplus8 absolute: \(wa)")
    }

    @Test("VectorMath.silu on [−50, 50]: relative error ≤ 1e-6 vs x/(1 + e^−x) (|value| > 1e-30); silu(0) == 0")
    func siluAccuracy() {
        let xs = linearGrid(-50, 50, gridPoints) + [0]
        let got = buffer(xs, VectorMath.silu)
        let w = worst(xs, got, refSilu, where: { abs($0) > 1e-30 }, relative)
        #expect(w.err <= 1e-6, "silu: \(w)")
        #expect(got.last == 0)
    }

    // MARK: buffer forms: SIMD body, scalar tail, bounds

    @Test("buffer forms at lengths 1, 7, 8, 9, 100: every element == its reference, == the 8-lane kernel, nothing past n written",
          arguments: [1, 7, 8, 9, 100])
    func buffers(_ n: Int) {
        typealias Case = (name: String, lo: Double, hi: Double, f: (UnsafeMutablePointer<Float>, Int) -> Void,
                          k: (V8) -> V8, ref: (Double) -> Double, tol: Double)
        let cases: [Case] = [
            ("exp", -80, 80, VectorMath.exp, exp8, exp, 5e-7),
            ("log", 1e-20, 1e20, VectorMath.log, log8, log, 5e-7),
            ("sigmoid", -40, 40, VectorMath.sigmoid, sigmoid8, refSigmoid, 1e-6),
            ("softplus", -2, 40, VectorMath.softplus, softplus8, refSoftplus, 1e-6),
            ("silu", -40, 40, VectorMath.silu, { $0 * sigmoid8($0) }, refSilu, 1e-6),
        ]
        var rng = SeededRandom(seed: UInt64(n))
        let sentinel = Float(bitPattern: 0x7FC0_1234)   // a NaN payload nothing computes
        for c in cases {
            let xs: [Float] = (0..<n).map { _ in
                c.name == "log" ? Float(exp(rng.uniform(log(c.lo), log(c.hi)))) : Float(rng.uniform(c.lo, c.hi))
            }
            var buf = xs + [Float](repeating: sentinel, count: 9)
            buf.withUnsafeMutableBufferPointer { c.f($0.baseAddress!, n) }
            let got = Array(buf[0..<n])
            #expect(buf[n...].allSatisfy { $0.bitPattern == sentinel.bitPattern }, "\(c.name): wrote past n = \(n)")
            let w = worst(xs, got, c.ref) { abs($0 - $1) / max(abs($1), c.name == "log" ? 1 : 1e-30) }
            #expect(w.err <= c.tol, "\(c.name) n = \(n): \(w)")
            // The tail goes through the same kernel as the body.
            #expect(bits(got) == bits(kernel(xs, c.k)), "\(c.name) n = \(n): buffer differs from the 8-lane kernel")
        }
    }

    @Test("length 0 is a no-op")
    func emptyBuffer() {
        var x: [Float] = [3]
        x.withUnsafeMutableBufferPointer { p in
            VectorMath.exp(p.baseAddress!, 0); VectorMath.log(p.baseAddress!, 0); VectorMath.sigmoid(p.baseAddress!, 0)
            VectorMath.softplus(p.baseAddress!, 0); VectorMath.silu(p.baseAddress!, 0)
        }
        #expect(x == [3])
    }
}

@Suite("Vector math: scaffold activations")
struct ActivationMathTests {
    /// GELU with the exact erf, and with tanh, in Double at the exact float input.
    static func geluRef(_ x: Float) -> Double { let d = Double(x); return 0.5 * d * (1 + erf(d / 2.0.squareRoot())) }
    static func geluTanhRef(_ x: Float) -> Double {
        let d = Double(x); return 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
    }

    @Test("gelu8 and geluTanh8: |y − ref| ≤ 3e-7·max(|x|, 1e-30) + 1 ulp(ref) over ±12 and at ±1e30")
    func gelu() {
        let xs = linearGrid(-12, 12, 200_001) + [1e-30, -1e-30, 1e30, -1e30, 0, 88, -88, 200, -200]
        for (name, f, ref) in [("gelu", gelu8 as (V8) -> V8, Self.geluRef as (Float) -> Double),
                               ("geluTanh", geluTanh8, Self.geluTanhRef)] {
            let ys = kernel(xs, f)
            var worst = 0.0, at: Float = 0
            for (x, y) in zip(xs, ys) {
                let r = ref(x)
                let excess = abs(Double(y) - r) - (3e-7 * Swift.max(Double(abs(x)), 1e-30) + Double(Float(r).ulp))
                if excess > worst || !y.isFinite { worst = y.isFinite ? excess : .infinity; at = x }
            }
            #expect(worst <= 0, "\(name): error exceeds the bound by \(worst) at x = \(at)")
        }
    }

    @Test("GELU/SiLU/GLU buffer forms equal the lane kernels, tails included")
    func buffers() {
        let xs = linearGrid(-6, 6, 37)
        #expect(buffer(xs, VectorMath.gelu) == kernel(xs, gelu8))
        let silu = buffer(xs, VectorMath.silu)
        for (x, y) in zip(xs, silu) { #expect(abs(Double(y) - Double(x) / (1 + exp(-Double(x)))) < 1e-6) }
        var v = xs + xs.reversed(), y = [Float](repeating: .nan, count: 38)
        glu(&v, &y, 37)
        for i in 0..<37 { #expect(abs(Double(y[i]) - Double(v[i]) / (1 + exp(-Double(v[37 + i])))) < 1e-6) }
        #expect(y[37].isNaN, "glu wrote past n")
    }
}
