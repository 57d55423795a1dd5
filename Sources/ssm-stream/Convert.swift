import ArgumentParser
import FoundationEssentials
import SSM

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a model's weight matrices in half precision (f16) or back in float32.",
        discussion: """
        --weights f16 stores every weight matrix (projections, encoder, decoder, GLU and MLP \
        weights, B and C; see the README's "Half-precision weights") as F16: the file shrinks by \
        about half, and in step mode S5, LRU and every block's projections read the half weights, \
        converted in registers (F16C) while the state and the arithmetic stay float32 — half the \
        bytes per sample. Eigenvalues, step sizes, D, biases and norms stay float32. Other \
        families' matrices are stored in f16 and widened when the model loads. --weights f32 \
        writes every tensor as float32 again (the values stay the rounded ones).

        The output is loaded before it is written (the same checks as any model file). A value \
        beyond ±65504 cannot be a half: that tensor stays float32, with a note.

        Examples:
          ssm-stream convert model.safetensors --weights f16 -o model-f16.safetensors
          ssm-stream inspect model-f16.safetensors
          ssm-stream convert model-f16.safetensors --weights f32 -o m32.safetensors
        """)

    enum Precision: String, ExpressibleByArgument, CaseIterable { case f16, f32 }

    @Argument(help: "Model file.")
    var model: String

    @Option(help: "Precision of the weight matrices: f16 or f32.")
    var weights: Precision

    @Option(name: .shortAndLong, help: "Model file to write (.safetensors).")
    var output: String

    @Flag(name: .shortAndLong, help: "No summary on stderr.")
    var quiet = false

    func run() throws {
        let read = try Chain.read(model, command: "convert")
        let spec = read.spec
        let (tensors, changed, kept) = ModelFile.withWeights(read.tensors, half: weights == .f16)
        do { _ = try Model(spec: spec, tensors: tensors) } catch {
            warn("ssm-stream convert: the converted model cannot be loaded: \(error.message)")
            throw ExitCode(ExitStatus.badModel)
        }
        let bytes = ModelFile.serialize(spec: spec, tensors: tensors, metadata: read.metadata)
        do { try SafeTensors.write(bytes, toFile: output) } catch {
            warn("ssm-stream convert: \(error.message)")
            throw ExitCode(ExitStatus.cantCreate)
        }
        if !quiet {
            for k in kept { warn("ssm-stream convert: '\(k)' has values beyond ±65504: kept in float32") }
            let half = tensors.values.filter(\.half)
            warn("ssm-stream convert: \(changed) tensor\(changed == 1 ? "" : "s") to \(weights.rawValue); "
                 + "\(half.count) of \(tensors.count) tensors (\(half.reduce(0) { $0 + $1.values.count }) of "
                 + "\(tensors.values.reduce(0) { $0 + $1.values.count }) values) in f16, \(bytes.count) bytes → \(output)")
        }
    }
}
