import Foundation

/// Version 2 of the trace format: T training steps in one file (Docs/oracle.md,
/// "Several steps (version 2)").
///
/// Step `t` (1...T) holds its tensors under `step<t>.`: `step<t>.input`,
/// `step<t>.labels`, `step<t>.mask.*`, `step<t>.forward.*`, `step<t>.loss`,
/// `step<t>.grad.*`, `step<t>.updated.*` and `step<t>.velocity.*` (the SGD velocity
/// after the step, in the trace's SGD form, shaped like its parameter). The
/// parameters the first step starts from are `param.*`, once; step `t > 1`
/// starts from `step<t-1>.updated.*`. The check reads each step as a version 1
/// trace (``stepTrace(_:)``), so every version 1 rule applies per step.
extension Trace {
    /// The most steps a version 2 trace may hold (a cap against a corrupt `steps` value).
    public static let maximumSteps = 10_000

    /// The name tensor `name` has in step `t`: `step<t>.<name>` (`step2.forward.conv1`).
    public static func stepName(_ name: String, step t: Int) -> String { "step\(t).\(name)" }

    /// Splits `step<t>.<rest>` into `t` and `rest`; nil for any other name (`param.conv1.weight`).
    public static func splitStep(_ name: String) -> (step: Int, rest: String)? {
        guard name.hasPrefix("step"), let dot = name.firstIndex(of: ".") else { return nil }
        let digits = name[name.index(name.startIndex, offsetBy: 4)..<dot]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let t = Int(digits) else { return nil }
        return (t, String(name[name.index(after: dot)...]))
    }

    /// The learning rate of step `t` (1...T): `learning_rates[t-1]`, else `learning_rate`.
    public func learningRate(step t: Int) -> Double {
        learningRates?[t - 1] ?? sgd?.learningRate ?? 0
    }

    /// Refuses a `step<t>.` tensor outside 1...T in a version 2 trace (its
    /// metadata's rules are ``TraceMetadata``'s).
    /// - Throws: ``TraceError`` naming the tensor.
    func checkStepTensors() throws {
        guard let steps else { return }
        if let stray = tensors.first(where: { Trace.splitStep($0.name).map { !(1...steps).contains($0.step) } ?? false }) {
            throw TraceError(file: source, subject: stray.name,
                             problem: "outside the trace's steps: steps = \(steps), so step tensors are step1. to step\(steps).")
        }
    }

    /// The names of the model's parameters (`conv1.weight`), in layer order.
    var parameterNames: [String] {
        guard let spec, let outputs = try? spec.outputShapes() else { return [] }
        let inputs = [spec.inputShape] + outputs.dropLast()
        return zip(spec.layers, inputs).flatMap { TracePlan.parameterShapes(of: $0.0, input: $0.1).map(\.name) }
    }

    /// Step `t` (1...T) of a version 2 trace as a version 1 trace: the `step<t>.` tensors
    /// without their prefix (except `velocity.*` and per-tower tensors), the parameters
    /// the step starts from as `param.*` (the trace's own for step 1, `step<t-1>.updated.*`
    /// after it) and the SGD settings with the step's learning rate. `names` maps each
    /// tensor of the view to its name in the file, for reports and errors.
    /// - Throws: ``TraceError`` naming `step<t-1>.updated.<param>` when it is missing:
    ///   the next step starts from it.
    public func stepTrace(_ t: Int) throws -> (trace: Trace, names: [String: String]) {
        var tensors: [StoredTensor] = []
        var names: [String: String] = [:]
        func add(_ tensor: StoredTensor, as name: String) {
            var renamed = tensor
            renamed.name = name
            tensors.append(renamed)
            names[name] = tensor.name
        }
        for tensor in self.tensors {
            if t == 1, tensor.name.hasPrefix("param.") { add(tensor, as: tensor.name) }
            guard let (step, rest) = Trace.splitStep(tensor.name), step == t,
                  !rest.hasPrefix("velocity."), !rest.hasPrefix("tower") else { continue }
            add(tensor, as: rest)
        }
        if t > 1 {
            for name in parameterNames {
                let previous = Trace.stepName("updated.\(name)", step: t - 1)
                guard let tensor = self[previous] else {
                    throw TraceError(file: source, subject: previous,
                                     problem: "missing; step \(t) starts from the parameters step \(t - 1) ended with, so a "
                                     + "\(Trace.formatSteps) trace holds updated.* for every step but the last")
                }
                add(tensor, as: "param.\(name)")
            }
        }
        var sgd = self.sgd
        sgd?.learningRate = learningRate(step: t)
        var view = try Trace(network: spec!, dtype: dtype, mode: mode, sgd: sgd, producer: producer, tensors: tensors,
                             source: source)
        view.extraMetadata = extraMetadata
        return (view, names)
    }

    /// The names this version 2 trace holds that no step reads: neither `param.*` nor a
    /// `step<t>.` tensor, per-tower tensors of a step (version 1 only), and velocities of
    /// no parameter. (Unknown names within a step are the step's own plan's to list.)
    var unusedByAnyStep: [String] {
        let known = Set(parameterNames.map { "velocity.\($0)" })
        return names.filter { name in
            if name.hasPrefix("param.") { return false }
            guard let (_, rest) = Trace.splitStep(name) else { return true }
            return rest.hasPrefix("tower") || (rest.hasPrefix("velocity.") && !known.contains(rest))
        }
    }

    /// The reference's velocities after step `t`: `step<t>.velocity.<param>` by parameter
    /// name. Step `t+1` alone starts from them, as it starts from `step<t>.updated.*`.
    /// - Throws: ``TraceError`` for a velocity that is missing (momentum is not 0 and a
    ///   step follows), of another shape than its parameter, of another dtype, or not finite.
    func stepVelocities(after t: Int) throws -> [String: StoredTensor] {
        var result: [String: StoredTensor] = [:]
        for name in parameterNames {
            let key = Trace.stepName("velocity.\(name)", step: t)
            let parameter = self["param.\(name)"]
            guard let tensor = self[key] else {
                if (sgd?.momentum ?? 0) != 0, t < (steps ?? 1) {
                    throw TraceError(file: source, subject: key,
                                     problem: "missing; with momentum \(sgd!.momentum) step \(t + 1) starts from the velocity "
                                     + "step \(t) ended with (in the trace's SGD form, \(sgd!.form.rawValue))")
                }
                continue
            }
            guard tensor.dtype == dtype else {
                throw TraceError(file: source, subject: key, problem: "dtype \(tensor.dtype), but the trace's dtype is \(dtype)")
            }
            if let parameter, tensor.shape != parameter.shape {
                throw TraceError(file: source, subject: key, problem: "shape \(tensor.shape), its parameter's is \(parameter.shape)")
            }
            let values = try tensor.floatTensor(as: Double.self)
            if let bad = values.firstNonFiniteIndex() {
                throw TraceError(file: source, subject: key, problem: "non-finite value \(values.storage[bad]) at flat \(bad); "
                                 + "a trace must hold finite numbers")
            }
            result[name] = tensor
        }
        return result
    }
}
