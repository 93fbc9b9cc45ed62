import XCTest
@testable import AlexNetKit

final class SGDTests: XCTestCase {
    private func parameter(_ value: Double, gradient: Double) throws -> Parameter<Double> {
        let p = Parameter(name: "w", value: try Tensor<Double>(shape: [1], values: [value]))
        p.gradient = try Tensor(shape: [1], values: [gradient])
        return p
    }

    /// w = 1, g = 0.5 both steps, momentum 0.9, weight decay 0.0005, lr 0.1.
    /// Paper: v1 = -0.0005*0.1*1 - 0.1*0.5 = -0.05005, w1 = 0.94995;
    ///        v2 = 0.9*v1 - 0.00005*w1 - 0.05 = -0.0950924975, w2 = 0.8548575025.
    /// PyTorch: v1 = 0.5 + 0.0005 = 0.5005, w1 = 1 - 0.05005 = 0.94995;
    ///        v2 = 0.9*0.5005 + 0.5 + 0.0005*0.94995 = 0.950924975, w2 = 0.8548575025.
    func testBothFormsAgainstHandComputedStepsAtConstantRate() throws {
        for (form, velocities) in [(SGDForm.paper, [-0.05005, -0.0950924975]), (.pytorch, [0.5005, 0.950924975])] {
            let w = try parameter(1, gradient: 0.5)
            let sgd = SGD<Double>(learningRate: 0.1, momentum: 0.9, weightDecay: 0.0005, form: form)
            try sgd.step([w])
            XCTAssertEqual(w.value.storage[0], 0.94995, accuracy: 1e-15, "\(form)")
            XCTAssertEqual(sgd.velocity(of: w).storage[0], velocities[0], accuracy: 1e-15, "\(form)")
            try sgd.step([w])
            XCTAssertEqual(w.value.storage[0], 0.8548575025, accuracy: 1e-15, "\(form)")
            XCTAssertEqual(sgd.velocity(of: w).storage[0], velocities[1], accuracy: 1e-15, "\(form)")
        }
    }

    /// Dropping lr to 0.01 for the second step: the paper's velocity carries the old
    /// rate's steps, PyTorch's multiplies the whole velocity by the new rate.
    /// Paper: v2 = 0.9*(-0.05005) - 0.000005*0.94995 - 0.005 = -0.05004974975, w2 = 0.89990025025.
    /// PyTorch: v2 = 0.950924975, w2 = 0.94995 - 0.00950924975 = 0.94044075025.
    func testFormsDivergeWhenTheRateChanges() throws {
        for (form, expected) in [(SGDForm.paper, 0.89990025025), (.pytorch, 0.94044075025)] {
            let w = try parameter(1, gradient: 0.5)
            let sgd = SGD<Double>(learningRate: 0.1, momentum: 0.9, weightDecay: 0.0005, form: form)
            try sgd.step([w])
            sgd.learningRate = 0.01
            try sgd.step([w])
            XCTAssertEqual(w.value.storage[0], expected, accuracy: 1e-15, "\(form)")
        }
    }

    func testGradientOfWrongShapeIsRefused() throws {
        let w = try parameter(1, gradient: 0)
        w.gradient = Tensor(shape: [2])
        XCTAssertThrowsError(try SGD<Double>(learningRate: 0.1, form: .paper).step([w])) { error in
            XCTAssertEqual("\(error)", "SGD: w.gradient has shape [2], expected [1]")
        }
    }
}
