/// ImageNet-style folders of JPEGs: `root/train/<class>/*.jpg` and
/// `root/val/<class>/*.jpg` (`root/test/` is accepted where there is no `val/`).
///
/// Classes are the subdirectories of `root/train` (of the split's own directory
/// when there is no `train/`), sorted by name in Unicode code point order, as
/// torchvision's `ImageFolder` sorts them; label `k` is the `k`-th class. A
/// validation class that the training split does not have is refused. Files
/// ending `.jpg` or `.jpeg` (any case) are images, in code point order within
/// their class; other files and names starting with `.` are passed over and
/// counted in ``notes``.
///
/// Images are decoded when read (``image(at:)``) with ``JPEG/decode(_:source:)``:
/// greyscale and CMYK files come out as RGB, so every image is `[3, H, W]`.
/// A corrupt or truncated JPEG, or a file that is not a JPEG, is a
/// ``DataError`` naming the file; with ``skipsBadFiles`` a ``BatchLoader``
/// leaves such files out of their batch and reports them as warnings instead.
public final class ImageFolderDataset: ImageDataset {
    /// The format, e.g. `"JPEG folders"`.
    public let format = "JPEG folders"
    /// The directory or archive, and the split.
    public let location: String
    /// Class names; label `k` is `classNames[k]`.
    public let classNames: [String]
    /// The label of every example, in example order.
    public let labels: [Int]
    /// The size of every image: nil, JPEGs vary.
    public let storedSize: ImageSize? = nil
    /// Number of examples.
    public var count: Int { files.count }
    /// The path of every image, in example order (by class, then name).
    public let files: [String]
    /// True: loaders skip files that fail to decode, and report them as warnings.
    public let skipsBadFiles: Bool
    /// What was passed over while scanning (non-JPEG files, empty classes).
    public let notes: [String]

    /// The directory names tried for a split, in order.
    public static func splitDirectories(_ split: DataSplit) -> [String] {
        split == .train ? ["train"] : ["val", "test"]
    }

    /// Scans `root` for the split's class folders (no image is decoded yet).
    /// - Parameter skipBadFiles: see ``skipsBadFiles``.
    /// - Throws: ``DataError`` for a missing directory, no classes, no images,
    ///   or a class that the training split lacks.
    public init(root: String, split: DataSplit, skipBadFiles: Bool = false) throws {
        guard DataFile.isDirectory(root) else {
            throw DataError(file: root, problem: "no such directory (expected \(root)/train/<class>/*.jpg and \(root)/val/<class>/*.jpg)")
        }
        let candidates = ImageFolderDataset.splitDirectories(split).map { DataFile.join(root, $0) }
        guard let directory = candidates.first(where: DataFile.isDirectory) else {
            throw DataError(file: candidates[0], problem: "missing \(split) directory: expected \(candidates[0])/<class>/*.jpg "
                            + "(ImageNet-style folders: \(root)/train/<class>/*.jpg, \(root)/val/<class>/*.jpg)")
        }
        let trainDirectory = DataFile.join(root, "train")
        let classSource = DataFile.isDirectory(trainDirectory) ? trainDirectory : directory
        let classNames = try DataFile.listing(classSource).filter { DataFile.isDirectory(DataFile.join(classSource, $0)) }
        guard !classNames.isEmpty else {
            throw DataError(file: classSource, problem: "no class directories: expected \(classSource)/<class>/*.jpg")
        }
        let here = try DataFile.listing(directory).filter { DataFile.isDirectory(DataFile.join(directory, $0)) }
        if let stray = here.first(where: { !classNames.contains($0) }) {
            throw DataError(file: DataFile.join(directory, stray),
                            problem: "class '\(stray)' is not among the \(classNames.count) classes of \(classSource)")
        }
        var files: [String] = []
        var labels: [Int] = []
        var ignored = 0
        var notes: [String] = []
        for (label, name) in classNames.enumerated() {
            let classDirectory = DataFile.join(directory, name)
            guard DataFile.isDirectory(classDirectory) else {
                notes.append("class '\(name)' has no directory in \(directory)")
                continue
            }
            var found = 0
            for entry in try DataFile.listing(classDirectory) {
                let path = DataFile.join(classDirectory, entry)
                let lower = entry.lowercased()
                if (lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg")) && DataFile.isFile(path) {
                    files.append(path)
                    labels.append(label)
                    found += 1
                } else {
                    ignored += 1
                }
            }
            if found == 0 { notes.append("class '\(name)' has no images in \(classDirectory)") }
        }
        if ignored > 0 { notes.append("\(ignored) entries passed over: not .jpg/.jpeg files") }
        guard !files.isEmpty else {
            throw DataError(file: directory, problem: "no images: expected \(directory)/<class>/*.jpg")
        }
        self.location = "\(directory) (\(split))"
        self.classNames = classNames
        self.files = files
        self.labels = labels
        self.skipsBadFiles = skipBadFiles
        self.notes = notes
    }

    /// Decodes example `index` to `[3, H, W]` floats holding 0...255.
    /// - Throws: ``DataError`` naming the file (unreadable, not a JPEG, corrupt or truncated).
    public func image(at index: Int) throws -> Tensor<Float> {
        let path = files[index]
        let bytes = try DataFile.read(path: path)
        do {
            return try JPEG.decodePlanar(bytes, source: path)
        } catch let error as ImageError {
            throw DataError(file: path, problem: error.problem)
        }
    }

    /// Where example `index` lives, for messages.
    public func exampleName(at index: Int) -> String { files[index] }
}
