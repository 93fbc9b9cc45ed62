import XCTest
@testable import AlexNetKit

/// Asserts every gradient-check result is below `tolerance`, printing the worst one on failure.
func assertGradientsMatch(_ results: [GradientCheckResult], tolerance: Double = 1e-6,
                          file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(results.isEmpty, "no gradient was checked", file: file, line: line)
    for result in results {
        XCTAssertGreaterThan(result.checked, 0, "\(result.tensor): nothing checked", file: file, line: line)
        XCTAssertLessThan(result.maxRelativeError, tolerance, result.description, file: file, line: line)
    }
}

/// Asserts two tensors agree element-wise within `tolerance` (absolute).
func assertClose<T: TensorElement>(_ actual: Tensor<T>, _ expected: [T], tolerance: T,
                                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "element count", file: file, line: line)
    for (i, (a, e)) in zip(actual.storage, expected).enumerated() where !(abs(a - e) <= tolerance) {
        XCTFail("element \(i): \(a) != \(e) (tolerance \(tolerance))", file: file, line: line)
        return
    }
}

/// Runs `body` and returns the error it throws, failing the test if it does not throw.
func captureError<R>(_ body: () throws -> R, file: StaticString = #filePath, line: UInt = #line) -> Error? {
    do {
        _ = try body()
        XCTFail("expected an error", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

/// A Float32 tensor of uniform numbers in [-1, 1) from the seeded generator.
func randomFloatTensor(_ shape: Shape, seed: UInt64) -> Tensor<Float> {
    Tensor<Float>(converting: GradientCheck.randomUniform(shape: shape, seed: seed))
}
