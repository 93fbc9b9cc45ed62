/// How ``Oracle/check(_:options:)`` judges a trace.
public struct OracleOptions: Sendable {
    /// Tolerances: the default rule, overrides, bit-exact mode.
    public var tolerances: TolerancePolicy
    /// Whether a tensor that agrees alone but drifts end to end counts as a mismatch
    /// (by default it is reported, not failed).
    public var failOnEndToEnd: Bool
    /// Whether mismatches are diagnosed (convention variants tried).
    public var diagnose: Bool
    /// Threads for the reference's layers (results are identical for any count).
    public var workers: Int
    /// What the trace must hold (``CompareGroup``): by default the rule for its kind and
    /// mode; a required tensor it lacks makes it unusable. Present tensors beyond these are compared too.
    public var compare: [CompareGroup]

    /// The defaults: the tolerance rule, drift reported but not failed, diagnosis on, one thread,
    /// the default required tensors.
    public init(tolerances: TolerancePolicy = TolerancePolicy(), failOnEndToEnd: Bool = false, diagnose: Bool = true,
                workers: Int = 1, compare: [CompareGroup] = [.default]) {
        self.tolerances = tolerances
        self.failOnEndToEnd = failOnEndToEnd
        self.diagnose = diagnose
        self.workers = max(1, workers)
        self.compare = compare
    }
}

/// The correctness oracle: recomputes a trace's step with this reference and
/// compares every tensor, layer by layer and tower by tower (Docs/oracle.md).
public enum Oracle {
    /// Checks a trace.
    ///
    /// Runs the step twice: *end to end* (a ``Network`` of the trace's spec
    /// with its `param.*` loaded by ``StateDict/load(_:into:source:naming:layout:)``
    /// under their native names and its `mask.*` injected, forward, our own loss, backward, one SGD
    /// step from zero velocity; with per-tower tensors also a ``TowerNetwork``),
    /// and *alone* (every layer fed the reference's own input, `forward.` of the
    /// previous layer, and backward the reference's own upstream gradient), so
    /// that the first divergence points at the layer that computes differently
    /// rather than at every layer after it. A tensor's verdict follows its
    /// comparison alone; end-to-end drift is reported (and fails only with
    /// ``OracleOptions/failOnEndToEnd``). Mismatches are diagnosed by trying the
    /// known convention variants on the layer with the reference's own input.
    /// - Throws: ``TraceError`` (via ``TracePlan``) when the trace is unusable: malformed,
    ///   lacking a tensor ``OracleOptions/compare`` requires, or holding nothing to compare.
    public static func check(_ trace: Trace, options: OracleOptions = OracleOptions()) throws -> OracleReport {
        if trace.steps != nil { return try OracleReplay.check(trace, options: options) }
        let plan = try TracePlan(trace: trace)
        try plan.requireTensors(options.compare)
        switch trace.dtype {
        case .float64: return try OracleRun<Double>(plan: plan, options: options).run()
        default: return try OracleRun<Float>(plan: plan, options: options).run()
        }
    }

    /// Reads the trace at `path` and checks it.
    /// - Throws: ``TraceError`` or ``TensorFileError`` when the trace cannot be read or used.
    public static func check(path: String, options: OracleOptions = OracleOptions()) throws -> OracleReport {
        try check(Trace.read(path: path), options: options)
    }
}

/// One check of one trace in element type `T`.
final class OracleRun<T: TensorElement> {
    let plan: TracePlan
    /// How the trace's layers run on its towers.
    let towerPlan: TowerPlan
    let trace: Trace
    let options: OracleOptions
    let pool: WorkerPool
    let context: PassContext
    let lengths: ReductionLengths

    /// Every reference float tensor (masks converted), by trace name.
    var reference: [String: Tensor<T>] = [:]
    /// `param.*` by parameter name (`conv1.weight`).
    var parameters: [String: Tensor<T>] = [:]
    /// Ours end to end, by trace name.
    var endToEnd: [String: Tensor<T>] = [:]
    /// Ours alone, by trace name.
    var alone: [String: Tensor<T>] = [:]
    /// Why a tensor could not be computed alone, by trace name.
    var aloneUnavailable: [String: String] = [:]
    /// Layer `i`'s input in the alone pass (grouped), and the gradient of its output.
    var aloneInputs: [Int: Tensor<T>] = [:]
    var aloneUpstream: [Int: Tensor<T>] = [:]
    /// The same per tower: `[tower][layer]`.
    var towerInputs: [[Int: Tensor<T>]] = [[:], [:]]
    var towerUpstream: [[Int: Tensor<T>]] = [[:], [:]]
    /// A replayed step (``OracleReplay``): our own parameters and velocities, by parameter
    /// name, that end to end starts from instead of the trace's `param.*` and zero.
    var carried: ReplayState<T>?
    /// What our end-to-end step ended with (set when it took the SGD step): the next step's ``carried``.
    var carriedAfter: ReplayState<T>?
    /// The reference's velocities the step alone starts from, by parameter name (a replayed
    /// step after the first: `step<t-1>.velocity.*`); empty means zero.
    var referenceVelocities: [String: Tensor<T>] = [:]

    init(plan: TracePlan, options: OracleOptions) throws {
        self.plan = plan
        self.towerPlan = TowerPlan(towers: plan.towers, layers: plan.layers)
        self.trace = plan.trace
        self.options = options
        self.pool = WorkerPool(workerCount: options.workers, label: "oracle")
        self.context = PassContext(pool: pool, mode: plan.trace.mode, step: 0)
        self.lengths = ReductionLengths(plan: plan)
        for tensor in trace.tensors {
            guard let role = plan.roles[tensor.name] else { continue }
            switch role.content {
            case .labels:
                continue
            case .mask:
                reference[tensor.name] = try tensor.floatTensor(as: T.self, convertingIntegers: true)
            default:
                reference[tensor.name] = try tensor.floatTensor(as: T.self)
            }
            if case .parameter(_, let name) = role.content, role.tower == nil {
                parameters[name] = reference[tensor.name]
            }
        }
    }

    var layers: [LayerSpec] { plan.layers }
    var input: Tensor<T> { reference["input"]! }
    var isNetwork: Bool { trace.kind == .network }
    var hasTowerTensors: Bool { plan.towers == 2 && plan.compared.contains { $0.tower != nil } }
    var needsBackward: Bool { plan.compared.contains { $0.phase == .backward || $0.phase == .update } }
    var needsUpdate: Bool { plan.compared.contains { $0.phase == .update } }
    var needsLoss: Bool { isNetwork && plan.labels != nil && plan.compared.contains { $0.phase != .forward } }

    func run() throws -> OracleReport {
        try runEndToEnd()
        try runAlone()
        if hasTowerTensors { try runTowersAlone() }
        return buildReport()
    }

    // MARK: Building layers

    /// Layer `i` as the spec builds it: whole (`tower` nil) or tower `t`'s half.
    func makeLayer(_ spec: LayerSpec, index i: Int, tower: Int?, towers: Int? = nil) throws -> any Layer<T> {
        try Network<T>.makeLayer(spec, index: i, inputShape: plan.inputShapes[i], towers: towers ?? plan.towers,
                                 tower: tower, seed: 0)
    }

    /// Sets `layer`'s parameters: `values(fullName)` gives each one's value.
    func load(_ layer: any Layer<T>, _ values: (String) throws -> Tensor<T>?) throws {
        for parameter in layer.parameters {
            let name = "\(layer.name).\(parameter.name)"
            guard let value = try values(name) else {
                throw ConfigurationError(component: layer.name, problem: "no value for \(name)")
            }
            try value.requireShape(parameter.value.shape, operation: layer.name, argument: name)
            parameter.value = value
        }
    }

    /// Injects the reference's mask (tower `t`'s half when `tower` is set) into a dropout layer.
    func injectMask(_ layer: any Layer<T>, index i: Int, tower: Int?) throws {
        guard let dropout = layer as? Dropout<T>, trace.mode == .training, let mask = reference["mask.\(layers[i].name)"] else {
            return
        }
        try dropout.injectMask(tower.map { try mask.towerChannels($0, of: plan.towers) } ?? mask)
    }

    // MARK: End to end

    func runEndToEnd() throws {
        if !isNetwork {
            try runLayerEndToEnd()
            return
        }
        let spec = trace.spec!
        let network = try Network<T>(spec: spec, seed: 0, initialisation: .gaussian(std: 0))
        // The weights go in as any weights file would: `param.<name>` is the native name `<name>`.
        let weights = trace.tensors.filter { plan.roles[$0.name].map { role in
            if case .parameter = role.content, role.tower == nil { return true } else { return false }
        } ?? false }.map { tensor -> StoredTensor in
            var renamed = tensor
            renamed.name = String(tensor.name.dropFirst("param.".count))
            return renamed
        }
        try StateDict.load(weights, into: network, source: trace.source, naming: .native, layout: .grouped)
        if let carried {
            for (name, parameter) in network.namedParameters { if let value = carried.parameters[name] { parameter.value = value } }
        }
        for (i, layer) in network.layers.enumerated() { try injectMask(layer, index: i, tower: nil) }
        // The towers copy the weights now, before the grouped step changes them.
        let towers = hasTowerTensors ? try TowerNetwork(copying: network, workersPerTower: options.workers) : nil

        let scores = try network.forward(input, context: context)
        for (i, layer) in layers.enumerated() { endToEnd["forward.\(layer.name)"] = network.activations[i + 1] }
        if needsLoss, let labels = plan.labels {
            let output = try network.loss.forward(logits: scores, labels: labels)
            endToEnd["loss"] = Tensor(shape: [], repeating: output.loss)
            let scoreGradient = try network.loss.backward()
            endToEnd["grad.scores"] = scoreGradient
            if needsBackward {
                try network.backward(scoreGradient, context: context)
                for (i, layer) in layers.enumerated() { endToEnd["grad_input.\(layer.name)"] = network.gradients[i] }
                for (name, parameter) in network.namedParameters { endToEnd["grad.\(name)"] = parameter.gradient }
                if needsUpdate, let sgd = trace.sgd {
                    let optimiser = SGD<T>(learningRate: sgd.learningRate, momentum: sgd.momentum,
                                           weightDecay: sgd.weightDecay, form: sgd.form)
                    for (name, parameter) in network.namedParameters {
                        if let velocity = carried?.velocities[name] { try optimiser.setVelocity(velocity, of: parameter) }
                    }
                    try optimiser.step(network.namedParameters.map(\.parameter), pool: pool)
                    for (name, parameter) in network.namedParameters { endToEnd["updated.\(name)"] = parameter.value }
                    carriedAfter = ReplayState(
                        parameters: Dictionary(uniqueKeysWithValues: network.namedParameters.map { ($0.name, $0.parameter.value) }),
                        velocities: Dictionary(uniqueKeysWithValues: network.namedParameters.map {
                            ($0.name, optimiser.velocity(of: $0.parameter)) }))
                }
            }
        }
        if let towers { try runTowersEndToEnd(towers) }
    }

    func runTowersEndToEnd(_ towers: TowerNetwork<T>) throws {
        for t in 0..<plan.towers {
            for (i, layer) in towers.layers[t].enumerated() { try injectMask(layer, index: i, tower: t) }
            for (name, parameter) in towers.namedParameters(tower: t) { endToEnd["tower\(t).param.\(name)"] = parameter.value }
        }
        let scores = try towers.forward(input, context: context)
        for t in 0..<plan.towers {
            for (i, layer) in layers.enumerated() { endToEnd["tower\(t).forward.\(layer.name)"] = towers.activations[t][i + 1] }
        }
        guard needsLoss, needsBackward, let labels = plan.labels else { return }
        _ = try towers.loss.forward(logits: scores, labels: labels)
        try towers.backward(try towers.loss.backward(), context: context)
        for t in 0..<plan.towers {
            for (i, layer) in layers.enumerated() { endToEnd["tower\(t).grad_input.\(layer.name)"] = towers.gradients[t][i] }
            for (name, parameter) in towers.namedParameters(tower: t) { endToEnd["tower\(t).grad.\(name)"] = parameter.gradient }
            if needsUpdate, let sgd = trace.sgd {
                let optimiser = SGD<T>(learningRate: sgd.learningRate, momentum: sgd.momentum, weightDecay: sgd.weightDecay,
                                       form: sgd.form)
                try optimiser.step(towers.namedParameters(tower: t).map(\.parameter), pool: towers.pools[t])
                for (name, parameter) in towers.namedParameters(tower: t) { endToEnd["tower\(t).updated.\(name)"] = parameter.value }
            }
        }
    }

    /// A layer trace end to end: the layer on the given input, backward from the
    /// given upstream gradient, SGD from our own parameter gradients.
    func runLayerEndToEnd() throws {
        let spec = layers[0]
        let layer = try makeLayer(spec, index: 0, tower: nil)
        try load(layer) { self.parameters[$0] }
        try injectMask(layer, index: 0, tower: nil)
        endToEnd["forward.\(spec.name)"] = try layer.forward(input, context: context)
        guard needsBackward, let upstream = reference["grad_output.\(spec.name)"] else { return }
        do {
            endToEnd["grad_input.\(spec.name)"] = try layer.backward(upstream, context: context)
        } catch {
            return  // grad_output does not fit our output: the alone pass records why
        }
        for parameter in layer.parameters { endToEnd["grad.\(spec.name).\(parameter.name)"] = parameter.gradient }
        if needsUpdate, let sgd = trace.sgd {
            let optimiser = SGD<T>(learningRate: sgd.learningRate, momentum: sgd.momentum, weightDecay: sgd.weightDecay,
                                   form: sgd.form)
            try optimiser.step(layer.parameters, pool: pool)
            for parameter in layer.parameters { endToEnd["updated.\(spec.name).\(parameter.name)"] = parameter.value }
        }
    }

    // MARK: Alone

    /// Every layer alone on the reference's own tensors, chained through ours
    /// only where the reference does not hold the tensor.
    func runAlone() throws {
        let built = try layers.enumerated().map { i, spec in try makeLayer(spec, index: i, tower: nil) }
        for (i, layer) in built.enumerated() {
            try load(layer) { self.parameters[$0] }
            try injectMask(layer, index: i, tower: nil)
        }
        var current: Tensor<T>? = input
        var ranForward = [Bool](repeating: false, count: layers.count)
        for (i, layer) in built.enumerated() {
            let name = "forward.\(layers[i].name)"
            guard let x = current else {
                aloneUnavailable[name] = "its input is neither in the trace nor computable"
                current = reference[name]
                continue
            }
            aloneInputs[i] = x
            do {
                let y = try layer.forward(x, context: context)
                alone[name] = y
                ranForward[i] = true
                current = reference[name].map { feedable($0, like: y) } ?? y
            } catch {
                aloneUnavailable[name] = "the layer cannot take the reference's input: \(error)"
                current = reference[name]
            }
        }
        var upstream: Tensor<T>?
        if isNetwork {
            if needsLoss, let labels = plan.labels, let scores = current {
                let loss = SoftmaxCrossEntropy<T>(name: "loss")
                do {
                    let output = try loss.forward(logits: scores, labels: labels)
                    alone["loss"] = Tensor(shape: [], repeating: output.loss)
                    alone["grad.scores"] = try loss.backward()
                } catch {
                    aloneUnavailable["loss"] = "\(error)"
                    aloneUnavailable["grad.scores"] = "\(error)"
                }
            }
            upstream = reference["grad.scores"] ?? alone["grad.scores"]
        } else {
            upstream = reference["grad_output.\(layers[0].name)"]
        }
        if needsBackward {
            for (i, layer) in built.enumerated().reversed() {
                let name = layers[i].name
                let produced = ["grad_input.\(name)"] + layer.parameters.map { "grad.\(name).\($0.name)" }
                guard let g = upstream, ranForward[i] else {
                    let why = ranForward[i] ? "no gradient of its output in the trace or computable"
                        : "its forward pass could not run alone"
                    for tensor in produced { aloneUnavailable[tensor] = why }
                    upstream = reference["grad_input.\(name)"]
                    continue
                }
                aloneUpstream[i] = g
                do {
                    let gi = try layer.backward(g, context: context)
                    alone["grad_input.\(name)"] = gi
                    for parameter in layer.parameters { alone["grad.\(name).\(parameter.name)"] = parameter.gradient }
                    upstream = reference["grad_input.\(name)"].map { feedable($0, like: gi) } ?? gi
                } catch {
                    for tensor in produced { aloneUnavailable[tensor] = "the layer cannot take the reference's gradient: \(error)" }
                    upstream = reference["grad_input.\(name)"]
                }
            }
        }
        if needsUpdate, let sgd = trace.sgd {
            for (i, layer) in built.enumerated() {
                for parameter in layer.parameters {
                    let full = "\(layers[i].name).\(parameter.name)"
                    guard let value = parameters[full], let gradient = reference["grad.\(full)"] ?? alone["grad.\(full)"] else {
                        aloneUnavailable["updated.\(full)"] = "no gradient for it in the trace or computable"
                        continue
                    }
                    alone["updated.\(full)"] = try sgdStep(sgd, form: sgd.form, value: value, gradient: gradient,
                                                            velocity: referenceVelocities[full])
                }
            }
        }
    }

    /// The reference's tensor as the next layer takes it: an NHWC tensor (`[N, H, W, C]`
    /// where ours is `[N, C, H, W]`) is transposed, so one layout mistake is reported
    /// at the tensor that has it, not again at every layer fed from it.
    func feedable(_ reference: Tensor<T>, like ours: Tensor<T>) -> Tensor<T> {
        guard reference.shape != ours.shape, reference.shape.rank == 4, let permuted = try? reference.permutingNHWCToNCHW(),
              permuted.shape == ours.shape else { return reference }
        return permuted
    }

    /// One step of our SGD on a copy of `value`, from `velocity` (in `form`; zero when nil).
    func sgdStep(_ sgd: TraceSGD, form: SGDForm, value: Tensor<T>, gradient: Tensor<T>,
                 velocity: Tensor<T>? = nil) throws -> Tensor<T> {
        let parameter = Parameter<T>(name: "p", value: value)
        parameter.gradient = gradient
        let optimiser = SGD<T>(learningRate: sgd.learningRate, momentum: sgd.momentum, weightDecay: sgd.weightDecay, form: form)
        if let velocity { try optimiser.setVelocity(velocity, of: parameter) }
        try optimiser.step([parameter], pool: pool)
        return parameter.value
    }

    /// Whether the towers exchange before layer `i` (``TowerPlan``).
    func crossesBefore(_ i: Int) -> Bool { towerPlan.crossesBefore(i) }

    /// Tower `t`'s value of parameter `name`: the reference's own per-tower tensor, else its rows of `param.*`.
    func towerParameter(_ name: String, tower t: Int) throws -> Tensor<T>? {
        if let own = reference["tower\(t).param.\(name)"] { return own }
        return try parameters[name]?.towerRows(t, of: plan.towers)
    }

    /// The reference's tower `t` half of a dimension-1 tensor: its own per-tower tensor, else its half of the whole one.
    func referenceTowerHalf(_ name: String, tower t: Int) -> Tensor<T>? {
        if let own = reference["tower\(t).\(name)"] { return own }
        return reference[name].flatMap { try? $0.towerChannels(t, of: plan.towers) }
    }

    /// Each tower's layers alone, fed the reference's own per-tower tensors.
    func runTowersAlone() throws {
        let towers = plan.towers
        var built: [[any Layer<T>]] = []
        for t in 0..<towers {
            var row: [any Layer<T>] = []
            for (i, spec) in layers.enumerated() {
                let layer = try makeLayer(spec, index: i, tower: t)
                try load(layer) { try self.towerParameter($0, tower: t) }
                try injectMask(layer, index: i, tower: t)
                row.append(layer)
            }
            built.append(row)
            for (name, _) in plan.parameters.flatMap({ $0 }) {
                alone["tower\(t).param.\(name)"] = try parameters[name]!.towerRows(t, of: towers)
            }
        }
        var outputs: [[Tensor<T>?]] = Array(repeating: Array(repeating: nil, count: layers.count), count: towers)
        var ranForward: [[Bool]] = Array(repeating: Array(repeating: false, count: layers.count), count: towers)
        for i in layers.indices {
            let name = layers[i].name
            func previous(_ u: Int) -> Tensor<T>? {
                guard i > 0 else { return input }
                return referenceTowerHalf("forward.\(layers[i - 1].name)", tower: u) ?? outputs[u][i - 1]
            }
            for t in 0..<towers {
                let key = "tower\(t).forward.\(name)"
                let x: Tensor<T>?
                if i == 0 {
                    x = towerPlan.inputs[0] == .imageHalf ? try input.towerChannels(t, of: towers) : input
                } else if crossesBefore(i) {
                    let halves = (0..<towers).map(previous)
                    x = halves.contains { $0 == nil } ? nil : try? Tensor.concatenate(channels: halves.map { $0! })
                } else {
                    x = previous(t)
                }
                guard let x else {
                    aloneUnavailable[key] = "its input is neither in the trace nor computable"
                    continue
                }
                towerInputs[t][i] = x
                do {
                    let y = try built[t][i].forward(x, context: context)
                    outputs[t][i] = y
                    alone[key] = y
                    ranForward[t][i] = true
                } catch {
                    aloneUnavailable[key] = "the layer cannot take the reference's input: \(error)"
                }
            }
        }
        guard needsBackward else { return }
        let scoreGradient = reference["grad.scores"] ?? alone["grad.scores"]
        var upstream: [Tensor<T>?] = (0..<towers).map { t in scoreGradient.flatMap { try? $0.towerChannels(t, of: towers) } }
        for i in layers.indices.reversed() {
            let name = layers[i].name
            var partials: [Tensor<T>?] = Array(repeating: nil, count: towers)
            for t in 0..<towers {
                guard let g = upstream[t], ranForward[t][i] else { continue }
                towerUpstream[t][i] = g
                do {
                    partials[t] = try built[t][i].backward(g, context: context)
                    for parameter in built[t][i].parameters {
                        alone["tower\(t).grad.\(name).\(parameter.name)"] = parameter.gradient
                    }
                } catch {
                    aloneUnavailable["tower\(t).grad_input.\(name)"] = "the layer cannot take the reference's gradient: \(error)"
                }
            }
            for t in 0..<towers {
                let key = "tower\(t).grad_input.\(name)"
                var mine: Tensor<T>?
                if crossesBefore(i) {
                    // Tower t keeps its half of the partials' sum, added in tower order.
                    if partials.allSatisfy({ $0 != nil }) {
                        let halves = try partials.map { try $0!.towerChannels(t, of: towers) }
                        mine = try halves.dropFirst().reduce(halves[0]) { try $0.adding($1) }
                    }
                } else {
                    mine = partials[t]
                }
                if let mine { alone[key] = mine } else if aloneUnavailable[key] == nil {
                    aloneUnavailable[key] = "its upstream gradient or forward pass is missing"
                }
                upstream[t] = referenceTowerHalf("grad_input.\(name)", tower: t) ?? mine
            }
        }
        if needsUpdate, let sgd = trace.sgd {
            for t in 0..<towers {
                for (name, _) in plan.parameters.flatMap({ $0 }) {
                    let key = "tower\(t).updated.\(name)"
                    let gradient = reference["tower\(t).grad.\(name)"]
                        ?? (try? reference["grad.\(name)"]?.towerRows(t, of: towers)) ?? alone["tower\(t).grad.\(name)"]
                    guard let value = try towerParameter(name, tower: t), let gradient else {
                        aloneUnavailable[key] = "no gradient for it in the trace or computable"
                        continue
                    }
                    alone[key] = try sgdStep(sgd, form: sgd.form, value: value, gradient: gradient)
                }
            }
        }
    }

    // MARK: Comparing

    /// Compares ours with the reference's tensor, matching a scalar loss's shape.
    func compare(_ ours: Tensor<T>?, _ name: String, _ tolerance: Tolerance) -> TensorComparison? {
        guard var ours, let ref = reference[name] else { return nil }
        if ours.count == ref.count, ref.count == 1, ours.shape != ref.shape, let reshaped = try? ours.reshaped(ref.shape) {
            ours = reshaped
        }
        return TensorComparison.compare(ours: ours, reference: ref, tolerance: tolerance)
    }

    /// `K` for a tensor computed alone: the layer's own length, plus the lengths
    /// accumulated in any of our own tensors it was fed where the reference held none
    /// (a trace without `forward.*` is checked alone on our own activations).
    lazy var aloneLengths: [String: Int] = {
        var result: [String: Int] = [:]
        func has(_ name: String) -> Bool { reference[name] != nil }
        var carried = 0
        var inputLengths: [Int] = []
        for layer in layers {
            inputLengths.append(carried)
            let k = carried + lengths.local(for: "forward.\(layer.name)")
            result["forward.\(layer.name)"] = k
            carried = has("forward.\(layer.name)") ? 0 : k
        }
        var upstream = 0
        if isNetwork {
            result["loss"] = carried + lengths.local(for: "loss")
            result["grad.scores"] = carried + lengths.local(for: "grad.scores")
            upstream = has("grad.scores") ? 0 : carried + lengths.local(for: "grad.scores")
        }
        for (i, layer) in layers.enumerated().reversed() {
            let k = upstream + inputLengths[i] + lengths.local(for: "grad_input.\(layer.name)")
            result["grad_input.\(layer.name)"] = k
            for (name, _) in plan.parameters[i] {
                let g = upstream + inputLengths[i] + lengths.local(for: "grad.\(name)")
                result["grad.\(name)"] = g
                result["updated.\(name)"] = (has("grad.\(name)") ? 0 : g) + 1
                result["param.\(name)"] = 1
            }
            upstream = has("grad_input.\(layer.name)") ? 0 : k
        }
        return result
    }()

    /// `K` for a tensor computed alone (``aloneLengths``).
    func aloneLength(for name: String) -> Int {
        aloneLengths[ReductionLengths.untowered(name)] ?? lengths.local(for: name)
    }

    func tolerance(_ role: TraceRole, alone isAlone: Bool) -> Tolerance {
        var tolerance = options.tolerances.tolerance(
            for: role.name, layer: role.layer, dtype: trace.dtype,
            reductionLength: isAlone ? aloneLength(for: role.name) : lengths.endToEnd(for: role.name))
        // tanh's and LRN's backward multiply the upstream gradient by factors that cancel: their
        // rounding errors have the upstream gradient's size, not the (possibly tiny) result's.
        if case .inputGradient(let i) = role.content, !tolerance.exact {
            switch layers[i].kind {
            case .tanh, .localResponseNorm:
                if let upstream = upstreamGradient(layer: i, tower: role.tower, alone: isAlone) {
                    tolerance.minimumScale = Self.rms(upstream)
                }
            default:
                break
            }
        }
        return tolerance
    }

    /// The gradient of layer `i`'s output that its backward pass started from.
    func upstreamGradient(layer i: Int, tower: Int?, alone isAlone: Bool) -> Tensor<T>? {
        if isAlone { return tower.map { towerUpstream[$0][i] } ?? aloneUpstream[i] }
        let prefix = tower.map { "tower\($0)." } ?? ""
        if i + 1 < layers.count { return endToEnd[prefix + "grad_input.\(layers[i + 1].name)"] }
        if isNetwork { return endToEnd["grad.scores"].flatMap { g in tower.map { try? g.towerChannels($0, of: plan.towers) } ?? g } }
        return reference["grad_output.\(layers[i].name)"]
    }

    static func rms(_ t: Tensor<T>) -> Double {
        guard t.count > 0 else { return 0 }
        var sum = 0.0
        t.withUnsafeBufferPointer { for x in $0 { sum += Double(x) * Double(x) } }
        return (sum / Double(t.count)).squareRoot()
    }

    func buildReport() -> OracleReport {
        var entries: [OracleEntry] = []
        for role in plan.compared {
            let a = compare(alone[role.name], role.name, tolerance(role, alone: true))
            let e = compare(endToEnd[role.name], role.name, tolerance(role, alone: false))
            let verdict: OracleVerdict
            if let a {
                verdict = !a.passed ? .differs : (e.map { $0.passed } ?? true) ? .agrees : .drifts
            } else if let e {
                verdict = e.passed ? .agrees : .differs
            } else {
                verdict = .notComputed
            }
            entries.append(OracleEntry(role: role, referenceShape: reference[role.name]!.shape, alone: a, endToEnd: e,
                                       aloneUnavailable: a == nil ? (aloneUnavailable[role.name] ?? "not computed") : nil,
                                       verdict: verdict, findings: []))
        }
        var notes = plan.notes
        if options.diagnose {
            let diagnosis = OracleDiagnosis(run: self)
            for index in entries.indices where entries[index].verdict == .differs {
                entries[index].findings = diagnosis.diagnose(entries[index])
            }
            notes += diagnosis.notes(entries)
        }
        let drifting = entries.filter { $0.verdict == .drifts }
        if !drifting.isEmpty {
            let inherited = entries.contains { $0.verdict == .differs }
            notes.append("\(drifting.count) tensor(s) agree alone but not end to end (" + OracleReport.abbreviated(drifting.map(\.name), limit: 6)
                         + "): " + (inherited ? "they inherit the difference of the layers that differ"
                                    : "rounding accumulated over the step, or a ReLU sign or max-pool winner that rounding flipped")
                         + "; " + (options.failOnEndToEnd ? "counted as mismatches (--end-to-end)"
                                   : "not counted as mismatches (pass --end-to-end to count them)"))
        }
        var report = OracleReport(source: trace.source, kind: trace.kind, subject: trace.subjectName, dtype: trace.dtype,
                                  mode: trace.mode, producer: trace.producer, batch: plan.batch,
                                  toleranceRule: options.tolerances.summary(dtype: trace.dtype), entries: entries,
                                  absent: plan.absent, ignored: plan.ignored, notes: notes,
                                  failOnEndToEnd: options.failOnEndToEnd)
        let groups = plan.expandedGroups(options.compare).map(\.rawValue)
        report.required = (groups.isEmpty ? "nothing beyond one tensor" : groups.joined(separator: ", "))
            + " (" + plan.requirementDescription(options.compare) + ")"
        return report
    }
}
