import Foundation

/// A training run put together: the data (``TrainingData``), the network and
/// its optimisers (``TrainingModel``), and the ``Trainer`` with checkpoints
/// wired in. `alexnet train` is a thin layer over this.
///
/// ```swift
/// var config = TrainingConfiguration()
/// config.model = "layers-80sec"; config.epochs = 1; config.checkpoint = "ckpt"
/// let run = try TrainingRun(configuration: config)
/// try run.trainer.run()
/// let test = try run.evaluate(run.data.test)
/// print(test.top1Error)
/// // later: continue exactly where it stopped
/// let resumed = try TrainingRun(resuming: "ckpt/last.safetensors")
/// ```
public final class TrainingRun {
    /// The data, with the resolved configuration.
    public let data: TrainingData
    /// The network and optimisers.
    public let model: TrainingModel
    /// The trainer (its configuration is ``TrainingData/configuration``).
    public let trainer: Trainer

    /// A new run: weights initialised from the seed, velocities zero, log empty
    /// (the log file, if any, is truncated).
    /// - Parameter progress: told about long preparations.
    /// - Throws: configuration, data and model errors, each naming the setting or file.
    public convenience init(configuration: TrainingConfiguration, progress: (String) -> Void = { _ in }) throws {
        let data = try TrainingData.prepare(configuration, progress: progress)
        try self.init(data: data, checkpoint: nil)
    }

    /// Continues the run saved in the checkpoint at `path`, exactly as it would
    /// have gone on: the checkpoint's configuration without its `maxSteps` and
    /// `timeLimit` (they stopped the earlier process), with `change` applied to
    /// it (only ``TrainingConfiguration/resumableKeys`` may change), its
    /// statistics, weights, velocities, schedule and position; the log file is
    /// rewritten to the checkpoint's lines. `progress` hears a note when the
    /// checkpoint was computed on another BLAS core than this process runs.
    /// - Throws: ``ConfigurationError`` when `change` alters a key that would
    ///   change the results; checkpoint, data and model errors.
    public convenience init(resuming path: String, change: (inout TrainingConfiguration) -> Void = { _ in },
                            progress: (String) -> Void = { _ in }) throws {
        let checkpoint = try TrainingCheckpoint.read(path: path)
        if let core = checkpoint.blasCore, core != BLAS.core.name {
            progress("note: the checkpoint was computed with OpenBLAS core \(core), this process runs "
                     + "\(BLAS.core.name): the run continues, equal to an uninterrupted one only to rounding")
        }
        var configuration = checkpoint.configuration
        configuration.maxSteps = nil
        configuration.timeLimit = nil
        change(&configuration)
        let changed = configuration.differences(from: checkpoint.configuration).filter { !TrainingConfiguration.resumableKeys.contains($0) }
        if !changed.isEmpty {
            throw ConfigurationError(component: path, problem: "a resumed run keeps its settings; cannot change "
                                     + changed.joined(separator: ", ") + " (only "
                                     + TrainingConfiguration.resumableKeys.sorted().joined(separator: ", ") + " may change)")
        }
        let data = try TrainingData.prepare(configuration, statistics: checkpoint.statistics, spec: checkpoint.spec,
                                            progress: progress)
        guard data.classNames.count == checkpoint.classNames.count else {
            throw ConfigurationError(component: path, problem: "the checkpoint has \(checkpoint.classNames.count) classes, "
                                     + "the data set \(configuration.data) has \(data.classNames.count)")
        }
        try self.init(data: data, checkpoint: (path, checkpoint))
    }

    private init(data: TrainingData, checkpoint: (path: String, value: TrainingCheckpoint)?) throws {
        let config = data.configuration
        let network = try Network<Float>(spec: data.spec, seed: config.seed, initialisation: try config.parsedInitialisation())
        let form = try config.parsedSGDForm()
        let model = try TrainingModel(network: network, twoTowers: data.spec.towers == 2, threads: config.threads) {
            SGD<Float>(learningRate: config.lr, momentum: config.momentum, weightDecay: config.weightDecay, form: form)
        }
        if let checkpoint {
            try model.restore(weights: Dictionary(checkpoint.value.weights.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a }),
                              velocities: Dictionary(checkpoint.value.velocities.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a }),
                              source: checkpoint.path)
        }
        if let directory = config.checkpoint {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw ConfigurationError(component: "checkpoint", problem: "cannot create the directory \(directory): \(error.localizedDescription)")
            }
        }
        let log = try TrainingLog(path: config.log, lines: checkpoint?.value.log ?? [])
        let trainer = try Trainer(configuration: config, model: model, train: data.train, validation: data.validation,
                                  classNames: data.classNames, progress: checkpoint?.value.progress, log: log,
                                  resumedFrom: checkpoint.map { ($0.path, $0.value.progress.step) })
        let spec = data.spec, statistics = data.statistics
        trainer.checkpointWriter = { trainer, path in
            try TrainingCheckpoint(trainer: trainer, spec: spec, statistics: statistics).write(to: path)
        }
        self.data = data
        self.model = model
        self.trainer = trainer
    }

    /// One-crop evaluation of the current weights over a loader (``TrainingData/test``, say).
    public func evaluate(_ source: BatchSource, progress: (Int) -> Void = { _ in }) throws -> EvaluationResult {
        try Evaluator.evaluate(source: source, classes: data.classNames.count, progress: progress) { try model.scores($0) }
    }

    /// Ten-crop evaluation of the current weights over a data set (``TrainingData/testSet``, say).
    public func evaluateTenCrop(_ dataset: any ImageDataset, progress: (Int) -> Void = { _ in }) throws -> EvaluationResult {
        try Evaluator.evaluateTenCrop(source: try data.tenCropLoader(dataset), classes: data.classNames.count,
                                      geometry: data.tenCrop, progress: progress) { try model.scores($0) }
    }
}
