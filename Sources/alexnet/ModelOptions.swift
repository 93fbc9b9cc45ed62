import AlexNetKit
import ArgumentParser
import Foundation

/// `--model NAME`: a shipped model or a JSON spec file, required (the one
/// declaration of the required form; `train` and `eval` have their own defaults).
struct ModelNameOption: ParsableArguments {
    @Option(help: "A shipped model's name (\(ModelZoo.names.joined(separator: ", "))) or a JSON spec file (Docs/models.md).")
    var model: String
}

/// `--towers`, `--classes`: what a command changes on the named model.
struct ModelSizeOptions: ParsableArguments {
    @Option(help: "Towers: 1 or 2 (default: the model's own).")
    var towers: Int?

    @Option(help: "Number of classes (default: the model's own, or the data set's class count in train).")
    var classes: Int?

    func validate() throws {
        if let towers, towers != 1 && towers != 2 { throw ValidationError("--towers must be 1 or 2, got \(towers)") }
        try checkRange(classes, 1...InputLimits.classes, "--classes")
    }
}

/// `--input C,H,W`: one image's shape.
struct InputShapeOption: ParsableArguments {
    @Option(help: ArgumentHelp("Input shape of one image, e.g. 1,28,28 for Fashion-MNIST (default: the model's own; "
                               + "train: the data's image size for the CIFAR-sized nets).", valueName: "C,H,W"),
            transform: { try ImageShape.parse($0) })
    var input: ImageShape?
}

/// `--model`, `--towers`, `--classes`, `--input`: which network a command works on.
/// Shared by every command that builds or describes a model.
struct ModelOptions: ParsableArguments {
    @OptionGroup var name: ModelNameOption
    @OptionGroup var size: ModelSizeOptions
    @OptionGroup var shape: InputShapeOption

    /// The spec named by the options.
    /// - Throws: ``CommandFailure`` with a one-line message for an unknown model or a bad spec file.
    func resolve() throws -> ModelSpec {
        try Self.resolve(model: name.model, towers: size.towers, classes: size.classes, input: shape.input)
    }

    /// The spec `model` names, adapted to the other values where given (nil:
    /// the model's own). `trace`, whose `--input` is a batch, gives the shape as `--input-shape`.
    static func resolve(model: String, towers: Int? = nil, classes: Int? = nil, input: ImageShape? = nil) throws -> ModelSpec {
        let inputShape = input.map { Shape($0.dims) }
        do {
            if model.hasSuffix(".json") || model.contains("/") {
                return try ModelSpec.load(path: model).adapted(classes: classes, towers: towers, inputShape: inputShape)
            } else if ModelZoo.names.contains(model) {
                return try ModelZoo.spec(named: model, classes: classes, towers: towers, inputShape: inputShape)
            }
            throw CommandFailure(message: "unknown model '\(model)': the shipped models are "
                                 + ModelZoo.names.joined(separator: ", ")
                                 + "; a JSON spec file must be given as a path ending in .json")
        } catch let error as ModelSpecError {
            throw CommandFailure(message: error.description)
        }
    }
}

/// `--init`: how weights start when none are loaded (`trace`, `weights init`;
/// `train` takes the run config's default, he, instead).
struct InitialisationOption: ParsableArguments {
    @Option(name: .customLong("init"),
            help: "Initialisation: paper (N(0, 0.01^2)), he (N(0, 2/fan-in)) or gaussian:S (N(0, S^2)).")
    var scheme: Initialisation = .paper
}

/// `--threads N`: the worker threads of one run, one per core unless given.
/// The one declaration of the option in every command where it means that
/// (`bench`, `check`, `data inspect`, `data mean`, `eval`, `predict`,
/// `gradcheck`, `trace`): one help text, one default, one check (a count
/// outside 1...``InputLimits/threads`` exits 64: `--threads must be in
/// 1...1024, got 0`). The commands whose `--threads` means something else
/// declare their own, sharing ``summary`` and ``check(_:)``: `train` (nil: the
/// run config's threads, else one per core), `experiment` (per run; default the
/// cores divided by `--jobs`) and `data bench` (a list of counts to sweep).
struct WorkerThreadsOption: ParsableArguments {
    /// The help's first sentence, the same in every command with a `--threads`.
    static let summary = "Worker threads (results are bitwise identical for any count)."

    /// As given; nil: one per core. Optional so that the help says "one per
    /// core" rather than this machine's count; read ``count``.
    @Option(help: "\(summary) (default: one per core)")
    var threads: Int?

    /// The worker count of the run: `--threads`, or one per core.
    var count: Int { threads ?? Self.perCore }

    /// One worker per core, the default.
    static var perCore: Int { ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws { try Self.check(threads) }

    /// The one check of a `--threads` value (nil passes).
    /// - Throws: `ValidationError` (exit 64): `--threads must be in 1...1024, got 0`.
    static func check(_ value: Int?) throws { try checkRange(value, 1...InputLimits.threads, "--threads") }
}

/// `C,H,W`: one image's shape as three positive integers. ``parse(_:)`` is
/// the one parser of every `--input` and `--input-shape` option: ArgumentParser
/// refuses anything else naming the option and the form (exit 64).
struct ImageShape: Equatable {
    /// `[C, H, W]`.
    var dims: [Int]

    /// The option's transform.
    /// - Throws: ``Refusal`` saying what the form is.
    static func parse(_ text: String) throws -> ImageShape {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw Refusal(description: "must be three positive integers C,H,W such as 3,32,32")
        }
        return ImageShape(dims: parts.map { $0! })
    }

    /// An option value's refusal, as ArgumentParser appends it to "The value '...' is invalid for '--input <C,H,W>'".
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }
}

/// A failure to report in one line on standard error, with exit status 1 and no usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `--dtype f32|f64`: a network's element type, spelt as trace metadata and
/// reports spell it (``DType/traceSpelling``, the one place of the spelling).
enum ElementType: ExpressibleByArgument, CaseIterable {
    case f32, f64

    /// The file element type.
    var dtype: DType { self == .f32 ? .float32 : .float64 }
    /// Bytes per element.
    var size: Int { dtype.itemSize }
    /// `f32` or `f64`.
    var spelling: String { dtype.traceSpelling }

    init?(argument: String) {
        guard let match = Self.allCases.first(where: { $0.spelling == argument }) else { return nil }
        self = match
    }
    static var allValueStrings: [String] { allCases.map(\.spelling) }
    var defaultValueDescription: String { spelling }
}
