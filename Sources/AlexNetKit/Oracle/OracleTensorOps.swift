/// Rearrangements the oracle uses to build convention variants: halves
/// swapped, layouts permuted, kernels flipped, mantissas rounded.
extension Tensor {
    /// The two halves of dimension 1 swapped: what the other tower holds first.
    /// - Throws: ``ShapeError`` unless rank >= 2 and dimension 1 is even.
    func swappingHalvesOfDimension1() throws -> Tensor {
        guard shape.rank >= 2, shape[1] % 2 == 0 else {
            throw ShapeError(operation: "swap halves", argument: "tensor", expected: "[N, even, ...]", actual: shape)
        }
        let half = shape[1] / 2
        return try Tensor.concatenate(channels: [slice(channels: half..<shape[1]), slice(channels: 0..<half)])
    }

    /// The two halves of dimension 0 (a weight's rows) swapped.
    /// - Throws: ``ShapeError`` unless dimension 0 is even.
    func swappingRowHalves() throws -> Tensor {
        guard shape.rank >= 1, shape[0] % 2 == 0 else {
            throw ShapeError(operation: "swap row halves", argument: "tensor", expected: "[even, ...]", actual: shape)
        }
        let half = shape[0] / 2
        return try Tensor(shape: shape, values: Array(sliceRows(half..<shape[0]).storage + sliceRows(0..<half).storage))
    }

    /// `[N, H, W, C]` permuted to `[N, C, H, W]`.
    func permutingNHWCToNCHW() throws -> Tensor {
        guard shape.rank == 4 else {
            throw ShapeError(operation: "NHWC to NCHW", argument: "tensor", expected: "[N, H, W, C]", actual: shape)
        }
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        var out = [Element](repeating: 0, count: count)
        for i in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    for k in 0..<c { out[((i * c + k) * h + y) * w + x] = storage[((i * h + y) * w + x) * c + k] }
                }
            }
        }
        return try Tensor(shape: [n, c, h, w], values: out)
    }

    /// The elements read as `[N, H, W, C]` (NHWC data under an NCHW shape `[N, C, H, W]`), then permuted to NCHW.
    func reinterpretingNHWCData() throws -> Tensor {
        guard shape.rank == 4 else {
            throw ShapeError(operation: "NHWC data", argument: "tensor", expected: "[N, C, H, W]", actual: shape)
        }
        return try reshaped([shape[0], shape[2], shape[3], shape[1]]).permutingNHWCToNCHW()
    }

    /// `[N, C, H, W]` flattened channel-last: each image's elements in H, W, C order, as an NHWC framework flattens.
    func flatteningChannelLast() throws -> Tensor {
        guard shape.rank == 4 else { return self }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        var out = [Element](repeating: 0, count: count)
        for i in 0..<n {
            for k in 0..<c {
                for y in 0..<h {
                    for x in 0..<w { out[((i * h + y) * w + x) * c + k] = storage[((i * c + k) * h + y) * w + x] }
                }
            }
        }
        return try Tensor(shape: shape, values: out)
    }

    /// A convolution kernel `[O, C, kh, kw]` rotated by 180 degrees (true convolution instead of cross-correlation).
    func flippingKernel() throws -> Tensor {
        guard shape.rank == 4 else { return self }
        let (o, c, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
        var out = storage
        for a in 0..<(o * c) {
            for y in 0..<kh {
                for x in 0..<kw { out[(a * kh + y) * kw + x] = storage[(a * kh + (kh - 1 - y)) * kw + (kw - 1 - x)] }
            }
        }
        return try Tensor(shape: shape, values: out)
    }

    /// Every element rounded to TF32 (Float32 with a 10-bit mantissa), to nearest even or truncated.
    /// Float64 tensors are returned unchanged (TF32 is a Float32 tensor-core format).
    func roundedToTF32(truncating: Bool) -> Tensor {
        guard MemoryLayout<Element>.size == 4 else { return self }
        var copy = self
        copy.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices {
                var bits = Float(buffer[i]).bitPattern
                if !truncating { bits = bits &+ 0xFFF &+ ((bits >> 13) & 1) }
                bits &= ~UInt32(0x1FFF)
                buffer[i] = Element(Float(bitPattern: bits))
            }
        }
        return copy
    }

    /// `self + other`, element-wise, in that order.
    func adding(_ other: Tensor) throws -> Tensor {
        try other.requireShape(shape, operation: "add", argument: "other")
        var sum = self
        sum.withUnsafeMutableBufferPointer { s in
            for i in s.indices { s[i] += other.storage[i] }
        }
        return sum
    }

    /// Every element multiplied by `factor`.
    func scaled(by factor: Element) -> Tensor {
        var copy = self
        copy.withUnsafeMutableBufferPointer { s in for i in s.indices { s[i] *= factor } }
        return copy
    }
}
