/// The families of sequence layer ssm-stream runs.
public enum Family: String, Codable, Sendable, CaseIterable {
    case s4, s4d, s5, lru, mamba, rglru, hawk, h3
    /// No sequence layer (y = u): a block of channel mixing only, e.g. Griffin's MLP block.
    case identity
    /// Each channel minus its running mean (`MeanNorm`): no trained parameters, d_state 0, `window`.
    case meanNorm = "mean_norm"

    /// A sequence model of its own, as opposed to a scaffold piece (identity, mean_norm): what
    /// `bench --family` times and `version` lists.
    public var isSequenceModel: Bool { self != .identity && self != .meanNorm }

    public init(from decoder: Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let f = Family(rawValue: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                "unknown family '\(name)' (this build runs \(Family.allCases.map(\.rawValue).joined(separator: ", ")))"))
        }
        self = f
    }
}

/// One sequence layer's architecture, as stored in a model file's JSON description. Fields that a
/// family does not use are ignored by it; every family documents which it reads.
public struct LayerSpec: Codable, Sendable, Equatable {
    public var family: Family
    /// H: input and output channels.
    public var dModel: Int
    /// S4, S4D: N (the stored complex axis holds N/2). S5: P after conjugate-symmetric halving.
    /// LRU: N. Mamba: N per channel. RG-LRU: its width (= d_model). Hawk: lru_width. H3: N (shift taps;
    /// N/2 complex lanes per diagonal channel).
    public var dState: Int
    /// S4D, S5 (default zoh); H3's S4D branch (default bilinear). The LRU is parametrized directly in discrete time.
    public var discretization: Discretization?
    /// Initialization used by `ssm-stream` when it creates a model (not needed to load one):
    /// S4D: legs | lin | inv | real; S5: legs; LRU: ring.
    public var initialization: String?
    /// S5: y = 2·Re(C x) (true, default) or Re(C x).
    public var conjSym: Bool?
    /// S4D: "fftconv" (state-spaces/s4 FFTConv names, default) or "minimal" (the teaching S4D module).
    public var parametrization: String?
    /// S5: number of HiPPO blocks in the init (default 1).
    public var blocks: Int?
    /// Δ range of the init (default 1e-3 … 1e-1).
    public var dtMin: Double?
    public var dtMax: Double?
    /// LRU ring init: r_min, r_max, max_phase (defaults 0.9, 0.999, π/10).
    public var rMin: Double?
    public var rMax: Double?
    public var maxPhase: Double?
    /// Mamba: E = expand·d_model (default 2), conv taps (default 4), Δ rank (default ⌈d_model/16⌉).
    public var expand: Int?
    public var dConv: Int?
    public var dtRank: Int?
    /// RG-LRU / Hawk: gate blocks (default 1); Hawk: conv taps (default 4).
    public var heads: Int?
    public var convWidth: Int?
    /// H3: the diagonal branch's family, s4d (default) or s4; the heads' width d (default 1, must divide d_model).
    public var inner: Family?
    public var headDim: Int?
    /// mean_norm: the running mean's window W in the layer's own steps (after any pool): a = 1 − 1/W.
    public var window: Int?

    public init(family: Family, dModel: Int, dState: Int, discretization: Discretization? = nil,
                initialization: String? = nil) {
        self.family = family; self.dModel = dModel; self.dState = dState
        self.discretization = discretization; self.initialization = initialization
    }

    enum CodingKeys: String, CodingKey {
        case family, dModel = "d_model", dState = "d_state", discretization, initialization = "init"
        case conjSym = "conj_sym", parametrization, blocks, dtMin = "dt_min", dtMax = "dt_max"
        case rMin = "r_min", rMax = "r_max", maxPhase = "max_phase"
        case expand, dConv = "d_conv", dtRank = "dt_rank"
        case heads = "num_heads", convWidth = "conv1d_temporal_width"
        case inner, headDim = "head_dim"
        case window
    }
}
