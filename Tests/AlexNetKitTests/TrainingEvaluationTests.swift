import Foundation
import XCTest
@testable import AlexNetKit

final class TrainingEvaluationTests: XCTestCase {
    /// Five images, three classes:
    /// - [2, 1, 0] label 0: predicted 0;  [0, 3, 1] label 1: predicted 1;
    /// - [1, 1, 0] label 1: a tie between 0 and 1 goes to 0, wrong;
    /// - [0, 0, 5] label 2: predicted 2;  [4, 0, 1] label 2: predicted 0, wrong.
    func testConfusionMatrixPerClassAccuracyAndErrorsOnAHandCase() throws {
        let logits = try Tensor<Float>(shape: [5, 3], values: [2, 1, 0, 0, 3, 1, 1, 1, 0, 0, 0, 5, 4, 0, 1])
        var result = EvaluationResult(classes: 3)
        try result.add(logits: logits, labels: [0, 1, 1, 2, 2])
        XCTAssertEqual(result.confusion, [1, 0, 0,
                                          1, 1, 0,
                                          1, 0, 1])
        XCTAssertEqual(result.confusion(actual: 2, predicted: 0), 1)
        XCTAssertEqual(result.perClassAccuracy, [1.0, 0.5, 0.5])
        XCTAssertEqual(result.top1Error, 0.4)
        XCTAssertEqual(result.top5Error, 0)  // three classes: the label is always among the top 5
        // Image 0's loss: ln(e^2 + e + 1) - 2 = 0.40760596...
        let losses = [log(exp(2.0) + exp(1) + 1) - 2, log(1 + exp(3.0) + exp(1)) - 3, log(exp(1.0) + exp(1) + 1) - 1,
                      log(2 + exp(5.0)) - 5, log(exp(4.0) + 1 + exp(1)) - 1]
        XCTAssertEqual(losses[0], 0.4076059644, accuracy: 1e-10)
        XCTAssertEqual(result.loss, losses.reduce(0, +) / 5, accuracy: 1e-12)

        let report = result.report(classNames: ["shirt", "trouser", "bag"])
        XCTAssertTrue(report.contains("  1 trouser   50.00%  (1 of 2)"), report)
        XCTAssertTrue(report.contains("  2 bag        1    0    1"), report)
    }

    func testEmptyClassHasNoAccuracyAndBadLabelsAreRefused() throws {
        var result = EvaluationResult(classes: 3)
        try result.add(logits: try Tensor(shape: [1, 3], values: [0, 1, 0]), labels: [1])
        XCTAssertEqual(result.perClassAccuracy, [nil, 1.0, nil])
        XCTAssertThrowsError(try result.add(logits: try Tensor(shape: [1, 3], values: [0, 1, 0]), labels: [3]))
        XCTAssertThrowsError(try result.add(logits: try Tensor(shape: [2, 3], values: [0, 1, 0, 1, 0, 0]), labels: [1]))
    }

    /// A net whose two scores are the top-left and bottom-right pixel of its 2x2 input,
    /// on the 3x3 image 1...9 (row-major), label 1. The ten 2x2 crops (corners, centre
    /// = top-left here, and their mirror images) score (1,5), (2,6), (4,8), (5,9), (1,5)
    /// and mirrored (2,4), (3,5), (5,7), (6,8), (2,4): class 1 leads by 4 in every crop
    /// and by 2 in every mirrored one, so the averaged probability of class 1 is
    /// (sigmoid(4) + sigmoid(2)) / 2 = 0.93140544...
    func testTenCropEvaluationMatchesAHandComputation() throws {
        let spec = try ModelSpec(name: "corners", inputShape: [1, 2, 2], layers: [
            LayerSpec(name: "fc", .linear(outputs: 2, bias: .none)),
        ])
        let network = try Network<Float>(spec: spec)
        network.layers[0].parameters[0].value = try Tensor(shape: [2, 4], values: [1, 0, 0, 0, 0, 0, 0, 1])
        let image = try Tensor<Float>(shape: [1, 1, 3, 3], values: (1...9).map(Float.init))
        let source = MemoryBatches(images: image, labels: [1], batchSize: 1)
        let result = try Evaluator.evaluateTenCrop(source: source, classes: 2, geometry: TenCropGeometry(padding: 0, height: 2, width: 2)) {
            try network.forward($0, context: PassContext())
        }
        func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
        let p1 = (sigmoid(4) + sigmoid(2)) / 2
        XCTAssertEqual(p1, 0.93140544, accuracy: 1e-8)
        XCTAssertEqual(result.loss, -log(p1), accuracy: 1e-6)
        XCTAssertEqual(result.top1Error, 0)
        XCTAssertEqual(result.confusion, [0, 0, 0, 1])

        // One crop of a 2x2 image is the plain forward pass: scores (1, 4) for the image [1 2; 3 4].
        let small = MemoryBatches(images: try Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4]), labels: [0], batchSize: 1)
        let one = try Evaluator.evaluate(source: small, classes: 2) { try network.forward($0, context: PassContext()) }
        XCTAssertEqual(one.loss, log(exp(1.0) + exp(4.0)) - 1, accuracy: 1e-6)
        XCTAssertEqual(one.top1Error, 1)
    }

    /// Padding puts the image in the middle of a zero border; ten crops are then cut from the padded image.
    func testTenCropPaddingPutsZerosAround() throws {
        let image = try Tensor<Float>(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let padded = try TenCropGeometry(padding: 1, height: 2, width: 2).padded(image)
        XCTAssertEqual(padded.shape, [1, 1, 4, 4])
        XCTAssertEqual(padded.storage, [0, 0, 0, 0,
                                        0, 1, 2, 0,
                                        0, 3, 4, 0,
                                        0, 0, 0, 0])
    }

    /// Counting batch by batch gives what counting everything at once gives.
    func testEvaluationOverBatchesEqualsOneBatch() throws {
        let logits = randomFloatTensor([10, 4], seed: 3)
        let labels = [0, 1, 2, 3, 0, 1, 2, 3, 3, 2]
        let identity = { (x: Tensor<Float>) throws -> Tensor<Float> in try x.reshaped(Shape([x.shape[0], 4])) }
        let images = try logits.reshaped([10, 4, 1, 1])
        let split = try Evaluator.evaluate(source: MemoryBatches(images: images, labels: labels, batchSize: 3), classes: 4, scores: identity)
        var whole = EvaluationResult(classes: 4)
        try whole.add(logits: logits, labels: labels)
        XCTAssertEqual(split.confusion, whole.confusion)
        XCTAssertEqual(split.top1Correct, whole.top1Correct)
        XCTAssertEqual(split.top5Correct, whole.top5Correct)
        XCTAssertEqual(split.lossSum, whole.lossSum, accuracy: 1e-12)
    }

    /// A trained run's checkpoint evaluates to what the run itself measured.
    func testInferenceModelFromACheckpointEvaluatesLikeTheRun() throws {
        let workspace = try TrainingFixtures.makeWorkspace()
        defer { TrainingFixtures.remove(workspace) }
        var config = TrainingFixtures.configuration(workspace, towers: 2)
        config.checkpoint = workspace + "/ck"
        let run = try TrainingRun(configuration: config)
        try run.trainer.run()
        let measured = try run.evaluate(run.data.test)
        let trained = try InferenceModel(checkpoint: try TrainingCheckpoint.read(path: workspace + "/ck/last.safetensors"),
                                       source: "ck", threads: 1)
        let data = try trained.data()
        let again = try Evaluator.evaluate(source: data.test, classes: 10) { try trained.scores($0) }
        XCTAssertEqual(again, measured)
        XCTAssertEqual(trained.classNames, (0...9).map(String.init))
        // The log's last validation figures are the test split's (no holdout).
        XCTAssertTrue(run.trainer.log.lines.last!.contains("\"val_top1\": \(measured.top1Error)"), run.trainer.log.lines.last!)
    }
}
