/// Reusable scratch buffers, one per slot, that a layer keeps between calls.
///
/// A slot is a worker index (im2col columns: one buffer per thread that may run
/// a task at the same time) or a fixed task index (one partial weight gradient
/// per batch chunk). Buffers only grow, so a layer that runs the same shapes
/// every step allocates once and then never again; the contents are not
/// preserved across calls and every user overwrites what it reads.
///
/// Not thread-safe: call ``reserve(slots:count:)`` before `parallelFor`, never
/// inside it, and let the tasks use the pointers it returned. One layer
/// instance runs one pass at a time, so its scratch is never shared.
final class WorkerScratch<Element: Numeric> {
    private var buffers: [UnsafeMutablePointer<Element>] = []
    private var capacities: [Int] = []

    init() {}

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }

    /// Ensures slots `0..<slots` each hold at least `count` elements and returns
    /// their base pointers. A grown buffer starts zeroed (its contents are
    /// otherwise whatever the last user left).
    func reserve(slots: Int, count: Int) -> [UnsafeMutablePointer<Element>] {
        let count = max(count, 1)
        for slot in 0..<slots {
            if slot == buffers.count {
                buffers.append(Self.allocate(count))
                capacities.append(count)
            } else if capacities[slot] < count {
                buffers[slot].deallocate()
                buffers[slot] = Self.allocate(count)
                capacities[slot] = count
            }
        }
        return Array(buffers.prefix(slots))
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Element> {
        let pointer = UnsafeMutablePointer<Element>.allocate(capacity: count)
        pointer.initialize(repeating: 0, count: count)
        return pointer
    }
}

/// Calls `body` with a pointer to `tensor`'s elements, or with nil when there is
/// no tensor (a layer without bias).
func withOptionalPointer<Element: TensorElement, R>(
    _ tensor: Tensor<Element>?, _ body: (UnsafePointer<Element>?) throws -> R
) rethrows -> R {
    guard let tensor else { return try body(nil) }
    return try tensor.withUnsafeBufferPointer { try body($0.baseAddress) }
}

/// Calls `body` with a pointer to the parameter's gradient storage (written in
/// place), or with nil when there is no parameter (a layer without bias).
func withOptionalMutablePointer<Element: TensorElement, R>(
    _ parameter: Parameter<Element>?, _ body: (UnsafeMutablePointer<Element>?) throws -> R
) rethrows -> R {
    guard let parameter else { return try body(nil) }
    return try parameter.gradient.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
}
