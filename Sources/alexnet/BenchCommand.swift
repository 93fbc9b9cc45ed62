import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet bench`: per-layer speed of the paper's AlexNet, forward and backward.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time every layer of the paper's AlexNet (227x227 input), forward and backward.",
        discussion: """
        Builds the paper's network (`--model paper`, two towers) as one grouped
        model, with seeded weights, and times each layer's forward and backward
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
        let spec = try ModelZoo.paper(classes: 1000, towers: 2)
        let network = try Network<T>(spec: spec, seed: 1)
        let layers = network.layers
        let pool = WorkerPool(workerCount: threads)
        let context = PassContext(pool: pool, mode: .training, step: 0)
        var input = Tensor<T>(shape: Shape([batch] + spec.inputShape.dims))
        let stream = RandomStream(seed: 2, step: 0, stream: 0)
        input.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = T(stream.uniform(i) - 0.5) } }
        let labels = (0..<batch).map { $0 % spec.classes }

        // The network's own passes, timed layer by layer: the same calls Network.forward
        // and backward make, including releasing the caches so buffers are recycled.
        var forwardTimes = [Double](repeating: .infinity, count: layers.count)
        var backwardTimes = [Double](repeating: .infinity, count: layers.count)
        var shapes: [Shape] = []
        for repetition in 0...repetitions {
            for layer in layers { layer.releaseCaches() }
            var activations = [input]
            for (i, layer) in layers.enumerated() {
                let start = DispatchTime.now()
                activations.append(try layer.forward(activations[i], context: context))
                if repetition > 0 { forwardTimes[i] = min(forwardTimes[i], seconds(since: start)) }
            }
            shapes = activations.map(\.shape)
            _ = try network.loss.forward(logits: activations.last!, labels: labels)
            activations.removeAll()
            var gradient = try network.loss.backward()
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
