import CBLAS
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

    /// Row-major `C = alpha * op(A) * op(B) + beta * C` through BLAS.
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
}

extension Float: TensorElement {
    public typealias Vector = SIMD8<Float>
    public static var dtypeName: String { "f32" }
    @inlinable public var rawBits: UInt64 { UInt64(bitPattern) }

    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        BLAS.ensureSingleThreaded()
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension Double: TensorElement {
    public typealias Vector = SIMD4<Double>
    public static var dtypeName: String { "f64" }
    @inlinable public var rawBits: UInt64 { bitPattern }

    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        BLAS.ensureSingleThreaded()
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// OpenBLAS configuration shared by every matrix product.
public enum BLAS {
    /// OpenBLAS's own threading changes results bitwise with the thread count
    /// (measured: up to 70% of sgemm outputs differ between 1 and 2 threads on
    /// conv1's shapes). We run it single-threaded and parallelise over a fixed
    /// partition ourselves, so results never depend on the thread count.
    public static let singleThreaded: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Forces the one-time `openblas_set_num_threads(1)` call.
    @inlinable @inline(__always)
    public static func ensureSingleThreaded() { _ = singleThreaded }
}
