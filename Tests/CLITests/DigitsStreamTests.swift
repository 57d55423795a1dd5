// The shipped spoken-digit classifier in a stream, as the quick start runs it: on
// examples/digits.wav (the ten digits by voices it never heard, with pauses; examples/digits.txt
// says when each is spoken), `ssm-stream run` and the daemon each report every digit once, with
// the right class, while or just after it is spoken, and nothing in the pauses.
//
// The model's scores wander between classes within a word (the start of "seven" scores "six", the
// end of "five" "nine"); its events are one per word because its classes exclude each other and
// the detector groups them so (`EventDetector.Grouping.exclusive`, the default for such a model).

import Foundation
import Testing
import SSM
import SSMIO

private let digitsModel = packageRoot.appendingPathComponent("models/digits.safetensors").path
private let digitsWAV = packageRoot.appendingPathComponent("examples/digits.wav").path

/// examples/digits.txt: one "start end digit" line per spoken digit (seconds).
private func spokenDigits() throws -> [(start: Double, end: Double, label: String)] {
    let text = try String(contentsOfFile: packageRoot.appendingPathComponent("examples/digits.txt").path, encoding: .utf8)
    return text.split(separator: "\n").map { line in
        let f = line.split(separator: " ")
        return (Double(f[0])!, Double(f[1])!, String(f[2]))
    }
}

/// Each event belongs to the word it overlaps (its span widened by the 0.25 s the classifier is
/// trained to hold a word's class after it ends); every word gets exactly one event, of its class.
private func expectOneEventPerDigit(_ events: [[String: Any]], _ who: String) throws {
    let words = try spokenDigits()
    #expect(words.count == 10 && Set(words.map(\.label)).count == 10, "digits.txt names the ten digits")
    var heard = [[String]](repeating: [], count: words.count)
    for e in events {
        let s = try #require(e["start"] as? Double), t = try #require(e["end"] as? Double)
        let label = try #require(e["class"] as? String)
        let w = words.firstIndex { s < $0.end + 0.25 && t > $0.start }
        guard let w else { Issue.record("\(who): \(label) at \(s)–\(t) s, in a pause"); continue }
        heard[w].append(label)
    }
    for (i, w) in words.enumerated() {
        #expect(heard[i] == [w.label], "\(who): \"\(w.label)\" at \(w.start)–\(w.end) s was heard as \(heard[i])")
    }
}

/// `ssm-stream run` of the shipped model on the shipped recording: its events.
private func runEvents() throws -> [[String: Any]] {
    try #require(FileManager.default.isExecutableFile(atPath: releaseCLI.path),
                 "no release build at \(releaseCLI.path): run ./test.sh, or swift build -c release --product ssm-stream")
    let r = try runCLI(["run", "-q", digitsModel, digitsWAV], executable: releaseCLI)
    expectExit(r, 0)
    return try jsonLines(r.stdout)
}

@Suite("the shipped digit classifier in a stream")
struct DigitsStreamTests {
    @Test("ssm-stream run: one event per spoken digit, of its class, at its time; none in the pauses")
    func run() throws {
        let events = try runEvents()
        #expect(!events.isEmpty)
        try expectOneEventPerDigit(events, "run")
    }

    @Test("ssm-streamd on the quick start's configuration: the same events, in its events file and on stderr")
    func daemon() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseDaemon.path),
                     "no release daemon at \(releaseDaemon.path): run ./test.sh, or swift build -c release --product ssm-streamd")
        let dir = TempDir()
        let demo = try String(contentsOfFile: packageRoot.appendingPathComponent("configs/digits-demo.toml").path, encoding: .utf8)
        // The quick start's file with its relative paths resolved, writing its events here.
        let cfg = try writeConfig(dir, demo
            .replacingOccurrences(of: "\"../", with: "\"\(packageRoot.path)/")
            .replacingOccurrences(of: "\(packageRoot.path)/digits-events.jsonl", with: dir.file("events.jsonl")))
        let d = try RunningDaemon(["-c", cfg], executable: releaseDaemon)
        let r = d.wait(timeout: 60)
        #expect(!r.timedOut && r.status == 0, "exit \(r.status): \(r.stderr)")
        let events = try jsonLines(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("events.jsonl")))))
        #expect(!events.isEmpty)
        try expectOneEventPerDigit(events, "ssm-streamd")
        for e in events {
            let label = try #require(e["class"] as? String)
            #expect(r.stderr.contains("\(label) on channel 0 from "), "the event is on stderr: \(r.stderr)")
        }
        // The same events as `ssm-stream run`.
        let same = try runEvents()
        #expect(same.map { $0["class"] as? String } == events.map { $0["class"] as? String })
        for (a, b) in zip(same, events) {
            #expect(abs((a["start"] as? Double ?? -1) - (b["start"] as? Double ?? 1)) < 0.01, "run \(a), daemon \(b)")
        }
    }
}
