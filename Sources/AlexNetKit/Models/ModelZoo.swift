/// The shipped model specs, selectable by name. Docs/models.md lists every
/// model's layers, shapes and parameter counts, and where each comes from.
///
/// | name | input | towers | classes | what |
/// |---|---|---|---|---|
/// | `paper` | `[3, 227, 227]` | 2 (or 1) | 1000 | Krizhevsky et al. 2012, with LRN in the paper's convention |
/// | `torchvision` | `[3, 224, 224]` | 1 | 1000 | `torchvision.models.alexnet` (no LRN, inverted dropout) |
/// | `cifar-towers` | `[3, 32, 32]` or `[1, 28, 28]` | 2 (or 1) | 10 | a small two-tower AlexNet for experiments |
/// | `layers-80sec` | `[3, 32, 32]` or `[1, 28, 28]` | 1 | 10 | cuda-convnet's `layers-80sec.cfg` |
/// | `layers-18pct` | `[3, 32, 32]` or `[1, 28, 28]` | 1 | 10 | cuda-convnet's `layers-18pct.cfg`, with cross-map LRN in place of its same-map `rnorm` (a variant) |
///
/// The CIFAR-sized nets take any `[C, H, W]` input their layers fit; CIFAR-10
/// (``cifarInput``) is the default and Fashion-MNIST (``fashionMNISTInput``) is
/// the other size they are meant for. `paper` and `torchvision` take only their
/// own input size (write a JSON spec for another).
public enum ModelZoo {
    /// Every shipped model's name, in the order `alexnet summary --help` lists them.
    public static let names: [String] = ["paper", "torchvision", "cifar-towers", "layers-80sec", "layers-18pct"]

    /// CIFAR-10's image shape `[3, 32, 32]`: the CIFAR-sized nets' default input.
    public static let cifarInput: Shape = [3, 32, 32]

    /// Fashion-MNIST's image shape `[1, 28, 28]` (grey-scale).
    public static let fashionMNISTInput: Shape = [1, 28, 28]

    /// The model called `name`, adapted to `classes`, `towers` and `inputShape`
    /// where given (nil: the model's own default; see the table on ``ModelZoo``).
    ///
    /// - Parameters:
    ///   - name: one of ``names``.
    ///   - classes: outputs of the last linear layer, at least 1 (with 2 towers, even).
    ///   - towers: 1 or 2 where the model allows it (`torchvision`, `layers-80sec`
    ///     and `layers-18pct` have one tower only).
    ///   - inputShape: one image `[C, H, W]`; only the CIFAR-sized nets accept
    ///     another shape than their default.
    /// - Throws: ``ModelSpecError`` for an unknown name (listing the known ones),
    ///   a tower count or input shape the model does not allow, or classes the
    ///   layers cannot take.
    public static func spec(named name: String, classes: Int? = nil, towers: Int? = nil,
                            inputShape: Shape? = nil) throws -> ModelSpec {
        switch name {
        case "paper":
            try requireInput(inputShape, [3, 227, 227], model: name)
            return try paper(classes: classes ?? 1000, towers: towers ?? 2)
        case "torchvision":
            try requireInput(inputShape, [3, 224, 224], model: name)
            try requireOneTower(towers, model: name)
            return try torchvision(classes: classes ?? 1000)
        case "cifar-towers":
            return try cifarTowers(classes: classes ?? 10, towers: towers ?? 2, inputShape: inputShape ?? cifarInput)
        case "layers-80sec":
            try requireOneTower(towers, model: name)
            return try layers80sec(classes: classes ?? 10, inputShape: inputShape ?? cifarInput)
        case "layers-18pct":
            try requireOneTower(towers, model: name)
            return try layers18pct(classes: classes ?? 10, inputShape: inputShape ?? cifarInput)
        default:
            throw ModelSpecError(location: "model \"\(name)\"",
                                 problem: "no shipped model has this name; the known models are "
                                     + names.joined(separator: ", "))
        }
    }

    /// One line per shipped model, for help texts: what it is and where it comes from.
    public static let descriptions: [String: String] = [
        "paper": "Krizhevsky, Sutskever, Hinton 2012: 227x227x3, two towers, LRN (paper convention), "
            + "overlapping max pooling, paper dropout; 60,965,224 parameters at 1000 classes",
        "torchvision": "torchvision.models.alexnet: 224x224x3, one tower, no LRN, inverted dropout "
            + "before fc6 and fc7; 61,100,840 parameters at 1000 classes",
        "cifar-towers": "a small two-tower AlexNet for 32x32x3 (CIFAR-10) or 28x28x1 (Fashion-MNIST): "
            + "conv 2x32, 2x32, 2x64 (exchange), 2x64, fc 2x128, 2x128",
        "layers-80sec": "cuda-convnet's layers-80sec.cfg (claimed 26% CIFAR-10 error in 80 s): "
            + "conv 32, 32, 64 (5x5), max then average pooling (ceil), fc 64",
        "layers-18pct": "cuda-convnet's layers-18pct.cfg (claimed 18% CIFAR-10 error in 20 min) with cross-map "
            + "LRN in place of its same-map rnorm, so a variant; 89,578 parameters at 32x32x3",
    ]

    // MARK: - The paper

    /// The paper's AlexNet: input `[3, 227, 227]`, five convolutions, three
    /// linear layers, LRN after conv1 and conv2 (`n` 5, `alpha` 1e-4, `beta`
    /// 0.75, `k` 2, ``LRNConvention/paper``), overlapping 3x3/2 max pooling
    /// (floor; ceil gives the same sizes here), dropout 0.5 on fc6 and fc7 with
    /// the paper's test-time scaling, and the paper's bias constants (1 in
    /// conv2, conv4, conv5, fc6, fc7; 0 in conv1, conv3, fc8).
    ///
    /// conv2, conv4 and conv5 have `groups: 2` (one group per GPU) in both tower
    /// layouts; with `towers: 1` the same grouped layers run in one pool.
    /// 60,965,224 parameters at 1000 classes.
    /// - Throws: ``ModelSpecError`` when `classes` is below 1, odd with two
    ///   towers, or `towers` is not 1 or 2.
    public static func paper(classes: Int = 1000, towers: Int = 2) throws -> ModelSpec {
        try requireClasses(classes)
        let lrn = LayerSpec.Kind.localResponseNorm(size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .paper)
        let pool = LayerSpec.Kind.maxPool(kernel: 3, stride: 2, padding: 0, rounding: .floor)
        let dropout = LayerSpec.Kind.dropout(rate: 0.5, scaling: .paper)
        return try ModelSpec(name: "paper", inputShape: [3, 227, 227], towers: towers, layers: [
            LayerSpec(name: "conv1", conv(96, kernel: 11, stride: 4, padding: 0, groups: 1, bias: 0)),
            LayerSpec(name: "relu1", .relu),
            LayerSpec(name: "lrn1", lrn),
            LayerSpec(name: "pool1", pool),
            LayerSpec(name: "conv2", conv(256, kernel: 5, stride: 1, padding: 2, groups: 2, bias: 1)),
            LayerSpec(name: "relu2", .relu),
            LayerSpec(name: "lrn2", lrn),
            LayerSpec(name: "pool2", pool),
            LayerSpec(name: "conv3", conv(384, kernel: 3, stride: 1, padding: 1, groups: 1, bias: 0)),
            LayerSpec(name: "relu3", .relu),
            LayerSpec(name: "conv4", conv(384, kernel: 3, stride: 1, padding: 1, groups: 2, bias: 1)),
            LayerSpec(name: "relu4", .relu),
            LayerSpec(name: "conv5", conv(256, kernel: 3, stride: 1, padding: 1, groups: 2, bias: 1)),
            LayerSpec(name: "relu5", .relu),
            LayerSpec(name: "pool5", pool),
            LayerSpec(name: "fc6", .linear(outputs: 4096, bias: .constant(1))),
            LayerSpec(name: "relu6", .relu),
            LayerSpec(name: "drop6", dropout),
            LayerSpec(name: "fc7", .linear(outputs: 4096, bias: .constant(1))),
            LayerSpec(name: "relu7", .relu),
            LayerSpec(name: "drop7", dropout),
            LayerSpec(name: "fc8", .linear(outputs: classes, bias: .constant(0))),
        ])
    }

    // MARK: - torchvision

    /// torchvision's `alexnet()` (the "one weird trick" variant): input
    /// `[3, 224, 224]`, conv 64 11x11/4 pad 2, 192 5x5 pad 2, 384, 256, 256 3x3
    /// pad 1, 3x3/2 max pooling rounding down (PyTorch's default), no LRN, no
    /// groups, inverted dropout 0.5 *before* fc6 and fc7. 61,100,840 parameters
    /// at 1000 classes.
    ///
    /// torchvision puts `AdaptiveAvgPool2d((6, 6))` between the features and the
    /// classifier. At 224x224 input the features are already 6x6, so that layer
    /// is the identity (each output averages exactly one cell) and the spec
    /// leaves it out; it is why this model accepts no other input size.
    ///
    /// Biases start at 0 here; torchvision draws them (and the weights) from
    /// PyTorch's default uniform initialisers, so compare with it by loading its
    /// state dict (see ``torchvisionStateDictNames``) rather than by initialising.
    /// - Throws: ``ModelSpecError`` when `classes` is below 1.
    public static func torchvision(classes: Int = 1000) throws -> ModelSpec {
        try requireClasses(classes)
        let pool = LayerSpec.Kind.maxPool(kernel: 3, stride: 2, padding: 0, rounding: .floor)
        let dropout = LayerSpec.Kind.dropout(rate: 0.5, scaling: .inverted)
        return try ModelSpec(name: "torchvision", inputShape: [3, 224, 224], towers: 1, layers: [
            LayerSpec(name: "conv1", conv(64, kernel: 11, stride: 4, padding: 2, groups: 1, bias: 0)),
            LayerSpec(name: "relu1", .relu),
            LayerSpec(name: "pool1", pool),
            LayerSpec(name: "conv2", conv(192, kernel: 5, stride: 1, padding: 2, groups: 1, bias: 0)),
            LayerSpec(name: "relu2", .relu),
            LayerSpec(name: "pool2", pool),
            LayerSpec(name: "conv3", conv(384, kernel: 3, stride: 1, padding: 1, groups: 1, bias: 0)),
            LayerSpec(name: "relu3", .relu),
            LayerSpec(name: "conv4", conv(256, kernel: 3, stride: 1, padding: 1, groups: 1, bias: 0)),
            LayerSpec(name: "relu4", .relu),
            LayerSpec(name: "conv5", conv(256, kernel: 3, stride: 1, padding: 1, groups: 1, bias: 0)),
            LayerSpec(name: "relu5", .relu),
            LayerSpec(name: "pool5", pool),
            LayerSpec(name: "drop6", dropout),
            LayerSpec(name: "fc6", .linear(outputs: 4096, bias: .constant(0))),
            LayerSpec(name: "relu6", .relu),
            LayerSpec(name: "drop7", dropout),
            LayerSpec(name: "fc7", .linear(outputs: 4096, bias: .constant(0))),
            LayerSpec(name: "relu7", .relu),
            LayerSpec(name: "fc8", .linear(outputs: classes, bias: .constant(0))),
        ])
    }

    /// Layer name in ``torchvision(classes:)`` -> module path in torchvision's
    /// `AlexNet` (`model.features[0]` is `"features.0"`). A parameter's key in
    /// the PyTorch state dict is the module path plus `.weight` or `.bias`
    /// (`conv1.weight` is `features.0.weight`, `fc6.bias` is `classifier.1.bias`);
    /// the layouts agree (`[out, in, kh, kw]`, `[out, in]`). Layers without
    /// parameters are listed too, so activations captured with forward hooks
    /// can be matched. torchvision's `avgpool` (the identity at 224x224) has no
    /// counterpart.
    public static let torchvisionStateDictNames: [String: String] = [
        "conv1": "features.0", "relu1": "features.1", "pool1": "features.2",
        "conv2": "features.3", "relu2": "features.4", "pool2": "features.5",
        "conv3": "features.6", "relu3": "features.7",
        "conv4": "features.8", "relu4": "features.9",
        "conv5": "features.10", "relu5": "features.11", "pool5": "features.12",
        "drop6": "classifier.0", "fc6": "classifier.1", "relu6": "classifier.2",
        "drop7": "classifier.3", "fc7": "classifier.4", "relu7": "classifier.5",
        "fc8": "classifier.6",
    ]

    // MARK: - CIFAR-sized nets

    /// A small AlexNet-style net for 32x32 or 28x28 images, cheap enough to
    /// train on Fashion-MNIST on two CPU cores in minutes, with the paper's
    /// tower structure: conv1 2x32 5x5 pad 2 (over the whole image), relu1,
    /// lrn1, pool1, conv2 2x32 5x5 pad 2 in 2 groups (each tower its own maps),
    /// relu2, lrn2, pool2, conv3 2x64 3x3 pad 1 in 1 group (the towers
    /// exchange), relu3, conv4 2x64 3x3 pad 1 in 2 groups, relu4, pool4, fc5
    /// 2x128, relu5, drop5, fc6 2x128, relu6, drop6, fc7 `classes`.
    ///
    /// LRN, dropout and bias constants are the paper's (n 5, alpha 1e-4, beta
    /// 0.75, k 2, ``LRNConvention/paper``; rate 0.5, ``DropoutScaling/paper``;
    /// biases 1 in conv2, conv4, fc5, fc6 and 0 elsewhere). Pools are 3x3/2 and
    /// round up (``PoolRounding/ceil``) as cuda-convnet's do: 32 -> 16 -> 8 -> 4,
    /// or 28 -> 14 -> 7 -> 3. 796,746 parameters at `[3, 32, 32]`, 564,170 at
    /// `[1, 28, 28]` (10 classes).
    /// - Throws: ``ModelSpecError`` when the input is too small for the layers,
    ///   `classes` is below 1 or odd with two towers, or `towers` is not 1 or 2.
    public static func cifarTowers(classes: Int = 10, towers: Int = 2, inputShape: Shape = cifarInput) throws -> ModelSpec {
        try requireClasses(classes)
        try requireInputLimits(inputShape)
        let lrn = LayerSpec.Kind.localResponseNorm(size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .paper)
        let pool = LayerSpec.Kind.maxPool(kernel: 3, stride: 2, padding: 0, rounding: .ceil)
        let dropout = LayerSpec.Kind.dropout(rate: 0.5, scaling: .paper)
        return try ModelSpec(name: "cifar-towers", inputShape: inputShape, towers: towers, layers: [
            LayerSpec(name: "conv1", conv(64, kernel: 5, stride: 1, padding: 2, groups: 1, bias: 0)),
            LayerSpec(name: "relu1", .relu),
            LayerSpec(name: "lrn1", lrn),
            LayerSpec(name: "pool1", pool),
            LayerSpec(name: "conv2", conv(64, kernel: 5, stride: 1, padding: 2, groups: 2, bias: 1)),
            LayerSpec(name: "relu2", .relu),
            LayerSpec(name: "lrn2", lrn),
            LayerSpec(name: "pool2", pool),
            LayerSpec(name: "conv3", conv(128, kernel: 3, stride: 1, padding: 1, groups: 1, bias: 0)),
            LayerSpec(name: "relu3", .relu),
            LayerSpec(name: "conv4", conv(128, kernel: 3, stride: 1, padding: 1, groups: 2, bias: 1)),
            LayerSpec(name: "relu4", .relu),
            LayerSpec(name: "pool4", pool),
            LayerSpec(name: "fc5", .linear(outputs: 256, bias: .constant(1))),
            LayerSpec(name: "relu5", .relu),
            LayerSpec(name: "drop5", dropout),
            LayerSpec(name: "fc6", .linear(outputs: 256, bias: .constant(1))),
            LayerSpec(name: "relu6", .relu),
            LayerSpec(name: "drop6", dropout),
            LayerSpec(name: "fc7", .linear(outputs: classes, bias: .constant(0))),
        ])
    }

    /// cuda-convnet's `layers-80sec.cfg` ("26% error on CIFAR-10 in 80 seconds",
    /// the original's claim): conv1 32 5x5 pad 2, pool1 max 3/2,
    /// relu1, conv2 32 5x5 pad 2, relu2, pool2 avg 3/2, conv3 64 5x5 pad 2,
    /// relu3, pool3 avg 3/2, fc64 64, relu4, fc10 `classes`.
    ///
    /// As in cuda-convnet, pools round their output size up
    /// (``PoolRounding/ceil``: 32 -> 16 -> 8 -> 4), average pools divide by the
    /// number of input cells in the (clipped) window (`countIncludePadding:
    /// false`), and biases start at 0. The config applies conv1's ReLU through
    /// pool1's `neuron=relu`, that is after max pooling; relu1 sits there too
    /// (the two orders give the same values). 145,578 parameters at
    /// `[3, 32, 32]`, 115,306 at `[1, 28, 28]` (10 classes).
    /// - Throws: ``ModelSpecError`` when the input is too small or `classes` is below 1.
    public static func layers80sec(classes: Int = 10, inputShape: Shape = cifarInput) throws -> ModelSpec {
        try requireClasses(classes)
        try requireInputLimits(inputShape)
        return try ModelSpec(name: "layers-80sec", inputShape: inputShape, towers: 1,
                             layers: cudaConvnetCIFARLayers(normalisation: nil, hidden: 64, classes: classes))
    }

    /// cuda-convnet's `layers-18pct.cfg` ("18% error on CIFAR-10 in 20
    /// minutes", the original's claim), **as a variant**: conv1 32 5x5 pad 2,
    /// pool1 max 3/2, relu1, rnorm1, conv2 32 5x5 pad 2, relu2, pool2 avg 3/2,
    /// rnorm2, conv3 64 5x5 pad 2, relu3, pool3 avg 3/2, fc10 `classes`.
    ///
    /// The original's `rnorm` layers are cuda-convnet's *same-map* (spatial)
    /// response normalisation: each value divided by
    /// `(1 + (scale / 9) * sum of squares over its 3x3 neighbourhood in the same map)^0.75`,
    /// scale 0.00005. This library has only cross-map LRN, so rnorm1 and rnorm2
    /// here are cross-map LRN over 3 adjacent channels with alpha 0.00005,
    /// beta 0.75, k 1 in the ``LRNConvention/caffe`` convention (alpha / n
    /// multiplies the window sum, as cuda-convnet's own cross-map `cmrnorm`
    /// does): the same "1 + scale * mean square over a window of 3 or 9" shape,
    /// over channels instead of pixels. Results from this net are not the
    /// original's. Pooling as in ``layers80sec(classes:inputShape:)``. 89,578
    /// parameters at `[3, 32, 32]`, 83,498 at `[1, 28, 28]` (10 classes).
    /// - Throws: ``ModelSpecError`` when the input is too small or `classes` is below 1.
    public static func layers18pct(classes: Int = 10, inputShape: Shape = cifarInput) throws -> ModelSpec {
        try requireClasses(classes)
        try requireInputLimits(inputShape)
        let rnorm = LayerSpec.Kind.localResponseNorm(size: 3, alpha: 0.00005, beta: 0.75, k: 1, convention: .caffe)
        return try ModelSpec(name: "layers-18pct", inputShape: inputShape, towers: 1,
                             layers: cudaConvnetCIFARLayers(normalisation: rnorm, hidden: nil, classes: classes))
    }

    // MARK: - Helpers

    /// The layers cuda-convnet's CIFAR-10 configs share: three 5x5 convolutions of
    /// 32, 32 and 64 filters, max then average pooling 3/2 rounding up, with
    /// `normalisation` (rnorm1, rnorm2) after pool1's ReLU and after pool2 when
    /// given (layers-18pct), and a `hidden`-unit fully connected layer before the
    /// classes when given (layers-80sec's fc64).
    private static func cudaConvnetCIFARLayers(normalisation: LayerSpec.Kind?, hidden: Int?, classes: Int) -> [LayerSpec] {
        let maxPool = LayerSpec.Kind.maxPool(kernel: 3, stride: 2, padding: 0, rounding: .ceil)
        let avgPool = LayerSpec.Kind.avgPool(kernel: 3, stride: 2, padding: 0, rounding: .ceil, countIncludePadding: false)
        let rnorm1 = normalisation.map { [LayerSpec(name: "rnorm1", $0)] } ?? []
        let rnorm2 = normalisation.map { [LayerSpec(name: "rnorm2", $0)] } ?? []
        let fc = hidden.map { [LayerSpec(name: "fc\($0)", .linear(outputs: $0, bias: .constant(0))), LayerSpec(name: "relu4", .relu)] } ?? []
        return [
            LayerSpec(name: "conv1", conv(32, kernel: 5, stride: 1, padding: 2, groups: 1, bias: 0)),
            LayerSpec(name: "pool1", maxPool),
            LayerSpec(name: "relu1", .relu),
        ] + rnorm1 + [
            LayerSpec(name: "conv2", conv(32, kernel: 5, stride: 1, padding: 2, groups: 1, bias: 0)),
            LayerSpec(name: "relu2", .relu),
            LayerSpec(name: "pool2", avgPool),
        ] + rnorm2 + [
            LayerSpec(name: "conv3", conv(64, kernel: 5, stride: 1, padding: 2, groups: 1, bias: 0)),
            LayerSpec(name: "relu3", .relu),
            LayerSpec(name: "pool3", avgPool),
        ] + fc + [
            LayerSpec(name: "fc10", .linear(outputs: classes, bias: .constant(0))),
        ]
    }

    private static func conv(_ outputs: Int, kernel: Int, stride: Int, padding: Int, groups: Int,
                             bias: Double) -> LayerSpec.Kind {
        .convolution(outputs: outputs, kernel: Pair(kernel, kernel), stride: Pair(stride, stride),
                     padding: Pair(padding, padding), groups: groups, bias: .constant(bias))
    }

    private static func requireClasses(_ classes: Int) throws {
        guard classes >= 1 else {
            throw ModelSpecError(location: "classes", problem: "the number of classes must be at least 1, got \(classes)")
        }
        guard classes <= ModelSpec.maximumSetting else {
            throw ModelSpecError(location: "classes",
                                 problem: "\(classes) classes is more than the limit \(ModelSpec.maximumSetting)")
        }
    }

    /// Refuses extents above ``ModelSpec/maximumSetting`` before any shape arithmetic runs.
    static func requireInputLimits(_ shape: Shape) throws {
        if let extent = shape.dims.first(where: { $0 > ModelSpec.maximumSetting }) {
            throw ModelSpecError(location: "input", problem: "extent \(extent) in \(shape) is larger than the limit "
                                 + "\(ModelSpec.maximumSetting)")
        }
    }

    private static func requireOneTower(_ towers: Int?, model: String) throws {
        if let towers, towers != 1 {
            throw ModelSpecError(location: "towers",
                                 problem: "the \(model) model has one tower only, got \(towers) (two-tower models: "
                                     + "paper, cifar-towers)")
        }
    }

    private static func requireInput(_ shape: Shape?, _ native: Shape, model: String) throws {
        if let shape, shape != native {
            throw ModelSpecError(location: "input",
                                 problem: "the \(model) model is defined for input \(native) only, got \(shape); "
                                     + "write a JSON spec for another size")
        }
    }
}

extension ModelSpec {
    /// This spec with the number of classes (the last linear layer's outputs),
    /// the tower count or the input shape replaced, validated again.
    /// - Throws: ``ModelSpecError`` when the result is not a valid spec, or
    ///   classes or an input extent exceed ``ModelSpec/maximumSetting``.
    public func adapted(classes: Int? = nil, towers: Int? = nil, inputShape: Shape? = nil) throws -> ModelSpec {
        var layers = self.layers
        if let inputShape { try ModelZoo.requireInputLimits(inputShape) }
        if let classes {
            guard classes >= 1, classes <= ModelSpec.maximumSetting else {
                throw ModelSpecError(location: "classes", problem: "the number of classes must be between 1 and "
                                     + "\(ModelSpec.maximumSetting), got \(classes)")
            }
            if let last = layers.last, case .linear(_, let bias) = last.kind {
                layers[layers.count - 1] = LayerSpec(name: last.name, .linear(outputs: classes, bias: bias))
            }
        }
        return try ModelSpec(name: name, inputShape: inputShape ?? self.inputShape, towers: towers ?? self.towers,
                             layers: layers)
    }
}
