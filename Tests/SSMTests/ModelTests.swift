// A model's stream state: its size is fixed by the architecture (4 bytes · Σ 2P over blocks), never
// by how long the stream runs; reset() returns it to zero; and block processing in chunks equals
// one block.

import Foundation
import Testing
@testable import SSM

/// Three blocks of three families, with the full scaffold: S4D (H·N/2 = 4·4 = 16 lanes),
/// S5 (P = 8 lanes), LRU (N = 6 lanes). Σ 2P = 32 + 16 + 12 = 60 floats.
private func threeFamilySpec() -> ModelSpec {
    let H = 4
    let blocks = [
        BlockSpec(layer: LayerSpec(family: .s4d, dModel: H, dState: 8, discretization: .zoh, initialization: "lin"), norm: .layer),
        BlockSpec(layer: LayerSpec(family: .s5, dModel: H, dState: 8, discretization: .bilinear), norm: .rms, output: .mlp),
        BlockSpec(layer: LayerSpec(family: .lru, dModel: H, dState: 6), norm: .layer, prenorm: false, output: .linear),
    ]
    return ModelSpec(sampleRate: 16000, dInput: 1, dModel: H, dOutput: 2, encoder: true, decoder: true, blocks: blocks)
}

/// Floats of recurrent state of a layer, from its spec and the families' documented state sizes.
private func stateFloats(_ l: LayerSpec) -> Int {
    switch l.family {
    case .s4, .s4d: return 2 * l.dModel * l.dState / 2          // H·N/2 complex lanes
    case .s5, .lru: return 2 * l.dState                          // P (N) complex lanes
    case .mamba:                                                 // conv history + E·N real lanes
        let E = (l.expand ?? 2) * l.dModel
        return (l.dConv ?? 4) * E + E * l.dState
    case .rglru: return l.dModel + 1                             // W real lanes + segment flag
    case .hawk: return (l.convWidth ?? 4) * l.dState + l.dState + 1
    case .h3:                                                    // shift history N·H + (H/d)·d²·N/2 complex lanes
        let d = l.headDim ?? 1
        return l.dState * l.dModel + 2 * (l.dModel / d) * d * d * l.dState / 2
    case .identity: return 0
    case .meanNorm: return l.dModel + 1                         // H running sums + their normalizer
    }
}

@Suite("Model state")
struct ModelTests {
    @Test("stateBytes == 4·Σ 2P, unchanged after 10 and 100 000 samples; reset() zeroes it")
    func stateIsFixedSize() throws {
        let spec = threeFamilySpec()
        let (m, _) = try makeModel(spec, seed: 9)
        let expectedFloats = spec.blocks.reduce(0) { $0 + stateFloats($1.layer) }
        #expect(expectedFloats == 60)
        let s = m.makeState(maxBlock: 64)
        #expect(m.stateCount == expectedFloats)
        #expect(s.stateBytes == 4 * expectedFloats)
        #expect(s.snapshot.count == expectedFloats && s.snapshot.allSatisfy { $0 == 0 })

        var rng = SeededRandom(seed: 10)
        var x: Float = 0, y = [Float](repeating: 0, count: 2)
        var streamed = 0
        for target in [10, 100_000] {
            while streamed < target {
                x = Float(rng.normal())
                m.step(&x, &y, state: s)
                streamed += 1
            }
            #expect(s.stateBytes == 4 * expectedFloats, "after \(streamed) samples")
            let snap = s.snapshot
            #expect(snap.count == expectedFloats, "after \(streamed) samples")
            #expect(snap.allSatisfy { $0.isFinite } && snap.contains { $0 != 0 }, "after \(streamed) samples the state is \(snap.prefix(4))…")
            #expect(y.allSatisfy { $0.isFinite })
        }
        s.reset()
        #expect(s.snapshot.allSatisfy { $0 == 0 } && s.snapshot.count == expectedFloats && s.stateBytes == 4 * expectedFloats)

        // After reset the stream behaves exactly like a fresh one.
        let u = rng.normals(50)
        #expect(bits(runSteps(m, u, length: 50, state: s)) == bits(runSteps(m, u, length: 50)))
    }

    @Test("stateBytes of single layers: S4/S4D H·N/2, S5 P, LRU N complex lanes; Mamba, RG-LRU, Hawk, H3 as documented", arguments: [
        LayerSpec(family: .s4d, dModel: 3, dState: 10), LayerSpec(family: .s5, dModel: 5, dState: 7),
        LayerSpec(family: .lru, dModel: 2, dState: 13), LayerSpec(family: .s4, dModel: 3, dState: 8),
        LayerSpec(family: .mamba, dModel: 4, dState: 6), LayerSpec(family: .rglru, dModel: 6, dState: 6),
        LayerSpec(family: .hawk, dModel: 4, dState: 8), LayerSpec(family: .h3, dModel: 4, dState: 6),
    ])
    func singleLayerStateSize(_ layer: LayerSpec) throws {
        let (m, _) = try makeModel(layerOnlySpec(layer), seed: 1)
        let s = m.makeState()
        #expect(s.stateBytes == 4 * stateFloats(layer))
        // Streaming does not grow it.
        let u = [Float](repeating: 0.5, count: 1000 * layer.dModel)
        _ = runSteps(m, u, length: 1000, state: s)
        #expect(s.snapshot.count == stateFloats(layer))
    }

    @Test("forward in chunks of maxBlock == one block == steps, and the state carries across calls")
    func chunkedForward() throws {
        let (m, _) = try makeModel(threeFamilySpec(), seed: 3)
        let L = 1000
        var rng = SeededRandom(seed: 4)
        let u = rng.normals(L)
        let ref = runSteps(m, u, length: L)
        let whole = runForward(m, u, length: L, mode: .scan)
        #expect(maxRelError(whole, ref) <= 1e-5)
        let chunked = m.makeState(maxBlock: 97)
        #expect(maxRelError(runForward(m, u, length: L, mode: .scan, state: chunked), ref) <= 1e-5)
        // Two calls (600 + 400 samples) on one state == one call.
        let s = m.makeState(maxBlock: 600)
        let first = runForward(m, Array(u[0..<600]), length: 600, mode: .scan, state: s)
        let second = runForward(m, Array(u[600...]), length: 400, mode: .scan, state: s)
        #expect(maxRelError(first + second, ref) <= 1e-5)
    }

    @Test("the model refuses architectures that do not add up")
    func inconsistentSpecs() throws {
        let layer = LayerSpec(family: .s5, dModel: 4, dState: 4)
        var spec = layerOnlySpec(layer)
        let t = try Model.initialize(spec, seed: 1)
        spec.dInput = 3   // no encoder, yet d_input ≠ d_model
        #expect(modelError { try Model(spec: spec, tensors: t) }?.contains("d_input (3) must equal d_model (4)") == true)
        spec = layerOnlySpec(layer)
        spec.format = "ssm-stream/9"
        #expect(modelError { try Model(spec: spec, tensors: t) }?.contains("unsupported model format 'ssm-stream/9'") == true)
        spec = layerOnlySpec(layer)
        spec.sampleRate = 0
        #expect(modelError { try Model(spec: spec, tensors: t) }?.contains("sample_rate") == true)
        spec = layerOnlySpec(layer)
        spec.blocks[0].layer.dModel = 5
        #expect(modelError { try Model(spec: spec, tensors: t) }?.contains("layer d_model 5 differs") == true)
    }
}
