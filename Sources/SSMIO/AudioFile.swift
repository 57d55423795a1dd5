import CSndfile
#if canImport(Glibc)
import Glibc
#endif

/// An I/O problem, with the category that decides the exit code and a message a user can act on.
public struct IOError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case noInput, dataError, cantCreate, ioError }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// What an audio stream is: rate, channels and libsndfile's container/encoding word.
public struct AudioFormat: Sendable, Equatable {
    public var sampleRate: Int
    public var channels: Int
    /// libsndfile format (major container | minor encoding), e.g. WAV | PCM_16.
    public var format: Int32

    public init(sampleRate: Int, channels: Int, format: Int32) {
        self.sampleRate = sampleRate; self.channels = channels; self.format = format
    }

    public static let wav16 = Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
    public static let wavFloat = Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT)

    /// Not a libsndfile format: text lines, one frame per line (`TextReader`, `TextWriter`).
    public static let text: Int32 = 0
    public var isText: Bool { format == Self.text }

    /// "WAV, 16-bit PCM"-style names for messages.
    public var formatName: String {
        if isText { return "text lines" }
        func name(_ f: Int32) -> String {
            var info = SF_FORMAT_INFO(format: f, name: nil, extension: nil)
            guard sf_command(nil, Int32(SFC_GET_FORMAT_INFO), &info, Int32(MemoryLayout<SF_FORMAT_INFO>.size)) == 0,
                  let n = info.name else { return "0x" + String(f, radix: 16) }
            return String(cString: n)
        }
        return name(format & Int32(SF_FORMAT_TYPEMASK)) + ", " + name(format & Int32(SF_FORMAT_SUBMASK))
    }
}

/// Headerless little-endian PCM encodings (`--input-format`).
public enum RawEncoding: String, CaseIterable, Sendable {
    case s16le, s32le, f32le, f64le

    /// libsndfile's minor format for the encoding.
    public var subformat: Int32 {
        switch self {
        case .s16le: Int32(SF_FORMAT_PCM_16)
        case .s32le: Int32(SF_FORMAT_PCM_32)
        case .f32le: Int32(SF_FORMAT_FLOAT)
        case .f64le: Int32(SF_FORMAT_DOUBLE)
        }
    }

    /// The libsndfile format word that writes this encoding as raw little-endian PCM.
    public var format: Int32 { Int32(SF_FORMAT_RAW) | subformat | Int32(SF_ENDIAN_LITTLE) }
}

/// Reads any format libsndfile knows (WAV, FLAC, OGG/Vorbis, AIFF, AU, …) from a path or, for "-",
/// from standard input, as interleaved Float frames in [-1, 1).
public final class AudioReader {
    public let format: AudioFormat
    public let path: String
    /// Frames in the file, when known (for a pipe: what the header announces, if it does).
    public let frameCount: Int?
    /// What libsndfile noticed about a header that promises more data than the file holds (a
    /// truncated file), e.g. "data chunk of 64000 bytes, the file holds 29956"; nil if nothing.
    public let truncation: String?
    private let file: OpaquePointer

    /// Opens a file or stream whose header says what it holds.
    public convenience init(path: String) throws(IOError) {
        var info = SF_INFO()
        try self.init(path: path, info: &info)
    }

    /// Opens headerless interleaved PCM (`arecord -t raw`, `sox -t raw`) of a known encoding,
    /// rate and channel count.
    public convenience init(path: String, raw: RawEncoding, sampleRate: Int, channels: Int) throws(IOError) {
        var info = SF_INFO(frames: 0, samplerate: Int32(sampleRate), channels: Int32(channels),
                           format: Int32(SF_FORMAT_RAW) | raw.subformat | Int32(SF_ENDIAN_LITTLE), sections: 0, seekable: 0)
        try self.init(path: path, info: &info)
    }

    private init(path: String, info: inout SF_INFO) throws(IOError) {
        self.path = path
        let f: OpaquePointer?
        if path == "-" {
            f = sf_open_fd(0, Int32(SFM_READ), &info, 0)
        } else {
            if access(path, R_OK) != 0 {
                throw IOError(.noInput, "input '\(path)': \(String(cString: strerror(errno)))")
            }
            f = sf_open(path, Int32(SFM_READ), &info)
        }
        guard let f else {
            let why = String(cString: sf_strerror(nil))
            let hint = path == "-" ? "; from a pipe libsndfile reads WAV, AU and raw-header formats, not FLAC or OGG: convert first, e.g. sox in.flac -t wav -" : ""
            throw IOError(.dataError, "input '\(path == "-" ? "stdin" : path)': not a readable audio stream (\(why))\(hint)")
        }
        guard info.channels > 0, info.samplerate > 0 else {
            sf_close(f)
            throw IOError(.dataError, "input '\(path)': invalid header (\(counted(Int(info.channels), "channel")) at \(info.samplerate) Hz)")
        }
        file = f
        format = AudioFormat(sampleRate: Int(info.samplerate), channels: Int(info.channels), format: info.format)
        var frames = info.frames > 0 && info.frames < Int64.max / 2 ? Int(info.frames) : nil
        // A streamed header (arecord, sox, ssm-stream to a pipe) says "unknown length" with a data
        // size of 0xFFFFFFFF, which libsndfile turns into ~4 GiB worth of frames: not a length.
        // Headerless PCM from a FIFO or device reads as "as long as possible" too.
        if path == "-" || !Self.isRegularFile(path), let n = frames, let b = Self.bytesPerSample(info.format), n >= (1 << 31) / (b * Int(info.channels)) {
            frames = nil
        }
        frameCount = frames
        truncation = Self.truncation(f)
    }

    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Bytes per sample of the uncompressed encodings (nil for compressed ones).
    private static func bytesPerSample(_ format: Int32) -> Int? {
        switch format & Int32(SF_FORMAT_SUBMASK) {
        case Int32(SF_FORMAT_PCM_S8), Int32(SF_FORMAT_PCM_U8), Int32(SF_FORMAT_ULAW), Int32(SF_FORMAT_ALAW): 1
        case Int32(SF_FORMAT_PCM_16): 2
        case Int32(SF_FORMAT_PCM_24): 3
        case Int32(SF_FORMAT_PCM_32), Int32(SF_FORMAT_FLOAT): 4
        case Int32(SF_FORMAT_DOUBLE): 8
        default: nil
        }
    }

    /// libsndfile reads a truncated WAV/AIFF/CAF… file up to its end without an error, but its
    /// parse log says "data : 64000 (should be 29956)" for the audio chunk: find that line.
    private static func truncation(_ f: OpaquePointer) -> String? {
        var log = [CChar](repeating: 0, count: 8192)
        let n = sf_command(f, Int32(SFC_GET_LOG_INFO), &log, Int32(log.count))
        guard n > 0 else { return nil }
        let text = String(decoding: log.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "(" || $0 == ")" })
            // ["data", "64000", "should", "be", "29956"]
            guard fields.count >= 5, ["data", "SSND", "sdta"].contains(String(fields[0])),
                  fields[2] == "should", fields[3] == "be",
                  let declared = Int(fields[1]), let actual = Int(fields[4]), declared > actual else { continue }
            return "its \(fields[0]) chunk announces \(declared) bytes, the file holds \(actual)"
        }
        return nil
    }

    /// Reads up to `frames` frames into `buffer` (frames × channels floats). Returns the number read;
    /// 0 at the end of the stream.
    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(IOError) -> Int {
        let n = sf_readf_float(file, buffer, sf_count_t(frames))
        if n < 0 || (n == 0 && sf_error(file) != 0) {
            // A system error (EIO, a vanished device) is an I/O failure; anything else is the
            // data: a corrupt or truncated stream (e.g. "flac decoder lost sync").
            let name = path == "-" ? "stdin" : path
            if sf_error(file) == Int32(SF_ERR_SYSTEM) {
                throw IOError(.ioError, "input '\(name)': read failed (\(String(cString: sf_strerror(file))))")
            }
            throw IOError(.dataError, "input '\(name)': corrupt or truncated (\(String(cString: sf_strerror(file)).trimmingPrefix("Error : ")))")
        }
        return Int(n)
    }

    /// Back to the first frame, to read the file again (`[source] loop`). False when the input
    /// cannot seek (a pipe).
    public func rewind() -> Bool { sf_seek(file, 0, SEEK_SET) == 0 }

    deinit { sf_close(file) }
}

/// Writes interleaved Float frames to a path or, for "-", to standard output, in any format
/// libsndfile writes. Samples beyond [-1, 1] are clipped for integer encodings.
///
/// libsndfile cannot write WAV to a pipe (it seeks back to fill in the sizes), so WAV to a
/// non-seekable stdout is written here as a streaming WAV whose RIFF and data sizes are
/// 0xFFFFFFFF — what arecord and sox write to pipes, and what aplay, sox and ffmpeg read.
public final class AudioWriter {
    public let format: AudioFormat
    public let path: String
    private enum Backend { case sndfile(OpaquePointer), wavStream(StreamingWAV), closed }
    private var backend: Backend
    /// A copy of a block with NaN replaced (only used when a block holds NaN).
    private var clean: [Float] = []
    private var isIntegerEncoding: Bool {
        let sub = format.format & Int32(SF_FORMAT_SUBMASK)
        return sub != Int32(SF_FORMAT_FLOAT) && sub != Int32(SF_FORMAT_DOUBLE)
    }

    public init(path: String, format: AudioFormat) throws(IOError) {
        self.path = path
        self.format = format
        var info = SF_INFO(frames: 0, samplerate: Int32(format.sampleRate), channels: Int32(format.channels),
                           format: format.format, sections: 0, seekable: 0)
        guard sf_format_check(&info) != 0 else {
            throw IOError(.cantCreate, "output '\(path)': libsndfile cannot write \(format.formatName) with \(counted(format.channels, "channel")) at \(format.sampleRate) Hz")
        }
        if path == "-" && lseek(1, 0, SEEK_CUR) < 0 && format.format & Int32(SF_FORMAT_TYPEMASK) == Int32(SF_FORMAT_WAV) {
            guard let w = StreamingWAV(fd: 1, format: format) else {
                throw IOError(.cantCreate, "output 'stdout': \(format.formatName) cannot be streamed to a pipe (use 16-, 24- or 32-bit PCM or float WAV)")
            }
            backend = .wavStream(w)
            try w.writeHeader()
            return
        }
        if path == "-" && lseek(1, 0, SEEK_CUR) < 0 && format.format & Int32(SF_FORMAT_TYPEMASK) == Int32(SF_FORMAT_FLAC) {
            // libFLAC rewrites its STREAMINFO at the end, which a pipe turns into trailing garbage.
            throw IOError(.cantCreate, "output 'stdout': FLAC cannot be written to a pipe (libsndfile seeks back to finish it); write to a file, or pipe WAV")
        }
        let f: OpaquePointer? = path == "-" ? sf_open_fd(1, Int32(SFM_WRITE), &info, 0)
                                            : sf_open(path, Int32(SFM_WRITE), &info)
        guard let f else {
            throw IOError(.cantCreate, "output '\(path == "-" ? "stdout" : path)': cannot write (\(String(cString: sf_strerror(nil))))")
        }
        sf_command(f, Int32(SFC_SET_CLIPPING), nil, 1)
        backend = .sndfile(f)
    }

    /// Writes `frames` frames from `buffer` (frames × channels floats); a pipe downstream sees
    /// every block as soon as it is computed.
    public func write(_ buffer: UnsafePointer<Float>, frames: Int) throws(IOError) {
        let name = path == "-" ? "stdout" : path
        switch backend {
        case .sndfile(let f):
            let n = frames * format.channels
            let written: sf_count_t
            if isIntegerEncoding, UnsafeBufferPointer(start: buffer, count: n).contains(where: { $0.isNaN }) {
                // libsndfile would write NaN as the most negative code; write 0, as the pipe path does.
                if clean.count < n { clean = [Float](repeating: 0, count: n) }
                for i in 0..<n { clean[i] = buffer[i].isNaN ? 0 : buffer[i] }
                written = clean.withUnsafeBufferPointer { sf_writef_float(f, $0.baseAddress!, sf_count_t(frames)) }
            } else {
                written = sf_writef_float(f, buffer, sf_count_t(frames))
            }
            if written != frames {
                throw IOError(.ioError, "output '\(name)': write failed (\(String(cString: sf_strerror(f))))")
            }
            if path == "-" { sf_write_sync(f) }
        case .wavStream(let w):
            try w.write(buffer, samples: frames * format.channels)
        case .closed:
            throw IOError(.ioError, "output '\(name)': already closed")
        }
    }

    /// Finalizes the header (sizes) and closes. Called by deinit too.
    public func close() throws(IOError) {
        let b = backend
        backend = .closed
        if case .sndfile(let f) = b, sf_close(f) != 0 { throw IOError(.ioError, "output '\(path)': close failed") }
    }

    deinit { try? close() }
}

/// PCM or float WAV to a file descriptor that cannot seek.
final class StreamingWAV {
    let fd: Int32
    let format: AudioFormat
    let bytesPerSample: Int
    let isFloat: Bool
    private var bytes: [UInt8] = []

    init?(fd: Int32, format: AudioFormat) {
        self.fd = fd
        self.format = format
        switch format.format & Int32(SF_FORMAT_SUBMASK) {
        case Int32(SF_FORMAT_PCM_16): bytesPerSample = 2; isFloat = false
        case Int32(SF_FORMAT_PCM_24): bytesPerSample = 3; isFloat = false
        case Int32(SF_FORMAT_PCM_32): bytesPerSample = 4; isFloat = false
        case Int32(SF_FORMAT_FLOAT): bytesPerSample = 4; isFloat = true
        default: return nil
        }
    }

    func writeHeader() throws(IOError) {
        var h: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
        let ch = UInt16(format.channels), bps = UInt16(bytesPerSample)
        h += Array("RIFF".utf8); u32(0xFFFF_FFFF); h += Array("WAVE".utf8)
        h += Array("fmt ".utf8); u32(16)
        u16(isFloat ? 3 : 1); u16(ch); u32(UInt32(format.sampleRate))
        u32(UInt32(format.sampleRate) * UInt32(ch) * UInt32(bps)); u16(ch * bps); u16(bps * 8)
        h += Array("data".utf8); u32(0xFFFF_FFFF)
        try put(h)
    }

    func write(_ x: UnsafePointer<Float>, samples n: Int) throws(IOError) {
        bytes.removeAll(keepingCapacity: true)
        bytes.reserveCapacity(n * bytesPerSample)
        for i in 0..<n {
            let v = x[i]
            if isFloat {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
                continue
            }
            // libsndfile's WAV convention with clipping on, so pipe and file outputs are identical:
            // round x·2^31 to nearest, clip to Int32, keep the top `bits`. NaN is 0 (AudioWriter
            // cleans it on the libsndfile path too).
            let q = v.isNaN ? 0 : min(max((Double(v) * 2147483648).rounded(.toNearestOrEven), -2147483648), 2147483647)
            let c = Int64(q) >> (32 - 8 * bytesPerSample)
            for b in 0..<bytesPerSample { bytes.append(UInt8(truncatingIfNeeded: c >> (8 * b))) }
        }
        try put(bytes)
    }

    private func put(_ b: [UInt8]) throws(IOError) {
        var off = 0
        while off < b.count {
            let r = b.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, b.count - off) }
            if r < 0 {
                if errno == EINTR { continue }
                throw IOError(.ioError, "output 'stdout': write failed (\(String(cString: strerror(errno))))")
            }
            off += r
        }
    }
}


/// Whether `path` is a FIFO (named pipe).
public func isFIFO(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
}
