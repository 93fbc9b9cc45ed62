/// A network described as data: input shape, classes, towers and a list of
/// layers. Every shipped model is one, and a user's JSON spec file parses into
/// one (``ModelSpec/parse(json:source:)``), so an experiment is a file, not a
/// code change.
///
/// ## Towers
/// With `towers: 2` the model is the paper's two-GPU layout. Every activation
/// is split between the towers along its channel (or feature) dimension in two
/// contiguous halves, and a layer either runs inside each tower on its own half
/// or needs all of its input and makes the towers exchange first:
/// - a convolution with `groups` a multiple of `towers` is local (conv2, conv4,
///   conv5: each tower convolves its own maps);
/// - a convolution with `groups: 1` crosses (conv3 sees all 256 maps): each tower
///   computes `outputs / towers` channels from the whole input; when its input
///   is the image itself (conv1) both towers already hold it and nothing crosses;
/// - a linear layer always crosses (fc6, fc7, fc8: each tower computes half the
///   neurons from all inputs);
/// - LRN normalises within a tower's own channels (channel groups of
///   `channels / towers`); ReLU, tanh, pooling and dropout are local.
public struct ModelSpec: Equatable, Sendable {
    /// The model's name, e.g. `"paper"`.
    public var name: String
    /// One image's shape `[C, H, W]`.
    public var inputShape: Shape
    /// 1 (one pool) or 2 (the paper's two GPUs).
    public var towers: Int
    /// The layers in execution order; the last must be a linear layer giving the class scores.
    public var layers: [LayerSpec]

    /// Validates the spec: unique names, shapes that work all the way down,
    /// tower divisibility, a final linear layer.
    /// - Throws: ``ModelSpecError`` naming the layer and the problem.
    public init(name: String, inputShape: Shape, towers: Int = 1, layers: [LayerSpec]) throws {
        self.name = name
        self.inputShape = inputShape
        self.towers = towers
        self.layers = layers
        try validate()
    }

    /// Number of classes: the outputs of the last (linear) layer.
    public var classes: Int {
        if case .linear(let outputs, _)? = layers.last?.kind { return outputs }
        return 0
    }

    /// Per-image output shape of every layer, `[C, H, W]` or `[F]`, in order.
    public func outputShapes() throws -> [Shape] {
        var shape = inputShape
        var result: [Shape] = []
        for layer in layers {
            shape = try layer.outputShape(for: shape)
            result.append(shape)
        }
        return result
    }

    private func validate() throws {
        func fail(_ layer: String, _ problem: String) -> ModelSpecError { ModelSpecError(location: layer, problem: problem) }
        guard inputShape.rank == 3, inputShape.dims.allSatisfy({ $0 >= 1 }) else {
            throw fail("input", "input shape \(inputShape) must be [C, H, W] with positive extents")
        }
        guard towers == 1 || towers == 2 else { throw fail("towers", "towers must be 1 or 2, got \(towers)") }
        guard !layers.isEmpty else { throw fail("layers", "the model has no layers") }
        var seen = Set<String>()
        for layer in layers {
            guard !layer.name.isEmpty else { throw fail("layers", "every layer needs a non-empty name") }
            guard seen.insert(layer.name).inserted else { throw fail(layer.name, "the name is used by two layers") }
        }
        guard case .linear? = layers.last?.kind else {
            throw fail(layers.last!.name, "the last layer must be linear (the class scores)")
        }
        var shape = inputShape
        for (index, layer) in layers.enumerated() {
            if towers > 1 {
                let channels = shape[0]
                switch layer.kind {
                case .convolution(let outputs, _, _, _, let groups, _):
                    guard outputs % towers == 0 else {
                        throw fail(layer.name, "\(outputs) outputs cannot be split between \(towers) towers")
                    }
                    guard groups == 1 || groups % towers == 0 else {
                        throw fail(layer.name, "groups \(groups) must be 1 (the towers exchange, as at the paper's conv3) "
                                   + "or a multiple of towers (\(towers)) so that each tower convolves its own channels")
                    }
                    let input = TowerPlan.input(for: layer, at: index, towers: towers)
                    if input != .wholeImage, channels % towers != 0 {
                        throw fail(layer.name, "its \(channels) input channels cannot be split between \(towers) towers")
                    }
                case .linear(let outputs, _):
                    guard outputs % towers == 0 else {
                        throw fail(layer.name, "\(outputs) outputs cannot be split between \(towers) towers")
                    }
                case .localResponseNorm, .maxPool, .avgPool, .relu, .tanh, .dropout:
                    // The rule (TowerPlan) starts a two-tower net with a layer that splits its outputs.
                    guard index > 0 else {
                        throw fail(layer.name, "with \(towers) towers the first layer must be a convolution or linear layer")
                    }
                }
            }
            do {
                shape = try layer.outputShape(for: shape)
            } catch let error as ModelSpecError {
                throw error
            } catch {
                throw fail(layer.name, "\(error)")
            }
        }
    }
}

/// One layer of a ``ModelSpec``.
public struct LayerSpec: Equatable, Sendable {
    /// Unique within the model, e.g. `"conv1"`; the key of its parameters (`conv1.weight`).
    public var name: String
    public var kind: Kind

    public init(name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The layer kinds and their settings. Pairs are `(height, width)`.
    public enum Kind: Equatable, Sendable {
        /// `bias`: none, or the constant the bias starts at (the paper: 1 in conv2, conv4, conv5, 0 in conv1, conv3).
        case convolution(outputs: Int, kernel: Pair, stride: Pair, padding: Pair, groups: Int, bias: BiasSetting)
        case maxPool(kernel: Pair, stride: Pair, padding: Pair, rounding: PoolRounding)
        case avgPool(kernel: Pair, stride: Pair, padding: Pair, rounding: PoolRounding, countIncludePadding: Bool)
        case localResponseNorm(size: Int, alpha: Double, beta: Double, k: Double, convention: LRNConvention)
        case relu
        case tanh
        /// `bias`: none, or the constant it starts at (the paper: 1 in fc6 and fc7, 0 in fc8).
        case linear(outputs: Int, bias: BiasSetting)
        case dropout(rate: Double, scaling: DropoutScaling)
    }

    /// Whether a linear layer has a bias and the constant it starts at.
    public enum BiasSetting: Equatable, Sendable {
        case none
        case constant(Double)
    }

    /// The per-image output shape for a per-image input shape.
    /// - Throws: ``ModelSpecError`` naming this layer when the input does not fit.
    public func outputShape(for input: Shape) throws -> Shape {
        func fail(_ problem: String) -> ModelSpecError { ModelSpecError(location: name, problem: problem) }
        switch kind {
        case .convolution(let outputs, let kernel, let stride, let padding, let groups, _):
            guard input.rank == 3 else { throw fail("a convolution needs [C, H, W] input, got \(input)") }
            guard outputs >= 1, groups >= 1, input[0] % groups == 0, outputs % groups == 0 else {
                throw fail("groups \(groups) must divide the input channels (\(input[0])) and the outputs (\(outputs))")
            }
            let g = try geometry(input, kernel, stride, padding)
            return [outputs, g.outputHeight, g.outputWidth]
        case .maxPool(let kernel, let stride, let padding, let rounding),
             .avgPool(let kernel, let stride, let padding, let rounding, _):
            guard input.rank == 3 else { throw fail("pooling needs [C, H, W] input, got \(input)") }
            guard let h = rounding.outputExtent(input: input[1], kernel: kernel.height, stride: stride.height, padding: padding.height),
                  let w = rounding.outputExtent(input: input[2], kernel: kernel.width, stride: stride.width, padding: padding.width)
            else {
                throw fail("a \(kernel) window with stride \(stride) and padding \(padding) cannot pool a "
                           + "\(input[1])x\(input[2]) input")
            }
            return [input[0], h, w]
        case .localResponseNorm:
            guard input.rank == 3 else { throw fail("LRN needs [C, H, W] input, got \(input)") }
            return input
        case .relu, .tanh, .dropout:
            return input
        case .linear(let outputs, _):
            guard outputs >= 1 else { throw fail("a linear layer needs at least one output") }
            return [outputs]
        }
    }

    private func geometry(_ input: Shape, _ kernel: Pair, _ stride: Pair, _ padding: Pair) throws -> ConvGeometry {
        do {
            return try ConvGeometry(channels: input[0], height: input[1], width: input[2],
                                    kernel: (kernel.height, kernel.width), stride: (stride.height, stride.width),
                                    padding: (padding.height, padding.width), component: name)
        } catch let error as ConfigurationError {
            throw ModelSpecError(location: name, problem: error.problem)
        }
    }
}

/// A `(height, width)` pair: kernel, stride or padding.
public struct Pair: Equatable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    /// A square pair: `3` is 3x3.
    public init(integerLiteral value: Int) { self.init(value, value) }

    public var tuple: (Int, Int) { (height, width) }

    /// `3x3`.
    public var description: String { "\(height)x\(width)" }
}

/// A model spec that cannot be built: names where (a layer, a JSON key path or
/// line) and what is wrong.
public struct ModelSpecError: Error, CustomStringConvertible, Equatable {
    /// A layer name, or a key path such as `layers[3].kernel`, or `file:line`.
    public var location: String
    public var problem: String

    public init(location: String, problem: String) {
        self.location = location
        self.problem = problem
    }

    public var description: String { "\(location): \(problem)" }
}
