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

    /// Max pooling's running update on lanes (``MaxPool2D``'s rule): where
    /// `best` is not NaN and `candidate` is not `<=` it (greater, or the first
    /// NaN), `best` and `bestIndex` take `candidate` and `candidateIndex`.
    static func maxPoolLanes(_ best: inout Vector, _ bestIndex: inout Vector, _ candidate: Vector, _ candidateIndex: Vector)

    /// Writes each lane of `v`, a whole number in `0 ..< 2^24`, to `target` as an `Int32`.
    static func storeWholeLanes(_ v: Vector, to target: UnsafeMutablePointer<Int32>)

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
    public static var dtypeName: String { "f32" }
    @inlinable public var rawBits: UInt64 { UInt64(bitPattern) }

    @inlinable @inline(__always)
    public static func reluLanes(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: 0, where: v .< 0) }

    @inlinable @inline(__always)
    public static func reluGradientLanes(_ x: SIMD8<Float>, _ g: SIMD8<Float>) -> SIMD8<Float> {
        g.replacing(with: 0, where: x .<= 0)
    }

    @inlinable @inline(__always)
    public static func maxPoolLanes(_ best: inout SIMD8<Float>, _ bestIndex: inout SIMD8<Float>,
                                    _ candidate: SIMD8<Float>, _ candidateIndex: SIMD8<Float>) {
        let take = (best .== best) .& .!(candidate .<= best)
        best.replace(with: candidate, where: take)
        bestIndex.replace(with: candidateIndex, where: take)
    }

    @inlinable @inline(__always)
    public static func storeWholeLanes(_ v: SIMD8<Float>, to target: UnsafeMutablePointer<Int32>) {
        // Lane by lane: the SIMD rounding initialiser takes a generic slow path.
        for lane in 0..<8 { target[lane] = Int32(v[lane]) }
    }
}

extension Double: TensorElement {
    public typealias Vector = SIMD4<Double>
    public static var dtypeName: String { "f64" }
    @inlinable public var rawBits: UInt64 { bitPattern }

    @inlinable @inline(__always)
    public static func reluLanes(_ v: SIMD4<Double>) -> SIMD4<Double> { v.replacing(with: 0, where: v .< 0) }

    @inlinable @inline(__always)
    public static func reluGradientLanes(_ x: SIMD4<Double>, _ g: SIMD4<Double>) -> SIMD4<Double> {
        g.replacing(with: 0, where: x .<= 0)
    }

    @inlinable @inline(__always)
    public static func maxPoolLanes(_ best: inout SIMD4<Double>, _ bestIndex: inout SIMD4<Double>,
                                    _ candidate: SIMD4<Double>, _ candidateIndex: SIMD4<Double>) {
        let take = (best .== best) .& .!(candidate .<= best)
        best.replace(with: candidate, where: take)
        bestIndex.replace(with: candidateIndex, where: take)
    }

    @inlinable @inline(__always)
    public static func storeWholeLanes(_ v: SIMD4<Double>, to target: UnsafeMutablePointer<Int32>) {
        // Lane by lane: the SIMD rounding initialiser takes a generic slow path.
        for lane in 0..<4 { target[lane] = Int32(v[lane]) }
    }
}
