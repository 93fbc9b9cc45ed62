import XCTest
@testable import AlexNetKit

/// The paper's two-tower AlexNet with fully connected widths reduced to `fc` (the
/// convolutions are the paper's), so a debug-build test runs in seconds.
func paperLikeSpec(fc: Int, classes: Int) throws -> ModelSpec {
    let lrn = LayerSpec.Kind.localResponseNorm(size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .paper)
    let pool = LayerSpec.Kind.maxPool(kernel: 3, stride: 2, padding: 0, rounding: .floor)
    func conv(_ outputs: Int, _ kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int, bias: Double) -> LayerSpec.Kind {
        .convolution(outputs: outputs, kernel: Pair(kernel, kernel), stride: Pair(stride, stride),
                     padding: Pair(padding, padding), groups: groups, bias: .constant(bias))
    }
    return try ModelSpec(name: "paper-reduced-fc", inputShape: [3, 227, 227], towers: 2, layers: [
        LayerSpec(name: "conv1", conv(96, 11, stride: 4, groups: 1, bias: 0)), LayerSpec(name: "relu1", .relu),
        LayerSpec(name: "lrn1", lrn), LayerSpec(name: "pool1", pool),
        LayerSpec(name: "conv2", conv(256, 5, padding: 2, groups: 2, bias: 1)), LayerSpec(name: "relu2", .relu),
        LayerSpec(name: "lrn2", lrn), LayerSpec(name: "pool2", pool),
        LayerSpec(name: "conv3", conv(384, 3, padding: 1, groups: 1, bias: 0)), LayerSpec(name: "relu3", .relu),
        LayerSpec(name: "conv4", conv(384, 3, padding: 1, groups: 2, bias: 1)), LayerSpec(name: "relu4", .relu),
        LayerSpec(name: "conv5", conv(256, 3, padding: 1, groups: 2, bias: 1)), LayerSpec(name: "relu5", .relu),
        LayerSpec(name: "pool5", pool),
        LayerSpec(name: "fc6", .linear(outputs: fc, bias: .constant(1))), LayerSpec(name: "relu6", .relu),
        LayerSpec(name: "drop6", .dropout(rate: 0.5, scaling: .paper)),
        LayerSpec(name: "fc7", .linear(outputs: fc, bias: .constant(1))), LayerSpec(name: "relu7", .relu),
        LayerSpec(name: "drop7", .dropout(rate: 0.5, scaling: .paper)),
        LayerSpec(name: "fc8", .linear(outputs: classes, bias: .constant(0))),
    ])
}

/// A small two-tower net on 32x32 images: every kind of tower layer (local and
/// crossing convolutions, per-tower LRN, average pooling, dropout, linear).
func smallTowerSpec() throws -> ModelSpec {
    try ModelSpec(name: "small-towers", inputShape: [3, 32, 32], towers: 2, layers: [
        LayerSpec(name: "conv1", .convolution(outputs: 8, kernel: 5, stride: 1, padding: 2, groups: 1, bias: .constant(0))),
        LayerSpec(name: "relu1", .relu),
        LayerSpec(name: "lrn1", .localResponseNorm(size: 3, alpha: 5e-4, beta: 0.75, k: 1, convention: .caffe)),
        LayerSpec(name: "pool1", .maxPool(kernel: 3, stride: 2, padding: 0, rounding: .ceil)),
        LayerSpec(name: "conv2", .convolution(outputs: 8, kernel: 3, stride: 1, padding: 1, groups: 2, bias: .constant(1))),
        LayerSpec(name: "tanh2", .tanh),
        LayerSpec(name: "conv3", .convolution(outputs: 12, kernel: 3, stride: 1, padding: 1, groups: 1, bias: .constant(0))),
        LayerSpec(name: "relu3", .relu),
        LayerSpec(name: "pool3", .avgPool(kernel: 3, stride: 2, padding: 1, rounding: .floor, countIncludePadding: false)),
        LayerSpec(name: "fc4", .linear(outputs: 32, bias: .constant(1))), LayerSpec(name: "relu4", .relu),
        LayerSpec(name: "drop4", .dropout(rate: 0.5, scaling: .inverted)),
        LayerSpec(name: "fc5", .linear(outputs: 10, bias: .constant(0))),
    ])
}

final class TowerTests: XCTestCase {
    /// Runs `steps` SGD steps of the grouped network and of the towers side by side
    /// and asserts every activation, gradient and weight is bitwise the same.
    private func assertTowersMatchGrouped(spec: ModelSpec, batch: Int, steps: Int, workers: Int,
                                          file: StaticString = #filePath, line: UInt = #line) throws {
        let grouped = try Network<Float>(spec: spec, seed: 5)
        let towers = try TowerNetwork(copying: grouped, workersPerTower: workers)
        let input = randomFloatTensor(Shape([batch] + spec.inputShape.dims), seed: 21)
        let labels = (0..<batch).map { ($0 * 7 + 3) % spec.classes }
        let groupedPool = WorkerPool(workerCount: workers)
        let groupedSGD = SGD<Float>(learningRate: 0.01, form: .paper)
        let towerSGD = [SGD<Float>(learningRate: 0.01, form: .paper), SGD<Float>(learningRate: 0.01, form: .paper)]

        for step in 0..<steps {
            let context = PassContext(pool: groupedPool, mode: .training, step: UInt64(step))
            let groupedLoss = try grouped.forwardBackward(input, labels: labels, context: context)
            let scores = try towers.forward(input, context: context)
            let towerLoss = try towers.loss.forward(logits: scores, labels: labels)
            try towers.backward(try towers.loss.backward(), context: context)

            XCTAssertEqual(groupedLoss.loss.bitPattern, towerLoss.loss.bitPattern, "loss, step \(step)", file: file, line: line)
            XCTAssertTrue(scores.isBitwiseEqual(to: grouped.activations.last!), "scores, step \(step)", file: file, line: line)
            XCTAssertTrue(towers.inputGradient!.isBitwiseEqual(to: grouped.gradients[0]), "input gradient, step \(step)",
                          file: file, line: line)
            for (index, layer) in spec.layers.enumerated() {
                let whole = grouped.activations[index + 1], wholeGradient = grouped.gradients[index + 1]
                let width = whole.shape[1] / 2
                for tower in 0..<2 {
                    let range = tower * width..<(tower + 1) * width
                    XCTAssertTrue(towers.activations[tower][index + 1].isBitwiseEqual(to: try whole.slice(channels: range)),
                                  "\(layer.name) output, tower \(tower), step \(step)", file: file, line: line)
                    XCTAssertTrue(towers.gradients[tower][index + 1].isBitwiseEqual(to: try wholeGradient.slice(channels: range)),
                                  "\(layer.name) output gradient, tower \(tower), step \(step)", file: file, line: line)
                }
            }
            for tower in 0..<2 {
                for (name, parameter) in towers.namedParameters(tower: tower) {
                    let whole = grouped.namedParameters.first { $0.name == name }!.parameter
                    let rows = parameter.value.shape[0]
                    XCTAssertTrue(parameter.gradient.isBitwiseEqual(to: try whole.gradient.sliceRows(tower * rows..<(tower + 1) * rows)),
                                  "\(name) gradient, tower \(tower), step \(step)", file: file, line: line)
                }
            }
            try groupedSGD.step(grouped.namedParameters.map(\.parameter), pool: groupedPool)
            try towers.step(towerSGD)
            for tower in 0..<2 {
                for (name, parameter) in towers.namedParameters(tower: tower) {
                    let whole = grouped.namedParameters.first { $0.name == name }!.parameter
                    let rows = parameter.value.shape[0]
                    XCTAssertTrue(parameter.value.isBitwiseEqual(to: try whole.value.sliceRows(tower * rows..<(tower + 1) * rows)),
                                  "\(name) after step \(step), tower \(tower)", file: file, line: line)
                }
            }
        }
    }

    func testPaperNetTowersAreBitwiseIdenticalToGroupedOverThreeSGDStepsWithDropout() throws {
        try assertTowersMatchGrouped(spec: try paperLikeSpec(fc: 256, classes: 10), batch: 2, steps: 3, workers: 2)
    }

    func testSmallNetTowersAreBitwiseIdenticalToGroupedOverThreeSGDStepsWithDropout() throws {
        try assertTowersMatchGrouped(spec: try smallTowerSpec(), batch: 5, steps: 3, workers: 1)
        try assertTowersMatchGrouped(spec: try smallTowerSpec(), batch: 5, steps: 3, workers: 2)
    }

    /// The edge specs of the tower rule (TowerPlan): a first layer that is
    /// linear (each tower sees the whole image, nothing crosses before it), a
    /// grouped first convolution (each tower sees its half of the image's
    /// channels), a single-layer net. Both executors agree bit for bit.
    func testEdgeSpecsRunTheSameOnTowersAndGrouped() throws {
        let firstLinear = try ModelSpec(name: "first-linear", inputShape: [2, 4, 4], towers: 2, layers: [
            LayerSpec(name: "fc1", .linear(outputs: 8, bias: .constant(0.1))), LayerSpec(name: "relu1", .relu),
            LayerSpec(name: "fc2", .linear(outputs: 4, bias: .constant(0))),
        ])
        let groupedFirst = try ModelSpec(name: "grouped-first", inputShape: [2, 8, 8], towers: 2, layers: [
            LayerSpec(name: "conv1", .convolution(outputs: 4, kernel: 3, stride: 1, padding: 1, groups: 2, bias: .constant(0))),
            LayerSpec(name: "relu1", .relu),
            LayerSpec(name: "conv2", .convolution(outputs: 4, kernel: 3, stride: 1, padding: 1, groups: 1, bias: .constant(0))),
            LayerSpec(name: "fc3", .linear(outputs: 6, bias: .constant(0))),
        ])
        let single = try ModelSpec(name: "single", inputShape: [1, 3, 3], towers: 2, layers: [
            LayerSpec(name: "fc1", .linear(outputs: 4, bias: .constant(0))),
        ])
        XCTAssertEqual(TowerPlan(spec: firstLinear).inputs, [.wholeImage, .ownHalf, .exchanged])
        XCTAssertEqual(TowerPlan(spec: groupedFirst).inputs, [.imageHalf, .ownHalf, .exchanged, .exchanged])
        XCTAssertEqual(TowerPlan(spec: single).inputs, [.wholeImage])
        XCTAssertFalse(TowerPlan(spec: groupedFirst).imageGradientIsSummed)
        for spec in [firstLinear, groupedFirst, single] {
            try assertTowersMatchGrouped(spec: spec, batch: 3, steps: 2, workers: 1)
            let towers = try TowerNetwork(copying: try Network<Float>(spec: spec, seed: 1))
            // Every reader of the rule gives the same answer.
            XCTAssertEqual(towers.crossesBefore, spec.layers.indices.map { spec.crossesTowers(layerAt: $0) }, spec.name)
            XCTAssertEqual(try ModelSummary(spec: spec).rows.map { $0.crossing != nil }, towers.crossesBefore, spec.name)
        }
        // The paper net: conv3, fc6, fc7 and fc8 cross, nothing else.
        let paper = try ModelZoo.spec(named: "paper")
        let crossing = paper.layers.indices.filter { TowerPlan(spec: paper).crossesBefore($0) }.map { paper.layers[$0].name }
        XCTAssertEqual(crossing, ["conv3", "fc6", "fc7", "fc8"])
    }

    /// Training's gradient buffers (``Network/keepsGradients`` off, two shared
    /// buffers) give bitwise the parameter gradients of one buffer per layer,
    /// over two steps, on the grouped network and on the towers.
    func testSharedGradientBuffersGiveTheSameGradients() throws {
        let spec = try smallTowerSpec()
        let input = randomFloatTensor(Shape([4] + spec.inputShape.dims), seed: 3)
        let labels = [1, 2, 3, 4]
        let kept = try Network<Float>(spec: spec, seed: 2)
        let shared = try Network<Float>(spec: spec, seed: 2)
        shared.keepsGradients = false
        let keptTowers = try TowerNetwork(copying: kept)
        let sharedTowers = try TowerNetwork(copying: kept)
        sharedTowers.keepsGradients = false
        let buffers = GradientBuffers<Float>()
        for step in 0..<2 {
            let plain = PassContext(mode: .training, step: UInt64(step))
            let pooled = PassContext(mode: .training, step: UInt64(step), gradientBuffers: buffers)
            _ = try kept.forwardBackward(input, labels: labels, context: plain)
            _ = try shared.forwardBackward(input, labels: labels, context: pooled)
            XCTAssertTrue(shared.gradients.isEmpty)
            for ((name, a), (_, b)) in zip(kept.namedParameters, shared.namedParameters) {
                XCTAssertTrue(a.gradient.isBitwiseEqual(to: b.gradient), "\(name), step \(step)")
            }
            for (towers, context) in [(keptTowers, plain), (sharedTowers, pooled)] {
                let scores = try towers.forward(input, context: context)
                _ = try towers.loss.forward(logits: scores, labels: labels)
                try towers.backward(try towers.loss.backward(), context: context)
            }
            for tower in 0..<2 {
                for ((name, a), (_, b)) in zip(keptTowers.namedParameters(tower: tower), sharedTowers.namedParameters(tower: tower)) {
                    XCTAssertTrue(a.gradient.isBitwiseEqual(to: b.gradient), "tower \(tower) \(name), step \(step)")
                }
            }
        }
    }

    /// Once the shared buffers have grown to the largest activation, later
    /// backward passes allocate no gradient storage: every layer writes the
    /// buffer it took in place (a copy on write would lose the buffer, and the
    /// next layers would allocate, and the kernel fault in, fresh pages every
    /// step). The spec has every kind of layer.
    func testSharedGradientBuffersAllocateNothingAfterTheFirstStep() throws {
        let spec = try smallTowerSpec()
        let input = randomFloatTensor(Shape([4] + spec.inputShape.dims), seed: 3)
        let network = try Network<Float>(spec: spec, seed: 2)
        network.keepsGradients = false
        let buffers = GradientBuffers<Float>()
        var allocated: [Int] = []
        for step in 0..<3 {
            let context = PassContext(mode: .training, step: UInt64(step), gradientBuffers: buffers)
            _ = try network.forwardBackward(input, labels: [1, 2, 3, 4], context: context)
            allocated.append(buffers.allocatedElements)
        }
        XCTAssertGreaterThan(allocated[0], 0)
        XCTAssertEqual(allocated, [allocated[0], allocated[0], allocated[0]], "elements allocated after each step")

        // The two-tower executor: each tower's own buffers, through the crossings' sums.
        let towers = try TowerNetwork(copying: network)
        towers.keepsGradients = false
        var towerAllocated: [Int] = []
        for step in 0..<3 {
            let context = PassContext(mode: .training, step: UInt64(step), gradientBuffers: buffers)
            let scores = try towers.forward(input, context: context)
            _ = try towers.loss.forward(logits: scores, labels: [1, 2, 3, 4])
            try towers.backward(try towers.loss.backward(), context: context)
            towerAllocated.append(towers.allocatedGradientElements)
        }
        XCTAssertGreaterThan(towerAllocated[0], 0)
        XCTAssertEqual(towerAllocated, [towerAllocated[0], towerAllocated[0], towerAllocated[0]],
                       "elements the towers allocated after each step")
    }

    func testShippedCIFARTowerNetIsBitwiseIdenticalToGrouped() throws {
        let spec = try ModelZoo.spec(named: "cifar-towers", classes: 10, towers: 2, inputShape: ModelZoo.fashionMNISTInput)
        try assertTowersMatchGrouped(spec: spec, batch: 3, steps: 3, workers: 2)
    }

    func testCrossingBytesMatchAHandCalculation() throws {
        let spec = try paperLikeSpec(fc: 256, classes: 10)
        let towers = try TowerNetwork(copying: try Network<Float>(spec: spec, seed: 1), workersPerTower: 1)
        let batch = 2
        let scores = try towers.forward(randomFloatTensor([batch, 3, 227, 227], seed: 2), context: PassContext(mode: .training))
        _ = try towers.loss.forward(logits: scores, labels: [1, 2])
        try towers.backward(try towers.loss.backward(), context: PassContext(mode: .training))
        // Per image, both directions together, 4-byte floats: before conv3 the towers swap their
        // 128 of pool2's 256 13x13 maps; before fc6 their halves of pool5's 256 * 6 * 6 = 9216 features;
        // before fc7 and fc8 their halves of 256 features. Backward sends the same amounts back.
        let perImage = [("conv3", 256 * 13 * 13 * 4), ("fc6", 9216 * 4), ("fc7", 256 * 4), ("fc8", 256 * 4)]
        let forward = towers.crossings.filter { $0.kind == .forwardExchange }
        let backward = towers.crossings.filter { $0.kind == .backwardExchange }
        XCTAssertEqual(forward.map(\.layer), perImage.map(\.0))
        XCTAssertEqual(forward.map(\.bytes), perImage.map { $0.1 * batch })
        XCTAssertEqual(backward.map(\.layer), perImage.map(\.0).reversed())
        XCTAssertEqual(backward.map(\.bytes), perImage.map { $0.1 * batch }.reversed())
        XCTAssertEqual(towers.exchangedBytes, 2 * batch * (173_056 + 36_864 + 1_024 + 1_024))
    }

    func testTowerActivationShapesAreHalves() throws {
        let spec = try paperLikeSpec(fc: 256, classes: 10)
        let towers = try TowerNetwork(copying: try Network<Float>(spec: spec, seed: 1), workersPerTower: 1)
        _ = try towers.forward(randomFloatTensor([1, 3, 227, 227], seed: 2), context: PassContext())
        let conv2 = spec.layers.firstIndex { $0.name == "conv2" }! + 1
        XCTAssertEqual(towers.activations[0][conv2].shape, [1, 128, 27, 27], "what tower 0 holds after conv2")
        XCTAssertEqual(towers.activations[1][1].shape, [1, 48, 55, 55], "tower 1 after conv1")
    }

    /// A negative control: the comparison above can fail. Tower 1 with conv3's
    /// two halves swapped (a classic two-GPU bug) no longer matches the grouped run.
    func testSwappedConv3HalvesAreNoticed() throws {
        let spec = try smallTowerSpec()
        let grouped = try Network<Float>(spec: spec, seed: 5)
        let towers = try TowerNetwork(copying: grouped, workersPerTower: 1)
        let conv3 = spec.layers.firstIndex { $0.name == "conv3" }!
        let (w0, w1) = (towers.layers[0][conv3].parameters[0], towers.layers[1][conv3].parameters[0])
        (w0.value, w1.value) = (w1.value, w0.value)
        let input = randomFloatTensor([2, 3, 32, 32], seed: 3)
        let scores = try towers.forward(input, context: PassContext())
        XCTAssertFalse(scores.isBitwiseEqual(to: try grouped.forward(input, context: PassContext())))
    }

    func testOneTowerSpecIsRefused() throws {
        var layers = try smallTowerSpec().layers
        layers.removeAll { if case .dropout = $0.kind { return true } else { return false } }
        let spec = try ModelSpec(name: "one", inputShape: [3, 32, 32], towers: 1, layers: layers)
        XCTAssertThrowsError(try TowerNetwork(copying: try Network<Float>(spec: spec))) { error in
            XCTAssertTrue("\(error)".contains("towers 2"), "\(error)")
        }
    }
}
