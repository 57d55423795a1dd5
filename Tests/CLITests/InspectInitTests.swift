// Black-box tests of `ssm-stream inspect` and `ssm-stream init`.

import Foundation
import Testing
import SSM
import SSMIO

func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], "not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
}

@Suite("ssm-stream inspect and init")
struct InspectInitTests {
    /// |z| of the poles of the 4th-order digital Butterworth lowpass (bilinear, pre-warped), from
    /// the analog poles s_k = ω_a·e^{iπ(2k+n+1)/(2n)}, ω_a = 2·fs·tan(π·fc/fs), z = (1 + s/2fs)/(1 − s/2fs).
    static func butterworthPoleMagnitudes(n: Int = 4, fc: Double = 1000, fs: Double = 16000) -> [Double] {
        let wa = 2 * fs * tan(Double.pi * fc / fs)
        return (0..<n).map { k in
            let th = Double.pi * Double(2 * k + n + 1) / Double(2 * n)
            let sr = wa * cos(th) / (2 * fs), si = wa * sin(th) / (2 * fs)
            let num = ((1 + sr) * (1 + sr) + si * si).squareRoot(), den = ((1 - sr) * (1 - sr) + si * si).squareRoot()
            return num / den
        }
    }

    @Test("inspect --json on the shipped lowpass: sizes, 15 parameters, 16 state bytes, |λ| = |Butterworth poles|, τ")
    func lowpass() throws {
        let r = try runCLI(["inspect", "--json", modelPath])
        expectExit(r, 0)
        let o = try jsonObject(r.stdout)
        #expect(o["task"] as? String == "filter" && o["sample_rate"] as? Int == 16000)
        #expect(o["parameters"] as? Int == 15 && o["state_bytes"] as? Int == 16)
        let b = try #require((o["blocks"] as? [[String: Any]])?.first)
        #expect(b["family"] as? String == "s5" && b["d_state"] as? Int == 2)
        let mags = Self.butterworthPoleMagnitudes()
        let lo = try #require(b["eigenvalue_magnitude_min"] as? Double), hi = try #require(b["eigenvalue_magnitude_max"] as? Double)
        #expect(abs(lo - mags.min()!) < 1e-6 && abs(hi - mags.max()!) < 1e-6, "\(lo) \(hi) vs \(mags)")
        let tau = try #require(b["slowest_time_constant_ms"] as? Double)
        #expect(abs(tau - (-1000 / (16000 * log(mags.max()!)))) < 1e-4)
        let text = try runCLI(["inspect", modelPath])
        expectExit(text, 0)
        #expect(String(decoding: text.stdout, as: UTF8.self).contains("slowest τ"))
    }

    @Test("init writes a model whose parameter count and state match the architecture; --seed reproduces; inspect --bench times it")
    func initModel() throws {
        let dir = TempDir()
        let arch = dir.file("arch.json")
        try """
        {"sample_rate": 8000, "d_input": 2, "d_model": 8, "d_output": 3, "encoder": true, "decoder": true,
         "blocks": [{"layer": {"family": "s5", "d_model": 8, "d_state": 4}, "norm": "layer"},
                    {"layer": {"family": "lru", "d_model": 8, "d_state": 6}, "norm": "rms", "output": "linear"}]}
        """.write(toFile: arch, atomically: true, encoding: .utf8)
        let a = dir.file("a.safetensors"), b = dir.file("b.safetensors"), c = dir.file("c.safetensors")
        expectExit(try runCLI(["init", arch, "-o", a, "--seed", "3"]), 0)
        expectExit(try runCLI(["init", arch, "-o", b, "--seed", "3", "-q"]), 0)
        expectExit(try runCLI(["init", arch, "-o", c, "--seed", "4", "-q"]), 0)
        let da = try Data(contentsOf: URL(fileURLWithPath: a))
        #expect(da == (try Data(contentsOf: URL(fileURLWithPath: b))))
        #expect(da != (try Data(contentsOf: URL(fileURLWithPath: c))))
        let r = try runCLI(["inspect", "--json", "--bench", a])
        expectExit(r, 0)
        let o = try jsonObject(r.stdout)
        let H = 8
        // encoder (H,2)+H; S5 P=4: Λ 2P, B P·H·2, C H·P·2, D H, log_step P; LayerNorm 2H; GLU (2H,H)+2H;
        // LRU N=6: ν, θ, γ 3N, B 2·N·H, C 2·H·N, D H; RMSNorm H; linear (H,H)+H; decoder (3,H)+3.
        let s5 = 2 * 4 + 4 * H * 2 + H * 4 * 2 + H + 4 + 2 * H + 2 * H * H + 2 * H
        let lru = 3 * 6 + 2 * 6 * H + 2 * H * 6 + H + H + H * H + H
        #expect(o["parameters"] as? Int == 2 * H + H + s5 + lru + 3 * H + 3)
        #expect(o["state_bytes"] as? Int == 4 * (2 * 4 + 2 * 6))
        #expect((o["step_ns_per_sample"] as? Double ?? 0) > 0 && (o["block_realtime_factor"] as? Double ?? 0) > 0)
    }

    @Test("init scales: an S5 of P = 512 (HiPPO-LegS of N = 1024 by LAPACK) initializes and loads, with a progress line when slow")
    func initLarge() throws {
        let dir = TempDir()
        let arch = dir.file("arch.json"), m = dir.file("m.safetensors")
        try """
        {"sample_rate": 16000, "d_input": 1, "d_model": 64, "d_output": 1, "encoder": true, "decoder": true,
         "blocks": [{"layer": {"family": "s5", "d_model": 64, "d_state": 512}}]}
        """.write(toFile: arch, atomically: true, encoding: .utf8)
        // Before LAPACK this took more than 10 minutes; 120 s leaves a loaded 2-core machine room.
        // The progress threshold at 0 s: a line however fast the machine (by default after 1 s).
        let r = try runCLI(["init", arch, "-o", m], timeout: 120, environment: ["SSM_STREAM_PROGRESS_AFTER": "0"])
        expectExit(r, 0)
        let err = r.stderr
        #expect(err.contains("ssm-stream init: block 1 of 1 (s5, d_state 512)") || err.contains("ssm-stream init: checking the model"), "\(err)")
        #expect(err.hasSuffix("→ \(m)\n"), "the summary comes last: \(err)")
        expectExit(try runCLI(["inspect", m]), 0)
    }

    @Test("inspect --bench of a model slower than real time: two significant digits and the load, never \"0× real time\"")
    func slowerThanRealTime() throws {
        let dir = TempDir()
        let arch = dir.file("arch.json"), m = dir.file("m.safetensors")
        // 500 MHz: any CPU needs more than 2 ns per sample of an S5 of H = P = 64.
        try """
        {"sample_rate": 500000000, "d_input": 1, "d_model": 64, "d_output": 1, "encoder": true, "decoder": true,
         "blocks": [{"layer": {"family": "s5", "d_model": 64, "d_state": 64}}]}
        """.write(toFile: arch, atomically: true, encoding: .utf8)
        expectExit(try runCLI(["init", "-q", arch, "-o", m]), 0)
        let r = try runCLI(["inspect", "--bench", m])
        expectExit(r, 0)
        let text = String(decoding: r.stdout, as: UTF8.self)
        #expect(!text.contains("(0× real time"), "\(text)")
        #expect(text.range(of: #"step [0-9.]+ ns/sample \(0\.0[0-9]+× real time, load [0-9]+(\.[0-9])?\)"#, options: .regularExpression) != nil, "\(text)")
    }

    @Test("every architecture in configs/architectures initializes, and the model streams the example file in step and block mode alike")
    func shippedArchitectures() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseCLI.path),
                     "no release build at \(releaseCLI.path): run ./test.sh, or swift build -c release --product ssm-stream")
        let dir = TempDir()
        let input = dir.file("tone.wav")
        try writeWAV(input, format: AudioFormat.wav16, Array(sine(440, seconds: 0.5)))
        let archDir = packageRoot.appendingPathComponent("configs/architectures").path
        let files = try FileManager.default.contentsOfDirectory(atPath: archDir).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count >= 5)
        for f in files {
            let model = dir.file(f + ".safetensors")
            expectExit(try runCLI(["init", "-q", archDir + "/" + f, "-o", model]), 0)
            let o = try jsonObject(try runCLI(["inspect", "--json", model]).stdout)
            let classify = o["task"] as? String == "classify"
            let outs = classify ? ["-", "-"] : [dir.file("a.wav"), dir.file("b.wav")]
            // The release binary (test.sh builds it): a debug build steps Mamba or Hawk at ~1 ms per sample.
            let a = try runCLI(["run", "-q", "--mode", "step", model, input, outs[0]], executable: releaseCLI)
            let b = try runCLI(["run", "-q", "--mode", "block", model, input, outs[1]], executable: releaseCLI)
            expectExit(a, 0); expectExit(b, 0)
            if classify {
                // Block mode's projections go through OpenBLAS, whose kernel (and so its
                // round-off) depends on the CPU: the same events, to round-off.
                let ea = try jsonLines(a.stdout), eb = try jsonLines(b.stdout)
                #expect(ea.count == eb.count, "\(f): \(ea.count) events in step mode, \(eb.count) in block mode")
                for (x, y) in zip(ea, eb) {
                    let same = x["class"] as? String == y["class"] as? String
                        && abs((x["start_sample"] as? Int ?? -9) - (y["start_sample"] as? Int ?? 9)) <= 1
                        && abs((x["end_sample"] as? Int ?? -9) - (y["end_sample"] as? Int ?? 9)) <= 1
                        && abs((x["peak"] as? Double ?? -9) - (y["peak"] as? Double ?? 9)) <= 1e-3
                    #expect(same, "\(f): step and block events differ: \(x) vs \(y)")
                }
            } else {
                let ya = try readWAV(outs[0]).samples, yb = try readWAV(outs[1]).samples
                #expect(ya.count == 8000 && yb.count == 8000)
                let worst = zip(ya, yb).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= 2 / 32768, "\(f): step and block differ by \(worst) on 16-bit output")
            }
        }
    }

    @Test("bad input: a non-model → 67 naming the file; a bad architecture → 65 naming the problem; unwritable output → 73")
    func errors() throws {
        let dir = TempDir()
        var r = try runCLI(["inspect", noisyTonePath])
        expectExit(r, 67)
        #expect(r.stderr.contains("noisy-tone.wav"))
        r = try runCLI(["inspect", dir.file("missing.safetensors")])
        expectExit(r, 67)
        let arch = dir.file("arch.json")
        try #"{"sample_rate": 16000, "d_input": 1, "d_model": 4, "d_output": 1, "blocks": [{"layer": {"family": "s7", "d_model": 4, "d_state": 4}}]}"#
            .write(toFile: arch, atomically: true, encoding: .utf8)
        r = try runCLI(["init", arch, "-o", dir.file("x.safetensors")])
        expectExit(r, 65)
        #expect(r.stderr.contains("s7"), "\(r.stderr)")
        r = try runCLI(["init", dir.file("none.json"), "-o", dir.file("x.safetensors")])
        expectExit(r, 66)
        try #"{"sample_rate": 16000, "d_input": 1, "d_model": 1, "d_output": 1, "blocks": []}"#
            .write(toFile: arch, atomically: true, encoding: .utf8)
        r = try runCLI(["init", arch, "-o", dir.path + "/no/such/dir/x.safetensors"])
        expectExit(r, 73)
    }

    @Test("convert --weights f16 halves the file, inspect shows it, run stays within 1e-3, f32 converts back; a trained model keeps its options")
    func convertHalf() throws {
        let dir = TempDir()
        let m = dir.file("m.safetensors"), h = dir.file("h.safetensors"), f = dir.file("f.safetensors")
        expectExit(try runCLI(["init", "-q", packageRoot.appendingPathComponent("configs/architectures/s5-4x64.json").path, "-o", m]), 0)
        let r = try runCLI(["convert", m, "--weights", "f16", "-o", h])
        expectExit(r, 0)
        #expect(r.stderr.contains("12 tensors to f16") && r.stderr.contains("→ \(h)\n")
                && r.stderr.contains("on the probe (1 s of a chirp in noise) the output moves by"), "\(r.stderr)")
        let sizeM = try FileManager.default.attributesOfItem(atPath: m)[.size] as! Int, sizeH = try FileManager.default.attributesOfItem(atPath: h)[.size] as! Int
        #expect(sizeH < sizeM * 6 / 10, "\(sizeH) bytes from \(sizeM)")
        let i = try runCLI(["inspect", "--json", h])
        expectExit(i, 0)
        #expect((try jsonObject(i.stdout))["f16_tensors"] as? Int == 12)
        let text = try runCLI(["inspect", h])
        #expect(String(decoding: text.stdout, as: UTF8.self).contains("weights: 12 weight matrices in f16"))
        let x = testSignal(4000), input = dir.file("in.wav"), a = dir.file("a.wav"), b = dir.file("b.wav")
        try writeWAV(input, x)
        for mode in ["step", "block"] {
            expectExit(try runCLI(["run", "-q", "--mode", mode, m, input, a]), 0)
            expectExit(try runCLI(["run", "-q", "--mode", mode, h, input, b]), 0)
            let e = relErr(try readWAV(b).samples, try readWAV(a).samples.map(Double.init))
            #expect(e <= 1e-3, "\(mode): max|Δ|/max|y| = \(e)")
        }
        expectExit(try runCLI(["convert", "-q", h, "--weights", "f32", "-o", f]), 0)
        #expect((try jsonObject(try runCLI(["inspect", "--json", f]).stdout))["f16_tensors"] as? Int == 0)
        // The shipped classifier: its training options (per-step scoring in eval) survive.
        let d = dir.file("d.safetensors")
        expectExit(try runCLI(["convert", "-q", packageRoot.appendingPathComponent("models/digits.safetensors").path, "--weights", "f16", "-o", d]), 0)
        let st = try SafeTensors(contentsOfFile: d)
        #expect(st.metadata["ssm_train_options"]?.contains("per_step") == true)
        expectExit(try runCLI(["convert", dir.file("missing.safetensors"), "--weights", "f16", "-o", d]), 66)
    }

    @Test("convert --max-error keeps in float32 the matrices that move the output most, until it is within the bound on the probe")
    func convertMaxError() throws {
        let dir = TempDir()
        let arch = dir.file("a.json"), m = dir.file("m.safetensors"), h = dir.file("h.safetensors")
        try #"{"sample_rate": 16000, "d_input": 1, "d_model": 8, "d_output": 1, "encoder": true, "decoder": true, "blocks": [{"layer": {"family": "s5", "d_model": 8, "d_state": 8}, "norm": "layer", "activation": "gelu", "output": "glu"}]}"#
            .write(toFile: arch, atomically: true, encoding: .utf8)
        expectExit(try runCLI(["init", "-q", arch, "-o", m]), 0)
        let probe = dir.file("probe.wav"), y32 = dir.file("y32.wav"), y16 = dir.file("y16.wav")
        try writeWAV(probe, testSignal(4000))
        expectExit(try runCLI(["run", "-q", "--mode", "block", "--encoding", "f32", m, probe, y32]), 0)
        let reference = try readWAV(y32).samples.map(Double.init)
        func deviation(_ stderr: String, _ word: String) -> Double? {
            guard let r = stderr.range(of: word + " ") else { return nil }
            return Double(stderr[r.upperBound...].prefix { !$0.isWhitespace })
        }
        // No bound: all three matrices (B, C, the GLU's) halved, and how far that moves the output.
        var r = try runCLI(["convert", m, "--weights", "f16", "--probe", probe, "-o", h])
        expectExit(r, 0)
        let full = try #require(deviation(r.stderr, "moves by"), "\(r.stderr)")
        #expect(r.stderr.contains("3 tensors to f16") && full > 0, "\(r.stderr)")
        // Half of that: at least one matrix goes back, and the file's output is within the bound.
        let bound = full / 2
        r = try runCLI(["convert", m, "--weights", "f16", "--probe", probe, "--max-error", String(bound), "-o", h])
        expectExit(r, 0)
        #expect(r.stderr.contains("kept in float32: 'layers.0."), "\(r.stderr)")
        let now = try #require(deviation(r.stderr, "now"), "\(r.stderr)")
        #expect(now <= bound, "\(r.stderr)")
        let halves = (try jsonObject(try runCLI(["inspect", "--json", h]).stdout))["f16_tensors"] as? Int ?? -1
        #expect((0..<3).contains(halves), "\(halves) matrices in f16")
        expectExit(try runCLI(["run", "-q", "--mode", "block", "--encoding", "f32", h, probe, y16]), 0)
        let measured = relErr(try readWAV(y16).samples, reference)
        #expect(measured <= bound * 1.01, "run measures \(measured), convert said \(now) ≤ \(bound)")
        // A loose bound changes nothing; a bound nothing but float32 meets returns every matrix.
        r = try runCLI(["convert", m, "--weights", "f16", "--max-error", "0.5", "-o", h])
        #expect(r.status == 0 && !r.stderr.contains("kept in float32") && r.stderr.contains("on the probe (1 s of a chirp in noise)"), "\(r.stderr)")
        r = try runCLI(["convert", m, "--weights", "f16", "--max-error", "1e-15", "-o", h])
        #expect(r.status == 0 && r.stderr.contains("0 tensors to f16") && r.stderr.hasSuffix("; now 0\n"), "\(r.stderr)")
        // Bad arguments and a missing probe.
        expectExit(try runCLI(["convert", m, "--weights", "f16", "--max-error", "0", "-o", h]), 64)
        expectExit(try runCLI(["convert", m, "--weights", "f16", "--max-error", "nan", "-o", h]), 64)
        expectExit(try runCLI(["convert", m, "--weights", "f32", "--max-error", "1e-3", "-o", h]), 64)
        expectExit(try runCLI(["convert", m, "--weights", "f16", "--probe", dir.file("none.wav"), "-o", h]), 66)
        expectExit(try runCLI(["convert", "-q", m, "--weights", "f16", "--probe", dir.file("none.wav"), "-o", h]), 66)
        expectExit(try runCLI(["convert", m, "--weights", "f32", "--probe", probe, "-o", h]), 64)
    }
}
