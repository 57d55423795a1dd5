import FoundationEssentials
import SSM

/// Everything a training run is configured by, with its defaults (the one place they live; the CLI
/// flags and the TOML keys of `ssm-stream train` map onto these fields by the same names).
public struct TrainOptions: Codable, Sendable, Equatable {
    public var epochs: Int? = nil
    /// A time budget: the schedule is fitted to it from the measured step time.
    public var minutes: Double? = nil
    public var batch = 16
    public var lr = 3e-3
    /// The SSM group's learning rate (eigenvalues, step sizes, B).
    public var ssmLR = 1e-3
    public var weightDecay = 0.01
    /// Dropout on the blocks' activated layer outputs (`Trainer.dropout`; nil: none — optional so
    /// that a model trained without it records no key).
    public var dropout: Double? = nil
    /// Stochastic weight averaging (Izmailov et al. 2018): after this fraction of the schedule's
    /// steps, the parameters after every step join a running mean, which validation, the exported
    /// model and `--resume` use (nil: none).
    public var averageFrom: Double? = nil
    public var warmup = 0.05
    public var clip = 1.0
    public var seed: UInt64 = 0
    public var threads: Int? = nil
    /// Window length in seconds (crop or pad every clip to it).
    public var seconds = 1.0
    public var readout: Objective.Readout = .pooled
    public var filterLoss: Objective.FilterLoss = .esr
    /// Class that per-step training uses outside words (a label name in the data), if any.
    public var background: String? = nil
    /// Per-step: seconds after a word during which its class stays the target.
    public var tail = 0.25
    /// Per-step: the share of a word heard before its class becomes the target (`Windowing.evidence`;
    /// nil: its default; optional so that a model trained without it records no key).
    public var evidence: Double? = nil
    public var valFraction = 0.1
    public var valPattern: String? = nil
    public var gainDB = 6.0
    public var snrMin: Double? = nil
    public var snrMax: Double? = nil
    /// `Augmentation.cutNoise` (nil: 0; optional so that a model trained without it records no key).
    public var cutNoise: Double? = nil
    /// Only recordings whose path contains this get the `--noise` folder's noise, the others white
    /// noise (`Augmentation.noisePattern`; nil: all).
    public var noisePattern: String? = nil
    /// `Augmentation.trim` (nil: 0; optional so that a model trained without it records no key).
    public var trim: Double? = nil
    /// The highest level a trim may cut at (`Augmentation.trimLevel`'s upper bound; nil: its default).
    public var trimLevel: Double? = nil
    /// Only recordings whose path contains this are trimmed (`Augmentation.trimPattern`; nil: all).
    public var trimPattern: String? = nil
    public var speed = 0.0
    public var tilt = 0.0
    public var eqDB = 0.0
    public var eqBands = Augmentation().eqBands
    public var whisper = 0.0
    public var formant = 0.0
    /// `Augmentation.tempo` (nil: 0; optional so that a model trained without it records no key).
    public var tempo: Double? = nil
    public var lowpass = 0.0
    /// `Augmentation.reverb`: the probability that a clip is reverberated, at an RT60 log-uniform in
    /// 0.1–0.7 s (nil: 0; optional so that a model trained without it records no key).
    public var reverb: Double? = nil
    /// Feature masks (`Augmentation.maskChannels`, `.masks`; nil: none, the default count), maskTime
    /// in seconds. Optional so that a model trained without them records no such keys.
    public var maskChannels: Double? = nil
    public var maskTime: Double? = nil
    public var masks: Int? = nil
    public var shift = Augmentation().shift
    /// Event settings the exported classifier suggests to `run` and the daemon (`ModelSpec.events`;
    /// the background class is always among its ignored classes).
    public var eventThreshold: Float? = nil
    public var eventRelease: Float? = nil
    public var eventMinDuration: Double? = nil
    public var eventMinGap: Double? = nil

    public init() {}

    /// Missing keys keep their defaults: a model trained before an option existed still reads.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self), d = TrainOptions()
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
        minutes = try c.decodeIfPresent(Double.self, forKey: .minutes)
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? d.batch
        lr = try c.decodeIfPresent(Double.self, forKey: .lr) ?? d.lr
        ssmLR = try c.decodeIfPresent(Double.self, forKey: .ssmLR) ?? d.ssmLR
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout)
        averageFrom = try c.decodeIfPresent(Double.self, forKey: .averageFrom)
        warmup = try c.decodeIfPresent(Double.self, forKey: .warmup) ?? d.warmup
        clip = try c.decodeIfPresent(Double.self, forKey: .clip) ?? d.clip
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds) ?? d.seconds
        readout = try c.decodeIfPresent(Objective.Readout.self, forKey: .readout) ?? d.readout
        filterLoss = try c.decodeIfPresent(Objective.FilterLoss.self, forKey: .filterLoss) ?? d.filterLoss
        background = try c.decodeIfPresent(String.self, forKey: .background)
        tail = try c.decodeIfPresent(Double.self, forKey: .tail) ?? d.tail
        evidence = try c.decodeIfPresent(Double.self, forKey: .evidence)
        valFraction = try c.decodeIfPresent(Double.self, forKey: .valFraction) ?? d.valFraction
        valPattern = try c.decodeIfPresent(String.self, forKey: .valPattern)
        gainDB = try c.decodeIfPresent(Double.self, forKey: .gainDB) ?? d.gainDB
        snrMin = try c.decodeIfPresent(Double.self, forKey: .snrMin)
        snrMax = try c.decodeIfPresent(Double.self, forKey: .snrMax)
        speed = try c.decodeIfPresent(Double.self, forKey: .speed) ?? d.speed
        tilt = try c.decodeIfPresent(Double.self, forKey: .tilt) ?? d.tilt
        eqDB = try c.decodeIfPresent(Double.self, forKey: .eqDB) ?? d.eqDB
        eqBands = try c.decodeIfPresent(Int.self, forKey: .eqBands) ?? d.eqBands
        whisper = try c.decodeIfPresent(Double.self, forKey: .whisper) ?? d.whisper
        formant = try c.decodeIfPresent(Double.self, forKey: .formant) ?? d.formant
        tempo = try c.decodeIfPresent(Double.self, forKey: .tempo)
        cutNoise = try c.decodeIfPresent(Double.self, forKey: .cutNoise)
        noisePattern = try c.decodeIfPresent(String.self, forKey: .noisePattern)
        trim = try c.decodeIfPresent(Double.self, forKey: .trim)
        trimLevel = try c.decodeIfPresent(Double.self, forKey: .trimLevel)
        trimPattern = try c.decodeIfPresent(String.self, forKey: .trimPattern)
        lowpass = try c.decodeIfPresent(Double.self, forKey: .lowpass) ?? d.lowpass
        reverb = try c.decodeIfPresent(Double.self, forKey: .reverb)
        maskChannels = try c.decodeIfPresent(Double.self, forKey: .maskChannels)
        maskTime = try c.decodeIfPresent(Double.self, forKey: .maskTime)
        masks = try c.decodeIfPresent(Int.self, forKey: .masks)
        shift = try c.decodeIfPresent(Bool.self, forKey: .shift) ?? d.shift
        eventThreshold = try c.decodeIfPresent(Float.self, forKey: .eventThreshold)
        eventRelease = try c.decodeIfPresent(Float.self, forKey: .eventRelease)
        eventMinDuration = try c.decodeIfPresent(Double.self, forKey: .eventMinDuration)
        eventMinGap = try c.decodeIfPresent(Double.self, forKey: .eventMinGap)
    }


    enum CodingKeys: String, CodingKey {
        case epochs, minutes, batch, lr, ssmLR = "ssm_lr", weightDecay = "weight_decay", dropout, averageFrom = "average_from", warmup, clip, seed, threads
        case seconds, readout, filterLoss = "filter_loss", background, tail, evidence, valFraction = "val_fraction"
        case valPattern = "val_pattern", gainDB = "gain_db", snrMin = "snr_min", snrMax = "snr_max", speed, tilt, shift
        case eqDB = "eq_db", eqBands = "eq_bands", whisper, formant, tempo, lowpass, reverb, cutNoise = "cut_noise", noisePattern = "noise_pattern", trim
        case trimLevel = "trim_level", trimPattern = "trim_pattern"
        case maskChannels = "mask_channels", maskTime = "mask_time", masks
        case eventThreshold = "event_threshold", eventRelease = "event_release", eventMinDuration = "event_min_duration"
        case eventMinGap = "event_min_gap"
    }

    /// The windowing these options ask for at `sampleRate`: `seconds` long, the per-step targets'
    /// `tail` and `evidence`, and `augmentation` (noise clips to mix in are the caller's to add).
    public func windowing(sampleRate: Int, background: Int?) -> Windowing {
        var w = Windowing(length: max(1, Int(seconds * Double(sampleRate))), background: background)
        w.tail = Int(tail * Double(sampleRate))
        if let evidence { w.evidence = evidence }
        w.augmentation = augmentation
        return w
    }

    /// The augmentation these options ask for (noise clips to mix in are the caller's to add; with
    /// them and no SNR range given, `snrDB` is the caller's too).
    public var augmentation: Augmentation {
        var a = Augmentation()
        a.gainDB = gainDB
        a.speed = speed
        a.tilt = tilt
        a.eqDB = eqDB
        a.eqBands = eqBands
        a.whisper = whisper
        a.formant = formant
        a.tempo = tempo ?? 0
        a.lowpass = lowpass
        a.reverb = reverb ?? 0
        a.reverbTime = (0.1 / seconds)...(0.7 / seconds)
        a.maskChannels = maskChannels ?? 0
        a.maskTime = (maskTime ?? 0) / seconds
        a.masks = masks ?? a.masks
        a.shift = shift
        if let lo = snrMin ?? snrMax, let hi = snrMax ?? snrMin { a.snrDB = min(lo, hi)...max(lo, hi) }
        a.cutNoise = cutNoise ?? 0
        a.noisePattern = noisePattern
        a.trim = trim ?? 0
        a.trimPattern = trimPattern
        if let trimLevel { a.trimLevel = a.trimLevel.lowerBound...Swift.max(a.trimLevel.lowerBound, trimLevel) }
        return a
    }

    /// Keys a resumed run may set otherwise than its checkpoint: the thread count, the weight average
    /// (`averageFrom`: a run resumed without it stops averaging) and the event settings the exported
    /// model suggests. The run's length is not among them: the checkpoint's schedule continues.
    public static let resumableKeys = Set([CodingKeys.threads, .averageFrom, .eventThreshold, .eventRelease, .eventMinDuration,
                                           .eventMinGap].map(\.rawValue))

    /// What `checkpoint` (a checkpoint's options, `json`) trained with that these options change, as
    /// (key, the checkpoint's value, these options' value; "unset" for a key one of them lacks),
    /// sorted by key, leaving out `resumableKeys`: what `train --resume` refuses, since a run that
    /// continued on other data shaping, augmentation or optimizer settings would be neither run.
    public func changes(from checkpoint: String) -> [(key: String, checkpoint: String, now: String)] {
        /// One option's value as the JSON text it was written as (the options are flat scalars).
        enum Value: Decodable, Equatable, CustomStringConvertible {
            case number(Double), text(String), flag(Bool)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let b = try? c.decode(Bool.self) { self = .flag(b) }
                else if let d = try? c.decode(Double.self) { self = .number(d) }
                else { self = .text(try c.decode(String.self)) }
            }
            var description: String {
                switch self {
                case .number(let d): d == d.rounded() && Swift.abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
                case .text(let t): "'\(t)'"
                case .flag(let b): "\(b)"
                }
            }
        }
        func fields(_ text: String) -> [String: Value] { (try? JSONDecoder().decode([String: Value].self, from: Data(text.utf8))) ?? [:] }
        let then = fields(checkpoint), now = fields(json)
        return Set(then.keys).union(now.keys).subtracting(Self.resumableKeys).sorted().compactMap { k in
            then[k] == now[k] ? nil : (k, then[k].map(\.description) ?? "unset", now[k].map(\.description) ?? "unset")
        }
    }

    public var json: String {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// What a run reports as it goes (the CLI draws the progress bar and prints the lines).
public enum TrainEvent: Sendable {
    case step(epoch: Int, batch: Int, batches: Int, loss: Double, accuracy: Double, samplesStepsPerSecond: Double, eta: Double)
    case epoch(EpochSummary)
    case checkpoint(String)
    case best(String, metric: Double)
}

public struct EpochSummary: Codable, Sendable {
    public var epoch: Int, epochs: Int, step: Int
    public var trainLoss: Double, trainAccuracy: Double?
    public var valLoss: Double?, valAccuracy: Double?
    public var seconds: Double, samplesStepsPerSecond: Double, learningRate: Double
    enum CodingKeys: String, CodingKey {
        case epoch, epochs, step, trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss"
        case valAccuracy = "val_accuracy", seconds, samplesStepsPerSecond = "samples_steps_per_s", learningRate = "learning_rate"
    }
}

/// A training run: epochs of shuffled, augmented batches through a `Trainer`, validation after each
/// epoch, a checkpoint every epoch, and the best model by validation exported as a model file.
public final class TrainingRun {
    public let trainer: Trainer
    public let options: TrainOptions
    public let train: ClipSet, validation: ClipSet
    public let windowing: Windowing
    public let checkpointPath: String
    public let outputPath: String
    /// What this run trains on, as its checkpoints record it (`train --resume` compares it).
    public let data: DataDigest
    public private(set) var state: RunState
    private let clock: () -> Double

    public init(spec: ModelSpec, tensors: [String: Tensor], train: ClipSet, validation: ClipSet, options: TrainOptions,
                windowing: Windowing, output: String, checkpoint: String, resume: Checkpoint.Contents?,
                clock: @escaping () -> Double) throws(TrainError) {
        self.options = options; self.train = train; self.validation = validation; self.windowing = windowing
        outputPath = output; checkpointPath = checkpoint; self.clock = clock
        data = DataDigest(train: train, validation: validation, noise: windowing.noise)
        let objective: Objective = spec.task == .classify ? .classify(options.readout) : .filter(options.filterLoss)
        let threads = max(1, min(options.threads ?? systemCoreCount(), options.batch))
        let perEpoch = Self.batches(train.clips.count, options.batch)
        let total = max(1, (options.epochs ?? 10) * perEpoch)
        let schedule = Schedule(learningRate: options.lr, ssmLearningRate: options.ssmLR,
                                warmupSteps: Int(options.warmup * Double(total)), totalSteps: total, finalFraction: 0.01)
        trainer = try Trainer(spec: spec, tensors: resume?.parameters ?? tensors, objective: objective, length: windowing.length,
                              threads: threads, schedule: schedule, weightDecay: options.weightDecay, clipNorm: options.clip)
        trainer.dropout = Scalar(options.dropout ?? 0)
        trainer.dropoutSeed = options.seed
        state = RunState()
        state.totalSteps = total
        if let r = resume {
            let p = trainer.parameters
            let m = p.names.flatMap { r.m[$0]! }, v = p.names.flatMap { r.v[$0]! }
            trainer.optimizer.restore(step: r.state.step, m: m, v: v)
            state = r.state
            trainer.optimizer.schedule.totalSteps = state.totalSteps
            trainer.optimizer.schedule.warmupSteps = Int(options.warmup * Double(state.totalSteps))
            // A run resumed without --average-from stops averaging: its parameters, not a frozen mean.
            if let a = r.average, options.averageFrom != nil { average = p.names.flatMap { a[$0]! } } else { state.averaged = nil }
        }
    }

    static func batches(_ n: Int, _ b: Int) -> Int { max(1, (n + b - 1) / b) }

    public var batchesPerEpoch: Int { Self.batches(train.clips.count, options.batch) }

    /// The running mean of the parameters since `averageFrom` of the schedule (nil until it starts),
    /// in double precision rounded to a float pair (hi + lo) after every update, so that the
    /// checkpoint holds it exactly and late steps still count after 10⁵ of them.
    private var average: [Double]? = nil

    /// After a step: the parameters join the running mean once `averageFrom` of the schedule's steps
    /// are done (mean_n = mean_{n−1} + (p − mean_{n−1})/n), and every step after that. A time
    /// budget's schedule is only known from its first fit (step 3): no averaging before it.
    private func accumulateAverage() {
        guard let from = options.averageFrom else { return }
        if average == nil {
            guard options.minutes == nil || state.step > 3, Double(state.step) > from * Double(state.totalSteps) else { return }
        }
        let p = trainer.parameters.values, n = (state.averaged ?? 0) + 1
        var a = average ?? [Double](repeating: 0, count: p.count)
        let w = 1 / Double(n)
        for i in a.indices {
            let m = a[i] + (Double(p[i]) - a[i]) * w
            let hi = Float(m)
            a[i] = Double(hi) + Double(Float(m - Double(hi)))
        }
        average = a
        state.averaged = n
    }

    /// `body` with the engine on the averaged parameters, when there are any; the trained ones
    /// after, also when compiling the average or `body` fails.
    private func withAverage<T>(_ body: () throws(TrainError) -> T) throws(TrainError) -> T {
        guard let a = average else { return try body() }
        let p = trainer.parameters, current = p.values
        let result: Result<T, TrainError>
        p.values = a.map { Scalar($0) }
        do { try trainer.compile(); result = .success(try body()) } catch { result = .failure(error) }
        p.values = current
        try trainer.compile()
        return try result.get()
    }
    public var epochs: Int { max(1, (state.totalSteps + batchesPerEpoch - 1) / batchesPerEpoch) }

    /// The epoch's order of clips: seeded by (seed, epoch), the same on resume.
    func order(_ epoch: Int) -> [Int] {
        var idx = Array(train.clips.indices)
        var rng = SeededRandom(seed: options.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        shuffle(&idx, &rng)
        return idx
    }

    /// The batch's sequences, augmented with a generator seeded by (seed, step, position): the same
    /// batch on every run and every thread count. Made on the run's threads (resampling and noise
    /// cost about a quarter of a step when made on one).
    func batch(_ indices: ArraySlice<Int>, step: Int) -> [TrainingSequence] {
        let perStep = trainer.objective == .classify(.perStep)
        return sequences(indices.map { train.clips[$0] }) { clip, i in
            var rng: SeededRandom? = SeededRandom(seed: options.seed ^ (UInt64(step) << 20 | UInt64(i)) &+ 0xA5A5)
            return windowing.sequence(clip, perStep: perStep, rng: &rng)
        }
    }

    /// `make` over `clips`, split over the trainer's threads; element i is made from clips[i] alone,
    /// so how the work is split does not change the result.
    private func sequences(_ clips: [Clip], _ make: (Clip, Int) -> TrainingSequence) -> [TrainingSequence] {
        let n = clips.count, T = max(1, min(trainer.threads, n))
        var out = [TrainingSequence?](repeating: nil, count: n)
        out.withUnsafeMutableBufferPointer { o in
            let o = o
            concurrentPerform(T) { t in for i in (t * n / T)..<((t + 1) * n / T) { o[i] = make(clips[i], i) } }
        }
        return out.map { $0! }
    }

    /// Validation: loss and accuracy (classifiers) over the validation clips.
    public func validate() -> BatchResult {
        var total = BatchResult()
        let perStep = trainer.objective == .classify(.perStep)
        var start = 0
        while start < validation.clips.count {
            let end = min(validation.clips.count, start + max(options.batch, trainer.threads))
            let seqs = sequences(Array(validation.clips[start..<end])) { c, _ in
                var none: SeededRandom? = nil
                return windowing.sequence(c, perStep: perStep, rng: &none)
            }
            total.add(trainer.evaluate(seqs))
            start = end
        }
        return total
    }

    /// Runs until the schedule ends, the time budget is spent, or `shouldStop` (checked between
    /// steps) returns true; saves a checkpoint then. Returns whether it finished (false: stopped).
    public func run(shouldStop: () -> Bool, report: (TrainEvent) -> Void) throws(TrainError) -> Bool {
        let start = clock() - state.seconds
        let B = options.batch, L = windowing.length
        var fitted = options.minutes == nil || state.step > 0
        while state.epoch < epochs {
            let order = self.order(state.epoch)
            let n = batchesPerEpoch
            var epochLoss = 0.0, epochSeqs = 0, epochCorrect = 0, epochCounted = 0
            let epochStart = clock()
            var samplesSteps = 0.0
            while state.batchInEpoch < n {
                if shouldStop() {
                    state.seconds = clock() - start
                    try saveCheckpoint(report)
                    return false
                }
                let lo = state.batchInEpoch * B, hi = min(order.count, lo + B)
                let seqs = batch(order[lo..<hi], step: state.step)
                let r: BatchResult
                do { r = try trainer.step(seqs) } catch {
                    throw TrainError(error.kind, "step \(state.step) (epoch \(state.epoch + 1), batch \(state.batchInEpoch + 1)): \(error.message); "
                                     + "the last good checkpoint is '\(checkpointPath)'")
                }
                state.step += 1; state.batchInEpoch += 1
                accumulateAverage()
                epochLoss += r.loss; epochSeqs += r.sequences; epochCorrect += r.correct; epochCounted += r.counted
                samplesSteps += Double(seqs.count * L)
                let now = clock()
                if !fitted && state.step >= 3, let minutes = options.minutes {
                    // The first fit, before any validation ran: count it as a third of a step per
                    // batch of validation clips.
                    let valShare = Double(validation.clips.count) / Double(max(1, train.clips.count)) / 3
                    fitSchedule(minutes: minutes, elapsed: now - start, overhead: 1 + valShare, first: true)
                    fitted = true
                }
                let rate = samplesSteps / max(1e-9, now - epochStart)
                let remaining = Double(state.totalSteps - state.step) * (now - start) / Double(max(1, state.step))
                report(.step(epoch: state.epoch + 1, batch: state.batchInEpoch, batches: n, loss: epochLoss / Double(max(1, epochSeqs)),
                             accuracy: epochCounted > 0 ? Double(epochCorrect) / Double(epochCounted) : 0,
                             samplesStepsPerSecond: rate, eta: remaining))
                if state.step >= state.totalSteps { break }
                if let minutes = options.minutes, now - start > minutes * 60 { state.totalSteps = state.step; break }
            }
            let epochSeconds = clock() - epochStart
            let val = try withAverage { validate() }
            if let minutes = options.minutes, state.step < state.totalSteps {
                // Refit at the pace so far, validation included, so that the cosine ends when the time does.
                fitSchedule(minutes: minutes, elapsed: clock() - start, overhead: 1, first: false)
            }
            let classify = trainer.spec.task == .classify
            state.epoch += 1; state.batchInEpoch = 0
            state.seconds = clock() - start
            let summary = EpochSummary(epoch: state.epoch, epochs: epochs, step: state.step,
                                       trainLoss: epochLoss / Double(max(1, epochSeqs)),
                                       trainAccuracy: classify && epochCounted > 0 ? Double(epochCorrect) / Double(epochCounted) : nil,
                                       valLoss: val.sequences > 0 ? val.meanLoss : nil,
                                       valAccuracy: classify && val.counted > 0 ? val.accuracy : nil,
                                       seconds: epochSeconds, samplesStepsPerSecond: samplesSteps / max(1e-9, epochSeconds),
                                       learningRate: trainer.optimizer.schedule.learningRate * trainer.optimizer.schedule.factor(max(0, state.step - 1)))
            report(.epoch(summary))
            // Best by validation accuracy (classifiers) or loss (filters); the training loss when
            // there is no validation set.
            let metric = classify ? (val.counted > 0 ? val.accuracy : -summary.trainLoss) : -(val.sequences > 0 ? val.meanLoss : summary.trainLoss)
            if state.bestMetric == nil || metric > state.bestMetric! {
                state.bestMetric = metric; state.bestEpoch = state.epoch
                try withAverage { () throws(TrainError) in try exportModel(outputPath) }
                report(.best(outputPath, metric: metric))
            }
            try saveCheckpoint(report)
            if state.step >= state.totalSteps { break }
        }
        return true
    }

    /// Fits the schedule's length to what the time budget still allows at the pace so far:
    /// total = steps taken + (budget − elapsed) / (seconds per step · overhead). The first fit also
    /// sets the warm-up from it; later fits only keep the warm-up inside the schedule.
    private func fitSchedule(minutes: Double, elapsed: Double, overhead: Double, first: Bool) {
        let perStep = elapsed / Double(max(1, state.step))
        let steps = state.step + Int(max(0, minutes * 60 - elapsed) / (perStep * overhead))
        state.totalSteps = max(state.step + 1, steps)
        let s = trainer.optimizer.schedule
        trainer.optimizer.schedule.totalSteps = state.totalSteps
        trainer.optimizer.schedule.warmupSteps = first ? Int(options.warmup * Double(state.totalSteps)) : min(s.warmupSteps, state.totalSteps)
    }

    func saveCheckpoint(_ report: (TrainEvent) -> Void) throws(TrainError) {
        try Checkpoint.save(checkpointPath, spec: trainer.spec, parameters: trainer.parameters, optimizer: trainer.optimizer,
                            state: state, options: options.json, data: data, average: average)
        report(.checkpoint(checkpointPath))
    }

    /// The current parameters as a standard model file, with the training configuration in its metadata.
    public func exportModel(_ path: String) throws(TrainError) {
        var spec = trainer.spec
        if spec.task == .classify, options.background != nil || options.eventThreshold != nil || options.eventMinDuration != nil
            || options.eventMinGap != nil || options.eventRelease != nil {
            var e = spec.events ?? ModelSpec.EventDefaults()
            if let bg = options.background, !(e.ignore ?? []).contains(bg) { e.ignore = (e.ignore ?? []) + [bg] }
            e.threshold = options.eventThreshold ?? e.threshold; e.release = options.eventRelease ?? e.release
            e.minDuration = options.eventMinDuration ?? e.minDuration; e.minGap = options.eventMinGap ?? e.minGap
            spec.events = e
        }
        let bytes = ModelFile.serialize(spec: spec, tensors: trainer.parameters.tensors,
                                        metadata: ["ssm_train_options": options.json,
                                                   "ssm_train_result": "{\"epoch\":\(state.epoch),\"step\":\(state.step),\"best_metric\":\(state.bestMetric ?? 0)}"])
        try Checkpoint.writeAtomically(bytes, to: path)
    }
}
