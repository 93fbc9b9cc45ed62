import Foundation
import XCTest
@testable import AlexNetKit

/// The PyTorch golden traces of Fixtures/oracle (made by Fixtures/oracle/make_traces.py):
/// our Float64 matches PyTorch's Float64 to 1e-10 relative, layer by layer and for
/// the whole step; our Float32 agrees within the default Float32 rule; the broken
/// references are caught at the tensor their README names, with the right diagnosis.
final class OracleFixtureTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/oracle")

    /// Every trace in `folder` (safetensors files and .npy directories), or a skip when the fixtures are absent.
    func traces(in folder: String) throws -> [String] {
        let directory = Self.root.appendingPathComponent(folder).path
        guard FileManager.default.fileExists(atPath: directory) else {
            throw XCTSkip("Fixtures/oracle/\(folder) is not in this checkout")
        }
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            .filter { $0.hasSuffix(".safetensors") || !$0.contains(".") }
            .map { directory + "/" + $0 }
    }

    /// The largest relative error (`|ours - ref| / (|ref| + RMS(ref))`) over every compared
    /// tensor, alone and end to end.
    func worstRelativeErrors(_ report: OracleReport) -> (alone: Double, endToEnd: Double) {
        var alone = 0.0, endToEnd = 0.0
        for entry in report.entries {
            if let c = entry.alone { alone = max(alone, c.shapesDiffer ? .infinity : c.maxRelativeError) }
            if let c = entry.endToEnd { endToEnd = max(endToEnd, c.shapesDiffer ? .infinity : c.maxRelativeError) }
        }
        return (alone, endToEnd)
    }

    /// The committed fixtures that leave out a group the default rule requires (to stay
    /// small, Fixtures/oracle/README.md), and the narrowing that checks what they hold.
    static let narrowed: [String: [CompareGroup]] = [
        // The same step as paper-narrow-f64-sgd-paper without forward.* (those are in that file).
        "paper-narrow-f64-sgd-pytorch.safetensors": [.loss, .gradScores, .grad, .updated],
        // SGD metadata but no updated.* (and no grad_input.*).
        "layers-18pct-f64-sgd-paper.safetensors": [.forward, .loss, .grad],
        // The broken variants record no SGD step: the fault is in the forward pass.
        "mini-towers-lrn-alpha-f64.safetensors": [.forward, .loss, .grad],
        "mini-towers-conv3-swap-f64.safetensors": [.forward, .loss, .grad],
        "mini-towers-pool-ceil-f64.safetensors": [.forward, .loss, .grad],
    ]

    func check(_ path: String) throws -> OracleReport {
        let compare = Self.narrowed[(path as NSString).lastPathComponent] ?? [.default]
        let report = try Oracle.check(path: path, options: OracleOptions(compare: compare))
        let worst = worstRelativeErrors(report)
        print("\((path as NSString).lastPathComponent): \(report.passed ? "agrees" : "MISMATCH"), \(report.entries.count) tensors, "
              + "max rel err alone \(OracleFormat.scientific(worst.alone)), end to end \(OracleFormat.scientific(worst.endToEnd))")
        return report
    }

    func testWholeNetworksAgreeFloat64To1e10AndFloat32WithinTheRule() throws {
        let paths = try traces(in: "net") + traces(in: "npy")
        XCTAssertFalse(paths.isEmpty)
        for path in paths {
            let report = try check(path)
            assertAgrees(report)
            XCTAssertFalse(report.entries.isEmpty, path)
            if report.dtype == .float64 {
                let worst = worstRelativeErrors(report)
                XCTAssertLessThan(worst.alone, 1e-10, path)
                XCTAssertLessThan(worst.endToEnd, 1e-10, path)
                // The whole step is there: forward or backward, and the SGD step where recorded.
                XCTAssertTrue(report.entries.contains { $0.role.phase == .backward }, path)
            }
            if report.entries.contains(where: { $0.role.tower != nil }) {
                XCTAssertTrue(report.entries.contains { $0.role.tower == 1 && $0.verdict == .agrees }, path)
            }
        }
    }

    func testEveryLayerAloneAgreesFloat64To1e10AndFloat32WithinTheRule() throws {
        let paths = try traces(in: "layers")
        XCTAssertFalse(paths.isEmpty)
        for path in paths {
            let report = try check(path)
            assertAgrees(report)
            XCTAssertEqual(report.kind, .layer, path)
            if report.dtype == .float64 {
                let worst = worstRelativeErrors(report)
                XCTAssertLessThan(worst.alone, 1e-10, path)
                XCTAssertLessThan(worst.endToEnd, 1e-10, path)
            }
        }
    }

    func testBrokenReferencesAreCaughtAtTheRightTensorWithTheRightDiagnosis() throws {
        let expected: [String: (tensor: String, finding: String)] = [
            "mini-towers-lrn-alpha-f64.safetensors": ("forward.lrn1", "lrn-alpha"),
            "mini-towers-conv3-swap-f64.safetensors": ("forward.conv3", "weight-halves-swapped"),
            "mini-towers-pool-ceil-f64.safetensors": ("forward.pool1", "pool-rounding"),
            "maxpool-floor-computed-ceil-f64.safetensors": ("forward.pool", "pool-rounding"),
        ]
        let paths = try traces(in: "broken")
        XCTAssertFalse(paths.isEmpty)
        for path in paths {
            let name = (path as NSString).lastPathComponent
            let report = try check(path)
            guard let (tensor, finding) = expected[name] else {
                XCTAssertFalse(report.passed, "\(name): a broken trace must not agree\n" + report.table())
                continue
            }
            assertFirstDivergence(report, tensor, finding: finding)
        }
    }
}
