import RealModule

// Vectorized elementary functions for the gates of the selective families (S6, RG-LRU): exp, log,
// sigmoid, SiLU and softplus, 8 lanes at a time. Cephes-style: range reduction by powers of two and
// minimax polynomials; relative error of a few ulp over the range the gates use, checked in tests
// against the scalar libm functions.

#if !SSM_FLOAT64
/// e^x for 8 lanes (x clamped to [−87.3, 88.72], ln of the largest float).
@inline(__always) @usableFromInline
func exp8(_ x0: V8) -> V8 {
    let magic = V8(repeating: 12582912.0), magicBits = SIMD8<Int32>(repeating: 0x4B40_0000)  // 1.5·2^23 and its bits
    let lo = V8(repeating: -87.3), hi = V8(repeating: 88.72)
    let x = x0.replacing(with: lo, where: x0 .< lo).replacing(with: hi, where: x0 .> hi)
    // round(x / ln 2) by the 1.5·2^23 trick: the integer lands in the low mantissa bits. (The
    // stdlib's SIMD rounding/conversion initializers are generic loops, ~40× slower here.)
    let t = x * 1.44269504088896341 + magic
    let n = t - magic
    var r = x.addingProduct(n, V8(repeating: -0.693359375))            // x − n·ln 2 (Cody–Waite, two parts)
    r = r.addingProduct(n, V8(repeating: 2.12194440e-4))
    var p = V8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let e = (p * (r * r)) + r + 1                                       // e^r on |r| ≤ ln2/2
    // 2^n as two float factors 2^⌊n/2⌋·2^(n−⌊n/2⌋): n reaches 128 near the top of the range.
    let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- magicBits, k1 = k &>> 1, k2 = k &- k1
    return e * unsafeBitCast((k1 &+ 127) &<< 23, to: V8.self) * unsafeBitCast((k2 &+ 127) &<< 23, to: V8.self)
}

/// ln x for 8 lanes, x > 0 and finite.
@inline(__always) @usableFromInline
func log8(_ x: V8) -> V8 {
    let magic = V8(repeating: 12582912.0), magicBits = SIMD8<Int32>(repeating: 0x4B40_0000)  // 1.5·2^23 and its bits
    // x = 2^e·(1 + m) with 1 + m in [√½, √2): subtracting the bits of √½ moves the exponent boundary
    // there, so e and m come out of integer operations alone (Cephes' frexp-and-fold, without the
    // lane selects that the compiler scalarizes). m is exact: f − 1 or f/2 − 1 as in Cephes.
    let sqrtHalfBits = SIMD8<Int32>(repeating: 0x3F35_04F3)
    let ix = unsafeBitCast(x, to: SIMD8<Int32>.self) &- sqrtHalfBits
    let ei = ix &>> 23                                                    // arithmetic shift
    let e = unsafeBitCast(ei &+ magicBits, to: V8.self) - magic           // Scalar(ei), by the 1.5·2^23 trick
    let m = unsafeBitCast((ix & 0x007F_FFFF) &+ sqrtHalfBits, to: V8.self) - 1
    let z = m * m
    var p = V8(repeating: 7.0376836292e-2)
    p = p * m - 1.1514610310e-1
    p = p * m + 1.1676998740e-1
    p = p * m - 1.2420140846e-1
    p = p * m + 1.4249322787e-1
    p = p * m - 1.6668057665e-1
    p = p * m + 2.0000714765e-1
    p = p * m - 2.4999993993e-1
    p = p * m + 3.3333331174e-1
    var y = p * m * z
    y = y.addingProduct(e, V8(repeating: -2.12194440e-4))
    y = y - z * 0.5
    let sum: V8 = m + y
    return sum.addingProduct(e, V8(repeating: 0.693359375))
}

#else
// The float64 build (gradient checks only): the same functions lane by lane through libm.
@inline(__always) @usableFromInline
func exp8(_ x: V8) -> V8 { var r = V8(); for i in 0..<8 { r[i] = Double.exp(x[i]) }; return r }
@inline(__always) @usableFromInline
func log8(_ x: V8) -> V8 { var r = V8(); for i in 0..<8 { r[i] = Double.log(x[i]) }; return r }
#endif

/// σ(x) = 1 / (1 + e^−x).
@inline(__always) @usableFromInline
func sigmoid8(_ x: V8) -> V8 { 1 / (1 + exp8(-x)) }

/// softplus(x) = log(1 + e^x), computed as max(x, 0) + log(1 + e^−|x|) (no overflow; torch's
/// threshold 20 is implied: for x > 20 the correction is below float resolution).
@inline(__always) @usableFromInline
func softplus8(_ x: V8) -> V8 {
    let ax = x.replacing(with: -x, where: x .< 0)
    // log1p(u) without the rounding of 1 + u: log(w)·u/(w − 1) with w = 1 + u (u itself where w == 1).
    let u = exp8(-ax), w = 1 + u
    let log1pU = (log8(w) * u / (w - 1)).replacing(with: u, where: w .== 1)
    return x.replacing(with: 0, where: x .< 0) + log1pU
}

#if !SSM_FLOAT64
/// erf x for 8 lanes: Abramowitz & Stegun 7.1.26, erf|x| = 1 − (a₁t + … + a₅t⁵)·e^(−x²),
/// t = 1/(1 + p|x|), absolute error ≤ 1.5e-7 (relative to 1: what GELU's 1 + erf needs; near 0
/// its relative error is larger, so it is not a general-purpose erf).
@inline(__always) @usableFromInline
func erf8(_ x: V8) -> V8 {
    let a = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * a)
    var p = V8(repeating: 1.061405429)
    p = p * t - 1.453152027
    p = p * t + 1.421413741
    p = p * t - 0.284496736
    p = p * t + 0.254829592
    let y = 1 - p * t * exp8(-(a * a))
    return y.replacing(with: -y, where: x .< 0)
}

#else
@inline(__always) @usableFromInline
func erf8(_ x: V8) -> V8 { var r = V8(); for i in 0..<8 { r[i] = Double.erf(x[i]) }; return r }
#endif

/// GELU x·(1 + erf(x/√2))/2 for 8 lanes: error ≤ 3e-7·|x| + 1 ulp (A&S's 1.5e-7 plus float
/// rounding of 1 − erfc, halved; libm's erff gives ~0.6e-7·|x|), measured in the tests.
@inline(__always) @usableFromInline
func gelu8(_ x: V8) -> V8 { 0.5 * x * (1 + erf8(x * 0.70710678118654752)) }

/// GELU with the tanh approximation, 0.5·x·(1 + tanh(y)) with y = √(2/π)·(x + 0.044715·x³), computed
/// as the equal x·σ(2y) (0.5·(1 + tanh y) = σ(2y)), so it vectorizes on `exp8`.
@inline(__always) @usableFromInline
func geluTanh8(_ x: V8) -> V8 {
    let y = 0.79788456080286536 * (x + 0.044715 * x * x * x)
    return x * sigmoid8(y + y)
}

/// Applies `f` to n floats in place, 8 at a time (the tail through a padded vector).
@inline(__always) @usableFromInline
func apply8(_ x: UnsafeMutablePointer<Scalar>, _ n: Int, _ f: (V8) -> V8) {
    var i = 0
    while i + 8 <= n { store8(f(load8(x + i)), x + i); i += 8 }
    if i < n {
        var v = V8()
        for j in 0..<(n - i) { v[j] = x[i + j] }
        let r = f(v)
        for j in 0..<(n - i) { x[i + j] = r[j] }
    }
}

/// out[i] = f(a[i], b[i]) over n floats, 8 at a time (the tail through padded vectors, so every
/// element gets the same lane arithmetic). `out` may be `a`.
@inline(__always) @usableFromInline
func combine8(_ a: UnsafePointer<Scalar>, _ b: UnsafePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>, _ n: Int,
              _ f: (V8, V8) -> V8) {
    var i = 0
    while i + 8 <= n { store8(f(load8(a + i), load8(b + i)), out + i); i += 8 }
    if i < n {
        var va = V8(), vb = V8()
        for j in 0..<(n - i) { va[j] = a[i + j]; vb[j] = b[i + j] }
        let r = f(va, vb)
        for j in 0..<(n - i) { out[i + j] = r[j] }
    }
}

/// Vector forms over buffers (in place).
public enum VectorMath {
    public static func exp(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n, exp8) }
    public static func log(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n, log8) }
    public static func sigmoid(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n, sigmoid8) }
    public static func softplus(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n, softplus8) }
    /// GELU-tanh as x·σ(2·√(2/π)·(x + 0.044715·x³)).
    public static func geluTanh(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n, geluTanh8) }
    /// SiLU x·σ(x).
    public static func silu(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n) { $0 * sigmoid8($0) } }
    /// GELU x·Φ(x) (exact-erf form, to 3e-7·|x|).
    public static func gelu(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) { apply8(x, n, gelu8) }
}
