import XCTest
@testable import AlexNetKit

final class DataCIFARTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws { directory = try DataFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func testRecordsAreLabelThenRedGreenBluePlanes() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        let train = try CIFAR10Dataset(directory: directory, split: .train)
        XCTAssertEqual(train.count, 10)
        XCTAssertEqual(train.labels, Array(0...9))
        XCTAssertEqual(train.storedSize, ImageSize(channels: 3, height: 32, width: 32))
        let image = try train.image(at: 3)  // data_batch_2.bin record 1
        XCTAssertEqual(image.shape, [3, 32, 32])
        for (c, y, x) in [(0, 0, 0), (1, 5, 7), (2, 31, 31), (0, 17, 2)] {
            XCTAssertEqual(image[c, y, x], Float(DataFixtures.cifarPixel(record: 3, c: c, y: y, x: x)), "(\(c), \(y), \(x))")
        }
        XCTAssertEqual(train.exampleName(at: 3), "\(directory)/data_batch_2.bin record 1")
        let test = try CIFAR10Dataset(directory: directory, split: .test)
        XCTAssertEqual(test.labels, [8, 9, 0])
        XCTAssertEqual(try test.image(at: 1)[1, 2, 3], Float(DataFixtures.cifarPixel(record: 101, c: 1, y: 2, x: 3)))
    }

    func testClassNamesComeFromMetaFileOrTheStandardList() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        let withMeta = try CIFAR10Dataset(directory: directory, split: .test)
        XCTAssertEqual(withMeta.classNames.first, "AIRPLANE")
        XCTAssertEqual(withMeta.classNames.count, 10)
        XCTAssertEqual(withMeta.notes, [])
        try FileManager.default.removeItem(atPath: directory + "/batches.meta.txt")
        let without = try CIFAR10Dataset(directory: directory, split: .test)
        XCTAssertEqual(without.classNames, CIFAR10Dataset.standardClassNames)
        XCTAssertEqual(without.notes, ["batches.meta.txt not found: using the standard class names"])
    }

    func testShortMetaFileIsRefused() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        try DataFixtures.write(Array("cat\ndog\n".utf8), to: directory + "/batches.meta.txt")
        let error = captureError { try CIFAR10Dataset(directory: directory, split: .test) }
        assertDataError(error, "\(directory)/batches.meta.txt: batches.meta.txt lists 2 class names, CIFAR-10 needs 10")
    }

    func testDirectoryHoldingTheUnpackedArchiveDirectoryIsAccepted() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory + "/cifar-10-batches-bin")
        XCTAssertEqual(try CIFAR10Dataset(directory: directory, split: .train).count, 10)
        XCTAssertEqual(try Datasets.detect(directory), .cifar10)
    }

    func testTruncatedFileNamesPartialRecordAndOffset() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        try DataFixtures.write(DataFixtures.cifarBatch(labels: [1, 2, 3]).dropLast(100), to: directory + "/test_batch.bin")
        let error = captureError { try CIFAR10Dataset(directory: directory, split: .test) }
        assertDataError(error, "\(directory)/test_batch.bin: record 2: truncated CIFAR-10 batch file: 9119 bytes is not a "
                        + "multiple of the 3073-byte record; the last record holds 2973 of 3073 bytes (at byte 6146)")
    }

    func testLabelAboveNineNamesFileRecordAndOffset() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        try DataFixtures.write(DataFixtures.cifarBatch(labels: [1, 2, 3, 10]), to: directory + "/data_batch_4.bin")
        let error = captureError { try CIFAR10Dataset(directory: directory, split: .train) }
        assertDataError(error, "\(directory)/data_batch_4.bin: record 3: label 10 is out of range 0...9 (at byte 9219)")
    }

    func testMissingBatchFileIsNamedWithWhatWasExpected() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        try FileManager.default.removeItem(atPath: directory + "/data_batch_3.bin")
        let error = captureError { try CIFAR10Dataset(directory: directory, split: .train) }
        assertDataError(error, "\(directory)/data_batch_3.bin: missing CIFAR-10 batch file: the train split needs "
                        + "data_batch_3.bin in \(directory) (a CIFAR-10 binary directory holds data_batch_1.bin, "
                        + "data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin, batches.meta.txt)")
    }

    func testEmptyBatchFileIsRefused() throws {
        _ = try DataFixtures.writeCIFARDirectory(directory)
        try DataFixtures.write([], to: directory + "/test_batch.bin")
        assertDataError(captureError { try CIFAR10Dataset(directory: directory, split: .test) },
                        "\(directory)/test_batch.bin: empty CIFAR-10 batch file: no records")
    }

    // MARK: The distributed archive

    /// The archive as distributed: `cifar-10-batches-bin/` with the batch files, a readme, gzipped.
    private func writeArchive(_ files: [String: [UInt8]], extra: [(String, [UInt8])] = [], gzip: Bool = true) throws -> String {
        var entries: [(name: String, bytes: [UInt8])] = [("cifar-10-batches-bin/readme.html", Array("<html/>".utf8))]
        for name in files.keys.sorted() { entries.append(("cifar-10-batches-bin/" + name, files[name]!)) }
        entries += extra.map { (name: $0.0, bytes: $0.1) }
        let tar = DataFixtures.tar(entries)
        let path = directory + (gzip ? "/cifar-10-binary.tar.gz" : "/cifar-10-binary.tar")
        try DataFixtures.write(gzip ? Gzip.compress(tar) : tar, to: path)
        return path
    }

    func testArchiveReadsTheSameAsTheDirectory() throws {
        let files = try DataFixtures.writeCIFARDirectory(directory + "/unpacked")
        let archive = try writeArchive(files)
        for split in DataSplit.allCases {
            let fromArchive = try CIFAR10Dataset(archive: archive, split: split)
            let fromDirectory = try CIFAR10Dataset(directory: directory + "/unpacked", split: split)
            XCTAssertEqual(fromArchive.format, "CIFAR-10 binary (tar.gz)")
            XCTAssertEqual(fromArchive.labels, fromDirectory.labels)
            XCTAssertEqual(fromArchive.classNames, fromDirectory.classNames)
            for i in 0..<fromArchive.count {
                XCTAssertTrue(try fromArchive.image(at: i).isBitwiseEqual(to: fromDirectory.image(at: i)))
            }
        }
        let train = try Datasets.open(path: archive, split: .train)
        XCTAssertEqual(train.exampleName(at: 9), "\(archive):cifar-10-batches-bin/data_batch_5.bin record 1")
        XCTAssertEqual(try CIFAR10Dataset(archive: try writeArchive(files, gzip: false), split: .test).format, "CIFAR-10 binary (tar)")
    }

    func testArchiveErrorsNameTheMemberAndItsOffset() throws {
        var files = try DataFixtures.writeCIFARDirectory(directory + "/unpacked")
        files["data_batch_2.bin"] = DataFixtures.cifarBatch(labels: [4, 200])
        let archive = try writeArchive(files)
        assertDataError(captureError { try CIFAR10Dataset(archive: archive, split: .train) },
                        "\(archive): member 'cifar-10-batches-bin/data_batch_2.bin': record 1: label 200 is out of range 0...9 "
                        + "(at byte 3073 of the member)")
    }

    func testArchiveWithoutABatchFileNamesIt() throws {
        var files = try DataFixtures.writeCIFARDirectory(directory + "/unpacked")
        files["test_batch.bin"] = nil
        let archive = try writeArchive(files)
        assertDataError(captureError { try CIFAR10Dataset(archive: archive, split: .test) },
                        "\(archive): missing CIFAR-10 batch file: the archive has no member named test_batch.bin (the test split "
                        + "needs test_batch.bin; expected cifar-10-batches-bin/ holding data_batch_1.bin, data_batch_2.bin, "
                        + "data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin, batches.meta.txt)")
    }

    func testTruncatedArchiveNamesTheMember() throws {
        let files = try DataFixtures.writeCIFARDirectory(directory + "/unpacked")
        let tar = DataFixtures.tar([("cifar-10-batches-bin/test_batch.bin", files["test_batch.bin"]!)])
        let path = directory + "/cut.tar"
        try DataFixtures.write(Array(tar.prefix(4000)), to: path)
        assertDataError(captureError { try CIFAR10Dataset(archive: path, split: .test) },
                        "\(path): truncated tar archive: member 'cifar-10-batches-bin/test_batch.bin' claims 9219 bytes, "
                        + "only 3488 remain (at byte 0)")
    }

    func testBadTarChecksumIsRefused() throws {
        var tar = DataFixtures.tar([("a/test_batch.bin", DataFixtures.cifarBatch(labels: [1]))])
        tar[0] = UInt8(ascii: "b")
        let path = directory + "/bad.tar"
        try DataFixtures.write(tar, to: path)
        let error = captureError { try CIFAR10Dataset(archive: path, split: .test) } as? DataError
        XCTAssertEqual(error?.offset, 0)
        XCTAssertTrue(error?.problem.hasPrefix("corrupt tar header: checksum") ?? false, "\(String(describing: error))")
    }

    func testGNULongNamesAreFollowed() throws {
        let longDirectory = String(repeating: "d", count: 120)
        let name = longDirectory + "/test_batch.bin"
        var tar = DataFixtures.tarHeader(name: "././@LongLink", size: name.utf8.count + 1, type: UInt8(ascii: "L"))
        tar += Array(name.utf8) + [0] + [UInt8](repeating: 0, count: 511 - name.utf8.count % 512)
        let records = DataFixtures.cifarBatch(labels: [5])
        tar += DataFixtures.tarHeader(name: String(name.prefix(99)), size: records.count, type: UInt8(ascii: "0"))
        tar += records + [UInt8](repeating: 0, count: (512 - records.count % 512) % 512) + [UInt8](repeating: 0, count: 1024)
        let members = try Tar.members(tar, context: DataContext(file: "t.tar"))
        XCTAssertEqual(members.map(\.name), [name])
        let path = directory + "/long.tar"
        try DataFixtures.write(tar, to: path)
        XCTAssertEqual(try CIFAR10Dataset(archive: path, split: .test).labels, [5])
    }
}
