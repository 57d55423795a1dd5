import SSM
import SSMIO
import SSMStreaming
#if canImport(Glibc)
import Glibc
#endif

/// `ssm-streamd`'s configuration (TOML; every key documented in the README, "Configuration").
/// Paths are relative to the directory of the configuration file. Unknown keys and tables are
/// refused, so a typo never silently falls back to a default.
public struct DaemonConfig: Equatable, Sendable {
    public enum SourceKind: String, Sendable, CaseIterable { case alsa, file, pipe }
    public enum AtEnd: String, Sendable, CaseIterable { case exit, idle, restart }
    public enum OutputKind: String, Sendable, CaseIterable { case none, file, pipe, alsa }
    public enum LogTarget: String, Sendable, CaseIterable { case auto, journal, stderr }

    public struct Source: Equatable, Sendable {
        public var kind: SourceKind
        /// ALSA PCM name ("default", "hw:1,0", "plughw:1", a name from asound.conf).
        public var device = "default"
        /// File or FIFO path; "-" is standard input (pipe).
        public var path = ""
        /// auto (a header), s16le, s32le, f32le, f64le or text.
        public var format = "auto"
        /// Hz and channels: ALSA (default: the model's), raw and text input (required).
        public var rate: Int?
        public var channels: Int?
        public var perChannel = false
        public var resample = false
        public var resampleQuality = Resampler.Quality.medium
        /// ALSA buffer latency in milliseconds.
        public var latencyMs = 100
        /// Stop after this many seconds of input (0: no limit).
        public var duration = 0.0
        /// What happens when a file or pipe ends.
        public var atEnd = AtEnd.exit
        /// Capacity of the ring between the source and the engine, in seconds of input.
        public var ringSeconds = 2.0
        /// A file paced at its sample rate, as a live stream would arrive (demos, soak tests,
        /// latency measurements).
        public var realtime = false
        /// A file played again and again as one continuous stream.
        public var loop = false
    }

    public struct Output: Equatable, Sendable {
        public var kind = OutputKind.none
        public var path = ""
        public var device = "default"
        /// Container and encoding by the CLI's names (nil: WAV/the input's encoding, raw f32 on a pipe).
        public var format: String?
        public var encoding: String?
    }

    public struct Events: Equatable, Sendable {
        /// nil: the model's suggestion (`ModelSpec.events`), else the built-in default (EventSettings).
        public var threshold: Float?
        public var release: Float?
        public var minDuration: Double?
        public var minGap: Double?
        public var ignore: [String] = []
        public var grouping: EventDetector.Grouping?
        /// A JSON Lines file events are appended to ("" for none).
        public var file = ""
        /// Whether each event is also a journald entry.
        public var journal = true
        /// Event entries per second the journal gets at most (a burst above it becomes one entry
        /// counting the events left out); 0: no limit. The socket and the events file get all.
        public var journalRate = 10.0
        /// The detector settings of this table (the model's own fill what it leaves out).
        public var settings: EventSettings {
            EventSettings(threshold: threshold, release: release, minDuration: minDuration, minGap: minGap, ignore: ignore, grouping: grouping)
        }
    }

    public struct Metrics: Equatable, Sendable {
        /// A Prometheus text-format file rewritten atomically ("" for none), e.g. for
        /// node_exporter's textfile collector.
        public var file = ""
        /// Seconds between rewrites.
        public var interval = 15.0
    }

    public struct Control: Equatable, Sendable {
        /// The UNIX socket's path ("" for none; ignored under socket activation).
        public var socket = "/run/ssm-streamd/control.sock"
        /// Its permission bits.
        public var mode: UInt32 = 0o660
        public var maxClients = 16
    }

    public struct Log: Equatable, Sendable {
        public var target = LogTarget.auto
        public var level = LogLevel.info
        /// Seconds between sd_notify STATUS= updates (and status-line refreshes).
        public var statusInterval = 5.0
        /// Seconds between statistics entries in the log (0: none).
        public var statsInterval = 300.0
    }

    /// Where the configuration was read from (relative paths are resolved against its directory).
    public var path: String
    /// The command line's `--set KEY=VALUE` overrides, put over the file again at every reload.
    public var overrides: [String] = []
    public var model: String
    public var mode = StreamEngine.Mode.block
    public var block = 256
    public var source: Source
    public var output = Output()
    public var events = Events()
    public var control = Control()
    public var log = Log()
    public var metrics = Metrics()

    public struct Error: Swift.Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Reads and checks the configuration at `path`, with `overrides` ("table.key=value", as
    /// `--set` gives them) put over the file's keys before the checks.
    public static func load(path: String, overrides: [String] = []) throws(Error) -> DaemonConfig {
        guard let f = fopen(path, "r") else {
            throw Error(message: "config '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n > 0 { bytes += chunk[0..<n] }
            if n < chunk.count { break }
            if bytes.count > 1 << 20 { throw Error(message: "config '\(path)': larger than 1 MiB; is this the right file?") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Error(message: "config '\(path)': not UTF-8 text")
        }
        return try parse(text, path: path, overrides: overrides)
    }

    public static func parse(_ text: String, path: String, overrides: [String] = []) throws(Error) -> DaemonConfig {
        var doc: TOML.Document
        do { doc = try TOML.parse(text) } catch { throw Error(message: "config '\(path)': \(error)") }
        var raw: [Int: String] = [:]
        for (i, o) in overrides.enumerated() {
            let line = -(i + 1)   // an override's "line": negative, named as --set in messages
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                throw Error(message: "--set '\(o)': write KEY=VALUE, the key named as in the file (source.path=in.wav, model=m.safetensors)")
            }
            let name = String(o[..<eq]), text = String(o[o.index(after: eq)...])
            let (table, key) = name.lastIndex(of: ".").map { (String(name[..<$0]), String(name[name.index(after: $0)...])) } ?? ("", name)
            guard !key.isEmpty else { throw Error(message: "--set '\(o)': the key after '\(table).' is missing") }
            // The value as TOML (0.7, true, 256, "quoted", [\"a\", \"b\"]); anything else is a string.
            var value = TOML.Value.string(text)
            if let d = try? TOML.parse("v = " + text), d.entries.count == 1 { value = d.entries[0].value }
            // A path on the command line is relative to where the command runs, not to the file.
            if case .string(let v) = value, Self.pathKeys.contains(name), !v.isEmpty, v != "-", !v.hasPrefix("/") {
                value = .string(currentDirectory() + "/" + v)
            }
            raw[line] = text
            doc.entries.removeAll { $0.table == table && $0.key == key }
            doc.entries.append(TOML.Entry(table: table, key: key, value: value, line: line))
            if !table.isEmpty && !doc.tables.contains(where: { $0.name == table }) { doc.tables.append((table, line)) }
        }
        var r = Reader(doc: doc, path: path, overrides: overrides, raw: raw)
        var c = try r.read()
        c.overrides = overrides
        return c
    }

    /// Keys holding paths (resolved against the file's directory, or for --set the current one).
    static let pathKeys: Set<String> = ["model", "source.path", "output.path", "events.file", "control.socket", "metrics.file"]

    private static func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "." }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `p` resolved against the configuration file's directory.
    public func resolve(_ p: String) -> String {
        guard !p.isEmpty, p != "-", !p.hasPrefix("/") else { return p }
        guard let slash = path.lastIndex(of: "/") else { return p }
        return String(path[...slash]) + p
    }

    public var modelPath: String { resolve(model) }
}

/// Log priorities (syslog's, as journald stores them).
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case debug, info, notice, warning, error
    public var priority: Int32 {
        switch self {
        case .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.priority > b.priority }
}

/// Typed access to the document, remembering which keys were read so the rest can be refused.
private struct Reader {
    let doc: TOML.Document
    let path: String
    /// The --set arguments (entry line -1 is the first) and the text each gave as its value.
    let overrides: [String]
    let raw: [Int: String]

    static let known: [String: [String]] = [
        "": ["model", "mode", "block"],
        "source": ["type", "device", "path", "format", "rate", "channels", "per_channel", "resample",
                   "resample_quality", "latency_ms", "duration", "at_end", "ring_seconds", "realtime", "loop"],
        "output": ["type", "path", "device", "format", "encoding"],
        "events": ["threshold", "release", "min_duration", "min_gap", "ignore", "grouping", "file", "journal", "journal_rate"],
        "metrics": ["file", "interval"],
        "control": ["socket", "mode", "max_clients"],
        "log": ["target", "level", "status_interval", "stats_interval"],
    ]

    func fail(_ line: Int?, _ m: String) -> DaemonConfig.Error {
        if let line, line < 0 { return DaemonConfig.Error(message: "--set '\(overrides[-line - 1])': \(m)") }
        return DaemonConfig.Error(message: "config '\(path)'\(line.map { ", line \($0)" } ?? ""): \(m)")
    }

    func entry(_ table: String, _ key: String) -> TOML.Entry? {
        doc.entries.first { $0.table == table && $0.key == key }
    }

    static func name(_ table: String, _ key: String) -> String { table.isEmpty ? "'\(key)'" : "'\(key)' in [\(table)]" }

    mutating func string(_ table: String, _ key: String) throws(DaemonConfig.Error) -> String? {
        guard let e = entry(table, key) else { return nil }
        // --set control.mode=0660 means the text, whatever it would parse as.
        if let text = raw[e.line], !text.hasPrefix("\"") { if case .string(let s) = e.value { return s }; return text }
        guard case .string(let s) = e.value else { throw fail(e.line, "\(Self.name(table, key)) must be a string (in quotes), not \(e.value.typeName)") }
        return s
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ table: String, _ key: String, _: T.Type) throws(DaemonConfig.Error) -> T? where T.RawValue == String {
        guard let s = try string(table, key) else { return nil }
        guard let v = T(rawValue: s) else {
            throw fail(entry(table, key)?.line, "\(Self.name(table, key)) is '\(s)'; one of \(T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return v
    }

    mutating func int(_ table: String, _ key: String, _ range: ClosedRange<Int>) throws(DaemonConfig.Error) -> Int? {
        guard let e = entry(table, key) else { return nil }
        guard case .integer(let v) = e.value else { throw fail(e.line, "\(Self.name(table, key)) must be an integer, not \(e.value.typeName)") }
        guard range.contains(v) else { throw fail(e.line, "\(Self.name(table, key)) is \(v); it must be between \(range.lowerBound) and \(range.upperBound)") }
        return v
    }

    mutating func number(_ table: String, _ key: String, _ range: ClosedRange<Double>) throws(DaemonConfig.Error) -> Double? {
        guard let e = entry(table, key) else { return nil }
        let v: Double
        switch e.value {
        case .integer(let i): v = Double(i)
        case .float(let d): v = d
        default: throw fail(e.line, "\(Self.name(table, key)) must be a number, not \(e.value.typeName)")
        }
        guard v.isFinite, range.contains(v) else { throw fail(e.line, "\(Self.name(table, key)) is \(v); it must be between \(range.lowerBound) and \(range.upperBound)") }
        return v
    }

    mutating func bool(_ table: String, _ key: String) throws(DaemonConfig.Error) -> Bool? {
        guard let e = entry(table, key) else { return nil }
        guard case .bool(let b) = e.value else { throw fail(e.line, "\(Self.name(table, key)) must be true or false, not \(e.value.typeName)") }
        return b
    }

    mutating func strings(_ table: String, _ key: String) throws(DaemonConfig.Error) -> [String]? {
        guard let e = entry(table, key) else { return nil }
        guard case .array(let items) = e.value else { throw fail(e.line, "\(Self.name(table, key)) must be an array of strings") }
        var out: [String] = []
        for i in items {
            guard case .string(let s) = i else { throw fail(e.line, "\(Self.name(table, key)) must be an array of strings, it holds \(i.typeName)") }
            out.append(s)
        }
        return out
    }

    mutating func read() throws(DaemonConfig.Error) -> DaemonConfig {
        for t in doc.tables where Self.known[t.name] == nil {
            throw fail(t.line, "unknown table [\(t.name)] (known: \(Self.known.keys.filter { !$0.isEmpty }.sorted().map { "[\($0)]" }.joined(separator: ", ")))")
        }
        for e in doc.entries where !(Self.known[e.table] ?? []).contains(e.key) {
            throw fail(e.line, "unknown key \(Self.name(e.table, e.key)) (known: \((Self.known[e.table] ?? []).joined(separator: ", ")))")
        }
        guard let model = try string("", "model"), !model.isEmpty else {
            throw fail(nil, "'model' is missing: the path of the model file (.safetensors) to run")
        }
        guard doc.tables.contains(where: { $0.name == "source" }) else {
            throw fail(nil, "[source] is missing: say where samples come from (type = \"alsa\", \"file\" or \"pipe\")")
        }
        guard let kind = try choice("source", "type", DaemonConfig.SourceKind.self) else {
            throw fail(doc.tables.first { $0.name == "source" }?.line, "'type' in [source] is missing (\"alsa\", \"file\" or \"pipe\")")
        }
        var c = DaemonConfig(path: path, model: model, source: .init(kind: kind))
        c.mode = try choice("", "mode", StreamEngine.Mode.self) ?? c.mode
        c.block = try int("", "block", 1...65536) ?? c.block

        var s = c.source
        s.device = try string("source", "device") ?? s.device
        s.path = try string("source", "path") ?? s.path
        s.format = try string("source", "format") ?? s.format
        let formats = ["auto", "text"] + RawEncoding.allCases.map(\.rawValue)
        guard formats.contains(s.format) else {
            throw fail(entry("source", "format")?.line, "'format' in [source] is '\(s.format)'; one of \(formats.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        s.rate = try int("source", "rate", 1...10_000_000)
        s.channels = try int("source", "channels", 1...1024)
        s.perChannel = try bool("source", "per_channel") ?? s.perChannel
        s.resample = try bool("source", "resample") ?? s.resample
        s.resampleQuality = try choice("source", "resample_quality", Resampler.Quality.self) ?? s.resampleQuality
        s.latencyMs = try int("source", "latency_ms", 1...10_000) ?? s.latencyMs
        s.duration = try number("source", "duration", 0...1e9) ?? s.duration
        s.atEnd = try choice("source", "at_end", DaemonConfig.AtEnd.self) ?? s.atEnd
        s.ringSeconds = try number("source", "ring_seconds", 0.01...600) ?? s.ringSeconds
        s.realtime = try bool("source", "realtime") ?? s.realtime
        s.loop = try bool("source", "loop") ?? s.loop
        for k in ["realtime", "loop"] where kind != .file && entry("source", k) != nil {
            throw fail(entry("source", k)?.line, "'\(k)' in [source] is for a file (type = \"file\"); \(kind == .alsa ? "a device" : "a pipe") is live already")
        }
        if s.loop && entry("source", "at_end") != nil {
            throw fail(entry("source", "at_end")?.line, "'at_end' in [source] has no effect with loop = true (a looped file never ends)")
        }
        switch kind {
        case .alsa:
            for k in ["path", "format", "at_end", "resample", "resample_quality"] where entry("source", k) != nil {
                throw fail(entry("source", k)?.line, "'\(k)' in [source] is for files and pipes; ALSA's plug layer converts the device's rate and format")
            }
        case .file, .pipe:
            if s.path.isEmpty { throw fail(doc.tables.first { $0.name == "source" }?.line, "'path' in [source] is missing (the \(kind == .file ? "file" : "FIFO, or \"-\" for standard input,") to read)") }
            if entry("source", "device") != nil || entry("source", "latency_ms") != nil {
                throw fail((entry("source", "device") ?? entry("source", "latency_ms"))?.line, "'device' and 'latency_ms' in [source] are for ALSA")
            }
            if s.format != "auto" && s.rate == nil { throw fail(entry("source", "format")?.line, "[source] format \"\(s.format)\" needs 'rate' (Hz)") }
            if RawEncoding(rawValue: s.format) != nil && s.channels == nil { throw fail(entry("source", "format")?.line, "[source] format \"\(s.format)\" needs 'channels'") }
            if s.format == "auto" && (s.rate != nil || s.channels != nil) {
                throw fail((entry("source", "rate") ?? entry("source", "channels"))?.line, "'rate' and 'channels' in [source] are for raw or text input (format = \"s16le\", …); a file with a header says its own")
            }
        }
        c.source = s

        var o = c.output
        o.kind = try choice("output", "type", DaemonConfig.OutputKind.self) ?? o.kind
        o.path = try string("output", "path") ?? o.path
        o.device = try string("output", "device") ?? o.device
        o.format = try string("output", "format")
        o.encoding = try string("output", "encoding")
        if let f = o.format, OutputFormats.container(named: f) == nil {
            throw fail(entry("output", "format")?.line, "unknown 'format' in [output]: '\(f)' (one of \(OutputFormats.containers.map(\.name).joined(separator: ", ")))")
        }
        if let e = o.encoding, OutputFormats.encoding(named: e) == nil {
            throw fail(entry("output", "encoding")?.line, "unknown 'encoding' in [output]: '\(e)' (one of \(OutputFormats.encodings.map(\.name).joined(separator: ", ")))")
        }
        if (o.kind == .file || o.kind == .pipe) && o.path.isEmpty {
            throw fail(entry("output", "type")?.line, "'path' in [output] is missing (the \(o.kind == .file ? "file" : "FIFO, or \"-\" for standard output,") to write)")
        }
        c.output = o

        var e = c.events
        e.threshold = try number("events", "threshold", 0...1).map(Float.init)
        e.release = try number("events", "release", 0...1).map(Float.init)
        if let r = e.release, r > (e.threshold ?? EventSettings.defaultThreshold) {
            throw fail(entry("events", "release")?.line, "'release' (\(r)) must not exceed 'threshold' (\(e.threshold ?? EventSettings.defaultThreshold)) in [events]")
        }
        e.minDuration = try number("events", "min_duration", 0...86400)
        e.minGap = try number("events", "min_gap", 0...86400)
        e.ignore = try strings("events", "ignore") ?? e.ignore
        e.grouping = try choice("events", "grouping", EventDetector.Grouping.self)
        e.file = try string("events", "file") ?? e.file
        e.journal = try bool("events", "journal") ?? e.journal
        e.journalRate = try number("events", "journal_rate", 0...1e6) ?? e.journalRate
        c.events = e

        var m = c.metrics
        m.file = try string("metrics", "file") ?? m.file
        m.interval = try number("metrics", "interval", 0.1...86400) ?? m.interval
        c.metrics = m

        var k = c.control
        k.socket = try string("control", "socket") ?? k.socket
        if let m = try string("control", "mode") {
            guard let v = UInt32(m, radix: 8), v <= 0o777 else { throw fail(entry("control", "mode")?.line, "'mode' in [control] is '\(m)'; octal permission bits such as \"0660\"") }
            k.mode = v
        }
        k.maxClients = try int("control", "max_clients", 1...1024) ?? k.maxClients
        c.control = k

        var l = c.log
        l.target = try choice("log", "target", DaemonConfig.LogTarget.self) ?? l.target
        l.level = try choice("log", "level", LogLevel.self) ?? l.level
        l.statusInterval = try number("log", "status_interval", 0.1...3600) ?? l.statusInterval
        l.statsInterval = try number("log", "stats_interval", 0...86400) ?? l.statsInterval
        c.log = l
        return c
    }
}
