/// Writes this library's own traces: what `alexnet trace` produces, and what
/// the oracle's tests build broken references from (a network under the
/// wrong convention, labelled with the right spec).
public enum TraceRecorder {
    /// The `producer` written into our own traces.
    public static let producer = "alexnet-swift (CPU reference)"

    /// Records one training step of `network`: `input`, `labels`, every
    /// `param.*` and `mask.*`, every `forward.*`, `loss`, `grad.scores`, every
    /// `grad_input.*` and `grad.*`, and with `sgd` every `updated.*`; with
    /// `towerTensors` (a two-tower spec) also each tower's tensors from a
    /// ``TowerNetwork`` copying the network.
    ///
    /// The network's weights are left as they were (the step is taken on them
    /// and undone), and injected masks are cleared afterwards.
    /// - Parameters:
    ///   - input: `[N, C, H, W]`.
    ///   - labels: N class indices, or nil for a forward-only trace.
    ///   - masks: dropout masks by layer name (0/1, the layer's input shape); the
    ///     layers not named draw theirs from the network's generator at step 0.
    /// - Throws: ``ShapeError`` and ``ConfigurationError`` from the layers.
    public static func record<T: TensorElement>(network: Network<T>, input: Tensor<T>, labels: [Int]?, mode: PassMode = .training,
                                                sgd: TraceSGD? = nil, towerTensors: Bool = false,
                                                masks: [String: Tensor<T>] = [:], producer: String = TraceRecorder.producer,
                                                workers: Int = 1) throws -> Trace {
        let spec = network.spec
        let pool = WorkerPool(workerCount: workers, label: "trace")
        let context = PassContext(pool: pool, mode: mode, step: 0)
        let saved = network.namedParameters.map { ($0.parameter, $0.parameter.value) }
        defer {
            for (parameter, value) in saved { parameter.value = value }
            for layer in network.layers { (layer as? Dropout<T>)?.clearInjectedMask() }
        }
        var trace = try Trace(network: spec, dtype: dtype(T.self), mode: mode, sgd: sgd,
                              towers: towerTensors && spec.towers == 2 ? 2 : nil, producer: producer)
        trace.set("input", input)
        if let labels { trace.set(try StoredTensor(name: "labels", shape: [labels.count], integers: labels.map(Int64.init))) }
        for (name, parameter) in network.namedParameters { trace.set("param.\(name)", parameter.value) }
        let usedMasks = try injectMasks(network.layers, spec: spec, batch: input.shape[0], mode: mode, given: masks)
        for (name, mask) in usedMasks { trace.set("mask.\(name)", mask) }
        let towers = towerTensors && spec.towers == 2 ? try TowerNetwork(copying: network, workersPerTower: workers) : nil

        let scores = try network.forward(input, context: context)
        for (i, layer) in spec.layers.enumerated() { trace.set("forward.\(layer.name)", network.activations[i + 1]) }
        if let labels {
            let output = try network.loss.forward(logits: scores, labels: labels)
            trace.set("loss", Tensor(shape: [], repeating: output.loss))
            let scoreGradient = try network.loss.backward()
            trace.set("grad.scores", scoreGradient)
            try network.backward(scoreGradient, context: context)
            for (i, layer) in spec.layers.enumerated() { trace.set("grad_input.\(layer.name)", network.gradients[i]) }
            for (name, parameter) in network.namedParameters { trace.set("grad.\(name)", parameter.gradient) }
            if let sgd {
                try optimiser(sgd).step(network.namedParameters.map(\.parameter), pool: pool)
                for (name, parameter) in network.namedParameters { trace.set("updated.\(name)", parameter.value) }
            }
        }
        if let towers {
            try recordTowers(towers, into: &trace, input: input, labels: labels, mode: mode, sgd: sgd,
                             masks: Dictionary(usedMasks, uniquingKeysWith: { a, _ in a }),
                             grouped: false, towerTensors: true)
        }
        return trace
    }

    /// Records one training step run by the two towers alone, as a two-GPU
    /// implementation would dump it: every whole tensor joined from the towers'
    /// halves (their partial image gradients added), `param.*` from `parameters`
    /// (the weights the step is meant to start from), and with `towerTensors`
    /// each tower's own tensors. Tests use it to build references whose towers
    /// hold the wrong weights. The towers' weights are left as they were.
    /// - Parameters:
    ///   - parameters: the whole `param.*` tensors by name (`conv1.weight`).
    ///   - masks: whole dropout masks by layer name; missing ones are drawn by the towers' generators at step 0.
    /// - Throws: ``ShapeError`` and ``ConfigurationError`` from the layers.
    public static func record<T: TensorElement>(towers: TowerNetwork<T>, parameters: [String: Tensor<T>], input: Tensor<T>,
                                                labels: [Int]?, mode: PassMode = .training, sgd: TraceSGD? = nil,
                                                towerTensors: Bool = true, masks: [String: Tensor<T>] = [:],
                                                producer: String = TraceRecorder.producer) throws -> Trace {
        let spec = towers.spec
        var trace = try Trace(network: spec, dtype: dtype(T.self), mode: mode, sgd: sgd, towers: towerTensors ? 2 : nil,
                              producer: producer)
        trace.set("input", input)
        if let labels { trace.set(try StoredTensor(name: "labels", shape: [labels.count], integers: labels.map(Int64.init))) }
        for layer in spec.layers {
            for suffix in ["weight", "bias"] {
                if let value = parameters["\(layer.name).\(suffix)"] { trace.set("param.\(layer.name).\(suffix)", value) }
            }
        }
        // Whole masks: given, or each tower's draw joined.
        var whole: [String: Tensor<T>] = masks
        if mode == .training {
            let shapes = try spec.outputShapes()
            for (i, layer) in spec.layers.enumerated() where whole[layer.name] == nil {
                guard case .dropout = layer.kind else { continue }
                let inputShape = i == 0 ? spec.inputShape : shapes[i - 1]
                let halves = (0..<spec.towers).map { t -> Tensor<T> in
                    var dims = [input.shape[0]] + inputShape.dims
                    dims[1] /= spec.towers
                    return (towers.layers[t][i] as! Dropout<T>).generatedMask(shape: Shape(dims), step: 0)
                }
                whole[layer.name] = try Tensor.concatenate(channels: halves)
            }
            for (name, mask) in whole { trace.set("mask.\(name)", mask) }
        }
        try recordTowers(towers, into: &trace, input: input, labels: labels, mode: mode, sgd: sgd, masks: whole,
                         grouped: true, towerTensors: towerTensors)
        return trace
    }

    /// Runs the towers' step and records their tensors (and, with `grouped`, the whole tensors joined from them).
    static func recordTowers<T: TensorElement>(_ towers: TowerNetwork<T>, into trace: inout Trace, input: Tensor<T>,
                                               labels: [Int]?, mode: PassMode, sgd: TraceSGD?, masks: [String: Tensor<T>],
                                               grouped: Bool, towerTensors: Bool) throws {
        let spec = towers.spec
        let count = spec.towers
        let context = PassContext(mode: mode, step: 0)
        let saved = (0..<count).flatMap { towers.namedParameters(tower: $0) }.map { ($0.parameter, $0.parameter.value) }
        defer {
            for (parameter, value) in saved { parameter.value = value }
            for row in towers.layers { for layer in row { (layer as? Dropout<T>)?.clearInjectedMask() } }
        }
        for t in 0..<count {
            for (i, layer) in towers.layers[t].enumerated() {
                if let dropout = layer as? Dropout<T>, mode == .training, let mask = masks[spec.layers[i].name] {
                    try dropout.injectMask(try mask.towerChannels(t, of: count))
                }
            }
            if towerTensors {
                for (name, parameter) in towers.namedParameters(tower: t) { trace.set("tower\(t).param.\(name)", parameter.value) }
            }
        }
        func record(_ name: String, _ parts: [Tensor<T>], join: ([Tensor<T>]) throws -> Tensor<T>) throws {
            if grouped { trace.set(name, try join(parts)) }
            if towerTensors { for (t, part) in parts.enumerated() { trace.set("tower\(t).\(name)", part) } }
        }
        let scores = try towers.forward(input, context: context)
        for (i, layer) in spec.layers.enumerated() {
            try record("forward.\(layer.name)", (0..<count).map { towers.activations[$0][i + 1] }) { try Tensor.concatenate(channels: $0) }
        }
        guard let labels else { return }
        let output = try towers.loss.forward(logits: scores, labels: labels)
        let scoreGradient = try towers.loss.backward()
        if grouped {
            trace.set("loss", Tensor(shape: [], repeating: output.loss))
            trace.set("grad.scores", scoreGradient)
        }
        try towers.backward(scoreGradient, context: context)
        for (i, layer) in spec.layers.enumerated() {
            let parts = (0..<count).map { towers.gradients[$0][i] }
            try record("grad_input.\(layer.name)", parts) { parts in
                // The first layer's towers each hold a partial gradient of the whole input: their sum is the gradient.
                parts[0].shape == input.shape ? try parts.dropFirst().reduce(parts[0]) { try $0.adding($1) }
                    : try Tensor.concatenate(channels: parts)
            }
        }
        let names = towers.namedParameters(tower: 0).map(\.name)
        for (k, name) in names.enumerated() {
            try record("grad.\(name)", (0..<count).map { towers.namedParameters(tower: $0)[k].parameter.gradient }) {
                try Tensor.concatenateRows($0)
            }
        }
        if let sgd {
            for t in 0..<count {
                try optimiser(sgd).step(towers.namedParameters(tower: t).map(\.parameter), pool: towers.pools[t])
            }
            for (k, name) in names.enumerated() {
                try record("updated.\(name)", (0..<count).map { towers.namedParameters(tower: $0)[k].parameter.value }) {
                    try Tensor.concatenateRows($0)
                }
            }
        }
    }

    /// Records one layer alone (a layer trace): its input, parameters, output,
    /// and from `outputGradient` its input and parameter gradients and one SGD step.
    /// - Parameters:
    ///   - parameters: by full name (`conv1.weight`); the layer's shapes decide which are needed.
    ///   - mask: the dropout mask, for a dropout layer in training mode.
    /// - Throws: ``ShapeError`` and ``ConfigurationError`` from the layer, or ``TraceError`` for a missing parameter.
    public static func recordLayer<T: TensorElement>(_ spec: LayerSpec, parameters: [String: Tensor<T>], input: Tensor<T>,
                                                     outputGradient: Tensor<T>?, mode: PassMode = .training,
                                                     mask: Tensor<T>? = nil, sgd: TraceSGD? = nil,
                                                     producer: String = TraceRecorder.producer) throws -> Trace {
        let layer = try Network<T>.makeLayer(spec, index: 0, inputShape: Shape(Array(input.shape.dims.dropFirst())),
                                             towers: 1, tower: nil, seed: 0)
        var trace = try Trace(layer: spec, dtype: dtype(T.self), mode: mode, sgd: sgd, producer: producer)
        trace.set("input", input)
        for parameter in layer.parameters {
            let name = "\(spec.name).\(parameter.name)"
            guard let value = parameters[name] else {
                throw TraceError(file: "(recording)", subject: "param.\(name)", problem: "missing")
            }
            parameter.value = value
            trace.set("param.\(name)", value)
        }
        let context = PassContext(mode: mode, step: 0)
        if let dropout = layer as? Dropout<T>, mode == .training {
            let used = mask ?? dropout.generatedMask(shape: input.shape, step: 0)
            try dropout.injectMask(used)
            trace.set("mask.\(spec.name)", used)
        }
        trace.set("forward.\(spec.name)", try layer.forward(input, context: context))
        guard let outputGradient else { return trace }
        trace.set("grad_output.\(spec.name)", outputGradient)
        trace.set("grad_input.\(spec.name)", try layer.backward(outputGradient, context: context))
        for parameter in layer.parameters { trace.set("grad.\(spec.name).\(parameter.name)", parameter.gradient) }
        if let sgd {
            try optimiser(sgd).step(layer.parameters)
            for parameter in layer.parameters { trace.set("updated.\(spec.name).\(parameter.name)", parameter.value) }
        }
        return trace
    }

    /// The layer trace of one layer of a network trace: its input (`forward.`
    /// of the layer before, or `input`), its upstream gradient (`grad_input.` of
    /// the layer after, or `grad.scores`) and its own tensors.
    /// - Throws: ``TraceError`` when the layer is unknown or a tensor it needs is absent.
    public static func layerTrace(_ trace: Trace, layer name: String) throws -> Trace {
        guard trace.kind == .network, let spec = trace.spec else {
            throw TraceError(file: trace.source, problem: "only a network trace holds layers to extract")
        }
        guard let index = spec.layers.firstIndex(where: { $0.name == name }) else {
            throw TraceError(file: trace.source, subject: name,
                             problem: "no such layer; the spec's layers are " + spec.layers.map(\.name).joined(separator: ", "))
        }
        let layer = spec.layers[index]
        let inputName = index == 0 ? "input" : "forward.\(spec.layers[index - 1].name)"
        guard var input = trace[inputName] else {
            throw TraceError(file: trace.source, subject: inputName, problem: "missing; it is the layer's input")
        }
        input.name = "input"
        var result = try Trace(layer: layer, dtype: trace.dtype, mode: trace.mode, sgd: trace.sgd, producer: trace.producer)
        result.set(input)
        let upstreamName = index == spec.layers.count - 1 ? "grad.scores" : "grad_input.\(spec.layers[index + 1].name)"
        if var upstream = trace[upstreamName] {
            upstream.name = "grad_output.\(name)"
            result.set(upstream)
        }
        for tensor in trace.tensors {
            let own = ["param.", "mask.", "forward.", "grad_input.", "grad.", "updated."].contains { prefix in
                tensor.name == prefix + name || tensor.name.hasPrefix(prefix + name + ".")
            }
            if own { result.set(tensor) }
        }
        return result
    }

    /// A batch of `count` images of `shape` (`[C, H, W]`) with pixels uniform in
    /// [-128, 128), the range of the paper's mean-subtracted 8-bit RGB: element
    /// `i` is `256 u_i - 128`, `u_i` word `i` of the stream `(seed, step 0, stream 0x7AC3_0001)`.
    public static func randomBatch<T: TensorElement>(count: Int, shape: Shape, seed: UInt64) -> Tensor<T> {
        let stream = RandomStream(seed: seed, step: 0, stream: 0x7AC3_0001)
        var batch = Tensor<T>(shape: Shape([count] + shape.dims))
        batch.withUnsafeMutableBufferPointer { b in
            for i in b.indices { b[i] = T(256 * stream.uniform(i) - 128) }
        }
        return batch
    }

    /// `count` labels uniform in `0..<classes`: `floor(classes u_i)` from the stream `(seed, step 0, stream 0x7AC3_0002)`.
    public static func randomLabels(count: Int, classes: Int, seed: UInt64) -> [Int] {
        let stream = RandomStream(seed: seed, step: 0, stream: 0x7AC3_0002)
        return (0..<count).map { min(classes - 1, Int(Double(classes) * stream.uniform($0))) }
    }

    static func dtype<T: TensorElement>(_: T.Type) -> DType { T.self == Double.self ? .float64 : .float32 }

    static func optimiser<T: TensorElement>(_ sgd: TraceSGD) -> SGD<T> {
        SGD<T>(learningRate: sgd.learningRate, momentum: sgd.momentum, weightDecay: sgd.weightDecay, form: sgd.form)
    }

    /// Injects each dropout layer's mask (given, or drawn at step 0) and returns them by layer name.
    static func injectMasks<T: TensorElement>(_ layers: [any Layer<T>], spec: ModelSpec, batch: Int, mode: PassMode,
                                              given: [String: Tensor<T>]) throws -> [(String, Tensor<T>)] {
        guard mode == .training else { return [] }
        let shapes = try spec.outputShapes()
        var used: [(String, Tensor<T>)] = []
        for (i, layer) in layers.enumerated() {
            guard let dropout = layer as? Dropout<T> else { continue }
            let inputShape = i == 0 ? spec.inputShape : shapes[i - 1]
            let mask = given[layer.name] ?? dropout.generatedMask(shape: Shape([batch] + inputShape.dims), step: 0)
            try dropout.injectMask(mask)
            used.append((layer.name, mask))
        }
        return used
    }
}
