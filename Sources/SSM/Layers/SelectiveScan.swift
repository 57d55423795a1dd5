/// S6, the selective scan (Gu & Dao 2023, "Mamba", Alg. 2; upstream `selective_scan_ref` and
/// `selective_state_update_ref`): for channel d and state n,
///
///     Δ_k = softplus(δ_k + bias)   (or δ_k without `softplus`)
///     Ā_k = exp(Δ_k A)             (exact)        B̄_k = Δ_k B_k    (Euler, as upstream)
///     h_k = Ā_k ⊙ h_{k-1} + B̄_k u_k              y_k = C_k · h_k + D u_k,   y_k ·= silu(z_k)
///
/// a time-varying real diagonal recurrence on the scan core. Shapes: u, δ, z, y (D); B_k, C_k (N);
/// A (D, N); state (D·N) real lanes, lane p = d·N + n. Blocks: U, Δ, Z, Y (L, D); Bs, Cs (L, N).
public struct SelectiveScan: @unchecked Sendable {  // read-only weights after init
    public let D: Int, N: Int
    public let softplus: Bool
    @usableFromInline let A: UnsafeMutablePointer<Float>          // (D, N), negative
    @usableFromInline let skip: UnsafeMutablePointer<Float>       // (D)
    @usableFromInline let deltaBias: UnsafeMutablePointer<Float>  // (D), zeros when absent

    public init(A: [Float], D skip: [Float], deltaBias: [Float]?, softplus: Bool, arena: Arena) {
        self.D = skip.count; self.N = A.count / max(skip.count, 1); self.softplus = softplus
        self.A = arena.copy(A); self.skip = arena.copy(skip)
        self.deltaBias = deltaBias.map(arena.copy) ?? arena.floats(skip.count)
    }

    public var stateCount: Int { D * N }
    /// Per-sample scratch: Δ (D), Ā (D·N), B̄u (D·N).
    public var scratchCount: Int { D + 2 * D * N }
    /// Block scratch for L samples: Δ (L, D), Ā and B̄u (L, D·N).
    public func blockScratchCount(_ L: Int) -> Int { L * D + 2 * L * D * N }

    /// Δ ← softplus(δ + bias) or δ + bias, for n values (in place on `dt`).
    @inline(__always)
    func deltas(_ delta: UnsafePointer<Float>, _ dt: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dt[i] = delta[i] + deltaBias[i % D] }
        if softplus { VectorMath.softplus(dt, n) }
    }

    /// Ā = exp(Δ_d A_dn) and B̄u = Δ_d B_n u_d for one sample, into a, b (D·N).
    @inline(__always)
    func discretize(_ dt: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                    _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>) {
        for d in 0..<D {
            let row = d * N, dtd = dt[d], s = dtd * u[d]
            var n = 0
            while n + 8 <= N {
                store8(exp8(V8(repeating: dtd) * load8(A + row + n)), a + row + n)
                store8(V8(repeating: s) * load8(B + n), b + row + n)
                n += 8
            }
            while n < N { a[row + n] = Float.exp(dtd * A[row + n]); b[row + n] = s * B[n]; n += 1 }
        }
    }

    /// y_d = C · h_d + D_d u_d, then ·silu(z_d) when z is given.
    @inline(__always)
    func readout(_ h: UnsafePointer<Float>, _ C: UnsafePointer<Float>, _ u: UnsafePointer<Float>,
                 _ z: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>) {
        for d in 0..<D {
            let row = h + d * N
            var acc = V8(), n = 0
            while n + 8 <= N { acc = acc.addingProduct(load8(C + n), load8(row + n)); n += 8 }
            var s = acc.sum()
            while n < N { s += C[n] * row[n]; n += 1 }
            y[d] = s + skip[d] * u[d]
        }
        if let z {
            for d in 0..<D { y[d] *= z[d] / (1 + Float.exp(-z[d])) }
        }
    }

    /// One sample. u, δ, z, y: (D); B, C: (N); state (D·N); scratch (`scratchCount`).
    public func step(u: UnsafePointer<Float>, delta: UnsafePointer<Float>, B: UnsafePointer<Float>,
                     C: UnsafePointer<Float>, z: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
                     state: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let P = D * N
        let dt = scratch, a = scratch + D, b = scratch + D + P
        deltas(delta, dt, D)
        discretize(dt, u, B, a, b)
        Scan<RealLanes>.step(a: a, h: state, b: b, lanes: P)
        readout(state, C, u, z, y)
    }

    /// L samples: the time-varying scan core `scan` over Ā (L, D·N), B̄u (L, D·N). Rows of Bs/Cs
    /// are `bcStride` apart (N when contiguous), rows of Z `zStride` apart (D when contiguous).
    public func forward(U: UnsafePointer<Float>, Delta: UnsafePointer<Float>, Bs: UnsafePointer<Float>,
                        Cs: UnsafePointer<Float>, bcStride: Int? = nil, Z: UnsafePointer<Float>?, zStride: Int? = nil,
                        Y: UnsafeMutablePointer<Float>, length L: Int, state: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>, parallel: Bool = false) {
        let bc = bcStride ?? N, zs = zStride ?? D
        let P = D * N
        let dt = scratch, a = scratch + L * D, x = scratch + L * D + L * P
        deltas(Delta, dt, L * D)
        for k in 0..<L { discretize(dt + k * D, U + k * D, Bs + k * bc, a + k * P, x + k * P) }
        if parallel {
            Scan<RealLanes>.parallelScan(a: a, aStride: P, h: state, x: x, length: L, lanes: P)
        } else {
            Scan<RealLanes>.scan(a: a, aStride: P, h: state, x: x, length: L, lanes: P)
        }
        for k in 0..<L { readout(x + k * P, Cs + k * bc, U + k * D, Z.map { $0 + k * zs }, Y + k * D) }
    }

    public var flopsPerSample: Int { D * N * 8 + D * 4 }
}
