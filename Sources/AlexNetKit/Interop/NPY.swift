/// NumPy's `.npy` format: one array per file.
///
/// Layout: the magic `\x93NUMPY`, a major and minor version byte, the header
/// length (2 bytes little-endian in version 1.0, 4 bytes in 2.0 and 3.0), the
/// header (a Python dict literal, Latin-1 in 1.0 and 2.0, UTF-8 in 3.0, padded
/// with spaces and ended by `\n`), then the raw elements.
///
/// Reading accepts versions 1.0, 2.0 and 3.0 and the dtypes of ``DType`` in
/// either byte order. Big-endian data (`>f4`, `>i8`, ...) is converted to
/// little-endian, and Fortran-order (column-major) data is transposed to
/// row-major, so a ``StoredTensor`` always holds little-endian, row-major bytes.
/// Everything else is refused with a ``TensorFileError``: a bad magic, another
/// version, a truncated or malformed header, another dtype, a negative or
/// overflowing shape, too few bytes for the shape (checked before anything is
/// allocated for it), or bytes left over after the array.
///
/// Writing produces version 1.0 (2.0 if the header would not fit in 65,535
/// bytes), C order, little-endian, with the header padded to a multiple of 64
/// bytes: the bytes `numpy.save` writes for the same array.
public enum NPY {
    /// `\x93NUMPY`.
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Reads the `.npy` file at `path`; the tensor is named after the file
    /// (`dir/conv1.weight.npy` gives `conv1.weight`).
    /// - Throws: ``TensorFileError`` naming the file and the problem.
    public static func read(path: String) throws -> StoredTensor {
        try read(bytes: TensorFileIO.read(path: path), source: path)
    }

    /// Reads `.npy` bytes; `source` names them in errors and, like a path, gives the tensor's name.
    /// - Throws: ``TensorFileError`` naming `source` and the problem.
    public static func read(bytes: [UInt8], source: String) throws -> StoredTensor {
        try decode(bytes, name: tensorName(forFile: source), context: ErrorContext(file: source))
    }

    /// The `.npy` bytes of `tensor`, as `numpy.save` writes them.
    public static func encode(_ tensor: StoredTensor) -> [UInt8] {
        let dims = tensor.shape.dims
        var header = "{'descr': '\(tensor.dtype.numpyDescr)', 'fortran_order': False, 'shape': \(pythonTuple(dims)), }"
        // numpy leaves room for the first extent to grow to 21 digits, so a file can be
        // appended to in place; we do the same, so our files equal numpy's byte for byte.
        if let first = dims.first { header += String(repeating: " ", count: max(0, 21 - String(first).count)) }
        let text = Array(header.utf8)
        // Version 1.0 has a 2-byte header length; 2.0 a 4-byte one.
        for (major, lengthSize) in [(UInt8(1), 2), (UInt8(2), 4)] {
            // Magic, version, length field, header, newline; padded with 1...64 spaces to a multiple of 64.
            let unpadded = magic.count + 2 + lengthSize + text.count + 1
            let padding = 64 - unpadded % 64
            let headerLength = text.count + padding + 1
            if lengthSize == 2 && headerLength > Int(UInt16.max) { continue }
            var out = magic + [major, 0]
            out.reserveCapacity(unpadded + padding + tensor.bytes.count)
            if lengthSize == 2 { out.appendLittleEndian(UInt16(headerLength)) } else { out.appendLittleEndian(UInt32(headerLength)) }
            out += text
            out += [UInt8](repeating: 0x20, count: padding)
            out.append(0x0A)
            out += tensor.bytes
            return out
        }
        preconditionFailure("an .npy header of \(text.count) bytes does not fit in version 2.0")
    }

    /// Writes `tensor` to `path` atomically (a temporary file in the same
    /// directory, renamed into place): a failed write leaves any old file intact.
    /// - Throws: ``TensorFileError`` naming the path.
    public static func write(_ tensor: StoredTensor, to path: String) throws {
        try TensorFileIO.writeAtomically(encode(tensor), to: path)
    }

    /// A shape as Python writes the tuple: `()`, `(3,)`, `(2, 3)`.
    static func pythonTuple(_ dims: [Int]) -> String {
        dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
    }

    /// `dir/conv1.weight.npy` gives `conv1.weight`.
    static func tensorName(forFile path: String) -> String {
        let file = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        return file.hasSuffix(".npy") ? String(file.dropLast(4)) : file
    }

    // MARK: - Reading

    /// Decodes a whole `.npy` file or .npz member. Errors carry `context`; offsets are within `bytes`.
    static func decode(_ bytes: [UInt8], name: String, context: ErrorContext) throws -> StoredTensor {
        guard !bytes.isEmpty else { throw context.error("not a .npy file: the file is empty") }
        let seen = min(bytes.count, magic.count)
        guard bytes[0..<seen].elementsEqual(magic[0..<seen]) else {
            let start = bytes.prefix(8).map { hex($0) }.joined(separator: " ")
            throw context.error("not a .npy file: bad magic (starts \(start), expected 93 4e 55 4d 50 59 = \\x93NUMPY)", offset: 0)
        }
        guard bytes.count >= 8 else {
            throw context.error("truncated header: the file ends after \(bytes.count) bytes, inside the magic and version")
        }
        let major = bytes[6], minor = bytes[7]
        guard minor == 0, (1...3).contains(major) else {
            throw context.error("unsupported .npy format version \(major).\(minor) (this reader knows 1.0, 2.0 and 3.0)", offset: 6)
        }
        let lengthSize = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthSize else {
            throw context.error("truncated header: the file ends after \(bytes.count) bytes, inside the header length", offset: 8)
        }
        let headerLength = major == 1 ? Int(bytes.readLittleEndian(UInt16.self, at: 8))
                                      : Int(bytes.readLittleEndian(UInt32.self, at: 8))
        let headerStart = 8 + lengthSize
        guard headerLength <= bytes.count - headerStart else {
            throw context.error("truncated header: the header length field says \(headerLength) bytes, "
                                + "the file holds \(bytes.count - headerStart) after it", offset: 8)
        }
        let header = try Header(parsing: Array(bytes[headerStart..<(headerStart + headerLength)]),
                                utf8: major == 3, offset: headerStart, context: context)

        let dataStart = headerStart + headerLength
        let available = bytes.count - dataStart
        // The shape's byte count is known not to overflow; compare before copying anything.
        let expected = header.byteCount
        guard available >= expected else {
            throw context.error("data truncated: expected \(expected) bytes, file holds \(available) "
                                + "(shape \(header.shapeText), dtype \(header.descr))", offset: dataStart)
        }
        guard available == expected else {
            throw context.error("\(available - expected) bytes of unexpected data after the array "
                                + "(expected \(expected) bytes for shape \(header.shapeText), dtype \(header.descr), "
                                + "file holds \(available))", offset: dataStart + expected)
        }
        var data = Array(bytes[dataStart..<(dataStart + expected)])
        if header.bigEndian { reverseEachItem(&data, itemSize: header.dtype.itemSize) }
        if header.fortranOrder { data = rowMajor(fromColumnMajor: data, dims: header.dims, itemSize: header.dtype.itemSize) }
        return try StoredTensor.fromFile(name: name, dtype: header.dtype, shape: Shape(header.dims), bytes: data,
                                         context: context, reportedTensor: nil, offset: dataStart)
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }

    /// The three keys of an .npy header, checked.
    private struct Header {
        var descr: String
        var dtype: DType
        var bigEndian: Bool
        var fortranOrder: Bool
        var dims: [Int]
        /// `dims` times the item size; known not to overflow.
        var byteCount: Int
        var shapeText: String { NPY.pythonTuple(dims) }

        init(parsing text: [UInt8], utf8: Bool, offset: Int, context: ErrorContext) throws {
            var parser = PythonLiteralParser(text: text, utf8: utf8, base: offset, context: context)
            guard case .dictionary(let entries) = try parser.parseWhole() else {
                throw context.error("malformed header: not a dict literal", offset: offset)
            }
            func malformed(_ problem: String) -> TensorFileError { context.error("malformed header: " + problem, offset: offset) }
            let keys = ["descr", "fortran_order", "shape"]
            if let extra = entries.first(where: { !keys.contains($0.key) }) {
                throw malformed("unexpected key '\(extra.key)' (a .npy header has exactly 'descr', 'fortran_order' and 'shape')")
            }
            func value(_ key: String) throws -> PythonValue {
                guard let entry = entries.first(where: { $0.key == key }) else { throw malformed("no '\(key)' key") }
                return entry.value
            }

            switch try value("descr") {
            case .string(let text):
                descr = text
                (dtype, bigEndian) = try Header.parseDescr(text, context: context, offset: offset)
            case .list:
                throw context.error("unsupported dtype: structured arrays (a list of fields in 'descr') are not supported", offset: offset)
            case let other:
                throw malformed("'descr' is \(other.pythonText), not a string")
            }

            guard case .boolean(let fortran) = try value("fortran_order") else {
                throw malformed("'fortran_order' is \(try value("fortran_order").pythonText), not True or False")
            }
            fortranOrder = fortran

            let shapeValue = try value("shape")
            guard case .tuple(let items) = shapeValue else { throw malformed("'shape' is \(shapeValue.pythonText), not a tuple") }
            var dims: [Int] = []
            for item in items {
                guard case .integer(let extent) = item else {
                    throw malformed("'shape' \(shapeValue.pythonText) holds \(item.pythonText), not an integer")
                }
                guard extent >= 0 else { throw context.error("invalid shape \(shapeValue.pythonText): negative extent \(extent)", offset: offset) }
                dims.append(extent)
            }
            guard let count = checkedByteCount(dims: dims, itemSize: dtype.itemSize) else {
                throw context.error("invalid shape \(shapeValue.pythonText): its size in bytes overflows a 64-bit integer", offset: offset)
            }
            self.dims = dims
            byteCount = count
        }

        /// `<f4` is little-endian float32, `>i8` big-endian int64, `|u1` a byte.
        static func parseDescr(_ descr: String, context: ErrorContext, offset: Int) throws -> (DType, bigEndian: Bool) {
            let supported = DType.allCases.map(\.numpyDescr).joined(separator: ", ")
            let order = descr.first
            let code = String(descr.dropFirst())
            if let order, "<>|".contains(order), let dtype = DType(numpyCode: code), order != "|" || dtype.itemSize == 1 {
                return (dtype, order == ">" && dtype.itemSize > 1)
            }
            let kind: String
            switch code.first {
            case "c": kind = "complex numbers"
            case "U": kind = "unicode strings"
            case "S", "a": kind = "byte strings"
            case "O": kind = "Python objects"
            case "V": kind = "raw void records"
            case "M", "m": kind = "dates or time deltas"
            case "f" where code == "f2": kind = "half precision"
            default: kind = order == "=" ? "native byte order, ambiguous in a file" : "not a type this reader knows"
            }
            throw context.error("unsupported dtype '\(descr)' (\(kind)); supported: \(supported), "
                                + "and the big-endian '>' forms", offset: offset)
        }
    }

    /// Reverses the bytes of every `itemSize`-byte element: big-endian to little-endian.
    private static func reverseEachItem(_ data: inout [UInt8], itemSize: Int) {
        guard itemSize > 1 else { return }
        data.withUnsafeMutableBytes { raw in
            for start in stride(from: 0, to: raw.count, by: itemSize) {
                for j in 0..<(itemSize / 2) { raw.swapAt(start + j, start + itemSize - 1 - j) }
            }
        }
    }

    /// Reorders column-major (Fortran) elements into row-major (C) order.
    ///
    /// Walks the row-major output in order with an odometer over the indices,
    /// keeping the column-major source position up to date by adding (and, on
    /// carry, subtracting) the column-major strides: no division per element.
    static func rowMajor(fromColumnMajor data: [UInt8], dims: [Int], itemSize: Int) -> [UInt8] {
        let count = data.count / itemSize
        guard dims.count > 1, count > 1 else { return data }
        var columnStrides = [Int](repeating: 1, count: dims.count)
        for axis in 1..<dims.count { columnStrides[axis] = columnStrides[axis - 1] * dims[axis - 1] }
        var out = [UInt8](repeating: 0, count: data.count)
        var index = [Int](repeating: 0, count: dims.count)
        var source = 0
        data.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { output in
                for destination in 0..<count {
                    output.baseAddress!.advanced(by: destination * itemSize)
                        .copyMemory(from: input.baseAddress!.advanced(by: source * itemSize), byteCount: itemSize)
                    var axis = dims.count - 1
                    while axis >= 0 {
                        index[axis] += 1
                        source += columnStrides[axis]
                        if index[axis] < dims[axis] { break }
                        source -= columnStrides[axis] * dims[axis]
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
        return out
    }
}

// MARK: - Python literals

/// A value of the Python literal subset .npy headers use.
private indirect enum PythonValue {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case none
    case tuple([PythonValue])
    case list([PythonValue])
    case dictionary([(key: String, value: PythonValue)])

    /// Roughly Python's `repr`, for error messages.
    var pythonText: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .integer(let n): return String(n)
        case .boolean(let b): return b ? "True" : "False"
        case .none: return "None"
        case .tuple(let items): return items.count == 1 ? "(\(items[0].pythonText),)" : "(" + items.map(\.pythonText).joined(separator: ", ") + ")"
        case .list(let items): return "[" + items.map(\.pythonText).joined(separator: ", ") + "]"
        case .dictionary(let entries): return "{" + entries.map { "'\($0.key)': \($0.value.pythonText)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A recursive-descent parser for the Python literals of an .npy header:
/// dicts with string keys, tuples, lists, quoted strings, integers (with
/// Python 2's `L` suffix), `True`, `False` and `None`. Nothing is evaluated.
/// Duplicate dict keys are refused.
private struct PythonLiteralParser: HeaderTextParser {
    let text: [UInt8]
    /// Version 3.0 headers are UTF-8; 1.0 and 2.0 are Latin-1.
    let utf8: Bool
    let base: Int
    let context: ErrorContext
    var position = 0
    var depth = 0
    /// Deeper nesting than any header needs is refused rather than recursed into.
    static let maximumDepth = 32
    static let problemPrefix = "malformed header: "

    /// Python's whitespace: space, newline, return, tab, form feed.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0x0C
    }

    init(text: [UInt8], utf8: Bool, base: Int, context: ErrorContext) {
        self.text = text
        self.utf8 = utf8
        self.base = base
        self.context = context
    }

    /// One value filling the whole header, whitespace around it allowed.
    mutating func parseWhole() throws -> PythonValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard current == nil else { throw fail("unexpected \(currentText) after the header dict") }
        return value
    }

    private mutating func parseValue() throws -> PythonValue {
        skipWhitespace()
        guard let byte = current else { throw fail("header ends where a value was expected") }
        switch byte {
        case UInt8(ascii: "{"): return try nested { try $0.parseDictionary() }
        case UInt8(ascii: "("):
            let (items, trailingComma) = try nested { try $0.parseSequence(closing: UInt8(ascii: ")")) }
            // `(3)` is 3 in Python; only `(3,)` is a one-element tuple.
            return items.count == 1 && !trailingComma ? items[0] : .tuple(items)
        case UInt8(ascii: "["): return .list(try nested { try $0.parseSequence(closing: UInt8(ascii: "]")) }.0)
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try parseInteger())
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"):
            let start = position
            while let c = current, c == UInt8(ascii: "_") || (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z")
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { position += 1 }
            let name = String(decoding: text[start..<position], as: UTF8.self)
            switch name {
            case "True": return .boolean(true)
            case "False": return .boolean(false)
            case "None": return .none
            default:
                position = start
                throw fail("unexpected name '\(name)' (only True, False and None are allowed)")
            }
        default:
            throw fail("unexpected \(currentText) where a value was expected")
        }
    }

    /// Items up to `closing`; the current byte is the opening bracket.
    private mutating func parseSequence(closing: UInt8) throws -> ([PythonValue], trailingComma: Bool) {
        position += 1
        var items: [PythonValue] = []
        var trailingComma = false
        while true {
            skipWhitespace()
            if current == closing { position += 1; return (items, trailingComma) }
            items.append(try parseValue())
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
                trailingComma = true
            } else if current == closing {
                trailingComma = false
            } else {
                throw fail("expected ',' or '\(Character(Unicode.Scalar(closing)))', found \(currentText)")
            }
        }
    }

    private mutating func parseDictionary() throws -> PythonValue {
        position += 1
        var entries: [(key: String, value: PythonValue)] = []
        while true {
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .dictionary(entries) }
            guard current == UInt8(ascii: "'") || current == UInt8(ascii: "\"") else {
                throw fail("expected a quoted dict key, found \(currentText)")
            }
            let keyPosition = position
            let key = try parseString()
            if entries.contains(where: { $0.key == key }) {
                position = keyPosition
                throw fail("duplicate key '\(key)'")
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw fail("expected ':' after key '\(key)', found \(currentText)") }
            position += 1
            entries.append((key, try parseValue()))
            skipWhitespace()
            if current == UInt8(ascii: ",") {
                position += 1
            } else if current != UInt8(ascii: "}") {
                throw fail("expected ',' or '}' in the dict, found \(currentText)")
            }
        }
    }

    /// A single- or double-quoted string with the common backslash escapes.
    private mutating func parseString() throws -> String {
        let quote = text[position]
        let start = position
        position += 1
        var bytes: [UInt8] = []
        while true {
            guard let byte = current, byte != 0x0A else {
                position = start
                throw fail("unterminated string")
            }
            position += 1
            if byte == quote { break }
            guard byte == UInt8(ascii: "\\") else { bytes.append(byte); continue }
            guard let escaped = current else { continue }
            position += 1
            switch escaped {
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): bytes.append(escaped)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "x"):
                guard position + 2 <= text.count,
                      let value = UInt8(String(decoding: text[position..<(position + 2)], as: UTF8.self), radix: 16) else {
                    throw fail("bad \\x escape in a string")
                }
                position += 2
                bytes.append(value)
            default:
                position -= 2
                throw fail("unsupported escape '\\\(Character(Unicode.Scalar(escaped)))' in a string")
            }
        }
        if !utf8 { return String(bytes.map { Character(Unicode.Scalar($0)) }) }  // Latin-1: byte = code point
        guard let string = String(validating: bytes, as: UTF8.self) else {
            position = start
            throw fail("string is not valid UTF-8 (version 3.0 headers are UTF-8)")
        }
        return string
    }

    /// A decimal integer, optionally negative, with Python 2's optional `L` suffix.
    private mutating func parseInteger() throws -> Int {
        let start = position
        let negative = current == UInt8(ascii: "-")
        if negative { position += 1 }
        var value = 0
        var digits = 0
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 {
                position = start
                throw fail("integer too large for 64 bits")
            }
            value = sum
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw fail("expected digits after '-'") }
        if current == UInt8(ascii: "L") || current == UInt8(ascii: "l") { position += 1 }
        return negative ? -value : value
    }
}
