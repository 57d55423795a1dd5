#if canImport(Glibc)
import Glibc
#endif

/// Headerless little-endian PCM from a live pipe (a FIFO or standard input), read with read(2):
/// a read returns the frames that have arrived (at least one) instead of waiting for a whole
/// block as libsndfile does, so a slow writer adds no latency; and a signal (the daemon's stop)
/// interrupts it. Bytes of an incomplete frame wait for the next read. Allocates only at init.
public final class RawStreamReader {
    public let path: String
    public let format: AudioFormat
    public let encoding: RawEncoding
    private let fd: Int32
    private let ownsFD: Bool
    private let bytesPerFrame: Int
    private let bytes: UnsafeMutableRawPointer
    private let capacity: Int
    private var held = 0   // bytes of a partial frame kept from the last read

    /// Opens `path` ("-": standard input); a FIFO read-write, so writers may come and go without
    /// the stream ending. Reads at most `maxFrames` frames at a time.
    public init(path: String, encoding: RawEncoding, sampleRate: Int, channels: Int, maxFrames: Int) throws(IOError) {
        self.path = path; self.encoding = encoding
        format = AudioFormat(sampleRate: sampleRate, channels: channels, format: encoding.format)
        if path == "-" {
            fd = 0; ownsFD = false
        } else {
            let f = open(path, (isFIFO(path) ? O_RDWR : O_RDONLY) | O_CLOEXEC)
            guard f >= 0 else { throw IOError(.noInput, "input '\(path)': \(String(cString: strerror(errno)))") }
            fd = f; ownsFD = true
        }
        bytesPerFrame = encoding.bytesPerSample * channels
        capacity = max(1, maxFrames) * bytesPerFrame
        bytes = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        if ownsFD { close(fd) }
        bytes.deallocate()
    }

    /// Reads up to `frames` frames (at least one unless the stream ended: then 0). A signal
    /// interrupting the wait throws `.ioError` with errno EINTR's message.
    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(IOError) -> Int {
        let want = min(frames * bytesPerFrame, capacity)
        while true {
            let n = Glibc.read(fd, bytes + held, want - held)
            if n < 0 {
                if errno == EINTR { throw IOError(.ioError, "input '\(path)': interrupted") }
                throw IOError(.ioError, "input '\(path)': read failed (\(String(cString: strerror(errno))))")
            }
            if n == 0 { return 0 }   // end of stream (a partial last frame is dropped)
            held += n
            let complete = held / bytesPerFrame
            if complete == 0 { continue }
            convert(complete * format.channels, into: buffer)
            let used = complete * bytesPerFrame
            held -= used
            if held > 0 { bytes.copyMemory(from: bytes + used, byteCount: held) }
            return complete
        }
    }

    private func convert(_ count: Int, into y: UnsafeMutablePointer<Float>) {
        switch encoding {
        case .s16le:
            let s = bytes.assumingMemoryBound(to: Int16.self)
            for i in 0..<count { y[i] = Float(Int16(littleEndian: s[i])) * (1 / 32768) }
        case .s32le:
            let s = bytes.assumingMemoryBound(to: Int32.self)
            for i in 0..<count { y[i] = Float(Int32(littleEndian: s[i])) * (1 / 2147483648) }
        case .f32le:
            let s = bytes.assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { y[i] = Float(bitPattern: UInt32(littleEndian: s[i])) }
        case .f64le:
            let s = bytes.assumingMemoryBound(to: UInt64.self)
            for i in 0..<count { y[i] = Float(Double(bitPattern: UInt64(littleEndian: s[i]))) }
        }
    }
}

extension RawEncoding {
    public var bytesPerSample: Int {
        switch self {
        case .s16le: 2
        case .s32le, .f32le: 4
        case .f64le: 8
        }
    }
}
