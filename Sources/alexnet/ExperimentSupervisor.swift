import AlexNetKit
import Foundation

/// Runs an experiment's runs as child processes (`alexnet experiment FILE
/// --run ID --supervised`), `jobs` at a time, each writing what it prints to
/// its folder's `output.txt`. The first SIGINT or SIGTERM stops starting new
/// runs and sends SIGTERM to the running ones, which finish their step and
/// write their checkpoint; the children ignore SIGINT, so a terminal's Ctrl-C
/// reaches each of them once, through here.
final class ExperimentSupervisor {
    /// What happened to the runs.
    struct Status {
        /// Runs that exited with a failure.
        var failed: [ExperimentRun] = []
        /// The signal that stopped the experiment, if one did.
        var signal: Int32?
    }

    private let output: ExperimentOutput
    private let file: String
    private let data: String?
    private let jobs: Int
    private let threads: Int
    private let lock = NSLock()
    private var running: [Process] = []
    private var stopSignal: Int32?
    private var failed: [ExperimentRun] = []

    init(output: ExperimentOutput, file: String, data: String?, jobs: Int, threads: Int) {
        self.output = output
        self.file = file
        self.data = data
        self.jobs = jobs
        self.threads = threads
    }

    /// Runs the unfinished runs of `runs`; returns when all have ended or a signal stopped them.
    func run(_ runs: [ExperimentRun]) throws -> Status {
        // Seed by seed, every arm of a seed before the next seed: with several
        // jobs the arms run side by side under the same load (fair seconds), and a
        // part-done experiment already has every arm.
        let seedOrder = output.experiment.seeds, armOrder = output.experiment.arms.map(\.name)
        let todo = runs.filter { output.state(of: $0) != .finished }.sorted {
            (seedOrder.firstIndex(of: $0.seed)!, armOrder.firstIndex(of: $0.arm)!) < (seedOrder.firstIndex(of: $1.seed)!, armOrder.firstIndex(of: $1.arm)!)
        }
        let done = runs.count - todo.count
        if done > 0 { print("\(done) of \(runs.count) run(s) already finished") }
        guard !todo.isEmpty else { return Status() }
        print("running \(todo.count) run(s), \(jobs) at a time, \(threads) thread(s) each; output in \(output.path)")
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let fileURL = URL(fileURLWithPath: file).standardizedFileURL.path
        let slots = DispatchSemaphore(value: jobs)
        let group = DispatchGroup()
        let interrupts = InterruptHandler { [self] number in
            lock.lock()
            stopSignal = number
            let children = running
            lock.unlock()
            FileHandle.standardError.write(Data("\nstopping: each running run finishes its step and writes its checkpoint\n".utf8))
            for child in children where child.isRunning { kill(child.processIdentifier, SIGTERM) }
        }
        defer { interrupts.stop() }
        let started = Date()
        for (index, run) in todo.enumerated() {
            slots.wait()
            lock.lock()
            let stopping = stopSignal != nil
            lock.unlock()
            if stopping { slots.signal(); break }
            let process = Process()
            process.executableURL = executable
            var arguments = ["experiment", fileURL, "--output", output.path, "--run", run.id, "--threads", "\(threads)", "--supervised"]
            if let data { arguments += ["--data", data] }
            process.arguments = arguments
            let log = (output.folder(of: run) as NSString).appendingPathComponent(ExperimentRun.outputFile)
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            let runStart = Date()
            group.enter()
            process.terminationHandler = { [self] child in
                try? handle.close()
                let seconds = Date().timeIntervalSince(runStart)
                lock.lock()
                running.removeAll { $0 === child }
                let interrupted = stopSignal != nil
                let ok = child.terminationStatus == 0
                if !ok && !interrupted { failed.append(run) }
                lock.unlock()
                let summary: String
                if ok, let result = try? RunResult.read(run: run, folder: output.folder(of: run)), let top1 = result.end?.testTop1 {
                    summary = String(format: "finished in %.0f s, test top-1 error %.2f%%", seconds, 100 * top1)
                } else if interrupted {
                    summary = "stopped (status \(child.terminationStatus)); it resumes from its checkpoint"
                } else {
                    summary = "FAILED with status \(child.terminationStatus); see \(log)"
                }
                print("[\(index + 1)/\(todo.count)] \(run.id): \(summary)")
                fflush(stdout)
                slots.signal()
                group.leave()
            }
            lock.lock()
            running.append(process)
            lock.unlock()
            print("[\(index + 1)/\(todo.count)] \(run.id): started")
            fflush(stdout)
            do {
                try process.run()
            } catch {
                lock.lock()
                running.removeAll { $0 === process }
                failed.append(run)
                lock.unlock()
                print("[\(index + 1)/\(todo.count)] \(run.id): cannot start \(executable.path): \(error)")
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        print(String(format: "runs ended after %.0f s", Date().timeIntervalSince(started)))
        lock.lock()
        defer { lock.unlock() }
        return Status(failed: failed, signal: stopSignal)
    }
}
