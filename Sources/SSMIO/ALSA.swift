import CALSA
#if canImport(Glibc)
import Glibc
#endif

/// An ALSA PCM opened for interleaved capture or playback, asking for 32-bit float samples (the
/// `plug` layer of "default"/"plughw:" converts any hardware format and rate); a device that
/// refuses float (a bare "hw:") is asked for S32_LE, then S16_LE, and converted here.
///
/// Reads and writes move at most one period at a time (larger transfers through some plugins
/// silently return zeros). Over- and underruns are recovered (snd_pcm_recover) and counted;
/// `read`/`write` allocate nothing.
public final class ALSADevice {
    public enum Direction: Sendable { case capture, playback }
    private enum Sample { case float, s32, s16 }

    public let name: String
    public let direction: Direction
    public let sampleRate: Int
    public let channels: Int
    /// Frames per period (the transfer unit) and in the whole buffer, as the device granted them.
    public let periodFrames: Int
    public let bufferFrames: Int
    /// Overruns (capture) or underruns (playback) recovered so far.
    public private(set) var xruns = 0
    private let pcm: OpaquePointer
    private let sample: Sample
    private let scratch: UnsafeMutableRawPointer

    /// Opens `device` at `rate` Hz with `channels` channels and a buffer of about `latencyMs`.
    public init(device: String, direction: Direction, rate: Int, channels: Int, latencyMs: Int) throws(IOError) {
        name = device; self.direction = direction; sampleRate = rate; self.channels = channels
        var p: OpaquePointer?
        let stream = direction == .capture ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK
        var err = snd_pcm_open(&p, device, stream, 0)
        guard err >= 0, let p else {
            throw IOError(.noInput, "ALSA device '\(device)' (\(direction == .capture ? "capture" : "playback")): \(String(cString: snd_strerror(err)))\(Self.hint(err))")
        }
        var chosen: Sample? = nil
        for (fmt, s) in [(SND_PCM_FORMAT_FLOAT_LE, Sample.float), (SND_PCM_FORMAT_S32_LE, .s32), (SND_PCM_FORMAT_S16_LE, .s16)] {
            err = snd_pcm_set_params(p, fmt, SND_PCM_ACCESS_RW_INTERLEAVED, UInt32(channels), UInt32(rate),
                                     1, UInt32(latencyMs * 1000))
            if err >= 0 { chosen = s; break }
        }
        guard let chosen else {
            snd_pcm_close(p)
            throw IOError(.dataError, "ALSA device '\(device)' cannot run \(channels) channel(s) at \(rate) Hz: \(String(cString: snd_strerror(err))) (try \"plughw:…\" or \"default\", which convert)")
        }
        var buffer: snd_pcm_uframes_t = 0, period: snd_pcm_uframes_t = 0
        if snd_pcm_get_params(p, &buffer, &period) < 0 || period == 0 { period = 256; buffer = 1024 }
        pcm = p; sample = chosen
        periodFrames = Int(period); bufferFrames = Int(buffer)
        scratch = .allocate(byteCount: max(1, periodFrames) * channels * 4, alignment: 16)
    }

    deinit {
        if direction == .playback { snd_pcm_drain(pcm) }
        snd_pcm_close(pcm)
        scratch.deallocate()
    }

    private static func hint(_ err: Int32) -> String {
        switch -err {
        case ENOENT: " (no such device: list them with `arecord -L` / `aplay -L`)"
        case EBUSY: " (the device is in use by another program)"
        case EACCES, EPERM: " (permission denied: the user needs to be in the 'audio' group)"
        default: ""
        }
    }

    private func failure(_ err: Int) -> IOError {
        IOError(.ioError, "ALSA device '\(name)': \(String(cString: snd_strerror(Int32(err))))")
    }

    /// Captures up to `frames` frames (at most one period) into `buffer`; returns how many.
    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(IOError) -> Int {
        let n = min(frames, periodFrames)
        while true {
            let got: Int
            switch sample {
            case .float:
                got = snd_pcm_readi(pcm, buffer, snd_pcm_uframes_t(n))
            case .s32:
                got = snd_pcm_readi(pcm, scratch, snd_pcm_uframes_t(n))
                if got > 0 { let s = scratch.assumingMemoryBound(to: Int32.self); for i in 0..<(got * channels) { buffer[i] = Float(s[i]) * (1 / 2147483648) } }
            case .s16:
                got = snd_pcm_readi(pcm, scratch, snd_pcm_uframes_t(n))
                if got > 0 { let s = scratch.assumingMemoryBound(to: Int16.self); for i in 0..<(got * channels) { buffer[i] = Float(s[i]) * (1 / 32768) } }
            }
            if got >= 0 { return got }
            if got == -Int(EAGAIN) || got == -Int(EINTR) { continue }
            if got == -Int(EPIPE) { xruns += 1 }
            guard snd_pcm_recover(pcm, Int32(got), 1) >= 0 else { throw failure(got) }
        }
    }

    /// Plays `frames` frames from `buffer` (in periods), recovering from underruns.
    public func write(_ buffer: UnsafePointer<Float>, frames: Int) throws(IOError) {
        var done = 0
        while done < frames {
            let n = min(frames - done, periodFrames)
            let src = buffer + done * channels
            let put: Int
            switch sample {
            case .float:
                put = snd_pcm_writei(pcm, src, snd_pcm_uframes_t(n))
            case .s32:
                let d = scratch.assumingMemoryBound(to: Int32.self)
                for i in 0..<(n * channels) { d[i] = Int32(max(-1, min(src[i], 0x7FFF_FF80 / 2147483648)) * 2147483648) }
                put = snd_pcm_writei(pcm, scratch, snd_pcm_uframes_t(n))
            case .s16:
                let d = scratch.assumingMemoryBound(to: Int16.self)
                for i in 0..<(n * channels) { d[i] = Int16(max(-1, min(src[i], 32767 / 32768)) * 32768) }
                put = snd_pcm_writei(pcm, scratch, snd_pcm_uframes_t(n))
            }
            if put >= 0 { done += put; continue }
            if put == -Int(EAGAIN) || put == -Int(EINTR) { continue }
            if put == -Int(EPIPE) { xruns += 1 }
            guard snd_pcm_recover(pcm, Int32(put), 1) >= 0 else { throw failure(put) }
        }
    }
}
