extension Tensor {
    /// Index of the first NaN or infinity, or nil when every element is finite.
    ///
    /// Cheap enough to call on every loss, gradient and weight during training:
    /// one pass at memory speed. `x - x` is 0 for finite `x` and NaN for NaN and
    /// ±infinity, and a NaN survives addition, so a block of vectors is summed
    /// as `x - x` with vector arithmetic only and its lanes are tested once per
    /// block; only a block that holds a bad element is scanned element by
    /// element. (A lane-wise comparison per vector would compile, in this generic
    /// code, to the SIMD protocol's lane-by-lane fallback: Docs/performance.md.)
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func firstNonFiniteIndex() -> Int? {
        withUnsafeBufferPointer { buffer -> Int? in
            let width = Element.Vector.scalarCount
            let block = 16 * width
            var start = 0
            if let base = buffer.baseAddress {
                while start + block <= buffer.count {
                    var sum = Element.Vector(repeating: 0)
                    var i = start
                    while i < start + block {
                        let v = UnsafeRawPointer(base + i).loadUnaligned(as: Element.Vector.self)
                        sum += v - v
                        i += width
                    }
                    var clean = true
                    for lane in 0..<width where !(sum[lane] == 0) { clean = false }
                    if !clean { break }
                    start += block
                }
            }
            var i = start
            while i < buffer.count {
                if !buffer[i].isFinite { return i }
                i += 1
            }
            return nil
        }
    }

    /// Throws ``NonFiniteError`` naming `name`, the first bad element and how many
    /// there are, if any element is NaN or infinite.
    public func checkFinite(name: String) throws {
        guard let first = firstNonFiniteIndex() else { return }
        let bad = storage.lazy.filter { !$0.isFinite }.count
        let value = storage[first]
        let word = value.isNaN ? "nan" : (value > 0 ? "+inf" : "-inf")
        var position = [Int](repeating: 0, count: shape.rank)
        var rest = first
        for (axis, stride) in shape.strides.enumerated() {
            position[axis] = rest / stride
            rest %= stride
        }
        throw NonFiniteError(tensor: name, index: first, position: position, value: word, count: bad)
    }
}
