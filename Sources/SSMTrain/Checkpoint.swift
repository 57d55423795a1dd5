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

/// Checkpoints: one safetensors file holding `param/NAME`, `adam_m/NAME`, `adam_v/NAME` (float32),
/// `average/NAME` and `average_lo/NAME` once a run averages its parameters (`TrainOptions.averageFrom`;
/// the running mean is kept as a float pair hi + lo, so that it is exact in the file),
/// the architecture (`ssm_stream`) and the run state and options (`ssm_train`, JSON). Written to a
/// temporary file beside the target, synced, then renamed over it: a crash or a full disk leaves the
/// previous checkpoint intact.
public enum Checkpoint {
    public static let metadataKey = "ssm_train"

    public struct Contents: Sendable {
        public var spec: ModelSpec
        public var parameters: [String: Tensor]
        public var m: [String: [Scalar]], v: [String: [Scalar]]
        /// The running average of the parameters (hi + lo), when the run has begun one.
        public var average: [String: [Double]]?
        public var state: RunState
        public var options: String
    }

    public static func save(_ path: String, spec: ModelSpec, parameters p: ParameterStore, optimizer: AdamW,
                            state: RunState, options: String, average: [Double]? = nil) throws(TrainError) {
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
        let bytes = SafeTensors.serialize(list, metadata: [ModelFile.metadataKey: specJSON, metadataKey: stateJSON,
                                                           "ssm_train_options": options])
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
        return Contents(spec: spec, parameters: params, m: m, v: v, average: average.isEmpty ? nil : average, state: state,
                        options: st.metadata["ssm_train_options"] ?? "")
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
