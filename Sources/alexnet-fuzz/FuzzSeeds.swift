import AlexNetKit
import Foundation

/// Valid files of every format, made with the library's own writers (the
/// same files the tests make), from which the fuzzer starts mutating.
enum FuzzSeeds {
    /// A two-tower net small enough to run in microseconds: conv, LRN, pooling,
    /// a grouped conv, a crossing linear layer, dropout.
    static let tinySpec = """
    {
      "name": "fuzz-tiny",
      "input": [3, 8, 8],
      "towers": 2,
      "layers": [
        {"name": "conv1", "type": "conv", "outputs": 4, "kernel": 3, "padding": 1},
        {"name": "relu1", "type": "relu"},
        {"name": "norm1", "type": "lrn", "size": 3, "alpha": 0.0001, "beta": 0.75, "k": 2.0, "convention": "paper"},
        {"name": "pool1", "type": "maxpool", "kernel": 3, "stride": 2, "rounding": "ceil"},
        {"name": "conv2", "type": "conv", "outputs": 4, "kernel": 3, "padding": 1, "groups": 2},
        {"name": "fc3", "type": "linear", "outputs": 8},
        {"name": "drop3", "type": "dropout", "rate": 0.5, "scaling": "inverted"},
        {"name": "fc4", "type": "linear", "outputs": 6}
      ]
    }
    """

    /// Seed files per target: (file name, bytes).
    static func make() throws -> [(FuzzTarget, [(String, [UInt8])])] {
        let small = StoredTensor(name: "weight", tensor: try Tensor<Float>(shape: [2, 3], values: [1, -2, 3.5, 0, 1e-3, -7]))
        let wide = StoredTensor(name: "bias", tensor: try Tensor<Double>(shape: [4], values: [0.5, -1, 2, 1e300]))
        let labels = try StoredTensor(name: "labels", shape: [3], integers: [Int64(0), 4, 2])
        let tensors = [small, wide, labels]

        let spec = try ModelSpec.parse(json: tinySpec, source: "fuzz-tiny.json")
        let network = try Network<Float>(spec: spec, seed: 1, initialisation: .he)
        let batch: Tensor<Float> = TraceRecorder.randomBatch(count: 2, shape: spec.inputShape, seed: 1)
        let trace = try TraceRecorder.record(network: network, input: batch, labels: [1, 3], mode: .training,
                                             sgd: TraceSGD(form: .paper, learningRate: 0.01, momentum: 0.9, weightDecay: 0.0005))
        let weights = network.namedParameters.map { ($0.name, $0.parameter.value) }
        let velocities = weights.map { ($0.0, Tensor<Float>(shape: $0.1.shape)) }
        let statistics = try DatasetStatistics(imageCount: 10, meanImage: Tensor<Float>(shape: [3, 8, 8], repeating: 120),
                                               channelMean: [120, 121, 122], covariance: [9, 1, 0, 1, 8, 1, 0, 1, 7])
        var configuration = TrainingConfiguration()
        configuration.schedule = .plateau(patience: 2)
        let checkpointFile = NSTemporaryDirectory() + "/alexnet-fuzz-seed-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: checkpointFile) }
        try TrainingCheckpoint(configuration: configuration, spec: spec, classNames: ["a", "b", "c", "d", "e", "f"],
                               statistics: statistics, weights: weights, velocities: velocities,
                               progress: TrainingProgress(learningRate: 0.01),
                               log: [#"{"event": "epoch", "epoch": 1, "step": 3}"#]).write(to: checkpointFile)

        let pixels = (0..<(16 * 16 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let colour = Image8(width: 16, height: 16, channels: 3, pixels: pixels)
        let grey = Image8(width: 9, height: 7, channels: 1, pixels: (0..<63).map { UInt8($0 * 4) })

        let cifarRecords = (0..<2).flatMap { record in [UInt8(record * 3)] + (0..<3072).map { UInt8(truncatingIfNeeded: $0 + record) } }
        let meta = Array("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n".utf8)
        let archive = tar([("cifar-10-batches-bin/batches.meta.txt", meta), ("cifar-10-batches-bin/test_batch.bin", cifarRecords)])

        var idxImages: [UInt8] = [0, 0, 8, 3] + bigEndian(3) + bigEndian(4) + bigEndian(4)
        idxImages += (0..<48).map { UInt8($0 * 5) }
        let idxLabels: [UInt8] = [0, 0, 8, 1] + bigEndian(3) + [1, 0, 9]
        func idx(_ images: [UInt8], _ labels: [UInt8]) -> [UInt8] { littleEndian(images.count) + images + labels }

        return [
            (.npy, [("f32.npy", NPY.encode(small)), ("f64.npy", NPY.encode(wide)), ("i64.npy", NPY.encode(labels))]),
            (.npz, [("stored.npz", try NPZ.encode(tensors)), ("deflated.npz", try NPZ.encode(tensors, compressed: true))]),
            (.safetensors, [("plain.safetensors", try Safetensors.encode(tensors, metadata: ["format": "pt"]))]),
            (.trace, [("tiny.safetensors", try Safetensors.encode(trace.tensors, metadata: trace.metadata))]),
            (.spec, try ModelZoo.names.map { ("\($0).json", Array(try ModelZoo.spec(named: $0).jsonString().utf8)) }
                + [("tiny.json", Array(tinySpec.utf8))]),
            (.runConfig, [("defaults.json", Array(TrainingConfiguration().jsonString().utf8)),
                          ("small.json", Array(#"{"model": "layers-80sec", "epochs": 3, "schedule": "step:2", "crop_padding": null}"#.utf8))]),
            (.checkpoint, [("last.safetensors", [UInt8](try Data(contentsOf: URL(fileURLWithPath: checkpointFile))))]),
            (.idx, [("plain.idx", idx(idxImages, idxLabels)), ("gzipped.idx", idx(Gzip.compress(idxImages), idxLabels))]),
            (.cifarDirectory, [("test_batch.bin", cifarRecords)]),
            (.cifarArchive, [("archive.tar.gz", Gzip.compress(archive)), ("archive.tar", archive)]),
            (.jpeg, [("baseline.jpg", try JPEG.encode(colour)), ("progressive.jpg", try JPEG.encode(colour, progressive: true)),
                     ("grey.jpg", try JPEG.encode(grey))]),
        ]
    }

    private static func bigEndian(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    private static func littleEndian(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    /// A ustar archive of regular files.
    static func tar(_ files: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, bytes) in files {
            var header = [UInt8](repeating: 0, count: 512)
            func field(_ text: String, at offset: Int) { for (i, byte) in text.utf8.enumerated() { header[offset + i] = byte } }
            field(name, at: 0)
            field("0000644", at: 100)
            field("0000000", at: 108)
            field("0000000", at: 116)
            field(String(format: "%011o", bytes.count), at: 124)
            field("00000000000", at: 136)
            field("        ", at: 148)
            header[156] = UInt8(ascii: "0")
            field("ustar", at: 257)
            field("00", at: 263)
            let sum = header.reduce(0) { $0 + Int($1) }
            field(String(format: "%06o", sum), at: 148)
            header[154] = 0
            header[155] = UInt8(ascii: " ")
            out += header + bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
        }
        return out + [UInt8](repeating: 0, count: 1024)
    }
}
