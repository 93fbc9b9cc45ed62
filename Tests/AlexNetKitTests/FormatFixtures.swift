import Foundation
import XCTest
@testable import AlexNetKit

/// The values in Fixtures/formats, stated literally. Fixtures/formats/make_format_fixtures.py
/// writes the same literals with numpy and safetensors; keep the two in step.
enum FormatFixtures {
    /// `Fixtures/formats` in this checkout, found from this file's path.
    static let directory: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/AlexNetKitTests/FormatFixtures.swift
        return parts.joined(separator: "/") + "/Fixtures/formats"
    }()

    static func path(_ relative: String) -> String { directory + "/" + relative }

    static func bytes(_ relative: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(relative)))) }

    static func named(_ tensor: StoredTensor, _ name: String) -> StoredTensor {
        var renamed = tensor
        renamed.name = name
        return renamed
    }

    static func float32(_ name: String, _ shape: Shape, _ values: [Float]) -> StoredTensor {
        StoredTensor(name: name, tensor: try! Tensor(shape: shape, values: values))
    }

    static func float64(_ name: String, _ shape: Shape, _ values: [Double]) -> StoredTensor {
        StoredTensor(name: name, tensor: try! Tensor(shape: shape, values: values))
    }

    static func ints<I: StoredInteger>(_ name: String, _ shape: Shape, _ values: [I]) -> StoredTensor {
        try! StoredTensor(name: name, shape: shape, integers: values)
    }

    static func bools(_ name: String, _ shape: Shape, _ values: [Bool]) -> StoredTensor {
        try! StoredTensor(name: name, shape: shape, bools: values)
    }

    /// `dtype_arrays()`: one array per dtype, named by it, in the script's order.
    static let dtypeTensors: [StoredTensor] = [
        float32("float32", [2, 3], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]),
        float64("float64", [3, 2], [0.0, 0.125, 1.0 / 3.0, -2.0, 1e300, -Double.leastNonzeroMagnitude]),
        ints("int8", [5], [-128, -1, 0, 1, 127] as [Int8]),
        ints("uint8", [2, 2], [0, 1, 254, 255] as [UInt8]),
        ints("int16", [4], [-32768, -1, 0, 32767] as [Int16]),
        ints("uint16", [2, 1], [0, 65535] as [UInt16]),
        ints("int32", [3], [-2_147_483_648, 0, 2_147_483_647] as [Int32]),
        ints("uint32", [2], [0, 4_294_967_295] as [UInt32]),
        ints("int64", [2, 2], [Int64.min, -1, 0, Int64.max]),
        ints("uint64", [2], [0, 9_223_372_036_854_775_807] as [UInt64]),
        bools("bool", [3], [true, false, true]),
    ]

    static func dtypeTensor(_ name: String) -> StoredTensor { dtypeTensors.first { $0.name == name }! }

    /// `extra_npy_arrays()`.
    static let extraNpyTensors: [StoredTensor] = [
        float64("scalar", [], [2.5]),
        float32("empty", [0, 3], []),
    ]

    /// `npz_arrays(compressed)`.
    static func npzTensors(compressed: Bool) -> [StoredTensor] {
        var tensors = [
            named(dtypeTensor("float32"), "weight"),
            float64("bias", [3], [0.5, -0.25, 4.0]),
            ints("labels", [4], [3, 1, 4, 1] as [Int64]),
            named(dtypeTensor("bool"), "mask"),
        ]
        if compressed { tensors.append(float32("zeros", [16, 16], [Float](repeating: 0, count: 256))) }
        return tensors
    }

    /// `model_tensors()`, in the order the reference writer lays them out
    /// (descending alignment, then name): the order a reader returns them in.
    static let modelTensors: [StoredTensor] = [
        ints("labels", [4], [3, 1, 4, 1] as [Int64]),
        named(dtypeTensor("float64"), "fc.weight"),
        float32("conv1.bias", [2], [0.5, -0.5]),
        float32("conv1.weight", [2, 1, 2, 2], [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75]),
        ints("index", [3], [7, -7, 0] as [Int32]),
        named(dtypeTensor("uint8"), "pixels"),
        bools("mask", [4], [true, false, false, true]),
    ]

    static let modelMetadata = ["format": "np"]

    /// Where a test writes the files `make_format_fixtures.py --verify` checks:
    /// `$ALEXNET_FORMATS_OUT/<subdirectory>` when that variable is set (kept for
    /// the script), otherwise a temporary directory removed after the test.
    static func verificationDirectory(_ subdirectory: String, for test: XCTestCase) throws -> String {
        guard let root = ProcessInfo.processInfo.environment["ALEXNET_FORMATS_OUT"] else {
            return try temporaryDirectory(for: test)
        }
        let directory = root + "/" + subdirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A fresh empty directory, removed after `test`.
    static func temporaryDirectory(for test: XCTestCase) throws -> String {
        let directory = NSTemporaryDirectory() + "alexnet-formats-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        return directory
    }
}

/// Runs `body`, which must throw a ``TensorFileError`` whose description names
/// `source` and contains every phrase; returns the error for further checks.
@discardableResult
func assertTensorFileError<R>(_ body: () throws -> R, source: String, _ phrases: String...,
                              file: StaticString = #filePath, line: UInt = #line) -> TensorFileError? {
    do {
        _ = try body()
        XCTFail("expected a TensorFileError mentioning \(phrases)", file: file, line: line)
        return nil
    } catch let error as TensorFileError {
        let text = error.description
        XCTAssertTrue(text.hasPrefix(source), "'\(text)' does not start with the file name \(source)", file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(text.contains(phrase), "'\(text)' does not contain '\(phrase)'", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("expected a TensorFileError, got \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}
