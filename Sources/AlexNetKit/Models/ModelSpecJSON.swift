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
/// Every error names the file and the key path (`my.json: layers[3]
/// (conv2).kernel: expected a positive integer or [height, width], got "5"`),
/// or the line and column for invalid JSON. Unknown keys are errors. The
/// conventions the anchors disagree on (LRN `convention`, pooling `rounding`,
/// average pooling `count_include_padding`, dropout `scaling`) must be stated;
/// nothing is guessed.
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
    ///   invalid JSON, `source: key.path` for a missing, unknown or mistyped
    ///   key, and `source: layers[i] (name)` for a layer the shapes or tower
    ///   rules refuse.
    public static func parse(json: Data, source: String = "<json>") throws -> ModelSpec {
        try SpecReader(source: source).spec(from: document([UInt8](json), source: source))
    }

    /// Parses a JSON model spec from a string; see `parse(json:source:)`.
    /// - Throws: ``ModelSpecError`` naming the key path or line and column.
    public static func parse(json: String, source: String = "<json>") throws -> ModelSpec {
        try SpecReader(source: source).spec(from: document(Array(json.utf8), source: source))
    }

    /// The JSON document in `bytes`, nested at most 200 levels (the limit
    /// Docs/models.md states; real specs nest 4); invalid JSON becomes a
    /// ``ModelSpecError`` at `source:line:column`, or `source: byte n` for bytes
    /// that are not UTF-8.
    static func document(_ bytes: [UInt8], source: String) throws -> JSONValue {
        do {
            return try JSONParser.parse(bytes, maximumDepth: 200)
        } catch let error as JSONSyntaxError {
            if case .invalidUTF8 = error.problem {
                throw ModelSpecError(location: "\(source): byte \(error.offset)",
                                     problem: "invalid JSON: the file is not valid UTF-8 at byte offset \(error.offset)")
            }
            throw ModelSpecError(location: "\(source):\(error.line):\(error.column)", problem: "invalid JSON: \(error.problem)")
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
    public func jsonString() -> String {
        var lines = ["{"]
        lines.append("  \"name\": \(JSONValue.encode(string: name)),")
        lines.append("  \"input\": [" + inputShape.dims.map(String.init).joined(separator: ", ") + "],")
        lines.append("  \"towers\": \(towers),")
        lines.append("  \"layers\": [")
        for (index, layer) in layers.enumerated() {
            let members = [("name", JSONValue.encode(string: layer.name)), ("type", "\"\(layer.kind.typeName)\"")]
                + SpecWriter.members(of: layer.kind)
            let text = "    {" + members.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
            lines.append(text + (index == layers.count - 1 ? "" : ","))
        }
        lines.append("  ]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}

// MARK: - One layer

extension LayerSpec {
    /// The layer as one JSON object, exactly as a spec file's `layers` entry
    /// (``ModelSpec/jsonString()`` writes each layer on one line; this is that line).
    public func jsonString() -> String {
        let members = [("name", JSONValue.encode(string: name)), ("type", "\"\(kind.typeName)\"")] + SpecWriter.members(of: kind)
        return "{" + members.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// Parses one layer object, as a spec file's `layers` entry holds it.
    /// Shapes are not checked: a lone layer has no input yet.
    /// - Parameter source: the name errors start with.
    /// - Throws: ``ModelSpecError`` at `source:line:column` for invalid JSON, or
    ///   at `source: name.key` for a missing, unknown or mistyped key.
    public static func parse(json: String, source: String) throws -> LayerSpec {
        try SpecReader(source: source).layer(try ModelSpec.document(Array(json.utf8), source: source), path: "")
    }
}

// MARK: - Writing

private enum SpecWriter {
    static func number(_ x: Double) -> String { x.isFinite ? x.description : "null" }

    static func pair(_ p: Pair) -> String { p.height == p.width ? "\(p.height)" : "[\(p.height), \(p.width)]" }

    static func bias(_ b: LayerSpec.BiasSetting) -> String {
        switch b {
        case .none: return "false"
        case .constant(let x): return number(x)
        }
    }

    static func members(of kind: LayerSpec.Kind) -> [(String, String)] {
        switch kind {
        case .convolution(let outputs, let kernel, let stride, let padding, let groups, let b):
            return [("outputs", "\(outputs)"), ("kernel", pair(kernel)), ("stride", pair(stride)),
                    ("padding", pair(padding)), ("groups", "\(groups)"), ("bias", bias(b))]
        case .maxPool(let kernel, let stride, let padding, let rounding):
            return [("kernel", pair(kernel)), ("stride", pair(stride)), ("padding", pair(padding)),
                    ("rounding", "\"\(rounding)\"")]
        case .avgPool(let kernel, let stride, let padding, let rounding, let countIncludePadding):
            return [("kernel", pair(kernel)), ("stride", pair(stride)), ("padding", pair(padding)),
                    ("rounding", "\"\(rounding)\""), ("count_include_padding", "\(countIncludePadding)")]
        case .localResponseNorm(let size, let alpha, let beta, let k, let convention):
            return [("size", "\(size)"), ("alpha", number(alpha)), ("beta", number(beta)), ("k", number(k)),
                    ("convention", "\"\(convention)\"")]
        case .relu, .tanh:
            return []
        case .linear(let outputs, let b):
            return [("outputs", "\(outputs)"), ("bias", bias(b))]
        case .dropout(let rate, let scaling):
            return [("rate", number(rate)), ("scaling", "\"\(scaling.rawValue)\"")]
        }
    }
}

// MARK: - Reading

/// Walks a parsed JSON document into a ``ModelSpec``, naming the key path in every error.
private struct SpecReader {
    let source: String

    static let topLevelKeys = ["name", "input", "towers", "layers"]

    /// Allowed keys per layer type, in the order the writer writes them.
    static let layerKeys: [(type: String, keys: [String])] = [
        ("conv", ["name", "type", "outputs", "kernel", "stride", "padding", "groups", "bias"]),
        ("maxpool", ["name", "type", "kernel", "stride", "padding", "rounding"]),
        ("avgpool", ["name", "type", "kernel", "stride", "padding", "rounding", "count_include_padding"]),
        ("lrn", ["name", "type", "size", "alpha", "beta", "k", "convention"]),
        ("relu", ["name", "type"]),
        ("tanh", ["name", "type"]),
        ("linear", ["name", "type", "outputs", "bias"]),
        ("dropout", ["name", "type", "rate", "scaling"]),
    ]

    static let layerTypes = layerKeys.map(\.type)

    func fail(_ path: String, _ problem: String) -> ModelSpecError {
        ModelSpecError(location: path.isEmpty ? source : "\(source): \(path)", problem: problem)
    }

    func spec(from document: JSONValue) throws -> ModelSpec {
        guard case .object(let members) = document else {
            throw fail("", "expected a JSON object with keys \(SpecReader.topLevelKeys.joined(separator: ", ")), "
                       + "got \(document.quoted)")
        }
        let root = ObjectView(members: members, path: "", reader: self)
        try root.checkKeys(allowed: SpecReader.topLevelKeys, what: "a model spec")

        let nameValue = try root.required("name", because: "the model needs a name")
        guard case .string(let name) = nameValue, !name.isEmpty else {
            throw fail("name", "expected a non-empty string, got \(nameValue.quoted)")
        }
        let input = try inputShape(root.required("input", because: "the input shape [C, H, W] of one image"))
        var towers = 1
        if let towersValue = root.optional("towers") {
            guard let t = integer(towersValue), t == 1 || t == 2 else {
                throw fail("towers", "expected 1 or 2, got \(towersValue.quoted)")
            }
            towers = t
        }
        let layersValue = try root.required("layers", because: "the list of layers")
        guard case .array(let items) = layersValue else {
            throw fail("layers", "expected an array of layer objects, got \(layersValue.quoted)")
        }
        var layers: [LayerSpec] = []
        var indexOfName: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let layer = try self.layer(item, path: "layers[\(index)]")
            if let first = indexOfName[layer.name] {
                throw fail("layers[\(index)] (\(layer.name)).name",
                           "\(JSONValue.encode(string: layer.name)) is already the name of layers[\(first)]; "
                           + "layer names must be unique (they key the parameters)")
            }
            indexOfName[layer.name] = index
            layers.append(layer)
        }
        do {
            let spec = try ModelSpec(name: name, inputShape: input, towers: towers, layers: layers)
            // Every count the library derives from a spec (elements, parameters,
            // multiply-adds, bytes in Float64) must fit an Int; the summary checks them all.
            _ = try ModelSummary(spec: spec, elementSize: 8)
            return spec
        } catch let error as ModelSpecError {
            // The validation names a layer; say which entry of the file that is.
            let location = indexOfName[error.location].map { "layers[\($0)] (\(error.location))" } ?? error.location
            throw fail(location, error.problem)
        }
    }

    private func inputShape(_ value: JSONValue) throws -> Shape {
        guard case .array(let items) = value, items.count == 3 else {
            throw fail("input", "expected [C, H, W] (three positive integers), got \(value.quoted)")
        }
        var dims: [Int] = []
        for (i, item) in items.enumerated() {
            dims.append(try positive(item, "input[\(i)]"))
        }
        return Shape(dims)
    }

    /// One layer object; `path` is where it sits (`layers[3]`, or empty for a lone layer).
    func layer(_ value: JSONValue, path: String) throws -> LayerSpec {
        guard case .object(let members) = value else {
            throw fail(path, "expected a layer object such as {\"name\": \"relu1\", \"type\": \"relu\"}, "
                       + "got \(value.quoted)")
        }
        var view = ObjectView(members: members, path: path, reader: self)
        let nameValue = try view.required("name", because: "every layer needs a name (it keys the layer's "
                                          + "parameters, e.g. conv1.weight)")
        guard case .string(let name) = nameValue, !name.isEmpty else {
            throw fail(view.keyPath("name"), "expected a non-empty string, got \(nameValue.quoted)")
        }
        view.path = path.isEmpty ? name : "\(path) (\(name))"
        let typeValue = try view.required("type", because: "expected one of "
                                          + SpecReader.layerTypes.joined(separator: ", "))
        guard case .string(let type) = typeValue, let keys = SpecReader.layerKeys.first(where: { $0.type == type })?.keys
        else {
            throw fail(view.keyPath("type"), "unknown layer type \(typeValue.quoted); expected one of "
                       + SpecReader.layerTypes.joined(separator: ", "))
        }
        try view.checkKeys(allowed: keys, what: "a \"\(type)\" layer")
        return LayerSpec(name: name, try kind(type, view))
    }

    private func kind(_ type: String, _ view: ObjectView) throws -> LayerSpec.Kind {
        switch type {
        case "conv":
            let outputs = try positive(view.required("outputs", because: "the number of output channels"),
                                       view.keyPath("outputs"))
            let kernel = try pair(view.required("kernel", because: "the kernel size"), view.keyPath("kernel"), minimum: 1)
            let stride = try view.optional("stride").map { try pair($0, view.keyPath("stride"), minimum: 1) } ?? 1
            let padding = try view.optional("padding").map { try pair($0, view.keyPath("padding"), minimum: 0) } ?? 0
            let groups = try view.optional("groups").map { try positive($0, view.keyPath("groups")) } ?? 1
            let bias = try view.optional("bias").map { try self.bias($0, view.keyPath("bias")) } ?? .constant(0)
            return .convolution(outputs: outputs, kernel: kernel, stride: stride, padding: padding, groups: groups,
                                bias: bias)
        case "maxpool", "avgpool":
            let kernel = try pair(view.required("kernel", because: "the window size"), view.keyPath("kernel"), minimum: 1)
            let stride = try pair(view.required("stride", because: "the step between windows (PyTorch defaults it "
                                                + "to the kernel, cuda-convnet requires it; state it)"),
                                  view.keyPath("stride"), minimum: 1)
            let padding = try view.optional("padding").map { try pair($0, view.keyPath("padding"), minimum: 0) } ?? 0
            let roundingValue = try view.required("rounding", because: "the output-size rounding must be stated: "
                                                  + "\"floor\" (PyTorch) or \"ceil\" (Caffe, cuda-convnet); the anchors "
                                                  + "disagree and this reader does not guess")
            let rounding: PoolRounding
            switch roundingValue {
            case .string("floor"): rounding = .floor
            case .string("ceil"): rounding = .ceil
            default: throw fail(view.keyPath("rounding"), "expected \"floor\" or \"ceil\", got \(roundingValue.quoted)")
            }
            if type == "maxpool" {
                return .maxPool(kernel: kernel, stride: stride, padding: padding, rounding: rounding)
            }
            let countValue = try view.required("count_include_padding", because: "whether padded cells count in the "
                                               + "average must be stated: true (PyTorch's default, Caffe) or false "
                                               + "(cuda-convnet); this reader does not guess")
            guard case .bool(let countIncludePadding) = countValue else {
                throw fail(view.keyPath("count_include_padding"), "expected true or false, got \(countValue.quoted)")
            }
            return .avgPool(kernel: kernel, stride: stride, padding: padding, rounding: rounding,
                            countIncludePadding: countIncludePadding)
        case "lrn":
            let size = try positive(view.required("size", because: "the number of channels in the window (n)"),
                                    view.keyPath("size"))
            let alpha = try number(view.required("alpha", because: "the scale of the window sum"), view.keyPath("alpha"))
            let beta = try number(view.required("beta", because: "the exponent"), view.keyPath("beta"))
            let k = try number(view.required("k", because: "the additive constant (the paper: 2; Caffe's default: 1); "
                                             + "it must be stated"), view.keyPath("k"))
            let conventionValue = try view.required("convention", because: "the LRN convention must be stated: "
                                                    + "\"paper\" (alpha multiplies the window sum as written) or "
                                                    + "\"caffe\" / \"pytorch\" (alpha / size does); they differ by a "
                                                    + "factor of size and this reader does not guess")
            let convention: LRNConvention
            switch conventionValue {
            case .string("paper"): convention = .paper
            case .string("caffe"): convention = .caffe
            case .string("pytorch"): convention = .pytorch
            default:
                throw fail(view.keyPath("convention"),
                           "expected \"paper\", \"caffe\" or \"pytorch\", got \(conventionValue.quoted)")
            }
            if convention != .pytorch, size % 2 == 0 {
                throw fail(view.keyPath("size"), "\(size) is even, which the \(convention) convention does not define "
                           + "(use an odd size, or the \"pytorch\" convention)")
            }
            guard alpha >= 0 else { throw fail(view.keyPath("alpha"), "must be >= 0, got \(alpha)") }
            guard k > 0 else { throw fail(view.keyPath("k"), "must be > 0 so the scale never reaches 0, got \(k)") }
            return .localResponseNorm(size: size, alpha: alpha, beta: beta, k: k, convention: convention)
        case "relu":
            return .relu
        case "tanh":
            return .tanh
        case "linear":
            let outputs = try positive(view.required("outputs", because: "the number of output features"),
                                       view.keyPath("outputs"))
            let bias = try view.optional("bias").map { try self.bias($0, view.keyPath("bias")) } ?? .constant(0)
            return .linear(outputs: outputs, bias: bias)
        default:  // "dropout"; the caller has checked the type against layerKeys
            let rate = try number(view.required("rate", because: "the probability of dropping a unit"),
                                  view.keyPath("rate"))
            guard rate >= 0, rate < 1 else { throw fail(view.keyPath("rate"), "must be in [0, 1), got \(rate)") }
            let scalingValue = try view.required("scaling", because: "the dropout scaling must be stated: \"paper\" "
                                                 + "(multiply by 1 - rate at test time) or \"inverted\" (divide by "
                                                 + "1 - rate in training, as PyTorch); this reader does not guess")
            guard case .string(let text) = scalingValue, let scaling = DropoutScaling(rawValue: text) else {
                throw fail(view.keyPath("scaling"), "expected \"paper\" or \"inverted\", got \(scalingValue.quoted)")
            }
            return .dropout(rate: rate, scaling: scaling)
        }
    }

    // MARK: Values

    /// An integer literal (no fraction, no exponent) that fits `Int`, else nil.
    private func integer(_ value: JSONValue) -> Int? {
        guard case .number(let text) = value, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            return nil
        }
        return Int(text)
    }

    /// Refuses an integer above ``ModelSpec/maximumSetting``, so no shape arithmetic can overflow.
    private func limited(_ n: Int, _ path: String) throws -> Int {
        guard n <= ModelSpec.maximumSetting else {
            throw fail(path, "\(n) is larger than the limit \(ModelSpec.maximumSetting)")
        }
        return n
    }

    private func positive(_ value: JSONValue, _ path: String) throws -> Int {
        guard let n = integer(value), n >= 1 else { throw fail(path, "expected a positive integer, got \(value.quoted)") }
        return try limited(n, path)
    }

    private func pair(_ value: JSONValue, _ path: String, minimum: Int) throws -> Pair {
        let expected = minimum >= 1 ? "a positive integer or [height, width]" : "a non-negative integer or [height, width]"
        if let n = integer(value), n >= minimum { return try Pair(limited(n, path), n) }
        if case .array(let items) = value, items.count == 2,
           let h = integer(items[0]), let w = integer(items[1]), h >= minimum, w >= minimum {
            return try Pair(limited(h, path), limited(w, path))
        }
        throw fail(path, "expected \(expected), got \(value.quoted)")
    }

    private func number(_ value: JSONValue, _ path: String) throws -> Double {
        guard case .number(let text) = value, let x = Double(text), x.isFinite else {
            throw fail(path, "expected a finite number, got \(value.quoted)")
        }
        return x
    }

    private func bias(_ value: JSONValue, _ path: String) throws -> LayerSpec.BiasSetting {
        if case .bool(false) = value { return .none }
        if case .number(let text) = value, let x = Double(text), x.isFinite { return .constant(x) }
        throw fail(path, "expected a number (the constant the bias starts at) or false (no bias), got \(value.quoted)")
    }
}

/// One JSON object being read, with the key path errors use.
private struct ObjectView {
    let members: [JSONValue.Member]
    var path: String
    let reader: SpecReader

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func optional(_ key: String) -> JSONValue? { members.first(where: { $0.key == key })?.value }

    func required(_ key: String, because reason: String) throws -> JSONValue {
        guard let value = optional(key) else { throw reader.fail(keyPath(key), "missing: \(reason)") }
        return value
    }

    func checkKeys(allowed: [String], what: String) throws {
        for member in members where !allowed.contains(member.key) {
            throw reader.fail(keyPath(member.key), "unknown key; \(what) takes "
                              + allowed.map { "\"\($0)\"" }.joined(separator: ", "))
        }
    }
}
