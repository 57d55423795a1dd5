/// A causal depthwise convolution over time with T taps, streaming:
///
///     out_t = b + Σ_{j<T} w_j ⊙ x_{t−T+1+j}        (w_{T−1} multiplies the current sample)
///
/// Its state is the history of the last T inputs, oldest first (T, E) — upstream Mamba's
/// `conv_state` layout, transposed to rows; Griffin's `conv1d_state` is its last T − 1 rows.
/// A zero history is a stream start, where upstream does not look back either.
public struct CausalConv1D: @unchecked Sendable {  // read-only weights after init
    public let taps: Int, width: Int
    @usableFromInline let w: UnsafeMutablePointer<Scalar>   // (T, E): tap j row
    @usableFromInline let b: UnsafeMutablePointer<Scalar>   // (E)

    /// From per-tap rows w (T, E), tap T−1 on the current sample, and bias (E).
    public init(taps: Int, width: Int, weights: [Scalar], bias: [Scalar], arena: Arena) {
        self.taps = taps; self.width = width
        w = arena.copy(weights); b = arena.copy(bias)
    }

    public var stateCount: Int { taps * width }

    /// Pushes x (E) into the history and writes the convolution into `out` (E; may alias x).
    @inline(__always)
    public func step(_ x: UnsafePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>, history: UnsafeMutablePointer<Scalar>) {
        let E = width
        if taps > 1 { history.update(from: history + E, count: (taps - 1) * E) }
        (history + (taps - 1) * E).update(from: x, count: E)
        out.update(from: b, count: E)
        for j in 0..<taps {
            let wj = w + j * E, hj = history + j * E
            var e = 0
            while e + 8 <= E { store8(load8(out + e).addingProduct(load8(wj + e), load8(hj + e)), out + e); e += 8 }
            while e < E { out[e] += wj[e] * hj[e]; e += 1 }
        }
    }
}
