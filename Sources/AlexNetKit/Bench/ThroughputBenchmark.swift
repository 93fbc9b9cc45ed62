import Foundation

/// Minimum, median and maximum of repeated measurements.
public struct Spread: Codable, Sendable, Equatable {
    public var median: Double
    public var min: Double
    public var max: Double

    /// The spread of `values` (at least one).
    public init(_ values: [Double]) {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        min = sorted.first ?? .nan
        max = sorted.last ?? .nan
    }

    /// `numerator / x` for each figure (seconds per batch to images per second);
    /// the minimum and maximum swap.
    public func reciprocal(times numerator: Double) -> Spread {
        var result = self
        result.median = numerator / median
        result.min = numerator / max
        result.max = numerator / min
        return result
    }
}

/// Throughput of a model's inference and training step, and each layer's share.
///
/// What is timed:
/// - *inference*: ``TrainingModel/scores(_:)``, the forward pass in inference mode;
/// - *training step*: ``TrainingModel/forwardBackward(_:labels:step:)`` (dropout
///   on, the loss) then ``TrainingModel/update()`` (SGD in the paper's form), as
///   the trainer runs it, on one pool or on the two-tower executor;
/// - *per layer* (optional): every layer of the grouped ``Network`` run one by
///   one in training mode, forward then backward, as the network runs them.
/// Each is warmed up, then repeated; figures are medians with their spread.
public struct ThroughputBenchmark {
    /// What to run.
    public struct Settings: Codable, Sendable {
        public var batch: Int
        public var threads: Int
        public var towers: Int
        public var warmup: Int
        public var repetitions: Int
        public var perLayer: Bool
        public var seed: UInt64

        public init(batch: Int, threads: Int, towers: Int = 1, warmup: Int = 1, repetitions: Int = 5,
                    perLayer: Bool = true, seed: UInt64 = 1) {
            self.batch = batch
            self.threads = threads
            self.towers = towers
            self.warmup = warmup
            self.repetitions = repetitions
            self.perLayer = perLayer
            self.seed = seed
        }
    }

    /// One layer's figures (medians over the repetitions, milliseconds).
    public struct LayerFigures: Codable, Sendable {
        public var name: String
        public var kind: String
        public var outputShape: [Int]
        public var forwardMs: Double
        public var backwardMs: Double
        /// Multiply-adds of the forward pass (0 for layers without a matrix product).
        public var multiplyAdds: Int
        /// 2 FLOP per multiply-add over the forward time; nil without a matrix product.
        public var forwardGflops: Double?
        /// Backward does two products of the forward's size (input and weight
        /// gradients), the first layer one (it skips the input gradient, as in
        /// training).
        public var backwardGflops: Double?
    }

    /// Everything measured, in the shape `alexnet bench --json` prints.
    public struct Result: Codable, Sendable {
        public var model: String
        public var input: [Int]
        public var classes: Int
        public var batch: Int
        public var threads: Int
        public var towers: Int
        public var dtype: String
        public var blasCore: String
        public var blasCoreSelection: String
        public var cpu: String
        public var warmup: Int
        public var repetitions: Int
        public var inference: Phase
        public var trainingStep: Phase
        /// Of the training step: forward, loss and backward.
        public var forwardBackwardSeconds: Spread
        /// Of the training step: the SGD update.
        public var updateSeconds: Spread
        /// Peak resident memory of the process (getrusage) after the inference and
        /// training passes, before the per-layer timings (which keep every
        /// layer's gradient for the figures), bytes.
        public var peakResidentBytes: Int
        /// Per-layer figures, or empty when not measured.
        public var layers: [LayerFigures]
        /// Of the summed per-layer times, the share spent in layers without a matrix
        /// product (ReLU, LRN, pooling, dropout, the loss), forward and forward + backward.
        public var outsideMatrixLayersShare: Share?

        /// Seconds per batch and images per second.
        public struct Phase: Codable, Sendable {
            public var secondsPerBatch: Spread
            public var imagesPerSecond: Spread
        }

        public struct Share: Codable, Sendable {
            public var forward: Double
            public var trainingStep: Double
        }
    }

    public let spec: ModelSpec
    public let settings: Settings

    /// - Throws: ``ConfigurationError`` for settings that cannot run (a batch
    ///   below 1, two towers on a one-tower spec, ...).
    public init(spec: ModelSpec, settings: Settings) throws {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError(component: "bench", problem: problem) }
        guard settings.batch >= 1 else { throw fail("the batch must be at least 1, got \(settings.batch)") }
        guard settings.threads >= 1 else { throw fail("threads must be at least 1, got \(settings.threads)") }
        guard settings.repetitions >= 1 else { throw fail("repetitions must be at least 1, got \(settings.repetitions)") }
        guard settings.warmup >= 0 else { throw fail("warm-up repetitions must not be negative, got \(settings.warmup)") }
        guard settings.towers == spec.towers || settings.towers == 1 else {
            throw fail("the spec \(spec.name) has \(spec.towers) tower(s); it cannot run on \(settings.towers)")
        }
        try TrainingData.checkMemory(spec: spec, batch: settings.batch)
        self.spec = spec
        self.settings = settings
    }

    /// Runs the benchmark in Float32; `progress` hears one line per phase.
    public func run(progress: (String) -> Void = { _ in }) throws -> Result {
        let s = settings
        let network = try Network<Float>(spec: spec, seed: s.seed)
        let model = try TrainingModel(network: network, twoTowers: s.towers == 2, threads: s.threads) {
            SGD(learningRate: 1e-5, form: .paper)
        }
        var input = Tensor<Float>(shape: Shape([s.batch] + spec.inputShape.dims))
        let stream = RandomStream(seed: s.seed &+ 1, step: 0, stream: 0)
        input.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = Float(stream.uniform(i) - 0.5) } }
        let labels = (0..<s.batch).map { $0 % spec.classes }

        progress("inference: \(s.warmup) warm-up + \(s.repetitions) timed batches of \(s.batch)")
        let inference = try Self.time(warmup: s.warmup, repetitions: s.repetitions) { _ in
            _ = try model.scores(input)
        }
        progress("training step: \(s.warmup) warm-up + \(s.repetitions) timed batches of \(s.batch)")
        var passes: [Double] = [], updates: [Double] = []
        let training = try Self.time(warmup: s.warmup, repetitions: s.repetitions) { step in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model.forwardBackward(input, labels: labels, step: UInt64(step))
            let middle = DispatchTime.now().uptimeNanoseconds
            try model.update()
            if step >= s.warmup {
                passes.append(Double(middle - start) / 1e9)
                updates.append(Double(DispatchTime.now().uptimeNanoseconds - middle) / 1e9)
            }
        }
        // A NaN changes which branches the kernels take (and what they cost), so a
        // benchmark whose numbers went non-finite measures the wrong thing.
        if let problem = model.firstNonFiniteWeight() {
            throw ConfigurationError(component: "bench", problem: "the weights became non-finite during the timed "
                                     + "training steps (\(problem)); the figures would not be representative")
        }
        if try model.scores(input).firstNonFiniteIndex() != nil {
            throw ConfigurationError(component: "bench", problem: "the scores are not finite; the figures would not be representative")
        }
        let peakResident = Self.peakResidentBytes()
        var layers: [LayerFigures] = []
        if s.perLayer {
            progress("per layer: \(s.warmup) warm-up + \(s.repetitions) timed passes")
            layers = try Self.layerFigures(network: network, input: input, labels: labels, settings: s)
        }
        let images = Double(s.batch)
        return Result(
            model: spec.name, input: spec.inputShape.dims, classes: spec.classes, batch: s.batch, threads: s.threads,
            towers: s.towers, dtype: Float.dtypeName, blasCore: BLAS.core.name, blasCoreSelection: BLAS.core.selection.rawValue,
            cpu: BLAS.core.cpu, warmup: s.warmup, repetitions: s.repetitions,
            inference: .init(secondsPerBatch: Spread(inference), imagesPerSecond: Spread(inference).reciprocal(times: images)),
            trainingStep: .init(secondsPerBatch: Spread(training), imagesPerSecond: Spread(training).reciprocal(times: images)),
            forwardBackwardSeconds: Spread(passes), updateSeconds: Spread(updates),
            peakResidentBytes: peakResident, layers: layers, outsideMatrixLayersShare: Self.share(layers))
    }

    /// Seconds of each timed repetition of `body` (called with the repetition's
    /// index, warm-ups included, so dropout masks change from step to step).
    static func time(warmup: Int, repetitions: Int, _ body: (Int) throws -> Void) rethrows -> [Double] {
        var seconds: [Double] = []
        for repetition in 0..<(warmup + repetitions) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body(repetition)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if repetition >= warmup { seconds.append(elapsed) }
        }
        return seconds
    }

    /// Every layer of the grouped network timed alone, as ``Network`` runs it.
    static func layerFigures(network: Network<Float>, input: Tensor<Float>, labels: [Int],
                             settings s: Settings) throws -> [LayerFigures] {
        let layers = network.layers
        let pool = WorkerPool(workerCount: s.threads, label: "bench")
        var forward = [[Double]](repeating: [], count: layers.count)
        var backward = [[Double]](repeating: [], count: layers.count)
        var shapes: [Shape] = []
        for repetition in 0..<(s.warmup + s.repetitions) {
            let context = PassContext(pool: pool, mode: .training, step: UInt64(repetition))
            let timed = repetition >= s.warmup
            for layer in layers { layer.releaseCaches() }
            var activations = [input]
            for (i, layer) in layers.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                activations.append(try layer.forward(activations[i], context: context))
                if timed { forward[i].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
            shapes = activations.map(\.shape)
            _ = try network.loss.forward(logits: activations.last!, labels: labels)
            activations.removeAll()
            var gradient = try network.loss.backward()
            for (i, layer) in layers.enumerated().reversed() {
                let start = DispatchTime.now().uptimeNanoseconds
                // As Network.backward runs it: nobody reads the image's gradient, so
                // the first layer computes its parameter gradients alone.
                gradient = try layer.backward(gradient, context: context.needingInputGradient(i > 0))
                if timed { backward[i].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
            }
        }
        return try layers.enumerated().map { i, layer in
            let multiplyAdds = try layer.multiplyAdds(for: shapes[i])
            let f = Spread(forward[i]).median, b = Spread(backward[i]).median
            let flops = 2 * Double(multiplyAdds)
            // Backward runs two products of the forward's size (weight and input
            // gradients), the first layer only the weight gradient's.
            let backwardFlops = (i > 0 ? 2 : 1) * flops
            return LayerFigures(name: layer.name, kind: network.spec.layers[i].kind.typeName,
                                outputShape: shapes[i + 1].dims, forwardMs: f * 1e3, backwardMs: b * 1e3,
                                multiplyAdds: multiplyAdds,
                                forwardGflops: multiplyAdds > 0 ? flops / f / 1e9 : nil,
                                backwardGflops: multiplyAdds > 0 ? backwardFlops / b / 1e9 : nil)
        }
    }

    static func share(_ layers: [LayerFigures]) -> Result.Share? {
        guard !layers.isEmpty else { return nil }
        let outside = layers.filter { $0.multiplyAdds == 0 }
        let forwardAll = layers.reduce(0) { $0 + $1.forwardMs }
        let stepAll = layers.reduce(0) { $0 + $1.forwardMs + $1.backwardMs }
        return .init(forward: outside.reduce(0) { $0 + $1.forwardMs } / forwardAll,
                     trainingStep: outside.reduce(0) { $0 + $1.forwardMs + $1.backwardMs } / stepAll)
    }

    /// The process's peak resident set size so far, in bytes.
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
    }
}
