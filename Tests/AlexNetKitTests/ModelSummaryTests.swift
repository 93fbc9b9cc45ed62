import XCTest
@testable import AlexNetKit

/// Per-layer shapes, parameters, multiply-adds, activation and crossing bytes,
/// against hand calculations.
final class ModelSummaryTests: XCTestCase {
    private func row(_ summary: ModelSummary, _ name: String) -> ModelSummary.Row {
        summary.rows.first { $0.name == name }!
    }

    func testPaperMultiplyAddsPerLayerAndTotal() throws {
        let summary = try ModelSummary(spec: ModelZoo.paper())
        // outputs * OH * OW * (C / groups) * kh * kw
        XCTAssertEqual(row(summary, "conv1").multiplyAdds, 96 * 55 * 55 * 3 * 11 * 11)     // 105,415,200
        XCTAssertEqual(row(summary, "conv2").multiplyAdds, 256 * 27 * 27 * 48 * 5 * 5)     // 223,948,800
        XCTAssertEqual(row(summary, "conv3").multiplyAdds, 384 * 13 * 13 * 256 * 3 * 3)   // 149,520,384
        XCTAssertEqual(row(summary, "conv4").multiplyAdds, 384 * 13 * 13 * 192 * 3 * 3)   // 112,140,288
        XCTAssertEqual(row(summary, "conv5").multiplyAdds, 256 * 13 * 13 * 192 * 3 * 3)   // 74,760,192
        XCTAssertEqual(row(summary, "fc6").multiplyAdds, 9216 * 4096)
        XCTAssertEqual(row(summary, "fc7").multiplyAdds, 4096 * 4096)
        XCTAssertEqual(row(summary, "fc8").multiplyAdds, 4096 * 1000)
        XCTAssertEqual(row(summary, "lrn1").multiplyAdds, 0)
        XCTAssertEqual(row(summary, "pool5").multiplyAdds, 0)
        // 665,784,864 in convolutions + 58,621,952 in linear layers (DESIGN: "724 M").
        XCTAssertEqual(summary.multiplyAdds, 724_406_816)
        XCTAssertEqual(summary.parameters, 60_965_224)
        XCTAssertEqual(summary.parameters, try ModelZoo.paper().parameterCount)
    }

    func testPaperShapesAndParametersPerRow() throws {
        let summary = try ModelSummary(spec: ModelZoo.paper())
        XCTAssertEqual(row(summary, "conv1").inputShape, [3, 227, 227])
        XCTAssertEqual(row(summary, "conv1").outputShape, [96, 55, 55])
        XCTAssertEqual(row(summary, "conv1").parameters, 34_944)
        XCTAssertEqual(row(summary, "conv2").parameters, 307_456)
        XCTAssertEqual(row(summary, "fc6").inputShape, [256, 6, 6])
        XCTAssertEqual(row(summary, "fc6").parameters, 37_752_832)
        XCTAssertEqual(row(summary, "relu1").parameters, 0)
        XCTAssertEqual(row(summary, "conv1").settings, "96 out, 11x11/4, pad 0, groups 1, bias 0")
        XCTAssertEqual(row(summary, "lrn1").settings, "n 5, alpha 0.0001, beta 0.75, k 2, paper")
        XCTAssertEqual(row(summary, "pool1").settings, "3x3/2, pad 0, floor")
        XCTAssertEqual(row(summary, "drop6").settings, "rate 0.5, paper")
        XCTAssertEqual(row(summary, "fc8").type, "linear")
    }

    func testPaperCrossingBytesPerImageByHand() throws {
        let f32 = try ModelSummary(spec: ModelZoo.paper(), elementSize: 4)
        // Each tower sends the other its half of the layer input; both directions together:
        let conv3 = 256 * 13 * 13 * 4  // 173,056: pool2's [256, 13, 13]
        let fc6 = 9216 * 4             // 36,864: pool5's [256, 6, 6]
        let fc7 = 4096 * 4             // 16,384
        let fc8 = 4096 * 4             // 16,384
        XCTAssertEqual(row(f32, "conv3").crossing, .init(forwardBytes: conv3, backwardBytes: conv3))
        XCTAssertEqual(row(f32, "fc6").crossing, .init(forwardBytes: fc6, backwardBytes: fc6))
        XCTAssertEqual(row(f32, "fc7").crossing, .init(forwardBytes: fc7, backwardBytes: fc7))
        XCTAssertEqual(row(f32, "fc8").crossing, .init(forwardBytes: fc8, backwardBytes: fc8))
        XCTAssertEqual(f32.rows.filter { $0.crossing != nil }.map(\.name), ["conv3", "fc6", "fc7", "fc8"])
        XCTAssertEqual(f32.crossingForwardBytes, conv3 + fc6 + fc7 + fc8)  // 242,688
        XCTAssertEqual(f32.crossingForwardBytes, 242_688)
        XCTAssertEqual(f32.crossingBackwardBytes, 242_688)

        let f64 = try ModelSummary(spec: ModelZoo.paper(), elementSize: 8)
        XCTAssertEqual(f64.crossingForwardBytes, 2 * 242_688)
    }

    func testConv1DoesNotCrossBecauseBothTowersHoldTheImage() throws {
        let spec = try ModelZoo.paper()
        XCTAssertFalse(spec.crossesTowers(layerAt: 0))
        XCTAssertFalse(spec.crossesTowers(layerAt: 4))  // conv2, groups 2
        XCTAssertTrue(spec.crossesTowers(layerAt: 8))   // conv3, groups 1
        XCTAssertFalse(spec.crossesTowers(layerAt: 99))
        // A linear first layer: the image is in both towers, nothing crosses.
        let linearFirst = try ModelSpec(name: "mlp", inputShape: [1, 4, 4], towers: 2, layers: [
            LayerSpec(name: "fc1", .linear(outputs: 8, bias: .none)),
            LayerSpec(name: "fc2", .linear(outputs: 2, bias: .none)),
        ])
        XCTAssertEqual(try ModelSummary(spec: linearFirst).rows.map(\.crossing),
                       [nil, .init(forwardBytes: 32, backwardBytes: 32)])
    }

    func testPaperTowerShapesAreHalves() throws {
        let summary = try ModelSummary(spec: ModelZoo.paper())
        XCTAssertEqual(row(summary, "conv1").towerOutputShape, [48, 55, 55])
        XCTAssertEqual(row(summary, "conv3").towerOutputShape, [192, 13, 13])
        XCTAssertEqual(row(summary, "fc6").towerOutputShape, [2048])
        XCTAssertEqual(row(summary, "fc8").towerOutputShape, [500])
    }

    func testOneTowerHasNoCrossingsAndNoTowerShapes() throws {
        let summary = try ModelSummary(spec: ModelZoo.paper(towers: 1))
        XCTAssertTrue(summary.rows.allSatisfy { $0.crossing == nil && $0.towerOutputShape == nil })
        XCTAssertEqual(summary.crossingForwardBytes, 0)
        XCTAssertFalse(summary.table().contains("cross fwd"))
    }

    func testActivationBytesFollowTheElementSize() throws {
        let f32 = try ModelSummary(spec: ModelZoo.paper(), elementSize: 4)
        let f64 = try ModelSummary(spec: ModelZoo.paper(), elementSize: 8)
        XCTAssertEqual(row(f32, "conv1").activationBytes, 96 * 55 * 55 * 4)  // 1,161,600
        XCTAssertEqual(row(f64, "conv1").activationBytes, 96 * 55 * 55 * 8)
        XCTAssertEqual(f32.inputBytes, 3 * 227 * 227 * 4)
        XCTAssertEqual(f64.activationBytes, 2 * f32.activationBytes)
    }

    func testElementSizeMustBe4Or8() {
        let error = captureError { try ModelSummary(spec: ModelZoo.paper(), elementSize: 2) }
        XCTAssertEqual("\(error!)", "summary: element size must be 4 (Float32) or 8 (Float64) bytes, got 2")
    }

    func testCountsThatOverflowAreErrorsNotCrashes() throws {
        // [2^21, 2^21, 2^21] is 2^63 elements: the byte count overflows Int.
        let spec = try ModelSpec(name: "huge", inputShape: [1 << 21, 1 << 21, 1 << 21], layers: [
            LayerSpec(name: "fc", .linear(outputs: 2, bias: .none)),
        ])
        let error = captureError { try ModelSummary(spec: spec) }
        XCTAssertEqual("\(error!)", "input: too large: the input's byte count does not fit a 64-bit count")
        XCTAssertEqual(spec.parameterCount, Int.max)
    }

    func testCifarTowersCrossingsByHand() throws {
        let summary = try ModelSummary(spec: ModelZoo.cifarTowers())
        // conv3 input [64, 8, 8], fc5 input [128, 4, 4], fc6 and fc7 inputs [256]; 4 bytes each.
        XCTAssertEqual(summary.rows.filter { $0.crossing != nil }.map(\.name), ["conv3", "fc5", "fc6", "fc7"])
        XCTAssertEqual(summary.crossingForwardBytes, 64 * 8 * 8 * 4 + 128 * 4 * 4 * 4 + 256 * 4 + 256 * 4)  // 26,624
        // 64*32*32*75 + 64*16*16*800 + 128*8*8*576 * 2 + 2048*256 + 256*256 + 256*10
        XCTAssertEqual(summary.multiplyAdds, 28_051_968)
    }

    func testTableHasAlignedColumnsAndTotals() throws {
        let table = try ModelSummary(spec: ModelZoo.paper()).table()
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("paper: input [3, 227, 227], 2 towers, 1000 classes, float32"))
        // Header, rule, 22 layers, rule, total: every row ends in the right-aligned
        // crossing column, so all have the rule's width.
        let rows = Array(lines[1...26])
        let width = rows[1].count
        XCTAssertTrue(rows[1].allSatisfy { $0 == "-" })
        for line in rows where line.hasPrefix("conv") || line.hasPrefix("fc") || line.hasPrefix("total") {
            XCTAssertEqual(line.count, width, line)
        }
        XCTAssertTrue(lines[26].hasPrefix("total"))
        XCTAssertTrue(lines[26].contains("60,965,224"))
        XCTAssertTrue(lines[26].contains("724,406,816"))
        XCTAssertTrue(lines[26].hasSuffix("242,688      242,688"), lines[26])
        XCTAssertTrue(table.contains("parameters:              60,965,224\n"))
        XCTAssertTrue(table.contains("multiply-adds per image: 724,406,816 (1.449 GFLOP)\n"))
        XCTAssertTrue(table.contains("crossing bytes/image:    242,688 forward, 242,688 backward\n"))
    }
}
