import XCTest
@testable import AlexNetKit

/// A trace's metadata through ``TraceMetadata`` and the string-metadata
/// adapter: every key written and read back, and each failure naming its key
/// and the value found.
final class TraceMetadataTests: XCTestCase {
    /// A version 1 network trace's metadata with every optional key set.
    private let version1: [String: String] = [
        "format": "alexnet-trace/1", "kind": "network", "dtype": "f64", "mode": "training", "spec": "{\"name\": \"n\"}",
        "sgd_form": "pytorch", "learning_rate": "0.01", "momentum": "0.9", "weight_decay": "0.0005",
        "towers": "2", "producer": "pytorch 2.3.0+cpu",
    ]

    private func decode(_ metadata: [String: String]) throws -> TraceMetadata {
        try StringMetadataDecoder(metadata).decode(TraceMetadata.self)
    }

    /// The failure decoding `metadata` gives, or nil.
    private func failure(_ metadata: [String: String], file: StaticString = #filePath, line: UInt = #line) -> StringMetadataFailure? {
        let error = captureError({ try decode(metadata) }, file: file, line: line)
        XCTAssertTrue(error == nil || error is StringMetadataFailure, "\(error!)", file: file, line: line)
        return error as? StringMetadataFailure
    }

    private func with(_ changes: [String: String?], _ base: [String: String]? = nil) -> [String: String] {
        var result = base ?? version1
        for (key, value) in changes { result[key] = value }
        return result
    }

    func testEveryKeyRoundTrips() throws {
        let read = try decode(version1)
        XCTAssertEqual(read.kind, .network)
        XCTAssertEqual(read.dtype, .float64)
        XCTAssertEqual(read.mode, .training)
        XCTAssertEqual(read.spec, "{\"name\": \"n\"}")
        XCTAssertNil(read.layer)
        XCTAssertEqual(read.sgd, TraceSGD(form: .pytorch, learningRate: 0.01, momentum: 0.9, weightDecay: 0.0005))
        XCTAssertEqual(read.towers, 2)
        XCTAssertEqual(read.producer, "pytorch 2.3.0+cpu")
        XCTAssertNil(read.steps)
        XCTAssertEqual(read.extra, [:])
        XCTAssertEqual(try StringMetadataEncoder().encode(read), version1)

        let layer = ["format": "alexnet-trace/1", "kind": "layer", "dtype": "f32", "mode": "inference",
                     "layer": "{\"name\": \"p\", \"type\": \"maxpool\", \"kernel\": 3, \"stride\": 2}"]
        XCTAssertEqual(try StringMetadataEncoder().encode(try decode(layer)), layer)
        XCTAssertEqual(try decode(layer).dtype.traceSpelling, "f32")
    }

    func testAMissingRequiredKeyIsNamedWithWhyItIsNeeded() {
        XCTAssertEqual(failure(with(["kind": nil])), StringMetadataFailure(key: "kind", problem: "missing; expected network or layer"))
        XCTAssertEqual(failure(with(["spec": nil]))?.key, "spec")
        XCTAssertEqual(failure(with(["momentum": nil])), StringMetadataFailure(
            key: "momentum", problem: "missing; the SGD settings come as a set: sgd_form, learning_rate, momentum, weight_decay"))
        // Through the trace: the file and `metadata 'key'`.
        let error = captureError { try Trace.decode(tensors: [], metadata: with(["format": nil]), source: "t.safetensors") }
        XCTAssertEqual(error as? TraceError, TraceError(file: "t.safetensors", subject: "metadata 'format'",
                                                        problem: "missing; a trace's metadata must say format = alexnet-trace/1 (Docs/oracle.md)"))
    }

    func testABadValueIsNamedWithTheValueFound() {
        XCTAssertEqual(failure(with(["dtype": "bf16"])), StringMetadataFailure(key: "dtype", problem: "expected f32 or f64, got 'bf16'"))
        XCTAssertEqual(failure(with(["learning_rate": "fast"])),
                       StringMetadataFailure(key: "learning_rate", problem: "expected a finite decimal number, got 'fast'"))
        XCTAssertEqual(failure(with(["momentum": "inf"]))?.problem, "expected a finite decimal number, got 'inf'")
        XCTAssertEqual(failure(with(["towers": "3"])), StringMetadataFailure(key: "towers", problem: "expected 1 or 2, got '3'"))
        XCTAssertEqual(failure(with(["sgd_form": "adam"]))?.problem, "expected paper or pytorch, got 'adam'")
        // Numbers may have spaces around them, as a hand-written metadata.json might.
        XCTAssertEqual(try decode(with(["learning_rate": " 0.02 "])).sgd?.learningRate, 0.02)
    }

    func testUnknownKeysAreKeptAndWrittenBack() throws {
        let metadata = with(["git_commit": "4d5a361", "notes": "fixed seed"])
        let read = try decode(metadata)
        XCTAssertEqual(read.extra, ["git_commit": "4d5a361", "notes": "fixed seed"])
        XCTAssertEqual(try StringMetadataEncoder().encode(read), metadata)
        // `towers = 1` says no per-tower tensors: read as none, and not written back.
        XCTAssertNil(try decode(with(["towers": "1"])).towers)
    }

    func testVersion1KeepsVersion2KeysAndVersion2ReadsThem() throws {
        let steps = ["steps": "3", "learning_rates": "0.01,0.005,0.0025"]
        let one = try decode(version1.merging(steps) { $1 })
        XCTAssertNil(one.steps)
        XCTAssertNil(one.learningRates)
        XCTAssertEqual(one.extra, steps)

        let twoMetadata = with(["format": "alexnet-trace/2", "towers": nil, "steps": "3", "learning_rates": "0.01,0.005,0.0025"])
        let two = try decode(twoMetadata)
        XCTAssertEqual(two.steps, 3)
        XCTAssertEqual(two.learningRates, [0.01, 0.005, 0.0025])
        XCTAssertEqual(two.extra, [:])
        XCTAssertEqual(try StringMetadataEncoder().encode(two), twoMetadata)

        XCTAssertEqual(failure(with(["steps": nil], twoMetadata))?.key, "steps")
        XCTAssertEqual(failure(with(["steps": "three"], twoMetadata))?.problem, "expected an integer in 1...10000, got 'three'")
        XCTAssertEqual(failure(with(["learning_rates": "0.01,x,0.0025"], twoMetadata))?.problem,
                       "expected 3 comma-separated finite numbers, got '0.01,x,0.0025'")
        XCTAssertEqual(failure(with(["towers": "2"], twoMetadata))?.key, "towers")
    }
}
