import Dispatch
import Foundation
import Synchronization

/// Where a run stands: everything, besides the weights and velocities, that a
/// resumed run needs to continue exactly where this one was.
public struct TrainingProgress: Equatable, Sendable {
    /// The epoch in progress, from 0.
    public var epoch = 0
    /// The next batch of that epoch, from 0.
    public var batch = 0
    /// SGD steps taken in the whole run (the next step's number, which keys its dropout masks).
    public var step = 0
    /// The learning-rate schedule's state.
    public var schedule: ScheduleState
    /// Sum over this epoch's trained images of their batch's mean loss (`Double`, batch order).
    public var epochLossSum = 0.0
    /// This epoch's trained images whose label was the top-1 prediction.
    public var epochCorrect = 0
    /// This epoch's trained images so far.
    public var epochImages = 0
    /// Seconds spent training in this epoch so far (timing only).
    public var epochSeconds = 0.0
    /// The lowest validation top-1 error at an epoch's end so far (for `best.safetensors`).
    public var bestValidationError: Double?

    /// The start of a run with `learningRate`.
    public init(learningRate: Double) {
        schedule = ScheduleState(learningRate: learningRate)
    }
}

/// Why ``Trainer/run(observer:)`` returned.
public enum StopReason: String, Sendable {
    /// Every epoch is done.
    case epochs
    /// The configured number of steps was reached.
    case maxSteps = "max-steps"
    /// The time limit was reached.
    case timeLimit = "time-limit"
    /// ``Trainer/requestStop()`` was called (Ctrl-C or SIGTERM in `alexnet train`).
    case interrupted
}

/// What the trainer reports while it runs, for progress displays.
public enum TrainingEvent {
    /// A step finished: `index` is the batch just trained (from 0) of `batchCount`.
    case step(epoch: Int, index: Int, batchCount: Int, step: Int, loss: Double, images: Int, epochImages: Int, epochSeconds: Double)
    /// Validation of `epoch` (from 0) begins over `images` images.
    case validating(epoch: Int, images: Int)
    /// An epoch ended (the log line is written).
    case epochEnded(EpochRecord)
    /// A checkpoint was written to `path` after `step` steps.
    case checkpointWritten(path: String, step: Int)
    /// Examples of the next batch were left out as bad files (data sets that skip them).
    case skipped([DataWarning])
}

/// The run stopped because a loss, gradient or weight was NaN or infinite.
///
/// Raised before the bad values reach the weights or a checkpoint: the last
/// checkpoint written stays as it was, and the message says where it is.
public struct NonFiniteTrainingError: Error, CustomStringConvertible {
    /// The step that produced the value (from 0: the number of steps taken before it).
    public var step: Int
    /// The epoch (from 0) and batch of that step.
    public var epoch: Int
    /// The batch index within the epoch.
    public var batch: Int
    /// What was not finite: `loss`, or the tensor as ``NonFiniteError`` names it.
    public var what: String
    /// The last checkpoint written (path and its step), if any.
    public var lastCheckpoint: (path: String, step: Int)?
    /// True when the update itself produced the value (the weights in memory
    /// are then damaged, but were not written); false when the loss or a
    /// gradient was caught before the update.
    public var afterUpdate = false

    /// `step 37 (epoch 2, batch 5): the loss is nan ...; last good checkpoint: ...`.
    public var description: String {
        "training stopped at step \(step) (epoch \(epoch + 1), batch \(batch + 1)): \(what); "
            + (afterUpdate ? "the damaged weights were not written to any checkpoint. " : "the weights were not updated with it. ")
            + (lastCheckpoint.map { "The last good checkpoint is \($0.path) (step \($0.step)), unchanged." } ?? "No checkpoint was written.")
            + " The run is deterministic: resuming repeats this step, so start again with a lower learning rate."
    }
}

/// Trains a ``TrainingModel`` on a ``BatchSource``: epochs of SGD steps, a
/// validation pass and a log line after each epoch, the learning-rate
/// schedule, checkpoints, and stops on a step count or a time limit.
///
/// Step `s` (counting from 0 over the whole run) trains on batch `b` of epoch
/// `e` with `PassContext.step = s`, so its dropout masks are keyed by
/// `(seed, s)`, and the batch's order and augmentation by `(seed, e)`: a run
/// resumed from a checkpoint at `(e, b, s)` repeats exactly what the
/// uninterrupted run did next.
public final class Trainer {
    /// The run's settings (``TrainingConfiguration/epochs``, `maxSteps`, `timeLimit`, `checkpoint`, ...).
    public let configuration: TrainingConfiguration
    /// The network and its optimisers.
    public let model: TrainingModel
    /// The training batches (shuffled and augmented per epoch).
    public let train: BatchSource
    /// The validation batches (fixed order, no augmentation), or nil.
    public let validation: BatchSource?
    /// Class names (stored in checkpoints).
    public let classNames: [String]
    /// Which split ``validation`` is, for the log's `val_split`: `holdout` or `test` (nil: not written).
    public var validationSplit: String?
    /// The learning-rate schedule with its state.
    public private(set) var scheduler: LearningRateScheduler
    /// Where the run stands.
    public private(set) var progress: TrainingProgress
    /// The JSON-lines log.
    public let log: TrainingLog
    /// Writes the checkpoint for the current state to a path (set by the caller,
    /// who knows the data's statistics); nil: checkpoints are not written.
    public var checkpointWriter: ((Trainer, String) throws -> Void)?
    /// The last checkpoint written in this process or the one resumed from.
    public private(set) var lastCheckpoint: (path: String, step: Int)?
    /// Set by ``requestStop()`` from any thread; read between steps.
    private let stopRequested = Atomic<Bool>(false)

    /// Asks a running ``run(observer:)`` to stop after the step in progress:
    /// it writes `last.safetensors` (when checkpoints are on) and returns
    /// ``StopReason/interrupted``. Safe to call from any thread or a signal
    /// handler's queue; a run that has not started stops before its first step.
    public func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    /// Whether ``requestStop()`` has been called.
    public var isStopRequested: Bool { stopRequested.load(ordering: .relaxed) }

    /// - Parameters:
    ///   - progress: where to start (a fresh ``TrainingProgress`` or a checkpoint's).
    ///   - resumedFrom: the checkpoint the run resumes from, reported by a non-finite stop until a new one is written.
    /// - Throws: ``ConfigurationError`` for a bad schedule or rate.
    public init(configuration: TrainingConfiguration, model: TrainingModel, train: BatchSource, validation: BatchSource?,
                classNames: [String], progress: TrainingProgress? = nil, log: TrainingLog,
                resumedFrom: (path: String, step: Int)? = nil) throws {
        self.configuration = configuration
        self.model = model
        self.train = train
        self.validation = validation
        self.classNames = classNames
        let start = progress ?? TrainingProgress(learningRate: configuration.lr)
        self.progress = start
        self.scheduler = try LearningRateScheduler(schedule: configuration.schedule, baseRate: configuration.lr,
                                                   factor: configuration.lrFactor, state: start.schedule)
        self.log = log
        self.lastCheckpoint = resumedFrom
        if case .plateau = scheduler.schedule, validation == nil {
            throw ConfigurationError(component: "schedule", problem: "the plateau schedule needs a validation set")
        }
    }

    /// `DIR/last.safetensors` when checkpoints are on.
    public var lastCheckpointPath: String? { configuration.checkpoint.map { ($0 as NSString).appendingPathComponent("last.safetensors") } }
    /// `DIR/best.safetensors` (lowest validation top-1 error at an epoch's end) when checkpoints are on.
    public var bestCheckpointPath: String? { configuration.checkpoint.map { ($0 as NSString).appendingPathComponent("best.safetensors") } }

    /// Trains until every epoch is done, `maxSteps` steps are taken, the time
    /// limit passes or ``requestStop()`` is called, and writes `last.safetensors` when it stops.
    /// - Parameter observer: told about every step, validation, epoch end and checkpoint.
    /// - Returns: why it stopped.
    /// - Throws: ``NonFiniteTrainingError`` for a NaN or infinite loss, gradient
    ///   or weight (nothing is written then), data and file errors.
    @discardableResult
    public func run(observer: (TrainingEvent) -> Void = { _ in }) throws -> StopReason {
        let started = DispatchTime.now()
        func elapsed(since start: DispatchTime) -> Double {
            Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        }
        while progress.epoch < configuration.epochs {
            let epoch = progress.epoch
            let batchCount = train.batchCount
            model.learningRate = scheduler.learningRate
            // The next two batches are made on a background queue while the network trains.
            var batches: BatchIterator? = BatchIterator(source: train, epoch: epoch,
                                                        range: min(progress.batch, batchCount)..<batchCount, prefetch: 2)
            let epochStart = DispatchTime.now()
            let secondsBefore = progress.epochSeconds
            while progress.batch < batchCount {
                if isStopRequested { return try stop(.interrupted, observer) }
                if let limit = configuration.maxSteps, progress.step >= limit { return try stop(.maxSteps, observer) }
                if let limit = configuration.timeLimit, elapsed(since: started) >= limit { return try stop(.timeLimit, observer) }
                guard let batch = try batches!.next() else { break }
                if !batch.skipped.isEmpty { observer(.skipped(batch.skipped)) }
                try trainStep(images: batch.images, labels: batch.labels)
                progress.epochSeconds = secondsBefore + elapsed(since: epochStart)
                observer(.step(epoch: epoch, index: progress.batch - 1, batchCount: batchCount, step: progress.step,
                               loss: progress.epochImages > 0 ? progress.epochLossSum / Double(progress.epochImages) : .nan,
                               images: batch.labels.count, epochImages: progress.epochImages, epochSeconds: progress.epochSeconds))
                if configuration.logEvery > 0 && (progress.batch % configuration.logEvery == 0 || progress.batch == batchCount) {
                    try log.append(StepsRecord(epoch: epoch + 1, batch: progress.batch, batches: batchCount, step: progress.step,
                                               epochImages: progress.epochImages, epochCorrect: progress.epochCorrect,
                                               epochLossSum: progress.epochLossSum, trainSeconds: progress.epochSeconds).jsonLine())
                }
                if configuration.checkpointEvery > 0 && progress.step % configuration.checkpointEvery == 0
                    && progress.batch < batchCount, let path = lastCheckpointPath {
                    try writeCheckpoint(to: path, observer)
                }
            }
            batches = nil
            // Stopped before the validation pass: the resumed run does it.
            if isStopRequested { return try stop(.interrupted, observer) }
            try endEpoch(observer)
            // The epoch's end has just written last.safetensors for exactly this state.
            if isStopRequested && progress.epoch < configuration.epochs { return .interrupted }
        }
        return .epochs
    }

    /// One SGD step on a batch: forward, loss, backward, the finiteness checks, the update.
    private func trainStep(images: Tensor<Float>, labels: [Int]) throws {
        let output = try model.forwardBackward(images, labels: labels, step: UInt64(progress.step))
        guard output.loss.isFinite else {
            throw nonFinite("the loss is \(output.loss)")
        }
        if let bad = model.firstNonFiniteGradient() { throw nonFinite("a gradient is not finite: \(bad)") }
        try model.update()
        if let bad = model.firstNonFiniteWeight() {
            var error = nonFinite("the update made a weight non-finite: \(bad)")
            error.afterUpdate = true
            throw error
        }
        progress.step += 1
        progress.batch += 1
        progress.epochLossSum += Double(output.loss) * Double(labels.count)
        progress.epochCorrect += output.top1Correct
        progress.epochImages += labels.count
    }

    private func nonFinite(_ what: String) -> NonFiniteTrainingError {
        NonFiniteTrainingError(step: progress.step, epoch: progress.epoch, batch: progress.batch, what: what,
                               lastCheckpoint: lastCheckpoint)
    }

    /// Validation, the log line, the schedule, the checkpoints.
    private func endEpoch(_ observer: (TrainingEvent) -> Void) throws {
        let epochStart = DispatchTime.now()
        var result: EvaluationResult?
        if let validation {
            observer(.validating(epoch: progress.epoch, images: validation.exampleCount))
            result = try Evaluator.evaluate(source: validation, classes: classNames.count,
                                            skipped: { observer(.skipped($0)) }) { try model.scores($0) }
        }
        let validationSeconds = Double(DispatchTime.now().uptimeNanoseconds - epochStart.uptimeNanoseconds) / 1e9
        let images = Double(max(1, progress.epochImages))
        let record = EpochRecord(epoch: progress.epoch + 1, step: progress.step, learningRate: scheduler.learningRate,
                                 trainLoss: progress.epochLossSum / images,
                                 trainError: Double(progress.epochImages - progress.epochCorrect) / images,
                                 validationLoss: result?.loss, validationTop1: result?.top1Error,
                                 validationTop5: result?.top5Error, validationSplit: result == nil ? nil : validationSplit,
                                 imagesPerSecond: progress.epochSeconds > 0 ? Double(progress.epochImages) / progress.epochSeconds : 0,
                                 seconds: progress.epochSeconds + validationSeconds, trainSeconds: progress.epochSeconds)
        try log.append(record.jsonLine())
        try scheduler.endEpoch(progress.epoch, validationError: result?.top1Error)
        let best = progress.bestValidationError
        let improved = result.map { r in best.map { r.top1Error < $0 } ?? true } ?? false
        let epoch = progress.epoch
        progress = TrainingProgress(learningRate: scheduler.learningRate)
        progress.epoch = epoch + 1
        progress.step = record.step
        progress.schedule = scheduler.state
        progress.bestValidationError = improved ? result!.top1Error : best
        if let path = lastCheckpointPath { try writeCheckpoint(to: path, observer) }
        if improved, let path = bestCheckpointPath { try writeCheckpoint(to: path, observer) }
        observer(.epochEnded(record))
    }

    /// Writes `last.safetensors` and returns `reason`.
    private func stop(_ reason: StopReason, _ observer: (TrainingEvent) -> Void) throws -> StopReason {
        if let path = lastCheckpointPath { try writeCheckpoint(to: path, observer) }
        return reason
    }

    /// Writes a checkpoint of the current state, after checking every weight is finite.
    public func writeCheckpoint(to path: String, _ observer: (TrainingEvent) -> Void = { _ in }) throws {
        guard let writer = checkpointWriter else { return }
        if let bad = model.firstNonFiniteWeight() {
            var error = nonFinite("a weight is not finite: \(bad)")
            error.afterUpdate = true
            throw error
        }
        try writer(self, path)
        if path == lastCheckpointPath { lastCheckpoint = (path, progress.step) }
        observer(.checkpointWritten(path: path, step: progress.step))
    }
}
