import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet experiment`: the runs of an experiment file, each an independent
/// `alexnet experiment FILE --run ID` process with its own folder and
/// checkpoint, then the report (tables and pictures).
struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run an experiment: training runs that differ in some settings, several seeds each, then tables and pictures.",
        discussion: """
        The experiment file names a base run config, its arms (each a name and the run-config keys \
        it changes, such as "model_changes": {"activation": "tanh"}), the seeds and the training-error \
        thresholds (Docs/experiments.md). Every run is its own process working in \
        OUTPUT/runs/ARM/seed-S (config.json, log.jsonl, checkpoint/, analysis.json, pictures, \
        output.txt). Running the command again resumes the unfinished runs from their checkpoints \
        and skips the finished ones; Ctrl-C stops every run after its current step with its checkpoint \
        written. At the end, OUTPUT/results.md, results.csv, runs.csv and the curve pictures are written.

        To spread the runs over machines, run single runs with --run ARM/seed-S (or --run-index K, \
        from 1, for a Slurm job array), copy each machine's OUTPUT folder back, and write the report \
        with --report --merge DIR ... (Docs/experiments.md shows GNU parallel and Slurm).

        Examples (release build, 2 cores):
          alexnet experiment Docs/experiments/relu-vs-tanh.json --jobs 2
          alexnet experiment Docs/experiments/relu-vs-tanh.json --only tanh
          alexnet experiment Docs/experiments/relu-vs-tanh.json --list
          alexnet experiment Docs/experiments/relu-vs-tanh.json --run relu/seed-1
          alexnet experiment Docs/experiments/relu-vs-tanh.json --report --merge other-machine/relu-vs-tanh
        """
    )

    @Argument(help: "The experiment file (JSON).")
    var file: String

    @Option(name: [.customShort("o"), .long], help: "Output folder. (default: experiments/NAME, NAME from the file)")
    var output: String?

    @Option(help: "Runs at the same time.")
    var jobs: Int = 1

    // Not WorkerThreadsOption: the count is per run, and its default depends on --jobs.
    @Option(help: ArgumentHelp("\(WorkerThreadsOption.summary) Per run: --jobs runs at a time each get this many. "
            + "(default: the cores divided by --jobs, at least 1)"))
    var threads: Int?

    @Option(help: "Run only these arms (repeat the option or separate with commas).")
    var only: [String] = []

    @Option(help: "Use this data set for every run instead of the file's (CIFAR-10 users: their own copy).")
    var data: String?

    @Flag(help: "Print the runs (ARM/seed-S) and where each stands, then stop.")
    var list = false

    @Option(name: .customLong("run"), help: ArgumentHelp("Do only this run, in this process, without the report (for schedulers).",
                                                         valueName: "ARM/seed-S"))
    var runID: String?

    @Option(help: ArgumentHelp("Do only the K-th run of --list (from 1: $SLURM_ARRAY_TASK_ID).", valueName: "K"))
    var runIndex: Int?

    @Flag(help: "Do no training: merge --merge folders and write the report from the runs there are.")
    var report = false

    @Option(help: "Copy the finished runs of another output folder of this experiment (from another machine) into --output first.")
    var merge: [String] = []

    @OptionGroup var force: ForceFlag<ExperimentCommand>

    @Flag(help: ArgumentHelp("Started by the runner: ignore SIGINT (the runner stops runs with SIGTERM).", visibility: .hidden))
    var supervised = false

    /// The experiment's runs after `--only`.
    private func selectedRuns(_ experiment: ExperimentConfiguration) throws -> [ExperimentRun] {
        let names = only.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        for name in names where experiment.arm(named: name) == nil {
            throw CommandFailure(message: "--only \(name): the experiment \(experiment.name) has no such arm; its arms are "
                                 + experiment.arms.map(\.name).joined(separator: ", "))
        }
        return experiment.runs.filter { names.isEmpty || names.contains($0.arm) }
    }

    func validate() throws {
        try checkRange(jobs, 1...64, "--jobs")
        try WorkerThreadsOption.check(threads)
        try checkRange(runIndex, 1...1_000_000, "--run-index")
        if runID != nil && runIndex != nil { throw ValidationError("give --run or --run-index, not both") }
        if report && (runID != nil || runIndex != nil) { throw ValidationError("--report writes the report only; it does not take --run") }
    }

    func run() throws {
        var experiment = try ExperimentConfiguration.load(path: file)
        if let data {
            let absolute = Self.absolutePath(data)
            for index in experiment.arms.indices { experiment.arms[index].configuration.data = absolute }
        }
        let outputPath = output ?? "experiments/\(experiment.name)"
        let absoluteOutput = Self.absolutePath(outputPath)
        let out = ExperimentOutput(path: absoluteOutput, experiment: experiment)
        let cores = ProcessInfo.processInfo.activeProcessorCount

        if list {
            for (index, run) in experiment.runs.enumerated() {
                let state: String
                switch out.state(of: run) {
                case .notStarted: state = "not started"
                case .unfinished(let checkpoint): state = checkpoint == nil ? "started, no checkpoint yet" : "unfinished (resumes)"
                case .finished: state = "finished"
                }
                print("\(index + 1)\t\(run.id)\t\(state)")
            }
            return
        }
        if let id = runID ?? runIndex.map({ String($0) }) {
            let single: ExperimentRun
            if let index = runIndex {
                guard index <= experiment.runs.count else {
                    throw CommandFailure(message: "--run-index \(index): the experiment has \(experiment.runs.count) runs")
                }
                single = experiment.runs[index - 1]
            } else {
                single = try ExperimentRun(id: id)
            }
            try runOne(single, out: out, threads: threads ?? cores)
            return
        }

        try FileManager.default.createDirectory(atPath: absoluteOutput, withIntermediateDirectories: true)
        for folder in merge {
            let copied = try out.merge(from: folder)
            print("merged \(copied.count) finished run(s) from \(folder)" + (copied.isEmpty ? "" : ": " + copied.map(\.id).joined(separator: ", ")))
        }
        if !report {
            let selected = try selectedRuns(experiment)
            // Check every run's folder before any starts: a changed experiment file fails at once.
            for run in selected {
                try out.prepare(run, threads: threads ?? max(1, cores / jobs), restarting: force.isSet)
            }
            let status = try ExperimentSupervisor(output: out, file: file, data: data, jobs: jobs,
                                                  threads: threads ?? max(1, cores / jobs)).run(selected)
            if let signal = status.signal {
                _ = try? ExperimentReport.write(out)
                print("stopped by signal \(signal): run the same command again to resume the unfinished runs")
                throw ExitCode(128 + signal)
            }
            if !status.failed.isEmpty {
                _ = try? ExperimentReport.write(out)
                throw CommandFailure(message: "\(status.failed.count) run(s) failed: "
                                     + status.failed.map { "\($0.id) (see \(out.folder(of: $0))/\(ExperimentRun.outputFile))" }
                                         .joined(separator: ", "))
            }
        }
        let table = try ExperimentReport.write(out)
        let finished = table.rows.reduce(0) { $0 + $1.finished }
        print("report: \(absoluteOutput)/results.md (\(finished) of \(experiment.runs.count) runs finished)")
        for row in table.rows {
            print("  \(row.arm.name): \(row.finished)/\(row.runs) runs, test top-1 error \(row.testTop1.text(scale: 100))%")
        }
    }

    /// `path` against the working directory, `..` and `.` resolved: runs work in their own folders.
    private static func absolutePath(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return (joined as NSString).standardizingPath
    }

    /// One run in this process: training (new, or resumed from its checkpoint), then the analysis.
    private func runOne(_ run: ExperimentRun, out: ExperimentOutput, threads: Int) throws {
        if supervised { InterruptHandler.ignored.insert(SIGINT); signal(SIGINT, SIG_IGN) }
        let state = out.state(of: run)
        guard state != .finished || force.isSet else {
            print("\(run.id) is finished; its folder is \(out.folder(of: run)) (--force runs it again)")
            return
        }
        if force.isSet && !supervised && state != .notStarted { try FileManager.default.removeItem(atPath: out.folder(of: run)) }
        try out.prepare(run, threads: threads)
        let folder = out.folder(of: run)
        guard FileManager.default.changeCurrentDirectoryPath(folder) else {
            throw CommandFailure(message: "cannot enter \(folder)")
        }
        var arguments: [String]
        if case .unfinished(let checkpoint?) = out.state(of: run) {
            // The settings a resumed run may change come from the experiment file as it is now.
            let config = try out.experiment.configuration(for: run)
            arguments = ["--resume", checkpoint, "--threads", "\(threads)", "--epochs", "\(config.epochs)", "--data", config.data]
        } else {
            // A run killed before its first checkpoint starts again; its partial log goes.
            arguments = ["--config", ExperimentRun.configurationFile, "--threads", "\(threads)", "--force"]
        }
        let train = try TrainCommand.parse(arguments + ["--quiet"])
        try train.run()
        print("analysing \(run.id)")
        let analysis = try RunAnalyser.analyse(folder: folder, threads: threads, neighbours: run.seed == out.experiment.seeds[0],
                                               progress: { print($0) })
        print("\(run.id): test top-1 error \(String(format: "%.2f", 100 * analysis.testTop1))%; pictures "
              + analysis.pictures.joined(separator: ", "))
    }
}

extension ExperimentCommand: ForceHelp {
    static let forceHelp = "Start again any run whose folder holds other settings (or, with --run, the given run) instead of refusing."
}
