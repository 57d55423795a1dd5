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
            let tensors = try Model.initialize(spec, seed: seed)
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
