import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet check TRACE`: recompute another implementation's step and compare every tensor.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Recompute a trace's step with this reference and compare every tensor, layer by layer (the oracle).",
        discussion: """
        TRACE is a safetensors file or a directory of .npy files with metadata.json,
        in the format of Docs/oracle.md (version 1). Every layer is run twice: alone,
        fed the reference's own input and upstream gradient (these numbers decide the
        verdict, so the first divergence is the layer that computes differently), and
        end to end from the trace's input and weights (the last column). Mismatches
        are diagnosed by trying known convention variants on the layer: LRN alpha vs
        alpha/n, pooling floor vs ceil, dropout scaling, SGD forms, NHWC layouts,
        swapped towers, TF32 products.

        Tolerance per element: |ours - ref| <= atol + rtol * (|ref| + RMS(ref)), with
        rtol = c * u * sqrt(K) (u = 2^-24 and c = 32 for f32, u = 2^-53 and c = 16 for
        f64; K the layer's reduction length) unless --rtol, --tolerance or --exact say
        otherwise.

        What the trace must hold (--compare): by default every forward.<layer>; a
        training network trace also the loss, every grad.<param> and, with SGD
        metadata, every updated.<param>; a training layer trace also grad.<param>,
        grad_input.<layer> and, with SGD metadata, updated.<param> (and each tower's
        tensors when the metadata says towers = 2). A required tensor the trace lacks
        makes it unusable (exit 2, naming every missing tensor); tensors present
        beyond the required ones are compared too. --compare LIST replaces the rule:
        groups default, present (nothing required: whatever the trace holds),
        forward, loss, grad_scores, grad, grad_input, updated; e.g. --compare
        forward for a forward-only dump, --compare default,grad_input to add the
        input gradients.

        Exit status: 0 every tensor agrees; 1 a mismatch; 2 the trace (or a report
        path) cannot be used: missing file, malformed trace, a missing required
        tensor, nothing to compare, wrong shapes or dtypes, NaN, a --tolerance name
        that is neither a layer nor a tensor of the trace. Usage errors (unknown
        options, malformed values, an unknown --compare group) exit 64. With exit 2,
        --report and --junit still say why (a JUnit error case).
        
        Examples:
          alexnet check gpu-step.safetensors
          alexnet check gpu-step.safetensors --tolerance conv3=1e-4 --junit check.xml --report check.json
          alexnet check forward-only.safetensors --compare forward
          alexnet check gpu-step.safetensors --extract first -o failing-layer.safetensors
        """
    )

    @Argument(help: "The trace: a .safetensors file or a directory of .npy files with metadata.json.")
    var trace: String

    @Option(name: .customLong("tolerance"), parsing: .singleValue,
            help: "NAME=RTOL: the relative tolerance for one layer (conv3=1e-4) or one tensor (forward.conv3=1e-4); repeatable.")
    var tolerances: [String] = []

    @Option(name: .customLong("compare"),
            help: ArgumentHelp("What the trace must hold, comma-separated: \(CompareGroup.acceptedNames) (default: default).",
                               valueName: "LIST"))
    var compare: String = "default"

    @Option(help: "Relative tolerance for every tensor, replacing the rule.")
    var rtol: Double?

    @Option(help: "Absolute tolerance added to every bound.")
    var atol: Double = 0

    @Flag(help: "Bit-exact mode: every element must have the reference's bits.")
    var exact = false

    @Flag(name: .customLong("end-to-end"), help: "Also fail when a tensor agrees alone but drifts beyond tolerance end to end.")
    var endToEnd = false

    @Flag(name: .customLong("no-diagnosis"), help: "Do not try convention variants on mismatching layers.")
    var noDiagnosis = false

    @Option(help: "Write every tensor's numbers as JSON to this file.")
    var report: String?

    @Option(help: "Write a JUnit XML report (one testcase per tensor) to this file.")
    var junit: String?

    @OptionGroup var force: ForceFlag<CheckCommand>

    @OptionGroup var quiet: QuietFlag<CheckCommand>

    @OptionGroup var workers: WorkerThreadsOption

    @Option(help: ArgumentHelp("Write one layer of a network trace to --output as a layer trace (its input, parameters, "
                               + "mask, upstream gradient and what the producer computed), then check that layer alone. "
                               + "LAYER is a layer's name, or 'first' for the first layer that differs.",
                               valueName: "LAYER"))
    var extract: String?

    @Option(name: [.customShort("o"), .customLong("output")],
            help: "Where --extract writes the layer trace: a .safetensors file, or a directory of .npy files otherwise.")
    var output: String?

    func validate() throws {
        if let rtol, !(rtol >= 0 && rtol.isFinite) { throw ValidationError("--rtol must be a finite number >= 0, got \(rtol)") }
        guard atol >= 0, atol.isFinite else { throw ValidationError("--atol must be a finite number >= 0, got \(atol)") }
        _ = try overrides()
        _ = try groups()
        if extract != nil, output == nil { throw ValidationError("--extract needs --output, the layer trace's path") }
        if extract == nil, output != nil { throw ValidationError("--output is where --extract writes; give --extract LAYER too") }
        if let extract, extract.isEmpty { throw ValidationError("--extract needs a layer name or 'first'") }
    }

    /// `--compare LIST` as groups.
    func groups() throws -> [CompareGroup] {
        do {
            return try CompareGroup.parseList(compare)
        } catch let error as CompareGroupError {
            throw ValidationError(error.description)
        }
    }

    /// `--tolerance NAME=RTOL` options as a dictionary.
    func overrides() throws -> [String: Double] {
        var result: [String: Double] = [:]
        for text in tolerances {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let value = Double(parts[1]), value >= 0, value.isFinite else {
                throw ValidationError("--tolerance expects NAME=RTOL such as conv3=1e-4, got '\(text)'")
            }
            result[parts[0]] = value
        }
        return result
    }

    func run() throws {
        let policy = TolerancePolicy(exact: exact, rtol: rtol, atol: atol, overrides: try overrides())
        let options = OracleOptions(tolerances: policy, failOnEndToEnd: endToEnd, diagnose: !noDiagnosis, workers: workers.count,
                                    compare: try groups())
        let result: OracleReport
        do {
            if let report { try checkOutputFile(report, option: "--report", force: force.isSet) }
            if let junit { try checkOutputFile(junit, option: "--junit", force: force.isSet) }
            if let output { try checkOutputFile(output, option: "--output", force: force.isSet) }
            let loaded = try Trace.read(path: trace)
            try checkToleranceNames(against: loaded)
            // A trace lacking a required tensor, or holding none to compare, throws a TraceError.
            if let extract, let output {
                result = try extractAndCheck(loaded, layer: extract, to: output, options: options)
            } else {
                result = try Oracle.check(loaded, options: options)
            }
        } catch let error as CommandFailure {
            throw unusable(error.message)
        } catch let error as TraceError {
            throw unusable(error.description)
        } catch let error as TensorFileError {
            throw unusable(error.description)
        } catch let error as ModelSpecError {
            throw unusable(error.description)
        } catch let error as ShapeError {
            throw unusable("\(trace): \(error)")
        } catch let error as ConfigurationError {
            throw unusable("\(trace): \(error)")
        } catch {
            // Whatever else stops the check (a weights error, a non-finite
            // value) makes the trace unusable: exit 1 means a mismatch only.
            throw unusable("\(trace): \(error)")
        }
        print(quiet.isSet ? result.verdictLine : result.table(), terminator: quiet.isSet ? "\n" : "")
        do {
            if let report { try write(result.jsonString(), to: report) }
            if let junit { try write(result.junitXML(), to: junit) }
        } catch {
            throw unusable("cannot write the report: \(error)")
        }
        if !result.passed { throw ExitCode(1) }
    }

    /// Prints `message` on standard error, writes the --report and --junit
    /// files saying the trace is unusable (unless they exist without --force),
    /// and gives exit status 2.
    private func unusable(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
        for (path, text) in [(report, OracleReport.unusableJSON(trace: trace, problem: message)),
                             (junit, OracleReport.unusableJUnitXML(trace: trace, problem: message))] {
            guard let path, (try? checkOutputFile(path, option: "", force: force.isSet)) != nil else { continue }
            try? writeOutputFile(Array(text.utf8), to: path)
        }
        return ExitCode(2)
    }

    /// `--extract`: writes `layer`'s layer trace (the first differing layer's
    /// for `first`) to `path` and returns the check of that layer alone. With
    /// the default `--compare`, the layer trace is checked on what it holds: a
    /// network trace need not hold the input gradients a layer trace requires;
    /// an explicit list keeps its groups but the loss and score gradient.
    private func extractAndCheck(_ loaded: Trace, layer: String, to path: String, options: OracleOptions) throws -> OracleReport {
        guard loaded.kind == .network, let spec = loaded.spec else {
            throw CommandFailure(message: "--extract: \(trace) is a layer trace already; extract from a network trace")
        }
        guard loaded.steps == nil else {
            throw CommandFailure(message: "--extract: \(trace) holds \(loaded.steps!) steps (\(Trace.formatSteps)); "
                                 + "--extract reads a trace of one step (\(Trace.format))")
        }
        var name = layer
        if layer == "first" {
            let full = try Oracle.check(loaded, options: options)
            guard let first = full.entries.first(where: { $0.verdict == .differs })?.role.layer else {
                print("--extract first: no layer of \(trace) differs; nothing extracted\n")
                return full
            }
            name = first
        }
        if spec.towers == 2, let lrn = spec.layers.first(where: { $0.name == name }), case .localResponseNorm = lrn.kind {
            throw CommandFailure(message: "--extract \(name): in a two-tower net LRN normalises within each tower's channels, "
                                 + "which a layer trace cannot express; check it in the network trace")
        }
        let extracted: Trace
        do {
            extracted = try TraceRecorder.layerTrace(loaded, layer: name)
        } catch let error as TraceError {
            throw CommandFailure(message: "--extract \(name): " + error.problem)
        }
        try extracted.write(to: path)
        print("wrote \(path): layer trace of \(name) from \(trace), \(extracted.tensors.count) tensors "
              + "(\(extracted.names.joined(separator: ", ")))\n")
        // A layer trace has no loss or score gradient: those groups fall away.
        var layerOptions = options
        layerOptions.compare = compare == "default" ? [.present]
            : options.compare.filter { $0 != .loss && $0 != .gradScores }
        if layerOptions.compare.isEmpty { layerOptions.compare = [.present] }
        // Checked as read back, so the file itself is what agrees or differs.
        return try Oracle.check(try Trace.read(path: path), options: layerOptions)
    }

    /// Refuses a `--tolerance NAME=RTOL` whose name is neither a layer nor a tensor of the trace.
    private func checkToleranceNames(against loaded: Trace) throws {
        let layers = (loaded.spec?.layers.map(\.name) ?? []) + (loaded.layer.map { [$0.name] } ?? [])
        // A version 2 trace's tensors count by their names within a step too (`forward.conv1` for every step).
        let tensors = Set(loaded.names + loaded.names.compactMap { Trace.splitStep($0)?.rest })
        for name in try overrides().keys.sorted() {
            let untowered = name.replacingOccurrences(of: #"^tower[0-9]+\."#, with: "", options: .regularExpression)
            guard layers.contains(name) || tensors.contains(name) || tensors.contains(untowered) else {
                throw CommandFailure(message: "--tolerance \(name): no layer or tensor of \(trace) has this name (layers: "
                                     + layers.joined(separator: ", ") + ")")
            }
        }
    }

    private func write(_ text: String, to path: String) throws {
        try writeOutputFile(Array(text.utf8), to: path)
    }
}

extension CheckCommand: ForceHelp, QuietHelp {
    static let forceHelp = "Replace existing --report, --junit and --output files."
    static let quietHelp = "Print only the verdict line."
}
