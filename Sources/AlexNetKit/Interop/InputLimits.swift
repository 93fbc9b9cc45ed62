import Foundation

/// The documented caps on every number a user or a file gives (Docs/reliability.md).
///
/// Each is far above any sensible use, and low enough that no arithmetic on
/// it can overflow and no allocation it sizes is absurd: a value above its cap
/// is refused with the option or key, the value and the cap, before it is used.
/// Allocations a setting implies as a whole (a training batch) are also checked
/// against the machine's memory (``checkAllocation(bytes:what:)``).
public enum InputLimits {
    /// Images per batch.
    public static let batch = 65_536
    /// Worker threads.
    public static let threads = 1_024
    /// Epochs of a run.
    public static let epochs = 1_000_000
    /// Steps, for `max_steps`, `checkpoint_every` and a checkpoint's step counts (2^53: exact in a Double).
    public static let steps = 1 << 53
    /// Examples, for `train_limit`, `holdout`, `statistics_limit` and a checkpoint's image counts.
    public static let examples = 1 << 31
    /// Height or width of an image: an input, a resize, a crop, a generated picture.
    public static let imageSide = 8_192
    /// Channels of an input image.
    public static let inputChannels = 4_096
    /// Zero padding around an image before a random crop.
    public static let cropPadding = 4_096
    /// Classes of a data set or a last layer.
    public static let classes = 1 << 20
    /// Seconds, for a time limit (about 31 years).
    public static let seconds = 1e9
    /// Pixels a JPEG's header may claim (64 Mpx: 192 MB decoded as RGB), checked before decoding.
    public static let jpegPixels = 1 << 26
    /// Bytes one compressed stream (a gzip file, an .npz member) may inflate to:
    /// 4 GiB, or a quarter of the machine's memory if that is less.
    public static var decompressedBytes: Int { Int(min(UInt64(1) << 32, physicalMemory / 4)) }

    /// Refuses `value` outside `range`, naming `what` (an option or key) and the limits.
    /// - Throws: ``ConfigurationError`` whose component is `what`.
    public static func check(_ value: Int, _ range: ClosedRange<Int>, _ what: String) throws {
        guard range.contains(value) else {
            throw ConfigurationError(component: what, problem: "must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    /// The machine's physical memory in bytes.
    public static var physicalMemory: UInt64 { ProcessInfo.processInfo.physicalMemory }

    /// Refuses an allocation of `bytes` (a product computed without overflow,
    /// or nil when it overflowed) above half the machine's memory, naming what needs it.
    /// - Throws: ``ConfigurationError`` whose component is `what`.
    public static func checkAllocation(bytes: Int?, what: String) throws {
        let limit = physicalMemory / 2
        guard let bytes, bytes >= 0, UInt64(bytes) <= limit else {
            let size = bytes.map { String(format: "%.1f GiB", Double($0) / Double(1 << 30)) } ?? "more than 2^63 bytes"
            throw ConfigurationError(component: what, problem: "needs \(size), more than half of this machine's "
                                     + String(format: "%.1f GiB", Double(physicalMemory) / Double(1 << 30)) + " of memory")
        }
    }

    /// `factors` multiplied, or nil on overflow.
    public static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for factor in factors {
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = next
        }
        return result
    }
}
