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
        
        Examples:
          alexnet summary --model paper
          alexnet summary --model layers-80sec --input 1,28,28 --json
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var dtypeOption: DTypeOption<SummaryCommand>
    /// The element type of the byte counts.
    var dtype: ElementType { dtypeOption.value }

    @Flag(help: "Print the model spec as JSON (the format --model reads) instead of the table: a start for a custom spec.")
    var json = false

    func run() throws {
        let spec = try modelOptions.resolve()
        if json {
            print(spec.jsonString(), terminator: "")
        } else {
            print(try ModelSummary(spec: spec, elementSize: dtype.size).table(), terminator: "")
        }
    }
}

extension SummaryCommand: DTypeHelp {
    static let dtypeHelp = "Element type for byte counts: f32 or f64."
}
