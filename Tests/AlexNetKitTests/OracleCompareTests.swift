import Foundation
import XCTest
@testable import AlexNetKit

/// What a check requires (`--compare`, ``OracleOptions/compare``): the default
/// rule by kind and mode, missing tensors named, misspellings pointed out,
/// narrowing, and the CLI option.
final class OracleCompareTests: XCTestCase {
    func smallTrace(sgd: TraceSGD? = OracleFixtures.sgd) throws -> Trace {
        try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self, sgd: sgd)
    }

    func checkError(_ trace: Trace, _ compare: [CompareGroup] = [.default]) -> String {
        do {
            _ = try Oracle.check(trace, options: OracleOptions(compare: compare))
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testDefaultRequiresTheWholeStepByKindAndMode() throws {
        let withSGD = try TracePlan(trace: try smallTrace()).requiredTensors([.default])
        for name in ["forward.conv1", "forward.fc4", "labels", "loss", "grad.conv1.weight", "grad.fc4.bias", "updated.fc4.bias"] {
            XCTAssertTrue(withSGD.contains(name), name)
        }
        // Intermediates of a network step are not required: the parameter gradients depend on them.
        XCTAssertFalse(withSGD.contains("grad_input.conv1"))
        XCTAssertFalse(withSGD.contains("grad.scores"))
        XCTAssertFalse(try TracePlan(trace: try smallTrace(sgd: nil)).requiredTensors([.default]).contains("updated.fc4.bias"))

        // Inference: the forward pass only.
        let spec = try OracleFixtures.smallPaperNet()
        let network = try Network<Float>(spec: spec, seed: 2, initialisation: .he)
        let input: Tensor<Float> = TraceRecorder.randomBatch(count: 2, shape: spec.inputShape, seed: 2)
        let inference = try TraceRecorder.record(network: network, input: input, labels: [1, 2], mode: .inference)
        XCTAssertEqual(try TracePlan(trace: inference).requiredTensors([.default]), spec.layers.map { "forward.\($0.name)" })

        // A training layer trace: its input gradient is its whole backward result, so it is required.
        let layer = try TraceRecorder.layerTrace(try smallTrace(sgd: nil), layer: "conv2")
        XCTAssertEqual(try TracePlan(trace: layer).requiredTensors([.default]),
                       ["grad_output.conv2", "forward.conv2", "grad.conv2.weight", "grad.conv2.bias", "grad_input.conv2"])
        XCTAssertThrowsError(try TracePlan(trace: layer).requiredTensors([.loss])) { error in
            XCTAssertTrue("\(error)".contains("compare group loss: a layer trace holds no loss"), "\(error)")
        }

        // towers = 2: each tower's tensors too, but not a first layer's per-tower image gradient
        // (both towers read the whole image; the format leaves that partial optional).
        let towers = try OracleFixtures.trace(try OracleFixtures.cifarTowers(), Float.self, towerTensors: true)
        let required = try TracePlan(trace: towers).requiredTensors([.default, .gradInput])
        for name in ["tower0.forward.conv1", "tower1.grad.conv3.weight", "tower1.updated.conv1.bias", "tower0.grad_input.conv2"] {
            XCTAssertTrue(required.contains(name), name)
        }
        XCTAssertFalse(required.contains("tower0.grad_input.conv1"))
        XCTAssertFalse(required.contains("tower0.loss"))
        assertAgrees(try Oracle.check(towers, options: OracleOptions(compare: [.default, .gradInput])))
    }

    func testAMissingRequiredTensorMakesTheTraceUnusableNamingEveryOne() throws {
        var trace = try smallTrace()
        trace.remove("grad.fc4.weight")
        trace.remove("updated.conv1.bias")
        let message = checkError(trace)
        XCTAssertTrue(message.contains("missing 2 required tensor(s): grad.fc4.weight, updated.conv1.bias; the default for a "
                                       + "training network trace with SGD metadata requires forward, loss, grad, updated"), message)
        XCTAssertTrue(message.contains("--compare forward,loss checks the groups this trace holds whole"), message)
        // Narrowed, the trace checks clean, and what it holds beyond the required groups is still compared.
        let narrowed = try Oracle.check(trace, options: OracleOptions(compare: [.forward, .loss]))
        assertAgrees(narrowed)
        XCTAssertTrue(narrowed.entries.contains { $0.name == "grad.fc4.bias" })
        XCTAssertTrue(narrowed.required.hasPrefix("forward, loss (--compare forward,loss)"), narrowed.required)
        assertAgrees(try Oracle.check(trace, options: OracleOptions(compare: [.present])))
        // Required a group it does not hold whole: the same error.
        XCTAssertTrue(checkError(try smallTrace(), [.gradInput]).isEmpty)
        var noInputGradient = try smallTrace()
        noInputGradient.remove("grad_input.conv1")
        XCTAssertTrue(checkError(noInputGradient, [.default, .gradInput]).contains("missing 1 required tensor(s): grad_input.conv1"))
    }

    /// The broken dumper that misspells a name: the tensor is missing, and the
    /// ignored name is pointed out as its likely misspelling.
    func testAMisspeltNameIsMissingAndPointedOut() throws {
        var trace = try smallTrace()
        let stored = try XCTUnwrap(trace["forward.conv1"])
        trace.remove("forward.conv1")
        trace.set(try StoredTensor(name: "forwrd.conv1", dtype: stored.dtype, shape: stored.shape, bytes: stored.bytes, source: ""))
        trace.set("producer_extra", Tensor<Float>(shape: [1]))
        let message = checkError(trace)
        XCTAssertTrue(message.contains("missing 1 required tensor(s): forward.conv1;"), message)
        XCTAssertTrue(message.contains("ignored names that look misspelt: forwrd.conv1 (forward.conv1?)"), message)
        XCTAssertTrue(message.contains("ignored (not names the format defines): producer_extra"), message)
    }

    func testCompareListsParseAndUnknownGroupsAreNamed() throws {
        XCTAssertEqual(try CompareGroup.parseList("forward, loss,forward"), [.forward, .loss])
        XCTAssertEqual(try CompareGroup.parseList("grad_input,grad_scores,default"), [.gradInput, .gradScores, .default])
        XCTAssertThrowsError(try CompareGroup.parseList("forward,grads")) { error in
            XCTAssertEqual("\(error)", "--compare forward,grads: unknown group 'grads'; accepted (comma-separated): "
                           + "default, present, forward, loss, grad_scores, grad, grad_input, updated")
        }
        XCTAssertThrowsError(try CompareGroup.parseList(""))
    }

    func testCompareOptionOfTheCommandLine() throws {
        let directory = try OracleFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var trace = try smallTrace()
        for name in trace.names where name.hasPrefix("updated.") { trace.remove(name) }
        try trace.write(to: directory.appendingPathComponent("t.safetensors").path)
        let refused = try CLI.run(["check", "t.safetensors"], in: directory)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.error.contains("missing 8 required tensor(s): updated.conv1.weight"), refused.error)
        let narrowed = try CLI.run(["check", "t.safetensors", "--compare", "forward,loss,grad"], in: directory)
        XCTAssertEqual(narrowed.status, 0, narrowed.output + narrowed.error)
        XCTAssertTrue(narrowed.output.contains("required: forward, loss, grad (--compare forward,loss,grad)"), narrowed.output)
        let unknown = try CLI.run(["check", "t.safetensors", "--compare", "forwrd"], in: directory)
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.error.contains("unknown group 'forwrd'; accepted (comma-separated): default, present"), unknown.error)
        let help = try CLI.run(["check", "--help"], in: directory)
        XCTAssertTrue(help.output.contains("--compare <LIST>"), help.output)
        XCTAssertTrue(help.output.contains("--compare LIST replaces the rule"), help.output)
    }
}
