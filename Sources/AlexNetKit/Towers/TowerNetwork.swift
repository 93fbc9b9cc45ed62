import Dispatch

/// One copy between towers (or between a tower and the host), as recorded by
/// ``TowerNetwork``.
public struct Crossing: Equatable, Sendable {
    /// Where the data went.
    public enum Kind: String, Sendable {
        /// Forward: each tower sends its half of the layer's input to the other.
        case forwardExchange = "forward exchange"
        /// Backward: each tower sends the other its partial input gradient for the other's half.
        case backwardExchange = "backward exchange"
        /// The class scores, gathered from both towers for the loss.
        case scoresToHost = "scores to host"
        /// The loss gradient, split back to the towers.
        case scoreGradientToTowers = "score gradient to towers"
    }

    /// The layer before which (forward) or after which (backward) the copy happened.
    public var layer: String
    public var kind: Kind
    /// Bytes copied, both directions together.
    public var bytes: Int
}

/// The "virtual GPU": the paper's two half-networks, each on its own worker
/// pool with its own copy of its weights and activations ("device memory"),
/// exchanging data only where the paper's GPUs did.
///
/// Tower `t` holds the `t`-th half of every activation along dimension 1 and
/// the matching rows of every weight. Layers run on both towers at once, each
/// tower's layer on its own pool. Before a crossing layer (a `groups: 1`
/// convolution after the first layer, such as conv3, and every linear layer)
/// the towers exchange halves so both hold the whole input; in backward each
/// tower computes a partial gradient for the whole input and the towers
/// exchange the halves they do not own, each adding partials in tower order
/// (tower 0's first). Every copy is recorded in ``crossings`` with its bytes.
///
/// Each tower computes exactly the pieces of work the grouped ``Network`` does
/// for its half (same matrix products, same summation order), so outputs,
/// gradients and weights after SGD steps are bitwise identical to the grouped
/// run: by construction, not by luck.
public final class TowerNetwork<Element: TensorElement> {
    public let spec: ModelSpec
    /// The worker pools, one per tower.
    public let pools: [WorkerPool]
    /// `layers[t][i]`: tower `t`'s half of layer `i`.
    public let layers: [[any Layer<Element>]]
    /// What each tower's copy of every layer receives (exchanges, the first layer's input).
    public let plan: TowerPlan
    /// Whether the towers exchange before layer `i` in forward (and after it in backward): ``plan``'s answer per layer.
    public var crossesBefore: [Bool] { plan.inputs.indices.map(plan.crossesBefore) }
    /// The loss, computed on the host from the gathered scores.
    public let loss = SoftmaxCrossEntropy<Element>(name: "loss")

    /// Every copy of the last forward and backward pass, in the order made.
    public private(set) var crossings: [Crossing] = []
    /// `activations[t][0]` is tower `t`'s copy of the input; `activations[t][i + 1]`
    /// its half of layer `i`'s output (the whole input of a crossing layer is
    /// not kept: it is the two halves of the previous entry).
    public private(set) var activations: [[Tensor<Element>]] = []
    /// `gradients[t][i]`: tower `t`'s dLoss/d`activations[t][i]` (for its own half) after backward.
    public private(set) var gradients: [[Tensor<Element>]] = []
    /// dLoss/dInput of the last backward pass: the towers' partials added in tower order.
    public private(set) var inputGradient: Tensor<Element>?
    /// Whether backward keeps every tower's input gradients in ``gradients`` and
    /// the image's in ``inputGradient`` (the tests and the oracle read them).
    /// Training turns it off: each tower's gradients then take turns in the
    /// tower's own ``GradientBuffers`` when the context asks for buffers.
    public var keepsGradients = true
    /// One set of gradient buffers per tower (the towers run at once).
    private let towerBuffers: [GradientBuffers<Element>]

    /// Builds the towers with their halves of `network`'s current weights (a copy
    /// to "device memory": later changes to either side do not reach the other).
    /// - Parameter workersPerTower: threads in each tower's pool.
    /// - Throws: ``ConfigurationError`` unless `network.spec.towers == 2`.
    public init(copying network: Network<Element>, workersPerTower: Int = 1) throws {
        let spec = network.spec
        guard spec.towers == 2 else {
            throw ConfigurationError(component: spec.name, problem: "a tower network needs a spec with towers 2, got \(spec.towers)")
        }
        self.spec = spec
        self.pools = (0..<spec.towers).map { WorkerPool(workerCount: workersPerTower, label: "tower\($0)") }
        var layers = [[any Layer<Element>]](repeating: [], count: spec.towers)
        var shape = spec.inputShape
        for (index, layerSpec) in spec.layers.enumerated() {
            for tower in 0..<spec.towers {
                let layer = try Network<Element>.makeLayer(layerSpec, index: index, inputShape: shape, towers: spec.towers,
                                                           tower: tower, seed: network.seed)
                // Tower t's rows of every parameter: a contiguous block along dimension 0.
                for (mine, whole) in zip(layer.parameters, network.layers[index].parameters) {
                    mine.value = try whole.value.towerRows(tower, of: spec.towers)
                }
                layers[tower].append(layer)
            }
            shape = try layerSpec.outputShape(for: shape)
        }
        self.layers = layers
        self.plan = TowerPlan(spec: spec)
        self.towerBuffers = (0..<spec.towers).map { _ in GradientBuffers<Element>() }
    }

    /// Tower `t`'s parameters with their state-dict names, in layer order.
    public func namedParameters(tower: Int) -> [(name: String, parameter: Parameter<Element>)] {
        layers[tower].flatMap { layer in layer.parameters.map { ("\(layer.name).\($0.name)", $0) } }
    }

    /// Runs `body(t)` for every tower at once, tower `t` on its own pool; rethrows the first error.
    private func onEachTower<R>(_ body: (Int) throws -> R) throws -> [R] {
        var results = [Result<R, Error>?](repeating: nil, count: pools.count)
        results.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            DispatchQueue.concurrentPerform(iterations: pools.count) { tower in
                base[tower] = Result { try body(tower) }
            }
        }
        return try results.map { try $0!.get() }
    }

    /// Tower `tower`'s context: its pool, and its own gradient buffers when the caller asks for buffers.
    private func context(_ tower: Int, _ context: PassContext) -> PassContext {
        PassContext(pool: pools[tower], mode: context.mode, step: context.step,
                    gradientBuffers: context.gradientBuffers == nil ? nil : towerBuffers[tower])
    }

    /// Forward through both towers.
    /// - Parameters:
    ///   - input: `[N, C, H, W]`; each tower gets its own copy (the host sends the batch to both).
    ///   - context: mode and step; its pool is ignored (each tower uses its own).
    /// - Returns: the class scores `[N, classes]`, gathered from the towers.
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        try input.requireShape([nil] + spec.inputShape.dims.map { $0 }, operation: spec.name, argument: "input")
        crossings.removeAll()
        gradients = []
        inputGradient = nil
        activations = []
        for tower in layers { for layer in tower { layer.releaseCaches() } }
        // The host sends the image to both towers, or each tower its half of the channels.
        var current = try (0..<pools.count).map { tower in
            plan.inputs[0] == .imageHalf ? try input.towerChannels(tower, of: pools.count) : input
        }
        activations = current.map { [$0] }
        for index in spec.layers.indices {
            if plan.crossesBefore(index) {
                current = try exchange(current, layer: spec.layers[index].name)
            }
            current = try onEachTower { tower in
                try self.layers[tower][index].forward(current[tower], context: self.context(tower, context))
            }
            for tower in current.indices { activations[tower].append(current[tower]) }
        }
        let scores = try Tensor.concatenate(channels: current)
        crossings.append(Crossing(layer: spec.layers.last!.name, kind: .scoresToHost,
                                  bytes: scores.count * MemoryLayout<Element>.size))
        return scores
    }

    /// Both halves joined, one copy per tower: tower `t` receives the others' halves.
    private func exchange(_ halves: [Tensor<Element>], layer: String) throws -> [Tensor<Element>] {
        let whole = try Tensor.concatenate(channels: halves)
        let sent = halves.reduce(0) { $0 + $1.count } * MemoryLayout<Element>.size
        crossings.append(Crossing(layer: layer, kind: .forwardExchange, bytes: sent))
        return [Tensor<Element>](repeating: whole, count: halves.count)
    }

    /// Backward through both towers from dLoss/dScores.
    /// - Parameter scoreGradient: `[N, classes]`; tower `t` receives its half.
    public func backward(_ scoreGradient: Tensor<Element>, context: PassContext) throws {
        guard let last = activations.first, last.count == spec.layers.count + 1 else {
            throw ConfigurationError(component: spec.name, problem: "backward was called before forward")
        }
        let towers = pools.count
        var current = try (0..<towers).map { try scoreGradient.towerChannels($0, of: towers) }
        crossings.append(Crossing(layer: spec.layers.last!.name, kind: .scoreGradientToTowers,
                                  bytes: scoreGradient.count * MemoryLayout<Element>.size))
        var reversed = [current]
        let keeps = keepsGradients
        let recycles = !keepsGradients && context.gradientBuffers != nil
        for index in spec.layers.indices.reversed() {
            var upstream = current
            current = try onEachTower { tower in
                // Without kept gradients nobody reads the image's: the first layer may skip it.
                let layerContext = self.context(tower, context).needingInputGradient(keeps || index > 0 || self.plan.crossesBefore(index))
                let below = try self.layers[tower][index].backward(upstream[tower], context: layerContext)
                if recycles { self.towerBuffers[tower].give(upstream[tower]) }
                return below
            }
            // Let go of the consumed gradients before the crossing's sums take
            // buffers: one still held here would be copied there, not reused.
            upstream.removeAll()
            if plan.crossesBefore(index) {
                current = try reduceScatter(current, layer: spec.layers[index].name, recycling: recycles)
            }
            if keeps { reversed.append(current) }
        }
        guard keeps else {
            inputGradient = nil
            gradients = []
            return
        }
        if plan.imageGradientIsSummed {
            // The first layer saw the whole image on each tower: the image gradient is the sum of the partials.
            inputGradient = try sumInTowerOrder(current)
        } else {
            inputGradient = try Tensor.concatenate(channels: current)
        }
        gradients = (0..<towers).map { tower in reversed.reversed().map { $0[tower] } }
    }

    /// Each tower holds a partial gradient for the whole input; tower `t` keeps its
    /// half of the sum, adding the partials in tower order.
    ///
    /// With `recycling` (training: the towers' ``GradientBuffers``), each tower's
    /// half goes into a buffer from its own pool and the partials go back to
    /// theirs; otherwise the pools would lose a buffer at every crossing, and the
    /// layers below would allocate (and fault in) fresh pages every step.
    private func reduceScatter(_ partials: [Tensor<Element>], layer: String, recycling: Bool) throws -> [Tensor<Element>] {
        let towers = partials.count
        let result = try onEachTower { tower -> Tensor<Element> in
            try self.channelSum(partials, tower: tower, into: recycling ? self.towerBuffers[tower] : nil)
        }
        if recycling {
            for (tower, partial) in partials.enumerated() { towerBuffers[tower].give(partial) }
        }
        // Each tower sends the others their halves of its partial.
        let sent = partials.reduce(0) { $0 + $1.count } * (towers - 1) / towers * MemoryLayout<Element>.size
        crossings.append(Crossing(layer: layer, kind: .backwardExchange, bytes: sent))
        return result
    }

    /// Tower `tower`'s share of dimension 1 of `partials[0] + partials[1] + ...`,
    /// added left to right as the grouped layers add their blocks, in a buffer
    /// taken from `buffers` (a new tensor without).
    /// - Parameter partials: `[N, C, ...]` each, one per tower.
    /// - Returns: `[N, C / towers, ...]`.
    private func channelSum(_ partials: [Tensor<Element>], tower: Int,
                            into buffers: GradientBuffers<Element>?) throws -> Tensor<Element> {
        let first = partials[0]
        guard first.shape.rank >= 2 else {
            throw ShapeError(operation: spec.name, argument: "partial gradient", expected: "[N, C, ...]", actual: first.shape)
        }
        for part in partials.dropFirst() {
            try part.requireShape(first.shape, operation: spec.name, argument: "partial gradient")
        }
        var dims = first.shape.dims
        dims[1] /= partials.count
        var sum = buffers?.take(shape: Shape(dims), zeroed: false) ?? Tensor(shape: Shape(dims))
        let inner = dims.dropFirst(2).reduce(1, *)
        let (images, block, full) = (dims[0], dims[1] * inner, first.shape[1] * inner)
        sum.withUnsafeMutableBufferPointer { s in
            for (k, part) in partials.enumerated() {
                part.withUnsafeBufferPointer { p in
                    for n in 0..<images {
                        let (source, target) = (p.baseAddress! + n * full + tower * block, s.baseAddress! + n * block)
                        if k == 0 {
                            target.update(from: source, count: block)
                        } else {
                            Accumulate.add(source, into: target, count: block)
                        }
                    }
                }
            }
        }
        return sum
    }

    /// Elements of gradient storage the towers' buffers have allocated so far
    /// (``GradientBuffers``; tests read it).
    var allocatedGradientElements: Int { towerBuffers.reduce(0) { $0 + $1.allocatedElements } }

    /// `parts[0] + parts[1] + ...`, element-wise, left to right (as the grouped layers add their blocks).
    private func sumInTowerOrder(_ parts: [Tensor<Element>]) throws -> Tensor<Element> {
        var sum = parts[0]
        for part in parts.dropFirst() {
            try part.requireShape(sum.shape, operation: spec.name, argument: "partial gradient")
            sum.withUnsafeMutableBufferPointer { s in
                part.withUnsafeBufferPointer { p in
                    Accumulate.add(p.baseAddress!, into: s.baseAddress!, count: s.count)
                }
            }
        }
        return sum
    }

    /// One optimiser step on every tower at once, each tower updating its own
    /// weights with its own gradients on its own pool (no data crosses).
    /// - Parameter optimisers: one per tower, in tower order (each keeps its tower's velocities).
    public func step(_ optimisers: [SGD<Element>]) throws {
        guard optimisers.count == pools.count else {
            throw ConfigurationError(component: spec.name, problem: "\(optimisers.count) optimisers for \(pools.count) towers")
        }
        _ = try onEachTower { tower in
            try optimisers[tower].step(self.namedParameters(tower: tower).map(\.parameter), pool: self.pools[tower])
        }
    }

    /// Bytes crossed between towers in the last forward and backward pass (host copies excluded).
    public var exchangedBytes: Int {
        crossings.filter { $0.kind == .forwardExchange || $0.kind == .backwardExchange }.reduce(0) { $0 + $1.bytes }
    }
}
