import ComplexModule
import RealModule

/// Classical IIR filter design in double precision, step for step as `scipy.signal.iirfilter`
/// (with `fs`, output "zpk"): analog low-pass prototype → pre-warped cutoff(s) → LP→LP/HP/BP/BS
/// transformation → bilinear transform. The result is a digital `ZPK`; `ModalRealization` turns
/// it into the diagonal state-space model `ssm-stream run` executes.
///
/// Glossary: n the prototype order, M = n (LP, HP) or 2n (BP, BS) the digital order,
/// ω analog angular frequency (rad/s of the normalized analog domain), f_s the sample rate in Hz.
public enum FilterDesign {
    public enum Family: String, Sendable, CaseIterable { case butterworth, chebyshev1, chebyshev2, elliptic, bessel }
    public enum Band: String, Sendable, CaseIterable { case lowpass, highpass, bandpass, bandstop }

    /// The orders `design` accepts.
    public static let orders = 1...32

    /// What to design: family, band, prototype order n, cutoff(s) in Hz, pass-band ripple in dB
    /// (Chebyshev I, elliptic), stop-band attenuation in dB (Chebyshev II, elliptic) and the sample
    /// rate in Hz. The cutoff is where scipy puts it: the pass-band edge (Butterworth: −3 dB;
    /// Chebyshev I and elliptic: where the ripple band ends), the stop-band edge for Chebyshev II,
    /// and for Bessel the frequency where the phase is half its asymptote.
    public struct Spec: Sendable, Equatable {
        public var family: Family
        public var band: Band
        public var order: Int
        public var cutoff: Double
        public var cutoff2: Double?
        public var rippleDB: Double?
        public var attenuationDB: Double?
        public var rate: Double

        public init(family: Family, band: Band, order: Int, cutoff: Double, cutoff2: Double? = nil,
                    rippleDB: Double? = nil, attenuationDB: Double? = nil, rate: Double) {
            self.family = family; self.band = band; self.order = order; self.cutoff = cutoff
            self.cutoff2 = cutoff2; self.rippleDB = rippleDB; self.attenuationDB = attenuationDB; self.rate = rate
        }

        /// One line naming the design, for model descriptions and summaries.
        public var summary: String {
            let f = band == .lowpass || band == .highpass ? "cutoff \(hz(cutoff))"
                : "band \(hz(cutoff))–\(hz(cutoff2 ?? .nan))"
            let r = rippleDB.map { ", ripple \($0) dB" } ?? ""
            let a = attenuationDB.map { ", attenuation \($0) dB" } ?? ""
            return "\(family.rawValue) \(band.rawValue), order \(order), \(f)\(r)\(a) at \(hz(rate))"
        }
    }

    /// The digital filter of `spec` in zero-pole-gain form (M zeros, M poles), as
    /// `scipy.signal.iirfilter(n, Wn, rp, rs, btype, ftype, output="zpk", fs=f_s)`.
    /// Throws a `.usage` error for parameters outside the realizable range.
    public static func design(_ spec: Spec) throws(DesignError) -> ZPK {
        try validate(spec)
        let proto: ZPK = switch spec.family {
        case .butterworth: butterworthPrototype(order: spec.order)
        case .chebyshev1: chebyshev1Prototype(order: spec.order, rippleDB: spec.rippleDB ?? 0)
        case .chebyshev2: chebyshev2Prototype(order: spec.order, attenuationDB: spec.attenuationDB ?? 0)
        case .elliptic: ellipticPrototype(order: spec.order, rippleDB: spec.rippleDB ?? 0, attenuationDB: spec.attenuationDB ?? 0)
        case .bessel: besselPrototype(order: spec.order)
        }
        // scipy normalizes to f_s = 2 (Nyquist = 1): ω = 2·f_s'·tan(π·W/f_s') = 4·tan(π f / f_s).
        let w1 = prewarp(spec.cutoff, rate: spec.rate)
        let analog: ZPK
        switch spec.band {
        case .lowpass: analog = lowpassToLowpass(proto, wo: w1)
        case .highpass: analog = lowpassToHighpass(proto, wo: w1)
        case .bandpass, .bandstop:
            let w2 = prewarp(spec.cutoff2 ?? spec.cutoff, rate: spec.rate)
            let wo = (w1 * w2).squareRoot(), bw = w2 - w1
            analog = spec.band == .bandpass ? lowpassToBandpass(proto, wo: wo, bw: bw)
                                            : lowpassToBandstop(proto, wo: wo, bw: bw)
        }
        return bilinear(analog, fs: 2)
    }

    /// Refuses an order outside 1…32, cutoffs outside (0, f_s/2), cutoff2 ≤ cutoff, a missing or
    /// extra cutoff2, ripple or attenuation, an elliptic ripple not below its attenuation.
    static func validate(_ s: Spec) throws(DesignError) {
        func usage(_ m: String) -> DesignError { DesignError(.usage, m) }
        guard orders.contains(s.order) else { throw usage("order \(s.order) is out of range \(orders.lowerBound)…\(orders.upperBound)") }
        guard s.rate.isFinite, s.rate > 0 else { throw usage("sample rate \(s.rate) Hz must be positive") }
        let nyquist = s.rate / 2
        func checkCutoff(_ f: Double, _ name: String) throws(DesignError) {
            guard f.isFinite, f > 0, f < nyquist else {
                throw usage("\(name) \(hz(f)) must lie strictly between 0 and the Nyquist frequency \(hz(nyquist)) (rate \(hz(s.rate)))")
            }
        }
        try checkCutoff(s.cutoff, "cutoff")
        switch s.band {
        case .lowpass, .highpass:
            guard s.cutoff2 == nil else { throw usage("--cutoff2 is for bandpass and bandstop designs only") }
        case .bandpass, .bandstop:
            guard let f2 = s.cutoff2 else { throw usage("a \(s.band.rawValue) design needs --cutoff2 (the upper band edge)") }
            try checkCutoff(f2, "cutoff2")
            guard f2 > s.cutoff else { throw usage("cutoff2 \(hz(f2)) must be above cutoff \(hz(s.cutoff))") }
        }
        let needsRipple = s.family == .chebyshev1 || s.family == .elliptic
        let needsAttenuation = s.family == .chebyshev2 || s.family == .elliptic
        if let r = s.rippleDB {
            guard needsRipple else { throw usage("--ripple is for chebyshev1 and elliptic designs only (a \(s.family.rawValue) filter has no pass-band ripple)") }
            guard r.isFinite, r > 0, r <= 40 else { throw usage("ripple \(r) dB must be in (0, 40]") }
        } else if needsRipple {
            throw usage("a \(s.family.rawValue) design needs --ripple DB (pass-band ripple, e.g. 1)")
        }
        if let a = s.attenuationDB {
            guard needsAttenuation else { throw usage("--attenuation is for chebyshev2 and elliptic designs only (a \(s.family.rawValue) filter has no stop-band floor)") }
            guard a.isFinite, a > 0, a <= 200 else { throw usage("attenuation \(a) dB must be in (0, 200]") }
        } else if needsAttenuation {
            throw usage("a \(s.family.rawValue) design needs --attenuation DB (stop-band attenuation, e.g. 60)")
        }
        if s.family == .elliptic, let r = s.rippleDB, let a = s.attenuationDB, !(a > r) {
            throw usage("an elliptic design needs --attenuation (\(a) dB) above --ripple (\(r) dB)")
        }
    }

    /// Pre-warping for the bilinear transform at the normalized rate f_s' = 2:
    /// ω = 2·f_s'·tan(π·W/f_s') with W = 2f/f_s, i.e. ω = 4·tan(π f / f_s).
    public static func prewarp(_ f: Double, rate: Double) -> Double {
        4 * Double.tan(Double.pi * f / rate)
    }

    /// Butterworth analog prototype of order n (cutoff 1 rad/s), as `scipy.signal.buttap`:
    /// p_m = −exp(iπm/(2n)) for m = −n+1, −n+3, …, n−1; no zeros; k = 1.
    public static func butterworthPrototype(order n: Int) -> ZPK {
        let poles = stride(from: -n + 1, through: n - 1, by: 2).map { m in
            -Complex.exp(Complex(0, Double.pi * Double(m) / Double(2 * n)))
        }
        return ZPK(zeros: [], poles: poles, gain: 1)
    }

    /// Chebyshev type I analog prototype of order n with pass-band ripple R dB, as `scipy.signal.cheb1ap`:
    /// ε = √(10^{R/10} − 1), μ = asinh(1/ε)/n, θ_m = πm/(2n) (m = −n+1, …, n−1 step 2),
    /// p_m = −sinh(μ + iθ_m); k = Re Π(−p_m), divided by √(1 + ε²) for even n (so |H(0)| = 10^{−R/20}).
    public static func chebyshev1Prototype(order n: Int, rippleDB: Double) -> ZPK {
        let eps = (Double.pow(10, 0.1 * rippleDB) - 1).squareRoot()
        let mu = Double.asinh(1 / eps) / Double(n)
        let poles = stride(from: -n + 1, through: n - 1, by: 2).map { m in
            -Complex.sinh(Complex(mu, Double.pi * Double(m) / Double(2 * n)))
        }
        var k = product(poles.map { -$0 }).real
        if n % 2 == 0 { k /= (1 + eps * eps).squareRoot() }
        return ZPK(zeros: [], poles: poles, gain: k)
    }

    /// LP → LP at ω₀ (`lp2lp_zpk`): z' = ω₀z, p' = ω₀p, k' = k·ω₀^{#p − #z}.
    public static func lowpassToLowpass(_ f: ZPK, wo: Double) -> ZPK {
        let degree = f.poles.count - f.zeros.count
        return ZPK(zeros: f.zeros.map { $0 * wo }, poles: f.poles.map { $0 * wo },
                   gain: f.gain * Double.pow(wo, Double(degree)))
    }

    /// LP → HP at ω₀ (`lp2hp_zpk`): z' = ω₀/z, p' = ω₀/p, plus #p − #z zeros at s = 0;
    /// k' = k·Re(Π(−z)/Π(−p)).
    public static func lowpassToHighpass(_ f: ZPK, wo: Double) -> ZPK {
        let degree = f.poles.count - f.zeros.count
        let w = Complex(wo, 0)
        let zeros = f.zeros.map { w / $0 } + Array(repeating: .zero, count: degree)
        let gain = f.gain * (product(f.zeros.map { -$0 }) / product(f.poles.map { -$0 })).real
        return ZPK(zeros: zeros, poles: f.poles.map { w / $0 }, gain: gain)
    }

    /// LP → BP with centre ω₀ = √(ω₁ω₂) and width b = ω₂ − ω₁ (`lp2bp_zpk`, s → (s² + ω₀²)/(b·s)): each root r becomes
    /// the two roots of s² − r·b·s + ω₀² = 0, r' = rb/2 ± √((rb/2)² − ω₀²); #p − #z zeros at s = 0;
    /// k' = k·b^{#p − #z}. Doubles the order.
    public static func lowpassToBandpass(_ f: ZPK, wo: Double, bw: Double) -> ZPK {
        let degree = f.poles.count - f.zeros.count
        func split(_ r: [Complex<Double>]) -> [Complex<Double>] {
            let h = r.map { $0 * (bw / 2) }
            let root = h.map { Complex.sqrt($0 * $0 - Complex(wo * wo, 0)) }
            return zip(h, root).map { $0 + $1 } + zip(h, root).map { $0 - $1 }
        }
        return ZPK(zeros: split(f.zeros) + Array(repeating: .zero, count: degree), poles: split(f.poles),
                   gain: f.gain * Double.pow(bw, Double(degree)))
    }

    /// LP → BS with centre ω₀ and width b (`lp2bs_zpk`, s → b·s/(s² + ω₀²)): each root r becomes
    /// the two roots of s² − (b/r)·s + ω₀² = 0, r' = h ± √(h² − ω₀²) with h = b/(2r);
    /// #p − #z zero pairs at ±iω₀; k' = k·Re(Π(−z)/Π(−p)). Doubles the order.
    public static func lowpassToBandstop(_ f: ZPK, wo: Double, bw: Double) -> ZPK {
        let degree = f.poles.count - f.zeros.count
        func split(_ r: [Complex<Double>]) -> [Complex<Double>] {
            let h = r.map { Complex(bw / 2, 0) / $0 }
            let root = h.map { Complex.sqrt($0 * $0 - Complex(wo * wo, 0)) }
            return zip(h, root).map { $0 + $1 } + zip(h, root).map { $0 - $1 }
        }
        let notch = Array(repeating: Complex(0, wo), count: degree) + Array(repeating: Complex(0, -wo), count: degree)
        let gain = f.gain * (product(f.zeros.map { -$0 }) / product(f.poles.map { -$0 })).real
        return ZPK(zeros: split(f.zeros) + notch, poles: split(f.poles), gain: gain)
    }

    /// Bilinear transform s = 2f_s(z − 1)/(z + 1) (`bilinear_zpk`): z' = (2f_s + z)/(2f_s − z),
    /// p' likewise, #p − #z zeros at z = −1, k' = k·Re(Π(2f_s − z)/Π(2f_s − p)).
    public static func bilinear(_ f: ZPK, fs: Double) -> ZPK {
        let degree = f.poles.count - f.zeros.count
        let fs2 = Complex(2 * fs, 0)
        let map: (Complex<Double>) -> Complex<Double> = { (fs2 + $0) / (fs2 - $0) }
        let gain = f.gain * (product(f.zeros.map { fs2 - $0 }) / product(f.poles.map { fs2 - $0 })).real
        return ZPK(zeros: f.zeros.map(map) + Array(repeating: Complex(-1, 0), count: degree),
                   poles: f.poles.map(map), gain: gain)
    }

    static func product(_ v: [Complex<Double>]) -> Complex<Double> { v.reduce(Complex(1, 0), *) }
}

/// Zeros, poles and gain of a rational transfer function: analog H(s) = k·Π(s − z_j)/Π(s − p_i),
/// digital H(z) = k·Π(z − z_j)/Π(z − p_i) (= k·Π(1 − z_j z⁻¹)/Π(1 − p_i z⁻¹) when #z = #p).
public struct ZPK: Sendable, Equatable {
    public var zeros: [Complex<Double>]
    public var poles: [Complex<Double>]
    public var gain: Double
    public init(zeros: [Complex<Double>], poles: [Complex<Double>], gain: Double) {
        self.zeros = zeros; self.poles = poles; self.gain = gain
    }
}

/// Why a design or realization was refused: `.usage` for arguments out of range (exit 64),
/// `.data` for a system that cannot be realized or a bad input file (exit 65).
public struct DesignError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: Sendable, Equatable { case usage, data }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// "1000 Hz", "1234.5 Hz": frequencies without a trailing ".0".
func hz(_ f: Double) -> String {
    f == f.rounded() && Swift.abs(f) < 1e15 ? "\(Int(f)) Hz" : "\(f) Hz"
}
