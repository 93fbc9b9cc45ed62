import XCTest
@testable import AlexNetKit

final class DataLoaderTests: XCTestCase {
    func testShuffleIsAPermutationFixedBySeedAndEpoch() {
        let order = AugmentationRandom.permutation(count: 1000, seed: 5, epoch: 2)
        XCTAssertEqual(order.sorted(), Array(0..<1000))
        XCTAssertEqual(order, AugmentationRandom.permutation(count: 1000, seed: 5, epoch: 2))
        XCTAssertNotEqual(order, AugmentationRandom.permutation(count: 1000, seed: 5, epoch: 3))
        XCTAssertNotEqual(order, AugmentationRandom.permutation(count: 1000, seed: 6, epoch: 2))
        XCTAssertNotEqual(order, Array(0..<1000))
        XCTAssertEqual(AugmentationRandom.permutation(count: 1, seed: 5, epoch: 2), [0])
        XCTAssertEqual(AugmentationRandom.permutation(count: 0, seed: 5, epoch: 2), [])
    }

    func testShuffleFollowsTheDocumentedFisherYatesSteps() {
        let stream = RandomStream(seed: 77, step: 4, stream: 0xDA7A_0000)
        var expected = Array(0..<9)
        for k in 0..<8 {
            let u = UInt64(stream.word(2 * k)) << 32 | UInt64(stream.word(2 * k + 1))
            let j = 8 - k
            expected.swapAt(j, Int(u.multipliedFullWidth(by: UInt64(j + 1)).high))
        }
        XCTAssertEqual(AugmentationRandom.permutation(count: 9, seed: 77, epoch: 4), expected)
    }

    func testEveryPositionIsReachedByTheShuffle() {
        // Over 400 epochs, element 0 lands in every one of 5 positions.
        var seen = Set<Int>()
        for epoch in 0..<400 { seen.insert(AugmentationRandom.permutation(count: 5, seed: 1, epoch: epoch).firstIndex(of: 0)!) }
        XCTAssertEqual(seen, Set(0..<5))
    }

    private func dataset(count: Int = 23) -> MemoryDataset {
        MemoryDataset(images: (0..<count).map { randomFloatTensor([3, 10, 9], seed: UInt64($0)) }, labels: (0..<count).map { $0 % 10 })
    }

    func testBatchesCoverTheEpochInShuffledOrder() throws {
        let data = dataset()
        let loader = try BatchLoader(dataset: data, pipeline: ImagePipeline(), options: BatchOptions(batchSize: 5, seed: 3))
        XCTAssertEqual(loader.batchCount, 5)
        let iterator = loader.batches(epoch: 1)
        var indices: [Int] = []
        while let batch = try iterator.next() {
            XCTAssertEqual(batch.labels, batch.indices.map { data.labels[$0] })
            XCTAssertEqual(batch.images.shape, [batch.indices.count, 3, 10, 9])
            let first = try Tensor(shape: [3, 10, 9], values: Array(batch.images.storage.prefix(270)))
            XCTAssertTrue(first.isBitwiseEqual(to: data.images[batch.indices[0]]))
            indices += batch.indices
        }
        XCTAssertEqual(indices, loader.order(epoch: 1))
        XCTAssertEqual(indices.count, 23)  // the last batch holds 3
        let dropping = try BatchLoader(dataset: data, pipeline: ImagePipeline(),
                                       options: BatchOptions(batchSize: 5, shuffle: false, dropLast: true))
        XCTAssertEqual(dropping.batchCount, 4)
        XCTAssertEqual(try dropping.makeBatch(epoch: 0, index: 3).indices, [15, 16, 17, 18, 19])
    }

    func testBatchContentDoesNotDependOnThreadsOrPrefetch() throws {
        let data = dataset()
        let (statistics, _) = try DatasetStatistics.compute(dataset: data, pipeline: ImagePipeline())
        let pipeline = ImagePipeline(meanSubtraction: .image, crop: .random(height: 8, width: 8, padding: 1), horizontalFlip: true,
                                     pcaColour: PCAColour())
        func epoch(threads: Int, prefetch: Int) throws -> [Batch] {
            let loader = try BatchLoader(dataset: data, pipeline: pipeline, statistics: statistics,
                                         options: BatchOptions(batchSize: 4, prefetch: prefetch, threads: threads, seed: 11))
            let iterator = loader.batches(epoch: 2)
            var batches: [Batch] = []
            while let batch = try iterator.next() { batches.append(batch) }
            return batches
        }
        let reference = try epoch(threads: 1, prefetch: 0)
        XCTAssertEqual(reference.count, 6)
        for (threads, prefetch) in [(2, 0), (1, 1), (2, 3), (2, 10)] {
            let other = try epoch(threads: threads, prefetch: prefetch)
            XCTAssertEqual(other.count, reference.count)
            for (a, b) in zip(reference, other) {
                XCTAssertEqual(a.indices, b.indices)
                XCTAssertTrue(a.images.isBitwiseEqual(to: b.images), "threads \(threads), prefetch \(prefetch), batch \(a.index)")
            }
        }
        // Another epoch draws other crops, flips and colours for the same image.
        let loader = try BatchLoader(dataset: data, pipeline: pipeline, statistics: statistics,
                                     options: BatchOptions(batchSize: 23, shuffle: false, seed: 11))
        XCTAssertFalse(try loader.makeBatch(epoch: 0, index: 0).images.isBitwiseEqual(to: loader.makeBatch(epoch: 1, index: 0).images))
    }

    func testAnErrorReachesTheConsumerAtItsBatchThroughPrefetch() throws {
        final class Failing: ImageDataset, @unchecked Sendable {
            let format = "test", location = "test", classNames = ["a"], labels = Array(repeating: 0, count: 10)
            let storedSize: ImageSize? = ImageSize(channels: 1, height: 2, width: 2)
            var count: Int { 10 }
            func image(at index: Int) throws -> Tensor<Float> {
                if index == 6 { throw DataError(file: "bad.bin", record: 6, problem: "broken") }
                return Tensor(shape: [1, 2, 2], repeating: Float(index))
            }
            func exampleName(at index: Int) -> String { "bad.bin record \(index)" }
        }
        let loader = try BatchLoader(dataset: Failing(), pipeline: ImagePipeline(),
                                     options: BatchOptions(batchSize: 3, shuffle: false, prefetch: 4, threads: 2))
        let iterator = loader.batches(epoch: 0)
        XCTAssertEqual(try iterator.next()?.indices, [0, 1, 2])
        XCTAssertEqual(try iterator.next()?.indices, [3, 4, 5])
        assertDataError(captureError { try iterator.next() }, "bad.bin: record 6: broken")
        assertDataError(captureError { try iterator.next() }, "bad.bin: record 6: broken")
    }

    func testDroppingAnIteratorStopsItsProducer() throws {
        let loader = try BatchLoader(dataset: dataset(count: 200), pipeline: ImagePipeline(),
                                     options: BatchOptions(batchSize: 2, prefetch: 2))
        for _ in 0..<20 {
            let iterator = loader.batches(epoch: 0)
            _ = try iterator.next()
        }
        // A fresh iterator still delivers the whole epoch.
        let iterator = loader.batches(epoch: 0)
        var count = 0
        while try iterator.next() != nil { count += 1 }
        XCTAssertEqual(count, 100)
    }

    func testBadOptionsAreConfigurationErrors() {
        let data = dataset(count: 2)
        let error = captureError { try BatchLoader(dataset: data, pipeline: ImagePipeline(), options: BatchOptions(batchSize: 0)) }
        XCTAssertEqual((error as? ConfigurationError)?.description, "BatchLoader: batch size must be at least 1, got 0")
        let crop = captureError {
            try BatchLoader(dataset: data, pipeline: ImagePipeline(crop: .centre(height: 0, width: 3)), options: BatchOptions(batchSize: 1))
        }
        XCTAssertEqual((crop as? ConfigurationError)?.description, "ImagePipeline: crop size must be at least 1x1, got 0x3")
    }

    func testACropLargerThanTheImageNamesTheExample() throws {
        let loader = try BatchLoader(dataset: dataset(count: 2), pipeline: ImagePipeline(crop: .centre(height: 20, width: 20)),
                                     options: BatchOptions(batchSize: 2, shuffle: false))
        assertDataError(captureError { try loader.makeBatch(epoch: 0, index: 0) },
                        "memory image 0: ImagePipeline: image has shape [3, 10, 9], expected at least 20x20 (the crop) after padding by 0")
    }
}
