/// Unfolds one image's channels into the im2col matrix, so that a convolution
/// becomes one matrix product: `output[o, p] = sum_r weight[o, r] * col[r, p]`.
///
/// How: each channel is first copied into a zero-bordered plane
/// `[H + 2 ph, W + 2 pw]` (skipped without padding), so every matrix row is
/// `outputHeight` plain spans of that plane with no padding tests. With a
/// horizontal stride `s > 1` (the paper's conv1: 4) the input rows the output
/// rows read are then split into their `s` phases (padded column `q * s + r`
/// to phase `r` at `q`), so that kernel column `j` of an output row is one
/// contiguous span of phase `j % s`. Each span is copied with whole vectors
/// (the last one overlapping the one before), not a `memmove` call per span,
/// which on 14x14 planes cost more than the matrix product, nor one strided
/// element at a time (Docs/performance.md). Only values are copied, so the
/// matrix is bitwise the plain definition below.
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
///   - outputRows: only the columns of these output rows are written (all by
///     default), so that one image's unrolling can be shared out between workers.
///   - outputRowsOnly: `col` holds the columns of `outputRows` alone (a tile of
///     the matrix: its column 0 is the first column of output row
///     `outputRows.lowerBound`, and `columnStride` is the tile's width); by
///     default `col` is the whole matrix and the rows' columns are written in place.
public func im2col<T: TensorElement>(image: UnsafePointer<T>, geometry g: ConvGeometry, col: UnsafeMutablePointer<T>,
                                     columnStride: Int? = nil, outputRows: Range<Int>? = nil,
                                     outputRowsOnly: Bool = false) {
    let rowStride = columnStride ?? g.outputPlane
    let rows = outputRows ?? 0..<g.outputHeight
    guard !rows.isEmpty else { return }
    let s = g.strideWidth
    let paddedHeight = g.height + 2 * g.paddingHeight
    let phaseLength = (g.width + 2 * g.paddingWidth + s - 1) / s
    // The input rows that output rows `rows` read.
    let firstRow = rows.lowerBound * g.strideHeight
    let endRow = min(paddedHeight, (rows.upperBound - 1) * g.strideHeight + g.kernelHeight)
    PaddedPlane<T>.withPlanes(g) { padded in
        withUnsafeTemporaryAllocation(of: T.self, capacity: s > 1 ? s * paddedHeight * phaseLength : 1) { scratch in
            var row = outputRowsOnly ? col : col + rows.lowerBound * g.outputWidth
            for c in 0..<g.channels {
                var (plane, width) = padded.load(channel: image + c * g.height * g.width)
                if s > 1 {
                    // Padded column q * s + r goes to phase r at q; the phases, each
                    // `paddedHeight` rows of `phaseLength`, then stand in for the plane.
                    let phases = scratch.baseAddress!
                    for h in firstRow..<endRow {
                        let source = plane + h * width
                        for r in 0..<s {
                            let target = phases + (r * paddedHeight + h) * phaseLength
                            var q = 0
                            while q * s + r < width {
                                target[q] = source[q * s + r]
                                q += 1
                            }
                        }
                    }
                    (plane, width) = (UnsafePointer(phases), phaseLength)
                }
                for i in 0..<g.kernelHeight {
                    for j in 0..<g.kernelWidth {
                        // Kernel column j of an output row: a span of phase j % s from j / s
                        // (at stride 1, of the plane itself from j).
                        var out = row
                        var source = plane + ((j % s) * paddedHeight + i + firstRow) * width + j / s
                        for _ in rows {
                            copySpan(from: source, to: out, count: g.outputWidth)
                            out += g.outputWidth
                            source += g.strideHeight * width
                        }
                        row += rowStride
                    }
                }
            }
        }
    }
}

/// The adjoint of ``im2col(image:geometry:col:columnStride:)``: adds every column
/// entry back onto the input pixel it came from (entries from padding are dropped).
///
/// Each channel is accumulated in a padded plane whose middle starts as the
/// channel's current values; the padding's entries land in the border and are
/// thrown away. Every pixel receives its additions in the order of the plain
/// definition (channel, kernel row, kernel column, output position), one
/// rounding each, so the result is bitwise that of adding straight into `image`.
///
/// - Parameters:
///   - col: `[channels * kh * kw, outputHeight * outputWidth]`.
///   - image: `[channels, height, width]`; the sums are added onto what it holds
///     (zero it first for the plain adjoint), since overlapping windows accumulate.
///   - columnStride: as in ``im2col(image:geometry:col:columnStride:)``.
public func col2im<T: TensorElement>(col: UnsafePointer<T>, geometry g: ConvGeometry, image: UnsafeMutablePointer<T>,
                                     columnStride: Int? = nil) {
    let rowStride = columnStride ?? g.outputPlane
    PaddedPlane<T>.withPlanes(g) { padded in
        var row = col
        for c in 0..<g.channels {
            let channel = image + c * g.height * g.width
            let (plane, width) = padded.loadMutable(channel: channel)
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    var source = row
                    var target = plane + i * width + j
                    for _ in 0..<g.outputHeight {
                        if g.strideWidth == 1 {
                            Accumulate.add(source, into: target, count: g.outputWidth)
                        } else {
                            for ow in 0..<g.outputWidth { target[ow * g.strideWidth] += source[ow] }
                        }
                        source += g.outputWidth
                        target += g.strideHeight * width
                    }
                    row += rowStride
                }
            }
            padded.store(into: channel)
        }
    }
}

/// One channel seen through its zero padding: `[H + 2 ph, W + 2 pw]` with the
/// channel in the middle. Without padding the channel itself is the plane and
/// nothing is copied.
struct PaddedPlane<T: TensorElement> {
    let geometry: ConvGeometry
    /// `[H + 2 ph, W + 2 pw]` scratch, nil when there is no padding.
    let buffer: UnsafeMutablePointer<T>?

    init(geometry: ConvGeometry, buffer: UnsafeMutablePointer<T>?) {
        self.geometry = geometry
        self.buffer = buffer
    }

    var paddedWidth: Int { geometry.width + 2 * geometry.paddingWidth }
    var paddedHeight: Int { geometry.height + 2 * geometry.paddingHeight }

    /// Runs `body` with a plane for `g`, its scratch zeroed (so its border is
    /// zero for every channel: only the middle is ever rewritten).
    static func withPlanes<R>(_ g: ConvGeometry, _ body: (PaddedPlane<T>) -> R) -> R {
        if g.paddingHeight == 0 && g.paddingWidth == 0 { return body(PaddedPlane(geometry: g, buffer: nil)) }
        let shape = PaddedPlane(geometry: g, buffer: nil)
        let count = shape.paddedHeight * shape.paddedWidth
        return withUnsafeTemporaryAllocation(of: T.self, capacity: count) { scratch in
            let base = scratch.baseAddress!
            base.initialize(repeating: 0, count: count)
            return body(PaddedPlane(geometry: g, buffer: base))
        }
    }

    /// Copies `channel` (`[H, W]`) into the middle of the plane and returns the
    /// plane's first element and row length.
    @inline(__always)
    func load(channel: UnsafePointer<T>) -> (UnsafePointer<T>, Int) {
        guard let buffer else { return (channel, geometry.width) }
        for h in 0..<geometry.height { middleRow(h, of: buffer).update(from: channel + h * geometry.width, count: geometry.width) }
        return (UnsafePointer(buffer), paddedWidth)
    }

    /// As ``load(channel:)``, for accumulating. The border is not cleared
    /// between channels: the padding's entries add up there, and nothing
    /// ever reads the border back (``store(into:)`` copies only the middle).
    @inline(__always)
    func loadMutable(channel: UnsafeMutablePointer<T>) -> (UnsafeMutablePointer<T>, Int) {
        guard let buffer else { return (channel, geometry.width) }
        _ = load(channel: channel)
        return (buffer, paddedWidth)
    }

    /// Copies the plane's middle back to `channel` (nothing without padding:
    /// the sums went into the channel itself).
    @inline(__always)
    func store(into channel: UnsafeMutablePointer<T>) {
        guard let buffer else { return }
        for h in 0..<geometry.height { (channel + h * geometry.width).update(from: middleRow(h, of: buffer), count: geometry.width) }
    }

    /// Where input row `h` starts inside the plane.
    @inline(__always)
    func middleRow(_ h: Int, of buffer: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
        buffer + (h + geometry.paddingHeight) * paddedWidth + geometry.paddingWidth
    }
}

/// `target[0..<count] = source[0..<count]` with whole vectors: full vectors
/// from the start, then one vector ending at `count` (overlapping, which
/// rewrites equal values); half vectors below one vector, scalars below those.
@inline(__always)
func copySpan<T: TensorElement>(from source: UnsafePointer<T>, to target: UnsafeMutablePointer<T>, count: Int) {
    let width = T.Vector.scalarCount
    if count >= width {
        var k = 0
        while k + width <= count {
            UnsafeMutableRawPointer(target + k).storeBytes(
                of: UnsafeRawPointer(source + k).loadUnaligned(as: T.Vector.self), as: T.Vector.self)
            k += width
        }
        if k < count {
            let last = count - width
            UnsafeMutableRawPointer(target + last).storeBytes(
                of: UnsafeRawPointer(source + last).loadUnaligned(as: T.Vector.self), as: T.Vector.self)
        }
    } else if count >= 4 {
        UnsafeMutableRawPointer(target).storeBytes(
            of: UnsafeRawPointer(source).loadUnaligned(as: SIMD4<T>.self), as: SIMD4<T>.self)
        let last = count - 4
        UnsafeMutableRawPointer(target + last).storeBytes(
            of: UnsafeRawPointer(source + last).loadUnaligned(as: SIMD4<T>.self), as: SIMD4<T>.self)
    } else {
        for k in 0..<count { target[k] = source[k] }
    }
}
