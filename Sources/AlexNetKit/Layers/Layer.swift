/// Whether a pass trains (dropout draws masks, caches are kept for backward) or infers;
/// the raw value is its spelling in traces and on the command line.
public enum PassMode: String, Sendable, Equatable, CaseIterable {
    case training
    case inference
}

/// What every layer needs to know about the pass it runs in.
public struct PassContext: Sendable {
    /// The threads that run the layer's fixed partition of work.
    public var pool: WorkerPool
    /// Training or inference.
    public var mode: PassMode
    /// The optimisation step, part of every random key (dropout masks), so a
    /// step's randomness is the same however it is scheduled or resumed.
    public var step: UInt64
    /// Where layers take their input gradients in backward: a
    /// ``GradientBuffers`` of the element type (training, where no one keeps
    /// the gradients), or nil for each layer's own buffer kept between passes.
    public var gradientBuffers: (any AnyObject & Sendable)?
    /// Whether backward must compute dLoss/dInput. A network that keeps no
    /// gradients clears it for its first layer, whose input is the image and
    /// whose input gradient nobody reads: a layer may then skip that work and
    /// return an empty tensor (shape `[0]`); its parameter gradients are the
    /// same either way. ``Conv2D`` and ``Linear`` skip it; on the paper net
    /// that saves conv1's largest product and its stride-4 col2im.
    public var needsInputGradient: Bool

    public init(pool: WorkerPool = .serial, mode: PassMode = .inference, step: UInt64 = 0,
                gradientBuffers: (any AnyObject & Sendable)? = nil, needsInputGradient: Bool = true) {
        self.pool = pool
        self.mode = mode
        self.step = step
        self.gradientBuffers = gradientBuffers
        self.needsInputGradient = needsInputGradient
    }

    /// This context with ``needsInputGradient`` set to `needed`.
    public func needingInputGradient(_ needed: Bool) -> PassContext {
        var copy = self
        copy.needsInputGradient = needed
        return copy
    }
}

/// A learnable tensor and its gradient from the last backward pass.
public final class Parameter<Element: TensorElement> {
    /// The name within its layer: `"weight"` or `"bias"`.
    public let name: String
    /// The current value.
    public var value: Tensor<Element>
    /// dLoss/dValue from the last ``Layer/backward(_:context:)``, same shape as `value`.
    /// Backward overwrites it (it does not accumulate across calls).
    public var gradient: Tensor<Element>

    /// A parameter holding `value`, with a zero gradient of the same shape.
    public init(name: String, value: Tensor<Element>) {
        self.name = name
        self.value = value
        self.gradient = Tensor(shape: value.shape)
    }
}

/// One layer of a network: forward and backward side by side.
///
/// A layer keeps what its backward pass needs from the last forward pass (its
/// input, a pooling argmax, an LRN scale), so `backward` must follow the
/// `forward` whose gradient it receives. Both validate their arguments and throw
/// ``ShapeError`` rather than read out of bounds.
public protocol Layer<Element>: AnyObject {
    associatedtype Element: TensorElement

    /// The layer's name in errors and reports, e.g. `"conv1"`.
    var name: String { get }

    /// The learnable tensors, in a fixed order (weight before bias).
    var parameters: [Parameter<Element>] { get }

    /// The output shape this layer gives for `inputShape`.
    /// - Throws: ``ShapeError`` if the layer cannot take that input.
    func outputShape(for inputShape: Shape) throws -> Shape

    /// Computes the layer's output for a batch.
    func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element>

    /// Given dLoss/dOutput for the last forward pass, returns dLoss/dInput and
    /// stores dLoss/dParameter in each parameter's `gradient`.
    func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element>

    /// Multiply-adds of one forward pass over an input of `inputShape` (the
    /// matrix products of convolutions and fully connected layers; 0 for layers
    /// whose cost is element-wise).
    func multiplyAdds(for inputShape: Shape) throws -> Int

    /// Drops the tensors kept from the last forward pass for backward. A network
    /// calls it on every layer before a forward pass, so that each layer's
    /// recycled output buffer is no longer shared and can be reused in place.
    /// A later `backward` (before the next forward) then throws.
    func releaseCaches()
}

extension Layer {
    public var parameters: [Parameter<Element>] { [] }

    public func multiplyAdds(for inputShape: Shape) throws -> Int { 0 }

    public func releaseCaches() {}

    /// Throws unless `gradient` matches the output shape of the cached forward pass.
    /// - Parameter cachedInput: the input kept from the last forward, or nil if none ran.
    func requireBackwardState(cachedInput: Tensor<Element>?, outputGradient gradient: Tensor<Element>) throws -> Tensor<Element> {
        guard let input = cachedInput else {
            throw ConfigurationError(component: name, problem: "backward was called before forward")
        }
        let expected = try outputShape(for: input.shape)
        try gradient.requireShape(expected, operation: name, argument: "outputGradient")
        return input
    }
}

/// A layer with a weight whose rows are its outputs, and an optional bias of one
/// value per output (convolutions and fully connected layers).
public protocol WeightedLayer: Layer {
    /// `[outputs, ...]`.
    var weight: Parameter<Element> { get }
    /// `[outputs]`, or nil for a layer built without a bias.
    var bias: Parameter<Element>? { get }
    /// The shape the weight must have.
    var weightShape: Shape { get }
}

extension WeightedLayer {
    /// Replaces the weight.
    /// - Parameter value: ``weightShape``.
    /// - Throws: ``ShapeError`` naming the layer if the shape differs.
    public func setWeight(_ value: Tensor<Element>) throws {
        try value.requireShape(weightShape, operation: name, argument: "weight")
        weight.value = value
    }

    /// Replaces the bias.
    /// - Parameter value: `[outputs]`, one per row of the weight.
    /// - Throws: ``ConfigurationError`` if the layer has no bias, ``ShapeError`` if the shape differs.
    public func setBias(_ value: Tensor<Element>) throws {
        guard let bias else {
            throw ConfigurationError(component: name, problem: "the layer was built with bias: false and has no bias to set")
        }
        try value.requireShape([weightShape[0]], operation: name, argument: "bias")
        bias.value = value
    }
}
