import Foundation
import XCTest
@testable import AlexNetKit

/// Runs the `alexnet` executable built beside the test bundle.
struct CLI {
    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    static var executable: URL? {
        var directory = Bundle(for: CLITests.self).bundleURL
        while directory.pathExtension == "xctest" || directory.lastPathComponent.hasSuffix(".xctest") {
            directory.deleteLastPathComponent()
        }
        let candidate = directory.appendingPathComponent("alexnet")
        return FileManager.default.isExecutableFile(atPath: candidate.path) ? candidate : nil
    }

    /// Runs `alexnet arguments` in `directory`; `environment` entries are set
    /// (a nil value removes the variable) over this process's environment.
    static func run(_ arguments: [String], in directory: URL, environment: [String: String?] = [:]) throws -> Result {
        guard let executable else { throw XCTSkip("the alexnet executable was not built beside the tests") }
        return try run(executable: executable, arguments, in: directory, environment: environment)
    }

    /// Runs any `executable` with `arguments` in `directory`, its standard output
    /// and error read separately; `environment` as in ``run(_:in:environment:)``.
    static func run(executable: URL, _ arguments: [String], in directory: URL,
                    environment: [String: String?] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            var merged = ProcessInfo.processInfo.environment
            for (key, value) in environment { merged[key] = value }
            process.environment = merged
        }
        process.currentDirectoryURL = directory
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                      error: String(decoding: error, as: UTF8.self))
    }
}

final class CLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func testSummaryOfThePaperNetStatesItsParameterCountAndCrossings() throws {
        let result = try CLI.run(["summary", "--model", "paper"], in: directory)
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("parameters:              60,965,224"), result.output)
        XCTAssertTrue(result.output.contains("crossing bytes/image:    242,688 forward, 242,688 backward"), result.output)
    }

    func testWeightsInitConvertInspectRoundTrip() throws {
        let initResult = try CLI.run(["weights", "init", "--model", "cifar-towers", "--seed", "3", "-o", "a.safetensors"], in: directory)
        XCTAssertEqual(initResult.status, 0, initResult.error)
        let convert = try CLI.run(["weights", "convert", "a.safetensors", "--model", "cifar-towers", "--names", "pytorch",
                                   "--layout", "towers", "-o", "b.npz"], in: directory)
        XCTAssertEqual(convert.status, 0, convert.error)
        XCTAssertTrue(convert.output.contains("read a.safetensors: native names, grouped layout"), convert.output)
        let inspect = try CLI.run(["weights", "inspect", "b.npz", "--model", "cifar-towers"], in: directory)
        XCTAssertEqual(inspect.status, 0, inspect.error)
        XCTAssertTrue(inspect.output.contains("loads into cifar-towers: pytorch names, towers layout"), inspect.output)

        // The same weights, whichever way they were written.
        let spec = try ModelZoo.spec(named: "cifar-towers", classes: nil, towers: nil, inputShape: nil)
        let a = try Network<Float>(spec: spec), b = try Network<Float>(spec: spec)
        try StateDict.load(try StateDict.read(path: directory.appendingPathComponent("a.safetensors").path), into: a, source: "a")
        try StateDict.load(try StateDict.read(path: directory.appendingPathComponent("b.npz").path), into: b, source: "b")
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertTrue(x.value.isBitwiseEqual(to: y.value), name)
        }
    }

    /// `weights init` and `weights convert` take the same output options
    /// (`WeightsOutputOptions`): `--dtype` chooses the element type written, `--force` replaces.
    func testWeightsInitAndConvertShareTheirOutputOptions() throws {
        let model = ["--model", "layers-80sec", "--input", "1,28,28"]
        let wide = try CLI.run(["weights", "init"] + model + ["--dtype", "f64", "-o", "w64.safetensors"], in: directory)
        XCTAssertEqual(wide.status, 0, wide.error)
        let narrow = try CLI.run(["weights", "convert", "w64.safetensors"] + model + ["--dtype", "f32", "-o", "w32.safetensors"],
                                 in: directory)
        XCTAssertEqual(narrow.status, 0, narrow.error)
        let again = try CLI.run(["weights", "convert", "w64.safetensors"] + model + ["--dtype", "f32", "-o", "w32.safetensors"],
                                in: directory)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.error.contains("--output w32.safetensors: exists; pass --force to replace it"), again.error)
        let forced = try CLI.run(["weights", "convert", "w64.safetensors"] + model + ["--dtype", "f32", "--force", "-o", "w32.safetensors"],
                                 in: directory)
        XCTAssertEqual(forced.status, 0, forced.error)
        let f64 = try StateDict.read(path: directory.appendingPathComponent("w64.safetensors").path)
        let f32 = try StateDict.read(path: directory.appendingPathComponent("w32.safetensors").path)
        XCTAssertTrue(f64.allSatisfy { $0.dtype == .float64 })
        XCTAssertTrue(f32.allSatisfy { $0.dtype == .float32 })
        // f64 to f32 rounds to nearest.
        let wideWeight = try XCTUnwrap(f64.first { $0.name == "conv1.weight" }).floatTensor(as: Double.self)
        let narrowWeight = try XCTUnwrap(f32.first { $0.name == "conv1.weight" }).floatTensor(as: Float.self)
        XCTAssertEqual(narrowWeight.storage, wideWeight.storage.map { Float($0) })
    }

    func testExistingOutputIsNotOverwrittenWithoutForce() throws {
        let path = directory.appendingPathComponent("keep.npz")
        try Data("precious".utf8).write(to: path)
        let result = try CLI.run(["weights", "init", "--model", "layers-80sec", "-o", "keep.npz"], in: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("--output keep.npz: exists; pass --force to replace it"), result.error)
        XCTAssertEqual(try String(contentsOf: path), "precious")
    }

    func testBadInputsGiveOneLineErrors() throws {
        let missing = try CLI.run(["weights", "inspect", "nothere.npz"], in: directory)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.error.contains("nothere.npz: no such file"), missing.error)
        let model = try CLI.run(["summary", "--model", "alexnet9000"], in: directory)
        XCTAssertEqual(model.status, 1)
        XCTAssertTrue(model.error.contains("unknown model 'alexnet9000'"), model.error)
        let option = try CLI.run(["summary", "--model", "paper", "--frobnicate"], in: directory)
        XCTAssertNotEqual(option.status, 0)
        XCTAssertTrue(option.error.contains("--frobnicate"), option.error)
        try Data("{\"name\": \"x\", \"colour\": 1}".utf8).write(to: directory.appendingPathComponent("bad.json"))
        let spec = try CLI.run(["summary", "--model", "bad.json"], in: directory)
        XCTAssertEqual(spec.status, 1)
        XCTAssertTrue(spec.error.contains("colour"), spec.error)
    }

    func testTorchvisionNamesAgreeWithTheZoosTable() throws {
        let spec = try ModelZoo.spec(named: "torchvision", classes: nil, towers: nil, inputShape: nil)
        let derived = StateDict.pytorchModuleNames(for: spec)
        for (layer, module) in ModelZoo.torchvisionStateDictNames {
            XCTAssertEqual(derived[layer], module, layer)
        }
        XCTAssertFalse(ModelZoo.torchvisionStateDictNames.isEmpty)
    }
}
