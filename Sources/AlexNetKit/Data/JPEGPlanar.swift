import CJPEG

extension JPEG {
    /// Decodes JPEG bytes straight to planar floats `[3, H, W]` holding 0...255
    /// (greyscale and CMYK files converted to RGB), the layout the data
    /// pipeline works in. The same checks as ``decode(_:source:)``: a file
    /// libjpeg reads only with warnings (truncated, corrupt) is refused.
    /// A header claiming more than `maximumPixels` is refused before decoding.
    /// - Throws: ``ImageError`` naming `source` and the problem.
    public static func decodePlanar(_ bytes: [UInt8], source: String, maximumPixels: Int = InputLimits.jpegPixels) throws -> Tensor<Float> {
        var image = cjpeg_image()
        let status = bytes.withUnsafeBufferPointer { cjpeg_decode($0.baseAddress, $0.count, 1, maximumPixels, &image) }
        let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        guard status == 0 else { throw ImageError(source: source, problem: "not a readable JPEG: \(message)") }
        defer { cjpeg_free(image.pixels) }
        guard image.warnings == 0 else { throw ImageError(source: source, problem: "corrupt or truncated JPEG: \(message)") }
        let channels = Int(image.channels), height = Int(image.height), width = Int(image.width)
        let plane = height * width
        // Interleaved bytes to planes: one pass over the decoder's buffer, no intermediate copy.
        let values = [Float](unsafeUninitializedCapacity: channels * plane) { out, initialized in
            let pixels = image.pixels!
            for c in 0..<channels {
                let destination = out.baseAddress! + c * plane
                var source = pixels + c
                for p in 0..<plane {
                    destination[p] = Float(source.pointee)
                    source += channels
                }
            }
            initialized = channels * plane
        }
        return try Tensor(shape: [channels, height, width], values: values)
    }
}
