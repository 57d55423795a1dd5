// `ssm-stream design`'s numerics against independent truth: scipy's zpk and SOS coefficients
// (DesignReference.swift, computed offline), a double-precision SOS filter written here, and
// direct double-precision state-space and difference-equation recursions.

import ComplexModule
import Foundation
import Testing
@testable import SSM

// MARK: - Reference filters (written here, independent of the implementation)

/// Second-order sections in transposed direct form II, in Double (scipy.signal.sosfilt).
func sosFilter(_ sos: [[Double]], _ x: [Double]) -> [Double] {
    var y = x
    for s in sos {
        let (b0, b1, b2, a1, a2) = (s[0] / s[3], s[1] / s[3], s[2] / s[3], s[4] / s[3], s[5] / s[3])
        var z1 = 0.0, z2 = 0.0
        for k in y.indices {
            let u = y[k], v = b0 * u + z1
            z1 = b1 * u - a1 * v + z2
            z2 = b2 * u - a2 * v
            y[k] = v
        }
    }
    return y
}

/// a_0 y[k] = Σ b_j u[k−j] − Σ_{j≥1} a_j y[k−j] (scipy.signal.lfilter), in Double.
func directForm(_ b: [Double], _ a: [Double], _ x: [Double]) -> [Double] {
    var y = [Double](repeating: 0, count: x.count)
    for k in x.indices {
        var s = 0.0
        for (j, bj) in b.enumerated() where k - j >= 0 { s += bj * x[k - j] }
        for (j, aj) in a.enumerated() where j >= 1 && k - j >= 0 { s -= aj * y[k - j] }
        y[k] = s / a[0]
    }
    return y
}

/// An impulse followed by white noise (σ = 0.3), reproducible.
func impulseAndNoise(_ L: Int, channels: Int = 1, seed: UInt64 = 11) -> [Double] {
    var rng = SeededRandom(seed: seed)
    var x = (0..<(L * channels)).map { _ in 0.3 * rng.normal() }
    for j in 0..<channels { x[j] = 1 }
    for k in 1..<min(64, L) { for j in 0..<channels { x[k * channels + j] = 0 } }   // a clean impulse response first
    return x
}

/// Runs a model over x (L, d_input) in step mode and in block mode (blocks of 256); returns both.
func runModel(_ spec: ModelSpec, _ tensors: [String: Tensor], _ x: [Double], length L: Int) throws -> (step: [Float], block: [Float]) {
    let m = try Model(spec: spec, tensors: tensors)
    let xf = x.map(Float.init)
    var ys = [Float](repeating: 0, count: L * spec.dOutput), yb = ys
    let s1 = m.makeState(maxBlock: 1)
    xf.withUnsafeBufferPointer { xp in
        ys.withUnsafeMutableBufferPointer { yp in
            for k in 0..<L { m.step(xp.baseAddress! + k * spec.dInput, yp.baseAddress! + k * spec.dOutput, state: s1) }
        }
        let s2 = m.makeState(maxBlock: 256)
        yb.withUnsafeMutableBufferPointer { yp in m.forward(xp.baseAddress!, yp.baseAddress!, length: L, state: s2) }
    }
    return (ys, yb)
}

/// Greatest relative distance from each reference root to its nearest unused computed root
/// (a multiset match, order-free).
func rootMismatch(_ got: [Complex<Double>], _ ref: [Cx]) -> Double {
    var pool = got, worst = 0.0
    for r in ref {
        guard let i = pool.indices.min(by: { Cx(pool[$0].real - r.re, pool[$0].imaginary - r.im).abs < Cx(pool[$1].real - r.re, pool[$1].imaginary - r.im).abs }) else { return .infinity }
        let d = Cx(pool[i].real - r.re, pool[i].imaginary - r.im).abs / max(r.abs, 1e-300)
        worst = max(worst, d)
        pool.remove(at: i)
    }
    return pool.isEmpty ? worst : .infinity
}

func spec(_ r: DesignReference) -> FilterDesign.Spec {
    FilterDesign.Spec(family: FilterDesign.Family(rawValue: r.family)!, band: FilterDesign.Band(rawValue: r.band)!,
                      order: r.order, cutoff: r.cutoff, cutoff2: r.cutoff2, rippleDB: r.ripple, attenuationDB: r.attenuation,
                      rate: r.rate)
}

/// float32 bound for a modal model's output relative to max|y|. Each lane is a float32 recurrence
/// whose roundings (λ, B, C stored to 2⁻²⁴ relative, one rounding per multiply-add) are amplified by
/// the lane's peak gain |r|/(1 − |λ|); the lanes' errors add, so relative to the output's peak the
/// error is about κ·2⁻²⁴ with κ = `ModalSystem.cancellation` (Σ lane peaks / system peak). We allow
/// 8·κ·2⁻²⁴ (the worst measured is 1.8·κ·2⁻²⁴, the first-order lowpass) and never more than 1e-5.
func float32Bound(_ s: ModalSystem) -> Double { min(1e-5, 8 * s.cancellation * 0x1p-24) }


@Suite("filter design (scipy references)")
struct FilterDesignTests {
    @Test("poles, zeros and gain equal scipy.signal.iirfilter's zpk to 1e-9 relative", arguments: designReferences)
    func zpkMatchesScipy(_ r: DesignReference) throws {
        let f = try FilterDesign.design(spec(r))
        #expect(f.poles.count == r.poles.count && f.zeros.count == r.zeros.count)
        let dp = rootMismatch(f.poles, r.poles), dz = rootMismatch(f.zeros, r.zeros)
        let dk = abs(f.gain - r.gain) / abs(r.gain)
        print("zpk \(r.family) \(r.band) order \(r.order) @\(Int(r.rate)): poles \(dp), zeros \(dz), gain \(dk) (relative to scipy)")
        #expect(dp <= 1e-9, "\(r.family) \(r.band) \(r.order): poles differ by \(dp)")
        #expect(dz <= 1e-9, "\(r.family) \(r.band) \(r.order): zeros differ by \(dz)")
        #expect(dk <= 1e-9, "\(r.family) \(r.band) \(r.order): gain \(f.gain) vs \(r.gain)")
    }

    @Test("the modal realization in Double equals scipy's SOS filter to 1e-9 (partial fractions are exact)", arguments: designReferences)
    func modalDoubleEqualsSOS(_ r: DesignReference) throws {
        let s = try ModalRealization.realize(try FilterDesign.design(spec(r)))
        #expect(s.poles.count == r.poles.count)
        let x = impulseAndNoise(4096)
        let err = maxRelError(s.filter(x, length: 4096), sosFilter(r.sos, x))
        print("modal double \(r.family) \(r.band) order \(r.order) @\(Int(r.rate)): \(err) (max|Δ|/max|y| vs SOS)")
        #expect(err <= 1e-9, "\(r.family) \(r.band) \(r.order): \(err)")
    }

    @Test("the float32 model (step and block mode) equals scipy's SOS filter to min(1e-5, 8·κ·2⁻²⁴)·max|y|", arguments: designReferences)
    func modelEqualsSOS(_ r: DesignReference) throws {
        let s = try ModalRealization.realize(try FilterDesign.design(spec(r)))
        let (ms, t) = ModalRealization.model(s, sampleRate: Int(r.rate), description: "test")
        let realPoles = r.poles.filter { $0.im == 0 }.count
        #expect(ms.blocks[0].layer.dState == (r.poles.count + realPoles) / 2, "one lane per conjugate pair and per real pole")
        let L = 4096, x = impulseAndNoise(L)
        let ref = sosFilter(r.sos, x)
        let (ys, yb) = try runModel(ms, t, x, length: L)
        let es = maxRelError(ys, ref), eb = maxRelError(yb, ref)
        print("design \(r.family) \(r.band) order \(r.order) @\(Int(r.rate)): step \(es), block \(eb) (max|Δ|/max|y|), cancellation \(s.cancellation)")
        #expect(es <= float32Bound(s), "step mode: \(es), bound \(float32Bound(s))")
        #expect(eb <= float32Bound(s), "block mode: \(eb), bound \(float32Bound(s))")
    }

    @Test("refusals: order, cutoffs, cutoff2, ripple, attenuation")
    func refusals() {
        func refused(_ s: FilterDesign.Spec, _ words: String) {
            do { _ = try FilterDesign.design(s); Issue.record("accepted \(s)") } catch {
                #expect(error.kind == .usage && error.message.contains(words), "\(error.message)")
            }
        }
        let ok = FilterDesign.Spec(family: .butterworth, band: .lowpass, order: 4, cutoff: 1000, rate: 16000)
        var s = ok; s.order = 0; refused(s, "out of range")
        s = ok; s.order = 33; refused(s, "out of range")
        s = ok; s.cutoff = 8000; refused(s, "Nyquist")
        s = ok; s.cutoff = 0; refused(s, "Nyquist")
        s = ok; s.cutoff = -5; refused(s, "Nyquist")
        s = ok; s.cutoff = .nan; refused(s, "Nyquist")
        s = ok; s.band = .bandpass; refused(s, "needs --cutoff2")
        s.cutoff2 = 900; refused(s, "must be above cutoff")
        s.cutoff2 = 1000; refused(s, "must be above cutoff")
        s.cutoff2 = 9000; refused(s, "Nyquist")
        s = ok; s.cutoff2 = 2000; refused(s, "bandpass and bandstop")
        s = ok; s.rippleDB = 1; refused(s, "chebyshev1 and elliptic designs only")
        s = ok; s.family = .chebyshev1; refused(s, "needs --ripple")
        s.rippleDB = -1; refused(s, "ripple")
        s = ok; s.attenuationDB = 40; refused(s, "chebyshev2 and elliptic designs only")
        s = ok; s.family = .bessel; s.rippleDB = 1; refused(s, "chebyshev1 and elliptic designs only")
        s = ok; s.family = .chebyshev2; refused(s, "needs --attenuation")
        s.attenuationDB = 0; refused(s, "attenuation 0.0 dB must be in (0, 200]")
        s.attenuationDB = 40; s.rippleDB = 1; refused(s, "chebyshev1 and elliptic designs only")
        s = ok; s.family = .elliptic; s.attenuationDB = 40; refused(s, "needs --ripple")
        s.rippleDB = 1; s.attenuationDB = nil; refused(s, "needs --attenuation")
        s.attenuationDB = 1; refused(s, "above --ripple")
    }
}

// MARK: - User state space and transfer functions

/// Small dense matrices in Double for the reference recursions.
typealias Mat = [[Double]]
func matmul(_ a: Mat, _ b: Mat) -> Mat {
    (0..<a.count).map { i in (0..<b[0].count).map { j in (0..<b.count).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
}
func identity(_ n: Int) -> Mat { (0..<n).map { i in (0..<n).map { Double($0 == i ? 1 : 0) } } }
func add(_ a: Mat, _ b: Mat, _ s: Double = 1) -> Mat { zip(a, b).map { zip($0, $1).map { $0 + s * $1 } } }
/// A⁻¹ by Gauss–Jordan with partial pivoting (Double).
func invert(_ a: Mat) -> Mat {
    let n = a.count
    var m = a, w = identity(n)
    for c in 0..<n {
        let p = (c..<n).max { abs(m[$0][c]) < abs(m[$1][c]) }!
        m.swapAt(c, p); w.swapAt(c, p)
        let d = m[c][c]
        for k in 0..<n { m[c][k] /= d; w[c][k] /= d }
        for r in 0..<n where r != c {
            let f = m[r][c]
            for k in 0..<n { m[r][k] -= f * m[c][k]; w[r][k] -= f * w[c][k] }
        }
    }
    return w
}
/// e^M by scaling and squaring of a 30-term Taylor series.
func expm(_ a: Mat) -> Mat {
    let norm = a.map { $0.reduce(0) { $0 + abs($1) } }.max() ?? 0
    let s = max(0, Int(log2(max(norm, 1e-300))) + 2)
    let scaled = a.map { $0.map { $0 / pow(2, Double(s)) } }
    var term = identity(a.count), sum = identity(a.count)
    for k in 1...30 { term = matmul(term, scaled).map { $0.map { $0 / Double(k) } }; sum = add(sum, term) }
    for _ in 0..<s { sum = matmul(sum, sum) }
    return sum
}

/// x[k+1] = A x[k] + B u[k], y[k] = C x[k] + D u[k] from x = 0, u (L, m) row-major → y (L, p).
func stateSpaceFilter(_ A: Mat, _ B: Mat, _ C: Mat, _ D: Mat, _ u: [Double], length L: Int) -> [Double] {
    let n = A.count, m = B[0].count, p = C.count
    var x = [Double](repeating: 0, count: n), y: [Double] = []
    for k in 0..<L {
        let uk = Array(u[(k * m)..<((k + 1) * m)])
        for h in 0..<p { y.append((0..<n).reduce(0) { $0 + C[h][$1] * x[$1] } + (0..<m).reduce(0) { $0 + D[h][$1] * uk[$1] }) }
        x = (0..<n).map { i in (0..<n).reduce(0) { $0 + A[i][$1] * x[$1] } + (0..<m).reduce(0) { $0 + B[i][$1] * uk[$1] } }
    }
    return y
}

/// A random stable continuous system: A = 3000·(K − Kᵀ) − 800·(GGᵀ + 0.2 I) (Re λ ≤ −160 rad/s,
/// oscillating up to a few kHz), B, C, D ~ N(0, 1).
func randomContinuous(n: Int, inputs m: Int, outputs p: Int, seed: UInt64) -> (Mat, Mat, Mat, Mat) {
    var rng = SeededRandom(seed: seed)
    func rnd(_ r: Int, _ c: Int) -> Mat { (0..<r).map { _ in (0..<c).map { _ in rng.normal() } } }
    let K = rnd(n, n), G = rnd(n, n)
    let skew = (0..<n).map { i in (0..<n).map { j in 3000 * (K[i][j] - K[j][i]) } }
    let Gt = (0..<n).map { i in (0..<n).map { G[$0][i] } }
    let ggt = add(matmul(G, Gt), identity(n), 0.2)
    return (add(skew, ggt, -800), rnd(n, m), rnd(p, n), rnd(p, m))
}

func realizeAndRun(_ u: UserSystem, _ x: [Double], length L: Int) throws -> (double: [Double], step: [Float], block: [Float], system: ModalSystem) {
    let (s, rate) = try StateSpaceRealization.realize(u)
    let (spec, t) = ModalRealization.model(s, sampleRate: rate, description: "test")
    let (ys, yb) = try runModel(spec, t, x, length: L)
    return (s.filter(x, length: L), ys, yb, s)
}

@Suite("design statespace (user systems)")
struct StateSpaceDesignTests {
    static let L = 4096

    @Test("continuous 4-state 2×2 system, bilinear at 16 kHz, equals the scipy-convention discretized recursion")
    func continuousBilinear() throws {
        let (A, B, C, D) = randomContinuous(n: 4, inputs: 2, outputs: 2, seed: 5)
        let T = 1.0 / 16000
        // scipy cont2discrete(method="bilinear"): ima = I − AT/2; Ad = ima⁻¹(I + AT/2), Bd = ima⁻¹BT, Cd = C ima⁻¹, Dd = D + C Bd/2.
        let ima = invert(add(identity(4), A, -T / 2))
        let Ad = matmul(ima, add(identity(4), A, T / 2)), Bd = matmul(ima, B.map { $0.map { $0 * T } })
        let Cd = matmul(C, ima), Dd = add(D, matmul(C, Bd), 0.5)
        let x = impulseAndNoise(Self.L, channels: 2)
        let ref = stateSpaceFilter(Ad, Bd, Cd, Dd, x, length: Self.L)
        let r = try realizeAndRun(UserSystem(a: A, b: B, c: C, d: D, domain: .continuous, discretization: .bilinear, rate: 16000), x, length: Self.L)
        let e64 = maxRelError(r.double, ref), es = maxRelError(r.step, ref), eb = maxRelError(r.block, ref)
        print("statespace continuous bilinear 4×(2→2): double \(e64), step \(es), block \(eb)")
        #expect(r.system.poles.count == 4)
        #expect(e64 <= 1e-10); #expect(es <= float32Bound(r.system)); #expect(eb <= float32Bound(r.system))
    }

    @Test("continuous 4-state system, ZOH, equals e^{AT} and ∫e^{Aτ}dτ·B by the augmented matrix exponential")
    func continuousZOH() throws {
        let (A, B, C, D) = randomContinuous(n: 4, inputs: 1, outputs: 1, seed: 9)
        let T = 1.0 / 16000
        // exp([[A, B], [0, 0]]·T) = [[Ad, Bd], [0, I]].
        let aug = (0..<5).map { i in (0..<5).map { j in i < 4 ? (j < 4 ? A[i][j] : B[i][0]) * T : 0 } }
        let E = expm(aug)
        let Ad = (0..<4).map { i in Array(E[i][0..<4]) }, Bd = (0..<4).map { [E[$0][4]] }
        let x = impulseAndNoise(Self.L)
        let ref = stateSpaceFilter(Ad, Bd, C, D, x, length: Self.L)
        let r = try realizeAndRun(UserSystem(a: A, b: B, c: C, d: D, domain: .continuous, discretization: .zoh, rate: 16000), x, length: Self.L)
        let e64 = maxRelError(r.double, ref), es = maxRelError(r.step, ref), eb = maxRelError(r.block, ref)
        print("statespace continuous zoh 4×(1→1): double \(e64), step \(es), block \(eb)")
        #expect(e64 <= 1e-10); #expect(es <= float32Bound(r.system)); #expect(eb <= float32Bound(r.system))
    }

    @Test("discrete 3-state system with 1 input and 2 outputs (encoder pads, D off-diagonal lanes)")
    func discreteNonSquare() throws {
        let A: Mat = [[0.5, 0.3, 0], [-0.3, 0.5, 0.1], [0, 0, -0.7]], B: Mat = [[1], [0.5], [-0.25]]
        let C: Mat = [[1, 0, 2], [0.3, -1, 0.5]], D: Mat = [[0.1], [-0.4]]
        let x = impulseAndNoise(Self.L)
        let ref = stateSpaceFilter(A, B, C, D, x, length: Self.L)
        let r = try realizeAndRun(UserSystem(a: A, b: B, c: C, d: D, rate: 16000), x, length: Self.L)
        let e64 = maxRelError(r.double, ref), es = maxRelError(r.step, ref), eb = maxRelError(r.block, ref)
        print("statespace discrete 3×(1→2): double \(e64), step \(es), block \(eb)")
        #expect(e64 <= 1e-10); #expect(es <= float32Bound(r.system)); #expect(eb <= float32Bound(r.system))
    }

    @Test("discrete 3-state system with 2 inputs and 1 output (decoder keeps output 0)")
    func discreteMoreInputs() throws {
        let A: Mat = [[0.2, 0.7, 0], [-0.7, 0.2, 0], [0.1, 0, 0.95]], B: Mat = [[1, 0], [0.5, -1], [0, 0.3]]
        let C: Mat = [[1, -0.5, 0.2]], D: Mat = [[0.25, -0.75]]
        let x = impulseAndNoise(Self.L, channels: 2)
        let ref = stateSpaceFilter(A, B, C, D, x, length: Self.L)
        let r = try realizeAndRun(UserSystem(a: A, b: B, c: C, d: D, rate: 16000), x, length: Self.L)
        #expect(maxRelError(r.double, ref) <= 1e-10)
        #expect(maxRelError(r.step, ref) <= float32Bound(r.system) && maxRelError(r.block, ref) <= float32Bound(r.system))
    }

    @Test("discrete 2×2 system with a full D matrix (off-diagonal D as λ = 0 lanes)")
    func discreteFullD() throws {
        let A: Mat = [[0.9, 0.2], [-0.2, 0.9]], B: Mat = [[1, 0], [0, 1]], C: Mat = [[1, 0], [0.5, 1]], D: Mat = [[0.3, -0.6], [0.8, 0.1]]
        let x = impulseAndNoise(Self.L, channels: 2)
        let ref = stateSpaceFilter(A, B, C, D, x, length: Self.L)
        let r = try realizeAndRun(UserSystem(a: A, b: B, c: C, d: D, rate: 48000), x, length: Self.L)
        #expect(maxRelError(r.double, ref) <= 1e-10)
        #expect(maxRelError(r.step, ref) <= float32Bound(r.system) && maxRelError(r.block, ref) <= float32Bound(r.system))
    }

    @Test("repeated but diagonalizable eigenvalues are accepted (A = 0.5·I)")
    func repeatedDiagonalizable() throws {
        let A: Mat = [[0.5, 0], [0, 0.5]], B: Mat = [[1], [2]], C: Mat = [[1, 1]]
        let x = impulseAndNoise(512)
        let r = try realizeAndRun(UserSystem(a: A, b: B, c: C, rate: 16000), x, length: 512)
        #expect(maxRelError(r.step, stateSpaceFilter(A, B, C, [[0]], x, length: 512)) <= float32Bound(r.system))
    }

    @Test("discrete transfer function (scipy's Chebyshev I band-pass b, a) equals the direct-form recursion")
    func discreteTransferFunction() throws {
        let ref = designReferences.first { $0.family == "chebyshev1" && $0.band == "bandpass" }!
        // b, a from the sections: polynomial products in z⁻¹.
        func conv(_ p: [Double], _ q: [Double]) -> [Double] {
            var r = [Double](repeating: 0, count: p.count + q.count - 1)
            for (i, a) in p.enumerated() { for (j, b) in q.enumerated() { r[i + j] += a * b } }
            return r
        }
        let b = ref.sos.reduce([1.0]) { conv($0, Array($1[0..<3])) }, a = ref.sos.reduce([1.0]) { conv($0, Array($1[3..<6])) }
        let x = impulseAndNoise(Self.L)
        let want = directForm(b, a, x)
        let r = try realizeAndRun(UserSystem(num: b, den: a, rate: 16000), x, length: Self.L)
        let e64 = maxRelError(r.double, want), es = maxRelError(r.step, want), eb = maxRelError(r.block, want)
        print("statespace tf cheby1 bandpass (8 poles): double \(e64), step \(es), block \(eb)")
        #expect(e64 <= 1e-8); #expect(es <= float32Bound(r.system)); #expect(eb <= float32Bound(r.system))
        // And a short one with a shorter numerator (no direct term beyond b0's share).
        let x2 = impulseAndNoise(1024)
        let r2 = try realizeAndRun(UserSystem(num: [0.5], den: [1, -1.2, 0.72], rate: 8000), x2, length: 1024)
        #expect(maxRelError(r2.step, directForm([0.5], [1, -1.2, 0.72], x2)) <= float32Bound(r2.system))
    }

    @Test("continuous transfer function equals its controllable canonical state space, bilinear")
    func continuousTransferFunction() throws {
        // H(s) = (2s² + 300s + 4e6)/(s³ + 1500 s² + 5e6 s + 2e9).
        let num = [2.0, 300, 4e6], den = [1.0, 1500, 5e6, 2e9]
        let A: Mat = [[-1500, -5e6, -2e9], [1, 0, 0], [0, 1, 0]], B: Mat = [[1], [0], [0]], C: Mat = [[2, 300, 4e6]], D: Mat = [[0]]
        let x = impulseAndNoise(Self.L)
        let viaSS = try realizeAndRun(UserSystem(a: A, b: B, c: C, d: D, domain: .continuous, rate: 16000), x, length: Self.L)
        let viaTF = try realizeAndRun(UserSystem(num: num, den: den, domain: .continuous, rate: 16000), x, length: Self.L)
        let T = 1.0 / 16000, ima = invert(add(identity(3), A, -T / 2))
        let Bd = matmul(ima, B.map { $0.map { $0 * T } })
        let want = stateSpaceFilter(matmul(ima, add(identity(3), A, T / 2)), Bd, matmul(C, ima), add(D, matmul(C, Bd), 0.5), x, length: Self.L)
        #expect(maxRelError(viaTF.double, want) <= 1e-9)
        #expect(maxRelError(viaSS.double, want) <= 1e-9)
        #expect(maxRelError(viaTF.step, want) <= float32Bound(viaTF.system))
    }

    @Test("refusals: defective, unstable, delay, improper, shapes, both forms, no rate, unknown key")
    func refusals() throws {
        func refused(_ json: String, _ words: String, kind: DesignError.Kind = .data) {
            do {
                let u = try UserSystem.parse(Array(json.utf8))
                _ = try StateSpaceRealization.realize(u)
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.kind == kind && error.message.contains(words), "\(json): \(error.message)")
            }
        }
        refused(#"{"a": [[0.5, 1], [0, 0.5]], "b": [[0], [1]], "c": [[1, 0]], "rate": 16000}"#, "not diagonalizable")
        refused(#"{"a": [[1.01]], "b": [[1]], "c": [[1]], "rate": 16000}"#, "unstable")
        refused(#"{"a": [[-1, 0], [0, 0.3]], "b": [[1], [1]], "c": [[1, 1]], "rate": 16000}"#, "unstable")
        refused(#"{"a": [[1]], "b": [[1]], "c": [[1]], "domain": "continuous", "rate": 16000}"#, "unstable")
        refused(#"{"a": [[0]], "b": [[1]], "c": [[1]], "rate": 16000}"#, "pure delay")
        refused(#"{"num": [1, 1, 1], "den": [1, -0.5], "rate": 16000}"#, "FIR part")
        refused(#"{"num": [1], "den": [1, -1, 0.25], "rate": 16000}"#, "repeated pole")
        refused(#"{"num": [1, 2, 3], "den": [1, 2], "domain": "continuous", "rate": 16000}"#, "improper")
        refused(#"{"num": [1], "den": [0, 1], "rate": 16000}"#, "den[0]")
        refused(#"{"a": [[0.5, 0]], "b": [[1]], "c": [[1]], "rate": 16000}"#, "square")
        refused(#"{"a": [[0.5]], "b": [[1], [2]], "c": [[1]], "rate": 16000}"#, "\"b\"")
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1, 2]], "rate": 16000}"#, "\"c\"")
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1]], "d": [[1, 2]], "rate": 16000}"#, "\"d\"")
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1]], "num": [1], "den": [1], "rate": 16000}"#, "not both")
        refused(#"{"rate": 16000}"#, "no system")
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1]]}"#, "no sample rate", kind: .usage)
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1]], "rate": 16000.5}"#, "whole number")
        refused(#"{"A": [[0.5]], "b": [[1]], "c": [[1]], "rate": 16000}"#, "unknown key 'A'")
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1]], "domain": "analog", "rate": 16000}"#, "domain")
        refused(#"{"a": [[0.5]], "b": [[1]], "c": [[1]], "discretization": "zoh", "rate": 16000}"#, "continuous systems only")
        refused(#"{"a": [[0.5]], "b": [[1]], "#, "bad system JSON")
        refused(#"[1, 2]"#, "bad system JSON")
    }
}
