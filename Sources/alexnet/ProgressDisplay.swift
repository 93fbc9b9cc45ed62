import AlexNetKit
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Training progress on standard output: on a terminal, one bar per epoch
/// redrawn in place (`\r`) with the loss, images/s and the epoch's ETA; when
/// standard output is not a terminal (`isatty` false: a pipe, a file, CI),
/// plain lines at every tenth of an epoch instead, flushed as they come.
/// Epoch summaries and notes are always plain lines.
final class ProgressDisplay {
    /// True when standard output is a terminal.
    let interactive: Bool
    /// No step or evaluation progress at all (epoch lines and notes only).
    let quiet: Bool
    private var lineOpen = false
    private var lastDraw = DispatchTime(uptimeNanoseconds: 0)
    private var lastPlainTenth = -1

    init(quiet: Bool, interactive: Bool = isatty(STDOUT_FILENO) == 1) {
        self.quiet = quiet
        self.interactive = interactive
    }

    /// A plain line (ends any bar first).
    func note(_ text: String) {
        finishLine()
        print(text)
        fflush(stdout)
    }

    /// Ends the bar's line, if one is open.
    func finishLine() {
        if lineOpen {
            print("")
            fflush(stdout)
            lineOpen = false
        }
    }

    /// `m:ss` or `h:mm:ss`.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    /// Shows one trainer event.
    func show(_ event: TrainingEvent, epochs: Int) {
        switch event {
        case .step(let epoch, let index, let batchCount, let step, let loss, _, let epochImages, let epochSeconds):
            guard !quiet else { return }
            let done = index + 1
            let rate = epochSeconds > 0 ? Double(epochImages) / epochSeconds : 0
            let eta = done > 0 ? epochSeconds / Double(done) * Double(batchCount - done) : .nan
            if interactive {
                let now = DispatchTime.now()
                guard done == batchCount || now.uptimeNanoseconds - lastDraw.uptimeNanoseconds > 200_000_000 else { return }
                lastDraw = now
                let width = 24
                let filled = width * done / max(1, batchCount)
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                let text = String(format: "epoch %d/%d [%@] %3d%% %d/%d  loss %.4f  %.0f img/s  ETA %@  step %d",
                                  epoch + 1, epochs, bar, 100 * done / max(1, batchCount), done, batchCount, loss, rate,
                                  Self.clock(eta), step)
                print("\r\u{1B}[K" + text, terminator: "")
                fflush(stdout)
                lineOpen = true
            } else {
                let tenth = 10 * done / max(1, batchCount)
                if done == 1 { lastPlainTenth = 0 }
                guard tenth > lastPlainTenth, done < batchCount else { return }
                lastPlainTenth = tenth
                print(String(format: "epoch %d/%d batch %d/%d  loss %.4f  %.0f img/s  ETA %@",
                             epoch + 1, epochs, done, batchCount, loss, rate, Self.clock(eta)))
                fflush(stdout)
            }
        case .validating(let epoch, let images):
            if interactive && !quiet {
                print("\r\u{1B}[K" + "epoch \(epoch + 1)/\(epochs): validating \(images) images", terminator: "")
                fflush(stdout)
                lineOpen = true
            }
        case .epochEnded(let record):
            var text = String(format: "epoch %d/%d: lr %g  train loss %.4f error %.2f%%", record.epoch, epochs,
                              record.learningRate, record.trainLoss, 100 * record.trainError)
            if let loss = record.validationLoss, let top1 = record.validationTop1, let top5 = record.validationTop5 {
                let split = record.validationSplit == "test" ? "test (as val)" : "val"
                text += "  | " + split + String(format: " loss %.4f top-1 %.2f%% top-5 %.2f%%", loss, 100 * top1, 100 * top5)
            }
            text += String(format: "  | %.0f img/s, %.1f s", record.imagesPerSecond, record.seconds)
            note(text)
        case .checkpointWritten:
            break
        case .skipped(let warnings):
            // Shown even with --quiet: the data set is not what the user thinks it is.
            for warning in warnings { note("warning: skipped \(warning)") }
        }
    }

    /// Evaluation progress: `done` of `total` images.
    func evaluation(_ done: Int, of total: Int) {
        guard interactive && !quiet else { return }
        let now = DispatchTime.now()
        guard done == total || now.uptimeNanoseconds - lastDraw.uptimeNanoseconds > 200_000_000 else { return }
        lastDraw = now
        print("\r\u{1B}[K" + "evaluating: \(done)/\(total) images", terminator: "")
        fflush(stdout)
        lineOpen = true
    }
}
