import XCTest
@testable import AlexNetKit

final class DataImageFolderTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws { root = try DataFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    private func writeJPEG(_ image: Image8, _ relative: String, progressive: Bool = false) throws {
        try DataFixtures.write(JPEG.encode(image, quality: 95, progressive: progressive), to: root + "/" + relative)
    }

    func testClassesAreSortedByNameAndLabelledInThatOrder() throws {
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/zebra/b.jpg")
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/zebra/a.JPEG")
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/Zulu/x.jpg")
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/ant/x.jpeg")
        try DataFixtures.write(Array("notes".utf8), to: root + "/train/ant/readme.txt")
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "val/zebra/v.jpg")
        let train = try ImageFolderDataset(root: root, split: .train)
        // Code point order: uppercase before lowercase, as Python's sorted() and torchvision order them.
        XCTAssertEqual(train.classNames, ["Zulu", "ant", "zebra"])
        XCTAssertEqual(train.files.map { String($0.dropFirst(root.count + 1)) },
                       ["train/Zulu/x.jpg", "train/ant/x.jpeg", "train/zebra/a.JPEG", "train/zebra/b.jpg"])
        XCTAssertEqual(train.labels, [0, 1, 2, 2])
        XCTAssertEqual(train.notes, ["1 entries passed over: not .jpg/.jpeg files"])
        let val = try ImageFolderDataset(root: root, split: .test)
        XCTAssertEqual(val.classNames, train.classNames)
        XCTAssertEqual(val.labels, [2])
        XCTAssertEqual(val.notes, ["class 'Zulu' has no directory in \(root)/val", "class 'ant' has no directory in \(root)/val"])
        XCTAssertEqual(try Datasets.detect(root), .folder)
    }

    func testGreyscaleAndProgressiveFilesDecodeToRGB() throws {
        let grey = Image8(width: 16, height: 12, channels: 1, pixels: (0..<192).map { UInt8($0 % 16 * 16) })
        try writeJPEG(grey, "train/a/grey.jpg")
        try writeJPEG(DataFixtures.photo(width: 20, height: 10), "train/a/progressive.jpg", progressive: true)
        let dataset = try ImageFolderDataset(root: root, split: .train)
        let greyImage = try dataset.image(at: 0)
        XCTAssertEqual(greyImage.shape, [3, 12, 16])
        XCTAssertEqual(greyImage[0, 5, 7], greyImage[1, 5, 7])
        XCTAssertEqual(greyImage[0, 5, 7], greyImage[2, 5, 7])
        XCTAssertEqual(Double(greyImage[0, 5, 7]), 112, accuracy: 8)
        let progressive = try dataset.image(at: 1)
        XCTAssertEqual(progressive.shape, [3, 10, 20])
        XCTAssertEqual(Double(progressive[0, 5, 19]), 255, accuracy: 12)  // red ramps left to right
    }

    func testTruncatedJPEGIsAnErrorNamingTheFile() throws {
        let bytes = try JPEG.encode(DataFixtures.noise(width: 64, height: 64))
        try DataFixtures.write(Array(bytes.prefix(bytes.count * 2 / 3)), to: root + "/train/a/cut.jpg")
        let dataset = try ImageFolderDataset(root: root, split: .train)
        let error = captureError { try dataset.image(at: 0) } as? DataError
        XCTAssertEqual(error?.file, root + "/train/a/cut.jpg")
        XCTAssertTrue(error?.problem.hasPrefix("corrupt or truncated JPEG") ?? false, "\(String(describing: error))")
    }

    func testNonJPEGWithAJpgNameIsAnErrorNamingTheFile() throws {
        try DataFixtures.write(Array("GIF89a, not a jpeg".utf8), to: root + "/train/a/fake.jpg")
        let dataset = try ImageFolderDataset(root: root, split: .train)
        let error = captureError { try dataset.image(at: 0) } as? DataError
        XCTAssertEqual(error?.file, root + "/train/a/fake.jpg")
        XCTAssertTrue(error?.problem.hasPrefix("not a readable JPEG") ?? false, "\(String(describing: error))")
    }

    func testMissingSplitDirectoryNamesTheLayout() throws {
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/a/x.jpg")
        assertDataError(captureError { try ImageFolderDataset(root: root, split: .test) },
                        "\(root)/val: missing test directory: expected \(root)/val/<class>/*.jpg (ImageNet-style folders: "
                        + "\(root)/train/<class>/*.jpg, \(root)/val/<class>/*.jpg)")
        assertDataError(captureError { try ImageFolderDataset(root: root + "/nowhere", split: .train) },
                        "\(root)/nowhere: no such directory (expected \(root)/nowhere/train/<class>/*.jpg and \(root)/nowhere/val/<class>/*.jpg)")
    }

    func testValidationClassMissingFromTrainingIsRefused() throws {
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/a/x.jpg")
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "val/b/x.jpg")
        assertDataError(captureError { try ImageFolderDataset(root: root, split: .test) },
                        "\(root)/val/b: class 'b' is not among the 1 classes of \(root)/train")
    }

    func testClassFoldersWithoutImagesAreRefused() throws {
        try FileManager.default.createDirectory(atPath: root + "/train/a", withIntermediateDirectories: true)
        assertDataError(captureError { try ImageFolderDataset(root: root, split: .train) },
                        "\(root)/train: no images: expected \(root)/train/<class>/*.jpg")
    }

    func testBadFilesStopTheLoaderByNameOrAreSkippedAndReported() throws {
        for i in 0..<4 { try writeJPEG(DataFixtures.photo(width: 8, height: 8, seed: i), "train/a/\(i).jpg") }
        try DataFixtures.write(Array("junk".utf8), to: root + "/train/a/2.jpg")
        let options = BatchOptions(batchSize: 4, shuffle: false, prefetch: 1)
        let strict = try BatchLoader(dataset: ImageFolderDataset(root: root, split: .train), pipeline: ImagePipeline(), options: options)
        let stop = captureError { try strict.batches(epoch: 0).next() } as? DataError
        XCTAssertEqual(stop?.file, root + "/train/a/2.jpg")

        let lenient = try BatchLoader(dataset: ImageFolderDataset(root: root, split: .train, skipBadFiles: true),
                                      pipeline: ImagePipeline(), options: options)
        let batches = lenient.batches(epoch: 0)
        let batch = try XCTUnwrap(try batches.next())
        XCTAssertEqual(batch.indices, [0, 1, 3])
        XCTAssertEqual(batch.images.shape, [3, 3, 8, 8])
        XCTAssertEqual(batch.skipped.map(\.file), [root + "/train/a/2.jpg"])
        XCTAssertNil(try batches.next())
        XCTAssertEqual(batches.skipped.count, 1)
    }

    func testImagesOfDifferentSizesNeedAResizeOrCrop() throws {
        try writeJPEG(DataFixtures.photo(width: 8, height: 8), "train/a/0.jpg")
        try writeJPEG(DataFixtures.photo(width: 12, height: 8), "train/a/1.jpg")
        let dataset = try ImageFolderDataset(root: root, split: .train)
        let loader = try BatchLoader(dataset: dataset, pipeline: ImagePipeline(), options: BatchOptions(batchSize: 2, shuffle: false))
        assertDataError(captureError { try loader.makeBatch(epoch: 0, index: 0) },
                        "\(root)/train/a/1.jpg: image is 3x8x12 after the pipeline, the batch's first image is 3x8x8: "
                        + "set a resize or a crop so all images share a size")
        let resized = try BatchLoader(dataset: dataset, pipeline: ImagePipeline(resizeShorterSide: 6),
                                      options: BatchOptions(batchSize: 2, shuffle: false))
        XCTAssertEqual(try resized.makeBatch(epoch: 0, index: 0).images.shape, [2, 3, 6, 6])
    }
}
