import SSM
import SSMIO
import SSMStreaming
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why the daemon cannot go on, with the exit code it ends with (README, "Exit codes").
public struct DaemonFailure: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public init(_ code: Int32, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }

    public static let dataError: Int32 = 65    // EX_DATAERR: the stream's data is bad
    public static let noInput: Int32 = 66      // EX_NOINPUT: source file/device cannot be opened
    public static let badModel: Int32 = 67     // the model file cannot be used
    public static let cantCreate: Int32 = 73   // EX_CANTCREAT: output cannot be created
    public static let ioError: Int32 = 74      // EX_IOERR: a read or write failed mid-stream
    public static let config: Int32 = 78       // EX_CONFIG: the configuration is wrong

    public init(_ e: IOError) {
        switch e.kind {
        case .noInput: self.init(Self.noInput, e.message)
        case .dataError: self.init(Self.dataError, e.message)
        case .cantCreate: self.init(Self.cantCreate, e.message)
        case .ioError: self.init(Self.ioError, e.message)
        }
    }
}

/// One running stream: source thread → ring → engine thread → the streaming path `run` uses too
/// (`StreamPath`: NaN check → resample → engine → filter output, or classifier → event ring).
///
///     ALSA / file / pipe ──► source thread ──► FrameRing ──► engine thread: StreamPath ──► filter sink / ALSA
///                                                                              └──► Classifier ──► EventRing ──► reporters
///
/// Everything is allocated in `init` (the model, its state, the ring, every buffer); the two
/// threads allocate nothing per block. Counters are atomics the reporter reads without locking.
/// A new model of the same rate, channels and classes replaces the running one between two blocks
/// (`offer`), the source staying open.
public final class Pipeline: @unchecked Sendable {
    public let config: DaemonConfig
    public let labels: [String]
    /// The input as it arrives (rate, channels) and the model's rate.
    public let inputRate: Int
    public let inputChannels: Int
    public let modelRate: Int
    public let sourceName: String
    public let outputName: String
    public let events = EventRing<DetectedEvent>(capacity: 4096)
    public let stateBytes: Int

    private enum Source {
        case alsa(ALSADevice)
        case frames(FrameSource)
        /// An ALSA device that failed, closed while it is retried.
        case lost
    }

    /// The source; the source thread alone replaces it (a lost ALSA device reopened).
    private var source: Source
    private let live: Bool
    private let ring: FrameRing
    private let path: StreamPath
    private let block: Int
    private let readFrames: Int
    private let maxFrames: Int?
    private let srcBuf: UnsafeMutablePointer<Float>
    private let inBuf: UnsafeMutablePointer<Float>

    // Counters (written by one thread each, read by the reporter).
    private let _framesIn = Atomic<Int>(0)
    private let _framesDone = Atomic<Int>(0)
    private let _dropped = Atomic<Int>(0)
    private let _nonFinite = Atomic<Int>(0)
    /// NaN/Inf values the model produced (replaced by 0, the stream's state reset).
    private let _nonFiniteOut = Atomic<Int>(0)
    private let _busyNanos = Atomic<Int>(0)
    /// The engine thread's last sign of life (from the start: a pipeline not yet started is not hung).
    private let _heartbeat = Atomic<Int>(monotonicNanos())
    private let _xruns = Atomic<Int>(0)
    /// Times a looped file started again (`[source] loop`).
    private let _loops = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let sourceEnded = Atomic<Bool>(false)
    private let engineEnded = Atomic<Bool>(false)
    private let failure = Mutex<DaemonFailure?>(nil)
    /// Posted when the engine thread has finished (the stream ended, failed or was stopped).
    public let finished = Wakeup()
    /// Posted when the engine thread has taken an offered model (`swapDone` then says where).
    public let swapped = Wakeup()
    /// The engine's time per block over the last minute.
    public let blockTimes = BlockTimes()
    private var threads: [NativeThread] = []
    private var sourceThread: NativeThread?
    public let startedAt = monotonicNanos()

    public init(config: DaemonConfig, model: Model) throws(DaemonFailure) {
        self.config = config
        let spec = model.spec
        modelRate = spec.sampleRate
        labels = spec.labels ?? (0..<spec.dOutput).map { "class\($0)" }
        let s = config.source
        block = config.block

        // The source, opened as configured.
        switch s.kind {
        case .alsa:
            let channels = s.channels ?? spec.dInput
            let dev: ALSADevice
            do {
                dev = try ALSADevice(device: s.device, direction: .capture, rate: s.rate ?? modelRate,
                                     channels: channels, latencyMs: s.latencyMs)
            } catch { throw DaemonFailure(error) }
            source = .alsa(dev); live = true
            sourceName = "alsa:\(s.device)"
            readFrames = dev.periodFrames
        case .file, .pipe:
            let path = config.resolve(s.path)
            // A FIFO is held open (read-write): writers come and go, the stream goes on. A header
            // would come again with each writer, so a FIFO carries raw PCM or text.
            let fifo = s.kind == .pipe && isFIFO(path)
            if fifo && s.format == "auto" {
                throw DaemonFailure(DaemonFailure.config, "source '\(path)' is a FIFO, which stays open across writers: give it headerless samples and say which (format = \"s16le\", \"f32le\", … or \"text\", with rate and channels)")
            }
            do {
                switch s.format {
                case "auto": source = .frames(.audio(try AudioReader(path: path)))
                case "text": source = .frames(.text(try TextReader(path: path, sampleRate: s.rate!, channels: s.channels, holdFIFO: fifo)))
                default:
                    let enc = RawEncoding(rawValue: s.format)!
                    if s.kind == .pipe {
                        // Live: frames as they arrive, interruptible at stop.
                        source = .frames(.rawStream(try RawStreamReader(path: path, encoding: enc, sampleRate: s.rate!,
                                                                        channels: s.channels!, maxFrames: block)))
                    } else {
                        source = .frames(.audio(try AudioReader(path: path, raw: enc, sampleRate: s.rate!, channels: s.channels!)))
                    }
                }
            } catch { throw DaemonFailure(error) }
            live = false
            sourceName = s.kind == .pipe ? "pipe:\(path == "-" ? "stdin" : path)" : "file:\(path)"
            // A file not paced is read 4096 frames at a time (as `run` reads it: 16× fewer reads
            // and wakeups); a pipe or a paced file a block at a time (its latency).
            readFrames = s.kind == .file && !s.realtime ? max(block, 4096) : block
        }
        switch source {
        case .alsa(let d): inputRate = d.sampleRate; inputChannels = d.channels
        case .frames(let f): inputRate = f.format.sampleRate; inputChannels = f.format.channels
        case .lost: preconditionFailure("a source is lost only after start")
        }
        if s.loop, case .frames(let f) = source, case .audio = f {} else if s.loop {
            throw DaemonFailure(DaemonFailure.config, "source '\(sourceName)': loop = true needs an audio or raw file (a text file is read once)")
        }
        maxFrames = s.duration > 0 ? Int((s.duration * Double(inputRate)).rounded()) : nil

        // Channels: the model's inputs, or per-channel groups.
        let dIn = spec.dInput
        let groups: Int
        if s.perChannel {
            guard inputChannels % dIn == 0 else {
                throw DaemonFailure(DaemonFailure.config, "source '\(sourceName)' has \(inputChannels) channel(s), not a multiple of the \(dIn) the model takes per stream (per_channel)")
            }
            groups = inputChannels / dIn
        } else {
            guard inputChannels == dIn else {
                throw DaemonFailure(DaemonFailure.config, "source '\(sourceName)' has \(inputChannels) channel(s), model '\(config.model)' takes \(dIn)\(inputChannels % dIn == 0 ? " (per_channel = true runs one state per channel)" : "")")
            }
            groups = 1
        }

        // Rate: equal, or converted (files and pipes; ALSA's plug layer delivers the model's rate).
        if inputRate != modelRate && !s.resample {
            throw DaemonFailure(DaemonFailure.config, "source '\(sourceName)': sample rate \(inputRate) Hz, model '\(config.model)' expects \(modelRate) Hz (set resample = true in [source])")
        }
        let maxIn = max(block, readFrames)
        ring = FrameRing(minFrames: max(Int(s.ringSeconds * Double(inputRate)), 4 * maxIn), channels: inputChannels)
        srcBuf = .allocate(capacity: readFrames * inputChannels)
        inBuf = .allocate(capacity: block * inputChannels)
        let outputChannels = groups * spec.dOutput
        // A ratio libsamplerate refuses is refused before an output file is created or truncated.
        do { try Resampler.checkRatio(from: inputRate, to: modelRate) }
        catch { throw DaemonFailure(DaemonFailure.config, error.message) }

        // The output end.
        let o = config.output
        let output: StreamPath.Output
        switch spec.task {
        case .filter:
            var sink: FrameSink? = nil
            var device: ALSADevice? = nil
            switch o.kind {
            case .none:
                outputName = "none"
            case .alsa:
                do {
                    device = try ALSADevice(device: o.device, direction: .playback, rate: inputRate,
                                            channels: outputChannels, latencyMs: s.latencyMs)
                } catch { throw DaemonFailure(DaemonFailure.cantCreate, error.message) }
                outputName = "alsa:\(o.device)"
            case .file, .pipe:
                let path = config.resolve(o.path)
                let fmt = Self.outputFormat(o, source: source, rate: inputRate, channels: outputChannels, pipe: o.kind == .pipe)
                guard fmt.isWritable else {
                    throw DaemonFailure(DaemonFailure.config, "[output] cannot write \(fmt.formatName) with \(fmt.channels) channel(s) at \(fmt.sampleRate) Hz: choose another format/encoding")
                }
                do {
                    sink = fmt.isText ? .text(try TextWriter(path: path, format: fmt, commaSeparated: path.lowercased().hasSuffix(".csv"), header: nil))
                        : .audio(try AudioWriter(path: path, format: fmt))
                } catch { throw DaemonFailure(error) }
                outputName = "\(o.kind.rawValue):\(path == "-" ? "stdout" : path)"
            }
            output = .filter(sink: sink, device: device)
        case .classify:
            if config.output.kind != .none {
                throw DaemonFailure(DaemonFailure.config, "[output] is for filter models; '\(config.model)' is a classifier (its events go to the journal, the control socket and [events] file)")
            }
            let e = config.events
            let options: EventDetector.Options
            do {
                options = try e.settings.resolve(model: spec, labels: labels, rate: modelRate)
            } catch { throw DaemonFailure(DaemonFailure.config, "[events] " + error.message) }
            output = .classify(Classifier(output: .ring(events), options: options, classes: spec.dOutput,
                                          groups: groups, scores: spec.scoring))
            outputName = "events"
        }
        do {
            path = try StreamPath(model: model, modelName: config.modelPath, inputName: sourceName,
                                  inputRate: inputRate, inputChannels: inputChannels, groups: groups,
                                  mode: config.mode, engineBlock: block, maxInputFrames: block,
                                  resampleQuality: s.resampleQuality, nonFinite: .replace, output: output)
        } catch { throw DaemonFailure(DaemonFailure.config, error.message) }
        stateBytes = path.stateBytes
    }

    deinit {
        srcBuf.deallocate(); inBuf.deallocate()
    }

    /// The model the engine runs (after a swap, the new one once the engine has taken it).
    public var model: Model { path.model }

    /// The output format of a filter written to a file or pipe: WAV at the input's rate (raw
    /// float32 on a pipe) unless `format`/`encoding` say otherwise, or the path's extension does.
    private static func outputFormat(_ o: DaemonConfig.Output, source: Source, rate: Int, channels: Int, pipe: Bool) -> AudioFormat {
        var base: AudioFormat
        switch source {
        case .frames(let f) where !f.format.isText:
            base = f.format
            if base.isRaw && !pipe && o.format == nil && OutputFormats.container(forPath: o.path) == nil {
                base = OutputFormats.convert(base, to: Int32(AudioFormat.wavFloat & 0x0FFF_0000))
            }
        default:
            base = AudioFormat(sampleRate: rate, channels: channels, format: pipe ? RawEncoding.f32le.format : AudioFormat.wavFloat)
        }
        base.sampleRate = rate
        base.channels = channels
        let container = o.format.flatMap(OutputFormats.container(named:)) ?? (o.path == "-" ? nil : OutputFormats.container(forPath: o.path))
        let encoding = o.encoding.flatMap(OutputFormats.encoding(named:))
        if container == nil && encoding == nil { return base }
        return OutputFormats.convert(base, to: container ?? (base.isText ? AudioFormat.text : base.format & 0x0FFF_0000), encoding: encoding)
    }

    // MARK: Threads

    /// Starts the source and engine threads.
    public func start() {
        let src = NativeThread(name: "ssm-source") { [self] in sourceLoop() }
        sourceThread = src
        threads = [src, NativeThread(name: "ssm-engine") { [self] in engineLoop() }]
    }

    /// Stops reading, lets the engine finish what the ring holds, closes the output and waits for
    /// both threads. Safe to call more than once.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        ring.spaceReady.post()
        // A read blocked on a quiet pipe returns at once (EINTR).
        if !live, !sourceEnded.load(ordering: .acquiring) { sourceThread?.interrupt() }
        threads.last?.join()   // the engine: it ends once the ring is empty
        // The source normally ends within one read; one stuck in a read that retries on EINTR
        // (stdio, libsndfile) is left behind rather than hanging the daemon's stop.
        if let src = sourceThread {
            var waited = 0
            while !sourceEnded.load(ordering: .acquiring) && waited < 100 {
                src.interrupt()
                usleep(10_000); waited += 1
            }
            if sourceEnded.load(ordering: .acquiring) { src.join() } else { src.detach() }
        }
        threads = []; sourceThread = nil
    }

    private func fail(_ f: DaemonFailure) {
        failure.withLock { if $0 == nil { $0 = f } }
    }

    private func sourceLoop() {
        var total = 0
        defer {
            sourceEnded.store(true, ordering: .releasing)
            ring.dataReady.post()
        }
        let ch = inputChannels
        // `realtime`: frame k is handed on no earlier than k / rate seconds after the first.
        let pace = config.source.realtime ? monotonicNanos() : nil
        let loop = config.source.loop
        while !stopping.load(ordering: .acquiring) {
            var want = readFrames
            if let m = maxFrames { want = min(want, m - total); if want <= 0 { return } }
            var n: Int
            do {
                switch source {
                case .alsa(let d):
                    n = try d.read(into: srcBuf, frames: want)
                    _xruns.store(xrunsBefore + d.xruns, ordering: .relaxed)
                case .frames(let f):
                    n = try f.read(into: srcBuf, frames: want)
                    if n == 0 && loop, case .audio(let r) = f, total > 0 {
                        // One continuous stream: the file again from its first frame.
                        guard r.rewind() else {
                            fail(DaemonFailure(DaemonFailure.ioError, "source '\(sourceName)' cannot be read again from its start (loop = true needs a seekable file)"))
                            return
                        }
                        _loops.add(1, ordering: .relaxed)
                        n = try f.read(into: srcBuf, frames: want)
                    }
                case .lost:
                    return
                }
            } catch {
                if stopping.load(ordering: .acquiring) { return }   // interrupted on purpose
                if case .alsa(let d) = source {
                    // A device that fails or vanishes: retried until it works again (or a stop).
                    xrunsBefore += d.xruns
                    guard recoverDevice(error.message, framesSoFar: total) else { return }
                    continue
                }
                fail(DaemonFailure(error)); return
            }
            if n == 0 {
                if case .frames(let f) = source, let why = f.truncation(framesRead: total) {
                    fail(DaemonFailure(DaemonFailure.dataError, "source '\(sourceName)' is truncated (\(why)); the \(total) frames it holds were processed"))
                }
                return
            }
            if let t0 = pace {
                // The block's first frame is due at total / rate; sleeping until its last frame
                // is due makes the block arrive as a device would deliver it.
                let due = t0 + Int((Double(total + n) * 1e9 / Double(inputRate)).rounded())
                if !sleepUntil(due) { return }
            }
            var off = 0
            while off < n {
                off += ring.write(srcBuf + off * ch, frames: n - off)
                if off < n {
                    // A live device cannot wait: what does not fit is dropped and counted. A file
                    // or pipe waits for the engine (backpressure).
                    if live { _dropped.add(n - off, ordering: .relaxed); break }
                    if stopping.load(ordering: .acquiring) { break }
                    ring.spaceReady.wait(milliseconds: 100)
                }
            }
            total += n
            _framesIn.store(total, ordering: .releasing)
        }
    }

    /// Xruns of devices lost before the current one.
    private var xrunsBefore = 0

    /// Backoff between attempts to reopen a lost device: 1 s, doubling, at most 30 s.
    public static let retryFirst = 1.0, retryMax = 30.0

    /// The source thread, after the ALSA device failed with `why`: the stream is degraded (status,
    /// one journal entry); the device is closed and opened again after 1, 2, 4 … 30 s until it
    /// works. Then the engine's state is reset (what follows is a new stream) and the stream is
    /// healthy again. False if a stop came first.
    private func recoverDevice(_ why: String, framesSoFar: Int) -> Bool {
        // (`framesSoFar` counts frames read from the device, some perhaps dropped on a full ring.)
        guard case .alsa(let old) = source else { return false }
        let (name, rate, channels, latency) = (old.name, old.sampleRate, old.channels, config.source.latencyMs)
        health.withLock { $0 = Health(reason: why, since: monotonicNanos(), atFrame: framesSoFar, attempts: 0) }
        _degradations.add(1, ordering: .relaxed)
        healthChanged.post()
        source = .lost   // the old device is closed here
        var delay = Self.retryFirst
        while true {
            guard sleepUntil(monotonicNanos() + Int(delay * 1e9)) else { return false }
            do throws(IOError) {
                let dev = try ALSADevice(device: name, direction: .capture, rate: rate, channels: channels, latencyMs: latency)
                guard dev.sampleRate == rate && dev.channels == channels else {
                    throw IOError(.noInput, "ALSA device '\(name)' came back at \(dev.sampleRate) Hz × \(dev.channels), not \(rate) Hz × \(channels)")
                }
                // The old stream's frames go through first; the new stream starts at this frame.
                while ring.available > 0 {
                    if stopping.load(ordering: .acquiring) { return false }
                    ring.spaceReady.wait(milliseconds: 100)
                }
                // The ring is empty and the engine past its last old block: it resets, and says so,
                // before the new stream's first frame is written.
                newStream.store(true, ordering: .releasing)
                ring.dataReady.post()
                while newStream.load(ordering: .acquiring) {
                    if stopping.load(ordering: .acquiring) { return false }
                    usleep(1000)
                }
                source = .alsa(dev)
                health.withLock { $0 = nil }
                _recoveries.add(1, ordering: .relaxed)
                healthChanged.post()
                return true
            } catch {
                health.withLock { $0?.reason = error.message; $0?.attempts += 1 }
                delay = min(Self.retryMax, delay * 2)
            }
        }
    }

    /// Sleeps until the monotonic clock reads `due` (ns), in slices of at most 100 ms so that a
    /// stop is noticed. False if stopping.
    private func sleepUntil(_ due: Int) -> Bool {
        while true {
            if stopping.load(ordering: .acquiring) { return false }
            let left = due - monotonicNanos()
            if left <= 0 { return true }
            let slice = min(left, 100_000_000)
            var ts = timespec(tv_sec: slice / 1_000_000_000, tv_nsec: slice % 1_000_000_000)
            nanosleep(&ts, nil)
        }
    }

    private func engineLoop() {
        defer {
            engineEnded.store(true, ordering: .releasing)
            finished.post()
        }
        do {
            while true {
                _heartbeat.store(monotonicNanos(), ordering: .relaxed)
                // A model offered for a swap is taken between two blocks (also when no samples come).
                if path.takeSwap() { swapped.post() }
                if stallRequested.load(ordering: .relaxed) {
                    // Test hook: an engine that hangs (no heartbeat) until the process stops.
                    while !stopping.load(ordering: .acquiring) { usleep(100_000) }
                    break
                }
                if newStream.load(ordering: .acquiring) {
                    // The device came back: what the source writes next is a new stream.
                    path.reset()
                    newStream.store(false, ordering: .releasing)
                }
                if resetRequested.exchange(false, ordering: .acquiringAndReleasing) {
                    path.reset()
                    _resetFrame.store(path.framesIn, ordering: .relaxed)
                    _resets.add(1, ordering: .releasing)
                }
                let n = ring.read(into: inBuf, frames: block)
                if n == 0 {
                    if sourceEnded.load(ordering: .acquiring) && ring.available == 0 { break }
                    if stopping.load(ordering: .acquiring) && ring.available == 0 { break }
                    ring.dataReady.wait(milliseconds: 100)
                    continue
                }
                let t0 = monotonicNanos()
                try path.push(inBuf, frames: n)
                let t1 = monotonicNanos()
                _busyNanos.add(t1 - t0, ordering: .relaxed)
                blockTimes.record(nanos: t1 - t0, frames: n, now: t1)
                _nonFinite.store(path.nonFiniteIn, ordering: .relaxed)
                _nonFiniteOut.store(path.nonFiniteOut, ordering: .relaxed)
                _framesDone.add(n, ordering: .releasing)
            }
            try path.finish()
        } catch {
            try? path.finish()
            fail(DaemonFailure(error))
        }
    }

    // MARK: What the controller asks of the engine

    private let resetRequested = Atomic<Bool>(false)
    private let stallRequested = Atomic<Bool>(false)

    /// Test hook (`test-stall`, only with SSM_STREAMD_TEST_HOOKS=1): the engine thread stops
    /// working and refreshing its heartbeat, as a hung engine would; the watchdog then lapses.
    public func requestStall() { stallRequested.store(true, ordering: .relaxed) }
    /// Set by the source thread when a lost device works again (the ring empty, nothing of the new
    /// stream written yet); the engine, between two blocks, goes back to the zero state and clears
    /// it, and only then does the source write the new stream's first frames.
    private let newStream = Atomic<Bool>(false)

    /// Why the source is degraded (a lost device being retried), since when, at which frame.
    public struct Health: Sendable, Equatable {
        public var reason: String
        public var since: Int
        public var atFrame: Int
        public var attempts: Int
    }
    private let health = Mutex<Health?>(nil)
    private let _degradations = Atomic<Int>(0)
    private let _recoveries = Atomic<Int>(0)
    /// Posted when the source degrades or recovers.
    public let healthChanged = Wakeup()
    /// nil while the source is healthy.
    public var degraded: Health? { health.withLock { $0 } }
    public var recoveries: Int { _recoveries.load(ordering: .relaxed) }
    public var degradations: Int { _degradations.load(ordering: .relaxed) }
    private let _resets = Atomic<Int>(0)
    private let _resetFrame = Atomic<Int>(0)

    /// Zeroes the recurrent state (every stream) between two blocks (the `reset` command).
    public func requestReset() {
        resetRequested.store(true, ordering: .releasing)
        ring.dataReady.post()
    }

    /// Why `model` cannot replace the running model in place (nil: it can).
    public func swapRefusal(_ model: Model) -> String? { path.swapRefusal(model) }

    /// Makes `model` ready (its state allocated here, on the caller's thread) and hands it to the
    /// engine, which switches between two blocks; `swapDone` then says when it has. The event
    /// detectors take `options` (a classifier's open events end at the switch).
    public func offer(_ model: Model, modelName: String, options: EventDetector.Options?) -> Bool {
        guard let s = path.prepareSwap(model, modelName: modelName, options: options) else { return false }
        guard path.offer(s) else { return false }
        ring.dataReady.post()
        return true
    }

    /// Once the engine has switched to the offered model: the input frame (of this stream) the
    /// new model started at; the old one is released here. Nil until then.
    public func swapDone() -> Int? { path.collectSwap() }
    public var swapPending: Bool { path.swapPending }

    // MARK: What the reporter reads

    public struct Stats: Sendable {
        public var framesIn: Int, framesDone: Int, dropped: Int, nonFinite: Int, nonFiniteOutput: Int, xruns: Int
        public var busySeconds: Double, uptime: Double
        public var heartbeatAge: Double
        public var sourceEnded: Bool, finished: Bool
        public var eventsDropped: Int
        public var loops: Int
        /// Resets done (`reset`), and the input frame of this stream the last one happened at.
        public var resets: Int, lastResetFrame: Int
    }

    public var stats: Stats {
        let now = monotonicNanos()
        return Stats(framesIn: _framesIn.load(ordering: .acquiring), framesDone: _framesDone.load(ordering: .acquiring),
                     dropped: _dropped.load(ordering: .relaxed), nonFinite: _nonFinite.load(ordering: .relaxed),
                     nonFiniteOutput: _nonFiniteOut.load(ordering: .relaxed),
                     xruns: _xruns.load(ordering: .relaxed),
                     busySeconds: Double(_busyNanos.load(ordering: .relaxed)) * 1e-9,
                     uptime: Double(now - startedAt) * 1e-9,
                     heartbeatAge: Double(now - _heartbeat.load(ordering: .relaxed)) * 1e-9,
                     sourceEnded: sourceEnded.load(ordering: .acquiring), finished: engineEnded.load(ordering: .acquiring),
                     eventsDropped: events.dropped, loops: _loops.load(ordering: .relaxed),
                     resets: _resets.load(ordering: .acquiring), lastResetFrame: _resetFrame.load(ordering: .relaxed))
    }

    /// The error that ended the stream, if one did.
    public var error: DaemonFailure? { failure.withLock { $0 } }
}
