import Foundation

/// Everything a training run needs to continue bit for bit: one safetensors
/// file, written atomically (temporary file, fsync, rename).
///
/// Tensors:
/// - `conv1.weight`, ...: the weights, grouped (both towers' rows), native names,
///   Float32 (the same names and layout `alexnet weights` writes);
/// - `optimizer.velocity.conv1.weight`, ...: the SGD velocities, same layout;
/// - `data.mean_image` (F32 `[C, H, W]`), `data.channel_mean` (F64 `[C]`),
///   `data.covariance` (F64 `[C, C]`), `data.image_count` (I64 `[1]`): the
///   training set's statistics, when the pipeline uses them.
///
/// Metadata (`__metadata__`, strings):
/// - `format`: `alexnet-training-checkpoint`, `version`: `1`;
/// - `config`: the resolved ``TrainingConfiguration`` as JSON;
/// - `spec`: the ``ModelSpec`` as JSON;
/// - `class_names`: a JSON array of strings;
/// - `progress`: ``TrainingProgress`` as JSON (epoch, batch, step, schedule
///   state, the epoch's running sums), numbers in their shortest round-trip form;
/// - `log`: the JSON-lines log written so far;
/// - `blas_core`: the OpenBLAS core that computed it (``BLAS/core``; resuming on
///   the same core continues bit for bit, on another one only to rounding).
///
/// The seed (in `config`) keys every random number of the run, so no
/// generator state needs saving: dropout masks are keyed by the step, the
/// epoch's order and augmentation by the epoch.
public struct TrainingCheckpoint {
    /// The `format` metadata value.
    public static let formatName = "alexnet-training-checkpoint"
    /// The prefix of velocity tensors.
    public static let velocityPrefix = "optimizer.velocity."
    /// The prefix of statistics tensors.
    public static let statisticsPrefix = "data."

    /// The run's resolved settings.
    public var configuration: TrainingConfiguration
    /// The model.
    public var spec: ModelSpec
    /// The data set's class names.
    public var classNames: [String]
    /// The training set's statistics, if the pipeline uses them.
    public var statistics: DatasetStatistics?
    /// Weights by native name, grouped.
    public var weights: [(name: String, tensor: Tensor<Float>)]
    /// Velocities by native name, grouped.
    public var velocities: [(name: String, tensor: Tensor<Float>)]
    /// Where the run stands.
    public var progress: TrainingProgress
    /// The log lines written so far.
    public var log: [String]
    /// The OpenBLAS core that computed the checkpoint read from a file (nil for
    /// one built in memory, or read from a file written before the core was recorded).
    public var blasCore: String?

    /// A checkpoint from its parts; see the properties.
    public init(configuration: TrainingConfiguration, spec: ModelSpec, classNames: [String], statistics: DatasetStatistics?,
                weights: [(name: String, tensor: Tensor<Float>)], velocities: [(name: String, tensor: Tensor<Float>)],
                progress: TrainingProgress, log: [String]) {
        self.configuration = configuration
        self.spec = spec
        self.classNames = classNames
        self.statistics = statistics
        self.weights = weights
        self.velocities = velocities
        self.progress = progress
        self.log = log
    }

    /// The checkpoint of a trainer's current state.
    public init(trainer: Trainer, spec: ModelSpec, statistics: DatasetStatistics?) throws {
        self.init(configuration: trainer.configuration, spec: spec, classNames: trainer.classNames, statistics: statistics,
                  weights: try trainer.model.weights(), velocities: try trainer.model.velocities(),
                  progress: trainer.progress, log: trainer.log.lines)
    }

    // MARK: Writing

    /// Writes the checkpoint to `path` atomically: a reader sees the old file or the new one, never a mix.
    /// - Throws: ``TensorFileError`` when the file cannot be written (the old one is left as it was).
    public func write(to path: String) throws {
        var tensors = weights.map { StoredTensor(name: $0.name, tensor: $0.tensor) }
        tensors += velocities.map { StoredTensor(name: Self.velocityPrefix + $0.name, tensor: $0.tensor) }
        if let statistics {
            let c = statistics.channels
            tensors.append(StoredTensor(name: Self.statisticsPrefix + "mean_image", tensor: statistics.meanImage))
            tensors.append(StoredTensor(name: Self.statisticsPrefix + "channel_mean",
                                        tensor: try Tensor<Double>(shape: [c], values: statistics.channelMean)))
            tensors.append(StoredTensor(name: Self.statisticsPrefix + "covariance",
                                        tensor: try Tensor<Double>(shape: [c, c], values: statistics.covariance)))
            tensors.append(try StoredTensor(name: Self.statisticsPrefix + "image_count", shape: [1],
                                            integers: [Int64(statistics.imageCount)]))
        }
        let metadata = CheckpointMetadata(config: configuration.jsonString(), spec: spec.jsonString(),
                                          classNames: Self.jsonText(classNames), progress: Self.jsonText(progress),
                                          log: log.map { $0 + "\n" }.joined(), blasCore: BLAS.core.name)
        // Cannot fail: every value is a string.
        // swiftlint:disable:next force_try
        try Safetensors.write(tensors, metadata: try! StringMetadataEncoder().encode(metadata), to: path)
    }

    // MARK: Reading

    /// Whether `metadata` marks a training checkpoint (rather than plain weights).
    public static func isCheckpoint(metadata: [String: String]) -> Bool { metadata["format"] == formatName }

    /// Reads a checkpoint.
    /// - Throws: ``TensorFileError`` for an unreadable file, ``WeightsError`` for a
    ///   safetensors file that is not a training checkpoint or is damaged.
    public static func read(path: String) throws -> TrainingCheckpoint {
        let (tensors, metadata) = try Safetensors.read(path: path)
        return try decode(tensors: tensors, metadata: metadata, source: path)
    }

    /// A checkpoint from a safetensors file's tensors and metadata; `source` names it in errors.
    public static func decode(tensors: [StoredTensor], metadata: [String: String], source: String) throws -> TrainingCheckpoint {
        func fail(_ problem: String) -> WeightsError { WeightsError(file: source, problem: problem) }
        guard isCheckpoint(metadata: metadata) else {
            throw fail("not a training checkpoint (its metadata has no \"format\": \"\(formatName)\"); plain weights load with --weights")
        }
        guard metadata["version"] == "1" else { throw fail("checkpoint version \(metadata["version"] ?? "none") is not supported (expected 1)") }
        let fields: CheckpointMetadata
        do {
            fields = try StringMetadataDecoder(metadata).decode(CheckpointMetadata.self)
        } catch let failure as StringMetadataFailure {
            throw fail(failure.problem == "missing" ? "the checkpoint's metadata has no '\(failure.key)'"
                       : "metadata '\(failure.key)': \(failure.problem)")
        }
        let configuration: TrainingConfiguration
        do {
            // Checkpoints before 0.8 have no holdout_seed: they held out the last examples.
            var legacy = TrainingConfiguration()
            legacy.holdoutSeed = nil
            configuration = try TrainingConfiguration.parse(json: Array(fields.config.utf8), source: "\(source) (config)",
                                                            onto: legacy)
        } catch let error as ConfigurationError {
            throw fail(error.description)
        }
        let spec: ModelSpec
        do {
            spec = try ModelSpec.parse(json: fields.spec, source: "\(source) (spec)")
        } catch let error as ModelSpecError {
            throw fail(error.description)
        }
        let classNames = try decodeMetadata([String].self, fields.classNames, key: "class_names", source: source)
        let progress = try decodeMetadata(TrainingProgress.self, fields.progress, key: "progress", source: source)
        let log = fields.log.split(separator: "\n").map(String.init)

        var weights: [(name: String, tensor: Tensor<Float>)] = []
        var velocities: [(name: String, tensor: Tensor<Float>)] = []
        var statisticsTensors: [String: StoredTensor] = [:]
        for tensor in tensors {
            if tensor.name.hasPrefix(statisticsPrefix) {
                statisticsTensors[String(tensor.name.dropFirst(statisticsPrefix.count))] = tensor
                continue
            }
            let value: Tensor<Float>
            do { value = try tensor.floatTensor(as: Float.self) } catch let error as TensorFileError { throw fail(error.description) }
            try checkFinite(value, name: tensor.name, fail: fail)
            if tensor.name.hasPrefix(velocityPrefix) {
                velocities.append((String(tensor.name.dropFirst(velocityPrefix.count)), value))
            } else {
                weights.append((tensor.name, value))
            }
        }
        var statistics: DatasetStatistics?
        if !statisticsTensors.isEmpty {
            do {
                guard let mean = statisticsTensors["mean_image"], let channelMean = statisticsTensors["channel_mean"],
                      let covariance = statisticsTensors["covariance"], let count = statisticsTensors["image_count"] else {
                    throw fail("the checkpoint's data statistics are incomplete")
                }
                let meanImage = try mean.floatTensor(as: Float.self)
                let channelMeans = try channelMean.floatTensor(as: Double.self)
                let covarianceMatrix = try covariance.floatTensor(as: Double.self)
                try checkFinite(meanImage, name: mean.name, fail: fail)
                try checkFinite(channelMeans, name: channelMean.name, fail: fail)
                try checkFinite(covarianceMatrix, name: covariance.name, fail: fail)
                let images = try count.integers().first ?? 0
                guard images >= 1 && images <= Int64(Int32.max) else {
                    throw fail("tensor '\(count.name)': \(images) images is outside 1...\(Int32.max); the checkpoint is damaged")
                }
                statistics = try DatasetStatistics(imageCount: Int(images), meanImage: meanImage,
                                                   channelMean: channelMeans.storage, covariance: covarianceMatrix.storage)
            } catch let error as TensorFileError {
                throw fail(error.description)
            } catch let error as ConfigurationError {
                throw fail(error.description)
            }
        }
        var checkpoint = TrainingCheckpoint(configuration: configuration, spec: spec, classNames: classNames,
                                            statistics: statistics, weights: weights, velocities: velocities,
                                            progress: progress, log: log)
        checkpoint.blasCore = fields.blasCore
        return checkpoint
    }

    /// Refuses a NaN or infinity in a stored tensor, naming it and the first bad index:
    /// a damaged checkpoint must not evaluate to "100% error" or resume as if it were good.
    private static func checkFinite<T: TensorElement>(_ tensor: Tensor<T>, name: String, fail: (String) -> WeightsError) throws {
        do {
            try tensor.checkFinite(name: name)
        } catch let error as NonFiniteError {
            throw fail("tensor '\(name)' holds \(error.count) non-finite value(s), the first \(error.value) at index "
                       + "\(error.position) (flat \(error.index)); the checkpoint is damaged")
        }
    }

    // MARK: Metadata values as JSON

    /// A metadata value's JSON text, on one line. Encoding cannot fail: the
    /// values are strings and numbers.
    static func jsonText<T: Encodable>(_ value: T) -> String {
        // swiftlint:disable:next force_try
        try! StrictJSONEncoder().encode(value).compactText
    }

    /// The metadata value `key` (JSON text) as a `T`; a failure names the
    /// file, the key, the column in the value and the problem
    /// (`ck.safetensors: ck.safetensors (progress):1:10: epoch: must be a non-negative integer, got -1`).
    static func decodeMetadata<T: Decodable>(_ type: T.Type, _ text: String, key: String, source: String) throws -> T {
        let place = "\(source) (\(key))"
        do {
            return try StrictJSONDecoder(bytes: Array(text.utf8)).decode(type)
        } catch let error as JSONSyntaxError {
            throw WeightsError(file: source, problem: "\(place):\(error.line):\(error.column): invalid JSON: \(error.problem)")
        } catch let failure as JSONDecodingFailure {
            throw WeightsError(file: source, problem: "\(failure.location(source: place)): \(failure.problem)")
        }
    }
}

/// The `progress` metadata of a checkpoint, one JSON object on one line:
///
///     {"epoch": 0, "batch": 2, "step": 2, "learning_rate": 0.05, "best_error": null, "bad_epochs": 0,
///      "reductions": 0, "epoch_loss_sum": 43.66, "epoch_correct": 3, "epoch_images": 16,
///      "epoch_seconds": 0.022, "best_validation_error": null}
///
/// Every key is written and required (the optional errors as `null`), so a
/// damaged checkpoint is refused rather than resumed from a guess.
extension TrainingProgress: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case epoch, batch, step
        case learningRate = "learning_rate", bestError = "best_error", badEpochs = "bad_epochs", reductions
        case epochLossSum = "epoch_loss_sum", epochCorrect = "epoch_correct", epochImages = "epoch_images"
        case epochSeconds = "epoch_seconds", bestValidationError = "best_validation_error"
    }

    /// Reads the object: counts non-negative and at most ``InputLimits/steps``,
    /// the learning rate positive, the epoch's correct images at most its images.
    public init(from decoder: Decoder) throws {
        let c = try decoder.object(keyedBy: CodingKeys.self, expected: "expected a JSON object")
        try decoder.refuseUnknownKeys(CodingKeys.self, what: "'progress'")
        func count(_ key: CodingKeys) throws -> Int {
            let n = try c.decode(Int.self, forKey: key, missing: "the checkpoint is damaged", expected: "expected a non-negative integer")
            guard n >= 0 else { throw c.invalid(key, "must be a non-negative integer") }
            guard n <= InputLimits.steps else {
                throw c.invalid(key, "\(n) is above the limit \(InputLimits.steps); the checkpoint is damaged")
            }
            return n
        }
        func number(_ key: CodingKeys) throws -> Double? {
            try c.decode(Double?.self, forKey: key, missing: "the checkpoint is damaged")
        }
        let learningRate = try c.decode(Double.self, forKey: .learningRate, missing: "the checkpoint is damaged")
        guard learningRate > 0 else { throw c.invalid(.learningRate, "must be positive; the checkpoint is damaged") }
        self.init(learningRate: learningRate)
        epoch = try count(.epoch)
        batch = try count(.batch)
        step = try count(.step)
        schedule.bestError = try number(.bestError)
        schedule.badEpochs = try count(.badEpochs)
        schedule.reductions = try count(.reductions)
        epochLossSum = try c.decode(Double.self, forKey: .epochLossSum, missing: "the checkpoint is damaged")
        epochCorrect = try count(.epochCorrect)
        epochImages = try count(.epochImages)
        epochSeconds = try c.decode(Double.self, forKey: .epochSeconds, missing: "the checkpoint is damaged")
        bestValidationError = try number(.bestValidationError)
        guard epochCorrect <= epochImages else {
            throw c.invalid(.epochCorrect, "\(epochCorrect) exceeds epoch_images (\(epochImages)); the checkpoint is damaged")
        }
    }

    /// Writes every key in the order of ``CodingKeys``, the optional errors as `null` when unset.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(batch, forKey: .batch)
        try c.encode(step, forKey: .step)
        try c.encode(schedule.learningRate, forKey: .learningRate)
        try c.encode(schedule.bestError, forKey: .bestError)
        try c.encode(schedule.badEpochs, forKey: .badEpochs)
        try c.encode(schedule.reductions, forKey: .reductions)
        try c.encode(epochLossSum, forKey: .epochLossSum)
        try c.encode(epochCorrect, forKey: .epochCorrect)
        try c.encode(epochImages, forKey: .epochImages)
        try c.encode(epochSeconds, forKey: .epochSeconds)
        try c.encode(bestValidationError, forKey: .bestValidationError)
    }
}
