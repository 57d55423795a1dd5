import ComplexModule
import RealModule

/// The audio-EQ biquads of Robert Bristow-Johnson's "Cookbook formulae for audio EQ biquad filter
/// coefficients": peaking, low and high shelf, notch and all-pass, each one second-order section
/// H(z) = (b₀ + b₁z⁻¹ + b₂z⁻²)/(a₀ + a₁z⁻¹ + a₂z⁻²). Several sections in series are one ZPK (their
/// zeros and poles together, gains multiplied), which `ModalRealization` turns into one model.
///
/// Glossary: f₀ the centre (peaking, notch, all-pass) or midpoint (shelves) frequency in Hz, f_s the
/// sample rate, ω₀ = 2πf₀/f_s, A = 10^{G/40} for a gain of G dB, α = sin ω₀/(2Q) — or, from a
/// bandwidth of N octaves (peaking, notch, all-pass), α = sin ω₀ · sinh(ln 2/2 · N · ω₀/sin ω₀).
public enum Biquad {
    public enum Kind: String, Sendable, CaseIterable { case peaking, lowshelf, highshelf, notch, allpass }

    /// One section: its kind, f₀ in Hz, gain in dB (peaking and shelves only), and its width as Q
    /// or as a bandwidth in octaves (not both; the default is Q = 1/√2).
    public struct Section: Sendable, Equatable {
        public var kind: Kind
        public var frequency: Double
        public var gainDB: Double?
        public var q: Double?
        public var bandwidth: Double?
        public init(kind: Kind, frequency: Double, gainDB: Double? = nil, q: Double? = nil, bandwidth: Double? = nil) {
            self.kind = kind; self.frequency = frequency; self.gainDB = gainDB; self.q = q; self.bandwidth = bandwidth
        }

        /// One line naming the section, for model descriptions and summaries.
        public var summary: String {
            let g = gainDB.map { ", gain \($0) dB" } ?? ""
            let w = bandwidth.map { ", bandwidth \($0) octaves" } ?? ", Q \(((q ?? 0.5.squareRoot()) * 1000).rounded() / 1000)"
            return "\(kind.rawValue) \(hz(frequency))\(g)\(w)"
        }
    }

    /// Refuses f₀ outside (0, f_s/2), a gain where the kind has none (or none where it needs one),
    /// Q and bandwidth together, a non-positive Q or bandwidth, a bandwidth on a shelf.
    public static func validate(_ s: Section, rate: Double) throws(DesignError) {
        func usage(_ m: String) -> DesignError { DesignError(.usage, m) }
        guard rate.isFinite, rate > 0 else { throw usage("sample rate \(rate) Hz must be positive") }
        guard s.frequency.isFinite, s.frequency > 0, s.frequency < rate / 2 else {
            throw usage("\(s.kind.rawValue): frequency \(hz(s.frequency)) must lie strictly between 0 and the Nyquist frequency \(hz(rate / 2)) (rate \(hz(rate)))")
        }
        switch s.kind {
        case .peaking, .lowshelf, .highshelf:
            guard let g = s.gainDB else { throw usage("a \(s.kind.rawValue) section needs --gain DB (boost > 0, cut < 0)") }
            guard g.isFinite, Swift.abs(g) <= 60 else { throw usage("\(s.kind.rawValue): gain \(g) dB must be within ±60 dB") }
        case .notch, .allpass:
            guard s.gainDB == nil else { throw usage("--gain is for peaking and shelf sections (a \(s.kind.rawValue) has no gain)") }
        }
        if s.q != nil && s.bandwidth != nil { throw usage("\(s.kind.rawValue): give --q or --bandwidth, not both") }
        if let q = s.q { guard q.isFinite, q > 0, q <= 1000 else { throw usage("\(s.kind.rawValue): Q \(q) must be in (0, 1000]") } }
        if let b = s.bandwidth {
            guard s.kind != .lowshelf && s.kind != .highshelf else {
                throw usage("--bandwidth is for peaking, notch and allpass sections; a shelf takes --q")
            }
            guard b.isFinite, b > 0, b <= 10 else { throw usage("\(s.kind.rawValue): bandwidth \(b) octaves must be in (0, 10]") }
        }
    }

    /// The cookbook coefficients (b₀, b₁, b₂), (a₀, a₁, a₂) of one section.
    public static func coefficients(_ s: Section, rate: Double) -> (b: [Double], a: [Double]) {
        let w0 = 2 * Double.pi * s.frequency / rate, cw = Double.cos(w0), sw = Double.sin(w0)
        let alpha: Double
        if let n = s.bandwidth {
            alpha = sw * Double.sinh(Double.log(2) / 2 * n * w0 / sw)
        } else {
            alpha = sw / (2 * (s.q ?? 0.5.squareRoot()))
        }
        let A = Double.pow(10, (s.gainDB ?? 0) / 40), rA = A.squareRoot()
        switch s.kind {
        case .peaking:
            return ([1 + alpha * A, -2 * cw, 1 - alpha * A], [1 + alpha / A, -2 * cw, 1 - alpha / A])
        case .lowshelf:
            return ([A * ((A + 1) - (A - 1) * cw + 2 * rA * alpha), 2 * A * ((A - 1) - (A + 1) * cw),
                     A * ((A + 1) - (A - 1) * cw - 2 * rA * alpha)],
                    [(A + 1) + (A - 1) * cw + 2 * rA * alpha, -2 * ((A - 1) + (A + 1) * cw),
                     (A + 1) + (A - 1) * cw - 2 * rA * alpha])
        case .highshelf:
            return ([A * ((A + 1) + (A - 1) * cw + 2 * rA * alpha), -2 * A * ((A - 1) + (A + 1) * cw),
                     A * ((A + 1) + (A - 1) * cw - 2 * rA * alpha)],
                    [(A + 1) - (A - 1) * cw + 2 * rA * alpha, 2 * ((A - 1) - (A + 1) * cw),
                     (A + 1) - (A - 1) * cw - 2 * rA * alpha])
        case .notch:
            return ([1, -2 * cw, 1], [1 + alpha, -2 * cw, 1 - alpha])
        case .allpass:
            return ([1 - alpha, -2 * cw, 1 + alpha], [1 + alpha, -2 * cw, 1 - alpha])
        }
    }

    /// The sections in series as one digital ZPK: each section's two zeros and two poles (the roots
    /// of b₀z² + b₁z + b₂ and a₀z² + a₁z + a₂), gain Π b₀/a₀.
    public static func design(_ sections: [Section], rate: Double) throws(DesignError) -> ZPK {
        guard !sections.isEmpty else { throw DesignError(.usage, "no section to design") }
        var zpk = ZPK(zeros: [], poles: [], gain: 1)
        for s in sections {
            try validate(s, rate: rate)
            let (b, a) = coefficients(s, rate: rate)
            zpk.zeros += quadraticRoots(b[0], b[1], b[2])
            zpk.poles += quadraticRoots(a[0], a[1], a[2])
            zpk.gain *= b[0] / a[0]
        }
        return zpk
    }

    /// The two roots of c₀z² + c₁z + c₂ (c₀ ≠ 0), without cancellation for real roots.
    static func quadraticRoots(_ c0: Double, _ c1: Double, _ c2: Double) -> [Complex<Double>] {
        let disc = c1 * c1 - 4 * c0 * c2
        if disc >= 0 {
            let q = -(c1 + (c1 >= 0 ? 1 : -1) * disc.squareRoot()) / 2
            let r1 = q / c0, r2 = q != 0 ? c2 / q : 0
            return [Complex(r1, 0), Complex(r2, 0)]
        }
        let re = -c1 / (2 * c0), im = (-disc).squareRoot() / (2 * c0)
        return [Complex(re, im), Complex(re, -im)]
    }
}
