/// A JSON value as ``JSONParser`` reads it. Objects keep their members in file
/// order, each with the byte offset of its key; numbers keep their literal text,
/// so `5`, `5.0` and `"5"` stay distinguishable and a reader can refuse a
/// fraction where it needs an integer.
///
/// The library's two JSON readers share this type and its parser: the
/// safetensors header (``Safetensors``) and JSON model specs
/// (`ModelSpec.parse(json:source:)`). They use this small strict parser instead
/// of Foundation's `JSONSerialization`, which on Linux reports only a character
/// offset, keeps the last of two equal keys without a word, and cannot tell
/// `true` from `1`.
enum JSONValue: Equatable {
    /// One member of an object: the key, its value, and the byte offset of the
    /// key's opening quote in the parsed bytes (for error messages).
    typealias Member = (key: String, value: JSONValue, offset: Int)

    case object([Member])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// Equal as JSON: the same members in the same order, the same number text;
    /// where the keys stood in a file does not count.
    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.array(let a), .array(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.bool(let a), .bool(let b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

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

    /// The value as an error message quotes it: strings in quotes, numbers as
    /// written, arrays compactly, objects as `an object`; at most about 40 characters.
    var quoted: String {
        let text: String
        switch self {
        case .object(let members): text = members.isEmpty ? "{}" : "an object"
        case .array(let items): text = "[" + items.map(\.quoted).joined(separator: ", ") + "]"
        case .string(let s): text = JSONValue.encode(string: s)
        case .number(let n): text = n
        case .bool(let b): text = b ? "true" : "false"
        case .null: text = "null"
        }
        return text.count > 40 ? String(text.prefix(37)) + "..." : text
    }

    /// The value as compact JSON on one line (`{"a": 1, "b": [true, null]}`),
    /// numbers in their literal text, strings as ``encode(string:)`` writes them.
    var compactText: String {
        switch self {
        case .object(let members): return "{" + members.map { JSONValue.encode(string: $0.key) + ": " + $0.value.compactText }.joined(separator: ", ") + "}"
        case .array(let items): return "[" + items.map(\.compactText).joined(separator: ", ") + "]"
        case .string(let s): return JSONValue.encode(string: s)
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        }
    }

    /// `s` as a JSON string literal, quotes included, escaped as serde_json
    /// (the safetensors reference writer) does: `"`, `\` and control characters
    /// escaped (`\n`-style where JSON has a short form, else `\u00xx`),
    /// everything else (non-ASCII included) as UTF-8.
    static func encode(string s: String) -> String {
        let escaped = TextEscaping.escape(s) { scalar -> String? in
            switch scalar {
            case "\"": return "\\\""
            case "\\": return "\\\\"
            case "\n": return "\\n"
            case "\r": return "\\r"
            case "\t": return "\\t"
            case "\u{08}": return "\\b"
            case "\u{0C}": return "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: return nil
            }
        }
        return "\"" + escaped + "\""
    }
}

/// Invalid JSON: where and what. ``JSONParser`` throws it; each reader wraps it
/// into its own error (``TensorFileError`` with the file's byte offset,
/// ``ModelSpecError`` with `file:line:column`), so users never see it as is.
struct JSONSyntaxError: Error, Equatable, CustomStringConvertible {
    /// What is wrong. ``description`` words it; a reader may word a case its own way.
    enum Problem: Equatable, CustomStringConvertible {
        /// The bytes are not UTF-8 (at the error's offset).
        case invalidUTF8
        /// Nothing but whitespace.
        case emptyDocument
        /// No value where one must be; `found` as ``JSONParser`` describes a byte.
        case expectedValue(found: String)
        /// A word that is not `true`, `false` or `null`.
        case misspelledLiteral
        /// Something after the document's one value.
        case textAfterValue(found: String)
        /// An object member that does not start with a string key.
        case expectedKey(found: String)
        /// A key that appeared before in the same object.
        case duplicateKey(String)
        /// No `:` after a key.
        case expectedColon(key: String, found: String)
        /// Neither `,` nor the closing bracket (`}` or `]`) after a member or element.
        case expectedCommaOrClose(Character, found: String)
        /// A `,` right before the closing bracket.
        case trailingComma(before: Character)
        /// Arrays and objects nested deeper than the parser's limit.
        case tooDeep(limit: Int)
        /// A number that breaks JSON's grammar; the text says how.
        case malformedNumber(String)
        /// A string that breaks JSON's grammar; the text says how.
        case malformedString(String)

        var description: String {
            switch self {
            case .invalidUTF8: return "not valid UTF-8"
            case .emptyDocument: return "the document is empty"
            case .expectedValue(let found): return "unexpected \(found) where a value was expected"
            case .misspelledLiteral:
                return "expected a value (true, false, null, a number, a string, an array or an object)"
            case .textAfterValue(let found): return "unexpected \(found) after the document's value"
            case .expectedKey(let found): return "expected a key in double quotes, found \(found)"
            case .duplicateKey(let key): return "duplicate key \(JSONValue.encode(string: key)) in one object"
            case .expectedColon(let key, let found):
                return "expected ':' after key \(JSONValue.encode(string: key)), found \(found)"
            case .expectedCommaOrClose(let close, let found):
                return "expected ',' or '\(close)' after \(close == "}" ? "an object member" : "an array element"), "
                    + "found \(found)"
            case .trailingComma(let close): return "trailing comma before '\(close)'"
            case .tooDeep(let limit): return "nesting deeper than \(limit) levels"
            case .malformedNumber(let how), .malformedString(let how): return how
            }
        }
    }

    /// Byte offset of the problem in the parsed bytes, from 0.
    var offset: Int
    /// The line of `offset`, from 1 (a line ends at `\n`).
    var line: Int
    /// The column of `offset` in Unicode scalars, from 1.
    var column: Int
    var problem: Problem

    /// `line 3, column 7 (byte 40): duplicate key "name" in one object`.
    var description: String { "line \(line), column \(column) (byte \(offset)): \(problem)" }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes whose errors say where: the
/// byte offset, and the line and column (in Unicode scalars, both from 1).
///
/// Refuses what RFC 8259 refuses (trailing commas, comments, single quotes,
/// leading zeros, NaN, control characters in strings, lone surrogates, invalid
/// UTF-8), and also duplicate keys within one object and nesting deeper than a
/// limit (``defaultMaximumDepth`` unless the caller passes another), so hostile
/// input cannot overflow the stack. A UTF-8 byte order mark at the start is skipped.
struct JSONParser {
    /// The nesting limit for arrays and objects unless a caller passes another:
    /// 64 levels. Real documents nest far less (a safetensors header 3 levels,
    /// a model spec 4); the limit only keeps hostile input off the stack.
    static let defaultMaximumDepth = 64

    private let bytes: [UInt8]
    private let maximumDepth: Int
    private var index = 0
    private var depth = 0

    /// Parses one JSON document (a value with only whitespace around it).
    /// - Parameters:
    ///   - bytes: the document, UTF-8.
    ///   - maximumDepth: the deepest nesting of arrays and objects accepted.
    /// - Throws: ``JSONSyntaxError`` with the position and the problem.
    static func parse(_ bytes: [UInt8], maximumDepth: Int = defaultMaximumDepth) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth)
        try parser.validateUTF8()
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.index = 3 }
        parser.skipWhitespace()
        guard parser.index < bytes.count else { throw parser.fail(.emptyDocument) }
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.fail(.textAfterValue(found: parser.describeCurrent())) }
        return value
    }

    private init(bytes: [UInt8], maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    // MARK: Errors and positions

    private func fail(_ problem: JSONSyntaxError.Problem, at position: Int? = nil) -> JSONSyntaxError {
        let offset = min(position ?? index, bytes.count)
        let (line, column) = JSONParser.lineAndColumn(of: offset, in: bytes)
        return JSONSyntaxError(offset: offset, line: line, column: column, problem: problem)
    }

    /// The line and column (in Unicode scalars, both from 1) of byte `offset` in `bytes`.
    static func lineAndColumn(of offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for byte in bytes[..<min(offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // not a UTF-8 continuation byte: a new scalar
                column += 1
            }
        }
        return (line, column)
    }

    /// The byte at the cursor for an error message: `'x'`, `byte 0xff` or `end of input`.
    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of input" }
        let byte = bytes[index]
        return (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private func validateUTF8() throws {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput: return
            case .error: throw fail(.invalidUTF8, at: offset)
            }
        }
    }

    // MARK: Grammar

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard index < bytes.count else { throw fail(.expectedValue(found: describeCurrent())) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        default: throw fail(.expectedValue(found: describeCurrent()))
        }
    }

    private mutating func expectWord(_ word: String) throws {
        let start = index
        for byte in word.utf8 {
            guard index < bytes.count, bytes[index] == byte else { throw fail(.misspelledLiteral, at: start) }
            index += 1
        }
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= maximumDepth else { throw fail(.tooDeep(limit: maximumDepth)) }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1  // {
        var members: [JSONValue.Member] = []
        var seen = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail(.expectedKey(found: describeCurrent()))
            }
            let keyStart = index
            let key = try parseString()
            guard seen.insert(key).inserted else { throw fail(.duplicateKey(key), at: keyStart) }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail(.expectedColon(key: key, found: describeCurrent()))
            }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue(), keyStart))
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") { throw fail(.trailingComma(before: "}")) }
                continue
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            throw fail(.expectedCommaOrClose("}", found: describeCurrent()))
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { throw fail(.trailingComma(before: "]")) }
                continue
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            throw fail(.expectedCommaOrClose("]", found: describeCurrent()))
        }
    }

    private func isDigit(_ i: Int) -> Bool {
        i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
    }

    /// The number's text, checked against JSON's grammar.
    private mutating func parseNumber() throws -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw fail(.malformedNumber("expected a digit after '-'")) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { throw fail(.malformedNumber("a number may not have leading zeros"), at: start) }
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw fail(.malformedNumber("expected a digit after the decimal point")) }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw fail(.malformedNumber("expected a digit in the exponent")) }
            while isDigit(index) { index += 1 }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail(.malformedString("\\u needs four hex digits")) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail(.malformedString("\\u needs four hex digits"))
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    /// A string; the bytes were checked to be UTF-8 already.
    private mutating func parseString() throws -> String {
        let start = index
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail(.malformedString("unterminated string"), at: start) }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw fail(.malformedString("unterminated string"), at: start) }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else {
                            throw fail(.malformedString("a high surrogate \\u escape must be followed by a low one"))
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            throw fail(.malformedString("a high surrogate \\u escape must be followed by a low one"))
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw fail(.malformedString("a lone low surrogate \\u escape"))
                    }
                    // Every code point that is not a surrogate is a valid scalar.
                    utf8.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
                default:
                    throw fail(.malformedString("unknown escape '\\\(Character(Unicode.Scalar(escape)))' in a string"),
                               at: index - 2)
                }
            default:
                guard byte >= 0x20 else {
                    throw fail(.malformedString("control character 0x\(String(byte, radix: 16)) inside a string; "
                                                + "write it as an escape"))
                }
                utf8.append(byte)
                index += 1
            }
        }
    }
}
