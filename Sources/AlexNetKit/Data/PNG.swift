import CZlib

/// Lossless PNG writing for 8-bit images (grids and pictures a person looks at
/// without JPEG's ringing). Rows are stored unfiltered (filter 0) and the
/// image data is one zlib stream from `compress2` at level 6.
public enum PNG {
    /// The PNG bytes of a grey (1 channel) or RGB (3 channels) image.
    public static func encode(_ image: Image8) -> [UInt8] {
        precondition(image.channels == 1 || image.channels == 3, "PNG.encode: 1 or 3 channels, got \(image.channels)")
        var raw: [UInt8] = []
        let rowBytes = image.width * image.channels
        raw.reserveCapacity((rowBytes + 1) * image.height)
        for y in 0..<image.height {
            raw.append(0)
            raw += image.pixels[(y * rowBytes)..<((y + 1) * rowBytes)]
        }
        var packedSize = compressBound(uLong(raw.count))
        var packed = [UInt8](repeating: 0, count: Int(packedSize))
        let status = compress2(&packed, &packedSize, raw, uLong(raw.count), 6)
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        packed.removeSubrange(Int(packedSize)...)

        var header: [UInt8] = []
        appendBigEndian(UInt32(image.width), to: &header)
        appendBigEndian(UInt32(image.height), to: &header)
        header += [8, image.channels == 1 ? 0 : 2, 0, 0, 0]  // depth 8, grey or RGB, deflate, filter 0, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", header) + chunk("IDAT", packed) + chunk("IEND", [])
    }

    /// Length, type, data and the CRC-32 of type and data.
    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        appendBigEndian(UInt32(data.count), to: &bytes)
        let body = Array(type.utf8) + data
        bytes += body
        appendBigEndian(body.withUnsafeBytes { NPZ.crc32(of: $0) }, to: &bytes)
        return bytes
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }
}
