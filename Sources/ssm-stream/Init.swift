import ArgumentParser
import Foundation
import SSM

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a model file from an architecture, with the families' own initializations.",
        discussion: """
        Reads the architecture (the JSON that model files carry in __metadata__["ssm_stream"], see \
        the README's "Architecture" table) from a file or '-' and writes a model whose parameters \
        come from each family's initialization (HiPPO-LegS / S4D-Lin / ring init …, reproducible \
        from --seed): the starting point for training, or a model of a given size to benchmark a \
        pipeline with (`ssm-stream run`, `inspect --bench`).

        Examples:
          ssm-stream init arch.json -o model.safetensors
          echo '{"sample_rate":16000,"d_input":1,"d_model":64,"d_output":1,' \\
              '"encoder":true,"decoder":true,"blocks":[{"layer":' \\
              '{"family":"s5","d_model":64,"d_state":64}}]}' \\
              | ssm-stream init - -o s5.safetensors
        """)

    @Argument(help: "Architecture JSON file, or '-' for stdin.")
    var architecture: String

    @Option(name: .shortAndLong, help: "Model file to write.")
    var output: String

    @Option(help: "Random seed of the initialization.")
    var seed: UInt64 = 0

    @Flag(name: .shortAndLong, help: "No summary on stderr.")
    var quiet = false

    func run() throws {
        let data = architecture == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: architecture)
        guard let data else {
            warn("ssm-stream init: architecture '\(architecture)': cannot read the file (\(String(cString: strerror(errno))))")
            throw ExitCode(ExitStatus.noInput)
        }
        let bytes: [UInt8]
        let parameters: Int
        do {
            let spec = try ModelFile.decodeSpec(String(decoding: data, as: UTF8.self))
            let ticker = quiet ? nil : InitProgress()
            defer { ticker?.finish() }
            let tensors = try Model.initialize(spec, seed: seed) { ticker?.at("block \($0 + 1) of \(spec.blocks.count) (\(spec.blocks[$0].layer.family.rawValue), d_state \(spec.blocks[$0].layer.dState))") }
            ticker?.at("checking the model")
            _ = try Model(spec: spec, tensors: tensors)  // the same checks a load makes
            bytes = ModelFile.serialize(spec: spec, tensors: tensors)
            parameters = tensors.values.reduce(0) { $0 + $1.values.count }
        } catch {
            warn("ssm-stream init: architecture '\(architecture)': \(error.message)")
            throw ExitCode(ExitStatus.dataError)
        }
        guard FileManager.default.createFile(atPath: output, contents: Data(bytes)) else {
            warn("ssm-stream init: output '\(output)': cannot be written (\(String(cString: strerror(errno))))")
            throw ExitCode(ExitStatus.cantCreate)
        }
        if !quiet { warn("ssm-stream init: \(parameters) parameters, \(bytes.count) bytes → \(output)") }
    }
}

/// Once initialization has taken more than a second, a line on stderr each second saying what it is
/// doing (rewritten in place on a terminal); nothing for the usual fraction of a second.
final class InitProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var what = "starting", done = false
    private let start = Date()
    private let wake = DispatchSemaphore(value: 0), exited = DispatchSemaphore(value: 0)

    init() {
        Thread.detachNewThread { [self] in
            let tty = isatty(2) != 0
            // A line each second on a terminal, each 5 s in a log. (The first after 1 s; tests set
            // SSM_STREAM_PROGRESS_AFTER to see one without a slow initialization.)
            let after = ProcessInfo.processInfo.environment["SSM_STREAM_PROGRESS_AFTER"].flatMap(Double.init) ?? 1
            var shown = false
            while true {
                _ = wake.wait(timeout: .now() + (shown ? (tty ? 1 : 5) : 0.1))
                let (w, d) = lock.withLock { (what, done) }
                if d { if shown && tty { FileHandle.standardError.write(Data("\n".utf8)) }; exited.signal(); return }
                let t = Date().timeIntervalSince(start)
                if t < after { continue }
                let line = "ssm-stream init: \(w), \(Int(t)) s"
                FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + line : line + "\n").utf8))
                shown = true
            }
        }
    }

    func at(_ w: String) { lock.withLock { what = w } }

    /// Stops the ticker and waits for it (so that the summary comes after its last line).
    func finish() {
        lock.withLock { done = true }
        wake.signal()
        exited.wait()
    }
}
