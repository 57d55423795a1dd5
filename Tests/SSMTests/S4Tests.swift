// S4 (DPLR): golden conformance of every mode (diagonalized recurrence, DPLR step, Cauchy/FFT
// convolution), the Cauchy kernel against the direct Krylov kernel, step against conv at L = 4096,
// the eigensolver against closed forms, and the conditioning limit of the diagonalized form.
//
// `S4_MEASURE=1 swift test --filter S4Tests/measure` prints the conditioning / error tables quoted in
// S4.swift (N = 4 … 256, Δ ∈ {1e-3, 1e-2, 1e-1}, L = 4096, against a float64 dense recurrence).

import Foundation
import Testing
import ComplexModule
@testable import SSM

// MARK: - Helpers

/// The layer spec for S4 tests. `family` is not read by the S4 loader (only d_model, d_state and the
/// init's Δ range); `.s4d` stands in until the family enum has an `.s4` case.
private func s4Spec(H: Int, N: Int, dt: ClosedRange<Double>? = nil) -> LayerSpec {
    var s = LayerSpec(family: .s4d, dModel: H, dState: N)
    if let dt { s.dtMin = dt.lowerBound; s.dtMax = dt.upperBound }
    return s
}

/// `S4_MEASURE=1` also prints the errors the assertions check (for the record).
private let reporting = ProcessInfo.processInfo.environment["S4_MEASURE"] != nil
private func report(_ s: @autoclosure () -> String) { if reporting { print("S4 " + s()) } }

private struct Golden {
    let name: String
    let st: SafeTensors
    let H: Int, N: Int, B: Int, L: Int
    let atol: Double, rtol: Double

    init(_ path: String) throws {
        name = (path as NSString).lastPathComponent
        st = try SafeTensors(contentsOfFile: path)
        let a = try #require(st.tensors["param.kernel.A_real"]?.shape)
        let x = try #require(st.tensors["input"]?.shape)
        H = a[0]; N = 2 * a[1]; B = x[0]; L = x[2]
        let json = try #require(st.metadata["golden"])
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let tol = try #require(meta["tolerance"] as? [String: Any])
        atol = try #require(tol["atol"] as? Double); rtol = try #require(tol["rtol"] as? Double)
    }

    var spec: LayerSpec { s4Spec(H: H, N: N) }

    /// The layer's tensors under their upstream names (`param.` stripped).
    func reader() throws -> TensorReader {
        var t: [String: Tensor] = [:]
        for (name, info) in st.tensors where name.hasPrefix("param.") {
            t[String(name.dropFirst(6))] = Tensor(shape: info.shape, values: try st.floats(name))
        }
        return TensorReader(t)
    }

    func floats(_ name: String) throws -> [Float] { try st.floats(name) }

    /// Batch b of a (B, H, L) tensor as (L, H) rows.
    func rows(_ t: [Float], _ b: Int) -> [Float] {
        (0..<(L * H)).map { i in t[b * L * H + (i % H) * L + i / H] }
    }

    /// Golden check: every |y − r| ≤ atol·max(1, max|r|) + rtol·|r|. Returns (pass, max abs, worst ratio).
    func check(_ got: [Float], _ ref: [Float]) -> (pass: Bool, maxAbs: Double, ratio: Double) {
        let scale = max(1, ref.map { abs(Double($0)) }.max() ?? 0)
        var maxAbs = 0.0, ratio = 0.0
        for (g, r) in zip(got, ref) {
            let d = abs(Double(g) - Double(r))
            maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
            ratio = max(ratio, d.isNaN ? .infinity : d / (atol * scale + rtol * abs(Double(r))))
        }
        return (got.count == ref.count && ratio <= 1, maxAbs, ratio)
    }
}

private func s4GoldenCases() -> [String] {
    (goldenFiles("s4") ?? []).filter { ($0 as NSString).lastPathComponent.hasPrefix("fftconv_dplr") }
}

/// Runs `step` over U (L, H) from a zero state; returns Y (L, H) and the final state.
private func runSteps(H: Int, stateCount: Int, scratchCount: Int, _ U: [Float], length L: Int,
                      _ step: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void)
    -> (y: [Float], state: [Float]) {
    var y = [Float](repeating: 0, count: L * H)
    var state = [Float](repeating: 0, count: stateCount), scratch = [Float](repeating: 0, count: max(scratchCount, 1))
    U.withUnsafeBufferPointer { u in
        y.withUnsafeMutableBufferPointer { yp in
            state.withUnsafeMutableBufferPointer { s in
                scratch.withUnsafeMutableBufferPointer { sc in
                    for k in 0..<L { step(u.baseAddress! + k * H, yp.baseAddress! + k * H, s.baseAddress!, sc.baseAddress!) }
                }
            }
        }
    }
    return (y, state)
}

private func diagonalSteps(_ l: S4Layer, _ U: [Float], length L: Int) -> (y: [Float], state: [Float]) {
    runSteps(H: l.H, stateCount: l.stateCount, scratchCount: l.scratchCount, U, length: L) { l.diagonal.step($0, $1, state: $2, scratch: $3) }
}

private func dplrSteps(_ l: DPLRSSM, _ U: [Float], length L: Int) -> (y: [Float], state: [Float]) {
    runSteps(H: l.H, stateCount: l.stateCount, scratchCount: l.scratchCount, U, length: L) { l.step($0, $1, state: $2, scratch: $3) }
}

private func diagonalBlock(_ l: S4Layer, _ U: [Float], length L: Int) -> [Float] {
    var y = [Float](repeating: 0, count: L * l.H)
    var state = [Float](repeating: 0, count: l.stateCount), X = [Float](repeating: 0, count: L * l.stateCount)
    U.withUnsafeBufferPointer { u in
        y.withUnsafeMutableBufferPointer { yp in
            state.withUnsafeMutableBufferPointer { s in
                X.withUnsafeMutableBufferPointer { x in
                    l.diagonal.forward(u.baseAddress!, yp.baseAddress!, length: L, state: s.baseAddress!, scratch: x.baseAddress!)
                }
            }
        }
    }
    return y
}

private func tensorsReader(_ t: [String: Tensor]) -> TensorReader { TensorReader(t) }

// MARK: - Independent float64 reference (dense, written here from the README's equations)

/// Dense discrete matrices of one channel from the stored parameters, by Gauss–Jordan elimination
/// with partial pivoting on Cx: Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), B̄ = (I − Δ/2·A)⁻¹ΔB.
private func referenceDiscrete(_ p: S4Parameters, _ h: Int) -> (dA: [[Cx]], dB: [Cx], C: [Cx]) {
    let N = p.N, n = p.n, dt = p.dt[h]
    func full(_ x: [Cx]) -> [Cx] { x + x.map(\.conj) }
    let lam = full(p.lambda[h].map { Cx($0.real, $0.imaginary) })
    let q = full(p.p[h].map { Cx($0.real, $0.imaginary) })
    let B = full(p.b[h].map { Cx($0.real, $0.imaginary) }), C = full(p.c[h].map { Cx($0.real, $0.imaginary) })
    _ = n
    // Augmented [M | R | ΔB], M = I − Δ/2 A, R = I + Δ/2 A.
    var M = [[Cx]](repeating: [Cx](repeating: Cx(0), count: 2 * N + 1), count: N)
    for i in 0..<N {
        for j in 0..<N {
            let a = (i == j ? lam[i] : Cx(0)) - q[i] * q[j].conj
            M[i][j] = (i == j ? Cx(1) : Cx(0)) - (dt / 2) * a
            M[i][N + j] = (i == j ? Cx(1) : Cx(0)) + (dt / 2) * a
        }
        M[i][2 * N] = dt * B[i]
    }
    for k in 0..<N {
        let piv = (k..<N).max { M[$0][k].abs < M[$1][k].abs }!
        M.swapAt(k, piv)
        let inv = Cx(1) / M[k][k]
        for j in 0...(2 * N) { M[k][j] = M[k][j] * inv }
        for i in 0..<N where i != k {
            let f = M[i][k]
            if f.re == 0 && f.im == 0 { continue }
            for j in 0...(2 * N) { M[i][j] = M[i][j] - f * M[k][j] }
        }
    }
    return (M.map { Array($0[N..<(2 * N)]) }, M.map { $0[2 * N] }, C)
}

/// Flat split-storage copy of Ā for fast dense stepping.
private struct DenseRef {
    let N: Int
    var ar: [Double], ai: [Double], br: [Double], bi: [Double], cr: [Double], ci: [Double]
    let d: Double

    init(_ p: S4Parameters, _ h: Int, includeD: Bool = true) {
        let (dA, dB, C) = referenceDiscrete(p, h)
        N = p.N
        ar = dA.flatMap { $0.map(\.re) }; ai = dA.flatMap { $0.map(\.im) }
        br = dB.map(\.re); bi = dB.map(\.im); cr = C.map(\.re); ci = C.map(\.im)
        d = includeD ? p.d[h] : 0
    }

    /// y_k = Re(C x_k) + D u_k with x_k = Ā x_{k−1} + B̄ u_k from x = 0, in float64. Also the final state.
    func run(_ u: [Double]) -> (y: [Double], xr: [Double], xi: [Double]) {
        var xr = [Double](repeating: 0, count: N), xi = xr, nr = xr, ni = xr
        var y = [Double](repeating: 0, count: u.count)
        ar.withUnsafeBufferPointer { arp in
            ai.withUnsafeBufferPointer { aip in
                let a = arp.baseAddress!, b = aip.baseAddress!
                for k in 0..<u.count {
                    for i in 0..<N {
                        var sr = br[i] * u[k], si = bi[i] * u[k]
                        let row = i * N
                        for j in 0..<N {
                            sr += a[row + j] * xr[j] - b[row + j] * xi[j]
                            si += a[row + j] * xi[j] + b[row + j] * xr[j]
                        }
                        nr[i] = sr; ni[i] = si
                    }
                    swap(&xr, &nr); swap(&xi, &ni)
                    var s = d * u[k]
                    for i in 0..<N { s += cr[i] * xr[i] - ci[i] * xi[i] }
                    y[k] = s
                }
            }
        }
        return (y, xr, xi)
    }

    /// The direct kernel K_l = Re(C Ā^l B̄), l < L.
    func kernel(_ L: Int) -> [Double] {
        var xr = br, xi = bi, nr = br, ni = bi
        var K = [Double](repeating: 0, count: L)
        for l in 0..<L {
            var s = 0.0
            for i in 0..<N { s += cr[i] * xr[i] - ci[i] * xi[i] }
            K[l] = s
            for i in 0..<N {
                var sr = 0.0, si = 0.0
                for j in 0..<N {
                    sr += ar[i * N + j] * xr[j] - ai[i * N + j] * xi[j]
                    si += ar[i * N + j] * xi[j] + ai[i * N + j] * xr[j]
                }
                nr[i] = sr; ni[i] = si
            }
            swap(&xr, &nr); swap(&xi, &ni)
        }
        return K
    }
}

/// Normwise relative error of channel-major runs: max|got − ref| / max|ref|.
private func relErr(_ got: [Float], _ ref: [Double]) -> Double { maxRelError(got, ref) }

// MARK: - Tests

@Suite("S4 (DPLR)")
struct S4Tests {

    @Test("the golden s4 fftconv cases exist")
    func goldenCasesExist() {
        #expect(s4GoldenCases().count >= 3, "expected ≥ 3 s4/fftconv_dplr_* cases under \(goldenRoot)/s4")
    }

    @Test("dense Ā, B̄ match upstream's derived.dA / derived.dB", arguments: s4GoldenCases())
    func discreteMatrices(_ path: String) throws {
        let g = try Golden(path)
        let layer = try S4.loadDPLR(g.spec, g.reader(), prefix: "", arena: Arena())
        let dA = try g.floats("derived.dA"), dB = try g.floats("derived.dB")
        let N = g.N
        var errA = 0.0, errB = 0.0
        for h in 0..<g.H {
            let (A, B) = layer.parameters.discreteMatrices(channel: h)
            for i in 0..<(N * N) {
                errA = max(errA, abs(A[i].real - Double(dA[2 * (h * N * N + i)])), abs(A[i].imaginary - Double(dA[2 * (h * N * N + i) + 1])))
            }
            for i in 0..<N {
                errB = max(errB, abs(B[i].real - Double(dB[2 * (h * N + i)])), abs(B[i].imaginary - Double(dB[2 * (h * N + i) + 1])))
            }
        }
        #expect(errA <= 1e-5, "\(g.name): max |Ā − derived.dA| = \(errA)")
        #expect(errB <= 1e-5, "\(g.name): max |B̄ − derived.dB| = \(errB)")
    }

    @Test("DPLR step, block and conv mode match upstream outputs and states", arguments: s4GoldenCases())
    func dplrAndConvGolden(_ path: String) throws {
        let g = try Golden(path)
        let layer = try S4.loadDPLR(g.spec, g.reader(), prefix: "", arena: Arena())
        #expect(layer.weightsAreFinite)
        let input = try g.floats("input")
        let refs = try ["output", "output_step", "output_step_linear"].map { ($0, try g.floats($0)) }
        let finalLinear = try g.floats("state_final_linear"), finalDense = try g.floats("state_final")
        for b in 0..<g.B {
            let U = g.rows(input, b)
            let (y, state) = dplrSteps(layer, U, length: g.L)
            var yBlock = [Float](repeating: 0, count: g.L * g.H)
            var s2 = [Float](repeating: 0, count: layer.stateCount), sc = [Float](repeating: 0, count: layer.scratchCount)
            U.withUnsafeBufferPointer { u in yBlock.withUnsafeMutableBufferPointer { yp in s2.withUnsafeMutableBufferPointer { s in sc.withUnsafeMutableBufferPointer { scp in
                layer.forward(u.baseAddress!, yp.baseAddress!, length: g.L, state: s.baseAddress!, scratch: scp.baseAddress!)
            } } } }
            #expect(bits(yBlock) == bits(y), "\(g.name) b\(b): block differs from L steps")
            let conv = layer.convolve(U, length: g.L)
            for (name, ref) in refs {
                let r = g.rows(ref, b)
                for (mode, got) in [("dplr step", y), ("conv", conv)] {
                    let c = g.check(got, r)
                    report("\(g.name) b\(b): \(mode) vs \(name): max abs \(c.maxAbs), tolerance ratio \(c.ratio)")
                    #expect(c.pass, "\(g.name) b\(b): \(mode) vs \(name): max abs \(c.maxAbs), tolerance ratio \(c.ratio)")
                    #expect(c.ratio < 0.1, "\(g.name) b\(b): \(mode) vs \(name) uses \(c.ratio) of the tolerance")
                }
            }
            let half = state.withUnsafeBufferPointer { layer.halfState($0.baseAddress!) }
            let dense = state.withUnsafeBufferPointer { layer.denseState($0.baseAddress!) }
            let n = g.N / 2
            let c1 = g.check(half, Array(finalLinear[(b * g.H * n * 2)..<((b + 1) * g.H * n * 2)]))
            let c2 = g.check(dense, Array(finalDense[(b * g.H * g.N * 2)..<((b + 1) * g.H * g.N * 2)]))
            report("\(g.name) b\(b): DPLR state vs state_final_linear \(c1.maxAbs), dense vs state_final \(c2.maxAbs)")
            #expect(c1.pass, "\(g.name) b\(b): DPLR state vs state_final_linear: max abs \(c1.maxAbs)")
            #expect(c2.pass, "\(g.name) b\(b): DPLR dense state vs state_final: max abs \(c2.maxAbs)")
        }
    }

    @Test("diagonalized recurrence: step, block and dense state match upstream where admitted", arguments: s4GoldenCases())
    func diagonalGolden(_ path: String) throws {
        let g = try Golden(path)
        let reader = try g.reader()
        let loaded = Result { () throws(ModelError) in try S4.load(g.spec, reader, prefix: "", arena: Arena()) }
        if g.N > 4 {
            // HiPPO-LegS at N = 8: cond₂(V) ≈ 7.7e4 > 500, so the diagonal form is refused by default.
            guard case .failure(let e) = loaded else { Issue.record("\(g.name): N = \(g.N) was diagonalized; expected a refusal"); return }
            #expect(e.message.contains("N = \(g.N)") && e.message.contains("condition number"), "\(g.name): \(e.message)")
        }
        // Every case is also run through the diagonal form (forced for N > 4) to record what it gives.
        let layer = try S4.load(g.spec, g.reader(), prefix: "", arena: Arena(), maxConditionNumber: .infinity)
        report("\(g.name): cond₂(V) per channel \(layer.conditionNumbers.map { String(format: "%.3g", $0) })")
        #expect(layer.conditionNumbers.allSatisfy { (g.N == 4 ? 80...90 : 7e4...8.5e4).contains($0) }, "\(g.name): cond₂(V) \(layer.conditionNumbers)")
        let input = try g.floats("input"), out = try g.floats("output"), outStep = try g.floats("output_step")
        let final = try g.floats("state_final")
        for b in 0..<g.B {
            let U = g.rows(input, b)
            let (y, state) = diagonalSteps(layer, U, length: g.L)
            let yBlock = diagonalBlock(layer, U, length: g.L)
            #expect(bits(yBlock) == bits(y), "\(g.name) b\(b): block differs from L steps")
            let dense = state.withUnsafeBufferPointer { layer.denseState($0.baseAddress!) }
            let checks = [("output", g.check(y, g.rows(out, b))), ("output_step", g.check(y, g.rows(outStep, b))),
                          ("state_final", g.check(dense, Array(final[(b * g.H * g.N * 2)..<((b + 1) * g.H * g.N * 2)])))]
            for (name, c) in checks {
                report("\(g.name) b\(b): diagonal vs \(name): max abs \(c.maxAbs), tolerance ratio \(c.ratio)")
                // Admitted (N = 4), or a single step: within tolerance. Forced at N = 8 over L = 64 it is
                // not (asserted below): that is what the refusal protects against.
                if g.N <= 4 || g.L == 1 {
                    #expect(c.pass, "\(g.name) b\(b): diagonal vs \(name): max abs \(c.maxAbs), tolerance ratio \(c.ratio)")
                }
            }
        }
        if g.name.contains("N8_L64") {
            var worst = 0.0
            for b in 0..<g.B { worst = max(worst, g.check(diagonalSteps(layer, g.rows(input, b), length: g.L).y, g.rows(out, b)).ratio) }
            #expect(worst > 1, "\(g.name): the forced N = 8 diagonal form now meets the tolerance (ratio \(worst)); revisit S4.maxConditionNumber")
        }
    }

    @Test("Cauchy/Woodbury kernel equals the direct kernel Re(C Ā^l B̄) to 1e-9", arguments: [64, 1000, 4096])
    func cauchyKernel(_ L: Int) throws {
        var layers: [(String, S4Parameters)] = []
        if let path = s4GoldenCases().first(where: { $0.contains("H4_N8_L64") }) {
            let g = try Golden(path)
            layers.append((g.name, try S4.loadDPLR(g.spec, g.reader(), prefix: "", arena: Arena()).parameters))
        }
        var rng = SeededRandom(seed: 41)
        let spec = s4Spec(H: 3, N: 16)
        layers.append(("init H3 N16", try S4.loadDPLR(spec, TensorReader(try S4.initialize(spec, rng: &rng)), prefix: "", arena: Arena()).parameters))
        for (name, p) in layers {
            let K = p.kernel(length: L)
            for h in 0..<p.H {
                let direct = DenseRef(p, h).kernel(L)
                let e = maxRelError(K[h], direct)
                report("\(name) channel \(h), L = \(L): Cauchy kernel vs direct: rel \(e)")
                #expect(e <= 1e-9, "\(name) channel \(h), L = \(L): Cauchy kernel vs direct: rel \(e)")
            }
        }
    }

    @Test("step equals conv at L = 4096: DPLR step at N = 16, diagonal at N = 4")
    func stepEqualsConv() throws {
        let L = 4096
        for (N, tol) in [(16, 1e-5), (4, 1e-5)] {
            var rng = SeededRandom(seed: 7 + UInt64(N))
            let spec = s4Spec(H: 4, N: N)
            let t = try S4.initialize(spec, rng: &rng)
            let U = rng.normals(L * 4)
            let dplr = try S4.loadDPLR(spec, TensorReader(t), prefix: "", arena: Arena())
            let conv = dplr.convolve(U, length: L)
            let convD = conv.map(Double.init)
            let e1 = relErr(dplrSteps(dplr, U, length: L).y, convD)
            report("N = \(N): DPLR step vs conv at L = \(L): rel \(e1)")
            #expect(e1 <= tol, "N = \(N): DPLR step vs conv, rel \(e1)")
            if N == 4 {
                let diag = try S4.load(spec, TensorReader(t), prefix: "", arena: Arena())
                let e2 = relErr(diagonalSteps(diag, U, length: L).y, convD)
                report("N = 4: diagonal step vs conv at L = \(L): rel \(e2), cond₂(V) \(diag.conditionNumbers)")
                #expect(e2 <= tol, "N = 4: diagonal step vs conv, rel \(e2)")
            } else {
                #expect(modelError { try S4.load(spec, TensorReader(t), prefix: "", arena: Arena()) } != nil,
                        "N = \(N) HiPPO was diagonalized")
            }
            // And conv mode against the independent float64 dense recurrence.
            for h in 0..<4 {
                let u = (0..<L).map { Double(U[$0 * 4 + h]) }
                let ref = DenseRef(dplr.parameters, h).run(u).y
                let e3 = relErr((0..<L).map { conv[$0 * 4 + h] }, ref)
                report("N = \(N) channel \(h): conv vs float64 recurrence: rel \(e3)")
                #expect(e3 <= 1e-6, "N = \(N) channel \(h): conv vs float64 recurrence, rel \(e3)")
            }
        }
    }

    @Test("the diagonal form is refused beyond the conditioning limit, naming N and cond₂(V)")
    func refusal() throws {
        var rng = SeededRandom(seed: 3)
        for N in [4, 6, 8, 16] {
            let spec = s4Spec(H: 2, N: N)
            let t = try S4.initialize(spec, rng: &rng)
            let message = modelError { try S4.load(spec, TensorReader(t), prefix: "", arena: Arena()) }
            if N == 4 {
                #expect(message == nil, "N = 4 refused: \(message ?? "")")
                let l = try S4.load(spec, TensorReader(t), prefix: "", arena: Arena())
                #expect(l.conditionNumbers.allSatisfy { $0 < S4.maxConditionNumber })
                #expect(l.stateCount == 2 * 2 * 4 && l.dplr.stateCount == 2 * 2 * 2)
            } else {
                let m = try #require(message, "N = \(N) HiPPO-LegS was diagonalized")
                #expect(m.contains("N = \(N)") && m.contains("condition number") && m.contains("S4.loadDPLR"), "\(m)")
                // The DPLR form loads any N.
                #expect(modelError { try S4.loadDPLR(spec, TensorReader(t), prefix: "", arena: Arena()) } == nil)
            }
        }
    }

    @Test("refused inputs: nonzero l_kernel, odd d_state, missing P")
    func badInputs() throws {
        var rng = SeededRandom(seed: 5)
        let spec = s4Spec(H: 2, N: 4)
        var t = try S4.initialize(spec, rng: &rng)
        t["kernel.l_kernel"] = Tensor([64], shape: [1])
        let m = try #require(modelError { try S4.load(spec, TensorReader(t), prefix: "", arena: Arena()) })
        #expect(m.contains("l_kernel") && m.contains("64"), "\(m)")
        #expect(modelError { try S4.loadDPLR(spec, TensorReader(t), prefix: "", arena: Arena()) } != nil)
        t["kernel.l_kernel"] = nil   // absent means 0
        #expect(modelError { try S4.load(spec, TensorReader(t), prefix: "", arena: Arena()) } == nil)
        t["kernel.P"] = nil
        #expect(modelError { try S4.load(spec, TensorReader(t), prefix: "", arena: Arena()) }?.contains("kernel.P") == true)
        #expect(modelError { try S4.initialize(s4Spec(H: 2, N: 5), rng: &rng) }?.contains("even") == true)
    }

    @Test("initialization: upstream names and shapes, HiPPO-LegS spectrum −1 … −N")
    func initialization() throws {
        var rng = SeededRandom(seed: 11)
        let (H, N) = (3, 8)
        let t = try S4.initialize(s4Spec(H: H, N: N), rng: &rng)
        let shapes: [String: [Int]] = ["kernel.inv_dt": [H, 1], "kernel.A_real": [H, N / 2], "kernel.A_imag": [H, N / 2],
                                       "kernel.P": [1, H, N / 2, 2], "kernel.B": [1, H, N / 2, 2], "kernel.C": [1, H, N / 2, 2],
                                       "D": [1, H], "kernel.l_kernel": [1]]
        #expect(Set(t.keys) == Set(shapes.keys))
        for (k, s) in shapes { #expect(t[k]?.shape == s, "\(k): \(t[k]?.shape ?? [])") }
        #expect(t["kernel.l_kernel"]?.values == [0])
        for v in t["kernel.inv_dt"]!.values { #expect(Double(v) >= log(1e-3) - 1e-6 && Double(v) <= log(1e-1) + 1e-6) }
        // A = diag(conj Λ) − conj(P)conj(P)ᴴ is unitarily similar to the HiPPO-LegS matrix, whose
        // eigenvalues are −(n+1). Float32 storage of Λ, P perturbs them (ill-conditioned; ~1e-3 at N = 8).
        let l = try S4.load(s4Spec(H: H, N: N), TensorReader(t), prefix: "", arena: Arena(), maxConditionNumber: .infinity)
        for h in 0..<H {
            let ev = l.eigenvalues[h].sorted { $0.real > $1.real }
            for (k, e) in ev.enumerated() {
                #expect(abs(e.real + Double(k + 1)) < 5e-3 && abs(e.imaginary) < 5e-3, "channel \(h): eigenvalue \(k) = \(e)")
            }
        }
        // In Double (before float32 rounding) the spectrum is exact to ~1e-12 at N = 4 and N = 8.
        for n in [4, 8] {
            let (lam, V) = Initialization.hippoLegSNormal(n)
            let P = (0..<(n / 2)).map { j in (0..<n).reduce(Complex<Double>.zero) { $0 + V[$1][j].conjugate * (Double($1) + 0.5).squareRoot() } }
            let p = S4Parameters(dt: [0.01], lambda: [lam], p: [P], b: [P], c: [P], d: [0])
            let ev = try #require(ComplexEigen.decompose(p.stateMatrix(0))).values.sorted { $0.real > $1.real }
            for (k, e) in ev.enumerated() {
                #expect(abs(e.real + Double(k + 1)) < 1e-9 && abs(e.imaginary) < 1e-9, "N = \(n): eigenvalue \(k) = \(e)")
            }
        }
    }

    @Test("eigensolver: A V = V diag(a) on random complex matrices; singular values of a known matrix")
    func eigensolver() throws {
        var rng = SeededRandom(seed: 17)
        for n in [1, 2, 3, 7, 16, 40] {
            var A = CMatrix(n: n)
            for i in 0..<(n * n) { A.re[i] = rng.normal(); A.im[i] = rng.normal() }
            let (a, V) = try #require(ComplexEigen.decompose(A))
            var res = 0.0, norm = 0.0
            for i in 0..<n {
                for j in 0..<n {
                    var s = Complex<Double>.zero
                    for k in 0..<n { s = s + A[i, k] * V[k, j] }
                    res = max(res, (s - V[i, j] * a[j]).length)
                    norm = max(norm, A[i, j].length)
                }
            }
            #expect(res <= 1e-12 * Double(n) * norm, "n = \(n): residual \(res)")
            // trace = Σ eigenvalues
            var tr = Complex<Double>.zero, sum = Complex<Double>.zero
            for i in 0..<n { tr = tr + A[i, i]; sum = sum + a[i] }
            #expect((tr - sum).length <= 1e-11 * Double(n) * norm)
        }
        // M = U diag(s) Wᴴ with U, W unitary (Householder reflectors): singular values s.
        let n = 6, s: [Double] = [1e-9, 3, 1, 7, 0.5, 2]
        func reflector() -> CMatrix {
            var v = (0..<n).map { _ in Complex(rng.normal(), rng.normal()) }
            let nv = v.reduce(0) { $0 + $1.lengthSquared }.squareRoot()
            v = v.map { $0 / nv }
            var R = CMatrix.identity(n)
            for i in 0..<n { for j in 0..<n { R[i, j] = R[i, j] - v[i] * v[j].conjugate * 2 } }
            return R
        }
        let U = reflector(), W = reflector()
        var M = CMatrix(n: n)
        for i in 0..<n { for j in 0..<n {
            var acc = Complex<Double>.zero
            for k in 0..<n { acc = acc + U[i, k] * s[k] * W[j, k].conjugate }
            M[i, j] = acc
        } }
        let sv = ComplexEigen.singularValues(M).sorted()
        for (g, r) in zip(sv, s.sorted()) { #expect(abs(g - r) <= 1e-14 * 7 + 1e-6 * r, "singular value \(g) vs \(r)") }
        // cond₂(V) of HiPPO-LegS N = 4 (numpy: 86.1), from the initialized layer.
        var r2 = SeededRandom(seed: 1)
        let spec = s4Spec(H: 1, N: 4)
        let l = try S4.load(spec, TensorReader(try S4.initialize(spec, rng: &r2)), prefix: "", arena: Arena())
        #expect(abs(l.conditionNumbers[0] - 86.1) < 0.5, "cond₂(V) at N = 4: \(l.conditionNumbers[0])")
    }

    // MARK: measurement (opt-in)

    /// The tables quoted in S4.swift. Per N and Δ (H = 1, HiPPO-LegS init, D = 0 so the error is the
    /// SSM's own): cond₂(V), Σ|C̃_i B̃_i| / max|K| (the residue amplification), and the normwise relative
    /// error of the float32 diagonal step and of the float32 DPLR step against the float64 dense
    /// recurrence, over L = 4096 samples of N(0, 1) input.
    @Test("measure: conditioning and step error vs N", .enabled(if: ProcessInfo.processInfo.environment["S4_MEASURE"] != nil))
    func measure() throws {
        let L = Int(ProcessInfo.processInfo.environment["S4_MEASURE_L"] ?? "") ?? 4096
        let Ns = (ProcessInfo.processInfo.environment["S4_MEASURE_N"] ?? "4,6,8,10,12,16,32,64,128,256").split(separator: ",").compactMap { Int($0) }
        print("S4 measure: L = \(L)")
        print("S4 N | dt | cond2(V) | amplification | diag f32 err | dplr f32 err | s4d-same-poles f32 err")
        for N in Ns {
            for dt in [1e-3, 1e-2, 1e-1] {
                var rng = SeededRandom(seed: UInt64(N * 1000 + Int(dt * 1e4)))
                let spec = s4Spec(H: 1, N: N, dt: dt...dt)
                var t = try S4.initialize(spec, rng: &rng)
                t["D"] = Tensor([0], shape: [1, 1])
                let u = rng.normals(L)
                let dplr = try S4.loadDPLR(spec, TensorReader(t), prefix: "", arena: Arena())
                let ref = DenseRef(dplr.parameters, 0, includeD: false).run(u.map(Double.init)).y
                let eD = relErr(dplrSteps(dplr, u, length: L).y, ref)
                // S4D with the same Λ, B, C (no P): the float32 floor of any diagonal layer with these poles.
                let p = dplr.parameters
                let s4d = S4Parameters(dt: p.dt, lambda: p.lambda, p: [p.p[0].map { _ in .zero }], b: p.b, c: p.c, d: [0])
                let refS4D = DenseRef(s4d, 0, includeD: false).run(u.map(Double.init)).y
                let eS4D = relErr(dplrSteps(DPLRSSM(s4d, arena: Arena()), u, length: L).y, refS4D)
                var cond = "—", amp = "—", eDiag = "—"
                switch Result(catching: { () throws(ModelError) in try S4.load(spec, TensorReader(t), prefix: "", arena: Arena(), maxConditionNumber: .infinity) }) {
                case .success(let l):
                    cond = String(format: "%.2g", l.conditionNumbers[0])
                    let w = l.diagonal.weights, P = l.diagonal.P
                    var a = 0.0
                    for i in 0..<P {
                        let br = Double(w.b[i]), bi = Double(w.b[P + i]), cr = Double(w.c[i]), ci = Double(w.c[P + i])
                        a += (br * br + bi * bi).squareRoot() * (cr * cr + ci * ci).squareRoot()
                    }
                    let K = p.kernel(length: L)[0]
                    amp = String(format: "%.2g", a / (K.map(abs).max() ?? 1))
                    eDiag = String(format: "%.2g", relErr(diagonalSteps(l, u, length: L).y, ref))
                case .failure(let e):
                    eDiag = "refused: \(e.message.prefix(60))"
                }
                print("S4 \(N) | \(dt) | \(cond) | \(amp) | \(eDiag) | \(String(format: "%.2g", eD)) | \(String(format: "%.2g", eS4D))")
            }
        }
    }
}
