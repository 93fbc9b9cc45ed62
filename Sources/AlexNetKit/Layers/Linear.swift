/// A fully connected layer, `y = x W^T + b` (the paper's fc6, fc7, fc8).
///
/// Shapes (row-major):
/// - input `[N, inputFeatures]`, or any `[N, d1, d2, ...]` whose trailing
///   dimensions multiply to `inputFeatures` (e.g. pool5's `[N, 256, 6, 6]` for
///   9216 features), read in row-major order as PyTorch's `flatten(1)` does; the
///   input gradient comes back in the input's own shape;
/// - output `[N, outputFeatures]`;
/// - ``weight`` `[outputFeatures, inputFeatures]` (PyTorch and Caffe layout);
/// - ``bias`` `[outputFeatures]` (absent when built with `bias: false`).
///
/// ## The fixed partition
/// Output features are cut into `outputSplits` equal blocks (``outputBlocks``;
/// the paper computes half of fc6, fc7 and fc8 on each GPU from all of the
/// previous layer's outputs), and each block into tiles of at most
/// ``tileSize`` features, so tiles never straddle a block. Input features are
/// cut into tiles of ``tileSize``. These boundaries depend only on the layer's
/// sizes, never on the thread count, and every task runs one matrix product on
/// its tile:
/// - forward: per output tile, `y[:, tile] = x W[tile, :]^T`, or for full tiles
///   and tiles wider than the batch `y[:, tile]^T = W[tile, :] x^T` (the weights
///   as the left operand, which BLAS runs faster there), then `+ b[tile]` (a
///   matrix-vector product for a batch of one row, which streams the weights
///   once instead of packing them: a one-image batch's outputs are therefore
///   its own bits, not necessarily those the same image gets in a larger batch);
/// - weight gradient: per output tile, `dW[tile, :] = dY[:, tile]^T x`, one
///   product whose reduction runs over the whole batch;
/// - bias gradient: per output tile, `db[tile] = dY[0, tile] + dY[1, tile] + ...`
///   in batch order;
/// - input gradient: per input tile, each block `k` gives a partial
///   `dY[:, block_k] W[block_k, tile]`; the partials are added in block order
///   (block 0 first), which is what a two-tower executor does when it adds the
///   crossed partial from the other tower. With one block there is one product.
///
/// So results are bitwise independent of the worker count, and a tower
/// executor that runs the same blocks computes the same bits.
///
/// ## State
/// The layer keeps the last forward input for backward (in both pass modes) and
/// per-worker scratch for a tile's transposed outputs and the partial input
/// gradients. One instance runs one
/// pass at a time.
public final class Linear<Element: TensorElement>: WeightedLayer {
    /// Features per tile of the fixed partition: a constant, so tile boundaries
    /// never depend on the thread count.
    public static var tileSize: Int { 256 }

    /// The layer's name in errors and reports, e.g. `"fc6"`.
    public let name: String
    /// Features per input row (the product of the input's trailing dimensions).
    public let inputFeatures: Int
    /// Features per output row.
    public let outputFeatures: Int
    /// Number of equal output-feature blocks computed as separate products.
    public let outputSplits: Int

    /// `[outputFeatures, inputFeatures]`, zero until set.
    public let weight: Parameter<Element>
    /// `[outputFeatures]`, zero until set; nil for a layer built with `bias: false`.
    public let bias: Parameter<Element>?

    /// Weight, then bias if the layer has one.
    public var parameters: [Parameter<Element>] { bias.map { [weight, $0] } ?? [weight] }

    /// The output-feature ranges of the `outputSplits` blocks, in block order
    /// (e.g. `[0..<2048, 2048..<4096]` for the paper's fc6).
    public let outputBlocks: [Range<Int>]
    /// Output-feature tiles: each block cut into tiles of at most ``tileSize``.
    private let outputTiles: [Range<Int>]
    /// Input-feature tiles of at most ``tileSize`` (for the input gradient).
    private let inputTiles: [Range<Int>]

    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?
    /// Per worker: one tile's transposed outputs `[tile, N]` (forward), or one
    /// partial input-gradient tile `[N, tile]` (backward).
    private let workerScratch = WorkerScratch<Element>()

    /// Creates a fully connected layer with zero weights and biases; set them
    /// with ``setWeight(_:)`` and ``setBias(_:)`` or through ``parameters``.
    ///
    /// - Parameters:
    ///   - name: used in every error message, e.g. `"fc6"`.
    ///   - inputFeatures: features per input row.
    ///   - outputFeatures: features per output row.
    ///   - bias: whether the layer adds a learnable bias per output feature.
    ///   - outputSplits: output-feature blocks computed as separate products; must
    ///     divide `outputFeatures`.
    /// - Throws: ``ConfigurationError`` naming the layer when a setting cannot work.
    public init(name: String, inputFeatures: Int, outputFeatures: Int, bias: Bool = true,
                outputSplits: Int = 1) throws {
        guard inputFeatures >= 1, outputFeatures >= 1 else {
            throw ConfigurationError(
                component: name,
                problem: "feature counts must be at least 1 (input \(inputFeatures), output \(outputFeatures))")
        }
        guard outputSplits >= 1, outputFeatures % outputSplits == 0 else {
            throw ConfigurationError(
                component: name,
                problem: "outputSplits \(outputSplits) must be at least 1 and divide the output features (\(outputFeatures))")
        }
        self.name = name
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        self.outputSplits = outputSplits
        self.weight = Parameter(name: "weight", value: Tensor(shape: [outputFeatures, inputFeatures]))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(shape: [outputFeatures])) : nil
        let blockSize = outputFeatures / outputSplits
        let blocks = (0..<outputSplits).map { $0 * blockSize ..< ($0 + 1) * blockSize }
        self.outputBlocks = blocks
        self.outputTiles = blocks.flatMap { block in
            Partition.tiles(count: block.count, tile: Self.tileSize).map {
                (block.lowerBound + $0.lowerBound)..<(block.lowerBound + $0.upperBound)
            }
        }
        self.inputTiles = Partition.tiles(count: inputFeatures, tile: Self.tileSize)
    }

    /// Drops what the last forward pass kept for backward, so the next pass can
    /// recycle the buffers in place (a network calls this before each forward).
    public func releaseCaches() {
        cachedInput = nil
    }

    /// `[N, outputFeatures]` for an input `[N, ...]` of `inputFeatures` features per row.
    /// - Throws: ``ShapeError`` naming the layer if the rank is below 2 or the
    ///   trailing dimensions do not multiply to `inputFeatures`.
    public func outputShape(for inputShape: Shape) throws -> Shape {
        guard inputShape.rank >= 2, inputShape.dims.dropFirst().reduce(1, *) == inputFeatures else {
            throw ShapeError(
                operation: name, argument: "input",
                expected: "[N, \(inputFeatures)] or [N, ...] with trailing dimensions multiplying to \(inputFeatures)",
                actual: inputShape)
        }
        return [inputShape[0], outputFeatures]
    }

    /// `N * inputFeatures * outputFeatures`.
    public func multiplyAdds(for inputShape: Shape) throws -> Int {
        try outputShape(for: inputShape)[0] * inputFeatures * outputFeatures
    }

    /// The weight's shape, `[outputFeatures, inputFeatures]`.
    public var weightShape: Shape { [outputFeatures, inputFeatures] }

    /// Parameters are public and can be replaced wholesale; a wrong shape must be
    /// an error naming the layer, never a read past the end of the storage.
    private func requireParameterShapes() throws {
        try weight.value.requireShape(weightShape, operation: name, argument: "weight")
        if let bias { try bias.value.requireShape([outputFeatures], operation: name, argument: "bias") }
    }

    // MARK: Forward

    /// Whether forward multiplies an output tile of a batch of several rows with
    /// the weights as BLAS's left operand, `yT[tile, N] = W[tile, in] x^T` (then
    /// written back transposed), rather than `y[N, tile] = x W[tile, in]^T`: for
    /// full tiles and for tiles wider than the batch. A function of the two sizes
    /// alone, so the choice never depends on the thread count. Measured on one
    /// Zen 5 core (GFLOP/s, `x W^T` against `W x^T`): fc6's 256-feature tiles
    /// 87 -> 134 at batch 32, 150 -> 159 at 128, 176 -> 182 at 256; a 64-feature
    /// tile 114 -> 138 at batch 32 but 165 -> 158 at 128; a 128-feature tile at
    /// batch 128 158 -> 153 (Docs/performance.md).
    static func weightsLeft(tile: Int, batch: Int) -> Bool {
        tile >= tileSize || tile > batch
    }

    /// Applies the layer to a batch.
    /// - Parameter input: `[N, inputFeatures]` or `[N, d1, d2, ...]` with `d1 * d2 * ... == inputFeatures`.
    /// - Returns: `[N, outputFeatures]`.
    /// - Throws: ``ShapeError`` naming the layer and the input's shape if it does not fit.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let shape = try outputShape(for: input.shape)
        try requireParameterShapes()
        let batch = shape[0]
        var output = Tensor<Element>.recycling(&outputBuffer, shape: shape, zeroed: false)
        defer { outputBuffer = output }
        cachedInput = input
        if batch == 0 { return output }
        let (features, outputs) = (inputFeatures, outputFeatures)
        let tiles = outputTiles
        // Per worker: one tile's transposed outputs [tile, N], where a tile takes that product.
        let transposes = batch > 1 && tiles.contains { Self.weightsLeft(tile: $0.count, batch: batch) }
        let scratch = transposes ? workerScratch.reserve(slots: context.pool.workerCount, count: Self.tileSize * batch) : []

        input.withUnsafeBufferPointer { x in
            weight.value.withUnsafeBufferPointer { w in
                withOptionalPointer(bias?.value) { b in
                    output.withUnsafeMutableBufferPointer { y in
                        let (xp, wp, yp) = (x.baseAddress!, w.baseAddress!, y.baseAddress!)
                        context.pool.parallelFor(tiles.count) { task, worker in
                            let tile = tiles[task]
                            if batch == 1 || !Self.weightsLeft(tile: tile.count, batch: batch) {
                                if batch == 1 {
                                    // One row: y[tile] = W[tile, in] x, a matrix-vector product that
                                    // streams the weights once; sgemm would first copy them into
                                    // its packed layout, which at batch 1 takes as long as the
                                    // product (fc6: 11.1 against 5.7 ms on two cores).
                                    Element.gemv(m: tile.count, n: features, alpha: 1,
                                                 a: wp + tile.lowerBound * features, lda: features,
                                                 x: xp, beta: 0, y: yp + tile.lowerBound)
                                } else {
                                    // y[N, tile] = x[N, in] x W[tile, in]^T
                                    Element.gemm(transposeA: false, transposeB: true,
                                                 m: batch, n: tile.count, k: features, alpha: 1,
                                                 a: xp, lda: features,
                                                 b: wp + tile.lowerBound * features, ldb: features,
                                                 beta: 0, c: yp + tile.lowerBound, ldc: outputs)
                                }
                                // Added after the product, so each output is round(dot) + b.
                                if let b {
                                    for n in 0..<batch {
                                        Accumulate.add(b + tile.lowerBound, into: yp + n * outputs + tile.lowerBound,
                                                       count: tile.count)
                                    }
                                }
                                return
                            }
                            // yT[tile, N] = W[tile, in] x x[N, in]^T (see weightsLeft).
                            let transposed = scratch[worker]
                            Element.gemm(transposeA: false, transposeB: true,
                                         m: tile.count, n: batch, k: features, alpha: 1,
                                         a: wp + tile.lowerBound * features, lda: features,
                                         b: xp, ldb: features, beta: 0, c: transposed, ldc: batch)
                            // y[n, tile] = yT[tile, n] (+ b[tile], after the product, so each
                            // output is round(dot) + b).
                            for n in 0..<batch {
                                let row = yp + n * outputs + tile.lowerBound
                                if let b {
                                    for r in 0..<tile.count { row[r] = transposed[r * batch + n] + b[tile.lowerBound + r] }
                                } else {
                                    for r in 0..<tile.count { row[r] = transposed[r * batch + n] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return output
    }

    // MARK: Backward

    /// Given dLoss/dOutput of the last forward, returns dLoss/dInput in the
    /// input's shape and stores the weight and bias gradients (overwriting).
    ///
    /// - Parameter outputGradient: `[N, outputFeatures]`.
    /// - Returns: the shape of the last forward's input.
    /// - Throws: ``ConfigurationError`` if no forward ran, ``ShapeError`` naming the
    ///   layer if the gradient's shape is not `[N, outputFeatures]`.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        try requireParameterShapes()
        let batch = input.shape[0]
        // Without needsInputGradient, only the parameter gradients are computed and `[0]` is returned.
        let needsInputGradient = context.needsInputGradient
        var inputGradient = Tensor<Element>.inputGradientBuffer(&inputGradientBuffer, shape: input.shape, zeroed: false,
                                                                context: context)
        defer { if context.gradientBuffers == nil && needsInputGradient { inputGradientBuffer = inputGradient } }
        for parameter in parameters where parameter.gradient.shape != parameter.value.shape {
            parameter.gradient = Tensor(shape: parameter.value.shape)  // replaced by someone; start afresh
        }
        if batch == 0 {
            // No rows: the gradients of a sum over no rows are zero.
            for parameter in parameters { parameter.gradient = Tensor(shape: parameter.value.shape) }
            return inputGradient
        }
        let (features, outputs) = (inputFeatures, outputFeatures)
        let (outTiles, inTiles, blocks) = (outputTiles, inputTiles, outputBlocks)
        let pool = context.pool
        let scratch = workerScratch.reserve(slots: pool.workerCount,
                                            count: outputSplits > 1 ? batch * Self.tileSize : 0)

        input.withUnsafeBufferPointer { x in
            outputGradient.withUnsafeBufferPointer { dy in
                let (xp, dyp) = (x.baseAddress!, dy.baseAddress!)

                // Weight and bias gradients, per output tile; both overwrite.
                weight.gradient.withUnsafeMutableBufferPointer { dw in
                    withOptionalMutablePointer(bias) { db in
                        let dwp = dw.baseAddress!
                        pool.parallelFor(outTiles.count) { task, _ in
                            let tile = outTiles[task]
                            // dW[tile, in] = dY[N, tile]^T x x[N, in]
                            Element.gemm(transposeA: true, transposeB: false,
                                         m: tile.count, n: features, k: batch, alpha: 1,
                                         a: dyp + tile.lowerBound, lda: outputs,
                                         b: xp, ldb: features,
                                         beta: 0, c: dwp + tile.lowerBound * features, ldc: features)
                            if let db {
                                // db[tile] = dY[0, tile] + dY[1, tile] + ... in batch order.
                                let target = db + tile.lowerBound
                                target.update(from: dyp + tile.lowerBound, count: tile.count)
                                for n in 1..<batch {
                                    Accumulate.add(dyp + n * outputs + tile.lowerBound, into: target, count: tile.count)
                                }
                            }
                        }
                    }
                }

                // Input gradient, per input tile: the blocks' partials added in block order.
                guard needsInputGradient else { return }
                weight.value.withUnsafeBufferPointer { w in
                    inputGradient.withUnsafeMutableBufferPointer { dx in
                        let (wp, dxp) = (w.baseAddress!, dx.baseAddress!)
                        pool.parallelFor(inTiles.count) { task, worker in
                            let tile = inTiles[task]
                            let partial = scratch[worker]
                            for (index, block) in blocks.enumerated() {
                                // Block 0 writes dX[N, tile] directly; later blocks write [N, tile]
                                // into scratch and are added row by row.
                                let (target, ldc) = index == 0 ? (dxp + tile.lowerBound, features) : (partial, tile.count)
                                // target[N, tile] = dY[N, block] x W[block, tile]
                                Element.gemm(transposeA: false, transposeB: false,
                                             m: batch, n: tile.count, k: block.count, alpha: 1,
                                             a: dyp + block.lowerBound, lda: outputs,
                                             b: wp + block.lowerBound * features + tile.lowerBound, ldb: features,
                                             beta: 0, c: target, ldc: ldc)
                                if index > 0 {
                                    for n in 0..<batch {
                                        Accumulate.add(UnsafePointer(partial + n * tile.count),
                                                       into: dxp + n * features + tile.lowerBound, count: tile.count)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}
