// AudioWriter → file → AudioReader round trips through libsndfile: the format is preserved,
// float WAV is bit-exact, integer PCM lands on the quantization grid within one LSB, and
// multichannel frames keep their channel order.

import CSndfile
import Foundation
import Testing
@testable import SSMIO
import SSM

@Suite("AudioReader/AudioWriter round trips")
struct AudioRoundTripTests {
    /// Three channels of distinct ramps over [-0.9, 0.9] (rising, falling, rising at a quarter of the
    /// slope plus an offset), interleaved, plus a few exact values. Any channel swap or frame shift
    /// moves a sample by far more than one LSB.
    static func ramps(frames: Int) -> [Float] {
        var x = [Float](repeating: 0, count: frames * 3)
        for i in 0..<frames {
            let t = Double(i) / Double(frames - 1)
            x[3 * i] = Float(-0.9 + 1.8 * t)
            x[3 * i + 1] = Float(0.9 - 1.8 * t)
            x[3 * i + 2] = Float(0.3 + 0.45 * (t - 0.5))
        }
        // Exactly representable extremes and zero in channel 0.
        x[0] = -1; x[3] = 0; x[6] = Float(32767) / 32768
        return x
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String, ext: String, format: Int32, rate: Int
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "WAV float", ext: "wav", format: wavFloat, rate: 48000),
        Case(name: "WAV PCM16", ext: "wav", format: wav16, rate: 16000),
        Case(name: "WAV PCM24", ext: "wav", format: wav24, rate: 44100),
        Case(name: "WAV PCM32", ext: "wav", format: wav32, rate: 8000),
        Case(name: "FLAC PCM16", ext: "flac", format: flac16, rate: 22050),
        Case(name: "FLAC PCM24", ext: "flac", format: flac24, rate: 96000),
    ]

    @Test("format preserved, samples exact (float) or within 1 LSB of the input on the grid (PCM)",
          arguments: cases)
    func roundTrip(_ c: Case) throws {
        let dir = TempDir()
        let path = dir.file("x." + c.ext)
        let frames = 2345
        let x = Self.ramps(frames: frames)
        let fmt = AudioFormat(sampleRate: c.rate, channels: 3, format: c.format)
        try writeAudio(path, fmt, x, block: 500)

        let (got, frameCount, y) = try readAudio(path, block: 333)
        #expect(got == fmt, "format \(got) != \(fmt)")
        #expect(got.sampleRate == c.rate && got.channels == 3 && got.format == c.format)
        #expect(frameCount == frames)
        try #require(y.count == x.count, "read \(y.count) samples, wrote \(x.count)")

        if let bits = pcmBits(c.format) {
            let scale = Double(1 << (bits - 1))
            var worst = 0.0, offGrid = 0
            for (a, b) in zip(x, y) {
                let code = Double(b) * scale
                if code != code.rounded() { offGrid += 1 }
                worst = max(worst, abs(Double(b) - Double(a)) * scale)
            }
            #expect(offGrid == 0, "\(offGrid) samples read back are not k/2^\(bits - 1)")
            #expect(worst <= 1, "max error \(worst) LSB")
            // And the read-back value is the one libsndfile's quantizer gives. libsndfile 1.2 quantizes
            // differently per container: WAV rounds at 2^31 then shifts (floor at these magnitudes),
            // FLAC rounds to nearest at 2^(bits−1).
            let isFLAC = c.format & Int32(SF_FORMAT_TYPEMASK) == Int32(SF_FORMAT_FLAC)
            for (i, (a, b)) in zip(x, y).enumerated() {
                let code = isFLAC ? min(max((Double(a) * scale).rounded(.toNearestOrEven), -scale), scale - 1)
                                  : Double(sndfileQuantized(a, bits: bits))
                let expected = code / scale
                if Double(b) != expected {
                    Issue.record("sample \(i) (frame \(i / 3), channel \(i % 3)): wrote \(a), read \(b), expected \(expected)")
                    break
                }
            }
        } else {
            #expect(x.map(\.bitPattern) == y.map(\.bitPattern), "float WAV is not bit-exact")
        }
        // Channel order: frame 1000, each channel checked against its own ramp (the tolerance is
        // far below the ~0.5 spacing between the three ramps there).
        let t = 1000.0 / Double(frames - 1)
        let want = [-0.9 + 1.8 * t, 0.9 - 1.8 * t, 0.3 + 0.45 * (t - 0.5)]
        for ch in 0..<3 {
            #expect(abs(Double(y[3000 + ch]) - want[ch]) < 1e-4, "frame 1000 channel \(ch): \(y[3000 + ch]) vs \(want[ch])")
        }
    }

    @Test("read() returns partial blocks and then 0; frameCount is the file's length")
    func readBlocks() throws {
        let dir = TempDir()
        let path = dir.file("m.wav")
        let x = (0..<1001).map { Float($0) / 2048 }
        try writeAudio(path, AudioFormat(sampleRate: 16000, channels: 1, format: wavFloat), x)
        let r = try AudioReader(path: path)
        #expect(r.frameCount == 1001)
        var buf = [Float](repeating: 0, count: 400)
        var sizes: [Int] = []
        for _ in 0..<5 {
            sizes.append(try buf.withUnsafeMutableBufferPointer { (p) throws(IOError) in try r.read(into: p.baseAddress!, frames: 400) })
        }
        #expect(sizes == [400, 400, 201, 0, 0])
        #expect(buf[200] == 1000 / 2048, "last block's last sample")
    }

    @Test("writes to an existing file replace it (no stale frames)")
    func overwrite() throws {
        let dir = TempDir()
        let path = dir.file("o.wav")
        let fmt = AudioFormat(sampleRate: 16000, channels: 1, format: wav16)
        try writeAudio(path, fmt, [Float](repeating: 0.5, count: 5000))
        try writeAudio(path, fmt, [Float](repeating: -0.25, count: 10))
        let (_, n, y) = try readAudio(path)
        #expect(n == 10)
        #expect(y == [Float](repeating: -0.25, count: 10))
    }

    @Test("formatName names container and encoding")
    func formatName() {
        #expect(AudioFormat(sampleRate: 16000, channels: 1, format: wav16).formatName.contains("WAV"))
        #expect(AudioFormat(sampleRate: 16000, channels: 1, format: wav16).formatName.contains("16"))
        #expect(AudioFormat(sampleRate: 16000, channels: 1, format: flac24).formatName.contains("FLAC"))
        #expect(AudioFormat.wav16 == wav16 && AudioFormat.wavFloat == wavFloat)
    }
}
