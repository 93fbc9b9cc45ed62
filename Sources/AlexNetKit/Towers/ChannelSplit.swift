/// Splitting and joining activations along dimension 1 (channels or features),
/// the dimension the paper's two GPUs divide between them.
extension Tensor {
    /// The elements of dimension 1 in `range`, for every image: `[N, range.count, ...]`.
    /// - Throws: ``ShapeError`` if the tensor has rank < 2 or the range is outside dimension 1.
    public func slice(channels range: Range<Int>) throws -> Tensor {
        guard shape.rank >= 2, range.lowerBound >= 0, range.upperBound <= shape[1] else {
            throw ShapeError(operation: "slice(channels: \(range))", argument: "tensor",
                             expected: "[N, C, ...] with C >= \(range.upperBound)", actual: shape)
        }
        let inner = shape.dims.dropFirst(2).reduce(1, *)
        var dims = shape.dims
        dims[1] = range.count
        var result = Tensor(shape: Shape(dims))
        let (images, width, full) = (shape[0], range.count * inner, shape[1] * inner)
        withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                for n in 0..<images {
                    (target.baseAddress! + n * width)
                        .update(from: source.baseAddress! + n * full + range.lowerBound * inner, count: width)
                }
            }
        }
        return result
    }

    /// Joins tensors along dimension 1, in order: `[N, C0, ...] + [N, C1, ...] -> [N, C0 + C1, ...]`.
    /// - Throws: ``ShapeError`` if the parts differ in any other dimension.
    public static func concatenate(channels parts: [Tensor]) throws -> Tensor {
        guard let first = parts.first, first.shape.rank >= 2 else {
            throw ShapeError(operation: "concatenate(channels:)", argument: "parts", expected: "at least one [N, C, ...]",
                             actual: parts.first?.shape ?? Shape([0]))
        }
        for part in parts where part.shape.rank != first.shape.rank
            || part.shape[0] != first.shape[0] || part.shape.dims.dropFirst(2) != first.shape.dims.dropFirst(2) {
            throw ShapeError(operation: "concatenate(channels:)", argument: "part",
                             expected: "[\(first.shape[0]), C, \(first.shape.dims.dropFirst(2).map(String.init).joined(separator: ", "))]",
                             actual: part.shape)
        }
        let inner = first.shape.dims.dropFirst(2).reduce(1, *)
        var dims = first.shape.dims
        dims[1] = parts.reduce(0) { $0 + $1.shape[1] }
        var result = Tensor(shape: Shape(dims))
        let images = first.shape[0], full = dims[1] * inner
        result.withUnsafeMutableBufferPointer { target in
            var offset = 0
            for part in parts {
                let width = part.shape[1] * inner
                part.withUnsafeBufferPointer { source in
                    for n in 0..<images {
                        (target.baseAddress! + n * full + offset).update(from: source.baseAddress! + n * width, count: width)
                    }
                }
                offset += width
            }
        }
        return result
    }

    /// Rows `[t * rows/towers, (t+1) * rows/towers)` of dimension 0: what tower `t` holds of a parameter.
    public func towerRows(_ t: Int, of towers: Int) throws -> Tensor {
        let rows = shape[0] / towers
        return try sliceRows(t * rows..<(t + 1) * rows)
    }

    /// Tower `t`'s half of dimension 1.
    public func towerChannels(_ t: Int, of towers: Int) throws -> Tensor {
        let width = shape[1] / towers
        return try slice(channels: t * width..<(t + 1) * width)
    }

    /// Parameters stacked along dimension 0 (towers' rows back into one weight).
    public static func concatenateRows(_ parts: [Tensor]) throws -> Tensor {
        guard let first = parts.first else {
            throw ShapeError(operation: "concatenate rows", argument: "parts", expected: "at least one", actual: Shape([0]))
        }
        var dims = first.shape.dims
        dims[0] = parts.reduce(0) { $0 + $1.shape[0] }
        return try Tensor(shape: Shape(dims), values: parts.flatMap(\.storage))
    }
}

extension Tensor {
    /// Rows `range` of dimension 0: `[range.count, ...]` (a tower's block of a weight).
    public func sliceRows(_ range: Range<Int>) throws -> Tensor {
        guard shape.rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw ShapeError(operation: "sliceRows(\(range))", argument: "tensor",
                             expected: "at least \(range.upperBound) rows", actual: shape)
        }
        let rowSize = shape.count / max(1, shape[0])
        var dims = shape.dims
        dims[0] = range.count
        return try Tensor(shape: Shape(dims), values: Array(storage[range.lowerBound * rowSize..<range.upperBound * rowSize]))
    }
}
