// SafeTensors.swift — a dependency-free reader/writer for the safetensors format.
//
// Format (https://github.com/huggingface/safetensors):
//
//     [8 bytes]  N, little-endian UInt64: length of the JSON header
//     [N bytes]  UTF-8 JSON object: tensor name → {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
//                plus an optional "__metadata__" object of string → string
//     [rest]     data section; each tensor's bytes are data[begin..<end], little-endian, row-major
//
// Everything read from a file is treated as untrusted: every size and offset is range-checked with
// overflow-reporting arithmetic before it is used, so a malformed or hostile file produces a
// `SafeTensorsError` naming the problem and never a trap or an out-of-bounds access. (This matters
// doubly because the SSM target is built with `-Ounchecked` in release, where the stdlib's own
// bounds and overflow checks are removed.)

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Public types

/// Element type of a tensor, spelled as in the safetensors header.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// One tensor's entry in the header, validated against the file.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    /// Dimensions, row-major (last index fastest). `[]` is a scalar (one element).
    public let shape: [Int]
    /// The tensor's bytes within the data section (the part of the file after the header).
    public let byteRange: Range<Int>

    /// Number of elements: the product of `shape` (1 for a scalar, 0 if any dimension is 0).
    public var count: Int { elementCount }

    private let elementCount: Int

    /// `count` must be the product of `shape`, as computed (overflow-checked) by the parser.
    init(name: String, dtype: DType, shape: [Int], count: Int, byteRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.elementCount = count
        self.byteRange = byteRange
    }
}

/// A safetensors failure: a malformed file, a missing tensor, a non-finite value, an I/O error, or
/// (from `serializeChecked`) inconsistent input. `message` names the problem precisely.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

// MARK: - SafeTensors

/// A parsed, validated safetensors file held in memory.
///
/// ```swift
/// let st = try SafeTensors(contentsOfFile: "model.safetensors")
/// let d = try st.finiteFloats("param.D")            // any float/int dtype, converted to Float
/// let bytes = SafeTensors.serialize([(name: "x", shape: [2], values: [1, 2])], metadata: [:])
/// ```
public struct SafeTensors: Sendable {
    /// Header sizes above this are refused (the reference implementation uses the same limit).
    public static let maxHeaderBytes = 100 * 1024 * 1024

    /// The header's `"__metadata__"` (string → string); empty when absent.
    public let metadata: [String: String]
    /// Every tensor in the file, by name.
    public let tensors: [String: TensorInfo]
    /// Tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    /// The whole file.
    private let bytes: [UInt8]
    /// Offset of the data section within `bytes` (8 + header length).
    private let dataStart: Int

    // MARK: Reading

    /// Parses and validates a safetensors file, keeping `bytes` for later tensor access.
    ///
    /// Checks: the 8-byte length prefix and the header fit the file (header ≤ 100 MiB); the header is
    /// UTF-8 JSON whose top level is an object; `__metadata__`, if present, maps strings to strings;
    /// every tensor has a known dtype, non-negative integer dims, and `data_offsets` `[begin, end]`
    /// with `0 ≤ begin ≤ end ≤` data-section size and `end - begin` equal to the shape's byte size;
    /// no tensor name appears twice; no two tensors' byte ranges overlap; the data section ends
    /// where the last tensor ends (no trailing bytes). Unused bytes ("holes") between tensors are
    /// tolerated.
    public init(bytes: [UInt8]) throws(SafeTensorsError) {
        let fileSize = bytes.count
        guard fileSize >= 8 else {
            throw SafeTensorsError("safetensors: file is \(fileSize) bytes, shorter than the 8-byte header length")
        }
        var headerLength64: UInt64 = 0
        for i in 0..<8 { headerLength64 |= UInt64(bytes[i]) << UInt64(8 * i) }
        guard headerLength64 <= UInt64(Self.maxHeaderBytes) else {
            throw SafeTensorsError("safetensors: header length \(headerLength64) exceeds the 100 MiB limit (is this a safetensors file?)")
        }
        let headerLength = Int(headerLength64)
        guard headerLength <= fileSize - 8 else {
            throw SafeTensorsError("safetensors: header length \(headerLength) exceeds the file (\(fileSize) bytes)")
        }
        let headerEnd = 8 + headerLength
        let dataSize = fileSize - headerEnd

        if let bad = Self.firstInvalidUTF8Offset(bytes, 8..<headerEnd) {
            throw SafeTensorsError("safetensors: header is not valid UTF-8 (bad byte at offset \(bad) of the header)")
        }
        let root: JSON
        do throws(JSONParseError) {
            var parser = JSONParser(bytes: bytes, range: 8..<headerEnd)
            root = try parser.parseDocument()
        } catch {
            throw SafeTensorsError("safetensors: header is not valid JSON: \(error.reason) at byte \(error.offset) of the header")
        }
        guard case .object(let members) = root else {
            throw SafeTensorsError("safetensors: header must be a JSON object, found \(root.kind)")
        }

        var metadata: [String: String] = [:]
        var sawMetadata = false
        var tensors: [String: TensorInfo] = [:]
        var inHeaderOrder: [TensorInfo] = []
        inHeaderOrder.reserveCapacity(members.count)
        for (key, value) in members {
            if key == "__metadata__" {
                guard !sawMetadata else {
                    throw SafeTensorsError("safetensors: '__metadata__' appears more than once in the header")
                }
                sawMetadata = true
                metadata = try Self.parseMetadata(value)
                continue
            }
            guard tensors[key] == nil else {
                throw SafeTensorsError("safetensors: tensor '\(key)' appears more than once in the header")
            }
            let info = try Self.parseTensor(name: key, value, dataSize: dataSize)
            tensors[key] = info
            inHeaderOrder.append(info)
        }
        try Self.checkNoOverlap(inHeaderOrder)
        // As the reference implementation: the data section ends where the last tensor does
        // (bytes appended after it would be silently ignored, and are usually a damaged file).
        let used = inHeaderOrder.map(\.byteRange.upperBound).max() ?? 0
        guard used == dataSize else {
            throw SafeTensorsError("safetensors: \(dataSize - used) byte(s) after the last tensor's data (the data section is \(dataSize) bytes, the tensors end at \(used)): the file is damaged or was appended to")
        }

        self.metadata = metadata
        self.tensors = tensors
        self.bytes = bytes
        self.dataStart = headerEnd
    }

    /// Reads and parses the file at `path`. Errors are prefixed with the path.
    public init(contentsOfFile path: String) throws(SafeTensorsError) {
        let data = try Self.fileBytes(path)
        do throws(SafeTensorsError) {
            try self.init(bytes: data)
        } catch {
            let prefix = "safetensors: "
            let detail = error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message
            throw SafeTensorsError("safetensors: \(path): \(detail)")
        }
    }

    /// The bytes of the model file at `path`. Only a regular file is read: a device (/dev/zero
    /// never ends), a FIFO or a directory is named for what it is instead of failing in the read.
    public static func fileBytes(_ path: String) throws(SafeTensorsError) -> [UInt8] {
        var st = stat()
        if stat(path, &st) == 0 {
            let kind = st.st_mode & S_IFMT
            if kind != S_IFREG {
                let what = kind == S_IFDIR ? "a directory" : kind == S_IFCHR ? "a character device"
                    : kind == S_IFBLK ? "a block device" : kind == S_IFIFO ? "a FIFO" : kind == S_IFSOCK ? "a socket" : "not a regular file"
                throw SafeTensorsError("safetensors: '\(path)' is \(what), not a model file")
            }
        }
        do {
            return [UInt8](try Data(contentsOf: URL(filePath: path)))
        } catch {
            throw SafeTensorsError("safetensors: cannot read '\(path)': \(Self.describeIOError(error))")
        }
    }

    /// The header entry for `name`.
    public func info(_ name: String) throws(SafeTensorsError) -> TensorInfo {
        guard let info = tensors[name] else {
            throw SafeTensorsError("safetensors: missing tensor '\(name)'")
        }
        return info
    }

    /// The header entry for `name`, which must have exactly `shape`.
    public func info(_ name: String, shape: [Int]) throws(SafeTensorsError) -> TensorInfo {
        let info = try info(name)
        guard info.shape == shape else {
            throw SafeTensorsError("safetensors: tensor '\(name)' has shape \(info.shape), expected \(shape)")
        }
        return info
    }

    /// The raw little-endian bytes of tensor `name` (a slice of the file: its indices are file offsets).
    public func rawBytes(_ name: String) throws(SafeTensorsError) -> ArraySlice<UInt8> {
        let info = try info(name)
        return bytes[(dataStart + info.byteRange.lowerBound)..<(dataStart + info.byteRange.upperBound)]
    }

    /// Tensor `name` as `Float`, row-major. F32 is copied bit for bit; F64, I64 and I32 are rounded to
    /// nearest; F16 and BF16 convert exactly; I16/I8/U8 are exact; BOOL gives 0 or 1. F64 values beyond
    /// the `Float` range become ±inf (use `finiteFloats` to refuse them).
    public func floats(_ name: String) throws(SafeTensorsError) -> [Float] {
        convertToFloat(try info(name))
    }

    /// Like `floats(_:)`, but the tensor must have exactly `shape`.
    public func floats(_ name: String, shape: [Int]) throws(SafeTensorsError) -> [Float] {
        convertToFloat(try info(name, shape: shape))
    }

    /// Tensor `name` as `Double`, row-major. Exact for every dtype except I64 beyond ±2^53.
    public func doubles(_ name: String) throws(SafeTensorsError) -> [Double] {
        convertToDouble(try info(name))
    }

    /// Like `doubles(_:)`, but the tensor must have exactly `shape`.
    public func doubles(_ name: String, shape: [Int]) throws(SafeTensorsError) -> [Double] {
        convertToDouble(try info(name, shape: shape))
    }

    /// Like `floats(_:)`, but refuses a tensor holding NaN or ±inf, or (for F64) a finite value outside
    /// the `Float` range, naming the first offending flat index.
    public func finiteFloats(_ name: String) throws(SafeTensorsError) -> [Float] {
        let info = try info(name)
        let values = convertToFloat(info)
        try checkFinite(values, info)
        return values
    }

    /// Like `finiteFloats(_:)`, but the tensor must have exactly `shape`.
    public func finiteFloats(_ name: String, shape: [Int]) throws(SafeTensorsError) -> [Float] {
        let info = try info(name, shape: shape)
        let values = convertToFloat(info)
        try checkFinite(values, info)
        return values
    }

    /// Like `doubles(_:)`, but refuses NaN or ±inf, naming the first offending flat index.
    public func finiteDoubles(_ name: String) throws(SafeTensorsError) -> [Double] {
        let info = try info(name)
        let values = convertToDouble(info)
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            let v = values[i]
            throw SafeTensorsError("safetensors: tensor '\(name)' has a non-finite value (\(v.isNaN ? "nan" : "\(v)")) at index \(i)")
        }
        return values
    }

    // MARK: Writing

    /// Serializes tensors to safetensors bytes: `tensors` as F32 and `doubles` as F64, all sorted by name
    /// and laid out contiguously in that order; the JSON header is padded with trailing spaces so the
    /// data section starts at an 8-byte-aligned file offset; `metadata` is written as `__metadata__`
    /// when non-empty.
    ///
    /// The input is the caller's own data, so inconsistencies (a shape whose element count differs
    /// from `values.count`, a negative dimension, a duplicate name, the reserved name `__metadata__`)
    /// are programming errors and stop the program with the problem named; use `serializeChecked` to
    /// get a thrown `SafeTensorsError` instead.
    public static func serialize(_ tensors: [(name: String, shape: [Int], values: [Float])],
                                 doubles: [(name: String, shape: [Int], values: [Double])] = [],
                                 halves: [(name: String, shape: [Int], values: [Float])] = [],
                                 metadata: [String: String] = [:]) -> [UInt8] {
        do throws(SafeTensorsError) {
            return try serializeChecked(tensors, doubles: doubles, halves: halves, metadata: metadata)
        } catch {
            // fatalError (not precondition) so the check survives -Ounchecked.
            fatalError(error.message)
        }
    }

    /// `serialize`, throwing on inconsistent input instead of stopping.
    public static func serializeChecked(_ tensors: [(name: String, shape: [Int], values: [Float])],
                                        doubles: [(name: String, shape: [Int], values: [Double])] = [],
                                        halves: [(name: String, shape: [Int], values: [Float])] = [],
                                        metadata: [String: String] = [:]) throws(SafeTensorsError) -> [UInt8] {
        enum Payload { case f32([Float]), f64([Double]), f16([Float16]) }
        var entries: [(name: String, shape: [Int], payload: Payload)] = []
        entries.reserveCapacity(tensors.count + doubles.count + halves.count)
        for t in tensors { entries.append((t.name, t.shape, .f32(t.values))) }
        for t in doubles { entries.append((t.name, t.shape, .f64(t.values))) }
        // F16: rounded to nearest; a value beyond ±65504 would become infinite, which is refused.
        for t in halves {
            if let i = t.values.firstIndex(where: { !$0.isFinite || Swift.abs($0) > 65504 }) {
                throw SafeTensorsError("safetensors: tensor '\(t.name)': value \(t.values[i]) at index \(i) does not fit in F16 (±65504)")
            }
            entries.append((t.name, t.shape, .f16(t.values.map { Float16($0) })))
        }
        entries.sort { $0.name < $1.name }

        // Validate and compute the layout.
        var offsets: [Range<Int>] = []
        offsets.reserveCapacity(entries.count)
        var cursor = 0
        for (i, e) in entries.enumerated() {
            if e.name == "__metadata__" {
                throw SafeTensorsError("safetensors: '__metadata__' is reserved and cannot name a tensor")
            }
            if i > 0 && entries[i - 1].name == e.name {
                throw SafeTensorsError("safetensors: tensor '\(e.name)' given more than once")
            }
            let (valueCount, byteSize): (Int, Int)
            switch e.payload {
            case .f32(let v): (valueCount, byteSize) = (v.count, 4)
            case .f64(let v): (valueCount, byteSize) = (v.count, 8)
            case .f16(let v): (valueCount, byteSize) = (v.count, 2)
            }
            var count = 1
            for d in e.shape {
                guard d >= 0 else {
                    throw SafeTensorsError("safetensors: tensor '\(e.name)': shape \(e.shape) has a negative dimension (\(d))")
                }
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw SafeTensorsError("safetensors: tensor '\(e.name)': shape \(e.shape) has too many elements")
                }
                count = p
            }
            guard count == valueCount else {
                throw SafeTensorsError("safetensors: tensor '\(e.name)': shape \(e.shape) has \(count) elements but \(valueCount) values were given")
            }
            // count == values.count, so this cannot overflow for any array that fits in memory.
            let end = cursor + count * byteSize
            offsets.append(cursor..<end)
            cursor = end
        }

        // Header JSON, keys in a fixed order so output is deterministic.
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            for (j, key) in metadata.keys.sorted().enumerated() {
                if j > 0 { header += "," }
                header += jsonQuoted(key) + ":" + jsonQuoted(metadata[key] ?? "")
            }
            header += "}"
            first = false
        }
        for (e, r) in zip(entries, offsets) {
            if !first { header += "," }
            first = false
            let dtype: String
            switch e.payload {
            case .f32: dtype = "F32"
            case .f64: dtype = "F64"
            case .f16: dtype = "F16"
            }
            let shape = e.shape.map(String.init).joined(separator: ",")
            header += "\(jsonQuoted(e.name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(r.lowerBound),\(r.upperBound)]}"
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        let padding = (8 - headerBytes.count % 8) % 8
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))

        var out: [UInt8] = []
        out.reserveCapacity(8 + headerBytes.count + cursor)
        let n = UInt64(headerBytes.count)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> UInt64(8 * i))) }
        out.append(contentsOf: headerBytes)
        for e in entries {
            switch e.payload {
            case .f32(let v):
                #if _endian(little)
                v.withUnsafeBytes { out.append(contentsOf: $0) }
                #else
                for x in v { appendLittleEndian(x.bitPattern, to: &out) }
                #endif
            case .f64(let v):
                #if _endian(little)
                v.withUnsafeBytes { out.append(contentsOf: $0) }
                #else
                for x in v { appendLittleEndian(x.bitPattern, to: &out) }
                #endif
            case .f16(let v):
                for x in v { appendLittleEndian(x.bitPattern, to: &out) }
            }
        }
        return out
    }

    /// Writes `bytes` (e.g. from `serialize`) to `path`, atomically (via a temporary file and rename).
    public static func write(_ bytes: [UInt8], toFile path: String) throws(SafeTensorsError) {
        do {
            try Data(bytes).write(to: URL(filePath: path), options: .atomic)
        } catch {
            throw SafeTensorsError("safetensors: cannot write '\(path)': \(describeIOError(error))")
        }
    }

    // MARK: F16 / BF16

    /// IEEE 754 binary16 bits → Float, exactly (every half is representable): normals, subnormals,
    /// signed zeros, ±inf, and NaN (the payload is kept in the top mantissa bits).
    @inlinable
    public static func floatFromHalfBits(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = UInt32((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {                      // inf (mantissa 0) or NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {                         // zero or subnormal: mantissa × 2^-24, exact in Float
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        // Normal: rebias the exponent from 15 to 127 and widen the mantissa from 10 to 23 bits.
        return Float(bitPattern: sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13))
    }

    /// bfloat16 bits → Float, exactly (bfloat16 is the top half of a binary32).
    @inlinable
    public static func floatFromBFloat16Bits(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }
}

// MARK: - Header validation

extension SafeTensors {
    private static func parseMetadata(_ value: JSON) throws(SafeTensorsError) -> [String: String] {
        switch value {
        case .null:
            return [:]
        case .object(let pairs):
            var result: [String: String] = [:]
            for (key, v) in pairs {
                guard case .string(let s) = v else {
                    throw SafeTensorsError("safetensors: __metadata__ value for '\(key)' is not a string (found \(v.kind)); metadata must map strings to strings")
                }
                guard result.updateValue(s, forKey: key) == nil else {
                    throw SafeTensorsError("safetensors: __metadata__ key '\(key)' appears more than once")
                }
            }
            return result
        default:
            throw SafeTensorsError("safetensors: __metadata__ must be an object of strings, found \(value.kind)")
        }
    }

    private static func parseTensor(name: String, _ value: JSON, dataSize: Int) throws(SafeTensorsError) -> TensorInfo {
        let p = "safetensors: tensor '\(name)'"
        guard case .object(let fields) = value else {
            throw SafeTensorsError("\(p): entry must be an object with dtype, shape and data_offsets, found \(value.kind)")
        }
        var dtypeValue: JSON?, shapeValue: JSON?, offsetsValue: JSON?
        for (key, v) in fields {
            switch key {
            case "dtype":
                guard dtypeValue == nil else { throw SafeTensorsError("\(p): 'dtype' given more than once") }
                dtypeValue = v
            case "shape":
                guard shapeValue == nil else { throw SafeTensorsError("\(p): 'shape' given more than once") }
                shapeValue = v
            case "data_offsets":
                guard offsetsValue == nil else { throw SafeTensorsError("\(p): 'data_offsets' given more than once") }
                offsetsValue = v
            default:
                break  // unknown fields are tolerated
            }
        }

        // dtype
        guard let dtypeValue else { throw SafeTensorsError("\(p): missing 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw SafeTensorsError("\(p): dtype must be a string, found \(dtypeValue.kind)")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            throw SafeTensorsError("\(p): unknown dtype '\(dtypeName)' (supported: \(known))")
        }

        // shape
        guard let shapeValue else { throw SafeTensorsError("\(p): missing 'shape'") }
        guard case .array(let dimValues) = shapeValue else {
            throw SafeTensorsError("\(p): shape must be an array of non-negative integers, found \(shapeValue.kind)")
        }
        let shapeText = shapeValue.rendered
        var shape: [Int] = []
        shape.reserveCapacity(dimValues.count)
        var count = 1
        var countOverflows = false
        for d in dimValues {
            switch d {
            case .int(let n):
                guard n >= 0 else { throw SafeTensorsError("\(p): shape \(shapeText) has a negative dimension (\(n))") }
                shape.append(n)
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                countOverflows = countOverflows || overflow
                count = product
            case .number(let text, isInteger: true):
                if text.hasPrefix("-") { throw SafeTensorsError("\(p): shape \(shapeText) has a negative dimension (\(text))") }
                throw SafeTensorsError("\(p): shape \(shapeText) has a dimension too large to address (\(text))")
            default:
                throw SafeTensorsError("\(p): shape \(shapeText) must contain only non-negative integers, found \(d.rendered)")
            }
        }
        // A zero dimension makes the product 0 however large the others are.
        if shape.contains(0) { count = 0; countOverflows = false }
        let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !countOverflows, !byteOverflow else {
            throw SafeTensorsError("\(p): shape \(shapeText) of \(dtype.rawValue) is too large to address")
        }

        // data_offsets
        guard let offsetsValue else { throw SafeTensorsError("\(p): missing 'data_offsets'") }
        let offsetsText = offsetsValue.rendered
        guard case .array(let bounds) = offsetsValue, bounds.count == 2 else {
            throw SafeTensorsError("\(p): data_offsets must be [begin, end], found \(offsetsText)")
        }
        var ends: [Int] = []
        for b in bounds {
            switch b {
            case .int(let n):
                guard n >= 0 else { throw SafeTensorsError("\(p): data_offsets \(offsetsText) must be non-negative") }
                ends.append(n)
            case .number(let text, isInteger: true):
                if text.hasPrefix("-") { throw SafeTensorsError("\(p): data_offsets \(offsetsText) must be non-negative") }
                throw SafeTensorsError("\(p): data_offsets \(offsetsText) out of range (data section is \(dataSize) bytes)")
            default:
                throw SafeTensorsError("\(p): data_offsets \(offsetsText) must be two non-negative integers [begin, end]")
            }
        }
        let begin = ends[0], end = ends[1]
        guard begin <= end else {
            throw SafeTensorsError("\(p): data_offsets \(offsetsText) end before begin")
        }
        guard end <= dataSize else {
            throw SafeTensorsError("\(p): data_offsets \(offsetsText) out of range (data section is \(dataSize) bytes)")
        }
        guard end - begin == byteCount else {
            throw SafeTensorsError("\(p): shape \(shapeText) of \(dtype.rawValue) needs \(byteCount) bytes, data_offsets give \(end - begin)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, count: count, byteRange: begin..<end)
    }

    /// Refuses overlapping byte ranges in O(n log n): sort by start, then each range must start at or
    /// after the furthest end seen so far. Empty ranges occupy no bytes and cannot overlap.
    private static func checkNoOverlap(_ infos: [TensorInfo]) throws(SafeTensorsError) {
        let sorted = infos.filter { !$0.byteRange.isEmpty }.sorted {
            ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name)
        }
        var furthest: TensorInfo?
        for t in sorted {
            if let f = furthest {
                if t.byteRange.lowerBound < f.byteRange.upperBound {
                    throw SafeTensorsError("safetensors: tensors '\(f.name)' and '\(t.name)' overlap (bytes \(f.byteRange.lowerBound)..<\(f.byteRange.upperBound) and \(t.byteRange.lowerBound)..<\(t.byteRange.upperBound))")
                }
                if t.byteRange.upperBound > f.byteRange.upperBound { furthest = t }
            } else {
                furthest = t
            }
        }
    }

    /// Offset (relative to `range.lowerBound`) of the first byte that is not part of valid UTF-8, or nil.
    private static func firstInvalidUTF8Offset(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes[range].makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    fileprivate static func describeIOError(_ error: any Error) -> String {
        if let cocoa = error as? CocoaError, let posix = cocoa.userInfo["NSUnderlyingError"] as? POSIXError {
            switch posix.code {
            case .ENOENT: return "no such file or directory"
            case .EACCES: return "permission denied"
            case .EISDIR: return "is a directory"
            case .ENOSPC: return "no space left on device"
            default: return "\(posix.code)"
            }
        }
        return "\(error)"
    }
}

// MARK: - Conversion

extension SafeTensors {
    /// Calls `body` with the tensor's bytes. `info` came from this file's validated header, so the range
    /// lies inside `bytes`.
    private func withTensorBytes<R>(_ info: TensorInfo, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let lo = dataStart + info.byteRange.lowerBound
        let hi = dataStart + info.byteRange.upperBound
        return bytes.withUnsafeBytes { all in body(UnsafeRawBufferPointer(rebasing: all[lo..<hi])) }
    }

    private func convertToFloat(_ info: TensorInfo) -> [Float] {
        let n = info.count
        return withTensorBytes(info) { raw in
            switch info.dtype {
            case .f32:
                #if _endian(little)
                return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                    if n > 0, let base = buffer.baseAddress, let source = raw.baseAddress {
                        UnsafeMutableRawPointer(base).copyMemory(from: source, byteCount: n * 4)
                    }
                    initialized = n
                }
                #else
                return decode(raw, n) { Float(bitPattern: load($0, $1 * 4, UInt32.self)) }
                #endif
            case .f64: return decode(raw, n) { Float(Double(bitPattern: load($0, $1 * 8, UInt64.self))) }
            case .f16: return decode(raw, n) { SafeTensors.floatFromHalfBits(load($0, $1 * 2, UInt16.self)) }
            case .bf16: return decode(raw, n) { SafeTensors.floatFromBFloat16Bits(load($0, $1 * 2, UInt16.self)) }
            case .i64: return decode(raw, n) { Float(Int64(bitPattern: load($0, $1 * 8, UInt64.self))) }
            case .i32: return decode(raw, n) { Float(Int32(bitPattern: load($0, $1 * 4, UInt32.self))) }
            case .i16: return decode(raw, n) { Float(Int16(bitPattern: load($0, $1 * 2, UInt16.self))) }
            case .i8: return decode(raw, n) { Float(Int8(bitPattern: $0[$1])) }
            case .u8: return decode(raw, n) { Float($0[$1]) }
            case .bool: return decode(raw, n) { $0[$1] != 0 ? 1 : 0 }
            }
        }
    }

    private func convertToDouble(_ info: TensorInfo) -> [Double] {
        let n = info.count
        return withTensorBytes(info) { raw in
            switch info.dtype {
            case .f64:
                #if _endian(little)
                return [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
                    if n > 0, let base = buffer.baseAddress, let source = raw.baseAddress {
                        UnsafeMutableRawPointer(base).copyMemory(from: source, byteCount: n * 8)
                    }
                    initialized = n
                }
                #else
                return decode(raw, n) { Double(bitPattern: load($0, $1 * 8, UInt64.self)) }
                #endif
            case .f32: return decode(raw, n) { Double(Float(bitPattern: load($0, $1 * 4, UInt32.self))) }
            case .f16: return decode(raw, n) { Double(SafeTensors.floatFromHalfBits(load($0, $1 * 2, UInt16.self))) }
            case .bf16: return decode(raw, n) { Double(SafeTensors.floatFromBFloat16Bits(load($0, $1 * 2, UInt16.self))) }
            case .i64: return decode(raw, n) { Double(Int64(bitPattern: load($0, $1 * 8, UInt64.self))) }
            case .i32: return decode(raw, n) { Double(Int32(bitPattern: load($0, $1 * 4, UInt32.self))) }
            case .i16: return decode(raw, n) { Double(Int16(bitPattern: load($0, $1 * 2, UInt16.self))) }
            case .i8: return decode(raw, n) { Double(Int8(bitPattern: $0[$1])) }
            case .u8: return decode(raw, n) { Double($0[$1]) }
            case .bool: return decode(raw, n) { $0[$1] != 0 ? 1 : 0 }
            }
        }
    }

    private func checkFinite(_ values: [Float], _ info: TensorInfo) throws(SafeTensorsError) {
        guard let i = values.firstIndex(where: { !$0.isFinite }) else { return }
        let v = values[i]
        if info.dtype == .f64 {
            let source = withTensorBytes(info) { Double(bitPattern: load($0, i * 8, UInt64.self)) }
            if source.isFinite {
                throw SafeTensorsError("safetensors: tensor '\(info.name)' has a value outside the Float range (\(source)) at index \(i)")
            }
        }
        throw SafeTensorsError("safetensors: tensor '\(info.name)' has a non-finite value (\(v.isNaN ? "nan" : "\(v)")) at index \(i)")
    }
}

/// Element `i` for `i in 0..<n`, built in place.
@inline(__always)
private func decode<T>(_ raw: UnsafeRawBufferPointer, _ n: Int, _ element: (UnsafeRawBufferPointer, Int) -> T) -> [T] {
    [T](unsafeUninitializedCapacity: n) { buffer, initialized in
        for i in 0..<n { buffer.initializeElement(at: i, to: element(raw, i)) }
        initialized = n
    }
}

/// A little-endian integer at a byte offset (no alignment required).
@inline(__always)
private func load<T: FixedWidthInteger>(_ raw: UnsafeRawBufferPointer, _ offset: Int, _: T.Type) -> T {
    T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
}

@inline(__always)
private func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    let v = value.littleEndian
    withUnsafeBytes(of: v) { out.append(contentsOf: $0) }
}

/// `s` as a JSON string literal: quotes, backslashes and control characters escaped; other characters
/// (including non-ASCII) written as UTF-8.
private func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16, uppercase: false)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

// MARK: - Minimal JSON parser
//
// A strict RFC 8259 parser over the header bytes. Written here rather than using JSONDecoder so that
// object members keep their order and duplicates can be detected (a dictionary would silently keep
// one), integers are read exactly, and errors carry a byte offset.

/// A parsed JSON value. Objects keep member order (and duplicates, which the caller rejects).
private indirect enum JSON {
    case null
    case bool(Bool)
    case int(Int)
    /// A number that is not an `Int`: non-integral, or an integer outside `Int`'s range.
    case number(String, isInteger: Bool)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// What kind of value this is, for error messages.
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Compact rendering for error messages: numbers verbatim, `[a, b]` for arrays, strings quoted;
    /// objects elided. Long output is truncated.
    var rendered: String {
        let text: String
        switch self {
        case .null: text = "null"
        case .bool(let b): text = b ? "true" : "false"
        case .int(let n): text = String(n)
        case .number(let s, _): text = s
        case .string(let s): text = "\"\(s)\""
        case .array(let items): text = "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case .object: text = "{…}"
        }
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}

extension SafeTensors {
    /// What is wrong with `bytes` as one JSON document ("… at byte N", nesting deeper than 64
    /// levels included), or nil when it is valid.
    static func jsonSyntaxError(_ bytes: [UInt8]) -> String? {
        var parser = JSONParser(bytes: bytes, range: 0..<bytes.count)
        do throws(JSONParseError) { _ = try parser.parseDocument(); return nil } catch {
            return "\(error.reason) at byte \(error.offset)"
        }
    }
}

private struct JSONParseError: Error {
    let reason: String
    /// Byte offset within the header.
    let offset: Int
}

private struct JSONParser {
    static let maxDepth = 64

    let bytes: [UInt8]
    let start: Int
    let end: Int
    var pos: Int
    var depth = 0

    /// Parses `bytes[range]`; `range` must lie within `bytes`.
    init(bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.start = range.lowerBound
        self.end = range.upperBound
        self.pos = range.lowerBound
    }

    /// One value surrounded by optional whitespace, and nothing else.
    mutating func parseDocument() throws(JSONParseError) -> JSON {
        let value = try parseValue()
        skipWhitespace()
        guard pos == end else { throw fail("unexpected \(describeCurrent()) after the top-level value") }
        return value
    }

    private func fail(_ reason: String) -> JSONParseError {
        JSONParseError(reason: reason, offset: pos - start)
    }

    private func describeCurrent() -> String {
        guard pos < end else { return "end of header" }
        let c = bytes[pos]
        if c >= 0x20 && c < 0x7F { return "character '\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x" + String(c, radix: 16)
    }

    private mutating func skipWhitespace() {
        while pos < end {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONParseError) -> JSON {
        skipWhitespace()
        guard pos < end else { throw fail("unexpected end of header") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected \(describeCurrent())")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        guard end - pos >= count else { throw fail("invalid literal") }
        let matches = word.withUTF8Buffer { w in
            var k = 0
            while k < count { if bytes[pos + k] != w[k] { return false }; k += 1 }
            return true
        }
        guard matches else { throw fail("invalid literal") }
        pos += count
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func parseObject() throws(JSONParseError) -> JSON {
        try enter()
        pos += 1  // '{'
        var members: [(String, JSON)] = []
        skipWhitespace()
        if pos < end && bytes[pos] == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard pos < end, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key, found \(describeCurrent())") }
            let key = try parseString()
            skipWhitespace()
            guard pos < end, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':' after key, found \(describeCurrent())") }
            pos += 1
            members.append((key, try parseValue()))
            skipWhitespace()
            guard pos < end else { throw fail("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; break }
            throw fail("expected ',' or '}' in object, found \(describeCurrent())")
        }
        depth -= 1
        return .object(members)
    }

    private mutating func parseArray() throws(JSONParseError) -> JSON {
        try enter()
        pos += 1  // '['
        var items: [JSON] = []
        skipWhitespace()
        if pos < end && bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return .array(items)
        }
        while true {
            items.append(try parseValue())
            skipWhitespace()
            guard pos < end else { throw fail("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; break }
            throw fail("expected ',' or ']' in array, found \(describeCurrent())")
        }
        depth -= 1
        return .array(items)
    }

    /// A string starting at the opening quote. The header was already checked to be valid UTF-8.
    private mutating func parseString() throws(JSONParseError) -> String {
        pos += 1  // opening quote
        var buffer: [UInt8] = []
        while true {
            guard pos < end else { throw fail("unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 { throw fail("unescaped control character in string") }
            if c != UInt8(ascii: "\\") { buffer.append(c); pos += 1; continue }
            // Escape sequence.
            guard end - pos >= 2 else { throw fail("unterminated string") }
            let e = bytes[pos + 1]
            pos += 2
            switch e {
            case UInt8(ascii: "\""): buffer.append(0x22)
            case UInt8(ascii: "\\"): buffer.append(0x5C)
            case UInt8(ascii: "/"): buffer.append(0x2F)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                var value = try parseHex4()
                if (0xD800..<0xDC00).contains(value) {
                    // High surrogate: must be followed by \u + low surrogate.
                    guard end - pos >= 2, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(value) {
                    throw fail("unpaired surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(value) else { throw fail("invalid \\u escape") }
                UTF8.encode(scalar) { buffer.append($0) }
            default:
                pos -= 1
                throw fail("invalid escape sequence")
            }
        }
        return String(decoding: buffer, as: UTF8.self)
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard end - pos >= 4 else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            value = value << 4 | digit
            pos += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func parseNumber() throws(JSONParseError) -> JSON {
        let numberStart = pos
        let negative = bytes[pos] == UInt8(ascii: "-")
        if negative { pos += 1 }
        guard pos < end, isDigit(bytes[pos]) else { throw fail("invalid number") }
        // Integer part, accumulated negatively so Int.min is representable.
        var magnitude = 0  // ≤ 0
        var fitsInt = true
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(bytes[pos]) { throw fail("leading zero in number") }
        } else {
            while pos < end && isDigit(bytes[pos]) {
                let digit = Int(bytes[pos] - UInt8(ascii: "0"))
                if fitsInt {
                    let (m, o1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.subtractingReportingOverflow(digit)
                    if o1 || o2 { fitsInt = false } else { magnitude = s }
                }
                pos += 1
            }
        }
        var integral = true
        if pos < end && bytes[pos] == UInt8(ascii: ".") {
            integral = false
            pos += 1
            guard pos < end, isDigit(bytes[pos]) else { throw fail("invalid number (no digits after '.')") }
            while pos < end && isDigit(bytes[pos]) { pos += 1 }
        }
        if pos < end && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            integral = false
            pos += 1
            if pos < end && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard pos < end, isDigit(bytes[pos]) else { throw fail("invalid number (no digits in exponent)") }
            while pos < end && isDigit(bytes[pos]) { pos += 1 }
        }
        if integral && fitsInt {
            if negative { return .int(magnitude) }
            if magnitude != Int.min { return .int(-magnitude) }
        }
        let text = String(decoding: bytes[numberStart..<pos], as: UTF8.self)
        return .number(text, isInteger: integral)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
