import Foundation
import XCTest
@testable import AlexNetKit

/// The experiment file, the model switches, the log reader, the table, and
/// the runner end to end (resume, merge) on the tiny training fixtures.
final class ExperimentTests: XCTestCase {
    private var workspace = ""

    override func setUpWithError() throws {
        workspace = try TrainingFixtures.makeWorkspace(name)
    }

    /// An experiment on the tiny data: arms `relu` and `tanh`, seeds 7 and 8, 2 epochs of 6 steps, a steps line every 2.
    private func writeExperiment(_ name: String = "exp.json", seeds: String = "[7, 8]", epochs: Int = 2,
                                 extraBase: String = "") throws -> String {
        let text = """
        {
          "name": "tiny",
          "description": "two activations on the tiny data",
          "base": {"model": "tiny.json", "data": "data", "epochs": \(epochs), "batch": 8, "holdout": 0, "log_every": 2,
                   "lr": 0.05\(extraBase)},
          "arms": [
            {"name": "relu"},
            {"name": "tanh", "model_changes": {"activation": "tanh"}}
          ],
          "seeds": \(seeds),
          "thresholds": [0.5, 0.7]
        }
        """
        let path = workspace + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    // MARK: The file

    func testExperimentFileResolvesArmsSeedsAndPaths() throws {
        let experiment = try ExperimentConfiguration.load(path: try writeExperiment())
        XCTAssertEqual(experiment.name, "tiny")
        XCTAssertEqual(experiment.arms.map(\.name), ["relu", "tanh"])
        XCTAssertEqual(experiment.seeds, [7, 8])
        XCTAssertEqual(experiment.thresholds, [0.7, 0.5], "highest first")
        XCTAssertEqual(experiment.runs.map(\.id), ["relu/seed-7", "relu/seed-8", "tanh/seed-7", "tanh/seed-8"])
        let relu = experiment.arms[0].configuration, tanh = experiment.arms[1].configuration
        XCTAssertEqual(relu.model, workspace + "/tiny.json", "relative to the file's directory")
        XCTAssertEqual(relu.data, workspace + "/data")
        XCTAssertNil(relu.modelChanges)
        XCTAssertEqual(tanh.modelChanges, ModelVariant(activation: "tanh"))
        XCTAssertEqual(tanh.differences(from: relu), ["model_changes"])
        XCTAssertEqual(experiment.arms[1].settingsText, #"{"model_changes": {"activation": "tanh"}}"#)
        let run = try experiment.configuration(for: ExperimentRun(arm: "tanh", seed: 8))
        XCTAssertEqual(run.seed, 8)
        XCTAssertEqual(run.checkpoint, "checkpoint")
        XCTAssertEqual(run.log, "log.jsonl")
        XCTAssertThrowsError(try experiment.configuration(for: ExperimentRun(arm: "gelu", seed: 7)))
        XCTAssertThrowsError(try experiment.configuration(for: ExperimentRun(arm: "relu", seed: 9)))
        XCTAssertEqual(try ExperimentRun(id: "tanh/seed-8"), ExperimentRun(arm: "tanh", seed: 8))
        for bad in ["tanh", "tanh/8", "tanh/seed-x", "../x/seed-1", "a/b/seed-1"] {
            XCTAssertThrowsError(try ExperimentRun(id: bad), bad)
        }
    }

    func testExperimentFileErrorsNameTheKey() throws {
        func problem(_ json: String) -> String {
            do {
                _ = try ExperimentConfiguration.parse(json: Array(json.utf8), source: "e.json", directory: "/tmp")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let arms = #""arms": [{"name": "a"}], "seeds": [0]"#
        XCTAssertTrue(problem(#"{"name": "x", "base": {"seed": 3}, "# + arms + "}").contains("base.seed"))
        XCTAssertTrue(problem(#"{"name": "x", "arms": [{"name": "a", "log": "l"}], "seeds": [0]}"#).contains("arms[0] (a).log"))
        XCTAssertTrue(problem(#"{"name": "x", "arms": [{"name": "a"}, {"name": "a"}], "seeds": [0]}"#).contains("second arm"))
        XCTAssertTrue(problem(#"{"name": "x", "arms": [{"name": "a"}], "seeds": [0, 0]}"#).contains("twice"))
        XCTAssertTrue(problem(#"{"name": "x", "arms": [{"name": "a", "lr": -1}], "seeds": [0]}"#).contains("lr"))
        XCTAssertTrue(problem(#"{"name": "x", "arms": [{"name": "a", "model_changes": {"activation": "gelu"}}], "seeds": [0]}"#)
            .contains("model_changes.activation: must be relu or tanh"))
        XCTAssertTrue(problem(#"{"name": "x", "# + arms + #", "thresholds": [15]}"#).contains("thresholds[0]"))
        XCTAssertTrue(problem(#"{"name": "../x", "# + arms + "}").contains("name"))
        XCTAssertTrue(problem(#"{"name": "x", "arms": [], "seeds": [0]}"#).contains("arms"))
        XCTAssertTrue(problem(#"{"name": "x", "# + arms + #", "colour": 1}"#).contains("unknown key"))
        XCTAssertTrue(problem(#"{"name": "x", "# + arms + #", "#).contains("e.json:1:"))
    }

    /// Every shipped experiment reads, and every arm's model resolves with its
    /// switches at Fashion-MNIST's size; the Fashion-MNIST recipe reads too.
    func testShippedExperimentsAndRecipeResolve() throws {
        let root = FormatFixtures.directory.replacingOccurrences(of: "/Fixtures/formats", with: "")
        let folder = root + "/Docs/experiments"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") && $0 != "fashion-mnist-93.json" }
        XCTAssertEqual(Set(files), ["relu-vs-tanh.json", "lrn.json", "pooling.json", "towers.json"])
        func spec(_ config: TrainingConfiguration) throws -> ModelSpec {
            let base = config.model.hasSuffix(".json")
                ? try ModelSpec.load(path: config.model).adapted(classes: 10, towers: config.towers, inputShape: ModelZoo.fashionMNISTInput)
                : try ModelZoo.spec(named: config.model, classes: 10, towers: config.towers, inputShape: ModelZoo.fashionMNISTInput)
            return try config.modelChanges.map { try $0.apply(to: base) } ?? base
        }
        for file in files {
            let experiment = try ExperimentConfiguration.load(path: folder + "/" + file)
            XCTAssertGreaterThanOrEqual(experiment.seeds.count, 3, file)
            XCTAssertFalse(experiment.thresholds.isEmpty, file)
            XCTAssertFalse(experiment.description.isEmpty, file)
            for arm in experiment.arms { XCTAssertEqual(try spec(arm.configuration).classes, 10, "\(file): \(arm.name)") }
            XCTAssertEqual(Set(experiment.arms.map { $0.configuration.jsonString() }).count, experiment.arms.count,
                           "\(file): every arm differs from the others")
        }
        let recipe = try TrainingConfiguration.load(path: folder + "/fashion-mnist-93.json")
        var fromRoot = recipe
        fromRoot.model = root + "/" + recipe.model
        XCTAssertEqual(try spec(fromRoot).classes, 10)
    }

    // MARK: Model switches

    func testModelSwitchesChangeOnlyWhatTheyName() throws {
        let spec = try ModelZoo.spec(named: "cifar-towers", inputShape: ModelZoo.fashionMNISTInput)
        let tanh = try ModelVariant(activation: "tanh").apply(to: spec)
        XCTAssertEqual(tanh.name, "cifar-towers+tanh")
        XCTAssertFalse(tanh.layers.contains { $0.kind == .relu })
        XCTAssertEqual(tanh.layers.filter { $0.kind == .tanh }.count, spec.layers.filter { $0.kind == .relu }.count)
        XCTAssertEqual(tanh.layers.map(\.name), spec.layers.map(\.name))

        let noLRN = try ModelVariant(lrn: "off").apply(to: spec)
        XCTAssertEqual(noLRN.layers.count, spec.layers.count - 2)
        let caffe = try ModelVariant(lrn: "caffe").apply(to: spec)
        guard case .localResponseNorm(_, let alpha, _, _, let convention)? = caffe.layers.first(where: { $0.name == "lrn1" })?.kind else {
            return XCTFail("lrn1 is gone")
        }
        XCTAssertEqual(alpha, 1e-4)
        XCTAssertEqual(convention, .caffe)

        let pools = try ModelVariant(pooling: "non-overlapping").apply(to: spec)
        guard case .maxPool(let kernel, let stride, _, _)? = pools.layers.first(where: { $0.name == "pool1" })?.kind else {
            return XCTFail("pool1 is gone")
        }
        XCTAssertEqual(kernel, Pair(2, 2))
        XCTAssertEqual(stride, Pair(2, 2))
        XCTAssertNotEqual(try pools.outputShapes().last, nil)

        let noDropout = try ModelVariant(dropout: 0).apply(to: spec)
        XCTAssertFalse(noDropout.layers.contains { if case .dropout = $0.kind { return true } else { return false } })
        let dropout = try ModelVariant(dropout: 0.25).apply(to: spec)
        XCTAssertTrue(dropout.layers.contains { $0.kind == .dropout(rate: 0.25, scaling: .paper) })

        let half = try ModelVariant(width: 0.5).apply(to: spec)
        let outputs = half.layers.compactMap { layer -> Int? in
            switch layer.kind {
            case .convolution(let n, _, _, _, _, _), .linear(let n, _): return n
            default: return nil
            }
        }
        XCTAssertEqual(outputs, [32, 32, 64, 64, 128, 128, 10], "hidden layers halved, the classes kept")
        XCTAssertEqual(ModelVariant.scaled(3, 0.1, multiple: 2), 2, "at least one per group and tower")

        // A switch with nothing to change is refused: the arm would measure noise.
        let plain = try ModelZoo.spec(named: "layers-80sec")
        XCTAssertThrowsError(try ModelVariant(lrn: "off").apply(to: plain)) { error in
            XCTAssertTrue("\(error)".contains("no LRN layer"), "\(error)")
        }
        XCTAssertThrowsError(try ModelVariant(dropout: 0.5).apply(to: plain))
        XCTAssertThrowsError(try ModelVariant(width: 0).validate())
        // The switches survive the run config's JSON.
        var config = TrainingConfiguration()
        config.modelChanges = ModelVariant(activation: "tanh", lrn: "off", pooling: "overlapping", dropout: 0.25, width: 1.5)
        XCTAssertEqual(try TrainingConfiguration.parse(json: Array(config.jsonString().utf8), source: "c"), config)
    }

    /// `--model-changes` text reads and writes through the strict coder; errors name the switch.
    func testModelChangesJSONNamesTheSwitch() throws {
        let all = ModelVariant(activation: "tanh", lrn: "off", pooling: "overlapping", dropout: 0.25, width: 1.5)
        XCTAssertEqual(all.jsonString(), #"{"activation": "tanh", "lrn": "off", "pooling": "overlapping", "dropout": 0.25, "width": 1.5}"#)
        XCTAssertEqual(try ModelVariant.parse(json: all.jsonString()), all)
        XCTAssertEqual(ModelVariant().jsonString(), "{}")
        func problem(_ json: String) -> String {
            do { _ = try ModelVariant.parse(json: json); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(problem(#"{"activation": "gelu"}"#), #"model_changes.activation: must be relu or tanh, got "gelu""#)
        XCTAssertEqual(problem(#"{"width": "2"}"#), #"model_changes.width: expected a finite number, got "2""#)
        XCTAssertTrue(problem(#"{"depth": 2}"#).hasPrefix(#"model_changes.depth: unknown key; model_changes takes "activation""#))
        XCTAssertEqual(problem("[1]"), "model_changes: expected an object of switches (activation, lrn, pooling, dropout, width), got [1]")
        XCTAssertThrowsError(try ModelVariant(dropout: 1).validate()) { XCTAssertEqual("\($0)", "model_changes.dropout: must be a rate in [0, 1), got 1.0") }
    }

    // MARK: The log reader

    func testRunResultReadsStepsAndEpochLinesAndFindsCrossings() throws {
        let log = """
        {"event": "steps", "epoch": 1, "batch": 2, "batches": 4, "step": 2, "epoch_images": 100, "epoch_correct": 20, "epoch_loss_sum": 200.0, "train_seconds": 1.0}
        {"event": "steps", "epoch": 1, "batch": 4, "batches": 4, "step": 4, "epoch_images": 200, "epoch_correct": 60, "epoch_loss_sum": 300.0, "train_seconds": 2.0}
        {"event": "epoch", "epoch": 1, "step": 4, "lr": 0.1, "train_loss": 1.5, "train_error": 0.6, "val_loss": 1.2, "val_top1": 0.5, "val_top5": 0.1, "val_split": "holdout", "images_per_second": 100.0, "seconds": 2.5, "train_seconds": 2.0}
        {"event": "steps", "epoch": 2, "batch": 2, "batches": 4, "step": 6, "epoch_images": 100, "epoch_correct": 70, "epoch_loss_sum": 50.0, "train_seconds": 1.0}
        {"event": "steps", "epoch": 2, "batch": 4, "batches": 4, "step": 8, "epoch_images": 200, "epoch_correct": 150, "epoch_loss_sum": 90.0, "train_seconds": 3.0}
        {"event": "epoch", "epoch": 2, "step": 8, "lr": 0.1, "train_loss": 0.45, "train_error": 0.25, "val_loss": 0.9, "val_top1": 0.3, "val_top5": 0.05, "val_split": "holdout", "images_per_second": 66.7, "seconds": 3.5, "train_seconds": 3.0}
        {"event": "end", "reason": "epochs", "epoch": 2, "step": 8, "test_loss": 0.8, "test_top1": 0.28, "test_top5": 0.04}
        """
        let result = try RunResult.parse(log: log, run: ExperimentRun(arm: "a", seed: 0), source: "log")
        XCTAssertTrue(result.isFinished)
        XCTAssertEqual(result.epochs.count, 2)
        XCTAssertEqual(result.trainingSeconds, 5)
        XCTAssertEqual(result.end?.testTop1, 0.28)
        // Window errors: 80/100, 40/100, 30/100, 20/100 wrong; losses 2, 1, 0.5, 0.4.
        XCTAssertEqual(result.curve.map(\.epochs), [0.5, 1, 1.5, 2])
        XCTAssertEqual(result.curve.map(\.seconds), [1, 2, 3, 5])
        for (point, (error, loss)) in zip(result.curve, [(0.8, 2.0), (0.6, 1.0), (0.3, 0.5), (0.2, 0.4)]) {
            XCTAssertEqual(point.trainError, error, accuracy: 1e-12)
            XCTAssertEqual(point.trainLoss, loss, accuracy: 1e-12)
        }
        // 0.7 is crossed half way from (0.5 epochs, 0.8) to (1, 0.6): 0.75 epochs, 1.5 s;
        // 0.45 half way between (1, 0.6) and (1.5, 0.3): 1.25 epochs, 2.5 s.
        let first = try XCTUnwrap(result.crossing(0.7, chance: 0.9))
        XCTAssertEqual(first.epochs, 0.75, accuracy: 1e-12)
        XCTAssertEqual(first.seconds, 1.5, accuracy: 1e-12)
        let second = try XCTUnwrap(result.crossing(0.45, chance: 0.9))
        XCTAssertEqual(second.epochs, 1.25, accuracy: 1e-12)
        XCTAssertEqual(second.seconds, 2.5, accuracy: 1e-12)
        // From the start (chance 0.9 at 0) to the first point.
        XCTAssertEqual(try XCTUnwrap(result.crossing(0.85, chance: 0.9)).epochs, 0.25, accuracy: 1e-12)
        XCTAssertNil(result.crossing(0.1, chance: 0.9))

        // Without steps lines the curve is the epoch lines.
        let epochsOnly = log.split(separator: "\n").filter { !$0.contains("\"steps\"") }.joined(separator: "\n")
        let coarse = try RunResult.parse(log: epochsOnly, run: ExperimentRun(arm: "a", seed: 0), source: "log")
        XCTAssertEqual(coarse.curve.map(\.epochs), [1, 2])
        XCTAssertEqual(coarse.curve.map(\.trainError), [0.6, 0.25])
        XCTAssertThrowsError(try RunResult.parse(log: "{\"event\": \"epoch\"\n", run: ExperimentRun(arm: "a", seed: 0), source: "log")) {
            XCTAssertTrue("\($0)".contains("log:1"), "\($0)")
        }
    }

    // MARK: The table

    func testTableAggregatesSeedsAndRatios() throws {
        let experiment = try ExperimentConfiguration.parse(json: Array("""
        {"name": "t", "arms": [{"name": "fast"}, {"name": "slow", "lr": 0.01}], "seeds": [0, 1, 2], "thresholds": [0.5]}
        """.utf8), source: "t", directory: "/tmp")
        func result(_ arm: String, _ seed: UInt64, errors: [Double], seconds: Double, test: Double?) throws -> RunResult {
            var lines = errors.enumerated().map { i, e in
                #"{"event": "epoch", "epoch": \#(i + 1), "train_loss": 1.0, "train_error": \#(e), "val_top1": \#(e), "val_split": "holdout", "seconds": \#(seconds), "train_seconds": \#(seconds)}"#
            }
            if let test { lines.append(#"{"event": "end", "reason": "epochs", "test_top1": \#(test), "test_top5": 0.01}"#) }
            return try RunResult.parse(log: lines.joined(separator: "\n"), run: ExperimentRun(arm: arm, seed: seed), source: arm)
        }
        // fast crosses 0.5 at epochs 1, 1, 2 (10 s each); slow at 2, 4 and never (one unfinished run).
        let results = [
            try result("fast", 0, errors: [0.4, 0.3], seconds: 10, test: 0.30),
            try result("fast", 1, errors: [0.5, 0.3], seconds: 10, test: 0.32),
            try result("fast", 2, errors: [0.6, 0.5], seconds: 10, test: 0.34),
            try result("slow", 0, errors: [0.9, 0.5, 0.4, 0.4], seconds: 20, test: 0.40),
            try result("slow", 1, errors: [0.9, 0.8, 0.7, 0.5], seconds: 20, test: 0.50),
            try result("slow", 2, errors: [0.9], seconds: 20, test: nil),
        ]
        let table = ExperimentTable(experiment: experiment, results: results, chance: 0.9)
        let fast = table.rows[0], slow = table.rows[1]
        XCTAssertEqual(fast.finished, 3)
        XCTAssertEqual(slow.finished, 2)
        XCTAssertEqual(fast.testTop1.mean!, 0.32, accuracy: 1e-12)
        XCTAssertEqual(fast.testTop1.standardDeviation!, 0.02, accuracy: 1e-12)
        XCTAssertEqual(slow.testTop1.mean!, 0.45, accuracy: 1e-12)
        // fast: from the start (0 epochs, error 0.9) to 0.4 at epoch 1 crosses 0.5 at 0.8 epochs.
        XCTAssertEqual(fast.toThreshold[0].epochs.values, [0.8, 1, 2])
        XCTAssertEqual(fast.toThreshold[0].seconds.values, [8, 10, 20])
        XCTAssertEqual(slow.toThreshold[0].epochs.values, [2, 4])
        XCTAssertEqual(slow.toThreshold[0].seconds.values, [40, 80])
        XCTAssertEqual(fast.validationSplit, "holdout")
        let markdown = table.markdown()
        XCTAssertTrue(markdown.contains("| fast | `(base)` | 3/3 | 2 ± 0 | 36.67 ± 11.55 |"), markdown)
        // Ratios of the means: epochs 3 / 1.2667, seconds 60 / 12.667.
        XCTAssertTrue(markdown.contains("| slow | 50% | 2/2 | 3.00 ± 1.41 | 60 ± 28 | 2.37 | 4.74 |"), markdown)
        XCTAssertTrue(markdown.contains("| fast | 50% | 3/3 | 1.27 ± 0.64 | 13 ± 6 | 1.00 | 1.00 |"), markdown)
        XCTAssertTrue(markdown.contains("| 32.00 ± 2.00 |"), markdown)
        let csv = table.csv().split(separator: "\n")
        XCTAssertEqual(csv[0], "arm,figure,split,count,mean,sd,min,max")
        XCTAssertTrue(csv.contains("slow,epochs_to_train_error_0.5,train,2,3.0,\(2.0.squareRoot()),2.0,4.0"), csv.joined(separator: "\n"))
        let runs = table.runsCSV(chance: 0.9).split(separator: "\n")
        XCTAssertEqual(runs.count, 7)
        XCTAssertTrue(runs[6].hasPrefix("slow,2,unfinished,1,0.9,0.9,holdout,,,20.0,,"), String(runs[6]))
    }

    // MARK: The runner, end to end

    /// The log lines without their timing fields.
    private func logLines(_ output: String, _ run: String) throws -> [String] {
        let text = try String(contentsOfFile: "\(output)/runs/\(run)/log.jsonl", encoding: .utf8)
        return TrainingFixtures.withoutTiming(text.split(separator: "\n").map(String.init))
    }

    /// An experiment stopped part way (one run with a checkpoint at step 3 and
    /// no end, the others not started) resumes: the finished logs equal those
    /// of an uninterrupted experiment, and a finished run is not run again.
    func testInterruptedExperimentResumesToTheUninterruptedResult() throws {
        let file = try writeExperiment(seeds: "[7]")
        let directory = URL(fileURLWithPath: workspace)
        let whole = try CLI.run(["experiment", file, "-o", "whole", "--threads", "1"], in: directory)
        XCTAssertEqual(whole.status, 0, whole.error + whole.output)
        XCTAssertTrue(whole.output.contains("report: "), whole.output)

        // Interrupt: run relu/seed-7's training alone to step 3 and drop the log's end line:
        // what a run stopped by a signal after step 3 leaves (its checkpoint, no test figures).
        let experiment = try ExperimentConfiguration.load(path: file)
        let out = ExperimentOutput(path: workspace + "/part", experiment: experiment)
        let run = ExperimentRun(arm: "relu", seed: 7)
        try out.prepare(run, threads: 1)
        let stopped = try CLI.run(["train", "--config", "config.json", "--max-steps", "3", "--quiet"],
                                  in: URL(fileURLWithPath: out.folder(of: run)))
        XCTAssertEqual(stopped.status, 0, stopped.error)
        let logPath = out.folder(of: run) + "/log.jsonl"
        let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n").filter { !$0.contains(#""event": "end""#) }
        try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: logPath))
        guard case .unfinished(let checkpoint?) = out.state(of: run) else { return XCTFail("\(out.state(of: run))") }
        XCTAssertTrue(checkpoint.hasSuffix("checkpoint/last.safetensors"))
        XCTAssertEqual(out.state(of: ExperimentRun(arm: "tanh", seed: 7)), .notStarted)
        let listed = try CLI.run(["experiment", file, "-o", "part", "--list"], in: directory)
        XCTAssertEqual(listed.output, "1\trelu/seed-7\tunfinished (resumes)\n2\ttanh/seed-7\tnot started\n")

        let resumed = try CLI.run(["experiment", file, "-o", "part", "--threads", "2"], in: directory)
        XCTAssertEqual(resumed.status, 0, resumed.error + resumed.output)
        let childOutput = try String(contentsOfFile: out.folder(of: run) + "/output.txt", encoding: .utf8)
        XCTAssertTrue(childOutput.contains("resuming"), childOutput)
        for id in ["relu/seed-7", "tanh/seed-7"] {
            XCTAssertEqual(try logLines(workspace + "/part", id), try logLines(workspace + "/whole", id), id)
        }
        let again = try CLI.run(["experiment", file, "-o", "part"], in: directory)
        XCTAssertTrue(again.output.contains("2 of 2 run(s) already finished"), again.output)

        // The file asks for a third epoch: finished runs continue from their checkpoints
        // to what a three-epoch experiment gives from scratch.
        _ = try writeExperiment(seeds: "[7]", epochs: 3)
        let longer = try CLI.run(["experiment", file, "-o", "part", "--threads", "1"], in: directory)
        XCTAssertEqual(longer.status, 0, longer.error + longer.output)
        let fresh = try CLI.run(["experiment", file, "-o", "whole3", "--threads", "1"], in: directory)
        XCTAssertEqual(fresh.status, 0, fresh.error + fresh.output)
        for id in ["relu/seed-7", "tanh/seed-7"] {
            let lines = try logLines(workspace + "/part", id)
            XCTAssertEqual(lines, try logLines(workspace + "/whole3", id), id)
            XCTAssertEqual(lines.filter { $0.contains(#""event": "end""#) }.count, 1, id)
        }

        // Each run's pictures and the report's decode as PNGs of a plausible size.
        for picture in ["whole/curves-train-error.png", "whole/runs/relu/seed-7/filters.png", "whole/runs/relu/seed-7/confusion.png",
                        "whole/runs/relu/seed-7/neighbours.png"] {
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: "\(workspace)/\(picture)"), picture)
            let image = try PNG.decode([UInt8](bytes))
            XCTAssertGreaterThan(image.width * image.height, 1000, picture)
        }
        let report = try String(contentsOfFile: workspace + "/whole/results.md", encoding: .utf8)
        XCTAssertTrue(report.contains("2 of 2 runs finished"), report)
        XCTAssertTrue(report.contains("runs/relu/seed-7/filters.png"), report)
    }

    /// Runs done in two output folders (two machines) merge into one report;
    /// a folder made with other settings is refused; a changed experiment file
    /// is refused before any run starts.
    func testRunsDoneElsewhereMergeIntoOneReport() throws {
        let file = try writeExperiment(seeds: "[7]")
        let directory = URL(fileURLWithPath: workspace)
        let a = try CLI.run(["experiment", file, "-o", "machine-a", "--only", "relu", "--threads", "1"], in: directory)
        XCTAssertEqual(a.status, 0, a.error + a.output)
        let b = try CLI.run(["experiment", file, "-o", "machine-b", "--run", "tanh/seed-7", "--threads", "1"], in: directory)
        XCTAssertEqual(b.status, 0, b.error + b.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/machine-b/results.md"), "--run writes no report")

        let merged = try CLI.run(["experiment", file, "-o", "machine-a", "--report", "--merge", "machine-b"], in: directory)
        XCTAssertEqual(merged.status, 0, merged.error + merged.output)
        XCTAssertTrue(merged.output.contains("merged 1 finished run(s) from machine-b: tanh/seed-7"), merged.output)
        let csv = try String(contentsOfFile: workspace + "/machine-a/runs.csv", encoding: .utf8)
        XCTAssertTrue(csv.contains("\nrelu,7,finished,2,"), csv)
        XCTAssertTrue(csv.contains("\ntanh,7,finished,2,"), csv)
        XCTAssertEqual(try logLines(workspace + "/machine-a", "tanh/seed-7"), try logLines(workspace + "/machine-b", "tanh/seed-7"))

        // Another experiment file with the same name but another rate: its runs are not these.
        let changed = try writeExperiment("changed.json", seeds: "[7]", extraBase: #", "momentum": 0.5"#)
        let refused = try CLI.run(["experiment", changed, "-o", "machine-c", "--report", "--merge", "machine-b"], in: directory)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.error.contains("other settings (momentum)"), refused.error)
        let rerun = try CLI.run(["experiment", changed, "-o", "machine-a"], in: directory)
        XCTAssertEqual(rerun.status, 1)
        XCTAssertTrue(rerun.error.contains("holds this run with other settings (momentum"), rerun.error)
        let unknown = try CLI.run(["experiment", file, "-o", "machine-a", "--only", "gelu"], in: directory)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.error.contains("no such arm; its arms are relu, tanh"), unknown.error)
    }
}
