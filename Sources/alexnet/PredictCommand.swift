import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet predict`: the most probable classes of JPEG images.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Print the top-5 classes of JPEG images, with probabilities, under trained weights.",
        discussion: """
        Each image is converted to the model's channels (RGB to grey by luma, grey to RGB by \
        copying), its shorter side scaled to the model's input (or the run's --resize) keeping the \
        centre square, and put through the run's evaluation pipeline (mean, scale, centre crop). \
        Class names come from the checkpoint (the data set's), or from --labels FILE (one per line). \
        A model trained on Fashion-MNIST (grey garments on black, 28x28) says little about \
        photographs: on those this checks the pipeline, not the classifier.
        
        Examples:
          alexnet predict photo.jpg --weights fm/best.safetensors
        """
    )

    @Argument(help: "JPEG files.")
    var images: [String]

    @OptionGroup var source: TrainedWeightsOptions

    @Option(help: "A text file with one class name per line.")
    var labels: String?

    @Option(help: "How many classes to print per image.")
    var top: Int = 5

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one JPEG file") }
        guard top >= 1 else { throw ValidationError("--top must be at least 1, got \(top)") }
    }

    func run() throws {
        let model = try source.load(progress: { print($0) })
        var names = model.classNames
        if let labels {
            guard let text = try? String(contentsOfFile: labels, encoding: .utf8) else {
                throw CommandFailure(message: "\(labels): no such file, or not UTF-8 text")
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let trimmed = Array(lines.reversed().drop(while: \.isEmpty).reversed())
            guard trimmed.count == names.count else {
                throw CommandFailure(message: "\(labels): \(trimmed.count) class names, the model has \(names.count) classes")
            }
            names = trimmed
        }
        var inputs: [Tensor<Float>] = []
        for path in images {
            guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure(message: "\(path): no such file") }
            inputs.append(try model.input(for: try JPEG.decodePlanar([UInt8](data), source: path)))
        }
        let shape = model.network.spec.inputShape
        let batch = try Tensor<Float>(shape: Shape([inputs.count] + shape.dims), values: inputs.flatMap(\.storage))
        let ranked = try model.topClasses(batch, k: min(top, names.count))
        for (path, classes) in zip(images, ranked) {
            print(path)
            for (rank, entry) in classes.enumerated() {
                let name = names[entry.index].padding(toLength: max(20, names[entry.index].count), withPad: " ", startingAt: 0)
                print("  \(rank + 1). " + name + String(format: " %7.3f%%", 100 * entry.probability))
            }
        }
    }
}
