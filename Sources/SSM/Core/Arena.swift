/// Memory for a model's weights and state, allocated once and freed with its owner. Layers keep raw
/// pointers into it, so the per-sample path touches no reference counts and no Array machinery.
public final class Arena: @unchecked Sendable {
    private var chunks: [UnsafeMutablePointer<Float>] = []
    /// Total floats handed out.
    public private(set) var count = 0

    public init() {}

    /// n zero-initialized floats (at least one, so the pointer is always valid).
    public func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        p.initialize(repeating: 0, count: max(n, 1))
        chunks.append(p)
        count += n
        return p
    }

    /// A copy of `values`.
    public func copy(_ values: [Float]) -> UnsafeMutablePointer<Float> {
        let p = floats(values.count)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: values.count) }
        return p
    }

    deinit { for p in chunks { p.deallocate() } }
}

/// A problem with a model: its file, its description or its values. The message names the tensor,
/// the field or the value, so a user can act on it.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
