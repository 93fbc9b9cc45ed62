import Foundation
import XCTest
@testable import AlexNetKit

final class TrainingRunTests: XCTestCase {
    private var workspace: String!

    override func setUpWithError() throws { workspace = try TrainingFixtures.makeWorkspace(name) }
    override func tearDownWithError() throws { TrainingFixtures.remove(workspace) }

    private func assertCheckpointsEqual(_ a: TrainingCheckpoint, _ b: TrainingCheckpoint, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.weights.map(\.name), b.weights.map(\.name), file: file, line: line)
        for (x, y) in zip(a.weights, b.weights) {
            XCTAssertTrue(x.tensor.isBitwiseEqual(to: y.tensor), "weight \(x.name)", file: file, line: line)
        }
        XCTAssertEqual(a.velocities.map(\.name), b.velocities.map(\.name), file: file, line: line)
        for (x, y) in zip(a.velocities, b.velocities) {
            XCTAssertTrue(x.tensor.isBitwiseEqual(to: y.tensor), "velocity \(x.name)", file: file, line: line)
            XCTAssertTrue(x.tensor.storage.contains { $0 != 0 }, "velocity \(x.name) is still zero", file: file, line: line)
        }
        var pa = a.progress, pb = b.progress
        pa.epochSeconds = 0
        pb.epochSeconds = 0
        XCTAssertEqual(pa, pb, file: file, line: line)
        XCTAssertEqual(TrainingFixtures.withoutTiming(a.log), TrainingFixtures.withoutTiming(b.log), file: file, line: line)
    }

    /// Stopping at `stops` (steps) and resuming each time gives the same weights,
    /// velocities, progress and log as one run that never stopped, with random
    /// crops, flips and dropout on. The interrupted run also uses another thread count.
    private func assertResumeIsBitwiseIdentical(towers: Int, stops: [Int]) throws {
        var whole = TrainingFixtures.configuration(workspace, towers: towers)
        whole.checkpoint = workspace + "/whole"
        whole.log = workspace + "/whole.jsonl"
        let uninterrupted = try TrainingRun(configuration: whole)
        XCTAssertEqual(uninterrupted.model.towerCount, towers)
        XCTAssertEqual(try uninterrupted.trainer.run(), .epochs)
        XCTAssertEqual(uninterrupted.trainer.progress.step, 12)

        var parts = TrainingFixtures.configuration(workspace, towers: towers)
        parts.checkpoint = workspace + "/parts"
        parts.log = workspace + "/parts.jsonl"
        parts.threads = 1
        parts.maxSteps = stops[0]
        XCTAssertEqual(try TrainingRun(configuration: parts).trainer.run(), .maxSteps)
        let last = workspace + "/parts/last.safetensors"
        for (i, stop) in stops.enumerated() {
            XCTAssertEqual(try TrainingCheckpoint.read(path: last).progress.step, stop)
            let next = i + 1 < stops.count ? stops[i + 1] : nil
            let resumed = try TrainingRun(resuming: last, change: { $0.maxSteps = next; $0.threads = 2 })
            XCTAssertEqual(resumed.trainer.progress.step, stop)
            XCTAssertEqual(try resumed.trainer.run(), next == nil ? .epochs : .maxSteps)
        }

        let a = try TrainingCheckpoint.read(path: workspace + "/whole/last.safetensors")
        let b = try TrainingCheckpoint.read(path: last)
        assertCheckpointsEqual(a, b)
        XCTAssertEqual(a.log.count, 2)
        // The log files hold exactly the checkpointed lines.
        let logA = try String(contentsOfFile: workspace + "/whole.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        let logB = try String(contentsOfFile: workspace + "/parts.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(logA, a.log)
        XCTAssertEqual(TrainingFixtures.withoutTiming(logA), TrainingFixtures.withoutTiming(logB))
    }

    /// The command line names the settings it sets through the configuration's
    /// own key table: every key has a property, and a property that is no
    /// setting has no key.
    func testEverySettingsKeyIsFoundFromItsProperty() {
        XCTAssertEqual(TrainingConfiguration.key(for: \TrainingConfiguration.lrFactor), "lr_factor")
        XCTAssertEqual(TrainingConfiguration.key(for: \TrainingConfiguration.initialisation), "init")
        XCTAssertEqual(TrainingConfiguration.key(for: \TrainingConfiguration.towers), "towers")
        XCTAssertEqual(Set(TrainingConfiguration.entries.compactMap { TrainingConfiguration.key(for: $0.path) }),
                       Set(TrainingConfiguration.keys))
        XCTAssertNil(TrainingConfiguration.key(for: \TrainingConfiguration.jsonValue))
    }

    func testResumeIsBitwiseIdenticalOneTower() throws {
        try assertResumeIsBitwiseIdentical(towers: 1, stops: [4, 6, 9])
    }

    func testResumeIsBitwiseIdenticalTwoTowers() throws {
        try assertResumeIsBitwiseIdentical(towers: 2, stops: [3, 8])
    }

    /// `requestStop()` (what Ctrl-C calls) stops after the step in progress,
    /// writes last.safetensors for exactly that state, and the resumed run ends
    /// bitwise equal to one that was never stopped: mid-epoch, and at an epoch's
    /// last batch (before its validation pass, which the resumed run does).
    func testRequestStopWritesTheCheckpointAndResumesExactly() throws {
        var whole = TrainingFixtures.configuration(workspace, towers: 1)
        whole.checkpoint = workspace + "/whole"
        try TrainingRun(configuration: whole).trainer.run()

        var parts = TrainingFixtures.configuration(workspace, towers: 1)
        parts.checkpoint = workspace + "/parts"
        let last = workspace + "/parts/last.safetensors"
        for (index, stopAfter) in [3, 6].enumerated() {
            let run = index == 0 ? try TrainingRun(configuration: parts) : try TrainingRun(resuming: last)
            let reason = try run.trainer.run { event in
                if case .step(_, _, _, let step, _, _, _, _) = event, step == stopAfter { run.trainer.requestStop() }
            }
            XCTAssertEqual(reason, .interrupted)
            let stopped = try TrainingCheckpoint.read(path: last)
            XCTAssertEqual(stopped.progress.step, stopAfter)
            XCTAssertEqual(stopped.progress.batch, stopAfter == 6 ? 6 : stopAfter)
            XCTAssertEqual(stopped.log.count, 0, "stopped before the first epoch's validation")
        }
        XCTAssertEqual(try TrainingRun(resuming: last).trainer.run(), .epochs)
        assertCheckpointsEqual(try TrainingCheckpoint.read(path: workspace + "/whole/last.safetensors"), try TrainingCheckpoint.read(path: last))
    }

    /// The trainer reads batches through the one prefetching path
    /// (BatchIterator), and a batch's skipped-file warnings reach the observer,
    /// in training and in validation.
    func testSkippedFileWarningsReachTheObserver() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.epochs = 1
        let run = try TrainingRun(configuration: config)
        let warning = DataWarning(file: "bad.jpg", problem: "corrupt or truncated JPEG")
        let train = EditedBatches(base: run.data.train) { batch, _, index in if index == 2 { batch.skipped.append(warning) } }
        let validation = EditedBatches(base: run.data.validation) { batch, _, index in if index == 0 { batch.skipped.append(warning) } }
        let trainer = try Trainer(configuration: run.data.configuration, model: run.model, train: train, validation: validation,
                                  classNames: run.data.classNames, log: try TrainingLog(path: nil))
        var heard: [String] = []
        try trainer.run { event in if case .skipped(let warnings) = event { heard += warnings.map(\.description) } }
        XCTAssertEqual(heard, ["bad.jpg: corrupt or truncated JPEG", "bad.jpg: corrupt or truncated JPEG"])
    }

    /// Lines written after the checkpoint a run resumes from are dropped from the log.
    func testResumeRewritesTheLogToTheCheckpointsLines() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.checkpoint = workspace + "/ck"
        config.log = workspace + "/log.jsonl"
        config.maxSteps = 8
        let run = try TrainingRun(configuration: config)
        try run.trainer.run()
        try run.trainer.log.append(#"{"event": "end"}"#)
        _ = try TrainingRun(resuming: workspace + "/ck/last.safetensors")
        let lines = try String(contentsOfFile: workspace + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix(#"{"event": "epoch", "epoch": 1, "step": 6, "lr": 0.05, "train_loss": "#), String(lines[0]))
    }

    func testResumeRefusesToChangeSettingsThatChangeResults() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.checkpoint = workspace + "/ck"
        config.maxSteps = 2
        try TrainingRun(configuration: config).trainer.run()
        let error = captureError { try TrainingRun(resuming: self.workspace + "/ck/last.safetensors", change: { $0.lr = 0.1; $0.batch = 4 }) }
        let text = error.map { "\($0)" } ?? ""
        XCTAssertTrue(text.contains("cannot change batch, lr (only "), text)
    }

    /// A NaN loss stops the run at the step that produced it, naming it, and
    /// leaves the last checkpoint exactly as it was written.
    func testNonFiniteLossStopsAndKeepsTheLastGoodCheckpoint() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 2)
        config.checkpoint = workspace + "/ck"
        config.epochs = 3
        let run = try TrainingRun(configuration: config)
        // Batch 2 of epoch 1 turned to NaN.
        let poisoned = EditedBatches(base: run.data.train) { batch, epoch, index in
            if epoch == 1 && index == 2 { batch.images = Tensor(shape: batch.images.shape, repeating: .nan) }
        }
        let trainer = try Trainer(configuration: run.data.configuration, model: run.model, train: poisoned, validation: run.data.validation,
                                  classNames: run.data.classNames, log: try TrainingLog(path: nil))
        trainer.checkpointWriter = run.trainer.checkpointWriter
        let path = workspace + "/ck/last.safetensors"
        var written: [Int: Data] = [:]
        let error = captureError {
            try trainer.run { event in
                if case .checkpointWritten(let p, let step) = event, p == path { written[step] = FileManager.default.contents(atPath: p) }
            }
        } as? NonFiniteTrainingError
        XCTAssertEqual(error?.step, 8)
        XCTAssertEqual(error?.epoch, 1)
        XCTAssertEqual(error?.batch, 2)
        XCTAssertEqual(Array(written.keys), [6])
        XCTAssertEqual(FileManager.default.contents(atPath: path), written[6])
        XCTAssertEqual(try TrainingCheckpoint.read(path: path).progress.step, 6)
        let message = error.map { "\($0)" } ?? ""
        XCTAssertTrue(message.hasPrefix("training stopped at step 8 (epoch 2, batch 3): the loss is nan"), message)
        XCTAssertTrue(message.contains("The last good checkpoint is \(path) (step 6)"), message)
        XCTAssertEqual(trainer.progress.step, 8)
    }

    /// A rate so large that the first update overflows: stopped before any checkpoint is written.
    func testOverflowingUpdateStopsBeforeWritingACheckpoint() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.checkpoint = workspace + "/ck"
        config.lr = 1e300  // infinite in Float: the first update overflows
        let run = try TrainingRun(configuration: config)
        let error = captureError { try run.trainer.run() } as? NonFiniteTrainingError
        XCTAssertEqual(error?.step, 0)
        let message = error.map { "\($0)" } ?? ""
        XCTAssertTrue(message.hasPrefix("training stopped at step 0 (epoch 1, batch 1): the update made a weight non-finite: conv1.weight: "),
                      message)
        XCTAssertTrue(message.contains("the damaged weights were not written to any checkpoint. No checkpoint was written"), message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/ck/last.safetensors"))
    }

    /// The trainer's steps are the hand-driven steps: the loader's batch, the
    /// network's forward and backward with `PassContext.step` = the step number,
    /// then SGD in the configured form. Checked for both forms over two steps.
    func testBothSGDFormsThroughTheTrainerMatchHandDrivenSteps() throws {
        for form in SGDForm.allCases {
            var config = TrainingFixtures.configuration(workspace, towers: 1)
            config.sgd = form
            config.maxSteps = 2
            let run = try TrainingRun(configuration: config)
            try run.trainer.run()

            let network = try Network<Float>(spec: run.data.spec, seed: config.seed, initialisation: .he)
            let sgd = SGD<Float>(learningRate: 0.05, form: form)
            let pool = WorkerPool(workerCount: 1)
            for step in 0..<2 {
                let batch = try run.data.train.makeBatch(epoch: 0, index: step)
                _ = try network.forwardBackward(batch.images, labels: batch.labels,
                                                context: PassContext(pool: pool, mode: .training, step: UInt64(step)))
                try sgd.step(network.namedParameters.map(\.parameter))
            }
            for ((name, expected), (_, actual)) in zip(network.namedParameters, try run.model.weights()) {
                XCTAssertTrue(actual.isBitwiseEqual(to: expected.value), "\(form) \(name)")
            }
            for ((name, parameter), (_, velocity)) in zip(network.namedParameters, try run.model.velocities()) {
                XCTAssertTrue(velocity.isBitwiseEqual(to: sgd.velocity(of: parameter)), "\(form) velocity \(name)")
            }
        }
    }

    /// Two towers train the same weights as the grouped two-tower spec on one pool.
    func testTwoTowersTrainTheSameWeightsAsTheGroupedNetwork() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 2)
        config.maxSteps = 3
        let run = try TrainingRun(configuration: config)
        try run.trainer.run()
        let grouped = try TrainingModel(network: Network<Float>(spec: run.data.spec, seed: 7, initialisation: .he),
                                        twoTowers: false, threads: 2) { SGD<Float>(learningRate: 0.05, form: .paper) }
        for step in 0..<3 {
            let batch = try run.data.train.makeBatch(epoch: 0, index: step)
            _ = try grouped.forwardBackward(batch.images, labels: batch.labels, step: UInt64(step))
            try grouped.update()
        }
        for ((name, a), (_, b)) in zip(try run.model.weights(), try grouped.weights()) {
            XCTAssertTrue(a.isBitwiseEqual(to: b), name)
        }
    }

    /// `init he` draws N(0, 2 / fan-in), `init paper` N(0, 0.01^2); biases start at the spec's constants.
    func testInitialisationStatistics() throws {
        let spec = try ModelZoo.spec(named: "cifar-towers", classes: 10, towers: 2, inputShape: ModelZoo.fashionMNISTInput)
        for (scheme, name) in [(Initialisation.he, "he"), (.paper, "paper")] {
            let network = try Network<Float>(spec: spec, seed: 11, initialisation: scheme)
            for (parameterName, parameter) in network.namedParameters {
                let values = parameter.value.storage.map(Double.init)
                if parameterName.hasSuffix(".bias") {
                    let expected: Float = ["conv2.bias", "conv4.bias", "fc5.bias", "fc6.bias"].contains(parameterName) ? 1 : 0
                    XCTAssertTrue(parameter.value.storage.allSatisfy { $0 == expected }, "\(name) \(parameterName)")
                    continue
                }
                let fanIn = parameter.value.count / parameter.value.shape[0]
                let std = name == "he" ? (2 / Double(fanIn)).squareRoot() : 0.01
                let mean = values.reduce(0, +) / Double(values.count)
                let sampleStd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
                // Tolerances: about 4 standard errors for the smallest tensor (conv1, 1600 values).
                XCTAssertEqual(sampleStd / std, 1, accuracy: 4 / (2 * Double(values.count)).squareRoot() + 0.01, "\(name) \(parameterName)")
                XCTAssertEqual(mean / std, 0, accuracy: 4 / Double(values.count).squareRoot(), "\(name) \(parameterName)")
            }
        }
        // The run configuration chooses it.
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.initialisation = .he
        let run = try TrainingRun(configuration: config)
        let expected = try Network<Float>(spec: run.data.spec, seed: 7, initialisation: .he)
        for ((name, a), (_, b)) in zip(try run.model.weights(), expected.namedParameters) {
            XCTAssertTrue(a.isBitwiseEqual(to: b.value), name)
        }
    }

    /// The library example of Docs/training.md, on the tiny data.
    func testDocumentedLibraryExample() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 2)
        config.epochs = 2
        config.checkpoint = workspace + "/ck"
        let run = try TrainingRun(configuration: config)
        var lines: [String] = []
        try run.trainer.run { event in if case .epochEnded(let record) = event { lines.append(record.jsonLine()) } }
        XCTAssertEqual(lines, run.trainer.log.lines)
        XCTAssertLessThan(try run.evaluate(run.data.test).top1Error, 0.9)

        let resumed = try TrainingRun(resuming: workspace + "/ck/last.safetensors", change: { $0.epochs = 4 })
        XCTAssertEqual(try resumed.trainer.run(), .epochs)
        XCTAssertEqual(resumed.trainer.progress.step, 24)
        XCTAssertEqual(resumed.trainer.log.lines.count, 4)
    }

    /// Holdout and limit cut the training split; the statistics come from the training part.
    func testHoldoutAndTrainLimit() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.holdout = 8
        config.trainLimit = 24
        let data = try TrainingData.prepare(config)
        XCTAssertEqual(data.trainSet.count, 24)
        XCTAssertEqual(data.validationSet.count, 8)
        XCTAssertEqual(data.testSet.count, 16)
        XCTAssertEqual(data.statistics?.imageCount, 24)
        XCTAssertEqual(data.train.batchCount, 3)
        XCTAssertEqual(data.configuration.cropPadding, 1)
        XCTAssertEqual(data.configuration.input, [1, 12, 12])
        XCTAssertEqual(data.validationSet.labels, Array(data.validation.dataset.labels))
        config.holdout = 48
        XCTAssertThrowsError(try TrainingData.prepare(config))
    }

    /// By default a tenth of the training split validates, chosen by the
    /// holdout seed alone: the same examples for every run seed, others for
    /// another holdout seed, disjoint from the training part; `holdout_seed`
    /// null takes the last examples (the files of versions before 0.8).
    func testDefaultHoldoutIsASeededTenthOfTheTrainingSplit() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.holdout = nil
        let data = try TrainingData.prepare(config)
        XCTAssertEqual(data.configuration.holdout, 4)
        XCTAssertEqual(data.validationSplit, "holdout")
        let held = try XCTUnwrap(data.validationSet as? SubsetDataset).indices
        let trained = try XCTUnwrap(data.trainSet as? SubsetDataset).indices
        XCTAssertEqual(held.count, 4)
        XCTAssertEqual(Set(held).union(trained), Set(0..<48))
        XCTAssertTrue(Set(held).isDisjoint(with: trained))
        XCTAssertNotEqual(held, [44, 45, 46, 47])
        XCTAssertEqual(held, AugmentationRandom.holdoutPermutation(count: 48, seed: 0)[..<4].sorted())
        config.seed = 99
        XCTAssertEqual(try XCTUnwrap(try TrainingData.prepare(config).validationSet as? SubsetDataset).indices, held)
        config.holdoutSeed = 5
        XCTAssertNotEqual(try XCTUnwrap(try TrainingData.prepare(config).validationSet as? SubsetDataset).indices, held)
        config.holdoutSeed = nil
        XCTAssertEqual(try XCTUnwrap(try TrainingData.prepare(config).validationSet as? SubsetDataset).indices, [44, 45, 46, 47])
        XCTAssertEqual(TrainingConfiguration.defaultHoldout(trainingCount: 60_000), 5000)
        XCTAssertEqual(TrainingConfiguration.defaultHoldout(trainingCount: 20_000), 2000)
        // The split is said in the log and the choice survives the checkpoint.
        config.holdoutSeed = 0
        config.epochs = 1
        config.checkpoint = workspace + "/holdout-ck"
        let run = try TrainingRun(configuration: config)
        try run.trainer.run()
        XCTAssertTrue(run.trainer.log.lines[0].contains(#""val_split": "holdout""#), run.trainer.log.lines[0])
        let checkpoint = try TrainingCheckpoint.read(path: workspace + "/holdout-ck/last.safetensors")
        XCTAssertEqual(checkpoint.configuration.holdout, 4)
        XCTAssertEqual(checkpoint.configuration.holdoutSeed, 0)
    }

    /// A configuration written before `holdout_seed` existed reads with the
    /// earlier meaning as a checkpoint's (the last examples) and with the seeded
    /// default as a new run config.
    func testConfigurationsWithoutHoldoutSeed() throws {
        var old = TrainingConfiguration()
        old.holdout = 8
        let text = old.jsonString().split(separator: "\n").filter { !$0.contains("holdout_seed") }.joined(separator: "\n")
        var legacy = TrainingConfiguration()
        legacy.holdoutSeed = nil
        XCTAssertNil(try TrainingConfiguration.parse(json: Array(text.utf8), source: "old", onto: legacy).holdoutSeed)
        XCTAssertEqual(try TrainingConfiguration.parse(json: Array(text.utf8), source: "new").holdoutSeed, 0)
        XCTAssertEqual(try TrainingConfiguration.parse(json: Array(#"{"holdout": null, "holdout_seed": null}"#.utf8), source: "x").holdout, nil)
    }
}

/// Another source's batches, each passed through `edit` (with its epoch and index) on the way out.
final class EditedBatches: BatchSource {
    let base: BatchSource
    let edit: (inout Batch, _ epoch: Int, _ index: Int) -> Void

    init(base: BatchSource, edit: @escaping (inout Batch, _ epoch: Int, _ index: Int) -> Void) {
        self.base = base
        self.edit = edit
    }

    var batchCount: Int { base.batchCount }
    var exampleCount: Int { base.exampleCount }

    func batch(epoch: Int, index: Int) throws -> Batch {
        var batch = try base.batch(epoch: epoch, index: index)
        edit(&batch, epoch, index)
        return batch
    }
}
