import XCTest
@testable import AlexNetKit

/// im2col unfolds windows into columns; col2im is its adjoint. Literal cases a
/// person can check by hand, then the adjoint identity on awkward geometries.
final class Im2ColTests: XCTestCase {
    private func geometry(channels: Int = 1, height: Int, width: Int, kernel: (Int, Int),
                          stride: (Int, Int), padding: (Int, Int)) throws -> ConvGeometry {
        try ConvGeometry(channels: channels, height: height, width: width,
                         kernel: kernel, stride: stride, padding: padding, component: "im2col test")
    }

    private func unfold(_ image: [Double], _ g: ConvGeometry) -> [Double] {
        var col = [Double](repeating: .nan, count: g.patchSize * g.outputPlane)  // NaN: every entry must be written
        image.withUnsafeBufferPointer { x in
            col.withUnsafeMutableBufferPointer { c in im2col(image: x.baseAddress!, geometry: g, col: c.baseAddress!) }
        }
        return col
    }

    private func fold(_ col: [Double], _ g: ConvGeometry) -> [Double] {
        var image = [Double](repeating: 0, count: g.channels * g.height * g.width)
        col.withUnsafeBufferPointer { c in
            image.withUnsafeMutableBufferPointer { x in col2im(col: c.baseAddress!, geometry: g, image: x.baseAddress!) }
        }
        return image
    }

    /// Input [[1, 2], [3, 4]], kernel 2x2, padding 1, stride 1: output 3x3.
    /// Row (i, j) of the matrix holds pixel (oh - 1 + i, ow - 1 + j) for the nine
    /// output positions, 0 where that pixel is padding.
    func testLiteralMatrixPaddedStrideOne() throws {
        let g = try geometry(height: 2, width: 2, kernel: (2, 2), stride: (1, 1), padding: (1, 1))
        XCTAssertEqual([g.outputHeight, g.outputWidth, g.patchSize], [3, 3, 4])
        let expected: [Double] = [
            0, 0, 0, 0, 1, 2, 0, 3, 4,  // (i, j) = (0, 0)
            0, 0, 0, 1, 2, 0, 3, 4, 0,  // (0, 1)
            0, 1, 2, 0, 3, 4, 0, 0, 0,  // (1, 0)
            1, 2, 0, 3, 4, 0, 0, 0, 0,  // (1, 1)
        ]
        XCTAssertEqual(unfold([1, 2, 3, 4], g), expected)
    }

    /// Input 1...9 as 3x3, kernel 2x2, padding 1, stride 2: output 2x2, windows
    /// start at input rows/columns -1 and 1 (the strided, non-contiguous path).
    func testLiteralMatrixPaddedStrideTwo() throws {
        let g = try geometry(height: 3, width: 3, kernel: (2, 2), stride: (2, 2), padding: (1, 1))
        XCTAssertEqual([g.outputHeight, g.outputWidth], [2, 2])
        let expected: [Double] = [
            0, 0, 0, 5,  // (0, 0): pixels (-1,-1) (-1,1) (1,-1) (1,1)
            0, 0, 4, 6,  // (0, 1): pixels (-1,0) (-1,2) (1,0) (1,2)
            0, 2, 0, 8,  // (1, 0): pixels (0,-1) (0,1) (2,-1) (2,1)
            1, 3, 7, 9,  // (1, 1): pixels (0,0) (0,2) (2,0) (2,2)
        ]
        XCTAssertEqual(unfold([1, 2, 3, 4, 5, 6, 7, 8, 9], g), expected)
    }

    /// Two channels: the second channel's rows follow the first's, matching the
    /// weight layout [out, in, kh, kw].
    func testLiteralMatrixTwoChannels() throws {
        let g = try geometry(channels: 2, height: 2, width: 2, kernel: (1, 2), stride: (1, 1), padding: (0, 0))
        XCTAssertEqual([g.outputHeight, g.outputWidth, g.patchSize], [2, 1, 4])
        // Channel 0 = [[1, 2], [3, 4]], channel 1 = [[5, 6], [7, 8]].
        XCTAssertEqual(unfold([1, 2, 3, 4, 5, 6, 7, 8], g), [1, 3, 2, 4, 5, 7, 6, 8])
    }

    /// col2im of all ones counts how many windows cover each pixel.
    func testCol2ImOfOnesCountsWindowCoverage() throws {
        let g = try geometry(height: 3, width: 3, kernel: (2, 2), stride: (1, 1), padding: (0, 0))
        XCTAssertEqual(fold([Double](repeating: 1, count: g.patchSize * g.outputPlane), g),
                       [1, 2, 1,
                        2, 4, 2,
                        1, 2, 1])
        // Padding 1, stride 2 over 3x3: windows do not overlap; padding entries are dropped.
        let strided = try geometry(height: 3, width: 3, kernel: (2, 2), stride: (2, 2), padding: (1, 1))
        XCTAssertEqual(fold([Double](repeating: 1, count: strided.patchSize * strided.outputPlane), strided),
                       [Double](repeating: 1, count: 9))
    }

    /// <im2col(x), y> == <x, col2im(y)> for random x and y: col2im is exactly the
    /// transpose of im2col, which is what makes the convolution's input gradient right.
    func testAdjointIdentityOnStridedPaddedGeometries() throws {
        let cases: [(c: Int, h: Int, w: Int, k: (Int, Int), s: (Int, Int), p: (Int, Int))] = [
            (1, 5, 5, (3, 3), (1, 1), (1, 1)),
            (3, 7, 7, (3, 3), (2, 2), (1, 1)),
            (2, 7, 6, (3, 2), (2, 1), (1, 0)),
            (2, 8, 9, (2, 3), (3, 2), (2, 1)),
            (2, 5, 5, (2, 2), (3, 3), (0, 0)),  // stride larger than the kernel: some pixels unused
            (3, 11, 11, (11, 11), (4, 4), (2, 2)),  // conv1-like: one big window, stride 4
            (1, 4, 4, (5, 5), (1, 1), (2, 2)),  // kernel larger than the image
        ]
        for (index, t) in cases.enumerated() {
            let g = try geometry(channels: t.c, height: t.h, width: t.w, kernel: t.k, stride: t.s, padding: t.p)
            let x = GradientCheck.randomUniform(shape: [t.c * t.h * t.w], seed: 100 + UInt64(index)).storage
            let y = GradientCheck.randomUniform(shape: [g.patchSize * g.outputPlane], seed: 200 + UInt64(index)).storage
            let left = zip(unfold(x, g), y).reduce(0) { $0 + $1.0 * $1.1 }
            let right = zip(x, fold(y, g)).reduce(0) { $0 + $1.0 * $1.1 }
            let scale = max(1, abs(left))
            XCTAssertLessThan(abs(left - right) / scale, 1e-12, "case \(index) \(t): \(left) vs \(right)")
        }
    }

    // MARK: The vectorised copies against the plain definition

    /// Every entry of the im2col matrix in the definition's order (c, i, j, oh, ow):
    /// its index in a matrix with row stride `columnStride`, and the index of
    /// pixel `(c, oh*sh - ph + i, ow*sw - pw + j)` in the image, nil in the padding.
    private static func forEachEntry(_ g: ConvGeometry, columnStride: Int, _ body: (Int, Int?) -> Void) {
        for c in 0..<g.channels {
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let row = (c * g.kernelHeight + i) * g.kernelWidth + j
                    for oh in 0..<g.outputHeight {
                        for ow in 0..<g.outputWidth {
                            let h = oh * g.strideHeight - g.paddingHeight + i, w = ow * g.strideWidth - g.paddingWidth + j
                            let inside = h >= 0 && h < g.height && w >= 0 && w < g.width
                            body(row * columnStride + oh * g.outputWidth + ow, inside ? (c * g.height + h) * g.width + w : nil)
                        }
                    }
                }
            }
        }
    }

    /// The definition, one element at a time: each entry is its pixel, 0 outside the image.
    private static func plainIm2col<T: TensorElement>(_ image: [T], _ g: ConvGeometry, columnStride: Int, into col: inout [T]) {
        forEachEntry(g, columnStride: columnStride) { entry, pixel in col[entry] = pixel.map { image[$0] } ?? 0 }
    }

    /// The adjoint's definition: every entry added onto its pixel in the definition's order.
    private static func plainCol2im<T: TensorElement>(_ col: [T], _ g: ConvGeometry, columnStride: Int, into image: inout [T]) {
        forEachEntry(g, columnStride: columnStride) { entry, pixel in
            if let pixel { image[pixel] += col[entry] }
        }
    }

    /// Widths below, at and above one vector (3, 4, 7, 8, 14, 27, 28, 55 outputs),
    /// strides 1 to 4, padding 0 to 2, a column block inside a wider matrix, and
    /// signed zeros, NaN and infinities in the image: the vectorised im2col must
    /// give the definition's bits, and col2im onto a non-zero image the definition's
    /// sums bit for bit, in Float and Double.
    func testVectorisedCopiesEqualTheDefinitionBitForBit() throws {
        try checkAgainstDefinition(Float.self)
        try checkAgainstDefinition(Double.self)
    }

    private func checkAgainstDefinition<T: TensorElement>(_: T.Type) throws {
        let cases: [(c: Int, h: Int, w: Int, k: (Int, Int), s: (Int, Int), p: (Int, Int))] = [
            (2, 3, 3, (1, 1), (1, 1), (0, 0)),
            (2, 4, 4, (3, 3), (1, 1), (1, 1)),
            (3, 7, 7, (5, 5), (1, 1), (2, 2)),
            (2, 8, 8, (3, 3), (1, 1), (1, 1)),
            (2, 14, 14, (5, 5), (1, 1), (2, 2)),
            (2, 27, 27, (5, 5), (1, 1), (2, 2)),
            (1, 28, 28, (5, 5), (1, 1), (2, 2)),
            (2, 13, 13, (3, 3), (1, 1), (1, 1)),
            (2, 9, 12, (2, 3), (1, 1), (0, 1)),
            (3, 27, 27, (11, 11), (4, 4), (0, 0)),
            (3, 67, 67, (11, 11), (4, 4), (0, 0)),
            (2, 21, 21, (3, 3), (2, 2), (1, 1)),
            (2, 9, 9, (3, 3), (2, 2), (1, 1)),
            (1, 10, 11, (3, 2), (3, 2), (2, 1)),
            (1, 4, 4, (5, 5), (1, 1), (2, 2)),
        ]
        for (index, t) in cases.enumerated() {
            let g = try geometry(channels: t.c, height: t.h, width: t.w, kernel: t.k, stride: t.s, padding: t.p)
            var image = GradientCheck.randomUniform(shape: [t.c * t.h * t.w], seed: 300 + UInt64(index)).storage.map { T($0) }
            let specials: [T] = [-0.0, .nan, .infinity, -.infinity]
            for (k, value) in specials.enumerated() where k * 5 < image.count { image[k * 5] = value }
            // Image 1 of a block of 3 images side by side.
            let blockImages = 3, columnStride = blockImages * g.outputPlane, offset = g.outputPlane
            let colCount = g.patchSize * columnStride
            // The definition writes its matrix at column 0; the block at `offset` must
            // hold it, and every other column must keep its 7.
            var shifted = [T](repeating: 7, count: colCount)
            Self.plainIm2col(image, g, columnStride: columnStride, into: &shifted)
            var expected = [T](repeating: 7, count: colCount), actual = expected
            for r in 0..<g.patchSize {
                for p in 0..<g.outputPlane { expected[r * columnStride + offset + p] = shifted[r * columnStride + p] }
            }
            image.withUnsafeBufferPointer { x in
                actual.withUnsafeMutableBufferPointer { c in
                    im2col(image: x.baseAddress!, geometry: g, col: c.baseAddress! + offset, columnStride: columnStride)
                }
            }
            XCTAssertEqual(actual.map(\.rawBits), expected.map(\.rawBits), "im2col case \(index) \(t)")

            // col2im of a random block onto a random (non-zero) image.
            let col = GradientCheck.randomUniform(shape: [colCount], seed: 400 + UInt64(index)).storage.map { T($0) }
            let start = GradientCheck.randomUniform(shape: [image.count], seed: 500 + UInt64(index)).storage.map { T($0) }
            var plain = start, fast = start
            let block = (0..<g.patchSize).flatMap { r in col[(r * columnStride + offset)..<(r * columnStride + offset + g.outputPlane)] }
            Self.plainCol2im(block, g, columnStride: g.outputPlane, into: &plain)
            col.withUnsafeBufferPointer { c in
                fast.withUnsafeMutableBufferPointer { x in
                    col2im(col: c.baseAddress! + offset, geometry: g, image: x.baseAddress!, columnStride: columnStride)
                }
            }
            XCTAssertEqual(fast.map(\.rawBits), plain.map(\.rawBits), "col2im case \(index) \(t)")
        }
    }
}
