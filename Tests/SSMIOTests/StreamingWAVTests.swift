// The streaming WAV writer (WAV to a pipe, sizes 0xFFFFFFFF): header fields, and samples identical
// to what libsndfile writes for the same floats to a regular file (AudioWriter), so that
// `ssm-stream run M in.wav out.wav` and `ssm-stream run M - - < in.wav > out.wav` agree.
//
// What libsndfile 1.2.0 does (observed here, pinned by `libsndfileQuantizer`, clipping on):
// - integer PCM: t = x·2^31 (exact), lrintf (round to nearest-even), clip to Int32 (+Inf and
//   x ≥ 1 → Int32.max, −Inf and x ≤ −1 → Int32.min, NaN → Int32.min), then an arithmetic shift
//   right by 32 − bits. For 16/24 bits that is floor(x·2^(bits−1)) except for |x| < 2^−8 within half
//   a 2^−31 step below a code boundary (e.g. −1e−12 → 0, not −1); for 32 bits it is round-to-nearest.
//   libsndfile itself writes NaN as the most negative code (a full-scale click); AudioWriter
//   replaces NaN by 0 for integer encodings on both paths, so the pinned rule below says 0.
// - float: stored unchanged — no clipping (1.5 stays 1.5), ±Inf and NaN kept.

import CSndfile
import Foundation
import Testing
@testable import SSMIO
import SSM

/// splitmix64, so the test data does not depend on the package's generator.
struct SplitMix: RandomNumberGenerator {
    var z: UInt64
    mutating func next() -> UInt64 {
        z &+= 0x9E37_79B9_7F4A_7C15
        var x = z
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }
}

@Suite("StreamingWAV (WAV to a pipe)")
struct StreamingWAVTests {
    struct Enc: CustomTestStringConvertible, Sendable {
        let name: String, format: Int32, bits: Int, isFloat: Bool
        var testDescription: String { name }
    }
    static let encodings: [Enc] = [
        Enc(name: "PCM16", format: wav16, bits: 16, isFloat: false),
        Enc(name: "PCM24", format: wav24, bits: 24, isFloat: false),
        Enc(name: "PCM32", format: wav32, bits: 32, isFloat: false),
        Enc(name: "float", format: wavFloat, bits: 32, isFloat: true),
    ]
    static let intEncodings = Array(encodings.prefix(3))

    /// Streams `x` through StreamingWAV into a pipe (header, then `x` in blocks of `block` frames)
    /// and returns every byte that came out of the pipe.
    static func streamed(_ x: [Float], _ format: AudioFormat, block: Int = 100) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let (r, w) = (fds[0], fds[1])
        defer { close(r) }
        let bytesPerSample = (pcmBits(format.format) ?? 32) / 8
        // Everything must fit in the pipe's buffer: we read only after writing.
        try #require(44 + x.count * bytesPerSample < 60000, "test data too large for a pipe buffer")
        do {
            defer { close(w) }
            let s = try #require(StreamingWAV(fd: w, format: format))
            try s.writeHeader()
            var start = 0
            let frames = x.count / format.channels
            while start < frames {
                let n = min(block, frames - start)
                try x.withUnsafeBufferPointer { (p) throws(IOError) in
                    try s.write(p.baseAddress! + start * format.channels, samples: n * format.channels)
                }
                start += n
            }
        }
        return readAll(fd: r)
    }

    /// The same floats written by libsndfile (AudioWriter) to a regular WAV file, parsed by hand.
    static func sndfileWritten(_ x: [Float], _ format: AudioFormat, dir: TempDir) throws -> WAVFile {
        let path = dir.file("ref-\(format.format)-\(x.count).wav")
        try writeAudio(path, format, x, block: 37)
        return try WAVFile(path: path)
    }

    /// In-range values, values beyond ±1, ±Inf, ±0 and random values with |x| ≥ 2^−8 (where the
    /// libsndfile rule and floor(x·2^(bits−1)) coincide for every width).
    static func ordinaryValues(count: Int, seed: UInt64) -> [Float] {
        var specials: [Float] = [0, -0.0, 1, -1, 0.5, -0.5, 1.5, -1.5, 2, -2, 1e6, -1e6, .infinity, -.infinity,
                                 Float(32767) / 32768, Float(-32767) / 32768, Float(1).nextDown, Float(-1).nextUp,
                                 0.25 + Float(1) / 65536, -0.25 - Float(3) / 16777216, 0.0078125, -0.0078125]
        var g = SplitMix(z: seed)
        while specials.count < count {
            let v = Float.random(in: -1.6...1.6, using: &g)
            if abs(v) >= 0.00390625 { specials.append(v) }
        }
        return specials
    }

    // MARK: - Header

    @Test("header: RIFF/WAVE, fmt (tag, channels, rate, byte rate, block align, bits), data size 0xFFFFFFFF",
          arguments: encodings, [(1, 16000), (2, 44100), (5, 48000)])
    func header(_ e: Enc, _ shape: (Int, Int)) throws {
        let shape = (channels: shape.0, rate: shape.1)
        let fmt = AudioFormat(sampleRate: shape.rate, channels: shape.channels, format: e.format)
        let bytes = try Self.streamed([Float](repeating: 0.25, count: 3 * shape.channels), fmt)
        #expect(Array(bytes[0..<4]) == Array("RIFF".utf8))
        #expect(Array(bytes[8..<16]) == Array("WAVEfmt ".utf8))
        let w = try WAVFile(bytes: bytes)
        let bytesPerSample = e.bits / 8
        #expect(w.riffSize == 0xFFFF_FFFF)
        #expect(w.fmtSize == 16)
        #expect(w.formatTag == (e.isFloat ? 3 : 1))
        #expect(Int(w.channels) == shape.channels)
        #expect(Int(w.sampleRate) == shape.rate)
        #expect(Int(w.byteRate) == shape.rate * shape.channels * bytesPerSample)
        #expect(Int(w.blockAlign) == shape.channels * bytesPerSample)
        #expect(Int(w.bitsPerSample) == e.bits)
        #expect(w.dataSize == 0xFFFF_FFFF)
        #expect(w.chunks == ["fmt ", "data"])
        #expect(bytes.count == 44 + 3 * shape.channels * bytesPerSample, "header is 44 bytes, then exactly the samples")
    }

    @Test("encodings StreamingWAV cannot stream are refused (nil), not mangled")
    func unsupported() {
        for minor in [SF_FORMAT_PCM_U8, SF_FORMAT_DOUBLE, SF_FORMAT_ULAW, SF_FORMAT_IMA_ADPCM] {
            let f = AudioFormat(sampleRate: 8000, channels: 1, format: Int32(SF_FORMAT_WAV) | Int32(minor))
            #expect(StreamingWAV(fd: 1, format: f) == nil, "minor 0x\(String(minor, radix: 16))")
        }
    }

    // MARK: - Samples versus libsndfile

    @Test("samples equal libsndfile's for in-range, clipped, ±Inf and ±0 values (3 channels, odd blocks)",
          arguments: encodings)
    func matchesLibsndfile(_ e: Enc) throws {
        let dir = TempDir()
        let fmt = AudioFormat(sampleRate: 16000, channels: 3, format: e.format)
        let x = Self.ordinaryValues(count: 3 * 700, seed: 42)
        let ref = try Self.sndfileWritten(x, fmt, dir: dir)
        let got = try WAVFile(bytes: try Self.streamed(x, fmt, block: 33))
        #expect(ref.formatTag == got.formatTag && ref.bitsPerSample == got.bitsPerSample)
        #expect(ref.data.count == x.count * e.bits / 8)
        #expect(got.data.count == ref.data.count)
        if got.data != ref.data {
            let a = e.isFloat ? got.floatBits.map(Int64.init) : got.intSamples.map(Int64.init)
            let b = e.isFloat ? ref.floatBits.map(Int64.init) : ref.intSamples.map(Int64.init)
            let bad = zip(a, b).enumerated().filter { $0.element.0 != $0.element.1 }
            let first: [String] = bad.prefix(5).map { (i, p) in "x[\(i)]=\(x[i]): stream \(p.0), libsndfile \(p.1)" }
            Issue.record("\(bad.count) of \(x.count) samples differ; first: \(first.joined(separator: "; "))")
        }
        // And both are the documented libsndfile rule (independent of either writer).
        if !e.isFloat {
            #expect(got.intSamples == x.map { sndfileQuantized($0, bits: e.bits) })
        } else {
            #expect(got.floatBits == x.map(\.bitPattern))
        }
    }

    @Test("float WAV keeps NaN, ±Inf and values beyond ±1 unchanged, like libsndfile")
    func floatSpecials() throws {
        let dir = TempDir()
        let fmt = AudioFormat(sampleRate: 16000, channels: 1, format: wavFloat)
        let x: [Float] = [.nan, -.nan, .infinity, -.infinity, 3.5, -7, Float.leastNonzeroMagnitude * 3, -0.0, .greatestFiniteMagnitude]
        let ref = try Self.sndfileWritten(x, fmt, dir: dir)
        let got = try WAVFile(bytes: try Self.streamed(x, fmt))
        #expect(ref.floatBits == x.map(\.bitPattern), "libsndfile changed float samples")
        #expect(got.floatBits == ref.floatBits)
    }

    @Test("AudioWriter's float → PCM rule (libsndfile's rounding, NaN → 0), pinned",
          arguments: intEncodings)
    func libsndfileQuantizer(_ e: Enc) throws {
        let dir = TempDir()
        let fmt = AudioFormat(sampleRate: 16000, channels: 1, format: e.format)
        let x = Self.edgeValues + [.nan, -.nan, .infinity, -.infinity, 1, -1, 1.5, -1.5]
        let ref = try Self.sndfileWritten(x, fmt, dir: dir).intSamples
        let model = x.map { sndfileQuantized($0, bits: e.bits) }
        for i in x.indices where ref[i] != model[i] {
            Issue.record("x=\(x[i]): libsndfile wrote \(ref[i]), the documented rule gives \(model[i])")
        }
        // The two facts that are easy to get wrong, stated directly:
        #expect(ref[x.count - 8] == 0 && ref[x.count - 7] == 0, "NaN → 0")
        #expect(ref[0] == 0, "−1e−12 → 0 (round first, then shift), not −1")
    }

    /// Values where floor(x·2^(bits−1)) and libsndfile's round-then-shift disagree for some width.
    static let edgeValues: [Float] = [
        -1e-12,                              // 16/24: libsndfile 0, floor −1
        -2e-10,                              // 16/24: libsndfile 0, floor −1   (x·2^31 ≈ −0.43)
        Float(-0.5) / 2147483648,            // tie → even (0)
        Float(255.5) / 2147483648,           // 24: libsndfile 1, floor 0
        Float(255.7) / 2147483648,           // 24: libsndfile 1, floor 0
        Float(4194303.5) / 2147483648,       // 16: libsndfile 64, floor 63
        -1e-9,                               // 32: libsndfile −2, floor −3
        Float(0.7) / 2147483648,             // 32: libsndfile 1, floor 0
        Float(-179.2) / 2147483648,          // 32: libsndfile −179, floor −180
        1e-9,                                // all agree
    ]

    @Test("values near a code boundary quantize like libsndfile (round at 2^31, then shift)",
          arguments: intEncodings)
    func edgeRounding(_ e: Enc) throws {
        let dir = TempDir()
        let fmt = AudioFormat(sampleRate: 16000, channels: 1, format: e.format)
        let x = Self.edgeValues
        let ref = try Self.sndfileWritten(x, fmt, dir: dir).intSamples
        let got = try WAVFile(bytes: try Self.streamed(x, fmt)).intSamples
        try #require(ref.count == x.count && got.count == x.count)
        for i in x.indices where got[i] != ref[i] {
            Issue.record("\(e.name) x=\(x[i]): stream \(got[i]), libsndfile \(ref[i])")
        }
    }

    @Test("NaN is written as 0 on both paths", arguments: intEncodings)
    func nanSamples(_ e: Enc) throws {
        let dir = TempDir()
        let fmt = AudioFormat(sampleRate: 16000, channels: 1, format: e.format)
        let x: [Float] = [0.5, .nan, -0.5, -.nan]
        let ref = try Self.sndfileWritten(x, fmt, dir: dir).intSamples
        let got = try WAVFile(bytes: try Self.streamed(x, fmt)).intSamples
        #expect(got[0] == ref[0] && got[2] == ref[2])
        #expect(got[1] == 0 && ref[1] == 0, "NaN: stream \(got[1]), file \(ref[1])")
        #expect(got[3] == 0 && ref[3] == 0, "-NaN: stream \(got[3]), file \(ref[3])")
    }

    // MARK: - Readers accept it

    @Test("libsndfile (AudioReader) reads the streamed bytes back: same format and samples as the file",
          arguments: encodings)
    func readableBySndfile(_ e: Enc) throws {
        let dir = TempDir()
        let fmt = AudioFormat(sampleRate: 22050, channels: 2, format: e.format)
        let x = Self.ordinaryValues(count: 2 * 1000, seed: 7)
        let refPath = dir.file("ref.wav"), streamPath = dir.file("stream.wav")
        try writeAudio(refPath, fmt, x)
        try Data(try Self.streamed(x, fmt, block: 64)).write(to: URL(fileURLWithPath: streamPath))
        let ref = try readAudio(refPath), got = try readAudio(streamPath)
        #expect(got.format == fmt)
        #expect(got.samples.count == x.count)
        #expect(got.samples.map(\.bitPattern) == ref.samples.map(\.bitPattern))
    }
}
