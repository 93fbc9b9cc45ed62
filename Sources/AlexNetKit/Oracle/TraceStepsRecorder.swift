/// One batch of a recorded training step: the images and their labels.
public struct TraceBatch<T: TensorElement> {
    /// `[N, C, H, W]`.
    public var input: Tensor<T>
    /// N class indices.
    public var labels: [Int]

    /// Creates a batch; see the properties.
    public init(input: Tensor<T>, labels: [Int]) {
        self.input = input
        self.labels = labels
    }
}

extension TraceRecorder {
    /// Records T training steps of `network` as a version 2 trace (Docs/oracle.md,
    /// "Several steps"): `param.*` before the first step, then for step t = 1...T
    /// (batch `batches[t-1]`) `step<t>.input`, `.labels`, `.mask.*` (drawn by the network's
    /// generator at step t-1), `.forward.*`, `.loss`, `.grad.scores`, `.grad_input.*`,
    /// `.grad.*`, `.updated.*` and `.velocity.*` (one SGD optimiser carried through
    /// the steps, in `sgd.form`, at `learningRates[t-1]` or `sgd.learningRate`).
    ///
    /// The network's weights are left as they were, and injected masks are cleared.
    /// - Parameters:
    ///   - batches: T >= 1 batches, each `[N, C, H, W]` with N labels.
    ///   - learningRates: nil, or T rates whose first is `sgd.learningRate` (the trace's schedule).
    /// - Throws: ``ConfigurationError`` for no batches or a schedule of the wrong length;
    ///   ``ShapeError`` and ``ConfigurationError`` from the layers.
    public static func recordSteps<T: TensorElement>(network: Network<T>, batches: [TraceBatch<T>], sgd: TraceSGD,
                                                     learningRates: [Double]? = nil,
                                                     producer: String = TraceRecorder.producer,
                                                     workers: Int = 1) throws -> Trace {
        guard !batches.isEmpty else { throw ConfigurationError(component: "trace", problem: "no batches: a trace holds at least one step") }
        if let learningRates, learningRates.count != batches.count || learningRates.first != sgd.learningRate {
            throw ConfigurationError(component: "trace", problem: "learningRates must hold one rate per step (\(batches.count)), "
                                     + "the first equal to sgd.learningRate")
        }
        let spec = network.spec
        let pool = WorkerPool(workerCount: workers, label: "trace")
        let saved = network.namedParameters.map { ($0.parameter, $0.parameter.value) }
        defer {
            for (parameter, value) in saved { parameter.value = value }
            for layer in network.layers { (layer as? Dropout<T>)?.clearInjectedMask() }
        }
        var trace = try Trace(network: spec, dtype: dtype(T.self), mode: .training, sgd: sgd, producer: producer)
        trace.steps = batches.count
        trace.learningRates = learningRates
        for (name, parameter) in network.namedParameters { trace.set("param.\(name)", parameter.value) }
        let optimiser: SGD<T> = self.optimiser(sgd)
        for (index, batch) in batches.enumerated() {
            let t = index + 1
            func set(_ name: String, _ tensor: Tensor<T>) { trace.set(Trace.stepName(name, step: t), tensor) }
            let context = PassContext(pool: pool, mode: .training, step: UInt64(index))
            set("input", batch.input)
            trace.set(try StoredTensor(name: Trace.stepName("labels", step: t), shape: [batch.labels.count],
                                       integers: batch.labels.map(Int64.init)))
            for (name, mask) in try injectMasks(network.layers, spec: spec, batch: batch.input.shape[0], step: UInt64(index)) {
                set("mask.\(name)", mask)
            }
            let scores = try network.forward(batch.input, context: context)
            for (i, layer) in spec.layers.enumerated() { set("forward.\(layer.name)", network.activations[i + 1]) }
            let output = try network.loss.forward(logits: scores, labels: batch.labels)
            set("loss", Tensor(shape: [], repeating: output.loss))
            let scoreGradient = try network.loss.backward()
            set("grad.scores", scoreGradient)
            try network.backward(scoreGradient, context: context)
            for (i, layer) in spec.layers.enumerated() { set("grad_input.\(layer.name)", network.gradients[i]) }
            for (name, parameter) in network.namedParameters { set("grad.\(name)", parameter.gradient) }
            optimiser.learningRate = learningRates?[index] ?? sgd.learningRate
            try optimiser.step(network.namedParameters.map(\.parameter), pool: pool)
            for (name, parameter) in network.namedParameters {
                set("updated.\(name)", parameter.value)
                set("velocity.\(name)", optimiser.velocity(of: parameter))
            }
        }
        return trace
    }

    /// Injects each dropout layer's mask drawn at `step` and returns them by layer name.
    static func injectMasks<T: TensorElement>(_ layers: [any Layer<T>], spec: ModelSpec, batch: Int,
                                              step: UInt64) throws -> [(String, Tensor<T>)] {
        let shapes = try spec.outputShapes()
        var used: [(String, Tensor<T>)] = []
        for (i, layer) in layers.enumerated() {
            guard let dropout = layer as? Dropout<T> else { continue }
            let inputShape = i == 0 ? spec.inputShape : shapes[i - 1]
            let mask = dropout.generatedMask(shape: Shape([batch] + inputShape.dims), step: step)
            try dropout.injectMask(mask)
            used.append((layer.name, mask))
        }
        return used
    }
}
