import Foundation
import XCTest
@testable import AlexNetKit

/// The Python producer (python/alexnet_trace, Docs/oracle.md "The five-minute path"):
/// its traces of a model of our spec and of a torchvision-layout module check clean
/// in Float32 and Float64, a planted fault is caught at its tensor, and the PyTorch
/// SGD form checks. Needs a Python with torch and numpy (`ALEXNET_PYTHON`, else
/// `python3`); skipped otherwise. Run from the repository's python/ folder
/// (PYTHONPATH), no installation needed.
final class PythonProducerTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private var directory: URL!

    override func setUpWithError() throws { directory = try OracleFixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    struct Run { var status: Int32; var output: String }

    /// Runs `python arguments` in the test directory with PYTHONPATH=<repo>/python.
    func python(_ executable: String, _ arguments: [String]) throws -> Run {
        let environment = ProcessInfo.processInfo.environment
        let result = try CLI.run(executable: URL(fileURLWithPath: "/usr/bin/env"), [executable] + arguments, in: directory,
                                 environment: ["PYTHONPATH": Self.root.appendingPathComponent("python").path,
                                               "OMP_NUM_THREADS": environment["OMP_NUM_THREADS"] ?? "1"])
        return Run(status: result.status, output: result.output + result.error)
    }

    /// The Python to use, or a skip saying how to get one.
    func pythonWithTorch() throws -> String {
        let candidate = ProcessInfo.processInfo.environment["ALEXNET_PYTHON"] ?? "python3"
        let probe = try? python(candidate, ["-c", "import torch, numpy; print(torch.__version__)"])
        guard let probe, probe.status == 0 else {
            throw XCTSkip("no Python with torch and numpy (tried \(candidate)): to run these tests, "
                          + "pip install \"torch==2.13.0+cpu\" numpy (--index-url https://download.pytorch.org/whl/cpu), "
                          + "or point ALEXNET_PYTHON at a python that has them")
        }
        return candidate
    }

    func fixture(_ path: String) -> String { Self.root.appendingPathComponent(path).path }

    func assertChecks(_ trace: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let check = try CLI.run(["check", trace] + arguments, in: directory)
        XCTAssertEqual(check.status, 0, "\(trace): \(check.output) \(check.error)", file: file, line: line)
        XCTAssertTrue(check.output.contains("AGREE"), check.output, file: file, line: line)
    }

    /// A module of our spec (paper-narrow: LRN paper alpha, floor pools, paper
    /// dropout, two towers with tower tensors) and a torchvision-layout module
    /// (`features.N` / `classifier.N`, in-place ReLUs, nn.Dropout swapped for the
    /// mask-recording one, an identity AdaptiveAvgPool2d and a flatten) through
    /// `layer_map`, at narrow widths and a 127x127 input: both check clean in f32 and f64.
    func testSpecModuleAndTorchvisionLayoutTracesCheckInFloat32AndFloat64() throws {
        let interpreter = try pythonWithTorch()
        let script = #"""
        import json, sys, torch, torch.nn as nn
        import alexnet_trace as at

        spec_path, tv_path = sys.argv[1], sys.argv[2]
        for dt, name in ((torch.float32, "f32"), (torch.float64, "f64")):
            model = at.module_from_spec(spec_path, seed=3, dtype=dt)
            images = torch.randn(2, *model.spec["input"], generator=torch.Generator().manual_seed(4), dtype=dt) * 10
            tensors, meta = at.record_step(model, None, images, [1, 8], f"spec-{name}.safetensors",
                                           tower_tensors=(name == "f32"), grad_input=(name == "f64"))
            assert meta["dtype"] == name and (name == "f64" or "tower0.forward.lrn1" in tensors)

        # torchvision's AlexNet module structure, narrow; the spec is torchvision.json narrowed to match.
        spec = json.load(open(tv_path))
        widths = {"conv1": 8, "conv2": 12, "conv3": 16, "conv4": 12, "conv5": 8, "fc6": 16, "fc7": 16, "fc8": 10}
        for l in spec["layers"]:
            if l["name"] in widths:
                l["outputs"] = widths[l["name"]]
        spec["name"], spec["input"] = "torchvision-narrow", [3, 127, 127]

        class TorchvisionLayout(nn.Module):
            def __init__(self, c=(8, 12, 16, 12, 8), f=(16, 16), classes=10, pooled=3):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                    nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                    nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
                    nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
                    nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
                self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
                self.classifier = nn.Sequential(
                    nn.Dropout(0.5), nn.Linear(c[4] * pooled * pooled, f[0]), nn.ReLU(inplace=True),
                    nn.Dropout(0.5), nn.Linear(f[0], f[1]), nn.ReLU(inplace=True), nn.Linear(f[1], classes))
            def forward(self, x):
                return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

        torch.manual_seed(5)
        for dt, name in ((torch.float32, "f32"), (torch.float64, "f64")):
            model = TorchvisionLayout().to(dt)
            before = {k: v.clone() for k, v in model.state_dict().items()}
            images = torch.randn(2, 3, 127, 127, dtype=dt) * 10
            tensors, meta = at.record_step(model, spec, images, torch.tensor([2, 9]), f"tv-{name}.safetensors",
                                           layer_map=at.TORCHVISION_LAYER_MAP, sgd_form="pytorch",
                                           grad_input=True)
            # The model is left as it was: weights, dropout modules, in-place ReLUs.
            assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
            assert type(model.classifier[0]) is nn.Dropout and model.features[1].inplace
            assert list(tensors["mask.drop6"].shape) == [2, 8, 3, 3], tensors["mask.drop6"].shape
        print("ok")
        """#
        try Data(script.utf8).write(to: directory.appendingPathComponent("produce.py"))
        let run = try python(interpreter, ["produce.py", fixture("Fixtures/oracle/paper-narrow.json"),
                                      fixture("Fixtures/models/torchvision.json")])
        XCTAssertEqual(run.status, 0, run.output)
        for name in ["spec-f32", "spec-f64", "tv-f32", "tv-f64"] {
            try assertChecks("\(name).safetensors")
        }
        let (_, metadata) = try Safetensors.read(path: directory.appendingPathComponent("spec-f32.safetensors").path)
        XCTAssertEqual(metadata["towers"], "2")
        XCTAssertEqual(metadata["format"], "alexnet-trace/1")
        XCTAssertTrue(metadata["producer"]?.contains("pytorch ") == true, "\(metadata)")
        // The image gradient recorded with grad_input=True is compared too.
        let report = try Oracle.check(path: directory.appendingPathComponent("tv-f64.safetensors").path)
        XCTAssertTrue(report.entries.contains { $0.name == "grad_input.conv1" }, report.table())
    }

    /// `--plant-fault` adds a delta to one element after recording: the check fails
    /// (exit 1) with the first divergence at that tensor.
    func testAPlantedFaultFailsAtThePlantedTensor() throws {
        let interpreter = try pythonWithTorch()
        let run = try python(interpreter, ["-m", "alexnet_trace", fixture("Fixtures/oracle/mini-towers.json"), "-o", "bad.safetensors",
                                      "--dtype", "f64", "--plant-fault", "forward.conv2[0,3,2,1]=0.5"])
        XCTAssertEqual(run.status, 0, run.output)
        let check = try CLI.run(["check", "bad.safetensors"], in: directory)
        XCTAssertEqual(check.status, 1, check.output + check.error)
        XCTAssertTrue(check.output.contains("MISMATCH: first divergence at forward.conv2 (layer conv2, forward)"), check.output)
        XCTAssertTrue(check.output.contains("sparse outliers"), check.output)

        // The same command without the fault agrees.
        let clean = try python(interpreter, ["-m", "alexnet_trace", fixture("Fixtures/oracle/mini-towers.json"), "-o", "good.safetensors",
                                        "--dtype", "f64"])
        XCTAssertEqual(clean.status, 0, clean.output)
        try assertChecks("good.safetensors")
    }

    /// The PyTorch SGD form (`--sgd pytorch`) from the command line, on a one-tower
    /// spec with Caffe LRN and ceil average pools (layers-18pct), in Float32.
    func testPyTorchSGDFormTraceChecks() throws {
        let interpreter = try pythonWithTorch()
        let run = try python(interpreter, ["-m", "alexnet_trace", fixture("Fixtures/models/layers-18pct.json"), "-o", "sgd.safetensors",
                                      "--sgd", "pytorch", "--lr", "0.05", "--dtype", "f32", "--input-std", "5", "--seed", "2"])
        XCTAssertEqual(run.status, 0, run.output)
        let (_, metadata) = try Safetensors.read(path: directory.appendingPathComponent("sgd.safetensors").path)
        XCTAssertEqual(metadata["sgd_form"], "pytorch")
        XCTAssertEqual(metadata["learning_rate"], "0.05")
        try assertChecks("sgd.safetensors")
    }

    /// `--steps 4 --lr-schedule ...` writes a version 2 trace that replays clean, and
    /// the same with a fault planted in step 3 fails at step 3.
    func testSeveralStepsFromTheCommandLineReplayCleanAndAPlantedFaultFailsAtItsStep() throws {
        let interpreter = try pythonWithTorch()
        let spec = fixture("Fixtures/oracle/steps/tiny-steps.json")
        let arguments = [spec, "--dtype", "f64", "--sgd", "pytorch", "--steps", "4", "--lr", "0.02",
                         "--lr-schedule", "0.02,0.01,0.01,0.005"]
        let run = try python(interpreter, ["-m", "alexnet_trace"] + arguments + ["-o", "steps.safetensors"])
        XCTAssertEqual(run.status, 0, run.output)
        let (_, metadata) = try Safetensors.read(path: directory.appendingPathComponent("steps.safetensors").path)
        XCTAssertEqual(metadata["format"], "alexnet-trace/2")
        XCTAssertEqual(metadata["steps"], "4")
        XCTAssertEqual(metadata["learning_rates"], "0.02,0.01,0.01,0.005")
        try assertChecks("steps.safetensors")
        let bad = try python(interpreter, ["-m", "alexnet_trace"] + arguments
                             + ["-o", "bad.safetensors", "--plant-fault", "step3.forward.conv2[0,1,2,2]=0.5"])
        XCTAssertEqual(bad.status, 0, bad.output)
        let check = try CLI.run(["check", "bad.safetensors"], in: directory)
        XCTAssertEqual(check.status, 1, check.output + check.error)
        XCTAssertTrue(check.output.contains("MISMATCH: first divergence at step3.forward.conv2 (step 3, layer conv2, forward)"),
                      check.output)
    }
}
