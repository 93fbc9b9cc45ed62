import Foundation

/// Model specs as JSON files (format and example in Docs/models.md):
///
///     {
///       "name": "tiny",
///       "input": [1, 28, 28],
///       "towers": 1,
///       "layers": [
///         {"name": "conv1", "type": "conv", "outputs": 8, "kernel": 5, "stride": 1, "padding": 2, "groups": 1, "bias": 0.0},
///         {"name": "relu1", "type": "relu"},
///         {"name": "pool1", "type": "maxpool", "kernel": 2, "stride": 2, "padding": 0, "rounding": "floor"},
///         {"name": "fc2", "type": "linear", "outputs": 10, "bias": 0.0}
///       ]
///     }
///
/// Every error names the file, the line and column of the key, and the key
/// path (`my.json:7:34: layers[3] (conv2).kernel: expected a positive integer
/// or [height, width], got "5"`), or the line and column for invalid JSON.
/// Unknown keys are errors. The conventions the anchors disagree on (LRN
/// `convention`, pooling `rounding`, average pooling `count_include_padding`,
/// dropout `scaling`) must be stated; nothing is guessed.
///
/// The reading and writing are the specs' `Codable` conformances (below), run
/// by the strict JSON decoder and encoder (Interop/JSONDecoding.swift).
extension ModelSpec {
    /// The largest integer a JSON spec (or ``ModelZoo``) accepts for any extent,
    /// size or count: 2^24 = 16,777,216, more than any image or layer needs and
    /// small enough that no sum in the shape arithmetic can overflow.
    public static let maximumSetting = 1 << 24

    /// Parses a JSON model spec from UTF-8 bytes.
    /// - Parameters:
    ///   - json: the file's bytes.
    ///   - source: the name errors start with, usually the file's path.
    /// - Throws: ``ModelSpecError`` whose location is `source:line:column` for
    ///   invalid JSON, `source:line:column: key.path` for a missing, unknown or
    ///   mistyped key, and `source:line:column: layers[i] (name)` for a layer the
    ///   shapes or tower rules refuse.
    public static func parse(json: Data, source: String = "<json>") throws -> ModelSpec {
        try decode(ModelSpec.self, from: [UInt8](json), source: source)
    }

    /// Parses a JSON model spec from a string; see `parse(json:source:)`.
    /// - Throws: ``ModelSpecError`` naming the key path or line and column.
    public static func parse(json: String, source: String = "<json>") throws -> ModelSpec {
        try decode(ModelSpec.self, from: Array(json.utf8), source: source)
    }

    /// Decodes a spec or a layer from `bytes` (nested at most 200 levels, the
    /// limit Docs/models.md states; real specs nest 4), every failure as a
    /// ``ModelSpecError`` at `source:line:column` (`source: byte n` for bytes
    /// that are not UTF-8).
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], source: String) throws -> T {
        do {
            return try StrictJSONDecoder(bytes: bytes, maximumDepth: 200).decode(type)
        } catch let error as JSONSyntaxError {
            if case .invalidUTF8 = error.problem {
                throw ModelSpecError(location: "\(source): byte \(error.offset)",
                                     problem: "invalid JSON: the file is not valid UTF-8 at byte offset \(error.offset)")
            }
            throw ModelSpecError(location: "\(source):\(error.line):\(error.column)", problem: "invalid JSON: \(error.problem)")
        } catch let failure as JSONDecodingFailure {
            throw ModelSpecError(location: failure.location(source: source), problem: failure.problem)
        }
    }

    /// Reads and parses the JSON model spec file at `path`; errors start with `path`.
    /// - Throws: ``ModelSpecError`` when the file is missing, a directory or
    ///   unreadable, or as `parse(json:source:)` does.
    public static func load(path: String) throws -> ModelSpec {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelSpecError(location: path, problem: "no such file")
        }
        guard !isDirectory.boolValue else {
            throw ModelSpecError(location: path, problem: "is a directory, not a JSON model spec file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelSpecError(location: path, problem: "the file cannot be read (check its permissions)")
        }
        return try parse(json: data, source: path)
    }

    /// The spec as JSON in the format `parse(json:source:)` reads: one
    /// layer per line, every key written (defaults included), square pairs as one
    /// integer, numbers in Swift's shortest round-trip form, so parsing the text
    /// gives back an equal spec and writing that spec gives back the same text.
    /// A non-finite number (which no JSON can hold) is written as `null`, which
    /// the parser refuses.
    public func jsonString() -> String { JSONValue(encodingSpec: self).formatted(expandedLevels: 2) + "\n" }
}

extension LayerSpec {
    /// The layer as one JSON object, exactly as a spec file's `layers` entry
    /// (``ModelSpec/jsonString()`` writes each layer on one line; this is that line).
    public func jsonString() -> String { JSONValue(encodingSpec: self).compactText }

    /// Parses one layer object, as a spec file's `layers` entry holds it.
    /// Shapes are not checked: a lone layer has no input yet.
    /// - Parameter source: the name errors start with.
    /// - Throws: ``ModelSpecError`` at `source:line:column` for invalid JSON, or
    ///   at `source:line:column: key` for a missing, unknown or mistyped key.
    public static func parse(json: String, source: String) throws -> LayerSpec {
        try ModelSpec.decode(LayerSpec.self, from: Array(json.utf8), source: source)
    }
}

extension JSONValue {
    /// A spec or layer as JSON. Encoding them cannot fail: every member is a
    /// number, a string, a boolean or an array of numbers.
    fileprivate init<T: Encodable>(encodingSpec value: T) {
        // swiftlint:disable:next force_try
        self = try! StrictJSONEncoder().encode(value)
    }
}

// MARK: - Codable

extension ModelSpec: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, input, towers, layers
    }

    /// Reads a spec object: `name`, `input` and `layers` required, `towers`
    /// 1 by default; layer names unique; then the spec's own validation (shapes,
    /// tower rules) and the summary's count check, each located at its layer.
    public init(from decoder: Decoder) throws {
        let c = try decoder.object(keyedBy: CodingKeys.self,
                                   expected: "expected a JSON object with keys name, input, towers, layers")
        try decoder.refuseUnknownKeys(CodingKeys.self, what: "a model spec")
        let name = try c.decode(String.self, forKey: .name, missing: "the model needs a name")
        guard !name.isEmpty else { throw c.invalid(.name, "expected a non-empty string") }
        let input = try c.decode([Int].self, forKey: .input, missing: "the input shape [C, H, W] of one image",
                                 expected: "expected [C, H, W] (three positive integers)")
        guard input.count == 3 else { throw c.invalid(.input, "expected [C, H, W] (three positive integers)") }
        for (i, extent) in input.enumerated() {
            try ModelSpec.checkSetting(extent, minimum: 1, at: c.codingPath + [CodingKeys.input, JSONKey(intValue: i)])
        }
        let towers = try c.decodeIfPresent(Int.self, forKey: .towers, expected: "expected 1 or 2") ?? 1
        guard towers == 1 || towers == 2 else { throw c.invalid(.towers, "expected 1 or 2") }
        guard c.contains(.layers) else {
            throw DecodingError.keyNotFound(CodingKeys.layers, .init(codingPath: c.codingPath,
                                                                     debugDescription: "missing: the list of layers"))
        }
        var items: UnkeyedDecodingContainer
        do {
            items = try c.nestedUnkeyedContainer(forKey: .layers)
        } catch DecodingError.typeMismatch {
            throw c.invalid(.layers, "expected an array of layer objects")
        }
        var layers: [LayerSpec] = []
        var indexOfName: [String: Int] = [:]
        while !items.isAtEnd {
            let index = items.currentIndex
            let layer = try items.decode(LayerSpec.self)
            if let first = indexOfName[layer.name] {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: c.codingPath + [CodingKeys.layers, JSONKey(intValue: index), LayerSpec.CodingKeys.name],
                    debugDescription: "\(JSONValue.encode(string: layer.name)) is already the name of layers[\(first)]; "
                        + "layer names must be unique (they key the parameters)"))
            }
            indexOfName[layer.name] = index
            layers.append(layer)
        }
        do {
            try self.init(name: name, inputShape: Shape(input), towers: towers, layers: layers)
            // Every count the library derives from a spec (elements, parameters,
            // multiply-adds, bytes in Float64) must fit an Int; the summary checks them all.
            _ = try ModelSummary(spec: self, elementSize: 8)
        } catch let error as ModelSpecError {
            // The validation names a layer (or a key); locate it in the file.
            let place: [CodingKey] = indexOfName[error.location].map { [CodingKeys.layers, JSONKey(intValue: $0)] }
                ?? [JSONKey(error.location)]
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + place, debugDescription: error.problem))
        }
    }

    /// Writes `name`, `input`, `towers` and `layers`, in that order.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(inputShape.dims, forKey: .input)
        try c.encode(towers, forKey: .towers)
        try c.encode(layers, forKey: .layers)
    }

    /// Refuses a setting below `minimum` or above ``maximumSetting`` at `path`.
    fileprivate static func checkSetting(_ n: Int, minimum: Int, at path: [CodingKey]) throws {
        if n < minimum {
            throw DecodingError.dataCorrupted(.init(
                codingPath: path, debugDescription: minimum >= 1 ? "expected a positive integer" : "expected a non-negative integer"))
        }
        if n > maximumSetting {
            throw DecodingError.dataCorrupted(.init(codingPath: path,
                                                    debugDescription: "\(n) is larger than the limit \(maximumSetting)"))
        }
    }
}

extension LayerSpec: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, type, outputs, kernel, stride, padding, groups, bias, rounding
        case countIncludePadding = "count_include_padding"
        case size, alpha, beta, k, convention, rate, scaling
    }

    /// The keys each layer type takes, in the order they are written.
    static let keysByType: [(type: String, keys: [CodingKeys])] = [
        ("conv", [.name, .type, .outputs, .kernel, .stride, .padding, .groups, .bias]),
        ("maxpool", [.name, .type, .kernel, .stride, .padding, .rounding]),
        ("avgpool", [.name, .type, .kernel, .stride, .padding, .rounding, .countIncludePadding]),
        ("lrn", [.name, .type, .size, .alpha, .beta, .k, .convention]),
        ("relu", [.name, .type]),
        ("tanh", [.name, .type]),
        ("linear", [.name, .type, .outputs, .bias]),
        ("dropout", [.name, .type, .rate, .scaling]),
    ]

    /// Reads one layer object: `name` and `type` first, then only the keys of that type.
    public init(from decoder: Decoder) throws {
        let c = try decoder.object(keyedBy: CodingKeys.self,
                                   expected: "expected a layer object such as {\"name\": \"relu1\", \"type\": \"relu\"}")
        let name = try c.decode(String.self, forKey: .name, missing: "every layer needs a name (it keys the layer's "
                                + "parameters, e.g. conv1.weight)", expected: "expected a non-empty string")
        guard !name.isEmpty else { throw c.invalid(.name, "expected a non-empty string") }
        let types = LayerSpec.keysByType.map(\.type)
        let type = try c.decode(String.self, forKey: .type, missing: "expected one of " + types.joined(separator: ", "),
                                expected: "expected a string: one of " + types.joined(separator: ", "))
        guard let keys = LayerSpec.keysByType.first(where: { $0.type == type })?.keys else {
            throw c.invalid(.type, "unknown layer type \(JSONValue.encode(string: type)); expected one of "
                            + types.joined(separator: ", "))
        }
        try decoder.refuseUnknownKeys(allowed: keys.map(\.stringValue), what: "a \"\(type)\" layer")
        self.init(name: name, try Kind(type: type, c))
    }

    /// Writes `name`, `type`, then every setting of the kind (defaults included).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(kind.typeName, forKey: .type)
        switch kind {
        case .convolution(let outputs, let kernel, let stride, let padding, let groups, let bias):
            try c.encode(outputs, forKey: .outputs)
            try c.encode(kernel, forKey: .kernel)
            try c.encode(stride, forKey: .stride)
            try c.encode(padding, forKey: .padding)
            try c.encode(groups, forKey: .groups)
            try c.encode(bias, forKey: .bias)
        case .maxPool(let kernel, let stride, let padding, let rounding):
            try c.encode(kernel, forKey: .kernel)
            try c.encode(stride, forKey: .stride)
            try c.encode(padding, forKey: .padding)
            try c.encode(rounding.description, forKey: .rounding)
        case .avgPool(let kernel, let stride, let padding, let rounding, let countIncludePadding):
            try c.encode(kernel, forKey: .kernel)
            try c.encode(stride, forKey: .stride)
            try c.encode(padding, forKey: .padding)
            try c.encode(rounding.description, forKey: .rounding)
            try c.encode(countIncludePadding, forKey: .countIncludePadding)
        case .localResponseNorm(let size, let alpha, let beta, let k, let convention):
            try c.encode(size, forKey: .size)
            try c.encode(alpha, forKey: .alpha)
            try c.encode(beta, forKey: .beta)
            try c.encode(k, forKey: .k)
            try c.encode(convention.description, forKey: .convention)
        case .relu, .tanh:
            break
        case .linear(let outputs, let bias):
            try c.encode(outputs, forKey: .outputs)
            try c.encode(bias, forKey: .bias)
        case .dropout(let rate, let scaling):
            try c.encode(rate, forKey: .rate)
            try c.encode(scaling.rawValue, forKey: .scaling)
        }
    }
}

extension LayerSpec.Kind {
    /// The settings of a layer of `type` (a known type) from its object.
    fileprivate init(type: String, _ c: KeyedDecodingContainer<LayerSpec.CodingKeys>) throws {
        switch type {
        case "conv":
            self = .convolution(outputs: try c.positive(.outputs, missing: "the number of output channels"),
                                kernel: try c.pair(.kernel, minimum: 1, missing: "the kernel size"),
                                stride: try c.pair(.stride, minimum: 1) ?? 1,
                                padding: try c.pair(.padding, minimum: 0) ?? 0,
                                groups: try c.positive(.groups) ?? 1,
                                bias: try c.decodeIfPresent(LayerSpec.BiasSetting.self, forKey: .bias) ?? .constant(0))
        case "maxpool", "avgpool":
            let kernel = try c.pair(.kernel, minimum: 1, missing: "the window size")
            let stride = try c.pair(.stride, minimum: 1, missing: "the step between windows (PyTorch defaults it "
                                    + "to the kernel, cuda-convnet requires it; state it)")
            let padding = try c.pair(.padding, minimum: 0) ?? 0
            let rounding = try c.choice(.rounding, [("floor", PoolRounding.floor), ("ceil", .ceil)],
                                        missing: "the output-size rounding must be stated: \"floor\" (PyTorch) or "
                                        + "\"ceil\" (Caffe, cuda-convnet); the anchors disagree and this reader does not guess")
            if type == "maxpool" {
                self = .maxPool(kernel: kernel, stride: stride, padding: padding, rounding: rounding)
                return
            }
            let countIncludePadding = try c.decode(
                Bool.self, forKey: .countIncludePadding,
                missing: "whether padded cells count in the average must be stated: true (PyTorch's default, Caffe) "
                    + "or false (cuda-convnet); this reader does not guess")
            self = .avgPool(kernel: kernel, stride: stride, padding: padding, rounding: rounding,
                            countIncludePadding: countIncludePadding)
        case "lrn":
            let size = try c.positive(.size, missing: "the number of channels in the window (n)")
            let alpha = try c.decode(Double.self, forKey: .alpha, missing: "the scale of the window sum")
            let beta = try c.decode(Double.self, forKey: .beta, missing: "the exponent")
            let k = try c.decode(Double.self, forKey: .k, missing: "the additive constant (the paper: 2; Caffe's "
                                 + "default: 1); it must be stated")
            let convention = try c.choice(.convention, [("paper", LRNConvention.paper), ("caffe", .caffe), ("pytorch", .pytorch)],
                                          missing: "the LRN convention must be stated: \"paper\" (alpha multiplies the "
                                          + "window sum as written) or \"caffe\" / \"pytorch\" (alpha / size does); they "
                                          + "differ by a factor of size and this reader does not guess")
            if convention != .pytorch, size % 2 == 0 {
                throw c.invalid(.size, "\(size) is even, which the \(convention) convention does not define "
                                + "(use an odd size, or the \"pytorch\" convention)")
            }
            guard alpha >= 0 else { throw c.invalid(.alpha, "must be >= 0") }
            guard k > 0 else { throw c.invalid(.k, "must be > 0 so the scale never reaches 0") }
            self = .localResponseNorm(size: size, alpha: alpha, beta: beta, k: k, convention: convention)
        case "relu":
            self = .relu
        case "tanh":
            self = .tanh
        case "linear":
            self = .linear(outputs: try c.positive(.outputs, missing: "the number of output features"),
                           bias: try c.decodeIfPresent(LayerSpec.BiasSetting.self, forKey: .bias) ?? .constant(0))
        default:  // "dropout"; the caller has checked the type against keysByType
            let rate = try c.decode(Double.self, forKey: .rate, missing: "the probability of dropping a unit")
            guard rate >= 0, rate < 1 else { throw c.invalid(.rate, "must be in [0, 1)") }
            let scaling = try c.choice(.scaling, DropoutScaling.allCases.map { ($0.rawValue, $0) },
                                       missing: "the dropout scaling must be stated: \"paper\" (multiply by 1 - rate at "
                                       + "test time) or \"inverted\" (divide by 1 - rate in training, as PyTorch); this "
                                       + "reader does not guess")
            self = .dropout(rate: rate, scaling: scaling)
        }
    }
}

extension LayerSpec.BiasSetting: Codable {
    /// `false` (no bias) or the number the bias starts at.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self), !b {
            self = .none
        } else if let x = try? c.decode(Double.self) {
            self = .constant(x)
        } else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "expected a number (the constant the bias starts at) or false (no bias)")
        }
    }

    /// `false`, or the constant.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .none: try c.encode(false)
        case .constant(let x): try c.encode(x)
        }
    }
}

extension Pair: Codable {
    /// One integer for a square pair (`3`), else `[height, width]`; both at least 0
    /// (a layer's reader asks more of a kernel or a stride).
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let expected = "expected a non-negative integer or [height, width]"
        if let n = try? c.decode(Int.self) {
            guard n >= 0 else { throw DecodingError.dataCorruptedError(in: c, debugDescription: expected) }
            self.init(n, n)
        } else if let hw = try? c.decode([Int].self), hw.count == 2, hw.allSatisfy({ $0 >= 0 }) {
            self.init(hw[0], hw[1])
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: expected)
        }
    }

    /// One integer for a square pair, else `[height, width]`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if height == width { try c.encode(height) } else { try c.encode([height, width]) }
    }
}

// MARK: - The spec's value rules

extension KeyedDecodingContainer where Key == LayerSpec.CodingKeys {
    /// A positive integer up to ``ModelSpec/maximumSetting``.
    fileprivate func positive(_ key: Key, missing reason: String) throws -> Int {
        guard contains(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing: \(reason)"))
        }
        return try positive(key)!
    }

    /// A positive integer up to ``ModelSpec/maximumSetting``; nil when absent.
    fileprivate func positive(_ key: Key) throws -> Int? {
        guard let n = try decodeIfPresent(Int.self, forKey: key, expected: "expected a positive integer") else { return nil }
        try ModelSpec.checkSetting(n, minimum: 1, at: codingPath + [key])
        return n
    }

    /// A pair of at least `minimum` (one integer, or `[height, width]`), each up to ``ModelSpec/maximumSetting``.
    fileprivate func pair(_ key: Key, minimum: Int, missing reason: String) throws -> Pair {
        guard contains(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing: \(reason)"))
        }
        return try pair(key, minimum: minimum)!
    }

    /// ``pair(_:minimum:missing:)``, nil when absent.
    fileprivate func pair(_ key: Key, minimum: Int) throws -> Pair? {
        guard contains(key) else { return nil }
        let expected = minimum >= 1 ? "expected a positive integer or [height, width]"
            : "expected a non-negative integer or [height, width]"
        guard let pair = try? decode(Pair.self, forKey: key), pair.height >= minimum, pair.width >= minimum else {
            throw invalid(key, expected)
        }
        for extent in [pair.height, pair.width] {
            try ModelSpec.checkSetting(extent, minimum: minimum, at: codingPath + [key])
        }
        return pair
    }
}
