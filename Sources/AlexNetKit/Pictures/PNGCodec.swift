import CZlib

// This file is not called PNG.swift: Data/PNG.swift (the Image8 writer) has
// that name, and the Swift compiler refuses two files of one module with the
// same name. The RGBImage codec extends the same `PNG` namespace.

/// A PNG could not be decoded: the bytes are not a PNG, are corrupt or
/// truncated, or use a feature the decoder does not read.
public struct PNGError: Error, CustomStringConvertible, Equatable {
    /// What is wrong, e.g. `"chunk IDAT at offset 33: CRC mismatch"`.
    public var problem: String

    /// An error saying `problem`.
    public init(problem: String) { self.problem = problem }

    /// `PNG: problem`.
    public var description: String { "PNG: \(problem)" }
}

extension PNGError: AlexNetError {}

/// PNG files: the encoder of the library's pictures and `alexnet data grid`,
/// and a checked decoder (the tests read pictures back with it).
public enum PNG {
    /// The eight bytes every PNG file starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The most pixels ``decode(_:)`` accepts (2^26, 64 Mpx): checked before
    /// anything is inflated, so a header cannot make the decoder allocate gigabytes.
    public static let maximumPixels = 1 << 26

    // MARK: Encoding

    /// A valid PNG of `image`: 8-bit RGB (colour type 2), non-interlaced, chunks
    /// IHDR, IDAT, IEND with their CRCs; the rows go through zlib's `compress2`.
    ///
    /// Each row is filtered with the filter (None, Sub, Up, Average, Paeth)
    /// whose output has the smallest sum of absolute values (as signed bytes),
    /// the heuristic the PNG specification suggests: flat chart areas become
    /// runs of zeros and photographs in neighbour pictures compress better.
    public static func encode(_ image: RGBImage) -> [UInt8] {
        encode(width: image.width, height: image.height, channels: 3, pixels: image.pixels)
    }

    /// The PNG of a grey (1 channel, colour type 0) or RGB (3 channels, colour
    /// type 2) 8-bit image, filtered as the RGB encoder does: `alexnet data grid`'s pictures.
    public static func encode(_ image: Image8) -> [UInt8] {
        precondition(image.channels == 1 || image.channels == 3, "PNG.encode: 1 or 3 channels, got \(image.channels)")
        return encode(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels)
    }

    /// Rows of `channels` bytes per pixel, each row with its best filter, then the chunks.
    private static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> [UInt8] {
        let rowBytes = width * channels
        var filtered: [UInt8] = []
        filtered.reserveCapacity((rowBytes + 1) * height)
        var candidate = [UInt8](repeating: 0, count: rowBytes)
        var best = [UInt8](repeating: 0, count: rowBytes)
        // A row of zeros above the image: the first row's "prior" row.
        let padded = [UInt8](repeating: 0, count: rowBytes) + pixels
        padded.withUnsafeBufferPointer { pixels in
            for y in 0..<height {
                let prior = UnsafeBufferPointer(rebasing: pixels[(y * rowBytes)..<((y + 1) * rowBytes)])
                let row = UnsafeBufferPointer(rebasing: pixels[((y + 1) * rowBytes)..<((y + 2) * rowBytes)])
                var bestType: UInt8 = 0
                var bestCost = Int.max
                for type: UInt8 in 0...4 {
                    var cost = 0
                    for i in 0..<rowBytes {
                        let left = i >= channels ? row[i - channels] : 0, up = prior[i], upLeft = i >= channels ? prior[i - channels] : 0
                        let value = row[i] &- predictor(type, left: left, up: up, upLeft: upLeft)
                        candidate[i] = value
                        cost += value < 128 ? Int(value) : 256 - Int(value)
                    }
                    if cost < bestCost {
                        bestCost = cost
                        bestType = type
                        swap(&best, &candidate)
                    }
                }
                filtered.append(bestType)
                filtered += best
            }
        }
        var header: [UInt8] = []
        appendBigEndian(UInt32(width), to: &header)
        appendBigEndian(UInt32(height), to: &header)
        header += [8, channels == 1 ? 0 : 2, 0, 0, 0]  // depth 8, grey or RGB, deflate, adaptive filtering, not interlaced
        return signature + pngChunk("IHDR", header) + pngChunk("IDAT", zlibCompress(filtered)) + pngChunk("IEND", [])
    }

    /// Writes `image` as a PNG file, atomically (``OutputFiles/write(_:to:)``):
    /// readers see the old file or the whole new one.
    /// - Throws: the error of ``OutputFiles/write(_:to:)``, naming the file.
    public static func write(_ image: RGBImage, to path: String) throws {
        try OutputFiles.write(encode(image), to: path)
    }

    /// The predicted byte of filter `type` (1 Sub, 2 Up, 3 Average, 4 Paeth; 0 None predicts 0).
    static func predictor(_ type: UInt8, left: UInt8, up: UInt8, upLeft: UInt8) -> UInt8 {
        switch type {
        case 1: return left
        case 2: return up
        case 3: return UInt8((Int(left) + Int(up)) / 2)
        case 4:
            // Paeth: the neighbour closest to left + up - upLeft, ties to left, then up.
            let estimate = Int(left) + Int(up) - Int(upLeft)
            let toLeft = abs(estimate - Int(left)), toUp = abs(estimate - Int(up)), toUpLeft = abs(estimate - Int(upLeft))
            if toLeft <= toUp && toLeft <= toUpLeft { return left }
            return toUp <= toUpLeft ? up : upLeft
        default: return 0
        }
    }

    /// Length, type, data and the CRC-32 of type and data.
    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        appendBigEndian(UInt32(data.count), to: &bytes)
        let body = Array(type.utf8) + data
        bytes += body
        appendBigEndian(crc32(body[...]), to: &bytes)
        return bytes
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// zlib's CRC-32 of `bytes` (a chunk's type and data).
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { buffer in
            var crc = CZlib.crc32(0, nil, 0)
            var offset = 0
            while offset < buffer.count {  // uInt lengths: feed at most 1 GiB at a time
                let piece = min(buffer.count - offset, 1 << 30)
                crc = CZlib.crc32(crc, buffer.baseAddress! + offset, UInt32(piece))
                offset += piece
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }

    /// A zlib stream (RFC 1950) of `bytes` at level 6.
    static func zlibCompress(_ bytes: [UInt8]) -> [UInt8] {
        var packedSize = compressBound(uLong(bytes.count))
        var packed = [UInt8](repeating: 0, count: Int(packedSize))
        let status = compress2(&packed, &packedSize, bytes, uLong(bytes.count), 6)
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        packed.removeSubrange(Int(packedSize)...)
        return packed
    }
}

// MARK: Decoding

extension PNG {
    /// Decodes an 8-bit, non-interlaced PNG of colour type 0 (grey), 2 (RGB),
    /// 4 (grey and alpha) or 6 (RGBA) to RGB: grey is copied to all three
    /// channels and alpha is dropped (not composited). All five row filters
    /// and image data split over several consecutive IDAT chunks are read.
    ///
    /// Every chunk's CRC is checked, the header's size is checked against
    /// ``maximumPixels`` before anything is inflated, and the image data must
    /// inflate to exactly the bytes the header implies; chunks after IEND are
    /// ignored, ancillary chunks skipped, unknown critical chunks refused.
    /// - Throws: ``PNGError`` saying what is wrong and where, for any input that
    ///   is not such a PNG (never a crash, whatever the bytes).
    public static func decode(_ bytes: [UInt8]) throws -> RGBImage {
        guard bytes.count >= 8, bytes[0..<8].elementsEqual(signature) else {
            throw PNGError(problem: "not a PNG file: it does not start with the PNG signature 89 50 4e 47 0d 0a 1a 0a")
        }
        var header: PNGHeader?
        var data: [UInt8] = []
        var idat = IDATState.notYet
        var offset = 8
        var ended = false
        while !ended {
            let chunk = try readChunk(bytes, at: offset)
            if header == nil && chunk.type != "IHDR" {
                throw PNGError(problem: "the first chunk is \(chunk.type), not IHDR")
            }
            if idat == .reading && chunk.type != "IDAT" { idat = .done }
            switch chunk.type {
            case "IHDR":
                guard header == nil else { throw PNGError(problem: "a second IHDR chunk at offset \(offset)") }
                header = try PNGHeader(bytes[chunk.data])
            case "IDAT":
                guard idat != .done else {
                    throw PNGError(problem: "IDAT chunk at offset \(offset) after other chunks: IDAT chunks must be consecutive")
                }
                idat = .reading
                data += bytes[chunk.data]
            case "IEND":
                ended = true
            default:
                // Bit 5 of the first type byte clear (an upper-case letter) marks a
                // chunk a decoder must understand; PLTE is only a suggestion in
                // the colour types read here.
                if bytes[offset + 4] & 0x20 == 0 && chunk.type != "PLTE" {
                    throw PNGError(problem: "unknown critical chunk \(chunk.type) at offset \(offset)")
                }
            }
            offset = chunk.data.upperBound + 4
        }
        guard let header else { throw PNGError(problem: "no IHDR chunk") }  // unreachable: IHDR comes first
        guard !data.isEmpty else { throw PNGError(problem: "no image data: the file has no IDAT chunk, or only empty ones") }
        let filtered = try inflate(data, expected: header.filteredBytes)
        return try unfilter(filtered, header)
    }

    /// Where the IDAT chunks are: they must form one run.
    private enum IDATState { case notYet, reading, done }

    /// The chunk at `offset`: its type and the range of its data, after
    /// checking that it fits in the file and that its CRC matches.
    private static func readChunk(_ bytes: [UInt8], at offset: Int) throws -> (type: String, data: Range<Int>) {
        let left = bytes.count - offset
        guard left >= 12 else {
            throw PNGError(problem: left == 0 ? "truncated: the file ends at offset \(offset) without an IEND chunk"
                           : "truncated: \(left) bytes at offset \(offset), too few for a chunk (12 at least)")
        }
        let length = Int(readBigEndian(bytes, at: offset))
        let typeBytes = bytes[(offset + 4)..<(offset + 8)]
        guard typeBytes.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw PNGError(problem: "the chunk at offset \(offset) has a type that is not four letters: corrupt file")
        }
        let type = String(decoding: typeBytes, as: UTF8.self)
        guard length <= Int(Int32.max) else {
            throw PNGError(problem: "chunk \(type) at offset \(offset) declares \(length) bytes, more than PNG allows (2^31 - 1)")
        }
        guard length <= left - 12 else {
            throw PNGError(problem: "truncated: chunk \(type) at offset \(offset) declares \(length) bytes of data, the file holds \(left - 12) more")
        }
        let data = (offset + 8)..<(offset + 8 + length)
        let stored = readBigEndian(bytes, at: data.upperBound)
        let computed = crc32(bytes[(offset + 4)..<data.upperBound])
        guard stored == computed else {
            throw PNGError(problem: "chunk \(type) at offset \(offset): CRC mismatch (stored \(hex(stored)), computed \(hex(computed))): corrupt file")
        }
        return (type, data)
    }

    private static func readBigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Inflates the concatenated IDAT data, which must give exactly `expected`
    /// bytes. The output grows as the stream produces, so a header that claims
    /// a large image over a few bytes of data costs no large allocation.
    private static func inflate(_ data: [UInt8], expected: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw PNGError(problem: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        // One byte of room beyond `expected`, so that a stream that is too long shows itself.
        let capacity = expected + 1
        var output = [UInt8](repeating: 0, count: min(capacity, max(1 << 16, data.count * 4)))
        var produced = 0, consumed = 0
        loop: while true {
            if produced == output.count {
                guard output.count < capacity else {
                    throw PNGError(problem: "the image data inflates to more than the \(expected) bytes the header implies")
                }
                output += repeatElement(0, count: min(capacity, 2 * output.count) - output.count)
            }
            let status: Int32 = data.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer { out in
                    let inputPiece = min(input.count - consumed, Int(UInt32.max))
                    let outputPiece = min(out.count - produced, Int(UInt32.max))
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                    stream.avail_in = UInt32(inputPiece)
                    stream.next_out = out.baseAddress! + produced
                    stream.avail_out = UInt32(outputPiece)
                    let status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    consumed += inputPiece - Int(stream.avail_in)
                    produced += outputPiece - Int(stream.avail_out)
                    return status
                }
            }
            switch status {
            case Z_STREAM_END:
                break loop
            case Z_OK:
                continue loop
            case Z_BUF_ERROR where produced == output.count:
                continue loop  // out of room: grow at the top of the loop
            case Z_BUF_ERROR:
                throw PNGError(problem: "truncated image data: the zlib stream stops after \(produced) of \(expected) bytes")
            case Z_NEED_DICT:
                throw PNGError(problem: "the image data's zlib stream needs a preset dictionary, which PNG does not allow")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw PNGError(problem: "corrupt image data: zlib says \(message)")
            }
        }
        guard produced <= expected else {
            throw PNGError(problem: "the image data inflates to more than the \(expected) bytes the header implies")
        }
        guard produced == expected else {
            throw PNGError(problem: "the image data inflates to \(produced) bytes, the header implies \(expected)")
        }
        output.removeLast(output.count - produced)
        return output
    }

    /// Undoes the row filters of `filtered` (each row: a filter-type byte, then
    /// the filtered samples) and converts the samples to RGB.
    private static func unfilter(_ filtered: [UInt8], _ header: PNGHeader) throws -> RGBImage {
        let channels = header.channels, stride = header.width * channels
        var pixels = [UInt8](repeating: 0, count: header.width * header.height * 3)
        var prior = [UInt8](repeating: 0, count: stride), current = prior
        for y in 0..<header.height {
            let start = y * (stride + 1)
            let type = filtered[start]
            guard type <= 4 else {
                throw PNGError(problem: "row \(y) has filter type \(type); only 0 to 4 exist: corrupt file")
            }
            for i in 0..<stride {
                let left = i >= channels ? current[i - channels] : 0
                let upLeft = i >= channels ? prior[i - channels] : 0
                current[i] = filtered[start + 1 + i] &+ predictor(type, left: left, up: prior[i], upLeft: upLeft)
            }
            var target = y * header.width * 3
            for x in 0..<header.width {
                let sample = x * channels
                if channels >= 3 {  // RGB or RGBA
                    pixels[target] = current[sample]
                    pixels[target + 1] = current[sample + 1]
                    pixels[target + 2] = current[sample + 2]
                } else {  // grey or grey and alpha
                    pixels[target] = current[sample]
                    pixels[target + 1] = current[sample]
                    pixels[target + 2] = current[sample]
                }
                target += 3
            }
            swap(&prior, &current)
        }
        return RGBImage(width: header.width, height: header.height, pixels: pixels)
    }
}

/// The IHDR fields the decoder needs, checked.
private struct PNGHeader {
    var width: Int
    var height: Int
    /// Samples per pixel: 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
    var channels: Int

    /// Bytes of the inflated image data: per row a filter byte and the samples.
    var filteredBytes: Int { height * (1 + width * channels) }

    init(_ data: ArraySlice<UInt8>) throws {
        guard data.count == 13 else { throw PNGError(problem: "the IHDR chunk holds \(data.count) bytes, not 13") }
        let field = { (at: Int) -> Int in
            data[(data.startIndex + at)..<(data.startIndex + at + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        let byte = { (at: Int) -> UInt8 in data[data.startIndex + at] }
        width = field(0)
        height = field(4)
        guard width >= 1, height >= 1, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw PNGError(problem: "the header's size \(width)x\(height) is not valid (each side 1 to 2^31 - 1)")
        }
        guard width * height <= PNG.maximumPixels else {
            throw PNGError(problem: "the header's size \(width)x\(height) is \(width * height) pixels, more than the \(PNG.maximumPixels) (2^26) this decoder accepts")
        }
        guard byte(8) == 8 else { throw PNGError(problem: "bit depth \(byte(8)) is not read; only 8-bit images are") }
        switch byte(9) {
        case 0: channels = 1
        case 2: channels = 3
        case 4: channels = 2
        case 6: channels = 4
        case 3: throw PNGError(problem: "palette images (colour type 3) are not read; save as RGB")
        default: throw PNGError(problem: "colour type \(byte(9)) does not exist")
        }
        guard byte(10) == 0, byte(11) == 0 else {
            throw PNGError(problem: "compression method \(byte(10)) or filter method \(byte(11)) does not exist (both must be 0)")
        }
        guard byte(12) == 0 else {
            throw PNGError(problem: byte(12) == 1 ? "interlaced (Adam7) images are not read; save without interlacing"
                           : "interlace method \(byte(12)) does not exist")
        }
    }
}
