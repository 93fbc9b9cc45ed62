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

    /// Every key, in the order ``jsonString()`` writes them.
    public static let keys: [String] = fields.map(\.key)

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
        Self.fields.filter { $0.write(self) != $0.write(other) }.map(\.key)
    }

    /// The keys on which two configurations differ in a way that changes the
    /// results (``differences(from:)`` less ``resumableKeys``): what a resumed run,
    /// or an experiment's existing run, may not change.
    public func resultChanges(from other: TrainingConfiguration) -> [String] {
        differences(from: other).filter { !Self.resumableKeys.contains($0) }
    }

    /// Sets the settings named by `keys` (JSON key names) to `other`'s values.
    public mutating func copy(_ keys: [String], from other: TrainingConfiguration) {
        for field in Self.fields where keys.contains(field.key) {
            // Every field reads back what it writes, so this cannot fail.
            if let value = try? JSONParser.parse(Array(field.write(other).utf8)) { try? field.read(value, &self) }
        }
    }

    // MARK: JSON

    /// The configuration as a JSON object, one key per line, every key written
    /// (`null` for a setting left to its default); ``parse(json:source:onto:)``
    /// reads it back equal.
    public func jsonString() -> String {
        "{\n" + Self.fields.map { "  \"\($0.key)\": \($0.write(self))" }.joined(separator: ",\n") + "\n}\n"
    }

    /// Reads a JSON run config, setting the keys it holds on top of `base`.
    /// - Parameter source: the name errors start with (the file's path).
    /// - Throws: ``ConfigurationError`` whose component is `source: key` (or
    ///   `source:line:column` for invalid JSON), for unknown keys, wrong types and bad values.
    public static func parse(json: [UInt8], source: String, onto base: TrainingConfiguration = TrainingConfiguration())
    throws -> TrainingConfiguration {
        let document: JSONValue
        do {
            document = try JSONParser.parse(json)
        } catch let error as JSONSyntaxError {
            throw ConfigurationError(component: "\(source):\(error.line):\(error.column)", problem: "invalid JSON: \(error.problem)")
        }
        return try parse(value: document, source: source, onto: base)
    }

    /// Reads a run config already parsed as JSON (an experiment's `base` or an arm), on top of `base`.
    /// - Parameter ignoring: keys left to the caller (an arm's `name`).
    static func parse(value document: JSONValue, source: String, onto base: TrainingConfiguration = TrainingConfiguration(),
                      ignoring: Set<String> = []) throws -> TrainingConfiguration {
        guard case .object(let members) = document else {
            throw ConfigurationError(component: source, problem: "a run config is a JSON object, got \(document.quoted)")
        }
        var result = base
        for member in members where !ignoring.contains(member.key) {
            guard let field = fields.first(where: { $0.key == member.key }) else {
                throw ConfigurationError(component: "\(source): \(member.key)",
                                         problem: "unknown key; a run config takes " + keys.map { "\"\($0)\"" }.joined(separator: ", "))
            }
            do {
                try field.read(member.value, &result)
            } catch let error as ConfigurationError {
                throw ConfigurationError(component: "\(source): \(member.key)", problem: error.problem)
            }
        }
        do {
            try result.validate()
        } catch let error as ConfigurationError {
            throw ConfigurationError(component: "\(source): \(error.component)", problem: error.problem)
        }
        return result
    }

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

    // MARK: Fields

    /// One key: how to write it and how to read it.
    struct Field {
        var key: String
        var write: (TrainingConfiguration) -> String
        var read: (JSONValue, inout TrainingConfiguration) throws -> Void
    }

    private static func bad(_ value: JSONValue, _ expected: String) -> ConfigurationError {
        ConfigurationError(component: "", problem: "expected \(expected), got \(value.quoted)")
    }

    private static func string(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, String>) -> Field {
        Field(key: key, write: { JSONValue.encode(string: $0[keyPath: path]) }, read: { value, config in
            guard case .string(let s) = value else { throw bad(value, "a string") }
            config[keyPath: path] = s
        })
    }

    /// A typed setting, written and read as its text form.
    private static func setting<T: SettingValue>(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, T>) -> Field {
        Field(key: key, write: { JSONValue.encode(string: $0[keyPath: path].description) }, read: { value, config in
            guard case .string(let s) = value else { throw bad(value, "a string: \(T.acceptedList)") }
            config[keyPath: path] = try T.parse(s, key: key)
        })
    }

    private static func optionalString(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, String?>) -> Field {
        Field(key: key, write: { $0[keyPath: path].map(JSONValue.encode(string:)) ?? "null" }, read: { value, config in
            switch value {
            case .null: config[keyPath: path] = nil
            case .string(let s): config[keyPath: path] = s
            default: throw bad(value, "a string or null")
            }
        })
    }

    private static func integer(_ value: JSONValue) -> Int? {
        guard case .number(let text) = value, !text.contains(where: { ".eE".contains($0) }) else { return nil }
        return Int(text)
    }

    private static func int(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Int>) -> Field {
        Field(key: key, write: { "\($0[keyPath: path])" }, read: { value, config in
            guard let n = integer(value) else { throw bad(value, "an integer") }
            config[keyPath: path] = n
        })
    }

    private static func optionalInt(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Int?>) -> Field {
        Field(key: key, write: { $0[keyPath: path].map { "\($0)" } ?? "null" }, read: { value, config in
            if case .null = value { config[keyPath: path] = nil; return }
            guard let n = integer(value) else { throw bad(value, "an integer or null") }
            config[keyPath: path] = n
        })
    }

    private static func double(_ value: JSONValue) -> Double? {
        guard case .number(let text) = value, let x = Double(text), x.isFinite else { return nil }
        return x
    }

    private static func number(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Double>) -> Field {
        Field(key: key, write: { $0[keyPath: path].description }, read: { value, config in
            guard let x = double(value) else { throw bad(value, "a number") }
            config[keyPath: path] = x
        })
    }

    private static func optionalNumber(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Double?>) -> Field {
        Field(key: key, write: { $0[keyPath: path].map(\.description) ?? "null" }, read: { value, config in
            if case .null = value { config[keyPath: path] = nil; return }
            guard let x = double(value) else { throw bad(value, "a number or null") }
            config[keyPath: path] = x
        })
    }

    private static func bool(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Bool>) -> Field {
        Field(key: key, write: { $0[keyPath: path] ? "true" : "false" }, read: { value, config in
            guard case .bool(let b) = value else { throw bad(value, "true or false") }
            config[keyPath: path] = b
        })
    }

    static let fields: [Field] = [
        string("model", \.model),
        optionalInt("towers", \.towers),
        optionalInt("classes", \.classes),
        Field(key: "input", write: { $0.input.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "null" },
              read: { value, config in
                  if case .null = value { config.input = nil; return }
                  guard case .array(let items) = value, items.count == 3, items.allSatisfy({ integer($0) != nil }) else {
                      throw bad(value, "[C, H, W] (three integers) or null")
                  }
                  config.input = items.map { integer($0)! }
              }),
        Field(key: "model_changes", write: { $0.modelChanges.map { $0.jsonString() } ?? "null" }, read: { value, config in
            if case .null = value { config.modelChanges = nil; return }
            do {
                config.modelChanges = try ModelVariant.parse(value)
            } catch let error as ConfigurationError {
                // The caller names the key; keep the switch's own name in the message.
                let sub = error.component.replacingOccurrences(of: "model_changes.", with: "")
                throw ConfigurationError(component: "", problem: sub == "model_changes" ? error.problem : "\(sub): \(error.problem)")
            }
        }),
        setting("init", \.initialisation),
        optionalString("weights", \.weights),
        Field(key: "seed", write: { "\($0.seed)" }, read: { value, config in
            guard case .number(let text) = value, let seed = UInt64(text) else {
                throw bad(value, "an integer in 0...\(UInt64.max)")
            }
            config.seed = seed
        }),
        string("data", \.data),
        setting("format", \.format),
        optionalInt("train_limit", \.trainLimit),
        optionalInt("holdout", \.holdout),
        Field(key: "holdout_seed", write: { $0.holdoutSeed.map { "\($0)" } ?? "null" }, read: { value, config in
            if case .null = value { config.holdoutSeed = nil; return }
            guard case .number(let text) = value, let seed = UInt64(text) else {
                throw bad(value, "an integer in 0...\(UInt64.max) or null")
            }
            config.holdoutSeed = seed
        }),
        setting("mean", \.mean),
        optionalNumber("scale", \.scale),
        optionalInt("crop_padding", \.cropPadding),
        bool("flip", \.flip),
        number("pca", \.pca),
        optionalInt("resize", \.resize),
        optionalInt("statistics_limit", \.statisticsLimit),
        int("epochs", \.epochs),
        int("batch", \.batch),
        number("lr", \.lr),
        number("lr_factor", \.lrFactor),
        setting("schedule", \.schedule),
        setting("sgd", \.sgd),
        number("momentum", \.momentum),
        number("weight_decay", \.weightDecay),
        int("threads", \.threads),
        optionalString("checkpoint", \.checkpoint),
        int("checkpoint_every", \.checkpointEvery),
        optionalString("log", \.log),
        int("log_every", \.logEvery),
        optionalInt("max_steps", \.maxSteps),
        optionalNumber("time_limit", \.timeLimit),
        bool("ten_crop", \.tenCrop),
    ]
}
