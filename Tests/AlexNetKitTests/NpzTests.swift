import Foundation
import XCTest
@testable import AlexNetKit

final class NpzTests: XCTestCase {
    /// Where each member's headers sit in an archive `NPZ.encode` wrote without ZIP64,
    /// so a test can damage one field and leave the rest valid.
    private struct Layout {
        var local: [Int] = []
        var central: [Int] = []

        init(_ bytes: [UInt8]) {
            let end = bytes.count - 22
            var position = Int(bytes.readLittleEndian(UInt32.self, at: end + 16))
            for _ in 0..<Int(bytes.readLittleEndian(UInt16.self, at: end + 10)) {
                central.append(position)
                local.append(Int(bytes.readLittleEndian(UInt32.self, at: position + 42)))
                let name = Int(bytes.readLittleEndian(UInt16.self, at: position + 28))
                let extra = Int(bytes.readLittleEndian(UInt16.self, at: position + 30))
                let comment = Int(bytes.readLittleEndian(UInt16.self, at: position + 32))
                position += 46 + name + extra + comment
            }
        }

        func dataStart(_ member: Int, in bytes: [UInt8]) -> Int {
            local[member] + 30 + Int(bytes.readLittleEndian(UInt16.self, at: local[member] + 26))
                + Int(bytes.readLittleEndian(UInt16.self, at: local[member] + 28))
        }

        func compressedSize(_ member: Int, in bytes: [UInt8]) -> Int {
            Int(bytes.readLittleEndian(UInt32.self, at: central[member] + 20))
        }

        /// Sets a field in both the local header and the central entry (their offsets differ by the layout).
        func patch<T: FixedWidthInteger>(_ bytes: inout [UInt8], member: Int, local localField: Int, central centralField: Int, to value: T) {
            bytes.storeLittleEndian(value, at: local[member] + localField)
            bytes.storeLittleEndian(value, at: central[member] + centralField)
        }

        func setMethod(_ bytes: inout [UInt8], member: Int, _ method: UInt16) { patch(&bytes, member: member, local: 8, central: 10, to: method) }
        func setCRC(_ bytes: inout [UInt8], member: Int, _ crc: UInt32) { patch(&bytes, member: member, local: 14, central: 16, to: crc) }
        func setCompressedSize(_ bytes: inout [UInt8], member: Int, _ size: UInt32) { patch(&bytes, member: member, local: 18, central: 20, to: size) }
        func setUncompressedSize(_ bytes: inout [UInt8], member: Int, _ size: UInt32) { patch(&bytes, member: member, local: 22, central: 24, to: size) }

        /// Renames a member to a name of the same length.
        func rename(_ bytes: inout [UInt8], member: Int, to name: String) {
            let utf8 = Array(name.utf8)
            bytes.replaceSubrange((local[member] + 30)..<(local[member] + 30 + utf8.count), with: utf8)
            bytes.replaceSubrange((central[member] + 46)..<(central[member] + 46 + utf8.count), with: utf8)
        }

        /// Recomputes a stored member's CRC after its data was changed.
        func refreshCRC(_ bytes: inout [UInt8], member: Int) {
            let start = dataStart(member, in: bytes)
            let crc = bytes[start..<(start + compressedSize(member, in: bytes))].withUnsafeBytes { NPZ.crc32(of: $0) }
            setCRC(&bytes, member: member, crc)
        }
    }

    private func stored() throws -> [UInt8] { try NPZ.encode(FormatFixtures.npzTensors(compressed: false)) }
    private func compressed() throws -> [UInt8] { try NPZ.encode(FormatFixtures.npzTensors(compressed: true), compressed: true) }

    // MARK: Reading numpy's files

    func testReadsNumPySavez() throws {
        let tensors = try NPZ.read(path: FormatFixtures.path("npz/stored.npz"))
        XCTAssertEqual(tensors, FormatFixtures.npzTensors(compressed: false))
        XCTAssertEqual(tensors.map(\.name), ["weight", "bias", "labels", "mask"])
        XCTAssertEqual(try tensors[2].integers(), [3, 1, 4, 1])
        XCTAssertEqual(try tensors[1].floatTensor(as: Double.self).storage, [0.5, -0.25, 4.0])
    }

    func testReadsNumPySavezCompressed() throws {
        let tensors = try NPZ.read(path: FormatFixtures.path("npz/compressed.npz"))
        XCTAssertEqual(tensors, FormatFixtures.npzTensors(compressed: true))
    }

    func testNumPyLocalHeadersCarryZip64Sizes() throws {
        // numpy.savez opens members with force_zip64=True: the 4-byte sizes are saturated
        // and the real ones sit in a ZIP64 extra field. The reads above go through that path.
        let bytes = try FormatFixtures.bytes("npz/stored.npz")
        XCTAssertEqual(bytes.readLittleEndian(UInt32.self, at: 18), 0xFFFF_FFFF)
        XCTAssertEqual(bytes.readLittleEndian(UInt32.self, at: 22), 0xFFFF_FFFF)
        XCTAssertEqual(bytes.readLittleEndian(UInt16.self, at: 28), 20)
    }

    // MARK: Writing

    func testRoundTripEveryDtypeStoredAndCompressed() throws {
        let tensors = FormatFixtures.dtypeTensors + FormatFixtures.extraNpyTensors
            + [StoredTensor(name: "conv1.weight", tensor: randomFloatTensor([8, 3, 5, 5], seed: 3))]
        for compressed in [false, true] {
            let bytes = try NPZ.encode(tensors, compressed: compressed)
            XCTAssertEqual(try NPZ.read(bytes: bytes, source: "all.npz"), tensors, "compressed: \(compressed)")
        }
    }

    func testCompressionShrinksRedundantData() throws {
        let tensors = FormatFixtures.npzTensors(compressed: true)
        XCTAssertLessThan(try NPZ.encode(tensors, compressed: true).count * 2, try NPZ.encode(tensors).count)
    }

    func testZip64RecordsRoundTrip() throws {
        let tensors = FormatFixtures.npzTensors(compressed: false)
        let bytes = try NPZ.encode(tensors, compressed: false, forceZip64: true, destination: "zip64.npz")
        let endRecord = bytes.count - 22
        XCTAssertEqual(bytes.readLittleEndian(UInt32.self, at: endRecord - 20), 0x0706_4B50, "ZIP64 locator")
        XCTAssertEqual(bytes.readLittleEndian(UInt32.self, at: endRecord + 16), 0xFFFF_FFFF, "saturated directory offset")
        XCTAssertEqual(try NPZ.read(bytes: bytes, source: "zip64.npz"), tensors)
    }

    func testEncodingIsDeterministic() throws {
        XCTAssertEqual(try compressed(), try compressed())
    }

    func testWriteToPathAndReadBack() throws {
        // With ALEXNET_FORMATS_OUT set, these are the files `make_format_fixtures.py --verify` checks.
        let directory = try FormatFixtures.verificationDirectory("npz", for: self)
        try NPZ.write(FormatFixtures.npzTensors(compressed: false), to: directory + "/stored.npz")
        try NPZ.write(FormatFixtures.npzTensors(compressed: true), to: directory + "/compressed.npz", compressed: true)
        try TensorFileIO.writeAtomically(NPZ.encode(FormatFixtures.npzTensors(compressed: false), compressed: false,
                                                    forceZip64: true, destination: "zip64.npz"),
                                         to: directory + "/zip64.npz")
        XCTAssertEqual(try NPZ.read(path: directory + "/stored.npz"), FormatFixtures.npzTensors(compressed: false))
        XCTAssertEqual(try NPZ.read(path: directory + "/compressed.npz"), FormatFixtures.npzTensors(compressed: true))
        XCTAssertEqual(try NPZ.read(path: directory + "/zip64.npz"), FormatFixtures.npzTensors(compressed: false))
    }

    func testFailedWriteKeepsTheExistingFile() throws {
        let directory = try FormatFixtures.temporaryDirectory(for: self)
        let path = directory + "/weights.npz"
        try NPZ.write(FormatFixtures.npzTensors(compressed: false), to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let twice = [FormatFixtures.dtypeTensor("int8"), FormatFixtures.dtypeTensor("int8")]
        assertTensorFileError({ try NPZ.write(twice, to: path) }, source: path, "tensor 'int8'", "two tensors have this name")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["weights.npz"])
    }

    func testWriterRefusesEmptyNames() {
        let unnamed = FormatFixtures.named(FormatFixtures.dtypeTensor("int8"), "")
        assertTensorFileError({ try NPZ.encode([unnamed]) }, source: "(npz in memory)", "needs a non-empty name")
    }

    // MARK: Malformed archives

    func testNotAZipIsRefused() throws {
        assertTensorFileError({ try NPZ.read(bytes: Array("just some text, certainly not a zip archive".utf8), source: "text.npz") },
                              source: "text.npz", "not a zip archive: no end-of-central-directory record")
        assertTensorFileError({ try NPZ.read(bytes: try FormatFixtures.bytes("npy/float32.npy"), source: "single.npz") },
                              source: "single.npz", "not a zip archive: this is a single .npy file")
    }

    func testTruncatedArchiveIsRefused() throws {
        let bytes = try stored()
        assertTensorFileError({ try NPZ.read(bytes: Array(bytes.dropLast(10)), source: "cut.npz") }, source: "cut.npz",
                              "truncated zip archive: no end-of-central-directory record")
        assertTensorFileError({ try NPZ.read(bytes: Array(bytes.prefix(bytes.count / 2)), source: "half.npz") }, source: "half.npz",
                              "truncated zip archive")
    }

    func testCentralDirectoryOutsideTheArchiveIsRefused() throws {
        var bytes = try stored()
        bytes.storeLittleEndian(UInt32(bytes.count), at: bytes.count - 22 + 16)
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "moved.npz") }, source: "moved.npz",
                              "truncated or corrupt archive: the central directory")
    }

    func testCRCMismatchIsRefused() throws {
        var bytes = try stored()
        let layout = Layout(bytes)
        bytes[layout.dataStart(0, in: bytes) + layout.compressedSize(0, in: bytes) - 1] ^= 0x01
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "flipped.npz") }, source: "flipped.npz",
                              "member 'weight.npy'", "CRC-32 mismatch")
    }

    func testUnsupportedCompressionMethodIsRefused() throws {
        var bytes = try stored()
        Layout(bytes).setMethod(&bytes, member: 1, 12)
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "bz.npz") }, source: "bz.npz",
                              "member 'bias.npy': unsupported compression method 12 (bzip2); only stored (0) and deflated (8) are read")
    }

    func testEncryptedMemberIsRefused() throws {
        var bytes = try stored()
        Layout(bytes).patch(&bytes, member: 0, local: 6, central: 8, to: UInt16(1))
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "secret.npz") }, source: "secret.npz",
                              "member 'weight.npy': encrypted members are not supported")
    }

    func testMemberThatIsNotAValidNpyIsRefusedByName() throws {
        var bytes = try stored()
        let layout = Layout(bytes)
        bytes[layout.dataStart(2, in: bytes) + 1] = UInt8(ascii: "X")
        layout.refreshCRC(&bytes, member: 2)
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "weights.npz") }, source: "weights.npz",
                              "member 'labels.npy': not a .npy file: bad magic")
    }

    func testTruncatedDataInsideAMemberIsReportedWithTheMember() throws {
        // A conv1 weight's header with only 250 floats behind it: the message of Docs/formats.md.
        var bytes = try NPZ.encode([FormatFixtures.float32("conv1.weight", [250], [Float](repeating: 1, count: 250))])
        let layout = Layout(bytes)
        let start = layout.dataStart(0, in: bytes)
        let old = Array("(250,), }      ".utf8), new = Array("(96, 3, 11, 11), }".utf8)
        let at = (start..<(start + 128)).first { bytes[$0..<($0 + old.count)].elementsEqual(old) }!
        bytes.replaceSubrange(at..<(at + new.count), with: new)
        layout.refreshCRC(&bytes, member: 0)
        let error = assertTensorFileError({ try NPZ.read(bytes: bytes, source: "weights.npz") }, source: "weights.npz")
        XCTAssertEqual(error?.description, "weights.npz: member 'conv1.weight.npy': data truncated: expected 139392 bytes, "
                       + "file holds 1000 (shape (96, 3, 11, 11), dtype <f4) (at byte 128)")
    }

    func testMemberThatIsNotNpyByNameIsRefused() throws {
        var bytes = try stored()
        Layout(bytes).rename(&bytes, member: 0, to: "weight.txt")
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "odd.npz") }, source: "odd.npz",
                              "member 'weight.txt': not a .npy member")
    }

    func testDuplicateMemberNamesAreRefused() throws {
        var bytes = try NPZ.encode([FormatFixtures.named(FormatFixtures.dtypeTensor("int8"), "a"),
                                    FormatFixtures.named(FormatFixtures.dtypeTensor("int16"), "b")])
        Layout(bytes).rename(&bytes, member: 1, to: "a.npy")
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "dup.npz") }, source: "dup.npz",
                              "member 'a.npy': duplicate member name")
    }

    func testOverlappingMembersAreRefused() throws {
        // Two directory entries sharing one member's bytes: a way to make a small file inflate many times over.
        var bytes = try stored()
        let layout = Layout(bytes)
        bytes.storeLittleEndian(UInt32(layout.local[0]), at: layout.central[1] + 42)
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "overlap.npz") }, source: "overlap.npz",
                              "member 'bias.npy': overlaps member 'weight.npy'")
    }

    func testLocalHeaderDisagreeingWithDirectoryIsRefused() throws {
        var bytes = try stored()
        let layout = Layout(bytes)
        bytes.storeLittleEndian(UInt32(layout.compressedSize(0, in: bytes) + 1), at: layout.local[0] + 18)
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "sizes.npz") }, source: "sizes.npz",
                              "member 'weight.npy': sizes disagree: the local header says 153 bytes compressed")
    }

    func testStoredMemberSizesMustAgree() throws {
        var bytes = try stored()
        let layout = Layout(bytes)
        layout.setUncompressedSize(&bytes, member: 0, UInt32(layout.compressedSize(0, in: bytes) + 8))
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "sizes.npz") }, source: "sizes.npz",
                              "member 'weight.npy': sizes disagree: a stored member of 152 bytes claims 160 bytes uncompressed")
    }

    func testInflatedSizeMustMatchTheDirectory() throws {
        let original = try compressed()
        let layout = Layout(original)
        let size = Int(original.readLittleEndian(UInt32.self, at: layout.central[0] + 24))
        var longer = original
        layout.setUncompressedSize(&longer, member: 0, UInt32(size + 1))
        assertTensorFileError({ try NPZ.read(bytes: longer, source: "sizes.npz") }, source: "sizes.npz",
                              "member 'weight.npy': sizes disagree: the member inflates to \(size) bytes, the directory says \(size + 1)")
        var shorter = original
        layout.setUncompressedSize(&shorter, member: 0, UInt32(size - 1))
        assertTensorFileError({ try NPZ.read(bytes: shorter, source: "sizes.npz") }, source: "sizes.npz",
                              "member 'weight.npy': sizes disagree: the member inflates to more than the \(size - 1) bytes")
    }

    func testAbsurdUncompressedSizeIsRefusedBeforeAllocating() throws {
        var bytes = try compressed()
        Layout(bytes).setUncompressedSize(&bytes, member: 4, 0xFFFF_FFF0)
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "bomb.npz") }, source: "bomb.npz",
                              "member 'zeros.npy': claims 4294967280 bytes uncompressed", "beyond deflate's 1032:1 limit")
    }

    func testCorruptDeflateDataIsRefused() throws {
        var bytes = try compressed()
        let layout = Layout(bytes)
        bytes[layout.dataStart(0, in: bytes)] = 0xFF  // block type 3: reserved
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "bad.npz") }, source: "bad.npz",
                              "member 'weight.npy': corrupt deflate data: invalid block type")
    }

    func testTruncatedDeflateStreamIsRefused() throws {
        var bytes = try compressed()
        let layout = Layout(bytes)
        layout.setCompressedSize(&bytes, member: 4, UInt32(layout.compressedSize(4, in: bytes) / 2))
        assertTensorFileError({ try NPZ.read(bytes: bytes, source: "short.npz") }, source: "short.npz",
                              "member 'zeros.npy': truncated deflate data")
    }
}
