/// Stochastic gradient descent with momentum and weight decay, in either of two
/// named forms that agree only while the learning rate is constant.
public enum SGDForm: String, Sendable, CaseIterable {
    /// The paper's rule (section 5), the learning rate inside the velocity:
    /// `v <- momentum * v - weightDecay * lr * w - lr * g`, then `w <- w + v`.
    case paper
    /// PyTorch's `torch.optim.SGD` (dampening 0, no Nesterov), the learning rate outside:
    /// `v <- momentum * v + (g + weightDecay * w)`, then `w <- w - lr * v`.
    case pytorch
}

/// The optimiser. Velocities start at zero and are kept per parameter (by
/// identity), so one instance serves one set of parameters; a tower network
/// uses one per tower. The update is element-wise, so it is the same for any
/// partition of the parameters.
///
/// Evaluation order (it decides the last bit, and another implementation must
/// match it to agree bitwise):
/// - paper: `v = ((momentum * v) - ((weightDecay * lr) * w)) - (lr * g)`; `w = w + v`.
/// - pytorch: `v = (momentum * v) + (g + (weightDecay * w))`; `w = w - (lr * v)`.
///
/// PyTorch's first step sets `v = g + weightDecay * w` without the momentum
/// term; with `v` starting at 0 this is the same value.
public final class SGD<Element: TensorElement> {
    /// The rate of the next step (a schedule changes it between epochs).
    public var learningRate: Double
    /// The velocity's decay per step (0.9 in the paper).
    public let momentum: Double
    /// The weight decay coefficient (0.0005 in the paper).
    public let weightDecay: Double
    /// Which of the two update rules.
    public let form: SGDForm
    private var velocities: [ObjectIdentifier: Tensor<Element>] = [:]

    /// - Parameters: the paper's values are momentum 0.9 and weight decay 0.0005.
    public init(learningRate: Double, momentum: Double = 0.9, weightDecay: Double = 5e-4, form: SGDForm) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.form = form
    }

    /// The velocity of `parameter` (zero before its first step).
    public func velocity(of parameter: Parameter<Element>) -> Tensor<Element> {
        velocities[ObjectIdentifier(parameter)] ?? Tensor(shape: parameter.value.shape)
    }

    /// Sets the velocity of `parameter` (restoring a checkpoint).
    /// - Throws: ``ShapeError`` if the shapes differ.
    public func setVelocity(_ velocity: Tensor<Element>, of parameter: Parameter<Element>) throws {
        try velocity.requireShape(parameter.value.shape, operation: "SGD", argument: "velocity")
        velocities[ObjectIdentifier(parameter)] = velocity
    }

    /// Updates every parameter from its `gradient`.
    /// - Throws: ``ShapeError`` if a gradient's shape differs from its value's.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func step(_ parameters: [Parameter<Element>], pool: WorkerPool = .serial) throws {
        let lr = Element(learningRate), mu = Element(momentum), wd = Element(weightDecay)
        let decayRate = Element(weightDecay * learningRate)  // the paper's 0.0005 * lr, rounded once
        for parameter in parameters {
            try parameter.gradient.requireShape(parameter.value.shape, operation: "SGD", argument: parameter.name + ".gradient")
            var v = velocity(of: parameter)
            let form = self.form
            parameter.gradient.withUnsafeBufferPointer { g in
                v.withUnsafeMutableBufferPointer { vb in
                    parameter.value.withUnsafeMutableBufferPointer { w in
                        let (gp, vp, wp) = (g.baseAddress!, vb.baseAddress!, w.baseAddress!)
                        Elementwise.forEachSpan(count: w.count, pool: pool) { range in
                            switch form {
                            case .paper:
                                for i in range {
                                    vp[i] = mu * vp[i] - decayRate * wp[i] - lr * gp[i]
                                    wp[i] = wp[i] + vp[i]
                                }
                            case .pytorch:
                                for i in range {
                                    vp[i] = mu * vp[i] + (gp[i] + wd * wp[i])
                                    wp[i] = wp[i] - lr * vp[i]
                                }
                            }
                        }
                    }
                }
            }
            velocities[ObjectIdentifier(parameter)] = v
        }
    }
}
