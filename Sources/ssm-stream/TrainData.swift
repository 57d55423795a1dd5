import Foundation
import SSM
import SSMIO
import SSMTrain

/// Reads a training or evaluation data set into memory at the model's sample rate:
/// - a folder with one subfolder per class, holding recordings in any format libsndfile reads, or
/// - a CSV manifest: `path,label` lines (classification) or `noisy,clean` lines (filtering), paths
///   relative to the manifest's folder, an optional header line.
/// Multi-channel files are mixed to mono; other rates are resampled with libsamplerate (or refused
/// with `strictRate`). Unreadable files are skipped and named (fatal with `strict`).
struct TrainData {
    struct Failure: Error { let status: Int32; let message: String }

    let set: ClipSet
    let skipped: [String]

    /// `labels`: the architecture's labels, fixing the class order (nil: sorted folder names / labels).
    /// `everyClass`: refuse a class without recordings (training; evaluation data may cover a subset).
    static func load(_ path: String, task: ModelSpec.Task, rate: Int, labels: [String]?, strict: Bool,
                     strictRate: Bool, everyClass: Bool = true) throws(Failure) -> TrainData {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw Failure(status: ExitStatus.noInput, message: "data '\(path)': no such file or folder")
        }
        var entries: [(path: String, label: String, clean: String?)] = []
        if isDir.boolValue {
            guard task == .classify else {
                throw Failure(status: ExitStatus.usage, message: "data '\(path)': a filter model trains on a CSV manifest of noisy,clean pairs, not a folder")
            }
            let classes = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                .filter { !$0.hasPrefix(".") && isDirectory(path + "/" + $0) }.sorted()
            for c in classes {
                let files = ((try? FileManager.default.contentsOfDirectory(atPath: path + "/" + c)) ?? [])
                    .filter { !$0.hasPrefix(".") }.sorted()
                if files.isEmpty {
                    throw Failure(status: ExitStatus.dataError, message: "data '\(path)': class '\(c)' has no recordings")
                }
                for f in files { entries.append((path + "/" + c + "/" + f, c, nil)) }
            }
        } else {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw Failure(status: ExitStatus.noInput, message: "data '\(path)': cannot read the manifest")
            }
            let base = (path as NSString).deletingLastPathComponent
            // Lines end in LF or CRLF (Swift reads "\r\n" as one Character, a newline).
            for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
                if line.isEmpty || line.hasPrefix("#") { continue }
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                if n == 0 && (f == ["path", "label"] || f == ["noisy", "clean"]) { continue }
                guard f.count == 2, !f[0].isEmpty, !f[1].isEmpty else {
                    throw Failure(status: ExitStatus.dataError, message: "data '\(path)' line \(n + 1): expected two fields (\(task == .classify ? "path,label" : "noisy,clean")), got '\(line)'")
                }
                func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (base.isEmpty ? p : base + "/" + p) }
                if task == .classify { entries.append((resolve(f[0]), f[1], nil)) } else { entries.append((resolve(f[0]), "", resolve(f[1]))) }
            }
        }
        guard !entries.isEmpty else { throw Failure(status: ExitStatus.dataError, message: "data '\(path)': no recordings") }
        var names = labels ?? Array(Set(entries.map(\.label))).sorted()
        if task == .filter { names = [] }
        if task == .classify {
            let found = Set(entries.map(\.label))
            if let extra = found.subtracting(names).sorted().first {
                throw Failure(status: ExitStatus.badModel, message: "data '\(path)': class '\(extra)' is not one of the architecture's labels (\(names.joined(separator: ", ")))")
            }
        }
        var clips: [Clip] = [], skipped: [String] = []
        for e in entries {
            do throws(Failure) {
                let x = try readMono(e.path, rate: rate, strictRate: strictRate)
                var clip = Clip(samples: x, label: names.firstIndex(of: e.label) ?? 0, source: e.path)
                if let clean = e.clean {
                    let t = try readMono(clean, rate: rate, strictRate: strictRate)
                    guard t.count == x.count else {
                        throw Failure(status: ExitStatus.dataError, message: "'\(e.path)' has \(x.count) samples, its clean '\(clean)' \(t.count)")
                    }
                    clip.target = t
                }
                clips.append(clip)
            } catch {
                if error.status == ExitStatus.dataError && error.message.contains(" Hz") && strictRate { throw error }
                if strict { throw Failure(status: error.status, message: error.message + " (--strict)") }
                skipped.append(error.message)
            }
        }
        let set = ClipSet(labels: names, clips: clips, sampleRate: rate)
        if task == .classify && everyClass {
            for (i, n) in set.classCounts.enumerated() where n == 0 {
                throw Failure(status: ExitStatus.dataError, message: "data '\(path)': class '\(names[i])' has no readable recordings")
            }
        }
        return TrainData(set: set, skipped: skipped)
    }

    /// A whole file as mono floats at `rate`.
    static func readMono(_ path: String, rate: Int, strictRate: Bool) throws(Failure) -> [Float] {
        let reader: AudioReader
        do { reader = try AudioReader(path: path) } catch {
            throw Failure(status: ExitStatus.noInput, message: error.message)
        }
        let ch = reader.format.channels, chunk = 4096
        var buf = [Float](repeating: 0, count: chunk * ch), mono: [Float] = []
        while true {
            let n: Int
            do { n = try buf.withUnsafeMutableBufferPointer { b throws(IOError) in try reader.read(into: b.baseAddress!, frames: chunk) } }
            catch { throw Failure(status: ExitStatus.dataError, message: error.message) }
            if n == 0 { break }
            for i in 0..<n { var s: Float = 0; for c in 0..<ch { s += buf[i * ch + c] }; mono.append(s / Float(ch)) }
        }
        let from = reader.format.sampleRate
        if from == rate { return mono }
        if strictRate {
            throw Failure(status: ExitStatus.dataError, message: "'\(path)' is at \(from) Hz, the model at \(rate) Hz (without --strict-rate it is resampled)")
        }
        var out: [Float] = []
        out.reserveCapacity(mono.count * rate / max(1, from) + 64)
        do {
            let r = try Resampler(from: from, to: rate, channels: 1, maxFrames: max(1, mono.count), quality: .medium)
            try mono.withUnsafeBufferPointer { m throws(IOError) in
                try r.process(m.baseAddress!, frames: mono.count, end: true) { p, n in out.append(contentsOf: UnsafeBufferPointer(start: p, count: n)) }
            }
        } catch { throw Failure(status: ExitStatus.dataError, message: "'\(path)': \(error.message)") }
        return out
    }

    static func isDirectory(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }
}
