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
        let lanes = MaxPoolLanes(Element.self, configuration: configuration, height: input.shape[2], width: width,
                                 outputWidth: outputShape[3])
        let phases = lanes.phaseCount == 0 ? nil : phaseScratch.reserve(slots: context.pool.workerCount, count: lanes.phaseCount)
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                argmax.withUnsafeMutableBufferPointer { argmax in
                    guard let source = source.baseAddress, let target = target.baseAddress,
                          let argmax = argmax.baseAddress else { return }
                    rows.withWindows { rowWindows in
                        columns.withWindows { columnWindows in
                            context.pool.parallelFor(tasks.count) { task, worker in
                                for plane in tasks[task] {
                                    maxPoolPlane(input: source + plane * inputPlane, width: width,
                                                 rows: rowWindows, columns: columnWindows,
                                                 output: target + plane * outputPlane,
                                                 argmax: argmax + plane * outputPlane,
                                                 lanes: lanes, phases: phases?[worker])
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

/// Which output columns of a max-pooling plane are computed a vector of
/// outputs at a time, and how their inputs are laid out for contiguous loads.
///
/// A vector covers `Vector.scalarCount` adjacent output columns whose windows
/// lie wholly inside the input's columns (not clipped by padding or by ceil
/// rounding); the other columns are computed one at a time. For a stride above
/// 1, each input row is first split into `stride` phases (padded column
/// `q * stride + r` goes to phase `r` at `q`), so window column `j` of
/// adjacent outputs is one contiguous run of phase `j % stride`.
struct MaxPoolLanes {
    let kernelWidth: Int
    let stride: Int
    let padding: Int
    let height: Int
    let width: Int
    /// Output columns computed by vectors; empty when fewer than one vector's worth
    /// (or the plane is too large for indices held exactly in the lanes).
    let vectorColumns: Range<Int>
    /// Elements of one phase (`ceil((W + pw) / stride)`).
    let phaseLength: Int

    init<T: TensorElement>(_: T.Type, configuration: PoolConfiguration, height: Int, width: Int, outputWidth: Int) {
        kernelWidth = configuration.kernel.width
        stride = configuration.stride.width
        padding = configuration.padding.width
        self.height = height
        self.width = width
        phaseLength = (width + padding + stride - 1) / stride
        // Full windows: ow * s - pw >= 0 and ow * s - pw + kw <= W.
        let first = (padding + stride - 1) / stride
        let last = width + padding - kernelWidth < 0 ? 0 : (width + padding - kernelWidth) / stride + 1
        let columns = first..<max(first, min(last, outputWidth))
        // Indices travel in the element type's lanes, exact below 2^24 even in Float.
        let exact = height * width < 1 << 24
        vectorColumns = exact && columns.count >= T.Vector.scalarCount ? columns : 0..<0
    }

    /// Scratch elements one plane's phases take (0 when none are needed).
    var phaseCount: Int { vectorColumns.isEmpty || stride == 1 ? 0 : height * stride * phaseLength }
}

/// Max-pools one `[H, W]` plane into `[OH, OW]`, recording each argmax as
/// `h * W + w`, by scanning each window in row-major order: the type's rule
/// written out literally, so the result is that rule's by construction. A
/// later cell replaces the running maximum when the maximum is not NaN and the
/// cell is not `<=` it (it is greater, or the first NaN); ties keep the first.
/// The selects compile to conditional moves, so ReLU's many zeros cost no
/// mispredicted branches.
///
/// Output columns in `lanes.vectorColumns` run the same scan a vector of
/// adjacent outputs at a time (``TensorElement/maxPoolLanes(_:_:_:_:)``, the
/// same comparisons in the same order in every lane, so the same bits); the
/// last vector of a row may overlap the one before it and recompute equal
/// outputs. It replaced a scalar scan that ran 3x-5x slower, which had
/// replaced a separable pass (Docs/performance.md).
///
/// - Parameter phases: `lanes.phaseCount` scratch elements (nil when 0).
@_specialize(where T == Float)
@_specialize(where T == Double)
func maxPoolPlane<T: TensorElement>(
    input: UnsafePointer<T>, width: Int, rows: PoolWindows, columns: PoolWindows,
    output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int32>,
    lanes: MaxPoolLanes, phases: UnsafeMutablePointer<T>?
) {
    @inline(__always) func scalarOutput(_ oh: Int, _ ow: Int) {
        let h0 = rows.start[oh], h1 = rows.end[oh]
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
        output[oh * columns.count + ow] = best
        argmax[oh * columns.count + ow] = Int32(truncatingIfNeeded: bestIndex)
    }

    let full = lanes.vectorColumns
    if full.isEmpty {
        for oh in 0..<rows.count {
            for ow in 0..<columns.count { scalarOutput(oh, ow) }
        }
        return
    }
    let laneCount = T.Vector.scalarCount
    let (s, pw, kw) = (lanes.stride, lanes.padding, lanes.kernelWidth)
    // Where lane 0 of window column j of input row h is read from, for output column ow0.
    let phaseRow = s * lanes.phaseLength
    if s > 1, let phases {
        for h in 0..<lanes.height {
            let source = input + h * width, target = phases + h * phaseRow
            for r in 0..<s {
                // Padded column q * s + r is input column q * s + r - pw.
                let first = r >= pw ? 0 : (pw - r + s - 1) / s
                let end = (width - 1 + pw - r) / s + 1
                guard width - 1 + pw - r >= 0, end > first else { continue }
                // Wrapping arithmetic: the bounds above keep every index in the row.
                let from = source + (first * s + r - pw), to = target + r * lanes.phaseLength + first
                for k in 0..<(end - first) { to[k] = from[k &* s] }
            }
        }
    }
    var laneSteps = T.Vector()
    for l in 0..<laneCount { laneSteps[l] = T(l * s) }

    for oh in 0..<rows.count {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        for ow in 0..<full.lowerBound { scalarOutput(oh, ow) }
        var next = full.lowerBound
        while next < full.upperBound {
            let ow0 = min(next, full.upperBound - laneCount)
            var best = T.Vector(), bestIndex = T.Vector()
            for h in h0..<h1 {
                // Window column j of lane 0: input column ow0 * s - pw + j, or phase j % s at ow0 + j / s
                // (the phase and its offset stepped along with j, no division per column).
                let row = s == 1 ? input + h * width + ow0 - pw : UnsafePointer(phases!) + h * phaseRow + ow0
                var (phase, step) = (0, 0)
                for j in 0..<kw {
                    let source = s == 1 ? row + j : row + phase * lanes.phaseLength + step
                    phase += 1
                    if phase == s { (phase, step) = (0, step + 1) }
                    let v = UnsafeRawPointer(source).loadUnaligned(as: T.Vector.self)
                    let index = T.Vector(repeating: T(h * width + ow0 * s - pw + j)) + laneSteps
                    if h == h0 && j == 0 {
                        (best, bestIndex) = (v, index)
                    } else {
                        T.maxPoolLanes(&best, &bestIndex, v, index)
                    }
                }
            }
            let o = oh * columns.count + ow0
            UnsafeMutableRawPointer(output + o).storeBytes(of: best, as: T.Vector.self)
            T.storeWholeLanes(bestIndex, to: argmax + o)
            next = ow0 + laneCount
        }
        for ow in full.upperBound..<columns.count { scalarOutput(oh, ow) }
    }
}
