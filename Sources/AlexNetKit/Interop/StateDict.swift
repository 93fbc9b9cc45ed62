import Foundation

/// How parameter names are spelled in a weights file.
public enum ParameterNaming: String, CaseIterable, Sendable {
    /// The spec's layer names: `conv1.weight`, `fc8.bias`.
    case native
    /// PyTorch `nn.Sequential` positions, as torchvision's AlexNet and a paper
    /// AlexNet written the same way name them: `features.<i>` for the layers up
    /// to the last convolution, LRN or pooling layer, `classifier.<i>` for the
    /// rest, `i` counting every layer (ReLU, dropout, ...) in its Sequential.
    /// For torchvision's model this gives `features.0`, ..., `classifier.1`,
    /// `classifier.4`, `classifier.6`; for the paper's, `classifier.0`, `.3`, `.6`.
    case pytorch
}

/// How the parameters of a two-tower model are laid out in a file.
public enum WeightLayout: String, CaseIterable, Sendable {
    /// One tensor per parameter, both towers' rows together (`conv3.weight` `[384, 256, 3, 3]`).
    case grouped
    /// One tensor per parameter and tower, each with its tower's rows:
    /// `tower0.conv3.weight` = rows 0..<192, `tower1.conv3.weight` = rows 192..<384.
    case towers
}

/// A weights file does not fit the model it is loaded into.
public struct WeightsError: Error, CustomStringConvertible, Equatable {
    /// The file (or source) the weights came from.
    public var file: String
    /// What is wrong: missing, unexpected or mis-shaped parameters, with names and shapes.
    public var problem: String

    public var description: String { "\(file): \(problem)" }
}

/// Weights in and out of a ``Network`` with PyTorch's names or ours, grouped or per tower.
public enum StateDict {
    /// `layer name -> "features.<i>"` or `"classifier.<i>"` for ``ParameterNaming/pytorch``.
    public static func pytorchModuleNames(for spec: ModelSpec) -> [String: String] {
        let lastFeature = spec.layers.lastIndex { layer in
            switch layer.kind {
            case .convolution, .maxPool, .avgPool, .localResponseNorm: return true
            default: return false
            }
        } ?? -1
        var names: [String: String] = [:]
        for (index, layer) in spec.layers.enumerated() {
            names[layer.name] = index <= lastFeature ? "features.\(index)" : "classifier.\(index - lastFeature - 1)"
        }
        return names
    }

    /// The file name of every parameter, in network order, for a naming and layout:
    /// `(file name, native name, tower or nil)`.
    static func entries(for spec: ModelSpec, naming: ParameterNaming, layout: WeightLayout,
                        nativeNames: [String]) -> [(file: String, native: String, tower: Int?)] {
        let modules = pytorchModuleNames(for: spec)
        return nativeNames.flatMap { native -> [(file: String, native: String, tower: Int?)] in
            let dot = native.lastIndex(of: ".")!
            let (layer, kind) = (String(native[..<dot]), String(native[native.index(after: dot)...]))
            let base = naming == .native ? native : "\(modules[layer]!).\(kind)"
            switch layout {
            case .grouped: return [(base, native, nil)]
            case .towers: return (0..<spec.towers).map { ("tower\($0).\(base)", native, $0) }
            }
        }
    }

    /// The network's parameters as tensors to write.
    /// - Throws: ``WeightsError`` for the tower layout on a one-tower model.
    public static func export<T: TensorElement>(_ network: Network<T>, naming: ParameterNaming = .native,
                                                layout: WeightLayout = .grouped) throws -> [StoredTensor] {
        guard layout == .grouped || network.spec.towers > 1 else {
            throw WeightsError(file: network.spec.name, problem: "the towers layout needs a two-tower model; \(network.spec.name) has one tower")
        }
        let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters.map { ($0.name, $0.parameter) })
        return try entries(for: network.spec, naming: naming, layout: layout, nativeNames: network.namedParameters.map(\.name))
            .map { entry in
                let value = parameters[entry.native]!.value
                guard let tower = entry.tower else { return StoredTensor(name: entry.file, tensor: value) }
                return StoredTensor(name: entry.file, tensor: try value.towerRows(tower, of: network.spec.towers))
            }
    }

    /// Loads weights into `network`, detecting the naming and layout unless given.
    ///
    /// Everything is checked before anything is written, so a failed load leaves
    /// the network as it was. Float64 files load into a Float network rounded
    /// to nearest (and Float32 into Double exactly); integer tensors and
    /// non-finite values are refused.
    /// - Returns: the naming and layout the file used.
    /// - Throws: ``WeightsError`` listing missing, unexpected or mis-shaped parameters.
    @discardableResult
    public static func load<T: TensorElement>(_ tensors: [StoredTensor], into network: Network<T>, source: String,
                                              naming: ParameterNaming? = nil, layout: WeightLayout? = nil)
    throws -> (naming: ParameterNaming, layout: WeightLayout) {
        let spec = network.spec
        let nativeNames = network.namedParameters.map(\.name)
        let byName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        if byName.count < tensors.count {
            throw WeightsError(file: source, problem: "a tensor name appears twice")
        }
        // Every allowed combination, best match first: the one with the most names found.
        let layouts = spec.towers > 1 ? WeightLayout.allCases : [.grouped]
        let candidates = (naming.map { [$0] } ?? ParameterNaming.allCases).flatMap { n in
            (layout.map { [$0] } ?? layouts).map { l in (n, l, entries(for: spec, naming: n, layout: l, nativeNames: nativeNames)) }
        }
        let (chosenNaming, chosenLayout, expected) = candidates.max { a, b in
            a.2.filter { byName[$0.file] != nil }.count < b.2.filter { byName[$0.file] != nil }.count
        }!
        if chosenLayout == .towers && spec.towers < 2 {
            throw WeightsError(file: source, problem: "the towers layout needs a two-tower model; \(spec.name) has one tower")
        }
        let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters.map { ($0.name, $0.parameter) })
        var problems: [String] = []
        let missing = expected.filter { byName[$0.file] == nil }
        if !missing.isEmpty {
            problems.append("missing " + missing.prefix(5).map { entry -> String in
                let shape = parameters[entry.native]!.value.shape
                let rows = entry.tower == nil ? shape : Shape([shape[0] / spec.towers] + shape.dims.dropFirst())
                return "'\(entry.file)' \(rows)"
            }.joined(separator: ", ") + (missing.count > 5 ? " and \(missing.count - 5) more" : ""))
        }
        let known = Set(expected.map(\.file))
        let unexpected = tensors.map(\.name).filter { !known.contains($0) }
        if !unexpected.isEmpty {
            problems.append("not parameters of model \(spec.name): " + unexpected.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
                            + (unexpected.count > 5 ? " and \(unexpected.count - 5) more" : ""))
        }
        if !problems.isEmpty {
            throw WeightsError(file: source, problem: problems.joined(separator: "; ")
                               + " (read as \(chosenNaming) names, \(chosenLayout) layout)")
        }

        // Convert and check every tensor, then assemble per parameter.
        var pieces: [String: [Int: Tensor<T>]] = [:]
        for entry in expected {
            let stored = byName[entry.file]!
            let value: Tensor<T>
            do {
                if stored.dtype == .float64 && T.self == Float.self {
                    value = try stored.narrowedToFloat() as! Tensor<T>
                } else {
                    value = try stored.floatTensor(as: T.self)
                }
            } catch let error as TensorFileError {
                throw WeightsError(file: source, problem: "'\(entry.file)': \(error.problem)")
            }
            let whole = parameters[entry.native]!.value.shape
            let expectedShape = entry.tower == nil ? whole : Shape([whole[0] / spec.towers] + whole.dims.dropFirst())
            guard value.shape == expectedShape else {
                throw WeightsError(file: source, problem: "'\(entry.file)' has shape \(value.shape), expected \(expectedShape)")
            }
            if let bad = value.firstNonFiniteIndex() {
                throw WeightsError(file: source, problem: "'\(entry.file)' holds a non-finite value (\(value.storage[bad])) at flat index \(bad)")
            }
            pieces[entry.native, default: [:]][entry.tower ?? 0] = value
        }
        for (name, parameter) in parameters {
            let parts = pieces[name]!
            if parts.count == 1 {
                parameter.value = parts[0]!
            } else {
                parameter.value = try Tensor.concatenateRows((0..<parts.count).map { parts[$0]! })
            }
        }
        return (chosenNaming, chosenLayout)
    }

    /// Reads the weights in a `.safetensors`, `.npz` or `.npy` file (chosen by
    /// extension). A training checkpoint (``TrainingCheckpoint``) gives its
    /// weights only, checked as a checkpoint is (its velocities and data
    /// statistics are not parameters), so a trained net can be converted,
    /// inspected and traced like any weights file. A `.npy` file holds one
    /// tensor, named by the file's base name.
    /// - Throws: ``TensorFileError`` for unreadable files, ``WeightsError`` for
    ///   other extensions and damaged checkpoints.
    public static func read(path: String) throws -> [StoredTensor] {
        switch (path as NSString).pathExtension.lowercased() {
        case "safetensors":
            let (tensors, metadata) = try Safetensors.read(path: path)
            guard TrainingCheckpoint.isCheckpoint(metadata: metadata) else { return tensors }
            let checkpoint = try TrainingCheckpoint.decode(tensors: tensors, metadata: metadata, source: path)
            return checkpoint.weights.map { StoredTensor(name: $0.name, tensor: $0.tensor) }
        case "npz": return try NPZ.read(path: path)
        case "npy":
            var tensor = try NPY.read(path: path)
            tensor.name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            return [tensor]
        default:
            throw WeightsError(file: path, problem: "unknown weights format: use a .safetensors, .npz or .npy file "
                               + "(training checkpoints are .safetensors)")
        }
    }

    /// Writes tensors as `.safetensors` or `.npz` (chosen by extension), atomically.
    public static func write(_ tensors: [StoredTensor], to path: String, metadata: [String: String] = [:]) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "safetensors": try Safetensors.write(tensors, metadata: metadata, to: path)
        case "npz": try NPZ.write(tensors, to: path)
        default:
            throw WeightsError(file: path, problem: "unknown weights format: use a .safetensors or .npz file")
        }
    }
}
