import XCTest
@testable import AlexNetKit

/// Files written by earlier versions still read, and writing what was read
/// gives back the same bytes: the committed experiment logs and analyses,
/// and a training checkpoint written before the metadata went through Codable.
final class CommittedFilesTests: XCTestCase {
    private var root: String { FormatFixtures.directory.replacingOccurrences(of: "/Fixtures/formats", with: "") }

    /// Every file under `folder` (relative to the root) whose name ends in `suffix`.
    private func files(under folder: String, endingIn suffix: String) -> [String] {
        let base = root + "/" + folder
        let names = FileManager.default.enumerator(atPath: base)?.compactMap { $0 as? String } ?? []
        return names.filter { $0.hasSuffix(suffix) }.sorted().map { base + "/" + $0 }
    }

    func testCommittedLogsReadAndTheirRecordsRewriteByteForByte() throws {
        let logs = files(under: "Docs/experiments/results", endingIn: ".jsonl") + files(under: "Docs/results", endingIn: ".jsonl")
        XCTAssertGreaterThanOrEqual(logs.count, 20)
        for path in logs {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let result = try RunResult.parse(log: text, run: ExperimentRun(arm: "a", seed: 0), source: path)
            XCTAssertFalse(result.epochs.isEmpty, path)
            for line in text.split(separator: "\n") {
                let decoder = StrictJSONDecoder(value: try JSONParser.parse(Array(line.utf8)))
                if line.contains("\"event\": \"epoch\"") {
                    XCTAssertEqual(try decoder.decode(EpochRecord.self).jsonLine(), String(line), path)
                } else if line.contains("\"event\": \"steps\"") {
                    XCTAssertEqual(try decoder.decode(StepsRecord.self).jsonLine(), String(line), path)
                } else if line.contains("\"event\": \"end\"") {
                    XCTAssertEqual(try decoder.decode(EndRecord.self).jsonLine(), String(line), path)
                }
            }
        }
    }

    func testCommittedAnalysesReadAndRewriteByteForByte() throws {
        let analyses = files(under: "Docs/experiments/results", endingIn: "analysis.json")
        XCTAssertGreaterThanOrEqual(analyses.count, 20)
        for path in analyses {
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
            let analysis = try RunAnalysis.parse(json: [UInt8](bytes), source: path)
            XCTAssertEqual(analysis.jsonString(), String(decoding: bytes, as: UTF8.self), path)
        }
    }

    /// Fixtures/checkpoints/tiny-v1.safetensors: two steps of the training
    /// tests' tiny run, written by the version whose metadata was built from strings.
    func testCommittedCheckpointReadsAndItsMetadataRewritesByteForByte() throws {
        let path = root + "/Fixtures/checkpoints/tiny-v1.safetensors"
        let (tensors, metadata) = try Safetensors.read(path: path)
        let checkpoint = try TrainingCheckpoint.decode(tensors: tensors, metadata: metadata, source: path)
        XCTAssertEqual(checkpoint.classNames, (0..<10).map(String.init))
        XCTAssertEqual(checkpoint.progress.step, 2)
        XCTAssertEqual(checkpoint.progress.epochImages, 16)
        XCTAssertNil(checkpoint.progress.bestValidationError)
        XCTAssertEqual(checkpoint.spec.name, "tiny-towers")
        XCTAssertEqual(TrainingCheckpoint.jsonText(checkpoint.classNames), metadata["class_names"])
        XCTAssertEqual(TrainingCheckpoint.jsonText(checkpoint.progress), metadata["progress"])
        XCTAssertEqual(checkpoint.spec.jsonString(), metadata["spec"])
        XCTAssertEqual(checkpoint.blasCore, "Zen")
        let fields = try StringMetadataDecoder(metadata).decode(CheckpointMetadata.self)
        XCTAssertEqual(try StringMetadataEncoder().encode(fields), metadata)
    }

    /// Damaged metadata values name the file, the key, the column and the problem.
    func testDamagedCheckpointMetadataIsLocated() throws {
        let path = root + "/Fixtures/checkpoints/tiny-v1.safetensors"
        let (tensors, metadata) = try Safetensors.read(path: path)
        func problem(_ key: String, _ value: String) -> String {
            var damaged = metadata
            damaged[key] = value
            do {
                _ = try TrainingCheckpoint.decode(tensors: tensors, metadata: damaged, source: "ck")
                return ""
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(problem("class_names", #"["a", 2]"#), "ck: ck (class_names): [1]: expected a string, got 2")
        XCTAssertEqual(problem("class_names", "[\"a\""), "ck: ck (class_names):1:5: invalid JSON: expected ',' or ']' after an array element, found end of input")
        let progress = metadata["progress"]!
        XCTAssertEqual(problem("progress", progress.replacingOccurrences(of: #""batch": 2"#, with: #""batch": -2"#)),
                       "ck: ck (progress):1:14: batch: must be a non-negative integer, got -2")
        XCTAssertEqual(problem("progress", progress.replacingOccurrences(of: #""epoch": 0, "#, with: "")),
                       "ck: ck (progress): epoch: missing: the checkpoint is damaged")
        XCTAssertEqual(problem("progress", progress.replacingOccurrences(of: #"}"#, with: #", "extra": 1}"#)).prefix(36),
                       "ck: ck (progress):1:252: extra: unkn")
        var withoutLog = metadata
        withoutLog["log"] = nil
        XCTAssertEqual("\(captureError { try TrainingCheckpoint.decode(tensors: tensors, metadata: withoutLog, source: "ck") }!)",
                       "ck: the checkpoint's metadata has no 'log'")
    }
}
