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

    /// A new run: weights initialised from the seed, velocities zero, log empty.
    /// - Parameters:
    ///   - replacingOutputs: allow an existing log file to be emptied and another
    ///     run's checkpoints in the checkpoint directory to be replaced (`--force`);
    ///     without it the run refuses them before any work is done.
    ///   - progress: told about long preparations.
    /// - Throws: configuration, data and model errors, each naming the setting or file.
    public convenience init(configuration: TrainingConfiguration, replacingOutputs: Bool = false,
                            progress: (String) -> Void = { _ in }) throws {
        try Self.checkOutputs(configuration, replacing: replacingOutputs, resumedFrom: nil)
        // Read the starting weights before the data's statistics pass: a bad file fails at once.
        let weights = try configuration.weights.map { try StateDict.read(path: $0) }
        let data = try TrainingData.prepare(configuration, progress: progress)
        try self.init(data: data, checkpoint: nil, weights: weights)
    }

    private convenience init(data: TrainingData, checkpoint: (path: String, value: TrainingCheckpoint)?) throws {
        try self.init(data: data, checkpoint: checkpoint, weights: nil)
    }

    /// Continues the run saved in the checkpoint at `path`, exactly as it would
    /// have gone on: the checkpoint's configuration without its `maxSteps` and
    /// `timeLimit` (they stopped the earlier process), with `change` applied to
    /// it (only ``TrainingConfiguration/resumableKeys`` may change), its
    /// statistics, weights, velocities, schedule and position; the log file is
    /// rewritten to the checkpoint's lines. `progress` hears a note when the
    /// checkpoint was computed on another BLAS core than this process runs.
    /// The log file may be this run's own (its lines begin with the
    /// checkpoint's) and the checkpoint directory the resumed checkpoint's;
    /// anything else that exists is refused unless `replacingOutputs`.
    /// - Throws: ``ConfigurationError`` when `change` alters a key that would
    ///   change the results; checkpoint, data and model errors.
    public convenience init(resuming path: String, change: (inout TrainingConfiguration) -> Void = { _ in },
                            replacingOutputs: Bool = false, progress: (String) -> Void = { _ in }) throws {
        let checkpoint = try TrainingCheckpoint.read(path: path)
        if let core = checkpoint.blasCore, core != BLAS.core.name {
            progress("note: the checkpoint was computed with OpenBLAS core \(core), this process runs "
                     + "\(BLAS.core.name): the run continues, equal to an uninterrupted one only to rounding")
        }
        var configuration = checkpoint.configuration
        configuration.maxSteps = nil
        configuration.timeLimit = nil
        change(&configuration)
        try configuration.validate()
        let changed = configuration.resultChanges(from: checkpoint.configuration)
        if !changed.isEmpty {
            throw ConfigurationError(component: path, problem: "a resumed run keeps its settings; cannot change "
                                     + changed.joined(separator: ", ") + " (only "
                                     + TrainingConfiguration.resumableKeys.sorted().joined(separator: ", ") + " may change)")
        }
        try Self.checkOutputs(configuration, replacing: replacingOutputs,
                              resumedFrom: (path, checkpoint.configuration.log, checkpoint.log))
        let data = try TrainingData.prepare(configuration, statistics: checkpoint.statistics, spec: checkpoint.spec,
                                            progress: progress)
        guard checkpoint.progress.batch <= data.train.batchCount else {
            throw ConfigurationError(component: path, problem: "the checkpoint stands at batch \(checkpoint.progress.batch) of an epoch "
                                     + "that has \(data.train.batchCount) batches; the checkpoint is damaged or the data set changed")
        }
        guard data.classNames.count == checkpoint.classNames.count else {
            throw ConfigurationError(component: path, problem: "the checkpoint has \(checkpoint.classNames.count) classes, "
                                     + "the data set \(configuration.data) has \(data.classNames.count)")
        }
        try self.init(data: data, checkpoint: (path, checkpoint))
    }

    private init(data: TrainingData, checkpoint: (path: String, value: TrainingCheckpoint)?, weights: [StoredTensor]?) throws {
        let config = data.configuration
        let network = try Network<Float>(spec: data.spec, seed: config.seed, initialisation: config.initialisation)
        if let weights, let path = config.weights {
            try StateDict.load(weights, into: network, source: path)
        }
        let form = config.sgd
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
                try OutputFiles.makeDirectory(directory, what: "checkpoint")
            } catch let error as OutputFileError {
                throw ConfigurationError(component: "checkpoint", problem: "\(directory): \(error.problem)")
            }
            // A killed earlier process may have left half-written checkpoints: they go now,
            // not only when the same file is next written (best.safetensors may never be).
            for name in ["last.safetensors", "best.safetensors"] {
                OutputFiles.removeStaleTemporaries(directory: directory, base: name)
            }
        }
        let log = try TrainingLog(path: config.log, lines: checkpoint?.value.log ?? [])
        let trainer = try Trainer(configuration: config, model: model, train: data.train, validation: data.validation,
                                  classNames: data.classNames, progress: checkpoint?.value.progress, log: log,
                                  resumedFrom: checkpoint.map { ($0.path, $0.value.progress.step) })
        trainer.validationSplit = data.validationSplit
        let spec = data.spec, statistics = data.statistics
        trainer.checkpointWriter = { trainer, path in
            try TrainingCheckpoint(trainer: trainer, spec: spec, statistics: statistics).write(to: path)
        }
        self.data = data
        self.model = model
        self.trainer = trainer
    }

    /// Refuses, before any work, outputs that would replace what another run
    /// left: an existing log file (unless it is the resumed run's own: the
    /// checkpoint's log path, its lines beginning with the checkpoint's), and `last`/`best` checkpoints in the
    /// checkpoint directory (unless it is the resumed checkpoint's directory).
    /// Also checks that each output's directory exists and is writable.
    static func checkOutputs(_ config: TrainingConfiguration, replacing: Bool,
                             resumedFrom: (path: String, logPath: String?, log: [String])?) throws {
        func fail(_ key: String, _ path: String, _ problem: String) -> ConfigurationError {
            ConfigurationError(component: key, problem: "\(path): \(problem)")
        }
        if let log = config.log {
            var isOwnLog = false
            if let resumedFrom, let ownPath = resumedFrom.logPath, sameFile(ownPath, log),
               let text = FileManager.default.contents(atPath: log) {
                let lines = String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
                isOwnLog = lines.starts(with: resumedFrom.log)
            }
            do {
                try OutputFiles.checkFile(log, what: "log", replacing: replacing || isOwnLog)
            } catch let error as OutputFileError {
                throw fail("log", log, error.problem)
            }
        }
        if let directory = config.checkpoint {
            do {
                try OutputFiles.checkDirectory(directory, what: "checkpoint")
            } catch let error as OutputFileError {
                throw fail("checkpoint", directory, error.problem)
            }
            let ownDirectory = resumedFrom.map { Self.sameFile(OutputFiles.parent(of: $0.path), directory) } ?? false
            let existing = ["last.safetensors", "best.safetensors"].filter {
                FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0))
            }
            if !existing.isEmpty && !replacing && !ownDirectory {
                let last = (directory as NSString).appendingPathComponent("last.safetensors")
                throw fail("checkpoint", directory, "holds another run's checkpoint (\(existing.joined(separator: ", "))); "
                           + "continue that run with --resume \(last), choose a new directory, or pass --force to replace them")
            }
        }
    }

    /// Whether two paths name the same existing file or directory.
    private static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat(), second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    /// One-crop evaluation of the current weights over a loader (``TrainingData/test``, say);
    /// `skipped` hears about examples left out as bad files.
    public func evaluate(_ source: BatchSource, progress: (Int) -> Void = { _ in },
                         skipped: ([DataWarning]) -> Void = { _ in }) throws -> EvaluationResult {
        try Evaluator.evaluate(source: source, classes: data.classNames.count, progress: progress, skipped: skipped) {
            try model.scores($0)
        }
    }

    /// Ten-crop evaluation of the current weights over a data set (``TrainingData/testSet``, say).
    public func evaluateTenCrop(_ dataset: any ImageDataset, progress: (Int) -> Void = { _ in },
                                skipped: ([DataWarning]) -> Void = { _ in }) throws -> EvaluationResult {
        try Evaluator.evaluateTenCrop(source: try data.tenCropLoader(dataset), classes: data.classNames.count,
                                      geometry: data.tenCrop, progress: progress, skipped: skipped) { try model.scores($0) }
    }
}
