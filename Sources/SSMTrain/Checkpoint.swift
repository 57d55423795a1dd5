import FoundationEssentials
import SSM
#if canImport(Glibc)
import Glibc
#endif

/// Where a run stands, saved with its parameters and optimizer moments so that `--resume` continues
/// it exactly (same seed ⇒ same shuffles and augmentation from the saved epoch and step on).
public struct RunState: Codable, Sendable, Equatable {
    public var epoch = 0
    /// Batches of `epoch` already done.
    public var batchInEpoch = 0
    public var step = 0
    public var totalSteps = 0
    public var bestMetric: Double? = nil
    public var bestEpoch: Int? = nil
    public var seconds = 0.0
    /// Steps averaged so far (`TrainOptions.averageFrom`; nil: none yet).
    public var averaged: Int? = nil
    public init() {}
}

/// What a run trains on, as three 64-bit digests — the training set, the validation set and the
/// noise clips to mix in — so that `train --resume` refuses other data as it refuses other options:
/// a run continued on other recordings would be neither run. Each digests the label names, the rate
/// and every clip's class, samples and clean target (bit patterns, in order), not their paths: a data
/// set moved elsewhere is the same data. FNV-1a over 32-bit words with a final avalanche; it tells
/// that the data changed, it is not a cryptographic hash.
public struct DataDigest: Codable, Sendable, Equatable {
    public var train: String, validation: String, noise: String

    public init(train: ClipSet, validation: ClipSet, noise: [[Float]]) {
        self.train = Self.digest(train); self.validation = Self.digest(validation)
        var h = Hash(); for n in noise { h.add(n) }
        self.noise = h.hex
    }

    /// The parts that differ from `then` (a checkpoint's), named for a message.
    public func changes(from then: DataDigest) -> [String] {
        [(train, then.train, "the training set"), (validation, then.validation, "the validation set"),
         (noise, then.noise, "the noise recordings")].compactMap { $0.0 == $0.1 ? nil : $0.2 }
    }

    static func digest(_ set: ClipSet) -> String {
        var h = Hash()
        h.add(UInt64(set.sampleRate)); h.add(UInt64(set.labels.count))
        for l in set.labels { h.add(UInt64(l.utf8.count)); for b in l.utf8 { h.add(UInt64(b)) } }
        h.add(UInt64(set.clips.count))
        for c in set.clips {
            h.add(UInt64(bitPattern: Int64(c.label)))
            h.add(c.samples)
            if let t = c.target { h.add(1); h.add(t) } else { h.add(0) }
        }
        return h.hex
    }

    struct Hash {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        mutating func add(_ x: UInt64) { state = (state ^ x) &* 0x0000_0100_0000_01b3 }
        /// The count, then every value's bit pattern.
        mutating func add(_ values: [Float]) {
            add(UInt64(values.count))
            var s = state
            values.withUnsafeBufferPointer { for v in $0 { s = (s ^ UInt64(v.bitPattern)) &* 0x0000_0100_0000_01b3 } }
            state = s
        }
        /// The state through SplitMix64's finalizer (`Dropout.mix`), in hex.
        var hex: String {
            let digits = String(Dropout.mix(state), radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
    }
}

/// Checkpoints: one safetensors file holding `param/NAME`, `adam_m/NAME`, `adam_v/NAME` (float32),
/// `average/NAME` and `average_lo/NAME` once a run averages its parameters (`TrainOptions.averageFrom`;
/// the running mean is kept as a float pair hi + lo, so that it is exact in the file),
/// the architecture (`ssm_stream`), the run state and options (`ssm_train`, JSON) and the data's
/// digest (`ssm_train_data`, JSON; absent in checkpoints written before it existed). Written to a
/// temporary file beside the target, synced, then renamed over it: a crash or a full disk leaves the
/// previous checkpoint intact.
public enum Checkpoint {
    public static let metadataKey = "ssm_train"
    public static let dataKey = "ssm_train_data"

    public struct Contents: Sendable {
        public var spec: ModelSpec
        public var parameters: [String: Tensor]
        public var m: [String: [Scalar]], v: [String: [Scalar]]
        /// The running average of the parameters (hi + lo), when the run has begun one.
        public var average: [String: [Double]]?
        public var state: RunState
        public var options: String
        /// What the run trained on (nil: a checkpoint written before digests were kept).
        public var data: DataDigest?
    }

    public static func save(_ path: String, spec: ModelSpec, parameters p: ParameterStore, optimizer: AdamW,
                            state: RunState, options: String, data: DataDigest, average: [Double]? = nil) throws(TrainError) {
        var list: [(name: String, shape: [Int], values: [Float])] = []
        for (i, name) in p.names.enumerated() {
            let r = p.range(i)
            list.append(("param/" + name, p.shapes[i], p.values[r].map { Float($0) }))
            list.append(("adam_m/" + name, p.shapes[i], optimizer.m[r].map { Float($0) }))
            list.append(("adam_v/" + name, p.shapes[i], optimizer.v[r].map { Float($0) }))
            if let average {
                let hi = average[r].map { Float($0) }
                list.append(("average/" + name, p.shapes[i], hi))
                list.append(("average_lo/" + name, p.shapes[i], zip(average[r], hi).map { Float($0 - Double($1)) }))
            }
        }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        let specJSON = (try? enc.encode(spec)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let stateJSON = (try? enc.encode(state)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let dataJSON = (try? enc.encode(data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let bytes = SafeTensors.serialize(list, metadata: [ModelFile.metadataKey: specJSON, metadataKey: stateJSON,
                                                           "ssm_train_options": options, dataKey: dataJSON])
        try writeAtomically(bytes, to: path)
    }

    public static func load(_ path: String) throws(TrainError) -> Contents {
        let st: SafeTensors
        do { st = try SafeTensors(contentsOfFile: path) } catch {
            throw TrainError(.data, "checkpoint '\(path)': \(error.message)")
        }
        guard let specJSON = st.metadata[ModelFile.metadataKey], let stateJSON = st.metadata[metadataKey] else {
            throw TrainError(.data, "checkpoint '\(path)': not an ssm-stream training checkpoint (no '\(metadataKey)' metadata)")
        }
        let spec: ModelSpec
        do { spec = try ModelFile.decodeSpec(specJSON) } catch { throw TrainError(.data, "checkpoint '\(path)': \(error.message)") }
        guard let state = try? JSONDecoder().decode(RunState.self, from: Data(stateJSON.utf8)) else {
            throw TrainError(.data, "checkpoint '\(path)': its run state is not valid JSON")
        }
        var params: [String: Tensor] = [:], m: [String: [Scalar]] = [:], v: [String: [Scalar]] = [:], average: [String: [Double]] = [:],
            averageLo: [String: [Double]] = [:]
        for name in st.names {
            let values: [Float]
            do { values = try st.finiteFloats(name) } catch { throw TrainError(.data, "checkpoint '\(path)': \(error.message)") }
            let shape = st.tensors[name]!.shape
            if name.hasPrefix("param/") { params[String(name.dropFirst(6))] = Tensor(shape: shape, floats: values) }
            else if name.hasPrefix("adam_m/") { m[String(name.dropFirst(7))] = values.map { Scalar($0) } }
            else if name.hasPrefix("adam_v/") { v[String(name.dropFirst(7))] = values.map { Scalar($0) } }
            else if name.hasPrefix("average/") { average[String(name.dropFirst(8))] = values.map { Double($0) } }
            else if name.hasPrefix("average_lo/") { averageLo[String(name.dropFirst(11))] = values.map { Double($0) } }
            else { throw TrainError(.data, "checkpoint '\(path)': unexpected tensor '\(name)'") }
        }
        guard !params.isEmpty, Set(params.keys) == Set(m.keys), Set(params.keys) == Set(v.keys) else {
            throw TrainError(.data, "checkpoint '\(path)': parameters and optimizer moments do not match")
        }
        guard average.isEmpty || Set(params.keys) == Set(average.keys), Set(average.keys) == Set(averageLo.keys),
              average.isEmpty == ((state.averaged ?? 0) == 0),
              average.allSatisfy({ $0.value.count == params[$0.key]!.values.count && averageLo[$0.key]!.count == $0.value.count }) else {
            throw TrainError(.data, "checkpoint '\(path)': parameters and their running average do not match")
        }
        for (name, lo) in averageLo { for i in lo.indices { average[name]![i] += lo[i] } }
        var data: DataDigest?
        if let json = st.metadata[dataKey] {
            guard let d = try? JSONDecoder().decode(DataDigest.self, from: Data(json.utf8)) else {
                throw TrainError(.data, "checkpoint '\(path)': its data digest is not valid JSON")
            }
            data = d
        }
        return Contents(spec: spec, parameters: params, m: m, v: v, average: average.isEmpty ? nil : average, state: state,
                        options: st.metadata["ssm_train_options"] ?? "", data: data)
    }

    /// bytes → path through `path.tmp.PID`, fsync, rename (atomic on one file system).
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(TrainError) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainError(.io, "cannot write '\(tmp)': \(String(cString: strerror(errno)))") }
        var off = 0, failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                off += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure != 0 {
            unlink(tmp)
            throw TrainError(.io, "cannot write '\(path)': \(String(cString: strerror(failure))) (the previous file, if any, is intact)")
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw TrainError(.io, "cannot replace '\(path)': \(String(cString: strerror(e))) (the previous file, if any, is intact)")
        }
    }
}
