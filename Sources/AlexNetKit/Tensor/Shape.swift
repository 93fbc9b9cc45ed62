/// The dimensions of a tensor, outermost first (NCHW for images: `[N, C, H, W]`).
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    /// The extent of each dimension, outermost first.
    public var dims: [Int]

    /// Creates a shape from its dimensions; every extent must be non-negative.
    public init(_ dims: [Int]) {
        precondition(dims.allSatisfy { $0 >= 0 }, "Shape \(dims) has a negative extent")
        self.dims = dims
    }

    public init(arrayLiteral elements: Int...) { self.init(elements) }

    /// Number of dimensions.
    public var rank: Int { dims.count }

    /// Number of elements (the product of the extents; 1 for a scalar).
    public var count: Int { dims.reduce(1, *) }

    /// The extent of dimension `i`.
    public subscript(i: Int) -> Int { dims[i] }

    /// Row-major strides in elements.
    public var strides: [Int] {
        var result = [Int](repeating: 1, count: dims.count)
        var stride = 1
        for i in dims.indices.reversed() {
            result[i] = stride
            stride *= dims[i]
        }
        return result
    }

    /// `[2, 3, 4]`.
    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
}
