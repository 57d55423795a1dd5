import ArgumentParser
import ComplexModule
import Foundation
import RealModule
import SSM
import SSMIO

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a filter's response and poles, or a stream's events, as a standalone SVG.",
        discussion: """
        For a linear filter model (what `design` makes): the magnitude in dB and the phase (or \
        with --group-delay the group delay) against frequency on a log axis up to the Nyquist \
        frequency, measured on the model's own streaming step as scipy's freqz and group_delay \
        compute them, and for each time-invariant layer its poles (the eigenvalues of Ā, with the \
        unit circle) and, for a one-channel layer, its zeros. A model that is not linear \
        (activations, gates, selective layers) has no frequency response: exit 65.

        With --events: the audio's waveform (min/max envelope), the events as labelled spans, \
        and, when the JSON Lines hold posteriors (`run --posteriors N`), the score curves.

        --csv writes the same data in long form (series,channel,x,y) for plotting elsewhere.
        The SVG opens in any browser.

        Examples:
          ssm-stream plot models/butter8-lowpass-1k.safetensors -o lowpass.svg
          ssm-stream plot lp.safetensors -o lp.svg --group-delay --csv lp.csv
          ssm-stream run -q m.safetensors in.wav ev.jsonl --posteriors 400
          ssm-stream plot --events ev.jsonl in.wav -o events.svg
        """)

    @Argument(help: "Model file (or, with --events, the audio file the events were found in).")
    var input: String

    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output: String

    @Option(help: ArgumentHelp("Events (JSON Lines from `run` or the daemon's events file) to draw over INPUT's waveform.", valueName: "events.jsonl"))
    var events: String?

    @Flag(help: "Draw the group delay instead of the phase.")
    var groupDelay = false

    @Option(help: "Frequencies to evaluate (log-spaced).")
    var points = 512

    @Option(help: ArgumentHelp("Also write the data as CSV (series,channel,x,y).", valueName: "file.csv"))
    var csv: String?

    func validate() throws {
        guard output.lowercased().hasSuffix(".svg") else { throw ValidationError("-o '\(output)': the picture is an SVG file (name it .svg)") }
        guard (8...100_000).contains(points) else { throw ValidationError("--points \(points): between 8 and 100000") }
        if events != nil && groupDelay { throw ValidationError("--group-delay is for a filter model's response, not for --events") }
    }

    func run() throws {
        var chart = Chart()
        var data = CSVData()
        if let events { try drawEvents(events, &chart, &data) } else { try drawModel(&chart, &data) }
        do {
            try chart.svg.write(toFile: output, atomically: true, encoding: .utf8)
            if let csv { try data.text.write(toFile: csv, atomically: true, encoding: .utf8) }
        } catch {
            warn("ssm-stream plot: cannot write '\(csv ?? output)': \(error.localizedDescription)")
            throw ExitCode(ExitStatus.cantCreate)
        }
    }

    // MARK: A filter model

    private func drawModel(_ chart: inout Chart, _ data: inout CSVData) throws {
        let m: Model
        do { m = try ModelFile.load(path: input) } catch {
            warn("ssm-stream plot: \(error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        let r: FrequencyResponse
        do { r = try m.frequencyResponse(points: points) } catch {
            warn("ssm-stream plot: model '\(input)': \(error)")
            throw ExitCode(ExitStatus.dataError)
        }
        let outputs = min(r.magnitudeDB.count, Chart.colors.count)
        let rate = Double(r.sampleRate)
        let fRange = (r.frequencies.first!, rate / 2)
        chart.title("\(URL(fileURLWithPath: input).lastPathComponent): \(m.spec.description ?? "\(m.spec.task.rawValue) model") — \(Int(rate)) Hz")
        // Magnitude: from its peak down 120 dB at most.
        let peak = r.magnitudeDB.prefix(outputs).flatMap { $0 }.filter(\.isFinite).max() ?? 0
        let floor = max(r.magnitudeDB.prefix(outputs).flatMap { $0 }.filter(\.isFinite).min() ?? -120, peak - 120)
        var p = chart.panel(height: 300, x: .log(fRange.0, fRange.1), y: (floor - 3, peak + 3),
                            xLabel: "frequency (Hz)", yLabel: "magnitude (dB)")
        for o in 0..<outputs { chart.curve(p, zip(r.frequencies, r.magnitudeDB[o]).map { ($0, max($1, floor - 3)) }, color: o) }
        let second = groupDelay ? r.groupDelay.map { $0.map { $0 / rate * 1000 } } : r.phase.map { $0.map { $0 * 180 / .pi } }
        let all = second.prefix(outputs).flatMap { $0 }.filter(\.isFinite)
        p = chart.panel(height: 220, x: .log(fRange.0, fRange.1), y: (all.min() ?? 0, all.max() ?? 1),
                        xLabel: "frequency (Hz)", yLabel: groupDelay ? "group delay (ms)" : "phase (degrees, unwrapped)")
        for o in 0..<outputs { chart.curve(p, Array(zip(r.frequencies, second[o])), color: o) }
        if r.magnitudeDB.count > outputs { chart.note("showing the first \(outputs) of \(r.magnitudeDB.count) output channels") }
        for o in 0..<r.magnitudeDB.count {
            for (i, f) in r.frequencies.enumerated() {
                data.add("magnitude_db", o, f, r.magnitudeDB[o][i])
                data.add("phase_rad", o, f, r.phase[o][i])
                data.add("group_delay_samples", o, f, r.groupDelay[o][i])
            }
        }
        // Poles (and zeros) per time-invariant layer.
        let pz = m.layerPolesZeros
        var maps: [(String, [Complex<Double>], [Complex<Double>])] = []
        for (b, eig) in m.layerEigenvalues.enumerated() where !eig.isEmpty {
            if let z = pz[b] {
                maps.append(("block \(b) (\(m.spec.allBlocks[b].layer.family.rawValue))", z.poles, z.zeros))
            } else {
                // Each complex Λ̄ stands for its conjugate pair (the output is real); a real one for itself.
                maps.append(("block \(b) (\(m.spec.allBlocks[b].layer.family.rawValue))", eig + eig.filter { $0.imaginary != 0 }.map(\.conjugate), []))
            }
        }
        chart.poleZeroRow(maps)
        for (b, (_, poles, zeros)) in maps.enumerated() {
            for q in poles { data.add("pole", b, q.real, q.imaginary) }
            for q in zeros { data.add("zero", b, q.real, q.imaginary) }
        }
    }

    // MARK: Events over a recording

    private func drawEvents(_ path: String, _ chart: inout Chart, _ data: inout CSVData) throws {
        let reader: AudioReader
        do { reader = try AudioReader(path: input) } catch {
            warn("ssm-stream plot: \(error.message)")
            throw ExitCode(error.kind == .noInput ? ExitStatus.noInput : ExitStatus.dataError)
        }
        let ch = reader.format.channels, rate = Double(reader.format.sampleRate)
        var mono: [Float] = []
        var buf = [Float](repeating: 0, count: 4096 * ch)
        while true {
            let n: Int
            do { n = try buf.withUnsafeMutableBufferPointer { (p) throws(IOError) in try reader.read(into: p.baseAddress!, frames: 4096) } } catch {
                warn("ssm-stream plot: \(error.message)"); throw ExitCode(ExitStatus.dataError)
            }
            if n == 0 { break }
            for k in 0..<n { mono.append(buf[k * ch]) }
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            warn("ssm-stream plot: cannot read events '\(path)'")
            throw ExitCode(ExitStatus.noInput)
        }
        var spans: [(label: String, start: Double, end: Double)] = []
        var scores: [String: [(Double, Double)]] = [:]
        for (i, line) in text.split(separator: "\n").enumerated() where !line.isEmpty {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                warn("ssm-stream plot: '\(path)', line \(i + 1): not a JSON object")
                throw ExitCode(ExitStatus.dataError)
            }
            switch o["type"] as? String {
            case "event":
                guard let c = o["class"] as? String, let s = o["start"] as? Double, let e = o["end"] as? Double else {
                    warn("ssm-stream plot: '\(path)', line \(i + 1): an event needs class, start and end")
                    throw ExitCode(ExitStatus.dataError)
                }
                spans.append((c, s, e))
            case "posteriors":
                if let t = o["time"] as? Double, let sc = o["scores"] as? [String: Any] {
                    for (c, v) in sc { if let v = v as? Double { scores[c, default: []].append((t, v)) } }
                }
            default: continue
            }
        }
        let seconds = max(Double(mono.count) / rate, spans.map(\.end).max() ?? 0, 1e-3)
        chart.title("\(URL(fileURLWithPath: input).lastPathComponent): \(spans.count) event(s) from \(URL(fileURLWithPath: path).lastPathComponent)")
        let peak = Double(mono.map { abs($0) }.max() ?? 1)
        let p = chart.panel(height: 260, x: .linear(0, seconds), y: (-max(peak, 1e-6), max(peak, 1e-6)),
                            xLabel: "time (s)", yLabel: "amplitude")
        let labels = Array(Set(spans.map(\.label)).union(scores.keys)).sorted()
        // Labels of neighbouring events on alternate rows, so that they do not overprint.
        for (i, s) in spans.sorted(by: { $0.start < $1.start }).enumerated() {
            chart.span(p, s.start, s.end, label: s.label, color: labels.firstIndex(of: s.label) ?? 0, row: i % 2)
        }
        let envelope = chart.envelope(p, mono, rate: rate)
        for (t, lo, hi) in envelope { data.add("envelope_min", 0, t, lo); data.add("envelope_max", 0, t, hi) }
        for s in spans { data.add("event:" + s.label, 0, s.start, s.end) }
        if !scores.isEmpty {
            let q = chart.panel(height: 200, x: .linear(0, seconds), y: (0, 1), xLabel: "time (s)", yLabel: "score")
            for (row, (c, pts)) in scores.sorted(by: { $0.key < $1.key }).enumerated() {
                chart.curve(q, pts.sorted { $0.0 < $1.0 }, color: labels.firstIndex(of: c) ?? 0, legend: c, row: row)
                for (t, v) in pts { data.add("posterior:" + c, 0, t, v) }
            }
        }
    }
}

/// The CSV beside the picture: long form, one value per row.
struct CSVData {
    private(set) var text = "series,channel,x,y\n"
    mutating func add(_ series: String, _ channel: Int, _ x: Double, _ y: Double) {
        let quote = series.contains(",") || series.contains("\"") || series.contains("\n") || series.contains("\r")
        let name = quote ? "\"" + series.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : series
        text += "\(name),\(channel),\(x),\(y)\n"
    }
}

/// A standalone SVG of stacked panels: no dependency, readable by any browser.
struct Chart {
    enum Axis { case linear(Double, Double), log(Double, Double) }
    struct Panel { var x0, y0, w, h: Double; var x: Axis; var y: (Double, Double) }

    static let width = 900.0, left = 80.0, right = 30.0
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
                         "#7f7f7f", "#bcbd22", "#393b79", "#ad494a"]
    private var body = ""
    private var height = 20.0

    var svg: String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(height + 10))" viewBox="0 0 \(Int(Self.width)) \(Int(height + 10))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        \(body)</svg>

        """
    }

    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            // XML 1.0 has no place for control characters (even escaped): a label's are dropped.
            if let a = c.asciiValue, a < 0x20, a != 0x09, a != 0x0A, a != 0x0D { continue }
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }

    static func n(_ v: Double) -> String { v.isFinite ? String(format: "%.2f", v) : "0" }

    /// A bold title, wrapped at about 90 characters.
    mutating func title(_ s: String) {
        var lines: [String] = [], line = ""
        for word in s.split(separator: " ") {
            if line.count + word.count + 1 > 90 && !line.isEmpty { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        lines.append(line)
        for l in lines {
            body += "<text x=\"\(Self.n(Self.left))\" y=\"\(Self.n(height + 14))\" font-size=\"14\" font-weight=\"bold\">\(Self.escape(l))</text>\n"
            height += 18
        }
        height += 12
    }

    mutating func note(_ s: String) {
        body += "<text x=\"\(Self.n(Self.left))\" y=\"\(Self.n(height + 12))\" fill=\"#555\">\(Self.escape(s))</text>\n"
        height += 20
    }

    private func px(_ p: Panel, _ x: Double) -> Double {
        switch p.x {
        case .linear(let a, let b): return p.x0 + (x - a) / max(b - a, 1e-300) * p.w
        case .log(let a, let b): return p.x0 + (Double.log10(max(x, a)) - Double.log10(a)) / max(Double.log10(b) - Double.log10(a), 1e-300) * p.w
        }
    }

    private func py(_ p: Panel, _ y: Double) -> Double {
        let (a, b) = p.y
        return p.y0 + p.h - (min(max(y, a), b) - a) / max(b - a, 1e-300) * p.h
    }

    /// 1–2–5 ticks covering [a, b].
    static func ticks(_ a: Double, _ b: Double, count: Int = 6) -> [Double] {
        guard b > a else { return [a] }
        let raw = (b - a) / Double(count), mag = Double.pow(10, (Double.log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = (a / step).rounded(.up) * step, out: [Double] = []
        while t <= b + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: "%g", v)
    }

    /// A new panel below the previous ones, with its frame, grid, ticks and labels.
    mutating func panel(height h: Double, x: Axis, y: (Double, Double), xLabel: String, yLabel: String) -> Panel {
        var yr = y
        if !(yr.1 > yr.0) { yr = (yr.0 - 1, yr.0 + 1) }
        let p = Panel(x0: Self.left, y0: height + 10, w: Self.width - Self.left - Self.right, h: h, x: x, y: yr)
        body += "<rect x=\"\(Self.n(p.x0))\" y=\"\(Self.n(p.y0))\" width=\"\(Self.n(p.w))\" height=\"\(Self.n(p.h))\" fill=\"none\" stroke=\"#333\"/>\n"
        let xt: [Double]
        switch x {
        case .linear(let a, let b): xt = Self.ticks(a, b, count: 10)
        case .log(let a, let b):
            var t: [Double] = []
            var d = Double.pow(10, Double.log10(a).rounded(.down))
            while d <= b { for k in [1.0, 2, 5] where d * k >= a && d * k <= b { t.append(d * k) }; d *= 10 }
            xt = t
        }
        for t in xt {
            let X = px(p, t)
            body += "<line x1=\"\(Self.n(X))\" y1=\"\(Self.n(p.y0))\" x2=\"\(Self.n(X))\" y2=\"\(Self.n(p.y0 + p.h))\" stroke=\"#ddd\"/>\n"
            body += "<text x=\"\(Self.n(X))\" y=\"\(Self.n(p.y0 + p.h + 14))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in Self.ticks(yr.0, yr.1) {
            let Y = py(p, t)
            body += "<line x1=\"\(Self.n(p.x0))\" y1=\"\(Self.n(Y))\" x2=\"\(Self.n(p.x0 + p.w))\" y2=\"\(Self.n(Y))\" stroke=\"#ddd\"/>\n"
            body += "<text x=\"\(Self.n(p.x0 - 6))\" y=\"\(Self.n(Y + 4))\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        body += "<text x=\"\(Self.n(p.x0 + p.w / 2))\" y=\"\(Self.n(p.y0 + p.h + 30))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        body += "<text transform=\"translate(\(Self.n(18)) \(Self.n(p.y0 + p.h / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        height = p.y0 + p.h + 40
        return p
    }

    mutating func curve(_ p: Panel, _ pts: [(Double, Double)], color: Int, legend: String? = nil, row: Int = 0) {
        let c = Self.colors[color % Self.colors.count]
        let d = pts.filter { $0.1.isFinite }.map { "\(Self.n(px(p, $0.0))),\(Self.n(py(p, $0.1)))" }.joined(separator: " ")
        body += "<polyline points=\"\(d)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\"/>\n"
        if let legend {
            body += "<text x=\"\(Self.n(p.x0 + p.w - 8))\" y=\"\(Self.n(p.y0 + 16 + 14 * Double(row)))\" text-anchor=\"end\" fill=\"\(c)\">\(Self.escape(legend))</text>\n"
        }
    }

    /// A shaded span [t0, t1] with its label at the top.
    mutating func span(_ p: Panel, _ t0: Double, _ t1: Double, label: String, color: Int, row: Int = 0) {
        let c = Self.colors[color % Self.colors.count]
        let x0 = px(p, t0), x1 = max(px(p, t1), x0 + 1)
        body += "<rect x=\"\(Self.n(x0))\" y=\"\(Self.n(p.y0))\" width=\"\(Self.n(x1 - x0))\" height=\"\(Self.n(p.h))\" fill=\"\(c)\" fill-opacity=\"0.18\"><title>\(Self.escape(label)) \(String(format: "%.3f–%.3f s", t0, t1))</title></rect>\n"
        body += "<text x=\"\(Self.n(x0 + 2))\" y=\"\(Self.n(p.y0 + 14 + 14 * Double(row)))\" fill=\"\(c)\">\(Self.escape(label))</text>\n"
    }

    /// The waveform as a min/max band per pixel column; returns (time, min, max) per column.
    mutating func envelope(_ p: Panel, _ x: [Float], rate: Double) -> [(Double, Double, Double)] {
        let cols = Int(p.w)
        guard !x.isEmpty else { return [] }
        var out: [(Double, Double, Double)] = []
        var d = ""
        for c in 0..<cols {
            let a = x.count * c / cols, b = max(a + 1, x.count * (c + 1) / cols)
            guard a < x.count else { break }
            let seg = x[a..<min(b, x.count)]
            let lo = Double(seg.min() ?? 0), hi = Double(seg.max() ?? 0)
            out.append((Double(a) / rate, lo, hi))
            let X = p.x0 + Double(c) + 0.5
            d += "M\(Self.n(X)),\(Self.n(py(p, hi)))V\(Self.n(py(p, lo)))"
        }
        body += "<path d=\"\(d)\" stroke=\"#444\" stroke-width=\"1\" fill=\"none\"/>\n"
        return out
    }

    /// Square z-plane maps in a row (four per row): the unit circle, poles ×, zeros ○.
    mutating func poleZeroRow(_ maps: [(title: String, poles: [Complex<Double>], zeros: [Complex<Double>])]) {
        guard !maps.isEmpty else { return }
        let size = 200.0, gap = 20.0
        for (i, m) in maps.enumerated() {
            let col = Double(i % 4)
            if i % 4 == 0 && i > 0 { height += size + 50 }
            let x0 = Self.left + col * (size + gap), y0 = height + 24
            // The unit circle and the poles always in view; zeros up to |z| = 2 (a zero far out
            // is drawn on the frame's edge, in its direction).
            let poleR = m.poles.map { $0.length }.filter(\.isFinite).max() ?? 0
            let zeroR = m.zeros.map { $0.length }.filter(\.isFinite).max() ?? 0
            let r = max(1.1, poleR * 1.05, min(zeroR * 1.05, 2.0))
            func X(_ v: Double) -> Double { x0 + size / 2 + v / r * size / 2 }
            func Y(_ v: Double) -> Double { y0 + size / 2 - v / r * size / 2 }
            body += "<text x=\"\(Self.n(x0))\" y=\"\(Self.n(y0 - 8))\">\(Self.escape(m.title + (m.zeros.isEmpty ? ": poles" : ": poles ×, zeros ○")))</text>\n"
            body += "<rect x=\"\(Self.n(x0))\" y=\"\(Self.n(y0))\" width=\"\(Self.n(size))\" height=\"\(Self.n(size))\" fill=\"none\" stroke=\"#333\"/>\n"
            body += "<line x1=\"\(Self.n(x0))\" y1=\"\(Self.n(Y(0)))\" x2=\"\(Self.n(x0 + size))\" y2=\"\(Self.n(Y(0)))\" stroke=\"#ddd\"/>\n"
            body += "<line x1=\"\(Self.n(X(0)))\" y1=\"\(Self.n(y0))\" x2=\"\(Self.n(X(0)))\" y2=\"\(Self.n(y0 + size))\" stroke=\"#ddd\"/>\n"
            body += "<circle cx=\"\(Self.n(X(0)))\" cy=\"\(Self.n(Y(0)))\" r=\"\(Self.n(size / 2 / r))\" fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n"
            for q in m.poles where q.real.isFinite && q.imaginary.isFinite {
                let a = X(q.real), b = Y(q.imaginary)
                body += "<path d=\"M\(Self.n(a - 4)),\(Self.n(b - 4))L\(Self.n(a + 4)),\(Self.n(b + 4))M\(Self.n(a - 4)),\(Self.n(b + 4))L\(Self.n(a + 4)),\(Self.n(b - 4))\" stroke=\"#d62728\" stroke-width=\"1.5\"/>\n"
            }
            for q in m.zeros where q.real.isFinite && q.imaginary.isFinite {
                let s = q.length > r ? r / q.length * 0.98 : 1
                body += "<circle cx=\"\(Self.n(X(q.real * s)))\" cy=\"\(Self.n(Y(q.imaginary * s)))\" r=\"4\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\"/>\n"
            }
        }
        height += size + 50
    }
}
