/// PCA colour augmentation (section 4.1): "to each training image, we add
/// multiples of the found principal components, with magnitudes proportional
/// to the corresponding eigenvalues times a random variable drawn from a
/// Gaussian with mean zero and standard deviation 0.1". To every pixel
/// `[R, G, B]` add
///
///     [p1 p2 p3] [a1 m1, a2 m2, a3 m3]^T,   a_k ~ N(0, standardDeviation^2)
///
/// where `p_k` are the eigenvectors of the RGB covariance (``DatasetStatistics``),
/// `m_k` a magnitude from its eigenvalue `l_k`, and the `a_k` are drawn once
/// per image each time it is used (``AugmentationRandom/normals(seed:epoch:index:)``).
///
/// The paper does not say in which units its eigenvalues are, and `a_k l_k`
/// is not in the units of a pixel, so the result depends on the pixel scale.
/// ``Magnitude`` makes the choice explicit. Pixels here are 0...255.
public struct PCAColour: Sendable, Equatable {
    /// How the magnitude `m_k` follows from the eigenvalue `l_k` (in 0...255 units squared).
    public enum Magnitude: String, Sendable, CaseIterable {
        /// `m_k = l_k / 255`: the paper's formula with eigenvalues of the
        /// covariance of pixel values scaled to [0, 1] (`l_k / 255^2`), the
        /// shift scaled back to 0...255. For natural images this moves colours
        /// by a few levels, which is the visible effect the paper describes.
        case paper
        /// `m_k = sqrt(l_k)`: the standard deviation along each principal axis,
        /// which does not depend on the pixel scale; with standard deviation
        /// 0.1 it shifts by a tenth of the data's spread along each axis.
        case standardDeviation
    }

    /// The standard deviation of the `a_k` (0.1 in the paper).
    public var standardDeviation: Double
    /// How eigenvalues become magnitudes.
    public var magnitude: Magnitude

    /// The paper's setting by default: standard deviation 0.1, ``Magnitude/paper``.
    public init(standardDeviation: Double = 0.1, magnitude: Magnitude = .paper) {
        self.standardDeviation = standardDeviation
        self.magnitude = magnitude
    }

    /// The per-channel shift `sum_k P[c][k] a_k m_k`, for given `alphas` (already
    /// multiplied by the standard deviation).
    /// - Parameters:
    ///   - eigenvalues: `[C]`, descending, in 0...255 units squared.
    ///   - eigenvectors: `[C, C]` row-major, column `k` the eigenvector of `eigenvalues[k]`.
    /// - Returns: `[C]`, to be added to every pixel of channel `c`.
    public func shift(alphas: [Double], eigenvalues: [Double], eigenvectors: [Double]) -> [Double] {
        let n = eigenvalues.count
        let magnitudes = eigenvalues.map { value -> Double in
            let l = max(0, value)  // round-off can leave a tiny negative eigenvalue
            return magnitude == .paper ? l / 255 : l.squareRoot()
        }
        return (0..<n).map { c in
            var total = 0.0
            for k in 0..<n { total += eigenvectors[c * n + k] * alphas[k] * magnitudes[k] }
            return total
        }
    }

    /// The shift for example `index` in `epoch`: `a_k = standardDeviation * z_k`
    /// with `z_k` the PCA stream's normals for that example.
    public func shift(seed: UInt64, epoch: Int, index: Int, statistics: DatasetStatistics) -> [Double] {
        let z = AugmentationRandom.normals(seed: seed, epoch: epoch, index: index)
        let alphas = Array([z.0, z.1, z.2].prefix(statistics.channels)).map { $0 * standardDeviation }
        return shift(alphas: alphas, eigenvalues: statistics.eigenvalues, eigenvectors: statistics.eigenvectors)
    }
}
