/// Pointer loops over contiguous buffers for the few element-wise steps around
/// the matrix products (bias add, partial-sum add, plane sums).
///
/// Each walks the buffer one `Element.Vector` (8 floats or 4 doubles) at a time
/// and finishes the tail with scalars: no per-element closure or bounds check
/// in the hot path. The order of every floating-point operation is fixed by
/// `count` alone, so results never depend on alignment or threads.
enum Accumulate {
    /// `target[i] += source[i]` for `i` in `0..<count` (element-wise, so the
    /// result is the same as the scalar loop, bit for bit).
    @inline(__always)
    static func add<T: TensorElement>(_ source: UnsafePointer<T>, into target: UnsafeMutablePointer<T>, count: Int) {
        let width = T.Vector.scalarCount
        var i = 0
        while i + width <= count {
            let a = UnsafeRawPointer(target + i).loadUnaligned(as: T.Vector.self)
            let b = UnsafeRawPointer(source + i).loadUnaligned(as: T.Vector.self)
            UnsafeMutableRawPointer(target + i).storeBytes(of: a + b, as: T.Vector.self)
            i += width
        }
        // The tail in half and quarter vectors: col2im adds rows of 14, 13 or 7
        // (the small nets' and the paper's planes), where a scalar tail was most
        // of the time (and the compiler's own vector tail needs an alias test).
        if i + 4 <= count {
            let a = UnsafeRawPointer(target + i).loadUnaligned(as: SIMD4<T>.self)
            let b = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD4<T>.self)
            UnsafeMutableRawPointer(target + i).storeBytes(of: a + b, as: SIMD4<T>.self)
            i += 4
        }
        if i + 2 <= count {
            let a = UnsafeRawPointer(target + i).loadUnaligned(as: SIMD2<T>.self)
            let b = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD2<T>.self)
            UnsafeMutableRawPointer(target + i).storeBytes(of: a + b, as: SIMD2<T>.self)
            i += 2
        }
        if i < count {
            target[i] += source[i]
        }
    }

    /// `target[i] += value` for `i` in `0..<count`.
    @inline(__always)
    static func add<T: TensorElement>(_ value: T, into target: UnsafeMutablePointer<T>, count: Int) {
        // Element by element, so the source may be the target itself.
        add(value, to: UnsafePointer(target), into: target, count: count)
    }

    /// `target[i] = source[i] + value`: a copy followed by adding `value`, in
    /// one pass and with the same bits.
    @inline(__always)
    static func add<T: TensorElement>(_ value: T, to source: UnsafePointer<T>, into target: UnsafeMutablePointer<T>,
                                      count: Int) {
        let width = T.Vector.scalarCount
        let splat = T.Vector(repeating: value)
        var i = 0
        while i + width <= count {
            let a = UnsafeRawPointer(source + i).loadUnaligned(as: T.Vector.self)
            UnsafeMutableRawPointer(target + i).storeBytes(of: a + splat, as: T.Vector.self)
            i += width
        }
        while i < count {
            target[i] = source[i] + value
            i += 1
        }
    }

    /// The sum of `source[0..<count]` in a fixed order: lane `l` of a vector
    /// accumulator sums elements `l, l + width, l + 2 width, ...`; the lanes are
    /// then added in lane order, then the scalar tail in index order. Fixed by
    /// `count`, so it is deterministic, and the lanes keep it vectorised.
    @inline(__always)
    static func sum<T: TensorElement>(_ source: UnsafePointer<T>, count: Int) -> T {
        let width = T.Vector.scalarCount
        var lanes = T.Vector(repeating: 0)
        var i = 0
        while i + width <= count {
            lanes += UnsafeRawPointer(source + i).loadUnaligned(as: T.Vector.self)
            i += width
        }
        var total: T = 0
        for lane in 0..<width { total += lanes[lane] }
        while i < count {
            total += source[i]
            i += 1
        }
        return total
    }
}
