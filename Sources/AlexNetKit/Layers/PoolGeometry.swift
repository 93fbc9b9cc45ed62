/// How a pooling layer rounds its output size when the windows do not tile the
/// padded input exactly. There is no default: the anchors disagree, and a model
/// spec must say which one it reproduces.
///
/// Along one axis with input extent `H`, kernel `k`, stride `s` and padding `p`:
/// - ``floor``: `out = floor((H + 2p - k) / s) + 1`. PyTorch's default
///   (`ceil_mode=False`); every window lies inside the padded input.
/// - ``ceil``: `out = ceil((H + 2p - k) / s) + 1`, then, as in Caffe and PyTorch's
///   `ceil_mode=True`, one less if the last window would start in the right/bottom
///   padding or beyond it (its start `(out - 1) * s >= H + p` in padded
///   coordinates), so every window holds at least one input cell. Caffe and
///   cuda-convnet round up; the last window may run past the padded input and is
///   clipped there.
///
/// AlexNet's 3x3/2 pools agree either way at 227x227 input (55 -> 27 -> 13 -> 6);
/// a 32x32 CIFAR net does not (3x3/2, no padding: 32 -> 16 with ceil, 15 with floor).
public enum PoolRounding: Sendable, Equatable, CustomStringConvertible {
    /// Round the output size down (PyTorch `ceil_mode=False`).
    case floor
    /// Round the output size up, dropping a last window that would start in the
    /// padding (Caffe, cuda-convnet, PyTorch `ceil_mode=True`).
    case ceil

    /// The output extent along one axis, or nil when the arguments cannot pool:
    /// `kernel < 1`, `stride < 1`, `padding < 0`, `input < 0`, or a kernel larger
    /// than the padded input (`kernel > input + 2 * padding`).
    public func outputExtent(input: Int, kernel: Int, stride: Int, padding: Int) -> Int? {
        guard kernel >= 1, stride >= 1, padding >= 0, input >= 0 else { return nil }
        // Sizes beyond 2^24 are no image; refusing them keeps the arithmetic from overflowing.
        guard [kernel, stride, padding, input].allSatisfy({ $0 <= 1 << 24 }) else { return nil }
        let span = input + 2 * padding - kernel
        guard span >= 0 else { return nil }
        switch self {
        case .floor:
            return span / stride + 1
        case .ceil:
            var extent = (span + stride - 1) / stride + 1
            // The rounded-up window would begin at or past the input's last cell:
            // it would pool nothing but padding, so Caffe and PyTorch drop it.
            if (extent - 1) * stride >= input + padding { extent -= 1 }
            return extent
        }
    }

    /// `"floor"` or `"ceil"`, as errors and reports print it.
    public var description: String {
        switch self {
        case .floor: return "floor"
        case .ceil: return "ceil"
        }
    }
}

/// The windows of a pooling layer along one axis, computed once per pass.
///
/// Output `o` pools input cells `start[o] ..< end[o]`: the window
/// `o * stride - padding ..< o * stride - padding + kernel` clipped to the input
/// `0 ..< extent`. `paddedCount[o]` is the same window clipped instead to the
/// padded input `-padding ..< extent + padding`; PyTorch and Caffe divide by it
/// when padding counts towards an average (a ceil-mode window that runs past the
/// padded input is clipped there, not counted as `kernel`).
/// A ``PoolAxis``'s window bounds as raw pointers, for hot loops (no bounds
/// checks, no reference counting per access).
struct PoolWindows {
    let start: UnsafePointer<Int>
    let end: UnsafePointer<Int>
    let count: Int
}

struct PoolAxis {
    /// Calls `body` with the windows' bounds as pointers valid for the call.
    func withWindows<R>(_ body: (PoolWindows) throws -> R) rethrows -> R {
        try start.withUnsafeBufferPointer { s in
            try end.withUnsafeBufferPointer { e in
                try body(PoolWindows(start: s.baseAddress!, end: e.baseAddress!, count: start.count))
            }
        }
    }

    var start: [Int]
    var end: [Int]
    var paddedCount: [Int]

    init(extent: Int, kernel: Int, stride: Int, padding: Int, outputExtent: Int) {
        start = []
        end = []
        paddedCount = []
        start.reserveCapacity(outputExtent)
        end.reserveCapacity(outputExtent)
        paddedCount.reserveCapacity(outputExtent)
        for o in 0..<outputExtent {
            let first = o * stride - padding
            start.append(max(first, 0))
            end.append(min(first + kernel, extent))
            paddedCount.append(min(first + kernel, extent + padding) - first)
        }
    }
}

/// The configuration and window arithmetic shared by ``MaxPool2D`` and ``AvgPool2D``.
struct PoolConfiguration {
    let kernel: (height: Int, width: Int)
    let stride: (height: Int, width: Int)
    let padding: (height: Int, width: Int)
    let rounding: PoolRounding

    /// Validates the settings that do not depend on the input.
    ///
    /// Padding must be smaller than the kernel (Caffe's rule), which, with the
    /// ceil-mode drop rule, guarantees that every window holds at least one input
    /// cell: no output is made of padding alone. PyTorch is stricter
    /// (`padding <= kernel / 2`); every PyTorch configuration is accepted here.
    init(component: String, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
         rounding: PoolRounding) throws {
        guard kernel.0 >= 1, kernel.1 >= 1 else {
            throw ConfigurationError(component: component, problem: "kernel \(kernel.0)x\(kernel.1) must be at least 1x1")
        }
        guard stride.0 >= 1, stride.1 >= 1 else {
            throw ConfigurationError(component: component, problem: "stride \(stride.0)x\(stride.1) must be at least 1x1")
        }
        guard padding.0 >= 0, padding.1 >= 0 else {
            throw ConfigurationError(component: component, problem: "padding \(padding.0)x\(padding.1) must not be negative")
        }
        guard padding.0 < kernel.0, padding.1 < kernel.1 else {
            throw ConfigurationError(
                component: component,
                problem: "padding \(padding.0)x\(padding.1) must be smaller than the kernel \(kernel.0)x\(kernel.1), "
                    + "or a window could pool nothing but padding")
        }
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.rounding = rounding
    }

    /// `[N, C, OH, OW]` for an `[N, C, H, W]` input.
    /// - Throws: ``ShapeError`` naming `component` for another rank, a kernel
    ///   larger than the padded input, or a plane too large for an Int32 argmax.
    func outputShape(for inputShape: Shape, component: String) throws -> Shape {
        guard inputShape.rank == 4 else {
            throw ShapeError(operation: component, argument: "input", expected: "[N, C, H, W]", actual: inputShape)
        }
        let height = inputShape[2], width = inputShape[3]
        guard let outputHeight = rounding.outputExtent(input: height, kernel: kernel.height,
                                                       stride: stride.height, padding: padding.height),
              let outputWidth = rounding.outputExtent(input: width, kernel: kernel.width,
                                                      stride: stride.width, padding: padding.width)
        else {
            throw ShapeError(
                operation: component, argument: "input",
                expected: "[N, C, H, W] with H >= \(kernel.height - 2 * padding.height) and W >= \(kernel.width - 2 * padding.width): "
                    + "the kernel \(kernel.height)x\(kernel.width) is larger than the padded input "
                    + "\(height + 2 * padding.height)x\(width + 2 * padding.width) (padding \(padding.height)x\(padding.width))",
                actual: inputShape)
        }
        guard height * width <= Int(Int32.max) else {
            throw ShapeError(operation: component, argument: "input",
                             expected: "[N, C, H, W] with H * W <= \(Int32.max)", actual: inputShape)
        }
        return Shape([inputShape[0], inputShape[1], outputHeight, outputWidth])
    }

    /// The row and column windows for an input of `height x width` giving `output` (from ``outputShape(for:component:)``).
    func axes(height: Int, width: Int, output: Shape) -> (rows: PoolAxis, columns: PoolAxis) {
        (PoolAxis(extent: height, kernel: kernel.height, stride: stride.height, padding: padding.height,
                  outputExtent: output[2]),
         PoolAxis(extent: width, kernel: kernel.width, stride: stride.width, padding: padding.width,
                  outputExtent: output[3]))
    }

    /// Everything a forward or backward pass over an `[N, C, H, W]` input needs:
    /// the output shape, plane sizes, the windows along each axis and the fixed
    /// tasks of (image, channel) planes.
    /// - Throws: ``ShapeError`` naming `component` when the input cannot be pooled.
    func plan(for inputShape: Shape, component: String) throws -> PoolPlan {
        let output = try outputShape(for: inputShape, component: component)
        let (rows, columns) = axes(height: inputShape[2], width: inputShape[3], output: output)
        let outputPlane = output[2] * output[3]
        return PoolPlan(outputShape: output, width: inputShape[3], inputPlane: inputShape[2] * inputShape[3],
                        outputPlane: outputPlane, rows: rows, columns: columns,
                        tasks: Partition.tiles(count: inputShape[0] * inputShape[1],
                                               tile: Self.planesPerTask(outputPlane: outputPlane, kernel: kernel)))
    }

    /// How many (image, channel) planes one parallel task pools: enough that a
    /// task does a few thousand window reads (the pool's per-task cost stays
    /// small) but a function of the shape alone, never of the worker count.
    /// Planes are independent, so the grouping cannot change any result; it is
    /// fixed anyway, as every partition in this package is.
    static func planesPerTask(outputPlane: Int, kernel: (height: Int, width: Int)) -> Int {
        let readsPerPlane = max(1, outputPlane * kernel.height * kernel.width)
        return max(1, 8192 / readsPerPlane)
    }
}

/// The arithmetic of one pooling pass (see ``PoolConfiguration/plan(for:component:)``).
struct PoolPlan {
    /// `[N, C, OH, OW]`.
    let outputShape: Shape
    /// The input's `W`.
    let width: Int
    /// `H * W` and `OH * OW`.
    let inputPlane: Int
    let outputPlane: Int
    /// The windows along each axis.
    let rows: PoolAxis
    let columns: PoolAxis
    /// The fixed tasks, each a range of (image, channel) planes.
    let tasks: [Range<Int>]
}
