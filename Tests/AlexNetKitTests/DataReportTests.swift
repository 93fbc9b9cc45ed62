import XCTest
@testable import AlexNetKit

/// Format detection, `data inspect`'s report, planar JPEG decoding and PNG writing.
final class DataReportTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws { root = try DataFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func testDetectionNamesWhatItLookedFor() throws {
        assertDataError(captureError { try Datasets.detect(root) },
                        "\(root): no data set recognised: expected CIFAR-10 batch files (data_batch_1.bin ..., test_batch.bin, "
                        + "or cifar-10-batches-bin/), IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz] ...), "
                        + "or image folders (train/<class>/*.jpg, val/<class>/*.jpg)")
        assertDataError(captureError { try Datasets.detect(root + "/missing") }, "\(root)/missing: no such file or directory")
        try DataFixtures.write([1, 2, 3], to: root + "/weights.bin")
        assertDataError(captureError { try Datasets.detect(root + "/weights.bin") },
                        "\(root)/weights.bin: not a data set: a file must be a CIFAR-10 archive (.tar.gz, .tgz or .tar); "
                        + "IDX files and image folders are read from their directory")
        try DataFixtures.write(DataFixtures.idxImages(count: 1, rows: 1, columns: 1), to: root + "/t10k-images-idx3-ubyte")
        XCTAssertEqual(try Datasets.detect(root), .idx)
    }

    func testReportCountsClassesSizesAndProblems() throws {
        try DataFixtures.write(JPEG.encode(DataFixtures.photo(width: 8, height: 6)), to: root + "/train/cat/a.jpg")
        try DataFixtures.write(JPEG.encode(DataFixtures.photo(width: 8, height: 6)), to: root + "/train/cat/b.jpg")
        try DataFixtures.write(JPEG.encode(DataFixtures.photo(width: 5, height: 9)), to: root + "/train/dog/c.jpg")
        try DataFixtures.write(Array("junk".utf8), to: root + "/train/dog/d.jpg")
        let report = DatasetReport.make(dataset: try Datasets.open(path: root, split: .train), threads: 2)
        XCTAssertEqual(report.countsPerClass, [2, 2])
        XCTAssertEqual(report.imageSizes, [ImageSize(channels: 3, height: 6, width: 8): 2, ImageSize(channels: 3, height: 9, width: 5): 1])
        XCTAssertEqual(report.checked, 4)
        XCTAssertEqual(report.problems.map(\.file), [root + "/train/dog/d.jpg"])
        let lines = report.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(6)), ["format:   JPEG folders", "location: \(root)/train (train)", "examples: 4",
                                                "classes:  2", "     0  cat         2", "     1  dog         2"])
        XCTAssertTrue(lines.contains("  3x6x8                2"), report.text)
        XCTAssertTrue(lines.contains("problems: 1"), report.text)
        XCTAssertEqual(DatasetReport.make(dataset: try Datasets.open(path: root, split: .train), limit: 2).checked, 2)
    }

    func testPlanarDecodeEqualsInterleavedDecode() throws {
        let bytes = try JPEG.encode(DataFixtures.photo(width: 13, height: 7), progressive: true)
        let interleaved = try JPEG.decode(bytes, source: "x.jpg")
        let planar = try JPEG.decodePlanar(bytes, source: "x.jpg")
        XCTAssertEqual(planar.shape, [3, 7, 13])
        for c in 0..<3 { for y in 0..<7 { for x in 0..<13 {
            XCTAssertEqual(planar[c, y, x], Float(interleaved.pixels[(y * 13 + x) * 3 + c]))
        } } }
        let error = captureError { try JPEG.decodePlanar(Array(bytes.prefix(40)), source: "cut.jpg") } as? ImageError
        XCTAssertEqual(error?.source, "cut.jpg")
    }

    func testPNGHasSignatureHeaderAndChecksummedChunks() {
        let png = PNG.encode(Image8(width: 3, height: 2, channels: 3, pixels: Array(0..<18)))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        // IHDR: length 13, width 3, height 2, depth 8, colour type 2 (RGB).
        XCTAssertEqual(Array(png[8..<33].prefix(25)), [0, 0, 0, 13] + Array("IHDR".utf8) + [0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]
                       + Array(png[29..<33]))
        // Every PNG ends with the same IEND chunk: length 0, "IEND", CRC ae426082.
        XCTAssertEqual(Array(png.suffix(12)), [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
        let grey = PNG.encode(Image8(width: 1, height: 1, channels: 1, pixels: [7]))
        XCTAssertEqual(grey[25], 0)  // colour type 0: grey
    }
}
