/// A tensor arrived with a shape the operation cannot take.
///
/// The description names the operation (a layer's name, say), which argument was
/// wrong, what was expected and what arrived, so the caller can fix the call.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    /// The layer or function that refused the tensor, e.g. `"conv2"` or `"gemm"`.
    public var operation: String
    /// Which argument was wrong, e.g. `"input"` or `"outputGradient"`.
    public var argument: String
    /// What was expected, in words or as a shape pattern, e.g. `"[N, 96, 55, 55]"`.
    public var expected: String
    /// The shape that arrived.
    public var actual: Shape

    public init(operation: String, argument: String, expected: String, actual: Shape) {
        self.operation = operation
        self.argument = argument
        self.expected = expected
        self.actual = actual
    }

    public var description: String {
        "\(operation): \(argument) has shape \(actual), expected \(expected)"
    }
}

/// A layer was configured with settings that cannot work (a kernel larger than
/// the padded input, channels not divisible by groups, a dropout rate of 1, ...).
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The layer or component, e.g. `"conv1"`.
    public var component: String
    /// What is wrong and how to fix it.
    public var problem: String

    public init(component: String, problem: String) {
        self.component = component
        self.problem = problem
    }

    public var description: String { "\(component): \(problem)" }
}

/// A tensor held NaN or infinity where finite numbers are required.
public struct NonFiniteError: Error, CustomStringConvertible, Equatable {
    /// Which tensor, e.g. `"conv1.weight.gradient"` or `"loss"`.
    public var tensor: String
    /// Flat (row-major) index of the first non-finite element.
    public var index: Int
    /// The multi-dimensional index of that element.
    public var position: [Int]
    /// `"nan"`, `"+inf"` or `"-inf"`.
    public var value: String
    /// How many elements are not finite.
    public var count: Int

    public init(tensor: String, index: Int, position: [Int], value: String, count: Int) {
        self.tensor = tensor
        self.index = index
        self.position = position
        self.value = value
        self.count = count
    }

    public var description: String {
        "\(tensor): \(count) non-finite value(s); first is \(value) at index \(position) (flat \(index))"
    }
}
