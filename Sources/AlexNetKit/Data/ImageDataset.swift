/// Which part of a data set: the training images or the held-out ones
/// (CIFAR-10 `test_batch.bin`, MNIST `t10k-*`, image folders' `val/`).
public enum DataSplit: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The training examples.
    case train
    /// The held-out examples.
    case test

    /// `train` or `test`.
    public var description: String { rawValue }
}

/// The size of one image: channels, height, width (the `[C, H, W]` of a CHW tensor).
public struct ImageSize: Hashable, Sendable, CustomStringConvertible {
    /// C: 1 (grey) or 3 (RGB) for stored images.
    public var channels: Int
    /// H, in pixels.
    public var height: Int
    /// W, in pixels.
    public var width: Int

    /// A size of `channels x height x width`.
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// The size of a `[C, H, W]` tensor.
    public init(of image: Tensor<Float>) {
        precondition(image.shape.rank == 3, "an image is [C, H, W], got \(image.shape)")
        self.init(channels: image.shape[0], height: image.shape[1], width: image.shape[2])
    }

    /// `[C, H, W]`.
    public var shape: Shape { [channels, height, width] }

    /// `3x32x32` (channels x height x width).
    public var description: String { "\(channels)x\(height)x\(width)" }
}

/// A labelled image data set with random access: CIFAR-10, MNIST-style IDX
/// files, or a folder of JPEGs.
///
/// Images come out as `Float` tensors `[C, H, W]` holding the stored 8-bit
/// values, 0...255 (no scaling, no mean subtracted): ``ImagePipeline`` does
/// the rest. Labels are class indices into ``classNames``. Implementations are
/// immutable after loading, so any thread may read any example at any time.
public protocol ImageDataset: AnyObject, Sendable {
    /// The format, e.g. `"CIFAR-10 binary"`, `"IDX (gzipped)"`, `"JPEG folders"`.
    var format: String { get }
    /// Where the data came from (a directory or archive path) and which split.
    var location: String { get }
    /// Number of examples.
    var count: Int { get }
    /// Class names; label `k` is `classNames[k]`.
    var classNames: [String] { get }
    /// The label of every example, in example order.
    var labels: [Int] { get }
    /// The size every image has, or nil when sizes vary (JPEG folders).
    var storedSize: ImageSize? { get }
    /// Example `index` as `[C, H, W]` floats holding 0...255.
    /// - Throws: ``DataError`` naming the file when the image cannot be read.
    func image(at index: Int) throws -> Tensor<Float>
    /// Where example `index` lives, for messages: a file path, or `file record n`.
    func exampleName(at index: Int) -> String
    /// True when loaders should leave out examples that fail to load, and report
    /// them as warnings, rather than stop with the error (false unless a data set says otherwise).
    var skipsBadFiles: Bool { get }
    /// Things worth telling a user that are not errors (a missing class-name file, passed-over files).
    var notes: [String] { get }
}

extension ImageDataset {
    /// False: loaders stop at the first example that fails to load.
    public var skipsBadFiles: Bool { false }
    /// None.
    public var notes: [String] { [] }

    /// How many examples carry each label, indexed by label.
    public var countsPerClass: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for label in labels where label >= 0 && label < counts.count { counts[label] += 1 }
        return counts
    }
}

/// Conversions between stored 8-bit layouts and `[C, H, W]` float tensors.
enum PixelLayout {
    /// Planar bytes (CHW, as CIFAR-10 and IDX store them) to floats.
    static func planar(_ bytes: UnsafeBufferPointer<UInt8>, size: ImageSize) -> Tensor<Float> {
        let count = size.channels * size.height * size.width
        let values = [Float](unsafeUninitializedCapacity: count) { out, initialized in
            for i in 0..<count { out[i] = Float(bytes[i]) }
            initialized = count
        }
        return try! Tensor(shape: size.shape, values: values)  // the count matches the shape by construction
    }
}

extension Tensor where Element == Float {
    /// Copies every element of `source` into this tensor's storage from flat index `start` on.
    mutating func copyElements(of source: Tensor<Float>, to start: Int) {
        precondition(start >= 0 && start + source.count <= count, "copy past the end of the tensor")
        withUnsafeMutableBufferPointer { out in
            source.withUnsafeBufferPointer { input in
                if let from = input.baseAddress, !input.isEmpty { (out.baseAddress! + start).update(from: from, count: input.count) }
            }
        }
    }
}
