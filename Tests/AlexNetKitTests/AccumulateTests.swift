import XCTest
@testable import AlexNetKit

/// `Accumulate.add(_:into:count:)` against the scalar loop, bit for bit, for
/// every count up to five vectors: the main loop, the half- and quarter-vector
/// tail and the last scalar must each add the right elements exactly once.
final class AccumulateTests: XCTestCase {
    func testAddEqualsTheScalarLoopForEveryCount() {
        check(Float.self)
        check(Double.self)
    }

    private func check<T: TensorElement>(_: T.Type) {
        for count in 0...40 {
            let source = GradientCheck.randomUniform(shape: [count + 3], seed: 600 + UInt64(count)).storage.map { T($0) }
            let start = GradientCheck.randomUniform(shape: [count + 3], seed: 700 + UInt64(count)).storage.map { T($0) }
            var expected = start
            for i in 0..<count { expected[i + 1] += source[i + 2] }
            var actual = start
            source.withUnsafeBufferPointer { s in
                actual.withUnsafeMutableBufferPointer { t in
                    // Unaligned on both sides, with a guard element after the end.
                    Accumulate.add(s.baseAddress! + 2, into: t.baseAddress! + 1, count: count)
                }
            }
            XCTAssertEqual(actual.map(\.rawBits), expected.map(\.rawBits), "\(T.self) count \(count)")
        }
    }
}

