import Foundation
import XCTest
@testable import AlexNetKit

/// Our own traces check clean; traces made under a wrong convention are caught
/// at the right tensor with the right diagnosis.
final class OracleCheckTests: XCTestCase {
    // MARK: Our own traces agree

    func testOwnTraceOfSmallNetAgreesInFloat32AndFloat64() throws {
        let spec = try OracleFixtures.smallPaperNet()
        let f32 = try Oracle.check(try OracleFixtures.trace(spec, Float.self))
        assertAgrees(f32)
        let f64 = try Oracle.check(try OracleFixtures.trace(spec, Double.self))
        assertAgrees(f64)
        // Everything the format defines is there, so nothing is absent, and our own
        // arithmetic reproduces itself bit for bit.
        XCTAssertEqual(f32.absent, [])
        for entry in f32.entries {
            XCTAssertEqual(entry.alone?.bitwiseEqual, entry.alone?.count, entry.name)
            XCTAssertEqual(entry.endToEnd?.bitwiseEqual, entry.endToEnd?.count, entry.name)
        }
    }

    func testOwnTraceIsBitExact() throws {
        let spec = try OracleFixtures.smallPaperNet()
        let report = try Oracle.check(try OracleFixtures.trace(spec, Float.self),
                                      options: OracleOptions(tolerances: TolerancePolicy(exact: true)))
        assertAgrees(report)
    }
}
