/// The oracle's tolerances: a default rule per element type, scaled by each
/// tensor's reduction length, and the overrides a user gives on the command line.
///
/// The rule (Docs/oracle.md, "Tolerances", gives the justification):
///
///     rtol = c * u * sqrt(K),  atol = 0
///
/// with `u` the unit roundoff (2^-24 for Float32, 2^-53 for Float64), `c` a
/// safety factor (``safetyFactor(_:)``: 32 for Float32, 16 for Float64) and `K`
/// the reduction length of the computation that produced the tensor: the
/// number of terms each output element sums (``ReductionLengths``). Applied as
/// `|ours - ref| <= rtol * (|ref| + RMS(ref))`.
public struct TolerancePolicy: Equatable, Sendable {
    /// Bit-exact mode: every element must have the reference's bits.
    public var exact: Bool
    /// Replaces the rule's rtol for every tensor (`--rtol`).
    public var rtol: Double?
    /// Added to every bound (`--atol`).
    public var atol: Double
    /// rtol for the tensors of one layer (`conv3`) or one tensor (`forward.conv3`,
    /// `tower1.grad.fc6.weight`); a tensor's own name wins over its layer's (`--tolerance NAME=RTOL`).
    public var overrides: [String: Double]

    /// The default policy: the rule, no overrides.
    public init(exact: Bool = false, rtol: Double? = nil, atol: Double = 0, overrides: [String: Double] = [:]) {
        self.exact = exact
        self.rtol = rtol
        self.atol = atol
        self.overrides = overrides
    }

    /// The unit roundoff `u` of `dtype`: 2^-24 (Float32) or 2^-53 (Float64).
    public static func unitRoundoff(_ dtype: DType) -> Double {
        dtype == .float64 ? 0x1p-53 : 0x1p-24
    }

    /// The rule's safety factor `c`: 32 for Float32, 16 for Float64.
    ///
    /// Float32 gets twice the room because the implementations it is meant to
    /// check legitimately compute differently (Winograd and implicit-GEMM
    /// convolutions, split-K reductions, fused multiply-adds, vendor `expf`/`powf`),
    /// while a Float64 reference is usually another direct CPU computation.
    public static func safetyFactor(_ dtype: DType) -> Double {
        dtype == .float64 ? 16 : 32
    }

    /// The rule's rtol for a tensor of `dtype` whose elements each sum `reductionLength` terms.
    public static func ruleRTol(dtype: DType, reductionLength: Int) -> Double {
        safetyFactor(dtype) * unitRoundoff(dtype) * Double(max(1, reductionLength)).squareRoot()
    }

    /// The tolerance for `name` (a trace tensor name) of layer `layer`.
    public func tolerance(for name: String, layer: String?, dtype: DType, reductionLength: Int) -> Tolerance {
        if exact { return .bitExact }
        let untowered = name.hasPrefix("tower") ? String(name.drop(while: { $0 != "." }).dropFirst()) : name
        let chosen = overrides[name] ?? overrides[untowered] ?? layer.flatMap { overrides[$0] }
            ?? rtol ?? TolerancePolicy.ruleRTol(dtype: dtype, reductionLength: reductionLength)
        return Tolerance(rtol: chosen, atol: atol)
    }

    /// One line describing the policy, for reports.
    public func summary(dtype: DType) -> String {
        if exact { return "bit-exact: every element must have the reference's bits" }
        var parts: [String] = []
        if let rtol {
            parts.append("rtol \(OracleFormat.scientific(rtol, digits: 1)) for every tensor")
        } else {
            let c = TolerancePolicy.safetyFactor(dtype)
            parts.append("rtol = \(Int(c)) * 2^-\(dtype == .float64 ? 53 : 24) * sqrt(K), K the reduction length")
        }
        if atol > 0 { parts.append("atol \(OracleFormat.scientific(atol, digits: 1))") }
        if !overrides.isEmpty {
            parts.append("overrides " + overrides.sorted { $0.key < $1.key }
                .map { "\($0.key)=\(OracleFormat.scientific($0.value, digits: 1))" }.joined(separator: ", "))
        }
        return "|ours - ref| <= atol + rtol * (|ref| + RMS(ref)); " + parts.joined(separator: "; ")
    }
}

/// The reduction length `K` of every tensor a trace can hold: how many terms
/// one element of it sums, for the layer alone (``local``) and accumulated
/// over everything computed before it in the step (``endToEnd``).
///
/// Alone, per layer with input `[C, H, W]`, output `[O, OH, OW]` and batch `N`:
///
/// | tensor | convolution | linear | LRN | pooling | element-wise |
/// |---|---|---|---|---|---|
/// | `forward.` | `C/groups * kh * kw` | inputs | `n` | max 1, average `kh * kw` | 1 |
/// | `grad_input.` | `O/groups * kh * kw` | outputs | `2n` | `ceil(kh/sh) * ceil(kw/sw)` | 1 |
/// | `grad.*.weight`, `.bias` | `N * OH * OW` | `N` | | | |
///
/// `loss`: classes + N; `grad.scores`: classes; `updated.*`: 1. End to end,
/// the lengths of every computation the tensor depends on are added (errors
/// of independent roundings add in variance, so their bounds add under the
/// square root): `forward.` of layer `i` adds every earlier layer's forward
/// length; backward tensors add the whole forward pass, the loss and every
/// later layer's backward length; `updated.*` adds 1 to its gradient's.
public struct ReductionLengths: Sendable {
    /// `K` for a tensor computed alone from the reference's own inputs, by tensor name.
    public let local: [String: Int]
    /// `K` for a tensor computed end to end from the trace's input and weights, by tensor name.
    public let endToEnd: [String: Int]

    /// The lengths for every tensor name of `plan` (per-tower names get their whole tensor's).
    public init(plan: TracePlan) {
        let n = plan.batch
        let layers = plan.layers
        var forward: [Int] = [], inputGradient: [Int] = [], parameterGradient: [Int] = []
        for (i, layer) in layers.enumerated() {
            let input = plan.inputShapes[i], output = plan.outputShapes[i]
            switch layer.kind {
            case .convolution(let outputs, let kernel, _, _, let groups, _):
                forward.append(input[0] / groups * kernel.height * kernel.width)
                inputGradient.append(outputs / groups * kernel.height * kernel.width)
                parameterGradient.append(n * output[1] * output[2])
            case .linear(let outputs, _):
                forward.append(input.count)
                inputGradient.append(outputs)
                parameterGradient.append(n)
            case .localResponseNorm(let size, _, _, _, _):
                forward.append(size)
                inputGradient.append(2 * size)
                parameterGradient.append(1)
            case .maxPool(let kernel, let stride, _, _):
                forward.append(1)
                inputGradient.append(Self.overlap(kernel, stride))
                parameterGradient.append(1)
            case .avgPool(let kernel, let stride, _, _, _):
                forward.append(kernel.height * kernel.width)
                inputGradient.append(Self.overlap(kernel, stride))
                parameterGradient.append(1)
            case .relu, .tanh, .dropout:
                forward.append(1)
                inputGradient.append(1)
                parameterGradient.append(1)
            }
        }
        var local: [String: Int] = [:], endToEnd: [String: Int] = [:]
        var accumulated = 0
        var forwardBefore: [Int] = []
        for (i, layer) in layers.enumerated() {
            forwardBefore.append(accumulated)
            accumulated += forward[i]
            local["forward.\(layer.name)"] = forward[i]
            endToEnd["forward.\(layer.name)"] = accumulated
        }
        let classes = plan.outputShapes.last.map { $0.count } ?? 1
        local["loss"] = classes + n
        endToEnd["loss"] = accumulated + classes + n
        local["grad.scores"] = classes
        endToEnd["grad.scores"] = accumulated + classes
        // The gradient arriving at the last layer: our own loss's (network) or the given one (layer).
        var upstream = plan.trace.kind == .network ? accumulated + classes : 0
        for (i, layer) in layers.enumerated().reversed() {
            let alreadyForward = plan.trace.kind == .network ? 0 : forward[i]
            local["grad_input.\(layer.name)"] = inputGradient[i]
            endToEnd["grad_input.\(layer.name)"] = upstream + inputGradient[i] + alreadyForward
            for (name, _) in plan.parameters[i] {
                local["grad.\(name)"] = parameterGradient[i]
                endToEnd["grad.\(name)"] = upstream + parameterGradient[i] + forwardBefore[i]
                local["updated.\(name)"] = 1
                endToEnd["updated.\(name)"] = upstream + parameterGradient[i] + forwardBefore[i] + 1
                local["param.\(name)"] = 1
                endToEnd["param.\(name)"] = 1
            }
            upstream += inputGradient[i] + alreadyForward
        }
        self.local = local
        self.endToEnd = endToEnd
    }

    /// How many windows can share one input cell: `ceil(kh / sh) * ceil(kw / sw)`.
    private static func overlap(_ kernel: Pair, _ stride: Pair) -> Int {
        ((kernel.height + stride.height - 1) / stride.height) * ((kernel.width + stride.width - 1) / stride.width)
    }

    /// `K` alone for a trace tensor name (per-tower names use their whole tensor's).
    public func local(for name: String) -> Int { local[Self.untowered(name)] ?? 1 }

    /// `K` end to end for a trace tensor name.
    public func endToEnd(for name: String) -> Int { endToEnd[Self.untowered(name)] ?? 1 }

    static func untowered(_ name: String) -> String {
        name.hasPrefix("tower") ? String(name.drop(while: { $0 != "." }).dropFirst()) : name
    }
}
