import Foundation

/// Writes an experiment's report into its output folder from the runs'
/// folders: `results.md` (the tables and the pictures), `results.csv` (per
/// arm and figure), `runs.csv` (per run), and the curves:
/// - `curves-train-error.png`, `curves-train-loss.png`: against epochs, from
///   the runs' steps (or epoch) lines, with the thresholds as dashed lines;
/// - `curves-train-error-seconds.png`: the same against training seconds;
/// - `curves-val-error.png`, `curves-val-loss.png`: per epoch.
///
/// Each arm has its colour; every seed is a thin line and the arm's mean
/// over its seeds (at the points all of them have) a thick one.
public enum ExperimentReport {
    /// The curve pictures, in the order `results.md` shows them.
    public static let curveFiles = ["curves-train-error.png", "curves-train-error-seconds.png", "curves-val-error.png",
                                    "curves-train-loss.png", "curves-val-loss.png"]

    /// Writes the report files; returns the table.
    /// - Throws: ``ConfigurationError`` for damaged run files; file errors.
    @discardableResult
    public static func write(_ output: ExperimentOutput) throws -> ExperimentTable {
        let results = try output.results()
        let classes = results.compactMap { $0.analysis?.classNames.count }.first ?? output.experiment.arms[0].configuration.classes ?? 10
        let chance = 1 - 1 / Double(max(1, classes))
        let table = ExperimentTable(experiment: output.experiment, results: results, chance: chance)
        func path(_ name: String) -> String { (output.path as NSString).appendingPathComponent(name) }
        try FileManager.default.createDirectory(atPath: output.path, withIntermediateDirectories: true)
        for (name, chart) in charts(output.experiment, results) {
            try PNG.write(chart.render(), to: path(name))
        }
        try OutputFiles.write(Array(table.csv().utf8), to: path("results.csv"))
        try OutputFiles.write(Array(table.runsCSV(chance: chance).utf8), to: path("runs.csv"))
        try OutputFiles.write(Array(markdown(output, table).utf8), to: path("results.md"))
        return table
    }

    /// The Markdown report: description, tables, curves, and each arm's first finished run's pictures.
    static func markdown(_ output: ExperimentOutput, _ table: ExperimentTable) -> String {
        let experiment = output.experiment
        var out = "# Experiment \(experiment.name)\n\n"
        if !experiment.description.isEmpty { out += experiment.description + "\n\n" }
        let finished = table.rows.reduce(0) { $0 + $1.finished }
        out += "\(finished) of \(experiment.runs.count) runs finished (\(experiment.arms.count) arms x \(experiment.seeds.count) seeds: "
            + experiment.seeds.map(String.init).joined(separator: ", ") + ").\n\n"
        out += table.markdown() + "\n## Curves\n\n"
        for file in curveFiles { out += "![\(file)](\(file))\n\n" }
        out += "## Pictures of each arm's first finished run\n\n"
        for arm in experiment.arms {
            guard let result = table.results.first(where: { $0.run.arm == arm.name && $0.isFinished }),
                  let analysis = result.analysis, !analysis.pictures.isEmpty else { continue }
            out += "### \(arm.name) (\(result.run.id))\n\n"
            if let colour = analysis.colourfulness {
                out += "conv1 colourfulness: " + colour.enumerated().map { String(format: "tower %d %.3f", $0.offset, $0.element) }
                    .joined(separator: ", ") + "\n\n"
            }
            for picture in analysis.pictures {
                out += "![\(arm.name) \(picture)](runs/\(result.run.id)/\(picture))\n\n"
            }
        }
        return out
    }

    /// The curve charts by file name.
    static func charts(_ experiment: ExperimentConfiguration, _ results: [RunResult]) -> [(String, LineChart)] {
        typealias Extract = (RunResult) -> [(x: Double, y: Double)]
        let trainError: Extract = { $0.curve.map { ($0.epochs, 100 * $0.trainError) } }
        let trainErrorSeconds: Extract = { $0.curve.map { ($0.seconds, 100 * $0.trainError) } }
        let trainLoss: Extract = { $0.curve.map { ($0.epochs, $0.trainLoss) } }
        let valError: Extract = { r in r.epochs.compactMap { e in e.validationTop1.map { (Double(e.epoch), 100 * $0) } } }
        let valLoss: Extract = { r in r.epochs.compactMap { e in e.validationLoss.map { (Double(e.epoch), $0) } } }
        let split = results.compactMap { $0.epochs.last?.validationSplit }.first ?? "test"
        let valName = split == "holdout" ? "validation (held out of the training split)" : "validation (the test split)"
        let thresholds = experiment.thresholds.map { (y: 100 * $0, label: String(format: "%g%%", 100 * $0)) }
        func chart(_ title: String, _ x: String, _ y: String, _ extract: Extract, lines: [(y: Double, label: String)] = []) -> LineChart {
            var chart = LineChart(title: "\(experiment.name): \(title)", xLabel: x, yLabel: y, series: series(experiment, results, extract))
            chart.referenceLines = lines
            return chart
        }
        return [
            ("curves-train-error.png", chart("training error (as trained)", "epochs", "training error %", trainError, lines: thresholds)),
            ("curves-train-error-seconds.png", chart("training error (as trained)", "training seconds", "training error %",
                                                     trainErrorSeconds, lines: thresholds)),
            ("curves-val-error.png", chart("\(valName) top-1 error", "epochs", "top-1 error %", valError)),
            ("curves-train-loss.png", chart("training loss (as trained)", "epochs", "cross-entropy", trainLoss)),
            ("curves-val-loss.png", chart("\(valName) loss", "epochs", "cross-entropy", valLoss)),
        ]
    }

    /// Per arm: a thin line per run and a thick line of their mean, in the arm's colour, named by the arm.
    static func series(_ experiment: ExperimentConfiguration, _ results: [RunResult],
                       _ extract: (RunResult) -> [(x: Double, y: Double)]) -> [ChartSeries] {
        var out: [ChartSeries] = []
        for (index, arm) in experiment.arms.enumerated() {
            let colour = RGB.palette(index)
            let runs = results.filter { $0.run.arm == arm.name }.map(extract).filter { !$0.isEmpty }
            for points in runs { out.append(ChartSeries(name: arm.name, colour: colour, points: points, thick: false)) }
            // The mean over runs at the points every run has (the same x in each: epoch ends, steps lines).
            if runs.count > 1 {
                let length = runs.map(\.count).min()!
                let mean = (0..<length).map { i in
                    (x: runs.map { $0[i].x }.reduce(0, +) / Double(runs.count), y: runs.map { $0[i].y }.reduce(0, +) / Double(runs.count))
                }
                out.append(ChartSeries(name: arm.name, colour: colour, points: mean, thick: true))
            } else if let only = runs.first {
                out[out.count - 1] = ChartSeries(name: arm.name, colour: colour, points: only, thick: true)
            }
        }
        return out
    }
}
