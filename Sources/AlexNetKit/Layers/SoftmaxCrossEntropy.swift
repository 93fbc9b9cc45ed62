/// The result of a softmax cross-entropy forward pass over a batch.
public struct LossOutput<Element: TensorElement> {
    /// Mean over the batch of `-log softmax(logits)[label]`.
    public var loss: Element
    /// `softmax(logits)`, `[N, K]`.
    public var probabilities: Tensor<Element>
    /// Images whose label is the top-1 prediction.
    public var top1Correct: Int
    /// Images whose label is among the top-5 predictions (top-K when K < 5).
    public var top5Correct: Int
}

/// Softmax followed by the cross-entropy with integer labels, averaged over the batch.
///
/// Numerically stable: each row subtracts its maximum before `exp`, and the
/// loss is `logsumexp(z) - z[label]`, never `log` of a rounded probability.
/// Backward gives `(softmax(z) - onehot(label)) / N`.
public final class SoftmaxCrossEntropy<Element: TensorElement> {
    public let name: String
    private var cachedProbabilities: Tensor<Element>?
    private var cachedLabels: [Int] = []

    public init(name: String = "loss") { self.name = name }

    /// - Parameters:
    ///   - logits: `[N, K]`.
    ///   - labels: N class indices in `0..<K`.
    /// - Throws: ``ShapeError`` for a wrong rank or label count, ``ConfigurationError``
    ///   naming the first label outside `0..<K`.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(logits: Tensor<Element>, labels: [Int]) throws -> LossOutput<Element> {
        try logits.requireShape([nil, nil], operation: name, argument: "logits")
        let (batch, classes) = (logits.shape[0], logits.shape[1])
        guard labels.count == batch else {
            throw ShapeError(operation: name, argument: "labels", expected: "[\(batch)] (one per logits row)",
                             actual: Shape([labels.count]))
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw ConfigurationError(component: name, problem: "label \(labels[bad]) of image \(bad) is outside 0..<\(classes)")
        }
        var probabilities = Tensor<Element>(shape: logits.shape)
        var total: Element = 0
        logits.withUnsafeBufferPointer { z in
            probabilities.withUnsafeMutableBufferPointer { p in
                for n in 0..<batch {
                    let row = z.baseAddress! + n * classes
                    let out = p.baseAddress! + n * classes
                    var maximum = -Element.infinity
                    for k in 0..<classes where row[k] > maximum || row[k].isNaN { maximum = row[k] }
                    var sum: Element = 0
                    for k in 0..<classes {
                        out[k] = Element.exp(row[k] - maximum)
                        sum += out[k]
                    }
                    for k in 0..<classes { out[k] /= sum }
                    // Summed per image in batch order: deterministic.
                    total += Element.log(sum) + maximum - row[labels[n]]
                }
            }
        }
        cachedProbabilities = probabilities
        cachedLabels = labels
        return LossOutput(loss: total / Element(batch), probabilities: probabilities,
                          top1Correct: Self.topKCorrect(logits: logits, labels: labels, k: 1),
                          top5Correct: Self.topKCorrect(logits: logits, labels: labels, k: 5))
    }

    /// dLoss/dLogits for the last forward pass: `(softmax - onehot) / N`, `[N, K]`.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward() throws -> Tensor<Element> {
        guard var gradient = cachedProbabilities else {
            throw ConfigurationError(component: name, problem: "backward was called before forward")
        }
        let (batch, classes) = (gradient.shape[0], gradient.shape[1])
        let scale = 1 / Element(batch)
        let labels = cachedLabels
        gradient.withUnsafeMutableBufferPointer { g in
            for n in 0..<batch {
                g[n * classes + labels[n]] -= 1
                for k in 0..<classes { g[n * classes + k] *= scale }
            }
        }
        return gradient
    }

    /// How many rows have their label among the `k` highest logits.
    ///
    /// Ties are broken by class index (lower wins), as a stable sort would:
    /// the label's rank is the number of classes with a larger logit plus the
    /// number of lower-indexed classes with an equal one. A NaN logit row
    /// counts as wrong.
    public static func topKCorrect(logits: Tensor<Element>, labels: [Int], k: Int) -> Int {
        let classes = logits.shape[1]
        var correct = 0
        logits.withUnsafeBufferPointer { z in
            for (n, label) in labels.enumerated() {
                let row = z.baseAddress! + n * classes
                let target = row[label]
                if target.isNaN { continue }
                var rank = 0
                for c in 0..<classes where row[c] > target || (row[c] == target && c < label) || row[c].isNaN {
                    rank += 1
                }
                if rank < k { correct += 1 }
            }
        }
        return correct
    }
}
