/// A JSON value as ``JSONParser`` reads it. Objects keep their members in file
/// order; numbers keep their literal text, so `5`, `5.0` and `"5"` stay
/// distinguishable and a reader can refuse a fraction where it needs an integer.
///
/// The model spec reader uses this small strict parser instead of Foundation's
/// `JSONSerialization`, which on Linux reports only a character offset, keeps the
/// last of two equal keys without a word, and cannot tell `true` from `1`.
enum JSONValue: Equatable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

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

    /// `s` as a JSON string literal, quotes included.
    static func encode(string s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes whose errors say where:
/// `source:line:column` (column in Unicode scalars, both from 1).
///
/// Refuses what RFC 8259 refuses (trailing commas, comments, single quotes,
/// leading zeros, NaN, control characters in strings, lone surrogates, invalid
/// UTF-8), and also duplicate keys within one object and nesting deeper than
/// ``maximumDepth`` (so hostile input cannot overflow the stack). A UTF-8 byte
/// order mark at the start is skipped.
struct JSONParser {
    /// Deepest nesting of arrays and objects accepted.
    static let maximumDepth = 200

    private let bytes: [UInt8]
    private let source: String
    private var index = 0
    private var depth = 0

    /// Parses one JSON document (a value with only whitespace around it).
    /// - Throws: ``ModelSpecError`` with location `source:line:column` and the problem.
    static func parse(_ bytes: [UInt8], source: String) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes, source: source)
        try parser.validateUTF8()
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.index = 3 }
        parser.skipWhitespace()
        guard parser.index < bytes.count else { throw parser.fail("invalid JSON: the document is empty") }
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else {
            throw parser.fail("invalid JSON: unexpected \(parser.describeCurrent()) after the document's value")
        }
        return value
    }

    private init(bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    // MARK: Errors and positions

    private func fail(_ problem: String, at position: Int? = nil) -> ModelSpecError {
        let (line, column) = lineAndColumn(of: position ?? index)
        return ModelSpecError(location: "\(source):\(line):\(column)", problem: problem)
    }

    private func lineAndColumn(of position: Int) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in bytes[..<min(position, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // not a UTF-8 continuation byte: a new scalar
                column += 1
            }
        }
        return (line, column)
    }

    private func describeCurrent() -> String {
        guard index < bytes.count else { return "end of file" }
        let byte = bytes[index]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
    }

    private func validateUTF8() throws {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput: return
            case .error:
                throw ModelSpecError(location: "\(source): byte \(offset)",
                                     problem: "invalid JSON: the file is not valid UTF-8 at byte offset \(offset)")
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
        guard index < bytes.count else { throw fail("invalid JSON: expected a value, found end of file") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        default: throw fail("invalid JSON: expected a value, found \(describeCurrent())")
        }
    }

    private mutating func expectWord(_ word: String) throws {
        let start = index
        for byte in word.utf8 {
            guard index < bytes.count, bytes[index] == byte else {
                throw fail("invalid JSON: expected a value (true, false, null, a number, a string, an array or "
                           + "an object)", at: start)
            }
            index += 1
        }
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= JSONParser.maximumDepth else {
            throw fail("invalid JSON: nesting deeper than \(JSONParser.maximumDepth) levels")
        }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw fail("invalid JSON: expected a key in double quotes, found \(describeCurrent())")
            }
            let keyStart = index
            let key = try parseString()
            guard seen.insert(key).inserted else {
                throw fail("invalid JSON: duplicate key \(JSONValue.encode(string: key)) in one object", at: keyStart)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw fail("invalid JSON: expected ':' after the key \(JSONValue.encode(string: key)), found \(describeCurrent())")
            }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            guard index < bytes.count else { throw fail("invalid JSON: unterminated object, found end of file") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                    throw fail("invalid JSON: trailing comma before '}'")
                }
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            throw fail("invalid JSON: expected ',' or '}' after an object member, found \(describeCurrent())")
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
            guard index < bytes.count else { throw fail("invalid JSON: unterminated array, found end of file") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                    throw fail("invalid JSON: trailing comma before ']'")
                }
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            throw fail("invalid JSON: expected ',' or ']' after an array element, found \(describeCurrent())")
        }
    }

    private func isDigit(_ i: Int) -> Bool {
        i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")
    }

    private mutating func parseNumber() throws -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw fail("invalid JSON: expected a digit after '-'") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { throw fail("invalid JSON: a number may not have leading zeros", at: start) }
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw fail("invalid JSON: expected a digit after the decimal point") }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw fail("invalid JSON: expected a digit in the exponent") }
            while isDigit(index) { index += 1 }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("invalid JSON: \\u needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("invalid JSON: \\u needs four hex digits")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    private mutating func parseString() throws -> String {
        let start = index
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail("invalid JSON: unterminated string", at: start) }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw fail("invalid JSON: unterminated string", at: start) }
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
                            throw fail("invalid JSON: a high surrogate \\u escape must be followed by a low one")
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else {
                            throw fail("invalid JSON: a high surrogate \\u escape must be followed by a low one")
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw fail("invalid JSON: a lone low surrogate \\u escape")
                    }
                    // Every code point that is not a surrogate is a valid scalar.
                    utf8.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
                default:
                    throw fail("invalid JSON: unknown escape '\\\(Character(Unicode.Scalar(escape)))' in a string",
                               at: index - 2)
                }
            default:
                guard byte >= 0x20 else {
                    throw fail("invalid JSON: a control character (byte 0x\(String(byte, radix: 16))) inside a string; "
                               + "write it as an escape")
                }
                utf8.append(byte)
                index += 1
            }
        }
    }
}
