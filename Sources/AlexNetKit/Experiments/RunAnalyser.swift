import Foundation

/// What the experiment runner does with a finished run's final weights
/// (`checkpoint/last.safetensors` in the run's folder): it evaluates the test
/// split once more for the confusion matrix, and draws the run's pictures
/// into its folder:
/// - `confusion.png`: ``ConfusionMatrixPicture`` of the test split;
/// - `filters.png`: conv1's kernels per tower (``FilterGrid``, like the
///   paper's Figure 3), with the colourfulness per tower in the analysis;
/// - `neighbours.png` (when asked): like Figure 4, the first test image of
///   each class and the training images closest to it by Euclidean distance
///   between the inputs of the last linear layer (the last hidden layer's
///   output, in inference mode).
public enum RunAnalyser {
    /// Training images shown per query in `neighbours.png`.
    public static let neighbourCount = 6

    /// Analyses the run in `folder` and writes `analysis.json` and the pictures there.
    /// - Parameters:
    ///   - threads: worker threads for the evaluation passes.
    ///   - neighbours: also draw `neighbours.png` (one pass over the training split).
    /// - Throws: checkpoint, data and file errors.
    @discardableResult
    public static func analyse(folder: String, threads: Int, neighbours: Bool,
                               progress: (String) -> Void = { _ in }) throws -> RunAnalysis {
        let checkpointPath = (folder as NSString).appendingPathComponent(ExperimentRun.checkpointFolder + "/last.safetensors")
        let checkpoint = try TrainingCheckpoint.read(path: checkpointPath)
        let model = try InferenceModel(checkpoint: checkpoint, source: checkpointPath, threads: threads)
        let data = try model.data()
        func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

        progress("evaluating \(data.testSet.count) test images for the confusion matrix")
        let classes = data.classNames.count
        let test = try Evaluator.evaluate(source: data.test, classes: classes) { try model.scores($0) }
        var confusion: [Int] = []
        for actual in 0..<classes { for predicted in 0..<classes { confusion.append(test.confusion(actual: actual, predicted: predicted)) } }
        var pictures: [String] = []
        try PNG.write(try ConfusionMatrixPicture.render(counts: confusion, classNames: data.classNames,
                                                        title: "Test confusion (rows: actual, columns: predicted)"),
                      to: path("confusion.png"))
        pictures.append("confusion.png")

        var colourfulness: [Double]?
        if let (name, weights) = firstConvolutionWeights(model.network) {
            let towers = model.network.spec.towers
            // A grouped first convolution sees only part of the channels per kernel; draw what each kernel sees.
            if weights.shape[1] == 1 || weights.shape[1] == 3, weights.shape[0] % towers == 0 {
                try PNG.write(try FilterGrid.render(weights: weights, towers: towers, scale: weights.shape[2] <= 7 ? 6 : 4),
                              to: path("filters.png"))
                pictures.append("filters.png")
                colourfulness = try FilterGrid.colourfulness(weights: weights, towers: towers)
            } else {
                progress("note: \(name) has \(weights.shape[1]) input channels per kernel; no filter picture")
            }
        }

        if neighbours {
            progress("finding nearest neighbours among \(data.trainSet.count) training images")
            let picture = try neighbourPicture(model: model, data: data, threads: threads)
            try PNG.write(picture, to: path("neighbours.png"))
            pictures.append("neighbours.png")
        }

        let analysis = RunAnalysis(classNames: data.classNames, confusion: confusion, testTop1: test.top1Error,
                                   colourfulness: colourfulness, pictures: pictures)
        try OutputFiles.write(Array(analysis.jsonString().utf8), to: path(ExperimentRun.analysisFile))
        return analysis
    }

    /// The first convolution's weight `[O, C / groups, KH, KW]` and its name.
    static func firstConvolutionWeights(_ network: Network<Float>) -> (String, Tensor<Float>)? {
        guard let index = network.spec.layers.firstIndex(where: { if case .convolution = $0.kind { return true } else { return false } })
        else { return nil }
        let name = network.spec.layers[index].name
        return network.namedParameters.first { $0.name == name + ".weight" }.map { (name, $0.parameter.value) }
    }

    /// The features the neighbours are found by: the last linear layer's
    /// input `[N, F]` for a batch of network inputs.
    static func features(_ model: InferenceModel, _ images: Tensor<Float>) throws -> [[Float]] {
        _ = try model.scores(images)
        let activations = model.network.activations
        let hidden = activations[activations.count - 2]
        let n = hidden.shape[0], f = hidden.count / max(1, n)
        return (0..<n).map { Array(hidden.storage[($0 * f)..<(($0 + 1) * f)]) }
    }

    private static func neighbourPicture(model: InferenceModel, data: TrainingData, threads: Int) throws -> RGBImage {
        // Queries: the first test image of each class (at most ten), in class order.
        var queries: [Int] = []
        let labels = data.testSet.labels
        for c in 0..<min(10, data.classNames.count) { if let i = labels.firstIndex(of: c) { queries.append(i) } }
        let queryInputs = try queries.map { try data.evaluationPipeline.apply(try data.testSet.image(at: $0), index: $0, epoch: 0,
                                                                              seed: 0, statistics: data.statistics) }
        let stacked = try TrainingModel.stackRows(queryInputs.map { try $0.reshaped(Shape([1] + $0.shape.dims)) })
        let queryFeatures = try features(model, stacked)

        // One pass over the training split, keeping each query's closest images.
        var best = Array(repeating: [(distance: Float, index: Int)](), count: queries.count)
        let loader = try BatchLoader(dataset: data.trainSet, pipeline: data.evaluationPipeline, statistics: data.statistics,
                                     options: BatchOptions(batchSize: 256, shuffle: false, dropLast: false, prefetch: 0,
                                                           threads: 1, seed: 0))
        var offset = 0
        let batches = BatchIterator(source: loader, epoch: 0, prefetch: 1)
        while let batch = try batches.next() {
            let trainFeatures = try features(model, batch.images)
            for (q, query) in queryFeatures.enumerated() {
                for (j, feature) in trainFeatures.enumerated() {
                    var sum: Float = 0
                    for k in 0..<feature.count { let d = feature[k] - query[k]; sum += d * d }
                    best[q].append((sum.squareRoot(), offset + j))
                }
                best[q].sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.index < $1.index) }
                if best[q].count > neighbourCount { best[q].removeLast(best[q].count - neighbourCount) }
            }
            offset += trainFeatures.count
        }
        var rows: [[Tensor<Float>]] = []
        var captions: [String] = []
        var imageCaptions: [[String]] = []
        for (q, queryIndex) in queries.enumerated() {
            let neighbours = try best[q].map { try displayImage(data, data.trainSet, $0.index) }
            rows.append([try displayImage(data, data.testSet, queryIndex)] + neighbours)
            captions.append(data.classNames[labels[queryIndex]])
            imageCaptions.append(["query"] + best[q].map { data.classNames[data.trainSet.labels[$0.index]] })
        }
        return try NeighbourPicture.render(rows: rows, captions: captions, imageCaptions: imageCaptions,
                                           scale: (data.testSet.storedSize?.height ?? 32) <= 32 ? 3 : 1)
    }

    /// An example as stored (`[C, H, W]` in 0...255); when sizes vary (image
    /// folders), resized as the run prepares them and centre-cropped to the input.
    private static func displayImage(_ data: TrainingData, _ dataset: any ImageDataset, _ index: Int) throws -> Tensor<Float> {
        let image = try dataset.image(at: index)
        guard dataset.storedSize == nil else { return image }
        let input = data.spec.inputShape
        let pipeline = ImagePipeline(resizeShorterSide: data.configuration.resize, meanSubtraction: .none,
                                     crop: .centre(height: input[1], width: input[2]))
        return try pipeline.apply(image, index: index, epoch: 0, seed: 0, statistics: nil)
    }
}
