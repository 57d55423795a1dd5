// What the mutation campaign of issue 14 found, each reproduced: the release daemon (the binary
// users run) stopping on SIGTERM and ending without waiting for a timer, a control socket path
// that names a user's file, clients that half-close or never read, configurations nested
// 100,000 deep or written with CRLF, and text input 10⁶ channels wide.

import Foundation
import Testing
import SSMIO

/// The release daemon: test.sh builds it (the SIGTERM hang was a release-only defect).
let releaseDaemon = packageRoot.appendingPathComponent(".build/release/ssm-streamd")

@Suite("bad input and hostile clients (issue 14)")
struct HostileInputTests {
    static let lowpass = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path

    private func requireRelease() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseDaemon.path),
                     "no release daemon at \(releaseDaemon.path): run ./test.sh, or swift build -c release --product ssm-streamd")
    }

    /// A file-source filter configuration (the example tone into out.wav unless told otherwise);
    /// `extra` goes at the end (in [log]).
    private func fileConfig(_ dir: TempDir, atEnd: String, socket: String, source: String = noisyTonePath,
                            output: String = "out.wav", extra: String = "") throws -> String {
        try writeConfig(dir, """
        model = "\(Self.lowpass)"
        [source]
        type = "file"
        path = "\(source)"
        at_end = "\(atEnd)"
        [output]
        type = "file"
        path = "\(output)"
        [control]
        socket = "\(socket)"
        [log]
        target = "stderr"
        status_interval = 60
        \(extra)
        """)
    }

    @Test("the release daemon stops on SIGTERM and SIGINT: after the input ended (idle), on a FIFO with no writer, after a reload", arguments: [SIGTERM, SIGINT])
    func stopsOnSignal(_ sig: Int32) throws {
        try requireRelease()
        let dir = TempDir()
        let idle = try RunningDaemon(["-c", try fileConfig(dir, atEnd: "idle", socket: "ctl.sock")], executable: releaseDaemon)
        _ = try statusWhen(dir.file("ctl.sock")) { $0["state"] as? String == "ended" }
        idle.signal(sig)
        let r = idle.wait(timeout: 20)
        #expect(!r.timedOut && r.status == 0, "idle daemon after signal \(sig): exit \(r.status), timed out \(r.timedOut); \(r.stderr)")
        #expect(r.stderr.contains("stopping on \(sig == SIGTERM ? "SIGTERM" : "SIGINT")"), "\(r.stderr)")

        let fifo = dir.file("in.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let cfg = try writeConfig(dir, """
        model = "\(Self.lowpass)"
        [source]
        type = "pipe"
        path = "in.fifo"
        format = "f32le"
        rate = 16000
        channels = 1
        [output]
        type = "none"
        [control]
        socket = "ctl2.sock"
        [log]
        target = "stderr"
        status_interval = 60
        """, name: "fifo.toml")
        let live = try RunningDaemon(["-c", cfg], executable: releaseDaemon)
        _ = try statusWhen(dir.file("ctl2.sock")) { $0["state"] as? String == "running" }
        let reload = try ControlClient(dir.file("ctl2.sock")).ask("reload")
        #expect(reload["ok"] as? Bool == true, "\(reload)")
        live.signal(sig)
        let l = live.wait(timeout: 20)
        #expect(!l.timedOut && l.status == 0, "FIFO daemon after reload and signal \(sig): exit \(l.status), timed out \(l.timedOut); \(l.stderr)")
    }

    @Test("at_end = \"exit\" ends the daemon when the input ends, not at the next status timer (60 s here)")
    func exitsAtEnd() throws {
        try requireRelease()
        let dir = TempDir()
        let d = try RunningDaemon(["-c", try fileConfig(dir, atEnd: "exit", socket: "")], executable: releaseDaemon)
        let r = d.wait(timeout: 30)
        #expect(!r.timedOut && r.status == 0, "exit \(r.status), timed out \(r.timedOut); \(r.stderr)")
        #expect(try readWAV(dir.file("out.wav")).samples.count == 32000)
    }

    @Test("a reload that changes nothing is answered without waiting for a timer (20 in a row, within 15 s)")
    func quickReload() throws {
        try requireRelease()
        let dir = TempDir()
        let d = try RunningDaemon(["-c", try fileConfig(dir, atEnd: "idle", socket: "ctl.sock")], executable: releaseDaemon)
        _ = try statusWhen(dir.file("ctl.sock")) { $0["state"] as? String == "ended" }
        let c = try ControlClient(dir.file("ctl.sock"))
        let t0 = Date()
        for i in 0..<20 {
            let r = try c.ask("reload")
            #expect(r["ok"] as? Bool == true, "reload \(i): \(r)")
        }
        // With the reload's wakeup lost each reload waited 1 s for its timer (20 s in all).
        #expect(Date().timeIntervalSince(t0) < 15, "20 reloads took \(Date().timeIntervalSince(t0)) s")
        #expect(d.stop().status == 0)
    }

    @Test("a control socket path naming a regular file or a directory is refused (73, --check too) and left alone")
    func socketPathIsAFile() throws {
        let dir = TempDir()
        try "my notes\n".write(toFile: dir.file("notes.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.file("adir"), withIntermediateDirectories: false)
        for name in ["notes.txt", "adir"] {
            let cfg = try fileConfig(dir, atEnd: "exit", socket: name)
            let check = try runCLI(["--check", "-c", cfg], executable: daemonURL)
            expectExit(check, 73)
            #expect(check.stderr.contains("'\(dir.file(name))' exists and is"), "\(check.stderr)")
            let d = try RunningDaemon(["-c", cfg])
            let r = d.wait(timeout: 30)
            #expect(r.status == 73, "start with socket = \(name): exit \(r.status); \(r.stderr)")
            #expect(r.stderr.contains("left alone"), "\(r.stderr)")
        }
        #expect(try String(contentsOfFile: dir.file("notes.txt"), encoding: .utf8) == "my notes\n")
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: dir.file("adir"), isDirectory: &isDir) && isDir.boolValue)
    }

    @Test("--check refuses what a start would: a missing (66), directory (66) or empty (65) source, an output in a missing directory or /dev/full (73)")
    func checkAsStart() throws {
        let dir = TempDir()
        _ = FileManager.default.createFile(atPath: dir.file("empty.wav"), contents: Data())
        for (source, output, code, fragment) in [("missing.wav", "out.wav", Int32(66), "No such file"), (dir.path, "out.wav", 66, "is a directory"),
                                                 ("empty.wav", "out.wav", 65, "is empty"), (noisyTonePath, "nodir/out.wav", 73, "does not exist"),
                                                 (noisyTonePath, "/dev/full", 73, "refuses every write")] {
            let c = try fileConfig(dir, atEnd: "exit", socket: "", source: source, output: output)
            let check = try runCLI(["--check", "-c", c], executable: daemonURL)
            expectExit(check, code)
            #expect(check.stderr.contains(fragment), "\(source) → \(output): \(check.stderr)")
            let start = try RunningDaemon(["-c", c]).wait(timeout: 30)
            #expect(start.status == code, "start with \(source) → \(output): exit \(start.status); \(start.stderr)")
        }
    }

    @Test("a client that sends its request and half-closes gets its answer (socat, as the README suggests)")
    func halfClose() throws {
        let socat = ["/usr/bin/socat", "/bin/socat"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let path = try #require(socat, "socat is missing (scripts/install-deps.sh installs it)")
        try requireRelease()
        let dir = TempDir()
        let d = try RunningDaemon(["-c", try fileConfig(dir, atEnd: "idle", socket: "ctl.sock")], executable: releaseDaemon)
        _ = try statusWhen(dir.file("ctl.sock")) { $0["state"] as? String == "ended" }
        // Deterministically: the request and the end of file are both waiting before the daemon
        // first reads the connection (it accepts in one poll round and reads in the next).
        let raw = try ControlClient(dir.file("ctl.sock"))
        #expect(raw.sendBytes(Array("status\n".utf8)) == 7)
        shutdown(raw.fd, Int32(SHUT_WR))
        let answer = raw.readToEnd(timeout: 30)
        #expect((try jsonLines(answer)).first?["type"] as? String == "status", "\(String(decoding: answer, as: UTF8.self))")
        // socat waits up to -t s after its end of file for the daemon to close: the daemon must
        // close once it has answered, not leave the client waiting for the timeout.
        let t0 = Date()
        let r = try runCLI(["-t", "30", "-", "UNIX-CONNECT:" + dir.file("ctl.sock")], stdin: .bytes(Array("status\nping\n".utf8)),
                           executable: URL(fileURLWithPath: path))
        expectExit(r, 0)
        #expect(Date().timeIntervalSince(t0) < 15, "the daemon kept the half-closed connection open")
        let replies = try jsonLines(r.stdout)
        #expect(replies.map { $0["type"] as? String } == ["status", "pong"], "\(replies)")
        #expect(d.stop().status == 0)
    }

    @Test("a client that floods requests and never reads is disconnected at the reply limit; the daemon's memory stays bounded")
    func floodingClient() throws {
        let dir = TempDir()
        let d = try RunningDaemon(["-c", try fileConfig(dir, atEnd: "idle", socket: "ctl.sock")])
        _ = try statusWhen(dir.file("ctl.sock")) { $0["state"] as? String == "ended" }
        func rssKiB() -> Int {
            let text = (try? String(contentsOfFile: "/proc/\(d.pid)/status", encoding: .utf8)) ?? ""
            let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        let before = rssKiB()
        let flood = try ControlClient(dir.file("ctl.sock"))
        // 1.4 MB of requests, none of whose replies is read.
        let chunk = Array(String(repeating: "status\n", count: 2000).utf8)
        var sent = 0
        while sent < 1_400_000 {
            let n = flood.sendBytes(chunk)
            if n <= 0 { break }   // the daemon stopped reading or dropped us
            sent += n
        }
        let s = try statusWhen(dir.file("ctl.sock")) { ($0["clients_dropped"] as? Int ?? 0) >= 1 }
        #expect(s["clients_dropped"] as? Int == 1, "\(s)")
        let grown = rssKiB() - before
        #expect(grown < 32 * 1024, "RSS grew by \(grown) KiB")
        #expect(d.stop().status == 0)
    }

    @Test("a model that overflows (3.4e38 input through the lowpass) writes no NaN/Inf: replaced by 0 with a warning, an error with --strict; the daemon counts it and logs it once")
    func nonFiniteOutput() throws {
        let dir = TempDir()
        let x = (0..<16000).map { i in Float(i % 2 == 0 ? 3.4e38 : -3.4e38) }
        try writeWAV(dir.file("huge.wav"), format: AudioFormat.wavFloat, x)
        let r = try runCLI(["run", "-q", Self.lowpass, dir.file("huge.wav"), dir.file("o.wav")])
        expectExit(r, 0)
        #expect(r.stderr.contains("NaN/Inf output value(s)"), "\(r.stderr)")
        let y = try readWAV(dir.file("o.wav")).samples
        #expect(y.count == 16000 && y.allSatisfy { $0.isFinite }, "\(y.filter { !$0.isFinite }.count) non-finite samples written")
        let strict = try runCLI(["run", "--strict", Self.lowpass, dir.file("huge.wav"), dir.file("o2.wav")])
        expectExit(strict, 65)
        #expect(strict.stderr.contains("produced NaN or Inf"), "\(strict.stderr)")

        let cfg = try fileConfig(dir, atEnd: "idle", socket: "ctl.sock", source: "huge.wav", output: "o3.wav")
        let d = try RunningDaemon(["-c", cfg])
        let s = try statusWhen(dir.file("ctl.sock")) { $0["state"] as? String == "ended" }
        #expect((s["non_finite_output"] as? Int ?? 0) > 0, "\(s)")
        let stopped = d.stop()
        #expect(stopped.status == 0)
        #expect(stopped.stderr.components(separatedBy: "produced NaN/Inf output").count == 2, "\(stopped.stderr)")
        #expect(try readWAV(dir.file("o3.wav")).samples.allSatisfy { $0.isFinite })
    }

    @Test("a configuration nested 100,000 deep is refused with a message, not a crash (--check and a start); CRLF lines parse")
    func deepAndCRLFConfig() throws {
        let dir = TempDir()
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        for text in ["x = \(deep)\nmodel = \"\(Self.lowpass)\"\n", "model = \"\(Self.lowpass)\"\n[events]\nignore = \(deep)\n"] {
            let cfg = try writeConfig(dir, text)
            for args in [["--check", "-c", cfg], ["-c", cfg]] {
                let r = try runCLI(args, executable: daemonURL)
                expectExit(r, 78)
                #expect(r.stderr.contains("nested more than 32 deep"), "\(r.stderr.prefix(300))")
            }
        }
        let lf = try fileConfig(dir, atEnd: "exit", socket: "")
        let text = try String(contentsOfFile: lf, encoding: .utf8).replacingOccurrences(of: "\n", with: "\r\n")
        let cfg = try writeConfig(dir, text, name: "crlf.toml")
        expectExit(try runCLI(["--check", "-c", cfg], executable: daemonURL), 0)
        let nul = try writeConfig(dir, "model = \"\(Self.lowpass)\"\n\u{0}x = 1\n", name: "nul.toml")
        let r = try runCLI(["--check", "-c", nul], executable: daemonURL)
        expectExit(r, 78)
        #expect(r.stderr.contains("NUL byte"), "\(r.stderr)")
    }

    @Test("text input 10⁶ channels wide is refused before anything is allocated for them (65), with and without --per-channel")
    func wideText() throws {
        let dir = TempDir()
        let row = Array(repeating: "0.1", count: 1_000_000).joined(separator: ",")
        try (row + "\n" + row + "\n").write(toFile: dir.file("wide.csv"), atomically: true, encoding: .utf8)
        for extra in [["--per-channel"], []] {
            let r = try runCLI(["run", Self.lowpass, dir.file("wide.csv"), dir.file("o.csv"), "--input-format", "text", "--rate", "16000"] + extra)
            expectExit(r, 65)
            #expect(r.stderr.contains("line 1 is longer than the 262144 bytes"), "\(r.stderr)")
        }
        // A 64 MiB line is refused (the reader keeps at most 256 KiB of it in memory).
        let huge = dir.file("huge.txt")
        let fd = open(huge, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let chunk = [UInt8](repeating: UInt8(ascii: "7"), count: 1 << 20)
        for _ in 0..<64 { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        close(fd)
        let big = try runCLI(["run", Self.lowpass, huge, dir.file("o3.csv"), "--input-format", "text", "--rate", "16000"])
        expectExit(big, 65)
        #expect(big.stderr.contains("line 1 is longer than"), "\(big.stderr)")
        try "1\n0x10\n".write(toFile: dir.file("hex.txt"), atomically: true, encoding: .utf8)
        let hex = try runCLI(["run", Self.lowpass, dir.file("hex.txt"), dir.file("h.csv"), "--input-format", "text", "--rate", "16000"])
        expectExit(hex, 65)
        #expect(hex.stderr.contains("line 2: '0x10' is not a number"), "\(hex.stderr)")
        let narrow = Array(repeating: "0.1", count: 5000).joined(separator: " ")
        try (narrow + "\n").write(toFile: dir.file("w2.txt"), atomically: true, encoding: .utf8)
        let r = try runCLI(["run", Self.lowpass, dir.file("w2.txt"), dir.file("o2.csv"), "--input-format", "text", "--rate", "16000", "--per-channel"])
        expectExit(r, 65)
        #expect(r.stderr.contains("5000 values, more than the 1024 channels"), "\(r.stderr)")
    }
}

@Suite("messages that name the real problem (issue 14)")
struct HonestMessageTests {
    @Test("a model path that is a device, a FIFO or a directory says so (67), in inspect, run and the daemon's --check")
    func modelNotAFile() throws {
        let dir = TempDir()
        let fifo = dir.file("m.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, what) in [("/dev/zero", "a character device"), ("/dev/null", "a character device"), (fifo, "a FIFO"), (dir.path, "a directory")] {
            for args in [["inspect", path], ["run", path, noisyTonePath, dir.file("o.wav")]] {
                let r = try runCLI(args, timeout: 30)
                expectExit(r, 67)
                #expect(r.stderr.contains("'\(path)' is \(what), not a model file"), "\(args): \(r.stderr)")
            }
            let cfg = try writeConfig(dir, "model = \"\(path)\"\n[source]\ntype = \"file\"\npath = \"\(noisyTonePath)\"\n")
            let r = try runCLI(["--check", "-c", cfg], timeout: 30, executable: daemonURL)
            expectExit(r, 67)
            #expect(r.stderr.contains("is \(what), not a model file"), "\(r.stderr)")
        }
    }

    @Test("bad architecture or system JSON names what and where, not Foundation's 'not valid JSON at top level'; 100,000-deep nesting is refused")
    func jsonMessages() throws {
        let dir = TempDir()
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        for (text, fragment) in [("{\"family\": \"s4d\",, }", "expected a string key, found character ',' at byte 17"),
                                 (deep, "nesting deeper than 64 levels")] {
            try text.write(toFile: dir.file("a.json"), atomically: true, encoding: .utf8)
            let r = try runCLI(["init", dir.file("a.json"), "-o", dir.file("m.safetensors")])
            expectExit(r, 65)
            #expect(r.stderr.contains(fragment) && !r.stderr.contains("at top level"), "\(r.stderr)")
            let d = try runCLI(["design", "statespace", dir.file("a.json"), "--rate", "16000", "-o", dir.file("s.safetensors")])
            expectExit(d, 65)
            #expect(d.stderr.contains(fragment), "\(d.stderr)")
        }
    }
}
