import Foundation
import XCTest
@testable import AlexNetKit

/// Version 2 traces (several training steps): written and read back, replayed
/// step by step with our own parameters and velocities carried, faults reported
/// at (step, tensor), and unusable files refused naming the step's tensor.
final class OracleStepsTests: XCTestCase {
    /// A falling schedule: the rate changes at step 2, where the SGD forms part end to end.
    static let rates = [0.02, 0.01, 0.01, 0.005, 0.0025]

    /// Our own T-step trace of the small paper net: seeded weights, a new batch per step.
    static func stepsTrace<T: TensorElement>(_: T.Type, steps: Int = 5, form: SGDForm = .paper,
                                             spec: ModelSpec? = nil) throws -> Trace {
        let spec = try spec ?? OracleFixtures.smallPaperNet()
        let network = try Network<T>(spec: spec, seed: 1, initialisation: .he)
        let batches = (0..<steps).map { t in
            TraceBatch<T>(input: TraceRecorder.randomBatch(count: 2, shape: spec.inputShape, seed: UInt64(10 + t)),
                          labels: TraceRecorder.randomLabels(count: 2, classes: spec.classes, seed: UInt64(10 + t)))
        }
        let sgd = TraceSGD(form: form, learningRate: rates[0], momentum: 0.9, weightDecay: 5e-4)
        return try TraceRecorder.recordSteps(network: network, batches: batches, sgd: sgd,
                                             learningRates: Array(rates.prefix(steps)))
    }

    func testVersion2RoundTripsInBothContainers() throws {
        let directory = try OracleFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let trace = try Self.stepsTrace(Double.self, steps: 3)
        XCTAssertEqual(trace.metadata["format"], "alexnet-trace/2")
        XCTAssertEqual(trace.metadata["steps"], "3")
        XCTAssertEqual(trace.metadata["learning_rates"], "0.02,0.01,0.01")
        XCTAssertNotNil(trace["step3.velocity.fc4.weight"])
        XCTAssertNotNil(trace["step1.mask.drop3"])
        for name in ["t.safetensors", "t-npy"] {
            let path = directory.appendingPathComponent(name).path
            try trace.write(to: path)
            let back = try Trace.read(path: path)
            XCTAssertEqual(back.steps, 3)
            XCTAssertEqual(back.learningRates, [0.02, 0.01, 0.01])
            XCTAssertEqual(back.metadata, trace.metadata)
            XCTAssertEqual(Set(back.names), Set(trace.names))
            for tensor in trace.tensors { XCTAssertEqual(back[tensor.name], tensor, tensor.name) }
            assertAgrees(try Oracle.check(back))
        }
    }

    func testOwnTraceAgreesAtEveryStepBitForBit() throws {
        for report in [try Oracle.check(try Self.stepsTrace(Float.self)),
                       try Oracle.check(try Self.stepsTrace(Double.self, form: .pytorch),
                                        options: OracleOptions(tolerances: TolerancePolicy(exact: true)))] {
            assertAgrees(report)
            XCTAssertEqual(report.steps, 5)
            XCTAssertEqual(Set(report.entries.compactMap(\.step)), [1, 2, 3, 4, 5])
            XCTAssertTrue(report.entries.contains { $0.name == "step5.updated.fc4.weight" && $0.step == 5 }, report.table())
            XCTAssertFalse(report.entries.contains { $0.step == nil })
            // Carried end to end from our own parameters and velocities, our step reproduces itself exactly.
            for entry in report.entries { XCTAssertEqual(entry.endToEnd?.bitwiseEqual, entry.endToEnd?.count, entry.name) }
            XCTAssertTrue(report.table().contains("[step 3 update]"), report.table())
        }
    }

    /// PyTorch's SGD form under metadata that names the paper's: the first step from zero
    /// velocity agrees (as in version 1, only --exact would see it); the second starts from a
    /// velocity of the other form and fails, with the SGD-form diagnosis, in tolerance mode.
    func testPyTorchFormCheckedAsPaperFailsAtStep2WithTheSGDFormDiagnosis() throws {
        var trace = try Self.stepsTrace(Float.self, form: .pytorch)
        trace.sgd?.form = .paper
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "step2.updated.conv1.weight", finding: "sgd-form")
        XCTAssertEqual(report.firstDivergence?.step, 2)
        XCTAssertTrue(report.entries.filter { $0.step == 1 }.allSatisfy { $0.verdict == .agrees }, report.table())
        XCTAssertTrue(report.entries.filter { $0.step == 2 && $0.role.phase != .update }.allSatisfy { $0.verdict == .agrees },
                      report.table())
        XCTAssertTrue(report.verdictLine.contains("(step 2, layer conv1, update)"), report.verdictLine)
        XCTAssertTrue(report.verdictLine.contains("the reference computed the pytorch form of SGD"), report.verdictLine)
    }

    func testAFaultPlantedInStep3IsReportedAtStep3WithItsTensor() throws {
        var trace = try Self.stepsTrace(Double.self)
        var conv2 = try XCTUnwrap(trace["step3.forward.conv2"]).floatTensor(as: Double.self)
        conv2.withUnsafeMutableBufferPointer { $0[37] += 0.5 }
        trace.set("step3.forward.conv2", conv2)
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "step3.forward.conv2", finding: "sparse-outliers")
        XCTAssertEqual(report.firstDivergence?.step, 3)
        XCTAssertTrue(report.entries.filter { ($0.step ?? 0) < 3 }.allSatisfy { $0.verdict == .agrees }, report.table())
        XCTAssertTrue(report.verdictLine.contains("step3.forward.conv2 (step 3, layer conv2, forward)"), report.verdictLine)
    }

    func testAWrongUpdateInStep3IsReportedThereNotLater() throws {
        var trace = try Self.stepsTrace(Double.self)
        var weight = try XCTUnwrap(trace["step3.updated.fc3.weight"]).floatTensor(as: Double.self)
        weight.withUnsafeMutableBufferPointer { $0[5] += 1e-3 }
        trace.set("step3.updated.fc3.weight", weight)
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "step3.updated.fc3.weight", finding: nil)
        XCTAssertTrue(report.entries.filter { ($0.step ?? 0) < 3 }.allSatisfy { $0.verdict == .agrees }, report.table())
    }

    func testTheReportsCarryTheStep() throws {
        var trace = try Self.stepsTrace(Float.self, steps: 2, form: .pytorch)
        trace.sgd?.form = .paper
        let report = try Oracle.check(trace)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(report.jsonString().utf8)) as? [String: Any])
        XCTAssertEqual(json["steps"] as? Int, 2)
        let first = try XCTUnwrap(json["first_divergence"] as? [String: Any])
        XCTAssertEqual(first["step"] as? Int, 2)
        XCTAssertEqual(first["tensor"] as? String, "step2.updated.conv1.weight")
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.first?["step"] as? Int, 1)
        let junit = report.junitXML()
        XCTAssertTrue(junit.contains("classname=\"alexnet.oracle.step2.update\" name=\"step2.updated.conv1.weight\""), junit)
        XCTAssertTrue(report.table().contains("2 steps replayed"), report.table())
    }

    /// The JSON report reads back with the library's strict parser (which refuses
    /// duplicate keys, NaN and trailing commas), and its values are the report's.
    func testTheJSONReportReadsBackWithTheStrictParser() throws {
        var steps = try Self.stepsTrace(Float.self, steps: 2, form: .pytorch)
        steps.sgd?.form = .paper
        let stepsReport = try Oracle.check(steps)
        let excerpt = try StrictJSONDecoder(bytes: Array(stepsReport.jsonString().utf8)).decode(ReportExcerpt.self)
        XCTAssertEqual(excerpt.format, "alexnet-oracle-report/1")
        XCTAssertEqual(excerpt.steps, 2)
        XCTAssertEqual(excerpt.blasCore, BLAS.core.name)
        XCTAssertEqual(excerpt.exitStatus, 1)
        XCTAssertEqual(excerpt.firstDivergence?.tensor, "step2.updated.conv1.weight")
        XCTAssertEqual(excerpt.firstDivergence?.step, 2)
        XCTAssertEqual(excerpt.firstDivergence?.layer, "conv1")
        XCTAssertEqual(excerpt.tensors.map(\.name), stepsReport.entries.map(\.name))
        XCTAssertEqual(excerpt.tensors.first?.step, 1)
        XCTAssertEqual(excerpt.tensors.filter(\.fails).count, stepsReport.entries.filter(stepsReport.fails).count)
        XCTAssertEqual(excerpt.absent, [])

        // A one-step trace without its forward tensors: they are listed as absent, not compared.
        var trace = try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self)
        for name in trace.names where name.hasPrefix("forward.") { trace.remove(name) }
        let report = try Oracle.check(trace, options: OracleOptions(compare: [.loss, .grad, .updated]))
        let read = try StrictJSONDecoder(bytes: Array(report.jsonString().utf8)).decode(ReportExcerpt.self)
        XCTAssertNil(read.steps)
        XCTAssertNil(read.firstDivergence)
        XCTAssertEqual(read.exitStatus, 0)
        XCTAssertEqual(read.absent, report.absent)
        XCTAssertTrue(read.absent.contains("forward.conv1"), "\(read.absent)")
        XCTAssertFalse(read.tensors.contains { $0.name.hasPrefix("forward.") })
    }

    func testOptionsWorkPerStep() throws {
        let trace = try Self.stepsTrace(Float.self, steps: 3)
        let forward = try Oracle.check(trace, options: OracleOptions(compare: [.forward]))
        assertAgrees(forward)
        XCTAssertTrue(forward.required.contains("in each of the 3 steps"), forward.required)
        // An override by a step's tensor name applies to that step only.
        var options = OracleOptions(tolerances: TolerancePolicy(overrides: ["step2.forward.conv1": 1e-3]))
        let report = try Oracle.check(trace, options: options)
        let rtols = ["step1.forward.conv1", "step2.forward.conv1"].map { name in
            report.entries.first { $0.name == name }?.alone?.tolerance.rtol
        }
        XCTAssertEqual(rtols[1], 1e-3)
        XCTAssertNotEqual(rtols[0], 1e-3)
        options.tolerances.overrides = ["forward.conv1": 1e-3]
        let everyStep = try Oracle.check(trace, options: options)
        XCTAssertTrue(everyStep.entries.filter { $0.name.hasSuffix(".forward.conv1") }.allSatisfy { $0.alone?.tolerance.rtol == 1e-3 })
    }

    // MARK: Unusable version 2 traces

    func assertUnusable(_ trace: Trace, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Oracle.check(trace), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
        }
    }

    func assertUnusable(metadata: [String: String], _ expected: String, from trace: Trace,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Trace.decode(tensors: trace.tensors, metadata: metadata, source: "t"), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
        }
    }

    func testAMissingStepTensorIsNamed() throws {
        let trace = try Self.stepsTrace(Float.self, steps: 3)
        let cases = [
            ("step3.forward.conv2", "missing 1 required tensor(s): step3.forward.conv2"),
            ("step2.updated.fc3.bias", "step2.updated.fc3.bias: missing; step 3 starts from the parameters step 2 ended with"),
            ("step1.velocity.conv1.weight", "step1.velocity.conv1.weight: missing; with momentum 0.9 step 2 starts from the velocity"),
            ("step2.input", "step2.input: missing"),
            ("step3.mask.drop3", "step3.mask.drop3: missing"),
        ]
        for (name, expected) in cases {
            var damaged = trace
            damaged.remove(name)
            assertUnusable(damaged, expected)
        }
        // The last step's velocity starts no step: it may be left out.
        var last = trace
        last.remove("step3.velocity.conv1.weight")
        assertAgrees(try Oracle.check(last))
    }

    func testStepsZeroOrInconsistentMetadataIsRefused() throws {
        let trace = try Self.stepsTrace(Float.self, steps: 3)
        let metadata = trace.metadata
        func with(_ changes: [String: String?]) -> [String: String] {
            var result = metadata
            for (key, value) in changes { result[key] = value }
            return result
        }
        assertUnusable(metadata: with(["steps": "0"]), "metadata 'steps': expected an integer in 1...10000, got '0'", from: trace)
        assertUnusable(metadata: with(["steps": "three"]), "metadata 'steps': expected an integer", from: trace)
        assertUnusable(metadata: with(["steps": nil]), "metadata 'steps': missing", from: trace)
        assertUnusable(metadata: with(["steps": "2", "learning_rates": nil]), "step3.input: outside the trace's steps: steps = 2", from: trace)
        assertUnusable(metadata: with(["learning_rates": "0.02,0.01"]), "holds 2 rate(s) but steps = 3", from: trace)
        assertUnusable(metadata: with(["learning_rates": "0.03,0.01,0.01"]), "starts with 0.03 but learning_rate = 0.02", from: trace)
        assertUnusable(metadata: with(["learning_rates": "0.02,x,0.01"]), "comma-separated finite numbers", from: trace)
        assertUnusable(metadata: with(["sgd_form": nil, "learning_rate": nil, "momentum": nil, "weight_decay": nil,
                                       "learning_rates": nil]), "SGD settings", from: trace)
        assertUnusable(metadata: with(["mode": "inference"]), "metadata 'mode'", from: trace)
        // steps = 4 with tensors for three: step 4's are missing.
        let four = try Trace.decode(tensors: trace.tensors, metadata: with(["steps": "4", "learning_rates": nil]), source: "t")
        assertUnusable(four, "step4.input: missing")
    }

    func testVersion1TracesStayVersion1() throws {
        let trace = try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self)
        XCTAssertEqual(trace.metadata["format"], "alexnet-trace/1")
        XCTAssertNil(trace.metadata["steps"])
        let report = try Oracle.check(trace)
        assertAgrees(report)
        XCTAssertNil(report.steps)
        XCTAssertTrue(report.entries.allSatisfy { $0.step == nil })
        // A version 1 file's `steps` key is metadata it does not define: kept, not read.
        var metadata = trace.metadata
        metadata["steps"] = "3"
        let kept = try Trace.decode(tensors: trace.tensors, metadata: metadata, source: "t")
        XCTAssertNil(kept.steps)
        XCTAssertEqual(kept.extraMetadata["steps"], "3")
    }

    // MARK: PyTorch's version 2 fixtures (Fixtures/oracle/steps, make_traces.py)

    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/oracle/steps/\(name)").path
    }

    func testPyTorchStepsAgreeAtEveryStep() throws {
        for name in ["tiny-steps-5-f64-sgd-pytorch.safetensors", "tiny-steps-5-f32-sgd-paper.safetensors"] {
            let trace = try Trace.read(path: Self.fixture(name))
            XCTAssertEqual(trace.steps, 5)
            let report = try Oracle.check(trace)
            assertAgrees(report)
            XCTAssertEqual(Set(report.entries.compactMap(\.step)), [1, 2, 3, 4, 5], name)
            if trace.dtype == .float64 {
                for entry in report.entries {
                    XCTAssertLessThan(entry.alone?.maxRelativeError ?? 1, 1e-10, entry.name)
                    XCTAssertLessThan(entry.endToEnd?.maxRelativeError ?? 1, 1e-10, entry.name)
                }
            }
        }
    }

    /// The must-show case with PyTorch's own numbers: its 5 steps in the pytorch SGD form, checked
    /// as the paper form, agree at step 1 and fail at step 2 with the SGD-form diagnosis, in tolerance mode.
    func testPyTorchStepsInTheirSGDFormCheckedAsPaperFailAtStep2() throws {
        var trace = try Trace.read(path: Self.fixture("tiny-steps-5-f64-sgd-pytorch.safetensors"))
        XCTAssertEqual(trace.sgd?.form, .pytorch)
        trace.sgd?.form = .paper
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "step2.updated.conv1.weight", finding: "sgd-form")
        XCTAssertEqual(report.firstDivergence?.step, 2)
        XCTAssertTrue(report.entries.filter { $0.step == 1 }.allSatisfy { $0.verdict == .agrees }, report.table())
        XCTAssertTrue(report.entries.filter { $0.step == 2 && $0.role.phase == .update }.allSatisfy {
            $0.findings.contains { $0.code == "sgd-form" } }, report.table())
    }

    // MARK: The command line

    func testTheCommandLineExits2NamingAMissingStepTensorOrBadSteps() throws {
        let directory = try OracleFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var trace = try Self.stepsTrace(Float.self, steps: 3)
        try trace.write(to: directory.appendingPathComponent("good.safetensors").path)
        let good = try CLI.run(["check", "good.safetensors", "--tolerance", "forward.conv1=1e-4",
                                "--tolerance", "step2.loss=1e-5"], in: directory)
        XCTAssertEqual(good.status, 0, good.output + good.error)
        XCTAssertTrue(good.output.contains("AGREE: all "), good.output)
        let extract = try CLI.run(["check", "good.safetensors", "--extract", "conv1", "-o", "c.safetensors"], in: directory)
        XCTAssertEqual(extract.status, 2)
        XCTAssertTrue(extract.error.contains("--extract reads a trace of one step"), extract.error)

        trace.remove("step2.grad.fc3.weight")
        try trace.write(to: directory.appendingPathComponent("missing.safetensors").path)
        let missing = try CLI.run(["check", "missing.safetensors", "--junit", "j.xml", "--report", "r.json"], in: directory)
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.error.contains("missing 1 required tensor(s): step2.grad.fc3.weight"), missing.error)
        let junit = try String(contentsOf: directory.appendingPathComponent("j.xml"), encoding: .utf8)
        XCTAssertTrue(junit.contains("step2.grad.fc3.weight"), junit)

        let (tensors, metadata) = try Safetensors.read(path: directory.appendingPathComponent("good.safetensors").path)
        var zero = metadata
        zero["steps"] = "0"
        try Safetensors.write(tensors, metadata: zero, to: directory.appendingPathComponent("zero.safetensors").path)
        let zeroRun = try CLI.run(["check", "zero.safetensors"], in: directory)
        XCTAssertEqual(zeroRun.status, 2)
        XCTAssertTrue(zeroRun.error.contains("metadata 'steps': expected an integer in 1...10000, got '0'"), zeroRun.error)
    }
}

/// The members of a JSON report (`alexnet-oracle-report/1`) the tests read back.
private struct ReportExcerpt: Decodable {
    struct Divergence: Decodable {
        var tensor: String
        var layer: String?
        var step: Int?
    }

    struct Tensor: Decodable {
        var name: String
        var step: Int?
        var fails: Bool
    }

    var format: String
    var steps: Int?
    var blasCore: String
    var exitStatus: Int
    var firstDivergence: Divergence?
    var tensors: [Tensor]
    var absent: [String]

    enum CodingKeys: String, CodingKey {
        case format, steps, blasCore = "blas_core", exitStatus = "exit_status", firstDivergence = "first_divergence"
        case tensors, absent
    }
}
