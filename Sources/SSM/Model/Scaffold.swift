import RealModule

/// A dense layer y = W x + b in engine layout: `wt` is Wᵀ (in, out), so one sample is a sum of rows
/// (`vecMat`) and a block is one sgemm. Loaded from PyTorch's (out, in) `weight` and `bias`.
public struct Linear: @unchecked Sendable {
    public let inputs: Int, outputs: Int
    @usableFromInline let wt: UnsafeMutablePointer<Float>  // (in, out)
    @usableFromInline let bias: UnsafeMutablePointer<Float>  // (out)

    init(_ r: TensorReader, prefix p: String, inputs: Int, outputs: Int, bias hasBias: Bool = true, arena: Arena) throws(ModelError) {
        self.init(weight: try r.take(p + "weight", [outputs, inputs]),
                  bias: hasBias ? try r.take(p + "bias", [outputs]) : nil, inputs: inputs, outputs: outputs, arena: arena)
    }

    /// From a (out, in) weight and an optional bias (zero when nil).
    init(weight w: [Float], bias b: [Float]? = nil, inputs: Int, outputs: Int, arena: Arena) {
        self.inputs = inputs; self.outputs = outputs
        wt = arena.floats(inputs * outputs)
        for o in 0..<outputs { for i in 0..<inputs { wt[i * outputs + o] = w[o * inputs + i] } }
        bias = b.map(arena.copy) ?? arena.floats(outputs)
    }

    /// PyTorch's default init: U(±1/√in) for weight and bias.
    static func initialize(_ t: inout [String: Tensor], prefix p: String, inputs: Int, outputs: Int, rng: inout SeededRandom) {
        let k = 1 / Double(inputs).squareRoot()
        t[p + "weight"] = Tensor((0..<(inputs * outputs)).map { _ in rng.uniform(-k, k) }, shape: [outputs, inputs])
        t[p + "bias"] = Tensor((0..<outputs).map { _ in rng.uniform(-k, k) }, shape: [outputs])
    }

    /// y (out) = W x + b.
    public func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        y.update(from: bias, count: outputs)
        vecMat(x, rows: inputs, wt, columns: outputs, y, accumulate: true)
    }

    /// Y (L, out) = X (L, in) Wᵀ + b; rows of X are `inputStride` apart (default: contiguous).
    public func apply(_ X: UnsafePointer<Float>, _ Y: UnsafeMutablePointer<Float>, length L: Int, inputStride: Int? = nil) {
        for k in 0..<L { (Y + k * outputs).update(from: bias, count: outputs) }
        gemm(X, wt, Y, M: L, N: outputs, K: inputs, beta: 1, lda: inputStride ?? inputs)
    }

    public var parameterCount: Int { inputs * outputs + outputs }
}

/// LayerNorm (x − mean)/√(var + ε)·w + b, or RMSNorm x/√(mean x² + ε)·w, over H channels.
public struct Norm: @unchecked Sendable {
    public let kind: BlockSpec.Norm
    public let H: Int
    let eps: Float
    @usableFromInline let weight: UnsafeMutablePointer<Float>
    @usableFromInline let bias: UnsafeMutablePointer<Float>

    init(_ kind: BlockSpec.Norm, _ r: TensorReader, prefix p: String, H: Int, eps: Float, arena: Arena) throws(ModelError) {
        self.kind = kind; self.H = H; self.eps = eps
        switch kind {
        case .none: weight = arena.floats(0); bias = arena.floats(0)
        case .layer: weight = arena.copy(try r.take(p + "weight", [H])); bias = arena.copy(try r.take(p + "bias", [H]))
        case .rms: weight = arena.copy(try r.take(p + "weight", [H])); bias = arena.floats(H)
        }
    }

    static func initialize(_ kind: BlockSpec.Norm, _ t: inout [String: Tensor], prefix p: String, H: Int) {
        if kind == .none { return }
        t[p + "weight"] = Tensor(shape: [H], values: Array(repeating: 1, count: H))
        if kind == .layer { t[p + "bias"] = Tensor(shape: [H], values: Array(repeating: 0, count: H)) }
    }

    /// y = norm(x), one vector of H (x and y may alias).
    public func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        switch kind {
        case .none:
            if UnsafePointer(y) != x { y.update(from: x, count: H) }
        case .layer:
            var mean: Float = 0
            for i in 0..<H { mean += x[i] }
            mean /= Float(H)
            var v: Float = 0
            for i in 0..<H { let d = x[i] - mean; v += d * d }
            let inv = 1 / (v / Float(H) + eps).squareRoot()
            for i in 0..<H { y[i] = (x[i] - mean) * inv * weight[i] + bias[i] }
        case .rms:
            var ms: Float = 0
            for i in 0..<H { ms += x[i] * x[i] }
            let inv = 1 / (ms / Float(H) + eps).squareRoot()
            for i in 0..<H { y[i] = x[i] * inv * weight[i] }
        }
    }
}

extension BlockSpec.Activation {
    /// Applies the activation to n values in place.
    public func apply(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .none: return
        case .gelu: VectorMath.gelu(x, n)
        case .geluTanh: VectorMath.geluTanh(x, n)
        case .silu: VectorMath.silu(x, n)
        case .relu: for i in 0..<n { x[i] = max(x[i], 0) }
        }
    }
}

/// Griffin's MLP gate over a vector of 2n, in place on its first half: v[i] ← GELU_tanh(v[i]) · v[n + i].
func gatedGELU(_ v: UnsafeMutablePointer<Float>, _ n: Int) {
    combine8(v, v + n, v, n) { geluTanh8($0) * $1 }
}

/// GLU over a vector of 2n: y[i] = v[i] · σ(v[n + i]).
func glu(_ v: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    combine8(v, v + n, y, n) { $0 * sigmoid8($1) }
}
