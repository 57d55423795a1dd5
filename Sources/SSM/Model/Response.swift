import ComplexModule
import RealModule

/// What a linear time-invariant model does to each frequency: its frequency response from input
/// channel 0 to each output channel, measured on the model's own streaming step (what is shown is
/// what runs), the way scipy's `freqz` and `group_delay` compute it for a filter:
///
///     h[k]      impulse response, k < K (K: until its tail is below 1e-13 of its energy)
///     H(ω)    = Σ_k h[k] e^{−iωk}                      (freqz)
///     τ(ω)    = Re( Σ_k k·h[k] e^{−iωk} / H(ω) )      (group_delay, in samples)
///
/// at F frequencies f (Hz), ω = 2π f / rate. Shapes: `magnitudeDB`, `phase`, `groupDelay`: (O, F)
/// for O output channels.
public struct FrequencyResponse: Sendable {
    public let sampleRate: Int
    public let frequencies: [Double]
    /// 20·log10|H|, dB.
    public let magnitudeDB: [[Double]]
    /// arg H, radians, unwrapped along frequency.
    public let phase: [[Double]]
    /// Samples.
    public let groupDelay: [[Double]]
    /// Samples of impulse response taken (K).
    public let impulseLength: Int
}

public enum ResponseError: Error, CustomStringConvertible {
    /// The model is not linear (activations, norms, gates, selective layers): no transfer function.
    case notLinear(String)
    public var description: String { switch self { case .notLinear(let m): m } }
}

extension Model {
    /// The response of output channels to a unit impulse on input channel `input`, `length`
    /// samples long, from the zero state (the streaming step, in Double). Shape (O, length).
    public func impulseResponse(length: Int, input: Int = 0, amplitude: Scalar = 1) -> [[Double]] {
        let state = makeState(maxBlock: 1)
        let dIn = spec.dInput, dOut = spec.dOutput
        var x = [Scalar](repeating: 0, count: dIn), y = [Scalar](repeating: 0, count: dOut)
        var out = [[Double]](repeating: [Double](repeating: 0, count: length), count: dOut)
        for k in 0..<length {
            x[input] = k == 0 ? amplitude : 0
            step(x, &y, state: state)
            for o in 0..<dOut { out[o][k] = Double(y[o]) / Double(amplitude) }
        }
        return out
    }

    /// How far the model is from linear time invariance, relative to its response: impulses of
    /// amplitude 1 and 0.01 must give proportional responses, and an impulse at k = 0 plus one at
    /// k = 7 the sum of the two shifted responses.
    public func linearityError(length: Int = 512) -> Double {
        let a = impulseResponse(length: length), b = impulseResponse(length: length, amplitude: 0.01)
        let dIn = spec.dInput, dOut = spec.dOutput
        let state = makeState(maxBlock: 1)
        var x = [Scalar](repeating: 0, count: dIn), y = [Scalar](repeating: 0, count: dOut)
        var peak = 1e-30, err = 0.0
        for k in 0..<length {
            x[0] = k == 0 || k == 7 ? 1 : 0
            step(x, &y, state: state)
            for o in 0..<dOut {
                let sum = a[o][k] + (k >= 7 ? a[o][k - 7] : 0)
                peak = max(peak, abs(a[o][k]))
                err = max(err, abs(Double(y[o]) - sum), abs(a[o][k] - b[o][k]))
            }
        }
        return err / peak
    }

    /// The frequency response at `frequencies` (Hz; default: `points` log-spaced from rate/2000
    /// to the Nyquist frequency). Throws for a model that is not linear time-invariant (error
    /// above 1e-3 of its response in `linearityError`).
    public func frequencyResponse(frequencies given: [Double]? = nil, points: Int = 512) throws(ResponseError) -> FrequencyResponse {
        let lin = linearityError()
        guard lin.isFinite, lin < 1e-3 else {
            throw .notLinear("the model is not linear time-invariant (its response to an impulse is not proportional to the impulse, or not additive: deviation \(lin)); a frequency response is defined for linear filters such as `ssm-stream design` makes")
        }
        let rate = Double(spec.sampleRate), nyquist = rate / 2
        let f: [Double] = given ?? (0..<points).map { i in
            let lo = nyquist / 1000
            return lo * Double.pow(nyquist / lo, Double(i) / Double(max(points - 1, 1)))
        }
        // Long enough that the tail carries less than 1e-13 of the energy (at most 2^20 samples).
        var length = 4096
        var h = impulseResponse(length: length)
        while length < 1 << 20 {
            var total = 0.0, tail = 0.0
            for o in h.indices { for k in 0..<length { let e = h[o][k] * h[o][k]; total += e; if k >= length * 3 / 4 { tail += e } } }
            if tail <= 1e-13 * max(total, 1e-300) { break }
            length *= 2
            h = impulseResponse(length: length)
        }
        var mag = [[Double]](), phase = [[Double]](), delay = [[Double]]()
        for o in h.indices {
            var m = [Double](), p = [Double](), d = [Double]()
            for fi in f {
                let w = 2 * Double.pi * fi / rate
                // Σ h[k] e^{−iωk} and Σ k h[k] e^{−iωk}, the rotation advanced by recurrence
                // (re-anchored every 1024 samples against drift).
                var H = Complex<Double>(0, 0), kH = Complex<Double>(0, 0)
                let step = Complex<Double>(Double.cos(w), -Double.sin(w))
                var z = Complex<Double>(1, 0)
                for k in 0..<length {
                    if k % 1024 == 0 { z = Complex(Double.cos(w * Double(k)), -Double.sin(w * Double(k))) }
                    H = H + z * h[o][k]
                    kH = kH + z * (Double(k) * h[o][k])
                    z = z * step
                }
                let mag2 = H.lengthSquared
                m.append(10 * Double.log10(max(mag2, 1e-300)))
                var ph = Double.atan2(y: H.imaginary, x: H.real)
                if let last = p.last { while ph - last > Double.pi { ph -= 2 * Double.pi }; while ph - last < -Double.pi { ph += 2 * Double.pi } }
                p.append(ph)
                d.append(mag2 > 0 ? (kH / H).real : 0)
            }
            mag.append(m); phase.append(p); delay.append(d)
        }
        return FrequencyResponse(sampleRate: spec.sampleRate, frequencies: f, magnitudeDB: mag, phase: phase,
                                 groupDelay: delay, impulseLength: length)
    }

    /// The poles and zeros of each one-channel diagonal layer (a designed filter), by block:
    /// zeros are the roots of H(z)'s numerator, D·Π(z − λ_i) + Σ_j r_j·z·Π_{i≠j}(z − λ_i).
    /// Nil for a block without a single-channel LTI layer.
    public var layerPolesZeros: [(poles: [Complex<Double>], zeros: [Complex<Double>])?] {
        allBlocks.map { b in
            guard case .diagonal(let l) = b.layer, let pf = l.partialFractions else { return nil }
            let n = pf.poles.count
            // Coefficients of z^n … z^0 (index = power).
            func product(_ roots: [Complex<Double>]) -> [Complex<Double>] {
                var c = [Complex<Double>(1, 0)]
                for r in roots {
                    var next = [Complex<Double>](repeating: .zero, count: c.count + 1)
                    for (i, a) in c.enumerated() { next[i + 1] = next[i + 1] + a; next[i] = next[i] - a * r }
                    c = next
                }
                return c
            }
            var num = product(pf.poles).map { $0 * pf.d }
            for j in 0..<n {
                var others = pf.poles; others.remove(at: j)
                let c = product(others)   // degree n − 1, times z: shift up by one
                for (i, a) in c.enumerated() { num[i + 1] = num[i + 1] + a * pf.residues[j] }
            }
            return (pf.poles, polynomialRoots(num))
        }
    }

    /// The discrete eigenvalues Λ̄ of each time-invariant diagonal layer (S4D, S5, LRU, H3's
    /// diagonal SSM), by block; empty for a block whose layer has none (S4's DPLR, selective and
    /// gated layers, identity).
    public var layerEigenvalues: [[Complex<Double>]] { allBlocks.map { $0.layer.eigenvalues } }
}

/// The roots of Σ c_i z^i (c by increasing power; trailing near-zero leading coefficients
/// dropped), by Durand–Kerner iteration then a Newton polish of each root.
public func polynomialRoots(_ coefficients: [Complex<Double>]) -> [Complex<Double>] {
    var c = coefficients
    let scale = c.map { $0.length }.max() ?? 0
    while let last = c.last, c.count > 1, last.length <= 1e-12 * scale { c.removeLast() }
    let n = c.count - 1
    guard n >= 1 else { return [] }
    let lead = c[n]
    let monic = c.map { $0 / lead }
    func eval(_ z: Complex<Double>) -> (Complex<Double>, Complex<Double>) {
        var p = Complex<Double>(1, 0), dp = Complex<Double>.zero
        for i in stride(from: n - 1, through: 0, by: -1) { dp = dp * z + p; p = p * z + monic[i] }
        return (p, dp)
    }
    let radius = 1 + (monic.dropLast().map { $0.length }.max() ?? 0)
    var roots = (0..<n).map { k in Complex<Double>(length: radius * 0.9, phase: 2 * Double.pi * Double(k) / Double(n) + 0.4) }
    for _ in 0..<2000 {
        var moved = 0.0
        for i in 0..<n {
            var den = Complex<Double>(1, 0)
            for j in 0..<n where j != i { den = den * (roots[i] - roots[j]) }
            let (p, _) = eval(roots[i])
            guard den.length > 0 else { continue }
            let d = p / den
            roots[i] = roots[i] - d
            moved = max(moved, d.length)
        }
        if moved < 1e-14 { break }
    }
    for i in 0..<n {
        for _ in 0..<3 {
            let (p, dp) = eval(roots[i])
            guard dp.length > 0 else { break }
            roots[i] = roots[i] - p / dp
        }
    }
    return roots
}
