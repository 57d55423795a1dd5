import ComplexModule
import RealModule

/// One mode of a discrete linear system in ssm-stream's convention (the state includes the current
/// input): x_k = λ·x_{k−1} + Σ_j b_j·u_{j,k}, output h receives c_h·x_k, so the mode's transfer
/// function is c_h·b_j / (1 − λz⁻¹). Shapes: b (inputs), c (outputs).
public struct Mode: Sendable, Equatable {
    public var lambda: Complex<Double>
    public var b: [Complex<Double>]
    public var c: [Complex<Double>]
    public init(lambda: Complex<Double>, b: [Complex<Double>], c: [Complex<Double>]) {
        self.lambda = lambda; self.b = b; self.c = c
    }
}

/// A real discrete MIMO system in diagonal (modal) form, as an S5 layer runs it:
///
///     x_{q,k} = λ_q·x_{q,k−1} + Σ_j B[q][j]·u_{j,k}        (q = 0..<P lanes)
///     y_{h,k} = Σ_q 2·Re(C[h][q]·x_{q,k}) + Σ_j D[h][j]·u_{j,k}
///
/// One lane per conjugate pair of poles (the one with Im λ > 0; its twin is implied by 2·Re) and
/// one per real pole (real λ, B, and C halved, so that 2·Re(C x) = c·x). Transfer function
/// H(z) = Σ_{all poles} c b/(1 − λz⁻¹) + D.
public struct ModalSystem: Sendable, Equatable {
    public var inputs: Int
    public var outputs: Int
    /// Lanes (lane q: λ_q, B row b (inputs), C column c (outputs), already halved for real poles).
    public var lanes: [Mode]
    /// D (outputs, inputs).
    public var d: [[Double]]

    /// Every pole, conjugates included.
    public var poles: [Complex<Double>] {
        lanes.flatMap { $0.lambda.imaginary == 0 ? [$0.lambda] : [$0.lambda, $0.lambda.conjugate] }
    }
    /// max |λ| (0 for a pure gain).
    public var maxPoleMagnitude: Double { lanes.map { $0.lambda.length }.max() ?? 0 }

    /// Builds the lanes from every mode of a real system (conjugate modes both present). Modes with
    /// |Im λ| ≤ 1e-9·|λ| are real: λ, b and c are made real, c halved. Refuses (`.data`) poles that
    /// are not closed under conjugation (complex coefficients), poles with |λ| ≥ 1 (unstable: the loader refuses them too) and non-finite values.
    public init(modes: [Mode], d: [[Double]], inputs: Int, outputs: Int) throws(DesignError) {
        try ModalSystem.checkPoles(modes.map(\.lambda), distinct: false)
        var lanes: [Mode] = [], upper = 0, lower = 0
        for m in modes {
            let im = m.lambda.imaginary, tol = 1e-9 * max(m.lambda.length, 1e-300)
            if Swift.abs(im) <= tol {
                lanes.append(Mode(lambda: Complex(m.lambda.real, 0),
                                  b: m.b.map { Complex($0.real, 0) }, c: m.c.map { Complex($0.real / 2, 0) }))
            } else if im > 0 {
                upper += 1
                lanes.append(m)
            } else {
                lower += 1
            }
        }
        guard upper == lower else {
            throw DesignError(.data, "the poles are not in complex-conjugate pairs (\(upper) above the real axis, \(lower) below): only real systems can be realized")
        }
        for m in lanes {
            guard m.lambda.isFinite, m.b.allSatisfy(\.isFinite), m.c.allSatisfy(\.isFinite) else {
                throw DesignError(.data, "the modal form has non-finite values (pole \(show(m.lambda))): the system is too ill-conditioned to diagonalize")
            }
        }
        guard d.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw DesignError(.data, "the direct term D is not finite") }
        // Order lanes by pole angle, then magnitude: reads like a pole plot, low frequencies first.
        self.lanes = lanes.sorted { ($0.lambda.phase, $0.lambda.length) < ($1.lambda.phase, $1.lambda.length) }
        self.d = d; self.inputs = inputs; self.outputs = outputs
        let kappa = cancellation
        guard kappa <= ModalSystem.maxCancellation else {
            throw DesignError(.data, "the modal form cancels too much for float32: its lanes' peak gains add up to \(Scalar(kappa))× the system's peak gain "
                              + "(limit \(Int(ModalSystem.maxCancellation))), so float32 rounding would cost ~\(Int(Double.log10(kappa).rounded())) of its ~7 significant digits "
                              + "(a high order with clustered poles, nearly repeated poles, or a nearly defective A); lower the order, or cascade several smaller models")
        }
    }

    /// Refuse a modal form whose `cancellation` exceeds this: float32 (2⁻²⁴ ≈ 6e-8 per rounding)
    /// would then err by more than ~1e-3 of the output's peak.
    public static let maxCancellation = 1e4

    /// How much the lanes cancel each other, which is what float32 rounding in the lanes is
    /// amplified by: κ = max_{h,j} Σ_q |c_hq b_qj|·2/(1 − |λ_q|) / max_{h,j,ω} |H_hj(e^{iω})|
    /// (each lane's peak gain over the system's peak gain; 1 for a single resonance, ≥ 1 always).
    /// |H| is evaluated on 32…512 frequencies in [0, π] (fewer for large MIMO systems, to bound the
    /// work to ~2·10⁷ lane terms) and at every pole's angle.
    public var cancellation: Double {
        var lanePeak = 0.0, peak = 0.0
        for h in 0..<outputs {
            for j in 0..<inputs {
                let sum = lanes.reduce(0.0) { $0 + 2 * ($1.c[h] * $1.b[j]).length / max(1 - $1.lambda.length, 1e-300) }
                lanePeak = max(lanePeak, sum)
            }
        }
        guard lanePeak > 0 else { return 1 }
        let points = min(512, max(32, 20_000_000 / max(1, lanes.count * inputs * outputs)))
        let grid = (0...points).map { Double.pi * Double($0) / Double(points) } + lanes.map { Swift.abs($0.lambda.phase) }
        for w in grid {
            let zinv = Complex.exp(Complex(0, -w))
            let one = Complex<Double>(1, 0)
            let g = lanes.map { (one / (one - $0.lambda * zinv), one / (one - $0.lambda.conjugate * zinv)) }
            for h in 0..<outputs {
                for j in 0..<inputs {
                    var H = Complex(d[h][j], 0)
                    for (q, m) in lanes.enumerated() {
                        let cb = m.c[h] * m.b[j]
                        H = H + cb * g[q].0 + cb.conjugate * g[q].1
                    }
                    peak = max(peak, H.length)
                }
            }
        }
        return peak > 0 ? max(1, lanePeak / peak) : .infinity
    }

    /// Refuses |λ| ≥ 1 and, with `distinct` (a transfer function's poles), poles closer than
    /// 1e-6·max(|λ_i|, |λ_j|) to each other: a repeated pole of a transfer function has a Jordan
    /// block, not a diagonal form, and near-repeated ones give huge, cancelling residues that
    /// float32 cannot hold. (A state space may repeat an eigenvalue with independent eigenvectors.)
    static func checkPoles(_ p: [Complex<Double>], distinct: Bool = true) throws(DesignError) {
        for z in p {
            guard z.isFinite else { throw DesignError(.data, "a pole is not finite") }
            guard z.length < 1 else {
                throw DesignError(.data, "unstable: pole \(show(z)) has |p| = \(z.length) ≥ 1, so the recurrence would grow without bound")
            }
        }
        guard distinct else { return }
        for i in p.indices {
            for j in p.indices where j > i {
                let scale = max(p[i].length, p[j].length)
                if (p[i] - p[j]).length <= 1e-6 * scale || (scale == 0) {
                    throw DesignError(.data, "repeated pole \(show(p[i])) (twice, or within 1e-6 relative): a repeated pole has no diagonal (modal) form")
                }
            }
        }
    }

    /// Output y (L, outputs) for input u (L, inputs), row-major, in double precision, from a zero
    /// state: the reference the float32 model must reproduce.
    public func filter(_ u: [Double], length L: Int) -> [Double] {
        var x = [Complex<Double>](repeating: .zero, count: lanes.count)
        var y = [Double](repeating: 0, count: L * outputs)
        for k in 0..<L {
            for (q, m) in lanes.enumerated() {
                var s = m.lambda * x[q]
                for j in 0..<inputs { s = s + m.b[j] * u[k * inputs + j] }
                x[q] = s
            }
            for h in 0..<outputs {
                var acc = 0.0
                for j in 0..<inputs { acc += d[h][j] * u[k * inputs + j] }
                for (q, m) in lanes.enumerated() { acc += 2 * (m.c[h] * x[q]).real }
                y[k * outputs + h] = acc
            }
        }
        return y
    }
}

/// Partial fractions: a digital ZPK or a transfer function → `ModalSystem`, and `ModalSystem` →
/// model file (spec and tensors).
public enum ModalRealization {
    /// Partial fractions of a digital ZPK with #z = #p = M (every bilinear design):
    ///
    ///     H(z) = k·Π_j(1 − z_j z⁻¹) / Π_i(1 − p_i z⁻¹) = Σ_i r_i/(1 − p_i z⁻¹) + d
    ///     r_i = k·Π_j(1 − z_j/p_i) / Π_{l≠i}(1 − p_l/p_i),   d = k·Π_j z_j / Π_i p_i
    ///
    /// (r_i = [(1 − p_i w)H]_{w = 1/p_i} with w = z⁻¹; d = H at w → ∞), then B = 1, C = r
    /// (as `scipy.signal.residuez`). Refuses (`.data`) p_i = 0, repeated and unstable poles.
    public static func realize(_ f: ZPK) throws(DesignError) -> ModalSystem {
        guard f.zeros.count == f.poles.count else {
            throw DesignError(.data, "internal: \(f.zeros.count) zeros for \(f.poles.count) poles (expects a bilinear design)")
        }
        try ModalSystem.checkPoles(f.poles)
        guard f.poles.allSatisfy({ $0.length > 0 }) else {
            throw DesignError(.data, "a pole at z = 0 is a pure delay, which the diagonal form cannot hold")
        }
        let one = Complex<Double>(1, 0)
        var modes: [Mode] = []
        for (i, p) in f.poles.enumerated() {
            var num = Complex<Double>(f.gain, 0), den = one
            for z in f.zeros { num = num * (one - z / p) }
            for (l, q) in f.poles.enumerated() where l != i { den = den * (one - q / p) }
            modes.append(Mode(lambda: p, b: [one], c: [num / den]))
        }
        let dz = f.zeros.reduce(Complex(f.gain, 0), *) / f.poles.reduce(one, *)
        return try ModalSystem(modes: modes, d: [[dz.real]], inputs: 1, outputs: 1)
    }

    /// The model file of a modal system: one S5 layer, discretization "none" (Λ̄ = Lambda, B̄ = B),
    /// conj_sym (y = 2·Re(C x) + D⊙u), no norm, residual, activation or output projection.
    ///
    /// Width H = max(inputs, outputs). D of S5 is per channel (diagonal), so D's off-diagonal
    /// entries become extra lanes with λ = 0 (x_k = u_{j,k}, C column = D[·][j]/2, diagonal
    /// excluded). With fewer inputs than H an encoder (H, inputs) = [I; 0] pads the input with
    /// zero channels; with fewer outputs a decoder (outputs, H) = [I 0] keeps the first ones; both
    /// have zero bias, so they are exact in float32. A system without poles gets one zero lane.
    ///
    /// Tensors: layers.0.layer.Lambda_re, Lambda_im (P), B (P,H,2), C (H,P,2), D (H), log_step (P,1)
    /// (zeros, unused), and encoder.weight|bias, decoder.weight|bias when present.
    public static func model(_ s: ModalSystem, sampleRate: Int, description: String) -> (spec: ModelSpec, tensors: [String: Tensor]) {
        let H = max(s.inputs, s.outputs)
        var lanes = s.lanes
        for j in 0..<s.inputs {
            let col = (0..<s.outputs).map { h in h == j ? 0 : s.d[h][j] }
            guard col.contains(where: { $0 != 0 }) else { continue }
            lanes.append(Mode(lambda: .zero, b: (0..<s.inputs).map { Complex($0 == j ? 1 : 0, 0) },
                              c: col.map { Complex($0 / 2, 0) }))
        }
        if lanes.isEmpty { lanes.append(Mode(lambda: .zero, b: Array(repeating: .zero, count: s.inputs),
                                             c: Array(repeating: .zero, count: s.outputs))) }
        let P = lanes.count
        var B = [Double](repeating: 0, count: P * H * 2), C = [Double](repeating: 0, count: H * P * 2)
        for (q, m) in lanes.enumerated() {
            for j in 0..<s.inputs { B[(q * H + j) * 2] = m.b[j].real; B[(q * H + j) * 2 + 1] = m.b[j].imaginary }
            for h in 0..<s.outputs { C[(h * P + q) * 2] = m.c[h].real; C[(h * P + q) * 2 + 1] = m.c[h].imaginary }
        }
        let D = (0..<H).map { h in h < s.outputs && h < s.inputs ? s.d[h][h] : 0 }
        let p = "layers.0.layer."
        var t: [String: Tensor] = [
            p + "Lambda_re": Tensor(lanes.map { $0.lambda.real }, shape: [P]),
            p + "Lambda_im": Tensor(lanes.map { $0.lambda.imaginary }, shape: [P]),
            p + "B": Tensor(B, shape: [P, H, 2]), p + "C": Tensor(C, shape: [H, P, 2]),
            p + "D": Tensor(D, shape: [H]), p + "log_step": Tensor([Double](repeating: 0, count: P), shape: [P, 1]),
        ]
        let encoder = s.inputs < H, decoder = s.outputs < H
        if encoder {
            t["encoder.weight"] = Tensor((0..<H).flatMap { h in (0..<s.inputs).map { Double(h == $0 ? 1 : 0) } }, shape: [H, s.inputs])
            t["encoder.bias"] = Tensor([Double](repeating: 0, count: H), shape: [H])
        }
        if decoder {
            t["decoder.weight"] = Tensor((0..<s.outputs).flatMap { o in (0..<H).map { Double(o == $0 ? 1 : 0) } }, shape: [s.outputs, H])
            t["decoder.bias"] = Tensor([Double](repeating: 0, count: s.outputs), shape: [s.outputs])
        }
        var layer = LayerSpec(family: .s5, dModel: H, dState: P, discretization: Discretization.none)
        layer.conjSym = true
        let block = BlockSpec(layer: layer, norm: BlockSpec.Norm.none, prenorm: true, residual: false,
                              activation: BlockSpec.Activation.none, output: BlockSpec.Output.none)
        let spec = ModelSpec(task: .filter, sampleRate: sampleRate, dInput: s.inputs, dModel: H, dOutput: s.outputs,
                             encoder: encoder, decoder: decoder, blocks: [block], description: description)
        return (spec, t)
    }
}

/// "0.9+0.1i" with 6 significant digits.
func show(_ z: Complex<Double>) -> String {
    func g(_ x: Double) -> String {
        let r = (x * 1e6).rounded() / 1e6
        return "\(r == 0 ? 0 : r)"
    }
    return z.imaginary == 0 ? g(z.real) : "\(g(z.real))\(z.imaginary < 0 ? "−" : "+")\(g(Swift.abs(z.imaginary)))i"
}
