/// A sequence layer of any family, in engine form. An enum, not a protocol: the per-sample path
/// switches over a closed set of cases (static dispatch, no existential boxes).
public enum SequenceLayer: Sendable {
    case diagonal(DiagonalSSM)

    /// Builds the layer from its tensors (named as upstream, under `prefix`).
    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix: String, arena: Arena) throws(ModelError) -> SequenceLayer {
        guard spec.dModel >= 1, spec.dState >= 1 else {
            throw ModelError("\(spec.family.rawValue): d_model and d_state must be positive (got \(spec.dModel), \(spec.dState))")
        }
        switch spec.family {
        case .s4d: return .diagonal(try S4D.load(spec, r, prefix: prefix, arena: arena))
        case .s5: return .diagonal(try S5.load(spec, r, prefix: prefix, arena: arena))
        case .lru: return .diagonal(try LRU.load(spec, r, prefix: prefix, arena: arena))
        }
    }

    /// Fresh parameters for the layer (family init), named as upstream, without prefix.
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        switch spec.family {
        case .s4d: return try S4D.initialize(spec, rng: &rng)
        case .s5: return try S5.initialize(spec, rng: &rng)
        case .lru: return try LRU.initialize(spec, rng: &rng)
        }
    }

    public var stateCount: Int { switch self { case .diagonal(let l): l.stateCount } }
    public var scratchCount: Int { switch self { case .diagonal(let l): l.scratchCount } }
    /// Scratch floats for a block of L samples.
    public func blockScratchCount(_ L: Int) -> Int { switch self { case .diagonal(let l): L * 2 * l.P } }
    public var flopsPerSample: Int { switch self { case .diagonal(let l): l.flopsPerSample } }
    public var eigenvalueMagnitudes: [Double] { switch self { case .diagonal(let l): l.eigenvalueMagnitudes } }
    public var weightsAreFinite: Bool { switch self { case .diagonal(let l): l.weightsAreFinite } }

    public func step(_ u: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                     state: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        switch self {
        case .diagonal(let l): l.step(u, y, state: state, scratch: scratch)
        }
    }

    public func forward(_ U: UnsafePointer<Float>, _ Y: UnsafeMutablePointer<Float>, length L: Int,
                        state: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, mode: ForwardMode) {
        switch self {
        case .diagonal(let l):
            switch mode {
            case .scan, .parallelScan:
                l.forward(U, Y, length: L, state: state, scratch: scratch, parallel: mode == .parallelScan)
            case .convolution:
                let y = l.convolve(Array(UnsafeBufferPointer(start: U, count: L * l.H)), length: L)
                Y.update(from: y, count: L * l.H)
            }
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
