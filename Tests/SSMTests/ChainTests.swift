// Models in series (`ModelSpec.stages`): a chain equals its stages run one after another, in step
// and block mode, through a file round trip; nested chains flatten; mismatches are refused.

import Foundation
import Testing
@testable import SSM

private func model(_ json: String, seed: UInt64) throws -> (spec: ModelSpec, tensors: [String: Tensor]) {
    let spec = try ModelFile.decodeSpec(json)
    return (spec, try Model.initialize(spec, seed: seed))
}

/// A (1 → 2, S5, encoder and decoder), B (2 → 3, LRU pooled by 3, then S4D), C (3 → 1, a linear map).
private func stages() throws -> [(spec: ModelSpec, tensors: [String: Tensor])] {
    let a = try model("""
    {"sample_rate": 8000, "d_input": 1, "d_model": 8, "d_output": 2, "encoder": true, "decoder": true,
     "blocks": [{"layer": {"family": "s5", "d_model": 8, "d_state": 8}, "norm": "layer"}]}
    """, seed: 1)
    let b = try model("""
    {"sample_rate": 8000, "d_input": 2, "d_model": 6, "d_output": 3, "encoder": true, "decoder": true,
     "blocks": [{"layer": {"family": "lru", "d_model": 6, "d_state": 6}, "pool": 3},
                {"layer": {"family": "s4d", "d_model": 6, "d_state": 4}, "output": "linear"}]}
    """, seed: 2)
    let c = try model("""
    {"sample_rate": 8000, "d_input": 3, "d_model": 3, "d_output": 1, "encoder": false, "decoder": true,
     "blocks": [{"layer": {"family": "identity", "d_model": 3, "d_state": 0}, "output": "none", "activation": "none"}]}
    """, seed: 3)
    return [a, b, c]
}

/// x (L, d_in) through `m` in step mode, or in blocks of `block` samples.
private func run(_ m: Model, _ x: [Scalar], block: Int?) -> [Scalar] {
    let L = x.count / m.spec.dInput
    var y = [Scalar](repeating: 0, count: L * m.spec.dOutput)
    let state = m.makeState(maxBlock: block ?? 1)
    x.withUnsafeBufferPointer { xp in
        y.withUnsafeMutableBufferPointer { yp in
            if block != nil {
                m.forward(xp.baseAddress!, yp.baseAddress!, length: L, state: state)
            } else {
                for k in 0..<L { m.step(xp.baseAddress! + k * m.spec.dInput, yp.baseAddress! + k * m.spec.dOutput, state: state) }
            }
        }
    }
    return y
}

@Suite("Models in series")
struct ChainTests {
    let input: [Scalar] = { var r = SeededRandom(seed: 9); return (0..<2000).map { _ in Scalar(r.normal() * 0.5) } }()

    @Test("a chain equals its stages one after another, step and block (blocks of 64 across stage boundaries), after a file round trip")
    func equalsSeries() throws {
        let parts = try stages()
        let chained = try Model.chain(parts)
        let bytes = ModelFile.serialize(spec: chained.spec, tensors: chained.tensors)
        let m = try ModelFile.load(bytes)
        #expect(m.stages.count == 3 && m.spec.dInput == 1 && m.spec.dOutput == 1 && m.spec.stages?.count == 3)
        let singles = try parts.map { try Model(spec: $0.spec, tensors: $0.tensors) }
        #expect(m.stateCount == singles.reduce(0) { $0 + $1.stateCount })
        #expect(m.flopsPerSample == singles.reduce(0) { $0 + $1.flopsPerSample })
        for block in [nil, 64] as [Int?] {
            var expected = input
            for s in singles { expected = run(s, expected, block: block) }
            let got = run(m, input, block: block)
            #expect(got.count == expected.count)
            let peak = expected.map { Swift.abs($0) }.max()!
            let err = zip(got, expected).map { Swift.abs($0 - $1) }.max()!
            #expect(peak > 1e-3 && err <= 1e-6 * peak, "block \(String(describing: block)): max error \(err), peak \(peak)")
        }
    }

    @Test("reset and the state snapshot cover every stage")
    func stateCoversStages() throws {
        let c = try Model.chain(try stages())
        let m = try Model(spec: c.spec, tensors: c.tensors)
        let state = m.makeState(maxBlock: 1)
        var y: [Scalar] = [0]
        for k in 0..<300 { m.step([input[k]], &y, state: state) }
        #expect(state.snapshot.count == m.stateCount && state.snapshot.contains { $0 != 0 })
        state.reset()
        #expect(state.snapshot.allSatisfy { $0 == 0 })
        var again: [Scalar] = []
        for k in 0..<50 { m.step([input[k]], &y, state: state); again.append(y[0]) }
        #expect(again == Array(run(m, Array(input.prefix(50)), block: nil)))
    }

    @Test("a chain inside a chain is flattened into its stages")
    func flattens() throws {
        let p = try stages()
        let ab = try Model.chain([p[0], p[1]])
        let nested = try Model.chain([ab, p[2]]), flat = try Model.chain(p)
        #expect(nested.spec == flat.spec)
        #expect(nested.tensors.keys.sorted() == flat.tensors.keys.sorted())
        #expect(nested.tensors.allSatisfy { flat.tensors[$0.key]?.values == $0.value.values })
    }

    @Test("refused: one stage, another rate, channels that do not agree, a classifier before the end, a stray tensor")
    func refusals() throws {
        let p = try stages()
        func message(_ parts: [(spec: ModelSpec, tensors: [String: Tensor])]) -> String {
            do { _ = try Model.chain(parts); return "" } catch { return error.message }
        }
        #expect(message([p[0]]).contains("at least two"))
        var other = p[1]; other.spec.sampleRate = 16000
        #expect(message([p[0], other]).contains("16000 Hz"))
        #expect(message([p[0], p[2]]).contains("stage 2 takes 3 channels, stage 1 gives 2"))
        var cls = p[0]; cls.spec.task = .classify; cls.spec.labels = ["a", "b"]
        #expect(message([cls, p[1]]).contains("only the last model of a chain may classify"))
        var c = try Model.chain(p)
        c.tensors["decoder.weight"] = Tensor([1], shape: [1])
        #expect(throws: ModelError.self) { _ = try Model(spec: c.spec, tensors: c.tensors) }
        c = try Model.chain(p)
        c.tensors.removeValue(forKey: "stages.1.encoder.bias")
        do { _ = try Model(spec: c.spec, tensors: c.tensors); Issue.record("a missing stage tensor was accepted") }
        catch { #expect(error.message.contains("stage 2") && error.message.contains("encoder.bias")) }
    }

    @Test("the frequency response of filters in series is the product of theirs")
    func responseMultiplies() throws {
        let lp = try FilterDesign.design(.init(family: .butterworth, band: .lowpass, order: 4, cutoff: 1000, rate: 8000))
        let hp = try FilterDesign.design(.init(family: .chebyshev1, band: .highpass, order: 2, cutoff: 300, rippleDB: 1, rate: 8000))
        let a = ModalRealization.model(try ModalRealization.realize(lp), sampleRate: 8000, description: "lp")
        let b = ModalRealization.model(try ModalRealization.realize(hp), sampleRate: 8000, description: "hp")
        let c = try Model.chain([a, b])
        let ra = try Model(spec: a.spec, tensors: a.tensors).frequencyResponse(points: 64)
        let rb = try Model(spec: b.spec, tensors: b.tensors).frequencyResponse(points: 64)
        let m = try Model(spec: c.spec, tensors: c.tensors)
        let rc = try m.frequencyResponse(points: 64)
        // In dB the product is a sum; float32 impulse responses agree to ~0.005 dB 60 dB down.
        for i in rc.frequencies.indices where ra.magnitudeDB[0][i] + rb.magnitudeDB[0][i] > -60 {
            #expect(Swift.abs(rc.magnitudeDB[0][i] - ra.magnitudeDB[0][i] - rb.magnitudeDB[0][i]) < 0.01, "at \(rc.frequencies[i]) Hz")
        }
        #expect(m.layerEigenvalues.count == 2 && m.layerPolesZeros.allSatisfy { $0 != nil })
    }

    @Test("a chain file whose labels are not its last stage's is refused; a chain architecture initializes")
    func chainSpecChecks() throws {
        let p = try stages()
        var cls = p[2]; cls.spec.task = .classify; cls.spec.labels = ["only"]
        var c = try Model.chain([p[0], p[1], cls])
        c.spec.labels = ["other"]
        do { _ = try Model(spec: c.spec, tensors: c.tensors); Issue.record("mismatched labels accepted") }
        catch { #expect(error.message.contains("labels")) }
        let fresh = try Model.initialize(c.spec, seed: 3)
        c.spec.labels = ["only"]
        let m = try Model(spec: c.spec, tensors: try Model.initialize(c.spec, seed: 3))
        #expect(m.stages.count == 3 && fresh.keys.allSatisfy { $0.hasPrefix("stages.") })
    }
}
