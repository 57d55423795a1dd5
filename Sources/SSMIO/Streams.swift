import CSndfile

/// Where frames come from: anything libsndfile reads (with or without a header) or text lines.
/// An enum rather than a protocol, so reading a block dispatches statically.
public enum FrameSource {
    case audio(AudioReader)
    case text(TextReader)
    /// Raw PCM from a live pipe (the daemon's FIFOs and stdin).
    case rawStream(RawStreamReader)

    public var format: AudioFormat {
        switch self {
        case .audio(let r): r.format
        case .text(let r): r.format
        case .rawStream(let r): r.format
        }
    }

    /// Frames in the input, when known (files with a header; not pipes, raw or text).
    public var frameCount: Int? {
        switch self {
        case .audio(let r): r.frameCount
        case .text, .rawStream: nil
        }
    }

    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(IOError) -> Int {
        switch self {
        case .audio(let r): try r.read(into: buffer, frames: frames)
        case .text(let r): try r.read(into: buffer, frames: frames)
        case .rawStream(let r): try r.read(into: buffer, frames: frames)
        }
    }

    /// After the input ended with `framesRead` frames: why it is shorter than its header says (a
    /// truncated file or stream), or nil.
    public func truncation(framesRead: Int) -> String? {
        guard case .audio(let r) = self else { return nil }
        if let t = r.truncation { return t }
        if let n = r.frameCount, framesRead < n { return "its header announces \(n) frames, it ended after \(framesRead)" }
        return nil
    }
}

/// Where frames go: anything libsndfile writes, or text lines.
public enum FrameSink {
    case audio(AudioWriter)
    case text(TextWriter)

    public var format: AudioFormat {
        switch self {
        case .audio(let w): w.format
        case .text(let w): w.format
        }
    }

    public func write(_ buffer: UnsafePointer<Float>, frames: Int) throws(IOError) {
        switch self {
        case .audio(let w): try w.write(buffer, frames: frames)
        case .text(let w): try w.write(buffer, frames: frames)
        }
    }

    public func close() throws(IOError) {
        switch self {
        case .audio(let w): try w.close()
        case .text(let w): try w.close()
        }
    }
}

/// "1 channel", "2 channels": a count and its noun, in the number it takes.
public func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

/// Output containers and encodings by the names users type (`--format`, `--encoding`, file
/// extensions).
public enum OutputFormats {
    /// Container names → libsndfile major formats ("text" is ssm-stream's own line format).
    public static let containers: [(name: String, format: Int32)] = [
        ("wav", Int32(SF_FORMAT_WAV)), ("flac", Int32(SF_FORMAT_FLAC)), ("ogg", Int32(SF_FORMAT_OGG)),
        ("aiff", Int32(SF_FORMAT_AIFF)), ("au", Int32(SF_FORMAT_AU)), ("caf", Int32(SF_FORMAT_CAF)),
        ("w64", Int32(SF_FORMAT_W64)), ("raw", Int32(SF_FORMAT_RAW)), ("text", AudioFormat.text),
    ]
    /// Encoding names → libsndfile minor formats.
    public static let encodings: [(name: String, format: Int32)] = [
        ("s8", Int32(SF_FORMAT_PCM_S8)), ("u8", Int32(SF_FORMAT_PCM_U8)), ("s16", Int32(SF_FORMAT_PCM_16)),
        ("s24", Int32(SF_FORMAT_PCM_24)), ("s32", Int32(SF_FORMAT_PCM_32)), ("f32", Int32(SF_FORMAT_FLOAT)),
        ("f64", Int32(SF_FORMAT_DOUBLE)), ("vorbis", Int32(SF_FORMAT_VORBIS)), ("opus", Int32(SF_FORMAT_OPUS)),
        ("ulaw", Int32(SF_FORMAT_ULAW)), ("alaw", Int32(SF_FORMAT_ALAW)),
    ]
    static let extensions: [String: String] = [
        "wav": "wav", "wave": "wav", "flac": "flac", "ogg": "ogg", "oga": "ogg", "opus": "ogg",
        "aif": "aiff", "aiff": "aiff", "aifc": "aiff", "au": "au", "snd": "au", "caf": "caf",
        "w64": "w64", "raw": "raw", "pcm": "raw", "txt": "text", "csv": "text", "tsv": "text", "log": "text",
    ]

    public static func container(named name: String) -> Int32? {
        containers.first { $0.name == name.lowercased() }?.format
    }

    public static func encoding(named name: String) -> Int32? {
        encodings.first { $0.name == name.lowercased() }?.format
    }

    /// The container a path's extension names ("out.flac" → FLAC), if any.
    public static func container(forPath path: String) -> Int32? {
        pathExtension(path).flatMap { extensions[$0] }.flatMap { container(named: $0) }
    }

    /// The part of the last path component after its last dot, lowercased ("a/Out.WAV" → "wav").
    static func pathExtension(_ path: String) -> String? {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return nil }
        return path[path.index(after: dot)...].lowercased()
    }

    /// A path's extension when it looks like one (1–5 letters and digits, a letter first) but names
    /// no container this build writes ("out.mp3" → "mp3"; "take.1" and "out" have none): such an
    /// output is refused rather than written in another container than its name says.
    public static func unknownExtension(_ path: String) -> String? {
        guard let ext = pathExtension(path), (1...5).contains(ext.count), ext.first!.isLetter,
              ext.allSatisfy({ $0.isLetter || $0.isNumber }), extensions[ext] == nil else { return nil }
        return ext
    }

    /// The extensions `container(forPath:)` knows, sorted.
    public static var knownExtensions: [String] { extensions.keys.sorted() }

    /// The input's format carried over to `container`: its encoding when the container can hold it
    /// (checked with libsndfile), else the container's usual one (Vorbis for OGG, 16-bit PCM else).
    public static func convert(_ f: AudioFormat, to container: Int32, encoding: Int32? = nil) -> AudioFormat {
        if container == AudioFormat.text { return AudioFormat(sampleRate: f.sampleRate, channels: f.channels, format: AudioFormat.text) }
        let endian = container == Int32(SF_FORMAT_RAW) ? Int32(SF_ENDIAN_LITTLE) : 0
        if let encoding { return AudioFormat(sampleRate: f.sampleRate, channels: f.channels, format: container | encoding | endian) }
        let sub = f.isText ? Int32(SF_FORMAT_FLOAT) : f.format & Int32(SF_FORMAT_SUBMASK)
        var candidate = AudioFormat(sampleRate: f.sampleRate, channels: f.channels, format: container | sub | endian)
        if candidate.isWritable { return candidate }
        candidate.format = container | (container == Int32(SF_FORMAT_OGG) ? Int32(SF_FORMAT_VORBIS) : Int32(SF_FORMAT_PCM_16)) | endian
        return candidate
    }
}

extension AudioFormat {
    /// Whether libsndfile can write this combination of container, encoding, rate and channels.
    public var isWritable: Bool {
        if isText { return true }
        var info = SF_INFO(frames: 0, samplerate: Int32(sampleRate), channels: Int32(channels),
                           format: format, sections: 0, seekable: 0)
        return sf_format_check(&info) != 0
    }

    /// Whether the container is headerless PCM.
    public var isRaw: Bool { !isText && format & Int32(SF_FORMAT_TYPEMASK) == Int32(SF_FORMAT_RAW) }
}
