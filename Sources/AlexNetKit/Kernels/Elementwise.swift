/// SIMD loops for element-wise work. Each walks a contiguous buffer one
/// `Element.Vector` (8 floats or 4 doubles) at a time, then finishes the tail
/// with scalars, so no per-element closure or bounds check is in the hot path.
public enum Elementwise {
    /// Tasks for element-wise work are fixed spans of this many elements, so a
    /// parallel pass partitions the same way for any thread count.
    public static let spanLength = 1 << 16

    /// Runs `body(range)` over fixed spans of `0..<count` on `pool`.
    @inlinable
    public static func forEachSpan(count: Int, pool: WorkerPool, _ body: (Range<Int>) -> Void) {
        let spans = (count + spanLength - 1) / spanLength
        pool.parallelFor(spans) { task, _ in
            let start = task * spanLength
            body(start..<min(start + spanLength, count))
        }
    }

    /// `output[i] = transform(input[i])` for `i` in `range`, vectorised.
    /// `vector` and `scalar` must compute the same function.
    @inlinable @inline(__always)
    public static func map<T: TensorElement>(
        _ input: UnsafePointer<T>, _ output: UnsafeMutablePointer<T>, _ range: Range<Int>,
        vector: (T.Vector) -> T.Vector, scalar: (T) -> T
    ) {
        let width = T.Vector.scalarCount
        var i = range.lowerBound
        while i + width <= range.upperBound {
            let v = UnsafeRawPointer(input + i).loadUnaligned(as: T.Vector.self)
            UnsafeMutableRawPointer(output + i).storeBytes(of: vector(v), as: T.Vector.self)
            i += width
        }
        while i < range.upperBound {
            output[i] = scalar(input[i])
            i += 1
        }
    }

    /// `output[i] = combine(a[i], b[i])` for `i` in `range`, vectorised.
    @inlinable @inline(__always)
    public static func zip<T: TensorElement>(
        _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ output: UnsafeMutablePointer<T>, _ range: Range<Int>,
        vector: (T.Vector, T.Vector) -> T.Vector, scalar: (T, T) -> T
    ) {
        let width = T.Vector.scalarCount
        var i = range.lowerBound
        while i + width <= range.upperBound {
            let x = UnsafeRawPointer(a + i).loadUnaligned(as: T.Vector.self)
            let y = UnsafeRawPointer(b + i).loadUnaligned(as: T.Vector.self)
            UnsafeMutableRawPointer(output + i).storeBytes(of: vector(x, y), as: T.Vector.self)
            i += width
        }
        while i < range.upperBound {
            output[i] = scalar(a[i], b[i])
            i += 1
        }
    }
}
