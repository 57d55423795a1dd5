#if canImport(Glibc)
import Glibc
#endif

/// Sensor logs as text: one frame per line, the channels separated by commas, semicolons or white
/// space. Empty lines and lines starting with '#' are skipped; a first line that is not numeric is
/// taken as a header (column names). The rate is not in the file: the caller gives it.
///
///     # accelerometer, 100 Hz
///     x,y,z
///     0.012,-0.981,0.044
///     0.010,-0.979,0.051
public final class TextReader {
    public let path: String
    public let format: AudioFormat
    /// Column names from a header line, if the file has one.
    public let header: [String]?
    /// Whether the input separated values with commas (the writer answers in kind).
    public let commaSeparated: Bool
    private let file: UnsafeMutablePointer<FILE>
    private let ownsFile: Bool
    /// getline's buffer, allocated once large enough for any sane line (getline grows it for longer
    /// ones), so reading allocates nothing per line.
    /// The current line's bytes (maxLineBytes + 2 of them, allocated by the first nextLine).
    private var line: UnsafeMutablePointer<CChar>? = nil
    private var lineCapacity = 0
    private(set) public var lineNumber = 0
    /// The first data line, parsed while opening (to learn the channel count).
    private var pending: [Float]
    private var hasPending = true
    /// A bad line found after some good frames of a block: those are returned first, the error
    /// on the next call (so the frames before a bad line are processed, not lost).
    private var deferredError: IOError? = nil
    /// Whether the input is a pipe, terminal or socket: then `read` returns the lines that have
    /// arrived instead of waiting for a whole block (a 100 Hz sensor must not wait 2.56 s for 256).
    private let isLive: Bool

    /// Opens `path` ("-" for stdin) and reads up to the first data line. `channels`, when given,
    /// must match the number of values on each line. `holdFIFO`: a FIFO is opened read-write, so
    /// writers may come and go without ending the stream.
    /// The most channels a text frame may have (as for raw input, `--channels`), and the longest
    /// line: past either the input is refused before anything is allocated for its channels.
    public static let maxChannels = 1024
    public static let maxLineBytes = 256 * 1024

    public init(path: String, sampleRate: Int, channels: Int? = nil, holdFIFO: Bool = false) throws(IOError) {
        self.path = path
        let name = path == "-" ? "stdin" : path
        if path == "-" {
            guard let f = fdopen(dup(0), "r") else { throw IOError(.noInput, "input 'stdin': \(String(cString: strerror(errno)))") }
            file = f; ownsFile = true
        } else {
            guard let f = fopen(path, holdFIFO && isFIFO(path) ? "r+" : "r") else { throw IOError(.noInput, "input '\(path)': \(String(cString: strerror(errno)))") }
            file = f; ownsFile = true
        }
        var header: [String]? = nil
        var first: [Float]? = nil
        var comma = false
        while first == nil {
            guard let text = Self.nextLine(file, &line, &lineCapacity, &lineNumber) else { break }
            if text.isEmpty { continue }
            if let e = Self.tooLong(text, name, lineNumber) { fclose(file); free(line); throw e }
            if text.contains(UInt8(ascii: ",")) { comma = true }
            var values: [Float] = []
            switch Self.parse(text, into: &values) {
            case .ok:
                first = values
            case .notNumber(let token):
                guard header == nil && Self.looksLikeHeader(text) else {
                    fclose(file); free(line)   // deinit does not run when init throws
                    throw IOError(.dataError, "input '\(name)' line \(lineNumber): '\(token)' is not a number")
                }
                header = Self.fields(text)
            }
        }
        guard let first else {
            fclose(file); free(line)
            throw IOError(.dataError, "input '\(name)' holds no data lines (one frame per line, channels separated by commas or spaces)")
        }
        if first.count > Self.maxChannels {
            fclose(file); free(line)
            throw IOError(.dataError, "input '\(name)' line \(lineNumber): \(first.count) values, more than the \(Self.maxChannels) channels a frame may have")
        }
        if let channels, channels != first.count {
            fclose(file); free(line)
            throw IOError(.dataError, "input '\(name)' line \(lineNumber): \(first.count) value(s), --channels says \(channels)")
        }
        if let header, header.count != first.count {
            fclose(file); free(line)
            throw IOError(.dataError, "input '\(name)': the header names \(header.count) column(s), line \(lineNumber) has \(first.count) value(s)")
        }
        self.header = header
        commaSeparated = comma
        var st = stat()
        isLive = fstat(fileno(file), &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG
        pending = first
        format = AudioFormat(sampleRate: sampleRate, channels: first.count, format: AudioFormat.text)
    }

    deinit {
        if ownsFile { fclose(file) }
        free(line)
    }

    /// Reads up to `frames` frames into `buffer` (frames × channels floats); 0 at the end.
    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(IOError) -> Int {
        let ch = format.channels
        if let e = deferredError { deferredError = nil; throw e }
        var n = 0
        if hasPending && frames > 0 {
            for c in 0..<ch { buffer[c] = pending[c] }
            hasPending = false
            n = 1
        }
        while n < frames {
            if n > 0 && isLive && !lineReady() { break }
            guard let text = Self.nextLine(file, &line, &lineCapacity, &lineNumber) else {
                if ferror(file) != 0 { throw IOError(.ioError, "input '\(path)': read failed (\(String(cString: strerror(errno))))") }
                break
            }
            if text.isEmpty { continue }
            if let e = Self.tooLong(text, path == "-" ? "stdin" : path, lineNumber) {
                if n > 0 { deferredError = e; return n }
                throw e
            }
            var got = 0
            var bad: String? = nil
            Self.scan(text) { token, value in
                guard bad == nil else { return }
                guard let value else { bad = token(); return }
                if got < ch { buffer[n * ch + got] = value }
                got += 1
            }
            let name = path == "-" ? "stdin" : path
            if let bad {
                deferredError = IOError(.dataError, "input '\(name)' line \(lineNumber): '\(bad)' is not a number")
            } else if got != ch {
                deferredError = IOError(.dataError, "input '\(name)' line \(lineNumber): \(got) value(s), expected \(ch) (as on the first data line)")
            }
            if deferredError != nil {
                if n > 0 { return n }
                let e = deferredError!
                deferredError = nil
                throw e
            }
            n += 1
        }
        return n
    }

    /// Whether the next line can be read without waiting: bytes in stdio's buffer, or in the pipe.
    private func lineReady() -> Bool {
        if file.pointee._IO_read_ptr != file.pointee._IO_read_end { return true }
        var p = pollfd(fd: fileno(file), events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0
    }

    // MARK: - Lines and fields

    /// The next line without its newline and surrounding blanks, skipping comments; nil at EOF.
    private static func nextLine(_ f: UnsafeMutablePointer<FILE>, _ line: inout UnsafeMutablePointer<CChar>?,
                                 _ cap: inout Int, _ number: inout Int) -> UnsafeBufferPointer<UInt8>? {
        while true {
            // Like getline, but a line keeps at most maxLineBytes + 1 bytes in memory (the rest is
            // read and dropped, and tooLong refuses the line): a 10 GB line costs no 10 GB.
            if cap < maxLineBytes + 2 {   // the first line (cap starts at 0, line at nil)
                cap = maxLineBytes + 2
                line = UnsafeMutableRawPointer(malloc(cap))?.assumingMemoryBound(to: CChar.self)
                if line == nil { return nil }
            }
            var r = 0
            var c = getc_unlocked(f)
            if c == EOF { return nil }
            while c != EOF {
                if r <= maxLineBytes { line![r] = CChar(truncatingIfNeeded: c); r += 1 }
                if c == 10 { break }
                c = getc_unlocked(f)
            }
            number += 1
            let bytes = UnsafeRawPointer(line!).assumingMemoryBound(to: UInt8.self)
            var lo = 0, hi = r
            while lo < hi && isBlank(bytes[lo]) { lo += 1 }
            while hi > lo && (isBlank(bytes[hi - 1]) || bytes[hi - 1] == 10 || bytes[hi - 1] == 13) { hi -= 1 }
            if lo < hi && bytes[lo] == UInt8(ascii: "#") { continue }
            return UnsafeBufferPointer(start: bytes + lo, count: hi - lo)
        }
    }

    /// The error for a line longer than `maxLineBytes`, if it is.
    private static func tooLong(_ text: UnsafeBufferPointer<UInt8>, _ name: String, _ number: Int) -> IOError? {
        guard text.count > maxLineBytes else { return nil }
        return IOError(.dataError, "input '\(name)' line \(number) is longer than the \(maxLineBytes) bytes a line may have")
    }

    private static func isBlank(_ b: UInt8) -> Bool { b == 32 || b == 9 }
    private static func isSeparator(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 44 || b == 59 || b == 13 || b == 10 }

    /// Calls `body` for each field: its text (lazily) and its value, or nil when it is not a number.
    /// Fields are separated by runs of blanks with at most one comma or semicolon among them.
    private static func scan(_ text: UnsafeBufferPointer<UInt8>, _ body: (() -> String, Float?) -> Void) {
        var i = 0
        let n = text.count
        while i < n {
            while i < n && isSeparator(text[i]) { i += 1 }
            if i >= n { break }
            var j = i
            while j < n && !isSeparator(text[j]) { j += 1 }
            let start = i, end = j
            // strtof needs a terminated string: fields are short, copy into a stack buffer.
            var value: Float? = nil
            // Decimal only: strtof would also read hexadecimal ("0x10" as 16, "0x1p3" as 8).
            let hex = text[start..<end].contains { $0 == UInt8(ascii: "x") || $0 == UInt8(ascii: "X") }
            if end - start < 64 && !hex {
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: 65) { tmp in
                    for k in start..<end { tmp[k - start] = CChar(bitPattern: text[k]) }
                    tmp[end - start] = 0
                    var stop: UnsafeMutablePointer<CChar>? = nil
                    let v = strtof(tmp.baseAddress!, &stop)
                    if let stop, stop - tmp.baseAddress! == end - start { value = v }
                }
            }
            body({ String(decoding: UnsafeBufferPointer(rebasing: text[start..<end]), as: UTF8.self) }, value)
            i = j
        }
    }

    private enum Parse { case ok, notNumber(String) }

    private static func parse(_ text: UnsafeBufferPointer<UInt8>, into values: inout [Float]) -> Parse {
        var bad: String? = nil
        scan(text) { token, v in
            if bad != nil { return }
            if let v { values.append(v) } else { bad = token() }
        }
        return bad.map { .notNumber($0) } ?? .ok
    }

    private static func fields(_ text: UnsafeBufferPointer<UInt8>) -> [String] {
        var out: [String] = []
        scan(text) { token, _ in out.append(token()) }
        return out
    }

    private static func looksLikeHeader(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
        var numeric = 0
        scan(text) { _, v in if v != nil { numeric += 1 } }
        return numeric == 0
    }
}

/// Writes frames as text lines (the sensor-log format `TextReader` reads), 9 significant digits —
/// enough to carry a Float exactly.
public final class TextWriter {
    public let format: AudioFormat
    private let out: LineWriter
    private let separator: StaticString

    public init(path: String, format: AudioFormat, commaSeparated: Bool, header: [String]? = nil) throws(IOError) {
        self.format = format
        out = try LineWriter(path: path)
        separator = commaSeparated ? "," : " "
        if let header {
            for (i, h) in header.enumerated() {
                if i > 0 { out.append(separator) }
                out.append(Array(h.utf8))
            }
            out.append(byte: 10)
        }
    }

    public func write(_ buffer: UnsafePointer<Float>, frames: Int) throws(IOError) {
        let ch = format.channels
        for k in 0..<frames {
            for c in 0..<ch {
                if c > 0 { out.append(separator) }
                out.append(Double(buffer[k * ch + c]))
            }
            out.append(byte: 10)
            try out.flushIfFull()
        }
        try out.flush()
    }

    public func close() throws(IOError) { try out.flush() }
}
