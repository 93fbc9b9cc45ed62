import Foundation

/// Accuracy figures over a set of images: loss, top-1 and top-5 error,
/// per-class accuracy and the confusion matrix.
///
/// - The loss of an image is `-log p[label]` in `Double`, with `p` the softmax
///   of its logits (``add(logits:labels:)``: `logsumexp(z) - z[label]`) or the
///   given probabilities (``add(probabilities:labels:)``, e.g. ten crops averaged).
/// - Top-k follows ``SoftmaxCrossEntropy/topKCorrect(logits:labels:k:)``: ties
///   go to the lower class index, a NaN score counts as wrong.
/// - The predicted class (confusion matrix) is the top-1 class by the same rule.
public struct EvaluationResult: Equatable, Sendable {
    /// Number of classes.
    public let classes: Int
    /// Images counted.
    public private(set) var count = 0
    /// Sum of the images' losses, added in image order.
    public private(set) var lossSum = 0.0
    /// Images whose label is the top-1 prediction.
    public private(set) var top1Correct = 0
    /// Images whose label is among the top 5 predictions (top K when K < 5).
    public private(set) var top5Correct = 0
    /// `confusion[t * classes + p]`: images of true class `t` predicted as `p` (row-major `[classes, classes]`).
    public private(set) var confusion: [Int]

    /// An empty result for `classes` classes.
    public init(classes: Int) {
        self.classes = classes
        self.confusion = [Int](repeating: 0, count: classes * classes)
    }

    /// Mean loss per image (NaN when nothing was counted).
    public var loss: Double { count > 0 ? lossSum / Double(count) : .nan }
    /// Fraction of images whose label is not the top-1 prediction.
    public var top1Error: Double { count > 0 ? Double(count - top1Correct) / Double(count) : .nan }
    /// Fraction of images whose label is not among the top 5 predictions.
    public var top5Error: Double { count > 0 ? Double(count - top5Correct) / Double(count) : .nan }
    /// Per true class, the fraction predicted correctly; nil for a class with no images.
    public var perClassAccuracy: [Double?] {
        (0..<classes).map { t in
            let row = confusion[(t * classes)..<((t + 1) * classes)].reduce(0, +)
            return row > 0 ? Double(confusion[t * classes + t]) / Double(row) : nil
        }
    }

    /// The confusion matrix entry for true class `actual` predicted as `predicted`.
    public func confusion(actual: Int, predicted: Int) -> Int { confusion[actual * classes + predicted] }

    /// Counts a batch from its class scores.
    /// - Parameters:
    ///   - logits: `[N, classes]`.
    ///   - labels: N class indices.
    /// - Throws: ``ShapeError`` or ``ConfigurationError`` for shapes or labels that do not fit.
    public mutating func add(logits: Tensor<Float>, labels: [Int]) throws {
        try check(logits, labels)
        let k = classes
        logits.withUnsafeBufferPointer { z in
            for (n, label) in labels.enumerated() {
                let row = z.baseAddress! + n * k
                var largest = -Double.infinity
                for j in 0..<k where Double(row[j]) > largest || row[j].isNaN { largest = Double(row[j]) }
                var sum = 0.0
                for j in 0..<k { sum += Foundation.exp(Double(row[j]) - largest) }
                lossSum += Foundation.log(sum) + largest - Double(row[label])
                record(row: row, label: label)
            }
        }
        top1Correct += SoftmaxCrossEntropy.topKCorrect(logits: logits, labels: labels, k: 1)
        top5Correct += SoftmaxCrossEntropy.topKCorrect(logits: logits, labels: labels, k: 5)
        count += labels.count
    }

    /// Counts a batch from class probabilities (ten crops averaged, say).
    /// - Parameters:
    ///   - probabilities: `[N, classes]`, rows summing to 1.
    ///   - labels: N class indices.
    public mutating func add(probabilities: Tensor<Float>, labels: [Int]) throws {
        try check(probabilities, labels)
        let k = classes
        probabilities.withUnsafeBufferPointer { p in
            for (n, label) in labels.enumerated() {
                let row = p.baseAddress! + n * k
                lossSum -= Foundation.log(Double(row[label]))
                record(row: row, label: label)
            }
        }
        top1Correct += SoftmaxCrossEntropy.topKCorrect(logits: probabilities, labels: labels, k: 1)
        top5Correct += SoftmaxCrossEntropy.topKCorrect(logits: probabilities, labels: labels, k: 5)
        count += labels.count
    }

    /// The top-1 class of a row of scores: the largest, the lower index on ties
    /// (the first NaN when the row holds one).
    public static func predictedClass(_ row: UnsafePointer<Float>, classes: Int) -> Int {
        var best = 0
        for j in 0..<classes {
            if row[j].isNaN { return j }
            if row[j] > row[best] { best = j }
        }
        return best
    }

    private mutating func record(row: UnsafePointer<Float>, label: Int) {
        confusion[label * classes + Self.predictedClass(row, classes: classes)] += 1
    }

    private func check(_ scores: Tensor<Float>, _ labels: [Int]) throws {
        try scores.requireShape([labels.count, classes], operation: "evaluation", argument: "scores")
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw ConfigurationError(component: "evaluation", problem: "label \(labels[bad]) of image \(bad) is outside 0..<\(classes)")
        }
    }

    /// The per-class accuracy and the confusion matrix as aligned text: one row
    /// per true class, one column per predicted class.
    /// - Parameter classNames: one per class (shortened to fit the row labels).
    public func report(classNames: [String]) -> String {
        let names = (0..<classes).map { $0 < classNames.count ? classNames[$0] : "class \($0)" }
        let width = min(16, max(5, names.map(\.count).max() ?? 5))
        func label(_ s: String) -> String {
            let cut = s.count > width ? String(s.prefix(width - 1)) + "~" : s
            return cut.padding(toLength: width, withPad: " ", startingAt: 0)
        }
        let cell = max(5, String(confusion.max() ?? 0).count + 1)
        func right(_ s: String) -> String { String(repeating: " ", count: max(0, cell - s.count)) + s }
        var lines = ["per-class accuracy:"]
        for (t, accuracy) in perClassAccuracy.enumerated() {
            let row = confusion[(t * classes)..<((t + 1) * classes)].reduce(0, +)
            lines.append("  \(t) " + label(names[t]) + (accuracy.map { String(format: "  %6.2f%%", 100 * $0) } ?? "       -")
                         + "  (\(confusion[t * classes + t]) of \(row))")
        }
        lines.append("confusion matrix (rows: true class, columns: predicted class):")
        lines.append("    " + String(repeating: " ", count: width) + (0..<classes).map { right("\($0)") }.joined())
        for t in 0..<classes {
            lines.append("  \(t) " + label(names[t]) + (0..<classes).map { right("\(confusion[t * classes + $0])") }.joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// How ten-crop evaluation cuts an image: the four corners and the centre of
/// the image padded by ``padding`` zeros, and their mirror images (the order of
/// `TenCrop`), each `height x width` (the network's input).
public struct TenCropGeometry: Equatable, Sendable {
    /// Zeros added on every side before cutting (the training crops' padding).
    public var padding: Int
    /// Crop height (the network's input height).
    public var height: Int
    /// Crop width.
    public var width: Int

    /// A geometry; see the properties.
    public init(padding: Int, height: Int, width: Int) {
        self.padding = padding
        self.height = height
        self.width = width
    }

    /// `images` padded by ``padding`` zeros on each side: `[N, C, H + 2p, W + 2p]`.
    public func padded(_ images: Tensor<Float>) throws -> Tensor<Float> {
        try images.requireShape([nil, nil, nil, nil], operation: "TenCropGeometry.padded", argument: "images")
        guard padding > 0 else { return images }
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let (ph, pw) = (h + 2 * padding, w + 2 * padding)
        var out = Tensor<Float>(shape: [n, c, ph, pw])
        images.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for plane in 0..<(n * c) {
                    for y in 0..<h {
                        let from = source.baseAddress! + (plane * h + y) * w
                        let to = target.baseAddress! + (plane * ph + y + padding) * pw + padding
                        to.update(from: from, count: w)
                    }
                }
            }
        }
        return out
    }
}

/// Runs a model over every batch of a source and counts the results.
public enum Evaluator {
    /// One crop per image: the source's images as they are, the next batch
    /// made while the model runs on this one (``BatchIterator``).
    /// - Parameters:
    ///   - scores: the model in inference mode, `[N, C, H, W]` to `[N, classes]`.
    ///   - progress: called after each batch with the images done so far.
    ///   - skipped: told about examples left out as bad files.
    public static func evaluate(source: BatchSource, classes: Int, epoch: Int = 0,
                                progress: (Int) -> Void = { _ in }, skipped: ([DataWarning]) -> Void = { _ in },
                                scores: (Tensor<Float>) throws -> Tensor<Float>) throws -> EvaluationResult {
        var result = EvaluationResult(classes: classes)
        let batches = BatchIterator(source: source, epoch: epoch, prefetch: 1)
        while let batch = try batches.next() {
            if !batch.skipped.isEmpty { skipped(batch.skipped) }
            try result.add(logits: try scores(batch.images), labels: batch.labels)
            progress(result.count)
        }
        return result
    }

    /// Ten crops per image: the source's images (uncropped, the network's
    /// input size or larger) padded and cut by `geometry`, each image's ten
    /// softmax outputs averaged (`TenCrop.averagedProbabilities`), and the
    /// average counted with ``EvaluationResult/add(probabilities:labels:)``.
    /// The ten crops of a batch run as one batch of `10 N`.
    public static func evaluateTenCrop(source: BatchSource, classes: Int, geometry: TenCropGeometry, epoch: Int = 0,
                                       progress: (Int) -> Void = { _ in }, skipped: ([DataWarning]) -> Void = { _ in },
                                       scores: (Tensor<Float>) throws -> Tensor<Float>) throws -> EvaluationResult {
        var result = EvaluationResult(classes: classes)
        let batches = BatchIterator(source: source, epoch: epoch, prefetch: 1)
        while let batch = try batches.next() {
            if !batch.skipped.isEmpty { skipped(batch.skipped) }
            let crops = try TenCrop.crops(batch: try geometry.padded(batch.images), cropHeight: geometry.height,
                                          cropWidth: geometry.width)
            let probabilities = try TenCrop.averagedProbabilities(logits: try scores(crops))
            try result.add(probabilities: probabilities, labels: batch.labels)
            progress(result.count)
        }
        return result
    }
}
