import Dispatch
import Foundation

/// Ctrl-C (SIGINT) and SIGTERM during a long job: the first one calls
/// `onFirst` (the trainer finishes its step and writes its checkpoint); a second
/// one stops the process at once with status 128 + the signal's number.
///
/// While an instance lives, the signals are delivered to a dispatch source
/// instead of killing the process; dropping it (``stop()``) restores the
/// default action.
final class InterruptHandler {
    private var sources: [DispatchSourceSignal] = []
    private let signals: [Int32]
    private let lock = NSLock()
    private var received: Int32 = 0

    /// The signal that arrived first, or nil.
    var signal: Int32? {
        lock.lock(); defer { lock.unlock() }
        return received == 0 ? nil : received
    }

    /// Starts catching `signals` (SIGINT and SIGTERM). `onFirst` runs on a
    /// background queue with the signal's number.
    init(signals: [Int32] = [SIGINT, SIGTERM], onFirst: @escaping @Sendable (Int32) -> Void) {
        self.signals = signals
        for number in signals {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let first = self.received == 0
                if first { self.received = number }
                self.lock.unlock()
                if first {
                    onFirst(number)
                } else {
                    FileHandle.standardError.write(Data("\nstopped at once; the last checkpoint written is intact\n".utf8))
                    fflush(stdout)
                    _exit(128 + number)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Restores the signals' default action (a later Ctrl-C ends the process).
    func stop() {
        for source in sources { source.cancel() }
        sources = []
        for number in signals { Foundation.signal(number, InterruptHandler.ignored.contains(number) ? SIG_IGN : SIG_DFL) }
    }

    deinit { stop() }

    /// Signals this process ignores throughout (a run under `alexnet experiment`
    /// ignores SIGINT: the terminal's Ctrl-C reaches the runner, which stops
    /// its runs with SIGTERM, one signal each).
    nonisolated(unsafe) static var ignored: Set<Int32> = []

    /// The signals a training run catches: SIGINT and SIGTERM, less ``ignored``.
    static var caught: [Int32] { [SIGINT, SIGTERM].filter { !ignored.contains($0) } }
}
