import Foundation

extension BatchLoader: BatchSource {
    /// The data set's example count.
    public var exampleCount: Int { dataset.count }

    /// ``makeBatch(epoch:index:)``.
    public func batch(epoch: Int, index: Int) throws -> Batch {
        try makeBatch(epoch: epoch, index: index)
    }
}

/// Some examples of another data set, in the order given: example `i` is the
/// base's example `indices[i]` (a training subset, a held-out validation part).
public final class SubsetDataset: ImageDataset {
    /// The data set the examples come from.
    public let base: any ImageDataset
    /// The base's indices of this subset's examples.
    public let indices: [Int]
    /// The base's format.
    public var format: String { base.format }
    /// The base's location and the part taken.
    public let location: String
    /// The base's class names.
    public var classNames: [String] { base.classNames }
    /// The labels of the chosen examples.
    public let labels: [Int]
    /// The base's stored size.
    public var storedSize: ImageSize? { base.storedSize }
    /// Examples in the subset.
    public var count: Int { indices.count }
    /// As the base does.
    public var skipsBadFiles: Bool { base.skipsBadFiles }

    /// - Parameters:
    ///   - indices: indices into `base`, each in `0..<base.count`.
    ///   - description: what part this is, for messages (`"examples 0..<55000"`).
    public init(base: any ImageDataset, indices: [Int], description: String) {
        precondition(indices.allSatisfy { $0 >= 0 && $0 < base.count }, "subset index outside the data set")
        self.base = base
        self.indices = indices
        self.location = "\(base.location) (\(description))"
        let all = base.labels
        self.labels = indices.map { all[$0] }
    }

    /// The base's example `indices[index]`.
    public func image(at index: Int) throws -> Tensor<Float> { try base.image(at: indices[index]) }

    /// The base's name for the example.
    public func exampleName(at index: Int) -> String { base.exampleName(at: indices[index]) }
}

/// The data of a training run, resolved from a ``TrainingConfiguration``: the
/// data sets, the statistics, the pipelines and the batch loaders, and the
/// configuration with every data-dependent default filled in.
///
/// Defaults (Docs/training.md): the CIFAR-sized shipped nets take the data's
/// image size as their input; classes are the data's; a grey image feeds a
/// 3-channel net through `greyToRGB`; images of the input's size are cropped
/// at random from the image padded by `H / 8` (Fashion-MNIST 3, CIFAR 4),
/// larger ones at random inside (padding 0); evaluation takes the whole image
/// or its centre crop; the scale is `1 / std` of the training pixels.
public struct TrainingData {
    /// The configuration with ``TrainingConfiguration/towers``, `classes`,
    /// `input`, `scale`, `cropPadding` and `resize` filled in.
    public let configuration: TrainingConfiguration
    /// The network's spec.
    public let spec: ModelSpec
    /// The data set's class names.
    public let classNames: [String]
    /// The training examples (after the holdout and the limit).
    public let trainSet: any ImageDataset
    /// The validation examples: the held-out part of the training split, or the test split.
    public let validationSet: any ImageDataset
    /// Which split ``validationSet`` is: `holdout` (part of the training split) or `test`.
    public var validationSplit: String { configuration.holdout == 0 ? "test" : "holdout" }
    /// The test split.
    public let testSet: any ImageDataset
    /// Mean and covariance of the training set (nil when nothing needs them).
    public let statistics: DatasetStatistics?
    /// Random crop, flip, PCA colour, mean, scale.
    public let trainingPipeline: ImagePipeline
    /// Centre crop (if the images are larger than the input), mean, scale.
    public let evaluationPipeline: ImagePipeline
    /// Ten-crop evaluation: the evaluation pipeline without its crop, then ``tenCrop``.
    public let tenCropPipeline: ImagePipeline
    /// How ten-crop evaluation cuts the images.
    public let tenCrop: TenCropGeometry
    /// Shuffled, augmented training batches.
    public let train: BatchLoader
    /// Validation batches in stored order.
    public let validation: BatchLoader
    /// Test batches in stored order.
    public let test: BatchLoader

    /// The shipped models whose input follows the data (the CIFAR-sized nets).
    public static let dataSizedModels: Set<String> = ["cifar-towers", "layers-80sec", "layers-18pct"]

    /// Refuses, before the statistics pass, a model and batch that cannot fit
    /// in memory: weights and gradients (``Network``'s check) and a batch's layer
    /// outputs with their gradients, each at most half of this machine's memory.
    /// - Throws: ``ConfigurationError`` naming the model or the batch.
    static func checkMemory(spec: ModelSpec, batch: Int) throws {
        try Network<Float>.checkMemory(spec)
        let summary = try ModelSummary(spec: spec, elementSize: 4)
        let bytes = InputLimits.product([summary.activationBytes + summary.inputBytes, batch, 2])
        do {
            try InputLimits.checkAllocation(bytes: bytes, what: "batch")
        } catch let error as ConfigurationError {
            throw ConfigurationError(component: "batch", problem: "\(batch) images of model \(spec.name) (outputs and gradients of every layer) "
                                     + error.problem + "; use a smaller batch")
        }
    }

    /// Opens the data sets, resolves the model and the defaults, and builds the loaders.
    /// - Parameters:
    ///   - statistics: statistics to use (a resumed run's, from its checkpoint); nil computes them when needed.
    ///   - spec: the model to use (a resumed run's, from its checkpoint); nil resolves ``TrainingConfiguration/model``.
    ///   - progress: told about long preparations ("computing statistics over 60000 images").
    /// - Throws: ``DataError`` for unreadable data, ``ModelSpecError`` for a bad model,
    ///   ``ConfigurationError`` for settings that do not fit the data.
    public static func prepare(_ configuration: TrainingConfiguration, statistics given: DatasetStatistics? = nil,
                               spec givenSpec: ModelSpec? = nil, progress: (String) -> Void = { _ in }) throws -> TrainingData {
        try configuration.validate()
        var config = configuration
        let fullTrain = try Datasets.open(path: config.data, split: .train, format: config.format)
        let testSet = try Datasets.open(path: config.data, split: .test, format: config.format)
        let classNames = fullTrain.classNames

        // Holdout and limit.
        var trainSet: any ImageDataset = fullTrain
        var validationSet: any ImageDataset = testSet
        let holdout = config.holdout ?? TrainingConfiguration.defaultHoldout(trainingCount: fullTrain.count)
        config.holdout = holdout
        if holdout > 0 {
            guard holdout < fullTrain.count else {
                throw ConfigurationError(component: "holdout", problem: "\(holdout) examples held out of \(fullTrain.count) leaves none to train on")
            }
            let cut = fullTrain.count - holdout
            if let seed = config.holdoutSeed {
                // Sorted, so both parts read the stored files in their order.
                let order = AugmentationRandom.holdoutPermutation(count: fullTrain.count, seed: seed)
                trainSet = SubsetDataset(base: fullTrain, indices: order[holdout...].sorted(),
                                         description: "\(cut) examples not held out (holdout seed \(seed))")
                validationSet = SubsetDataset(base: fullTrain, indices: order[..<holdout].sorted(),
                                              description: "\(holdout) held-out examples (holdout seed \(seed))")
            } else {
                trainSet = SubsetDataset(base: fullTrain, indices: Array(0..<cut), description: "examples 0..<\(cut)")
                validationSet = SubsetDataset(base: fullTrain, indices: Array(cut..<fullTrain.count),
                                              description: "held-out examples \(cut)..<\(fullTrain.count)")
            }
        }
        if let limit = config.trainLimit, limit < trainSet.count {
            trainSet = SubsetDataset(base: trainSet, indices: Array(0..<limit), description: "first \(limit) examples")
        }

        // The model.
        var spec: ModelSpec
        if let givenSpec {
            spec = givenSpec
        } else {
            let stored = fullTrain.storedSize
            let input = config.input.map { Shape($0) }
                ?? (dataSizedModels.contains(config.model) ? stored.map { $0.shape } : nil)
            let classes = config.classes ?? classNames.count
            if config.model.hasSuffix(".json") || config.model.contains("/") {
                spec = try ModelSpec.load(path: config.model).adapted(classes: classes, towers: config.towers, inputShape: input)
            } else {
                spec = try ModelZoo.spec(named: config.model, classes: classes, towers: config.towers, inputShape: input)
            }
            if let changes = config.modelChanges { spec = try changes.apply(to: spec) }
        }
        guard spec.classes == classNames.count else {
            throw ConfigurationError(component: "classes", problem: "the model has \(spec.classes) classes, the data set \(classNames.count) "
                                     + "(\(config.data))")
        }
        try checkMemory(spec: spec, batch: config.batch)
        config.towers = spec.towers
        config.classes = spec.classes
        config.input = spec.inputShape.dims
        let (channels, height, width) = (spec.inputShape[0], spec.inputShape[1], spec.inputShape[2])

        // Preparation: resize for data sets of varying size, grey to RGB.
        if config.resize == nil {
            config.resize = PipelineDefaults.resize(storedSize: fullTrain.storedSize, inputSide: height)
        }
        var prepare = ImagePipeline(resizeShorterSide: config.resize)
        if let stored = fullTrain.storedSize, stored.channels == 1 && channels == 3 { prepare.greyToRGB = true }
        let prepared = fullTrain.storedSize.map { prepare.preparedSize(for: $0) }
            ?? ImageSize(channels: channels, height: config.resize!, width: config.resize!)
        if let stored = fullTrain.storedSize, prepared.channels != channels {
            throw ConfigurationError(component: "input", problem: "the model takes \(channels) channel(s), the images have \(stored.channels)")
        }
        // Crops.
        let padding = config.cropPadding
            ?? PipelineDefaults.cropPadding(prepared: (prepared.height, prepared.width), input: (height, width))
        guard prepared.height + 2 * padding >= height, prepared.width + 2 * padding >= width else {
            throw ConfigurationError(component: "input", problem: "the images are \(prepared.height)x\(prepared.width) after preparation, "
                                     + "smaller than the model's input \(height)x\(width) even with crop padding \(padding): "
                                     + "set --resize or --crop-padding")
        }
        config.cropPadding = padding
        let evaluationCrop: ImagePipeline.CropMode = prepared.height == height && prepared.width == width
            ? .none : .centre(height: height, width: width)
        guard prepared.height >= height && prepared.width >= width || evaluationCrop == .none else {
            throw ConfigurationError(component: "input", problem: "the images are \(prepared.height)x\(prepared.width) after preparation, "
                                     + "smaller than the model's input \(height)x\(width): evaluation needs whole images; set --resize")
        }

        // Statistics and scale.
        var statistics = given
        if statistics == nil && (config.mean != .none || config.pca > 0 || config.scale == nil) {
            let count = min(trainSet.count, config.statisticsLimit ?? trainSet.count)
            progress("computing the mean and covariance of \(count) training images")
            statistics = try DatasetStatistics.compute(dataset: trainSet, pipeline: prepare, threads: config.threads,
                                                       limit: config.statisticsLimit).statistics
        }
        if config.scale == nil, let statistics {
            let c = statistics.channels
            let variance = (0..<c).reduce(0.0) { $0 + statistics.covariance[$1 * c + $1] } / Double(c)
            config.scale = variance > 0 ? 1 / variance.squareRoot() : 1
        }
        let scale = Float(config.scale ?? 1)

        var training = prepare
        training.meanSubtraction = config.mean
        training.crop = .random(height: height, width: width, padding: padding)
        training.horizontalFlip = config.flip
        training.pcaColour = config.pca > 0 ? PCAColour(standardDeviation: config.pca) : nil
        training.scale = scale
        var evaluation = prepare
        evaluation.meanSubtraction = config.mean
        evaluation.crop = evaluationCrop
        evaluation.scale = scale
        var tenCropPipeline = evaluation
        tenCropPipeline.crop = .none

        func loader(_ dataset: any ImageDataset, _ pipeline: ImagePipeline, shuffle: Bool) throws -> BatchLoader {
            try BatchLoader(dataset: dataset, pipeline: pipeline, statistics: statistics,
                            options: BatchOptions(batchSize: config.batch, shuffle: shuffle, dropLast: false, prefetch: 0,
                                                  threads: 1, seed: config.seed))
        }
        return TrainingData(configuration: config, spec: spec, classNames: classNames, trainSet: trainSet,
                            validationSet: validationSet, testSet: testSet, statistics: statistics,
                            trainingPipeline: training, evaluationPipeline: evaluation, tenCropPipeline: tenCropPipeline,
                            tenCrop: TenCropGeometry(padding: padding, height: height, width: width),
                            train: try loader(trainSet, training, shuffle: true),
                            validation: try loader(validationSet, evaluation, shuffle: false),
                            test: try loader(testSet, evaluation, shuffle: false))
    }

    /// A loader of `dataset` through ``tenCropPipeline`` (whole images, for
    /// ``Evaluator/evaluateTenCrop(source:classes:geometry:epoch:progress:scores:)``),
    /// a tenth of the run's batch size per batch (each image becomes ten network inputs).
    public func tenCropLoader(_ dataset: any ImageDataset) throws -> BatchLoader {
        try BatchLoader(dataset: dataset, pipeline: tenCropPipeline, statistics: statistics,
                        options: BatchOptions(batchSize: max(1, configuration.batch / 10), shuffle: false, dropLast: false, prefetch: 0,
                                              threads: 1, seed: configuration.seed))
    }
}
