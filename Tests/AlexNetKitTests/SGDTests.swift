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

    /// The vector loop against the scalar rule written out here, bit for bit, on
    /// a parameter longer than one span (65,536) and not a multiple of a vector,
    /// so spans, vectors and the scalar tail all run; and a velocity read between
    /// steps (a second reference to it) must not change the next step.
    func testVectorStepsMatchTheScalarRuleBitForBit() throws {
        let count = Elementwise.spanLength + 11
        var seed: UInt64 = 7
        func values() -> [Float] {
            seed += 1
            return randomFloatTensor([count], seed: seed).storage
        }
        for form in SGDForm.allCases {
            let start = values()
            let gradients = [values(), values(), values()]
            let w = Parameter(name: "w", value: try Tensor<Float>(shape: [count], values: start))
            let sgd = SGD<Float>(learningRate: 0.01, momentum: 0.9, weightDecay: 0.0005, form: form)
            var (wRef, vRef) = (start, [Float](repeating: 0, count: count))
            let (lr, mu, wd) = (Float(0.01), Float(0.9), Float(0.0005))
            let decayRate = Float(0.0005 * 0.01)
            var seen: [Tensor<Float>] = []
            for g in gradients {
                w.gradient = try Tensor(shape: [count], values: g)
                try sgd.step([w], pool: WorkerPool(workerCount: 2))
                seen.append(sgd.velocity(of: w))
                for i in 0..<count {
                    switch form {
                    case .paper:
                        vRef[i] = mu * vRef[i] - decayRate * wRef[i] - lr * g[i]
                        wRef[i] = wRef[i] + vRef[i]
                    case .pytorch:
                        vRef[i] = mu * vRef[i] + (g[i] + wd * wRef[i])
                        wRef[i] = wRef[i] - lr * vRef[i]
                    }
                }
                XCTAssertNil(firstBitDifference(w.value.storage, wRef), "\(form) weights: first differing index")
                XCTAssertNil(firstBitDifference(sgd.velocity(of: w).storage, vRef), "\(form) velocity: first differing index")
            }
            XCTAssertNotNil(firstBitDifference(seen[0].storage, seen[1].storage), "\(form): an earlier velocity read must keep its values")
        }
    }

    private func firstBitDifference(_ a: [Float], _ b: [Float]) -> Int? {
        guard a.count == b.count else { return -1 }
        return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
    }
}
