import CSamplerate

/// Streaming sample-rate conversion with libsamplerate (Secret Rabbit Code): band-limited sinc
/// interpolation, one converter state per stream, buffers allocated once.
public final class Resampler {
    public enum Quality: String, CaseIterable, Sendable {
        case best, medium, fastest, linear
        var converter: Int32 {
            switch self {
            case .best: Int32(SRC_SINC_BEST_QUALITY)
            case .medium: Int32(SRC_SINC_MEDIUM_QUALITY)
            case .fastest: Int32(SRC_SINC_FASTEST)
            case .linear: Int32(SRC_LINEAR)
            }
        }
    }

    public let fromRate: Int
    public let toRate: Int
    public let channels: Int
    private let ratio: Double
    private let state: OpaquePointer
    private let out: UnsafeMutablePointer<Float>
    private let outFrames: Int

    /// A converter for interleaved frames of `channels` channels, fed at most `maxFrames` at a time.
    public init(from: Int, to: Int, channels: Int, maxFrames: Int, quality: Quality = .medium) throws(IOError) {
        fromRate = from; toRate = to; self.channels = channels
        try Self.checkRatio(from: from, to: to)
        ratio = Double(to) / Double(from)
        var err: Int32 = 0
        guard let s = src_new(quality.converter, Int32(channels), &err) else {
            throw IOError(.dataError, "libsamplerate: \(String(cString: src_strerror(err)))")
        }
        state = s
        outFrames = Int((Double(maxFrames) * ratio).rounded(.up)) + 64
        out = .allocate(capacity: outFrames * channels)
    }

    deinit { src_delete(state); out.deallocate() }

    /// Whether libsamplerate converts `from` Hz to `to` Hz (and so back): ratios between 1/256 and
    /// 256. Callers check before they create an output, so that a refusal leaves nothing behind.
    public static func checkRatio(from: Int, to: Int) throws(IOError) {
        guard src_is_valid_ratio(Double(to) / Double(from)) != 0 else {
            throw IOError(.dataError, "cannot resample \(from) Hz to \(to) Hz: libsamplerate converts ratios between 1/256 and 256 only")
        }
    }

    /// Converts `frames` frames; calls `emit` with each chunk of converted frames (possibly none).
    /// With `end`, flushes the converter's delay line: call it once, after the last input.
    public func process(_ input: UnsafePointer<Float>, frames: Int, end: Bool,
                        _ emit: (UnsafePointer<Float>, Int) throws(IOError) -> Void) throws(IOError) {
        var offset = 0
        while true {
            var d = SRC_DATA(data_in: input + offset * channels, data_out: out,
                             input_frames: frames - offset, output_frames: outFrames,
                             input_frames_used: 0, output_frames_gen: 0,
                             end_of_input: end ? 1 : 0, src_ratio: ratio)
            let err = src_process(state, &d)
            if err != 0 { throw IOError(.dataError, "libsamplerate: \(String(cString: src_strerror(err)))") }
            offset += d.input_frames_used
            if d.output_frames_gen > 0 { try emit(out, d.output_frames_gen) }
            // Done when the input is used up and (at the end) nothing more comes out.
            if offset >= frames && (!end || d.output_frames_gen == 0) { break }
            if d.input_frames_used == 0 && d.output_frames_gen == 0 { break }
        }
    }
}
