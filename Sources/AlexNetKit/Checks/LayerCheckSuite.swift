/// One case of the layer gradient suite: a configured layer, its input shape and its results.
public struct LayerCheckCase {
    /// What is checked, e.g. `"conv 5x5 stride 2 pad 1 groups 2"`.
    public var description: String
    /// Input gradient first, then each parameter's.
    public var results: [GradientCheckResult]
    /// The largest relative error over all results.
    public var worstError: Double { results.map(\.maxRelativeError).max() ?? 0 }
}

/// Finite-difference gradient checks of every layer kind in Float64, on small
/// random inputs, covering the configurations AlexNet and its variants use.
/// The unit tests assert the same properties; this suite lets a user (or CI on
/// another machine) see the numbers: `alexnet gradcheck`.
public enum LayerCheckSuite {
    /// The bound every relative error must stay below.
    public static let tolerance = 1e-6

    /// Runs every case. Weights and inputs come from ``GradientCheck/randomUniform(shape:seed:)``.
    public static func run(seed: UInt64 = 1, pool: WorkerPool = .serial) throws -> [LayerCheckCase] {
        var cases: [LayerCheckCase] = []
        var nextSeed = seed
        func check<L: Layer>(_ description: String, _ layer: L, input: Shape, mode: PassMode = .inference,
                             awayFromZero: Bool = false, distinct: Bool = false) throws where L.Element == Double {
            for parameter in layer.parameters {
                nextSeed &+= 1
                parameter.value = GradientCheck.randomUniform(shape: parameter.value.shape, seed: nextSeed)
            }
            nextSeed &+= 1
            var x = GradientCheck.randomUniform(shape: input, seed: nextSeed)
            if awayFromZero {
                // Keep every input 0.05 or more from ReLU's kink, farther than the step h.
                x.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] += b[i] < 0 ? -0.05 : 0.05 } }
            }
            if distinct {
                // Max pooling: well-separated values (a permutation of 0.01 * k), so no tie and no
                // perturbation of 1e-5 can change a window's argmax.
                let order = x.storage.indices.sorted { x.storage[$0] < x.storage[$1] }
                x.withUnsafeMutableBufferPointer { b in for (rank, i) in order.enumerated() { b[i] = 0.01 * Double(rank) - 1 } }
            }
            let context = PassContext(pool: pool, mode: mode, step: 3)
            cases.append(LayerCheckCase(description: description,
                                        results: try GradientCheck.check(layer: layer, input: x, context: context)))
        }

        try check("conv 3x3 pad 1", try Conv2D<Double>(name: "conv", inputChannels: 3, outputChannels: 4, kernel: (3, 3),
                                                       padding: (1, 1)), input: [2, 3, 6, 6])
        try check("conv 5x3 stride 2 pad 1 groups 2", try Conv2D<Double>(name: "conv-grouped", inputChannels: 4, outputChannels: 6,
                                                                         kernel: (5, 3), stride: (2, 2), padding: (1, 1), groups: 2),
                  input: [2, 4, 9, 8])
        try check("conv 3x3 output split in 2 (paper conv3)", try Conv2D<Double>(name: "conv-split", inputChannels: 4, outputChannels: 6,
                                                                                 kernel: (3, 3), padding: (1, 1), outputSplits: 2),
                  input: [2, 4, 5, 5])
        try check("linear", try Linear<Double>(name: "linear", inputFeatures: 12, outputFeatures: 5), input: [3, 12])
        try check("linear from [N, C, H, W], split in 2", try Linear<Double>(name: "linear-split", inputFeatures: 18, outputFeatures: 6,
                                                                             outputSplits: 2), input: [3, 2, 3, 3])
        for convention in [LRNConvention.paper, .caffe] {
            try check("LRN n=5 \(convention) (3 channels: all near an edge)",
                      try LocalResponseNorm<Double>(name: "lrn", size: 5, alpha: 0.1, beta: 0.75, k: 2, convention: convention),
                      input: [2, 3, 3, 3])
            try check("LRN n=3 beta 0.6 \(convention) (7 channels)",
                      try LocalResponseNorm<Double>(name: "lrn", size: 3, alpha: 0.2, beta: 0.6, k: 1, convention: convention),
                      input: [2, 7, 2, 3])
        }
        // Even n follows PyTorch's asymmetric window, so only the .pytorch convention accepts it.
        try check("LRN n=4 beta 0.75 pytorch (7 channels)",
                  try LocalResponseNorm<Double>(name: "lrn", size: 4, alpha: 0.2, beta: 0.75, k: 1, convention: .pytorch),
                  input: [2, 7, 2, 3])
        try check("max pool 3x3/2 floor", try MaxPool2D<Double>(name: "pool", rounding: .floor), input: [2, 3, 7, 7], distinct: true)
        try check("max pool 3x3/2 pad 1 ceil", try MaxPool2D<Double>(name: "pool", padding: (1, 1), rounding: .ceil),
                  input: [2, 2, 8, 8], distinct: true)
        try check("avg pool 3x3/2 ceil", try AvgPool2D<Double>(name: "avgpool", rounding: .ceil, countIncludePadding: true),
                  input: [2, 3, 8, 8])
        try check("avg pool 3x3/2 pad 1 excluding padding", try AvgPool2D<Double>(name: "avgpool", padding: (1, 1), rounding: .floor,
                                                                                   countIncludePadding: false), input: [2, 2, 7, 7])
        try check("relu", ReLU<Double>(), input: [2, 3, 4, 4], awayFromZero: true)
        try check("tanh", Tanh<Double>(), input: [2, 3, 4, 4])
        for scaling in DropoutScaling.allCases {
            try check("dropout p=0.5 \(scaling), training", try Dropout<Double>(rate: 0.5, scaling: scaling, seed: seed),
                      input: [3, 16], mode: .training)
        }
        nextSeed &+= 1
        let logits = GradientCheck.randomUniform(shape: [4, 10], seed: nextSeed)
        let labels = [0, 3, 9, 3]
        let loss = SoftmaxCrossEntropy<Double>()
        _ = try loss.forward(logits: logits, labels: labels)
        let lossResult = try GradientCheck.check(name: "softmax cross-entropy logits", at: logits, analytic: try loss.backward()) {
            try SoftmaxCrossEntropy<Double>().forward(logits: $0, labels: labels).loss
        }
        cases.append(LayerCheckCase(description: "softmax cross-entropy", results: [lossResult]))
        return cases
    }
}
