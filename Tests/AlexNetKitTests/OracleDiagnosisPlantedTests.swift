import XCTest
@testable import AlexNetKit

/// The diagnoses that had no test planting their cause: each test makes a trace
/// whose producer made exactly that mistake and checks that the first
/// divergence is the tensor it touches and that the diagnosis names it.
final class OracleDiagnosisPlantedTests: XCTestCase {
    private static let forwardOnly = OracleOptions(compare: [.forward])

    /// A Float64 layer trace of `produced` on a seeded input, labelled as `labelled`.
    private func layerTrace(produced: LayerSpec, labelled: LayerSpec, input shape: Shape,
                            mask: Tensor<Double>? = nil) throws -> Trace {
        let input = GradientCheck.randomUniform(shape: shape, seed: 3)
        var trace = try TraceRecorder.recordLayer(produced, parameters: [:], input: input, outputGradient: nil, mask: mask)
        trace.layer = labelled
        return trace
    }

    /// LRN with Caffe's default k = 1 where the spec says the paper's k = 2.
    func testLRNWithTheOtherKIsRecognised() throws {
        func lrn(k: Double) -> LayerSpec {
            LayerSpec(name: "lrn", .localResponseNorm(size: 5, alpha: 1e-2, beta: 0.75, k: k, convention: .paper))
        }
        let trace = try layerTrace(produced: lrn(k: 1), labelled: lrn(k: 2), input: [2, 8, 4, 4])
        assertFirstDivergence(try Oracle.check(trace, options: Self.forwardOnly), "forward.lrn", finding: "lrn-k")
    }

    /// A two-tower net whose producer normalised LRN over all channels (one window across the tower boundary).
    func testLRNAcrossTheTowerBoundaryIsRecognised() throws {
        let spec = try OracleFixtures.cifarTowers()
        var oneTower = spec
        oneTower.towers = 1  // conv2 and conv4 keep their explicit groups: only LRN's windows change
        let trace = try OracleFixtures.mislabelled(producedBy: oneTower, labelledAs: spec, Double.self)
        assertFirstDivergence(try Oracle.check(trace), "forward.lrn1", finding: "lrn-groups")
    }

    /// A mask that means "dropped" where the format's 1 means "kept".
    func testDropoutMaskMeaningDroppedIsRecognised() throws {
        let spec = LayerSpec(name: "drop", .dropout(rate: 0.5, scaling: .inverted))
        let shape: Shape = [2, 6, 3, 3]
        let mask = try Tensor<Double>(shape: shape, values: (0..<shape.count).map { Double(($0 * 7 + 3) % 5 < 2 ? 1 : 0) })
        let inverted = try mask.scaled(by: -1).adding(Tensor(shape: shape, repeating: 1))
        var trace = try layerTrace(produced: spec, labelled: spec, input: shape, mask: inverted)
        trace.set("mask.drop", mask)
        assertFirstDivergence(try Oracle.check(trace, options: Self.forwardOnly), "forward.drop", finding: "dropout-mask-inverted")
    }

    /// A training-mode trace whose dropout layer passed its input through unchanged.
    func testDropoutNotAppliedIsRecognised() throws {
        let spec = LayerSpec(name: "drop", .dropout(rate: 0.5, scaling: .inverted))
        let shape: Shape = [2, 6, 3, 3]
        let mask = try Tensor<Double>(shape: shape, values: (0..<shape.count).map { Double($0 % 3 == 0 ? 0 : 1) })
        var trace = try layerTrace(produced: spec, labelled: spec, input: shape, mask: mask)
        let input = try XCTUnwrap(trace["input"]).floatTensor(as: Double.self)
        trace.set("forward.drop", input)
        assertFirstDivergence(try Oracle.check(trace, options: Self.forwardOnly), "forward.drop", finding: "dropout-missing")
    }

    /// The exchange before a crossing layer (cifar-towers' conv3) joined the towers' halves in the wrong order.
    func testCrossingLayerFedSwappedHalvesIsRecognised() throws {
        let spec = try OracleFixtures.cifarTowers()
        var trace = try OracleFixtures.trace(spec, Double.self)
        let conv3 = try XCTUnwrap(spec.layers.firstIndex { $0.name == "conv3" })
        let before = try XCTUnwrap(trace["forward.\(spec.layers[conv3 - 1].name)"]).floatTensor(as: Double.self)
        let parameters: [String: Tensor<Double>] = try Dictionary(uniqueKeysWithValues: ["weight", "bias"].map { name in
            ("conv3.\(name)", try XCTUnwrap(trace["param.conv3.\(name)"]).floatTensor(as: Double.self))
        })
        let wrong = try TraceRecorder.recordLayer(spec.layers[conv3], parameters: parameters,
                                                  input: try before.swappingHalvesOfDimension1(), outputGradient: nil)
        trace.set(try XCTUnwrap(wrong["forward.conv3"]))
        assertFirstDivergence(try Oracle.check(trace), "forward.conv3", finding: "input-halves-swapped")
    }

    /// A two-tower SGD step in which each tower updated the other tower's rows of a weight.
    func testSGDStepWithTowerHalvesSwappedIsRecognised() throws {
        let spec = try OracleFixtures.cifarTowers()
        var trace = try OracleFixtures.trace(spec, Double.self)
        let sgd = OracleFixtures.sgd
        let weight = try XCTUnwrap(trace["param.conv3.weight"]).floatTensor(as: Double.self)
        let gradient = try XCTUnwrap(trace["grad.conv3.weight"]).floatTensor(as: Double.self)
        let parameter = Parameter<Double>(name: "conv3.weight", value: try weight.swappingRowHalves())
        parameter.gradient = gradient
        try SGD<Double>(learningRate: sgd.learningRate, momentum: sgd.momentum, weightDecay: sgd.weightDecay, form: sgd.form)
            .step([parameter], pool: WorkerPool(workerCount: 1))
        trace.set("updated.conv3.weight", parameter.value)
        assertFirstDivergence(try Oracle.check(trace), "updated.conv3.weight", finding: "sgd-halves-swapped")
    }
}
