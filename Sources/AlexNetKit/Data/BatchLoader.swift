import Dispatch
import Foundation

/// One batch of examples, ready for the network.
public struct Batch {
    /// `[N, C, H, W]`: the pipeline's outputs, in batch order.
    public var images: Tensor<Float>
    /// `[N]`: the class index of each image.
    public var labels: [Int]
    /// `[N]`: each image's index in the data set.
    public var indices: [Int]
    /// The epoch the batch belongs to.
    public var epoch: Int
    /// Which batch of the epoch, from 0.
    public var index: Int
    /// Examples of this batch that failed to load and were left out (only for
    /// data sets that skip bad files); the batch is that much shorter.
    public var skipped: [DataWarning]

    /// A batch; see the properties. `indices` defaults to the batch's positions.
    public init(images: Tensor<Float>, labels: [Int], indices: [Int]? = nil, epoch: Int, index: Int, skipped: [DataWarning] = []) {
        self.images = images
        self.labels = labels
        self.indices = indices ?? Array(labels.indices)
        self.epoch = epoch
        self.index = index
        self.skipped = skipped
    }
}

/// How a ``BatchLoader`` cuts, orders and delivers an epoch.
public struct BatchOptions: Sendable, Equatable {
    /// Examples per batch.
    public var batchSize: Int
    /// Visit the examples in a fresh random order each epoch (``AugmentationRandom/permutation(count:seed:epoch:)``).
    public var shuffle: Bool
    /// Leave out the last batch when it would be shorter than ``batchSize``.
    public var dropLast: Bool
    /// Batches prepared ahead by the background producer; 0 prepares each batch when asked for.
    public var prefetch: Int
    /// Threads that load and augment the images of a batch (the producer included).
    public var threads: Int
    /// Keys every random choice (order, crops, flips, colour).
    public var seed: UInt64

    /// Options for batches of `batchSize`; by default shuffled, last batch kept, two batches prefetched, one thread, seed 0.
    public init(batchSize: Int, shuffle: Bool = true, dropLast: Bool = false, prefetch: Int = 2, threads: Int = 1, seed: UInt64 = 0) {
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.prefetch = prefetch
        self.threads = threads
        self.seed = seed
    }
}

/// Cuts a data set into batches of pipeline outputs, one epoch at a time.
///
/// Epoch `e` visits the examples in ``order(epoch:)`` (a permutation keyed by
/// seed and epoch, or the stored order), cut into consecutive batches. Image `i`
/// is loaded and run through the pipeline with its random numbers keyed by
/// (seed, e, i), so a batch's content does not depend on the thread count, the
/// prefetch depth or timing: ``batches(epoch:)`` and ``makeBatch(epoch:index:)``
/// give the same bits.
public final class BatchLoader: @unchecked Sendable {
    /// The examples.
    public let dataset: any ImageDataset
    /// What happens to each image.
    public let pipeline: ImagePipeline
    /// The training set's statistics, where the pipeline needs them.
    public let statistics: DatasetStatistics?
    /// Batch size, order, prefetch, threads and seed.
    public let options: BatchOptions
    private let pool: WorkerPool

    /// - Throws: ``ConfigurationError`` for a bad batch size, thread count or
    ///   prefetch depth, or a pipeline whose statistics are missing or do not fit the data set.
    public init(dataset: any ImageDataset, pipeline: ImagePipeline, statistics: DatasetStatistics? = nil,
                options: BatchOptions) throws {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError(component: "BatchLoader", problem: problem) }
        guard options.batchSize >= 1 else { throw fail("batch size must be at least 1, got \(options.batchSize)") }
        guard options.threads >= 1 else { throw fail("threads must be at least 1, got \(options.threads)") }
        guard options.prefetch >= 0 else { throw fail("prefetch must not be negative, got \(options.prefetch)") }
        try pipeline.validate(statistics: statistics, preparedSize: dataset.storedSize.map(pipeline.preparedSize(for:)))
        self.dataset = dataset
        self.pipeline = pipeline
        self.statistics = statistics
        self.options = options
        self.pool = WorkerPool(workerCount: options.threads, label: "data")
    }

    /// Number of batches in an epoch.
    public var batchCount: Int {
        options.dropLast ? dataset.count / options.batchSize : (dataset.count + options.batchSize - 1) / options.batchSize
    }

    /// The example order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        options.shuffle ? AugmentationRandom.permutation(count: dataset.count, seed: options.seed, epoch: epoch)
                        : Array(0..<dataset.count)
    }

    /// Builds batch `index` of `epoch` on the calling thread (and the loader's workers).
    /// - Throws: ``DataError`` naming the first example of the batch (in batch order) that failed.
    public func makeBatch(epoch: Int, index: Int) throws -> Batch {
        try makeBatch(epoch: epoch, index: index, order: order(epoch: epoch))
    }

    /// What became of one member of a batch.
    private enum Outcome {
        case pending
        case rendered
        case failed(DataError)
        /// Loaded fine but its output size differs from the batch's: never skipped.
        case wrongSize(DataError)
    }

    func makeBatch(epoch: Int, index: Int, order: [Int]) throws -> Batch {
        precondition(index >= 0 && index < batchCount, "batch \(index) is outside 0..<\(batchCount)")
        let members = Array(order[(index * options.batchSize)..<min(order.count, (index + 1) * options.batchSize)])
        var outcomes = [Outcome](repeating: .pending, count: members.count)
        // The first member that loads fixes the batch's image size (and a bad one before it
        // stops the batch here, unless bad files are skipped).
        var first: (position: Int, image: Tensor<Float>, draws: ImagePipeline.Draws)?
        for (position, example) in members.enumerated() {
            do {
                let (image, draws) = try load(example, epoch: epoch)
                first = (position, image, draws)
                break
            } catch let error as DataError where dataset.skipsBadFiles {
                outcomes[position] = .failed(error)
            }
        }
        let size = first.map { pipeline.outputSize(for: ImageSize(of: $0.image)) }
            ?? dataset.storedSize.map { pipeline.outputSize(for: pipeline.preparedSize(for: $0)) }
            ?? ImageSize(channels: 0, height: 0, width: 0)
        let perImage = size.channels * size.height * size.width
        var images = Tensor<Float>(shape: [members.count, size.channels, size.height, size.width])
        if let first {
            // Every other member is loaded, planned and rendered straight into its slot, so only one
            // decoded image per worker is alive at a time. Tasks are runs of members (four per worker)
            // so that tiny images do not each pay a hand-over; what a member becomes does not depend
            // on which task or worker handles it.
            let rest = (first.position + 1)..<members.count
            let runs = Partition.ranges(count: rest.count, parts: min(rest.count, 4 * pool.workerCount))
            images.withUnsafeMutableBufferPointer { out in
                let base = out.baseAddress!
                pipeline.render(first.image, draws: first.draws, statistics: statistics, into: base + first.position * perImage)
                outcomes.withUnsafeMutableBufferPointer { slots in
                    slots[first.position] = .rendered
                    pool.parallelFor(runs.count) { task, _ in
                        for offset in runs[task] {
                            let position = rest.lowerBound + offset
                            slots[position] = render(members[position], epoch: epoch, size: size, into: base + position * perImage)
                        }
                    }
                }
            }
        }
        // In batch order: the first failure stops the batch, or is skipped and reported.
        var kept: [Int] = []
        var skipped: [DataWarning] = []
        for (position, outcome) in outcomes.enumerated() {
            switch outcome {
            case .rendered: kept.append(position)
            case .failed(let error) where dataset.skipsBadFiles: skipped.append(error)
            case .failed(let error), .wrongSize(let error): throw error
            case .pending: preconditionFailure("batch member \(position) was never loaded")
            }
        }
        if kept.count < members.count {
            var compact = Tensor<Float>(shape: [kept.count, size.channels, size.height, size.width])
            compact.withUnsafeMutableBufferPointer { out in
                images.withUnsafeBufferPointer { all in
                    for (n, position) in kept.enumerated() {
                        (out.baseAddress! + n * perImage).update(from: all.baseAddress! + position * perImage, count: perImage)
                    }
                }
            }
            images = compact
        }
        return Batch(images: images, labels: kept.map { dataset.labels[members[$0]] }, indices: kept.map { members[$0] },
                     epoch: epoch, index: index, skipped: skipped)
    }

    /// Loads, prepares, plans and renders one example into `destination`, if its output has the batch's `size`.
    private func render(_ example: Int, epoch: Int, size: ImageSize, into destination: UnsafeMutablePointer<Float>) -> Outcome {
        do {
            let (image, draws) = try load(example, epoch: epoch)
            let imageSize = pipeline.outputSize(for: ImageSize(of: image))
            guard imageSize == size else {
                return .wrongSize(DataError(file: dataset.exampleName(at: example),
                                            problem: "image is \(imageSize) after the pipeline, the batch's first image is "
                                            + "\(size): set a resize or a crop so all images share a size"))
            }
            pipeline.render(image, draws: draws, statistics: statistics, into: destination)
            return .rendered
        } catch {
            return .failed(error as? DataError ?? DataError(file: dataset.exampleName(at: example), problem: "\(error)"))
        }
    }

    /// Loads, prepares and plans one example; every error comes back as a ``DataError`` naming it.
    private func load(_ example: Int, epoch: Int) throws -> (Tensor<Float>, ImagePipeline.Draws) {
        do {
            let prepared = pipeline.prepare(try dataset.image(at: example))
            return (prepared, try pipeline.plan(prepared, index: example, epoch: epoch, seed: options.seed, statistics: statistics))
        } catch let error as DataError {
            throw error
        } catch {
            throw DataError(file: dataset.exampleName(at: example), problem: "\(error)")
        }
    }

    /// The batches of `epoch`, in order. With a prefetch depth above 0 a producer
    /// on its own dispatch queue prepares up to that many batches ahead.
    public func batches(epoch: Int) -> BatchIterator {
        BatchIterator(source: self, epoch: epoch, prefetch: options.prefetch)
    }
}
