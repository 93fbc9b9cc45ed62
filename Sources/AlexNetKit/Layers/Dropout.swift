/// How dropout scales activations so that training and test outputs agree in expectation.
public enum DropoutScaling: String, Sendable, CaseIterable {
    /// The paper (section 4.2): training multiplies by the 0/1 mask only; test
    /// time multiplies every output by the keep probability `1 - p` ("multiply
    /// their outputs by 0.5").
    case paper
    /// "Inverted" dropout (PyTorch, Caffe): training multiplies by `mask / (1 - p)`;
    /// test time is the identity.
    case inverted
}

/// Dropout with masks from a counter-based generator, or injected from outside.
///
/// Element `i` (row-major over the whole batch tensor) is kept when
/// `RandomStream(seed, step, stream).uniform(i) >= p`, so the mask depends only
/// on (seed, step, stream, i), never on threads or call order; another
/// implementation can reproduce it (Docs/conventions.md) or inject its own with
/// ``injectMask(_:)`` to compare a trajectory step by step.
public final class Dropout<Element: TensorElement>: Layer {
    public let name: String
    /// Probability of dropping a unit, in [0, 1).
    public let rate: Double
    public let scaling: DropoutScaling
    /// The run's seed and this layer's stream id (its key in the generator).
    public let seed: UInt64
    public let stream: UInt32
    /// When this layer sees only a slice of a wider activation (one tower's half
    /// of fc6), where that slice sits: each image's elements are elements
    /// `offset ..< offset + k` of an image row of `rowLength`, so mask element
    /// `(n, j)` is drawn at index `n * rowLength + offset + j`, exactly as the
    /// layer over the whole activation draws it. Nil: the layer sees whole rows.
    public let slice: (offset: Int, rowLength: Int)?

    /// The 0/1 mask of the last training forward pass, `[N, ...]` like the input.
    public private(set) var lastMask: Tensor<Element>?
    private var injectedMask: Tensor<Element>?
    private var cachedShape: Shape?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var yBuffer: Tensor<Element>?
    private var lastMode: PassMode = .inference

    /// - Throws: ``ConfigurationError`` unless `0 <= rate < 1`.
    public init(name: String = "dropout", rate: Double = 0.5, scaling: DropoutScaling,
                seed: UInt64 = 0, stream: UInt32 = 0, slice: (offset: Int, rowLength: Int)? = nil) throws {
        guard rate >= 0, rate < 1 else {
            throw ConfigurationError(component: name, problem: "dropout rate \(rate) must be in [0, 1)")
        }
        if let slice, slice.offset < 0 || slice.rowLength < 1 {
            throw ConfigurationError(component: name,
                                     problem: "slice offset \(slice.offset) and row length \(slice.rowLength) must be >= 0 and >= 1")
        }
        self.name = name
        self.rate = rate
        self.scaling = scaling
        self.seed = seed
        self.stream = stream
        self.slice = slice
    }

    /// Uses `mask` (0s and 1s, the input's shape) in every training pass until
    /// ``clearInjectedMask()``, instead of drawing one.
    /// - Throws: ``ConfigurationError`` if an element is not exactly 0 or 1.
    public func injectMask(_ mask: Tensor<Element>) throws {
        if let bad = mask.storage.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            throw ConfigurationError(component: name,
                                     problem: "injected mask must hold only 0 and 1; element \(bad) is \(mask.storage[bad])")
        }
        injectedMask = mask
    }

    /// Returns to drawing masks from the generator.
    public func clearInjectedMask() { injectedMask = nil }

    public func outputShape(for inputShape: Shape) throws -> Shape { inputShape }

    /// The mask the generator draws for a tensor of `shape` at `step`: 1 keeps, 0 drops.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func generatedMask(shape: Shape, step: UInt64, pool: WorkerPool = .serial) -> Tensor<Element> {
        let random = RandomStream(seed: seed, step: step, stream: stream)
        let threshold = rate
        var mask = Tensor<Element>(shape: shape)
        let perImage = shape.rank > 0 && shape[0] > 0 ? shape.count / shape[0] : 1
        let (offset, rowLength) = slice ?? (0, perImage)
        mask.withUnsafeMutableBufferPointer { m in
            let base = m.baseAddress!
            Elementwise.forEachSpan(count: m.count, pool: pool) { range in
                // Element i draws number (i / perImage) * rowLength + offset + i % perImage:
                // consecutive within an image's row, so each run shares its Philox blocks.
                var i = range.lowerBound
                while i < range.upperBound {
                    let (image, column) = i.quotientAndRemainder(dividingBy: perImage)
                    let run = min(range.upperBound - i, perImage - column)
                    let target = base + i
                    random.forEachUniform(from: image * rowLength + offset + column, count: run) { k, u in
                        target[k] = u >= threshold ? 1 : 0
                    }
                    i += run
                }
            }
        }
        return mask
    }

    /// The factor that multiplies kept units in this mode.
    private func scale(for mode: PassMode) -> Element {
        switch (scaling, mode) {
        case (.paper, .training), (.inverted, .inference): return 1
        case (.paper, .inference): return Element(1 - rate)
        case (.inverted, .training): return Element(1 / (1 - rate))
        }
    }

    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        if let slice, input.shape.rank >= 1, input.shape[0] > 0,
           slice.offset + input.count / input.shape[0] > slice.rowLength {
            throw ShapeError(operation: name, argument: "input",
                             expected: "at most \(slice.rowLength - slice.offset) elements per image "
                                 + "(a slice at offset \(slice.offset) of rows of \(slice.rowLength))",
                             actual: input.shape)
        }
        cachedShape = input.shape
        lastMode = context.mode
        let factor = scale(for: context.mode)
        guard context.mode == .training else {
            lastMask = nil
            return multiply(input, by: nil, factor: factor, pool: context.pool)
        }
        let mask: Tensor<Element>
        if let injected = injectedMask {
            try injected.requireShape(input.shape, operation: name, argument: "injected mask")
            mask = injected
        } else {
            mask = generatedMask(shape: input.shape, step: context.step, pool: context.pool)
        }
        lastMask = mask
        return multiply(input, by: mask, factor: factor, pool: context.pool)
    }

    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        guard let shape = cachedShape else {
            throw ConfigurationError(component: name, problem: "backward was called before forward")
        }
        try outputGradient.requireShape(shape, operation: name, argument: "outputGradient")
        // The forward map is linear with the same mask and factor: its adjoint is itself.
        guard context.gradientBuffers != nil else {
            return multiply(outputGradient, by: lastMask, factor: scale(for: lastMode), pool: context.pool)
        }
        var unused: Tensor<Element>?
        var inputGradient = Tensor<Element>.gradientBuffer(&unused, shape: outputGradient.shape, zeroed: false,
                                                           context: context)
        multiply(outputGradient, by: lastMask, factor: scale(for: lastMode), pool: context.pool, into: &inputGradient)
        return inputGradient
    }

    /// `x * mask * factor` (or `x * factor` without a mask) in the layer's recycled
    /// buffer, which it keeps for the next pass.
    private func multiply(_ x: Tensor<Element>, by mask: Tensor<Element>?, factor: Element,
                          pool: WorkerPool) -> Tensor<Element> {
        var y = Tensor<Element>.recycling(&yBuffer, shape: x.shape, zeroed: false)
        multiply(x, by: mask, factor: factor, pool: pool, into: &y)
        yBuffer = y
        return y
    }

    /// `x * mask * factor` (or `x * factor` without a mask) into `y`, of x's shape,
    /// vectorised over fixed spans. `y` is written in place: a buffer taken from
    /// ``GradientBuffers`` must not be copied on write, or the pool loses it and
    /// the next layers allocate (and fault in) fresh pages every step.
    private func multiply(_ x: Tensor<Element>, by mask: Tensor<Element>?, factor: Element, pool: WorkerPool,
                          into y: inout Tensor<Element>) {
        let m = mask ?? x
        x.withUnsafeBufferPointer { xb in
            m.withUnsafeBufferPointer { mb in
                y.withUnsafeMutableBufferPointer { yb in
                    let (xp, mp, yp) = (xb.baseAddress!, mb.baseAddress!, yb.baseAddress!)
                    let hasMask = mask != nil
                    let f = Element.Vector(repeating: factor)
                    Elementwise.forEachSpan(count: xb.count, pool: pool) { range in
                        if hasMask {
                            Elementwise.zip(xp, mp, yp, range, vector: { x, m in x * m * f }, scalar: { x, m in x * m * factor })
                        } else {
                            Elementwise.map(xp, yp, range, vector: { x in x * f }, scalar: { x in x * factor })
                        }
                    }
                }
            }
        }
    }
}
