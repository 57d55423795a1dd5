import SSM
import SSMIO

/// Writes a classifier's results as JSON Lines, one object per line, flushed as it happens:
///
///     {"type":"event","class":"siren","index":1,"channel":0,"start":1.25,"end":2.5,"duration":1.25,
///      "start_sample":20000,"end_sample":40000,"peak":0.98,"mean":0.91}
///     {"type":"posteriors","time":0.5,"sample":8000,"channel":0,"scores":{"noise":0.9,"siren":0.1}}
///
/// Times are seconds from the start of the stream; samples count frames of the input stream (at
/// its rate, also when the model runs at another rate after resampling).
public final class EventWriter {
    private let out: LineWriter
    private let labels: [[UInt8]]
    private let modelRate: Int
    private let inputRate: Int
    public private(set) var events = 0

    public init(out: LineWriter, labels: [String], modelRate: Int, inputRate: Int) {
        self.out = out
        self.labels = labels.map { LineWriter.jsonString($0) }
        self.modelRate = modelRate; self.inputRate = inputRate
    }

    /// Model-clock sample → input-stream sample.
    private func inputSample(_ t: Int) -> Int {
        inputRate == modelRate ? t : Int((Double(t) * Double(inputRate) / Double(modelRate)).rounded())
    }

    private func seconds(_ t: Int) -> Double { Double(t) / Double(modelRate) }

    public func event(_ e: DetectedEvent) throws(IOError) {
        out.append("{\"type\":\"event\",\"class\":" as StaticString); out.append(labels[e.classIndex])
        out.append(",\"index\":" as StaticString); out.append(e.classIndex)
        out.append(",\"channel\":" as StaticString); out.append(e.channel)
        out.append(",\"start\":" as StaticString); out.append(seconds(e.start), digits: 9, json: true)
        out.append(",\"end\":" as StaticString); out.append(seconds(e.end), digits: 9, json: true)
        out.append(",\"duration\":" as StaticString); out.append(seconds(e.duration), digits: 9, json: true)
        out.append(",\"start_sample\":" as StaticString); out.append(inputSample(e.start))
        out.append(",\"end_sample\":" as StaticString); out.append(inputSample(e.end))
        out.append(",\"peak\":" as StaticString); out.append(Double(e.peak), digits: 6, json: true)
        out.append(",\"mean\":" as StaticString); out.append(Double(e.mean), digits: 6, json: true)
        out.append("}\n" as StaticString)
        events += 1
        try out.flush()
    }

    /// One posterior line: the scores of sample `t` of `channel`.
    public func posteriors(at t: Int, channel: Int, _ scores: UnsafePointer<Float>) throws(IOError) {
        out.append("{\"type\":\"posteriors\",\"time\":" as StaticString); out.append(seconds(t), digits: 9, json: true)
        out.append(",\"sample\":" as StaticString); out.append(inputSample(t))
        out.append(",\"channel\":" as StaticString); out.append(channel)
        out.append(",\"scores\":{" as StaticString)
        for (i, l) in labels.enumerated() {
            if i > 0 { out.append(byte: 44) }
            out.append(l); out.append(byte: 58)
            out.append(Double(scores[i]), digits: 6, json: true)
        }
        out.append("}}\n" as StaticString)
        try out.flushIfFull()
    }

    public func flush() throws(IOError) { try out.flush() }
}
