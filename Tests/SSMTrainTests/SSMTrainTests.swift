// The trainer's pieces as units: the schedule, one AdamW step by hand, seeded shuffles and
// splits, windows (placement, per-step targets, augmentation) and the parameter layout.

import Foundation
import Testing
import SSM
@testable import SSMTrain

/// A voiced vowel-like signal at 8 kHz (one second): a 100 Hz pulse train through a resonance at 1 kHz.
private func voicedVowel() -> [Float] {
    let n = 8000, r = 0.97, w0 = 2 * Double.pi * 1000 / 8000
    var x = [Float](repeating: 0, count: n), y1 = 0.0, y2 = 0.0
    for k in 0..<n {
        let y = (k % 80 == 0 ? 1.0 : 0) + 2 * r * cos(w0) * y1 - r * r * y2
        y2 = y1; y1 = y; x[k] = Float(y * 0.05)
    }
    return x
}

private func energy(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) } }

/// The strongest harmonic of a 100 Hz voice at 8 kHz (multiples of 100 Hz up to 3 kHz), by
/// Goertzel over the samples in `span`.
private func strongestHarmonic(_ v: [Float], _ span: Range<Int>) -> Double {
    var best = (f: 0.0, p: -1.0)
    for f in Swift.stride(from: 100.0, through: 3000, by: 100) {
        let w = 2 * Double.pi * f / 8000
        var re = 0.0, im = 0.0
        for k in span { re += Double(v[k]) * cos(w * Double(k)); im -= Double(v[k]) * sin(w * Double(k)) }
        if re * re + im * im > best.p { best = (f, re * re + im * im) }
    }
    return best.f
}

/// Normalized autocorrelation at `lag` (near 1 at a pitch period of a voiced signal).
private func autocorrelation(_ v: [Float], _ lag: Int) -> Double {
    var s = 0.0; for k in lag..<v.count { s += Double(v[k]) * Double(v[k - lag]) }; return s / energy(v)
}

@Suite("SSMTrain units")
struct SSMTrainTests {
    @Test("warm-up rises linearly to the peak, the cosine falls to the final fraction")
    func schedule() {
        let s = Schedule(learningRate: 1, ssmLearningRate: 0.5, warmupSteps: 4, totalSteps: 14, finalFraction: 0.1)
        #expect(s.factor(0) == 0.25 && s.factor(3) == 1)
        #expect(abs(s.factor(4) - 1) < 1e-12)
        #expect(abs(s.factor(9) - (0.1 + 0.9 * 0.5)) < 1e-12)
        #expect(abs(s.factor(14) - 0.1) < 1e-12 && abs(s.factor(100) - 0.1) < 1e-12)
    }

    @Test("weight averaging: the checkpoint's average is the mean of the parameters after each step past average_from")
    func weightAveraging() throws {
        let spec = ModelSpec(task: .classify, sampleRate: 100, dInput: 1, dModel: 4, dOutput: 2, encoder: true, decoder: true,
                             blocks: [BlockSpec(layer: LayerSpec(family: .s5, dModel: 4, dState: 4, discretization: .zoh), norm: .layer)],
                             labels: ["a", "b"])
        var rng = SeededRandom(seed: 2)
        let clips = (0..<8).map { i in Clip(samples: (0..<50).map { _ in Float(rng.normal()) }, label: i % 2, source: "c\(i)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssm-avg-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var o = TrainOptions()
        o.epochs = 2; o.batch = 4; o.seconds = 0.5; o.threads = 1; o.averageFrom = 0.5; o.gainDB = 0
        let run = try TrainingRun(spec: spec, tensors: try Model.initialize(spec, seed: 1),
                                  train: ClipSet(labels: ["a", "b"], clips: clips, sampleRate: 100),
                                  validation: ClipSet(labels: ["a", "b"], clips: Array(clips.prefix(2)), sampleRate: 100),
                                  options: o, windowing: Windowing(length: 50), output: dir + "/m.safetensors",
                                  checkpoint: dir + "/m.ckpt", resume: nil, clock: { 0 })
        // shouldStop runs before every step: it sees the parameters after the step before.
        var after: [[Scalar]] = []
        var first = true
        _ = try run.run(shouldStop: {
            if !first { after.append(run.trainer.parameters.values) }
            first = false
            return false
        }, report: { _ in })
        after.append(run.trainer.parameters.values)
        #expect(after.count == 4 && run.state.totalSteps == 4 && run.state.averaged == 2)
        // Steps 3 and 4 of 4 are past half the schedule.
        let ckpt = try Checkpoint.load(dir + "/m.ckpt")
        #expect(ckpt.data == run.data && ckpt.data == DataDigest(train: run.train, validation: run.validation, noise: []))
        let average = try #require(ckpt.average)
        let p = run.trainer.parameters
        for (i, name) in p.names.enumerated() {
            let r = p.range(i), a = try #require(average[name])
            for (k, j) in r.enumerated() {
                let want = (Double(after[2][j]) + Double(after[3][j])) / 2
                #expect(Swift.abs(a[k] - want) <= 1e-12 * Swift.max(1, Swift.abs(want)), "\(name)[\(k)]")
            }
        }
        #expect(after[2] != after[3])
        // Validation and export ran on the average; the engine is back on the trained parameters.
        let fresh = try Model(spec: spec, tensors: run.trainer.parameters.tensors)
        let u = (0..<50).map { _ in Float(rng.normal()) }
        var y1 = [Float](repeating: 0, count: 100), y2 = y1
        fresh.forward(u, &y1, length: 50, state: fresh.makeState(maxBlock: 50))
        run.trainer.model.forward(u, &y2, length: 50, state: run.trainer.model.makeState(maxBlock: 50))
        #expect(y1 == y2)
        // Without averaging the checkpoint has none.
        o.averageFrom = nil
        let plain = try TrainingRun(spec: spec, tensors: try Model.initialize(spec, seed: 1),
                                    train: ClipSet(labels: ["a", "b"], clips: clips, sampleRate: 100),
                                    validation: ClipSet(labels: ["a", "b"], clips: [], sampleRate: 100),
                                    options: o, windowing: Windowing(length: 50), output: dir + "/p.safetensors",
                                    checkpoint: dir + "/p.ckpt", resume: nil, clock: { 0 })
        _ = try plain.run(shouldStop: { false }, report: { _ in })
        #expect(try Checkpoint.load(dir + "/p.ckpt").average == nil && plain.state.averaged == nil)
    }

    @Test("one AdamW step equals the formula; the SSM group gets its rate and no decay; clipping scales")
    func adamw() {
        let t: [String: Tensor] = ["a.weight": Tensor([1, 2, 3, 4], shape: [2, 2]), "b.Lambda_re": Tensor([-0.5, -1], shape: [2])]
        let p = ParameterStore(t, ssmNames: ["b.Lambda_re"])
        #expect(p.names == ["a.weight", "b.Lambda_re"] && p.isSSM == [false, true] && p.decays == [true, false])
        p.gradients = [0.3, -0.4, 0, 0, 1.2, 0]   // ‖g‖ = 1.3
        let opt = AdamW(count: p.count, schedule: Schedule(learningRate: 0.1, ssmLearningRate: 0.01, warmupSteps: 0, totalSteps: 10, finalFraction: 1),
                        weightDecay: 0.5, clipNorm: 0.65)
        let (norm, _) = opt.update(p)
        #expect(abs(norm - 1.3) < 1e-6)
        // After bias correction the first step moves each parameter with a nonzero gradient by
        // lr·sign(g) (|m̂/√v̂| = 1), plus decoupled decay lr·λ·θ on the matrix.
        let expect: [Double] = [1 - 0.1 * (1 + 0.5 * 1), 2 - 0.1 * (-1 + 0.5 * 2), 3 - 0.1 * 0.5 * 3, 4 - 0.1 * 0.5 * 4, -0.5 - 0.01, -1]
        for (v, e) in zip(p.values, expect) { #expect(abs(Double(v) - e) < 1e-5, "\(v) vs \(e)") }
    }

    @Test("shuffles and per-class splits are the same for the same seed, and a pattern split is exact")
    func splits() {
        let clips = (0..<40).map { Clip(samples: [0], label: $0 % 2, source: $0 < 10 ? "spk-a/\($0)" : "spk-b/\($0)") }
        let set = ClipSet(labels: ["x", "y"], clips: clips, sampleRate: 8000)
        let (t1, v1) = set.split(pattern: nil, fraction: 0.25, seed: 3), (_, v2) = set.split(pattern: nil, fraction: 0.25, seed: 3)
        #expect(v1.clips.map(\.source) == v2.clips.map(\.source))
        #expect(v1.clips.count == 10 && t1.clips.count == 30 && v1.classCounts == [5, 5])
        let (t3, v3) = set.split(pattern: "spk-a", fraction: 0.25, seed: 3)
        #expect(v3.clips.allSatisfy { $0.source.hasPrefix("spk-a") } && v3.clips.count == 10 && t3.clips.count == 30)
        var a = Array(0..<50), b = a
        var r1 = SeededRandom(seed: 9), r2 = SeededRandom(seed: 9)
        shuffle(&a, &r1); shuffle(&b, &r2)
        #expect(a == b && a != Array(0..<50) && a.sorted() == Array(0..<50))
    }

    @Test("windows: centred without a generator; per-step targets are background, then the class from 40 % in, then background")
    func windows() {
        // A 100-sample "word" of constant level inside 300 samples of silence.
        let word = [Float](repeating: 0, count: 100) + [Float](repeating: 0.5, count: 100) + [Float](repeating: 0, count: 100)
        var w = Windowing(length: 500, background: 2)
        w.tail = 20
        var none: SeededRandom? = nil
        let s = w.sequence(Clip(samples: word, label: 1, source: "w"), perStep: true, rng: &none)
        #expect(s.x.count == 500 && s.x[100 + 150] == 0.5 && s.x[99] == 0)  // offset (500 − 300)/2 = 100; the envelope decays for ~150 samples after the word
        let t = s.stepTargets!
        let span = Windowing.activeSpan(word)
        #expect(span.lowerBound >= 100 && span.lowerBound < 110 && span.upperBound >= 200 && span.upperBound <= 300)
        let start = span.lowerBound + 100, on = start + Int(0.4 * Double(span.count)), end = span.upperBound + 100 + 20
        #expect(t[..<on].allSatisfy { $0 == 2 })
        #expect(t[on..<end].allSatisfy { $0 == 1 })
        #expect(t[end...].allSatisfy { $0 == 2 })
        // The same window from the training options; --evidence moves where the class starts.
        var o = TrainOptions(); o.seconds = 0.5; o.tail = 0.02
        let clip = Clip(samples: word, label: 1, source: "w")
        #expect(o.windowing(sampleRate: 1000, background: 2).sequence(clip, perStep: true, rng: &none).stepTargets! == t)
        o.evidence = 0.7
        let late = o.windowing(sampleRate: 1000, background: 2).sequence(clip, perStep: true, rng: &none).stepTargets!
        let on7 = start + Int(0.7 * Double(span.count))
        #expect(on7 > on && late[..<on7].allSatisfy { $0 == 2 } && late[on7..<end].allSatisfy { $0 == 1 } && late[end...].allSatisfy { $0 == 2 })
        #expect(!TrainOptions().json.contains("evidence") && o.json.contains("\"evidence\":0.7"))
    }

    @Test("a clip longer than the window whose word lies past the window's end: all background, no crash")
    func wordOutsideWindow() {
        // 1,000 samples, the word in the last 200; a window of 300 placed at the clip's start (as a
        // training placement may): the word starts 500 samples after the window ends.
        let clip = [Float](repeating: 0, count: 800) + [Float](repeating: 0.5, count: 200)
        for offset in [0, -100, -700] {
            let t = Windowing.stepTargets(clip, offset: offset, length: 300, label: 1, background: 2, evidence: 0.4, tail: 40)
            #expect(t.count == 300)
            if offset == -700 { #expect(t.contains(1)) } else { #expect(t.allSatisfy { $0 == 2 }, "offset \(offset)") }
        }
        var w = Windowing(length: 300, background: 2)
        w.tail = 40
        var rng: SeededRandom? = SeededRandom(seed: 3)
        for _ in 0..<50 { _ = w.sequence(Clip(samples: clip, label: 1, source: "long"), perStep: true, rng: &rng) }
    }

    @Test("training options map onto the augmentation field by field; an SNR range is ordered, one bound suffices")
    func optionsAugmentation() {
        var o = TrainOptions()
        #expect(o.augmentation.snrDB == nil && o.augmentation.gainDB == o.gainDB && o.augmentation.shift)
        o.gainDB = 3; o.speed = 0.2; o.tilt = 0.4; o.eqDB = 9; o.eqBands = 5; o.whisper = 0.3; o.formant = 0.15; o.shift = false
        o.lowpass = 0.5; o.tempo = 0.4; o.cutNoise = 0.3; o.reverb = 0.25; o.seconds = 0.5
        o.snrMin = 30; o.snrMax = 5
        let a = o.augmentation
        #expect(a.cutNoise == 0.3 && Augmentation().cutNoise == 0)
        o.trim = 0.4
        #expect(o.augmentation.trim == 0.4 && Augmentation().trim == 0 && a.trim == 0)
        // RT60 0.1–0.7 s as fractions of the 0.5 s window.
        #expect(a.reverb == 0.25 && Augmentation().reverb == 0 && Swift.abs(a.reverbTime.lowerBound - 0.2) < 1e-12
                && Swift.abs(a.reverbTime.upperBound - 1.4) < 1e-12 && !TrainOptions().json.contains("reverb"))
        #expect(a.gainDB == 3 && a.speed == 0.2 && a.tilt == 0.4 && a.eqDB == 9 && a.eqBands == 5)
        #expect(a.whisper == 0.3 && a.formant == 0.15 && a.lowpass == 0.5 && a.tempo == 0.4 && !a.shift && a.snrDB == 5...30)
        o.snrMax = nil
        #expect(o.augmentation.snrDB == 30...30)
    }

    @Test("augmentation is seeded: the same generator gives the same window, another gives another; tilt keeps the level")
    func augmentation() {
        var w = Windowing(length: 400)
        w.augmentation = Augmentation()
        w.augmentation.gainDB = 6; w.augmentation.snrDB = 10...20; w.augmentation.speed = 0.1; w.augmentation.tilt = 0.8
        let clip = Clip(samples: (0..<300).map { Float(sin(Double($0) * 0.3)) * 0.5 }, label: 0, source: "s")
        var g1: SeededRandom? = SeededRandom(seed: 1), g2: SeededRandom? = SeededRandom(seed: 1), g3: SeededRandom? = SeededRandom(seed: 2)
        let a = w.sequence(clip, perStep: false, rng: &g1), b = w.sequence(clip, perStep: false, rng: &g2), c = w.sequence(clip, perStep: false, rng: &g3)
        #expect(a.x == b.x && a.x != c.x)
        var t = Windowing(length: 300)
        t.augmentation.tilt = 0.9; t.augmentation.shift = false
        var g: SeededRandom? = SeededRandom(seed: 5)
        let y = t.sequence(clip, perStep: false, rng: &g)
        let p0 = clip.samples.reduce(0.0) { $0 + Double($1 * $1) }, p1 = y.x.reduce(0.0) { $0 + Double($1 * $1) }
        #expect(Swift.abs(p1 / p0 - 1) < 1e-4 && y.x.map { Float($0) } != clip.samples)
    }

    @Test("feature masks are drawn only when asked for, seeded, within their widths; options give the time in seconds")
    func featureMasks() {
        let clip = Clip(samples: (0..<300).map { Float(sin(Double($0) * 0.3)) * 0.5 }, label: 0, source: "s")
        var w = Windowing(length: 400)
        var g: SeededRandom? = SeededRandom(seed: 1)
        #expect(w.sequence(clip, perStep: false, rng: &g).mask == nil)
        w.augmentation.maskChannels = 0.2; w.augmentation.maskTime = 0.1; w.augmentation.masks = 3
        var g1: SeededRandom? = SeededRandom(seed: 1), g2: SeededRandom? = SeededRandom(seed: 1), none: SeededRandom? = nil
        let a = w.sequence(clip, perStep: false, rng: &g1).mask, b = w.sequence(clip, perStep: false, rng: &g2).mask
        #expect(a == b && a?.channels.count == 3 && a?.rows.count == 3)
        #expect(a!.channels.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= 1 && $0.upperBound - $0.lowerBound <= 0.2 })
        #expect(a!.rows.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= 1 && $0.upperBound - $0.lowerBound <= 0.1 })
        #expect(w.sequence(clip, perStep: false, rng: &none).mask == nil)    // validation: never
        var o = TrainOptions()
        o.seconds = 0.8; o.maskTime = 0.08; o.maskChannels = 0.15
        #expect(Swift.abs(o.augmentation.maskTime - 0.1) < 1e-12 && o.augmentation.maskChannels == 0.15 && o.augmentation.masks == Augmentation().masks)
        #expect(!TrainOptions().json.contains("mask") && !TrainOptions().json.contains("tempo") && !TrainOptions().json.contains("dropout"))
    }

    @Test("cut noise: the noise covers the recording's span only, at the span's SNR; without it, the whole window as before")
    func cutNoise() {
        let clip = Clip(samples: (0..<200).map { Float(sin(Double($0) * 0.3)) * 0.5 }, label: 0, source: "s")
        var w = Windowing(length: 600)
        w.augmentation.gainDB = 0; w.augmentation.snrDB = 10...10; w.augmentation.cutNoise = 1
        for seed in 0..<8 {
            var g: SeededRandom? = SeededRandom(seed: UInt64(seed))
            let y = w.sequence(clip, perStep: false, rng: &g).x
            // The clip is somewhere in the window; outside it every sample is still exactly zero.
            let on = y.indices.filter { y[$0] != 0 }
            let start = on.first ?? 0
            #expect(on.count == 200 && on.last == start + 199, "seed \(seed): \(on.count) samples non-zero")
            let noise = (0..<200).map { Double(y[start + $0]) - Double(clip.samples[$0]) }
            let snr = 10 * log10(clip.samples.reduce(0.0) { $0 + Double($1 * $1) } / noise.reduce(0.0) { $0 + $1 * $1 })
            #expect(Swift.abs(snr - 10) < 1e-3, "seed \(seed): SNR \(snr) dB")
        }
        // Never cut: the noise fills the window, at the window's SNR. (The window without noise, from the
        // same seed, is the same placement: the noise's draws come last.)
        w.augmentation.cutNoise = 0
        var clean = w
        clean.augmentation.snrDB = nil
        for seed in 0..<4 {
            var g1: SeededRandom? = SeededRandom(seed: UInt64(seed)), g2: SeededRandom? = SeededRandom(seed: UInt64(seed))
            let y = w.sequence(clip, perStep: false, rng: &g1).x, x = clean.sequence(clip, perStep: false, rng: &g2).x
            #expect(zip(y, x).allSatisfy { $0 != $1 }, "seed \(seed): noise in every sample")
            let snr = 10 * log10(x.reduce(0.0) { $0 + Double($1) * Double($1) } / zip(y, x).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) })
            #expect(Swift.abs(snr - 10) < 1e-3, "seed \(seed): SNR \(snr) dB over the window")
        }
        #expect(!TrainOptions().json.contains("cut_noise"))
    }

    @Test("noise pattern: only a recording whose path contains it gets the noise folder's noise; the others white noise")
    func noisePattern() throws {
        let clip = { (source: String) in Clip(samples: (0..<200).map { Float(sin(Double($0) * 0.3)) * 0.5 }, label: 0, source: source) }
        var w = Windowing(length: 600)
        w.augmentation.gainDB = 0; w.augmentation.snrDB = 10...10
        w.noise = [[Float](repeating: 0.25, count: 1000)]   // a "folder" of one constant (DC) recording
        var clean = w
        clean.augmentation.snrDB = nil
        var o = TrainOptions(); o.noisePattern = "synth/"
        w.augmentation.noisePattern = o.augmentation.noisePattern
        #expect(w.augmentation.noisePattern == "synth/" && Augmentation().noisePattern == nil)
        // The noise added (the window less the same seed's window without noise: the placement's draws
        // come first) is the folder's constant for a matching path, white (changing sign) otherwise.
        func added(_ w: Windowing, _ source: String, seed: UInt64) -> [Double] {
            var g1: SeededRandom? = SeededRandom(seed: seed), g2: SeededRandom? = SeededRandom(seed: seed)
            let y = w.sequence(clip(source), perStep: false, rng: &g1).x, x = clean.sequence(clip(source), perStep: false, rng: &g2).x
            return zip(y, x).map { Double($0) - Double($1) }
        }
        for seed in UInt64(0)..<4 {
            let folder = added(w, "/data/synth/w.wav", seed: seed)
            #expect(folder.allSatisfy { Swift.abs($0 - folder[0]) < 1e-5 } && folder[0] > 0, "seed \(seed): \(folder.prefix(3))")
            let white = added(w, "/data/fsdd/w.wav", seed: seed)
            #expect(white.contains { $0 > 0 } && white.contains { $0 < 0 }, "seed \(seed)")
            var all = w
            all.augmentation.noisePattern = nil   // no pattern: every recording gets the folder's
            let any = added(all, "/data/fsdd/w.wav", seed: seed)
            #expect(any.allSatisfy { Swift.abs($0 - any[0]) < 1e-5 }, "seed \(seed)")
        }
        // Recorded in the options' JSON (a model's `ssm_train_options`) and read back.
        #expect(!TrainOptions().json.contains("noise_pattern"))
        let back = try #require(try? JSONDecoder().decode(TrainOptions.self, from: Data(o.json.utf8)))
        #expect(back.noisePattern == "synth/")
    }

    @Test("trim: the recording starts where its envelope reaches the drawn share of its peak, abruptly; the background class is never cut, nor a recording --trim-pattern leaves out")
    func trim() throws {
        // A word whose level rises linearly over 400 samples (from sample 100), holds for 200 and falls
        // over 400 (to sample 1100), in 100 of silence each side: the onset and release cut where the
        // envelope passes the drawn levels.
        let ramp = (0..<400).map { Float($0) / 400 }
        let word = [Float](repeating: 0, count: 100) + ramp + [Float](repeating: 1, count: 200) + ramp.reversed() + [Float](repeating: 0, count: 100)
        let cut = Windowing.trimmed(word, onset: 0.25, release: 0.5)
        let span = Windowing.activeSpan(word, onset: 0.25, release: 0.5)
        #expect(cut == Array(word[span]))
        // The envelope lags the ramps by its 64-sample average: it reaches 25 % about 64 samples after
        // the signal does (sample 200), and falls below 50 % about 64 after the signal (sample 900).
        #expect(span.lowerBound > 200 && span.lowerBound < 200 + 80, "onset at \(span.lowerBound)")
        #expect(span.upperBound > 900 && span.upperBound < 900 + 80, "release at \(span.upperBound)")
        #expect(cut.first! > 0.25 && cut.last! > 0.25)  // abrupt: the first and last samples are loud
        #expect(Windowing.activeSpan(word) == Windowing.activeSpan(word, onset: 0.1, release: 0.1))
        #expect(Windowing.trimmed([Float](repeating: 0, count: 50), onset: 0.1, release: 0.1).count == 50)
        // In a sequence: with trim 1 every word is cut at levels within trimLevel (it starts at ≥ 1 % of
        // its peak, not on its quiet onset), seeded; the background class never is (998 samples are
        // not zero). A low release level may fall in the silence after the word (the envelope lags).
        var w = Windowing(length: 2000, background: 1)
        w.augmentation.gainDB = 0; w.augmentation.trim = 1; w.augmentation.shift = false
        var lengths = Set<Int>()
        for seed in 0..<12 {
            var g: SeededRandom? = SeededRandom(seed: UInt64(seed)), h: SeededRandom? = SeededRandom(seed: UInt64(seed))
            let y = w.sequence(Clip(samples: word, label: 0, source: "w"), perStep: true, rng: &g).x
            #expect(y == w.sequence(Clip(samples: word, label: 0, source: "w"), perStep: true, rng: &h).x)
            let on = y.indices.filter { y[$0] != 0 }
            lengths.insert(on.count)
            #expect(on.count < 998 && on.count > 200, "seed \(seed): \(on.count) samples kept")
            #expect(y[on.first!] >= 0.01, "seed \(seed): starts at \(y[on.first!])")
            var n: SeededRandom? = SeededRandom(seed: UInt64(seed))
            #expect(w.sequence(Clip(samples: word, label: 1, source: "bg"), perStep: true, rng: &n).x.filter { $0 != 0 }.count == 998)
        }
        #expect(lengths.count > 6)   // the levels are drawn, not fixed
        // --trim-level lowers the highest level: cut at 1–2 % of its peak, a word keeps more of its
        // ramps than half of the cuts above (at 1–30 %: 5.5 % at the median) do.
        var gentle = w
        var o = TrainOptions(); o.trim = 1; o.trimLevel = 0.02
        gentle.augmentation.trimLevel = o.augmentation.trimLevel
        #expect(gentle.augmentation.trimLevel == 0.01...0.02 && TrainOptions().augmentation.trimLevel == Augmentation().trimLevel)
        for seed in 0..<12 {
            var g: SeededRandom? = SeededRandom(seed: UInt64(seed))
            let y = gentle.sequence(Clip(samples: word, label: 0, source: "w"), perStep: true, rng: &g).x
            let on = y.indices.filter { y[$0] != 0 }
            #expect(on.count > lengths.sorted()[lengths.count / 2], "seed \(seed): \(on.count) samples kept, \(lengths.sorted())")
            #expect(y[on.first!] >= 0.01, "seed \(seed): starts at \(y[on.first!])")
        }
        var none: SeededRandom? = nil  // validation: never cut
        #expect(w.sequence(Clip(samples: word, label: 0, source: "w"), perStep: true, rng: &none).x.filter { $0 != 0 }.count == 998)
        #expect(!TrainOptions().json.contains("trim"))
        // --trim-pattern: only a word whose source contains the pattern is cut; the others keep all
        // 998 samples, and a matching one is cut as without a pattern (the same draws, the same seed).
        o.trimPattern = "fsdd/"
        var picky = w
        picky.augmentation.trimPattern = o.augmentation.trimPattern
        #expect(picky.augmentation.trimPattern == "fsdd/" && Augmentation().trimPattern == nil)
        for seed in 0..<6 {
            var g: SeededRandom? = SeededRandom(seed: UInt64(seed)), h: SeededRandom? = SeededRandom(seed: UInt64(seed))
            var k: SeededRandom? = SeededRandom(seed: UInt64(seed))
            let kept = picky.sequence(Clip(samples: word, label: 0, source: "synth/w.wav"), perStep: true, rng: &g).x
            #expect(kept.filter { $0 != 0 }.count == 998, "seed \(seed)")
            let cut = picky.sequence(Clip(samples: word, label: 0, source: "/data/fsdd/w.wav"), perStep: true, rng: &h).x
            #expect(cut == w.sequence(Clip(samples: word, label: 0, source: "/data/fsdd/w.wav"), perStep: true, rng: &k).x)
            #expect(cut.filter { $0 != 0 }.count < 998, "seed \(seed)")
        }
        // Recorded in the options' JSON (a model's `ssm_train_options`) and read back with the level.
        o.trimLevel = 0.05
        let back = try #require(try? JSONDecoder().decode(TrainOptions.self, from: Data(o.json.utf8)))
        #expect(back.trim == 1 && back.trimLevel == 0.05 && back.trimPattern == "fsdd/")
    }

    @Test("--resume: the options a checkpoint trained with that a command changes, save threads, averaging and events")
    func resumeChanges() {
        var then = TrainOptions(); then.lr = 3e-3; then.trim = 0.5; then.readout = .perStep; then.threads = 2
        #expect(then.changes(from: then.json).isEmpty)
        var now = then
        now.threads = 1; now.averageFrom = 0.5; now.eventThreshold = 0.7
        #expect(now.changes(from: then.json).isEmpty, "\(now.changes(from: then.json))")
        now.epochs = 20
        #expect(now.changes(from: then.json).map(\.key) == ["epochs"])
        now.epochs = then.epochs; now.lr = 1e-3; now.trim = nil; now.trimPattern = "fsdd/"; now.readout = .pooled
        let c = now.changes(from: then.json)
        #expect(c.map(\.key) == ["lr", "readout", "trim", "trim_pattern"], "\(c)")
        #expect(c.first.map { $0.checkpoint == "0.003" && $0.now == "0.001" } == true, "\(c)")
        #expect(c.last.map { $0.checkpoint == "unset" && $0.now == "'fsdd/'" } == true, "\(c)")
        #expect(c[2].checkpoint == "0.5" && c[2].now == "unset" && c[1].checkpoint == "'per_step'", "\(c)")
    }

    @Test("--resume: the data digest tells any change of the clips, classes, order or noise, not of their paths")
    func dataDigest() {
        var rng = SeededRandom(seed: 9)
        let clips = (0..<6).map { i in Clip(samples: (0..<40).map { _ in Float(rng.normal()) }, label: i % 3, source: "d/c\(i).wav") }
        let set = ClipSet(labels: ["a", "b", "c"], clips: clips, sampleRate: 100)
        let val = ClipSet(labels: ["a", "b", "c"], clips: Array(clips.prefix(2)), sampleRate: 100)
        let noise: [[Float]] = [(0..<30).map { _ in Float(rng.normal()) }]
        let d = DataDigest(train: set, validation: val, noise: noise)
        #expect(d.train.count == 16 && d.train != d.validation)
        // The same data elsewhere (other paths) is the same data.
        var moved = set
        for i in moved.clips.indices { moved.clips[i].source = "elsewhere/" + moved.clips[i].source }
        #expect(DataDigest(train: moved, validation: val, noise: noise) == d)
        // One sample one ulp away, a class, the order, a label name, the rate: each another training set.
        var variants: [ClipSet] = []
        var v = set; v.clips[4].samples[17] = v.clips[4].samples[17].nextUp; variants.append(v)
        v = set; v.clips[5].label = 0; variants.append(v)
        v = set; v.clips.swapAt(1, 2); variants.append(v)
        v = set; v.labels[2] = "C"; variants.append(v)
        v = set; v.sampleRate = 200; variants.append(v)
        v = set; v.clips[0].target = v.clips[0].samples; variants.append(v)
        v = set; v.clips.removeLast(); variants.append(v)
        for (i, w) in variants.enumerated() {
            let c = DataDigest(train: w, validation: val, noise: noise).changes(from: d)
            #expect(c == ["the training set"], "variant \(i): \(c)")
        }
        var n2 = noise; n2[0][29] = -n2[0][29]
        #expect(DataDigest(train: set, validation: val, noise: n2).changes(from: d) == ["the noise recordings"])
        #expect(DataDigest(train: set, validation: set, noise: []).changes(from: d) == ["the validation set", "the noise recordings"])
    }

    @Test("whispering keeps the level and the formant, and takes away the pitch")
    func whisper() {
        let x = voicedVowel()
        var g = SeededRandom(seed: 3)
        let y = Windowing.whispered(x, &g)
        // Fraction of the energy within 800–1200 Hz (a DFT by Goertzel over 10 Hz bins).
        func band(_ v: [Float]) -> Double {
            var inBand = 0.0, all = 0.0
            for f in Swift.stride(from: 10.0, to: 4000, by: 10) {
                let w = 2 * Double.pi * f / 8000
                var re = 0.0, im = 0.0
                for (k, s) in v.enumerated() { re += Double(s) * cos(w * Double(k)); im -= Double(s) * sin(w * Double(k)) }
                let p = re * re + im * im
                all += p; if f >= 800 && f <= 1200 { inBand += p }
            }
            return inBand / all
        }
        #expect(y.count == x.count)
        #expect(Swift.abs(energy(y) / energy(x) - 1) < 1e-3)
        #expect(autocorrelation(x, 80) > 0.8 && autocorrelation(y, 80) < 0.3, "pitch: \(autocorrelation(x, 80)) → \(autocorrelation(y, 80))")
        #expect(band(x) > 0.5 && band(y) > 0.5 * band(x), "formant band: \(band(x)) → \(band(y))")
        var g2 = SeededRandom(seed: 3)
        #expect(Windowing.whispered(x, &g2) == y)
    }

    @Test("reverberation: the direct path, then a tail at the DRR asked for that falls 60 dB per RT60; level kept; seeded")
    func reverberation() {
        // An impulse: the output is the room's response, scaled to the impulse's energy.
        var x = [Float](repeating: 0, count: 100)
        x[0] = 1
        var r1 = SeededRandom(seed: 3), r2 = SeededRandom(seed: 3), r3 = SeededRandom(seed: 4)
        let rt60 = 2400.0, drr = 6.0
        let y = Windowing.reverberated(x, rt60: rt60, drr: drr, &r1)
        #expect(y.count == 100 + 1600 - 1)                                    // the tail to −40 dB is kept
        #expect(y == Windowing.reverberated(x, rt60: rt60, drr: drr, &r2) && y != Windowing.reverberated(x, rt60: rt60, drr: drr, &r3))
        func energy(_ r: Range<Int>) -> Double { r.reduce(0.0) { $0 + Double(y[$1]) * Double(y[$1]) } }
        #expect(Swift.abs(energy(0..<y.count) - 1) < 1e-4, "level kept")
        #expect(Swift.abs(10 * log10(Double(y[0] * y[0]) / energy(1..<y.count)) - drr) < 1e-3, "direct-to-reverberant ratio")
        // 400 samples are a sixth of the RT60: 10 dB less energy each (Gaussian tails: ±1.5 dB).
        let fall = 10 * log10(energy(1..<401) / energy(401..<801))
        #expect(Swift.abs(fall - 10) < 1.5, "decay \(fall) dB per 400 samples")
        // A longer signal keeps its energy too; no reverberation below one sample.
        var g = SeededRandom(seed: 5)
        let v = (0..<3000).map { _ in Float(g.normal()) }
        let w = Windowing.reverberated(v, rt60: 800, drr: 0, &g)
        let e0 = v.reduce(0.0) { $0 + Double($1) * Double($1) }, e1 = w.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(Swift.abs(e1 / e0 - 1) < 1e-4 && w.count == 3000 + 533 - 1)
        #expect(Windowing.reverberated(v, rt60: 0.5, drr: 0, &g) == v)
    }

    @Test("formant warping moves the resonance, keeps the pitch and the level")
    func formant() {
        let x = voicedVowel()
        func peak(_ v: [Float]) -> Double { strongestHarmonic(v, 1000..<7000) }
        #expect(peak(x) == 1000)
        for (factor, expected) in [(1.25, 1200.0...1300), (0.8, 800.0...800)] {
            let y = Windowing.formantWarped(x, factor: factor)
            #expect(y.count == x.count)
            #expect(Swift.abs(energy(y) / energy(x) - 1) < 1e-3)
            #expect(expected.contains(peak(y)), "factor \(factor): resonance at \(peak(y)) Hz")
            #expect(autocorrelation(y, 80) > 0.8, "factor \(factor): pitch period lost (\(autocorrelation(y, 80)))")
        }
        // A factor of (almost) one goes through the analysis and overlap-add and gives x back.
        let same = Windowing.formantWarped(x, factor: 1 + 1e-12)
        let peakX = x.map { Swift.abs($0) }.max()!, diff = zip(same, x).map { Swift.abs($0 - $1) }.max()!
        #expect(same != x && diff <= 1e-4 * peakX, "identity warp changed the signal by \(diff) (peak \(peakX))")
    }

    @Test("a tempo change scales the length and the timing, keeps the pitch, the resonance and the level")
    func tempo() {
        let x = voicedVowel()
        func peak(_ v: [Float]) -> Double { strongestHarmonic(v, 500..<(v.count - 500)) }
        for factor in [1.6, 0.7] {
            let y = Windowing.tempoChanged(x, factor: factor)
            #expect(y.count == Int((8000 / factor).rounded()))
            #expect(Swift.abs(energy(y) / Double(y.count) / (energy(x) / Double(x.count)) - 1) < 1e-3)
            #expect(autocorrelation(y, 80) > 0.8, "factor \(factor): pitch period lost (\(autocorrelation(y, 80)))")
            #expect(peak(y) == 1000, "factor \(factor): resonance at \(peak(y)) Hz")
        }
        // A burst from 0.375 s to 0.625 s is centred at 0.25 s when played twice as fast.
        let burst = x.indices.map { $0 >= 3000 && $0 < 5000 ? x[$0] : 0 }
        let y = Windowing.tempoChanged(burst, factor: 2)
        let centre = y.indices.reduce(0.0) { $0 + Double($1) * Double(y[$1] * y[$1]) } / energy(y)
        #expect(Swift.abs(centre - 2000) < 20, "centre of energy at \(centre)")
    }

    @Test("band-limiting keeps the low band, removes the high one (4th-order Butterworth), keeps the level")
    func lowpass() {
        let n = 4000
        // A tone at 0.03 and one at 0.4 of the rate; cutoff 0.15: Butterworth's 4th order puts the
        // upper tone (tan π·0.4 / tan π·0.15 ≈ 6 times the pre-warped cutoff) 62 dB down.
        var x = (0..<n).map { Float(sin(2 * Double.pi * 0.03 * Double($0)) + sin(2 * Double.pi * 0.4 * Double($0))) }
        let p0 = x.reduce(0.0) { $0 + Double($1 * $1) }
        Windowing.lowpassed(&x, cutoff: 0.15)
        let p1 = x.reduce(0.0) { $0 + Double($1 * $1) }
        #expect(Swift.abs(p1 / p0 - 1) < 1e-4)
        // Amplitude of a tone at f in the second half (past the filter's transient), whatever its
        // phase: the projections on sine and cosine.
        func amplitude(_ f: Double) -> Double {
            var s = 0.0, c = 0.0
            for k in (n / 2)..<n {
                s += Double(x[k]) * sin(2 * Double.pi * f * Double(k)); c += Double(x[k]) * cos(2 * Double.pi * f * Double(k))
            }
            return (s * s + c * c).squareRoot() / Double(n / 4)
        }
        // The level is kept: the low tone, now alone, carries the mix's power (amplitude √2).
        #expect(Swift.abs(amplitude(0.03) - 2.0.squareRoot()) < 0.02, "low tone \(amplitude(0.03))")
        #expect(amplitude(0.4) < 2.0.squareRoot() * Double.pow(10, -55.0 / 20), "high tone \(amplitude(0.4))")
        // In a window: off by default (the clip passes unchanged), on it band-limits, seeded like the rest.
        var w = Windowing(length: 800)
        #expect(w.augmentation.lowpass == 0 && TrainOptions().lowpass == 0)
        w.augmentation.gainDB = 0; w.augmentation.shift = false
        let mix = (0..<800).map { Float(sin(2 * Double.pi * 0.03 * Double($0)) + sin(2 * Double.pi * 0.4 * Double($0))) }
        let clip = Clip(samples: mix, label: 0, source: "t")
        var g0: SeededRandom? = SeededRandom(seed: 4)
        #expect(w.sequence(clip, perStep: false, rng: &g0).x == mix.map { Scalar($0) })
        w.augmentation.lowpass = 1
        var g1: SeededRandom? = SeededRandom(seed: 4), g2: SeededRandom? = SeededRandom(seed: 4)
        let a = w.sequence(clip, perStep: false, rng: &g1).x
        #expect(a == w.sequence(clip, perStep: false, rng: &g2).x && a != mix.map { Scalar($0) })
    }

    @Test("random EQ is seeded, changes the spectrum and keeps the level")
    func equalization() {
        var w = Windowing(length: 400)
        w.augmentation.gainDB = 0; w.augmentation.shift = false; w.augmentation.eqDB = 12; w.augmentation.eqBands = 3
        let clip = Clip(samples: (0..<400).map { _ in 0 }.enumerated().map { Float(sin(Double($0.offset) * 0.3) + 0.5 * sin(Double($0.offset) * 2.1)) * 0.3 }, label: 0, source: "s")
        var g1: SeededRandom? = SeededRandom(seed: 1), g2: SeededRandom? = SeededRandom(seed: 1), g3: SeededRandom? = SeededRandom(seed: 2)
        let a = w.sequence(clip, perStep: false, rng: &g1), b = w.sequence(clip, perStep: false, rng: &g2), c = w.sequence(clip, perStep: false, rng: &g3)
        #expect(a.x == b.x && a.x != c.x && a.x.map { Float($0) } != clip.samples)
        let p0 = clip.samples.reduce(0.0) { $0 + Double($1 * $1) }, p1 = a.x.reduce(0.0) { $0 + Double($1 * $1) }
        #expect(Swift.abs(p1 / p0 - 1) < 1e-4)
    }
}
