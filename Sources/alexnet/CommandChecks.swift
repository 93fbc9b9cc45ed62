import AlexNetKit
import ArgumentParser
import Foundation

/// The command line's side of ``OutputFiles``' policy: checks an output file
/// before any work is done, so a long computation never ends in a refusal.
/// - Parameters:
///   - option: the option as the user typed it (`--output`).
///   - force: the command's `--force`: an existing file may be replaced.
/// - Throws: ``CommandFailure`` such as `--log run.jsonl: exists; pass --force to replace it`.
func checkOutputFile(_ path: String, option: String, force: Bool) throws {
    do {
        try OutputFiles.checkFile(path, what: option, replacing: force)
    } catch let error as OutputFileError {
        throw CommandFailure(message: error.description)
    }
}

/// Writes `bytes` to `path` atomically (a failed write leaves the previous file).
/// - Throws: ``CommandFailure`` naming the file and the system's reason.
func writeOutputFile(_ bytes: [UInt8], to path: String) throws {
    do {
        try OutputFiles.write(bytes, to: path)
    } catch let error as TensorFileError {
        throw CommandFailure(message: error.description)
    }
}

/// Refuses an option's value outside `range` (the documented caps are
/// ``InputLimits``), before it reaches any arithmetic or allocation.
/// - Throws: `ValidationError` (exit 64, with the usage): `--batch must be in 1...65536, got 9223372036854775807`.
func checkRange(_ value: Int?, _ range: ClosedRange<Int>, _ option: String) throws {
    guard let value else { return }
    guard range.contains(value) else {
        throw ValidationError("\(option) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
    }
}
