// The dense kernels against a plain Double sum: vecMat (register tiles and row streaming) and
// rowsMat (4- and 2-stream tiles, depth panels past 128 rows, column tails, an input stride), with
// float and half-precision weights, row-major and in strips (`StripMatrix`); and the 16-lane tiles of an AVX-512 build against the 8-lane
// ones, bit for bit, on any machine.

import Testing
@testable import SSM

private func reference(_ x: [Scalar], rows G: Int, depth R: Int, ld: Int, _ w: [Scalar], columns n: Int, start: [Scalar]?) -> [Double] {
    (0..<(G * n)).map { i in
        let g = i / n, c = i % n
        var s = start.map { Double($0[i]) } ?? 0
        for r in 0..<R { s += Double(x[g * ld + r]) * Double(w[r * n + c]) }
        return s
    }
}

@Suite("Dense kernels")
struct KernelTests {
    @Test("rowsMat and vecMat equal a Double sum, float and half weights", arguments: [(5, 7), (64, 128), (160, 40), (300, 520), (129, 17)])
    func matchesReference(_ shape: (Int, Int)) {
        let (R, n) = shape
        var rng = SeededRandom(seed: UInt64(R * 1000 + n))
        let w = (0..<(R * n)).map { _ in Scalar(Float16(Scalar(rng.normal() * 0.2))) }   // exact halves
        let w16 = w.map { Float16($0) }
        let arena = Arena(), strips = arena.halfStrips(w, rows: R, columns: n)
        for G in [1, 2, 3, 4, 5, 6, 9] {
            let ld = R + 3   // rows of X apart by more than R
            let x = (0..<(G * ld)).map { _ in Scalar(rng.normal()) }
            let start = (0..<(G * n)).map { _ in Scalar(rng.normal()) }
            for accumulate in [false, true] {
                let want = reference(x, rows: G, depth: R, ld: ld, w, columns: n, start: accumulate ? start : nil)
                var a = accumulate ? start : [Scalar](repeating: 7, count: G * n), b = a, c = a, d = a, e = a
                rowsMat(x, rows: G, depth: R, w, columns: n, &a, accumulate: accumulate, inputStride: ld)
                rowsMat(x, rows: G, depth: R, w16, columns: n, &b, accumulate: accumulate, inputStride: ld)
                rowsMat(x, rows: G, strips, &d, accumulate: accumulate, inputStride: ld)
                x.withUnsafeBufferPointer { xp in
                    c.withUnsafeMutableBufferPointer { cp in
                        for g in 0..<G { vecMat(xp.baseAddress! + g * ld, rows: R, w16, columns: n, cp.baseAddress! + g * n, accumulate: accumulate) }
                    }
                    e.withUnsafeMutableBufferPointer { ep in
                        for g in 0..<G { vecMat(xp.baseAddress! + g * ld, strips, ep.baseAddress! + g * n, accumulate: accumulate) }
                    }
                }
                withExtendedLifetime(arena) {}   // strips point into it
                let scale = Double(R).squareRoot()
                for (name, got) in [("rowsMat f32", a), ("rowsMat f16", b), ("vecMat f16", c), ("rowsMat f16 strips", d), ("vecMat f16 strips", e)] {
                    let err = zip(got, want).map { Swift.abs(Double($0) - $1) }.max()!
                    #expect(err <= 1e-5 * scale, "\(name) R=\(R) n=\(n) G=\(G) accumulate=\(accumulate): max error \(err)")
                }
            }
        }
    }

    @Test("a StripMatrix holds every element once, strip by strip", arguments: [(3, 5), (7, 64), (9, 130), (2, 200)])
    func strips(_ shape: (Int, Int)) {
        let (R, n) = shape
        let w = (0..<(R * n)).map { Scalar($0) }   // exact in half precision up to 2048
        let arena = Arena(), m = arena.halfStrips(w, rows: R, columns: n)
        defer { withExtendedLifetime(arena) {} }   // m points into it
        var seen = Set<Int>()
        for r in 0..<R {
            for c in 0..<n {
                #expect(m[r, c] == Float16(w[r * n + c]), "(\(r), \(c))")
                seen.insert(StripMatrix<Float16>.offset(row: r, column: c, rows: R, columns: n))
            }
        }
        #expect(seen == Set(0..<(R * n)))
        // Strip k starts at k · 64 · R and is row-major of its own width.
        let k = (n - 1) / 64, width = n - k * 64
        #expect(StripMatrix<Float16>.offset(row: 1, column: k * 64, rows: R, columns: n) == k * 64 * R + width)
    }

    @Test("16-lane tiles give the 8-lane tiles' bits, so a build's width does not change results", arguments: [16, 48, 64, 80, 96, 128, 200, 512])
    func widths(_ n: Int) {
        let R = 37, ld = R + 2
        var rng = SeededRandom(seed: UInt64(n))
        let w = (0..<(R * n)).map { _ in Scalar(rng.normal() * 0.2) }, w16 = w.map { Float16($0) }
        let x = (0..<(4 * ld)).map { _ in Scalar(rng.normal()) }, start = (0..<(4 * n)).map { _ in Scalar(rng.normal()) }
        typealias V16 = SIMD16<Scalar>
        // Each schedule at 8 lanes alone, and at 16 lanes followed by 8 (what an AVX-512 build runs).
        func both(_ run: (any DenseVector.Type, UnsafeMutablePointer<Scalar>, Int) -> Int) {
            var a = start, b = start
            let ca = a.withUnsafeMutableBufferPointer { run(V8.self, $0.baseAddress!, 0) }
            let cb = b.withUnsafeMutableBufferPointer { p in run(V8.self, p.baseAddress!, run(V16.self, p.baseAddress!, 0)) }
            #expect(ca == cb && a == b, "n=\(n): 8 lanes reach column \(ca), 16 then 8 reach \(cb)")
            #expect(ca >= n & ~31, "n=\(n): the tiles stop at column \(ca)")
        }
        // Float weights (what an AVX-512 build runs at 16 lanes) and half ones.
        func tiles<V: DenseVector, E: WeightElement>(_ v: V.Type, _ w: [E], _ o: UnsafeMutablePointer<Scalar>, _ c: Int) -> Int {
            vecMatTiles(v, x, rows: R, w, columns: n, o, accumulate: true, from: c)
        }
        func four<V: DenseVector, E: WeightElement>(_ v: V.Type, _ w: [E], _ o: UnsafeMutablePointer<Scalar>, _ c: Int) -> Int {
            rowsMatFourStreams(v, x, streams: 4, stride: ld, rows: 0..<R, w, columns: n, o, add: true, from: c)
        }
        func two<V: DenseVector, E: WeightElement>(_ v: V.Type, _ w: [E], _ o: UnsafeMutablePointer<Scalar>, _ c: Int) -> Int {
            rowsMatTwoStreams(v, x, stride: ld, rows: R, w, columns: n, o, accumulate: true, from: c)
        }
        both { v, o, c in tiles(v, w, o, c) }
        both { v, o, c in tiles(v, w16, o, c) }
        both { v, o, c in four(v, w, o, c) }
        both { v, o, c in four(v, w16, o, c) }
        both { v, o, c in two(v, w, o, c) }
        both { v, o, c in two(v, w16, o, c) }
    }
}
