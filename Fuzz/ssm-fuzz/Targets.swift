// libFuzzer entry points for every parser that reads untrusted bytes. One binary, the target
// chosen by $SSM_FUZZ_TARGET (scripts/fuzz.sh sets it): each input goes through the same code a
// user's file does, and any crash, hang, leak or ASan report is a finding. Built only with
// SSM_FUZZ=1 (see Package.swift): libFuzzer supplies `main`.

import SSM
import SSMIO
import SSMService
import SSMStreaming
#if canImport(Glibc)
import Glibc
#endif

/// The parsers under test.
enum Target: String, CaseIterable {
    /// A model file: safetensors header and data, then the architecture and the tensors.
    case safetensors
    /// The architecture JSON of `init` and of a model's metadata.
    case architecture
    /// The system JSON of `design statespace`, realized as a model.
    case statespace
    /// The daemon's TOML configuration and its checks.
    case config
    /// Text frames (CSV, whitespace-separated sensor logs).
    case text
    /// Any audio container libsndfile reads, and raw s16le.
    case audio
    /// The control socket: the input is what a client sends before it half-closes, through the
    /// daemon's ControlServer (line splitting, limits, replies, closing) and command parser.
    case control
}

nonisolated(unsafe) private var target = Target.safetensors
nonisolated(unsafe) private var scratch = ""
nonisolated(unsafe) private let frames = UnsafeMutablePointer<Float>.allocate(capacity: 4096 * 1024)

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = getenv("SSM_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = Target(rawValue: name) else {
        let names = Target.allCases.map(\.rawValue).joined(separator: ", ")
        let message = Array("ssm-fuzz: set SSM_FUZZ_TARGET to one of: \(names)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(64)
    }
    target = t
    if t == .control { server = makeServer() }
    // Inputs that must be files (libsndfile, stdio) go through one scratch file in memory.
    scratch = "/dev/shm/ssm-fuzz-\(getpid())"
    return 0
}

nonisolated(unsafe) private var server: ControlServer?

/// A listening socket in the abstract namespace, adopted as if systemd had passed it.
private func makeServer() -> ControlServer {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let name = Array("ssm-fuzz-\(getpid())".utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in name.enumerated() { p[i + 1] = b } }
    let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    listen(fd, 16)
    listenAddress = (addr, len)
    return ControlServer(activated: fd, maxClients: 4)
}
nonisolated(unsafe) private var listenAddress: (sockaddr_un, socklen_t)?

/// One client: connects, sends `bytes`, half-closes; the server answers every line until it has
/// closed the connection (or 200 rounds pass, which would be a hang).
private func control(_ bytes: [UInt8]) {
    guard let server, var (addr, len) = listenAddress else { return }
    let c = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(c) }
    guard withUnsafePointer(to: &addr, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, len) } }) == 0 else { return }
    _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
    var sent = 0, halfClosed = false
    var junk = [UInt8](repeating: 0, count: 65536)
    for _ in 0..<200 {
        if sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n }
        }
        if sent == bytes.count && !halfClosed { shutdown(c, Int32(SHUT_WR)); halfClosed = true }
        var set = server.pollSet()
        _ = poll(&set, nfds_t(set.count), 10)
        for (fd, line) in server.service(set) {
            let command = ControlCommand(line: line)
            server.send(to: fd, command.reply ?? "{\"type\":\"status\"}\n")
        }
        server.reap()
        while recv(c, &junk, junk.count, Int32(MSG_DONTWAIT)) > 0 {}
        if sent == bytes.count && server.clients.isEmpty { return }
    }
    fatalError("the control server did not close a half-closed client within 200 rounds")
}

/// Writes `bytes` to the scratch file; its path.
private func file(_ bytes: [UInt8]) -> String {
    let fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    if fd >= 0 {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
    return scratch
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch target {
    case .safetensors:
        if let parsed = try? ModelFile.parse(bytes), let model = try? Model(spec: parsed.spec, tensors: parsed.tensors) {
            // A model that loads must also run: a few samples through its step.
            let s = model.spec
            let state = model.makeState(maxBlock: 4)
            var x = [Float](repeating: 0.5, count: s.dInput), y = [Float](repeating: 0, count: s.dOutput)
            for _ in 0..<4 { model.step(&x, &y, state: state) }
        }
    case .architecture:
        if let spec = try? ModelFile.decodeSpec(String(decoding: bytes, as: UTF8.self)) {
            _ = spec.blocks.count
        }
    case .statespace:
        if let u = try? UserSystem.parse(bytes) { _ = try? StateSpaceRealization.realize(u) }
    case .config:
        _ = try? DaemonConfig.parse(String(decoding: bytes, as: UTF8.self), path: "/nonexistent/fuzz.toml")
    case .text:
        if let r = try? TextReader(path: file(bytes), sampleRate: 16000) {
            while let n = try? r.read(into: frames, frames: 256), n > 0 {}
        }
    case .audio:
        let path = file(bytes)
        if let r = try? AudioReader(path: path) {
            while let n = try? r.read(into: frames, frames: 256), n > 0 {}
        }
        if let r = try? AudioReader(path: path, raw: .s16le, sampleRate: 16000, channels: 2) {
            while let n = try? r.read(into: frames, frames: 256), n > 0 {}
        }
    case .control:
        control(bytes)
    }
    return 0
}

/// libFuzzer's driver (compiler-rt), run from the executable's entry point: SwiftPM links an
/// executable target's `main` to `<module>_main`, so the harness provides that.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("ssm_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in testOneInput(data, size) }
}
