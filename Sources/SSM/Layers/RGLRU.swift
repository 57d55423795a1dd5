import RealModule

/// RG-LRU, the Real-Gated Linear Recurrent Unit (De et al. 2024, "Griffin", §2.4; recurrentgemma
/// torch `RGLRU`), on W real lanes:
///
///     r_t = σ(W_a x_t + b_a),   i_t = σ(W_x x_t + b_x)         block-diagonal gates, `heads` blocks
///     log a_t = −c·r_t·softplus(Λ)                             c = 8, Λ = a_param
///     h_t = a_t ⊙ h_{t−1} + √(1 − a_t²) ⊙ (i_t ⊙ x_t),  y_t = h_t
///
/// At a segment start a_t := 0 and the multiplier := 1. A stream's first sample is a segment
/// start; the state carries a flag (0 = at a start) after the W lanes, so a zero state is a fresh
/// segment. Tensors: a_param (W) · a_gate.w, input_gate.w (heads, W/heads, W/heads) with
/// y[h,j] = Σ_i x[h,i] w[h,i,j] + b[h,j] · a_gate.b, input_gate.b (heads, W/heads).
public struct RGLRU: @unchecked Sendable {  // read-only weights after init
    public let W: Int, heads: Int
    @usableFromInline let aGateW: UnsafeMutablePointer<Scalar>, aGateB: UnsafeMutablePointer<Scalar>
    @usableFromInline let inGateW: UnsafeMutablePointer<Scalar>, inGateB: UnsafeMutablePointer<Scalar>
    /// −c·softplus(Λ) (W): log a_t = r_t · this.
    @usableFromInline let logDecay: UnsafeMutablePointer<Scalar>

    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, width W: Int, arena: Arena) throws(ModelError) -> RGLRU {
        let heads = spec.heads ?? 1
        guard heads >= 1, W % heads == 0 else { throw ModelError("rglru: width \(W) is not divisible into \(heads) heads") }
        let bw = W / heads
        let aParam = try r.take(p + "a_param", [W])
        return RGLRU(W: W, heads: heads,
                     aGateW: arena.copy(try r.take(p + "a_gate.w", [heads, bw, bw])),
                     aGateB: arena.copy(try r.take(p + "a_gate.b", [heads, bw])),
                     inGateW: arena.copy(try r.take(p + "input_gate.w", [heads, bw, bw])),
                     inGateB: arena.copy(try r.take(p + "input_gate.b", [heads, bw])),
                     logDecay: arena.copy(aParam.map { -8 * softplus(Double($0)) }.map { Scalar($0) }))
    }

    /// Fresh parameters as recurrentgemma's `rnn_param_init`: a_param = softplus⁻¹(−½·log U[r_min², r_max²])
    /// (defaults 0.9, 0.999), gate weights N(0, 1/block width), biases 0.
    public static func initialize(_ spec: LayerSpec, width W: Int, rng: inout SeededRandom) -> [String: Tensor] {
        let heads = spec.heads ?? 1, bw = W / max(heads, 1)
        let rMin = spec.rMin ?? 0.9, rMax = spec.rMax ?? 0.999
        let aParam = (0..<W).map { _ -> Double in
            let v = -0.5 * Double.log(rng.uniform(rMin * rMin, rMax * rMax))
            return softplusInverse(v)
        }
        func gate() -> Tensor { Tensor((0..<(heads * bw * bw)).map { _ in rng.normal() / Double(bw).squareRoot() }, shape: [heads, bw, bw]) }
        return ["a_param": Tensor(aParam, shape: [W]), "a_gate.w": gate(), "input_gate.w": gate(),
                "a_gate.b": Tensor(shape: [heads, bw], values: Array(repeating: 0, count: W)),
                "input_gate.b": Tensor(shape: [heads, bw], values: Array(repeating: 0, count: W))]
    }

    /// W lanes and the segment flag.
    public var stateCount: Int { W + 1 }
    /// Per sample: r (W), i (W), a (W), b (W). Per block: r, i (W) and a (L, W); b is built in Y.
    public var scratchCount: Int { 4 * W }
    public func blockScratchCount(_ L: Int) -> Int { 2 * W + L * W }

    /// out (W) = σ(blockdiag(w) x + b).
    @inline(__always)
    func gate(_ x: UnsafePointer<Scalar>, _ w: UnsafePointer<Scalar>, _ b: UnsafePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>) {
        let bw = W / heads
        out.update(from: b, count: W)
        for h in 0..<heads {
            vecMat(x + h * bw, rows: bw, w + h * bw * bw, columns: bw, out + h * bw, accumulate: true)
        }
        VectorMath.sigmoid(out, W)
    }

    /// a (W) and b = √(1 − a²)·i·x (W) for one sample; `reset` for a segment start.
    @inline(__always)
    func coefficients(_ x: UnsafePointer<Scalar>, _ a: UnsafeMutablePointer<Scalar>, _ b: UnsafeMutablePointer<Scalar>,
                      _ r: UnsafeMutablePointer<Scalar>, _ i: UnsafeMutablePointer<Scalar>, reset: Bool) {
        gate(x, aGateW, aGateB, r)
        gate(x, inGateW, inGateB, i)
        if reset {
            for j in 0..<W { a[j] = 0; b[j] = i[j] * x[j] }
            return
        }
        for j in 0..<W { a[j] = r[j] * logDecay[j] }
        VectorMath.exp(a, W)
        for j in 0..<W { b[j] = (1 - a[j] * a[j]).squareRoot() * i[j] * x[j] }
    }

    public func step(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>) {
        let r = s, i = s + W, a = s + 2 * W, b = s + 3 * W
        coefficients(x, a, b, r, i, reset: state[W] == 0)
        state[W] = 1
        Scan<RealLanes>.step(a: a, h: state, b: b, lanes: W)
        y.update(from: state, count: W)
    }

    /// L samples: coefficients row by row, then the scan core's time-varying `scan`.
    public func forward(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>, parallel: Bool) {
        let r = s, i = s + W, A = s + 2 * W   // r, i: per-row temporaries; A: (L, W) coefficients
        for k in 0..<L {   // b_t rows go straight into Y, which the scan then turns into h_t in place
            coefficients(X + k * W, A + k * W, Y + k * W, r, i, reset: k == 0 && state[W] == 0)
        }
        if L > 0 { state[W] = 1 }
        if parallel {
            Scan<RealLanes>.parallelScan(a: A, aStride: W, h: state, x: Y, length: L, lanes: W)
        } else {
            Scan<RealLanes>.scan(a: A, aStride: W, h: state, x: Y, length: L, lanes: W)
        }
    }

    public var flopsPerSample: Int { 4 * W * (W / heads) + 12 * W }
}

@inline(__always) func softplus(_ x: Double) -> Double { max(x, 0) + Double.log(onePlus: Double.exp(-abs(x))) }

/// softplus⁻¹(y) = log(e^y − 1), for y > 0 (the Δ and decay-rate inits of Mamba and the RG-LRU).
func softplusInverse(_ y: Double) -> Double { y + Double.log(-Double.expMinusOne(-y)) }
