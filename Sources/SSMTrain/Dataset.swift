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
    /// Speed (and with it pitch) changed by resampling by a factor uniform in 1 ± speed.
    public var speed = 0.0
    /// Random placement of the clip in the window (time shift); off: clips start at 0.
    public var shift = true
    /// Random spectral tilt, y_k = x_k − a·x_{k−1} with a uniform in ±tilt (a first-order shelf: a
    /// different microphone, room or voice brightness), the level kept.
    public var tilt = 0.0
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
        if var r = rng, augmentation.speed > 0 {
            samples = Windowing.resample(samples, factor: 1 + r.uniform(-augmentation.speed, augmentation.speed))
            rng = r
        }
        var x = [Float](repeating: 0, count: L)
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
            if a.gainDB > 0 {
                let g = Float(Double.pow(10, r.uniform(-a.gainDB, a.gainDB) / 20))
                for k in 0..<L { x[k] *= g }
            }
            if let snr = a.snrDB, r.uniform() < a.noiseProbability {
                var p = 0.0
                for k in 0..<L { p += Double(x[k]) * Double(x[k]) }
                p /= Double(L)
                var noise = [Float](repeating: 0, count: L)
                let src = self.noise.isEmpty ? [] : self.noise[Int(r.next() % UInt64(self.noise.count))]
                if !src.isEmpty {
                    let start = src.count > L ? Int(r.next() % UInt64(src.count - L)) : 0
                    for k in 0..<L { noise[k] = src[(start + k) % src.count] }
                } else {
                    for k in 0..<L { noise[k] = Float(r.normal()) }
                }
                var q = 0.0
                for v in noise { q += Double(v) * Double(v) }
                q /= Double(L)
                if p > 0 && q > 0 {
                    let s = Float((p / q / Double.pow(10, r.uniform(snr.lowerBound, snr.upperBound) / 10)).squareRoot())
                    for k in 0..<L { x[k] += s * noise[k] }
                }
            }
            rng = r
        }
        var steps: [Int32]? = nil
        if perStep {
            steps = Windowing.stepTargets(samples, offset: offset, length: L, label: clip.label, background: background,
                                          evidence: evidence, tail: tail)
        }
        return TrainingSequence(x: x.map { Scalar($0) }, label: clip.label, stepTargets: steps, target: target.map { $0.map { Scalar($0) } })
    }

    /// The span [start, end) of `samples` where its envelope (|x| smoothed over 10 ms at 8 kHz
    /// scale: 1/64 of the peak-hold) exceeds 10 % of its peak.
    public static func activeSpan(_ samples: [Float]) -> Range<Int> {
        var env = 0.0, peak = 0.0
        var e = [Double](repeating: 0, count: samples.count)
        for (i, v) in samples.enumerated() { env += (Double(abs(v)) - env) / 64; e[i] = env; peak = max(peak, env) }
        guard peak > 0 else { return 0..<0 }
        let th = 0.1 * peak
        let first = e.firstIndex { $0 >= th } ?? 0, last = e.lastIndex { $0 >= th } ?? samples.count - 1
        return first..<(last + 1)
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
        // must not commit to a guess early — the event detector would report it.
        for k in max(0, start)..<min(L, max(0, end + tail)) { t[k] = k < on ? bg : Int32(label) }
        return t
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
