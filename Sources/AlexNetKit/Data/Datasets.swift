/// Opens a data set from a path, recognising its format.
public enum Datasets {
    /// The formats ``open(path:split:format:skipBadFiles:)`` reads.
    public enum Format: String, Sendable, CaseIterable {
        /// Decide from the path (see ``open(path:split:format:skipBadFiles:)``).
        case auto
        /// CIFAR-10 binary: a directory of batch files, or `cifar-10-binary.tar.gz`.
        case cifar10
        /// MNIST-style IDX files in a directory (`train-images-idx3-ubyte[.gz]`, ...).
        case idx
        /// ImageNet-style folders `root/train/<class>/*.jpg`, `root/val/<class>/*.jpg`.
        case folder
    }

    /// Opens the `split` of the data set at `path`.
    ///
    /// With `.auto`: a file is a CIFAR-10 archive (`.tar.gz`, `.tgz`, `.tar`);
    /// a directory holding `data_batch_1.bin`, `test_batch.bin` or
    /// `cifar-10-batches-bin/` is CIFAR-10; one holding
    /// `train-images-idx3-ubyte[.gz]` or `t10k-images-idx3-ubyte[.gz]` is IDX
    /// (with Fashion-MNIST's class names when the path contains "fashion",
    /// the digits otherwise); one holding `train/` or `val/` is image folders.
    /// - Parameter skipBadFiles: for image folders, skip images that fail to decode (reported as warnings).
    /// - Throws: ``DataError`` naming the path and what was looked for.
    public static func open(path: String, split: DataSplit, format: Format = .auto,
                            skipBadFiles: Bool = false) throws -> any ImageDataset {
        let resolved = format == .auto ? try detect(path) : format
        switch resolved {
        case .cifar10:
            return DataFile.isDirectory(path) ? try CIFAR10Dataset(directory: path, split: split)
                                              : try CIFAR10Dataset(archive: path, split: split)
        case .idx:
            let names = path.lowercased().contains("fashion") ? IDXDataset.fashionMNISTClassNames : IDXDataset.digitClassNames
            return try IDXDataset(directory: path, split: split, classNames: names)
        case .folder:
            return try ImageFolderDataset(root: path, split: split, skipBadFiles: skipBadFiles)
        case .auto:
            preconditionFailure("detect never answers auto")
        }
    }

    /// The format of the data set at `path`.
    /// - Throws: ``DataError`` naming the path and every layout that was looked for.
    public static func detect(_ path: String) throws -> Format {
        if DataFile.isFile(path) {
            let lower = path.lowercased()
            if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") || lower.hasSuffix(".tar") { return .cifar10 }
            throw DataError(file: path, problem: "not a data set: a file must be a CIFAR-10 archive (.tar.gz, .tgz or .tar); "
                            + "IDX files and image folders are read from their directory")
        }
        guard DataFile.isDirectory(path) else {
            throw DataError(file: path, problem: "no such file or directory")
        }
        func has(_ name: String) -> Bool { DataFile.isFile(DataFile.join(path, name)) }
        func hasDirectory(_ name: String) -> Bool { DataFile.isDirectory(DataFile.join(path, name)) }
        if has("data_batch_1.bin") || has("test_batch.bin") || hasDirectory(CIFAR10Dataset.archiveDirectory) { return .cifar10 }
        for split in DataSplit.allCases {
            let images = IDXDataset.fileNames(split: split).images
            if has(images) || has(images + ".gz") { return .idx }
        }
        if hasDirectory("train") || hasDirectory("val") || hasDirectory("test") { return .folder }
        throw DataError(file: path, problem: "no data set recognised: expected CIFAR-10 batch files (data_batch_1.bin ..., "
                        + "test_batch.bin, or cifar-10-batches-bin/), IDX files (train-images-idx3-ubyte[.gz], "
                        + "t10k-images-idx3-ubyte[.gz] ...), or image folders (train/<class>/*.jpg, val/<class>/*.jpg)")
    }
}
