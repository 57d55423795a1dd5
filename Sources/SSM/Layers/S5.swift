import ComplexModule
import RealModule

/// S5 (Smith, Warrington, Linderman 2023: "Simplified State Space Layers for Sequence Modeling"):
/// one MIMO diagonal system of P complex lanes shared by all H channels.
///
///     Λ = Lambda_re + i·Lambda_im,  Δ_p = exp(log_step[p, 0])
///     ZOH: Λ̄ = exp(ΛΔ), B̄ = ((Λ̄ − 1)/Λ) ⊙_rows B̃;  bilinear: Λ̄ = (1 − ΔΛ/2)⁻¹(1 + ΔΛ/2), B̄ = (1 − ΔΛ/2)⁻¹ Δ B̃
///     x_k = Λ̄ ⊙ x_{k-1} + B̄ u_k,  y_k = 2·Re(C̃ x_k) + D ⊙ u_k   (conj_sym; Re(C̃ x_k) otherwise)
///
/// Tensors (lindermanlab/S5 names): Lambda_re, Lambda_im (P) · B (P,H,2) · C (H,P,2) · D (H) ·
/// log_step (P,1). P counts the lanes after conjugate-symmetric halving.
public enum S5 {
    public static func load(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, arena: Arena) throws(ModelError) -> DiagonalSSM {
        let H = spec.dModel, P = spec.dState
        let disc = spec.discretization ?? .zoh
        let lre = try r.take(p + "Lambda_re", [P]), lim = try r.take(p + "Lambda_im", [P])
        let B = try r.takeComplex(p + "B", [P, H]), C = try r.takeComplex(p + "C", [H, P])
        let D = try r.take(p + "D", [H]), logStep = try r.take(p + "log_step", [P, 1])
        var lam = [Complex<Double>](), bTilde = [[Complex<Double>]](), factor = [Complex<Double>]()
        for q in 0..<P {
            let (a, f) = disc.discretize(Complex(Double(lre[q]), Double(lim[q])), dt: Double.exp(Double(logStep[q])))
            lam.append(a); factor.append(f)
            bTilde.append((0..<H).map { Complex(B[q * H + $0].re, B[q * H + $0].im) })
        }
        let c = (0..<H).map { h in (0..<P).map { Complex(C[h * P + $0].re, C[h * P + $0].im) } }
        // B̄ = f ⊙ B̃ per lane (f from the discretization), formed inside: B̃ may stay in half precision.
        return DiagonalSSM(lambdaBar: lam, bBar: bTilde, c: c, outputScale: (spec.conjSym ?? true) ? 2 : 1,
                           d: D.map { Double($0) }, inputScale: factor, half: (r.isHalf(p + "B"), r.isHalf(p + "C")), arena: arena)
    }

    /// Pullback of `load`: the engine-layout gradient `g` (of the layer `load` built from these
    /// tensors) → the gradients of the file's own tensors, by name (without prefix):
    ///     g_B̃[p,h] = conj(f_p)·g_B̄[p,h],  g_f_p = Σ_h conj(B̃[p,h])·g_B̄[p,h],  (g_Λ, g_Δ) = disc.pullback(g_Λ̄, g_f),
    ///     g_log_step = Δ·g_Δ,  g_C = dC (unscaled),  g_D = dD.
    public static func pullback(_ spec: LayerSpec, _ r: TensorReader, prefix p: String, gradient g: DiagonalSSM) throws(ModelError) -> [String: [Scalar]] {
        let H = spec.dModel, P = spec.dState
        let disc = spec.discretization ?? .zoh
        let lre = try r.take(p + "Lambda_re", [P]), lim = try r.take(p + "Lambda_im", [P])
        let B = try r.takeComplex(p + "B", [P, H]), logStep = try r.take(p + "log_step", [P, 1])
        let e = g.complexGradients(outputScale: (spec.conjSym ?? true) ? 2 : 1)
        var gre = [Scalar](), gim = [Scalar](), gB = [Scalar](), gStep = [Scalar]()
        for q in 0..<P {
            let lam = Complex(Double(lre[q]), Double(lim[q])), dt = Double.exp(Double(logStep[q]))
            let (_, f) = disc.discretize(lam, dt: dt)
            var gf = Complex<Double>.zero
            for h in 0..<H {
                let b = Complex(B[q * H + h].re, B[q * H + h].im), gb = e.b[q][h]
                let gBt = f.conjugate * gb
                gB += [Scalar(gBt.real), Scalar(gBt.imaginary)]
                gf += b.conjugate * gb
            }
            let (gl, gd) = disc.pullback(lam, dt: dt, gA: e.lambda[q], gF: gf)
            gre.append(Scalar(gl.real)); gim.append(Scalar(gl.imaginary)); gStep.append(Scalar(dt * gd))
        }
        let gC = (0..<H).flatMap { h in (0..<P).flatMap { [Scalar(e.c[h][$0].real), Scalar(e.c[h][$0].imaginary)] } }
        return ["Lambda_re": gre, "Lambda_im": gim, "B": gB, "C": gC, "D": e.d.map { Scalar($0) }, "log_step": gStep]
    }

    /// Keeps a trained layer stable: Re Λ ≤ −10⁻⁴ (upstream's `clip_eigs`), applied after every
    /// optimizer step, since Re Λ is a free parameter here (S4D and LRU are stable by construction).
    public static func constrain(_ name: String, _ values: inout ArraySlice<Scalar>) {
        if name == "Lambda_re" { for i in values.indices { values[i] = min(values[i], -1e-4) } }
    }

    /// The tensors with their own learning rate and no weight decay (S5 §B.1: Λ, B̃ and Δ).
    public static let ssmParameters: Set<String> = ["Lambda_re", "Lambda_im", "B", "log_step"]

    /// A fresh layer: HiPPO-LegS eigenvalues in `blocks` blocks (S5 §4.3), B̃ = Vᴴ·lecun_normal,
    /// C̃ = complex N(0, ½), D ~ N(0, 1), log Δ ~ U[log dt_min, log dt_max].
    public static func initialize(_ spec: LayerSpec, rng: inout SeededRandom) throws(ModelError) -> [String: Tensor] {
        let H = spec.dModel, P = spec.dState, blocks = spec.blocks ?? 1
        guard P % blocks == 0, (2 * P / blocks) % 2 == 0 else {
            throw ModelError("s5: d_state \(P) is not divisible into \(blocks) blocks")
        }
        let blockFull = 2 * P / blocks
        let (lBlock, V) = Initialization.hippoLegSNormal(blockFull)
        var lre = [Double](), lim = [Double](), B = [Double](), C = [Double]()
        for _ in 0..<blocks {
            lre += lBlock.map(\.real); lim += lBlock.map(\.imaginary)
            // B̃ = Vᴴ B_full with B_full (blockFull, H) ~ lecun_normal (std 1/√H).
            // Row by row of B_full (contiguous in h), so that P = 512, H = 256 takes a fraction of a second.
            let Bfull = (0..<(blockFull * H)).map { _ in rng.normal() / Double.sqrt(Double(H)) }   // (blockFull, H)
            var re = [Double](repeating: 0, count: H), im = [Double](repeating: 0, count: H)
            for j in 0..<lBlock.count {
                for h in 0..<H { re[h] = 0; im[h] = 0 }
                for r in 0..<blockFull {
                    let v = V[r][j].conjugate, row = r * H
                    for h in 0..<H { re[h] += v.real * Bfull[row + h]; im[h] += v.imaginary * Bfull[row + h] }
                }
                for h in 0..<H { B += [re[h], im[h]] }
            }
        }
        for _ in 0..<H { for _ in 0..<P { C += [rng.normal() * Double.sqrt(0.5), rng.normal() * Double.sqrt(0.5)] } }
        let (lo, hi) = (spec.dtMin ?? 1e-3, spec.dtMax ?? 1e-1)
        // B was built block by block as (P, H, 2) rows; C as (H, P, 2).
        return [
            "Lambda_re": Tensor(lre, shape: [P]), "Lambda_im": Tensor(lim, shape: [P]),
            "B": Tensor(B, shape: [P, H, 2]), "C": Tensor(C, shape: [H, P, 2]),
            "D": Tensor((0..<H).map { _ in rng.normal() }, shape: [H]),
            "log_step": Tensor((0..<P).map { _ in Double.log(rng.logUniform(lo, hi)) }, shape: [P, 1]),
        ]
    }
}
