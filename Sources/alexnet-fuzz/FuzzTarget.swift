import AlexNetKit
import Foundation

/// One parser under fuzzing: what `alexnet` reads from a user's or another
/// program's files. ``parse(_:)`` runs the same entry points the commands use,
/// then touches what was read (converts tensors, reads images), so that a value
/// which parses but cannot be used is exercised too. A thrown error is the
/// expected outcome for a bad file; a trap, a crash or an abort is a finding.
enum FuzzTarget: String, CaseIterable {
    case npy, npz, safetensors, trace, spec
    case runConfig = "run-config"
    case checkpoint, idx
    case cifarDirectory = "cifar-dir"
    case cifarArchive = "cifar-tgz"
    case jpeg

    /// Inputs longer than this are not generated (the seeds fit well within it).
    var maximumLength: Int {
        switch self {
        case .cifarDirectory, .cifarArchive: return 16_384
        case .checkpoint, .trace: return 65_536
        default: return 8_192
        }
    }

    /// A scratch directory for the parsers that read from paths, one per process.
    static let scratch: String = {
        let path = NSTemporaryDirectory() + "/alexnet-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    private static func put(_ bytes: [UInt8], _ name: String) -> String {
        let path = scratch + "/" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// Reads up to four images of a data set (the loaders check lazily per image).
    private static func touch(_ dataset: any ImageDataset) throws {
        for index in 0..<min(4, dataset.count) {
            _ = try dataset.image(at: index)
            _ = dataset.exampleName(at: index)
        }
        _ = dataset.countsPerClass
    }

    /// Parses `bytes` as this target's format; throws what the parser throws.
    func parse(_ bytes: [UInt8]) throws {
        switch self {
        case .npy:
            let tensor = try NPY.read(bytes: bytes, source: "fuzz.npy")
            _ = try? tensor.floatTensor(as: Double.self, convertingIntegers: true)
        case .npz:
            for tensor in try NPZ.read(bytes: bytes, source: "fuzz.npz") {
                _ = try? tensor.floatTensor(as: Float.self, convertingIntegers: true)
            }
        case .safetensors:
            for tensor in try Safetensors.read(bytes: bytes, source: "fuzz.safetensors").tensors {
                _ = try? tensor.floatTensor(as: Float.self, convertingIntegers: true)
            }
        case .trace:
            let (tensors, metadata) = try Safetensors.read(bytes: bytes, source: "fuzz.safetensors")
            _ = try Trace.decode(tensors: tensors, metadata: metadata, source: "fuzz.safetensors")
        case .spec:
            let spec = try ModelSpec.parse(json: Data(bytes), source: "fuzz.json")
            _ = try ModelSummary(spec: spec).parameters
            _ = spec.jsonString()
        case .runConfig:
            let configuration = try TrainingConfiguration.parse(json: bytes, source: "fuzz.json")
            // The written form must read back (the typed settings' text forms included).
            _ = try TrainingConfiguration.parse(json: Array(configuration.jsonString().utf8), source: "fuzz.json")
        case .checkpoint:
            let (tensors, metadata) = try Safetensors.read(bytes: bytes, source: "fuzz.safetensors")
            _ = try TrainingCheckpoint.decode(tensors: tensors, metadata: metadata, source: "fuzz.safetensors")
        case .idx:
            // [UInt32 little-endian: length of the images file] images file, labels file.
            guard bytes.count >= 4 else { return }
            let split = min(bytes.count - 4, Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24)
            let images = Self.put(Array(bytes[4..<(4 + split)]), "images-idx3-ubyte")
            let labels = Self.put(Array(bytes[(4 + split)...]), "labels-idx1-ubyte")
            try Self.touch(IDXDataset(images: images, labels: labels))
        case .cifarDirectory:
            // The input is test_batch.bin.
            let directory = Self.scratch + "/cifar"
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = Self.put(bytes, "cifar/test_batch.bin")
            try Self.touch(CIFAR10Dataset(directory: directory, split: .test))
        case .cifarArchive:
            try Self.touch(CIFAR10Dataset(archive: Self.put(bytes, "cifar-10-binary.tar.gz"), split: .test))
        case .jpeg:
            _ = try JPEG.decodePlanar(bytes, source: "fuzz.jpg")
        }
    }
}
