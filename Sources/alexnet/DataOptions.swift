import Foundation
import AlexNetKit
import ArgumentParser

/// Where a `data` subcommand reads from: the path, the split, the format, and
/// whether bad JPEGs are skipped.
struct DataSourceOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("A CIFAR-10 directory or cifar-10-binary.tar.gz, a directory of IDX files "
                                 + "(MNIST, Fashion-MNIST), or ImageNet-style folders (train/<class>/*.jpg, val/<class>/*.jpg).",
                                 valueName: "path"))
    var path: String

    @Option(help: "Which split (image folders: test is val/).")
    var split: DataSplit = .train

    @Option(help: "The format.")
    var format: Datasets.Format = .auto

    @Flag(help: "Image folders: skip JPEGs that fail to decode (reported as warnings) instead of stopping.")
    var skipBadFiles = false

    func open() throws -> any ImageDataset {
        try Datasets.open(path: path, split: split, format: format,
                          skipBadFiles: skipBadFiles)
    }
}

/// The augmentations `data grid` and `data bench` apply, and their settings.
struct AugmentOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Augmentations, comma-separated: crop (random crop), flip (random mirror), pca "
                               + "(PCA colour); or none.", valueName: "list"))
    var augment: String = "crop,flip"

    @OptionGroup var resize: ResizeOption

    @Option(help: "Crop size (default: 227 after resizing to 256, otherwise the image size, with --padding).")
    var crop: Int?

    @Option(help: "Zero padding around the image before a random crop (default: H/8 when the crop is the image's size, as train: 3 for 28x28, 4 for 32x32; 0 otherwise).")
    var padding: Int?

    @Option(help: "Standard deviation of the PCA colour alphas (paper: 0.1).")
    var pcaStd: Double = 0.1

    @Option(help: "PCA colour magnitude: paper (eigenvalue / 255) or sd (square root of the eigenvalue).")
    var pcaMagnitude: PCAColour.Magnitude = .paper

    @Option(help: "Statistics file from `alexnet data mean` (for pca; computed from the first 1000 images when absent).")
    var stats: String?

    @Option(help: "Seed of every random choice.")
    var seed: UInt64 = 1

    @Option(help: "Epoch (keys the order and the augmentations).")
    var epoch: Int = 0

    func validate() throws {
        _ = try names()
        try checkRange(crop, 1...InputLimits.imageSide, "--crop")
        try checkRange(padding, 0...InputLimits.cropPadding, "--padding")
        guard pcaStd >= 0 && pcaStd.isFinite else { throw ValidationError("--pca-std must be finite and not negative, got \(pcaStd)") }
        try checkRange(epoch, 0...InputLimits.epochs, "--epoch")
    }

    /// The requested augmentation names, checked.
    func names() throws -> Set<String> {
        let names = Set(augment.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let known: Set<String> = ["crop", "flip", "pca", "none"]
        if let unknown = names.subtracting(known).sorted().first {
            throw ValidationError("--augment: unknown augmentation '\(unknown)' (known: crop, flip, pca, none)")
        }
        return names.subtracting(["none"])
    }

    /// The pipeline for `dataset`, with `meanSubtraction`; statistics are loaded or computed when needed.
    func pipeline(for dataset: any ImageDataset, meanSubtraction: ImagePipeline.MeanSubtraction,
                  threads: Int) throws -> (ImagePipeline, DatasetStatistics?) {
        let names = try names()
        let resize = self.resize.side ?? PipelineDefaults.resize(storedSize: dataset.storedSize, inputSide: crop ?? 227)
        var pipeline = ImagePipeline(resizeShorterSide: resize, meanSubtraction: meanSubtraction)
        let side = resize ?? dataset.storedSize.map { min($0.height, $0.width) } ?? 256
        if names.contains("crop") {
            let size = crop ?? PipelineDefaults.cropSide(resize: resize, preparedSide: side)
            let pad = padding ?? PipelineDefaults.cropPadding(prepared: (side, side), input: (size, size))
            pipeline.crop = .random(height: size, width: size, padding: pad)
        } else if let crop {
            pipeline.crop = .centre(height: crop, width: crop)
        }
        pipeline.horizontalFlip = names.contains("flip")
        if names.contains("pca") {
            pipeline.pcaColour = PCAColour(standardDeviation: pcaStd, magnitude: pcaMagnitude)
        }
        guard pipeline.needsStatistics else { return (pipeline, nil) }
        if let stats { return (pipeline, try DatasetStatistics.read(path: stats)) }
        var preparation = ImagePipeline(resizeShorterSide: pipeline.resizeShorterSide)
        preparation.greyToRGB = pipeline.greyToRGB
        let (statistics, _) = try DatasetStatistics.compute(dataset: dataset, pipeline: preparation, threads: threads, limit: 1000)
        print("statistics: computed over the first \(statistics.imageCount) images (give --stats for the whole training set)")
        return (pipeline, statistics)
    }
}

/// `--pca-magnitude paper|sd` (`sd` is the command line's short name of `standardDeviation`).
extension PCAColour.Magnitude: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "paper": self = .paper
        case "sd": self = .standardDeviation
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["paper", "sd"] }
    public var defaultValueDescription: String { self == .paper ? "paper" : "sd" }
    // The help explains both; no per-value table (ArgumentParser would make one from the raw values).
    public static var allValueDescriptions: [String: String] { [:] }
}

extension ImagePipeline {
    /// A one-line account of the steps, for command output.
    var summary: String {
        var steps: [String] = []
        if let side = resizeShorterSide { steps.append("shorter side \(side) + centre \(side)x\(side)") }
        if greyToRGB { steps.append("grey to RGB") }
        if meanSubtraction != .none { steps.append("minus \(meanSubtraction == .image ? "mean image" : "channel means")") }
        switch crop {
        case .none: break
        case .centre(let h, let w): steps.append("centre crop \(h)x\(w)")
        case .random(let h, let w, let p): steps.append("random crop \(h)x\(w)" + (p > 0 ? " (padding \(p))" : ""))
        }
        if horizontalFlip { steps.append("random flip") }
        if let pca = pcaColour { steps.append("PCA colour (sd \(pca.standardDeviation), \(pca.magnitude.rawValue))") }
        if scale != 1 { steps.append("scale \(scale)") }
        return steps.isEmpty ? "none" : steps.joined(separator: ", ")
    }
}
