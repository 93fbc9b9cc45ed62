import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet data bench PATH`: how many images per second the input pipeline delivers.
struct DataBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time loading (decoding) and loading + augmenting, with one and two threads.",
        discussion: """
        Two rates for each thread count: 'decode' reads and decodes images (JPEG decode for \
        folders, byte-to-float for CIFAR-10 and IDX); 'decode + augment' runs the whole \
        training pipeline into batches: the paper's for JPEG folders (shorter side 256, mean \
        image, random 227 crop, flip, PCA colour) and random crops padded by H/8 (as train), flips \
        and channel means for 32x32 and 28x28 data. Statistics come from the first 64 images. The \
        files are read once before timing, so the rates are of a warm page cache. To make \
        a folder of 256x256 JPEGs: alexnet data make-test-folder DIR --count 200.
        
        Examples:
          alexnet data bench /usr/share/datasets/fashion-mnist
          alexnet data make-test-folder imgs && alexnet data bench imgs
        """
    )

    @OptionGroup var source: DataSourceOptions

    // Not WorkerThreadsOption: a list of counts to sweep, each one measurement, not one run's workers.
    @Option(help: ArgumentHelp("Thread counts to sweep, one measurement each (repeat the option: --threads 1 --threads 4). "
            + "Unlike other commands' --threads, not one run's workers. (default: 1 and 2)"))
    var threads: [Int] = []

    @Option(help: "Images per measurement (the data set is repeated if it is smaller).")
    var count: Int = 512

    @Option(help: "Batch size.")
    var batch: Int = 64

    @Option(help: "Timed repetitions; the best is reported.")
    var repetitions: Int = 3

    func validate() throws {
        try checkRange(count, 1...InputLimits.examples, "--count")
        try checkRange(batch, 1...InputLimits.batch, "--batch")
        try checkRange(repetitions, 1...1000, "--repetitions")
        for count in threads { try WorkerThreadsOption.check(count) }
    }

    func run() throws {
        let threadCounts = threads.isEmpty ? [1, 2] : threads
        let dataset = try source.open()
        let isFolder = dataset.storedSize == nil
        let side = dataset.storedSize.map { min($0.height, $0.width) } ?? 256
        var pipeline = isFolder ? ImagePipeline.paperTraining
            : ImagePipeline(meanSubtraction: .perChannel,
                            crop: .random(height: side, width: side,
                                          padding: PipelineDefaults.cropPadding(prepared: (side, side), input: (side, side))),
                            horizontalFlip: true)
        pipeline.pcaColour = (dataset.storedSize?.channels ?? 3) == 3 ? pipeline.pcaColour : nil
        let preparation = ImagePipeline(resizeShorterSide: pipeline.resizeShorterSide)
        let statistics = try DatasetStatistics.compute(dataset: dataset, pipeline: preparation, threads: 2, limit: 64).statistics
        let examples = (0..<count).map { $0 % dataset.count }
        for index in Set(examples) { _ = try? dataset.image(at: index) }  // warm the page cache

        print("data set: \(dataset.format), \(dataset.location), \(dataset.count) examples")
        print("pipeline: \(pipeline.summary); \(count) images, batches of \(batch), best of \(repetitions)")
        print("threads  decode img/s  per thread  decode+augment img/s  per thread")
        for threadCount in threadCounts {
            let pool = WorkerPool(workerCount: threadCount, label: "bench")
            let decode = try best {
                var failure: Error?
                let lock = NSLock()
                let runs = Partition.ranges(count: examples.count, parts: 4 * threadCount)
                pool.parallelFor(runs.count) { task, _ in
                    for i in runs[task] {
                        do { _ = try dataset.image(at: examples[i]) } catch { lock.lock(); failure = failure ?? error; lock.unlock() }
                    }
                }
                if let failure { throw failure }
            }
            let loader = try BatchLoader(dataset: dataset, pipeline: pipeline, statistics: statistics,
                                         options: BatchOptions(batchSize: batch, prefetch: 0, threads: threadCount))
            let full = try best {
                var produced = 0, epoch = 0
                while produced < count {
                    let iterator = loader.batches(epoch: epoch)
                    while produced < count, let next = try iterator.next() { produced += next.indices.count }
                    epoch += 1
                }
            }
            let decodeRate = Double(count) / decode, fullRate = Double(count) / full
            print(String(threadCount).leftAligned(7) + String(format: "  %12.0f  %10.0f  %20.0f  %10.0f", decodeRate,
                  decodeRate / Double(threadCount), fullRate, fullRate / Double(threadCount)))
        }
    }

    /// The shortest wall time of `repetitions` runs of `body`, in seconds.
    private func best(_ body: () throws -> Void) throws -> Double {
        var fastest = Double.infinity
        for _ in 0..<repetitions {
            let start = DispatchTime.now()
            try body()
            fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
        }
        return fastest
    }
}

extension String {
    func leftAligned(_ width: Int) -> String { padding(toLength: max(width, count), withPad: " ", startingAt: 0) }
}
