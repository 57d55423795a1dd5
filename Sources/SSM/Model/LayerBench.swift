/// A randomly initialized bare layer with its state, input and output buffers, for `ssm-stream
/// bench` and the benchmark target: both time exactly the same code.
public final class LayerBench: @unchecked Sendable {
    public let model: Model
    public let layer: SequenceLayer
    public let H: Int, block: Int
    public let state: UnsafeMutablePointer<Scalar>
    let scratch: UnsafeMutablePointer<Scalar>
    let blockScratch: UnsafeMutablePointer<Scalar>
    public let input: UnsafeMutablePointer<Scalar>   // (block, H), N(0, 1)
    public let output: UnsafeMutablePointer<Scalar>  // (block, H)
    private let arena = Arena()

    /// `family` with H channels and state size P (S4D: N = P; H3: N = P shift taps and an S4D-Lin
    /// branch of P/2 complex lanes per channel, head_dim 1), blocks of `block` samples.
    public init(family: Family, H: Int, P: Int, block: Int = 256, seed: UInt64 = 1) throws(ModelError) {
        var layer = LayerSpec(family: family, dModel: H, dState: P)
        if family == .s4d { layer.initialization = "lin" }
        // S5 initializes in HiPPO blocks of 2P/blocks states (S5 §4.3); 32 lanes a block keeps the
        // init's eigendecomposition small at large P.
        if family == .s5, P > 32, P % 32 == 0 { layer.blocks = P / 32 }
        let b = BlockSpec(layer: layer, norm: .none, residual: false, activation: .none, output: .none)
        let spec = ModelSpec(sampleRate: 16000, dInput: H, dModel: H, dOutput: H, encoder: false, decoder: false, blocks: [b])
        model = try Model(spec: spec, tensors: try Model.initialize(spec, seed: seed))
        self.layer = model.blocks[0].layer
        self.H = H; self.block = block
        state = arena.floats(self.layer.stateCount)
        scratch = arena.floats(self.layer.scratchCount)
        blockScratch = arena.floats(self.layer.blockScratchCount(block))
        input = arena.floats(block * H)
        output = arena.floats(block * H)
        var rng = SeededRandom(seed: seed &+ 1)
        for i in 0..<(block * H) { input[i] = Scalar(rng.normal()) }
    }

    /// `block` single-sample steps over the input rows.
    public func runSteps() {
        for k in 0..<block { layer.step(input + k * H, output + k * H, state: state, scratch: scratch) }
    }

    /// One block scan over the input.
    public func runBlock() {
        layer.forward(input, output, length: block, state: state, scratch: blockScratch, mode: .scan)
    }

    public var flopsPerSample: Int { layer.flopsPerSample }
}
