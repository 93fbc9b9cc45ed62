/// 2-D max pooling over each (image, channel) plane: AlexNet's overlapping 3x3
/// stride-2 pooling after conv1, conv2 and conv5.
///
/// Input `[N, C, H, W]`, output `[N, C, OH, OW]` with `OH`, `OW` from
/// ``PoolRounding``. Output `(oh, ow)` is the largest input cell of the window
/// rows `oh * sh - ph ..< oh * sh - ph + kh`, columns likewise, clipped to the
/// input. Padding never wins: padded cells take no part (as if they were
/// -infinity), and the configuration guarantees every window holds an input cell.
///
/// Ties and NaN, chosen so that the argmax, and with it the input gradient, is
/// one definite cell:
/// - Ties: the first maximum in row-major window order wins (PyTorch and Caffe
///   on the CPU agree: both replace the running maximum only on `>`).
/// - NaN: a window holding NaN outputs NaN, and its first NaN in row-major order
///   is the argmax (NaN counts as larger than every number and equal to NaN).
///   PyTorch's CPU and CUDA kernels also output NaN but record the *last* NaN
///   of the window, so the cell receiving that window's gradient can differ;
///   the values cannot be compared anyway.
///
/// Backward routes each output's gradient to its argmax. Overlapping windows may
/// share an argmax; their contributions are added in row-major output order,
/// so the input gradient is deterministic.
public final class MaxPool2D<Element: TensorElement>: Layer {
    /// The layer's name in errors and reports, e.g. `"pool1"`.
    public let name: String
    /// Window size (height, width).
    public var kernel: (height: Int, width: Int) { configuration.kernel }
    /// Step between windows (height, width).
    public var stride: (height: Int, width: Int) { configuration.stride }
    /// Implicit padding on each side (height, width); padded cells never win.
    public var padding: (height: Int, width: Int) { configuration.padding }
    /// How the output size is rounded; see ``PoolRounding``.
    public var rounding: PoolRounding { configuration.rounding }

    private let configuration: PoolConfiguration
    /// The input of the last forward pass (for backward's shape checks).
    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?
    /// For every output element of the last forward pass (`[N, C, OH, OW]`), the
    /// flat index `h * W + w` of its argmax within its own input plane.
    private var cachedArgmax: [Int32] = []

    /// - Parameters:
    ///   - name: the layer's name in errors, e.g. `"pool1"`.
    ///   - kernel: window (height, width), at least 1x1. AlexNet: 3x3.
    ///   - stride: step (height, width), at least 1. AlexNet: 2x2.
    ///   - padding: implicit padding (height, width), at least 0 and smaller than
    ///     the kernel (Caffe's rule; PyTorch asks `padding <= kernel / 2`).
    ///   - rounding: output-size rounding, required: Caffe and cuda-convnet use
    ///     `.ceil`, PyTorch `.floor`.
    /// - Throws: ``ConfigurationError`` naming the layer for out-of-range settings.
    public init(name: String, kernel: (Int, Int) = (3, 3), stride: (Int, Int) = (2, 2),
                padding: (Int, Int) = (0, 0), rounding: PoolRounding) throws {
        self.name = name
        self.configuration = try PoolConfiguration(component: name, kernel: kernel, stride: stride,
                                                   padding: padding, rounding: rounding)
    }

    /// Drops what the last forward pass kept for backward, so the next pass can
    /// recycle the buffers in place (a network calls this before each forward).
    public func releaseCaches() {
        cachedInput = nil
    }

    /// `[N, C, OH, OW]` for an `[N, C, H, W]` input.
    /// - Throws: ``ShapeError`` naming the layer for a rank other than 4 or a
    ///   kernel larger than the padded input.
    public func outputShape(for inputShape: Shape) throws -> Shape {
        try configuration.outputShape(for: inputShape, component: name)
    }

    /// - Parameter input: `[N, C, H, W]`.
    /// - Returns: `[N, C, OH, OW]`, each element the maximum of its window.
    /// - Throws: ``ShapeError`` naming the layer if the input cannot be pooled.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let plan = try configuration.plan(for: input.shape, component: name)
        // The argmax is stored as an Int32 offset within the plane.
        guard input.shape[2] * input.shape[3] <= Int(Int32.max) else {
            throw ShapeError(operation: name, argument: "input", expected: "[N, C, H, W] with H * W < 2^31", actual: input.shape)
        }
        let (outputShape, width, inputPlane, outputPlane) = (plan.outputShape, plan.width, plan.inputPlane, plan.outputPlane)
        let (rows, columns, tasks) = (plan.rows, plan.columns, plan.tasks)

        var output = Tensor<Element>.recycling(&outputBuffer, shape: outputShape, zeroed: false)

        defer { outputBuffer = output }
        // Recycled like the output: the last pass's argmax is dropped first, so the
        // buffer is uniquely held and reused in place.
        var argmax = cachedArgmax
        cachedArgmax = []
        if argmax.count != outputShape.count { argmax = [Int32](repeating: 0, count: outputShape.count) }
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                argmax.withUnsafeMutableBufferPointer { argmax in
                    guard let source = source.baseAddress, let target = target.baseAddress,
                          let argmax = argmax.baseAddress else { return }
                    rows.withWindows { rowWindows in
                        columns.withWindows { columnWindows in
                            context.pool.parallelFor(tasks.count) { task, _ in
                                for plane in tasks[task] {
                                    maxPoolPlane(input: source + plane * inputPlane, width: width,
                                                 rows: rowWindows, columns: columnWindows,
                                                 output: target + plane * outputPlane,
                                                 argmax: argmax + plane * outputPlane)
                                }
                            }
                        }
                    }
                }
            }
        }
        cachedInput = input
        cachedArgmax = argmax
        return output
    }

    /// - Parameter outputGradient: dLoss/dOutput, `[N, C, OH, OW]` as returned by the last forward.
    /// - Returns: dLoss/dInput, `[N, C, H, W]`: each output's gradient added to its
    ///   argmax cell, zero elsewhere.
    /// - Throws: ``ConfigurationError`` if no forward pass ran, ``ShapeError`` if
    ///   the gradient's shape is not the last output's.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        let plan = try configuration.plan(for: input.shape, component: name)
        let (inputPlane, outputPlane, tasks) = (plan.inputPlane, plan.outputPlane, plan.tasks)

        var inputGradient = Tensor<Element>.gradientBuffer(&inputGradientBuffer, shape: input.shape, zeroed: true, context: context)

        defer { if context.gradientBuffers == nil { inputGradientBuffer = inputGradient } }
        outputGradient.withUnsafeBufferPointer { gradient in
            inputGradient.withUnsafeMutableBufferPointer { target in
                cachedArgmax.withUnsafeBufferPointer { argmax in
                    guard let gradient = gradient.baseAddress, let target = target.baseAddress,
                          let argmax = argmax.baseAddress else { return }
                    context.pool.parallelFor(tasks.count) { task, _ in
                        for plane in tasks[task] {
                            let g = gradient + plane * outputPlane
                            let dx = target + plane * inputPlane
                            let index = argmax + plane * outputPlane
                            // Row-major output order: a cell that is the argmax of
                            // several overlapping windows sums them in a fixed order.
                            for o in 0..<outputPlane { dx[Int(index[o])] += g[o] }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}

/// Max-pools one `[H, W]` plane into `[OH, OW]`, recording each argmax as
/// `h * W + w`, by scanning each window in row-major order: the type's rule
/// written out literally, so the result is that rule's by construction. A
/// later cell replaces the running maximum when the maximum is not NaN and the
/// cell is not `<=` it (it is greater, or the first NaN); ties keep the first.
/// The selects compile to conditional moves, so ReLU's many zeros cost no
/// mispredicted branches. It replaced a separable pass (column maxima, then
/// the best column), whose per-row setup over few columns cost more than it
/// saved: 2.3x slower on 2x2 windows over 28x28 planes, 1.6x on the paper's
/// 3x3 windows over 55x55 (Docs/performance.md).
@_specialize(where T == Float)
@_specialize(where T == Double)
func maxPoolPlane<T: TensorElement>(
    input: UnsafePointer<T>, width: Int, rows: PoolWindows, columns: PoolWindows,
    output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int32>
) {
    var o = 0
    for oh in 0..<rows.count {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        for ow in 0..<columns.count {
            let w0 = columns.start[ow], w1 = columns.end[ow]
            var bestIndex = h0 * width + w0
            var best = input[bestIndex]
            for h in h0..<h1 {
                let row = h * width
                for w in (h == h0 ? w0 + 1 : w0)..<w1 {
                    let v = input[row + w]
                    let take = best == best && !(v <= best)
                    best = take ? v : best
                    bestIndex = take ? row + w : bestIndex
                }
            }
            output[o] = best
            argmax[o] = Int32(truncatingIfNeeded: bestIndex)
            o += 1
        }
    }
}
