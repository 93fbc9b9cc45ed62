/// Eigenvalues and eigenvectors of a small symmetric matrix (the 3x3 RGB
/// covariance of PCA colour augmentation) by cyclic Jacobi rotations.
///
/// Each sweep visits every pair `p < q` and applies the rotation that zeroes
/// `a[p][q]` (Numerical Recipes' form: `theta = (a_qq - a_pp) / (2 a_pq)`,
/// `t = sign(theta) / (|theta| + sqrt(theta^2 + 1))`, `c = 1 / sqrt(t^2 + 1)`,
/// `s = t c`), accumulating the rotations into the eigenvector matrix. Sweeps
/// stop when the off-diagonal norm is below 1e-15 of the matrix norm (at most 64).
/// Jacobi is accurate to the last bits for small matrices and needs no library.
public enum SymmetricEigen {
    /// Decomposes the symmetric `n x n` matrix `matrix` (row-major; only
    /// symmetric input is meaningful, the average of `a[i][j]` and `a[j][i]` is used).
    /// - Returns: `values` in descending order, and `vectors` row-major `n x n`
    ///   whose column `k` (`vectors[r * n + k]`) is the unit eigenvector of
    ///   `values[k]`, signed so that its largest-magnitude component (the first
    ///   of equal ones) is positive.
    public static func decompose(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
        precondition(n >= 1 && matrix.count == n * n, "SymmetricEigen: expected \(n * n) entries, got \(matrix.count)")
        var a = matrix
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { let m = (a[i * n + j] + a[j * n + i]) / 2; a[i * n + j] = m; a[j * n + i] = m } }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let norm = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for _ in 0..<64 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += a[p * n + q] * a[p * n + q] } }
            if off.squareRoot() <= 1e-15 * norm || off == 0 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where a[p * n + q] != 0 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {  // A <- A P (columns p, q)
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {  // A <- P^T A (rows p, q)
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {  // V <- V P
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] || (a[$0 * n + $0] == a[$1 * n + $1] && $0 < $1) }
        var values = [Double](repeating: 0, count: n)
        var vectors = [Double](repeating: 0, count: n * n)
        for (k, column) in order.enumerated() {
            values[k] = a[column * n + column]
            var largest = 0
            for r in 0..<n where abs(v[r * n + column]) > abs(v[largest * n + column]) { largest = r }
            let sign: Double = v[largest * n + column] < 0 ? -1 : 1
            for r in 0..<n { vectors[r * n + k] = sign * v[r * n + column] }
        }
        return (values, vectors)
    }
}
