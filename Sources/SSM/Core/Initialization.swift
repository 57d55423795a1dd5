import ComplexModule
import RealModule

/// Eigenvalue initializations of the diagonal families. Each returns continuous-time eigenvalues Λ
/// with Re Λ < 0 (so every A-stable discretization gives |Ā| < 1 for every Δ), or, for the LRU, the
/// discrete parameters with |λ| ∈ [r_min, r_max] ⊂ (0, 1).
public enum Initialization {

    /// HiPPO-LegS in normal-plus-low-rank form (S4, eq. 2 and Thm. 1 of Gu et al. 2022):
    /// A_nk = −√(2n+1)√(2k+1) (n > k), −(n+1) (n = k), 0 (n < k);  P_n = √(n+½);
    /// S = A + P Pᵀ = −½ I + K with K skew-symmetric, so the eigenvalues of S are −½ ± iω.
    /// Returns the N/2 eigenvalues with negative imaginary part (one of each conjugate pair), sorted by
    /// imaginary part ascending, as upstream keeps them, and the matching unit eigenvectors V (N, N/2).
    public static func hippoLegSNormal(_ N: Int) -> (lambda: [Complex<Double>], V: [[Complex<Double>]]) {
        precondition(N >= 2 && N % 2 == 0, "HiPPO-LegS needs an even state size")
        var K = [[Double]](repeating: [Double](repeating: 0, count: N), count: N)
        for n in 0..<N {
            for k in 0..<N where n != k {
                let v = 0.5 * Double.sqrt(Double((2 * n + 1) * (2 * k + 1)))
                K[n][k] = n > k ? -v : v
            }
        }
        // Kᵀ K = −K² is symmetric PSD with eigenvalues ω² in equal pairs. For a unit eigenvector v,
        // w = K v / ω completes the invariant plane and (v + i w)/√2 is an eigenvector of K for −iω.
        var M = [[Double]](repeating: [Double](repeating: 0, count: N), count: N)
        for i in 0..<N { for j in 0..<N { var s = 0.0; for r in 0..<N { s += K[r][i] * K[r][j] }; M[i][j] = s } }
        let (evals, evecs) = symmetricEigen(M)
        let order = (0..<N).sorted { evals[$0] > evals[$1] }
        var lambda: [Complex<Double>] = []
        var V: [[Complex<Double>]] = []
        var used: [[Double]] = []
        for idx in order where lambda.count < N / 2 {
            var v = (0..<N).map { evecs[$0][idx] }
            // Skip the partner of a pair already taken (it lies in the same plane).
            for u in used {
                let d = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
                for r in 0..<N { v[r] -= d * u[r] }
            }
            // A partner of a plane already taken projects to ~0; a new eigenvector keeps norm ~1.
            let norm = Double.sqrt(v.reduce(0) { $0 + $1 * $1 })
            if norm < 0.5 { continue }
            v = v.map { $0 / norm }
            let omega = Double.sqrt(max(evals[idx], 0))
            var w = [Double](repeating: 0, count: N)
            for r in 0..<N { var s = 0.0; for c in 0..<N { s += K[r][c] * v[c] }; w[r] = omega > 0 ? s / omega : 0 }
            used.append(v); used.append(w)
            lambda.append(Complex(-0.5, -omega))
            V.append((0..<N).map { Complex(v[$0], w[$0]) / Double.sqrt(2) })
        }
        // V as (N, N/2): column j is the eigenvector of lambda[j].
        let Vt = (0..<N).map { r in (0..<lambda.count).map { V[$0][r] } }
        return (lambda, Vt)
    }

    /// B of HiPPO-LegS in the eigenbasis: B̃ = Vᴴ b with b_n = √(2n+1) (S4 `nplr`, S4D-LegS). (N/2).
    public static func hippoLegSB(_ V: [[Complex<Double>]]) -> [Complex<Double>] {
        let N = V.count, M = V.first?.count ?? 0
        return (0..<M).map { j in
            (0..<N).reduce(Complex<Double>.zero) { $0 + V[$1][j].conjugate * Double.sqrt(Double(2 * $1 + 1)) }
        }
    }

    /// S4D-Lin (Gu et al. 2022, "On the parameterization…", eq. 9): Λ_n = −½ − iπn, n < N/2.
    public static func s4dLin(_ N: Int) -> [Complex<Double>] {
        (0..<(N / 2)).map { Complex(-0.5, -Double.pi * Double($0)) }
    }

    /// S4D-Inv: Λ_n = −½ − i (N/π)(N/(2n+1) − 1), n < N/2.
    public static func s4dInv(_ N: Int) -> [Complex<Double>] {
        (0..<(N / 2)).map { n in
            Complex(-0.5, -(Double(N) / Double.pi) * (Double(N) / Double(2 * n + 1) - 1))
        }
    }

    /// S4D-Real (and Mamba's A init): Λ_n = −(n + 1), n < N, real.
    public static func s4dReal(_ N: Int) -> [Double] { (0..<N).map { -Double($0 + 1) } }

    /// LRU ring init (Orvieto et al. 2023, §3.2): |λ| uniform on the ring r_min ≤ |λ| ≤ r_max by area,
    /// phase uniform on [0, max_phase]. In the exp-exp parametrization λ = exp(−exp(ν) + i exp(θ)):
    /// ν = log(−½ log(U (r_max² − r_min²) + r_min²)), θ = log(max_phase U), γ = log √(1 − |λ|²).
    public static func lruRing(_ N: Int, rMin: Double, rMax: Double, maxPhase: Double,
                               rng: inout SeededRandom) -> (nuLog: [Double], thetaLog: [Double], gammaLog: [Double]) {
        var nu = [Double](), theta = [Double](), gamma = [Double]()
        for _ in 0..<N {
            let u1 = rng.uniform(), u2 = max(rng.uniform(), 1e-12)
            let v = Double.log(-0.5 * Double.log(u1 * (rMax * rMax - rMin * rMin) + rMin * rMin))
            nu.append(v)
            theta.append(Double.log(maxPhase * u2))
            let mag = Double.exp(-Double.exp(v))
            gamma.append(Double.log(Double.sqrt(1 - mag * mag)))
        }
        return (nu, theta, gamma)
    }

    /// Eigen-decomposition of a real symmetric matrix by cyclic Jacobi rotations (robust, exact to
    /// round-off; O(N³) per sweep, a handful of sweeps). A rotation is skipped once its off-diagonal
    /// element is negligible next to its diagonal pair (|a_pq| ≤ 1e-17·√|a_pp·a_qq|) or at the
    /// round-off floor of the matrix (4e-16·max|a_ii|); a rotation sets a_pq to exactly 0. The
    /// iteration stops after a sweep with no rotation (at most 30): converged to round-off, which
    /// degenerate pairs (HiPPO's ±iω) need to be told apart. Returns eigenvalues and eigenvectors as columns.
    static func symmetricEigen(_ A0: [[Double]]) -> ([Double], [[Double]]) {
        let n = A0.count
        var a = A0.flatMap { $0 }                       // row-major (n, n)
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        a.withUnsafeMutableBufferPointer { A in
            v.withUnsafeMutableBufferPointer { V in
                // Round-off floor: an element this small relative to the largest diagonal is noise.
                var scale = 0.0
                for i in 0..<n { scale = max(scale, abs(A[i * n + i])) }
                let floor = 4e-16 * scale
                for _ in 0..<30 {
                    var rotations = 0
                    for p in 0..<n {
                        for q in (p + 1)..<max(n, p + 1) {
                            let apq = A[p * n + q]
                            let app = A[p * n + p], aqq = A[q * n + q]
                            if abs(apq) <= floor || abs(apq) <= 1e-17 * (abs(app * aqq)).squareRoot() { continue }
                            rotations += 1
                            let theta = (aqq - app) / (2 * apq)
                            let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                            let c = 1 / (t * t + 1).squareRoot(), s = t * c
                            for k in 0..<n {   // columns p, q
                                let akp = A[k * n + p], akq = A[k * n + q]
                                A[k * n + p] = c * akp - s * akq; A[k * n + q] = s * akp + c * akq
                            }
                            for k in 0..<n {   // rows p, q
                                let apk = A[p * n + k], aqk = A[q * n + k]
                                A[p * n + k] = c * apk - s * aqk; A[q * n + k] = s * apk + c * aqk
                            }
                            for k in 0..<n {
                                let vkp = V[k * n + p], vkq = V[k * n + q]
                                V[k * n + p] = c * vkp - s * vkq; V[k * n + q] = s * vkp + c * vkq
                            }
                            // The rotation annihilates a_pq; set it exactly (round-off would leave a
                            // residue that the next sweep rotates again, forever).
                            A[p * n + q] = 0; A[q * n + p] = 0
                        }
                    }
                    if rotations == 0 { break }
                }
            }
        }
        return ((0..<n).map { a[$0 * n + $0] }, (0..<n).map { r in Array(v[(r * n)..<((r + 1) * n)]) })
    }
}
