/// A sequence layer inside its scaffold (see `BlockSpec` for the equations and tensor names).
///
/// A class, not a struct: `for b in blocks { b.step(…) }` then passes a reference, where a struct
/// (its spec holds strings and optionals) would be copied — retains, releases and a memmove — on
/// every sample. The scaffold's choices the hot paths read are kept as plain fields.
public final class Block: Sendable {
    public let spec: BlockSpec
    public let H: Int
    public let layer: SequenceLayer
    let prenorm: Bool
    let residual: Bool
    let activation: BlockSpec.Activation
    let output: BlockSpec.Output
    let norm: Norm
    let out1: Linear?   // linear (H→H), glu (H→2H), mlp fc1 (H→E)
    let out2: Linear?   // mlp fc2 (E→H)
    /// Offset of this block's recurrent state in the model state.
    let stateOffset: Int

    init(_ spec: BlockSpec, _ r: TensorReader, prefix p: String, stateOffset: Int, arena: Arena) throws(ModelError) {
        self.spec = spec
        let H = spec.layer.dModel
        self.H = H
        prenorm = spec.prenorm; residual = spec.residual; activation = spec.activation; output = spec.output
        self.stateOffset = stateOffset
        layer = try SequenceLayer.load(spec.layer, r, prefix: p + (spec.layerPrefix ?? "layer."), arena: arena)
        norm = try Norm(spec.norm, r, prefix: p + "norm.", H: H, eps: spec.normEps ?? 1e-5, arena: arena)
        switch spec.output {
        case .none: out1 = nil; out2 = nil
        case .linear: out1 = try Linear(r, prefix: p + "output_linear.0.", inputs: H, outputs: H, arena: arena); out2 = nil
        case .glu: out1 = try Linear(r, prefix: p + "output_linear.0.", inputs: H, outputs: 2 * H, arena: arena); out2 = nil
        case .mlp:
            let E = (spec.mlpExpand ?? 2) * H
            out1 = try Linear(r, prefix: p + "mlp.fc1.", inputs: H, outputs: E, arena: arena)
            out2 = try Linear(r, prefix: p + "mlp.fc2.", inputs: E, outputs: H, arena: arena)
        case .gatedMLP:
            // ffw_up: one H → 2E linear whose outputs [0, E) are the gate branch (W₀) and [E, 2E) the
            // value branch (W₁); the einsum weight (2, H, E) is (branch, in, out).
            let E = (spec.mlpExpand ?? 3) * H
            let w = try r.take(p + "mlp_block.ffw_up.w", [2, H, E]), b = try r.take(p + "mlp_block.ffw_up.b", [2, E])
            var wOutIn = [Float](repeating: 0, count: 2 * E * H)
            for c in 0..<2 { for i in 0..<H { for o in 0..<E { wOutIn[(c * E + o) * H + i] = w[(c * H + i) * E + o] } } }
            out1 = Linear(weight: wOutIn, bias: b, inputs: H, outputs: 2 * E, arena: arena)
            out2 = try Linear(r, prefix: p + "mlp_block.ffw_down.", inputs: E, outputs: H, arena: arena)
        }
    }

    static func initialize(_ spec: BlockSpec, _ t: inout [String: Tensor], prefix p: String, rng: inout SeededRandom) throws(ModelError) {
        let H = spec.layer.dModel
        for (k, v) in try SequenceLayer.initialize(spec.layer, rng: &rng) { t[p + (spec.layerPrefix ?? "layer.") + k] = v }
        Norm.initialize(spec.norm, &t, prefix: p + "norm.", H: H)
        switch spec.output {
        case .none: break
        case .linear: Linear.initialize(&t, prefix: p + "output_linear.0.", inputs: H, outputs: H, rng: &rng)
        case .glu: Linear.initialize(&t, prefix: p + "output_linear.0.", inputs: H, outputs: 2 * H, rng: &rng)
        case .mlp:
            let E = (spec.mlpExpand ?? 2) * H
            Linear.initialize(&t, prefix: p + "mlp.fc1.", inputs: H, outputs: E, rng: &rng)
            Linear.initialize(&t, prefix: p + "mlp.fc2.", inputs: E, outputs: H, rng: &rng)
        case .gatedMLP:
            // recurrentgemma's init: ffw_up w ~ N(0, 1/H), b = 0; ffw_down w ~ N(0, 1/E), b = 0.
            let E = (spec.mlpExpand ?? 3) * H
            let su = 1 / Double(H).squareRoot(), sd = 1 / Double(E).squareRoot()
            t[p + "mlp_block.ffw_up.w"] = Tensor((0..<(2 * H * E)).map { _ in rng.normal() * su }, shape: [2, H, E])
            t[p + "mlp_block.ffw_up.b"] = Tensor([Double](repeating: 0, count: 2 * E), shape: [2, E])
            t[p + "mlp_block.ffw_down.weight"] = Tensor((0..<(H * E)).map { _ in rng.normal() * sd }, shape: [H, E])
            t[p + "mlp_block.ffw_down.bias"] = Tensor([Double](repeating: 0, count: H), shape: [H])
        }
    }

    /// Width of the output-projection work vector (2H for GLU, E for the MLP).
    var workWidth: Int { max(out1?.outputs ?? 0, H) }

    /// One sample, in place on x (H). `w` holds the work vectors.
    func step(_ x: UnsafeMutablePointer<Float>, state: UnsafeMutablePointer<Float>, _ w: StepWork) {
        // The layer reads x itself unless a pre-norm writes a normalized copy (no copy per sample
        // otherwise: at small H the calls, not the arithmetic, are the cost).
        let u: UnsafePointer<Float>
        if prenorm && norm.kind != .none { norm.apply(x, w.t); u = UnsafePointer(w.t) } else { u = UnsafePointer(x) }
        layer.step(u, w.y, state: state + stateOffset, scratch: w.s)
        activation.apply(w.y, H)
        let z: UnsafeMutablePointer<Float>
        switch output {
        case .none: z = w.y
        case .linear: out1!.apply(w.y, w.z); z = w.z
        case .glu: out1!.apply(w.y, w.v); glu(w.v, w.z, H); z = w.z
        case .mlp:
            out1!.apply(w.y, w.v); BlockSpec.Activation.gelu.apply(w.v, out1!.outputs); out2!.apply(w.v, w.z); z = w.z
        case .gatedMLP:
            let E = out2!.inputs
            out1!.apply(w.y, w.v); gatedGELU(w.v, E); out2!.apply(w.v, w.z); z = w.z
        }
        if residual { for i in 0..<H { x[i] += z[i] } } else { for i in 0..<H { x[i] = z[i] } }
        if !prenorm && norm.kind != .none { norm.apply(x, x) }
    }

    /// L samples, in place on X (L, H): the same arithmetic as L steps, with the projections batched.
    func forward(_ X: UnsafeMutablePointer<Float>, length L: Int, state: UnsafeMutablePointer<Float>, _ w: BlockWork, mode: ForwardMode) {
        let n = L * H
        for k in 0..<L {
            if prenorm { norm.apply(X + k * H, w.t + k * H) } else { (w.t + k * H).update(from: X + k * H, count: H) }
        }
        layer.forward(w.t, w.y, length: L, state: state + stateOffset, scratch: w.s, mode: mode)
        activation.apply(w.y, n)
        let z: UnsafeMutablePointer<Float>
        switch output {
        case .none: z = w.y
        case .linear: out1!.apply(w.y, w.z, length: L); z = w.z
        case .glu:
            out1!.apply(w.y, w.v, length: L)
            for k in 0..<L { glu(w.v + k * 2 * H, w.z + k * H, H) }
            z = w.z
        case .mlp:
            out1!.apply(w.y, w.v, length: L); BlockSpec.Activation.gelu.apply(w.v, L * out1!.outputs)
            out2!.apply(w.v, w.z, length: L); z = w.z
        case .gatedMLP:
            let E = out2!.inputs
            out1!.apply(w.y, w.v, length: L)
            for k in 0..<L { gatedGELU(w.v + k * 2 * E, E) }
            out2!.apply(w.v, w.z, length: L, inputStride: 2 * E); z = w.z
        }
        if residual { for i in 0..<n { X[i] += z[i] } } else { X.update(from: z, count: n) }
        if !prenorm { for k in 0..<L { norm.apply(X + k * H, X + k * H) } }
    }

    public var parameterCount: Int {
        (out1?.parameterCount ?? 0) + (out2?.parameterCount ?? 0) + (spec.norm == .none ? 0 : spec.norm == .layer ? 2 * H : H)
    }

    public var flopsPerSample: Int {
        layer.flopsPerSample + 2 * (out1.map { $0.inputs * $0.outputs } ?? 0) + 2 * (out2.map { $0.inputs * $0.outputs } ?? 0)
            + (spec.norm == .none ? 0 : 5 * H) + (spec.residual ? H : 0)
    }
}

/// Work vectors for one sample (owned by `ModelState`).
@usableFromInline struct StepWork {
    @usableFromInline let t, y, v, z, s: UnsafeMutablePointer<Float>
}

/// Work buffers for a block of up to `maxBlock` samples (owned by `ModelState`).
struct BlockWork {
    let t, y, v, z, s: UnsafeMutablePointer<Float>
}
