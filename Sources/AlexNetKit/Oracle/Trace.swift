import Foundation

/// A trace that cannot be used: names the file, the tensor or metadata key
/// where known, and what is wrong, in one line:
/// `run.safetensors: forward.conv2: shape [2, 256, 27, 27], the spec implies [2, 256, 13, 13]`.
public struct TraceError: Error, CustomStringConvertible, Equatable {
    /// The trace's path (a safetensors file or a directory).
    public var file: String
    /// The tensor (`forward.conv2`) or metadata key (`metadata 'spec'`), or nil.
    public var subject: String?
    /// What is wrong and, where it helps, how to fix it.
    public var problem: String

    /// Creates an error; see the properties.
    public init(file: String, subject: String? = nil, problem: String) {
        self.file = file
        self.subject = subject
        self.problem = problem
    }

    /// `file: subject: problem`.
    public var description: String {
        ([file] + (subject.map { [$0] } ?? []) + [problem]).filter { !$0.isEmpty }.joined(separator: ": ")
    }
}

/// What a trace records: a whole network and its loss, or one layer alone.
public enum TraceKind: String, Sendable, CaseIterable {
    /// A model spec, its loss, and optionally backward and one SGD step.
    case network
    /// One layer fed a given input and, backward, a given output gradient.
    case layer
}

/// The SGD step a trace's `updated.*` tensors took (metadata `sgd_form`,
/// `learning_rate`, `momentum`, `weight_decay`), from zero velocity.
public struct TraceSGD: Equatable, Sendable {
    /// Which of the two named forms (Docs/conventions.md).
    public var form: SGDForm
    /// The learning rate.
    public var learningRate: Double
    /// The momentum (irrelevant to one step from zero velocity, but recorded).
    public var momentum: Double
    /// The weight decay.
    public var weightDecay: Double

    /// Creates the settings; see the properties.
    public init(form: SGDForm, learningRate: Double, momentum: Double, weightDecay: Double) {
        self.form = form
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }
}

/// One training step's tensors, as another implementation (or ours) dumped
/// them: the oracle's input. Docs/oracle.md, "Trace format (version 1)", is
/// the authority; this type reads and writes exactly that.
///
/// A trace is a safetensors file (metadata in `__metadata__`) or a directory
/// of `<name>.npy` files plus `metadata.json`. Reading checks the container and
/// the metadata; ``TracePlan`` then checks every tensor against what the spec
/// implies.
public struct Trace {
    /// The metadata `format` value of a one-step trace (version 1).
    public static let format = "alexnet-trace/1"
    /// The metadata `format` value of a trace of several steps (version 2, ``steps``).
    public static let formatSteps = "alexnet-trace/2"

    /// `network` or `layer`.
    public var kind: TraceKind
    /// `.float32` or `.float64`: the element type of every float tensor.
    public var dtype: DType
    /// Training (dropout masks applied) or inference.
    public var mode: PassMode
    /// The model (network traces).
    public var spec: ModelSpec?
    /// The layer (layer traces).
    public var layer: LayerSpec?
    /// The SGD step, when the trace holds `updated.*`.
    public var sgd: TraceSGD?
    /// 2 when the producer recorded per-tower tensors; nil otherwise.
    public var towers: Int?
    /// Free text naming the producer, e.g. `pytorch 2.3.0+cpu`.
    public var producer: String?
    /// Version 2: the number of training steps T (metadata `steps`), whose tensors are
    /// `step<t>.*` for t = 1...T; nil for a version 1 trace of one step (Docs/oracle.md).
    public var steps: Int?
    /// Version 2: the learning rate of each step (metadata `learning_rates`, T numbers);
    /// nil when every step uses ``TraceSGD/learningRate``.
    public var learningRates: [Double]?
    /// Metadata keys this version does not define, kept and reported, never used.
    public var extraMetadata: [String: String] = [:]
    /// The tensors, in the order read or added.
    public private(set) var tensors: [StoredTensor]
    /// Where the trace came from (a path), for errors and reports.
    public var source: String

    private var indexByName: [String: Int]

    /// A network trace holding `tensors`.
    /// - Parameters:
    ///   - spec: the model whose step the tensors record.
    ///   - dtype: `.float32` or `.float64`.
    /// - Throws: ``TraceError`` if two tensors share a name or `dtype` is not a float type.
    public init(network spec: ModelSpec, dtype: DType, mode: PassMode, sgd: TraceSGD? = nil, towers: Int? = nil,
                producer: String? = nil, tensors: [StoredTensor] = [], source: String = "(trace in memory)") throws {
        try self.init(kind: .network, spec: spec, layer: nil, dtype: dtype, mode: mode, sgd: sgd, towers: towers,
                      producer: producer, tensors: tensors, source: source)
    }

    /// A layer trace holding `tensors` (`input`, `grad_output.<layer>`, ...).
    /// - Throws: ``TraceError`` if two tensors share a name or `dtype` is not a float type.
    public init(layer: LayerSpec, dtype: DType, mode: PassMode, sgd: TraceSGD? = nil, producer: String? = nil,
                tensors: [StoredTensor] = [], source: String = "(trace in memory)") throws {
        try self.init(kind: .layer, spec: nil, layer: layer, dtype: dtype, mode: mode, sgd: sgd, towers: nil,
                      producer: producer, tensors: tensors, source: source)
    }

    private init(kind: TraceKind, spec: ModelSpec?, layer: LayerSpec?, dtype: DType, mode: PassMode, sgd: TraceSGD?,
                 towers: Int?, producer: String?, tensors: [StoredTensor], source: String) throws {
        guard DType.traceTypes.contains(dtype) else {
            throw TraceError(file: source, subject: "metadata 'dtype'",
                             problem: "must be \(spelledAlternatives(DType.traceTypes.map(\.traceSpelling))), got \(dtype)")
        }
        self.kind = kind
        self.spec = spec
        self.layer = layer
        self.dtype = dtype
        self.mode = mode
        self.sgd = sgd
        self.towers = towers
        self.producer = producer
        self.tensors = []
        self.indexByName = [:]
        self.source = source
        for tensor in tensors {
            guard indexByName[tensor.name] == nil else {
                throw TraceError(file: source, subject: tensor.name, problem: "two tensors have this name")
            }
            set(tensor)
        }
    }

    /// The tensor called `name`, or nil.
    public subscript(name: String) -> StoredTensor? {
        indexByName[name].map { tensors[$0] }
    }

    /// Every tensor name, in order.
    public var names: [String] { tensors.map(\.name) }

    /// Adds `tensor`, or replaces the one with its name (keeping its position).
    public mutating func set(_ tensor: StoredTensor) {
        if let index = indexByName[tensor.name] {
            tensors[index] = tensor
        } else {
            indexByName[tensor.name] = tensors.count
            tensors.append(tensor)
        }
    }

    /// Adds a float tensor under `name` (its element type must be the trace's dtype to be valid).
    public mutating func set<T: TensorElement>(_ name: String, _ tensor: Tensor<T>) {
        set(StoredTensor(name: name, tensor: tensor))
    }

    /// Removes the tensor called `name`, if present.
    public mutating func remove(_ name: String) {
        guard let index = indexByName[name] else { return }
        tensors.remove(at: index)
        indexByName = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    /// The name the layer or model goes by in reports: the spec's name, or the layer's.
    public var subjectName: String { spec?.name ?? layer?.name ?? "?" }

    // MARK: Metadata

    /// The metadata as written: every key of the format whose value is set, plus ``extraMetadata``.
    public var metadata: [String: String] {
        // Cannot fail: the only list (`learning_rates`) holds numbers, never a comma.
        // swiftlint:disable:next force_try
        try! StringMetadataEncoder().encode(TraceMetadata(self))
    }

    /// The metadata keys versions 1 and 2 define (`steps` and `learning_rates` are version 2's).
    public static let metadataKeys = TraceMetadata.CodingKeys.allCases.map(\.stringValue)

    /// Builds a trace from its tensors and metadata, checking every metadata value.
    /// - Throws: ``TraceError`` naming the key: unknown format or version, a
    ///   missing or unknown kind, dtype or mode, a spec or layer that does not
    ///   parse, SGD settings that are incomplete or not numbers, version 2's
    ///   `steps` and `learning_rates` (``TraceMetadata``); naming the tensor: a
    ///   layer trace without `input`, a `step<t>.` tensor outside the steps.
    public static func decode(tensors: [StoredTensor], metadata: [String: String], source: String) throws -> Trace {
        let fields: TraceMetadata
        do {
            fields = try StringMetadataDecoder(metadata).decode(TraceMetadata.self)
        } catch let failure as StringMetadataFailure {
            throw TraceError(file: source, subject: "metadata '\(failure.key)'", problem: failure.problem)
        }
        func fail(_ key: TraceMetadata.CodingKeys, _ problem: String) -> TraceError {
            TraceError(file: source, subject: "metadata '\(key.stringValue)'", problem: problem)
        }
        var trace: Trace
        switch fields.kind {
        case .network:
            let spec: ModelSpec
            do {
                // TraceMetadata refuses a network trace without its spec.
                spec = try ModelSpec.parse(json: fields.spec!, source: "spec")
            } catch let error as ModelSpecError {
                throw fail(.spec, "does not parse: \(error)")
            }
            if fields.towers == 2 && spec.towers != 2 {
                throw fail(.towers, "is 2 but the spec has \(spec.towers) tower(s)")
            }
            trace = try Trace(network: spec, dtype: fields.dtype, mode: fields.mode, sgd: fields.sgd, towers: fields.towers,
                              producer: fields.producer, tensors: tensors, source: source)
        case .layer:
            guard let input = tensors.first(where: { $0.name == "input" }) else {
                throw TraceError(file: source, subject: "input", problem: "missing; a layer trace needs the layer's input")
            }
            // TraceMetadata refuses a layer trace without its layer.
            let layer = try LayerSpec.parse(json: fields.layer!, input: input.shape, source: source)
            trace = try Trace(layer: layer, dtype: fields.dtype, mode: fields.mode, sgd: fields.sgd, producer: fields.producer,
                              tensors: tensors, source: source)
        }
        trace.steps = fields.steps
        trace.learningRates = fields.learningRates
        trace.extraMetadata = fields.extra
        try trace.checkStepTensors()
        return trace
    }

    // MARK: Files

    /// Reads a trace: a `.safetensors` file, or a directory of `.npy` files
    /// with `metadata.json`.
    /// - Throws: ``TraceError`` for a missing path, a directory without
    ///   `metadata.json`, metadata that is not a JSON object of strings, and
    ///   every metadata problem ``decode(tensors:metadata:source:)`` finds;
    ///   ``TensorFileError`` (naming the file and tensor) for unreadable tensor files.
    public static func read(path: String) throws -> Trace {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TraceError(file: path, problem: "no such file or directory")
        }
        if !isDirectory.boolValue {
            let (tensors, metadata) = try Safetensors.read(path: path)
            guard !metadata.isEmpty else {
                throw TraceError(file: path, subject: "__metadata__",
                                 problem: "missing; a trace's safetensors header carries its metadata (format, kind, dtype, ...)")
            }
            return try decode(tensors: tensors, metadata: metadata, source: path)
        }
        let metadataPath = (path as NSString).appendingPathComponent("metadata.json")
        guard let data = FileManager.default.contents(atPath: metadataPath) else {
            throw TraceError(file: path, subject: "metadata.json",
                             problem: "missing; a directory trace holds <name>.npy files and a metadata.json object of strings")
        }
        let metadata = try parseMetadata(data, source: metadataPath)
        let files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".npy") }.sorted()
        var tensors: [StoredTensor] = []
        for file in files {
            tensors.append(try NPY.read(path: (path as NSString).appendingPathComponent(file)))
        }
        return try decode(tensors: tensors, metadata: metadata, source: path)
    }

    /// Parses `metadata.json`: one JSON object whose values are all strings.
    static func parseMetadata(_ data: Data, source: String) throws -> [String: String] {
        let decoder: StrictJSONDecoder
        do {
            decoder = try StrictJSONDecoder(bytes: [UInt8](data))
        } catch let error as JSONSyntaxError {
            throw TraceError(file: source, problem: "not valid JSON: \(error.problem) (line \(error.line), column \(error.column))")
        }
        guard case .object = decoder.root else {
            throw TraceError(file: source, problem: "expected one JSON object of strings, got \(decoder.root.quoted)")
        }
        do {
            return try decoder.decode([String: String].self)
        } catch let failure as JSONDecodingFailure {
            throw TraceError(file: source, subject: "'\(failure.path)'",
                             problem: "\(failure.problem) (every metadata value is a string; line \(failure.line ?? 0))")
        }
    }

    /// Writes the trace: a single safetensors file when `path` ends in
    /// `.safetensors`, otherwise a directory of `<name>.npy` files and
    /// `metadata.json`. Both are atomic: the directory is written beside `path`
    /// under a temporary name and renamed into place, so a failed or killed
    /// write leaves whatever was at `path` as it was. Existing files are
    /// replaced: callers refuse to overwrite without being asked.
    /// - Throws: ``TensorFileError`` or ``TraceError`` naming the path.
    public func write(to path: String) throws {
        if path.lowercased().hasSuffix(".safetensors") {
            try Safetensors.write(tensors, metadata: metadata, to: path)
            return
        }
        for tensor in tensors {
            guard !tensor.name.contains("/"), !tensor.name.isEmpty else {
                throw TraceError(file: path, subject: tensor.name, problem: "a tensor name cannot be a file name")
            }
        }
        try OutputFiles.replaceDirectory(path) { directory in
            for tensor in tensors {
                try NPY.write(tensor, to: (directory as NSString).appendingPathComponent(tensor.name + ".npy"))
            }
            let members = metadata.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.string($0.value), offset: 0) }
            let text = JSONValue.object(members).formatted(expandedLevels: 1) + "\n"
            try TensorFileIO.writeAtomically(Array(text.utf8), to: (directory as NSString).appendingPathComponent("metadata.json"))
        }
    }
}

extension LayerSpec {
    /// Parses one layer's JSON (a layer trace's `layer` metadata, a spec's
    /// `layers` entry), checking that it can take an input of `input`'s shape
    /// (`[N, C, H, W]`, or `[N, F]` and other ranks for layers that flatten or
    /// work element-wise).
    /// - Throws: ``TraceError`` naming `metadata 'layer'` and the key or the shape problem.
    static func parse(json: String, input: Shape, source: String) throws -> LayerSpec {
        func fail(_ problem: String) -> TraceError { TraceError(file: source, subject: "metadata 'layer'", problem: problem) }
        guard input.rank >= 2, input[0] >= 1 else {
            throw TraceError(file: source, subject: "input", problem: "shape \(input): expected [N, ...] with N >= 1")
        }
        let layer: LayerSpec
        do {
            layer = try StrictJSONDecoder(bytes: Array(json.utf8), maximumDepth: 200).decode(LayerSpec.self)
        } catch let error as JSONSyntaxError {
            throw fail("not valid JSON: \(error.problem) (line:column \(error.line):\(error.column))")
        } catch let failure as JSONDecodingFailure {
            throw fail((failure.path.isEmpty ? "" : failure.path + ": ") + failure.problem)
        }
        let perImage = Shape(Array(input.dims.dropFirst()))
        switch layer.kind {
        case .convolution, .maxPool, .avgPool, .localResponseNorm:
            guard perImage.rank == 3 else {
                throw TraceError(file: source, subject: "input", problem: "shape \(input): a \(layer.kind.typeName) layer takes [N, C, H, W]")
            }
        default:
            break
        }
        let specInput: Shape = perImage.rank == 3 ? perImage : [perImage.count, 1, 1]
        do {
            _ = try layer.outputShape(for: specInput)
        } catch let error as ModelSpecError {
            throw fail(error.problem)
        } catch {
            throw fail("\(error)")
        }
        return layer
    }
}
