// Black-box tests of `ssm-stream run`: the shipped low-pass model against the closed-form digital
// Butterworth response, step/block agreement, pipes in and out, exit codes and messages.

import Foundation
import Testing
import SSM
import SSMIO

@Suite("ssm-stream run")
struct RunTests {
    @Test("run lowpass-1k on examples/noisy-tone.wav: exit 0, 32000 frames, 16 kHz mono 16-bit")
    func noisyTone() throws {
        let dir = TempDir()
        let out = dir.file("OUT.wav")
        let r = try runCLI(["run", "models/lowpass-1k.safetensors", "examples/noisy-tone.wav", out])
        expectExit(r, 0)
        let y = try readWAV(out)
        #expect(y.frames == 32000)
        #expect(y.format == AudioFormat(sampleRate: 16000, channels: 1, format: AudioFormat.wav16))
        #expect(y.samples.count == 32000)
        #expect(rms(y.samples) > 0.01, "output is (nearly) silent: rms \(rms(y.samples))")
        #expect(r.stderr.contains("32000 frames"), "summary: \(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    /// |H(e^{jω})| of the 4th-order digital Butterworth low-pass made by the bilinear transform with
    /// pre-warping (scipy.signal.butter(4, fc, fs=fs)): 1/sqrt(1 + (tan(ω/2)/tan(ωc/2))^8).
    static func butterworthDB(_ f: Double, fc: Double = 1000, fs: Double = 16000) -> Double {
        let ratio = tan(Double.pi * f / fs) / tan(Double.pi * fc / fs)
        return 20 * log10(1 / (1 + pow(ratio, 8)).squareRoot())
    }

    @Test("steady-state gain of lowpass-1k equals the digital Butterworth |H| (sines, float WAV)",
          arguments: [(200.0, 0.1), (1000.0, 0.1), (2000.0, 0.1), (4000.0, 0.5)])
    func butterworthGain(_ f: Double, _ toleranceDB: Double) throws {
        let dir = TempDir()
        let input = dir.file("sine-\(Int(f)).wav"), out = dir.file("out.wav")
        let x = sine(f)
        try writeWAV(input, x)
        let r = try runCLI(["run", "-q", modelPath, input, out])
        expectExit(r, 0)
        let y = try readWAV(out)
        #expect(y.format == AudioFormat(sampleRate: 16000, channels: 1, format: AudioFormat.wavFloat))
        try #require(y.samples.count == x.count)
        // Second half: 1 s, a whole number of periods of every test frequency.
        let gain = 20 * log10(rms(y.samples[16000...]) / rms(x[16000...]))
        let want = Self.butterworthDB(f)
        #expect(abs(gain - want) <= toleranceDB, "\(f) Hz: gain \(gain) dB, Butterworth \(want) dB")
    }

    @Test("--mode step and --mode block agree to 1 LSB on 16-bit audio (also with --block 37)")
    func stepVersusBlock16() throws {
        let dir = TempDir()
        let a = dir.file("step.wav"), b = dir.file("block.wav"), c = dir.file("block37.wav")
        expectExit(try runCLI(["run", "-q", "--mode", "step", modelPath, noisyTonePath, a]), 0)
        expectExit(try runCLI(["run", "-q", "--mode", "block", modelPath, noisyTonePath, b]), 0)
        expectExit(try runCLI(["run", "-q", "--mode", "block", "--block", "37", modelPath, noisyTonePath, c]), 0)
        let ya = try WAVBytes(path: a).int16, yb = try WAVBytes(path: b).int16, yc = try WAVBytes(path: c).int16
        try #require(ya.count == 32000 && yb.count == 32000 && yc.count == 32000)
        let d1 = zip(ya, yb).map { abs(Int($0) - Int($1)) }.max() ?? 0
        let d2 = zip(ya, yc).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(d1 <= 1, "step vs block: max difference \(d1) LSB")
        #expect(d2 <= 1, "step vs block (--block 37): max difference \(d2) LSB")
        #expect(ya.contains { abs($0) > 1000 }, "output is (nearly) silent")
    }

    @Test("--mode step and --mode block agree to 1e-6 on float WAV")
    func stepVersusBlockFloat() throws {
        let dir = TempDir()
        let input = dir.file("mix.wav"), a = dir.file("step.wav"), b = dir.file("block.wav")
        var g = UInt64(12345)
        let x: [Float] = zip(sine(300, amplitude: 0.4), sine(3100, amplitude: 0.3)).map { s, t in
            g = g &* 6364136223846793005 &+ 1442695040888963407
            return s + t + Float(Int64(bitPattern: g >> 11) - (1 << 52)) / Float(1 << 52) * 0.2
        }
        try writeWAV(input, x)
        expectExit(try runCLI(["run", "-q", "--mode", "step", modelPath, input, a]), 0)
        expectExit(try runCLI(["run", "-q", "--mode", "block", "--block", "1000", modelPath, input, b]), 0)
        let ya = try readWAV(a).samples, yb = try readWAV(b).samples
        try #require(ya.count == x.count && yb.count == x.count)
        let d = zip(ya, yb).map { abs(Double($0) - Double($1)) }.max() ?? 0
        #expect(d <= 1e-6, "max |step − block| = \(d)")
    }

    @Test("stdin → stdout: `run MODEL - -` writes a streaming WAV whose samples equal the file output",
          arguments: ["16-bit", "float"])
    func pipes(_ kind: String) throws {
        let dir = TempDir()
        let input: String
        if kind == "16-bit" { input = noisyTonePath } else {
            input = dir.file("in-float.wav")
            try writeWAV(input, zip(sine(440), sine(2500, amplitude: 0.3)).map { $0 + $1 })
        }
        let fileOut = dir.file("file.wav")
        expectExit(try runCLI(["run", "-q", modelPath, input, fileOut]), 0)
        let inBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: input)))
        let r = try runCLI(["run", "-q", modelPath, "-", "-"], stdin: .bytes(inBytes))
        expectExit(r, 0)
        let s = try WAVBytes(r.stdout), f = try WAVBytes(path: fileOut)
        let isFloat = kind == "float", bytesPerSample = isFloat ? 4 : 2
        #expect(s.riffSize == 0xFFFF_FFFF && s.dataSize == 0xFFFF_FFFF, "streaming sizes")
        #expect(s.formatTag == (isFloat ? 3 : 1) && s.formatTag == f.formatTag)
        #expect(s.channels == 1 && s.sampleRate == 16000 && s.bitsPerSample == UInt16(8 * bytesPerSample))
        #expect(s.byteRate == UInt32(16000 * bytesPerSample) && s.blockAlign == UInt16(bytesPerSample))
        #expect(s.data.count == 32000 * bytesPerSample)
        #expect(s.data == f.data, "pipe output differs from file output")
    }

    @Test("stdout redirected to a regular file: a complete WAV (real sizes) with the file output's samples")
    func stdoutToFile() throws {
        let dir = TempDir()
        let fileOut = dir.file("file.wav"), redirected = dir.file("redirected.wav")
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, fileOut]), 0)
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, "-"], stdoutFile: redirected), 0)
        let a = try WAVBytes(path: fileOut), b = try WAVBytes(path: redirected)
        #expect(b.dataSize == 64000)
        #expect(b.data == a.data)
    }

    @Test("a streaming WAV on stdin (pipe) is read: run - - | run - OUT.wav")
    func chained() throws {
        let dir = TempDir()
        let once = dir.file("once.wav"), twiceFiles = dir.file("twice-files.wav"), twicePipe = dir.file("twice-pipe.wav")
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, once]), 0)
        expectExit(try runCLI(["run", "-q", modelPath, once, twiceFiles]), 0)
        let inBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: noisyTonePath)))
        let first = try runCLI(["run", "-q", modelPath, "-", "-"], stdin: .bytes(inBytes))
        expectExit(first, 0)
        let second = try runCLI(["run", "-q", modelPath, "-", twicePipe], stdin: .bytes(first.stdout))
        expectExit(second, 0)
        let a = try readWAV(twiceFiles), b = try readWAV(twicePipe)
        #expect(b.frames == 32000)
        #expect(b.samples == a.samples)
    }
}

@Suite("ssm-stream run: errors and exit codes")
struct RunErrorTests {
    @Test("missing model → 67, message names the path")
    func missingModel() throws {
        let dir = TempDir()
        let model = dir.file("no-such-model.safetensors")
        let r = try runCLI(["run", model, noisyTonePath, dir.file("out.wav")])
        expectExit(r, 67)
        #expect(r.stderr.contains(model), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.wav")))
    }

    @Test("a WAV given as the model → 67")
    func notAModel() throws {
        let dir = TempDir()
        let r = try runCLI(["run", noisyTonePath, noisyTonePath, dir.file("out.wav")])
        expectExit(r, 67)
        #expect(r.stderr.contains(noisyTonePath) || r.stderr.contains("noisy-tone.wav"), "stderr: \(r.stderr)")
    }

    @Test("non-audio input → 65, message names the input")
    func nonAudio() throws {
        let dir = TempDir()
        let input = dir.file("notes.wav")
        try Data("just some text, no RIFF header here\n".utf8).write(to: URL(fileURLWithPath: input))
        let r = try runCLI(["run", modelPath, input, dir.file("out.wav")])
        expectExit(r, 65)
        #expect(r.stderr.contains(input), "stderr: \(r.stderr)")
    }

    @Test("non-audio on stdin → 65")
    func nonAudioStdin() throws {
        let r = try runCLI(["run", modelPath, "-", "-"], stdin: .bytes(Array(repeating: 0x41, count: 5000)))
        expectExit(r, 65)
        #expect(r.stdout.isEmpty, "wrote \(r.stdout.count) bytes to stdout for a bad input")
    }

    @Test("44.1 kHz input → 65, message names 44100 and 16000")
    func wrongRate() throws {
        let dir = TempDir()
        let input = dir.file("cd.wav")
        try writeWAV(input, rate: 44100, format: AudioFormat.wav16, sine(440, seconds: 0.1, rate: 44100))
        let r = try runCLI(["run", modelPath, input, dir.file("out.wav")])
        expectExit(r, 65)
        #expect(r.stderr.contains("44100") && r.stderr.contains("16000"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains("--resample") && r.stderr.contains("sox '\(input)' -r 16000 converted.wav"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.wav")), "output created for a refused input")
        // Text at another rate: the hint is --resample alone (sox does not read CSV).
        try writeLines(dir.file("s.csv"), [0.1, 0.2, 0.3])
        let t = try runCLI(["run", modelPath, dir.file("s.csv"), dir.file("out.csv"), "--rate", "8000"])
        expectExit(t, 65)
        #expect(t.stderr.contains("add --resample)") && !t.stderr.contains("sox"), "stderr: \(t.stderr)")
    }

    @Test("an output name whose extension is no container this build writes → 64 (not WAV bytes under another name)")
    func unknownExtension() throws {
        let dir = TempDir()
        let r = try runCLI(["run", modelPath, noisyTonePath, dir.file("out.mp3")])
        expectExit(r, 64)
        #expect(r.stderr.contains("'.mp3' is not a container this build writes") && r.stderr.contains("--format"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.mp3")))
        // With --format the name is the user's choice; a name without a letter extension keeps the input's container.
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, dir.file("out.mp3"), "--format", "wav"]), 0)
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, dir.file("take.1")]), 0)
        #expect(try readWAV(dir.file("take.1")).samples.count == 32000)
    }

    @Test("one channel is \"1 channel\" in messages")
    func oneChannel() throws {
        let r = try runCLI(["run", modelPath, noisyTonePath, "-", "--channels", "2"])
        expectExit(r, 64)
        #expect(r.stderr.contains("(1 channel)"), "stderr: \(r.stderr)")
    }

    @Test("stereo input to a mono model → 65, message names the channel counts")
    func wrongChannels() throws {
        let dir = TempDir()
        let input = dir.file("stereo.wav")
        try writeWAV(input, channels: 2, format: AudioFormat.wav16, [Float](repeating: 0.1, count: 2 * 800))
        let r = try runCLI(["run", modelPath, input, dir.file("out.wav")])
        expectExit(r, 65)
        #expect(r.stderr.contains("2 channel"), "stderr: \(r.stderr)")
    }

    @Test("missing input file → 66, message names the path")
    func missingInput() throws {
        let dir = TempDir()
        let input = dir.file("absent.wav")
        let r = try runCLI(["run", modelPath, input, dir.file("out.wav")])
        expectExit(r, 66)
        #expect(r.stderr.contains(input), "stderr: \(r.stderr)")
    }

    @Test("output in a nonexistent directory → 73, message names the path")
    func outputDirectoryMissing() throws {
        let dir = TempDir()
        let out = dir.file("nowhere/out.wav")
        let r = try runCLI(["run", modelPath, noisyTonePath, out])
        expectExit(r, 73)
        #expect(r.stderr.contains(out), "stderr: \(r.stderr)")
    }

    @Test("output pipe closed by the reader mid-stream → 74 (an exit, not SIGPIPE), message on stderr")
    func closedOutputPipe() throws {
        try requireCLI()
        let dir = TempDir()
        let input = dir.file("long.wav")
        // 20 s of float audio: 1.28 MB of output, far more than a pipe buffer holds.
        try writeWAV(input, sine(777, seconds: 20))
        // The child inherits ignored and blocked signals across exec (Foundation.Process does not
        // reset them): only if SIGPIPE is at its default here does this test show that ssm-stream
        // handles SIGPIPE itself rather than being killed by it.
        #expect(!sigpipeIgnoredOrBlockedHere(), "SIGPIPE is ignored or blocked in the test runner; the child inherits it")
        let p = Process()
        p.executableURL = cliURL
        p.arguments = ["run", "--mode", "block", modelPath, input, "-"]
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let err = Box<[UInt8]>([])
        let waitErr = spawnThread { err.value = readAll(fd: errPipe.fileHandleForReading.fileDescriptor) }
        let timedOut = watchdog(p, 60)
        var head = [UInt8](repeating: 0, count: 12)
        let n = head.withUnsafeMutableBytes { read(outPipe.fileHandleForReading.fileDescriptor, $0.baseAddress, 12) }
        try outPipe.fileHandleForReading.close()
        waitErr()
        p.waitUntilExit()
        let stderr = String(decoding: err.value, as: UTF8.self)
        #expect(n == 12 && Array(head[0..<4]) == Array("RIFF".utf8))
        #expect(!timedOut.value, "ssm-stream did not stop after its reader went away")
        #expect(p.terminationReason == .exit, "killed by signal \(p.terminationStatus)")
        #expect(p.terminationStatus == 74, "exit \(p.terminationStatus); stderr: \(stderr)")
        #expect(stderr.contains("stdout"), "stderr: \(stderr)")
    }

    @Test("a valid WAV with 0 frames → 65")
    func emptyInput() throws {
        let dir = TempDir()
        let input = dir.file("empty.wav")
        try writeWAV(input, format: AudioFormat.wav16, [])
        let r = try runCLI(["run", modelPath, input, dir.file("out.wav")])
        expectExit(r, 65)
        #expect(r.stderr.contains("no audio frames"), "stderr: \(r.stderr)")
    }

    @Test("NaN samples in a float WAV → exit 0, a warning, NaNs processed as 0 (output finite)")
    func nanInput() throws {
        let dir = TempDir()
        var x = sine(500, seconds: 1)
        let zeroed = dir.file("zeroed.wav"), withNaN = dir.file("nan.wav")
        let positions = [0, 1, 100, 5000, 15999]
        for i in positions { x[i] = 0 }
        try writeWAV(zeroed, x)
        for i in positions { x[i] = .nan }
        x[200] = .infinity  // also non-finite; the summary counts NaN and Inf together
        try writeWAV(withNaN, x)
        x[200] = 0
        try writeWAV(zeroed, x)
        let a = dir.file("a.wav"), b = dir.file("b.wav")
        let r = try runCLI(["run", modelPath, withNaN, a])
        expectExit(r, 0)
        #expect(r.stderr.contains("NaN"), "no warning on stderr: \(r.stderr)")
        #expect(r.stderr.contains("replaced 6 "), "count of replaced samples: \(r.stderr)")
        expectExit(try runCLI(["run", "-q", modelPath, zeroed, b]), 0)
        let ya = try readWAV(a).samples, yb = try readWAV(b).samples
        #expect(ya.count == 16000)
        let nonFinite = ya.filter { !$0.isFinite }.count
        #expect(nonFinite == 0, "\(nonFinite) non-finite output samples")
        #expect(ya == yb, "NaN/Inf input is not processed exactly as 0")
    }
}

@Suite("ssm-stream run: other formats, usage, file safety")
struct RunMiscTests {
    @Test("usage errors → 64", arguments: [
        ["run", "--block", "0", "models/lowpass-1k.safetensors", "examples/noisy-tone.wav", "/dev/null"],
        ["run", "--mode", "turbo", "models/lowpass-1k.safetensors"],
        ["run"],
        ["no-such-subcommand"],
    ])
    func usage(_ args: [String]) throws {
        let r = try runCLI(args)
        expectExit(r, 64)
        #expect(!r.stderr.isEmpty)
    }

    @Test("FLAC file in → FLAC file out, same samples as from the WAV")
    func flacFiles() throws {
        let dir = TempDir()
        let flacIn = dir.file("in.flac"), flacOut = dir.file("out.flac"), wavOut = dir.file("out.wav")
        let x = try readWAV(noisyTonePath)
        try writeWAV(flacIn, format: flac16Format, x.samples)
        expectExit(try runCLI(["run", "-q", modelPath, flacIn, flacOut]), 0)
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, wavOut]), 0)
        let a = try readWAV(flacOut), b = try readWAV(wavOut)
        #expect(a.format.format == flac16Format && a.frames == 32000)
        // libsndfile rounds to nearest for FLAC and floors for WAV: 1 LSB apart at most.
        let d = zip(a.samples, b.samples).map { abs(Double($0) - Double($1)) * 32768 }.max() ?? .infinity
        #expect(d <= 1, "FLAC vs WAV output: \(d) LSB")
    }

    @Test("FLAC on a stdin pipe: libsndfile cannot decode it there; exit 65 with a hint to pipe WAV")
    func flacFromStdinPipe() throws {
        let dir = TempDir()
        let flacIn = dir.file("in.flac"), out = dir.file("out.wav")
        try writeWAV(flacIn, format: flac16Format, try readWAV(noisyTonePath).samples)
        let r = try runCLI(["run", "-q", modelPath, "-", out], stdin: .bytes([UInt8](try Data(contentsOf: URL(fileURLWithPath: flacIn)))))
        expectExit(r, 65)
        #expect(r.stderr.contains("sox in.flac -t wav -"), "stderr: \(r.stderr)")
    }

    @Test("FLAC to a stdout pipe is refused (libFLAC seeks back to finish the stream): exit 73")
    func flacToStdoutPipe() throws {
        let dir = TempDir()
        let flacIn = dir.file("in.flac")
        try writeWAV(flacIn, format: flac16Format, try readWAV(noisyTonePath).samples)
        let r = try runCLI(["run", "-q", modelPath, flacIn, "-"])
        expectExit(r, 73)
        #expect(r.stderr.contains("FLAC cannot be written to a pipe"), "stderr: \(r.stderr)")
        #expect(r.stdout.isEmpty, "\(r.stdout.count) bytes on stdout")
    }

    @Test("output path = input path: refused before the input is truncated")
    func sameInputAndOutput() throws {
        let dir = TempDir()
        let path = dir.file("precious.wav")
        try FileManager.default.copyItem(atPath: noisyTonePath, toPath: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try runCLI(["run", modelPath, path, dir.path + "/./precious.wav"])
        #expect(r.exitedNormally && r.status != 0, "exit \(r.status): wrote over its own input")
        let after = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(after == before, "input file is now \(after.count) bytes (was \(before.count)); stderr: \(r.stderr)")
        expectExit(r, 73)
    }
}

@Suite("ssm-stream conformance")
struct ConformanceCLITests {
    @Test("s4d + s5 + lru golden vectors: exit 0, 13 passed, 0 failed")
    func implementedFamilies() throws {
        let r = try runCLI(["conformance", goldenRoot + "/s4d", goldenRoot + "/s5", goldenRoot + "/lru"])
        expectExit(r, 0)
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.contains("13 passed, 0 failed"), "stdout: \(out)")
        #expect(!out.contains("FAIL"))
    }

    @Test("every golden family passes: exit 0, 29 passed, 0 failed")
    func allFamilies() throws {
        let r = try runCLI(["conformance", goldenRoot])
        expectExit(r, 0)
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.contains("29 passed, 0 failed"), "stdout: \(out)")
    }

    @Test("a case of a family this build lacks: exit 1 with a FAIL line naming it")
    func notImplemented() throws {
        let dir = TempDir()
        let meta = #"{"family":"mamba3","case":"future_case","kind":"mixer","tolerance":{"atol":1e-4,"rtol":1e-4}}"#
        let bytes = SafeTensors.serialize([(name: "input", shape: [1, 1, 1], values: [0]), (name: "output", shape: [1, 1, 1], values: [0])],
                                          metadata: ["golden": meta])
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("future.safetensors")))
        let r = try runCLI(["conformance", dir.path])
        expectExit(r, 1)
        let out = String(decoding: r.stdout, as: UTF8.self)
        #expect(out.contains("FAIL") && out.contains("mamba3") && out.contains("not implemented"), "stdout: \(out)")
        #expect(out.contains("0 passed, 1 failed"), "stdout: \(out)")
    }

    @Test("a nonexistent directory: non-zero exit, message names it")
    func missingDirectory() throws {
        let dir = TempDir()
        let missing = dir.file("no-golden-here")
        let r = try runCLI(["conformance", missing])
        #expect(r.exitedNormally && r.status != 0, "exit \(r.status)")
        #expect(r.stderr.contains(missing), "stderr: \(r.stderr)")
    }

    @Test("a nonexistent directory next to a good one: non-zero exit (a typo must not pass CI)")
    func missingNextToGood() throws {
        let dir = TempDir()
        let missing = dir.file("no-golden-here")
        let r = try runCLI(["conformance", goldenRoot + "/lru", missing])
        #expect(r.stderr.contains(missing), "stderr: \(r.stderr)")
        expectExit(r, 66)
    }
}

@Suite("ssm-stream bench")
struct BenchCLITests {
    @Test("bench --json: one JSON object with positive step/block ns per sample")
    func json() throws {
        let r = try runCLI(["bench", "--family", "lru", "--H", "8", "--P", "8", "--seconds", "0.01", "--repeats", "1", "--json"])
        expectExit(r, 0)
        let text = String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!text.contains("\n"), "more than one line: \(text)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
        let step = try #require(obj["step_ns_per_sample"] as? NSNumber, "step_ns_per_sample missing or not a number")
        let block = try #require(obj["block_ns_per_sample"] as? NSNumber, "block_ns_per_sample missing or not a number")
        #expect(step.doubleValue > 0 && step.doubleValue.isFinite)
        #expect(block.doubleValue > 0 && block.doubleValue.isFinite)
        #expect(obj["family"] as? String == "lru")
        #expect((obj["H"] as? NSNumber)?.intValue == 8 && (obj["P"] as? NSNumber)?.intValue == 8)
    }

    @Test("bench --family h3 times the H3 layer; an odd --P (N) is refused for h3")
    func h3() throws {
        let r = try runCLI(["bench", "--family", "h3", "--H", "8", "--P", "8", "--seconds", "0.01", "--repeats", "1", "--json"])
        expectExit(r, 0)
        let text = String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
        #expect(obj["family"] as? String == "h3")
        #expect(((obj["step_ns_per_sample"] as? NSNumber)?.doubleValue ?? 0) > 0)
        #expect(((obj["flops_per_sample"] as? NSNumber)?.intValue ?? 0) > 0)
        let odd = try runCLI(["bench", "--family", "h3", "--H", "8", "--P", "7", "--seconds", "0.01", "--repeats", "1"])
        expectExit(odd, 64)
        #expect(odd.stderr.contains("h3 needs an even --P"), "stderr: \(odd.stderr)")
    }
}
