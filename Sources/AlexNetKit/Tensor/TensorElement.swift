import RealModule

/// The element types a tensor can hold: `Float` (training, CUDA comparison) and
/// `Double` (gradient checks, oracles at tight tolerance).
///
/// Each element type names the SIMD vector its element-wise kernels use and the
/// BLAS routine its matrix products go to (`cblas_sgemm` / `cblas_dgemm`).
public protocol TensorElement: Real, BinaryFloatingPoint, SIMDScalar, Codable, Sendable, CustomStringConvertible
where Vector.Scalar == Self {
    /// The SIMD vector used by element-wise kernels (8 floats or 4 doubles: one AVX2 register).
    associatedtype Vector: SIMD

    /// A short name used in reports and file formats ("f32", "f64").
    static var dtypeName: String { get }

    /// The IEEE bit pattern widened to 64 bits, for bitwise comparisons.
    var rawBits: UInt64 { get }

    /// ReLU's forward on one vector: `v < 0 ? 0 : v` in each lane (NaN stays NaN).
    ///
    /// Lane selections are requirements implemented for the concrete types:
    /// in generic code `.<` and `replacing(with:where:)` resolve to the SIMD
    /// protocol's lane-by-lane fallbacks, which run 25x slower (measured 1.3 GB/s
    /// against 33 GB/s for the concrete SIMD8<Float> code).
    static func reluLanes(_ v: Vector) -> Vector

    /// ReLU's backward on one vector: `x <= 0 ? 0 : g` in each lane.
    static func reluGradientLanes(_ x: Vector, _ g: Vector) -> Vector

    /// Max pooling's argmax lanes: `Vector`'s mask storage (`SIMD8<Int32>` for
    /// Float, `SIMD4<Int64>` for Double), so a comparison's mask selects values
    /// and indices alike.
    typealias IndexLanes = Vector.MaskStorage

    /// Max pooling's running update on lanes (``MaxPool2D``'s rule): where
    /// `best` is not NaN and `candidate` is not `<=` it (greater, or the first
    /// NaN), `best` and `bestIndex` take `candidate` and `candidateIndex`.
    static func maxPoolLanes(_ best: inout Vector, _ bestIndex: inout IndexLanes, _ candidate: Vector,
                             _ candidateIndex: IndexLanes)

    /// ``maxPoolLanes(_:_:_:_:)`` without the argmax (inference): the same values.
    static func maxPoolValueLanes(_ best: inout Vector, _ candidate: Vector)

    /// The index lanes `start, start + step, start + 2 * step, ...`.
    static func indexLanes(start: Int32, step: Int32) -> IndexLanes

    /// Writes each index lane to `target` as an `Int32` (each fits: planes hold
    /// fewer than 2^31 cells).
    static func storeIndexLanes(_ v: IndexLanes, to target: UnsafeMutablePointer<Int32>)

    /// Loads `2 * Vector.scalarCount` consecutive elements from `source` and
    /// splits them into the even-numbered and the odd-numbered ones: the window
    /// columns `j` and `j + 1` of adjacent stride-2 pooling outputs. Written out
    /// lane by lane for the concrete types; the SIMD protocol's `evenHalf` ran
    /// 5x slower than the scalar scan it was to replace.
    static func loadEvenOddLanes(_ source: UnsafePointer<Self>) -> (even: Vector, odd: Vector)

    /// Row-major `C = alpha * op(A) * op(B) + beta * C` through BLAS
    /// (Kernels/GEMM.swift: `cblas_sgemm`, `cblas_dgemm`).
    ///
    /// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`; `lda`, `ldb`, `ldc`
    /// are the row strides of the matrices as stored.
    static func gemm(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Self,
        a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self,
        c: UnsafeMutablePointer<Self>, ldc: Int
    )

    /// Row-major `y = alpha * A * x + beta * y` through BLAS (`cblas_sgemv` /
    /// `cblas_dgemv`): `A` is `[m, n]` with row stride `lda`, `x` has `n`
    /// elements and `y` has `m`, both contiguous.
    static func gemv(m: Int, n: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     x: UnsafePointer<Self>, beta: Self, y: UnsafeMutablePointer<Self>)
}

extension Float: TensorElement {
    public typealias Vector = SIMD8<Float>
    public static var dtypeName: String { DType.float32.traceSpelling }
    @inlinable public var rawBits: UInt64 { UInt64(bitPattern) }

    @inlinable @inline(__always)
    public static func reluLanes(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: 0, where: v .< 0) }

    @inlinable @inline(__always)
    public static func reluGradientLanes(_ x: SIMD8<Float>, _ g: SIMD8<Float>) -> SIMD8<Float> {
        g.replacing(with: 0, where: x .<= 0)
    }

    @inlinable @inline(__always)
    public static func maxPoolLanes(_ best: inout SIMD8<Float>, _ bestIndex: inout SIMD8<Int32>,
                                    _ candidate: SIMD8<Float>, _ candidateIndex: SIMD8<Int32>) {
        let take = (best .== best) .& .!(candidate .<= best)
        best.replace(with: candidate, where: take)
        bestIndex.replace(with: candidateIndex, where: take)
    }

    @inlinable @inline(__always)
    public static func maxPoolValueLanes(_ best: inout SIMD8<Float>, _ candidate: SIMD8<Float>) {
        best.replace(with: candidate, where: (best .== best) .& .!(candidate .<= best))
    }

    @inlinable @inline(__always)
    public static func indexLanes(start: Int32, step: Int32) -> SIMD8<Int32> {
        SIMD8<Int32>(repeating: start) &+ SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &* step
    }

    @inlinable @inline(__always)
    public static func storeIndexLanes(_ v: SIMD8<Int32>, to target: UnsafeMutablePointer<Int32>) {
        UnsafeMutableRawPointer(target).storeBytes(of: v, as: SIMD8<Int32>.self)
    }

    @inlinable @inline(__always)
    public static func loadEvenOddLanes(_ source: UnsafePointer<Float>) -> (even: SIMD8<Float>, odd: SIMD8<Float>) {
        let v = UnsafeRawPointer(source).loadUnaligned(as: SIMD16<Float>.self)
        return (SIMD8(v[0], v[2], v[4], v[6], v[8], v[10], v[12], v[14]),
                SIMD8(v[1], v[3], v[5], v[7], v[9], v[11], v[13], v[15]))
    }
}

extension Double: TensorElement {
    public typealias Vector = SIMD4<Double>
    public static var dtypeName: String { DType.float64.traceSpelling }
    @inlinable public var rawBits: UInt64 { bitPattern }

    @inlinable @inline(__always)
    public static func reluLanes(_ v: SIMD4<Double>) -> SIMD4<Double> { v.replacing(with: 0, where: v .< 0) }

    @inlinable @inline(__always)
    public static func reluGradientLanes(_ x: SIMD4<Double>, _ g: SIMD4<Double>) -> SIMD4<Double> {
        g.replacing(with: 0, where: x .<= 0)
    }

    @inlinable @inline(__always)
    public static func maxPoolLanes(_ best: inout SIMD4<Double>, _ bestIndex: inout SIMD4<Int64>,
                                    _ candidate: SIMD4<Double>, _ candidateIndex: SIMD4<Int64>) {
        let take = (best .== best) .& .!(candidate .<= best)
        best.replace(with: candidate, where: take)
        bestIndex.replace(with: candidateIndex, where: take)
    }

    @inlinable @inline(__always)
    public static func maxPoolValueLanes(_ best: inout SIMD4<Double>, _ candidate: SIMD4<Double>) {
        best.replace(with: candidate, where: (best .== best) .& .!(candidate .<= best))
    }

    @inlinable @inline(__always)
    public static func indexLanes(start: Int32, step: Int32) -> SIMD4<Int64> {
        SIMD4<Int64>(repeating: Int64(start)) &+ SIMD4<Int64>(0, 1, 2, 3) &* Int64(step)
    }

    @inlinable @inline(__always)
    public static func storeIndexLanes(_ v: SIMD4<Int64>, to target: UnsafeMutablePointer<Int32>) {
        for lane in 0..<4 { target[lane] = Int32(truncatingIfNeeded: v[lane]) }
    }

    @inlinable @inline(__always)
    public static func loadEvenOddLanes(_ source: UnsafePointer<Double>) -> (even: SIMD4<Double>, odd: SIMD4<Double>) {
        let v = UnsafeRawPointer(source).loadUnaligned(as: SIMD8<Double>.self)
        return (SIMD4(v[0], v[2], v[4], v[6]), SIMD4(v[1], v[3], v[5], v[7]))
    }
}
