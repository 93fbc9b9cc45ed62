import Foundation

/// Mean and spread of one figure over an arm's seeds.
public struct SeedSpread: Equatable, Sendable {
    /// The values, one per run that has the figure.
    public var values: [Double]

    /// Of the finite values in `values`.
    public init(_ values: [Double]) { self.values = values.filter(\.isFinite) }

    /// Runs with the figure.
    public var count: Int { values.count }
    /// The mean; nil without values.
    public var mean: Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
    /// The sample standard deviation (n - 1); nil below two values.
    public var standardDeviation: Double? {
        guard values.count >= 2, let mean else { return nil }
        return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
    }
    /// The smallest value.
    public var minimum: Double? { values.min() }
    /// The largest value.
    public var maximum: Double? { values.max() }

    /// `12.34 ± 0.56` (`scale` multiplies, e.g. 100 for percentages), `—` without values.
    public func text(scale: Double = 1, digits: Int = 2) -> String {
        guard let mean else { return "—" }
        let m = String(format: "%.\(digits)f", mean * scale)
        return standardDeviation.map { m + " ± " + String(format: "%.\(digits)f", $0 * scale) } ?? m
    }
}

/// The results of an experiment, aggregated per arm over its seeds: what the
/// Markdown and CSV tables show.
public struct ExperimentTable: Sendable {
    /// One arm's row.
    public struct Row: Sendable {
        /// The arm.
        public var arm: ExperimentConfiguration.Arm
        /// Runs in the experiment for this arm, and how many have finished.
        public var runs: Int
        /// Finished runs (with an end line).
        public var finished: Int
        /// Training error of the last epoch (as trained: augmentation and dropout on).
        public var finalTrainError: SeedSpread
        /// Validation top-1 error after the last epoch.
        public var finalValidationTop1: SeedSpread
        /// Which split validated (`holdout`, `test`, or `mixed`).
        public var validationSplit: String
        /// Test top-1 error at the end.
        public var testTop1: SeedSpread
        /// Test top-5 error at the end.
        public var testTop5: SeedSpread
        /// Training seconds of the whole run.
        public var trainingSeconds: SeedSpread
        /// Epochs trained.
        public var epochs: SeedSpread
        /// Per threshold (``ExperimentConfiguration/thresholds``): epochs and seconds to reach it, over the runs that did.
        public var toThreshold: [(epochs: SeedSpread, seconds: SeedSpread)]
        /// conv1 colourfulness per tower over the runs' analyses (RGB models only).
        public var colourfulness: [SeedSpread]
    }

    /// The experiment.
    public var experiment: ExperimentConfiguration
    /// One row per arm, in the experiment's order.
    public var rows: [Row]
    /// Every run's result that exists, arm by arm.
    public var results: [RunResult]

    /// Aggregates the runs' results. Unfinished runs count in ``Row/runs`` only.
    /// - Parameter chance: the training error before any training (`1 - 1/classes`), the curve's start for thresholds.
    public init(experiment: ExperimentConfiguration, results: [RunResult], chance: Double) {
        self.experiment = experiment
        self.results = results
        rows = experiment.arms.map { arm in
            let done = results.filter { $0.run.arm == arm.name && $0.isFinished }
            let splits = Set(done.compactMap { $0.epochs.last?.validationSplit ?? "test" })
            let towers = done.compactMap { $0.analysis?.colourfulness }.map(\.count).max() ?? 0
            return Row(arm: arm, runs: experiment.seeds.count, finished: done.count,
                       finalTrainError: SeedSpread(done.compactMap { $0.epochs.last?.trainError }),
                       finalValidationTop1: SeedSpread(done.compactMap { $0.epochs.last?.validationTop1 }),
                       validationSplit: splits.count == 1 ? splits.first! : splits.isEmpty ? "—" : "mixed",
                       testTop1: SeedSpread(done.compactMap { $0.end?.testTop1 }),
                       testTop5: SeedSpread(done.compactMap { $0.end?.testTop5 }),
                       trainingSeconds: SeedSpread(done.map(\.trainingSeconds)),
                       epochs: SeedSpread(done.map { Double($0.epochs.count) }),
                       toThreshold: experiment.thresholds.map { threshold in
                           let crossings = done.compactMap { $0.crossing(threshold, chance: chance) }
                           return (SeedSpread(crossings.map(\.epochs)), SeedSpread(crossings.map(\.seconds)))
                       },
                       colourfulness: (0..<towers).map { t in SeedSpread(done.compactMap { $0.analysis?.colourfulness?[t] }) })
        }
    }

    /// The Markdown report's tables: the arms, then each arm's ratio to the first
    /// for every threshold, then one line per run.
    public func markdown() -> String {
        var out = "| arm | settings | runs | epochs | final train error % | final val top-1 % | val split | test top-1 % | test top-5 % | train s |\n"
        out += "|---|---|---|---|---|---|---|---|---|---|\n"
        for row in rows {
            out += "| \(row.arm.name) | `\(row.arm.settingsText.replacingOccurrences(of: "|", with: "\\|"))` | \(row.finished)/\(row.runs) "
                + "| \(row.epochs.text(digits: 0)) | \(row.finalTrainError.text(scale: 100)) | \(row.finalValidationTop1.text(scale: 100)) "
                + "| \(row.validationSplit) | \(row.testTop1.text(scale: 100)) | \(row.testTop5.text(scale: 100)) "
                + "| \(row.trainingSeconds.text(digits: 0)) |\n"
        }
        out += "\nMean ± sample standard deviation over the finished seeds. Training error is as trained (augmentation and "
            + "dropout on); validation is the `val split` (`holdout`: examples held out of the training split); the test split "
            + "was evaluated once, after training.\n"
        if !experiment.thresholds.isEmpty {
            let reference = rows[0]
            out += "\n| arm | threshold (train error) | reached | epochs to it | seconds to it | epochs / \(reference.arm.name)'s | seconds / \(reference.arm.name)'s |\n"
            out += "|---|---|---|---|---|---|---|\n"
            for row in rows {
                for (index, threshold) in experiment.thresholds.enumerated() {
                    let mine = row.toThreshold[index], theirs = reference.toThreshold[index]
                    func ratio(_ a: SeedSpread, _ b: SeedSpread) -> String {
                        guard let x = a.mean, let y = b.mean, y > 0 else { return "—" }
                        return String(format: "%.2f", x / y)
                    }
                    out += "| \(row.arm.name) | \(String(format: "%g", 100 * threshold))% | \(mine.epochs.count)/\(row.finished) "
                        + "| \(mine.epochs.text()) | \(mine.seconds.text(digits: 0)) | \(ratio(mine.epochs, theirs.epochs)) "
                        + "| \(ratio(mine.seconds, theirs.seconds)) |\n"
                }
            }
            out += "\nEpochs and seconds (training only) at which the training error, measured over the images trained "
                + "since the previous log point, first reaches the threshold (linear interpolation between log points); "
                + "ratios are of the means.\n"
        }
        if rows.contains(where: { !$0.colourfulness.isEmpty }) {
            out += "\n| arm | conv1 colourfulness per tower |\n|---|---|\n"
            for row in rows where !row.colourfulness.isEmpty {
                out += "| \(row.arm.name) | " + row.colourfulness.enumerated().map { "tower \($0.offset): \($0.element.text(digits: 3))" }
                    .joined(separator: ", ") + " |\n"
            }
        }
        return out
    }

    /// One line per arm and figure: `arm,figure,split,count,mean,sd,min,max`
    /// (errors as fractions, times in seconds; empty where undefined).
    public func csv() -> String {
        var lines = ["arm,figure,split,count,mean,sd,min,max"]
        func add(_ arm: String, _ figure: String, _ split: String, _ s: SeedSpread) {
            let cells = [s.mean, s.standardDeviation, s.minimum, s.maximum].map { $0.map { "\($0)" } ?? "" }
            lines.append(([arm, figure, split, "\(s.count)"] + cells).joined(separator: ","))
        }
        for row in rows {
            let name = row.arm.name
            add(name, "epochs", "train", row.epochs)
            add(name, "final_train_error", "train", row.finalTrainError)
            add(name, "final_val_top1", row.validationSplit, row.finalValidationTop1)
            add(name, "test_top1", "test", row.testTop1)
            add(name, "test_top5", "test", row.testTop5)
            add(name, "train_seconds", "train", row.trainingSeconds)
            for (index, threshold) in experiment.thresholds.enumerated() {
                add(name, "epochs_to_train_error_\(threshold)", "train", row.toThreshold[index].epochs)
                add(name, "seconds_to_train_error_\(threshold)", "train", row.toThreshold[index].seconds)
            }
            for (tower, spread) in row.colourfulness.enumerated() { add(name, "conv1_colourfulness_tower\(tower)", "", spread) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line per run: `arm,seed,status,epochs,final_train_error,final_val_top1,val_split,test_top1,test_top5,train_seconds`
    /// and, per threshold, the epochs and seconds to it.
    public func runsCSV(chance: Double) -> String {
        let header = ["arm", "seed", "status", "epochs", "final_train_error", "final_val_top1", "val_split", "test_top1", "test_top5",
                      "train_seconds"] + experiment.thresholds.flatMap { ["epochs_to_\($0)", "seconds_to_\($0)"] }
        var lines = [header.joined(separator: ",")]
        for run in experiment.runs {
            guard let result = results.first(where: { $0.run == run }) else {
                lines.append(([run.arm, "\(run.seed)", "not started"] + Array(repeating: "", count: header.count - 3)).joined(separator: ","))
                continue
            }
            let last = result.epochs.last
            func text(_ x: Double?) -> String { x.map { "\($0)" } ?? "" }
            let status = result.isFinished ? "finished" : "unfinished"
            let split: String = last.map { $0.validationSplit ?? "test" } ?? ""
            var cells: [String] = [run.arm, "\(run.seed)", status, "\(result.epochs.count)"]
            cells += [text(last?.trainError), text(last?.validationTop1), split]
            cells += [text(result.end?.testTop1), text(result.end?.testTop5), "\(result.trainingSeconds)"]
            for threshold in experiment.thresholds {
                let crossing = result.crossing(threshold, chance: chance)
                cells += [crossing.map { "\($0.epochs)" } ?? "", crossing.map { "\($0.seconds)" } ?? ""]
            }
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
