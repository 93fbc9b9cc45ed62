import Foundation

/// Sizes and costs of a ``ModelSpec``, layer by layer, computed from the spec
/// alone (no weights are made): output shape, parameters, multiply-adds,
/// activation bytes, and with two towers what each tower holds and how many
/// bytes cross between them. `alexnet summary` prints ``table()``.
///
/// Counting rules, per image:
/// - multiply-adds: a convolution `outputs * OH * OW * (C / groups) * kh * kw`, a
///   linear layer `inputs * outputs`, every other layer 0 (its work is
///   element-wise and small next to these);
/// - activation bytes: the layer's output elements times the element size;
/// - crossing bytes (two towers): at a crossing layer (see
///   ``ModelSpec/crossesTowers(layerAt:)``) each tower sends the other its half
///   of the layer's input, so the forward pass moves `input elements * element
///   size` bytes (both directions together), and the backward pass moves as many
///   again (each tower sends the other its partial gradient for the other's half).
public struct ModelSummary: Sendable {
    /// Bytes that cross between the two towers at one layer, per image.
    public struct Crossing: Sendable, Equatable {
        /// Forward pass: each tower's half of the layer input, both directions together.
        public var forwardBytes: Int
        /// Backward pass: each tower's partial input gradient for the other's half, both directions together.
        public var backwardBytes: Int

        /// A crossing of `forwardBytes` forward and `backwardBytes` backward.
        public init(forwardBytes: Int, backwardBytes: Int) {
            self.forwardBytes = forwardBytes
            self.backwardBytes = backwardBytes
        }
    }

    /// One layer's line of the summary.
    public struct Row: Sendable, Equatable {
        /// The layer's name, e.g. `"conv1"`.
        public var name: String
        /// The layer's type as JSON specs write it (``LayerSpec/Kind/typeName``).
        public var type: String
        /// The layer's settings in words, e.g. `"96 out, 11x11/4, pad 0, groups 1, bias 0"`.
        public var settings: String
        /// Per-image input shape, `[C, H, W]` or `[F]`.
        public var inputShape: Shape
        /// Per-image output shape.
        public var outputShape: Shape
        /// Weights and biases.
        public var parameters: Int
        /// Multiply-adds per image (see ``ModelSummary`` for the rule).
        public var multiplyAdds: Int
        /// Output elements times the element size.
        public var activationBytes: Int
        /// With two towers, the part of the output each tower holds (the first
        /// dimension halved, e.g. `[48, 55, 55]` for the paper's conv1); nil with one.
        public var towerOutputShape: Shape?
        /// With two towers, the bytes that cross before this layer runs; nil
        /// where nothing crosses (and always with one tower).
        public var crossing: Crossing?
    }

    /// The summarised spec.
    public let spec: ModelSpec
    /// Bytes per element: 4 (Float32) or 8 (Float64).
    public let elementSize: Int
    /// One row per layer, in order.
    public let rows: [Row]

    /// Total weights and biases.
    public let parameters: Int
    /// Total multiply-adds per image.
    public let multiplyAdds: Int
    /// Bytes of all layer outputs of one image (the input not included).
    public let activationBytes: Int
    /// Bytes of one input image.
    public let inputBytes: Int
    /// Bytes crossing between the towers per image in the forward pass (0 with one tower).
    public let crossingForwardBytes: Int
    /// Bytes crossing between the towers per image in the backward pass (0 with one tower).
    public let crossingBackwardBytes: Int

    /// Summarises `spec` for elements of `elementSize` bytes.
    /// - Throws: ``ConfigurationError`` unless `elementSize` is 4 or 8;
    ///   ``ModelSpecError`` naming the layer if a layer does not fit its input
    ///   (only possible for a spec whose fields were edited after it was
    ///   validated) or a count does not fit a 64-bit integer.
    public init(spec: ModelSpec, elementSize: Int = 4) throws {
        guard elementSize == 4 || elementSize == 8 else {
            throw ConfigurationError(component: "summary",
                                     problem: "element size must be 4 (Float32) or 8 (Float64) bytes, got \(elementSize)")
        }
        func tooLarge(_ location: String, _ what: String) -> ModelSpecError {
            ModelSpecError(location: location, problem: "too large: \(what) does not fit a 64-bit count")
        }
        self.spec = spec
        self.elementSize = elementSize
        guard let inputBytes = checkedProduct(spec.inputShape.dims + [elementSize]) else {
            throw tooLarge("input", "the input's byte count")
        }
        self.inputBytes = inputBytes
        var rows: [Row] = []
        var totals = (parameters: 0, multiplyAdds: 0, activationBytes: 0, forward: 0, backward: 0)
        var shape = spec.inputShape
        for (index, layer) in spec.layers.enumerated() {
            let output = try layer.outputShape(for: shape)
            guard let outputBytes = checkedProduct(output.dims + [elementSize]) else {
                throw tooLarge(layer.name, "the output's byte count")
            }
            guard let parameters = layer.checkedParameterCount(input: shape) else {
                throw tooLarge(layer.name, "the parameter count")
            }
            guard let multiplyAdds = layer.checkedMultiplyAdds(input: shape) else {
                throw tooLarge(layer.name, "the multiply-add count")
            }
            var towerShape: Shape?
            if spec.towers > 1 {
                var dims = output.dims
                dims[0] /= spec.towers
                towerShape = Shape(dims)
            }
            var crossing: Crossing?
            if spec.crossesTowers(layerAt: index) {
                // The input's byte count fits: it was the previous layer's output.
                let bytes = shape.count * elementSize
                crossing = Crossing(forwardBytes: bytes, backwardBytes: bytes)
            }
            guard let p = checkedSum(totals.parameters, parameters),
                  let m = checkedSum(totals.multiplyAdds, multiplyAdds),
                  let a = checkedSum(totals.activationBytes, outputBytes),
                  let f = checkedSum(totals.forward, crossing?.forwardBytes ?? 0),
                  let b = checkedSum(totals.backward, crossing?.backwardBytes ?? 0)
            else { throw tooLarge(layer.name, "a running total") }
            totals = (p, m, a, f, b)
            rows.append(Row(name: layer.name, type: layer.kind.typeName, settings: layer.kind.settingsDescription,
                            inputShape: shape, outputShape: output, parameters: parameters,
                            multiplyAdds: multiplyAdds, activationBytes: outputBytes,
                            towerOutputShape: towerShape, crossing: crossing))
            shape = output
        }
        self.rows = rows
        parameters = totals.parameters
        multiplyAdds = totals.multiplyAdds
        activationBytes = totals.activationBytes
        crossingForwardBytes = totals.forward
        crossingBackwardBytes = totals.backward
    }

    /// The summary as an aligned text table with a totals line and a short
    /// footer (what `alexnet summary` prints). Numbers have thousands separators.
    public func table() -> String {
        let twoTowers = spec.towers > 1
        var header = ["layer", "type", "settings", "output"]
        if twoTowers { header.append("each tower") }
        header += ["params", "mult-adds", "act. bytes"]
        if twoTowers { header += ["cross fwd B", "cross bwd B"] }
        let numericFrom = twoTowers ? 5 : 4

        var lines: [[String]] = [header]
        for row in rows {
            var line = [row.name, row.type, row.settings, row.outputShape.description]
            if twoTowers { line.append(row.towerOutputShape?.description ?? "") }
            line += [grouped(row.parameters), grouped(row.multiplyAdds), grouped(row.activationBytes)]
            if twoTowers {
                line += [row.crossing.map { grouped($0.forwardBytes) } ?? "-", row.crossing.map { grouped($0.backwardBytes) } ?? "-"]
            }
            lines.append(line)
        }
        var total = ["total", "", "", ""]
        if twoTowers { total.append("") }
        total += [grouped(parameters), grouped(multiplyAdds), grouped(activationBytes)]
        if twoTowers { total += [grouped(crossingForwardBytes), grouped(crossingBackwardBytes)] }
        lines.append(total)

        var widths = [Int](repeating: 0, count: header.count)
        for line in lines { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func render(_ line: [String]) -> String {
            line.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i >= numericFrom ? pad + cell : cell + pad
            }.joined(separator: "  ").replacingTrailingSpaces()
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))

        let dtype = elementSize == 4 ? "float32" : "float64"
        var out = "\(spec.name): input \(spec.inputShape), \(spec.towers) tower\(spec.towers == 1 ? "" : "s"), "
            + "\(spec.classes) classes, \(dtype) (\(elementSize)-byte elements), per image\n"
        out += render(lines[0]) + "\n" + rule + "\n"
        for line in lines.dropFirst().dropLast() { out += render(line) + "\n" }
        out += rule + "\n" + render(lines.last!) + "\n\n"
        out += "parameters:              \(grouped(parameters))\n"
        out += "multiply-adds per image: \(grouped(multiplyAdds)) (\(flops(multiplyAdds)))\n"
        out += "activation bytes/image:  \(grouped(activationBytes)) (layer outputs; input \(grouped(inputBytes)))\n"
        if twoTowers {
            out += "crossing bytes/image:    \(grouped(crossingForwardBytes)) forward, "
                + "\(grouped(crossingBackwardBytes)) backward\n"
        }
        return out
    }

    /// 2 FLOP per multiply-add, in GFLOP (or MFLOP below one GFLOP), three decimals.
    private func flops(_ multiplyAdds: Int) -> String {
        let flop = 2 * Double(multiplyAdds)
        return flop >= 1e9 ? String(format: "%.3f GFLOP", flop / 1e9) : String(format: "%.3f MFLOP", flop / 1e6)
    }
}

/// `1234567` as `"1,234,567"`.
private func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}

private extension String {
    func replacingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// The product of `factors`, or nil if it overflows `Int`.
private func checkedProduct(_ factors: [Int]) -> Int? { InputLimits.product(factors) }

/// `a + b`, or nil if it overflows `Int`.
private func checkedSum(_ a: Int, _ b: Int) -> Int? {
    let (result, overflow) = a.addingReportingOverflow(b)
    return overflow ? nil : result
}

extension ModelSpec {
    /// Weights and biases of the whole model; `Int.max` if the count overflows
    /// (JSON specs and the zoo cannot produce such a model). For a spec edited
    /// after validation into one whose shapes no longer work, the layers up to
    /// the first that does not fit.
    public var parameterCount: Int {
        var shape = inputShape
        var count = 0
        for layer in layers {
            guard let sum = checkedSum(count, layer.parameterCount(input: shape)) else { return Int.max }
            count = sum
            guard let next = try? layer.outputShape(for: shape) else { break }
            shape = next
        }
        return count
    }

    /// Whether layer `index` makes the towers exchange before it runs
    /// (``TowerPlan/crossesBefore(_:)``): with two towers, a convolution with
    /// `groups: 1` or a linear layer, unless it is the first layer (whose input,
    /// the image, both towers already hold). Always false with one tower, and
    /// for an index outside the layers.
    public func crossesTowers(layerAt index: Int) -> Bool {
        TowerPlan(spec: self).crossesBefore(index)
    }
}

extension LayerSpec {
    /// Weights and biases of this layer for a per-image input shape: a
    /// convolution `outputs * (C / groups) * kh * kw` (+ `outputs` with a bias),
    /// a linear layer `inputs * outputs` (+ `outputs`), others 0; `Int.max` if
    /// the count overflows.
    public func parameterCount(input: Shape) -> Int { checkedParameterCount(input: input) ?? Int.max }

    /// Multiply-adds per image: a convolution `outputs * OH * OW * (C / groups) * kh * kw`,
    /// a linear layer `inputs * outputs`, others 0; 0 when the input does not
    /// fit, `Int.max` if the count overflows.
    public func multiplyAdds(input: Shape) -> Int { checkedMultiplyAdds(input: input) ?? Int.max }

    func checkedParameterCount(input: Shape) -> Int? {
        switch kind {
        case .convolution(let outputs, let kernel, _, _, let groups, let bias):
            guard input.rank == 3, groups >= 1 else { return 0 }
            let weights = checkedProduct([outputs, input[0] / groups, kernel.height, kernel.width])
            return weights.flatMap { checkedSum($0, bias == .none ? 0 : outputs) }
        case .linear(let outputs, let bias):
            let weights = checkedProduct(input.dims + [outputs])
            return weights.flatMap { checkedSum($0, bias == .none ? 0 : outputs) }
        default:
            return 0
        }
    }

    func checkedMultiplyAdds(input: Shape) -> Int? {
        switch kind {
        case .convolution(let outputs, let kernel, _, _, let groups, _):
            guard groups >= 1, let output = try? outputShape(for: input) else { return 0 }
            return checkedProduct([outputs, output[1], output[2], input[0] / groups, kernel.height, kernel.width])
        case .linear(let outputs, _):
            return checkedProduct(input.dims + [outputs])
        default:
            return 0
        }
    }
}

extension LayerSpec.Kind {
    /// The kind's `"type"` in JSON specs and summaries: `"conv"`, `"maxpool"`,
    /// `"avgpool"`, `"lrn"`, `"relu"`, `"tanh"`, `"linear"` or `"dropout"`.
    public var typeName: String {
        switch self {
        case .convolution: return "conv"
        case .maxPool: return "maxpool"
        case .avgPool: return "avgpool"
        case .localResponseNorm: return "lrn"
        case .relu: return "relu"
        case .tanh: return "tanh"
        case .linear: return "linear"
        case .dropout: return "dropout"
        }
    }

    /// The settings in words, as summaries print them: `"96 out, 11x11/4, pad 0,
    /// groups 1, bias 0"`, `"3x3/2, pad 0, floor"`, `"n 5, alpha 0.0001, beta
    /// 0.75, k 2, paper"`, `"rate 0.5, paper"`; empty for ReLU and tanh.
    public var settingsDescription: String {
        func side(_ p: Pair) -> String { p.height == p.width ? "\(p.height)" : "\(p)" }
        func number(_ x: Double) -> String {
            x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : x.description
        }
        func bias(_ b: LayerSpec.BiasSetting) -> String {
            if case .constant(let x) = b { return "bias \(number(x))" }
            return "no bias"
        }
        switch self {
        case .convolution(let outputs, let kernel, let stride, let padding, let groups, let b):
            return "\(outputs) out, \(kernel)/\(side(stride)), pad \(side(padding)), groups \(groups), \(bias(b))"
        case .maxPool(let kernel, let stride, let padding, let rounding):
            return "\(kernel)/\(side(stride)), pad \(side(padding)), \(rounding)"
        case .avgPool(let kernel, let stride, let padding, let rounding, let countIncludePadding):
            return "\(kernel)/\(side(stride)), pad \(side(padding)), \(rounding), "
                + (countIncludePadding ? "padding counted" : "padding not counted")
        case .localResponseNorm(let size, let alpha, let beta, let k, let convention):
            return "n \(size), alpha \(number(alpha)), beta \(number(beta)), k \(number(k)), \(convention)"
        case .relu, .tanh:
            return ""
        case .linear(let outputs, let b):
            return "\(outputs) out, \(bias(b))"
        case .dropout(let rate, let scaling):
            return "rate \(number(rate)), \(scaling.rawValue)"
        }
    }
}
