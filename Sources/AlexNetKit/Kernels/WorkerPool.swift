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
public final class WorkerPool: @unchecked Sendable {
    /// Number of workers that run tasks, including the calling thread.
    public let workerCount: Int
    /// A label for diagnostics ("tower0", "main").
    public let label: String

    private let helpers: [DispatchQueue]
    private let state = PoolState()

    /// Creates a pool of `workerCount` workers (at least 1).
    public init(workerCount: Int, label: String = "pool") {
        self.workerCount = max(1, workerCount)
        self.label = label
        self.helpers = (1..<max(1, workerCount)).map { DispatchQueue(label: "\(label).worker\($0)") }
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
            let group = DispatchGroup()
            let state = self.state
            for (index, queue) in helpers.prefix(taskCount - 1).enumerated() {
                queue.async(group: group) { state.runTasks(worker: index + 1) }
            }
            state.runTasks(worker: 0)
            group.wait()
            state.end()
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
    /// every read happens between those points (ordered by the dispatch and the group).
    var body: ((Int, Int) -> Void)?
    private let nextTask = Atomic<Int>(0)
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
