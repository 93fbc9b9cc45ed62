/// A dense, contiguous, row-major tensor (NCHW for images).
///
/// Storage is a Swift array, so copies are cheap until written (copy on write).
/// Every operation that takes a shape checks it and throws ``ShapeError`` on a
/// mismatch; nothing reads past the end of the storage.
public struct Tensor<Element: TensorElement>: CustomStringConvertible {
    /// The dimensions, outermost first.
    public private(set) var shape: Shape
    /// The elements in row-major order; `storage.count == shape.count` always.
    public private(set) var storage: [Element]

    /// A tensor of `shape` with every element equal to `value`.
    public init(shape: Shape, repeating value: Element = 0) {
        self.shape = shape
        self.storage = [Element](repeating: value, count: shape.count)
        // An empty array may have no buffer; reserving one keeps `baseAddress`
        // non-nil, so kernels need no special case for empty tensors.
        if storage.isEmpty { storage.reserveCapacity(1) }
    }

    /// A tensor of `shape` holding `values` in row-major order.
    /// - Throws: ``ShapeError`` if `values.count` is not the shape's element count.
    public init(shape: Shape, values: [Element]) throws {
        guard values.count == shape.count else {
            throw ShapeError(operation: "Tensor", argument: "values",
                             expected: "\(shape.count) elements for shape \(shape)",
                             actual: Shape([values.count]))
        }
        self.shape = shape
        self.storage = values
        if storage.isEmpty { storage.reserveCapacity(1) }
    }

    /// A tensor of `shape` made from the buffer in `slot` when it holds the same
    /// number of elements, else a new one; `slot` is emptied either way.
    ///
    /// Layers keep their last output in a slot and recycle it on the next pass,
    /// so a training step does not map and zero fresh pages for every
    /// activation. When nobody else still holds the old tensor its storage is
    /// reused in place; otherwise copy-on-write gives a private copy, so a
    /// caller's tensor never changes under it. Without `zeroed` the contents are
    /// stale and the caller must write every element.
    public static func recycling(_ slot: inout Tensor?, shape: Shape, zeroed: Bool) -> Tensor {
        guard var tensor = slot, tensor.storage.count == shape.count, !shape.dims.isEmpty else {
            slot = nil
            return Tensor(shape: shape)
        }
        slot = nil  // drop this reference, so `tensor` may be the only one
        tensor.shape = shape
        if zeroed { tensor.storage.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        return tensor
    }

    /// Makes this tensor `shape` within its storage's capacity where it fits
    /// (no allocation), zero-filled when `zeroed` (otherwise the contents are stale).
    mutating func reuse(shape: Shape, zeroed: Bool) {
        let count = shape.count
        let kept = min(storage.count, count)
        if storage.count > count {
            storage.removeLast(storage.count - count)
        } else if storage.count < count {
            storage.reserveCapacity(count)
            storage.append(contentsOf: repeatElement(0, count: count - storage.count))
        }
        self.shape = shape
        // Only the kept elements can be stale: the appended ones are zeros already.
        if zeroed { storage.withUnsafeMutableBufferPointer { $0.baseAddress?.update(repeating: 0, count: kept) } }
    }

    /// Converts every element from another element type (rounding to nearest).
    public init<Other: TensorElement>(converting other: Tensor<Other>) {
        self.shape = other.shape
        self.storage = other.storage.map { Element($0) }
    }

    /// Number of elements.
    public var count: Int { storage.count }

    /// The element at a multi-dimensional index (checked; for tests and small work, not hot loops).
    public subscript(_ index: Int...) -> Element {
        get { storage[flatIndex(index)] }
        set { storage[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.rank, "index \(index) has rank \(index.count), tensor has shape \(shape)")
        var flat = 0
        for (i, extent) in zip(index, shape.dims) {
            precondition(i >= 0 && i < extent, "index \(index) is outside shape \(shape)")
            flat = flat * extent + i
        }
        return flat
    }

    /// The same elements under another shape with the same element count.
    /// - Throws: ``ShapeError`` if the counts differ.
    public func reshaped(_ newShape: Shape) throws -> Tensor {
        guard newShape.count == shape.count else {
            throw ShapeError(operation: "reshape", argument: "tensor",
                             expected: "\(newShape.count) elements to reshape to \(newShape)", actual: shape)
        }
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// Read access to the contiguous storage.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    /// Write access to the contiguous storage (the shape cannot change).
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Element>) throws -> R
    ) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// True when both tensors have the same shape and the same bit pattern in every element.
    public func isBitwiseEqual(to other: Tensor) -> Bool {
        guard shape == other.shape else { return false }
        for i in 0..<storage.count where storage[i].rawBits != other.storage[i].rawBits {
            return false
        }
        return true
    }

    public var description: String {
        let preview = storage.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor<\(Element.dtypeName)>\(shape) [\(preview)\(storage.count > 8 ? ", ..." : "")]"
    }
}

extension Tensor {
    /// Checks that the tensor has rank `dims.count` and, where `dims[i]` is not nil,
    /// the given extent. Used by layers to validate their inputs.
    ///
    /// - Parameters:
    ///   - dims: the expected extents, `nil` for "any" (e.g. the batch size).
    ///   - operation: the layer's name, for the error message.
    ///   - argument: which argument this tensor is, for the error message.
    /// - Throws: ``ShapeError`` naming the operation, the expected pattern and the actual shape.
    public func requireShape(_ dims: [Int?], operation: String, argument: String = "input") throws {
        let matches = shape.rank == dims.count
            && zip(shape.dims, dims).allSatisfy { actual, expected in expected == nil || expected == actual }
        if !matches {
            let pattern = "[" + dims.enumerated().map { i, d in
                d.map(String.init) ?? (dims.count == 4 ? ["N", "C", "H", "W"][i] : dims.count == 2 ? ["N", "F"][i] : "*")
            }.joined(separator: ", ") + "]"
            throw ShapeError(operation: operation, argument: argument, expected: pattern, actual: shape)
        }
    }

    /// Checks that the tensor's shape is exactly `expected`.
    /// - Throws: ``ShapeError`` naming the operation and both shapes.
    public func requireShape(_ expected: Shape, operation: String, argument: String) throws {
        if shape != expected {
            throw ShapeError(operation: operation, argument: argument, expected: expected.description, actual: shape)
        }
    }
}
