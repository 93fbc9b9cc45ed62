import Foundation
import XCTest
@testable import AlexNetKit

/// Tiny data and models for the training tests: a 12x12 grey IDX data set
/// written to a temporary directory and a two-tower net with dropout.
enum TrainingFixtures {
    /// Writes `train` and `test` images of 12x12 into IDX files in `directory`:
    /// image `n` has label `n % 4`, a bright horizontal band at rows
    /// `3 * label ..< 3 * label + 3` and seeded noise elsewhere, so a net can learn it.
    static func writeIDX(_ directory: String, train: Int = 48, test: Int = 16) throws {
        func images(_ count: Int, offset: Int) -> ([UInt8], [UInt8]) {
            let noise = RandomStream(seed: 99, step: UInt64(offset), stream: 5)
            var pixels: [UInt8] = []
            var labels: [UInt8] = []
            for n in 0..<count {
                let label = n % 4
                labels.append(UInt8(label))
                for y in 0..<12 {
                    for x in 0..<12 {
                        let band = y / 3 == label ? 160 : 0
                        pixels.append(UInt8(band + Int(noise.word(n * 144 + y * 12 + x) >> 26)))  // noise 0..<64
                    }
                }
            }
            return (pixels, labels)
        }
        let (trainPixels, trainLabels) = images(train, offset: 0)
        let (testPixels, testLabels) = images(test, offset: 1)
        try DataFixtures.write(DataFixtures.idx(magic: IDX.imagesMagic, dims: [train, 12, 12], data: trainPixels),
                               to: directory + "/train-images-idx3-ubyte")
        try DataFixtures.write(DataFixtures.idxLabels(trainLabels), to: directory + "/train-labels-idx1-ubyte")
        try DataFixtures.write(DataFixtures.idx(magic: IDX.imagesMagic, dims: [test, 12, 12], data: testPixels),
                               to: directory + "/t10k-images-idx3-ubyte")
        try DataFixtures.write(DataFixtures.idxLabels(testLabels), to: directory + "/t10k-labels-idx1-ubyte")
    }

    /// A two-tower net for `[1, 12, 12]`: conv1 (whole image), conv2 (groups 2, local to each tower),
    /// fc3 and fc4 (crossing), inverted dropout before fc4.
    static let tinySpecJSON = """
    {
      "name": "tiny-towers",
      "input": [1, 12, 12],
      "towers": 2,
      "layers": [
        {"name": "conv1", "type": "conv", "outputs": 4, "kernel": 3, "padding": 1},
        {"name": "relu1", "type": "relu"},
        {"name": "pool1", "type": "maxpool", "kernel": 2, "stride": 2, "rounding": "floor"},
        {"name": "conv2", "type": "conv", "outputs": 4, "kernel": 3, "padding": 1, "groups": 2, "bias": 0.1},
        {"name": "relu2", "type": "relu"},
        {"name": "fc3", "type": "linear", "outputs": 16},
        {"name": "relu3", "type": "relu"},
        {"name": "drop3", "type": "dropout", "rate": 0.5, "scaling": "inverted"},
        {"name": "fc4", "type": "linear", "outputs": 10}
      ]
    }
    """

    /// A directory holding the data set (`data/`) and the spec (`tiny.json`); returns the directory.
    static func makeWorkspace(_ name: String = #function) throws -> String {
        let directory = try DataFixtures.temporaryDirectory("train-" + name)
        try writeIDX(directory + "/data")
        try Data(tinySpecJSON.utf8).write(to: URL(fileURLWithPath: directory + "/tiny.json"))
        return directory
    }

    /// A configuration for the tiny net on the tiny data: 6 batches of 8 per
    /// epoch, random crops (padding 1) and flips on, He weights, the test split validating.
    static func configuration(_ workspace: String, towers: Int = 2) -> TrainingConfiguration {
        var config = TrainingConfiguration()
        config.model = workspace + "/tiny.json"
        config.towers = towers
        config.data = workspace + "/data"
        config.epochs = 2
        config.batch = 8
        config.lr = 0.05
        config.initialisation = .he
        config.seed = 7
        config.threads = 2
        config.holdout = 0  // the tiny test split validates (these tests predate the default holdout)
        return config
    }

    /// The log's lines without the timing fields, which differ between runs.
    static func withoutTiming(_ lines: [String]) -> [String] {
        lines.map { line in
            line.replacingOccurrences(of: #", "images_per_second": [^,}]+"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #", "seconds": [^,}]+"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #", "train_seconds": [^,}]+"#, with: "", options: .regularExpression)
        }
    }

    static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}

/// Batches held in memory: `images` `[N, C, H, W]` cut into batches in stored order.
final class MemoryBatches: BatchSource {
    let images: Tensor<Float>
    let labels: [Int]
    let batchSize: Int

    init(images: Tensor<Float>, labels: [Int], batchSize: Int) {
        self.images = images
        self.labels = labels
        self.batchSize = batchSize
    }

    var batchCount: Int { (labels.count + batchSize - 1) / batchSize }
    var exampleCount: Int { labels.count }

    func batch(epoch: Int, index: Int) throws -> Batch {
        let range = (index * batchSize)..<min(labels.count, (index + 1) * batchSize)
        let perImage = images.count / images.shape[0]
        var dims = images.shape.dims
        dims[0] = range.count
        let values = Array(images.storage[(range.lowerBound * perImage)..<(range.upperBound * perImage)])
        return Batch(images: try Tensor(shape: Shape(dims), values: values), labels: Array(labels[range]),
                     indices: Array(range), epoch: epoch, index: index)
    }
}
