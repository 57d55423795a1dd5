// Shared helpers of the SSMIO tests: temporary directories, whole-file read/write through the
// package's AudioReader/AudioWriter, a hand-written RIFF/WAVE parser (independent of libsndfile)
// and a reference model of libsndfile's float → integer conversion.

import CSndfile
import Foundation
import Testing
@testable import SSMIO

// MARK: - Temporary directories

/// A fresh directory under the system temp dir, removed when the value is released.
final class TempDir {
    let path: String
    init() {
        var template = Array((URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ssmio-test-XXXXXX").path).utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
        path = String(cString: p!)
    }
    func file(_ name: String) -> String { path + "/" + name }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

// MARK: - Formats

/// A libsndfile container | encoding word.
func sfFormat(_ major: Int32, _ minor: Int32) -> Int32 { major | minor }

let wavFloat = sfFormat(Int32(SF_FORMAT_WAV), Int32(SF_FORMAT_FLOAT))
let wav16 = sfFormat(Int32(SF_FORMAT_WAV), Int32(SF_FORMAT_PCM_16))
let wav24 = sfFormat(Int32(SF_FORMAT_WAV), Int32(SF_FORMAT_PCM_24))
let wav32 = sfFormat(Int32(SF_FORMAT_WAV), Int32(SF_FORMAT_PCM_32))
let flac16 = sfFormat(Int32(SF_FORMAT_FLAC), Int32(SF_FORMAT_PCM_16))
let flac24 = sfFormat(Int32(SF_FORMAT_FLAC), Int32(SF_FORMAT_PCM_24))
let flacFloat = sfFormat(Int32(SF_FORMAT_FLAC), Int32(SF_FORMAT_FLOAT))

/// Bits per sample of an integer PCM encoding, nil for float.
func pcmBits(_ format: Int32) -> Int? {
    switch format & Int32(SF_FORMAT_SUBMASK) {
    case Int32(SF_FORMAT_PCM_16): return 16
    case Int32(SF_FORMAT_PCM_24): return 24
    case Int32(SF_FORMAT_PCM_32): return 32
    default: return nil
    }
}

// MARK: - Whole-file I/O through the package

/// Writes interleaved `samples` with AudioWriter, in blocks of `block` frames.
func writeAudio(_ path: String, _ format: AudioFormat, _ samples: [Float], block: Int = 1000) throws(IOError) {
    let w = try AudioWriter(path: path, format: format)
    let frames = samples.count / format.channels
    var start = 0
    while start < frames {
        let n = min(block, frames - start)
        try samples.withUnsafeBufferPointer { (p) throws(IOError) in
            try w.write(p.baseAddress! + start * format.channels, frames: n)
        }
        start += n
    }
    try w.close()
}

/// Reads a whole file with AudioReader, in blocks of `block` frames.
func readAudio(_ path: String, block: Int = 777) throws(IOError) -> (format: AudioFormat, frameCount: Int?, samples: [Float]) {
    let r = try AudioReader(path: path)
    let ch = r.format.channels
    var out: [Float] = []
    var buf = [Float](repeating: .nan, count: block * ch)
    while true {
        let n = try buf.withUnsafeMutableBufferPointer { (p) throws(IOError) in try r.read(into: p.baseAddress!, frames: block) }
        if n == 0 { break }
        out += buf[0..<(n * ch)]
    }
    return (r.format, r.frameCount, out)
}

// MARK: - A RIFF/WAVE parser written out by hand (so header checks do not go through libsndfile)

struct WAVFile {
    var riffSize: UInt32
    var formatTag: UInt16
    var channels: UInt16
    var sampleRate: UInt32
    var byteRate: UInt32
    var blockAlign: UInt16
    var bitsPerSample: UInt16
    var fmtSize: UInt32
    var dataSize: UInt32
    /// The bytes after the data chunk header (to the end of the chunk, or of the buffer for a
    /// streaming WAV whose data size is 0xFFFFFFFF).
    var data: [UInt8]
    /// Chunk ids in file order.
    var chunks: [String]

    enum ParseError: Error { case short(String), notRIFF, notWAVE, noFmt, noData }

    init(bytes b: [UInt8]) throws {
        func u32(_ o: Int) throws -> UInt32 {
            guard o + 4 <= b.count else { throw ParseError.short("u32 at \(o)") }
            return UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
        }
        func u16(_ o: Int) throws -> UInt16 {
            guard o + 2 <= b.count else { throw ParseError.short("u16 at \(o)") }
            return UInt16(b[o]) | UInt16(b[o + 1]) << 8
        }
        func id(_ o: Int) throws -> String {
            guard o + 4 <= b.count else { throw ParseError.short("id at \(o)") }
            return String(decoding: b[o..<(o + 4)], as: UTF8.self)
        }
        guard try id(0) == "RIFF" else { throw ParseError.notRIFF }
        riffSize = try u32(4)
        guard try id(8) == "WAVE" else { throw ParseError.notWAVE }
        var o = 12
        var fmt: (UInt16, UInt16, UInt32, UInt32, UInt16, UInt16, UInt32)?
        chunks = []
        while o + 8 <= b.count {
            let cid = try id(o), size = try u32(o + 4)
            chunks.append(cid)
            if cid == "fmt " {
                fmt = (try u16(o + 8), try u16(o + 10), try u32(o + 12), try u32(o + 16), try u16(o + 20), try u16(o + 22), size)
            }
            if cid == "data" {
                guard let f = fmt else { throw ParseError.noFmt }
                (formatTag, channels, sampleRate, byteRate, blockAlign, bitsPerSample, fmtSize) = f
                dataSize = size
                let end = size == 0xFFFF_FFFF ? b.count : min(b.count, o + 8 + Int(size))
                data = Array(b[(o + 8)..<end])
                return
            }
            o += 8 + Int(size) + Int(size & 1)
        }
        throw ParseError.noData
    }

    init(path: String) throws {
        try self.init(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// The data bytes as little-endian signed integers of `bitsPerSample` bits.
    var intSamples: [Int32] {
        let w = Int(bitsPerSample) / 8
        return stride(from: 0, to: data.count - w + 1, by: w).map { o in
            var v: UInt32 = 0
            for k in 0..<w { v |= UInt32(data[o + k]) << (8 * k) }
            let shift = 32 - 8 * w
            return Int32(bitPattern: v << shift) >> shift  // sign-extend
        }
    }

    /// The data bytes as little-endian IEEE floats, as bit patterns.
    var floatBits: [UInt32] {
        stride(from: 0, to: data.count - 3, by: 4).map { o in
            UInt32(data[o]) | UInt32(data[o + 1]) << 8 | UInt32(data[o + 2]) << 16 | UInt32(data[o + 3]) << 24
        }
    }
}

// MARK: - libsndfile's float → integer PCM rule (as observed with libsndfile 1.2.0, clipping on)

/// What libsndfile 1.2 writes for float `x` into `bits`-bit PCM with SFC_SET_CLIPPING on:
/// it scales by 2^31 (exact in float), rounds to nearest-even (`lrintf`), clips to Int32 (NaN
/// becomes Int32.min — the x86 "integer indefinite"), then keeps the top `bits` bits by an
/// arithmetic shift (which rounds toward −∞). So for 16/24-bit it is floor(x·2^(bits−1)) except
/// within half a 2^−31 step below a code boundary, and for 32-bit it is round-to-nearest, not floor.
func sndfileQuantized(_ x: Float, bits: Int) -> Int32 {
    let full = 2147483648.0
    let t = Double(x) * full
    let q: Int32
    if t.isNaN { q = 0 }            // AudioWriter replaces NaN by 0 before libsndfile sees it
    else if t < -full { q = .min }
    else if t > full - 1 { q = .max }
    else { q = Int32(t.rounded(.toNearestOrEven)) }
    return q >> Int32(32 - bits)
}

// MARK: - Pipes

/// Reads everything from `fd` until EOF.
func readAll(fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}
