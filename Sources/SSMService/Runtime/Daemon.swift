import SSM
import SSMIO
import SSMStreaming
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `ssm-streamd`: runs the configured pipeline and reports on it until it is told to stop.
///
/// The main thread is the reporter and controller; it never touches samples:
///
///     poll ─┬─ signal pipe    SIGTERM/SIGINT: stop · SIGHUP: reload
///           ├─ event ring     events → journald · socket subscribers · [events] file
///           ├─ engine done    the stream ended (at_end) or failed (exit code)
///           ├─ control socket status · subscribe · reload · ping
///           └─ timeout        sd_notify STATUS= and WATCHDOG=1, statistics in the log
///
/// The watchdog is pinged only while the engine thread's heartbeat is fresh, so a stuck engine
/// gets the service restarted by systemd.
public final class Daemon {
    public static let version = "0.1.0"

    public private(set) var config: DaemonConfig
    private var journal: Journal
    private var pipeline: Pipeline?
    private var control: ControlServer?
    private var eventsFile: LineWriter?
    private var eventJSON: EventWriter?
    private let eventBuffer = LineWriter(memoryNamed: "events")
    /// What the daemon is doing (`status`'s "state", the sd_notify STATUS= line).
    public enum State: String, Sendable {
        /// Reading the configuration and the model.
        case starting
        /// Opening the source (a FIFO may wait for its writer).
        case opening
        /// Streaming.
        case running
        /// Streaming, but the source failed and is being retried (a lost ALSA device).
        case degraded
        /// The input ended and at_end = "idle": answering, not streaming.
        case ended
        /// Stopping (SIGTERM/SIGINT).
        case stopping
    }
    private var state = State.starting
    /// The last reload: when (uptime seconds), how (swapped in place, reopened), and whether it
    /// was refused (the message).
    private var lastReload: (at: Double, how: String, error: String?)?
    /// The running model file's SHA-256 (journal entries, `model`, metrics).
    private var modelSHA: String?
    /// Events by class label since start (`stats`, metrics), and journal entries left out by the
    /// rate limit.
    private var eventsByClass: [String: Int] = [:]
    private var journalLimit = RateLimit(perSecond: 10)
    private var streamsFrames = 0
    private var reloads = 0
    private var restarts = 0
    private var eventsTotal = 0
    private var lastError: String?
    private var exitCode: Int32?
    private let started = monotonicNanos()
    private var framesBefore = 0   // frames of earlier pipelines (restart, reload)
    /// Counters of earlier pipelines, so that what `stats` and the metrics call totals never go
    /// back when a stream is reopened.
    private struct Totals { var dropped = 0, xruns = 0, nonFinite = 0, nonFiniteOutput = 0, loops = 0, degradations = 0, recoveries = 0 }
    private var retired = Totals()

    /// Counters since start: the retired pipelines' plus the running one's.
    private var totals: Totals {
        var t = retired
        if let p = pipeline {
            let s = p.stats
            t.dropped += s.dropped; t.xruns += s.xruns; t.nonFinite += s.nonFinite; t.nonFiniteOutput += s.nonFiniteOutput
            t.loops += s.loops; t.degradations += p.degradations; t.recoveries += p.recoveries
        }
        return t
    }

    /// A pipeline leaves (stopped for a reopen, or at the end): its counters join the totals.
    private func retire(_ p: Pipeline) {
        let s = p.stats
        framesBefore += s.framesIn
        retired.dropped += s.dropped; retired.xruns += s.xruns; retired.nonFinite += s.nonFinite
        retired.nonFiniteOutput += s.nonFiniteOutput; retired.loops += s.loops
        retired.degradations += p.degradations; retired.recoveries += p.recoveries
    }

    /// SSM_STREAMD_TEST_HOOKS=1: the `test-stall` command exists (the watchdog test hangs the
    /// engine with it). Never set in production.
    private let testHooks = getenv("SSM_STREAMD_TEST_HOOKS").map { String(cString: $0) == "1" } ?? false

    public init(config: DaemonConfig) {
        self.config = config
        journal = Journal(target: config.log.target, level: config.log.level)
    }

    /// Why a pipeline is being opened, and what to do if it cannot be.
    private enum Purpose {
        /// At start-up: a failure ends the daemon.
        case start
        /// A reload: on failure, go back to the previous configuration and model.
        case reload(previous: DaemonConfig, model: Model, reason: String)
        /// The previous configuration again, after a reload failed: a failure ends the daemon.
        case fallback(message: String)
        /// The input ended and at_end = "restart": a failure ends the daemon.
        case restart
    }

    /// A pipeline being opened on its own thread: opening a FIFO waits for a writer, a pipe's
    /// header for its first bytes, and the main thread must go on answering meanwhile.
    private final class Opening: @unchecked Sendable {
        let config: DaemonConfig
        let model: Model
        let purpose: Purpose
        let done = Wakeup()
        private let result = Mutex<Result<Pipeline, DaemonFailure>?>(nil)
        var thread: NativeThread?
        /// The control client that asked for a reload, until it has its answer: the outcome, or
        /// after `replyBy` "accepted, still opening" (a FIFO may wait long for its writer).
        var requester: Int32?
        let replyBy: Int
        init(config: DaemonConfig, model: Model, purpose: Purpose, requester: Int32?) {
            self.config = config; self.model = model; self.purpose = purpose; self.requester = requester
            replyBy = monotonicNanos() + 1_000_000_000
        }
        func run() {
            let r: Result<Pipeline, DaemonFailure>
            do { r = .success(try Pipeline(config: config, model: model)) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.post()
        }
        var outcome: Result<Pipeline, DaemonFailure>? { result.withLock { $0 } }
    }
    private var opening: Opening?

    /// Runs until stopped (0), the stream ends with at_end = "exit" (0), or a failure (its code).
    public func run() -> Int32 {
        // A launcher may hand down a mask blocking these (threads started later inherit ours).
        ProcessSetup.unblock([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
        let signals = SignalPipe(catching: [SIGTERM, SIGINT, SIGHUP])
        NativeThread.installInterruptHandler()
        signal(SIGPIPE, SIG_IGN)
        setBLASThreads(1)

        do {
            try Self.preflight(config)   // the same refusals, and codes, as --check
            let model = try Self.loadModel(config)
            modelSHA = ModelDigest.sha256(path: config.modelPath)
            journalLimit = RateLimit(perSecond: config.events.journalRate)
            try openControl()
            beginOpening(config, model, .start, requester: nil)
        } catch {
            journal.log(.error, error.message, [("SSM_EXIT_CODE", "\(error.code)")])
            Systemd.notify("STATUS=failed: \(error.message)\nERRNO=\(error.code)")
            return error.code
        }
        // Ready once the configuration, the model and the control socket are in place; the
        // source may still be waiting for a writer (a FIFO), which status reports.
        Systemd.notify("READY=1\nSTATUS=\(statusLine())\nMAINPID=\(getpid())")

        let watchdog = Systemd.watchdogInterval
        let tick = min(config.log.statusInterval, watchdog.map { $0 / 2 } ?? 3600)
        var nextStatus = 0.0, nextStats = config.log.statsInterval, nextWatchdog = watchdog == nil ? Double.infinity : 0
        var nextMetrics = 0.0
        while exitCode == nil {
            var set = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)]
            // Every wakeup polled here is drained when it fires, or poll would return at once.
            if let p = pipeline {
                set.append(pollfd(fd: p.events.ready.fd, events: Int16(POLLIN), revents: 0))
                if state == .running { set.append(pollfd(fd: p.finished.fd, events: Int16(POLLIN), revents: 0)) }
                if pendingSwap != nil { set.append(pollfd(fd: p.swapped.fd, events: Int16(POLLIN), revents: 0)) }
                set.append(pollfd(fd: p.healthChanged.fd, events: Int16(POLLIN), revents: 0))
            }
            if let o = opening { set.append(pollfd(fd: o.done.fd, events: Int16(POLLIN), revents: 0)) }
            let controlSet = control?.pollSet() ?? []
            set += controlSet
            let now = uptime
            var wait = max(0, min(nextStatus, nextWatchdog, config.log.statsInterval > 0 ? nextStats : .infinity,
                                  config.metrics.file.isEmpty ? .infinity : nextMetrics) - now)
            if let o = opening, o.requester != nil { wait = min(wait, max(0, Double(o.replyBy - monotonicNanos()) * 1e-9)) }
            _ = poll(&set, nfds_t(set.count), Int32(min(wait, tick) * 1000) + 1)

            if set[0].revents != 0 {
                for sig in signals.take() {
                    if sig == SIGHUP { reload(reason: "SIGHUP", requester: nil) } else {
                        journal.log(.notice, "stopping on \(sig == SIGTERM ? "SIGTERM" : "SIGINT")")
                        exitCode = 0
                    }
                }
            }
            if let o = opening, let outcome = o.outcome { opened(o, outcome) }
            if let o = opening, let r = o.requester, monotonicNanos() >= o.replyBy {
                replyReload(r, nil, state: .opening)
                o.requester = nil
            }
            if let p = pipeline { checkSwap(p); checkHealth(p) }
            drainEvents()
            if let p = pipeline { checkOutput(p) }
            if let p = pipeline, p.stats.finished { streamEnded(p) }
            if let control, !controlSet.isEmpty {
                let base = set.count - controlSet.count
                for (fd, line) in control.service(Array(set[base...])) { command(line, from: fd) }
                control.reap()
            }
            let t = uptime
            if t >= nextStatus {
                Systemd.notify("STATUS=\(statusLine())")
                nextStatus = t + config.log.statusInterval
            }
            if config.log.statsInterval > 0 && t >= nextStats {
                logStats()
                nextStats = t + config.log.statsInterval
            }
            if !config.metrics.file.isEmpty && t >= nextMetrics {
                writeMetrics()
                nextMetrics = t + config.metrics.interval
            }
            if let p = pipeline, streamSeconds(p) >= journalLimit.reportAt() { journalSuppressed() }
            if let w = watchdog, t >= nextWatchdog {
                // A running engine refreshes its heartbeat at least every 100 ms.
                if let p = pipeline, !p.stats.finished, p.stats.heartbeatAge > w / 2 {
                    journal.log(.warning, "engine thread unresponsive for \(fixed1(p.stats.heartbeatAge)) s; not pinging the watchdog")
                } else {
                    Systemd.notify("WATCHDOG=1")
                }
                nextWatchdog = t + w / 4
            }
        }

        state = .stopping
        Systemd.notify("STOPPING=1\nSTATUS=stopping")
        if let o = opening {
            // A source still opening (waiting for a FIFO's writer): interrupt it.
            o.thread?.interrupt()
            o.thread?.join()
            opening = nil
        }
        if let p = pipeline {
            p.stop()
            drainEvents()
            if let e = p.error, exitCode == 0 { exitCode = e.code; journal.log(.error, e.message) }
            journalSuppressed()
            logStats(final: true)
        }
        if !config.metrics.file.isEmpty { writeMetrics() }
        control = nil
        return exitCode ?? 0
    }

    private var uptime: Double { Double(monotonicNanos() - started) * 1e-9 }

    /// Seconds of input processed, over every stream the daemon ran (the journal's rate limit
    /// counts in them).
    private func streamSeconds(_ p: Pipeline) -> Double {
        Double(framesBefore + p.stats.framesDone) / Double(p.inputRate)
    }

    // MARK: Start, reload, end of stream

    /// What `--check` can tell without opening a device or a FIFO: the source path exists, is
    /// not a directory and (a file) not empty; the output's directory exists; the control socket
    /// path is free or a socket. The same refusals a start would give, with the same exit codes.
    public static func preflight(_ c: DaemonConfig) throws(DaemonFailure) {
        let src = c.source
        if src.kind != .alsa && src.path != "-" {
            let path = c.resolve(src.path)
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw DaemonFailure(DaemonFailure.noInput, "source '\(path)': \(String(cString: strerror(errno)))")
            }
            let kind = st.st_mode & S_IFMT
            if kind == S_IFDIR { throw DaemonFailure(DaemonFailure.noInput, "source '\(path)' is a directory") }
            if src.kind == .file && kind == S_IFREG && st.st_size == 0 {
                throw DaemonFailure(DaemonFailure.dataError, "source '\(path)' is empty")
            }
        }
        let out = c.output
        if out.kind == .file && out.path != "-" {
            let path = c.resolve(out.path)
            let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            var st = stat()
            if stat(dir.isEmpty ? "/" : dir, &st) != 0 || st.st_mode & S_IFMT != S_IFDIR {
                throw DaemonFailure(DaemonFailure.cantCreate, "[output] '\(path)': its directory '\(dir)' does not exist")
            }
            if stat(path, &st) == 0 {
                let kind = st.st_mode & S_IFMT
                if kind == S_IFDIR { throw DaemonFailure(DaemonFailure.cantCreate, "[output] '\(path)' is a directory") }
                // /dev/full (character device 1:7) takes the open and refuses every write.
                if kind == S_IFCHR && st.st_rdev == 0x107 {
                    throw DaemonFailure(DaemonFailure.cantCreate, "[output] '\(path)' is /dev/full, which refuses every write (no space left on device)")
                }
            }
        }
        if !c.control.socket.isEmpty, getenv("LISTEN_FDS") == nil {   // socket activation replaces it
            try ControlServer.checkPath(c.resolve(c.control.socket))
        }
    }

    static func loadModel(_ c: DaemonConfig) throws(DaemonFailure) -> Model {
        do { return try ModelFile.load(path: c.modelPath) } catch {
            throw DaemonFailure(DaemonFailure.badModel, error.message)
        }
    }

    private func beginOpening(_ c: DaemonConfig, _ model: Model, _ purpose: Purpose, requester: Int32?) {
        let o = Opening(config: c, model: model, purpose: purpose, requester: requester)
        opening = o
        state = .opening
        o.thread = NativeThread(name: "ssm-open") { o.run() }
    }

    /// A pipeline finished opening (or failed to): start it, or handle the failure as its
    /// purpose says.
    private func opened(_ o: Opening, _ outcome: Result<Pipeline, DaemonFailure>) {
        o.thread?.join()
        opening = nil
        switch outcome {
        case .success(let p):
            do { try attach(p, o.config) } catch {
                failed(o, error); return
            }
            p.start()
            state = .running
            switch o.purpose {
            case .start:
                logStart()
            case .restart:
                restarts += 1
                journal.log(.info, "input reopened: \(p.sourceName)")
            case .reload(_, _, let reason):
                adopt(o.config, how: "reopened")
                journal.log(.notice, "reloaded (\(reason)): model \(config.modelPath), source \(p.sourceName) reopened",
                            [("SSM_MODEL", config.modelPath), ("SSM_MODEL_SHA256", modelSHA ?? ""), ("SSM_RELOADS", "\(reloads)"),
                             ("SSM_RELOAD", "reopened")], id: .modelLoaded)
                replyReload(o.requester, nil, how: "reopened")
                Systemd.notify("READY=1\nSTATUS=\(statusLine())")
            case .fallback(let message):
                replyReload(o.requester, message)
                Systemd.notify("READY=1\nSTATUS=\(statusLine())")
            }
        case .failure(let error):
            failed(o, error)
        }
    }

    private func failed(_ o: Opening, _ error: DaemonFailure) {
        switch o.purpose {
        case .reload(let previous, let model, _):
            lastError = error.message
            lastReload = (uptime, "refused", error.message)
            journal.log(.error, "reload failed, going back to the previous configuration: \(error.message)", id: .modelRefused)
            beginOpening(previous, model, .fallback(message: error.message), requester: o.requester)
        case .start, .restart, .fallback:
            journal.log(.error, error.message, [("SSM_EXIT_CODE", "\(error.code)")])
            lastError = error.message
            if case .fallback = o.purpose { replyReload(o.requester, error.message) }
            Systemd.notify("STATUS=failed: \(error.message)\nERRNO=\(error.code)")
            exitCode = error.code
        }
    }

    /// Makes `p` the current pipeline, with its event encoder and [events] file.
    private func attach(_ p: Pipeline, _ c: DaemonConfig) throws(DaemonFailure) {
        if p.model.spec.task == .classify {
            eventJSON = EventWriter(out: eventBuffer, labels: p.labels, modelRate: p.modelRate, inputRate: p.inputRate)
            if !c.events.file.isEmpty {
                do { eventsFile = try LineWriter(path: c.resolve(c.events.file), append: true) } catch {
                    throw DaemonFailure(error)
                }
            } else {
                eventsFile = nil
            }
        } else {
            eventJSON = nil; eventsFile = nil
        }
        pipeline = p
    }

    private func openControl() throws(DaemonFailure) {
        let activated = Systemd.listenFDs()
        if let fd = activated.first {
            control = ControlServer(activated: fd, maxClients: config.control.maxClients)
        } else if !config.control.socket.isEmpty {
            control = try ControlServer(path: config.resolve(config.control.socket), mode: config.control.mode,
                                        maxClients: config.control.maxClients)
        }
    }

    /// Re-reads the configuration and the model; on an error in either, the running pipeline
    /// goes on untouched. Otherwise the old pipeline is stopped (its output closed, its open
    /// events ended) and the new one opened; if that fails, the previous configuration is
    /// opened again. The requester (a control client) hears the outcome when it is known.
    private func reload(reason: String, requester: Int32?) {
        Systemd.notify("RELOADING=1\nMONOTONIC_USEC=\(Systemd.monotonicMicroseconds)\nSTATUS=reloading")
        let fresh: DaemonConfig
        let model: Model
        do {
            fresh = try DaemonConfig.load(path: config.path, overrides: config.overrides)
            model = try Self.loadModel(fresh)
        } catch let e as DaemonConfig.Error {
            reloadRefused(e.message, requester); return
        } catch let e as DaemonFailure {
            reloadRefused(e.message, requester); return
        } catch {
            reloadRefused("\(error)", requester); return
        }
        if fresh.control != config.control {
            journal.log(.warning, "reload: [control] changes take effect on restart")
        }
        if opening == nil, let p = pipeline, state == .running, swapInPlace(p, fresh, model, reason: reason, requester: requester) {
            return
        }
        var previous = config
        var previousModel = model
        if let o = opening {
            // Still opening (a FIFO waiting for its writer): give that up for the new setup.
            o.thread?.interrupt()
            o.thread?.join()
            opening = nil
            previous = o.config; previousModel = o.model
            if case .reload(let p, let m, _) = o.purpose { previous = p; previousModel = m }
            replyReload(o.requester, "superseded by another reload")
        }
        if let w = pendingSwap {
            // A swap offered and not yet announced: this reload reopens, and supersedes it.
            pendingSwap = nil
            replyReload(w.requester, "superseded by another reload (the stream is reopened)")
        }
        if let old = pipeline {
            previousModel = old.model
            old.stop()
            drainEvents()
            retire(old)
            pipeline = nil
        }
        beginOpening(fresh, model, .reload(previous: previous, model: previousModel, reason: reason), requester: requester)
    }

    /// A reload that changes only the model (or nothing), with a model of the same rate, channels
    /// and classes: the engine switches to it between two blocks, the source stays open and no
    /// sample is lost (the new model starts from its zero state). False when the stream must be
    /// reopened instead (the source, output or events changed, or the model does not fit).
    private func swapInPlace(_ p: Pipeline, _ fresh: DaemonConfig, _ model: Model, reason: String, requester: Int32?) -> Bool {
        // Everything but the model, [events]' detector settings, [control] and [log] unchanged
        // (the same source, output, mode and block; the same [events] file).
        var a = fresh, b = config
        a.model = b.model; a.control = b.control; a.log = b.log
        a.events.threshold = b.events.threshold; a.events.release = b.events.release
        a.events.minDuration = b.events.minDuration; a.events.minGap = b.events.minGap
        a.events.ignore = b.events.ignore; a.events.grouping = b.events.grouping; a.events.journal = b.events.journal
        guard a == b else { return false }
        if p.swapPending || pendingSwap != nil {
            reloadRefused("the previous model swap is still under way; try again", requester); return true
        }
        if let why = p.swapRefusal(model) {
            journal.log(.info, "reload: the new model cannot replace the running one in place (\(why)): reopening the stream")
            return false
        }
        var options: EventDetector.Options? = nil
        if model.spec.task == .classify {
            let e = fresh.events
            do {
                options = try e.settings.resolve(model: model.spec, labels: p.labels, rate: p.modelRate)
            } catch {
                reloadRefused("[events] " + error.message, requester); return true
            }
        }
        guard p.offer(model, modelName: fresh.modelPath, options: options) else {
            reloadRefused("the engine could not take the new model", requester); return true
        }
        adopt(fresh, how: "swapped")
        pendingSwap = (reason, requester, model)
        return true
    }

    /// A reload put `fresh` in place (its model swapped in, or the stream reopened with it): its
    /// configuration, journal settings, model digest and journal rate take effect.
    private func adopt(_ fresh: DaemonConfig, how: String) {
        config = fresh
        journal = Journal(target: config.log.target, level: config.log.level)
        reloads += 1
        lastReload = (uptime, how, nil)
        modelSHA = ModelDigest.sha256(path: config.modelPath)
        journalLimit = journalLimit.withRate(config.events.journalRate)
    }

    /// A swap offered to the engine: announced once it has switched (the engine's wakeup).
    private var pendingSwap: (reason: String, requester: Int32?, model: Model)?

    /// The source's health as last journaled: one entry when it degrades, one when it recovers.
    private var reportedDegraded = false

    private func checkHealth(_ p: Pipeline) {
        p.healthChanged.drain()
        let h = p.degraded
        if let h, !reportedDegraded {
            reportedDegraded = true
            journal.log(.error, "source \(p.sourceName) failed after \(framesBefore + h.atFrame) frames: \(h.reason); retrying after 1 s, then every 2, 4 … 30 s",
                        [("SSM_SOURCE", p.sourceName), ("SSM_REASON", h.reason), ("SSM_FRAMES", "\(framesBefore + h.atFrame)")], id: .sourceDegraded)
            Systemd.notify("STATUS=\(statusLine())")
        } else if h == nil && reportedDegraded {
            reportedDegraded = false
            journal.log(.notice, "source \(p.sourceName) works again: a new stream from the zero state (recovery \(p.recoveries))",
                        [("SSM_SOURCE", p.sourceName), ("SSM_RECOVERIES", "\(p.recoveries)")], id: .sourceRecovered)
            Systemd.notify("STATUS=\(statusLine())")
        }
    }

    /// The state as reported: running, or degraded while the source is retried.
    private var reportedState: State {
        if state == .running, let p = pipeline, p.degraded != nil { return .degraded }
        return state
    }

    private func checkSwap(_ p: Pipeline) {
        guard let w = pendingSwap else { return }
        p.swapped.drain()
        guard let at = p.swapDone() else { return }
        pendingSwap = nil
        var fields = [("SSM_MODEL", config.modelPath), ("SSM_RELOADS", "\(reloads)"), ("SSM_RELOAD", "swapped"),
                      ("SSM_SWAP_FRAME", "\(at)")]
        if let sha = modelSHA { fields.append(("SSM_MODEL_SHA256", sha)) }
        journal.log(.notice, "reloaded (\(w.reason)): model \(config.modelPath) took over at input frame \(at) of the stream, source \(p.sourceName) kept open", fields, id: .modelLoaded)
        replyReload(w.requester, nil, how: "swapped", frame: at)
        Systemd.notify("READY=1\nSTATUS=\(statusLine())")
    }

    private func reloadRefused(_ message: String, _ requester: Int32?) {
        lastReload = (uptime, "refused", message)
        lastError = message
        journal.log(.error, "reload refused, still running the previous configuration: \(message)", id: .modelRefused)
        replyReload(requester, message)
        Systemd.notify("READY=1\nSTATUS=\(statusLine())")
    }

    private func replyReload(_ requester: Int32?, _ error: String?, state: State = .running, how: String? = nil, frame: Int? = nil) {
        guard let requester, let control else { return }
        var j = JSONLine(); j.add("type", "reload"); j.add("ok", error == nil)
        if let error { j.add("message", error) } else {
            j.add("state", state.rawValue)
            if let how { j.add("reload", how) }
            if let frame { j.add("frame", frame) }
        }
        control.send(to: requester, j.line)
    }

    /// The engine thread finished: a failure ends the daemon with its code; an end of input does
    /// what `at_end` says.
    private func streamEnded(_ p: Pipeline) {
        guard state == .running else { return }
        p.stop()
        checkSwap(p)
        var model = p.model
        if let w = pendingSwap {
            // The stream ended before the engine took the new model: it is the one a restart runs.
            pendingSwap = nil
            model = w.model
            journal.log(.notice, "reloaded (\(w.reason)): model \(config.modelPath), for the next stream (this one ended first)", id: .modelLoaded)
            replyReload(w.requester, nil, state: .ended, how: "next stream")
        }
        drainEvents()
        if let e = p.error {
            journal.log(.error, e.message, [("SSM_EXIT_CODE", "\(e.code)")])
            lastError = e.message
            exitCode = e.code
            return
        }
        let s = p.stats
        journal.log(.notice, "end of input \(p.sourceName) after \(s.framesIn) frames (\(fixed1(Double(s.framesIn) / Double(p.inputRate))) s)")
        switch config.source.atEnd {
        case .exit:
            logStats(final: true)
            retire(p)
            pipeline = nil
            exitCode = 0
        case .idle:
            state = .ended
            Systemd.notify("STATUS=\(statusLine())")
        case .restart:
            retire(p)
            pipeline = nil
            beginOpening(config, model, .restart, requester: nil)
        }
    }

    // MARK: Reporting

    /// The pipeline whose model's NaN/Inf output has been reported (once per pipeline).
    private var reportedOverflow: ObjectIdentifier?

    /// One journal entry when the model first produces NaN/Inf (the engine replaced it by 0 and
    /// reset the stream's state); the count goes on in `status`.
    private func checkOutput(_ p: Pipeline) {
        let n = p.stats.nonFiniteOutput
        guard n > 0, reportedOverflow != ObjectIdentifier(p) else { return }
        reportedOverflow = ObjectIdentifier(p)
        journal.log(.warning, "model \(config.modelPath) produced NaN/Inf output (it overflows on this input): replaced by 0 and its state reset; counted in status as non_finite_output",
                    [("SSM_MODEL", config.modelPath), ("SSM_NON_FINITE_OUTPUT", "\(n)")])
    }

    private func drainEvents() {
        guard let p = pipeline else { return }
        p.events.ready.drain()
        guard let json = eventJSON else { return }
        while let e = p.events.pop() {
            eventsTotal += 1
            try? json.event(e)
            let line = eventBuffer.take()
            control?.broadcast(line)
            if let f = eventsFile {
                f.append(line)
                do { try f.flush() } catch { journal.log(.warning, error.message) }
            }
            eventsByClass[p.labels[e.classIndex], default: 0] += 1
            if config.events.journal {
                // The rate is per second of the stream: a file read at full speed is not a flood.
                let at = Double(framesBefore) / Double(p.inputRate) + Double(e.end) / Double(p.modelRate)
                if journalLimit.take(now: at) { journalSuppressed(); journalEvent(e, p) }
            }
        }
    }

    private func journalEvent(_ e: DetectedEvent, _ p: Pipeline) {
        let rate = Double(p.modelRate)
        let label = p.labels[e.classIndex]
        let start = Double(e.start) / rate, end = Double(e.end) / rate
        journal.log(.notice, "\(label) on channel \(e.channel) from \(fixed3(start)) s to \(fixed3(end)) s (peak \(fixed3(Double(e.peak))))", [
            ("SSM_EVENT", label), ("SSM_CLASS_INDEX", "\(e.classIndex)"), ("SSM_CHANNEL", "\(e.channel)"),
            ("SSM_START", fixed3(start)), ("SSM_END", fixed3(end)), ("SSM_DURATION", fixed3(end - start)),
            ("SSM_PEAK", fixed3(Double(e.peak))), ("SSM_MEAN", fixed3(Double(e.mean))),
            ("SSM_MODEL", config.modelPath), ("SSM_MODEL_SHA256", modelSHA ?? ""), ("SSM_SOURCE", p.sourceName),
        ], id: .event)
    }

    /// One entry for the events the rate limit left out of the journal (if any).
    private func journalSuppressed() {
        guard let r = journalLimit.report() else { return }
        journal.log(.notice, "\(r.count) event(s) from \(fixed1(r.since)) s of the stream on not journaled: they came faster than [events] journal_rate = \(fixed1(config.events.journalRate)) a second of stream (the control socket and the events file have every event)",
                    [("SSM_SUPPRESSED", "\(r.count)"), ("SSM_MODEL", config.modelPath)], id: .eventsSuppressed)
    }

    private func logStart() {
        guard let p = pipeline else { return }
        let s = p.model.spec
        let layers = s.allBlocks.map { $0.layer.family.rawValue }.joined(separator: ",")
        journal.log(.notice, "started: \(s.task.rawValue) model \(config.modelPath) (\(layers), \(p.stateBytes) bytes of state) on \(p.sourceName) at \(p.inputRate) Hz × \(p.inputChannels) → \(p.outputName), \(config.mode.rawValue) mode, blocks of \(config.block)",
                    [("SSM_MODEL", config.modelPath), ("SSM_MODEL_SHA256", modelSHA ?? ""), ("SSM_SOURCE", p.sourceName),
                     ("SSM_OUTPUT", p.outputName), ("SSM_STATE_BYTES", "\(p.stateBytes)")], id: .started)
    }

    private func logStats(final: Bool = false) {
        guard let p = pipeline else { return }
        let s = p.stats
        let audio = Double(s.framesIn) / Double(p.inputRate)
        journal.log(final ? .notice : .info,
                    "\(final ? "stopped" : "running"): \(s.framesIn) frames (\(fixed1(audio)) s of input), engine load \(fixed3(load(s, p))), \(eventsTotal) event(s), \(s.dropped) frame(s) dropped, \(s.xruns) xrun(s), \(s.nonFinite) NaN/Inf replaced",
                    [("SSM_FRAMES", "\(framesBefore + s.framesIn)"), ("SSM_LOAD", fixed3(load(s, p))),
                     ("SSM_EVENTS", "\(eventsTotal)"), ("SSM_DROPPED_FRAMES", "\(s.dropped)"),
                     ("SSM_XRUNS", "\(s.xruns)"), ("SSM_NON_FINITE", "\(s.nonFinite)")], id: final ? .stopped : .statistics)
    }

    /// Engine time per second of audio processed (0.01: the engine needs 1 % of one core's time).
    private func load(_ s: Pipeline.Stats, _ p: Pipeline) -> Double {
        s.framesDone > 0 ? s.busySeconds / (Double(s.framesDone) / Double(p.inputRate)) : 0
    }

    private func statusLine() -> String {
        guard let p = pipeline else { return state.rawValue }
        if let h = p.degraded { return "degraded: \(p.sourceName): \(h.reason) (retrying)" }
        let s = p.stats
        return "\(state.rawValue): \(p.sourceName), \(fixed1(Double(framesBefore + s.framesIn) / Double(p.inputRate))) s processed, load \(fixed3(load(s, p))), \(eventsTotal) event(s)"
    }

    /// The status object (one JSON line) the control socket answers `status` with.
    public func statusJSON() -> String {
        var j = JSONLine()
        j.add("type", "status"); j.add("state", reportedState.rawValue); j.add("version", Self.version)
        if let h = pipeline?.degraded {
            j.add("degraded_reason", h.reason); j.add("degraded_for", Double(monotonicNanos() - h.since) * 1e-9)
            j.add("reopen_attempts", h.attempts)
        }
        j.add("pid", Int(getpid())); j.add("uptime", uptime)
        j.add("config", config.path); j.add("model", config.modelPath)
        if pipeline == nil {
            let src = config.source
            j.add("source", src.kind == .alsa ? "alsa:\(src.device)" : "\(src.kind.rawValue):\(config.resolve(src.path))")
        }
        if let p = pipeline {
            let s = p.stats, spec = p.model.spec
            j.add("task", spec.task.rawValue)
            j.add("families", spec.allBlocks.map { $0.layer.family.rawValue }.joined(separator: ","))
            j.add("mode", config.mode.rawValue); j.add("block", config.block)
            j.add("source", p.sourceName); j.add("output", p.outputName)
            j.add("input_rate", p.inputRate); j.add("input_channels", p.inputChannels); j.add("model_rate", p.modelRate)
            j.add("state_bytes", p.stateBytes)
            j.add("frames", framesBefore + s.framesIn)
            j.add("seconds", Double(framesBefore + s.framesIn) / Double(p.inputRate))
            j.add("stream_frames", s.framesIn)
            j.add("load", load(s, p))
            if let m = p.blockTimes.summary(now: monotonicNanos()) {
                // The last minute: engine time per block, and the engine's real-time factor
                // (engine time ÷ audio time) and speed (audio time ÷ engine time).
                j.add("block_p50", m.p50); j.add("block_p99", m.p99); j.add("block_max", m.max)
                j.add("blocks_1m", m.blocks)
                let audio = Double(m.frames) / Double(p.inputRate)
                if audio > 0 && m.busy > 0 { j.add("rtf", m.busy / audio); j.add("speed", audio / m.busy) }
            }
            j.add("dropped_frames", s.dropped); j.add("xruns", s.xruns); j.add("non_finite", s.nonFinite)
            j.add("non_finite_output", s.nonFiniteOutput)
            j.add("ring_dropped_events", s.eventsDropped)
            if s.resets > 0 { j.add("resets", s.resets); j.add("last_reset_frame", s.lastResetFrame) }
        }
        j.add("events", eventsTotal)
        j.add("socket_dropped_events", control?.droppedEvents ?? 0)
        j.add("clients", control?.clients.count ?? 0)
        j.add("clients_dropped", control?.droppedClients ?? 0)
        j.add("subscribers", control?.subscribers ?? 0)
        j.add("reloads", reloads); j.add("restarts", restarts)
        j.add("journal_suppressed_events", journalLimit.suppressedTotal)
        if let r = lastReload {
            j.add("last_reload", r.how); j.add("last_reload_ago", uptime - r.at)
            if let e = r.error { j.add("last_reload_error", e) }
        }
        if let e = lastError { j.add("last_error", e) }
        return j.line
    }

    private func command(_ line: String, from fd: Int32) {
        guard let control else { return }
        let c = ControlCommand(line: line)
        if let reply = c.reply { control.send(to: fd, reply); return }
        switch c {
        case .empty, .ping, .help, .unknown:
            return
        case .status:
            control.send(to: fd, statusJSON())
        case .subscribe:
            control.setSubscribed(fd, true)
            var j = JSONLine(); j.add("type", "subscribed")
            j.add("labels", pipeline?.labels.joined(separator: ",") ?? "")
            control.send(to: fd, j.line)
        case .unsubscribe:
            control.setSubscribed(fd, false)
            var j = JSONLine(); j.add("type", "unsubscribed"); control.send(to: fd, j.line)
        case .reload:
            reload(reason: "control socket", requester: fd)
        case .stats:
            control.send(to: fd, statsJSON())
        case .model:
            control.send(to: fd, modelJSON())
        case .testStall:
            var j = JSONLine(); j.add("type", "test-stall")
            if testHooks, let p = pipeline {
                journal.log(.warning, "test-stall: the engine thread hangs now (SSM_STREAMD_TEST_HOOKS=1)")
                p.requestStall()
                j.add("ok", true)
            } else {
                j = JSONLine(); j.add("type", "error"); j.add("message", "unknown command 'test-stall' (commands: \(ControlCommand.names))")
            }
            control.send(to: fd, j.line)
        case .reset:
            var j = JSONLine(); j.add("type", "reset")
            if let p = pipeline, state == .running {
                p.requestReset()
                j.add("ok", true)
                journal.log(.notice, "recurrent state reset (control socket) at input frame \(p.stats.framesIn) of the stream")
            } else {
                j.add("ok", false); j.add("message", "no stream is running (state \(state.rawValue))")
            }
            control.send(to: fd, j.line)
        }
    }

    /// Counters since the daemon started, over every stream it ran (`stats`).
    public func statsJSON() -> String {
        var j = JSONLine()
        j.add("type", "stats"); j.add("uptime", uptime)
        let s = pipeline?.stats
        j.add("frames", framesBefore + (s?.framesIn ?? 0))
        j.add("events", eventsTotal)
        j.add("events_by_class", eventsByClass)
        let t = totals
        j.add("dropped_frames", t.dropped); j.add("xruns", t.xruns)
        j.add("non_finite", t.nonFinite); j.add("non_finite_output", t.nonFiniteOutput)
        j.add("ring_dropped_events", s?.eventsDropped ?? 0)
        j.add("socket_dropped_events", control?.droppedEvents ?? 0)
        j.add("journal_suppressed_events", journalLimit.suppressedTotal)
        j.add("loops", t.loops)
        j.add("source_degradations", t.degradations); j.add("source_recoveries", t.recoveries)
        j.add("reloads", reloads); j.add("restarts", restarts)
        j.add("clients_dropped", control?.droppedClients ?? 0)
        return j.line
    }

    /// What runs (`model`): the file, its digest, its architecture and its cost.
    public func modelJSON() -> String {
        var j = JSONLine()
        j.add("type", "model"); j.add("path", config.modelPath); j.add("sha256", modelSHA ?? "")
        guard let p = pipeline else { j.add("state", state.rawValue); return j.line }
        let m = p.model, spec = m.spec
        j.add("task", spec.task.rawValue); j.add("sample_rate", spec.sampleRate)
        j.add("d_input", spec.dInput); j.add("d_model", spec.dModel); j.add("d_output", spec.dOutput)
        j.add("layers", spec.allBlocks.map { "\($0.layer.family.rawValue)(H=\($0.layer.dModel), N=\($0.layer.dState))" }.joined(separator: ","))
        if let labels = spec.labels { j.add("labels", labels.joined(separator: ",")) }
        j.add("parameters", m.parameterCount); j.add("flops_per_sample", m.flopsPerSample)
        j.add("state_bytes", p.stateBytes)
        if let d = spec.description { j.add("description", d) }
        return j.line
    }

    // MARK: Metrics

    /// Rewrites `[metrics] file` (Prometheus text format, as node_exporter's textfile collector
    /// reads it): to a temporary file beside it, then renamed over it, so a reader never sees half.
    private func writeMetrics() {
        let path = config.resolve(config.metrics.file)
        var m = MetricsText()
        m.gauge("ssm_streamd_info", "The running daemon and model (value 1).", 1,
                ["version": Self.version, "model": config.modelPath, "sha256": modelSHA ?? "", "state": state.rawValue])
        m.gauge("ssm_streamd_uptime_seconds", "Seconds since the daemon started.", uptime)
        let s = pipeline?.stats
        m.counter("ssm_streamd_frames_total", "Input frames processed, over every stream.", Double(framesBefore + (s?.framesIn ?? 0)))
        m.header("ssm_streamd_events_total", "Events detected, by class.", "counter")
        for (label, n) in eventsByClass.sorted(by: { $0.key < $1.key }) { m.sample("ssm_streamd_events_total", Double(n), ["class": label]) }
        let t = totals
        m.counter("ssm_streamd_dropped_frames_total", "Frames a live source could not hand on (ring full).", Double(t.dropped))
        m.counter("ssm_streamd_xruns_total", "ALSA overruns recovered.", Double(t.xruns))
        m.counter("ssm_streamd_non_finite_total", "NaN/Inf input samples replaced by 0.", Double(t.nonFinite))
        m.counter("ssm_streamd_reloads_total", "Reloads that put a configuration or model in place.", Double(reloads))
        m.counter("ssm_streamd_journal_suppressed_events_total", "Events left out of the journal by journal_rate.", Double(journalLimit.suppressedTotal))
        m.gauge("ssm_streamd_source_degraded", "1 while the source is failing and being retried.", pipeline?.degraded == nil ? 0 : 1)
        m.counter("ssm_streamd_source_recoveries_total", "Times a failed source worked again.", Double(t.recoveries))
        if let p = pipeline, let s {
            m.gauge("ssm_streamd_load", "Engine time per second of audio since the stream started.", load(s, p))
            if let t = p.blockTimes.summary(now: monotonicNanos()) {
                let audio = Double(t.frames) / Double(p.inputRate)
                if audio > 0 { m.gauge("ssm_streamd_rtf", "Engine time per second of audio over the last minute.", t.busy / audio) }
                m.header("ssm_streamd_block_seconds", "Engine time per block over the last minute.", "gauge")
                m.sample("ssm_streamd_block_seconds", t.p50, ["quantile": "0.5"])
                m.sample("ssm_streamd_block_seconds", t.p99, ["quantile": "0.99"])
                m.sample("ssm_streamd_block_seconds", t.max, ["quantile": "1"])
            }
        }
        if let why = Self.replaceFile(path, with: m.text) {
            if !metricsFailed { journal.log(.warning, "metrics file '\(path)': \(why) (retried every \(fixed1(config.metrics.interval)) s)") }
            metricsFailed = true
        } else {
            metricsFailed = false
        }
    }

    /// Writes `text` to a temporary file beside `path` and renames it over `path`; nil, or why not.
    static func replaceFile(_ path: String, with text: String) -> String? {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        var bytes = Array(text.utf8), off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { let why = String(cString: strerror(errno)); close(fd); unlink(tmp); return why }
            off += n
        }
        close(fd)
        guard rename(tmp, path) == 0 else { let why = String(cString: strerror(errno)); unlink(tmp); return why }
        return nil
    }
    private var metricsFailed = false
}

/// Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, then `name{label="value"} number`.
struct MetricsText {
    private(set) var text = ""
    mutating func header(_ name: String, _ help: String, _ type: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }
    mutating func sample(_ name: String, _ value: Double, _ labels: [String: String] = [:]) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\"\(Self.escape($0.value))\"" }.joined(separator: ",") + "}"
        }
        text += " " + (value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)") : "NaN") + "\n"
    }
    mutating func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [String: String] = [:]) {
        header(name, help, "gauge"); sample(name, value, labels)
    }
    mutating func counter(_ name: String, _ help: String, _ value: Double) {
        header(name, help, "counter"); sample(name, value)
    }
    /// Label values escape backslash, double quote and line feed.
    static func escape(_ v: String) -> String {
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

/// One request line of the control protocol (README, "Control socket"): its first word.
public enum ControlCommand: Equatable, Sendable {
    case empty, status, stats, model, subscribe, unsubscribe, reload, reset, ping, help
    /// Test hook, answered only when SSM_STREAMD_TEST_HOOKS=1 (else as an unknown command).
    case testStall
    case unknown(String)

    public static let names = "status, stats, model, subscribe, unsubscribe, reload, reset, ping, help"

    public init(line: String) {
        let word = line.split(separator: " ").first.map(String.init) ?? ""
        switch word {
        case "": self = .empty
        case "status": self = .status
        case "stats": self = .stats
        case "model": self = .model
        case "reset": self = .reset
        case "test-stall": self = .testStall
        case "subscribe": self = .subscribe
        case "unsubscribe": self = .unsubscribe
        case "reload": self = .reload
        case "ping": self = .ping
        case "help": self = .help
        default: self = .unknown(word)
        }
    }

    /// The reply of a command that needs nothing of the daemon's state (nil for the others).
    public var reply: String? {
        var j = JSONLine()
        switch self {
        case .ping: j.add("type", "pong")
        case .help: j.add("type", "help"); j.add("commands", Self.names)
        case .unknown(let word):
            j.add("type", "error")
            j.add("message", "unknown command '\(word)' (commands: \(Self.names))")
        default: return nil
        }
        return j.line
    }
}

/// A flat JSON object built field by field, ending in a newline.
struct JSONLine {
    private var body: [UInt8] = [123]
    mutating func key(_ k: String) {
        if body.count > 1 { body.append(44) }
        body += LineWriter.jsonString(k); body.append(58)
    }
    mutating func add(_ k: String, _ v: String) { key(k); body += LineWriter.jsonString(v) }
    mutating func add(_ k: String, _ v: Int) { key(k); body += Array(String(v).utf8) }
    mutating func add(_ k: String, _ v: Bool) { key(k); body += Array((v ? "true" : "false").utf8) }
    mutating func add(_ k: String, _ v: Double) { key(k); body += Array((v.isFinite ? fixed(v, 6) : "null").utf8) }
    /// A nested object of counts (keys sorted).
    mutating func add(_ k: String, _ v: [String: Int]) {
        key(k); body.append(123)
        for (i, (name, n)) in v.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { body.append(44) }
            body += LineWriter.jsonString(name); body.append(58); body += Array(String(n).utf8)
        }
        body.append(125)
    }
    var line: String { String(decoding: body + [125, 10], as: UTF8.self) }
}

/// Signals turned into bytes on a pipe (the self-pipe trick), read by the poll loop.
final class SignalPipe {
    let fd: Int32
    init(catching signals: [Int32]) {
        (fd, signalPipeWriteFD) = Wakeup.nonBlockingPipe()
        for s in signals {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { sig in
                var b = UInt8(truncatingIfNeeded: sig)
                _ = write(signalPipeWriteFD, &b, 1)
            }
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            sigaction(s, &sa, nil)
        }
    }

    func take() -> [Int32] {
        var out: [Int32] = []
        var b: UInt8 = 0
        while read(fd, &b, 1) == 1 { out.append(Int32(b)) }
        return out
    }
}

nonisolated(unsafe) private var signalPipeWriteFD: Int32 = -1

func fixed(_ x: Double, _ digits: Int) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buf, 64, "%.\(digits)f", $0) }
    return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
func fixed1(_ x: Double) -> String { fixed(x, 1) }
func fixed3(_ x: Double) -> String { fixed(x, 3) }
