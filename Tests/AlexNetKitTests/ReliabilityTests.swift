import Foundation
import XCTest
@testable import AlexNetKit

/// The output policy (Docs/reliability.md): nothing existing replaced without
/// being asked, atomic writes that clean up after killed processes, a
/// file-size limit as an error, damaged checkpoints refused, the documented
/// caps on numbers, and Ctrl-C during training.
final class ReliabilityTests: XCTestCase {
    private var workspace: String!
    private var directory: URL { URL(fileURLWithPath: workspace) }

    override func setUpWithError() throws { workspace = try TrainingFixtures.makeWorkspace(name) }
    override func tearDownWithError() throws { TrainingFixtures.remove(workspace) }

    private func contents(_ name: String) -> String? {
        FileManager.default.contents(atPath: workspace + "/" + name).map { String(decoding: $0, as: UTF8.self) }
    }

    private func write(_ text: String, _ name: String) throws {
        try Data(text.utf8).write(to: directory.appendingPathComponent(name))
    }

    /// Runs `executable arguments` in the workspace; returns how it ended and its standard error.
    private func runProcess(_ executable: String, _ arguments: [String]) throws
    -> (reason: Process.TerminationReason, status: Int32, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus, error)
    }

    /// The PID of a process that has exited (and been reaped).
    private func deadPID() throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        return process.processIdentifier
    }

    // MARK: Atomic writes

    func testAWriteRemovesTemporaryFilesOfKilledProcessesOnly() throws {
        let dead = try deadPID()
        try write("partial", ".w.npy.partial-\(dead)-AbCdEf")
        try write("in progress", ".w.npy.partial-\(getpid())-XyZ123")
        try write("other file's", ".v.npy.partial-\(dead)-AbCdEf")
        try NPY.write(StoredTensor(name: "w", tensor: try Tensor<Float>(shape: [2], values: [1, 2])), to: workspace + "/w.npy")
        let names = try FileManager.default.contentsOfDirectory(atPath: workspace)
        XCTAssertFalse(names.contains(".w.npy.partial-\(dead)-AbCdEf"), "the dead process's temporary file stays")
        XCTAssertTrue(names.contains(".w.npy.partial-\(getpid())-XyZ123"), "a running process's temporary file was removed")
        XCTAssertTrue(names.contains(".v.npy.partial-\(dead)-AbCdEf"), "another file's temporaries are not this write's to remove")
        XCTAssertEqual(try NPY.read(path: workspace + "/w.npy").floatTensor(as: Float.self).storage, [1, 2])
    }

    /// Under `ulimit -f`, a write that does not fit is a one-line error naming
    /// the limit; the previous file is intact and no temporary file is left.
    func testAFileSizeLimitIsAnErrorThatKeepsThePreviousFile() throws {
        guard let executable = CLI.executable else { throw XCTSkip("the alexnet executable was not built beside the tests") }
        try write("precious", "w.safetensors")
        let (reason, status, error) = try runProcess("/bin/sh", [
            "-c", "ulimit -f 64; exec \"$0\" weights init --model layers-80sec -o w.safetensors --force", executable.path])
        XCTAssertEqual(reason, .exit, "killed by a signal: \(error)")
        XCTAssertEqual(status, 1, error)
        XCTAssertTrue(error.contains("w.safetensors: write failed: File too large (the file-size limit, ulimit -f)"), error)
        XCTAssertEqual(contents("w.safetensors"), "precious")
        let left = try FileManager.default.contentsOfDirectory(atPath: workspace).filter { $0.contains("partial") }
        XCTAssertEqual(left, [])
    }

    /// A directory trace replaced with --force is swapped in whole: the old
    /// one stays until the new one is complete, and nothing temporary remains.
    func testADirectoryTraceIsReplacedWhole() throws {
        let first = try CLI.run(["trace", "--model", "tiny.json", "--input-shape", "1,12,12", "--batch", "2", "-o", "t"], in: directory)
        XCTAssertEqual(first.status, 0, first.error)
        try write("mine", "t/extra.txt")
        let refused = try CLI.run(["trace", "--model", "tiny.json", "--input-shape", "1,12,12", "-o", "t"], in: directory)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.error.contains("--output t: exists; pass --force to replace it"), refused.error)
        XCTAssertEqual(contents("t/extra.txt"), "mine")
        let forced = try CLI.run(["trace", "--model", "tiny.json", "--input-shape", "1,12,12", "--batch", "3", "-o", "t", "--force"],
                                 in: directory)
        XCTAssertEqual(forced.status, 0, forced.error)
        XCTAssertNil(contents("t/extra.txt"))
        XCTAssertEqual(try Trace.read(path: workspace + "/t").tensors.first { $0.name == "input" }?.shape.dims.first, 3)
        let left = try FileManager.default.contentsOfDirectory(atPath: workspace).filter { $0.hasPrefix(".t.") }
        XCTAssertEqual(left, [])
    }

    // MARK: Nothing replaced without --force

    func testDataOutputsAreNotReplacedWithoutForce() throws {
        let made = try CLI.run(["data", "make-test-folder", "imgs", "--count", "4", "--size", "16"], in: directory)
        XCTAssertEqual(made.status, 0, made.error)
        try write("keep", "stats.npz")
        try write("keep", "grid.png")
        for arguments in [["data", "mean", "imgs", "--output", "stats.npz"], ["data", "grid", "imgs", "--output", "grid.png"]] {
            let refused = try CLI.run(arguments, in: directory)
            XCTAssertEqual(refused.status, 1, "\(arguments)")
            XCTAssertTrue(refused.error.contains("--output \(arguments[3] == "--output" ? arguments[4] : ""): exists; pass --force to replace it"),
                          refused.error)
            let forced = try CLI.run(arguments + ["--force"], in: directory)
            XCTAssertEqual(forced.status, 0, forced.error)
        }
        XCTAssertNotEqual(contents("stats.npz"), "keep")
        XCTAssertNotEqual(contents("grid.png"), "keep")
    }

    /// A directory the user cannot write in is named with the system's reason
    /// (never Foundation's raw error text). As root every directory is
    /// writable, so the commands then run as `nobody` through runuser.
    func testUnwritableDirectoriesAreNamedWithTheReason() throws {
        try FileManager.default.createDirectory(atPath: workspace + "/ro", withIntermediateDirectories: false)
        let made = try CLI.run(["data", "make-test-folder", "imgs", "--count", "2", "--size", "16"], in: directory)
        XCTAssertEqual(made.status, 0, made.error)
        chmod(workspace + "/ro", 0o555)
        chmod(workspace, 0o755)
        defer { chmod(self.workspace + "/ro", 0o755) }
        var prefix: [String] = []
        if getuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") else { throw XCTSkip("root without runuser") }
            prefix = ["/usr/sbin/runuser", "-u", "nobody", "--"]
        }
        guard let executable = CLI.executable else { throw XCTSkip("the alexnet executable was not built beside the tests") }
        for (arguments, expected) in [(["data", "grid", "imgs", "--output", "ro/g.png"], "--output ro/g.png: cannot write in ro: Permission denied"),
                                      (["data", "make-test-folder", "ro/x", "--count", "1"], "directory ro/x: cannot write in ro: Permission denied")] {
            let (_, status, error) = try runProcess(prefix.first ?? executable.path,
                                                    Array(prefix.dropFirst()) + (prefix.isEmpty ? [] : [executable.path]) + arguments)
            if error.contains("cannot access") || error.contains("Permission denied") && !error.contains("Error:") {
                throw XCTSkip("nobody cannot reach the test directory: \(error)")
            }
            XCTAssertEqual(status, 1, error)
            XCTAssertTrue(error.contains(expected), "\(arguments): \(error)")
            XCTAssertFalse(error.contains("NSCocoaErrorDomain"), error)
        }
    }

    func testMissingParentDirectoriesAreNamedNotCreated() throws {
        let cases: [([String], String)] = [
            (["data", "make-test-folder", "no/such/x", "--count", "1"], "directory no/such/x: the directory no/such does not exist"),
            (["weights", "init", "--model", "tiny.json", "--input", "1,12,12", "-o", "no/w.safetensors"],
             "--output no/w.safetensors: the directory no does not exist"),
            (["train", "--model", "tiny.json", "--data", "data", "--log", "no/log.jsonl"], "--log no/log.jsonl: the directory no does not exist"),
            (["train", "--model", "tiny.json", "--data", "data", "--checkpoint", "no/ck"], "--checkpoint no/ck: the directory no does not exist"),
        ]
        for (arguments, expected) in cases {
            let result = try CLI.run(arguments, in: directory)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.error)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments): \(result.error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/no"))
    }

    /// A new run refuses an existing log and another run's checkpoints
    /// (before preparing any data); `replacingOutputs` (`--force`) allows them;
    /// a resumed run may rewrite its own log and checkpoint directory.
    func testTrainingRefusesToReplaceAnotherRunsLogAndCheckpoints() throws {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.checkpoint = workspace + "/ck"
        config.log = workspace + "/log.jsonl"
        config.maxSteps = 2
        try TrainingRun(configuration: config).trainer.run()

        let logError = captureError { try TrainingRun(configuration: config) } as? ConfigurationError
        XCTAssertEqual(logError?.component, "log")
        XCTAssertEqual(logError?.problem, "\(workspace!)/log.jsonl: exists; pass --force to replace it")

        config.log = nil
        let checkpointError = captureError { try TrainingRun(configuration: config) } as? ConfigurationError
        XCTAssertEqual(checkpointError?.component, "checkpoint")
        XCTAssertTrue(checkpointError?.problem.contains("holds another run's checkpoint (last.safetensors); continue that run with "
                                                        + "--resume \(workspace!)/ck/last.safetensors") ?? false, "\(String(describing: checkpointError))")
        let before = FileManager.default.contents(atPath: workspace + "/ck/last.safetensors")
        XCTAssertEqual(FileManager.default.contents(atPath: workspace + "/ck/last.safetensors"), before)

        // Resuming writes its own directory and log without being asked.
        let resumed = try TrainingRun(resuming: workspace + "/ck/last.safetensors", change: { $0.maxSteps = 3 })
        XCTAssertEqual(try resumed.trainer.run(), .maxSteps)
        // ... but not another run's, given as a new checkpoint directory or log.
        try FileManager.default.createDirectory(atPath: workspace + "/other", withIntermediateDirectories: false)
        try write("x", "other/best.safetensors")
        try write("someone else's\n", "other.jsonl")
        let intoOther = captureError {
            try TrainingRun(resuming: self.workspace + "/ck/last.safetensors", change: { $0.checkpoint = self.workspace + "/other" })
        } as? ConfigurationError
        XCTAssertEqual(intoOther?.component, "checkpoint")
        let otherLog = captureError {
            try TrainingRun(resuming: self.workspace + "/ck/last.safetensors", change: { $0.log = self.workspace + "/other.jsonl" })
        } as? ConfigurationError
        XCTAssertEqual(otherLog?.component, "log")
        XCTAssertEqual(contents("other.jsonl"), "someone else's\n")

        config.log = workspace + "/log.jsonl"
        XCTAssertNoThrow(try TrainingRun(configuration: config, replacingOutputs: true))
        XCTAssertEqual(contents("log.jsonl"), "")
    }

    func testTrainCommandRefusesAnotherRunsCheckpointDirectoryWithoutForce() throws {
        let tiny = ["train", "--model", "tiny.json", "--data", "data", "--batch", "8", "--max-steps", "1", "--checkpoint", "ck"]
        XCTAssertEqual(try CLI.run(tiny, in: directory).status, 0)
        let refused = try CLI.run(tiny, in: directory)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.error.contains("--checkpoint ck: holds another run's checkpoint (last.safetensors); "
                                             + "continue that run with --resume ck/last.safetensors"), refused.error)
        XCTAssertEqual(try CLI.run(tiny + ["--force"], in: directory).status, 0)
    }

    // MARK: Damaged checkpoints

    private func writeCheckpoint() throws -> String {
        var config = TrainingFixtures.configuration(workspace, towers: 1)
        config.checkpoint = workspace + "/ck"
        config.maxSteps = 2
        try TrainingRun(configuration: config).trainer.run()
        return workspace + "/ck/last.safetensors"
    }

    /// Rewrites the checkpoint at `path` with `edit` applied to its tensors and metadata.
    private func damage(_ path: String, _ edit: (inout [StoredTensor], inout [String: String]) throws -> Void) throws {
        var (tensors, metadata) = try Safetensors.read(path: path)
        try edit(&tensors, &metadata)
        try Safetensors.write(tensors, metadata: metadata, to: path)
    }

    func testACheckpointWithANonFiniteTensorIsRefusedNamingItAndTheIndex() throws {
        let path = try writeCheckpoint()
        let cases: [(String, Double, String)] = [
            ("conv1.weight", .nan, "tensor 'conv1.weight' holds 1 non-finite value(s), the first nan at index [0, 0, 0, 1] (flat 1)"),
            ("optimizer.velocity.fc4.bias", .infinity, "tensor 'optimizer.velocity.fc4.bias' holds 1 non-finite value(s), the first +inf"),
            ("data.channel_mean", -.infinity, "tensor 'data.channel_mean' holds 1 non-finite value(s), the first -inf"),
        ]
        let original = try Safetensors.read(path: path)
        for (name, value, expected) in cases {
            try Safetensors.write(original.tensors, metadata: original.metadata, to: path)
            try damage(path) { tensors, _ in
                let index = try XCTUnwrap(tensors.firstIndex { $0.name == name })
                let position = name == "conv1.weight" ? 1 : 0
                if tensors[index].dtype == .float64 {
                    let values = try tensors[index].floatTensor(as: Double.self)
                    var storage = values.storage
                    storage[position] = value
                    tensors[index] = StoredTensor(name: name, tensor: try Tensor<Double>(shape: values.shape, values: storage))
                } else {
                    let values = try tensors[index].floatTensor(as: Float.self)
                    var storage = values.storage
                    storage[position] = Float(value)
                    tensors[index] = StoredTensor(name: name, tensor: try Tensor<Float>(shape: values.shape, values: storage))
                }
            }
            let error = captureError { try TrainingCheckpoint.read(path: path) }
            XCTAssertTrue("\(error.map { "\($0)" } ?? "")".contains(expected), "\(String(describing: error))")
            XCTAssertTrue("\(error.map { "\($0)" } ?? "")".hasSuffix("the checkpoint is damaged"))
            // The command line: eval and resume refuse it in one line, never "100% error".
            try JPEG.encode(Image8(width: 12, height: 12, channels: 1, pixels: [UInt8](repeating: 7, count: 144))).withUnsafeBufferPointer {
                _ = FileManager.default.createFile(atPath: workspace + "/x.jpg", contents: Data(buffer: $0))
            }
            for arguments in [["eval", "--weights", path, "--data", "data"], ["train", "--resume", path],
                              ["predict", "x.jpg", "--weights", path]] {
                let result = try CLI.run(arguments, in: directory)
                XCTAssertEqual(result.status, 1, "\(arguments): \(result.output)")
                XCTAssertTrue(result.error.contains(expected), "\(arguments): \(result.error)")
            }
        }
    }

    /// Integers at the edge of Int in a checkpoint's progress or config are
    /// refused with the key, never an overflow trap.
    func testACheckpointWithHugeCountsIsRefused() throws {
        let path = try writeCheckpoint()
        let original = try Safetensors.read(path: path)
        for key in ["epoch", "batch", "step", "epoch_correct", "epoch_images"] {
            try Safetensors.write(original.tensors, metadata: original.metadata, to: path)
            try damage(path) { _, metadata in
                metadata["progress"] = metadata["progress"]!.replacingOccurrences(
                    of: "\"\(key)\": [0-9]+", with: "\"\(key)\": 9223372036854775807", options: .regularExpression)
            }
            let text = captureError { try TrainingCheckpoint.read(path: path) }.map { "\($0)" } ?? ""
            XCTAssertTrue(text.contains("(progress):1:"), text)
            XCTAssertTrue(text.contains(": \(key): 9223372036854775807 is above the limit"), text)
            let result = try CLI.run(["train", "--resume", path], in: directory)
            XCTAssertEqual(result.status, 1, result.error)
        }
        for (key, expected) in [("batch", "batch: must be in 1...65536"), ("crop_padding", "crop_padding: must be in 0...4096")] {
            try Safetensors.write(original.tensors, metadata: original.metadata, to: path)
            try damage(path) { _, metadata in
                metadata["config"] = metadata["config"]!.replacingOccurrences(
                    of: "\"\(key)\": [0-9a-z]+", with: "\"\(key)\": 9223372036854775807", options: .regularExpression)
            }
            let text = captureError { try TrainingCheckpoint.read(path: path) }.map { "\($0)" } ?? ""
            XCTAssertTrue(text.contains(expected), text)
        }
    }

    // MARK: Numbers at the edge

    /// Every integer option at Int.max (and 2^31 for threads and sizes) is a
    /// one-line error naming the option, exit 64 or 1, never a trap or an abort.
    func testHugeNumbersOnTheCommandLineAreRefused() throws {
        let huge = "9223372036854775807"
        let cases: [[String]] = [
            ["train", "--batch", huge], ["train", "--crop-padding", huge], ["train", "--resize", "2147483648"],
            ["train", "--threads", "2147483648"], ["train", "--epochs", huge], ["train", "--max-steps", huge],
            ["train", "--holdout", huge], ["train", "--input", "1,2147483648,28"],
            ["data", "make-test-folder", "x", "--size", huge], ["data", "make-test-folder", "x", "--count", huge],
            ["data", "grid", "data", "--output", "g.png", "--zoom", huge], ["data", "mean", "data", "--output", "m.npz", "--resize", huge],
            ["data", "mean", "data", "--output", "m.npz", "--threads", "2147483648"],
            ["bench", "--model", "tiny.json", "--batch", huge], ["trace", "--model", "tiny.json", "--batch", huge, "-o", "t"],
            ["eval", "--weights", "w.safetensors", "--threads", huge],
        ]
        for arguments in cases {
            let result = try CLI.run(arguments, in: directory)
            XCTAssertTrue(result.status == 64 || result.status == 1, "\(arguments): status \(result.status) \(result.error)")
            let option = arguments.last { $0.hasPrefix("--") && $0 != "--output" && $0 != "-o" } ?? ""
            XCTAssertTrue(result.error.contains(option) && result.error.contains(" must be "), "\(arguments): \(result.error)")
        }
        for (key, cap) in [("batch", "1...65536"), ("crop_padding", "0...4096"), ("resize", "1...8192"), ("threads", "1...1024"),
                           ("epochs", "1...1000000"), ("holdout", "0...2147483648"), ("max_steps", "1...9007199254740992")] {
            try write(#"{"\#(key)": 9223372036854775807}"#, "run.json")
            let config = try CLI.run(["train", "--config", "run.json"], in: directory)
            XCTAssertEqual(config.status, 1)
            XCTAssertTrue(config.error.contains("run.json:1:2: \(key): must be in \(cap), got 9223372036854775807"), config.error)
        }
        try write(#"{"crop_padding": 9007199254740993}"#, "run.json")
        XCTAssertTrue(try CLI.run(["train", "--config", "run.json"], in: directory).error.contains("crop_padding: must be in 0...4096"))
    }

    func testTraceRefusesANonFiniteInputBatch() throws {
        let batch = try Tensor<Float>(shape: [1, 1, 12, 12], values: (0..<144).map { $0 == 5 ? .nan : Float($0) })
        try NPY.write(StoredTensor(name: "x", tensor: batch), to: workspace + "/x.npy")
        let result = try CLI.run(["trace", "--model", "tiny.json", "--input", "x.npy", "-o", "t"], in: directory)
        XCTAssertEqual(result.status, 1, result.error)
        XCTAssertTrue(result.error.contains("x.npy: the input batch: 1 non-finite value(s); first is nan at index [0, 0, 0, 5]"), result.error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/t"))
    }

    // MARK: Decompression bombs and huge models

    /// A 2 KB JPEG whose header claims 30000x30000 pixels is refused from its
    /// header, before libjpeg allocates anything for it.
    func testAJPEGClaimingAHugeSizeIsRefusedFromItsHeader() throws {
        var bytes = try JPEG.encode(Image8(width: 16, height: 16, channels: 3, pixels: [UInt8](repeating: 90, count: 768)))
        let sof = try XCTUnwrap((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        for offset in [sof + 5, sof + 7] { bytes[offset] = UInt8(30000 >> 8); bytes[offset + 1] = UInt8(30000 & 0xFF) }
        for decode in [{ _ = try JPEG.decode(bytes, source: "bomb.jpg") }, { _ = try JPEG.decodePlanar(bytes, source: "bomb.jpg") }] {
            let error = captureError(decode) as? ImageError
            XCTAssertEqual(error?.problem, "not a readable JPEG: the header claims 30000x30000 pixels, above the limit of 67108864 pixels")
        }
    }

    /// An .npz member claiming 10 GiB (in a ZIP64 field) is refused by the
    /// memory-derived limit, whatever its compression ratio.
    func testAnNpzMemberClaimingMoreThanTheDecompressionLimitIsRefused() throws {
        let tensors = [StoredTensor(name: "zeros", tensor: Tensor<Float>(shape: [4096]))]
        var bytes = try NPZ.encode(tensors, compressed: true, forceZip64: true, destination: "bomb.npz")
        let claimed = UInt64(10) << 30
        // The ZIP64 extra field (id 1) of the local header and of the directory entry: uncompressed size first.
        for signature: UInt32 in [0x0403_4B50, 0x0201_4B50] {
            let header = try XCTUnwrap((0..<(bytes.count - 4)).first { bytes.readLittleEndian(UInt32.self, at: $0) == signature })
            let fixed = signature == 0x0403_4B50 ? 30 : 46
            let nameLength = Int(bytes.readLittleEndian(UInt16.self, at: header + (signature == 0x0403_4B50 ? 26 : 28)))
            let extra = header + fixed + nameLength
            XCTAssertEqual(bytes.readLittleEndian(UInt16.self, at: extra), 1)
            bytes.storeLittleEndian(claimed, at: extra + 4)
        }
        let error = captureError { try NPZ.read(bytes: bytes, source: "bomb.npz") }.map { "\($0)" } ?? ""
        XCTAssertTrue(error.contains("claims 10737418240 bytes uncompressed, above the limit of \(InputLimits.decompressedBytes) bytes"), error)
        XCTAssertLessThanOrEqual(InputLimits.decompressedBytes, 1 << 32)
        XCTAssertLessThanOrEqual(UInt64(InputLimits.decompressedBytes), ProcessInfo.processInfo.physicalMemory / 4)
    }

    /// A gzipped IDX file is inflated only as far as its header promises: a
    /// header promising 8 GiB is refused before anything is inflated, and a
    /// stream that inflates far beyond a small header's promise stops just past it.
    func testAGzippedIDXBombIsRefusedFromItsHeader() throws {
        func bigEndian(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
        let labels = workspace + "/labels-idx1-ubyte"
        try Data([0, 0, 8, 1] + bigEndian(4) + [0, 1, 2, 3]).write(to: URL(fileURLWithPath: labels))
        let huge = [0, 0, 8, 3] + bigEndian(131_072) + bigEndian(256) + bigEndian(256) + [UInt8](repeating: 0, count: 1 << 16)
        try Data(Gzip.compress(huge)).write(to: URL(fileURLWithPath: workspace + "/huge.gz"))
        let promised = captureError { try IDXDataset(images: self.workspace + "/huge.gz", labels: labels) }.map { "\($0)" } ?? ""
        XCTAssertTrue(promised.contains("the header promises 8589934608 bytes, above the limit of"), promised)
        let small = [0, 0, 8, 3] + bigEndian(4) + bigEndian(2) + bigEndian(2) + [UInt8](repeating: 0, count: 8 << 20)
        try Data(Gzip.compress(small)).write(to: URL(fileURLWithPath: workspace + "/small.gz"))
        let inflated = captureError { try IDXDataset(images: self.workspace + "/small.gz", labels: labels) }.map { "\($0)" } ?? ""
        XCTAssertTrue(inflated.contains("inflates to more than 4128 bytes"), inflated)
        // Gigabytes of zeros (64 MiB here) hold no IDX header: refused from the first 16 inflated bytes.
        try Data(Gzip.compress([UInt8](repeating: 0, count: 64 << 20))).write(to: URL(fileURLWithPath: workspace + "/zeros.gz"))
        let zeros = captureError { try IDXDataset(images: self.workspace + "/zeros.gz", labels: labels) }.map { "\($0)" } ?? ""
        XCTAssertTrue(zeros.contains("not an IDX image file: magic number 0x00000000"), zeros)
    }

    func testGzipStopsAtTheDecompressionLimit() throws {
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 3 << 20))
        let error = captureError { try Gzip.decompress(bomb, source: "zeros.gz", limit: 1 << 20) }.map { "\($0)" } ?? ""
        XCTAssertTrue(error.contains("zeros.gz"), error)
        XCTAssertTrue(error.contains("inflates to more than 1048576 bytes (the limit on decompressed data)"), error)
        XCTAssertEqual(Gzip.defaultLimit, InputLimits.decompressedBytes)
    }

    /// A spec within every per-setting cap whose weights alone need more than
    /// the machine has is refused by name before anything is allocated, in
    /// `weights init`, `trace` and `train` (which checks it before the statistics pass).
    func testAModelTooLargeForTheMachineIsRefusedBeforeAllocating() throws {
        try write(#"{"name": "huge", "input": [4096, 8, 8], "layers": [{"name": "conv1", "type": "conv", "outputs": 16777216, "kernel": 3, "padding": 1}, {"name": "fc2", "type": "linear", "outputs": 10}]}"#, "huge.json")
        // 4096 x 2^24 x 9 conv weights and 2^30 x 10 linear ones: 4.6 TiB with gradients, beyond any machine this runs on.
        let expected = "model huge: 629229486090 parameters with their gradients needs 4688.1 GiB, more than half of this machine's"
        for arguments in [["weights", "init", "--model", "huge.json", "-o", "w.npz"], ["trace", "--model", "huge.json", "-o", "t"],
                          ["train", "--model", "huge.json", "--data", "data"]] {
            let result = try CLI.run(arguments, in: directory)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.error)")
            XCTAssertTrue(result.error.contains(expected), "\(arguments): \(result.error)")
            XCTAssertFalse(result.output.contains("computing the mean"), "\(arguments): \(result.output)")
        }
        let batch = try CLI.run(["bench", "--model", "paper", "--batch", "65536"], in: directory)
        XCTAssertEqual(batch.status, 1, batch.error)
        XCTAssertTrue(batch.error.contains("--batch 65536 images of model paper (outputs and gradients of every layer) needs "), batch.error)
    }

    // MARK: Fuzz harness

    /// The fuzz harness's seeds (valid files of all eleven formats) and every
    /// input in Fixtures/fuzz (inputs that once crashed or hung a parser) go
    /// through the parsers without a crash: each is parsed or refused.
    func testFuzzSeedsAndRegressionInputsParseOrAreRefused() throws {
        guard let harness = CLI.executable?.deletingLastPathComponent().appendingPathComponent("alexnet-fuzz"),
              FileManager.default.isExecutableFile(atPath: harness.path) else {
            throw XCTSkip("the alexnet-fuzz executable was not built beside the tests")
        }
        func run(_ arguments: [String]) throws -> (status: Int32, reason: Process.TerminationReason, output: String) {
            let process = Process()
            process.executableURL = harness
            process.arguments = arguments
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            try process.run()
            let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, process.terminationReason, output)
        }
        let seeds = try run(["seeds", workspace + "/seeds"])
        XCTAssertEqual(seeds.status, 0, seeds.output)
        let targets = try FileManager.default.contentsOfDirectory(atPath: workspace + "/seeds").sorted()
        XCTAssertEqual(targets, ["checkpoint", "cifar-dir", "cifar-tgz", "idx", "jpeg", "npy", "npz", "run-config", "safetensors",
                                 "spec", "trace"])
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/fuzz").path
        for target in targets {
            let seedFiles = try FileManager.default.contentsOfDirectory(atPath: workspace + "/seeds/" + target).sorted()
                .map { workspace + "/seeds/\(target)/" + $0 }
            let result = try run(["run", target] + seedFiles)
            XCTAssertEqual(result.reason, .exit, "\(target): \(result.output)")
            XCTAssertEqual(result.status, 0, "\(target): \(result.output)")
            XCTAssertEqual(result.output.components(separatedBy: ": parsed\n").count - 1, seedFiles.count, "\(target): \(result.output)")
            let regressions = ((try? FileManager.default.contentsOfDirectory(atPath: fixtures + "/" + target)) ?? [])
                .filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { fixtures + "/\(target)/" + $0 }
            guard !regressions.isEmpty else { continue }
            let replayed = try run(["run", target] + regressions)
            XCTAssertEqual(replayed.reason, .exit, "\(target): \(replayed.output)")
            XCTAssertEqual(replayed.status, 0, "\(target): \(replayed.output)")
        }
    }

    // MARK: Kills

    /// SIGKILL at three moments of a run (checkpointing every step), each
    /// followed by `--resume`: the final weights, velocities and log equal an
    /// uninterrupted run's bit for bit, and no temporary file of `last` or `best` is left.
    /// `ALEXNET_TEST_KILLS=N` asks for N kills (the longer run of Docs/reliability.md).
    func testKilledRunsResumeToTheUninterruptedWeights() throws {
        guard let executable = CLI.executable else { throw XCTSkip("the alexnet executable was not built beside the tests") }
        let wanted = ProcessInfo.processInfo.environment["ALEXNET_TEST_KILLS"].flatMap { Int($0) } ?? 3
        let epochs = 4 + wanted
        let run = ["--model", "tiny.json", "--data", "data", "--batch", "8", "--epochs", "\(epochs)", "--seed", "3",
                   "--checkpoint-every", "1", "--quiet"]
        let whole = try CLI.run(["train"] + run + ["--checkpoint", "whole"], in: directory)
        XCTAssertEqual(whole.status, 0, whole.error)

        let last = workspace + "/ck/last.safetensors"
        var kills = 0, finished = false
        for attempt in 0..<(wanted * 4 + 4) where !finished {
            let process = Process()
            process.executableURL = executable
            process.arguments = attempt == 0 ? ["train"] + run + ["--checkpoint", "ck"] : ["train", "--resume", "ck/last.safetensors", "--quiet"]
            process.currentDirectoryURL = directory
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let before = (try? FileManager.default.attributesOfItem(atPath: last)[.modificationDate]) as? Date
            try process.run()
            if kills < wanted {
                // Kill once this process has written a checkpoint of its own, a few milliseconds into the next step.
                let deadline = Date().addingTimeInterval(30)
                while process.isRunning && Date() < deadline {
                    let now = (try? FileManager.default.attributesOfItem(atPath: last)[.modificationDate]) as? Date
                    if now != nil && now != before { break }
                    usleep(2_000)
                }
                usleep(UInt32(1_000 * (kills % 7 + 1)))
                if process.isRunning { kill(process.processIdentifier, SIGKILL); kills += 1 }
            }
            process.waitUntilExit()
            finished = process.terminationReason == .exit && process.terminationStatus == 0
        }
        XCTAssertTrue(finished)
        XCTAssertEqual(kills, wanted, "the run finished before it could be killed \(wanted) times")
        let a = try TrainingCheckpoint.read(path: workspace + "/whole/last.safetensors")
        let b = try TrainingCheckpoint.read(path: last)
        XCTAssertEqual(a.progress.step, 6 * epochs)
        XCTAssertEqual(b.progress.step, 6 * epochs)
        for (x, y) in zip(a.weights + a.velocities, b.weights + b.velocities) {
            XCTAssertTrue(x.tensor.isBitwiseEqual(to: y.tensor), x.name)
        }
        XCTAssertEqual(TrainingFixtures.withoutTiming(a.log), TrainingFixtures.withoutTiming(b.log))
        let left = try FileManager.default.contentsOfDirectory(atPath: workspace + "/ck").filter { $0.contains(".partial-") }
        XCTAssertEqual(left, [], "temporary files of last or best left behind")
    }

    // MARK: Ctrl-C

    /// SIGINT during `train`: the step finishes, the checkpoint is written, the
    /// resume command is printed, exit 130; resuming finishes the run.
    func testInterruptWritesTheCheckpointAndPrintsTheResumeCommand() throws {
        guard let executable = CLI.executable else { throw XCTSkip("the alexnet executable was not built beside the tests") }
        let process = Process()
        process.executableURL = executable
        process.arguments = ["train", "--model", "tiny.json", "--data", "data", "--batch", "8", "--epochs", "1000",
                             "--checkpoint", "ck", "--checkpoint-every", "1", "--quiet"]
        process.currentDirectoryURL = directory
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let last = workspace + "/ck/last.safetensors"
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: last) && Date() < deadline && process.isRunning { usleep(20_000) }
        process.interrupt()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, error)
        XCTAssertEqual(process.terminationStatus, 130, error)
        XCTAssertTrue(error.contains("Ctrl-C: stopping after this step and writing the checkpoint; again to stop at once"), error)
        XCTAssertTrue(output.contains("resume with: alexnet train --resume ck/last.safetensors"), output)
        let step = try TrainingCheckpoint.read(path: last).progress.step
        let match = output.range(of: #"interrupted after step [0-9]+"#, options: .regularExpression).map { String(output[$0]) }
        XCTAssertEqual(match, "interrupted after step \(step)")
        let resumed = try CLI.run(["train", "--resume", "ck/last.safetensors", "--epochs", "\(step / 6 + 1)", "--quiet"], in: directory)
        XCTAssertEqual(resumed.status, 0, resumed.error)
    }
}
