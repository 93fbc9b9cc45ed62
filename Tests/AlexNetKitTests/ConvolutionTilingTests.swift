import XCTest
@testable import AlexNetKit

private typealias T = GemmLayerTesting

/// Conv2D forward in tiles of output rows, for images whose im2col matrix is
/// larger than the cache (``Conv2D/outputRowTiles(_:)``).
final class ConvolutionTilingTests: XCTestCase {
    /// 16 input channels, 5x5 kernel: 400 patch rows of 40 columns, 64 KB an
    /// output row, so 16 rows a tile and 3 tiles over 40 rows (14, 13, 13).
    private func tiledConv() throws -> (Conv2D<Float>, ConvGeometry) {
        let conv = try Conv2D<Float>(name: "tiled", inputChannels: 16, outputChannels: 8, kernel: (5, 5),
                                     padding: (2, 2), groups: 2, outputSplits: 4)
        let g = try ConvGeometry(channels: 8, height: 40, width: 40, kernel: (5, 5), stride: (1, 1),
                                 padding: (2, 2), component: "tiled")
        return (conv, g)
    }

    func testTilesCoverTheRowsWithinTheByteLimit() throws {
        let g = try ConvGeometry(channels: 16, height: 40, width: 40, kernel: (5, 5), stride: (1, 1),
                                 padding: (2, 2), component: "c")
        let tiles = Conv2D<Float>.outputRowTiles(g)
        XCTAssertEqual(tiles, [0..<14, 14..<27, 27..<40])
        for tile in tiles {
            XCTAssertLessThanOrEqual(g.patchSize * tile.count * g.outputWidth * 4, Conv2D<Float>.columnBytesLimit)
        }
        let small = try ConvGeometry(channels: 32, height: 14, width: 14, kernel: (5, 5), stride: (1, 1),
                                     padding: (2, 2), component: "c")
        XCTAssertEqual(Conv2D<Float>.outputRowTiles(small), [0..<14], "layers-80sec conv2 fits: one tile")
        let paperConv1 = try ConvGeometry(channels: 3, height: 227, width: 227, kernel: (11, 11), stride: (4, 4),
                                          padding: (0, 0), component: "c")
        XCTAssertEqual(Conv2D<Float>.outputRowTiles(paperConv1).count, 5, "4.4 MB: five tiles")
        let paperConv3 = try ConvGeometry(channels: 256, height: 13, width: 13, kernel: (3, 3), stride: (1, 1),
                                          padding: (1, 1), component: "c")
        XCTAssertEqual(Conv2D<Float>.outputRowTiles(paperConv3), [0..<13], "1.6 MB, but tiles of 91 columns: one tile")
    }

    /// The tiled output against the literal sum
    /// `y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] x[n, g*Cg + c, i - 2 + u, j - 2 + v]`,
    /// at batch 1, and bitwise equal between the block path (1 worker) and the
    /// small-batch path (2 and 4 workers at batch 1 and 3).
    func testTiledForwardMatchesTheDefinitionWithTheSameBitsOnAnyWorkerCount() throws {
        let (conv, g) = try tiledConv()
        XCTAssertGreaterThan(Conv2D<Float>.outputRowTiles(g).count, 1)
        for batch in [1, 3] {
            var reference: Tensor<Float>?
            let x: Tensor<Float> = T.random([batch, 16, 40, 40], seed: 400)
            for workers in [1, 2, 4] {
                T.randomise(conv, seed: 401)
                let y = try conv.forward(x, context: PassContext(pool: WorkerPool(workerCount: workers)))
                if let reference {
                    XCTAssertTrue(y.isBitwiseEqual(to: reference), "batch \(batch), \(workers) workers")
                } else {
                    reference = y
                }
            }
            guard batch == 1 else { continue }  // the definition, written out, for one image
            let (y, w, b, xs) = (reference!.storage, conv.weight.value.storage, conv.bias!.value.storage, x.storage)
            var worst = 0.0
            for o in 0..<8 {
                let group = o / 4
                for i in 0..<40 {
                    for j in 0..<40 {
                        var sum = Double(b[o]), magnitude = abs(Double(b[o]))
                        for c in 0..<8 {
                            for u in 0..<5 {
                                let h = i - 2 + u
                                guard h >= 0, h < 40 else { continue }
                                for v in 0..<5 {
                                    let k = j - 2 + v
                                    guard k >= 0, k < 40 else { continue }
                                    let term = Double(w[((o * 8 + c) * 5 + u) * 5 + v])
                                        * Double(xs[((group * 8 + c) * 40 + h) * 40 + k])
                                    sum += term
                                    magnitude += abs(term)
                                }
                            }
                        }
                        let error = abs(Double(y[(o * 40 + i) * 40 + j]) - sum)
                        XCTAssertLessThanOrEqual(error, 201 * 0x1p-24 * magnitude, "at \([o, i, j])")
                        worst = max(worst, error)
                    }
                }
            }
            print("tiled forward, batch \(batch): worst absolute error \(worst)")
        }
    }

    /// Backward sums the weight gradient over the same tiles: against
    /// `dW[o, c, u, v] = sum_{n, i, j} dY[n, o, i, j] x[n, g*Cg + c, i - 2 + u, j - 2 + v]`
    /// (two images, so two gradient chunks are added), and every gradient
    /// bitwise the same on 1, 2 and 4 workers.
    func testTiledWeightGradientMatchesTheDefinitionWithTheSameBitsOnAnyWorkerCount() throws {
        let (conv, _) = try tiledConv()
        let x: Tensor<Float> = T.random([2, 16, 40, 40], seed: 410)
        let dy: Tensor<Float> = T.random([2, 8, 40, 40], seed: 411)
        var reference: (Tensor<Float>, Tensor<Float>)?
        for workers in [1, 2, 4] {
            T.randomise(conv, seed: 412)
            let context = PassContext(pool: WorkerPool(workerCount: workers), mode: .training)
            _ = try conv.forward(x, context: context)
            let dx = try conv.backward(dy, context: context)
            if let (dw, dxReference) = reference {
                XCTAssertTrue(conv.weight.gradient.isBitwiseEqual(to: dw), "weight gradient, \(workers) workers")
                XCTAssertTrue(dx.isBitwiseEqual(to: dxReference), "input gradient, \(workers) workers")
            } else {
                reference = (conv.weight.gradient, dx)
            }
        }
        let (dw, xs, g) = (reference!.0.storage, x.storage, dy.storage)
        var worst = 0.0
        for o in 0..<8 {
            let group = o / 4
            for c in 0..<8 {
                for u in 0..<5 {
                    for v in 0..<5 {
                        var sum = 0.0, magnitude = 0.0
                        for n in 0..<2 {
                            for i in 0..<40 {
                                let h = i - 2 + u
                                guard h >= 0, h < 40 else { continue }
                                for j in 0..<40 {
                                    let k = j - 2 + v
                                    guard k >= 0, k < 40 else { continue }
                                    let term = Double(g[((n * 8 + o) * 40 + i) * 40 + j])
                                        * Double(xs[((n * 16 + group * 8 + c) * 40 + h) * 40 + k])
                                    sum += term
                                    magnitude += abs(term)
                                }
                            }
                        }
                        let error = abs(Double(dw[((o * 8 + c) * 5 + u) * 5 + v]) - sum)
                        XCTAssertLessThanOrEqual(error, 3201 * 0x1p-24 * magnitude, "at \([o, c, u, v])")
                        worst = max(worst, error / max(magnitude, 1e-30))
                    }
                }
            }
        }
        print("tiled weight gradient: worst error relative to sum |terms| \(worst)")
    }
}
