// `ssm-stream train` and `eval` end to end, on the release binary users run: a synthetic task
// (which of four tones is in the noise) trained to ≥ 95 % held-out accuracy in seconds; the same
// seed giving the same bytes; SIGINT saving a checkpoint that --resume continues exactly; and each
// kind of bad input ending in its documented message and exit code.

import Foundation
import Testing
import SSM
import SSMIO

/// Four tones (300, 500, 800, 1200 Hz) in white noise at 0–10 dB SNR, 0.25 s at 8 kHz, as class
/// folders. `seed` makes the train and test sets different recordings.
func writeToneSet(_ dir: String, perClass: Int, seed: UInt64) throws {
    var rng = SeededRandom(seed: seed)
    for (name, f) in [("t300", 300.0), ("t500", 500.0), ("t800", 800.0), ("t1200", 1200.0)] {
        try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: true)
        for i in 0..<perClass {
            let phase = rng.uniform(0, 2 * Double.pi), amp = 0.3, snr = rng.uniform(0, 10)
            let sigma = amp / 2.0.squareRoot() / pow(10, snr / 20)
            let x = (0..<2000).map { k in Float(amp * sin(2 * Double.pi * f * Double(k) / 8000 + phase) + sigma * rng.normal()) }
            try writeWAV(dir + "/\(name)/\(i).wav", rate: 8000, format: AudioFormat.wav16, x)
        }
    }
}

private let tonesArch = packageRoot.appendingPathComponent("examples/train/tones.json").path
private let toneFlags = ["--epochs", "12", "--seconds", "0.25", "--lr", "1e-2", "--ssm-lr", "3e-3", "--batch", "8", "--threads", "2"]

private func train(_ args: [String], timeout: Double = 120) throws -> CLIResult {
    try #require(FileManager.default.isExecutableFile(atPath: releaseCLI.path),
                 "no release build at \(releaseCLI.path): run ./test.sh, or swift build -c release --product ssm-stream")
    return try runCLI(["train"] + args, timeout: timeout, executable: releaseCLI)
}

@Suite("ssm-stream train and eval")
struct TrainTests {
    @Test("four tones in noise: ≥ 95 % on held-out recordings, and eval --json says so")
    func tones() throws {
        let tmp = try TempDir()
        try writeToneSet(tmp.file("train"), perClass: 50, seed: 1)
        try writeToneSet(tmp.file("test"), perClass: 25, seed: 2)
        let r = try train(["--arch", tonesArch, "--data", tmp.file("train"), "-o", tmp.file("m.safetensors"), "--json"] + toneFlags)
        expectExit(r, 0)
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 12, "one JSON line per epoch")
        let e = try runCLI(["eval", tmp.file("m.safetensors"), tmp.file("test"), "--json"], executable: releaseCLI)
        expectExit(e, 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout)) as? [String: Any])
        let accuracy = try #require(obj["accuracy"] as? Double)
        print("tones: held-out accuracy \(accuracy)")
        #expect(accuracy >= 0.95)
        #expect((obj["clips"] as? Int) == 100)
        // The exported model is a standard model file: run streams it.
        let run = try runCLI(["inspect", tmp.file("m.safetensors")], executable: releaseCLI)
        expectExit(run, 0)
    }

    @Test("the same seed, data and threads give the same model and checkpoint, byte for byte")
    func deterministic() throws {
        let tmp = try TempDir()
        try writeToneSet(tmp.file("train"), perClass: 12, seed: 3)
        let flags = ["--epochs", "2", "--seconds", "0.25", "--batch", "8", "--threads", "2", "--seed", "5", "--snr-min", "5", "--snr-max", "20"]
        expectExit(try train(["--arch", tonesArch, "--data", tmp.file("train"), "-o", tmp.file("a.safetensors")] + flags), 0)
        expectExit(try train(["--arch", tonesArch, "--data", tmp.file("train"), "-o", tmp.file("b.safetensors")] + flags), 0)
        let a = try Data(contentsOf: URL(fileURLWithPath: tmp.file("a.safetensors")))
        let b = try Data(contentsOf: URL(fileURLWithPath: tmp.file("b.safetensors")))
        #expect(a == b)
        // Checkpoints: the same parameters and optimizer moments (their metadata holds the wall time).
        let ca = try SafeTensors(contentsOfFile: tmp.file("a.safetensors.ckpt")), cb = try SafeTensors(contentsOfFile: tmp.file("b.safetensors.ckpt"))
        #expect(ca.names == cb.names && ca.names.count > 0)
        for n in ca.names { #expect(try ca.floats(n) == cb.floats(n), "checkpoint tensor \(n)") }
        // Another seed trains another model.
        expectExit(try train(["--arch", tonesArch, "--data", tmp.file("train"), "-o", tmp.file("c.safetensors")] + flags.dropLast(6)
                             + ["--seed", "6", "--snr-min", "5", "--snr-max", "20"]), 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.file("c.safetensors"))) != a)
        // Dropout is seeded too: the same bytes again, another model than without it, and its rate
        // in the model's training configuration.
        for name in ["d", "e"] {
            expectExit(try train(["--arch", tonesArch, "--data", tmp.file("train"), "-o", tmp.file("\(name).safetensors"), "--dropout", "0.2"] + flags), 0)
        }
        let d = try Data(contentsOf: URL(fileURLWithPath: tmp.file("d.safetensors")))
        #expect(d == (try Data(contentsOf: URL(fileURLWithPath: tmp.file("e.safetensors")))))
        // Other weights, not only other metadata.
        let wa = try SafeTensors(contentsOfFile: tmp.file("a.safetensors")), wd = try SafeTensors(contentsOfFile: tmp.file("d.safetensors"))
        let differs = try wa.names.contains { try wa.floats($0) != wd.floats($0) }
        #expect(wa.names == wd.names && differs)
        #expect(try SafeTensors(contentsOfFile: tmp.file("d.safetensors")).metadata["ssm_train_options"]?.contains(#""dropout":0.2"#) == true)
    }

    @Test("--resume from a checkpoint continues exactly: interrupted + resumed = uninterrupted")
    func resume() throws {
        let tmp = try TempDir()
        try writeToneSet(tmp.file("train"), perClass: 12, seed: 4)
        // With dropout, whose decisions follow the optimizer step (a resumed run drops what the
        // uninterrupted one did), and weight averaging from the start (the checkpoint carries the
        // running mean on).
        let flags = ["--data", tmp.file("train"), "--arch", tonesArch, "--epochs", "150", "--seconds", "0.25", "--batch", "8", "--threads", "2",
                     "--dropout", "0.1", "--average-from", "0"]
        expectExit(try train(flags + ["-o", tmp.file("full.safetensors")]), 0)
        // Resuming with other training options is refused, naming them; another thread count is not.
        let other = try train(flags + ["-o", tmp.file("other.safetensors"), "--lr", "0.01", "--resume", tmp.file("full.safetensors.ckpt")])
        expectExit(other, 64); #expect(other.stderr.contains("other options (lr 0.003 → 0.01)"), "\(other.stderr)")
        // And on other data: another take of the same classes.
        try writeToneSet(tmp.file("train2"), perClass: 12, seed: 5)
        let data = try train(flags.map { $0 == tmp.file("train") ? tmp.file("train2") : $0 }
                             + ["-o", tmp.file("other.safetensors"), "--resume", tmp.file("full.safetensors.ckpt")])
        expectExit(data, 64); #expect(data.stderr.contains("trained on other data (the training set, the validation set differ)"), "\(data.stderr)")
        let threads = flags.map { $0 == "2" ? "1" : $0 }
        expectExit(try train(threads + ["-o", tmp.file("one.safetensors"), "--resume", tmp.file("full.safetensors.ckpt")]), 0)
        // The same run again, interrupted by SIGINT once its first checkpoint exists (mid-schedule).
        let p = Process()
        p.executableURL = releaseCLI
        p.arguments = ["train"] + flags + ["-o", tmp.file("part.safetensors"), "--quiet"]
        p.environment = childEnvironment([:])
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: tmp.file("part.safetensors.ckpt")) && p.isRunning && Date() < deadline { usleep(2000) }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        if p.terminationStatus == 0 {
            // It finished before the signal arrived (a fast machine): nothing to resume, still equal.
            #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.file("part.safetensors"))) == Data(contentsOf: URL(fileURLWithPath: tmp.file("full.safetensors"))))
            return
        }
        #expect(p.terminationStatus == 75, "SIGINT ends training with 75 after saving a checkpoint")
        let r = try train(flags + ["-o", tmp.file("part.safetensors"), "--resume", tmp.file("part.safetensors.ckpt")])
        expectExit(r, 0)
        #expect(r.stderr.contains("resuming at epoch"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.file("part.safetensors"))) == Data(contentsOf: URL(fileURLWithPath: tmp.file("full.safetensors"))))
        // The best model may predate the interruption; the final checkpoints hold the end of both
        // runs: the same parameters, moments and running average.
        let cf = try SafeTensors(contentsOfFile: tmp.file("full.safetensors.ckpt")), cp = try SafeTensors(contentsOfFile: tmp.file("part.safetensors.ckpt"))
        #expect(cf.names == cp.names && cf.names.contains { $0.hasPrefix("average/") })
        for n in cf.names { #expect(try cf.floats(n) == cp.floats(n), "final checkpoint tensor \(n)") }
    }

    @Test("bad input: each a clear message and its exit code")
    func badInput() throws {
        let tmp = try TempDir()
        try writeToneSet(tmp.file("d"), perClass: 3, seed: 5)
        let base = ["--arch", tonesArch, "--seconds", "0.25", "--epochs", "1", "--threads", "1"]
        // A single class.
        try FileManager.default.createDirectory(atPath: tmp.file("one/a"), withIntermediateDirectories: true)
        try writeWAV(tmp.file("one/a/x.wav"), rate: 8000, [Float](repeating: 0.1, count: 800))
        let arch1 = tmp.file("arch1.json")
        try String(contentsOfFile: tonesArch, encoding: .utf8).replacingOccurrences(of: "\"labels\": [\"t300\", \"t500\", \"t800\", \"t1200\"],", with: "")
            .write(toFile: arch1, atomically: true, encoding: .utf8)
        var r = try train(["--arch", arch1, "--data", tmp.file("one"), "-o", tmp.file("m"), "--seconds", "0.25", "--epochs", "1"])
        expectExit(r, 65); #expect(r.stderr.contains("only one class"))
        // An empty class.
        try FileManager.default.createDirectory(atPath: tmp.file("d/t500x"), withIntermediateDirectories: true)
        r = try train(["--arch", arch1, "--data", tmp.file("d"), "-o", tmp.file("m"), "--seconds", "0.25", "--epochs", "1"])
        expectExit(r, 65); #expect(r.stderr.contains("'t500x' has no recordings"))
        try FileManager.default.removeItem(atPath: tmp.file("d/t500x"))
        // Classes that are not the architecture's labels, and outputs that do not match the classes.
        try FileManager.default.createDirectory(atPath: tmp.file("d/t999"), withIntermediateDirectories: true)
        try writeWAV(tmp.file("d/t999/x.wav"), rate: 8000, [Float](repeating: 0.1, count: 800))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m")])
        expectExit(r, 67); #expect(r.stderr.contains("class 't999' is not one of the architecture's labels"))
        r = try train(["--arch", arch1, "--data", tmp.file("d"), "-o", tmp.file("m"), "--seconds", "0.25", "--epochs", "1"])
        expectExit(r, 67); #expect(r.stderr.contains("d_output 4, the data 5 classes"))
        try FileManager.default.removeItem(atPath: tmp.file("d/t999"))
        // An unreadable recording: skipped and named, or fatal with --strict.
        try Data("not audio".utf8).write(to: URL(fileURLWithPath: tmp.file("d/t300/broken.wav")))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m")])
        expectExit(r, 0); #expect(r.stderr.contains("skipped 1 unreadable recording(s)")); #expect(r.stderr.contains("broken.wav"))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--strict"])
        expectExit(r, 66); #expect(r.stderr.contains("broken.wav"))
        try FileManager.default.removeItem(atPath: tmp.file("d/t300/broken.wav"))
        // Another sample rate: resampled, or refused with both rates named.
        try writeWAV(tmp.file("d/t300/fast.wav"), rate: 16000, [Float](repeating: 0.1, count: 1600))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m")])
        expectExit(r, 0)
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--strict-rate"])
        expectExit(r, 65); #expect(r.stderr.contains("16000 Hz, the model at 8000 Hz"))
        // A loss that becomes NaN/Inf: stopped, step named, the last good checkpoint kept.
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("nan"), "--lr", "1e30", "--epochs", "2"])
        expectExit(r, 70); #expect(r.stderr.contains("step ")); #expect(r.stderr.contains("last good checkpoint"))
        // A corrupt checkpoint on --resume.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: tmp.file("bad.ckpt")))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--resume", tmp.file("bad.ckpt")])
        expectExit(r, 65); #expect(r.stderr.contains("--resume: checkpoint"))
        // A checkpoint that cannot be written: 74, and the model file from before stays intact.
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--checkpoint", tmp.file("no/such/dir/c.ckpt")])
        expectExit(r, 74); #expect(r.stderr.contains("cannot write"))
        // Augmentation out of range: 64, naming the flag.
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--lowpass", "1.5"])
        expectExit(r, 64); #expect(r.stderr.contains("--lowpass"))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--tempo", "2"])
        expectExit(r, 64); #expect(r.stderr.contains("--tempo"))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--cut-noise", "1.5"])
        expectExit(r, 64); #expect(r.stderr.contains("--cut-noise"))
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--trim", "1.5"])
        expectExit(r, 64); #expect(r.stderr.contains("--trim (probabilities) in [0, 1]"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--evidence", "1"])
        expectExit(r, 64); #expect(r.stderr.contains("--evidence must be in [0, 1)"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--evidence", "0.6"])
        expectExit(r, 64); #expect(r.stderr.contains("it needs --readout per_step"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--trim-level", "0.1"])
        expectExit(r, 64); #expect(r.stderr.contains("--trim is 0"), "\(r.stderr)")
        for level in ["2", "0.001"] {
            r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--trim", "0.5", "--trim-level", level])
            expectExit(r, 64); #expect(r.stderr.contains("--trim-level must be in [0.01, 1]"), "\(r.stderr)")
        }
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--trim-pattern", "t300"])
        expectExit(r, 64); #expect(r.stderr.contains("--trim is 0"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--trim", "0.5", "--trim-pattern", ""])
        expectExit(r, 64); #expect(r.stderr.contains("--trim-pattern is empty"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--trim", "0.5", "--trim-pattern", "no-such-set/"])
        expectExit(r, 64); #expect(r.stderr.contains("matches no training recording"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--noise-pattern", "t300"])
        expectExit(r, 64); #expect(r.stderr.contains("no --noise folder is given"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--noise", tmp.file("d/t300"), "--noise-pattern", ""])
        expectExit(r, 64); #expect(r.stderr.contains("--noise-pattern is empty"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--noise", tmp.file("d/t300"), "--noise-pattern", "no-such-set/"])
        expectExit(r, 64); #expect(r.stderr.contains("--noise folder would go unused"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--cut-noise", "0.5"])
        expectExit(r, 64); #expect(r.stderr.contains("none is added"), "\(r.stderr)")
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--mask-time", "9"])
        expectExit(r, 64); #expect(r.stderr.contains("--mask-time"))
        // Feature masks on an architecture with no log-compressing block to mask.
        r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), "--mask-channels", "0.2"])
        expectExit(r, 64); #expect(r.stderr.contains("has none"))
        // Regularizers out of range, and dropout where no block has an output projection to drop before.
        for (flag, value) in [("--dropout", "1.5"), ("--average-from", "1"), ("--reverb", "2")] {
            r = try train(base + ["--data", tmp.file("d"), "-o", tmp.file("m"), flag, value])
            expectExit(r, 64); #expect(r.stderr.contains(flag), "\(flag): \(r.stderr)")
        }
        let bare = tmp.file("bare.json")
        try #"{"task":"classify","sample_rate":8000,"d_input":1,"d_model":4,"d_output":4,"encoder":true,"decoder":true,"labels":["t300","t500","t800","t1200"],"blocks":[{"layer":{"family":"s4d","d_model":4,"d_state":4},"output":"none"}]}"#
            .write(toFile: bare, atomically: true, encoding: .utf8)
        r = try train(["--arch", bare, "--data", tmp.file("d"), "-o", tmp.file("m"), "--epochs", "1", "--dropout", "0.2"])
        expectExit(r, 64); #expect(r.stderr.contains("--dropout") && r.stderr.contains("has none"), "\(r.stderr)")
        // Augmentations that change the voice, pace or span of a recording are for classifiers: a filter's
        // clean target would not follow its input (each refused with 64, naming the flag).
        let filter = tmp.file("filter.json")
        try #"{"task":"filter","sample_rate":8000,"d_input":1,"d_model":4,"d_output":1,"encoder":true,"decoder":true,"blocks":[{"layer":{"family":"s4d","d_model":4,"d_state":4}}]}"#
            .write(toFile: filter, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: tmp.file("pair"), withIntermediateDirectories: true)
        try writeWAV(tmp.file("pair/noisy.wav"), rate: 8000, (0..<2000).map { Float(sin(Double($0) * 0.2)) * 0.3 + Float($0 % 7) * 0.01 })
        try writeWAV(tmp.file("pair/clean.wav"), rate: 8000, (0..<2000).map { Float(sin(Double($0) * 0.2)) * 0.3 })
        try "noisy,clean\nnoisy.wav,clean.wav\nnoisy.wav,clean.wav\n".write(toFile: tmp.file("pair/pairs.csv"), atomically: true, encoding: .utf8)
        for (flag, value) in [("--whisper", "0.5"), ("--formant", "0.1"), ("--tempo", "0.2"), ("--lowpass", "0.5"), ("--trim", "0.5")] {
            r = try train(["--arch", filter, "--data", tmp.file("pair/pairs.csv"), "-o", tmp.file("f"), "--epochs", "1", "--seconds", "0.25",
                           "--val-fraction", "0", flag, value])
            expectExit(r, 64); #expect(r.stderr.contains("\(flag) is for classifiers"), "\(flag): \(r.stderr)")
        }
        // An architecture that cannot be trained yet.
        let mamba = tmp.file("mamba.json")
        try #"{"task":"classify","sample_rate":8000,"d_input":1,"d_model":8,"d_output":4,"encoder":true,"decoder":true,"labels":["t300","t500","t800","t1200"],"blocks":[{"layer":{"family":"mamba","d_model":8,"d_state":4}}]}"#
            .write(toFile: mamba, atomically: true, encoding: .utf8)
        r = try train(["--arch", mamba, "--data", tmp.file("d"), "-o", tmp.file("m"), "--seconds", "0.25", "--epochs", "1"])
        expectExit(r, 67); #expect(r.stderr.contains("training supports s4d, s5, lru, identity and mean_norm"))
        // A CSV manifest with CRLF line endings and a header, paths relative to it.
        var csv = "path,label\r\n"
        for c in ["t300", "t500", "t800", "t1200"] { for i in 0..<3 { csv += "d/\(c)/\(i).wav,\(c)\r\n" } }
        try csv.write(toFile: tmp.file("m.csv"), atomically: true, encoding: .utf8)
        r = try train(base + ["--data", tmp.file("m.csv"), "-o", tmp.file("csv.safetensors")])
        expectExit(r, 0); #expect(r.stderr.contains("12 training") || r.stderr.contains("11 training"))
        // A TOML file with the options, and an unknown key in it.
        // Per-step keys among them: the values given reach the model's training configuration.
        try "arch = \"\(tonesArch)\"\ndata = \"\(tmp.file("d"))\"\noutput = \"\(tmp.file("toml.safetensors"))\"\nepochs = 1\nseconds = 0.25\n"
            .appending("readout = \"per_step\"\nbackground = \"t300\"\nevidence = 0.6\ntrim = 0.5\ntrim_level = 0.05\ntrim_pattern = \"t800\"\n")
            .appending("noise = \"\(tmp.file("d/t300"))\"\nnoise_pattern = \"t1200\"\n")
            .write(toFile: tmp.file("t.toml"), atomically: true, encoding: .utf8)
        expectExit(try train(["--config", tmp.file("t.toml")]), 0)
        let options = try SafeTensors(contentsOfFile: tmp.file("toml.safetensors")).metadata["ssm_train_options"] ?? ""
        #expect(options.contains(#""evidence":0.6"#) && options.contains(#""trim_level":0.05"#) && options.contains(#""trim":0.5"#)
                && options.contains(#""trim_pattern":"t800""#) && options.contains(#""noise_pattern":"t1200""#), "\(options)")
        try "epochz = 1\n".write(toFile: tmp.file("u.toml"), atomically: true, encoding: .utf8)
        r = try train(["--config", tmp.file("u.toml")])
        expectExit(r, 64); #expect(r.stderr.contains("unknown key 'epochz'"))
    }

    @Test("a full disk while checkpointing: 74, the message names the disk, the previous checkpoint stays intact",
          .enabled(if: getuid() == 0, "needs root to mount a small private tmpfs"))
    func fullDisk() throws {
        let tmp = try TempDir()
        try writeToneSet(tmp.file("d"), perClass: 3, seed: 6)
        try FileManager.default.createDirectory(atPath: tmp.file("disk"), withIntermediateDirectories: true)
        let flags = "--arch '\(tonesArch)' --data '\(tmp.file("d"))' -o '\(tmp.file("m.safetensors"))' --checkpoint '\(tmp.file("disk/c.ckpt"))'"
            + " --seconds 0.25 --threads 1 -q"
        // In a private mount namespace, a 1 MiB tmpfs holds the checkpoint: one run writes it; the
        // disk is then filled, and the next run's checkpoint cannot be written over it.
        let script = """
        set -u
        mount -t tmpfs -o size=1m tmpfs '\(tmp.file("disk"))' || exit 91
        '\(releaseCLI.path)' train \(flags) --epochs 1 || exit 92
        cp '\(tmp.file("disk/c.ckpt"))' '\(tmp.file("before.ckpt"))'
        dd if=/dev/zero of='\(tmp.file("disk/fill"))' bs=4k 2>/dev/null
        '\(releaseCLI.path)' train \(flags) --epochs 1 --seed 9
        echo "exit $?" >&2
        cp '\(tmp.file("disk/c.ckpt"))' '\(tmp.file("after.ckpt"))'
        ls '\(tmp.file("disk"))'
        """
        let r = try runCLI(["-m", "--propagation", "private", "bash", "-c", script], timeout: 120,
                           executable: URL(fileURLWithPath: "/usr/bin/unshare"))
        expectExit(r, 0)
        #expect(r.stderr.contains("exit 74"), "\(r.stderr)")
        #expect(r.stderr.contains("No space left on device") && r.stderr.contains("is intact"), "\(r.stderr)")
        let before = try Data(contentsOf: URL(fileURLWithPath: tmp.file("before.ckpt")))
        #expect(!before.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.file("after.ckpt"))) == before)
        // No half-written temporary file is left on the full disk.
        #expect(String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").sorted() == ["c.ckpt", "fill"])
    }

    @Test("eval of a per-step classifier scores what the stream would report: the model's event settings, the recording then its tail of silence")
    func perStepEval() throws {
        let tmp = try TempDir()
        // Scores = input ("up" = u); "down" is the background; events need 0.5 for 0.1 s (10 samples).
        let base = try passThroughClassifier(tmp, rate: 100, events: .init(ignore: ["down"], threshold: 0.5, minDuration: 0.1))
        let parsed = try ModelFile.parse(try SafeTensors(contentsOfFile: base))
        let options = #"{"background":"down","batch":8,"clip":1,"filter_loss":"esr","gain_db":6,"lr":0.003,"readout":"per_step","#
            + #""seconds":0.8,"seed":0,"shift":true,"speed":0,"ssm_lr":0.001,"tail":0.25,"tilt":0,"val_fraction":0.1,"warmup":0.05,"weight_decay":0.01}"#
        let model = tmp.file("perstep.safetensors")
        try Data(ModelFile.serialize(spec: parsed.spec, tensors: parsed.tensors, metadata: ["ssm_train_options": options]))
            .write(to: URL(fileURLWithPath: model))
        let clips: [(String, [Float], String)] = [
            ("long", [Float](repeating: 0.8, count: 30), "up"),                                 // an event: "up"
            ("short", [Float](repeating: 0.8, count: 5) + [Float](repeating: 0, count: 20), "up"), // 0.05 s: no event → "down"
            ("quiet", [Float](repeating: 0.3, count: 40), "down"),                              // below 0.5: "down"
            ("end", [Float](repeating: 0, count: 20) + [Float](repeating: 0.8, count: 10), "up"),  // open at the end: closed in the tail
        ]
        var csv = "path,label\n"
        for (name, x, label) in clips { try writeWAV(tmp.file(name + ".wav"), rate: 100, x); csv += "\(name).wav,\(label)\n" }
        try csv.write(toFile: tmp.file("set.csv"), atomically: true, encoding: .utf8)
        let e = try runCLI(["eval", model, tmp.file("set.csv"), "--json"], executable: releaseCLI)
        expectExit(e, 0)
        let obj = try jsonObject(e.stdout)
        #expect(obj["confusion"] as? [[Int]] == [[2, 1], [0, 1]], "\(obj)")
        #expect(obj["accuracy"] as? Double == 0.75)
        // --grouping as for run (one reported class: either grouping gives the same events).
        for g in ["exclusive", "per-class"] {
            let eg = try runCLI(["eval", "--grouping", g, model, tmp.file("set.csv"), "--json"], executable: releaseCLI)
            expectExit(eg, 0)
            #expect(try jsonObject(eg.stdout)["confusion"] as? [[Int]] == [[2, 1], [0, 1]])
        }
        expectExit(try runCLI(["eval", "--grouping", "mostly", model, tmp.file("set.csv")], executable: releaseCLI), 64)
        // The same model without its training options is a pooled classifier: the mean's class, "up" for all four.
        let pooled = try runCLI(["eval", base, tmp.file("set.csv"), "--json"], executable: releaseCLI)
        let p = try jsonObject(pooled.stdout)
        #expect(p["confusion"] as? [[Int]] == [[3, 0], [1, 0]], "\(p)")
        // It has no events to group.
        let g = try runCLI(["eval", "--grouping", "exclusive", base, tmp.file("set.csv")], executable: releaseCLI)
        expectExit(g, 64)
        #expect(g.stderr.contains("--grouping is for classifiers trained per step"), "\(g.stderr)")
    }
}
