import ArgumentParser
import SSM
import SSMIO
import SSMService
import SSMStreaming
#if canImport(Glibc)
import Glibc
#endif

/// `ssm-stream run`, wired: the source, then the streaming path the daemon runs too
/// (`StreamPath`: NaN check → resample → engine → resample back → sink, or → classifier).
///
///     read block ──► StreamPath.push ──► filter sink (file/pipe) or JSON Lines events
///
/// Every buffer is allocated here, before the first sample; the loop in `run` allocates nothing
/// per block (the sinks format into buffers of their own). Whatever was processed before an error
/// is written out before the error is reported.
final class RunPipeline {
    private let cmd: Run
    private let source: FrameSource
    private let path: StreamPath
    private let progress: Progress?

    /// The read buffer. A stream is read `--block` frames at a time (its latency); a regular file,
    /// whose latency does not matter, in reads of at least 4096 frames (16× fewer syscalls), still
    /// computed `--block` frames at a time.
    private let readBuf: UnsafeMutablePointer<Float>
    private let block: Int
    static let fileReadFrames = 4096

    /// Frames of the first block, read in `init` (before the output exists) and waiting in `readBuf`.
    private var pendingFirst = 0

    init(_ cmd: Run, model: Model) throws {
        self.cmd = cmd
        // One stream, one core: OpenBLAS's worker threads only spin (sched_yield) on blocks this small.
        setBLASThreads(1)
        let spec = model.spec
        if cmd.output != "-" && cmd.input != "-" && sameFile(cmd.input, cmd.output) {
            throw IOError(.cantCreate, "output '\(cmd.output)' is the input file: writing it would destroy the input")
        }
        if spec.task == .filter && !cmd.eventOptions.isDefault {
            throw ValidationError("--threshold, --release, --min-duration, --min-gap, --ignore, --grouping and --posteriors are for classifier models; '\(cmd.model)' is a filter")
        }
        if spec.task == .classify && (cmd.outputOptions.format != nil || cmd.outputOptions.encoding != nil) {
            throw ValidationError("--format and --encoding are for filter models; classifier '\(cmd.model)' writes JSON Lines")
        }
        source = try cmd.inputOptions.open(cmd.input)
        block = isRegularFile(cmd.input) ? max(cmd.block, Self.fileReadFrames) : cmd.block
        let fmt = source.format

        // Channels: the frame is the model's input, or (--per-channel) groups of d_input channels.
        let dIn = spec.dInput
        let groups: Int
        if cmd.inputOptions.perChannel {
            guard fmt.channels % dIn == 0 else {
                throw IOError(.dataError, "input '\(cmd.inputName)' has \(fmt.channels) channel(s), not a multiple of the \(dIn) model '\(cmd.model)' takes per stream (--per-channel)")
            }
            groups = fmt.channels / dIn
        } else {
            guard fmt.channels == dIn else {
                let hint = fmt.channels % dIn == 0 ? " (--per-channel runs one state per channel\(dIn > 1 ? " group" : ""))" : ""
                throw IOError(.dataError, "input '\(cmd.inputName)' has \(fmt.channels) channel(s), model '\(cmd.model)' takes \(dIn)\(hint)")
            }
            groups = 1
        }

        // Rate: equal, or converted with --resample (and converted back for filter output).
        let modelRate = spec.sampleRate
        if fmt.sampleRate != modelRate && !cmd.inputOptions.resample {
            // The hint fits the input: a file sox can convert, or samples only --resample converts here.
            let convert = fmt.isText || fmt.isRaw || cmd.input == "-" ? ""
                : ", or convert first: sox '\(cmd.input)' -r \(modelRate) converted.wav"
            throw IOError(.dataError, "input '\(cmd.inputName)': sample rate \(fmt.sampleRate) Hz, model '\(cmd.model)' expects \(modelRate) Hz (add --resample\(convert))")
        }
        // A ratio libsamplerate refuses is refused before anything is read or written.
        try Resampler.checkRatio(from: fmt.sampleRate, to: modelRate)
        readBuf = .allocate(capacity: block * fmt.channels)

        // Read the first block before creating the output, so an empty input leaves nothing behind.
        let first = try source.read(into: readBuf, frames: block)
        if first == 0 { throw IOError(.dataError, "input '\(cmd.inputName)' holds no audio frames") }
        pendingFirst = first

        let outputChannels = groups * spec.dOutput
        let output: StreamPath.Output
        switch spec.task {
        case .filter:
            let outFormat = try cmd.outputOptions.format(for: fmt, channels: outputChannels, path: cmd.output)
            let sink: FrameSink
            if outFormat.isText {
                // Text in → text out answers in kind: the same separator, and the header when the
                // columns still mean the same (as many out as in).
                var comma = cmd.output.lowercased().hasSuffix(".csv"), header: [String]? = nil
                if case .text(let r) = source {
                    comma = r.commaSeparated
                    if outFormat.channels == fmt.channels { header = r.header }
                }
                sink = .text(try TextWriter(path: cmd.output, format: outFormat, commaSeparated: comma, header: header))
            } else {
                sink = .audio(try AudioWriter(path: cmd.output, format: outFormat))
            }
            output = .filter(sink: sink, device: nil)
        case .classify:
            let labels = spec.labels ?? (0..<spec.dOutput).map { "class\($0)" }
            let options = try cmd.eventOptions.detectorOptions(spec: spec, labels: labels, rate: modelRate)
            let writer = EventWriter(out: try LineWriter(path: cmd.output), labels: labels,
                                     modelRate: modelRate, inputRate: fmt.sampleRate)
            output = .classify(Classifier(output: .writer(writer), options: options, classes: spec.dOutput, groups: groups,
                                          scores: spec.scoring, posteriorsEvery: cmd.eventOptions.posteriors))
        }
        path = try StreamPath(model: model, modelName: cmd.model, inputName: cmd.inputName,
                              inputRate: fmt.sampleRate, inputChannels: fmt.channels, groups: groups,
                              mode: cmd.mode, engineBlock: cmd.block, maxInputFrames: block,
                              resampleQuality: cmd.inputOptions.resampleQuality,
                              nonFinite: cmd.strict ? .stop(because: "--strict") : .replace, output: output)

        // On a terminal, also for a pipe (no length known: position and load, no ETA).
        progress = !cmd.quiet && isatty(2) != 0 ? Progress(totalFrames: source.frameCount, rate: fmt.sampleRate) : nil
        if cmd.verbose { describe() }
    }

    deinit { readBuf.deallocate() }

    /// Streams the whole input. On an error mid-stream, everything processed so far is written
    /// (sinks closed, open events ended) before the error propagates.
    func run() throws {
        let start = monotonicSeconds(), cpuStart = processCPUSeconds()
        var framesRead = 0
        do {
            var n = pendingFirst
            while n > 0 {
                try path.push(readBuf, frames: n)
                framesRead += n
                progress?.update(frames: framesRead)
                n = try source.read(into: readBuf, frames: block)
            }
            try path.finish()
            if let why = source.truncation(framesRead: framesRead) {
                throw IOError(.dataError, "input '\(cmd.inputName)' is truncated (\(why)); the \(framesRead) frames it holds were processed and written")
            }
        } catch {
            progress?.clear()
            try? path.finish()
            throw error
        }
        progress?.clear()
        if path.nonFiniteIn > 0 && !cmd.quiet {
            warn("ssm-stream run: replaced \(path.nonFiniteIn) NaN/Inf input sample(s) by 0 (--strict makes this an error)")
        }
        // Not silenced by -q: the output is not what the model should have produced.
        if path.nonFiniteOut > 0 {
            warn("ssm-stream run: warning: the model produced \(path.nonFiniteOut) NaN/Inf output value(s) (it overflows on this input); they were written as 0 and its state reset (--strict makes this an error)")
        }
        if !cmd.quiet { summary(frames: framesRead, seconds: monotonicSeconds() - start, cpuSeconds: processCPUSeconds() - cpuStart) }
    }

    private func describe() {
        let s = path.model.spec
        let layers = s.allBlocks.map { "\($0.layer.family.rawValue)(H=\($0.layer.dModel), N=\($0.layer.dState))" }.joined(separator: " → ")
        warn("model: \(cmd.model): \(s.task.rawValue), \(s.dInput) → \(s.dOutput) channel(s) at \(s.sampleRate) Hz, \(layers)")
        let f = source.format
        warn("input: \(cmd.inputName): \(f.formatName), \(f.channels) channel(s) at \(f.sampleRate) Hz"
             + (source.frameCount.map { ", \($0) frames" } ?? ""))
        if path.inputRate != path.modelRate { warn("resampling: \(path.inputRate) Hz → \(path.modelRate) Hz (libsamplerate, \(cmd.inputOptions.resampleQuality.rawValue))") }
        if path.groups > 1 { warn("per channel: \(path.groups) independent streams of \(s.dInput) channel(s)") }
        switch path.output {
        case .filter(let sink, _):
            if let sink {
                warn("output: \(cmd.outputName): \(sink.format.formatName), \(sink.format.channels) channel(s) at \(sink.format.sampleRate) Hz"
                     + (path.inputRate != path.modelRate ? " (resampled back)" : ""))
            }
        case .classify:
            warn("output: \(cmd.outputName): JSON Lines events")
        }
        warn("mode: \(cmd.mode.rawValue), blocks of \(cmd.block) frames (reads of \(block)), state \(path.stateBytes) bytes")
    }

    private func summary(frames framesRead: Int, seconds: Double, cpuSeconds: Double) {
        let rate = Double(source.format.sampleRate)
        let audio = Double(framesRead) / rate
        var line = "ssm-stream run: \(framesRead) frames (\(fixed(audio, 2)) s) in \(fixed(seconds, 3)) s, "
            + "\(speedFigures(audio: audio, wall: seconds, cpu: cpuSeconds)), state \(path.stateBytes) bytes"
        if case .classify(let c) = path.output { line += ", \(c.events) event(s)" }
        warn(line + " → \(cmd.outputName)")
    }
}

/// A one-line progress display on stderr (only when it is a terminal): position, speed and load;
/// with a known length, percent and ETA.
final class Progress {
    private let total: Int?
    private let rate: Double
    private let start = monotonicSeconds(), cpuStart = processCPUSeconds()
    private var last = 0.0
    private var shown = false

    init(totalFrames: Int?, rate: Int) { total = totalFrames; self.rate = Double(rate) }

    func update(frames: Int) {
        let now = monotonicSeconds()
        guard now - last >= 0.1 else { return }
        last = now
        let elapsed = max(now - start, 1e-9)
        let speed = Double(frames) / elapsed
        var line = "\r\u{1B}[K"
        if let total, total > 0 {
            let pct = min(100, Double(frames) * 100 / Double(total))
            line += "\(fixed(pct, 1)) % \(clock(Double(frames) / rate)) / \(clock(Double(total) / rate))"
        } else {
            line += "\(clock(Double(frames) / rate))"
        }
        line += "  \(fixed(speed / 1e6, 2)) M samples/s  "
            + speedFigures(audio: Double(frames) / rate, wall: elapsed, cpu: processCPUSeconds() - cpuStart)
        if let total, total > 0 { line += "  ETA \(clock(Double(total - frames) / speed))" }
        var e = StandardError()
        e.write(line)
        shown = true
    }

    /// Erases the line (before the summary or an error message).
    func clear() {
        guard shown else { return }
        var e = StandardError()
        e.write("\r\u{1B}[K")
        shown = false
    }
}
