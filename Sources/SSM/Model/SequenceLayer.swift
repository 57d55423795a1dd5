import ComplexModule
import RealModule
/// A sequence layer of any family, in engine form. An enum, not a protocol: the per-sample path
/// switches over a closed set of cases (static dispatch, no existential boxes).
///
/// `switch self` copies the matched payload, and the enum is as large as its largest one: the
/// layers of 150–290 bytes (S4's DPLR, Mamba, Hawk, H3) are `indirect` (one pointer in the enum;
/// their steps cost microseconds), so that the diagonal layers' per-sample copy stays under 100
/// bytes (with them inline the enum was 289 bytes, and the S5 step at H = P = 16 spent a seventh of
/// its time in that memcpy).
public enum SequenceLayer: Sendable {
    /// S4D, S5, LRU: diagonal complex LTI.
    case diagonal(DiagonalSSM)
    /// S4: diagonal plus rank one (DPLR), bilinear; a diagonal scan-core step plus a rank-one feedback.
    indirect case dplr(DPLRSSM)
    /// Mamba block mixer around S6, the selective scan.
    indirect case mamba(MambaMixer)
    /// RG-LRU alone (width d_model).
    case rglru(RGLRU)
    /// Hawk/Griffin recurrent block around the RG-LRU.
    indirect case hawk(HawkBlock)
    /// No temporal mixing: y = u. A block around it is a pure channel block (Griffin's MLP block:
    /// `"layer": {"family": "identity", …}, "output": "gated_mlp"`).
    case identity(width: Int)
    /// H3: shift SSM and an S4D or S4 diagonal SSM with multiplicative interactions.
    indirect case h3(H3Layer)
    /// Each channel minus its running mean (no trained parameters), on the scan core's real lanes.
    case meanNorm(MeanNorm)

    /// Builds the layer from its tensors (named as upstream, under `prefix`).
    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix: String, arena: Arena) throws(ModelError) -> SequenceLayer {
        guard spec.dModel >= 1, spec.dState >= 1 || (!spec.family.isSequenceModel && spec.dState == 0) else {
            throw ModelError("\(spec.family.rawValue): d_model and d_state must be positive (got \(spec.dModel), \(spec.dState))")
        }
        switch spec.family {
        case .s4:
            guard spec.dState % 2 == 0 else { throw ModelError("s4: d_state must be even (got \(spec.dState))") }
            return .dplr(try S4.loadDPLR(spec, r, prefix: prefix, arena: arena))
        case .s4d: return .diagonal(try S4D.load(spec, r, prefix: prefix, arena: arena))
        case .s5: return .diagonal(try S5.load(spec, r, prefix: prefix, arena: arena))
        case .lru: return .diagonal(try LRU.load(spec, r, prefix: prefix, arena: arena))
        case .mamba: return .mamba(try MambaMixer.load(spec, r, prefix: prefix, arena: arena))
        case .rglru:
            guard spec.dState == spec.dModel else {
                throw ModelError("rglru: d_state (its width) must equal d_model (got \(spec.dState), \(spec.dModel))")
            }
            return .rglru(try RGLRU.load(spec, r, prefix: prefix, width: spec.dModel, arena: arena))
        case .hawk: return .hawk(try HawkBlock.load(spec, r, prefix: prefix, arena: arena))
        case .h3: return .h3(try H3Layer.load(spec, r, prefix: prefix, arena: arena))
        case .identity: return .identity(width: spec.dModel)
        case .meanNorm: return .meanNorm(try MeanNorm.load(spec, arena: arena))
        }
    }

    /// Fresh parameters for the layer (family init), named as upstream, without prefix.
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        switch spec.family {
        case .s4: return try S4.initialize(spec, rng: &rng)
        case .s4d: return try S4D.initialize(spec, rng: &rng)
        case .s5: return try S5.initialize(spec, rng: &rng)
        case .lru: return try LRU.initialize(spec, rng: &rng)
        case .mamba: return MambaMixer.initialize(spec, rng: &rng)
        case .rglru: return RGLRU.initialize(spec, width: spec.dModel, rng: &rng)
        case .hawk: return HawkBlock.initialize(spec, rng: &rng)
        case .h3: return try H3Layer.initialize(spec, rng: &rng)
        case .identity, .meanNorm: return [:]
        }
    }

    public var stateCount: Int {
        switch self {
        case .diagonal(let l): l.stateCount
        case .dplr(let l): l.stateCount
        case .mamba(let l): l.stateCount
        case .rglru(let l): l.stateCount
        case .hawk(let l): l.stateCount
        case .h3(let l): l.stateCount
        case .meanNorm(let l): l.stateCount
        case .identity: 0
        }
    }

    public var scratchCount: Int {
        switch self {
        case .diagonal(let l): l.scratchCount
        case .dplr(let l): l.scratchCount
        case .mamba(let l): l.scratchCount
        case .rglru(let l): l.scratchCount
        case .hawk(let l): l.scratchCount
        case .h3(let l): l.scratchCount
        case .meanNorm(let l): l.scratchCount
        case .identity: 0
        }
    }

    /// Scratch floats for a block of L samples.
    public func blockScratchCount(_ L: Int) -> Int {
        switch self {
        case .diagonal(let l): L * 2 * l.P
        case .dplr(let l): l.scratchCount
        case .mamba(let l): l.blockScratchCount(L)
        case .rglru(let l): l.blockScratchCount(L)
        case .hawk(let l): l.blockScratchCount(L)
        case .h3(let l): l.blockScratchCount(L)
        case .meanNorm(let l): l.blockScratchCount(L)
        case .identity: 0
        }
    }

    public var flopsPerSample: Int {
        switch self {
        case .diagonal(let l): l.flopsPerSample
        case .dplr(let l): l.flopsPerSample
        case .mamba(let l): l.flopsPerSample
        case .rglru(let l): l.flopsPerSample
        case .hawk(let l): l.flopsPerSample
        case .h3(let l): l.flopsPerSample
        case .meanNorm(let l): l.flopsPerSample
        case .identity: 0
        }
    }

    /// |λ| of the discretized state matrix, for the time-invariant diagonal families (the stability
    /// check at load). Empty where it is not one fixed diagonal: S4's DPLR matrix (its Λ has Re < 0
    /// by parametrization) and the selective families (0 < a_t < 1 by construction: exp of a
    /// negative number, σ-gated powers of σ).
    public var eigenvalueMagnitudes: [Double] {
        switch self {
        case .diagonal(let l): l.eigenvalueMagnitudes
        case .h3(let l): l.eigenvalueMagnitudes
        case .dplr, .mamba, .rglru, .hawk, .identity, .meanNorm: []
        }
    }

    /// The discrete eigenvalues Λ̄ (poles) of a time-invariant diagonal layer; empty otherwise.
    public var eigenvalues: [Complex<Double>] {
        switch self {
        case .diagonal(let l): l.eigenvalues
        case .h3(let l): l.eigenvalues
        case .dplr, .mamba, .rglru, .hawk, .identity, .meanNorm: []
        }
    }

    public var weightsAreFinite: Bool {
        switch self {
        case .diagonal(let l): l.weightsAreFinite
        case .dplr(let l): l.weightsAreFinite
        case .h3(let l): l.weightsAreFinite
        case .mamba, .rglru, .hawk, .identity, .meanNorm: true   // every tensor was checked finite when taken
        }
    }

    public func step(_ u: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch: UnsafeMutablePointer<Scalar>) {
        switch self {
        case .diagonal(let l): l.step(u, y, state: state, scratch: scratch)
        case .dplr(let l): l.step(u, y, state: state, scratch: scratch)
        case .mamba(let l): l.step(u, y, state: state, scratch: scratch)
        case .rglru(let l): l.step(u, y, state: state, scratch: scratch)
        case .hawk(let l): l.step(u, y, state: state, scratch: scratch)
        case .h3(let l): l.step(u, y, state: state, scratch: scratch)
        case .meanNorm(let l): l.step(u, y, state: state, scratch: scratch)
        case .identity(let H): for i in 0..<H { y[i] = u[i] }
        }
    }

    /// One sample of each of G independent streams: U, Y (G, H), stream g's state at state + g·stride.
    /// The diagonal LTI layers batch their projections over the streams (each weight read once for
    /// all of them); the others step the streams one after another. Scratch: `blockScratchCount(G)`.
    public func step(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, streams G: Int,
                     state: UnsafeMutablePointer<Scalar>, stride: Int, scratch: UnsafeMutablePointer<Scalar>) {
        switch self {
        case .diagonal(let l): l.step(U, Y, streams: G, state: state, stride: stride, scratch: scratch)
        case .identity(let H): Y.update(from: U, count: G * H)
        case .dplr(let l): for g in 0..<G { l.step(U + g * l.H, Y + g * l.H, state: state + g * stride, scratch: scratch) }
        case .mamba(let l): for g in 0..<G { l.step(U + g * l.dModel, Y + g * l.dModel, state: state + g * stride, scratch: scratch) }
        case .rglru(let l): for g in 0..<G { l.step(U + g * l.W, Y + g * l.W, state: state + g * stride, scratch: scratch) }
        case .hawk(let l): for g in 0..<G { l.step(U + g * l.dModel, Y + g * l.dModel, state: state + g * stride, scratch: scratch) }
        case .h3(let l): for g in 0..<G { l.step(U + g * l.dModel, Y + g * l.dModel, state: state + g * stride, scratch: scratch) }
        case .meanNorm(let l): for g in 0..<G { l.step(U + g * l.H, Y + g * l.H, state: state + g * stride, scratch: scratch) }
        }
    }

    /// A block. `.convolution` applies to the time-invariant families (S4, S4D, S5, LRU, H3); the
    /// selective ones have no fixed kernel and run their scan.
    public func forward(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch: UnsafeMutablePointer<Scalar>, mode: ForwardMode,
                        keepStates: Bool = false) {
        let parallel = mode == .parallelScan
        switch self {
        case .diagonal(let l):
            if mode == .convolution { Self.convolve(U, Y, length: L, width: l.H, l.convolve) }
            else { l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: parallel, keepStates: keepStates) }
        case .dplr(let l):
            if mode == .convolution { Self.convolve(U, Y, length: L, width: l.H, l.convolve) }
            else { l.forward(U, Y, length: L, state: state, scratch: scratch) }
        case .mamba(let l): l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: parallel)
        case .rglru(let l): l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: parallel)
        case .hawk(let l): l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: parallel)
        case .h3(let l):
            if mode == .convolution { Self.convolve(U, Y, length: L, width: l.dModel, l.convolve) }
            else { l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: parallel) }
        case .identity(let H): Y.update(from: U, count: L * H)
        case .meanNorm(let l): l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: parallel)  // not LTI: no kernel
        }
    }

    /// Whether training has this family's backward pass (the LTI diagonal families, identity and mean_norm; the
    /// selective families and S4's DPLR form come with the next training issue).
    public var isTrainable: Bool {
        switch self {
        case .diagonal, .identity, .meanNorm: true
        case .dplr, .mamba, .rglru, .hawk, .h3: false
        }
    }

    /// Scratch floats `backward` needs for L samples.
    public func backwardScratchCount(_ L: Int) -> Int {
        switch self {
        case .diagonal(let l): l.backwardScratchCount(L)
        case .meanNorm(let l): l.backwardScratchCount(L)
        default: 0
        }
    }

    /// Pullback of `forward` (run with `keepStates`): U (L, width) the layer input, `tape` its block
    /// scratch after the forward, h0 the state it started from, dY → dU (overwritten), engine-layout
    /// gradients accumulated into `grad` (the same layer in a gradient twin). Trainable families only.
    public func backward(_ U: UnsafePointer<Scalar>, tape: UnsafePointer<Scalar>, initial h0: UnsafePointer<Scalar>,
                         _ dY: UnsafePointer<Scalar>, _ dU: UnsafeMutablePointer<Scalar>, length L: Int,
                         scratch: UnsafeMutablePointer<Scalar>, into grad: SequenceLayer) {
        switch (self, grad) {
        case (.diagonal(let l), .diagonal(let g)):
            l.backward(U, states: tape, initial: h0, dY, dU, length: L, scratch: scratch, into: g)
        case (.identity(let H), .identity): dU.update(from: dY, count: L * H)
        case (.meanNorm(let l), .meanNorm): l.backward(states: tape, dY, dU, length: L, scratch: scratch)
        default: preconditionFailure("backward of a family without one (check isTrainable first)")
        }
    }

    /// Pullback of `load`: engine-layout gradient `grad` (this layer in a gradient twin) → gradients
    /// of the file's tensors under `prefix` (the family's own parameters: Lambda_re, log_step, …).
    public static func parameterGradients(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, gradient grad: SequenceLayer)
        throws(ModelError) -> [String: [Scalar]] {
        var out: [String: [Scalar]]
        switch (spec.family, grad) {
        case (.s4d, .diagonal(let g)): out = try S4D.pullback(spec, r, prefix: p, gradient: g)
        case (.s5, .diagonal(let g)): out = try S5.pullback(spec, r, prefix: p, gradient: g)
        case (.lru, .diagonal(let g)): out = try LRU.pullback(spec, r, prefix: p, gradient: g)
        case (.identity, _), (.meanNorm, _): out = [:]
        default: throw ModelError("\(spec.family.rawValue): training has no backward pass for this family yet (s4d, s5, lru, identity, mean_norm)")
        }
        return Dictionary(uniqueKeysWithValues: out.map { (p + $0.key, $0.value) })
    }

    /// A family's constraint on its trained tensor `name` (without prefix), applied after each step.
    public static func constrain(_ spec: LayerSpec, _ name: String, _ values: inout ArraySlice<Scalar>) {
        if spec.family == .s5 { S5.constrain(name, &values) }
    }

    /// The family's "SSM parameters" (eigenvalues, step sizes, B): their own learning rate, no weight decay.
    public static func ssmParameterNames(_ spec: LayerSpec) -> Set<String> {
        switch spec.family {
        case .s4d: S4D.ssmParameters
        case .s5: S5.ssmParameters
        case .lru: LRU.ssmParameters
        default: []
        }
    }

    /// Convolution mode through a layer's offline `convolve` (arrays, from a zero state): U, Y (L, width).
    private static func convolve(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int, width: Int,
                                 _ convolve: ([Scalar], Int) -> [Scalar]) {
        let y = convolve(Array(UnsafeBufferPointer(start: U, count: L * width)), L)
        Y.update(from: y, count: L * width)
    }

    /// Whether the layer has a convolution mode (time-invariant).
    public var hasConvolutionMode: Bool {
        switch self {
        case .diagonal, .dplr, .h3, .identity: true
        case .mamba, .rglru, .hawk, .meanNorm: false
        }
    }
}

/// How a block of samples runs through the sequence layers.
public enum ForwardMode: String, Sendable, CaseIterable {
    /// The scan core's sequential `scan`, projections batched (streaming blocks).
    case scan
    /// The scan core's chunked `parallelScan` on all cores (long offline blocks).
    case parallelScan = "parallel"
    /// LTI families: kernel K_l = C Λ̄^l B̄ applied by FFT. Starts from the zero state and leaves the
    /// recurrent state untouched (offline use; streaming always uses the recurrence).
    case convolution
}
