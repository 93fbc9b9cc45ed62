/// IDX files, the format of MNIST and Fashion-MNIST (LeCun's `*-idx3-ubyte`
/// images and `*-idx1-ubyte` labels), gzipped or not.
///
/// Layout: a 4-byte magic `00 00 TT DD` (TT the element type, 0x08 for
/// unsigned bytes; DD the number of dimensions), then DD big-endian 32-bit
/// extents, then the elements, row-major. Images are magic 0x00000803
/// (`[N, rows, columns]` bytes), labels 0x00000801 (`[N]` bytes). Whether a
/// file is gzipped is decided by its first two bytes, not its name.
public enum IDX {
    /// Magic number of an image file: unsigned bytes, 3 dimensions.
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic number of a label file: unsigned bytes, 1 dimension.
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// The extents of an IDX file and where its elements start.
    struct Layout {
        var dims: [Int]
        var dataOffset: Int
    }

    /// Checks the magic, reads the extents and checks the file holds exactly the elements they promise.
    /// - Parameters:
    ///   - magic: ``imagesMagic`` or ``labelsMagic``.
    ///   - itemBytes: bytes per outer item (`rows * columns` for images, 1 for labels), to name the partial item.
    static func layout(_ bytes: [UInt8], magic: UInt32, context: DataContext) throws -> Layout {
        let what = magic == imagesMagic ? "image" : "label"
        guard bytes.count >= 4 else {
            throw context.error("not an IDX \(what) file: \(bytes.count) bytes, too short for the 4-byte magic number", offset: 0)
        }
        let found = UInt32(bigEndianBytes: bytes, at: 0)
        guard found == magic else {
            var hint = ""
            if found == imagesMagic { hint = " (this is an IDX image file)" }
            if found == labelsMagic { hint = " (this is an IDX label file)" }
            throw context.error("not an IDX \(what) file: magic number \(hex(found)), expected \(hex(magic)) "
                                + "(unsigned bytes, \(magic & 0xFF) dimension\(magic & 0xFF == 1 ? "" : "s"))\(hint)", offset: 0)
        }
        let rank = Int(magic & 0xFF)
        let dataOffset = 4 + 4 * rank
        guard bytes.count >= dataOffset else {
            throw context.error("truncated IDX header: \(bytes.count) bytes, the header needs \(dataOffset)", offset: bytes.count)
        }
        let dims = (0..<rank).map { Int(UInt32(bigEndianBytes: bytes, at: 4 + 4 * $0)) }
        let shape = dims.map(String.init).joined(separator: "x")
        guard let expected = checkedByteCount(dims: dims, itemSize: 1), let itemBytes = checkedByteCount(dims: Array(dims.dropFirst()), itemSize: 1) else {
            throw context.error("corrupt IDX header: extents \(shape) multiply beyond any file size", offset: 4)
        }
        if magic == imagesMagic && (dims[1] == 0 || dims[2] == 0) {
            throw context.error("corrupt IDX header: images of \(dims[1])x\(dims[2]) pixels", offset: 8)
        }
        let held = bytes.count - dataOffset
        if held < expected {
            let complete = itemBytes > 0 ? held / itemBytes : 0
            throw context.error("truncated: the header promises \(shape) = \(expected) bytes after the \(dataOffset)-byte "
                                + "header, the file holds \(held); \(what) \(complete) is \(held == complete * itemBytes ? "missing" : "partial")",
                                record: complete, offset: dataOffset + complete * itemBytes)
        }
        if held > expected {
            throw context.error("\(held - expected) bytes after the \(shape) elements the header promises",
                                offset: dataOffset + expected)
        }
        return Layout(dims: dims, dataOffset: dataOffset)
    }

    /// The total size an IDX header promises (header and elements), from its
    /// first bytes; nil when they are no IDX header (``layout`` then says why).
    static func declaredSize(_ header: [UInt8]) -> Int? {
        guard header.count >= 4, header[0] == 0, header[1] == 0, header[2] == 8 else { return nil }
        let rank = Int(header[3])
        guard rank >= 1, rank <= 3, header.count >= 4 + 4 * rank else { return nil }
        let dims = (0..<rank).map { Int(UInt32(bigEndianBytes: header, at: 4 + 4 * $0)) }
        return checkedByteCount(dims: dims, itemSize: 1).flatMap { $0.addingReportingOverflow(4 + 4 * rank).overflow ? nil : $0 + 4 + 4 * rank }
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}

extension UInt32 {
    /// The big-endian 32-bit integer at `offset`; the caller has checked the bounds.
    init(bigEndianBytes bytes: [UInt8], at offset: Int) {
        self = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}

/// An MNIST-style data set: one IDX image file and one IDX label file
/// (MNIST, Fashion-MNIST, KMNIST share the format). Images are `[1, rows, columns]`.
public final class IDXDataset: ImageDataset {
    /// Fashion-MNIST's classes, by label (Xiao, Rasul, Vollgraf 2017).
    public static let fashionMNISTClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    /// MNIST's classes: the digits.
    public static let digitClassNames = (0...9).map(String.init)

    /// The format, e.g. `"IDX"`.
    public let format: String
    /// The directory or archive, and the split.
    public let location: String
    /// Class names; label `k` is `classNames[k]`.
    public let classNames: [String]
    /// The label of every example, in example order.
    public let labels: [Int]
    /// The size of every image (`[1, rows, columns]`).
    public let storedSize: ImageSize?
    /// Number of examples.
    public var count: Int { labels.count }
    /// The image file and the label file.
    public let imagePath: String, labelPath: String
    private let pixels: [UInt8]
    private let pixelOffset: Int

    /// Reads an image file and a label file.
    /// - Parameters:
    ///   - images: an `idx3-ubyte` file, gzipped or not.
    ///   - labels: the matching `idx1-ubyte` file, gzipped or not.
    ///   - classNames: the class names; every label must be below their count.
    /// - Throws: ``DataError`` naming the file, and the record and offset where they help.
    public convenience init(images: String, labels: String, classNames: [String] = IDXDataset.digitClassNames) throws {
        try self.init(images: images, labels: labels, classNames: classNames, location: images)
    }

    init(images: String, labels: String, classNames: [String], location: String) throws {
        let (imageBytes, imagesInflated) = try DataFile.readMaybeGzipped(path: images, header: 16, declaredSize: IDX.declaredSize)
        let (labelBytes, labelsInflated) = try DataFile.readMaybeGzipped(path: labels, header: 8, declaredSize: IDX.declaredSize)
        let imageContext = DataContext(file: images, inflated: imagesInflated)
        let labelContext = DataContext(file: labels, inflated: labelsInflated)
        let imageLayout = try IDX.layout(imageBytes, magic: IDX.imagesMagic, context: imageContext)
        let labelLayout = try IDX.layout(labelBytes, magic: IDX.labelsMagic, context: labelContext)
        guard imageLayout.dims[0] == labelLayout.dims[0] else {
            throw labelContext.error("holds \(labelLayout.dims[0]) labels, but \(images) holds \(imageLayout.dims[0]) images")
        }
        var values: [Int] = []
        values.reserveCapacity(labelLayout.dims[0])
        for index in 0..<labelLayout.dims[0] {
            let label = Int(labelBytes[labelLayout.dataOffset + index])
            guard label < classNames.count else {
                throw labelContext.error("label \(label) is out of range 0...\(classNames.count - 1)",
                                         record: index, offset: labelLayout.dataOffset + index)
            }
            values.append(label)
        }
        self.format = imagesInflated ? "IDX (gzipped)" : "IDX"
        self.location = location
        self.imagePath = images
        self.labelPath = labels
        self.classNames = classNames
        self.labels = values
        self.storedSize = ImageSize(channels: 1, height: imageLayout.dims[1], width: imageLayout.dims[2])
        self.pixels = imageBytes
        self.pixelOffset = imageLayout.dataOffset
    }

    /// The file names LeCun's distribution uses, e.g. `train-images-idx3-ubyte.gz`;
    /// a directory may hold them gzipped (preferred when both exist) or not.
    public static func fileNames(split: DataSplit) -> (images: String, labels: String) {
        let prefix = split == .train ? "train" : "t10k"
        return ("\(prefix)-images-idx3-ubyte", "\(prefix)-labels-idx1-ubyte")
    }

    /// Reads a split from a directory holding LeCun's file names (`.gz` or not).
    /// - Throws: ``DataError`` naming the missing file and what was expected.
    public convenience init(directory: String, split: DataSplit, classNames: [String] = IDXDataset.digitClassNames) throws {
        let names = IDXDataset.fileNames(split: split)
        func find(_ name: String) throws -> String {
            for candidate in [name + ".gz", name] where DataFile.isFile(DataFile.join(directory, candidate)) {
                return DataFile.join(directory, candidate)
            }
            throw DataError(file: DataFile.join(directory, name + ".gz"),
                            problem: "missing IDX file: expected \(name).gz or \(name) in \(directory) for the \(split) split")
        }
        try self.init(images: find(names.images), labels: find(names.labels), classNames: classNames,
                      location: "\(directory) (\(split))")
    }

    /// Example `index` as `[C, H, W]` floats holding 0...255.
    public func image(at index: Int) throws -> Tensor<Float> {
        let size = storedSize!
        let plane = size.height * size.width
        return pixels.withUnsafeBufferPointer { all in
            PixelLayout.planar(UnsafeBufferPointer(rebasing: all[(pixelOffset + index * plane)..<(pixelOffset + (index + 1) * plane)]),
                               size: size)
        }
    }

    /// Where example `index` lives, for messages.
    public func exampleName(at index: Int) -> String { "\(imagePath) image \(index)" }
}
