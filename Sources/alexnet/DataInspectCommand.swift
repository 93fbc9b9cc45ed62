import AlexNetKit
import ArgumentParser

/// `alexnet data inspect PATH`: what a data set holds, and what is wrong with it.
struct DataInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a data set's format, examples per class, image sizes and problems.",
        discussion: """
        CIFAR-10 and IDX files are checked completely when opened (sizes, labels). \
        JPEG folders are decoded image by image (all of them, or --limit evenly spread); \
        every file that fails is listed with its problem, and the command exits 1.
        
        Examples:
          alexnet data inspect /usr/share/datasets/fashion-mnist --split test
          alexnet data inspect cifar-10-binary.tar.gz
        """
    )

    @OptionGroup var source: DataSourceOptions

    @Option(help: "JPEG folders: decode at most this many images (evenly spread).")
    var limit: Int?

    @OptionGroup var workers: WorkerThreadsOption

    func validate() throws {
        try checkRange(limit, 0...InputLimits.examples, "--limit")
    }

    func run() throws {
        let report = DatasetReport.make(dataset: try source.open(), limit: limit, threads: workers.count)
        print(report.text)
        if !report.problems.isEmpty && !source.skipBadFiles { throw ExitCode(1) }
    }
}
