import ComplexModule
import RealModule

/// The analog low-pass prototypes beyond Butterworth and Chebyshev I, each as scipy computes it
/// (`cheb2ap`, `ellipap`, `besselap(norm="phase")`), and the Jacobian elliptic functions the
/// elliptic design needs. Glossary as in `FilterDesign`: n the prototype order; m the parameter of
/// the elliptic functions (m = k², k the modulus); K(m) the complete elliptic integral of the first kind.
extension FilterDesign {
    /// Chebyshev type II analog prototype of order n with stop-band attenuation R_s dB, stop band
    /// from 1 rad/s (`scipy.signal.cheb2ap`): δ = 1/√(10^{R_s/10} − 1), μ = asinh(1/δ)/n;
    /// zeros z_m = i / sin(πm/(2n)) for m = −n+1, …, n−1 step 2 (m = 0 skipped for odd n);
    /// poles 1/(sinh μ·Re q_m + i cosh μ·Im q_m) with q_m = −exp(iπm/(2n)); k = Re Π(−p)/Π(−z).
    public static func chebyshev2Prototype(order n: Int, attenuationDB rs: Double) -> ZPK {
        let de = 1 / (Double.pow(10, 0.1 * rs) - 1).squareRoot()
        let mu = Double.asinh(1 / de) / Double(n)
        let ms = stride(from: -n + 1, through: n - 1, by: 2).filter { $0 != 0 }
        let zeros = ms.map { m in Complex(0, 1 / Double.sin(Double(m) * Double.pi / (2 * Double(n)))) }
        let poles = stride(from: -n + 1, through: n - 1, by: 2).map { m -> Complex<Double> in
            let q = -Complex.exp(Complex(0, Double.pi * Double(m) / Double(2 * n)))
            return Complex(1, 0) / Complex(Double.sinh(mu) * q.real, Double.cosh(mu) * q.imaginary)
        }
        let k = (product(poles.map { -$0 }) / product(zeros.map { -$0 })).real
        return ZPK(zeros: zeros, poles: poles, gain: k)
    }

    /// Elliptic (Cauer) analog prototype of order n, pass-band ripple R_p dB, stop-band attenuation
    /// R_s dB, pass band edge 1 rad/s (`scipy.signal.ellipap`): ε² = 10^{R_p/10} − 1,
    /// m₁ = ε²/(10^{R_s/10} − 1), m from the degree equation n·K(m₁′)/K(m₁) = K(m′)/K(m);
    /// zeros i/(√m · sn(jK/n, m)); poles −(cn·dn·sn_v·cn_v + i·sn·dn_v)/(1 − (dn·sn_v)²) at
    /// u = jK/n (j = 1 − n mod 2, …, n − 1 step 2) with v₀ = K·sc⁻¹(1/ε; m₁′)/(n·K(m₁)) and
    /// sn_v, cn_v, dn_v at (v₀, 1 − m); k = Re Π(−p)/Π(−z), divided by √(1 + ε²) for even n.
    public static func ellipticPrototype(order n: Int, rippleDB rp: Double, attenuationDB rs: Double) -> ZPK {
        let epsSq = Double.expMinusOne(0.1 * rp * Double.log(10))
        if n == 1 {
            let p = -(1 / epsSq).squareRoot()
            return ZPK(zeros: [], poles: [Complex(p, 0)], gain: -p)
        }
        let eps = epsSq.squareRoot()
        let ck1Sq = epsSq / Double.expMinusOne(0.1 * rs * Double.log(10))
        let k1 = Elliptic.K(ck1Sq)
        let m = Elliptic.degree(n, ck1Sq)
        let capK = Elliptic.K(m)
        let js = Array(stride(from: 1 - n % 2, to: n, by: 2))
        let jac = js.map { Elliptic.jacobi(Double($0) * capK / Double(n), m) }
        let tiny = 2.220446049250313e-16
        var zeros = jac.filter { Swift.abs($0.sn) > tiny }.map { Complex(0, 1 / (m.squareRoot() * $0.sn)) }
        zeros += zeros.map { $0.conjugate }
        let r = Elliptic.inverseSC1(1 / eps, ck1Sq)
        let v0 = capK * r / (Double(n) * k1)
        let v = Elliptic.jacobi(v0, 1 - m)
        var poles = jac.map { e -> Complex<Double> in
            let den = 1 - (e.dn * v.sn) * (e.dn * v.sn)
            return -Complex(e.cn * e.dn * v.sn * v.cn / den, e.sn * v.dn / den)
        }
        if n % 2 == 1 {
            let scale = poles.reduce(0) { $0 + $1.lengthSquared }.squareRoot()
            poles += poles.filter { Swift.abs($0.imaginary) > tiny * scale }.map { $0.conjugate }
        } else {
            poles += poles.map { $0.conjugate }
        }
        var k = (product(poles.map { -$0 }) / product(zeros.map { -$0 })).real
        if n % 2 == 0 { k /= (1 + epsSq).squareRoot() }
        return ZPK(zeros: zeros, poles: poles, gain: k)
    }

    /// Bessel–Thomson analog prototype of order n, phase-normalized (`scipy.signal.besselap` with
    /// norm "phase", scipy's default: the phase at 1 rad/s is half its asymptote, which is
    /// Butterworth's): the poles are the roots of the reverse Bessel polynomial
    /// θ_n(s) = Σ_k a_k s^k, a_k = (2n − k)! / (2^{n−k} k! (n − k)!), scaled by a₀^{−1/n}; k = 1.
    /// They are found as the roots of the monic, unit-constant polynomial θ_n(c·t)/a₀ (c = a₀^{1/n},
    /// all roots near |t| = 1) by Aberth–Ehrlich iteration in double precision, then polished by Newton.
    public static func besselPrototype(order n: Int) -> ZPK {
        if n == 1 { return ZPK(zeros: [], poles: [Complex(-1, 0)], gain: 1) }
        // log a_k, then the scaled coefficients b_k = a_k c^k / a_0 (b_0 = b_n = 1).
        func logFactorial(_ x: Int) -> Double { (1...max(1, x)).reduce(0) { $0 + Double.log(Double($1)) } }
        let logA = (0...n).map { k in logFactorial(2 * n - k) - Double(n - k) * Double.log(2) - logFactorial(k) - logFactorial(n - k) }
        let logC = logA[0] / Double(n)
        let coef = (0...n).map { k in Double.exp(logA[k] + Double(k) * logC - logA[0]) }   // ascending powers
        let roots = polynomialRoots(ascending: coef)
        return ZPK(zeros: [], poles: roots, gain: 1)
    }

    /// The n roots of Σ_k c_k t^k (ascending coefficients, c_n ≠ 0): Aberth–Ehrlich iteration from
    /// points on a circle of the roots' geometric-mean radius, then two Newton steps each.
    static func polynomialRoots(ascending c: [Double]) -> [Complex<Double>] {
        let n = c.count - 1
        func eval(_ t: Complex<Double>) -> (p: Complex<Double>, dp: Complex<Double>) {
            var p = Complex(c[n], 0), dp = Complex<Double>.zero
            for k in stride(from: n - 1, through: 0, by: -1) { dp = dp * t + p; p = p * t + Complex(c[k], 0) }
            return (p, dp)
        }
        let radius = Double.pow(Swift.abs(c[0] / c[n]), 1 / Double(n))
        var z = (0..<n).map { j in Complex(length: radius, phase: 2 * Double.pi * (Double(j) + 0.25) / Double(n) + 0.4) }
        for _ in 0..<500 {
            var moved = 0.0
            for i in 0..<n {
                let (p, dp) = eval(z[i])
                guard p != .zero else { continue }
                let ratio = p / dp
                var sum = Complex<Double>.zero
                for j in 0..<n where j != i { sum += Complex(1, 0) / (z[i] - z[j]) }
                let w = ratio / (Complex(1, 0) - ratio * sum)
                z[i] -= w
                moved = Swift.max(moved, w.length / Swift.max(1, z[i].length))
            }
            if moved < 1e-15 { break }
        }
        for i in 0..<n {
            for _ in 0..<2 {
                let (p, dp) = eval(z[i])
                if dp != .zero { z[i] -= p / dp }
            }
            // A real root stays real (its tiny imaginary part is round-off).
            if Swift.abs(z[i].imaginary) < 1e-13 * z[i].length { z[i] = Complex(z[i].real, 0) }
        }
        return z.sorted { ($0.imaginary, $0.real) < ($1.imaginary, $1.real) }
    }
}

/// Complete elliptic integrals and Jacobian elliptic functions in double precision (the cephes
/// algorithms scipy.special uses: AGM for K, descending Landen for sn/cn/dn), and the two pieces of
/// scipy's `ellipap` built on them.
enum Elliptic {
    /// K(m) = π / (2·AGM(1, √(1 − m))), 0 ≤ m < 1.
    static func K(_ m: Double) -> Double { Double.pi / (2 * agm(1, (1 - m).squareRoot())) }

    /// K(1 − p) for small p without the cancellation of 1 − (1 − p) (`scipy.special.ellipkm1`).
    static func Km1(_ p: Double) -> Double { Double.pi / (2 * agm(1, p.squareRoot())) }

    static func agm(_ a0: Double, _ b0: Double) -> Double {
        var a = a0, b = b0
        for _ in 0..<64 {
            let an = (a + b) / 2, bn = (a * b).squareRoot()
            if Swift.abs(an - bn) <= 1e-16 * an { return an }
            a = an; b = bn
        }
        return a
    }

    /// sn, cn, dn of (u, m), 0 ≤ m ≤ 1 (cephes `ellpj`).
    static func jacobi(_ u: Double, _ m: Double) -> (sn: Double, cn: Double, dn: Double) {
        if m < 1e-9 {
            let t = Double.sin(u), b = Double.cos(u), ai = 0.25 * m * (u - t * b)
            return (t - ai * b, b + ai * t, 1 - 0.5 * m * t * t)
        }
        if m >= 0.9999999999 {
            var ai = 0.25 * (1 - m)
            let b = Double.cosh(u), t = Double.tanh(u), phi = 1 / b, twon = b * Double.sinh(u)
            let sn = t + ai * (twon - u) / (b * b)
            ai *= t * phi
            return (sn, phi - ai * (twon - u), phi + ai * (twon + u))
        }
        var a = [1.0], c = [m.squareRoot()]
        var b = (1 - m).squareRoot(), twon = 1.0
        while Swift.abs(c[c.count - 1] / a[a.count - 1]) > 1.11022302462515654042e-16 && a.count < 9 {
            let ai = a[a.count - 1]
            c.append((ai - b) / 2)
            let t = (ai * b).squareRoot()
            a.append((ai + b) / 2)
            b = t
            twon *= 2
        }
        var i = a.count - 1
        var phi = twon * a[i] * u, prev = phi
        repeat {
            let t = c[i] * Double.sin(phi) / a[i]
            prev = phi
            phi = (Double.asin(t) + phi) / 2
            i -= 1
        } while i > 0
        let sn = Double.sin(phi), cn = Double.cos(phi)
        return (sn, cn, cn / Double.cos(phi - prev))
    }

    /// The degree equation (scipy `_ellipdeg`): the m whose nome is the n-th root of m₁'s,
    /// q = exp(−π K(1 − m₁)/K(m₁))^{1/n}, m = 16q (Σ_{j=0}^{7} q^{j(j+1)} / (1 + 2Σ_{j=1}^{8} q^{j²}))⁴.
    static func degree(_ n: Int, _ m1: Double) -> Double {
        let q1 = Double.exp(-Double.pi * Km1(m1) / K(m1))
        let q = Double.pow(q1, 1 / Double(n))
        let num = (0...7).reduce(0.0) { $0 + Double.pow(q, Double($1 * ($1 + 1))) }
        let den = 1 + 2 * (1...8).reduce(0.0) { $0 + Double.pow(q, Double($1 * $1)) }
        return 16 * q * Double.pow(num / den, 4)
    }

    /// sn⁻¹(w; m) for complex w by descending Landen transformations (scipy `_arc_jac_sn`).
    static func inverseSN(_ w: Complex<Double>, _ m: Double) -> Complex<Double> {
        func complement(_ x: Complex<Double>) -> Complex<Double> {
            Complex.sqrt((Complex(1, 0) - x) * (Complex(1, 0) + x))
        }
        var ks = [m.squareRoot()]
        while ks[ks.count - 1] != 0 && ks.count < 11 {
            let k = ks[ks.count - 1], kp = ((1 - k) * (1 + k)).squareRoot()
            ks.append((1 - kp) / (1 + kp))
        }
        let bigK = ks.dropFirst().reduce(Double.pi / 2) { $0 * (1 + $1) }
        var wn = w
        for (kn, knext) in zip(ks.dropLast(), ks.dropFirst()) {
            wn = Complex(2, 0) * wn / (Complex(1 + knext, 0) * (Complex(1, 0) + complement(Complex(kn, 0) * wn)))
        }
        return Complex(bigK * 2 / Double.pi, 0) * Complex.asin(wn)
    }

    /// The real sc⁻¹(w) with the complementary parameter (scipy `_arc_jac_sc1`): Im sn⁻¹(i·w; m).
    static func inverseSC1(_ w: Double, _ m: Double) -> Double {
        inverseSN(Complex(0, w), m).imaginary
    }
}
