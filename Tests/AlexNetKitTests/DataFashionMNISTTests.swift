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
}
