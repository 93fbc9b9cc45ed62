import XCTest
@testable import AlexNetKit

final class TrainingScheduleTests: XCTestCase {
    private func rates(_ schedule: LearningRateSchedule, errors: [Double?], base: Double = 0.1) throws -> [Double] {
        var scheduler = try LearningRateScheduler(schedule: schedule, baseRate: base)
        return try errors.enumerated().map { try scheduler.endEpoch($0.offset, validationError: $0.element) }
    }

    func testConstantNeverChanges() throws {
        XCTAssertEqual(try rates(.constant, errors: [0.5, 0.6, 0.7]), [0.1, 0.1, 0.1])
    }

    /// step:2 from 0.1: epochs 0-1 at 0.1, 2-3 at 0.01, 4 at 0.001 (each rate computed afresh from the base).
    func testStepDividesEveryKEpochs() throws {
        let after = try rates(.step(every: 2), errors: [nil, nil, nil, nil, nil])
        let (a, b, c): (Double, Double, Double) = (0.1, 0.1 / 10, 0.1 / 10 / 10)
        XCTAssertEqual(after, [a, b, b, c, c])
    }

    /// linear:4 from 0.1: epochs 0-3 at 0.1, 0.075, 0.05, 0.025, then 0.025 for any epoch past the horizon.
    func testLinearFallsInEqualStepsAndHoldsAfterItsHorizon() throws {
        let after = try rates(.linear(epochs: 4), errors: [nil, nil, nil, nil, nil])
        let base: Double = 0.1
        let quarter: Double = base * 1 / 4
        XCTAssertEqual(after, [base * 3 / 4, base * 2 / 4, quarter, quarter, quarter])
        XCTAssertEqual(try rates(.linear(epochs: 1), errors: [nil, nil]), [0.1, 0.1])
        // Rebuilt from a saved state mid-way, the rates continue unchanged.
        var first = try LearningRateScheduler(schedule: .linear(epochs: 4), baseRate: 0.1)
        try first.endEpoch(0, validationError: nil)
        var resumed = try LearningRateScheduler(schedule: .linear(epochs: 4), baseRate: 0.1, state: first.state)
        XCTAssertEqual(try resumed.endEpoch(1, validationError: nil), base * 2 / 4)
    }

    /// Patience 1: errors 0.5, 0.4 (better), 0.45 (1 bad), 0.41 (2 bad > 1: divide), 0.42 (1 bad), 0.3 (better).
    func testPlateauDividesAfterMoreThanPatienceEpochsWithoutImprovement() throws {
        var scheduler = try LearningRateScheduler(schedule: .plateau(patience: 1), baseRate: 0.1)
        var seen: [Double] = []
        for (epoch, error) in [0.5, 0.4, 0.45, 0.41, 0.42, 0.3].enumerated() {
            seen.append(try scheduler.endEpoch(epoch, validationError: error))
        }
        let (a, b): (Double, Double) = (0.1, 0.1 / 10)
        XCTAssertEqual(seen, [a, a, a, b, b, b])
        XCTAssertEqual(scheduler.state, ScheduleState(learningRate: b, bestError: 0.3, badEpochs: 0, reductions: 1))
    }

    /// Patience 0 divides after the first epoch that does not lower the error; an equal error is no improvement.
    func testPlateauPatienceZeroAndEqualErrorIsNoImprovement() throws {
        let (a, b, c): (Double, Double, Double) = (0.1, 0.1 / 10, 0.1 / 10 / 10)
        XCTAssertEqual(try rates(.plateau(patience: 0), errors: [0.5, 0.5, 0.4, 0.45]), [a, b, b, c])
    }

    func testPlateauNeedsAValidationError() throws {
        var scheduler = try LearningRateScheduler(schedule: .plateau(patience: 2), baseRate: 0.1)
        XCTAssertThrowsError(try scheduler.endEpoch(0, validationError: nil))
    }

    /// A scheduler rebuilt from a saved state continues as the original does.
    func testStateRoundTripContinuesIdentically() throws {
        var original = try LearningRateScheduler(schedule: .plateau(patience: 1), baseRate: 0.05)
        let errors = [0.3, 0.31, 0.32, 0.2, 0.25, 0.26, 0.27]
        for epoch in 0..<3 { try original.endEpoch(epoch, validationError: errors[epoch]) }
        var copy = try LearningRateScheduler(schedule: .plateau(patience: 1), baseRate: 0.05, state: original.state)
        for epoch in 3..<errors.count {
            XCTAssertEqual(try original.endEpoch(epoch, validationError: errors[epoch]),
                           try copy.endEpoch(epoch, validationError: errors[epoch]))
            XCTAssertEqual(original.state, copy.state)
        }
    }

    func testParsingAndItsErrors() throws {
        XCTAssertEqual(try LearningRateSchedule(parsing: "constant"), .constant)
        XCTAssertEqual(try LearningRateSchedule(parsing: "step:30"), .step(every: 30))
        XCTAssertEqual(try LearningRateSchedule(parsing: "plateau:0"), .plateau(patience: 0))
        XCTAssertEqual(try LearningRateSchedule(parsing: "linear:9"), .linear(epochs: 9))
        for bad in ["", "step", "step:0", "step:x", "plateau:-1", "cosine", "constant:1", "linear", "linear:0", "linear:-2"] {
            let error = captureError { try LearningRateSchedule(parsing: bad) } as? ConfigurationError
            XCTAssertEqual(error?.component, "schedule", bad)
            XCTAssertTrue(error?.problem.contains("use constant, step:K") ?? false, bad)
        }
        for schedule in [LearningRateSchedule.constant, .step(every: 3), .linear(epochs: 7), .plateau(patience: 5)] {
            XCTAssertEqual(try LearningRateSchedule(parsing: schedule.description), schedule)
        }
    }

    /// The trainer follows the schedule: step:1 divides the rate every epoch, as the log shows.
    func testTrainerLogsTheScheduledRates() throws {
        let workspace = try TrainingFixtures.makeWorkspace()
        defer { TrainingFixtures.remove(workspace) }
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.epochs = 3
        config.schedule = .step(every: 1)
        config.lrFactor = 4
        let run = try TrainingRun(configuration: config)
        try run.trainer.run()
        let rates = run.trainer.log.lines.map { line -> String in
            String(line.split(separator: ",").first { $0.contains("\"lr\"") }!.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
        }
        XCTAssertEqual(rates, ["0.05", "0.0125", "0.003125"])
        XCTAssertEqual(run.model.learningRate, 0.05 / 4 / 4)
        XCTAssertEqual(run.trainer.progress.schedule.learningRate, 0.05 / 4 / 4 / 4)
    }
}

final class TrainingConfigurationTests: XCTestCase {
    func testJSONRoundTripKeepsEverySetting() throws {
        var config = TrainingConfiguration()
        config.model = "layers-80sec"
        config.towers = 1
        config.input = [1, 28, 28]
        config.seed = 18_446_744_073_709_551_615
        config.lr = 0.03
        config.scale = 0.011107885
        config.schedule = .plateau(patience: 2)
        config.checkpoint = "runs/a \"quoted\""
        config.timeLimit = 1500
        config.flip = false
        let text = config.jsonString()
        XCTAssertEqual(try TrainingConfiguration.parse(json: Array(text.utf8), source: "c.json"), config)
        XCTAssertEqual(TrainingConfiguration.keys.count, text.split(separator: "\n").count - 2)
    }

    func testFileKeysOverrideDefaultsAndMissingKeysKeepThem() throws {
        let config = try TrainingConfiguration.parse(json: Array(#"{"epochs": 3, "weight_decay": 0.001, "init": "he"}"#.utf8),
                                                     source: "c.json")
        XCTAssertEqual(config.epochs, 3)
        XCTAssertEqual(config.weightDecay, 0.001)
        XCTAssertEqual(config.initialisation, .he)
        XCTAssertEqual(config.batch, 128)
        XCTAssertEqual(config.momentum, 0.9)
        XCTAssertEqual(config.sgd, .paper)
    }

    func testErrorsNameTheFileAndTheKey() throws {
        let cases: [(String, String)] = [
            (#"{"epoch": 3}"#, "c.json:1:2: epoch: unknown key; a run config takes"),
            (#"{"epochs": 2.5}"#, "c.json:1:2: epochs: expected an integer, got 2.5"),
            (#"{"lr": "fast"}"#, #"c.json:1:2: lr: expected a finite number, got "fast""#),
            (#"{"lr": -1}"#, "c.json:1:2: lr: must be positive and finite, got -1.0"),
            (#"{"sgd": "adam"}"#, "c.json:1:2: sgd: must be paper or pytorch, got 'adam'"),
            (#"{"towers": 3}"#, "c.json:1:2: towers: must be 1 or 2, got 3"),
            (#"{"schedule": "step:0"}"#, "c.json:1:2: schedule: 'step:0' is not a schedule"),
            (#"{"init": "xavier"}"#, "c.json:1:2: init: must be paper, he or gaussian:S, got 'xavier'"),
            (#"{"format": "png"}"#, "c.json:1:2: format: must be auto, cifar10, idx or folder, got 'png'"),
            (#"{"mean": "median"}"#, "c.json:1:2: mean: must be channel, image or none, got 'median'"),
            (#"{"sgd": 1}"#, "c.json:1:2: sgd: expected a string: paper or pytorch, got 1"),
            ("{\"epochs\": 3,}", "c.json:1:14: invalid JSON: trailing comma"),
            ("[1]", "c.json: expected a run config: a JSON object of settings, got [1]"),
        ]
        for (json, expected) in cases {
            let error = captureError { try TrainingConfiguration.parse(json: Array(json.utf8), source: "c.json") }
            XCTAssertTrue("\(error.map { "\($0)" } ?? "")".hasPrefix(expected), "\(json): \(error.map { "\($0)" } ?? "no error")")
        }
        let missing = captureError { try TrainingConfiguration.load(path: "/no/such/run.json") }
        XCTAssertEqual(missing.map { "\($0)" }, "/no/such/run.json: no such file")
    }

    /// The typed settings are written as the strings they always were, and read back equal.
    func testTypedSettingsKeepTheirJSONSpelling() throws {
        var config = TrainingConfiguration()
        config.initialisation = .gaussian(std: 0.02)
        config.format = .cifar10
        config.mean = .image
        config.schedule = .linear(epochs: 10)
        config.sgd = .pytorch
        let text = config.jsonString()
        for line in [#""init": "gaussian:0.02""#, #""format": "cifar10""#, #""mean": "image""#, #""schedule": "linear:10""#,
                     #""sgd": "pytorch""#] {
            XCTAssertTrue(text.contains(line), text)
        }
        XCTAssertEqual(try TrainingConfiguration.parse(json: Array(text.utf8), source: "c.json"), config)
        let defaults = TrainingConfiguration().jsonString()
        for line in [#""init": "he""#, #""format": "auto""#, #""mean": "channel""#, #""schedule": "constant""#, #""sgd": "paper""#] {
            XCTAssertTrue(defaults.contains(line), defaults)
        }
        XCTAssertEqual(Initialisation(settingText: "paper"), .paper)
        XCTAssertEqual(Initialisation.paper.description, "paper")
        XCTAssertNil(Initialisation(settingText: "gaussian:-1"))
        XCTAssertEqual(ImagePipeline.MeanSubtraction.acceptedList, "channel, image or none")
    }

    func testDifferencesAndCopy() throws {
        let a = TrainingConfiguration()
        var b = a
        b.epochs = 20
        b.lr = 0.1
        XCTAssertEqual(b.differences(from: a), ["epochs", "lr"])
        var c = a
        c.copy(["epochs"], from: b)
        XCTAssertEqual(c.epochs, 20)
        XCTAssertEqual(c.lr, a.lr)
    }
}
