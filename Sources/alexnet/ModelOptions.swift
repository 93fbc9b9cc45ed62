import AlexNetKit
import ArgumentParser
import Foundation

/// `--model`, `--towers`, `--classes`, `--input`: which network a command works on.
/// Shared by every command that builds or describes a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "A shipped model's name (\(ModelZoo.names.joined(separator: ", "))) or a JSON spec file (Docs/models.md).")
    var model: String

    @Option(help: "Towers: 1 or 2 (default: the model's own).")
    var towers: Int?

    @Option(help: "Number of classes (default: the model's own).")
    var classes: Int?

    @Option(help: "Input shape of one image as C,H,W, e.g. 1,28,28 for Fashion-MNIST (default: the model's own).")
    var input: String?

    func validate() throws {
        if let towers, towers != 1 && towers != 2 { throw ValidationError("--towers must be 1 or 2, got \(towers)") }
        try checkRange(classes, 1...InputLimits.classes, "--classes")
        _ = try inputShape()
    }

    /// The spec named by the options.
    /// - Throws: ``CommandFailure`` with a one-line message for an unknown model or a bad spec file.
    func resolve() throws -> ModelSpec {
        do {
            if model.hasSuffix(".json") || model.contains("/") {
                return try ModelSpec.load(path: model).adapted(classes: classes, towers: towers, inputShape: inputShape())
            } else if ModelZoo.names.contains(model) {
                return try ModelZoo.spec(named: model, classes: classes, towers: towers, inputShape: inputShape())
            }
            throw CommandFailure(message: "unknown model '\(model)': the shipped models are "
                                 + ModelZoo.names.joined(separator: ", ")
                                 + "; a JSON spec file must be given as a path ending in .json")
        } catch let error as ModelSpecError {
            throw CommandFailure(message: error.description)
        }
    }

    private func inputShape() throws -> Shape? {
        guard let input else { return nil }
        guard let dims = parseImageShape(input) else {
            throw ValidationError("--input must be three positive integers C,H,W such as 3,32,32, got '\(input)'")
        }
        return Shape(dims)
    }
}

/// A failure to report in one line on standard error, with exit status 1 and no usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `--dtype f32|f64`.
enum ElementType: String, ExpressibleByArgument, CaseIterable {
    case f32, f64
    var size: Int { self == .f32 ? 4 : 8 }
}
