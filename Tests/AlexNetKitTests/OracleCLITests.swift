import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import AlexNetKit

/// `alexnet trace` and `alexnet check` end to end: exit codes, the table, the
/// JSON and JUnit reports, and refusing to overwrite.
final class OracleCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try OracleFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// A trace whose LRN used Caffe's alpha/n while its spec says the paper's.
    func writeBrokenTrace(_ name: String) throws {
        let trace = try OracleFixtures.mislabelled(producedBy: try OracleFixtures.smallPaperNet(lrn: .caffe),
                                                   labelledAs: try OracleFixtures.smallPaperNet(lrn: .paper), Float.self)
        try trace.write(to: path(name))
    }

    /// The tower rule's edge specs (a first linear layer, a grouped first
    /// convolution, a single layer): `summary` accepts them, `trace
    /// --towers-tensors` runs them on the tower executor, and `check` agrees
    /// tower by tower.
    func testEdgeTowerSpecsTraceAndCheckTowerByTower() throws {
        let specs = [
            #"{"name": "first-linear", "input": [2, 4, 4], "towers": 2, "layers": [{"name": "fc1", "type": "linear", "outputs": 8}, {"name": "relu1", "type": "relu"}, {"name": "fc2", "type": "linear", "outputs": 4}]}"#,
            #"{"name": "grouped-first", "input": [2, 8, 8], "towers": 2, "layers": [{"name": "conv1", "type": "conv", "outputs": 4, "kernel": 3, "padding": 1, "groups": 2}, {"name": "relu1", "type": "relu"}, {"name": "fc2", "type": "linear", "outputs": 4}]}"#,
            #"{"name": "single", "input": [1, 3, 3], "towers": 2, "layers": [{"name": "fc1", "type": "linear", "outputs": 4}]}"#,
        ]
        for (index, json) in specs.enumerated() {
            try Data(json.utf8).write(to: directory.appendingPathComponent("s\(index).json"))
            XCTAssertEqual(try CLI.run(["summary", "--model", "s\(index).json"], in: directory).status, 0)
            let trace = try CLI.run(["trace", "--model", "s\(index).json", "--towers-tensors", "--batch", "3", "--init", "he",
                                     "-o", "t\(index).safetensors"], in: directory)
            XCTAssertEqual(trace.status, 0, "\(json): \(trace.error)")
            let check = try CLI.run(["check", "t\(index).safetensors"], in: directory)
            XCTAssertEqual(check.status, 0, "\(json): \(check.output) \(check.error)")
            XCTAssertTrue(check.output.contains("AGREE"), check.output)
        }
    }

    /// A broken dumper does not go green: a trace with nothing to compare, an
    /// unknown name in --tolerance, and the reports written for exit 2.
    func testABrokenDumperIsUnusableAndTheReportsSaySo() throws {
        let traced = try CLI.run(["trace", "--model", "layers-18pct", "--batch", "2", "-o", "t.safetensors"], in: directory)
        XCTAssertEqual(traced.status, 0, traced.error)
        let (tensors, metadata) = try Safetensors.read(path: path("t.safetensors"))
        let kept = tensors.filter { ["input", "labels"].contains($0.name) || $0.name.hasPrefix("param.") || $0.name.hasPrefix("mask.") }
        try Safetensors.write(kept + [StoredTensor(name: "forwrd.conv1", tensor: Tensor<Float>(shape: [1]))], metadata: metadata,
                              to: path("empty.safetensors"))
        let empty = try CLI.run(["check", "empty.safetensors", "--junit", "j.xml", "--report", "r.json"], in: directory)
        XCTAssertEqual(empty.status, 2, empty.output)
        // The default requires every forward.* (and the loss and gradients): each missing one is
        // named, and the misspelt forwrd.conv1 is pointed out as what it probably is.
        XCTAssertTrue(empty.error.contains("empty.safetensors: missing 29 required tensor(s): forward.conv1, forward.pool1,"), empty.error)
        XCTAssertTrue(empty.error.contains("ignored names that look misspelt: forwrd.conv1 (forward.conv1?)"), empty.error)
        XCTAssertTrue(empty.error.contains("--compare present compares whatever the trace holds"), empty.error)
        let junit = try String(contentsOfFile: path("j.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("errors=\"1\"") && junit.contains("<error message=\"empty.safetensors: missing 29 required"), junit)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("r.json")))) as? [String: Any]
        XCTAssertEqual(report?["exit_status"] as? Int, 2)
        // Asked to compare whatever is there, it still holds nothing to compare.
        let present = try CLI.run(["check", "empty.safetensors", "--compare", "present"], in: directory)
        XCTAssertEqual(present.status, 2, present.output)
        XCTAssertTrue(present.error.contains("the trace holds no tensor to compare"), present.error)
        XCTAssertTrue(present.error.contains("forwrd.conv1"), present.error)

        let unknown = try CLI.run(["check", "t.safetensors", "--tolerance", "nosuch=1e-4"], in: directory)
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.error.contains("--tolerance nosuch: no layer or tensor of t.safetensors has this name"), unknown.error)
        XCTAssertEqual(try CLI.run(["check", "t.safetensors", "--tolerance", "conv1=1e-4"], in: directory).status, 0)
        XCTAssertEqual(try CLI.run(["check", "t.safetensors", "--tolerance", "forward.conv1=1e-4"], in: directory).status, 0)
    }

    func testOwnTraceChecksCleanWithExitZero() throws {
        let trace = try CLI.run(["trace", "--model", "layers-18pct", "--batch", "2", "--seed", "3", "--init", "he",
                                 "-o", "t.safetensors"], in: directory)
        XCTAssertEqual(trace.status, 0, trace.error)
        XCTAssertTrue(trace.output.contains("wrote t.safetensors: network trace of layers-18pct, f32, training, batch 2"), trace.output)
        let check = try CLI.run(["check", "t.safetensors"], in: directory)
        XCTAssertEqual(check.status, 0, check.output + check.error)
        XCTAssertTrue(check.output.contains("AGREE: all"), check.output)
        XCTAssertTrue(check.output.contains("forward.rnorm1"), check.output)

        let f64 = try CLI.run(["trace", "--model", "cifar-towers", "--input-shape", "1,16,16", "--dtype", "f64",
                               "--towers-tensors", "--sgd", "pytorch", "-o", "dir"], in: directory)
        XCTAssertEqual(f64.status, 0, f64.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("dir/tower0.forward.conv3.npy")))
        let checkDirectory = try CLI.run(["check", "dir", "--quiet"], in: directory)
        XCTAssertEqual(checkDirectory.status, 0, checkDirectory.output + checkDirectory.error)

        let layer = try CLI.run(["trace", "--model", "layers-80sec", "--layer", "pool2", "-o", "pool2.safetensors"], in: directory)
        XCTAssertEqual(layer.status, 0, layer.error)
        XCTAssertTrue(layer.output.contains("layer trace of pool2"), layer.output)
        XCTAssertEqual(try CLI.run(["check", "pool2.safetensors"], in: directory).status, 0)
    }

    func testMismatchExitsOneAndNamesTheFirstDivergence() throws {
        try writeBrokenTrace("broken.safetensors")
        let check = try CLI.run(["check", "broken.safetensors"], in: directory)
        XCTAssertEqual(check.status, 1, check.error)
        XCTAssertTrue(check.output.contains("MISMATCH: first divergence at forward.lrn1 (layer lrn1, forward)"), check.output)
        XCTAssertTrue(check.output.contains("why: lrn1: the reference matches LRN with alpha divided by n"), check.output)
        // A per-layer tolerance that covers the LRN's difference lets it pass.
        let loose = try CLI.run(["check", "broken.safetensors", "--tolerance", "lrn1=10", "--quiet"], in: directory)
        XCTAssertEqual(loose.status, 0, loose.output)
    }

    /// `--extract`: the first differing layer (or a named one) written as a layer
    /// trace that reads back and checks alone; refusals for what cannot be extracted.
    func testExtractWritesTheFailingLayerAsALayerTrace() throws {
        try writeBrokenTrace("broken.safetensors")
        let first = try CLI.run(["check", "broken.safetensors", "--extract", "first", "-o", "lrn1.safetensors"], in: directory)
        XCTAssertEqual(first.status, 1, first.output + first.error)
        XCTAssertTrue(first.output.contains("wrote lrn1.safetensors: layer trace of lrn1 from broken.safetensors"), first.output)
        XCTAssertTrue(first.output.contains("MISMATCH: first divergence at forward.lrn1 (layer lrn1, forward)"), first.output)
        let extracted = try Trace.read(path: path("lrn1.safetensors"))
        XCTAssertEqual(extracted.kind, .layer)
        XCTAssertEqual(extracted.layer?.name, "lrn1")
        XCTAssertTrue(extracted.names.contains("input") && extracted.names.contains("forward.lrn1"), "\(extracted.names)")
        // The extracted file alone gives the same verdict.
        XCTAssertEqual(try CLI.run(["check", "lrn1.safetensors", "--compare", "present", "--quiet"], in: directory).status, 1)

        let named = try CLI.run(["check", "broken.safetensors", "--extract", "conv1", "-o", "conv1"], in: directory)
        XCTAssertEqual(named.status, 0, named.output + named.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("conv1/metadata.json")))
        XCTAssertTrue(named.output.contains("AGREE: all"), named.output)
        // The file exists now: replacing it needs --force.
        XCTAssertEqual(try CLI.run(["check", "broken.safetensors", "--extract", "conv1", "-o", "conv1"], in: directory).status, 2)

        let unknown = try CLI.run(["check", "broken.safetensors", "--extract", "nosuch", "-o", "x.safetensors"], in: directory)
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.error.contains("--extract nosuch: no such layer"), unknown.error)
        XCTAssertEqual(try CLI.run(["check", "broken.safetensors", "--extract", "conv1"], in: directory).status, 64)
        XCTAssertEqual(try CLI.run(["check", "lrn1.safetensors", "--extract", "lrn1", "-o", "y.safetensors"], in: directory).status, 2)

        // Nothing differs: nothing is written.
        let clean = try CLI.run(["trace", "--model", "cifar-towers", "--input-shape", "1,16,16", "-o", "towers.safetensors"],
                                in: directory)
        XCTAssertEqual(clean.status, 0, clean.error)
        let none = try CLI.run(["check", "towers.safetensors", "--extract", "first", "-o", "none.safetensors"], in: directory)
        XCTAssertEqual(none.status, 0, none.output + none.error)
        XCTAssertTrue(none.output.contains("no layer of towers.safetensors differs; nothing extracted"), none.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("none.safetensors")))
        // A two-tower net's LRN normalises per tower, which a layer trace cannot say.
        let lrn = try CLI.run(["check", "towers.safetensors", "--extract", "lrn1", "-o", "lrn.safetensors"], in: directory)
        XCTAssertEqual(lrn.status, 2)
        XCTAssertTrue(lrn.error.contains("normalises within each tower"), lrn.error)
    }

    func testJSONAndJUnitReportsAreWellFormed() throws {
        try writeBrokenTrace("broken.safetensors")
        let check = try CLI.run(["check", "broken.safetensors", "--report", "r.json", "--junit", "r.xml"], in: directory)
        XCTAssertEqual(check.status, 1)
        let data = try Data(contentsOf: directory.appendingPathComponent("r.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(json["format"] as? String, "alexnet-oracle-report/1")
        XCTAssertEqual(json["passed"] as? Bool, false)
        XCTAssertEqual(json["exit_status"] as? Int, 1)
        let first = try XCTUnwrap(json["first_divergence"] as? [String: Any])
        XCTAssertEqual(first["tensor"] as? String, "forward.lrn1")
        let findings = try XCTUnwrap(first["findings"] as? [[String: Any]])
        XCTAssertEqual(findings.first?["code"] as? String, "lrn-alpha")
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, json["compared"] as? Int)
        let lrn = try XCTUnwrap(tensors.first { $0["name"] as? String == "forward.lrn1" })
        let alone = try XCTUnwrap(lrn["alone"] as? [String: Any])
        XCTAssertGreaterThan(try XCTUnwrap(alone["out_of_tolerance"] as? Int), 0)
        XCTAssertNotNil(alone["max_rel_error"] as? Double)
        XCTAssertNotNil(alone["cosine"] as? Double)
        // The bulk beside the maximum: median <= p99 <= max.
        let median = try XCTUnwrap(alone["median_rel_error"] as? Double), p99 = try XCTUnwrap(alone["p99_rel_error"] as? Double)
        XCTAssertLessThanOrEqual(median, p99)
        XCTAssertLessThanOrEqual(p99, try XCTUnwrap(alone["max_rel_error"] as? Double))
        XCTAssertTrue((json["required"] as? String ?? "").hasPrefix("forward, loss, grad, updated (the default for a training network trace with SGD metadata)"),
                      "\(json["required"] ?? "none")")
        XCTAssertEqual((alone["first_bad"] as? [String: Any])?["position"] as? [Int], [0, 0, 0, 0])

        let xml = try String(contentsOf: directory.appendingPathComponent("r.xml"), encoding: .utf8)
        XCTAssertTrue(xml.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"))
        XCTAssertTrue(xml.contains("<testsuites name=\"alexnet check\" tests=\"\(tensors.count)\" failures=\"2\""), xml)
        XCTAssertEqual(xml.components(separatedBy: "<testcase ").count - 1, tensors.count)
        XCTAssertEqual(xml.components(separatedBy: "<failure ").count - 1, 2)
        XCTAssertTrue(xml.contains("name=\"forward.lrn1\""))
        XCTAssertTrue(xml.contains(", rel err median "), xml)
        // Well-formed for an XML parser too.
        let parser = XMLParser(data: Data(xml.utf8))
        XCTAssertTrue(parser.parse(), parser.parserError.map { "\($0)" } ?? "")
    }

    func testReportsAreNotOverwrittenWithoutForce() throws {
        try writeBrokenTrace("broken.safetensors")
        try Data("keep".utf8).write(to: directory.appendingPathComponent("r.json"))
        let refused = try CLI.run(["check", "broken.safetensors", "--report", "r.json"], in: directory)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.error.contains("--report r.json: exists; pass --force to replace it"), refused.error)
        XCTAssertEqual(try String(contentsOf: directory.appendingPathComponent("r.json"), encoding: .utf8), "keep")
        let forced = try CLI.run(["check", "broken.safetensors", "--report", "r.json", "--force"], in: directory)
        XCTAssertEqual(forced.status, 1)
        XCTAssertNotEqual(try String(contentsOf: directory.appendingPathComponent("r.json"), encoding: .utf8), "keep")

        let trace = try CLI.run(["trace", "--model", "layers-80sec", "-o", "broken.safetensors"], in: directory)
        XCTAssertEqual(trace.status, 1)
        XCTAssertTrue(trace.error.contains("--output broken.safetensors: exists; pass --force to replace it"), trace.error)
    }

    func testUnusableTracesExitTwoNamingTheTensor() throws {
        let missing = try CLI.run(["check", "nothere.safetensors"], in: directory)
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.error.contains("nothere.safetensors: no such file or directory"), missing.error)

        var trace = try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self)
        trace.remove("param.conv1.weight")
        try trace.write(to: path("nohweight.safetensors"))
        let noWeight = try CLI.run(["check", "nohweight.safetensors"], in: directory)
        XCTAssertEqual(noWeight.status, 2)
        XCTAssertTrue(noWeight.error.contains("param.conv1.weight: missing"), noWeight.error)

        var nan = try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self)
        nan.set("grad.scores", Tensor<Float>(shape: [2, 10], repeating: .nan))
        try nan.write(to: path("nan"))
        let nanCheck = try CLI.run(["check", "nan"], in: directory)
        XCTAssertEqual(nanCheck.status, 2)
        XCTAssertTrue(nanCheck.error.contains("grad.scores: 20 non-finite value(s)"), nanCheck.error)

        var shape = try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self)
        shape.set("forward.fc3", Tensor<Float>(shape: [2, 17]))
        try shape.write(to: path("shape.safetensors"))
        let shapeCheck = try CLI.run(["check", "shape.safetensors"], in: directory)
        XCTAssertEqual(shapeCheck.status, 2)
        XCTAssertTrue(shapeCheck.error.contains("forward.fc3: shape [2, 17], the spec implies [2, 16]"), shapeCheck.error)

        try Data("not a trace".utf8).write(to: directory.appendingPathComponent("junk.safetensors"))
        XCTAssertEqual(try CLI.run(["check", "junk.safetensors"], in: directory).status, 2)

        let usage = try CLI.run(["check", "nan", "--tolerance", "conv3"], in: directory)
        XCTAssertEqual(usage.status, 64)
        XCTAssertTrue(usage.error.contains("--tolerance expects NAME=RTOL"), usage.error)
    }
}
