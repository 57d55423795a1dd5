import RealModule

/// A dense layer y = W x + b in engine layout: `wt` is Wᵀ (in, out), so one sample is a sum of rows
/// (`vecMat`) and a block is one sgemm. Loaded from PyTorch's (out, in) `weight` and `bias`.
public struct Linear: @unchecked Sendable {
    public let inputs: Int, outputs: Int
    @usableFromInline let wt: UnsafeMutablePointer<Scalar>  // (in, out)
    @usableFromInline let bias: UnsafeMutablePointer<Scalar>  // (out)
    /// The weight in half precision, (in, out) as `wt` in strips, when the file stores it so: the
    /// per-sample paths read it (half the bytes); blocks and training use `wt` (the same values, widened).
    @usableFromInline let wt16: StripMatrix<Float16>?

    init(_ r: TensorReader, prefix p: String, inputs: Int, outputs: Int, bias hasBias: Bool = true, arena: Arena) throws(ModelError) {
        self.init(weight: try r.take(p + "weight", [outputs, inputs]),
                  bias: hasBias ? try r.take(p + "bias", [outputs]) : nil, inputs: inputs, outputs: outputs,
                  half: r.isHalf(p + "weight"), arena: arena)
    }

    /// From a (out, in) weight and an optional bias (zero when nil).
    init(weight w: [Scalar], bias b: [Scalar]? = nil, inputs: Int, outputs: Int, half: Bool = false, arena: Arena) {
        self.inputs = inputs; self.outputs = outputs
        wt = arena.floats(inputs * outputs)
        for o in 0..<outputs { for i in 0..<inputs { wt[i * outputs + o] = w[o * inputs + i] } }
        bias = b.map(arena.copy) ?? arena.floats(outputs)
        wt16 = half ? arena.halfStrips(wt, rows: inputs, columns: outputs) : nil
    }

    /// PyTorch's default init: U(±1/√in) for weight and bias.
    static func initialize(_ t: inout [String: Tensor], prefix p: String, inputs: Int, outputs: Int, rng: inout SeededRandom) {
        let k = 1 / Double(inputs).squareRoot()
        t[p + "weight"] = Tensor((0..<(inputs * outputs)).map { _ in rng.uniform(-k, k) }, shape: [outputs, inputs])
        t[p + "bias"] = Tensor((0..<outputs).map { _ in rng.uniform(-k, k) }, shape: [outputs])
    }

    /// y (out) = W x + b.
    public func apply(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>) {
        y.update(from: bias, count: outputs)
        if let wt16 { vecMat(x, wt16, y, accumulate: true) }
        else { vecMat(x, rows: inputs, wt, columns: outputs, y, accumulate: true) }
    }

    /// Y (L, out) = X (L, in) Wᵀ + b; rows of X are `inputStride` apart (default: contiguous).
    public func apply(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int, inputStride: Int? = nil) {
        for k in 0..<L { (Y + k * outputs).update(from: bias, count: outputs) }
        gemm(X, wt, Y, M: L, N: outputs, K: inputs, beta: 1, lda: inputStride ?? inputs)
    }

    /// One sample of each of G streams: Y (G, out) = X (G, in) Wᵀ + b, every weight read once for
    /// four streams (`rowsMat`) rather than once per stream. Rows of X are `inputStride` apart.
    public func apply(_ X: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, streams G: Int, inputStride: Int? = nil) {
        for g in 0..<G { (Y + g * outputs).update(from: bias, count: outputs) }
        if let wt16 { rowsMat(X, rows: G, wt16, Y, accumulate: true, inputStride: inputStride) }
        else { rowsMat(X, rows: G, depth: inputs, wt, columns: outputs, Y, accumulate: true, inputStride: inputStride) }
    }

    /// Pullback of the block form: dWᵀ += Xᵀ dY, db += Σ_k dY_k, and dX = dY W (overwritten, or
    /// added to with `accumulate`; skipped when nil). X rows are `inputStride` apart, as in `apply`.
    public func backward(_ X: UnsafePointer<Scalar>, _ dY: UnsafePointer<Scalar>, _ dX: UnsafeMutablePointer<Scalar>?,
                         length L: Int, inputStride: Int? = nil, accumulate: Bool = false, into grad: Linear) {
        gemm(X, dY, grad.wt, M: inputs, N: outputs, K: L, beta: 1, lda: inputStride ?? inputs, transA: true)
        for k in 0..<L { for o in 0..<outputs { grad.bias[o] += dY[k * outputs + o] } }
        if let dX {
            gemm(dY, wt, dX, M: L, N: inputs, K: outputs, beta: accumulate ? 1 : 0, transB: true, ldc: inputStride ?? inputs)
        }
    }

    /// The gradient of PyTorch's (out, in) `weight` from the engine's (in, out) one.
    func weightGradient() -> [Scalar] {
        var w = [Scalar](repeating: 0, count: inputs * outputs)
        for o in 0..<outputs { for i in 0..<inputs { w[o * inputs + i] = wt[i * outputs + o] } }
        return w
    }
    func biasGradient() -> [Scalar] { Array(UnsafeBufferPointer(start: bias, count: outputs)) }

    public var parameterCount: Int { inputs * outputs + outputs }
}

/// LayerNorm (x − mean)/√(var + ε)·w + b, or RMSNorm x/√(mean x² + ε)·w, over H channels.
public struct Norm: @unchecked Sendable {
    public let kind: BlockSpec.Norm
    public let H: Int
    let eps: Scalar
    @usableFromInline let weight: UnsafeMutablePointer<Scalar>
    @usableFromInline let bias: UnsafeMutablePointer<Scalar>

    init(_ kind: BlockSpec.Norm, _ r: TensorReader, prefix p: String, H: Int, eps: Scalar, arena: Arena) throws(ModelError) {
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
    public func apply(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>) {
        switch kind {
        case .none:
            if UnsafePointer(y) != x { y.update(from: x, count: H) }
        case .layer:
            // Eight lanes at a time (the sums in eight partial sums, then the tail).
            let h8 = H & ~7
            var s8 = V8(), i = 0
            while i < h8 { s8 += load8(x + i); i += 8 }
            var mean = s8.sum()
            for j in h8..<H { mean += x[j] }
            mean /= Scalar(H)
            let m8 = V8(repeating: mean)
            var v8 = V8(); i = 0
            while i < h8 { let d = load8(x + i) - m8; v8 = v8.addingProduct(d, d); i += 8 }
            var v = v8.sum()
            for j in h8..<H { let d = x[j] - mean; v += d * d }
            let inv = 1 / (v / Scalar(H) + eps).squareRoot(), inv8 = V8(repeating: inv)
            i = 0
            while i < h8 { store8((load8(x + i) - m8) * inv8 * load8(weight + i) + load8(bias + i), y + i); i += 8 }
            for j in h8..<H { y[j] = (x[j] - mean) * inv * weight[j] + bias[j] }
        case .rms:
            let h8 = H & ~7
            var s8 = V8(), i = 0
            while i < h8 { let v = load8(x + i); s8 = s8.addingProduct(v, v); i += 8 }
            var ms = s8.sum()
            for j in h8..<H { ms += x[j] * x[j] }
            let inv = 1 / (ms / Scalar(H) + eps).squareRoot(), inv8 = V8(repeating: inv)
            i = 0
            while i < h8 { store8(load8(x + i) * inv8 * load8(weight + i), y + i); i += 8 }
            for j in h8..<H { y[j] = x[j] * inv * weight[j] }
        }
    }

    /// Pullback of `apply` at input x (H): dx = ∂norm/∂x ᵀ dy (overwritten; may alias dy), and
    /// dw, db accumulated into `grad`. With x̂ = (x − μ)·r, r = (var + ε)^−½ (LayerNorm) or x̂ = x·r,
    /// r = (mean x² + ε)^−½ (RMSNorm), and e = dy ⊙ w:
    ///     LayerNorm: dx = r·(e − mean e − x̂·mean(e ⊙ x̂)),  RMSNorm: dx = r·(e − x̂·mean(e ⊙ x̂)).
    public func backward(_ x: UnsafePointer<Scalar>, _ dy: UnsafePointer<Scalar>, _ dx: UnsafeMutablePointer<Scalar>, into grad: Norm) {
        let n = Scalar(H)
        switch kind {
        case .none:
            if UnsafePointer(dx) != dy { dx.update(from: dy, count: H) }
        case .layer, .rms:
            var mean: Scalar = 0
            if kind == .layer { for i in 0..<H { mean += x[i] }; mean /= n }
            var v: Scalar = 0
            for i in 0..<H { let c = x[i] - mean; v += c * c }
            let r = 1 / (v / n + eps).squareRoot()
            var me: Scalar = 0, mex: Scalar = 0
            for i in 0..<H {
                let xh = (x[i] - mean) * r, e = dy[i] * weight[i]
                grad.weight[i] += dy[i] * xh
                if kind == .layer { grad.bias[i] += dy[i] }
                me += e; mex += e * xh
            }
            me /= n; mex /= n
            if kind == .rms { me = 0 }
            for i in 0..<H {
                let xh = (x[i] - mean) * r
                dx[i] = r * (dy[i] * weight[i] - me - xh * mex)
            }
        }
    }

    func weightGradient() -> [Scalar] { Array(UnsafeBufferPointer(start: weight, count: kind == .none ? 0 : H)) }
    func biasGradient() -> [Scalar] { Array(UnsafeBufferPointer(start: bias, count: kind == .layer ? H : 0)) }
}

extension BlockSpec.Activation {
    /// Applies the activation to n values in place.
    public func apply(_ x: UnsafeMutablePointer<Scalar>, _ n: Int) {
        switch self {
        case .none: return
        case .gelu: VectorMath.gelu(x, n)
        case .geluTanh: VectorMath.geluTanh(x, n)
        case .silu: VectorMath.silu(x, n)
        case .relu: for i in 0..<n { x[i] = max(x[i], 0) }
        case .abs: for i in 0..<n { x[i] = Swift.abs(x[i]) }
        }
    }
}

extension BlockSpec.Activation {
    /// Pullback at the pre-activations x (n): dx = f'(x) ⊙ dy, in place on dy.
    ///     GELU: Φ(x) + x·φ(x) · GELU-tanh = x·σ(2y): σ(2y) + x·σ(2y)(1 − σ(2y))·2y′ · SiLU: σ(x)(1 + x(1 − σ(x))) · ReLU: [x > 0] · abs: sign(x)
    public func backward(_ x: UnsafePointer<Scalar>, _ dy: UnsafeMutablePointer<Scalar>, _ n: Int) {
        switch self {
        case .none: return
        case .gelu: combine8(x, dy, dy, n) { geluDerivative8($0) * $1 }
        case .geluTanh: combine8(x, dy, dy, n) { geluTanhDerivative8($0) * $1 }
        case .silu:
            combine8(x, dy, dy, n) { x, g in let s = sigmoid8(x); return g * s * (1 + x * (1 - s)) }
        case .relu: for i in 0..<n where !(x[i] > 0) { dy[i] = 0 }
        case .abs: for i in 0..<n { dy[i] = x[i] > 0 ? dy[i] : x[i] < 0 ? -dy[i] : 0 }
        }
    }
}

/// d/dx GELU(x) = Φ(x) + x·φ(x), Φ through the same erf as the forward.
@inline(__always) @usableFromInline
func geluDerivative8(_ x: V8) -> V8 {
    let phi = exp8(-0.5 * x * x) * 0.39894228040143268  // 1/√(2π)
    return 0.5 * (1 + erf8(x * 0.70710678118654752)) + x * phi
}

/// d/dx of x·σ(2y), y = √(2/π)(x + 0.044715x³): σ(2y) + x·σ(2y)(1 − σ(2y))·2√(2/π)(1 + 3·0.044715x²).
@inline(__always) @usableFromInline
func geluTanhDerivative8(_ x: V8) -> V8 {
    let y = 0.79788456080286536 * (x + 0.044715 * x * x * x)
    let s: V8 = sigmoid8(y + y)
    let dy: V8 = 1.59576912160573072 * (1 + 0.134145 * x * x)           // 2y′ = 2√(2/π)(1 + 3·0.044715x²)
    let ds: V8 = s * (1 - s)
    return s + x * ds * dy
}

/// Pullback of `gatedGELU` over one vector: v = [a; b] (2n, before the gate), dy (n) →
/// dv = [dy ⊙ b ⊙ GELU_tanh′(a); dy ⊙ GELU_tanh(a)] (2n).
func gatedGELUBackward(_ v: UnsafePointer<Scalar>, _ dy: UnsafePointer<Scalar>, _ dv: UnsafeMutablePointer<Scalar>, _ n: Int) {
    combine8(v, dy, dv + n, n) { geluTanh8($0) * $1 }
    combine8(v + n, dy, dv, n) { $0 * $1 }
    combine8(v, dv, dv, n) { geluTanhDerivative8($0) * $1 }
}

/// Pullback of `glu` over one vector: v = [a; b] (2n), dy (n) → dv = [dy ⊙ σ(b); dy ⊙ a ⊙ σ(b)(1 − σ(b))].
func gluBackward(_ v: UnsafePointer<Scalar>, _ dy: UnsafePointer<Scalar>, _ dv: UnsafeMutablePointer<Scalar>, _ n: Int) {
    combine8(v + n, dy, dv, n) { sigmoid8($0) * $1 }
    combine8(v, dv, dv + n, n) { a, g in a * g }                        // a ⊙ dy ⊙ σ(b)
    combine8(v + n, dv + n, dv + n, n) { b, g in g * (1 - sigmoid8(b)) }
}

/// Griffin's MLP gate over a vector of 2n, in place on its first half: v[i] ← GELU_tanh(v[i]) · v[n + i].
func gatedGELU(_ v: UnsafeMutablePointer<Scalar>, _ n: Int) {
    combine8(v, v + n, v, n) { geluTanh8($0) * $1 }
}

/// GLU over a vector of 2n: y[i] = v[i] · σ(v[n + i]).
func glu(_ v: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>, _ n: Int) {
    combine8(v, v + n, y, n) { $0 * sigmoid8($1) }
}

/// Masks over a training sequence's features (SpecAugment, Park et al. 2019), applied to a
/// compressing block's compressed input (its log-envelopes, `BlockSpec.compress`): spans of channels
/// and spans of rows (time), each a fraction [lo, hi) of the block's H channels or of its L rows, so
/// that one mask fits any architecture. Channel h is in a span when (h + ½)/H is, row k when
/// (k + ½)/L is. A masked value becomes its row's mean (over all H channels, before masking): a
/// masked channel tells no more than the frame's level, and a masked row is flat (zero after a
/// layer norm). Training only: streaming never masks.
public struct FeatureMask: Sendable, Equatable {
    public var channels: [Range<Double>]
    public var rows: [Range<Double>]
    public init(channels: [Range<Double>] = [], rows: [Range<Double>] = []) { self.channels = channels; self.rows = rows }
    public var isEmpty: Bool { channels.isEmpty && rows.isEmpty }

    /// X (L, H) in place: x[k, h] ← keep·x[k, h] + (1 − keep)·x̄_k, x̄_k = (1/H) Σ_h x[k, h]; keep
    /// (L, H) receives the 0/1 flags `backward` needs. An empty mask changes nothing (and `Block`
    /// then calls neither).
    func apply(_ X: UnsafeMutablePointer<Scalar>, keep: UnsafeMutablePointer<Scalar>, length L: Int, H: Int) {
        for k in 0..<L {
            let x = X + k * H, f = keep + k * H
            let row = rows.contains { $0.contains((Double(k) + 0.5) / Double(L)) }
            var mean: Scalar = 0
            for h in 0..<H { mean += x[h] }
            mean /= Scalar(H)
            for h in 0..<H {
                let masked = row || channels.contains { $0.contains((Double(h) + 0.5) / Double(H)) }
                f[h] = masked ? 0 : 1
                if masked { x[h] = mean }
            }
        }
    }

    /// Pullback of `apply`, in place on dX (L, H): dx[k, h] = keep·g[k, h] + (1/H) Σ_h' (1 − keep[k, h'])·g[k, h'].
    func backward(_ dX: UnsafeMutablePointer<Scalar>, keep: UnsafePointer<Scalar>, length L: Int, H: Int) {
        for k in 0..<L {
            let g = dX + k * H, f = keep + k * H
            var s: Scalar = 0
            for h in 0..<H { s += (1 - f[h]) * g[h] }
            s /= Scalar(H)
            for h in 0..<H { g[h] = f[h] * g[h] + s }
        }
    }
}

/// Dropout (Srivastava et al. 2014) on a block's activated layer output a (L, H) before its output
/// projection, where the S4 and S5 blocks train with it: each value is kept with probability
/// 1 − rate and then scaled by 1/(1 − rate), so that its expectation is unchanged; the others become
/// 0. Whether value i of block b is kept is a pure function of (seed, b, i), so a sequence's
/// forward and backward agree and a run gives the same model whatever its thread count. Training
/// only: streaming never drops, and a block without an output projection is not dropped.
public struct Dropout: Sendable, Equatable {
    public var rate: Scalar
    public var seed: UInt64
    public init(rate: Scalar, seed: UInt64) { self.rate = rate; self.seed = seed }

    /// The same rate with block b's own stream of decisions.
    func forBlock(_ b: Int) -> Dropout { Dropout(rate: rate, seed: Dropout.mix(seed ^ (UInt64(b + 1) &* 0xD1B5_4A32_D192_ED03))) }

    /// SplitMix64's finalizer: a well-mixed 64-bit hash of x.
    @inline(__always) public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// s_i: 1/(1 − rate) if value i is kept, else 0 (a hash of (seed, i): the backward recomputes
    /// it rather than keeping n factors on the tape).
    @inline(__always) func factor(_ i: Int, threshold: UInt64, keep: Scalar) -> Scalar {
        Dropout.mix(seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >> 11 < threshold ? 0 : keep
    }

    /// A (n values) in place: a_i ← s_i·a_i. Also its own pullback: da_i ← s_i·da_i.
    func apply(_ A: UnsafeMutablePointer<Scalar>, count n: Int) {
        let keep = 1 / (1 - rate), threshold = UInt64(Double(rate) * 0x1p53)
        for i in 0..<n { A[i] *= factor(i, threshold: threshold, keep: keep) }
    }
}

extension BlockSpec.Compress {
    /// x ← ln(ε + |x|) on n values in place (`BlockSpec.compress`).
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Scalar>, _ n: Int, floor eps: Scalar) {
        switch self {
        case .none: return
        case .log: for i in 0..<n { x[i] = Scalar.log(eps + Swift.abs(x[i])) }
        }
    }

    /// Pullback at the uncompressed inputs x (n): dx = sign(x) / (ε + |x|) ⊙ dy, in place on dy.
    func backward(_ x: UnsafePointer<Scalar>, _ dy: UnsafeMutablePointer<Scalar>, _ n: Int, floor eps: Scalar) {
        switch self {
        case .none: return
        case .log:
            for i in 0..<n {
                let v = x[i], g = dy[i] / (eps + Swift.abs(v))
                dy[i] = v > 0 ? g : v < 0 ? -g : 0
            }
        }
    }
}
