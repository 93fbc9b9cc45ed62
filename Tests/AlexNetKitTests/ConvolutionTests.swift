import XCTest
@testable import AlexNetKit

private typealias T = GemmLayerTesting

/// Conv2D: hand-computed cases, finite-difference gradient checks, determinism
/// across worker counts and output splits, precision and error messages.
final class ConvolutionTests: XCTestCase {
    // MARK: Hand-computed cases

    /// x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], b = 0.5, stride 1, no padding.
    /// y[i,j] = sum_{u,v} w[u,v] x[i+u, j+v] + b, e.g. y[0,0] = 1 + 4 + 12 + 20 + 0.5.
    /// With dY = [[1,-1],[0,2]]:
    /// dW[u,v] = sum_{i,j} dY[i,j] x[i+u, j+v], e.g. dW[0,0] = 1 - 2 + 0 + 10 = 9;
    /// db = 1 - 1 + 0 + 2 = 2;
    /// dX[h,w] = sum_{i,j} dY[i,j] w[h-i, w-j] (a full convolution), summing to sum(dY) * sum(w) = 20.
    /// A batch of fewer images than workers spreads its unrolling and its
    /// products over the workers: the output is bitwise the one-worker output,
    /// with output splits, groups and both.
    func testSmallBatchesSpreadOverWorkersWithTheSameBits() throws {
        for (groups, splits) in [(1, 2), (2, 1), (2, 4)] {
            let conv = try Conv2D<Float>(name: "conv", inputChannels: 4, outputChannels: 8, kernel: (3, 3), stride: (1, 1),
                                         padding: (1, 1), groups: groups, outputSplits: splits)
            conv.weight.value = randomFloatTensor(conv.weight.value.shape, seed: 3)
            conv.bias!.value = randomFloatTensor([8], seed: 4)
            for batch in [1, 3] {
                let input = randomFloatTensor([batch, 4, 30, 30], seed: 5)
                let one = try conv.forward(input, context: PassContext(pool: WorkerPool(workerCount: 1)))
                // Two workers on two groups at batch 1: a task per (image, group) unrolls and multiplies.
                for workers in [2, batch + 2] {
                    let many = try conv.forward(input, context: PassContext(pool: WorkerPool(workerCount: workers)))
                    XCTAssertTrue(one.isBitwiseEqual(to: many), "groups \(groups), splits \(splits), batch \(batch), \(workers) workers")
                }
            }
        }
        // A conv1-like layer (3 channels, 11x11, stride 4, padding 2). At 227x227 its
        // matrix is multiplied in five tiles of output rows; the workers' shares of the
        // 10 (tile, piece) products split tiles between them, so two workers unroll one.
        let conv1 = try Conv2D<Float>(name: "conv1", inputChannels: 3, outputChannels: 8, kernel: (11, 11),
                                      stride: (4, 4), padding: (2, 2), outputSplits: 2)
        conv1.weight.value = randomFloatTensor(conv1.weight.value.shape, seed: 6)
        conv1.bias!.value = randomFloatTensor([8], seed: 7)
        for (batch, size) in [(1, 63), (1, 227), (2, 227)] {
            let image = randomFloatTensor([batch, 3, size, size], seed: 8)
            let one = try conv1.forward(image, context: PassContext(pool: WorkerPool(workerCount: 1)))
            for workers in [2, 3, 5] {
                let many = try conv1.forward(image, context: PassContext(pool: WorkerPool(workerCount: workers)))
                XCTAssertTrue(one.isBitwiseEqual(to: many), "conv1-like, batch \(batch), \(size)x\(size), \(workers) workers")
            }
        }
        let tiled = try ConvGeometry(channels: 3, height: 227, width: 227, kernel: (11, 11), stride: (4, 4),
                                     padding: (2, 2), component: "conv1")
        XCTAssertGreaterThan(Conv2D<Float>.outputRowTiles(tiled).count, 2, "227x227 is multiplied in tiles")
    }

    func testHandComputedTwoByTwoKernel() throws {
        let conv = try Conv2D<Double>(name: "tiny", inputChannels: 1, outputChannels: 1, kernel: (2, 2))
        try conv.setWeight(Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4]))
        try conv.setBias(Tensor(shape: [1], values: [0.5]))
        let x = try Tensor<Double>(shape: [1, 1, 3, 3], values: [1, 2, 3, 4, 5, 6, 7, 8, 9])

        let y = try conv.forward(x, context: PassContext())
        T.assertExactly(y, [1, 1, 2, 2], [37.5, 47.5, 67.5, 77.5])

        let dy = try Tensor<Double>(shape: [1, 1, 2, 2], values: [1, -1, 0, 2])
        let dx = try conv.backward(dy, context: PassContext())
        T.assertExactly(dx, [1, 1, 3, 3], [1, 1, -2,
                                           3, 3, 0,
                                           0, 6, 8])
        T.assertExactly(conv.weight.gradient, [1, 1, 2, 2], [9, 11, 15, 17])
        T.assertExactly(conv.bias!.gradient, [1], [2])
    }

    /// The same x and w with padding 1 and stride 2, no bias: output 2x2 from
    /// windows whose top-left input pixel is (-1,-1), (-1,1), (1,-1), (1,1):
    /// y = [[1*4, 2*3 + 3*4], [4*2 + 7*4, 5*1 + 6*2 + 8*3 + 9*4]] = [[4, 18], [36, 77]].
    /// The windows do not overlap, so with dY = [[1,-1],[0,2]] each pixel's
    /// gradient is one dY times one weight: dX = [[4,-3,-4],[0,2,4],[0,6,8]];
    /// dW[u,v] = sum dY[i,j] x[2i-1+u, 2j-1+v] = [[10, 12], [14, 16]].
    func testHandComputedPaddedStrided() throws {
        let conv = try Conv2D<Double>(name: "tinyStrided", inputChannels: 1, outputChannels: 1, kernel: (2, 2),
                                      stride: (2, 2), padding: (1, 1), bias: false)
        XCTAssertNil(conv.bias)
        XCTAssertEqual(conv.parameters.count, 1)
        try conv.setWeight(Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4]))
        let x = try Tensor<Double>(shape: [1, 1, 3, 3], values: [1, 2, 3, 4, 5, 6, 7, 8, 9])

        let y = try conv.forward(x, context: PassContext())
        T.assertExactly(y, [1, 1, 2, 2], [4, 18, 36, 77])

        let dy = try Tensor<Double>(shape: [1, 1, 2, 2], values: [1, -1, 0, 2])
        let dx = try conv.backward(dy, context: PassContext())
        T.assertExactly(dx, [1, 1, 3, 3], [4, -3, -4,
                                           0, 2, 4,
                                           0, 6, 8])
        T.assertExactly(conv.weight.gradient, [1, 1, 2, 2], [10, 12, 14, 16])
    }

    /// Groups: with 2 groups of 1 channel, output 0 sees only input channel 0 and
    /// output 1 only channel 1 (1x1 kernels make it a per-channel scale).
    func testHandComputedGroupsKeepChannelsApart() throws {
        let conv = try Conv2D<Double>(name: "grouped", inputChannels: 2, outputChannels: 2, kernel: (1, 1), groups: 2)
        XCTAssertEqual(conv.weight.value.shape, [2, 1, 1, 1])
        try conv.setWeight(Tensor(shape: [2, 1, 1, 1], values: [2, -3]))
        try conv.setBias(Tensor(shape: [2], values: [1, 0]))
        let x = try Tensor<Double>(shape: [1, 2, 1, 2], values: [1, 2, 10, 20])
        T.assertExactly(try conv.forward(x, context: PassContext()), [1, 2, 1, 2], [3, 5, -30, -60])
        let dx = try conv.backward(Tensor(shape: [1, 2, 1, 2], values: [1, 1, 1, -1]), context: PassContext())
        T.assertExactly(dx, [1, 2, 1, 2], [2, 2, -3, 3])
        T.assertExactly(conv.weight.gradient, [2, 1, 1, 1], [3, -10])
        T.assertExactly(conv.bias!.gradient, [2], [2, 0])
    }

    func testOutputShapeFollowsFloorRule() throws {
        // The paper's conv1 on 227x227 gives 55x55: (227 - 11) / 4 + 1.
        let conv1 = try Conv2D<Float>(name: "conv1", inputChannels: 3, outputChannels: 96, kernel: (11, 11), stride: (4, 4))
        XCTAssertEqual(try conv1.outputShape(for: [2, 3, 227, 227]), [2, 96, 55, 55])
        XCTAssertEqual(conv1.weight.value.shape, [96, 3, 11, 11])
        // conv3: 384 outputs as two blocks of 192, each over all 256 inputs.
        let conv3 = try Conv2D<Float>(name: "conv3", inputChannels: 256, outputChannels: 384, kernel: (3, 3),
                                      padding: (1, 1), outputSplits: 2)
        XCTAssertEqual(try conv3.outputShape(for: [1, 256, 13, 13]), [1, 384, 13, 13])
        XCTAssertEqual(conv3.outputBlocks, [0..<192, 192..<384])
        XCTAssertEqual(conv3.weight.value.shape, [384, 256, 3, 3])
        // Floor rounding: (8 + 2 - 3) / 2 + 1 = 4.
        let odd = try Conv2D<Float>(name: "odd", inputChannels: 1, outputChannels: 1, kernel: (3, 2),
                                    stride: (2, 3), padding: (1, 0))
        XCTAssertEqual(try odd.outputShape(for: [1, 1, 8, 8]), [1, 1, 4, 3])
    }

    // MARK: Gradient checks (Float64, central differences)

    private func checkGradients(_ conv: Conv2D<Double>, input shape: Shape, seed: UInt64,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        T.randomise(conv, seed: seed)
        let input: Tensor<Double> = T.random(shape, seed: seed + 100)
        try T.assertGradientCheck(conv, input: input, file: file, line: line)
    }

    func testGradientCheckPlain() throws {
        let conv = try Conv2D<Double>(name: "plain", inputChannels: 4, outputChannels: 5, kernel: (3, 3))
        try checkGradients(conv, input: [2, 4, 7, 7], seed: 1)
    }

    func testGradientCheckGroupedStridedPaddedNonSquareKernel() throws {
        let conv = try Conv2D<Double>(name: "grouped", inputChannels: 4, outputChannels: 6, kernel: (3, 2),
                                      stride: (2, 2), padding: (1, 1), groups: 2)
        try checkGradients(conv, input: [3, 4, 7, 7], seed: 2)
    }

    func testGradientCheckOutputSplitsTwo() throws {
        let conv = try Conv2D<Double>(name: "split", inputChannels: 4, outputChannels: 6, kernel: (3, 3),
                                      padding: (1, 1), outputSplits: 2)
        try checkGradients(conv, input: [2, 4, 7, 7], seed: 3)
    }

    /// Two groups, each cut into two blocks: the finest partition (four pieces),
    /// with a partial-gradient sum inside each group.
    func testGradientCheckGroupsTwoWithOutputSplitsFour() throws {
        let conv = try Conv2D<Double>(name: "groupSplit", inputChannels: 4, outputChannels: 8, kernel: (2, 3),
                                      stride: (1, 2), padding: (0, 1), groups: 2, outputSplits: 4)
        try checkGradients(conv, input: [2, 4, 6, 7], seed: 4)
    }

    func testGradientCheckWithoutBias() throws {
        let conv = try Conv2D<Double>(name: "noBias", inputChannels: 4, outputChannels: 4, kernel: (3, 3),
                                      stride: (2, 2), padding: (1, 1), bias: false)
        XCTAssertEqual(conv.parameters.map(\.name), ["weight"])
        try checkGradients(conv, input: [2, 4, 7, 7], seed: 5)
    }

    /// Batch 11 makes gradient chunks of 2 images, so the chunk accumulation
    /// (beta 1 after a chunk's first image) is part of what is checked.
    func testGradientCheckLargerBatchAccumulatesWithinChunks() throws {
        XCTAssertTrue(Partition.gradientChunks(batch: 11).contains { $0.count > 1 })
        let conv = try Conv2D<Double>(name: "chunked", inputChannels: 2, outputChannels: 3, kernel: (3, 3),
                                      padding: (1, 1))
        try checkGradients(conv, input: [11, 2, 5, 5], seed: 6)
    }

    // MARK: Determinism

    private struct Run: Equatable {
        var output, inputGradient, weightGradient, biasGradient: Tensor<Float>
        static func == (a: Run, b: Run) -> Bool {
            a.output.isBitwiseEqual(to: b.output) && a.inputGradient.isBitwiseEqual(to: b.inputGradient)
                && a.weightGradient.isBitwiseEqual(to: b.weightGradient)
                && a.biasGradient.isBitwiseEqual(to: b.biasGradient)
        }
    }

    /// Forward and backward with seeded weights, input and output gradient.
    private func run(_ conv: Conv2D<Float>, input: Shape, pool: WorkerPool, seed: UInt64 = 40,
                     needsInputGradient: Bool = true) throws -> Run {
        T.randomise(conv, seed: seed)
        let context = PassContext(pool: pool, mode: .training, needsInputGradient: needsInputGradient)
        let x: Tensor<Float> = T.random(input, seed: seed + 10)
        let y = try conv.forward(x, context: context)
        let dy: Tensor<Float> = T.random(y.shape, seed: seed + 20)
        let dx = try conv.backward(dy, context: context)
        return Run(output: y, inputGradient: dx, weightGradient: conv.weight.gradient,
                   biasGradient: conv.bias?.gradient ?? Tensor(shape: [0]))
    }

    private func groupedConv(splits: Int = 1) throws -> Conv2D<Float> {
        try Conv2D<Float>(name: "det", inputChannels: 4, outputChannels: 8, kernel: (3, 3),
                          padding: (1, 1), groups: 2, outputSplits: splits)
    }

    /// Every result is a fixed partition of fixed-order sums, so 1, 2 and 4
    /// workers give the same bits. Batch 11 spreads over 8 gradient chunks of
    /// uneven size.
    func testBitwiseIdenticalAcrossWorkerCounts() throws {
        let reference = try run(try groupedConv(), input: [11, 4, 9, 9], pool: WorkerPool(workerCount: 1))
        for workers in [2, 4] {
            let other = try run(try groupedConv(), input: [11, 4, 9, 9], pool: WorkerPool(workerCount: workers))
            XCTAssertTrue(other.output.isBitwiseEqual(to: reference.output), "output, \(workers) workers")
            XCTAssertTrue(other.inputGradient.isBitwiseEqual(to: reference.inputGradient), "input gradient, \(workers) workers")
            XCTAssertTrue(other.weightGradient.isBitwiseEqual(to: reference.weightGradient), "weight gradient, \(workers) workers")
            XCTAssertTrue(other.biasGradient.isBitwiseEqual(to: reference.biasGradient), "bias gradient, \(workers) workers")
        }
    }

    /// A first layer's backward without its input gradient (training: nobody
    /// reads the image's) returns `[0]` and the same parameter-gradient bits,
    /// with one image per product and with several (7x7 planes).
    func testSkippedInputGradientLeavesParameterGradientsBitwiseTheSame() throws {
        for input: Shape in [[11, 4, 9, 9], [6, 4, 7, 7]] {
            let full = try run(try groupedConv(), input: input, pool: WorkerPool(workerCount: 2))
            let skipped = try run(try groupedConv(), input: input, pool: WorkerPool(workerCount: 2), needsInputGradient: false)
            XCTAssertEqual(skipped.inputGradient.shape, [0])
            XCTAssertEqual(full.inputGradient.shape, Shape(input.dims))
            XCTAssertTrue(skipped.weightGradient.isBitwiseEqual(to: full.weightGradient), "weight gradient, \(input)")
            XCTAssertTrue(skipped.biasGradient.isBitwiseEqual(to: full.biasGradient), "bias gradient, \(input)")
        }
    }

    /// The same layer reused: scratch buffers grow for a larger batch and image,
    /// are reused for a smaller one, and never change a result; gradients are
    /// overwritten by each backward, not accumulated.
    func testReuseAcrossShapesGivesTheSameBits() throws {
        let pool = WorkerPool(workerCount: 2)
        let fresh = try run(try groupedConv(), input: [3, 4, 6, 6], pool: pool)
        let reused = try groupedConv()
        _ = try run(reused, input: [3, 4, 6, 6], pool: pool)
        _ = try run(reused, input: [7, 4, 11, 11], pool: WorkerPool(workerCount: 4))
        let again = try run(reused, input: [3, 4, 6, 6], pool: pool)
        XCTAssertEqual(again, fresh)
    }

    /// outputSplits 2 vs 1 with the same weights.
    ///
    /// With groups 1, splitting cuts the rows (M) of each product into two
    /// gemm calls and the input gradient into two partial reductions added
    /// afterwards: different calls from one block's. Whether a row block of a
    /// product equals the same rows of the whole product bit for bit depends on
    /// how the BLAS kernels block it, so forward and gradients are only claimed
    /// close. With groups 2, two blocks are the groups themselves: the same
    /// pieces, the same calls, the same bits. Either way every result is bitwise
    /// equal across worker counts (testBitwiseIdenticalAcrossWorkerCounts).
    func testOutputSplitsAgreeWithOneBlockToRounding() throws {
        for groups in [1, 2] {
            let make = { (splits: Int) in
                try Conv2D<Float>(name: "split\(splits)", inputChannels: 6, outputChannels: 8, kernel: (3, 3),
                                  padding: (1, 1), groups: groups, outputSplits: splits)
            }
            let one = try run(try make(1), input: [5, 6, 7, 7], pool: WorkerPool(workerCount: 2))
            let two = try run(try make(2), input: [5, 6, 7, 7], pool: WorkerPool(workerCount: 2))
            // Reductions of at most 54 (forward) or 245 (weight gradient) terms in [-1, 1): a few ulps.
            XCTAssertLessThan(T.maxScaledDifference(two.output, one.output), 1e-5, "forward, groups \(groups)")
            XCTAssertLessThan(T.maxScaledDifference(two.weightGradient, one.weightGradient), 1e-5, "groups \(groups)")
            XCTAssertLessThan(T.maxScaledDifference(two.biasGradient, one.biasGradient), 1e-5, "groups \(groups)")
            XCTAssertLessThan(T.maxScaledDifference(two.inputGradient, one.inputGradient), 1e-5, "groups \(groups)")
            if groups == 2 {
                // Two blocks over two groups are the groups themselves: the same pieces, the same bits.
                XCTAssertTrue(two.output.isBitwiseEqual(to: one.output))
                XCTAssertTrue(two.weightGradient.isBitwiseEqual(to: one.weightGradient))
                XCTAssertTrue(two.inputGradient.isBitwiseEqual(to: one.inputGradient))
            }
            for workers in [1, 4] {
                let other = try run(try make(2), input: [5, 6, 7, 7], pool: WorkerPool(workerCount: workers))
                XCTAssertEqual(other, two, "outputSplits 2, groups \(groups), \(workers) workers")
            }
        }
    }

    /// The same agreement at a size where OpenBLAS leaves its small-matrix path
    /// for its blocked one (M*N*K = 96 * 169 * 576, about 9.3 million): close,
    /// not bitwise, since a row block is a different call (see above).
    func testOutputSplitsAgreeAtBlockedGemmSize() throws {
        let make = { (splits: Int) in
            try Conv2D<Float>(name: "wide\(splits)", inputChannels: 64, outputChannels: 96, kernel: (3, 3),
                              padding: (1, 1), outputSplits: splits)
        }
        let (one, two) = (try make(1), try make(2))
        T.randomise(one, seed: 70)
        T.randomise(two, seed: 70)
        let x: Tensor<Float> = T.random([2, 64, 13, 13], seed: 71)
        let context = PassContext(pool: WorkerPool(workerCount: 2))
        let a = try one.forward(x, context: context)
        let b = try two.forward(x, context: context)
        // 576 products of values in [-1, 1): a few ulps of sums up to ~30.
        XCTAssertLessThan(T.maxScaledDifference(a, b), 1e-5)
    }

    // MARK: Precision

    /// Float32 against Float64 with the same (Float32-representable) weights and
    /// input. Standard error analysis bounds each Float32 output by
    /// (K + 1) u (sum |w x| + |b|) for a dot product of K terms and one bias add
    /// (u = 2^-24); the sum of magnitudes is the Float64 layer run on |x|, |w|, |b|.
    func testFloat32AgreesWithFloat64WithinRoundingBound() throws {
        let make = { () -> (Conv2D<Double>, Conv2D<Float>) in
            (try Conv2D<Double>(name: "f64", inputChannels: 6, outputChannels: 4, kernel: (3, 3),
                                stride: (2, 2), padding: (1, 1), groups: 2),
             try Conv2D<Float>(name: "f32", inputChannels: 6, outputChannels: 4, kernel: (3, 3),
                               stride: (2, 2), padding: (1, 1), groups: 2))
        }
        let (c64, c32) = try make()
        let x32: Tensor<Float> = T.random([2, 6, 9, 9], seed: 80)
        let w32: Tensor<Float> = T.random(c32.weight.value.shape, seed: 81)
        let b32: Tensor<Float> = T.random([4], seed: 82)
        try c32.setWeight(w32)
        try c32.setBias(b32)
        try c64.setWeight(Tensor(converting: w32))
        try c64.setBias(Tensor(converting: b32))
        let y32 = try c32.forward(x32, context: PassContext())
        let y64 = try c64.forward(Tensor(converting: x32), context: PassContext())

        let (magnitude, _) = try make()
        try magnitude.setWeight(T.absolute(Tensor(converting: w32)))
        try magnitude.setBias(T.absolute(Tensor(converting: b32)))
        let bound = try magnitude.forward(T.absolute(Tensor(converting: x32)), context: PassContext())

        let k = Double(3 * 3 * 3)  // channels per group * kh * kw
        let u = 0x1p-24
        var worst = 0.0
        for i in 0..<y64.count {
            let error = abs(Double(y32.storage[i]) - y64.storage[i])
            XCTAssertLessThanOrEqual(error, (k + 1) * u * bound.storage[i] * 1.001, "element \(i)")
            worst = max(worst, error / max(bound.storage[i], .leastNormalMagnitude))
        }
        XCTAssertGreaterThan(worst, 0, "Float32 should round somewhere; equal results suggest both ran in one precision")
    }

    // MARK: Errors

    private func trainedConv() throws -> Conv2D<Double> {
        try Conv2D<Double>(name: "convE", inputChannels: 3, outputChannels: 4, kernel: (3, 3))
    }

    func testWrongRankNamesLayerAndShape() throws {
        let conv = try trainedConv()
        let error = T.expectError(ShapeError.self) { try conv.forward(Tensor(shape: [2, 3, 7]), context: PassContext()) }
        XCTAssertEqual(error?.operation, "convE")
        XCTAssertEqual(error?.actual, [2, 3, 7])
        XCTAssertTrue(error?.description.contains("convE") ?? false)
        XCTAssertTrue(error?.description.contains("[2, 3, 7]") ?? false, error?.description ?? "")
    }

    func testWrongChannelCountNamesLayerAndShape() throws {
        let conv = try trainedConv()
        let error = T.expectError(ShapeError.self) { try conv.forward(Tensor(shape: [2, 5, 7, 7]), context: PassContext()) }
        XCTAssertTrue(error?.description.contains("convE") ?? false)
        XCTAssertTrue(error?.description.contains("[2, 5, 7, 7]") ?? false, error?.description ?? "")
        XCTAssertTrue(error?.description.contains("[N, 3, H, W]") ?? false, error?.description ?? "")
    }

    func testInputSmallerThanKernelNamesLayerAndShape() throws {
        let conv = try trainedConv()
        let error = T.expectError(ShapeError.self) { try conv.forward(Tensor(shape: [1, 3, 2, 5]), context: PassContext()) }
        XCTAssertTrue(error?.description.contains("convE") ?? false)
        XCTAssertTrue(error?.description.contains("[1, 3, 2, 5]") ?? false, error?.description ?? "")
        XCTAssertTrue(error?.description.contains("kernel 3x3") ?? false, error?.description ?? "")
        // Padding makes the same input acceptable.
        let padded = try Conv2D<Double>(name: "padded", inputChannels: 3, outputChannels: 4, kernel: (3, 3), padding: (1, 1))
        XCTAssertEqual(try padded.forward(Tensor(shape: [1, 3, 2, 5]), context: PassContext()).shape, [1, 4, 2, 5])
    }

    func testBackwardBeforeForwardNamesLayer() throws {
        let conv = try trainedConv()
        let error = T.expectError(ConfigurationError.self) {
            try conv.backward(Tensor(shape: [1, 4, 5, 5]), context: PassContext())
        }
        XCTAssertEqual(error?.component, "convE")
        XCTAssertTrue(error?.description.contains("before forward") ?? false, error?.description ?? "")
    }

    func testBackwardWithWrongGradientShapeNamesLayerAndShape() throws {
        let conv = try trainedConv()
        _ = try conv.forward(Tensor(shape: [2, 3, 7, 7]), context: PassContext())
        let error = T.expectError(ShapeError.self) {
            try conv.backward(Tensor(shape: [2, 4, 4, 5]), context: PassContext())
        }
        XCTAssertEqual(error?.argument, "outputGradient")
        XCTAssertTrue(error?.description.contains("convE") ?? false)
        XCTAssertTrue(error?.description.contains("[2, 4, 4, 5]") ?? false, error?.description ?? "")
        XCTAssertTrue(error?.description.contains("[2, 4, 5, 5]") ?? false, error?.description ?? "")
    }

    func testSettingParametersChecksShapes() throws {
        let conv = try trainedConv()
        let error = T.expectError(ShapeError.self) { try conv.setWeight(Tensor(shape: [4, 3, 3, 2])) }
        XCTAssertTrue(error?.description.contains("convE: weight has shape [4, 3, 3, 2]") ?? false, error?.description ?? "")
        let noBias = try Conv2D<Double>(name: "nb", inputChannels: 1, outputChannels: 1, kernel: (1, 1), bias: false)
        XCTAssertNotNil(T.expectError(ConfigurationError.self) { try noBias.setBias(Tensor(shape: [1])) })
    }

    /// Parameters can be replaced through `parameters`; a wrong shape is caught
    /// before any pointer is read.
    func testReplacedParameterWithWrongShapeIsAnError() throws {
        let conv = try trainedConv()
        conv.weight.value = Tensor(shape: [4, 3, 3])
        let error = T.expectError(ShapeError.self) { try conv.forward(Tensor(shape: [1, 3, 5, 5]), context: PassContext()) }
        XCTAssertEqual(error?.argument, "weight")
        XCTAssertTrue(error?.description.contains("convE: weight has shape [4, 3, 3]") ?? false, error?.description ?? "")
        conv.weight.value = Tensor(shape: conv.weightShape)
        conv.bias?.value = Tensor(shape: [5])
        XCTAssertEqual(T.expectError(ShapeError.self) {
            try conv.forward(Tensor(shape: [1, 3, 5, 5]), context: PassContext())
        }?.argument, "bias")
    }

    func testConfigurationErrorsNameLayer() {
        let bad: [(String, () throws -> Conv2D<Float>)] = [
            ("groups \(3) must divide", { try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (3, 3), groups: 3) }),
            ("groups 2 must divide", { try Conv2D(name: "c", inputChannels: 4, outputChannels: 5, kernel: (3, 3), groups: 2) }),
            ("outputSplits 4 must divide the output", {
                try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (3, 3), outputSplits: 4) }),
            ("outputSplits 3 must divide groups", {
                try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (3, 3), groups: 2, outputSplits: 3) }),
            ("outputSplits is 0", { try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (3, 3), outputSplits: 0) }),
            ("kernel 0x3", { try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (0, 3)) }),
            ("stride 1x0", { try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (3, 3), stride: (1, 0)) }),
            ("padding -1x0", { try Conv2D(name: "c", inputChannels: 4, outputChannels: 6, kernel: (3, 3), padding: (-1, 0)) }),
            ("channel counts", { try Conv2D(name: "c", inputChannels: 0, outputChannels: 6, kernel: (3, 3)) }),
        ]
        for (message, make) in bad {
            let error = T.expectError(ConfigurationError.self) { try make() }
            XCTAssertEqual(error?.component, "c")
            XCTAssertTrue(error?.problem.contains(message) ?? false, "\(message) not in: \(error?.description ?? "")")
        }
    }

    /// A batch of zero images is valid: empty output, empty input gradient, zero
    /// parameter gradients.
    func testEmptyBatch() throws {
        let conv = try Conv2D<Float>(name: "empty", inputChannels: 2, outputChannels: 3, kernel: (3, 3))
        T.randomise(conv, seed: 9)
        let y = try conv.forward(Tensor(shape: [0, 2, 5, 5]), context: PassContext())
        XCTAssertEqual(y.shape, [0, 3, 3, 3])
        let dx = try conv.backward(Tensor(shape: [0, 3, 3, 3]), context: PassContext())
        XCTAssertEqual(dx.shape, [0, 2, 5, 5])
        XCTAssertTrue(conv.weight.gradient.storage.allSatisfy { $0 == 0 })
        XCTAssertEqual(conv.weight.gradient.shape, conv.weight.value.shape)
    }
}
