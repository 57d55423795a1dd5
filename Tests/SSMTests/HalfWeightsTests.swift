// Half-precision weights (`ssm-stream convert --weights f16`): which tensors become halves, the
// F16 file round trip, and the half model's output against the float32 model's, per family, in
// step mode (half weights read by the kernels) and block mode (the same values, widened).

import Foundation
import Testing
@testable import SSM

private let families: [(String, String)] = [
    ("s5", #"{"sample_rate":16000,"d_input":1,"d_model":32,"d_output":2,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"s5","d_model":32,"d_state":32},"norm":"layer"},{"layer":{"family":"s5","d_model":32,"d_state":16,"conj_sym":false},"output":"mlp"}]}"#),
    ("lru", #"{"sample_rate":16000,"d_input":1,"d_model":32,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"lru","d_model":32,"d_state":32},"norm":"rms"}]}"#),
    ("s4d", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"s4d","d_model":16,"d_state":16}}]}"#),
    ("s4", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"s4","d_model":16,"d_state":16}}]}"#),
    ("mamba", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"mamba","d_model":16,"d_state":8},"norm":"rms","output":"none"}]}"#),
    ("hawk + gated mlp", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"hawk","d_model":16,"d_state":16},"output":"none"},{"layer":{"family":"identity","d_model":16,"d_state":0},"output":"gated_mlp","activation":"none"}]}"#),
    ("h3", #"{"sample_rate":16000,"d_input":1,"d_model":16,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"h3","d_model":16,"d_state":8}}]}"#),
]

private func outputs(_ m: Model, _ x: [Scalar], block: Bool) -> [Scalar] {
    var y = [Scalar](repeating: 0, count: x.count * m.spec.dOutput)
    let s = m.makeState(maxBlock: block ? 128 : 1)
    if block { m.forward(x, &y, length: x.count, state: s) }
    else { for k in x.indices { y.withUnsafeMutableBufferPointer { yp in m.step([x[k]], yp.baseAddress! + k * m.spec.dOutput, state: s) } } }
    return y
}

private func relative(_ a: [Scalar], _ b: [Scalar]) -> Double {
    let peak = b.map { Double(Swift.abs($0)) }.max() ?? 0
    return zip(a, b).map { Double(Swift.abs($0 - $1)) }.max()! / max(peak, 1e-30)
}

@Suite("Half-precision weights")
struct HalfWeightsTests {
    let input: [Scalar] = { var r = SeededRandom(seed: 4); return (0..<1500).map { _ in Scalar(r.normal() * 0.5) } }()

    @Test("the half model's output is within 1e-3 of the float32 model's (relative to its peak), step and block; step equals block", arguments: families.indices)
    func withinTolerance(_ f: Int) throws {
        let spec = try ModelFile.decodeSpec(families[f].1)
        let tensors = try Model.initialize(spec, seed: UInt64(f + 3))
        let (half, changed, kept) = ModelFile.withWeights(tensors, half: true)
        #expect(changed > 0 && kept.isEmpty)
        let m32 = try Model(spec: spec, tensors: tensors)
        let m16 = try ModelFile.load(ModelFile.serialize(spec: spec, tensors: half))
        let ref = outputs(m32, input, block: false)
        let step = outputs(m16, input, block: false), block = outputs(m16, input, block: true)
        #expect(relative(step, ref) <= 1e-3, "\(families[f].0) step: \(relative(step, ref))")
        #expect(relative(block, ref) <= 1e-3, "\(families[f].0) block: \(relative(block, ref))")
        #expect(relative(step, block) <= 1e-5, "\(families[f].0): step and block of the half model differ by \(relative(step, block))")
    }

    @Test("which tensors become halves; F16 in the file; f32 again gives float tensors with the rounded values")
    func fileRoundTrip() throws {
        let spec = try ModelFile.decodeSpec(families[0].1)
        let tensors = try Model.initialize(spec, seed: 1)
        let (half, _, _) = ModelFile.withWeights(tensors, half: true)
        let halves = Set(half.filter { $0.value.half }.keys)
        #expect(halves.contains("layers.0.layer.B") && halves.contains("layers.0.layer.C") && halves.contains("layers.0.output_linear.0.weight")
                && halves.contains("layers.1.mlp.fc1.weight"))
        #expect(!halves.contains { $0.hasSuffix("Lambda_re") || $0.hasSuffix("log_step") || $0.hasSuffix(".D") || $0.hasSuffix("bias") || $0.hasSuffix("norm.weight") }, "\(halves.sorted())")
        #expect(!halves.contains("encoder.weight"), "a (32, 1) encoder is a vector, not a matrix")
        let bytes = ModelFile.serialize(spec: spec, tensors: half)
        let st = try SafeTensors(bytes: bytes)
        #expect(st.tensors["layers.0.layer.B"]?.dtype == .f16 && st.tensors["layers.0.layer.Lambda_re"]?.dtype == .f32)
        let parsed = try ModelFile.parse(st)
        #expect(parsed.tensors == half)
        let back = ModelFile.withWeights(parsed.tensors, half: false).tensors
        #expect(back.values.allSatisfy { !$0.half } && back.keys.allSatisfy { back[$0]!.values == half[$0]!.values })
        #expect(bytes.count < ModelFile.serialize(spec: spec, tensors: tensors).count * 6 / 10)
    }

    @Test("a value beyond ±65504 keeps its tensor in float32")
    func outOfRange() throws {
        let spec = try ModelFile.decodeSpec(families[0].1)
        var tensors = try Model.initialize(spec, seed: 1)
        tensors["layers.0.output_linear.0.weight"]!.values[3] = 1e5
        let (half, _, kept) = ModelFile.withWeights(tensors, half: true)
        #expect(kept == ["layers.0.output_linear.0.weight"] && half["layers.0.output_linear.0.weight"]!.half == false)
    }

    @Test("many streams read the half weights too: a batch equals the streams alone")
    func batch() throws {
        let spec = try ModelFile.decodeSpec(families[0].1)
        let m = try Model(spec: spec, tensors: ModelFile.withWeights(try Model.initialize(spec, seed: 2), half: true).tensors)
        let G = 6, dOut = m.spec.dOutput
        let batch = m.makeBatch(streams: G), singles = (0..<G).map { _ in m.makeState(maxBlock: 1) }
        var yb = [Scalar](repeating: 0, count: G * dOut), ys = [Scalar](repeating: 0, count: dOut), err = 0.0
        for k in 0..<200 {
            let x = (0..<G).map { input[(k * G + $0) % input.count] }
            m.step(x, &yb, batch: batch)
            for g in 0..<G {
                m.step([x[g]], &ys, state: singles[g])
                for o in 0..<dOut { err = max(err, Double(Swift.abs(yb[g * dOut + o] - ys[o]))) }
            }
        }
        #expect(err <= 1e-5, "max |batch − alone| = \(err)")
    }
}
