/// A trace's metadata as its file holds it (Docs/oracle.md, "Metadata", both
/// versions): every key, its spelling and its rules in one place, read through
/// ``StringMetadataDecoder`` and written through ``StringMetadataEncoder``.
///
/// Reading checks everything the metadata alone decides: the format and
/// version, the spellings, the SGD settings as a set, `towers`, the JSON the
/// kind needs (present; ``Trace/decode(tensors:metadata:source:)`` parses it
/// and checks it against the tensors), and version 2's rules for `steps` and
/// `learning_rates`.
struct TraceMetadata: Codable, Equatable {
    /// `network` or `layer`.
    var kind: TraceKind
    /// `.float32` or `.float64` (spelt ``DType/traceSpelling``).
    var dtype: DType
    /// Training or inference.
    var mode: PassMode
    /// The model spec as JSON text; present in every network trace.
    var spec: String?
    /// The layer as JSON text; present in every layer trace.
    var layer: String?
    /// The SGD settings, all four keys or none.
    var sgd: TraceSGD?
    /// 2 when the producer recorded per-tower tensors; `towers = 1` reads as nil.
    var towers: Int?
    /// Free text naming the producer.
    var producer: String?
    /// Version 2's step count; nil writes version 1.
    var steps: Int?
    /// Version 2's rate of each step, when the schedule is not constant.
    var learningRates: [Double]?
    /// Keys the trace's version does not define, kept as they are and never used.
    var extra: [String: String] = [:]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case format, kind, spec, layer, dtype, mode
        case sgdForm = "sgd_form", learningRate = "learning_rate", momentum, weightDecay = "weight_decay"
        case towers, producer, steps, learningRates = "learning_rates"

        /// The keys version 2 adds; in a version 1 file they are metadata it does not define.
        static let version2: [CodingKeys] = [.steps, .learningRates]
        /// The SGD settings, which come as a set.
        static let sgd: [CodingKeys] = [.sgdForm, .learningRate, .momentum, .weightDecay]
    }

    /// The metadata of `trace`.
    init(_ trace: Trace) {
        kind = trace.kind
        dtype = trace.dtype
        mode = trace.mode
        spec = trace.spec?.jsonString()
        layer = trace.layer?.jsonString()
        sgd = trace.sgd
        towers = trace.towers
        producer = trace.producer
        steps = trace.steps
        learningRates = trace.learningRates
        extra = trace.extraMetadata
    }

    /// Reads and checks the metadata; a failure names the key (see the type's summary).
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let format = try c.required(c.decodeIfPresent(String.self, forKey: .format), .format,
                                    "a trace's metadata must say format = \(Trace.format) (Docs/oracle.md)")
        guard format == Trace.format || format == Trace.formatSteps else {
            throw c.invalid(.format, format.hasPrefix("alexnet-trace/")
                            ? "unknown version '\(format)': this reader understands \(Trace.format) and \(Trace.formatSteps)"
                            : "unknown format '\(format)': expected \(Trace.format) (Docs/oracle.md)")
        }
        /// A required key spelt one of `choices`.
        func choice<T>(_ key: CodingKeys, _ choices: [(String, T)]) throws -> T {
            try c.required(c.spelling(key, choices), key, "expected " + spelledAlternatives(choices.map(\.0)))
        }
        kind = try choice(.kind, TraceKind.allCases.map { ($0.rawValue, $0) })
        dtype = try choice(.dtype, DType.traceTypes.map { ($0.traceSpelling, $0) })
        mode = try choice(.mode, PassMode.allCases.map { ($0.rawValue, $0) })

        if CodingKeys.sgd.contains(where: c.contains) {
            for key in CodingKeys.sgd where !c.contains(key) {
                throw c.missing(key, "the SGD settings come as a set: " + CodingKeys.sgd.map(\.stringValue).joined(separator: ", "))
            }
            sgd = TraceSGD(form: try choice(.sgdForm, SGDForm.allCases.map { ($0.rawValue, $0) }),
                           learningRate: try c.decode(Double.self, forKey: .learningRate),
                           momentum: try c.decode(Double.self, forKey: .momentum),
                           weightDecay: try c.decode(Double.self, forKey: .weightDecay))
        }
        let towerCounts: [(String, Int?)] = [("1", nil), ("2", 2)]
        towers = try c.spelling(.towers, towerCounts) ?? nil
        producer = try c.decodeIfPresent(String.self, forKey: .producer)

        switch kind {
        case .network:
            spec = try c.required(c.decodeIfPresent(String.self, forKey: .spec), .spec,
                                  "a network trace carries its model spec as JSON (alexnet summary --json)")
        case .layer:
            layer = try c.required(c.decodeIfPresent(String.self, forKey: .layer), .layer,
                                   "a layer trace carries its layer as JSON (one entry of a spec's layers)")
            if towers != nil { throw c.invalid(.towers, "per-tower tensors belong to network traces") }
        }
        let version2 = format == Trace.formatSteps
        if version2 { try decodeSteps(c) }

        let defined = CodingKeys.allCases.filter { version2 || !CodingKeys.version2.contains($0) }.map(\.stringValue)
        let everyKey = try decoder.container(keyedBy: JSONKey.self)
        for key in everyKey.allKeys where !defined.contains(key.stringValue) {
            extra[key.stringValue] = try everyKey.decode(String.self, forKey: key)
        }
    }

    /// Version 2's keys and rules: T steps of a training network trace with SGD
    /// settings and no per-tower tensors, and a schedule of T rates whose first is
    /// `learning_rate`.
    private mutating func decodeSteps(_ c: KeyedDecodingContainer<CodingKeys>) throws {
        let range = "expected an integer in 1...\(Trace.maximumSteps)"
        let steps = try c.required(c.decodeIfPresent(Int.self, forKey: .steps, expected: range), .steps,
                                   "a \(Trace.formatSteps) trace says how many steps it holds")
        guard (1...Trace.maximumSteps).contains(steps) else {
            throw c.invalid(.steps, steps == 0 ? "\(range), got '0': a trace of steps holds at least one" : range)
        }
        guard kind == .network else {
            throw c.invalid(.kind, "a \(Trace.formatSteps) trace records a network's training steps; a layer trace is version 1")
        }
        guard mode == .training, let sgd else {
            throw c.invalid(mode == .training ? .sgdForm : .mode,
                            "a \(Trace.formatSteps) trace is a training trace with SGD settings (sgd_form, learning_rate, momentum, "
                            + "weight_decay): they carry one step to the next")
        }
        guard towers == nil else {
            throw c.invalid(.towers, "per-tower tensors are version 1 only; write towers = 2 traces one step at a time")
        }
        let rates: [Double]?
        do {
            rates = try c.decodeIfPresent([Double].self, forKey: .learningRates)
        } catch DecodingError.typeMismatch {
            throw c.invalid(.learningRates, "expected \(steps) comma-separated finite numbers")
        }
        if let rates {
            guard rates.count == steps else {
                throw c.invalid(.learningRates, "holds \(rates.count) rate(s) but steps = \(steps): one per step")
            }
            guard rates[0] == sgd.learningRate else {
                throw c.invalid(.learningRates, "starts with \(rates[0]) but learning_rate = \(sgd.learningRate): "
                                + "learning_rate is the first step's rate")
            }
        }
        self.steps = steps
        learningRates = rates
    }

    /// Writes every key whose value is set over ``extra``; the format is version 2 when ``steps`` is set.
    func encode(to encoder: Encoder) throws {
        var kept = encoder.container(keyedBy: JSONKey.self)
        for (key, value) in extra { try kept.encode(value, forKey: JSONKey(key)) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        // A nil value writes no key.
        try c.encode([
            (.format, steps == nil ? Trace.format : Trace.formatSteps), (.kind, kind.rawValue),
            (.dtype, dtype.traceSpelling), (.mode, mode.rawValue), (.spec, spec), (.layer, layer),
            (.sgdForm, sgd?.form.rawValue), (.learningRate, sgd?.learningRate), (.momentum, sgd?.momentum),
            (.weightDecay, sgd?.weightDecay), (.towers, towers), (.producer, producer), (.steps, steps),
            (.learningRates, learningRates),
        ])
    }
}

extension DType {
    /// The element types a trace may have.
    static let traceTypes: [DType] = [.float32, .float64]

    /// How trace metadata, the oracle's reports and `--dtype` spell a float
    /// type: `f32`, `f64` (another type, which no trace has, by its name).
    public var traceSpelling: String {
        switch self {
        case .float32: return "f32"
        case .float64: return "f64"
        default: return rawValue
        }
    }
}
