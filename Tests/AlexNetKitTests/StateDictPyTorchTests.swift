import XCTest
@testable import AlexNetKit

/// State dicts written by PyTorch itself (Fixtures/weights/make_pytorch_state_dicts.py):
/// a paper-style nn.Sequential model's keys load unchanged.
final class StateDictPyTorchTests: XCTestCase {
    private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fixtures/weights").standardized

    func testPyTorchSavedStateDictLoadsUnchangedFromBothFormats() throws {
        let spec = try ModelZoo.spec(named: "layers-80sec", classes: nil, towers: nil, inputShape: nil)
        for file in ["layers-80sec-pytorch.safetensors", "layers-80sec-pytorch.npz"] {
            let path = fixtures.appendingPathComponent(file).path
            let network = try Network<Float>(spec: spec)
            let found = try StateDict.load(try StateDict.read(path: path), into: network, source: path)
            XCTAssertEqual(found.naming, .pytorch, file)
            XCTAssertEqual(found.layout, .grouped, file)
            let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters.map { ($0.name, $0.parameter.value) })
            // First and last elements as the generator printed them (torch.manual_seed(0)).
            XCTAssertEqual(parameters["conv1.weight"]!.storage.first, Float(-0.00086450349772349), file)
            XCTAssertEqual(parameters["conv1.weight"]!.storage.last, Float(-0.08427365869283676), file)
            XCTAssertEqual(parameters["conv3.bias"]!.storage.first, Float(-0.002074425807222724), file)
            XCTAssertEqual(parameters["fc10.weight"]!.storage.last, Float(-0.006605908274650574), file)
            XCTAssertEqual(parameters["fc10.weight"]!.shape, [10, 64], file)
        }
    }
}
