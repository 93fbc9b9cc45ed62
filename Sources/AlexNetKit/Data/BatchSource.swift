import Foundation

/// Batches of images and labels, by epoch and index: what the trainer and the
/// evaluator read. ``BatchLoader`` is one (Training/BatchLoaderSource.swift);
/// a source must give the same batch for the same `(epoch, index)` every
/// time, which is what makes a resumed run identical to an uninterrupted one.
public protocol BatchSource: AnyObject {
    /// Batches per epoch.
    var batchCount: Int { get }
    /// Examples per epoch.
    var exampleCount: Int { get }
    /// Batch `index` of `epoch`: images `[N, C, H, W]`, N class indices, and the
    /// examples skipped as bad files (warnings the caller passes on to the user).
    func batch(epoch: Int, index: Int) throws -> Batch
}

/// The batches of one epoch of any ``BatchSource``, in order: the one
/// prefetching path from a loader to the trainer, the evaluator and `data
/// bench`. With a prefetch depth above 0 a producer on its own dispatch queue
/// prepares up to that many batches ahead; the batches are the source's, only
/// the time they are made changes. Dropping the iterator stops its producer
/// after the batch in progress.
public final class BatchIterator {
    /// The epoch being delivered.
    public let epoch: Int
    /// Every example skipped so far in this epoch (bad files, for data sets that skip them).
    public private(set) var skipped: [DataWarning] = []
    private let source: BatchSource
    private let range: Range<Int>
    private var nextIndex: Int
    private let buffer: PrefetchBuffer?

    /// Batches `range` (default: all) of `epoch`, up to `prefetch` made ahead.
    public init(source: BatchSource, epoch: Int, range: Range<Int>? = nil, prefetch: Int) {
        self.source = source
        self.epoch = epoch
        let range = range ?? 0..<source.batchCount
        self.range = range
        self.nextIndex = range.lowerBound
        guard prefetch > 0, !range.isEmpty else { buffer = nil; return }
        let buffer = PrefetchBuffer(capacity: prefetch)
        self.buffer = buffer
        let producer = UncheckedSource(source)
        DispatchQueue(label: "alexnet.data.prefetch").async {
            for index in range {
                guard buffer.waitForSpace() else { return }
                let result = Result { try producer.source.batch(epoch: epoch, index: index) }
                buffer.put(result)
                if case .failure = result { return }
            }
        }
    }

    deinit { buffer?.cancel() }

    /// The next batch, or nil after the last one.
    /// - Throws: the error that stopped batch production (the same error every
    ///   call after it, since the epoch cannot go on).
    public func next() throws -> Batch? {
        guard nextIndex < range.upperBound else { return nil }
        let index = nextIndex
        let result = buffer?.take() ?? Result { try source.batch(epoch: epoch, index: index) }
        let batch = try result.get()
        nextIndex += 1
        skipped += batch.skipped
        return batch
    }
}

/// A source handed to the producer queue: sources make each batch from
/// `(epoch, index)` alone (the protocol's contract), so one producer reading
/// it while the consumer waits is safe.
private struct UncheckedSource: @unchecked Sendable {
    let source: BatchSource
    init(_ source: BatchSource) { self.source = source }
}

/// A bounded queue of produced batches between the producer and the consumer.
private final class PrefetchBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Result<Batch, Error>] = []
    private var cancelled = false
    private var failure: Result<Batch, Error>?
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Blocks until there is room; false when the consumer has gone.
    func waitForSpace() -> Bool {
        condition.lock(); defer { condition.unlock() }
        while items.count >= capacity && !cancelled { condition.wait() }
        return !cancelled
    }

    func put(_ item: Result<Batch, Error>) {
        condition.lock(); defer { condition.unlock() }
        items.append(item)
        condition.broadcast()
    }

    /// The oldest item, blocking until there is one. After a failure, the failure again.
    func take() -> Result<Batch, Error> {
        condition.lock(); defer { condition.unlock() }
        if let failure { return failure }
        while items.isEmpty { condition.wait() }
        let item = items.removeFirst()
        if case .failure = item { failure = item }
        condition.broadcast()
        return item
    }

    func cancel() {
        condition.lock(); defer { condition.unlock() }
        cancelled = true
        condition.broadcast()
    }
}
