import Foundation

/// `Decodable` and `Encodable` over a flat dictionary of strings: a safetensors
/// file's `__metadata__`, a trace directory's `metadata.json`. A type states its
/// keys once (its `CodingKeys`) and reads and writes through them, so no
/// metadata is looked up or built key by key.
///
/// Every value is one string, read as the member's type asks:
/// - `String` as it stands (an empty string is a value, not an absence);
/// - integers and floating-point numbers from their decimal text, spaces
///   around allowed, finite only (`0.01`, ` 3`); `Bool` from `true` or `false`;
/// - an array of those from comma-separated text (`0.02,0.01,0.01`; an empty
///   string is the empty array);
/// - an enum with string raw values (any type that decodes one value) from the text.
///
/// A value holding a JSON document (a trace's model spec, a checkpoint's run
/// config) stays a `String` here: its owner parses it with the strict JSON
/// decoder (``StrictJSONDecoder``), which locates an error inside it by line
/// and column. Every failure is one ``StringMetadataFailure`` naming the key.
struct StringMetadataDecoder {
    /// The metadata read.
    let metadata: [String: String]

    /// Decodes from `metadata`.
    init(_ metadata: [String: String]) {
        self.metadata = metadata
    }

    /// The metadata as a `T`.
    /// - Throws: ``StringMetadataFailure`` for every decoding error; errors of
    ///   other kinds that an `init(from:)` throws pass through.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try T(from: MetadataDecoder(metadata: metadata))
        } catch let error as DecodingError {
            throw failure(error)
        }
    }

    /// The failure a decoding error is: the key (the first on its path) and the
    /// problem, with the value found appended as the JSON decoder does
    /// (`expected f32 or f64, got 'bf16'`) unless the problem already says it.
    private func failure(_ error: DecodingError) -> StringMetadataFailure {
        switch error {
        case .keyNotFound(let key, let context):
            let key = context.codingPath.first ?? key
            // The synthesised decoders' words ("No value associated with key ...") say only this.
            let problem = context.debugDescription.hasPrefix("missing") ? context.debugDescription : "missing"
            return StringMetadataFailure(key: key.stringValue, problem: problem)
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let key = context.codingPath.first?.stringValue ?? ""
            var problem = context.debugDescription
            if (problem.hasPrefix("expected ") || problem.hasPrefix("must ")) && !problem.contains(", got "),
               let value = metadata[key] {
                problem += ", got '\(value)'"
            }
            return StringMetadataFailure(key: key, problem: problem)
        @unknown default:
            return StringMetadataFailure(key: "", problem: "\(error)")
        }
    }
}

/// Why string metadata did not decode: the key and what is wrong with it.
struct StringMetadataFailure: Error, Equatable {
    /// The key whose value is missing or wrong; empty for the metadata as a whole.
    var key: String
    /// `missing`, `missing; <why it is needed>`, `expected an integer, got 'three'`.
    var problem: String
}

/// Writes an `Encodable` as a flat dictionary of strings, each value in the
/// form ``StringMetadataDecoder`` reads back: numbers in Swift's shortest
/// round-trip form, arrays comma-separated. A `nil` optional writes no key.
/// A later write of a key replaces an earlier one, so a type can write
/// metadata it keeps but does not define first and its own keys over it.
struct StringMetadataEncoder {
    /// `value` as metadata.
    /// - Throws: `EncodingError` for a value with no flat string form (an
    ///   object below the top level, a list item holding a comma).
    func encode<T: Encodable>(_ value: T) throws -> [String: String] {
        let box = MetadataBox()
        try value.encode(to: MetadataEncoder(box: box))
        return box.values
    }
}

extension KeyedDecodingContainer {
    /// The value `key` spells among `choices` (its spelling in the metadata,
    /// then the value); nil when `key` is absent. Another spelling fails with
    /// `expected a or b` (the decoder adds `, got 'x'`).
    func spelling<T>(_ key: Key, _ choices: [(String, T)]) throws -> T? {
        guard contains(key) else { return nil }
        let text = try decode(String.self, forKey: key)
        guard let choice = choices.first(where: { $0.0 == text }) else {
            throw invalid(key, "expected " + spelledAlternatives(choices.map(\.0)))
        }
        return choice.1
    }

    /// `value`, which is nil when `key` is absent: a missing key fails with
    /// ``missing(_:_:)``.
    func required<T>(_ value: T?, _ key: Key, _ why: String) throws -> T {
        guard let value else { throw missing(key, why) }
        return value
    }

    /// The error for a missing `key`: `missing; <why>` (why the reader needs it).
    func missing(_ key: Key, _ why: String) -> DecodingError {
        .keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing; \(why)"))
    }
}

// MARK: - The decoder

/// The top level: an object whose members are the metadata's keys.
private struct MetadataDecoder: Decoder {
    let metadata: [String: String]
    var codingPath: [CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(MetadataKeyedContainer<Key>(metadata: metadata))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: [], debugDescription: "metadata is keys and values, not a list"))
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(String.self, .init(codingPath: [], debugDescription: "metadata is keys and values, not one value"))
    }
}

private struct MetadataKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let metadata: [String: String]

    var codingPath: [CodingKey] { [] }
    // Sorted, so that whatever a type does with every key happens in the same order each time.
    var allKeys: [Key] { metadata.keys.sorted().compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { metadata[key.stringValue] != nil }

    private func value(_ key: Key) throws -> MetadataValueDecoder {
        guard let text = metadata[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "missing"))
        }
        return MetadataValueDecoder(text: text, codingPath: [key])
    }

    // A present value is never nil: the metadata has no null, only absent keys.
    func decodeNil(forKey key: Key) throws -> Bool { !contains(key) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try value(key).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key)
    throws -> KeyedDecodingContainer<NestedKey> {
        try value(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try value(key).unkeyedContainer() }

    func superDecoder() throws -> Decoder { MetadataDecoder(metadata: metadata) }

    func superDecoder(forKey key: Key) throws -> Decoder { try value(key) }
}

/// One value's text (or one item of a comma-separated list).
private struct MetadataValueDecoder: Decoder {
    let text: String
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        throw DecodingError.typeMismatch([String: Any].self, .init(
            codingPath: codingPath, debugDescription: "a metadata value is text, not an object (a JSON document stays a string)"))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        let items = text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return MetadataListContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { MetadataSingleContainer(decoder: self) }

    /// `text` as a `T`: numbers and booleans parsed, anything else from its own `init(from:)`.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        func mismatch(_ expected: String) -> DecodingError {
            .typeMismatch(T.self, .init(codingPath: codingPath, debugDescription: expected))
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch type {
        case is String.Type:
            return text as! T
        case is Bool.Type:
            guard trimmed == "true" || trimmed == "false" else { throw mismatch("expected true or false") }
            return (trimmed == "true") as! T
        case is Double.Type:
            guard let x = Double(trimmed), x.isFinite else { throw mismatch("expected a finite decimal number") }
            return x as! T
        case is Float.Type:
            guard let x = Float(trimmed), x.isFinite else { throw mismatch("expected a decimal number within Float's range") }
            return x as! T
        case let integer as any FixedWidthInteger.Type:
            return try decodeInteger(integer, trimmed, mismatch: mismatch) as! T
        default:
            return try T(from: self)
        }
    }

    private func decodeInteger<I: FixedWidthInteger>(_ type: I.Type, _ text: String, mismatch: (String) -> DecodingError) throws -> I {
        guard let n = I(text) else { throw mismatch("expected an integer") }
        return n
    }
}

private struct MetadataListContainer: UnkeyedDecodingContainer {
    let items: [String]
    let codingPath: [CodingKey]
    var currentIndex = 0

    init(items: [String], codingPath: [CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> MetadataValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath,
                                                              debugDescription: "expected more than \(items.count) items"))
        }
        defer { currentIndex += 1 }
        return MetadataValueDecoder(text: items[currentIndex], codingPath: codingPath + [JSONKey(intValue: currentIndex)])
    }

    mutating func decodeNil() throws -> Bool { false }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "a list item is one value"))
    }

    mutating func superDecoder() throws -> Decoder { try next() }
}

private struct MetadataSingleContainer: SingleValueDecodingContainer {
    let decoder: MetadataValueDecoder

    var codingPath: [CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type) }
}

// MARK: - The encoder

/// The metadata written so far.
private final class MetadataBox {
    var values: [String: String] = [:]
}

/// The top level. A list or a single value has no flat form: encoding one
/// is a programming error in the type (metadata types are records).
private struct MetadataEncoder: Encoder {
    let box: MetadataBox
    var codingPath: [CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(MetadataKeyedEncodingContainer<Key>(box: box))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        preconditionFailure("string metadata is keys and values: a metadata type encodes a keyed container")
    }

    func singleValueContainer() -> SingleValueEncodingContainer {
        preconditionFailure("string metadata is keys and values: a metadata type encodes a keyed container")
    }
}

private struct MetadataKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: MetadataBox
    var codingPath: [CodingKey] { [] }

    // No null in metadata: a nil value is an absent key.
    mutating func encodeNil(forKey key: Key) throws { box.values[key.stringValue] = nil }

    // An optional's nil (`encode(_:forKey:)` of an `Optional`) is an absent key too.
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.values[key.stringValue] = try MetadataValueEncoder.text(of: value, codingPath: [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
    -> KeyedEncodingContainer<NestedKey> {
        preconditionFailure("metadata '\(key.stringValue)': a value is text; write an object as JSON text")
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        preconditionFailure("metadata '\(key.stringValue)': encode the array as the value")
    }

    mutating func superEncoder() -> Encoder { MetadataEncoder(box: box) }

    mutating func superEncoder(forKey key: Key) -> Encoder {
        preconditionFailure("metadata '\(key.stringValue)': encode the value itself")
    }
}

/// What one value becomes: one text, a list of texts (written comma-separated), or nil.
private final class ValueSlot {
    var text: String?
    var items: [String]?
    var isNil = false
}

private struct MetadataValueEncoder: Encoder {
    let slot: ValueSlot
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The metadata text of `value`: the form ``MetadataValueDecoder`` reads; nil for an optional's nil.
    static func text<T: Encodable>(of value: T, codingPath: [CodingKey]) throws -> String? {
        switch value {
        case let text as String: return text
        case let b as Bool: return b ? "true" : "false"
        case let x as Double: return x.description
        case let x as Float: return x.description
        case let n as any FixedWidthInteger: return "\(n)"
        default:
            let slot = ValueSlot()
            try value.encode(to: MetadataValueEncoder(slot: slot, codingPath: codingPath))
            if let items = slot.items { return items.joined(separator: ",") }
            guard let text = slot.text else {
                if slot.isNil { return nil }
                throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "the value encodes nothing"))
            }
            return text
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        preconditionFailure("a metadata value is text; write an object as JSON text")
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        slot.items = slot.items ?? []
        return MetadataListEncodingContainer(slot: slot, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { MetadataSingleEncodingContainer(slot: slot, codingPath: codingPath) }
}

private struct MetadataListEncodingContainer: UnkeyedEncodingContainer {
    let slot: ValueSlot
    let codingPath: [CodingKey]
    var count: Int { slot.items?.count ?? 0 }

    mutating func encodeNil() throws {
        throw EncodingError.invalidValue(Optional<Int>.none as Any, .init(codingPath: codingPath, debugDescription: "a list item cannot be nil"))
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [JSONKey(intValue: count)]
        guard let text = try MetadataValueEncoder.text(of: value, codingPath: path) else { try encodeNil(); return }
        // A comma would split the item in two when read back.
        guard !text.contains(",") else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "a list item cannot hold a comma"))
        }
        slot.items!.append(text)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        preconditionFailure("a metadata list holds values, not objects")
    }

    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        preconditionFailure("a metadata list holds values, not lists")
    }

    mutating func superEncoder() -> Encoder { preconditionFailure("a metadata list holds values") }
}

private struct MetadataSingleEncodingContainer: SingleValueEncodingContainer {
    let slot: ValueSlot
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { slot.isNil = true }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if let text = try MetadataValueEncoder.text(of: value, codingPath: codingPath) { slot.text = text } else { slot.isNil = true }
    }
}
