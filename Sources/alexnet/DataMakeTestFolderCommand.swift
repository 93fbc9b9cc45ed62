import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet data make-test-folder DIR`: synthetic ImageNet-style folders of JPEGs, for `data bench` and demos.
struct DataMakeTestFolderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-test-folder",
        abstract: "Write ImageNet-style folders of synthetic JPEGs (DIR/train/class_k/*.jpg, DIR/val/...).",
        discussion: """
        Each image is a smooth colour gradient with a few filled ellipses and uniform noise of +-(--noise) levels, all \
        drawn from the seeded counter-based generator, saved as a baseline 4:2:0 JPEG at \
        --quality. The class sets the ellipses' hue. The defaults (256x256, quality 90, noise 12) \
        give files of about 18 KiB; --noise 20 gives about 25 KiB, which decode a little more \
        slowly. The folder must not exist yet, or be empty.
        
        Examples:
          alexnet data make-test-folder imgs --count 200 --val-count 40
        """
    )

    @Argument(help: "The directory to create.")
    var directory: String

    @Option(help: "Training images (spread over the classes).")
    var count: Int = 200

    @Option(help: "Validation images.")
    var valCount: Int = 0

    @Option(help: "Number of classes.")
    var classes: Int = 4

    @Option(help: "Image width and height.")
    var size: Int = 256

    @Option(help: "JPEG quality, 1...100.")
    var quality: Int = 90

    @Option(help: "Noise amplitude in levels (texture; more noise makes larger files that decode more slowly).")
    var noise: Int = 12

    @Option(help: "Seed of the image content.")
    var seed: UInt64 = 1

    func validate() throws {
        try checkRange(count, 0...10_000_000, "--count")
        try checkRange(valCount, 0...10_000_000, "--val-count")
        try checkRange(classes, 1...10_000, "--classes")
        try checkRange(size, 8...InputLimits.imageSide, "--size")
        try checkRange(quality, 1...100, "--quality")
        try checkRange(noise, 0...127, "--noise")
    }

    func run() throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: directory), !((try? manager.contentsOfDirectory(atPath: directory))?.isEmpty ?? false) {
            throw ValidationError("\(directory) exists and is not empty: choose a new directory")
        }
        do {
            try OutputFiles.makeDirectory(directory, what: "directory")
        } catch let error as OutputFileError {
            throw CommandFailure(message: error.description)
        }
        var bytes = 0
        for (split, total, offset) in [("train", count, 0), ("val", valCount, count)] where total > 0 {
            for k in 0..<classes {
                do {
                    try OutputFiles.makeDirectory("\(directory)/\(split)", what: "directory")
                    try OutputFiles.makeDirectory("\(directory)/\(split)/class_\(k)", what: "directory")
                } catch let error as OutputFileError {
                    throw CommandFailure(message: error.description)
                }
            }
            for i in 0..<total {
                let label = i % classes
                let jpeg = try JPEG.encode(Self.picture(index: offset + i, label: label, size: size, noise: noise, seed: seed), quality: quality)
                bytes += jpeg.count
                let name = "\(directory)/\(split)/class_\(label)/img_" + String(format: "%05d", i) + ".jpg"
                try writeOutputFile(jpeg, to: name)
            }
        }
        let total = count + valCount
        print("wrote \(total) JPEGs of \(size)x\(size) in \(classes) classes to \(directory) "
              + "(\(count) train, \(valCount) val), \(total > 0 ? bytes / total / 1024 : 0) KiB each on average")
    }

    /// One synthetic picture: gradient background, five ellipses of the class's hue, noise of +-`noise` levels.
    static func picture(index: Int, label: Int, size: Int, noise amplitude: Int, seed: UInt64) -> Image8 {
        let random = RandomStream(seed: seed, step: UInt64(index), stream: 0x7E57)
        func uniform(_ i: Int) -> Double { random.uniform(i) }
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        let base = (0..<6).map { uniform($0) * 255 }
        let hue = [[230.0, 60, 40], [40, 200, 60], [50, 80, 230], [220, 200, 40], [200, 60, 200], [40, 200, 210]][label % 6]
        let ellipses = (0..<5).map { e in (0..<4).map { uniform(10 + 4 * e + $0) } }
        for y in 0..<size {
            for x in 0..<size {
                let u = Double(x) / Double(size), v = Double(y) / Double(size)
                var colour = (0..<3).map { base[$0] * (1 - u) * 0.7 + base[$0 + 3] * v * 0.7 + 30 }
                for (e, shape) in ellipses.enumerated() {
                    let dx = (u - shape[0]) / (0.08 + 0.2 * shape[2]), dy = (v - shape[1]) / (0.08 + 0.2 * shape[3])
                    if dx * dx + dy * dy < 1 { colour = hue.map { $0 * (0.6 + 0.1 * Double(e)) } }
                }
                let noise = random.word(1000 + y * size + x)
                for c in 0..<3 {
                    let n = Double(Int((noise >> (8 * c)) & 0xFF) % (2 * amplitude + 1) - amplitude)
                    pixels[(y * size + x) * 3 + c] = UInt8(max(0, min(255, colour[c] + n)))
                }
            }
        }
        return Image8(width: size, height: size, channels: 3, pixels: pixels)
    }
}
