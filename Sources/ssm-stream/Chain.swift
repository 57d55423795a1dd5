import ArgumentParser
import FoundationEssentials
import SSM

struct Chain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put models in series: one model file that runs A, then B, then …",
        discussion: """
        The result is an ordinary model file (a "chain": each model a stage, its tensors under \
        stages.N.) that `run`, the daemon, `inspect` and `plot` take like any other: a cascade of \
        designed sections, a pre-filter before a classifier, an EQ after a denoiser. It equals \
        running the models one after another, to float round-off. A chain in the list is \
        flattened into its stages.

        The models must share one sample rate, each must take as many channels as the one before \
        it gives, and only the last may be a classifier (its labels, scores and event settings \
        become the chain's). A chain cannot be trained as one: train the stages, then chain them.

        Refused: fewer than two models, a rate or channel mismatch, a classifier before the last \
        stage, an unusable model (67); a missing file (66); an unwritable output (73).

        Examples:
          ssm-stream chain hp.safetensors models/digits.safetensors -o out.safetensors
          ssm-stream chain lp1.safetensors lp2.safetensors -o cascade.safetensors
          ssm-stream design peaking --cutoff 3000 --gain 4 --rate 8000 \\
              --append-to out.safetensors -o out2.safetensors
        """)

    @Argument(help: "Model files, in the order the signal goes through them (at least two).")
    var models: [String] = []

    @Option(name: .shortAndLong, help: "Model file to write (.safetensors).")
    var output: String

    @Flag(name: .shortAndLong, help: "No summary on stderr.")
    var quiet = false

    func validate() throws {
        guard models.count >= 2 else { throw ValidationError("give at least two models to put in series (got \(models.count))") }
    }

    func run() throws {
        let files = try models.map { try Chain.read($0, command: "chain") }
        try Chain.write(files.map { ($0.spec, $0.tensors) }, to: output, command: "chain", quiet: quiet, names: models,
                        metadata: files.last!.metadata)
    }

    /// A model file's architecture, tensors and other metadata (a trained classifier's options, which
    /// `eval` reads: what a chain keeps from its last stage, and `convert` from its input), checked
    /// by a load; exits 66 or 67 with a message.
    static func read(_ path: String, command: String) throws -> (spec: ModelSpec, tensors: [String: Tensor], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else {
            warn("ssm-stream \(command): model '\(path)': no such file")
            throw ExitCode(ExitStatus.noInput)
        }
        do {
            let st = try SafeTensors(bytes: try SafeTensors.fileBytes(path))
            let parsed = try ModelFile.parse(st)
            _ = try Model(spec: parsed.spec, tensors: parsed.tensors)
            return (parsed.spec, parsed.tensors, st.metadata.filter { $0.key != ModelFile.metadataKey })
        } catch let e as ModelError {
            warn("ssm-stream \(command): model '\(path)': \(e.message)")
        } catch let e as SafeTensorsError {
            warn("ssm-stream \(command): model '\(path)': \(e.message)")
        }
        throw ExitCode(ExitStatus.badModel)
    }

    /// `parts` in series → `output` (checked by a load first), with a summary line.
    static func write(_ parts: [(spec: ModelSpec, tensors: [String: Tensor])], to output: String, command: String,
                      quiet: Bool, names: [String], metadata: [String: String] = [:]) throws {
        let chained: (spec: ModelSpec, tensors: [String: Tensor])
        do {
            chained = try Model.chain(parts)
            _ = try Model(spec: chained.spec, tensors: chained.tensors)
        } catch {
            warn("ssm-stream \(command): \(names.joined(separator: " → ")): \(error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        do { try SafeTensors.write(ModelFile.serialize(spec: chained.spec, tensors: chained.tensors, metadata: metadata), toFile: output) } catch {
            warn("ssm-stream \(command): \(error.message)")
            throw ExitCode(ExitStatus.cantCreate)
        }
        if !quiet {
            let s = chained.spec
            warn("ssm-stream \(command): \(s.stageList.count) models in series (\(names.joined(separator: " → "))), "
                 + "\(s.task.rawValue), \(s.dInput) → \(s.dOutput) channel\(s.dOutput == 1 ? "" : "s") at \(s.sampleRate) Hz, "
                 + "\(chained.tensors.values.reduce(0) { $0 + $1.values.count }) parameters → \(output)")
        }
    }
}
