/// Learned first-layer kernels as a grid, like Figure 3 of Krizhevsky et al.
/// 2012: tower 0's kernels on the top rows, tower 1's below, separated by a gap.
///
/// Layout, for weights `[O, C, KH, KW]`, `towers` T, `scale` s and `columns` n
/// (default `min(O / T, 16)`):
/// - every kernel is a tile of `KW * s` x `KH * s` pixels, with 1 white pixel
///   between tiles and around each tower's block;
/// - a tower's block holds its `O / T` kernels in `r = ceil((O / T) / n)` rows
///   of n, in order, left to right then top to bottom:
///   `n * (KW * s + 1) + 1` wide and `r * (KH * s + 1) + 1` tall;
/// - with one tower the picture is that block; with T > 1 each block has a
///   ``labelStrip``-pixel strip above it saying "tower t", so the picture is
///   `n * (KW * s + 1) + 1` wide and `T * (11 + r * (KH * s + 1) + 1)` tall.
public enum FilterGrid {
    /// Height of the "tower t" strip above each block when there are several towers:
    /// 2 pixels, the 7-pixel text, 2 pixels.
    public static let labelStrip = 11

    /// weights: Tensor<Float> of shape [O, C, KH, KW] with C == 1 (grey) or 3 (RGB).
    /// towers: how many towers' kernels `O` holds, tower t's being kernels
    /// `t * O / towers ..< (t + 1) * O / towers` (1 or 2 in AlexNet; O must divide).
    ///
    /// Each kernel is min-max normalised to 0...255 on its own, over all its
    /// channels together (a constant kernel is mid-grey, 128), so that its
    /// colours keep their balance; grey kernels are drawn grey. Each kernel
    /// pixel becomes a `scale` x `scale` square; see the type's notes for the layout.
    /// - Throws: ``ShapeError`` for a rank other than 4, C other than 1 or 3 or
    ///   an empty extent; ``ConfigurationError`` for towers that do not divide
    ///   O, or a scale or column count below 1; ``NonFiniteError`` for NaN or infinity.
    public static func render(weights: Tensor<Float>, towers: Int, scale: Int = 4, columns: Int? = nil) throws -> RGBImage {
        let geometry = try Geometry(weights: weights, towers: towers)
        guard scale >= 1 else { throw ConfigurationError(component: "FilterGrid", problem: "scale \(scale) must be at least 1") }
        let perTower = geometry.perTower
        let columns = columns ?? min(perTower, 16)
        guard columns >= 1 else {
            throw ConfigurationError(component: "FilterGrid", problem: "columns \(columns) must be at least 1")
        }
        let rows = (perTower + columns - 1) / columns
        let tileWidth = geometry.kernelWidth * scale, tileHeight = geometry.kernelHeight * scale
        let strip = towers > 1 ? labelStrip : 0
        let blockHeight = rows * (tileHeight + 1) + 1
        var image = RGBImage(width: columns * (tileWidth + 1) + 1, height: towers * (strip + blockHeight))

        for tower in 0..<towers {
            let blockTop = tower * (strip + blockHeight) + strip
            if strip > 0 { image.text("tower \(tower)", x: 1, y: blockTop - strip + 2, colour: .grey) }
            for local in 0..<perTower {
                let kernel = tower * perTower + local
                let left = 1 + (local % columns) * (tileWidth + 1)
                let top = blockTop + 1 + (local / columns) * (tileHeight + 1)
                let colours = geometry.normalisedKernel(weights, kernel)
                for ky in 0..<geometry.kernelHeight {
                    for kx in 0..<geometry.kernelWidth {
                        image.fill(x: left + kx * scale, y: top + ky * scale, width: scale, height: scale,
                                   colour: colours[ky * geometry.kernelWidth + kx])
                    }
                }
            }
        }
        return image
    }

    /// Per tower, the mean over its kernels of a colourfulness score: for each kernel, the root-mean-square
    /// over its pixels of the deviation of (R, G, B) from their own mean (the pixel's grey), divided by the
    /// kernel's overall standard deviation over all its values (0 for a constant kernel). 0 means
    /// colour-agnostic (all channels equal), larger means colourful. nil when C != 3.
    ///
    /// In symbols, for a kernel with values `w[c, p]` over channels c and
    /// pixels p, pixel grey `g[p] = mean_c w[c, p]` and overall mean `m`:
    /// `sqrt(mean_{c,p} (w[c, p] - g[p])^2) / sqrt(mean_{c,p} (w[c, p] - m)^2)`.
    /// The numerator's sum is part of the denominator's (the rest is the
    /// variation of the grey), so the score lies in 0...1 and does not change
    /// when a kernel is scaled or shifted: 1 is pure colour contrast on a
    /// constant grey, like the paper's colour-blob kernels on tower 1.
    /// - Throws: as ``render(weights:towers:scale:columns:)``.
    public static func colourfulness(weights: Tensor<Float>, towers: Int) throws -> [Double]? {
        let geometry = try Geometry(weights: weights, towers: towers)
        guard geometry.channels == 3 else { return nil }
        let pixels = geometry.kernelHeight * geometry.kernelWidth
        return (0..<towers).map { tower in
            var total = 0.0
            for kernel in (tower * geometry.perTower)..<((tower + 1) * geometry.perTower) {
                let base = kernel * 3 * pixels
                let values = weights.storage[base..<(base + 3 * pixels)].map(Double.init)
                let mean = values.reduce(0, +) / Double(values.count)
                var spread = 0.0, colour = 0.0, squares = 0.0
                for p in 0..<pixels {
                    let (r, g, b) = (values[p], values[pixels + p], values[2 * pixels + p])
                    let grey = (r + g + b) / 3
                    colour += (r - grey) * (r - grey) + (g - grey) * (g - grey) + (b - grey) * (b - grey)
                    spread += (r - mean) * (r - mean) + (g - mean) * (g - mean) + (b - mean) * (b - mean)
                    squares += r * r + g * g + b * b
                }
                // Rounding leaves a constant kernel a spread near 1e-32 of its
                // squares, not 0; such a kernel has no colour.
                total += spread > 1e-20 * squares ? (colour / spread).squareRoot() : 0
            }
            return total / Double(geometry.perTower)
        }
    }

    /// The checked shape of a weight tensor and its split into towers.
    private struct Geometry {
        var kernels: Int, channels: Int, kernelHeight: Int, kernelWidth: Int
        var perTower: Int

        init(weights: Tensor<Float>, towers: Int) throws {
            let shape = weights.shape
            guard shape.rank == 4, shape[1] == 1 || shape[1] == 3, shape.dims.allSatisfy({ $0 >= 1 }) else {
                throw ShapeError(operation: "FilterGrid", argument: "weights",
                                 expected: "[O, C, KH, KW] with C 1 (grey) or 3 (RGB) and no empty extent", actual: shape)
            }
            guard towers >= 1, shape[0] % towers == 0 else {
                throw ConfigurationError(component: "FilterGrid",
                                         problem: "\(shape[0]) kernels cannot be split into \(towers) towers; towers must divide the kernel count")
            }
            try weights.checkFinite(name: "FilterGrid weights")
            (kernels, channels, kernelHeight, kernelWidth) = (shape[0], shape[1], shape[2], shape[3])
            perTower = kernels / towers
        }

        /// Kernel `kernel`'s pixels, row-major, min-max normalised over all its values.
        func normalisedKernel(_ weights: Tensor<Float>, _ kernel: Int) -> [RGB] {
            let pixels = kernelHeight * kernelWidth, base = kernel * channels * pixels
            let values = weights.storage[base..<(base + channels * pixels)]
            let low = values.min() ?? 0, high = values.max() ?? 0
            func level(_ value: Float) -> UInt8 {
                high > low ? UInt8(((Double(value) - Double(low)) / (Double(high) - Double(low)) * 255).rounded()) : 128
            }
            return (0..<pixels).map { p in
                let r = level(values[base + p])
                guard channels == 3 else { return RGB(r, r, r) }
                return RGB(r, level(values[base + pixels + p]), level(values[base + 2 * pixels + p]))
            }
        }
    }
}
