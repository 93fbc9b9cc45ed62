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

    func testOwnTraceOfShippedTwoTowerModelAgreesTowerByTower() throws {
        let spec = try OracleFixtures.cifarTowers()
        let trace = try OracleFixtures.trace(spec, Float.self, towerTensors: true)
        XCTAssertNotNil(trace["tower1.forward.conv3"])
        let report = try Oracle.check(trace)
        assertAgrees(report)
        XCTAssertTrue(report.entries.contains { $0.name == "tower1.grad_input.conv3" && $0.verdict == .agrees })
    }

    func testOwnTraceOfSpecFileAgreesInBothPrecisions() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/models/tiny-custom.json").path
        let spec = try ModelSpec.load(path: path)
        assertAgrees(try Oracle.check(try OracleFixtures.trace(spec, Float.self)))
        assertAgrees(try Oracle.check(try OracleFixtures.trace(spec, Double.self)))
    }

    func testLayerTraceOfEveryLayerAgrees() throws {
        let spec = try OracleFixtures.smallPaperNet()
        let trace = try OracleFixtures.trace(spec, Double.self)
        for layer in spec.layers {
            let report = try Oracle.check(try TraceRecorder.layerTrace(trace, layer: layer.name))
            assertAgrees(report)
            XCTAssertEqual(report.kind, .layer)
        }
    }

    // MARK: Broken references are caught at the right tensor, with the right diagnosis

    /// (a) The reference's LRN divides alpha by n (Caffe's formula) where the spec says the paper's.
    func testLRNAlphaConventionIsCaughtAtLRNAndDiagnosed() throws {
        for dtype in [DType.float32, .float64] {
            let right = try OracleFixtures.smallPaperNet(lrn: .paper)
            let wrong = try OracleFixtures.smallPaperNet(lrn: .caffe)
            let trace = dtype == .float32 ? try OracleFixtures.mislabelled(producedBy: wrong, labelledAs: right, Float.self)
                : try OracleFixtures.mislabelled(producedBy: wrong, labelledAs: right, Double.self)
            let report = try Oracle.check(trace)
            assertFirstDivergence(report, "forward.lrn1", finding: "lrn-alpha")
            XCTAssertTrue(report.verdictLine.contains("lrn1: the reference matches LRN with alpha divided by n"), report.verdictLine)
            // Alone, only the LRN's own tensors differ: every other layer agrees when fed the reference's input.
            let differing = Set(report.entries.filter { $0.verdict == .differs }.map(\.name))
            XCTAssertEqual(differing, ["forward.lrn1", "grad_input.lrn1"], report.table())
        }
        // And the other way round: the paper's formula where the spec divides by n.
        let report = try Oracle.check(try OracleFixtures.mislabelled(producedBy: try OracleFixtures.smallPaperNet(lrn: .paper),
                                                                     labelledAs: try OracleFixtures.smallPaperNet(lrn: .pytorch),
                                                                     Float.self))
        assertFirstDivergence(report, "forward.lrn1", finding: "lrn-alpha")
        XCTAssertTrue(report.verdictLine.contains("lrn1: the reference matches LRN with alpha not divided by n "
                                                  + "(the paper's formula with Caffe's alpha, or vice versa)"), report.verdictLine)
    }

    /// The other direction of (a): Caffe's alpha (5e-4) put into the paper's formula,
    /// labelled as the paper's layer (alpha 1e-4), and the paper's alpha put into
    /// Caffe's formula, labelled as Caffe's layer (alpha 5e-4).
    func testLRNAlphaIsTriedInBothDirections() throws {
        func spec(alpha: Double, _ convention: LRNConvention) throws -> ModelSpec {
            var spec = try OracleFixtures.smallPaperNet(lrn: convention)
            spec.layers[2] = LayerSpec(name: "lrn1", .localResponseNorm(size: 5, alpha: alpha, beta: 0.75, k: 2, convention: convention))
            return spec
        }
        let paperWithCaffeAlpha = try Oracle.check(try OracleFixtures.mislabelled(
            producedBy: try spec(alpha: 5e-4, .paper), labelledAs: try spec(alpha: 1e-4, .paper), Double.self))
        assertFirstDivergence(paperWithCaffeAlpha, "forward.lrn1", finding: "lrn-alpha")
        XCTAssertTrue(paperWithCaffeAlpha.verdictLine.contains("alpha multiplied by n (Caffe's alpha put into the paper's formula)"),
                      paperWithCaffeAlpha.verdictLine)
        let caffeWithPaperAlpha = try Oracle.check(try OracleFixtures.mislabelled(
            producedBy: try spec(alpha: 1e-4, .caffe), labelledAs: try spec(alpha: 5e-4, .caffe), Float.self))
        assertFirstDivergence(caffeWithPaperAlpha, "forward.lrn1", finding: "lrn-alpha")
        XCTAssertTrue(caffeWithPaperAlpha.verdictLine.contains("alpha divided by n twice (the paper's alpha put into Caffe's formula)"),
                      caffeWithPaperAlpha.verdictLine)
    }

    /// (b) One tower holds the other tower's conv3 weights.
    func testSwappedConv3TowerWeightsAreCaughtAtConv3() throws {
        let spec = try OracleFixtures.cifarTowers()
        let network = try Network<Float>(spec: spec, seed: 4, initialisation: .he)
        let towers = try TowerNetwork(copying: network, workersPerTower: 1)
        let conv3 = spec.layers.firstIndex { $0.name == "conv3" }!
        let (w0, w1) = (towers.layers[0][conv3].parameters[0], towers.layers[1][conv3].parameters[0])
        (w0.value, w1.value) = (w1.value, w0.value)  // the classic two-GPU bug: each tower loads the other's rows
        let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters.map { ($0.name, $0.parameter.value) })
        let input: Tensor<Float> = TraceRecorder.randomBatch(count: 2, shape: spec.inputShape, seed: 4)
        let labels = TraceRecorder.randomLabels(count: 2, classes: spec.classes, seed: 4)

        // With per-tower tensors the first divergence is the tower's weight itself.
        let withTowers = try TraceRecorder.record(towers: towers, parameters: parameters, input: input, labels: labels,
                                                  sgd: OracleFixtures.sgd, towerTensors: true)
        let report = try Oracle.check(withTowers)
        assertFirstDivergence(report, "tower0.param.conv3.weight", finding: "towers-swapped")
        // Fed the reference's own tower weights, each tower's conv3 agrees; the whole conv3 does not.
        XCTAssertEqual(report.entries.first { $0.name == "tower0.forward.conv3" }?.alone?.passed, true, report.table())
        let forward = report.entries.first { $0.name == "forward.conv3" }!
        XCTAssertEqual(forward.verdict, .differs)
        XCTAssertTrue(forward.findings.contains { $0.code == "weight-halves-swapped" }, report.table())

        // Without them, conv3's output is the first divergence, diagnosed as the weight's halves swapped.
        let grouped = try TraceRecorder.record(towers: towers, parameters: parameters, input: input, labels: labels,
                                               sgd: OracleFixtures.sgd, towerTensors: false)
        let groupedReport = try Oracle.check(grouped)
        assertFirstDivergence(groupedReport, "forward.conv3", finding: "weight-halves-swapped")
    }

    /// (c) The reference's pool rounds up where the spec says floor: a different output size.
    func testPoolCeilWhereSpecSaysFloorIsCaughtAtPool() throws {
        let right = try OracleFixtures.smallPaperNet(pool: .floor)
        let wrong = try OracleFixtures.smallPaperNet(pool: .ceil)
        let report = try Oracle.check(try OracleFixtures.mislabelled(producedBy: wrong, labelledAs: right, Float.self))
        assertFirstDivergence(report, "forward.pool1", finding: "pool-rounding")
        XCTAssertTrue(report.verdictLine.contains("rounds the pooled size up (ceil: 8x8"), report.verdictLine)
        XCTAssertTrue(report.verdictLine.contains("floor (7x7"), report.verdictLine)
        // Downstream layers fed the reference's 8x8 maps agree alone (end to end, ours are 7x7: drift).
        XCTAssertNotEqual(report.entries.first { $0.name == "forward.conv2" }?.verdict, .differs, report.table())
        XCTAssertEqual(report.entries.first { $0.name == "forward.conv2" }?.alone?.passed, true, report.table())
    }

    /// (d) Inverted dropout where the spec says the paper's scaling.
    func testInvertedDropoutWhereSpecSaysPaperIsCaughtAtDropout() throws {
        let right = try OracleFixtures.smallPaperNet(dropout: .paper)
        let wrong = try OracleFixtures.smallPaperNet(dropout: .inverted)
        let report = try Oracle.check(try OracleFixtures.mislabelled(producedBy: wrong, labelledAs: right, Double.self))
        assertFirstDivergence(report, "forward.drop3", finding: "dropout-scaling")
        XCTAssertTrue(report.verdictLine.contains("drop3: the reference scales the kept units by 1/(1-p) = 2.0 in training"),
                      report.verdictLine)
        // The other way round.
        let back = try Oracle.check(try OracleFixtures.mislabelled(producedBy: right, labelledAs: wrong, Float.self))
        assertFirstDivergence(back, "forward.drop3", finding: "dropout-scaling")
    }

    /// (e) PyTorch's SGD form where the metadata names the paper's: equal to rounding after one
    /// step from zero velocity, so the tolerance check agrees (with a note) and the bit-exact check
    /// catches it at the first updated tensor.
    func testOtherSGDFormIsNotedAndCaughtBitExactly() throws {
        let spec = try OracleFixtures.smallPaperNet()
        let pytorch = TraceSGD(form: .pytorch, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4)
        let trace = try OracleFixtures.mislabelled(producedBy: spec, labelledAs: spec, Float.self, sgd: OracleFixtures.sgd,
                                                   recordedSGD: pytorch)
        let tolerant = try Oracle.check(trace)
        assertAgrees(tolerant)
        XCTAssertTrue(tolerant.notes.contains { $0.contains("bit for bit the pytorch form of SGD") }, tolerant.table())
        let exact = try Oracle.check(trace, options: OracleOptions(tolerances: TolerancePolicy(exact: true)))
        assertFirstDivergence(exact, "updated.conv1.weight", finding: "sgd-form")
        XCTAssertTrue(exact.entries.filter { $0.role.phase != .update }.allSatisfy { $0.verdict == .agrees }, exact.table())
    }

    /// The Swift example of Docs/oracle.md, as written there.
    func testDocsSwiftExampleRuns() throws {
        let directory = try OracleFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = try ModelZoo.spec(named: "cifar-towers", inputShape: [1, 28, 28])
        let network = try Network<Float>(spec: spec, seed: 1)
        let batch: Tensor<Float> = TraceRecorder.randomBatch(count: 2, shape: spec.inputShape, seed: 1)
        let trace = try TraceRecorder.record(network: network, input: batch, labels: [3, 7],
                                             sgd: TraceSGD(form: .paper, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4),
                                             towerTensors: true)
        let path = directory.appendingPathComponent("ours.safetensors").path
        try trace.write(to: path)
        let report = try Oracle.check(path: path)
        assertAgrees(report)
        XCTAssertNil(report.firstDivergence)
        XCTAssertTrue(report.table().contains("AGREE: all \(report.entries.count) tensors within tolerance"))
    }

    func testInferenceAndForwardOnlyTracesAgree() throws {
        let spec = try OracleFixtures.smallPaperNet()
        let network = try Network<Double>(spec: spec, seed: 2, initialisation: .he)
        let input: Tensor<Double> = TraceRecorder.randomBatch(count: 2, shape: spec.inputShape, seed: 2)
        let inference = try TraceRecorder.record(network: network, input: input, labels: [1, 2], mode: .inference)
        XCTAssertNil(inference["mask.drop3"])
        assertAgrees(try Oracle.check(inference))
        let forwardOnly = try TraceRecorder.record(network: network, input: input, labels: nil, mode: .training)
        XCTAssertNil(forwardOnly["grad.scores"])
        // A training trace without labels holds no backward pass, which the default requires:
        // a forward-only dump says so with --compare forward.
        XCTAssertThrowsError(try Oracle.check(forwardOnly))
        let report = try Oracle.check(forwardOnly, options: OracleOptions(compare: [.forward]))
        assertAgrees(report)
        XCTAssertTrue(report.entries.allSatisfy { $0.role.phase == .forward })
        XCTAssertTrue(report.absent.contains("loss"))
    }
}
