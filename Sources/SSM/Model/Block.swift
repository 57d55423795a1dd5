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
    let compress: BlockSpec.Compress
    let compressFloor: Scalar
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
        compress = spec.compress ?? .none
        compressFloor = Scalar(spec.compressFloor ?? BlockSpec.defaultCompressFloor)
        guard compressFloor > 0, compressFloor.isFinite else {
            throw ModelError("\(p)compress_floor must be a positive number (got \(spec.compressFloor ?? 0))")
        }
        self.stateOffset = stateOffset
        layer = try SequenceLayer.load(spec.layer, r, prefix: p + (spec.layerPrefix ?? "layer."), arena: arena)
        norm = try Norm(spec.norm, r, prefix: p + "norm.", H: H, eps: Scalar(spec.normEps ?? 1e-5), arena: arena)
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
            var wOutIn = [Scalar](repeating: 0, count: 2 * E * H)
            for c in 0..<2 { for i in 0..<H { for o in 0..<E { wOutIn[(c * E + o) * H + i] = w[(c * H + i) * E + o] } } }
            out1 = Linear(weight: wOutIn, bias: b, inputs: H, outputs: 2 * E, half: r.isHalf(p + "mlp_block.ffw_up.w"), arena: arena)
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

    /// Pullback of `init`: the engine-layout gradients in `grad` (this block of a gradient twin) → the
    /// gradients of the block's tensors, by their file names.
    func parameterGradients(_ grad: Block, _ r: TensorReader, prefix p: String, into out: inout [String: [Scalar]]) throws(ModelError) {
        for (k, v) in try SequenceLayer.parameterGradients(spec.layer, r, prefix: p + (spec.layerPrefix ?? "layer."), gradient: grad.layer) {
            out[k] = v
        }
        if norm.kind != .none { out[p + "norm.weight"] = grad.norm.weightGradient() }
        if norm.kind == .layer { out[p + "norm.bias"] = grad.norm.biasGradient() }
        func linear(_ name: String, _ l: Linear?) {
            guard let l else { return }
            out[p + name + "weight"] = l.weightGradient(); out[p + name + "bias"] = l.biasGradient()
        }
        switch output {
        case .none: break
        case .linear, .glu: linear("output_linear.0.", grad.out1)
        case .mlp: linear("mlp.fc1.", grad.out1); linear("mlp.fc2.", grad.out2)
        case .gatedMLP:
            // Back from the engine's (2E, H) (out, in) weight to the einsum's (2, H, E).
            let E = out2!.inputs, w = grad.out1!.weightGradient()
            var up = [Scalar](repeating: 0, count: 2 * H * E)
            for c in 0..<2 { for i in 0..<H { for o in 0..<E { up[(c * H + i) * E + o] = w[(c * E + o) * H + i] } } }
            out[p + "mlp_block.ffw_up.w"] = up
            out[p + "mlp_block.ffw_up.b"] = grad.out1!.biasGradient()
            linear("mlp_block.ffw_down.", grad.out2)
        }
    }

    /// Width of the output-projection work vector (2H for GLU, E for the MLP).
    var workWidth: Int { max(out1?.outputs ?? 0, H) }

    /// One sample, in place on x (H). `w` holds the work vectors.
    func step(_ x: UnsafeMutablePointer<Scalar>, state: UnsafeMutablePointer<Scalar>, _ w: StepWork) {
        if compress != .none { compress.apply(x, H, floor: compressFloor) }
        // The layer reads x itself unless a pre-norm writes a normalized copy (no copy per sample
        // otherwise: at small H the calls, not the arithmetic, are the cost).
        let u: UnsafePointer<Scalar>
        if prenorm && norm.kind != .none { norm.apply(x, w.t); u = UnsafePointer(w.t) } else { u = UnsafePointer(x) }
        layer.step(u, w.y, state: state + stateOffset, scratch: w.s)
        activation.apply(w.y, H)
        let z: UnsafeMutablePointer<Scalar>
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
    /// With `streams` (a state stride), the L rows are instead one sample each of L independent
    /// streams, stream g's recurrent state at `state + g·stride`: the layer steps every stream
    /// (`SequenceLayer.step(streams:)`) and the projections are the same batched products, so each
    /// weight is read once for all L streams (`Model.step(_:_:batch:)`).
    /// A training tape (`BlockWork.isTape`) gives every intermediate its own buffer, so that it is
    /// still there for `backward`; a streaming `BlockWork` aliases them (y = a, v = g) and keeps nothing.
    /// `mask`: a training tape's feature masks, applied after the compression (`FeatureMask`);
    /// `dropout`: its dropout of the activated layer output, before the output projection (`Dropout`).
    func forward(_ X: UnsafeMutablePointer<Scalar>, length L: Int, state: UnsafeMutablePointer<Scalar>, _ w: BlockWork, mode: ForwardMode,
                 streams stride: Int? = nil, mask: FeatureMask? = nil, dropout: Dropout? = nil) {
        let n = L * H
        if compress != .none {
            if let raw = w.raw { raw.update(from: X, count: n) }
            compress.apply(X, n, floor: compressFloor)
            if let keep = w.keep, let mask, !mask.isEmpty { mask.apply(X, keep: keep, length: L, H: H) }
        }
        if let input = w.input { input.update(from: X, count: n) }
        for k in 0..<L {
            if prenorm { norm.apply(X + k * H, w.t + k * H) } else { (w.t + k * H).update(from: X + k * H, count: H) }
        }
        if let stride { layer.step(w.t, w.y, streams: L, state: state + stateOffset, stride: stride, scratch: w.s) }
        else { layer.forward(w.t, w.y, length: L, state: state + stateOffset, scratch: w.s, mode: mode, keepStates: w.isTape) }
        if w.a != w.y { w.a.update(from: w.y, count: n) }
        activation.apply(w.a, n)
        if w.isTape, output != .none, let dropout, dropout.rate > 0 { dropout.apply(w.a, count: n) }
        // Rows of a block: sgemm; one sample of many streams: each weight read once for four streams.
        func project(_ l: Linear, _ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>, inputStride: Int? = nil) {
            if stride != nil { l.apply(x, y, streams: L, inputStride: inputStride) } else { l.apply(x, y, length: L, inputStride: inputStride) }
        }
        let z: UnsafeMutablePointer<Scalar>
        switch output {
        case .none: z = w.a
        case .linear: project(out1!, w.a, w.z); z = w.z
        case .glu:
            project(out1!, w.a, w.v)
            for k in 0..<L { glu(w.v + k * 2 * H, w.z + k * H, H) }
            z = w.z
        case .mlp:
            let E = out1!.outputs
            project(out1!, w.a, w.v)
            if w.g != w.v { w.g.update(from: w.v, count: L * E) }
            BlockSpec.Activation.gelu.apply(w.g, L * E)
            project(out2!, w.g, w.z); z = w.z
        case .gatedMLP:
            let E = out2!.inputs
            project(out1!, w.a, w.v)
            if w.g != w.v { w.g.update(from: w.v, count: L * 2 * E) }
            for k in 0..<L { gatedGELU(w.g + k * 2 * E, E) }
            project(out2!, w.g, w.z, inputStride: 2 * E); z = w.z
        }
        if residual { for i in 0..<n { X[i] += z[i] } } else { X.update(from: z, count: n) }
        if let sum = w.sum { sum.update(from: X, count: n) }
        if !prenorm { for k in 0..<L { norm.apply(X + k * H, X + k * H) } }
    }

    /// Pullback of `forward` over the L samples its tape `w` holds: dX (L, H) is the gradient of the
    /// block's output on entry and of its input on return. Gradients of the block's weights
    /// accumulate, in engine layout, into `grad` (the same block of a gradient twin). The layer
    /// started from the zero state (training runs each sequence from rest). `mask`, `dropout`: the
    /// ones the forward ran with.
    func backward(_ dX: UnsafeMutablePointer<Scalar>, length L: Int, _ w: BlockWork, _ b: BackwardWork, into grad: Block,
                  mask: FeatureMask? = nil, dropout: Dropout? = nil) {
        precondition(w.isTape, "Block.backward needs a training tape")
        let n = L * H
        if !prenorm && norm.kind != .none { for k in 0..<L { norm.backward(w.sum! + k * H, dX + k * H, dX + k * H, into: grad.norm) } }
        // dX is now d(residual sum) = dz (and, with a residual, part of d(input)).
        let dA = b.da
        switch output {
        case .none: dA.update(from: dX, count: n)
        case .linear: out1!.backward(w.a, dX, dA, length: L, into: grad.out1!)
        case .glu:
            for k in 0..<L { gluBackward(w.v + k * 2 * H, dX + k * H, b.dv + k * 2 * H, H) }
            out1!.backward(w.a, b.dv, dA, length: L, into: grad.out1!)
        case .mlp:
            out2!.backward(w.g, dX, b.dv, length: L, into: grad.out2!)
            BlockSpec.Activation.gelu.backward(w.v, b.dv, L * out1!.outputs)
            out1!.backward(w.a, b.dv, dA, length: L, into: grad.out1!)
        case .gatedMLP:
            let E = out2!.inputs
            out2!.backward(w.g, dX, b.dg, length: L, inputStride: 2 * E, into: grad.out2!)
            for k in 0..<L { gatedGELUBackward(w.v + k * 2 * E, b.dg + k * 2 * E, b.dv + k * 2 * E, E) }
            out1!.backward(w.a, b.dv, dA, length: L, into: grad.out1!)
        }
        if output != .none, let dropout, dropout.rate > 0 { dropout.apply(dA, count: n) }    // its own pullback
        activation.backward(w.y, dA, n)                                   // dA is now dY of the layer
        layer.backward(w.t, tape: w.s, initial: b.zeroState, dA, b.dt, length: L, scratch: b.layer, into: grad.layer)
        if prenorm && norm.kind != .none { for k in 0..<L { norm.backward(w.input! + k * H, b.dt + k * H, b.dt + k * H, into: grad.norm) } }
        if residual { for i in 0..<n { dX[i] += b.dt[i] } } else { dX.update(from: b.dt, count: n) }
        if compress != .none {
            if let keep = w.keep, let mask, !mask.isEmpty { mask.backward(dX, keep: keep, length: L, H: H) }
            compress.backward(w.raw!, dX, n, floor: compressFloor)
        }
    }

    public var parameterCount: Int {
        (out1?.parameterCount ?? 0) + (out2?.parameterCount ?? 0) + (spec.norm == .none ? 0 : spec.norm == .layer ? 2 * H : H)
    }

    public var flopsPerSample: Int {
        layer.flopsPerSample + 2 * (out1.map { $0.inputs * $0.outputs } ?? 0) + 2 * (out2.map { $0.inputs * $0.outputs } ?? 0)
            + (spec.norm == .none ? 0 : 5 * H) + (spec.residual ? H : 0) + (compress == .none ? 0 : 2 * H)
    }
}

/// Work vectors for one sample (owned by `ModelState`).
@usableFromInline struct StepWork {
    @usableFromInline let t, y, v, z, s: UnsafeMutablePointer<Scalar>
}

/// Buffers for a block of up to `maxBlock` samples (owned by `ModelState`): t the layer input, y its
/// output, a the activated output, v the output projection's, g the MLP's activated hidden, z the
/// block's update, s the layer's scratch. Streaming shares one set between all blocks with a = y and
/// g = v; a training tape has one set per block, all distinct, plus the block's input and its
/// residual sum (before a post-norm), its input before compression (raw) and the feature mask's
/// flags after it (keep), and the layer keeps its states in s.
struct BlockWork {
    let t, y, a, v, g, z, s: UnsafeMutablePointer<Scalar>
    let input, sum, raw, keep: UnsafeMutablePointer<Scalar>?
    let isTape: Bool
}

/// Scratch of the backward pass, shared by the blocks of one tape: da (L, H), dv and dg (L, work
/// width), dt (L, H), the layer's backward scratch and a zero initial state.
struct BackwardWork {
    let da, dv, dg, dt, layer, zeroState: UnsafeMutablePointer<Scalar>
}
