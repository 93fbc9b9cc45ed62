/// How the learning rate changes from epoch to epoch.
///
/// Written on the command line and in run configs as `constant`, `step:K`,
/// `linear:E` or `plateau:P` (``init(parsing:)`` and ``description``); the
/// factor of `step` and `plateau` is a separate setting (10 in the paper).
public enum LearningRateSchedule: Equatable, Sendable, CustomStringConvertible {
    /// The rate never changes.
    case constant
    /// The rate is divided by the factor after every `every` epochs: epochs
    /// `0..<K` use `base`, `K..<2K` use `base / factor`, and so on.
    case step(every: Int)
    /// The rate falls in equal steps from `base` towards zero over `epochs`
    /// epochs: epoch `e` (from 0) uses `base * (E - e) / E`, so the last of the
    /// E epochs runs at `base / E`, and any epoch after it at `base / E` too.
    /// Not the paper's rule: a fixed-budget schedule for short runs, which
    /// needs no validation error. `E` is part of the schedule, not read from
    /// the run's epoch count, so raising `epochs` to continue a run does not
    /// change the rates its finished epochs used.
    case linear(epochs: Int)
    /// The paper's rule (section 5): "divide the learning rate by 10 when the
    /// validation error rate stopped improving with the current learning rate".
    /// After each epoch the validation top-1 error is compared with the best so
    /// far: lower is an improvement (the best is updated and the count of bad
    /// epochs reset), anything else counts one bad epoch. When the count
    /// exceeds `patience`, the rate is divided and the count restarts (the best
    /// is kept). This is PyTorch's `ReduceLROnPlateau(mode="min", threshold=0,
    /// cooldown=0)`: patience 0 divides after the first epoch without improvement.
    case plateau(patience: Int)

    /// Parses `constant`, `step:K` (K >= 1), `linear:E` (E >= 1) or `plateau:P` (P >= 0).
    /// - Throws: ``ConfigurationError`` saying what is accepted.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func fail() -> ConfigurationError {
            ConfigurationError(component: "schedule",
                               problem: "'\(text)' is not a schedule: use constant, step:K (divide every K >= 1 epochs), "
                               + "linear:E (fall linearly towards zero over E >= 1 epochs) or plateau:P (divide after more than P >= 0 epochs without a lower validation error)")
        }
        switch (parts.first, parts.count) {
        case ("constant", 1): self = .constant
        case ("step", 2):
            guard let every = Int(parts[1]), every >= 1 else { throw fail() }
            self = .step(every: every)
        case ("linear", 2):
            guard let epochs = Int(parts[1]), epochs >= 1 else { throw fail() }
            self = .linear(epochs: epochs)
        case ("plateau", 2):
            guard let patience = Int(parts[1]), patience >= 0 else { throw fail() }
            self = .plateau(patience: patience)
        default: throw fail()
        }
    }

    /// `constant`, `step:K`, `linear:E` or `plateau:P`, the form ``init(parsing:)`` reads.
    public var description: String {
        switch self {
        case .constant: return "constant"
        case .step(let every): return "step:\(every)"
        case .linear(let epochs): return "linear:\(epochs)"
        case .plateau(let patience): return "plateau:\(patience)"
        }
    }
}

/// Where a schedule stands: everything needed to continue it after a resume.
public struct ScheduleState: Equatable, Sendable {
    /// The rate the next epoch uses.
    public var learningRate: Double
    /// The lowest validation top-1 error seen so far (plateau schedule), nil before the first.
    public var bestError: Double?
    /// Epochs since the last improvement (plateau schedule).
    public var badEpochs: Int
    /// How many times the rate has been divided.
    public var reductions: Int

    /// The state at the start of training: the base rate, nothing seen.
    public init(learningRate: Double, bestError: Double? = nil, badEpochs: Int = 0, reductions: Int = 0) {
        self.learningRate = learningRate
        self.bestError = bestError
        self.badEpochs = badEpochs
        self.reductions = reductions
    }
}

/// A schedule with its state: asks for the validation error after each epoch
/// and answers the rate of the next.
public struct LearningRateScheduler: Equatable, Sendable {
    /// Which rule.
    public let schedule: LearningRateSchedule
    /// The rate of the first epoch.
    public let baseRate: Double
    /// What the rate is divided by at each reduction (10 in the paper).
    public let factor: Double
    /// The current state (checkpointed).
    public private(set) var state: ScheduleState

    /// A scheduler at the start of training, or continuing from `state`.
    /// - Throws: ``ConfigurationError`` for a rate that is not positive and finite or a factor not above 1.
    public init(schedule: LearningRateSchedule, baseRate: Double, factor: Double = 10, state: ScheduleState? = nil) throws {
        guard baseRate > 0, baseRate.isFinite else {
            throw ConfigurationError(component: "schedule", problem: "the learning rate must be positive and finite, got \(baseRate)")
        }
        guard factor > 1, factor.isFinite else {
            throw ConfigurationError(component: "schedule", problem: "the reduction factor must be above 1, got \(factor)")
        }
        self.schedule = schedule
        self.baseRate = baseRate
        self.factor = factor
        self.state = state ?? ScheduleState(learningRate: baseRate)
    }

    /// The rate the next epoch uses.
    public var learningRate: Double { state.learningRate }

    /// Records the end of epoch `epoch` (from 0) and its validation top-1 error
    /// (needed by the plateau schedule, ignored by the others), and returns the
    /// rate of epoch `epoch + 1`.
    ///
    /// The step and linear schedules compute the rate afresh from the base (no
    /// accumulated rounding); the plateau schedule divides the current rate.
    /// - Throws: ``ConfigurationError`` when the plateau schedule gets no validation error.
    @discardableResult
    public mutating func endEpoch(_ epoch: Int, validationError: Double?) throws -> Double {
        switch schedule {
        case .constant:
            break
        case .step(let every):
            let k = (epoch + 1) / every
            var rate = baseRate
            for _ in 0..<k { rate /= factor }
            state.reductions = k
            state.learningRate = rate
        case .linear(let epochs):
            let next = min(epoch + 1, epochs - 1)
            state.learningRate = baseRate * Double(epochs - next) / Double(epochs)
        case .plateau(let patience):
            guard let error = validationError else {
                throw ConfigurationError(component: "schedule", problem: "the plateau schedule needs a validation error after every epoch")
            }
            if let best = state.bestError, !(error < best) {
                state.badEpochs += 1
            } else {
                state.bestError = error
                state.badEpochs = 0
            }
            if state.badEpochs > patience {
                state.learningRate /= factor
                state.reductions += 1
                state.badEpochs = 0
            }
        }
        return state.learningRate
    }
}
