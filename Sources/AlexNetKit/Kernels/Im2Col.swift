/// Unfolds one image's channels into the im2col matrix, so that a convolution
/// becomes one matrix product: `output[o, p] = sum_r weight[o, r] * col[r, p]`.
///
/// - Parameters:
///   - image: `[channels, height, width]` of one image (one group's channels).
///   - geometry: window and output sizes.
///   - col: `[channels * kh * kw, outputHeight * outputWidth]`; row
///     `(c * kh + i) * kw + j` holds input pixel `(c, oh*s - p + i, ow*s - p + j)`
///     for every output position, 0 where that falls in the padding. The row
///     order matches the weight layout `[out, in, kh, kw]`.
///   - columnStride: the distance between the starts of two rows of `col`:
///     `outputHeight * outputWidth` for one image's matrix (the default), or
///     `m * outputHeight * outputWidth` when `col` is image `j`'s block of the
///     columns of `m` images side by side (`col` then points at column `j * plane`).
@inlinable
public func im2col<T: TensorElement>(image: UnsafePointer<T>, geometry g: ConvGeometry, col: UnsafeMutablePointer<T>,
                                     columnStride: Int? = nil) {
    let plane = g.height * g.width
    let rowStride = columnStride ?? g.outputPlane
    var row = col
    for c in 0..<g.channels {
        let channel = image + c * plane
        for i in 0..<g.kernelHeight {
            for j in 0..<g.kernelWidth {
                var out = row
                for oh in 0..<g.outputHeight {
                    let h = oh * g.strideHeight - g.paddingHeight + i
                    if h < 0 || h >= g.height {
                        out.update(repeating: 0, count: g.outputWidth)
                    } else {
                        let source = channel + h * g.width
                        let w0 = j - g.paddingWidth
                        // Outputs first..<last read inside the row; the ends fall in the padding.
                        let (first, last) = validOutputRange(g, offset: w0)
                        if first > 0 { out.update(repeating: 0, count: first) }
                        if g.strideWidth == 1 {
                            // A contiguous span.
                            if last > first { (out + first).update(from: source + w0 + first, count: last - first) }
                        } else {
                            var ow = first
                            while ow < last {
                                out[ow] = source[ow * g.strideWidth + w0]
                                ow += 1
                            }
                        }
                        let tail = max(last, first)
                        if tail < g.outputWidth { (out + tail).update(repeating: 0, count: g.outputWidth - tail) }
                    }
                    out += g.outputWidth
                }
                row += rowStride
            }
        }
    }
}

/// The adjoint of ``im2col(image:geometry:col:)``: adds every column entry back
/// onto the input pixel it came from (entries from padding are dropped).
///
/// - Parameters:
///   - col: `[channels * kh * kw, outputHeight * outputWidth]`.
///   - image: `[channels, height, width]`; must be zeroed by the caller, since
///     overlapping windows accumulate into it. Accumulation order is fixed
///     (channel, kernel row, kernel column, output position), so the result is
///     deterministic.
///   - columnStride: as in ``im2col(image:geometry:col:columnStride:)``.
@inlinable
public func col2im<T: TensorElement>(col: UnsafePointer<T>, geometry g: ConvGeometry, image: UnsafeMutablePointer<T>,
                                     columnStride: Int? = nil) {
    let plane = g.height * g.width
    let rowStride = columnStride ?? g.outputPlane
    var row = col
    for c in 0..<g.channels {
        let channel = image + c * plane
        for i in 0..<g.kernelHeight {
            for j in 0..<g.kernelWidth {
                var source = row
                for oh in 0..<g.outputHeight {
                    let h = oh * g.strideHeight - g.paddingHeight + i
                    if h >= 0 && h < g.height {
                        let target = channel + h * g.width
                        let w0 = j - g.paddingWidth
                        // The same additions in the same order as testing every w, without the test.
                        let (first, last) = validOutputRange(g, offset: w0)
                        if g.strideWidth == 1 {
                            let shifted = target + w0
                            var ow = first
                            while ow < last {
                                shifted[ow] += source[ow]
                                ow += 1
                            }
                        } else {
                            var ow = first
                            while ow < last {
                                target[ow * g.strideWidth + w0] += source[ow]
                                ow += 1
                            }
                        }
                    }
                    source += g.outputWidth
                }
                row += rowStride
            }
        }
    }
}

/// The outputs `ow` whose input column `ow * strideWidth + offset` lies inside
/// `0..<width`: `first..<last` (empty when `last <= first`).
@inlinable @inline(__always)
func validOutputRange(_ g: ConvGeometry, offset: Int) -> (first: Int, last: Int) {
    let s = g.strideWidth
    // first: smallest ow with ow * s + offset >= 0; last: smallest ow with ow * s + offset >= width.
    let first = offset >= 0 ? 0 : (-offset + s - 1) / s
    let last = g.width - offset <= 0 ? 0 : (g.width - offset + s - 1) / s
    return (min(first, g.outputWidth), min(last, g.outputWidth))
}
