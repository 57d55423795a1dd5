import Testing
@testable import SSM

// MARK: - Helpers

/// A safetensors file built by hand: the 8-byte little-endian length (the header's own length unless
/// `declaredLength` is given), the header text, then `data`.
private func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    let n = declaredLength ?? UInt64(h.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: n >> UInt64(8 * $0)) } + h + data
}

/// Little-endian bytes of an integer.
private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
}

/// The message of the error `SafeTensors(bytes:)` throws, or nil if it parses.
private func parseError(_ bytes: [UInt8]) -> String? {
    do {
        _ = try SafeTensors(bytes: bytes)
        return nil
    } catch {
        return error.message
    }
}

private let goldenLRU = goldenRoot + "/lru/lru_H1_N4_L16_B1.safetensors"

// MARK: - Round trip

@Test func roundTripIsBitExact() throws {
    let w: [Float] = [1, -2.5, .pi, 0x1p-149, -0.0, .greatestFiniteMagnitude, Float(bitPattern: 0x7FC0_1234)]
    let d: [Double] = [1.0 / 3.0, -1e300, 0x1p-1074, .infinity]
    let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n control \u{1} é"]
    let bytes = SafeTensors.serialize(
        [(name: "w", shape: [7], values: w), (name: "empty", shape: [0, 3], values: []),
         (name: "scalar", shape: [], values: [42])],
        doubles: [(name: "d", shape: [2, 2], values: d)],
        metadata: metadata)

    // The data section starts 8-byte aligned.
    let headerLength = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
    #expect((8 + headerLength) % 8 == 0)

    let st = try SafeTensors(bytes: bytes)
    #expect(st.names == ["d", "empty", "scalar", "w"])
    #expect(st.metadata == metadata)
    #expect(try st.floats("w").map(\.bitPattern) == w.map(\.bitPattern))
    #expect(try st.doubles("d").map(\.bitPattern) == d.map(\.bitPattern))
    #expect(try st.floats("empty") == [])
    #expect(try st.floats("scalar") == [42])

    // Sorted by name, contiguous: d 0..<32, empty 32..<32, scalar 32..<36, w 36..<64.
    let dInfo = try st.info("d")
    #expect(dInfo.dtype == .f64 && dInfo.shape == [2, 2] && dInfo.count == 4 && dInfo.byteRange == 0..<32)
    #expect(try st.info("empty").byteRange == 32..<32)
    #expect(try st.info("empty").count == 0)
    #expect(try st.info("scalar").count == 1)
    let wInfo = try st.info("w")
    #expect(wInfo.dtype == .f32 && wInfo.shape == [7] && wInfo.byteRange == 36..<64)
}

@Test func trailingBytesAfterTheDataAreRefused() throws {
    let bytes = SafeTensors.serialize([(name: "x", shape: [2], values: [1, 2])], metadata: [:])
    _ = try SafeTensors(bytes: bytes)
    #expect {
        try SafeTensors(bytes: bytes + [0, 0, 0])
    } throws: { e in
        (e as? SafeTensorsError)?.message.contains("3 byte(s) after the last tensor's data") == true
    }
}

@Test func emptyMetadataIsNotWritten() throws {
    let bytes = SafeTensors.serialize([(name: "x", shape: [1], values: [1])], metadata: [:])
    #expect(!String(decoding: bytes, as: UTF8.self).contains("__metadata__"))
    let st = try SafeTensors(bytes: bytes)
    #expect(st.metadata.isEmpty)
    #expect(try st.floats("x") == [1])
}

@Test func serializerRefusesInconsistentInput() {
    let cases: [([(name: String, shape: [Int], values: [Float])], String)] = [
        ([(name: "x", shape: [2], values: [1])],
         "safetensors: tensor 'x': shape [2] has 2 elements but 1 values were given"),
        ([(name: "x", shape: [-1], values: [])],
         "safetensors: tensor 'x': shape [-1] has a negative dimension (-1)"),
        ([(name: "__metadata__", shape: [1], values: [1])],
         "safetensors: '__metadata__' is reserved and cannot name a tensor"),
        ([(name: "x", shape: [1], values: [1]), (name: "x", shape: [1], values: [2])],
         "safetensors: tensor 'x' given more than once"),
    ]
    for (tensors, message) in cases {
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.serializeChecked(tensors) }
        #expect(error?.message == message)
    }
}

// MARK: - Real file

@Test func readsGoldenFile() throws {
    let st = try SafeTensors(contentsOfFile: goldenLRU)
    let d = try st.info("param.D")
    #expect(d.dtype == .f32 && d.shape == [1])
    #expect(try st.floats("param.D") == [Float(bitPattern: 0x3F3B_7C6D)])  // 0.73236734
    #expect(try st.finiteFloats("param.D", shape: [1]) == [Float(bitPattern: 0x3F3B_7C6D)])

    let o = try st.info("output_recurrent_f64")
    #expect(o.dtype == .f64 && o.shape == [1, 16, 1] && o.byteRange == 0..<128)
    let values = try st.doubles("output_recurrent_f64")
    #expect(values.count == 16)
    #expect(values.first == -0x1.26ffcbecfe3d0p-1)
    #expect(values.last == -0x1.7dc023267f81cp-3)
    #expect(st.names.count == 14)
    #expect(st.metadata["golden"]?.contains("\"family\": \"lru\"") == true)
}

@Test func unreadableFileIsReported() {
    let error = #expect(throws: SafeTensorsError.self) {
        try SafeTensors(contentsOfFile: "/nonexistent/x.safetensors")
    }
    #expect(error?.message == "safetensors: cannot read '/nonexistent/x.safetensors': no such file or directory")
}

// MARK: - Access errors

@Test func accessErrorsNameTheProblem() throws {
    let nan = Float.nan
    let st = try SafeTensors(bytes: SafeTensors.serialize(
        [(name: "x", shape: [20], values: Array(repeating: 1, count: 17) + [nan, 1, 1]),
         (name: "y", shape: [2], values: [1, -.infinity])],
        doubles: [(name: "big", shape: [2], values: [1, 1e300])]))

    var error = #expect(throws: SafeTensorsError.self) { try st.floats("nope") }
    #expect(error?.message == "safetensors: missing tensor 'nope'")
    error = #expect(throws: SafeTensorsError.self) { try st.finiteFloats("x") }
    #expect(error?.message == "safetensors: tensor 'x' has a non-finite value (nan) at index 17")
    error = #expect(throws: SafeTensorsError.self) { try st.finiteFloats("y") }
    #expect(error?.message == "safetensors: tensor 'y' has a non-finite value (-inf) at index 1")
    error = #expect(throws: SafeTensorsError.self) { try st.finiteFloats("big") }
    #expect(error?.message == "safetensors: tensor 'big' has a value outside the Float range (1e+300) at index 1")
    error = #expect(throws: SafeTensorsError.self) { try st.floats("y", shape: [1, 2]) }
    #expect(error?.message == "safetensors: tensor 'y' has shape [2], expected [1, 2]")
    #expect(try st.finiteDoubles("big") == [1, 1e300])
    #expect(try st.floats("y").count == 2)  // floats() itself does not refuse non-finite values
}

// MARK: - F16 / BF16 / integer dtypes

@Test func halfAndBFloat16Conversions() throws {
    // F16: 1.0, -2.5, 65504 (largest finite), 2^-24 (smallest subnormal), +inf, NaN, -0, 2^-14 (smallest normal), -inf
    let f16: [UInt16] = [0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0x7E00, 0x8000, 0x0400, 0xFC00]
    // BF16: 1.0, -2.5, 65280 (65504 rounded to bf16), 2^-133 (smallest subnormal), +inf, NaN
    let bf16: [UInt16] = [0x3F80, 0xC020, 0x477F, 0x0001, 0x7F80, 0x7FC0]
    let data = f16.flatMap(le) + bf16.flatMap(le)
    let header = #"{"h":{"dtype":"F16","shape":[9],"data_offsets":[0,18]},"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[18,30]}}"#
    let st = try SafeTensors(bytes: file(header: header, data: data))

    let h = try st.floats("h")
    #expect(h.count == 9)
    #expect(Array(h[0..<5]) == [1, -2.5, 65504, 0x1p-24, .infinity])
    #expect(h[5].isNaN)
    #expect(h[6] == 0 && h[6].sign == .minus)
    #expect(h[7] == 0x1p-14)
    #expect(h[8] == -.infinity)
    #expect(try st.doubles("h")[3] == 0x1p-24)

    let b = try st.floats("b")
    #expect(b.count == 6)
    #expect(Array(b[0..<5]) == [1, -2.5, 65280, 0x1p-133, .infinity])
    #expect(b[5].isNaN)

    #expect(SafeTensors.floatFromHalfBits(0x03FF) == 1023 * 0x1p-24)  // largest subnormal
    #expect(SafeTensors.floatFromHalfBits(0x3555).bitPattern == 0x3EAA_A000)  // 0.333251953125
}

@Test func integerDtypesAndUnalignedData() throws {
    let data = le(Int64(-3)) + le(Int64(1 << 40)) + le(Int32(-7)) + le(Int16(-300)) + [0xFF, 200, 0, 1]
        + [9] + le(Float(1.5).bitPattern) + le(Double(-0.25).bitPattern)
    let header = #"{"i64":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"i32":{"dtype":"I32","shape":[1],"data_offsets":[16,20]},"i16":{"dtype":"I16","shape":[],"data_offsets":[20,22]},"i8":{"dtype":"I8","shape":[1],"data_offsets":[22,23]},"u8":{"dtype":"U8","shape":[1],"data_offsets":[23,24]},"bool":{"dtype":"BOOL","shape":[2],"data_offsets":[24,26]},"f":{"dtype":"F32","shape":[1],"data_offsets":[27,31]},"g":{"dtype":"F64","shape":[1],"data_offsets":[31,39]}}"#
    let st = try SafeTensors(bytes: file(header: header, data: data))  // byte 26 is a tolerated hole
    #expect(try st.floats("i64") == [-3, 1_099_511_627_776])
    #expect(try st.doubles("i32") == [-7])
    #expect(try st.floats("i16") == [-300])
    #expect(try st.floats("i8") == [-1])
    #expect(try st.floats("u8") == [200])
    #expect(try st.floats("bool") == [0, 1])
    #expect(try st.floats("f") == [1.5])
    #expect(try st.doubles("g") == [-0.25])
    #expect(try st.floats("g") == [-0.25])
}

// MARK: - Bad files

@Test func refusesTruncatedFiles() {
    #expect(parseError([1, 2, 3, 4, 5]) == "safetensors: file is 5 bytes, shorter than the 8-byte header length")
    #expect(parseError(file(header: "{}", data: Array(repeating: 0, count: 1224), declaredLength: 9_999_999))
            == "safetensors: header length 9999999 exceeds the file (1234 bytes)")
    // One byte past the end: the header would need 11 bytes of a 10-byte file.
    #expect(parseError(file(header: "{}", declaredLength: 3)) == "safetensors: header length 3 exceeds the file (10 bytes)")
    #expect(parseError(file(header: "{}")) == nil)  // exactly fills the file: no tensors, empty data section
    #expect(parseError(file(header: "{}", declaredLength: 100 * 1024 * 1024 + 1))
            == "safetensors: header length 104857601 exceeds the 100 MiB limit (is this a safetensors file?)")
    #expect(parseError(file(header: "{}", declaredLength: .max))
            == "safetensors: header length 18446744073709551615 exceeds the 100 MiB limit (is this a safetensors file?)")
}

@Test func refusesInvalidJSON() {
    #expect(parseError(file(header: #"{"a": }"#))
            == "safetensors: header is not valid JSON: unexpected character '}' at byte 6 of the header")
    #expect(parseError(file(header: #"{"a": "#))
            == "safetensors: header is not valid JSON: unexpected end of header at byte 6 of the header")
    #expect(parseError(file(header: "{} x"))
            == "safetensors: header is not valid JSON: unexpected character 'x' after the top-level value at byte 3 of the header")
    #expect(parseError(file(header: String(repeating: "[", count: 10_000)))
            == "safetensors: header is not valid JSON: nesting deeper than 64 levels at byte 64 of the header")
    #expect(parseError(file(header: "[1, 2]")) == "safetensors: header must be a JSON object, found an array")
    let badUTF8: [UInt8] = [9, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
    #expect(parseError(badUTF8) == "safetensors: header is not valid UTF-8 (bad byte at offset 6 of the header)")
}

@Test func refusesOutOfRangeOffsets() {
    let bytes = file(header: #"{"kernel.B":{"dtype":"F32","shape":[12],"data_offsets":[0,48]}}"#,
                     data: Array(repeating: 0, count: 32))
    #expect(parseError(bytes) == "safetensors: tensor 'kernel.B': data_offsets [0, 48] out of range (data section is 32 bytes)")
    // Offsets beyond Int64 are out of range, not a trap.
    #expect(parseError(file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}"#))
            == "safetensors: tensor 'x': data_offsets [0, 99999999999999999999] out of range (data section is 0 bytes)")
}

@Test func refusesEndBeforeBeginAndNegativeOffsets() {
    let data = [UInt8](repeating: 0, count: 8)
    #expect(parseError(file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: data))
            == "safetensors: tensor 'x': data_offsets [8, 0] end before begin")
    #expect(parseError(file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, data: data))
            == "safetensors: tensor 'x': data_offsets [-8, 0] must be non-negative")
    #expect(parseError(file(header: #"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: data))
            == "safetensors: tensor 'x': data_offsets must be [begin, end], found [0]")
}

@Test func refusesOverlappingTensors() {
    let bytes = file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
                     data: Array(repeating: 0, count: 24))
    #expect(parseError(bytes) == "safetensors: tensors 'a' and 'b' overlap (bytes 0..<16 and 8..<24)")
    // Reported pair is the first overlap in order of begin offset, whatever the header order.
    let nested = file(header: #"{"a":{"dtype":"U8","shape":[100],"data_offsets":[0,100]},"c":{"dtype":"U8","shape":[10],"data_offsets":[50,60]},"b":{"dtype":"U8","shape":[10],"data_offsets":[20,30]}}"#,
                      data: Array(repeating: 0, count: 100))
    #expect(parseError(nested) == "safetensors: tensors 'a' and 'b' overlap (bytes 0..<100 and 20..<30)")
}

@Test func toleratesHolesAndEmptyTensors() throws {
    // A hole before the last tensor is tolerated; bytes after it are not (see trailingBytes…).
    let bytes = file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[5,5]}}"#,
                     data: Array(repeating: 0, count: 8))
    let st = try SafeTensors(bytes: bytes)
    #expect(st.names == ["a", "z"])
    #expect(try st.floats("a") == [0])
    #expect(try st.floats("z") == [])
}

@Test func refusesSizeMismatch() {
    let bytes = file(header: #"{"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: Array(repeating: 0, count: 24))
    #expect(parseError(bytes) == "safetensors: tensor 'x': shape [2, 3] of F32 needs 24 bytes, data_offsets give 20")
}

@Test func refusesUnknownDtype() {
    let bytes = file(header: #"{"x":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}"#, data: [0, 0])
    #expect(parseError(bytes) == "safetensors: tensor 'x': unknown dtype 'F8' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)")
}

@Test func refusesBadShapes() {
    #expect(parseError(file(header: #"{"x":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]}}"#))
            == "safetensors: tensor 'x': shape [2, -3] has a negative dimension (-3)")
    #expect(parseError(file(header: #"{"x":{"dtype":"F32","shape":[2,1.5],"data_offsets":[0,0]}}"#))
            == "safetensors: tensor 'x': shape [2, 1.5] must contain only non-negative integers, found 1.5")
    // Element count and byte size overflow Int: refused, not a trap.
    #expect(parseError(file(header: #"{"x":{"dtype":"F64","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}}"#))
            == "safetensors: tensor 'x': shape [4611686018427387904, 4611686018427387904] of F64 is too large to address")
    #expect(parseError(file(header: #"{"x":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,0]}}"#))
            == "safetensors: tensor 'x': shape [1152921504606846976] of F64 is too large to address")
}

@Test func refusesBadMetadataAndDuplicates() {
    #expect(parseError(file(header: #"{"__metadata__":{"a":"b","n":3}}"#))
            == "safetensors: __metadata__ value for 'n' is not a string (found a number); metadata must map strings to strings")
    #expect(parseError(file(header: #"{"__metadata__":[]}"#))
            == "safetensors: __metadata__ must be an object of strings, found an array")
    let entry = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
    #expect(parseError(file(header: #"{"x":"# + entry + #","x":"# + entry + "}", data: Array(repeating: 0, count: 8)))
            == "safetensors: tensor 'x' appears more than once in the header")
    #expect(parseError(file(header: #"{"x":{"shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)))
            == "safetensors: tensor 'x': missing 'dtype'")
}
