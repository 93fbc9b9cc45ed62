import CZlib

/// gzip files (RFC 1952) through zlib: the MNIST/Fashion-MNIST `.gz` files and
/// the `cifar-10-binary.tar.gz` archive.
///
/// zlib's `inflateInit2` and `deflateInit2` are C macros that pass the header's
/// version and `sizeof(z_stream)`; Swift cannot call macros, so these call the
/// functions behind them (`inflateInit2_`, `deflateInit2_`) with the same
/// arguments. windowBits 15 + 16 selects the gzip wrapper.
public enum Gzip {
    /// The first two bytes of every gzip member.
    public static let magic: [UInt8] = [0x1F, 0x8B]

    /// The most bytes ``decompress(_:source:limit:)`` produces unless told
    /// otherwise: ``InputLimits/decompressedBytes`` (4 GiB, or a quarter of the
    /// machine's memory if less), far above any IDX or CIFAR-10 file.
    public static var defaultLimit: Int { InputLimits.decompressedBytes }

    /// True when `bytes` start with the gzip magic.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

    /// Inflates gzip bytes. Concatenated members (what `cat a.gz b.gz` makes) are
    /// inflated one after another; zero bytes after the last member are ignored
    /// (tape padding), anything else after it is refused.
    /// - Parameters:
    ///   - source: names the file in errors.
    ///   - limit: refuse to produce more than this many bytes (a gzip bomb guard).
    /// - Throws: ``DataError`` naming `source`, the problem and the offset in the compressed bytes.
    public static func decompress(_ bytes: [UInt8], source: String, limit: Int = defaultLimit) throws -> [UInt8] {
        try decompress(bytes, source: source, limit: limit, prefix: nil)
    }

    /// The first `count` inflated bytes (fewer if the data is shorter), without
    /// inflating the rest: enough to read a header before trusting its sizes.
    static func decompressPrefix(_ bytes: [UInt8], count: Int, source: String) throws -> [UInt8] {
        try decompress(bytes, source: source, limit: max(count, 1 << 20), prefix: count)
    }

    private static func decompress(_ bytes: [UInt8], source: String, limit: Int, prefix: Int?) throws -> [UInt8] {
        guard isGzip(bytes) else {
            throw DataError(file: source, offset: 0, problem: "not a gzip file (it does not start with bytes 1f 8b)")
        }
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(file: source, problem: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        // The trailer's ISIZE (size mod 2^32 of the last member) is only a hint for the first allocation.
        var output: [UInt8] = []
        let hint = bytes.count >= 4 ? Int(bytes.readLittleEndian(UInt32.self, at: bytes.count - 4)) : 0
        output.reserveCapacity(min(limit, bytes.count * 4, hint) + 1)
        let chunkSize = 1 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var consumed = 0
        var problem: String?
        bytes.withUnsafeBufferPointer { input in
            chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                loop: while true {
                    let inputChunk = min(input.count - consumed, Int(UInt32.max))
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + consumed)
                    stream.avail_in = UInt32(inputChunk)
                    stream.next_out = chunkBuffer.baseAddress!
                    stream.avail_out = UInt32(chunkSize)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    consumed += inputChunk - Int(stream.avail_in)
                    let produced = chunkSize - Int(stream.avail_out)
                    if output.count + produced > limit {
                        problem = "inflates to more than \(limit) bytes (the limit on decompressed data): corrupt or hostile file"
                        break loop
                    }
                    if output.count + produced > output.capacity {
                        // Grow by doubling, but never reserve beyond the limit.
                        output.reserveCapacity(min(limit, max(2 * output.capacity, output.count + produced)))
                    }
                    output.append(contentsOf: chunkBuffer[0..<produced])
                    if let prefix, output.count >= prefix { break loop }
                    switch status {
                    case Z_STREAM_END:
                        let rest = input[consumed...]
                        if rest.isEmpty || rest.allSatisfy({ $0 == 0 }) { break loop }
                        guard rest.count >= 2, rest[consumed] == 0x1F, rest[consumed + 1] == 0x8B else {
                            problem = "\(rest.count) bytes of data that is not gzip after the end of the compressed stream"
                            break loop
                        }
                        inflateReset(&stream)
                    case Z_OK:
                        continue loop
                    case Z_BUF_ERROR where consumed == input.count:
                        problem = "truncated gzip file: the compressed stream stops after \(output.count) inflated bytes"
                        break loop
                    case Z_DATA_ERROR:
                        problem = "corrupt gzip data: " + (stream.msg.map { String(cString: $0) } ?? "invalid stream")
                        break loop
                    default:
                        problem = "zlib inflate failed with status \(status)"
                        break loop
                    }
                }
            }
        }
        if let problem { throw DataError(file: source, offset: consumed, problem: problem) }
        if let prefix, output.count > prefix { output.removeLast(output.count - prefix) }
        return output
    }

    /// Compresses `bytes` as one gzip member at zlib's default level, with no
    /// file name and a zero timestamp (so the same input always gives the same bytes).
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        let started = deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                    ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(started == Z_OK, "zlib could not start deflating (status \(started))")
        defer { deflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        bytes.withUnsafeBufferPointer { input in
            chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                var offset = 0
                while true {
                    let inputChunk = min(input.count - offset, Int(UInt32.max))
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0 + offset })
                    stream.avail_in = UInt32(inputChunk)
                    stream.next_out = chunkBuffer.baseAddress!
                    stream.avail_out = UInt32(chunkBuffer.count)
                    let last = offset + inputChunk == input.count
                    let status = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH)
                    offset += inputChunk - Int(stream.avail_in)
                    output.append(contentsOf: chunkBuffer[0..<(chunkBuffer.count - Int(stream.avail_out))])
                    if status == Z_STREAM_END { return }
                    precondition(status == Z_OK || status == Z_BUF_ERROR, "zlib deflate failed with status \(status)")
                }
            }
        }
        return output
    }
}
