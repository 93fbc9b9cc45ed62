import AlexNetKit
import ArgumentParser

/// The `alexnet` command-line tool: one subcommand per file in this folder.
@main
struct AlexNetTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alexnet",
        abstract: "A CPU reference implementation of AlexNet (Krizhevsky, Sutskever, Hinton, 2012).",
        discussion: """
        Every layer runs forward and backward in Float32 or Float64, deterministically
        for any thread count. Start with `alexnet gradcheck` (every layer's gradient
        against finite differences), `alexnet bench` (speed on the paper's shapes) and
        `alexnet summary` (a model's layers, shapes, parameters and costs).
        """,
        subcommands: [GradCheckCommand.self, BenchCommand.self, WeightsCommand.self, SummaryCommand.self,
                      DataCommand.self, TrainCommand.self, EvalCommand.self, PredictCommand.self]
    )
}
