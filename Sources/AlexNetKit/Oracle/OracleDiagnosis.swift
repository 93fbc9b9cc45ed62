/// Why a tensor differs: the known convention variants tried on the layer
/// with the reference's own input (and upstream gradient), and the layouts and
/// tower arrangements tried on the reference's tensor.
///
/// A variant *matches* when its result is within the tensor's own tolerance
/// of the reference's (the SGD forms, which agree to rounding after one step,
/// must match bit for bit). Every matching variant is reported; when none
/// matches, the error's statistics say whether it looks like TF32 or Float32
/// arithmetic, and otherwise where the bad elements are.
final class OracleDiagnosis<T: TensorElement> {
    let run: OracleRun<T>

    /// What a variant computed on one layer (and tower), run once and shared by the layer's tensors.
    struct Outcome {
        var forward: Tensor<T>?
        var inputGradient: Tensor<T>?
        var parameterGradients: [String: Tensor<T>] = [:]
    }

    /// Outcomes by layer, tower and variant.
    private var outcomes: [String: Outcome] = [:]

    init(run: OracleRun<T>) { self.run = run }

    /// A layer variant: the spec it is built from and how its inputs and output are rearranged.
    struct Variant {
        var code: String
        var message: String
        var spec: LayerSpec
        /// Build the layer as if the spec had this many towers (LRN groups, conv output splits).
        var towers: Int? = nil
        var parameter: (String, Tensor<T>) throws -> Tensor<T> = { $1 }
        var input: (Tensor<T>) throws -> Tensor<T> = { $0 }
        var upstream: (Tensor<T>) throws -> Tensor<T> = { $0 }
        var mask: ((Tensor<T>) throws -> Tensor<T>)? = nil
        var mode: PassMode? = nil
        /// Run the layer in Float32 (for a Float64 trace) and compare with the Float32 rule.
        var inFloat32 = false
    }

    func diagnose(_ entry: OracleEntry) -> [OracleFinding] {
        let role = entry.role
        guard let reference = run.reference[role.name] else { return [] }
        var findings: [OracleFinding] = []
        // A few bad elements far above the agreeing rest are a bug's signature (a race, an
        // index, a tile edge), never reduced precision, which moves almost every element:
        // decided first, so that no precision hypothesis is tried on them.
        let sparse = sparseOutliers(entry)
        switch role.content {
        case .parameter(_, let name):
            if let t = role.tower, let other = try? run.parameters[name]?.towerRows(1 - t, of: run.plan.towers),
               matches(other, reference, role) {
                findings.append(OracleFinding(code: "towers-swapped", layer: role.layer,
                    message: "\(role.name) holds tower \(1 - t)'s rows of \(name): the towers' halves of the weight are swapped"))
            }
        case .forward(let i), .inputGradient(let i), .parameterGradient(let i, _):
            // Precision hypotheses only when most elements moved: reduced precision moves
            // almost every element; a race or an indexing bug moves a few.
            let precisionPlausible = sparse == nil && (entry.alone.map { ($0.count - $0.bitwiseEqual) * 2 >= $0.count } ?? true)
            for variant in variants(layer: i, role: role)
            where (precisionPlausible || !(variant.inFloat32 || variant.code == "tf32")) && evaluate(variant, layer: i, role: role) {
                findings.append(OracleFinding(code: variant.code, layer: role.layer, message: variant.message))
            }
        case .loss, .scoreGradient:
            if let ours = run.alone[role.name], matches(ours.scaled(by: T(run.plan.batch)), reference, role) {
                findings.append(OracleFinding(code: "loss-sum", layer: nil,
                    message: "\(role.name): the reference's loss is summed over the batch, not averaged (ours times N = \(run.plan.batch) matches)"))
            }
        case .updated(let i, let name):
            findings += sgdVariants(role: role, layer: i, parameter: name, reference: reference)
        case .input, .labels, .mask, .outputGradient:
            break
        }
        findings += layoutVariants(role: role, reference: reference)
        if findings.isEmpty, let finding = rounding(entry) { findings.append(finding) }
        if findings.isEmpty, let sparse { findings.append(sparse) }
        if findings.isEmpty, sparse == nil, let finding = statistics(entry) { findings.append(finding) }
        if findings.isEmpty { findings.append(unexplained(entry)) }
        var seen = Set<String>()
        return findings.filter { seen.insert($0.code + $0.message).inserted }
    }

    /// Remarks on passing tensors: which SGD form the `updated.*` tensors match bit for bit.
    func notes(_ entries: [OracleEntry]) -> [String] {
        // After the first step of a replay the forms part by far more than rounding: a mismatch, not a note.
        guard let sgd = run.trace.sgd, run.referenceVelocities.isEmpty else { return [] }
        let other: SGDForm = sgd.form == .paper ? .pytorch : .paper
        var total = 0, oursExact = 0, otherExact = 0
        for entry in entries where entry.role.tower == nil {
            guard case .updated(_, let name) = entry.role.content, let reference = run.reference[entry.name],
                  let value = run.parameters[name],
                  let gradient = run.reference["grad.\(name)"] ?? run.alone["grad.\(name)"],
                  let ours = run.alone[entry.name],
                  let theirs = try? run.sgdStep(sgd, form: other, value: value, gradient: gradient,
                                                velocity: run.referenceVelocities[name]) else { continue }
            total += 1
            if ours.isBitwiseEqual(to: reference) { oursExact += 1 }
            if theirs.isBitwiseEqual(to: reference) { otherExact += 1 }
        }
        guard total > 0, otherExact == total, oursExact < total else { return [] }
        return ["updated.*: the reference's step is bit for bit the \(other) form of SGD, while the metadata names the "
                + "\(sgd.form) form; one step from zero velocity gives the same values up to rounding, so the tolerance "
                + "check cannot tell them apart (run with --exact to see it as a mismatch)"]
    }

    // MARK: Comparing candidates

    func tolerance(_ role: TraceRole) -> Tolerance { run.tolerance(role, alone: true) }

    func matches(_ candidate: Tensor<T>?, _ reference: Tensor<T>, _ role: TraceRole, tolerance: Tolerance? = nil) -> Bool {
        guard let candidate, candidate.shape == reference.shape else { return false }
        return TensorComparison.compare(ours: candidate, reference: reference, tolerance: tolerance ?? self.tolerance(role),
                                        quantiles: false).passed
    }

    // MARK: Layer variants

    func variants(layer i: Int, role: TraceRole) -> [Variant] {
        let spec = run.layers[i]
        let name = spec.name
        let towers = run.plan.towers
        var list: [Variant] = []
        func with(_ kind: LayerSpec.Kind) -> LayerSpec { LayerSpec(name: name, kind) }
        switch spec.kind {
        case .localResponseNorm(let size, let alpha, let beta, let k, let convention):
            let flipped: LRNConvention = convention == .paper ? .caffe : .paper
            let dividing = convention == .paper
            let alphaMessage = dividing
                ? "\(name): the reference matches LRN with alpha divided by n (Caffe's and PyTorch's formula with the paper's alpha, or vice versa): alpha/n = \(alpha / Double(size)) multiplies the window sum where the spec's \(convention) convention uses alpha = \(alpha)"
                : "\(name): the reference matches LRN with alpha not divided by n (the paper's formula with Caffe's alpha, or vice versa): alpha = \(alpha) multiplies the window sum where the spec's \(convention) convention uses alpha/n = \(alpha / Double(size))"
            list.append(Variant(code: "lrn-alpha", message: alphaMessage,
                                spec: with(.localResponseNorm(size: size, alpha: alpha, beta: beta, k: k, convention: flipped))))
            // The other direction: the other convention's alpha put into this convention's formula.
            let n = Double(size)
            let scaledAlpha = dividing ? alpha * n : alpha / n
            let scaledMessage = dividing
                ? "\(name): the reference matches LRN with alpha multiplied by n (Caffe's alpha put into the paper's formula): \(scaledAlpha) multiplies the window sum where the spec's paper convention uses alpha = \(alpha)"
                : "\(name): the reference matches LRN with alpha divided by n twice (the paper's alpha put into Caffe's formula): alpha/n = \(scaledAlpha / n) multiplies the window sum where the spec's \(convention) convention uses alpha/n = \(alpha / n)"
            list.append(Variant(code: "lrn-alpha", message: scaledMessage,
                                spec: with(.localResponseNorm(size: size, alpha: scaledAlpha, beta: beta, k: k, convention: convention))))
            if k == 1 || k == 2 {
                let otherK = k == 1 ? 2.0 : 1.0
                let kMessage = "\(name): the reference matches LRN with k = \(Int(otherK))"
                    + (otherK == 1 ? " (Caffe's default)" : " (the paper's)") + " where the spec says k = \(Int(k))"
                list.append(Variant(code: "lrn-k", message: kMessage,
                                    spec: with(.localResponseNorm(size: size, alpha: alpha, beta: beta, k: otherK, convention: convention))))
                list.append(Variant(code: "lrn-alpha", message: alphaMessage + ", and with k = \(Int(otherK)) where the spec says k = \(Int(k))",
                                    spec: with(.localResponseNorm(size: size, alpha: alpha, beta: beta, k: otherK, convention: flipped))))
            }
            if role.tower == nil {
                let otherTowers = towers == 2 ? 1 : 2
                list.append(Variant(code: "lrn-groups",
                                    message: towers == 2
                                        ? "\(name): the reference normalises across the tower boundary (one window over all channels) where the spec's two towers normalise each half of the channels on its own"
                                        : "\(name): the reference normalises each half of the channels on its own (two towers) where the spec has one tower",
                                    spec: spec, towers: otherTowers))
            }
        case .maxPool(let kernel, let stride, let padding, let rounding):
            list.append(poolRoundingVariant(i, spec: with(.maxPool(kernel: kernel, stride: stride, padding: padding,
                                                                   rounding: rounding == .floor ? .ceil : .floor)), rounding: rounding))
        case .avgPool(let kernel, let stride, let padding, let rounding, let countPadding):
            list.append(poolRoundingVariant(i, spec: with(.avgPool(kernel: kernel, stride: stride, padding: padding,
                                                                   rounding: rounding == .floor ? .ceil : .floor,
                                                                   countIncludePadding: countPadding)), rounding: rounding))
            list.append(Variant(code: "avgpool-divisor",
                                message: countPadding
                                    ? "\(name): the reference divides each average by the cells inside the image only (padding not counted, cuda-convnet) where the spec counts the padding"
                                    : "\(name): the reference divides each average by the whole window including padding (PyTorch's and Caffe's default) where the spec counts only the cells inside the image",
                                spec: with(.avgPool(kernel: kernel, stride: stride, padding: padding, rounding: rounding,
                                                    countIncludePadding: !countPadding))))
        case .dropout(let rate, let scaling):
            let other: DropoutScaling = scaling == .paper ? .inverted : .paper
            let factor = 1 / (1 - rate)
            let message: String
            switch (scaling, run.trace.mode) {
            case (.paper, .training):
                message = "\(name): the reference scales the kept units by 1/(1-p) = \(factor) in training (inverted dropout) where the spec says the paper's scaling (the mask alone in training, times 1-p at test time)"
            case (.inverted, .training):
                message = "\(name): the reference applies the mask without scaling by 1/(1-p) = \(factor) in training (the paper's dropout) where the spec says inverted dropout"
            case (.paper, .inference):
                message = "\(name): the reference does not scale by 1-p = \(1 - rate) at test time (inverted dropout) where the spec says the paper's scaling"
            case (.inverted, .inference):
                message = "\(name): the reference scales by 1-p = \(1 - rate) at test time (the paper's dropout) where the spec says inverted dropout"
            }
            list.append(Variant(code: "dropout-scaling", message: message, spec: with(.dropout(rate: rate, scaling: other))))
            if run.trace.mode == .training {
                for candidate in [scaling, other] {
                    list.append(Variant(code: "dropout-mask-inverted",
                                        message: "\(name): the reference keeps the units its mask marks 0 and drops those marked 1 (the mask means 'dropped')"
                                            + (candidate == scaling ? "" : ", with \(candidate) scaling"),
                                        spec: with(.dropout(rate: rate, scaling: candidate)),
                                        mask: { mask in try mask.scaled(by: -1).adding(Tensor(shape: mask.shape, repeating: 1)) }))
                }
                list.append(Variant(code: "dropout-missing",
                                    message: "\(name): the reference did not apply dropout (identity) although the trace is in training mode",
                                    spec: with(.dropout(rate: rate, scaling: .inverted)), mode: .inference))
            }
        case .convolution:
            list.append(Variant(code: "kernel-flipped",
                                message: "\(name): the reference convolves with the kernel rotated by 180 degrees (a true convolution); PyTorch, Caffe and cuda-convnet cross-correlate",
                                spec: spec, parameter: { key, value in key.hasSuffix(".weight") ? try value.flippingKernel() : value }))
            list += towerVariants(i, role: role, crossing: run.crossesBefore(i))
            list += precisionVariants(spec)
        case .linear:
            if run.plan.inputShapes[i].rank == 3 {
                list.append(Variant(code: "flatten-nhwc",
                                    message: "\(name): the reference flattens its [C, H, W] input channel-last (H, W, C order, as an NHWC framework does) where the spec reads it C, H, W (PyTorch's flatten(1))",
                                    spec: spec, input: { try $0.flatteningChannelLast() },
                                    upstream: { $0 }))
            }
            list += towerVariants(i, role: role, crossing: run.crossesBefore(i))
            list += precisionVariants(spec)
        case .relu, .tanh:
            break
        }
        if T.self == Double.self, list.allSatisfy({ !$0.inFloat32 }) {
            list.append(Variant(code: "float32",
                                message: "\(name): the reference matches this layer computed in Float32: it probably runs in single precision",
                                spec: spec, inFloat32: true))
        }
        return list
    }

    func poolRoundingVariant(_ i: Int, spec: LayerSpec, rounding: PoolRounding) -> Variant {
        let input = run.aloneInputs[i].map { Shape(Array($0.shape.dims.dropFirst())) } ?? run.plan.inputShapes[i]
        let ours = (try? run.layers[i].outputShape(for: input)).map { "\($0[1])x\($0[2])" } ?? "?"
        let theirs = (try? spec.outputShape(for: input)).map { "\($0[1])x\($0[2])" } ?? "?"
        let message = rounding == .floor
            ? "\(spec.name): the reference rounds the pooled size up (ceil: \(theirs), as Caffe and cuda-convnet do) where the spec says floor (\(ours), PyTorch's default)"
            : "\(spec.name): the reference rounds the pooled size down (floor: \(theirs), PyTorch's default) where the spec says ceil (\(ours))"
        return Variant(code: "pool-rounding", message: message, spec: spec)
    }

    /// A crossing or grouped layer of a two-tower spec: the towers' halves of its weight, or of its input, swapped.
    func towerVariants(_ i: Int, role: TraceRole, crossing: Bool) -> [Variant] {
        guard run.plan.towers == 2, role.tower == nil else { return [] }
        let spec = run.layers[i]
        let name = spec.name
        var list: [Variant] = []
        if let weight = run.plan.parameters[i].first, weight.shape[0] % 2 == 0 {
            let half = weight.shape[0] / 2
            list.append(Variant(code: "weight-halves-swapped",
                                message: "\(name): the reference matches \(name) computed with the towers' halves of its weight swapped (tower 0 used rows \(half)..<\(2 * half) of \(weight.name), tower 1 rows 0..<\(half))",
                                spec: spec, parameter: { key, value in key == weight.name ? try value.swappingRowHalves() : value }))
        }
        if crossing, run.plan.inputShapes[i][0] % 2 == 0 {
            list.append(Variant(code: "input-halves-swapped",
                                message: "\(name): the reference matches \(name) fed its input with the towers' halves swapped (the exchange before this crossing layer joined the halves in the wrong order)",
                                spec: spec, input: { try $0.swappingHalvesOfDimension1() }))
        }
        return list
    }

    /// TF32 inputs for a Float32 trace's matrix products.
    func precisionVariants(_ spec: LayerSpec) -> [Variant] {
        guard T.self == Float.self else { return [] }
        return [false, true].map { truncating in
            Variant(code: "tf32",
                    message: "\(spec.name): the reference matches \(spec.name) computed with TF32 inputs (Float32 rounded to a 10-bit mantissa"
                        + (truncating ? ", truncated" : "") + ", as tensor cores multiply when TF32 is allowed); disable TF32 (PyTorch: torch.backends.cuda.matmul.allow_tf32 = False, torch.backends.cudnn.allow_tf32 = False) to compare in full Float32",
                    spec: spec,
                    parameter: { key, value in key.hasSuffix(".weight") ? value.roundedToTF32(truncating: truncating) : value },
                    input: { $0.roundedToTF32(truncating: truncating) },
                    upstream: { $0.roundedToTF32(truncating: truncating) })
        }
    }

    /// Runs a variant on the reference's own input and compares the tensor of `role`.
    func evaluate(_ variant: Variant, layer i: Int, role: TraceRole) -> Bool {
        guard let reference = run.reference[role.name] else { return false }
        let x = role.tower.map { run.towerInputs[$0][i] } ?? run.aloneInputs[i]
        let g = role.tower.map { run.towerUpstream[$0][i] } ?? run.aloneUpstream[i]
        guard let x else { return false }
        if case .inputGradient = role.content, role.tower != nil, crossesTowers(i) { return false }
        if variant.inFloat32 {
            guard T.self == Double.self else { return false }
            guard let candidate = try? evaluateInFloat(variant, layer: i, role: role, x: x, g: g) else { return false }
            // Only errors of Float32 size, far above Float64 rounding, can come from Float32 arithmetic.
            guard let ours = run.alone[role.name], ours.shape == reference.shape,
                  TensorComparison.compare(ours: ours, reference: reference, tolerance: tolerance(role), quantiles: false)
                      .relativeRMSError >= 0x1p-30
            else { return false }
            let rule = TolerancePolicy.ruleRTol(dtype: .float32, reductionLength: run.aloneLength(for: role.name))
            return matches(candidate, reference, role, tolerance: Tolerance(rtol: rule, atol: run.options.tolerances.atol))
        }
        let key = "\(i)|\(role.tower ?? -1)|\(variant.code)|\(variant.message)"
        let outcome = outcomes[key] ?? outcome(of: variant, layer: i, tower: role.tower, x: x, g: g)
        outcomes[key] = outcome
        switch role.content {
        case .forward: return matches(outcome.forward, reference, role)
        case .inputGradient: return matches(outcome.inputGradient, reference, role)
        case .parameterGradient(_, let name): return matches(outcome.parameterGradients[name], reference, role)
        default: return false
        }
    }

    /// Runs `variant` of layer `i` (tower `tower`) forward on `x` and, given `g`, backward.
    func outcome(of variant: Variant, layer i: Int, tower: Int?, x: Tensor<T>, g: Tensor<T>?) -> Outcome {
        var outcome = Outcome()
        do {
            let layer = try Network<T>.makeLayer(variant.spec, index: i, inputShape: Shape(Array(x.shape.dims.dropFirst())),
                                                 towers: variant.towers ?? run.plan.towers, tower: tower, seed: 0)
            try run.load(layer) { name in
                let value = try tower.map { try self.run.towerParameter(name, tower: $0) } ?? self.run.parameters[name]
                return try value.map { try variant.parameter(name, $0) }
            }
            if let dropout = layer as? Dropout<T>, let mask = run.reference["mask.\(run.layers[i].name)"] {
                let mine = try tower.map { try mask.towerChannels($0, of: run.plan.towers) } ?? mask
                try dropout.injectMask(try variant.mask?(mine) ?? mine)
            }
            let context = PassContext(pool: run.pool, mode: variant.mode ?? run.trace.mode, step: 0)
            outcome.forward = try layer.forward(try variant.input(x), context: context)
            guard let g else { return outcome }
            var gi = try layer.backward(try variant.upstream(g), context: context)
            if variant.code == "input-halves-swapped" { gi = try gi.swappingHalvesOfDimension1() }
            if variant.code == "flatten-nhwc" { gi = try unflattenChannelLast(gi) }
            outcome.inputGradient = gi
            for parameter in layer.parameters {
                outcome.parameterGradients["\(run.layers[i].name).\(parameter.name)"] = parameter.gradient
            }
        } catch {
            // A variant the layer cannot take (a size it cannot pool, say) explains nothing.
        }
        return outcome
    }

    /// The inverse of ``Tensor/flatteningChannelLast()`` for the input gradient: back to C, H, W order.
    func unflattenChannelLast(_ t: Tensor<T>) throws -> Tensor<T> {
        guard t.shape.rank == 4 else { return t }
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out = [T](repeating: 0, count: t.count)
        for i in 0..<n {
            for k in 0..<c {
                for y in 0..<h {
                    for x in 0..<w { out[((i * c + k) * h + y) * w + x] = t.storage[((i * h + y) * w + x) * c + k] }
                }
            }
        }
        return try Tensor(shape: t.shape, values: out)
    }

    func crossesTowers(_ i: Int) -> Bool { run.crossesBefore(i) }

    /// The layer run in Float32 on the rounded reference tensors, widened back.
    func evaluateInFloat(_ variant: Variant, layer i: Int, role: TraceRole, x: Tensor<T>, g: Tensor<T>?) throws -> Tensor<T>? {
        let layer = try Network<Float>.makeLayer(variant.spec, index: i, inputShape: Shape(Array(x.shape.dims.dropFirst())),
                                                 towers: run.plan.towers, tower: role.tower, seed: 0)
        for parameter in layer.parameters {
            let name = "\(run.layers[i].name).\(parameter.name)"
            guard let value = try role.tower.map({ try run.towerParameter(name, tower: $0) }) ?? run.parameters[name] else { return nil }
            parameter.value = Tensor<Float>(converting: value)
        }
        if let dropout = layer as? Dropout<Float>, let mask = run.reference["mask.\(run.layers[i].name)"] {
            let mine = try role.tower.map { try mask.towerChannels($0, of: run.plan.towers) } ?? mask
            try dropout.injectMask(Tensor<Float>(converting: mine))
        }
        let context = PassContext(pool: run.pool, mode: run.trace.mode, step: 0)
        let y = try layer.forward(Tensor<Float>(converting: x), context: context)
        switch role.content {
        case .forward:
            return Tensor<T>(converting: y)
        case .inputGradient:
            guard let g else { return nil }
            return Tensor<T>(converting: try layer.backward(Tensor<Float>(converting: g), context: context))
        case .parameterGradient(_, let name):
            guard let g else { return nil }
            _ = try layer.backward(Tensor<Float>(converting: g), context: context)
            return layer.parameters.first { "\(run.layers[i].name).\($0.name)" == name }.map { Tensor<T>(converting: $0.gradient) }
        default:
            return nil
        }
    }

    // MARK: SGD

    func sgdVariants(role: TraceRole, layer i: Int, parameter name: String, reference: Tensor<T>) -> [OracleFinding] {
        guard let sgd = run.trace.sgd else { return [] }
        let t = role.tower
        let value = (try? t.map { try run.towerParameter(name, tower: $0) } ?? run.parameters[name]) ?? nil
        let gradient = t.map { tower in
            run.reference["tower\(tower).grad.\(name)"] ?? (try? run.reference["grad.\(name)"]?.towerRows(tower, of: run.plan.towers))
                ?? run.alone["tower\(tower).grad.\(name)"]
        } ?? (run.reference["grad.\(name)"] ?? run.alone["grad.\(name)"])
        guard let w = value, let g = gradient else { return [] }
        var findings: [OracleFinding] = []
        func add(_ code: String, _ message: String) {
            findings.append(OracleFinding(code: code, layer: role.layer, message: message))
        }
        let other: SGDForm = sgd.form == .paper ? .pytorch : .paper
        // A replayed step after the first starts from the reference's own velocity (``OracleRun/referenceVelocities``).
        let velocity = t == nil ? run.referenceVelocities[name] : nil
        if let velocity {
            // Several steps: the velocity the reference carried is the other form's, so the forms now part by
            // far more than rounding; a match within the tolerance is the evidence.
            if let theirs = try? run.sgdStep(sgd, form: other, value: w, gradient: g, velocity: velocity),
               theirs.isBitwiseEqual(to: reference) || matches(theirs, reference, role) {
                add("sgd-form", "\(role.name): the reference computed the \(other) form of SGD"
                    + (other == .pytorch ? " (v = m v + g + wd w, w - lr v)" : " (v = m v - wd lr w - lr g, w + v)")
                    + (theirs.isBitwiseEqual(to: reference) ? " bit for bit" : " within tolerance")
                    + " from the velocity the step before left, not the \(sgd.form) form the metadata names; the two forms "
                    + "agree on a first step from zero velocity and part once a velocity is carried (the velocity of one is "
                    + "not the other's), end to end once the learning rate changes")
            }
            return findings
        }
        if let theirs = try? run.sgdStep(sgd, form: other, value: w, gradient: g), theirs.isBitwiseEqual(to: reference) {
            add("sgd-form", "\(role.name): the reference computed the \(other) form of SGD bit for bit"
                + (other == .pytorch ? " (v = g + wd w, w - lr v)" : " (v = -wd lr w - lr g, w + v)")
                + ", not the \(sgd.form) form the metadata names; after one step from zero velocity the two agree up to rounding (they differ only when the learning rate changes)")
        }
        let (lr, mu, wd) = (T(sgd.learningRate), T(sgd.momentum), T(sgd.weightDecay))
        func elementwise(_ body: (T, T) -> T) -> Tensor<T> {
            var out = w
            out.withUnsafeMutableBufferPointer { o in
                for k in o.indices { o[k] = body(w.storage[k], g.storage[k]) }
            }
            return out
        }
        if matches(elementwise { w, g in w - lr * g - wd * w }, reference, role) && sgd.weightDecay != 0 {
            add("sgd-decay-not-scaled", "\(role.name): the reference's weight decay is not multiplied by the learning rate (w - lr g - wd w, decoupled decay) where both SGD forms decay by lr wd w")
        }
        if sgd.weightDecay != 0, matches(elementwise { w, g in w - lr * g }, reference, role) {
            add("sgd-no-decay", "\(role.name): the reference applied no weight decay (w - lr g) although the metadata says weight_decay = \(sgd.weightDecay)")
        }
        if sgd.momentum != 0, matches(elementwise { w, g in w - lr * ((g + wd * w) * (1 + mu)) }, reference, role) {
            add("sgd-nesterov", "\(role.name): the reference took a Nesterov step (w - lr (1 + momentum) (g + wd w) from zero velocity) where the metadata names plain momentum")
        }
        if t == nil, run.plan.towers == 2, w.shape[0] % 2 == 0,
           let swapped = try? run.sgdStep(sgd, form: sgd.form, value: w.swappingRowHalves(), gradient: g),
           matches(swapped, reference, role) {
            add("sgd-halves-swapped", "\(role.name): the reference stepped \(name) with its towers' halves of the weight swapped (each tower updated the other tower's rows)")
        }
        return findings
    }

    // MARK: Layouts and towers

    /// NHWC instead of NCHW, and the towers' halves swapped, tried on our own tensor.
    func layoutVariants(role: TraceRole, reference: Tensor<T>) -> [OracleFinding] {
        guard let ours = run.alone[role.name] ?? run.endToEnd[role.name] else { return [] }
        var findings: [OracleFinding] = []
        let isActivation: Bool
        switch role.content {
        case .forward, .inputGradient: isActivation = true
        case .parameterGradient, .updated: isActivation = false
        default: return []
        }
        if isActivation, ours.shape.rank == 4 {
            if reference.shape != ours.shape, let permuted = try? reference.permutingNHWCToNCHW(), permuted.shape == ours.shape,
               matches(ours, permuted, role) {
                findings.append(OracleFinding(code: "nhwc", layer: role.layer,
                    message: "\(role.name): the reference tensor is in NHWC layout \(reference.shape); transposed to NCHW \(ours.shape) it matches"))
            } else if reference.shape == ours.shape, reference.shape[1] > 1, let read = try? reference.reinterpretingNHWCData(),
                      matches(ours, read, role) {
                findings.append(OracleFinding(code: "nhwc", layer: role.layer,
                    message: "\(role.name): the reference holds NHWC data under the NCHW shape \(reference.shape) (reshaped, not transposed); read as NHWC it matches"))
            }
        }
        if run.plan.towers == 2 {
            if let t = role.tower {
                let otherName = "tower\(1 - t)." + ReductionLengths.untowered(role.name)
                if let other = run.alone[otherName] ?? run.endToEnd[otherName], matches(other, reference, role) {
                    findings.append(OracleFinding(code: "towers-swapped", layer: role.layer,
                        message: "\(role.name) holds what tower \(1 - t) computes: the towers are swapped"))
                }
            } else if let swapped = try? (isActivation ? ours.swappingHalvesOfDimension1() : ours.swappingRowHalves()),
                      matches(swapped, reference, role) {
                findings.append(OracleFinding(code: "towers-swapped", layer: role.layer,
                    message: "\(role.name): the reference's two halves along dimension \(isActivation ? 1 : 0) are swapped (tower 0 holds what tower 1 should, and the reverse)"))
            }
        }
        return findings
    }

    // MARK: Statistics

    /// In bit-exact mode: a tensor that the default rule would accept differs only by rounding.
    func rounding(_ entry: OracleEntry) -> OracleFinding? {
        guard let c = entry.alone, c.tolerance.exact, !c.shapesDiffer, let ours = run.alone[entry.name],
              let reference = run.reference[entry.name] else { return nil }
        let rule = Tolerance(rtol: TolerancePolicy.ruleRTol(dtype: run.trace.dtype, reductionLength: run.aloneLength(for: entry.name)))
        guard TensorComparison.compare(ours: ours, reference: reference, tolerance: rule, quantiles: false).passed else { return nil }
        return OracleFinding(code: "rounding", layer: entry.role.layer,
            message: "\(entry.name): \(c.outOfTolerance) of \(c.count) elements differ in their last bits only (at most "
                + "\(OracleReport.ulps(c.maxULPs)) ULPs, within the default tolerance rule): rounding, e.g. another summation order")
    }

    /// Sparse outliers: at most 1% of the elements (and at least one) beyond
    /// tolerance, each with a relative error at least 10 times the 99th percentile
    /// of the agreeing elements' (any size when those are exact). Reduced precision
    /// spreads a continuous distribution over every element: when a few of its
    /// elements cross the tolerance they are its tail, within a small factor of its
    /// 99th percentile; a fault stands an order of magnitude apart. Reports how
    /// many, the first positions, and how they cluster (one image, which channels
    /// or rows, where in the image plane).
    func sparseOutliers(_ entry: OracleEntry) -> OracleFinding? {
        guard let c = entry.alone ?? entry.endToEnd, !c.shapesDiffer, c.outOfTolerance > 0, c.count >= 2,
              c.outOfTolerance <= max(1, c.count / 100),
              let reference = run.reference[entry.name],
              let ours = entry.alone != nil ? run.alone[entry.name] : run.endToEnd[entry.name], ours.shape == reference.shape
        else { return nil }
        var bad: [Int] = []
        var bulk: [Double] = []
        bulk.reserveCapacity(c.count)
        var smallestBad = Double.infinity
        for k in 0..<reference.count {
            let ref = Double(reference.storage[k])
            let error = abs(Double(ours.storage[k]) - ref)
            let relative = error == 0 ? 0 : (error / (abs(ref) + c.scale)).isNaN ? .infinity : error / (abs(ref) + c.scale)
            let bound = c.tolerance.atol + c.tolerance.rtol * (abs(ref) + c.scale)
            if c.tolerance.exact ? ours.storage[k].rawBits != reference.storage[k].rawBits : !(error <= bound) {
                bad.append(k)
                smallestBad = min(smallestBad, relative)
            } else {
                bulk.append(relative)
            }
        }
        guard !bad.isEmpty else { return nil }
        let bulkP99 = TensorComparison.nearestRank(0.99, of: &bulk)
        // In bit-exact mode every different bit pattern is bad, so there is no bulk to stand apart from.
        guard c.tolerance.exact || smallestBad >= 10 * bulkP99 else { return nil }
        let shape = reference.shape
        let positions = bad.prefix(5).map { "\(TracePlan.position(of: $0, in: shape))" }.joined(separator: ", ")
            + (bad.count > 5 ? ", ..." : "")
        let moved = c.count - c.bitwiseEqual
        var message = "\(entry.name): sparse outliers: \(bad.count) of \(c.count) elements beyond tolerance "
            + "(\(OracleFormat.scientific(Double(bad.count) / Double(c.count))) of them; \(moved) differ at all), at \(positions); "
        if !c.tolerance.exact {
            message += "their relative errors are at least "
                + (bulkP99 > 0 ? "\(OracleFormat.scientific(smallestBad / bulkP99, digits: 1)) times the 99th percentile of the rest's "
                    + "(\(OracleFormat.scientific(bulkP99)))" : "\(OracleFormat.scientific(smallestBad)) where the rest are exact")
                + "; "
        }
        message += "the rest agree, which reduced precision (Float32, TF32, half) never does: it moves almost every element. "
            + "Look for a race, an indexing or a boundary (tile edge) bug"
        var isActivation = true
        switch entry.role.content {
        case .parameter, .parameterGradient, .updated: isActivation = false
        default: break
        }
        if isActivation && shape.rank >= 2 {
            let perImage = shape.count / max(1, shape[0])
            let images = Set(bad.map { $0 / perImage })
            message += images.count == 1 ? "; all in image \(images.first!)" : "; in \(images.count) of \(shape[0]) images"
        }
        if let clusters = badChannels(entry, c) { message += "; " + clusters }
        if isActivation, shape.rank == 4, let plane = spatialCluster(bad, shape: shape) { message += "; " + plane }
        return OracleFinding(code: "sparse-outliers", layer: entry.role.layer, message: message)
    }

    /// Where in the image plane of an `[N, C, H, W]` tensor the elements `bad` lie: on one
    /// edge (a tile or padding boundary bug), or the rows and columns they span; nil for
    /// one element, whose position says it all.
    func spatialCluster(_ bad: [Int], shape: Shape) -> String? {
        guard bad.count > 1 else { return nil }
        let (h, w) = (shape[2], shape[3])
        let rows = bad.map { ($0 / w) % h }, columns = bad.map { $0 % w }
        var edges: [String] = []
        if rows.allSatisfy({ $0 == 0 }) { edges.append("the first row") }
        if h > 1, rows.allSatisfy({ $0 == h - 1 }) { edges.append("the last row (\(h - 1))") }
        if columns.allSatisfy({ $0 == 0 }) { edges.append("the first column") }
        if w > 1, columns.allSatisfy({ $0 == w - 1 }) { edges.append("the last column (\(w - 1))") }
        func span(_ values: [Int]) -> String {
            let (low, high) = (values.min()!, values.max()!)
            return low == high ? "\(low)" : "\(low)..\(high)"
        }
        let where_ = "rows \(span(rows)), columns \(span(columns)) of \(h)x\(w)"
        return edges.isEmpty ? "in the image plane within " + where_
            : "all on " + edges.joined(separator: " and ") + " of the \(h)x\(w) plane (\(where_)): a boundary"
    }

    /// TF32-like (Float32 trace) or Float32-like (Float64 trace) errors: small, unbiased, at the precision's level,
    /// and only when most elements differ (reduced precision moves almost every element).
    func statistics(_ entry: OracleEntry) -> OracleFinding? {
        guard let c = entry.alone, !c.shapesDiffer, c.rmsError > 0, let layer = entry.role.layer,
              (c.count - c.bitwiseEqual) * 2 >= c.count,
              let index = run.layers.firstIndex(where: { $0.name == layer }) else { return nil }
        let relative = c.relativeRMSError
        let unbiased = abs(c.meanError) <= 0.1 * c.rmsError
        let numbers = "relative RMS error \(OracleFormat.scientific(relative)), mean error \(OracleFormat.scientific(c.meanError)) (unbiased), cosine \(OracleReport.cosine(c.cosine))"
        var isUpdate = false
        if case .updated = entry.role.content { isUpdate = true }
        switch run.layers[index].kind {
        case .convolution, .linear:
            // An update is element-wise: no matrix product, so no TF32.
            if !isUpdate, T.self == Float.self, unbiased, relative >= 0x1p-14, relative <= 0x1p-6 {
                return OracleFinding(code: "tf32", layer: layer,
                    message: "\(entry.name): the errors look like TF32 matrix products (10-bit mantissa inputs): \(numbers); our result with TF32-rounded inputs does not reproduce it exactly, but the size and the absence of bias fit; disable TF32 to compare in full Float32")
            }
        default:
            break
        }
        if T.self == Double.self, unbiased, relative >= 0x1p-29, relative <= 0x1p-16 {
            return OracleFinding(code: "float32", layer: layer,
                message: "\(entry.name): the errors are of Float32 size: \(numbers); the reference probably computes this layer in single precision")
        }
        return nil
    }

    /// No variant explains it: the numbers, and which channels hold the bad elements.
    func unexplained(_ entry: OracleEntry) -> OracleFinding {
        var message = "\(entry.name): no known convention variant explains it"
        if let c = entry.alone ?? entry.endToEnd {
            if c.shapesDiffer {
                message += "; shape \(c.referenceShape) in the reference, \(c.oursShape) here"
            } else {
                message += ": \(c.outOfTolerance) of \(c.count) elements beyond tolerance, relative RMS error "
                    + OracleFormat.scientific(c.relativeRMSError)
                if let bad = c.firstBad {
                    message += ", first at \(bad.position) (ours \(bad.ours), reference \(bad.reference))"
                }
                if let channels = badChannels(entry, c) { message += "; " + channels }
            }
        }
        if entry.alone == nil { message += " (compared end to end only: \(entry.aloneUnavailable ?? "not computed alone"))" }
        return OracleFinding(code: "unexplained", layer: entry.role.layer, message: message)
    }

    /// `bad elements only at indices 46..49 of dimension 1` when they cluster along
    /// the channel dimension of an activation (dimension 1), or along the output
    /// rows of a parameter, its gradient or its update (dimension 0).
    func badChannels(_ entry: OracleEntry, _ c: TensorComparison) -> String? {
        guard c.referenceShape.rank >= 2, let reference = run.reference[entry.name],
              let ours = entry.alone != nil ? run.alone[entry.name] : run.endToEnd[entry.name], ours.shape == reference.shape else { return nil }
        var axis = 1
        switch entry.role.content {
        case .parameter, .parameterGradient, .updated: axis = 0
        default: break
        }
        let channels = reference.shape[axis]
        let inner = reference.shape.dims.dropFirst(axis + 1).reduce(1, *)
        var bad = [Bool](repeating: false, count: channels)
        for k in 0..<reference.count {
            let error = abs(Double(ours.storage[k]) - Double(reference.storage[k]))
            let bound = c.tolerance.atol + c.tolerance.rtol * (abs(Double(reference.storage[k])) + c.scale)
            if c.tolerance.exact ? ours.storage[k].rawBits != reference.storage[k].rawBits : !(error <= bound) {
                bad[(k / inner) % channels] = true
            }
        }
        let count = bad.filter { $0 }.count
        guard count > 0, count < channels else { return count == channels ? "bad elements in every index of dimension \(axis)" : nil }
        var ranges: [String] = []
        var k = 0
        while k < channels {
            guard bad[k] else { k += 1; continue }
            let start = k
            while k < channels && bad[k] { k += 1 }
            ranges.append(start == k - 1 ? "\(start)" : "\(start)..\(k - 1)")
        }
        return "bad elements only at indices " + ranges.prefix(8).joined(separator: ", ") + (ranges.count > 8 ? ", ..." : "")
            + " of dimension \(axis) (of \(channels))"
    }
}
