/// 2-D average pooling over each (image, channel) plane (cuda-convnet's CIFAR
/// nets pool this way; AlexNet itself uses ``MaxPool2D``).
///
/// Input `[N, C, H, W]`, output `[N, C, OH, OW]` with `OH`, `OW` from
/// ``PoolRounding``. Output `(oh, ow)` is the sum of the input cells in its window
/// (rows `oh * sh - ph ..< oh * sh - ph + kh`, columns likewise, clipped to the
/// input), added in row-major order, divided by a divisor that depends on
/// ``countIncludePadding``:
/// - `true` (PyTorch's default `count_include_pad=True`, Caffe's AVE pooling):
///   the window clipped to the *padded* input `-p ..< H + p`. That is `kh * kw`
///   except for a ceil-mode window that runs past the padded input, which
///   PyTorch and Caffe also clip there.
/// - `false` (PyTorch `count_include_pad=False`, cuda-convnet's `avg` pooling,
///   which divides by its clipped "region size"): the number of input cells in
///   the window, so padding has no effect at all.
/// With no padding and floor rounding both give `kh * kw`.
///
/// The division is `sum / divisor` in `Element` (as PyTorch's CPU kernel does),
/// not a multiplication by a rounded reciprocal. NaN or infinity in a window
/// propagates to its output.
///
/// Backward gives every input cell of a window `outputGradient / divisor`,
/// accumulated in row-major output order, then row-major window order.
public final class AvgPool2D<Element: TensorElement>: Layer {
    /// The layer's name in errors and reports, e.g. `"pool3"`.
    public let name: String
    /// Window size (height, width).
    public var kernel: (height: Int, width: Int) { configuration.kernel }
    /// Step between windows (height, width).
    public var stride: (height: Int, width: Int) { configuration.stride }
    /// Implicit zero padding on each side (height, width).
    public var padding: (height: Int, width: Int) { configuration.padding }
    /// How the output size is rounded; see ``PoolRounding``.
    public var rounding: PoolRounding { configuration.rounding }
    /// Whether padded cells count in the divisor (see the type's documentation).
    public let countIncludePadding: Bool

    private let configuration: PoolConfiguration
    /// The input of the last forward pass; backward needs only its shape.
    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?

    /// - Parameters:
    ///   - name: the layer's name in errors, e.g. `"pool3"`.
    ///   - kernel: window (height, width), at least 1x1.
    ///   - stride: step (height, width), at least 1.
    ///   - padding: implicit zero padding (height, width), at least 0 and smaller
    ///     than the kernel.
    ///   - rounding: output-size rounding, required: Caffe and cuda-convnet use
    ///     `.ceil`, PyTorch `.floor`.
    ///   - countIncludePadding: `true` divides by the window clipped to the padded
    ///     input (PyTorch's default, Caffe); `false` by the window clipped to the
    ///     image (cuda-convnet, PyTorch `count_include_pad=False`). Required, like
    ///     `rounding`, because the anchors disagree; it matters only with padding.
    /// - Throws: ``ConfigurationError`` naming the layer for out-of-range settings.
    public init(name: String, kernel: (Int, Int) = (3, 3), stride: (Int, Int) = (2, 2),
                padding: (Int, Int) = (0, 0), rounding: PoolRounding, countIncludePadding: Bool) throws {
        self.name = name
        self.countIncludePadding = countIncludePadding
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
    /// - Returns: `[N, C, OH, OW]`, each element its window's sum over its divisor.
    /// - Throws: ``ShapeError`` naming the layer if the input cannot be pooled.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let plan = try configuration.plan(for: input.shape, component: name)
        let (outputShape, width, inputPlane, outputPlane) = (plan.outputShape, plan.width, plan.inputPlane, plan.outputPlane)

        var output = Tensor<Element>.recycling(&outputBuffer, shape: outputShape, zeroed: false)

        defer { outputBuffer = output }
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                guard let source = source.baseAddress, let target = target.baseAddress else { return }
                forEachPlane(plan, context: context) { plane, rows, columns, divisors in
                    averagePoolPlane(input: source + plane * inputPlane, width: width, rows: rows, columns: columns,
                                     divisors: divisors, output: target + plane * outputPlane)
                }
            }
        }
        cachedInput = input
        return output
    }

    /// - Parameter outputGradient: dLoss/dOutput, `[N, C, OH, OW]` as returned by the last forward.
    /// - Returns: dLoss/dInput, `[N, C, H, W]`.
    /// - Throws: ``ConfigurationError`` if no forward pass ran, ``ShapeError`` if
    ///   the gradient's shape is not the last output's.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        let plan = try configuration.plan(for: input.shape, component: name)
        let (width, inputPlane, outputPlane) = (plan.width, plan.inputPlane, plan.outputPlane)

        // Zeroed a plane at a time just before its additions (as in MaxPool2D).
        var inputGradient = Tensor<Element>.gradientBuffer(&inputGradientBuffer, shape: input.shape, zeroed: false,
                                                           context: context)

        defer { if context.gradientBuffers == nil { inputGradientBuffer = inputGradient } }
        outputGradient.withUnsafeBufferPointer { gradient in
            inputGradient.withUnsafeMutableBufferPointer { target in
                guard let gradient = gradient.baseAddress, let target = target.baseAddress else { return }
                forEachPlane(plan, context: context) { plane, rows, columns, divisors in
                    (target + plane * inputPlane).update(repeating: 0, count: inputPlane)
                    averagePoolPlaneBackward(outputGradient: gradient + plane * outputPlane, width: width,
                                             rows: rows, columns: columns, divisors: divisors,
                                             inputGradient: target + plane * inputPlane)
                }
            }
        }
        return inputGradient
    }

    /// Runs `body(plane, rows, columns, divisors)` for every (image, channel)
    /// plane of `plan`, in the plan's fixed tasks on the pool, with the windows
    /// and this layer's divisors (``averageDivisors(rows:columns:countIncludePadding:)``)
    /// as pointers.
    private func forEachPlane(_ plan: PoolPlan, context: PassContext,
                              _ body: (_ plane: Int, _ rows: PoolWindows, _ columns: PoolWindows,
                                       _ divisors: UnsafePointer<Element>) -> Void) {
        let divisors = averageDivisors(rows: plan.rows, columns: plan.columns,
                                       countIncludePadding: countIncludePadding) as [Element]
        plan.rows.withWindows { rows in
            plan.columns.withWindows { columns in
                divisors.withUnsafeBufferPointer { divisors in
                    let divisors = divisors.baseAddress!
                    context.pool.parallelFor(plan.tasks.count) { task, _ in
                        for plane in plan.tasks[task] { body(plane, rows, columns, divisors) }
                    }
                }
            }
        }
    }
}

/// The divisor of every output position `[OH * OW]`, row-major, as an exact
/// small integer in `T`.
func averageDivisors<T: TensorElement>(rows: PoolAxis, columns: PoolAxis, countIncludePadding: Bool) -> [T] {
    var divisors: [T] = []
    divisors.reserveCapacity(rows.start.count * columns.start.count)
    for oh in 0..<rows.start.count {
        let height = countIncludePadding ? rows.paddedCount[oh] : rows.end[oh] - rows.start[oh]
        for ow in 0..<columns.start.count {
            let width = countIncludePadding ? columns.paddedCount[ow] : columns.end[ow] - columns.start[ow]
            divisors.append(T(height * width))
        }
    }
    return divisors
}

/// Average-pools one `[H, W]` plane into `[OH, OW]`: row-major window sum
/// starting from 0, then `/ divisor`.
///
/// A whole 3x3 or 2x2 window (every window of the small nets but the clipped
/// last column and row) is summed without the general loop's bounds, in the
/// same order from the same 0, so the bits are the same (3x faster on the
/// 14x14 and 7x7 planes of `layers-80sec`, Docs/performance.md).
@_specialize(where T == Float)
@_specialize(where T == Double)
func averagePoolPlane<T: TensorElement>(
    input: UnsafePointer<T>, width: Int, rows: PoolWindows, columns: PoolWindows, divisors: UnsafePointer<T>,
    output: UnsafeMutablePointer<T>
) {
    var o = 0
    for oh in 0..<rows.count {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        for ow in 0..<columns.count {
            let w0 = columns.start[ow], w1 = columns.end[ow]
            let p = input + h0 * width + w0
            var sum: T = 0
            if h1 - h0 == 3 && w1 - w0 == 3 {
                let q = p + width, r = q + width
                sum += p[0]; sum += p[1]; sum += p[2]
                sum += q[0]; sum += q[1]; sum += q[2]
                sum += r[0]; sum += r[1]; sum += r[2]
            } else if h1 - h0 == 2 && w1 - w0 == 2 {
                sum += p[0]; sum += p[1]
                sum += p[width]; sum += p[width + 1]
            } else {
                for h in h0..<h1 {
                    let row = input + h * width
                    for w in w0..<w1 { sum += row[w] }
                }
            }
            output[o] = sum / divisors[o]
            o += 1
        }
    }
}

/// The adjoint of ``averagePoolPlane(input:width:rows:columns:divisors:output:)``:
/// adds `outputGradient / divisor` to every input cell of each window, in
/// row-major output order (whole 3x3 and 2x2 windows unrolled, in the same
/// order). `inputGradient` must be zeroed by the caller.
@_specialize(where T == Float)
@_specialize(where T == Double)
func averagePoolPlaneBackward<T: TensorElement>(
    outputGradient: UnsafePointer<T>, width: Int, rows: PoolWindows, columns: PoolWindows, divisors: UnsafePointer<T>,
    inputGradient: UnsafeMutablePointer<T>
) {
    var o = 0
    for oh in 0..<rows.count {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        for ow in 0..<columns.count {
            let w0 = columns.start[ow], w1 = columns.end[ow]
            let share = outputGradient[o] / divisors[o]
            let p = inputGradient + h0 * width + w0
            if h1 - h0 == 3 && w1 - w0 == 3 {
                let q = p + width, r = q + width
                p[0] += share; p[1] += share; p[2] += share
                q[0] += share; q[1] += share; q[2] += share
                r[0] += share; r[1] += share; r[2] += share
            } else if h1 - h0 == 2 && w1 - w0 == 2 {
                p[0] += share; p[1] += share
                p[width] += share; p[width + 1] += share
            } else {
                for h in h0..<h1 {
                    let row = inputGradient + h * width
                    for w in w0..<w1 { row[w] += share }
                }
            }
            o += 1
        }
    }
}
