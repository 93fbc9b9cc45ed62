import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet bench`: inference and training-step throughput of a model, and each layer's time.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model's inference and training step, and every layer forward and backward.",
        discussion: """
        Builds the model with seeded weights and random input, then times, each
        after warm-up passes and as the median (with min and max) of the
        repetitions:
          inference      the forward pass in inference mode;
          training step  forward in training mode (dropout on), the loss,
                         backward and the SGD update (the paper's form), as
                         `alexnet train` runs them;
          per layer      every layer of the grouped network alone, forward and
                         backward, with GFLOP/s of the matrix products (2 FLOP
                         per multiply-add) and the share of the time spent in
                         layers without one (ReLU, LRN, pooling, dropout).
        Also prints the OpenBLAS core that ran (Docs/performance.md) and the
        process's peak resident memory of the inference and training passes. --json prints one JSON object instead,
        as Docs/tools/compare_speed.py reads it.

        --executor pool runs the grouped network on one pool of --threads
        workers; --executor towers runs a two-tower spec on the two-tower
        executor, --threads / 2 workers per tower (bitwise the same results).

        Examples:
          alexnet bench --model paper --batch 128
          alexnet bench --model layers-80sec --input 1,28,28 --classes 10 --batch 128
          alexnet bench --model paper --executor towers --batch 32 --json
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Images per batch.")
    var batch: Int = 32

    @OptionGroup var workers: WorkerThreadsOption

    @Option(help: "pool (the grouped network on one pool) or towers (the two-tower executor).")
    var executor: Executor = .pool

    @Option(help: "Untimed passes before the timed ones.")
    var warmup: Int = 1

    @Option(help: "Timed repetitions of each measurement.")
    var repetitions: Int = 5

    @Flag(name: .customLong("no-layers"), help: "Skip the per-layer table (faster).")
    var noLayers = false

    @Flag(help: "Print the results as one JSON object.")
    var json = false

    enum Executor: String, ExpressibleByArgument, CaseIterable {
        case pool, towers
    }

    func validate() throws {
        try checkRange(batch, 1...InputLimits.batch, "--batch")
        guard (1...1000).contains(repetitions) else {
            throw ValidationError("--repetitions must be 1 to 1000, got \(repetitions)")
        }
        guard (0...1000).contains(warmup) else { throw ValidationError("--warmup must be 0 to 1000, got \(warmup)") }
    }

    func run() throws {
        let spec = try modelOptions.resolve()
        if executor == .towers && spec.towers != 2 {
            throw CommandFailure(message: "--executor towers needs a two-tower spec; \(spec.name) has \(spec.towers) "
                                 + "(--towers 2 makes one where the model allows)")
        }
        let settings = ThroughputBenchmark.Settings(
            batch: batch, threads: workers.count, towers: executor == .towers ? 2 : 1, warmup: warmup,
            repetitions: repetitions, perLayer: !noLayers)
        let benchmark = try ThroughputBenchmark(spec: spec, settings: settings)
        let quiet = json
        let result = try benchmark.run { line in
            if !quiet { FileHandle.standardError.write(Data(("  " + line + "\n").utf8)) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(
                positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(Self.table(result), terminator: "")
        }
    }

    /// The human-readable report.
    static func table(_ r: ThroughputBenchmark.Result) -> String {
        var lines: [String] = []
        let shape = r.input.map(String.init).joined(separator: "x")
        lines.append("\(r.model) \(shape), \(r.classes) classes, batch \(r.batch), f32, \(r.threads) thread(s), "
                     + (r.towers == 2 ? "two-tower executor" : "one pool"))
        lines.append("BLAS: OpenBLAS core \(BLAS.core); CPU \(r.cpu.isEmpty ? "unknown" : r.cpu)")
        lines.append("timing: \(r.warmup) warm-up, median (min-max) of \(r.repetitions) repetitions")
        func phase(_ name: String, _ p: ThroughputBenchmark.Result.Phase) -> String {
            String(format: "%@ %8.1f images/s (%.1f-%.1f), %.1f ms per batch", name,
                   p.imagesPerSecond.median, p.imagesPerSecond.min, p.imagesPerSecond.max,
                   p.secondsPerBatch.median * 1e3)
        }
        lines.append(phase("inference    ", r.inference))
        lines.append(phase("training step", r.trainingStep))
        lines.append(String(format: "  of which forward + loss + backward %.1f ms, SGD update %.1f ms",
                            r.forwardBackwardSeconds.median * 1e3, r.updateSeconds.median * 1e3))
        lines.append(String(format: "peak resident memory %.0f MB", Double(r.peakResidentBytes) / 1e6))
        if !r.layers.isEmpty {
            lines.append("")
            lines.append("layer      output shape          fwd ms   bwd ms   fwd GFLOP/s  bwd GFLOP/s")
            for layer in r.layers {
                let f = layer.forwardGflops.map { String(format: "%11.1f", $0) } ?? String(repeating: " ", count: 11)
                let b = layer.backwardGflops.map { String(format: "%11.1f", $0) } ?? String(repeating: " ", count: 11)
                lines.append(layer.name.padding(toLength: 10, withPad: " ", startingAt: 0) + " "
                             + layer.outputShape.description.padding(toLength: 20, withPad: " ", startingAt: 0)
                             + String(format: " %8.2f %8.2f", layer.forwardMs, layer.backwardMs) + "  " + f + "  " + b)
            }
            let forward = r.layers.reduce(0) { $0 + $1.forwardMs }, backward = r.layers.reduce(0) { $0 + $1.backwardMs }
            lines.append(String(format: "sum of layers: forward %.1f ms, backward %.1f ms", forward, backward))
            if let share = r.outsideMatrixLayersShare {
                lines.append(String(format: "layers without a matrix product: %.1f%% of forward, %.1f%% of forward + backward",
                                    share.forward * 100, share.trainingStep * 100))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
