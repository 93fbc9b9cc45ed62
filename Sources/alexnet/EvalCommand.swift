import AlexNetKit
import ArgumentParser
import Foundation

/// Where trained weights come from, shared by `eval` and `predict`.
struct TrainedWeightsOptions: ParsableArguments {
    @Option(help: "A training checkpoint (DIR/best.safetensors, DIR/last.safetensors) or plain weights (.safetensors, .npz).")
    var weights: String

    @Option(help: "Plain weights only: the model (name or JSON spec); a checkpoint names its own.")
    var model: String?

    @Option(help: "The data set (default: the checkpoint's, or /usr/share/datasets/fashion-mnist).")
    var data: String?

    @OptionGroup var workers: WorkerThreadsOption

    /// Loads the weights: a checkpoint as it is, plain weights into `--model` with the default pipeline on `--data`.
    func load(progress: (String) -> Void) throws -> InferenceModel {
        guard FileManager.default.fileExists(atPath: weights) else { throw CommandFailure(message: "\(weights): no such file") }
        if weights.lowercased().hasSuffix(".safetensors") {
            let (tensors, metadata) = try Safetensors.read(path: weights)
            if TrainingCheckpoint.isCheckpoint(metadata: metadata) {
                if model != nil {
                    throw CommandFailure(message: "\(weights) is a training checkpoint, which names its own model; leave out --model")
                }
                let checkpoint = try TrainingCheckpoint.decode(tensors: tensors, metadata: metadata, source: weights)
                return try InferenceModel(checkpoint: checkpoint, source: weights, threads: workers.count)
            }
            return try loadPlain(tensors, progress: progress)
        }
        return try loadPlain(try StateDict.read(path: weights), progress: progress)
    }

    private func loadPlain(_ tensors: [StoredTensor], progress: (String) -> Void) throws -> InferenceModel {
        guard let model else {
            throw CommandFailure(message: "\(weights) holds plain weights: name the model with --model (a training checkpoint names its own)")
        }
        var config = TrainingConfiguration()
        config.model = model
        config.threads = workers.count
        if let data { config.data = data }
        return try InferenceModel(weights: tensors, source: weights, configuration: config, progress: progress)
    }
}

/// `alexnet eval`: accuracy of trained weights on a data set.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate trained weights: top-1 and top-5 error, loss, per-class accuracy, confusion matrix.",
        discussion: """
        A training checkpoint carries its model, class names, data statistics and pipeline, so \
        `alexnet eval --weights DIR/best.safetensors` needs nothing else (--data if the data set \
        moved). Plain weights need --model and are evaluated with the default pipeline of \
        `alexnet train` (statistics computed from the training split). With --ten-crop each image \
        is also scored as the average softmax of its four corner and centre crops and their \
        mirror images (of the image padded as the training crops were).
        
        Examples:
          alexnet eval --weights fm/best.safetensors
          alexnet eval --weights fm/last.safetensors --ten-crop
        """
    )

    @OptionGroup var source: TrainedWeightsOptions

    @Option(help: "Which split.")
    var split: DataSplit = .test

    @Flag(help: "Also evaluate with ten crops per image.")
    var tenCrop = false

    @Option(help: "Images per batch (default: the run's).")
    var batch: Int?

    func validate() throws {
        try checkRange(batch, 1...InputLimits.batch, "--batch")
    }

    func run() throws {
        let which = split
        let model = try source.load(progress: { print($0) })
        let data = try model.data(at: source.data, progress: { print($0) })
        let dataset = which == .test ? data.testSet : data.trainSet
        let loader = try BatchLoader(dataset: dataset, pipeline: data.evaluationPipeline, statistics: data.statistics,
                                     options: BatchOptions(batchSize: batch ?? data.configuration.batch, shuffle: false, prefetch: 0))
        let spec = model.network.spec
        print("model \(spec.name) \(spec.inputShape), \(spec.towers) tower(s); \(dataset.count) \(which) images of \(data.configuration.data)"
              + (model.progress.map { ", checkpoint after \($0.step) steps" } ?? ""))
        let warn: ([DataWarning]) -> Void = { for warning in $0 { print("warning: skipped \(warning)") } }
        let one = try Evaluator.evaluate(source: loader, classes: data.classNames.count, skipped: warn) { try model.scores($0) }
        print(String(format: "one crop:  top-1 error %.2f%% (accuracy %.4f), top-5 error %.2f%%, loss %.4f",
                     100 * one.top1Error, 1 - one.top1Error, 100 * one.top5Error, one.loss))
        if tenCrop {
            let ten = try Evaluator.evaluateTenCrop(source: try data.tenCropLoader(dataset), classes: data.classNames.count,
                                                    geometry: data.tenCrop, skipped: warn) { try model.scores($0) }
            print(String(format: "ten crops: top-1 error %.2f%% (accuracy %.4f), top-5 error %.2f%%, loss %.4f",
                         100 * ten.top1Error, 1 - ten.top1Error, 100 * ten.top5Error, ten.loss))
        }
        print(one.report(classNames: data.classNames), terminator: "")
    }
}
