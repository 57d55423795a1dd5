// Helpers of the black-box CLI tests: find the built `ssm-stream`, run it with Foundation.Process
// (pipes on stdin/stdout/stderr, a watchdog), write and read audio, parse WAV bytes by hand.

import Foundation
import Testing
import SSMIO

// MARK: - Locations

/// <package root>, from this file: <root>/Tests/CLITests/CLISupport.swift.
let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .standardizedFileURL

/// <root>/.build/debug/ssm-stream: `swift test` builds every executable product of the package
/// before it runs tests (the "test" node of .build/debug.yaml lists ssm-stream's .exe), so the
/// binary is current whenever these tests run under `swift test`.
let cliURL = packageRoot.appendingPathComponent(".build/debug/ssm-stream")

let modelPath = packageRoot.appendingPathComponent("models/lowpass-1k.safetensors").path
let noisyTonePath = packageRoot.appendingPathComponent("examples/noisy-tone.wav").path
let goldenRoot = packageRoot.appendingPathComponent("../shared/golden").standardizedFileURL.path

func requireCLI(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try #require(FileManager.default.isExecutableFile(atPath: cliURL.path),
                 "ssm-stream not found at \(cliURL.path): build it first (`swift build`); `swift test` builds it",
                 sourceLocation: sourceLocation)
}

// MARK: - Temporary directories

final class TempDir {
    let path: String
    init() {
        var template = Array((URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ssm-cli-test-XXXXXX").path).utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }
    func file(_ name: String) -> String { path + "/" + name }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

// MARK: - Running the CLI

struct CLIResult {
    var status: Int32
    var reason: Process.TerminationReason
    var stdout: [UInt8]
    var stderr: String
    var timedOut: Bool
    var exitedNormally: Bool { reason == .exit && !timedOut }
}

/// A value shared with a helper thread (joined before it is read).
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// Reads `fd` to EOF.
func readAll(fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// Runs `body` on a new thread; the returned function waits for it.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> () -> Void {
    let done = DispatchSemaphore(value: 0)
    let t = Thread { body(); done.signal() }
    t.start()
    return { done.wait() }
}

/// Writes `bytes` to `handle` from a thread that blocks SIGPIPE (so a child that exits without
/// reading everything gives EPIPE here, not a SIGPIPE that kills the test runner), then closes it.
/// SIGPIPE stays at its default disposition in this process, so children start with the default
/// too and the CLI's own SIGPIPE handling is what the closed-pipe test sees.
func feed(_ handle: FileHandle, _ bytes: [UInt8]) -> () -> Void {
    let box = Box(handle)
    return spawnThread {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let fd = box.value.fileDescriptor
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // EPIPE: the child stopped reading
            off += n
        }
        try? box.value.close()
        var zero = timespec()
        while sigtimedwait(&set, nil, &zero) == SIGPIPE {}  // consume the pending SIGPIPE, if any
    }
}

/// Whether SIGPIPE is ignored (process-wide) or blocked (this thread), from /proc/thread-self/status.
func sigpipeIgnoredOrBlockedHere() -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8) else { return false }
    let bit = UInt64(1) << UInt64(SIGPIPE - 1)
    for line in status.split(separator: "\n") where line.hasPrefix("SigIgn:") || line.hasPrefix("SigBlk:") {
        if let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16), mask & bit != 0 { return true }
    }
    return false
}

enum Stdin {
    case null
    case bytes([UInt8])
    case file(String)
}

/// The test runner's environment without what would make a child behave unlike a user's run (a
/// systemd supervisor's variables, a preloaded library, a forced OpenBLAS kernel), plus `extra`.
func childEnvironment(_ extra: [String: String]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    for key in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
                "LD_PRELOAD", "OPENBLAS_CORETYPE", "SSM_MALLOC_COUNT"] {
        env[key] = nil
    }
    return env.merging(extra) { $1 }
}

/// Runs ssm-stream with `args` in the package root. stdout and stderr are pipes read to EOF;
/// stdin is /dev/null, a pipe fed with bytes, or a file. The child is sent SIGTERM after `timeout` s:
/// a bound that catches a hang, not a speed check — a debug build's `convert` takes 10 s of CPU,
/// and a loaded 2-core machine running the suite in parallel has stretched one past 60 s of wall time.
func runCLI(_ args: [String], stdin: Stdin = .null, stdoutFile: String? = nil, timeout: Double = 300,
            environment: [String: String] = [:], executable: URL = cliURL, directory: String? = nil) throws -> CLIResult {
    if executable == cliURL { try requireCLI() }
    let p = Process()
    p.executableURL = executable
    p.arguments = args
    p.environment = childEnvironment(environment)
    p.currentDirectoryURL = directory.map { URL(fileURLWithPath: $0) } ?? packageRoot
    let outPipe = Pipe(), errPipe = Pipe()
    var outFile: FileHandle?
    if let stdoutFile {
        _ = FileManager.default.createFile(atPath: stdoutFile, contents: nil)
        outFile = try FileHandle(forUpdating: URL(fileURLWithPath: stdoutFile))
        p.standardOutput = outFile
    } else {
        p.standardOutput = outPipe
    }
    p.standardError = errPipe
    var inPipe: Pipe?, inFile: FileHandle?
    switch stdin {
    case .null: p.standardInput = FileHandle.nullDevice
    case .bytes: inPipe = Pipe(); p.standardInput = inPipe
    case .file(let path):
        inFile = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        p.standardInput = inFile
    }
    try p.run()
    try? outFile?.close()
    try? inFile?.close()
    let out = Box<[UInt8]>([]), err = Box<[UInt8]>([])
    let waitOut: () -> Void = stdoutFile == nil
        ? spawnThread { out.value = readAll(fd: outPipe.fileHandleForReading.fileDescriptor) } : {}
    let waitErr = spawnThread { err.value = readAll(fd: errPipe.fileHandleForReading.fileDescriptor) }
    var waitIn: () -> Void = {}
    if case .bytes(let b) = stdin, let inPipe { waitIn = feed(inPipe.fileHandleForWriting, b) }
    let timedOut = watchdog(p, timeout)
    waitIn(); waitOut(); waitErr()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, reason: p.terminationReason, stdout: out.value,
                     stderr: String(decoding: err.value, as: UTF8.self), timedOut: timedOut.value)
}

/// Sends SIGTERM to `p` (a child we started) if it is still running after `seconds`.
func watchdog(_ p: Process, _ seconds: Double) -> Box<Bool> {
    let fired = Box(false)
    let pid = p.processIdentifier
    let proc = Box(p)
    // Its own thread, not a Dispatch timer: with tests in parallel, every Dispatch worker of a
    // 2-core machine can be blocked in waitUntilExit, and a timer then fires only when one frees.
    Thread.detachNewThread {
        let deadline = Date().addingTimeInterval(seconds)
        while proc.value.isRunning && proc.value.processIdentifier == pid {
            if Date() >= deadline {
                fired.value = true
                kill(pid, SIGTERM)
                // A child that ignores SIGTERM must not hang the suite.
                let hard = Date().addingTimeInterval(5)
                while proc.value.isRunning && Date() < hard { usleep(50_000) }
                if proc.value.isRunning { kill(pid, SIGKILL) }
                return
            }
            usleep(50_000)
        }
    }
    return fired
}

/// Records an issue unless the CLI exited normally with `code`; shows stderr.
func expectExit(_ r: CLIResult, _ code: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!r.timedOut, "ssm-stream timed out", sourceLocation: sourceLocation)
    #expect(r.reason == .exit, "ssm-stream was killed by signal \(r.status); stderr: \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.status == code, "exit \(r.status), expected \(code); stderr: \(r.stderr)", sourceLocation: sourceLocation)
}

// MARK: - Audio

/// libsndfile's SF_FORMAT_FLAC | SF_FORMAT_PCM_16 (0x170000 | 0x0002).
let flac16Format = Int32(0x17_0002)

/// Writes mono or interleaved float samples with AudioWriter.
func writeWAV(_ path: String, rate: Int = 16000, channels: Int = 1, format: Int32 = AudioFormat.wavFloat, _ x: [Float]) throws {
    let w = try AudioWriter(path: path, format: AudioFormat(sampleRate: rate, channels: channels, format: format))
    if !x.isEmpty {
        try x.withUnsafeBufferPointer { (p) throws(IOError) in try w.write(p.baseAddress!, frames: x.count / channels) }
    }
    try w.close()
}

/// Reads a whole file with AudioReader.
func readWAV(_ path: String) throws -> (format: AudioFormat, frames: Int?, samples: [Float]) {
    let r = try AudioReader(path: path)
    var out: [Float] = []
    var buf = [Float](repeating: 0, count: 4096 * r.format.channels)
    while true {
        let n = try buf.withUnsafeMutableBufferPointer { (p) throws(IOError) in try r.read(into: p.baseAddress!, frames: 4096) }
        if n == 0 { break }
        out += buf[0..<(n * r.format.channels)]
    }
    return (r.format, r.frameCount, out)
}

func sine(_ freq: Double, seconds: Double = 2, rate: Double = 16000, amplitude: Double = 0.5) -> [Float] {
    (0..<Int(seconds * rate)).map { Float(amplitude * sin(2 * Double.pi * freq * Double($0) / rate)) }
}

func rms<C: Collection>(_ x: C) -> Double where C.Element == Float {
    (x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)).squareRoot()
}

/// A RIFF/WAVE stream parsed by hand: fmt fields and the data chunk's bytes (to the end of the
/// bytes when the data size is 0xFFFFFFFF, as in a streaming WAV).
struct WAVBytes {
    var riffSize: UInt32 = 0, formatTag: UInt16 = 0, channels: UInt16 = 0, sampleRate: UInt32 = 0
    var byteRate: UInt32 = 0, blockAlign: UInt16 = 0, bitsPerSample: UInt16 = 0
    var dataSize: UInt32 = 0
    var data: [UInt8] = []

    struct Bad: Error, CustomStringConvertible { let description: String }

    init(_ b: [UInt8]) throws {
        func u32(_ o: Int) throws -> UInt32 {
            guard o + 4 <= b.count else { throw Bad(description: "truncated at \(o)") }
            return UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
        }
        func u16(_ o: Int) throws -> UInt16 { UInt16(truncatingIfNeeded: try u32(o)) }
        func id(_ o: Int) -> String { o + 4 <= b.count ? String(decoding: b[o..<(o + 4)], as: UTF8.self) : "" }
        guard id(0) == "RIFF", id(8) == "WAVE" else { throw Bad(description: "not RIFF/WAVE: \(b.prefix(12))") }
        riffSize = try u32(4)
        var o = 12, sawFmt = false
        while o + 8 <= b.count {
            let cid = id(o), size = try u32(o + 4)
            if cid == "fmt " {
                formatTag = try u16(o + 8); channels = try u16(o + 10); sampleRate = try u32(o + 12)
                byteRate = try u32(o + 16); blockAlign = try u16(o + 20); bitsPerSample = try u16(o + 22)
                sawFmt = true
            } else if cid == "data" {
                guard sawFmt else { throw Bad(description: "data before fmt") }
                dataSize = size
                let end = size == 0xFFFF_FFFF ? b.count : min(b.count, o + 8 + Int(size))
                data = Array(b[(o + 8)..<end])
                return
            }
            o += 8 + Int(size) + Int(size & 1)
        }
        throw Bad(description: "no data chunk")
    }

    init(path: String) throws { try self.init([UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))) }

    var int16: [Int16] {
        stride(from: 0, to: data.count - 1, by: 2).map { Int16(bitPattern: UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8) }
    }
}
