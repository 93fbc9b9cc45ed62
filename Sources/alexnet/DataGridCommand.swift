import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet data grid PATH --output grid.jpg`: a picture of what the network sees.
struct DataGridCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid",
        abstract: "Write a JPEG grid of augmented training images, exactly as a batch holds them.",
        discussion: """
        The grid shows the first --count images of batch 0 of --epoch (shuffled with --seed), \
        after resizing, cropping, flipping and PCA colour as --augment says, in 0...255 units \
        (no mean is subtracted, so the picture stays viewable). Small images are enlarged \
        by --zoom with nearest-neighbour pixels. The labels are printed in grid order.
        
        Examples:
          alexnet data grid /usr/share/datasets/fashion-mnist -o grid.png
          alexnet data grid imgs --augment crop,flip,pca --count 9 -o grid.jpg
        """
    )

    @OptionGroup var source: DataSourceOptions
    @OptionGroup var augmentation: AugmentOptions

    @Option(name: .shortAndLong, help: "The file to write: .jpg or .jpeg (JPEG), or .png (lossless).")
    var output: String

    @Option(help: "How many images.")
    var count: Int = 16

    @Option(help: "Enlarge each pixel this many times (default: so that an image is about 96 pixels wide).")
    var zoom: Int?

    @OptionGroup var force: ForceFlag<DataGridCommand>

    func validate() throws {
        let extensionName = (output as NSString).pathExtension.lowercased()
        guard ["jpg", "jpeg", "png"].contains(extensionName) else {
            throw ValidationError("--output \(output): the grid is written as .jpg, .jpeg or .png, not '\(extensionName)'")
        }
        try checkRange(count, 1...1024, "--count")
        try checkRange(zoom, 1...64, "--zoom")
    }

    func run() throws {
        try checkOutputFile(output, option: "--output", force: force.isSet)
        let dataset = try source.open()
        let (pipeline, statistics) = try augmentation.pipeline(for: dataset, meanSubtraction: .none, threads: 2)
        let loader = try BatchLoader(dataset: dataset, pipeline: pipeline, statistics: statistics,
                                     options: BatchOptions(batchSize: min(count, dataset.count), prefetch: 0, threads: 2,
                                                           seed: augmentation.seed))
        let batch = try loader.makeBatch(epoch: augmentation.epoch, index: 0)
        for warning in batch.skipped { print("warning: skipped \(warning)") }
        let (n, c, h, w) = (batch.images.shape[0], batch.images.shape[1], batch.images.shape[2], batch.images.shape[3])
        let zoom = zoom ?? max(1, (96 + max(h, w) - 1) / max(h, w))
        let columns = Int(Double(n).squareRoot().rounded(.up)), rows = (n + columns - 1) / columns
        let gap = 2, tileWidth = w * zoom, tileHeight = h * zoom
        let width = columns * (tileWidth + gap) + gap, height = rows * (tileHeight + gap) + gap
        var pixels = [UInt8](repeating: 255, count: width * height * c)
        let values = batch.images.storage
        for i in 0..<n {
            let originX = gap + (i % columns) * (tileWidth + gap), originY = gap + (i / columns) * (tileHeight + gap)
            for y in 0..<tileHeight { for x in 0..<tileWidth { for channel in 0..<c {
                let v = values[((i * c + channel) * h + y / zoom) * w + x / zoom]
                pixels[((originY + y) * width + originX + x) * c + channel] = UInt8(max(0, min(255, v.rounded())))
            } } }
        }
        let picture = Image8(width: width, height: height, channels: c, pixels: pixels)
        let bytes = output.lowercased().hasSuffix(".png") ? PNG.encode(picture) : try JPEG.encode(picture, quality: 92)
        try writeOutputFile(bytes, to: output)
        print("pipeline: \(pipeline.summary)")
        print("\(n) images of \(c)x\(h)x\(w) from \(dataset.location), epoch \(augmentation.epoch), seed \(augmentation.seed)")
        for row in 0..<rows {
            let labels = (row * columns..<min(n, (row + 1) * columns)).map { dataset.classNames[batch.labels[$0]] }
            print("  " + labels.joined(separator: " | "))
        }
        print("wrote \(output) (\(width)x\(height))")
    }
}

extension DataGridCommand: ForceHelp {
    static let forceHelp = "Replace the --output file if it exists."
}
