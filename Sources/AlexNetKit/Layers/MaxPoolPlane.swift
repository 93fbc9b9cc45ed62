/// Which output columns of a max-pooling plane are computed a vector of
/// outputs at a time, and how their inputs are loaded.
///
/// A vector covers `Vector.scalarCount` adjacent output columns whose windows
/// lie wholly inside the input's columns (not clipped by padding or by ceil
/// rounding); the other columns are computed one at a time.
/// - Stride 1: window column `j` of adjacent outputs is one contiguous run.
/// - Stride 2 (AlexNet's): window columns `j` and `j + 1` are the even and odd
///   elements of one run of `2 * scalarCount` inputs
///   (``TensorElement/loadEvenOddLanes(_:)``); the vectors stop where that run
///   would leave the input row.
/// - Other strides: each input row is first split into `stride` phases (padded
///   column `q * stride + r` goes to phase `r` at `q`), so window column `j` of
///   adjacent outputs is one contiguous run of phase `j % stride`.
struct MaxPoolLanes {
    let kernelWidth: Int
    let stride: Int
    let padding: Int
    let height: Int
    let width: Int
    /// Output columns computed by vectors; empty when fewer than one vector's worth.
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
        let laneCount = T.Vector.scalarCount
        // Full windows: ow * s - pw >= 0 and ow * s - pw + kw <= W.
        let first = (padding + stride - 1) / stride
        var last = width + padding - kernelWidth < 0 ? 0 : (width + padding - kernelWidth) / stride + 1
        if stride == 2 {
            // The last even/odd load of a vector starting at output ow0 reads input columns
            // 2 * ow0 - pw + lastPair ..< that + 2 * lanes, which must end inside the row.
            let lastPair = 2 * ((kernelWidth - 1) / 2)
            let room = width + padding - lastPair - 2 * laneCount
            last = room < 0 ? 0 : min(last, room / 2 + laneCount)
        }
        let columns = first..<max(first, min(last, outputWidth))
        vectorColumns = columns.count >= laneCount ? columns : 0..<0
    }

    /// Scratch elements one plane's phases take (0 when none are needed).
    var phaseCount: Int { vectorColumns.isEmpty || stride <= 2 ? 0 : height * stride * phaseLength }
}

/// Max-pools one `[H, W]` plane into `[OH, OW]`, recording each argmax as
/// `h * W + w` when `argmax` is given (training; inference passes nil and gets
/// the same outputs), by scanning each window in row-major order: the type's
/// rule written out literally, so the result is that rule's by construction. A
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
    output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int32>?,
    lanes: MaxPoolLanes, phases: UnsafeMutablePointer<T>?
) {
    // Two specialised copies of the scan: `Recording.kept` is a constant in each, so
    // the inference copy carries no index work.
    if argmax != nil {
        maxPoolPlaneScan(input: input, width: width, rows: rows, columns: columns, output: output,
                         argmax: argmax, lanes: lanes, phases: phases, KeptArgmax.self)
    } else {
        maxPoolPlaneScan(input: input, width: width, rows: rows, columns: columns, output: output,
                         argmax: nil, lanes: lanes, phases: phases, NoArgmax.self)
    }
}

/// Whether a max-pooling scan records the argmax, as a type, so that each
/// specialisation of the scan has it as a constant (a Bool argument was not:
/// the scan is too large to inline, and the branches stayed in its inner loops).
private protocol ArgmaxRecording { static var kept: Bool { get } }
private enum KeptArgmax: ArgmaxRecording { static var kept: Bool { true } }
private enum NoArgmax: ArgmaxRecording { static var kept: Bool { false } }

private func maxPoolPlaneScan<T: TensorElement, Recording: ArgmaxRecording>(
    input: UnsafePointer<T>, width: Int, rows: PoolWindows, columns: PoolWindows,
    output: UnsafeMutablePointer<T>, argmax: UnsafeMutablePointer<Int32>?,
    lanes: MaxPoolLanes, phases: UnsafeMutablePointer<T>?, _: Recording.Type
) {
    let indexed = Recording.kept
    /// The rule for one later cell `i` of a window.
    @inline(__always) func visit(_ i: Int, _ best: inout T, _ bestIndex: inout Int) {
        let v = input[i]
        let take = best == best && !(v <= best)
        best = take ? v : best
        if indexed { bestIndex = take ? i : bestIndex }
    }
    @inline(__always) func scalarOutput(_ oh: Int, _ ow: Int) {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        let w0 = columns.start[ow], w1 = columns.end[ow]
        let first = h0 * width + w0
        var bestIndex = first
        var best = input[first]
        if h1 - h0 == 2 && w1 - w0 == 2 {
            // A whole 2x2 window (the small nets' pooling, whose 14- and 7-wide planes
            // hold less than a vector of outputs): its other cells in row-major order,
            // without the general loop's bounds (3-4x faster here).
            visit(first + 1, &best, &bestIndex)
            visit(first + width, &best, &bestIndex)
            visit(first + width + 1, &best, &bestIndex)
        } else {
            for h in h0..<h1 {
                let row = h * width
                for w in (h == h0 ? w0 + 1 : w0)..<w1 { visit(row + w, &best, &bestIndex) }
            }
        }
        output[oh * columns.count + ow] = best
        if indexed { argmax.unsafelyUnwrapped[oh * columns.count + ow] = Int32(truncatingIfNeeded: bestIndex) }
    }
    /// One window cell for a vector of outputs: the first starts the running maximum.
    @inline(__always) func update(_ best: inout T.Vector, _ bestIndex: inout T.IndexLanes, first: Bool,
                                  _ v: T.Vector, start: Int, step: Int) {
        let index = indexed ? T.indexLanes(start: Int32(truncatingIfNeeded: start), step: Int32(step)) : T.IndexLanes()
        if first {
            best = v
            if indexed { bestIndex = index }
        } else if indexed {
            T.maxPoolLanes(&best, &bestIndex, v, index)
        } else {
            T.maxPoolValueLanes(&best, v)
        }
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
    let phaseRow = s * lanes.phaseLength
    if s > 2, let phases {
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

    for oh in 0..<rows.count {
        let h0 = rows.start[oh], h1 = rows.end[oh]
        for ow in 0..<full.lowerBound { scalarOutput(oh, ow) }
        var next = full.lowerBound
        while next < full.upperBound {
            let ow0 = min(next, full.upperBound - laneCount)
            var best = T.Vector(), bestIndex = T.IndexLanes()
            // Input column of window column 0 in lane 0.
            let column0 = ow0 * s - pw
            for h in h0..<h1 {
                let rowStart = h * width + column0
                if s == 1 {
                    for j in 0..<kw {
                        let v = UnsafeRawPointer(input + rowStart + j).loadUnaligned(as: T.Vector.self)
                        update(&best, &bestIndex, first: h == h0 && j == 0, v, start: rowStart + j, step: 1)
                    }
                } else if s == 2 {
                    var j = 0
                    while j < kw {
                        let (even, odd) = T.loadEvenOddLanes(input + rowStart + j)
                        update(&best, &bestIndex, first: h == h0 && j == 0, even, start: rowStart + j, step: 2)
                        if j + 1 < kw { update(&best, &bestIndex, first: false, odd, start: rowStart + j + 1, step: 2) }
                        j += 2
                    }
                } else {
                    // Window column j of lane 0 is phase j % s at ow0 + j / s (the phase and
                    // its offset stepped along with j, no division per column).
                    let row = UnsafePointer(phases!) + h * phaseRow + ow0
                    var (phase, offset) = (0, 0)
                    for j in 0..<kw {
                        let v = UnsafeRawPointer(row + phase * lanes.phaseLength + offset).loadUnaligned(as: T.Vector.self)
                        update(&best, &bestIndex, first: h == h0 && j == 0, v, start: rowStart + j, step: s)
                        phase += 1
                        if phase == s { (phase, offset) = (0, offset + 1) }
                    }
                }
            }
            let o = oh * columns.count + ow0
            UnsafeMutableRawPointer(output + o).storeBytes(of: best, as: T.Vector.self)
            if indexed { T.storeIndexLanes(bestIndex, to: argmax.unsafelyUnwrapped + o) }
            next = ow0 + laneCount
        }
        for ow in full.upperBound..<columns.count { scalarOutput(oh, ow) }
    }
}
