import Foundation
import XCTest
@testable import AlexNetKit

/// The command line made even (issue 12): checkpoints wherever weights are
/// read, `train --weights`, one option name, negative numbers, output formats
/// by extension, `--version`, `check` exit 2 for every unusable trace.
final class CommandLineEvennessTests: XCTestCase {
    private var workspace: String!
    private var directory: URL { URL(fileURLWithPath: workspace) }

    override func setUpWithError() throws { workspace = try TrainingFixtures.makeWorkspace(name) }
    override func tearDownWithError() throws { TrainingFixtures.remove(workspace) }

    private let tiny = ["--model", "tiny.json", "--data", "data", "--batch", "8", "--seed", "7", "--threads", "2"]

    private func trainCheckpoint() throws -> String {
        let result = try CLI.run(["train"] + tiny + ["--max-steps", "3", "--checkpoint", "ck"], in: directory)
        XCTAssertEqual(result.status, 0, result.error)
        return "ck/last.safetensors"
    }

    /// A training checkpoint reads as weights in `weights convert`, `weights
    /// inspect --model` and `trace --weights`: its weights only, bit for bit.
    func testACheckpointIsAcceptedWhereverWeightsAreRead() throws {
        let checkpoint = try trainCheckpoint()
        let converted = try CLI.run(["weights", "convert", checkpoint, "--model", "tiny.json", "--names", "pytorch", "-o", "w.npz"],
                                    in: directory)
        XCTAssertEqual(converted.status, 0, converted.error)
        let stored = try TrainingCheckpoint.read(path: workspace + "/" + checkpoint)
        let exported = try NPZ.read(path: workspace + "/w.npz")
        XCTAssertEqual(exported.count, stored.weights.count)
        let inspected = try CLI.run(["weights", "inspect", checkpoint, "--model", "tiny.json"], in: directory)
        XCTAssertEqual(inspected.status, 0, inspected.error)
        XCTAssertFalse(inspected.output.contains("optimizer.velocity"), inspected.output)
        let traced = try CLI.run(["trace", "--model", "tiny.json", "--weights", checkpoint, "--batch", "2", "-o", "t.safetensors"],
                                 in: directory)
        XCTAssertEqual(traced.status, 0, traced.error)
        let trace = try Trace.read(path: workspace + "/t.safetensors")
        let conv1 = try XCTUnwrap(trace.tensors.first { $0.name == "param.conv1.weight" })
        let original = try XCTUnwrap(stored.weights.first { $0.name == "conv1.weight" })
        XCTAssertTrue(try conv1.floatTensor(as: Float.self).isBitwiseEqual(to: original.tensor))
    }

    /// `train --weights` starts from given weights: its first epoch's loss is
    /// that of the checkpoint's weights, not of a fresh initialisation.
    func testTrainStartsFromGivenWeights() throws {
        let checkpoint = try trainCheckpoint()
        let config = TrainingFixtures.configuration(workspace, towers: 2)
        var given = config
        given.weights = workspace + "/" + checkpoint
        given.maxSteps = 1
        let run = try TrainingRun(configuration: given)
        let stored = try TrainingCheckpoint.read(path: workspace + "/" + checkpoint)
        for (name, tensor) in stored.weights {
            XCTAssertTrue(try run.model.weights().first { $0.name == name }!.tensor.isBitwiseEqual(to: tensor), name)
        }
        XCTAssertTrue(try run.model.velocities().allSatisfy { $0.tensor.storage.allSatisfy { $0 == 0 } })
        let missing = try CLI.run(["train"] + tiny + ["--weights", "nothere.safetensors"], in: directory)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.error.contains("nothere.safetensors"), missing.error)
        XCTAssertFalse(missing.output.contains("computing the mean"), "the weights are read before the statistics pass")
    }

    func testOneInitOptionNameNegativeNumbersAndVersion() throws {
        for arguments in [["weights", "init", "--model", "tiny.json", "--init", "he", "-o", "w.safetensors"],
                          ["trace", "--model", "tiny.json", "--init", "he", "-o", "t"]] {
            XCTAssertEqual(try CLI.run(arguments, in: directory).status, 0, "\(arguments)")
        }
        let negative = try CLI.run(["train", "--lr", "-1"], in: directory)
        XCTAssertEqual(negative.status, 64)
        XCTAssertTrue(negative.error.contains("--lr must be positive and finite, got -1.0"), negative.error)
        let batch = try CLI.run(["train", "--batch", "-5"], in: directory)
        XCTAssertTrue(batch.error.contains("--batch must be in 1...65536, got -5"), batch.error)
        let version = try CLI.run(["--version"], in: directory)
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.output.trimmingCharacters(in: .whitespacesAndNewlines), AlexNetVersion.current)
    }

    func testOutputFormatsAreChosenByExtensionOrRefused() throws {
        let trace = try CLI.run(["trace", "--model", "tiny.json", "-o", "x.npz"], in: directory)
        XCTAssertEqual(trace.status, 64)
        XCTAssertTrue(trace.error.contains("-o x.npz: a trace is a .safetensors file or a directory"), trace.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/x.npz"))
        let grid = try CLI.run(["data", "grid", "data", "-o", "g.gif"], in: directory)
        XCTAssertEqual(grid.status, 64)
        XCTAssertTrue(grid.error.contains("--output g.gif: the grid is written as .jpg, .jpeg or .png"), grid.error)
        let mean = try CLI.run(["data", "mean", "data", "-o", "m.json"], in: directory)
        XCTAssertEqual(mean.status, 64)
        try NPY.write(StoredTensor(name: "x", tensor: try Tensor<Float>(shape: [2, 2], values: [1, 2, 3, .nan])), to: workspace + "/w.npy")
        let inspect = try CLI.run(["weights", "inspect", "w.npy"], in: directory)
        XCTAssertEqual(inspect.status, 0, inspect.error)
        XCTAssertTrue(inspect.output.contains("w"), inspect.output)
    }

    /// `--force`, `--quiet` and `--resize` are one declaration each (Sources/alexnet/SharedFlags.swift):
    /// every command that has one spells it the same and lists it once in its
    /// help, saying what it does there.
    func testSharedFlagsAreSpeltTheSameInEveryCommand() throws {
        let cases: [(command: [String], flags: [(flag: String, help: String)])] = [
            (["trace"], [("--force", "Replace the output if it exists."), ("--dtype <dtype>", "Element type: f32 or f64.")]),
            (["summary"], [("--dtype <dtype>", "Element type for byte counts: f32 or f64.")]),
            (["check"], [("--force", "Replace existing --report, --junit and --output files."),
                         ("--quiet", "Print only the verdict line.")]),
            (["train"], [("--force", "Replace an existing --log file"), ("--quiet", "Print only the epoch lines"),
                         ("--resize <resize>", "Rescale so the shorter side is this many pixels")]),
            (["experiment"], [("--force", "Start again any run whose folder holds other settings")]),
            (["weights", "init"], [("--force", "Replace the output file if it exists."),
                                    ("--dtype <dtype>", "Element type to write: f32 or f64")]),
            (["weights", "convert"], [("--force", "Replace the output file if it exists."),
                                    ("--dtype <dtype>", "Element type to write: f32 or f64")]),
            (["data", "grid"], [("--force", "Replace the --output file if it exists."),
                                ("--resize <resize>", "Rescale so the shorter side is this many pixels")]),
            (["data", "mean"], [("--force", "Replace the --output file if it exists."),
                                ("--resize <resize>", "Rescale so the shorter side is this many pixels")]),
        ]
        for (command, flags) in cases {
            let result = try CLI.run(["help"] + command, in: directory)
            XCTAssertEqual(result.status, 0, "\(command): \(result.error)")
            let lines = result.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            for (flag, help) in flags {
                let entries = lines.filter { $0.hasPrefix(flag + " ") }
                XCTAssertEqual(entries.count, 1, "\(command) \(flag): \(entries)")
                XCTAssertTrue(entries.first?.dropFirst(flag.count).trimmingCharacters(in: .whitespaces).hasPrefix(help) ?? false,
                              "\(command) \(flag): \(entries)")
            }
        }
        // --dtype reads the same values everywhere.
        for command in [["summary", "--model", "tiny.json"], ["weights", "init", "--model", "tiny.json", "-o", "w.safetensors"]] {
            let result = try CLI.run(command + ["--dtype", "f16"], in: directory)
            XCTAssertEqual(result.status, 64, "\(command): \(result.error)")
            XCTAssertTrue(result.error.contains("f16"), "\(command): \(result.error)")
        }
        // Each group keeps its check: --resize's cap is the same in train and data mean.
        for command in [["train"], ["data", "mean", "data", "-o", "m.npz"]] {
            let result = try CLI.run(command + ["--resize", "0"], in: directory)
            XCTAssertEqual(result.status, 64, "\(command): \(result.error)")
            XCTAssertTrue(result.error.contains("--resize must be in 1...8192, got 0"), "\(command): \(result.error)")
        }
    }

    /// `check` exits 2 for a trace it cannot use, whatever the reason; 1 only for a mismatch.
    func testCheckExitsTwoForEveryUnusableTrace() throws {
        let traced = try CLI.run(["trace", "--model", "tiny.json", "--batch", "2", "-o", "t.safetensors"], in: directory)
        XCTAssertEqual(traced.status, 0, traced.error)
        var (tensors, metadata) = try Safetensors.read(path: workspace + "/t.safetensors")
        // A parameter of the wrong shape: a weights error when the parameters load.
        let index = try XCTUnwrap(tensors.firstIndex { $0.name == "param.conv1.weight" })
        tensors[index] = StoredTensor(name: "param.conv1.weight", tensor: Tensor<Float>(shape: [1, 1, 1, 1]))
        try Safetensors.write(tensors, metadata: metadata, to: workspace + "/bad.safetensors")
        metadata["spec"] = "{"
        try Safetensors.write(tensors, metadata: metadata, to: workspace + "/badspec.safetensors")
        for file in ["bad.safetensors", "badspec.safetensors", "nothere.safetensors"] {
            let result = try CLI.run(["check", file], in: directory)
            XCTAssertEqual(result.status, 2, "\(file): \(result.error)")
            XCTAssertTrue(result.error.hasPrefix("error: "), result.error)
        }
    }
}

/// One function decides the data pipeline's defaults (PipelineDefaults).
final class PipelineDefaultsTests: XCTestCase {
    func testCommandsShareTheCropPaddingAndResizeDefaults() throws {
        XCTAssertEqual(PipelineDefaults.cropPadding(prepared: (28, 28), input: (28, 28)), 3)
        XCTAssertEqual(PipelineDefaults.cropPadding(prepared: (32, 32), input: (32, 32)), 4)
        XCTAssertEqual(PipelineDefaults.cropPadding(prepared: (256, 256), input: (227, 227)), 0)
        XCTAssertEqual(PipelineDefaults.resize(storedSize: nil, inputSide: 227), 256)
        XCTAssertEqual(PipelineDefaults.resize(storedSize: nil, inputSide: 64), 74)
        XCTAssertNil(PipelineDefaults.resize(storedSize: ImageSize(channels: 1, height: 28, width: 28), inputSide: 28))
        // `data grid` on 28x28 data shows what `train` trains on: padding 3, not 4.
        let workspace = try TrainingFixtures.makeWorkspace(name)
        defer { TrainingFixtures.remove(workspace) }
        let pixels = (0..<(8 * 28 * 28)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try DataFixtures.write(DataFixtures.idx(magic: IDX.imagesMagic, dims: [8, 28, 28], data: pixels),
                               to: workspace + "/data28/train-images-idx3-ubyte")
        try DataFixtures.write(DataFixtures.idxLabels((0..<8).map { UInt8($0 % 4) }), to: workspace + "/data28/train-labels-idx1-ubyte")
        let grid = try CLI.run(["data", "grid", "data28", "-o", "g.png", "--count", "4"], in: URL(fileURLWithPath: workspace))
        XCTAssertEqual(grid.status, 0, grid.error)
        XCTAssertTrue(grid.output.contains("random crop 28x28 (padding 3)"), grid.output)
    }
}

/// One exit code per kind of error: a bad value of an option with fixed values
/// exits 64 in every command, its first line naming the option and listing what
/// it accepts, and the option's help lists the same values (Docs/training.md).
final class OptionValueErrorTests: XCTestCase {
    func testABadEnumValueExits64NamingTheOptionAndItsValuesInEveryCommand() throws {
        let directory = FileManager.default.temporaryDirectory
        let cases: [(arguments: [String], option: String, values: [String])] = [
            (["train", "--sgd", "adam"], "--sgd", ["paper", "pytorch"]),
            (["train", "--format", "png"], "--format", ["auto", "cifar10", "idx", "folder"]),
            (["train", "--mean", "median"], "--mean", ["channel", "image", "none"]),
            (["train", "--init", "xavier"], "--init", ["paper", "he", "gaussian:S"]),
            (["train", "--schedule", "cosine"], "--schedule", ["constant", "step:K", "linear:E", "plateau:P"]),
            (["trace", "--model", "paper", "-o", "t", "--init", "xavier"], "--init", ["paper", "he", "gaussian:S"]),
            (["trace", "--model", "paper", "-o", "t", "--sgd", "adam"], "--sgd", ["paper", "pytorch", "none"]),
            (["trace", "--model", "paper", "-o", "t", "--mode", "eval"], "--mode", ["training", "inference"]),
            (["weights", "init", "--model", "paper", "-o", "w.safetensors", "--init", "xavier"], "--init", ["paper", "he", "gaussian:S"]),
            (["eval", "--weights", "w.safetensors", "--split", "val"], "--split", ["train", "test"]),
            (["data", "inspect", "d", "--format", "png"], "--format", ["auto", "cifar10", "idx", "folder"]),
            (["data", "mean", "d", "-o", "m.npz", "--split", "val"], "--split", ["train", "test"]),
            (["data", "grid", "d", "-o", "g.png", "--pca-magnitude", "big"], "--pca-magnitude", ["paper", "sd"]),
            (["bench", "--model", "paper", "--executor", "gpu"], "--executor", ["pool", "towers"]),
        ]
        for (arguments, option, values) in cases {
            let result = try CLI.run(arguments, in: directory)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.error)")
            let first = result.error.split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertTrue(first.contains("'\(option) <"), "\(arguments): \(first)")
            for value in values { XCTAssertTrue(first.contains("'\(value)'"), "\(arguments): \(first) lacks \(value)") }
            let help = try CLI.run(Array(arguments.prefix(arguments[0] == "weights" || arguments[0] == "data" ? 2 : 1)) + ["--help"],
                                   in: directory)
            XCTAssertTrue(Self.unwrapped(help.output).contains("values: " + values.joined(separator: ", ")), "\(arguments): \(help.output)")
        }
    }

    /// One `--threads` (WorkerThreadsOption): every command with it refuses 0
    /// the same way (exit 64, naming the option), before reading any file; the
    /// one-run commands share one help text and default, and the others
    /// (train, experiment, data bench) say how theirs differs.
    func testEveryThreadsOptionRefusesZeroAlikeAndOneRunCommandsShareTheHelp() throws {
        let directory = FileManager.default.temporaryDirectory
        let oneRun: [[String]] = [["bench", "--model", "paper"], ["check", "t.safetensors"], ["data", "inspect", "d"],
                                  ["data", "mean", "d", "-o", "m.npz"], ["eval", "--weights", "w.safetensors"], ["gradcheck"],
                                  ["trace", "--model", "paper", "-o", "t"], ["predict", "a.jpg", "--weights", "w.safetensors"]]
        let others: [([String], String)] = [(["train"], "resumed checkpoint's"), (["experiment", "e.json"], "divided by --jobs"),
                                            (["data", "bench", "d"], "to sweep")]
        for arguments in oneRun + others.map(\.0) {
            for value in ["0", "-3", "1025"] {
                let result = try CLI.run(arguments + ["--threads", value], in: directory)
                XCTAssertEqual(result.status, 64, "\(arguments) --threads \(value): \(result.error)")
                let first = result.error.split(separator: "\n").first.map(String.init) ?? ""
                XCTAssertEqual(first, "Error: --threads must be in 1...1024, got \(value)", "\(arguments)")
            }
        }
        let shared = "Worker threads (results are bitwise identical for any count). (default: one per core)"
        for arguments in oneRun {
            let command = Array(arguments.prefix(arguments[0] == "data" ? 2 : 1))
            let help = Self.unwrapped(try CLI.run(command + ["--help"], in: directory).output)
            XCTAssertTrue(help.contains("--threads <threads> " + shared), "\(command): \(help)")
        }
        for (arguments, difference) in others {
            let command = Array(arguments.prefix(arguments[0] == "data" ? 2 : 1))
            let help = Self.unwrapped(try CLI.run(command + ["--help"], in: directory).output)
            XCTAssertFalse(help.contains(shared), "\(command)")
            XCTAssertTrue(help.contains(difference), "\(command): \(help)")
        }
    }

    /// Train's help takes its defaults from the library, not from text typed by hand.
    func testTrainsHelpShowsTheLibrarysDefaults() throws {
        let help = Self.unwrapped(try CLI.run(["train", "--help"], in: FileManager.default.temporaryDirectory).output)
        let config = TrainingConfiguration()
        for value in ["\(config.sgd)", "\(config.initialisation)", "\(config.schedule)", "\(config.mean)", "\(config.epochs)"] {
            XCTAssertTrue(help.contains("(default: \(value))"), value)
        }
    }

    /// Help text with its line wrapping undone: every run of white space one space.
    private static func unwrapped(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
    }
}

/// Every command's help ends with examples.
final class HelpExamplesTests: XCTestCase {
    func testEveryCommandsHelpHasExamples() throws {
        let directory = FileManager.default.temporaryDirectory
        let commands: [[String]] = [[], ["gradcheck"], ["bench"], ["blas"], ["summary"], ["weights"], ["weights", "init"],
                                    ["weights", "convert"], ["weights", "inspect"], ["data"], ["data", "inspect"], ["data", "mean"],
                                    ["data", "grid"], ["data", "bench"], ["data", "make-test-folder"], ["trace"], ["check"],
                                    ["train"], ["eval"], ["predict"]]
        for command in commands {
            let help = try CLI.run(command + ["--help"], in: directory)
            XCTAssertEqual(help.status, 0, "\(command)")
            XCTAssertTrue(help.output.contains("Examples"), "alexnet \(command.joined(separator: " ")) --help has no examples")
            XCTAssertTrue(help.output.contains("  alexnet "), "\(command)")
        }
    }
}
