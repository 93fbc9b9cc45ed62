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
    public static func parse(log text: String, run: ExperimentRun, source: String) throws -> RunResult {
        var epochs: [Epoch] = []
        var stepCurve: [CurvePoint] = []
        var end: End?
        // Per epoch: the counts at the previous steps line, and the seconds of the epochs before.
        var previous = (epoch: 0, images: 0, correct: 0, lossSum: 0.0)
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let fields: [String: JSONValue]
            do {
                guard case .object(let members) = try JSONParser.parse(Array(line.utf8)) else { throw ConfigurationError(component: "", problem: "") }
                fields = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            } catch {
                throw ConfigurationError(component: "\(source):\(index + 1)", problem: "not a JSON object (a damaged log line)")
            }
            func number(_ key: String) -> Double? {
                if case .number(let text)? = fields[key] { return Double(text) }
                return nil
            }
            func string(_ key: String) -> String? {
                if case .string(let s)? = fields[key] { return s }
                return nil
            }
            func require(_ key: String) throws -> Double {
                guard let x = number(key) else {
                    throw ConfigurationError(component: "\(source):\(index + 1)", problem: "the \(string("event") ?? "") line has no number '\(key)'")
                }
                return x
            }
            switch string("event") {
            case "epoch":
                let record = Epoch(epoch: Int(try require("epoch")), trainLoss: try require("train_loss"), trainError: try require("train_error"),
                                   validationLoss: number("val_loss"), validationTop1: number("val_top1"),
                                   validationSplit: string("val_split"),
                                   trainSeconds: try number("train_seconds") ?? require("seconds"))
                epochs.append(record)
            case "steps":
                let epoch = Int(try require("epoch"))
                if epoch != previous.epoch { previous = (epoch, 0, 0, 0) }
                let images = Int(try require("epoch_images")), correct = Int(try require("epoch_correct"))
                let lossSum = try require("epoch_loss_sum")
                let batch = try require("batch"), batches = try require("batches")
                let newImages = images - previous.images
                guard newImages > 0, batches > 0 else { continue }
                let epochSecondsBefore = epochs.filter { $0.epoch < epoch }.reduce(0) { $0 + $1.trainSeconds }
                stepCurve.append(CurvePoint(epochs: Double(epoch - 1) + batch / batches,
                                            seconds: epochSecondsBefore + (try require("train_seconds")),
                                            trainError: Double(newImages - (correct - previous.correct)) / Double(newImages),
                                            trainLoss: (lossSum - previous.lossSum) / Double(newImages)))
                previous = (epoch, images, correct, lossSum)
            case "end":
                end = End(reason: string("reason") ?? "", epoch: number("epoch").map { Int($0) }, testLoss: number("test_loss"), testTop1: number("test_top1"),
                          testTop5: number("test_top5"))
            default:
                continue
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

    /// The analysis as JSON.
    public func jsonString() -> String {
        let names = "[" + classNames.map(JSONValue.encode(string:)).joined(separator: ", ") + "]"
        let colour = colourfulness.map { "[" + $0.map { TrainingLog.number($0) }.joined(separator: ", ") + "]" } ?? "null"
        return "{\n  \"class_names\": \(names),\n  \"confusion\": [" + confusion.map(String.init).joined(separator: ", ") + "],\n"
            + "  \"test_top1\": \(TrainingLog.number(testTop1)),\n  \"colourfulness\": \(colour),\n"
            + "  \"pictures\": [" + pictures.map(JSONValue.encode(string:)).joined(separator: ", ") + "]\n}\n"
    }

    /// Reads what ``jsonString()`` writes.
    /// - Throws: ``ConfigurationError`` naming the file and the key.
    public static func parse(json: [UInt8], source: String) throws -> RunAnalysis {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError(component: source, problem: problem) }
        guard case .object(let members)? = try? JSONParser.parse(json) else { throw fail("not a JSON object") }
        let fields = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        func strings(_ key: String) throws -> [String] {
            guard case .array(let items)? = fields[key] else { throw fail("no array '\(key)'") }
            return try items.map { guard case .string(let s) = $0 else { throw fail("'\(key)' holds a non-string") }; return s }
        }
        func numbers(_ key: String) throws -> [Double] {
            guard case .array(let items)? = fields[key] else { throw fail("no array '\(key)'") }
            return try items.map { guard case .number(let t) = $0, let x = Double(t) else { throw fail("'\(key)' holds a non-number") }; return x }
        }
        let names = try strings("class_names")
        let confusion = try numbers("confusion").map { Int($0) }
        guard confusion.count == names.count * names.count, confusion.allSatisfy({ $0 >= 0 }) else {
            throw fail("'confusion' must hold classes x classes counts (\(names.count * names.count)), got \(confusion.count)")
        }
        guard case .number(let top1Text)? = fields["test_top1"], let top1 = Double(top1Text) else { throw fail("no number 'test_top1'") }
        var colour: [Double]?
        if case .array? = fields["colourfulness"] { colour = try numbers("colourfulness") }
        return RunAnalysis(classNames: names, confusion: confusion, testTop1: top1, colourfulness: colour,
                           pictures: (try? strings("pictures")) ?? [])
    }
}
