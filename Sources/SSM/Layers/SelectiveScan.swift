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
    @usableFromInline let A: UnsafeMutablePointer<Scalar>          // (D, N), negative
    @usableFromInline let skip: UnsafeMutablePointer<Scalar>       // (D)
    @usableFromInline let deltaBias: UnsafeMutablePointer<Scalar>  // (D), zeros when absent

    public init(A: [Scalar], D skip: [Scalar], deltaBias: [Scalar]?, softplus: Bool, arena: Arena) {
        self.D = skip.count; self.N = A.count / max(skip.count, 1); self.softplus = softplus
        self.A = arena.copy(A); self.skip = arena.copy(skip)
        self.deltaBias = deltaBias.map(arena.copy) ?? arena.floats(skip.count)
    }

    public var stateCount: Int { D * N }
    /// Per-sample scratch: Δ (D), Ā (D·N), B̄u (D·N).
    public var scratchCount: Int { D + 2 * D * N }
    /// Block scratch for L samples: Δ (L, D), Ā and B̄u (L, D·N).
    public func blockScratchCount(_ L: Int) -> Int { L * D + 2 * L * D * N }

    /// Δ ← softplus(δ + bias) or δ + bias, for `rows` rows of D (δ rows `D` apart).
    @inline(__always)
    func deltas(_ delta: UnsafePointer<Scalar>, _ dt: UnsafeMutablePointer<Scalar>, rows: Int) {
        for k in 0..<rows {
            let src = delta + k * D, dst = dt + k * D
            for d in 0..<D { dst[d] = src[d] + deltaBias[d] }
        }
        if softplus { VectorMath.softplus(dt, rows * D) }
    }

    /// Channel d of one sample: Ā = exp(Δ_d A_dn) and B̄u = Δ_d B_n u_d into a, b (N).
    @inline(__always)
    func discretize(channel d: Int, _ dtd: Scalar, _ ud: Scalar, _ B: UnsafePointer<Scalar>,
                    _ a: UnsafeMutablePointer<Scalar>, _ b: UnsafeMutablePointer<Scalar>) {
        let row = A + d * N, s = dtd * ud
        var n = 0
        while n + 8 <= N {
            store8(exp8(V8(repeating: dtd) * load8(row + n)), a + n)
            store8(V8(repeating: s) * load8(B + n), b + n)
            n += 8
        }
        while n < N { a[n] = Scalar.exp(dtd * row[n]); b[n] = s * B[n]; n += 1 }
    }

    /// Ā and B̄u for one sample, all channels, into a, b (D·N).
    @inline(__always)
    func discretize(_ dt: UnsafePointer<Scalar>, _ u: UnsafePointer<Scalar>, _ B: UnsafePointer<Scalar>,
                    _ a: UnsafeMutablePointer<Scalar>, _ b: UnsafeMutablePointer<Scalar>) {
        for d in 0..<D { discretize(channel: d, dt[d], u[d], B, a + d * N, b + d * N) }
    }

    /// C · h_d + D_d u_d for one channel's state h_d (N).
    @inline(__always)
    func readout(channel d: Int, _ h: UnsafePointer<Scalar>, _ C: UnsafePointer<Scalar>, _ ud: Scalar) -> Scalar {
        var acc = V8(), n = 0
        while n + 8 <= N { acc = acc.addingProduct(load8(C + n), load8(h + n)); n += 8 }
        var s = acc.sum()
        while n < N { s += C[n] * h[n]; n += 1 }
        return s + skip[d] * ud
    }

    /// y ·= silu(z) = z·σ(z) over D channels (8 at a time; the tail with the scalar exp).
    @inline(__always)
    func gate(_ y: UnsafeMutablePointer<Scalar>, _ z: UnsafePointer<Scalar>) {
        var d = 0
        while d + 8 <= D {
            let zv = load8(z + d)
            store8(load8(y + d) * (zv / (1 + exp8(-zv))), y + d)
            d += 8
        }
        while d < D { y[d] *= z[d] / (1 + Scalar.exp(-z[d])); d += 1 }
    }

    /// y_d = C · h_d + D_d u_d for all channels, then ·silu(z_d) when z is given.
    @inline(__always)
    func readout(_ h: UnsafePointer<Scalar>, _ C: UnsafePointer<Scalar>, _ u: UnsafePointer<Scalar>,
                 _ z: UnsafePointer<Scalar>?, _ y: UnsafeMutablePointer<Scalar>) {
        for d in 0..<D { y[d] = readout(channel: d, h + d * N, C, u[d]) }
        if let z { gate(y, z) }
    }

    /// Channels per group in `step`: a group's Ā and B̄u (group·N floats each) are still in L1 when
    /// the scan core's step and the readout use them, and the group's exps, state lanes and
    /// read-outs are independent of each other (instruction-level parallelism that one channel at a
    /// time lacks at small N).
    @usableFromInline static let stepGroup = 8

    /// One sample. u, δ, z, y: (D); B, C: (N); state (D·N); scratch (`scratchCount`; Δ, Ā and B̄u
    /// of the sample on return): the channels in groups of `stepGroup`, each group discretized,
    /// stepped on the scan core and read out before the next.
    public func step(u: UnsafePointer<Scalar>, delta: UnsafePointer<Scalar>, B: UnsafePointer<Scalar>,
                     C: UnsafePointer<Scalar>, z: UnsafePointer<Scalar>?, y: UnsafeMutablePointer<Scalar>,
                     state: UnsafeMutablePointer<Scalar>, scratch: UnsafeMutablePointer<Scalar>) {
        let G = SelectiveScan.stepGroup
        let dt = scratch, a = scratch + D, b = a + D * N
        deltas(delta, dt, rows: 1)
        var g = 0
        while g < D {
            let count = min(G, D - g), lane = g * N
            for d in g..<(g + count) { discretize(channel: d, dt[d], u[d], B, a + d * N, b + d * N) }
            Scan<RealLanes>.step(a: a + lane, h: state + lane, b: b + lane, lanes: count * N)
            for d in g..<(g + count) { y[d] = readout(channel: d, state + d * N, C, u[d]) }
            g += G
        }
        if let z { gate(y, z) }
    }

    /// L samples: the time-varying scan core `scan` over Ā (L, D·N), B̄u (L, D·N). Rows of Bs/Cs
    /// are `bcStride` apart (N when contiguous), rows of Z `zStride` apart (D when contiguous).
    public func forward(U: UnsafePointer<Scalar>, Delta: UnsafePointer<Scalar>, Bs: UnsafePointer<Scalar>,
                        Cs: UnsafePointer<Scalar>, bcStride: Int? = nil, Z: UnsafePointer<Scalar>?, zStride: Int? = nil,
                        Y: UnsafeMutablePointer<Scalar>, length L: Int, state: UnsafeMutablePointer<Scalar>,
                        scratch: UnsafeMutablePointer<Scalar>, parallel: Bool = false) {
        let bc = bcStride ?? N, zs = zStride ?? D
        let P = D * N
        let dt = scratch, a = scratch + L * D, x = scratch + L * D + L * P
        deltas(Delta, dt, rows: L)
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
