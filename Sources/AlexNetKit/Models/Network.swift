/// A network built from a ``ModelSpec``: its layers run forward and backward
/// over a batch on one worker pool, as one *grouped* model.
///
/// With `spec.towers == 2` the grouped model computes exactly the pieces that the
/// two-tower executor (``TowerNetwork``) spreads over two pools: convolutions
/// that cross between towers have `outputSplits: 2`, linear layers
/// `outputSplits: 2`, LRN normalises each tower's channels as its own group,
/// and dropout draws each element at its position in the whole activation. So
/// the two runs give bitwise-identical outputs, gradients and weights.
///
/// Activations and gradients of the last pass stay readable per layer, for
/// oracles and for inspection.
public final class Network<Element: TensorElement> {
    /// The model this network was built from.
    public let spec: ModelSpec
    /// One layer per ``ModelSpec/layers`` entry, same order and names.
    public let layers: [any Layer<Element>]
    /// The loss after the last layer.
    public let loss = SoftmaxCrossEntropy<Element>(name: "loss")
    /// The seed of weights and dropout masks.
    public let seed: UInt64

    /// `activations[0]` is the last input, `activations[i + 1]` the output of layer `i`.
    public private(set) var activations: [Tensor<Element>] = []
    /// `gradients[i]` is dLoss/d`activations[i]` from the last backward pass
    /// (empty when ``keepsGradients`` is off).
    public private(set) var gradients: [Tensor<Element>] = []
    /// Whether backward keeps every layer's input gradient in ``gradients``
    /// (the oracle and the tests read them). Training turns it off: each
    /// gradient then goes back to the context's ``GradientBuffers`` once the
    /// layer below has consumed it, so a pass needs two gradient buffers
    /// instead of one per layer. The arithmetic is the same either way.
    public var keepsGradients = true

    /// Builds the layers and initialises their weights.
    /// - Parameters:
    ///   - seed: keys the weights (``Initialisation/standardNormal(count:seed:stream:)``) and dropout masks.
    ///   - initialisation: how weights start; biases start at the spec's constants.
    public init(spec: ModelSpec, seed: UInt64 = 0, initialisation: Initialisation = .paper) throws {
        self.spec = spec
        self.seed = seed
        try Self.checkMemory(spec)
        var layers: [any Layer<Element>] = []
        var shape = spec.inputShape
        for (index, layerSpec) in spec.layers.enumerated() {
            layers.append(try Self.makeLayer(layerSpec, index: index, inputShape: shape, towers: spec.towers,
                                             tower: nil, seed: seed))
            shape = try layerSpec.outputShape(for: shape)
        }
        self.layers = layers
        try initialiseParameters(initialisation)
    }

    /// Refuses a spec whose weights and gradients alone would take more than
    /// half of this machine's memory, before any of it is allocated (a spec may
    /// be valid, every size under ``ModelSpec/maximumSetting``, and still need terabytes).
    /// - Throws: ``ConfigurationError`` naming the model, its parameter count and the memory.
    static func checkMemory(_ spec: ModelSpec) throws {
        let summary = try ModelSummary(spec: spec, elementSize: MemoryLayout<Element>.size)
        do {
            try InputLimits.checkAllocation(bytes: InputLimits.product([summary.parameters, MemoryLayout<Element>.size, 2]),
                                            what: "model \(spec.name)")
        } catch let error as ConfigurationError {
            throw ConfigurationError(component: error.component,
                                     problem: "\(summary.parameters) parameters with their gradients " + error.problem)
        }
    }

    /// Every parameter with its state-dict name (`"conv1.weight"`), in layer order.
    public var namedParameters: [(name: String, parameter: Parameter<Element>)] {
        layers.flatMap { layer in layer.parameters.map { ("\(layer.name).\($0.name)", $0) } }
    }

    /// Runs every layer.
    /// - Parameter input: `[N, C, H, W]` with `[C, H, W]` = `spec.inputShape`.
    /// - Returns: the class scores `[N, classes]`.
    /// - Throws: ``ShapeError`` naming the first layer that cannot take its input.
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        try input.requireShape([nil] + spec.inputShape.dims.map { $0 }, operation: spec.name, argument: "input")
        // Let go of last pass's tensors first, so every layer recycles its buffers in place.
        activations.removeAll(keepingCapacity: true)
        gradients.removeAll(keepingCapacity: true)
        for layer in layers { layer.releaseCaches() }
        activations.append(input)
        for layer in layers {
            activations.append(try layer.forward(activations[activations.count - 1], context: context))
        }
        return activations[activations.count - 1]
    }

    /// Runs every layer's backward pass from dLoss/dScores, filling each
    /// parameter's gradient and ``gradients``.
    /// - Parameter scoreGradient: `[N, classes]`, e.g. from ``loss``'s backward.
    /// - Returns: dLoss/dInput, `[N, C, H, W]`; with ``keepsGradients`` off,
    ///   possibly an empty tensor, since the first layer may skip it
    ///   (``PassContext/needsInputGradient``).
    @discardableResult
    public func backward(_ scoreGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        guard activations.count == layers.count + 1 else {
            throw ConfigurationError(component: spec.name, problem: "backward was called before forward")
        }
        gradients.removeAll(keepingCapacity: true)
        if !keepsGradients {
            let buffers = context.gradientBuffers as? GradientBuffers<Element>
            var gradient = scoreGradient
            // Nobody reads the image's gradient here: the first layer may skip it.
            for (index, layer) in layers.enumerated().reversed() {
                let below = try layer.backward(gradient, context: context.needingInputGradient(index > 0))
                buffers?.give(gradient)
                gradient = below
            }
            if gradient.count > 0 { buffers?.give(gradient) }
            return gradient
        }
        var reversed = [scoreGradient]
        var gradient = scoreGradient
        for layer in layers.reversed() {
            gradient = try layer.backward(gradient, context: context)
            reversed.append(gradient)
        }
        gradients = reversed.reversed()
        return gradient
    }

    /// Forward, loss and backward for one batch: the work of a training step
    /// before the optimiser.
    /// - Parameters:
    ///   - input: `[N, C, H, W]`.
    ///   - labels: N class indices.
    public func forwardBackward(_ input: Tensor<Element>, labels: [Int], context: PassContext) throws -> LossOutput<Element> {
        let scores = try forward(input, context: context)
        let output = try loss.forward(logits: scores, labels: labels)
        try backward(try loss.backward(), context: context)
        return output
    }

    // MARK: Building

    /// The layer for `layerSpec`: the whole layer when `tower` is nil, or tower
    /// `tower`'s half of it (shared with ``TowerNetwork``).
    static func makeLayer(_ layerSpec: LayerSpec, index: Int, inputShape: Shape, towers: Int, tower: Int?,
                          seed: UInt64) throws -> any Layer<Element> {
        let name = layerSpec.name
        let share = tower == nil ? 1 : towers  // a tower holds 1/towers of every split dimension
        switch layerSpec.kind {
        case .convolution(let outputs, let kernel, let stride, let padding, let groups, let bias):
            let crosses = towers > 1 && TowerPlan.seesWholeInput(layerSpec, at: index, towers: towers)
            // A tower's copy of a convolution that sees its whole input (TowerPlan) takes every
            // channel and computes a share of the outputs; a local one only its own channels.
            let inputs = crosses ? inputShape[0] : inputShape[0] / share
            return try Conv2D<Element>(name: name, inputChannels: inputs, outputChannels: outputs / share,
                                       kernel: kernel.tuple, stride: stride.tuple, padding: padding.tuple,
                                       groups: crosses ? 1 : groups / share, bias: bias != .none,
                                       outputSplits: crosses && tower == nil ? towers : 1)
        case .linear(let outputs, let bias):
            return try Linear<Element>(name: name, inputFeatures: inputShape.count, outputFeatures: outputs / share,
                                       bias: bias != .none, outputSplits: tower == nil ? towers : 1)
        case .localResponseNorm(let size, let alpha, let beta, let k, let convention):
            return try LocalResponseNorm<Element>(name: name, size: size, alpha: alpha, beta: beta, k: k,
                                                  convention: convention, groups: tower == nil ? towers : 1)
        case .maxPool(let kernel, let stride, let padding, let rounding):
            return try MaxPool2D<Element>(name: name, kernel: kernel.tuple, stride: stride.tuple,
                                          padding: padding.tuple, rounding: rounding)
        case .avgPool(let kernel, let stride, let padding, let rounding, let countIncludePadding):
            return try AvgPool2D<Element>(name: name, kernel: kernel.tuple, stride: stride.tuple, padding: padding.tuple,
                                          rounding: rounding, countIncludePadding: countIncludePadding)
        case .relu:
            return ReLU<Element>(name: name)
        case .tanh:
            return Tanh<Element>(name: name)
        case .dropout(let rate, let scaling):
            let rowLength = inputShape.count
            let slice = tower.map { (offset: $0 * rowLength / towers, rowLength: rowLength) }
            return try Dropout<Element>(name: name, rate: rate, scaling: scaling, seed: seed,
                                        stream: UInt32(index), slice: slice)
        }
    }

    private func initialiseParameters(_ initialisation: Initialisation) throws {
        for (index, (layer, layerSpec)) in zip(layers, spec.layers).enumerated() {
            let biasValue: Double?
            switch layerSpec.kind {
            case .convolution(_, _, _, _, _, let bias), .linear(_, let bias):
                if case .constant(let value) = bias { biasValue = value } else { biasValue = nil }
            default:
                continue
            }
            let weight = layer.parameters[0]
            let fanIn = weight.value.count / weight.value.shape[0]
            let std = initialisation.standardDeviation(fanIn: fanIn)
            let normal = Initialisation.standardNormal(count: weight.value.count, seed: seed,
                                                       stream: 0x4000_0000 + UInt32(2 * index))
            weight.value = try Tensor(shape: weight.value.shape, values: normal.map { Element($0 * std) })
            if let biasValue, layer.parameters.count > 1 {
                layer.parameters[1].value = Tensor(shape: layer.parameters[1].value.shape, repeating: Element(biasValue))
            }
        }
    }
}
