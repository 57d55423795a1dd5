import SSMIO

/// The classifier end of a pipeline: model outputs → scores → one detector per stream → events,
/// written as JSON Lines (`ssm-stream run`) or handed to the daemon's reporters through a ring.
///
/// Shapes: `push` takes (frames, groups·classes) outputs, interleaved. Allocates nothing per call.
public final class Classifier {
    public enum Output {
        /// JSON Lines (and posteriors) straight to a writer.
        case writer(EventWriter)
        /// Into the daemon's event ring (never blocks; a full ring drops and counts).
        case ring(EventRing<DetectedEvent>)
    }

    public let output: Output
    /// Events emitted so far.
    public private(set) var events = 0
    private let detectors: [EventDetector]
    private let classes: Int
    private let scoring: ModelSpec.Scores
    public let posteriorsEvery: Int
    private let scratch: UnsafeMutablePointer<Float>

    public init(output: Output, options: EventDetector.Options, classes: Int, groups: Int,
                scores: ModelSpec.Scores, posteriorsEvery: Int = 0) {
        self.output = output; self.classes = classes; scoring = scores; self.posteriorsEvery = posteriorsEvery
        detectors = (0..<groups).map { EventDetector(classes: classes, channel: $0, options: options) }
        scratch = .allocate(capacity: classes)
    }

    deinit { scratch.deallocate() }

    @inline(__always)
    private func emit(_ e: DetectedEvent) throws(IOError) {
        events += 1
        switch output {
        case .writer(let w): try w.event(e)
        case .ring(let r): r.push(e)
        }
    }

    /// `frames` frames of outputs (frames, groups·classes), the first at model sample `t0`.
    public func push(_ y: UnsafePointer<Float>, frames: Int, at t0: Int) throws(IOError) {
        let stride = detectors.count * classes
        for k in 0..<frames {
            let t = t0 + k
            for (g, d) in detectors.enumerated() {
                scratch.update(from: y + k * stride + g * classes, count: classes)
                Scoring.apply(scoring, scratch, classes)
                if posteriorsEvery > 0 && t % posteriorsEvery == 0, case .writer(let w) = output {
                    try w.posteriors(at: t, channel: g, scratch)
                }
                try d.push(scratch, at: t) { (e: DetectedEvent) throws(IOError) in try self.emit(e) }
            }
        }
    }

    /// Ends the events still open at sample `t` and flushes.
    public func finish(at t: Int) throws(IOError) {
        for d in detectors { try d.finish(at: t) { (e: DetectedEvent) throws(IOError) in try self.emit(e) } }
        if case .writer(let w) = output { try w.flush() }
    }
}

import SSM
