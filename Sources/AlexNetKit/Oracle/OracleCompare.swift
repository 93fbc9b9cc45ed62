import Foundation

/// A group of tensors a check requires (`alexnet check --compare`, ``OracleOptions/compare``).
///
/// A required tensor that the trace does not hold makes the trace unusable:
/// a dumper that silently recorded nothing (or misspelt every name) must not
/// agree with everything. Tensors present beyond the required ones are still
/// compared. The rule is in Docs/oracle.md, "What a check compares".
public enum CompareGroup: String, CaseIterable, Sendable {
    /// The rule for the trace's kind and mode: `forward`; a training network trace also
    /// `loss`, `grad` and (with SGD metadata) `updated`; a training layer trace also
    /// `grad`, `grad_input` and (with SGD metadata) `updated`.
    case `default`
    /// Nothing is required: whatever the trace holds is compared (at least one tensor).
    case present
    /// `forward.<layer>` of every layer.
    case forward
    /// `loss` (network traces).
    case loss
    /// `grad.scores` (network traces).
    case gradScores = "grad_scores"
    /// `grad.<param>` of every parameter.
    case grad
    /// `grad_input.<layer>` of every layer.
    case gradInput = "grad_input"
    /// `updated.<param>` of every parameter (needs the SGD metadata).
    case updated

    /// The accepted names, comma-separated, for messages and help.
    public static var acceptedNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Parses a comma-separated list such as `forward,loss`.
    /// - Throws: ``CompareGroupError`` for an empty list or an unknown name, naming the accepted ones.
    public static func parseList(_ text: String) throws -> [CompareGroup] {
        let names = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var groups: [CompareGroup] = []
        for name in names {
            guard let group = CompareGroup(rawValue: name) else {
                throw CompareGroupError(text: text, name: name)
            }
            if !groups.contains(group) { groups.append(group) }
        }
        return groups
    }
}

/// An unknown name in a `--compare` list.
public struct CompareGroupError: Error, CustomStringConvertible, Equatable {
    /// The whole list as given.
    public var text: String
    /// The name that is not a group.
    public var name: String

    /// `--compare forwrd: unknown group 'forwrd'; accepted: default, present, ...`.
    public var description: String {
        (name.isEmpty ? "--compare '\(text)': an empty group name" : "--compare \(text): unknown group '\(name)'")
            + "; accepted (comma-separated): \(CompareGroup.acceptedNames)"
    }
}

extension TracePlan {
    /// The groups `groups` stands for in this trace: ``CompareGroup/default`` expanded
    /// by the trace's kind, mode and SGD metadata; ``CompareGroup/present`` dropped.
    public func expandedGroups(_ groups: [CompareGroup]) -> [CompareGroup] {
        var result: [CompareGroup] = []
        func add(_ group: CompareGroup) { if !result.contains(group) { result.append(group) } }
        for group in groups {
            switch group {
            case .present:
                continue
            case .default:
                add(.forward)
                // Inference has no backward pass; training checks the whole step. In a network
                // trace the input gradients are intermediates that the parameter gradients
                // already depend on (and the image gradient is large, so producers leave it
                // out); in a layer trace the input gradient is the layer's whole backward
                // result (a pool or an LRN has nothing else).
                guard trace.mode == .training else { continue }
                if trace.kind == .network { add(.loss) }
                add(.grad)
                if trace.kind == .layer { add(.gradInput) }
                if trace.sgd != nil { add(.updated) }
            default:
                add(group)
            }
        }
        return result
    }

    /// Every tensor `groups` requires of this trace, in execution order: the
    /// compared tensors, and the given ones they are computed from (`labels`,
    /// a layer trace's `grad_output.<layer>`). With `towers` = `2` in the
    /// metadata, each tower's tensors are required too (except a first layer's
    /// per-tower input gradient when both towers read the whole input, which
    /// the format leaves optional).
    /// - Throws: ``TraceError`` for a group this kind of trace cannot hold (`loss` of a layer trace).
    public func requiredTensors(_ groups: [CompareGroup]) throws -> [String] {
        let expanded = expandedGroups(groups)
        var names: [String] = []
        let parameterNames = parameters.flatMap { $0.map(\.name) }
        let withTowers = trace.towers == 2 && towers == 2
        let wholeImageFirst = TowerPlan(towers: towers, layers: layers).inputs.first == .wholeImage
        func add(_ name: String, towered: Bool = true, optionalTower: Bool = false) {
            names.append(name)
            if withTowers && towered && !optionalTower { names += (0..<towers).map { "tower\($0).\(name)" } }
        }
        for group in expanded {
            switch group {
            case .forward:
                for layer in layers { add("forward.\(layer.name)") }
            case .loss, .gradScores:
                guard trace.kind == .network else {
                    throw TraceError(file: trace.source, subject: "compare group \(group.rawValue)",
                                     problem: "a layer trace holds no \(group == .loss ? "loss" : "grad.scores"); "
                                     + "for a layer trace use forward, grad, grad_input, updated, default or present")
                }
                add(group == .loss ? "loss" : "grad.scores", towered: false)
            case .grad:
                for name in parameterNames { add("grad.\(name)") }
            case .gradInput:
                for (i, layer) in layers.enumerated() {
                    add("grad_input.\(layer.name)", optionalTower: i == 0 && wholeImageFirst)
                }
            case .updated:
                for name in parameterNames { add("updated.\(name)") }
            case .default, .present:
                break
            }
        }
        let backward = expanded.contains { $0 != .forward }
        if backward {
            if trace.kind == .network { names.append("labels") } else { names.append("grad_output.\(layers[0].name)") }
        }
        let order = TracePlan.executionOrder(kind: trace.kind, layers: layers, parameters: parameters, towers: towers)
        let index = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }.sorted { (index[$0] ?? .max) < (index[$1] ?? .max) }
    }

    /// Checks that the trace holds every tensor `groups` requires, and at least one to compare.
    /// - Throws: ``TraceError`` naming every missing tensor, the rule that required it,
    ///   how to narrow it, and ignored names that look like misspellings of missing ones.
    public func requireTensors(_ groups: [CompareGroup]) throws {
        let missing = try requiredTensors(groups).filter { trace[$0] == nil }
        let misspellings = likelyMisspellings(of: missing)
        var hints = ""
        if !misspellings.isEmpty {
            hints = "; ignored names that look misspelt: "
                + misspellings.map { "\($0.ignored) (\($0.intended)?)" }.joined(separator: ", ")
        }
        let others = ignored.filter { name in !misspellings.contains { $0.ignored == name } }
        if !others.isEmpty { hints += "; ignored (not names the format defines): " + others.joined(separator: ", ") }
        if !missing.isEmpty {
            let expanded = expandedGroups(groups)
            let groupNames = expanded.map(\.rawValue).joined(separator: ", ")
            // The groups the trace does hold whole: the narrowing that would check it as it is.
            let complete = try expanded.filter { group in try requiredTensors([group]).allSatisfy { trace[$0] != nil } }
            let narrowing = complete.isEmpty ? "" : "--compare " + complete.map(\.rawValue).joined(separator: ",")
                + " checks the groups this trace holds whole; "
            throw TraceError(file: trace.source,
                             problem: "missing \(missing.count) required tensor(s): " + missing.joined(separator: ", ")
                             + "; \(requirementDescription(groups)) requires \(groupNames)" + hints
                             + "; to check only part of the step, narrow what is required: " + narrowing
                             + "--compare present compares whatever the trace holds")
        }
        if compared.isEmpty {
            throw TraceError(file: trace.source,
                             problem: "the trace holds no tensor to compare (only the input, labels, parameters and masks"
                             + (ignored.isEmpty ? "" : "; ignored: " + ignored.joined(separator: ", "))
                             + "): a dumper that recorded nothing would agree with everything")
        }
    }

    /// `the default for a training network trace with SGD metadata`, or `--compare forward,loss`.
    public func requirementDescription(_ groups: [CompareGroup]) -> String {
        guard groups == [.default] else { return "--compare " + groups.map(\.rawValue).joined(separator: ",") }
        return "the default for \(trace.mode == .training ? "a training" : "an inference") \(trace.kind.rawValue) trace"
            + (trace.mode == .training ? (trace.sgd != nil ? " with SGD metadata" : " without SGD metadata") : "")
    }

    /// Ignored names within a small edit distance of a missing required name
    /// (`forwrd.conv1` for `forward.conv1`): a dumper's typo, reported beside the
    /// missing tensor instead of being silently skipped.
    func likelyMisspellings(of missing: [String]) -> [(ignored: String, intended: String)] {
        ignored.compactMap { name in
            let limit = max(2, name.count / 8)
            let best = missing.map { ($0, TracePlan.editDistance(name, $0, limit: limit)) }.min { $0.1 < $1.1 }
            guard let (intended, distance) = best, distance <= limit else { return nil }
            return (name, intended)
        }
    }

    /// Levenshtein distance of two names, or `limit + 1` when it exceeds `limit`.
    static func editDistance(_ a: String, _ b: String, limit: Int) -> Int {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard abs(x.count - y.count) <= limit else { return limit + 1 }
        var previous = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var current = [i] + [Int](repeating: 0, count: y.count)
            for j in 1...max(1, y.count) where !y.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return min(previous[y.count], limit + 1)
    }
}
