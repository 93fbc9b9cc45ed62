import XCTest
@testable import AlexNetKit

private typealias T = GemmLayerTesting

/// Conv2D's input gradient as a convolution of the output gradient
/// (Layers/Conv2DInputGradient.swift): which layers take it, its values
/// against the literal definition, and its bits across worker counts.
final class ConvolutionInputGradientTests: XCTestCase {
    private func geometry(_ conv: Conv2D<Float>, _ shape: Shape) throws -> ConvGeometry {
        try ConvGeometry(channels: conv.inputChannels / conv.groups, height: shape[2], width: shape[3],
                         kernel: conv.kernel, stride: conv.stride, padding: conv.padding, component: conv.name)
    }

    /// Stride 1 with "same" padding and pieces no taller than the group's input
    /// channels take the convolution; everything else keeps col2im.
    func testOnlySamePaddedStrideOneLayersTakeIt() throws {
        func takes(_ inputs: Int, _ outputs: Int, kernel: Int, stride: Int, padding: Int, groups: Int = 1,
                   splits: Int = 1) throws -> Bool {
            let conv = try Conv2D<Float>(name: "c", inputChannels: inputs, outputChannels: outputs,
                                         kernel: (kernel, kernel), stride: (stride, stride),
                                         padding: (padding, padding), groups: groups, outputSplits: splits)
            return conv.adjointPlan(for: try geometry(conv, [4, inputs, 13, 13]), batch: 4) != nil
        }
        XCTAssertTrue(try takes(32, 32, kernel: 5, stride: 1, padding: 2), "layers-80sec conv2")
        XCTAssertTrue(try takes(256, 384, kernel: 3, stride: 1, padding: 1, splits: 2), "paper conv3")
        XCTAssertTrue(try takes(384, 256, kernel: 3, stride: 1, padding: 1, groups: 2), "paper conv5")
        XCTAssertFalse(try takes(1, 32, kernel: 5, stride: 1, padding: 2), "32 rows against 1 input channel")
        XCTAssertFalse(try takes(96, 256, kernel: 5, stride: 1, padding: 2, groups: 2), "paper conv2: 128 rows, 48 channels")
        XCTAssertFalse(try takes(8, 8, kernel: 3, stride: 2, padding: 1), "stride 2")
        XCTAssertFalse(try takes(8, 8, kernel: 3, stride: 1, padding: 0), "output smaller than the input")
    }

    /// `dX[n, g*Cg + c, h, w] = sum_{o in group g, i, j} W[o, c, i, j] dY[n, o, h + p - i, w + p - j]`,
    /// written out, against the layer in Float64: groups and splits (four
    /// pieces, so partials are added), a non-square plane, several images per
    /// product (small planes) and one image per product (a large plane).
    func testMatchesTheLiteralDefinition() throws {
        let cases: [(inputs: Int, outputs: Int, kernel: (Int, Int), groups: Int, splits: Int, shape: Shape)] = [
            (8, 8, (3, 3), 2, 4, [3, 8, 6, 5]),
            (4, 4, (5, 3), 1, 2, [2, 4, 7, 9]),
            (3, 2, (3, 3), 1, 1, [1, 3, 40, 36]),
        ]
        for (index, setting) in cases.enumerated() {
            let padding = ((setting.kernel.0 - 1) / 2, (setting.kernel.1 - 1) / 2)
            let conv = try Conv2D<Double>(name: "adjoint\(index)", inputChannels: setting.inputs,
                                          outputChannels: setting.outputs, kernel: setting.kernel,
                                          padding: padding, groups: setting.groups, outputSplits: setting.splits)
            T.randomise(conv, seed: 300 + UInt64(index))
            let x: Tensor<Double> = T.random(setting.shape, seed: 310 + UInt64(index))
            let y = try conv.forward(x, context: PassContext())
            XCTAssertEqual(y.shape, [setting.shape[0], setting.outputs, setting.shape[2], setting.shape[3]])
            let dy: Tensor<Double> = T.random(y.shape, seed: 320 + UInt64(index))
            let dx = try conv.backward(dy, context: PassContext())

            let (batch, height, width) = (setting.shape[0], setting.shape[2], setting.shape[3])
            let (kh, kw) = setting.kernel
            let cg = setting.inputs / setting.groups, og = setting.outputs / setting.groups
            let w = conv.weight.value
            var worst = 0.0
            for n in 0..<batch {
                for channel in 0..<setting.inputs {
                    let (group, c) = (channel / cg, channel % cg)
                    for h in 0..<height {
                        for v in 0..<width {
                            var sum = 0.0, magnitude = 0.0
                            for o in group * og ..< (group + 1) * og {
                                for i in 0..<kh {
                                    for j in 0..<kw {
                                        let (a, b) = (h + padding.0 - i, v + padding.1 - j)
                                        guard a >= 0, a < height, b >= 0, b < width else { continue }
                                        let term = w[o, c, i, j] * dy[n, o, a, b]
                                        sum += term
                                        magnitude += abs(term)
                                    }
                                }
                            }
                            let error = abs(dx[n, channel, h, v] - sum)
                            XCTAssertLessThanOrEqual(error, 1e-13 * max(magnitude, 1), "case \(index) at \([n, channel, h, v])")
                            worst = max(worst, error)
                        }
                    }
                }
            }
            print("convolutional input gradient, case \(index): worst absolute error \(worst)")
        }
    }

    /// The same bits with 1, 2 and 4 workers, in Float32, where the blocks hold
    /// several images (batch 11 of 6x6 planes), one image (36x36), and at batch 1.
    func testBitwiseIdenticalAcrossWorkerCounts() throws {
        for shape: Shape in [[11, 8, 6, 6], [3, 8, 36, 36], [1, 8, 9, 9]] {
            var reference: Tensor<Float>?
            for workers in [1, 2, 4] {
                let conv = try Conv2D<Float>(name: "bits", inputChannels: 8, outputChannels: 8, kernel: (3, 3),
                                             padding: (1, 1), groups: 2, outputSplits: 4)
                XCTAssertNotNil(conv.adjointPlan(for: try geometry(conv, shape), batch: shape[0]))
                T.randomise(conv, seed: 330)
                let context = PassContext(pool: WorkerPool(workerCount: workers), mode: .training)
                let y = try conv.forward(T.random(shape, seed: 331), context: context)
                let dx = try conv.backward(T.random(y.shape, seed: 332), context: context)
                if let reference {
                    XCTAssertTrue(dx.isBitwiseEqual(to: reference), "\(shape), \(workers) workers")
                } else {
                    reference = dx
                }
            }
        }
    }
}
