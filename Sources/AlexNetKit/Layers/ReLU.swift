/// Rectified linear unit, `y = max(x, 0)` (the paper's non-linearity, section 3.1).
///
/// Any shape. Backward passes the gradient where the input was positive and
/// gives 0 elsewhere, including at exactly 0 (PyTorch and Caffe agree).
/// NaN inputs give NaN outputs (a NaN is not silently turned into 0), so a
/// finiteness check after the layer still sees it.
public final class ReLU<Element: TensorElement>: Layer {
    public let name: String
    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?

    public init(name: String = "relu") { self.name = name }

    /// Drops what the last forward pass kept for backward, so the next pass can
    /// recycle the buffers in place (a network calls this before each forward).
    public func releaseCaches() {
        cachedInput = nil
    }

    public func outputShape(for inputShape: Shape) throws -> Shape { inputShape }

    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        cachedInput = input
        var output = Tensor<Element>.recycling(&outputBuffer, shape: input.shape, zeroed: false)
        defer { outputBuffer = output }
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                let (xp, yp) = (x.baseAddress!, y.baseAddress!)
                Elementwise.forEachSpan(count: x.count, pool: context.pool) { range in
                    // `x > 0 ? x : 0` written as a lane select keeps NaN (NaN > 0 is false, so select
                    // would give 0): we therefore test `x < 0` and keep x otherwise.
                    Elementwise.map(xp, yp, range, vector: Element.reluLanes, scalar: { v in v < 0 ? 0 : v })
                }
            }
        }
        return output
    }

    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        var inputGradient = Tensor<Element>.gradientBuffer(&inputGradientBuffer, shape: input.shape, zeroed: false, context: context)
        defer { if context.gradientBuffers == nil { inputGradientBuffer = inputGradient } }
        input.withUnsafeBufferPointer { x in
            outputGradient.withUnsafeBufferPointer { g in
                inputGradient.withUnsafeMutableBufferPointer { d in
                    let (xp, gp, dp) = (x.baseAddress!, g.baseAddress!, d.baseAddress!)
                    Elementwise.forEachSpan(count: x.count, pool: context.pool) { range in
                        Elementwise.zip(xp, gp, dp, range, vector: Element.reluGradientLanes,
                                        scalar: { x, g in x <= 0 ? 0 : g })
                    }
                }
            }
        }
        return inputGradient
    }
}
