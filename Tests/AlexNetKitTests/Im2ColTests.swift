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
}
