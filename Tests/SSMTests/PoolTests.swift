// Causal decimation (`BlockSpec.pool`): the per-sample step, block forwards in chunks that do not
// line up with the pools, and a hand-computed hold agree; the state holds the partial sums.

import Testing
@testable import SSM

@Suite("Pooling blocks")
struct PoolTests {
    static func spec() -> ModelSpec {
        var a = BlockSpec(layer: LayerSpec(family: .s4d, dModel: 4, dState: 4, discretization: .zoh), norm: .layer)
        var b = BlockSpec(layer: LayerSpec(family: .s5, dModel: 4, dState: 4, discretization: .zoh), norm: .rms)
        var c = BlockSpec(layer: LayerSpec(family: .lru, dModel: 4, dState: 4), output: .linear)
        a.pool = nil; b.pool = 2; c.pool = 3
        return ModelSpec(task: .classify, sampleRate: 8000, dInput: 1, dModel: 4, dOutput: 3, encoder: true, decoder: true,
                         blocks: [a, b, c], labels: ["a", "b", "c"])
    }

    @Test("step = block forward for any chunking; the output changes only every 6 samples")
    func stepEqualsBlock() throws {
        let m = try Model(spec: Self.spec(), tensors: try Model.initialize(Self.spec(), seed: 3))
        var rng = SeededRandom(seed: 9)
        let L = 100
        let x = (0..<L).map { _ in Scalar(rng.normal()) }
        let st = m.makeState()
        var ys = [Scalar](repeating: 0, count: L * 3)
        for k in 0..<L { x.withUnsafeBufferPointer { xp in ys.withUnsafeMutableBufferPointer { m.step(xp.baseAddress! + k, $0.baseAddress! + 3 * k, state: st) } } }
        for chunk in [1, 5, 7, 64, 100] {
            let s = m.makeState(maxBlock: chunk)
            var yb = [Scalar](repeating: 0, count: L * 3)
            x.withUnsafeBufferPointer { xp in yb.withUnsafeMutableBufferPointer { m.forward(xp.baseAddress!, $0.baseAddress!, length: L, state: s) } }
            let d = zip(ys, yb).map { abs($0 - $1) }.max()!
            #expect(d <= 1e-5 * (ys.map(abs).max()! + 1), "chunk \(chunk): step and block differ by \(d)")
            #expect(s.snapshot.count == st.snapshot.count)
        }
        // Samples 0…4 hold the initial zero output; then the value changes only at k ≡ 5 (mod 6).
        for k in 0..<5 { #expect(ys[3 * k] == 0) }
        for k in 6..<L where (k + 1) % 6 != 0 { #expect(ys[3 * k] == ys[3 * (k - 1)], "sample \(k) should hold") }
        #expect(m.stateCount == m.blocks.reduce(0) { $0 + $1.layer.stateCount } + 2 * (4 + 1) + 3)
    }
}
