import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet weights`: make, convert and inspect weight files.
struct WeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "Make, convert and inspect weight files (.safetensors, .npz).",
        discussion: """
        Names are the spec's (`conv1.weight`) or PyTorch nn.Sequential positions
        (`features.0.weight`, `classifier.1.weight`, as torchvision's AlexNet names
        them); two-tower models can also be laid out per tower (`tower0.conv3.weight`
        holds tower 0's rows). Loading detects both. See Docs/formats.md.

        Examples:
          alexnet weights init --model paper -o paper.safetensors
          alexnet weights inspect paper.safetensors --model paper
        """,
        subcommands: [WeightsInitCommand.self, WeightsConvertCommand.self, WeightsInspectCommand.self]
    )
}

/// How `weights init` and `weights convert` write their file: where, in
/// which names, layout and element type, and whether an existing file may be
/// replaced. One declaration, so both commands spell and check them alike.
struct WeightsOutputOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "The file to write: .safetensors or .npz.")
    var output: String

    @OptionGroup var dtypeOption: DTypeOption<WeightsOutputOptions>
    /// The element type written.
    var dtype: ElementType { dtypeOption.value }

    @Option(help: "Parameter names: native or pytorch.")
    var names: ParameterNaming = .native

    @Option(help: "Layout: grouped, or towers (per-tower tensors; two-tower models only).")
    var layout: WeightLayout = .grouped

    @OptionGroup var force: ForceFlag<WeightsOutputOptions>

    /// Refuses to replace an existing file without --force, so nothing already written is lost.
    func checkOutput() throws {
        try checkOutputFile(output, option: "--output", force: force.isSet)
    }

    /// Writes `network`'s parameters in the names and layout asked for, with `metadata`, and says what was written.
    /// - Throws: ``WeightsError`` or ``TensorFileError`` naming the file.
    func write<T: TensorElement>(_ network: Network<T>, metadata: [String: String]) throws {
        let tensors = try StateDict.export(network, naming: names, layout: layout)
        try StateDict.write(tensors, to: output, metadata: metadata)
        let count = network.namedParameters.reduce(0) { $0 + $1.parameter.value.count }
        print("wrote \(output): \(tensors.count) tensors, \(count) parameters, \(T.dtypeName), \(names.rawValue) names, \(layout.rawValue) layout")
    }
}

extension WeightsOutputOptions: DTypeHelp {
    static let dtypeHelp = "Element type to write: f32 or f64 (f64 weights written as f32 round to nearest)."
}

extension WeightsOutputOptions: ForceHelp {
    static let forceHelp = "Replace the output file if it exists."
}

extension ParameterNaming: ExpressibleByArgument {}
extension WeightLayout: ExpressibleByArgument {}

/// `alexnet weights init`: seeded weights as the paper initialises them.
struct WeightsInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write freshly initialised weights: N(0, 0.01^2) (paper) or He, biases as the spec says.",
        discussion: """
        Every weight is a pure function of --seed and its position (Docs/conventions.md), so two runs agree bit for bit.

        Examples:
          alexnet weights init --model paper -o paper.safetensors
          alexnet weights init --model paper --names pytorch --init he -o paper-torch.safetensors
        """
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var outputOptions: WeightsOutputOptions

    @Option(help: "Seed of the weights.")
    var seed: UInt64 = 0

    @OptionGroup var initialisation: InitialisationOption

    func run() throws {
        let spec = try modelOptions.resolve()
        try outputOptions.checkOutput()
        let scheme = initialisation.scheme
        let metadata = ["model": spec.name, "seed": "\(seed)", "initialisation": scheme.description]
        switch outputOptions.dtype {
        case .f32: try outputOptions.write(try Network<Float>(spec: spec, seed: seed, initialisation: scheme), metadata: metadata)
        case .f64: try outputOptions.write(try Network<Double>(spec: spec, seed: seed, initialisation: scheme), metadata: metadata)
        }
    }
}

/// `alexnet weights convert`: between formats, names and layouts.
struct WeightsConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Read weights for a model (any supported names and layout) and write them in another form.",
        discussion: """
        Every tensor is checked against the model first: missing, unexpected and mis-shaped parameters are named.

        Examples:
          alexnet weights convert fm/last.safetensors --model layers-80sec --input 1,28,28 --names pytorch -o fm-torch.npz
        """
    )

    @Argument(help: "The weights file to read (.safetensors or .npz).")
    var input: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var outputOptions: WeightsOutputOptions

    func run() throws {
        let spec = try modelOptions.resolve()
        try outputOptions.checkOutput()
        guard (input as NSString).standardizingPath != (outputOptions.output as NSString).standardizingPath else {
            throw CommandFailure(message: "the output must be another file than the input")
        }
        let tensors = try readWeights(input)
        switch outputOptions.dtype {
        case .f32: try convert(tensors, Network<Float>(spec: spec))
        case .f64: try convert(tensors, Network<Double>(spec: spec))
        }
    }

    private func convert<T: TensorElement>(_ tensors: [StoredTensor], _ network: Network<T>) throws {
        let found = try StateDict.load(tensors, into: network, source: input)
        print("read \(input): \(found.naming.rawValue) names, \(found.layout.rawValue) layout")
        try outputOptions.write(network, metadata: ["model": network.spec.name, "converted_from": (input as NSString).lastPathComponent])
    }
}

/// `alexnet weights inspect`: names, shapes, dtypes and statistics.
struct WeightsInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List every tensor of a weights file with its dtype, shape and statistics.",
        discussion: """
        With --model, also check that the file loads into that model and say which names and layout it uses.

        Examples:
          alexnet weights inspect paper.safetensors --model paper
          alexnet weights inspect fm/best.safetensors
        """
    )

    @Argument(help: "The file to inspect (.safetensors or .npz).")
    var file: String

    @Option(help: "A model to check the file against (name or JSON spec).")
    var model: String?

    func run() throws {
        let tensors = try readWeights(file)
        let width = max(6, tensors.map(\.name.count).max() ?? 0)
        print("name".padding(toLength: width, withPad: " ", startingAt: 0)
              + "  dtype    shape                 count         min          max          mean         std       non-finite")
        var total = 0
        for tensor in tensors {
            total += tensor.shape.count
            let line = tensor.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + tensor.dtype.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + " "
                + tensor.shape.description.padding(toLength: 20, withPad: " ", startingAt: 0)
                + String(format: " %10d", tensor.shape.count)
            if tensor.dtype.isFloatingPoint, let values = try? tensor.floatTensor(as: Double.self).storage {
                let finite = values.filter(\.isFinite)
                let mean = finite.reduce(0, +) / Double(max(1, finite.count))
                let std = (finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, finite.count))).squareRoot()
                print(line + String(format: "  %11.4e  %11.4e  %11.4e  %11.4e  %d",
                                    finite.min() ?? .nan, finite.max() ?? .nan, mean, std, values.count - finite.count))
            } else {
                print(line + "  (integer)")
            }
        }
        print("\(tensors.count) tensors, \(total) elements")
        if let model {
            let spec = try ModelOptions.resolve(model: model)
            let found = try StateDict.load(tensors, into: Network<Double>(spec: spec), source: file)
            print("loads into \(spec.name): \(found.naming.rawValue) names, \(found.layout.rawValue) layout")
        }
    }
}

/// Reads a weights file, turning file errors into one-line failures.
func readWeights(_ path: String) throws -> [StoredTensor] {
    guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure(message: "\(path): no such file") }
    return try StateDict.read(path: path)
}
