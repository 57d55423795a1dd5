// Dense kernels of the hot paths. Weights are laid out so that one sample's work is a sum of
// row-vectors (axpy over contiguous, independent SIMD lanes), and a block's work is one sgemm
// over the same buffer.

import COpenBLAS

/// out[0..<n] (+)= Σ_r x[r] · W[r, 0..<n]  — a vector times a row-major (R, n) matrix.
/// Output tiles of 32 floats stay in four SIMD8 registers across all R rows.
@inlinable
public func vecMat(_ x: UnsafePointer<Float>, rows R: Int, _ W: UnsafePointer<Float>, columns n: Int,
                   _ out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    var c = 0
    while c + 32 <= n {
        var a0 = accumulate ? load8(out + c) : V8(), a1 = accumulate ? load8(out + c + 8) : V8()
        var a2 = accumulate ? load8(out + c + 16) : V8(), a3 = accumulate ? load8(out + c + 24) : V8()
        var w = W + c
        for r in 0..<R {
            let s = V8(repeating: x[r])
            a0 = a0.addingProduct(s, load8(w)); a1 = a1.addingProduct(s, load8(w + 8))
            a2 = a2.addingProduct(s, load8(w + 16)); a3 = a3.addingProduct(s, load8(w + 24))
            w += n
        }
        store8(a0, out + c); store8(a1, out + c + 8); store8(a2, out + c + 16); store8(a3, out + c + 24)
        c += 32
    }
    while c + 8 <= n {
        var a0 = accumulate ? load8(out + c) : V8()
        for r in 0..<R { a0 = a0.addingProduct(V8(repeating: x[r]), load8(W + r * n + c)) }
        store8(a0, out + c)
        c += 8
    }
    while c < n {
        var s: Float = accumulate ? out[c] : 0
        for r in 0..<R { s += x[r] * W[r * n + c] }
        out[c] = s
        c += 1
    }
}

/// C (M, N) = A (M, K) · B (K, N) + beta·C, row-major, through BLAS (single precision).
@inlinable
public func gemm(_ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>, _ C: UnsafeMutablePointer<Float>,
                 M: Int, N: Int, K: Int, beta: Float = 0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(N), Int32(K),
                1, A, Int32(K), B, Int32(N), beta, C, Int32(N))
}

/// Use one BLAS thread (the engine runs one stream per core; OpenBLAS would otherwise spawn a pool).
public func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
