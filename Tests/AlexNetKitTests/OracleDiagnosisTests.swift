import Foundation
import XCTest
@testable import AlexNetKit

/// The diagnosis beyond the five broken references of OracleCheckTests: layouts,
/// towers, TF32, kernels, the loss and SGD variants; and the Float32 rule held
/// against our own Float64.
final class OracleDiagnosisTests: XCTestCase {
    /// For the layer traces recorded without an upstream gradient (forward only), which the
    /// default rule for a training layer trace would refuse.
    static let forwardOnly = OracleOptions(compare: [.forward])

    func smallTrace<T: TensorElement>(_: T.Type) throws -> Trace {
        try OracleFixtures.trace(try OracleFixtures.smallPaperNet(), T.self)
    }

    func tensor<T: TensorElement>(_ trace: Trace, _ name: String, _: T.Type = T.self) throws -> Tensor<T> {
        try trace[name]!.floatTensor(as: T.self)
    }

    func testNHWCTensorIsRecognisedEitherWay() throws {
        var transposed = try smallTrace(Float.self)
        let conv2: Tensor<Float> = try tensor(transposed, "forward.conv2")
        // [N, C, H, W] -> [N, H, W, C], stored under its own shape.
        let (n, c, h, w) = (conv2.shape[0], conv2.shape[1], conv2.shape[2], conv2.shape[3])
        var nhwc = [Float](repeating: 0, count: conv2.count)
        for i in 0..<n { for k in 0..<c { for y in 0..<h { for x in 0..<w {
            nhwc[((i * h + y) * w + x) * c + k] = conv2[i, k, y, x]
        } } } }
        transposed.set("forward.conv2", try Tensor(shape: [n, h, w, c], values: nhwc))
        let report = try Oracle.check(transposed)
        assertFirstDivergence(report, "forward.conv2", finding: "nhwc")
        // The next layer is fed the transposed tensor, so only conv2's own output differs.
        XCTAssertEqual(report.entries.filter { $0.verdict == .differs }.map(\.name), ["forward.conv2"], report.table())

        var reshaped = try smallTrace(Float.self)
        reshaped.set("forward.conv2", try Tensor(shape: conv2.shape, values: nhwc))
        let second = try Oracle.check(reshaped)
        assertFirstDivergence(second, "forward.conv2", finding: "nhwc")
        XCTAssertTrue(second.verdictLine.contains("NHWC data under the NCHW shape"), second.verdictLine)
    }

    func testSwappedTowerHalvesAreRecognised() throws {
        var trace = try OracleFixtures.trace(try OracleFixtures.cifarTowers(), Float.self)
        let conv4: Tensor<Float> = try tensor(trace, "forward.conv4")
        trace.set("forward.conv4", try conv4.swappingHalvesOfDimension1())
        assertFirstDivergence(try Oracle.check(trace), "forward.conv4", finding: "towers-swapped")
    }

    func testSwappedTowersInPerTowerTensorsAreRecognised() throws {
        var trace = try OracleFixtures.trace(try OracleFixtures.cifarTowers(), Float.self, towerTensors: true)
        let (a, b) = (trace["tower0.forward.conv2"]!, trace["tower1.forward.conv2"]!)
        trace.set(try StoredTensor(name: "tower0.forward.conv2", dtype: b.dtype, shape: b.shape, bytes: b.bytes, source: ""))
        trace.set(try StoredTensor(name: "tower1.forward.conv2", dtype: a.dtype, shape: a.shape, bytes: a.bytes, source: ""))
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "tower0.forward.conv2", finding: "towers-swapped")
        XCTAssertTrue(report.verdictLine.contains("tower0.forward.conv2 holds what tower 1 computes"), report.verdictLine)
    }

    /// A convolution whose products were made from TF32-rounded inputs (what tensor cores do with TF32 allowed).
    func testTF32ProductsAreRecognised() throws {
        let spec = LayerSpec(name: "conv", .convolution(outputs: 16, kernel: 3, stride: 1, padding: 1, groups: 1, bias: .constant(0)))
        let input = randomFloatTensor([2, 32, 8, 8], seed: 3)
        let weight = randomFloatTensor([16, 32, 3, 3], seed: 4).scaled(by: 0.1)
        let bias = randomFloatTensor([16], seed: 5)
        let upstream = randomFloatTensor([2, 16, 8, 8], seed: 6)
        var trace = try TraceRecorder.recordLayer(spec, parameters: ["conv.weight": weight.roundedToTF32(truncating: false), "conv.bias": bias],
                                                  input: input.roundedToTF32(truncating: false),
                                                  outputGradient: upstream.roundedToTF32(truncating: false))
        // The reference recorded its Float32 tensors; only its products were TF32.
        trace.set("input", input)
        trace.set("param.conv.weight", weight)
        trace.set("grad_output.conv", upstream)
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "forward.conv", finding: "tf32")
        XCTAssertTrue(report.verdictLine.contains("TF32 inputs"), report.verdictLine)
        XCTAssertTrue(report.entries.first { $0.name == "grad_input.conv" }!.findings.contains { $0.code == "tf32" }, report.table())
    }

    func testFlippedKernelIsRecognised() throws {
        let spec = LayerSpec(name: "conv", .convolution(outputs: 4, kernel: 3, stride: 1, padding: 1, groups: 1, bias: .none))
        let input = randomFloatTensor([2, 3, 6, 6], seed: 1)
        let weight = randomFloatTensor([4, 3, 3, 3], seed: 2)
        var trace = try TraceRecorder.recordLayer(spec, parameters: ["conv.weight": try weight.flippingKernel()], input: input,
                                                  outputGradient: nil)
        trace.set("param.conv.weight", weight)
        assertFirstDivergence(try Oracle.check(trace, options: Self.forwardOnly), "forward.conv", finding: "kernel-flipped")
    }

    func testFlattenChannelLastIsRecognised() throws {
        let spec = LayerSpec(name: "fc", .linear(outputs: 5, bias: .constant(0)))
        let input = randomFloatTensor([2, 4, 3, 3], seed: 1)
        let weight = randomFloatTensor([5, 36], seed: 2)
        var trace = try TraceRecorder.recordLayer(spec, parameters: ["fc.weight": weight, "fc.bias": Tensor(shape: [5])],
                                                  input: try input.flatteningChannelLast(), outputGradient: nil)
        trace.set("input", input)
        assertFirstDivergence(try Oracle.check(trace, options: Self.forwardOnly), "forward.fc", finding: "flatten-nhwc")
    }

    func testLossSummedOverTheBatchIsRecognised() throws {
        var trace = try smallTrace(Double.self)
        let loss: Tensor<Double> = try tensor(trace, "loss")
        trace.set("loss", loss.scaled(by: 2))
        assertFirstDivergence(try Oracle.check(trace), "loss", finding: "loss-sum")
    }

    func testSGDVariantsAreRecognised() throws {
        let base = try smallTrace(Double.self)
        let sgd = try XCTUnwrap(base.sgd)
        func replacingUpdates(_ rule: (Double, Double) -> Double) throws -> Trace {
            var trace = base
            for name in base.names where name.hasPrefix("updated.") {
                let parameter = String(name.dropFirst("updated.".count))
                let w: Tensor<Double> = try tensor(base, "param." + parameter)
                let g: Tensor<Double> = try tensor(base, "grad." + parameter)
                trace.set(name, try Tensor(shape: w.shape, values: zip(w.storage, g.storage).map(rule)))
            }
            return trace
        }
        let (lr, wd, mu) = (sgd.learningRate, sgd.weightDecay, sgd.momentum)
        assertFirstDivergence(try Oracle.check(try replacingUpdates { w, g in w - lr * g - wd * w }),
                              "updated.conv1.weight", finding: "sgd-decay-not-scaled")
        assertFirstDivergence(try Oracle.check(try replacingUpdates { w, g in w - lr * g }),
                              "updated.conv1.weight", finding: "sgd-no-decay")
        assertFirstDivergence(try Oracle.check(try replacingUpdates { w, g in w - lr * (1 + mu) * (g + wd * w) }),
                              "updated.conv1.weight", finding: "sgd-nesterov")
    }

    func testAvgPoolDivisorIsRecognised() throws {
        let right = LayerSpec(name: "pool", .avgPool(kernel: 3, stride: 2, padding: 1, rounding: .floor, countIncludePadding: false))
        let wrong = LayerSpec(name: "pool", .avgPool(kernel: 3, stride: 2, padding: 1, rounding: .floor, countIncludePadding: true))
        var trace = try TraceRecorder.recordLayer(wrong, parameters: [:] as [String: Tensor<Float>],
                                                  input: randomFloatTensor([2, 3, 7, 7], seed: 1), outputGradient: nil)
        trace.layer = right
        assertFirstDivergence(try Oracle.check(trace, options: Self.forwardOnly), "forward.pool", finding: "avgpool-divisor")
    }

    func testUnexplainedMismatchSaysWhereTheBadElementsAre() throws {
        var trace = try smallTrace(Float.self)
        var fc3: Tensor<Float> = try tensor(trace, "forward.fc3")
        fc3[1, 5] += 1
        trace.set("forward.fc3", fc3)
        let report = try Oracle.check(trace)
        assertFirstDivergence(report, "forward.fc3", finding: "sparse-outliers")
        XCTAssertTrue(report.verdictLine.contains("sparse outliers: 1 of 32 elements beyond tolerance"), report.verdictLine)
        XCTAssertTrue(report.verdictLine.contains("at [1, 5]"), report.verdictLine)
        XCTAssertTrue(report.verdictLine.contains("all in image 1"), report.verdictLine)
        XCTAssertTrue(report.verdictLine.contains("bad elements only at indices 5 of dimension 1 (of 16)"), report.verdictLine)
    }

    /// One element off, in Float32 and Float64 traces, at several sizes
    /// relative to the tensor's RMS and in tensors of several sizes, is reported
    /// as sparse outliers with its position, never as a precision effect.
    func testASingleBadElementIsSparseOutliersNeverPrecision() throws {
        func plant<T: TensorElement>(_: T.Type, _ name: String, at k: Int, relative: Double) throws {
            var trace = try smallTrace(T.self)
            let original: Tensor<T> = try tensor(trace, name)
            let rms = (original.storage.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(original.count)).squareRoot()
            var values = original.storage
            values[k] += T(relative * rms)
            trace.set(name, try Tensor(shape: original.shape, values: values))
            let report = try Oracle.check(trace)
            assertFirstDivergence(report, name, finding: "sparse-outliers")
            let codes = report.firstDivergence?.findings.map(\.code) ?? []
            XCTAssertFalse(codes.contains("float32") || codes.contains("tf32"), "\(T.self) \(name) \(relative): \(codes)")
            var rest = k
            let position = original.shape.strides.map { stride -> Int in defer { rest %= stride }; return rest / stride }
            XCTAssertTrue(report.verdictLine.contains("at \(position)"), report.verdictLine)
        }
        for (name, k) in [("forward.conv1", 777), ("forward.fc3", 20), ("grad.conv2.weight", 40)] {
            for relative in [1e-2, 0.1, 1.0] { try plant(Float.self, name, at: k, relative: relative) }
            for relative in [1e-5, 1e-4, 1.5e-3] { try plant(Double.self, name, at: k, relative: relative) }
        }
    }

    /// A weight gradient with one bad output row: the hint names dimension 0
    /// (the weight's rows), not dimension 1 as for an activation.
    func testABadWeightGradientRowIsLocalisedAlongDimensionZero() throws {
        var trace = try smallTrace(Float.self)
        var gradient: Tensor<Float> = try tensor(trace, "grad.fc3.weight")
        let columns = gradient.shape[1]
        var values = gradient.storage
        for j in 0..<columns { values[3 * columns + j] += 1 }
        gradient = try Tensor(shape: gradient.shape, values: values)
        trace.set("grad.fc3.weight", gradient)
        let report = try Oracle.check(trace)
        let entry = try XCTUnwrap(report.entries.first { $0.name == "grad.fc3.weight" })
        let text = entry.findings.map(\.message).joined(separator: " | ")
        XCTAssertTrue(text.contains("bad elements only at indices 3 of dimension 0 (of \(gradient.shape[0]))"), text)
    }

    func testBitExactModeCallsLastBitDifferencesRounding() throws {
        var trace = try smallTrace(Float.self)
        var conv1: Tensor<Float> = try tensor(trace, "forward.conv1")
        conv1[0, 0, 0, 0] = conv1[0, 0, 0, 0].nextUp
        trace.set("forward.conv1", conv1)
        assertAgrees(try Oracle.check(trace))
        let exact = try Oracle.check(trace, options: OracleOptions(tolerances: TolerancePolicy(exact: true)))
        assertFirstDivergence(exact, "forward.conv1", finding: "rounding")
    }

    /// The Float32 rule against an exact reference: our Float32 step on the same weights,
    /// batch and masks as our Float64 one, the Float64 tensors rounded to Float32 as the
    /// reference, agrees alone for every tensor, with room to spare.
    func testFloat32AgreesWithOurFloat64WithinTheRule() throws {
        for spec in [try OracleFixtures.smallPaperNet(), try OracleFixtures.cifarTowers(), try ModelZoo.spec(named: "layers-18pct")] {
            let f64 = try OracleFixtures.trace(spec, Double.self, towerTensors: spec.towers == 2)
            var f32 = try Trace(network: spec, dtype: .float32, mode: f64.mode, sgd: f64.sgd, towers: f64.towers)
            for stored in f64.tensors {
                if stored.dtype == .float64 { f32.set(stored.name, try stored.narrowedToFloat()) } else { f32.set(stored) }
            }
            let report = try Oracle.check(f32)
            assertAgrees(report)
            var worst = 0.0
            for entry in report.entries {
                if let c = entry.alone, c.count > 0 { worst = max(worst, c.maxRelativeError / c.tolerance.rtol) }
            }
            XCTAssertLessThan(worst, 0.5, "\(spec.name): the largest error is \(worst) of its tolerance")
        }
    }
}
