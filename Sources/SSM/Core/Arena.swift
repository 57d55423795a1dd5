/// Memory for a model's weights and state, allocated once and freed with its owner. Layers keep raw
/// pointers into it, so the per-sample path touches no reference counts and no Array machinery.
public final class Arena: @unchecked Sendable {
    private var chunks: [UnsafeMutablePointer<Scalar>] = []
    private var sizes: [Int] = []
    private var halfChunks: [UnsafeMutablePointer<Float16>] = []
    /// Total floats handed out.
    public private(set) var count = 0

    public init() {}

    /// Every buffer starts on a 64-byte boundary. malloc's 16-byte alignment put a buffer's 32-byte
    /// SIMD loads across cache lines at every other load whenever its address was 16 or 48 past a
    /// line: S4D's step (H = N = 64: 64 KiB of coefficients and state per sample) then ran about
    /// 20 % slower, or not, as the allocator placed it (README, "Performance").
    static let alignment = 64

    /// n zero-initialized floats (at least one, so the pointer is always valid), 64-byte aligned.
    public func floats(_ n: Int) -> UnsafeMutablePointer<Scalar> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * MemoryLayout<Scalar>.stride, alignment: Self.alignment)
            .bindMemory(to: Scalar.self, capacity: max(n, 1))
        p.initialize(repeating: 0, count: max(n, 1))
        chunks.append(p)
        sizes.append(max(n, 1))
        count += n
        return p
    }

    /// A half-precision copy (rounded to nearest) of the row-major (R, n) matrix `values`, in strips
    /// (`StripMatrix`): the weights a half-precision model's step reads. Not part of the float layout
    /// (`zero`, `add`, `update` and `count` are about floats).
    public func halfStrips(_ values: UnsafePointer<Scalar>, rows R: Int, columns n: Int) -> StripMatrix<Float16> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(R * n, 1) * MemoryLayout<Float16>.stride, alignment: Self.alignment)
            .bindMemory(to: Float16.self, capacity: max(R * n, 1))
        p.initialize(repeating: 0, count: max(R * n, 1))
        for r in 0..<R {
            for c in 0..<n { p[StripMatrix<Float16>.offset(row: r, column: c, rows: R, columns: n)] = Float16(values[r * n + c]) }
        }
        halfChunks.append(p)
        return StripMatrix(rows: R, columns: n, base: p)
    }

    /// A copy of `values`.
    public func copy(_ values: [Scalar]) -> UnsafeMutablePointer<Scalar> {
        let p = floats(values.count)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: values.count) }
        return p
    }

    /// Sets every float to zero (a gradient twin at the start of a batch).
    public func zero() {
        for (p, n) in zip(chunks, sizes) { p.update(repeating: 0, count: n) }
    }

    /// Whether `other` was filled by the same sequence of requests (the same model built twice).
    public func hasLayout(of other: Arena) -> Bool { sizes == other.sizes }

    /// self ← self + other, chunk by chunk (arenas of the same layout: per-thread gradients summed).
    public func add(_ other: Arena) {
        precondition(hasLayout(of: other), "Arena.add: layouts differ")
        for i in chunks.indices { let a = chunks[i], b = other.chunks[i]; for j in 0..<sizes[i] { a[j] += b[j] } }
    }

    /// self ← other, chunk by chunk (engine buffers refilled in place from a freshly compiled model).
    public func update(from other: Arena) {
        precondition(hasLayout(of: other), "Arena.update: layouts differ")
        for i in chunks.indices { chunks[i].update(from: other.chunks[i], count: sizes[i]) }
    }

    deinit { for p in chunks { UnsafeMutableRawPointer(p).deallocate() }; for p in halfChunks { UnsafeMutableRawPointer(p).deallocate() } }
}

/// A problem with a model: its file, its description or its values. The message names the tensor,
/// the field or the value, so a user can act on it.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
