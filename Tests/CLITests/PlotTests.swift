// `ssm-stream plot`: the SVG parses as XML and holds what it says (panels, curves, pole marks,
// event labels); --csv holds the same numbers the library computes (checked against scipy in
// SSMTests/ResponseTests); a model that is not linear, a bad output name and a bad events file
// are refused with their exit codes.

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// Counts the elements of an SVG by name (nil if it does not parse).
private func svgElements(_ path: String) -> [String: Int]? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    final class Counter: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var texts: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            counts[name, default: 0] += 1
        }
    }
    let parser = XMLParser(data: data)
    let counter = Counter()
    parser.delegate = counter
    return parser.parse() ? counter.counts : nil
}

@Suite("ssm-stream plot")
struct PlotTests {
    @Test("a filter: the SVG parses (2 panels of curves, the pole-zero map with 8 poles), --csv has magnitude, phase and group delay at every point and the poles and zeros")
    func filter() throws {
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        let r = try runCLI(["plot", model, "-o", dir.file("lp.svg"), "--csv", dir.file("lp.csv"), "--points", "100"])
        expectExit(r, 0)
        let counts = try #require(svgElements(dir.file("lp.svg")), "the SVG does not parse")
        #expect(counts["svg"] == 1 && counts["polyline"] == 2, "\(counts)")
        let svg = try String(contentsOfFile: dir.file("lp.svg"), encoding: .utf8)
        #expect(svg.contains("magnitude (dB)") && svg.contains("phase (degrees, unwrapped)") && svg.contains("poles ×, zeros ○"))
        let rows = try String(contentsOfFile: dir.file("lp.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        func series(_ s: String) -> [(Double, Double)] {
            rows.filter { $0.hasPrefix(s + ",") }.map { $0.split(separator: ",") }.map { (Double($0[2])!, Double($0[3])!) }
        }
        let mag = series("magnitude_db"), gd = series("group_delay_samples")
        #expect(mag.count == 100 && series("phase_rad").count == 100 && gd.count == 100)
        #expect(series("pole").count == 8 && series("zero").count == 8)
        // The 1 kHz cutoff: −3 dB between the points around it; 0 dB well below it.
        let below = try #require(mag.last { $0.0 < 1000 }), above = try #require(mag.first { $0.0 > 1000 })
        #expect(below.1 > -3.1 && above.1 < -2.9, "\(below) \(above)")
        #expect(abs(mag[0].1) < 1e-3)
        // Log-spaced from rate/2000 to Nyquist.
        #expect(abs(mag[0].0 - 8) < 1e-9 && abs(mag.last!.0 - 8000) < 1e-6)

        let g = try runCLI(["plot", model, "-o", dir.file("gd.svg"), "--group-delay"])
        expectExit(g, 0)
        #expect(try String(contentsOfFile: dir.file("gd.svg"), encoding: .utf8).contains("group delay (ms)"))
    }

    @Test("an odd-order design: its real pole counts once (3 poles, not a double one with a false zero on it), its 3 zeros at z = −1")
    func realPole() throws {
        let dir = TempDir()
        expectExit(try runCLI(["design", "butterworth", "lowpass", "--order", "3", "--cutoff", "1000", "--rate", "16000",
                               "-o", dir.file("lp3.safetensors"), "-q"]), 0)
        expectExit(try runCLI(["plot", dir.file("lp3.safetensors"), "-o", dir.file("lp3.svg"), "--csv", dir.file("lp3.csv")]), 0)
        let rows = try String(contentsOfFile: dir.file("lp3.csv"), encoding: .utf8).split(separator: "\n")
        func points(_ s: String) -> [(Double, Double)] {
            rows.filter { $0.hasPrefix(s + ",") }.map { $0.split(separator: ",") }.map { (Double($0[2])!, Double($0[3])!) }
        }
        let poles = points("pole"), zeros = points("zero")
        #expect(poles.count == 3 && zeros.count == 3, "\(poles) \(zeros)")
        // A triple root moves by about ε^(1/3) under the float32 weights' rounding, amplified by
        // the cancellation in the numerator's coefficients (2 % here).
        for z in zeros { #expect(abs(z.0 + 1) < 0.05 && abs(z.1) < 0.05, "\(zeros)") }
        for p in poles { for z in zeros { #expect(abs(p.0 - z.0) + abs(p.1 - z.1) > 0.1, "a zero on a pole: \(p)") } }
    }

    @Test("events over a recording: waveform, labelled spans, score curves with --posteriors; the CSV has the events")
    func events() throws {
        let dir = TempDir()
        let model = packageRoot.appendingPathComponent("models/digits.safetensors").path
        let audio = packageRoot.appendingPathComponent("examples/digits.wav").path
        expectExit(try runCLI(["run", "-q", model, audio, dir.file("ev.jsonl"), "--posteriors", "400"]), 0)
        let r = try runCLI(["plot", "--events", dir.file("ev.jsonl"), audio, "-o", dir.file("ev.svg"), "--csv", dir.file("ev.csv")])
        expectExit(r, 0)
        let counts = try #require(svgElements(dir.file("ev.svg")), "the SVG does not parse")
        let events = try String(contentsOfFile: dir.file("ev.jsonl"), encoding: .utf8).split(separator: "\n").filter { $0.contains("\"type\":\"event\"") }
        #expect(!events.isEmpty)
        // One shaded span (a rect with a title) per event, one score curve per class.
        let svg = try String(contentsOfFile: dir.file("ev.svg"), encoding: .utf8)
        #expect(svg.components(separatedBy: "fill-opacity=\"0.18\"").count - 1 == events.count)
        #expect(counts["polyline"] == 11, "11 classes: \(counts)")
        for label in ["one", "zero", "nine"] { #expect(svg.contains(">\(label)</text>")) }
        let csv = try String(contentsOfFile: dir.file("ev.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").filter { $0.hasPrefix("event:") }.count == events.count)
    }

    @Test("refusals: a model that is not linear (65), a picture not named .svg (64), an events file that is not JSON Lines (65), a missing model (67)")
    func refusals() throws {
        let dir = TempDir()
        let digits = packageRoot.appendingPathComponent("models/digits.safetensors").path
        let nl = try runCLI(["plot", digits, "-o", dir.file("x.svg")])
        expectExit(nl, 65)
        #expect(nl.stderr.contains("not linear time-invariant"), "\(nl.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("x.svg")))
        expectExit(try runCLI(["plot", digits, "-o", dir.file("x.png")]), 64)
        try "not json\n".write(toFile: dir.file("bad.jsonl"), atomically: true, encoding: .utf8)
        let bad = try runCLI(["plot", "--events", dir.file("bad.jsonl"), noisyTonePath, "-o", dir.file("y.svg")])
        expectExit(bad, 65)
        #expect(bad.stderr.contains("line 1: not a JSON object"), "\(bad.stderr)")
        expectExit(try runCLI(["plot", dir.file("missing.safetensors"), "-o", dir.file("z.svg")]), 67)
    }
}
