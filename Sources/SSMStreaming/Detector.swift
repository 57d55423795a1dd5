import SSM

/// A detected event: a class above threshold over a span of samples [start, end) (with exclusive
/// grouping: any class above it, and the event's class the one with the most evidence over the span).
public struct DetectedEvent: Sendable, Equatable {
    public var classIndex: Int
    public var channel: Int
    /// First sample of the event and the sample after its last, in the detector's sample clock.
    public var start: Int
    public var end: Int
    /// Highest and mean score of the event's class over its active samples.
    public var peak: Float
    public var mean: Float
    public var duration: Int { end - start }
}

/// Turns a classifier's per-sample scores into events with hysteresis, one track per class
/// (`Grouping.perClass`) or one track for all of them (`Grouping.exclusive`, where a track's score
/// is the highest of the reported classes'):
///
///     idle ──score ≥ onset──► active ──score < release──► gap ──(min_gap samples pass)──► emit, idle
///                               ▲                          │
///                               └──────score ≥ onset───────┘  (the two spans merge into one event)
///
/// An event shorter than `minDuration` samples is dropped. Everything is allocated at init; `push`
/// allocates nothing.
public final class EventDetector {
    /// How classes become events.
    public enum Grouping: String, Sendable, CaseIterable {
        /// Each class its own track: events of different classes may overlap (independent labels).
        case perClass = "per-class"
        /// Classes that exclude each other share one track: an event spans the samples where any
        /// reported class is active, and its class is the one with the most evidence (the largest
        /// sum of scores) over those samples. A word whose scores wander between classes is one
        /// event, not several; two words with no pause between them are one event too.
        case exclusive
    }

    public struct Options: Sendable {
        /// Score at which an event starts.
        public var onset: Float
        /// Score below which it ends (≤ onset: the hysteresis band).
        public var release: Float
        /// Events shorter than this many samples are dropped.
        public var minDuration: Int
        /// Gaps shorter than this many samples between two spans of one track merge them.
        public var minGap: Int
        /// Classes never reported (e.g. a background class).
        public var ignored: Set<Int>
        public var grouping: Grouping
        public init(onset: Float = 0.5, release: Float = 0.4, minDuration: Int = 0, minGap: Int = 0, ignored: Set<Int> = [],
                    grouping: Grouping = .perClass) {
            self.onset = onset; self.release = release; self.minDuration = minDuration
            self.minGap = minGap; self.ignored = ignored; self.grouping = grouping
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
    /// One track per class (per-class grouping) or one in all (exclusive).
    private var tracks: [Track]
    private let reported: [Bool]
    /// Exclusive grouping: each class's sum and peak of scores over the open event's active samples.
    private var evidence: [Double]
    private var peaks: [Float]

    public init(classes: Int, channel: Int = 0, options: Options) {
        self.classes = classes; self.channel = channel; self.options = options
        tracks = [Track](repeating: Track(), count: options.grouping == .exclusive ? 1 : classes)
        reported = (0..<classes).map { !options.ignored.contains($0) }
        evidence = [Double](repeating: 0, count: classes)
        peaks = [Float](repeating: 0, count: classes)
    }

    /// Feeds the scores (`classes` floats) of sample `t`; `emit` receives every event that ends.
    @inline(__always)
    public func push<E: Error>(_ scores: UnsafePointer<Float>, at t: Int, _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        switch options.grouping {
        case .perClass:
            for c in 0..<classes where reported[c] { try advance(c, scores[c], scores, at: t, emit) }
        case .exclusive:
            var s = -Float.infinity
            for c in 0..<classes where reported[c] { s = max(s, scores[c]) }
            try advance(0, s, scores, at: t, emit)
        }
    }

    /// Ends every open event at sample `t` (the end of the stream).
    public func finish<E: Error>(at t: Int, _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        for k in tracks.indices where tracks[k].phase != .idle {
            if tracks[k].phase == .active { tracks[k].end = t }
            try close(k, emit)
        }
    }

    /// Track k's state machine (the diagram above) at sample t, whose track score is s.
    @inline(__always)
    private func advance<E: Error>(_ k: Int, _ s: Float, _ scores: UnsafePointer<Float>, at t: Int,
                                   _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        switch tracks[k].phase {
        case .idle:
            if s >= options.onset {
                tracks[k] = Track(phase: .active, start: t, end: t + 1)
                if options.grouping == .exclusive { for c in 0..<classes { evidence[c] = 0; peaks[c] = 0 } }
                accumulate(k, s, scores)
            }
        case .active:
            if s >= options.release { accumulate(k, s, scores) } else { tracks[k].phase = .gap; tracks[k].end = t }
        case .gap:
            if s >= options.onset {
                tracks[k].phase = .active; accumulate(k, s, scores)
            } else if t - tracks[k].end >= options.minGap {
                try close(k, emit)
            }
        }
        // A gap of zero length closes at once (no merging asked for).
        if tracks[k].phase == .gap && options.minGap == 0 { try close(k, emit) }
    }

    @inline(__always)
    private func accumulate(_ k: Int, _ s: Float, _ scores: UnsafePointer<Float>) {
        tracks[k].peak = max(tracks[k].peak, s)
        tracks[k].sum += Double(s)
        tracks[k].count += 1
        if options.grouping == .exclusive {
            for c in 0..<classes { evidence[c] += Double(scores[c]); peaks[c] = max(peaks[c], scores[c]) }
        }
    }

    private func close<E: Error>(_ k: Int, _ emit: (DetectedEvent) throws(E) -> Void) throws(E) {
        let tr = tracks[k]
        tracks[k].phase = .idle
        guard tr.end - tr.start >= max(1, options.minDuration) else { return }
        var c = k, peak = tr.peak, sum = tr.sum
        if options.grouping == .exclusive {
            c = -1
            for j in 0..<classes where reported[j] && (c < 0 || evidence[j] > evidence[c]) { c = j }
            guard c >= 0 else { return }   // no class reported (an event cannot open then)
            peak = peaks[c]; sum = evidence[c]
        }
        try emit(DetectedEvent(classIndex: c, channel: channel, start: tr.start, end: tr.end,
                               peak: peak, mean: Float(sum / Double(max(tr.count, 1)))))
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
    public var grouping: EventDetector.Grouping?
    public init(threshold: Float? = nil, release: Float? = nil, minDuration: Double? = nil, minGap: Double? = nil, ignore: [String] = [],
                grouping: EventDetector.Grouping? = nil) {
        self.threshold = threshold; self.release = release; self.minDuration = minDuration; self.minGap = minGap; self.ignore = ignore
        self.grouping = grouping
    }

    /// The built-in defaults: onset 0.5, release 0.1 below the onset, no minimum duration or gap;
    /// exclusive grouping for a softmax classifier with a class it does not report (its classes
    /// exclude each other and a background class separates their events), per class otherwise.
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
        let exclusive = spec.scoring == .softmax && !ignored.isEmpty
        return EventDetector.Options(onset: onset, release: min(rel, onset),
                                     minDuration: Int(((minDuration ?? m?.minDuration ?? 0) * Double(rate)).rounded()),
                                     minGap: Int(((minGap ?? m?.minGap ?? 0) * Double(rate)).rounded()), ignored: ignored,
                                     grouping: grouping ?? (exclusive ? .exclusive : .perClass))
    }
}
