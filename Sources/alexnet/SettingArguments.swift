import AlexNetKit
import ArgumentParser

// The library's typed settings (``SettingValue``) as option values: ArgumentParser
// reads them, lists their spellings in the help ("values: ...") and refuses any
// other with the option's name and the accepted spellings (exit 64).

extension SGDForm: ExpressibleByArgument {}
extension Datasets.Format: ExpressibleByArgument {}
extension ImagePipeline.MeanSubtraction: ExpressibleByArgument {}
extension DataSplit: ExpressibleByArgument {}
extension PassMode: ExpressibleByArgument {}

extension LearningRateSchedule: ExpressibleByArgument {
    public init?(argument: String) { self.init(settingText: argument) }
    public static var allValueStrings: [String] { acceptedForms }
    public var defaultValueDescription: String { description }
    // `step:K` is a pattern, not a word to complete.
    public static var defaultCompletionKind: CompletionKind { .default }
}

extension Initialisation: ExpressibleByArgument {
    public init?(argument: String) { self.init(settingText: argument) }
    public static var allValueStrings: [String] { acceptedForms }
    public var defaultValueDescription: String { description }
    // `gaussian:S` is a pattern, not a word to complete.
    public static var defaultCompletionKind: CompletionKind { .default }
}

/// Help for a `train` option whose default is the library's
/// (``TrainingConfiguration``'s), so the help never restates a default by hand.
func trainingHelp<T: CustomStringConvertible>(_ text: String, default path: KeyPath<TrainingConfiguration, T>) -> ArgumentHelp {
    ArgumentHelp("\(text) (default: \(TrainingConfiguration()[keyPath: path]))")
}

/// ``trainingHelp(_:default:)`` for a setting whose default may be nil (`none`).
func trainingHelp<T: CustomStringConvertible>(_ text: String, default path: KeyPath<TrainingConfiguration, T?>) -> ArgumentHelp {
    ArgumentHelp("\(text) (default: \(TrainingConfiguration()[keyPath: path].map(\.description) ?? "none"))")
}
