import XCTest
@testable import AlexNetKit

final class DataAugmentationTests: XCTestCase {
    // MARK: Resize

    func testBilinearUpscaleSamplesPixelCentres() {
        // Columns 0...3 of a 2 -> 4 resize sample x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to pixel 1).
        let image = DataFixtures.image([[[0, 10], [20, 30]]])
        let resized = Resize.bilinear(image, height: 4, width: 4)
        XCTAssertEqual(resized.shape, [1, 4, 4])
        XCTAssertEqual(resized.storage, [0, 2.5, 7.5, 10,
                                         5, 7.5, 12.5, 15,
                                         15, 17.5, 22.5, 25,
                                         20, 22.5, 27.5, 30])
    }

    func testBilinearDownscaleByTwoAveragesPairs() {
        // Output x samples 2x + 0.5: halfway between inputs 2x and 2x + 1.
        XCTAssertEqual(Resize.bilinear(DataFixtures.image([[[0, 10, 20, 30]]]), height: 1, width: 2).storage, [5, 25])
    }

    func testBilinearAgreesWithPyTorchInterpolateAtOddRatios() {
        // torch.nn.functional.interpolate(x, size, mode="bilinear", align_corners=False), torch 2.13, float32.
        let down = Resize.bilinear(try! Tensor(shape: [1, 5, 7], values: (0..<35).map(Float.init)), height: 3, width: 4)
        assertClose(down, [2.7083333, 4.4583330, 6.2083335, 7.9583330, 14.375, 16.125, 17.875, 19.625,
                           26.041666, 27.791664, 29.541666, 31.291666], tolerance: 1e-5)
        let up = Resize.bilinear(try! Tensor(shape: [1, 2, 3], values: (0..<6).map(Float.init)), height: 5, width: 7)
        assertClose(up, [0.0, 0.14285715, 0.5714286, 1.0, 1.4285715, 1.8571429, 2.0,
                         0.3, 0.44285718, 0.87142867, 1.3, 1.7285714, 2.157143, 2.3,
                         1.5, 1.6428572, 2.0714285, 2.5, 2.9285715, 3.357143, 3.5,
                         2.7, 2.8428574, 3.2714286, 3.7, 4.1285715, 4.557143, 4.7,
                         3.0, 3.1428573, 3.5714285, 4.0, 4.4285717, 4.857143, 5.0], tolerance: 1e-5)
    }

    func testShorterSideRescaleThenCentralSquare() {
        XCTAssertTrue(Resize.shorterSideSize(height: 3, width: 5, side: 2) == (2, 3))  // floor(5 * 2 / 3)
        XCTAssertTrue(Resize.shorterSideSize(height: 500, width: 375, side: 256) == (341, 256))
        // 4x8 -> 2x4 (every output the mean of a 2x2 block), then columns 1 and 2.
        let image = DataFixtures.indexImage(channels: 2, height: 4, width: 8)
        let square = Resize.shorterSideThenCentreCrop(image, side: 2)
        XCTAssertEqual(square.shape, [2, 2, 2])
        XCTAssertEqual(square.storage, [7.5, 9.5, 27.5, 29.5, 107.5, 109.5, 127.5, 129.5])
        XCTAssertTrue(Resize.shorterSideThenCentreCrop(square, side: 2).isBitwiseEqual(to: square))
    }

    // MARK: Crop and flip

    func testHorizontalFlipMirrorsEachRow() {
        let flipped = Crop.horizontalFlip(DataFixtures.indexImage(channels: 2, height: 2, width: 3))
        XCTAssertEqual(flipped.storage, [2, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110])
    }

    func testCropWindowOffsetsCountInThePaddedImage() throws {
        let image = DataFixtures.indexImage(channels: 1, height: 3, width: 3)
        XCTAssertEqual(try Crop.window(image, top: 1, left: 1, height: 2, width: 2).storage, [11, 12, 21, 22])
        XCTAssertEqual(try Crop.window(image, top: 0, left: 1, height: 2, width: 2, padding: 1, padValue: -1).storage,
                       [-1, -1, 0, 1])
        XCTAssertNotNil(captureError { try Crop.window(image, top: 2, left: 0, height: 2, width: 2) } as? ShapeError)
        XCTAssertEqual(Crop.centreOffset(size: 256, crop: 227), 14)
    }

    func testRandomCropAndFlipFollowTheDocumentedWords() throws {
        let image = DataFixtures.indexImage(channels: 1, height: 4, width: 5)
        let pipeline = ImagePipeline(crop: .random(height: 2, width: 2, padding: 0), horizontalFlip: true)
        var flips = 0
        for index in 0..<64 {
            let crops = RandomStream(seed: 42, step: 3, stream: 0xDA7A_0001)
            let top = Int((UInt64(crops.word(2 * index)) * 3) >> 32), left = Int((UInt64(crops.word(2 * index + 1)) * 4) >> 32)
            let flip = RandomStream(seed: 42, step: 3, stream: 0xDA7A_0002).word(index) >= 0x8000_0000
            var expected = try Crop.window(image, top: top, left: left, height: 2, width: 2)
            if flip { expected = Crop.horizontalFlip(expected); flips += 1 }
            let output = try pipeline.apply(image, index: index, epoch: 3, seed: 42, statistics: nil)
            XCTAssertTrue(output.isBitwiseEqual(to: expected), "index \(index)")
        }
        XCTAssertTrue((16...48).contains(flips), "\(flips) of 64 flipped")
    }

    func testCentreCropAndPaddedRandomCropRanges() throws {
        let image = DataFixtures.indexImage(channels: 1, height: 6, width: 6)
        let centre = try ImagePipeline(crop: .centre(height: 3, width: 3)).apply(image, index: 0, epoch: 0, seed: 0, statistics: nil)
        XCTAssertEqual(centre.storage.first, 11)  // offset floor(3 / 2) = 1
        // Padding 4 around 6x6 with a 6x6 crop: 9 x 9 positions, corners included.
        var corners = Set<[Int]>()
        for index in 0..<2000 {
            let draws = try ImagePipeline(crop: .random(height: 6, width: 6, padding: 4))
                .draws(seed: 1, epoch: 0, index: index, prepared: ImageSize(channels: 1, height: 6, width: 6), statistics: nil)
            XCTAssertTrue((0...8).contains(draws.top) && (0...8).contains(draws.left))
            if [0, 8].contains(draws.top) && [0, 8].contains(draws.left) { corners.insert([draws.top, draws.left]) }
        }
        XCTAssertEqual(corners.count, 4)
    }

    // MARK: PCA colour

    func testBoxMullerOnKnownWords() {
        // (w0 >> 8) + 1 = 2^23 gives u1 = 1/2; w1 >> 8 = 2^22 gives u2 = 1/4: angle pi/2.
        let (z0, z1) = AugmentationRandom.boxMuller(0x7FFF_FF00, 0x4000_0000)
        XCTAssertEqual(z0, 0, accuracy: 1e-15)
        XCTAssertEqual(z1, (2 * log(2.0)).squareRoot(), accuracy: 1e-15)
        // u1 never reaches 0: the smallest word still gives a finite draw.
        XCTAssertTrue(AugmentationRandom.boxMuller(0, 0).0.isFinite)
    }

    func testPCAShiftForAKnownCovarianceAndAlphas() throws {
        // Covariance diag(400, 100, 25): eigenvectors are the axes, eigenvalues 400, 100, 25.
        let statistics = try DatasetStatistics(imageCount: 1, meanImage: Tensor(shape: [3, 1, 1]), channelMean: [0, 0, 0],
                                               covariance: [400, 0, 0, 0, 100, 0, 0, 0, 25])
        XCTAssertEqual(statistics.eigenvalues, [400, 100, 25])
        let alphas = [0.1, -0.2, 0.3]
        let byDeviation = PCAColour(magnitude: .standardDeviation)
            .shift(alphas: alphas, eigenvalues: statistics.eigenvalues, eigenvectors: statistics.eigenvectors)
        XCTAssertEqual(byDeviation, [0.1 * 20, -0.2 * 10, 0.3 * 5])
        let paper = PCAColour().shift(alphas: alphas, eigenvalues: statistics.eigenvalues, eigenvectors: statistics.eigenvectors)
        XCTAssertEqual(paper[0], 0.1 * 400 / 255, accuracy: 1e-15)
        XCTAssertEqual(paper[1], -0.2 * 100 / 255, accuracy: 1e-15)
        XCTAssertEqual(paper[2], 0.3 * 25 / 255, accuracy: 1e-15)
        // A rotated covariance: [[100, 0, -100], [0, 100, 0], [-100, 0, 100]] has p1 = (1, 0, -1)/sqrt 2 (l1 = 200),
        // p2 = (0, 1, 0) (l2 = 100), p3 = (1, 0, 1)/sqrt 2 (l3 = 0). With a = (0.5, 1, 7): shift = 0.5 * sqrt(200) p1 + 10 p2.
        let rotated = try DatasetStatistics(imageCount: 1, meanImage: Tensor(shape: [3, 1, 1]), channelMean: [0, 0, 0],
                                            covariance: [100, 0, -100, 0, 100, 0, -100, 0, 100])
        let shift = PCAColour(magnitude: .standardDeviation)
            .shift(alphas: [0.5, 1, 7], eigenvalues: rotated.eigenvalues, eigenvectors: rotated.eigenvectors)
        XCTAssertEqual(shift[0], 5, accuracy: 1e-12)
        XCTAssertEqual(shift[1], 10, accuracy: 1e-12)
        XCTAssertEqual(shift[2], -5, accuracy: 1e-12)
    }

    func testPCAColourAddsTheImagesShiftToEveryPixel() throws {
        let statistics = try DatasetStatistics(imageCount: 1, meanImage: Tensor(shape: [3, 2, 2]), channelMean: [0, 0, 0],
                                               covariance: [400, 0, 0, 0, 100, 0, 0, 0, 25])
        let image = DataFixtures.indexImage(channels: 3, height: 2, width: 2)
        let pipeline = ImagePipeline(pcaColour: PCAColour(standardDeviation: 0.1, magnitude: .paper))
        for (epoch, index) in [(0, 0), (0, 5), (7, 5)] {
            let z = AugmentationRandom.normals(seed: 9, epoch: epoch, index: index)
            let expected = [0.1 * z.0 * 400 / 255, 0.1 * z.1 * 100 / 255, 0.1 * z.2 * 25 / 255].map(Float.init)
            let output = try pipeline.apply(image, index: index, epoch: epoch, seed: 9, statistics: statistics)
            for c in 0..<3 { for y in 0..<2 { for x in 0..<2 {
                XCTAssertEqual(output[c, y, x], image[c, y, x] + expected[c])
            } } }
        }
    }

    // MARK: Mean and scale

    func testMeanImageAndPerChannelMeanSubtraction() throws {
        let mean = DataFixtures.image([[[1, 2], [3, 4]]])
        let statistics = try DatasetStatistics(imageCount: 1, meanImage: mean, channelMean: [2.5], covariance: [1])
        let image = DataFixtures.image([[[5, 5], [5, 5]]])
        let byImage = try ImagePipeline(meanSubtraction: .image).apply(image, index: 0, epoch: 0, seed: 0, statistics: statistics)
        XCTAssertEqual(byImage.storage, [4, 3, 2, 1])
        let byChannel = try ImagePipeline(meanSubtraction: .perChannel, scale: 0.5)
            .apply(image, index: 0, epoch: 0, seed: 0, statistics: statistics)
        XCTAssertEqual(byChannel.storage, [1.25, 1.25, 1.25, 1.25])
    }

    func testMissingOrMismatchedStatisticsAreConfigurationErrors() throws {
        let image = DataFixtures.indexImage(channels: 3, height: 2, width: 2)
        let missing = captureError { try ImagePipeline.paperTraining.apply(image, index: 0, epoch: 0, seed: 0, statistics: nil) }
        XCTAssertEqual((missing as? ConfigurationError)?.problem, "mean subtraction (image) and PCA colour augmentation needs "
                       + "DatasetStatistics of the training set (alexnet data mean PATH --output stats.npz)")
        let small = try DatasetStatistics(imageCount: 1, meanImage: Tensor(shape: [3, 2, 2]), channelMean: [0, 0, 0],
                                          covariance: [1, 0, 0, 0, 1, 0, 0, 0, 1])
        let mismatch = captureError { try ImagePipeline.paperEvaluation.apply(image, index: 0, epoch: 0, seed: 0, statistics: small) }
        XCTAssertEqual((mismatch as? ConfigurationError)?.problem, "the statistics' mean image is 3x2x2, prepared images are "
                       + "3x256x256: compute the statistics with the same resize and grey-to-RGB settings")
    }

    func testGreyToRGBCopiesTheChannel() {
        let grey = DataFixtures.image([[[1, 2], [3, 4]]])
        XCTAssertEqual(ImagePipeline(greyToRGB: true).prepare(grey).storage, [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4])
    }

    func testFusedPipelineEqualsTheStepsOneByOne() throws {
        let images = (0..<3).map { n in randomFloatTensor([3, 9, 7], seed: UInt64(n)) }
        let (statistics, _) = try DatasetStatistics.compute(
            dataset: MemoryDataset(images: images.map { Resize.shorterSideThenCentreCrop($0, side: 8) }, labels: [0, 1, 2]),
            pipeline: ImagePipeline())
        let pipeline = ImagePipeline(resizeShorterSide: 8, meanSubtraction: .image, crop: .random(height: 6, width: 5, padding: 2),
                                     horizontalFlip: true, pcaColour: PCAColour(standardDeviation: 0.5), scale: 0.25)
        for (index, image) in images.enumerated() {
            let draws = try pipeline.draws(seed: 3, epoch: 2, index: index, prepared: ImageSize(channels: 3, height: 8, width: 8),
                                           statistics: statistics)
            var step = Resize.shorterSideThenCentreCrop(image, side: 8)
            step = try Tensor(shape: step.shape, values: zip(step.storage, statistics.meanImage.storage).map { $0 - $1 })
            step = try Crop.window(step, top: draws.top, left: draws.left, height: 6, width: 5, padding: 2)
            if draws.flip { step = Crop.horizontalFlip(step) }
            let plane = 30
            step = try Tensor(shape: step.shape, values: step.storage.enumerated().map { i, v in
                (v + Float(draws.colourShift[i / plane])) * 0.25
            })
            let fused = try pipeline.apply(image, index: index, epoch: 2, seed: 3, statistics: statistics)
            XCTAssertTrue(fused.isBitwiseEqual(to: step), "image \(index)")
        }
    }

    // MARK: Ten crops

    func testTenCropPositionsAndFlips() throws {
        let image = DataFixtures.indexImage(channels: 2, height: 4, width: 5)
        let offsets = TenCrop.offsets(height: 4, width: 5, cropHeight: 2, cropWidth: 3)
        XCTAssertEqual(offsets.map { [$0.top, $0.left] }, [[0, 0], [0, 2], [2, 0], [2, 2], [1, 1]])
        let crops = try TenCrop.crops(image, cropHeight: 2, cropWidth: 3)
        XCTAssertEqual(crops.shape, [10, 2, 2, 3])
        for (k, corner) in offsets.enumerated() {
            for c in 0..<2 { for y in 0..<2 { for x in 0..<3 {
                let value = Float(c * 100 + (corner.top + y) * 10 + corner.left + x)
                XCTAssertEqual(crops[k, c, y, x], value, "crop \(k)")
                XCTAssertEqual(crops[k + 5, c, y, 2 - x], value, "flipped crop \(k + 5)")
            } } }
        }
        let batch = try TenCrop.crops(batch: try Tensor(shape: [2, 2, 4, 5], values: image.storage + image.storage.map { $0 + 1000 }),
                                      cropHeight: 2, cropWidth: 3)
        XCTAssertEqual(batch.shape, [20, 2, 2, 3])
        XCTAssertEqual(batch[13, 0, 0, 0], 1022)  // image 1, crop 3 (bottom-right at row 2, column 2)
    }

    func testTenCropAveragesSoftmaxProbabilities() throws {
        var logits: [Double] = Array(repeating: 0, count: 30)  // image 0: every crop uniform
        for crop in 0..<10 { logits += crop < 5 ? [log(2), 0, 0] : [0, log(2), 0] }  // image 1: (1/2, 1/4, 1/4) and (1/4, 1/2, 1/4)
        let averaged = try TenCrop.averagedProbabilities(logits: try Tensor(shape: [20, 3], values: logits))
        assertClose(averaged, [1.0 / 3, 1.0 / 3, 1.0 / 3, 0.375, 0.375, 0.25], tolerance: 1e-15)
        XCTAssertNotNil(captureError { try TenCrop.averagedProbabilities(logits: Tensor<Float>(shape: [9, 3])) } as? ShapeError)
    }
}
