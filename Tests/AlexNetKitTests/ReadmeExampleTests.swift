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
}
