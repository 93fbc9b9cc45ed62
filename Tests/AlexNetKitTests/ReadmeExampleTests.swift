import XCTest
import AlexNetKit

/// The README's library example, so it keeps compiling and giving the shape it promises.
final class ReadmeExampleTests: XCTestCase {
    func testLibraryExampleGivesPool1Shape() throws {
        let pool = WorkerPool(workerCount: 2)
        let conv1 = try Conv2D<Float>(name: "conv1", inputChannels: 3, outputChannels: 96,
                                      kernel: (11, 11), stride: (4, 4))
        let lrn1 = try LocalResponseNorm<Float>(name: "lrn1", size: 5, alpha: 1e-4, beta: 0.75, k: 2,
                                                convention: .paper)
        let pool1 = try MaxPool2D<Float>(name: "pool1", kernel: (3, 3), stride: (2, 2), rounding: .floor)

        let training = PassContext(pool: pool, mode: .training, step: 0)
        let x = Tensor<Float>(shape: [1, 3, 227, 227])  // the README uses 8 images
        let y = try pool1.forward(lrn1.forward(conv1.forward(x, context: training), context: training),
                                  context: training)
        XCTAssertEqual(y.shape, [1, 96, 27, 27])
    }

    func testNetworkAndTowersExample() throws {
        let pool = WorkerPool(workerCount: 2)
        let spec = try ModelZoo.spec(named: "cifar-towers", classes: 10, towers: 2, inputShape: [1, 28, 28])
        let network = try Network<Float>(spec: spec, seed: 0)
        let sgd = SGD<Float>(learningRate: 0.01, form: .paper)
        let batch = Tensor<Float>(shape: [4, 1, 28, 28]), labels = [0, 1, 2, 3]
        let step = PassContext(pool: pool, mode: .training, step: 0)
        let loss = try network.forwardBackward(batch, labels: labels, context: step)
        XCTAssertTrue(loss.loss.isFinite)
        try sgd.step(network.namedParameters.map(\.parameter), pool: pool)

        let towers = try TowerNetwork(copying: network, workersPerTower: 1)
        let scores = try towers.forward(batch, context: step)
        XCTAssertTrue(scores.isBitwiseEqual(to: try network.forward(batch, context: step)))
        XCTAssertFalse(towers.crossings.isEmpty)
    }
}
