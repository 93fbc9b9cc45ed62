import Foundation

/// What one replayed step hands the next: our own parameters and SGD velocities
/// (in the trace's SGD form), by parameter name (`conv1.weight`), each shaped like its parameter.
struct ReplayState<T: TensorElement> {
    /// Each parameter's value (`conv1.weight`: `[O, C/groups, kh, kw]`; `fc3.bias`: `[O]`).
    var parameters: [String: Tensor<T>]
    /// Each parameter's SGD velocity, shaped like it; a missing one is zero.
    var velocities: [String: Tensor<T>]
}

/// The check of a version 2 trace: its T steps replayed one after the other
/// (Docs/oracle.md, "Several steps (version 2)").
///
/// Each step is checked as a version 1 trace (``Trace/stepTrace(_:)``), with two
/// differences. End to end, the step starts from *our own* parameters and
/// velocities as our previous step left them (the first from `param.*` and zero),
/// so an optimiser difference accumulates as it would in training. Alone, the
/// step's layers run on the reference's own tensors, as in version 1, and its SGD
/// step starts from the reference's parameters and velocity of the step before
/// (`step<t-1>.updated.*`, `step<t-1>.velocity.*`), so that a wrong step is reported
/// at that step, not at every step after it. The reports of the steps are joined
/// into one, in (step, execution order), every entry named as in the file
/// (`step3.forward.conv2`) and carrying its ``OracleEntry/step``.
enum OracleReplay {
    /// Checks every step of a version 2 trace.
    /// - Throws: ``TraceError`` naming the `step<t>.` tensor when any step is unusable:
    ///   every step is validated, and every required tensor of every step looked for,
    ///   before the first is run.
    static func check(_ trace: Trace, options: OracleOptions) throws -> OracleReport {
        let steps = try validate(trace, options: options)
        switch trace.dtype {
        case .float64: return try run(Double.self, trace, steps, options: options)
        default: return try run(Float.self, trace, steps, options: options)
        }
    }

    /// One step, validated: its version 1 view, the view's plan, and the file name of every view tensor.
    struct Step {
        var t: Int
        var plan: TracePlan
        var names: [String: String]
        var velocities: [String: StoredTensor]
    }

    /// Builds and validates every step's view and plan, then requires what `options.compare` requires of each.
    static func validate(_ trace: Trace, options: OracleOptions) throws -> [Step] {
        var steps: [Step] = []
        for t in 1...(trace.steps ?? 1) {
            let (view, names) = try trace.stepTrace(t)
            let plan: TracePlan
            do {
                plan = try TracePlan(trace: view)
            } catch let error as TraceError {
                throw relabel(error, step: t, names: names)
            }
            // The velocity step t+1 starts from (checked here, so that a missing one is an error before any step runs).
            steps.append(Step(t: t, plan: plan, names: names, velocities: try trace.stepVelocities(after: t)))
        }
        var missing: [String] = []
        var misspelt: [String] = []
        for step in steps {
            let names = try step.plan.requiredTensors(options.compare).filter { step.plan.trace[$0] == nil }
            missing += names.map { Trace.stepName($0, step: step.t) }
            misspelt += step.plan.likelyMisspellings(of: names).map {
                "\(step.names[$0.ignored] ?? $0.ignored) (\(Trace.stepName($0.intended, step: step.t))?)"
            }
        }
        if !missing.isEmpty {
            let plan = steps[0].plan
            throw TraceError(file: trace.source,
                             problem: "missing \(missing.count) required tensor(s): " + OracleReport.abbreviated(missing, limit: 20)
                             + "; \(plan.requirementDescription(options.compare)) requires "
                             + plan.expandedGroups(options.compare).map(\.rawValue).joined(separator: ", ")
                             + " in each of the \(steps.count) steps"
                             + (misspelt.isEmpty ? "" : "; ignored names that look misspelt: " + misspelt.joined(separator: ", "))
                             + "; to check only part of each step, narrow what is required with --compare "
                             + "(--compare present compares whatever the trace holds)")
        }
        for step in steps {
            do {
                try step.plan.requireTensors(options.compare)
            } catch let error as TraceError {
                throw relabel(error, step: step.t, names: step.names)
            }
        }
        return steps
    }

    /// A step view's error as the file names it: the tensor's `step<t>.` name, or the step said in the problem.
    static func relabel(_ error: TraceError, step t: Int, names: [String: String]) -> TraceError {
        var error = error
        if let subject = error.subject, let name = names[subject] {
            error.subject = name
        } else if let subject = error.subject, !subject.hasPrefix("metadata"), !subject.hasPrefix("compare group") {
            error.subject = Trace.stepName(subject, step: t)
        } else {
            error.problem = "step \(t): " + error.problem
        }
        return error
    }

    static func run<T: TensorElement>(_: T.Type, _ trace: Trace, _ steps: [Step], options: OracleOptions) throws -> OracleReport {
        var carried: ReplayState<T>?
        var previous: Step?
        var reports: [OracleReport] = []
        for step in steps {
            let run = try OracleRun<T>(plan: step.plan, options: stepOptions(options, step: step.t))
            run.carried = carried
            if let previous {
                run.referenceVelocities = try previous.velocities.mapValues { try $0.floatTensor(as: T.self) }
            }
            var report = try run.run()
            report.entries = report.entries.map { entry in
                var entry = entry
                let name = step.names[entry.role.name] ?? Trace.stepName(entry.role.name, step: step.t)
                // A finding names the tensor (`updated.conv1.weight: ...`) or the layer: as the file has it, with the step.
                entry.findings = entry.findings.map { finding in
                    var finding = finding
                    finding.message = finding.message.hasPrefix(entry.role.name + ":")
                        ? name + finding.message.dropFirst(entry.role.name.count) : "step \(step.t), " + finding.message
                    return finding
                }
                entry.role.name = name
                entry.step = step.t
                return entry
            }
            reports.append(report)
            // Ours carried on; where our step could not be taken (nothing after it needs it), the reference's.
            carried = run.carriedAfter ?? ReplayState(parameters: run.reference.filter { $0.key.hasPrefix("updated.") }
                .reduce(into: [:]) { $0[String($1.key.dropFirst("updated.".count))] = $1.value }, velocities: [:])
            previous = step
        }
        return merge(reports, steps: steps, trace: trace)
    }

    /// The options of step `t`: `--tolerance step<t>.<name>=X` applies to that step's `<name>`,
    /// an override without a step prefix to every step.
    static func stepOptions(_ options: OracleOptions, step t: Int) -> OracleOptions {
        var result = options
        var overrides: [String: Double] = [:]
        for (name, value) in options.tolerances.overrides {
            if let (step, rest) = Trace.splitStep(name) {
                if step == t { overrides[rest] = value }
            } else if overrides[name] == nil {
                overrides[name] = value
            }
        }
        result.tolerances.overrides = overrides
        return result
    }

    /// One report of the steps' reports: entries in (step, execution order), absent and
    /// ignored names as the file has them, each step's notes prefixed with its step.
    static func merge(_ reports: [OracleReport], steps: [Step], trace: Trace) -> OracleReport {
        var merged = reports[0]
        merged.entries = reports.flatMap(\.entries)
        merged.absent = zip(reports, steps).flatMap { report, step in report.absent.map { Trace.stepName($0, step: step.t) } }
        var ignored = trace.unusedByAnyStep
        for (report, step) in zip(reports, steps) {
            ignored += report.ignored.map { step.names[$0] ?? Trace.stepName($0, step: step.t) }
        }
        merged.ignored = ignored
        var notes: [String] = []
        if !trace.unusedByAnyStep.isEmpty {
            notes.append("ignored (no step reads them): " + OracleReport.abbreviated(trace.unusedByAnyStep))
        }
        for (report, step) in zip(reports, steps) {
            notes += report.notes.map { "step \(step.t): " + $0 }
        }
        merged.notes = notes
        merged.steps = steps.count
        merged.required += "; in each of the \(steps.count) steps"
        return merged
    }
}
