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
    /// For every output element of the last training-mode forward pass (`[N, C,
    /// OH, OW]`), the flat index `h * W + w` of its argmax within its own input
    /// plane; empty after an inference pass.
    private var cachedArgmax: [Int32] = []
    /// Per worker: one plane split into its stride phases (``MaxPoolLanes``).
    private let phaseScratch = WorkerScratch<Element>()

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
        var output = Tensor<Element>.recycling(&outputBuffer, shape: plan.outputShape, zeroed: false)
        defer { outputBuffer = output }
        // Only training needs the argmax; backward after an inference pass (a
        // gradient check) computes it then from the kept input.
        cachedArgmax = pool(input, plan: plan, output: &output, keepingArgmax: context.mode == .training,
                            context: context)
        cachedInput = input
        return output
    }

    /// Pools `input` into `output` (shaped `plan.outputShape`) and returns the
    /// argmax of every output when `keepingArgmax` (else `[]`), recycling the
    /// last pass's argmax storage.
    private func pool(_ input: Tensor<Element>, plan: PoolPlan, output: inout Tensor<Element>, keepingArgmax: Bool,
                      context: PassContext) -> [Int32] {
        let (outputShape, width, inputPlane, outputPlane) = (plan.outputShape, plan.width, plan.inputPlane, plan.outputPlane)
        let (rows, columns, tasks) = (plan.rows, plan.columns, plan.tasks)
        // Recycled like the output: the last pass's argmax is dropped first, so the
        // buffer is uniquely held and reused in place.
        var argmax = cachedArgmax
        cachedArgmax = []
        if !keepingArgmax {
            argmax = []
        } else if argmax.count != outputShape.count {
            argmax = [Int32](repeating: 0, count: outputShape.count)
        }
        let lanes = MaxPoolLanes(Element.self, configuration: configuration, height: input.shape[2], width: width,
                                 outputWidth: outputShape[3])
        let phases = lanes.phaseCount == 0 ? nil : phaseScratch.reserve(slots: context.pool.workerCount, count: lanes.phaseCount)
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                argmax.withUnsafeMutableBufferPointer { argmax in
                    guard let source = source.baseAddress, let target = target.baseAddress else { return }
                    // An empty array's buffer may still have an address (the shared empty storage).
                    let argmax = keepingArgmax ? argmax.baseAddress : nil
                    rows.withWindows { rowWindows in
                        columns.withWindows { columnWindows in
                            context.pool.parallelFor(tasks.count) { task, worker in
                                for plane in tasks[task] {
                                    maxPoolPlane(input: source + plane * inputPlane, width: width,
                                                 rows: rowWindows, columns: columnWindows,
                                                 output: target + plane * outputPlane,
                                                 argmax: argmax.map { $0 + plane * outputPlane },
                                                 lanes: lanes, phases: phases?[worker])
                                }
                            }
                        }
                    }
                }
            }
        }
        return argmax
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

        if cachedArgmax.count != plan.outputShape.count {
            // The forward pass ran in inference mode: its argmax, with the same outputs.
            var output = Tensor<Element>(shape: plan.outputShape)
            cachedArgmax = pool(input, plan: plan, output: &output, keepingArgmax: true, context: context)
        }
        // Zeroed a plane at a time in the tasks below, just before the plane's
        // additions, so the zeros are written while the plane is in cache.
        var inputGradient = Tensor<Element>.gradientBuffer(&inputGradientBuffer, shape: input.shape, zeroed: false,
                                                           context: context)

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
                            dx.update(repeating: 0, count: inputPlane)
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
