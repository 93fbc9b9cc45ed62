import Dispatch
import Foundation
import Synchronization

/// A fixed set of workers that runs a parallel-for over a fixed partition.
///
/// Determinism comes from the partition, not from the pool: callers split their
/// work into tasks whose boundaries depend only on the problem (one image, one
/// tile of 256 features, ...), never on ``workerCount``. Each task writes its own
/// outputs and any reduction across tasks is done afterwards in task order, so
/// the result is bitwise the same for 1, 2 or 16 workers.
///
/// Built on Dispatch: each pool owns `workerCount - 1` serial dispatch queues,
/// one per helper worker, and the thread that calls ``parallelFor(_:_:)`` is
/// worker 0. Serial queues made by a program are served by Dispatch's
/// overcommitting thread pool, so a helper always gets a thread even while other
/// pools' callers wait; and because the caller works too, a call always makes
/// progress. Two pools (the two "virtual GPU" towers) therefore never wait on
/// each other's workers.
///
/// A helper whose block has finished a call waits for the next one for up to
/// ``helperSpinSeconds`` (yielding its core) before its block returns, and the
/// caller waits for the helpers the same way: a network's pass makes dozens of
/// calls a few microseconds apart, and waking a parked Dispatch thread for each
/// cost 25-60 microseconds a call (a few percent of a batch-1 inference or of a
/// small net's training step). An idle pool holds no thread. A pool with more
/// workers than the machine has cores does not spin (its spinners would take
/// the cores from the workers with work), and waits as Dispatch alone would.
public final class WorkerPool: @unchecked Sendable {
    /// Number of workers that run tasks, including the calling thread.
    public let workerCount: Int
    /// A label for diagnostics ("tower0", "main").
    public let label: String

    private let helpers: [Helper]
    private let state = PoolState()

    /// How long a helper waits for the next call before its block returns.
    static let helperSpinSeconds = 0.0002
    /// The spin time of this pool in nanoseconds: 0 with more workers than cores.
    private let spinNanoseconds: UInt64

    /// Creates a pool of `workerCount` workers (at least 1).
    public init(workerCount: Int, label: String = "pool") {
        self.workerCount = max(1, workerCount)
        self.label = label
        let spin: UInt64 = workerCount <= ProcessInfo.processInfo.activeProcessorCount
            ? UInt64(Self.helperSpinSeconds * 1e9) : 0
        self.spinNanoseconds = spin
        self.helpers = (1..<max(1, workerCount)).map {
            Helper(queue: DispatchQueue(label: "\(label).worker\($0)"), worker: $0, spinNanoseconds: spin)
        }
    }

    /// A single-worker pool: tasks run in order on the calling thread.
    public static let serial = WorkerPool(workerCount: 1, label: "serial")

    /// One worker per active processor core.
    public static func machineWide(label: String = "main") -> WorkerPool {
        WorkerPool(workerCount: ProcessInfo.processInfo.activeProcessorCount, label: label)
    }

    /// Runs `body(task, worker)` for every `task` in `0..<taskCount` and returns
    /// when all have finished.
    ///
    /// `worker` is in `0..<workerCount` and is unique among tasks running at the
    /// same moment, so it can index per-worker scratch buffers. Which worker runs
    /// which task varies from call to call; results must not depend on it.
    /// A call made while the pool is already running one (a nested call from
    /// inside a task, or a second thread) runs its tasks serially on its caller.
    public func parallelFor(_ taskCount: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        if taskCount <= 0 { return }
        if workerCount == 1 || taskCount == 1 || !state.tryBegin(taskCount: taskCount) {
            for task in 0..<taskCount { body(task, 0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            state.body = escapable
            let state = self.state
            let used = helpers.prefix(taskCount - 1)
            state.pendingHelpers.store(used.count, ordering: .sequentiallyConsistent)
            for helper in used { helper.start(state) }
            state.runTasks(worker: 0)
            state.waitForHelpers(spinNanoseconds: spinNanoseconds)
            state.end()
        }
    }
}

/// One helper worker: a serial queue whose block runs calls while they come
/// less than ``WorkerPool/helperSpinSeconds`` apart.
private final class Helper: @unchecked Sendable {
    let queue: DispatchQueue
    let worker: Int
    /// `idle`: no block of ours is on the queue; `waiting`: a block waits for a
    /// call; `claimed`: a call has been handed to the block (or to a new one).
    private let mode = Atomic<Int>(Helper.idle)
    private static let idle = 0, waiting = 1, claimed = 2

    private let spinNanoseconds: UInt64

    init(queue: DispatchQueue, worker: Int, spinNanoseconds: UInt64) {
        self.queue = queue
        self.worker = worker
        self.spinNanoseconds = spinNanoseconds
    }

    /// Hands the current call of `state` to this helper: to its waiting block if
    /// it has one, otherwise to a new block on its queue.
    func start(_ state: PoolState) {
        if mode.compareExchange(expected: Helper.waiting, desired: Helper.claimed,
                                ordering: .acquiringAndReleasing).exchanged { return }
        // No block waits (or one just gave up: it has returned, or returns without
        // running anything, before the serial queue starts the new one).
        mode.store(Helper.claimed, ordering: .releasing)
        queue.async { self.serve(state) }
    }

    /// Runs the claimed call, then waits for the next one; returns when none
    /// comes within the spin time.
    private func serve(_ state: PoolState) {
        while true {
            state.runTasks(worker: worker)
            // Waiting is announced before the call is reported finished, so the
            // caller's next call finds this block (the count orders the two).
            mode.store(Helper.waiting, ordering: .releasing)
            state.helperFinished()
            let start = DispatchTime.now().uptimeNanoseconds
            while mode.load(ordering: .acquiring) != Helper.claimed {
                if DispatchTime.now().uptimeNanoseconds - start >= spinNanoseconds,
                   mode.compareExchange(expected: Helper.waiting, desired: Helper.idle,
                                        ordering: .acquiringAndReleasing).exchanged {
                    return
                }
                sched_yield()
            }
        }
    }
}

/// The task counter shared by a pool's workers during one call.
///
/// Workers claim tasks with an atomic increment: a lock taken per task cost
/// about 10 microseconds under contention between two workers (futex waits
/// and yields), which made max pooling's thousands of small tasks 5-8x slower
/// than their arithmetic.
private final class PoolState: @unchecked Sendable {
    private let lock = NSLock()
    /// Set before the helpers are dispatched and cleared after they finish, so
    /// every read happens between those points (ordered by the dispatch or the
    /// helper's claim, and by the count of pending helpers).
    var body: ((Int, Int) -> Void)?
    private let nextTask = Atomic<Int>(0)
    /// Helpers of the current call that have not yet run out of tasks.
    let pendingHelpers = Atomic<Int>(0)
    /// Whether the caller sleeps on `helpersDone` (set before its last check of the count).
    private let callerSleeps = Atomic<Bool>(false)
    private let helpersDone = DispatchSemaphore(value: 0)

    /// A helper has run out of tasks; the last one wakes a sleeping caller.
    func helperFinished() {
        let left = pendingHelpers.subtract(1, ordering: .sequentiallyConsistent).newValue
        if left == 0 && callerSleeps.load(ordering: .sequentiallyConsistent) { helpersDone.signal() }
    }

    /// Returns when every helper of the call has finished: checks between yields
    /// of the core for `spinNanoseconds`, then sleeps until the last one signals.
    /// (A signal may come for a check that already saw the count at 0; the extra
    /// count only makes a later wait re-check, hence the loop.)
    func waitForHelpers(spinNanoseconds: UInt64) {
        let start = DispatchTime.now().uptimeNanoseconds
        while pendingHelpers.load(ordering: .acquiring) != 0 {
            if DispatchTime.now().uptimeNanoseconds - start < spinNanoseconds {
                sched_yield()
                continue
            }
            callerSleeps.store(true, ordering: .sequentiallyConsistent)
            if pendingHelpers.load(ordering: .sequentiallyConsistent) != 0 { helpersDone.wait() }
            callerSleeps.store(false, ordering: .sequentiallyConsistent)
        }
    }
    private var taskCount = 0
    private var busy = false

    /// Claims the pool for one call; false when a call is already running.
    func tryBegin(taskCount: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if busy { return false }
        busy = true
        nextTask.store(0, ordering: .relaxed)
        self.taskCount = taskCount
        return true
    }

    func end() {
        lock.lock(); defer { lock.unlock() }
        body = nil
        busy = false
    }

    /// Takes tasks one at a time until none is left.
    func runTasks(worker: Int) {
        guard let work = body else { return }
        let count = taskCount
        while true {
            let task = nextTask.wrappingAdd(1, ordering: .relaxed).oldValue
            if task >= count { return }
            work(task, worker)
        }
    }
}
