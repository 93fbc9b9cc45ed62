import CJPEG

/// An 8-bit image as stored in a file: interleaved channels, row-major (HWC).
public struct Image8: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// 1 (grey) or 3 (RGB); 4 (CMYK) only as input to ``JPEG/encode(_:quality:progressive:)``.
    public var channels: Int
    /// `height * width * channels` bytes, row-major, channels interleaved.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel count does not match \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// An image file could not be read or written.
public struct ImageError: Error, CustomStringConvertible, Equatable {
    /// The file (or other source) involved.
    public var source: String
    /// What went wrong, in libjpeg's words where it spoke.
    public var problem: String

    public var description: String { "\(source): \(problem)" }
}

/// JPEG decoding and encoding through libjpeg (libjpeg-turbo on Debian).
public enum JPEG {
    /// Decodes JPEG bytes to RGB (greyscale and CMYK files are converted).
    ///
    /// A file that libjpeg can only read with warnings (truncated, corrupt
    /// entropy data) is refused: a reference must not train on grey filler.
    /// - Parameters:
    ///   - source: the file name, used in error messages.
    ///   - maximumPixels: a header claiming more pixels than this is refused
    ///     before anything is allocated (``InputLimits/jpegPixels``).
    /// - Throws: ``ImageError`` naming `source` and the problem.
    public static func decode(_ bytes: [UInt8], source: String, maximumPixels: Int = InputLimits.jpegPixels) throws -> Image8 {
        var image = cjpeg_image()
        let status = bytes.withUnsafeBufferPointer { cjpeg_decode($0.baseAddress, $0.count, 1, maximumPixels, &image) }
        let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard status == 0 else { throw ImageError(source: source, problem: "not a readable JPEG: \(message)") }
        defer { cjpeg_free(image.pixels) }
        guard image.warnings == 0 else {
            throw ImageError(source: source, problem: "corrupt or truncated JPEG: \(message)")
        }
        let count = Int(image.width) * Int(image.height) * Int(image.channels)
        let pixels = [UInt8](UnsafeBufferPointer(start: image.pixels, count: count))
        return Image8(width: Int(image.width), height: Int(image.height), channels: Int(image.channels), pixels: pixels)
    }

    /// Encodes an image (1 grey, 3 RGB, or 4 CMYK channels, the last for testing CMYK decoding) as JPEG.
    /// - Parameters:
    ///   - quality: 1...100.
    ///   - progressive: write a progressive file instead of a baseline one.
    public static func encode(_ image: Image8, quality: Int = 90, progressive: Bool = false) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        var message = [CChar](repeating: 0, count: Int(CJPEG_MESSAGE_LENGTH))
        let status = image.pixels.withUnsafeBufferPointer {
            cjpeg_encode($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                         Int32(quality), progressive ? 1 : 0, &out, &size, &message)
        }
        guard status == 0, let out else {
            throw ImageError(source: "JPEG encoder", problem: String(decoding: message.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        defer { cjpeg_free(out) }
        return [UInt8](UnsafeBufferPointer(start: out, count: Int(size)))
    }
}
