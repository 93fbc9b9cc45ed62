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
        `alexnet summary` (a model's layers, shapes, parameters and costs). `alexnet check`
        is the correctness oracle: it recomputes another implementation's training step
        from a trace (`alexnet trace` writes one) and compares every tensor.
        """,
        subcommands: [GradCheckCommand.self, BenchCommand.self, BLASCommand.self, SummaryCommand.self, WeightsCommand.self, DataCommand.self,
                      TraceCommand.self, CheckCommand.self, TrainCommand.self, EvalCommand.self, PredictCommand.self]
    )
}
