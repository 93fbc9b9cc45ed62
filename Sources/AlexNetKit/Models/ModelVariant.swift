import Foundation

/// The switches an ablation flips on a model spec, applied after the spec is
/// resolved for the data (``TrainingConfiguration/modelChanges``): the
/// paper's design choices one at a time, on any model.
///
/// | switch | values | what it does |
/// |---|---|---|
/// | `activation` | `relu`, `tanh` | every ReLU and tanh layer becomes this one (Section 3.1, Figure 1) |
/// | `lrn` | `off`, `paper`, `caffe` | `off` removes every LRN layer (Section 3.3); `paper`/`caffe` sets every LRN layer's convention, keeping its `alpha` number (the mix-up Docs/conventions.md warns of: the same 1e-4 read the other way is 5x off) |
/// | `pooling` | `overlapping`, `non-overlapping` | every max pool's window becomes `stride + 1` (the paper's 3/2) or `stride` (2/2) (Section 3.4) |
/// | `dropout` | a rate in `[0, 1)` | every dropout layer's rate; 0 removes them (Section 4.2) |
/// | `width` | a factor in `(0, 16]` | every convolution's and hidden linear layer's outputs times this, rounded to a multiple of its groups and the towers (at least one per group) |
///
/// Later layers adapt by themselves: a linear layer's inputs follow from the
/// shapes. A switch that finds no layer to change is an error (an ablation
/// that changes nothing would report a difference of noise).
public struct ModelVariant: Equatable, Sendable {
    /// `relu` or `tanh`; nil: as the spec says.
    public var activation: String?
    /// `off`, `paper` or `caffe`; nil: as the spec says.
    public var lrn: String?
    /// `overlapping` or `non-overlapping`; nil: as the spec says.
    public var pooling: String?
    /// Every dropout layer's rate (0 removes them); nil: as the spec says.
    public var dropout: Double?
    /// Multiplies the hidden layers' outputs; nil: as the spec says.
    public var width: Double?

    /// No switch set.
    public init(activation: String? = nil, lrn: String? = nil, pooling: String? = nil, dropout: Double? = nil, width: Double? = nil) {
        self.activation = activation
        self.lrn = lrn
        self.pooling = pooling
        self.dropout = dropout
        self.width = width
    }

    /// The JSON keys, in the order ``jsonString()`` writes them.
    public static let keys = CodingKeys.allCases.map(\.stringValue)

    /// Whether no switch is set.
    public var isEmpty: Bool { self == ModelVariant() }

    /// Checks each value's spelling and range.
    /// - Throws: ``ConfigurationError`` naming `model_changes.KEY`.
    public func validate() throws {
        if let (key, problem, value) = firstInvalid() {
            throw ConfigurationError(component: "model_changes.\(key.stringValue)", problem: "\(problem), got \(value)")
        }
    }

    /// The first switch out of its range: its key, what it must be and the
    /// value found. The JSON reader and ``validate()`` both state these rules.
    private func firstInvalid() -> (key: CodingKeys, problem: String, value: String)? {
        if let activation, !["relu", "tanh"].contains(activation) {
            return (.activation, "must be relu or tanh", JSONValue.encode(string: activation))
        }
        if let lrn, !["off", "paper", "caffe"].contains(lrn) { return (.lrn, "must be off, paper or caffe", JSONValue.encode(string: lrn)) }
        if let pooling, !["overlapping", "non-overlapping"].contains(pooling) {
            return (.pooling, "must be overlapping or non-overlapping", JSONValue.encode(string: pooling))
        }
        if let dropout, !(dropout >= 0 && dropout < 1) { return (.dropout, "must be a rate in [0, 1)", "\(dropout)") }
        if let width, !(width > 0 && width <= 16) { return (.width, "must be a factor in (0, 16]", "\(width)") }
        return nil
    }

    /// `spec` with the switches applied; its name gains a suffix per switch (`layers-80sec+tanh`).
    /// - Throws: ``ConfigurationError`` when a switch finds nothing to change,
    ///   ``ModelSpecError`` when the changed spec does not work (a pool too large for its input, say).
    public func apply(to spec: ModelSpec) throws -> ModelSpec {
        try validate()
        var layers = spec.layers
        var suffix: [String] = []
        func require(_ found: Bool, _ key: String, _ what: String) throws {
            guard found else {
                throw ConfigurationError(component: "model_changes.\(key)", problem: "model \(spec.name) has no \(what) to change")
            }
        }
        if let activation {
            var found = false
            layers = layers.map { layer in
                guard layer.kind == .relu || layer.kind == .tanh else { return layer }
                found = true
                return LayerSpec(name: layer.name, activation == "tanh" ? .tanh : .relu)
            }
            try require(found, "activation", "ReLU or tanh layer")
            suffix.append(activation)
        }
        if let lrn {
            let found = layers.contains { if case .localResponseNorm = $0.kind { return true } else { return false } }
            try require(found, "lrn", "LRN layer")
            if lrn == "off" {
                layers.removeAll { if case .localResponseNorm = $0.kind { return true } else { return false } }
            } else {
                let convention: LRNConvention = lrn == "caffe" ? .caffe : .paper
                layers = layers.map { layer in
                    guard case .localResponseNorm(let size, let alpha, let beta, let k, _) = layer.kind else { return layer }
                    return LayerSpec(name: layer.name, .localResponseNorm(size: size, alpha: alpha, beta: beta, k: k, convention: convention))
                }
            }
            suffix.append("lrn-\(lrn)")
        }
        if let pooling {
            var found = false
            layers = layers.map { layer in
                guard case .maxPool(_, let stride, let padding, let rounding) = layer.kind else { return layer }
                found = true
                let extra = pooling == "overlapping" ? 1 : 0
                let kernel = Pair(stride.height + extra, stride.width + extra)
                return LayerSpec(name: layer.name, .maxPool(kernel: kernel, stride: stride, padding: padding, rounding: rounding))
            }
            try require(found, "pooling", "max pooling layer")
            suffix.append(pooling)
        }
        if let dropout {
            var found = false
            layers = layers.compactMap { layer in
                guard case .dropout(_, let scaling) = layer.kind else { return layer }
                found = true
                return dropout == 0 ? nil : LayerSpec(name: layer.name, .dropout(rate: dropout, scaling: scaling))
            }
            try require(found, "dropout", "dropout layer")
            suffix.append(dropout == 0 ? "no-dropout" : "dropout-\(dropout)")
        }
        if let width {
            let lastLinear = layers.lastIndex { if case .linear = $0.kind { return true } else { return false } }
            layers = layers.enumerated().map { index, layer in
                switch layer.kind {
                case .convolution(let outputs, let kernel, let stride, let padding, let groups, let bias):
                    let multiple = groups * spec.towers / gcd(groups, spec.towers)
                    return LayerSpec(name: layer.name, .convolution(outputs: Self.scaled(outputs, width, multiple: multiple), kernel: kernel,
                                                                    stride: stride, padding: padding, groups: groups, bias: bias))
                case .linear(let outputs, let bias) where index != lastLinear:
                    return LayerSpec(name: layer.name, .linear(outputs: Self.scaled(outputs, width, multiple: spec.towers), bias: bias))
                default:
                    return layer
                }
            }
            suffix.append("width-\(width)")
        }
        let name = ([spec.name] + suffix).joined(separator: "+")
        return try ModelSpec(name: name, inputShape: spec.inputShape, towers: spec.towers, layers: layers)
    }

    /// `outputs * factor` rounded to the nearest multiple of `multiple`, at least `multiple`.
    static func scaled(_ outputs: Int, _ factor: Double, multiple: Int) -> Int {
        max(multiple, Int((Double(outputs) * factor / Double(multiple)).rounded()) * multiple)
    }

    private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    // MARK: JSON

    /// The switches as a JSON object, only those set (`{}` when none).
    public func jsonString() -> String {
        // Encoding cannot fail: every member is a string or a number.
        // swiftlint:disable:next force_try
        try! StrictJSONEncoder().encode(self).compactText
    }

    /// Reads switches from JSON text such as `{"activation": "tanh"}` (the `--model-changes` option).
    /// - Throws: ``ConfigurationError`` naming the switch (`model_changes.activation`), or the position of invalid JSON.
    public static func parse(json: String) throws -> ModelVariant {
        do {
            return try read(StrictJSONDecoder(bytes: Array(json.utf8)))
        } catch let error as JSONSyntaxError {
            throw ConfigurationError(component: "model_changes", problem: "invalid JSON: \(error)")
        }
    }

    /// Reads a JSON object of switches (a run config's `model_changes`).
    /// - Throws: ``ConfigurationError`` naming the key (`model_changes.KEY`) for unknown keys, wrong types and bad values.
    static func parse(_ value: JSONValue) throws -> ModelVariant {
        try read(StrictJSONDecoder(value: value))
    }

    /// Decodes with `decoder`, a failure as a ``ConfigurationError`` at `model_changes.KEY`.
    private static func read(_ decoder: StrictJSONDecoder) throws -> ModelVariant {
        do {
            return try decoder.decode(ModelVariant.self)
        } catch let failure as JSONDecodingFailure {
            throw ConfigurationError(component: failure.path.isEmpty ? "model_changes" : "model_changes.\(failure.path)",
                                     problem: failure.problem)
        }
    }
}

extension ModelVariant: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case activation, lrn, pooling, dropout, width
    }

    /// Reads an object of switches, every one optional; unknown keys and
    /// values out of range are errors at their key.
    public init(from decoder: Decoder) throws {
        let c = try decoder.object(keyedBy: CodingKeys.self,
                                   expected: "expected an object of switches (" + ModelVariant.keys.joined(separator: ", ") + ")")
        try decoder.refuseUnknownKeys(CodingKeys.self, what: "model_changes")
        self.init(activation: try c.decodeIfPresent(String.self, forKey: .activation),
                  lrn: try c.decodeIfPresent(String.self, forKey: .lrn),
                  pooling: try c.decodeIfPresent(String.self, forKey: .pooling),
                  dropout: try c.decodeIfPresent(Double.self, forKey: .dropout),
                  width: try c.decodeIfPresent(Double.self, forKey: .width))
        if let (key, problem, _) = firstInvalid() { throw c.invalid(key, problem) }
    }

    // encode(to:) is the synthesized one: the switches that are set, in the order of ``keys``.
}
