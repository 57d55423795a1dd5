import SSM

/// A detected event: one class above threshold over a span of samples [start, end).
public struct DetectedEvent: Sendable, Equatable {
    public var classIndex: Int
    public var channel: Int
    /// First sample of the event and the sample after its last, in the detector's sample clock.
    public var start: Int
    public var end: Int
    /// Highest and mean score over the samples the class was active.
    public var peak: Float
    public var mean: Float
    public var duration: Int { end - start }
}

/// Turns a classifier's per-sample scores into events, per class, with hysteresis:
///
///     idle ──score ≥ onset──► active ──score < release──► gap ──(min_gap samples pass)──► emit, idle
///                               ▲                          │
///                               └──────score ≥ onset───────┘  (the two spans merge into one event)
///
/// An event shorter than `minDuration` samples is dropped. Everything is allocated at init; `push`
/// allocates nothing.
public final class EventDetector {
    public struct Options: Sendable {
        /// Score at which an event starts.
        public var onset: Float
        /// Score below which it ends (≤ onset: the hysteresis band).
        public var release: Float
        /// Events shorter than this many samples are dropped.
        public var minDuration: Int
        /// Gaps shorter than this many samples between two spans of one class merge them.
        public var minGap: Int
        /// Classes never reported (e.g. a background class).
        public var ignored: Set<Int>
        public init(onset: Float = 0.5, release: Float = 0.4, minDuration: Int = 0, minGap: Int = 0, ignored: Set<Int> = []) {
            self.onset = onset; self.release = release; self.minDuration = minDuration
            self.minGap = minGap; self.ignored = ignored
        }
    }

    private enum Phase { case idle, active, gap }
    private struct Track {
        var phase = Phase.idle
        var start = 0, end = 0
        var peak: Float = 0, sum: Double = 0, count = 0
    }

    public let classes: Int
    public let channel: Int
    public let options: Options
    private var tracks: [Track]
    private let reported: [Bool]

    public init(classes: Int, channel: Int = 0, options: Options) {
        self.classes = classes; self.channel = channel; self.options = options
        tracks = [Track](repeating: Track(), count: classes)
        reported = (0..<classes).map { !options.ignored.contains($0) }
    }

    /// Feeds the scores (`classes` floats) of sample `t`; `emit` receives every event that ends.
    @inline(__always)
    public func push<E: Error>(_ scores: UnsafePointer<Float>, at t: Int, _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        for c in 0..<classes where reported[c] {
            let s = scores[c]
            switch tracks[c].phase {
            case .idle:
                if s >= options.onset { open(c, at: t, s) }
            case .active:
                if s >= options.release { accumulate(c, s) } else { tracks[c].phase = .gap; tracks[c].end = t }
            case .gap:
                if s >= options.onset {
                    tracks[c].phase = .active; accumulate(c, s)
                } else if t - tracks[c].end >= options.minGap {
                    try close(c, emit)
                }
            }
            // A gap of zero length closes at once (no merging asked for).
            if tracks[c].phase == .gap && options.minGap == 0 { try close(c, emit) }
        }
    }

    /// Ends every open event at sample `t` (the end of the stream).
    public func finish<E: Error>(at t: Int, _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        for c in 0..<classes where tracks[c].phase != .idle {
            if tracks[c].phase == .active { tracks[c].end = t }
            try close(c, emit)
        }
    }

    private func open(_ c: Int, at t: Int, _ s: Float) {
        tracks[c] = Track(phase: .active, start: t, end: t + 1, peak: s, sum: Double(s), count: 1)
    }

    private func accumulate(_ c: Int, _ s: Float) {
        tracks[c].peak = max(tracks[c].peak, s)
        tracks[c].sum += Double(s)
        tracks[c].count += 1
    }

    private func close<E: Error>(_ c: Int, _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        let tr = tracks[c]
        tracks[c].phase = .idle
        guard tr.end - tr.start >= max(1, options.minDuration) else { return }
        try emit(DetectedEvent(classIndex: c, channel: channel, start: tr.start, end: tr.end,
                               peak: tr.peak, mean: Float(tr.sum / Double(max(tr.count, 1)))))
    }
}

/// Scores from a classifier's outputs (logits): what `ModelSpec.scores` names.
public enum Scoring {
    /// In place over `n` values: softmax (mutually exclusive classes), sigmoid (independent
    /// labels) or identity (the model already outputs probabilities).
    @inline(__always)
    public static func apply(_ f: ModelSpec.Scores, _ x: UnsafeMutablePointer<Float>, _ n: Int) {
        switch f {
        case .identity: return
        case .sigmoid:
            for i in 0..<n { x[i] = 1 / (1 + _expf(-x[i])) }
        case .softmax:
            var m = -Float.infinity
            for i in 0..<n { m = max(m, x[i]) }
            var sum: Float = 0
            for i in 0..<n { x[i] = _expf(x[i] - m); sum += x[i] }
            let inv = 1 / sum
            for i in 0..<n { x[i] *= inv }
        }
    }

    @inline(__always) static func _expf(_ x: Float) -> Float { expf(x) }
}

#if canImport(Glibc)
import Glibc
#endif

/// Event settings as a user gave them (nil: not given). `resolve` puts them over the model's own
/// suggestions (`ModelSpec.events`) over the built-in defaults — the one place `run` and the
/// daemon both take their detector options from.
public struct EventSettings: Sendable, Equatable {
    public var threshold: Float?
    public var release: Float?
    public var minDuration: Double?
    public var minGap: Double?
    /// Added to the model's ignored classes.
    public var ignore: [String] = []
    public init(threshold: Float? = nil, release: Float? = nil, minDuration: Double? = nil, minGap: Double? = nil, ignore: [String] = []) {
        self.threshold = threshold; self.release = release; self.minDuration = minDuration; self.minGap = minGap; self.ignore = ignore
    }

    /// The built-in defaults: onset 0.5, release 0.1 below the onset, no minimum duration or gap.
    public static let defaultThreshold: Float = 0.5

    /// The detector options for a model with `labels` at `rate` Hz; throws a message naming an
    /// unknown class.
    public func resolve(model spec: ModelSpec, labels: [String], rate: Int) throws(ModelError) -> EventDetector.Options {
        let m = spec.events
        let onset = threshold ?? m?.threshold ?? Self.defaultThreshold
        let rel = release ?? (threshold == nil ? m?.release : nil) ?? max(0, onset - 0.1)
        var ignored = Set<Int>()
        for name in (m?.ignore ?? []) + ignore {
            guard let i = labels.firstIndex(of: name) else {
                throw ModelError("ignore: the model has no class '\(name)' (classes: \(labels.joined(separator: ", ")))")
            }
            ignored.insert(i)
        }
        return EventDetector.Options(onset: onset, release: min(rel, onset),
                                     minDuration: Int(((minDuration ?? m?.minDuration ?? 0) * Double(rate)).rounded()),
                                     minGap: Int(((minGap ?? m?.minGap ?? 0) * Double(rate)).rounded()), ignored: ignored)
    }
}
