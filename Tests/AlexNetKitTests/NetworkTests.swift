import XCTest
@testable import AlexNetKit

final class NetworkTests: XCTestCase {
    /// Every layer recycles its output and gradient buffers; a stale element left
    /// from the previous pass would show up here, because the second pass's
    /// input differs from the first's.
    func testRecycledBuffersGiveTheSameBitsAsFreshOnes() throws {
        let spec = try smallTowerSpec()
        let first = randomFloatTensor([4, 3, 32, 32], seed: 1)
        let second = randomFloatTensor([4, 3, 32, 32], seed: 2)
        let labels = [1, 2, 3, 4]
        let context = PassContext(pool: WorkerPool(workerCount: 2), mode: .training, step: 1)

        let reused = try Network<Float>(spec: spec, seed: 3)
        _ = try reused.forwardBackward(first, labels: labels, context: context)
        _ = try reused.forwardBackward(second, labels: labels, context: context)
        let fresh = try Network<Float>(spec: spec, seed: 3)
        _ = try fresh.forwardBackward(second, labels: labels, context: context)

        for (index, (a, b)) in zip(reused.activations, fresh.activations).enumerated() {
            XCTAssertTrue(a.isBitwiseEqual(to: b), "activation \(index)")
        }
        for (index, (a, b)) in zip(reused.gradients, fresh.gradients).enumerated() {
            XCTAssertTrue(a.isBitwiseEqual(to: b), "gradient \(index)")
        }
        for ((name, a), (_, b)) in zip(reused.namedParameters, fresh.namedParameters) {
            XCTAssertTrue(a.gradient.isBitwiseEqual(to: b.gradient), name)
        }
    }

    /// A tensor the caller still holds is never overwritten by the next pass.
    func testHeldOutputsAreNotOverwritten() throws {
        let network = try Network<Float>(spec: try smallTowerSpec(), seed: 3)
        let scores = try network.forward(randomFloatTensor([2, 3, 32, 32], seed: 1), context: PassContext())
        let copy = try Tensor(shape: scores.shape, values: scores.storage)
        _ = try network.forward(randomFloatTensor([2, 3, 32, 32], seed: 2), context: PassContext())
        XCTAssertTrue(scores.isBitwiseEqual(to: copy))
    }

    func testInitialisationFollowsThePaper() throws {
        let network = try Network<Double>(spec: try paperLikeSpec(fc: 256, classes: 10), seed: 11)
        for (name, parameter) in network.namedParameters {
            let values = parameter.value.storage
            if name.hasSuffix(".bias") {
                let expected: Double = ["conv2", "conv4", "conv5", "fc6", "fc7"].contains { name.hasPrefix($0 + ".") } ? 1 : 0
                XCTAssertTrue(values.allSatisfy { $0 == expected }, "\(name) starts at \(expected)")
            } else {
                let mean = values.reduce(0, +) / Double(values.count)
                let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
                XCTAssertEqual(mean, 0, accuracy: 4 * 0.01 / Double(values.count).squareRoot(), name)
                XCTAssertEqual(std, 0.01, accuracy: 0.01 * 0.05, name)  // >= 34,848 draws per weight: within 5%
            }
        }
    }

    func testWeightsAreAPureFunctionOfTheSeed() throws {
        let spec = try smallTowerSpec()
        let a = try Network<Float>(spec: spec, seed: 4), b = try Network<Float>(spec: spec, seed: 4)
        let c = try Network<Float>(spec: spec, seed: 5)
        XCTAssertTrue(a.namedParameters[0].parameter.value.isBitwiseEqual(to: b.namedParameters[0].parameter.value))
        XCTAssertFalse(a.namedParameters[0].parameter.value.isBitwiseEqual(to: c.namedParameters[0].parameter.value))
    }

    func testWrongInputShapeNamesTheModel() throws {
        let network = try Network<Float>(spec: try smallTowerSpec())
        let error = captureError { try network.forward(Tensor(shape: [2, 1, 32, 32]), context: PassContext()) } as? ShapeError
        XCTAssertEqual(error?.description, "small-towers: input has shape [2, 1, 32, 32], expected [N, 3, 32, 32]")
        XCTAssertThrowsError(try Network<Float>(spec: try smallTowerSpec()).backward(Tensor(shape: [2, 10]), context: PassContext()))
    }
}
