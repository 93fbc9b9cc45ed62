import XCTest
@testable import AlexNetKit

/// `alexnet bench`'s per-layer figures run each layer as a training step does.
final class BenchLayerFiguresTests: XCTestCase {
    /// The first layer skips its input gradient in training (nobody reads the
    /// image's gradient), so its backward counts one product of the forward's
    /// size, and every later layer with a product counts two.
    func testBackwardCountsTheProductsTrainingRuns() throws {
        let spec = try ModelZoo.layers80sec(classes: 10, inputShape: [1, 28, 28])
        let bench = try ThroughputBenchmark(spec: spec, settings: .init(batch: 2, threads: 1, warmup: 0, repetitions: 1))
        let layers = try bench.run().layers
        let products = layers.enumerated().filter { $0.element.multiplyAdds > 0 }
        XCTAssertGreaterThan(products.count, 2)
        XCTAssertEqual(products.first?.offset, 0, "layers-80sec starts with a convolution")
        for (index, layer) in products {
            let gflops = try XCTUnwrap(layer.backwardGflops, layer.name)
            let flops = gflops * 1e9 * layer.backwardMs / 1e3
            let products = index == 0 ? 1.0 : 2.0
            XCTAssertEqual(flops / (2 * Double(layer.multiplyAdds)), products, accuracy: 1e-9, layer.name)
        }
    }
}
