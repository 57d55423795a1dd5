// The running-mean normalization (`MeanNorm`, family "mean_norm"): its outputs against the
// weighted mean computed directly in Double, step and block modes (sequential and parallel scan)
// against each other across block boundaries, the removal of a constant per-channel offset (what it
// is for: a recording chain's coloration after log-compression), and the refusal of a bad window or d_state.

import Foundation
import Testing
@testable import SSM

/// The layer's coefficients live in `arena`: the tests keep it for as long as they use the layer.
private let arena = Arena()

private func meanNorm(H: Int, window: Int?) throws -> SequenceLayer {
    var spec = LayerSpec(family: .meanNorm, dModel: H, dState: 0)
    spec.window = window
    return try SequenceLayer.load(spec, TensorReader([:]), prefix: "", arena: arena)
}

/// y_k = x_k − Σ_{j≤k} a^{k−j} x_j / Σ_{j≤k} a^{k−j}, a = 1 − 1/W, per channel (X: L rows of H).
private func reference(_ X: [[Double]], window W: Int) -> [[Double]] {
    let a = 1 - 1 / Double(W)
    var s = [Double](repeating: 0, count: X[0].count), c = 0.0
    return X.map { x in
        c = a * c + 1
        for i in x.indices { s[i] = a * s[i] + x[i] }
        return x.indices.map { x[$0] - s[$0] / c }
    }
}

@Suite("Running-mean normalization")
struct MeanNormTests {
    static let H = 5, L = 300

    static func input(offset: [Double] = []) -> [[Double]] {
        var rng = SeededRandom(seed: 3)
        var X: [[Double]] = []
        for k in 0..<L {
            var row: [Double] = []
            for i in 0..<H {
                let wave: Double = sin(Double(k) * 0.05 * Double(i + 1))
                let shift: Double = offset.isEmpty ? 0 : offset[i]
                row.append(wave + 0.3 * rng.normal() + shift)
            }
            X.append(row)
        }
        return X
    }

    func steps(_ layer: SequenceLayer, _ X: [[Double]]) -> [[Double]] {
        let H = X[0].count
        let state = UnsafeMutablePointer<Scalar>.allocate(capacity: layer.stateCount), scratch = UnsafeMutablePointer<Scalar>.allocate(capacity: layer.scratchCount)
        defer { state.deallocate(); scratch.deallocate() }
        state.initialize(repeating: 0, count: layer.stateCount)
        var x = [Scalar](repeating: 0, count: H), y = [Scalar](repeating: 0, count: H)
        return X.map { row in
            for i in 0..<H { x[i] = Scalar(row[i]) }
            layer.step(x, &y, state: state, scratch: scratch)
            return y.map(Double.init)
        }
    }

    @Test("steps equal the weighted running mean subtracted, from the first sample on", arguments: [1, 7, 50, 1000])
    func matchesReference(window: Int) throws {
        let layer = try meanNorm(H: Self.H, window: window)
        #expect(layer.stateCount == Self.H + 1)
        let X = Self.input(), want = reference(X, window: window), got = steps(layer, X)
        var worst = 0.0
        for k in X.indices { for i in 0..<Self.H { worst = max(worst, abs(got[k][i] - want[k][i])) } }
        #expect(worst < 2e-5, "max |error| \(worst)")
        // The first output is zero (the mean of one sample is itself); window 1 is no mean at all.
        #expect(got[0].allSatisfy { abs($0) < 1e-6 })
        if window == 1 { #expect(got.allSatisfy { $0.allSatisfy { abs($0) < 1e-6 } }) }
    }

    @Test("blocks (sequential and parallel scan, split across calls) equal steps", arguments: [ForwardMode.scan, .parallelScan])
    func blocksEqualSteps(mode: ForwardMode) throws {
        let H = Self.H, L = Self.L
        let layer = try meanNorm(H: H, window: 40)
        let X = Self.input(), want = steps(layer, X)
        let flat = X.flatMap { $0.map { Scalar($0) } }
        var Y = [Scalar](repeating: 0, count: L * H)
        let state = UnsafeMutablePointer<Scalar>.allocate(capacity: layer.stateCount)
        let scratch = UnsafeMutablePointer<Scalar>.allocate(capacity: layer.blockScratchCount(L))
        defer { state.deallocate(); scratch.deallocate() }
        state.initialize(repeating: 0, count: layer.stateCount)
        // 300 samples as 17 + 200 + 83: the state carries the running sums and the normalizer.
        var start = 0
        for n in [17, 200, 83] {
            flat.withUnsafeBufferPointer { x in
                Y.withUnsafeMutableBufferPointer { y in
                    layer.forward(x.baseAddress! + start * H, y.baseAddress! + start * H, length: n, state: state, scratch: scratch, mode: mode)
                }
            }
            start += n
        }
        var worst = 0.0
        for k in 0..<L { for i in 0..<H { worst = max(worst, abs(Double(Y[k * H + i]) - want[k][i])) } }
        #expect(worst < 1e-5, "max |block − step| \(worst)")
    }

    @Test("a constant offset per channel (a fixed coloration after log) leaves the output unchanged")
    func removesChannelOffset() throws {
        let layer = try meanNorm(H: Self.H, window: 120)
        let plain = steps(layer, Self.input()), shifted = steps(layer, Self.input(offset: [3, -2, 0.5, 7, -6]))
        var worst = 0.0
        for k in plain.indices { for i in 0..<Self.H { worst = max(worst, abs(plain[k][i] - shifted[k][i])) } }
        #expect(worst < 1e-4, "max |difference| \(worst)")
    }

    @Test("a missing, non-positive or too long window and a d_state other than 0 are refused, the key named")
    func badSpec() throws {
        for w in [nil, 0, -3, MeanNorm.maxWindow + 1] {
            #expect { _ = try meanNorm(H: 3, window: w) } throws: { ($0 as? ModelError)?.message.contains("window") == true }
        }
        _ = try meanNorm(H: 3, window: MeanNorm.maxWindow)
        var spec = LayerSpec(family: .meanNorm, dModel: 3, dState: 4)
        spec.window = 10
        #expect { _ = try SequenceLayer.load(spec, TensorReader([:]), prefix: "", arena: arena) } throws: {
            ($0 as? ModelError)?.message.contains("d_state must be 0") == true
        }
    }
}
