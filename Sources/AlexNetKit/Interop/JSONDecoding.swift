/// `Decodable` over the strict JSON value (``JSONParser``): the one way the
/// library reads its JSON documents (model specs, run configs, experiment
/// configs, checkpoint and trace metadata).
///
/// It is stricter than Foundation's `JSONDecoder` where a numerical library
/// must be: an `Int` refuses `96.0` and `1e2` (the literal must be an integer),
/// a `Bool` refuses `1`, a `Double` refuses a literal that overflows to
/// infinity, and duplicate keys never reach it (the parser refuses them). Every
/// failure becomes one ``JSONDecodingFailure`` naming the key path as a user
/// reads it (`layers[3] (conv2).kernel`: an array element that is an object
/// with a `name` shows it) and the line and column of the nearest key.
///
/// Types state their rules with the standard Codable vocabulary, so they also
/// decode from any other decoder; three small additions (below) carry what the
/// standard one lacks: ``Swift/Decoder/refuseUnknownKeys(allowed:what:)``,
/// ``Swift/KeyedDecodingContainer/decode(_:forKey:missing:)`` and
/// ``Swift/KeyedDecodingContainer/invalid(_:_:)``.
struct StrictJSONDecoder {
    /// The whole document's bytes, for line and column in errors (may be empty).
    let bytes: [UInt8]
    /// The value decoded (the document, or a part of it).
    let root: JSONValue
    /// Passed to every `init(from:)` (for example the configuration a run config is read onto).
    var userInfo: [CodingUserInfoKey: Any] = [:]

    /// Parses `bytes` (at most `maximumDepth` levels deep) to decode from.
    /// - Throws: ``JSONSyntaxError`` for invalid JSON.
    init(bytes: [UInt8], maximumDepth: Int = JSONParser.defaultMaximumDepth) throws {
        self.bytes = bytes
        root = try JSONParser.parse(bytes, maximumDepth: maximumDepth)
    }

    /// Decodes from an already parsed value; `bytes` are the document it came from (for positions).
    init(value: JSONValue, bytes: [UInt8] = []) {
        self.bytes = bytes
        root = value
    }

    /// The document as a `T`.
    /// - Throws: ``JSONDecodingFailure`` for every decoding error; errors of
    ///   other kinds that an `init(from:)` throws pass through.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try T(from: ValueDecoder(value: root, codingPath: [], userInfo: userInfo))
        } catch let error as DecodingError {
            throw failure(error)
        }
    }

    /// A settings file (a run config, an experiment) decoded from `bytes`,
    /// every failure as a ``ConfigurationError`` at `source:line:column: key`.
    static func decodeSettings<T: Decodable>(_ type: T.Type, from bytes: [UInt8], source: String,
                                             userInfo: [CodingUserInfoKey: Any]) throws -> T {
        var decoder: StrictJSONDecoder
        do {
            decoder = try StrictJSONDecoder(bytes: bytes)
        } catch let error as JSONSyntaxError {
            throw ConfigurationError(component: "\(source):\(error.line):\(error.column)", problem: "invalid JSON: \(error.problem)")
        }
        decoder.userInfo = userInfo
        do {
            return try decoder.decode(type)
        } catch let failure as JSONDecodingFailure {
            throw ConfigurationError(component: failure.location(source: source), problem: failure.problem)
        }
    }

    /// The failure a decoding error is, located in this document.
    func failure(_ error: DecodingError) -> JSONDecodingFailure {
        let path: [CodingKey]
        var problem: String
        var quotesValue = false
        switch error {
        case .keyNotFound(let key, let context):
            path = context.codingPath + [key]
            problem = context.debugDescription
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            path = context.codingPath
            problem = context.debugDescription
            quotesValue = (problem.hasPrefix("expected ") || problem.hasPrefix("must ")) && !problem.contains(", got ")
        @unknown default:
            return JSONDecodingFailure(path: "", line: nil, column: nil, problem: "\(error)")
        }
        let place = locate(path)
        if quotesValue, let value = place.value { problem += ", got \(value.quoted)" }
        let position = place.offset.map { JSONParser.lineAndColumn(of: $0, in: bytes) }
        return JSONDecodingFailure(path: place.text, line: bytes.isEmpty ? nil : position?.line,
                                   column: bytes.isEmpty ? nil : position?.column, problem: problem)
    }

    /// Walks `path` from the root: the path as a user reads it, the value
    /// there (nil where the path leaves the document), and the byte offset of
    /// the last key on the way.
    private func locate(_ path: [CodingKey]) -> (text: String, value: JSONValue?, offset: Int?) {
        var node: JSONValue? = root
        var text = ""
        var offset: Int?
        for key in path {
            if let index = key.intValue, case .array(let items)? = node {
                text += "[\(index)]"
                node = items.indices.contains(index) ? items[index] : nil
                if case .object(let members)? = node, let name = members.first(where: { $0.key == "name" }),
                   case .string(let s) = name.value, !s.isEmpty {
                    text += " (\(s))"
                }
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                if case .object(let members)? = node, let member = members.first(where: { $0.key == key.stringValue }) {
                    node = member.value
                    offset = member.offset
                } else {
                    node = nil
                }
            }
        }
        return (text, node, offset)
    }
}

/// Why a JSON document did not decode, and where: the key path and the line
/// and column of the nearest key.
struct JSONDecodingFailure: Error, Equatable {
    /// `layers[3] (conv2).kernel`; empty for the document itself.
    var path: String
    /// The line and column (from 1) of the last key on the path; nil where unknown.
    var line: Int?
    var column: Int?
    /// What is wrong, and what was expected (`expected an integer, got 96.0`).
    var problem: String

    /// `source:line:column: path`, the location errors start with (parts left
    /// out where unknown or empty).
    func location(source: String) -> String {
        var text = source
        if let line, let column { text += ":\(line):\(column)" }
        if !path.isEmpty { text += ": \(path)" }
        return text
    }
}

/// A coding key for any member name or array index.
struct JSONKey: CodingKey, Hashable {
    let stringValue: String
    let intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }

    init(intValue: Int) {
        stringValue = "\(intValue)"
        self.intValue = intValue
    }

    init(_ name: String) { self.init(stringValue: name) }
}

// MARK: - What the standard vocabulary lacks

extension Decoder {
    /// Refuses a member of this object whose key is not in `allowed` (the
    /// first in file order), naming it: `unknown key; a "conv" layer takes
    /// "name", "type", ...`. Unknown keys are errors in every file this
    /// library reads: a misspelt setting must never be ignored.
    /// - Parameter what: the object as the message names it (`a model spec`).
    func refuseUnknownKeys(allowed: [String], what: String) throws {
        let container = try container(keyedBy: JSONKey.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(.init(
                codingPath: codingPath + [key],
                debugDescription: "unknown key; \(what) takes " + allowed.map { "\"\($0)\"" }.joined(separator: ", ")))
        }
    }

    /// This object's keyed container; anything else fails with `expected`
    /// (`expected a JSON object with keys name, input, towers, layers`).
    func object<Key: CodingKey>(keyedBy type: Key.Type, expected: String) throws -> KeyedDecodingContainer<Key> {
        do {
            return try container(keyedBy: type)
        } catch DecodingError.typeMismatch(let type, let context) {
            throw DecodingError.typeMismatch(type, .init(codingPath: context.codingPath, debugDescription: expected))
        }
    }

    /// ``refuseUnknownKeys(allowed:what:)`` with every key of `Key`.
    func refuseUnknownKeys<Key: CodingKey & CaseIterable>(_ keys: Key.Type, what: String) throws {
        try refuseUnknownKeys(allowed: Key.allCases.map(\.stringValue), what: what)
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, which must be present: a missing key fails with
    /// `missing: <reason>` (why the reader needs it).
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key, missing reason: String) throws -> T {
        guard contains(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing: \(reason)"))
        }
        return try decode(type, forKey: key)
    }

    /// ``decode(_:forKey:missing:)``, where a value of the wrong type at `key`
    /// itself fails with `expected` (`expected a positive integer`) instead of
    /// the decoder's words for the type.
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key, missing reason: String, expected: String) throws -> T {
        guard contains(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing: \(reason)"))
        }
        return try rewordingMismatch(at: key, expected) { try decode(type, forKey: key) }
    }

    /// `decodeIfPresent`, where a value of the wrong type at `key` fails with `expected`.
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key, expected: String) throws -> T? {
        try rewordingMismatch(at: key, expected) { try decodeIfPresent(type, forKey: key) }
    }

    /// One of `choices`, by its JSON string; anything else fails naming them
    /// all (`expected "floor" or "ceil"`).
    func choice<T>(_ key: Key, _ choices: [(String, T)], missing reason: String) throws -> T {
        guard contains(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing: \(reason)"))
        }
        if let text = try? decode(String.self, forKey: key), let choice = choices.first(where: { $0.0 == text }) {
            return choice.1
        }
        throw invalid(key, "expected " + spelledAlternatives(choices.map { JSONValue.encode(string: $0.0) }))
    }

    private func rewordingMismatch<T>(at key: Key, _ expected: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch DecodingError.typeMismatch(let type, let context) where context.codingPath.count == codingPath.count + 1 {
            throw DecodingError.typeMismatch(type, .init(codingPath: context.codingPath, debugDescription: expected))
        }
    }

    /// An error for the value at `key`: `problem` states what was expected
    /// (`expected a positive integer`, `must be in [0, 1)`); the strict
    /// decoder adds the value found (unless `problem` already says `, got`).
    func invalid(_ key: Key, _ problem: String) -> DecodingError {
        .dataCorruptedError(forKey: key, in: self, debugDescription: problem)
    }
}

// MARK: - The decoder

/// Decodes one JSON value; nested values get decoders of their own.
private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    let userInfo: [CodingUserInfoKey: Any]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "expected an object"))
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self, members: members))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let items) = value else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "expected an array"))
        }
        return UnkeyedContainer(decoder: self, items: items)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleContainer(decoder: self) }

    /// A decoder for `child`, one step further along the path.
    func nested(_ child: JSONValue, at key: CodingKey) -> ValueDecoder {
        ValueDecoder(value: child, codingPath: codingPath + [key], userInfo: userInfo)
    }

    /// `value` as a `T`, with the strict rules for numbers and booleans.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        func mismatch(_ expected: String) -> DecodingError {
            .typeMismatch(T.self, .init(codingPath: codingPath, debugDescription: expected))
        }
        switch type {
        case is Bool.Type:
            guard case .bool(let b) = value else { throw mismatch("expected true or false") }
            return b as! T
        case is String.Type:
            guard case .string(let s) = value else { throw mismatch("expected a string") }
            return s as! T
        case is Double.Type:
            guard case .number(let text) = value, let x = Double(text), x.isFinite else { throw mismatch("expected a finite number") }
            return x as! T
        case is Float.Type:
            guard case .number(let text) = value, let x = Float(text), x.isFinite else {
                throw mismatch("expected a number within Float's range")
            }
            return x as! T
        case is JSONValue.Type:
            return value as! T
        case let integer as any FixedWidthInteger.Type:
            return try decodeInteger(integer, mismatch: mismatch) as! T
        default:
            return try T(from: self)
        }
    }

    /// An integer literal (no fraction, no exponent) that fits `type`.
    private func decodeInteger<I: FixedWidthInteger>(_ type: I.Type, mismatch: (String) -> DecodingError) throws -> I {
        guard case .number(let text) = value, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            throw mismatch("expected an integer")
        }
        guard let n = I(text) else { throw mismatch("expected an integer in \(I.min)...\(I.max)") }
        return n
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: ValueDecoder
    let members: [JSONValue.Member]

    var codingPath: [CodingKey] { decoder.codingPath }
    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    func contains(_ key: Key) -> Bool { members.contains { $0.key == key.stringValue } }

    private func child(_ key: Key) throws -> ValueDecoder {
        guard let member = members.first(where: { $0.key == key.stringValue }) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return decoder.nested(member.value, at: key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { try child(key).value == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key)
    throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }

    func superDecoder() throws -> Decoder { decoder }

    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: ValueDecoder
    let items: [JSONValue]
    var currentIndex = 0

    init(decoder: ValueDecoder, items: [JSONValue]) {
        self.decoder = decoder
        self.items = items
    }

    var codingPath: [CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private func current() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath,
                                                              debugDescription: "expected more than \(items.count) elements"))
        }
        return decoder.nested(items[currentIndex], at: JSONKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard try current().value == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try current().decode(type)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let container = try current().container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let container = try current().unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> Decoder {
        let decoder = try current()
        currentIndex += 1
        return decoder
    }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let decoder: ValueDecoder

    var codingPath: [CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value == .null }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type) }
}

extension JSONValue: Decodable {
    /// The value as it stands (the strict decoder hands over its own value,
    /// number literals and member order intact); from another decoder, what
    /// its containers give, numbers as Swift writes them.
    init(from decoder: Decoder) throws {
        if let object = try? decoder.container(keyedBy: JSONKey.self) {
            self = .object(try object.allKeys.map { (key: $0.stringValue, value: try object.decode(JSONValue.self, forKey: $0), offset: 0) })
        } else if var array = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !array.isAtEnd { items.append(try array.decode(JSONValue.self)) }
            self = .array(items)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() {
                self = .null
            } else if let b = try? single.decode(Bool.self) {
                self = .bool(b)
            } else if let x = try? single.decode(Double.self) {
                self = .number(x.description)
            } else {
                self = .string(try single.decode(String.self))
            }
        }
    }
}
