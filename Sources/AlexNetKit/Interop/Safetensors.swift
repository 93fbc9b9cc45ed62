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
        guard case .object(let entries) = try parseHeader(header, context: context) else {
            throw context.error("header is not a JSON object", offset: 8)
        }

        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var layout: [(name: String, dtype: DType, dims: [Int], begin: Int, end: Int)] = []
        for (key, value, keyOffset) in entries {
            if key == "__metadata__" {
                metadata = try readMetadata(value, offset: 8 + keyOffset, context: context)
                continue
            }
            func fail(_ problem: String) -> TensorFileError { context.error(problem, tensor: key, offset: 8 + keyOffset) }
            guard case .object(let fields) = value else { throw fail("entry is \(value.kind), not an object") }
            if let extra = fields.first(where: { !["dtype", "shape", "data_offsets"].contains($0.key) }) {
                throw fail("unexpected field '\(extra.key)' (a tensor entry has exactly dtype, shape and data_offsets)")
            }
            func field(_ name: String) throws -> JSONValue {
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

    /// The header's JSON (the bytes after the 8-byte length), nested at most
    /// ``JSONParser/defaultMaximumDepth`` levels (real headers nest 3).
    /// - Throws: ``TensorFileError`` with the problem and its byte offset in the file.
    private static func parseHeader(_ header: [UInt8], context: ErrorContext) throws -> JSONValue {
        do {
            return try JSONParser.parse(header)
        } catch let error as JSONSyntaxError {
            let problem: String
            switch error.problem {
            // The wording this reader has always used (its tests pin it), where it
            // differs from the parser's: the header is an object, and the nesting
            // limit is worded as the .npy header parser's is.
            case .invalidUTF8: problem = "header is not valid UTF-8"
            case .trailingComma(before: "]"): problem = "invalid JSON in header: unexpected ']' where a value was expected"
            case .textAfterValue(let found): problem = "invalid JSON in header: unexpected \(found) after the top-level object"
            case .tooDeep(let limit): problem = "invalid JSON in header: nested more than \(limit) levels deep"
            default: problem = "invalid JSON in header: \(error.problem)"
            }
            throw context.error(problem, offset: 8 + error.offset)
        }
    }

    /// `__metadata__`: an object of strings (`null` reads as none); `offset` is the key's, in the file.
    private static func readMetadata(_ value: JSONValue, offset: Int, context: ErrorContext) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case .object(let pairs) = value else {
            throw context.error("__metadata__ is \(value.kind), not an object of strings", offset: offset)
        }
        var metadata: [String: String] = [:]
        for (key, item, keyOffset) in pairs {
            guard case .string(let text) = item else {
                throw context.error("__metadata__ value for key '\(key)' is \(item.kind); metadata must map strings to strings",
                                    offset: 8 + keyOffset)
            }
            metadata[key] = text
        }
        return metadata
    }

    /// A JSON array of non-negative integers that fit in `Int`.
    private static func integers(_ value: JSONValue, what: String, fail: (String) -> TensorFileError) throws -> [Int] {
        guard case .array(let items) = value else { throw fail("\(what) is \(value.kind), not an array") }
        return try items.map { item in
            guard case .number(let text) = item, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                let found: String
                if case .number(let text) = item { found = "the number \(text)" } else { found = item.kind }
                throw fail("\(what) holds \(found), not a non-negative integer")
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
        // Strings escaped as the reference writer (serde_json) escapes them.
        let quote = JSONValue.encode(string:)
        var items: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            items.append(quote("__metadata__") + ":{"
                         + pairs.map { quote($0.key) + ":" + quote($0.value) }.joined(separator: ",") + "}")
        }
        var offset = 0
        for tensor in ordered {
            let end = offset + tensor.bytes.count
            items.append(quote(tensor.name) + ":{\"dtype\":\"\(tensor.dtype.safetensorsName)\",\"shape\":["
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
}
