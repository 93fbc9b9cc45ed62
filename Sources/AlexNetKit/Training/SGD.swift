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
            // Taken out of the table while it is updated: a second reference would make
            // the write below copy the whole velocity (244 MB for the paper net) every step.
            var v = velocities.removeValue(forKey: ObjectIdentifier(parameter)) ?? Tensor(shape: parameter.value.shape)
            let form = self.form
            parameter.gradient.withUnsafeBufferPointer { g in
                v.withUnsafeMutableBufferPointer { vb in
                    parameter.value.withUnsafeMutableBufferPointer { w in
                        let (gp, vp, wp) = (g.baseAddress!, vb.baseAddress!, w.baseAddress!)
                        Elementwise.forEachSpan(count: w.count, pool: pool) { range in
                            switch form {
                            case .paper:
                                let (muV, decayV, lrV) = (Element.Vector(repeating: mu),
                                                          Element.Vector(repeating: decayRate), Element.Vector(repeating: lr))
                                Self.update(g: gp, v: vp, w: wp, range: range,
                                            vector: { g, v, w in
                                                let newV = muV * v - decayV * w - lrV * g
                                                return (newV, w + newV)
                                            },
                                            scalar: { g, v, w in
                                                let newV = mu * v - decayRate * w - lr * g
                                                return (newV, w + newV)
                                            })
                            case .pytorch:
                                let (muV, wdV, lrV) = (Element.Vector(repeating: mu),
                                                       Element.Vector(repeating: wd), Element.Vector(repeating: lr))
                                Self.update(g: gp, v: vp, w: wp, range: range,
                                            vector: { g, v, w in
                                                let newV = muV * v + (g + wdV * w)
                                                return (newV, w - lrV * newV)
                                            },
                                            scalar: { g, v, w in
                                                let newV = mu * v + (g + wd * w)
                                                return (newV, w - lr * newV)
                                            })
                            }
                        }
                    }
                }
            }
            velocities[ObjectIdentifier(parameter)] = v
        }
    }

    /// One rule over `range`, a vector at a time, then element by element:
    /// `vector` and `scalar` map `(g, v, w)` to the new `(v, w)` with the same
    /// operations in the same order, so every lane has the scalar rule's bits.
    @inline(__always)
    private static func update(g: UnsafePointer<Element>, v: UnsafeMutablePointer<Element>,
                               w: UnsafeMutablePointer<Element>, range: Range<Int>,
                               vector: (Element.Vector, Element.Vector, Element.Vector) -> (Element.Vector, Element.Vector),
                               scalar: (Element, Element, Element) -> (Element, Element)) {
        let width = Element.Vector.scalarCount
        var i = range.lowerBound
        while i + width <= range.upperBound {
            let (newV, newW) = vector(UnsafeRawPointer(g + i).loadUnaligned(as: Element.Vector.self),
                                      UnsafeRawPointer(v + i).loadUnaligned(as: Element.Vector.self),
                                      UnsafeRawPointer(w + i).loadUnaligned(as: Element.Vector.self))
            UnsafeMutableRawPointer(v + i).storeBytes(of: newV, as: Element.Vector.self)
            UnsafeMutableRawPointer(w + i).storeBytes(of: newW, as: Element.Vector.self)
            i += width
        }
        while i < range.upperBound {
            (v[i], w[i]) = scalar(g[i], v[i], w[i])
            i += 1
        }
    }
}
