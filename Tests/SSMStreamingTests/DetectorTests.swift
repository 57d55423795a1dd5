// EventDetector and Scoring against hand-worked sequences; StreamEngine's modes and groups against
// the model run directly.

import Foundation
import Testing
import SSM
import SSMStreaming

/// Runs one class's score sequence through a detector; returns (start, end) of each event.
func detect(_ scores: [Float], _ options: EventDetector.Options) -> [(Int, Int)] {
    let d = EventDetector(classes: 1, options: options)
    var out: [(Int, Int)] = []
    for (t, s) in scores.enumerated() {
        var v = s
        d.push(&v, at: t) { e in out.append((e.start, e.end)) }
    }
    d.finish(at: scores.count) { e in out.append((e.start, e.end)) }
    return out
}

@Suite("Event detector")
struct DetectorTests {
    @Test("onset at the threshold, end below the release; a dip inside the band does not split")
    func hysteresis() {
        let s: [Float] = [0, 0.6, 0.7, 0.45, 0.8, 0.3, 0, 0.5, 0.5, 0.39]
        let ev = detect(s, .init(onset: 0.5, release: 0.4))
        #expect(ev.map(\.0) == [1, 7] && ev.map(\.1) == [5, 9])
        // Without hysteresis (release = onset) the dip ends the first event.
        let strict = detect(s, .init(onset: 0.5, release: 0.5))
        #expect(strict.map(\.0) == [1, 4, 7] && strict.map(\.1) == [3, 5, 9])
    }

    @Test("min gap merges spans of one class; min duration drops short events")
    func gapAndDuration() {
        let s: [Float] = [1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0]
        #expect(detect(s, .init(onset: 0.5, release: 0.5)).map(\.0) == [0, 4, 11])
        let merged = detect(s, .init(onset: 0.5, release: 0.5, minGap: 3))
        #expect(merged.map(\.0) == [0, 11] && merged.map(\.1) == [7, 12])
        let long = detect(s, .init(onset: 0.5, release: 0.5, minDuration: 3))
        #expect(long.map(\.0) == [4] && long.map(\.1) == [7])
    }

    @Test("peak and mean over the active samples; ignored classes never fire; open events end at finish")
    func statistics() {
        let d = EventDetector(classes: 2, channel: 3, options: .init(onset: 0.5, release: 0.4, ignored: [1]))
        var events: [DetectedEvent] = []
        for (t, s) in ([0.6, 0.9, 0.6] as [Float]).enumerated() {
            var v: [Float] = [s, 1]
            d.push(&v, at: t) { events.append($0) }
        }
        #expect(events.isEmpty)
        d.finish(at: 3) { events.append($0) }
        try? #require(events.count == 1)
        #expect(events[0].classIndex == 0 && events[0].channel == 3 && events[0].start == 0 && events[0].end == 3)
        #expect(events[0].peak == 0.9 && abs(events[0].mean - 0.7) < 1e-6)
    }

    /// Three classes, 2 the background: class 0 leads for 3 samples, then class 1 for 4, with no
    /// background between them (a word whose scores wander), then background.
    static let wandering: [[Float]] = [[0, 0, 1], [0.7, 0.2, 0.1], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1],
                                       [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.85, 0.05], [0, 0, 1], [0, 0, 1]]

    static func events(_ scores: [[Float]], _ options: EventDetector.Options) -> [DetectedEvent] {
        let d = EventDetector(classes: scores[0].count, options: options)
        var events: [DetectedEvent] = []
        for (t, row) in scores.enumerated() {
            var v = row
            d.push(&v, at: t) { events.append($0) }
        }
        d.finish(at: scores.count) { events.append($0) }
        return events
    }

    @Test("exclusive grouping: one event over the span where any reported class is active, of the class with the most evidence")
    func exclusive() throws {
        let perClass = Self.events(Self.wandering, .init(onset: 0.5, release: 0.4, ignored: [2]))
        #expect(perClass.map(\.classIndex) == [0, 1] && perClass.map(\.start) == [1, 4])
        let one = Self.events(Self.wandering, .init(onset: 0.5, release: 0.4, ignored: [2], grouping: .exclusive))
        try #require(one.count == 1)
        // Evidence over samples 1–7: class 0 sums 2.8, class 1 3.55; the background (0.65) is never a
        // candidate, nor below where it has the most.
        #expect(one[0].classIndex == 1 && one[0].start == 1 && one[0].end == 8)
        #expect(one[0].peak == 0.85 && abs(one[0].mean - 3.55 / 7) < 1e-6)
        // Ignoring class 1 leaves class 0's span alone.
        let zero = Self.events(Self.wandering, .init(onset: 0.5, release: 0.4, ignored: [1, 2], grouping: .exclusive))
        #expect(zero.map(\.classIndex) == [0] && zero.map(\.start) == [1] && zero.map(\.end) == [4])
        // A background that wins the evidence is still not reported: the best reported class is.
        var loud = Self.wandering
        for t in 1...7 { loud[t][2] = 5 }
        #expect(Self.events(loud, .init(onset: 0.5, release: 0.4, ignored: [2], grouping: .exclusive)).map(\.classIndex) == [1])
        // min_gap and min_duration act on the one track as on each class's.
        var split = Self.wandering   // background at sample 3: class 0 over 1–2, class 1 over 4–7
        split[3] = [0.1, 0.1, 0.8]
        let two = Self.events(split, .init(onset: 0.5, release: 0.4, ignored: [2], grouping: .exclusive))
        #expect(two.map(\.classIndex) == [0, 1])
        // The second event's evidence starts afresh: class 1 over samples 4–7 only (2.95 / 4).
        #expect(two.count == 2 && abs(two[1].mean - 2.95 / 4) < 1e-6 && two[1].peak == 0.85)
        let merged = Self.events(split, .init(onset: 0.5, release: 0.4, minGap: 2, ignored: [2], grouping: .exclusive))
        #expect(merged.map(\.classIndex) == [1] && merged.map(\.start) == [1] && merged.map(\.end) == [8])
        // Merged across the gap, whose sample counts for nothing: class 1's 3.25 over 6 active samples.
        #expect(merged.count == 1 && abs(merged[0].mean - 3.25 / 6) < 1e-6)
        #expect(Self.events(split, .init(onset: 0.5, release: 0.4, minDuration: 3, ignored: [2], grouping: .exclusive)).map(\.classIndex) == [1])
    }

    @Test("the default grouping: exclusive for a softmax classifier with a class it does not report, per class otherwise; a given one wins")
    func defaultGrouping() throws {
        func grouping(_ scores: ModelSpec.Scores?, ignore: [String]?, _ given: EventDetector.Grouping? = nil) throws -> EventDetector.Grouping {
            var spec = ModelSpec(task: .classify, sampleRate: 100, dInput: 1, dModel: 1, dOutput: 3, encoder: false, decoder: true,
                                 blocks: [], labels: ["a", "b", "bg"], scores: scores)
            spec.events = ModelSpec.EventDefaults(ignore: ignore)
            return try EventSettings(grouping: given).resolve(model: spec, labels: ["a", "b", "bg"], rate: 100).grouping
        }
        #expect(try grouping(nil, ignore: ["bg"]) == .exclusive)
        #expect(try grouping(.softmax, ignore: ["bg"]) == .exclusive)
        #expect(try grouping(.softmax, ignore: nil) == .perClass)
        #expect(try grouping(.sigmoid, ignore: ["bg"]) == .perClass)
        #expect(try grouping(.identity, ignore: ["bg"]) == .perClass)
        #expect(try grouping(.softmax, ignore: ["bg"], .perClass) == .perClass)
        #expect(try grouping(.sigmoid, ignore: nil, .exclusive) == .exclusive)
        // Every class ignored, at a zero threshold (which the daemon's configuration allows): no event.
        #expect(Self.events(Self.wandering, .init(onset: 0, release: 0, ignored: [0, 1, 2], grouping: .exclusive)).isEmpty)
        // A user's --ignore makes a background as well as the model's.
        var spec = ModelSpec(task: .classify, sampleRate: 100, dInput: 1, dModel: 1, dOutput: 3, encoder: false, decoder: true,
                             blocks: [], labels: ["a", "b", "bg"])
        spec.events = nil
        #expect(try EventSettings(ignore: ["bg"]).resolve(model: spec, labels: ["a", "b", "bg"], rate: 100).grouping == .exclusive)
    }

    @Test("softmax sums to 1 and keeps the order; sigmoid is 1/(1+e^-x); both finite for large logits")
    func scoring() {
        var x: [Float] = [1, 2, 3, 1000]
        Scoring.apply(.softmax, &x, 4)
        #expect(abs(x.reduce(0, +) - 1) < 1e-6 && x[3] == 1 && x.allSatisfy(\.isFinite))
        var y: [Float] = [1, 2, 3]
        Scoring.apply(.softmax, &y, 3)
        let e = [1, 2, 3].map { exp(Double($0)) }
        for i in 0..<3 { #expect(abs(Double(y[i]) - e[i] / e.reduce(0, +)) < 1e-6) }
        var z: [Float] = [0, 2, -1000]
        Scoring.apply(.sigmoid, &z, 3)
        #expect(z[0] == 0.5 && abs(Double(z[1]) - 1 / (1 + exp(-2))) < 1e-6 && z[2] == 0)
    }
}

@Suite("Stream engine")
struct StreamEngineTests {
    static func model() throws -> Model {
        let layer = LayerSpec(family: .s5, dModel: 4, dState: 8)
        let spec = ModelSpec(sampleRate: 16000, dInput: 2, dModel: 4, dOutput: 3, encoder: true, decoder: true,
                             blocks: [BlockSpec(layer: layer, norm: .layer)])
        return try Model(spec: spec, tensors: Model.initialize(spec, seed: 7))
    }

    @Test("three groups of two channels, step and block: each group equals its own model run")
    func groups() throws {
        let m = try Self.model()
        let frames = 300, groups = 3
        var x = [Float](repeating: 0, count: frames * groups * 2)
        var g = SeededRandom(seed: 1)
        for i in x.indices { x[i] = Float(g.normal()) }
        for mode in StreamEngine.Mode.allCases {
            let engine = StreamEngine(model: m, groups: groups, mode: mode, maxFrames: 128)
            var y = [Float](repeating: 0, count: frames * groups * 3)
            var done = 0
            while done < frames {
                let n = min(128, frames - done)
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    engine.process(xp.baseAddress! + done * 6, yp.baseAddress! + done * 9, frames: n)
                } }
                done += n
            }
            for grp in 0..<groups {
                let state = m.makeState(maxBlock: 1)
                var maxErr: Float = 0
                for k in 0..<frames {
                    var u = [x[k * 6 + grp * 2], x[k * 6 + grp * 2 + 1]], out = [Float](repeating: 0, count: 3)
                    m.step(&u, &out, state: state)
                    for c in 0..<3 { maxErr = max(maxErr, abs(out[c] - y[k * 9 + grp * 3 + c])) }
                }
                #expect(maxErr < 1e-4, "\(mode) group \(grp): max |Δ| \(maxErr)")
            }
            #expect(engine.stateBytes == groups * m.makeState().stateBytes)
        }
    }
}
