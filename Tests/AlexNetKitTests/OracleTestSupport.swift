import Foundation
import XCTest
@testable import AlexNetKit

/// Builders shared by the oracle tests: small models, our own traces, and
/// traces made under a wrong convention but labelled with the right spec.
enum OracleFixtures {
    static let sgd = TraceSGD(form: .paper, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4)

    /// The shipped `cifar-towers` model (two towers, LRN, dropout, an exchanging conv3) on
    /// 16x16 grey images, which it takes like any input its layers fit: small enough for debug builds.
    static func cifarTowers() throws -> ModelSpec {
        try ModelZoo.spec(named: "cifar-towers", inputShape: [1, 16, 16])
    }

    /// A small one-tower net with every layer kind the paper uses and paper conventions:
    /// conv, ReLU, LRN (paper alpha), floor max pooling, dropout (paper scaling), linear.
    static func smallPaperNet(lrn: LRNConvention = .paper, dropout: DropoutScaling = .paper,
                              pool: PoolRounding = .floor) throws -> ModelSpec {
        try ModelSpec(name: "small-paper", inputShape: [3, 16, 16], towers: 1, layers: [
            LayerSpec(name: "conv1", .convolution(outputs: 8, kernel: 3, stride: 1, padding: 1, groups: 1, bias: .constant(0))),
            LayerSpec(name: "relu1", .relu),
            LayerSpec(name: "lrn1", .localResponseNorm(size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: lrn)),
            LayerSpec(name: "pool1", .maxPool(kernel: 3, stride: 2, padding: 0, rounding: pool)),
            LayerSpec(name: "conv2", .convolution(outputs: 8, kernel: 3, stride: 1, padding: 1, groups: 2, bias: .constant(1))),
            LayerSpec(name: "relu2", .relu),
            LayerSpec(name: "pool2", .maxPool(kernel: 3, stride: 2, padding: 0, rounding: .floor)),
            LayerSpec(name: "fc3", .linear(outputs: 16, bias: .constant(1))),
            LayerSpec(name: "relu3", .relu),
            LayerSpec(name: "drop3", .dropout(rate: 0.5, scaling: dropout)),
            LayerSpec(name: "fc4", .linear(outputs: 10, bias: .constant(0))),
        ])
    }

    /// Our own trace of one training step of `spec` (seeded weights and batch, paper-like pixel values).
    static func trace<T: TensorElement>(_ spec: ModelSpec, _: T.Type, batch: Int = 2, seed: UInt64 = 1,
                                        sgd: TraceSGD? = OracleFixtures.sgd, towerTensors: Bool = false,
                                        initialisation: Initialisation = .he) throws -> Trace {
        let network = try Network<T>(spec: spec, seed: seed, initialisation: initialisation)
        let input: Tensor<T> = TraceRecorder.randomBatch(count: batch, shape: spec.inputShape, seed: seed)
        let labels = TraceRecorder.randomLabels(count: batch, classes: spec.classes, seed: seed)
        return try TraceRecorder.record(network: network, input: input, labels: labels, mode: .training, sgd: sgd,
                                        towerTensors: towerTensors)
    }

    /// A trace made by `producedBy` but labelled with `spec` (same weights, batch and masks).
    static func mislabelled<T: TensorElement>(producedBy wrong: ModelSpec, labelledAs spec: ModelSpec, _: T.Type,
                                              batch: Int = 2, seed: UInt64 = 1, sgd: TraceSGD? = OracleFixtures.sgd,
                                              recordedSGD: TraceSGD? = nil) throws -> Trace {
        var trace = try OracleFixtures.trace(wrong, T.self, batch: batch, seed: seed, sgd: recordedSGD ?? sgd)
        trace.spec = spec
        trace.sgd = sgd
        return trace
    }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("oracle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Asserts the report agrees everywhere, printing its table otherwise.
func assertAgrees(_ report: OracleReport, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(report.passed, report.table(), file: file, line: line)
    XCTAssertEqual(report.exitStatus, 0, file: file, line: line)
}

/// Asserts the first divergence is `tensor` and that its findings include `code`.
func assertFirstDivergence(_ report: OracleReport, _ tensor: String, finding code: String?,
                           file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(report.passed, report.table(), file: file, line: line)
    XCTAssertEqual(report.exitStatus, 1, file: file, line: line)
    XCTAssertEqual(report.firstDivergence?.name, tensor, report.table(), file: file, line: line)
    if let code {
        XCTAssertTrue(report.firstDivergence?.findings.contains { $0.code == code } ?? false,
                      "expected a \(code) finding:\n" + report.table(), file: file, line: line)
    }
}
