/// A setting written as text, in run configs and on the command line (`sgd`,
/// `init`, `format`, `mean`, `schedule`): the one place each one's spellings
/// are read, written and listed in errors.
///
/// ``description`` is the text form; ``init(settingText:)`` reads it back.
public protocol SettingValue: CustomStringConvertible, Sendable {
    /// The value `text` spells, or nil when it spells none.
    init?(settingText text: String)
    /// Every accepted spelling, a parameter as a capital (`step:K`), for help and errors.
    static var acceptedForms: [String] { get }
    /// Reads `text` as the setting `key`.
    /// - Throws: ``ConfigurationError`` whose component is `key`, saying what is accepted.
    static func parse(_ text: String, key: String) throws -> Self
}

public extension SettingValue {
    /// The accepted spellings as a phrase: `paper or pytorch`, `auto, cifar10, idx or folder`.
    static var acceptedList: String { spelledAlternatives(acceptedForms) }

    static func parse(_ text: String, key: String) throws -> Self {
        guard let value = Self(settingText: text) else {
            throw ConfigurationError(component: key, problem: "must be \(acceptedList), got '\(text)'")
        }
        return value
    }
}

/// `names` as the phrase errors and help list them in: `paper or pytorch`,
/// `auto, cifar10, idx or folder` (one name alone, as it is).
func spelledAlternatives(_ names: [String]) -> String {
    names.count <= 1 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!
}

/// The named settings: the raw value is the spelling, the cases are every spelling.
public extension SettingValue where Self: RawRepresentable & CaseIterable, RawValue == String {
    init?(settingText text: String) { self.init(rawValue: text) }
    static var acceptedForms: [String] { allCases.map(\.rawValue) }
    var description: String { rawValue }
}

extension SGDForm: SettingValue {}
extension Datasets.Format: SettingValue {}
extension ImagePipeline.MeanSubtraction: SettingValue {}
extension DataSplit: SettingValue {}

extension LearningRateSchedule: SettingValue {
    /// The schedule `text` spells (``init(parsing:)``), or nil.
    public init?(settingText text: String) { try? self.init(parsing: text) }
    /// `constant`, `step:K`, `linear:E`, `plateau:P`.
    public static let acceptedForms = ["constant", "step:K", "linear:E", "plateau:P"]
    /// Reads `text` with ``init(parsing:)``'s message, which says what K, E and P may be.
    public static func parse(_ text: String, key: String) throws -> LearningRateSchedule {
        do {
            return try LearningRateSchedule(parsing: text)
        } catch let error as ConfigurationError {
            throw ConfigurationError(component: key, problem: error.problem)
        }
    }
}

extension Initialisation: SettingValue {
    /// `paper` (N(0, 0.01^2)), `he` (N(0, 2 / fan-in)) or `gaussian:S` (N(0, S^2), S positive).
    public init?(settingText text: String) {
        switch text {
        case "paper": self = .paper
        case "he": self = .he
        default:
            guard text.hasPrefix("gaussian:"), let std = Double(text.dropFirst("gaussian:".count)),
                  std > 0, std.isFinite else { return nil }
            self = .gaussian(std: std)
        }
    }
    /// `paper`, `he`, `gaussian:S`.
    public static let acceptedForms = ["paper", "he", "gaussian:S"]
    /// `paper` for the paper's std of 0.01, `he`, otherwise `gaussian:S`: the form ``init(settingText:)`` reads.
    public var description: String {
        switch self {
        case .he: return "he"
        case .gaussian(let std): return self == .paper ? "paper" : "gaussian:\(std)"
        }
    }
}
