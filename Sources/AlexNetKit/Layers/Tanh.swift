/// Hyperbolic tangent, `y = tanh(x)`: the saturating non-linearity the paper's
/// Figure 1 compares ReLU against. Any shape.
///
/// Backward uses the output: `dx = g * (1 - y^2)`.
public final class Tanh<Element: TensorElement>: Layer {
    public let name: String
    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?
    private var cachedOutput: Tensor<Element>?

    public init(name: String = "tanh") { self.name = name }

    /// Drops what the last forward pass kept for backward, so the next pass can
    /// recycle the buffers in place (a network calls this before each forward).
    public func releaseCaches() {
        cachedInput = nil
        cachedOutput = nil
    }

    public func outputShape(for inputShape: Shape) throws -> Shape { inputShape }

    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        var output = Tensor<Element>.recycling(&outputBuffer, shape: input.shape, zeroed: false)
        defer { outputBuffer = output }
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                let (xp, yp) = (x.baseAddress!, y.baseAddress!)
                // tanh has no SIMD form in the standard library; it is a small share of any
                // network's time, so a scalar loop over fixed spans is enough.
                Elementwise.forEachSpan(count: x.count, pool: context.pool) { range in
                    for i in range { yp[i] = Element.tanh(xp[i]) }
                }
            }
        }
        cachedInput = input
        cachedOutput = output
        return output
    }

    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        let output = cachedOutput!
        var inputGradient = Tensor<Element>.gradientBuffer(&inputGradientBuffer, shape: input.shape, zeroed: false, context: context)
        defer { if context.gradientBuffers == nil { inputGradientBuffer = inputGradient } }
        output.withUnsafeBufferPointer { y in
            outputGradient.withUnsafeBufferPointer { g in
                inputGradient.withUnsafeMutableBufferPointer { d in
                    let (yp, gp, dp) = (y.baseAddress!, g.baseAddress!, d.baseAddress!)
                    Elementwise.forEachSpan(count: y.count, pool: context.pool) { range in
                        Elementwise.zip(yp, gp, dp, range,
                                        vector: { y, g in g * (1 - y * y) },
                                        scalar: { y, g in g * (1 - y * y) })
                    }
                }
            }
        }
        return inputGradient
    }
}
