import RealModule
import SSM

/// One recording in memory: mono samples at the dataset's rate, its class (classification) or its
/// clean target (filtering, same length), and where it came from.
public struct Clip: Sendable {
    public var samples: [Float]
    public var label: Int
    public var target: [Float]?
    public var source: String
    public init(samples: [Float], label: Int = 0, target: [Float]? = nil, source: String) {
        self.samples = samples; self.label = label; self.target = target; self.source = source
    }
}

/// A labelled set of clips at one sample rate (what a dataset folder or manifest decodes to).
public struct ClipSet: Sendable {
    public var labels: [String]
    public var clips: [Clip]
    public var sampleRate: Int
    public init(labels: [String], clips: [Clip], sampleRate: Int) {
        self.labels = labels; self.clips = clips; self.sampleRate = sampleRate
    }

    /// Clips per class, in label order.
    public var classCounts: [Int] {
        var n = [Int](repeating: 0, count: labels.count)
        for c in clips where c.label >= 0 && c.label < n.count { n[c.label] += 1 }
        return n
    }

    /// Splits off a validation set: clips whose source matches `pattern` (a substring of the path;
    /// e.g. a speaker's name, so that validation voices are not training voices), or else a
    /// deterministic `fraction` of each class (seeded).
    public func split(pattern: String?, fraction: Double, seed: UInt64) -> (train: ClipSet, validation: ClipSet) {
        var train: [Clip] = [], val: [Clip] = []
        if let pattern, !pattern.isEmpty {
            for c in clips { if c.source.contains(pattern) { val.append(c) } else { train.append(c) } }
        } else if fraction > 0 {
            var rng = SeededRandom(seed: seed ^ 0x5EED_5EED)
            for label in labels.indices {
                var members = clips.filter { $0.label == label }
                shuffle(&members, &rng)
                let k = Int((Double(members.count) * fraction).rounded())
                val += members.prefix(k); train += members.dropFirst(k)
            }
        } else {
            train = clips
        }
        return (ClipSet(labels: labels, clips: train, sampleRate: sampleRate), ClipSet(labels: labels, clips: val, sampleRate: sampleRate))
    }
}

/// Fisher–Yates with the project's seeded generator (the same order on every machine).
public func shuffle<T>(_ a: inout [T], _ rng: inout SeededRandom) {
    if a.count < 2 { return }
    for i in stride(from: a.count - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        a.swapAt(i, j)
    }
}

/// Training-time augmentation, each drawn per clip from the epoch's generator.
public struct Augmentation: Sendable, Equatable {
    /// Gain, uniform in ±gainDB.
    public var gainDB = 0.0
    /// Additive noise (white, or a random excerpt of `noise` clips) at an SNR uniform in this range
    /// (dB), with probability `noiseProbability`.
    public var snrDB: ClosedRange<Double>? = nil
    public var noiseProbability = 1.0
    /// Probability that the noise covers only the recording's span rather than the whole window: a
    /// noisy recording cut out and padded with digital silence, as `eval` and a file played alone
    /// give, so the model also hears noise stop (and start) abruptly. The SNR is then the span's.
    public var cutNoise = 0.0
    /// Only clips whose source (path) contains this draw their noise from `Windowing.noise`; the
    /// others get white noise (nil: every clip): a noise folder that fits one kind of recording,
    /// e.g. the coloured noise a synthetic test set carries, while another kind keeps white noise.
    public var noisePattern: String? = nil
    /// With this probability the recording is cut as an energy-based trimmer with a random threshold
    /// cuts it: from where its envelope first reaches θ₁ of its peak to where it last is at or above θ₂,
    /// θ₁ and θ₂ each log-uniform in `trimLevel` (`Windowing.trimmed`). The word then starts (and
    /// ends) abruptly, inside its first and last sounds, as in data sets of recordings trimmed to
    /// the word (FSDD's speakers are cut that close to different degrees). Clips of the background
    /// class are never cut: they are not words; nor are a filter's (its target would not follow).
    public var trim = 0.0
    /// The range θ₁ and θ₂ are drawn from; its upper bound is `train --trim-level`.
    public var trimLevel: ClosedRange<Double> = 0.01...0.3
    /// Only clips whose source (path) contains this are cut (nil: every word): recordings of one
    /// kind, e.g. a data set whose recordings are trimmed to the word, while the others keep the
    /// quiet first and last sounds (a "t", an "f") that tell some words apart.
    public var trimPattern: String? = nil
    /// Speed (and with it pitch) changed by resampling by a factor uniform in 1 ± speed.
    public var speed = 0.0
    /// Random placement of the clip in the window (time shift); off: clips start at 0.
    public var shift = true
    /// Random spectral tilt, y_k = x_k − a·x_{k−1} with a uniform in ±tilt (a first-order shelf: a
    /// different microphone, room or voice brightness), the level kept.
    public var tilt = 0.0
    /// Random equalization: `eqBands` peaking sections (RBJ cookbook), each at a frequency
    /// log-uniform in [1/80, 0.45] of the sample rate, a gain uniform in ±eqDB and Q uniform in
    /// [0.7, 3], the level kept: formants, microphones and rooms that differ from the data's.
    public var eqDB = 0.0
    public var eqBands = 3
    /// With this probability the clip is whispered: its excitation is replaced by white noise through
    /// the clip's own spectral envelope (order-12 linear prediction on 32 ms Hann frames, 50 % overlap),
    /// so the words keep their formants but lose their pitch, as breathy and whispered voices do.
    public var whisper = 0.0
    /// Formants (the spectral envelope) moved by a factor uniform in 1 ± formant, pitch and timing
    /// kept: a longer or shorter vocal tract, i.e. another speaker (`Windowing.formantWarped`).
    public var formant = 0.0
    /// With this probability the clip is reverberated (`Windowing.reverberated`): convolved with a
    /// synthetic room response whose reverberation time (RT60) is log-uniform in `reverbTime` (as
    /// fractions of the window, like `maskTime`) and whose direct-to-reverberant energy ratio is
    /// uniform in `reverbDRR` dB, the level kept — another room and another distance from the
    /// microphone. The tail is kept up to the window's length (never beyond the clip's own, if longer).
    /// `reverbTime` must be set (positive) when `reverb` is; `TrainOptions` sets 0.1–0.7 s.
    public var reverb = 0.0
    public var reverbTime: ClosedRange<Double> = 0...0
    public var reverbDRR: ClosedRange<Double> = -2...12
    /// Tempo changed by a factor log-uniform in [1/(1 + tempo), 1 + tempo], pitch and formants
    /// kept (`Windowing.tempoChanged`): a faster or slower speaker of the same voice, where `speed`
    /// moves pitch and formants with the tempo.
    public var tempo = 0.0
    /// With this probability the clip is band-limited: a 4th-order Butterworth low-pass
    /// (`FilterDesign`) at a cutoff log-uniform in [1/8, 0.45] of the sample rate (1–3.6 kHz at
    /// 8 kHz), the level kept — a microphone, a codec or a recording chain that drops the upper band
    /// (and with it the fricatives' noise), as recordings of human speakers often do.
    public var lowpass = 0.0
    /// Feature masks (SpecAugment; `FeatureMask`, applied by the model to a compressing block's
    /// log-envelopes): `masks` spans of channels, each of a width uniform in [0, maskChannels] of
    /// the channels, and `masks` spans of time, each uniform in [0, maskTime] of the window, each at
    /// a uniform place. 0: none.
    public var maskChannels = 0.0
    public var maskTime = 0.0
    public var masks = 2
    public init() {}
}

/// Turns clips into fixed-length training sequences: crop or pad to L samples, augment, and for
/// a per-step readout mark each step's target class.
///
/// Per-step targets (how a streaming classifier is trained to run): the word is the span where the
/// clip's envelope is above 10 % of its peak; steps before it and more than `tail` after it are the
/// background class; from its onset until `evidence` of its duration has passed they stay the
/// background (a causal model cannot know the word yet, and an early guess would fire an event);
/// after that until `tail` past its end they are the word's class. Without a background class the
/// steps outside the word are not counted.
public struct Windowing: Sendable {
    public var length: Int
    public var background: Int?
    public var evidence = 0.4
    public var tail: Int = 0
    public var augmentation = Augmentation()
    public var noise: [[Float]] = []
    public init(length: Int, background: Int? = nil) { self.length = length; self.background = background }

    /// The sequence for `clip`: random placement and augmentation when `rng` is given (training),
    /// a deterministic centred placement without augmentation otherwise (validation).
    public func sequence(_ clip: Clip, perStep: Bool, rng: inout SeededRandom?) -> TrainingSequence {
        let L = length
        var samples = clip.samples
        if var r = rng, augmentation.trim > 0, clip.label != background, clip.target == nil,
           augmentation.trimPattern.map({ clip.source.contains($0) }) ?? true {
            if r.uniform() < augmentation.trim {
                let lv = augmentation.trimLevel
                func level() -> Double { Double.exp(r.uniform(Double.log(lv.lowerBound), Double.log(lv.upperBound))) }
                let onset = level()
                samples = Windowing.trimmed(samples, onset: onset, release: level())
            }
            rng = r
        }
        if var r = rng, augmentation.speed > 0 {
            samples = Windowing.resample(samples, factor: 1 + r.uniform(-augmentation.speed, augmentation.speed))
            rng = r
        }
        if var r = rng, augmentation.tempo > 0 {
            let t = Double.log(1 + augmentation.tempo)
            samples = Windowing.tempoChanged(samples, factor: Double.exp(r.uniform(-t, t)))
            rng = r
        }
        if var r = rng, augmentation.formant > 0 {
            samples = Windowing.formantWarped(samples, factor: 1 + r.uniform(-augmentation.formant, augmentation.formant))
            rng = r
        }
        if var r = rng, augmentation.whisper > 0 {
            if r.uniform() < augmentation.whisper { samples = Windowing.whispered(samples, &r) }
            rng = r
        }
        // The clip as spoken: its word's span sets the per-step targets (a room's tail is not the word).
        let dry = samples
        if var r = rng, augmentation.reverb > 0 {
            if r.uniform() < augmentation.reverb {
                let t = augmentation.reverbTime, d = augmentation.reverbDRR
                precondition(t.lowerBound > 0 && t.upperBound >= t.lowerBound, "Augmentation.reverbTime must be a positive range")
                let rt60 = Double.exp(r.uniform(Double.log(t.lowerBound), Double.log(t.upperBound))) * Double(L)
                // The tail may fill the window but not push the clip past it (its start stays in).
                let wet = Windowing.reverberated(samples, rt60: rt60, drr: r.uniform(d.lowerBound, d.upperBound), &r)
                samples = Array(wet.prefix(max(samples.count, L)))
            }
            rng = r
        }
        var x = [Float](repeating: 0, count: L)
        var mask: FeatureMask? = nil
        var target = clip.target.map { _ in [Float](repeating: 0, count: L) }
        let n = samples.count
        // Placement: offset of the clip in the window (negative: the window starts inside the clip).
        let offset: Int
        if var r = rng, augmentation.shift {
            offset = n <= L ? Int(r.next() % UInt64(L - n + 1)) : -Int(r.next() % UInt64(n - L + 1))
            rng = r
        } else {
            offset = n <= L ? (L - n) / 2 : -(n - L) / 2
        }
        for k in 0..<L {
            let j = k - offset
            if j >= 0 && j < n { x[k] = samples[j]; if let t = clip.target, j < t.count { target![k] = t[j] } }
        }
        if var r = rng {
            let a = augmentation
            if a.tilt > 0 {
                let c = Float(r.uniform(-a.tilt, a.tilt))
                var p0 = 0.0, p1 = 0.0, prev: Float = 0
                for k in 0..<L { p0 += Double(x[k] * x[k]); let v = x[k] - c * prev; prev = x[k]; x[k] = v; p1 += Double(v * v) }
                if p1 > 0 { let g = Float((p0 / p1).squareRoot()); for k in 0..<L { x[k] *= g } }
            }
            if a.eqDB > 0 && a.eqBands > 0 {
                Windowing.keepingLevel(&x) { x in
                    for _ in 0..<a.eqBands {
                        let f = Double.exp(r.uniform(Double.log(1.0 / 80), Double.log(0.45)))
                        let section = Biquad.Section(kind: .peaking, frequency: f, gainDB: r.uniform(-a.eqDB, a.eqDB), q: r.uniform(0.7, 3))
                        Windowing.filter(&x, Biquad.coefficients(section, rate: 1))
                    }
                }
            }
            if a.lowpass > 0 && r.uniform() < a.lowpass {
                let f = Double.exp(r.uniform(Double.log(1.0 / 8), Double.log(0.45)))
                Windowing.lowpassed(&x, cutoff: f)
            }
            if a.gainDB > 0 {
                let g = Float(Double.pow(10, r.uniform(-a.gainDB, a.gainDB) / 20))
                for k in 0..<L { x[k] *= g }
            }
            if let snr = a.snrDB, r.uniform() < a.noiseProbability {
                // The samples the noise covers: the window, or (cut) the recording's span in it.
                var span = 0..<L
                if a.cutNoise > 0 && r.uniform() < a.cutNoise { span = max(0, offset)..<max(0, min(L, offset + n)) }
                var p = 0.0
                for k in span { p += Double(x[k]) * Double(x[k]) }
                p /= Double(max(1, span.count))
                var noise = [Float](repeating: 0, count: L)
                let folder = !self.noise.isEmpty && (a.noisePattern.map { clip.source.contains($0) } ?? true)
                let src = folder ? self.noise[Int(r.next() % UInt64(self.noise.count))] : []
                if !src.isEmpty {
                    let start = src.count > L ? Int(r.next() % UInt64(src.count - L)) : 0
                    for k in 0..<L { noise[k] = src[(start + k) % src.count] }
                } else {
                    for k in 0..<L { noise[k] = Float(r.normal()) }
                }
                var q = 0.0
                for k in span { q += Double(noise[k]) * Double(noise[k]) }
                q /= Double(max(1, span.count))
                if p > 0 && q > 0 {
                    let s = Float((p / q / Double.pow(10, r.uniform(snr.lowerBound, snr.upperBound) / 10)).squareRoot())
                    for k in span { x[k] += s * noise[k] }
                }
            }
            if a.masks > 0 && (a.maskChannels > 0 || a.maskTime > 0) {
                var m = FeatureMask()
                func span(_ width: Double) -> Range<Double> { let w = r.uniform(0, width), s = r.uniform(0, 1 - w); return s..<(s + w) }
                for _ in 0..<a.masks {
                    if a.maskChannels > 0 { m.channels.append(span(a.maskChannels)) }
                    if a.maskTime > 0 { m.rows.append(span(a.maskTime)) }
                }
                mask = m
            }
            rng = r
        }
        var steps: [Int32]? = nil
        if perStep {
            steps = Windowing.stepTargets(dry, offset: offset, length: L, label: clip.label, background: background,
                                          evidence: evidence, tail: tail)
        }
        return TrainingSequence(x: x.map { Scalar($0) }, label: clip.label, stepTargets: steps, target: target.map { $0.map { Scalar($0) } },
                                mask: mask)
    }

    /// The span [start, end) of `samples` where its envelope (|x| smoothed over 8 ms at 8 kHz:
    /// a one-pole average with coefficient 1/64) first reaches `onset` of its peak and last is
    /// at or above `release` of it (both 10 %: the word the per-step targets mark).
    public static func activeSpan(_ samples: [Float], onset: Double = 0.1, release: Double = 0.1) -> Range<Int> {
        var env = 0.0, peak = 0.0
        var e = [Double](repeating: 0, count: samples.count)
        for (i, v) in samples.enumerated() { env += (Double(abs(v)) - env) / 64; e[i] = env; peak = max(peak, env) }
        guard peak > 0 else { return 0..<0 }
        let first = e.firstIndex { $0 >= onset * peak } ?? 0, last = e.lastIndex { $0 >= release * peak } ?? samples.count - 1
        return first..<(last + 1)
    }

    /// `samples` cut to `activeSpan(samples, onset:, release:)`, as a trimmer with those thresholds
    /// would cut the recording: it starts and ends abruptly (digital silence stays as it is).
    static func trimmed(_ samples: [Float], onset: Double, release: Double) -> [Float] {
        let span = activeSpan(samples, onset: onset, release: release)
        return span.isEmpty ? samples : Array(samples[span])
    }

    static func stepTargets(_ samples: [Float], offset: Int, length L: Int, label: Int, background: Int?,
                            evidence: Double, tail: Int) -> [Int32] {
        let span = activeSpan(samples)
        let bg = Int32(background ?? -1)
        var t = [Int32](repeating: bg, count: L)
        guard !span.isEmpty else { return t }
        let start = span.lowerBound + offset, end = span.upperBound + offset
        let on = start + Int(evidence * Double(span.count))
        // Before `on` the target stays the background (or uncounted without one): a streaming model
        // must not commit to a guess early — the event detector would report it. The word may lie
        // wholly outside the window (a clip longer than it, its word after the window's end).
        let first = max(0, start), last = min(L, max(0, end + tail))
        if first < last { for k in first..<last { t[k] = k < on ? bg : Int32(label) } }
        return t
    }

    /// x through a 4th-order Butterworth low-pass at `cutoff` (a fraction of the sample rate, in
    /// (0, 0.5)), from rest, its level (mean square) kept: the `design` toolbox's filter, run by its
    /// double-precision reference (`ModalSystem.filter`).
    static func lowpassed(_ x: inout [Float], cutoff: Double) {
        let spec = FilterDesign.Spec(family: .butterworth, band: .lowpass, order: 4, cutoff: cutoff, rate: 1)
        // The cutoffs drawn lie inside (0, 0.5), where the design cannot fail.
        guard let system = try? ModalRealization.realize(FilterDesign.design(spec)) else { return }
        keepingLevel(&x) { x in
            let y = system.filter(x.map { Double($0) }, length: x.count)
            for k in x.indices { x[k] = Float(y[k]) }
        }
    }

    /// `x` in a synthetic room: x ∗ h, h₀ = 1 (the direct path) and, for 1 ≤ n < N, h_n = g·w_n·10^(−3n/rt60)
    /// (Gaussian w: the late reverberation's diffuse tail, its energy falling 60 dB in `rt60` samples;
    /// N where it is 40 dB down), g such that Σ_{n≥1} h_n² is `drr` dB below h₀². The tail is kept
    /// (the result is N − 1 samples longer) and so is x's energy (`keepingLevel`).
    public static func reverberated(_ x: [Float], rt60: Double, drr: Double, _ r: inout SeededRandom) -> [Float] {
        guard !x.isEmpty, rt60 >= 1 else { return x }
        let N = max(2, Int(rt60 * 2 / 3))
        var h = [Double](repeating: 0, count: N)
        var tail = 0.0
        for n in 1..<N { h[n] = r.normal() * Double.pow(10, -3 * Double(n) / rt60); tail += h[n] * h[n] }
        let g = tail > 0 ? (Double.pow(10, -drr / 10) / tail).squareRoot() : 0
        h[0] = 1
        for n in 1..<N { h[n] *= g }
        var y = x
        keepingLevel(&y) { y in
            y = causalConvolution(kernels: [[h]], inputs: [y.map { Double($0) }], length: y.count + N - 1)[0].map { Float($0) }
        }
        return y
    }

    /// Runs `change` on x, then scales x back to its mean square from before (the level an
    /// equalizing augmentation keeps). Silence stays silence.
    static func keepingLevel(_ x: inout [Float], _ change: (inout [Float]) -> Void) {
        var p0 = 0.0, p1 = 0.0
        for v in x { p0 += Double(v * v) }
        change(&x)
        for v in x { p1 += Double(v * v) }
        if p1 > 0 { let g = Float((p0 / p1).squareRoot()); for k in x.indices { x[k] *= g } }
    }

    /// One second-order section in place (direct form I, from rest).
    static func filter(_ x: inout [Float], _ c: (b: [Double], a: [Double])) {
        let b0 = c.b[0] / c.a[0], b1 = c.b[1] / c.a[0], b2 = c.b[2] / c.a[0], a1 = c.a[1] / c.a[0], a2 = c.a[2] / c.a[0]
        var x1 = 0.0, x2 = 0.0, y1 = 0.0, y2 = 0.0
        for k in x.indices {
            let v = Double(x[k]), y = b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
            x2 = x1; x1 = v; y2 = y1; y1 = y
            x[k] = Float(y)
        }
    }

    /// The order-p linear predictor of a (windowed) frame: autocorrelation R₀…R_p and Levinson–Durbin.
    /// Returns A(z) = Σ a_j z⁻ʲ (a₀ = 1) and the prediction-error energy.
    static func linearPredictor(_ frame: [Double], order p: Int) -> (a: [Double], error: Double) {
        let N = frame.count
        var R = [Double](repeating: 0, count: p + 1)
        for lag in 0...p where lag < N { var s = 0.0; for k in lag..<N { s += frame[k] * frame[k - lag] }; R[lag] = s }
        var a = [Double](repeating: 0, count: p + 1); a[0] = 1
        var err = R[0] * (1 + 1e-9) + 1e-12
        if R[0] > 0 {
            for i in 1...p {
                var acc = R[i]
                for j in 1..<i { acc += a[j] * R[i - j] }
                let kr = -acc / err
                let prev = a
                for j in 1..<i { a[j] = prev[j] + kr * prev[i - j] }
                a[i] = kr
                err *= 1 - kr * kr
                if err <= 0 { err = 1e-12; break }
            }
        }
        return (a, err)
    }

    /// `x` with its formants moved by `factor` (vocal-tract length perturbation), pitch and timing
    /// kept: per Hann frame of N = 256 samples (32 ms at 8 kHz; hop N/4), the frame's spectrum X(ω) is
    /// multiplied by E(ω/factor) / E(ω), where E = 1/|A| is the envelope of its order-12 linear
    /// predictor (ω/factor above Nyquist reads the envelope at Nyquist; the gain is limited to ±26 dB);
    /// the harmonics (pitch) and the phases stay where they were. Weighted overlap-add (Hann analysis
    /// and synthesis, normalized by Σ w²), and the clip's level kept.
    public static func formantWarped(_ x: [Float], factor: Double, frame N: Int = 256, order p: Int = 12) -> [Float] {
        let n = x.count, hop = N / 4
        guard n > N, N >= 8, factor > 0, factor != 1 else { return x }
        let plan = FFTPlan(size: N)
        var y = [Double](repeating: 0, count: n), norm = [Double](repeating: 0, count: n)
        let w = hann(N)
        var frame = [Double](repeating: 0, count: N)
        // e^{−iωj} for j = 0…p at every bin's ω and at its ω/factor (the same for every frame).
        let bins = N / 2 + 1
        func table(_ omega: (Int) -> Double) -> (cos: [Double], sin: [Double]) {
            var c = [Double](repeating: 0, count: bins * (p + 1)), s = c
            for m in 0..<bins { for j in 0...p { c[m * (p + 1) + j] = Double.cos(omega(m) * Double(j)); s[m * (p + 1) + j] = Double.sin(omega(m) * Double(j)) } }
            return (c, s)
        }
        let at = table { 2 * Double.pi * Double($0) / Double(N) }
        let warped = table { min(Double.pi, 2 * Double.pi * Double($0) / Double(N) / factor) }
        // |A(e^{iω})| of the frame's predictor at bin m of a table.
        func magnitude(_ a: [Double], _ t: (cos: [Double], sin: [Double]), _ m: Int) -> Double {
            var re = 0.0, im = 0.0
            for j in 0...p { re += a[j] * t.cos[m * (p + 1) + j]; im -= a[j] * t.sin[m * (p + 1) + j] }
            return (re * re + im * im).squareRoot()
        }
        var start = -3 * hop
        while start < n {
            for k in 0..<N { let j = start + k; frame[k] = j >= 0 && j < n ? Double(x[j]) * w[k] : 0 }
            let (a, _) = linearPredictor(frame, order: p)
            var re = frame, im = [Double](repeating: 0, count: N)
            plan.transform(&re, &im)
            for m in 0..<bins {
                let g = min(20, max(0.05, magnitude(a, at, m) / max(1e-9, magnitude(a, warped, m))))
                re[m] *= g; im[m] *= g
                if m > 0 && m < N / 2 { re[N - m] *= g; im[N - m] *= g }
            }
            plan.transform(&re, &im, inverse: true)
            for k in 0..<N {
                let j = start + k
                if j >= 0 && j < n { y[j] += re[k] / Double(N) * w[k]; norm[j] += w[k] * w[k] }
            }
            start += hop
        }
        var p0 = 0.0, p1 = 0.0
        for k in 0..<n { y[k] /= max(norm[k], 1e-6); p0 += Double(x[k]) * Double(x[k]); p1 += y[k] * y[k] }
        let g = p1 > 0 ? (p0 / p1).squareRoot() : 0
        return (0..<n).map { Float(y[$0] * g) }
    }

    /// `x` whispered: per 32 ms Hann frame (hop 16 ms; L_f = 256 at 8 kHz), the order-12 linear
    /// predictor A(z) of the frame (autocorrelation, Levinson–Durbin) and its prediction-error power
    /// σ²; white noise of power σ² through 1/A(z), windowed and overlap-added (periodic Hann at 50 %
    /// sums to one). The spectral envelope and level follow the original frame by frame; the pitch is gone.
    public static func whispered(_ x: [Float], _ r: inout SeededRandom, frame N: Int = 256, order p: Int = 12) -> [Float] {
        let n = x.count, hop = N / 2
        guard n > N else { return x }
        var y = [Double](repeating: 0, count: n + N)
        let w = hann(N)
        var frame = [Double](repeating: 0, count: N), e = [Double](repeating: 0, count: N)
        var start = -hop
        while start < n {
            for k in 0..<N { let j = start + k; frame[k] = j >= 0 && j < n ? Double(x[j]) * w[k] : 0 }
            let (a, err) = linearPredictor(frame, order: p)
            // Power of the windowed frame's residual per sample (the Hann window's mean square is 3/8).
            let sigma = (max(0, err) / (Double(N) * 0.375)).squareRoot()
            for k in 0..<N {
                var v = sigma * r.normal()
                for j in 1...p where k - j >= 0 { v -= a[j] * e[k - j] }
                e[k] = v
            }
            for k in 0..<N { let j = start + k; if j >= 0 && j < n { y[j] += e[k] * w[k] } }
            start += hop
        }
        // The clip's level kept (two overlapping windows of independent noise sum to less power).
        var p0 = 0.0, p1 = 0.0
        for k in 0..<n { p0 += Double(x[k]) * Double(x[k]); p1 += y[k] * y[k] }
        let g = p1 > 0 ? (p0 / p1).squareRoot() : 0
        return (0..<n).map { Float(y[$0] * g) }
    }

    /// The periodic Hann window of N samples (at a hop of N/2 copies sum to one).
    static func hann(_ N: Int) -> [Double] { (0..<N).map { 0.5 - 0.5 * Double.cos(2 * Double.pi * Double($0) / Double(N)) } }

    /// `x` played `factor` times as fast (> 1: shorter), pitch and formants kept: WSOLA (Verhelst &
    /// Roelands 1993). Output frame m (periodic Hann, N = 256 samples, 32 ms at 8 kHz; synthesis hop
    /// N/2, where the windows sum to one), centred at output sample c, is the input frame centred
    /// near c·factor, moved by at most N/4 to the position whose samples best continue (highest
    /// correlation) the previous frame's input — the pitch periods line up, so none is cut or
    /// doubled. The clip's level kept.
    public static func tempoChanged(_ x: [Float], factor: Double, frame N: Int = 256) -> [Float] {
        let n = x.count, hop = N / 2, search = N / 4
        guard n > N, N >= 8, factor > 0, factor != 1 else { return x }
        let out = Int((Double(n) / factor).rounded())
        let w = hann(N)
        func at(_ j: Int) -> Double { j >= 0 && j < n ? Double(x[j]) : 0 }
        // Frames start half a frame early, so that the first samples get two windows like the rest
        // (y holds output sample t at t + hop).
        var y = [Double](repeating: 0, count: out + 2 * N)
        var previous = 0   // input position of the last frame taken
        var m = 0
        while m * hop < out + hop {
            // Output frame m starts at (m − 1)·hop and is centred at m·hop (hop = N/2).
            let nominal = Int((Double(m * hop) * factor).rounded()) - hop
            var best = nominal
            if m > 0 {
                // The natural continuation of the previous frame: its input, one hop on.
                let next = previous + hop
                var bestScore = -Double.infinity
                for d in -search...search {
                    let p = nominal + d
                    var s = 0.0
                    for k in stride(from: 0, to: N, by: 2) { s += at(next + k) * at(p + k) * w[k] }
                    if s > bestScore { bestScore = s; best = p }
                }
            }
            for k in 0..<N { y[m * hop + k] += at(best + k) * w[k] }
            previous = best
            m += 1
        }
        var p0 = 0.0, p1 = 0.0
        for v in x { p0 += Double(v) * Double(v) }
        for k in 0..<out { p1 += y[hop + k] * y[hop + k] }
        let g = p1 > 0 ? (p0 / Double(n) / (p1 / Double(out))).squareRoot() : 0
        return (0..<out).map { Float(y[hop + $0] * g) }
    }

    /// Linear-interpolation resampling by `factor` (> 1: faster and higher, fewer samples).
    public static func resample(_ x: [Float], factor: Double) -> [Float] {
        guard factor > 0, x.count > 1 else { return x }
        let n = Int(Double(x.count) / factor)
        return (0..<n).map { i in
            let p = Double(i) * factor, j = Int(p), f = Float(p - Double(j))
            return j + 1 < x.count ? x[j] * (1 - f) + x[j + 1] * f : x[x.count - 1]
        }
    }
}
