import XCTest
@testable import AlexNetKit

/// Reads the real Fashion-MNIST test set where Debian's `dataset-fashion-mnist` is installed.
final class DataFashionMNISTTests: XCTestCase {
    static let directory = "/usr/share/datasets/fashion-mnist"

    func testRealTestSetHasTenThousandImagesAThousandPerClass() throws {
        guard DataFile.isDirectory(Self.directory) else {
            throw XCTSkip("\(Self.directory) not found: apt-get install dataset-fashion-mnist")
        }
        let dataset = try Datasets.open(path: Self.directory, split: .test)
        XCTAssertEqual(dataset.format, "IDX (gzipped)")
        XCTAssertEqual(dataset.count, 10_000)
        XCTAssertEqual(dataset.classNames, IDXDataset.fashionMNISTClassNames)
        XCTAssertEqual(dataset.countsPerClass, Array(repeating: 1000, count: 10))
        XCTAssertEqual(dataset.storedSize, ImageSize(channels: 1, height: 28, width: 28))
        let image = try dataset.image(at: 0)
        XCTAssertEqual(image.shape, [1, 28, 28])
        XCTAssertTrue(image.storage.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() })
        XCTAssertGreaterThan(image.storage.max()!, 100)  // not blank
        // The published first test label is 9 (Ankle boot).
        XCTAssertEqual(dataset.labels.first, 9)
    }

    /// The library example of Docs/data.md, one batch of it.
    func testDocsLibraryExampleGivesNormalisedBatches() throws {
        guard DataFile.isDirectory(Self.directory) else {
            throw XCTSkip("\(Self.directory) not found: apt-get install dataset-fashion-mnist")
        }
        let train = try Datasets.open(path: Self.directory, split: .train)
        let (statistics, _) = try DatasetStatistics.compute(dataset: train, pipeline: ImagePipeline(), threads: 2, limit: 2000)
        let pipeline = ImagePipeline(meanSubtraction: .perChannel, crop: .random(height: 28, width: 28, padding: 4),
                                     horizontalFlip: true, scale: 1 / 255)
        let loader = try BatchLoader(dataset: train, pipeline: pipeline, statistics: statistics,
                                     options: BatchOptions(batchSize: 128, prefetch: 2, threads: 2, seed: 1))
        let batches = loader.batches(epoch: 0)
        let batch = try XCTUnwrap(try batches.next())
        XCTAssertEqual(batch.images.shape, [128, 1, 28, 28])
        XCTAssertEqual(batch.labels, batch.indices.map { train.labels[$0] })
        let values = batch.images.storage
        XCTAssertTrue(values.allSatisfy { $0 >= -1 && $0 <= 1 })
        XCTAssertEqual(Double(values.reduce(0, +)) / Double(values.count), 0, accuracy: 0.1)
    }
}
