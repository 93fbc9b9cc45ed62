import AlexNetKit
import ArgumentParser
import Foundation

/// The one place the command line turns errors into messages and exit codes:
/// - the library's errors (``AlexNetError``) and ``CommandFailure``: their
///   one-line description on standard error after `Error: `, exit 1; a run
///   setting's ``ConfigurationError`` is named as the option spells it
///   (`--batch must be in 1...65536, got 0`);
/// - ArgumentParser's own (usage errors exit 64 with the usage, `--help`,
///   `--version`, `ExitCode`): as ArgumentParser reports them.
///
/// `alexnet check` catches everything itself first, because there exit 1 means
/// "mismatch" and any other failure is 2, "the trace is unusable".
enum CommandErrors {
    /// The message for a library error.
    static func message(_ error: AlexNetError) -> String {
        if let error = error as? ConfigurationError, TrainingConfiguration.keys.contains(error.component) {
            return "--\(error.component.replacingOccurrences(of: "_", with: "-")) \(error.problem)"
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
