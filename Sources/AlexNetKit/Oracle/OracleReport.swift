import Foundation

/// One explanation the diagnosis found for a mismatch, or a remark about a tensor.
public struct OracleFinding: Equatable, Sendable {
    /// A stable identifier for tests and CI scripts: `lrn-alpha`, `lrn-k`,
    /// `lrn-groups`, `pool-rounding`, `avgpool-divisor`, `dropout-scaling`,
    /// `dropout-mask-inverted`, `dropout-missing`, `sgd-form`, `sgd-decay-not-scaled`,
    /// `sgd-no-decay`, `sgd-nesterov`, `sgd-halves-swapped`, `nhwc`, `towers-swapped`,
    /// `weight-halves-swapped`, `input-halves-swapped`, `kernel-flipped`,
    /// `flatten-nhwc`, `tf32`, `float32`, `loss-sum`, `rounding` (bit-exact mode), `unexplained`.
    public var code: String
    /// The layer it concerns, or nil (loss).
    public var layer: String?
    /// The explanation in words, starting with the layer or tensor.
    public var message: String

    /// Creates a finding; see the properties.
    public init(code: String, layer: String?, message: String) {
        self.code = code
        self.layer = layer
        self.message = message
    }
}

/// The oracle's judgement of one tensor.
public enum OracleVerdict: String, Sendable {
    /// Within tolerance alone and end to end.
    case agrees = "ok"
    /// Alone (fed the reference's own inputs) it is beyond tolerance: this layer computes differently.
    case differs = "DIFFERS"
    /// Alone it agrees; end to end it is beyond tolerance (errors inherited from upstream, or rounding that flipped a decision).
    case drifts = "drift"
    /// Neither alone nor end to end could ours be computed (the reference's upstream
    /// tensors do not fit our layer, after an earlier divergence); not a mismatch by itself.
    case notComputed = "n/a"
}

/// One compared tensor: its role, the comparisons and the verdict.
public struct OracleEntry: Sendable {
    /// What the tensor is.
    public var role: TraceRole
    /// The reference tensor's shape.
    public var referenceShape: Shape
    /// Ours computed with the layer alone, fed the reference's own input and upstream gradient.
    public var alone: TensorComparison?
    /// Ours computed end to end, from the trace's input and weights only.
    public var endToEnd: TensorComparison?
    /// Why ``alone`` could not be computed, if it could not.
    public var aloneUnavailable: String?
    /// The judgement.
    public var verdict: OracleVerdict
    /// Explanations found for a mismatch (and remarks, e.g. which SGD form matched bit for bit).
    public var findings: [OracleFinding]
    /// The training step (1...T) of a version 2 trace, whose tensor names are `step<t>.*`; nil for version 1.
    public var step: Int? = nil

    /// The tensor's name.
    public var name: String { role.name }

    /// The comparison the table shows: alone where available, else end to end.
    public var primary: TensorComparison? { alone ?? endToEnd }
}

/// The result of checking a trace: every tensor's comparison in execution
/// order, the first divergence with its diagnosis, and renderings as a table,
/// JSON (`--report`) and JUnit XML (`--junit`).
public struct OracleReport: Sendable {
    /// The trace's path.
    public var source: String
    /// `network` or `layer`.
    public var kind: TraceKind
    /// The model's or layer's name.
    public var subject: String
    /// `f32` or `f64`.
    public var dtype: DType
    /// Training or inference.
    public var mode: PassMode
    /// The producer named in the metadata.
    public var producer: String?
    /// Images in the batch.
    public var batch: Int
    /// One line describing the tolerance policy.
    public var toleranceRule: String
    /// Every compared tensor, in execution order.
    public var entries: [OracleEntry]
    /// Tensors the format defines for this trace that it did not hold.
    public var absent: [String]
    /// Tensors not defined by the format for this trace (ignored).
    public var ignored: [String]
    /// Remarks: ignored tensors, end-to-end drift, SGD forms, ...
    public var notes: [String]
    /// Whether end-to-end drift alone makes the check fail (`--end-to-end`).
    public var failOnEndToEnd: Bool
    /// What the trace had to hold (``OracleOptions/compare``), e.g.
    /// `forward, loss, grad, updated (the default for a training network trace with SGD metadata)`.
    public var required: String = ""
    /// The OpenBLAS core our side of the comparison ran on (``BLAS/core``):
    /// our numbers are bitwise reproducible for one core, not across cores.
    public var blasCore: String = BLAS.core.name
    /// The steps replayed (version 2 traces); nil for a version 1 trace of one step.
    public var steps: Int? = nil

    /// Whether the entry counts as a mismatch under this report's policy.
    public func fails(_ entry: OracleEntry) -> Bool {
        entry.verdict == .differs || (failOnEndToEnd && entry.verdict == .drifts)
    }

    /// The first tensor in execution order that diverges, or nil when all agree.
    public var firstDivergence: OracleEntry? { entries.first(where: fails) }

    /// True when no tensor diverges.
    public var passed: Bool { firstDivergence == nil }

    /// The process exit status for this result: 0 all agree, 1 a mismatch.
    public var exitStatus: Int32 { passed ? 0 : 1 }

    /// The verdict in one line, naming the first tensor that diverges.
    public var verdictLine: String {
        let failing = entries.filter(fails).count
        guard let first = firstDivergence else {
            let drift = entries.filter { $0.verdict == .drifts }.count
            return "AGREE: all \(entries.count) tensors within tolerance"
                + (drift > 0 ? " alone (\(drift) drift end to end; see the notes)" : "")
        }
        var line = "MISMATCH: first divergence at \(first.name)"
        let step = first.step.map { "step \($0), " } ?? ""
        if let layer = first.role.layer {
            line += " (\(step)layer \(layer), \(first.role.phase.rawValue))"
        } else if let s = first.step {
            line += " (step \(s), \(first.role.phase.rawValue))"
        }
        if let c = first.primary {
            if c.shapesDiffer {
                line += ": shape \(c.referenceShape) in the reference, \(c.oursShape) here"
            } else {
                line += ": \(c.outOfTolerance) of \(c.count) elements beyond tolerance, max rel err "
                    + OracleFormat.scientific(c.maxRelativeError)
            }
        }
        line += "; \(failing) of \(entries.count) tensors differ"
        if let finding = first.findings.first(where: { $0.code != "unexplained" }) ?? first.findings.first {
            line += "\n  why: " + finding.message
        }
        return line
    }

    // MARK: Table

    /// The per-tensor table: tensor, shape, max abs err, the median, 99th percentile
    /// and maximum of the relative error, ULPs,
    /// cosine, elements out of tolerance, verdict and the end-to-end max rel err
    /// (marked `!` when beyond its tolerance), then the diagnosis, notes and the
    /// verdict line.
    public func table() -> String {
        var lines: [String] = []
        lines.append("trace \(source): \(kind.rawValue) \(subject), \(dtype.traceSpelling), "
                     + "\(mode == .training ? "training" : "inference"), batch \(batch)"
                     + (producer.map { ", producer \($0)" } ?? "") + (steps.map { ", \($0) steps replayed" } ?? ""))
        lines.append("tolerance: " + toleranceRule)
        if !required.isEmpty { lines.append("required: " + required) }
        lines.append("computed here with OpenBLAS core " + blasCore)
        lines.append("numbers are for each layer alone (fed the reference's own input and upstream gradient); "
                     + "the last column is end to end")
        let header = ["tensor", "shape", "max abs err", "median rel", "p99 rel", "max rel err", "ULPs", "cosine", "# out of tol", "verdict", "end-to-end"]
        var rows: [[String]] = []
        var lastPhase: (Int?, TraceRole.Phase)?
        for entry in entries {
            if lastPhase.map({ $0.0 != entry.step || $0.1 != entry.role.phase }) ?? true {
                let title = (entry.step.map { "step \($0) " } ?? "") + entry.role.phase.rawValue
                rows.append(["[" + title + "]"] + Array(repeating: "", count: header.count - 1))
                lastPhase = (entry.step, entry.role.phase)
            }
            let name = (entry.role.tower != nil ? "  " : "") + entry.name
            var row = [name]
            if let c = entry.primary {
                row.append(c.referenceShape.description)
                if c.shapesDiffer {
                    row += ["ours " + c.oursShape.dims.map(String.init).joined(separator: "x"), "", "", "", "", "", "",
                            entry.verdict.rawValue]
                } else {
                    row += [OracleFormat.scientific(c.maxAbsoluteError), OracleFormat.scientific(c.medianRelativeError),
                            OracleFormat.scientific(c.p99RelativeError), OracleFormat.scientific(c.maxRelativeError),
                            Self.ulps(c.maxULPs), Self.cosine(c.cosine), "\(c.outOfTolerance)/\(c.count)",
                            entry.verdict.rawValue]
                }
            } else {
                row += [entry.referenceShape.description, "not computed", "", "", "", "", "", "", entry.verdict.rawValue]
            }
            if entry.alone == nil {
                row.append("(alone: n/a)")
            } else if let e = entry.endToEnd {
                row.append(e.shapesDiffer ? "shape" : OracleFormat.scientific(e.maxRelativeError) + (e.passed ? "" : " !"))
            } else {
                row.append("")
            }
            rows.append(row)
        }
        var widths = header.map(\.count)
        for row in rows where !row[0].hasPrefix("[") {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func render(_ row: [String]) -> String {
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        lines.append(render(header))
        for row in rows { lines.append(row[0].hasPrefix("[") ? row[0] : render(row)) }
        if !absent.isEmpty {
            lines.append("absent (not compared): " + Self.abbreviated(absent))
        }
        let diagnosed = entries.filter { fails($0) && !$0.findings.isEmpty }
        if !diagnosed.isEmpty {
            lines.append("diagnosis:")
            var seen = Set<String>()
            for entry in diagnosed {
                for finding in entry.findings where seen.insert(finding.message).inserted {
                    lines.append("  " + finding.message)
                }
            }
        }
        for entry in entries where entry.aloneUnavailable != nil && entry.verdict != .agrees && entry.verdict != .drifts {
            lines.append("note: \(entry.name) could not be computed alone: \(entry.aloneUnavailable!)")
        }
        for note in notes { lines.append("note: " + note) }
        lines.append(verdictLine)
        return lines.joined(separator: "\n") + "\n"
    }

    static func ulps(_ x: Double) -> String {
        if x.isInfinite { return "inf" }
        return x < 1e7 ? String(Int(x)) : OracleFormat.scientific(x, digits: 1)
    }

    static func cosine(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x >= 1 { return "1" }
        let gap = 1 - x
        return gap > 0 && gap < 1e-4 ? "1-" + OracleFormat.scientific(gap, digits: 1) : String(format: "%.6f", x)
    }

    static func abbreviated(_ names: [String], limit: Int = 12) -> String {
        names.prefix(limit).joined(separator: ", ") + (names.count > limit ? " and \(names.count - limit) more" : "")
    }

    // MARK: JSON

    /// The report as JSON (`alexnet check --report`): metadata, the verdict,
    /// the first divergence, and every tensor's numbers alone and end to end.
    /// Non-finite numbers are written as strings (`"inf"`, `"-inf"`, `"nan"`), which JSON cannot hold as numbers.
    public func jsonString() -> String { Self.render(ReportDocument(report: self)) }

    /// The JSON report of a check that could not run (exit status 2): the
    /// trace, the reason, no tensors. Written so a CI artifact step always finds a report.
    public static func unusableJSON(trace: String, problem: String) -> String {
        render(UnusableReportDocument(trace: trace, problem: problem))
    }

    /// A report document as text: one member or element a line at every level,
    /// but shapes and positions (arrays of numbers) on one line, the layout
    /// users' scripts and diffs have seen since the format's first version.
    private static func render<Document: Encodable>(_ document: Document) -> String {
        // Encoding cannot fail: the documents hold strings, numbers, booleans and nulls.
        // swiftlint:disable:next force_try
        try! StrictJSONEncoder().encode(document).formatted(expandedLevels: .max, oneLineArrays: .ofNumbers) + "\n"
    }

    /// The JUnit report of a check that could not run: one test case with an `<error>`.
    public static func unusableJUnitXML(trace: String, problem: String) -> String {
        let suite = xmlEscape("alexnet check " + (trace as NSString).lastPathComponent)
        return ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<testsuites name=\"alexnet check\" tests=\"1\" failures=\"0\" errors=\"1\">",
                "  <testsuite name=\"\(suite)\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">",
                "    <testcase classname=\"alexnet.oracle.trace\" name=\"\(xmlEscape(trace))\" time=\"0\">",
                "      <error message=\"\(xmlEscape(problem))\" type=\"unusable trace\"/>",
                "    </testcase>",
                "  </testsuite>",
                "</testsuites>"].joined(separator: "\n") + "\n"
    }

    // MARK: JUnit

    /// The report as JUnit XML (`alexnet check --junit`): one `<testcase>` per
    /// compared tensor, named after it and classed by phase; a mismatch is a
    /// `<failure>` whose message holds the numbers and the diagnosis.
    public func junitXML() -> String {
        let failures = entries.filter(fails).count
        let skipped = entries.filter { $0.verdict == .notComputed }.count
        let suite = Self.xmlEscape("alexnet check " + (source as NSString).lastPathComponent)
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                     "<testsuites name=\"alexnet check\" tests=\"\(entries.count)\" failures=\"\(failures)\" errors=\"0\">",
                     "  <testsuite name=\"\(suite)\" tests=\"\(entries.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"\(skipped)\">",
                     "    <properties><property name=\"blas_core\" value=\"\(Self.xmlEscape(blasCore))\"/></properties>"]
        for entry in entries {
            let classname = Self.xmlEscape("alexnet.oracle." + (entry.step.map { "step\($0)." } ?? "")
                                           + entry.role.phase.rawValue + (entry.role.tower.map { ".tower\($0)" } ?? ""))
            let open = "    <testcase classname=\"\(classname)\" name=\"\(Self.xmlEscape(entry.name))\" time=\"0\""
            if entry.verdict == .notComputed {
                lines.append(open + ">")
                lines.append("      <skipped message=\"" + Self.xmlEscape("not computed: " + (entry.aloneUnavailable ?? "")) + "\"/>")
                lines.append("    </testcase>")
                continue
            }
            guard fails(entry) else {
                lines.append(open + "/>")
                continue
            }
            var message = entry.verdict == .differs ? "differs alone" : "drifts end to end"
            var body: [String] = []
            for (label, comparison) in [("alone", entry.alone), ("end to end", entry.endToEnd)] {
                guard let c = comparison else { continue }
                if c.shapesDiffer {
                    body.append("\(label): shape \(c.referenceShape) in the reference, \(c.oursShape) here")
                } else {
                    body.append("\(label): \(c.outOfTolerance) of \(c.count) elements beyond \(c.tolerance.summary); "
                                + "max abs err \(OracleFormat.scientific(c.maxAbsoluteError)), rel err median "
                                + "\(OracleFormat.scientific(c.medianRelativeError)), p99 \(OracleFormat.scientific(c.p99RelativeError)), "
                                + "max \(OracleFormat.scientific(c.maxRelativeError)), ULPs \(Self.ulps(c.maxULPs)), cosine "
                                + Self.cosine(c.cosine)
                                + (c.firstBad.map { ", first at \($0.position) (ours \($0.ours), reference \($0.reference))" } ?? ""))
                }
            }
            if let c = entry.primary {
                message += c.shapesDiffer ? ": shape \(c.referenceShape) vs \(c.oursShape)"
                    : ": \(c.outOfTolerance)/\(c.count) beyond tolerance, max rel err \(OracleFormat.scientific(c.maxRelativeError))"
            }
            body += entry.findings.map { "why: " + $0.message }
            lines.append(open + ">")
            lines.append("      <failure message=\"\(Self.xmlEscape(message))\" type=\"mismatch\">"
                         + Self.xmlEscape(body.joined(separator: "\n")) + "</failure>")
            lines.append("    </testcase>")
        }
        var out: [String] = []
        if !absent.isEmpty { out.append("absent: " + absent.joined(separator: ", ")) }
        out += notes.map { "note: " + $0 }
        out.append(verdictLine)
        lines.append("    <system-out>" + Self.xmlEscape(out.joined(separator: "\n")) + "</system-out>")
        lines.append("  </testsuite>")
        lines.append("</testsuites>")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` for an XML attribute or element: the five entities escaped, and
    /// control characters other than newline and tab written as `?` (XML 1.0
    /// allows no others, even escaped).
    static func xmlEscape(_ text: String) -> String {
        TextEscaping.escape(text) { scalar in
            switch scalar {
            case "&": return "&amp;"
            case "<": return "&lt;"
            case ">": return "&gt;"
            case "\"": return "&quot;"
            case "'": return "&apos;"
            case "\n", "\t": return nil
            case _ where scalar.value < 0x20: return "?"
            default: return nil
            }
        }
    }
}

// MARK: - The JSON documents

/// The keys of the report's top level (`alexnet-oracle-report/1`).
private enum ReportKey: String, CodingKey {
    case format, trace, kind, subject, dtype, mode, producer, batch, steps
    case blasCore = "blas_core", toleranceRule = "tolerance_rule", required, passed
    case exitStatus = "exit_status", verdict, error
    case firstDivergence = "first_divergence", compared, failing, tensors, absent, ignored, notes
}

/// What ``OracleReport/jsonString()`` writes, member for member in the file's order.
private struct ReportDocument: Encodable {
    let report: OracleReport

    func encode(to encoder: Encoder) throws {
        let r = report
        var c = encoder.container(keyedBy: ReportKey.self)
        try c.encode([
            (.format, "alexnet-oracle-report/1"), (.trace, r.source), (.kind, r.kind.rawValue), (.subject, r.subject),
            (.dtype, r.dtype.traceSpelling), (.mode, r.mode == .training ? "training" : "inference"),
            (.producer, r.producer), (.batch, r.batch), (.steps, r.steps), (.blasCore, r.blasCore),
            (.toleranceRule, r.toleranceRule), (.required, r.required), (.passed, r.passed), (.exitStatus, Int(r.exitStatus)),
            (.verdict, r.verdictLine), (.firstDivergence, r.firstDivergence.map(DivergenceJSON.init)),
            (.compared, r.entries.count), (.failing, r.entries.filter(r.fails).count),
            (.tensors, r.entries.map { EntryJSON(entry: $0, fails: r.fails($0)) }),
            (.absent, r.absent), (.ignored, r.ignored), (.notes, r.notes),
        ])
    }
}

/// What ``OracleReport/unusableJSON(trace:problem:)`` writes: the same format, no tensors.
private struct UnusableReportDocument: Encodable {
    let trace: String
    let problem: String

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: ReportKey.self)
        try c.encode([
            (.format, "alexnet-oracle-report/1"), (.trace, trace), (.blasCore, BLAS.core.name), (.passed, false),
            (.exitStatus, 2), (.verdict, "UNUSABLE: " + problem), (.error, problem), (.compared, 0),
            (.tensors, [EntryJSON]()),
        ])
    }
}

/// The report's `first_divergence`: where it is and why.
private struct DivergenceJSON: Encodable {
    let entry: OracleEntry

    enum CodingKeys: String, CodingKey { case tensor, layer, phase, tower, step, findings }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.tensor, entry.name), (.layer, entry.role.layer), (.phase, entry.role.phase.rawValue),
                      (.tower, entry.role.tower), (.step, entry.step), (.findings, entry.findings.map(FindingJSON.init))])
    }
}

/// One element of the report's `tensors`.
private struct EntryJSON: Encodable {
    let entry: OracleEntry
    /// Whether it counts as a mismatch (a report's policy, not the entry's).
    let fails: Bool

    enum CodingKeys: String, CodingKey {
        case name, layer, phase, tower, step, verdict, fails, alone
        case endToEnd = "end_to_end", aloneUnavailable = "alone_unavailable", findings
    }

    /// `alone_unavailable` is written only when there is a reason.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.name, entry.name), (.layer, entry.role.layer), (.phase, entry.role.phase.rawValue),
                      (.tower, entry.role.tower), (.step, entry.step), (.verdict, entry.verdict.rawValue), (.fails, fails),
                      (.alone, entry.alone.map(ComparisonJSON.init)), (.endToEnd, entry.endToEnd.map(ComparisonJSON.init))])
        try c.encodeIfPresent(entry.aloneUnavailable, forKey: .aloneUnavailable)
        try c.encode(entry.findings.map(FindingJSON.init), forKey: .findings)
    }
}

/// A tensor's `alone` or `end_to_end` numbers.
private struct ComparisonJSON: Encodable {
    let comparison: TensorComparison

    enum CodingKeys: String, CodingKey {
        case referenceShape = "reference_shape", ourShape = "our_shape", passed, rtol, atol, exact, count
        case rmsReference = "rms_reference", maxAbsError = "max_abs_error", medianRelError = "median_rel_error"
        case p99RelError = "p99_rel_error", maxRelError = "max_rel_error", maxULPs = "max_ulps", cosine
        case outOfTolerance = "out_of_tolerance", bitwiseEqual = "bitwise_equal", meanError = "mean_error"
        case rmsError = "rms_error", firstBad = "first_bad"
        case index, position, ours, reference
    }

    /// Shapes and the tolerance always; the error figures only when the shapes agree (there are none otherwise).
    func encode(to encoder: Encoder) throws {
        let t = comparison
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.referenceShape, t.referenceShape.dims), (.ourShape, t.oursShape.dims), (.passed, t.passed),
                      (.rtol, ReportNumber(t.tolerance.rtol)), (.atol, ReportNumber(t.tolerance.atol)), (.exact, t.tolerance.exact)])
        guard !t.shapesDiffer else { return }
        try c.encode([
            (.count, t.count), (.rmsReference, ReportNumber(t.scale)), (.maxAbsError, ReportNumber(t.maxAbsoluteError)),
            (.medianRelError, ReportNumber(t.medianRelativeError)), (.p99RelError, ReportNumber(t.p99RelativeError)),
            (.maxRelError, ReportNumber(t.maxRelativeError)), (.maxULPs, ReportNumber(t.maxULPs)), (.cosine, ReportNumber(t.cosine)),
            (.outOfTolerance, t.outOfTolerance), (.bitwiseEqual, t.bitwiseEqual), (.meanError, ReportNumber(t.meanError)),
            (.rmsError, ReportNumber(t.rmsError)),
        ])
        if let bad = t.firstBad {
            var b = c.nestedContainer(keyedBy: CodingKeys.self, forKey: .firstBad)
            try b.encode([(.index, bad.index), (.position, bad.position), (.ours, ReportNumber(bad.ours)),
                          (.reference, ReportNumber(bad.reference))])
        } else {
            try c.encodeNil(forKey: .firstBad)
        }
    }
}

/// One finding of a tensor or of the first divergence.
private struct FindingJSON: Encodable {
    let finding: OracleFinding

    enum CodingKeys: String, CodingKey { case code, layer, message }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([(.code, finding.code), (.layer, finding.layer), (.message, finding.message)])
    }
}

/// A figure of the report. JSON has no infinity or NaN, and the strict
/// encoder would write `null` for them; the report writes the strings
/// `"inf"`, `"-inf"` and `"nan"` instead (Docs/oracle.md), so a script
/// can tell an infinite error from a missing one.
private struct ReportNumber: Encodable {
    let value: Double

    init(_ value: Double) { self.value = value }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if value.isNaN {
            try c.encode("nan")
        } else if value.isInfinite {
            try c.encode(value > 0 ? "inf" : "-inf")
        } else {
            try c.encode(value)
        }
    }
}
