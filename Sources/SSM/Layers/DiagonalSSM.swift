import ComplexModule
import RealModule

/// The engine form shared by S4D, S5 and LRU: a discretized diagonal complex LTI system
///
///     x_k = Λ̄ ⊙ x_{k-1} + B̄ u_k          (P complex lanes)
///     y_k = s · Re(C x_k) + D ⊙ u_k       (s = 2 for conjugate-symmetric S4D/S5, 1 for LRU)
///
/// in one of two projections:
/// - `.mimo` (S5, LRU): B̄ (P, H) and C (H, P) dense. Stored as `bw` (H, 2P), row h = [Re B̄[:,h]; Im B̄[:,h]],
///   and `cw` (2P, H), row p = s·Re C[:,p], row P+p = −s·Im C[:,p]: both a sum of contiguous rows per
///   sample (`vecMat`) and one sgemm per block, over the same buffers.
/// - `.siso(n)` (S4D): H independent channels of n lanes each; lane p belongs to channel p / n.
///   `bw` (2P) = [Re B̄; Im B̄], `cw` (2P) = [s·Re C; −s·Im C].
///
/// Shapes: u, y (H); state (2P); block U, Y (L, H); block scratch X (L, 2P).
public struct DiagonalSSM: @unchecked Sendable {  // read-only weights after init
    public enum Projection: Sendable, Equatable { case mimo, siso(statesPerChannel: Int) }

    public let H: Int
    public let P: Int
    public let projection: Projection
    @usableFromInline let lambda: UnsafeMutablePointer<Scalar>  // (2P)
    @usableFromInline let bw: UnsafeMutablePointer<Scalar>      // mimo (H, 2P) · siso (2P)
    @usableFromInline let cw: UnsafeMutablePointer<Scalar>      // mimo (2P, H) · siso (2P)
    @usableFromInline let d: UnsafeMutablePointer<Scalar>       // (H)
    /// MIMO B̃ and C in half precision (the shapes of `bw`, `cw`, in strips), when the file stores B
    /// or C so: the per-sample paths read these (half the bytes); blocks and training read `bw`, `cw`.
    @usableFromInline let bw16: StripMatrix<Float16>?
    @usableFromInline let cw16: StripMatrix<Float16>?
    /// With `bw16`: the discretization's per-lane factor f (2P: [Re f; Im f]) with B̄ = f ⊙ B̃, so that
    /// the half weights are the file's B̃ exactly (B̄ itself can be far smaller: Δ·B̃ for small Δ,
    /// where halves lose their precision) and B̄u = f ⊙ (B̃u) is formed in float.
    @usableFromInline let bScale: UnsafeMutablePointer<Scalar>?

    /// Floats of recurrent state, and of per-sample scratch.
    public var stateCount: Int { 2 * P }
    public var scratchCount: Int { 2 * P }

    /// MIMO from discrete parameters: Λ̄ (P), B̄ (P, H), C (H, P), scale s, D (H). With `inputScale`
    /// f (P), `bBar` is the file's B̃ and B̄ = f ⊙ B̃ (per lane); `half` keeps B̃ and/or C in half
    /// precision for the step (B̃ as stored, f applied in float), the float copies holding the same values.
    public init(lambdaBar: [Complex<Double>], bBar bIn: [[Complex<Double>]], c: [[Complex<Double>]],
                outputScale s: Double, d: [Double], inputScale f: [Complex<Double>]? = nil,
                half: (b: Bool, c: Bool) = (false, false), arena: Arena) {
        let P = lambdaBar.count, H = d.count
        // One channel runs the fused SISO step on its tiny vectors: no half copies.
        let mimo = H > 1, halfB = half.b && mimo && f != nil
        // B̃ as a half (the file's values when it stores them so), B̄ = f ⊙ B̃ in Double.
        let bTilde = halfB ? bIn.map { $0.map { Complex(Double(Float16($0.real)), Double(Float16($0.imaginary))) } } : bIn
        let bBar = f.map { f in (0..<P).map { p in bTilde[p].map { f[p] * $0 } } } ?? bTilde
        // One channel: B̄ (1, 2P) and C (2P, 1) are laid out exactly as the SISO vectors with n = P,
        // and the SISO step fuses input, recurrence and output into one pass (designed filters).
        self.H = H; self.P = P; self.projection = H == 1 ? .siso(statesPerChannel: P) : .mimo
        lambda = arena.copy(lambdaBar.map { Scalar($0.real) } + lambdaBar.map { Scalar($0.imaginary) })
        bw = arena.floats(H * 2 * P)
        for h in 0..<H {
            for p in 0..<P {
                bw[h * 2 * P + p] = Scalar(bBar[p][h].real)
                bw[h * 2 * P + P + p] = Scalar(bBar[p][h].imaginary)
            }
        }
        cw = arena.floats(2 * P * H)
        for p in 0..<P {
            for h in 0..<H {
                cw[p * H + h] = Scalar(s * c[h][p].real)
                cw[(P + p) * H + h] = Scalar(-s * c[h][p].imaginary)
            }
        }
        self.d = arena.copy(d.map { Scalar($0) })
        if halfB, let f {
            var t = [Scalar](repeating: 0, count: H * 2 * P)
            for h in 0..<H { for p in 0..<P { t[h * 2 * P + p] = Scalar(bTilde[p][h].real); t[h * 2 * P + P + p] = Scalar(bTilde[p][h].imaginary) } }
            bw16 = arena.halfStrips(t, rows: H, columns: 2 * P)
            bScale = arena.copy(f.map { Scalar($0.real) } + f.map { Scalar($0.imaginary) })
        } else {
            bw16 = nil; bScale = nil
        }
        // C's halves are the file's values times s = 1 or 2 (exact); blocks read the same values.
        if half.c && mimo {
            for i in 0..<(2 * P * H) { cw[i] = Scalar(Float16(cw[i])) }
            cw16 = arena.halfStrips(cw, rows: 2 * P, columns: H)
        } else {
            cw16 = nil
        }
    }

    /// x ← f ⊙ x over P complex lanes, split storage (B̄u from B̃u when B̃ is kept in half precision).
    @inlinable @inline(__always)
    func scaleInput(_ x: UnsafeMutablePointer<Scalar>, _ f: UnsafePointer<Scalar>) {
        let fi = f + P, xi = x + P
        var i = 0
        while i + 8 <= P {
            let ar = load8(f + i), ai = load8(fi + i), r = load8(x + i), m = load8(xi + i)
            store8((ar * r).addingProduct(-ai, m), x + i); store8((ar * m).addingProduct(ai, r), xi + i)
            i += 8
        }
        while i < P { let r = x[i], m = xi[i]; x[i] = f[i] * r - fi[i] * m; xi[i] = f[i] * m + fi[i] * r; i += 1 }
    }

    /// SISO from discrete parameters, lane p = h·n + j: Λ̄ (H·n), B̄ (H·n), C (H·n), scale s, D (H).
    public init(statesPerChannel n: Int, lambdaBar: [Complex<Double>], bBar: [Complex<Double>],
                c: [Complex<Double>], outputScale s: Double, d: [Double], arena: Arena) {
        let P = lambdaBar.count
        self.H = d.count; self.P = P; self.projection = .siso(statesPerChannel: n)
        lambda = arena.copy(lambdaBar.map { Scalar($0.real) } + lambdaBar.map { Scalar($0.imaginary) })
        bw = arena.copy(bBar.map { Scalar($0.real) } + bBar.map { Scalar($0.imaginary) })
        cw = arena.copy(c.map { Scalar(s * $0.real) } + c.map { Scalar(-s * $0.imaginary) })
        self.d = arena.copy(d.map { Scalar($0) })
        bw16 = nil; cw16 = nil; bScale = nil
    }

    // MARK: step — one sample (the streaming path)

    /// y = s·Re(C x) + D⊙u after x ← Λ̄ ⊙ x + B̄ u. u, y: (H); state, scratch: (2P).
    public func step(_ u: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch b: UnsafeMutablePointer<Scalar>) {
        switch projection {
        case .mimo:
            if bw16 != nil || cw16 != nil { stepHalf(u, y, state: state, scratch: b); return }
            Scan<ComplexLanes>.step(a: lambda, h: state, input: u, rows: H, weights: bw, lanes: P, scratch: b)  // x = Λ̄x + B̄u
            for i in 0..<H { y[i] = d[i] * u[i] }
            vecMat(UnsafePointer(state), rows: 2 * P, cw, columns: H, y, accumulate: true)  // y += C x
        case .siso(let n):
            Scan<ComplexLanes>.step(a: lambda, h: state, input: u, groups: H, lanesPerGroup: n,
                                    b: bw, c: cw, d: d, output: y, lanes: P)
        }
    }

    /// The MIMO step with half-precision B̃ and/or C (out of line: the float step stays as small as
    /// it was, and with it the SISO step's code around it).
    @inline(never)
    func stepHalf(_ u: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>,
                  state: UnsafeMutablePointer<Scalar>, scratch b: UnsafeMutablePointer<Scalar>) {
        if let bw16, let bScale {
            vecMat(u, bw16, b, accumulate: false)                                           // B̃u from half weights
            scaleInput(b, bScale)                                                           // B̄u = f ⊙ B̃u
            Scan<ComplexLanes>.step(a: lambda, h: state, b: UnsafePointer(b), lanes: P)
        } else {
            Scan<ComplexLanes>.step(a: lambda, h: state, input: u, rows: H, weights: bw, lanes: P, scratch: b)
        }
        for i in 0..<H { y[i] = d[i] * u[i] }
        if let cw16 { vecMat(UnsafePointer(state), cw16, y, accumulate: true) }
        else { vecMat(UnsafePointer(state), rows: 2 * P, cw, columns: H, y, accumulate: true) }
    }

    /// One sample of each of G independent streams: U, Y (G, H); stream g's state (2P) at
    /// state + g·stride; scratch X (G, 2P). MIMO: B̄u for all streams in one product over the rows
    /// of `bw`, each stream's recurrence, then C x for all streams — each weight read once per
    /// sample for all G streams (`rowsMat`), where G separate steps would read it G times. SISO
    /// (tiny weights): each stream's fused step.
    public func step(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, streams G: Int,
                     state: UnsafeMutablePointer<Scalar>, stride: Int, scratch X: UnsafeMutablePointer<Scalar>) {
        switch projection {
        case .siso:
            for g in 0..<G { step(U + g * H, Y + g * H, state: state + g * stride, scratch: X) }
        case .mimo:
            let w = 2 * P
            if let bw16, let bScale {
                rowsMat(U, rows: G, bw16, X, accumulate: false)                                 // X_g = B̃ u_g
                for g in 0..<G { scaleInput(X + g * w, bScale) }                                 // X_g = B̄ u_g
            } else { rowsMat(U, rows: G, depth: H, bw, columns: w, X, accumulate: false) }     // X_g = B̄ u_g
            for g in 0..<G {
                let h = state + g * stride, x = X + g * w
                Scan<ComplexLanes>.step(a: lambda, h: h, b: UnsafePointer(x), lanes: P)   // h_g = Λ̄ h_g + B̄ u_g
                x.update(from: h, count: w)
            }
            for g in 0..<G { for i in 0..<H { Y[g * H + i] = d[i] * U[g * H + i] } }
            if let cw16 { rowsMat(UnsafePointer(X), rows: G, cw16, Y, accumulate: true) }
            else { rowsMat(UnsafePointer(X), rows: G, depth: w, cw, columns: H, Y, accumulate: true) }  // y_g += C h_g
        }
    }

    // MARK: forward — a block of L samples (same recurrence, projections batched)

    /// U, Y: (L, H) row-major; X: (L, 2P) scratch; state (2P) carried in and out.
    /// MIMO projections are two sgemm calls; the recurrence is the scan core's `scan` (or
    /// `parallelScan` when `parallel`). A SISO layer has no projection to batch: its sequential
    /// block is the core's time-blocked SISO scan (bit-identical to L steps, each lane's state in
    /// registers through the block, and no (L, 2P) buffer to stream). With
    /// `keepStates`, which training sets, X holds every state h_k on return (the tape `backward` reads).
    public func forward(_ U: UnsafePointer<Scalar>, _ Y: UnsafeMutablePointer<Scalar>, length L: Int,
                        state: UnsafeMutablePointer<Scalar>, scratch X: UnsafeMutablePointer<Scalar>,
                        parallel: Bool = false, keepStates: Bool = false) {
        let w = 2 * P
        if case .siso(let n) = projection, !parallel {
            guard keepStates, L > 0 else {
                Scan<ComplexLanes>.scan(a: lambda, h: state, input: U, groups: H, lanesPerGroup: n, b: bw, c: cw, d: d,
                                        output: Y, length: L, lanes: P, scratch: X)
                return
            }
            // Each step reads the tape's previous row and writes its own.
            for k in 0..<L {
                Scan<ComplexLanes>.step(a: lambda, h: X + k * w, input: U + k * H, groups: H, lanesPerGroup: n,
                                        b: bw, c: cw, d: d, output: Y + k * H, lanes: P,
                                        previous: UnsafePointer(k > 0 ? X + (k - 1) * w : state))
            }
            state.update(from: X + (L - 1) * w, count: w)
            return
        }
        switch projection {
        case .mimo:
            gemm(U, bw, X, M: L, N: w, K: H)
        case .siso(let n):
            for k in 0..<L {
                let row = X + k * w, u = U + k * H
                for ch in 0..<H {
                    let uc = u[ch]
                    for p in (ch * n)..<(ch * n + n) { row[p] = bw[p] * uc; row[P + p] = bw[P + p] * uc }
                }
            }
        }
        if parallel {
            Scan<ComplexLanes>.parallelScan(a: lambda, aStride: 0, h: state, x: X, length: L, lanes: P)
        } else {
            Scan<ComplexLanes>.scan(a: lambda, aStride: 0, h: state, x: X, length: L, lanes: P)
        }
        switch projection {
        case .mimo:
            gemm(X, cw, Y, M: L, N: H, K: w)
            for k in 0..<L { for i in 0..<H { Y[k * H + i] += d[i] * U[k * H + i] } }
        case .siso(let n):
            for k in 0..<L {
                let row = X + k * w
                for ch in 0..<H {
                    var acc = d[ch] * U[k * H + ch]
                    for p in (ch * n)..<(ch * n + n) { acc += cw[p] * row[p] + cw[P + p] * row[P + p] }
                    Y[k * H + ch] = acc
                }
            }
        }
    }

    // MARK: backward — the block's pullback, through the scan core's adjoint

    /// Scratch floats `backward` needs for L samples: MIMO the adjoint states G (L, 2P) and a carry
    /// (2P); SISO only the carry.
    public func backwardScratchCount(_ L: Int) -> Int {
        if case .siso = projection { return 2 * P }
        return (L + 1) * 2 * P
    }

    /// Pullback of `forward` (with `keepStates`) over one block, accumulating engine-layout gradients
    /// into `grad` (a `DiagonalSSM` of the same shape whose buffers hold dΛ̄, dB̄, dC, dD):
    ///
    ///     dC += Σ_k dY_k ⊗ h_k,  G_k = Cᵀ dY_k  →  g_k = conj(Λ̄) ⊙ g_{k+1} + G_k   (adjoint scan)
    ///     dΛ̄ += Σ_k g_k ⊙ conj(h_{k-1}),  dB̄ += Σ_k g_k ⊗ u_k,  dU_k = B̄ᵀ g_k + D ⊙ dY_k,  dD += Σ_k dY_k ⊙ u_k
    ///
    /// (all in split [Re; Im] storage, where each projection is a real linear map).
    /// Shapes: U, dY, dU (L, H) · X (L, 2P) the forward states · h0 (2P) the state before the block ·
    /// scratch (`backwardScratchCount(L)`). dU is overwritten.
    public func backward(_ U: UnsafePointer<Scalar>, states X: UnsafePointer<Scalar>, initial h0: UnsafePointer<Scalar>,
                         _ dY: UnsafePointer<Scalar>, _ dU: UnsafeMutablePointer<Scalar>, length L: Int,
                         scratch: UnsafeMutablePointer<Scalar>, into grad: DiagonalSSM) {
        let w = 2 * P
        switch projection {
        case .mimo:
            let G = scratch, carry = scratch + L * w
            carry.update(repeating: 0, count: w)
            for k in 0..<L { for i in 0..<H { grad.d[i] += dY[k * H + i] * U[k * H + i] } }
            gemm(X, dY, grad.cw, M: w, N: H, K: L, beta: 1, transA: true)          // dC += Xᵀ dY
            gemm(dY, cw, G, M: L, N: w, K: H, transB: true)                        // G = dY Cᵀ
            Scan<ComplexLanes>.adjointScan(a: lambda, aStride: 0, g: carry, dh: G, length: L, lanes: P,
                                           states: X, initial: h0, coefficientGradient: grad.lambda)
            gemm(U, G, grad.bw, M: H, N: w, K: L, beta: 1, transA: true)           // dB̄ += Uᵀ G
            gemm(G, bw, dU, M: L, N: H, K: w, transB: true)                        // dU = G B̄ᵀ
            for k in 0..<L { for i in 0..<H { dU[k * H + i] += d[i] * dY[k * H + i] } }
        case .siso(let n):
            // No projection to batch: the adjoint runs sample by sample with every projection's
            // pullback fused in (the tape is read once, G is never written).
            let carry = scratch
            carry.update(repeating: 0, count: w)
            var k = L - 1
            while k >= 0 {
                Scan<ComplexLanes>.adjointStep(a: lambda, carry: carry, input: U + k * H, outputGradient: dY + k * H,
                                               inputGradient: dU + k * H, groups: H, lanesPerGroup: n, b: bw, c: cw, d: d,
                                               state: X + k * w, previous: k > 0 ? X + (k - 1) * w : h0,
                                               da: grad.lambda, db: grad.bw, dc: grad.cw, dd: grad.d, lanes: P)
                k -= 1
            }
        }
    }

    /// The engine-layout gradient as complex values per lane, for the families' pullbacks:
    /// dΛ̄_p, dB̄[p, h] (MIMO; SISO: h = the lane's channel, one entry), dC[h, p] of the unscaled C
    /// (the engine stores s·Re C and −s·Im C, so dRe C = s·dcw_re and dIm C = −s·dcw_im), dD.
    public func complexGradients(outputScale s: Double) -> (lambda: [Complex<Double>], b: [[Complex<Double>]], c: [[Complex<Double>]], d: [Double]) {
        let lam = (0..<P).map { Complex(Double(lambda[$0]), Double(lambda[P + $0])) }
        var b = [[Complex<Double>]](), c = [[Complex<Double>]]()
        switch projection {
        case .mimo:
            b = (0..<P).map { p in (0..<H).map { h in Complex(Double(bw[h * 2 * P + p]), Double(bw[h * 2 * P + P + p])) } }
            c = (0..<H).map { h in (0..<P).map { p in Complex(s * Double(cw[p * H + h]), -s * Double(cw[(P + p) * H + h])) } }
        case .siso:
            b = (0..<P).map { p in [Complex(Double(bw[p]), Double(bw[P + p]))] }
            c = [(0..<P).map { p in Complex(s * Double(cw[p]), -s * Double(cw[P + p])) }]
        }
        return (lam, b, c, (0..<H).map { Double(d[$0]) })
    }

    // MARK: convolution — kernel K_l = s·Re(C Λ̄^l B̄) applied by FFT (offline, zero initial state)

    /// The convolution kernel K (H_out, H_in, L) in Double: K_l[o, i] = Σ_p s·Re(C[o,p] Λ̄_p^l B̄[p,i]).
    public func kernel(length L: Int) -> [[[Double]]] {
        var K = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: L), count: H), count: H)
        for p in 0..<P {
            let lr = Double(lambda[p]), li = Double(lambda[P + p])
            // The lanes that feed / are read by this state.
            let inputs: [Int], outputs: [Int]
            switch projection {
            case .mimo: inputs = Array(0..<H); outputs = Array(0..<H)
            case .siso(let n): inputs = [p / n]; outputs = [p / n]
            }
            for i in inputs {
                var xr: Double, xi: Double
                switch projection {
                case .mimo: xr = Double(bw[i * 2 * P + p]); xi = Double(bw[i * 2 * P + P + p])
                case .siso: xr = Double(bw[p]); xi = Double(bw[P + p])
                }
                for l in 0..<L {
                    for o in outputs {
                        let cr: Double, ci: Double
                        switch projection {
                        case .mimo: cr = Double(cw[p * H + o]); ci = Double(cw[(P + p) * H + o])
                        case .siso: cr = Double(cw[p]); ci = Double(cw[P + p])
                        }
                        K[o][i][l] += cr * xr + ci * xi
                    }
                    (xr, xi) = (lr * xr - li * xi, lr * xi + li * xr)
                }
            }
        }
        return K
    }

    /// Convolution mode: Y = K ∗ U + D⊙U from a zero state. U: (L, H) → Y: (L, H).
    public func convolve(_ U: [Scalar], length L: Int) -> [Scalar] {
        let inputs = (0..<H).map { i in (0..<L).map { Double(U[$0 * H + i]) } }
        var kernels = kernel(length: L)
        if case .siso = projection {
            // Diagonal kernel: drop the zero cross terms so each output convolves one input.
            kernels = (0..<H).map { o in (0..<H).map { $0 == o ? kernels[o][o] : [] } }
        }
        let out = causalConvolution(kernels: kernels, inputs: inputs, length: L)
        var Y = [Scalar](repeating: 0, count: L * H)
        for o in 0..<H { for t in 0..<L { Y[t * H + o] = Scalar(out[o][t] + Double(d[o]) * inputs[o][t]) } }
        return Y
    }

    // MARK: inspection

    /// The engine-layout weights (read-only views), for export and for the C reference benchmarks:
    /// Λ̄ (2P) [Re; Im], B (mimo (H, 2P) · siso (2P)), C (mimo (2P, H) · siso (2P)), D (H).
    public var weights: (lambda: UnsafePointer<Scalar>, b: UnsafePointer<Scalar>, c: UnsafePointer<Scalar>, d: UnsafePointer<Scalar>) {
        (UnsafePointer(lambda), UnsafePointer(bw), UnsafePointer(cw), UnsafePointer(d))
    }

    /// |Λ̄_p| for every lane.
    /// Λ̄, the P discrete eigenvalues (poles; with conjugate symmetry, each stands for its pair).
    public var eigenvalues: [Complex<Double>] { (0..<P).map { Complex(Double(lambda[$0]), Double(lambda[P + $0])) } }

    /// A one-channel layer's transfer function in partial fractions over its real-system poles:
    /// y = Re(s·C x) makes H(z) = D + Σ_p r_p / (1 − λ̄_p z⁻¹) + conj(r_p) / (1 − conj(λ̄_p) z⁻¹)
    /// with r_p = s·C_p·B̄_p / 2 — one term 2·Re(r_p) / (1 − λ̄_p z⁻¹) for a real λ̄_p. Nil for a
    /// layer of several channels (MIMO: no single H(z)).
    public var partialFractions: (poles: [Complex<Double>], residues: [Complex<Double>], d: Double)? {
        guard H == 1 else { return nil }
        var poles: [Complex<Double>] = [], residues: [Complex<Double>] = []
        for p in 0..<P {
            let l = Complex(Double(lambda[p]), Double(lambda[P + p]))
            let sc = Complex(Double(cw[p]), -Double(cw[P + p]))      // s·C_p
            let b = Complex(Double(bw[p]), Double(bw[P + p]))        // B̄_p
            let r = sc * b / 2
            if l.imaginary == 0 {
                // A real pole (a designed filter's first-order section) is one pole of the real
                // system: its two conjugate terms add to 2·Re(r) / (1 − λ̄ z⁻¹).
                poles.append(l); residues.append(Complex(2 * r.real, 0))
            } else {
                poles += [l, l.conjugate]; residues += [r, r.conjugate]
            }
        }
        return (poles, residues, Double(d[0]))
    }

    public var eigenvalueMagnitudes: [Double] {
        (0..<P).map { Double.sqrt(Double(lambda[$0]) * Double(lambda[$0]) + Double(lambda[P + $0]) * Double(lambda[P + $0])) }
    }

    /// Whether every engine weight is a finite Scalar (finite parameters can still overflow when
    /// discretized, e.g. Δ = exp(1000)).
    public var weightsAreFinite: Bool {
        let (nb, nc) = projection == .mimo ? (H * 2 * P, 2 * P * H) : (2 * P, 2 * P)
        func finite(_ p: UnsafeMutablePointer<Scalar>, _ n: Int) -> Bool {
            UnsafeBufferPointer(start: p, count: n).allSatisfy(\.isFinite)
        }
        return finite(lambda, 2 * P) && finite(bw, nb) && finite(cw, nc) && finite(d, H)
    }

    /// Multiply-adds counted as 2 FLOPs, per sample.
    public var flopsPerSample: Int {
        switch projection {
        case .mimo: return 8 * P * H + 6 * P + 2 * H
        case .siso: return 4 * P + 6 * P + 4 * P + 2 * H
        }
    }
}
