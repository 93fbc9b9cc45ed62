import Foundation

/// A trained network ready for evaluation and prediction: the grouped
/// network with its weights, the class names, and the evaluation pipeline of
/// the run that trained it (resize, mean, scale, crop).
///
/// From a training checkpoint everything comes from the file; from plain
/// weights (`.safetensors` or `.npz`, as `alexnet weights` writes them) the
/// model, class names and pipeline come from a ``TrainingConfiguration`` and
/// its data set (the statistics are computed from the training split).
public final class InferenceModel {
    /// The network, weights loaded.
    public let network: Network<Float>
    /// The resolved configuration (data path, pipeline settings).
    public let configuration: TrainingConfiguration
    /// One name per class.
    public let classNames: [String]
    /// The training set's statistics, if the pipeline uses them.
    public let statistics: DatasetStatistics?
    /// The checkpoint's progress, when loaded from a checkpoint.
    public let progress: TrainingProgress?
    /// The pool the network runs on.
    public let pool: WorkerPool

    private init(network: Network<Float>, configuration: TrainingConfiguration, classNames: [String],
                 statistics: DatasetStatistics?, progress: TrainingProgress?, threads: Int) {
        self.network = network
        self.configuration = configuration
        self.classNames = classNames
        self.statistics = statistics
        self.progress = progress
        self.pool = WorkerPool(workerCount: threads, label: "eval")
    }

    /// Loads a training checkpoint (``TrainingCheckpoint``).
    /// - Throws: ``TensorFileError``, ``WeightsError`` for unreadable or damaged files.
    public convenience init(checkpoint: TrainingCheckpoint, source: String, threads: Int) throws {
        let network = try Network<Float>(spec: checkpoint.spec, seed: checkpoint.configuration.seed)
        let weights = Dictionary(checkpoint.weights.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for (name, parameter) in network.namedParameters {
            guard let tensor = weights[name], tensor.shape == parameter.value.shape else {
                throw WeightsError(file: source, problem: "the checkpoint's weight '\(name)' is missing or mis-shaped")
            }
            parameter.value = tensor
        }
        self.init(network: network, configuration: checkpoint.configuration, classNames: checkpoint.classNames,
                  statistics: checkpoint.statistics, progress: checkpoint.progress, threads: threads)
    }

    /// Loads plain weights into the model that `configuration` resolves to on its data set.
    /// - Parameter tensors: the file's tensors (any naming and layout ``StateDict`` reads).
    /// - Throws: data, model and ``WeightsError`` errors naming what does not fit.
    public convenience init(weights tensors: [StoredTensor], source: String, configuration: TrainingConfiguration,
                            progress: (String) -> Void = { _ in }) throws {
        let data = try TrainingData.prepare(configuration, progress: progress)
        let network = try Network<Float>(spec: data.spec, seed: configuration.seed)
        try StateDict.load(tensors, into: network, source: source)
        self.init(network: network, configuration: data.configuration, classNames: data.classNames,
                  statistics: data.statistics, progress: nil, threads: configuration.threads)
    }

    /// Class scores `[N, classes]` in inference mode.
    public func scores(_ images: Tensor<Float>) throws -> Tensor<Float> {
        try network.forward(images, context: PassContext(pool: pool, mode: .inference, step: 0))
    }

    /// The data the model was trained on, with its pipelines and loaders, at
    /// `dataPath` (default: where it was trained), using the model's own spec
    /// and statistics.
    public func data(at dataPath: String? = nil, progress: (String) -> Void = { _ in }) throws -> TrainingData {
        var config = configuration
        if let dataPath { config.data = dataPath }
        return try TrainingData.prepare(config, statistics: statistics, spec: network.spec, progress: progress)
    }

    /// The network's input for one image: converted to the model's channels
    /// (RGB to grey by ITU-R BT.601 luma `0.299 R + 0.587 G + 0.114 B`, grey
    /// to RGB by copying), its shorter side scaled to the run's resize (or the
    /// input's height) keeping the centre square, then the evaluation
    /// pipeline (mean, scale, centre crop).
    /// - Parameter image: `[C, H, W]` in 0...255, as `JPEG.decodePlanar` gives it.
    /// - Returns: `[C, H, W]`, the spec's input shape.
    /// - Throws: ``ShapeError`` for an image that is not `[1 or 3, H, W]`.
    public func input(for image: Tensor<Float>) throws -> Tensor<Float> {
        let (channels, height, width) = (network.spec.inputShape[0], network.spec.inputShape[1], network.spec.inputShape[2])
        guard image.shape.rank == 3, image.shape[0] == 1 || image.shape[0] == 3 else {
            throw ShapeError(operation: "InferenceModel.input", argument: "image", expected: "[1 or 3, H, W]", actual: image.shape)
        }
        var planes = image
        if image.shape[0] == 3 && channels == 1 {
            let plane = image.shape[1] * image.shape[2]
            var grey = Tensor<Float>(shape: [1, image.shape[1], image.shape[2]])
            image.withUnsafeBufferPointer { rgb in
                grey.withUnsafeMutableBufferPointer { out in
                    for p in 0..<plane {
                        let (r, g, b) = (rgb[p], rgb[plane + p], rgb[2 * plane + p])
                        out[p] = 0.299 * r + 0.587 * g + 0.114 * b
                    }
                }
            }
            planes = grey
        }
        let side = configuration.resize ?? height
        let crop: ImagePipeline.CropMode = side == height && side == width ? .none : .centre(height: height, width: width)
        let pipeline = ImagePipeline(resizeShorterSide: side, greyToRGB: channels == 3, meanSubtraction: configuration.mean, crop: crop,
                                     scale: Float(configuration.scale ?? 1))
        return try pipeline.apply(planes, index: 0, epoch: 0, seed: configuration.seed, statistics: statistics)
    }

    /// The `k` most probable classes of each image, best first, ties to the lower class index.
    /// - Parameter images: `[N, C, H, W]` network inputs (``input(for:)``).
    /// - Returns: per image, `(class index, probability)` pairs.
    public func topClasses(_ images: Tensor<Float>, k: Int) throws -> [[(index: Int, probability: Double)]] {
        let scores = try self.scores(images)
        let classes = scores.shape[1]
        return (0..<scores.shape[0]).map { n in
            let row = (0..<classes).map { Double(scores.storage[n * classes + $0]) }
            let largest = row.max() ?? 0
            let exps = row.map { Foundation.exp($0 - largest) }
            let total = exps.reduce(0, +)
            let ranked = (0..<classes).sorted { a, b in row[a] > row[b] || (row[a] == row[b] && a < b) }
            return ranked.prefix(k).map { ($0, exps[$0] / total) }
        }
    }
}
