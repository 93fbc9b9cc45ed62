import Foundation
import XCTest
@testable import AlexNetKit

/// JSON model specs: exact round trips, the shipped files, and one test per
/// kind of error, each asserting the message names the file and the key or layer.
final class ModelSpecJSONTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/models")

    /// The error message of parsing `json` as `my.json`, or a failure if it parses.
    private func message(_ json: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard let error = captureError({ try ModelSpec.parse(json: json, source: "my.json") }, file: file, line: line)
        else { return "" }
        XCTAssertTrue(error is ModelSpecError, "\(type(of: error))", file: file, line: line)
        return Self.withoutPosition("\(error)")
    }

    /// `my.json:1:60: layers[0]...` as `my.json: layers[0]...`: most tests here
    /// check the key path and the words; `testKeyErrorsGiveTheLineOfTheKey` checks positions.
    private static func withoutPosition(_ message: String) -> String {
        message.contains(": invalid JSON: ") ? message
            : message.replacingOccurrences(of: #"^my\.json:\d+:\d+:"#, with: "my.json:", options: .regularExpression)
    }

    func testKeyErrorsGiveTheLineOfTheKey() {
        let text = """
        {
          "name": "t",
          "input": [3, 32, 32],
          "layers": [
            {"name": "conv1", "type": "conv", "outputs": 8, "kernel": 3},
            {"name": "conv2", "type": "conv", "outputs": 8, "kernel": "5"},
            {"name": "fc", "type": "linear", "outputs": 10}
          ]
        }
        """
        let error = captureError { try ModelSpec.parse(json: text, source: "my.json") }
        XCTAssertEqual("\(error!)", "my.json:6:53: layers[1] (conv2).kernel: expected a positive integer or "
                       + "[height, width], got \"5\"")
        let unknown = captureError { try ModelSpec.parse(json: text.replacingOccurrences(of: "\"towers\"", with: "x")
            .replacingOccurrences(of: "\"input\"", with: "\"inputs\""), source: "my.json") }
        XCTAssertEqual("\(unknown!)", "my.json:3:3: inputs: unknown key; a model spec takes \"name\", \"input\", "
                       + "\"towers\", \"layers\"")
    }

    /// A valid one-tower spec whose layers are `layers` (JSON objects, comma-separated).
    private func spec(layers: String, towers: Int = 1, input: String = "[3, 32, 32]") -> String {
        """
        {"name": "t", "input": \(input), "towers": \(towers), "layers": [
        \(layers)
        ]}
        """
    }

    private let conv1 = #"{"name": "conv1", "type": "conv", "outputs": 8, "kernel": 3, "padding": 1}"#
    private let fc = #"{"name": "fc", "type": "linear", "outputs": 10}"#

    // MARK: Round trips and files

    func testRoundTripIsExactForEveryZooModel() throws {
        var specs = try ModelZoo.names.map { try ModelZoo.spec(named: $0) }
        specs.append(try ModelZoo.paper(towers: 1))
        specs.append(try ModelZoo.cifarTowers(towers: 1, inputShape: ModelZoo.fashionMNISTInput))
        specs.append(try ModelZoo.layers18pct(classes: 7, inputShape: ModelZoo.fashionMNISTInput))
        for spec in specs {
            let text = spec.jsonString()
            let parsed = try ModelSpec.parse(json: text, source: spec.name)
            XCTAssertEqual(parsed, spec, spec.name)
            XCTAssertEqual(parsed.jsonString(), text, spec.name)
            XCTAssertEqual(try ModelSpec.parse(json: Data(text.utf8), source: spec.name), spec, spec.name)
        }
    }

    func testRoundTripKeepsNonSquarePairsNoBiasEscapesAndFullPrecision() throws {
        let spec = try ModelSpec(name: "odd \"name\" \\ with\ttab and é", inputShape: [2, 9, 7], layers: [
            LayerSpec(name: "c", .convolution(outputs: 4, kernel: Pair(3, 2), stride: Pair(2, 1), padding: Pair(1, 0),
                                              groups: 2, bias: .none)),
            LayerSpec(name: "n", .localResponseNorm(size: 3, alpha: 0.1 + 0.2, beta: 1.0 / 3.0, k: 5e-324,
                                                    convention: .caffe)),
            LayerSpec(name: "p", .avgPool(kernel: Pair(2, 3), stride: 1, padding: Pair(0, 1), rounding: .ceil,
                                          countIncludePadding: true)),
            LayerSpec(name: "t", .tanh),
            LayerSpec(name: "d", .dropout(rate: 0.1, scaling: .inverted)),
            LayerSpec(name: "l", .linear(outputs: 3, bias: .constant(-0.25))),
        ])
        let text = spec.jsonString()
        XCTAssertTrue(text.contains(#""kernel": [3, 2], "stride": [2, 1], "padding": [1, 0]"#), text)
        XCTAssertTrue(text.contains(#""bias": false"#), text)
        XCTAssertEqual(try ModelSpec.parse(json: text), spec)
    }

    func testShippedFilesAreWhatTheZooWrites() throws {
        for name in ModelZoo.names {
            let path = Self.fixtures.appendingPathComponent("\(name).json").path
            let text = try String(contentsOfFile: path, encoding: .utf8)
            XCTAssertEqual(text, try ModelZoo.spec(named: name).jsonString(),
                           "\(name).json is stale: regenerate it (Fixtures/models/README.md)")
            XCTAssertEqual(try ModelSpec.load(path: path), try ModelZoo.spec(named: name))
        }
    }

    func testHandWrittenFixtureLoads() throws {
        let spec = try ModelSpec.load(path: Self.fixtures.appendingPathComponent("tiny-custom.json").path)
        XCTAssertEqual(spec.name, "tiny-custom")
        XCTAssertEqual(spec.towers, 1)  // "towers" left out
        XCTAssertEqual(spec.layers[0].kind, .convolution(outputs: 8, kernel: Pair(5, 3), stride: 1, padding: Pair(2, 1),
                                                         groups: 1, bias: .none))
        XCTAssertEqual(spec.layers[2].kind, .localResponseNorm(size: 4, alpha: 1e-4, beta: 0.75, k: 1,
                                                               convention: .pytorch))
        XCTAssertEqual(spec.layers[8].kind, .linear(outputs: 10, bias: .constant(0)))
        // conv1 keeps 28x28 (5x3 kernel, 2x1 padding); avg 2/2 -> 14; conv2 -> [16, 14, 14];
        // max 3/2 pad 1 ceil: ceil((14 + 2 - 3) / 2) + 1 = 8.
        XCTAssertEqual(try spec.outputShapes().map(\.dims)[6], [16, 8, 8])
        // conv1 8*1*5*3 = 120 (no bias); conv2 16*(8/2)*9 + 16 = 592; fc3 1024*10 + 10 = 10,250
        XCTAssertEqual(spec.parameterCount, 10_962)
        XCTAssertEqual(try ModelSpec.parse(json: spec.jsonString()), spec)
    }

    func testDocumentationExampleParses() throws {
        let docs = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Docs/models.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "```json\n"))
        let end = try XCTUnwrap(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let spec = try ModelSpec.parse(json: String(text[start.upperBound..<end.lowerBound]), source: "Docs/models.md")
        XCTAssertEqual(spec.name, "tiny")
        XCTAssertEqual(spec.layers.count, 8)
    }

    func testMissingFileNamesThePath() {
        let error = captureError { try ModelSpec.load(path: "/no/such/model.json") }
        XCTAssertEqual("\(error!)", "/no/such/model.json: no such file")
        let directory = captureError { try ModelSpec.load(path: Self.fixtures.path) }
        XCTAssertTrue("\(directory!)".hasSuffix("is a directory, not a JSON model spec file"))
    }

    // MARK: Unknown keys

    func testUnknownLayerKeyIsNamedWithTheAllowedKeys() {
        let text = spec(layers: #"{"name": "conv1", "type": "conv", "outputs": 8, "kernal": 3}, "# + fc)
        XCTAssertEqual(message(text), "my.json: layers[0] (conv1).kernal: unknown key; a \"conv\" layer takes "
                       + "\"name\", \"type\", \"outputs\", \"kernel\", \"stride\", \"padding\", \"groups\", \"bias\"")
    }

    func testUnknownTopLevelKey() {
        let text = #"{"name": "t", "input": [3, 8, 8], "classes": 10, "layers": []}"#
        XCTAssertEqual(message(text), "my.json: classes: unknown key; a model spec takes \"name\", \"input\", "
                       + "\"towers\", \"layers\"")
    }

    func testUnknownLayerTypeListsTheTypes() {
        let text = spec(layers: #"{"name": "bn1", "type": "batchnorm"}, "# + fc)
        XCTAssertEqual(message(text), "my.json: layers[0] (bn1).type: unknown layer type \"batchnorm\"; expected one "
                       + "of conv, maxpool, avgpool, lrn, relu, tanh, linear, dropout")
    }

    // MARK: Conventions must be stated

    func testLRNWithoutConventionMustStateIt() {
        let text = spec(layers: conv1 + #", {"name": "lrn1", "type": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2}, "# + fc)
        let m = message(text)
        XCTAssertTrue(m.hasPrefix("my.json: layers[1] (lrn1).convention: missing: the LRN convention must be stated"), m)
    }

    func testPoolingWithoutRoundingMustStateIt() {
        let text = spec(layers: conv1 + #", {"name": "pool1", "type": "maxpool", "kernel": 3, "stride": 2}, "# + fc)
        let m = message(text)
        XCTAssertTrue(m.hasPrefix("my.json: layers[1] (pool1).rounding: missing: the output-size rounding must be stated"), m)
    }

    func testAvgPoolWithoutCountIncludePaddingMustStateIt() {
        let text = spec(layers: conv1 + #", {"name": "pool1", "type": "avgpool", "kernel": 3, "stride": 2, "rounding": "ceil"}, "# + fc)
        let m = message(text)
        XCTAssertTrue(m.hasPrefix("my.json: layers[1] (pool1).count_include_padding: missing: whether padded cells "
                                  + "count in the average must be stated"), m)
    }

    func testDropoutWithoutScalingMustStateIt() {
        let text = spec(layers: conv1 + #", {"name": "drop1", "type": "dropout", "rate": 0.5}, "# + fc)
        let m = message(text)
        XCTAssertTrue(m.hasPrefix("my.json: layers[1] (drop1).scaling: missing: the dropout scaling must be stated"), m)
    }

    // MARK: Wrong types and values

    func testWrongTypeNamesTheKeyPath() {
        let text = spec(layers: conv1 + #", {"name": "conv2", "type": "conv", "outputs": 8, "kernel": "5"}, "# + fc)
        XCTAssertEqual(message(text),
                       "my.json: layers[1] (conv2).kernel: expected a positive integer or [height, width], got \"5\"")
    }

    func testFractionWhereAnIntegerIsExpected() {
        let text = spec(layers: #"{"name": "conv1", "type": "conv", "outputs": 96.0, "kernel": 3}, "# + fc)
        XCTAssertEqual(message(text), "my.json: layers[0] (conv1).outputs: expected a positive integer, got 96.0")
    }

    func testWrongValuesNameTheKey() {
        XCTAssertEqual(message(spec(layers: #"{"name": "fc", "type": "linear", "outputs": 10, "bias": true}"#)),
                       "my.json: layers[0] (fc).bias: expected a number (the constant the bias starts at) or false "
                       + "(no bias), got true")
        XCTAssertEqual(message(spec(layers: conv1 + #", {"name": "p", "type": "maxpool", "kernel": 3, "stride": 2, "rounding": "up"}, "# + fc)),
                       "my.json: layers[1] (p).rounding: expected \"floor\" or \"ceil\", got \"up\"")
        XCTAssertEqual(message(spec(layers: #"{"name": "d", "type": "dropout", "rate": 1, "scaling": "paper"}, "# + fc)),
                       "my.json: layers[0] (d).rate: must be in [0, 1), got 1")
        XCTAssertEqual(message(spec(layers: conv1 + #", {"name": "n", "type": "lrn", "size": 4, "alpha": 1e-4, "beta": 0.75, "k": 2, "convention": "paper"}, "# + fc)),
                       "my.json: layers[1] (n).size: 4 is even, which the paper convention does not define "
                       + "(use an odd size, or the \"pytorch\" convention)")
        XCTAssertEqual(message(spec(layers: fc, input: "[3, 32]")),
                       "my.json: input: expected [C, H, W] (three positive integers), got [3, 32]")
        XCTAssertEqual(message(spec(layers: #"{"name": "", "type": "relu"}"#)),
                       "my.json: layers[0].name: expected a non-empty string, got \"\"")
        XCTAssertEqual(message(spec(layers: #"{"type": "relu"}"#)),
                       "my.json: layers[0].name: missing: every layer needs a name (it keys the layer's parameters, "
                       + "e.g. conv1.weight)")
        XCTAssertEqual(message(#"[1, 2]"#),
                       "my.json: expected a JSON object with keys name, input, towers, layers, got [1, 2]")
    }

    func testHugeNumbersAreRefusedBeforeAnyArithmeticCanOverflow() {
        XCTAssertEqual(message(spec(layers: #"{"name": "conv1", "type": "conv", "outputs": 8, "kernel": 3, "padding": 9223372036854775807}, "# + fc)),
                       "my.json: layers[0] (conv1).padding: 9223372036854775807 is larger than the limit 16777216")
        XCTAssertEqual(message(spec(layers: #"{"name": "fc", "type": "linear", "outputs": 99999999999999999999}"#)),
                       "my.json: layers[0] (fc).outputs: expected a positive integer, got 99999999999999999999")
        // Every extent within the limit, but 2^72 elements per image: the counts would overflow.
        XCTAssertEqual(message(spec(layers: fc, input: "[16777216, 16777216, 16777216]")),
                       "my.json: input: too large: the input's byte count does not fit a 64-bit count")
    }

    // MARK: Shapes and towers (ModelSpec's validation, located in the file)

    func testImpossibleShapeNamesTheFileAndLayer() {
        let text = spec(layers: #"{"name": "conv1", "type": "conv", "outputs": 8, "kernel": 11}, "# + fc, input: "[3, 8, 8]")
        let m = message(text)
        XCTAssertTrue(m.hasPrefix("my.json: layers[0] (conv1): "), m)
        XCTAssertTrue(m.contains("11"), m)
    }

    func testBadTowers() {
        XCTAssertEqual(message(spec(layers: fc, towers: 3)), "my.json: towers: expected 1 or 2, got 3")
    }

    func testGroupsThatDoNotFitTwoTowers() {
        let text = spec(layers: #"{"name": "conv1", "type": "conv", "outputs": 6, "kernel": 3}, "#
                        + #"{"name": "conv2", "type": "conv", "outputs": 6, "kernel": 3, "groups": 3}, "# + fc, towers: 2)
        let m = message(text)
        XCTAssertTrue(m.hasPrefix("my.json: layers[1] (conv2): groups 3 must be 1"), m)
    }

    func testOutputsThatCannotBeSplitBetweenTwoTowers() {
        let text = spec(layers: #"{"name": "conv1", "type": "conv", "outputs": 7, "kernel": 3}, "# + fc, towers: 2)
        XCTAssertEqual(message(text), "my.json: layers[0] (conv1): 7 outputs cannot be split between 2 towers")
    }

    func testDuplicateLayerNames() {
        let text = spec(layers: conv1 + ", " + #"{"name": "conv1", "type": "relu"}, "# + fc)
        XCTAssertEqual(message(text), "my.json: layers[1] (conv1).name: \"conv1\" is already the name of layers[0]; "
                       + "layer names must be unique (they key the parameters)")
    }

    // MARK: Invalid JSON

    func testInvalidJSONGivesLineAndColumn() {
        let text = """
        {"name": "t",
          "input": [3, 8, 8]
          "layers": []}
        """
        XCTAssertEqual(message(text), "my.json:3:3: invalid JSON: expected ',' or '}' after an object member, found '\"'")
    }

    func testDuplicateJSONKeyIsAnError() {
        let text = "{\"name\": \"t\",\n \"name\": \"u\", \"input\": [3, 8, 8], \"layers\": []}"
        XCTAssertEqual(message(text), "my.json:2:2: invalid JSON: duplicate key \"name\" in one object")
    }

    func testOtherInvalidJSON() {
        XCTAssertEqual(message(""), "my.json:1:1: invalid JSON: the document is empty")
        XCTAssertEqual(message("{\"a\": tru}"), "my.json:1:7: invalid JSON: expected a value (true, false, null, a "
                       + "number, a string, an array or an object)")
        XCTAssertEqual(message("[1, 2,]"), "my.json:1:7: invalid JSON: trailing comma before ']'")
        XCTAssertEqual(message("{\"a\": 01}"), "my.json:1:7: invalid JSON: a number may not have leading zeros")
        XCTAssertEqual(message("{\"a\": \"x"), "my.json:1:7: invalid JSON: unterminated string")
        XCTAssertEqual(message("{} x"), "my.json:1:4: invalid JSON: unexpected 'x' after the document's value")
        XCTAssertEqual(message("{\"é\": 1 ]"), "my.json:1:9: invalid JSON: expected ',' or '}' after an object member, found ']'")
        let invalidUTF8 = captureError { try ModelSpec.parse(json: Data([0x7B, 0x22, 0xFF, 0x22]), source: "my.json") }
        XCTAssertEqual("\(invalidUTF8!)", "my.json: byte 2: invalid JSON: the file is not valid UTF-8 at byte offset 2")
    }

    func testDeepNestingIsAnErrorNotACrash() {
        let text = String(repeating: "[", count: 100_000)
        XCTAssertEqual(message(text), "my.json:1:201: invalid JSON: nesting deeper than 200 levels")
    }
}
