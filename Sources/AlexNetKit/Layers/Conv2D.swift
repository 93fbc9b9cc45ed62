/// A 2-D convolution (cross-correlation, as in PyTorch, Caffe and cuda-convnet),
/// computed as im2col + one matrix product per piece of work.
///
/// Shapes (NCHW, row-major):
/// - input `[N, C, H, W]` with `C == inputChannels`;
/// - output `[N, outputChannels, OH, OW]`, `OH = floor((H + 2 ph - kh) / sh) + 1`
///   and likewise `OW` (see ``ConvGeometry``);
/// - ``weight`` `[outputChannels, inputChannels / groups, kh, kw]`;
/// - ``bias`` `[outputChannels]` (absent when built with `bias: false`).
///
/// `y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] * x[n, g*Cg + c, i*sh - ph + u, j*sw - pw + v]`
/// where `g = o / (outputChannels / groups)` is the group of output channel `o`,
/// `Cg = inputChannels / groups`, and pixels outside the image are 0.
///
/// ## Groups and output splits: the fixed partition
/// The output channels are computed in *pieces*: contiguous blocks of rows of
/// the weight matrix, each computed by one `gemm` over all `Cg * kh * kw` input
/// rows of its group. Two settings cut the output channels:
/// - `groups` (paper conv2, conv4, conv5: 2): group `g` sees only input channels
///   `g*Cg ..< (g+1)*Cg` and produces output channels
///   `g*Og ..< (g+1)*Og`, `Og = outputChannels / groups`.
/// - `outputSplits` (paper conv3: 2, with `groups == 1`): the output channels are
///   cut into `outputSplits` equal blocks (``outputBlocks``), as the paper
///   splits conv3's 384 kernels between two GPUs, each seeing all 256 inputs.
///
/// The pieces are the finer of the two cuts, so `outputSplits` must divide
/// `groups` or be a multiple of it; there are `max(groups, outputSplits)` pieces
/// of `outputChannels / max(groups, outputSplits)` rows, each inside one group
/// and one block. In forward a piece's rows are a plain row block of the
/// product, so its outputs are the same dot products as in one big `gemm`.
/// In backward, several pieces of one group all read that group's input
/// channels, so each contributes a *partial* input gradient: piece `p`'s is
/// `col2im(W_p^T dY_p)`, an image-space tensor, and the group's input gradient
/// is their sum added in piece order (piece 0 first, then `+ partial_1`, ...).
/// A two-tower executor that gives each tower its own block computes exactly
/// these partials on its own device and adds the crossed one in the same order,
/// which is why its result can be bitwise identical to this layer's.
///
/// ## Determinism
/// Every result is bitwise independent of the worker count: forward and the
/// input gradient are one task per image; weight and bias gradients are summed
/// over the fixed batch chunks of ``Partition/gradientChunks(batch:)`` (each
/// chunk adds its images in order into its own buffer, then the chunk buffers
/// are added in chunk order). Nothing depends on which worker runs a task.
///
/// ## State
/// The layer keeps the last forward input for backward (in both pass modes, so
/// gradient checks can run in inference mode) and per-worker im2col buffers
/// that grow to the largest shape seen and are reused. One instance runs one
/// pass at a time; it is not safe to call it from two threads at once.
public final class Conv2D<Element: TensorElement>: WeightedLayer {
    /// The layer's name in errors and reports, e.g. `"conv1"`.
    public let name: String
    /// `C`, the channels of the input `[N, C, H, W]`.
    public let inputChannels: Int
    /// The channels of the output `[N, outputChannels, OH, OW]`.
    public let outputChannels: Int
    /// `(kh, kw)`, the kernel's height and width.
    public let kernel: (Int, Int)
    /// `(sh, sw)`, the step between windows, vertical then horizontal.
    public let stride: (Int, Int)
    /// `(ph, pw)`, zero rows added above and below, zero columns left and right.
    public let padding: (Int, Int)
    /// Channel groups; input and output channels are split evenly between them.
    public let groups: Int
    /// Number of equal output-channel blocks computed as separate matrix
    /// products (see the type's documentation); 1 means one block per group.
    public let outputSplits: Int

    /// `[outputChannels, inputChannels / groups, kh, kw]`, zero until set.
    public let weight: Parameter<Element>
    /// `[outputChannels]`, zero until set; nil for a layer built with `bias: false`.
    public let bias: Parameter<Element>?

    /// Weight, then bias if the layer has one.
    public var parameters: [Parameter<Element>] { bias.map { [weight, $0] } ?? [weight] }

    /// The output-channel ranges of the `outputSplits` blocks, in block order
    /// (e.g. `[0..<192, 192..<384]` for the paper's conv3 with `outputSplits: 2`).
    public var outputBlocks: [Range<Int>] {
        let size = outputChannels / outputSplits
        return (0..<outputSplits).map { $0 * size ..< ($0 + 1) * size }
    }

    /// The pieces of each group, as output-channel (weight-row) ranges in piece order.
    let piecesByGroup: [[Range<Int>]]
    /// Rows of one piece (all pieces have the same).
    var pieceRows: Int { piecesByGroup[0][0].count }

    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?
    /// Per worker: im2col columns, then (backward, several pieces per group) one
    /// group's partial input gradient.
    private let workerScratch = WorkerScratch<Element>()
    /// The weights as the convolutional input gradient reads them (Conv2DInputGradient.swift).
    let adjointWeightScratch = WorkerScratch<Element>()
    /// Per worker: the convolutional input gradient's unrolled output gradients and product.
    let adjointScratch = WorkerScratch<Element>()
    /// Per gradient chunk: that chunk's weight-gradient sum.
    private let chunkWeightScratch = WorkerScratch<Element>()
    /// Per gradient chunk: that chunk's bias-gradient sum.
    private let chunkBiasScratch = WorkerScratch<Element>()

    /// Creates a convolution with zero weights and biases; set them with
    /// ``setWeight(_:)`` and ``setBias(_:)`` or through ``parameters``.
    ///
    /// - Parameters:
    ///   - name: used in every error message, e.g. `"conv3"`.
    ///   - inputChannels: `C` of the input `[N, C, H, W]`.
    ///   - outputChannels: channels of the output.
    ///   - kernel: `(kh, kw)`.
    ///   - stride: `(sh, sw)`, default `(1, 1)`.
    ///   - padding: `(ph, pw)` zero padding on each side, default `(0, 0)`.
    ///   - groups: divides both channel counts; default 1.
    ///   - bias: whether the layer adds a learnable bias per output channel.
    ///   - outputSplits: output-channel blocks computed as separate products;
    ///     must divide `outputChannels` and divide or be a multiple of `groups`.
    /// - Throws: ``ConfigurationError`` naming the layer when a setting cannot work.
    public init(name: String, inputChannels: Int, outputChannels: Int, kernel: (Int, Int),
                stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), groups: Int = 1,
                bias: Bool = true, outputSplits: Int = 1) throws {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError(component: name, problem: problem) }
        guard inputChannels >= 1, outputChannels >= 1 else {
            throw fail("channel counts must be at least 1 (input \(inputChannels), output \(outputChannels))")
        }
        guard kernel.0 >= 1, kernel.1 >= 1 else { throw fail("kernel \(kernel.0)x\(kernel.1) must be at least 1x1") }
        guard stride.0 >= 1, stride.1 >= 1 else { throw fail("stride \(stride.0)x\(stride.1) must be at least 1x1") }
        guard padding.0 >= 0, padding.1 >= 0 else {
            throw fail("padding \(padding.0)x\(padding.1) must not be negative")
        }
        guard groups >= 1 else { throw fail("groups is \(groups); it must be at least 1") }
        guard inputChannels % groups == 0, outputChannels % groups == 0 else {
            throw fail("groups \(groups) must divide both the input channels (\(inputChannels)) "
                       + "and the output channels (\(outputChannels))")
        }
        guard outputSplits >= 1 else { throw fail("outputSplits is \(outputSplits); it must be at least 1") }
        guard outputChannels % outputSplits == 0 else {
            throw fail("outputSplits \(outputSplits) must divide the output channels (\(outputChannels))")
        }
        guard outputSplits % groups == 0 || groups % outputSplits == 0 else {
            throw fail("outputSplits \(outputSplits) must divide groups (\(groups)) or be a multiple of it, "
                       + "so that every output block lies inside one group or is a whole number of groups")
        }
        self.name = name
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.outputSplits = outputSplits
        self.weight = Parameter(name: "weight", value: Tensor(
            shape: [outputChannels, inputChannels / groups, kernel.0, kernel.1]))
        self.bias = bias ? Parameter(name: "bias", value: Tensor(shape: [outputChannels])) : nil

        let pieceCount = max(groups, outputSplits)
        let rows = outputChannels / pieceCount
        let piecesPerGroup = pieceCount / groups
        self.piecesByGroup = (0..<groups).map { group in
            (0..<piecesPerGroup).map { piece in
                let start = (group * piecesPerGroup + piece) * rows
                return start..<(start + rows)
            }
        }
    }

    /// Drops what the last forward pass kept for backward, so the next pass can
    /// recycle the buffers in place (a network calls this before each forward).
    public func releaseCaches() {
        cachedInput = nil
    }

    /// `[N, outputChannels, OH, OW]` for an input `[N, inputChannels, H, W]`.
    /// - Throws: ``ShapeError`` naming the layer for a wrong rank or channel count,
    ///   an empty image, or an image smaller than the kernel after padding.
    public func outputShape(for inputShape: Shape) throws -> Shape {
        let g = try geometry(for: inputShape)
        return [inputShape[0], outputChannels, g.outputHeight, g.outputWidth]
    }

    /// `N * outputChannels * OH * OW * (inputChannels / groups) * kh * kw`.
    public func multiplyAdds(for inputShape: Shape) throws -> Int {
        let g = try geometry(for: inputShape)
        return inputShape[0] * outputChannels * g.outputPlane * g.patchSize
    }

    /// The per-group geometry for an input shape, with errors that name this layer.
    private func geometry(for shape: Shape) throws -> ConvGeometry {
        guard shape.rank == 4, shape[1] == inputChannels else {
            throw ShapeError(operation: name, argument: "input", expected: "[N, \(inputChannels), H, W]", actual: shape)
        }
        let (height, width) = (shape[2], shape[3])
        let (minHeight, minWidth) = (max(1, kernel.0 - 2 * padding.0), max(1, kernel.1 - 2 * padding.1))
        guard height >= minHeight, width >= minWidth else {
            throw ShapeError(
                operation: name, argument: "input",
                expected: "[N, \(inputChannels), H, W] with H >= \(minHeight) and W >= \(minWidth) "
                    + "(kernel \(kernel.0)x\(kernel.1), padding \(padding.0)x\(padding.1))",
                actual: shape)
        }
        return try ConvGeometry(channels: inputChannels / groups, height: height, width: width,
                                kernel: kernel, stride: stride, padding: padding, component: name)
    }

    /// The weight's shape, `[outputChannels, inputChannels / groups, kh, kw]`.
    public var weightShape: Shape { [outputChannels, inputChannels / groups, kernel.0, kernel.1] }

    /// Parameters are public and can be replaced wholesale; a wrong shape must be
    /// an error naming the layer, never a read past the end of the storage.
    private func requireParameterShapes() throws {
        try weight.value.requireShape(weightShape, operation: name, argument: "weight")
        if let bias { try bias.value.requireShape([outputChannels], operation: name, argument: "bias") }
    }

    // MARK: Forward

    /// Convolves a batch.
    /// - Parameter input: `[N, inputChannels, H, W]`.
    /// - Returns: `[N, outputChannels, OH, OW]`.
    /// - Throws: ``ShapeError`` naming the layer and the input's shape if it does not fit.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        try input.requireShape([nil, inputChannels, nil, nil], operation: name)
        try requireParameterShapes()
        let g = try geometry(for: input.shape)
        let batch = input.shape[0]
        var output = Tensor<Element>.recycling(&outputBuffer, shape: [batch, outputChannels, g.outputHeight, g.outputWidth], zeroed: false)
        defer { outputBuffer = output }
        cachedInput = input
        if batch == 0 { return output }

        let pool = context.pool
        let pieces = piecesByGroup
        let blocks = Self.imageBlocks(batch: batch, outputPlane: g.outputPlane, patchSize: g.patchSize)
        let tiles = Self.outputRowTiles(g)
        if blocks.count < pool.workerCount, blocks.allSatisfy({ $0.count == 1 }), pieces.count * pieces[0].count * tiles.count > 1 {
            forwardSmallBatch(input, geometry: g, output: &output, pool: pool)
            return output
        }
        let widest = blocks.map(\.count).max()! * g.outputPlane
        // Several images per product need a [rows, columns] buffer for the product.
        let productRows = blocks.count < batch ? pieceRows : 0
        let scratch = workerScratch.reserve(slots: pool.workerCount, count: (g.patchSize + productRows) * widest)
        let groupImage = g.channels * g.height * g.width
        let imageCount = inputChannels * g.height * g.width
        let outputImageCount = outputChannels * g.outputPlane
        let plane = g.outputPlane

        input.withUnsafeBufferPointer { x in
            weight.value.withUnsafeBufferPointer { w in
                withOptionalPointer(bias?.value) { b in
                    output.withUnsafeMutableBufferPointer { y in
                        let (xp, wp, yp) = (x.baseAddress!, w.baseAddress!, y.baseAddress!)
                        pool.parallelFor(blocks.count) { task, worker in
                            let images = blocks[task]
                            let columns = images.count * plane
                            let col = scratch[worker], product = scratch[worker] + g.patchSize * widest
                            if images.count == 1 && tiles.count > 1 {
                                // One image whose matrix is larger than the cache: a tile of output
                                // rows at a time, each unrolled and multiplied while it is cached.
                                let n = images.lowerBound
                                for group in 0..<pieces.count {
                                    for tile in tiles {
                                        let tileColumns = tile.count * g.outputWidth
                                        im2col(image: xp + n * imageCount + group * groupImage, geometry: g, col: col,
                                               columnStride: tileColumns, outputRows: tile, outputRowsOnly: true)
                                        for rows in pieces[group] {
                                            // out[rows, tile] = W[rows, patch] x col[patch, tile], in place.
                                            Element.gemm(transposeA: false, transposeB: false,
                                                         m: rows.count, n: tileColumns, k: g.patchSize, alpha: 1,
                                                         a: wp + rows.lowerBound * g.patchSize, lda: g.patchSize,
                                                         b: col, ldb: tileColumns, beta: 0,
                                                         c: yp + n * outputImageCount + rows.lowerBound * plane
                                                             + tile.lowerBound * g.outputWidth,
                                                         ldc: plane)
                                        }
                                    }
                                }
                                if let b { self.addBias(b, images: images, output: yp, plane: plane) }
                                return
                            }
                            for group in 0..<pieces.count {
                                // col[patch, columns]: the block's images side by side.
                                for (j, n) in images.enumerated() {
                                    im2col(image: xp + n * imageCount + group * groupImage, geometry: g,
                                           col: col + j * plane, columnStride: columns)
                                }
                                for rows in pieces[group] {
                                    let weights = wp + rows.lowerBound * g.patchSize
                                    if images.count == 1 {
                                        // out[rows, plane] = W[rows, patch] x col[patch, plane], in place.
                                        Element.gemm(transposeA: false, transposeB: false,
                                                     m: rows.count, n: plane, k: g.patchSize, alpha: 1,
                                                     a: weights, lda: g.patchSize, b: col, ldb: plane, beta: 0,
                                                     c: yp + images.lowerBound * outputImageCount + rows.lowerBound * plane,
                                                     ldc: plane)
                                        continue
                                    }
                                    // product[rows, columns] = W[rows, patch] x col[patch, columns],
                                    // then each image's [rows, plane] block goes to its output.
                                    Element.gemm(transposeA: false, transposeB: false,
                                                 m: rows.count, n: columns, k: g.patchSize, alpha: 1,
                                                 a: weights, lda: g.patchSize, b: col, ldb: columns, beta: 0,
                                                 c: product, ldc: columns)
                                    // The bias is added in the same pass (the bits of a copy, then addBias).
                                    for (j, n) in images.enumerated() {
                                        for r in 0..<rows.count {
                                            let target = yp + n * outputImageCount + (rows.lowerBound + r) * plane
                                            let source = product + r * columns + j * plane
                                            if let b {
                                                Accumulate.add(b[rows.lowerBound + r], to: source, into: target, count: plane)
                                            } else {
                                                target.update(from: source, count: plane)
                                            }
                                        }
                                    }
                                }
                            }
                            // Not folded into the product with beta = 1 (see addBias).
                            if let b, images.count == 1 { self.addBias(b, images: images, output: yp, plane: plane) }
                        }
                    }
                }
            }
        }
        return output
    }

    // MARK: Image blocks

    /// Columns one matrix product aims at: below about a thousand, BLAS runs
    /// far from its peak (measured: 55-70 GFLOP/s on 14x14 planes one image at
    /// a time, against 145-175 on AlexNet's 13x13 to 55x55 layers).
    static var targetColumns: Int { 1024 }

    /// The most bytes one product's im2col matrix may take: 1 MiB, so that
    /// im2col writes it and BLAS packs it from a core's L2 cache rather than
    /// from memory. Measured on an Intel Xeon (Ice Lake, 1.25 MiB L2): with the
    /// limit, `layers-80sec` conv3 (7x7 planes, 800 rows) runs at 140 GFLOP/s
    /// against 117 with 20 images per product, and the paper net's conv3-conv5
    /// forward 10-20% faster (Docs/performance.md).
    static var columnBytesLimit: Int { 1 << 20 }

    /// Images whose im2col columns go side by side into one product: as many as
    /// reach ``targetColumns`` columns, but no more than keep the matrix within
    /// ``columnBytesLimit``; at least 1. A function of the layer's geometry
    /// alone, so the partition never depends on the worker count.
    static func imagesPerProduct(outputPlane: Int, patchSize: Int) -> Int {
        let plane = max(outputPlane, 1)
        let byColumns = targetColumns / plane
        let byBytes = columnBytesLimit / (max(patchSize, 1) * plane * MemoryLayout<Element>.stride)
        return max(1, min(byColumns, byBytes))
    }

    /// `0..<batch` in consecutive blocks of ``imagesPerProduct(outputPlane:patchSize:)``
    /// images (the last may be shorter): the tasks of forward and the input gradient.
    static func imageBlocks(batch: Int, outputPlane: Int, patchSize: Int) -> [Range<Int>] {
        Partition.tiles(count: batch, tile: imagesPerProduct(outputPlane: outputPlane, patchSize: patchSize))
    }

    /// Forward's tiles of output rows for one image: as few equal tiles as keep
    /// each tile's im2col matrix within ``columnBytesLimit``, so that each is
    /// unrolled and multiplied while it is in a core's cache; but a single tile
    /// (the whole plane) when the matrix fits, or when the tiles would be
    /// narrower than ``minimumTileColumns``. On the paper net only conv1
    /// (4.4 MB, 3025 columns) is tiled: five tiles of 11 rows. A function
    /// of the geometry alone, like the image blocks.
    static func outputRowTiles(_ g: ConvGeometry) -> [Range<Int>] {
        let rowBytes = max(1, g.patchSize * g.outputWidth * MemoryLayout<Element>.stride)
        let rowsPerTile = max(1, columnBytesLimit / rowBytes)
        if rowsPerTile >= g.outputHeight { return [0..<g.outputHeight] }
        let tiles = Partition.ranges(count: g.outputHeight, parts: (g.outputHeight + rowsPerTile - 1) / rowsPerTile)
        let narrowest = tiles.map(\.count).min()! * g.outputWidth
        return narrowest < minimumTileColumns ? [0..<g.outputHeight] : tiles
    }

    /// The narrowest tile ``outputRowTiles(_:)`` makes: products of fewer
    /// columns ran slower than the whole plane from memory (paper conv2-conv5
    /// at batch 1 in tiles of 78-216 columns: 11-25% slower forward).
    static var minimumTileColumns: Int { 512 }

    /// Forward for a batch of fewer one-image blocks than workers (batch 1, say).
    /// The block path's products (one per image, group, tile of output rows and
    /// piece of output channels) are listed with the pieces innermost and cut
    /// into one consecutive share per worker. Each worker unrolls every tile its
    /// share touches into its own scratch and multiplies it there, so a matrix
    /// stays in the cache of the core that wrote it and no barrier separates the
    /// unrolling from the products; a tile split between two shares is unrolled
    /// by both (at most one per worker). Every product has the arguments the
    /// block path gives it, and the bias is added to each product's block after
    /// it, so the output is bitwise the same for any worker count.
    private func forwardSmallBatch(_ input: Tensor<Element>, geometry g: ConvGeometry, output: inout Tensor<Element>,
                                   pool: WorkerPool) {
        let batch = input.shape[0], plane = g.outputPlane
        let groupImage = g.channels * g.height * g.width
        let imageCount = inputChannels * g.height * g.width
        let outputImageCount = outputChannels * plane
        let tiles = Self.outputRowTiles(g)
        let tiled = tiles.count > 1
        // (image, group, tile index, piece of output rows), pieces innermost.
        let products = (0..<batch).flatMap { n in
            piecesByGroup.enumerated().flatMap { group, pieces in
                tiles.indices.flatMap { tile in pieces.map { (n, group, tile, $0) } }
            }
        }
        let shares = Partition.ranges(count: products.count, parts: pool.workerCount)
        let widestTile = tiles.map(\.count).max()! * g.outputWidth
        let scratch = workerScratch.reserve(slots: pool.workerCount, count: g.patchSize * widestTile)
        input.withUnsafeBufferPointer { x in
            weight.value.withUnsafeBufferPointer { w in
                withOptionalPointer(bias?.value) { b in
                    output.withUnsafeMutableBufferPointer { y in
                        let (xp, wp, yp) = (x.baseAddress!, w.baseAddress!, y.baseAddress!)
                        pool.parallelFor(shares.count) { share, worker in
                            let col = scratch[worker]
                            var unrolled: (n: Int, group: Int, tile: Int)? = nil
                            for (n, group, tileIndex, rows) in products[shares[share]] {
                                let tile = tiles[tileIndex]
                                let tileColumns = tile.count * g.outputWidth
                                if unrolled.map({ $0 != (n, group, tileIndex) }) ?? true {
                                    let image = xp + n * imageCount + group * groupImage
                                    if tiled {
                                        im2col(image: image, geometry: g, col: col, columnStride: tileColumns,
                                               outputRows: tile, outputRowsOnly: true)
                                    } else {
                                        im2col(image: image, geometry: g, col: col)
                                    }
                                    unrolled = (n, group, tileIndex)
                                }
                                // out[rows, tile] = W[rows, patch] x col[patch, tile], in place.
                                let out = yp + n * outputImageCount + rows.lowerBound * plane + tile.lowerBound * g.outputWidth
                                Element.gemm(transposeA: false, transposeB: false,
                                             m: rows.count, n: tileColumns, k: g.patchSize, alpha: 1,
                                             a: wp + rows.lowerBound * g.patchSize, lda: g.patchSize,
                                             b: col, ldb: tileColumns, beta: 0, c: out, ldc: plane)
                                if let b {
                                    for (r, o) in rows.enumerated() {
                                        Accumulate.add(b[o], into: out + r * plane, count: tileColumns)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds each output channel's bias to its plane of `images`' outputs in `y`
    /// (`[N, outputChannels, plane]`), after the product: every output is
    /// round(dot) + b whatever BLAS's blocking.
    private func addBias(_ b: UnsafePointer<Element>, images: Range<Int>, output y: UnsafeMutablePointer<Element>, plane: Int) {
        for n in images {
            let out = y + n * outputChannels * plane
            for o in 0..<outputChannels {
                Accumulate.add(b[o], into: out + o * plane, count: plane)
            }
        }
    }

    /// A gradient chunk's images in blocks of ``imagesPerProduct(outputPlane:patchSize:)``.
    static func imageBlocks(within images: Range<Int>, outputPlane: Int, patchSize: Int) -> [Range<Int>] {
        imageBlocks(batch: images.count, outputPlane: outputPlane, patchSize: patchSize).map {
            (images.lowerBound + $0.lowerBound)..<(images.lowerBound + $0.upperBound)
        }
    }

    // MARK: Backward

    /// Given dLoss/dOutput of the last forward, returns dLoss/dInput and stores
    /// the weight and bias gradients (overwriting, not accumulating).
    ///
    /// - Parameter outputGradient: `[N, outputChannels, OH, OW]`, the shape forward returned.
    /// - Returns: `[N, inputChannels, H, W]`.
    /// - Throws: ``ConfigurationError`` if no forward ran, ``ShapeError`` naming the
    ///   layer if the gradient's shape is not the last output's.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        try requireParameterShapes()
        let g = try geometry(for: input.shape)
        let batch = input.shape[0]
        // Without needsInputGradient, only the parameter gradients are computed and `[0]` is returned.
        let needsInputGradient = context.needsInputGradient
        // Stride 1 and "same" padding: dX as a convolution of dY, which writes every
        // element; otherwise col2im adds into a zeroed buffer.
        let adjoint = needsInputGradient ? adjointPlan(for: g, batch: batch) : nil
        var inputGradient = Tensor<Element>.inputGradientBuffer(&inputGradientBuffer, shape: input.shape,
                                                                zeroed: adjoint == nil, context: context)
        defer { if context.gradientBuffers == nil && needsInputGradient { inputGradientBuffer = inputGradient } }
        if batch == 0 {
            // No images: the gradients of a sum over no images are zero.
            weight.gradient = Tensor(shape: weight.value.shape)
            if let bias { bias.gradient = Tensor(shape: bias.value.shape) }
            return inputGradient
        }

        let pool = context.pool
        let pieces = piecesByGroup
        let severalPieces = pieces[0].count > 1
        let plane = g.outputPlane
        let blocks = Self.imageBlocks(batch: batch, outputPlane: plane, patchSize: g.patchSize)
        let widest = blocks.map(\.count).max()! * plane
        let colCount = g.patchSize * widest
        // Several images per product gather their output gradients into [rows, columns].
        let gatherCount = blocks.count < batch ? pieceRows * widest : 0
        let groupImage = g.channels * g.height * g.width
        let imageCount = inputChannels * g.height * g.width
        let outputImageCount = outputChannels * plane
        let scratch = workerScratch.reserve(slots: pool.workerCount,
                                            count: colCount + gatherCount + (severalPieces ? groupImage : 0))
        let chunks = Partition.gradientChunks(batch: batch)
        let tiles = Self.outputRowTiles(g)
        let weightCount = weight.value.count
        let chunkWeights = chunkWeightScratch.reserve(slots: chunks.count, count: weightCount)
        let chunkBiases = chunkBiasScratch.reserve(slots: chunks.count, count: outputChannels)
        let hasBias = bias != nil
        let adjointWorkerScratch = adjoint.map {
            adjointScratch.reserve(slots: pool.workerCount, count: adjointScratchCount($0, geometry: g))
        }
        let adjointWeights = adjoint.map { _ in adjointWeightScratch.reserve(slots: 1, count: weight.value.count)[0] }

        input.withUnsafeBufferPointer { x in
            weight.value.withUnsafeBufferPointer { w in
                outputGradient.withUnsafeBufferPointer { dy in
                    inputGradient.withUnsafeMutableBufferPointer { dx in
                        let (xp, wp, dyp) = (x.baseAddress!, w.baseAddress!, dy.baseAddress!)
                        let dxp = dx.baseAddress  // nil when the input gradient is skipped

                        /// dY_p of a block's images for the piece's rows, as one [rows, columns]
                        /// matrix with its row stride: in place for one image, gathered otherwise.
                        func outputGradientRows(_ images: Range<Int>, _ rows: Range<Int>,
                                                into gathered: UnsafeMutablePointer<Element>) -> (UnsafePointer<Element>, Int) {
                            if images.count == 1 {
                                return (dyp + images.lowerBound * outputImageCount + rows.lowerBound * plane, plane)
                            }
                            let columns = images.count * plane
                            for (j, n) in images.enumerated() {
                                for r in 0..<rows.count {
                                    (gathered + r * columns + j * plane)
                                        .update(from: dyp + n * outputImageCount + (rows.lowerBound + r) * plane, count: plane)
                                }
                            }
                            return (UnsafePointer(gathered), columns)
                        }

                        if let adjoint, let adjointWeights, let adjointWorkerScratch {
                            self.adjointWeights(wp, into: adjointWeights, geometry: g, pool: pool)
                            adjointInputGradient(dyp, adjoint: adjointWeights, into: dxp!, plan: adjoint, geometry: g,
                                                 scratch: adjointWorkerScratch, pool: pool)
                        }
                        // Otherwise the input gradient by col2im, one task per block of images.
                        // dx starts zeroed, as col2im accumulates overlapping windows into it.
                        pool.parallelFor(needsInputGradient && adjoint == nil ? blocks.count : 0) { task, worker in
                            let images = blocks[task]
                            let columns = images.count * plane
                            let col = scratch[worker], gathered = col + colCount, partial = gathered + gatherCount
                            for group in 0..<pieces.count {
                                for (index, rows) in pieces[group].enumerated() {
                                    let (dY, ldy) = outputGradientRows(images, rows, into: gathered)
                                    // col[patch, columns] = W_p^T[patch, rows] x dY_p[rows, columns]
                                    Element.gemm(transposeA: true, transposeB: false,
                                                 m: g.patchSize, n: columns, k: rows.count, alpha: 1,
                                                 a: wp + rows.lowerBound * g.patchSize, lda: g.patchSize,
                                                 b: dY, ldb: ldy, beta: 0, c: col, ldc: columns)
                                    for (j, n) in images.enumerated() {
                                        let dGroup = dxp! + n * imageCount + group * groupImage
                                        if index == 0 {
                                            col2im(col: col + j * plane, geometry: g, image: dGroup, columnStride: columns)
                                        } else {
                                            // A later piece's partial input gradient, formed on its own and
                                            // then added, in piece order, as a tower crossing would add it.
                                            partial.update(repeating: 0, count: groupImage)
                                            col2im(col: col + j * plane, geometry: g, image: partial, columnStride: columns)
                                            Accumulate.add(UnsafePointer(partial), into: dGroup, count: groupImage)
                                        }
                                    }
                                }
                            }
                        }

                        // Weight and bias gradients: each fixed batch chunk sums its blocks of
                        // images in order into its own buffer (beta 1 after the chunk's first).
                        pool.parallelFor(chunks.count) { chunk, worker in
                            let col = scratch[worker], gathered = col + colCount
                            let dW = chunkWeights[chunk]
                            let dB = chunkBiases[chunk]
                            let chunkImages = chunks[chunk]
                            if chunkImages.isEmpty {
                                dW.update(repeating: 0, count: weightCount)
                                dB.update(repeating: 0, count: outputChannels)
                                return
                            }
                            for images in Self.imageBlocks(within: chunkImages, outputPlane: plane, patchSize: g.patchSize) {
                                let first = images.lowerBound == chunkImages.lowerBound
                                let columns = images.count * plane
                                for group in 0..<pieces.count {
                                    if images.count == 1 && tiles.count > 1 {
                                        // As in forward, a tile of output rows at a time: each tile's
                                        // columns are a slice of the sum over the image's columns.
                                        let n = images.lowerBound
                                        for (t, tile) in tiles.enumerated() {
                                            let tileColumns = tile.count * g.outputWidth
                                            im2col(image: xp + n * imageCount + group * groupImage, geometry: g, col: col,
                                                   columnStride: tileColumns, outputRows: tile, outputRowsOnly: true)
                                            for rows in pieces[group] {
                                                // dW_p^T[patch, rows] (+)= col[patch, tile] x dY_p[rows, tile]^T
                                                Element.gemm(transposeA: false, transposeB: true,
                                                             m: g.patchSize, n: rows.count, k: tileColumns, alpha: 1,
                                                             a: col, lda: tileColumns,
                                                             b: dyp + n * outputImageCount + rows.lowerBound * plane
                                                                 + tile.lowerBound * g.outputWidth,
                                                             ldb: plane, beta: first && t == 0 ? 0 : 1,
                                                             c: dW + rows.lowerBound, ldc: outputChannels)
                                            }
                                        }
                                        continue
                                    }
                                    for (j, n) in images.enumerated() {
                                        im2col(image: xp + n * imageCount + group * groupImage, geometry: g,
                                               col: col + j * plane, columnStride: columns)
                                    }
                                    for rows in pieces[group] {
                                        let (dY, ldy) = outputGradientRows(images, rows, into: gathered)
                                        // dW_p^T[patch, rows] (+)= col[patch, columns] x dY_p^T[columns, rows]:
                                        // the transposed product, as BLAS ran it 1-15% faster than
                                        // dY_p x col^T on few rows (32-64 channels: the small nets).
                                        Element.gemm(transposeA: false, transposeB: true,
                                                     m: g.patchSize, n: rows.count, k: columns, alpha: 1,
                                                     a: col, lda: columns, b: dY, ldb: ldy, beta: first ? 0 : 1,
                                                     c: dW + rows.lowerBound, ldc: outputChannels)
                                    }
                                }
                                if hasBias {
                                    // Each channel's plane is summed in Accumulate.sum's fixed order.
                                    for n in images {
                                        let dOut = dyp + n * outputImageCount
                                        for o in 0..<outputChannels {
                                            let planeSum = Accumulate.sum(dOut + o * plane, count: plane)
                                            dB[o] = n == chunkImages.lowerBound ? planeSum : dB[o] + planeSum
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        // The chunk buffers, added in chunk order, overwrite the parameters' gradients
        // (the weights' chunks hold dW^T [patch, outputChannels]).
        Self.sumTransposedChunks(chunkWeights, rows: outputChannels, columns: g.patchSize, into: weight, pool: pool)
        if let bias { Self.sumChunks(chunkBiases, into: bias, pool: pool) }
        return inputGradient
    }

    /// `parameter.gradient = (chunks[0] + chunks[1] + ...)^T`, where each chunk is
    /// `[columns, rows]` and the gradient `[rows, columns]`: the chunks are added
    /// element-wise, left to right, into `chunks[0]` (as ``sumChunks(_:into:pool:)``
    /// adds them), which is then transposed into the gradient's storage.
    private static func sumTransposedChunks(_ chunks: [UnsafeMutablePointer<Element>], rows: Int, columns: Int,
                                            into parameter: Parameter<Element>, pool: WorkerPool) {
        resetGradientIfReplaced(parameter)
        let count = rows * columns
        precondition(parameter.value.count == count, "the weight is [rows, columns]")
        let total = chunks[0]
        if chunks.count > 1 { addChunks(chunks, into: total, count: count, pool: pool) }
        // gradient[r, c] = total[c, r], in blocks of 16 rows: the reads of one block
        // touch `columns` cache lines, which stay cached for the block's next rows.
        let rowBlocks = Partition.tiles(count: rows, tile: 16)
        parameter.gradient.withUnsafeMutableBufferPointer { g in
            let gp = g.baseAddress!
            pool.parallelFor(rowBlocks.count) { block, _ in
                for c in 0..<columns {
                    let source = total + c * rows
                    for r in rowBlocks[block] { gp[r * columns + c] = source[r] }
                }
            }
        }
    }

    /// `parameter.gradient = chunks[0] + chunks[1] + ...` element-wise, left to right.
    /// Parallel over fixed spans of elements; every element's sum has the same
    /// order whatever the span or thread, so the spans only share out the work.
    /// Writes the gradient's storage in place (no allocation per step).
    private static func sumChunks(_ chunks: [UnsafeMutablePointer<Element>], into parameter: Parameter<Element>,
                                  pool: WorkerPool) {
        resetGradientIfReplaced(parameter)
        parameter.gradient.withUnsafeMutableBufferPointer { r in
            addChunks(chunks, into: r.baseAddress!, count: parameter.value.count, pool: pool)
        }
    }

    /// `target = chunks[0] + chunks[1] + ...` element-wise, left to right, over
    /// `count` elements; `target` may be `chunks[0]` itself (then only the other
    /// chunks are added). Parallel over fixed spans of elements: every element's
    /// sum has the same order whatever the span or thread.
    private static func addChunks(_ chunks: [UnsafeMutablePointer<Element>], into target: UnsafeMutablePointer<Element>,
                                  count: Int, pool: WorkerPool) {
        let spans = Partition.tiles(count: count, tile: 1 << 14)
        pool.parallelFor(spans.count) { span, _ in
            let range = spans[span]
            if target != chunks[0] {
                (target + range.lowerBound).update(from: chunks[0] + range.lowerBound, count: range.count)
            }
            for chunk in chunks.dropFirst() {
                Accumulate.add(UnsafePointer(chunk + range.lowerBound), into: target + range.lowerBound,
                               count: range.count)
            }
        }
    }

    /// Gives the parameter a gradient of its value's shape if someone replaced it with another.
    private static func resetGradientIfReplaced(_ parameter: Parameter<Element>) {
        if parameter.gradient.shape != parameter.value.shape {
            parameter.gradient = Tensor(shape: parameter.value.shape)  // someone replaced it; start afresh
        }
    }
}
