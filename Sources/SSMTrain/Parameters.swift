import SSM

/// The trainable parameters: every tensor the model file stores, under its upstream name, laid out
/// flat in name order (name → offset, shape), with the gradient beside it. The optimizer keeps its
/// moments in the same layout. Shapes: values, gradients (count).
public final class ParameterStore {
    public let names: [String]
    public let shapes: [[Int]]
    public let offsets: [Int]
    public let count: Int
    public var values: [Scalar]
    public var gradients: [Scalar]
    /// Per tensor: whether it is in the SSM group (own learning rate, no weight decay).
    public let isSSM: [Bool]
    /// Per tensor: whether weight decay applies (matrices outside the SSM group; not biases or norms).
    public let decays: [Bool]

    public init(_ tensors: [String: Tensor], ssmNames: Set<String>) {
        let names = tensors.keys.sorted(), shapes = names.map { tensors[$0]!.shape }
        self.names = names; self.shapes = shapes
        var offsets: [Int] = [], n = 0
        for name in names { offsets.append(n); n += tensors[name]!.values.count }
        self.offsets = offsets; count = n
        values = names.flatMap { tensors[$0]!.values }
        gradients = [Scalar](repeating: 0, count: n)
        isSSM = names.map { ssmNames.contains($0) }
        decays = names.indices.map { i in !ssmNames.contains(names[i]) && shapes[i].filter { $0 > 1 }.count >= 2 }
    }

    public func range(_ i: Int) -> Range<Int> { offsets[i]..<(i + 1 < offsets.count ? offsets[i + 1] : count) }

    /// The parameters as the model's tensors (what `Model(spec:tensors:)` compiles and a file stores).
    public var tensors: [String: Tensor] {
        var t: [String: Tensor] = [:]
        for (i, name) in names.enumerated() { t[name] = Tensor(shape: shapes[i], values: Array(values[range(i)])) }
        return t
    }

    /// Gradients by tensor name (from `Model.parameterGradients`) into the flat buffer.
    public func setGradients(_ g: [String: [Scalar]]) {
        for (i, name) in names.enumerated() {
            let r = range(i), v = g[name]!
            precondition(v.count == r.count, "gradient of '\(name)' has \(v.count) values, expected \(r.count)")
            gradients.replaceSubrange(r, with: v)
        }
    }

    /// Values of one tensor, mutable (for projections such as S5's eigenvalue clip).
    public func withTensor(_ name: String, _ body: (inout ArraySlice<Scalar>) -> Void) {
        guard let i = names.firstIndex(of: name) else { return }
        var slice = values[range(i)]
        body(&slice)
        values.replaceSubrange(range(i), with: slice)
    }
}
