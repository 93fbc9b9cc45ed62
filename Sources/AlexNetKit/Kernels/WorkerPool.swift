import Dispatch
import Foundation

/// A fixed set of threads that runs a parallel-for over a fixed partition.
///
/// Determinism comes from the partition, not from the pool: callers split their
/// work into tasks whose boundaries depend only on the problem (one image, one
/// tile of 64 rows, ...), never on ``workerCount``. Each task writes its own
/// outputs and any reduction across tasks is done afterwards in task order, so
/// the result is bitwise the same for 1, 2 or 16 workers.
///
/// Each pool owns `workerCount - 1` dedicated threads; the thread that calls
/// ``parallelFor(_:_:)`` works too, so a call always makes progress even when
/// the pool's threads are busy elsewhere (two tower pools never wait on each
/// other). Threads sleep on Dispatch semaphores between calls.
public final class WorkerPool: @unchecked Sendable {
    /// Number of threads that run tasks, including the calling thread.
    public let workerCount: Int
    /// A label for diagnostics ("tower0", "main").
    public let label: String

    private let state: PoolState

    /// Creates a pool of `workerCount` workers (at least 1).
    public init(workerCount: Int, label: String = "pool") {
        self.workerCount = max(1, workerCount)
        self.label = label
        self.state = PoolState(helperCount: self.workerCount - 1)
        for helper in 0..<(self.workerCount - 1) {
            let state = self.state
            let thread = Thread { state.helperLoop(helper: helper) }
            thread.name = "\(label)-\(helper + 1)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// A single-threaded pool: tasks run in order on the calling thread.
    public static let serial = WorkerPool(workerCount: 1, label: "serial")

    /// One worker per active processor core.
    public static func machineWide(label: String = "main") -> WorkerPool {
        WorkerPool(workerCount: ProcessInfo.processInfo.activeProcessorCount, label: label)
    }

    deinit { state.shutDown() }

    /// Runs `body(task, worker)` for every `task` in `0..<taskCount`.
    ///
    /// `worker` is in `0..<workerCount` and is unique among tasks running at the
    /// same moment, so it can index per-worker scratch buffers. Which worker runs
    /// which task varies from call to call; results must not depend on it.
    /// A nested call from inside a task runs its tasks serially on that thread.
    public func parallelFor(_ taskCount: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        if taskCount <= 0 { return }
        if workerCount == 1 || taskCount == 1 || !state.tryBegin() {
            for task in 0..<taskCount { body(task, 0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let helpers = min(workerCount - 1, taskCount - 1)
            state.run(taskCount: taskCount, helpers: helpers, body: escapable)
        }
    }
}

/// The shared state between a pool's caller and its helper threads.
private final class PoolState: @unchecked Sendable {
    private let lock = NSLock()
    private let wake: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private var body: ((Int, Int) -> Void)?
    private var nextTask = 0
    private var taskCount = 0
    private var busy = false
    private var stopping = false

    init(helperCount: Int) {
        wake = (0..<helperCount).map { _ in DispatchSemaphore(value: 0) }
    }

    /// Claims the pool for one call; false when a call is already running (nesting).
    func tryBegin() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if busy { return false }
        busy = true
        return true
    }

    func run(taskCount: Int, helpers: Int, body: @escaping (Int, Int) -> Void) {
        lock.lock()
        self.body = body
        self.nextTask = 0
        self.taskCount = taskCount
        lock.unlock()
        for h in 0..<helpers { wake[h].signal() }
        runTasks(worker: 0)
        for _ in 0..<helpers { finished.wait() }
        lock.lock()
        self.body = nil
        busy = false
        lock.unlock()
    }

    private func runTasks(worker: Int) {
        while true {
            lock.lock()
            let task = nextTask
            nextTask += 1
            let work = body
            let count = taskCount
            lock.unlock()
            guard task < count, let work else { return }
            work(task, worker)
        }
    }

    func helperLoop(helper: Int) {
        while true {
            wake[helper].wait()
            lock.lock()
            let stop = stopping
            lock.unlock()
            if stop { return }
            runTasks(worker: helper + 1)
            finished.signal()
        }
    }

    func shutDown() {
        lock.lock()
        stopping = true
        lock.unlock()
        for semaphore in wake { semaphore.signal() }
    }
}
