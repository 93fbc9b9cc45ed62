import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet summary`: a model's layers, shapes, parameters and costs, from its spec alone.
struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Print a model's layers, output shapes, parameters, multiply-adds and tower crossings.",
        discussion: """
        --model is a shipped model's name or a JSON spec file (a path ending in
        .json or containing a '/'; the format is in Docs/models.md). Shipped models:
        \(ModelZoo.names.map { "  \($0): \(ModelZoo.descriptions[$0] ?? "")" }.joined(separator: "\n"))

        Everything is per image and computed from the spec alone: multiply-adds
        count convolutions (outputs*OH*OW*(C/groups)*kh*kw) and linear layers
        (in*out); activation bytes are each layer's output. With two towers the
        table shows the part each tower holds and the bytes that cross between the
        towers before each crossing layer (a groups-1 convolution other than the
        first layer, or a linear layer): each tower sends its half of the layer's
        input, forward, and its partial input gradient, backward.
        """
    )

    @Option(help: "A shipped model's name (\(ModelZoo.names.joined(separator: ", "))) or a JSON spec file.")
    var model: String

    @Option(help: "Towers: 1 or 2 (default: the model's own).")
    var towers: Int?

    @Option(help: "Number of classes (default: the model's own).")
    var classes: Int?

    @Option(help: "Input shape of one image as C,H,W, e.g. 1,28,28 for Fashion-MNIST (default: the model's own).")
    var input: String?

    @Option(help: "Element type for byte counts: f32 or f64.")
    var dtype: String = "f32"

    @Flag(help: "Print the model spec as JSON (the format --model reads) instead of the table: a start for a custom spec.")
    var json = false

    func validate() throws {
        if let towers, towers != 1 && towers != 2 { throw ValidationError("--towers must be 1 or 2, got \(towers)") }
        if let classes, classes < 1 { throw ValidationError("--classes must be at least 1, got \(classes)") }
        guard dtype == "f32" || dtype == "f64" else { throw ValidationError("--dtype must be f32 or f64, got '\(dtype)'") }
        _ = try inputShape()
    }

    func run() throws {
        let spec: ModelSpec
        do {
            if model.hasSuffix(".json") || model.contains("/") {
                spec = try ModelSpec.load(path: model).adapted(classes: classes, towers: towers, inputShape: inputShape())
            } else if ModelZoo.names.contains(model) {
                spec = try ModelZoo.spec(named: model, classes: classes, towers: towers, inputShape: inputShape())
            } else {
                throw CommandFailure(message: "unknown model '\(model)': the shipped models are "
                                     + ModelZoo.names.joined(separator: ", ")
                                     + "; a JSON spec file must be given as a path ending in .json")
            }
        } catch let error as ModelSpecError {
            throw CommandFailure(message: error.description)
        }
        if json {
            print(spec.jsonString(), terminator: "")
        } else {
            print(try ModelSummary(spec: spec, elementSize: dtype == "f64" ? 8 : 4).table(), terminator: "")
        }
    }

    private func inputShape() throws -> Shape? {
        guard let input else { return nil }
        let parts = input.split(separator: ",", omittingEmptySubsequences: false).map {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--input must be three positive integers C,H,W such as 3,32,32, got '\(input)'")
        }
        return Shape(parts.map { $0! })
    }
}

/// A failure to report in one line on standard error, with exit status 1 and no usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
