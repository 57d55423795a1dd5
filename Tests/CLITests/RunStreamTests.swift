// Black-box tests of `ssm-stream run` beyond WAV in/WAV out: raw PCM, text sensor logs,
// --per-channel, --resample, --format/--encoding, --strict, and classifier models writing events.

import Foundation
import Testing
import SSM
import SSMIO

/// Writes a model file; returns its path.
func writeModel(_ path: String, spec: ModelSpec, tensors: [String: Tensor]) throws -> String {
    try Data(ModelFile.serialize(spec: spec, tensors: tensors)).write(to: URL(fileURLWithPath: path))
    return path
}

/// A classifier whose scores are its input: one S5 lane with Λ̄ = 0, B = C = 0 and D = 1 passes
/// u through (y = D u), and the decoder maps it to the classes "up" (u) and "down" (−u); with
/// `"scores": "identity"` the score of "up" at sample t is exactly u_t, so the events a signal
/// must produce can be written down by hand.
func passThroughClassifier(_ dir: TempDir, rate: Int = 100, events: ModelSpec.EventDefaults? = nil, name: String = "updown") throws -> String {
    let layer = LayerSpec(family: .s5, dModel: 1, dState: 1, discretization: Discretization.none)
    let block = BlockSpec(layer: layer, norm: BlockSpec.Norm.none, residual: false, activation: BlockSpec.Activation.none, output: BlockSpec.Output.none)
    var spec = ModelSpec(task: .classify, sampleRate: rate, dInput: 1, dModel: 1, dOutput: 2, encoder: false,
                         decoder: true, blocks: [block], labels: ["up", "down"], scores: .identity)
    spec.events = events
    let t: [String: Tensor] = [
        "layers.0.layer.Lambda_re": Tensor([0], shape: [1]), "layers.0.layer.Lambda_im": Tensor([0], shape: [1]),
        "layers.0.layer.B": Tensor([0, 0], shape: [1, 1, 2]), "layers.0.layer.C": Tensor([0, 0], shape: [1, 1, 2]),
        "layers.0.layer.D": Tensor([1], shape: [1]), "layers.0.layer.log_step": Tensor([0], shape: [1, 1]),
        "decoder.weight": Tensor([1, -1], shape: [2, 1]), "decoder.bias": Tensor([0, 0], shape: [2]),
    ]
    return try writeModel(dir.file(name + ".safetensors"), spec: spec, tensors: t)
}

/// Text lines, one value per line.
func writeLines(_ path: String, _ x: [Double], header: String? = nil) throws {
    var s = header.map { $0 + "\n" } ?? ""
    for v in x { s += "\(v)\n" }
    try s.write(toFile: path, atomically: true, encoding: .utf8)
}

/// The JSON objects of a JSON Lines output.
func jsonLines(_ bytes: [UInt8]) throws -> [[String: Any]] {
    try String(decoding: bytes, as: UTF8.self).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "not a JSON object: \($0)")
    }
}

/// Power of `x` at `freq` (Goertzel), normalized so a unit-amplitude sine gives 0.5.
func tonePower(_ x: [Float], freq: Double, rate: Double) -> Double {
    var re = 0.0, im = 0.0
    for (n, v) in x.enumerated() {
        let w = 2 * Double.pi * freq * Double(n) / rate
        re += Double(v) * cos(w); im -= Double(v) * sin(w)
    }
    let a = 2 * (re * re + im * im).squareRoot() / Double(x.count)
    return a * a / 2
}

@Suite("ssm-stream run: raw, text, channels, rates, formats")
struct RunStreamTests {
    @Test("raw s16le in → raw s16le out, samples equal to the WAV route (stdin and file)")
    func rawPCM() throws {
        let dir = TempDir()
        let wavOut = dir.file("ref.wav")
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, wavOut]), 0)
        let ref = try readWAV(wavOut).samples
        // The input's PCM bytes: the WAV's data chunk (16-bit mono, 44-byte header).
        let wav = try [UInt8](Data(contentsOf: URL(fileURLWithPath: noisyTonePath)))
        let raw = Array(wav[44...])
        #expect(raw.count == 64000)
        let rawIn = dir.file("in.pcm"), rawOut = dir.file("out.pcm")
        try Data(raw).write(to: URL(fileURLWithPath: rawIn))
        let args = ["--input-format", "s16le", "--rate", "16000", "--channels", "1"]
        expectExit(try runCLI(["run", "-q", modelPath, rawIn, rawOut] + args), 0)
        let fromFile = try [UInt8](Data(contentsOf: URL(fileURLWithPath: rawOut)))
        let piped = try runCLI(["run", "-q", modelPath, "-", "-"] + args, stdin: .bytes(raw))
        expectExit(piped, 0)
        #expect(fromFile.count == 64000 && piped.stdout == fromFile)
        let y = stride(from: 0, to: fromFile.count, by: 2).map {
            Float(Int16(bitPattern: UInt16(fromFile[$0]) | UInt16(fromFile[$0 + 1]) << 8)) / 32768
        }
        #expect(y == ref, "raw output differs from the WAV output")
    }

    @Test("raw input needs --rate and --channels; a .raw name without --input-format is refused (64)")
    func rawUsage() throws {
        let dir = TempDir()
        let rawIn = dir.file("in.raw")
        try Data(count: 3200).write(to: URL(fileURLWithPath: rawIn))
        var r = try runCLI(["run", modelPath, rawIn, dir.file("o.raw"), "--input-format", "s16le"])
        expectExit(r, 64)
        #expect(r.stderr.contains("--rate") && r.stderr.contains("--channels"), "\(r.stderr)")
        r = try runCLI(["run", modelPath, rawIn, dir.file("o.raw")])
        expectExit(r, 64)
        #expect(r.stderr.contains("--input-format"), "\(r.stderr)")
        r = try runCLI(["run", modelPath, noisyTonePath, dir.file("o.wav"), "--rate", "8000"])
        expectExit(r, 64)
        #expect(r.stderr.contains("contradicts"), "\(r.stderr)")
    }

    @Test("stereo WAV with --per-channel: each channel equals the mono run of that channel (step and block)")
    func perChannel() throws {
        let dir = TempDir()
        let left = sine(300, seconds: 1), right = sine(3000, seconds: 1, amplitude: 0.3)
        var stereo: [Float] = []
        for i in 0..<left.count { stereo += [left[i], right[i]] }
        let st = dir.file("st.wav"), l = dir.file("l.wav"), r = dir.file("r.wav")
        try writeWAV(st, channels: 2, stereo); try writeWAV(l, left); try writeWAV(r, right)
        for mode in ["step", "block"] {
            let out = dir.file("out-\(mode).wav"), lo = dir.file("lo.wav"), ro = dir.file("ro.wav")
            expectExit(try runCLI(["run", "-q", "--per-channel", "--mode", mode, modelPath, st, out]), 0)
            expectExit(try runCLI(["run", "-q", "--mode", mode, modelPath, l, lo]), 0)
            expectExit(try runCLI(["run", "-q", "--mode", mode, modelPath, r, ro]), 0)
            let y = try readWAV(out)
            #expect(y.format.channels == 2)
            let yl = try readWAV(lo).samples, yr = try readWAV(ro).samples
            let gotL = stride(from: 0, to: y.samples.count, by: 2).map { y.samples[$0] }
            let gotR = stride(from: 1, to: y.samples.count, by: 2).map { y.samples[$0] }
            #expect(gotL == yl && gotR == yr, "\(mode): per-channel output differs from the mono runs")
        }
        let e = try runCLI(["run", modelPath, st, dir.file("x.wav")])
        expectExit(e, 65)
        #expect(e.stderr.contains("2 channel(s)") && e.stderr.contains("--per-channel"), "\(e.stderr)")
    }

    @Test("CSV sensor log with a header, two columns, --per-channel: CSV out, values equal the float WAV route")
    func textLog() throws {
        let dir = TempDir()
        let a = sine(440, seconds: 0.25), b = sine(2500, seconds: 0.25, amplitude: 0.2)
        var csv = "# a test log\nx,y\n"
        for i in 0..<a.count { csv += "\(a[i]),\(b[i])\n" }
        let inPath = dir.file("log.csv"), outPath = dir.file("out.csv")
        try csv.write(toFile: inPath, atomically: true, encoding: .utf8)
        expectExit(try runCLI(["run", "-q", "--per-channel", "--rate", "16000", modelPath, inPath, outPath]), 0)
        let lines = try String(contentsOfFile: outPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "x,y", "header carried over: \(lines.first ?? "")")
        let rows = lines.dropFirst().map { $0.split(separator: ",").map { Float(String($0))! } }
        #expect(rows.count == a.count && rows.allSatisfy { $0.count == 2 })
        let stereo = dir.file("st.wav"), ref = dir.file("ref.wav")
        var inter: [Float] = []
        for i in 0..<a.count { inter += [a[i], b[i]] }
        try writeWAV(stereo, channels: 2, inter)
        expectExit(try runCLI(["run", "-q", "--per-channel", modelPath, stereo, ref]), 0)
        let y = try readWAV(ref).samples
        #expect(rows.flatMap { $0 } == y, "text output differs from the float WAV output (9 digits carry a Float exactly)")
        // Text on stdin needs --rate; a bad line names its number.
        var r = try runCLI(["run", modelPath, "-", "-", "--input-format", "text"], stdin: .bytes(Array("1\n2\n".utf8)))
        expectExit(r, 64)
        #expect(r.stderr.contains("--rate"))
        r = try runCLI(["run", modelPath, "-", "-", "--input-format", "text", "--rate", "16000"],
                       stdin: .bytes(Array("0.1\n0.2\nabc\n0.3\n".utf8)))
        expectExit(r, 65)
        #expect(r.stderr.contains("line 3") && r.stderr.contains("abc"), "\(r.stderr)")
        #expect(String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").count == 2,
                "the two lines before the bad one are written: \(String(decoding: r.stdout, as: UTF8.self))")
    }

    @Test("48 kHz input with --resample: 48 kHz out, same length, the lowpass passes 300 Hz and removes 5 kHz")
    func resample() throws {
        let dir = TempDir()
        let rate = 48000.0
        let x = (0..<48000).map { Float(0.4 * sin(2 * .pi * 300 * Double($0) / rate) + 0.4 * sin(2 * .pi * 5000 * Double($0) / rate)) }
        let inPath = dir.file("in48.wav"), out = dir.file("out48.wav")
        try writeWAV(inPath, rate: 48000, x)
        let refused = try runCLI(["run", modelPath, inPath, out])
        expectExit(refused, 65)
        #expect(refused.stderr.contains("48000") && refused.stderr.contains("16000") && refused.stderr.contains("--resample"))
        expectExit(try runCLI(["run", "-q", "--resample", modelPath, inPath, out]), 0)
        let y = try readWAV(out)
        #expect(y.format.sampleRate == 48000)
        #expect(abs(y.samples.count - 48000) <= 2, "length \(y.samples.count)")
        let steady = Array(y.samples[4800..<43200])
        let p300 = tonePower(steady, freq: 300, rate: rate), p5k = tonePower(steady, freq: 5000, rate: rate)
        // 4th-order Butterworth at 1 kHz: 300 Hz passes (−0.0 dB), 5 kHz is ~−56 dB (bilinear).
        #expect(abs(10 * log10(p300 / 0.08)) < 0.2, "300 Hz gain \(10 * log10(p300 / 0.08)) dB")
        #expect(10 * log10(p5k / 0.08) < -45, "5 kHz gain \(10 * log10(p5k / 0.08)) dB")
    }

    @Test("--format and --encoding, and the output name's extension, choose the container")
    func outputFormats() throws {
        let dir = TempDir()
        let flac = dir.file("out.flac"), au = dir.file("out.bin"), wav = dir.file("out.wav")
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, flac]), 0)
        #expect(try readWAV(flac).format.format == flac16Format)
        expectExit(try runCLI(["run", "-q", "--format", "au", "--encoding", "f32", modelPath, noisyTonePath, au]), 0)
        let f = try readWAV(au).format.format
        #expect(f == Int32(0x03_0006), "AU float: \(String(f, radix: 16))")
        expectExit(try runCLI(["run", "-q", "--encoding", "s24", modelPath, noisyTonePath, wav]), 0)
        #expect(try readWAV(wav).format.format == Int32(0x01_0003))
        let r = try runCLI(["run", "--format", "mp9", modelPath, noisyTonePath, wav])
        expectExit(r, 64)
        #expect(r.stderr.contains("mp9"))
    }

    @Test("--strict: a NaN stops the run with 65, and the frames before it are written")
    func strictNaN() throws {
        let dir = TempDir()
        var x = sine(500, seconds: 1)
        x[1000] = .nan
        let inPath = dir.file("nan.wav"), out = dir.file("out.wav")
        try writeWAV(inPath, x)
        let r = try runCLI(["run", "--strict", "--block", "300", modelPath, inPath, out])
        expectExit(r, 65)
        #expect(r.stderr.contains("frame 1000"), "\(r.stderr)")
        let y = try readWAV(out)
        #expect(y.samples.count == 1000, "frames before the NaN: \(y.samples.count)")
    }

    @Test("truncated WAV (file and pipe) and FLAC: exit 65 naming the truncation, the frames present processed and written")
    func truncated() throws {
        let dir = TempDir()
        let full = dir.file("full.wav")
        expectExit(try runCLI(["run", "-q", modelPath, noisyTonePath, full]), 0)
        let ref = try readWAV(full).samples
        let wav = try [UInt8](Data(contentsOf: URL(fileURLWithPath: noisyTonePath)))
        let cut = Array(wav[..<30000])           // 44-byte header + 14978 frames (and a half)
        let cutPath = dir.file("cut.wav"), out = dir.file("out.wav")
        try Data(cut).write(to: URL(fileURLWithPath: cutPath))
        var r = try runCLI(["run", modelPath, cutPath, out])
        expectExit(r, 65)
        #expect(r.stderr.contains("truncated") && r.stderr.contains("14978 frames"), "\(r.stderr)")
        let y = try readWAV(out).samples
        #expect(y.count == 14978 && y == Array(ref[..<14978]))
        r = try runCLI(["run", modelPath, "-", "-"], stdin: .bytes(cut))
        expectExit(r, 65)
        #expect(r.stderr.contains("announces 32000 frames"), "\(r.stderr)")
        // FLAC: libFLAC loses sync where the file ends.
        let flac = dir.file("full.flac"), flacOut = dir.file("out.flac")
        expectExit(try runCLI(["run", "-q", "--format", "flac", "--encoding", "s16", modelPath, noisyTonePath, flac]), 0)
        let fb = try [UInt8](Data(contentsOf: URL(fileURLWithPath: flac)))
        try Data(fb[..<(fb.count / 2)]).write(to: URL(fileURLWithPath: flac))
        r = try runCLI(["run", modelPath, flac, flacOut])
        expectExit(r, 65)
        #expect(r.stderr.contains("corrupt or truncated"), "\(r.stderr)")
        let yf = try readWAV(flacOut).samples.count
        #expect(yf > 0 && yf < 32000, "frames before the damage are written: \(yf)")
    }

    @Test("event options on a filter model, --format on a classifier → 64")
    func misplacedOptions() throws {
        let dir = TempDir()
        expectExit(try runCLI(["run", "--threshold", "0.7", modelPath, noisyTonePath, dir.file("o.wav")]), 64)
        let cls = try passThroughClassifier(dir)
        try writeLines(dir.file("in.txt"), [0, 1, 0])
        expectExit(try runCLI(["run", "--format", "wav", "--rate", "100", cls, dir.file("in.txt"), "-"]), 64)
    }
}

@Suite("ssm-stream run: classifier events")
struct RunEventTests {
    /// 0.1 s silence, 0.2 s "up" (with a dip to 0.45 inside the hysteresis band), 0.1 s silence,
    /// 0.3 s "down", 0.1 s silence; at 100 Hz.
    static let signal: [Double] = Array(repeating: 0, count: 10) + Array(repeating: 0.9, count: 8) + [0.45]
        + Array(repeating: 0.7, count: 11) + Array(repeating: 0, count: 10) + Array(repeating: -0.8, count: 30)
        + Array(repeating: 0, count: 10)

    @Test("events: class, start/end in seconds and samples, peak, mean; hysteresis keeps a dip inside one event")
    func events() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        let inPath = dir.file("in.txt")
        try writeLines(inPath, Self.signal)
        let r = try runCLI(["run", "-q", "--rate", "100", model, inPath, "-"])
        expectExit(r, 0)
        let ev = try jsonLines(r.stdout)
        try #require(ev.count == 2, "events: \(String(decoding: r.stdout, as: UTF8.self))")
        #expect(ev[0]["class"] as? String == "up" && ev[1]["class"] as? String == "down")
        #expect(ev[0]["start_sample"] as? Int == 10 && ev[0]["end_sample"] as? Int == 30)
        #expect(ev[1]["start_sample"] as? Int == 40 && ev[1]["end_sample"] as? Int == 70)
        #expect(abs((ev[0]["start"] as? Double ?? -1) - 0.1) < 1e-9 && abs((ev[1]["end"] as? Double ?? -1) - 0.7) < 1e-9)
        #expect(abs((ev[0]["peak"] as? Double ?? -1) - 0.9) < 1e-6)
        let mean = (8 * 0.9 + 0.45 + 11 * 0.7) / 20
        #expect(abs((ev[0]["mean"] as? Double ?? -1) - mean) < 1e-6)
        #expect(abs((ev[1]["peak"] as? Double ?? -1) - 0.8) < 1e-6)
        // A release above the dip splits the event in two.
        let split = try runCLI(["run", "-q", "--rate", "100", "--release", "0.5", model, inPath, "-"])
        expectExit(split, 0)
        let s = try jsonLines(split.stdout).filter { $0["class"] as? String == "up" }
        #expect(s.map { $0["start_sample"] as? Int } == [10, 19] && s.map { $0["end_sample"] as? Int } == [18, 30])
    }

    @Test("--min-duration drops short events, --min-gap merges, --ignore silences a class, --posteriors every N")
    func options() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        let inPath = dir.file("in.txt")
        try writeLines(inPath, Self.signal)
        var r = try runCLI(["run", "-q", "--rate", "100", "--min-duration", "0.25", model, inPath, "-"])
        expectExit(r, 0)
        #expect(try jsonLines(r.stdout).map { $0["class"] as? String } == ["down"])
        r = try runCLI(["run", "-q", "--rate", "100", "--release", "0.5", "--min-gap", "0.05", model, inPath, "-"])
        expectExit(r, 0)
        let up = try jsonLines(r.stdout).filter { $0["class"] as? String == "up" }
        #expect(up.count == 1 && up.first?["end_sample"] as? Int == 30, "\(up)")
        r = try runCLI(["run", "-q", "--rate", "100", "--ignore", "up", model, inPath, "-"])
        #expect(try jsonLines(r.stdout).map { $0["class"] as? String } == ["down"])
        r = try runCLI(["run", "-q", "--rate", "100", "--ignore", "sideways", model, inPath, "-"])
        expectExit(r, 64)
        #expect(r.stderr.contains("sideways") && r.stderr.contains("up, down"))
        r = try runCLI(["run", "-q", "--rate", "100", "--posteriors", "20", model, inPath, "-"])
        expectExit(r, 0)
        let post = try jsonLines(r.stdout).filter { $0["type"] as? String == "posteriors" }
        #expect(post.map { $0["sample"] as? Int } == [0, 20, 40, 60])
        let scores = post[1]["scores"] as? [String: Double]
        #expect(abs((scores?["up"] ?? 0) - 0.7) < 1e-6 && abs((scores?["down"] ?? 0) + 0.7) < 1e-6)
    }

    @Test("--grouping exclusive: \"up\" running straight into \"down\" is one event, of the class with the most evidence; a bad mode → 64")
    func grouping() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)   // identity scores: per-class unless told
        let inPath = dir.file("in.txt")
        // 0.1 s "up" at 0.9, straight into 0.3 s "down" at 0.8 (its score −0.8 for "up"), then silence.
        try writeLines(inPath, Array(repeating: 0, count: 10) + Array(repeating: 0.9, count: 10) + Array(repeating: -0.8, count: 30)
            + Array(repeating: 0, count: 10))
        var r = try runCLI(["run", "-q", "--rate", "100", model, inPath, "-"])
        expectExit(r, 0)
        #expect(try jsonLines(r.stdout).map { $0["class"] as? String } == ["up", "down"])
        r = try runCLI(["run", "-q", "--rate", "100", "--grouping", "exclusive", model, inPath, "-"])
        expectExit(r, 0)
        let ev = try jsonLines(r.stdout)
        #expect(ev.map { $0["class"] as? String } == ["down"])
        #expect(ev.first?["start_sample"] as? Int == 10 && ev.first?["end_sample"] as? Int == 50, "\(ev)")
        r = try runCLI(["run", "-q", "--rate", "100", "--grouping", "sometimes", model, inPath, "-"])
        expectExit(r, 64)
        #expect(r.stderr.contains("exclusive") && r.stderr.contains("per-class"), "\(r.stderr)")
        // A filter model takes no event options.
        expectExit(try runCLI(["run", "--grouping", "exclusive", modelPath, noisyTonePath, dir.file("o.wav")]), 64)
    }

    @Test("a model's own event settings (\"events\" in its metadata) apply without flags; flags override them")
    func modelEventDefaults() throws {
        let dir = TempDir()
        let plain = try passThroughClassifier(dir)
        let quiet = try passThroughClassifier(dir, events: ModelSpec.EventDefaults(ignore: ["up"]), name: "quiet")
        let long = try passThroughClassifier(dir, events: ModelSpec.EventDefaults(minDuration: 0.25), name: "long")
        let inPath = dir.file("in.txt")
        try writeLines(inPath, Self.signal)
        func classes(_ args: [String]) throws -> [String?] {
            let r = try runCLI(["run", "-q", "--rate", "100"] + args + [inPath, "-"])
            expectExit(r, 0)
            return try jsonLines(r.stdout).map { $0["class"] as? String }
        }
        let all = try classes([plain])
        #expect(all.contains("up") && all.contains("down"))
        #expect(try classes([quiet]) == ["down"])                       // as --ignore up
        #expect(try classes([long]) == ["down"])                        // as --min-duration 0.25
        #expect(try classes(["--min-duration", "0", long]) == all)     // the flag wins
        // A model suggesting a class it does not have cannot be used.
        let spec = ModelSpec(task: .classify, sampleRate: 100, dInput: 1, dModel: 1, dOutput: 2, encoder: false, decoder: true,
                             blocks: [], labels: ["up", "down"])
        var bad = spec
        bad.events = ModelSpec.EventDefaults(ignore: ["sideways"])
        do {
            _ = try Model(spec: bad, tensors: ["decoder.weight": Tensor([1, -1], shape: [2, 1]), "decoder.bias": Tensor([0, 0], shape: [2])])
            Issue.record("a model ignoring a class it does not have was accepted")
        } catch { #expect(error.message.contains("events.ignore: no class 'sideways'"), "\(error)") }
    }

    @Test("an event still open at the end of the stream is reported, ending at the last sample")
    func openAtEnd() throws {
        let dir = TempDir()
        let model = try passThroughClassifier(dir)
        let inPath = dir.file("in.txt")
        try writeLines(inPath, Array(repeating: 0, count: 5) + Array(repeating: 1, count: 7))
        let r = try runCLI(["run", "-q", "--rate", "100", model, inPath, "-"])
        expectExit(r, 0)
        let ev = try jsonLines(r.stdout)
        #expect(ev.count == 1 && ev.first?["start_sample"] as? Int == 5 && ev.first?["end_sample"] as? Int == 12)
    }
}

/// Runs a shell command under script(1), which gives it a pseudo-terminal (stderr is a tty there):
/// its exit status and everything it wrote to the terminal.
private func onTerminal(_ command: String) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
    p.arguments = ["-qec", command, "/dev/null"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: bytes, as: UTF8.self))
}

@Suite("ssm-stream run: progress")
struct RunProgressTests {
    @Test("a progress line (position, M samples/s, real-time factor, load, ETA) on a terminal, also for a piped input (no ETA); none when stderr is a pipe")
    func progress() throws {
        try requireCLI()
        let dir = TempDir()
        let out = dir.file("out.wav")
        let (status, tty) = try onTerminal("'\(cliURL.path)' run '\(modelPath)' '\(noisyTonePath)' '\(out)'")
        #expect(status == 0)
        #expect(tty.contains("M samples/s") && tty.contains("ETA") && tty.contains("%") && tty.contains("× real time, load "), "terminal output: \(tty)")
        #expect(tty.contains("\r\u{1B}[K"), "the line is redrawn in place and erased before the summary")
        #expect(tty.contains("32000 frames"), "summary after the progress line: \(tty)")
        // Raw samples from a pipe, stderr a terminal: position, speed and load; without a length
        // there is no percentage and no ETA.
        let raw = dir.file("tone.f32")
        try Data(f32le(try readWAV(noisyTonePath).samples)).write(to: URL(fileURLWithPath: raw))
        let (pipeStatus, fromPipe) = try onTerminal(
            "cat '\(raw)' | '\(cliURL.path)' run '\(modelPath)' - '\(out)' --input-format f32le --rate 16000 --channels 1")
        #expect(pipeStatus == 0)
        #expect(fromPipe.contains("M samples/s") && fromPipe.contains("load ") && !fromPipe.contains("ETA"), "terminal output: \(fromPipe)")
        #expect(fromPipe.contains("32000 frames"), "\(fromPipe)")
        let piped = try runCLI(["run", modelPath, noisyTonePath, out])
        expectExit(piped, 0)
        #expect(!piped.stderr.contains("ETA") && !piped.stderr.contains("\u{1B}"), "no progress into a pipe: \(piped.stderr)")
    }
}

@Suite("ssm-stream run: live text")
struct RunLiveTextTests {
    @Test("text on a pipe: each line's output arrives before the next line is written (no waiting for a block of 256)")
    func lineByLine() throws {
        try requireCLI()
        let p = Process()
        p.executableURL = cliURL
        p.arguments = ["run", "-q", modelPath, "-", "-", "--input-format", "text", "--rate", "16000"]
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        var lines = 0
        for i in 0..<4 {
            inPipe.fileHandleForWriting.write(Data("0.\(i + 1)\n".utf8))
            let got = Box(0)
            let done = DispatchSemaphore(value: 0)
            let reader = outPipe.fileHandleForReading
            DispatchQueue.global().async {
                var n = 0
                while n == 0 {
                    let d = reader.availableData
                    if d.isEmpty { break }
                    n += d.filter { $0 == 10 }.count
                }
                got.value = n
                done.signal()
            }
            let inTime = done.wait(timeout: .now() + 10) == .success
            #expect(inTime && got.value >= 1, "line \(i + 1): no output within 10 s of writing it")
            if !inTime { return }
            lines += got.value
        }
        try inPipe.fileHandleForWriting.close()
        let rest = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(lines + rest.filter { $0 == 10 }.count == 4)
    }
}
