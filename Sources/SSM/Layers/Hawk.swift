/// The Hawk/Griffin recurrent block (De et al. 2024, Fig. 2; recurrentgemma torch `RecurrentBlock`):
///
///     y = GELU_tanh(linear_y(x))                               (lru_width; as x·σ(2y), see geluTanh8)
///     u = RG-LRU(Conv1D(linear_x(x)))                          conv: `conv1d_temporal_width` taps
///     out = linear_out(u ⊙ y)                                  (d_model)
///
/// Tensors (upstream names): linear_x, linear_y (lru_width, d_model) + bias · linear_out
/// (d_model, lru_width) + bias · conv_1d.w (taps, lru_width), conv_1d.b (lru_width), with
/// out_t = Σ_s w[taps−1−s] ⊙ x_{t−s} + b · rg_lru.* (see `RGLRU`).
/// State: conv history (taps, lru_width), then the RG-LRU's (lru_width + 1).
public struct HawkBlock: Sendable {
    public let dModel: Int, width: Int
    let linearX: Linear, linearY: Linear, linearOut: Linear
    let conv: CausalConv1D
    let lru: RGLRU

    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> HawkBlock {
        let H = spec.dModel, W = spec.dState, T = spec.convWidth ?? 4
        guard W >= 1, T >= 1 else { throw ModelError("hawk: d_state (lru_width) and conv1d_temporal_width must be positive") }
        return HawkBlock(
            dModel: H, width: W,
            linearX: try Linear(r, prefix: p + "linear_x.", inputs: H, outputs: W, arena: arena),
            linearY: try Linear(r, prefix: p + "linear_y.", inputs: H, outputs: W, arena: arena),
            linearOut: try Linear(r, prefix: p + "linear_out.", inputs: W, outputs: H, arena: arena),
            conv: CausalConv1D(taps: T, width: W, weights: try r.take(p + "conv_1d.w", [T, W]),
                               bias: try r.take(p + "conv_1d.b", [W]), arena: arena),
            lru: try RGLRU.load(spec, r, prefix: p + "rg_lru.", width: W, arena: arena))
    }

    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) -> [String: Tensor] {
        let H = spec.dModel, W = spec.dState, T = spec.convWidth ?? 4
        var t: [String: Tensor] = [:]
        Linear.initialize(&t, prefix: "linear_x.", inputs: H, outputs: W, rng: &rng)
        Linear.initialize(&t, prefix: "linear_y.", inputs: H, outputs: W, rng: &rng)
        Linear.initialize(&t, prefix: "linear_out.", inputs: W, outputs: H, rng: &rng)
        let k = 1 / Double(T).squareRoot()
        t["conv_1d.w"] = Tensor((0..<(T * W)).map { _ in rng.uniform(-k, k) }, shape: [T, W])
        t["conv_1d.b"] = Tensor(shape: [W], values: Array(repeating: 0, count: W))
        for (name, v) in RGLRU.initialize(spec, width: W, rng: &rng) { t["rg_lru." + name] = v }
        return t
    }

    public var stateCount: Int { conv.stateCount + lru.stateCount }
    /// Per sample: x branch (W), y branch (W), the RG-LRU's scratch.
    public var scratchCount: Int { 2 * width + lru.scratchCount }
    public func blockScratchCount(_ L: Int) -> Int { 3 * L * width + lru.blockScratchCount(L) }

    public func step(_ x: UnsafePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>) {
        let xb = s, yb = s + width, lruScratch = s + 2 * width
        linearY.apply(x, yb)
        VectorMath.geluTanh(yb, width)
        linearX.apply(x, xb)
        conv.step(xb, xb, history: state)
        lru.step(xb, xb, state: state + conv.stateCount, scratch: lruScratch)
        for j in 0..<width { xb[j] *= yb[j] }
        linearOut.apply(xb, out)
    }

    public func forward(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch s: UnsafeMutablePointer<Scalar>, parallel: Bool) {
        let W = width
        let xb = s, yb = s + L * W, hb = s + 2 * L * W, lruScratch = s + 3 * L * W
        linearY.apply(X, yb, length: L)
        VectorMath.geluTanh(yb, L * W)
        linearX.apply(X, xb, length: L)
        for k in 0..<L { conv.step(xb + k * W, xb + k * W, history: state) }
        lru.forward(xb, hb, length: L, state: state + conv.stateCount, scratch: lruScratch, parallel: parallel)
        for i in 0..<(L * W) { hb[i] *= yb[i] }
        linearOut.apply(hb, Y, length: L)
    }

    /// The engine-layout weights (read-only views), for the C reference benchmarks: linear_x,
    /// linear_y (d_model, W) and linear_out (W, d_model) transposed to (in, out) row-major, with their
    /// biases; conv taps (taps, W) and bias (W); the RG-LRU's gate blocks (heads, W/heads, W/heads)
    /// (inputs by outputs) and biases (W), and −8·softplus(a_param) (W).
    public var weights: (linearX: UnsafePointer<Scalar>, linearXBias: UnsafePointer<Scalar>,
                         linearY: UnsafePointer<Scalar>, linearYBias: UnsafePointer<Scalar>,
                         linearOut: UnsafePointer<Scalar>, linearOutBias: UnsafePointer<Scalar>,
                         conv: UnsafePointer<Scalar>, convBias: UnsafePointer<Scalar>,
                         aGate: UnsafePointer<Scalar>, aGateBias: UnsafePointer<Scalar>,
                         inputGate: UnsafePointer<Scalar>, inputGateBias: UnsafePointer<Scalar>,
                         logDecay: UnsafePointer<Scalar>) {
        (UnsafePointer(linearX.wt), UnsafePointer(linearX.bias), UnsafePointer(linearY.wt), UnsafePointer(linearY.bias),
         UnsafePointer(linearOut.wt), UnsafePointer(linearOut.bias), UnsafePointer(conv.w), UnsafePointer(conv.b),
         UnsafePointer(lru.aGateW), UnsafePointer(lru.aGateB), UnsafePointer(lru.inGateW), UnsafePointer(lru.inGateB),
         UnsafePointer(lru.logDecay))
    }

    /// Conv taps and RG-LRU gate heads.
    public var taps: Int { conv.taps }
    public var heads: Int { lru.heads }

    public var flopsPerSample: Int {
        2 * (linearX.parameterCount + linearY.parameterCount + linearOut.parameterCount) + 2 * conv.taps * width
            + lru.flopsPerSample + 10 * width
    }
}
