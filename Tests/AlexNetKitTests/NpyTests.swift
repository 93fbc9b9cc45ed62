import Foundation
import XCTest
@testable import AlexNetKit

final class NpyTests: XCTestCase {
    /// numpy's file for `dtypeTensor("float32")`: a 118-byte header, then 24 bytes of data.
    private func float32File() throws -> [UInt8] { try FormatFixtures.bytes("npy/float32.npy") }

    /// The float32 fixture with its header dict replaced by `dict`, padded to the same
    /// length so the length field stays right: a malformed header in a valid frame.
    private func float32File(withHeader dict: String, version: UInt8 = 1) throws -> [UInt8] {
        var bytes = try float32File()
        let length = Int(bytes.readLittleEndian(UInt16.self, at: 8))
        let text = Array(dict.utf8)
        precondition(text.count < length, "header too long for the fixture's frame")
        bytes.replaceSubrange(10..<(10 + length), with: text + [UInt8](repeating: 0x20, count: length - 1 - text.count) + [0x0A])
        bytes[6] = version
        if version > 1 {  // a 4-byte length field: two more bytes, so drop two spaces
            bytes.replaceSubrange(8..<10, with: [UInt8(length - 2), 0, 0, 0])
            bytes.removeSubrange((12 + length - 3)..<(12 + length - 1))
        }
        return bytes
    }

    // MARK: Reading numpy's files

    func testReadsEveryDtypeWrittenByNumPy() throws {
        for expected in FormatFixtures.dtypeTensors + FormatFixtures.extraNpyTensors {
            let tensor = try NPY.read(path: FormatFixtures.path("npy/\(expected.name).npy"))
            XCTAssertEqual(tensor, expected, expected.name)
            XCTAssertTrue(tensor.source.hasSuffix("npy/\(expected.name).npy"))
        }
    }

    func testFloatFixturesHoldTheLiteralValuesExactly() throws {
        let float32 = try NPY.read(path: FormatFixtures.path("npy/float32.npy")).floatTensor(as: Float.self)
        XCTAssertEqual(float32.shape, [2, 3])
        XCTAssertEqual(float32.storage, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
        let float64 = try NPY.read(path: FormatFixtures.path("npy/float64.npy")).floatTensor(as: Double.self)
        XCTAssertEqual(float64.shape, [3, 2])
        XCTAssertEqual(float64.storage.map(\.bitPattern),
                       [0.0, 0.125, 1.0 / 3.0, -2.0, 1e300, -Double.leastNonzeroMagnitude].map(\.bitPattern))
    }

    func testIntegerFixturesReadAsInt64() throws {
        let expected: [String: [Int64]] = [
            "int8": [-128, -1, 0, 1, 127], "uint8": [0, 1, 254, 255], "int16": [-32768, -1, 0, 32767],
            "uint16": [0, 65535], "int32": [-2_147_483_648, 0, 2_147_483_647], "uint32": [0, 4_294_967_295],
            "int64": [Int64.min, -1, 0, Int64.max], "uint64": [0, Int64.max], "bool": [1, 0, 1],
        ]
        for (name, values) in expected {
            XCTAssertEqual(try NPY.read(path: FormatFixtures.path("npy/\(name).npy")).integers(), values, name)
        }
    }

    func testScalarAndEmptyArrays() throws {
        let scalar = try NPY.read(path: FormatFixtures.path("npy/scalar.npy"))
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(try scalar.floatTensor(as: Double.self).storage, [2.5])
        let empty = try NPY.read(path: FormatFixtures.path("npy/empty.npy"))
        XCTAssertEqual(empty.shape, [0, 3])
        XCTAssertEqual(try empty.floatTensor(as: Float.self).count, 0)
    }

    func testReadsFormatVersions2And3() throws {
        let v2 = try NPY.read(path: FormatFixtures.path("npy/v2_float32.npy"))
        XCTAssertEqual(try FormatFixtures.bytes("npy/v2_float32.npy")[6], 2)
        XCTAssertEqual(v2, FormatFixtures.named(FormatFixtures.dtypeTensor("float32"), "v2_float32"))
        let v3 = try NPY.read(path: FormatFixtures.path("npy/v3_int16.npy"))
        XCTAssertEqual(try FormatFixtures.bytes("npy/v3_int16.npy")[6], 3)
        XCTAssertEqual(try v3.integers(), [-32768, -1, 0, 32767])
    }

    func testBigEndianDataIsConvertedToLittleEndian() throws {
        for name in ["float32", "float64", "int64"] {
            let big = try NPY.read(path: FormatFixtures.path("npy/big_\(name).npy"))
            XCTAssertEqual(big, FormatFixtures.named(FormatFixtures.dtypeTensor(name), "big_\(name)"), name)
        }
    }

    func testFortranOrderIsTransposedToRowMajor() throws {
        // np.asfortranarray(np.arange(24).reshape(2, 3, 4)): row-major reading gives 0..<24 back.
        let fortran = try NPY.read(path: FormatFixtures.path("npy/fortran_int32.npy"))
        XCTAssertEqual(fortran.dtype, .int32)
        XCTAssertEqual(fortran.shape, [2, 3, 4])
        XCTAssertEqual(try fortran.integers(), Array(0..<24))
        // Fortran order and big-endian together.
        let both = try NPY.read(path: FormatFixtures.path("npy/fortran_big_float64.npy"))
        XCTAssertEqual(both, FormatFixtures.named(FormatFixtures.dtypeTensor("float64"), "fortran_big_float64"))
    }

    func testHeaderParserAcceptsPythonLiteralVariants() throws {
        // Double quotes, Python 2 long suffixes, no trailing comma, keys in another order, extra spaces.
        let bytes = try float32File(withHeader: #"{ "shape" : (2L, 3L) , "fortran_order":False,"descr":"<f4"}"#)
        XCTAssertEqual(try NPY.read(bytes: bytes, source: "variant.npy").bytes, FormatFixtures.dtypeTensor("float32").bytes)
    }

    // MARK: Writing

    func testEncodeMatchesNumPySaveByteForByte() throws {
        for tensor in FormatFixtures.dtypeTensors + FormatFixtures.extraNpyTensors {
            XCTAssertEqual(NPY.encode(tensor), try FormatFixtures.bytes("npy/\(tensor.name).npy"), tensor.name)
        }
    }

    func testHeaderIsPaddedToAMultipleOf64() {
        for dims in [[], [1], [7, 5], [96, 3, 11, 11], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]] as [[Int]] {
            let count = dims.reduce(1, *)
            let bytes = NPY.encode(FormatFixtures.float32("t", Shape(dims), [Float](repeating: 1, count: count)))
            let dataStart = 10 + Int(bytes.readLittleEndian(UInt16.self, at: 8))
            XCTAssertEqual(dataStart % 64, 0, "\(dims)")
            XCTAssertEqual(bytes[dataStart - 1], 0x0A)
            XCTAssertEqual(bytes.count - dataStart, count * 4)
        }
    }

    func testRoundTripEveryDtype() throws {
        var special = Tensor<Float>(shape: [2, 3])
        special.withUnsafeMutableBufferPointer { b in
            for (i, v) in [Float.nan, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude].enumerated() { b[i] = v }
        }
        let tensors = FormatFixtures.dtypeTensors + FormatFixtures.extraNpyTensors + [
            StoredTensor(name: "special", tensor: special),
            StoredTensor(name: "random", tensor: randomFloatTensor([4, 3, 5, 5], seed: 7)),
        ]
        for tensor in tensors {
            let back = try NPY.read(bytes: NPY.encode(tensor), source: "\(tensor.name).npy")
            XCTAssertEqual(back, tensor, tensor.name)
        }
        let back = try NPY.read(bytes: NPY.encode(StoredTensor(name: "special", tensor: special)), source: "special.npy")
        XCTAssertTrue(try back.floatTensor(as: Float.self).isBitwiseEqual(to: special))
    }

    func testLongHeaderIsWrittenAsVersion2() throws {
        // 25,000 dimensions of 1: a header longer than version 1.0's 65,535 bytes.
        let tensor = FormatFixtures.float32("deep", Shape([Int](repeating: 1, count: 25_000)), [4])
        let bytes = NPY.encode(tensor)
        XCTAssertEqual(bytes[6], 2)
        XCTAssertEqual((12 + Int(bytes.readLittleEndian(UInt32.self, at: 8))) % 64, 0)
        XCTAssertEqual(try NPY.read(bytes: bytes, source: "deep.npy"), tensor)
    }

    func testWriteToPathAndReadBack() throws {
        // With ALEXNET_FORMATS_OUT set, these are the files `make_format_fixtures.py --verify` checks.
        let directory = try FormatFixtures.verificationDirectory("npy", for: self)
        for tensor in FormatFixtures.dtypeTensors + FormatFixtures.extraNpyTensors {
            let path = directory + "/\(tensor.name).npy"
            try NPY.write(tensor, to: path)
            XCTAssertEqual(try NPY.read(path: path), tensor)
        }
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: directory).contains { $0.contains(".tmp-") },
                       "temporary files left behind")
    }

    func testWriteIntoMissingDirectoryFailsWithThePath() {
        let tensor = FormatFixtures.dtypeTensor("float32")
        assertTensorFileError({ try NPY.write(tensor, to: "/nonexistent-dir/x.npy") }, source: "/nonexistent-dir/x.npy",
                              "cannot create a temporary file")
    }

    // MARK: Conversions

    func testFloat32WidensToDoubleExactly() throws {
        let tensor = try FormatFixtures.dtypeTensor("float32").floatTensor(as: Double.self)
        XCTAssertEqual(tensor.storage, [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    }

    func testFloat64ToFloatNeedsExplicitNarrowing() throws {
        var stored = FormatFixtures.dtypeTensor("float64")
        stored.source = "weights.npy"
        assertTensorFileError({ try stored.floatTensor(as: Float.self) }, source: "weights.npy",
                              "tensor 'float64'", "holds float64", "narrowedToFloat()")
        let narrowed = try FormatFixtures.float64("w", [3], [0.5, 1.0 / 3.0, -Double.leastNonzeroMagnitude]).narrowedToFloat()
        XCTAssertEqual(narrowed.storage, [0.5, Float(1.0 / 3.0), -0.0])
    }

    func testNarrowingRefusesValuesBeyondFloatRange() {
        let stored = FormatFixtures.dtypeTensor("float64")  // holds 1e300 at flat index 4
        let error = captureError { try stored.narrowedToFloat() } as? TensorFileError
        XCTAssertEqual(error?.description, "tensor 'float64': value 1e+300 at flat index 4 is beyond Float's range")
    }

    func testIntegersBecomeFloatsOnlyWhenAsked() throws {
        var labels = FormatFixtures.ints("labels", [4], [3, 1, 4, 1] as [Int64])
        labels.source = "batch.npz"
        assertTensorFileError({ try labels.floatTensor(as: Float.self) }, source: "batch.npz",
                              "tensor 'labels'", "holds int64", "convertingIntegers")
        XCTAssertEqual(try labels.floatTensor(as: Float.self, convertingIntegers: true).storage, [3, 1, 4, 1])
        XCTAssertEqual(try FormatFixtures.dtypeTensor("uint64").floatTensor(as: Double.self, convertingIntegers: true).storage,
                       [0, 9_223_372_036_854_775_808.0])
    }

    func testIntegersRefusesFloatsAndHugeUInt64() {
        let error = captureError { try FormatFixtures.dtypeTensor("float32").integers() } as? TensorFileError
        XCTAssertEqual(error?.description, "tensor 'float32': holds float32, not integers")
        let huge = FormatFixtures.ints("ids", [2], [1, UInt64.max])
        let hugeError = captureError { try huge.integers() } as? TensorFileError
        XCTAssertEqual(hugeError?.description, "tensor 'ids': uint64 value 18446744073709551615 at flat index 1 does not fit in Int64")
    }

    func testConstructorsCheckTheElementCount() {
        XCTAssertThrowsError(try StoredTensor(name: "x", shape: [2, 3], integers: [1, 2, 3] as [Int32])) { error in
            XCTAssertEqual("\(error)", "StoredTensor 'x': bytes has shape [12], expected 24 bytes (int32, shape [2, 3])")
        }
        XCTAssertThrowsError(try StoredTensor(name: "m", shape: [2], bools: [true]))
        XCTAssertThrowsError(try StoredTensor(name: "b", dtype: .float64, shape: [1], bytes: [0, 0, 0, 0]))
        XCTAssertEqual(try StoredTensor(name: "u", shape: [2], integers: [1, 255] as [UInt8]).bytes, [1, 255])
        XCTAssertEqual(try StoredTensor(name: "i", shape: [1], integers: [-2] as [Int32]).bytes, [0xFE, 0xFF, 0xFF, 0xFF])
    }

    // MARK: Malformed files

    func testBadMagicIsRefused() throws {
        var bytes = try float32File()
        bytes[1] = UInt8(ascii: "X")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "bad.npy") }, source: "bad.npy",
                              "not a .npy file: bad magic (starts 93 58 55 4d")
        assertTensorFileError({ try NPY.read(bytes: [], source: "empty.npy") }, source: "empty.npy", "the file is empty")
    }

    func testUnsupportedVersionIsRefused() throws {
        var bytes = try float32File()
        bytes[6] = 4
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "v4.npy") }, source: "v4.npy",
                              "unsupported .npy format version 4.0", "(at byte 6)")
    }

    func testTruncatedHeaderIsRefused() throws {
        let bytes = try float32File()
        assertTensorFileError({ try NPY.read(bytes: Array(bytes.prefix(60)), source: "cut.npy") }, source: "cut.npy",
                              "truncated header: the header length field says 118 bytes, the file holds 50 after it")
        assertTensorFileError({ try NPY.read(bytes: Array(bytes.prefix(9)), source: "cut.npy") }, source: "cut.npy",
                              "truncated header", "inside the header length")
    }

    func testTruncatedDataIsRefused() throws {
        let bytes = try float32File()
        let error = assertTensorFileError({ try NPY.read(bytes: Array(bytes.dropLast(4)), source: "short.npy") },
                                          source: "short.npy", "data truncated: expected 24 bytes, file holds 20")
        XCTAssertEqual(error?.offset, 128)
    }

    func testTrailingDataIsRefused() throws {
        let bytes = try float32File() + [1, 2, 3]
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "long.npy") }, source: "long.npy",
                              "3 bytes of unexpected data after the array")
    }

    func testComplexDtypeIsRefused() throws {
        let bytes = try float32File(withHeader: "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "c.npy") }, source: "c.npy",
                              "unsupported dtype '<c8' (complex numbers)", "supported: <f4, <f8, |i1")
    }

    func testUnicodeStringDtypeIsRefused() throws {
        let bytes = try float32File(withHeader: "{'descr': '<U5', 'fortran_order': False, 'shape': (2, 3), }")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "u.npy") }, source: "u.npy",
                              "unsupported dtype '<U5' (unicode strings)")
    }

    func testObjectDtypeIsRefused() throws {
        let bytes = try float32File(withHeader: "{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "o.npy") }, source: "o.npy",
                              "unsupported dtype '|O' (Python objects)")
    }

    func testHalfPrecisionAndStructuredDtypesAreRefused() throws {
        let half = try float32File(withHeader: "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }")
        assertTensorFileError({ try NPY.read(bytes: half, source: "h.npy") }, source: "h.npy", "unsupported dtype '<f2' (half precision)")
        let structured = try float32File(withHeader: "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (6,), }")
        assertTensorFileError({ try NPY.read(bytes: structured, source: "s.npy") }, source: "s.npy", "structured arrays")
    }

    func testMalformedHeaderDictsAreRefused() throws {
        let cases: [(header: String, problem: String)] = [
            ("['descr', '<f4']", "malformed header: not a dict literal"),
            ("{'descr': '<f4', 'fortran_order': False}", "malformed header: no 'shape' key"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", "malformed header: unexpected key 'extra'"),
            ("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}", "malformed header: expected ',' or '}' in the dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", "malformed header: expected ',' or '}' in the dict, found end of header"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}", "malformed header: 'fortran_order' is 0, not True or False"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}", "malformed header: 'shape' is [2, 3], not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'x')}", "holds 'x', not an integer"),
            ("{'descr': 4, 'fortran_order': False, 'shape': (2, 3)}", "malformed header: 'descr' is 4, not a string"),
            ("{'descr': '<f4', 'descr': '<f4', 'shape': (2, 3)}", "malformed header: duplicate key 'descr'"),
            ("{'descr': __import__('os'), 'fortran_order': False, 'shape': (2, 3)}", "unexpected name '__import__'"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk", "unexpected 'j' after the header dict"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 40), "nested more than 32 levels deep"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 99999999999999999999)}", "integer too large for 64 bits"),
        ]
        for (header, problem) in cases {
            let bytes = try float32File(withHeader: header)
            assertTensorFileError({ try NPY.read(bytes: bytes, source: "dict.npy") }, source: "dict.npy", problem)
        }
    }

    func testNegativeShapeIsRefused() throws {
        let bytes = try float32File(withHeader: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "neg.npy") }, source: "neg.npy",
                              "invalid shape (2, -3): negative extent -3")
    }

    func testOverflowingShapeIsRefused() throws {
        let bytes = try float32File(withHeader: "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "big.npy") }, source: "big.npy",
                              "invalid shape (4611686018427387904, 4): its size in bytes overflows a 64-bit integer")
    }

    func testShapeClaimingMoreThanTheFileIsRefusedBeforeAllocating() throws {
        // 4 TB claimed, 24 bytes present: refused by arithmetic, nothing allocated.
        let bytes = try float32File(withHeader: "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }")
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "huge.npy") }, source: "huge.npy",
                              "data truncated: expected 4000000000000 bytes, file holds 24")
    }

    func testBoolBytesOtherThanZeroAndOneAreRefused() throws {
        var bytes = NPY.encode(FormatFixtures.dtypeTensor("bool"))
        bytes[bytes.count - 2] = 2
        assertTensorFileError({ try NPY.read(bytes: bytes, source: "mask.npy") }, source: "mask.npy",
                              "bool element 1 holds byte 2; only 0 and 1 are valid")
    }

    func testVersion3HeaderMustBeUTF8() throws {
        // U+00FF is two UTF-8 bytes (c3 bf); replacing the first with ff leaves invalid UTF-8.
        var broken = try float32File(withHeader: "{'descr': '<f4\u{FF}', 'fortran_order': False, 'shape': (2, 3), }", version: 3)
        let index = broken.firstIndex(of: 0xC3)!
        broken[index] = 0xFF
        assertTensorFileError({ try NPY.read(bytes: broken, source: "v3.npy") }, source: "v3.npy",
                              "string is not valid UTF-8 (version 3.0 headers are UTF-8)")
    }

    func testMissingFileNamesThePath() {
        assertTensorFileError({ try NPY.read(path: "/nonexistent/weights.npy") }, source: "/nonexistent/weights.npy",
                              "cannot open: No such file or directory")
    }
}
