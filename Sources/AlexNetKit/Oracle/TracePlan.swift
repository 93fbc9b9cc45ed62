/// What one tensor of a trace stands for, where it sits in the execution
/// order, and which layer and tower it belongs to.
public struct TraceRole: Equatable, Sendable {
    /// The part of the step a tensor belongs to.
    public enum Phase: String, Sendable {
        /// What the step starts from: `input`, `labels`, `param.*`, `mask.*`, `grad_output.*`.
        case given
        /// `forward.*` and per-tower `param.*` (the weights a tower holds).
        case forward
        /// `loss` and `grad.scores`.
        case loss
        /// `grad.*` and `grad_input.*`.
        case backward
        /// `updated.*`.
        case update
    }

    /// What the tensor holds.
    public enum Content: Equatable, Sendable {
        /// `input`.
        case input
        /// `labels`.
        case labels
        /// `param.<layer>.<weight|bias>` (`tower<t>.param.*` with a tower).
        case parameter(layer: Int, parameter: String)
        /// `mask.<layer>`.
        case mask(layer: Int)
        /// `forward.<layer>`.
        case forward(layer: Int)
        /// `loss`.
        case loss
        /// `grad.scores`.
        case scoreGradient
        /// `grad_output.<layer>` (layer traces).
        case outputGradient(layer: Int)
        /// `grad_input.<layer>`.
        case inputGradient(layer: Int)
        /// `grad.<layer>.<weight|bias>`.
        case parameterGradient(layer: Int, parameter: String)
        /// `updated.<layer>.<weight|bias>`.
        case updated(layer: Int, parameter: String)
    }

    /// The tensor's name in the trace, e.g. `tower1.grad_input.conv3`.
    public var name: String
    /// What it holds.
    public var content: Content
    /// The tower (0 or 1) for `tower<t>.*` tensors; nil for whole tensors.
    public var tower: Int?
    /// The layer's name, or nil for `input`, `labels`, `loss` and `grad.scores`.
    public var layer: String?

    /// The part of the step it belongs to.
    public var phase: Phase {
        switch content {
        case .input, .labels, .mask, .outputGradient: return .given
        case .parameter: return tower == nil ? .given : .forward
        case .forward: return .forward
        case .loss, .scoreGradient: return .loss
        case .inputGradient, .parameterGradient: return .backward
        case .updated: return .update
        }
    }

    /// Whether the oracle compares it (everything but what the step starts from).
    public var isCompared: Bool { phase != .given }
}

/// A trace checked against its spec: every tensor's role, the shape the spec
/// implies for it, the execution order, and what is absent or ignored.
///
/// Building a plan is the validation step: it throws a ``TraceError`` naming
/// the tensor for every problem that makes the trace unusable (a missing
/// required tensor, a wrong dtype, a shape that neither the spec nor a known
/// convention variant explains, NaN or infinity, labels out of range, a mask
/// that is not 0/1, `updated.*` without SGD settings).
public struct TracePlan {
    /// The trace.
    public let trace: Trace
    /// The layers run: the spec's, or the one layer of a layer trace.
    public let layers: [LayerSpec]
    /// Images in the batch (`input`'s first dimension).
    public let batch: Int
    /// 2 when the spec has two towers (per-tower tensors are compared); otherwise 1.
    public let towers: Int
    /// Per-image input shape of every layer, as the spec implies it.
    public let inputShapes: [Shape]
    /// Per-image output shape of every layer, as the spec implies it.
    public let outputShapes: [Shape]
    /// Each layer's parameters: full names (`conv1.weight`) and shapes, weight first.
    public let parameters: [[(name: String, shape: Shape)]]
    /// Every tensor present that the oracle compares, in execution order (Docs/oracle.md).
    public let compared: [TraceRole]
    /// Roles of every tensor present, by name (given and compared).
    public let roles: [String: TraceRole]
    /// Tensors the format defines for this trace that it does not hold (not compared).
    public let absent: [String]
    /// Tensors whose names the format does not define for this trace (not used).
    public let ignored: [String]
    /// Remarks about the trace that do not make it unusable.
    public let notes: [String]
    /// The labels (network traces with a loss), as integers.
    public let labels: [Int]?

    /// Validates `trace` and lays out its tensors.
    /// - Throws: ``TraceError`` naming the tensor or metadata key for every problem
    ///   that makes the trace unusable.
    public init(trace: Trace) throws {
        let source = trace.source
        func fail(_ subject: String?, _ problem: String) -> TraceError {
            TraceError(file: source, subject: subject, problem: problem)
        }
        self.trace = trace

        // The layers and their spec shapes.
        guard let input = trace["input"] else {
            throw fail("input", "missing; every trace needs the batch (network) or the layer's input (layer)")
        }
        guard input.shape.rank >= 2, input.shape[0] >= 1 else {
            throw fail("input", "shape \(input.shape): expected [N, ...] with at least one image")
        }
        let batch = input.shape[0]
        var notes: [String] = []
        var towers = 1
        switch trace.kind {
        case .network:
            guard let spec = trace.spec else { throw fail("metadata 'spec'", "missing") }
            layers = spec.layers
            towers = spec.towers
            let expected = Shape([batch] + spec.inputShape.dims)
            if input.shape != expected {
                var hint = ""
                if input.shape.rank == 4, Shape([input.shape[0], input.shape[3], input.shape[1], input.shape[2]]) == expected {
                    hint = " (this is [N, H, W, C]: the trace must hold NCHW tensors; transpose it with .permute(0, 3, 1, 2))"
                }
                throw fail("input", "shape \(input.shape), the spec implies \(expected) ([N] + the spec's input \(spec.inputShape))" + hint)
            }
            inputShapes = [spec.inputShape] + (try spec.outputShapes().dropLast())
            outputShapes = try spec.outputShapes()
        case .layer:
            guard let layer = trace.layer else { throw fail("metadata 'layer'", "missing") }
            layers = [layer]
            let perImage = Shape(Array(input.shape.dims.dropFirst()))
            inputShapes = [perImage]
            do {
                outputShapes = [try layer.outputShape(for: perImage)]
            } catch {
                throw fail("input", "shape \(input.shape) does not fit layer \(layer.name): \(error)")
            }
            if trace.towers != nil { notes.append("metadata towers is ignored in a layer trace") }
        }
        self.batch = batch
        self.towers = towers
        let parameters = zip(layers, inputShapes).map { TracePlan.parameterShapes(of: $0.0, input: $0.1) }
        self.parameters = parameters
        let layerIndex = Dictionary(uniqueKeysWithValues: layers.enumerated().map { ($1.name, $0) })

        // Every name: its role, or ignored.
        var roles: [String: TraceRole] = [:]
        var ignored: [String] = []
        for tensor in trace.tensors {
            if let role = TracePlan.role(of: tensor.name, kind: trace.kind, layers: layers, layerIndex: layerIndex,
                                         parameters: parameters, towers: towers) {
                roles[tensor.name] = role
            } else {
                ignored.append(tensor.name)
            }
        }
        if !ignored.isEmpty {
            notes.append("ignored (not defined by the format for this trace): " + ignored.joined(separator: ", "))
        }
        if towers == 2, trace.towers == nil, roles.values.contains(where: { $0.tower != nil }) {
            notes.append("per-tower tensors are compared although the metadata does not say towers = 2")
        }

        // Dtypes.
        for tensor in trace.tensors {
            guard let role = roles[tensor.name] else { continue }
            switch role.content {
            case .labels:
                guard !tensor.dtype.isFloatingPoint else {
                    throw fail(tensor.name, "dtype \(tensor.dtype): labels are class indices, int64")
                }
            case .mask:
                guard tensor.dtype == trace.dtype || !tensor.dtype.isFloatingPoint else {
                    throw fail(tensor.name, "dtype \(tensor.dtype): a mask is 0/1 in the trace's dtype "
                               + "(\(trace.dtype)), bool or an integer type")
                }
            default:
                guard tensor.dtype == trace.dtype else {
                    throw fail(tensor.name, "dtype \(tensor.dtype), but the trace's dtype is \(trace.dtype.traceSpelling) "
                               + "(\(trace.dtype)): every float tensor must have it")
                }
            }
        }

        // Required tensors: parameters, masks.
        for (i, layer) in layers.enumerated() {
            for (name, shape) in parameters[i] {
                guard let tensor = trace["param." + name] else {
                    throw fail("param." + name, "missing; every parameter is required (shape \(shape))")
                }
                guard tensor.shape == shape else {
                    throw fail("param." + name, "shape \(tensor.shape), the spec implies \(shape)"
                               + TracePlan.parameterHint(layer: layer, actual: tensor.shape, expected: shape))
                }
            }
            if case .dropout = layer.kind, trace.mode == .training {
                guard trace["mask." + layer.name] != nil else {
                    throw fail("mask." + layer.name, "missing; in training mode every dropout layer's 0/1 mask is required "
                               + "(the check injects it)")
                }
            }
        }

        // Shapes of everything else, against the spec and the reference's own upstream shapes.
        let chain = TracePlan.chainInputShapes(trace: trace, layers: layers, specInputs: inputShapes)
        for tensor in trace.tensors {
            guard let role = roles[tensor.name] else { continue }
            let allowed = TracePlan.allowedShapes(role: role, batch: batch, layers: layers, specInputs: inputShapes,
                                                  specOutputs: outputShapes, chainInputs: chain, parameters: parameters,
                                                  towers: towers)
            if allowed.isEmpty || allowed.contains(tensor.shape) { continue }
            throw fail(tensor.name, "shape \(tensor.shape), the spec implies \(allowed[0])"
                       + (allowed.count > 1 ? " (or one of " + allowed.dropFirst().map(\.description).joined(separator: ", ") + ")" : ""))
        }

        // Labels.
        let needsLabels = trace.kind == .network && roles.values.contains {
            switch $0.content {
            case .loss, .scoreGradient, .inputGradient, .parameterGradient, .updated: return true
            default: return false
            }
        }
        var labels: [Int]?
        if let stored = trace["labels"], trace.kind == .network {
            let values = try stored.integers()
            let classes = trace.spec!.classes
            if let bad = values.firstIndex(where: { $0 < 0 || $0 >= Int64(classes) }) {
                throw fail("labels", "label \(values[bad]) of image \(bad) is outside 0..<\(classes)")
            }
            labels = values.map { Int($0) }
        } else if needsLabels {
            throw fail("labels", "missing; the loss and every gradient of a network trace depend on the labels")
        }
        self.labels = labels

        // SGD settings and the layer trace's upstream gradient.
        if trace.sgd == nil, let updated = trace.tensors.first(where: { roles[$0.name].map { $0.phase == .update } ?? false }) {
            throw TraceError(file: source, subject: "metadata 'sgd_form'",
                             problem: "missing, but \(updated.name) is present: updated.* need sgd_form, learning_rate, "
                             + "momentum and weight_decay")
        }
        if trace.kind == .layer, trace["grad_output." + layers[0].name] == nil,
           roles.values.contains(where: { $0.phase == .backward || $0.phase == .update }) {
            throw fail("grad_output." + layers[0].name, "missing; a layer trace's backward pass starts from the given "
                       + "upstream gradient")
        }

        // Values: masks are 0/1, float tensors finite (the first bad one in execution order is named).
        let order = TracePlan.executionOrder(kind: trace.kind, layers: layers, parameters: parameters, towers: towers)
        let orderIndex = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        for layer in layers {
            guard let mask = trace["mask." + layer.name] else { continue }
            if mask.dtype.isFloatingPoint {
                let values = try mask.floatTensor(as: Double.self).storage
                if let bad = values.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                    throw fail(mask.name, "element \(bad) is \(values[bad]); a mask holds only 0 (dropped) and 1 (kept)")
                }
            } else {
                let values = try mask.integers()
                if let bad = values.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                    throw fail(mask.name, "element \(bad) is \(values[bad]); a mask holds only 0 (dropped) and 1 (kept)")
                }
            }
        }
        let floats = trace.tensors.filter { roles[$0.name] != nil && $0.dtype.isFloatingPoint }
            .filter { if case .mask? = roles[$0.name]?.content { return false } else { return true } }
            .sorted { (orderIndex[$0.name] ?? -1) < (orderIndex[$1.name] ?? -1) }
        for tensor in floats {
            let values = try tensor.floatTensor(as: Double.self)
            if let bad = values.firstNonFiniteIndex() {
                let count = values.storage.lazy.filter { !$0.isFinite }.count
                let position = TracePlan.position(of: bad, in: tensor.shape)
                throw fail(tensor.name, "\(count) non-finite value(s), the first \(values.storage[bad]) at "
                           + "\(position) (flat \(bad)); a trace must hold finite numbers"
                           + (roles[tensor.name]!.isCompared ? ": the producer's step broke down here or earlier" : ""))
            }
        }

        self.roles = roles
        self.compared = order.compactMap { roles[$0] }.filter(\.isCompared)
        let allLayers = layers
        self.absent = order.filter { name in
            guard trace[name] == nil, let role = TracePlan.role(of: name, kind: trace.kind, layers: allLayers,
                                                                 layerIndex: layerIndex, parameters: parameters,
                                                                 towers: towers) else { return false }
            return role.tower == nil && role.isCompared
        }
        self.ignored = ignored
        self.notes = notes
    }

    /// The flat index's position in a row-major shape.
    static func position(of flat: Int, in shape: Shape) -> [Int] {
        var rest = flat
        return shape.strides.map { stride in
            defer { rest %= max(stride, 1) }
            return rest / max(stride, 1)
        }
    }

    /// The parameters of `layer` for a per-image `input` shape: `(name, shape)`, weight first.
    static func parameterShapes(of layer: LayerSpec, input: Shape) -> [(name: String, shape: Shape)] {
        switch layer.kind {
        case .convolution(let outputs, let kernel, _, _, let groups, let bias):
            let weight = Shape([outputs, input[0] / groups, kernel.height, kernel.width])
            return [(layer.name + ".weight", weight)] + (bias == .none ? [] : [(layer.name + ".bias", Shape([outputs]))])
        case .linear(let outputs, let bias):
            return [(layer.name + ".weight", Shape([outputs, input.count]))]
                + (bias == .none ? [] : [(layer.name + ".bias", Shape([outputs]))])
        default:
            return []
        }
    }

    /// A hint for a parameter of the wrong shape: an upstream pooling rounding the other way, or a transposed weight.
    static func parameterHint(layer: LayerSpec, actual: Shape, expected: Shape) -> String {
        if actual.rank == 2, expected.rank == 2, actual[0] == expected[1], actual[1] == expected[0] {
            return " (transposed: weights are [out, in], as PyTorch stores them)"
        }
        if actual.rank == 4, expected.rank == 4, actual[0] == expected[0],
           Shape([actual[0], actual[3], actual[1], actual[2]]) == expected {
            return " (this is [out, kh, kw, in]: convolution weights are [out, in/groups, kh, kw])"
        }
        if case .linear = layer.kind, actual.rank == 2, expected.rank == 2, actual[0] == expected[0] {
            return " (the layer sees \(actual[1]) input features where the spec gives \(expected[1]): does an earlier "
                + "pooling layer round its output size the other way, ceil vs floor?)"
        }
        return ""
    }

    /// Per-image input shape of every layer as the reference's own tensors imply it:
    /// the reference's `forward.` of the previous layer where present, else the
    /// previous layer's output for its own chained input, else the spec's.
    static func chainInputShapes(trace: Trace, layers: [LayerSpec], specInputs: [Shape]) -> [Shape] {
        guard let input = trace["input"] else { return specInputs }
        var current = Shape(Array(input.shape.dims.dropFirst()))
        var result: [Shape] = []
        for (i, layer) in layers.enumerated() {
            result.append(current)
            if let stored = trace["forward." + layer.name], stored.shape.rank >= 1 {
                current = Shape(Array(stored.shape.dims.dropFirst()))
            } else if let next = try? layer.outputShape(for: current) {
                current = next
            } else {
                current = i + 1 < specInputs.count ? specInputs[i + 1] : current
            }
        }
        return result
    }

    /// The shapes a tensor may have: what the spec implies first, then what
    /// the reference's own upstream shapes imply, then the shapes of known
    /// convention variants (a pool rounding the other way, NHWC layout), so
    /// that those reach the comparison and its diagnosis instead of stopping
    /// the check. Empty: anything goes (the shape is checked elsewhere).
    static func allowedShapes(role: TraceRole, batch: Int, layers: [LayerSpec], specInputs: [Shape], specOutputs: [Shape],
                              chainInputs: [Shape], parameters: [[(name: String, shape: Shape)]], towers: Int) -> [Shape] {
        func whole(_ perImage: Shape) -> Shape { Shape([batch] + perImage.dims) }
        func nhwc(_ shape: Shape) -> Shape? {
            shape.rank == 4 ? Shape([shape[0], shape[2], shape[3], shape[1]]) : nil
        }
        var shapes: [Shape] = []
        var isActivation = true
        switch role.content {
        case .input:
            return []
        case .labels:
            return [Shape([batch])]
        case .parameter where role.tower == nil:
            return []
        case .mask(let i):
            shapes = [whole(specInputs[i]), whole(chainInputs[i])]
        case .forward(let i), .outputGradient(let i):
            shapes = [whole(specOutputs[i])]
            for input in [specInputs[i], chainInputs[i]] {
                if let out = try? layers[i].outputShape(for: input) { shapes.append(whole(out)) }
                switch layers[i].kind {
                case .maxPool(let kernel, let stride, let padding, let rounding):
                    let other = LayerSpec(name: layers[i].name, .maxPool(kernel: kernel, stride: stride, padding: padding,
                                                                         rounding: rounding == .floor ? .ceil : .floor))
                    if let out = try? other.outputShape(for: input) { shapes.append(whole(out)) }
                case .avgPool(let kernel, let stride, let padding, let rounding, let count):
                    let other = LayerSpec(name: layers[i].name, .avgPool(kernel: kernel, stride: stride, padding: padding,
                                                                         rounding: rounding == .floor ? .ceil : .floor,
                                                                         countIncludePadding: count))
                    if let out = try? other.outputShape(for: input) { shapes.append(whole(out)) }
                default:
                    break
                }
            }
        case .inputGradient(let i):
            shapes = [whole(specInputs[i]), whole(chainInputs[i])]
            // A tower's gradient for the image is its partial for the whole image when
            // its first layer saw all of it (TowerPlan), else its half.
            if role.tower != nil, i == 0, TowerPlan(towers: towers, layers: layers).inputs.first == .wholeImage {
                return dedupe(shapes + shapes.compactMap(nhwc))
            }
        case .loss:
            return [Shape([]), Shape([1])]
        case .scoreGradient:
            return [whole(specOutputs[specOutputs.count - 1])]
        case .parameter(let i, let name), .parameterGradient(let i, let name), .updated(let i, let name):
            isActivation = false
            shapes = parameters[i].filter { $0.name == name }.map(\.shape)
        }
        if role.tower != nil {
            shapes = shapes.compactMap { shape in
                // A tower holds half of dimension 1 of an activation, half the rows of a parameter.
                let axis = isActivation ? 1 : 0
                guard shape.rank > axis, shape[axis] % towers == 0 else { return nil }
                var dims = shape.dims
                dims[axis] /= towers
                return Shape(dims)
            }
        }
        if isActivation { shapes += shapes.compactMap(nhwc) }
        return dedupe(shapes)
    }

    private static func dedupe(_ shapes: [Shape]) -> [Shape] {
        var seen = Set<Shape>()
        return shapes.filter { seen.insert($0).inserted }
    }

    /// Every tensor name the format defines for these layers, in execution order:
    /// per layer `tower<t>.param.*` then `forward.` (each whole tensor followed by
    /// its per-tower ones), `loss`, `grad.scores`, then from the last layer to the
    /// first `grad.<layer>.*` and `grad_input.<layer>`, then `updated.*` in layer order.
    static func executionOrder(kind: TraceKind, layers: [LayerSpec], parameters: [[(name: String, shape: Shape)]],
                               towers: Int) -> [String] {
        func withTowers(_ name: String) -> [String] {
            [name] + (towers == 2 ? (0..<towers).map { "tower\($0).\(name)" } : [])
        }
        var order = ["input", "labels"]
        for (i, layer) in layers.enumerated() {
            order += parameters[i].map { "param.\($0.name)" }
            if case .dropout = layer.kind { order.append("mask.\(layer.name)") }
        }
        if kind == .layer { order.append("grad_output.\(layers[0].name)") }
        for (i, layer) in layers.enumerated() {
            if towers == 2 {
                for t in 0..<towers { order += parameters[i].map { "tower\(t).param.\($0.name)" } }
            }
            order += withTowers("forward.\(layer.name)")
        }
        if kind == .network { order += ["loss", "grad.scores"] }
        for (i, layer) in layers.enumerated().reversed() {
            for parameter in parameters[i] { order += withTowers("grad.\(parameter.name)") }
            order += withTowers("grad_input.\(layer.name)")
        }
        for i in layers.indices {
            for parameter in parameters[i] { order += withTowers("updated.\(parameter.name)") }
        }
        return order
    }

    /// The role of `name`, or nil when the format does not define it for this trace.
    static func role(of name: String, kind: TraceKind, layers: [LayerSpec], layerIndex: [String: Int],
                     parameters: [[(name: String, shape: Shape)]], towers: Int) -> TraceRole? {
        var rest = Substring(name)
        var tower: Int?
        if rest.hasPrefix("tower"), let dot = rest.firstIndex(of: "."), let t = Int(rest[rest.index(rest.startIndex, offsetBy: 5)..<dot]) {
            guard towers == 2, t >= 0, t < towers else { return nil }
            tower = t
            rest = rest[rest.index(after: dot)...]
        }
        func layer(_ text: Substring) -> Int? { layerIndex[String(text)] }
        func parameter(_ text: Substring) -> (Int, String)? {
            guard let dot = text.lastIndex(of: "."), let i = layer(text[..<dot]),
                  parameters[i].contains(where: { $0.name == String(text) }) else { return nil }
            return (i, String(text))
        }
        func after(_ prefix: String) -> Substring? {
            rest.hasPrefix(prefix) ? rest.dropFirst(prefix.count) : nil
        }
        let content: TraceRole.Content
        if rest == "input" && tower == nil {
            content = .input
        } else if rest == "labels" && tower == nil && kind == .network {
            content = .labels
        } else if rest == "loss" && tower == nil && kind == .network {
            content = .loss
        } else if rest == "grad.scores" && tower == nil && kind == .network {
            content = .scoreGradient
        } else if let text = after("param."), let (i, p) = parameter(text) {
            content = .parameter(layer: i, parameter: p)
        } else if let text = after("mask."), tower == nil, let i = layer(text), case .dropout = layers[i].kind {
            content = .mask(layer: i)
        } else if let text = after("forward."), let i = layer(text) {
            content = .forward(layer: i)
        } else if let text = after("grad_output."), tower == nil, kind == .layer, let i = layer(text) {
            content = .outputGradient(layer: i)
        } else if let text = after("grad_input."), let i = layer(text) {
            content = .inputGradient(layer: i)
        } else if let text = after("grad."), let (i, p) = parameter(text) {
            content = .parameterGradient(layer: i, parameter: p)
        } else if let text = after("updated."), let (i, p) = parameter(text) {
            content = .updated(layer: i, parameter: p)
        } else {
            return nil
        }
        let layerName: String?
        switch content {
        case .input, .labels, .loss, .scoreGradient: layerName = nil
        case .parameter(let i, _), .mask(let i), .forward(let i), .outputGradient(let i), .inputGradient(let i),
             .parameterGradient(let i, _), .updated(let i, _):
            layerName = layers[i].name
        }
        return TraceRole(name: name, content: content, tower: tower, layer: layerName)
    }
}
