import COpenBLAS
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
    ///
    /// As upstream (`eigh(S · −i)`): −iK is Hermitian with real eigenvalues w, and K v = i w v, so
    /// LAPACK's zheevd (O(N³), seconds at N = 2048) gives Λ = −½ + i w for its N/2 negative w, in
    /// ascending order. An eigenvector is defined up to a phase, which solvers choose differently;
    /// each column here is rotated so that B̃_j = (Vᴴ b)_j with b_n = √(2n+1) is real and positive, the
    /// same on every machine and LAPACK build.
    public static func hippoLegSNormal(_ N: Int) -> (lambda: [Complex<Double>], V: [[Complex<Double>]]) {
        precondition(N >= 2 && N % 2 == 0, "HiPPO-LegS needs an even state size")
        // −iK, column-major, complex as (re, im): K_nk = −½√((2n+1)(2k+1)) for n > k, +… for n < k.
        var a = [Double](repeating: 0, count: 2 * N * N)
        for k in 0..<N {
            for n in 0..<N where n != k {
                let v = 0.5 * Double.sqrt(Double((2 * n + 1) * (2 * k + 1)))
                a[2 * (n + k * N) + 1] = -(n > k ? -v : v)
            }
        }
        var w = [Double](repeating: 0, count: N)
        var n = blasint(N), info: blasint = 0
        // Workspace query, then the decomposition (jobz "V": vectors into a; uplo "L").
        var lwork: blasint = -1, lrwork: blasint = -1, liwork: blasint = -1
        var wq = [Double](repeating: 0, count: 2), rq = [Double](repeating: 0, count: 1), iq = [blasint](repeating: 0, count: 1)
        zheevd_("V", "L", &n, &a, &n, &w, &wq, &lwork, &rq, &lrwork, &iq, &liwork, &info, 1, 1)
        lwork = blasint(wq[0]); lrwork = blasint(rq[0]); liwork = iq[0]
        var work = [Double](repeating: 0, count: 2 * Int(max(1, lwork)))
        var rwork = [Double](repeating: 0, count: Int(max(1, lrwork)))
        var iwork = [blasint](repeating: 0, count: Int(max(1, liwork)))
        zheevd_("V", "L", &n, &a, &n, &w, &work, &lwork, &rwork, &lrwork, &iwork, &liwork, &info, 1, 1)
        // fatalError, not precondition: the check must survive -Ounchecked (garbage eigenvectors
        // would otherwise be written into a model).
        if info != 0 { fatalError("LAPACK zheevd failed (info \(info)) on the HiPPO-LegS matrix, N = \(N)") }
        let M = N / 2
        var V = [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: M), count: N)
        var lambda: [Complex<Double>] = []
        for j in 0..<M {
            lambda.append(Complex(-0.5, w[j]))
            var s = Complex<Double>.zero
            for r in 0..<N { s += Complex(a[2 * (r + j * N)], -a[2 * (r + j * N) + 1]) * Double.sqrt(Double(2 * r + 1)) }
            let phase = s.length > 0 ? s / s.length : Complex<Double>(1, 0)
            for r in 0..<N { V[r][j] = Complex(a[2 * (r + j * N)], a[2 * (r + j * N) + 1]) * phase }
        }
        return (lambda, V)
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
}
