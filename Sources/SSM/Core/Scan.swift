// The scan core: the one recurrence every family runs on.
//
//     h_k = a_k ⊙ h_{k-1} + b_k                      (forward,  k = 0 … L-1)
//     g_k = conj(a_{k+1}) ⊙ g_{k+1} + dh_k            (adjoint,  k = L-1 … 0)
//     da  = Σ_k g_k ⊙ conj(h_{k-1})                    (coefficient gradient, time-invariant a)
//
// Gradients of the real loss with respect to a complex lane z are stored as ∂/∂Re z + i·∂/∂Im z,
// in the same split layout as z: then the adjoint of z ↦ a·z is g ↦ conj(a)·g (the recurrence above).
//
// It knows nothing of S4 or Mamba. Glossary of shapes (used across the package):
//   B batch · L length · H channels (d_model) · P state lanes · E expanded width · W lane width
// A lane is one real number (RealLanes, W = 1) or one complex number stored split (ComplexLanes,
// W = 2): a vector of P complex lanes is 2P floats laid out [Re(0..<P); Im(0..<P)], so that every
// SIMD register holds independent lanes and no shuffles are needed.
//
// Coefficients `a` are time-invariant (one vector, `aStride = 0`) or time-varying (one vector per
// step, `aStride = W·P`). Block buffers are row-major (L, W·P): row k is b_k on entry, h_k on exit.
// Everything works in place on caller-owned memory: nothing here allocates (except parallelScan's
// per-chunk carries, which are O(threads·W·P) and only used offline).

#if canImport(Dispatch)
import Dispatch
#endif

/// Arithmetic of one kind of lane. The scan algorithms below are written once over this.
public protocol ScanLanes {
    /// Floats per lane: 1 (real) or 2 (complex, split halves).
    static var width: Int { get }
    /// h ← a ⊙ h + b over P lanes.
    static func step(_ a: UnsafePointer<Scalar>, _ h: UnsafeMutablePointer<Scalar>, _ b: UnsafePointer<Scalar>, _ P: Int)
    /// g ← conj(a) ⊙ g over P lanes (the adjoint's carry).
    static func conjugateMultiply(_ a: UnsafePointer<Scalar>, _ g: UnsafeMutablePointer<Scalar>, _ P: Int)
    /// p ← a ⊙ p over P lanes.
    static func multiply(_ a: UnsafePointer<Scalar>, _ p: UnsafeMutablePointer<Scalar>, _ P: Int)
    /// acc ← acc + g ⊙ conj(h) over P lanes (the coefficient gradient's term).
    static func accumulateConjugateProduct(_ g: UnsafePointer<Scalar>, _ h: UnsafePointer<Scalar>,
                                           _ acc: UnsafeMutablePointer<Scalar>, _ P: Int)
}


@inline(__always) @usableFromInline
func load8(_ p: UnsafePointer<Scalar>) -> V8 {
    UnsafeRawPointer(p).loadUnaligned(as: V8.self)
}
@inline(__always) @usableFromInline
func store8(_ v: V8, _ p: UnsafeMutablePointer<Scalar>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
}

/// Real diagonal lanes (S4D-Real, S6, RG-LRU): h ← a·h + b.
public enum RealLanes: ScanLanes {
    public static var width: Int { 1 }

    @inlinable @inline(__always)
    public static func step(_ a: UnsafePointer<Scalar>, _ h: UnsafeMutablePointer<Scalar>, _ b: UnsafePointer<Scalar>, _ P: Int) {
        var i = 0
        while i + 8 <= P {
            store8(load8(b + i).addingProduct(load8(a + i), load8(h + i)), h + i)
            i += 8
        }
        while i < P { h[i] = a[i] * h[i] + b[i]; i += 1 }
    }

    @inlinable @inline(__always)
    public static func conjugateMultiply(_ a: UnsafePointer<Scalar>, _ g: UnsafeMutablePointer<Scalar>, _ P: Int) {
        multiply(a, g, P)  // conj is the identity on reals
    }

    @inlinable @inline(__always)
    public static func multiply(_ a: UnsafePointer<Scalar>, _ p: UnsafeMutablePointer<Scalar>, _ P: Int) {
        for i in 0..<P { p[i] *= a[i] }
    }

    @inlinable @inline(__always)
    public static func accumulateConjugateProduct(_ g: UnsafePointer<Scalar>, _ h: UnsafePointer<Scalar>,
                                                  _ acc: UnsafeMutablePointer<Scalar>, _ P: Int) {
        for i in 0..<P { acc[i] += g[i] * h[i] }
    }
}

/// Complex diagonal lanes (S4, S4D, S5, LRU), split storage [Re; Im]:
/// Re h ← Re a·Re h − Im a·Im h + Re b,  Im h ← Re a·Im h + Im a·Re h + Im b.
public enum ComplexLanes: ScanLanes {
    public static var width: Int { 2 }

    @inlinable @inline(__always)
    public static func step(_ a: UnsafePointer<Scalar>, _ h: UnsafeMutablePointer<Scalar>, _ b: UnsafePointer<Scalar>, _ P: Int) {
        let ai = a + P, hi = h + P, bi = b + P
        var i = 0
        while i + 8 <= P {
            let ar = load8(a + i), aim = load8(ai + i), hr = load8(h + i), him = load8(hi + i)
            let nr = load8(b + i).addingProduct(ar, hr).addingProduct(-aim, him)
            let ni = load8(bi + i).addingProduct(ar, him).addingProduct(aim, hr)
            store8(nr, h + i); store8(ni, hi + i)
            i += 8
        }
        while i < P {
            let hr = h[i], him = hi[i]
            h[i] = a[i] * hr - ai[i] * him + b[i]
            hi[i] = a[i] * him + ai[i] * hr + bi[i]
            i += 1
        }
    }

    @inlinable @inline(__always)
    public static func conjugateMultiply(_ a: UnsafePointer<Scalar>, _ g: UnsafeMutablePointer<Scalar>, _ P: Int) {
        let ai = a + P, gi = g + P
        var i = 0
        while i + 8 <= P {
            let ar = load8(a + i), aj = load8(ai + i), gr = load8(g + i), gj = load8(gi + i)
            store8((ar * gr).addingProduct(aj, gj), g + i)
            store8((ar * gj).addingProduct(-aj, gr), gi + i)
            i += 8
        }
        while i < P {
            let gr = g[i], gim = gi[i]
            g[i] = a[i] * gr + ai[i] * gim
            gi[i] = a[i] * gim - ai[i] * gr
            i += 1
        }
    }

    @inlinable @inline(__always)
    public static func multiply(_ a: UnsafePointer<Scalar>, _ p: UnsafeMutablePointer<Scalar>, _ P: Int) {
        let ai = a + P, pi = p + P
        for i in 0..<P {
            let pr = p[i], pim = pi[i]
            p[i] = a[i] * pr - ai[i] * pim
            pi[i] = a[i] * pim + ai[i] * pr
        }
    }

    /// Re acc += Re g·Re h + Im g·Im h,  Im acc += Im g·Re h − Re g·Im h.
    @inlinable @inline(__always)
    public static func accumulateConjugateProduct(_ g: UnsafePointer<Scalar>, _ h: UnsafePointer<Scalar>,
                                                  _ acc: UnsafeMutablePointer<Scalar>, _ P: Int) {
        let gi = g + P, hi = h + P, ai = acc + P
        var i = 0
        while i + 8 <= P {
            let gr = load8(g + i), gj = load8(gi + i), hr = load8(h + i), hj = load8(hi + i)
            store8(load8(acc + i).addingProduct(gr, hr).addingProduct(gj, hj), acc + i)
            store8(load8(ai + i).addingProduct(gj, hr).addingProduct(-gr, hj), ai + i)
            i += 8
        }
        while i < P {
            acc[i] += g[i] * h[i] + gi[i] * hi[i]
            ai[i] += gi[i] * h[i] - g[i] * hi[i]
            i += 1
        }
    }
}

/// The four scan entry points, written once for any lane kind.
public enum Scan<Lanes: ScanLanes> {
    /// One sample (the streaming path): h ← a ⊙ h + b. `a`, `h`, `b`: (W·P).
    @inlinable @inline(__always)
    public static func step(a: UnsafePointer<Scalar>, h: UnsafeMutablePointer<Scalar>, b: UnsafePointer<Scalar>, lanes P: Int) {
        Lanes.step(a, h, b, P)
    }

    /// A block of L samples, sequentially: exactly the arithmetic of L calls to `step`.
    /// - Parameters:
    ///   - a: (W·P) if `aStride == 0`, else (L, W·P) time-varying coefficients.
    ///   - h: (W·P) the carried state, updated to h_{L-1}.
    ///   - x: (L, W·P) b_k on entry, h_k on exit.
    @inlinable
    public static func scan(a: UnsafePointer<Scalar>, aStride: Int, h: UnsafeMutablePointer<Scalar>,
                            x: UnsafeMutablePointer<Scalar>, length L: Int, lanes P: Int) {
        let w = Lanes.width * P
        for k in 0..<L {
            let row = x + k * w
            Lanes.step(a + k * aStride, h, row, P)
            row.update(from: h, count: w)
        }
    }

    /// The adjoint (reverse) recurrence used by training: g_k = conj(a_{k+1}) ⊙ g_{k+1} + dh_k.
    /// - Parameters:
    ///   - a: coefficients as in `scan` (a_k at row k).
    ///   - g: (W·P) on entry conj(a_L) ⊙ g_L carried in from the next block (zero for the last block);
    ///        on exit conj(a_0) ⊙ g_0, ready to carry into the previous block.
    ///   - dh: (L, W·P) dL/dh_k on entry, g_k on exit.
    @inlinable
    public static func adjointScan(a: UnsafePointer<Scalar>, aStride: Int, g: UnsafeMutablePointer<Scalar>,
                                   dh: UnsafeMutablePointer<Scalar>, length L: Int, lanes P: Int) {
        adjoint(a: a, aStride: aStride, g: g, dh: dh, length: L, lanes: P, states: nil, initial: nil, coefficientGradient: nil)
    }

    /// `adjointScan` with the coefficient gradient of a time-invariant `a` in the same pass (training's
    /// backward: G and the states are read once): da += Σ_k g_k ⊙ conj(h_{k-1}), h_{-1} = `h0`.
    /// - Parameters:
    ///   - h: (L, W·P) the forward states h_k (`scan`'s output, kept by the training tape).
    ///   - h0: (W·P) the state the block started from.
    ///   - da: (W·P) accumulated into.
    @inlinable
    public static func adjointScan(a: UnsafePointer<Scalar>, aStride: Int, g: UnsafeMutablePointer<Scalar>,
                                   dh: UnsafeMutablePointer<Scalar>, length L: Int, lanes P: Int,
                                   states h: UnsafePointer<Scalar>, initial h0: UnsafePointer<Scalar>,
                                   coefficientGradient da: UnsafeMutablePointer<Scalar>) {
        adjoint(a: a, aStride: aStride, g: g, dh: dh, length: L, lanes: P, states: h, initial: h0, coefficientGradient: da)
    }

    @inlinable @inline(__always)
    static func adjoint(a: UnsafePointer<Scalar>, aStride: Int, g: UnsafeMutablePointer<Scalar>,
                        dh: UnsafeMutablePointer<Scalar>, length L: Int, lanes P: Int,
                        states h: UnsafePointer<Scalar>?, initial h0: UnsafePointer<Scalar>?,
                        coefficientGradient da: UnsafeMutablePointer<Scalar>?) {
        let w = Lanes.width * P
        var k = L - 1
        while k >= 0 {
            let row = dh + k * w
            addInPlace(g, row, w)                             // g_k = carry + dh_k
            row.update(from: g, count: w)
            if let da, let h, let h0 { Lanes.accumulateConjugateProduct(UnsafePointer(g), k > 0 ? h + (k - 1) * w : h0, da, P) }
            Lanes.conjugateMultiply(a + k * aStride, g, P)    // carry to k-1: conj(a_k) ⊙ g_k
            k -= 1
        }
    }

    /// The associative scan, chunked over time: each of T chunks is scanned from a zero state in
    /// parallel, the chunk end states are combined serially (h_end(c) += Π_c a ⊙ h_end(c-1)), and each
    /// chunk then adds the decayed carry of the chunk before it, in parallel. Same result as `scan`
    /// to round-off; it pays off for long offline blocks on several cores.
    public static func parallelScan(a: UnsafePointer<Scalar>, aStride: Int, h: UnsafeMutablePointer<Scalar>,
                                    x: UnsafeMutablePointer<Scalar>, length L: Int, lanes P: Int,
                                    threads: Int = Scan.defaultThreads) {
        let w = Lanes.width * P
        let T = max(1, min(threads, L / 64))
        if T == 1 { scan(a: a, aStride: aStride, h: h, x: x, length: L, lanes: P); return }
        let bounds = (0...T).map { $0 * L / T }
        // Per chunk: the product of its coefficients (W·P) — the combine needs it.
        let products = UnsafeMutablePointer<Scalar>.allocate(capacity: T * w)
        let zero = UnsafeMutablePointer<Scalar>.allocate(capacity: w)
        defer { products.deallocate(); zero.deallocate() }
        zero.initialize(repeating: 0, count: w)
        let hIn = UnsafeMutablePointer<Scalar>.allocate(capacity: w)
        defer { hIn.deallocate() }
        hIn.initialize(from: h, count: w)
        let hInC = UnsafePointer(hIn), zeroC = UnsafePointer(zero)
        // Phase 1: local scans (chunk 0 starts from the real state) and chunk products.
        concurrentPerform(T) { c in
            let lo = bounds[c], hi = bounds[c + 1]
            let local = UnsafeMutablePointer<Scalar>.allocate(capacity: w)
            defer { local.deallocate() }
            local.initialize(from: c == 0 ? hInC : zeroC, count: w)
            scan(a: a + lo * aStride, aStride: aStride, h: local, x: x + lo * w, length: hi - lo, lanes: P)
            let prod = products + c * w
            prod.initialize(repeating: 0, count: w)
            prod.initialize(repeating: 1, count: P)  // 1 + 0i (or 1 for real lanes)
            for k in lo..<hi { Lanes.multiply(a + k * aStride, prod, P) }
        }
        // Phase 2 (serial, T steps): true chunk ends, end(c) = Π_c a ⊙ end(c-1) + local_end(c).
        let ends = UnsafeMutablePointer<Scalar>.allocate(capacity: T * w)
        defer { ends.deallocate() }
        ends.initialize(from: x + (bounds[1] - 1) * w, count: w)
        for c in 1..<T {
            let e = ends + c * w
            e.initialize(from: ends + (c - 1) * w, count: w)
            Lanes.step(products + c * w, e, x + (bounds[c + 1] - 1) * w, P)
        }
        // Phase 3: chunk c ≥ 1 adds the previous chunk's end, decayed step by step (carry ← a_k ⊙ carry).
        let endsC = UnsafePointer(ends)
        concurrentPerform(T - 1) { j in
            let c = j + 1
            let carry = UnsafeMutablePointer<Scalar>.allocate(capacity: w)
            defer { carry.deallocate() }
            carry.initialize(from: endsC + (c - 1) * w, count: w)
            for k in bounds[c]..<bounds[c + 1] {
                Lanes.multiply(a + k * aStride, carry, P)
                let row = x + k * w
                for i in 0..<w { row[i] += carry[i] }
            }
        }
        h.update(from: x + (L - 1) * w, count: w)
    }

    public static var defaultThreads: Int { systemCoreCount() }
}

/// x ← x + y over n floats.
@inline(__always) @usableFromInline
func addInPlace(_ x: UnsafeMutablePointer<Scalar>, _ y: UnsafePointer<Scalar>, _ n: Int) {
    var i = 0
    while i + 8 <= n { store8(load8(x + i) + load8(y + i), x + i); i += 8 }
    while i < n { x[i] += y[i]; i += 1 }
}

/// Runs body(0..<n) on all cores. The bodies write disjoint parts of caller-owned buffers, which
/// the type system cannot see through raw pointers; hence the unchecked box.
public func concurrentPerform(_ n: Int, _ body: (Int) -> Void) {
    if n <= 0 { return }
    #if canImport(Dispatch)
    struct Box: @unchecked Sendable { let f: (Int) -> Void }
    withoutActuallyEscaping(body) { f in
        let box = Box(f: f)
        DispatchQueue.concurrentPerform(iterations: n) { box.f($0) }
    }
    #else
    for i in 0..<n { body(i) }
    #endif
}

public func systemCoreCount() -> Int {
    #if canImport(Glibc)
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
    return 1
    #endif
}

#if canImport(Glibc)
import Glibc
#endif

extension Scan where Lanes == ComplexLanes {
    /// One sample with the input projection fused in (MIMO layers): h ← a ⊙ h + Wᵀu, where
    /// W (R, 2P) holds row r = [Re b_r; Im b_r]. While W fits in L1 each 32-lane tile of h stays in
    /// eight registers (4 Re + 4 Im) from a ⊙ h through all R rows, so h is loaded and stored once;
    /// larger W streams row-wise into `scratch` (2P) and then takes the plain `step`.
    @inlinable
    public static func step(a: UnsafePointer<Scalar>, h: UnsafeMutablePointer<Scalar>, input u: UnsafePointer<Scalar>,
                            rows R: Int, weights W: UnsafePointer<Scalar>, lanes P: Int,
                            scratch: UnsafeMutablePointer<Scalar>) {
        let n = 2 * P
        if R * n * 4 > vecMatTileLimitBytes || P % 8 != 0 {
            vecMat(u, rows: R, W, columns: n, scratch, accumulate: false)
            ComplexLanes.step(a, h, UnsafePointer(scratch), P)
            return
        }
        let ai = a + P, hi = h + P
        var p = 0
        while p + 32 <= P {
            // a ⊙ h for 32 lanes.
            var r0 = V8(), r1 = V8(), r2 = V8(), r3 = V8(), i0 = V8(), i1 = V8(), i2 = V8(), i3 = V8()
            do {
                let ar0 = load8(a + p), ar1 = load8(a + p + 8), ar2 = load8(a + p + 16), ar3 = load8(a + p + 24)
                let aj0 = load8(ai + p), aj1 = load8(ai + p + 8), aj2 = load8(ai + p + 16), aj3 = load8(ai + p + 24)
                let hr0 = load8(h + p), hr1 = load8(h + p + 8), hr2 = load8(h + p + 16), hr3 = load8(h + p + 24)
                let hj0 = load8(hi + p), hj1 = load8(hi + p + 8), hj2 = load8(hi + p + 16), hj3 = load8(hi + p + 24)
                r0 = (ar0 * hr0).addingProduct(-aj0, hj0); i0 = (ar0 * hj0).addingProduct(aj0, hr0)
                r1 = (ar1 * hr1).addingProduct(-aj1, hj1); i1 = (ar1 * hj1).addingProduct(aj1, hr1)
                r2 = (ar2 * hr2).addingProduct(-aj2, hj2); i2 = (ar2 * hj2).addingProduct(aj2, hr2)
                r3 = (ar3 * hr3).addingProduct(-aj3, hj3); i3 = (ar3 * hj3).addingProduct(aj3, hr3)
            }
            // + Σ_r u_r · W[r, lanes]
            var w = W + p
            for r in 0..<R {
                let s = V8(repeating: u[r])
                r0 = r0.addingProduct(s, load8(w)); r1 = r1.addingProduct(s, load8(w + 8))
                r2 = r2.addingProduct(s, load8(w + 16)); r3 = r3.addingProduct(s, load8(w + 24))
                i0 = i0.addingProduct(s, load8(w + P)); i1 = i1.addingProduct(s, load8(w + P + 8))
                i2 = i2.addingProduct(s, load8(w + P + 16)); i3 = i3.addingProduct(s, load8(w + P + 24))
                w += n
            }
            store8(r0, h + p); store8(r1, h + p + 8); store8(r2, h + p + 16); store8(r3, h + p + 24)
            store8(i0, hi + p); store8(i1, hi + p + 8); store8(i2, hi + p + 16); store8(i3, hi + p + 24)
            p += 32
        }
        while p < P {  // 8-lane tiles for the rest (P % 8 == 0)
            let ar = load8(a + p), aj = load8(ai + p), hr = load8(h + p), hj = load8(hi + p)
            var re = (ar * hr).addingProduct(-aj, hj), im = (ar * hj).addingProduct(aj, hr)
            var w = W + p
            for r in 0..<R {
                let s = V8(repeating: u[r])
                re = re.addingProduct(s, load8(w)); im = im.addingProduct(s, load8(w + P))
                w += n
            }
            store8(re, h + p); store8(im, hi + p)
            p += 8
        }
    }
}

extension Scan where Lanes == ComplexLanes {
    /// One sample of H independent SISO systems of n lanes each (S4D), projections fused in:
    ///     h_p ← a_p ⊙ h_p + b_p·u_g,   y_g = d_g·u_g + Σ_{p ∈ g} (c_p · h_p)    (g = p / n)
    /// with `b` (2P) = [Re b; Im b] and `c` (2P) = [Re-part weights; Im-part weights] so that the
    /// output is Σ c_re·Re h + c_im·Im h. One pass over the lanes, SIMD across each group's lanes
    /// (groups of 1, 2 or 4 lanes: each register spans 8 / n groups).
    /// `previous`, when given, is the state to step from (h is then written, not read): training
    /// steps from one row of its tape into the next.
    @inlinable
    public static func step(a: UnsafePointer<Scalar>, h: UnsafeMutablePointer<Scalar>, input u: UnsafePointer<Scalar>,
                            groups H: Int, lanesPerGroup n: Int, b: UnsafePointer<Scalar>, c: UnsafePointer<Scalar>,
                            d: UnsafePointer<Scalar>, output y: UnsafeMutablePointer<Scalar>, lanes P: Int,
                            previous: UnsafePointer<Scalar>? = nil) {
        let ai = a + P, hi = h + P, bi = b + P, ci = c + P
        let h0 = previous ?? UnsafePointer(h), h0i = h0 + P
        // Eight lanes from p: the new state, and its output terms c·h per lane.
        @inline(__always) func lanes8(_ p: Int, _ us: V8) -> V8 {
            var hr = load8(h0 + p), hj = load8(h0i + p)
            let t = sisoUpdate(us, load8(a + p), load8(ai + p), load8(b + p), load8(bi + p), load8(c + p), load8(ci + p), &hr, &hj)
            store8(hr, h + p); store8(hj, hi + p)
            return t
        }
        @inline(__always) func lane1(_ p: Int, _ ug: Scalar) -> Scalar {
            var hr = h0[p], hj = h0i[p]
            let t = sisoUpdate(ug, a[p], ai[p], b[p], bi[p], c[p], ci[p], &hr, &hj)
            h[p] = hr; hi[p] = hj
            return t
        }
        var q0 = 0
        if n < 8 && 8 % n == 0 {
            var p = 0
            while p + 8 <= P {
                let q = p / n, terms = lanes8(p, spread8(u + q, n))
                forGroupSums(terms, n) { j, t in y[q + j] = d[q + j] * u[q + j] + t }
                p += 8
            }
            q0 = p / n
        }
        for g in q0..<H {
            let ug = u[g]
            let us = V8(repeating: ug)
            var acc = V8()
            var p = g * n
            let end = p + n
            while p + 8 <= end { acc += lanes8(p, us); p += 8 }
            var s = d[g] * ug + treeSum(acc)
            while p < end { s += lane1(p, ug); p += 1 }
            y[g] = s
        }
    }

    /// L samples of the same H SISO systems (S4D's block path), blocked over time: sixteen lanes at
    /// a time stay in registers (state and coefficients) through all L samples, so the state is
    /// loaded and stored once per block instead of once per sample. Exactly the arithmetic of L
    /// `step` calls (the same bits). Groups of 1, 2 or 4 lanes share a register as in `step`, groups
    /// of 8 run two at a time, and a group of a larger multiple of 8 lanes sums its registers' terms
    /// per sample in `scratch` (L·8 floats); any other group size takes L steps.
    /// Shapes: U, Y (L, H) · h (2P) carried in and out · scratch (L·8).
    @inlinable
    public static func scan(a: UnsafePointer<Scalar>, h: UnsafeMutablePointer<Scalar>, input U: UnsafePointer<Scalar>,
                            groups H: Int, lanesPerGroup n: Int, b: UnsafePointer<Scalar>, c: UnsafePointer<Scalar>,
                            d: UnsafePointer<Scalar>, output Y: UnsafeMutablePointer<Scalar>, length L: Int, lanes P: Int,
                            scratch S: UnsafeMutablePointer<Scalar>) {
        let packed = n < 8 && 8 % n == 0, wide = n % 8 == 0
        guard packed || wide, P >= 8 else {
            for k in 0..<L {
                step(a: a, h: h, input: U + k * H, groups: H, lanesPerGroup: n, b: b, c: c, d: d, output: Y + k * H, lanes: P)
            }
            return
        }
        let ai = a + P, hi = h + P, bi = b + P, ci = c + P
        // Eight lanes from p, and eight from p2 beside them when `pair` (two independent chains, so
        // that one register's update runs while the other's is still in flight), through the block:
        // `terms(k, c·h_k)` and `terms2` take each sample's output terms.
        @inline(__always) func lanes(_ p: Int, _ input: (Int) -> V8, _ terms: (Int, V8) -> Void,
                                     pair p2: Int, _ input2: (Int) -> V8, _ terms2: (Int, V8) -> Void, _ pair: Bool) {
            let ar = load8(a + p), aj = load8(ai + p), br = load8(b + p), bj = load8(bi + p), cr = load8(c + p), cj = load8(ci + p)
            var hr = load8(h + p), hj = load8(hi + p)
            if !pair {
                for k in 0..<L { terms(k, sisoUpdate(input(k), ar, aj, br, bj, cr, cj, &hr, &hj)) }
            } else {
                let ar2 = load8(a + p2), aj2 = load8(ai + p2), br2 = load8(b + p2), bj2 = load8(bi + p2)
                let cr2 = load8(c + p2), cj2 = load8(ci + p2)
                var hr2 = load8(h + p2), hj2 = load8(hi + p2)
                for k in 0..<L {
                    let t = sisoUpdate(input(k), ar, aj, br, bj, cr, cj, &hr, &hj)
                    let t2 = sisoUpdate(input2(k), ar2, aj2, br2, bj2, cr2, cj2, &hr2, &hj2)
                    terms(k, t); terms2(k, t2)
                }
                store8(hr2, h + p2); store8(hj2, hi + p2)
            }
            store8(hr, h + p); store8(hj, hi + p)
        }
        if n == 8 {
            // One register per group: two groups side by side, each sample's sum straight to Y.
            var g = 0
            while g < H {
                let g2 = g + 1, pair = g2 < H
                lanes(g * 8, { V8(repeating: U[$0 * H + g]) }, { k, t in Y[k * H + g] = d[g] * U[k * H + g] + treeSum(V8() + t) },
                      pair: g2 * 8, { V8(repeating: U[$0 * H + g2]) }, { k, t in Y[k * H + g2] = d[g2] * U[k * H + g2] + treeSum(V8() + t) },
                      pair)
                g += pair ? 2 : 1
            }
            return
        }
        if wide {
            for g in 0..<H {
                // The group's first register sets the sums, the others add to them in lane order
                // (closure literals, so that their contexts stay on the stack).
                var p = g * n
                lanes(p, { V8(repeating: U[$0 * H + g]) }, { store8(V8() + $1, S + 8 * $0) },
                      pair: p + 8, { V8(repeating: U[$0 * H + g]) }, { store8(load8(S + 8 * $0) + $1, S + 8 * $0) }, n >= 16)
                p += n >= 16 ? 16 : 8
                while p < g * n + n {
                    let pair = p + 16 <= g * n + n
                    lanes(p, { V8(repeating: U[$0 * H + g]) }, { store8(load8(S + 8 * $0) + $1, S + 8 * $0) },
                          pair: p + 8, { V8(repeating: U[$0 * H + g]) }, { store8(load8(S + 8 * $0) + $1, S + 8 * $0) }, pair)
                    p += pair ? 16 : 8
                }
                for k in 0..<L { Y[k * H + g] = d[g] * U[k * H + g] + treeSum(load8(S + 8 * k)) }
            }
            return
        }
        var p = 0
        while p + 8 <= P {
            let q = p / n, q2 = q + 8 / n, pair = p + 16 <= P
            lanes(p, { spread8(U + $0 * H + q, n) }, { k, t in
                forGroupSums(t, n) { j, s in Y[k * H + q + j] = d[q + j] * U[k * H + q + j] + s }
            }, pair: p + 8, { spread8(U + $0 * H + q2, n) }, { k, t in
                forGroupSums(t, n) { j, s in Y[k * H + q2 + j] = d[q2 + j] * U[k * H + q2 + j] + s }
            }, pair)
            p += pair ? 16 : 8
        }
        // The groups after the last full register: their lanes one by one.
        for g in (p / n)..<H {
            for k in 0..<L {
                let ug = U[k * H + g]
                var s = d[g] * ug + 0   // as `step`'s d·u + (empty register sum): +0, never −0
                for l in (g * n)..<(g * n + n) { s += sisoUpdate(ug, a[l], ai[l], b[l], bi[l], c[l], ci[l], &h[l], &hi[l]) }
                Y[k * H + g] = s
            }
        }
    }

    /// The adjoint of the fused step for one sample, run in reverse time (training's SISO backward):
    /// the gradients of one step, with the carry and its parameter gradients in one pass over the lanes.
    ///     g_p  = carry_p + c_p·dy_g                        (dL/dh_p: carried in, plus this sample's output)
    ///     dc_p += h_p·dy_g,   da_p += g_p ⊙ conj(h⁻_p),   db_p += g_p·u_g,   dd_g += dy_g·u_g
    ///     du_g = d_g·dy_g + Σ_{p ∈ g} (Re b_p·Re g_p + Im b_p·Im g_p)
    ///     carry_p ← conj(a_p) ⊙ g_p                        (g = p / n)
    /// Shapes: u, dy, du (H) · `carry`, h (this step's state h_k), `previous` (h_{k-1}), and the
    /// gradients da, db, dc: (2P) split · dd (H); du must not alias u or dy. The recurrence of
    /// `adjointScan` with the coefficient gradient (up to rounding: the SIMD lanes fuse the
    /// multiply-adds), fused with the SISO projections' pullbacks.
    @inlinable
    public static func adjointStep(a: UnsafePointer<Scalar>, carry gc: UnsafeMutablePointer<Scalar>,
                                   input u: UnsafePointer<Scalar>, outputGradient dy: UnsafePointer<Scalar>,
                                   inputGradient du: UnsafeMutablePointer<Scalar>,
                                   groups H: Int, lanesPerGroup n: Int, b: UnsafePointer<Scalar>, c: UnsafePointer<Scalar>,
                                   d: UnsafePointer<Scalar>, state h: UnsafePointer<Scalar>, previous hp: UnsafePointer<Scalar>,
                                   da: UnsafeMutablePointer<Scalar>, db: UnsafeMutablePointer<Scalar>,
                                   dc: UnsafeMutablePointer<Scalar>, dd: UnsafeMutablePointer<Scalar>, lanes P: Int) {
        let ai = a + P, gi = gc + P, bi = b + P, ci = c + P, hi = h + P, pi = hp + P
        let dai = da + P, dbi = db + P, dci = dc + P
        // Eight lanes from p: every gradient term, the new carry, and the du terms b·g per lane.
        @inline(__always) func lanes8(_ p: Int, _ us: V8, _ dys: V8) -> V8 {
            let gr = load8(gc + p).addingProduct(load8(c + p), dys), gj = load8(gi + p).addingProduct(load8(ci + p), dys)
            store8(load8(dc + p).addingProduct(load8(h + p), dys), dc + p)
            store8(load8(dci + p).addingProduct(load8(hi + p), dys), dci + p)
            let pr = load8(hp + p), pj = load8(pi + p)
            store8(load8(da + p).addingProduct(gr, pr).addingProduct(gj, pj), da + p)
            store8(load8(dai + p).addingProduct(gj, pr).addingProduct(-gr, pj), dai + p)
            store8(load8(db + p).addingProduct(gr, us), db + p)
            store8(load8(dbi + p).addingProduct(gj, us), dbi + p)
            let ar = load8(a + p), aj = load8(ai + p)
            store8((ar * gr).addingProduct(aj, gj), gc + p)
            store8((ar * gj).addingProduct(-aj, gr), gi + p)
            return (gr * load8(b + p)).addingProduct(gj, load8(bi + p))
        }
        @inline(__always) func lane1(_ p: Int, _ ug: Scalar, _ dyg: Scalar) -> Scalar {
            let gr = gc[p] + c[p] * dyg, gj = gi[p] + ci[p] * dyg
            dc[p] += h[p] * dyg; dci[p] += hi[p] * dyg
            da[p] += gr * hp[p] + gj * pi[p]; dai[p] += gj * hp[p] - gr * pi[p]
            db[p] += gr * ug; dbi[p] += gj * ug
            gc[p] = a[p] * gr + ai[p] * gj; gi[p] = a[p] * gj - ai[p] * gr
            return gr * b[p] + gj * bi[p]
        }
        var q0 = 0
        if n < 8 && 8 % n == 0 {
            var p = 0
            while p + 8 <= P {
                let q = p / n, terms = lanes8(p, spread8(u + q, n), spread8(dy + q, n))
                forGroupSums(terms, n) { j, t in
                    let dyg = dy[q + j], ug = u[q + j]
                    du[q + j] = d[q + j] * dyg + t; dd[q + j] += dyg * ug
                }
                p += 8
            }
            q0 = p / n
        }
        for q in q0..<H {
            let ug = u[q], dyg = dy[q]
            let us = V8(repeating: ug), dys = V8(repeating: dyg)
            var acc = V8()
            var p = q * n
            let end = p + n
            while p + 8 <= end { acc += lanes8(p, us, dys); p += 8 }
            var s = d[q] * dyg + treeSum(acc)
            while p < end { s += lane1(p, ug, dyg); p += 1 }
            du[q] = s
            dd[q] += dyg * ug
        }
    }
}

/// One SISO lane (or register of lanes) of the fused step, written once for the step, the blocked
/// scan and their scalar tails: h ← a ⊙ h + b·u (complex, split: hr, hj), returning the output
/// terms c_re·Re h + c_im·Im h.
@inlinable @inline(__always)
func sisoUpdate<V: SIMD>(_ u: V, _ ar: V, _ aj: V, _ br: V, _ bj: V, _ cr: V, _ cj: V,
                         _ hr: inout V, _ hj: inout V) -> V where V.Scalar: FloatingPoint {
    let nr = (u * br).addingProduct(ar, hr).addingProduct(-aj, hj)
    let ni = (u * bj).addingProduct(ar, hj).addingProduct(aj, hr)
    hr = nr; hj = ni
    return (cr * nr).addingProduct(cj, ni)
}

@inlinable @inline(__always)
func sisoUpdate(_ u: Scalar, _ ar: Scalar, _ aj: Scalar, _ br: Scalar, _ bj: Scalar, _ cr: Scalar, _ cj: Scalar,
                _ hr: inout Scalar, _ hj: inout Scalar) -> Scalar {
    let nr = br * u + ar * hr - aj * hj
    let ni = bj * u + ar * hj + aj * hr
    hr = nr; hj = ni
    return cr * nr + cj * ni
}

/// Eight lanes of groups of n ∈ {1, 2, 4} lanes: lane j holds v[j / n] (8 / n values of v).
@inlinable @inline(__always)
func spread8(_ v: UnsafePointer<Scalar>, _ n: Int) -> V8 {
    switch n {
    case 4: return V8(lowHalf: SIMD4(repeating: v[0]), highHalf: SIMD4(repeating: v[1]))
    case 2: return V8(v[0], v[0], v[1], v[1], v[2], v[2], v[3], v[3])
    default: return load8(v)
    }
}

/// The sum of the eight lanes as a tree (halves, then quarters, then the last pair): three dependent
/// additions where SIMD's `sum()` makes seven, in order. S4D's step and blocked scan end each
/// channel's sample with one; both sum this way, so they keep agreeing to the bit (the blocked scan
/// became about 4 % faster at H = 64, N = 64; the step, bound by streaming its coefficients from L2,
/// did not change). The backward sums its adjoint the same way.
@inlinable @inline(__always)
func treeSum(_ v: V8) -> Scalar {
    let four = v.lowHalf + v.highHalf, two = four.lowHalf + four.highHalf
    return two[0] + two[1]
}

/// The sums of each group of n ∈ {1, 2, 4} consecutive lanes of `v`, handed to `body(group, sum)`
/// (a group of four as a tree, like `treeSum`).
@inlinable @inline(__always)
func forGroupSums(_ v: V8, _ n: Int, _ body: (Int, Scalar) -> Void) {
    switch n {
    case 4: let s = v.evenHalf + v.oddHalf; body(0, s[0] + s[1]); body(1, s[2] + s[3])
    case 2: let s = v.evenHalf + v.oddHalf; for j in 0..<4 { body(j, s[j]) }
    default: for j in 0..<8 { body(j, v[j]) }
    }
}
