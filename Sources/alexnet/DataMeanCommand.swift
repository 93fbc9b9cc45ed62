import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet data mean PATH --output stats.npz`: the statistics mean subtraction and PCA colour need.
struct DataMeanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mean",
        abstract: "Compute a data set's mean image, channel means and RGB covariance with its eigenvectors.",
        discussion: """
        Statistics are over prepared images (resized and centre-cropped when --resize is \
        given; JPEG folders default to 256), in 0...255 pixel units; the covariance is over \
        every pixel of every image. Written as an .npz with mean_image, channel_mean, \
        covariance, eigenvalues, eigenvectors (columns) and image_count. The result does \
        not depend on --threads.
        
        Examples:
          alexnet data mean imgs -o stats.npz
          alexnet data mean cifar-10-binary.tar.gz -o cifar-stats.npz
        """
    )

    @OptionGroup var source: DataSourceOptions

    @Option(name: .shortAndLong, help: "The .npz file to write.")
    var output: String

    @OptionGroup var resize: ResizeOption

    @Flag(help: "Copy grey images into three channels first.")
    var greyToRGB = false

    @Option(help: "Use only the first N examples.")
    var limit: Int?

    @OptionGroup var workers: WorkerThreadsOption

    @OptionGroup var force: ForceFlag<DataMeanCommand>

    func validate() throws {
        guard (output as NSString).pathExtension.lowercased() == "npz" else {
            throw ValidationError("--output \(output): the statistics are written as an .npz file")
        }
        try checkRange(limit, 1...InputLimits.examples, "--limit")
    }

    func run() throws {
        try checkOutputFile(output, option: "--output", force: force.isSet)
        let dataset = try source.open()
        let side = resize.side ?? PipelineDefaults.resize(storedSize: dataset.storedSize, inputSide: 227)
        let pipeline = ImagePipeline(resizeShorterSide: side, greyToRGB: greyToRGB)
        let start = Date()
        let (statistics, skipped) = try DatasetStatistics.compute(dataset: dataset, pipeline: pipeline, threads: workers.count, limit: limit)
        try statistics.write(to: output)
        for warning in skipped { print("warning: skipped \(warning)") }
        func list(_ values: [Double]) -> String { values.map { String(format: "%.4f", $0) }.joined(separator: ", ") }
        let c = statistics.channels
        print("\(statistics.imageCount) images of \(ImageSize(of: statistics.meanImage)) from \(dataset.location) "
              + String(format: "in %.1f s", Date().timeIntervalSince(start)))
        print("channel mean:  [\(list(statistics.channelMean))]")
        print("eigenvalues:   [\(list(statistics.eigenvalues))]")
        for k in 0..<c { print("eigenvector \(k + 1): [\(list((0..<c).map { statistics.eigenvectors[$0 * c + k] }))]") }
        if !skipped.isEmpty { print("warning: \(skipped.count) bad file(s) skipped") }
        print("wrote \(output)")
    }
}

extension DataMeanCommand: ForceHelp {
    static let forceHelp = "Replace the --output file if it exists."
}
