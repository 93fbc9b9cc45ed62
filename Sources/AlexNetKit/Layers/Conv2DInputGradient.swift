/// The input gradient of a stride-1 convolution whose output has the input's
/// size ("same" padding, `2p = k - 1`: every convolution of the paper net but
/// conv1, and all of the CIFAR-sized nets'), computed as a convolution of the
/// output gradient instead of a product followed by col2im.
///
/// For such a layer, with `q = k - 1 - p` (which equals `p`),
/// `dX[c, y, x] = sum_{o, i, j} W[o, c, k-1-i, k-1-j] * dYpad[o, y + i, x + j]`
/// where `dYpad` is `dY` with `q` rows and columns of zeros around it. So a
/// piece's partial input gradient is one product
/// `dX_p[Cg, H*W] = Wadj_p[Cg, rows*kh*kw] x col(dY_p)[rows*kh*kw, H*W]`,
/// with `col` the im2col of the piece's output-gradient channels and `Wadj`
/// the piece's weights transposed and turned by 180 degrees (``adjointWeights``).
/// The product writes the gradient itself: no col2im pass, and no zeroed
/// buffer to add into. It is the same arithmetic as the col2im path up to the
/// order of each pixel's sum (the last bits differ), with the same number of
/// multiply-adds.
///
/// The pieces keep their meaning: piece 0 of a group is written, every later
/// piece's partial is formed on its own by the same product and then added in
/// piece order, as a tower crossing adds it; the image blocks depend on the
/// geometry alone. So the results stay bitwise independent of the worker
/// count and equal between the grouped layer and the two-tower executor.
extension Conv2D {
    /// What the convolutional input gradient needs for one geometry.
    struct AdjointPlan {
        /// The im2col geometry of one piece's output gradient: `rows` channels of
        /// `[OH, OW]`, the kernel's size, stride 1, padding `k - 1 - p`.
        let geometry: ConvGeometry
        /// Images per product, in consecutive blocks.
        let blocks: [Range<Int>]
        /// Columns of the widest block (`images * H * W`).
        let widest: Int
    }

    /// The plan for the convolutional input gradient, or nil where the layer
    /// uses col2im (a stride other than 1, an output smaller or larger than
    /// the input, or pieces with more rows than input channels).
    func adjointPlan(for g: ConvGeometry, batch: Int) -> AdjointPlan? {
        // A piece with more rows than its group has input channels would unroll a
        // larger matrix than col2im reads (conv1 of a grey-scale net: 32 rows against
        // 1 channel, a product of one row), so it keeps col2im.
        guard g.strideHeight == 1, g.strideWidth == 1, g.outputHeight == g.height, g.outputWidth == g.width,
              pieceRows <= g.channels, batch > 0 else { return nil }
        guard let adjoint = try? ConvGeometry(
            channels: pieceRows, height: g.outputHeight, width: g.outputWidth, kernel: kernel, stride: (1, 1),
            padding: (g.kernelHeight - 1 - g.paddingHeight, g.kernelWidth - 1 - g.paddingWidth), component: name)
        else { return nil }
        let plane = g.height * g.width
        let blocks = Self.imageBlocks(batch: batch, outputPlane: plane, patchSize: adjoint.patchSize)
        return AdjointPlan(geometry: adjoint, blocks: blocks, widest: blocks.map(\.count).max()! * plane)
    }

    /// Fills `adjoint` (as many elements as the weight) with every piece's
    /// `Wadj_p[Cg, rows*kh*kw]`, piece after piece (piece `p`'s at
    /// `p.lowerBound * Cg*kh*kw`):
    /// `Wadj_p[c, (o*kh + i)*kw + j] = W[p.lowerBound + o, c, kh-1-i, kw-1-j]`.
    /// - Parameter w: the weight `[outputChannels, Cg, kh, kw]`.
    func adjointWeights(_ w: UnsafePointer<Element>, into adjoint: UnsafeMutablePointer<Element>,
                        geometry g: ConvGeometry, pool: WorkerPool) {
        let (kh, kw, cg) = (g.kernelHeight, g.kernelWidth, g.channels)
        let area = kh * kw
        let rows = pieceRows
        let depth = rows * area
        pool.parallelFor(outputChannels) { o, _ in
            let pieceStart = o - o % rows
            let target = adjoint + pieceStart * g.patchSize + (o - pieceStart) * area
            for c in 0..<cg {
                let source = w + (o * cg + c) * area
                let row = target + c * depth
                for k in 0..<area { row[k] = source[area - 1 - k] }
            }
        }
    }

    /// Writes `dX` for every image, one task per block of `plan.blocks`.
    ///
    /// - Parameters:
    ///   - dy: the output gradient `[N, outputChannels, H, W]`.
    ///   - adjoint: the weights from ``adjointWeights(_:into:geometry:pool:)``.
    ///   - dx: the input gradient `[N, inputChannels, H, W]`; every element is
    ///     written, so it need not be zeroed.
    ///   - scratch: per worker, ``adjointScratchCount(_:geometry:)`` elements.
    func adjointInputGradient(_ dy: UnsafePointer<Element>, adjoint: UnsafePointer<Element>,
                              into dx: UnsafeMutablePointer<Element>, plan: AdjointPlan, geometry g: ConvGeometry,
                              scratch: [UnsafeMutablePointer<Element>], pool: WorkerPool) {
        let pieces = piecesByGroup
        let plane = g.height * g.width
        let depth = plan.geometry.patchSize
        let groupImage = g.channels * plane
        let imageCount = inputChannels * plane
        let outputImageCount = outputChannels * plane
        let blocks = plan.blocks
        pool.parallelFor(blocks.count) { task, worker in
            let images = blocks[task]
            let columns = images.count * plane
            let col = scratch[worker], product = col + depth * plan.widest
            for group in 0..<pieces.count {
                for (index, rows) in pieces[group].enumerated() {
                    // col[rows*kh*kw, columns]: the block's output gradients of the piece, unrolled.
                    for (j, n) in images.enumerated() {
                        im2col(image: dy + n * outputImageCount + rows.lowerBound * plane, geometry: plan.geometry,
                               col: col + j * plane, columnStride: columns)
                    }
                    // One image's piece 0 is written in place; otherwise the product goes to
                    // scratch and each image's [Cg, H*W] block is copied (piece 0) or added.
                    let inPlace = images.count == 1 && index == 0
                    let target = inPlace ? dx + images.lowerBound * imageCount + group * groupImage : product
                    Element.gemm(transposeA: false, transposeB: false,
                                 m: g.channels, n: columns, k: depth, alpha: 1,
                                 a: adjoint + rows.lowerBound * g.patchSize, lda: depth, b: col, ldb: columns,
                                 beta: 0, c: target, ldc: columns)
                    if inPlace { continue }
                    for (j, n) in images.enumerated() {
                        let dGroup = dx + n * imageCount + group * groupImage
                        for c in 0..<g.channels {
                            let source = UnsafePointer(product + c * columns + j * plane)
                            if index == 0 {
                                (dGroup + c * plane).update(from: source, count: plane)
                            } else {
                                Accumulate.add(source, into: dGroup + c * plane, count: plane)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Scratch elements per worker for ``adjointInputGradient(_:adjoint:into:plan:geometry:scratch:pool:)``:
    /// the unrolled output gradients of the widest block, and the product where
    /// it cannot be written in place.
    func adjointScratchCount(_ plan: AdjointPlan, geometry g: ConvGeometry) -> Int {
        let needsProduct = plan.blocks.contains { $0.count > 1 } || piecesByGroup[0].count > 1
        return plan.geometry.patchSize * plan.widest + (needsProduct ? g.channels * plan.widest : 0)
    }
}
