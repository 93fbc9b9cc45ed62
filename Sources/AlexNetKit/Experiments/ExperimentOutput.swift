import Foundation

/// An experiment's output folder: one folder per run under `runs/ARM/seed-S`
/// (its `config.json`, `log.jsonl`, `checkpoint/`, `analysis.json`, pictures
/// and `output.txt`), and the report at the top (`results.md`, `results.csv`,
/// `runs.csv`, the curve pictures).
///
/// A run's state is read from its folder, so an interrupted experiment
/// resumes each unfinished run from its checkpoint, and folders made on
/// other machines merge by being copied in (``merge(from:)``).
public struct ExperimentOutput {
    /// Where a run stands.
    public enum RunState: Equatable, Sendable {
        /// No folder or no configuration yet.
        case notStarted
        /// Started: `checkpoint` is its `last.safetensors` when one was written.
        case unfinished(checkpoint: String?)
        /// The log has its end line (the test split was evaluated).
        case finished
    }

    /// The output folder.
    public let path: String
    /// The experiment.
    public let experiment: ExperimentConfiguration

    /// The output folder `path` of `experiment` (nothing is created yet).
    public init(path: String, experiment: ExperimentConfiguration) {
        self.path = path
        self.experiment = experiment
    }

    /// The run's folder.
    public func folder(of run: ExperimentRun) -> String { run.folder(in: path) }

    private func file(_ run: ExperimentRun, _ name: String) -> String {
        (folder(of: run) as NSString).appendingPathComponent(name)
    }

    /// Where `run` stands, from its folder. A run whose log ends after all its
    /// epochs is finished unless the experiment now asks for more epochs: then
    /// it continues from its last checkpoint (the end line goes, as the log is
    /// rewritten to the checkpoint's lines).
    public func state(of run: ExperimentRun) -> RunState {
        let fm = FileManager.default
        guard fm.fileExists(atPath: file(run, ExperimentRun.configurationFile)) else { return .notStarted }
        let last = file(run, ExperimentRun.checkpointFolder + "/last.safetensors")
        let checkpoint = fm.fileExists(atPath: last) ? last : nil
        if let result = try? RunResult.read(run: run, folder: folder(of: run)), let end = result.end {
            let wanted = (try? experiment.configuration(for: run))?.epochs ?? 0
            if end.reason == StopReason.epochs.rawValue, let done = end.epoch, done < wanted, checkpoint != nil {
                return .unfinished(checkpoint: checkpoint)
            }
            return .finished
        }
        return .unfinished(checkpoint: checkpoint)
    }

    /// Makes the run's folder and writes its `config.json` (the complete run
    /// configuration), unless the folder already holds the same configuration.
    /// - Parameter restarting: remove a folder whose configuration differs instead of refusing.
    /// - Returns: the path of `config.json`.
    /// - Throws: ``ConfigurationError`` when the folder holds a run with other
    ///   settings (the experiment file changed since it started): the message
    ///   names both and how to start again; file errors.
    @discardableResult
    public func prepare(_ run: ExperimentRun, threads: Int, restarting: Bool = false) throws -> String {
        var config = try experiment.configuration(for: run)
        config.threads = threads
        let configPath = file(run, ExperimentRun.configurationFile)
        let fm = FileManager.default
        if fm.fileExists(atPath: configPath) {
            let stored = try TrainingConfiguration.load(path: configPath)
            let changed = stored.resultChanges(from: config)
            if changed.isEmpty {
                // More epochs, another data path: the file says what the run does now.
                if stored.differences(from: config).contains(where: { $0 != "threads" }) {
                    try OutputFiles.write(Array(config.jsonString().utf8), to: configPath)
                }
                return configPath
            }
            guard restarting else {
                throw ConfigurationError(component: "run \(run.id)", problem: "\(folder(of: run)) holds this run with other settings ("
                                         + changed.joined(separator: ", ") + ": the experiment file changed since it started); "
                                         + "remove that folder, choose another --output, or pass --force to start it again")
            }
            try fm.removeItem(atPath: folder(of: run))
        }
        try fm.createDirectory(atPath: folder(of: run), withIntermediateDirectories: true)
        try OutputFiles.write(Array(config.jsonString().utf8), to: configPath)
        return configPath
    }

    /// Every run's result that has a log, in the experiment's order.
    /// - Throws: ``ConfigurationError`` for a damaged log or analysis.
    public func results() throws -> [RunResult] {
        try experiment.runs.compactMap { try RunResult.read(run: $0, folder: folder(of: $0)) }
    }

    /// Copies into this output the finished runs of another output folder (a
    /// copy of one made on another machine) that are not finished here: their
    /// whole folders, replacing unfinished ones. Runs of arms or seeds this
    /// experiment does not have are refused, as are folders whose configuration
    /// differs from this experiment's.
    /// - Returns: the runs copied.
    /// - Throws: ``ConfigurationError`` naming the folder and the run.
    @discardableResult
    public func merge(from other: String) throws -> [ExperimentRun] {
        let fm = FileManager.default
        let runsFolder = (other as NSString).appendingPathComponent("runs")
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: runsFolder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigurationError(component: "--merge \(other)", problem: "no runs/ folder: not an experiment's output folder")
        }
        let source = ExperimentOutput(path: other, experiment: experiment)
        var copied: [ExperimentRun] = []
        for arm in try fm.contentsOfDirectory(atPath: runsFolder).sorted() {
            let armFolder = (runsFolder as NSString).appendingPathComponent(arm)
            guard fm.fileExists(atPath: armFolder, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            for seedFolder in try fm.contentsOfDirectory(atPath: armFolder).sorted() {
                // Leftovers (a `.merging` copy, a user's notes) are not runs.
                guard let run = try? ExperimentRun(id: "\(arm)/\(seedFolder)") else { continue }
                guard source.state(of: run) == .finished else { continue }
                let expected = try experiment.configuration(for: run)
                let stored = try TrainingConfiguration.load(path: source.file(run, ExperimentRun.configurationFile))
                let changed = stored.resultChanges(from: expected)
                guard changed.isEmpty else {
                    throw ConfigurationError(component: "--merge \(other)", problem: "run \(run.id) was made with other settings ("
                                             + changed.joined(separator: ", ") + ") than this experiment file gives")
                }
                guard state(of: run) != .finished else { continue }
                try fm.createDirectory(atPath: (folder(of: run) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                // Copy beside, then swap in: an interrupted merge leaves the old folder or the new one.
                let staging = folder(of: run) + ".merging"
                try? fm.removeItem(atPath: staging)
                try fm.copyItem(atPath: source.folder(of: run), toPath: staging)
                if fm.fileExists(atPath: folder(of: run)) { try fm.removeItem(atPath: folder(of: run)) }
                try fm.moveItem(atPath: staging, toPath: folder(of: run))
                copied.append(run)
            }
        }
        return copied
    }
}
