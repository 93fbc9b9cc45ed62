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
@inlinable
public func im2col<T: TensorElement>(image: UnsafePointer<T>, geometry g: ConvGeometry, col: UnsafeMutablePointer<T>) {
    let plane = g.height * g.width
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
                        if g.strideWidth == 1 {
                            // Contiguous span; only its ends can fall in the padding.
                            let first = max(0, -w0)
                            let last = min(g.outputWidth, g.width - w0)
                            if first > 0 { out.update(repeating: 0, count: min(first, g.outputWidth)) }
                            if last > first { (out + first).update(from: source + w0 + first, count: last - first) }
                            let tail = max(last, first)
                            if tail < g.outputWidth { (out + tail).update(repeating: 0, count: g.outputWidth - tail) }
                        } else {
                            for ow in 0..<g.outputWidth {
                                let w = ow * g.strideWidth + w0
                                out[ow] = (w >= 0 && w < g.width) ? source[w] : 0
                            }
                        }
                    }
                    out += g.outputWidth
                }
                row += g.outputPlane
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
@inlinable
public func col2im<T: TensorElement>(col: UnsafePointer<T>, geometry g: ConvGeometry, image: UnsafeMutablePointer<T>) {
    let plane = g.height * g.width
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
                        for ow in 0..<g.outputWidth {
                            let w = ow * g.strideWidth + w0
                            if w >= 0 && w < g.width { target[w] += source[ow] }
                        }
                    }
                    source += g.outputWidth
                }
                row += g.outputPlane
            }
        }
    }
}
