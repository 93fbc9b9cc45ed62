import Foundation
import XCTest
@testable import AlexNetKit

/// Traces round-trip through both file forms, and every unusable trace gets an
/// error that names the tensor or metadata key.
final class OracleTraceFormatTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws { directory = try OracleFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func smallTrace() throws -> Trace { try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Float.self) }

    /// The error `Oracle.check` throws for `trace`, as text.
    func checkError(_ trace: Trace, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard let error = captureError({ try Oracle.check(trace) }, file: file, line: line) else { return "" }
        XCTAssertTrue(error is TraceError, "\(type(of: error)): \(error)", file: file, line: line)
        return "\(error)"
    }

    // MARK: Round trips

    func testSafetensorsRoundTripKeepsTensorsAndMetadataAndChecksClean() throws {
        let trace = try smallTrace()
        let path = directory.appendingPathComponent("t.safetensors").path
        try trace.write(to: path)
        let read = try Trace.read(path: path)
        XCTAssertEqual(read.kind, .network)
        XCTAssertEqual(read.spec, trace.spec)
        XCTAssertEqual(read.sgd, trace.sgd)
        XCTAssertEqual(read.mode, .training)
        XCTAssertEqual(read.dtype, .float32)
        XCTAssertEqual(read.producer, TraceRecorder.producer)
        XCTAssertEqual(Set(read.names), Set(trace.names))
        for tensor in trace.tensors { XCTAssertEqual(read[tensor.name], tensor, tensor.name) }
        XCTAssertEqual(read.metadata["format"], "alexnet-trace/1")
        assertAgrees(try Oracle.check(read))
    }

    func testNpyDirectoryRoundTripChecksClean() throws {
        let trace = try OracleFixtures.trace(try OracleFixtures.cifarTowers(), Double.self, towerTensors: true)
        let path = directory.appendingPathComponent("trace").path
        try trace.write(to: path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/metadata.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/tower1.forward.conv3.npy"))
        let read = try Trace.read(path: path)
        XCTAssertEqual(read.towers, 2)
        XCTAssertEqual(Set(read.names), Set(trace.names))
        assertAgrees(try Oracle.check(read))
    }

    func testLayerJSONIsOneSpecEntryAndParsesBack() throws {
        let spec = try OracleFixtures.smallPaperNet()
        for layer in spec.layers {
            let json = layer.jsonString()
            XCTAssertTrue(json.hasPrefix("{\"name\": \"\(layer.name)\", \"type\": "), json)
            XCTAssertTrue(spec.jsonString().contains(json), json)
        }
        let lrn = spec.layers[2]
        XCTAssertEqual(try LayerSpec.parse(json: lrn.jsonString(), input: [2, 8, 5, 5], source: "t"), lrn)
    }

    func testLayerTraceRoundTripsAndChecksClean() throws {
        let trace = try TraceRecorder.layerTrace(try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), Double.self),
                                                 layer: "conv2")
        XCTAssertEqual(Set(trace.names), ["input", "param.conv2.weight", "param.conv2.bias", "forward.conv2", "grad_output.conv2",
                                          "grad_input.conv2", "grad.conv2.weight", "grad.conv2.bias", "updated.conv2.weight",
                                          "updated.conv2.bias"])
        let path = directory.appendingPathComponent("layer.safetensors").path
        try trace.write(to: path)
        let read = try Trace.read(path: path)
        XCTAssertEqual(read.layer, trace.layer)
        assertAgrees(try Oracle.check(read))
    }

    func testAbsentTensorsAreListedNotRequired() throws {
        var trace = try smallTrace()
        for name in trace.names where name.hasPrefix("forward.") || name.hasPrefix("grad_input.") { trace.remove(name) }
        // forward.* are required by default; narrowed to the rest, their absence is only listed.
        let report = try Oracle.check(trace, options: OracleOptions(compare: [.loss, .grad, .updated]))
        assertAgrees(report)
        XCTAssertTrue(report.absent.contains("forward.lrn1"))
        XCTAssertTrue(report.absent.contains("grad_input.conv1"))
        XCTAssertFalse(report.absent.contains("updated.fc4.bias"))
    }

    // MARK: Unusable traces: the error names the tensor

    func testMissingRequiredTensorIsNamed() throws {
        var trace = try smallTrace()
        trace.remove("param.conv2.weight")
        let message = checkError(trace)
        XCTAssertTrue(message.contains("param.conv2.weight: missing; every parameter is required (shape [8, 4, 3, 3])"), message)

        var noMask = try smallTrace()
        noMask.remove("mask.drop3")
        XCTAssertTrue(checkError(noMask).contains("mask.drop3: missing; in training mode"), checkError(noMask))

        var noInput = try smallTrace()
        noInput.remove("input")
        XCTAssertTrue(checkError(noInput).contains("input: missing"), checkError(noInput))

        var noLabels = try smallTrace()
        noLabels.remove("labels")
        XCTAssertTrue(checkError(noLabels).contains("labels: missing"), checkError(noLabels))
    }

    func testWrongShapeIsNamedWithTheShapeTheSpecImplies() throws {
        var trace = try smallTrace()
        trace.set("forward.conv2", Tensor<Float>(shape: [2, 8, 5, 5]))
        let message = checkError(trace)
        XCTAssertTrue(message.contains("forward.conv2: shape [2, 8, 5, 5], the spec implies [2, 8, 7, 7]"), message)

        var weight = try smallTrace()
        weight.set("param.fc3.weight", Tensor<Float>(shape: [72, 16]))
        let transposed = checkError(weight)
        XCTAssertTrue(transposed.contains("param.fc3.weight: shape [72, 16], the spec implies [16, 72] (transposed"), transposed)

        var nhwc = try smallTrace()
        nhwc.set("input", Tensor<Float>(shape: [2, 16, 16, 3]))
        XCTAssertTrue(checkError(nhwc).contains("this is [N, H, W, C]"), checkError(nhwc))
    }

    func testNaNIsNamedWithItsPosition() throws {
        var trace = try smallTrace()
        var lrn = try trace["forward.lrn1"]!.floatTensor(as: Float.self)
        lrn[1, 2, 3, 4] = .nan
        trace.set("forward.lrn1", lrn)
        let message = checkError(trace)
        XCTAssertTrue(message.contains("forward.lrn1: 1 non-finite value(s), the first nan at [1, 2, 3, 4]"), message)

        var parameter = try smallTrace()
        var bias = try parameter["param.fc4.bias"]!.floatTensor(as: Float.self)
        bias[3] = .infinity
        parameter.set("param.fc4.bias", bias)
        XCTAssertTrue(checkError(parameter).contains("param.fc4.bias: 1 non-finite value(s), the first inf at [3]"), checkError(parameter))
    }

    func testWrongDtypeIsNamed() throws {
        var trace = try smallTrace()
        trace.set("forward.conv1", Tensor<Double>(shape: [2, 8, 16, 16]))
        let message = checkError(trace)
        XCTAssertTrue(message.contains("forward.conv1: dtype float64, but the trace's dtype is f32"), message)

        var labels = try smallTrace()
        labels.set("labels", Tensor<Float>(shape: [2]))
        XCTAssertTrue(checkError(labels).contains("labels: dtype float32: labels are class indices, int64"), checkError(labels))
    }

    func testBadValuesAreNamed() throws {
        var trace = try smallTrace()
        trace.set(try StoredTensor(name: "labels", shape: [2], integers: [Int64(3), 10]))
        XCTAssertTrue(checkError(trace).contains("labels: label 10 of image 1 is outside 0..<10"), checkError(trace))

        var mask = try smallTrace()
        mask.set("mask.drop3", Tensor<Float>(shape: [2, 16], repeating: 0.5))
        XCTAssertTrue(checkError(mask).contains("mask.drop3: element 0 is 0.5"), checkError(mask))

        var sgd = try smallTrace()
        sgd.sgd = nil
        XCTAssertTrue(checkError(sgd).contains("metadata 'sgd_form': missing, but updated.conv1.weight is present"), checkError(sgd))
    }

    func testMetadataProblemsAreNamed() throws {
        let trace = try smallTrace()
        func decode(_ change: (inout [String: String]) -> Void) -> String {
            var metadata = trace.metadata
            change(&metadata)
            return "\(captureError { try Trace.decode(tensors: trace.tensors, metadata: metadata, source: "t.safetensors") }!)"
        }
        XCTAssertTrue(decode { $0["format"] = "alexnet-trace/3" }.contains("t.safetensors: metadata 'format': unknown version 'alexnet-trace/3'"))
        // Version 2 is known: a one-step file relabelled as version 2 lacks its `steps`.
        XCTAssertTrue(decode { $0["format"] = "alexnet-trace/2" }.contains("t.safetensors: metadata 'steps': missing"))
        XCTAssertTrue(decode { $0["format"] = "my-dump" }.contains("unknown format 'my-dump'"))
        XCTAssertTrue(decode { $0["format"] = nil }.contains("metadata 'format': missing"))
        XCTAssertTrue(decode { $0["kind"] = "model" }.contains("metadata 'kind': expected network or layer, got 'model'"))
        XCTAssertTrue(decode { $0["dtype"] = "bf16" }.contains("metadata 'dtype': expected f32 or f64, got 'bf16'"))
        XCTAssertTrue(decode { $0["mode"] = "eval" }.contains("metadata 'mode': expected training or inference"))
        XCTAssertTrue(decode { $0["learning_rate"] = "fast" }.contains("metadata 'learning_rate': expected a finite decimal number"))
        XCTAssertTrue(decode { $0["momentum"] = nil }.contains("metadata 'momentum': missing; the SGD settings come as a set"))
        let spec = decode { $0["spec"] = "{\"name\": \"x\", \"input\": [3, 8, 8], \"layers\": [{\"name\": \"c\", \"type\": \"conv\", \"outputs\": 4}]}" }
        XCTAssertTrue(spec.contains("metadata 'spec': does not parse: spec:1:35: layers[0] (c).kernel: missing"), spec)
        let json = decode { $0["spec"] = "{\"name\": " }
        XCTAssertTrue(json.contains("metadata 'spec': does not parse"), json)
        let layer = decode { $0["kind"] = "layer"; $0["layer"] = "{\"name\": \"p\", \"type\": \"maxpool\", \"kernel\": 3}" }
        XCTAssertTrue(layer.contains("metadata 'layer': stride: missing"), layer)
    }

    func testFileProblemsAreNamed() throws {
        XCTAssertTrue("\(captureError { try Trace.read(path: "/no/such/trace.safetensors") }!)"
            .contains("/no/such/trace.safetensors: no such file or directory"))
        let empty = directory.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertTrue("\(captureError { try Trace.read(path: empty) }!)".contains("metadata.json: missing"))
        try Data("{\"format\": 1}".utf8).write(to: URL(fileURLWithPath: empty + "/metadata.json"))
        XCTAssertTrue("\(captureError { try Trace.read(path: empty) }!)".contains("'format': expected a string"))
        let bare = directory.appendingPathComponent("bare.safetensors").path
        try Safetensors.write([StoredTensor(name: "input", tensor: Tensor<Float>(shape: [1]))], to: bare)
        XCTAssertTrue("\(captureError { try Trace.read(path: bare) }!)".contains("__metadata__: missing"))
    }

    // MARK: Comparison numbers

    func testComparisonNumbersOnAHandCase() {
        let ours = try! Tensor<Float>(shape: [4], values: [1, 2, 3, 4])
        let reference = try! Tensor<Float>(shape: [4], values: [1, 2, 3.5, 4])
        let c = TensorComparison.compare(ours: ours, reference: reference, tolerance: Tolerance(rtol: 0.01))
        let rms = ((1 + 4 + 12.25 + 16) / 4.0).squareRoot()
        XCTAssertEqual(c.scale, rms, accuracy: 1e-12)
        XCTAssertEqual(c.maxAbsoluteError, 0.5)
        XCTAssertEqual(c.maxRelativeError, 0.5 / (3.5 + rms), accuracy: 1e-12)
        XCTAssertEqual(c.maxULPs, 0.5 / 0x1p-22)  // Float's spacing in [2, 4) is 2^-22
        XCTAssertEqual(c.cosine, (1 + 4 + 10.5 + 16) / (30.0.squareRoot() * 33.25.squareRoot()), accuracy: 1e-12)
        XCTAssertEqual(c.outOfTolerance, 1)
        XCTAssertEqual(c.bitwiseEqual, 3)
        XCTAssertEqual(c.firstBad?.index, 2)
        XCTAssertEqual(c.firstBad?.position, [2])
        XCTAssertFalse(c.passed)
        XCTAssertTrue(TensorComparison.compare(ours: ours, reference: reference, tolerance: Tolerance(rtol: 0.1)).passed)
        XCTAssertEqual(TensorComparison.compare(ours: ours, reference: reference, tolerance: .bitExact).outOfTolerance, 1)
        XCTAssertFalse(TensorComparison.compare(ours: ours, reference: try! ours.reshaped([2, 2]), tolerance: Tolerance(rtol: 1)).passed)
    }

    func testULPDistance() {
        let one = Float(1).bitPattern, next = Float(1).nextUp.bitPattern
        XCTAssertEqual(TensorComparison.ulpDistance(UInt64(one), UInt64(next), single: true), 1)
        XCTAssertEqual(TensorComparison.ulpDistance(UInt64(Float(0).bitPattern), UInt64((-Float(0)).bitPattern), single: true), 0)
        XCTAssertEqual(TensorComparison.ulpDistance(UInt64(Float.leastNonzeroMagnitude.bitPattern),
                                                    UInt64((-Float.leastNonzeroMagnitude).bitPattern), single: true), 2)
        XCTAssertEqual(TensorComparison.ulpDistance(Double(2).bitPattern, Double(2).nextDown.bitPattern, single: false), 1)
        XCTAssertEqual(TensorComparison.ulpDistance(UInt64(Float.nan.bitPattern), UInt64(one), single: true), .infinity)
    }

    func testToleranceRuleAndOverrides() {
        XCTAssertEqual(TolerancePolicy.ruleRTol(dtype: .float32, reductionLength: 100), 32 * 0x1p-24 * 10)
        XCTAssertEqual(TolerancePolicy.ruleRTol(dtype: .float64, reductionLength: 1), 16 * 0x1p-53)
        XCTAssertLessThan(TolerancePolicy.ruleRTol(dtype: .float64, reductionLength: 10_000_000), 1e-11)
        let policy = TolerancePolicy(rtol: 1e-3, overrides: ["conv3": 1e-4, "forward.conv3": 1e-5])
        XCTAssertEqual(policy.tolerance(for: "forward.conv3", layer: "conv3", dtype: .float32, reductionLength: 9).rtol, 1e-5)
        XCTAssertEqual(policy.tolerance(for: "tower1.forward.conv3", layer: "conv3", dtype: .float32, reductionLength: 9).rtol, 1e-5)
        XCTAssertEqual(policy.tolerance(for: "grad.conv3.weight", layer: "conv3", dtype: .float32, reductionLength: 9).rtol, 1e-4)
        XCTAssertEqual(policy.tolerance(for: "forward.conv4", layer: "conv4", dtype: .float32, reductionLength: 9).rtol, 1e-3)
        XCTAssertTrue(TolerancePolicy(exact: true).tolerance(for: "loss", layer: nil, dtype: .float64, reductionLength: 1).exact)
    }

    func testReductionLengthsOfThePaperNet() throws {
        // The paper's layers with fc6 and fc7 narrowed to 16 (fc6 still sees pool5's 9216 features).
        let paper = try ModelZoo.spec(named: "paper", classes: 10)
        let spec = try ModelSpec(name: "paper-narrow-fc", inputShape: paper.inputShape, towers: 2, layers: paper.layers.map { layer in
            if case .linear(_, let bias) = layer.kind, layer.name != "fc8" { return LayerSpec(name: layer.name, .linear(outputs: 16, bias: bias)) }
            return layer
        })
        var trace = try Trace(network: spec, dtype: .float32, mode: .training)
        trace.set("input", Tensor<Float>(shape: [2, 3, 227, 227]))
        let shapes = [spec.inputShape] + (try spec.outputShapes())
        for (i, layer) in spec.layers.enumerated() {
            for (name, shape) in TracePlan.parameterShapes(of: layer, input: shapes[i]) {
                trace.set("param.\(name)", Tensor<Float>(shape: shape))
            }
            if case .dropout = layer.kind { trace.set("mask.\(layer.name)", Tensor<Float>(shape: Shape([2] + shapes[i].dims))) }
        }
        let lengths = ReductionLengths(plan: try TracePlan(trace: trace))
        XCTAssertEqual(lengths.local["forward.conv1"], 3 * 11 * 11)
        XCTAssertEqual(lengths.local["forward.conv2"], 48 * 5 * 5)  // groups 2: 48 of 96 channels per output
        XCTAssertEqual(lengths.local["forward.fc6"], 9216)
        XCTAssertEqual(lengths.local["grad.conv1.weight"], 2 * 55 * 55)
        XCTAssertEqual(lengths.local["grad_input.conv3"], 384 * 3 * 3)
        XCTAssertEqual(lengths.local["grad_input.pool1"], 4)
        XCTAssertEqual(lengths.local["grad.fc8.bias"], 2)
        XCTAssertEqual(lengths.endToEnd["forward.conv2"], 363 + 1 + 5 + 1 + 1200)
    }
}
