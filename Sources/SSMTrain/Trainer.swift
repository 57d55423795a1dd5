import SSM

/// What a model is trained to do with its per-step outputs Y (L, d_output).
public enum Objective: Sendable, Equatable {
    /// Classification: mean of the per-step logits (one label per sequence) or per-step targets.
    case classify(Readout)
    /// Filtering: the output sequence against a target sequence.
    case filter(FilterLoss)

    public enum Readout: String, Sendable, Codable, CaseIterable { case pooled, perStep = "per_step" }
    public enum FilterLoss: String, Sendable, Codable, CaseIterable { case mse, esr, siSDR = "si_sdr" }
}

/// One training sequence, already cropped to the trainer's length L: x (L, d_input); a class label,
/// per-step targets (L; −1 not counted) or a target sequence (L, d_output).
public struct TrainingSequence: Sendable {
    public var x: [Scalar]
    public var label: Int
    public var stepTargets: [Int32]?
    public var target: [Scalar]?
    /// Feature masks for this sequence's forward (augmentation; nil: none).
    public var mask: FeatureMask?
    public init(x: [Scalar], label: Int = 0, stepTargets: [Int32]? = nil, target: [Scalar]? = nil, mask: FeatureMask? = nil) {
        self.x = x; self.label = label; self.stepTargets = stepTargets; self.target = target; self.mask = mask
    }
}

/// Sums over a batch: the loss (sum of per-sequence losses), and for classifiers how many
/// predictions were counted and right (sequences for a pooled readout, steps per step).
public struct BatchResult: Sendable {
    public var loss = 0.0, sequences = 0, counted = 0, correct = 0
    /// Predicted class per sequence (pooled readout), in batch order.
    public var predictions: [Int] = []
    public init() {}
    public mutating func add(_ o: BatchResult) {
        loss += o.loss; sequences += o.sequences; counted += o.counted; correct += o.correct; predictions += o.predictions
    }
    public var meanLoss: Double { sequences > 0 ? loss / Double(sequences) : 0 }
    public var accuracy: Double { counted > 0 ? Double(correct) / Double(counted) : 0 }
}

public struct TrainError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case architecture, nonFinite, data, io }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// Data-parallel training on the scan core: each thread runs its share of the batch through the
/// model's own `forward` on a tape, then `backward` into its gradient twin; the twins are summed in
/// thread order, pulled back to the file's tensors and stepped by AdamW. With the same seed, data
/// and thread count every step is the same, bit for bit.
///
/// Memory: one tape per thread (`tapeBytes`), sized by L and the architecture, allocated once.
public final class Trainer {
    public let spec: ModelSpec
    public let objective: Objective
    public let parameters: ParameterStore
    public let optimizer: AdamW
    /// The engine the steps run on; its buffers are refilled in place after every update.
    public let model: Model
    public let length: Int
    public let threads: Int
    /// Dropout on the blocks' activated layer outputs during training steps (`Dropout`; 0: none),
    /// its decisions seeded by `dropoutSeed`, the optimizer step and the sequence's place in the
    /// batch (so a resumed run drops what the uninterrupted one would have). Not in `evaluate`
    /// (validation) unless asked for (`dropping`, what a gradient check differentiates).
    public var dropout: Scalar = 0
    public var dropoutSeed: UInt64 = 0
    private let twins: [Model]
    private let tapes: [ModelState]
    private let work: [(y: UnsafeMutablePointer<Scalar>, dy: UnsafeMutablePointer<Scalar>)]

    public init(spec: ModelSpec, tensors: [String: Tensor], objective: Objective, length: Int, threads: Int,
                schedule: Schedule, weightDecay: Double, clipNorm: Double) throws(TrainError) {
        // Training runs in float32: half-precision weights continue as floats (their rounded values);
        // a model's half copies are for the step and would not follow the updates.
        let tensors = tensors.mapValues { var t = $0; t.half = false; return t }
        let model: Model
        do { model = try Model(spec: spec, tensors: tensors) } catch { throw TrainError(.architecture, error.message) }
        guard model.stages.isEmpty else {
            throw TrainError(.architecture, "a chain of models cannot be trained as one: train its stages, then `ssm-stream chain` them")
        }
        guard model.isTrainable else {
            let f = model.blocks.filter { !$0.layer.isTrainable }.map(\.spec.layer.family.rawValue)
            throw TrainError(.architecture, "training supports s4d, s5, lru, identity and mean_norm layers; this architecture has \(Set(f).sorted().joined(separator: ", "))")
        }
        switch objective {
        case .classify:
            guard spec.task == .classify else { throw TrainError(.architecture, "a classification objective needs \"task\": \"classify\" in the architecture") }
        case .filter:
            guard spec.task == .filter else { throw TrainError(.architecture, "a filter objective needs \"task\": \"filter\" in the architecture") }
        }
        self.spec = spec; self.objective = objective; self.model = model
        self.length = max(1, length); self.threads = max(1, threads)
        parameters = ParameterStore(tensors, ssmNames: model.ssmParameterNames)
        optimizer = AdamW(count: parameters.count, schedule: schedule, weightDecay: weightDecay, clipNorm: clipNorm)
        var twins: [Model] = []
        for _ in 0..<self.threads {
            do { twins.append(try Model(spec: spec, tensors: tensors)) } catch { throw TrainError(.architecture, error.message) }
        }
        self.twins = twins
        tapes = (0..<self.threads).map { _ in model.makeTape(length: max(1, length)) }
        work = (0..<self.threads).map { _ in
            let n = max(1, length) * spec.dOutput
            let y = UnsafeMutablePointer<Scalar>.allocate(capacity: n), dy = UnsafeMutablePointer<Scalar>.allocate(capacity: n)
            y.initialize(repeating: 0, count: n); dy.initialize(repeating: 0, count: n)
            return (y, dy)
        }
    }

    deinit { for w in work { w.y.deallocate(); w.dy.deallocate() } }

    /// Bytes of the training tapes (all threads): the memory a run needs beyond the data.
    public var tapeBytes: Int { tapes.reduce(0) { $0 + $1.floatCount } * MemoryLayout<Scalar>.stride }

    /// Forward and backward over `batch`, gradients into `parameters.gradients` (mean over the
    /// batch), without updating. Returns the batch's sums.
    public func computeGradients(_ batch: [TrainingSequence]) throws(TrainError) -> BatchResult {
        let result = run(batch, backward: true)
        guard result.loss.isFinite else {
            throw TrainError(.nonFinite, "the loss is not finite (\(result.loss))")
        }
        for t in 1..<threads { twins[0].addGradients(twins[t]) }
        let g: [String: [Scalar]]
        do { g = try model.parameterGradients(twins[0], tensors: parameters.tensors) } catch { throw TrainError(.architecture, error.message) }
        parameters.setGradients(g)
        let scale = 1 / Scalar(max(1, batch.count))
        for i in parameters.gradients.indices { parameters.gradients[i] *= scale }
        return result
    }

    /// One optimizer step on `batch`: gradients, AdamW, the families' constraints, and the engine
    /// recompiled from the new parameters (in place).
    @discardableResult
    public func step(_ batch: [TrainingSequence]) throws(TrainError) -> BatchResult {
        let result = try computeGradients(batch)
        guard parameters.gradients.allSatisfy(\.isFinite) else {
            throw TrainError(.nonFinite, "a gradient is not finite")
        }
        optimizer.update(parameters)
        constrain()
        try compile()
        return result
    }

    /// The loss and predictions on `batch`, without gradients (validation). `dropping`: with the
    /// dropout the next step's batch will have (what a finite-difference check of it differentiates).
    public func evaluate(_ batch: [TrainingSequence], dropping: Bool = false) -> BatchResult {
        run(batch, backward: false, dropping: dropping)
    }

    /// Refills the engine from `parameters` (after an update or a checkpoint restore).
    public func compile() throws(TrainError) {
        let fresh: Model
        do { fresh = try Model(spec: spec, tensors: parameters.tensors) } catch {
            throw TrainError(.nonFinite, "the updated parameters do not make a usable model: \(error.message)")
        }
        model.updateWeights(from: fresh)
    }

    private func constrain() {
        for (i, b) in spec.blocks.enumerated() {
            let prefix = "layers.\(i)." + (b.layerPrefix ?? "layer.")
            for name in parameters.names where name.hasPrefix(prefix) {
                parameters.withTensor(name) { SequenceLayer.constrain(b.layer, String(name.dropFirst(prefix.count)), &$0) }
            }
        }
    }

    private func run(_ batch: [TrainingSequence], backward: Bool, dropping: Bool? = nil) -> BatchResult {
        let drop = (dropping ?? backward) && dropout > 0
        let T = threads, B = batch.count
        var results = [BatchResult](repeating: BatchResult(), count: T)
        results.withUnsafeMutableBufferPointer { res in
            let res = res
            concurrentPerform(T) { t in
                if backward { twins[t].zeroGradients() }
                var r = BatchResult()
                for i in (t * B / T)..<((t + 1) * B / T) {
                    tapes[t].dropout = drop ? Dropout(rate: dropout, seed: sequenceSeed(i)) : nil
                    one(batch[i], thread: t, backward: backward, into: &r)
                }
                res[t] = r
            }
        }
        var total = BatchResult()
        for r in results { total.add(r) }
        return total
    }

    /// Sequence i of the next optimizer step's batch: its dropout seed.
    private func sequenceSeed(_ i: Int) -> UInt64 {
        Dropout.mix(Dropout.mix(dropoutSeed ^ UInt64(optimizer.step + 1)) ^ UInt64(i))
    }

    private func one(_ s: TrainingSequence, thread t: Int, backward: Bool, into r: inout BatchResult) {
        let L = length, C = spec.dOutput, tape = tapes[t], (y, dy) = work[t]
        precondition(s.x.count == L * spec.dInput, "a training sequence has \(s.x.count) values, expected \(L * spec.dInput)")
        tape.reset()
        tape.featureMask = s.mask
        s.x.withUnsafeBufferPointer { x in
            model.forward(x.baseAddress!, y, length: L, state: tape)
            let d: UnsafeMutablePointer<Scalar>? = backward ? dy : nil
            switch objective {
            case .classify(.pooled):
                let (loss, predicted) = Loss.pooledCrossEntropy(y, d, length: L, classes: C, label: s.label)
                r.loss += loss; r.counted += 1; r.correct += predicted == s.label ? 1 : 0; r.predictions.append(predicted)
            case .classify(.perStep):
                let targets = s.stepTargets ?? [Int32](repeating: Int32(s.label), count: L)
                let (loss, counted, correct) = targets.withUnsafeBufferPointer {
                    Loss.perStepCrossEntropy(y, d, length: L, classes: C, targets: $0.baseAddress!)
                }
                r.loss += loss; r.counted += counted; r.correct += correct
            case .filter(let f):
                let target = s.target ?? [Scalar](repeating: 0, count: L * C)
                r.loss += target.withUnsafeBufferPointer { tp in
                    switch f {
                    case .mse: Loss.mse(y, tp.baseAddress!, d, count: L * C)
                    case .esr: Loss.esr(y, tp.baseAddress!, d, count: L * C)
                    case .siSDR: Loss.negativeSISDR(y, tp.baseAddress!, d, count: L * C)
                    }
                }
            }
            r.sequences += 1
            if backward { model.backward(x.baseAddress!, dy, length: L, tape: tape, into: twins[t]) }
        }
    }
}
