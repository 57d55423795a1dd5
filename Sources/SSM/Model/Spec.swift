/// What a model file's `__metadata__["ssm_stream"]` holds: the architecture, as JSON.
///
///     { "format": "ssm-stream/1", "task": "filter", "sample_rate": 16000,
///       "d_input": 1, "d_model": 16, "d_output": 1, "encoder": true, "decoder": true,
///       "blocks": [ { "layer": { "family": "s5", "d_model": 16, "d_state": 16, "discretization": "zoh" },
///                     "norm": "layer", "prenorm": true, "residual": true,
///                     "activation": "gelu", "output": "glu" } ],
///       "labels": [] }
public struct ModelSpec: Codable, Sendable, Equatable {
    public enum Task: String, Codable, Sendable { case filter, classify }

    public var format: String = ModelSpec.currentFormat
    public var task: Task = .filter
    /// Sample rate the model was designed or trained for, in Hz.
    public var sampleRate: Int
    public var dInput: Int
    public var dModel: Int
    public var dOutput: Int
    /// Linear encoder d_input → d_model (`encoder.weight` (d_model, d_input), `encoder.bias`).
    public var encoder: Bool
    /// Linear decoder d_model → d_output (`decoder.weight` (d_output, d_model), `decoder.bias`).
    public var decoder: Bool
    public var blocks: [BlockSpec]
    /// Models in series (`ssm-stream chain`): each stage is a whole model whose tensors carry the
    /// prefix `stages.{i}.`; stage i's output is stage i+1's input. A chain has no blocks, encoder or
    /// decoder of its own; its d_input is the first stage's, its d_output, task, labels, scores and
    /// events the last stage's. Nil for an ordinary model.
    public var stages: [ModelSpec]?
    /// Class names of a classifier, in decoder output order.
    public var labels: [String]?
    /// How a classifier's outputs become scores in [0, 1]: "softmax" (mutually exclusive classes,
    /// the default), "sigmoid" (independent labels) or "identity" (outputs already are scores).
    public var scores: Scores?
    public enum Scores: String, Codable, Sendable { case softmax, sigmoid, identity }
    /// `scores`, or its default.
    public var scoring: Scores { scores ?? .softmax }
    /// A classifier's suggested event settings (what `run` and the daemon use unless told otherwise):
    /// a trained model knows its background class and the thresholds it was tuned with.
    public var events: EventDefaults?
    public struct EventDefaults: Codable, Sendable, Equatable {
        /// Classes never reported as events (e.g. the background "silence").
        public var ignore: [String]?
        public var threshold: Float?
        public var release: Float?
        /// Seconds.
        public var minDuration: Double?
        public var minGap: Double?
        public init(ignore: [String]? = nil, threshold: Float? = nil, release: Float? = nil, minDuration: Double? = nil, minGap: Double? = nil) {
            self.ignore = ignore; self.threshold = threshold; self.release = release; self.minDuration = minDuration; self.minGap = minGap
        }
        enum CodingKeys: String, CodingKey { case ignore, threshold, release, minDuration = "min_duration", minGap = "min_gap" }
    }
    /// Free text: where the model came from.
    public var description: String?

    public static let currentFormat = "ssm-stream/1"

    public init(task: Task = .filter, sampleRate: Int, dInput: Int, dModel: Int, dOutput: Int,
                encoder: Bool, decoder: Bool, blocks: [BlockSpec], labels: [String]? = nil,
                scores: Scores? = nil, description: String? = nil) {
        self.task = task; self.sampleRate = sampleRate; self.dInput = dInput; self.dModel = dModel
        self.dOutput = dOutput; self.encoder = encoder; self.decoder = decoder; self.blocks = blocks
        self.labels = labels; self.scores = scores; self.description = description
    }

    enum CodingKeys: String, CodingKey {
        case format, task, sampleRate = "sample_rate", dInput = "d_input", dModel = "d_model", dOutput = "d_output"
        case encoder, decoder, blocks, labels, scores, description, events, stages
    }

    /// `format` and `task` may be omitted (current format, filter); so may `encoder`/`decoder` (false).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decodeIfPresent(String.self, forKey: .format) ?? ModelSpec.currentFormat
        task = try c.decodeIfPresent(Task.self, forKey: .task) ?? .filter
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        dInput = try c.decode(Int.self, forKey: .dInput)
        dModel = try c.decode(Int.self, forKey: .dModel)
        dOutput = try c.decode(Int.self, forKey: .dOutput)
        self.encoder = try c.decodeIfPresent(Bool.self, forKey: .encoder) ?? false
        self.decoder = try c.decodeIfPresent(Bool.self, forKey: .decoder) ?? false
        stages = try c.decodeIfPresent([ModelSpec].self, forKey: .stages)
        blocks = stages != nil ? try c.decodeIfPresent([BlockSpec].self, forKey: .blocks) ?? [] : try c.decode([BlockSpec].self, forKey: .blocks)
        labels = try c.decodeIfPresent([String].self, forKey: .labels)
        events = try c.decodeIfPresent(EventDefaults.self, forKey: .events)
        scores = try c.decodeIfPresent(Scores.self, forKey: .scores)
        description = try c.decodeIfPresent(String.self, forKey: .description)
    }

    /// Every block of the model in running order, through the stages of a chain.
    public var allBlocks: [BlockSpec] { stages.map { $0.flatMap(\.allBlocks) } ?? blocks }

    /// The stages of a chain, or the model itself.
    public var stageList: [ModelSpec] { stages ?? [self] }

    /// The architecture of `specs` in series (a chain inside is flattened into its stages). Refuses
    /// fewer than two stages, different sample rates, a stage whose input channels are not the
    /// previous stage's outputs, and a classifier before the last stage (its logits are not a signal).
    public static func chain(_ specs: [ModelSpec]) throws(ModelError) -> ModelSpec {
        let flat = specs.flatMap(\.stageList)
        guard flat.count >= 2 else { throw ModelError("a chain needs at least two models (got \(flat.count))") }
        let first = flat[0], last = flat[flat.count - 1]
        for (i, s) in flat.enumerated() {
            guard s.sampleRate == first.sampleRate else {
                throw ModelError("stage \(i + 1) runs at \(s.sampleRate) Hz, stage 1 at \(first.sampleRate) Hz: models in series must share one sample rate (redesign or retrain one at the other's rate)")
            }
            if i > 0, s.dInput != flat[i - 1].dOutput {
                throw ModelError("stage \(i + 1) takes \(s.dInput) channel\(s.dInput == 1 ? "" : "s"), stage \(i) gives \(flat[i - 1].dOutput): the channels must agree")
            }
            if i < flat.count - 1, s.task == .classify {
                throw ModelError("stage \(i + 1) is a classifier: only the last model of a chain may classify (its scores are not a signal for the next)")
            }
        }
        var c = ModelSpec(task: last.task, sampleRate: first.sampleRate, dInput: first.dInput, dModel: first.dModel,
                          dOutput: last.dOutput, encoder: false, decoder: false, blocks: [], labels: last.labels,
                          scores: last.scores, description: flat.map { $0.description ?? "\($0.task.rawValue) model" }.joined(separator: " → "))
        c.events = last.events
        c.stages = flat
        return c
    }
}

/// One residual block around a sequence layer (S4/S4D/S5 papers' scaffold):
///
///     x = compress(x)  (optional)
///     z = SSM(prenorm ? norm(x) : x);  z = activation(z);  z = output(z)
///     x = residual ? x + z : z;        if !prenorm: x = norm(x)
///
/// output: "none" · "linear" (H→H) · "glu" (H→2H, first half · σ(second half)) · "mlp"
/// (H→E→H with GELU, E = mlp_expand·H) · "gated_mlp" (Griffin's MLP block: ffw_down(GELU_tanh(x W₀ + b₀)
/// ⊙ (x W₁ + b₁)), E = mlp_expand·H). norm: "none" · "layer" (LayerNorm) · "rms" (RMSNorm).
/// Tensors under `layers.{i}.`: the layer's own under `layer_prefix` (default "layer."),
/// `norm.weight` (+ `norm.bias` for LayerNorm), `output_linear.0.weight|bias` (linear, glu),
/// `mlp.fc1.weight|bias`, `mlp.fc2.weight|bias` (mlp), `mlp_block.ffw_up.w` (2, H, E), `mlp_block.ffw_up.b`
/// (2, E), `mlp_block.ffw_down.weight|bias` (gated_mlp, recurrentgemma's names). Linear weights are
/// (out, in), as in PyTorch; the ffw_up einsum weight is (branch, in, out), as recurrentgemma stores it.
public struct BlockSpec: Codable, Sendable, Equatable {
    public enum Norm: String, Codable, Sendable { case none, layer, rms }
    public enum Activation: String, Codable, Sendable { case none, gelu, geluTanh = "gelu_tanh", silu, relu, abs }
    /// A compression of the block's input, before everything else (the residual adds to the
    /// compressed input): "log" is x ← ln(ε + |x|) elementwise, ε = `compress_floor`. After a block
    /// whose activation rectifies ("abs") and a pool, it turns band amplitudes into log-envelopes, as
    /// a log-mel front end does; a layer norm after it then removes any change of the input's gain
    /// (a constant shift of every log-envelope), so that loud and quiet speakers look alike.
    public enum Compress: String, Codable, Sendable { case none, log }
    public enum Output: String, Codable, Sendable { case none, linear, glu, mlp, gatedMLP = "gated_mlp" }

    public var layer: LayerSpec
    public var norm: Norm = .none
    public var prenorm: Bool = true
    public var residual: Bool = true
    public var activation: Activation = .gelu
    public var output: Output = .glu
    public var mlpExpand: Int?
    public var normEps: Float?
    public var layerPrefix: String?
    /// Causal decimation before this block: its input is the mean of each R consecutive samples, one
    /// vector every R samples, and it and every later block run at the reduced rate; the model's
    /// output holds each value for R samples (latency < R samples). Multiple pools multiply.
    public var pool: Int?
    /// Input compression (nil: none) and its floor ε (default `BlockSpec.defaultCompressFloor`).
    public var compress: Compress?
    public var compressFloor: Float?
    public static let defaultCompressFloor: Float = 1e-3

    public init(layer: LayerSpec, norm: Norm = .none, prenorm: Bool = true, residual: Bool = true,
                activation: Activation = .gelu, output: Output = .glu) {
        self.layer = layer; self.norm = norm; self.prenorm = prenorm; self.residual = residual
        self.activation = activation; self.output = output
    }

    enum CodingKeys: String, CodingKey {
        case layer, norm, prenorm, residual, activation, output
        case mlpExpand = "mlp_expand", normEps = "norm_eps", layerPrefix = "layer_prefix", pool
        case compress, compressFloor = "compress_floor"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        layer = try c.decode(LayerSpec.self, forKey: .layer)
        norm = try c.decodeIfPresent(Norm.self, forKey: .norm) ?? .none
        prenorm = try c.decodeIfPresent(Bool.self, forKey: .prenorm) ?? true
        residual = try c.decodeIfPresent(Bool.self, forKey: .residual) ?? true
        activation = try c.decodeIfPresent(Activation.self, forKey: .activation) ?? .gelu
        output = try c.decodeIfPresent(Output.self, forKey: .output) ?? .glu
        mlpExpand = try c.decodeIfPresent(Int.self, forKey: .mlpExpand)
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps)
        layerPrefix = try c.decodeIfPresent(String.self, forKey: .layerPrefix)
        pool = try c.decodeIfPresent(Int.self, forKey: .pool)
        compress = try c.decodeIfPresent(Compress.self, forKey: .compress)
        compressFloor = try c.decodeIfPresent(Float.self, forKey: .compressFloor)
    }
}
