extension Tensor {
    /// Index of the first NaN or infinity, or nil when every element is finite.
    ///
    /// Cheap enough to call on every loss and gradient during training: one pass,
    /// SIMD-wide. `x - x` is 0 for finite `x` and NaN for NaN and ±infinity, so a
    /// lane-wise `!= 0` (NaN compares unequal) finds both in one test.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func firstNonFiniteIndex() -> Int? {
        withUnsafeBufferPointer { buffer -> Int? in
            let width = Element.Vector.scalarCount
            var i = 0
            if let base = buffer.baseAddress {
                while i + width <= buffer.count {
                    let v = UnsafeRawPointer(base + i).loadUnaligned(as: Element.Vector.self)
                    let probe = v - v
                    if any(probe .!= Element.Vector(repeating: 0)) { break }
                    i += width
                }
            }
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
