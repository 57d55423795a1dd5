// The scan core against plain Double loops: h_k = a_k ⊙ h_{k-1} + b_k (step, scan, parallelScan)
// and g_k = conj(a_{k+1}) ⊙ g_{k+1} + dh_k (adjointScan), for real and complex (split [Re; Im])
// lanes, time-invariant (aStride 0) and time-varying (aStride = W·P) coefficients, and lane counts
// that exercise the SIMD8 body and its scalar tail.

import Foundation
import Testing
@testable import SSM

private let laneCounts = [1, 7, 8, 13, 64]
private let lengths = [257, 1000, 4096]

/// Random coefficients with |a| < 1 (radius up to 0.999, any phase), W·P per row, `rows` rows.
private func randomA(complex: Bool, P: Int, rows: Int, rng: inout SeededRandom) -> [Float] {
    var a = [Float](repeating: 0, count: (complex ? 2 : 1) * P * rows)
    for k in 0..<rows {
        for p in 0..<P {
            let r = 0.999 * rng.uniform().squareRoot()
            if complex {
                let phi = rng.uniform(0, 2 * Double.pi)
                a[k * 2 * P + p] = Float(r * cos(phi))
                a[k * 2 * P + P + p] = Float(r * sin(phi))
            } else {
                a[k * P + p] = Float(rng.uniform() < 0.5 ? -r : r)
            }
        }
    }
    return a
}

/// h_k = a_k h_{k-1} + b_k in Double from h0; returns the L rows h_k (W·P each).
private func referenceScan(complex: Bool, a: [Float], aStride: Int, h0: [Float], b: [Float], L: Int, P: Int) -> [Double] {
    let w = (complex ? 2 : 1) * P
    var out = [Double](repeating: 0, count: L * w)
    for p in 0..<P {
        if complex {
            var h = Cx(Double(h0[p]), Double(h0[P + p]))
            for k in 0..<L {
                let ak = Cx(Double(a[k * aStride + p]), Double(a[k * aStride + P + p]))
                h = ak * h + Cx(Double(b[k * w + p]), Double(b[k * w + P + p]))
                out[k * w + p] = h.re; out[k * w + P + p] = h.im
            }
        } else {
            var h = Double(h0[p])
            for k in 0..<L {
                h = Double(a[k * aStride + p]) * h + Double(b[k * w + p])
                out[k * w + p] = h
            }
        }
    }
    return out
}

/// g_k = conj(a_{k+1}) g_{k+1} + dh_k with g_{L-1} = carry + dh_{L-1}; returns the rows g_k and
/// conj(a_0) g_0 (what the block hands to the one before it).
private func referenceAdjoint(complex: Bool, a: [Float], aStride: Int, carry: [Float], dh: [Float], L: Int, P: Int) -> ([Double], [Double]) {
    let w = (complex ? 2 : 1) * P
    var out = [Double](repeating: 0, count: L * w), exit = [Double](repeating: 0, count: w)
    for p in 0..<P {
        func aAt(_ k: Int) -> Cx {
            complex ? Cx(Double(a[k * aStride + p]), Double(a[k * aStride + P + p])) : Cx(Double(a[k * aStride + p]))
        }
        var g = complex ? Cx(Double(carry[p]), Double(carry[P + p])) : Cx(Double(carry[p]))
        for k in stride(from: L - 1, through: 0, by: -1) {
            if k < L - 1 { g = aAt(k + 1).conj * g }
            g = g + (complex ? Cx(Double(dh[k * w + p]), Double(dh[k * w + P + p])) : Cx(Double(dh[k * w + p])))
            out[k * w + p] = g.re
            if complex { out[k * w + P + p] = g.im }
        }
        let e = aAt(0).conj * g
        exit[p] = e.re
        if complex { exit[P + p] = e.im }
    }
    return (out, exit)
}

/// The four forward entry points of `Scan<Lanes>` on one problem; every result against the reference.
private func checkForward<Lanes: ScanLanes>(_: Lanes.Type, P: Int, L: Int, timeVarying: Bool, seed: UInt64) {
    let complex = Lanes.width == 2
    let w = Lanes.width * P
    var rng = SeededRandom(seed: seed)
    let a = randomA(complex: complex, P: P, rows: timeVarying ? L : 1, rng: &rng)
    let aStride = timeVarying ? w : 0
    let b = rng.normals(L * w)
    let h0 = rng.normals(w)   // a non-zero carried-in state
    let ref = referenceScan(complex: complex, a: a, aStride: aStride, h0: h0, b: b, L: L, P: P)
    let label = "\(complex ? "complex" : "real") P=\(P) L=\(L) \(timeVarying ? "time-varying" : "time-invariant")"

    // step: L calls.
    var hStep = h0
    var stepOut = [Float](repeating: 0, count: L * w)
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            hStep.withUnsafeMutableBufferPointer { hp in
                for k in 0..<L {
                    Scan<Lanes>.step(a: ap.baseAddress! + k * aStride, h: hp.baseAddress!, b: bp.baseAddress! + k * w, lanes: P)
                    for i in 0..<w { stepOut[k * w + i] = hp[i] }
                }
            }
        }
    }
    #expect(maxRelError(stepOut, ref) <= 1e-5, "step vs reference, \(label): \(maxRelError(stepOut, ref))")

    // scan: the same arithmetic as L steps, bit for bit.
    var hScan = h0, xScan = b
    a.withUnsafeBufferPointer { ap in
        Scan<Lanes>.scan(a: ap.baseAddress!, aStride: aStride, h: &hScan, x: &xScan, length: L, lanes: P)
    }
    #expect(bits(xScan) == bits(stepOut), "scan ≠ step bit for bit, \(label)")
    #expect(bits(hScan) == bits(Array(stepOut[((L - 1) * w)...])), "scan's carried state ≠ h_{L-1}, \(label)")

    // parallelScan on 2 and 4 threads (chunks of unequal length when L is odd).
    for threads in [2, 4] {
        var hPar = h0, xPar = b
        a.withUnsafeBufferPointer { ap in
            Scan<Lanes>.parallelScan(a: ap.baseAddress!, aStride: aStride, h: &hPar, x: &xPar, length: L, lanes: P, threads: threads)
        }
        let e = maxRelError(xPar, ref)
        #expect(e <= 1e-5, "parallelScan(threads: \(threads)) vs reference, \(label): \(e)")
        #expect(maxRelError(hPar, Array(ref[((L - 1) * w)...])) <= 1e-5, "parallelScan(threads: \(threads)) carried state, \(label)")
    }
}

private func checkAdjoint<Lanes: ScanLanes>(_: Lanes.Type, P: Int, L: Int, split m: Int, timeVarying: Bool, seed: UInt64) {
    let complex = Lanes.width == 2
    let w = Lanes.width * P
    var rng = SeededRandom(seed: seed)
    let a = randomA(complex: complex, P: P, rows: timeVarying ? L : 1, rng: &rng)
    let aStride = timeVarying ? w : 0
    let dh = rng.normals(L * w)
    let carry = rng.normals(w)
    let (ref, refExit) = referenceAdjoint(complex: complex, a: a, aStride: aStride, carry: carry, dh: dh, L: L, P: P)
    let label = "\(complex ? "complex" : "real") P=\(P) L=\(L) \(timeVarying ? "time-varying" : "time-invariant")"

    // One block.
    var g = carry, whole = dh
    a.withUnsafeBufferPointer { ap in
        Scan<Lanes>.adjointScan(a: ap.baseAddress!, aStride: aStride, g: &g, dh: &whole, length: L, lanes: P)
    }
    #expect(maxRelError(whole, ref) <= 1e-5, "adjointScan vs reference, \(label): \(maxRelError(whole, ref))")
    #expect(maxRelError(g, refExit) <= 1e-5, "adjointScan carry-out ≠ conj(a_0) g_0, \(label)")

    // Two blocks [0, m) and [m, L): the later block first, its carry-out into the earlier one.
    var g2 = carry
    var first = Array(dh[0..<(m * w)]), second = Array(dh[(m * w)...])
    a.withUnsafeBufferPointer { ap in
        Scan<Lanes>.adjointScan(a: ap.baseAddress! + m * aStride, aStride: aStride, g: &g2, dh: &second, length: L - m, lanes: P)
        Scan<Lanes>.adjointScan(a: ap.baseAddress!, aStride: aStride, g: &g2, dh: &first, length: m, lanes: P)
    }
    #expect(bits(first + second) == bits(whole), "adjointScan split at \(m) ≠ one block, \(label)")
    #expect(bits(g2) == bits(g), "adjointScan split carry-out ≠ one block's, \(label)")
}

@Suite("Scan core")
struct ScanTests {
    @Test("complex lanes: step == scan == parallelScan == Double loop", arguments: laneCounts, lengths)
    func complexForward(P: Int, L: Int) {
        for tv in [false, true] { checkForward(ComplexLanes.self, P: P, L: L, timeVarying: tv, seed: UInt64(P * 10_000 + L)) }
    }

    @Test("real lanes: step == scan == parallelScan == Double loop", arguments: laneCounts, lengths)
    func realForward(P: Int, L: Int) {
        for tv in [false, true] { checkForward(RealLanes.self, P: P, L: L, timeVarying: tv, seed: UInt64(P * 10_000 + L + 7)) }
    }

    @Test("adjointScan == Double loop, and two blocks with carry == one block", arguments: laneCounts)
    func adjoint(P: Int) {
        for tv in [false, true] {
            checkAdjoint(ComplexLanes.self, P: P, L: 1000, split: 377, timeVarying: tv, seed: UInt64(P + 1))
            checkAdjoint(RealLanes.self, P: P, L: 1000, split: 377, timeVarying: tv, seed: UInt64(P + 2))
        }
    }

    /// The adjoint really is the transpose of the forward map: for h = M b (the scan from a zero
    /// state) and g = Mᴴ dh (the adjoint from a zero carry), Re⟨dh, h⟩ = Re⟨g, b⟩.
    @Test("adjointScan is the adjoint of scan: ⟨dh, scan b⟩ = ⟨adjointScan dh, b⟩")
    func adjointIdentity() {
        let P = 13, L = 300, w = 2 * P
        var rng = SeededRandom(seed: 99)
        let a = randomA(complex: true, P: P, rows: L, rng: &rng)
        let b = rng.normals(L * w), dh = rng.normals(L * w)
        var h = [Float](repeating: 0, count: w), x = b
        var g = [Float](repeating: 0, count: w), y = dh
        a.withUnsafeBufferPointer { ap in
            Scan<ComplexLanes>.scan(a: ap.baseAddress!, aStride: w, h: &h, x: &x, length: L, lanes: P)
            Scan<ComplexLanes>.adjointScan(a: ap.baseAddress!, aStride: w, g: &g, dh: &y, length: L, lanes: P)
        }
        // Re⟨u, v⟩ over split complex rows = Σ (Re u Re v + Im u Im v) = the plain real dot product.
        let lhs = zip(dh, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(y, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= 1e-4 * max(abs(lhs), 1), "⟨dh, h⟩ = \(lhs), ⟨g, b⟩ = \(rhs)")
    }

    /// The fused SISO step (S4D's streaming and training forward), its time-blocked scan (S4D's block
    /// path) and its fused adjoint (training's backward) against plain Double loops, for groups of
    /// 1, 2 and 4 lanes (one register spans several groups; pairs of registers, a single one, and
    /// the groups left over), 3 (scalar), 8, 10, 16 and 24 (registers within a group, and a tail).
    @Test("fused SISO step, blocked scan and adjointStep == Double loops",
          arguments: [(1, 13), (1, 37), (2, 13), (4, 13), (3, 3), (8, 3), (10, 3), (16, 2), (24, 2)])
    func fusedSISO(n: Int, H: Int) {
        let P = H * n, w = 2 * P, L = 60
        var rng = SeededRandom(seed: UInt64(100 + n))
        let a = randomA(complex: true, P: P, rows: 1, rng: &rng)
        let b = rng.normals(w), c = rng.normals(w), d = rng.normals(H), u = rng.normals(L * H), dy = rng.normals(L * H)
        let zero = [Float](repeating: 0, count: w)
        // L steps in place on one state (streaming): outputs and the final state.
        func steps(_ u: [Float]) -> (y: [Float], h: [Float]) {
            var h = zero, y = [Float](repeating: 0, count: L * H)
            y.withUnsafeMutableBufferPointer { yp in
                for k in 0..<L {
                    Scan<ComplexLanes>.step(a: a, h: &h, input: Array(u[(k * H)...]), groups: H, lanesPerGroup: n, b: b, c: c, d: d,
                                            output: yp.baseAddress! + k * H, lanes: P)
                }
            }
            return (y, h)
        }
        // The time-blocked scan in two blocks with the state carried.
        func blocked(_ u: [Float]) -> (y: [Float], h: [Float]) {
            var h = zero, y = [Float](repeating: 0, count: L * H), scratch = [Float](repeating: 0, count: L * 8)
            y.withUnsafeMutableBufferPointer { yp in
                for (k0, k1) in [(0, 23), (23, L)] {
                    Scan<ComplexLanes>.scan(a: a, h: &h, input: Array(u[(k0 * H)...]), groups: H, lanesPerGroup: n, b: b, c: c, d: d,
                                            output: yp.baseAddress! + k0 * H, length: k1 - k0, lanes: P, scratch: &scratch)
                }
            }
            return (y, h)
        }
        let (y, h) = steps(u)
        // Row to row (training's tape), each step reading the row before.
        var tape = [Float](repeating: 0, count: L * w), yTape = [Float](repeating: 0, count: L * H)
        tape.withUnsafeMutableBufferPointer { t in
            yTape.withUnsafeMutableBufferPointer { yp in
                zero.withUnsafeBufferPointer { z in
                    for k in 0..<L {
                        Scan<ComplexLanes>.step(a: a, h: t.baseAddress! + k * w, input: Array(u[(k * H)...]), groups: H, lanesPerGroup: n,
                                                b: b, c: c, d: d, output: yp.baseAddress! + k * H, lanes: P,
                                                previous: k > 0 ? UnsafePointer(t.baseAddress! + (k - 1) * w) : z.baseAddress!)
                    }
                }
            }
        }
        #expect(bits(yTape) == bits(y) && bits(Array(tape[((L - 1) * w)...])) == bits(h), "n=\(n): tape step ≠ in-place step")
        // The blocked scan gives the same bits, signed zeros of a silent input included.
        let yb = blocked(u)
        #expect(bits(yb.y) == bits(y) && bits(yb.h) == bits(h), "n=\(n): blocked scan ≠ steps")
        let silent = [Float](repeating: 0, count: L * H), (y0, _) = steps(silent)
        #expect(bits(blocked(silent).y) == bits(y0), "n=\(n): blocked scan ≠ steps on silence")
        // Double references: states, outputs, and the pullback of a loss with dL/dy = dy.
        var hs = [[Cx]](repeating: [Cx](repeating: Cx(0, 0), count: P), count: L + 1)   // hs[k + 1] = h_k
        var yRef = [Double](repeating: 0, count: L * H)
        func A(_ p: Int) -> Cx { Cx(Double(a[p]), Double(a[P + p])) }
        for k in 0..<L {
            for p in 0..<P { hs[k + 1][p] = A(p) * hs[k][p] + Cx(Double(b[p]) * Double(u[k * H + p / n]), Double(b[P + p]) * Double(u[k * H + p / n])) }
            for g in 0..<H {
                var s = Double(d[g]) * Double(u[k * H + g])
                for p in (g * n)..<(g * n + n) { s += Double(c[p]) * hs[k + 1][p].re + Double(c[P + p]) * hs[k + 1][p].im }
                yRef[k * H + g] = s
            }
        }
        #expect(maxRelError(y, yRef) <= 1e-5, "n=\(n): step vs Double, \(maxRelError(y, yRef))")
        var gRef = [Cx](repeating: Cx(0, 0), count: P)
        var da = [Double](repeating: 0, count: w), db = da, dc = da, dd = [Double](repeating: 0, count: H)
        var duRef = [Double](repeating: 0, count: L * H)
        for k in stride(from: L - 1, through: 0, by: -1) {
            for g in 0..<H {
                let dyg = Double(dy[k * H + g]), ug = Double(u[k * H + g])
                var s = Double(d[g]) * dyg
                for p in (g * n)..<(g * n + n) {
                    let gp = gRef[p] + Cx(Double(c[p]) * dyg, Double(c[P + p]) * dyg), hk = hs[k + 1][p], hp = hs[k][p]
                    dc[p] += hk.re * dyg; dc[P + p] += hk.im * dyg
                    da[p] += gp.re * hp.re + gp.im * hp.im; da[P + p] += gp.im * hp.re - gp.re * hp.im
                    db[p] += gp.re * ug; db[P + p] += gp.im * ug
                    s += Double(b[p]) * gp.re + Double(b[P + p]) * gp.im
                    gRef[p] = Cx(A(p).re, -A(p).im) * gp
                }
                duRef[k * H + g] = s
                dd[g] += dyg * ug
            }
        }
        var carry = [Float](repeating: 0, count: w), du = [Float](repeating: 0, count: L * H)
        var fa = [Float](repeating: 0, count: w), fb = fa, fc = fa, fd = [Float](repeating: 0, count: H)
        du.withUnsafeMutableBufferPointer { dup in
            for k in stride(from: L - 1, through: 0, by: -1) {
                let prev = k > 0 ? Array(tape[((k - 1) * w)..<(k * w)]) : zero
                Scan<ComplexLanes>.adjointStep(a: a, carry: &carry, input: Array(u[(k * H)...]), outputGradient: Array(dy[(k * H)...]),
                                               inputGradient: dup.baseAddress! + k * H, groups: H, lanesPerGroup: n, b: b, c: c, d: d,
                                               state: Array(tape[(k * w)..<((k + 1) * w)]), previous: prev,
                                               da: &fa, db: &fb, dc: &fc, dd: &fd, lanes: P)
            }
        }
        for (got, ref, what) in [(du, duRef, "du"), (fa, da, "dΛ̄"), (fb, db, "dB̄"), (fc, dc, "dC"), (fd, dd, "dD")] {
            #expect(maxRelError(got, ref) <= 1e-4, "n=\(n): \(what) vs Double, \(maxRelError(got, ref))")
        }
        let carryRef = gRef.map(\.re) + gRef.map(\.im)
        #expect(maxRelError(carry, carryRef) <= 1e-4, "n=\(n): carry out")
    }

    @Test("parallelScan falls back to scan for short blocks and one thread")
    func parallelShortBlocks() {
        let P = 7, w = 2 * P
        var rng = SeededRandom(seed: 5)
        let a = randomA(complex: true, P: P, rows: 1, rng: &rng)
        for L in [1, 2, 63, 127] {
            for threads in [1, 4] {
                let b = rng.normals(L * w), h0 = rng.normals(w)
                var hs = h0, xs = b, hp = h0, xp = b
                a.withUnsafeBufferPointer { ap in
                    Scan<ComplexLanes>.scan(a: ap.baseAddress!, aStride: 0, h: &hs, x: &xs, length: L, lanes: P)
                    Scan<ComplexLanes>.parallelScan(a: ap.baseAddress!, aStride: 0, h: &hp, x: &xp, length: L, lanes: P, threads: threads)
                }
                #expect(bits(xp) == bits(xs) && bits(hp) == bits(hs), "L=\(L) threads=\(threads)")
                let ref = referenceScan(complex: true, a: a, aStride: 0, h0: h0, b: b, L: L, P: P)
                #expect(maxRelError(xs, ref) <= 1e-5)
            }
        }
    }
}
