import Foundation

/// An experiment: training runs that differ in one or more settings (the
/// arms), each repeated with several seeds, read from a JSON file
/// (Docs/experiments.md):
///
/// ```json
/// {
///   "name": "relu-vs-tanh",
///   "description": "Figure 1: ReLU reaches a training error target faster than tanh",
///   "base": {"model": "specs/four-layer.json", "epochs": 8, "lr": 0.02},
///   "arms": [
///     {"name": "relu"},
///     {"name": "tanh", "model_changes": {"activation": "tanh"}}
///   ],
///   "seeds": [0, 1, 2],
///   "thresholds": [0.15, 0.10]
/// }
/// ```
///
/// `base` and each arm hold run-config keys (``TrainingConfiguration``); an
/// arm's keys override the base's. `seed`, `checkpoint` and `log` belong to
/// the runner and may not appear. Relative paths (`model`, `weights`, `data`)
/// are relative to the experiment file's directory. `thresholds` are training
/// error rates (fractions) whose crossing epoch and time the table reports.
public struct ExperimentConfiguration: Equatable, Sendable {
    /// One arm: a name and its resolved run configuration (without seed, checkpoint and log).
    public struct Arm: Equatable, Sendable {
        /// Letters, digits, `-`, `_` and `.`: it names the arm's folder.
        public var name: String
        /// The base with the arm's keys applied.
        public var configuration: TrainingConfiguration
        /// The keys the arm sets (for the table's "what differs" column), in file order.
        public var changedKeys: [String]
        /// The arm's own JSON object as written, for the table (`{"model_changes": {"activation": "tanh"}}`).
        public var settingsText: String
    }

    /// The experiment's name (letters, digits, `-`, `_`, `.`).
    public var name: String
    /// What it tests, for the report.
    public var description: String
    /// The arms, in file order (the first is the reference of ratios).
    public var arms: [Arm]
    /// The seeds every arm runs with.
    public var seeds: [UInt64]
    /// Training-error thresholds (fractions in (0, 1)), highest first.
    public var thresholds: [Double]

    /// Keys the runner sets itself.
    public static let reservedKeys: Set<String> = ["seed", "checkpoint", "log"]

    /// Every run of the experiment, arm by arm, seed by seed: the order `--list` prints and Slurm array indices count in (from 1).
    public var runs: [ExperimentRun] {
        arms.flatMap { arm in seeds.map { ExperimentRun(arm: arm.name, seed: $0) } }
    }

    /// The arm called `name`.
    public func arm(named name: String) -> Arm? { arms.first { $0.name == name } }

    /// The complete configuration of one run: the arm's, with the seed, and
    /// the checkpoint and log inside the run's folder (relative to it: the
    /// run's process works in its folder, so the folder can move).
    public func configuration(for run: ExperimentRun) throws -> TrainingConfiguration {
        guard let arm = arm(named: run.arm) else {
            throw ConfigurationError(component: "run \(run.id)", problem: "the experiment \(name) has no arm '\(run.arm)'; its arms are "
                                     + arms.map(\.name).joined(separator: ", "))
        }
        guard seeds.contains(run.seed) else {
            throw ConfigurationError(component: "run \(run.id)", problem: "the experiment \(name) has no seed \(run.seed); its seeds are "
                                     + seeds.map(String.init).joined(separator: ", "))
        }
        var config = arm.configuration
        config.seed = run.seed
        config.checkpoint = ExperimentRun.checkpointFolder
        config.log = ExperimentRun.logFile
        return config
    }

    // MARK: Reading

    /// Reads an experiment file.
    /// - Throws: ``ConfigurationError`` naming the file and the key (`arms[1].lr`), for invalid JSON,
    ///   unknown or reserved keys, bad values, duplicate arm names or seeds.
    public static func load(path: String) throws -> ExperimentConfiguration {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ConfigurationError(component: path, problem: isDirectory.boolValue ? "is a directory, not an experiment file" : "no such file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(component: path, problem: "the file cannot be read (check its permissions)")
        }
        let directory = (OutputFiles.parent(of: path) as NSString).standardizingPath
        let absolute = directory.hasPrefix("/") ? directory : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(directory)
        return try parse(json: [UInt8](data), source: path, directory: (absolute as NSString).standardizingPath)
    }

    /// Reads an experiment from JSON; relative paths are taken relative to `directory`.
    public static func parse(json: [UInt8], source: String, directory: String) throws -> ExperimentConfiguration {
        try StrictJSONDecoder.decodeSettings(ExperimentConfiguration.self, from: json, source: source,
                                             userInfo: [directoryKey: directory])
    }

    /// The `userInfo` key of the directory relative paths are resolved against.
    static let directoryKey = CodingUserInfoKey(rawValue: "ExperimentConfiguration.directory")!

    /// Whether `name` can name a folder on its own: letters, digits, `-`, `_`, `.`, not `.` or `..`.
    public static func isFolderName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    /// The configuration with relative `model` (a spec path), `weights` and
    /// `data` made absolute against `directory`; with `only`, just those keys.
    static func resolvingPaths(_ config: TrainingConfiguration, against directory: String, only: Set<String>? = nil) -> TrainingConfiguration {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : ((directory as NSString).appendingPathComponent(path) as NSString).standardizingPath
        }
        var result = config
        let isSpecPath = config.model.hasSuffix(".json") || config.model.contains("/")
        if isSpecPath, only?.contains("model") ?? true { result.model = absolute(config.model) }
        if let weights = config.weights, only?.contains("weights") ?? true { result.weights = absolute(weights) }
        if only?.contains("data") ?? true { result.data = absolute(config.data) }
        return result
    }
}

/// One run of an experiment: an arm and a seed. Its folder is `runs/ARM/seed-S`.
public struct ExperimentRun: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The arm's name.
    public var arm: String
    /// The seed.
    public var seed: UInt64

    /// The run's checkpoint folder, relative to the run's folder.
    public static let checkpointFolder = "checkpoint"
    /// The run's JSON-lines log, relative to the run's folder.
    public static let logFile = "log.jsonl"
    /// The run's complete configuration, relative to the run's folder.
    public static let configurationFile = "config.json"
    /// What the analysis after training found (test confusion, conv1 colourfulness).
    public static let analysisFile = "analysis.json"
    /// What the run's process printed.
    public static let outputFile = "output.txt"

    /// An arm and a seed.
    public init(arm: String, seed: UInt64) {
        self.arm = arm
        self.seed = seed
    }

    /// `ARM/seed-S`: what `--list` prints and `--run` takes.
    public var id: String { "\(arm)/seed-\(seed)" }

    /// ``id``.
    public var description: String { id }

    /// The run's folder under an experiment's output folder.
    public func folder(in output: String) -> String {
        ((output as NSString).appendingPathComponent("runs") as NSString).appendingPathComponent(id)
    }

    /// Reads `ARM/seed-S`.
    /// - Throws: ``ConfigurationError`` for anything else.
    public init(id: String) throws {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix("seed-"), let seed = UInt64(parts[1].dropFirst(5)),
              ExperimentConfiguration.isFolderName(String(parts[0])) else {
            throw ConfigurationError(component: "run '\(id)'", problem: "a run is named ARM/seed-S, e.g. relu/seed-0 (alexnet experiment FILE --list prints them)")
        }
        self.init(arm: String(parts[0]), seed: seed)
    }
}

// MARK: - Decoding

extension ExperimentConfiguration: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, base, arms, seeds, thresholds
    }

    /// Reads an experiment object; relative paths resolve against `userInfo[directoryKey]`
    /// (the working directory without one).
    public init(from decoder: Decoder) throws {
        let directory = decoder.userInfo[Self.directoryKey] as? String ?? FileManager.default.currentDirectoryPath
        let c = try decoder.object(keyedBy: CodingKeys.self,
                                   expected: "expected an experiment: a JSON object with \"name\", \"base\", \"arms\", \"seeds\"")
        try decoder.refuseUnknownKeys(CodingKeys.self, what: "an experiment")
        let folderRule = "must be letters, digits, '-', '_' and '.' (it names folders)"
        name = try c.decode(String.self, forKey: .name, missing: "an experiment needs a name (it names folders)")
        guard Self.isFolderName(name) else { throw c.invalid(.name, folderRule) }
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""

        var base = TrainingConfiguration()
        if c.contains(.base) {
            let baseDecoder = try c.superDecoder(forKey: .base)
            try Self.refuseReservedKeys(baseDecoder)
            base = try TrainingConfiguration(from: baseDecoder, onto: base)
        }
        base = Self.resolvingPaths(base, against: directory)

        let armsRule = "expected a non-empty array of arms, each {\"name\": ..., run-config keys...}"
        guard c.contains(.arms) else {
            throw DecodingError.keyNotFound(CodingKeys.arms, .init(codingPath: c.codingPath, debugDescription: "missing: \(armsRule)"))
        }
        var armList: UnkeyedDecodingContainer
        do {
            armList = try c.nestedUnkeyedContainer(forKey: .arms)
        } catch DecodingError.typeMismatch {
            throw c.invalid(.arms, armsRule)
        }
        guard armList.count != 0 else { throw c.invalid(.arms, armsRule) }
        arms = []
        while !armList.isAtEnd {
            let armDecoder = try armList.superDecoder()
            let arm = try armDecoder.object(keyedBy: JSONKey.self, expected: "expected an arm: an object {\"name\": ..., run-config keys...}")
            let armName = try arm.decode(String.self, forKey: JSONKey("name"), missing: "each arm needs a name (it names folders)")
            guard Self.isFolderName(armName) else { throw arm.invalid(JSONKey("name"), folderRule) }
            guard !arms.contains(where: { $0.name == armName }) else {
                throw arm.invalid(JSONKey("name"), "a second arm called '\(armName)'; arm names must be unique")
            }
            try Self.refuseReservedKeys(armDecoder)
            let keys = arm.allKeys.map(\.stringValue)
            var config = try TrainingConfiguration(from: armDecoder, onto: base, ignoring: ["name"])
            config = Self.resolvingPaths(config, against: directory, only: Set(keys))
            var settings: [JSONValue.Member] = []
            if case .object(let members) = try armDecoder.singleValueContainer().decode(JSONValue.self) {
                settings = members.filter { $0.key != "name" }
            }
            arms.append(Arm(name: armName, configuration: config, changedKeys: keys.filter { $0 != "name" },
                            settingsText: settings.isEmpty ? "(base)" : JSONValue.object(settings).compactText))
        }

        let seedList = try c.decode([UInt64].self, forKey: .seeds, missing: "a non-empty array of seeds (integers), e.g. [0, 1, 2]")
        guard !seedList.isEmpty else { throw c.invalid(.seeds, "expected a non-empty array of seeds (integers), e.g. [0, 1, 2]") }
        for (index, seed) in seedList.enumerated() where seedList[..<index].contains(seed) {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.seeds, JSONKey(intValue: index)],
                                                    debugDescription: "seed \(seed) appears twice"))
        }
        seeds = seedList

        let thresholdList = try c.decodeIfPresent([Double].self, forKey: .thresholds) ?? []
        for (index, x) in thresholdList.enumerated() where !(x > 0 && x < 1) {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.thresholds, JSONKey(intValue: index)],
                                                    debugDescription: "expected a training error rate in (0, 1) such as 0.15"))
        }
        thresholds = thresholdList.sorted(by: >)
    }

    /// Refuses the keys the runner sets itself (``reservedKeys``) in a base or an arm.
    private static func refuseReservedKeys(_ decoder: Decoder) throws {
        guard let object = try? decoder.container(keyedBy: JSONKey.self) else { return }
        if let reserved = object.allKeys.first(where: { reservedKeys.contains($0.stringValue) }) {
            throw object.invalid(reserved, "the runner sets \(reserved.stringValue) itself (seeds from \"seeds\", checkpoint "
                                 + "and log in each run's folder); remove it")
        }
    }
}
