import RealModule

/// An iterative radix-2 complex FFT in Double, for convolution mode (offline, long blocks).
/// Sizes are powers of two; twiddles and the bit-reversal table are computed once per plan.
public struct FFTPlan: Sendable {
    public let n: Int
    let cosTable: [Double], sinTable: [Double], bitReverse: [Int]

    public init(size n: Int) {
        precondition(n > 0 && n & (n - 1) == 0, "FFT size must be a power of two")
        self.n = n
        cosTable = (0..<(n / 2)).map { Double.cos(-2 * Double.pi * Double($0) / Double(n)) }
        sinTable = (0..<(n / 2)).map { Double.sin(-2 * Double.pi * Double($0) / Double(n)) }
        var rev = [Int](repeating: 0, count: n)
        var bits = 0
        while (1 << bits) < n { bits += 1 }
        for i in 0..<n {
            var r = 0, v = i
            for _ in 0..<bits { r = (r << 1) | (v & 1); v >>= 1 }
            rev[i] = r
        }
        bitReverse = rev
    }

    /// In-place transform of (re, im); `inverse` computes the unscaled inverse (divide by n yourself).
    public func transform(_ re: inout [Double], _ im: inout [Double], inverse: Bool = false) {
        for i in 0..<n where i < bitReverse[i] {
            re.swapAt(i, bitReverse[i]); im.swapAt(i, bitReverse[i])
        }
        let sign: Double = inverse ? -1 : 1
        var len = 2
        while len <= n {
            let half = len / 2, step = n / len
            var start = 0
            while start < n {
                for j in 0..<half {
                    let wr = cosTable[j * step], wi = sign * sinTable[j * step]
                    let a = start + j, b = a + half
                    let tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr
                    re[b] = re[a] - tr; im[b] = im[a] - ti
                    re[a] += tr; im[a] += ti
                }
                start += len
            }
            len <<= 1
        }
    }
}

/// Causal linear convolution y[t] = Σ_{s ≤ t} k[s] x[t − s] for t < L via zero-padded FFTs,
/// for several kernels and inputs at once: y_o = Σ_i k_{o,i} ∗ x_i.
/// - Parameters: kernels[o][i] (at most L, or empty for a zero kernel), inputs[i] (at most L).
///   Returns outputs[o] (L). The transforms are as long as the longest kernel and input need (at
///   most 2L): a short kernel over a long input costs no more than the input.
public func causalConvolution(kernels: [[[Double]]], inputs: [[Double]], length L: Int) -> [[Double]] {
    let span = (inputs.map(\.count).max() ?? 0) + (kernels.joined().map(\.count).max() ?? 0) - 1
    var n = 1
    while n < max(L, span) { n <<= 1 }
    let plan = FFTPlan(size: n)
    func spectrum(_ x: [Double]) -> ([Double], [Double]) {
        var re = x + [Double](repeating: 0, count: n - x.count), im = [Double](repeating: 0, count: n)
        plan.transform(&re, &im)
        return (re, im)
    }
    let X = inputs.map(spectrum)
    return kernels.map { row in
        var accRe = [Double](repeating: 0, count: n), accIm = [Double](repeating: 0, count: n)
        for (i, k) in row.enumerated() where !k.isEmpty {
            let (kr, ki) = spectrum(k)
            let (xr, xi) = X[i]
            for f in 0..<n {
                accRe[f] += kr[f] * xr[f] - ki[f] * xi[f]
                accIm[f] += kr[f] * xi[f] + ki[f] * xr[f]
            }
        }
        plan.transform(&accRe, &accIm, inverse: true)
        return (0..<L).map { accRe[$0] / Double(n) }
    }
}
