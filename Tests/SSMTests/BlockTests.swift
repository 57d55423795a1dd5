// The block scaffold: LayerNorm and RMSNorm against hand computations; each block option (norm
// kind, pre/post norm, residual, activation, output projection) against the scaffold equations
// computed by hand around the layer; and a multi-block model with every option in step and block
// modes.

import Foundation
import Testing
@testable import SSM

// MARK: - Hand computations in Double

private func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], eps: Double) -> [Double] {
    let n = Double(x.count)
    let mean = x.reduce(0, +) / n
    let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
    return x.indices.map { (x[$0] - mean) / (variance + eps).squareRoot() * w[$0] + b[$0] }
}

private func rmsNorm(_ x: [Double], _ w: [Double], eps: Double) -> [Double] {
    let ms = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
    return x.indices.map { x[$0] / (ms + eps).squareRoot() * w[$0] }
}

private func activate(_ a: BlockSpec.Activation, _ v: Double) -> Double {
    switch a {
    case .none: return v
    case .gelu: return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
    case .geluTanh: return 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
    case .silu: return v / (1 + exp(-v))
    case .relu: return max(v, 0)
    case .abs: return Swift.abs(v)
    }
}

/// y = W x + b with W (out, in) row-major as PyTorch stores it.
private func linear(_ t: [String: Tensor], _ p: String, _ x: [Double]) throws -> [Double] {
    let w = try #require(t[p + "weight"]), b = try #require(t[p + "bias"])
    let out = w.shape[0], inp = w.shape[1]
    #expect(inp == x.count)
    return (0..<out).map { o in (0..<inp).reduce(Double(b.values[o])) { $0 + Double(w.values[o * inp + $1]) * x[$1] } }
}

/// Random norm weights and biases (initialization gives 1 and 0, which would hide mistakes).
private func perturbNorms(_ t: inout [String: Tensor], seed: UInt64) {
    var rng = SeededRandom(seed: seed)
    for key in t.keys where key.contains(".norm.") {
        t[key]!.values = t[key]!.values.map { $0 + Float(rng.normal() * 0.3) }
    }
}

@Suite("Block scaffold")
struct BlockTests {
    @Test("LayerNorm and RMSNorm == hand computation (also in place)")
    func norms() throws {
        let H = 7
        var rng = SeededRandom(seed: 3)
        let w = rng.normals(H), b = rng.normals(H)
        let arena = Arena()
        let r = TensorReader(["n.weight": Tensor(shape: [H], values: w), "n.bias": Tensor(shape: [H], values: b)])
        let ln = try Norm(.layer, r, prefix: "n.", H: H, eps: 1e-5, arena: arena)
        let rms = try Norm(.rms, TensorReader(["n.weight": Tensor(shape: [H], values: w)]), prefix: "n.", H: H, eps: 1e-5, arena: arena)
        for trial in 0..<20 {
            // Offsets and scales that stress the mean and variance.
            let x = rng.normals(H, scale: trial % 2 == 0 ? 1 : 50).map { $0 + Float(trial) }
            let xd = x.map(Double.init)
            var y = [Float](repeating: 0, count: H)
            ln.apply(x, &y)
            let wantLN = layerNorm(xd, w.map(Double.init), b.map(Double.init), eps: 1e-5)
            #expect(maxRelError(y, wantLN) <= 1e-5, "LayerNorm trial \(trial): \(y) vs \(wantLN)")
            rms.apply(x, &y)
            let wantRMS = rmsNorm(xd, w.map(Double.init), eps: 1e-5)
            #expect(maxRelError(y, wantRMS) <= 1e-5, "RMSNorm trial \(trial)")
            // In place (the post-norm path calls apply(x, x)).
            var z = x
            z.withUnsafeMutableBufferPointer { rms.apply(UnsafePointer($0.baseAddress!), $0.baseAddress!) }
            #expect(maxRelError(z, wantRMS) <= 1e-5)
            z = x
            z.withUnsafeMutableBufferPointer { ln.apply(UnsafePointer($0.baseAddress!), $0.baseAddress!) }
            #expect(maxRelError(z, wantLN) <= 1e-5)
        }
        // A constant vector: LayerNorm gives the bias exactly (zero variance, ε keeps it finite).
        var y = [Float](repeating: 0, count: H)
        ln.apply([Float](repeating: 3, count: H), &y)
        #expect(y == b)
        // The ε matters: x tiny gives x/√ε·w for RMSNorm.
        rms.apply([Float](repeating: 1e-4, count: H), &y)
        #expect(maxRelError(y, w.map { Double($0) * 1e-4 / (1e-8 + 1e-5).squareRoot() }) <= 1e-5)
    }

    /// Each option against  z = out(act(SSM(prenorm ? norm(x) : x)));  x = residual ? x + z : z;
    /// if !prenorm: x = norm(x) — with the SSM run alone on its own state (it is tested elsewhere).
    @Test("one block == scaffold equations by hand", arguments: [
        (BlockSpec.Norm.layer, true, true, BlockSpec.Activation.gelu, BlockSpec.Output.glu),
        (.rms, true, true, .silu, .mlp),
        (.layer, false, true, .geluTanh, .linear),
        (.rms, false, false, .relu, .glu),
        (.none, true, true, .none, .none),
        (.layer, true, false, .gelu, .mlp),
        (.none, false, true, .silu, .glu),
        (.rms, true, false, .geluTanh, .none),
        (.rms, true, true, .none, .gatedMLP),
        (.layer, false, false, .gelu, .gatedMLP),
        (.none, true, false, .abs, .none),
    ])
    func scaffoldByHand(norm: BlockSpec.Norm, prenorm: Bool, residual: Bool, activation: BlockSpec.Activation, output: BlockSpec.Output) throws {
        try checkScaffold(layer: LayerSpec(family: .s5, dModel: 4, dState: 4, discretization: .zoh),
                          norm: norm, prenorm: prenorm, residual: residual, activation: activation, output: output)
    }

    @Test("Griffin's MLP block (identity layer, pre-RMSNorm, gated MLP, residual) == by hand; the identity layer has no state")
    func griffinMLPBlock() throws {
        try checkScaffold(layer: LayerSpec(family: .identity, dModel: 4, dState: 0),
                          norm: .rms, prenorm: true, residual: true, activation: .none, output: .gatedMLP)
        let spec = ModelSpec(sampleRate: 1, dInput: 4, dModel: 4, dOutput: 4, encoder: false, decoder: false,
                             blocks: [BlockSpec(layer: LayerSpec(family: .identity, dModel: 4, dState: 0), output: .gatedMLP)])
        let m = try Model(spec: spec, tensors: Model.initialize(spec, seed: 1))
        #expect(m.stateCount == 0)
    }

    @Test("log compression: x ← ln(ε + |x|) before the norm, the residual adding to the compressed input == by hand")
    func logCompression() throws {
        try checkScaffold(layer: LayerSpec(family: .s5, dModel: 4, dState: 4, discretization: .zoh),
                          norm: .layer, prenorm: true, residual: true, activation: .gelu, output: .glu, compress: .log)
        try checkScaffold(layer: LayerSpec(family: .s4d, dModel: 4, dState: 4, discretization: .zoh),
                          norm: .rms, prenorm: false, residual: false, activation: .abs, output: .linear, compress: .log)
    }

    @Test("feature masks on a tape: masked values take their row's mean after the compression; streaming ignores them")
    func featureMask() throws {
        let H = 4, L = 10
        var block = BlockSpec(layer: LayerSpec(family: .s4d, dModel: H, dState: 4, discretization: .zoh), norm: .layer)
        block.compress = .log; block.compressFloor = 0.05
        let spec = ModelSpec(sampleRate: 1, dInput: H, dModel: H, dOutput: H, encoder: false, decoder: false, blocks: [block])
        let m = try Model(spec: spec, tensors: try Model.initialize(spec, seed: 3))
        var rng = SeededRandom(seed: 4)
        let u = rng.normals(L * H, scale: 2)
        let mask = FeatureMask(channels: [0.25..<0.5], rows: [0.7..<0.9])     // channel 1; rows 7 and 8
        let tape = m.makeTape(length: L)
        tape.featureMask = mask
        var y = [Float](repeating: 0, count: L * H)
        m.forward(u, &y, length: L, state: tape)
        let input = tape.blockWorks[0].input!
        for k in 0..<L {
            let c = (0..<H).map { Foundation.log(0.05 + Swift.abs(Double(u[k * H + $0]))) }
            let mean = c.reduce(0, +) / Double(H)
            for h in 0..<H {
                let want = k == 7 || k == 8 || h == 1 ? mean : c[h]
                #expect(Swift.abs(Double(input[k * H + h]) - want) < 1e-5, "row \(k) channel \(h)")
            }
        }
        // Streaming states ignore a mask; so does a tape without one.
        var plain = [Float](repeating: 0, count: L * H), masked = plain, bare = plain
        let s = m.makeState(maxBlock: L)
        m.forward(u, &plain, length: L, state: s)
        s.reset(); s.featureMask = mask
        m.forward(u, &masked, length: L, state: s)
        tape.reset(); tape.featureMask = nil
        m.forward(u, &bare, length: L, state: tape)
        #expect(plain == masked && plain == bare && y != plain)
    }

    @Test("dropout on a tape: a seeded share of the activated outputs is zeroed, the rest scaled by 1/(1 − rate); streaming ignores it")
    func dropout() throws {
        let H = 16, L = 400, rate: Float = 0.25
        // Block 0 has no output projection (never dropped), block 1 a GLU (dropped).
        let bank = BlockSpec(layer: LayerSpec(family: .s4d, dModel: H, dState: 4, discretization: .zoh), norm: .none,
                             residual: false, activation: .abs, output: .none)
        let glu = BlockSpec(layer: LayerSpec(family: .s5, dModel: H, dState: 4, discretization: .zoh), norm: .layer)
        let spec = ModelSpec(sampleRate: 1, dInput: H, dModel: H, dOutput: H, encoder: false, decoder: false, blocks: [bank, glu])
        let m = try Model(spec: spec, tensors: try Model.initialize(spec, seed: 3))
        var rng = SeededRandom(seed: 4)
        let u = rng.normals(L * H)
        func run(_ d: Dropout?) -> (y: [Float], a0: [Float], a1: [Float]) {
            let tape = m.makeTape(length: L)
            tape.dropout = d
            var y = [Float](repeating: 0, count: L * H)
            m.forward(u, &y, length: L, state: tape)
            return (y, Array(UnsafeBufferPointer(start: tape.blockWorks[0].a, count: L * H)),
                    Array(UnsafeBufferPointer(start: tape.blockWorks[1].a, count: L * H)))
        }
        let plain = run(nil), dropped = run(Dropout(rate: rate, seed: 9))
        #expect(dropped.a0 == plain.a0, "a block without an output projection is not dropped")
        var zeros = 0
        for i in 0..<(L * H) {
            if dropped.a1[i] == 0 && plain.a1[i] != 0 { zeros += 1 } else {
                #expect(Swift.abs(dropped.a1[i] - plain.a1[i] / (1 - rate)) <= 1e-5 * Swift.max(1, Swift.abs(plain.a1[i])), "value \(i)")
            }
        }
        // 6,400 Bernoulli(0.25) draws: the share is within 4 standard deviations (0.0216) of 0.25.
        let share = Double(zeros) / Double(L * H)
        #expect(Swift.abs(share - 0.25) < 0.0216, "dropped share \(share)")
        #expect(run(Dropout(rate: rate, seed: 9)).y == dropped.y, "the same seed drops the same values")
        #expect(run(Dropout(rate: rate, seed: 10)).y != dropped.y, "another seed drops others")
        #expect(run(Dropout(rate: 0, seed: 9)).y == plain.y, "rate 0 drops nothing")
        // A streaming state has no tape and ignores it.
        let s = m.makeState(maxBlock: L)
        var streamed = [Float](repeating: 0, count: L * H)
        s.dropout = Dropout(rate: rate, seed: 9)
        m.forward(u, &streamed, length: L, state: s)
        #expect(streamed == plain.y)
    }

    @Test("a compress_floor that is not positive is refused with its block named")
    func badCompressFloor() throws {
        for floor: Float in [0, -1, .nan] {
            var block = BlockSpec(layer: LayerSpec(family: .s5, dModel: 4, dState: 4, discretization: .zoh))
            block.compress = .log; block.compressFloor = floor
            let spec = ModelSpec(sampleRate: 1, dInput: 4, dModel: 4, dOutput: 4, encoder: false, decoder: false, blocks: [block])
            let t = try Model.initialize(spec, seed: 1)
            #expect { try Model(spec: spec, tensors: t) } throws: { "\($0)".contains("layers.0.compress_floor must be a positive number") }
        }
    }

    func checkScaffold(layer layerSpec: LayerSpec, norm: BlockSpec.Norm, prenorm: Bool, residual: Bool,
                       activation: BlockSpec.Activation, output: BlockSpec.Output, compress: BlockSpec.Compress = .none) throws {
        let H = 4, L = 40
        var block = BlockSpec(layer: layerSpec,
                              norm: norm, prenorm: prenorm, residual: residual, activation: activation, output: output)
        block.mlpExpand = 3
        let floor = 0.05
        if compress != .none { block.compress = compress; block.compressFloor = Float(floor) }
        block.normEps = 1e-3
        let spec = ModelSpec(sampleRate: 1, dInput: H, dModel: H, dOutput: H, encoder: false, decoder: false, blocks: [block])
        var t = try Model.initialize(spec, seed: 8)
        perturbNorms(&t, seed: 9)
        if output == .gatedMLP {  // the init's biases are zero: make them count
            var g = SeededRandom(seed: 11)
            t["layers.0.mlp_block.ffw_up.b"] = Tensor(g.normals(2 * 3 * H).map(Double.init), shape: [2, 1, 1, 3 * H])
            t["layers.0.mlp_block.ffw_down.bias"] = Tensor(g.normals(H).map(Double.init), shape: [H])
        }
        let m = try Model(spec: spec, tensors: t)
        var rng = SeededRandom(seed: 10)
        let u = rng.normals(L * H, scale: 2)
        let got = runSteps(m, u, length: L)

        // The layer alone, on its own state.
        let layer = m.blocks[0].layer
        var state = [Float](repeating: 0, count: layer.stateCount), scratch = [Float](repeating: 0, count: layer.scratchCount)
        let nw = t["layers.0.norm.weight"].map { $0.values.map(Double.init) }, nb = t["layers.0.norm.bias"].map { $0.values.map(Double.init) }
        func applyNorm(_ x: [Double]) -> [Double] {
            switch norm {
            case .none: return x
            case .layer: return layerNorm(x, nw!, nb!, eps: 1e-3)
            case .rms: return rmsNorm(x, nw!, eps: 1e-3)
            }
        }
        var want: [Double] = []
        for k in 0..<L {
            let x = (0..<H).map { compress == .log ? Foundation.log(floor + Swift.abs(Double(u[k * H + $0]))) : Double(u[k * H + $0]) }
            let tIn = (prenorm ? applyNorm(x) : x).map(Float.init)
            var ySSM = [Float](repeating: 0, count: H)
            layer.step(tIn, &ySSM, state: &state, scratch: &scratch)
            let a = ySSM.map { activate(activation, Double($0)) }
            let z: [Double]
            switch output {
            case .none: z = a
            case .linear: z = try linear(t, "layers.0.output_linear.0.", a)
            case .glu:
                let v = try linear(t, "layers.0.output_linear.0.", a)
                z = (0..<H).map { v[$0] / (1 + exp(-v[H + $0])) }
            case .mlp:
                let hidden = try linear(t, "layers.0.mlp.fc1.", a).map { activate(.gelu, $0) }
                #expect(hidden.count == 3 * H)
                z = try linear(t, "layers.0.mlp.fc2.", hidden)
            case .gatedMLP:
                // recurrentgemma MLPBlock: ffw_down(gelu_tanh(a W₀ + b₀) · (a W₁ + b₁)), W (2, H, E).
                let E = 3 * H, w = t["layers.0.mlp_block.ffw_up.w"]!.values, b = t["layers.0.mlp_block.ffw_up.b"]!.values
                func branch(_ c: Int, _ o: Int) -> Double {
                    (0..<H).reduce(Double(b[c * E + o])) { $0 + a[$1] * Double(w[(c * H + $1) * E + o]) }
                }
                let hidden = (0..<E).map { activate(.geluTanh, branch(0, $0)) * branch(1, $0) }
                z = try linear(t, "layers.0.mlp_block.ffw_down.", hidden)
            }
            var xo = residual ? zip(x, z).map { $0 + $1 } : z
            if !prenorm { xo = applyNorm(xo) }
            want += xo
        }
        #expect(maxRelError(got, want) <= 1e-5, "\(norm) prenorm \(prenorm) residual \(residual) \(activation) \(output): \(maxRelError(got, want))")
        // Block mode computes the same.
        #expect(maxRelError(runForward(m, u, length: L, mode: .scan), want) <= 1e-5)
    }

    @Test("a model with every option (encoder, 3 blocks, decoder): step == forward(.scan) == forward(.parallelScan)")
    func everyOption() throws {
        let H = 6
        var b0 = BlockSpec(layer: LayerSpec(family: .s4d, dModel: H, dState: 8, discretization: .bilinear, initialization: "inv"),
                           norm: .layer, prenorm: true, residual: true, activation: .gelu, output: .glu)
        b0.normEps = 1e-4
        var b1 = BlockSpec(layer: LayerSpec(family: .lru, dModel: H, dState: 10), norm: .rms, prenorm: false, residual: true,
                           activation: .silu, output: .mlp)
        b1.mlpExpand = 4
        let b2 = BlockSpec(layer: LayerSpec(family: .s5, dModel: H, dState: 6, discretization: .zoh), norm: .layer, prenorm: false,
                           residual: false, activation: .geluTanh, output: .linear)
        let spec = ModelSpec(task: .classify, sampleRate: 16000, dInput: 2, dModel: H, dOutput: 3, encoder: true, decoder: true,
                             blocks: [b0, b1, b2], labels: ["a", "b", "c"])
        var t = try Model.initialize(spec, seed: 21)
        perturbNorms(&t, seed: 22)
        let m = try Model(spec: spec, tensors: t)
        #expect(m.stateCount == 2 * (H * 4 + 10 + 6))
        let L = 1500
        var rng = SeededRandom(seed: 23)
        let u = rng.normals(L * 2)
        let ref = runSteps(m, u, length: L)
        #expect(ref.count == L * 3 && ref.allSatisfy { $0.isFinite })
        for mode in [ForwardMode.scan, .parallelScan] {
            let e = maxRelError(runForward(m, u, length: L, mode: mode), ref)
            #expect(e <= 1e-5, "\(mode) vs step: \(e)")
        }
        // Chunks of an odd size through the same state.
        let s = m.makeState(maxBlock: 211)
        #expect(maxRelError(runForward(m, u, length: L, mode: .scan, state: s), ref) <= 1e-5)
    }
}
