import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet train`: SGD on a data set, with validation, a JSON-lines log, checkpoints and resume.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a data set (Fashion-MNIST by default) with SGD, checkpoints and exact resume.",
        discussion: """
        Settings come from the defaults, then --config FILE.json (keys as in Docs/training.md, \
        e.g. "weight_decay"), then the options given here. Each epoch ends with a validation pass \
        (on --holdout N examples held out of the training split, by default a tenth of it up to 5000; \
        --holdout 0 validates on the test split) and one line of the --log file; the test split is \
        evaluated once, at the end.

        --checkpoint DIR keeps DIR/last.safetensors (each epoch, every --checkpoint-every steps, \
        and on stopping) and DIR/best.safetensors (lowest validation error). --resume \
        DIR/last.safetensors continues bit for bit as if the run had never stopped; it may change \
        only --epochs, --max-steps, --time-limit, --threads, --checkpoint, --checkpoint-every, \
        --log, --data and --ten-crop.

        Examples (release build, 2 cores): one epoch of Fashion-MNIST (about 2 minutes, \
        19% test error); the documented 10-epoch run (about 20 minutes, 9.1%); two more epochs.
          alexnet train --epochs 1
          alexnet train --schedule step:7 --crop-padding 1 --checkpoint fm
          alexnet train --resume fm/last.safetensors --epochs 12
        """
    )

    @Option(help: "A JSON run config file; options given here override its keys.")
    var config: String?

    @Option(help: "Continue the run saved in this checkpoint (DIR/last.safetensors).")
    var resume: String?

    @Option(help: trainingHelp("Model: \(ModelZoo.names.joined(separator: ", ")) or a JSON spec file.", default: \.model))
    var model: String?

    @OptionGroup var size: ModelSizeOptions

    @OptionGroup var shape: InputShapeOption

    @Option(help: trainingHelp("Data set: a directory (IDX, CIFAR-10 batches, image folders) or a CIFAR-10 archive.", default: \.data))
    var data: String?

    @Option(help: trainingHelp("Data format.", default: \.format))
    var format: Datasets.Format?

    @Option(help: trainingHelp("Epochs to train.", default: \.epochs))
    var epochs: Int?

    @Option(help: trainingHelp("Images per batch.", default: \.batch))
    var batch: Int?

    @Option(help: trainingHelp("Learning rate of the first epoch (the paper: 0.01).", default: \.lr))
    var lr: Double?

    @Option(help: trainingHelp("Learning-rate schedule: constant, step:K (divide every K epochs), linear:E (fall linearly towards zero over E epochs) or plateau:P (divide after more than P epochs without a lower validation error).", default: \.schedule))
    var schedule: LearningRateSchedule?

    @Option(help: trainingHelp("What the schedule divides the rate by.", default: \.lrFactor))
    var lrFactor: Double?

    @Option(help: trainingHelp("SGD form: paper (v = 0.9v - 0.0005 lr w - lr g; w += v) or pytorch (v = 0.9v + g + 0.0005w; w -= lr v).", default: \.sgd))
    var sgd: SGDForm?

    @Option(help: trainingHelp("Momentum.", default: \.momentum))
    var momentum: Double?

    @Option(help: trainingHelp("Weight decay.", default: \.weightDecay))
    var weightDecay: Double?

    @Option(help: trainingHelp("Weight initialisation: paper (N(0, 0.01^2)), he (N(0, 2/fan-in)) or gaussian:S (N(0, S^2)).", default: \.initialisation))
    var `init`: Initialisation?

    @Option(help: "Start from these weights (.safetensors or .npz, any naming; or a checkpoint's weights) instead of initialising.")
    var weights: String?

    @Option(help: trainingHelp("Seed of weights, epoch order, augmentation and dropout.", default: \.seed))
    var seed: UInt64?

    // Not WorkerThreadsOption: here nil means "not given", so the run config
    // (--config, or the checkpoint with --resume) keeps its own threads, and
    // only a given --threads overrides it. The group's help would state the
    // wrong default; the text and the check are the group's.
    @Option(help: "\(WorkerThreadsOption.summary) (default: the --config file's, or the resumed checkpoint's, else one per core)")
    var threads: Int?

    @Option(help: "Directory for last.safetensors and best.safetensors.")
    var checkpoint: String?

    @Option(help: trainingHelp("Also write last.safetensors every N steps (0: at epoch ends only).", default: \.checkpointEvery))
    var checkpointEvery: Int?

    @Option(help: "JSON-lines log file, one line per epoch and one at the end.")
    var log: String?

    @Option(help: trainingHelp("Also log the epoch's running training figures every N steps (finer curves; 0: epoch lines only).", default: \.logEvery))
    var logEvery: Int?

    @Option(help: "Switches on the model, as JSON: {\"activation\": \"tanh\", \"lrn\": \"off\", \"pooling\": \"non-overlapping\", \"dropout\": 0, \"width\": 0.5} (Docs/experiments.md).")
    var modelChanges: String?

    @Option(help: "Stop after N steps in all (a resumed run counts the steps before it).")
    var maxSteps: Int?

    @Option(help: "Stop training after this long: seconds, or with a unit (90s, 25m, 1.5h).")
    var timeLimit: String?

    @Option(help: "Hold out N training examples for validation; 0: validate on the test split. (default: a tenth of the training split, at most 5000)")
    var holdout: Int?

    @Option(help: trainingHelp("Seed of the held-out examples' choice (the same for every --seed).", default: \.holdoutSeed))
    var holdoutSeed: UInt64?

    @Option(help: "Train on the first N training examples only.")
    var trainLimit: Int?

    @Option(help: trainingHelp("Mean subtraction: each channel's mean, the mean image (the paper) or none.", default: \.mean))
    var mean: ImagePipeline.MeanSubtraction?

    @Option(help: "Input scale after mean subtraction. (default: 1/std of the training pixels)")
    var scale: Double?

    @Option(help: "Random crops from the image padded by P zeros per side. (default: H/8 for images of the input's size, else 0)")
    var cropPadding: Int?

    @Flag(inversion: .prefixedNo, help: trainingHelp("Mirror training images at random.", default: \.flip))
    var flip: Bool?

    @Option(help: trainingHelp("PCA colour augmentation standard deviation (the paper: 0.1; 0: off).", default: \.pca))
    var pca: Double?

    @OptionGroup var resize: ResizeOption

    @Option(help: "Images used for the mean and scale. (default: all training images)")
    var statisticsLimit: Int?

    @Flag(help: "Also evaluate the test split with ten crops at the end.")
    var tenCrop = false

    @OptionGroup var quiet: QuietFlag<TrainCommand>

    @OptionGroup var force: ForceFlag<TrainCommand>

    /// Refuses a bad option value before any work, as a usage error (exit 64):
    /// the options laid over the defaults must pass the library's own checks
    /// (``TrainingConfiguration/validate()``), whose messages name the option.
    /// A run config file's values are checked when it is read (exit 1).
    func validate() throws {
        if resume != nil, config != nil {
            throw ValidationError("--resume takes every setting from the checkpoint; it cannot be combined with --config")
        }
        try WorkerThreadsOption.check(threads)
        var given = TrainingConfiguration()
        do {
            try apply(to: &given)
            try given.validate()
        } catch let error as ConfigurationError {
            throw ValidationError(CommandErrors.message(error))
        }
    }

    /// The options given on the command line, applied to `config`; returns the keys set.
    @discardableResult
    func apply(to config: inout TrainingConfiguration) throws -> [String] {
        var set: [String] = []
        // Each property's key comes from the configuration's own table, so it is spelled once.
        func mark(_ path: PartialKeyPath<TrainingConfiguration>) { set.append(TrainingConfiguration.key(for: path)!) }
        func put<T>(_ value: T?, _ path: WritableKeyPath<TrainingConfiguration, T>) {
            if let value { config[keyPath: path] = value; mark(path) }
        }
        func putOptional<T>(_ value: T?, _ path: WritableKeyPath<TrainingConfiguration, T?>) {
            if let value { config[keyPath: path] = value; mark(path) }
        }
        put(model, \.model)
        putOptional(size.towers, \.towers)
        putOptional(size.classes, \.classes)
        putOptional(shape.input?.dims, \.input)
        put(data, \.data)
        put(format, \.format)
        put(epochs, \.epochs)
        put(batch, \.batch)
        put(lr, \.lr)
        put(schedule, \.schedule)
        put(lrFactor, \.lrFactor)
        put(sgd, \.sgd)
        put(momentum, \.momentum)
        put(weightDecay, \.weightDecay)
        put(self.`init`, \.initialisation)
        putOptional(weights, \.weights)
        put(seed, \.seed)
        put(threads, \.threads)
        putOptional(checkpoint, \.checkpoint)
        put(checkpointEvery, \.checkpointEvery)
        putOptional(log, \.log)
        putOptional(maxSteps, \.maxSteps)
        put(logEvery, \.logEvery)
        if let modelChanges {
            config.modelChanges = try ModelVariant.parse(json: modelChanges)
            mark(\.modelChanges)
        }
        if let timeLimit { config.timeLimit = try Self.seconds(timeLimit); mark(\.timeLimit) }
        putOptional(holdout, \.holdout)
        putOptional(holdoutSeed, \.holdoutSeed)
        putOptional(trainLimit, \.trainLimit)
        put(mean, \.mean)
        putOptional(scale, \.scale)
        putOptional(cropPadding, \.cropPadding)
        put(flip, \.flip)
        put(pca, \.pca)
        putOptional(resize.side, \.resize)
        putOptional(statisticsLimit, \.statisticsLimit)
        if tenCrop { config.tenCrop = true; mark(\.tenCrop) }
        return set
    }

    /// `90`, `90s`, `25m`, `1.5h` in seconds.
    static func seconds(_ text: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = Substring(text), unit = 1.0
        if let last = text.last, let factor = units[last] { number = text.dropLast(); unit = factor }
        guard let value = Double(number), value > 0, value.isFinite else {
            throw ValidationError("--time-limit must be a positive number of seconds, or with a unit: 90s, 25m, 1.5h; got '\(text)'")
        }
        return value * unit
    }

    func run() throws {
        let display = ProgressDisplay(quiet: quiet.isSet)
        let run: TrainingRun
        if let resume {
            guard FileManager.default.fileExists(atPath: resume) else { throw CommandFailure(message: "\(resume): no such file") }
            var given = TrainingConfiguration()
            let keys = try apply(to: &given)
            run = try TrainingRun(resuming: resume, change: { $0.copy(keys, from: given) }, replacingOutputs: force.isSet,
                                  progress: display.note)
            let p = run.trainer.progress
            display.note("resuming \(resume): epoch \(p.epoch + 1), batch \(p.batch + 1), step \(p.step)")
        } else {
            var configuration = TrainingConfiguration()
            if let config { configuration = try TrainingConfiguration.load(path: config) }
            try apply(to: &configuration)
            try configuration.validate()
            run = try TrainingRun(configuration: configuration, replacingOutputs: force.isSet, progress: display.note)
        }
        try train(run, display: display)
    }

    private func train(_ run: TrainingRun, display: ProgressDisplay) throws {
        let data = run.data, config = data.configuration
        let parameters = run.model.network.namedParameters.reduce(0) { $0 + $1.parameter.value.count }
        display.note("model \(data.spec.name) \(data.spec.inputShape), \(data.spec.towers) tower(s), \(parameters) parameters, "
                     + "init \(config.initialisation), seed \(config.seed)")
        display.note("data \(config.data): \(data.trainSet.count) training, \(data.validationSet.count) validation "
                     + (data.validationSplit == "test" ? "(the test split: --holdout 0)" : "(held out of the training split)")
                     + ", \(data.testSet.count) test images, \(data.classNames.count) classes")
        display.note("augmentation: random \(config.input![1])x\(config.input![2]) crops (padding \(config.cropPadding ?? 0))"
                     + (config.flip ? ", flips" : "") + (config.pca > 0 ? ", PCA colour \(config.pca)" : "")
                     + "; mean \(config.mean), scale \(String(format: "%.5g", config.scale ?? 1))")
        display.note("SGD \(config.sgd), lr \(config.lr), momentum \(config.momentum), weight decay \(config.weightDecay), "
                     + "batch \(config.batch), schedule \(config.schedule), \(config.epochs) epoch(s) of \(data.train.batchCount) steps, "
                     + "\(config.threads) thread(s)")
        let trainer = run.trainer
        let interrupts = InterruptHandler(signals: InterruptHandler.caught) { number in
            trainer.requestStop()
            let name = number == SIGINT ? "Ctrl-C" : "SIGTERM"
            let message = "\n\(name): stopping after this step"
                + (trainer.lastCheckpointPath != nil ? " and writing the checkpoint" : "") + "; again to stop at once\n"
            FileHandle.standardError.write(Data(message.utf8))
        }
        let reason = try run.trainer.run(observer: { display.show($0, epochs: config.epochs) })
        interrupts.stop()
        display.finishLine()
        let p = run.trainer.progress
        if let number = interrupts.signal {
            let position = "step \(p.step) (epoch \(p.epoch + 1), batch \(p.batch + 1))"
            if let last = run.trainer.lastCheckpointPath {
                display.note("interrupted after \(position); checkpoint: \(last)")
                display.note("resume with: alexnet train --resume \(last)")
            } else {
                display.note("interrupted after \(position); no --checkpoint was given, so nothing was saved")
            }
            throw ExitCode(128 + number)
        }
        switch reason {
        case .interrupted: break  // handled above: only a signal requests the stop here
        case .epochs: display.note("finished \(config.epochs) epoch(s), \(p.step) steps")
        case .maxSteps: display.note("stopped at --max-steps \(p.step) (epoch \(p.epoch + 1), batch \(p.batch + 1))")
        case .timeLimit: display.note("stopped at the time limit after step \(p.step) (epoch \(p.epoch + 1), batch \(p.batch + 1))")
        }
        if let last = run.trainer.lastCheckpointPath { display.note("checkpoint: \(last) (resume with --resume \(last))") }

        display.note("evaluating \(data.testSet.count) test images")
        let warn: ([DataWarning]) -> Void = { for warning in $0 { display.note("warning: skipped \(warning)") } }
        let test = try run.evaluate(data.test, progress: { display.evaluation($0, of: data.testSet.count) }, skipped: warn)
        display.finishLine()
        var end = EndRecord(reason: reason, epoch: p.epoch, step: p.step, test: EndRecord.Figures(test))
        print(String(format: "test (one crop): top-1 error %.2f%% (accuracy %.4f), top-5 error %.2f%%, loss %.4f",
                     100 * test.top1Error, 1 - test.top1Error, 100 * test.top5Error, test.loss))
        if config.tenCrop {
            display.note("evaluating \(data.testSet.count) test images with ten crops each")
            let ten = try run.evaluateTenCrop(data.testSet, progress: { display.evaluation($0, of: data.testSet.count) }, skipped: warn)
            display.finishLine()
            end.tenCrop = EndRecord.Figures(ten)
            print(String(format: "test (ten crops): top-1 error %.2f%% (accuracy %.4f), top-5 error %.2f%%, loss %.4f",
                         100 * ten.top1Error, 1 - ten.top1Error, 100 * ten.top5Error, ten.loss))
        }
        print(test.report(classNames: data.classNames), terminator: "")
        try run.trainer.log.append(end.jsonLine())
    }
}

extension TrainCommand: ForceHelp, QuietHelp {
    static let forceHelp = "Replace an existing --log file, and another run's checkpoints in --checkpoint DIR."
    static let quietHelp = "Print only the epoch lines and the result, no progress."
}
