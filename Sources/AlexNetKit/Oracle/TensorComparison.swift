import Foundation

/// When two tensors agree: element `i` passes when
/// `|ours_i - ref_i| <= atol + rtol * (|ref_i| + scale)`, `scale` being the
/// reference tensor's root mean square; or, ``exact``, when the bits are equal.
///
/// The `scale` term measures an element against the tensor's typical size, so
/// an output that came out near zero by cancellation is held to the error its
/// inputs' size allows rather than to its own (tiny) magnitude. Where a
/// layer's backward multiplies the upstream gradient by a factor that can
/// cancel (tanh's `1 - y^2`, LRN's two terms), ``minimumScale`` raises the
/// scale to the upstream gradient's RMS, the size its rounding errors have.
public struct Tolerance: Equatable, Sendable {
    /// Relative tolerance, multiplying `|ref_i| + scale`.
    public var rtol: Double
    /// Absolute tolerance, added.
    public var atol: Double
    /// Bit-exact: every element must have the reference's bits (NaN payloads included).
    public var exact: Bool
    /// A lower bound on `scale` (0: the reference's RMS alone).
    public var minimumScale: Double

    /// A tolerance; see the properties.
    public init(rtol: Double, atol: Double = 0, exact: Bool = false, minimumScale: Double = 0) {
        self.rtol = rtol
        self.atol = atol
        self.exact = exact
        self.minimumScale = minimumScale
    }

    /// Bit-exact comparison.
    public static let bitExact = Tolerance(rtol: 0, atol: 0, exact: true)

    /// `rtol 1.2e-06` or `bit-exact`, with `atol` when it is not zero.
    public var summary: String {
        if exact { return "bit-exact" }
        return OracleFormat.scientific(rtol, digits: 1) + (atol > 0 ? " + atol " + OracleFormat.scientific(atol, digits: 1) : "")
    }
}

/// How far one tensor is from the reference's: the numbers the oracle's
/// tables, JSON and JUnit reports print.
public struct TensorComparison: Sendable {
    /// The reference tensor's shape.
    public var referenceShape: Shape
    /// Our tensor's shape. When it differs from the reference's, no numbers are computed.
    public var oursShape: Shape
    /// The tolerance applied.
    public var tolerance: Tolerance
    /// The reference's root mean square, or the tolerance's ``Tolerance/minimumScale`` if larger
    /// (the `scale` of ``Tolerance``).
    public var scale: Double
    /// `max |ours - ref|`.
    public var maxAbsoluteError: Double = 0
    /// `max |ours - ref| / (|ref| + scale)`: the relative error the tolerance bounds.
    public var maxRelativeError: Double = 0
    /// The median of that relative error over the elements (nearest rank: the
    /// `ceil(n/2)`-th smallest): the typical element, which a few outliers do not move.
    public var medianRelativeError: Double = 0
    /// Its 99th percentile (nearest rank, the `ceil(0.99 n)`-th smallest): where the bulk
    /// ends. Beside the maximum it tells a few bad elements (max far above p99) from
    /// errors that move everything (max a few times p99).
    public var p99RelativeError: Double = 0
    /// The largest distance in units in the last place of the element type
    /// (the number of representable values between the two, plus one; infinite for NaN).
    public var maxULPs: Double = 0
    /// `sum(ours * ref) / (|ours| |ref|)`; 1 when both are zero.
    public var cosine: Double = 1
    /// Elements beyond the tolerance (different bits, when exact).
    public var outOfTolerance: Int = 0
    /// Elements whose bits are identical.
    public var bitwiseEqual: Int = 0
    /// The first element beyond the tolerance: flat index, position, our and the reference's value.
    public var firstBad: (index: Int, position: [Int], ours: Double, reference: Double)?
    /// Mean of `ours - ref` (a biased error shows here).
    public var meanError: Double = 0
    /// Root mean square of `ours - ref`.
    public var rmsError: Double = 0
    /// Elements of ours that are NaN or infinite.
    public var nonFiniteOurs: Int = 0

    /// Number of elements compared (0 when the shapes differ).
    public var count: Int { shapesDiffer ? 0 : referenceShape.count }

    /// Whether the shapes differ (the comparison then fails).
    public var shapesDiffer: Bool { referenceShape != oursShape }

    /// Whether every element is within the tolerance and the shapes agree.
    public var passed: Bool { !shapesDiffer && outOfTolerance == 0 }

    /// `rmsError / scale`: the typical error relative to the tensor's typical size.
    public var relativeRMSError: Double { scale > 0 ? rmsError / scale : (rmsError > 0 ? .infinity : 0) }

    /// Compares `ours` with `reference` element by element.
    /// - Parameter quantiles: whether to compute ``medianRelativeError`` and
    ///   ``p99RelativeError`` (one Double per element and two selections); the
    ///   diagnosis, which only asks whether a candidate passes, leaves them at 0.
    public static func compare<T: TensorElement>(ours: Tensor<T>, reference: Tensor<T>, tolerance: Tolerance,
                                                 quantiles: Bool = true) -> TensorComparison {
        var result = TensorComparison(referenceShape: reference.shape, oursShape: ours.shape, tolerance: tolerance, scale: 0)
        guard ours.shape == reference.shape else { return result }
        let count = reference.count
        let isSingle = MemoryLayout<T>.size == 4
        ours.withUnsafeBufferPointer { a in
            reference.withUnsafeBufferPointer { b in
                var sumSquares = 0.0
                for i in 0..<count { let r = Double(b[i]); sumSquares += r * r }
                let scale = max(count > 0 ? (sumSquares / Double(count)).squareRoot() : 0, tolerance.minimumScale)
                result.scale = scale
                var dot = 0.0, oursSquares = 0.0, errorSum = 0.0, errorSquares = 0.0
                var maxAbs = 0.0, maxRel = 0.0, maxULPs = 0.0
                var bad = 0, equal = 0, nonFinite = 0
                var relatives = [Double](repeating: 0, count: quantiles ? count : 0)
                for i in 0..<count {
                    let x = a[i], y = b[i]
                    let sameBits = x.rawBits == y.rawBits
                    if sameBits { equal += 1 }
                    let ours = Double(x), ref = Double(y)
                    if !ours.isFinite { nonFinite += 1 }
                    let difference = ours - ref
                    let error = abs(difference)
                    dot += ours * ref
                    oursSquares += ours * ours
                    if difference.isFinite {
                        errorSum += difference
                        errorSquares += difference * difference
                    }
                    let relative = error == 0 ? 0 : error / (abs(ref) + scale)
                    if !(error <= maxAbs) { maxAbs = error }
                    if !(relative <= maxRel) { maxRel = relative }
                    if quantiles { relatives[i] = relative.isNaN ? .infinity : relative }
                    let ulps = sameBits ? 0 : ulpDistance(x.rawBits, y.rawBits, single: isSingle)
                    if ulps > maxULPs { maxULPs = ulps }
                    let fails = tolerance.exact ? !sameBits
                        : !(error <= tolerance.atol + tolerance.rtol * (abs(ref) + scale))
                    if fails {
                        if bad == 0 {
                            result.firstBad = (i, TracePlan.position(of: i, in: reference.shape), ours, ref)
                        }
                        bad += 1
                    }
                }
                let norms = (oursSquares * sumSquares).squareRoot()
                result.cosine = norms > 0 ? dot / norms : (oursSquares == 0 && sumSquares == 0 ? 1 : 0)
                result.maxAbsoluteError = maxAbs
                result.maxRelativeError = maxRel
                result.medianRelativeError = nearestRank(0.5, of: &relatives)
                result.p99RelativeError = nearestRank(0.99, of: &relatives)
                result.maxULPs = maxULPs
                result.outOfTolerance = bad
                result.bitwiseEqual = equal
                result.nonFiniteOurs = nonFinite
                result.meanError = count > 0 ? errorSum / Double(count) : 0
                result.rmsError = count > 0 ? (errorSquares / Double(count)).squareRoot() : 0
            }
        }
        return result
    }

    /// The nearest-rank `p` quantile of `values` (the `ceil(p n)`-th smallest; 0 when empty),
    /// by quickselect: linear time, so a 37-million-element fc6 weight costs no sort.
    /// Reorders `values`.
    static func nearestRank(_ p: Double, of values: inout [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let k = min(values.count - 1, max(0, Int((p * Double(values.count)).rounded(.up)) - 1))
        var low = 0, high = values.count - 1
        while low < high {
            // Median of three as the pivot, then Hoare's partition.
            let middle = low + (high - low) / 2
            let pivot = max(min(values[low], values[middle]), min(max(values[low], values[middle]), values[high]))
            var i = low, j = high
            while i <= j {
                while values[i] < pivot { i += 1 }
                while values[j] > pivot { j -= 1 }
                if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { high = j } else if k >= i { low = i } else { return values[k] }
        }
        return values[k]
    }

    /// A comparison that could not be made because the shapes differ.
    public static func shapeMismatch(ours: Shape, reference: Shape, tolerance: Tolerance) -> TensorComparison {
        TensorComparison(referenceShape: reference, oursShape: ours, tolerance: tolerance, scale: 0)
    }

    /// Representable values between two floats of one width, from their bit patterns
    /// (`single`: 32-bit). Infinite when either is NaN.
    static func ulpDistance(_ a: UInt64, _ b: UInt64, single: Bool) -> Double {
        func ordered(_ bits: UInt64) -> (Double, Bool) {
            if single {
                let v = UInt32(truncatingIfNeeded: bits)
                let isNaN = (v & 0x7F80_0000) == 0x7F80_0000 && (v & 0x007F_FFFF) != 0
                let magnitude = Int64(v & 0x7FFF_FFFF)
                return (Double(v & 0x8000_0000 != 0 ? -magnitude : magnitude), isNaN)
            }
            let isNaN = (bits & 0x7FF0_0000_0000_0000) == 0x7FF0_0000_0000_0000 && (bits & 0x000F_FFFF_FFFF_FFFF) != 0
            let magnitude = bits & 0x7FFF_FFFF_FFFF_FFFF
            // Exact below 2^53 ULPs apart, which is all a report needs.
            return (bits & 0x8000_0000_0000_0000 != 0 ? -Double(magnitude) : Double(magnitude), isNaN)
        }
        let (x, xNaN) = ordered(a), (y, yNaN) = ordered(b)
        if xNaN || yNaN { return .infinity }
        if single { return abs(x - y) }
        // Close values: subtract the integer patterns exactly.
        let (ma, mb) = (Int64(bitPattern: a & 0x7FFF_FFFF_FFFF_FFFF), Int64(bitPattern: b & 0x7FFF_FFFF_FFFF_FFFF))
        if (a >> 63) == (b >> 63) { return Double(ma > mb ? ma - mb : mb - ma) }
        return abs(x - y)
    }
}

/// Number formatting shared by the oracle's reports.
enum OracleFormat {
    /// `1.23e-05` (C's `%.*e`), `0`, `inf` or `nan`.
    static func scientific(_ x: Double, digits: Int = 2) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        if x == 0 { return "0" }
        return String(format: "%.\(digits)e", x)
    }
}
