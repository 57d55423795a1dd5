/// A model: optional linear encoder → a stack of blocks → optional linear decoder (llama2.c-style:
/// everything it needs is allocated when it is loaded; running it allocates nothing).
///
/// Shapes: one sample x (d_input) → y (d_output); a block X (L, d_input) → Y (L, d_output).
/// The model is immutable and may be shared; each stream owns a `ModelState`.
public final class Model: @unchecked Sendable {
    public let spec: ModelSpec
    public let blocks: [Block]
    /// A chain's stages (`ModelSpec.stages`), run one after another; empty for an ordinary model.
    public let stages: [Model]
    let encoder: Linear?
    let decoder: Linear?
    let arena: Arena
    /// Floats of recurrent state for one stream.
    public let stateCount: Int
    /// d_input, d_model, d_output as plain fields: the per-sample path reads these, not `spec` (a
    /// struct with strings, which the optimizer copies out of the class).
    let dIn: Int, dModel: Int, dOut: Int
    /// Causal decimation (`BlockSpec.pool`): R per block (1: none), each pooling block's accumulator
    /// offset in the state (d_model sums and a count), and the held output's (d_output).
    let pools: [Int]
    let poolOffsets: [Int]
    let heldOffset: Int
    let pooled: Bool

    /// Builds the model from its architecture and tensors (names as in `ModelSpec`/`BlockSpec`).
    /// Refuses missing, misshapen, non-finite and unexpected tensors, inconsistent sizes and
    /// unstable layers (a discretized eigenvalue with |λ| ≥ 1 would grow without bound on a stream).
    public convenience init(spec: ModelSpec, tensors: [String: Tensor]) throws(ModelError) {
        guard spec.format == ModelSpec.currentFormat else {
            throw ModelError("unsupported model format '\(spec.format)' (this build reads '\(ModelSpec.currentFormat)')")
        }
        guard spec.dInput >= 1, spec.dModel >= 1, spec.dOutput >= 1 else {
            throw ModelError("d_input, d_model and d_output must be positive")
        }
        guard spec.sampleRate > 0 else { throw ModelError("sample_rate must be positive (got \(spec.sampleRate))") }
        if let stageSpecs = spec.stages { try self.init(chain: spec, stageSpecs, tensors: tensors) }
        else { try self.init(plain: spec, tensors: tensors) }
    }

    /// An ordinary model: encoder, blocks, decoder.
    private init(plain spec: ModelSpec, tensors: [String: Tensor]) throws(ModelError) {
        if !spec.encoder && spec.dInput != spec.dModel {
            throw ModelError("without an encoder d_input (\(spec.dInput)) must equal d_model (\(spec.dModel))")
        }
        if !spec.decoder && spec.dOutput != spec.dModel {
            throw ModelError("without a decoder d_output (\(spec.dOutput)) must equal d_model (\(spec.dModel))")
        }
        if spec.task == .classify, let labels = spec.labels, labels.count != spec.dOutput {
            throw ModelError("\(labels.count) labels for \(spec.dOutput) outputs")
        }
        if let e = spec.events {
            let labels = spec.labels ?? (0..<spec.dOutput).map { "class\($0)" }
            if let unknown = (e.ignore ?? []).first(where: { !labels.contains($0) }) {
                throw ModelError("events.ignore: no class '\(unknown)' (classes: \(labels.joined(separator: ", ")))")
            }
            if let t = e.threshold, !(t > 0 && t <= 1) { throw ModelError("events.threshold must be in (0, 1] (got \(t))") }
            if let r = e.release, !(r >= 0 && r <= (e.threshold ?? 1)) { throw ModelError("events.release must be in [0, threshold] (got \(r))") }
            if let d = e.minDuration, !(d >= 0 && d.isFinite) { throw ModelError("events.min_duration must be ≥ 0 seconds") }
            if let g = e.minGap, !(g >= 0 && g.isFinite) { throw ModelError("events.min_gap must be ≥ 0 seconds") }
        }
        self.spec = spec
        stages = []
        dIn = spec.dInput; dModel = spec.dModel; dOut = spec.dOutput
        let r = TensorReader(tensors)
        let arena = Arena()
        self.arena = arena
        encoder = spec.encoder ? try Linear(r, prefix: "encoder.", inputs: spec.dInput, outputs: spec.dModel, arena: arena) : nil
        var blocks: [Block] = []
        var offset = 0
        for (i, b) in spec.blocks.enumerated() {
            guard b.layer.dModel == spec.dModel else {
                throw ModelError("block \(i): layer d_model \(b.layer.dModel) differs from the model's \(spec.dModel)")
            }
            let block: Block
            do { block = try Block(b, r, prefix: "layers.\(i).", stateOffset: offset, arena: arena) }
            catch { throw ModelError("block \(i) (\(b.layer.family.rawValue)): \(error.message)") }
            guard block.layer.weightsAreFinite else {
                throw ModelError("block \(i) (\(b.layer.family.rawValue)): parameters discretize to non-finite values (NaN or Inf); check the step sizes and eigenvalue parameters for overflow")
            }
            if let worst = block.layer.eigenvalueMagnitudes.max(), !(worst < 1) {
                throw ModelError("block \(i) (\(b.layer.family.rawValue)): unstable, a discretized eigenvalue has |λ| = \(worst) ≥ 1"
                                 + (b.layer.discretization == .euler ? " (forward Euler is only conditionally stable: use zoh or bilinear)" : ""))
            }
            offset += block.layer.stateCount
            blocks.append(block)
        }
        self.blocks = blocks
        var pools: [Int] = [], poolOffsets: [Int] = []
        for (i, b) in spec.blocks.enumerated() {
            let R = b.pool ?? 1
            guard R >= 1, R <= 65536 else { throw ModelError("block \(i): pool must be in 1…65536 (got \(R))") }
            pools.append(R)
            poolOffsets.append(offset)
            if R > 1 { offset += spec.dModel + 1 }
        }
        self.pools = pools; self.poolOffsets = poolOffsets
        pooled = pools.contains { $0 > 1 }
        heldOffset = offset
        if pooled { offset += spec.dOutput }
        stateCount = offset
        decoder = spec.decoder ? try Linear(r, prefix: "decoder.", inputs: spec.dModel, outputs: spec.dOutput, arena: arena) : nil
        if let extra = r.unexpected.first {
            throw ModelError("unexpected tensor '\(extra)'" + (r.unexpected.count > 1 ? " (and \(r.unexpected.count - 1) more)" : "")
                             + ": not part of the architecture in the metadata")
        }
    }

    /// A chain: each stage built from its own tensors (`stages.{i}.` stripped), the same checks as
    /// `ModelSpec.chain` on what a file claims, and no tensor outside the stages.
    private init(chain spec: ModelSpec, _ stageSpecs: [ModelSpec], tensors: [String: Tensor]) throws(ModelError) {
        guard !spec.encoder, !spec.decoder, spec.blocks.isEmpty else {
            throw ModelError("a chain (stages) has no encoder, decoder or blocks of its own")
        }
        let expected = try ModelSpec.chain(stageSpecs)
        guard expected.sampleRate == spec.sampleRate, expected.dInput == spec.dInput, expected.dOutput == spec.dOutput,
              expected.task == spec.task, expected.labels == spec.labels, expected.scores == spec.scores,
              expected.events == spec.events else {
            throw ModelError("the chain's sample_rate, d_input, d_output, task, labels, scores and events must be its stages' (\(expected.sampleRate) Hz, \(expected.dInput) → \(expected.dOutput), \(expected.task.rawValue), the last stage's labels, scores and events)")
        }
        var built: [Model] = []
        for (i, st) in stageSpecs.enumerated() {
            let prefix = "stages.\(i)."
            var own: [String: Tensor] = [:]
            for (k, v) in tensors where k.hasPrefix(prefix) { own[String(k.dropFirst(prefix.count))] = v }
            do { built.append(try Model(spec: st, tensors: own)) }
            catch { throw ModelError("stage \(i + 1): \(error.message)") }
        }
        if let stray = tensors.keys.sorted().first(where: { k in !stageSpecs.indices.contains { k.hasPrefix("stages.\($0).") } }) {
            throw ModelError("unexpected tensor '\(stray)': a chain's tensors all belong to its stages (stages.N.…)")
        }
        self.spec = spec
        stages = built
        blocks = []; encoder = nil; decoder = nil; arena = Arena()
        dIn = spec.dInput; dModel = spec.dModel; dOut = spec.dOutput
        pools = []; poolOffsets = []; heldOffset = 0; pooled = false
        stateCount = built.reduce(0) { $0 + $1.stateCount }
    }

    /// The tensors of `models` in series under their stage prefixes, with `ModelSpec.chain`'s
    /// architecture (a chain among them is flattened, its tensors renumbered).
    public static func chain(_ models: [(spec: ModelSpec, tensors: [String: Tensor])]) throws(ModelError) -> (spec: ModelSpec, tensors: [String: Tensor]) {
        let spec = try ModelSpec.chain(models.map(\.spec))
        var tensors: [String: Tensor] = [:], next = 0
        for m in models {
            if let inner = m.spec.stages {
                for j in inner.indices {
                    for (k, v) in m.tensors where k.hasPrefix("stages.\(j).") { tensors["stages.\(next)." + k.dropFirst("stages.\(j).".count)] = v }
                    next += 1
                }
            } else {
                for (k, v) in m.tensors { tensors["stages.\(next).\(k)"] = v }
                next += 1
            }
        }
        return (spec, tensors)
    }

    /// Every block in running order, through the stages of a chain.
    public var allBlocks: [Block] { stages.isEmpty ? blocks : stages.flatMap(\.allBlocks) }

    /// Fresh parameters for `spec` from the families' initializations (reproducible from `seed`).
    /// `progress(i)` is called before block i is initialized (a CLI shows it when that takes long).
    public static func initialize(_ spec: ModelSpec, seed: UInt64, progress: ((Int) -> Void)? = nil) throws(ModelError) -> [String: Tensor] {
        if let stages = spec.stages {
            // A chain: each stage from its own seed, under its prefix.
            var t: [String: Tensor] = [:]
            for (i, st) in stages.enumerated() {
                for (k, v) in try initialize(st, seed: seed &+ UInt64(i)) { t["stages.\(i).\(k)"] = v }
            }
            return t
        }
        var rng = SeededRandom(seed: seed)
        var t: [String: Tensor] = [:]
        if spec.encoder { Linear.initialize(&t, prefix: "encoder.", inputs: spec.dInput, outputs: spec.dModel, rng: &rng) }
        for (i, b) in spec.blocks.enumerated() { progress?(i); try Block.initialize(b, &t, prefix: "layers.\(i).", rng: &rng) }
        if spec.decoder { Linear.initialize(&t, prefix: "decoder.", inputs: spec.dModel, outputs: spec.dOutput, rng: &rng) }
        return t
    }

    /// A new stream's state (zero) and work buffers for blocks of up to `maxBlock` samples.
    public func makeState(maxBlock: Int = 256) -> ModelState { ModelState(self, maxBlock: max(1, maxBlock)) }

    /// One sample: x (d_input) → y (d_output). Allocates nothing.
    public func step(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>, state: ModelState) {
        if !stages.isEmpty {
            // Stage by stage through the state's link buffers (ping-pong), the last into y.
            let n = stages.count
            stages.withUnsafeBufferPointer { ms in
                state.stages.withUnsafeBufferPointer { ss in
                    var input = x
                    for i in 0..<n {
                        let out = i == n - 1 ? y : state.links + (i & 1) * state.linkWidth
                        ms[i].step(input, out, state: ss[i])
                        input = UnsafePointer(out)
                    }
                }
            }
            return
        }
        let h = state.step.x, H = dModel
        if let e = encoder { e.apply(x, h) } else { for i in 0..<H { h[i] = x[i] } }
        if !pooled {
            blocks.withUnsafeBufferPointer { for b in $0 { b.step(h, state: state.state, state.stepWork) } }
            if let d = decoder { d.apply(h, y) } else { for i in 0..<H { y[i] = h[i] } }
            return
        }
        // With pools: a pooling block waits for R samples; until then the output holds.
        let s = state.state, held = s + heldOffset
        let done: Bool = blocks.withUnsafeBufferPointer { bs in
            for i in 0..<bs.count {
                if pools[i] > 1 && !poolAdd(h, into: s + poolOffsets[i], pool: pools[i], mean: h) { return false }
                bs[i].step(h, state: s, state.stepWork)
            }
            return true
        }
        if done { if let d = decoder { d.apply(h, held) } else { for i in 0..<H { held[i] = h[i] } } }
        for i in 0..<dOut { y[i] = held[i] }
    }

    /// L samples: X (L, d_input) → Y (L, d_output), in chunks of the state's `maxBlock`. Same
    /// result as L calls to `step` (to float round-off: projections are batched into sgemm).
    /// `.convolution` needs a zero state and a `maxBlock` ≥ L to be exact (each chunk starts from zero).
    public func forward(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: ModelState, mode: ForwardMode = .scan) {
        if !stages.isEmpty {
            // Chunk by chunk of maxBlock samples, each through every stage (the links hold one chunk).
            var start = 0
            let n = stages.count
            while start < L {
                let len = min(state.maxBlock, L - start)
                var input = X + start * dIn
                for i in 0..<n {
                    let out = i == n - 1 ? Y + start * dOut : state.links + (i & 1) * state.linkWidth * state.maxBlock
                    stages[i].forward(input, out, length: len, state: state.stages[i], mode: mode)
                    input = UnsafePointer(out)
                }
                start += len
            }
            return
        }
        var start = 0
        let mask = state.featureMask, dropout = state.dropout
        while start < L {
            let n = min(state.maxBlock, L - start)
            let h = state.block.x
            let xin = X + start * dIn, yout = Y + start * dOut
            if let e = encoder { e.apply(xin, h, length: n) } else { h.update(from: xin, count: n * dModel) }
            if !pooled {
                for (i, b) in blocks.enumerated() {
                    b.forward(h, length: n, state: state.state, state.blockWorks[i], mode: mode, mask: mask, dropout: dropout?.forBlock(i))
                }
                if let d = decoder { d.apply(h, yout, length: n) } else { yout.update(from: h, count: n * dModel) }
            } else {
                let comp = state.completion
                for k in 0..<n { comp[k] = k }
                var rows = n
                for (i, b) in blocks.enumerated() {
                    if pools[i] > 1 { rows = pool(h, rows: rows, block: i, state: state) }
                    if rows > 0 {
                        b.forward(h, length: rows, state: state.state, state.blockWorks[i], mode: mode, mask: mask, dropout: dropout?.forBlock(i))
                    }
                }
                if rows > 0 { if let d = decoder { d.apply(h, yout, length: rows) } else { yout.update(from: h, count: rows * dModel) } }
                hold(yout, samples: n, frames: rows, completion: comp, held: state.state + heldOffset)
            }
            start += n
        }
    }

    /// Pools `rows` rows of h in place into one mean per R (the block's accumulator carries a
    /// partial group across calls); the completion sample of each new row follows it. Returns the rows left.
    private func pool(_ h: UnsafeMutablePointer<Scalar>, rows: Int, block i: Int, state: ModelState) -> Int {
        let H = dModel, acc = state.state + poolOffsets[i], comp = state.completion
        var m = 0
        for k in 0..<rows {
            if poolAdd(h + k * H, into: acc, pool: pools[i], mean: h + m * H) {
                comp[m] = comp[k]
                m += 1
            }
        }
        return m
    }

    /// The one pooling step every path shares (`step`, `forward`, the batched step): adds the row
    /// (H) to a pool's accumulator (H sums, then the count); when R rows are in, writes their mean to
    /// `mean` (which may be the row itself, or an earlier row), clears the accumulator and returns true.
    @inline(__always)
    func poolAdd(_ row: UnsafePointer<Scalar>, into acc: UnsafeMutablePointer<Scalar>, pool R: Int,
                 mean: UnsafeMutablePointer<Scalar>) -> Bool {
        let H = dModel
        for j in 0..<H { acc[j] += row[j] }
        acc[H] += 1
        if acc[H] < Scalar(R) { return false }
        let inv = 1 / Scalar(R)
        for j in 0..<H { mean[j] = acc[j] * inv; acc[j] = 0 }
        acc[H] = 0
        return true
    }

    /// Expands `frames` output rows (at the front of Y) to one row per sample in place: sample k
    /// holds the last frame completed at or before it, or `held` (from before the chunk); then
    /// `held` takes the chunk's last value.
    private func hold(_ Y: UnsafeMutablePointer<Scalar>, samples n: Int, frames: Int, completion comp: UnsafePointer<Int>,
                      held: UnsafeMutablePointer<Scalar>) {
        let D = dOut
        var j = frames - 1
        var k = n - 1
        while k >= 0 {
            while j >= 0 && comp[j] > k { j -= 1 }
            let dst = Y + k * D
            if j < 0 { dst.update(from: held, count: D) } else if j != k { dst.update(from: Y + j * D, count: D) }
            k -= 1
        }
        if frames > 0 { held.update(from: Y + (n - 1) * D, count: D) }
    }

    /// A training tape: a state whose block buffers are kept per block (see `BlockWork`), for
    /// sequences of up to `length` samples. `forward` on it from `reset()` then `backward`.
    public func makeTape(length: Int) -> ModelState { ModelState(self, maxBlock: max(1, length), tape: true) }

    /// Whether every layer has a backward pass (`SequenceLayer.isTrainable`).
    public var isTrainable: Bool { stages.isEmpty && blocks.allSatisfy { $0.layer.isTrainable } }

    /// Pullback of `forward` over one sequence X (L, d_input) that `forward` just ran on `tape` from
    /// the zero state: dY (L, d_output) → engine-layout gradients of every weight, accumulated into
    /// `grad` (a gradient twin: the same model, built from the same tensors, `zeroGradients()`ed).
    /// The gradient of the input itself is not formed.
    public func backward(_ X: UnsafePointer<Scalar>, _ dY: UnsafePointer<Scalar>, length L: Int, tape: ModelState, into grad: Model) {
        precondition(tape.backwardWork != nil && L <= tape.maxBlock, "Model.backward needs a tape of at least \(L) samples")
        let b = tape.backwardWork!, h = tape.block.x, dh = tape.dh!, H = dModel
        // Rows per stage: from the zero state a pool of R turns n rows into ⌊n/R⌋.
        var rows = [Int](), n = L, total = 1
        for R in pools { if R > 1 { n /= R; total *= R }; rows.append(n) }
        var dOutput = dY
        if pooled {
            // The hold's pullback: frame j is the output from its completion sample (j+1)·R_total − 1
            // until the next frame's; the samples before the first frame held the initial (zero) state.
            let dF = tape.dFrames!
            dF.update(repeating: 0, count: max(1, n * dOut))
            for k in 0..<L {
                let j = min(n - 1, (k + 1) / total - 1)
                if j >= 0 { for c in 0..<dOut { dF[j * dOut + c] += dY[k * dOut + c] } }
            }
            dOutput = UnsafePointer(dF)
        }
        if let d = decoder { if n > 0 { d.backward(h, dOutput, dh, length: n, into: grad.decoder!) } else { dh.update(repeating: 0, count: H) } }
        else { dh.update(from: dOutput, count: n * H) }
        let mask = tape.featureMask, dropout = tape.dropout
        for i in blocks.indices.reversed() {
            if rows[i] > 0 {
                blocks[i].backward(dh, length: rows[i], tape.blockWorks[i], b, into: grad.blocks[i], mask: mask, dropout: dropout?.forBlock(i))
            }
            let R = pools[i]
            if R > 1 {
                // The pool's pullback: each of the R rows of a completed group gets 1/R of its gradient.
                let before = i == 0 ? L : rows[i - 1], inv = 1 / Scalar(R)
                var k = before - 1
                while k >= 0 {
                    let j = k / R, dst = dh + k * H
                    if j < rows[i] { let src = dh + j * H; for c in 0..<H { dst[c] = src[c] * inv } }
                    else { dst.update(repeating: 0, count: H) }
                    k -= 1
                }
            }
        }
        if let e = encoder {
            // The encoder's input gradient is not needed: only its weights'.
            e.backward(X, dh, nil, length: L, into: grad.encoder!)
        }
    }

    /// Pullback of `init`: the engine-layout gradients accumulated in `grad` (a gradient twin of this
    /// model) → the gradient of every tensor in `tensors` (the parameters this model was built from),
    /// by name and in the tensor's own shape. What a training run updates is exactly what the file stores.
    public func parameterGradients(_ grad: Model, tensors: [String: Tensor]) throws(ModelError) -> [String: [Scalar]] {
        let r = TensorReader(tensors)
        var out: [String: [Scalar]] = [:]
        if let e = grad.encoder { out["encoder.weight"] = e.weightGradient(); out["encoder.bias"] = e.biasGradient() }
        for (i, b) in blocks.enumerated() { try b.parameterGradients(grad.blocks[i], r, prefix: "layers.\(i).", into: &out) }
        if let d = grad.decoder { out["decoder.weight"] = d.weightGradient(); out["decoder.bias"] = d.biasGradient() }
        if let missing = tensors.keys.sorted().first(where: { out[$0] == nil }) {
            throw ModelError("no gradient for tensor '\(missing)'")
        }
        return out
    }

    /// Names of the tensors in the families' SSM groups (their own learning rate, no weight decay).
    public var ssmParameterNames: Set<String> {
        var s = Set<String>()
        for (i, b) in spec.blocks.enumerated() {
            for n in SequenceLayer.ssmParameterNames(b.layer) { s.insert("layers.\(i)." + (b.layerPrefix ?? "layer.") + n) }
        }
        return s
    }


    // Gradient twins: a model's buffers used as accumulators of the same layout.

    /// Every weight to zero.
    public func zeroGradients() { arena.zero() }
    /// self += other (the same architecture).
    public func addGradients(_ other: Model) { arena.add(other.arena) }
    /// Engine buffers refilled in place from `other`, the same architecture compiled from new parameters.
    public func updateWeights(from other: Model) { arena.update(from: other.arena) }

    public var parameterCount: Int {
        stages.reduce(0) { $0 + $1.parameterCount } + (encoder?.parameterCount ?? 0) + (decoder?.parameterCount ?? 0) + blocks.reduce(0) { $0 + $1.parameterCount }
    }

    /// Per input sample: a block after pools of R₁·R₂… runs once per R₁·R₂… samples.
    public var flopsPerSample: Int {
        // A chain's stages each run per input sample (a pooled stage holds its output per sample).
        var total = stages.reduce(0) { $0 + $1.flopsPerSample } + 2 * (encoder.map { $0.inputs * $0.outputs } ?? 0), rate = 1
        for (i, b) in blocks.enumerated() { rate *= pools[i]; total += b.flopsPerSample / rate }
        return total + 2 * (decoder.map { $0.inputs * $0.outputs } ?? 0) / rate
    }
}

/// One stream's recurrent state — a single allocation of `stateCount` floats, sized by the model and
/// never by the stream's length — plus the work buffers its steps and blocks write through.
public final class ModelState: @unchecked Sendable {
    public let stateCount: Int
    public let maxBlock: Int
    @usableFromInline let state: UnsafeMutablePointer<Scalar>
    @usableFromInline let stepWork: StepWork
    /// One per block: all the same buffers when streaming, distinct ones in a tape.
    let blockWorks: [BlockWork]
    @usableFromInline let step: (x: UnsafeMutablePointer<Scalar>, Void)
    let block: (x: UnsafeMutablePointer<Scalar>, Void)
    /// A tape's backward scratch and hidden gradient (L, d_model); nil when streaming.
    let backwardWork: BackwardWork?
    let dh: UnsafeMutablePointer<Scalar>?
    /// A tape's gradient of the pooled output frames (L, d_output), when the model pools.
    let dFrames: UnsafeMutablePointer<Scalar>?
    /// Per row of a pooled block sequence, the sample of the chunk at which it completed.
    let completion: UnsafeMutablePointer<Int>
    /// A chain's: one state per stage (their recurrent states are slices of this one's `state`, so
    /// that `reset` and `snapshot` cover the whole chain) and the buffers between stages: two of
    /// `linkWidth` floats per sample of a block, used in turn.
    let stages: [ModelState]
    let links: UnsafeMutablePointer<Scalar>
    let linkWidth: Int
    /// A training tape's feature masks for the next `forward` and its `backward` (`FeatureMask`;
    /// nil: none). A streaming state has no buffer to mask with and ignores it.
    public var featureMask: FeatureMask? = nil
    /// A training tape's dropout for the next `forward` and its `backward` (`Dropout`; nil: none).
    /// A streaming state ignores it.
    public var dropout: Dropout? = nil
    private let arena = Arena()
    /// What owns `state` when it is a slice of another allocation (a chain's, a `StreamBatch`'s):
    /// kept alive as long as this state is.
    private let owner: AnyObject?

    init(_ m: Model, maxBlock: Int, tape: Bool = false, storage: UnsafeMutablePointer<Scalar>? = nil, owner: AnyObject? = nil) {
        self.owner = owner
        stateCount = m.stateCount
        self.maxBlock = maxBlock
        let state = storage ?? arena.floats(m.stateCount)
        self.state = state
        if !m.stages.isEmpty {
            precondition(!tape, "a chain has no training tape")
            var offset = 0, subs: [ModelState] = []
            for s in m.stages { subs.append(ModelState(s, maxBlock: maxBlock, storage: state + offset, owner: owner ?? arena)); offset += s.stateCount }
            stages = subs
            linkWidth = max(1, m.stages.dropLast().map(\.dOut).max() ?? 1)
            links = arena.floats(2 * linkWidth * maxBlock)
            step = (arena.floats(1), ()); block = (arena.floats(1), ())
            stepWork = StepWork(t: step.x, y: step.x, v: step.x, z: step.x, s: step.x)
            blockWorks = []; backwardWork = nil; dh = nil; dFrames = nil
            completion = .allocate(capacity: 1)
            completion.initialize(to: 0)
            return
        }
        stages = []; linkWidth = 0; links = arena.floats(1)
        let H = m.spec.dModel
        let wide = m.blocks.map(\.workWidth).max() ?? H
        let scratch = m.blocks.map(\.layer.scratchCount).max() ?? 0
        let io = max(H, m.spec.dInput, m.spec.dOutput)
        step = (arena.floats(io), ())
        stepWork = StepWork(t: arena.floats(H), y: arena.floats(H), v: arena.floats(wide), z: arena.floats(H), s: arena.floats(scratch))
        block = (arena.floats(maxBlock * io), ())
        let L = maxBlock, arena = self.arena
        if tape {
            blockWorks = m.blocks.map { b in
                let y = arena.floats(L * H), v = arena.floats(L * b.workWidth)
                let mlp = b.output == .mlp || b.output == .gatedMLP
                return BlockWork(t: arena.floats(L * H), y: y, a: arena.floats(L * H), v: v,
                                 g: mlp ? arena.floats(L * b.workWidth) : v, z: arena.floats(L * H),
                                 s: arena.floats(b.layer.blockScratchCount(L)), input: arena.floats(L * H),
                                 sum: !b.prenorm && b.norm.kind != .none ? arena.floats(L * H) : nil,
                                 raw: b.compress != .none ? arena.floats(L * H) : nil,
                                 keep: b.compress != .none ? arena.floats(L * H) : nil, isTape: true)
            }
            let layerScratch = m.blocks.map { $0.layer.backwardScratchCount(L) }.max() ?? 0
            backwardWork = BackwardWork(da: arena.floats(L * H), dv: arena.floats(L * wide), dg: arena.floats(L * wide),
                                        dt: arena.floats(L * H), layer: arena.floats(layerScratch),
                                        zeroState: arena.floats(m.blocks.map(\.layer.stateCount).max() ?? 0))
            dh = arena.floats(L * H)
            dFrames = m.pooled ? arena.floats(L * m.spec.dOutput) : nil
        } else {
            // At least a step's scratch too: a `StreamBatch` steps its streams through these buffers.
            let blockScratch = m.blocks.map { max($0.layer.blockScratchCount(maxBlock), $0.layer.scratchCount) }.max() ?? 0
            let y = arena.floats(maxBlock * H), v = arena.floats(maxBlock * wide)
            let shared = BlockWork(t: arena.floats(maxBlock * H), y: y, a: y, v: v, g: v,
                                   z: arena.floats(maxBlock * H), s: arena.floats(blockScratch), input: nil, sum: nil, raw: nil,
                                   keep: nil, isTape: false)
            blockWorks = Array(repeating: shared, count: m.blocks.count)
            backwardWork = nil; dh = nil; dFrames = nil
        }
        completion = .allocate(capacity: max(1, maxBlock))
        completion.initialize(repeating: 0, count: max(1, maxBlock))
    }

    deinit { completion.deallocate() }

    /// Floats this state holds (a tape's memory: what one training thread costs).
    public var floatCount: Int { arena.count }

    /// The recurrent state in bytes (what a stream costs, whatever its length).
    public var stateBytes: Int { stateCount * MemoryLayout<Scalar>.stride }

    /// Back to the zero state (a new stream).
    public func reset() { state.update(repeating: 0, count: stateCount) }

    /// A copy of the recurrent state (for tests and checkpoints).
    public var snapshot: [Scalar] { Array(UnsafeBufferPointer(start: state, count: stateCount)) }
}
