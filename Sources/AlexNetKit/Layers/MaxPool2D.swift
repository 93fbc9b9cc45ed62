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
    /// Per worker: one input row's column maxima and the rows holding them.
    private let columnMaxScratch = WorkerScratch<Element>()
    private let columnRowScratch = WorkerScratch<Element>()

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
        // Rows are tracked as Element values in the vertical pass: exact below 2^24.
        guard input.shape[2] < 1 << 24 else {
            throw ShapeError(operation: name, argument: "input", expected: "[N, C, H, W] with H < 2^24", actual: input.shape)
        }
        let (outputShape, width, inputPlane, outputPlane) = (plan.outputShape, plan.width, plan.inputPlane, plan.outputPlane)
        let (rows, columns, tasks) = (plan.rows, plan.columns, plan.tasks)

        var output = Tensor<Element>.recycling(&outputBuffer, shape: outputShape, zeroed: false)
        let valueScratch = columnMaxScratch.reserve(slots: context.pool.workerCount, count: width)
        let rowScratch = columnRowScratch.reserve(slots: context.pool.workerCount, count: width)

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
                            context.pool.parallelFor(tasks.count) { task, worker in
                                let (columnMax, columnRow) = (valueScratch[worker], rowScratch[worker])
                                for plane in tasks[task] {
                                    maxPoolPlane(input: source + plane * inputPlane, width: width,
                                                 rows: rowWindows, columns: columnWindows,
                                                 output: target + plane * outputPlane,
                                                 argmax: argmax + plane * outputPlane,
                                                 columnMax: columnMax, columnRow: columnRow)
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

/// Max-pools one `[H, W]` plane into `[OH, OW]`, recording each argmax as `h * W + w`.
///
/// Separable, so the hot loops vectorise and do not branch on the data: for
/// each output row, a vertical pass over the window's rows keeps, per input
/// column, the column's maximum and the first row holding it (`columnMax`,
/// `columnRow`, contiguous over the width; rows are held as `T`, exact below
/// 2^24); a horizontal pass then picks, per output, the best of its window's
/// columns. The result is bitwise the row-major scan's (the rule in the type's
/// documentation): a column's later row wins only when strictly greater or the
/// first NaN; across columns, a greater value, the first NaN, or an equal value
/// (the other sign of zero) in an earlier row wins, so among equal cells the
/// first in row-major order is kept.
@_specialize(where T == Float)
@_specialize(where T == Double)
func maxPoolPlane<T: TensorElement>(
    input: UnsafePointer<T>, width: Int, rows: PoolWindows, columns: PoolWindows,
    output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int32>,
    columnMax: UnsafeMutablePointer<T>, columnRow: UnsafeMutablePointer<T>
) {
    let lanes = T.Vector.scalarCount
    let vectorEnd = width - width % lanes
    let widthIndex = Int32(truncatingIfNeeded: width)
    var o = 0
    for oh in 0..<rows.count {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        // Vertical: the window never has an empty row range (padding < kernel).
        columnMax.update(from: input + h0 * width, count: width)
        columnRow.update(repeating: T(h0), count: width)
        var h = h0 + 1
        while h < h1 {
            let row = input + h * width
            let rowValue = T(h), rowVector = T.Vector(repeating: T(h))
            var w = 0
            while w < vectorEnd {
                let merged = T.maxPoolMergeLanes(
                    value: UnsafeRawPointer(row + w).loadUnaligned(as: T.Vector.self),
                    maximum: UnsafeRawPointer(columnMax + w).loadUnaligned(as: T.Vector.self),
                    row: UnsafeRawPointer(columnRow + w).loadUnaligned(as: T.Vector.self),
                    candidateRow: rowVector)
                UnsafeMutableRawPointer(columnMax + w).storeBytes(of: merged.maximum, as: T.Vector.self)
                UnsafeMutableRawPointer(columnRow + w).storeBytes(of: merged.row, as: T.Vector.self)
                w += lanes
            }
            while w < width {
                let v = row[w], m = columnMax[w]
                let take = m == m && !(v <= m)
                columnMax[w] = take ? v : m
                columnRow[w] = take ? rowValue : columnRow[w]
                w += 1
            }
            h += 1
        }
        // Horizontal: the best column of each window, decided without branches
        // (ReLU's zeros make ties common, and a branch on them mispredicts).
        for ow in 0..<columns.count {
            let w0 = columns.start[ow], w1 = columns.end[ow]
            var best = columnMax[w0], bestRow = columnRow[w0], bestColumn = w0
            var w = w0 + 1
            while w < w1 {
                let candidate = columnMax[w], candidateRow = columnRow[w]
                let bestIsNaN = flag(best != best), candidateIsNaN = flag(candidate != candidate)
                let earlier = flag(candidateRow < bestRow)
                let greater = flag(candidate > best), equal = flag(candidate == best)
                // Best is NaN: only an earlier NaN wins. Otherwise a NaN, a greater
                // value, or an equal one in an earlier row wins.
                let take = (bestIsNaN & candidateIsNaN & earlier)
                    | ((1 &- bestIsNaN) & (candidateIsNaN | greater | (equal & earlier))) != 0
                best = take ? candidate : best
                bestRow = take ? candidateRow : bestRow
                bestColumn = take ? w : bestColumn
                w += 1
            }
            output[o] = best
            argmax[o] = Int32(truncatingIfNeeded: bestRow.wholeNumber) &* widthIndex &+ Int32(truncatingIfNeeded: bestColumn)
            o += 1
        }
    }
}

/// 1 for true, 0 for false, for branch-free logic.
@inline(__always)
private func flag(_ condition: Bool) -> UInt8 { condition ? 1 : 0 }
