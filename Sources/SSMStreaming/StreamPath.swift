import SSM
import SSMIO
import Synchronization

/// The one path from input frames to results, shared by `ssm-stream run` and `ssm-streamd`:
///
///     frames (input rate, C channels) ─► non-finite check ─► [resample in] ─► StreamEngine
///            ├─ filter:   [resample back to the input rate] ─► file/pipe sink and/or ALSA device
///            └─ classify: Classifier ─► events (JSON Lines, or the daemon's event ring)
///
/// The caller owns the source and its thread; it hands blocks of at most `maxInputFrames` frames
/// to `push` and calls `finish` once at the end (also on the error path). Everything is allocated
/// in `init`; `push` allocates nothing and locks nothing. A model made ready on another thread
/// (`prepareSwap`, `offer`) is taken between two blocks, when the engine's thread calls `takeSwap`.
public final class StreamPath {
    /// Where the model's output goes.
    public enum Output {
        /// A filter's frames, at the input's rate: to a file or pipe, to an ALSA device, or both
        /// (neither: computed and dropped, the daemon's `[output] type = "none"`).
        case filter(sink: FrameSink?, device: ALSADevice?)
        /// A classifier's scores, to its detectors.
        case classify(Classifier)
    }

    /// What to do with a NaN/Inf input sample or model output.
    public enum NonFinite: Sendable {
        /// Replace it by 0 and count it (a model output also resets that stream's state).
        case replace
        /// Stop the stream with an error once what came before is written (`run --strict`: the
        /// reason is named in the message).
        case stop(because: String)
    }

    public let inputRate: Int
    public let inputChannels: Int
    public let modelRate: Int
    public let groups: Int
    /// The largest block `push` takes, and the largest the engine runs at once (model-rate frames).
    public let maxInputFrames: Int
    public let engineFrames: Int
    public private(set) var output: Output
    public let nonFinitePolicy: NonFinite
    /// Names for messages.
    public let inputName: String
    public private(set) var modelName: String

    /// The engine; only the engine's thread replaces it (`takeSwap`), so only that thread (and
    /// single-threaded callers such as `run`) may touch it.
    public private(set) var engine: StreamEngine
    /// The model running, as the controlling thread knows it: updated in `collectSwap`, never
    /// by the engine's thread (the controller reads this, not `engine`).
    public private(set) var model: Model
    private let mode: StreamEngine.Mode
    /// What a swapped-in classifier writes to, and how often it writes posteriors (fixed).
    private let classifierOutput: Classifier.Output?
    private let posteriorsEvery: Int
    /// Set when `push` stopped at a NaN/Inf under `.stop`: `finish` then flushes nothing more.
    private var stopped = false
    private let inResampler: Resampler?
    private let outResampler: Resampler?
    private let outBuf: UnsafeMutablePointer<Float>

    /// Frames pushed (input rate), frames through the model (model rate), non-finite values replaced.
    public private(set) var framesIn = 0
    public private(set) var modelFrames = 0
    public private(set) var nonFiniteIn = 0
    public private(set) var nonFiniteOut = 0
    /// The input frame at which the last swapped-in model took over (its first frame).
    public private(set) var swappedAt = 0
    private var finished = false

    /// The model-rate frames one block of `inputFrames` input frames can become (the resampler's
    /// ratio plus its slack), or `inputFrames` at equal rates.
    public static func engineFrames(inputFrames: Int, inputRate: Int, modelRate: Int) -> Int {
        inputRate == modelRate ? inputFrames
            : Int((Double(inputFrames) * Double(modelRate) / Double(inputRate)).rounded(.up)) + 64
    }

    /// - Parameters:
    ///   - engineBlock: the engine's block (model-rate frames; `run --block`, the daemon's `block`);
    ///     at equal rates the engine runs pieces of at most this many frames.
    ///   - maxInputFrames: the largest block `push` is given.
    public init(model: Model, modelName: String, inputName: String, inputRate: Int, inputChannels: Int,
                groups: Int, mode: StreamEngine.Mode, engineBlock: Int, maxInputFrames: Int,
                resampleQuality: Resampler.Quality, nonFinite: NonFinite, output: Output) throws(IOError) {
        let spec = model.spec
        precondition(inputChannels == groups * spec.dInput, "StreamPath: the caller checks the channels")
        self.modelName = modelName; self.inputName = inputName
        self.inputRate = inputRate; self.inputChannels = inputChannels; modelRate = spec.sampleRate
        self.groups = groups; self.maxInputFrames = maxInputFrames
        self.output = output; nonFinitePolicy = nonFinite
        if inputRate != modelRate {
            inResampler = try Resampler(from: inputRate, to: modelRate, channels: inputChannels,
                                        maxFrames: maxInputFrames, quality: resampleQuality)
        } else {
            inResampler = nil
        }
        engineFrames = inputRate == modelRate ? engineBlock
            : Self.engineFrames(inputFrames: max(engineBlock, maxInputFrames), inputRate: inputRate, modelRate: modelRate)
        engine = StreamEngine(model: model, groups: groups, mode: mode, maxFrames: engineFrames)
        self.model = model; self.mode = mode
        if case .classify(let c) = output { classifierOutput = c.output; posteriorsEvery = c.posteriorsEvery } else { classifierOutput = nil; posteriorsEvery = 0 }
        outBuf = .allocate(capacity: engineFrames * engine.outputChannels)
        if case .filter(let sink, let device) = output, inResampler != nil, sink != nil || device != nil {
            outResampler = try Resampler(from: modelRate, to: inputRate, channels: engine.outputChannels,
                                         maxFrames: engineFrames, quality: resampleQuality)
        } else {
            outResampler = nil
        }
    }

    deinit { outBuf.deallocate() }

    public var outputChannels: Int { engine.outputChannels }
    public var stateBytes: Int { engine.stateBytes }

    // MARK: The samples

    /// One block of `frames` ≤ `maxInputFrames` input frames (interleaved, `inputChannels` wide;
    /// cleaned in place): through the model to the output. Throws on a failed write, or under
    /// `.stop` at the first NaN/Inf, after everything before it went through.
    public func push(_ x: UnsafeMutablePointer<Float>, frames n: Int) throws(IOError) {
        let ch = inputChannels
        var valid = n
        for i in 0..<(n * ch) where !x[i].isFinite {
            if case .stop = nonFinitePolicy { valid = i / ch; break }
            x[i] = 0
            nonFiniteIn += 1
        }
        if valid > 0 {
            if let r = inResampler {
                try r.process(x, frames: valid, end: false) { (y, k) throws(IOError) in try self.consume(y, frames: k) }
            } else {
                try consume(x, frames: valid)
            }
            framesIn += valid
        }
        if valid < n {
            stopped = true
            throw IOError(.dataError, "input '\(inputName)': frame \(framesIn) holds NaN or Inf (\(stopReason)); the \(framesIn) frame(s) before it were processed")
        }
    }

    /// Model-rate frames (any count) through the engine, in pieces of at most `engineFrames`.
    private func consume(_ x: UnsafePointer<Float>, frames: Int) throws(IOError) {
        let inStride = engine.inputChannels
        var done = 0
        while done < frames {
            let n = min(engineFrames, frames - done)
            let replaced = engine.process(x + done * inStride, outBuf, frames: n)
            if replaced > 0 {
                if case .stop = nonFinitePolicy {
                    stopped = true
                    throw IOError(.dataError, "model '\(modelName)' produced NaN or Inf (it overflowed) within model frames \(modelFrames)–\(modelFrames + n) (\(stopReason)); the \(modelFrames) frame(s) before were written")
                }
                nonFiniteOut += replaced
            }
            switch output {
            case .filter(let sink, let device):
                if let back = outResampler {
                    try back.process(outBuf, frames: n, end: false) { (y, k) throws(IOError) in try Self.write(y, frames: k, sink, device) }
                } else {
                    try Self.write(outBuf, frames: n, sink, device)
                }
            case .classify(let c):
                try c.push(outBuf, frames: n, at: modelFrames)
            }
            modelFrames += n
            done += n
        }
    }

    private var stopReason: String { if case .stop(let why) = nonFinitePolicy { why } else { "" } }

    @inline(__always)
    private static func write(_ y: UnsafePointer<Float>, frames: Int, _ sink: FrameSink?, _ device: ALSADevice?) throws(IOError) {
        if let sink { try sink.write(y, frames: frames) }
        if let device { try device.write(y, frames: frames) }
    }

    /// The end of the stream: the resamplers flushed, the sink closed or the open events ended.
    /// Runs once; later calls do nothing.
    public func finish() throws(IOError) {
        guard !finished else { return }
        finished = true
        // The resamplers' tails go through unless the stream stopped at a NaN/Inf (nothing after
        // that point is processed); the sink is closed and open events ended whatever happens,
        // and the first error is reported.
        var failure: IOError? = nil
        if !stopped {
            do {
                if let r = inResampler {
                    try r.process(outBuf, frames: 0, end: true) { (y, k) throws(IOError) in try self.consume(y, frames: k) }
                }
                if case .filter(let sink, let device) = output, let back = outResampler {
                    try back.process(outBuf, frames: 0, end: true) { (y, k) throws(IOError) in try Self.write(y, frames: k, sink, device) }
                }
            } catch { failure = error }
        }
        do {
            switch output {
            case .filter(let sink, _): try sink?.close()
            case .classify(let c): try c.finish(at: modelFrames)
            }
        } catch { failure = failure ?? error }
        if let failure { throw failure }
    }


    /// Back to the zero state (every stream), between blocks.
    public func reset() { engine.reset() }

    // MARK: Swapping the model without losing a sample

    /// A model made ready off the engine thread (its states allocated), waiting for the engine to
    /// take it at the next block boundary.
    public final class Swap: @unchecked Sendable {
        fileprivate var engine: StreamEngine
        fileprivate var classifier: Classifier?
        public let modelName: String
        /// The model that runs once the swap is taken.
        fileprivate let modelAfter: Model
        fileprivate init(engine: StreamEngine, classifier: Classifier?, modelName: String) {
            self.engine = engine; self.classifier = classifier; self.modelName = modelName
            modelAfter = engine.model
        }
    }

    /// Why a model cannot replace the running one in place (it needs the stream reopened).
    public func swapRefusal(_ model: Model) -> String? {
        let old = self.model.spec, new = model.spec
        if new.sampleRate != old.sampleRate { return "its rate (\(new.sampleRate) Hz) differs from the running model's (\(old.sampleRate) Hz)" }
        if new.dInput != old.dInput { return "it takes \(new.dInput) input channel(s), the running model \(old.dInput)" }
        if new.task != old.task { return "it is a \(new.task.rawValue) model, the running one a \(old.task.rawValue)" }
        if new.dOutput != old.dOutput { return "it has \(new.dOutput) output(s), the running model \(old.dOutput)" }
        if new.task == .classify && (new.labels ?? []) != (old.labels ?? []) { return "its classes differ from the running model's" }
        return nil
    }

    /// Builds what the engine needs to run `model` in place of the current one (allocating its
    /// states here, on the caller's thread): nil with `swapRefusal`'s reason when it cannot.
    /// A classifier gets fresh detectors with `options` (the new model's own suggestions apply).
    public func prepareSwap(_ model: Model, modelName: String, options: EventDetector.Options?) -> Swap? {
        guard swapRefusal(model) == nil else { return nil }
        let e = StreamEngine(model: model, groups: groups, mode: mode, maxFrames: engineFrames)
        var c: Classifier? = nil
        if let out = classifierOutput, let options {
            c = Classifier(output: out, options: options, classes: model.spec.dOutput, groups: groups,
                           scores: model.spec.scoring, posteriorsEvery: posteriorsEvery)
        }
        return Swap(engine: e, classifier: c, modelName: modelName)
    }

    // The hand-over, lock-free: the controller parks a Swap in `offered` and raises `swapFlag` to
    // .offered; the engine thread, between blocks, exchanges it with what it runs and sets .taken;
    // the controller then collects the old engine (freed on its thread, not the engine's).
    private enum SwapFlag: Int { case idle = 0, offered = 1, taken = 2 }
    private let swapFlag = Atomic<Int>(SwapFlag.idle.rawValue)
    private var offered: Swap?

    /// Parks `swap` for the engine thread. False if an earlier swap is not collected yet.
    public func offer(_ swap: Swap) -> Bool {
        guard swapFlag.load(ordering: .acquiring) == SwapFlag.idle.rawValue else { return false }
        offered = swap
        swapFlag.store(SwapFlag.offered.rawValue, ordering: .releasing)
        return true
    }

    /// After the engine took an offered swap: the input frame the new model started at (the
    /// replaced model's storage is released here). Nil while it waits (or nothing was offered).
    public func collectSwap() -> Int? {
        guard swapFlag.load(ordering: .acquiring) == SwapFlag.taken.rawValue else { return nil }
        if let s = offered { model = s.modelAfter }
        offered = nil
        let at = swappedAt
        swapFlag.store(SwapFlag.idle.rawValue, ordering: .releasing)
        return at
    }

    /// Whether an offered swap still waits for the engine.
    public var swapPending: Bool { swapFlag.load(ordering: .acquiring) == SwapFlag.offered.rawValue }

    /// The engine thread's side, between two blocks (before each `push`, and while it waits for
    /// samples): takes an offered model; true if it did. The open events of a classifier end here
    /// (at the current sample); the new model starts from its zero state.
    @inline(__always)
    public func takeSwap() -> Bool {
        guard swapFlag.load(ordering: .acquiring) == SwapFlag.offered.rawValue, let s = offered else { return false }
        swap(&engine, &s.engine)
        if let fresh = s.classifier, case .classify(let old) = output {
            // A write error here belongs to the old events' writer; the next block reports it again.
            try? old.finish(at: modelFrames)
            s.classifier = old
            output = .classify(fresh)
        }
        modelName = s.modelName
        swappedAt = framesIn
        swapFlag.store(SwapFlag.taken.rawValue, ordering: .releasing)
        return true
    }
}
