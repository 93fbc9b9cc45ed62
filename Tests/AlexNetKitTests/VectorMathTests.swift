import CVectorMath
import XCTest
@testable import AlexNetKit

/// LRN's `s^-0.75` a plane at a time (CVectorMath's vector square roots) against
/// the scalar expression `1 / (r * sqrt(r))`, `r = sqrt(s)`, bit for bit, for
/// every count up to 40 (every width's vector body, the narrower widths' leftovers
/// and the scalar tail), in Float and Double, at every vector width this CPU has.
final class InverseThreeQuartersTests: XCTestCase {
    func testPlaneEqualsTheScalarExpressionBitForBit() {
        check(Float.self) { s, out, count, _ in LRNPower<Float>.inverseThreeQuarters(s, into: out, count: count) }
        check(Double.self) { s, out, count, _ in LRNPower<Double>.inverseThreeQuarters(s, into: out, count: count) }
    }

    /// The baseline (SSE2 or NEON), AVX and AVX-512 loops, as far as this CPU
    /// has them: each gives the scalar expression's bits, so the results do not
    /// depend on which one a machine runs.
    func testEveryVectorWidthEqualsTheScalarExpressionBitForBit() {
        let available = Int(alexnet_vectormath_level())
        print("CVectorMath vector level on this CPU: \(available) (0 baseline, 2 AVX, 4 AVX-512)")
        for level: Int32 in [0, 2, 4] {
            var used = Set<Int32>()
            check(Float.self) { s, out, count, _ in used.insert(alexnet_inverse_three_quarters_f32_at(s, out, count, level)) }
            check(Double.self) { s, out, count, _ in used.insert(alexnet_inverse_three_quarters_f64_at(s, out, count, level)) }
            XCTAssertEqual(used, [min(level, Int32(available))], "level \(level) asked on a CPU of level \(available)")
        }
    }

    /// Values a plane of s can hold in LRN (s >= k > 0, from k = 2 up to large
    /// squares) and a few it cannot (tiny, subnormal, infinite, NaN), which must
    /// still give the scalar expression's bits at every width.
    private func check<T: TensorElement>(_: T.Type,
                                         _ run: (UnsafePointer<T>, UnsafeMutablePointer<T>, Int, Int) -> Void) {
        let special: [T] = [2, 1, T.leastNonzeroMagnitude, T.leastNormalMagnitude, 0, T.infinity, T.nan, 1e30]
        for count in 0...40 {
            var s = GradientCheck.randomUniform(shape: [count + 1], seed: 800 + UInt64(count)).storage
                .map { T(2 + 1000 * abs($0)) }
            for (i, value) in special.enumerated() where (count * 7 + i * 5) % (count + 1) < count {
                s[(count * 7 + i * 5) % (count + 1)] = value
            }
            var out = [T](repeating: -1, count: count + 1)
            s.withUnsafeBufferPointer { sp in
                out.withUnsafeMutableBufferPointer { op in run(sp.baseAddress!, op.baseAddress!, count, count) }
            }
            let expected = (0..<count).map { i -> T in
                let root = s[i].squareRoot()
                return 1 / (root * root.squareRoot())
            } + [-1]
            XCTAssertEqual(out.map(\.rawBits), expected.map(\.rawBits), "\(T.self) count \(count)")
        }
    }
}
