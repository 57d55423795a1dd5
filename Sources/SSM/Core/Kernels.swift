// Dense kernels of the hot paths. Weights are laid out so that one sample's work is a sum of
// row-vectors (axpy over contiguous, independent SIMD lanes), and a block's work is one sgemm
// over the same buffer.

import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// How a weight matrix is stored: float (the library's Scalar) or half precision. A half weight is
/// converted in registers as it is loaded (F16C's vcvtph2ps on an x86-64 target with it): the state
/// and the arithmetic stay in Scalar, only the bytes that stream in are halved.
public protocol WeightElement: Sendable {
    /// The register the dense kernels run over for this element: the build's widest for Scalar
    /// weights, 8 lanes for half ones (on Zen 4, converting 16 halves per instruction made the
    /// 4-layer S5 step of H = P = 64, whose weights stay in cache, 29 % slower than converting 8).
    associatedtype Register: DenseVector
    /// Eight weights from p, as Scalars.
    static func load8(_ p: UnsafePointer<Self>) -> SIMD8<Scalar>
    /// Four weights from p, as Scalars.
    static func load4(_ p: UnsafePointer<Self>) -> SIMD4<Scalar>
    /// Sixteen weights from p, as Scalars (an AVX-512 build's dense kernels).
    static func load16(_ p: UnsafePointer<Self>) -> SIMD16<Scalar>
    var scalar: Scalar { get }
}

extension Scalar: WeightElement {
    public typealias Register = WidestVector
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafePointer<Scalar>) -> SIMD8<Scalar> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Scalar>.self) }
    @inlinable @inline(__always)
    public static func load4(_ p: UnsafePointer<Scalar>) -> SIMD4<Scalar> { UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Scalar>.self) }
    @inlinable @inline(__always)
    public static func load16(_ p: UnsafePointer<Scalar>) -> SIMD16<Scalar> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Scalar>.self) }
    @inlinable @inline(__always)
    public var scalar: Scalar { self }
}

extension Float16: WeightElement {
    public typealias Register = SIMD8<Scalar>
    // Lane by lane, which LLVM turns into one vcvtph2ps (the generic SIMD8(SIMD8<Float16>) init
    // was left as an out-of-line element loop: 3.5× slower than float32 weights).
    @inlinable @inline(__always)
    public static func load8(_ p: UnsafePointer<Float16>) -> SIMD8<Scalar> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float16>.self)
        return SIMD8<Scalar>(Scalar(h[0]), Scalar(h[1]), Scalar(h[2]), Scalar(h[3]), Scalar(h[4]), Scalar(h[5]), Scalar(h[6]), Scalar(h[7]))
    }
    @inlinable @inline(__always)
    public static func load4(_ p: UnsafePointer<Float16>) -> SIMD4<Scalar> {
        let h = UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float16>.self)
        return SIMD4<Scalar>(Scalar(h[0]), Scalar(h[1]), Scalar(h[2]), Scalar(h[3]))
    }
    @inlinable @inline(__always)
    public static func load16(_ p: UnsafePointer<Float16>) -> SIMD16<Scalar> {
        SIMD16(lowHalf: load8(p), highHalf: load8(p + 8))
    }
    @inlinable @inline(__always)
    public var scalar: Scalar { Scalar(self) }
}

/// A register the dense kernels run over: 8 lanes (SIMD8) or 16 (SIMD16, an AVX-512 build).
///
/// `vecMat` and `rowsMat` run their register tiles at their weight element's register
/// (`WeightElement.Register`: for float weights the build's widest, `WidestVector`), then at 8 lanes
/// while whole tiles remain, then their narrow tails (8-lane pairs of FMA chains, SIMD4, scalars).
/// Every column is summed in the same order at either width, so a build's width changes no bit.
public protocol DenseVector: SIMD where Scalar == SSM.Scalar {
    /// `scalarCount` consecutive weights from p, as Scalars.
    static func load<E: WeightElement>(_ p: UnsafePointer<E>) -> Self
}

extension SIMD8: DenseVector where Scalar == SSM.Scalar {
    @inlinable @inline(__always)
    public static func load<E: WeightElement>(_ p: UnsafePointer<E>) -> Self { E.load8(p) }
}

extension SIMD16: DenseVector where Scalar == SSM.Scalar {
    @inlinable @inline(__always)
    public static func load<E: WeightElement>(_ p: UnsafePointer<E>) -> Self { E.load16(p) }
}

/// The widest register of the build's target CPU for the dense kernels: 16 lanes where Package.swift
/// targets AVX-512 (it defines SSM_SIMD512), else 8 (and always 8 in the float64 build of the
/// gradient checks). The scan core stays at 8 lanes (`V8`): its lane layouts are built around them.
#if SSM_SIMD512 && !SSM_FLOAT64
public typealias WidestVector = SIMD16<Scalar>
#else
public typealias WidestVector = SIMD8<Scalar>
#endif

@inlinable @inline(__always)
func loadV<V: DenseVector>(_ p: UnsafePointer<Scalar>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
@inlinable @inline(__always)
func storeV<V: DenseVector>(_ v: V, _ p: UnsafeMutablePointer<Scalar>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

/// out[0..<n] (+)= Σ_r x[r] · W[r, 0..<n]  — a vector times a row-major (R, n) matrix.
///
/// Two schedules, by where W lives (every weight is used once per call, so this is bound by how
/// fast W streams in): while W fits in L1 (≤ `tileLimitBytes`), output tiles stay in registers
/// across all R rows; beyond, W is read strictly sequentially, 8 rows per pass, accumulating into
/// `out` in L1 — the hardware prefetchers serve that best.
@inlinable
public func vecMat<E: WeightElement>(_ x: UnsafePointer<Scalar>, rows R: Int, _ W: UnsafePointer<E>, columns n: Int,
                                     _ out: UnsafeMutablePointer<Scalar>, accumulate: Bool) {
    if R * n * 4 > vecMatTileLimitBytes && n >= 8 {
        vecMatStreaming(x, rows: R, W, columns: n, out, accumulate: accumulate)
        return
    }
    vecMatInRegisters(x, rows: R, W, columns: n, out, accumulate: accumulate)
}

/// `vecMat`'s register schedule alone, whatever the size of W: its output tiles in registers across
/// all R rows, then the narrow tails. Over a matrix of at most 8 registers' width (a strip of a
/// `StripMatrix`) this reads W strictly in order.
@inlinable
func vecMatInRegisters<E: WeightElement>(_ x: UnsafePointer<Scalar>, rows R: Int, _ W: UnsafePointer<E>, columns n: Int,
                                         _ out: UnsafeMutablePointer<Scalar>, accumulate: Bool) {
    var c = vecMatTiles(E.Register.self, x, rows: R, W, columns: n, out, accumulate: accumulate, from: 0)
    if E.Register.scalarCount > 8 { c = vecMatTiles(V8.self, x, rows: R, W, columns: n, out, accumulate: accumulate, from: c) }
    // Narrow tails (small layers): even and odd rows into separate accumulators, so two (or four)
    // FMA chains run side by side instead of one chain of R dependent FMAs.
    while c + 16 <= n {
        var a0 = accumulate ? load8(out + c) : V8(), a1 = accumulate ? load8(out + c + 8) : V8()
        var b0 = V8(), b1 = V8()
        var r = 0
        while r + 2 <= R {
            let w = W + r * n + c, s0 = V8(repeating: x[r]), s1 = V8(repeating: x[r + 1])
            a0 = a0.addingProduct(s0, E.load8(w)); a1 = a1.addingProduct(s0, E.load8(w + 8))
            b0 = b0.addingProduct(s1, E.load8(w + n)); b1 = b1.addingProduct(s1, E.load8(w + n + 8))
            r += 2
        }
        if r < R {
            let w = W + r * n + c, s0 = V8(repeating: x[r])
            a0 = a0.addingProduct(s0, E.load8(w)); a1 = a1.addingProduct(s0, E.load8(w + 8))
        }
        store8(a0 + b0, out + c); store8(a1 + b1, out + c + 8)
        c += 16
    }
    while c + 8 <= n {
        var a0 = accumulate ? load8(out + c) : V8(), b0 = V8()
        var r = 0
        while r + 2 <= R {
            a0 = a0.addingProduct(V8(repeating: x[r]), E.load8(W + r * n + c))
            b0 = b0.addingProduct(V8(repeating: x[r + 1]), E.load8(W + (r + 1) * n + c))
            r += 2
        }
        if r < R { a0 = a0.addingProduct(V8(repeating: x[r]), E.load8(W + r * n + c)) }
        store8(a0 + b0, out + c)
        c += 8
    }
    // The last 4…7 columns: four of them side by side in one SIMD4 (each lane the same sequential
    // sum as the scalar loop below, so the result does not depend on the path).
    if c + 4 <= n {
        var s = accumulate ? UnsafeRawPointer(out + c).loadUnaligned(as: SIMD4<Scalar>.self) : SIMD4<Scalar>()
        var w = W + c
        for r in 0..<R {
            s = s + SIMD4(repeating: x[r]) * E.load4(w)
            w += n
        }
        UnsafeMutableRawPointer(out + c).storeBytes(of: s, as: SIMD4<Scalar>.self)
        c += 4
    }
    while c < n {
        var s: Scalar = accumulate ? out[c] : 0
        for r in 0..<R { s += x[r] * W[r * n + c].scalar }
        out[c] = s
        c += 1
    }
}

/// `vecMat`'s register tiles of width V from column c on: 8 registers of output (eight independent
/// FMA chains, enough to hide FMA latency at two per cycle) across all R rows, then — at 8 lanes
/// only, where 4 registers still make eight 256-bit chains — 4. Returns the first column it left.
@inlinable @inline(__always)
func vecMatTiles<E: WeightElement, V: DenseVector>(_: V.Type, _ x: UnsafePointer<Scalar>, rows R: Int, _ W: UnsafePointer<E>,
                                                   columns n: Int, _ out: UnsafeMutablePointer<Scalar>, accumulate: Bool,
                                                   from c0: Int) -> Int {
    let v = V.scalarCount
    var c = c0
    while c + 8 * v <= n {
        let o = out + c
        var a0: V = accumulate ? loadV(o) : V(), a1: V = accumulate ? loadV(o + v) : V()
        var a2: V = accumulate ? loadV(o + 2 * v) : V(), a3: V = accumulate ? loadV(o + 3 * v) : V()
        var a4: V = accumulate ? loadV(o + 4 * v) : V(), a5: V = accumulate ? loadV(o + 5 * v) : V()
        var a6: V = accumulate ? loadV(o + 6 * v) : V(), a7: V = accumulate ? loadV(o + 7 * v) : V()
        var w = W + c
        for r in 0..<R {
            let s = V(repeating: x[r])
            a0 = a0.addingProduct(s, V.load(w)); a1 = a1.addingProduct(s, V.load(w + v))
            a2 = a2.addingProduct(s, V.load(w + 2 * v)); a3 = a3.addingProduct(s, V.load(w + 3 * v))
            a4 = a4.addingProduct(s, V.load(w + 4 * v)); a5 = a5.addingProduct(s, V.load(w + 5 * v))
            a6 = a6.addingProduct(s, V.load(w + 6 * v)); a7 = a7.addingProduct(s, V.load(w + 7 * v))
            w += n
        }
        storeV(a0, o); storeV(a1, o + v); storeV(a2, o + 2 * v); storeV(a3, o + 3 * v)
        storeV(a4, o + 4 * v); storeV(a5, o + 5 * v); storeV(a6, o + 6 * v); storeV(a7, o + 7 * v)
        c += 8 * v
    }
    while v == 8 && c + 4 * v <= n {
        let o = out + c
        var a0: V = accumulate ? loadV(o) : V(), a1: V = accumulate ? loadV(o + v) : V()
        var a2: V = accumulate ? loadV(o + 2 * v) : V(), a3: V = accumulate ? loadV(o + 3 * v) : V()
        var w = W + c
        for r in 0..<R {
            let s = V(repeating: x[r])
            a0 = a0.addingProduct(s, V.load(w)); a1 = a1.addingProduct(s, V.load(w + v))
            a2 = a2.addingProduct(s, V.load(w + 2 * v)); a3 = a3.addingProduct(s, V.load(w + 3 * v))
            w += n
        }
        storeV(a0, o); storeV(a1, o + v); storeV(a2, o + 2 * v); storeV(a3, o + 3 * v)
        c += 4 * v
    }
    return c
}

/// out (G, n) (+)= X (G, R) · W (R, n): G vectors (one per stream) times one row-major matrix.
///
/// The many-stream step's product: tiles of two registers' width of W (16 columns, or 32 in an
/// AVX-512 build) are read once for four vectors at a time (eight accumulators in registers, two
/// weight loads and four broadcasts per eight FMAs), column tile outermost so that a tile stays in
/// L1 while every group of four streams passes over it. Two leftover streams share tiles of four
/// registers' width; a last single one goes through `vecMat`. Rows of X are `inputStride` apart
/// (default R).
@inlinable
public func rowsMat<E: WeightElement>(_ X: UnsafePointer<Scalar>, rows G: Int, depth R: Int, _ W: UnsafePointer<E>, columns n: Int,
                                      _ out: UnsafeMutablePointer<Scalar>, accumulate: Bool, inputStride: Int? = nil) {
    rowsMat(X, rows: G, depth: R, W, columns: n, out, outputStride: n, accumulate: accumulate, inputStride: inputStride, strip: false)
}

/// `rowsMat` with rows of `out` `ldo` apart; with `strip` (W is one strip of a `StripMatrix`), a
/// single leftover stream takes `vecMat`'s register schedule, which reads a strip in order.
@inlinable @inline(__always)
func rowsMat<E: WeightElement>(_ X: UnsafePointer<Scalar>, rows G: Int, depth R: Int, _ W: UnsafePointer<E>, columns n: Int,
                               _ out: UnsafeMutablePointer<Scalar>, outputStride ldo: Int, accumulate: Bool, inputStride: Int?,
                               strip: Bool) {
    let g4 = G & ~3, ld = inputStride ?? R
    // Depth in panels of `rowsMatPanel` rows: a panel's slice of X (G × 128 floats) stays in L1
    // across all column tiles, and each column tile of the panel (8 KiB of float weights, 16 in an
    // AVX-512 build; 4 KiB of halves) across all streams.
    var r0 = 0
    while r0 < R && g4 > 0 {
        let r1 = min(R, r0 + rowsMatPanel), add = accumulate || r0 > 0
        var c = rowsMatFourStreams(E.Register.self, X, streams: g4, stride: ld, rows: r0..<r1, W, columns: n, out, add: add,
                                   from: 0, outputStride: ldo)
        if E.Register.scalarCount > 8 {
            c = rowsMatFourStreams(V8.self, X, streams: g4, stride: ld, rows: r0..<r1, W, columns: n, out, add: add,
                                   from: c, outputStride: ldo)
        }
        // Columns past the last tile.
        for g in 0..<g4 {
            let x = X + g * ld, o = out + g * ldo
            for cc in c..<n {
                var s: Scalar = add ? o[cc] : 0
                for r in r0..<r1 { s += x[r] * W[r * n + cc].scalar }
                o[cc] = s
            }
        }
        r0 = r1
    }
    var g = g4
    if G - g4 >= 2 {
        var c = rowsMatTwoStreams(E.Register.self, X + g * ld, stride: ld, rows: R, W, columns: n, out + g * ldo,
                                  accumulate: accumulate, from: 0, outputStride: ldo)
        if E.Register.scalarCount > 8 {
            c = rowsMatTwoStreams(V8.self, X + g * ld, stride: ld, rows: R, W, columns: n, out + g * ldo,
                                  accumulate: accumulate, from: c, outputStride: ldo)
        }
        for k in 0..<2 {
            let x = X + (g + k) * ld, o = out + (g + k) * ldo
            for cc in c..<n {
                var s: Scalar = accumulate ? o[cc] : 0
                for r in 0..<R { s += x[r] * W[r * n + cc].scalar }
                o[cc] = s
            }
        }
        g += 2
    }
    for g in g..<G {
        if strip { vecMatInRegisters(X + g * ld, rows: R, W, columns: n, out + g * ldo, accumulate: accumulate) }
        else { vecMat(X + g * ld, rows: R, W, columns: n, out + g * ldo, accumulate: accumulate) }
    }
}

/// `rowsMat`'s tiles for groups of four streams, width V, rows r0..<r1 of W, from column c0: two
/// registers of columns per stream. Returns the first column it left.
@inlinable @inline(__always)
func rowsMatFourStreams<E: WeightElement, V: DenseVector>(_: V.Type, _ X: UnsafePointer<Scalar>, streams g4: Int, stride ld: Int,
                                                          rows: Range<Int>, _ W: UnsafePointer<E>, columns n: Int,
                                                          _ out: UnsafeMutablePointer<Scalar>, add: Bool, from c0: Int,
                                                          outputStride: Int? = nil) -> Int {
    let v = V.scalarCount, ldo = outputStride ?? n
    var c = c0
    while c + 2 * v <= n {
        var g = 0
        while g < g4 {
            let x0 = X + g * ld, x1 = x0 + ld, x2 = x1 + ld, x3 = x2 + ld
            let o0 = out + g * ldo + c, o1 = o0 + ldo, o2 = o1 + ldo, o3 = o2 + ldo
            var a0: V = add ? loadV(o0) : V(), b0: V = add ? loadV(o0 + v) : V()
            var a1: V = add ? loadV(o1) : V(), b1: V = add ? loadV(o1 + v) : V()
            var a2: V = add ? loadV(o2) : V(), b2: V = add ? loadV(o2 + v) : V()
            var a3: V = add ? loadV(o3) : V(), b3: V = add ? loadV(o3 + v) : V()
            var w = W + rows.lowerBound * n + c
            for r in rows {
                let wa = V.load(w), wb = V.load(w + v)
                let s0 = V(repeating: x0[r]), s1 = V(repeating: x1[r]), s2 = V(repeating: x2[r]), s3 = V(repeating: x3[r])
                a0 = a0.addingProduct(s0, wa); b0 = b0.addingProduct(s0, wb)
                a1 = a1.addingProduct(s1, wa); b1 = b1.addingProduct(s1, wb)
                a2 = a2.addingProduct(s2, wa); b2 = b2.addingProduct(s2, wb)
                a3 = a3.addingProduct(s3, wa); b3 = b3.addingProduct(s3, wb)
                w += n
            }
            storeV(a0, o0); storeV(b0, o0 + v); storeV(a1, o1); storeV(b1, o1 + v)
            storeV(a2, o2); storeV(b2, o2 + v); storeV(a3, o3); storeV(b3, o3 + v)
            g += 4
        }
        c += 2 * v
    }
    return c
}

/// `rowsMat`'s tiles for two streams (rows of X `ld` apart), width V, from column `start`: four registers
/// of columns per stream (eight accumulators, four weight loads and two broadcasts per eight FMAs),
/// W read once for both. Returns the first column it left.
@inlinable @inline(__always)
func rowsMatTwoStreams<E: WeightElement, V: DenseVector>(_: V.Type, _ X: UnsafePointer<Scalar>, stride ld: Int, rows R: Int,
                                                         _ W: UnsafePointer<E>, columns n: Int, _ out: UnsafeMutablePointer<Scalar>,
                                                         accumulate: Bool, from start: Int, outputStride: Int? = nil) -> Int {
    let v = V.scalarCount, x0 = X, x1 = X + ld, ldo = outputStride ?? n
    var c = start
    while c + 4 * v <= n {
        let o0 = out + c, o1 = o0 + ldo
        var a0: V = accumulate ? loadV(o0) : V(), b0: V = accumulate ? loadV(o0 + v) : V()
        var c0: V = accumulate ? loadV(o0 + 2 * v) : V(), d0: V = accumulate ? loadV(o0 + 3 * v) : V()
        var a1: V = accumulate ? loadV(o1) : V(), b1: V = accumulate ? loadV(o1 + v) : V()
        var c1: V = accumulate ? loadV(o1 + 2 * v) : V(), d1: V = accumulate ? loadV(o1 + 3 * v) : V()
        var w = W + c
        for r in 0..<R {
            let wa = V.load(w), wb = V.load(w + v), wc = V.load(w + 2 * v), wd = V.load(w + 3 * v)
            let s0 = V(repeating: x0[r]), s1 = V(repeating: x1[r])
            a0 = a0.addingProduct(s0, wa); b0 = b0.addingProduct(s0, wb); c0 = c0.addingProduct(s0, wc); d0 = d0.addingProduct(s0, wd)
            a1 = a1.addingProduct(s1, wa); b1 = b1.addingProduct(s1, wb); c1 = c1.addingProduct(s1, wc); d1 = d1.addingProduct(s1, wd)
            w += n
        }
        storeV(a0, o0); storeV(b0, o0 + v); storeV(c0, o0 + 2 * v); storeV(d0, o0 + 3 * v)
        storeV(a1, o1); storeV(b1, o1 + v); storeV(c1, o1 + 2 * v); storeV(d1, o1 + 3 * v)
        c += 4 * v
    }
    return c
}

/// An (R, n) weight matrix stored for the per-sample paths alone, in strips of `stripColumns`
/// columns (8 of its element's registers: 64 half weights): strip k holds columns
/// [k·w, min(n, (k+1)·w)) row-major, strips one after another.
///
/// Why: a row-major matrix too large for L1 makes `vecMat` stream it 8 rows per pass, with 8 rows'
/// read streams and a load and a store of `out` per 64 weights. Over a strip, `vecMat`'s register
/// tiles hold all of the strip's outputs across all R rows and read W strictly in order. Half
/// weights are stored so (blocks and training read the float copy). On Zen 4 (one core, the 4-layer
/// S5 step of H = P = 256, 2 MiB of halves from L3) `Benchmarks/streams/schedules.c`, a C model of
/// both schedules, runs in 42–44 µs per sample row by row and 25–26 µs in strips; float weights
/// row by row, 54–59 µs.
public struct StripMatrix<E: WeightElement>: @unchecked Sendable {
    public let rows: Int, columns: Int
    @usableFromInline let base: UnsafeMutablePointer<E>

    /// Columns per strip: 8 registers of E's.
    @inlinable public static var stripColumns: Int { 8 * E.Register.scalarCount }

    /// Wraps `base`, which holds rows × columns elements in strip order (`Arena.halfStrips` makes one).
    @inlinable init(rows: Int, columns: Int, base: UnsafeMutablePointer<E>) {
        self.rows = rows; self.columns = columns; self.base = base
    }

    /// Where element (r, c) of the (R, n) matrix is stored.
    @inlinable public static func offset(row r: Int, column c: Int, rows R: Int, columns n: Int) -> Int {
        let w = stripColumns, k = c / w, width = min(w, n - k * w)
        return k * w * R + r * width + (c - k * w)
    }

    /// Element (r, c).
    @inlinable public subscript(r: Int, c: Int) -> E { base[Self.offset(row: r, column: c, rows: rows, columns: columns)] }

    /// Each strip in turn: its first column, its width and its (rows, width) row-major elements.
    @inlinable @inline(__always)
    func forEachStrip(_ body: (_ column: Int, _ width: Int, _ strip: UnsafePointer<E>) -> Void) {
        var c = 0, strip = UnsafePointer(base)
        while c < columns {
            let width = min(Self.stripColumns, columns - c)
            body(c, width, strip)
            strip += rows * width; c += width
        }
    }
}

/// out[0..<n] (+)= x · W over a `StripMatrix`: `vecMat`'s register schedule, strip by strip.
@inlinable
public func vecMat<E: WeightElement>(_ x: UnsafePointer<Scalar>, _ W: StripMatrix<E>, _ out: UnsafeMutablePointer<Scalar>,
                                     accumulate: Bool) {
    W.forEachStrip { c, width, strip in
        vecMatInRegisters(x, rows: W.rows, strip, columns: width, out + c, accumulate: accumulate)
    }
}

/// out (G, n) (+)= X (G, R) · W over a `StripMatrix`: `rowsMat` strip by strip (rows of X
/// `inputStride` apart, default R).
@inlinable
public func rowsMat<E: WeightElement>(_ X: UnsafePointer<Scalar>, rows G: Int, _ W: StripMatrix<E>,
                                      _ out: UnsafeMutablePointer<Scalar>, accumulate: Bool, inputStride: Int? = nil) {
    W.forEachStrip { c, width, strip in
        rowsMat(X, rows: G, depth: W.rows, strip, columns: width, out + c, outputStride: W.columns, accumulate: accumulate,
                inputStride: inputStride, strip: true)
    }
}

/// Depth of `rowsMat`'s panels (rows of W per pass).
public let rowsMatPanel = 128

/// Weight bytes up to which `vecMat` keeps output tiles in registers (a 32 KiB L1d; measured on
/// Zen 3: tiles win up to H = P = 64, row streaming above).
/// A constant: the numeric library reads no environment (it was once an undocumented
/// SSM_TILE_LIMIT variable, for an experiment).
public let vecMatTileLimitBytes = 32 * 1024

/// The row-streaming schedule of `vecMat`: 8 rows per pass over the full width, 8 lanes wide in
/// every build (it is bound by how fast W streams in: on Zen 4, 16 lanes made the H = P = 256 S5
/// step 5 % slower with float weights, and converting 16 halves at a time did not pay either).
@inlinable
func vecMatStreaming<E: WeightElement>(_ x: UnsafePointer<Scalar>, rows R: Int, _ W: UnsafePointer<E>, columns n: Int,
                                       _ out: UnsafeMutablePointer<Scalar>, accumulate: Bool) {
    if !accumulate { out.update(repeating: 0, count: n) }
    let n8 = n & ~7
    var r = 0
    while r < R {
        let rows = min(8, R - r)
        let w = W + r * n
        if rows == 8 {
            let s0 = V8(repeating: x[r]), s1 = V8(repeating: x[r + 1]), s2 = V8(repeating: x[r + 2]), s3 = V8(repeating: x[r + 3])
            let s4 = V8(repeating: x[r + 4]), s5 = V8(repeating: x[r + 5]), s6 = V8(repeating: x[r + 6]), s7 = V8(repeating: x[r + 7])
            var c = 0
            while c < n8 {
                // Two partial sums (rows 0–3, 4–7) halve the dependent FMA chain.
                var a = load8(out + c).addingProduct(s0, E.load8(w + c)), b = s4 * E.load8(w + 4 * n + c)
                a = a.addingProduct(s1, E.load8(w + n + c)); b = b.addingProduct(s5, E.load8(w + 5 * n + c))
                a = a.addingProduct(s2, E.load8(w + 2 * n + c)); b = b.addingProduct(s6, E.load8(w + 6 * n + c))
                a = a.addingProduct(s3, E.load8(w + 3 * n + c)); b = b.addingProduct(s7, E.load8(w + 7 * n + c))
                store8(a + b, out + c)
                c += 8
            }
        } else {
            for j in 0..<rows {
                let s = V8(repeating: x[r + j])
                var c = 0
                while c < n8 { store8(load8(out + c).addingProduct(s, E.load8(w + j * n + c)), out + c); c += 8 }
            }
        }
        for c in n8..<n { for j in 0..<rows { out[c] += x[r + j] * w[j * n + c].scalar } }
        r += rows
    }
}

/// C (M, N) = op(A) (M, K) · op(B) (K, N) + beta·C, row-major, through BLAS (sgemm; dgemm in the
/// float64 build). op(X) is X or, with `transA`/`transB`, Xᵀ: the backward passes multiply by the
/// transposed weights and form weight gradients as Xᵀ·dY over the same buffers. Leading dimensions
/// default to dense storage (rows of A are `lda` apart: K, or M when transposed).
@inlinable
public func gemm(_ A: UnsafePointer<Scalar>, _ B: UnsafePointer<Scalar>, _ C: UnsafeMutablePointer<Scalar>,
                 M: Int, N: Int, K: Int, beta: Scalar = 0, lda: Int? = nil,
                 transA: Bool = false, transB: Bool = false, ldb: Int? = nil, ldc: Int? = nil) {
    let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
    let la = Int32(lda ?? (transA ? M : K)), lb = Int32(ldb ?? (transB ? K : N)), lc = Int32(ldc ?? N)
    #if SSM_FLOAT64
    cblas_dgemm(CblasRowMajor, ta, tb, Int32(M), Int32(N), Int32(K), 1, A, la, B, lb, beta, C, lc)
    #else
    cblas_sgemm(CblasRowMajor, ta, tb, Int32(M), Int32(N), Int32(K), 1, A, la, B, lb, beta, C, lc)
    #endif
}

/// Use one BLAS thread (the engine runs one stream per core; OpenBLAS would otherwise spawn a pool).
public func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

/// OpenBLAS's build description (core, threading), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64".
public var blasConfiguration: String { String(cString: openblas_get_config()) }

/// What the scan core's SIMD was compiled for (Package.swift defines SSM_TARGET_CPU_FMA when it
/// targets a CPU with FMA, and SSM_SIMD512 when that CPU has AVX-512).
public var simdTarget: String {
    #if SSM_SIMD512
    return "16-lane dense kernels, 8-lane scan, fused multiply-add (AVX-512 target)"
    #elseif SSM_TARGET_CPU_FMA
    return "8-lane SIMD with fused multiply-add (AVX2+FMA target)"
    #else
    return "baseline target without FMA (slower: see SSM_TARGET_CPU in the README)"
    #endif
}
