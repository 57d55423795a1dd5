import ArgumentParser
import SSM
import SSMStreaming
import SSMIO
import SSMService
#if canImport(Glibc)
import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream audio or sensor data through a model: filters write the result, classifiers write events.",
        discussion: """
        Input: anything libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, AU …) from a file or '-' \
        (stdin); headerless PCM with --input-format s16le|s32le|f32le|f64le --rate --channels; or \
        text sensor logs (one frame per line, channels separated by commas or spaces; --input-format \
        text or a .txt/.csv/.tsv/.log name; --rate). Every frame goes through the model in streaming \
        mode with the recurrent state allocated once, and output is written block by block, so live \
        pipes work with one block of latency.

        Filter models write audio: by default in the input's container, rate and sample format \
        (raw in → raw out, text in → text out; an output name's extension picks the container, \
        e.g. out.flac), or as --format/--encoding say. Classifier models write JSON Lines: one \
        object per event (class, start/end in seconds and samples, peak and mean score), and with \
        --posteriors N the scores every N samples.

        Examples:
          ssm-stream run models/butter8-lowpass-1k.safetensors \\
              examples/noisy-tone.wav out.wav
          arecord -q -f S16_LE -r 16000 -c 1 -t raw \\
              | ssm-stream run MODEL - - --input-format s16le --rate 16000 \\
                --channels 1 \\
              | aplay -q -f S16_LE -r 16000 -c 1 -t raw
          sox in.flac -t wav - | ssm-stream run MODEL - - | sox -t wav - out.flac
          ssm-stream run MODEL in-48k.wav out.wav --resample
          ssm-stream run MODEL stereo.wav out.wav --per-channel
          ssm-stream run MODEL sensors.csv out.csv --rate 100
          ssm-stream run models/digits.safetensors examples/digits.wav
          ssm-stream run CLASSIFIER in.wav events.jsonl --threshold 0.6 \\
              --min-duration 0.2

        Exit codes: 0 ok · 64 usage · 65 bad input data (also NaN with --strict) · 66 input missing \
        · 67 bad model · 73 cannot create output · 74 read/write error mid-stream (e.g. a closed \
        output pipe). Whatever was processed before an error has been written.
        """)

    @Argument(help: "Model file (.safetensors with ssm_stream metadata).")
    var model: String

    @Argument(help: "Input file, or '-' for stdin.")
    var input: String = "-"

    @Argument(help: "Output file, or '-' for stdout.")
    var output: String = "-"

    @OptionGroup(title: "Input") var inputOptions: InputOptions
    @OptionGroup(title: "Output (filter models)") var outputOptions: OutputOptions
    @OptionGroup(title: "Events (classifier models)") var eventOptions: EventOptions

    @Option(help: "block: the block scan over each block read (streaming, constant memory, the fast path); step: one sample at a time through the per-sample path (same results to float round-off).")
    var mode: StreamEngine.Mode = .block

    @Option(help: "Frames per block processed, and read and written from a stream (its latency); files are read 4096 frames or more at a time.")
    var block: Int = 256

    @Flag(help: "Fail (exit 65) on a NaN or Inf input sample instead of replacing it by 0.")
    var strict = false

    @Flag(name: .shortAndLong, help: "Nothing on stderr but errors (no progress, no summary, no warnings).")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Describe the model, the formats and any resampling before starting.")
    var verbose = false

    func validate() throws {
        guard block >= 1 && block <= 1 << 20 else { throw ValidationError("--block must be between 1 and 1048576") }
        try inputOptions.validate()
        try outputOptions.validate()
        try eventOptions.validate()
        if quiet && verbose { throw ValidationError("-q and -v exclude each other") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)  // a closed output pipe becomes a write error we report, not a kill
        let m: Model
        do { m = try ModelFile.load(path: model) } catch {
            warn("ssm-stream run: \(error.message)"); throw ExitCode(ExitStatus.badModel)
        }
        do {
            let pipeline = try RunPipeline(self, model: m)
            try pipeline.run()
        } catch let e as IOError {
            warn("ssm-stream run: \(e.message)")
            throw ExitCode(e.exitStatus)
        } catch let e as ValidationError {
            warn("ssm-stream run: \(e.message)")
            throw ExitCode(ExitStatus.usage)
        }
    }
}

extension Run {
    /// The input and output as messages name them.
    var inputName: String { input == "-" ? "stdin" : input }
    var outputName: String { output == "-" ? "stdout" : output }
}

extension IOError {
    var exitStatus: Int32 {
        switch kind {
        case .noInput: ExitStatus.noInput
        case .dataError: ExitStatus.dataError
        case .cantCreate: ExitStatus.cantCreate
        case .ioError: ExitStatus.ioError
        }
    }
}

extension StreamEngine.Mode: ExpressibleByArgument {}
extension Resampler.Quality: ExpressibleByArgument {}
extension EventDetector.Grouping: ExpressibleByArgument {}

struct InputOptions: ParsableArguments {
    enum Kind: String, ExpressibleByArgument, CaseIterable { case auto, s16le, s32le, f32le, f64le, text }

    @Option(help: "auto (a header, or text for .txt/.csv/.tsv/.log), headerless PCM (s16le, s32le, f32le, f64le) or text.")
    var inputFormat: Kind = .auto

    @Option(help: "Sample rate in Hz of raw or text input.")
    var rate: Int?

    @Option(help: "Channels of raw input (for text input, checked against each line).")
    var channels: Int?

    @Flag(help: "Run one independent state per channel (or group of d_input channels) of a multichannel input.")
    var perChannel = false

    @Flag(help: "Convert the input to the model's sample rate (libsamplerate) and filter output back to the input's.")
    var resample = false

    @Option(help: "Resampler: best, medium, fastest (sinc) or linear.")
    var resampleQuality: Resampler.Quality = .medium

    func validate() throws {
        if let rate, rate < 1 || rate > 10_000_000 { throw ValidationError("--rate must be between 1 and 10000000 Hz") }
        if let channels, channels < 1 || channels > 1024 { throw ValidationError("--channels must be between 1 and 1024") }
    }

    static let textExtensions: Set<String> = ["txt", "csv", "tsv", "log"]

    /// What the input is, from --input-format or the input's name.
    func kind(of path: String) -> Kind {
        guard inputFormat == .auto else { return inputFormat }
        if let dot = path.lastIndex(of: "."), Self.textExtensions.contains(path[path.index(after: dot)...].lowercased()) {
            return .text
        }
        return .auto
    }

    func open(_ path: String) throws -> FrameSource {
        let kind = kind(of: path)
        switch kind {
        case .auto:
            if let dot = path.lastIndex(of: "."), ["raw", "pcm"].contains(path[path.index(after: dot)...].lowercased()) {
                throw ValidationError("'\(path)' has no header: say what it holds with --input-format s16le|s32le|f32le|f64le --rate HZ --channels N")
            }
            let r = try AudioReader(path: path)
            if let rate, rate != r.format.sampleRate {
                throw ValidationError("--rate \(rate) contradicts the header of '\(path)' (\(r.format.sampleRate) Hz); --rate is for raw or text input")
            }
            if let channels, channels != r.format.channels {
                throw ValidationError("--channels \(channels) contradicts the header of '\(path)' (\(counted(r.format.channels, "channel"))); --channels is for raw or text input")
            }
            return .audio(r)
        case .text:
            guard let rate else { throw ValidationError("text input needs its sample rate: --rate HZ") }
            return .text(try TextReader(path: path, sampleRate: rate, channels: channels))
        case .s16le, .s32le, .f32le, .f64le:
            guard let rate, let channels else {
                throw ValidationError("raw input (--input-format \(kind.rawValue)) needs --rate HZ and --channels N")
            }
            return .audio(try AudioReader(path: path, raw: RawEncoding(rawValue: kind.rawValue)!, sampleRate: rate, channels: channels))
        }
    }
}

struct OutputOptions: ParsableArguments {
    @Option(help: "Output container: \(OutputFormats.containers.map(\.name).joined(separator: ", ")) (default: the input's, or the output name's extension).")
    var format: String?

    @Option(help: "Output sample encoding: \(OutputFormats.encodings.map(\.name).joined(separator: ", ")) (default: the input's, when the container holds it).")
    var encoding: String?

    func validate() throws {
        if let format, OutputFormats.container(named: format) == nil {
            throw ValidationError("unknown --format '\(format)' (one of \(OutputFormats.containers.map(\.name).joined(separator: ", ")))")
        }
        if let encoding, OutputFormats.encoding(named: encoding) == nil {
            throw ValidationError("unknown --encoding '\(encoding)' (one of \(OutputFormats.encodings.map(\.name).joined(separator: ", ")))")
        }
    }

    /// The output format for a filter model: the input's, changed as the options or the output's
    /// extension ask.
    func format(for input: AudioFormat, channels: Int, path: String) throws -> AudioFormat {
        var base = input
        base.channels = channels
        if format == nil, path != "-", let ext = OutputFormats.unknownExtension(path) {
            throw ValidationError("output '\(path)': '.\(ext)' is not a container this build writes "
                                  + "(\(OutputFormats.knownExtensions.joined(separator: ", "))); name one with --format")
        }
        let container = format.flatMap(OutputFormats.container(named:))
            ?? (path == "-" ? nil : OutputFormats.container(forPath: path))
        let encoding = encoding.flatMap(OutputFormats.encoding(named:))
        if container == nil && encoding == nil { return base }
        let inputContainer = input.isText ? AudioFormat.text : input.format & 0x0FFF_0000
        let f = OutputFormats.convert(base, to: container ?? inputContainer, encoding: encoding)
        guard f.isWritable else {
            throw ValidationError("cannot write \(f.formatName) with \(channels) channel(s) at \(f.sampleRate) Hz (choose another --format/--encoding)")
        }
        return f
    }
}

struct EventOptions: ParsableArguments {
    @Option(help: "Score at which an event starts (default: the model's suggestion, else 0.5).")
    var threshold: Float?

    @Option(help: "Score below which an event ends (hysteresis; default: the model's, else threshold − 0.1).")
    var release: Float?

    @Option(help: "Drop events shorter than this, in seconds (default: the model's, else 0).")
    var minDuration: Double?

    @Option(help: "Merge events separated by less than this, in seconds (of one class, or any with exclusive grouping; default: the model's, else 0).")
    var minGap: Double?

    @Option(help: "A class never to report (e.g. background), besides the model's own; repeatable.")
    var ignore: [String] = []

    @Option(help: ArgumentHelp("How classes become events: 'exclusive' (one event at a time, of the class with the most evidence over it) or 'per-class' (each class its own, overlapping).",
                               discussion: "Default: exclusive for a softmax classifier with a background class (one it does not report), per-class otherwise.",
                               valueName: "mode"))
    var grouping: EventDetector.Grouping?

    @Option(help: "Also write every class's score every N samples (0: never).")
    var posteriors: Int = 0

    func validate() throws {
        if let threshold, !(threshold.isFinite && threshold > 0 && threshold <= 1) { throw ValidationError("--threshold must be in (0, 1]") }
        // Without --threshold the onset may be the model's own; a release above it is then capped to it.
        if let release, !(release.isFinite && release >= 0 && release <= (threshold ?? 1)) {
            throw ValidationError("--release must be between 0 and --threshold (\(threshold ?? 1))")
        }
        guard (minDuration ?? 0) >= 0, (minDuration ?? 0).isFinite, (minGap ?? 0) >= 0, (minGap ?? 0).isFinite else {
            throw ValidationError("--min-duration and --min-gap must be non-negative seconds")
        }
        guard posteriors >= 0 else { throw ValidationError("--posteriors must be ≥ 0") }
    }

    func detectorOptions(spec: ModelSpec, labels: [String], rate: Int) throws -> EventDetector.Options {
        do {
            return try EventSettings(threshold: threshold, release: release, minDuration: minDuration, minGap: minGap, ignore: ignore,
                                     grouping: grouping).resolve(model: spec, labels: labels, rate: rate)
        } catch { throw ValidationError("--" + error.message) }
    }

    var isDefault: Bool {
        threshold == nil && release == nil && minDuration == nil && minGap == nil && ignore.isEmpty && grouping == nil && posteriors == 0
    }
}
