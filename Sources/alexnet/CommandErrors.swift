import AlexNetKit
import ArgumentParser
import Foundation

/// The one place the command line turns errors into messages and exit codes:
/// - the library's errors (``AlexNetError``) and ``CommandFailure``: their
///   one-line description on standard error after `Error: `, exit 1; a run
///   setting's ``ConfigurationError`` is named as the option spells it
///   (`--batch must be in 1...65536, got 0`);
/// - ArgumentParser's own (usage errors exit 64 with the usage, `--help`,
///   `--version`, `ExitCode`): as ArgumentParser reports them. Every bad
///   option value is one of these: the typed settings fail to parse, and the
///   commands' `validate()` throw `ValidationError` for the rest, so a bad
///   value exits 64 naming the option in every command (Docs/training.md).
///
/// `alexnet check` catches everything itself first, because there exit 1 means
/// "mismatch" and any other failure is 2, "the trace is unusable".
enum CommandErrors {
    /// The message for a library error.
    static func message(_ error: AlexNetError) -> String {
        // `model_changes.lrn` is the switch `lrn` of `--model-changes`.
        if let error = error as? ConfigurationError,
           case let parts = error.component.split(separator: ".", maxSplits: 1).map(String.init),
           let key = parts.first, TrainingConfiguration.keys.contains(key) {
            return "--\(key.replacingOccurrences(of: "_", with: "-")) " + (parts.count > 1 ? parts[1] + " " : "") + error.problem
        }
        return error.description
    }

    /// Reports `error` and ends the process with its exit code.
    static func exit(with error: Error) -> Never {
        let text: String
        switch error {
        case let error as AlexNetError: text = message(error)
        case let error as CommandFailure: text = error.message
        default: AlexNetTool.exit(withError: error)
        }
        fflush(stdout)
        FileHandle.standardError.write(Data(("Error: " + text + "\n").utf8))
        Foundation.exit(1)
    }
}
