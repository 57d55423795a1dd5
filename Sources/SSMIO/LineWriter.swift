import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Text output to a file descriptor without per-line allocation: lines are built in a byte buffer
/// allocated once (numbers formatted by snprintf into it) and written with write(2).
///
/// Used for the text-frame sink (sensor logs) and the JSON Lines event stream; `flush()` hands
/// everything buffered to the kernel, so a pipe downstream sees it at once.
public final class LineWriter {
    public let name: String
    private let fd: Int32
    private let ownsFD: Bool
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0

    /// Opens `path` for writing (created, and truncated unless `append`), or standard output for "-".
    public init(path: String, append: Bool = false) throws(IOError) {
        if path == "-" {
            fd = 1; ownsFD = false; name = "stdout"
        } else {
            let f = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0o644)
            guard f >= 0 else { throw IOError(.cantCreate, "output '\(path)': \(String(cString: strerror(errno)))") }
            fd = f; ownsFD = true; name = path
        }
        capacity = 1 << 16
        buffer = .allocate(capacity: capacity)
    }

    /// A writer that keeps its lines in memory for `take()` (the daemon fans them out to sockets).
    public init(memoryNamed name: String) {
        fd = -1; ownsFD = false; self.name = name
        capacity = 1 << 12
        buffer = .allocate(capacity: capacity)
    }

    /// The bytes appended since the last `take()` (in-memory writers).
    public func take() -> [UInt8] {
        defer { count = 0 }
        return Array(UnsafeBufferPointer(start: buffer, count: count))
    }

    deinit {
        try? flush()
        if ownsFD { Glibc.close(fd) }
        buffer.deallocate()
    }

    /// Bytes waiting in the buffer.
    public var pending: Int { count }

    private func reserve(_ n: Int) {
        guard count + n > capacity else { return }
        // Only a line longer than the buffer gets here (the caller flushes between lines).
        var c = capacity
        while count + n > c { c *= 2 }
        let b = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        b.update(from: buffer, count: count)
        buffer.deallocate()
        buffer = b; capacity = c
    }

    public func append(byte: UInt8) { reserve(1); buffer[count] = byte; count += 1 }

    public func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        reserve(bytes.count)
        (buffer + count).update(from: bytes.baseAddress!, count: bytes.count)
        count += bytes.count
    }

    public func append(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { append($0) } }

    /// An ASCII literal (StaticString: no allocation).
    public func append(_ s: StaticString) {
        append(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// A signed integer in decimal.
    public func append(_ v: Int) {
        reserve(21)
        if v < 0 { buffer[count] = 45; count += 1 }
        var x = v.magnitude
        var i = count
        repeat { buffer[count] = UInt8(truncatingIfNeeded: x % 10) + 48; x /= 10; count += 1 } while x > 0
        var j = count - 1
        while i < j { let t = buffer[i]; buffer[i] = buffer[j]; buffer[j] = t; i += 1; j -= 1 }
    }

    /// A number as printf's "%.{digits}g" (non-finite values as JSON-safe `null` when `json`).
    public func append(_ x: Double, digits: Int = 9, json: Bool = false) {
        if json && !x.isFinite { append("null" as StaticString); return }
        reserve(32)
        let n = (buffer + count).withMemoryRebound(to: CChar.self, capacity: 32) { ssm_format_g($0, 32, x, Int32(digits)) }
        if n > 0 { count += Int(n) }
    }

    /// Writes the buffer out (retrying short writes and EINTR).
    public func flush() throws(IOError) {
        guard fd >= 0 else { return }
        var off = 0
        defer { count = 0 }
        while off < count {
            let r = Glibc.write(fd, buffer + off, count - off)
            if r < 0 {
                if errno == EINTR { continue }
                throw IOError(.ioError, "output '\(name)': write failed (\(String(cString: strerror(errno))))")
            }
            off += r
        }
    }

    /// Flushes when more than `threshold` bytes are waiting (bounded memory, few syscalls).
    public func flushIfFull(_ threshold: Int = 1 << 15) throws(IOError) {
        if count >= threshold { try flush() }
    }

    /// JSON string literal bytes of `s` (quoted, escaped), computed once at setup.
    public static func jsonString(_ s: String) -> [UInt8] {
        var out: [UInt8] = [34]
        for u in s.utf8 {
            switch u {
            case 34: out += [92, 34]
            case 92: out += [92, 92]
            case 10: out += [92, 110]
            case 13: out += [92, 114]
            case 9: out += [92, 116]
            case 0..<32:
                let hex = Array("0123456789abcdef".utf8)
                out += [92, 117, 48, 48, hex[Int(u >> 4)], hex[Int(u & 15)]]
            default: out.append(u)
            }
        }
        out.append(34)
        return out
    }
}
