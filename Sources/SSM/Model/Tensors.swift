/// A named, row-major tensor in memory (parameters before they are packed into an arena), in the
/// library's precision (files hold at most float32).
public struct Tensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Scalar]
    /// Stored as F16 in the file (values are then exact halves); a layer that has a half-precision
    /// step keeps these weights in half precision (`ssm-stream convert --weights f16`).
    public var half = false
    public init(shape: [Int], values: [Scalar]) { self.shape = shape; self.values = values }
    public init(_ values: [Double], shape: [Int]) { self.init(shape: shape, values: values.map { Scalar($0) }) }
    /// From a file's float32 values.
    public init(shape: [Int], floats: [Float]) { self.init(shape: shape, values: floats.map { Scalar($0) }) }
}

/// Hands a loader its tensors one by one: checks each exists, has the expected shape (size-1
/// dimensions aside, so `D` may be (H) or (1, H) as upstream exports differ) and finite values, and
/// remembers what was taken so that leftovers can be reported as unexpected.
public final class TensorReader {
    public let tensors: [String: Tensor]
    public private(set) var taken: Set<String> = []

    public init(_ tensors: [String: Tensor]) { self.tensors = tensors }

    public func has(_ name: String) -> Bool { tensors[name] != nil }

    /// Whether `name` is stored in half precision.
    public func isHalf(_ name: String) -> Bool { tensors[name]?.half ?? false }

    /// The values of `name`, whose shape must equal `shape` up to size-1 dimensions.
    /// Values are in the library's precision (`Scalar`; files store at most float32).
    public func take(_ name: String, _ shape: [Int]) throws(ModelError) -> [Scalar] {
        guard let t = tensors[name] else {
            throw ModelError("missing tensor '\(name)' (expected shape \(shape))")
        }
        let got = t.shape.filter { $0 != 1 }, want = shape.filter { $0 != 1 }
        guard got == want, t.values.count == shape.reduce(1, *) else {
            throw ModelError("tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        if let i = t.values.firstIndex(where: { !$0.isFinite }) {
            throw ModelError("tensor '\(name)' has a non-finite value (\(t.values[i])) at index \(i)")
        }
        taken.insert(name)
        return t.values
    }

    /// Complex values of a tensor stored with a trailing (re, im) dimension of 2.
    public func takeComplex(_ name: String, _ shape: [Int]) throws(ModelError) -> [(re: Double, im: Double)] {
        let v = try take(name, shape + [2])
        return (0..<(v.count / 2)).map { (Double(v[2 * $0]), Double(v[2 * $0 + 1])) }
    }

    /// Names present but never taken, sorted.
    public var unexpected: [String] { tensors.keys.filter { !taken.contains($0) }.sorted() }
}
