import AlexNetKit
import ArgumentParser
import Foundation

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
        
        Examples:
          alexnet check Fixtures/oracle/net/paper-narrow-f32-sgd-paper-towers.safetensors
          alexnet train --epochs 1
          alexnet summary --model paper
          alexnet help train
        """,
        version: AlexNetVersion.current,
        subcommands: [GradCheckCommand.self, BenchCommand.self, BLASCommand.self, SummaryCommand.self, WeightsCommand.self, DataCommand.self,
                      TraceCommand.self, CheckCommand.self, TrainCommand.self, ExperimentCommand.self, EvalCommand.self, PredictCommand.self]
    )

    /// Parses and runs the command line with negative numbers accepted as
    /// option values (`--lr -1` reaches the option's check instead of reading
    /// as an unknown option).
    static func main() {
        let arguments = joiningNegativeValues(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            CommandErrors.exit(with: error)
        }
    }

    /// `["--batch", "-5"]` becomes `["--batch=-5"]`: a long option followed by a
    /// negative number takes it as its value. Nothing after `--` changes.
    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { result += arguments[index...]; break }
            if argument.hasPrefix("--"), !argument.contains("="), index + 1 < arguments.count,
               isNegativeNumber(arguments[index + 1]) {
                result.append(argument + "=" + arguments[index + 1])
                index += 2
                continue
            }
            result.append(argument)
            index += 1
        }
        return result
    }

    private static func isNegativeNumber(_ text: String) -> Bool {
        guard text.hasPrefix("-"), text.count > 1 else { return false }
        let rest = text.dropFirst()
        return Double(rest) != nil || rest.allSatisfy { $0.isNumber || $0 == "," || $0 == "." || $0 == "e" || $0 == "-" } && rest.first!.isNumber
    }
}
