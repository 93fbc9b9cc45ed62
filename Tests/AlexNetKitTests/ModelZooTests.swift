import XCTest
@testable import AlexNetKit

/// The shipped specs: names, shapes and parameter counts, checked against
/// literals computed by hand (the arithmetic is in the comments).
final class ModelZooTests: XCTestCase {
    private func shapes(_ spec: ModelSpec) throws -> [String: Shape] {
        Dictionary(uniqueKeysWithValues: zip(spec.layers.map(\.name), try spec.outputShapes()))
    }

    // MARK: paper

    func testPaperHas60965224ParametersAt1000Classes() throws {
        // conv1 96*3*11*11 + 96 = 34,944      conv2 256*48*5*5 + 256 = 307,456
        // conv3 384*256*3*3 + 384 = 885,120   conv4 384*192*9 + 384 = 663,936
        // conv5 256*192*9 + 256 = 442,624     fc6 9216*4096 + 4096 = 37,752,832
        // fc7 4096*4096 + 4096 = 16,781,312   fc8 4096*1000 + 1000 = 4,097,000
        // sum 60,965,224 (the paper's "60 million").
        XCTAssertEqual(try ModelZoo.paper().parameterCount, 60_965_224)
        XCTAssertEqual(try ModelZoo.spec(named: "paper").parameterCount, 60_965_224)
        XCTAssertEqual(try ModelZoo.paper(towers: 1).parameterCount, 60_965_224)
    }

    func testPaperShapeArithmetic55_27_13_6() throws {
        let s = try shapes(ModelZoo.paper())
        XCTAssertEqual(s["conv1"], [96, 55, 55])   // (227 - 11) / 4 + 1 = 55
        XCTAssertEqual(s["pool1"], [96, 27, 27])   // (55 - 3) / 2 + 1 = 27
        XCTAssertEqual(s["conv2"], [256, 27, 27])  // (27 + 4 - 5) / 1 + 1 = 27
        XCTAssertEqual(s["pool2"], [256, 13, 13])  // (27 - 3) / 2 + 1 = 13
        XCTAssertEqual(s["conv5"], [256, 13, 13])
        XCTAssertEqual(s["pool5"], [256, 6, 6])    // (13 - 3) / 2 + 1 = 6; fc6 sees 256*6*6 = 9216
        XCTAssertEqual(s["fc8"], [1000])
    }

    func testPaperLayerNamesAndSettings() throws {
        let spec = try ModelZoo.paper()
        XCTAssertEqual(spec.name, "paper")
        XCTAssertEqual(spec.inputShape, [3, 227, 227])
        XCTAssertEqual(spec.towers, 2)
        XCTAssertEqual(spec.layers.map(\.name), [
            "conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2", "conv3", "relu3",
            "conv4", "relu4", "conv5", "relu5", "pool5", "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8",
        ])
        let kinds = Dictionary(uniqueKeysWithValues: spec.layers.map { ($0.name, $0.kind) })
        XCTAssertEqual(kinds["conv1"], .convolution(outputs: 96, kernel: 11, stride: 4, padding: 0, groups: 1, bias: .constant(0)))
        XCTAssertEqual(kinds["conv2"], .convolution(outputs: 256, kernel: 5, stride: 1, padding: 2, groups: 2, bias: .constant(1)))
        XCTAssertEqual(kinds["conv3"], .convolution(outputs: 384, kernel: 3, stride: 1, padding: 1, groups: 1, bias: .constant(0)))
        XCTAssertEqual(kinds["conv4"], .convolution(outputs: 384, kernel: 3, stride: 1, padding: 1, groups: 2, bias: .constant(1)))
        XCTAssertEqual(kinds["conv5"], .convolution(outputs: 256, kernel: 3, stride: 1, padding: 1, groups: 2, bias: .constant(1)))
        let lrn = LayerSpec.Kind.localResponseNorm(size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .paper)
        XCTAssertEqual(kinds["lrn1"], lrn)
        XCTAssertEqual(kinds["lrn2"], lrn)
        for pool in ["pool1", "pool2", "pool5"] {
            XCTAssertEqual(kinds[pool], .maxPool(kernel: 3, stride: 2, padding: 0, rounding: .floor))
        }
        XCTAssertEqual(kinds["fc6"], .linear(outputs: 4096, bias: .constant(1)))
        XCTAssertEqual(kinds["fc7"], .linear(outputs: 4096, bias: .constant(1)))
        XCTAssertEqual(kinds["fc8"], .linear(outputs: 1000, bias: .constant(0)))
        XCTAssertEqual(kinds["drop6"], .dropout(rate: 0.5, scaling: .paper))
        XCTAssertEqual(kinds["drop7"], .dropout(rate: 0.5, scaling: .paper))
    }

    func testPaperOneTowerKeepsTheSameGroupedLayers() throws {
        let one = try ModelZoo.spec(named: "paper", towers: 1)
        let two = try ModelZoo.paper()
        XCTAssertEqual(one.towers, 1)
        XCTAssertEqual(one.layers, two.layers)
    }

    func testPaperClassesOverride() throws {
        let spec = try ModelZoo.spec(named: "paper", classes: 10)
        XCTAssertEqual(spec.classes, 10)
        // 60,965,224 - 4,097,000 + (4096*10 + 10) = 56,909,194
        XCTAssertEqual(spec.parameterCount, 56_909_194)
        // Two towers split fc8's outputs in halves: an odd count cannot be split.
        let error = captureError { try ModelZoo.spec(named: "paper", classes: 1001) }
        XCTAssertEqual("\(error!)", "fc8: 1001 outputs cannot be split between 2 towers")
        XCTAssertEqual(try ModelZoo.spec(named: "paper", classes: 1001, towers: 1).classes, 1001)
    }

    func testPaperRefusesAnotherInputSize() {
        let error = captureError { try ModelZoo.spec(named: "paper", inputShape: [3, 224, 224]) }
        XCTAssertTrue("\(error!)".hasPrefix("input: the paper model is defined for input [3, 227, 227] only"), "\(error!)")
    }

    // MARK: torchvision

    func testTorchvisionHas61100840Parameters() throws {
        // conv1 64*3*11*11 + 64 = 23,296     conv2 192*64*5*5 + 192 = 307,392
        // conv3 384*192*9 + 384 = 663,936    conv4 256*384*9 + 256 = 884,992
        // conv5 256*256*9 + 256 = 590,080    fc6 9216*4096 + 4096 = 37,752,832
        // fc7 16,781,312                     fc8 4,097,000          sum 61,100,840
        XCTAssertEqual(try ModelZoo.torchvision().parameterCount, 61_100_840)
    }

    func testTorchvisionShapesAt224() throws {
        let spec = try ModelZoo.torchvision()
        XCTAssertEqual(spec.inputShape, [3, 224, 224])
        let s = try shapes(spec)
        XCTAssertEqual(s["conv1"], [64, 55, 55])   // (224 + 4 - 11) / 4 + 1 = 55 (floor of 54.25, plus 1)
        XCTAssertEqual(s["pool1"], [64, 27, 27])
        XCTAssertEqual(s["pool2"], [192, 13, 13])
        XCTAssertEqual(s["pool5"], [256, 6, 6])    // AdaptiveAvgPool2d((6, 6)) is the identity here
    }

    func testTorchvisionDropoutComesBeforeFc6AndFc7AndIsInverted() throws {
        let names = try ModelZoo.torchvision().layers.map(\.name)
        XCTAssertEqual(Array(names.suffix(7)), ["drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8"])
        let kinds = try ModelZoo.torchvision().layers.map(\.kind)
        XCTAssertFalse(kinds.contains { if case .localResponseNorm = $0 { return true } else { return false } })
        XCTAssertEqual(kinds.filter { $0 == .dropout(rate: 0.5, scaling: .inverted) }.count, 2)
    }

    func testTorchvisionStateDictNamesMapEveryLayer() throws {
        let spec = try ModelZoo.torchvision()
        XCTAssertEqual(Set(ModelZoo.torchvisionStateDictNames.keys), Set(spec.layers.map(\.name)))
        // torchvision's module indices: features 0 3 6 8 10 are convolutions, classifier 1 4 6 linear.
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["conv1"], "features.0")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["conv2"], "features.3")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["conv3"], "features.6")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["conv4"], "features.8")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["conv5"], "features.10")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["pool5"], "features.12")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["drop6"], "classifier.0")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["fc6"], "classifier.1")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["fc7"], "classifier.4")
        XCTAssertEqual(ModelZoo.torchvisionStateDictNames["fc8"], "classifier.6")
        // The module paths follow the layer order: features.0 ... features.12, then classifier.0 ... classifier.6.
        let paths = spec.layers.map { ModelZoo.torchvisionStateDictNames[$0.name]! }
        XCTAssertEqual(paths, (0...12).map { "features.\($0)" } + (0...6).map { "classifier.\($0)" })
    }

    func testTorchvisionRefusesTwoTowersAndOtherInputs() {
        let towers = captureError { try ModelZoo.spec(named: "torchvision", towers: 2) }
        XCTAssertTrue("\(towers!)".contains("the torchvision model has one tower only"), "\(towers!)")
        let input = captureError { try ModelZoo.spec(named: "torchvision", inputShape: [3, 227, 227]) }
        XCTAssertTrue("\(input!)".contains("defined for input [3, 224, 224] only"), "\(input!)")
    }

    // MARK: CIFAR-sized nets

    func testCifarTowersOnCIFAR10() throws {
        let spec = try ModelZoo.spec(named: "cifar-towers")
        XCTAssertEqual(spec.towers, 2)
        XCTAssertEqual(spec.classes, 10)
        let s = try shapes(spec)
        // 5x5 pad 2 keeps 32; ceil pools: ceil((32-3)/2)+1 = 16, ceil(13/2)+1 = 8, ceil(5/2)+1 = 4.
        XCTAssertEqual(s["conv1"], [64, 32, 32])
        XCTAssertEqual(s["pool1"], [64, 16, 16])
        XCTAssertEqual(s["pool2"], [64, 8, 8])
        XCTAssertEqual(s["conv4"], [128, 8, 8])
        XCTAssertEqual(s["pool4"], [128, 4, 4])
        XCTAssertEqual(s["fc7"], [10])
        // conv1 64*3*25 + 64 = 4,864       conv2 64*(64/2)*25 + 64 = 51,264
        // conv3 128*64*9 + 128 = 73,856    conv4 128*(128/2)*9 + 128 = 73,856
        // fc5 (128*4*4)*256 + 256 = 524,544   fc6 256*256 + 256 = 65,792   fc7 256*10 + 10 = 2,570
        // sum 796,746
        XCTAssertEqual(spec.parameterCount, 796_746)
    }

    func testCifarTowersOnFashionMNIST() throws {
        let spec = try ModelZoo.spec(named: "cifar-towers", inputShape: ModelZoo.fashionMNISTInput)
        let s = try shapes(spec)
        // 28 -> ceil(25/2)+1 = 14 -> ceil(11/2)+1 = 7 -> ceil(4/2)+1 = 3.
        XCTAssertEqual(s["pool1"], [64, 14, 14])
        XCTAssertEqual(s["pool2"], [64, 7, 7])
        XCTAssertEqual(s["pool4"], [128, 3, 3])
        // conv1 64*1*25 + 64 = 1,664; conv2 51,264; conv3 73,856; conv4 73,856;
        // fc5 (128*3*3)*256 + 256 = 295,168; fc6 65,792; fc7 2,570; sum 564,170
        XCTAssertEqual(spec.parameterCount, 564_170)
    }

    func testCifarTowersOneTowerKeepsTheSameLayers() throws {
        let one = try ModelZoo.spec(named: "cifar-towers", towers: 1)
        XCTAssertEqual(one.towers, 1)
        XCTAssertEqual(one.layers, try ModelZoo.cifarTowers().layers)
    }

    func testLayers80secOnCIFAR10() throws {
        let spec = try ModelZoo.spec(named: "layers-80sec")
        XCTAssertEqual(spec.layers.map(\.name),
                       ["conv1", "pool1", "relu1", "conv2", "relu2", "pool2", "conv3", "relu3", "pool3",
                        "fc64", "relu4", "fc10"])
        let s = try shapes(spec)
        XCTAssertEqual(s["pool1"], [32, 16, 16])
        XCTAssertEqual(s["pool2"], [32, 8, 8])
        XCTAssertEqual(s["pool3"], [64, 4, 4])
        // conv1 32*3*25 + 32 = 2,432   conv2 32*32*25 + 32 = 25,632   conv3 64*32*25 + 64 = 51,264
        // fc64 1024*64 + 64 = 65,600   fc10 64*10 + 10 = 650          sum 145,578
        XCTAssertEqual(spec.parameterCount, 145_578)
        XCTAssertEqual(spec.layers[5].kind,
                       .avgPool(kernel: 3, stride: 2, padding: 0, rounding: .ceil, countIncludePadding: false))
        XCTAssertEqual(spec.layers[1].kind, .maxPool(kernel: 3, stride: 2, padding: 0, rounding: .ceil))
    }

    func testLayers80secOnFashionMNIST() throws {
        let spec = try ModelZoo.spec(named: "layers-80sec", inputShape: [1, 28, 28])
        XCTAssertEqual(try shapes(spec)["pool3"], [64, 3, 3])
        // conv1 32*1*25 + 32 = 832; conv2 25,632; conv3 51,264; fc64 576*64 + 64 = 36,928; fc10 650
        // sum 115,306
        XCTAssertEqual(spec.parameterCount, 115_306)
    }

    func testLayers18pctOnCIFAR10Has89578ParametersLikeTheOriginal() throws {
        let spec = try ModelZoo.spec(named: "layers-18pct")
        XCTAssertEqual(spec.layers.map(\.name),
                       ["conv1", "pool1", "relu1", "rnorm1", "conv2", "relu2", "pool2", "rnorm2", "conv3", "relu3",
                        "pool3", "fc10"])
        XCTAssertEqual(try shapes(spec)["pool3"], [64, 4, 4])
        // 2,432 + 25,632 + 51,264 + (1024*10 + 10 = 10,250) = 89,578
        XCTAssertEqual(spec.parameterCount, 89_578)
    }

    func testLayers18pctOnFashionMNIST() throws {
        // 832 + 25,632 + 51,264 + (576*10 + 10 = 5,770) = 83,498
        XCTAssertEqual(try ModelZoo.spec(named: "layers-18pct", inputShape: [1, 28, 28]).parameterCount, 83_498)
    }

    func testLayers18pctSubstitutesCrossMapLRNForSameMapRnorm() throws {
        let spec = try ModelZoo.layers18pct()
        let rnorm = LayerSpec.Kind.localResponseNorm(size: 3, alpha: 0.00005, beta: 0.75, k: 1, convention: .caffe)
        XCTAssertEqual(spec.layers.first { $0.name == "rnorm1" }?.kind, rnorm)
        XCTAssertEqual(spec.layers.first { $0.name == "rnorm2" }?.kind, rnorm)
    }

    func testCudaConvnetNetsHaveOneTowerOnly() {
        for name in ["layers-80sec", "layers-18pct"] {
            let error = captureError { try ModelZoo.spec(named: name, towers: 2) }
            XCTAssertTrue("\(error!)".contains("has one tower only"), "\(error!)")
        }
    }

    // MARK: the catalogue

    func testEveryNameBuildsWithItsDefaults() throws {
        XCTAssertEqual(ModelZoo.names, ["paper", "torchvision", "cifar-towers", "layers-80sec", "layers-18pct"])
        for name in ModelZoo.names {
            let spec = try ModelZoo.spec(named: name)
            XCTAssertEqual(spec.name, name)
            XCTAssertNotNil(ModelZoo.descriptions[name], name)
        }
    }

    func testUnknownNameListsTheKnownNames() {
        let error = captureError { try ModelZoo.spec(named: "alexnet") }
        XCTAssertEqual("\(error!)", "model \"alexnet\": no shipped model has this name; the known models are "
                       + "paper, torchvision, cifar-towers, layers-80sec, layers-18pct")
    }

    func testClassesBelowOneAreRefused() {
        let error = captureError { try ModelZoo.spec(named: "layers-80sec", classes: 0) }
        XCTAssertEqual("\(error!)", "classes: the number of classes must be at least 1, got 0")
    }

    func testHugeInputsAndClassesAreRefusedNotOverflowed() {
        let input = captureError { try ModelZoo.spec(named: "cifar-towers", inputShape: [3, 1 << 40, 32]) }
        XCTAssertEqual("\(input!)", "input: extent 1099511627776 in [3, 1099511627776, 32] is larger than the limit 16777216")
        let classes = captureError { try ModelZoo.spec(named: "layers-18pct", classes: Int.max) }
        XCTAssertEqual("\(classes!)", "classes: \(Int.max) classes is more than the limit 16777216")
    }

    func testInputTooSmallIsRefusedNamingTheLayer() {
        // 8 -> pool1 4 -> pool2 2 -> pool3: a 3x3 window does not fit 2x2.
        let error = captureError { try ModelZoo.spec(named: "layers-80sec", inputShape: [3, 8, 8]) }
        XCTAssertTrue("\(error!)".hasPrefix("pool3: "), "\(error!)")
    }

    func testAdaptedReplacesClassesTowersAndInput() throws {
        let spec = try ModelZoo.cifarTowers().adapted(classes: 4, towers: 1, inputShape: [1, 28, 28])
        XCTAssertEqual(spec.classes, 4)
        XCTAssertEqual(spec.towers, 1)
        XCTAssertEqual(spec.inputShape, [1, 28, 28])
        XCTAssertEqual(spec.layers.last?.kind, .linear(outputs: 4, bias: .constant(0)))
    }
}
