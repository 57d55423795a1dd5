import SSM
import SSMIO
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

/// One running stream: source thread → ring → engine thread → sink or detector → event ring.
///
///     ALSA / file / pipe ──► source thread ──► FrameRing ──► engine thread ──► filter sink
///                                                               └──► Classifier ──► EventRing ──► reporters
///
/// Everything is allocated in `init` (the model, its state, the ring, every buffer); the two
/// threads allocate nothing per block. Counters are atomics the reporter reads without locking.
public final class Pipeline: @unchecked Sendable {
    public let config: DaemonConfig
    public let model: Model
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
    }
    private enum Target {
        case filter(FrameSink?, ALSADevice?, Resampler?)
        case classify(Classifier)
    }

    private let source: Source
    private let live: Bool
    private let ring: FrameRing
    private let engine: StreamEngine
    private let inResampler: Resampler?
    private let target: Target
    private let block: Int
    private let engineFrames: Int
    private let readFrames: Int
    private let maxFrames: Int?
    private let srcBuf: UnsafeMutablePointer<Float>
    private let inBuf: UnsafeMutablePointer<Float>
    private let outBuf: UnsafeMutablePointer<Float>
    private var modelFrames = 0

    // Counters (written by one thread each, read by the reporter).
    private let _framesIn = Atomic<Int>(0)
    private let _framesDone = Atomic<Int>(0)
    private let _dropped = Atomic<Int>(0)
    private let _nonFinite = Atomic<Int>(0)
    /// NaN/Inf values the model produced (replaced by 0, the stream's state reset).
    private let _nonFiniteOut = Atomic<Int>(0)
    private let _busyNanos = Atomic<Int>(0)
    private let _heartbeat = Atomic<Int>(0)
    private let _xruns = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let sourceEnded = Atomic<Bool>(false)
    private let engineEnded = Atomic<Bool>(false)
    private let failure = Mutex<DaemonFailure?>(nil)
    /// Posted when the engine thread has finished (the stream ended, failed or was stopped).
    public let finished = Wakeup()
    private var threads: [NativeThread] = []
    private var sourceThread: NativeThread?
    public let startedAt = monotonicNanos()

    public init(config: DaemonConfig, model: Model) throws(DaemonFailure) {
        self.config = config
        self.model = model
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
            readFrames = block
        }
        switch source {
        case .alsa(let d): inputRate = d.sampleRate; inputChannels = d.channels
        case .frames(let f): inputRate = f.format.sampleRate; inputChannels = f.format.channels
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
        if inputRate != modelRate {
            guard s.resample else {
                throw DaemonFailure(DaemonFailure.config, "source '\(sourceName)': sample rate \(inputRate) Hz, model '\(config.model)' expects \(modelRate) Hz (set resample = true in [source])")
            }
            do {
                inResampler = try Resampler(from: inputRate, to: modelRate, channels: inputChannels,
                                            maxFrames: max(block, readFrames), quality: s.resampleQuality)
            } catch { throw DaemonFailure(DaemonFailure.config, error.message) }
        } else {
            inResampler = nil
        }
        engineFrames = inputRate == modelRate ? block
            : Int((Double(max(block, readFrames)) * Double(modelRate) / Double(inputRate)).rounded(.up)) + 64
        engine = StreamEngine(model: model, groups: groups, mode: config.mode, maxFrames: engineFrames)
        stateBytes = engine.stateBytes
        ring = FrameRing(minFrames: max(Int(s.ringSeconds * Double(inputRate)), 4 * max(block, readFrames)), channels: inputChannels)
        srcBuf = .allocate(capacity: readFrames * inputChannels)
        inBuf = .allocate(capacity: block * inputChannels)
        outBuf = .allocate(capacity: engineFrames * engine.outputChannels)

        // The output end.
        let o = config.output
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
                                            channels: engine.outputChannels, latencyMs: s.latencyMs)
                } catch { throw DaemonFailure(DaemonFailure.cantCreate, error.message) }
                outputName = "alsa:\(o.device)"
            case .file, .pipe:
                let path = config.resolve(o.path)
                let fmt = Self.outputFormat(o, source: source, rate: inputRate, channels: engine.outputChannels, pipe: o.kind == .pipe)
                guard fmt.isWritable else {
                    throw DaemonFailure(DaemonFailure.config, "[output] cannot write \(fmt.formatName) with \(fmt.channels) channel(s) at \(fmt.sampleRate) Hz: choose another format/encoding")
                }
                do {
                    sink = fmt.isText ? .text(try TextWriter(path: path, format: fmt, commaSeparated: path.lowercased().hasSuffix(".csv"), header: nil))
                        : .audio(try AudioWriter(path: path, format: fmt))
                } catch { throw DaemonFailure(error) }
                outputName = "\(o.kind.rawValue):\(path == "-" ? "stdout" : path)"
            }
            var back: Resampler? = nil
            if inResampler != nil && o.kind != .none {
                do {
                    back = try Resampler(from: modelRate, to: inputRate, channels: engine.outputChannels,
                                         maxFrames: engineFrames, quality: s.resampleQuality)
                } catch { throw DaemonFailure(DaemonFailure.config, error.message) }
            }
            target = .filter(sink, device, back)
        case .classify:
            if config.output.kind != .none {
                throw DaemonFailure(DaemonFailure.config, "[output] is for filter models; '\(config.model)' is a classifier (its events go to the journal, the control socket and [events] file)")
            }
            let e = config.events
            let options: EventDetector.Options
            do {
                options = try EventSettings(threshold: e.threshold, release: e.release, minDuration: e.minDuration, minGap: e.minGap,
                                            ignore: e.ignore).resolve(model: spec, labels: labels, rate: modelRate)
            } catch { throw DaemonFailure(DaemonFailure.config, "[events] " + error.message) }
            target = .classify(Classifier(output: .ring(events), options: options, classes: spec.dOutput,
                                          groups: groups, scores: spec.scoring))
            outputName = "events"
        }
    }

    deinit {
        srcBuf.deallocate(); inBuf.deallocate(); outBuf.deallocate()
    }

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
        while !stopping.load(ordering: .acquiring) {
            var want = readFrames
            if let m = maxFrames { want = min(want, m - total); if want <= 0 { return } }
            let n: Int
            do {
                switch source {
                case .alsa(let d):
                    n = try d.read(into: srcBuf, frames: want)
                    _xruns.store(d.xruns, ordering: .relaxed)
                case .frames(let f):
                    n = try f.read(into: srcBuf, frames: want)
                }
            } catch {
                if stopping.load(ordering: .acquiring) { return }   // interrupted on purpose
                fail(DaemonFailure(error)); return
            }
            if n == 0 {
                if case .frames(let f) = source, let why = f.truncation(framesRead: total) {
                    fail(DaemonFailure(DaemonFailure.dataError, "source '\(sourceName)' is truncated (\(why)); the \(total) frames it holds were processed"))
                }
                return
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

    private func engineLoop() {
        defer {
            engineEnded.store(true, ordering: .releasing)
            finished.post()
        }
        do {
            while true {
                _heartbeat.store(monotonicNanos(), ordering: .relaxed)
                let n = ring.read(into: inBuf, frames: block)
                if n == 0 {
                    if sourceEnded.load(ordering: .acquiring) && ring.available == 0 { break }
                    if stopping.load(ordering: .acquiring) && ring.available == 0 { break }
                    ring.dataReady.wait(milliseconds: 100)
                    continue
                }
                let t0 = monotonicNanos()
                try push(frames: n)
                _busyNanos.add(monotonicNanos() - t0, ordering: .relaxed)
                _framesDone.add(n, ordering: .releasing)
            }
            try finish()
        } catch {
            try? finish()
            fail(DaemonFailure(error))
        }
    }

    /// One block of input frames in `inBuf`: NaN/Inf replaced by 0 (counted), resampled, consumed.
    private func push(frames n: Int) throws(IOError) {
        var bad = 0
        for i in 0..<(n * inputChannels) where !inBuf[i].isFinite { inBuf[i] = 0; bad += 1 }
        if bad > 0 { _nonFinite.add(bad, ordering: .relaxed) }
        if let r = inResampler {
            try r.process(inBuf, frames: n, end: false) { (y, k) throws(IOError) in try self.consume(y, frames: k) }
        } else {
            try consume(inBuf, frames: n)
        }
    }

    private func consume(_ x: UnsafePointer<Float>, frames: Int) throws(IOError) {
        let inStride = engine.inputChannels
        var done = 0
        while done < frames {
            let n = min(engineFrames, frames - done)
            let replaced = engine.process(x + done * inStride, outBuf, frames: n)
            if replaced > 0 { _nonFiniteOut.add(replaced, ordering: .relaxed) }
            switch target {
            case .filter(let sink, let device, let back):
                if let back {
                    try back.process(outBuf, frames: n, end: false) { (y, k) throws(IOError) in try self.write(y, frames: k, sink, device) }
                } else {
                    try write(outBuf, frames: n, sink, device)
                }
            case .classify(let c):
                try c.push(outBuf, frames: n, at: modelFrames)
            }
            modelFrames += n
            done += n
        }
    }

    @inline(__always)
    private func write(_ y: UnsafePointer<Float>, frames: Int, _ sink: FrameSink?, _ device: ALSADevice?) throws(IOError) {
        if let sink { try sink.write(y, frames: frames) }
        if let device { try device.write(y, frames: frames) }
    }

    private var finishedOutput = false
    private func finish() throws(IOError) {
        guard !finishedOutput else { return }
        finishedOutput = true
        switch target {
        case .filter(let sink, let device, let back):
            if let back { try back.process(outBuf, frames: 0, end: true) { (y, k) throws(IOError) in try self.write(y, frames: k, sink, device) } }
            try sink?.close()
        case .classify(let c):
            try c.finish(at: modelFrames)
        }
    }

    // MARK: What the reporter reads

    public struct Stats: Sendable {
        public var framesIn: Int, framesDone: Int, dropped: Int, nonFinite: Int, nonFiniteOutput: Int, xruns: Int
        public var busySeconds: Double, uptime: Double
        public var heartbeatAge: Double
        public var sourceEnded: Bool, finished: Bool
        public var eventsDropped: Int
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
                     eventsDropped: events.dropped)
    }

    /// The error that ended the stream, if one did.
    public var error: DaemonFailure? { failure.withLock { $0 } }
}
