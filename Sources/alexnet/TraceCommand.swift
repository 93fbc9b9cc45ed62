import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet trace`: write this reference's own trace of one training step.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Run one training step and write every tensor as a trace (Docs/oracle.md), the oracle's own format.",
        discussion: """
        Records input, labels, every param.* and mask.*, forward.*, loss, grad.scores,
        grad_input.*, grad.* and (unless --sgd none) updated.* after one SGD step from
        zero velocity. Weights come from --weights or are initialised from --seed; the
        batch from --input or is drawn from --seed (pixels uniform in [-128, 128), the
        paper's mean-subtracted 8-bit range); dropout masks from --seed at step 0.
        --towers-tensors adds each tower's tensors of a two-tower model (tower0.*,
        tower1.*). --layer NAME writes a layer trace of that one layer instead.
        `alexnet check` on the written trace agrees bit for bit: use it as a template
        for dumping your own implementation's tensors.
        
        Examples:
          alexnet trace --model paper --batch 2 -o paper-step.safetensors
          alexnet trace --model cifar-towers --towers-tensors --dtype f64 -o towers-step
        """
    )

    @OptionGroup var name: ModelNameOption
    @OptionGroup var size: ModelSizeOptions

    @Option(name: .customLong("input-shape"), help: ArgumentHelp("One image's shape (default: the model's own, or --input's).",
                                                                 valueName: "C,H,W"),
            transform: { try ImageShape.parse($0) })
    var inputShape: ImageShape?

    @Option(help: "Weights to load (.safetensors or .npz, native or PyTorch names).")
    var weights: String?

    @Option(help: "Seed of the weights (without --weights), the random batch and the dropout masks.")
    var seed: UInt64 = 0

    @OptionGroup var initialisation: InitialisationOption

    @Option(help: "The batch as an .npy file [N, C, H, W] (float or integer pixels).")
    var input: String?

    @Option(help: "Images in the seeded random batch (without --input).")
    var batch: Int = 2

    @Option(help: "Labels as an .npy file of N integers (default: seeded).")
    var labels: String?

    @OptionGroup var dtypeOption: DTypeOption<TraceCommand>
    /// The element type the trace is computed and stored in.
    var dtype: ElementType { dtypeOption.value }

    @Option(help: "training (dropout masks applied) or inference.")
    var mode: PassMode = .training

    @Option(help: "SGD form of the recorded step, or none (no updated.* tensors).")
    var sgd: RecordedStep = .paper

    /// `--sgd`: an SGD form, or no step.
    enum RecordedStep: String, CaseIterable, ExpressibleByArgument {
        case paper, pytorch, none
        /// The form of the step; nil for `none`.
        var form: SGDForm? { SGDForm(rawValue: rawValue) }
    }

    @Option(help: "Learning rate of the step.")
    var lr: Double = 0.01

    @Option(help: "Momentum of the step.")
    var momentum: Double = 0.9

    @Option(name: .customLong("weight-decay"), help: "Weight decay of the step.")
    var weightDecay: Double = 5e-4

    @Flag(name: .customLong("towers-tensors"), help: "Also record each tower's tensors (two-tower models).")
    var towersTensors = false

    @Option(help: "Write a layer trace of this layer only.")
    var layer: String?

    @Option(name: .shortAndLong, help: "Where to write: a .safetensors file, or a directory (.npy files and metadata.json).")
    var output: String

    @OptionGroup var force: ForceFlag<TraceCommand>

    @OptionGroup var workers: WorkerThreadsOption

    func validate() throws {
        let extensionName = (output as NSString).pathExtension.lowercased()
        guard extensionName.isEmpty || extensionName == "safetensors" else {
            throw ValidationError("-o \(output): a trace is a .safetensors file or a directory (a name without an extension), "
                                  + "not .\(extensionName)")
        }
        try checkRange(batch, 1...InputLimits.batch, "--batch")
        for (name, value) in [("--lr", lr), ("--momentum", momentum), ("--weight-decay", weightDecay)] where !value.isFinite {
            throw ValidationError("\(name) must be a finite number, got \(value)")
        }
    }

    func run() throws {
        if output.lowercased().hasSuffix(".safetensors") {
            try checkOutputFile(output, option: "--output", force: force.isSet)
        } else {
            if FileManager.default.fileExists(atPath: output) && !force.isSet {
                throw CommandFailure(message: "--output \(output): exists; pass --force to replace it")
            }
            do {
                try OutputFiles.checkDirectory(output, what: "--output")
            } catch let error as OutputFileError where !force.isSet || !FileManager.default.fileExists(atPath: output) {
                throw CommandFailure(message: error.description)
            }
        }
        switch dtype {
        case .f32: try record(Float.self)
        case .f64: try record(Double.self)
        }
    }

    private func record<T: TensorElement>(_: T.Type) throws {
        var spec = try ModelOptions.resolve(model: name.model, towers: size.towers, classes: size.classes, input: inputShape)

        var batchTensor: Tensor<T>?
        if let input {
            let stored = try NPY.read(path: input)
            let values: Tensor<T>
            if stored.dtype == .float64 && T.self == Float.self {
                values = (try stored.narrowedToFloat()) as! Tensor<T>
            } else {
                values = try stored.floatTensor(as: T.self, convertingIntegers: true)
            }
            do {
                try values.checkFinite(name: "the input batch")
            } catch let error as NonFiniteError {
                throw CommandFailure(message: "\(input): \(error); a trace's input must be finite")
            }
            guard values.shape.rank == 4 else {
                throw CommandFailure(message: "\(input): shape \(values.shape): expected a batch [N, C, H, W]")
            }
            let image = Shape(Array(values.shape.dims.dropFirst()))
            if image != spec.inputShape {
                do {
                    spec = try spec.adapted(inputShape: image)
                } catch let error as ModelSpecError {
                    throw CommandFailure(message: "\(input): images of shape \(image) do not fit model \(spec.name): \(error)")
                }
            }
            batchTensor = values
        }
        let network = try Network<T>(spec: spec, seed: seed, initialisation: initialisation.scheme)
        if let weights {
            let tensors = try readWeights(weights)
            _ = try StateDict.load(tensors, into: network, source: weights)
        }
        let images = batchTensor ?? TraceRecorder.randomBatch(count: batch, shape: spec.inputShape, seed: seed)
        let count = images.shape[0]
        var labelValues = TraceRecorder.randomLabels(count: count, classes: spec.classes, seed: seed)
        if let labels {
            let stored = try NPY.read(path: labels).integers()
            guard stored.count == count else {
                throw CommandFailure(message: "\(labels): \(stored.count) labels for a batch of \(count)")
            }
            if let bad = stored.first(where: { $0 < 0 || $0 >= Int64(spec.classes) }) {
                throw CommandFailure(message: "\(labels): label \(bad) is outside 0..<\(spec.classes)")
            }
            labelValues = stored.map { Int($0) }
        }
        let step = sgd.form.map { TraceSGD(form: $0, learningRate: lr, momentum: momentum, weightDecay: weightDecay) }
        if towersTensors && spec.towers != 2 {
            throw CommandFailure(message: "--towers-tensors needs a two-tower model; \(spec.name) has \(spec.towers) tower(s)")
        }
        var trace = try TraceRecorder.record(network: network, input: images, labels: labelValues,
                                             mode: mode, sgd: step,
                                             towerTensors: towersTensors, workers: workers.count)
        if let layer {
            do {
                trace = try TraceRecorder.layerTrace(trace, layer: layer)
            } catch let error as TraceError {
                throw CommandFailure(message: "--layer \(layer): " + error.problem)
            }
        }
        do {
            try trace.write(to: output)
        } catch let error as TraceError {
            throw CommandFailure(message: error.description)
        } catch let error as TensorFileError {
            throw CommandFailure(message: error.description)
        }
        let perTower = trace.names.filter { $0.hasPrefix("tower") }.count
        print("wrote \(output): \(trace.kind.rawValue) trace of \(trace.subjectName), \(dtype.spelling), \(mode), batch \(count), "
              + "\(trace.tensors.count) tensors" + (perTower > 0 ? " (\(perTower) per tower)" : ""))
    }
}

extension TraceCommand: DTypeHelp {
    static let dtypeHelp = "Element type: f32 or f64."
}

extension TraceCommand: ForceHelp {
    static let forceHelp = "Replace the output if it exists."
}
