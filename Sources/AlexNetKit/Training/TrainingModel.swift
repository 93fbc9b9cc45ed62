/// A network with its optimiser, as the trainer drives it: one tower (a
/// ``Network`` on one pool, one ``SGD``) or two (a ``TowerNetwork`` built by
/// copying the network, one ``SGD`` per tower on its own pool).
///
/// Both run the same arithmetic (``TowerNetwork`` is bitwise identical to the
/// grouped ``Network``), so a run gives the same weights with one or two
/// towers as long as the spec is the same two-tower spec. Weights and
/// velocities go in and out grouped (`conv3.weight` holds both towers' rows,
/// tower 0's first), whatever the executor.
public final class TrainingModel {
    /// The grouped network. With two towers it holds the *initial* weights
    /// only; ``weights()`` reads the towers' current ones.
    public let network: Network<Float>
    /// The two-tower executor, or nil for one tower.
    public let towers: TowerNetwork<Float>?
    /// One optimiser (one tower) or one per tower.
    public let optimisers: [SGD<Float>]
    /// The pool of the one-tower network (unused with two towers: each tower has its own).
    public let pool: WorkerPool
    /// Where the backward pass's input gradients take turns (``Network/keepsGradients`` is off).
    private let gradientBuffers = GradientBuffers<Float>()

    /// - Parameters:
    ///   - network: the initialised network; with `twoTowers` its spec must have `towers == 2`.
    ///   - twoTowers: run on the two-tower executor.
    ///   - threads: worker threads in all (with two towers, `max(1, threads / 2)` per tower).
    ///   - sgd: makes an optimiser (called once per tower).
    /// - Throws: ``ConfigurationError`` for two towers on a one-tower spec.
    public init(network: Network<Float>, twoTowers: Bool, threads: Int, sgd: () -> SGD<Float>) throws {
        self.network = network
        // Training reads no layer's input gradient: they take turns in two buffers.
        network.keepsGradients = false
        if twoTowers {
            let towers = try TowerNetwork(copying: network, workersPerTower: max(1, threads / 2))
            towers.keepsGradients = false
            self.towers = towers
            optimisers = [sgd(), sgd()]
            pool = .serial
        } else {
            towers = nil
            optimisers = [sgd()]
            pool = WorkerPool(workerCount: threads, label: "train")
        }
    }

    /// The number of towers the model runs on.
    public var towerCount: Int { towers == nil ? 1 : 2 }

    /// The learning rate of every optimiser.
    public var learningRate: Double {
        get { optimisers[0].learningRate }
        set { for optimiser in optimisers { optimiser.learningRate = newValue } }
    }

    /// Each tower's parameters with their state-dict names: `[network.namedParameters]` for one tower.
    private var towerParameters: [[(name: String, parameter: Parameter<Float>)]] {
        guard let towers else { return [network.namedParameters] }
        return (0..<2).map { towers.namedParameters(tower: $0) }
    }

    /// One training step's work before the update: forward in training mode,
    /// the loss, backward.
    /// - Parameters:
    ///   - images: `[N, C, H, W]`.
    ///   - step: the global step number (keys the dropout masks).
    public func forwardBackward(_ images: Tensor<Float>, labels: [Int], step: UInt64) throws -> LossOutput<Float> {
        let context = PassContext(pool: pool, mode: .training, step: step, gradientBuffers: gradientBuffers)
        guard let towers else { return try network.forwardBackward(images, labels: labels, context: context) }
        let scores = try towers.forward(images, context: context)
        let output = try towers.loss.forward(logits: scores, labels: labels)
        try towers.backward(try towers.loss.backward(), context: context)
        return output
    }

    /// The first parameter gradient holding NaN or infinity, as a
    /// ``NonFiniteError`` naming the parameter (`conv1.weight.gradient`), or nil.
    public func firstNonFiniteGradient() -> NonFiniteError? {
        for (tower, parameters) in towerParameters.enumerated() {
            for (name, parameter) in parameters where parameter.gradient.firstNonFiniteIndex() != nil {
                return Self.problem(parameter.gradient, name: towers == nil ? "\(name).gradient" : "tower\(tower).\(name).gradient")
            }
        }
        return nil
    }

    /// The first weight holding NaN or infinity, or nil.
    public func firstNonFiniteWeight() -> NonFiniteError? {
        for (tower, parameters) in towerParameters.enumerated() {
            for (name, parameter) in parameters where parameter.value.firstNonFiniteIndex() != nil {
                return Self.problem(parameter.value, name: towers == nil ? name : "tower\(tower).\(name)")
            }
        }
        return nil
    }

    /// The ``NonFiniteError`` that `checkFinite` reports for a tensor known to hold a non-finite value.
    private static func problem(_ tensor: Tensor<Float>, name: String) -> NonFiniteError? {
        do {
            try tensor.checkFinite(name: name)
            return nil
        } catch {
            return error as? NonFiniteError
        }
    }

    /// One SGD update of every parameter from its gradient.
    public func update() throws {
        if let towers {
            try towers.step(optimisers)
        } else {
            try optimisers[0].step(network.namedParameters.map(\.parameter), pool: pool)
        }
    }

    /// Class scores `[N, classes]` in inference mode (dropout scaled, nothing kept for backward).
    public func scores(_ images: Tensor<Float>) throws -> Tensor<Float> {
        let context = PassContext(pool: pool, mode: .inference, step: 0)
        if let towers { return try towers.forward(images, context: context) }
        return try network.forward(images, context: context)
    }

    /// The current weights, grouped, in ``Network/namedParameters`` order.
    public func weights() throws -> [(name: String, tensor: Tensor<Float>)] {
        try grouped { $0.value }
    }

    /// The optimiser velocities, grouped like ``weights()`` (zero before a parameter's first step).
    public func velocities() throws -> [(name: String, tensor: Tensor<Float>)] {
        guard towers != nil else {
            return network.namedParameters.map { ($0.name, optimisers[0].velocity(of: $0.parameter)) }
        }
        let perTower = towerParameters
        return try perTower[0].indices.map { i in
            let halves = (0..<2).map { optimisers[$0].velocity(of: perTower[$0][i].parameter) }
            return (perTower[0][i].name, try Self.stackRows(halves))
        }
    }

    /// Sets weights and velocities (grouped) from a checkpoint; with two
    /// towers each tower gets its rows.
    /// - Throws: ``WeightsError`` naming a missing or mis-shaped tensor; nothing is changed then.
    public func restore(weights: [String: Tensor<Float>], velocities: [String: Tensor<Float>], source: String) throws {
        let names = network.namedParameters
        for (name, parameter) in names {
            for (kind, table) in [("weight", weights), ("velocity", velocities)] {
                guard let tensor = table[name] else {
                    throw WeightsError(file: source, problem: "the checkpoint has no \(kind) for '\(name)'")
                }
                guard tensor.shape == parameter.value.shape else {
                    throw WeightsError(file: source, problem: "\(kind) '\(name)' has shape \(tensor.shape), expected \(parameter.value.shape)")
                }
            }
        }
        for (i, (name, parameter)) in names.enumerated() {
            let weight = weights[name]!, velocity = velocities[name]!
            guard let towers else {
                parameter.value = weight
                try optimisers[0].setVelocity(velocity, of: parameter)
                continue
            }
            for tower in 0..<2 {
                let mine = towers.namedParameters(tower: tower)[i].parameter
                mine.value = try weight.towerRows(tower, of: 2)
                try optimisers[tower].setVelocity(try velocity.towerRows(tower, of: 2), of: mine)
            }
        }
    }

    /// Copies the towers' current weights into ``network`` (no-op for one tower),
    /// so the grouped network can be exported or evaluated on its own.
    public func synchroniseNetwork() throws {
        guard towers != nil else { return }
        for ((_, parameter), (_, tensor)) in zip(network.namedParameters, try weights()) { parameter.value = tensor }
    }

    private func grouped(_ read: (Parameter<Float>) -> Tensor<Float>) throws -> [(name: String, tensor: Tensor<Float>)] {
        let perTower = towerParameters
        guard perTower.count > 1 else { return perTower[0].map { ($0.name, read($0.parameter)) } }
        return try perTower[0].indices.map { i in
            (perTower[0][i].name, try Self.stackRows(perTower.map { read($0[i].parameter) }))
        }
    }

    /// Tensors stacked along dimension 0 (a parameter's tower blocks, tower 0 first).
    static func stackRows(_ parts: [Tensor<Float>]) throws -> Tensor<Float> {
        var dims = parts[0].shape.dims
        dims[0] = parts.reduce(0) { $0 + $1.shape[0] }
        return try Tensor(shape: Shape(dims), values: parts.flatMap(\.storage))
    }
}
