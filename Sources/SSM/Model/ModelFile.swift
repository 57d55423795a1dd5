import FoundationEssentials

/// A model file is one safetensors file: the tensors, named as `ModelSpec` says, and the
/// architecture as JSON in `__metadata__["ssm_stream"]`. A PyTorch or JAX model exports to it with
/// plain `safetensors` (`save_file(tensors, path, metadata={"ssm_stream": json.dumps(spec)})`).
public enum ModelFile {
    public static let metadataKey = "ssm_stream"

    /// The architecture and tensors of a model file's bytes; every problem is a `ModelError`.
    public static func parse(_ bytes: [UInt8]) throws(ModelError) -> (spec: ModelSpec, tensors: [String: Tensor]) {
        let st: SafeTensors
        do { st = try SafeTensors(bytes: bytes) } catch { throw ModelError(error.message) }
        return try parse(st)
    }

    public static func parse(_ st: SafeTensors) throws(ModelError) -> (spec: ModelSpec, tensors: [String: Tensor]) {
        guard let json = st.metadata[metadataKey] else {
            throw ModelError("no architecture: __metadata__ has no '\(metadataKey)' entry, so this is not an ssm-stream model file")
        }
        let spec = try decodeSpec(json)
        var tensors: [String: Tensor] = [:]
        for (name, info) in st.tensors {
            do {
                var t = Tensor(shape: info.shape, floats: try st.floats(name))
                t.half = info.dtype == .f16
                tensors[name] = t
            } catch { throw ModelError(error.message) }
        }
        return (spec, tensors)
    }

    /// Parses and builds the model (see `Model.init` for what is refused).
    public static func load(_ bytes: [UInt8]) throws(ModelError) -> Model {
        let (spec, tensors) = try parse(bytes)
        return try Model(spec: spec, tensors: tensors)
    }

    public static func load(path: String) throws(ModelError) -> Model {
        let st: SafeTensors
        do { st = try SafeTensors(contentsOfFile: path) } catch { throw ModelError(error.message) }
        do {
            let (spec, tensors) = try parse(st)
            return try Model(spec: spec, tensors: tensors)
        } catch { throw ModelError("model '\(path)': \(error.message)") }
    }

    /// The bytes of a model file for `spec` and `tensors` (F32, or F16 for tensors marked `half`;
    /// names sorted, metadata JSON).
    public static func serialize(spec: ModelSpec, tensors: [String: Tensor], metadata extra: [String: String] = [:]) -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = (try? enc.encode(spec)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let names = tensors.keys.sorted()
        func list(_ half: Bool) -> [(name: String, shape: [Int], values: [Float])] {
            names.filter { tensors[$0]!.half == half }.map { (name: $0, shape: tensors[$0]!.shape, values: tensors[$0]!.values.map { Float($0) }) }
        }
        return SafeTensors.serialize(list(false), halves: list(true), metadata: extra.merging([metadataKey: json]) { $1 })
    }

    /// The weight matrices a half-precision model stores as F16 (`ssm-stream convert --weights
    /// f16`): tensors named `weight` or `w` (every projection, the encoder and decoder, GLU and MLP
    /// weights, the families' own projections) or `B`, `C`, `B_re`, `B_im`, `C_re`, `C_im` (the
    /// input and output matrices), with at least two dimensions larger than one. Eigenvalues, step
    /// sizes, D, biases and norm weights stay float32 (small, and where precision matters most), and
    /// so do S4's and S4D's per-channel `kernel.` vectors (one B and C per channel, not a matrix:
    /// each channel's filter, and a log after a filter bank magnifies their rounding).
    public static func isWeightMatrix(_ name: String, shape: [Int]) -> Bool {
        let parts = name.split(separator: ".").map(String.init)
        let last = parts.last ?? name
        guard ["weight", "w", "B", "C", "B_re", "B_im", "C_re", "C_im"].contains(last), !parts.contains("kernel") else { return false }
        // S5's B (P, H, 2) and C (H, P, 2) end in a complex pair, not a dimension of the matrix: a
        // one-channel S5 (every designed filter) has vectors, whose rounding κ would magnify.
        let dims = (last == "B" || last == "C") && shape.last == 2 ? Array(shape.dropLast()) : shape
        return dims.filter { $0 > 1 }.count >= 2
    }

    /// `tensors` with their weight matrices (`isWeightMatrix`) in half precision — values rounded to
    /// the nearest half and marked `half`, so that a model built from them equals the one loaded
    /// from their file — or, with `half` false, every tensor back to float32 (values unchanged).
    /// A matrix with a value beyond ±65504 stays float32 and is named in `kept`.
    public static func withWeights(_ tensors: [String: Tensor], half: Bool) -> (tensors: [String: Tensor], changed: Int, kept: [String]) {
        var out = tensors, changed = 0, kept: [String] = []
        for name in tensors.keys.sorted() {
            var t = tensors[name]!
            if half {
                guard isWeightMatrix(name, shape: t.shape), !t.half else { continue }
                if t.values.contains(where: { !$0.isFinite || Swift.abs($0) > 65504 }) { kept.append(name); continue }
                t.values = t.values.map { Scalar(Float16($0)) }
                t.half = true
            } else {
                guard t.half else { continue }
                t.half = false
            }
            out[name] = t
            changed += 1
        }
        return (out, changed, kept)
    }

    /// The architecture from its JSON, with decoding errors turned into one readable line.
    public static func decodeSpec(_ json: String) throws(ModelError) -> ModelSpec {
        do {
            return try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8))
        } catch let error as DecodingError {
            throw ModelError("architecture metadata: " + describe(error, Data(json.utf8)))
        } catch {
            throw ModelError("architecture metadata: \(error)")
        }
    }

    /// One line for a decoding error. JSONDecoder says only "not valid JSON" of a syntax error
    /// (or of nesting past its limit); `data` is then parsed again by the safetensors header's
    /// strict parser, for what and at which byte.
    static func describe(_ e: DecodingError, _ data: Data) -> String {
        if case .dataCorrupted(let c) = e, c.codingPath.isEmpty, let why = SafeTensors.jsonSyntaxError(Array(data)) {
            return "not valid JSON: \(why)"
        }
        return describe(e)
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String {
            c.isEmpty ? "top level" : c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop(while: { $0 == "." }).description
        }
        switch e {
        case .keyNotFound(let k, let c): return "missing field '\(k.stringValue)' at \(path(c.codingPath))"
        case .typeMismatch(_, let c): return "wrong type at \(path(c.codingPath)): \(c.debugDescription)"
        case .valueNotFound(_, let c): return "missing value at \(path(c.codingPath))"
        case .dataCorrupted(let c): return "\(c.debugDescription) at \(path(c.codingPath))"
        @unknown default: return "\(e)"
        }
    }
}
