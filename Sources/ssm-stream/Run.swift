import ArgumentParser
import SSM
import SSMIO
#if canImport(Glibc)
import Glibc
#endif

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream audio through a model: a filter model writes the filtered audio.",
        discussion: """
        Reads any format libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, AU …) from a file or '-' \
        (stdin), pushes every frame through the model in streaming mode with one recurrent state \
        allocated up front, and writes the result with the input's rate, channel count and sample \
        format to a file or '-' (stdout). Output is written block by block, so live pipes work.

        Examples:
          ssm-stream run models/lowpass-1k.safetensors examples/noisy-tone.wav out.wav
          sox in.flac -t wav - | ssm-stream run models/lowpass-1k.safetensors - - | sox -t wav - out.flac

        Exit codes: 0 ok · 64 usage · 65 bad input data · 66 input missing · 67 bad model · \
        73 cannot create output · 74 read/write error mid-stream.
        """)

    @Argument(help: "Model file (.safetensors with ssm_stream metadata).")
    var model: String

    @Argument(help: "Input audio file, or '-' for stdin.")
    var input: String = "-"

    @Argument(help: "Output audio file, or '-' for stdout.")
    var output: String = "-"

    @Option(help: "step: one sample at a time (what the daemon does); block: the block scan (same results to float round-off, faster).")
    var mode: Mode = .step

    @Option(help: "Frames per block read, processed and written.")
    var block: Int = 256

    @Flag(name: .shortAndLong, help: "No summary on stderr.")
    var quiet = false

    enum Mode: String, ExpressibleByArgument { case step, block }

    func validate() throws {
        guard block >= 1 && block <= 1 << 20 else { throw ValidationError("--block must be between 1 and 1048576") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)  // a closed output pipe becomes a write error we report, not a kill
        let m: Model
        do { m = try ModelFile.load(path: model) } catch {
            warn("ssm-stream run: \(error.message)"); throw ExitCode(ExitStatus.badModel)
        }
        guard m.spec.task == .filter else {
            warn("ssm-stream run: model '\(model)' is a classifier; this build writes audio from filter models only")
            throw ExitCode(ExitStatus.badModel)
        }
        do {
            try stream(m)
        } catch {
            warn("ssm-stream run: \(error.message)")
            switch error.kind {
            case .noInput: throw ExitCode(ExitStatus.noInput)
            case .dataError: throw ExitCode(ExitStatus.dataError)
            case .cantCreate: throw ExitCode(ExitStatus.cantCreate)
            case .ioError: throw ExitCode(ExitStatus.ioError)
            }
        }
    }

    func stream(_ m: Model) throws(IOError) {
        let reader = try AudioReader(path: input)
        let fmt = reader.format
        guard fmt.channels == m.spec.dInput else {
            throw IOError(.dataError, "input '\(input)' has \(fmt.channels) channel(s), model '\(model)' takes \(m.spec.dInput)")
        }
        guard fmt.sampleRate == m.spec.sampleRate else {
            throw IOError(.dataError, "input '\(input)': sample rate \(fmt.sampleRate) Hz, model expects \(m.spec.sampleRate) Hz (resample it first, e.g. sox in.wav -r \(m.spec.sampleRate) out.wav)")
        }
        if output != "-" && input != "-" && sameFile(input, output) {
            throw IOError(.cantCreate, "output '\(output)' is the input file: writing it would destroy the input")
        }
        let state = m.makeState(maxBlock: block)
        let dIn = m.spec.dInput, dOut = m.spec.dOutput
        let inBuf = UnsafeMutablePointer<Float>.allocate(capacity: block * dIn)
        let outBuf = UnsafeMutablePointer<Float>.allocate(capacity: block * dOut)
        defer { inBuf.deallocate(); outBuf.deallocate() }
        // Read the first block before creating the output, so an empty input leaves nothing behind.
        var n = try reader.read(into: inBuf, frames: block)
        if n == 0 { throw IOError(.dataError, "input '\(input)' holds no audio frames") }
        let outFormat = AudioFormat(sampleRate: fmt.sampleRate, channels: m.spec.dOutput, format: fmt.format)
        let writer = try AudioWriter(path: output, format: outFormat)
        var frames = 0, nonFinite = 0
        let start = monotonicSeconds()
        while n > 0 {
            for i in 0..<(n * dIn) where !inBuf[i].isFinite { inBuf[i] = 0; nonFinite += 1 }
            switch mode {
            case .step:
                for k in 0..<n { m.step(inBuf + k * dIn, outBuf + k * dOut, state: state) }
            case .block:
                m.forward(inBuf, outBuf, length: n, state: state)
            }
            try writer.write(outBuf, frames: n)
            frames += n
            n = try reader.read(into: inBuf, frames: block)
        }
        try writer.close()
        if nonFinite > 0 { warn("ssm-stream run: replaced \(nonFinite) NaN/Inf input sample(s) by 0") }
        if !quiet {
            let secs = monotonicSeconds() - start
            let audio = Double(frames) / Double(fmt.sampleRate)
            warn("ssm-stream run: \(frames) frames (\(fixed(audio, 2)) s of audio) in \(fixed(secs, 3)) s, "
                 + "\(fixed(audio / max(secs, 1e-9), 0))× real time, state \(state.stateBytes) bytes → \(output == "-" ? "stdout" : output)")
        }
    }
}

/// Whether two paths name the same existing file (device and inode).
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func fixed(_ x: Double, _ digits: Int) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buf, 64, "%.\(digits)f", $0) }
    return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
