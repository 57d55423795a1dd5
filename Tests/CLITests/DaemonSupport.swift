// Helpers of the ssm-streamd black-box tests: start the daemon in the background, talk to its
// control socket, receive sd_notify datagrams, write FIFOs.

import Foundation
import Testing
import SSM
import SSMIO

let daemonURL = packageRoot.appendingPathComponent(".build/debug/ssm-streamd")

/// ssm-streamd running in the background; stderr collected.
final class RunningDaemon {
    let process = Process()
    private let err = Box<[UInt8]>([])
    private let waitErr: () -> Void
    private var finished = false

    init(_ args: [String], environment: [String: String] = [:], executable: URL = daemonURL,
         directory: String? = nil) throws {
        try #require(FileManager.default.isExecutableFile(atPath: executable.path),
                     "ssm-streamd not found at \(executable.path): `swift build` builds it")
        process.executableURL = executable
        process.arguments = args
        process.environment = childEnvironment(environment)
        process.currentDirectoryURL = directory.map { URL(fileURLWithPath: $0) } ?? packageRoot
        let errPipe = Pipe()
        process.standardError = errPipe
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let box = err
        let fd = errPipe.fileHandleForReading.fileDescriptor
        waitErr = spawnThread { box.value = readAll(fd: fd) }
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ s: Int32) { kill(pid, s) }

    /// Waits for the daemon to exit (SIGTERM after `timeout` s, SIGKILL 5 s later); its status and stderr.
    func wait(timeout: Double = 20) -> (status: Int32, stderr: String, timedOut: Bool) {
        let fired = watchdog(process, timeout)
        process.waitUntilExit()
        waitErr()
        return (process.terminationStatus, String(decoding: err.value, as: UTF8.self), fired.value)
    }

    /// SIGTERM, then `wait`.
    func stop() -> (status: Int32, stderr: String, timedOut: Bool) {
        signal(SIGTERM)
        return wait()
    }

    deinit { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
}

/// Asks the daemon on `socket` for its status until `done` holds of the answer, or `timeout` s
/// pass (a loaded machine may be slow; the wait ends as soon as the condition does). Returns the
/// last answer either way, for the caller's expectations to report.
func statusWhen(_ socket: String, timeout: Double = 30, _ done: ([String: Any]) -> Bool) throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        let s = try ControlClient(socket).ask("status")
        if done(s) || Date() > deadline { return s }
        usleep(20_000)
    }
}

/// A connection to a control socket.
final class ControlClient {
    let fd: Int32
    private var pending: [UInt8] = []

    init(_ path: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 } }
            if ok { fd = s; break }
            close(s)
            if Date() > deadline { throw TestFailure("no daemon answered on \(path) within \(timeout) s") }
            usleep(20_000)
        }
    }

    deinit { close(fd) }

    func send(_ line: String) {
        let b = Array((line + "\n").utf8)
        _ = write(fd, b, b.count)
    }

    /// The next JSON line, waiting up to `timeout` s.
    func next(timeout: Double = 30) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = pending.firstIndex(of: 10) {
                let line = Data(pending[..<nl])
                pending.removeSubrange(...nl)
                guard let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                    throw TestFailure("not a JSON object: \(String(decoding: line, as: UTF8.self))")
                }
                return o
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw TestFailure("no reply within \(timeout) s") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(left * 1000)) <= 0 { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buf, buf.count)
            if n <= 0 { throw TestFailure("the daemon closed the connection") }
            pending += buf[0..<n]
        }
    }

    /// Sends what the socket takes of `bytes` within 5 s, without blocking on a daemon that no
    /// longer reads; the bytes sent, or ≤ 0 when it takes no more. MSG_NOSIGNAL: a dropped
    /// connection must not SIGPIPE the test runner.
    func sendBytes(_ bytes: [UInt8]) -> Int {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, 5000) > 0, p.revents & Int16(POLLOUT) != 0 else { return 0 }
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
    }

    /// Everything the daemon sends until it closes the connection (or `timeout` s pass).
    func readToEnd(timeout: Double) -> [UInt8] {
        var out = pending
        pending = []
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while deadline.timeIntervalSinceNow > 0 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Sends `command` and returns the reply.
    func ask(_ command: String, timeout: Double = 10) throws -> [String: Any] {
        send(command)
        return try next(timeout: timeout)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A bound datagram socket standing in for systemd's notify socket.
final class NotifySocket {
    let path: String
    let fd: Int32

    init(_ path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 } }
        try #require(ok, "bind \(path)")
    }

    deinit { close(fd); unlink(path) }

    /// Messages received within `seconds` (or until `until` matches one).
    func receive(for seconds: Double, until: ((String) -> Bool)? = nil) -> [String] {
        var out: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        while deadline.timeIntervalSinceNow > 0 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { continue }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { continue }
            let m = String(decoding: buf[0..<n], as: UTF8.self)
            out.append(m)
            if let until, until(m) { break }
        }
        return out
    }
}

/// Writes `bytes` into the FIFO at `path` from a thread (opening blocks until the daemon reads).
func feedFIFO(_ path: String, _ bytes: [UInt8]) -> () -> Void {
    spawnThread {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { return }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { break }
            off += n
        }
        close(fd)
    }
}

/// Little-endian float32 bytes.
/// The largest |a − b| over `range`, relative to the peak of `b` there.
func relativeError(_ a: [Float], _ b: [Float], _ range: Range<Int>) -> Double {
    var err = 0.0, peak = 1e-12
    for i in range { err = max(err, Double(abs(a[i] - b[i]))); peak = max(peak, Double(abs(b[i]))) }
    return err / peak
}

/// A file of raw float32 samples (native order), as the tests' raw outputs are written.
func readF32(_ path: String) throws -> [Float] {
    try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

func f32le(_ x: [Float]) -> [UInt8] { x.withUnsafeBytes { Array($0) } }

/// 100 Hz pulses for the pass-through classifier: 0.8 for the first `on` s of every `period` s.
func pulses(seconds: Double, period: Double = 1, on: Double = 0.5, rate: Double = 100) -> [Float] {
    (0..<Int(seconds * rate)).map { i in
        let t = Double(i) / rate
        return t.truncatingRemainder(dividingBy: period) < on - 1e-9 ? 0.8 : 0
    }
}

/// Writes a daemon configuration into `dir`; returns its path.
func writeConfig(_ dir: TempDir, _ text: String, name: String = "d.toml") throws -> String {
    let p = dir.file(name)
    try text.write(toFile: p, atomically: true, encoding: .utf8)
    return p
}

/// `sha256sum FILE`'s digest (nil if it fails).
func sha256sum(_ path: String) throws -> String? {
    let r = try runCLI([path], executable: URL(fileURLWithPath: "/usr/bin/sha256sum"))
    guard r.status == 0 else { return nil }
    return String(String(decoding: r.stdout, as: UTF8.self).prefix(64))
}
