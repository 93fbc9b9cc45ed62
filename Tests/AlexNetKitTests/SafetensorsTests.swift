import Foundation
import XCTest
@testable import AlexNetKit

final class SafetensorsTests: XCTestCase {
    private func modelFile() throws -> [UInt8] { try FormatFixtures.bytes("safetensors/model.safetensors") }

    /// `bytes` with its JSON header passed through `transform` (length field updated, data kept).
    private func rewritingHeader(_ bytes: [UInt8], _ transform: (String) -> String) -> [UInt8] {
        let length = Int(bytes.readLittleEndian(UInt64.self, at: 0))
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        return file(header: transform(header), data: Array(bytes[(8 + length)...]))
    }

    /// A safetensors file from a header text and a data buffer.
    private func file(header: String, data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLittleEndian(UInt64(header.utf8.count))
        return out + Array(header.utf8) + data
    }

    private func read(_ bytes: [UInt8], _ source: String = "model.safetensors") throws -> [StoredTensor] {
        try Safetensors.read(bytes: bytes, source: source).tensors
    }

    // MARK: Reading the reference implementation's files

    func testReadsFileWrittenBySafetensors() throws {
        let (tensors, metadata) = try Safetensors.read(path: FormatFixtures.path("safetensors/model.safetensors"))
        XCTAssertEqual(tensors, FormatFixtures.modelTensors)
        XCTAssertEqual(tensors.map(\.name), ["labels", "fc.weight", "conv1.bias", "conv1.weight", "index", "pixels", "mask"])
        XCTAssertEqual(metadata, ["format": "np"])
        let weight = try tensors[3].floatTensor(as: Float.self)
        XCTAssertEqual(weight.shape, [2, 1, 2, 2])
        XCTAssertEqual(weight.storage, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75])
        XCTAssertEqual(try tensors[4].integers(), [7, -7, 0])
        XCTAssertEqual(try tensors[6].integers(), [1, 0, 0, 1])
    }

    func testReadsEveryDtype() throws {
        let (tensors, metadata) = try Safetensors.read(path: FormatFixtures.path("safetensors/all_dtypes.safetensors"))
        XCTAssertEqual(metadata, [:])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) }),
                       Dictionary(uniqueKeysWithValues: FormatFixtures.dtypeTensors.map { ($0.name, $0) }))
    }

    // MARK: Writing

    func testEncodeMatchesTheReferenceWriterByteForByte() throws {
        XCTAssertEqual(try Safetensors.encode(FormatFixtures.modelTensors.reversed(), metadata: FormatFixtures.modelMetadata),
                       try modelFile())
        XCTAssertEqual(try Safetensors.encode(FormatFixtures.dtypeTensors),
                       try FormatFixtures.bytes("safetensors/all_dtypes.safetensors"))
    }

    func testRoundTripEveryDtypeWithMetadata() throws {
        let tensors = FormatFixtures.dtypeTensors + FormatFixtures.extraNpyTensors
            + [StoredTensor(name: "fc6.weight \"quoted\" \\ é 😀", tensor: randomFloatTensor([16, 9], seed: 5))]
        let metadata = ["format": "pt", "note": "line 1\nline 2\t\"quoted\" \u{01} é", "": "empty key"]
        let bytes = try Safetensors.encode(tensors, metadata: metadata)
        XCTAssertEqual(Int(bytes.readLittleEndian(UInt64.self, at: 0)) % 8, 0)
        let back = try Safetensors.read(bytes: bytes, source: "round.safetensors")
        XCTAssertEqual(Set(back.tensors.map(\.name)), Set(tensors.map(\.name)))
        for tensor in tensors { XCTAssertEqual(back.tensors.first { $0.name == tensor.name }, tensor, tensor.name) }
        XCTAssertEqual(back.metadata, metadata)
    }

    func testWriterAlignsEveryTensorToItsItemSize() throws {
        let bytes = try Safetensors.encode(FormatFixtures.dtypeTensors)
        let dataStart = 8 + Int(bytes.readLittleEndian(UInt64.self, at: 0))
        XCTAssertEqual(dataStart % 8, 0)
        let header = String(decoding: bytes[8..<dataStart], as: UTF8.self)
        for tensor in FormatFixtures.dtypeTensors {
            let entry = header.range(of: "\"\(tensor.name)\":")!
            let offsets = header[entry.upperBound...].range(of: "\"data_offsets\":[")!
            let begin = Int(header[offsets.upperBound...].prefix { $0.isNumber })!
            XCTAssertEqual(begin % tensor.dtype.itemSize, 0, tensor.name)
        }
    }

    func testWriteToPathAndReadBack() throws {
        // With ALEXNET_FORMATS_OUT set, these are the files `make_format_fixtures.py --verify` checks.
        let directory = try FormatFixtures.verificationDirectory("safetensors", for: self)
        try Safetensors.write(FormatFixtures.modelTensors, metadata: FormatFixtures.modelMetadata, to: directory + "/model.safetensors")
        try Safetensors.write(FormatFixtures.dtypeTensors, to: directory + "/all_dtypes.safetensors")
        let model = try Safetensors.read(path: directory + "/model.safetensors")
        XCTAssertEqual(model.tensors, FormatFixtures.modelTensors)
        XCTAssertEqual(model.metadata, FormatFixtures.modelMetadata)
    }

    func testWriterRefusesReservedAndRepeatedNames() {
        let reserved = FormatFixtures.named(FormatFixtures.dtypeTensor("int8"), "__metadata__")
        assertTensorFileError({ try Safetensors.encode([reserved]) }, source: "(safetensors in memory)",
                              "tensor '__metadata__': the name __metadata__ is reserved")
        let twice = [FormatFixtures.dtypeTensor("int8"), FormatFixtures.dtypeTensor("int8")]
        assertTensorFileError({ try Safetensors.write(twice, to: "/tmp/never-written.safetensors") },
                              source: "/tmp/never-written.safetensors", "tensor 'int8': two tensors have this name")
    }

    // MARK: Malformed files

    func testFileShorterThanTheLengthFieldIsRefused() {
        assertTensorFileError({ try self.read([1, 2, 3, 4, 5]) }, source: "model.safetensors",
                              "truncated file: 5 bytes, too short for the 8-byte header length")
    }

    func testHeaderLengthLargerThanTheFileIsRefused() throws {
        var bytes = try modelFile()
        bytes.storeLittleEndian(UInt64(bytes.count), at: 0)
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "header length 628 is larger than the file: only 620 bytes follow the 8-byte length")
    }

    func testHeaderLengthAboveTheLimitIsRefusedBeforeAllocating() throws {
        var bytes = try modelFile()
        bytes.storeLittleEndian(UInt64(1) << 60, at: 0)
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "header length 1152921504606846976 exceeds the 100000000-byte limit")
    }

    func testInvalidJSONIsRefused() throws {
        let cases: [(transform: (String) -> String, problem: String)] = [
            ({ $0.replacingOccurrences(of: "\"dtype\":", with: "\"dtype\";") }, "invalid JSON in header: expected ':' after key \"dtype\""),
            ({ $0.replacingOccurrences(of: "[4]", with: "[4,]") }, "invalid JSON in header: unexpected ']' where a value was expected"),
            ({ $0.replacingOccurrences(of: "\"np\"", with: "'np'") }, "invalid JSON in header: unexpected ''' where a value was expected"),
            ({ $0.replacingOccurrences(of: "}}  ", with: "}} x") }, "invalid JSON in header: unexpected 'x' after the top-level object"),
            ({ $0.replacingOccurrences(of: "\"labels\"", with: "\"lab\nels\"") }, "invalid JSON in header: control character 0xa inside a string"),
            ({ String($0.dropLast(20)) }, "invalid JSON in header"),
            ({ $0.replacingOccurrences(of: "\"pixels\"", with: "\"mask\"") }, "invalid JSON in header: duplicate key \"mask\""),
            ({ $0.replacingOccurrences(of: "[4]", with: String(repeating: "[", count: 70)) }, "nested more than 64 levels deep"),
        ]
        for (transform, problem) in cases {
            assertTensorFileError({ try self.read(self.rewritingHeader(try self.modelFile(), transform)) },
                                  source: "model.safetensors", problem)
        }
        var notUTF8 = try modelFile()
        notUTF8[20] = 0xFF
        assertTensorFileError({ try self.read(notUTF8) }, source: "model.safetensors", "header is not valid UTF-8")
    }

    func testHeaderMustBeAnObject() throws {
        assertTensorFileError({ try self.read(self.file(header: "[1, 2]  ", data: [])) }, source: "model.safetensors",
                              "header does not start with '{'")
    }

    func testMissingFieldsAreRefused() throws {
        for field in ["dtype", "shape", "data_offsets"] {
            let bytes = rewritingHeader(try modelFile()) {
                $0.replacingOccurrences(of: "{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[136,140]}",
                                        with: "{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[136,140]}"
                                            .replacingOccurrences(of: "\"\(field)\":", with: "\"un\(field)\":"))
            }
            assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                                  "tensor 'mask': unexpected field 'un\(field)'")
        }
        let bytes = rewritingHeader(try modelFile()) {
            $0.replacingOccurrences(of: "\"shape\":[4],\"data_offsets\":[136,140]", with: "\"data_offsets\":[136,140]")
        }
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors", "tensor 'mask': missing field 'shape'")
        let noDtype = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "\"dtype\":\"BOOL\",", with: "") }
        assertTensorFileError({ try self.read(noDtype) }, source: "model.safetensors", "tensor 'mask': missing field 'dtype'")
    }

    func testOffsetsOutOfRangeAreRefused() throws {
        let bytes = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "[136,140]", with: "[136,144]") }
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "tensor 'mask': data_offsets [136, 144] run past the end of the 140-byte data buffer")
        let reversed = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "[136,140]", with: "[140,136]") }
        assertTensorFileError({ try self.read(reversed) }, source: "model.safetensors",
                              "tensor 'mask': 'data_offsets' [140, 136] is not [begin, end] with begin <= end")
    }

    func testOverlappingOffsetsAreRefused() throws {
        // fc.weight moved back 8 bytes onto labels, then 8 spare bytes at the end.
        let bytes = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "[32,80]", with: "[24,72]") }
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "tensor 'fc.weight': data_offsets [24, 72] overlap tensor 'labels' at [0, 32]")
    }

    func testOffsetsNotMatchingTheShapeAreRefused() throws {
        let bytes = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "\"shape\":[4],\"data_offsets\":[0,32]",
                                                                               with: "\"shape\":[3],\"data_offsets\":[0,32]") }
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "tensor 'labels': data_offsets [0, 32] span 32 bytes, but shape [3] of I64 needs 24")
    }

    func testGapsBetweenTensorsAreRefused() throws {
        let bytes = file(header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#,
                         data: [1, 2, 0, 3, 4])
        assertTensorFileError({ try self.read(bytes, "gap.safetensors") }, source: "gap.safetensors",
                              "tensor 'b': data_offsets [3, 5] leave bytes 2..<3 of the data buffer to no tensor")
    }

    func testUnusedBytesAfterTheTensorsAreRefused() throws {
        let bytes = try modelFile() + [0, 0, 0, 0]
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "the data buffer holds 144 bytes, but the tensors end at 140: 4 unused bytes")
    }

    func testMetadataMustMapStringsToStrings() throws {
        let number = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "\"format\":\"np\"", with: "\"format\":1") }
        assertTensorFileError({ try self.read(number) }, source: "model.safetensors",
                              "__metadata__ value for key 'format' is a number; metadata must map strings to strings")
        let list = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "{\"format\":\"np\"}", with: "[\"np\"]") }
        assertTensorFileError({ try self.read(list) }, source: "model.safetensors", "__metadata__ is an array, not an object of strings")
    }

    func testUnsupportedDtypesAreRefusedByTensorName() throws {
        for dtype in ["F16", "BF16", "F8_E4M3", "C64"] {
            let bytes = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "\"BOOL\"", with: "\"\(dtype)\"") }
            assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                                  "tensor 'mask': dtype \(dtype) is not supported (supported: F32, F64, I8, U8")
        }
    }

    func testNegativeOrFractionalShapesAreRefused() throws {
        for (shape, shown) in [("[-4]", "the number -4"), ("[4.0]", "the number 4.0"), ("[\"4\"]", "a string")] {
            let bytes = rewritingHeader(try modelFile()) { $0.replacingOccurrences(of: "\"shape\":[4],\"data_offsets\":[136",
                                                                                   with: "\"shape\":\(shape),\"data_offsets\":[136") }
            assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                                  "tensor 'mask': 'shape' holds \(shown), not a non-negative integer")
        }
        let overflowing = rewritingHeader(try modelFile()) {
            $0.replacingOccurrences(of: "\"shape\":[4],\"data_offsets\":[136", with: "\"shape\":[4294967296,4294967296],\"data_offsets\":[136")
        }
        assertTensorFileError({ try self.read(overflowing) }, source: "model.safetensors",
                              "tensor 'mask': shape [4294967296, 4294967296] is too large")
    }

    func testBoolBytesOtherThanZeroAndOneAreRefused() throws {
        var bytes = try modelFile()
        bytes[bytes.count - 3] = 7
        assertTensorFileError({ try self.read(bytes) }, source: "model.safetensors",
                              "tensor 'mask': bool element 1 holds byte 7; only 0 and 1 are valid")
    }
}
