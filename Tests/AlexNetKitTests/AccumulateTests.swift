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

/// LRN's `s^-0.75` a plane at a time (CVectorMath's vector square roots) against
/// the scalar expression `1 / (r * sqrt(r))`, `r = sqrt(s)`, bit for bit, for
/// every count up to 20 (vector body and scalar tail), in Float and Double.
final class InverseThreeQuartersTests: XCTestCase {
    func testPlaneEqualsTheScalarExpressionBitForBit() {
        check(Float.self)
        check(Double.self)
    }

    private func check<T: TensorElement>(_: T.Type) {
        for count in 0...20 {
            let s = GradientCheck.randomUniform(shape: [count + 1], seed: 800 + UInt64(count)).storage
                .map { T(2 + 1000 * abs($0)) }
            var out = [T](repeating: -1, count: count + 1)
            s.withUnsafeBufferPointer { sp in
                out.withUnsafeMutableBufferPointer { op in
                    LRNPower<T>.inverseThreeQuarters(sp.baseAddress!, into: op.baseAddress!, count: count)
                }
            }
            let expected = (0..<count).map { i -> T in
                let root = s[i].squareRoot()
                return 1 / (root * root.squareRoot())
            } + [-1]
            XCTAssertEqual(out.map(\.rawBits), expected.map(\.rawBits), "\(T.self) count \(count)")
        }
    }
}
