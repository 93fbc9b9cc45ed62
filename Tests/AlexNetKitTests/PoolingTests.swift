import XCTest
@testable import AlexNetKit

/// Specification tests for ``MaxPool2D``, ``AvgPool2D`` and ``PoolRounding``.
///
/// The literal cases all pool this 4x4 plane (a permutation of 0...15, so every
/// maximum is unique):
///
///      3   9   1   7
///     12   0   5  14
///      6  15   2   8
///     10   4  13  11
///
/// Expected outputs and gradients were worked out by hand and checked with a
/// naive independent Python script (exact fractions); the output gradient of an
/// `m x m` output is `1, 2, ..., m*m` in row-major order.
final class PoolingTests: XCTestCase {

    // MARK: - Helpers

    private let plane: [Double] = [3, 9, 1, 7,
                                   12, 0, 5, 14,
                                   6, 15, 2, 8,
                                   10, 4, 13, 11]

    private func input() throws -> Tensor<Double> { try Tensor(shape: [1, 1, 4, 4], values: plane) }

    /// `1, 2, ..., side*side` as a `[1, 1, side, side]` output gradient.
    private func countingGradient(side: Int) throws -> Tensor<Double> {
        try Tensor(shape: [1, 1, side, side], values: (1...(side * side)).map(Double.init))
    }

    private func assertClose(_ actual: Tensor<Double>, _ expected: [Double], shape: Shape,
                             _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, shape, message, file: file, line: line)
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        for (i, (a, e)) in zip(actual.storage, expected).enumerated() {
            XCTAssertEqual(a, e, accuracy: 1e-14 * max(1, abs(e)), "\(message) element \(i)", file: file, line: line)
        }
    }

    /// Distinct values spaced 0.01 apart in random order: a step of 1e-5 never
    /// changes which cell of a window is largest, so max pooling is linear
    /// around the point and its finite differences are exact up to rounding.
    private func separatedValues(shape: Shape, seed: UInt64) -> Tensor<Double> {
        let stream = RandomStream(seed: seed, step: 0, stream: 0x9001)
        var permutation = Array(0..<shape.count)
        for i in stride(from: permutation.count - 1, to: 0, by: -1) {
            permutation.swapAt(i, Int(stream.word(i) % UInt32(i + 1)))
        }
        return try! Tensor(shape: shape, values: permutation.map { 0.01 * Double($0 - shape.count / 2) })
    }

    nonisolated(unsafe) static var worstGradientError = 0.0

    override class func tearDown() {
        print("PoolingTests: worst gradient-check relative error \(worstGradientError)")
        super.tearDown()
    }

    private func assertGradient<L: Layer>(_ layer: L, input: Tensor<Double>, _ message: String,
                                          file: StaticString = #filePath, line: UInt = #line) throws where L.Element == Double {
        let results = try GradientCheck.check(layer: layer, input: input, maxElements: 4096)
        XCTAssertEqual(results.count, 1, "pooling has no parameters", file: file, line: line)
        for result in results {
            XCTAssertEqual(result.checked, input.count, file: file, line: line)
            XCTAssertLessThan(result.maxRelativeError, 1e-6, "\(message): \(result)", file: file, line: line)
            PoolingTests.worstGradientError = max(PoolingTests.worstGradientError, result.maxRelativeError)
        }
    }

    // MARK: - Output sizes

    func testAlexNetSizesAgreeUnderBothRoundings() throws {
        // 227 -> conv1 (11x11/4) -> 55 -> pool1 -> 27 -> pool2 -> 13 -> pool5 -> 6.
        for rounding in [PoolRounding.floor, .ceil] {
            let pool = try MaxPool2D<Float>(name: "pool", kernel: (3, 3), stride: (2, 2), rounding: rounding)
            XCTAssertEqual(try pool.outputShape(for: [128, 96, 55, 55]), [128, 96, 27, 27], "\(rounding)")
            XCTAssertEqual(try pool.outputShape(for: [128, 256, 27, 27]), [128, 256, 13, 13], "\(rounding)")
            XCTAssertEqual(try pool.outputShape(for: [128, 256, 13, 13]), [128, 256, 6, 6], "\(rounding)")
        }
    }

    func testCIFARSizesDifferBetweenRoundings() throws {
        // 3x3/2, no padding. floor: (32 - 3) / 2 + 1 = 14 + 1 = 15; ceil: ceil(29 / 2) + 1 = 15 + 1 = 16,
        // and its last window starts at 15 * 2 = 30 < 32, so it stays (cells 30 and 31).
        // Chained: ceil 32 -> 16 -> 8 -> 4 (fc input 64 * 16 = 1024); floor 32 -> 15 -> 7 -> 3 (576).
        let ceil = try MaxPool2D<Float>(name: "pool", rounding: .ceil)
        let floor = try MaxPool2D<Float>(name: "pool", rounding: .floor)
        XCTAssertEqual(try ceil.outputShape(for: [1, 64, 32, 32]), [1, 64, 16, 16])
        XCTAssertEqual(try floor.outputShape(for: [1, 64, 32, 32]), [1, 64, 15, 15])
        XCTAssertEqual([32, 16, 8].map { PoolRounding.ceil.outputExtent(input: $0, kernel: 3, stride: 2, padding: 0) }, [16, 8, 4])
        XCTAssertEqual([32, 15, 7].map { PoolRounding.floor.outputExtent(input: $0, kernel: 3, stride: 2, padding: 0) }, [15, 7, 3])
    }

    func testCeilDropsWindowStartingInPadding() {
        // H 5, k 2, s 2, p 1: ceil((5 + 2 - 2) / 2) + 1 = 4, but window 3 would start at
        // 6 - 1 = 5 = H (padded start 6 >= H + p = 6): only padding, dropped -> 3 (PyTorch and Caffe agree).
        XCTAssertEqual(PoolRounding.ceil.outputExtent(input: 5, kernel: 2, stride: 2, padding: 1), 3)
        XCTAssertEqual(PoolRounding.floor.outputExtent(input: 5, kernel: 2, stride: 2, padding: 1), 3)
        // H 6, k 3, s 2, p 1: ceil(5 / 2) + 1 = 4; window 3 starts at 6 - 1 = 5 < 6, inside: kept.
        XCTAssertEqual(PoolRounding.ceil.outputExtent(input: 6, kernel: 3, stride: 2, padding: 1), 4)
        XCTAssertEqual(PoolRounding.floor.outputExtent(input: 6, kernel: 3, stride: 2, padding: 1), 3)
        // Kernel larger than the padded input.
        XCTAssertNil(PoolRounding.floor.outputExtent(input: 2, kernel: 5, stride: 1, padding: 1))
    }

    // MARK: - Max pooling, literal cases

    func testMaxPool2x2Stride2() throws {
        // Windows {3,9,12,0} {1,7,5,14} {6,15,10,4} {2,8,13,11}; argmax cells 4, 7, 9, 14.
        for rounding in [PoolRounding.floor, .ceil] {
            let pool = try MaxPool2D<Double>(name: "pool", kernel: (2, 2), stride: (2, 2), rounding: rounding)
            assertClose(try pool.forward(input(), context: PassContext()), [12, 14, 15, 13], shape: [1, 1, 2, 2])
            assertClose(try pool.backward(countingGradient(side: 2), context: PassContext()),
                        [0, 0, 0, 0,
                         1, 0, 0, 2,
                         0, 3, 0, 0,
                         0, 0, 4, 0], shape: [1, 1, 4, 4])
        }
    }

    func testMaxPool3x3Stride1AccumulatesSharedArgmax() throws {
        // All four 3x3 windows hold the 15 at (2, 1): its gradient is 1 + 2 + 3 + 4 = 10.
        for rounding in [PoolRounding.floor, .ceil] {
            let pool = try MaxPool2D<Double>(name: "pool", kernel: (3, 3), stride: (1, 1), rounding: rounding)
            assertClose(try pool.forward(input(), context: PassContext()), [15, 15, 15, 15], shape: [1, 1, 2, 2])
            assertClose(try pool.backward(countingGradient(side: 2), context: PassContext()),
                        [0, 0, 0, 0,
                         0, 0, 0, 0,
                         0, 10, 0, 0,
                         0, 0, 0, 0], shape: [1, 1, 4, 4])
        }
    }

    func testMaxPool3x3Stride2FloorVersusCeil() throws {
        // floor: (4 - 3) / 2 + 1 = 1 window (rows 0-2, cols 0-2) -> 15.
        let floor = try MaxPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), rounding: .floor)
        assertClose(try floor.forward(input(), context: PassContext()), [15], shape: [1, 1, 1, 1])
        assertClose(try floor.backward(countingGradient(side: 1), context: PassContext()),
                    [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], shape: [1, 1, 4, 4])
        // ceil: ceil(1 / 2) + 1 = 2; windows rows {0-2, 2-3} x cols {0-2, 2-3}, clipped at the edge:
        // {..15..} -> 15 @9, {1,7,5,14,2,8} -> 14 @7, {6,15,2,10,4,13} -> 15 @9, {2,8,13,11} -> 13 @14.
        let ceil = try MaxPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), rounding: .ceil)
        assertClose(try ceil.forward(input(), context: PassContext()), [15, 14, 15, 13], shape: [1, 1, 2, 2])
        assertClose(try ceil.backward(countingGradient(side: 2), context: PassContext()),
                    [0, 0, 0, 0,
                     0, 0, 0, 2,
                     0, 4, 0, 0,
                     0, 0, 4, 0], shape: [1, 1, 4, 4])
    }

    func testMaxPool3x3Stride2Padding1Ceil() throws {
        // ceil((4 + 2 - 3) / 2) + 1 = 3; the last window starts at 4 - 1 = 3 < 4: kept.
        // Rows pooled per output row: {0,1}, {1,2,3}, {3}; columns likewise.
        let pool = try MaxPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), padding: (1, 1), rounding: .ceil)
        assertClose(try pool.forward(input(), context: PassContext()),
                    [12, 14, 14,
                     15, 15, 14,
                     10, 13, 11], shape: [1, 1, 3, 3])
        // Argmax cells 4, 7, 7 / 9, 9, 7 / 12, 14, 15; gradient 1...9.
        assertClose(try pool.backward(countingGradient(side: 3), context: PassContext()),
                    [0, 0, 0, 0,
                     1, 0, 0, 2 + 3 + 6,
                     0, 4 + 5, 0, 0,
                     7, 0, 8, 9], shape: [1, 1, 4, 4])
    }

    func testPaddingNeverWinsAMaximum() throws {
        // All-negative input: a zero-padded maximum would be 0 everywhere.
        let pool = try MaxPool2D<Double>(name: "pool", kernel: (3, 3), stride: (1, 1), padding: (1, 1), rounding: .floor)
        let x = try Tensor<Double>(shape: [1, 1, 2, 2], values: [-4, -3, -2, -1])
        assertClose(try pool.forward(x, context: PassContext()), [-1, -1, -1, -1], shape: [1, 1, 2, 2])
        assertClose(try pool.backward(countingGradient(side: 2), context: PassContext()), [0, 0, 0, 10], shape: [1, 1, 2, 2])
    }

    func testTiesGoToFirstMaximumInRowMajorOrder() throws {
        let pool = try MaxPool2D<Double>(name: "pool", kernel: (2, 2), stride: (1, 1), rounding: .floor)
        let x = try Tensor<Double>(shape: [1, 1, 2, 3], values: [1, 5, 5,
                                                                  5, 5, 2])
        assertClose(try pool.forward(x, context: PassContext()), [5, 5], shape: [1, 1, 1, 2])
        // Window 0 cells (0,0) (0,1) (1,0) (1,1): first 5 at (0,1). Window 1: (0,1) again.
        let gradient = try Tensor<Double>(shape: [1, 1, 1, 2], values: [1, 10])
        assertClose(try pool.backward(gradient, context: PassContext()), [0, 11, 0, 0, 0, 0], shape: [1, 1, 2, 3])
    }

    func testNaNPropagatesAndFirstNaNTakesTheGradient() throws {
        let pool = try MaxPool2D<Double>(name: "pool", kernel: (2, 2), stride: (2, 2), rounding: .floor)
        let x = try Tensor<Double>(shape: [1, 1, 2, 4], values: [1, .nan, 7, 8,
                                                                  .nan, 9, 3, 2])
        let output = try pool.forward(x, context: PassContext())
        XCTAssertTrue(output.storage[0].isNaN)
        XCTAssertEqual(output.storage[1], 8)
        let gradient = try pool.backward(Tensor(shape: [1, 1, 1, 2], values: [1, 2]), context: PassContext())
        XCTAssertEqual(gradient.storage, [0, 1, 0, 2,
                                          0, 0, 0, 0])
    }

    /// The kernel against an independently written row-major scan (first maximum, first
    /// NaN, padding never wins) on data full of ties, zeros of both signs and
    /// NaN, for several window shapes: the same output bits and the same argmax,
    /// seen through the gradient each cell receives. Planes narrow and wide
    /// enough for whole vectors of outputs (with an overlapping last vector and
    /// clipped columns at both ends), in Float and Double.
    func testKernelEqualsAnIndependentRowMajorScanWithTiesZerosAndNaN() throws {
        try checkAgainstRowMajorScan(Float.self)
        try checkAgainstRowMajorScan(Double.self)
    }

    private func checkAgainstRowMajorScan<T: TensorElement>(_: T.Type) throws {
        let values: [T] = [0, -0.0, 1, 1, 2, -1, .nan, 0.5, 2, -0.0]
        let windows: [((Int, Int), (Int, Int), (Int, Int), PoolRounding)] = [
            ((3, 3), (2, 2), (0, 0), .floor), ((3, 3), (2, 2), (1, 1), .ceil), ((2, 3), (1, 2), (1, 0), .ceil),
            ((3, 2), (3, 1), (0, 1), .floor), ((2, 2), (2, 2), (0, 0), .ceil), ((3, 3), (1, 1), (1, 1), .floor),
            ((3, 3), (2, 2), (0, 0), .ceil), ((2, 4), (2, 3), (1, 2), .ceil),
        ]
        // 17 and 18 wide: a stride-2 row holds exactly one vector of outputs (its even/odd loads
        // end at the row's end); 55: the paper's conv1 output, a scalar column after the vectors;
        // 14 and 7: the small nets' planes, narrower than a vector of outputs.
        for (h, w) in [(11, 13), (9, 40), (6, 28), (5, 17), (4, 18), (7, 55), (14, 14), (7, 7)] {
            for (kernel, stride, padding, rounding) in windows {
                // Training keeps the argmax in forward; inference computes it in backward.
                for mode in [PassMode.training, .inference] {
                    let (n, c) = (2, 3)
                    let x = try Tensor<T>(shape: [n, c, h, w],
                                          values: (0..<(n * c * h * w)).map { values[($0 * 7 + $0 / 5) % values.count] })
                    let layer = try MaxPool2D<T>(name: "p", kernel: kernel, stride: stride, padding: padding, rounding: rounding)
                    let y = try layer.forward(x, context: PassContext(pool: WorkerPool(workerCount: 2), mode: mode))
                    let (oh, ow) = (y.shape[2], y.shape[3])
                    let gradient = try Tensor<T>(shape: y.shape, values: (0..<y.count).map { T($0 % 5 + 1) })
                    let dx = try layer.backward(gradient, context: PassContext(pool: WorkerPool(workerCount: 2)))
                    var expected = [T](repeating: 0, count: x.count)
                    let label = "\(T.self) \(h)x\(w), kernel \(kernel), stride \(stride), padding \(padding), \(rounding), \(mode)"
                    for plane in 0..<(n * c) {
                        for i in 0..<oh {
                            for j in 0..<ow {
                                var best: T?, at = 0
                                scan: for r in max(0, i * stride.0 - padding.0)..<min(h, i * stride.0 - padding.0 + kernel.0) {
                                    for q in max(0, j * stride.1 - padding.1)..<min(w, j * stride.1 - padding.1 + kernel.1) {
                                        let v = x.storage[plane * h * w + r * w + q]
                                        if best == nil || v > best! || v.isNaN {
                                            best = v
                                            at = r * w + q
                                            if v.isNaN { break scan }
                                        }
                                    }
                                }
                                let o = plane * oh * ow + i * ow + j
                                XCTAssertEqual(y.storage[o].rawBits, best!.rawBits, "output \(o), \(label)")
                                expected[plane * h * w + at] += gradient.storage[o]
                            }
                        }
                    }
                    XCTAssertEqual(dx.storage, expected, label)
                }
            }
        }
    }

    // MARK: - Average pooling, literal cases

    func testAvgPool2x2Stride2() throws {
        // (3+9+12+0)/4 = 6, (1+7+5+14)/4 = 27/4, (6+15+10+4)/4 = 35/4, (2+8+13+11)/4 = 17/2.
        for include in [true, false] {
            let pool = try AvgPool2D<Double>(name: "pool", kernel: (2, 2), stride: (2, 2), rounding: .floor,
                                             countIncludePadding: include)
            assertClose(try pool.forward(input(), context: PassContext()), [6, 6.75, 8.75, 8.5], shape: [1, 1, 2, 2])
            assertClose(try pool.backward(countingGradient(side: 2), context: PassContext()),
                        [0.25, 0.25, 0.5, 0.5,
                         0.25, 0.25, 0.5, 0.5,
                         0.75, 0.75, 1, 1,
                         0.75, 0.75, 1, 1], shape: [1, 1, 4, 4])
        }
    }

    func testAvgPool3x3Stride2CeilDividesByClippedWindow() throws {
        // No padding, so both divisor rules agree: windows past the edge divide by the cells they hold.
        // Sums 53 (9 cells), 37 (6), 50 (6), 34 (4).
        for include in [true, false] {
            let pool = try AvgPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), rounding: .ceil,
                                             countIncludePadding: include)
            assertClose(try pool.forward(input(), context: PassContext()),
                        [53.0 / 9, 37.0 / 6, 50.0 / 6, 34.0 / 4], shape: [1, 1, 2, 2])
            // Cell gradients: sum over the windows holding it of g / divisor, g = 1, 2, 3, 4.
            assertClose(try pool.backward(countingGradient(side: 2), context: PassContext()),
                        [1.0 / 9, 1.0 / 9, 1.0 / 9 + 2.0 / 6, 2.0 / 6,
                         1.0 / 9, 1.0 / 9, 1.0 / 9 + 2.0 / 6, 2.0 / 6,
                         1.0 / 9 + 3.0 / 6, 1.0 / 9 + 3.0 / 6, 1.0 / 9 + 2.0 / 6 + 3.0 / 6 + 4.0 / 4, 2.0 / 6 + 4.0 / 4,
                         3.0 / 6, 3.0 / 6, 3.0 / 6 + 4.0 / 4, 4.0 / 4], shape: [1, 1, 4, 4])
        }
    }

    func testAvgPoolPaddingDivisorIncludedVersusExcluded() throws {
        // 3x3/2, padding 1, ceil: 3x3 outputs. Rows per output row {0,1}, {1,2,3}, {3} (columns alike).
        // Sums: 24 36 21 / 47 72 33 / 14 28 11.
        // Included: each axis counts the window clipped to -1..<5: 3, 3, 2 (the last window -> 3..<6
        // runs past the padded input and is clipped there, as in PyTorch), divisors 9 9 6 / 9 9 6 / 6 6 4.
        let included = try AvgPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), padding: (1, 1),
                                             rounding: .ceil, countIncludePadding: true)
        assertClose(try included.forward(input(), context: PassContext()),
                    [24.0 / 9, 36.0 / 9, 21.0 / 6,
                     47.0 / 9, 72.0 / 9, 33.0 / 6,
                     14.0 / 6, 28.0 / 6, 11.0 / 4], shape: [1, 1, 3, 3])
        assertClose(try included.backward(countingGradient(side: 3), context: PassContext()),
                    [1.0 / 9, 3.0 / 9, 2.0 / 9, 13.0 / 18,
                     5.0 / 9, 12.0 / 9, 7.0 / 9, 41.0 / 18,
                     4.0 / 9, 1, 5.0 / 9, 14.0 / 9,
                     29.0 / 18, 7.0 / 2, 17.0 / 9, 185.0 / 36], shape: [1, 1, 4, 4])
        // Excluded: only input cells count: 2, 3, 1 per axis, divisors 4 6 2 / 6 9 3 / 2 3 1.
        let excluded = try AvgPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), padding: (1, 1),
                                             rounding: .ceil, countIncludePadding: false)
        assertClose(try excluded.forward(input(), context: PassContext()),
                    [6, 6, 10.5,
                     47.0 / 6, 8, 11,
                     7, 28.0 / 3, 11], shape: [1, 1, 3, 3])
        assertClose(try excluded.backward(countingGradient(side: 3), context: PassContext()),
                    [1.0 / 4, 7.0 / 12, 1.0 / 3, 11.0 / 6,
                     11.0 / 12, 65.0 / 36, 8.0 / 9, 79.0 / 18,
                     2.0 / 3, 11.0 / 9, 5.0 / 9, 23.0 / 9,
                     25.0 / 6, 133.0 / 18, 29.0 / 9, 128.0 / 9], shape: [1, 1, 4, 4])
    }

    // MARK: - Gradient checks (Float64, central differences)

    func testMaxPoolGradientOverlappingWindows() throws {
        // 3x3/2 overlapping windows, with and without padding, under both roundings; planes of
        // odd and even extent so ceil adds a clipped last window in one direction only.
        for rounding in [PoolRounding.floor, .ceil] {
            for padding in [(0, 0), (1, 1), (1, 0)] {
                let pool = try MaxPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), padding: padding, rounding: rounding)
                let x = separatedValues(shape: [2, 3, 8, 7], seed: UInt64(padding.0 * 2 + padding.1))
                try assertGradient(pool, input: x, "max \(rounding) padding \(padding)")
            }
        }
    }

    func testAvgPoolGradient() throws {
        for rounding in [PoolRounding.floor, .ceil] {
            for include in [true, false] {
                for padding in [(0, 0), (1, 1), (2, 1)] {
                    let pool = try AvgPool2D<Double>(name: "pool", kernel: (3, 3), stride: (2, 2), padding: padding,
                                                     rounding: rounding, countIncludePadding: include)
                    let x = GradientCheck.randomUniform(shape: [2, 3, 8, 7], seed: 4)
                    try assertGradient(pool, input: x, "avg \(rounding) include \(include) padding \(padding)")
                }
            }
        }
    }

    // MARK: - Determinism

    /// Forward, then backward with a fixed random output gradient.
    private func forwardBackward<L: Layer>(_ layer: L, _ x: Tensor<Float>, context: PassContext) throws
        -> (output: Tensor<Float>, inputGradient: Tensor<Float>) where L.Element == Float {
        let output = try layer.forward(x, context: context)
        let gradient = Tensor<Float>(converting: GradientCheck.randomUniform(shape: output.shape, seed: 32))
        return (output, try layer.backward(gradient, context: context))
    }

    func testBitwiseIdenticalAcrossWorkerCounts() throws {
        let input = Tensor<Float>(converting: GradientCheck.randomUniform(shape: [3, 5, 13, 11], seed: 31))
        var reference: [String: (output: Tensor<Float>, inputGradient: Tensor<Float>)] = [:]
        for workers in [1, 2, 4] {
            let context = PassContext(pool: WorkerPool(workerCount: workers, label: "pool\(workers)"), mode: .training)
            let results = [
                ("max", try forwardBackward(MaxPool2D<Float>(name: "pool", kernel: (3, 3), stride: (2, 2), padding: (1, 1),
                                                             rounding: .ceil), input, context: context)),
                ("avg", try forwardBackward(AvgPool2D<Float>(name: "pool", kernel: (3, 3), stride: (1, 1), padding: (1, 1),
                                                             rounding: .ceil, countIncludePadding: false), input, context: context)),
            ]
            for (label, result) in results {
                if let expected = reference[label] {
                    XCTAssertTrue(result.output.isBitwiseEqual(to: expected.output), "\(label) output, \(workers) workers")
                    XCTAssertTrue(result.inputGradient.isBitwiseEqual(to: expected.inputGradient),
                                  "\(label) input gradient, \(workers) workers")
                } else {
                    reference[label] = result
                }
            }
        }
    }

    // MARK: - Errors

    func testWrongRankIsRejected() throws {
        let max = try MaxPool2D<Double>(name: "pool1", rounding: .floor)
        let avg = try AvgPool2D<Double>(name: "pool2", rounding: .floor, countIncludePadding: true)
        XCTAssertThrowsError(try max.forward(Tensor(shape: [1, 27, 27]), context: PassContext())) { error in
            XCTAssertTrue(error is ShapeError, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("pool1:"), "\(error)")
        }
        XCTAssertThrowsError(try avg.forward(Tensor(shape: [1, 1, 1, 27, 27]), context: PassContext())) { error in
            XCTAssertTrue(error is ShapeError, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("pool2:"), "\(error)")
        }
    }

    func testKernelLargerThanPaddedInputIsRejected() throws {
        // 3x3 kernel, padding 0 on a 2x5 plane: the padded input is only 2 rows.
        let max = try MaxPool2D<Double>(name: "pool1", rounding: .ceil)
        let avg = try AvgPool2D<Double>(name: "pool2", rounding: .ceil, countIncludePadding: false)
        XCTAssertThrowsError(try max.forward(Tensor(shape: [1, 1, 2, 5]), context: PassContext())) { error in
            XCTAssertTrue(error is ShapeError, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("pool1:"), "\(error)")
            XCTAssertTrue("\(error)".contains("larger than the padded input"), "\(error)")
        }
        XCTAssertThrowsError(try avg.outputShape(for: [1, 1, 5, 2])) { error in
            XCTAssertTrue(error is ShapeError, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("pool2:"), "\(error)")
        }
        // With padding 1 the same 3x3 kernel fits a 1x1 plane.
        let padded = try MaxPool2D<Double>(name: "pool3", padding: (1, 1), rounding: .floor)
        XCTAssertEqual(try padded.outputShape(for: [1, 1, 1, 1]), [1, 1, 1, 1])
    }

    func testInvalidConfigurationIsRejected() {
        let cases: [((Int, Int), (Int, Int), (Int, Int))] = [  // kernel, stride, padding
            ((0, 3), (2, 2), (0, 0)),
            ((3, 3), (0, 2), (0, 0)),
            ((3, 3), (2, 2), (-1, 0)),
            ((3, 3), (2, 2), (3, 0)),  // padding must be smaller than the kernel
        ]
        for (kernel, stride, padding) in cases {
            XCTAssertThrowsError(try MaxPool2D<Float>(name: "pool5", kernel: kernel, stride: stride, padding: padding,
                                                      rounding: .floor)) { error in
                XCTAssertTrue(error is ConfigurationError, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("pool5:"), "\(error)")
            }
            XCTAssertThrowsError(try AvgPool2D<Float>(name: "pool6", kernel: kernel, stride: stride, padding: padding,
                                                      rounding: .ceil, countIncludePadding: true)) { error in
                XCTAssertTrue(error is ConfigurationError, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("pool6:"), "\(error)")
            }
        }
    }

    func testBackwardBeforeForwardIsRejected() throws {
        let max = try MaxPool2D<Double>(name: "pool1", rounding: .floor)
        let avg = try AvgPool2D<Double>(name: "pool2", rounding: .floor, countIncludePadding: true)
        for (layerName, call) in [("pool1", { try max.backward(Tensor(shape: [1, 1, 2, 2]), context: PassContext()) }),
                                  ("pool2", { try avg.backward(Tensor(shape: [1, 1, 2, 2]), context: PassContext()) })] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertTrue(error is ConfigurationError, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("\(layerName):"), "\(error)")
                XCTAssertTrue("\(error)".contains("before forward"), "\(error)")
            }
        }
    }

    func testGradientOfWrongShapeIsRejected() throws {
        let max = try MaxPool2D<Double>(name: "pool1", rounding: .floor)
        let avg = try AvgPool2D<Double>(name: "pool2", rounding: .floor, countIncludePadding: true)
        _ = try max.forward(Tensor(shape: [2, 3, 7, 7]), context: PassContext())
        _ = try avg.forward(Tensor(shape: [2, 3, 7, 7]), context: PassContext())
        // The output is [2, 3, 3, 3]; a gradient shaped like the input is a common mistake.
        for (layerName, call) in [("pool1", { try max.backward(Tensor(shape: [2, 3, 7, 7]), context: PassContext()) }),
                                  ("pool2", { try avg.backward(Tensor(shape: [2, 3, 3, 4]), context: PassContext()) })] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertTrue(error is ShapeError, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("\(layerName):"), "\(error)")
                XCTAssertTrue("\(error)".contains("[2, 3, 3, 3]"), "\(error)")
            }
        }
    }
}
