import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// What the daemon learns from and tells systemd: boot and journal detection, sd_notify
/// (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1) and socket activation.
public enum Systemd {
    /// Whether this system was booted with systemd as init (sd_booted).
    public static var booted: Bool { sd_booted() > 0 }

    /// Whether stderr is connected to the journal (JOURNAL_STREAM matches our stderr).
    public static var stderrIsJournal: Bool {
        guard let v = getenv("JOURNAL_STREAM") else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return String(cString: v) == "\(st.st_dev):\(st.st_ino)"
    }

    /// Whether we run as a systemd service (the manager sets INVOCATION_ID, or a notify socket).
    public static var underSystemd: Bool { getenv("INVOCATION_ID") != nil || getenv("NOTIFY_SOCKET") != nil }

    /// Sends `state` ("READY=1\nSTATUS=…") to the service manager; a no-op without NOTIFY_SOCKET.
    @discardableResult
    public static func notify(_ state: String) -> Bool { sd_notify(0, state) > 0 }

    /// The watchdog interval systemd expects pings within (WatchdogSec=), if enabled for us.
    public static var watchdogInterval: Double? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return Double(usec) / 1e6
    }

    /// Listening sockets passed by socket activation (fds from SD_LISTEN_FDS_START = 3).
    public static func listenFDs() -> [Int32] {
        let n = sd_listen_fds(1)
        guard n > 0 else { return [] }
        return (0..<n).map { 3 + $0 }
    }

    /// CLOCK_MONOTONIC in microseconds (for RELOADING=1's MONOTONIC_USEC=).
    public static var monotonicMicroseconds: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }
}

/// Structured log entries to journald (sd_journal_sendv: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
/// CODE_* and the caller's SSM_* fields), or lines on stderr when journald is not the target or
/// refuses (not running: -ECONNREFUSED).
///
/// Field names must match [A-Z0-9_]+ and not start with '_' (journald silently drops others):
/// `Journal.fieldName` cleans any key to that form.
public final class Journal: @unchecked Sendable {
    public let identifier: String
    public let level: LogLevel
    public private(set) var useJournal: Bool
    /// Entries journald refused (then written to stderr).
    public private(set) var fallbacks = 0

    public init(identifier: String = "ssm-streamd", target: DaemonConfig.LogTarget, level: LogLevel) {
        self.identifier = identifier; self.level = level
        switch target {
        case .journal: useJournal = true
        case .stderr: useJournal = false
        case .auto: useJournal = Systemd.stderrIsJournal || Systemd.underSystemd
        }
    }

    public static func fieldName(_ key: String) -> String {
        var s = String(key.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
        while s.hasPrefix("_") { s.removeFirst() }
        if s.isEmpty || s.first!.isNumber { s = "F" + s }
        return s
    }

    public func log(_ level: LogLevel, _ message: String, _ fields: [(String, String)] = [], id: MessageID? = nil,
                    file: String = #fileID, line: Int = #line, function: String = #function) {
        guard level >= self.level else { return }
        if useJournal {
            var entries = ["MESSAGE=\(message)", "PRIORITY=\(level.priority)", "SYSLOG_IDENTIFIER=\(identifier)",
                           "CODE_FILE=\(file)", "CODE_LINE=\(line)", "CODE_FUNC=\(function)"]
            if let id { entries.append("MESSAGE_ID=\(id.rawValue)") }
            for (k, v) in fields { entries.append("\(Self.fieldName(k))=\(v)") }
            if send(entries) { return }
            fallbacks += 1
        }
        var text = "\(identifier): \(level == .info || level == .notice ? "" : "\(level.rawValue): ")\(message)"
        if level == .debug && !fields.isEmpty { text += " [" + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ") + "]" }
        text += "\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// One journal entry: the fields laid out in one byte buffer, an iovec per field.
    private func send(_ entries: [String]) -> Bool {
        let bytes = entries.reduce(0) { $0 + $1.utf8.count }
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes, 1))
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: entries.count)
        defer { buf.deallocate(); iov.deallocate() }
        var offset = 0
        for (i, e) in entries.enumerated() {
            let n = e.utf8.count
            _ = UnsafeMutableBufferPointer(start: buf + offset, count: n).initialize(from: e.utf8)
            iov[i] = iovec(iov_base: UnsafeMutableRawPointer(buf + offset), iov_len: n)
            offset += n
        }
        return sd_journal_sendv(iov, Int32(entries.count)) >= 0
    }
}

/// The fixed MESSAGE_ID of each kind of journal entry (`journalctl MESSAGE_ID=…` finds every entry
/// of a kind, whatever its text). Never change a value: dashboards and alerts key on them.
public enum MessageID: String, Sendable, CaseIterable {
    /// A detected event (SSM_EVENT, SSM_START, …).
    case event = "8a3415d7a07e40e983db53127447fcdb"
    /// Events not journaled because they came faster than `[events] journal_rate` (SSM_SUPPRESSED).
    case eventsSuppressed = "785cf715b1ff4cbb95b6075c7ddc9729"
    /// The daemon started streaming.
    case started = "f477f8971c6f4d8599ffa424704a5a36"
    /// The daemon stopped (SIGTERM/SIGINT, or the input ended).
    case stopped = "65ec27916c4d49caabbd53e1b546212a"
    /// A reload put a model in place (swapped, or the stream reopened).
    case modelLoaded = "3b1a02bec2d34939b96e17d55e791600"
    /// A reload was refused: the previous configuration and model go on.
    case modelRefused = "881bae287db44ffdade62e0724a5cce1"
    /// The source failed; retrying.
    case sourceDegraded = "1b5991958cb04105916f1cc07ab54578"
    /// The source works again (a new stream).
    case sourceRecovered = "368937a380284220a7a263976b67e293"
    /// Periodic statistics (`[log] stats_interval`).
    case statistics = "7621aeacedff4e40b8b970bb7b6196c0"
}
