/// `Encodable` into the strict JSON value, and the text the library writes:
/// the one way model specs, run configs and metadata become JSON.
///
/// Members keep the order in which `encode(to:)` writes them (files read in a
/// fixed order, and a written file diffs well against the last one); numbers
/// are written in Swift's shortest round-trip form, so reading the text gives
/// back the same `Double`; a non-finite number (which JSON cannot hold) is
/// written as `null`, which the strict readers refuse where a number belongs.
struct StrictJSONEncoder {
    /// Passed to every `encode(to:)`.
    var userInfo: [CodingUserInfoKey: Any] = [:]

    /// `value` as a JSON value.
    /// - Throws: what the value's `encode(to:)` throws (an `EncodingError` for a
    ///   value that writes nothing).
    func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let node = EncodingNode()
        try value.encode(to: ValueEncoder(node: node, codingPath: [], userInfo: userInfo))
        guard let json = node.json else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "the value encodes nothing"))
        }
        return json
    }
}

extension KeyedEncodingContainer {
    /// Writes each value at its key, in order: a record's members as one
    /// list (`nil` optionals as the encoder writes nil: `null` in JSON, which
    /// keeps every key in the line; no key in string metadata).
    mutating func encode(_ members: [(Key, any Encodable)]) throws {
        for (key, value) in members { try encode(value, forKey: key) }
    }
}

extension JSONValue {
    /// Which arrays ``formatted(expandedLevels:oneLineArrays:)`` keeps on one
    /// line at any level (an empty array always is `[]`).
    enum OneLineArrays {
        /// Arrays holding no object or array: a spec's shapes, a run's seeds, lists of names.
        case withoutContainers
        /// Arrays of numbers only; an array of strings is written one a line
        /// (the oracle report's shapes stay short, its notes and tensor names read down the page).
        case ofNumbers

        /// Whether an array of `items` is written on one line.
        func keepsOnOneLine(_ items: [JSONValue]) -> Bool {
            switch self {
            case .withoutContainers: return !items.contains(where: \.isContainer)
            case .ofNumbers: return items.allSatisfy { if case .number = $0 { return true } else { return false } }
            }
        }
    }

    /// The value as indented text: containers at the top `expandedLevels`
    /// levels are written one member (or element) per line, indented by two
    /// spaces a level; an array `oneLineArrays` names (by default one of
    /// numbers or strings) always stays on one line, and so does everything
    /// deeper (as ``compactText``). A model spec uses 2 levels: one layer a line.
    ///
    ///     {
    ///       "input": [1, 28, 28],
    ///       "layers": [
    ///         {"name": "conv1", "type": "conv", ...},
    ///         ...
    ///       ]
    ///     }
    func formatted(expandedLevels: Int, oneLineArrays: OneLineArrays = .withoutContainers) -> String {
        formatted(level: 0, expandedLevels: expandedLevels, oneLineArrays: oneLineArrays)
    }

    private func formatted(level: Int, expandedLevels: Int, oneLineArrays: OneLineArrays) -> String {
        let inner = String(repeating: "  ", count: level + 1)
        let outer = String(repeating: "  ", count: level)
        guard level < expandedLevels else { return compactText }
        switch self {
        case .object(let members) where !members.isEmpty:
            let lines = members.map { inner + JSONValue.encode(string: $0.key) + ": "
                + $0.value.formatted(level: level + 1, expandedLevels: expandedLevels, oneLineArrays: oneLineArrays) }
            return "{\n" + lines.joined(separator: ",\n") + "\n" + outer + "}"
        case .array(let items) where !oneLineArrays.keepsOnOneLine(items):
            let lines = items.map { inner + $0.formatted(level: level + 1, expandedLevels: expandedLevels, oneLineArrays: oneLineArrays) }
            return "[\n" + lines.joined(separator: ",\n") + "\n" + outer + "]"
        default:
            return compactText
        }
    }

    fileprivate var isContainer: Bool {
        switch self {
        case .object, .array: return true
        default: return false
        }
    }
}

// MARK: - The encoder

/// What one encoded value has become so far; containers fill it in place.
private final class EncodingNode {
    enum Content {
        case empty
        case leaf(JSONValue)
        case object([(key: String, node: EncodingNode)])
        case array([EncodingNode])
    }

    var content = Content.empty

    var json: JSONValue? {
        switch content {
        case .empty: return nil
        case .leaf(let value): return value
        case .object(let members):
            return .object(members.map { (key: $0.key, value: $0.node.json ?? .null, offset: 0) })
        case .array(let items): return .array(items.map { $0.json ?? .null })
        }
    }

    /// The member `key` of this object (made an object if it was empty), replacing an earlier one of the same key.
    func member(_ key: String) -> EncodingNode {
        var members: [(key: String, node: EncodingNode)] = []
        if case .object(let existing) = content { members = existing }
        let node = EncodingNode()
        if let index = members.firstIndex(where: { $0.key == key }) {
            members[index].node = node
        } else {
            members.append((key, node))
        }
        content = .object(members)
        return node
    }

    /// A new last element of this array (made an array if it was empty).
    func append() -> EncodingNode {
        var items: [EncodingNode] = []
        if case .array(let existing) = content { items = existing }
        let node = EncodingNode()
        items.append(node)
        content = .array(items)
        return node
    }

    func makeObject() { if case .object = content {} else { content = .object([]) } }
    func makeArray() { if case .array = content {} else { content = .array([]) } }

    var count: Int {
        if case .array(let items) = content { return items.count }
        return 0
    }
}

private struct ValueEncoder: Encoder {
    let node: EncodingNode
    let codingPath: [CodingKey]
    let userInfo: [CodingUserInfoKey: Any]

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.makeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(encoder: self))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        node.makeArray()
        return UnkeyedContainer(encoder: self)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleContainer(encoder: self) }

    func nested(_ child: EncodingNode, at key: CodingKey) -> ValueEncoder {
        ValueEncoder(node: child, codingPath: codingPath + [key], userInfo: userInfo)
    }

    /// Writes `value` into this encoder's node: numbers, strings and booleans as leaves, anything else through its `encode(to:)`.
    func encode<T: Encodable>(_ value: T) throws {
        switch value {
        case let b as Bool: node.content = .leaf(.bool(b))
        case let s as String: node.content = .leaf(.string(s))
        case let x as Double: node.content = .leaf(x.isFinite ? .number(x.description) : .null)
        case let x as Float: node.content = .leaf(x.isFinite ? .number(x.description) : .null)
        case let n as any FixedWidthInteger: node.content = .leaf(.number("\(n)"))
        default: try value.encode(to: self)
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: ValueEncoder

    var codingPath: [CodingKey] { encoder.codingPath }

    func encodeNil(forKey key: Key) { encoder.node.member(key.stringValue).content = .leaf(.null) }

    func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try encoder.nested(encoder.node.member(key.stringValue), at: key).encode(value)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
    -> KeyedEncodingContainer<NestedKey> {
        encoder.nested(encoder.node.member(key.stringValue), at: key).container(keyedBy: keyType)
    }

    func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        encoder.nested(encoder.node.member(key.stringValue), at: key).unkeyedContainer()
    }

    func superEncoder() -> Encoder { encoder.nested(encoder.node.member("super"), at: JSONKey("super")) }

    func superEncoder(forKey key: Key) -> Encoder { encoder.nested(encoder.node.member(key.stringValue), at: key) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: ValueEncoder

    var codingPath: [CodingKey] { encoder.codingPath }
    var count: Int { encoder.node.count }

    private func next() -> ValueEncoder {
        let index = count
        return encoder.nested(encoder.node.append(), at: JSONKey(intValue: index))
    }

    func encodeNil() { next().node.content = .leaf(.null) }

    func encode<T: Encodable>(_ value: T) throws { try next().encode(value) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next().container(keyedBy: keyType)
    }

    func nestedUnkeyedContainer() -> UnkeyedEncodingContainer { next().unkeyedContainer() }

    func superEncoder() -> Encoder { next() }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let encoder: ValueEncoder

    var codingPath: [CodingKey] { encoder.codingPath }

    func encodeNil() { encoder.node.content = .leaf(.null) }

    func encode<T: Encodable>(_ value: T) throws { try encoder.encode(value) }
}
