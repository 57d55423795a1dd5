// ssm-streamd for an operator: per-block timing and the real-time factor in `status`; the
// `stats`, `model` and `reset` commands; events rate-limited in the journal (one entry counting
// what was left out); the Prometheus textfile.

import Foundation
import Testing
import SSM
import SSMIO

@Suite("ssm-streamd: operations", .serialized)
struct DaemonOpsTests {
    @Test("status has block times and the real-time factor; stats counts events by class; model names the file's SHA-256; reset answers; journal entries are rate-limited into one that counts the rest; the metrics file is valid Prometheus text")
    func operations() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        // 20 pulses in 10 s at 100 Hz: 20 "up" events, 2 a second of stream (the limit counts in
        // seconds of stream, not of wall time: a file read at full speed is not a flood).
        try f32le(pulses(seconds: 10, period: 0.5, on: 0.25)).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("p.raw"))) }
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "file"
        path = "p.raw"
        format = "f32le"
        rate = 100
        channels = 1
        at_end = "idle"
        [events]
        journal_rate = 0.5
        [metrics]
        file = "m.prom"
        interval = 0.2
        [control]
        socket = "ctl.sock"
        [log]
        target = "stderr"
        """)
        let d = try RunningDaemon(["-c", cfg])
        let sock = dir.file("ctl.sock")
        let status = try statusWhen(sock) { $0["state"] as? String == "ended" && $0["events"] as? Int == 20 }
        #expect(status["events"] as? Int == 20, "\(status)")
        for k in ["block_p50", "block_p99", "block_max", "rtf", "speed"] {
            #expect((status[k] as? Double ?? -1) > 0, "\(k): \(status)")
        }
        let p50 = status["block_p50"] as? Double ?? 0, p99 = status["block_p99"] as? Double ?? 0, mx = status["block_max"] as? Double ?? 0
        #expect(p50 <= p99 && p99 <= mx, "\(status)")
        #expect((status["blocks_1m"] as? Int ?? 0) >= 4, "1000 frames in blocks of 256: \(status)")

        let c = try ControlClient(sock)
        let stats = try c.ask("stats")
        #expect(stats["type"] as? String == "stats" && stats["frames"] as? Int == 1000, "\(stats)")
        #expect((stats["events_by_class"] as? [String: Any])?["up"] as? Int == 20, "\(stats)")
        let m = try c.ask("model")
        let sha = try #require(try sha256sum(model))
        #expect(m["sha256"] as? String == sha, "\(m)")
        #expect(m["task"] as? String == "classify" && m["labels"] as? String == "up,down" && (m["parameters"] as? Int ?? 0) > 0, "\(m)")
        #expect(m["state_bytes"] as? Int == 8, "\(m)")
        let reset = try c.ask("reset")
        #expect(reset["type"] as? String == "reset" && reset["ok"] as? Bool == false, "nothing runs once the input ended: \(reset)")

        // The journal (stderr here) got the first events up to the rate, then one entry for the rest.
        let suppressed = try statusWhen(sock) { ($0["journal_suppressed_events"] as? Int ?? 0) > 0 }["journal_suppressed_events"] as? Int ?? 0
        #expect(suppressed == 15, "20 events at 0, 0.5 … 9.5 s of stream, one token at first and one more every 2 s: 5 journaled")
        // The metrics file, rewritten every 0.2 s.
        var prom = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            prom = (try? String(contentsOfFile: dir.file("m.prom"), encoding: .utf8)) ?? ""
            if prom.contains("ssm_streamd_events_total{class=\"up\"} 20") && prom.contains("ssm_streamd_journal_suppressed_events_total \(suppressed)") { break }
            usleep(50_000)
        }
        #expect(prom.contains("ssm_streamd_frames_total 1000"), "\(prom)")
        #expect(prom.contains("ssm_streamd_events_total{class=\"up\"} 20"), "\(prom)")
        #expect(prom.contains("ssm_streamd_journal_suppressed_events_total \(suppressed)"), "\(prom)")
        #expect(prom.contains("ssm_streamd_info{") && prom.contains("sha256=\"\(sha)\""), "\(prom)")
        let sample = try NSRegularExpression(pattern: #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.]+(e[-+]?[0-9]+)?|NaN)$"#)
        for line in prom.split(separator: "\n") where !line.hasPrefix("#") {
            let l = String(line)
            #expect(sample.firstMatch(in: l, range: NSRange(l.startIndex..., in: l)) != nil, "not a Prometheus sample line: \(l)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("m.prom.tmp")))

        let r = d.stop()
        #expect(r.status == 0, "\(r.stderr)")
        let eventLines = r.stderr.split(separator: "\n").filter { $0.contains("up on channel 0") }.count
        #expect(eventLines + suppressed == 20, "\(eventLines) journaled + \(suppressed) left out: \(r.stderr)")
        #expect(r.stderr.contains("not journaled: they came faster than [events] journal_rate"), "\(r.stderr)")
    }

    @Test("reset zeroes the running stream's state between two blocks: the output from the reported frame on equals the model from rest on the rest of the input")
    func reset() throws {
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "file"
        path = "\(noisyTonePath)"
        realtime = true
        [output]
        type = "file"
        path = "out.wav"
        encoding = "f32"
        [control]
        socket = "ctl.sock"
        [log]
        target = "stderr"
        """)
        let d = try RunningDaemon(["-c", cfg])
        let sock = dir.file("ctl.sock")
        _ = try statusWhen(sock) { ($0["frames"] as? Int ?? 0) >= 1600 }
        let reply = try ControlClient(sock).ask("reset")
        #expect(reply["ok"] as? Bool == true, "\(reply)")
        let s = try statusWhen(sock) { $0["resets"] as? Int == 1 }
        let at = try #require(s["last_reset_frame"] as? Int, "\(s)")
        let r = d.wait(timeout: 60)
        #expect(r.status == 0 && r.stderr.contains("recurrent state reset (control socket)"), "\(r.stderr)")
        let input = try readWAV(noisyTonePath).samples
        try writeWAV(dir.file("tail.wav"), Array(input[at...]))
        expectExit(try runCLI(["run", "-q", "--encoding", "f32", model, noisyTonePath, dir.file("a.wav")]), 0)
        expectExit(try runCLI(["run", "-q", model, dir.file("tail.wav"), dir.file("b.wav")]), 0)
        let out = try readWAV(dir.file("out.wav")).samples
        let a = try readWAV(dir.file("a.wav")).samples, b = try readWAV(dir.file("b.wav")).samples
        #expect(out.count == input.count && at >= 1600 && at < input.count, "\(at)")
        #expect(relativeError(out, a, 0..<at) < 1e-5)
        #expect(relativeError(Array(out[at...]), b, 0..<b.count) < 1e-5)
    }
}
