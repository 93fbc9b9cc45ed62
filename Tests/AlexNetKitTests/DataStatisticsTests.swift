import XCTest
@testable import AlexNetKit

final class DataStatisticsTests: XCTestCase {
    func testJacobiOnTheSecondDifferenceMatrix() {
        // [[2, -1, 0], [-1, 2, -1], [0, -1, 2]]: eigenvalues 2 + sqrt 2, 2, 2 - sqrt 2 with eigenvectors
        // (1, -sqrt 2, 1)/2, (1, 0, -1)/sqrt 2, (1, sqrt 2, 1)/2 (signed so the largest component is positive).
        let (values, vectors) = SymmetricEigen.decompose([2, -1, 0, -1, 2, -1, 0, -1, 2], n: 3)
        let r = 2.0.squareRoot()
        XCTAssertEqual(values[0], 2 + r, accuracy: 1e-14)
        XCTAssertEqual(values[1], 2, accuracy: 1e-14)
        XCTAssertEqual(values[2], 2 - r, accuracy: 1e-14)
        let expected: [[Double]] = [[-0.5, r / 2, -0.5], [1 / r, 0, -1 / r], [0.5, r / 2, 0.5]]
        for k in 0..<3 { for row in 0..<3 {
            XCTAssertEqual(vectors[row * 3 + k], expected[k][row], accuracy: 1e-14, "vector \(k), component \(row)")
        } }
    }

    func testJacobiReconstructsARandomCovariance() {
        // A = B B^T is symmetric positive semi-definite; A = V diag(l) V^T must hold, with V orthonormal.
        let b = (0..<9).map { Double(($0 * 37 + 11) % 17) - 8 }
        var a = [Double](repeating: 0, count: 9)
        for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { a[i * 3 + j] += b[i * 3 + k] * b[j * 3 + k] } } }
        let (values, v) = SymmetricEigen.decompose(a, n: 3)
        XCTAssertTrue(values[0] >= values[1] && values[1] >= values[2])
        for i in 0..<3 { for j in 0..<3 {
            var rebuilt = 0.0, dot = 0.0
            for k in 0..<3 { rebuilt += v[i * 3 + k] * values[k] * v[j * 3 + k]; dot += v[k * 3 + i] * v[k * 3 + j] }
            XCTAssertEqual(rebuilt, a[i * 3 + j], accuracy: 1e-11)
            XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-14)
        } }
        XCTAssertEqual(SymmetricEigen.decompose([7], n: 1).values, [7])
    }

    /// Two 3x1x2 images whose pixels deviate by +-10 from the channel means (20, 30, 20).
    private func twoImages() -> MemoryDataset {
        let a = DataFixtures.image([[[10, 30]], [[20, 20]], [[30, 10]]])
        let b = DataFixtures.image([[[10, 30]], [[40, 40]], [[30, 10]]])
        return MemoryDataset(images: [a, b], labels: [0, 1])
    }

    func testMeansCovarianceAndPrincipalComponentsOfKnownImages() throws {
        let (statistics, skipped) = try DatasetStatistics.compute(dataset: twoImages(), pipeline: ImagePipeline())
        XCTAssertEqual(skipped, [])
        XCTAssertEqual(statistics.imageCount, 2)
        XCTAssertEqual(statistics.meanImage.storage, [10, 30, 30, 30, 30, 10])
        XCTAssertEqual(statistics.channelMean, [20, 30, 20])
        // R and B move against each other, G on its own: cov(R, B) = -100, the rest of the off-diagonal 0.
        XCTAssertEqual(statistics.covariance, [100, 0, -100, 0, 100, 0, -100, 0, 100])
        XCTAssertEqual(statistics.eigenvalues[0], 200, accuracy: 1e-12)
        XCTAssertEqual(statistics.eigenvalues[1], 100, accuracy: 1e-12)
        XCTAssertEqual(statistics.eigenvalues[2], 0, accuracy: 1e-12)
        let r = 0.5.squareRoot()
        for (component, value) in [r, 0, -r].enumerated() { XCTAssertEqual(statistics.eigenvectors[component * 3], value, accuracy: 1e-14) }
    }

    func testStatisticsDoNotDependOnTheThreadCount() throws {
        let images = (0..<37).map { randomFloatTensor([3, 5, 4], seed: UInt64($0)) }
        let dataset = MemoryDataset(images: images.map { try! Tensor(shape: $0.shape, values: $0.storage.map { ($0 + 1) * 127 }) },
                                    labels: Array(repeating: 0, count: 37))
        let one = try DatasetStatistics.compute(dataset: dataset, pipeline: ImagePipeline(), threads: 1).statistics
        let two = try DatasetStatistics.compute(dataset: dataset, pipeline: ImagePipeline(), threads: 2).statistics
        XCTAssertTrue(one.meanImage.isBitwiseEqual(to: two.meanImage))
        XCTAssertEqual(one.covariance, two.covariance)
        XCTAssertEqual(one.eigenvectors, two.eigenvectors)
    }

    func testWriteAndReadBackAsNPZ() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (statistics, _) = try DatasetStatistics.compute(dataset: twoImages(), pipeline: ImagePipeline())
        try statistics.write(to: directory + "/stats.npz")
        let names = try NPZ.read(path: directory + "/stats.npz").map(\.description)
        XCTAssertEqual(names, ["mean_image: float32 [3, 1, 2]", "channel_mean: float64 [3]", "covariance: float64 [3, 3]",
                               "eigenvalues: float64 [3]", "eigenvectors: float64 [3, 3]", "image_count: int64 [1]"])
        let read = try DatasetStatistics.read(path: directory + "/stats.npz")
        XCTAssertTrue(read.meanImage.isBitwiseEqual(to: statistics.meanImage))
        XCTAssertEqual(read.channelMean, statistics.channelMean)
        XCTAssertEqual(read.covariance, statistics.covariance)
        XCTAssertEqual(read.eigenvalues, statistics.eigenvalues)
        XCTAssertEqual(read.imageCount, 2)
    }

    func testReadingAFileWithoutTheArraysNamesWhatIsMissing() throws {
        let directory = try DataFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try NPZ.write([StoredTensor(name: "mean_image", tensor: Tensor<Float>(shape: [3, 1, 1]))], to: directory + "/x.npz")
        let error = captureError { try DatasetStatistics.read(path: directory + "/x.npz") } as? TensorFileError
        XCTAssertEqual(error?.description, "\(directory)/x.npz: not a statistics file: no array 'channel_mean' (expected "
                       + "mean_image, channel_mean, covariance, eigenvalues, eigenvectors, image_count)")
    }

    func testImagesOfDifferentSizesAreRefused() {
        let dataset = MemoryDataset(images: [Tensor(shape: [1, 2, 2]), Tensor(shape: [1, 3, 2])], labels: [0, 0])
        assertDataError(captureError { try DatasetStatistics.compute(dataset: dataset, pipeline: ImagePipeline()) },
                        "memory image 1: prepared image is 1x3x2, earlier images are 1x2x2: statistics need one size (set a resize)")
    }
}
