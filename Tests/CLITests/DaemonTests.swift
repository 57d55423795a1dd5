// Black-box tests of ssm-streamd: the samples it writes against `ssm-stream run`, its events on
// the control socket and in its events file, sd_notify, reload, socket activation, exit codes,
// ALSA through the `file` plugin (no sound card needed), journald (a private instance) and the
// systemd unit.

import Foundation
import Testing
import SSM
import SSMIO

@Suite("ssm-streamd", .serialized)
struct DaemonTests {
    @Test("file → 8th-order lowpass → file: the same samples as `ssm-stream run`, exit 0 at the end of the input")
    func fileFilter() throws {
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "file"
        path = "\(noisyTonePath)"
        [output]
        type = "file"
        path = "out.wav"
        [control]
        socket = ""
        [log]
        target = "stderr"
        """)
        let d = try RunningDaemon(["-c", cfg])
        let r = d.wait()
        #expect(!r.timedOut && r.status == 0, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("end of input") && r.stderr.contains("32000 frames"), "\(r.stderr)")
        expectExit(try runCLI(["run", "-q", model, noisyTonePath, dir.file("run.wav")]), 0)
        let a = try readWAV(dir.file("out.wav")), b = try readWAV(dir.file("run.wav"))
        #expect(a.format == b.format)
        #expect(a.samples.count == 32000)
        #expect(a.samples == b.samples)
    }

    @Test("classifier on a FIFO: events reach socket subscribers, the events file and status; the FIFO stays open across writers (one stream); SIGTERM exits 0 and removes the socket")
    func fifoEvents() throws {
        let dir = TempDir()
        _ = try passThroughClassifier(dir)
        let fifo = dir.file("in.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let sock = dir.file("ctl.sock")
        let cfg = try writeConfig(dir, """
        model = "updown.safetensors"
        block = 32
        [source]
        type = "pipe"
        path = "in.fifo"
        format = "f32le"
        rate = 100
        channels = 1
        [events]
        ignore = ["down"]
        file = "events.jsonl"
        [control]
        socket = "ctl.sock"
        [log]
        target = "stderr"
        """)
        let d = try RunningDaemon(["-c", cfg])
        let sub = try ControlClient(sock)
        let hello = try sub.ask("subscribe")
        #expect(hello["type"] as? String == "subscribed")
        // Two writers one after the other: one stream, its sample clock running on.
        for round in 0..<2 {
            let done = feedFIFO(fifo, f32le(pulses(seconds: 3)))
            for k in 0..<3 {
                let e = try sub.next()
                let t = 300 * round + 100 * k
                #expect(e["type"] as? String == "event" && e["class"] as? String == "up", "\(e)")
                #expect(e["start_sample"] as? Int == t && e["end_sample"] as? Int == t + 50, "round \(round): \(e)")
                #expect((e["peak"] as? Double).map { abs($0 - 0.8) < 1e-6 } == true)
            }
            done()
        }
        let status = try statusWhen(sock) { $0["frames"] as? Int == 600 }
        #expect(status["state"] as? String == "running", "\(status)")
        #expect(status["events"] as? Int == 6, "\(status)")
        #expect(status["frames"] as? Int == 600, "\(status)")
        #expect(status["task"] as? String == "classify" && status["restarts"] as? Int == 0, "\(status)")
        let lines = try String(contentsOfFile: dir.file("events.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 6)
        let r = d.stop()
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: sock), "the socket is removed at exit")
    }

    @Test("at_end = restart replays a file as a new stream (times from 0 again); a FIFO with a header format is refused")
    func restartAndFIFOHeader() throws {
        let dir = TempDir()
        _ = try passThroughClassifier(dir)
        try f32le(pulses(seconds: 2)).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("p.raw"))) }
        let cfg = try writeConfig(dir, """
        model = "updown.safetensors"
        [source]
        type = "file"
        path = "p.raw"
        format = "f32le"
        rate = 100
        channels = 1
        at_end = "restart"
        [control]
        socket = "ctl.sock"
        [log]
        target = "stderr"
        """)
        let d = try RunningDaemon(["-c", cfg])
        let sub = try ControlClient(dir.file("ctl.sock"))
        _ = try sub.ask("subscribe")
        // The file may have been replayed before we subscribed: every event is one of the two.
        for _ in 0..<6 {
            let e = try sub.next()
            #expect([0, 100].contains(e["start_sample"] as? Int ?? -1), "\(e)")
        }
        let s = try ControlClient(dir.file("ctl.sock")).ask("status")
        #expect((s["restarts"] as? Int ?? 0) >= 2, "\(s)")
        #expect(d.stop().status == 0)

        #expect(mkfifo(dir.file("h.fifo"), 0o600) == 0)
        let bad = try writeConfig(dir, """
        model = "updown.safetensors"
        [source]
        type = "pipe"
        path = "h.fifo"
        [control]
        socket = ""
        """, name: "bad.toml")
        let r = try RunningDaemon(["-c", bad]).wait()
        #expect(r.status == 78 && r.stderr.contains("is a FIFO"), "\(r.stderr)")
    }

    @Test("control protocol: ping, help, unknown commands, overlong lines; `ssm-stream status` and `events`")
    func protocolAndCLI() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        try f32le(pulses(seconds: 4)).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("p.raw"))) }
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "file"
        path = "p.raw"
        format = "f32le"
        rate = 100
        channels = 1
        at_end = "idle"
        [control]
        socket = "ctl.sock"
        [log]
        target = "stderr"
        """)
        let d = try RunningDaemon(["-c", cfg])
        let c = try ControlClient(dir.file("ctl.sock"))
        #expect(try c.ask("ping")["type"] as? String == "pong")
        #expect((try c.ask("help")["commands"] as? String)?.contains("subscribe") == true)
        let bad = try c.ask("frobnicate")
        #expect(bad["type"] as? String == "error" && (bad["message"] as? String)?.contains("unknown command 'frobnicate'") == true)
        c.send(String(repeating: "x", count: 5000))
        #expect((try c.next()["message"] as? String)?.contains("longer than 4096") == true)
        let s = try statusWhen(dir.file("ctl.sock")) { $0["state"] as? String == "ended" }
        #expect(s["state"] as? String == "ended" && s["events"] as? Int == 4 && s["frames"] as? Int == 400, "\(s)")
        let text = try runCLI(["status", "--socket", dir.file("ctl.sock")])
        expectExit(text, 0)
        let out = String(decoding: text.stdout, as: UTF8.self)
        #expect(out.contains("ended") && out.contains("400 frames") && out.contains("events  4"), "\(out)")
        let json = try runCLI(["status", "--json", "--socket", dir.file("ctl.sock")])
        #expect(try jsonLines(json.stdout).first?["source"] as? String == "file:\(dir.file("p.raw"))")
        let r = d.stop()
        #expect(r.status == 0, "\(r.stderr)")
        let gone = try runCLI(["status", "--socket", dir.file("ctl.sock")])
        expectExit(gone, 69)
        #expect(gone.stderr.contains("cannot reach ssm-streamd"))
    }

    @Test("sd_notify: READY=1 with MAINPID, STATUS=, WATCHDOG=1 within the interval, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM")
    func notify() throws {
        let dir = TempDir()
        let n = try NotifySocket(dir.file("notify"))
        let cfg = try writeConfig(dir, """
        model = "\(packageRoot.path)/models/butter8-lowpass-1k.safetensors"
        [source]
        type = "file"
        path = "\(noisyTonePath)"
        at_end = "idle"
        [control]
        socket = ""
        [log]
        target = "stderr"
        status_interval = 0.2
        """)
        let d = try RunningDaemon(["-c", cfg], environment: ["NOTIFY_SOCKET": dir.file("notify"), "WATCHDOG_USEC": "400000"])
        let first = n.receive(for: 30) { $0.contains("READY=1") }
        #expect(first.first?.contains("READY=1") == true && first.first?.contains("MAINPID=\(d.pid)") == true, "\(first)")
        // 0.4 s watchdog: pinged every 0.1 s, about 20 times in 2 s (5 leaves room for a loaded machine).
        let running = n.receive(for: 2)
        #expect(running.contains { $0.hasPrefix("STATUS=") }, "\(running)")
        #expect(running.filter { $0 == "WATCHDOG=1" }.count >= 5, "\(running)")
        d.signal(SIGHUP)
        let reload = n.receive(for: 3) { $0.contains("READY=1") }
        let iReload = reload.firstIndex { $0.contains("RELOADING=1") && $0.contains("MONOTONIC_USEC=") }
        let iReady = reload.firstIndex { $0.contains("READY=1") }
        #expect(iReload != nil && iReady != nil && iReload! < iReady!, "\(reload)")
        d.signal(SIGTERM)
        let last = n.receive(for: 3) { $0.contains("STOPPING=1") }
        #expect(last.contains { $0.contains("STOPPING=1") }, "\(last)")
        let r = d.wait()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("reloaded (SIGHUP)"), "\(r.stderr)")
    }

    @Test("reload applies a changed configuration; a broken configuration, a missing model or a source that cannot open is refused and the daemon goes on with the previous one")
    func reload() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        try f32le(pulses(seconds: 2)).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("p.raw"))) }
        func config(threshold: Double, path: String = "p.raw", model m: String = model, extra: String = "") -> String {
            """
            model = "\(m)"
            [source]
            type = "file"
            path = "\(path)"
            format = "f32le"
            rate = 100
            channels = 1
            at_end = "idle"
            [events]
            threshold = \(threshold)
            [control]
            socket = "ctl.sock"
            [log]
            target = "stderr"
            \(extra)
            """
        }
        let cfg = try writeConfig(dir, config(threshold: 0.5))
        let d = try RunningDaemon(["-c", cfg])
        let sock = dir.file("ctl.sock")
        // At the end of the input (at_end = "idle"): a reload reopens the source, a new stream.
        _ = try statusWhen(sock) { $0["state"] as? String == "ended" }
        // Threshold 0.9 > 0.8: the same input now gives no events.
        _ = try writeConfig(dir, config(threshold: 0.9))
        let ok = try runCLI(["reload", "--socket", sock])
        expectExit(ok, 0)
        #expect(String(decoding: ok.stdout, as: UTF8.self).contains("reloaded"))
        let s = try statusWhen(sock) { $0["state"] as? String == "ended" }
        #expect(s["reloads"] as? Int == 1 && s["events"] as? Int == 2, "first run: 2 events at 0.5; after reload: none at 0.9. \(s)")
        #expect(s["frames"] as? Int == 400, "\(s)")
        for (text, fragment) in [(config(threshold: 0.5, extra: "bogus = 1"), "unknown key 'bogus' in [log]"),
                                 (config(threshold: 0.5, model: dir.file("missing.safetensors")), "missing.safetensors"),
                                 (config(threshold: 0.5, path: "nonexistent.raw"), "nonexistent.raw")] {
            _ = try writeConfig(dir, text)
            let refused = try runCLI(["reload", "--socket", sock])
            expectExit(refused, 1)
            #expect(refused.stderr.contains("reload refused") && refused.stderr.contains(fragment), "\(refused.stderr)")
            let after = try ControlClient(sock).ask("status")
            #expect(after["reloads"] as? Int == 1 && (after["last_error"] as? String)?.contains(fragment) == true, "\(after)")
            #expect(["running", "ended"].contains(after["state"] as? String ?? ""), "\(after)")
        }
        let r = d.stop()
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test("bad input: each case one message and its exit code; a truncated source still has its frames written")
    func exitCodes() throws {
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        func run(_ text: String?, env: [String: String] = [:]) throws -> (Int32, String) {
            let cfg = text == nil ? dir.file("absent.toml") : try writeConfig(dir, text!)
            let d = try RunningDaemon(["-c", cfg], environment: env)
            let r = d.wait()
            #expect(!r.timedOut)
            return (r.status, r.stderr)
        }
        func file(_ src: String, out: String = "[output]\ntype = \"none\"", control: String = "socket = \"\"") -> String {
            "model = \"\(model)\"\n[source]\ntype = \"file\"\npath = \"\(src)\"\n\(out)\n[control]\n\(control)\n[log]\ntarget = \"stderr\"\n"
        }
        var (code, err) = try run(nil)
        #expect(code == 78 && err.contains("absent.toml"), "\(err)")
        (code, err) = try run("model = \"m\"\n[source]\ntype = \"alsa\"\nlatency = 3")
        #expect(code == 78 && err.contains("line 4: unknown key 'latency' in [source]"), "\(err)")
        (code, err) = try run(file(noisyTonePath).replacingOccurrences(of: model, with: dir.file("nope.safetensors")))
        #expect(code == 67 && err.contains("nope.safetensors"), "\(err)")
        (code, err) = try run(file(dir.file("missing.wav")))
        #expect(code == 66 && err.contains("missing.wav"), "\(err)")
        (code, err) = try run("model = \"\(model)\"\n[source]\ntype = \"alsa\"\ndevice = \"nosuchpcm\"\n[control]\nsocket = \"\"\n[log]\ntarget = \"stderr\"\n")
        #expect(code == 66 && err.contains("ALSA device 'nosuchpcm'"), "\(err)")
        // 2 channels into a 1-input model.
        try writeWAV(dir.file("stereo.wav"), channels: 2, [Float](repeating: 0.1, count: 200))
        (code, err) = try run(file(dir.file("stereo.wav")))
        #expect(code == 78 && err.contains("per_channel"), "\(err)")
        // A WAV cut in the middle: 65, and the frames it holds are in the output.
        try writeWAV(dir.file("full.wav"), format: AudioFormat.wav16, sine(440, seconds: 1))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("full.wav")))
        try bytes.prefix(44 + 2 * 10000).write(to: URL(fileURLWithPath: dir.file("cut.wav")))
        (code, err) = try run(file(dir.file("cut.wav"), out: "[output]\ntype = \"file\"\npath = \"cut-out.wav\""))
        #expect(code == 65 && err.contains("truncated") && err.contains("10000 frames"), "\(err)")
        #expect(try readWAV(dir.file("cut-out.wav")).samples.count == 10000)
        // A control socket another daemon holds.
        let holder = try RunningDaemon(["-c", try writeConfig(dir, file(noisyTonePath).replacingOccurrences(of: "[log]", with: "[log]\nstatus_interval = 1").replacingOccurrences(of: "socket = \"\"", with: "socket = \"\(dir.file("busy.sock"))\"").replacingOccurrences(of: "[source]\n", with: "[source]\nat_end = \"idle\"\n"), name: "holder.toml")])
        _ = try ControlClient(dir.file("busy.sock"))
        (code, err) = try run(file(noisyTonePath, control: "socket = \"\(dir.file("busy.sock"))\""))
        #expect(code == 73 && err.contains("in use"), "\(err)")
        #expect(holder.stop().status == 0)
        // Bad command line.
        let usage = try runCLI(["--frobnicate"], executable: daemonURL)
        expectExit(usage, 64)
        // --check: 0 for a usable setup, 67 for a bad model.
        let check = try runCLI(["--check", "-c", try writeConfig(dir, file(noisyTonePath), name: "ok.toml")], executable: daemonURL)
        expectExit(check, 0)
        #expect(String(decoding: check.stdout, as: UTF8.self).contains("filter, 1 → 1 channel(s) at 16000 Hz"))
    }

    @Test("ALSA capture and playback through the file plugin: every played sample equals `ssm-stream run` on the whole captured input; duration stops the source")
    func alsa() throws {
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        // 1.5 s of the noisy tone as raw float32: what the capture device will deliver.
        let tone = Array(try readWAV(noisyTonePath).samples.prefix(24000))
        try tone.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("in.raw"))) }
        // The daemon asks ALSA for FLOAT_LE; these `file` PCMs take it as it is. Not `type plug`
        // converting from S16_LE over a `type file` capture: that combination skips frames after
        // the first period (frame 400 with a 100 ms buffer), and `arecord -f FLOAT_LE -B 100000`
        // on the same PCM skips the same frames (README, "ALSA") — a defect of the plugins, not
        // of our reads.
        try """
        pcm.cap { type file slave.pcm "null" file "/dev/null" infile "\(dir.file("in.raw"))" format "raw" }
        pcm.play { type file slave.pcm "null" file "\(dir.file("out.raw"))" format "raw" }
        """.write(toFile: dir.file("asound.conf"), atomically: true, encoding: .utf8)
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "alsa"
        device = "cap"
        duration = 1.5
        [output]
        type = "alsa"
        device = "play"
        [control]
        socket = ""
        [log]
        target = "stderr"
        """)
        let env = ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:\(dir.file("asound.conf"))"]
        let d = try RunningDaemon(["-c", cfg], environment: env)
        let r = d.wait()
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        #expect(r.stderr.contains("alsa:cap") && r.stderr.contains("24000 frames"), "\(r.stderr)")
        let played = try readF32(dir.file("out.raw"))
        expectExit(try runCLI(["run", "-q", model, dir.file("in.raw"), dir.file("ref.raw"), "--input-format", "f32le",
                               "--rate", "16000", "--channels", "1"]), 0)
        let ref = try readF32(dir.file("ref.raw"))
        #expect(ref.count == 24000 && played.count == 24000, "played \(played.count) frames")
        let n = min(played.count, ref.count)
        #expect(relativeError(played, ref, 0..<n) <= 1e-6, "largest difference relative to the peak over \(n) frames")
        #expect(rms(played) > 0.01, "the played signal is not silence")
    }

    @Test("ALSA capture reads what arecord reads: through `plug` (S16_LE → FLOAT_LE) over a `file` capture, which skips frames after the first period, the daemon's samples equal arecord's from the same PCM, frame for frame")
    func alsaLikeArecord() throws {
        let arecord = "/usr/bin/arecord"
        try #require(FileManager.default.isExecutableFile(atPath: arecord), "\(arecord) is missing (Debian package alsa-utils; scripts/install-deps.sh installs it)")
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        // A ramp: a skipped frame shows as a jump.
        let pcm = (0..<24000).map { Int16(($0 % 1000) * 30) }
        try pcm.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("in.raw"))) }
        try """
        pcm.cap_raw { type file slave.pcm "null" file "/dev/null" infile "\(dir.file("in.raw"))" format "raw" }
        pcm.cap { type plug slave { pcm "cap_raw" format S16_LE rate 16000 channels 1 } }
        """.write(toFile: dir.file("asound.conf"), atomically: true, encoding: .utf8)
        let env = ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:\(dir.file("asound.conf"))"]
        // arecord as the daemon opens the device: FLOAT_LE, a 100 ms buffer (latency_ms = 100).
        expectExit(try runCLI(["-q", "-D", "cap", "-f", "FLOAT_LE", "-r", "16000", "-c", "1", "-t", "raw", "-s", "16000",
                               "-B", "100000", dir.file("arecord.raw")], environment: env, executable: URL(fileURLWithPath: arecord)), 0)
        let heard = try readF32(dir.file("arecord.raw"))
        #expect(heard.count == 16000)
        let skipped = (0..<min(heard.count, pcm.count)).first { abs(heard[$0] * 32768 - Float(pcm[$0])) > 0.5 }
        // Not a requirement of ours: what this ALSA version does (it may be fixed some day).
        if let skipped { print("note: arecord through plug over file departs from the file at frame \(skipped)") }

        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "alsa"
        device = "cap"
        duration = 1.0
        [output]
        type = "file"
        path = "out.raw"
        format = "raw"
        encoding = "f32"
        [control]
        socket = ""
        [log]
        target = "stderr"
        """)
        let r = try RunningDaemon(["-c", cfg], environment: env).wait()
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        expectExit(try runCLI(["run", "-q", model, dir.file("arecord.raw"), dir.file("ref.raw"), "--input-format", "f32le",
                               "--rate", "16000", "--channels", "1"]), 0)
        let out = try readF32(dir.file("out.raw"))
        let ref = try readF32(dir.file("ref.raw"))
        #expect(out.count == 16000 && ref.count == 16000)
        #expect(relativeError(out, ref, 0..<min(out.count, ref.count)) <= 1e-6, "the daemon's capture differs from arecord's")
    }

    @Test("socket activation: a listening socket passed by systemd-socket-activate is the control socket")
    func socketActivation() throws {
        let activate = "/usr/bin/systemd-socket-activate"
        try #require(FileManager.default.isExecutableFile(atPath: activate), "\(activate) is missing (Debian package systemd; scripts/install-deps.sh installs it)")
        let dir = TempDir()
        let cfg = try writeConfig(dir, """
        model = "\(packageRoot.path)/models/butter8-lowpass-1k.safetensors"
        [source]
        type = "file"
        path = "\(noisyTonePath)"
        at_end = "idle"
        [control]
        socket = ""
        [log]
        target = "stderr"
        """)
        let sock = dir.file("activated.sock")
        let d = try RunningDaemon(["-l", sock, "--fdname=control", daemonURL.path, "-c", cfg],
                                  executable: URL(fileURLWithPath: activate))
        let s = try ControlClient(sock).ask("status")
        #expect(s["type"] as? String == "status" && s["pid"] as? Int == Int(d.pid), "\(s)")
        let r = d.stop()
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test("journald: events and start/stop entries with their SSM_* fields, in a private journald", .enabled(if: getuid() == 0, "needs root to mount a private /run/systemd/journal"))
    func journal() throws {
        let journald = "/lib/systemd/systemd-journald"
        try #require(FileManager.default.isExecutableFile(atPath: journald), "\(journald) is missing (Debian package systemd)")
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        try f32le(pulses(seconds: 3)).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("p.raw"))) }
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "file"
        path = "p.raw"
        format = "f32le"
        rate = 100
        channels = 1
        [control]
        socket = ""
        [log]
        target = "journal"
        """)
        // In a private mount namespace: a tmpfs over /run (so /run/systemd/journal and
        // /run/log/journal exist even where journald never ran, and nothing is created on the
        // host), over /var/log/journal if the host keeps one, and a machine ID if the host has
        // none (a machine where systemd never booted); our own journald, the daemon, then
        // journalctl on the private journal only. Every wait is for a condition, with a deadline.
        let script = """
        set -e
        mount -t tmpfs tmpfs /run
        mkdir -p /run/systemd/journal /run/log/journal
        if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
        if [ ! -s /etc/machine-id ]; then
            mkdir /run/etc && cp -a /etc/. /run/etc/
            od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > /run/etc/machine-id
            mount --bind /run/etc /etc
        fi
        \(journald) & J=$!
        for i in $(seq 600); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
        [ -S /run/systemd/journal/socket ] || { echo "journald did not create its socket within 30 s" >&2; exit 90; }
        '\(daemonURL.path)' -c '\(cfg)'
        # journald stores asynchronously: wait until the daemon's last entry is readable.
        for i in $(seq 600); do
            journalctl -D /run/log/journal -o json SYSLOG_IDENTIFIER=ssm-streamd | grep -q '"stopped: [0-9]* frames' && break
            sleep 0.05
        done
        journalctl -D /run/log/journal -o json SYSLOG_IDENTIFIER=ssm-streamd
        kill $J
        """
        let r = try runCLI(["-m", "--propagation", "private", "bash", "-c", script], executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        expectExit(r, 0)
        let entries = try jsonLines(r.stdout)
        let events = entries.filter { $0["SSM_EVENT"] != nil }
        #expect(events.count == 3, "\(entries.count) entries")
        #expect(events.map { $0["SSM_START"] as? String } == ["0.000", "1.000", "2.000"])
        #expect(events.allSatisfy { $0["SSM_EVENT"] as? String == "up" && $0["PRIORITY"] as? String == "5" && $0["SSM_END"] != nil && $0["CODE_FILE"] != nil })
        // Each kind of entry has its fixed MESSAGE_ID; the model's SHA-256 is a field.
        let sha = try #require(try sha256sum(model))
        #expect(events.allSatisfy { $0["MESSAGE_ID"] as? String == "8a3415d7a07e40e983db53127447fcdb" && $0["SSM_MODEL_SHA256"] as? String == sha })
        #expect(entries.contains { ($0["MESSAGE"] as? String)?.hasPrefix("started: classify model") == true && $0["SSM_STATE_BYTES"] as? String == "8"
            && $0["MESSAGE_ID"] as? String == "f477f8971c6f4d8599ffa424704a5a36" && $0["SSM_MODEL_SHA256"] as? String == sha })
        #expect(entries.contains { ($0["MESSAGE"] as? String)?.hasPrefix("stopped: 300 frames") == true && $0["SSM_EVENTS"] as? String == "3"
            && $0["MESSAGE_ID"] as? String == "65ec27916c4d49caabbd53e1b546212a" })
    }

    @Test("the systemd unit: systemd-analyze verify is clean (no warnings), and every hardening setting it makes is in effect")
    func unit() throws {
        let analyze = "/usr/bin/systemd-analyze"
        try #require(FileManager.default.isExecutableFile(atPath: analyze), "\(analyze) is missing (Debian package systemd)")
        let dir = TempDir()
        // The unit as installed, with the binaries where this build put them.
        let unit = try String(contentsOfFile: packageRoot.appendingPathComponent("systemd/ssm-streamd.service").path, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/", with: daemonURL.deletingLastPathComponent().path + "/")
        try unit.write(toFile: dir.file("ssm-streamd.service"), atomically: true, encoding: .utf8)
        let verify = try runCLI(["verify", "--man=no", dir.file("ssm-streamd.service")], executable: URL(fileURLWithPath: analyze))
        expectExit(verify, 0)
        #expect(verify.stderr.isEmpty, "systemd-analyze verify: \(verify.stderr)")
        // Not the overall exposure score, whose checks and weights change between systemd
        // versions: each hardening setting the unit makes must be rated as in effect, by
        // whatever systemd this machine has (every one of these checks exists since systemd 247).
        let security = try runCLI(["security", "--offline=true", "--no-pager", "--json=short", dir.file("ssm-streamd.service")],
                                  executable: URL(fileURLWithPath: analyze))
        expectExit(security, 0)
        let checks = try #require(try JSONSerialization.jsonObject(with: Data(security.stdout)) as? [[String: Any]],
                                  "systemd-analyze security --json=short: \(String(decoding: security.stdout, as: UTF8.self).prefix(300))")
        var rated: [String: Bool] = [:]
        for c in checks { if let name = c["name"] as? String { rated[name] = c["set"] as? Bool } }
        let required = [
            "User=/DynamicUser=", "NoNewPrivileges=", "ProtectSystem=", "ProtectHome=", "PrivateTmp=", "PrivateNetwork=",
            "ProtectKernelTunables=", "ProtectKernelModules=", "ProtectKernelLogs=", "ProtectControlGroups=",
            "ProtectClock=", "ProtectHostname=", "RestrictSUIDSGID=", "RestrictRealtime=", "LockPersonality=",
            "MemoryDenyWriteExecute=", "SystemCallArchitectures=", "AmbientCapabilities=",
            "CapabilityBoundingSet=~CAP_SYS_ADMIN", "CapabilityBoundingSet=~CAP_SYS_PTRACE", "CapabilityBoundingSet=~CAP_NET_ADMIN",
            "RestrictNamespaces=~user", "RestrictNamespaces=~net", "RestrictNamespaces=~mnt",
            "RestrictAddressFamilies=~AF_(INET|INET6)", "RestrictAddressFamilies=~AF_PACKET", "RestrictAddressFamilies=~AF_NETLINK",
            "SystemCallFilter=~@mount", "SystemCallFilter=~@module", "SystemCallFilter=~@reboot", "SystemCallFilter=~@raw-io",
            "SystemCallFilter=~@debug", "SystemCallFilter=~@clock", "SystemCallFilter=~@swap",
        ]
        for name in required {
            #expect(rated[name] == true, "systemd-analyze security: \(name) is \(rated[name].map { $0 ? "set" : "not in effect" } ?? "not rated")")
        }
    }
}
