import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet gradcheck`: every layer's analytic gradients against central finite differences.
struct GradCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check every layer's gradients against finite differences in Float64.",
        discussion: """
        Each layer kind runs in the configurations AlexNet uses (grouped and split
        convolutions with stride and padding, LRN in the paper's and Caffe's alpha
        conventions near channel edges, overlapping max and average pooling with
        floor and ceil rounding, dropout with a fixed mask, softmax cross-entropy).
        The checked scalar is sum(output * R) for a random R; derivatives are central
        differences with h = 1e-5. Exits 1 if any relative error reaches 1e-6.
        
        Examples:
          alexnet gradcheck
          alexnet gradcheck --threads 2 --seed 5
        """
    )

    @Option(help: "Seed for weights, inputs and the projection.")
    var seed: UInt64 = 1

    @OptionGroup var workers: WorkerThreadsOption

    func run() throws {
        let cases = try LayerCheckSuite.run(seed: seed, pool: WorkerPool(workerCount: workers.count))
        let width = cases.map(\.description.count).max() ?? 10
        print("layer".padding(toLength: width, withPad: " ", startingAt: 0) + "  tensor                         checked  max rel. error")
        var failures = 0
        for testCase in cases {
            for (i, result) in testCase.results.enumerated() {
                let label = i == 0 ? testCase.description : ""
                let verdict = result.maxRelativeError < LayerCheckSuite.tolerance ? "" : "  FAIL"
                if !verdict.isEmpty { failures += 1 }
                print(label.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                      + result.tensor.padding(toLength: 30, withPad: " ", startingAt: 0)
                      + String(format: " %7d  %.3e", result.checked, result.maxRelativeError) + verdict)
            }
        }
        let worst = cases.map(\.worstError).max() ?? 0
        print(String(format: "%d layer configurations, worst relative error %.3e (bound %.0e): %@",
                     cases.count, worst, LayerCheckSuite.tolerance, failures == 0 ? "all pass" : "\(failures) FAIL"))
        if failures > 0 { throw ExitCode(1) }
    }
}
