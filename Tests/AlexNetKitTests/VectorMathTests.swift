import XCTest
@testable import AlexNetKit

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
