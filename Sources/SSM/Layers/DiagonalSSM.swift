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
    @usableFromInline let lambda: UnsafeMutablePointer<Float>  // (2P)
    @usableFromInline let bw: UnsafeMutablePointer<Float>      // mimo (H, 2P) · siso (2P)
    @usableFromInline let cw: UnsafeMutablePointer<Float>      // mimo (2P, H) · siso (2P)
    @usableFromInline let d: UnsafeMutablePointer<Float>       // (H)

    /// Floats of recurrent state, and of per-sample scratch.
    public var stateCount: Int { 2 * P }
    public var scratchCount: Int { 2 * P }

    /// MIMO from discrete parameters: Λ̄ (P), B̄ (P, H), C (H, P), scale s, D (H).
    public init(lambdaBar: [Complex<Double>], bBar: [[Complex<Double>]], c: [[Complex<Double>]],
                outputScale s: Double, d: [Double], arena: Arena) {
        let P = lambdaBar.count, H = d.count
        // One channel: B̄ (1, 2P) and C (2P, 1) are laid out exactly as the SISO vectors with n = P,
        // and the SISO step fuses input, recurrence and output into one pass (designed filters).
        self.H = H; self.P = P; self.projection = H == 1 ? .siso(statesPerChannel: P) : .mimo
        lambda = arena.copy(lambdaBar.map { Float($0.real) } + lambdaBar.map { Float($0.imaginary) })
        bw = arena.floats(H * 2 * P)
        for h in 0..<H {
            for p in 0..<P {
                bw[h * 2 * P + p] = Float(bBar[p][h].real)
                bw[h * 2 * P + P + p] = Float(bBar[p][h].imaginary)
            }
        }
        cw = arena.floats(2 * P * H)
        for p in 0..<P {
            for h in 0..<H {
                cw[p * H + h] = Float(s * c[h][p].real)
                cw[(P + p) * H + h] = Float(-s * c[h][p].imaginary)
            }
        }
        self.d = arena.copy(d.map(Float.init))
    }

    /// SISO from discrete parameters, lane p = h·n + j: Λ̄ (H·n), B̄ (H·n), C (H·n), scale s, D (H).
    public init(statesPerChannel n: Int, lambdaBar: [Complex<Double>], bBar: [Complex<Double>],
                c: [Complex<Double>], outputScale s: Double, d: [Double], arena: Arena) {
        let P = lambdaBar.count
        self.H = d.count; self.P = P; self.projection = .siso(statesPerChannel: n)
        lambda = arena.copy(lambdaBar.map { Float($0.real) } + lambdaBar.map { Float($0.imaginary) })
        bw = arena.copy(bBar.map { Float($0.real) } + bBar.map { Float($0.imaginary) })
        cw = arena.copy(c.map { Float(s * $0.real) } + c.map { Float(-s * $0.imaginary) })
        self.d = arena.copy(d.map(Float.init))
    }

    // MARK: step — one sample (the streaming path)

    /// y = s·Re(C x) + D⊙u after x ← Λ̄ ⊙ x + B̄ u. u, y: (H); state, scratch: (2P).
    public func step(_ u: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                     state: UnsafeMutablePointer<Float>, scratch b: UnsafeMutablePointer<Float>) {
        switch projection {
        case .mimo:
            Scan<ComplexLanes>.step(a: lambda, h: state, input: u, rows: H, weights: bw, lanes: P, scratch: b)  // x = Λ̄x + B̄u
            for i in 0..<H { y[i] = d[i] * u[i] }
            vecMat(UnsafePointer(state), rows: 2 * P, cw, columns: H, y, accumulate: true)  // y += C x
        case .siso(let n):
            Scan<ComplexLanes>.step(a: lambda, h: state, input: u, groups: H, lanesPerGroup: n,
                                    b: bw, c: cw, d: d, output: y, lanes: P)
        }
    }

    // MARK: forward — a block of L samples (same recurrence, projections batched)

    /// U, Y: (L, H) row-major; X: (L, 2P) scratch; state (2P) carried in and out.
    /// MIMO projections are two sgemm calls; the recurrence is the scan core's `scan` (or
    /// `parallelScan` when `parallel`). A SISO layer has no projection to batch: its sequential
    /// block is L fused steps (bit-identical to step mode, and no (L, 2P) buffer to stream).
    public func forward(_ U: UnsafePointer<Float>, _ Y: UnsafeMutablePointer<Float>, length L: Int,
                        state: UnsafeMutablePointer<Float>, scratch X: UnsafeMutablePointer<Float>,
                        parallel: Bool = false) {
        let w = 2 * P
        if case .siso = projection, !parallel {
            for k in 0..<L { step(U + k * H, Y + k * H, state: state, scratch: X) }
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
    public func convolve(_ U: [Float], length L: Int) -> [Float] {
        let inputs = (0..<H).map { i in (0..<L).map { Double(U[$0 * H + i]) } }
        var kernels = kernel(length: L)
        if case .siso = projection {
            // Diagonal kernel: drop the zero cross terms so each output convolves one input.
            kernels = (0..<H).map { o in (0..<H).map { $0 == o ? kernels[o][o] : [] } }
        }
        let out = causalConvolution(kernels: kernels, inputs: inputs, length: L)
        var Y = [Float](repeating: 0, count: L * H)
        for o in 0..<H { for t in 0..<L { Y[t * H + o] = Float(out[o][t] + Double(d[o]) * inputs[o][t]) } }
        return Y
    }

    // MARK: inspection

    /// The engine-layout weights (read-only views), for export and for the C reference benchmarks:
    /// Λ̄ (2P) [Re; Im], B (mimo (H, 2P) · siso (2P)), C (mimo (2P, H) · siso (2P)), D (H).
    public var weights: (lambda: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafePointer<Float>, d: UnsafePointer<Float>) {
        (UnsafePointer(lambda), UnsafePointer(bw), UnsafePointer(cw), UnsafePointer(d))
    }

    /// |Λ̄_p| for every lane.
    public var eigenvalueMagnitudes: [Double] {
        (0..<P).map { Double.sqrt(Double(lambda[$0]) * Double(lambda[$0]) + Double(lambda[P + $0]) * Double(lambda[P + $0])) }
    }

    /// Whether every engine weight is a finite Float (finite parameters can still overflow when
    /// discretized, e.g. Δ = exp(1000)).
    public var weightsAreFinite: Bool {
        let (nb, nc) = projection == .mimo ? (H * 2 * P, 2 * P * H) : (2 * P, 2 * P)
        func finite(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Bool {
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
