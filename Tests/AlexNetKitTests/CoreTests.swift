import XCTest
@testable import AlexNetKit

final class TensorTests: XCTestCase {
    func testShapeCountAndStrides() {
        let shape: Shape = [2, 3, 4, 5]
        XCTAssertEqual(shape.count, 120)
        XCTAssertEqual(shape.strides, [60, 20, 5, 1])
        XCTAssertEqual(shape.description, "[2, 3, 4, 5]")
    }

    func testRowMajorSubscript() throws {
        let t = try Tensor<Double>(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t[0, 2], 3)
        XCTAssertEqual(t[1, 0], 4)
    }

    func testValueCountMismatchIsAShapeError() {
        let error = captureError { try Tensor<Float>(shape: [2, 2], values: [1, 2, 3]) }
        XCTAssertEqual((error as? ShapeError)?.description, "Tensor: values has shape [3], expected 4 elements for shape [2, 2]")
    }

    func testReshapeKeepsElementsAndRefusesOtherCounts() throws {
        let t = try Tensor<Float>(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let r = try t.reshaped([3, 2])
        XCTAssertEqual(r.storage, t.storage)
        XCTAssertEqual(r.shape, [3, 2])
        XCTAssertThrowsError(try t.reshaped([4, 2])) { XCTAssertTrue($0 is ShapeError) }
    }

    func testRequireShapeNamesOperationAndPattern() {
        let t = Tensor<Float>(shape: [2, 3, 4])
        let error = captureError { try t.requireShape([nil, 3, nil, nil], operation: "conv1") }
        XCTAssertEqual((error as? ShapeError)?.description, "conv1: input has shape [2, 3, 4], expected [N, 3, H, W]")
    }

    func testConvertingRoundsToNearest() {
        let d = Tensor<Double>(shape: [1], repeating: 0.1)
        let f = Tensor<Float>(converting: d)
        XCTAssertEqual(f.storage[0], Float(0.1))
    }

    func testBitwiseEqualityDistinguishesSignedZeros() {
        let a = Tensor<Float>(shape: [1], repeating: 0)
        let b = Tensor<Float>(shape: [1], repeating: -0.0)
        XCTAssertTrue(a.isBitwiseEqual(to: a))
        XCTAssertFalse(a.isBitwiseEqual(to: b))
    }

    func testEmptyTensorHasAnAddressableBuffer() {
        let t = Tensor<Float>(shape: [0, 3])
        t.withUnsafeBufferPointer { XCTAssertNotNil($0.baseAddress) }
    }
}

final class FinitenessTests: XCTestCase {
    func testFiniteTensorPasses() throws {
        let t = randomFloatTensor([3, 7, 5], seed: 1)
        XCTAssertNil(t.firstNonFiniteIndex())
        try t.checkFinite(name: "x")
    }

    func testFindsNaNInVectorBodyAndTail() {
        for index in [0, 9, 103, 104] {  // 105 elements: 13 full SIMD8 vectors + a tail of 1
            var t = Tensor<Float>(shape: [105], repeating: 1)
            t.withUnsafeMutableBufferPointer { $0[index] = .nan }
            XCTAssertEqual(t.firstNonFiniteIndex(), index)
        }
    }

    /// Tensors of several 16-vector blocks: the first bad element of a block, of a
    /// later block and of the tail is found, the earlier of two wins, and the
    /// largest finite values (whose `x - x` is still 0) pass.
    func testFindsTheFirstNonFiniteAcrossBlocksInBothPrecisions() {
        func check<T: TensorElement>(_: T.Type) {
            let count = 16 * T.Vector.scalarCount * 3 + 5
            var t = Tensor<T>(shape: [count], repeating: T.greatestFiniteMagnitude)
            t.withUnsafeMutableBufferPointer { $0[1] = -T.greatestFiniteMagnitude }
            XCTAssertNil(t.firstNonFiniteIndex(), "\(T.self)")
            for index in [0, 127, 128, count - 6, count - 1] {
                for bad in [T.nan, T.infinity, -T.infinity] {
                    var u = t
                    u.withUnsafeMutableBufferPointer { $0[index] = bad; if index + 3 < count { $0[index + 3] = .nan } }
                    XCTAssertEqual(u.firstNonFiniteIndex(), index, "\(T.self) \(bad) at \(index)")
                }
            }
        }
        check(Float.self)
        check(Double.self)
    }

    func testErrorNamesTensorPositionValueAndCount() {
        var t = Tensor<Double>(shape: [2, 3], repeating: 0)
        t[1, 1] = -.infinity
        t[1, 2] = .nan
        let error = captureError { try t.checkFinite(name: "fc8.weight.gradient") } as? NonFiniteError
        XCTAssertEqual(error?.description,
                       "fc8.weight.gradient: 2 non-finite value(s); first is -inf at index [1, 1] (flat 4)")
    }
}

final class PhiloxTests: XCTestCase {
    // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    func testKnownAnswerZeros() {
        let out = Philox4x32(key: (0, 0)).block((0, 0, 0, 0))
        XCTAssertEqual([out.0, out.1, out.2, out.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
    }

    func testKnownAnswerAllOnes() {
        let out = Philox4x32(key: (0xffff_ffff, 0xffff_ffff)).block((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff))
        XCTAssertEqual([out.0, out.1, out.2, out.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
    }

    func testKnownAnswerPiDigits() {
        let out = Philox4x32(key: (0xa409_3822, 0x299f_31d0)).block((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344))
        XCTAssertEqual([out.0, out.1, out.2, out.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testStreamWordsFollowTheDocumentedCounterLayout() {
        let stream = RandomStream(seed: 0x1_0000_0002, step: 7, stream: 3)
        let direct = Philox4x32(key: (2, 1)).block((5, 0, 7, 3))
        XCTAssertEqual(stream.word(20), direct.0)
        XCTAssertEqual(stream.word(23), direct.3)
    }

    func testUniformHas24BitsInUnitInterval() {
        XCTAssertEqual(Philox4x32.unitInterval(0), 0)
        XCTAssertEqual(Philox4x32.unitInterval(0xffff_ffff), 1 - 1.0 / 16_777_216)
        XCTAssertEqual(Philox4x32.unitInterval(0x0000_01ff), 1.0 / 16_777_216)
    }
}

final class WorkerPoolTests: XCTestCase {
    func testEveryTaskRunsExactlyOnceWithDistinctConcurrentWorkers() {
        for workers in [1, 2, 4] {
            let pool = WorkerPool(workerCount: workers)
            var hits = [Int](repeating: 0, count: 1000)
            hits.withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress!
                pool.parallelFor(1000) { task, worker in
                    XCTAssertTrue((0..<workers).contains(worker))
                    base[task] += 1
                }
            }
            XCTAssertEqual(hits, [Int](repeating: 1, count: 1000), "workers \(workers)")
        }
    }

    func testNestedCallRunsSeriallyInsteadOfDeadlocking() {
        let pool = WorkerPool(workerCount: 2)
        var sums = [Int](repeating: 0, count: 4)
        sums.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            pool.parallelFor(4) { task, _ in
                pool.parallelFor(10) { inner, _ in base[task] += inner }
            }
        }
        XCTAssertEqual(sums, [45, 45, 45, 45])
    }

    /// The towers' situation: two pools driven at once from two threads of a third.
    func testTwoPoolsDrivenConcurrentlyBothFinish() {
        let towers = [WorkerPool(workerCount: 2, label: "tower0"), WorkerPool(workerCount: 2, label: "tower1")]
        let driver = WorkerPool(workerCount: 2, label: "driver")
        var sums = [Int](repeating: 0, count: 2 * 100)
        sums.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            for _ in 0..<50 {
                driver.parallelFor(2) { tower, _ in
                    towers[tower].parallelFor(100) { task, _ in base[tower * 100 + task] += task }
                }
            }
        }
        XCTAssertEqual(sums, (0..<200).map { 50 * ($0 % 100) })
    }

    func testPartitionRangesAreContiguousAndIndependentOfThreads() {
        XCTAssertEqual(Partition.ranges(count: 10, parts: 4), [0..<3, 3..<6, 6..<8, 8..<10])
        XCTAssertEqual(Partition.ranges(count: 2, parts: 8), [0..<1, 1..<2])
        XCTAssertEqual(Partition.tiles(count: 10, tile: 4), [0..<4, 4..<8, 8..<10])
        XCTAssertEqual(Partition.gradientChunks(batch: 128).count, 8)
    }
}

final class GemmTests: XCTestCase {
    func testRowMajorProductWithTransposes() {
        // A = [[1, 2, 3], [4, 5, 6]], B = [[1, 0], [0, 1], [1, 1]]: A B = [[4, 5], [10, 11]].
        let a: [Double] = [1, 2, 3, 4, 5, 6]
        let b: [Double] = [1, 0, 0, 1, 1, 1]
        var c = [Double](repeating: 0, count: 4)
        Double.gemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 3, alpha: 1, a: a, lda: 3, b: b, ldb: 2,
                    beta: 0, c: &c, ldc: 2)
        XCTAssertEqual(c, [4, 5, 10, 11])
        // A^T A is 3x3; its (0, 0) entry is 1 + 16 and (2, 1) is 3*2 + 6*5.
        var ata = [Float](repeating: 0, count: 9)
        let af = a.map(Float.init)
        Float.gemm(transposeA: true, transposeB: false, m: 3, n: 3, k: 2, alpha: 1, a: af, lda: 3, b: af, ldb: 3,
                   beta: 0, c: &ata, ldc: 3)
        XCTAssertEqual(ata[0], 17)
        XCTAssertEqual(ata[7], 36)
    }
}

final class ConvGeometryTests: XCTestCase {
    func testHugeSizesAreRefusedInsteadOfOverflowing() {
        let error = captureError {
            try ConvGeometry(channels: 3, height: 32, width: 32, kernel: (3, 3), stride: (1, 1),
                             padding: (Int.max / 2, 0), component: "conv1")
        } as? ConfigurationError
        XCTAssertEqual(error?.component, "conv1")
        XCTAssertTrue(error?.problem.hasPrefix("sizes above 16777216 are not supported") ?? false)
        XCTAssertThrowsError(try ModelSpec(name: "m", inputShape: [3, 8, 8], layers: [
            LayerSpec(name: "conv1", .convolution(outputs: 2, kernel: 3, stride: 1, padding: Pair(Int.max / 2, 0), groups: 1, bias: .none)),
            LayerSpec(name: "fc", .linear(outputs: 2, bias: .none)),
        ])) { XCTAssertTrue("\($0)".contains("conv1"), "\($0)") }
    }
}
