/// Which part of a data set: the training images or the held-out ones
/// (CIFAR-10 `test_batch.bin`, MNIST `t10k-*`, image folders' `val/`).
public enum DataSplit: String, Sendable, CaseIterable, CustomStringConvertible {
    case train
    case test

    public var description: String { rawValue }
}

/// The size of one image: channels, height, width (the `[C, H, W]` of a CHW tensor).
public struct ImageSize: Hashable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

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
}

extension ImageDataset {
    public var skipsBadFiles: Bool { false }

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
        var image = Tensor<Float>(shape: size.shape)
        image.withUnsafeMutableBufferPointer { out in
            for i in 0..<out.count { out[i] = Float(bytes[i]) }
        }
        return image
    }

    /// Interleaved bytes (HWC, as decoders return them) to planar floats.
    static func interleaved(_ image8: Image8) -> Tensor<Float> {
        let size = ImageSize(channels: image8.channels, height: image8.height, width: image8.width)
        var image = Tensor<Float>(shape: size.shape)
        let plane = size.height * size.width
        image.withUnsafeMutableBufferPointer { out in
            image8.pixels.withUnsafeBufferPointer { bytes in
                for c in 0..<size.channels {
                    var source = c
                    for p in 0..<plane {
                        out[c * plane + p] = Float(bytes[source])
                        source += size.channels
                    }
                }
            }
        }
        return image
    }

    /// `[C, H, W]` floats to interleaved bytes, rounded to nearest and clamped to 0...255.
    static func toImage8(_ image: Tensor<Float>) -> Image8 {
        let size = ImageSize(of: image)
        let plane = size.height * size.width
        var pixels = [UInt8](repeating: 0, count: plane * size.channels)
        image.withUnsafeBufferPointer { values in
            for c in 0..<size.channels {
                for p in 0..<plane {
                    let v = values[c * plane + p]
                    pixels[p * size.channels + c] = v.isNaN ? 0 : UInt8(min(255, max(0, v.rounded())))
                }
            }
        }
        return Image8(width: size.width, height: size.height, channels: size.channels, pixels: pixels)
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
