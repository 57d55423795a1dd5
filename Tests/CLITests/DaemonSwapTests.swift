// ssm-streamd's reload without a lost sample, paced and looped file sources, and --set: black-box
// tests of the daemon built by `swift build`, its output checked sample by sample against
// `ssm-stream run` on the same input.

import Foundation
import Testing
import SSM
import SSMIO

@Suite("ssm-streamd: model swap, realtime, loop, --set", .serialized)
struct DaemonSwapTests {
    static let lowpass8 = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
    static let bandpass = packageRoot.appendingPathComponent("models/cheby1-bandpass-300-3400.safetensors").path

    @Test("reload with a new filter model mid-stream: it takes over between two blocks, the source stays open, the output has exactly the input's frames and equals the old model before the switch and the new one (from its zero state) after it")
    func swapFilter() throws {
        let dir = TempDir()
        // Three times the 2-s tone through `loop`, paced at its rate (6 s): time to reload mid-stream.
        func config(_ model: String) -> String {
            """
            model = "\(model)"
            [source]
            type = "file"
            path = "\(noisyTonePath)"
            realtime = true
            loop = true
            duration = 6
            [output]
            type = "file"
            path = "out.wav"
            encoding = "f32"
            [control]
            socket = "ctl.sock"
            [log]
            target = "stderr"
            """
        }
        let cfg = try writeConfig(dir, config(Self.lowpass8))
        let started = Date()
        let d = try RunningDaemon(["-c", cfg])
        let sock = dir.file("ctl.sock")
        // Paced: never ahead of the clock (a block of 256 frames may be handed on early).
        var s = try statusWhen(sock) { ($0["frames"] as? Int ?? 0) >= 16000 }
        let frames = s["frames"] as? Int ?? 0
        #expect(frames >= 16000 && Double(frames) <= Date().timeIntervalSince(started) * 16000 + 256, "\(s)")

        // A model that does not load is refused; the old one goes on.
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: dir.file("bad.safetensors")))
        _ = try writeConfig(dir, config("bad.safetensors"))
        let refused = try ControlClient(sock).ask("reload")
        #expect(refused["ok"] as? Bool == false, "\(refused)")
        s = try ControlClient(sock).ask("status")
        #expect(s["last_reload"] as? String == "refused" && s["state"] as? String == "running", "\(s)")

        _ = try writeConfig(dir, config(Self.bandpass))
        let reply = try ControlClient(sock).ask("reload")
        #expect(reply["ok"] as? Bool == true && reply["reload"] as? String == "swapped", "\(reply)")
        let at = try #require(reply["frame"] as? Int, "\(reply)")
        s = try ControlClient(sock).ask("status")
        #expect(s["last_reload"] as? String == "swapped" && s["reloads"] as? Int == 1 && s["restarts"] as? Int == 0, "\(s)")
        #expect((s["model"] as? String)?.hasSuffix("cheby1-bandpass-300-3400.safetensors") == true, "\(s)")
        let r = d.wait(timeout: 60)
        #expect(!r.timedOut && r.status == 0, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("took over at input frame \(at)") && r.stderr.contains("kept open"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) >= 6, "6 s of audio paced at its rate")

        // The references: the same continuous input through the old model, and its part from the
        // switch on through the new model alone.
        let tone = try readWAV(noisyTonePath).samples
        let input = tone + tone + tone
        try writeWAV(dir.file("in.wav"), input)
        try writeWAV(dir.file("tail.wav"), Array(input[at...]))
        expectExit(try runCLI(["run", "-q", Self.lowpass8, dir.file("in.wav"), dir.file("a.wav")]), 0)
        expectExit(try runCLI(["run", "-q", Self.bandpass, dir.file("tail.wav"), dir.file("b.wav")]), 0)
        let out = try readWAV(dir.file("out.wav")).samples
        let a = try readWAV(dir.file("a.wav")).samples, b = try readWAV(dir.file("b.wav")).samples
        #expect(out.count == 96000, "every input frame has its output frame")
        #expect(at > 16000 && at < 96000, "\(at)")
        #expect(relativeError(out, a, 0..<at) < 1e-5)
        #expect(relativeError(Array(out[at...]), b, 0..<b.count) < 1e-5)
        // And the switch is audible: the new model's output is not the old one's.
        #expect(relativeError(out, a, at..<96000) > 0.1)
    }

    @Test("a classifier swapped mid-stream (with another [events] grouping): events before the switch frame come from the old model, after it the new model's own event settings apply (its threshold 0.9 is above the pulses' 0.8: no more events)")
    func swapClassifier() throws {
        let dir = TempDir()
        let loud = try passThroughClassifier(dir, name: "loud")
        let deaf = try passThroughClassifier(dir, events: ModelSpec.EventDefaults(threshold: 0.9), name: "deaf")
        // Pulses of 0.8 for 0.25 s every 0.5 s at 100 Hz, paced: 8 s.
        try f32le(pulses(seconds: 8, period: 0.5, on: 0.25)).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("p.raw"))) }
        func config(_ model: String, _ events: String = "") -> String {
            """
            model = "\(model)"
            [source]
            type = "file"
            path = "p.raw"
            format = "f32le"
            rate = 100
            channels = 1
            realtime = true
            [events]
            \(events)
            file = "events.jsonl"
            [control]
            socket = "ctl.sock"
            [log]
            target = "stderr"
            """
        }
        let cfg = try writeConfig(dir, config(loud))
        let d = try RunningDaemon(["-c", cfg])
        let sock = dir.file("ctl.sock")
        _ = try statusWhen(sock) { ($0["events"] as? Int ?? 0) >= 2 }
        // The detector's settings change with the model: still a swap in place.
        _ = try writeConfig(dir, config(deaf, "grouping = \"exclusive\""))
        let reply = try ControlClient(sock).ask("reload")
        #expect(reply["reload"] as? String == "swapped", "\(reply)")
        let at = try #require(reply["frame"] as? Int, "\(reply)")
        let r = d.wait(timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        let events = try jsonLines(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("events.jsonl")))))
        let starts = events.compactMap { $0["start_sample"] as? Int }
        #expect(starts.count >= 2 && starts.count == events.count, "\(events)")
        // An event open at the switch ends there; none starts after it.
        #expect(starts.allSatisfy { $0 < at }, "switch at \(at): \(starts)")
        #expect(starts.count == (at + 49) / 50, "one event per pulse begun before frame \(at): \(starts)")
    }

    @Test("a model of another rate, or another task, is not swapped in place: the reload reopens the source (a new stream)")
    func reopenOnMismatch() throws {
        let dir = TempDir()
        try writeWAV(dir.file("in.wav"), rate: 16000, sine(440, seconds: 4))
        let classifier = try passThroughClassifier(dir)
        func config(_ model: String, resample: Bool) -> String {
            """
            model = "\(model)"
            [source]
            type = "file"
            path = "in.wav"
            realtime = true
            \(resample ? "resample = true" : "")
            [control]
            socket = "ctl.sock"
            [log]
            target = "stderr"
            """
        }
        let cfg = try writeConfig(dir, config(Self.lowpass8, resample: true))
        let d = try RunningDaemon(["-c", cfg])
        let sock = dir.file("ctl.sock")
        _ = try statusWhen(sock) { ($0["frames"] as? Int ?? 0) >= 1600 }
        _ = try writeConfig(dir, config(classifier, resample: true))
        let reply = try ControlClient(sock).ask("reload")
        #expect(reply["ok"] as? Bool == true && reply["reload"] as? String == "reopened", "\(reply)")
        let r = d.stop()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("cannot replace the running one in place"), "\(r.stderr)")
    }

    @Test("loop plays a file as one continuous stream: duration = 3 files gives the model's output of the file three times over, continuing its state")
    func loop() throws {
        let dir = TempDir()
        let x: [Float] = (0..<4000).map { i in
            let t = Double(i)
            return Float(0.3 * sin(t * 0.37) + 0.2 * sin(t * 0.011))
        }
        try writeWAV(dir.file("in.wav"), x)
        try writeWAV(dir.file("in3.wav"), x + x + x)
        let cfg = try writeConfig(dir, """
        model = "\(Self.lowpass8)"
        block = 100
        [source]
        type = "file"
        path = "in.wav"
        loop = true
        duration = 0.75
        [output]
        type = "file"
        path = "out.wav"
        [control]
        socket = ""
        [log]
        target = "stderr"
        """)
        let r = try RunningDaemon(["-c", cfg]).wait(timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        expectExit(try runCLI(["run", "-q", "--block", "100", Self.lowpass8, dir.file("in3.wav"), dir.file("ref.wav")]), 0)
        let out = try readWAV(dir.file("out.wav")).samples, ref = try readWAV(dir.file("ref.wav")).samples
        #expect(out.count == 12000)
        #expect(out.count == ref.count && relativeError(out, ref, 0..<ref.count) < 1e-5)
    }

    @Test("--set overrides the file's keys (paths from the current directory), --check shows the result, a bad one exits 78 naming itself")
    func set() throws {
        let dir = TempDir()
        try writeWAV(dir.file("other.wav"), sine(440, seconds: 0.1))
        let cfg = try writeConfig(dir, """
        model = "missing.safetensors"
        [source]
        type = "alsa"
        """)
        let sub = dir.file("sub")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        let check = try runCLI(["-c", cfg, "--set", "model=\(Self.lowpass8)", "--set", "source.type=file",
                                "--set", "source.path=../other.wav", "--set", "control.socket=", "--check"],
                               executable: daemonURL, directory: sub)
        expectExit(check, 0)
        let text = String(decoding: check.stdout, as: UTF8.self)
        #expect(text.contains("source: file \(sub)/../other.wav") && text.contains("control socket: none"), "\(text)")
        let bad = try runCLI(["-c", cfg, "--set", "block=many", "--check"], executable: daemonURL)
        expectExit(bad, 78)
        #expect(bad.stderr.contains("--set 'block=many': 'block' must be an integer"), "\(bad.stderr)")
    }
}
