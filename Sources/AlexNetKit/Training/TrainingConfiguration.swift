import Foundation

/// Everything that defines a training run: the model, the data and its
/// augmentation, the optimiser, the schedule, and how the run is executed.
///
/// Read from a JSON run config (``parse(json:source:onto:)``), set from the
/// command line, and stored in every checkpoint (``jsonString()``), so a
/// checkpoint says exactly how it was made. JSON keys are the property names
/// in snake case (`weight_decay`); every key is optional in a file (missing
/// keys keep their defaults), unknown keys are errors, and `null` means "the
/// default" for the settings whose default depends on the data.
///
/// Settings under "execution" do not change a single bit of the results
/// (weights, velocities, log values): they may differ between a run and its
/// resumption. All others are fixed once a run starts (``resumableKeys``).
public struct TrainingConfiguration: Equatable, Sendable {
    // MARK: Model

    /// A shipped model's name (``ModelZoo/names``) or a JSON spec file. The
    /// default trains on Fashion-MNIST in about a minute an epoch on 2 cores.
    public var model = "layers-80sec"
    /// 1 or 2 towers; nil: the model's own.
    public var towers: Int?
    /// Classes of the last layer; nil: the data set's class count.
    public var classes: Int?
    /// One image `[C, H, W]`; nil: the model's own, or, for the CIFAR-sized
    /// shipped nets, the data set's stored image size.
    public var input: [Int]?
    /// Switches flipped on the resolved model (``ModelVariant``: activation,
    /// LRN, pooling, dropout, width), as an ablation's arm sets them; nil: none.
    public var modelChanges: ModelVariant?
    /// How the weights start (JSON key `init`: `paper`, `he` or `gaussian:S`);
    /// biases as the spec says. He by default: the small nets trained here
    /// from scratch barely move from the paper's 0.01 in their first epochs.
    public var initialisation = Initialisation.he
    /// Start from the weights in this file instead of initialising them: plain
    /// weights (.safetensors, .npz; any naming and layout ``StateDict`` reads)
    /// or a training checkpoint's weights. Velocities start at zero. nil: initialise.
    public var weights: String?
    /// Keys the weights, the epoch order, the augmentation and the dropout masks.
    public var seed: UInt64 = 0

    // MARK: Data

    /// The data set: a directory or archive ``Datasets/open(path:split:format:skipBadFiles:)`` reads.
    public var data = "/usr/share/datasets/fashion-mnist"
    /// `auto`, `cifar10`, `idx` or `folder`.
    public var format = Datasets.Format.auto
    /// Train on the first N training examples only (nil: all).
    public var trainLimit: Int?
    /// Hold out N training examples as the validation set, chosen by
    /// ``holdoutSeed``; 0: the test split validates (the test set then steers
    /// the plateau schedule and `best.safetensors`). nil: ``defaultHoldout(trainingCount:)``
    /// (5000 of Fashion-MNIST's 60,000 and of CIFAR-10's 50,000).
    public var holdout: Int?
    /// Keys the held-out examples: a permutation of the training split keyed
    /// by this seed (not by ``seed``, so runs with different seeds validate on
    /// the same examples) whose first ``holdout`` entries are held out. nil: the
    /// last ``holdout`` examples, as versions before 0.8 did (checkpoints
    /// written by them read so).
    public var holdoutSeed: UInt64? = 0
    /// `channel` (each channel's mean), `image` (the mean image, the paper) or `none`.
    public var mean = ImagePipeline.MeanSubtraction.perChannel
    /// Multiplies every input value after the mean is subtracted; nil: `1 / std`
    /// of the training pixels (their standard deviation, averaged over channels).
    public var scale: Double?
    /// Random crops of the network's input size from the image padded by this
    /// many zeros (after mean subtraction) on each side; nil: `H / 8` when the
    /// stored images are the input's size (3 for 28x28, 4 for 32x32), 0 when
    /// they are larger (random crops inside, as the paper's 227 of 256).
    public var cropPadding: Int?
    /// Mirror training images left to right with probability 1/2.
    public var flip = true
    /// PCA colour augmentation standard deviation (the paper's 0.1); 0: off.
    public var pca = 0.0
    /// Rescale the shorter side to this, keeping the centre square (256 in the paper); nil: keep the stored size.
    public var resize: Int?
    /// Examples used to compute the mean and scale (nil: the whole training set).
    public var statisticsLimit: Int?

    // MARK: Optimisation

    /// Epochs to train.
    public var epochs = 10
    /// Examples per batch.
    public var batch = 128
    /// The learning rate of the first epoch (the paper's is 0.01).
    public var lr = 0.05
    /// What the schedule divides the rate by.
    public var lrFactor = 10.0
    /// `constant`, `step:K`, `linear:E` or `plateau:P` (``LearningRateSchedule``).
    public var schedule = LearningRateSchedule.constant
    /// `paper` or `pytorch` (``SGDForm``).
    public var sgd = SGDForm.paper
    /// SGD momentum.
    public var momentum = 0.9
    /// SGD weight decay.
    public var weightDecay = 0.0005

    // MARK: Execution

    /// Worker threads of the network (split between the towers with two).
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Directory for `last.safetensors` and `best.safetensors`; nil: no checkpoints.
    public var checkpoint: String?
    /// Also write `last.safetensors` every N steps (0: at the end of each epoch only).
    public var checkpointEvery = 0
    /// The JSON-lines log file; nil: no log file.
    public var log: String?
    /// Also log the epoch's running training figures every N steps (a `steps`
    /// line: finer training curves; 0: epoch lines only).
    public var logEvery = 0
    /// Stop after this many steps in all (counting those before a resume).
    public var maxSteps: Int?
    /// Stop after this many seconds of this process's training.
    public var timeLimit: Double?
    /// Also evaluate the test split with ten crops at the end.
    public var tenCrop = false

    /// A configuration with every default.
    public init() {}

    /// The validation examples held out of `trainingCount` when ``holdout``
    /// is nil: a tenth of the training split, at most 5000.
    public static func defaultHoldout(trainingCount: Int) -> Int { min(5000, trainingCount / 10) }

    /// The keys a resumed run may change: they do not affect the results.
    public static let resumableKeys: Set<String> = ["data", "epochs", "threads", "checkpoint", "checkpoint_every", "log",
                                                    "log_every", "max_steps", "time_limit", "ten_crop"]

    /// Checks every value's range (the typed settings' spellings are checked
    /// where they are read, ``SettingValue``).
    /// - Throws: ``ConfigurationError`` naming the key and what it accepts.
    public func validate() throws {
        func fail(_ key: String, _ problem: String) -> ConfigurationError {
            ConfigurationError(component: key, problem: problem)
        }
        let limit = InputLimits.self
        if let towers, towers != 1 && towers != 2 { throw fail("towers", "must be 1 or 2, got \(towers)") }
        if let classes { try limit.check(classes, 1...limit.classes, "classes") }
        if let input {
            guard input.count == 3 else { throw fail("input", "must be three positive integers [C, H, W], got \(input)") }
            guard (1...limit.inputChannels).contains(input[0]), input[1...].allSatisfy({ (1...limit.imageSide).contains($0) }) else {
                throw fail("input", "must be [C, H, W] with C in 1...\(limit.inputChannels) and H, W in 1...\(limit.imageSide), got \(input)")
            }
        }
        try modelChanges?.validate()
        if let trainLimit { try limit.check(trainLimit, 1...limit.examples, "train_limit") }
        if let holdout { try limit.check(holdout, 0...limit.examples, "holdout") }
        if case .gaussian(let std) = initialisation, !(std > 0 && std.isFinite) {
            throw fail("init", "gaussian:S needs a positive, finite S, got \(std)")
        }
        if let scale, !(scale > 0 && scale.isFinite) { throw fail("scale", "must be positive and finite, got \(scale)") }
        if let cropPadding { try limit.check(cropPadding, 0...limit.cropPadding, "crop_padding") }
        if !(pca >= 0 && pca.isFinite) { throw fail("pca", "must be finite and not negative, got \(pca)") }
        if let resize { try limit.check(resize, 1...limit.imageSide, "resize") }
        if let statisticsLimit { try limit.check(statisticsLimit, 1...limit.examples, "statistics_limit") }
        try limit.check(epochs, 1...limit.epochs, "epochs")
        try limit.check(batch, 1...limit.batch, "batch")
        if !(lr > 0 && lr.isFinite) { throw fail("lr", "must be positive and finite, got \(lr)") }
        if !(lrFactor > 1 && lrFactor.isFinite) { throw fail("lr_factor", "must be above 1, got \(lrFactor)") }
        if !(momentum >= 0 && momentum < 1) { throw fail("momentum", "must be in [0, 1), got \(momentum)") }
        if !(weightDecay >= 0 && weightDecay.isFinite) { throw fail("weight_decay", "must be finite and not negative, got \(weightDecay)") }
        try limit.check(threads, 1...limit.threads, "threads")
        try limit.check(checkpointEvery, 0...limit.steps, "checkpoint_every")
        try limit.check(logEvery, 0...limit.steps, "log_every")
        if let maxSteps { try limit.check(maxSteps, 1...limit.steps, "max_steps") }
        if let timeLimit, !(timeLimit > 0 && timeLimit <= limit.seconds) {
            throw fail("time_limit", "must be positive seconds up to \(Int(limit.seconds)), got \(timeLimit)")
        }
    }

    /// The keys on which two configurations differ, in ``keys`` order.
    public func differences(from other: TrainingConfiguration) -> [String] {
        let mine = members
        let theirs = other.members
        return Self.keys.filter { mine[$0] != theirs[$0] }
    }

    /// The keys on which two configurations differ in a way that changes the
    /// results (``differences(from:)`` less ``resumableKeys``): what a resumed run,
    /// or an experiment's existing run, may not change.
    public func resultChanges(from other: TrainingConfiguration) -> [String] {
        differences(from: other).filter { !Self.resumableKeys.contains($0) }
    }

    /// Sets the settings named by `keys` (JSON key names) to `other`'s values.
    public mutating func copy(_ keys: [String], from other: TrainingConfiguration) {
        for entry in Self.entries where keys.contains(entry.key.stringValue) { entry.copy(other, &self) }
    }

    // MARK: JSON

    /// The configuration as a JSON object, one key per line, every key written
    /// (`null` for a setting left to its default); ``parse(json:source:onto:)``
    /// reads it back equal.
    public func jsonString() -> String { jsonValue.formatted(expandedLevels: 1) + "\n" }

    /// The configuration as JSON (what ``jsonString()`` writes).
    var jsonValue: JSONValue {
        // Encoding cannot fail: every setting is a number, a string, a boolean or null.
        // swiftlint:disable:next force_try
        try! StrictJSONEncoder().encode(self)
    }

    /// Each key's value as compact JSON text, for comparing two configurations.
    private var members: [String: String] {
        guard case .object(let members) = jsonValue else { return [:] }
        return Dictionary(members.map { ($0.key, $0.value.compactText) }, uniquingKeysWith: { first, _ in first })
    }

    /// Reads a JSON run config, setting the keys it holds on top of `base`.
    /// - Parameter source: the name errors start with (the file's path).
    /// - Throws: ``ConfigurationError`` whose component is `source:line:column: key`
    ///   (`source:line:column` for invalid JSON), for unknown keys, wrong types and bad values.
    public static func parse(json: [UInt8], source: String, onto base: TrainingConfiguration = TrainingConfiguration())
    throws -> TrainingConfiguration {
        try StrictJSONDecoder.decodeSettings(TrainingConfiguration.self, from: json, source: source, userInfo: [baseKey: base])
    }

    /// The `userInfo` key of the configuration a decoded run config starts from
    /// (every key is optional; missing keys keep the base's values).
    static let baseKey = CodingUserInfoKey(rawValue: "TrainingConfiguration.base")!

    /// Reads the JSON run config file at `path` on top of `base`.
    /// - Throws: ``ConfigurationError`` naming the file (missing, unreadable) or the key.
    public static func load(path: String, onto base: TrainingConfiguration = TrainingConfiguration()) throws -> TrainingConfiguration {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ConfigurationError(component: path, problem: isDirectory.boolValue ? "is a directory, not a JSON run config" : "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(component: path, problem: "the file cannot be read (check its permissions)")
        }
        return try parse(json: [UInt8](data), source: path, onto: base)
    }
}

// MARK: - Codable

extension TrainingConfiguration: Codable {
    /// The JSON keys: the property names in snake case, in the order files are written.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, towers, classes, input
        case modelChanges = "model_changes"
        case initialisation = "init"
        case weights, seed, data, format
        case trainLimit = "train_limit"
        case holdout
        case holdoutSeed = "holdout_seed"
        case mean, scale
        case cropPadding = "crop_padding"
        case flip, pca, resize
        case statisticsLimit = "statistics_limit"
        case epochs, batch, lr
        case lrFactor = "lr_factor"
        case schedule, sgd, momentum
        case weightDecay = "weight_decay"
        case threads, checkpoint
        case checkpointEvery = "checkpoint_every"
        case log
        case logEvery = "log_every"
        case maxSteps = "max_steps"
        case timeLimit = "time_limit"
        case tenCrop = "ten_crop"
    }

    /// Every key, in the order ``jsonString()`` writes them.
    public static let keys: [String] = CodingKeys.allCases.map(\.stringValue)

    /// The run-config key of the setting at `path` (`\.lrFactor` gives
    /// `"lr_factor"`), so a command line that sets a property names it the
    /// way files do without spelling the key again; nil for a property that
    /// is no setting.
    public static func key(for path: PartialKeyPath<TrainingConfiguration>) -> String? {
        entries.first { $0.path == path }?.key.stringValue
    }

    /// One key and the property it sets: the only place a key meets its property.
    struct Entry {
        let key: CodingKeys
        let path: PartialKeyPath<TrainingConfiguration>
        let decode: (KeyedDecodingContainer<CodingKeys>, inout TrainingConfiguration) throws -> Void
        let encode: (inout KeyedEncodingContainer<CodingKeys>, TrainingConfiguration) throws -> Void
        let copy: (TrainingConfiguration, inout TrainingConfiguration) -> Void
    }

    /// A setting stored as its JSON value (`null` for nil).
    private static func value<T: Codable>(_ key: CodingKeys, _ path: WritableKeyPath<TrainingConfiguration, T>) -> Entry {
        Entry(key: key, path: path,
              decode: { c, config in config[keyPath: path] = try c.decode(T.self, forKey: key) },
              encode: { c, config in try c.encode(config[keyPath: path], forKey: key) },
              copy: { from, to in to[keyPath: path] = from[keyPath: path] })
    }

    /// A setting stored as its text form (``SettingValue``: `sgd`, `init`, `schedule`, ...).
    private static func setting<T: SettingValue>(_ key: CodingKeys, _ path: WritableKeyPath<TrainingConfiguration, T>) -> Entry {
        Entry(key: key, path: path,
              decode: { c, config in
                  let text = try c.decode(String.self, forKey: key, missing: "", expected: "expected a string: \(T.acceptedList)")
                  do {
                      config[keyPath: path] = try T.parse(text, key: key.stringValue)
                  } catch let error as ConfigurationError {
                      throw c.invalid(key, error.problem)
                  }
              },
              encode: { c, config in try c.encode(config[keyPath: path].description, forKey: key) },
              copy: { from, to in to[keyPath: path] = from[keyPath: path] })
    }

    /// Every key, in file order.
    static let entries: [Entry] = [
        value(.model, \.model), value(.towers, \.towers), value(.classes, \.classes), value(.input, \.input),
        value(.modelChanges, \.modelChanges), setting(.initialisation, \.initialisation), value(.weights, \.weights),
        value(.seed, \.seed), value(.data, \.data), setting(.format, \.format), value(.trainLimit, \.trainLimit),
        value(.holdout, \.holdout), value(.holdoutSeed, \.holdoutSeed), setting(.mean, \.mean), value(.scale, \.scale),
        value(.cropPadding, \.cropPadding), value(.flip, \.flip), value(.pca, \.pca), value(.resize, \.resize),
        value(.statisticsLimit, \.statisticsLimit), value(.epochs, \.epochs), value(.batch, \.batch), value(.lr, \.lr),
        value(.lrFactor, \.lrFactor), setting(.schedule, \.schedule), setting(.sgd, \.sgd), value(.momentum, \.momentum),
        value(.weightDecay, \.weightDecay), value(.threads, \.threads), value(.checkpoint, \.checkpoint),
        value(.checkpointEvery, \.checkpointEvery), value(.log, \.log), value(.logEvery, \.logEvery),
        value(.maxSteps, \.maxSteps), value(.timeLimit, \.timeLimit), value(.tenCrop, \.tenCrop),
    ]

    /// Reads the keys present on top of the configuration in `userInfo[baseKey]`
    /// (the defaults without one), then validates the whole.
    public init(from decoder: Decoder) throws {
        try self.init(from: decoder, onto: decoder.userInfo[Self.baseKey] as? TrainingConfiguration ?? TrainingConfiguration())
    }

    /// Reads the keys present on top of `base`, leaving `ignoring` to the caller
    /// (an experiment arm's `name`), then validates the whole; a value out of
    /// range fails at its key.
    init(from decoder: Decoder, onto base: TrainingConfiguration, ignoring: [String] = []) throws {
        let c = try decoder.object(keyedBy: CodingKeys.self, expected: "expected a run config: a JSON object of settings")
        try decoder.refuseUnknownKeys(allowed: Self.keys + ignoring, what: "a run config")
        self = base
        for entry in Self.entries where c.contains(entry.key) { try entry.decode(c, &self) }
        do {
            try validate()
        } catch let error as ConfigurationError {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [JSONKey(error.component)],
                                                    debugDescription: error.problem))
        }
    }

    /// Writes every key, `null` for a setting left to its default.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        for entry in Self.entries { try entry.encode(&c, self) }
    }
}
