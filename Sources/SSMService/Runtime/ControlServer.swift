#if canImport(Glibc)
import Glibc
#endif

/// The daemon's UNIX stream socket: clients send one command per line and read JSON Lines back
/// (protocol in the README, "Control socket"). Non-blocking throughout: a client that does not
/// read its replies or events fills its own bounded buffer and loses events (counted), and the
/// daemon never waits on it.
public final class ControlServer {
    public struct Client {
        public let fd: Int32
        var input: [UInt8] = []
        var output: [UInt8] = []
        public var subscribed = false
        public var dropped = 0
        var closing = false
        /// Dropped for not reading its replies: nothing more is sent to it.
        var cutOff = false
    }

    public let path: String?
    public let listenFD: Int32
    public let maxClients: Int
    /// Bytes a client may have waiting before events to it are dropped.
    public static let outputLimit = 256 * 1024
    public static let lineLimit = 4096
    public private(set) var clients: [Client] = []
    /// Events not delivered to slow subscribers, over all clients.
    public private(set) var droppedEvents = 0

    /// Binds `path` (creating its directory; a stale socket left by a crash is replaced, a live one
    /// refused) with permission bits `mode`.
    public init(path: String, mode: UInt32, maxClients: Int) throws(DaemonFailure) {
        self.maxClients = maxClients
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw DaemonFailure(DaemonFailure.config, "[control] socket path '\(path)' is longer than the \(MemoryLayout.size(ofValue: addr.sun_path) - 1) bytes a UNIX socket name may have")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let dir = String(path[..<slash])
            if access(dir, F_OK) != 0 && mkdir(dir, 0o755) != 0 {
                throw DaemonFailure(DaemonFailure.cantCreate, "[control] socket directory '\(dir)': \(String(cString: strerror(errno))) (create it, or set another [control] socket, or socket = \"\" for none)")
            }
        }
        try Self.checkPath(path)
        // An existing socket: refuse if a daemon answers on it, else it is stale.
        if Self.existingKind(path) == S_IFSOCK {
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let alive = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 } }
            close(probe)
            if alive { throw DaemonFailure(DaemonFailure.cantCreate, "[control] socket '\(path)' is in use: another ssm-streamd is running") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw DaemonFailure(DaemonFailure.cantCreate, "socket: \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard bound == 0, listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw DaemonFailure(DaemonFailure.cantCreate, "[control] socket '\(path)': \(why)")
        }
        chmod(path, mode_t(mode))
        self.path = path
        listenFD = fd
    }

    /// Only a socket may be replaced: anything else at `path` (a user's file, a directory) is
    /// refused (73) and left alone.
    public static func checkPath(_ path: String) throws(DaemonFailure) {
        guard let kind = existingKind(path), kind != S_IFSOCK else { return }
        let what = kind == S_IFDIR ? "a directory" : kind == S_IFREG ? "a regular file" : "not a socket"
        throw DaemonFailure(DaemonFailure.cantCreate, "[control] socket '\(path)' exists and is \(what); it is left alone: remove it, or set another [control] socket")
    }

    /// The file type bits (S_IFSOCK, S_IFREG, …) of what is at `path`, without following a
    /// symbolic link; nil when nothing is there.
    public static func existingKind(_ path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    /// Adopts a listening socket passed by systemd (socket activation).
    public init(activated fd: Int32, maxClients: Int) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        path = nil; listenFD = fd; self.maxClients = maxClients
    }

    deinit {
        for c in clients { close(c.fd) }
        close(listenFD)
        if let path, Self.existingKind(path) == S_IFSOCK { unlink(path) }
    }

    /// The descriptors to poll: the listener, then every client (POLLOUT while output waits).
    public func pollSet() -> [pollfd] {
        var set = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        for c in clients {
            // A closing client is not read again (its end of file would report POLLIN forever).
            set.append(pollfd(fd: c.fd, events: (c.closing ? 0 : Int16(POLLIN)) | (c.output.isEmpty ? 0 : Int16(POLLOUT)), revents: 0))
        }
        return set
    }

    /// Handles what poll reported for `set` (as returned by `pollSet`); returns the complete
    /// command lines received, with the index of the client each came from.
    public func service(_ set: [pollfd]) -> [(client: Int32, line: String)] {
        var commands: [(Int32, String)] = []
        if set[0].revents & Int16(POLLIN) != 0 { acceptAll() }
        for p in set.dropFirst() where p.revents != 0 {
            guard let i = clients.firstIndex(where: { $0.fd == p.fd }) else { continue }
            if !clients[i].closing && p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { readFrom(i, into: &commands) }
            if clients[i].closing && p.revents & Int16(POLLHUP | POLLERR) != 0 && p.revents & Int16(POLLOUT) == 0 {
                clients[i].output = []   // gone altogether: nothing more can reach it
            }
            if p.revents & Int16(POLLOUT) != 0 { flush(i) }
        }
        // A client that sent its request and half-closed (`echo status | socat - UNIX-CONNECT:…`)
        // is closing, but still owed its answers: `reap`, after they are sent, closes it.
        let asked = Set(commands.map(\.0))
        reap(except: asked)
        return commands
    }

    /// Closes the clients that are done: closing, with nothing left to send (call after the
    /// commands `service` returned are answered).
    public func reap(except keep: Set<Int32> = []) {
        clients.removeAll { c in
            if c.closing && c.output.isEmpty && !keep.contains(c.fd) { close(c.fd); return true }
            return false
        }
    }

    private func acceptAll() {
        while true {
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            clients.append(Client(fd: fd))
            if clients.count > maxClients {
                send(to: fd, "{\"type\":\"error\",\"message\":\"too many clients (max_clients = \(maxClients))\"}\n")
                clients[clients.count - 1].closing = true
            }
        }
    }

    /// Bytes read from one client per round: the rest waits in the kernel (poll reports it
    /// again), so a client that floods requests gets at most this many answered per round.
    public static let readLimit = 64 * 1024

    private func readFrom(_ i: Int, into commands: inout [(Int32, String)]) {
        var buf = [UInt8](repeating: 0, count: 4096)
        var taken = 0
        while taken < Self.readLimit {
            let n = read(clients[i].fd, &buf, buf.count)
            if n > 0 {
                taken += n
                clients[i].input += buf[0..<n]
                while let nl = clients[i].input.firstIndex(of: 10) {
                    if nl > Self.lineLimit { clients[i].input = Array(repeating: 0, count: Self.lineLimit + 1); break }
                    let line = String(decoding: clients[i].input[..<nl], as: UTF8.self)
                    clients[i].input.removeSubrange(...nl)
                    commands.append((clients[i].fd, line.trimmingSpaces()))
                }
                if clients[i].input.count > Self.lineLimit {
                    clients[i].input = []
                    send(to: clients[i].fd, "{\"type\":\"error\",\"message\":\"command line longer than \(Self.lineLimit) bytes\"}\n")
                    clients[i].closing = true
                    return
                }
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            // End of file or error: a last line without a newline still counts.
            if !clients[i].input.isEmpty {
                commands.append((clients[i].fd, String(decoding: clients[i].input, as: UTF8.self).trimmingSpaces()))
                clients[i].input = []
            }
            clients[i].closing = true
            clients[i].subscribed = false
            return
        }
    }

    /// Clients dropped because their replies piled up unread beyond `outputLimit`.
    public private(set) var droppedClients = 0

    private func flush(_ i: Int) {
        while !clients[i].output.isEmpty {
            let n = clients[i].output.withUnsafeBytes { write(clients[i].fd, $0.baseAddress, $0.count) }
            if n > 0 { clients[i].output.removeFirst(n); continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            clients[i].output = []; clients[i].closing = true   // gone (EPIPE)
            return
        }
    }

    /// Queues a reply to one client and tries to send it at once. A client whose unread replies
    /// would pass `outputLimit` (it sends requests and never reads) is dropped, and counted.
    public func send(to fd: Int32, _ text: String) {
        guard let i = clients.firstIndex(where: { $0.fd == fd }), !clients[i].cutOff else { return }
        let bytes = Array(text.utf8)
        if clients[i].output.count + bytes.count > Self.outputLimit {
            clients[i].output = []; clients[i].input = []
            clients[i].closing = true; clients[i].subscribed = false; clients[i].cutOff = true
            droppedClients += 1
            return
        }
        clients[i].output += bytes
        flush(i)
    }

    /// Marks a client subscribed (or not) to events.
    public func setSubscribed(_ fd: Int32, _ on: Bool) {
        if let i = clients.firstIndex(where: { $0.fd == fd }) { clients[i].subscribed = on }
    }

    /// Sends an event line to every subscriber; one whose buffer is full loses it (counted).
    public func broadcast(_ line: [UInt8]) {
        for i in clients.indices where clients[i].subscribed && !clients[i].closing {
            if clients[i].output.count + line.count > Self.outputLimit {
                clients[i].dropped += 1; droppedEvents += 1
                continue
            }
            clients[i].output += line
            flush(i)
        }
    }

    public var subscribers: Int { clients.filter(\.subscribed).count }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s.removeLast() }
        return String(s)
    }
}
