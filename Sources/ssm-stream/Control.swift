import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's control socket, from the command line: `status`, `events`, `reload`.
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: "The daemon's control socket (default: $SSM_STREAMD_SOCKET, else /run/ssm-streamd/control.sock).")
    var socket: String?

    var path: String { socket ?? ProcessInfo.processInfo.environment["SSM_STREAMD_SOCKET"] ?? "/run/ssm-streamd/control.sock" }

    /// Connects, sends `command`, and hands each JSON line received to `line` until it returns false.
    func session(_ command: String, _ line: (String) throws -> Bool) throws {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ExitCode(ExitStatus.ioError) }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            warn("ssm-stream: socket path '\(path)' is too long"); throw ExitCode(ExitStatus.usage)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 } }
        guard ok else {
            let why = String(cString: strerror(errno))
            warn("ssm-stream: cannot reach ssm-streamd at '\(path)': \(why) (is it running? `systemctl status ssm-streamd`; another socket: --socket PATH)")
            throw ExitCode(ExitStatus.unavailable)
        }
        let msg = Array((command + "\n").utf8)
        guard write(fd, msg, msg.count) == msg.count else { throw ExitCode(ExitStatus.ioError) }
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                warn("ssm-stream: ssm-streamd closed the connection"); throw ExitCode(ExitStatus.ioError)
            }
            pending += buf[0..<n]
            while let nl = pending.firstIndex(of: 10) {
                let text = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                if try !line(text) { return }
            }
        }
    }
}

func jsonObject(_ line: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a running ssm-streamd is doing.",
        discussion: """
        Exits 69 when no daemon answers on the socket.

        Examples:
          ssm-stream status
          ssm-stream status --socket ./control.sock
          ssm-stream status --json | jq .load
        """)

    @OptionGroup var socket: SocketOption

    @Flag(help: "Print the daemon's status object (one JSON line) as it is.")
    var json = false

    func run() throws {
        try socket.session("status") { line in
            if json { print(line); return false }
            guard let o = jsonObject(line) else { print(line); return false }
            func v(_ k: String) -> String {
                guard let x = o[k] else { return "-" }
                if let d = x as? Double, d != d.rounded() { return String(format: "%.3f", d) }
                return "\(x)"
            }
            print("ssm-streamd \(v("version")), pid \(v("pid")): \(v("state")), up \(clock(o["uptime"] as? Double ?? 0))")
            print("  model   \(v("model")) (\(v("task")), \(v("families")), \(v("mode")) mode, blocks of \(v("block")), \(v("state_bytes")) bytes of state)")
            print("  source  \(v("source")) at \(v("input_rate")) Hz × \(v("input_channels"))  → \(v("output"))")
            print("  input   \(v("frames")) frames (\(clock(o["seconds"] as? Double ?? 0))), engine load \(v("load")) of real time")
            print("  events  \(v("events")) (dropped: \(v("ring_dropped_events")) in the engine ring, \(v("socket_dropped_events")) to slow clients), \(v("subscribers")) subscriber(s)")
            print("  health  \(v("dropped_frames")) frame(s) dropped, \(v("xruns")) xrun(s), \(v("non_finite")) NaN/Inf replaced, \(v("reloads")) reload(s)")
            if let how = o["last_reload"] as? String {
                let ago = clock(o["last_reload_ago"] as? Double ?? 0)
                print("  reload  last \(ago) ago: \(how)" + ((o["last_reload_error"] as? String).map { " (\($0))" } ?? ""))
            }
            if let e = o["last_error"] as? String { print("  last error: \(e)") }
            return false
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a running ssm-streamd's events as they happen (JSON Lines).",
        discussion: """
        Examples:
          ssm-stream events
          ssm-stream events --count 1 --socket ./control.sock
          ssm-stream events | jq -r 'select(.class == "seven") | .start'
        """)

    @OptionGroup var socket: SocketOption

    @Option(help: "Exit after this many events (default: run until interrupted).")
    var count: Int?

    func run() throws {
        var seen = 0
        try socket.session("subscribe") { line in
            guard let o = jsonObject(line), let type = o["type"] as? String else { print(line); return true }
            if type == "error" { warn("ssm-stream: \(o["message"] ?? line)"); throw ExitCode(ExitStatus.failure) }
            guard type == "event" else { return true }
            print(line)
            fflush(nil)
            seen += 1
            return count.map { seen < $0 } ?? true
        }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a running ssm-streamd re-read its configuration and model (like SIGHUP).",
        discussion: """
        A configuration or model that does not load is refused (exit 1) and the daemon keeps the \
        one it runs. When only the model changed (same rate, channels and classes), the engine \
        switches to it between two blocks and the source stays open: no sample is lost, and the \
        new model starts from its zero state. Any other change reopens the source.

        Examples:
          ssm-stream reload
          ssm-stream reload --socket ./control.sock
          sudo systemctl reload ssm-streamd
        """)

    @OptionGroup var socket: SocketOption

    func run() throws {
        try socket.session("reload") { line in
            guard let o = jsonObject(line) else { print(line); return false }
            if o["ok"] as? Bool == true {
                print(o["state"] as? String == "opening"
                      ? "reload accepted: configuration and model are valid; the source is still opening (e.g. a FIFO waiting for its writer)"
                      : o["reload"] as? String == "swapped"
                      ? "reloaded: the new model took over between two blocks, the source stayed open (no sample lost)"
                      : "reloaded (the source was reopened)")
                return false
            }
            warn("ssm-stream: reload refused: \(o["message"] ?? line) (the daemon keeps its previous configuration)")
            throw ExitCode(ExitStatus.failure)
        }
    }
}
