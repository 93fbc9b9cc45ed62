import CZlib

/// NumPy's `.npz` format: a ZIP archive of `.npy` members, one per array
/// (`numpy.savez`, `numpy.savez_compressed`).
///
/// Reading finds the end-of-central-directory record (ZIP64 records too),
/// walks the central directory, checks each member's local header against it,
/// inflates deflated members with zlib (stored ones are copied), checks CRC-32
/// and sizes, and decodes each member with ``NPY``. Tensors keep the archive's
/// order and are named after their members without `.npy`. `numpy.savez`
/// writes every local header with a ZIP64 extra field (`force_zip64=True`):
/// those are read. Refused, with the member named: anything that is not a
/// ZIP, a truncated archive, multi-disk or encrypted archives, compression
/// other than stored (0) and deflated (8), CRC mismatches, sizes that disagree
/// (local header against central directory, or against the data), a member
/// whose uncompressed size is beyond what deflate can produce from its
/// compressed size (checked before allocating), duplicate names, members that
/// are not `.npy` files, and any error ``NPY`` finds inside a member.
///
/// Writing puts each tensor in `name.npy`, stored or deflated, with a fixed
/// timestamp (1980-01-01 00:00), so the same tensors always give the same
/// bytes. ZIP64 records are written when sizes or offsets need them.
public enum NPZ {
    /// Reads every array in the `.npz` file at `path`, in archive order.
    /// - Throws: ``TensorFileError`` naming the file, the member and the problem.
    public static func read(path: String) throws -> [StoredTensor] {
        try read(bytes: TensorFileIO.read(path: path), source: path)
    }

    /// Reads every array in `.npz` bytes, in archive order; `source` names them in errors.
    /// - Throws: ``TensorFileError`` naming `source`, the member and the problem.
    public static func read(bytes: [UInt8], source: String) throws -> [StoredTensor] {
        let context = ErrorContext(file: source)
        let directory = try CentralDirectory(bytes, context: context)
        try checkMembersAreDisjoint(directory.entries, context: context)
        var seen = Set<String>()
        var tensors: [StoredTensor] = []
        for entry in directory.entries {
            let memberContext = ErrorContext(file: source, member: entry.name)
            guard seen.insert(entry.name).inserted else {
                throw memberContext.error("duplicate member name: the archive holds two members with this name",
                                          offset: entry.directoryOffset)
            }
            guard entry.name.hasSuffix(".npy") else {
                throw memberContext.error("not a .npy member (an .npz holds only .npy arrays)", offset: entry.directoryOffset)
            }
            let payload = try memberBytes(entry, in: bytes, dataEnd: directory.offset, context: memberContext)
            tensors.append(try NPY.decode(payload, name: String(entry.name.dropLast(4)), context: memberContext))
        }
        return tensors
    }

    /// The `.npz` bytes of `tensors`, each in member `name.npy`, in the given order.
    /// - Parameter compressed: deflate the members (`numpy.savez_compressed`) rather than store them (`numpy.savez`).
    /// - Throws: ``TensorFileError`` for an empty or repeated tensor name.
    public static func encode(_ tensors: [StoredTensor], compressed: Bool = false) throws -> [UInt8] {
        try encode(tensors, compressed: compressed, forceZip64: false, destination: "(npz in memory)")
    }

    /// Writes `tensors` to `path` atomically (a temporary file in the same
    /// directory, renamed into place): a failed write leaves any old file intact.
    /// - Parameter compressed: deflate the members rather than store them.
    /// - Throws: ``TensorFileError`` naming the path.
    public static func write(_ tensors: [StoredTensor], to path: String, compressed: Bool = false) throws {
        try TensorFileIO.writeAtomically(encode(tensors, compressed: compressed, forceZip64: false, destination: path), to: path)
    }

    // MARK: - Reading

    /// ZIP record signatures.
    private static let localHeaderSignature: UInt32 = 0x0403_4B50
    private static let centralEntrySignature: UInt32 = 0x0201_4B50
    private static let endSignature: UInt32 = 0x0605_4B50
    private static let zip64EndSignature: UInt32 = 0x0606_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50

    /// Deflate's best ratio is 1032:1 (two 1-bit codes per 258-byte match);
    /// a member claiming more is corrupt or hostile, and is refused before allocation.
    private static let maximumDeflateRatio = 1032

    /// One central-directory entry, sizes resolved through its ZIP64 extra field.
    struct Entry {
        var name: String
        var flags: UInt16
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
        /// Where the entry itself starts, for error offsets.
        var directoryOffset: Int
    }

    /// The end records and central directory of an archive.
    struct CentralDirectory {
        /// Where the central directory starts: member data must end before it.
        var offset: Int
        var entries: [Entry] = []

        init(_ bytes: [UInt8], context: ErrorContext) throws {
            let end = try CentralDirectory.findEnd(bytes, context: context)
            func u16(_ at: Int) -> Int { Int(bytes.readLittleEndian(UInt16.self, at: at)) }
            func u32(_ at: Int) -> Int { Int(bytes.readLittleEndian(UInt32.self, at: at)) }
            var disk = u16(end + 4), directoryDisk = u16(end + 6)
            var entriesHere = u16(end + 8), entryCount = u16(end + 10)
            var size = u32(end + 12)
            offset = u32(end + 16)
            // The central directory must end where the end records begin.
            var directoryEnd = end

            // ZIP64: a locator just before the end record points at the ZIP64 end record.
            let locator = end - 20
            if locator >= 0, bytes.readLittleEndian(UInt32.self, at: locator) == zip64LocatorSignature {
                let recordOffset64 = bytes.readLittleEndian(UInt64.self, at: locator + 8)
                guard recordOffset64 <= UInt64(locator), Int(recordOffset64) + 56 <= locator else {
                    throw context.error("truncated or corrupt archive: the ZIP64 end record offset \(recordOffset64) "
                                        + "is outside the archive", offset: locator)
                }
                let record = Int(recordOffset64)
                guard bytes.readLittleEndian(UInt32.self, at: record) == zip64EndSignature else {
                    throw context.error("corrupt archive: no ZIP64 end record where its locator points", offset: record)
                }
                func u64(_ at: Int) throws -> Int {
                    let value = bytes.readLittleEndian(UInt64.self, at: at)
                    guard let result = Int(exactly: value), result <= bytes.count else {
                        throw context.error("corrupt archive: ZIP64 end record field \(value) is larger than the file "
                                            + "(\(bytes.count) bytes)", offset: at)
                    }
                    return result
                }
                disk = Int(bytes.readLittleEndian(UInt32.self, at: record + 16))
                directoryDisk = Int(bytes.readLittleEndian(UInt32.self, at: record + 20))
                entriesHere = try u64(record + 24)
                entryCount = try u64(record + 32)
                size = try u64(record + 40)
                offset = try u64(record + 48)
                directoryEnd = record
            }
            guard disk == 0, directoryDisk == 0, entriesHere == entryCount else {
                throw context.error("multi-disk (split) archives are not supported", offset: end)
            }
            guard offset <= directoryEnd, size == directoryEnd - offset else {
                throw context.error("truncated or corrupt archive: the central directory (\(size) bytes at offset \(offset)) "
                                    + "does not end where the end record starts (offset \(directoryEnd))", offset: end)
            }
            // Every entry takes at least 46 bytes: a count beyond that is refused before looping over it.
            guard entryCount <= size / 46 else {
                throw context.error("corrupt archive: \(entryCount) entries cannot fit in a \(size)-byte central directory", offset: end)
            }

            var position = offset
            for index in 0..<entryCount {
                guard position + 46 <= directoryEnd,
                      bytes.readLittleEndian(UInt32.self, at: position) == centralEntrySignature else {
                    throw context.error("corrupt central directory: entry \(index) is missing or damaged", offset: position)
                }
                let nameLength = u16(position + 28), extraLength = u16(position + 30), commentLength = u16(position + 32)
                let next = position + 46 + nameLength + extraLength + commentLength
                guard next <= directoryEnd else {
                    throw context.error("corrupt central directory: entry \(index) runs past the directory", offset: position)
                }
                let nameBytes = Array(bytes[(position + 46)..<(position + 46 + nameLength)])
                guard let name = String(validating: nameBytes, as: UTF8.self) else {
                    throw context.error("central directory entry \(index): member name is not valid UTF-8", offset: position + 46)
                }
                var entry = Entry(name: name, flags: UInt16(u16(position + 8)), method: UInt16(u16(position + 10)),
                                  crc: bytes.readLittleEndian(UInt32.self, at: position + 16),
                                  compressedSize: u32(position + 20), uncompressedSize: u32(position + 24),
                                  localHeaderOffset: u32(position + 42), directoryOffset: position)
                // ZIP64 extra: 8-byte values for exactly the fields saturated at 0xFFFFFFFF, in this order.
                let memberContext = ErrorContext(file: context.file, member: name)
                var wide = try zip64Values(bytes, extra: (position + 46 + nameLength)..<(position + 46 + nameLength + extraLength),
                                           saturated: [entry.uncompressedSize == 0xFFFF_FFFF, entry.compressedSize == 0xFFFF_FFFF,
                                                       entry.localHeaderOffset == 0xFFFF_FFFF],
                                           context: memberContext)
                if entry.uncompressedSize == 0xFFFF_FFFF { entry.uncompressedSize = wide.removeFirst() }
                if entry.compressedSize == 0xFFFF_FFFF { entry.compressedSize = wide.removeFirst() }
                if entry.localHeaderOffset == 0xFFFF_FFFF { entry.localHeaderOffset = wide.removeFirst() }
                entries.append(entry)
                position = next
            }
            guard position == directoryEnd else {
                throw context.error("corrupt central directory: \(directoryEnd - position) bytes after its \(entryCount) entries",
                                    offset: position)
            }
        }

        /// The offset of the end-of-central-directory record: the last one whose
        /// comment length reaches exactly to the end of the file.
        private static func findEnd(_ bytes: [UInt8], context: ErrorContext) throws -> Int {
            if bytes.count >= 22 {
                let lowest = max(0, bytes.count - 22 - Int(UInt16.max))
                for position in stride(from: bytes.count - 22, through: lowest, by: -1)
                where bytes.readLittleEndian(UInt32.self, at: position) == endSignature
                    && Int(bytes.readLittleEndian(UInt16.self, at: position + 20)) == bytes.count - position - 22 {
                    return position
                }
            }
            if bytes.starts(with: NPY.magic) {
                throw context.error("not a zip archive: this is a single .npy file (read it with NPY.read)")
            }
            if bytes.count >= 4, bytes.readLittleEndian(UInt32.self, at: 0) == localHeaderSignature {
                throw context.error("truncated zip archive: no end-of-central-directory record (\(bytes.count) bytes)")
            }
            throw context.error("not a zip archive: no end-of-central-directory record (\(bytes.count) bytes)")
        }
    }

    /// Refuses members whose local records (header and data) overlap: several
    /// directory entries pointing at the same deflated bytes would multiply the
    /// memory a small file can demand. The local header's extra field is not yet
    /// read here, so each record is measured without it: a lower bound.
    private static func checkMembersAreDisjoint(_ entries: [Entry], context: ErrorContext) throws {
        var previous: Entry?
        // Ties keep directory order, so the later entry is the one reported.
        let ordered = entries.enumerated().sorted { ($0.element.localHeaderOffset, $0.offset) < ($1.element.localHeaderOffset, $1.offset) }
        for entry in ordered.map(\.element) {
            if let previous {
                let (end, overflow) = (previous.localHeaderOffset + 30 + previous.name.utf8.count)
                    .addingReportingOverflow(previous.compressedSize)
                if overflow || entry.localHeaderOffset < end {
                    throw ErrorContext(file: context.file, member: entry.name).error(
                        "overlaps member '\(previous.name)' in the archive (corrupt or hostile archive)",
                        offset: entry.localHeaderOffset)
                }
            }
            previous = entry
        }
    }

    /// The 8-byte values of the ZIP64 extra field (id 1) in `extra`, one per
    /// `true` in `saturated` (uncompressed size, compressed size, header offset).
    private static func zip64Values(_ bytes: [UInt8], extra: Range<Int>, saturated: [Bool],
                                    context: ErrorContext) throws -> [Int] {
        let wanted = saturated.filter { $0 }.count
        guard wanted > 0 else { return [] }
        var position = extra.lowerBound
        while position + 4 <= extra.upperBound {
            let id = bytes.readLittleEndian(UInt16.self, at: position)
            let size = Int(bytes.readLittleEndian(UInt16.self, at: position + 2))
            guard position + 4 + size <= extra.upperBound else { break }
            if id == 1 {
                guard size >= wanted * 8 else {
                    throw context.error("ZIP64 extra field holds \(size) bytes, \(wanted * 8) needed", offset: position)
                }
                return try (0..<wanted).map { i in
                    let value = bytes.readLittleEndian(UInt64.self, at: position + 4 + 8 * i)
                    // Offsets and compressed sizes are checked against the file, uncompressed sizes
                    // against deflate's ratio, before anything is allocated.
                    guard let result = Int(exactly: value) else {
                        throw context.error("ZIP64 size or offset \(value) is too large", offset: position + 4 + 8 * i)
                    }
                    return result
                }
            }
            position += 4 + size
        }
        throw context.error("sizes are saturated at 0xFFFFFFFF but there is no ZIP64 extra field", offset: extra.lowerBound)
    }

    /// Checks a member's local header against its directory entry and returns its
    /// uncompressed, CRC-checked bytes. `dataEnd` is where the central directory starts.
    private static func memberBytes(_ entry: Entry, in bytes: [UInt8], dataEnd: Int, context: ErrorContext) throws -> [UInt8] {
        if entry.flags & 0x0001 != 0 { throw context.error("encrypted members are not supported") }
        guard entry.method == 0 || entry.method == 8 else {
            let names: [UInt16: String] = [1: "shrunk", 6: "imploded", 9: "deflate64", 12: "bzip2", 14: "LZMA",
                                           93: "Zstandard", 95: "xz", 98: "PPMd"]
            throw context.error("unsupported compression method \(entry.method)\(names[entry.method].map { " (\($0))" } ?? ""); "
                                + "only stored (0) and deflated (8) are read")
        }
        let header = entry.localHeaderOffset
        guard header <= dataEnd - 30, bytes.readLittleEndian(UInt32.self, at: header) == localHeaderSignature else {
            throw context.error("no local header at offset \(header), where the central directory says the member starts", offset: header)
        }
        let flags = bytes.readLittleEndian(UInt16.self, at: header + 6)
        let method = bytes.readLittleEndian(UInt16.self, at: header + 8)
        let crc = bytes.readLittleEndian(UInt32.self, at: header + 14)
        var compressed = Int(bytes.readLittleEndian(UInt32.self, at: header + 18))
        var uncompressed = Int(bytes.readLittleEndian(UInt32.self, at: header + 22))
        let nameLength = Int(bytes.readLittleEndian(UInt16.self, at: header + 26))
        let extraLength = Int(bytes.readLittleEndian(UInt16.self, at: header + 28))
        let dataStart = header + 30 + nameLength + extraLength
        guard dataStart <= dataEnd else {
            throw context.error("truncated archive: the local header runs into the central directory", offset: header)
        }
        guard bytes[(header + 30)..<(header + 30 + nameLength)].elementsEqual(entry.name.utf8) else {
            let local = String(decoding: bytes[(header + 30)..<(header + 30 + nameLength)], as: UTF8.self)
            throw context.error("the local header names '\(local)', the central directory '\(entry.name)'", offset: header)
        }
        // numpy.savez's local headers saturate both sizes and carry them in a ZIP64 extra field.
        var wide = try zip64Values(bytes, extra: (header + 30 + nameLength)..<dataStart,
                                   saturated: [uncompressed == 0xFFFF_FFFF, compressed == 0xFFFF_FFFF],
                                   context: context)
        if uncompressed == 0xFFFF_FFFF { uncompressed = wide.removeFirst() }
        if compressed == 0xFFFF_FFFF { compressed = wide.removeFirst() }
        guard method == entry.method else {
            throw context.error("the local header says compression method \(method), the central directory \(entry.method)", offset: header)
        }
        // Bit 3: sizes and CRC follow the data instead; the directory's values are then the only ones.
        if flags & 0x0008 == 0 {
            guard crc == entry.crc, compressed == entry.compressedSize, uncompressed == entry.uncompressedSize else {
                throw context.error("sizes disagree: the local header says \(compressed) bytes compressed, \(uncompressed) "
                                    + "uncompressed, CRC \(hex32(crc)); the central directory \(entry.compressedSize), "
                                    + "\(entry.uncompressedSize), \(hex32(entry.crc))", offset: header)
            }
        }
        guard entry.compressedSize <= dataEnd - dataStart else {
            throw context.error("truncated archive: the member's \(entry.compressedSize) bytes of data run past the end of the "
                                + "member area (\(dataEnd - dataStart) bytes left)", offset: dataStart)
        }
        let data = dataStart..<(dataStart + entry.compressedSize)
        let payload: [UInt8]
        if entry.method == 0 {
            guard entry.compressedSize == entry.uncompressedSize else {
                throw context.error("sizes disagree: a stored member of \(entry.compressedSize) bytes claims "
                                    + "\(entry.uncompressedSize) bytes uncompressed", offset: entry.directoryOffset)
            }
            payload = Array(bytes[data])
        } else {
            guard entry.uncompressedSize <= InputLimits.decompressedBytes else {
                throw context.error("claims \(entry.uncompressedSize) bytes uncompressed, above the limit of "
                                    + "\(InputLimits.decompressedBytes) bytes on decompressed data (corrupt or hostile archive)",
                                    offset: entry.directoryOffset)
            }
            guard entry.uncompressedSize <= entry.compressedSize * maximumDeflateRatio + 1024 else {
                throw context.error("claims \(entry.uncompressedSize) bytes uncompressed from \(entry.compressedSize) compressed, "
                                    + "beyond deflate's \(maximumDeflateRatio):1 limit (corrupt or hostile archive)",
                                    offset: entry.directoryOffset)
            }
            payload = try inflateRaw(bytes, range: data, expectedSize: entry.uncompressedSize, context: context)
        }
        let computed = payload.withUnsafeBytes { crc32(of: $0) }
        guard computed == entry.crc else {
            throw context.error("CRC-32 mismatch: the directory says \(hex32(entry.crc)), the data gives \(hex32(computed)) "
                                + "(corrupt member)", offset: dataStart)
        }
        return payload
    }

    private static func hex32(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Inflates the raw deflate stream in `bytes[range]`, which must produce
    /// exactly `expectedSize` bytes and end exactly at the end of `range`.
    private static func inflateRaw(_ bytes: [UInt8], range: Range<Int>, expectedSize: Int,
                                   context: ErrorContext) throws -> [UInt8] {
        var stream = z_stream()
        guard czlib_inflate_init_raw(&stream) == Z_OK else { throw context.error("zlib could not start inflating") }
        defer { inflateEnd(&stream) }
        // Where the output is full, zlib gets one spare byte: if it writes there, the member is longer than claimed.
        let spare = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        defer { spare.deallocate() }
        var problem: String?
        var produced = 0
        var inputLeft = range.count
        let output = bytes.withUnsafeBytes { raw -> [UInt8] in
            var nextInput = raw.baseAddress! + range.lowerBound
            return [UInt8](unsafeUninitializedCapacity: expectedSize) { buffer, initialized in
                loop: while true {
                    let inputChunk = min(inputLeft, Int(UInt32.max))
                    stream.next_in = UnsafeMutablePointer(mutating: nextInput.assumingMemoryBound(to: Bytef.self))
                    stream.avail_in = UInt32(inputChunk)
                    let outputLeft = expectedSize - produced
                    let outputChunk = outputLeft > 0 ? min(outputLeft, Int(UInt32.max)) : 1
                    stream.next_out = outputLeft > 0 ? buffer.baseAddress! + produced : spare
                    stream.avail_out = UInt32(outputChunk)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    let consumed = inputChunk - Int(stream.avail_in)
                    nextInput += consumed
                    inputLeft -= consumed
                    let wrote = outputChunk - Int(stream.avail_out)
                    if outputLeft > 0 {
                        produced += wrote
                    } else if wrote > 0 {
                        problem = "sizes disagree: the member inflates to more than the \(expectedSize) bytes the directory says"
                        break loop
                    }
                    switch status {
                    case Z_STREAM_END:
                        break loop
                    case Z_OK:
                        continue loop
                    case Z_BUF_ERROR where inputLeft == 0:
                        problem = "truncated deflate data: the stream stops after \(produced) of \(expectedSize) bytes"
                        break loop
                    case Z_DATA_ERROR:
                        problem = "corrupt deflate data: " + (stream.msg.map { String(cString: $0) } ?? "invalid stream")
                        break loop
                    default:
                        problem = "zlib inflate failed with status \(status)"
                        break loop
                    }
                }
                initialized = produced
            }
        }
        // Errors point at the start of the member's compressed data.
        if let problem { throw context.error(problem, offset: range.lowerBound) }
        guard produced == expectedSize else {
            throw context.error("sizes disagree: the member inflates to \(produced) bytes, the directory says \(expectedSize)",
                                offset: range.lowerBound)
        }
        guard inputLeft == 0 else {
            throw context.error("corrupt member: \(inputLeft) bytes of compressed data after the end of the deflate stream",
                                offset: range.lowerBound)
        }
        return output
    }

    /// CRC-32 (the ZIP and zlib polynomial) of `bytes`, through zlib.
    static func crc32(of bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CZlib.crc32(0, nil, 0)
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, 1 << 30)
            crc = CZlib.crc32(crc, (bytes.baseAddress! + offset).assumingMemoryBound(to: Bytef.self), UInt32(chunk))
            offset += chunk
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    // MARK: - Writing

    /// Raw deflate (no zlib header) of `input` at zlib's default level.
    private static func deflateRaw(_ input: [UInt8], destination: String) throws -> [UInt8] {
        var stream = z_stream()
        guard czlib_deflate_init_raw(&stream, Z_DEFAULT_COMPRESSION) == Z_OK else {
            throw TensorFileError(file: destination, problem: "zlib could not start deflating")
        }
        defer { deflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var status = Z_OK
        input.withUnsafeBytes { raw in
            var offset = 0
            var flush: Int32 = Z_NO_FLUSH
            repeat {
                let inputChunk = min(raw.count - offset, 1 << 30)
                stream.next_in = raw.baseAddress.map { UnsafeMutablePointer(mutating: ($0 + offset).assumingMemoryBound(to: Bytef.self)) }
                stream.avail_in = UInt32(inputChunk)
                offset += inputChunk
                flush = offset == raw.count ? Z_FINISH : Z_NO_FLUSH
                // zlib's usual loop: call deflate until it leaves room in the output chunk.
                repeat {
                    chunk.withUnsafeMutableBufferPointer { buffer in
                        stream.next_out = buffer.baseAddress
                        stream.avail_out = UInt32(buffer.count)
                        status = deflate(&stream, flush)
                        output.append(contentsOf: buffer[0..<(buffer.count - Int(stream.avail_out))])
                    }
                } while stream.avail_out == 0 && status != Z_STREAM_ERROR
            } while flush != Z_FINISH && status != Z_STREAM_ERROR
        }
        guard status == Z_STREAM_END else {
            throw TensorFileError(file: destination, problem: "zlib deflate failed with status \(status)")
        }
        return output
    }

    /// A ZIP64 extra field (id 1) holding `values` as 8-byte integers: uncompressed
    /// size, compressed size and, in the central directory, the local header offset.
    private static func zip64Extra(_ values: [Int]) -> [UInt8] {
        var field: [UInt8] = []
        field.appendLittleEndian(UInt16(1))
        field.appendLittleEndian(UInt16(8 * values.count))
        for value in values { field.appendLittleEndian(UInt64(value)) }
        return field
    }

    /// Builds the archive. `forceZip64` writes ZIP64 extra fields and end records
    /// even where sizes do not need them (as `numpy.savez` does for local headers),
    /// so tests can exercise that path.
    static func encode(_ tensors: [StoredTensor], compressed: Bool, forceZip64: Bool, destination: String) throws -> [UInt8] {
        var seen = Set<String>()
        for tensor in tensors {
            guard !tensor.name.isEmpty else {
                throw TensorFileError(file: destination, tensor: tensor.name, problem: "an .npz member needs a non-empty name")
            }
            guard seen.insert(tensor.name).inserted else {
                throw TensorFileError(file: destination, tensor: tensor.name,
                                      problem: "two tensors have this name; .npz member names must be unique")
            }
            guard tensor.name.utf8.count + 4 <= Int(UInt16.max) else {
                throw TensorFileError(file: destination, tensor: String(tensor.name.prefix(40)) + "...",
                                      problem: "name longer than a zip member name can be")
            }
        }
        let saturated32: UInt32 = 0xFFFF_FFFF
        let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1  // 1980-01-01, the earliest DOS date; time 00:00
        var out: [UInt8] = []
        var directory: [UInt8] = []
        for tensor in tensors {
            let name = Array((tensor.name + ".npy").utf8)
            let payload = NPY.encode(tensor)
            let crc = payload.withUnsafeBytes { crc32(of: $0) }
            let data = compressed ? try deflateRaw(payload, destination: destination) : payload
            let offset = out.count
            let zip64 = forceZip64 || payload.count >= Int(saturated32) || data.count >= Int(saturated32) || offset >= Int(saturated32)
            let version: UInt16 = zip64 ? 45 : 20
            let flags: UInt16 = name.allSatisfy { $0 < 0x80 } ? 0 : 0x0800  // bit 11: the name is UTF-8
            let method: UInt16 = compressed ? 8 : 0

            out.appendLittleEndian(localHeaderSignature)
            for field in [version, flags, method, 0, dosDate] { out.appendLittleEndian(field) }
            out.appendLittleEndian(crc)
            out.appendLittleEndian(zip64 ? saturated32 : UInt32(data.count))
            out.appendLittleEndian(zip64 ? saturated32 : UInt32(payload.count))
            out.appendLittleEndian(UInt16(name.count))
            out.appendLittleEndian(UInt16(zip64 ? 20 : 0))
            out += name
            if zip64 { out += zip64Extra([payload.count, data.count]) }
            out += data

            directory.appendLittleEndian(centralEntrySignature)
            for field in [(3 << 8) | version, version, flags, method, 0, dosDate] { directory.appendLittleEndian(field) }  // made by: Unix
            directory.appendLittleEndian(crc)
            directory.appendLittleEndian(zip64 ? saturated32 : UInt32(data.count))
            directory.appendLittleEndian(zip64 ? saturated32 : UInt32(payload.count))
            for field in [UInt16(name.count), UInt16(zip64 ? 28 : 0), 0, 0, 0] { directory.appendLittleEndian(field) }
            directory.appendLittleEndian(UInt32(0o100644) << 16)  // external attributes: a regular rw-r--r-- file
            directory.appendLittleEndian(zip64 ? saturated32 : UInt32(offset))
            directory += name
            if zip64 { directory += zip64Extra([payload.count, data.count, offset]) }
        }
        let directoryOffset = out.count
        out += directory
        let zip64End = forceZip64 || tensors.count >= 0xFFFF || directoryOffset >= Int(saturated32) || directory.count >= Int(saturated32)
        if zip64End {
            let recordOffset = out.count
            out.appendLittleEndian(zip64EndSignature)
            out.appendLittleEndian(UInt64(44))  // the record's size after this field
            out.appendLittleEndian(UInt16((3 << 8) | 45))
            out.appendLittleEndian(UInt16(45))
            out.appendLittleEndian(UInt32(0))
            out.appendLittleEndian(UInt32(0))
            out.appendLittleEndian(UInt64(tensors.count))
            out.appendLittleEndian(UInt64(tensors.count))
            out.appendLittleEndian(UInt64(directory.count))
            out.appendLittleEndian(UInt64(directoryOffset))
            out.appendLittleEndian(zip64LocatorSignature)
            out.appendLittleEndian(UInt32(0))
            out.appendLittleEndian(UInt64(recordOffset))
            out.appendLittleEndian(UInt32(1))
        }
        out.appendLittleEndian(endSignature)
        out.appendLittleEndian(UInt16(0))
        out.appendLittleEndian(UInt16(0))
        let count16 = zip64End ? UInt16.max : UInt16(tensors.count)
        out.appendLittleEndian(count16)
        out.appendLittleEndian(count16)
        out.appendLittleEndian(zip64End ? saturated32 : UInt32(directory.count))
        out.appendLittleEndian(zip64End ? saturated32 : UInt32(directoryOffset))
        out.appendLittleEndian(UInt16(0))
        return out
    }
}
