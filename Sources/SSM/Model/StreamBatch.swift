/// G independent streams through one model, one sample of each at a time (`Model.step(_:_:batch:)`):
/// 8 microphones, 64 sensor channels. Their recurrent states lie in one allocation, stream g's at
/// `g · stride`, and the work buffers hold one (G, width) matrix per intermediate, so every
/// projection is one product over the G streams and each weight is read once per sample for all of
/// them (G separate `Model.step` calls read every weight G times: at the sizes where the weights do
/// not fit in L1, that traffic is the cost of a step).
///
/// Shapes: X (G, d_input) → Y (G, d_output), each row one stream's sample — the layout of an
/// interleaved multi-channel frame with d_input channels per stream.
public final class StreamBatch: @unchecked Sendable {
    public let streams: Int
    /// Floats between two streams' states (the model's `stateCount`).
    public let stride: Int
    /// Each stream as a `ModelState` over its slice of the shared states: for the streams one by one
    /// (a chain, and `reset(stream:)`).
    public let states: [ModelState]
    /// The (G, width) work buffers: a `ModelState` whose block is G rows.
    let work: ModelState
    let storage: UnsafeMutablePointer<Scalar>
    private let arena: Arena

    public init(_ m: Model, streams G: Int) {
        precondition(G >= 1, "a batch has at least one stream")
        streams = G
        stride = m.stateCount
        let arena = Arena()
        self.arena = arena
        storage = arena.floats(G * max(1, m.stateCount))
        let base = storage, stateCount = m.stateCount
        // Each stream's view keeps the shared states alive (it may outlive the batch).
        states = (0..<G).map { ModelState(m, maxBlock: 1, storage: base + $0 * stateCount, owner: arena) }
        work = ModelState(m, maxBlock: G)
    }

    /// Every stream back to the zero state.
    public func reset() { storage.update(repeating: 0, count: streams * stride) }

    /// One stream back to the zero state (the others run on).
    public func reset(stream g: Int) { states[g].reset() }
}

extension Model {
    /// A batch of G streams for this model (all states zero).
    public func makeBatch(streams G: Int) -> StreamBatch { StreamBatch(self, streams: G) }

    /// One sample of each of G independent streams: X (G, d_input) → Y (G, d_output). Equal to G
    /// calls of `step` with the streams' own states, to float round-off; allocates nothing. A chain
    /// steps its streams one by one (its stages' widths differ).
    public func step(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, batch: StreamBatch) {
        let G = batch.streams
        if !stages.isEmpty {
            batch.states.withUnsafeBufferPointer { s in
                for g in 0..<G { step(X + g * dIn, Y + g * dOut, state: s[g]) }
            }
            return
        }
        let H = dModel, h = batch.work.block.x, base = batch.storage, stride = batch.stride
        if pooled && !poolsInStep(base, stride, G) {
            // A stream reset alone (a NaN guard, `reset(stream:)`) restarted its pools: until the
            // streams' pools fill together again, they step one by one.
            batch.states.withUnsafeBufferPointer { s in
                for g in 0..<G { step(X + g * dIn, Y + g * dOut, state: s[g]) }
            }
            return
        }
        if let e = encoder { e.apply(X, h, streams: G) } else { h.update(from: X, count: G * H) }
        let works = batch.work.blockWorks
        if !pooled {
            blocks.withUnsafeBufferPointer { bs in
                for i in 0..<bs.count { bs[i].forward(h, length: G, state: base, works[i], mode: .scan, streams: stride) }
            }
            if let d = decoder { d.apply(h, Y, streams: G) } else { Y.update(from: h, count: G * H) }
            return
        }
        // With pools: every stream's pool fills in lockstep (checked above), so all complete on the
        // same sample and a pooling block runs for all or none; until then every output holds.
        let done: Bool = blocks.withUnsafeBufferPointer { bs in
            for i in 0..<bs.count {
                if pools[i] > 1 {
                    var complete = false
                    for g in 0..<G {
                        complete = poolAdd(h + g * H, into: base + g * stride + poolOffsets[i], pool: pools[i], mean: h + g * H)
                    }
                    if !complete { return false }
                }
                bs[i].forward(h, length: G, state: base, works[i], mode: .scan, streams: stride)
            }
            return true
        }
        if done {
            if let d = decoder { d.apply(h, Y, streams: G) } else { Y.update(from: h, count: G * H) }
            for g in 0..<G { (base + g * stride + heldOffset).update(from: Y + g * dOut, count: dOut) }
        } else {
            for g in 0..<G { (Y + g * dOut).update(from: base + g * stride + heldOffset, count: dOut) }
        }
    }

    /// Whether every stream's pools hold the same count (they fill together unless one was reset).
    private func poolsInStep(_ base: UnsafeMutablePointer<Scalar>, _ stride: Int, _ G: Int) -> Bool {
        for i in pools.indices where pools[i] > 1 {
            let c = base[poolOffsets[i] + dModel]
            for g in 1..<max(1, G) where base[g * stride + poolOffsets[i] + dModel] != c { return false }
        }
        return true
    }
}
