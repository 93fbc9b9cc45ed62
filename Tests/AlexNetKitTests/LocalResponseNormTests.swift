import Foundation
import XCTest
@testable import AlexNetKit

/// Specification tests for ``LocalResponseNorm``: literal values, gradient
/// checks, the square-root fast path, determinism and errors.
final class LocalResponseNormTests: XCTestCase {

    // MARK: - Helpers

    /// A `[1, C, 1, 1]` column: one pixel, `values` across the channels.
    private func column(_ values: [Double]) throws -> Tensor<Double> {
        try Tensor(shape: [1, values.count, 1, 1], values: values)
    }

    private func assertClose(_ actual: [Double], _ expected: [Double], relative tolerance: Double,
                             _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "count " + message, file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            let error = abs(a - e) / max(abs(e), Double.leastNormalMagnitude)
            XCTAssertLessThanOrEqual(error, tolerance, "\(message) element \(i): \(a) vs expected \(e)",
                                     file: file, line: line)
        }
    }

    /// An independent, deliberately naive LRN: direct loops, `x / pow(s, beta)`.
    private func naiveLRN(_ x: Tensor<Double>, size n: Int, alphaPrime: Double, beta: Double, k: Double) -> Tensor<Double> {
        var y = Tensor<Double>(shape: x.shape)
        let (images, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        for i in 0..<images {
            for c in 0..<channels {
                for h in 0..<height {
                    for w in 0..<width {
                        var sum = 0.0
                        for j in max(0, c - n / 2)...min(channels - 1, c + (n - 1) / 2) {
                            sum += x[i, j, h, w] * x[i, j, h, w]
                        }
                        y[i, c, h, w] = x[i, c, h, w] / Foundation.pow(k + alphaPrime * sum, beta)
                    }
                }
            }
        }
        return y
    }

    /// The largest `|a - b| / max|b|` over two tensors of the same shape.
    private func normwiseDifference(_ a: Tensor<Double>, _ b: Tensor<Double>) -> Double {
        let scale = b.storage.reduce(0) { max($0, abs($1)) }
        let difference = zip(a.storage, b.storage).reduce(0) { max($0, abs($1.0 - $1.1)) }
        return difference / scale
    }

    /// The largest element-wise relative difference.
    private func elementwiseDifference(_ a: Tensor<Double>, _ b: Tensor<Double>) -> Double {
        zip(a.storage, b.storage).reduce(0) { max($0, abs($1.0 - $1.1) / max(abs($1.1), Double.leastNormalMagnitude)) }
    }

    // MARK: - Literal values

    // The expected numbers below were computed once with mpmath at 40 digits by a
    // direct evaluation of the formula (not by this code) and rounded to 17
    // significant digits: for a = (1, 2, 3, 4, 5) and n = 5 the clipped windows
    // are {0,1,2}, {0..3}, {0..4}, {1..4}, {2,3,4}, with sums of squares
    // 14, 30, 55, 54, 50.

    func testPaperConventionOnFiveChannelColumn() throws {
        // s = 2 + 1e-4 * sum = 2.0014, 2.003, 2.0055, 2.0054, 2.005; b = a / s^0.75.
        let layer = try LocalResponseNorm<Double>(name: "norm1", size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .paper)
        let output = try layer.forward(column([1, 2, 3, 4, 5]), context: PassContext())
        assertClose(output.storage, [0.59429158171327116, 1.1878710105259486, 1.7801403935901126,
                                     2.3736092915813666, 2.9674555452942113], relative: 4e-16)
        assertClose(layer.lastScale!.storage, [2.0014, 2.003, 2.0055, 2.0054, 2.005], relative: 4e-16)
    }

    func testCaffeConventionOnFiveChannelColumn() throws {
        // alpha / n = 2e-5: s = 2.00028, 2.0006, 2.0011, 2.00108, 2.001.
        let layer = try LocalResponseNorm<Double>(name: "norm1", size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .caffe)
        let output = try layer.forward(column([1, 2, 3, 4, 5]), context: PassContext())
        assertClose(output.storage, [0.59454113177492977, 1.1889396136200808, 1.7830752045375236,
                                     2.3774514271564031, 2.9719033933737661], relative: 4e-16)
        assertClose(layer.lastScale!.storage, [2.00028, 2.0006, 2.0011, 2.00108, 2.001], relative: 4e-16)
    }

    func testEvenSizeFollowsPyTorchWindow() throws {
        // n = 4: window(c) = [c - 2, c + 1], clipped: {0,1}, {0,1,2}, {0..3}, {1..4}, {2,3,4};
        // sums 5, 14, 30, 54, 50; alpha / n = 0.125, k = 1: s = 1.625, 2.75, 4.75, 7.75, 7.25.
        // (mpmath, 40 digits, as above.) A symmetric or mirrored window gives other numbers.
        let layer = try LocalResponseNorm<Double>(name: "norm", size: 4, alpha: 0.5, beta: 0.75, k: 1, convention: .pytorch)
        let output = try layer.forward(column([1, 2, 3, 4, 5]), context: PassContext())
        assertClose(layer.lastScale!.storage, [1.625, 2.75, 4.75, 7.75, 7.25], relative: 0)
        assertClose(output.storage, [0.69480026595483866, 0.93654893705505252, 0.93239738644332295,
                                     0.86115973302748764, 1.1316613913487211], relative: 4e-16)
    }

    func testPaperAlphaEqualsCaffeAlphaTimesSize() throws {
        let input = GradientCheck.randomUniform(shape: [2, 7, 3, 3], seed: 11)
        let paper = try LocalResponseNorm<Double>(name: "paper", alpha: 1e-4, convention: .paper)
        let caffe = try LocalResponseNorm<Double>(name: "caffe", alpha: 5e-4, convention: .caffe)
        let pytorch = try LocalResponseNorm<Double>(name: "pytorch", alpha: 5e-4, convention: .pytorch)
        let reference = try paper.forward(input, context: PassContext())
        // 5e-4 / 5 rounds to within an ulp of 1e-4, so the outputs agree to rounding.
        XCTAssertLessThan(elementwiseDifference(try caffe.forward(input, context: PassContext()), reference), 1e-15)
        XCTAssertLessThan(elementwiseDifference(try pytorch.forward(input, context: PassContext()), reference), 1e-15)
    }

    func testSumCoefficientFollowsConvention() throws {
        XCTAssertEqual(try LocalResponseNorm<Double>(name: "a", size: 5, alpha: 1e-4, convention: .paper).sumCoefficient, 1e-4)
        XCTAssertEqual(try LocalResponseNorm<Double>(name: "b", size: 5, alpha: 1e-4, convention: .caffe).sumCoefficient, 1e-4 / 5)
        XCTAssertEqual(try LocalResponseNorm<Double>(name: "c", size: 4, alpha: 1e-4, convention: .pytorch).sumCoefficient, 1e-4 / 4)
    }

    func testNaNSpreadsOnlyThroughWindowsHoldingIt() throws {
        // n = 3: channel 0 lies in the windows of channels 0 and 1 only.
        let layer = try LocalResponseNorm<Double>(name: "norm", size: 3, alpha: 5e-4, convention: .caffe)
        let output = try layer.forward(column([.nan, 1, 2, 3, 4]), context: PassContext())
        XCTAssertTrue(output.storage[0].isNaN)
        XCTAssertTrue(output.storage[1].isNaN)
        XCTAssertTrue(output.storage[2...].allSatisfy(\.isFinite))
    }

    // MARK: - Naive reference and the square-root fast path

    func testMatchesNaiveReference() throws {
        let input = GradientCheck.randomUniform(shape: [2, 9, 3, 5], seed: 3).storage.map { 3 * $0 }
        let x = try Tensor(shape: [2, 9, 3, 5], values: input)
        for (n, convention, beta) in [(5, LRNConvention.paper, 0.75), (3, .caffe, 0.6), (4, .pytorch, 0.75), (2, .pytorch, 1.3)] {
            let layer = try LocalResponseNorm<Double>(name: "norm", size: n, alpha: 0.3, beta: beta, k: 1.5,
                                                      convention: convention)
            let alphaPrime = convention == .paper ? 0.3 : 0.3 / Double(n)
            let expected = naiveLRN(x, size: n, alphaPrime: alphaPrime, beta: beta, k: 1.5)
            let error = elementwiseDifference(try layer.forward(x, context: PassContext()), expected)
            XCTAssertLessThan(error, 1e-14, "n \(n) \(convention) beta \(beta)")
        }
    }

    func testSquareRootPathAgreesWithPowPath() throws {
        // Values from 1e-3 to 30, so s spans k to far above it.
        let raw = GradientCheck.randomUniform(shape: [3, 6, 5, 7], seed: 5).storage
        let x = try Tensor(shape: [3, 6, 5, 7], values: raw.map { 30 * $0 * abs($0) + 1e-3 })
        let gradient = GradientCheck.randomUniform(shape: [3, 6, 5, 7], seed: 6)
        for convention in [LRNConvention.paper, .caffe] {
            let fast = try LocalResponseNorm<Double>(name: "fast", size: 5, alpha: 0.01, beta: 0.75, k: 2, convention: convention)
            let general = try LocalResponseNorm<Double>(name: "pow", size: 5, alpha: 0.01, beta: 0.75, k: 2, convention: convention)
            general.forcesGeneralPower = true
            let fastOutput = try fast.forward(x, context: PassContext())
            let generalOutput = try general.forward(x, context: PassContext())
            XCTAssertFalse(fastOutput.isBitwiseEqual(to: generalOutput), "the switch must change the path taken")
            XCTAssertLessThan(elementwiseDifference(fastOutput, generalOutput), 1e-14)
            XCTAssertLessThan(elementwiseDifference(fastOutput, naiveLRN(x, size: 5, alphaPrime: fast.sumCoefficient,
                                                                           beta: 0.75, k: 2)), 1e-14)
            let fastGradient = try fast.backward(gradient, context: PassContext())
            let generalGradient = try general.backward(gradient, context: PassContext())
            XCTAssertLessThan(normwiseDifference(fastGradient, generalGradient), 1e-14)
        }
    }

    // MARK: - Gradient checks (Float64, central differences)

    private func checkGradient(size n: Int, convention: LRNConvention, beta: Double, alpha: Double,
                               channels: Int, inputScale: Double = 2, seed: UInt64,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let layer = try LocalResponseNorm<Double>(name: "norm", size: n, alpha: alpha, beta: beta, k: 2,
                                                  convention: convention)
        // Plane 3x5 = 15: three Double SIMD vectors and a scalar tail of 3.
        let shape: Shape = [2, channels, 3, 5]
        let input = try Tensor(shape: shape,
                               values: GradientCheck.randomUniform(shape: shape, seed: seed).storage.map { inputScale * $0 })
        XCTAssertTrue(layer.parameters.isEmpty, "LRN has no parameters", file: file, line: line)
        for result in [try compensatedGradientCheck(layer, input: input)] {
            XCTAssertLessThan(result.maxRelativeError, 1e-6, "\(convention) n \(n) beta \(beta) C \(channels): \(result)",
                              file: file, line: line)
            LocalResponseNormTests.worstGradientError = max(LocalResponseNormTests.worstGradientError, result.maxRelativeError)
        }
    }

    /// ``GradientCheck/check(layer:input:context:seed:step:maxElements:)`` with the
    /// loss `sum(output * R)` added with Neumaier's compensated summation.
    ///
    /// A perturbation moves only the few outputs whose window holds the element;
    /// the others come out bitwise the same. Summed exactly, they cancel in
    /// `L(x + h) - L(x - h)`; summed naively, the rounding of a 300-term sum
    /// (about 1e-14) divided by 2h = 2e-5 adds noise of ~1e-9, which is 1e-6
    /// relative on elements whose gradient is near zero.
    private func compensatedGradientCheck(_ layer: LocalResponseNorm<Double>, input: Tensor<Double>) throws -> GradientCheckResult {
        let output = try layer.forward(input, context: PassContext())
        let projection = GradientCheck.randomUniform(shape: output.shape, seed: 7)
        let analytic = try layer.backward(projection, context: PassContext())
        return try GradientCheck.check(name: "\(layer.name) input", at: input, analytic: analytic) { x in
            let y = try layer.forward(x, context: PassContext())
            var sum = 0.0, compensation = 0.0
            for (value, weight) in zip(y.storage, projection.storage) {
                let term = value * weight
                let total = sum + term
                compensation += abs(sum) >= abs(term) ? (sum - total) + term : (term - total) + sum
                sum = total
            }
            return sum + compensation
        }
    }

    nonisolated(unsafe) static var worstGradientError = 0.0

    override class func tearDown() {
        print("LocalResponseNormTests: worst gradient-check relative error \(worstGradientError)")
        super.tearDown()
    }

    func testGradientPaperOddSizesFewChannels() throws {
        // 3 and 4 channels: with n = 5 every channel's window is clipped at an edge.
        for (n, channels) in [(5, 3), (5, 4), (3, 3), (3, 4)] {
            for beta in [0.75, 0.6] {
                try checkGradient(size: n, convention: .paper, beta: beta, alpha: 0.2, channels: channels, seed: UInt64(n * 10 + channels))
            }
        }
    }

    func testGradientCaffeOddSizesFewChannels() throws {
        for (n, channels) in [(5, 3), (5, 4), (3, 3), (3, 4)] {
            for beta in [0.75, 0.6] {
                try checkGradient(size: n, convention: .caffe, beta: beta, alpha: 1.0, channels: channels, seed: UInt64(n * 10 + channels + 1))
            }
        }
    }

    func testGradientEvenSizeAsymmetricWindow() throws {
        // n = 4 (window [c-2, c+1]) and n = 2 ([c-1, c]): the backward window is the mirror image.
        for (n, channels) in [(4, 3), (4, 4), (4, 9), (2, 5)] {
            for beta in [0.75, 0.6] {
                try checkGradient(size: n, convention: .pytorch, beta: beta, alpha: 1.0, channels: channels, seed: UInt64(n * 10 + channels + 2))
            }
        }
    }

    func testGradientMoreChannelsThanWindow() throws {
        for (n, convention, seed) in [(5, LRNConvention.paper, 41), (3, .caffe, 42), (5, .caffe, 43)] {
            for beta in [0.75, 0.6] {
                try checkGradient(size: n, convention: convention, beta: beta, alpha: convention == .paper ? 0.2 : 1.0,
                                  channels: 11, seed: UInt64(seed))
            }
        }
    }

    func testGradientWithAlexNetParameters() throws {
        // alpha 1e-4 makes the cross-channel term small but not negligible at these magnitudes.
        try checkGradient(size: 5, convention: .paper, beta: 0.75, alpha: 1e-4, channels: 8, inputScale: 20, seed: 77)
        try checkGradient(size: 5, convention: .caffe, beta: 0.75, alpha: 5e-4, channels: 8, inputScale: 20, seed: 78)
    }

    func testSizeOneNormalisesEachChannelByItself() throws {
        // n = 1: s = k + alpha * a^2, da = g * s^-beta * (1 - 2 alpha beta a^2 / s).
        try checkGradient(size: 1, convention: .paper, beta: 0.75, alpha: 0.5, channels: 3, seed: 90)
    }

    // MARK: - Determinism

    func testBitwiseIdenticalAcrossWorkerCounts() throws {
        let shape: Shape = [5, 7, 9, 9]  // 81 = ten Float vectors and a tail of one
        let input = Tensor<Float>(converting: GradientCheck.randomUniform(shape: shape, seed: 21).storage.map { 4 * $0 }
            .withShape(shape))
        let gradient = Tensor<Float>(converting: GradientCheck.randomUniform(shape: shape, seed: 22))
        for (n, convention, beta) in [(5, LRNConvention.paper, 0.75), (4, .pytorch, 0.6)] {
            var reference: (Tensor<Float>, Tensor<Float>)?
            for workers in [1, 2, 4] {
                let pool = WorkerPool(workerCount: workers, label: "lrn\(workers)")
                let context = PassContext(pool: pool, mode: .training)
                let layer = try LocalResponseNorm<Float>(name: "norm", size: n, alpha: 0.1, beta: beta, k: 2, convention: convention)
                let output = try layer.forward(input, context: context)
                let inputGradient = try layer.backward(gradient, context: context)
                if let (expectedOutput, expectedGradient) = reference {
                    XCTAssertTrue(output.isBitwiseEqual(to: expectedOutput), "output, \(workers) workers, n \(n)")
                    XCTAssertTrue(inputGradient.isBitwiseEqual(to: expectedGradient), "input gradient, \(workers) workers, n \(n)")
                } else {
                    reference = (output, inputGradient)
                }
            }
        }
    }

    /// Inference drops the scale (one scratch plane per worker); a backward pass
    /// or `lastScale` after it computes the scale then. Output, scale and input
    /// gradient must be training's bits, for the square-root and the general
    /// power, with 1 to 3 workers (groups 2 gives each worker several tasks).
    func testInferenceDropsTheScaleAndBackwardRecomputesItBitForBit() throws {
        let shape: Shape = [3, 8, 7, 9]  // 63 = seven Float vectors and a tail of seven
        let input = Tensor<Float>(converting: GradientCheck.randomUniform(shape: shape, seed: 31).storage.map { 4 * $0 }
            .withShape(shape))
        let gradient = Tensor<Float>(converting: GradientCheck.randomUniform(shape: shape, seed: 32))
        for (beta, general) in [(0.75, false), (0.75, true), (0.6, false)] {
            let trained = try LocalResponseNorm<Float>(name: "norm", size: 5, alpha: 0.1, beta: beta, k: 2,
                                                       convention: .paper, groups: 2)
            trained.forcesGeneralPower = general
            let training = PassContext(mode: .training)
            let expectedOutput = try trained.forward(input, context: training)
            let expectedScale = try XCTUnwrap(trained.lastScale)
            let expectedGradient = try trained.backward(gradient, context: training)
            for workers in [1, 2, 3] {
                let context = PassContext(pool: WorkerPool(workerCount: workers, label: "lrn\(workers)"), mode: .inference)
                let what = "beta \(beta)\(general ? " (pow)" : ""), \(workers) workers"
                for readsScaleFirst in [false, true] {
                    let layer = try LocalResponseNorm<Float>(name: "norm", size: 5, alpha: 0.1, beta: beta, k: 2,
                                                             convention: .paper, groups: 2)
                    layer.forcesGeneralPower = general
                    let output = try layer.forward(input, context: context)
                    XCTAssertTrue(output.isBitwiseEqual(to: expectedOutput), "output, \(what)")
                    if readsScaleFirst {
                        XCTAssertTrue(try XCTUnwrap(layer.lastScale).isBitwiseEqual(to: expectedScale), "scale, \(what)")
                    }
                    let inputGradient = try layer.backward(gradient, context: context)
                    XCTAssertTrue(inputGradient.isBitwiseEqual(to: expectedGradient), "input gradient, \(what)")
                    XCTAssertTrue(output.isBitwiseEqual(to: expectedOutput), "output after backward, \(what)")
                }
            }
        }
    }

    // MARK: - Errors

    func testInvalidSizeIsRejected() {
        for (n, convention) in [(0, LRNConvention.paper), (-1, .pytorch), (4, .paper), (4, .caffe), (2, .caffe)] {
            XCTAssertThrowsError(try LocalResponseNorm<Float>(name: "norm1", size: n, alpha: 1e-4, convention: convention),
                                 "n \(n) \(convention)") { error in
                XCTAssertTrue(error is ConfigurationError, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("norm1:"), "\(error)")
                XCTAssertTrue("\(error)".contains("n = \(n)"), "\(error)")
            }
        }
        XCTAssertNoThrow(try LocalResponseNorm<Float>(name: "norm1", size: 4, alpha: 1e-4, convention: .pytorch))
    }

    func testInvalidConstantsAreRejected() {
        let cases: [(Double, Double, Double)] = [  // (alpha, beta, k)
            (.nan, 0.75, 2), (.infinity, 0.75, 2), (-1e-4, 0.75, 2),
            (1e-4, .nan, 2), (1e-4, -.infinity, 2),
            (1e-4, 0.75, 0), (1e-4, 0.75, -1), (1e-4, 0.75, .infinity),
            (1e300, 0.75, 2),  // finite in Double, infinite in Float
        ]
        for (alpha, beta, k) in cases {
            XCTAssertThrowsError(try LocalResponseNorm<Float>(name: "norm2", alpha: alpha, beta: beta, k: k, convention: .caffe),
                                 "alpha \(alpha) beta \(beta) k \(k)") { error in
                XCTAssertTrue(error is ConfigurationError, "\(error)")
                XCTAssertTrue("\(error)".hasPrefix("norm2:"), "\(error)")
            }
        }
    }

    func testWrongRankIsRejected() throws {
        let layer = try LocalResponseNorm<Double>(name: "norm1", alpha: 1e-4, convention: .paper)
        XCTAssertThrowsError(try layer.forward(Tensor(shape: [2, 5, 4]), context: PassContext())) { error in
            XCTAssertEqual(error as? ShapeError,
                           ShapeError(operation: "norm1", argument: "input", expected: "[N, C, H, W]", actual: [2, 5, 4]))
            XCTAssertTrue("\(error)".hasPrefix("norm1:"), "\(error)")
        }
    }

    func testBackwardBeforeForwardIsRejected() throws {
        let layer = try LocalResponseNorm<Double>(name: "norm1", alpha: 1e-4, convention: .paper)
        XCTAssertThrowsError(try layer.backward(Tensor(shape: [1, 5, 2, 2]), context: PassContext())) { error in
            XCTAssertTrue(error is ConfigurationError, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("norm1:"), "\(error)")
        }
    }

    func testGradientOfWrongShapeIsRejected() throws {
        let layer = try LocalResponseNorm<Double>(name: "norm1", alpha: 1e-4, convention: .paper)
        _ = try layer.forward(Tensor(shape: [1, 5, 2, 2], repeating: 1), context: PassContext())
        XCTAssertThrowsError(try layer.backward(Tensor(shape: [1, 5, 2, 3]), context: PassContext())) { error in
            XCTAssertTrue(error is ShapeError, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("norm1:"), "\(error)")
            XCTAssertTrue("\(error)".contains("outputGradient"), "\(error)")
        }
    }
}

extension Array where Element == Double {
    /// These values as a tensor of `shape` (test convenience; traps on a count mismatch).
    func withShape(_ shape: Shape) -> Tensor<Double> {
        try! Tensor(shape: shape, values: self)
    }
}
