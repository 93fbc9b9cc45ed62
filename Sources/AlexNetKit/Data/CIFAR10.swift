import Foundation

/// CIFAR-10, binary version (Krizhevsky 2009): `data_batch_1.bin` ...
/// `data_batch_5.bin` (training, 10,000 records each), `test_batch.bin` (test)
/// and `batches.meta.txt` (the class names, one a line), read from a directory
/// or straight from the distributed `cifar-10-binary.tar.gz`.
///
/// A record is 3073 bytes: the label (0...9), then 1024 red, 1024 green and
/// 1024 blue bytes, each plane a 32x32 image row by row. Images come out as
/// `[3, 32, 32]`. Refused, with the file named: a missing batch file, a file
/// whose size is not a multiple of 3073 (the partial record's index and offset
/// are given), an empty file, a label above 9 (record and offset), and a
/// `batches.meta.txt` with fewer than 10 names.
public final class CIFAR10Dataset: ImageDataset {
    /// Bytes per record: 1 label + 3 x 32 x 32 pixels.
    public static let recordSize = 3073
    /// The class names `batches.meta.txt` lists, by label (used when the file is absent).
    public static let standardClassNames = ["airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"]
    /// The subdirectory the archive unpacks to.
    public static let archiveDirectory = "cifar-10-batches-bin"

    /// The batch files a split consists of, in order.
    public static func batchFileNames(split: DataSplit) -> [String] {
        split == .train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
    }

    /// The format, e.g. `"CIFAR-10 binary"`.
    public let format: String
    /// The directory or archive, and the split.
    public let location: String
    /// Class names; label `k` is `classNames[k]`.
    public let classNames: [String]
    /// The label of every example, in example order.
    public let labels: [Int]
    /// The size of every image (`[3, 32, 32]`).
    public let storedSize: ImageSize? = ImageSize(channels: 3, height: 32, width: 32)
    /// Number of examples.
    public var count: Int { labels.count }
    /// Things worth telling a user that are not errors (e.g. no `batches.meta.txt`).
    public let notes: [String]
    /// Every record of the split, concatenated in file order.
    private let records: [UInt8]
    /// The file (or `archive:member`) each run of records came from, and where the run starts.
    private let sources: [(name: String, firstRecord: Int)]

    /// One batch file's bytes and where they came from.
    struct BatchFile {
        var bytes: ArraySlice<UInt8>
        var context: DataContext
        var displayName: String
    }

    /// Reads a split from a directory holding the batch files, or holding the
    /// `cifar-10-batches-bin` directory the archive unpacks to.
    /// - Throws: ``DataError`` naming the missing or bad file.
    public convenience init(directory: String, split: DataSplit) throws {
        var root = directory
        let nested = DataFile.join(directory, CIFAR10Dataset.archiveDirectory)
        if !DataFile.isFile(DataFile.join(directory, "data_batch_1.bin")) && !DataFile.isFile(DataFile.join(directory, "test_batch.bin"))
            && DataFile.isDirectory(nested) {
            root = nested
        }
        let expected = CIFAR10Dataset.expectedFilesText
        var files: [BatchFile] = []
        for name in CIFAR10Dataset.batchFileNames(split: split) {
            let path = DataFile.join(root, name)
            guard DataFile.isFile(path) else {
                throw DataError(file: path, problem: "missing CIFAR-10 batch file: the \(split) split needs \(name) in \(root) "
                                + "(a CIFAR-10 binary directory holds \(expected))")
            }
            files.append(BatchFile(bytes: try DataFile.read(path: path)[...], context: DataContext(file: path), displayName: path))
        }
        let metaPath = DataFile.join(root, "batches.meta.txt")
        let meta = DataFile.isFile(metaPath) ? (try DataFile.read(path: metaPath), DataContext(file: metaPath)) : nil
        try self.init(files: files, meta: meta, format: "CIFAR-10 binary", location: "\(root) (\(split))")
    }

    /// Reads a split from `cifar-10-binary.tar.gz` (or an uncompressed `.tar`):
    /// inflates it, walks its tar headers, and takes the members whose base
    /// names are the batch files (wherever they sit in the archive).
    /// - Throws: ``DataError`` naming the archive, the member, the record and offset.
    public convenience init(archive: String, split: DataSplit) throws {
        let (bytes, inflated) = try DataFile.readMaybeGzipped(path: archive)
        let members = try Tar.members(bytes, context: DataContext(file: archive, inflated: inflated))
            .filter { !baseName($0.name).hasPrefix("._") }
        func member(_ name: String) -> Tar.Member? { members.first { baseName($0.name) == name } }
        var files: [BatchFile] = []
        for name in CIFAR10Dataset.batchFileNames(split: split) {
            guard let found = member(name) else {
                throw DataError(file: archive, problem: "missing CIFAR-10 batch file: the archive has no member named \(name) "
                                + "(the \(split) split needs \(CIFAR10Dataset.batchFileNames(split: split).joined(separator: ", ")); "
                                + "expected \(CIFAR10Dataset.archiveDirectory)/ holding \(CIFAR10Dataset.expectedFilesText))")
            }
            files.append(BatchFile(bytes: bytes[found.range],
                                   context: DataContext(file: archive, member: found.name, inflated: inflated),
                                   displayName: "\(archive):\(found.name)"))
        }
        let meta = member("batches.meta.txt").map {
            (Array(bytes[$0.range]), DataContext(file: archive, member: $0.name, inflated: inflated))
        }
        try self.init(files: files, meta: meta, format: inflated ? "CIFAR-10 binary (tar.gz)" : "CIFAR-10 binary (tar)",
                      location: "\(archive) (\(split))")
    }

    /// Checks and concatenates the records of `files`.
    init(files: [BatchFile], meta: ([UInt8], DataContext)?, format: String, location: String) throws {
        let recordSize = CIFAR10Dataset.recordSize
        var records: [UInt8] = []
        records.reserveCapacity(files.reduce(0) { $0 + $1.bytes.count })
        var labels: [Int] = []
        var sources: [(name: String, firstRecord: Int)] = []
        for file in files {
            let bytes = file.bytes
            guard !bytes.isEmpty else { throw file.context.error("empty CIFAR-10 batch file: no records") }
            guard bytes.count % recordSize == 0 else {
                let complete = bytes.count / recordSize
                throw file.context.error("truncated CIFAR-10 batch file: \(bytes.count) bytes is not a multiple of the "
                                         + "\(recordSize)-byte record; the last record holds \(bytes.count - complete * recordSize) "
                                         + "of \(recordSize) bytes", record: complete, offset: complete * recordSize)
            }
            for record in 0..<(bytes.count / recordSize) {
                let label = Int(bytes[bytes.startIndex + record * recordSize])
                guard label <= 9 else {
                    throw file.context.error("label \(label) is out of range 0...9", record: record, offset: record * recordSize)
                }
                labels.append(label)
            }
            sources.append((file.displayName, labels.count - bytes.count / recordSize))
            records.append(contentsOf: bytes)
        }
        var notes: [String] = []
        if let (metaBytes, metaContext) = meta {
            let names = String(decoding: metaBytes, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard names.count >= 10 else {
                throw metaContext.error("batches.meta.txt lists \(names.count) class names, CIFAR-10 needs 10")
            }
            self.classNames = Array(names.prefix(10))
        } else {
            self.classNames = CIFAR10Dataset.standardClassNames
            notes.append("batches.meta.txt not found: using the standard class names")
        }
        self.format = format
        self.location = location
        self.labels = labels
        self.records = records
        self.sources = sources
        self.notes = notes
    }

    private static var expectedFilesText: String {
        (batchFileNames(split: .train) + batchFileNames(split: .test) + ["batches.meta.txt"]).joined(separator: ", ")
    }

    /// Example `index` as `[C, H, W]` floats holding 0...255.
    public func image(at index: Int) throws -> Tensor<Float> {
        let start = index * CIFAR10Dataset.recordSize + 1
        return records.withUnsafeBufferPointer { all in
            PixelLayout.planar(UnsafeBufferPointer(rebasing: all[start..<(start + 3072)]), size: storedSize!)
        }
    }

    /// Where example `index` lives, for messages.
    public func exampleName(at index: Int) -> String {
        let source = sources.last { $0.firstRecord <= index } ?? sources[0]
        return "\(source.name) record \(index - source.firstRecord)"
    }
}

/// The last path component of `path`.
func baseName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
