import XCTest
@testable import AlexNetKit

final class DataIDXTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try DataFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private func writeSplit(images: [UInt8], labels: [UInt8], gzip: Bool, split: String = "train") throws {
        let suffix = gzip ? ".gz" : ""
        try DataFixtures.write(gzip ? Gzip.compress(images) : images, to: "\(directory)/\(split)-images-idx3-ubyte\(suffix)")
        try DataFixtures.write(gzip ? Gzip.compress(labels) : labels, to: "\(directory)/\(split)-labels-idx1-ubyte\(suffix)")
    }

    func testPlainAndGzippedFilesReadAlike() throws {
        let images = DataFixtures.idxImages(count: 3, rows: 2, columns: 4)
        let labels = DataFixtures.idxLabels([7, 0, 9])
        var read: [IDXDataset] = []
        for gzip in [false, true] {
            try? FileManager.default.removeItem(atPath: directory)
            try writeSplit(images: images, labels: labels, gzip: gzip)
            read.append(try IDXDataset(directory: directory, split: .train))
        }
        XCTAssertEqual(read[0].format, "IDX")
        XCTAssertEqual(read[1].format, "IDX (gzipped)")
        for dataset in read {
            XCTAssertEqual(dataset.count, 3)
            XCTAssertEqual(dataset.labels, [7, 0, 9])
            XCTAssertEqual(dataset.storedSize, ImageSize(channels: 1, height: 2, width: 4))
            // Image 2, pixel (y 1, x 3) is 2 * 16 + 1 * 4 + 3 = 39.
            let image = try dataset.image(at: 2)
            XCTAssertEqual(image.shape, [1, 2, 4])
            XCTAssertEqual(image[0, 1, 3], 39)
            XCTAssertEqual(image[0, 0, 0], 32)
        }
    }

    func testGzipIsRecognisedByContentNotName() throws {
        let images = Gzip.compress(DataFixtures.idxImages(count: 1, rows: 1, columns: 1))
        try DataFixtures.write(images, to: "\(directory)/i")
        try DataFixtures.write(DataFixtures.idxLabels([1]), to: "\(directory)/l.gz")
        let dataset = try IDXDataset(images: "\(directory)/i", labels: "\(directory)/l.gz")
        XCTAssertEqual(dataset.labels, [1])
    }

    func testLabelFileGivenAsImagesNamesBothMagics() throws {
        try DataFixtures.write(DataFixtures.idxLabels([1]), to: "\(directory)/a")
        let error = captureError { try IDXDataset(images: "\(directory)/a", labels: "\(directory)/a") }
        assertDataError(error, "\(directory)/a: not an IDX image file: magic number 0x00000801, expected 0x00000803 "
                        + "(unsigned bytes, 3 dimensions) (this is an IDX label file) (at byte 0)")
    }

    func testTruncatedImagesNamePartialImageAndItsOffset() throws {
        var images = DataFixtures.idxImages(count: 3, rows: 2, columns: 4)
        images.removeLast(5)  // image 2 keeps 3 of its 8 bytes
        try writeSplit(images: images, labels: DataFixtures.idxLabels([1, 2, 3]), gzip: false)
        let error = captureError { try IDXDataset(directory: directory, split: .train) }
        assertDataError(error, "\(directory)/train-images-idx3-ubyte: record 2: truncated: the header promises 3x2x4 = 24 bytes "
                        + "after the 16-byte header, the file holds 19; image 2 is partial (at byte 32)")
    }

    func testTruncatedGzippedImagesCountInflatedBytes() throws {
        var images = DataFixtures.idxImages(count: 3, rows: 2, columns: 4)
        images.removeLast(8)
        try writeSplit(images: images, labels: DataFixtures.idxLabels([1, 2, 3]), gzip: true)
        let error = captureError { try IDXDataset(directory: directory, split: .train) }
        assertDataError(error, "\(directory)/train-images-idx3-ubyte.gz: record 2: truncated: the header promises 3x2x4 = 24 "
                        + "bytes after the 16-byte header, the file holds 16; image 2 is missing (at byte 32 of the inflated data)")
    }

    func testBytesAfterTheElementsAreRefused() throws {
        try writeSplit(images: DataFixtures.idxImages(count: 1, rows: 2, columns: 2), labels: DataFixtures.idxLabels([1]) + [0, 0],
                       gzip: false)
        let error = captureError { try IDXDataset(directory: directory, split: .train) }
        assertDataError(error, "\(directory)/train-labels-idx1-ubyte: 2 bytes after the 1 elements the header promises (at byte 9)")
    }

    func testCountMismatchNamesBothFiles() throws {
        try writeSplit(images: DataFixtures.idxImages(count: 2, rows: 1, columns: 1), labels: DataFixtures.idxLabels([1]), gzip: false)
        let error = captureError { try IDXDataset(directory: directory, split: .train) }
        assertDataError(error, "\(directory)/train-labels-idx1-ubyte: holds 1 labels, but \(directory)/train-images-idx3-ubyte holds 2 images")
    }

    func testLabelOutOfRangeNamesRecordAndOffset() throws {
        try writeSplit(images: DataFixtures.idxImages(count: 3, rows: 1, columns: 1), labels: DataFixtures.idxLabels([1, 2, 10]),
                       gzip: false, split: "t10k")
        let error = captureError { try IDXDataset(directory: directory, split: .test) }
        assertDataError(error, "\(directory)/t10k-labels-idx1-ubyte: record 2: label 10 is out of range 0...9 (at byte 10)")
    }

    func testMissingFileNamesWhatWasExpected() throws {
        let error = captureError { try IDXDataset(directory: directory, split: .test) }
        assertDataError(error, "\(directory)/t10k-images-idx3-ubyte.gz: missing IDX file: expected t10k-images-idx3-ubyte.gz "
                        + "or t10k-images-idx3-ubyte in \(directory) for the test split")
    }

    func testShortHeaderIsRefused() throws {
        try DataFixtures.write([0, 0, 8, 3, 0, 0], to: "\(directory)/i")
        try DataFixtures.write(DataFixtures.idxLabels([1]), to: "\(directory)/l")
        let error = captureError { try IDXDataset(images: "\(directory)/i", labels: "\(directory)/l") }
        assertDataError(error, "\(directory)/i: truncated IDX header: 6 bytes, the header needs 16 (at byte 6)")
    }

    func testFashionMNISTClassNames() {
        XCTAssertEqual(IDXDataset.fashionMNISTClassNames, ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"])
    }

    // MARK: gzip

    func testGzipRoundTripAndConcatenatedMembers() throws {
        let first = Array("hello ".utf8), second = Array((0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        XCTAssertEqual(try Gzip.decompress(Gzip.compress(first), source: "a.gz"), first)
        XCTAssertEqual(try Gzip.decompress(Gzip.compress(first) + Gzip.compress(second), source: "a.gz"), first + second)
        XCTAssertEqual(try Gzip.decompress(Gzip.compress(first) + [0, 0, 0], source: "a.gz"), first)
    }

    func testTruncatedGzipNamesFile() {
        let packed = Gzip.compress(Array((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }))
        let error = captureError { try Gzip.decompress(Array(packed.prefix(packed.count / 2)), source: "x.gz") } as? DataError
        XCTAssertEqual(error?.file, "x.gz")
        XCTAssertTrue(error?.problem.hasPrefix("truncated gzip file") ?? false, "\(String(describing: error))")
    }

    func testCorruptGzipNamesFile() {
        var packed = Gzip.compress(Array(repeating: 65, count: 1000))
        packed[3] = 0xE0  // reserved flag bits set in the header
        let error = captureError { try Gzip.decompress(packed, source: "x.gz") } as? DataError
        XCTAssertEqual(error?.file, "x.gz")
        XCTAssertTrue(error?.problem.hasPrefix("corrupt gzip data") ?? false, "\(String(describing: error))")
        assertDataError(captureError { try Gzip.decompress([1, 2, 3], source: "y.gz") },
                        "y.gz: not a gzip file (it does not start with bytes 1f 8b) (at byte 0)")
    }

    func testGarbageAfterGzipIsRefused() {
        let error = captureError { try Gzip.decompress(Gzip.compress([1, 2, 3]) + [9, 9], source: "x.gz") } as? DataError
        XCTAssertEqual(error?.problem, "2 bytes of data that is not gzip after the end of the compressed stream")
    }
}
