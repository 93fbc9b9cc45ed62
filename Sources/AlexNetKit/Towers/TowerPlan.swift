/// How a spec's layers run on its towers, decided in one place from the spec.
///
/// Every activation of a two-tower net is split between the towers along its
/// channel (or feature) dimension in two contiguous halves. What each tower's
/// copy of a layer receives follows one rule (Docs/towers.md):
///
/// | layer | first layer | later layers |
/// |---|---|---|
/// | convolution, `groups: 1` | the whole image (``Input/wholeImage``) | both halves, exchanged first (``Input/exchanged``): the paper's conv3 |
/// | convolution, `groups` a multiple of the towers | its half of the image's channels (``Input/imageHalf``) | its own half (``Input/ownHalf``): conv2, conv4, conv5 |
/// | linear | the whole image | both halves, exchanged first: fc6, fc7, fc8 |
/// | LRN, pooling, ReLU, tanh, dropout | (refused: a two-tower net starts with a layer that splits its outputs) | its own half |
///
/// A layer that sees its whole input (``seesWholeInput(_:)``) computes
/// `outputs / towers` of the outputs on each tower, and in backward each tower
/// holds a partial gradient of the whole input: the towers reduce-scatter it
/// after an exchanged layer, and the image's gradient is the partials' sum
/// after a first layer that saw the whole image. With one tower every layer sees
/// its input as it is and nothing crosses.
///
/// ``ModelSpec`` validation, ``Network`` (the grouped layers' output splits),
/// ``TowerNetwork`` (the exchanges), ``ModelSummary`` (crossing bytes), the
/// oracle and its diagnosis all read this plan.
public struct TowerPlan: Equatable, Sendable {
    /// What a tower's copy of a layer receives.
    public enum Input: Equatable, Sendable {
        /// The image, whole, on every tower: nothing crosses, the host sent it to both.
        case wholeImage
        /// The tower's half of the image's channels (a grouped first convolution).
        case imageHalf
        /// Both towers' halves of the previous layer's output, joined: the towers exchange first.
        case exchanged
        /// The tower's own half of the previous layer's output.
        case ownHalf
    }

    /// 1 or 2.
    public let towers: Int
    /// `inputs[i]`: what each tower's copy of layer `i` receives.
    public let inputs: [Input]

    /// The plan of `spec` (a validated spec; its towers and layer kinds decide everything).
    public init(spec: ModelSpec) {
        self.init(towers: spec.towers, layers: spec.layers)
    }

    /// The plan of `layers` run on `towers` towers (a spec's, or a trace's).
    public init(towers: Int, layers: [LayerSpec]) {
        self.towers = towers
        inputs = layers.enumerated().map { Self.input(for: $0.element, at: $0.offset, towers: towers) }
    }

    /// The rule: what each tower's copy of `layer`, at position `index`, receives with `towers` towers.
    public static func input(for layer: LayerSpec, at index: Int, towers: Int) -> Input {
        let first = index == 0
        guard towers > 1 else { return first ? .wholeImage : .ownHalf }
        switch layer.kind {
        case .convolution(_, _, _, _, let groups, _):
            if groups == 1 { return first ? .wholeImage : .exchanged }
            return first ? .imageHalf : .ownHalf
        case .linear:
            return first ? .wholeImage : .exchanged
        case .localResponseNorm, .maxPool, .avgPool, .relu, .tanh, .dropout:
            return first ? .wholeImage : .ownHalf
        }
    }

    /// Whether the towers exchange before layer `i` in forward (and reduce-scatter
    /// its input gradient in backward). False for an index outside the layers.
    public func crossesBefore(_ i: Int) -> Bool {
        inputs.indices.contains(i) && inputs[i] == .exchanged
    }

    /// Whether each tower's copy of layer `i` sees the layer's whole input (and so
    /// computes a share of the outputs from all of it).
    public func seesWholeInput(_ i: Int) -> Bool {
        inputs.indices.contains(i) && (inputs[i] == .exchanged || inputs[i] == .wholeImage)
    }

    /// Whether a layer of this kind at `index` sees its whole input with `towers` towers.
    static func seesWholeInput(_ layer: LayerSpec, at index: Int, towers: Int) -> Bool {
        let input = input(for: layer, at: index, towers: towers)
        return input == .exchanged || input == .wholeImage
    }

    /// Whether the image's gradient is the towers' partials summed (the first
    /// layer saw the whole image) rather than their halves joined.
    public var imageGradientIsSummed: Bool { towers > 1 && inputs.first == .wholeImage }
}
