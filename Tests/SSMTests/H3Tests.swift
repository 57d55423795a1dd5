// The H3 layer against independent truth: a plain float64 H3 forward written here from the paper and
// upstream h3.py (projections, the shift SSM's FIR K_l = Σ_m B_m C_{m+l}, the diagonal SSM's kernel
// from its discretized Ā and B̄ — dense bilinear solve for S4 — and direct causal convolutions), then
// step == block == parallel == convolution mode, fixed state, model-file round trip and refusals.
// `H3_MEASURE=1 swift test --filter H3Tests` prints the measured errors the assertions check.

import Foundation
import Testing
@testable import SSM

/// The H3 configurations under test: both inner families, both head layouts, two discretizations.
private let h3Layers: [LayerSpec] = {
    func h3(_ inner: Family, H: Int, N: Int, d: Int, _ disc: Discretization? = nil) -> LayerSpec {
        var l = LayerSpec(family: .h3, dModel: H, dState: N, discretization: disc)
        l.inner = inner; l.headDim = d
        return l
    }
    return [h3(.s4d, H: 4, N: 8, d: 1), h3(.s4d, H: 4, N: 8, d: 2, .zoh), h3(.s4d, H: 6, N: 4, d: 3),
            h3(.s4, H: 4, N: 8, d: 1), h3(.s4, H: 4, N: 4, d: 2)]
}()

private let reporting = ProcessInfo.processInfo.environment["H3_MEASURE"] != nil
private func report(_ s: @autoclosure () -> String) { if reporting { print("H3 " + s()) } }

private func name(_ l: LayerSpec) -> String {
    "h3/\((l.inner ?? .s4d).rawValue)/d=\(l.headDim ?? 1)/H=\(l.dModel)/N=\(l.dState)\(l.discretization.map { "/" + $0.rawValue } ?? "")"
}

// MARK: - The float64 reference

/// x = M⁻¹ R (M: n×n, R: n×m), Gaussian elimination with partial pivoting.
private func solve(_ M: [[Cx]], _ R: [[Cx]]) -> [[Cx]] {
    var A = M, X = R
    let n = A.count
    for c in 0..<n {
        let p = (c..<n).max { A[$0][c].abs < A[$1][c].abs }!
        A.swapAt(c, p); X.swapAt(c, p)
        for r in 0..<n where r != c {
            let f = A[r][c] / A[c][c]
            if f == Cx(0) { continue }
            for j in 0..<n { A[r][j] = A[r][j] - f * A[c][j] }
            for j in 0..<X[r].count { X[r][j] = X[r][j] - f * X[c][j] }
        }
    }
    return (0..<n).map { r in X[r].map { $0 / A[r][r] } }
}

/// The diagonal branch's kernel K_l (l < L) of every head, from the tensors:
/// S4D (H3's SSKernelDiag): Λ = −exp(inv_A_real) + i·A_imag, Δ = exp(log_dt), K_l = 2Re Σ_j C_j Ā_j^l B̄_j;
/// S4: the dense N×N bilinear system Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), B̄ = (I − Δ/2·A)⁻¹ΔB with
/// A = diag(Λ, Λ̄) − p pᴴ, p = (P, P̄), K_l = Re(c Ā^l B̄) with c = (C, C̄), Λ = −exp(A_real) − i·A_imag.
private func diagonalKernels(_ t: [String: Tensor], _ l: LayerSpec, length L: Int) -> [[Double]] {
    let nh = l.dModel / (l.headDim ?? 1), n = l.dState / 2
    func v(_ s: String) -> [Double] { t["layers.0.layer." + s]!.values.map(Double.init) }
    func cx(_ s: String) -> [Cx] { let a = v(s); return (0..<(a.count / 2)).map { Cx(a[2 * $0], a[2 * $0 + 1]) } }
    if (l.inner ?? .s4d) == .s4d {
        let logDt = v("kernel.kernel.log_dt"), aRe = v("kernel.kernel.inv_A_real"), aIm = v("kernel.kernel.A_imag")
        let B = cx("kernel.kernel.B"), C = cx("kernel.kernel.C")
        return (0..<nh).map { h in
            let dt = exp(logDt[h])
            var K = [Double](repeating: 0, count: L)
            for j in 0..<n {
                let i = h * n + j
                let lam = Cx(-exp(aRe[i]), aIm[i]), z = dt * lam
                let a: Cx, bBar: Cx
                if (l.discretization ?? .bilinear) == .zoh {
                    a = Cx.exp(z); bBar = (a - Cx(1)) / lam * B[i]
                } else {
                    a = (Cx(1) + 0.5 * z) / (Cx(1) - 0.5 * z); bBar = dt * B[i] / (Cx(1) - 0.5 * z)
                }
                var x = bBar
                for k in 0..<L { K[k] += 2 * (C[i] * x).re; x = a * x }
            }
            return K
        }
    }
    let invDt = v("kernel.inv_dt"), aRe = v("kernel.A_real"), aIm = v("kernel.A_imag")
    let B = cx("kernel.B"), C = cx("kernel.C"), P = cx("kernel.P")
    let N = 2 * n
    return (0..<nh).map { h in
        let dt = exp(invDt[h])
        let lam = (0..<n).map { Cx(-exp(aRe[h * n + $0]), -aIm[h * n + $0]) }
        func full(_ x: [Cx]) -> [Cx] { let s = Array(x[(h * n)..<(h * n + n)]); return s + s.map(\.conj) }
        let lf = lam + lam.map(\.conj), p = full(P), b = full(B), c = full(C)
        var Mm = [[Cx]](repeating: [Cx](repeating: Cx(0), count: N), count: N), Mp = Mm
        for r in 0..<N {
            for s in 0..<N {
                let a = (r == s ? lf[r] : Cx(0)) - p[r] * p[s].conj
                Mm[r][s] = (r == s ? Cx(1) : Cx(0)) - (dt / 2) * a
                Mp[r][s] = (r == s ? Cx(1) : Cx(0)) + (dt / 2) * a
            }
        }
        let dA = solve(Mm, Mp), dB = solve(Mm, b.map { [dt * $0] }).map { $0[0] }
        var x = dB, K = [Double](repeating: 0, count: L)
        for k in 0..<L {
            var s = Cx(0)
            for r in 0..<N { s = s + c[r] * x[r] }
            K[k] = s.re
            x = (0..<N).map { r in (0..<N).reduce(Cx(0)) { $0 + dA[r][$1] * x[$1] } }
        }
        return K
    }
}

/// The H3 forward in Double for a single-layer model's tensors (`layers.0.layer.` prefix), as
/// h3.py's `forward` computes it (u (L, H) → (L, H)), with direct causal convolutions.
private func referenceH3(_ t: [String: Tensor], _ l: LayerSpec, _ u: [Float], length L: Int) -> [Double] {
    let H = l.dModel, N = l.dState, d = l.headDim ?? 1, nh = H / d
    func v(_ s: String) -> [Double] { t["layers.0.layer." + s]!.values.map(Double.init) }
    func linear(_ s: String, _ x: [Double]) -> [Double] {   // x (L, H) → W x + b, W (out, in)
        let W = v(s + ".weight"), b = v(s + ".bias")
        var y = [Double](repeating: 0, count: L * H)
        for k in 0..<L { for o in 0..<H {
            var acc = b[o]
            for i in 0..<H { acc += W[o * H + i] * x[k * H + i] }
            y[k * H + o] = acc
        } }
        return y
    }
    let x = u.map(Double.init)
    let q = linear("q_proj", x), k = linear("k_proj", x), vv = linear("v_proj", x)
    // Shift SSM: K_l = Σ_m B_m C_{m+l} (l < N), then k̃ = K ∗ k + ssm_k_D ⊙ k.
    let sB = v("ssm_k_kernel.kernel.B"), sC = v("ssm_k_kernel.kernel.C"), sD = v("ssm_k_D")
    var kt = [Double](repeating: 0, count: L * H)
    for h in 0..<H {
        let K = (0..<N).map { l in (0..<(N - l)).reduce(0.0) { $0 + sB[h * N + $1] * sC[h * N + $1 + l] } }
        for s in 0..<L {
            var acc = sD[h] * k[s * H + h]
            for j in 0..<min(N, s + 1) { acc += K[j] * k[(s - j) * H + h] }
            kt[s * H + h] = acc
        }
    }
    // Diagonal SSM per head over kv[h, d1, d2] = k̃[h·d + d1]·v[h·d + d2], plus D[h]·kv.
    let Kd = diagonalKernels(t, l, length: L), D = v("D")
    var o = [Double](repeating: 0, count: L * H)
    for h in 0..<nh {
        for d1 in 0..<d {
            for d2 in 0..<d {
                let kv = (0..<L).map { kt[$0 * H + h * d + d1] * vv[$0 * H + h * d + d2] }
                let y: [Double] = Kd[h].withUnsafeBufferPointer { K in
                    kv.withUnsafeBufferPointer { z in
                        (0..<L).map { s in
                            var acc = D[h] * z[s]
                            for j in 0...s { acc += K[j] * z[s - j] }
                            return acc
                        }
                    }
                }
                // o[d2·(H/d) + h] += q[h·d + d1]·y  (upstream's mul_sum over d1, 'b d h l -> b (d h) l').
                for s in 0..<L { o[s * H + d2 * nh + h] += q[s * H + h * d + d1] * y[s] }
            }
        }
    }
    return linear("output_linear", o)
}

/// A single-layer H3 model; the shift SSM's B is made random (not e₁) so that the general
/// K_l = Σ_m B_m C_{m+l} is exercised.
private func h3Model(_ l: LayerSpec, seed: UInt64) throws -> (Model, [String: Tensor]) {
    let spec = layerOnlySpec(l)
    var t = try Model.initialize(spec, seed: seed)
    var rng = SeededRandom(seed: seed &+ 100)
    let name = "layers.0.layer.ssm_k_kernel.kernel.B"
    t[name] = Tensor(shape: t[name]!.shape, values: rng.normals(l.dModel * l.dState, scale: 0.5))
    return (try Model(spec: spec, tensors: t), t)
}

@Suite("H3")
struct H3Tests {
    @Test("step, block scan and convolution == a float64 H3 forward (direct convolutions with the materialized kernels)",
          arguments: h3Layers)
    func matchesReference(_ l: LayerSpec) throws {
        let L = 4096, H = l.dModel
        let (m, t) = try h3Model(l, seed: 7)
        var rng = SeededRandom(seed: 8)
        let u = rng.normals(L * H)
        let ref = referenceH3(t, l, u, length: L)
        #expect(ref.allSatisfy { $0.isFinite })
        #expect(ref.map { abs($0) }.max()! > 0.1, "\(name(l)): reference output is (nearly) zero; the comparison would be vacuous")
        let tol = 1e-5
        for (mode, y) in [("step", runSteps(m, u, length: L)), ("scan", runForward(m, u, length: L, mode: .scan)),
                          ("conv", runForward(m, u, length: L, mode: .convolution))] {
            let e = maxRelError(y, ref)
            report("\(name(l)) \(mode) vs float64 reference: max rel error \(e)")
            #expect(e <= tol, "\(name(l)): \(mode) vs float64 reference, max rel error \(e)")
        }
    }

    @Test("step == forward(.scan) == forward(.parallelScan) == forward(.convolution) at L = 4096", arguments: h3Layers)
    func modesAgree(_ l: LayerSpec) throws {
        let L = 4096, H = l.dModel
        let (m, _) = try h3Model(l, seed: 2024)
        var rng = SeededRandom(seed: 77)
        let u = rng.normals(L * H)
        let stepState = m.makeState(maxBlock: 1)
        let ref = runSteps(m, u, length: L, state: stepState)
        #expect(ref.map { abs($0) }.max()! > 0.1, "\(name(l)): output is (nearly) zero")
        for mode in ForwardMode.allCases {
            let s = m.makeState(maxBlock: L)
            let y = runForward(m, u, length: L, mode: mode, state: s)
            let e = maxRelError(y, ref)
            report("\(name(l)) \(mode.rawValue) vs step: max rel error \(e)")
            #expect(e <= 1e-5, "\(name(l)): \(mode) vs step, max rel error \(e)")
            if mode == .convolution {
                #expect(s.snapshot.allSatisfy { $0 == 0 }, "convolution mode must leave the state untouched")
            } else {
                #expect(maxRelError(s.snapshot, stepState.snapshot) <= 1e-5, "\(name(l)): \(mode) final state")
            }
        }
        // A block split across calls carries the shift history and the SSM state.
        let s = m.makeState(maxBlock: 1000)
        let a = runForward(m, Array(u[0..<(1500 * H)]), length: 1500, mode: .scan, state: s)
        let b = runForward(m, Array(u[(1500 * H)...]), length: L - 1500, mode: .scan, state: s)
        #expect(maxRelError(a + b, ref) <= 1e-5)
    }

    @Test("state: N·H shift history + (H/d)·d²·N/2 complex lanes, fixed over 20 000 samples; reset() is a new stream",
          arguments: h3Layers)
    func stateIsFixed(_ l: LayerSpec) throws {
        let (m, _) = try h3Model(l, seed: 3)
        let H = l.dModel, N = l.dState, d = l.headDim ?? 1
        let floats = N * H + 2 * (H / d) * d * d * (N / 2)
        let s = m.makeState()
        #expect(m.stateCount == floats && s.stateBytes == 4 * floats)
        var rng = SeededRandom(seed: 4)
        let u = rng.normals(20_000 * H)
        _ = runSteps(m, u, length: 20_000, state: s)
        #expect(s.stateBytes == 4 * floats && s.snapshot.count == floats)
        #expect(s.snapshot.allSatisfy { $0.isFinite } && s.snapshot.contains { $0 != 0 })
        // The shift history holds exactly the last N values of k (upstream SSKernelShift's state with B = e₁).
        s.reset()
        #expect(s.snapshot.allSatisfy { $0 == 0 })
        let v = Array(u.prefix(50 * H))
        #expect(bits(runSteps(m, v, length: 50, state: s)) == bits(runSteps(m, v, length: 50)))
    }

    @Test("model file round trip: upstream tensor names, the spec's inner and head_dim, outputs bit for bit")
    func modelFileRoundTrip() throws {
        var h3 = LayerSpec(family: .h3, dModel: 4, dState: 8)
        h3.inner = .s4d; h3.headDim = 2
        var h3s4 = LayerSpec(family: .h3, dModel: 4, dState: 4)
        h3s4.inner = .s4
        let spec = ModelSpec(sampleRate: 16000, dInput: 1, dModel: 4, dOutput: 1, encoder: true, decoder: true, blocks: [
            BlockSpec(layer: h3, norm: .layer), BlockSpec(layer: h3s4, norm: .rms, output: .linear),
        ])
        let t = try Model.initialize(spec, seed: 11)
        let names = Set(t.keys.filter { $0.hasPrefix("layers.0.layer.") }.map { String($0.dropFirst("layers.0.layer.".count)) })
        #expect(names == ["q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias", "v_proj.weight", "v_proj.bias",
                          "ssm_k_kernel.kernel.B", "ssm_k_kernel.kernel.C", "ssm_k_D",
                          "kernel.kernel.log_dt", "kernel.kernel.inv_A_real", "kernel.kernel.A_imag",
                          "kernel.kernel.B", "kernel.kernel.C", "D", "output_linear.weight", "output_linear.bias"])
        let names1 = Set(t.keys.filter { $0.hasPrefix("layers.1.layer.kernel.") })
        #expect(names1 == ["layers.1.layer.kernel.inv_dt", "layers.1.layer.kernel.A_real", "layers.1.layer.kernel.A_imag",
                           "layers.1.layer.kernel.B", "layers.1.layer.kernel.C", "layers.1.layer.kernel.P",
                           "layers.1.layer.kernel.l_kernel"])
        #expect(t["layers.0.layer.D"]!.shape == [2] && t["layers.0.layer.kernel.kernel.B"]!.shape == [2, 4, 2])
        #expect(t["layers.0.layer.ssm_k_kernel.kernel.B"]!.values == (0..<32).map { $0 % 8 == 0 ? 1 : 0 })

        let bytes = ModelFile.serialize(spec: spec, tensors: t)
        let (spec2, t2) = try ModelFile.parse(bytes)
        #expect(spec2 == spec && spec2.blocks[0].layer.inner == .s4d && spec2.blocks[0].layer.headDim == 2
                && spec2.blocks[1].layer.inner == .s4)
        #expect(t2 == t)
        let m1 = try Model(spec: spec, tensors: t), m2 = try ModelFile.load(bytes)
        var rng = SeededRandom(seed: 12)
        let u = rng.normals(500)
        let y1 = runSteps(m1, u, length: 500)
        #expect(y1.map { abs($0) }.max()! > 0)
        #expect(bits(y1) == bits(runSteps(m2, u, length: 500)))
        #expect(bits(runForward(m1, u, length: 500, mode: .scan)) == bits(runForward(m2, u, length: 500, mode: .scan)))
        // The JSON carries the keys as the README documents them.
        let json = try #require(try SafeTensors(bytes: bytes).metadata[ModelFile.metadataKey])
        #expect(json.contains("\"family\":\"h3\"") && json.contains("\"inner\":\"s4d\"") && json.contains("\"head_dim\":2"))
    }

    @Test("bad H3 files are refused with a message naming the tensor or field")
    func badFilesRefused() throws {
        var l = LayerSpec(family: .h3, dModel: 4, dState: 8)
        l.headDim = 2
        let spec = layerOnlySpec(l)
        let t = try Model.initialize(spec, seed: 5)
        func load(_ s: ModelSpec, _ t: [String: Tensor]) -> String? {
            modelError { try ModelFile.load(ModelFile.serialize(spec: s, tensors: t)) }
        }
        #expect(load(spec, t) == nil)
        for missing in ["layers.0.layer.ssm_k_kernel.kernel.C", "layers.0.layer.q_proj.bias", "layers.0.layer.kernel.kernel.A_imag",
                        "layers.0.layer.D", "layers.0.layer.output_linear.weight", "layers.0.layer.ssm_k_D"] {
            var bad = t
            bad[missing] = nil
            let e = load(spec, bad)
            #expect(e?.contains("missing tensor '\(missing)'") == true, "\(missing): \(e ?? "loaded")")
        }
        for (wrong, shape) in [("layers.0.layer.kernel.kernel.inv_A_real", [4, 4]), ("layers.0.layer.k_proj.weight", [4, 5]),
                               ("layers.0.layer.ssm_k_kernel.kernel.B", [4, 7]), ("layers.0.layer.D", [4])] {
            var bad = t
            bad[wrong] = Tensor(shape: shape, values: [Float](repeating: 0.1, count: shape.reduce(1, *)))
            let e = load(spec, bad)
            #expect(e?.contains("tensor '\(wrong)' has shape \(shape)") == true, "\(wrong): \(e ?? "loaded")")
        }
        var extra = t
        extra["layers.0.layer.ssm_k_kernel.kernel.P"] = Tensor(shape: [1], values: [0])
        #expect(load(spec, extra)?.contains("unexpected tensor 'layers.0.layer.ssm_k_kernel.kernel.P'") == true)
        // An S4D branch whose discretized eigenvalue leaves the unit disc.
        var unstable = t
        unstable["layers.0.layer.kernel.kernel.inv_A_real"] = Tensor(shape: [2, 4], values: [Float](repeating: 3, count: 8))
        unstable["layers.0.layer.kernel.kernel.log_dt"] = Tensor(shape: [2], values: [0, 0])   // Δ = 1: Ā = 1 − e³ under Euler
        var eulerSpec = spec
        eulerSpec.blocks[0].layer.discretization = .euler
        #expect(load(eulerSpec, unstable)?.contains("block 0 (h3): unstable") == true)
        #expect(load(spec, unstable) == nil, "bilinear (the default) is A-stable")
        // Sizes and families.
        var s = spec
        s.blocks[0].layer.headDim = 3
        #expect(load(s, t)?.contains("head_dim 3 must be positive and divide d_model 4") == true)
        s = spec
        s.blocks[0].layer.inner = .s5
        #expect(load(s, t)?.contains("inner family 's5' is not supported (s4d | s4)") == true)
        s = spec
        s.blocks[0].layer.dState = 7
        #expect(load(s, t)?.contains("d_state must be even") == true)
        s = spec
        s.blocks[0].layer.inner = .s4   // S4D tensors where S4's are expected
        #expect(load(s, t)?.contains("missing tensor 'layers.0.layer.kernel.inv_dt'") == true)
        let json = #"{"sample_rate":16000,"d_input":4,"d_model":4,"d_output":4,"blocks":[{"layer":{"family":"h3","d_model":4,"d_state":8,"inner":"s9"}}]}"#
        #expect(modelError { try ModelFile.decodeSpec(json) }?.contains("unknown family 's9'") == true)
    }
}
