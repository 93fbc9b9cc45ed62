import ArgumentParser

/// `alexnet data`: the data sets the tool reads, their statistics, and what the network sees.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Inspect data sets, compute their statistics, see and time the input pipeline.",
        discussion: """
        Reads CIFAR-10 (binary version: a directory or cifar-10-binary.tar.gz), MNIST-style \
        IDX files (Fashion-MNIST: apt-get install dataset-fashion-mnist, then \
        /usr/share/datasets/fashion-mnist), and ImageNet-style JPEG folders \
        (root/train/<class>/*.jpg, root/val/<class>/*.jpg). See Docs/data.md.
        
        Examples:
          alexnet data inspect /usr/share/datasets/fashion-mnist
          alexnet data grid /usr/share/datasets/fashion-mnist -o grid.png
        """,
        subcommands: [DataInspectCommand.self, DataMeanCommand.self, DataGridCommand.self, DataBenchCommand.self,
                      DataMakeTestFolderCommand.self]
    )
}
