import XCTest
@testable import AlexNetKit

/// Random values pushed at least 0.05 away from 0, so h = 1e-5 never crosses ReLU's kink.
private func awayFromZero(_ shape: Shape, seed: UInt64) -> Tensor<Double> {
    var t = GradientCheck.randomUniform(shape: shape, seed: seed)
    t.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] += b[i] < 0 ? -0.05 : 0.05 } }
    return t
}

final class ReLUTests: XCTestCase {
    func testHandCase() throws {
        let relu = ReLU<Float>()
        let x = try Tensor<Float>(shape: [1, 5], values: [-1, 0, 2, -0.5, 3])
        let y = try relu.forward(x, context: PassContext(mode: .training))
        XCTAssertEqual(y.storage, [0, 0, 2, 0, 3])
        let dx = try relu.backward(try Tensor(shape: [1, 5], values: [10, 20, 30, 40, 50]), context: PassContext())
        XCTAssertEqual(dx.storage, [0, 0, 30, 0, 50], "gradient is 0 at x <= 0")
    }

    func testNaNIsPropagatedNotHidden() throws {
        let x = try Tensor<Float>(shape: [9], values: [1, -1, .nan, 2, 3, 4, 5, 6, .nan])  // NaN in SIMD body and tail
        let y = try ReLU<Float>().forward(x, context: PassContext())
        XCTAssertTrue(y.storage[2].isNaN)
        XCTAssertTrue(y.storage[8].isNaN)
    }

    func testGradientCheck() throws {
        assertGradientsMatch(try GradientCheck.check(layer: ReLU<Double>(), input: awayFromZero([2, 3, 4, 5], seed: 3)))
    }
}

final class TanhTests: XCTestCase {
    func testHandCase() throws {
        let tanh = Tanh<Double>()
        let y = try tanh.forward(try Tensor(shape: [1, 2], values: [0.5, 0]), context: PassContext())
        XCTAssertEqual(y.storage[0], 0.46211715726000974, accuracy: 1e-15)
        XCTAssertEqual(y.storage[1], 0)
        let dx = try tanh.backward(try Tensor(shape: [1, 2], values: [1, 2]), context: PassContext())
        XCTAssertEqual(dx.storage[0], 0.7864477329659274, accuracy: 1e-15)  // 1 - tanh(0.5)^2
        XCTAssertEqual(dx.storage[1], 2)
    }

    func testGradientCheck() throws {
        assertGradientsMatch(try GradientCheck.check(layer: Tanh<Double>(), input: GradientCheck.randomUniform(shape: [2, 3, 4, 5], seed: 4)))
    }
}

final class DropoutTests: XCTestCase {
    let training = PassContext(mode: .training, step: 11)

    func testPaperScalingHalvesAtTestTimeAndOnlyMasksInTraining() throws {
        let dropout = try Dropout<Float>(rate: 0.5, scaling: .paper)
        let x = try Tensor<Float>(shape: [1, 4], values: [2, 4, 6, 8])
        XCTAssertEqual(try dropout.forward(x, context: PassContext(mode: .inference)).storage, [1, 2, 3, 4])
        try dropout.injectMask(try Tensor(shape: [1, 4], values: [1, 0, 0, 1]))
        XCTAssertEqual(try dropout.forward(x, context: training).storage, [2, 0, 0, 8])
        XCTAssertEqual(try dropout.backward(try Tensor(shape: [1, 4], values: [1, 1, 1, 1]), context: training).storage, [1, 0, 0, 1])
    }

    func testInvertedScalingDoublesInTrainingAndIsIdentityAtTestTime() throws {
        let dropout = try Dropout<Float>(rate: 0.5, scaling: .inverted)
        let x = try Tensor<Float>(shape: [1, 4], values: [2, 4, 6, 8])
        XCTAssertEqual(try dropout.forward(x, context: PassContext(mode: .inference)).storage, [2, 4, 6, 8])
        try dropout.injectMask(try Tensor(shape: [1, 4], values: [1, 0, 0, 1]))
        XCTAssertEqual(try dropout.forward(x, context: training).storage, [4, 0, 0, 16])
        XCTAssertEqual(try dropout.backward(try Tensor(shape: [1, 4], values: [1, 1, 1, 1]), context: training).storage, [2, 0, 0, 2])
    }

    func testGeneratedMaskFollowsTheDocumentedKeyAndRate() throws {
        let dropout = try Dropout<Float>(rate: 0.5, scaling: .paper, seed: 42, stream: 6)
        let mask = dropout.generatedMask(shape: [4, 50_000], step: 3)
        let stream = RandomStream(seed: 42, step: 3, stream: 6)
        XCTAssertEqual(mask.storage, (0..<mask.count).map { stream.uniform($0) >= 0.5 ? 1 : 0 })
        let kept = mask.storage.reduce(0, +) / Float(mask.count)
        XCTAssertEqual(kept, 0.5, accuracy: 0.005)
        XCTAssertFalse(mask.isBitwiseEqual(to: dropout.generatedMask(shape: [4, 50_000], step: 4)), "each step draws anew")
    }

    /// A tower's slice draws element (n, j) from number n * rowLength + offset + j: checked
    /// for every element with rows that start inside Philox blocks (offset 3, 7 per image,
    /// rows of 13), on one and three workers.
    func testSlicedMaskFollowsTheDocumentedKeyForEveryElement() throws {
        let dropout = try Dropout<Float>(rate: 0.4, scaling: .inverted, seed: 5, stream: 2, slice: (offset: 3, rowLength: 13))
        let stream = RandomStream(seed: 5, step: 9, stream: 2)
        let expected: [Float] = (0..<(5 * 7)).map { i in stream.uniform((i / 7) * 13 + 3 + i % 7) >= 0.4 ? 1 : 0 }
        for workers in [1, 3] {
            let mask = dropout.generatedMask(shape: [5, 7], step: 9, pool: WorkerPool(workerCount: workers))
            XCTAssertEqual(mask.storage, expected, "\(workers) worker(s)")
        }
    }

    func testMaskIsTheSameForAnyThreadCount() throws {
        let dropout = try Dropout<Float>(rate: 0.3, scaling: .inverted, seed: 9)
        let reference = dropout.generatedMask(shape: [3, 100_000], step: 1, pool: .serial)
        for workers in [2, 4] {
            XCTAssertTrue(reference.isBitwiseEqual(to: dropout.generatedMask(shape: [3, 100_000], step: 1,
                                                                             pool: WorkerPool(workerCount: workers))))
        }
    }

    func testGradientCheckWithFixedMaskBothScalings() throws {
        for scaling in DropoutScaling.allCases {
            let generated = try Dropout<Double>(rate: 0.5, scaling: scaling, seed: 5)
            assertGradientsMatch(try GradientCheck.check(layer: generated, input: GradientCheck.randomUniform(shape: [3, 20], seed: 1),
                                                         context: training))
            let injected = try Dropout<Double>(rate: 0.25, scaling: scaling)
            try injected.injectMask(injected.generatedMask(shape: [3, 20], step: 99))
            assertGradientsMatch(try GradientCheck.check(layer: injected, input: GradientCheck.randomUniform(shape: [3, 20], seed: 2),
                                                         context: training))
        }
    }

    func testErrorsNameTheLayerAndProblem() throws {
        XCTAssertEqual((captureError { try Dropout<Float>(name: "drop6", rate: 1, scaling: .paper) } as? ConfigurationError)?.description,
                       "drop6: dropout rate 1.0 must be in [0, 1)")
        let dropout = try Dropout<Float>(name: "drop7", scaling: .paper)
        XCTAssertEqual((captureError { try dropout.injectMask(try Tensor(shape: [2], values: [1, 0.5])) } as? ConfigurationError)?.description,
                       "drop7: injected mask must hold only 0 and 1; element 1 is 0.5")
        try dropout.injectMask(Tensor(shape: [2, 3], repeating: 1))
        let wrong = captureError { try dropout.forward(Tensor(shape: [2, 4]), context: self.training) } as? ShapeError
        XCTAssertEqual(wrong?.description, "drop7: injected mask has shape [2, 3], expected [2, 4]")
        XCTAssertThrowsError(try Dropout<Float>(name: "d", scaling: .paper).backward(Tensor(shape: [1]), context: training))
    }
}

final class SoftmaxCrossEntropyTests: XCTestCase {
    func testHandCase() throws {
        let loss = SoftmaxCrossEntropy<Double>()
        let out = try loss.forward(logits: try Tensor(shape: [1, 3], values: [1, 2, 3]), labels: [2])
        // log(e + e^2 + e^3) - 3, and softmax([1, 2, 3]), computed by hand with Python's math module.
        XCTAssertEqual(out.loss, 0.40760596444438013, accuracy: 1e-15)
        assertClose(out.probabilities, [0.09003057317038046, 0.24472847105479767, 0.6652409557748219], tolerance: 1e-15)
        assertClose(try loss.backward(), [0.09003057317038046, 0.24472847105479767, 0.6652409557748219 - 1], tolerance: 1e-15)
        XCTAssertEqual(out.top1Correct, 1)
    }

    func testLargeLogitsStayFinite() throws {
        let out = try SoftmaxCrossEntropy<Float>().forward(logits: try Tensor(shape: [1, 2], values: [1000, 0]), labels: [1])
        XCTAssertEqual(out.loss, 1000, accuracy: 1e-3)
    }

    func testGradientCheck() throws {
        let logits = GradientCheck.randomUniform(shape: [4, 7], seed: 8)
        let labels = [0, 6, 3, 3]
        let loss = SoftmaxCrossEntropy<Double>()
        _ = try loss.forward(logits: logits, labels: labels)
        let result = try GradientCheck.check(name: "softmax", at: logits, analytic: try loss.backward()) {
            try SoftmaxCrossEntropy<Double>().forward(logits: $0, labels: labels).loss
        }
        assertGradientsMatch([result])
    }

    func testTopKBreaksTiesByClassIndex() throws {
        // Row 0: label 2 ties with class 0 for the top: class 0 ranks first, so top-1 misses, top-2 hits.
        // Row 1: label 0 has four larger logits: top-5 hits, top-4 would not.
        let logits = try Tensor<Float>(shape: [2, 6], values: [5, 1, 5, 0, 0, 0,
                                                               1, 2, 3, 4, 5, 0])
        XCTAssertEqual(SoftmaxCrossEntropy.topKCorrect(logits: logits, labels: [2, 0], k: 1), 0)
        XCTAssertEqual(SoftmaxCrossEntropy.topKCorrect(logits: logits, labels: [2, 0], k: 2), 1)
        XCTAssertEqual(SoftmaxCrossEntropy.topKCorrect(logits: logits, labels: [2, 0], k: 4), 1)
        XCTAssertEqual(SoftmaxCrossEntropy.topKCorrect(logits: logits, labels: [2, 0], k: 5), 2)
    }

    func testBadLabelsAndShapesAreNamed() {
        let loss = SoftmaxCrossEntropy<Float>(name: "loss")
        let logits = Tensor<Float>(shape: [2, 10])
        XCTAssertEqual((captureError { try loss.forward(logits: logits, labels: [3, 10]) } as? ConfigurationError)?.description,
                       "loss: label 10 of image 1 is outside 0..<10")
        XCTAssertEqual((captureError { try loss.forward(logits: logits, labels: [3]) } as? ShapeError)?.description,
                       "loss: labels has shape [1], expected [2] (one per logits row)")
        XCTAssertTrue(captureError { try loss.forward(logits: Tensor(shape: [2, 10, 1]), labels: [1, 2]) } is ShapeError)
    }

    func testNaNLogitsGiveANaNLossThatTheFinitenessCheckCatches() throws {
        let out = try SoftmaxCrossEntropy<Float>().forward(logits: try Tensor(shape: [1, 3], values: [1, .nan, 0]), labels: [0])
        XCTAssertTrue(out.loss.isNaN)
        XCTAssertEqual(out.top1Correct, 0)
        XCTAssertThrowsError(try Tensor(shape: [1], values: [out.loss]).checkFinite(name: "loss"))
    }
}

final class ElementwiseDeterminismTests: XCTestCase {
    /// 3 * 70,000 elements span several fixed spans, so several workers really share the work.
    func testOutputsAndGradientsAreBitwiseEqualForOneTwoFourWorkers() throws {
        let x = randomFloatTensor([3, 70_000], seed: 12)
        let g = randomFloatTensor([3, 70_000], seed: 13)
        func run(_ workers: Int) throws -> [Tensor<Float>] {
            let context = PassContext(pool: WorkerPool(workerCount: workers), mode: .training, step: 2)
            var results: [Tensor<Float>] = []
            let layers: [any Layer] = [ReLU<Float>(), Tanh<Float>(), try Dropout<Float>(scaling: .inverted, seed: 3)]
            for layer in layers {
                results.append(try forwardBackward(layer, x, g, context))
            }
            return results
        }
        let reference = try run(1)
        for workers in [2, 4] {
            for (a, b) in zip(reference, try run(workers)) { XCTAssertTrue(a.isBitwiseEqual(to: b), "workers \(workers)") }
        }
    }
}

private func forwardBackward<L: Layer>(_ layer: L, _ x: Tensor<Float>, _ g: Tensor<Float>, _ context: PassContext) throws -> Tensor<Float> {
    let x = x as! Tensor<L.Element>
    let y = try layer.forward(x, context: context)
    let dx = try layer.backward(g as! Tensor<L.Element>, context: context)
    return Tensor<Float>(converting: try Tensor(shape: [2 * y.count], values: y.storage + dx.storage))
}
