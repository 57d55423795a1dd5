// The audio-EQ biquads (RBJ cookbook) against what each promises, read off the designed ZPK's
// frequency response: a peaking section's gain at f₀ and none at DC or Nyquist, its half-gain
// points one bandwidth apart; a shelf's gain on its side, half of it at f₀; a notch's zero; an
// all-pass's unit magnitude and −π at f₀. Then the float32 model against the cascade of the
// sections in Double, and several sections in series as one model.

import ComplexModule
import Foundation
import Testing
@testable import SSM

/// H(e^{iω}) of a ZPK with as many zeros as poles: k·Π(e^{iω} − z)/Π(e^{iω} − p).
private func response(_ f: ZPK, _ hz: Double, rate: Double) -> Complex<Double> {
    let e = Complex<Double>(length: 1, phase: 2 * Double.pi * hz / rate)
    let num = f.zeros.reduce(Complex(f.gain, 0)) { $0 * (e - $1) }
    return f.poles.reduce(num) { $0 / (e - $1) }
}

private func dB(_ h: Complex<Double>) -> Double { 20 * log10(h.length) }

/// The two frequencies (on a fine log grid between lo and hi) where the response in dB crosses `level`
/// going up and then down (or down and then up).
private func crossings(_ f: ZPK, level: Double, rate: Double, lo: Double, hi: Double, above: Bool) -> (Double, Double) {
    let n = 200_000
    let grid = (0...n).map { lo * pow(hi / lo, Double($0) / Double(n)) }
    let inside = grid.filter { above ? dB(response(f, $0, rate: rate)) >= level : dB(response(f, $0, rate: rate)) <= level }
    return (inside.first ?? .nan, inside.last ?? .nan)
}

@Suite("audio EQ biquads (RBJ cookbook)")
struct BiquadTests {
    let rate = 48000.0

    @Test("peaking: +G dB at f₀, 0 dB at DC and Nyquist, half-gain points one bandwidth apart; a cut mirrors a boost")
    func peaking() throws {
        for (g, q, bw) in [(12.0, 2.0, nil), (-6.0, nil, 1.0), (3.0, nil, 0.5)] as [(Double, Double?, Double?)] {
            let f = try Biquad.design([Biquad.Section(kind: .peaking, frequency: 1000, gainDB: g, q: q, bandwidth: bw)], rate: rate)
            #expect(abs(dB(response(f, 1000, rate: rate)) - g) < 1e-9)
            #expect(abs(dB(response(f, 0, rate: rate))) < 1e-9 && abs(dB(response(f, rate / 2, rate: rate))) < 1e-9)
            if let bw {
                let (f1, f2) = crossings(f, level: g / 2, rate: rate, lo: 100, hi: 10000, above: g > 0)
                #expect(abs(log2(f2 / f1) - bw) < 0.01, "gain \(g): half-gain points \(f1)–\(f2) Hz, \(log2(f2 / f1)) octaves")
            }
        }
        // A cut is the inverse of the boost with the same width (the cookbook's symmetry).
        let up = try Biquad.design([.init(kind: .peaking, frequency: 700, gainDB: 9, q: 1.3)], rate: rate)
        let down = try Biquad.design([.init(kind: .peaking, frequency: 700, gainDB: -9, q: 1.3)], rate: rate)
        for hz in [50.0, 400, 700, 1500, 12000] {
            #expect((response(up, hz, rate: rate) * response(down, hz, rate: rate) - Complex(1, 0)).length < 1e-9)
        }
    }

    @Test("shelves: G dB on their side, 0 dB on the other, G/2 at f₀")
    func shelves() throws {
        let low = try Biquad.design([.init(kind: .lowshelf, frequency: 200, gainDB: 6)], rate: rate)
        #expect(abs(dB(response(low, 0, rate: rate)) - 6) < 1e-9)
        #expect(abs(dB(response(low, rate / 2, rate: rate))) < 1e-9)
        #expect(abs(dB(response(low, 200, rate: rate)) - 3) < 1e-9)
        let high = try Biquad.design([.init(kind: .highshelf, frequency: 6000, gainDB: -10, q: 0.9)], rate: rate)
        #expect(abs(dB(response(high, rate / 2, rate: rate)) + 10) < 1e-9)
        #expect(abs(dB(response(high, 0, rate: rate))) < 1e-9)
        #expect(abs(dB(response(high, 6000, rate: rate)) + 5) < 1e-9)
    }

    @Test("notch: a zero at f₀, 0 dB at DC and Nyquist, −3 dB points one bandwidth apart")
    func notch() throws {
        let f = try Biquad.design([.init(kind: .notch, frequency: 60, bandwidth: 0.5)], rate: rate)
        #expect(response(f, 60, rate: rate).length < 1e-9)
        #expect(abs(dB(response(f, 0, rate: rate))) < 1e-9 && abs(dB(response(f, rate / 2, rate: rate))) < 1e-9)
        let (f1, f2) = crossings(f, level: -10 * log10(2), rate: rate, lo: 20, hi: 200, above: false)
        #expect(abs(log2(f2 / f1) - 0.5) < 0.01, "\(f1)–\(f2) Hz")
    }

    @Test("all-pass: |H| = 1 everywhere, phase −π at f₀")
    func allpass() throws {
        let f = try Biquad.design([.init(kind: .allpass, frequency: 2000, q: 3)], rate: rate)
        for hz in stride(from: 0.0, through: rate / 2, by: 997) { #expect(abs(response(f, hz, rate: rate).length - 1) < 1e-12) }
        #expect(abs(abs(response(f, 2000, rate: rate).phase) - Double.pi) < 1e-9)
    }

    @Test("an eq of sections in series: its response is the product of theirs; the float32 model (step and block) equals the Double cascade")
    func series() throws {
        let sections: [Biquad.Section] = [.init(kind: .lowshelf, frequency: 120, gainDB: 4), .init(kind: .peaking, frequency: 2500, gainDB: -3, q: 1.4),
                                          .init(kind: .highshelf, frequency: 9000, gainDB: 2), .init(kind: .notch, frequency: 50, q: 10)]
        let eq = try Biquad.design(sections, rate: rate)
        #expect(eq.poles.count == 8 && eq.zeros.count == 8)
        for hz in [30.0, 50, 120, 1000, 2500, 9000, 20000] {
            let each = try sections.reduce(Complex<Double>(1, 0)) { $0 * response(try Biquad.design([$1], rate: rate), hz, rate: rate) }
            #expect((response(eq, hz, rate: rate) - each).length <= 1e-9 * max(1, each.length), "\(hz) Hz")
        }
        let s = try ModalRealization.realize(eq)
        let (ms, t) = ModalRealization.model(s, sampleRate: Int(rate), description: "eq")
        let L = 4096, x = impulseAndNoise(L)
        let sos = sections.map { sec -> [Double] in let (b, a) = Biquad.coefficients(sec, rate: rate); return b + a }
        let ref = sosFilter(sos, x)
        #expect(maxRelError(s.filter(x, length: L), ref) <= 1e-9)
        let (ys, yb) = try runModel(ms, t, x, length: L)
        let es = maxRelError(ys, ref), eb = maxRelError(yb, ref)
        print("eq of 4 sections: step \(es), block \(eb) (max|Δ|/max|y|), cancellation \(s.cancellation)")
        #expect(es <= float32Bound(s) && eb <= float32Bound(s), "step \(es), block \(eb), bound \(float32Bound(s))")
    }

    @Test("refusals: frequency, gain, Q and bandwidth")
    func refusals() {
        func refused(_ s: Biquad.Section, _ words: String) {
            do { _ = try Biquad.design([s], rate: 48000); Issue.record("accepted \(s)") } catch {
                #expect(error.kind == .usage && error.message.contains(words), "\(error.message)")
            }
        }
        refused(.init(kind: .peaking, frequency: 24000, gainDB: 3), "Nyquist")
        refused(.init(kind: .notch, frequency: 0), "Nyquist")
        refused(.init(kind: .peaking, frequency: 1000), "needs --gain")
        refused(.init(kind: .lowshelf, frequency: 1000, gainDB: 80), "within ±60 dB")
        refused(.init(kind: .notch, frequency: 1000, gainDB: 3), "has no gain")
        refused(.init(kind: .peaking, frequency: 1000, gainDB: 3, q: 1, bandwidth: 1), "not both")
        refused(.init(kind: .allpass, frequency: 1000, q: 0), "Q 0.0")
        refused(.init(kind: .highshelf, frequency: 1000, gainDB: 3, bandwidth: 1), "a shelf takes --q")
        refused(.init(kind: .peaking, frequency: 1000, gainDB: 3, bandwidth: -1), "bandwidth -1.0")
    }
}
