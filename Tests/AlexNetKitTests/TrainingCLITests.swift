import Foundation
import XCTest
@testable import AlexNetKit

/// `alexnet train`, `eval` and `predict` end to end on the tiny IDX data set.
final class TrainingCLITests: XCTestCase {
    private var workspace: String!
    private var directory: URL { URL(fileURLWithPath: workspace) }

    override func setUpWithError() throws { workspace = try TrainingFixtures.makeWorkspace(name) }
    override func tearDownWithError() throws { TrainingFixtures.remove(workspace) }

    private let tinyRun = ["train", "--model", "tiny.json", "--data", "data", "--epochs", "2", "--batch", "8", "--lr", "0.05",
                           "--init", "he", "--seed", "7", "--threads", "2"]

    private func assertOneLineFailure(_ arguments: [String], _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try CLI.run(arguments, in: directory)
        XCTAssertEqual(result.status, 1, "\(arguments): \(result.output)", file: file, line: line)
        let text = result.error.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(text.contains("\n"), "more than one line: \(text)", file: file, line: line)
        XCTAssertTrue(text.contains(expected), "\(arguments): \(text)", file: file, line: line)
    }

    /// A bad option value is a usage error: exit 64, the first line naming the
    /// option and what it accepts, then the command's usage.
    private func assertUsageError(_ arguments: [String], _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try CLI.run(arguments, in: directory)
        XCTAssertEqual(result.status, 64, "\(arguments): \(result.error)", file: file, line: line)
        let first = result.error.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(first.contains(expected), "\(arguments): \(result.error)", file: file, line: line)
        XCTAssertTrue(result.error.contains("Usage: alexnet \(arguments[0])"), "\(arguments): \(result.error)", file: file, line: line)
    }

    func testTrainPrintsEpochsAndTheTestErrorAndWritesTheLogAndCheckpoints() throws {
        let result = try CLI.run(tinyRun + ["--log", "log.jsonl", "--checkpoint", "ck", "--ten-crop"], in: directory)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("epoch 2/2: lr 0.05  train loss "), result.output)
        XCTAssertTrue(result.output.contains("test (one crop): top-1 error "), result.output)
        XCTAssertTrue(result.output.contains("test (ten crops): top-1 error "), result.output)
        XCTAssertTrue(result.output.contains("confusion matrix (rows: true class, columns: predicted class):"), result.output)
        XCTAssertTrue(result.output.contains("checkpoint: ck/last.safetensors"), result.output)
        // Standard output is a pipe here: plain lines, no carriage returns.
        XCTAssertFalse(result.output.contains("\r"))
        let log = try String(contentsOfFile: workspace + "/log.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(log.count, 3)
        XCTAssertTrue(log[0].hasPrefix(#"{"event": "epoch", "epoch": 1, "step": 6, "lr": 0.05, "train_loss": "#), log[0])
        for key in ["train_error", "val_loss", "val_top1", "val_top5", "images_per_second", "seconds"] {
            XCTAssertTrue(log[1].contains("\"\(key)\": "), key)
        }
        XCTAssertTrue(log[2].hasPrefix(#"{"event": "end", "reason": "epochs", "epoch": 2, "step": 12, "test_loss": "#), log[2])
        XCTAssertTrue(log[2].contains("\"test_ten_crop_top1\": "), log[2])
        // The end line reads back with the strict reader and is written again byte for byte.
        let end = try StrictJSONDecoder(bytes: Array(log[2].utf8)).decode(EndRecord.self)
        XCTAssertEqual(end.jsonLine(), log[2])
        XCTAssertEqual(end.reason, .epochs)
        XCTAssertNotNil(end.tenCrop)
        for line in log {
            XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(line.utf8)), line)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace + "/ck/last.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace + "/ck/best.safetensors"))
    }

    /// The documented end line (Docs/training.md), and without test images: `null` figures, no ten-crop keys.
    func testTheEndLineKeepsTheDocumentedKeysAndOrder() throws {
        let documented = #"{"event": "end", "reason": "epochs", "epoch": 10, "step": 4690, "test_loss": 0.25147671496200125, "#
            + #""test_top1": 0.0911, "test_top5": 0.0009, "test_ten_crop_loss": 0.2500392843105934, "test_ten_crop_top1": 0.0917, "#
            + #""test_ten_crop_top5": 0.0008}"#
        let end = EndRecord(reason: .epochs, epoch: 10, step: 4690,
                            test: EndRecord.Figures(loss: 0.25147671496200125, top1: 0.0911, top5: 0.0009),
                            tenCrop: EndRecord.Figures(loss: 0.2500392843105934, top1: 0.0917, top5: 0.0008))
        XCTAssertEqual(end.jsonLine(), documented)
        XCTAssertEqual(try StrictJSONDecoder(bytes: Array(documented.utf8)).decode(EndRecord.self), end)

        let empty = EndRecord(reason: .maxSteps, epoch: 0, step: 3, test: EndRecord.Figures(EvaluationResult(classes: 2)))
        let line = #"{"event": "end", "reason": "max-steps", "epoch": 0, "step": 3, "test_loss": null, "test_top1": null, "test_top5": null}"#
        XCTAssertEqual(empty.jsonLine(), line)
        let read = try StrictJSONDecoder(bytes: Array(line.utf8)).decode(EndRecord.self)
        XCTAssertTrue(read.test.loss.isNaN && read.tenCrop == nil, "\(read)")
    }

    func testConfigFileWithCommandLineOverrides() throws {
        try Data(#"{"model": "tiny.json", "data": "data", "epochs": 5, "batch": 8, "init": "he", "schedule": "step:1"}"#.utf8)
            .write(to: directory.appendingPathComponent("run.json"))
        let result = try CLI.run(["train", "--config", "run.json", "--epochs", "1", "--log", "log.jsonl"], in: directory)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("batch 8, schedule step:1, 1 epoch(s) of 6 steps"), result.output)
        try assertOneLineFailure(["train", "--config", "nothere.json"], "nothere.json: no such file")
        try Data(#"{"epochs": 0}"#.utf8).write(to: directory.appendingPathComponent("bad.json"))
        try assertOneLineFailure(["train", "--config", "bad.json"], "bad.json:1:2: epochs: must be in 1...1000000, got 0")
    }

    func testResumeContinuesAndRefusesChangedSettings() throws {
        let stopped = try CLI.run(tinyRun + ["--checkpoint", "ck", "--max-steps", "4"], in: directory)
        XCTAssertEqual(stopped.status, 0, stopped.error)
        XCTAssertTrue(stopped.output.contains("stopped at --max-steps 4 (epoch 1, batch 5)"), stopped.output)
        try assertOneLineFailure(["train", "--resume", "ck/last.safetensors", "--lr", "0.1"], "cannot change lr (only ")
        try assertUsageError(["train", "--resume", "ck/last.safetensors", "--config", "x.json"], "cannot be combined with --config")
        let resumed = try CLI.run(["train", "--resume", "ck/last.safetensors", "--threads", "1"], in: directory)
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.output.contains("resuming ck/last.safetensors: epoch 1, batch 5, step 4"), resumed.output)
        XCTAssertTrue(resumed.output.contains("finished 2 epoch(s), 12 steps"), resumed.output)
    }

    func testEvalAndPredictFromACheckpoint() throws {
        XCTAssertEqual(try CLI.run(tinyRun + ["--checkpoint", "ck"], in: directory).status, 0)
        let eval = try CLI.run(["eval", "--weights", "ck/best.safetensors", "--ten-crop"], in: directory)
        XCTAssertEqual(eval.status, 0, eval.error)
        XCTAssertTrue(eval.output.contains("16 test images"), eval.output)
        XCTAssertTrue(eval.output.contains("one crop:  top-1 error "), eval.output)
        XCTAssertTrue(eval.output.contains("ten crops: top-1 error "), eval.output)
        XCTAssertTrue(eval.output.contains("per-class accuracy:"), eval.output)

        // A 12x12 JPEG with label 2's band (rows 6..<9).
        var pixels = [UInt8](repeating: 20, count: 144)
        for y in 6..<9 { for x in 0..<12 { pixels[y * 12 + x] = 200 } }
        try Data(try JPEG.encode(Image8(width: 12, height: 12, channels: 1, pixels: pixels), quality: 95))
            .write(to: directory.appendingPathComponent("band.jpg"))
        let predict = try CLI.run(["predict", "band.jpg", "--weights", "ck/last.safetensors"], in: directory)
        XCTAssertEqual(predict.status, 0, predict.error)
        let lines = predict.output.split(separator: "\n")
        XCTAssertEqual(lines.first, "band.jpg")
        XCTAssertEqual(lines.filter { $0.hasPrefix("  ") && $0.hasSuffix("%") }.count, 5, predict.output)
        try Data((0..<10).map { "label \($0)" }.joined(separator: "\n").utf8).write(to: directory.appendingPathComponent("names.txt"))
        let named = try CLI.run(["predict", "band.jpg", "--weights", "ck/last.safetensors", "--labels", "names.txt", "--top", "2"],
                                in: directory)
        XCTAssertEqual(named.status, 0, named.error)
        XCTAssertEqual(named.output.split(separator: "\n").filter { $0.hasPrefix("  ") && $0.contains("label ") }.count, 2, named.output)
        try Data("a\nb\n".utf8).write(to: directory.appendingPathComponent("two.txt"))
        try assertOneLineFailure(["predict", "band.jpg", "--weights", "ck/last.safetensors", "--labels", "two.txt"],
                                 "two.txt: 2 class names, the model has 10 classes")
        try assertOneLineFailure(["predict", "nothere.jpg", "--weights", "ck/last.safetensors"], "nothere.jpg: no such file")
        try Data("not a jpeg".utf8).write(to: directory.appendingPathComponent("bad.jpg"))
        try assertOneLineFailure(["predict", "bad.jpg", "--weights", "ck/last.safetensors"], "bad.jpg")
    }

    func testEvalOfPlainWeightsWithAModel() throws {
        let written = try CLI.run(["weights", "init", "--model", "tiny.json", "--towers", "1", "--input", "1,12,12", "-o", "w.safetensors"],
                               in: directory)
        XCTAssertEqual(written.status, 0, written.error)
        try assertOneLineFailure(["eval", "--weights", "w.safetensors", "--data", "data"], "name the model with --model")
        let eval = try CLI.run(["eval", "--weights", "w.safetensors", "--model", "tiny.json", "--data", "data"], in: directory)
        XCTAssertEqual(eval.status, 0, eval.error)
        XCTAssertTrue(eval.output.contains("one crop:  top-1 error "), eval.output)
        try assertOneLineFailure(["eval", "--weights", "w.safetensors", "--model", "layers-80sec", "--data", "data"],
                                 "w.safetensors: missing 'conv3.weight'")
    }

    func testBadOptionValuesAreUsageErrors() throws {
        try assertUsageError(["train", "--towers", "3"], "--towers must be 1 or 2, got 3")
        try assertUsageError(["train", "--schedule", "cosine"],
                             "The value 'cosine' is invalid for '--schedule <schedule>'. Please provide one of 'constant', 'step:K', 'linear:E' or 'plateau:P'.")
        try assertUsageError(["train", "--schedule", "step:0"], "The value 'step:0' is invalid for '--schedule <schedule>'")
        try assertUsageError(["train", "--sgd", "adam"], "The value 'adam' is invalid for '--sgd <sgd>'. Please provide one of 'paper' and 'pytorch'.")
        try assertUsageError(["train", "--init", "xavier"], "Please provide one of 'paper', 'he' or 'gaussian:S'.")
        try assertUsageError(["train", "--mean", "median"], "Please provide one of 'channel', 'image' or 'none'.")
        try assertUsageError(["train", "--time-limit", "soon"], "--time-limit must be a positive number of seconds")
        try assertUsageError(["train", "--batch", "0"], "--batch must be in 1...65536, got 0")
        try assertUsageError(["train", "--lr", "-1"], "--lr must be positive and finite, got -1.0")
        try assertUsageError(["train", "--model-changes", #"{"lrn": "x"}"#], "--model-changes lrn must be off, paper or caffe, got \"x\"")
        try assertUsageError(["train", "--model", "tiny.json", "--data", "data", "--input", "1,28"],
                             "The value '1,28' is invalid for '--input <C,H,W>': must be three positive integers C,H,W")
        try assertUsageError(["eval", "--weights", "w.safetensors", "--split", "val"], "Please provide one of 'train' and 'test'.")
        try assertUsageError(["eval", "--weights", "w.safetensors", "--batch", "0"], "--batch must be in 1...65536, got 0")
    }

    func testBadFilesGiveOneLineErrors() throws {
        try assertOneLineFailure(["train", "--data", "nowhere"], "nowhere: no such file or directory")
        try assertOneLineFailure(["train", "--model", "alexnet9000", "--data", "data"], "no shipped model has this name")
        try assertOneLineFailure(["train", "--resume", "nothere.safetensors"], "nothere.safetensors: no such file")
        try assertOneLineFailure(["eval", "--weights", "nothere.safetensors"], "nothere.safetensors: no such file")
        try assertOneLineFailure(["eval", "--weights", "tiny.json"], "unknown weights format")
    }

    func testNonFiniteLossStopsWithAOneLineMessageNamingTheStep() throws {
        try assertOneLineFailure(tinyRun + ["--lr", "1e300", "--checkpoint", "ck"], "training stopped at step 0 (epoch 1, batch 1)")
    }
}
