// The dense kernels against a plain Double sum: vecMat (register tiles and row streaming) and
// rowsMat (4- and 2-stream tiles, depth panels past 128 rows, column tails, an input stride), with
// float and half-precision weights.

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
        for G in [1, 2, 3, 4, 5, 6, 9] {
            let ld = R + 3   // rows of X apart by more than R
            let x = (0..<(G * ld)).map { _ in Scalar(rng.normal()) }
            let start = (0..<(G * n)).map { _ in Scalar(rng.normal()) }
            for accumulate in [false, true] {
                let want = reference(x, rows: G, depth: R, ld: ld, w, columns: n, start: accumulate ? start : nil)
                var a = accumulate ? start : [Scalar](repeating: 7, count: G * n), b = a, c = a
                rowsMat(x, rows: G, depth: R, w, columns: n, &a, accumulate: accumulate, inputStride: ld)
                rowsMat(x, rows: G, depth: R, w16, columns: n, &b, accumulate: accumulate, inputStride: ld)
                x.withUnsafeBufferPointer { xp in
                    c.withUnsafeMutableBufferPointer { cp in
                        for g in 0..<G { vecMat(xp.baseAddress! + g * ld, rows: R, w16, columns: n, cp.baseAddress! + g * n, accumulate: accumulate) }
                    }
                }
                let scale = Double(R).squareRoot()
                for (name, got) in [("rowsMat f32", a), ("rowsMat f16", b), ("vecMat f16", c)] {
                    let err = zip(got, want).map { Swift.abs(Double($0) - $1) }.max()!
                    #expect(err <= 1e-5 * scale, "\(name) R=\(R) n=\(n) G=\(G) accumulate=\(accumulate): max error \(err)")
                }
            }
        }
    }
}
