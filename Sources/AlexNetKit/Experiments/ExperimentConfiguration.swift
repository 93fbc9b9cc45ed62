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
        func fail(_ key: String, _ problem: String) -> ConfigurationError {
            ConfigurationError(component: key.isEmpty ? source : "\(source): \(key)", problem: problem)
        }
        let document: JSONValue
        do {
            document = try JSONParser.parse(json)
        } catch let error as JSONSyntaxError {
            throw ConfigurationError(component: "\(source):\(error.line):\(error.column)", problem: "invalid JSON: \(error.problem)")
        }
        guard case .object(let members) = document else {
            throw fail("", "an experiment is a JSON object with \"name\", \"base\", \"arms\", \"seeds\", got \(document.quoted)")
        }
        let known = ["name", "description", "base", "arms", "seeds", "thresholds"]
        var values: [String: JSONValue] = [:]
        for member in members {
            guard known.contains(member.key) else {
                throw fail(member.key, "unknown key; an experiment takes " + known.map { "\"\($0)\"" }.joined(separator: ", "))
            }
            values[member.key] = member.value
        }
        guard case .string(let name)? = values["name"], isFolderName(name) else {
            throw fail("name", "needs a name of letters, digits, '-', '_' and '.' (it names folders), got \(values["name"]?.quoted ?? "nothing")")
        }
        var description = ""
        if let value = values["description"] {
            guard case .string(let text) = value else { throw fail("description", "expected a string, got \(value.quoted)") }
            description = text
        }

        var base = TrainingConfiguration()
        if let value = values["base"] {
            try checkReserved(value, fail, where: "base")
            base = try TrainingConfiguration.parse(value: value, source: "\(source): base", onto: base)
        }
        base = resolvingPaths(base, against: directory)

        guard case .array(let armValues)? = values["arms"], !armValues.isEmpty else {
            throw fail("arms", "needs a non-empty array of arms, each {\"name\": ..., run-config keys...}")
        }
        var arms: [Arm] = []
        for (index, value) in armValues.enumerated() {
            let key = "arms[\(index)]"
            guard case .object(let armMembers) = value else { throw fail(key, "expected an object, got \(value.quoted)") }
            guard case .string(let armName)? = armMembers.first(where: { $0.key == "name" })?.value, isFolderName(armName) else {
                throw fail(key + ".name", "each arm needs a name of letters, digits, '-', '_' and '.'")
            }
            guard !arms.contains(where: { $0.name == armName }) else { throw fail(key + ".name", "a second arm called '\(armName)'") }
            try checkReserved(value, fail, where: key)
            var config = try TrainingConfiguration.parse(value: value, source: "\(source): \(key)", onto: base, ignoring: ["name"])
            config = resolvingPaths(config, against: directory, only: Set(armMembers.map(\.key)))
            let changed = armMembers.map(\.key).filter { $0 != "name" }
            let settings = armMembers.filter { $0.key != "name" }
            arms.append(Arm(name: armName, configuration: config, changedKeys: changed,
                            settingsText: settings.isEmpty ? "(base)" : JSONValue.object(settings).compactText))
        }

        guard case .array(let seedValues)? = values["seeds"], !seedValues.isEmpty else {
            throw fail("seeds", "needs a non-empty array of seeds (integers), e.g. [0, 1, 2]")
        }
        var seeds: [UInt64] = []
        for (index, value) in seedValues.enumerated() {
            guard case .number(let text) = value, let seed = UInt64(text) else {
                throw fail("seeds[\(index)]", "expected an integer in 0...\(UInt64.max), got \(value.quoted)")
            }
            guard !seeds.contains(seed) else { throw fail("seeds[\(index)]", "seed \(seed) appears twice") }
            seeds.append(seed)
        }

        var thresholds: [Double] = []
        if let value = values["thresholds"] {
            guard case .array(let items) = value else { throw fail("thresholds", "expected an array of error rates, got \(value.quoted)") }
            for (index, item) in items.enumerated() {
                guard case .number(let text) = item, let x = Double(text), x > 0 && x < 1 else {
                    throw fail("thresholds[\(index)]", "expected a training error rate in (0, 1) such as 0.15, got \(item.quoted)")
                }
                thresholds.append(x)
            }
        }
        return ExperimentConfiguration(name: name, description: description, arms: arms, seeds: seeds,
                                       thresholds: thresholds.sorted(by: >))
    }

    /// Whether `name` can name a folder on its own: letters, digits, `-`, `_`, `.`, not `.` or `..`.
    public static func isFolderName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100 && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    private static func checkReserved(_ value: JSONValue, _ fail: (String, String) -> ConfigurationError, where key: String) throws {
        guard case .object(let members) = value else { return }
        if let reserved = members.first(where: { reservedKeys.contains($0.key) }) {
            throw fail("\(key).\(reserved.key)", "the runner sets \(reserved.key) itself (seeds from \"seeds\", checkpoint and log "
                       + "in each run's folder); remove it")
        }
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
