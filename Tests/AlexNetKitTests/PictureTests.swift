import Foundation
import XCTest
@testable import AlexNetKit

/// The pictures module: the PNG codec, the canvas and font, and the four
/// pictures (line chart, filter grid, confusion matrix, neighbours), checked
/// by sizes computed from the documented layouts and by known pixels.
final class PictureTests: XCTestCase {
    // MARK: PNG

    func testPNGRoundTripsOddSizes() throws {
        for (width, height) in [(1, 1), (7, 3), (640, 3), (5, 17)] {
            var image = RGBImage(width: width, height: height)
            var state: UInt32 = 12345
            for i in image.pixels.indices {
                // Half noise, half smooth ramps, so every row filter has rows it wins.
                state = state &* 1_664_525 &+ 1_013_904_223
                image.pixels[i] = i % 6 < 3 ? UInt8(state >> 24) : UInt8((i / 3) % 256)
            }
            let bytes = PNG.encode(image)
            XCTAssertEqual(Array(bytes.prefix(8)), PNG.signature)
            XCTAssertEqual(Array(bytes[12..<16]), Array("IHDR".utf8))
            XCTAssertEqual(bigEndian(bytes, 16), width)
            XCTAssertEqual(bigEndian(bytes, 20), height)
            XCTAssertEqual(Array(bytes[24..<29]), [8, 2, 0, 0, 0])  // 8-bit RGB, not interlaced
            XCTAssertEqual(Array(bytes.suffix(12)), [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82])
            XCTAssertEqual(try PNG.decode(bytes), image, "\(width)x\(height)")
        }
    }

    func testHandBuiltGreyAndRGBAFilesDecode() throws {
        let grey = try PNG.decode(PictureFixtures.handBuiltGrey)
        XCTAssertEqual([grey.width, grey.height], [3, 4])
        let greyLevels: [UInt8] = [10, 20, 250, 12, 30, 240, 100, 0, 255, 5, 200, 7]
        XCTAssertEqual(grey.pixels, greyLevels.flatMap { [$0, $0, $0] })

        let rgba = try PNG.decode(PictureFixtures.handBuiltRGBA)
        XCTAssertEqual([rgba.width, rgba.height], [3, 4])
        XCTAssertEqual(rgba.pixels, [255, 0, 0, 0, 255, 0, 0, 0, 255,
                                     10, 20, 30, 50, 60, 70, 90, 100, 110,
                                     200, 100, 50, 199, 101, 49, 0, 255, 1,
                                     7, 7, 7, 130, 131, 132, 250, 5, 128])
    }

    func testTruncatedAndFlippedFilesThrow() {
        let file = PictureFixtures.handBuiltGrey
        for length in 0..<file.count {
            XCTAssertThrowsError(try PNG.decode(Array(file.prefix(length))), "prefix \(length)") {
                XCTAssertTrue($0 is PNGError, "\($0)")
            }
        }
        // Every byte after the signature is under a CRC or is a length, so any change is caught.
        for offset in 8..<file.count {
            var changed = file
            changed[offset] ^= 0x5A
            XCTAssertThrowsError(try PNG.decode(changed), "byte \(offset)") { XCTAssertTrue($0 is PNGError, "\($0)") }
        }
        var state: UInt64 = 7
        for _ in 0..<200 {
            var junk = PNG.signature
            for _ in 0..<40 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                junk.append(UInt8(state >> 56))
            }
            XCTAssertThrowsError(try PNG.decode(junk))
        }
        XCTAssertThrowsError(try PNG.decode(Array("not a png at all".utf8)))
    }

    func testBadCRCAndBadHeadersAreNamed() {
        var badCRC = PictureFixtures.handBuiltGrey
        badCRC[32] ^= 1  // the IHDR CRC's last byte
        XCTAssertTrue(problem(badCRC).contains("chunk IHDR at offset 8: CRC mismatch"), problem(badCRC))

        let huge = file(width: 1 << 16, height: 1 << 16, colourType: 2, raw: [0])
        XCTAssertTrue(problem(huge).contains("65536x65536 is 4294967296 pixels"), problem(huge))
        XCTAssertTrue(problem(file(width: 0, height: 3, colourType: 2, raw: [0])).contains("not valid"))
        XCTAssertTrue(problem(file(width: 1, height: 1, colourType: 3, raw: [0, 0])).contains("palette"))
        XCTAssertTrue(problem(file(width: 1, height: 1, colourType: 2, depth: 16, raw: [0, 0])).contains("bit depth 16"))
        XCTAssertTrue(problem(file(width: 1, height: 1, colourType: 2, interlace: 1, raw: [0, 0])).contains("interlaced"))
        XCTAssertTrue(problem(file(width: 1, height: 1, colourType: 0, raw: [5, 0])).contains("filter type 5"))
    }

    func testWrongInflatedLengthAndChunkOrderThrow() throws {
        // A 2x2 grey image needs 2 * (1 + 2) = 6 inflated bytes.
        XCTAssertEqual(try PNG.decode(file(width: 2, height: 2, colourType: 0, raw: [0, 1, 2, 0, 3, 4])).pixels,
                       [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
        XCTAssertTrue(problem(file(width: 2, height: 2, colourType: 0, raw: [0, 1, 2, 0, 3])).contains("inflates to 5 bytes"))
        XCTAssertTrue(problem(file(width: 2, height: 2, colourType: 0, raw: [0, 1, 2, 0, 3, 4, 9]))
                        .contains("more than the 6 bytes"))
        let idat = PNG.pngChunk("IDAT", PNG.zlibCompress([0, 1, 2, 0, 3, 4]))
        let split = PNG.signature + header(width: 2, height: 2, colourType: 0) + Array(idat.prefix(12))
        XCTAssertThrowsError(try PNG.decode(split + PNG.pngChunk("IEND", [])))  // the CRC no longer matches
        let stream = PNG.zlibCompress([0, 1, 2, 0, 3, 4])
        let twoRuns = PNG.signature + header(width: 2, height: 2, colourType: 0) + PNG.pngChunk("IDAT", Array(stream.prefix(4)))
            + PNG.pngChunk("tEXt", Array("a\u{0}b".utf8)) + PNG.pngChunk("IDAT", Array(stream.dropFirst(4))) + PNG.pngChunk("IEND", [])
        XCTAssertTrue(problem(twoRuns).contains("consecutive"), problem(twoRuns))
        let unknown = PNG.signature + header(width: 2, height: 2, colourType: 0) + PNG.pngChunk("ABCD", [])
            + PNG.pngChunk("IDAT", stream) + PNG.pngChunk("IEND", [])
        XCTAssertTrue(problem(unknown).contains("unknown critical chunk ABCD"), problem(unknown))
        let noIEND = PNG.signature + header(width: 2, height: 2, colourType: 0) + PNG.pngChunk("IDAT", stream)
        XCTAssertTrue(problem(noIEND).contains("without an IEND chunk"), problem(noIEND))
    }

    func testWriteThenReadBack() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pictures-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var image = RGBImage(width: 9, height: 4, background: .lightGrey)
        image[8, 3] = RGB(1, 2, 3)
        let path = directory + "/picture.png"
        try PNG.write(image, to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(try PNG.decode(bytes), image)
        XCTAssertThrowsError(try PNG.write(image, to: directory + "/missing/picture.png"))
    }

    // MARK: Canvas and font

    func testGlyphSetsExactlyItsPixels() {
        for (character, scale) in [("A", 1), ("g", 2), ("%", 3)] {
            var image = RGBImage(width: 40, height: 30)
            image.text(character, x: 3, y: 2, colour: .black, scale: scale)
            let rows = BitmapFont.rows(for: Character(character))
            for y in 0..<30 {
                for x in 0..<40 {
                    let (gx, gy) = ((x - 3).quotientAndRemainder(dividingBy: scale).quotient,
                                    (y - 2).quotientAndRemainder(dividingBy: scale).quotient)
                    let inside = x >= 3 && y >= 2 && gx < 5 && gy < 7
                    let set = inside && rows[gy] & (0b10000 >> gx) != 0
                    XCTAssertEqual(image[x, y], set ? .black : .white, "\(character) at (\(x), \(y))")
                }
            }
        }
        XCTAssertEqual(BitmapFont.glyphs.count, 95)
        XCTAssertTrue(BitmapFont.glyphs.allSatisfy { $0.count == 7 && $0.allSatisfy { $0 < 32 } })
        // Every printable character but the space has a glyph of its own, all different.
        XCTAssertEqual(Set(BitmapFont.glyphs.dropFirst()).count, 94)
    }

    func testTextWidthIsWhatTextTouches() {
        for (text, scale) in [("HM", 1), ("H1 M", 2), ("Hello, world! M", 1)] {
            var image = RGBImage(width: 200, height: 20)
            image.text(text, x: 5, y: 3, scale: scale)
            let touched = (0..<200).filter { x in (0..<20).contains { image[x, $0] != .white } }
            XCTAssertEqual(touched.first, 5)
            XCTAssertEqual(touched.last.map { $0 - 5 + 1 }, RGBImage.textWidth(text, scale: scale), text)
        }
        XCTAssertEqual(RGBImage.textWidth(""), 0)
        XCTAssertEqual(RGBImage.textWidth("abc", scale: 2), (3 * 6 - 1) * 2)
        var unknown = RGBImage(width: 20, height: 10), question = unknown
        unknown.text("é", x: 1, y: 1)
        question.text("?", x: 1, y: 1)
        XCTAssertEqual(unknown, question)
    }

    func testDrawingIsClipped() {
        var image = RGBImage(width: 10, height: 8)
        image.fill(x: -5, y: 6, width: 100, height: 100, colour: .black)
        XCTAssertEqual(image[0, 7], .black)
        XCTAssertEqual(image[9, 5], .white)
        image.fill(x: Int.max - 1, y: Int.min, width: Int.max, height: Int.max, colour: .grey)
        image.line(from: (-1e300, 3), to: (1e300, 3), colour: .grey, width: 3)
        XCTAssertEqual(image[4, 2], .grey)
        XCTAssertEqual(image[4, 1], .white)
        image.line(from: (.nan, 0), to: (5, 5), colour: .black)
        image.line(from: (0, 0), to: (.infinity, 5), colour: .black)
        XCTAssertEqual(image[0, 0], .white)
        image.line(from: (0, 0), to: (0, 0), colour: RGB(9, 9, 9))
        XCTAssertEqual(image[0, 0], RGB(9, 9, 9))
        image.text("clipped text", x: -7, y: 5, scale: 4)
        var small = RGBImage(width: 3, height: 3, background: .black)
        small[1, 2] = .white
        image.draw(small, x: 8, y: -1)
        XCTAssertEqual(image[9, 0], .black)
        XCTAssertEqual(image[9, 1], .white)
        XCTAssertEqual(RGB.palette(-1), RGB.palette(RGB.paletteColours.count - 1))
        XCTAssertEqual(Set((0..<10).map(RGB.palette)).count, 10)
    }

    // MARK: Line chart

    func testLineChartColoursKnownPixels() {
        var chart = LineChart(title: "Training", xLabel: "epoch", yLabel: "error",
                              series: [ChartSeries(name: "run", colour: RGB.palette(3),
                                                   points: (0...10).map { (x: Double($0), y: 0.5) })])
        chart.yRange = 0...1
        chart.xRange = 0...10
        chart.referenceLines = [(y: 0.25, label: "paper")]
        let image = chart.render()
        XCTAssertEqual([image.width, image.height], [900, 560])
        let middle = chart.pixel(x: 5, y: 0.5)
        XCTAssertEqual(image[Int(middle.x.rounded()), Int(middle.y.rounded())], RGB.palette(3))
        let corner = chart.pixel(x: 0, y: 0), opposite = chart.pixel(x: 10, y: 1)
        XCTAssertEqual(image[Int(corner.x), Int(corner.y)], .black)  // the frame
        XCTAssertEqual(image[Int(opposite.x), Int(opposite.y)], .black)
        XCTAssertLessThan(corner.x, middle.x)
        XCTAssertGreaterThan(corner.y, middle.y)  // larger values higher up
        let reference = chart.pixel(x: 0, y: 0.25)
        XCTAssertEqual(image[Int(reference.x) + 2, Int(reference.y.rounded())], LineChart.referenceColour)
        let small = chart.render(width: 300, height: 200)
        XCTAssertEqual([small.width, small.height], [300, 200])
        let position = chart.pixel(x: 5, y: 0.5, width: 300, height: 200)
        XCTAssertEqual(small[Int(position.x.rounded()), Int(position.y.rounded())], RGB.palette(3))
    }

    func testLegendListsEachNameOnce() {
        let seeds = (0..<3).map { seed in
            ChartSeries(name: "dropout", colour: .palette(0), points: [(0, Double(seed)), (1, 2)], thick: false)
        }
        let chart = LineChart(title: "", xLabel: "", yLabel: "",
                              series: seeds + [ChartSeries(name: "dropout", colour: .palette(0), points: [(0, 1), (1, 2)]),
                                               ChartSeries(name: "none", colour: .palette(1), points: [(0, 3)]),
                                               ChartSeries(name: "", colour: .palette(2), points: [])])
        XCTAssertEqual(chart.legendEntries.map(\.name), ["dropout", "none"])
        XCTAssertEqual(chart.legendEntries.map(\.thick), [true, true])
        let image = chart.render(width: 400, height: 300)
        // The lone point of "none" is drawn as a dot.
        let dot = chart.pixel(x: 0, y: 3, width: 400, height: 300)
        XCTAssertEqual(image[Int(dot.x.rounded()) + 1, Int(dot.y.rounded()) + 1], RGB.palette(1))
    }

    func testEmptyAndNonFiniteChartsRender() {
        let empty = LineChart(title: "nothing", xLabel: "x", yLabel: "y").render(width: 320, height: 240)
        XCTAssertEqual([empty.width, empty.height], [320, 240])
        XCTAssertNoThrow(try PNG.decode(PNG.encode(empty)))
        var odd = LineChart(title: "odd", xLabel: "x", yLabel: "y", series: [
            ChartSeries(name: "nan", colour: .palette(0), points: [(.nan, .nan), (1, .infinity)]),
            ChartSeries(name: "flat", colour: .palette(1), points: [(3, 7), (3, 7)]),
            ChartSeries(name: "huge", colour: .palette(2), points: [(-1e300, 1e300), (1e300, -1e300), (1e-300, 1e20)]),
        ])
        odd.referenceLines = [(y: .nan, label: "bad"), (y: 1e308, label: "far")]
        for (width, height) in [(900, 560), (1, 1), (40, 30), (2000, 1200)] {
            let image = odd.render(width: width, height: height)
            XCTAssertEqual([image.width, image.height], [width, height])
        }
        odd.yRange = -Double.infinity...Double.infinity
        odd.xRange = 5...5
        XCTAssertEqual(odd.render(width: 200, height: 100).width, 200)
        // Lone points far outside fixed ranges, and ranges at the ends of the doubles.
        odd.series.append(ChartSeries(name: "far", colour: .black, points: [(1e30, -1e30), (.nan, 0), (-1e300, 0)]))
        odd.yRange = 0...1
        XCTAssertEqual(odd.render(width: 200, height: 100).height, 100)
        odd.xRange = Double.leastNonzeroMagnitude...(2 * Double.leastNonzeroMagnitude)
        odd.yRange = 0...Double.leastNonzeroMagnitude
        XCTAssertEqual(odd.render(width: 200, height: 100).height, 100)
        // One value: an axis around it (1 either side near 0).
        XCTAssertEqual(ChartAxis(data: [Double.leastNonzeroMagnitude], fixed: nil).labels, ["-1.0", "-0.5", "0", "0.5", "1.0"])
        let axis = ChartAxis(data: [0.013, 0.87], fixed: nil)
        XCTAssertEqual(axis.lower, 0)
        XCTAssertEqual(axis.upper, 1, accuracy: 1e-12)
        XCTAssertEqual(axis.labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(ChartAxis(data: [12, 480], fixed: nil).labels, ["0", "100", "200", "300", "400", "500"])
    }

    // MARK: Filter grid

    /// Four 2x2 RGB kernels: 0 red at its top-left on black, 1 constant, 2 a
    /// grey ramp (equal channels), 3 constant colours per channel (R -1, G 1, B 0).
    private let kernels = try! Tensor<Float>(shape: [4, 3, 2, 2], values:
        [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        + [Float](repeating: 0.3, count: 12)
        + [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]
        + [-1, -1, -1, -1, 1, 1, 1, 1, 0, 0, 0, 0])

    func testFilterGridSizesAndColours() throws {
        let one = try FilterGrid.render(weights: kernels, towers: 1, scale: 3)
        // 4 columns of 2 * 3 pixels with 1-pixel gaps and border; one row.
        XCTAssertEqual([one.width, one.height], [4 * (2 * 3 + 1) + 1, 1 * (2 * 3 + 1) + 1])
        XCTAssertEqual(one[1, 1], RGB(255, 0, 0))  // kernel 0's maximum, in red only
        XCTAssertEqual(one[3, 3], RGB(255, 0, 0))  // the same kernel pixel, magnified 3x3
        XCTAssertEqual(one[4, 1], .black)
        XCTAssertEqual(one[0, 1], .white)  // border
        XCTAssertEqual(one[7, 1], .white)  // gap
        XCTAssertEqual(one[8, 1], RGB(128, 128, 128))  // constant kernel 1
        XCTAssertEqual(one[15, 1], .black)  // kernel 2: 0, 1, 2, 3 -> 0, 85, 170, 255 in all channels
        XCTAssertEqual(one[18, 1], RGB(85, 85, 85))
        XCTAssertEqual(one[18, 4], RGB(255, 255, 255))
        XCTAssertEqual(one[22, 1], RGB(0, 255, 128))  // kernel 3: -1 -> 0, 1 -> 255, 0 -> 127.5

        let two = try FilterGrid.render(weights: kernels, towers: 2, scale: 3)
        // 2 columns; each tower a label strip and a block one row tall.
        XCTAssertEqual([two.width, two.height], [2 * 7 + 1, 2 * (FilterGrid.labelStrip + 1 * 7 + 1)])
        let towerOneTop = FilterGrid.labelStrip + 8 + FilterGrid.labelStrip
        XCTAssertEqual(two[1, FilterGrid.labelStrip + 1], RGB(255, 0, 0))  // kernel 0, top left
        XCTAssertEqual(two[8, FilterGrid.labelStrip + 1], RGB(128, 128, 128))  // kernel 1 beside it
        XCTAssertEqual(two[4, towerOneTop + 1], RGB(85, 85, 85))  // kernel 2 below kernel 0
        XCTAssertEqual(two[8, towerOneTop + 1], RGB(0, 255, 128))  // kernel 3 below kernel 1

        let columns = try FilterGrid.render(weights: kernels, towers: 1, scale: 1, columns: 3)
        XCTAssertEqual([columns.width, columns.height], [3 * 3 + 1, 2 * 3 + 1])
        XCTAssertEqual(columns[1, 4], RGB(0, 255, 128))  // kernel 3 starts the second row

        let grey = try FilterGrid.render(weights: try Tensor(shape: [2, 1, 1, 2], values: [0, 1, 7, 7]), towers: 1, scale: 1)
        XCTAssertEqual([grey.width, grey.height], [2 * 3 + 1, 2 + 1])
        XCTAssertEqual([grey[1, 1], grey[2, 1], grey[4, 1]], [.black, .white, RGB(128, 128, 128)])
    }

    func testColourfulness() throws {
        func score(_ values: [Float]) throws -> Double? {
            try FilterGrid.colourfulness(weights: try Tensor(shape: [1, 3, 2, 2], values: values), towers: 1)?.first
        }
        XCTAssertEqual(try score([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]), 0)  // equal channels
        XCTAssertEqual(try score([Float](repeating: -0.7, count: 12)), 0)  // constant
        // Red at one pixel: colour sum 150/9 over a spread of 25 - 25/12 (see the doc comment's formula).
        XCTAssertEqual(try XCTUnwrap(try score([5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), (150.0 / 9 / (25 - 25.0 / 12)).squareRoot(),
                       accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(try score([-1, -1, -1, -1, 1, 1, 1, 1, 0, 0, 0, 0])), 1, accuracy: 1e-12)
        let towers = try XCTUnwrap(try FilterGrid.colourfulness(weights: kernels, towers: 2))
        XCTAssertEqual(towers.count, 2)
        XCTAssertEqual(towers[0], (150.0 / 9 / (25 - 25.0 / 12)).squareRoot() / 2, accuracy: 1e-9)
        XCTAssertEqual(towers[1], 0.5, accuracy: 1e-12)
        XCTAssertNil(try FilterGrid.colourfulness(weights: Tensor(shape: [2, 1, 3, 3]), towers: 2))
    }

    func testFilterGridRefusesBadWeights() {
        XCTAssertTrue(captureError { try FilterGrid.render(weights: Tensor(shape: [4, 3, 2]), towers: 1) } is ShapeError)
        XCTAssertTrue(captureError { try FilterGrid.render(weights: Tensor(shape: [4, 2, 2, 2]), towers: 1) } is ShapeError)
        XCTAssertTrue(captureError { try FilterGrid.colourfulness(weights: Tensor(shape: [0, 3, 2, 2]), towers: 1) } is ShapeError)
        XCTAssertTrue(captureError { try FilterGrid.render(weights: Tensor(shape: [4, 3, 2, 2]), towers: 3) } is ConfigurationError)
        XCTAssertTrue(captureError { try FilterGrid.render(weights: Tensor(shape: [4, 3, 2, 2]), towers: 1, scale: 0) }
                      is ConfigurationError)
        XCTAssertTrue(captureError { try FilterGrid.render(weights: Tensor(shape: [4, 3, 2, 2]), towers: 1, columns: 0) }
                      is ConfigurationError)
        var bad = kernels
        bad[2, 1, 0, 1] = .nan
        let error = captureError { try FilterGrid.colourfulness(weights: bad, towers: 2) } as? NonFiniteError
        XCTAssertEqual(error?.position, [2, 1, 0, 1])
    }

    // MARK: Confusion matrix

    func testConfusionMatrixSizeAndShading() throws {
        let names = ["cat", "dog", "bird"]
        let image = try ConfusionMatrixPicture.render(counts: [5, 0, 0, 0, 7, 0, 0, 0, 9], classNames: names)
        // L = textWidth("bird") = 23; grid at (10 + 23 + 6, 10 + 7 + 8 + 23 + 6); the title is wider than the grid.
        let (gridLeft, gridTop, cell) = (39, 54, 44)
        let title = RGBImage.textWidth("Confusion matrix (rows: actual, columns: predicted)")
        XCTAssertEqual(image.width, max(gridLeft + 3 * cell + 1 + 10, 10 + title + 10))
        XCTAssertEqual(image.height, gridTop + 3 * cell + 1 + 10)
        for actual in 0..<3 {
            for predicted in 0..<3 {
                let pixel = image[gridLeft + predicted * cell + 3, gridTop + actual * cell + 3]
                XCTAssertEqual(pixel, actual == predicted ? ConfusionMatrixPicture.fullColour : .white)
            }
        }
        // Text on the dark diagonal is white.
        let diagonal = (0..<cell).flatMap { dx in (0..<cell).map { image[gridLeft + dx, gridTop + $0] } }
        XCTAssertTrue(diagonal.contains(.white))

        let mixed = try ConfusionMatrixPicture.render(counts: [1, 3, 0, 0], classNames: ["a", "b"], title: "t", cell: 20)
        XCTAssertEqual([mixed.width, mixed.height], [10 + 5 + 6 + 2 * 20 + 1 + 10, 10 + 7 + 8 + 5 + 6 + 2 * 20 + 1 + 10])
        XCTAssertEqual(mixed[21 + 20 + 2, 36 + 2], ConfusionMatrixPicture.colour(fraction: 0.75))
        XCTAssertEqual(mixed[21 + 2, 36 + 20 + 2], .white)  // a row with no images
        XCTAssertEqual(ConfusionMatrixPicture.colour(fraction: 0), .white)

        XCTAssertTrue(captureError { try ConfusionMatrixPicture.render(counts: [1, 2, 3], classNames: ["a", "b"]) } is ShapeError)
        XCTAssertTrue(captureError { try ConfusionMatrixPicture.render(counts: [1, -2, 3, 4], classNames: ["a", "b"]) }
                      is ConfigurationError)
        XCTAssertTrue(captureError { try ConfusionMatrixPicture.render(counts: [], classNames: []) } is ConfigurationError)
    }

    // MARK: Neighbours

    func testNeighbourPictureSizeAndPixels() throws {
        // [3, 2, 3]: channel c, row y, column x holds 80c + 30y + 10x.
        let queryValues: [Float] = (0..<18).map { (i: Int) -> Float in
            let (c, y, x) = (i / 6, i % 6 / 3, i % 3)
            return Float(80 * c + 30 * y + 10 * x)
        }
        let query = try Tensor<Float>(shape: [3, 2, 3], values: queryValues)
        let loudValues = [Float](repeating: 300, count: 9) + [Float](repeating: -5, count: 9)
        let loud = try Tensor<Float>(shape: [3, 2, 3], values: loudValues)
        let grey = try Tensor<Float>(shape: [1, 1, 1], values: [99.6])
        let rows = [[query, loud, grey], [grey, query]]
        let image = try NeighbourPicture.render(rows: rows, captions: ["cat", "dog"], scale: 2)
        // Tiles 6x4 (scale 2 of 3x2), margin 6, caption column 17 + 8, three
        // tiles with the query gap (12) and one gap (2); two rows 4 apart.
        let (margin, tileWidth, tileHeight, captionWidth): (Int, Int, Int, Int) = (6, 6, 4, 25)
        XCTAssertEqual(image.width, 2 * margin + captionWidth + 3 * tileWidth + 12 + 2)
        XCTAssertEqual(image.height, 2 * margin + 2 * tileHeight + 4)
        let queryLeft = margin + captionWidth
        for y in 0..<2 {
            for x in 0..<3 {
                let level = 30 * y + 10 * x
                let expected = RGB(UInt8(level), UInt8(80 + level), UInt8(160 + level))
                XCTAssertEqual(image[queryLeft + 2 * x, margin + 2 * y], expected)
                XCTAssertEqual(image[queryLeft + 2 * x + 1, margin + 2 * y + 1], expected)
            }
        }
        let firstNeighbour = queryLeft + tileWidth + 12, secondNeighbour = firstNeighbour + tileWidth + 2
        XCTAssertEqual(image[firstNeighbour, margin], RGB(255, 255, 0))  // clamped: 300 -> 255, -5 -> 0
        // The 1x1 grey image (99.6 -> 100) is centred in its 6x4 tile.
        XCTAssertEqual(image[secondNeighbour + 2, margin + 1], RGB(100, 100, 100))
        XCTAssertEqual(image[secondNeighbour, margin], RGB.white)
        // Row 1's neighbour is the query image.
        XCTAssertEqual(image[firstNeighbour, margin + tileHeight + 4], RGB(0, 80, 160))

        let captioned = try NeighbourPicture.render(rows: rows, imageCaptions: [["", "1.5", "2.0"], []], scale: 2)
        XCTAssertEqual(captioned.width, 2 * margin + 3 * tileWidth + 12 + 2)
        XCTAssertEqual(captioned.height, 2 * margin + 2 * (tileHeight + 10) + 4)

        XCTAssertTrue(captureError { try NeighbourPicture.render(rows: []) } is ConfigurationError)
        XCTAssertTrue(captureError { try NeighbourPicture.render(rows: [[query]], captions: ["a", "b"]) } is ConfigurationError)
        XCTAssertTrue(captureError { try NeighbourPicture.render(rows: [[Tensor(shape: [2, 2, 2])]]) } is ShapeError)
        let nan = Tensor<Float>(shape: [1, 2, 2], repeating: .nan)
        XCTAssertTrue(captureError { try NeighbourPicture.render(rows: [[nan]]) } is NonFiniteError)
    }

    /// With `ALEXNET_PICTURES_SAMPLES=DIR`, writes one of each picture to DIR
    /// for a person to look at; otherwise does nothing.
    func testWritesSamplePicturesWhenAsked() throws {
        guard let directory = ProcessInfo.processInfo.environment["ALEXNET_PICTURES_SAMPLES"] else { return }
        func curve(_ start: Double, _ decay: Double, _ floor: Double, _ wobble: Double) -> [(x: Double, y: Double)] {
            (0...30).map { (epoch: Int) -> (x: Double, y: Double) in
                let x = Double(epoch)
                return (x, start * exp(-x / decay) + floor + wobble * sin(x))
            }
        }
        var chart = LineChart(title: "Top-1 error on the validation set", xLabel: "epoch", yLabel: "top-1 error (%)")
        for seed in 0..<3 {
            chart.series.append(ChartSeries(name: "with dropout", colour: .palette(0),
                                            points: curve(80, 8, 38, 1.5 * Double(seed)), thick: false))
        }
        chart.series.append(ChartSeries(name: "with dropout", colour: .palette(0), points: curve(80, 8, 39.5, 0)))
        chart.series.append(ChartSeries(name: "without dropout", colour: .palette(1), points: curve(75, 5, 45, 0.5)))
        chart.referenceLines = [(y: 37.5, label: "paper: 37.5%")]
        try PNG.write(chart.render(), to: directory + "/chart.png")

        var values: [Float] = []
        for k in 0..<96 { for c in 0..<3 { for y in 0..<11 { for x in 0..<11 {
            if k < 48 {
                values.append(sin(Float(x * (k % 5 + 1) + y * (k % 3)) / 3))
            } else {
                let distance = Float((x - 5) * (x - 5) + (y - 5) * (y - 5))
                values.append(c == k % 3 ? exp(-distance / 8) : 0)
            }
        } } } }
        let weights = try Tensor<Float>(shape: [96, 3, 11, 11], values: values)
        try PNG.write(FilterGrid.render(weights: weights, towers: 2), to: directory + "/filters.png")

        let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        let counts = (0..<100).map { (i: Int) -> Int in i / 10 == i % 10 ? 700 + i : (i * 37) % 60 }
        try PNG.write(ConfusionMatrixPicture.render(counts: counts, classNames: names), to: directory + "/confusion.png")

        func image(_ seed: Int) throws -> Tensor<Float> {
            try Tensor<Float>(shape: [3, 32, 32], values: (0..<3072).map { (i: Int) -> Float in Float((i * (seed + 3)) % 256) })
        }
        let rows = try (0..<3).map { (r: Int) in try (0..<7).map { try image(r * 7 + $0) } }
        let distances = (0..<3).map { _ in [""] + (1..<7).map { String(format: "%.1f", Double($0) * 1.7) } }
        try PNG.write(NeighbourPicture.render(rows: rows, captions: ["cat", "ship", "frog"], imageCaptions: distances),
                      to: directory + "/neighbours.png")
    }

    // MARK: Helpers

    private func bigEndian(_ bytes: [UInt8], _ offset: Int) -> Int {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
    }

    /// The problem of the PNGError that decoding `bytes` throws ("" if none or another error).
    private func problem(_ bytes: [UInt8]) -> String {
        (captureError { try PNG.decode(bytes) } as? PNGError)?.problem ?? ""
    }

    private func header(width: Int, height: Int, colourType: UInt8, depth: UInt8 = 8, interlace: UInt8 = 0) -> [UInt8] {
        let size = [width, height].flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
        return PNG.pngChunk("IHDR", size + [depth, colourType, 0, 0, interlace])
    }

    /// A PNG whose image data is `raw` (filter bytes and samples), compressed whole into one IDAT.
    private func file(width: Int, height: Int, colourType: UInt8, depth: UInt8 = 8, interlace: UInt8 = 0,
                      raw: [UInt8]) -> [UInt8] {
        PNG.signature + header(width: width, height: height, colourType: colourType, depth: depth, interlace: interlace)
            + PNG.pngChunk("IDAT", PNG.zlibCompress(raw)) + PNG.pngChunk("IEND", [])
    }
}

/// PNG files made outside this library, so that the decoder is not only checked against the encoder.
private enum PictureFixtures {
    /// A 3x4 grey PNG with rows filtered Sub, Up, Average, Paeth and a tEXt chunk, built by hand (Python's zlib).
    static let handBuiltGrey: [UInt8] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x6e, 0x46, 0xda,
        0xdb, 0x00, 0x00, 0x00, 0x12, 0x74, 0x45, 0x58, 0x74, 0x43, 0x6f, 0x6d, 0x6d, 0x65, 0x6e, 0x74,
        0x00, 0x68, 0x61, 0x6e, 0x64, 0x2d, 0x62, 0x75, 0x69, 0x6c, 0x74, 0xe1, 0xe8, 0xd6, 0xbb, 0x00,
        0x00, 0x00, 0x18, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xe4, 0xe2, 0x7a, 0xc6, 0xc4, 0xc4,
        0xf5, 0x8d, 0x39, 0x6e, 0x7f, 0x3b, 0xcb, 0xc2, 0x13, 0x1c, 0x00, 0x23, 0x7a, 0x05, 0x1c, 0x44,
        0x2f, 0x9d, 0xc1, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ]

    /// A 3x4 RGBA PNG with rows filtered Paeth, Sub, Up, Average, its zlib stream split over two IDAT chunks.
    static let handBuiltRGBA: [UInt8] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
        0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0x08, 0x06, 0x00, 0x00, 0x00, 0x4b, 0x2d, 0x85,
        0x07, 0x00, 0x00, 0x00, 0x12, 0x74, 0x45, 0x58, 0x74, 0x43, 0x6f, 0x6d, 0x6d, 0x65, 0x6e, 0x74,
        0x00, 0x68, 0x61, 0x6e, 0x64, 0x2d, 0x62, 0x75, 0x69, 0x6c, 0x74, 0xe1, 0xe8, 0xd6, 0xbb, 0x00,
        0x00, 0x00, 0x05, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf9, 0xcf, 0x48, 0xf3, 0x5b, 0x96,
        0x00, 0x00, 0x00, 0x32, 0x49, 0x44, 0x41, 0x54, 0xc0, 0xf0, 0x9f, 0xf1, 0x3f, 0x43, 0x23, 0x03,
        0xe3, 0xff, 0x06, 0x46, 0x2e, 0x11, 0x39, 0x0d, 0x18, 0x60, 0xda, 0x17, 0x20, 0xf2, 0x71, 0xaa,
        0xe6, 0xeb, 0x53, 0xcb, 0x66, 0x4f, 0x6e, 0x63, 0x5e, 0x7c, 0xf5, 0xdd, 0x6f, 0x69, 0xdf, 0x8c,
        0xd2, 0x9d, 0x2e, 0x76, 0xf5, 0x00, 0xcd, 0x1a, 0x13, 0xee, 0xf8, 0x44, 0xc7, 0x62, 0x00, 0x00,
        0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ]
}
