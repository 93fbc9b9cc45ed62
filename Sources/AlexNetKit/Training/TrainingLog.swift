import Foundation

/// What one epoch did: one line of the JSON-lines log.
///
/// ```json
/// {"event": "epoch", "epoch": 1, "step": 469, "lr": 0.01, "train_loss": 0.61, "train_error": 0.227,
///  "val_loss": 0.41, "val_top1": 0.151, "val_top5": 0.003, "val_split": "holdout",
///  "images_per_second": 812.4, "seconds": 79.2}
/// ```
/// `val_split` says which examples validated: `holdout` (held out of the
/// training split, the default) or `test` (`holdout` 0).
/// Epochs count from 1 in the log; `step` is the number of SGD steps taken
/// so far in the whole run. Training figures average over the epoch's batches
/// as trained (augmentation and dropout on); validation figures are errors
/// (fractions, not percentages). Everything but `images_per_second` and
/// `seconds` is the same, bit for bit in its decimal form, in a resumed run.
public struct EpochRecord: Equatable, Sendable {
    /// The epoch, from 1.
    public var epoch: Int
    /// SGD steps taken in the whole run at the end of the epoch.
    public var step: Int
    /// The learning rate the epoch trained with.
    public var learningRate: Double
    /// Mean training loss over the epoch's images.
    public var trainLoss: Double
    /// Training top-1 error over the epoch's images.
    public var trainError: Double
    /// Validation loss, top-1 and top-5 error (nil without a validation set).
    public var validationLoss: Double?
    /// Validation top-1 error.
    public var validationTop1: Double?
    /// Validation top-5 error.
    public var validationTop5: Double?
    /// Which split validated: `holdout` (held out of the training split) or `test`; nil: not said.
    public var validationSplit: String?
    /// Training images per second during the epoch (timing: differs between runs).
    public var imagesPerSecond: Double
    /// Wall-clock seconds of the epoch, training and validation (timing: differs between runs).
    public var seconds: Double
    /// Wall-clock seconds of the epoch's training steps alone (timing); nil in logs before 0.8.
    public var trainSeconds: Double?

    /// The record as one line of JSON (no trailing newline).
    public func jsonLine() -> String { TrainingLog.jsonLine(self) }
}

/// The running training figures part way through an epoch: a `steps` line of
/// the log, written every ``TrainingConfiguration/logEvery`` steps and at the
/// epoch's last batch.
///
/// ```json
/// {"event": "steps", "epoch": 1, "batch": 50, "batches": 430, "step": 50, "epoch_images": 6400,
///  "epoch_correct": 4101, "epoch_loss_sum": 4312.5, "train_seconds": 11.2}
/// ```
/// The counts are the epoch's so far (as a checkpoint stores them), so the
/// figures of the steps between two lines are their differences, and a resumed
/// run writes the same lines (all but `train_seconds`).
public struct StepsRecord: Equatable, Sendable {
    /// The epoch, from 1.
    public var epoch: Int
    /// Batches of the epoch done.
    public var batch: Int
    /// Batches in the epoch.
    public var batches: Int
    /// SGD steps in the whole run.
    public var step: Int
    /// The epoch's trained images so far.
    public var epochImages: Int
    /// Of those, the ones whose label was the top-1 prediction.
    public var epochCorrect: Int
    /// The sum of their losses.
    public var epochLossSum: Double
    /// Seconds of training in the epoch so far (timing: differs between runs).
    public var trainSeconds: Double

    /// The record as one line of JSON (no trailing newline).
    public func jsonLine() -> String { TrainingLog.jsonLine(self) }
}

/// The log's last line, written by `alexnet train` after the test
/// evaluation: why training stopped, where, and the test figures.
///
/// ```json
/// {"event": "end", "reason": "epochs", "epoch": 10, "step": 4690, "test_loss": 0.2515, "test_top1": 0.0911,
///  "test_top5": 0.0009, "test_ten_crop_loss": 0.25, "test_ten_crop_top1": 0.0917, "test_ten_crop_top5": 0.0008}
/// ```
/// The `test_ten_crop_*` keys are there only with `--ten-crop`; a figure
/// that is not a number (no test images) is `null`.
public struct EndRecord: Equatable, Sendable {
    /// Why training stopped: `epochs`, `max-steps` or `time-limit`.
    public var reason: StopReason
    /// Epochs completed.
    public var epoch: Int
    /// SGD steps taken in the whole run.
    public var step: Int
    /// The test split with one (centre) crop.
    public var test: Figures
    /// The test split with ten crops, or nil when not evaluated.
    public var tenCrop: Figures?

    /// Loss and errors of one test evaluation (errors are fractions).
    public struct Figures: Equatable, Sendable {
        /// Mean loss per image.
        public var loss: Double
        /// Top-1 error.
        public var top1: Double
        /// Top-5 error.
        public var top5: Double

        /// Creates the figures; see the properties.
        public init(loss: Double, top1: Double, top5: Double) {
            self.loss = loss
            self.top1 = top1
            self.top5 = top5
        }

        /// The figures of an evaluation.
        public init(_ result: EvaluationResult) {
            self.init(loss: result.loss, top1: result.top1Error, top5: result.top5Error)
        }
    }

    /// Creates the record; see the properties.
    public init(reason: StopReason, epoch: Int, step: Int, test: Figures, tenCrop: Figures? = nil) {
        self.reason = reason
        self.epoch = epoch
        self.step = step
        self.test = test
        self.tenCrop = tenCrop
    }

    /// The record as one line of JSON (no trailing newline).
    public func jsonLine() -> String { TrainingLog.jsonLine(self) }
}

/// The JSON-lines training log: the lines written so far, kept in memory (a
/// checkpoint stores them) and, with a path, appended to a file as they come.
public final class TrainingLog {
    /// The file, or nil to keep the log in memory only.
    public let path: String?
    /// Every line so far, without newlines.
    public private(set) var lines: [String]

    /// A log holding `lines`; with a path, the file is rewritten to hold exactly
    /// them (atomically): empty for a new run, the checkpoint's lines for a
    /// resumed one, so lines written after that checkpoint are dropped.
    /// - Throws: ``TensorFileError`` when the file cannot be written.
    public init(path: String?, lines: [String] = []) throws {
        self.path = path
        self.lines = lines
        if let path {
            try TensorFileIO.writeAtomically(Array(lines.map { $0 + "\n" }.joined().utf8), to: path)
        }
    }

    /// Appends a line (and writes it to the file).
    /// - Throws: ``TensorFileError`` when the file cannot be written.
    public func append(_ line: String) throws {
        lines.append(line)
        guard let path else { return }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw TensorFileError(file: path, problem: "cannot open the log for appending")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((line + "\n").utf8))
        } catch {
            throw TensorFileError(file: path, problem: "cannot append to the log: \(error)")
        }
    }

    /// A record as one line of JSON. Encoding cannot fail: the members are numbers and strings.
    static func jsonLine<T: Encodable>(_ record: T) -> String {
        // swiftlint:disable:next force_try
        try! StrictJSONEncoder().encode(record).compactText
    }
}

// MARK: - Codable

/// Timings are written rounded (a tenth of an image per second, a
/// millisecond), which reading gives back unchanged.
private func rounded(_ x: Double, _ scale: Double) -> Double { (x * scale).rounded() / scale }

extension EpochRecord: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case event, epoch, step, lr
        case trainLoss = "train_loss", trainError = "train_error"
        case validationLoss = "val_loss", validationTop1 = "val_top1", validationTop5 = "val_top5", validationSplit = "val_split"
        case imagesPerSecond = "images_per_second", seconds
        case trainSeconds = "train_seconds"
    }

    /// Reads an `epoch` line, every key of ``jsonLine()`` (`val_split` and `train_seconds` may be absent, as in logs before 0.8).
    public init(from decoder: Decoder) throws {
        let c = try decoder.logLine(keyedBy: CodingKeys.self, event: "epoch")
        func number(_ key: CodingKeys) throws -> Double { try c.decode(Double.self, forKey: key) }
        func optional(_ key: CodingKeys) throws -> Double? { try c.decode(Double?.self, forKey: key) }
        self.init(epoch: try c.decode(Int.self, forKey: .epoch), step: try c.decode(Int.self, forKey: .step),
                  learningRate: try number(.lr), trainLoss: try number(.trainLoss), trainError: try number(.trainError),
                  validationLoss: try optional(.validationLoss), validationTop1: try optional(.validationTop1),
                  validationTop5: try optional(.validationTop5), validationSplit: try c.decodeIfPresent(String.self, forKey: .validationSplit),
                  imagesPerSecond: try number(.imagesPerSecond), seconds: try number(.seconds),
                  trainSeconds: try c.decodeIfPresent(Double.self, forKey: .trainSeconds))
    }

    /// Writes the line's keys in the documented order: the validation figures
    /// as `null` without validation, `val_split` and `train_seconds` only when known.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.event, "epoch"), (.epoch, epoch), (.step, step), (.lr, learningRate), (.trainLoss, trainLoss),
                      (.trainError, trainError), (.validationLoss, validationLoss), (.validationTop1, validationTop1),
                      (.validationTop5, validationTop5)])
        try c.encodeIfPresent(validationSplit, forKey: .validationSplit)
        try c.encode([(.imagesPerSecond, rounded(imagesPerSecond, 10)), (.seconds, rounded(seconds, 1000))])
        try c.encodeIfPresent(trainSeconds.map { rounded($0, 1000) }, forKey: .trainSeconds)
    }
}

extension StepsRecord: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case event, epoch, batch, batches, step
        case epochImages = "epoch_images", epochCorrect = "epoch_correct", epochLossSum = "epoch_loss_sum"
        case trainSeconds = "train_seconds"
    }

    /// Reads a `steps` line; every key is required.
    public init(from decoder: Decoder) throws {
        let c = try decoder.logLine(keyedBy: CodingKeys.self, event: "steps")
        func count(_ key: CodingKeys) throws -> Int { try c.decode(Int.self, forKey: key) }
        self.init(epoch: try count(.epoch), batch: try count(.batch), batches: try count(.batches), step: try count(.step),
                  epochImages: try count(.epochImages), epochCorrect: try count(.epochCorrect),
                  epochLossSum: try c.decode(Double.self, forKey: .epochLossSum),
                  trainSeconds: try c.decode(Double.self, forKey: .trainSeconds))
    }

    /// Writes the line's keys in the documented order.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.event, "steps"), (.epoch, epoch), (.batch, batch), (.batches, batches), (.step, step),
                      (.epochImages, epochImages), (.epochCorrect, epochCorrect), (.epochLossSum, epochLossSum),
                      (.trainSeconds, rounded(trainSeconds, 1000))])
    }
}

extension EndRecord: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case event, reason, epoch, step
        case testLoss = "test_loss", testTop1 = "test_top1", testTop5 = "test_top5"
        case tenCropLoss = "test_ten_crop_loss", tenCropTop1 = "test_ten_crop_top1", tenCropTop5 = "test_ten_crop_top5"
    }

    /// Reads an `end` line: the one-crop figures are required (`null` reads as NaN,
    /// as it was written), the ten-crop ones come all three or not at all.
    public init(from decoder: Decoder) throws {
        let c = try decoder.logLine(keyedBy: CodingKeys.self, event: "end")
        guard let reason = StopReason(rawValue: try c.decode(String.self, forKey: .reason)) else {
            throw c.invalid(.reason, "expected \"epochs\", \"max-steps\" or \"time-limit\"")
        }
        func figure(_ key: CodingKeys) throws -> Double { try c.decode(Double?.self, forKey: key) ?? .nan }
        var tenCrop: Figures?
        if c.contains(.tenCropLoss) || c.contains(.tenCropTop1) || c.contains(.tenCropTop5) {
            tenCrop = Figures(loss: try figure(.tenCropLoss), top1: try figure(.tenCropTop1), top5: try figure(.tenCropTop5))
        }
        self.init(reason: reason, epoch: try c.decode(Int.self, forKey: .epoch), step: try c.decode(Int.self, forKey: .step),
                  test: Figures(loss: try figure(.testLoss), top1: try figure(.testTop1), top5: try figure(.testTop5)),
                  tenCrop: tenCrop)
    }

    /// Writes the line's keys in the documented order; a NaN figure (no test images) as `null`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.event, "end"), (.reason, reason.rawValue), (.epoch, epoch), (.step, step),
                      (.testLoss, test.loss), (.testTop1, test.top1), (.testTop5, test.top5)])
        if let tenCrop {
            try c.encode([(.tenCropLoss, tenCrop.loss), (.tenCropTop1, tenCrop.top1), (.tenCropTop5, tenCrop.top5)])
        }
    }
}

extension Decoder {
    /// A log line's object, whose `event` must be `event`; unknown keys are refused.
    fileprivate func logLine<Key: CodingKey & CaseIterable>(keyedBy keys: Key.Type, event: String) throws -> KeyedDecodingContainer<Key> {
        let c = try object(keyedBy: keys, expected: "expected a JSON object (a log line)")
        try refuseUnknownKeys(keys, what: "\(event == "epoch" ? "an" : "a") \(event) line")
        let key = Key(stringValue: "event")!
        guard try c.decode(String.self, forKey: key, missing: "the line's kind") == event else {
            throw c.invalid(key, "expected \"\(event)\"")
        }
        return c
    }
}
