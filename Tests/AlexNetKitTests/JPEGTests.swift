import XCTest
@testable import AlexNetKit

final class JPEGTests: XCTestCase {
    /// A smooth 32x24 RGB gradient: JPEG keeps it within a few levels.
    private func gradient() -> Image8 {
        var pixels: [UInt8] = []
        for y in 0..<24 { for x in 0..<32 { pixels += [UInt8(x * 8), UInt8(y * 10), 128] } }
        return Image8(width: 32, height: 24, channels: 3, pixels: pixels)
    }

    func testRoundTripKeepsSizeAndApproximatePixels() throws {
        let image = gradient()
        for progressive in [false, true] {
            let decoded = try JPEG.decode(try JPEG.encode(image, quality: 95, progressive: progressive), source: "mem.jpg")
            XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [32, 24, 3])
            let worst = zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max()!
            XCTAssertLessThan(worst, 12, "progressive \(progressive)")
        }
    }

    func testGreyscaleFileDecodesToRGB() throws {
        let grey = Image8(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 200, count: 64))
        let decoded = try JPEG.decode(try JPEG.encode(grey), source: "grey.jpg")
        XCTAssertEqual(decoded.channels, 3)
        XCTAssertEqual(decoded.pixels[0], decoded.pixels[1])
        XCTAssertEqual(Int(decoded.pixels[0]), 200, accuracy: 2)
    }

    func testTruncatedFileIsRefusedByName() throws {
        // 128x128 of varied pixels: most of the file is entropy-coded data, so cutting
        // off its last third leaves valid headers and missing scan data.
        var pixels: [UInt8] = []
        for i in 0..<(128 * 128 * 3) { pixels.append(UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13)) }
        let bytes = try JPEG.encode(Image8(width: 128, height: 128, channels: 3, pixels: pixels))
        let error = captureError { try JPEG.decode(Array(bytes.prefix(bytes.count * 2 / 3)), source: "cut.jpg") } as? ImageError
        XCTAssertEqual(error?.source, "cut.jpg")
        XCTAssertTrue(error?.problem.hasPrefix("corrupt or truncated JPEG") ?? false, "\(String(describing: error))")
    }

    func testNonJPEGIsRefusedByName() {
        let error = captureError { try JPEG.decode(Array("not a jpeg at all".utf8), source: "fake.jpg") } as? ImageError
        XCTAssertEqual(error?.source, "fake.jpg")
        XCTAssertTrue(error?.problem.hasPrefix("not a readable JPEG") ?? false, "\(String(describing: error))")
    }

    /// A CMYK file (as Adobe writes them: inverted) decodes to RGB = C * K / 255 per channel.
    func testCMYKFileDecodesToRGB() throws {
        let cmyk = [UInt8](repeating: 0, count: 8 * 8 * 4).enumerated().map { i, _ in [UInt8(200), 100, 50, 255][i % 4] }
        let bytes = try JPEG.encode(Image8(width: 8, height: 8, channels: 4, pixels: cmyk), quality: 100)
        let decoded = try JPEG.decode(bytes, source: "cmyk.jpg")
        XCTAssertEqual(decoded.channels, 3)
        XCTAssertEqual(Int(decoded.pixels[0]), 200, accuracy: 3)  // 200 * 255 / 255
        XCTAssertEqual(Int(decoded.pixels[1]), 100, accuracy: 3)
        XCTAssertEqual(Int(decoded.pixels[2]), 50, accuracy: 3)
    }
}
