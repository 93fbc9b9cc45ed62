/// A reader for tar archives (POSIX ustar, with GNU long names and pax `path`
/// records), enough to find the files inside `cifar-10-binary.tar.gz` without
/// shelling out.
///
/// Layout: each member is a 512-byte header (name at 0, 100 bytes; size at 124,
/// 12 bytes of octal digits, or base-256 when the first byte has its top bit
/// set; checksum at 148; type flag at 156; ustar prefix at 345, 155 bytes)
/// followed by its data padded to a multiple of 512. Two zero blocks end the
/// archive. The header checksum is the sum of its bytes with the checksum field
/// read as spaces (unsigned, or signed as some old tars computed it).
public enum Tar {
    /// One regular file in an archive: its name and where its bytes are.
    public struct Member: Equatable, Sendable {
        /// The path inside the archive, e.g. `cifar-10-batches-bin/data_batch_1.bin`.
        public var name: String
        /// The bytes of the file within the archive's bytes.
        public var range: Range<Int>
        /// Where the member's header starts, for error offsets.
        public var headerOffset: Int
    }

    /// The regular files in a tar archive's bytes (already inflated), in archive
    /// order; directories, links and other entries are passed over.
    /// - Parameter source: names the archive in errors; offsets count bytes of `bytes`.
    /// - Throws: ``DataError`` for a bad checksum, a bad size field, or a member that runs past the end.
    public static func members(in bytes: [UInt8], source: String) throws -> [Member] {
        try members(bytes, context: DataContext(file: source))
    }

    static func members(_ bytes: [UInt8], context: DataContext) throws -> [Member] {
        var members: [Member] = []
        var position = 0
        var longName: String?
        while true {
            guard position + 512 <= bytes.count else {
                if position == bytes.count, !members.isEmpty { return members }  // no end blocks: accepted, as GNU tar does
                throw context.error("truncated tar archive: \(bytes.count - position) bytes where a 512-byte header should start",
                                    offset: position)
            }
            let header = bytes[position..<(position + 512)]
            if header.allSatisfy({ $0 == 0 }) { return members }
            try checkChecksum(header, at: position, context: context)
            let size = try sizeField(header, at: position, context: context)
            let dataStart = position + 512
            guard size <= bytes.count - dataStart else {
                throw context.error("truncated tar archive: member '\(name(header, longName: longName))' claims \(size) bytes, "
                                    + "only \(bytes.count - dataStart) remain", offset: position)
            }
            let type = header[position + 156]
            let data = dataStart..<(dataStart + size)
            switch type {
            case UInt8(ascii: "L"):  // GNU long name for the next member
                longName = text(bytes[data])
            case UInt8(ascii: "x"):  // pax extended header: may carry `path`
                longName = paxPath(bytes[data]) ?? longName
            default:
                if type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "7") {
                    members.append(Member(name: name(header, longName: longName), range: data, headerOffset: position))
                }
                longName = nil
            }
            position = dataStart + (size + 511) / 512 * 512
            if position > bytes.count { position = bytes.count }
        }
    }

    /// The member's path: a pending long name, or the ustar prefix and name.
    private static func name(_ header: ArraySlice<UInt8>, longName: String?) -> String {
        if let longName { return longName }
        let base = header.startIndex
        let name = text(header[base..<(base + 100)])
        let isUstar = header[(base + 257)..<(base + 262)].elementsEqual("ustar".utf8)
        let prefix = isUstar ? text(header[(base + 345)..<(base + 500)]) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// Bytes up to the first NUL, as UTF-8.
    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
    }

    /// The `path` value of a pax extended header (records `"<length> path=<value>\n"`).
    private static func paxPath(_ bytes: ArraySlice<UInt8>) -> String? {
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let record = line[line.index(after: space)...]
            if record.hasPrefix("path=") { return String(record.dropFirst(5)) }
        }
        return nil
    }

    private static func checkChecksum(_ header: ArraySlice<UInt8>, at position: Int, context: DataContext) throws {
        let base = header.startIndex
        let field = header[(base + 148)..<(base + 156)]
        guard let stored = octal(field) else {
            throw context.error("corrupt tar header: checksum field is not octal digits (not a tar archive?)", offset: position + 148)
        }
        var unsigned = 0
        var signed = 0
        for (i, byte) in header.enumerated() {
            let value = (148..<156).contains(i) ? 0x20 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw context.error("corrupt tar header: checksum \(stored) stored, \(unsigned) computed", offset: position)
        }
    }

    /// The size field: octal digits (space or NUL terminated), or GNU base-256.
    private static func sizeField(_ header: ArraySlice<UInt8>, at position: Int, context: DataContext) throws -> Int {
        let base = header.startIndex
        let field = header[(base + 124)..<(base + 136)]
        if field.first! & 0x80 != 0 {
            // Base-256: the remaining 95 bits, big-endian; anything above 2^62 is refused.
            var value = 0
            for (i, byte) in field.enumerated() {
                let digit = i == 0 ? Int(byte & 0x7F) : Int(byte)
                guard value <= (Int.max >> 9) else {
                    throw context.error("corrupt tar header: base-256 size too large", offset: position + 124)
                }
                value = value << 8 | digit
            }
            return value
        }
        guard let size = octal(field) else {
            throw context.error("corrupt tar header: size field is not octal digits", offset: position + 124)
        }
        return size
    }

    /// Octal digits with optional leading spaces and trailing spaces or NULs; nil otherwise.
    private static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        let trimmed = field.drop(while: { $0 == 0x20 })
        let digits = trimmed.prefix(while: { $0 >= 0x30 && $0 <= 0x37 })
        guard !digits.isEmpty, digits.count <= 21,
              trimmed.dropFirst(digits.count).allSatisfy({ $0 == 0 || $0 == 0x20 }) else { return nil }
        return digits.reduce(0) { $0 * 8 + Int($1 - 0x30) }
    }
}
