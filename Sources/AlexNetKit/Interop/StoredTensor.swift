/// The element types the tensor files (.npy, .npz, safetensors) may hold and
/// this library reads and writes.
///
/// Half precision (F16, BF16), 8-bit floats, complex numbers, strings and
/// Python objects are refused by every reader with an error naming the type.
public enum DType: String, CaseIterable, Sendable, CustomStringConvertible {
    /// IEEE binary32: numpy `<f4`, safetensors `F32`.
    case float32
    /// IEEE binary64: numpy `<f8`, safetensors `F64`.
    case float64
    /// numpy `|i1`, safetensors `I8`.
    case int8
    /// numpy `|u1`, safetensors `U8`.
    case uint8
    /// numpy `<i2`, safetensors `I16`.
    case int16
    /// numpy `<u2`, safetensors `U16`.
    case uint16
    /// numpy `<i4`, safetensors `I32`.
    case int32
    /// numpy `<u4`, safetensors `U32`.
    case uint32
    /// numpy `<i8`, safetensors `I64`.
    case int64
    /// numpy `<u8`, safetensors `U64`.
    case uint64
    /// One byte per element, 0 or 1: numpy `|b1`, safetensors `BOOL`.
    case bool

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .int8, .uint8, .bool: return 1
        case .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// True for `float32` and `float64`.
    public var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    /// numpy's type code without the byte-order character: `"f4"`, `"i1"`, `"b1"`.
    var numpyCode: String {
        switch self {
        case .float32: return "f4"
        case .float64: return "f8"
        case .int8: return "i1"
        case .uint8: return "u1"
        case .int16: return "i2"
        case .uint16: return "u2"
        case .int32: return "i4"
        case .uint32: return "u4"
        case .int64: return "i8"
        case .uint64: return "u8"
        case .bool: return "b1"
        }
    }

    /// The dtype with numpy type code `code` (`"f4"`, `"b1"`, ...), if supported.
    init?(numpyCode code: String) {
        guard let match = DType.allCases.first(where: { $0.numpyCode == code }) else { return nil }
        self = match
    }

    /// The `descr` numpy writes for this type: `"<f4"`, or `"|u1"` for one-byte types.
    public var numpyDescr: String { (itemSize == 1 ? "|" : "<") + numpyCode }

    /// The safetensors name: `"F32"`, `"I64"`, `"BOOL"`, ...
    public var safetensorsName: String {
        self == .bool ? "BOOL" : numpyCode.prefix(1).uppercased() + String(itemSize * 8)
    }

    /// The dtype with safetensors name `name` (`"F32"`, `"BOOL"`, ...), if supported.
    public init?(safetensorsName name: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsName == name }) else { return nil }
        self = match
    }

    /// Position in the safetensors reference implementation's `Dtype` enum, which
    /// lists types in increasing alignment. Its writer orders tensors by this,
    /// descending, then by name, so every tensor's data is aligned to its item size.
    var safetensorsRank: Int {
        switch self {
        case .bool: return 0
        case .uint8: return 1
        case .int8: return 2
        case .int16: return 5
        case .uint16: return 6
        case .int32: return 9
        case .uint32: return 10
        case .float32: return 11
        case .float64: return 12
        case .int64: return 13
        case .uint64: return 14
        }
    }

    /// `"float32"`, `"int64"`, ...
    public var description: String { rawValue }
}

/// The fixed-width integer types a ``StoredTensor`` can be built from.
public protocol StoredInteger: FixedWidthInteger {
    /// The file dtype that holds this type's values.
    static var storedDType: DType { get }
}

extension Int8: StoredInteger { public static var storedDType: DType { .int8 } }
extension UInt8: StoredInteger { public static var storedDType: DType { .uint8 } }
extension Int16: StoredInteger { public static var storedDType: DType { .int16 } }
extension UInt16: StoredInteger { public static var storedDType: DType { .uint16 } }
extension Int32: StoredInteger { public static var storedDType: DType { .int32 } }
extension UInt32: StoredInteger { public static var storedDType: DType { .uint32 } }
extension Int64: StoredInteger { public static var storedDType: DType { .int64 } }
extension UInt64: StoredInteger { public static var storedDType: DType { .uint64 } }

/// A tensor as a file stores it: a name, an element type, a shape and the raw
/// elements, row-major and little-endian, whatever the file's own byte order
/// and layout were (readers convert).
///
/// Readers return these; ``floatTensor(as:convertingIntegers:)`` and
/// ``integers()`` turn them into values, refusing conversions that would lose
/// information unless asked. Writers take them; the initialisers build them
/// from `Tensor<Float>`, `Tensor<Double>` and integer or boolean arrays.
public struct StoredTensor: Equatable, Sendable, CustomStringConvertible {
    /// The tensor's name: the safetensors key, the .npz member without `.npy`,
    /// or the .npy file's name without its directory and `.npy`.
    public var name: String
    /// The element type.
    public let dtype: DType
    /// The dimensions, outermost first (`[]` for a scalar).
    public let shape: Shape
    /// `shape.count * dtype.itemSize` bytes: the elements, row-major, little-endian.
    public let bytes: [UInt8]
    /// The file the tensor was read from (empty when built in memory). Used in
    /// error messages only; not compared by `==`.
    public var source: String

    /// Wraps raw little-endian, row-major bytes.
    /// - Throws: ``ShapeError`` if `bytes.count` is not `shape.count * dtype.itemSize`.
    public init(name: String, dtype: DType, shape: Shape, bytes: [UInt8], source: String = "") throws {
        guard let expected = checkedByteCount(dims: shape.dims, itemSize: dtype.itemSize), expected == bytes.count else {
            let wanted = checkedByteCount(dims: shape.dims, itemSize: dtype.itemSize).map { "\($0) bytes" } ?? "more bytes than Int can count"
            throw ShapeError(operation: "StoredTensor '\(name)'", argument: "bytes",
                             expected: "\(wanted) (\(dtype), shape \(shape))", actual: Shape([bytes.count]))
        }
        self.init(unchecked: name, dtype: dtype, shape: shape, bytes: bytes, source: source)
    }

    /// For readers that have already checked the byte count.
    init(unchecked name: String, dtype: DType, shape: Shape, bytes: [UInt8], source: String) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
        self.source = source
    }

    /// A `float32` (from `Tensor<Float>`) or `float64` (from `Tensor<Double>`) tensor, bit for bit.
    public init<T: TensorElement>(name: String, tensor: Tensor<T>) {
        let dtype: DType
        switch T.self {
        case is Float.Type: dtype = .float32
        case is Double.Type: dtype = .float64
        default: preconditionFailure("StoredTensor: no file dtype for element type \(T.self)")
        }
        let bytes: [UInt8] = tensor.withUnsafeBufferPointer { buffer in
            #if _endian(little)
            return Array(UnsafeRawBufferPointer(buffer))
            #else
            var out: [UInt8] = []
            out.reserveCapacity(buffer.count * MemoryLayout<T>.size)
            for value in buffer {
                if dtype == .float32 { out.appendLittleEndian(UInt32(truncatingIfNeeded: value.rawBits)) }
                else { out.appendLittleEndian(value.rawBits) }
            }
            return out
            #endif
        }
        self.init(unchecked: name, dtype: dtype, shape: tensor.shape, bytes: bytes, source: "")
    }

    /// An integer tensor of `I`'s dtype (`[Int64]` gives `int64`, `[UInt8]` gives `uint8`, ...).
    /// - Throws: ``ShapeError`` if `integers.count` is not `shape.count`.
    public init<I: StoredInteger>(name: String, shape: Shape, integers: [I]) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(integers.count * MemoryLayout<I>.size)
        for value in integers { bytes.appendLittleEndian(value) }
        try self.init(name: name, dtype: I.storedDType, shape: shape, bytes: bytes)
    }

    /// A `bool` tensor (one byte per element, 0 or 1), e.g. a mask.
    /// - Throws: ``ShapeError`` if `bools.count` is not `shape.count`.
    public init(name: String, shape: Shape, bools: [Bool]) throws {
        try self.init(name: name, dtype: .bool, shape: shape, bytes: bools.map { $0 ? 1 : 0 })
    }

    /// Equal when name, dtype, shape and bytes are; `source` is not compared.
    public static func == (lhs: StoredTensor, rhs: StoredTensor) -> Bool {
        lhs.name == rhs.name && lhs.dtype == rhs.dtype && lhs.shape == rhs.shape && lhs.bytes == rhs.bytes
    }

    /// `conv1.weight: float32 [96, 3, 11, 11]`.
    public var description: String { "\(name): \(dtype) \(shape)" }

    private func error(_ problem: String) -> TensorFileError {
        TensorFileError(file: source, tensor: name, problem: problem)
    }

    // MARK: Conversions

    /// The elements as a float tensor of the same shape.
    ///
    /// - `float32` to `Tensor<Float>` and `float64` to `Tensor<Double>`: bit for bit.
    /// - `float32` to `Tensor<Double>`: widened, exactly.
    /// - `float64` to `Tensor<Float>`: refused; call ``narrowedToFloat()`` to round on purpose.
    /// - integers and `bool`: refused unless `convertingIntegers` is true; then
    ///   each value is rounded to the nearest float (exact up to 2^24 for Float, 2^53 for Double).
    /// - Throws: ``TensorFileError`` naming the tensor and both types.
    public func floatTensor<T: TensorElement>(as type: T.Type = T.self, convertingIntegers: Bool = false) throws -> Tensor<T> {
        let values: [T]
        switch (dtype, T.self) {
        case (.float32, is Float.Type):
            values = unsafeBitCast(elements(Float.self), to: [T].self)
        case (.float64, is Double.Type):
            values = unsafeBitCast(elements(Double.self), to: [T].self)
        case (.float32, is Double.Type):
            values = unsafeBitCast(elements(Float.self).map(Double.init), to: [T].self)
        case (.float64, is Float.Type):
            throw error("holds float64; reading it as Float would round every value: call narrowedToFloat() to do so on purpose")
        case (.float32, _), (.float64, _):
            throw error("no conversion from \(dtype) to element type \(T.self)")
        default:
            guard convertingIntegers else {
                throw error("holds \(dtype), not floating-point values; pass convertingIntegers: true to convert them")
            }
            if dtype == .uint64 {
                values = elements(UInt64.self).map { T($0) }
            } else {
                values = try integers().map { T($0) }
            }
        }
        return try Tensor(shape: shape, values: values)
    }

    /// The elements rounded to Float: `float32` as is, `float64` rounded to nearest.
    /// - Throws: ``TensorFileError`` for integer tensors, and for a finite value
    ///   beyond Float's range (it would become infinite), naming the first one.
    public func narrowedToFloat() throws -> Tensor<Float> {
        switch dtype {
        case .float32:
            return try floatTensor(as: Float.self)
        case .float64:
            let doubles = elements(Double.self)
            let floats = doubles.map { Float($0) }
            if let index = doubles.indices.first(where: { doubles[$0].isFinite && !floats[$0].isFinite }) {
                throw error("value \(doubles[index]) at flat index \(index) is beyond Float's range")
            }
            return try Tensor(shape: shape, values: floats)
        default:
            throw error("holds \(dtype), not floating-point values")
        }
    }

    /// The elements as `Int64` (labels, masks, indices): every integer dtype, and
    /// `bool` as 0 and 1.
    /// - Throws: ``TensorFileError`` for float tensors, and for `uint64` values
    ///   above `Int64.max`, naming the first one.
    public func integers() throws -> [Int64] {
        switch dtype {
        case .float32, .float64:
            throw error("holds \(dtype), not integers")
        case .int8: return elements(Int8.self).map(Int64.init)
        case .uint8, .bool: return elements(UInt8.self).map(Int64.init)
        case .int16: return elements(Int16.self).map(Int64.init)
        case .uint16: return elements(UInt16.self).map(Int64.init)
        case .int32: return elements(Int32.self).map(Int64.init)
        case .uint32: return elements(UInt32.self).map(Int64.init)
        case .int64: return elements(Int64.self)
        case .uint64:
            let values = elements(UInt64.self)
            if let index = values.firstIndex(where: { $0 > UInt64(Int64.max) }) {
                throw error("uint64 value \(values[index]) at flat index \(index) does not fit in Int64")
            }
            return values.map { Int64($0) }
        }
    }

    // MARK: Decoding

    /// The bytes as `V`s (a trivial type whose size is the item size): one copy,
    /// then, on a big-endian machine, each element's bytes reversed.
    func elements<V>(_ type: V.Type) -> [V] {
        let size = MemoryLayout<V>.stride
        let count = bytes.count / size
        return [V](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                let destination = UnsafeMutableRawBufferPointer(buffer)
                bytes.withUnsafeBytes { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<(count * size)])) }
                #if _endian(big)
                for start in stride(from: 0, to: count * size, by: size) {
                    for j in 0..<(size / 2) { destination.swapAt(start + j, start + size - 1 - j) }
                }
                #endif
            }
            initialized = count
        }
    }
}

extension StoredTensor {
    /// The tensor a reader has just cut out of a file, after the checks every
    /// format shares: a `bool` tensor must hold only 0 and 1 (anything else is
    /// corruption, and numpy and PyTorch would read it inconsistently).
    /// - Parameters:
    ///   - offset: where the data starts in the file (or member), for the error.
    static func fromFile(name: String, dtype: DType, shape: Shape, bytes: [UInt8], context: ErrorContext,
                         reportedTensor: String?, offset: Int) throws -> StoredTensor {
        if dtype == .bool, let index = bytes.firstIndex(where: { $0 > 1 }) {
            throw context.error("bool element \(index) holds byte \(bytes[index]); only 0 and 1 are valid",
                                tensor: reportedTensor, offset: offset + index)
        }
        return StoredTensor(unchecked: name, dtype: dtype, shape: shape, bytes: bytes, source: context.file)
    }
}
