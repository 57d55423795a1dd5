// Many streams through one model (`StreamBatch`, `Model.step(_:_:batch:)`): equal to each stream
// stepped on its own, for every family, with pools and chains; a stream resets alone.

import Foundation
import Testing
@testable import SSM

private let architectures: [(String, String)] = [
    ("s5 glu layer-norm", #"{"sample_rate":16000,"d_input":2,"d_model":16,"d_output":3,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"s5","d_model":16,"d_state":16},"norm":"layer"},{"layer":{"family":"s5","d_model":16,"d_state":8},"norm":"rms","output":"mlp"}]}"#),
    ("s4d lru pooled", #"{"sample_rate":8000,"d_input":1,"d_model":8,"d_output":4,"encoder":true,"decoder":true,"task":"classify","blocks":[{"layer":{"family":"s4d","d_model":8,"d_state":4},"activation":"abs","output":"none","residual":false},{"layer":{"family":"lru","d_model":8,"d_state":8},"pool":4,"compress":"log","norm":"layer"},{"layer":{"family":"s5","d_model":8,"d_state":8},"pool":2,"output":"linear"}]}"#),
    ("s4 dplr", #"{"sample_rate":16000,"d_input":1,"d_model":8,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"s4","d_model":8,"d_state":8}}]}"#),
    ("mamba", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"mamba","d_model":16,"d_state":4},"norm":"rms","output":"none"}]}"#),
    ("rglru hawk gated-mlp", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"rglru","d_model":16,"d_state":16}},{"layer":{"family":"hawk","d_model":16,"d_state":16},"output":"none"},{"layer":{"family":"identity","d_model":16,"d_state":0},"output":"gated_mlp","activation":"none"}]}"#),
    ("h3", #"{"sample_rate":16000,"d_input":1,"d_model":8,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"h3","d_model":8,"d_state":4}}]}"#),
]

private func build(_ json: String, seed: UInt64) throws -> Model {
    let spec = try ModelFile.decodeSpec(json)
    return try Model(spec: spec, tensors: try Model.initialize(spec, seed: seed))
}

/// Max |batch − separate| / peak over T samples of G streams, each its own input.
private func compare(_ m: Model, streams G: Int, samples T: Int = 200) -> (error: Double, peak: Double) {
    let dIn = m.spec.dInput, dOut = m.spec.dOutput
    var rng = SeededRandom(seed: UInt64(7 + G))
    let x = (0..<(T * G * dIn)).map { _ in Scalar(rng.normal() * 0.5) }
    let batch = m.makeBatch(streams: G)
    let singles = (0..<G).map { _ in m.makeState(maxBlock: 1) }
    var yb = [Scalar](repeating: 0, count: G * dOut), ys = [Scalar](repeating: 0, count: dOut)
    var err = 0.0, peak = 0.0
    for k in 0..<T {
        x.withUnsafeBufferPointer { xp in m.step(xp.baseAddress! + k * G * dIn, &yb, batch: batch) }
        for g in 0..<G {
            x.withUnsafeBufferPointer { xp in m.step(xp.baseAddress! + (k * G + g) * dIn, &ys, state: singles[g]) }
            for o in 0..<dOut {
                err = max(err, Double(Swift.abs(yb[g * dOut + o] - ys[o])))
                peak = max(peak, Double(Swift.abs(ys[o])))
            }
        }
    }
    return (err, peak)
}

@Suite("Many streams through one model")
struct StreamBatchTests {
    @Test("a batch of G streams equals each stream stepped alone (to float round-off)", arguments: architectures.indices)
    func equalsSeparateStreams(_ a: Int) throws {
        let m = try build(architectures[a].1, seed: UInt64(a + 1))
        for G in [1, 2, 3, 4, 6, 8, 9] {
            let (err, peak) = compare(m, streams: G)
            #expect(peak > 1e-3 && err <= 1e-5 * max(1, peak), "\(architectures[a].0), G = \(G): max error \(err), peak \(peak)")
        }
    }

    @Test("a chain in a batch steps each stream through its stages")
    func chain() throws {
        let a = try ModelFile.decodeSpec(architectures[0].1), b = try ModelFile.decodeSpec(#"{"sample_rate":16000,"d_input":3,"d_model":8,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"lru","d_model":8,"d_state":8}}]}"#)
        let c = try Model.chain([(a, try Model.initialize(a, seed: 1)), (b, try Model.initialize(b, seed: 2))])
        let m = try Model(spec: c.spec, tensors: c.tensors)
        let (err, peak) = compare(m, streams: 5)
        #expect(peak > 1e-3 && err <= 1e-5 * max(1, peak), "max error \(err), peak \(peak)")
    }

    @Test("reset(stream:) returns one stream to rest; the others run on")
    func resetOne() throws {
        let m = try build(architectures[0].1, seed: 1)
        let batch = m.makeBatch(streams: 4)
        let x = [Scalar](repeating: 0.3, count: 4 * 2)
        var y = [Scalar](repeating: 0, count: 4 * 3)
        for _ in 0..<50 { m.step(x, &y, batch: batch) }
        batch.reset(stream: 2)
        #expect(batch.states[2].snapshot.allSatisfy { $0 == 0 })
        #expect([0, 1, 3].allSatisfy { batch.states[$0].snapshot.contains { $0 != 0 } })
        m.step(x, &y, batch: batch)
        let fresh = m.makeBatch(streams: 1)
        var y1 = [Scalar](repeating: 0, count: 3)
        m.step(Array(x.prefix(2)), &y1, batch: fresh)
        #expect(zip(y[6..<9], y1).allSatisfy { Swift.abs($0 - $1) <= 1e-6 }, "stream 2 after its reset: \(Array(y[6..<9])) vs a fresh stream \(y1)")
    }

    @Test("a pooled model with one stream reset alone (pools out of step) still equals the streams alone")
    func pooledReset() throws {
        let m = try build(architectures[1].1, seed: 5)
        let G = 4, dOut = m.spec.dOutput
        let batch = m.makeBatch(streams: G), singles = (0..<G).map { _ in m.makeState(maxBlock: 1) }
        var rng = SeededRandom(seed: 8)
        var yb = [Scalar](repeating: 0, count: G * dOut), ys = [Scalar](repeating: 0, count: dOut), err = 0.0
        for k in 0..<300 {
            if k == 37 { batch.reset(stream: 2); singles[2].reset() }   // mid-pool: 37 is not a multiple of 8
            let x = (0..<G).map { _ in Scalar(rng.normal() * 0.5) }
            m.step(x, &yb, batch: batch)
            for g in 0..<G {
                m.step([x[g]], &ys, state: singles[g])
                for o in 0..<dOut { err = max(err, Double(Swift.abs(yb[g * dOut + o] - ys[o]))) }
            }
        }
        #expect(err <= 1e-5, "max |batch − alone| = \(err)")
    }
}
