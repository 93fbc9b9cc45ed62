import Foundation

/// What one experiment run left in its folder: its log's epoch, steps and end
/// lines, and the analysis written after training. Read by the report, so
/// folders copied from other machines merge by being read.
public struct RunResult: Sendable {
    /// One epoch line of the log.
    public struct Epoch: Equatable, Sendable {
        /// From 1.
        public var epoch: Int
        /// Mean training loss over the epoch, as trained.
        public var trainLoss: Double
        /// Training top-1 error over the epoch, as trained.
        public var trainError: Double
        /// Validation loss after the epoch (nil without validation).
        public var validationLoss: Double?
        /// Validation top-1 error after the epoch.
        public var validationTop1: Double?
        /// `holdout`, `test`, or nil in logs before 0.8 (which validated on the test split unless `holdout` was set).
        public var validationSplit: String?
        /// Training seconds of the epoch (the whole epoch's wall time in logs without `train_seconds`).
        public var trainSeconds: Double
    }

    /// One point of the training-error curve: the error of the images trained
    /// since the previous point, at the fraction of epochs and the training
    /// seconds reached.
    public struct CurvePoint: Equatable, Sendable {
        /// Epochs trained, fractional (1.5: half way through the second).
        public var epochs: Double
        /// Training seconds so far (timing).
        public var seconds: Double
        /// Top-1 training error of the images since the previous point.
        public var trainError: Double
        /// Their mean loss.
        public var trainLoss: Double
    }

    /// The end line: the test split, evaluated once after training.
    public struct End: Equatable, Sendable {
        /// `epochs`, `max-steps`, `time-limit`.
        public var reason: String
        /// Epochs completed.
        public var epoch: Int?
        /// Mean test loss.
        public var testLoss: Double?
        /// Test top-1 error.
        public var testTop1: Double?
        /// Test top-5 error.
        public var testTop5: Double?
    }

    /// The run.
    public var run: ExperimentRun
    /// Epoch lines in order.
    public var epochs: [Epoch]
    /// The training-error curve: from the `steps` lines when the run logged them, else one point per epoch.
    public var curve: [CurvePoint]
    /// The end line; nil while the run is unfinished.
    public var end: End?
    /// The analysis after training (``RunAnalysis``), when written.
    public var analysis: RunAnalysis?

    /// Whether the run finished (its log has the end line).
    public var isFinished: Bool { end != nil }

    /// Training seconds over all epochs.
    public var trainingSeconds: Double { epochs.reduce(0) { $0 + $1.trainSeconds } }

    /// The fractional epoch and training seconds at which the curve first
    /// reaches `threshold`: linear interpolation between the first point at or
    /// below it and the point before (the start counts as error `chance` at 0).
    /// nil when it never does.
    public func crossing(_ threshold: Double, chance: Double) -> (epochs: Double, seconds: Double)? {
        var previous = CurvePoint(epochs: 0, seconds: 0, trainError: chance, trainLoss: .nan)
        for point in curve {
            if point.trainError <= threshold {
                let span = previous.trainError - point.trainError
                let t = span > 0 ? (previous.trainError - threshold) / span : 1
                let fraction = min(1, max(0, t))
                return (previous.epochs + fraction * (point.epochs - previous.epochs),
                        previous.seconds + fraction * (point.seconds - previous.seconds))
            }
            previous = point
        }
        return nil
    }

    /// Reads the run's folder: nil when it has no log yet.
    /// - Throws: ``ConfigurationError`` naming the file and line for a log or analysis that does not parse.
    public static func read(run: ExperimentRun, folder: String) throws -> RunResult? {
        let logPath = (folder as NSString).appendingPathComponent(ExperimentRun.logFile)
        guard let data = FileManager.default.contents(atPath: logPath) else { return nil }
        var result = try parse(log: String(decoding: data, as: UTF8.self), run: run, source: logPath)
        let analysisPath = (folder as NSString).appendingPathComponent(ExperimentRun.analysisFile)
        if let analysis = FileManager.default.contents(atPath: analysisPath) {
            result.analysis = try RunAnalysis.parse(json: [UInt8](analysis), source: analysisPath)
        }
        return result
    }

    /// Reads a log's lines (``EpochRecord``, ``StepsRecord`` and the end line); other events are skipped.
    /// An epoch or end line needs only the keys the report reads.
    /// - Throws: ``ConfigurationError`` at `source:line:column: key` for a line that does not parse.
    public static func parse(log text: String, run: ExperimentRun, source: String) throws -> RunResult {
        var epochs: [Epoch] = []
        var stepCurve: [CurvePoint] = []
        var end: End?
        // Per epoch: the counts at the previous steps line, and the seconds of the epochs before.
        var previous = (epoch: 0, images: 0, correct: 0, lossSum: 0.0)
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let place = "\(source):\(index + 1)"
            let decoder: StrictJSONDecoder
            do {
                decoder = try StrictJSONDecoder(bytes: Array(line.utf8))
                guard case .object = decoder.root else { throw ConfigurationError(component: place, problem: "") }
            } catch {
                throw ConfigurationError(component: place, problem: "not a JSON object (a damaged log line)")
            }
            do {
                switch try decoder.decode(LogEvent.self).event {
                case "epoch":
                    epochs.append(try decoder.decode(Epoch.self))
                case "steps":
                    let steps = try decoder.decode(StepsRecord.self)
                    if steps.epoch != previous.epoch { previous = (steps.epoch, 0, 0, 0) }
                    let newImages = steps.epochImages - previous.images
                    guard newImages > 0, steps.batches > 0 else { continue }
                    let epochSecondsBefore = epochs.filter { $0.epoch < steps.epoch }.reduce(0) { $0 + $1.trainSeconds }
                    stepCurve.append(CurvePoint(epochs: Double(steps.epoch - 1) + Double(steps.batch) / Double(steps.batches),
                                                seconds: epochSecondsBefore + steps.trainSeconds,
                                                trainError: Double(newImages - (steps.epochCorrect - previous.correct)) / Double(newImages),
                                                trainLoss: (steps.epochLossSum - previous.lossSum) / Double(newImages)))
                    previous = (steps.epoch, steps.epochImages, steps.epochCorrect, steps.epochLossSum)
                case "end":
                    end = try decoder.decode(End.self)
                default:
                    continue
                }
            } catch let failure as JSONDecodingFailure {
                let column = failure.column.map { ":\($0)" } ?? ""
                throw ConfigurationError(component: place + column + (failure.path.isEmpty ? "" : ": \(failure.path)"),
                                         problem: failure.problem)
            }
        }
        var cumulative = 0.0
        let epochCurve = epochs.map { epoch -> CurvePoint in
            cumulative += epoch.trainSeconds
            return CurvePoint(epochs: Double(epoch.epoch), seconds: cumulative, trainError: epoch.trainError, trainLoss: epoch.trainLoss)
        }
        return RunResult(run: run, epochs: epochs, curve: stepCurve.isEmpty ? epochCurve : stepCurve, end: end, analysis: nil)
    }
}

/// A log line's kind (`event`), read first to choose its reader; a line without one is skipped.
private struct LogEvent: Decodable {
    var event: String?

    init(from decoder: Decoder) throws {
        event = try decoder.container(keyedBy: JSONKey.self).decodeIfPresent(String.self, forKey: JSONKey("event"))
    }
}

extension RunResult.Epoch: Decodable {
    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainError = "train_error", validationLoss = "val_loss", validationTop1 = "val_top1"
        case validationSplit = "val_split", trainSeconds = "train_seconds", seconds
    }

    /// Reads the keys the report needs from an ``EpochRecord`` line; the others are left to it.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let why = "the report needs it"
        epoch = try c.decode(Int.self, forKey: .epoch, missing: why)
        trainLoss = try c.decode(Double.self, forKey: .trainLoss, missing: why)
        trainError = try c.decode(Double.self, forKey: .trainError, missing: why)
        validationLoss = try c.decodeIfPresent(Double.self, forKey: .validationLoss)
        validationTop1 = try c.decodeIfPresent(Double.self, forKey: .validationTop1)
        validationSplit = try c.decodeIfPresent(String.self, forKey: .validationSplit)
        // Logs before 0.8 have no train_seconds: the epoch's wall time stands in.
        trainSeconds = try c.decodeIfPresent(Double.self, forKey: .trainSeconds)
            ?? c.decode(Double.self, forKey: .seconds, missing: "the epoch's seconds (train_seconds or seconds)")
    }
}

extension RunResult.End: Decodable {
    enum CodingKeys: String, CodingKey {
        case reason, epoch, testLoss = "test_loss", testTop1 = "test_top1", testTop5 = "test_top5"
    }

    /// Reads the end line's reason and test figures (each may be absent); the ten-crop figures are left to the log.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reason = try c.decodeIfPresent(String.self, forKey: .reason) ?? ""
        epoch = try c.decodeIfPresent(Int.self, forKey: .epoch)
        testLoss = try c.decodeIfPresent(Double.self, forKey: .testLoss)
        testTop1 = try c.decodeIfPresent(Double.self, forKey: .testTop1)
        testTop5 = try c.decodeIfPresent(Double.self, forKey: .testTop5)
    }
}

/// What the runner measured on a finished run's final weights, written to
/// `analysis.json` in the run's folder: the test split's confusion matrix,
/// and conv1's colourfulness per tower (RGB models).
public struct RunAnalysis: Equatable, Sendable {
    /// The test split's class names.
    public var classNames: [String]
    /// `confusion[actual * classes + predicted]` over the test split.
    public var confusion: [Int]
    /// Test top-1 error of the same evaluation.
    public var testTop1: Double
    /// Per tower, the mean colourfulness of its conv1 kernels (``FilterGrid/colourfulness(weights:towers:)``); nil for grey input.
    public var colourfulness: [Double]?
    /// Picture files written in the run's folder.
    public var pictures: [String]

    /// The analysis as JSON: one member a line, arrays on one line.
    public func jsonString() -> String {
        // Encoding cannot fail: the members are strings and numbers.
        // swiftlint:disable:next force_try
        try! StrictJSONEncoder().encode(self).formatted(expandedLevels: 1) + "\n"
    }

    /// Reads what ``jsonString()`` writes.
    /// - Throws: ``ConfigurationError`` at `source:line:column: key`.
    public static func parse(json: [UInt8], source: String) throws -> RunAnalysis {
        do {
            return try StrictJSONDecoder(bytes: json).decode(RunAnalysis.self)
        } catch let error as JSONSyntaxError {
            throw ConfigurationError(component: "\(source):\(error.line):\(error.column)", problem: "invalid JSON: \(error.problem)")
        } catch let failure as JSONDecodingFailure {
            throw ConfigurationError(component: failure.location(source: source), problem: failure.problem)
        }
    }
}

extension RunAnalysis: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case classNames = "class_names", confusion, testTop1 = "test_top1", colourfulness, pictures
    }

    /// Reads the analysis: a classes x classes confusion of non-negative
    /// counts; `colourfulness` may be `null` and `pictures` absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.object(keyedBy: CodingKeys.self, expected: "expected a JSON object")
        try decoder.refuseUnknownKeys(CodingKeys.self, what: "an analysis")
        classNames = try c.decode([String].self, forKey: .classNames, missing: "the test split's class names")
        confusion = try c.decode([Int].self, forKey: .confusion, missing: "the test split's confusion matrix")
        guard confusion.count == classNames.count * classNames.count, confusion.allSatisfy({ $0 >= 0 }) else {
            throw c.invalid(.confusion, "must hold classes x classes (\(classNames.count * classNames.count)) non-negative counts")
        }
        testTop1 = try c.decode(Double.self, forKey: .testTop1, missing: "the test top-1 error")
        colourfulness = try c.decodeIfPresent([Double].self, forKey: .colourfulness)
        pictures = try c.decodeIfPresent([String].self, forKey: .pictures) ?? []
    }

    /// Writes every key in the order of ``CodingKeys``; `colourfulness` as `null` for grey input.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.classNames, classNames), (.confusion, confusion), (.testTop1, testTop1),
                      (.colourfulness, colourfulness), (.pictures, pictures)])
    }
}
