import COpenBLAS
import ComplexModule
import FoundationEssentials
import RealModule

/// A user-given linear system, as the JSON file of `ssm-stream design statespace` holds it: either
/// a state space or a transfer function.
///
///     {"a": [[…]] (n,n), "b": [[…]] (n,m), "c": [[…]] (p,n), "d": [[…]] (p,m, default 0),
///      "domain": "discrete" | "continuous", "discretization": "bilinear" | "zoh", "rate": 16000}
///     {"num": […], "den": […], "domain": …, "discretization": …, "rate": …}
///
/// Discrete state space is the textbook (scipy/MATLAB) convention x[k+1] = A x[k] + B u[k],
/// y[k] = C x[k] + D u[k]; continuous is ẋ = Ax + Bu, y = Cx + Du. A discrete transfer function
/// lists b and a in ascending powers of z⁻¹ (as `scipy.signal.lfilter`): H = Σ b_j z⁻ʲ / Σ a_j z⁻ʲ;
/// a continuous one in descending powers of s (as `scipy.signal.TransferFunction`).
/// `domain` defaults to "discrete"; `discretization` (continuous only) to "bilinear"
/// (Tustin, `scipy.signal.cont2discrete(method="bilinear")`, no pre-warping).
public struct UserSystem: Sendable, Equatable, Decodable {
    public enum Domain: String, Sendable, Decodable { case discrete, continuous }
    public enum Method: String, Sendable, Decodable { case bilinear, zoh }
    public var a, b, c, d: [[Double]]?
    public var num, den: [Double]?
    public var domain: Domain?
    public var discretization: Method?
    public var rate: Double?
    /// Free text, copied into the model's description.
    public var description: String?

    public init(a: [[Double]]? = nil, b: [[Double]]? = nil, c: [[Double]]? = nil, d: [[Double]]? = nil,
                num: [Double]? = nil, den: [Double]? = nil, domain: Domain? = nil, discretization: Method? = nil,
                rate: Double? = nil) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.num = num; self.den = den
        self.domain = domain; self.discretization = discretization; self.rate = rate
    }

    static let keys: Set<String> = ["a", "b", "c", "d", "num", "den", "domain", "discretization", "rate", "description"]

    enum CodingKeys: String, CodingKey { case a, b, c, d, num, den, domain, discretization, rate, description }
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        if let bad = any.allKeys.map(\.stringValue).sorted().first(where: { !UserSystem.keys.contains($0) }) {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription:
                "unknown key '\(bad)' (known: \(UserSystem.keys.sorted().joined(separator: ", ")))"))
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        a = try c.decodeIfPresent([[Double]].self, forKey: .a)
        b = try c.decodeIfPresent([[Double]].self, forKey: .b)
        self.c = try c.decodeIfPresent([[Double]].self, forKey: .c)
        d = try c.decodeIfPresent([[Double]].self, forKey: .d)
        num = try c.decodeIfPresent([Double].self, forKey: .num)
        den = try c.decodeIfPresent([Double].self, forKey: .den)
        domain = try c.decodeIfPresent(Domain.self, forKey: .domain)
        discretization = try c.decodeIfPresent(Method.self, forKey: .discretization)
        rate = try c.decodeIfPresent(Double.self, forKey: .rate)
        description = try c.decodeIfPresent(String.self, forKey: .description)
    }

    /// Decodes the JSON file's bytes; every problem is a `.data` error naming the key.
    public static func parse(_ bytes: [UInt8]) throws(DesignError) -> UserSystem {
        do {
            return try JSONDecoder().decode(UserSystem.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw DesignError(.data, "bad system JSON: " + ModelFile.describe(e, Data(bytes)))
        } catch {
            throw DesignError(.data, "bad system JSON: \(error)")
        }
    }
}

/// Realizes a `UserSystem` as a `ModalSystem`.
public enum StateSpaceRealization {
    public static let maxStates = 256
    public static let maxChannels = 64
    /// Refuse an eigenvector matrix with ‖V‖₁‖V⁻¹‖₁ above this: A is defective to working
    /// precision. (Milder ill-conditioning is judged by `ModalSystem.cancellation`, which is
    /// independent of how the state is scaled.)
    public static let maxConditionNumber = 1e12

    /// The modal system and its sample rate (`rateOverride`, else the file's "rate").
    public static func realize(_ u: UserSystem, rateOverride: Int? = nil) throws(DesignError) -> (system: ModalSystem, rate: Int) {
        let rate = try sampleRate(u, rateOverride)
        let domain = u.domain ?? .discrete
        if domain == .discrete, u.discretization != nil {
            throw DesignError(.data, "\"discretization\" is for continuous systems only (this one is discrete)")
        }
        let method = u.discretization ?? .bilinear
        let T = 1 / Double(rate)
        let hasSS = u.a != nil || u.b != nil || u.c != nil || u.d != nil
        let hasTF = u.num != nil || u.den != nil
        switch (hasSS, hasTF) {
        case (true, true): throw DesignError(.data, "give either a state space (a, b, c, d) or a transfer function (num, den), not both")
        case (false, false): throw DesignError(.data, "no system: give \"a\", \"b\", \"c\" (and \"d\"), or \"num\" and \"den\"")
        case (true, false):
            let (modes, d, m, p) = try stateSpaceModes(u)
            let (dm, dd) = domain == .continuous ? try discretize(modes, d, T: T, method) : (modes, d)
            let (om, od) = try toStateIncludesInput(dm, dd)
            return (try ModalSystem(modes: om, d: od, inputs: m, outputs: p), rate)
        case (false, true):
            guard let num = u.num, let den = u.den else { throw DesignError(.data, "a transfer function needs both \"num\" and \"den\"") }
            if domain == .discrete { return (try discreteTransferFunction(num, den), rate) }
            let (modes, d) = try continuousTransferFunction(num, den)
            let (dm, dd) = try discretize(modes, d, T: T, method)
            let (om, od) = try toStateIncludesInput(dm, dd)
            return (try ModalSystem(modes: om, d: od, inputs: 1, outputs: 1), rate)
        }
    }

    static func sampleRate(_ u: UserSystem, _ override: Int?) throws(DesignError) -> Int {
        if let r = override {
            guard r > 0 else { throw DesignError(.usage, "--rate \(r) must be positive") }
            return r
        }
        guard let r = u.rate else {
            throw DesignError(.usage, "no sample rate: put \"rate\" in the file or give --rate HZ")
        }
        guard r.isFinite, r >= 1, r <= 1e7, r == r.rounded() else {
            throw DesignError(.data, "\"rate\" \(r) must be a whole number of Hz between 1 and 10000000")
        }
        return Int(r)
    }

    // MARK: State space

    /// Checks shapes (A (n,n), B (n,m), C (p,n), D (p,m)) and values; diagonalizes A = VΛV⁻¹
    /// (LAPACK dgeev, then V⁻¹ by Gauss–Jordan) and returns the modes λ_i, b̃ = (V⁻¹B)_i·,
    /// c̃ = (CV)_·i in the file's own convention, with D, m and p.
    static func stateSpaceModes(_ u: UserSystem) throws(DesignError) -> ([Mode], [[Double]], Int, Int) {
        guard let A = u.a, let B = u.b, let C = u.c else {
            throw DesignError(.data, "a state space needs \"a\", \"b\" and \"c\" (\"d\" defaults to zeros)")
        }
        let n = A.count
        guard n >= 1, n <= maxStates else { throw DesignError(.data, "\"a\" must have 1…\(maxStates) rows (has \(n))") }
        guard A.allSatisfy({ $0.count == n }) else { throw DesignError(.data, "\"a\" must be square (\(n) rows of \(n))") }
        guard B.count == n, let m = B.first?.count, m >= 1, m <= maxChannels, B.allSatisfy({ $0.count == m }) else {
            throw DesignError(.data, "\"b\" must be (\(n), inputs) with 1…\(maxChannels) inputs: \(n) rows of equal length")
        }
        guard let p = C.first?.count == n ? C.count : nil, p >= 1, p <= maxChannels, C.allSatisfy({ $0.count == n }) else {
            throw DesignError(.data, "\"c\" must be (outputs, \(n)) with 1…\(maxChannels) outputs: rows of length \(n)")
        }
        let D = u.d ?? Array(repeating: Array(repeating: 0, count: m), count: p)
        guard D.count == p, D.allSatisfy({ $0.count == m }) else { throw DesignError(.data, "\"d\" must be (\(p), \(m)) (outputs, inputs)") }
        for (name, x) in [("a", A), ("b", B), ("c", C), ("d", D)] where !x.allSatisfy({ $0.allSatisfy(\.isFinite) }) {
            throw DesignError(.data, "\"\(name)\" has a non-finite value")
        }
        let (values, V) = try eigen(A, vectors: true)
        let W = try inverse(V, values: values)
        var modes: [Mode] = []
        for i in 0..<n {
            let b = (0..<m).map { j in (0..<n).reduce(Complex<Double>.zero) { $0 + W[i][$1] * B[$1][j] } }
            let c = (0..<p).map { h in (0..<n).reduce(Complex<Double>.zero) { $0 + V[$1][i] * C[h][$1] } }
            modes.append(Mode(lambda: values[i], b: b, c: c))
        }
        return (modes, D, m, p)
    }

    /// Eigenvalues (and, with `vectors`, right eigenvectors V, row-major V[row][col]) of a real
    /// square matrix by LAPACK dgeev (balanced Hessenberg QR). Complex pairs come out exactly
    /// conjugate, real eigenvalues with real vectors.
    static func eigen(_ A: [[Double]], vectors: Bool) throws(DesignError) -> ([Complex<Double>], [[Complex<Double>]]) {
        var n = Int32(A.count), lda = Int32(A.count), ldvl = Int32(1), ldvr = Int32(A.count), info = Int32(0)
        let N = A.count
        var a = [Double](repeating: 0, count: N * N)
        for r in 0..<N { for c in 0..<N { a[c * N + r] = A[r][c] } }   // column-major
        var wr = [Double](repeating: 0, count: N), wi = [Double](repeating: 0, count: N)
        var vl = [Double](repeating: 0, count: 1), vr = [Double](repeating: 0, count: N * N)
        var lwork = Int32(max(1, 8 * N)), work = [Double](repeating: 0, count: max(1, 8 * N))
        dgeev_("N", vectors ? "V" : "N", &n, &a, &lda, &wr, &wi, &vl, &ldvl, &vr, &ldvr, &work, &lwork, &info, 1, 1)
        guard info == 0 else { throw DesignError(.data, "the eigenvalue computation did not converge (LAPACK dgeev info \(info))") }
        let values = (0..<N).map { Complex(wr[$0], wi[$0]) }
        guard vectors else { return (values, []) }
        var V = [[Complex<Double>]](repeating: [Complex<Double>](repeating: .zero, count: N), count: N)
        var j = 0
        while j < N {
            if wi[j] != 0 && j + 1 < N {   // v_j = VR[:,j] + i·VR[:,j+1], v_{j+1} = conj(v_j)
                for r in 0..<N {
                    V[r][j] = Complex(vr[j * N + r], vr[(j + 1) * N + r])
                    V[r][j + 1] = V[r][j].conjugate
                }
                j += 2
            } else {
                for r in 0..<N { V[r][j] = Complex(vr[j * N + r], 0) }
                j += 1
            }
        }
        return (values, V)
    }

    /// V⁻¹ by Gauss–Jordan elimination with partial pivoting; refuses (`.data`) a singular or
    /// ill-conditioned V (‖V‖₁‖V⁻¹‖₁ > `maxConditionNumber`): A is defective, i.e. has a repeated
    /// eigenvalue without a full set of eigenvectors, and no diagonal form.
    static func inverse(_ V: [[Complex<Double>]], values: [Complex<Double>]) throws(DesignError) -> [[Complex<Double>]] {
        let n = V.count
        var M = V
        var W = (0..<n).map { r in (0..<n).map { Complex<Double>($0 == r ? 1 : 0, 0) } }
        func defective(_ kappa: String) -> DesignError {
            DesignError(.data, "\"a\" is not diagonalizable: a repeated eigenvalue (\(closestPair(values))) without a full set of eigenvectors (eigenvector condition number \(kappa)) has no modal form")
        }
        for col in 0..<n {
            guard let piv = (col..<n).max(by: { M[$0][col].length < M[$1][col].length }), M[piv][col].length > 0 else {
                throw defective("∞")
            }
            M.swapAt(col, piv); W.swapAt(col, piv)
            let inv = Complex<Double>(1, 0) / M[col][col]
            for k in 0..<n { M[col][k] = M[col][k] * inv; W[col][k] = W[col][k] * inv }
            for r in 0..<n where r != col {
                let f = M[r][col]
                if f == .zero { continue }
                for k in 0..<n { M[r][k] = M[r][k] - f * M[col][k]; W[r][k] = W[r][k] - f * W[col][k] }
            }
        }
        func norm1(_ X: [[Complex<Double>]]) -> Double { (0..<n).map { c in (0..<n).reduce(0) { $0 + X[$1][c].length } }.max() ?? 0 }
        let kappa = norm1(V) * norm1(W)
        guard kappa.isFinite, kappa <= maxConditionNumber else { throw defective("\(Scalar(kappa))") }
        return W
    }

    /// "λ ≈ 0.5 twice", or the closest two eigenvalues.
    static func closestPair(_ v: [Complex<Double>]) -> String {
        var best = (Double.infinity, 0, 0)
        for i in v.indices { for j in v.indices where j > i && (v[i] - v[j]).length < best.0 { best = ((v[i] - v[j]).length, i, j) } }
        guard best.0.isFinite else { return v.first.map(show) ?? "none" }
        return best.0 == 0 ? "λ = \(show(v[best.1])) twice" : "λ = \(show(v[best.1])) and \(show(v[best.2]))"
    }

    // MARK: Discretization and convention

    /// Continuous modes (λ, b, c) → discrete modes in the textbook convention, per mode (exact:
    /// the modal transformation commutes with both maps):
    /// ZOH: λ̄ = e^{λT}, b̄ = (e^{λT} − 1)/λ·b (T·b at λ = 0), c̄ = c, D̄ = D.
    /// Bilinear (scipy `cont2discrete`, α = ½): g = 1/(1 − λT/2), λ̄ = (1 + λT/2)·g, b̄ = T·g·b,
    /// c̄ = g·c, D̄ = D + ½·Re Σ_i c_i b̄_iᵀ.
    static func discretize(_ modes: [Mode], _ D: [[Double]], T: Double, _ method: UserSystem.Method) throws(DesignError) -> ([Mode], [[Double]]) {
        var out: [Mode] = [], Dd = D
        for m in modes {
            let lt = m.lambda * T
            switch method {
            case .zoh:
                let e = Complex.exp(lt)
                let f = lt.length < 1e-12 ? Complex(T, 0) : (e - Complex(1, 0)) / m.lambda
                out.append(Mode(lambda: e, b: m.b.map { $0 * f }, c: m.c))
            case .bilinear:
                let den = Complex<Double>(1, 0) - lt / 2
                guard den.length > 1e-12 else {
                    throw DesignError(.data, "pole s = \(show(m.lambda)) sits at 2·rate, which the bilinear transform maps to infinity")
                }
                let g = Complex<Double>(1, 0) / den
                let bd = m.b.map { $0 * (g * T) }
                for h in Dd.indices { for j in Dd[h].indices { Dd[h][j] += 0.5 * (m.c[h] * bd[j]).real } }
                out.append(Mode(lambda: (Complex(1, 0) + lt / 2) * g, b: bd, c: m.c.map { $0 * g }))
            }
        }
        return (out, Dd)
    }

    /// Textbook convention (x[k+1] = λx[k] + b u[k], y = c x[k] + D u) → ssm-stream's (the state
    /// includes the current input): c b z⁻¹/(1 − λz⁻¹) = (c b/λ)·(1/(1 − λz⁻¹) − 1), so
    /// c' = c/λ, D' = D − Re Σ_i c_i b_iᵀ/λ_i. A mode with λ = 0 is a pure delay: refused.
    static func toStateIncludesInput(_ modes: [Mode], _ D: [[Double]]) throws(DesignError) -> ([Mode], [[Double]]) {
        var out: [Mode] = [], Dn = D
        for m in modes {
            guard m.lambda.length > 1e-12 else {
                throw DesignError(.data, "a pole at z = 0 is a pure delay (x[k+1] depends on u[k] only), which the diagonal form cannot hold")
            }
            let c = m.c.map { $0 / m.lambda }
            for h in Dn.indices { for j in Dn[h].indices { Dn[h][j] -= (c[h] * m.b[j]).real } }
            out.append(Mode(lambda: m.lambda, b: m.b, c: c))
        }
        return (out, Dn)
    }

    // MARK: Transfer functions

    /// Discrete H = Σ_{j=0}^{M} b_j z⁻ʲ / Σ_{j=0}^{n} a_j z⁻ʲ (M ≤ n) → partial fractions
    /// H = Σ_i r_i/(1 − p_i z⁻¹) + d: p_i the roots of zⁿ + a₁/a₀ zⁿ⁻¹ + … (companion matrix,
    /// dgeev), r_i = Σ_j b_j p_iⁿ⁻ʲ / (a₀·p_i·Π_{l≠i}(p_i − p_l)), d = b_n/a_n if M = n else 0.
    /// Trailing zero coefficients are dropped; M > n (an FIR tail: pure delays) is refused.
    static func discreteTransferFunction(_ num: [Double], _ den: [Double]) throws(DesignError) -> ModalSystem {
        let (b, a) = try checkedTF(num, den, trailing: true)
        guard b.count <= a.count else {
            throw DesignError(.data, "the numerator (degree \(b.count - 1) in z⁻¹) is longer than the denominator (degree \(a.count - 1)): the excess is an FIR part of pure delays, which a diagonal recurrence cannot hold")
        }
        let n = a.count - 1
        let d = b.count == a.count ? b[n] / a[n] : 0
        guard n >= 1 else { return try ModalSystem(modes: [], d: [[d]], inputs: 1, outputs: 1) }
        let poles = try roots(monic: a.dropFirst().map { $0 / a[0] })
        try ModalSystem.checkPoles(poles)
        let modes = poles.enumerated().map { (i, p) in
            let top = b.reduce(Complex<Double>.zero) { $0 * p + Complex($1, 0) } * powInt(p, n - b.count + 1)  // Σ b_j pⁿ⁻ʲ
            let bottom = poles.enumerated().reduce(p * a[0]) { $1.offset == i ? $0 : $0 * (p - $1.element) }
            return Mode(lambda: p, b: [Complex(1, 0)], c: [top / bottom])
        }
        return try ModalSystem(modes: modes, d: [[d]], inputs: 1, outputs: 1)
    }

    /// Continuous H(s) = Σ b_j s^{M−j} / Σ a_j s^{n−j} (M ≤ n, descending powers) →
    /// H = Σ_i R_i/(s − s_i) + D with R_i = N(s_i)/(a₀·Π_{l≠i}(s_i − s_l)), D = b₀/a₀ if M = n:
    /// continuous modes (λ = s_i, b = 1, c = R_i). Leading zero coefficients are dropped.
    static func continuousTransferFunction(_ num: [Double], _ den: [Double]) throws(DesignError) -> ([Mode], [[Double]]) {
        let (b, a) = try checkedTF(num, den, trailing: false)
        guard b.count <= a.count else {
            throw DesignError(.data, "the numerator (degree \(b.count - 1) in s) exceeds the denominator's (degree \(a.count - 1)): the system is improper")
        }
        let n = a.count - 1
        let D = b.count == a.count ? b[0] / a[0] : 0
        guard n >= 1 else { return ([], [[D]]) }
        let poles = try roots(monic: a.dropFirst().map { $0 / a[0] })
        for i in poles.indices { for j in poles.indices where j > i && (poles[i] - poles[j]).length <= 1e-6 * max(poles[i].length, poles[j].length) {
            throw DesignError(.data, "repeated pole s = \(show(poles[i])): a repeated pole has no diagonal (modal) form")
        } }
        let modes = poles.enumerated().map { (i, s) in
            let top = b.reduce(Complex<Double>.zero) { $0 * s + Complex($1, 0) }
            let bottom = poles.enumerated().reduce(Complex(a[0], 0)) { $1.offset == i ? $0 : $0 * (s - $1.element) }
            return Mode(lambda: s, b: [Complex(1, 0)], c: [top / bottom])
        }
        return (modes, [[D]])
    }

    /// Finite, non-empty coefficient lists with a non-zero leading denominator coefficient
    /// (a₀ for z⁻¹ lists; after dropping leading zeros for s lists); zeros dropped at the
    /// high-power end (`trailing`: z⁻¹ lists; otherwise leading: s lists).
    static func checkedTF(_ num: [Double], _ den: [Double], trailing: Bool) throws(DesignError) -> ([Double], [Double]) {
        guard !num.isEmpty, !den.isEmpty else { throw DesignError(.data, "\"num\" and \"den\" must be non-empty") }
        guard num.allSatisfy(\.isFinite), den.allSatisfy(\.isFinite) else { throw DesignError(.data, "\"num\" or \"den\" has a non-finite value") }
        guard den.count <= maxStates + 1 else { throw DesignError(.data, "\"den\" has more than \(maxStates + 1) coefficients") }
        func trim(_ x: [Double]) -> [Double] {
            trailing ? Array(x.reversed().drop(while: { $0 == 0 }).reversed()) : Array(x.drop(while: { $0 == 0 }))
        }
        let a = trim(den), b = trim(num)
        guard !a.isEmpty, a[0] != 0 else {
            throw DesignError(.data, trailing ? "den[0] (the z⁰ coefficient) must be non-zero" : "\"den\" is all zeros")
        }
        return (b.isEmpty ? [0] : b, a)
    }

    /// Roots of xⁿ + c₁xⁿ⁻¹ + … + c_n: eigenvalues of the companion matrix (first row −c, ones below the diagonal).
    static func roots(monic c: [Double]) throws(DesignError) -> [Complex<Double>] {
        let n = c.count
        var A = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for j in 0..<n { A[0][j] = -c[j] }
        for i in 1..<max(n, 1) { A[i][i - 1] = 1 }
        return try eigen(A, vectors: false).0
    }

    static func powInt(_ z: Complex<Double>, _ k: Int) -> Complex<Double> {
        (0..<max(k, 0)).reduce(Complex(1, 0)) { r, _ in r * z }
    }
}
