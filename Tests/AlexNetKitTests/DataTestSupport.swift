import Foundation
import XCTest
@testable import AlexNetKit

/// Writers for the official data formats, so tests make their own small files.
enum DataFixtures {
    /// A fresh empty directory under the system's temporary directory.
    static func temporaryDirectory(_ name: String = #function) throws -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let path = NSTemporaryDirectory() + "alexnet-data-\(safe)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Pixel value of channel `c`, row `y`, column `x` of CIFAR test record `record`.
    static func cifarPixel(record: Int, c: Int, y: Int, x: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: record * 31 + c * 85 + y * 7 + x * 3)
    }

    /// One 3073-byte CIFAR-10 record: label, then the R, G, B planes of 32x32.
    static func cifarRecord(label: UInt8, record: Int) -> [UInt8] {
        var bytes = [label]
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { bytes.append(cifarPixel(record: record, c: c, y: y, x: x)) } } }
        return bytes
    }

    /// A batch file of records numbered from `firstRecord` with the given labels.
    static func cifarBatch(labels: [UInt8], firstRecord: Int = 0) -> [UInt8] {
        labels.enumerated().flatMap { cifarRecord(label: $0.element, record: firstRecord + $0.offset) }
    }

    /// The six batch files (2 records each: labels 2k, 2k+1 for file k, test 8 and 9) plus meta, in `directory`.
    static func writeCIFARDirectory(_ directory: String, meta: Bool = true) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for k in 1...5 {
            files["data_batch_\(k).bin"] = cifarBatch(labels: [UInt8(2 * (k - 1)), UInt8(2 * (k - 1) + 1)], firstRecord: 2 * (k - 1))
        }
        files["test_batch.bin"] = cifarBatch(labels: [8, 9, 0], firstRecord: 100)
        if meta { files["batches.meta.txt"] = Array((CIFAR10Dataset.standardClassNames.map { $0.uppercased() }.joined(separator: "\n") + "\n\n").utf8) }
        for (name, bytes) in files { try write(bytes, to: directory + "/" + name) }
        return files
    }

    /// An IDX file: magic, big-endian extents, bytes.
    static func idx(magic: UInt32, dims: [Int], data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        func u32(_ v: UInt32) { bytes += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        u32(magic)
        for d in dims { u32(UInt32(d)) }
        return bytes + data
    }

    /// `count` images of `rows x columns` whose pixel (y, x) of image n is `n * 16 + y * columns + x`.
    static func idxImages(count: Int, rows: Int, columns: Int) -> [UInt8] {
        let data = (0..<count).flatMap { n in (0..<(rows * columns)).map { UInt8(truncatingIfNeeded: n * 16 + $0) } }
        return idx(magic: IDX.imagesMagic, dims: [count, rows, columns], data: data)
    }

    static func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        idx(magic: IDX.labelsMagic, dims: [labels.count], data: labels)
    }

    /// A ustar archive of regular files, written as GNU tar does (octal sizes, checksum), with two end blocks.
    static func tar(_ entries: [(name: String, bytes: [UInt8])]) -> [UInt8] {
        var archive: [UInt8] = []
        for entry in entries {
            archive += tarHeader(name: entry.name, size: entry.bytes.count, type: UInt8(ascii: "0"))
            archive += entry.bytes
            archive += [UInt8](repeating: 0, count: (512 - entry.bytes.count % 512) % 512)
        }
        return archive + [UInt8](repeating: 0, count: 1024)
    }

    static func tarHeader(name: String, size: Int, type: UInt8) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) { for (i, b) in text.utf8.enumerated() { header[offset + i] = b } }
        put(name, at: 0)
        put("0000644", at: 100); put("0000000", at: 108); put("0000000", at: 116)
        let octal = String(size, radix: 8)
        put(String(repeating: "0", count: 11 - octal.count) + octal, at: 124)
        put("00000000000", at: 136)
        header[156] = type
        put("ustar", at: 257); put("00", at: 263)
        put("        ", at: 148)
        let sum = header.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - digits.count) + digits, at: 148)
        header[154] = 0; header[155] = 0x20
        return header
    }

    /// A 256-level smooth RGB test image of `width x height` with a stripe per `seed`.
    static func photo(width: Int, height: Int, seed: Int = 0) -> Image8 {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                pixels += [UInt8((x * 255) / max(1, width - 1)), UInt8((y * 255) / max(1, height - 1)),
                           UInt8(truncatingIfNeeded: (x + y + seed * 40) % 256)]
            }
        }
        return Image8(width: width, height: height, channels: 3, pixels: pixels)
    }

    /// Noisy pixels: most of a JPEG of this is entropy-coded data, so cutting it truncates the scan.
    static func noise(width: Int, height: Int) -> Image8 {
        var pixels: [UInt8] = []
        for i in 0..<(width * height * 3) { pixels.append(UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13)) }
        return Image8(width: width, height: height, channels: 3, pixels: pixels)
    }

    /// A `[C, H, W]` tensor from nested literal rows per channel.
    static func image(_ channels: [[[Float]]]) -> Tensor<Float> {
        let h = channels[0].count, w = channels[0][0].count
        return try! Tensor<Float>(shape: [channels.count, h, w], values: channels.flatMap { $0.flatMap { $0 } })
    }

    /// The `[C, H, W]` image whose element (c, y, x) is `c * 100 + y * 10 + x`.
    static func indexImage(channels: Int, height: Int, width: Int) -> Tensor<Float> {
        var values: [Float] = []
        for c in 0..<channels { for y in 0..<height { for x in 0..<width { values.append(Float(c * 100 + y * 10 + x)) } } }
        return try! Tensor<Float>(shape: [channels, height, width], values: values)
    }
}

/// A data set held in memory, for loader and statistics tests.
final class MemoryDataset: ImageDataset, @unchecked Sendable {
    let format = "memory"
    let location = "memory"
    let classNames: [String]
    let labels: [Int]
    let storedSize: ImageSize?
    let images: [Tensor<Float>]
    var count: Int { images.count }

    init(images: [Tensor<Float>], labels: [Int], classes: Int = 10) {
        self.images = images
        self.labels = labels
        self.classNames = (0..<classes).map { "class\($0)" }
        let sizes = Set(images.map { ImageSize(of: $0) })
        self.storedSize = sizes.count == 1 ? sizes.first : nil
    }

    func image(at index: Int) throws -> Tensor<Float> { images[index] }
    func exampleName(at index: Int) -> String { "memory image \(index)" }
}

extension XCTestCase {
    /// Asserts `error` is a ``DataError`` with this description.
    func assertDataError(_ error: Error?, _ description: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let error = error as? DataError else {
            XCTFail("expected a DataError, got \(String(describing: error))", file: file, line: line)
            return
        }
        XCTAssertEqual(error.description, description, file: file, line: line)
    }
}
