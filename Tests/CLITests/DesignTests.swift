// Black-box tests of `ssm-stream design`: a designed filter written, loaded by `run` and equal to
// scipy's second-order sections; a transfer-function file; --json; --help; every refusal's
// message and exit code.

import Foundation
import Testing
import SSM
import SSMIO

/// scipy.signal.butter(8, 1000, fs=16000, output="sos"), computed offline.
let butter8SOS: [[Double]] = [
    [8.881993221155298e-07, 1.7763986442310596e-06, 8.881993221155298e-07, 1.0, -1.3435020629061747, 0.45419615396638463],
    [1.0, 2.0, 1.0, 1.0, -1.4017399331200422, 0.5172323704475157],
    [1.0, 2.0, 1.0, 1.0, -1.5237898734101736, 0.6493382738637062],
    [1.0, 2.0, 1.0, 1.0, -1.7193929141691948, 0.8610574795347461],
]

/// Transposed direct form II sections in Double (scipy.signal.sosfilt).
func sosfilt(_ sos: [[Double]], _ x: [Double]) -> [Double] {
    var y = x
    for s in sos {
        var z1 = 0.0, z2 = 0.0
        for k in y.indices {
            let u = y[k], v = s[0] * u + z1
            z1 = s[1] * u - s[4] * v + z2
            z2 = s[2] * u - s[5] * v
            y[k] = v
        }
    }
    return y
}

/// a₀y[k] = Σ b_j u[k−j] − Σ_{j≥1} a_j y[k−j] (scipy.signal.lfilter) in Double.
func lfilter(_ b: [Double], _ a: [Double], _ x: [Double]) -> [Double] {
    var y = [Double](repeating: 0, count: x.count)
    for k in x.indices {
        var s = 0.0
        for (j, bj) in b.enumerated() where k >= j { s += bj * x[k - j] }
        for (j, aj) in a.enumerated() where j >= 1 && k >= j { s -= aj * y[k - j] }
        y[k] = s / a[0]
    }
    return y
}

/// An impulse, then uniform noise in ±0.5 (float32-exact values), reproducible.
func testSignal(_ n: Int) -> [Float] {
    var s: UInt64 = 0x9E37_79B9_7F4A_7C15
    return (0..<n).map { k in
        if k == 0 { return 1 }
        if k < 64 { return 0 }
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int(s >> 40) - (1 << 23)) / Float(1 << 24)
    }
}

func relErr(_ y: [Float], _ ref: [Double]) -> Double {
    let num = zip(y, ref).map { abs(Double($0) - $1) }.max() ?? .infinity
    return num / (ref.map(abs).max() ?? 1)
}

@Suite("ssm-stream design")
struct DesignTests {
    @Test("design butterworth lowpass order 8 → run equals scipy's SOS filter to 1e-5·max|y| (float WAV)")
    func butterworthThroughRun() throws {
        let dir = TempDir()
        let model = dir.file("lp.safetensors"), input = dir.file("in.wav"), out = dir.file("out.wav")
        let r = try runCLI(["design", "butterworth", "lowpass", "--order", "8", "--cutoff", "1000", "--rate", "16000", "-o", model])
        expectExit(r, 0)
        #expect(r.stderr.contains("8 poles in 4 lanes") && r.stderr.contains("max |p| = 0.927932") && r.stderr.contains(model), "\(r.stderr)")
        let x = testSignal(8000)
        try writeWAV(input, x)
        for mode in ["step", "block"] {
            expectExit(try runCLI(["run", "-q", "--mode", mode, model, input, out]), 0)
            let y = try readWAV(out).samples
            try #require(y.count == x.count)
            let e = relErr(y, sosfilt(butter8SOS, x.map(Double.init)))
            #expect(e <= 1e-5, "\(mode): max|Δ|/max|y| = \(e)")
        }
    }

    @Test("design statespace with a transfer-function file → run equals the direct form; --json lists the lanes")
    func transferFunctionThroughRun() throws {
        let dir = TempDir()
        let tf = dir.file("tf.json"), model = dir.file("tf.safetensors"), input = dir.file("in.wav"), out = dir.file("out.wav")
        let b = [0.02, 0.0, -0.02], a = [1.0, -1.6, 0.81]   // a resonator, poles 0.9·e^{±i·0.48}
        try #"{"num": [0.02, 0.0, -0.02], "den": [1, -1.6, 0.81], "rate": 16000}"#.write(toFile: tf, atomically: true, encoding: .utf8)
        let r = try runCLI(["design", "statespace", tf, "-o", model, "--json"])
        expectExit(r, 0)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any]
        let lanes = json?["lanes"] as? [[String: Any]]
        #expect(lanes?.count == 1, "\(String(decoding: r.stdout, as: UTF8.self))")
        #expect(abs((json?["max_abs_pole"] as? Double ?? 0) - 0.9) < 1e-12)
        let x = testSignal(4000)
        try writeWAV(input, x)
        expectExit(try runCLI(["run", "-q", model, input, out]), 0)
        let e = relErr(try readWAV(out).samples, lfilter(b, a, x.map(Double.init)))
        #expect(e <= 1e-5, "max|Δ|/max|y| = \(e)")
    }

    @Test("the shipped designed models are what their design commands write", arguments: [
        ("models/butter8-lowpass-1k.safetensors", ["butterworth", "lowpass", "--order", "8", "--cutoff", "1000", "--rate", "16000"]),
        ("models/cheby1-bandpass-300-3400.safetensors",
         ["chebyshev1", "bandpass", "--order", "4", "--cutoff", "300", "--cutoff2", "3400", "--ripple", "1", "--rate", "16000"]),
    ])
    func shippedModels(_ path: String, _ args: [String]) throws {
        let dir = TempDir()
        let out = dir.file("m.safetensors")
        expectExit(try runCLI(["design"] + args + ["-q", "-o", out]), 0)
        // Same architecture and tensors; values to 1e-6 relative, not bit for bit: another libm or
        // CPU may round the last bit of a double differently.
        let shipped = try ModelFile.parse([UInt8](try Data(contentsOf: packageRoot.appendingPathComponent(path))))
        let made = try ModelFile.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(made.spec == shipped.spec)
        #expect(Set(made.tensors.keys) == Set(shipped.tensors.keys))
        for (name, t) in shipped.tensors {
            let m = try #require(made.tensors[name])
            #expect(m.shape == t.shape, "\(name)")
            let worst = zip(m.values, t.values).map { abs($0 - $1) / max(abs($1), 1e-30) }.max() ?? 0
            #expect(worst <= 1e-6, "\(path) \(name) differs by \(worst) from `ssm-stream design \(args.joined(separator: " "))`")
        }
    }

    @Test("--help shows working examples")
    func help() throws {
        let r = try runCLI(["design", "--help"])
        expectExit(r, 0)
        let text = String(decoding: r.stdout, as: UTF8.self)
        #expect(text.contains("ssm-stream design butterworth lowpass --order 8 --cutoff 1000 \\\n      --rate 16000 -o lp.safetensors"), "\(text)")
        #expect(text.contains("ssm-stream design statespace"))
    }

    @Test("the --help examples work")
    func helpExamples() throws {
        let dir = TempDir()
        let tf = dir.file("tf.json")
        try #"{"num": [0.2, 0.2], "den": [1, -0.6]}"#.write(toFile: tf, atomically: true, encoding: .utf8)
        let runs: [[String]] = [
            ["butterworth", "lowpass", "--order", "8", "--cutoff", "1000", "--rate", "16000", "-o", dir.file("lp.safetensors")],
            ["chebyshev1", "bandpass", "--order", "4", "--cutoff", "300", "--cutoff2", "3400", "--ripple", "1", "--rate", "16000", "-o", dir.file("bp.safetensors")],
            ["butterworth", "highpass", "--order", "2", "--cutoff", "80", "--rate", "48000", "-o", dir.file("hp.safetensors"), "--json"],
            ["elliptic", "lowpass", "--order", "6", "--cutoff", "1000", "--ripple", "0.5", "--attenuation", "60", "--rate", "16000",
             "-o", dir.file("ell.safetensors")],
            ["peaking", "--cutoff", "1000", "--gain", "-6", "--q", "2", "--rate", "48000", "-o", dir.file("cut.safetensors")],
            ["eq", "--section", "lowshelf:120:4", "--section", "peaking:2500:-3:1.4", "--section", "highshelf:9000:2", "--rate", "48000",
             "-o", dir.file("eq.safetensors")],
            ["statespace", tf, "--rate", "16000", "-o", dir.file("tf.safetensors")],
        ]
        for args in runs { expectExit(try runCLI(["design"] + args), 0) }
        let text = String(decoding: try runCLI(["design", "--help"]).stdout, as: UTF8.self)
        for args in runs.dropLast() {
            // Each example above is in the help (the output path without its folder).
            let line = (["ssm-stream", "design"] + args.prefix { $0 != "-o" }).joined(separator: " ")
            let folded = text.replacingOccurrences(of: " \\\n      ", with: " ")
            #expect(folded.contains(line), "\(line) is not in design --help")
        }
        let y = dir.file("y.wav"), x = dir.file("x.wav")
        try writeWAV(x, testSignal(1000))
        expectExit(try runCLI(["run", "-q", dir.file("lp.safetensors"), x, y]), 0)
    }

    static let refusals: [(args: [String], code: Int32, words: String)] = [
        (["butterworth", "lowpass", "--order", "0", "--cutoff", "1000", "--rate", "16000"], 64, "order 0 is out of range 1…32"),
        (["butterworth", "lowpass", "--order", "33", "--cutoff", "1000", "--rate", "16000"], 64, "order 33 is out of range"),
        (["butterworth", "lowpass", "--order", "4", "--cutoff", "8000", "--rate", "16000"], 64, "Nyquist frequency 8000 Hz"),
        (["butterworth", "highpass", "--order", "4", "--cutoff", "0", "--rate", "16000"], 64, "strictly between 0"),
        (["butterworth", "lowpass", "--order", "4", "--cutoff=-100", "--rate", "16000"], 64, "strictly between 0"),
        (["butterworth", "bandpass", "--order", "4", "--cutoff", "1000", "--rate", "16000"], 64, "needs --cutoff2"),
        (["butterworth", "bandstop", "--order", "4", "--cutoff", "1000", "--cutoff2", "1000", "--rate", "16000"], 64, "must be above cutoff"),
        (["butterworth", "bandpass", "--order", "4", "--cutoff", "1000", "--cutoff2", "9000", "--rate", "16000"], 64, "cutoff2 9000 Hz"),
        (["butterworth", "lowpass", "--order", "4", "--cutoff", "1000", "--cutoff2", "2000", "--rate", "16000"], 64, "bandpass and bandstop designs only"),
        (["chebyshev1", "lowpass", "--order", "4", "--cutoff", "1000", "--rate", "16000"], 64, "needs --ripple"),
        (["butterworth", "lowpass", "--order", "4", "--cutoff", "1000", "--ripple", "1", "--rate", "16000"], 64, "chebyshev1 and elliptic designs only"),
        (["elliptic", "lowpass", "--order", "4", "--cutoff", "1000", "--ripple", "1", "--rate", "16000"], 64, "needs --attenuation"),
        (["chebyshev2", "lowpass", "--order", "4", "--cutoff", "1000", "--attenuation", "40", "--ripple", "1", "--rate", "16000"], 64,
         "--ripple is for chebyshev1 and elliptic"),
        (["bessel", "lowpass", "--order", "4", "--cutoff", "1000", "--attenuation", "40", "--rate", "16000"], 64, "--attenuation is for chebyshev2 and elliptic"),
        (["cauer", "lowpass", "--order", "4", "--cutoff", "1000", "--rate", "16000"], 64, "unknown design 'cauer'"),
        (["peaking", "--cutoff", "1000", "--rate", "48000"], 64, "needs --gain"),
        (["peaking", "lowpass", "--cutoff", "1000", "--gain", "3", "--rate", "48000"], 64, "takes no band"),
        (["notch", "--cutoff", "1000", "--order", "2", "--rate", "48000"], 64, "--order is for butterworth, chebyshev and elliptic designs"),
        (["butterworth", "lowpass", "--order", "4", "--cutoff", "1000", "--gain", "3", "--rate", "16000"], 64, "--gain is for biquad and eq designs"),
        (["eq", "--rate", "48000"], 64, "at least one --section"),
        (["eq", "--section", "bump:1000:3", "--rate", "48000"], 64, "KIND one of peaking"),
        (["eq", "--section", "peaking:1000", "--rate", "48000"], 64, "needs a gain in dB"),
        (["eq", "--section", "notch:1000:x", "--rate", "48000"], 64, "Q 'x' is not a number"),
        (["eq", "--section", "notch:1000:2:3", "--rate", "48000"], 64, "too many fields"),
        (["eq", "--section", "lowshelf:30000:3", "--rate", "48000"], 64, "Nyquist"),
        (["butterworth", "notch", "--order", "4", "--cutoff", "1000", "--rate", "16000"], 64, "unknown band 'notch'"),
        (["butterworth", "lowpass", "--cutoff", "1000", "--rate", "16000"], 64, "missing --order"),
        (["butterworth", "lowpass", "--order", "4", "--cutoff", "1000"], 64, "missing --rate"),
        (["butterworth", "lowpass", "--order", "32", "--cutoff", "20", "--rate", "48000"], 65, "cancels too much for float32"),
    ]

    @Test("refused designs: message and exit code", arguments: 0..<DesignTests.refusals.count)
    func refusedDesign(_ i: Int) throws {
        let c = Self.refusals[i]
        let dir = TempDir()
        let out = dir.file("m.safetensors")
        let r = try runCLI(["design"] + c.args + ["-o", out])
        expectExit(r, c.code)
        #expect(r.stderr.contains(c.words), "\(c.args): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out), "a refused design left a file behind")
    }

    static let badFiles: [(json: String?, extra: [String], code: Int32, words: String)] = [
        (nil, [], 66, "cannot open"),
        (#"{"a": [[0.5, 1], [0, 0.5]], "b": [[0], [1]], "c": [[1, 0]], "rate": 16000}"#, [], 65, "not diagonalizable"),
        (#"{"a": [[1.2]], "b": [[1]], "c": [[1]], "rate": 16000}"#, [], 65, "unstable: pole 1.2 has |p| = 1.2 ≥ 1"),
        (#"{"num": [1], "den": [1, -1, 0.25], "rate": 16000}"#, [], 65, "repeated pole 0.5"),
        (#"{"num": [1, 2, 3, 4], "den": [1, -0.5], "rate": 16000}"#, [], 65, "FIR part"),
        (#"{"num": [1], "den": [1, -0.5], "rate": 16000"#, [], 65, "bad system JSON"),
        (#"{"num": [1], "den": [1, -0.5], "rate": 16000, "gain": 2}"#, [], 65, "unknown key 'gain'"),
        (#"{"a": [[0.5, 0.1]], "b": [[1]], "c": [[1]], "rate": 16000}"#, [], 65, "\"a\" must be square"),
        (#"{"num": [1], "den": [1, -0.5]}"#, [], 64, "no sample rate"),
        (#"{"num": [1], "den": [1, -0.5], "rate": 16000}"#, ["--order", "4"], 64, "--order is for filter, biquad and eq designs, not statespace"),
    ]

    @Test("refused statespace files: message and exit code", arguments: 0..<DesignTests.badFiles.count)
    func refusedFile(_ i: Int) throws {
        let c = Self.badFiles[i]
        let dir = TempDir()
        let file = dir.file("system.json"), out = dir.file("m.safetensors")
        if let json = c.json { try json.write(toFile: file, atomically: true, encoding: .utf8) }
        let r = try runCLI(["design", "statespace", file, "-o", out] + c.extra)
        expectExit(r, c.code)
        #expect(r.stderr.contains(c.words), "\(c.json ?? "missing file"): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("an output in a missing directory: exit 73")
    func unwritable() throws {
        let r = try runCLI(["design", "butterworth", "lowpass", "--order", "2", "--cutoff", "1000", "--rate", "16000",
                            "-o", "/nonexistent-dir/m.safetensors"])
        expectExit(r, 73)
        #expect(r.stderr.contains("cannot write '/nonexistent-dir/m.safetensors'"), "\(r.stderr)")
    }

    @Test("chain: a cascade and a pre-filter before the digit classifier equal the models run one after another; design --append-to")
    func chainEqualsSeries() throws {
        let dir = TempDir()
        let hp = dir.file("hp.safetensors"), lp = dir.file("lp.safetensors"), cascade = dir.file("cascade.safetensors")
        expectExit(try runCLI(["design", "butterworth", "highpass", "--order", "2", "--cutoff", "150", "--rate", "8000", "-o", hp, "-q"]), 0)
        expectExit(try runCLI(["design", "chebyshev1", "lowpass", "--order", "4", "--cutoff", "3000", "--ripple", "0.5", "--rate", "8000", "-o", lp, "-q"]), 0)
        let r = try runCLI(["chain", hp, lp, "-o", cascade])
        expectExit(r, 0)
        #expect(r.stderr.contains("2 models in series") && r.stderr.contains("1 → 1 channel at 8000 Hz") && r.stderr.hasSuffix("→ \(cascade)\n"), "\(r.stderr)")
        // A filter cascade: run A then B, against run of the chain, step and block.
        let x = testSignal(6000), input = dir.file("in.wav"), mid = dir.file("mid.wav"), seq = dir.file("seq.wav"), one = dir.file("one.wav")
        try writeWAV(input, rate: 8000, x)
        for mode in ["step", "block"] {
            expectExit(try runCLI(["run", "-q", "--mode", mode, hp, input, mid]), 0)
            expectExit(try runCLI(["run", "-q", "--mode", mode, lp, mid, seq]), 0)
            expectExit(try runCLI(["run", "-q", "--mode", mode, cascade, input, one]), 0)
            let a = try readWAV(seq).samples, b = try readWAV(one).samples
            try #require(a.count == x.count && b.count == x.count)
            #expect(relErr(b, a.map(Double.init)) <= 1e-6, "\(mode): max|Δ|/max|y| = \(relErr(b, a.map(Double.init)))")
        }
        // design --append-to: the cascade then a peaking section, at the cascade's rate by default.
        let eq = dir.file("eq.safetensors"), peak = dir.file("peak.safetensors")
        let d = try runCLI(["design", "peaking", "--cutoff", "1000", "--gain", "6", "--append-to", cascade, "-o", eq])
        expectExit(d, 0)
        #expect(d.stderr.contains("after the 2 stage(s) of \(cascade)"), "\(d.stderr)")
        expectExit(try runCLI(["design", "peaking", "--cutoff", "1000", "--gain", "6", "--rate", "8000", "-o", peak, "-q"]), 0)
        let i = try runCLI(["inspect", "--json", eq])
        expectExit(i, 0)
        #expect((try jsonObject(i.stdout))["stages"] as? Int == 3)
        expectExit(try runCLI(["run", "-q", cascade, input, mid]), 0)
        expectExit(try runCLI(["run", "-q", peak, mid, seq]), 0)
        expectExit(try runCLI(["run", "-q", eq, input, one]), 0)
        #expect(relErr(try readWAV(one).samples, try readWAV(seq).samples.map(Double.init)) <= 1e-6)
        // A pre-filter before the shipped classifier: the same events as the classifier on the filtered audio.
        let digits = packageRoot.appendingPathComponent("models/digits.safetensors").path
        let speech = packageRoot.appendingPathComponent("examples/digits.wav").path
        let pre = dir.file("pre.safetensors"), filtered = dir.file("filtered.wav")
        expectExit(try runCLI(["chain", hp, digits, "-o", pre, "-q"]), 0)
        expectExit(try runCLI(["run", "-q", "--encoding", "f32", hp, speech, filtered]), 0)
        let e1 = try runCLI(["run", "-q", digits, filtered, "-"]), e2 = try runCLI(["run", "-q", pre, speech, "-"])
        expectExit(e1, 0); expectExit(e2, 0)
        // The same events (class and samples), scores equal to float round-off.
        func events(_ out: [UInt8]) throws -> [(String, Int, Int, Double)] {
            try String(decoding: out, as: UTF8.self).split(separator: "\n").map { line in
                let o = try jsonObject(Array(line.utf8))
                return (o["class"] as? String ?? "", o["start_sample"] as? Int ?? -1, o["end_sample"] as? Int ?? -1, o["peak"] as? Double ?? -1)
            }
        }
        let a = try events(e1.stdout), b = try events(e2.stdout)
        #expect(a.count >= 10 && a.count == b.count, "\(a.count) events from the two models in turn, \(b.count) from the chain")
        for (u, v) in zip(a, b) { #expect(u.0 == v.0 && u.1 == v.1 && u.2 == v.2 && Swift.abs(u.3 - v.3) < 1e-4, "\(u) vs \(v)") }
    }

    @Test("chain refuses: one model (64), a missing file (66), a classifier first, another rate, channels that disagree (67), an unwritable output (73)")
    func chainRefusals() throws {
        let dir = TempDir()
        let lp8 = dir.file("lp8.safetensors"), digits = packageRoot.appendingPathComponent("models/digits.safetensors").path
        expectExit(try runCLI(["design", "butterworth", "lowpass", "--order", "2", "--cutoff", "1000", "--rate", "8000", "-o", lp8, "-q"]), 0)
        let out = dir.file("out.safetensors")
        var r = try runCLI(["chain", lp8, "-o", out])
        expectExit(r, 64); #expect(r.stderr.contains("at least two models"), "\(r.stderr)")
        r = try runCLI(["chain", lp8, dir.file("nope.safetensors"), "-o", out])
        expectExit(r, 66); #expect(r.stderr.contains("nope.safetensors': no such file"), "\(r.stderr)")
        r = try runCLI(["chain", digits, lp8, "-o", out])
        expectExit(r, 67); #expect(r.stderr.contains("only the last model of a chain may classify"), "\(r.stderr)")
        r = try runCLI(["chain", lp8, modelPath, "-o", out])
        expectExit(r, 67); #expect(r.stderr.contains("stage 2 runs at 16000 Hz, stage 1 at 8000 Hz"), "\(r.stderr)")
        let stereo = dir.file("stereo.json"), st = dir.file("st.safetensors")
        try """
        {"sample_rate": 8000, "d_input": 2, "d_model": 4, "d_output": 2, "encoder": true, "decoder": true,
         "blocks": [{"layer": {"family": "s5", "d_model": 4, "d_state": 4}}]}
        """.write(toFile: stereo, atomically: true, encoding: .utf8)
        expectExit(try runCLI(["init", "-q", stereo, "-o", st]), 0)
        r = try runCLI(["chain", lp8, st, "-o", out])
        expectExit(r, 67); #expect(r.stderr.contains("stage 2 takes 2 channels, stage 1 gives 1"), "\(r.stderr)")
        r = try runCLI(["chain", lp8, lp8, "-o", "/nonexistent-dir/c.safetensors"])
        expectExit(r, 73)
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
