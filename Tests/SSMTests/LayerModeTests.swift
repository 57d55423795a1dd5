// The four ways to run an LTI layer — one sample at a time (the daemon's path), the block scan,
// the parallel scan and the FFT convolution — agree on a long random input; and the layers'
// impulse responses are their kernels K_k = s·Re(C Λ̄^k B̄) (+ D at k = 0), checked against
// closed forms computed by hand for hand-built one-lane layers.

import Foundation
import Testing
@testable import SSM

/// The layer configurations of the mode-equivalence test: every family, every S4D init and both
/// usual discretizations. H = 4, state 8 (and S4D of other group sizes).
private let modeLayers: [LayerSpec] = {
    var l: [LayerSpec] = []
    for i in ["legs", "lin", "inv"] {
        for d in [Discretization.zoh, .bilinear] { l.append(LayerSpec(family: .s4d, dModel: 4, dState: 8, discretization: d, initialization: i)) }
    }
    // S4D with 1, 2, 3, 10 and 16 lanes per channel (the fused SISO step's and the blocked scan's
    // packed, scalar, tail and wide paths).
    for (H, N) in [(13, 2), (13, 4), (3, 6), (3, 20), (2, 32)] {
        l.append(LayerSpec(family: .s4d, dModel: H, dState: N, discretization: .zoh, initialization: "lin"))
    }
    l.append(LayerSpec(family: .s5, dModel: 4, dState: 8, discretization: .zoh))
    l.append(LayerSpec(family: .s5, dModel: 4, dState: 8, discretization: .bilinear))
    l.append(LayerSpec(family: .lru, dModel: 4, dState: 8))
    return l
}()

private func name(_ l: LayerSpec) -> String {
    "\(l.family.rawValue)\(l.initialization.map { "/" + $0 } ?? "")\(l.discretization.map { "/" + $0.rawValue } ?? "") H=\(l.dModel) N=\(l.dState)"
}

/// D of the single layer, read from the tensors (not from the engine).
private func dVector(_ t: [String: Tensor], H: Int) throws -> [Double] {
    let d = try #require(t["layers.0.layer.D"], "no D tensor")
    #expect(d.values.count == H)
    return d.values.map(Double.init)
}

@Suite("Layer modes")
struct LayerModeTests {
    @Test("step == forward(.scan) == forward(.parallelScan) == forward(.convolution) at L = 4096",
          arguments: modeLayers)
    func modesAgree(_ layer: LayerSpec) throws {
        let L = 4096, H = layer.dModel
        let (m, _) = try makeModel(layerOnlySpec(layer), seed: 2024)
        var rng = SeededRandom(seed: 77)
        let u = rng.normals(L * H)

        let stepState = m.makeState(maxBlock: 1)
        let ref = runSteps(m, u, length: L, state: stepState)
        #expect(ref.allSatisfy { $0.isFinite })
        #expect(ref.map { abs($0) }.max()! > 0.1, "\(name(layer)): output is (nearly) zero, the comparison would be vacuous")
        for mode in ForwardMode.allCases {
            let s = m.makeState(maxBlock: L)
            let y = runForward(m, u, length: L, mode: mode, state: s)
            let e = maxRelError(y, ref)
            #expect(e <= 1e-5, "\(name(layer)): \(mode) vs step, max rel error \(e)")
            if mode != .convolution {
                // The recurrent modes also leave the same state behind.
                #expect(maxRelError(s.snapshot, stepState.snapshot) <= 1e-5, "\(name(layer)): \(mode) final state")
            } else {
                #expect(s.snapshot.allSatisfy { $0 == 0 }, "convolution mode must leave the state untouched")
            }
        }
    }

    /// Feeding δ into input channel i gives column i of the kernel: y_k[o] = K_k[o][i] + D_o·[k = 0, o = i].
    @Test("impulse response in step mode == kernel(length:) (+ D at k = 0)", arguments: modeLayers)
    func impulseResponse(_ layer: LayerSpec) throws {
        let L = 300, H = layer.dModel
        let (m, t) = try makeModel(layerOnlySpec(layer), seed: 31)
        let l = try diagonalLayer(m)
        let K = l.kernel(length: L)
        try #require(K.count == H && K.allSatisfy { $0.count == H && $0.allSatisfy { $0.count == L } })
        let D = try dVector(t, H: H)
        for i in 0..<H {
            var u = [Float](repeating: 0, count: L * H)
            u[i] = 1
            let y = runSteps(m, u, length: L)
            var ref = [Double](repeating: 0, count: L * H)
            for k in 0..<L { for o in 0..<H { ref[k * H + o] = K[o][i][k] + (k == 0 && o == i ? D[o] : 0) } }
            #expect(maxRelError(y, ref) <= 1e-5, "\(name(layer)) input \(i): impulse response vs kernel, \(maxRelError(y, ref))")
            if layer.family == .s4d {
                // SISO: channel i feeds output i only.
                for k in 0..<L { for o in 0..<H where o != i { #expect(y[k * H + o] == 0 && K[o][i][k] == 0) } }
            }
        }
    }

    /// A one-lane LRU built by hand: λ = r e^{iθ}, B = (b_re + i b_im)·γ, y_k = Re(C λ^k B) + D δ_k.
    @Test("hand-built one-lane LRU: impulse response == Re(C λ^k B γ)")
    func lruClosedForm() throws {
        let r = 0.9, theta = 0.3, gamma = 0.5
        let B = Cx(0.7, -0.2), C = Cx(1.1, 0.4), D = 0.25
        let t: [String: Tensor] = [
            "layers.0.layer.nu_log": Tensor([log(-log(r))], shape: [1]),
            "layers.0.layer.theta_log": Tensor([log(theta)], shape: [1]),
            "layers.0.layer.gamma_log": Tensor([log(gamma)], shape: [1]),
            "layers.0.layer.B_re": Tensor([B.re], shape: [1, 1]), "layers.0.layer.B_im": Tensor([B.im], shape: [1, 1]),
            "layers.0.layer.C_re": Tensor([C.re], shape: [1, 1]), "layers.0.layer.C_im": Tensor([C.im], shape: [1, 1]),
            "layers.0.layer.D": Tensor([D], shape: [1]),
        ]
        let m = try Model(spec: layerOnlySpec(LayerSpec(family: .lru, dModel: 1, dState: 1)), tensors: t)
        let L = 200
        var u = [Float](repeating: 0, count: L)
        u[0] = 1
        let y = runSteps(m, u, length: L)
        var ref = [Double](repeating: 0, count: L)
        for k in 0..<L {
            // Re(C · r^k e^{ikθ} · γB), expanded by hand.
            let pr = pow(r, Double(k)) * cos(Double(k) * theta), pi = pow(r, Double(k)) * sin(Double(k) * theta)
            let br = gamma * B.re, bi = gamma * B.im
            let xr = pr * br - pi * bi, xi = pr * bi + pi * br
            ref[k] = C.re * xr - C.im * xi + (k == 0 ? D : 0)
        }
        #expect(abs(ref[0] - (C.re * gamma * B.re - C.im * gamma * B.im + D)) < 1e-15)
        #expect(maxRelError(y, ref) <= 1e-5, "LRU impulse response, max rel error \(maxRelError(y, ref))")
        // And the same from a block scan and from the kernel.
        #expect(maxRelError(runForward(m, u, length: L, mode: .scan), ref) <= 1e-5)
        #expect(maxRelError(try diagonalLayer(m).kernel(length: L)[0][0].enumerated().map { $0.element + ($0.offset == 0 ? D : 0) }, ref) <= 1e-6)
    }

    /// A one-lane S5 built by hand with ZOH: Λ̄ = e^{ΔΛ}, B̄ = (Λ̄ − 1)/Λ·B, y_k = s·Re(C Λ̄^k B̄) + D δ_k
    /// with s = 2 (conj_sym) or 1.
    @Test("hand-built one-lane S5 (zoh): impulse response == s·Re(C Λ̄^k B̄)", arguments: [true, false])
    func s5ClosedForm(conjSym: Bool) throws {
        let lam = Cx(-0.3, 2), dt = 0.1
        let B = Cx(0.5, -1.2), C = Cx(0.8, 0.3), D = -0.4
        let t: [String: Tensor] = [
            "layers.0.layer.Lambda_re": Tensor([lam.re], shape: [1]), "layers.0.layer.Lambda_im": Tensor([lam.im], shape: [1]),
            "layers.0.layer.B": Tensor([B.re, B.im], shape: [1, 1, 2]), "layers.0.layer.C": Tensor([C.re, C.im], shape: [1, 1, 2]),
            "layers.0.layer.D": Tensor([D], shape: [1]), "layers.0.layer.log_step": Tensor([log(dt)], shape: [1, 1]),
        ]
        var layer = LayerSpec(family: .s5, dModel: 1, dState: 1, discretization: .zoh)
        layer.conjSym = conjSym
        let m = try Model(spec: layerOnlySpec(layer), tensors: t)
        let L = 200
        var u = [Float](repeating: 0, count: L)
        u[0] = 1
        let y = runSteps(m, u, length: L)
        let s = conjSym ? 2.0 : 1.0
        // Λ̄ = e^{−0.03}(cos 0.2 + i sin 0.2); B̄ = (Λ̄ − 1)/Λ · B.
        let lbar = Cx(exp(dt * lam.re) * cos(dt * lam.im), exp(dt * lam.re) * sin(dt * lam.im))
        let bbar = (lbar - Cx(1)) / lam * B
        var ref = [Double](repeating: 0, count: L)
        for k in 0..<L {
            let lk = Cx(exp(Double(k) * dt * lam.re) * cos(Double(k) * dt * lam.im), exp(Double(k) * dt * lam.re) * sin(Double(k) * dt * lam.im))
            ref[k] = s * (C * lk * bbar).re + (k == 0 ? D : 0)
        }
        #expect(maxRelError(y, ref) <= 1e-5, "S5 impulse response (conj_sym \(conjSym)), max rel error \(maxRelError(y, ref))")
    }

    /// Superposition: the response to a sum of shifted impulses is the sum of shifted kernels.
    @Test("a long random input: step == direct convolution with the kernel (Double)")
    func directConvolution() throws {
        let layer = LayerSpec(family: .s5, dModel: 2, dState: 4, discretization: .bilinear)
        let (m, t) = try makeModel(layerOnlySpec(layer), seed: 5)
        let L = 400, H = 2
        var rng = SeededRandom(seed: 6)
        let u = rng.normals(L * H)
        let K = try diagonalLayer(m).kernel(length: L)
        let D = try dVector(t, H: H)
        var ref = [Double](repeating: 0, count: L * H)
        for k in 0..<L {
            for o in 0..<H {
                var acc = D[o] * Double(u[k * H + o])
                for i in 0..<H { for j in 0...k { acc += K[o][i][j] * Double(u[(k - j) * H + i]) } }
                ref[k * H + o] = acc
            }
        }
        #expect(maxRelError(runSteps(m, u, length: L), ref) <= 1e-5)
        #expect(maxRelError(runForward(m, u, length: L, mode: .convolution), ref) <= 1e-5)
    }
}
