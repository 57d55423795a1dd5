/// Online per-channel mean normalization (causal CMN; cf. PCEN's smoother, Wang et al. 2017,
/// "Trainable frontend for robust and far-field keyword spotting", eq. 1): each channel minus its
/// running mean over about the last W steps,
///
///     s_k = a·s_{k−1} + (1 − a)·x_k          (H lanes: the channels' weighted sums)
///     c_k = a·c_{k−1} + (1 − a)·1            (one lane: the weights' total, 1 − a^{k+1} from rest)
///     y_k = x_k − s_k / c_k                   a = 1 − 1/W
///
/// Both recurrences are one scan of H + 1 real lanes through the scan core, with b_k = (1 − a)·[x_k; 1].
/// The normalizer c makes s/c a weighted mean of the samples seen so far (weights a^{k−j}): from a
/// fresh stream (and in training, where each sequence starts from rest) the first output is zero,
/// the mean is close to the plain mean of the samples while k ≪ W, and it becomes an exponential
/// moving average of time constant W steps. After log-compression (`BlockSpec.compress`) a fixed coloration
/// of the recording chain — a microphone's or a room's frequency response, a gain — is a constant
/// offset per channel, and this removes it.
///
/// No trained parameters: `window` (W, in the layer's own steps, i.e. after any pool) is part of the
/// architecture. State: s (H) then c (1). Shapes as in `Scan.swift`: L length, H channels.
public struct MeanNorm: @unchecked Sendable {  // read-only after init
    public let H: Int
    public let window: Int
    public static let maxWindow = 1 << 16
    /// a (H + 1 lanes, all equal): the scan core's time-invariant coefficient vector.
    @usableFromInline let decay: UnsafeMutablePointer<Scalar>
    @usableFromInline let gain: Scalar   // 1 − a

    public static func load(_ spec: LayerSpec, arena: Arena) throws(ModelError) -> MeanNorm {
        let W = spec.window ?? 0
        // Above 2^16 steps a = 1 − 1/W is too close to 1 for float32: the decay drowns in the
        // rounding of a·s and the mean drifts (after 8·W steps on a constant: 2^16, 0.07 % off;
        // 2^20, 1 %; 2^24, c stalls at ½).
        guard W >= 1, W <= maxWindow else {
            throw ModelError("mean_norm: window must be a number of steps in 1…\(maxWindow) (got \(spec.window.map(String.init) ?? "none"); longer windows lose the decay to float32 rounding: pool first)")
        }
        guard spec.dState == 0 else { throw ModelError("mean_norm: d_state must be 0 (its state is the d_model running sums and their normalizer; got \(spec.dState))") }
        let a = 1 - 1 / Scalar(W)
        let decay = arena.floats(spec.dModel + 1)
        decay.update(repeating: a, count: spec.dModel + 1)
        return MeanNorm(H: spec.dModel, window: W, decay: decay, gain: 1 / Scalar(W))
    }

    public var stateCount: Int { H + 1 }
    /// Per sample: b (H + 1).
    public var scratchCount: Int { H + 1 }
    /// Per block: the scan's rows (L, H + 1), which a training tape keeps (the states s_k, c_k).
    public func blockScratchCount(_ L: Int) -> Int { L * (H + 1) }
    /// Backward: the adjoint rows (L, H) and its carry (H).
    public func backwardScratchCount(_ L: Int) -> Int { L * H + H }
    public var flopsPerSample: Int { 5 * H }

    /// One sample: state (H + 1) advanced, y (H) = x − s/c.
    @inline(__always)
    public func step(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                     state h: UnsafeMutablePointer<Scalar>, scratch b: UnsafeMutablePointer<Scalar>) {
        for i in 0..<H { b[i] = gain * x[i] }
        b[H] = gain
        Scan<RealLanes>.step(a: decay, h: h, b: b, lanes: H + 1)
        let inv = 1 / h[H]
        for i in 0..<H { y[i] = x[i] - h[i] * inv }
    }

    /// L samples X (L, H) → Y (L, H), the same arithmetic as L steps (`parallel`: the chunked scan).
    /// The scratch's rows hold the states (s_k; c_k) on return (a training tape keeps them).
    public func forward(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state h: UnsafeMutablePointer<Scalar>, scratch rows: UnsafeMutablePointer<Scalar>, parallel: Bool) {
        let w = H + 1
        for k in 0..<L {
            let b = rows + k * w, x = X + k * H
            for i in 0..<H { b[i] = gain * x[i] }
            b[H] = gain
        }
        if parallel { Scan<RealLanes>.parallelScan(a: decay, aStride: 0, h: h, x: rows, length: L, lanes: w) }
        else { Scan<RealLanes>.scan(a: decay, aStride: 0, h: h, x: rows, length: L, lanes: w) }
        for k in 0..<L {
            let s = rows + k * w, x = X + k * H, y = Y + k * H
            let inv = 1 / s[H]
            for i in 0..<H { y[i] = x[i] - s[i] * inv }
        }
    }

    /// Pullback of `forward` over the states it left in `states` (L, H + 1): dY (L, H) → dX (L, H).
    /// c_k does not depend on x, so with d s_k = −dy_k / c_k the adjoint scan gives g_k
    /// (g_k = a·g_{k+1} + d s_k) and dx_k = dy_k + (1 − a)·g_k.
    public func backward(states: UnsafePointer<Scalar>, _ dY: UnsafePointer<Scalar>, _ dX: UnsafeMutablePointer<Scalar>,
                         length L: Int, scratch: UnsafeMutablePointer<Scalar>) {
        let w = H + 1, g = scratch, carry = scratch + L * H
        for k in 0..<L {
            let inv = 1 / states[k * w + H], d = dY + k * H, row = g + k * H
            for i in 0..<H { row[i] = -d[i] * inv }
        }
        carry.update(repeating: 0, count: H)
        Scan<RealLanes>.adjointScan(a: decay, aStride: 0, g: carry, dh: g, length: L, lanes: H)
        for j in 0..<(L * H) { dX[j] = dY[j] + gain * g[j] }
    }
}
