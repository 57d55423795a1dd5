// Initializations against their definitions: HiPPO-LegS eigenpairs checked on the dense matrix
// S = A + P Pᵀ built here, S4D-Lin/Inv/Real against their formulas, the LRU ring against its
// bounds and area law, stability of every init under ZOH and bilinear, and the S4D-LegS init
// against the upstream values stored in a golden file.

import Foundation
import Testing
@testable import SSM

/// HiPPO-LegS in NPLR form, straight from the S4 paper: A_nk = −√(2n+1)√(2k+1) (n > k), −(n+1)
/// (n = k), 0 (n < k); P_n = √(n + ½). Returns S = A + P Pᵀ (N × N).
private func legsS(_ N: Int) -> [[Double]] {
    var S = [[Double]](repeating: [Double](repeating: 0, count: N), count: N)
    for n in 0..<N {
        for k in 0..<N {
            let a: Double = n > k ? -(Double(2 * n + 1) * Double(2 * k + 1)).squareRoot() : (n == k ? -Double(n + 1) : 0)
            S[n][k] = a + (Double(n) + 0.5).squareRoot() * (Double(k) + 0.5).squareRoot()
        }
    }
    return S
}

/// Δ ∈ [1e-3, 1e-1], 41 log-spaced points.
private let initDts: [Double] = (0...40).map { pow(10, -3 + Double($0) / 20) }

/// |Ā| < 1 for every Δ in `initDts` under ZOH and bilinear; returns the first violation.
private func firstUnstable(_ lambdas: [Cx]) -> String? {
    for d in [Discretization.zoh, .bilinear] {
        for l in lambdas {
            for dt in initDts {
                let a = d.discretize(.init(l.re, l.im), dt: dt).a
                let mag = (a.real * a.real + a.imaginary * a.imaginary).squareRoot()
                if !(mag < 1) { return "\(d): Λ = \(l), Δ = \(dt), |Ā| = \(mag)" }
            }
        }
    }
    return nil
}

@Suite("Initialization")
struct InitializationTests {
    @Test("HiPPO-LegS: eigenpairs of S = A + PPᵀ, Re Λ = −½, stable", arguments: Array(stride(from: 2, through: 64, by: 2)))
    func hippoLegS(_ N: Int) throws {
        try checkLegS(N)
    }

    /// LAPACK (zheevd) at sizes the old Jacobi solver could not reach in minutes, and one phase
    /// convention whatever the solver chooses: B̃ = Vᴴ b real and positive.
    @Test("HiPPO-LegS at N = 512: eigenpairs to round-off, orthonormal, B̃ real positive", arguments: [8, 512])
    func hippoLegSLarge(_ N: Int) throws {
        let (lambda, V) = Initialization.hippoLegSNormal(N)
        let S = legsS(N)
        var residual = 0.0, worstB = 0.0
        for j in Swift.stride(from: 0, to: N / 2, by: max(1, N / 32)) {
            let v = (0..<N).map { Cx(V[$0][j].real, V[$0][j].imaginary) }
            let l = Cx(lambda[j].real, lambda[j].imaginary)
            for r in 0..<N {
                var sv = Cx(0)
                for c in 0..<N { sv = sv + S[r][c] * v[c] }
                residual = max(residual, (sv - l * v[r]).abs / Double(N))
            }
        }
        #expect(residual <= 1e-10, "N=\(N): ‖S v − λ v‖∞ / N = \(residual)")
        for b in Initialization.hippoLegSB(V) { worstB = max(worstB, Swift.abs(b.imaginary) / max(b.real, 1e-300)); #expect(b.real > 0) }
        #expect(worstB <= 1e-9, "N=\(N): B̃ not real: |Im|/Re up to \(worstB)")
        #expect(zip(lambda, lambda.dropFirst()).allSatisfy { $0.imaginary < $1.imaginary && $1.imaginary < 0 })
    }

    /// The gross form of the defect: a repeated eigenvalue in place of the smallest-|ω| one.
    @Test("HiPPO-LegS: N/2 distinct eigenvalues, none repeated", arguments: Array(stride(from: 2, through: 64, by: 2)))
    func hippoLegSDistinct(_ N: Int) {
        let om = Initialization.hippoLegSNormal(N).lambda.map { -$0.imaginary }
        let spread = zip(om, om.dropFirst()).map { $0 - $1 }.min() ?? 1
        #expect(spread > 1e-3, "N=\(N): two eigenvalues within \(spread): ω = \(om.suffix(3))")
    }

    private func checkLegS(_ N: Int) throws {
        let (lambda, V) = Initialization.hippoLegSNormal(N)
        try #require(lambda.count == N / 2, "N=\(N): \(lambda.count) eigenvalues, expected \(N / 2)")
        try #require(V.count == N && V.allSatisfy { $0.count == N / 2 }, "N=\(N): V is not (N, N/2)")
        let S = legsS(N)
        let lam = lambda.map { Cx($0.real, $0.imaginary) }
        for (j, l) in lam.enumerated() {
            #expect(abs(l.re + 0.5) <= 1e-9, "N=\(N): Re λ_\(j) = \(l.re)")
            #expect(l.im < 0, "N=\(N): λ_\(j) = \(l) should be the negative-imaginary member of its pair")
            if j > 0 { #expect(lam[j - 1].im < l.im, "N=\(N): not sorted by Im ascending at \(j)") }
            // S v = λ v, with ‖v‖ = 1.
            let v = (0..<N).map { Cx(V[$0][j].real, V[$0][j].imaginary) }
            let norm = v.reduce(0) { $0 + $1.abs * $1.abs }.squareRoot()
            #expect(abs(norm - 1) <= 1e-10, "N=\(N): ‖V[:, \(j)]‖ = \(norm)")
            var residual = 0.0
            for r in 0..<N {
                var sv = Cx(0)
                for c in 0..<N { sv = sv + S[r][c] * v[c] }
                residual = max(residual, (sv - l * v[r]).abs)
            }
            #expect(residual <= 1e-8, "N=\(N): ‖S v − λ v‖∞ = \(residual) for λ_\(j) = \(l)")
        }
        // Distinct eigenvectors of a normal matrix are orthogonal: Vᴴ V = I (no pair taken twice).
        var worst = 0.0
        for i in 0..<(N / 2) {
            for j in 0..<(N / 2) {
                var dot = Cx(0)
                for r in 0..<N { dot = dot + Cx(V[r][i].real, V[r][i].imaginary).conj * Cx(V[r][j].real, V[r][j].imaginary) }
                worst = max(worst, (dot - Cx(i == j ? 1 : 0)).abs)
            }
        }
        #expect(worst <= 1e-8, "N=\(N): ‖VᴴV − I‖∞ = \(worst)")
        // The pairs ±λ cover the whole spectrum: S is normal, so Σ_all |λ|² = ‖S‖_F².
        let frob = S.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
        let spectrum = 2 * lam.reduce(0) { $0 + $1.abs * $1.abs }
        #expect(abs(spectrum - frob) <= 1e-9 * frob, "N=\(N): Σ|λ|² = \(spectrum), ‖S‖_F² = \(frob)")
        #expect(firstUnstable(lam) == nil, "N=\(N): \(firstUnstable(lam) ?? "")")
    }

    @Test("S4D-Lin, S4D-Inv and S4D-Real match their formulas and are stable", arguments: [2, 8, 16, 64, 256])
    func s4dInits(_ N: Int) {
        let lin = Initialization.s4dLin(N).map { Cx($0.real, $0.imaginary) }
        let inv = Initialization.s4dInv(N).map { Cx($0.real, $0.imaginary) }
        let real = Initialization.s4dReal(N)
        #expect(lin.count == N / 2 && inv.count == N / 2 && real.count == N)
        for n in 0..<(N / 2) {
            #expect(abs(lin[n].re + 0.5) < 1e-15 && abs(lin[n].im + Double.pi * Double(n)) <= 1e-12 * Double(n + 1), "lin n=\(n): \(lin[n])")
            let w = Double(N) / Double.pi * (Double(N) / Double(2 * n + 1) - 1)
            #expect(abs(inv[n].re + 0.5) < 1e-15 && abs(inv[n].im + w) <= 1e-12 * max(abs(w), 1), "inv n=\(n): \(inv[n]) vs −½ − \(w)i")
        }
        for n in 0..<N { #expect(real[n] == -Double(n + 1)) }
        #expect(firstUnstable(lin) == nil, "\(firstUnstable(lin) ?? "")")
        #expect(firstUnstable(inv) == nil, "\(firstUnstable(inv) ?? "")")
        #expect(firstUnstable(real.map { Cx($0) }) == nil)
    }

    @Test("LRU ring: |λ| ∈ [r_min, r_max], phase ∈ (0, max_phase], γ = √(1 − |λ|²), area law",
          arguments: [(0.9, 0.999, Double.pi / 10), (0.0, 0.99, Double.pi), (0.5, 0.6, 2 * Double.pi), (0.99, 0.9999, 0.1), (0.2, 0.95, 1.0)])
    func lruRing(rMin: Double, rMax: Double, maxPhase: Double) {
        var rng = SeededRandom(seed: 7)
        let N = 512
        let (nu, theta, gamma) = Initialization.lruRing(N, rMin: rMin, rMax: rMax, maxPhase: maxPhase, rng: &rng)
        #expect(nu.count == N && theta.count == N && gamma.count == N)
        var sumSq = 0.0
        for i in 0..<N {
            let mag = exp(-exp(nu[i])), phase = exp(theta[i])
            #expect(mag >= rMin * (1 - 1e-12) && mag <= rMax * (1 + 1e-12) && mag < 1, "|λ| = \(mag) outside [\(rMin), \(rMax)]")
            #expect(phase > 0 && phase <= maxPhase * (1 + 1e-12), "phase \(phase) outside (0, \(maxPhase)]")
            #expect(abs(exp(gamma[i]) - (1 - mag * mag).squareRoot()) <= 1e-12, "γ ≠ √(1 − |λ|²)")
            sumSq += mag * mag
        }
        // Uniform by area: |λ|² ~ U[r_min², r_max²]; the sample mean lies within 5σ/√N of the centre.
        let lo = rMin * rMin, hi = rMax * rMax
        let sigma = (hi - lo) / 12.0.squareRoot()
        #expect(abs(sumSq / Double(N) - (lo + hi) / 2) <= 5 * sigma / Double(N).squareRoot(), "mean |λ|² = \(sumSq / Double(N))")
    }

    @Test("every init gives a stable model: S4D (legs/lin/inv/real × zoh/bilinear), S5, LRU")
    func initializedModelsAreStable() throws {
        var layers: [LayerSpec] = []
        for i in ["legs", "lin", "inv", "real"] {
            for d in [Discretization.zoh, .bilinear] { layers.append(LayerSpec(family: .s4d, dModel: 4, dState: 16, discretization: d, initialization: i)) }
        }
        for d in [Discretization.zoh, .bilinear] { layers.append(LayerSpec(family: .s5, dModel: 4, dState: 16, discretization: d)) }
        var lru = LayerSpec(family: .lru, dModel: 4, dState: 64)
        lru.rMin = 0.4; lru.rMax = 0.8
        layers.append(lru)
        for (i, layer) in layers.enumerated() {
            let (m, t) = try makeModel(layerOnlySpec(layer), seed: UInt64(100 + i))
            let mags = m.blocks[0].layer.eigenvalueMagnitudes
            #expect(!mags.isEmpty && mags.allSatisfy { $0 > 0 && $0 < 1 }, "\(layer.family) \(layer.initialization ?? "") \(layer.discretization?.rawValue ?? ""): max |Ā| \(mags.max() ?? .nan)")
            if layer.family == .lru {
                // Float rounding of λ aside, the ring bounds survive loading.
                #expect(mags.allSatisfy { $0 >= 0.4 - 1e-6 && $0 <= 0.8 + 1e-6 }, "LRU |λ| range \(mags.min()!)…\(mags.max()!)")
            } else {
                let dtName = layer.family == .s4d ? "layers.0.layer.kernel.inv_dt" : "layers.0.layer.log_step"
                let dts = try #require(t[dtName]).values.map { exp(Double($0)) }
                #expect(dts.allSatisfy { $0 >= 1e-3 * (1 - 1e-6) && $0 <= 1e-1 * (1 + 1e-6) }, "Δ outside [1e-3, 1e-1]: \(dts)")
            }
        }
    }

    @Test("S5 init: Λ are HiPPO-LegS eigenvalues of each block")
    func s5Init() throws {
        var layer = LayerSpec(family: .s5, dModel: 3, dState: 8, discretization: .zoh)
        layer.blocks = 2
        var rng = SeededRandom(seed: 1)
        let t = try S5.initialize(layer, rng: &rng)
        let re = try #require(t["Lambda_re"]).values, im = try #require(t["Lambda_im"]).values
        let block = Initialization.hippoLegSNormal(8).lambda   // 2P/blocks = 8 full, 4 kept per block
        for q in 0..<8 {
            #expect(abs(Double(re[q]) + 0.5) < 1e-6)
            #expect(abs(Double(im[q]) - block[q % 4].imaginary) <= 1e-5 * max(1, abs(block[q % 4].imaginary)))
        }
        #expect(try #require(t["B"]).shape == [8, 3, 2] && (try #require(t["C"])).shape == [3, 8, 2])
    }

    /// Upstream S4D-LegS (state-spaces/s4, golden fftconv_diag_legs_zoh_H4_N8): A_imag = −Im Λ, and
    /// B = Vᴴ √(2n+1) (upstream clips Im B to ±2, which only shrinks |B|).
    @Test("S4D-LegS matches upstream: A_imag and |B̃| of the golden file")
    func legsMatchesUpstream() throws {
        let files = try #require(goldenFiles("s4d"), "golden s4d directory missing under \(goldenRoot)")
        let path = try #require(files.first { $0.hasSuffix("fftconv_diag_legs_zoh_H4_N8_L1_B1.safetensors") }, "legs golden case missing")
        let st = try SafeTensors(contentsOfFile: path)
        let aImag = Array(try st.floats("param.kernel.A_imag").prefix(4)).map(Double.init)   // first row (H=4, N/2=4)
        let bUp = try st.floats("param.kernel.B")                                             // (1, H, N/2, 2), first row
        let (lambda, V) = Initialization.hippoLegSNormal(8)
        let ours = lambda.map { -$0.imaginary }
        // As sets: sort both.
        for (u, o) in zip(aImag.sorted(), ours.sorted()) {
            #expect(abs(u - o) <= 1e-5 * max(1, abs(u)), "A_imag upstream \(u) vs ours \(o)")
        }
        let bOurs = Initialization.hippoLegSB(V).map { Cx($0.real, $0.imaginary).abs }
        var compared = 0
        for j in 0..<4 {
            // The upstream entry with this eigenvalue.
            let k = (0..<4).min { abs(aImag[$0] - ours[j]) < abs(aImag[$1] - ours[j]) }!
            let re = Double(bUp[2 * k]), im = Double(bUp[2 * k + 1])
            let up = (re * re + im * im).squareRoot()
            if abs(im) < 2 - 1e-6 {
                #expect(abs(up - bOurs[j]) <= 1e-4, "|B̃_\(j)|: upstream \(up), ours \(bOurs[j])")
                compared += 1
            } else {
                // Clipped upstream: the unclipped modulus √(re² + im_true²) ≥ |clipped|, and |Re| ≤ |B̃|.
                #expect(bOurs[j] >= up - 1e-4 && abs(re) <= bOurs[j], "clipped |B̃_\(j)|: upstream \(up), ours \(bOurs[j])")
            }
        }
        #expect(compared >= 3, "only \(compared) unclipped B entries compared")
    }
}
