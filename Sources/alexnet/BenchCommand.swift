import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet bench`: per-layer speed of the paper's AlexNet, forward and backward.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time every layer of the paper's AlexNet (227x227 input), forward and backward.",
        discussion: """
        Builds the paper's network as one grouped model (conv2, conv4, conv5 in two
        groups), with random weights, and times each layer's forward and backward
        pass over a batch. Prints milliseconds, GFLOP/s of the matrix products
        (2 FLOP per multiply-add) and images per second for inference (forward)
        and a training step (forward + backward). The first repetition is a
        warm-up and is not counted; the best of the rest is reported.
        """
    )

    @Option(help: "Images per batch.")
    var batch: Int = 16

    @Option(help: "Worker threads (default: one per core).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Element type: f32 or f64.")
    var dtype: String = "f32"

    @Option(help: "Timed repetitions after the warm-up.")
    var repetitions: Int = 3

    func run() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1, got \(batch)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1, got \(repetitions)") }
        switch dtype {
        case "f32": try bench(Float.self)
        case "f64": try bench(Double.self)
        default: throw ValidationError("--dtype must be f32 or f64, got '\(dtype)'")
        }
    }

    private func bench<T: TensorElement>(_: T.Type) throws {
        let layers: [any Layer<T>] = try PaperLayers.make(T.self)
        let pool = WorkerPool(workerCount: threads)
        let context = PassContext(pool: pool, mode: .training, step: 0)
        var rng = RandomStream(seed: 1, step: 0, stream: 0)
        for (index, layer) in layers.enumerated() {
            rng = RandomStream(seed: 1, step: 0, stream: UInt32(index))
            for parameter in layer.parameters {
                let stream = rng
                var value = parameter.value
                value.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = T(0.02 * stream.uniform(i) - 0.01) } }
                parameter.value = value
            }
        }
        var input = Tensor<T>(shape: [batch, 3, 227, 227])
        let stream = RandomStream(seed: 2, step: 0, stream: 0)
        input.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = T(stream.uniform(i) - 0.5) } }

        var forwardTimes = [Double](repeating: .infinity, count: layers.count)
        var backwardTimes = [Double](repeating: .infinity, count: layers.count)
        var shapes: [Shape] = []
        for repetition in 0...repetitions {
            var activations = [input]
            for (i, layer) in layers.enumerated() {
                let start = DispatchTime.now()
                activations.append(try layer.forward(activations[i], context: context))
                if repetition > 0 { forwardTimes[i] = min(forwardTimes[i], seconds(since: start)) }
            }
            shapes = activations.map(\.shape)
            var gradient = Tensor<T>(shape: activations.last!.shape, repeating: T(1) / T(activations.last!.count))
            for (i, layer) in layers.enumerated().reversed() {
                let start = DispatchTime.now()
                gradient = try layer.backward(gradient, context: context)
                if repetition > 0 { backwardTimes[i] = min(backwardTimes[i], seconds(since: start)) }
            }
        }

        print("AlexNet (paper, grouped), batch \(batch), \(T.dtypeName), \(threads) thread(s); best of \(repetitions)")
        print("layer      output shape          fwd ms   bwd ms   fwd GFLOP/s  bwd GFLOP/s")
        for (i, layer) in layers.enumerated() {
            let flops = 2 * Double(try layer.multiplyAdds(for: shapes[i]))
            let rateForward = flops > 0 ? String(format: "%11.1f", flops / forwardTimes[i] / 1e9) : "           "
            // Backward does two products of the forward's size (input and weight gradients).
            let rateBackward = flops > 0 ? String(format: "%11.1f", 2 * flops / backwardTimes[i] / 1e9) : "           "
            print(layer.name.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + " " + shapes[i + 1].description.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: " %8.2f %8.2f", forwardTimes[i] * 1e3, backwardTimes[i] * 1e3)
                  + "  " + rateForward + "  " + rateBackward)
        }
        let forward = forwardTimes.reduce(0, +)
        let backward = backwardTimes.reduce(0, +)
        print(String(format: "total forward %.1f ms (%.1f images/s), forward+backward %.1f ms (%.1f images/s)",
                     forward * 1e3, Double(batch) / forward, (forward + backward) * 1e3, Double(batch) / (forward + backward)))
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

/// The paper's AlexNet as a flat list of layers (1000 classes, grouped conv2/4/5).
/// The models issue replaces this with the network type; the bench only needs the layers.
enum PaperLayers {
    static func make<T: TensorElement>(_: T.Type) throws -> [any Layer<T>] {
        func lrn(_ name: String) throws -> LocalResponseNorm<T> {
            try LocalResponseNorm<T>(name: name, size: 5, alpha: 1e-4, beta: 0.75, k: 2, convention: .paper)
        }
        func maxPool(_ name: String) throws -> MaxPool2D<T> { try MaxPool2D<T>(name: name, rounding: .floor) }
        return [
            try Conv2D<T>(name: "conv1", inputChannels: 3, outputChannels: 96, kernel: (11, 11), stride: (4, 4)),
            ReLU<T>(name: "relu1"), try lrn("lrn1"), try maxPool("pool1"),
            try Conv2D<T>(name: "conv2", inputChannels: 96, outputChannels: 256, kernel: (5, 5), padding: (2, 2), groups: 2),
            ReLU<T>(name: "relu2"), try lrn("lrn2"), try maxPool("pool2"),
            try Conv2D<T>(name: "conv3", inputChannels: 256, outputChannels: 384, kernel: (3, 3), padding: (1, 1)),
            ReLU<T>(name: "relu3"),
            try Conv2D<T>(name: "conv4", inputChannels: 384, outputChannels: 384, kernel: (3, 3), padding: (1, 1), groups: 2),
            ReLU<T>(name: "relu4"),
            try Conv2D<T>(name: "conv5", inputChannels: 384, outputChannels: 256, kernel: (3, 3), padding: (1, 1), groups: 2),
            ReLU<T>(name: "relu5"), try maxPool("pool5"),
            try Linear<T>(name: "fc6", inputFeatures: 9216, outputFeatures: 4096), ReLU<T>(name: "relu6"),
            try Dropout<T>(name: "drop6", rate: 0.5, scaling: .paper, seed: 1, stream: 6),
            try Linear<T>(name: "fc7", inputFeatures: 4096, outputFeatures: 4096), ReLU<T>(name: "relu7"),
            try Dropout<T>(name: "drop7", rate: 0.5, scaling: .paper, seed: 1, stream: 7),
            try Linear<T>(name: "fc8", inputFeatures: 4096, outputFeatures: 1000),
        ]
    }
}
