/// The safetensors format (Hugging Face): an 8-byte little-endian header
/// length `N`, `N` bytes of UTF-8 JSON, then the data buffer.
///
/// The JSON maps each tensor name to `{"dtype": "F32", "shape": [..],
/// "data_offsets": [begin, end]}` (offsets into the data buffer) and may hold
/// `"__metadata__": {string: string}`.
///
/// Reading takes the dtypes of ``DType`` (`F32`, `F64`, `I8`, `U8`, `I16`,
/// `U16`, `I32`, `U32`, `I64`, `U64`, `BOOL`) and returns the tensors in data
/// order. Like the reference implementation it requires the tensors to tile the
/// data buffer exactly: no gaps, no overlaps, no unused bytes at the end.
/// Refused with a ``TensorFileError`` naming the file and, where known, the
/// tensor: a header length beyond the file (or above the reference's 100 MB
/// limit, before anything is allocated), a header that is not UTF-8 JSON
/// starting with `{`, duplicate keys, missing or unexpected fields, other
/// dtypes (F16, BF16, F8_*, ...), negative or overflowing shapes, offsets out of
/// range, overlapping, leaving gaps or not matching shape times item size,
/// metadata that is not string to string, and `BOOL` bytes other than 0 and 1.
///
/// Writing follows the reference writer byte for byte: tensors ordered by
/// descending dtype alignment then by name, offsets contiguous from 0, compact
/// JSON with `__metadata__` first, padded with spaces to a multiple of 8 bytes.
public enum Safetensors {
    /// The reference implementation's limit on the header length.
    public static let maximumHeaderLength = 100_000_000

    /// Reads every tensor of the safetensors file at `path`, in data order, and its metadata.
    /// - Throws: ``TensorFileError`` naming the file, the tensor and the problem.
    public static func read(path: String) throws -> (tensors: [StoredTensor], metadata: [String: String]) {
        try read(bytes: TensorFileIO.read(path: path), source: path)
    }

    /// Reads every tensor of safetensors bytes, in data order, and the metadata;
    /// `source` names the bytes in errors.
    /// - Throws: ``TensorFileError`` naming `source`, the tensor and the problem.
    public static func read(bytes: [UInt8], source: String) throws -> (tensors: [StoredTensor], metadata: [String: String]) {
        let context = ErrorContext(file: source)
        guard bytes.count >= 8 else {
            throw context.error("truncated file: \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let declared = bytes.readLittleEndian(UInt64.self, at: 0)
        guard declared <= UInt64(maximumHeaderLength) else {
            throw context.error("header length \(declared) exceeds the \(maximumHeaderLength)-byte limit "
                                + "(not a safetensors file?)", offset: 0)
        }
        guard declared <= UInt64(bytes.count - 8) else {
            throw context.error("header length \(declared) is larger than the file: only \(bytes.count - 8) bytes follow "
                                + "the 8-byte length", offset: 0)
        }
        let headerLength = Int(declared)
        let header = Array(bytes[8..<(8 + headerLength)])
        guard header.first == UInt8(ascii: "{") else {
            throw context.error("header does not start with '{' (not a safetensors file?)", offset: 8)
        }
        guard String(validating: header, as: UTF8.self) != nil else {
            throw context.error("header is not valid UTF-8", offset: 8)
        }
        var parser = SafetensorsJSONParser(text: header, base: 8, context: context)
        guard case .object(let entries) = try parser.parseWhole() else {
            throw context.error("header is not a JSON object", offset: 8)
        }

        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var layout: [(name: String, dtype: DType, dims: [Int], begin: Int, end: Int)] = []
        for (key, value, keyOffset) in entries {
            if key == "__metadata__" {
                metadata = try readMetadata(value, offset: keyOffset, context: context)
                continue
            }
            func fail(_ problem: String) -> TensorFileError { context.error(problem, tensor: key, offset: keyOffset) }
            guard case .object(let fields) = value else { throw fail("entry is \(value.kind), not an object") }
            if let extra = fields.first(where: { !["dtype", "shape", "data_offsets"].contains($0.key) }) {
                throw fail("unexpected field '\(extra.key)' (a tensor entry has exactly dtype, shape and data_offsets)")
            }
            func field(_ name: String) throws -> SafetensorsJSON {
                guard let found = fields.first(where: { $0.key == name }) else { throw fail("missing field '\(name)'") }
                return found.value
            }
            guard case .string(let dtypeName) = try field("dtype") else {
                throw fail("'dtype' is \(try field("dtype").kind), not a string")
            }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                let supported = DType.allCases.map(\.safetensorsName).joined(separator: ", ")
                throw fail("dtype \(dtypeName) is not supported (supported: \(supported))")
            }
            let dims = try integers(field("shape"), what: "'shape'", fail: fail)
            let offsets = try integers(field("data_offsets"), what: "'data_offsets'", fail: fail)
            guard offsets.count == 2, offsets[0] <= offsets[1] else {
                throw fail("'data_offsets' \(offsets) is not [begin, end] with begin <= end")
            }
            guard offsets[1] <= dataLength else {
                throw fail("data_offsets \(offsets) run past the end of the \(dataLength)-byte data buffer")
            }
            guard let byteCount = checkedByteCount(dims: dims, itemSize: dtype.itemSize) else {
                throw fail("shape \(dims) is too large: its size in bytes overflows a 64-bit integer")
            }
            guard byteCount == offsets[1] - offsets[0] else {
                throw fail("data_offsets \(offsets) span \(offsets[1] - offsets[0]) bytes, but shape \(dims) of "
                           + "\(dtypeName) needs \(byteCount)")
            }
            layout.append((key, dtype, dims, offsets[0], offsets[1]))
        }

        // The tensors must tile the buffer: each starts where the one before it ends.
        layout.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var covered = 0
        var previous: (name: String, begin: Int, end: Int)?
        for entry in layout {
            if entry.begin < covered, let previous {
                throw context.error("data_offsets [\(entry.begin), \(entry.end)] overlap tensor '\(previous.name)' at "
                                    + "[\(previous.begin), \(previous.end)]", tensor: entry.name, offset: dataStart + entry.begin)
            }
            if entry.begin > covered {
                throw context.error("data_offsets [\(entry.begin), \(entry.end)] leave bytes \(covered)..<\(entry.begin) of the "
                                    + "data buffer to no tensor (safetensors requires a contiguous buffer)",
                                    tensor: entry.name, offset: dataStart + covered)
            }
            covered = entry.end
            previous = (entry.name, entry.begin, entry.end)
        }
        guard covered == dataLength else {
            throw context.error("the data buffer holds \(dataLength) bytes, but the tensors end at \(covered): "
                                + "\(dataLength - covered) unused bytes (safetensors requires every byte to belong to a tensor)",
                                offset: dataStart + covered)
        }

        let tensors = try layout.map { entry in
            try StoredTensor.fromFile(name: entry.name, dtype: entry.dtype, shape: Shape(entry.dims),
                                      bytes: Array(bytes[(dataStart + entry.begin)..<(dataStart + entry.end)]),
                                      context: context, reportedTensor: entry.name, offset: dataStart + entry.begin)
        }
        return (tensors, metadata)
    }

    /// `__metadata__`: an object of strings (`null` reads as none).
    private static func readMetadata(_ value: SafetensorsJSON, offset: Int, context: ErrorContext) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case .object(let pairs) = value else {
            throw context.error("__metadata__ is \(value.kind), not an object of strings", offset: offset)
        }
        var metadata: [String: String] = [:]
        for (key, item, keyOffset) in pairs {
            guard case .string(let text) = item else {
                throw context.error("__metadata__ value for key '\(key)' is \(item.kind); metadata must map strings to strings",
                                    offset: keyOffset)
            }
            metadata[key] = text
        }
        return metadata
    }

    /// A JSON array of non-negative integers that fit in `Int`.
    private static func integers(_ value: SafetensorsJSON, what: String, fail: (String) -> TensorFileError) throws -> [Int] {
        guard case .array(let items) = value else { throw fail("\(what) is \(value.kind), not an array") }
        return try items.map { item in
            guard case .number(let text) = item, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw fail("\(what) holds \(item.kind == "a number" ? "the number \(item.numberText)" : item.kind), "
                           + "not a non-negative integer")
            }
            guard let number = Int(text) else { throw fail("\(what) holds \(text), too large for 64 bits") }
            return number
        }
    }

    /// The safetensors bytes of `tensors` and `metadata`, as the reference writer produces them.
    /// - Parameter metadata: stored under `__metadata__`, keys sorted; omitted when empty.
    /// - Throws: ``TensorFileError`` for a repeated name or a tensor named `__metadata__`.
    public static func encode(_ tensors: [StoredTensor], metadata: [String: String] = [:]) throws -> [UInt8] {
        try encode(tensors, metadata: metadata, destination: "(safetensors in memory)")
    }

    /// Writes `tensors` and `metadata` to `path` atomically (a temporary file in the
    /// same directory, renamed into place): a failed write leaves any old file intact.
    /// - Throws: ``TensorFileError`` naming the path.
    public static func write(_ tensors: [StoredTensor], metadata: [String: String] = [:], to path: String) throws {
        try TensorFileIO.writeAtomically(encode(tensors, metadata: metadata, destination: path), to: path)
    }

    private static func encode(_ tensors: [StoredTensor], metadata: [String: String], destination: String) throws -> [UInt8] {
        var seen = Set<String>()
        for tensor in tensors {
            guard tensor.name != "__metadata__" else {
                throw TensorFileError(file: destination, tensor: tensor.name, problem: "the name __metadata__ is reserved for metadata")
            }
            guard seen.insert(tensor.name).inserted else {
                throw TensorFileError(file: destination, tensor: tensor.name, problem: "two tensors have this name; names must be unique")
            }
        }
        // The reference writer's order: larger alignment first, then name (bytewise), so
        // every tensor's data starts at a multiple of its item size.
        let ordered = tensors.sorted { a, b in
            a.dtype.safetensorsRank != b.dtype.safetensorsRank
                ? a.dtype.safetensorsRank > b.dtype.safetensorsRank
                : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var items: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            items.append(jsonString("__metadata__") + ":{"
                         + pairs.map { jsonString($0.key) + ":" + jsonString($0.value) }.joined(separator: ",") + "}")
        }
        var offset = 0
        for tensor in ordered {
            let end = offset + tensor.bytes.count
            items.append(jsonString(tensor.name) + ":{\"dtype\":\"\(tensor.dtype.safetensorsName)\",\"shape\":["
                         + tensor.shape.dims.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + items.joined(separator: ",") + "}").utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        out.appendLittleEndian(UInt64(header.count))
        out += header
        for tensor in ordered { out += tensor.bytes }
        return out
    }

    /// A JSON string literal, escaped as serde_json does: `"`, `\` and control
    /// characters escaped, everything else (non-ASCII included) as UTF-8.
    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

// MARK: - JSON

/// A parsed JSON value; objects keep their key order and each key's byte
/// offset in the file (for error messages), numbers their text.
private indirect enum SafetensorsJSON {
    case object([(key: String, value: SafetensorsJSON, offset: Int)])
    case array([SafetensorsJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// "an object", "a string", ... for error messages.
    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    var numberText: String {
        if case .number(let text) = self { return text }
        return kind
    }
}

/// A strict RFC 8259 JSON parser (no comments, no trailing commas, no
/// duplicate keys, no lone surrogates), nesting limited to 64 levels.
/// Errors give the byte offset in the file.
private struct SafetensorsJSONParser: HeaderTextParser {
    let text: [UInt8]
    let base: Int
    let context: ErrorContext
    var position = 0
    var depth = 0
    static let maximumDepth = 64
    static let problemPrefix = "invalid JSON in header: "

    /// JSON's whitespace: space, newline, return, tab.
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

    init(text: [UInt8], base: Int, context: ErrorContext) {
        self.text = text
        self.base = base
        self.context = context
    }

    /// One value, with only whitespace (the writer's padding) after it.
    mutating func parseWhole() throws -> SafetensorsJSON {
        let value = try parseValue()
        skipWhitespace()
        guard current == nil else { throw fail("unexpected \(currentText) after the top-level object") }
        return value
    }

    private mutating func parseValue() throws -> SafetensorsJSON {
        skipWhitespace()
        guard let byte = current else { throw fail("header ends where a value was expected") }
        switch byte {
        case UInt8(ascii: "{"): return try nested { try $0.parseObject() }
        case UInt8(ascii: "["): return try nested { try $0.parseArray() }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        default: throw fail("unexpected \(currentText) where a value was expected")
        }
    }

    private mutating func expectWord(_ word: String) throws {
        let bytes = Array(word.utf8)
        guard position + bytes.count <= text.count, Array(text[position..<(position + bytes.count)]) == bytes else {
            throw fail("unexpected \(currentText) where a value was expected")
        }
        position += bytes.count
    }

    private mutating func parseObject() throws -> SafetensorsJSON {
        position += 1
        var entries: [(key: String, value: SafetensorsJSON, offset: Int)] = []
        var keys = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return .object(entries) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw fail("expected a string key, found \(currentText)") }
            let keyPosition = position
            let key = try parseString()
            guard keys.insert(key).inserted else {
                position = keyPosition
                throw fail("duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\", found \(currentText)") }
            position += 1
            entries.append((key, try parseValue(), base + keyPosition))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return .object(entries)
            default: throw fail("expected ',' or '}' in an object, found \(currentText)")
            }
        }
    }

    private mutating func parseArray() throws -> SafetensorsJSON {
        position += 1
        var items: [SafetensorsJSON] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return .array(items) }
        while true {
            items.append(try parseValue())
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(items)
            default: throw fail("expected ',' or ']' in an array, found \(currentText)")
            }
        }
    }

    /// The number's text, checked against JSON's grammar.
    private mutating func parseNumber() throws -> String {
        let start = position
        func digits() -> Int {
            let first = position
            while let byte = current, byte >= 0x30 && byte <= 0x39 { position += 1 }
            return position - first
        }
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if digits() == 0 {
            throw fail("malformed number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw fail("malformed number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw fail("malformed number") }
        }
        return String(decoding: text[start..<position], as: UTF8.self)
    }

    /// A string; the header was checked to be UTF-8 already.
    private mutating func parseString() throws -> String {
        let start = position
        position += 1
        var scalars = String.UnicodeScalarView()
        var run = position  // start of the current run of unescaped bytes
        func flush(_ end: Int) { scalars.append(contentsOf: String(decoding: text[run..<end], as: UTF8.self).unicodeScalars) }
        while true {
            guard let byte = current else {
                position = start
                throw fail("unterminated string")
            }
            if byte == UInt8(ascii: "\"") {
                flush(position)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw fail("control character 0x\(String(byte, radix: 16)) inside a string") }
            guard byte == UInt8(ascii: "\\") else { position += 1; continue }
            flush(position)
            position += 1
            guard let escaped = current else { throw fail("unterminated string") }
            position += 1
            switch escaped {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var value = try hex4()
                if (0xD800..<0xDC00).contains(value) {
                    guard current == UInt8(ascii: "\\"), position + 1 < text.count, text[position + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate \\u\(String(value, radix: 16)) in a string")
                    }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("lone surrogate in a string") }
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(value) else { throw fail("lone surrogate in a string") }
                scalars.append(scalar)
            default:
                position -= 2
                throw fail("invalid escape in a string")
            }
            run = position
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard position + 4 <= text.count,
              let value = UInt32(String(decoding: text[position..<(position + 4)], as: UTF8.self), radix: 16),
              text[position..<(position + 4)].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") }) else {
            throw fail("invalid \\u escape in a string")
        }
        position += 4
        return value
    }
}
