import Foundation
import XCTest
@testable import AlexNetKit

final class StateDictTests: XCTestCase {
    private func temporaryPath(_ name: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("statedict-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent(name).path
    }

    private func assertSameWeights(_ a: Network<Float>, _ b: Network<Float>, file: StaticString = #filePath, line: UInt = #line) {
        for ((name, x), (_, y)) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertTrue(x.value.isBitwiseEqual(to: y.value), name, file: file, line: line)
        }
    }

    func testRoundTripEveryNamingAndLayoutThroughBothFormats() throws {
        let spec = try smallTowerSpec()
        let source = try Network<Float>(spec: spec, seed: 1)
        for naming in ParameterNaming.allCases {
            for layout in WeightLayout.allCases {
                for ext in ["safetensors", "npz"] {
                    let path = temporaryPath("w.\(ext)")
                    try StateDict.write(try StateDict.export(source, naming: naming, layout: layout), to: path)
                    let target = try Network<Float>(spec: spec, seed: 2)
                    let detected = try StateDict.load(try StateDict.read(path: path), into: target, source: path)
                    XCTAssertEqual(detected.naming, naming)
                    XCTAssertEqual(detected.layout, layout)
                    assertSameWeights(source, target)
                }
            }
        }
    }

    func testPyTorchNamesOfThePaperNetFollowSequentialPositions() throws {
        let names = StateDict.pytorchModuleNames(for: try paperLikeSpec(fc: 256, classes: 10))
        XCTAssertEqual(["conv1", "conv2", "conv3", "conv4", "conv5"].map { names[$0]! },
                       ["features.0", "features.4", "features.8", "features.10", "features.12"])
        XCTAssertEqual(["fc6", "fc7", "fc8"].map { names[$0]! }, ["classifier.0", "classifier.3", "classifier.6"])
    }

    func testTowerLayoutSplitsRowsInHalf() throws {
        let network = try Network<Float>(spec: try smallTowerSpec(), seed: 1)
        let tensors = try StateDict.export(network, layout: .towers)
        let conv3 = network.namedParameters.first { $0.name == "conv3.weight" }!.parameter.value
        let tower1 = try tensors.first { $0.name == "tower1.conv3.weight" }!.floatTensor(as: Float.self)
        XCTAssertEqual(tower1.shape, [6, 8, 3, 3])  // 12 outputs over conv2's 8 channels
        XCTAssertTrue(tower1.isBitwiseEqual(to: try conv3.sliceRows(6..<12)))
    }

    func testDoubleFileLoadsIntoFloatNetworkRounded() throws {
        let spec = try smallTowerSpec()
        let double = try Network<Double>(spec: spec, seed: 1)
        let float = try Network<Float>(spec: spec, seed: 2)
        try StateDict.load(try StateDict.export(double), into: float, source: "w64")
        let (name, value) = float.namedParameters[0]
        XCTAssertEqual(value.value.storage, double.namedParameters[0].parameter.value.storage.map { Float($0) }, name)
    }

    func testMissingUnexpectedAndMisshapenParametersAreNamedAndNothingIsWritten() throws {
        let spec = try smallTowerSpec()
        let network = try Network<Float>(spec: spec, seed: 1)
        let before = try StateDict.export(network)
        var tensors = try StateDict.export(try Network<Float>(spec: spec, seed: 2))

        var missing = tensors
        missing.removeAll { $0.name == "conv2.bias" }
        missing.append(StoredTensor(name: "conv9.weight", tensor: Tensor<Float>(shape: [1])))
        let error = captureError { try StateDict.load(missing, into: network, source: "w.safetensors") } as? WeightsError
        XCTAssertEqual(error?.description, "w.safetensors: missing 'conv2.bias' [8]; not parameters of model small-towers: "
                       + "'conv9.weight' (read as native names, grouped layout)")

        let index = tensors.firstIndex { $0.name == "fc4.weight" }!
        tensors[index] = StoredTensor(name: "fc4.weight", tensor: Tensor<Float>(shape: [32, 100]))
        let shapeError = captureError { try StateDict.load(tensors, into: network, source: "w.npz") } as? WeightsError
        XCTAssertEqual(shapeError?.description, "w.npz: 'fc4.weight' has shape [32, 100], expected [32, 768]")  // pool3: 12 x 8 x 8

        tensors[index] = StoredTensor(name: "fc4.weight", tensor: Tensor<Float>(shape: [32, 768], repeating: .nan))
        XCTAssertTrue((captureError { try StateDict.load(tensors, into: network, source: "w.npz") } as? WeightsError)?
            .problem.contains("non-finite") ?? false)
        tensors[index] = try StoredTensor(name: "fc4.weight", shape: [32, 768], integers: [Int32](repeating: 1, count: 32 * 768))
        XCTAssertTrue((captureError { try StateDict.load(tensors, into: network, source: "w.npz") } as? WeightsError)?
            .problem.contains("int32") ?? false)

        XCTAssertEqual(try StateDict.export(network), before, "a failed load leaves the weights unchanged")
    }

    func testUnknownExtensionIsRefused() {
        XCTAssertEqual((captureError { try StateDict.read(path: "weights.pt") } as? WeightsError)?.description,
                       "weights.pt: unknown weights format: use a .safetensors, .npz or .npy file (training checkpoints are .safetensors)")
    }
}
