/// What happens to a stored image on its way into the network, each step
/// switchable for ablations. Images are `[C, H, W]` floats in 0...255.
///
/// In order:
/// 1. **prepare**: rescale so the shorter side is ``resizeShorterSide`` and keep
///    the central square (``Resize/shorterSideThenCentreCrop(_:side:)``); then
///    copy a grey channel into three if ``greyToRGB``. Statistics are computed
///    on prepared images.
/// 2. **mean subtraction**: the mean image, or each channel's mean (``DatasetStatistics``).
/// 3. **crop**: none, centred, or random (offsets from the crop stream), in the
///    image padded by `padding` zeros on each side. Padding is added after the
///    mean is subtracted, so padded pixels hold the mean (0), or black without it.
/// 4. **horizontal flip** with probability 1/2 (the flip stream).
/// 5. **PCA colour**: add the image's shift to every pixel, padding included.
/// 6. **scale**: multiply by ``scale`` (1 keeps 0...255 units; 1/255 gives 0...1).
///
/// Steps 2-6 run as one pass that writes straight into the batch. A pipeline
/// is a pure function of (image, seed, epoch, example index, statistics).
public struct ImagePipeline: Sendable, Equatable {
    /// Which mean is subtracted.
    public enum MeanSubtraction: String, Sendable, CaseIterable {
        /// The mean of each channel over every pixel of the training set
        /// (spelled `channel` in run configs and on the command line).
        case perChannel = "channel"
        /// The mean image over the training set, pixel by pixel (the paper).
        case image
        /// Nothing.
        case none
    }

    /// Which window of the prepared image is kept.
    public enum CropMode: Sendable, Equatable {
        /// The whole image.
        case none
        /// The central `height x width` window (offsets ``Crop/centreOffset(size:crop:)``).
        case centre(height: Int, width: Int)
        /// A `height x width` window at a random offset in the image padded by
        /// `padding` on every side; the offset is uniform over every position
        /// that fits (e.g. 227 of 256: 30 x 30 positions).
        case random(height: Int, width: Int, padding: Int)
    }

    /// The shorter side after rescaling, then the central square of that size is kept (256 in the paper); nil keeps the stored size.
    public var resizeShorterSide: Int?
    /// Copy a one-channel image into three identical channels (grey data into an RGB network).
    public var greyToRGB: Bool
    /// Which mean is subtracted (needs statistics unless `.none`).
    public var meanSubtraction: MeanSubtraction
    /// Which window is kept.
    public var crop: CropMode
    /// Mirror left to right with probability 1/2.
    public var horizontalFlip: Bool
    /// PCA colour augmentation (needs statistics); nil is off.
    public var pcaColour: PCAColour?
    /// Every output value is multiplied by this last.
    public var scale: Float

    /// A pipeline; the defaults do nothing (stored images pass through unchanged).
    public init(resizeShorterSide: Int? = nil, greyToRGB: Bool = false, meanSubtraction: MeanSubtraction = .none,
                crop: CropMode = .none, horizontalFlip: Bool = false, pcaColour: PCAColour? = nil, scale: Float = 1) {
        self.resizeShorterSide = resizeShorterSide
        self.greyToRGB = greyToRGB
        self.meanSubtraction = meanSubtraction
        self.crop = crop
        self.horizontalFlip = horizontalFlip
        self.pcaColour = pcaColour
        self.scale = scale
    }

    /// The paper's training input: shorter side 256, central 256x256, mean image
    /// subtracted, random 227x227 crops (the paper's "224" does not give its
    /// 55x55 conv1 output), flips, PCA colour with standard deviation 0.1.
    public static let paperTraining = ImagePipeline(resizeShorterSide: 256, meanSubtraction: .image,
                                                    crop: .random(height: 227, width: 227, padding: 0),
                                                    horizontalFlip: true, pcaColour: PCAColour())
    /// The paper's single-crop evaluation: as training, with the centre 227x227 crop and nothing random.
    public static let paperEvaluation = ImagePipeline(resizeShorterSide: 256, meanSubtraction: .image,
                                                      crop: .centre(height: 227, width: 227))
    /// 32x32 training as in common CIFAR-10 recipes: per-channel mean, pad 4 and random 32x32 crops, flips.
    public static let cifarTraining = ImagePipeline(meanSubtraction: .perChannel, crop: .random(height: 32, width: 32, padding: 4),
                                                    horizontalFlip: true)
    /// 32x32 evaluation: per-channel mean only.
    public static let cifarEvaluation = ImagePipeline(meanSubtraction: .perChannel)

    /// True when mean subtraction or PCA colour needs ``DatasetStatistics``.
    public var needsStatistics: Bool { meanSubtraction != .none || pcaColour != nil }

    /// True when some step draws random numbers (different per epoch).
    public var isRandom: Bool {
        if case .random = crop { return true }
        return horizontalFlip || pcaColour != nil
    }

    // MARK: - Step 1

    /// Step 1: resize and central square, then grey to RGB.
    /// - Parameter image: `[C, H, W]` as stored.
    /// - Returns: `[C', S, S]` (or the stored size without resizing), `C' = 3` for grey with ``greyToRGB``.
    public func prepare(_ image: Tensor<Float>) -> Tensor<Float> {
        var result = image
        if let side = resizeShorterSide { result = Resize.shorterSideThenCentreCrop(result, side: side) }
        if greyToRGB && result.shape[0] == 1 {
            var rgb = Tensor<Float>(shape: [3, result.shape[1], result.shape[2]])
            for c in 0..<3 { rgb.copyElements(of: result, to: c * result.count) }
            result = rgb
        }
        return result
    }

    /// The size after step 1 for a stored size.
    public func preparedSize(for stored: ImageSize) -> ImageSize {
        var size = stored
        if let side = resizeShorterSide { size.height = side; size.width = side }
        if greyToRGB && size.channels == 1 { size.channels = 3 }
        return size
    }

    /// The output size for a prepared size.
    public func outputSize(for prepared: ImageSize) -> ImageSize {
        switch crop {
        case .none: return prepared
        case .centre(let height, let width), .random(let height, let width, _):
            return ImageSize(channels: prepared.channels, height: height, width: width)
        }
    }

    /// Checks the settings, and the statistics against the prepared size where it is known.
    /// - Throws: ``ConfigurationError`` saying what to change.
    public func validate(statistics: DatasetStatistics?, preparedSize: ImageSize?) throws {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError(component: "ImagePipeline", problem: problem) }
        if let side = resizeShorterSide, side < 1 { throw fail("resizeShorterSide must be at least 1, got \(side)") }
        guard scale.isFinite else { throw fail("scale must be finite, got \(scale)") }
        switch crop {
        case .none: break
        case .centre(let height, let width):
            if height < 1 || width < 1 { throw fail("crop size must be at least 1x1, got \(height)x\(width)") }
        case .random(let height, let width, let padding):
            if height < 1 || width < 1 { throw fail("crop size must be at least 1x1, got \(height)x\(width)") }
            if padding < 0 { throw fail("crop padding must not be negative, got \(padding)") }
        }
        if let pca = pcaColour, !(pca.standardDeviation >= 0 && pca.standardDeviation.isFinite) {
            throw fail("PCA colour standard deviation must be finite and non-negative, got \(pca.standardDeviation)")
        }
        guard needsStatistics else { return }
        guard let statistics else {
            let needs = [meanSubtraction != .none ? "mean subtraction (\(meanSubtraction))" : nil,
                         pcaColour != nil ? "PCA colour augmentation" : nil].compactMap { $0 }.joined(separator: " and ")
            throw fail("\(needs) needs DatasetStatistics of the training set (alexnet data mean PATH --output stats.npz)")
        }
        if let size = preparedSize {
            if statistics.channels != size.channels {
                throw fail("the statistics are for \(statistics.channels) channel(s), the prepared images have \(size.channels)")
            }
            if meanSubtraction == .image && ImageSize(of: statistics.meanImage) != size {
                throw fail("the statistics' mean image is \(ImageSize(of: statistics.meanImage)), prepared images are \(size): "
                           + "compute the statistics with the same resize and grey-to-RGB settings")
            }
        }
    }

    // MARK: - Steps 2-6

    /// The random choices for one example in one epoch.
    public struct Draws: Equatable, Sendable {
        /// Crop corner in the padded prepared image (0, 0 without a random crop).
        public var top: Int, left: Int
        /// Mirror left to right.
        public var flip: Bool
        /// Per-channel colour shift (zeros without PCA colour).
        public var colourShift: [Double]
    }

    /// The random choices for example `index` in `epoch`, for an image of `prepared` size.
    /// - Throws: ``ShapeError`` when the crop does not fit in the (padded) image.
    public func draws(seed: UInt64, epoch: Int, index: Int, prepared: ImageSize, statistics: DatasetStatistics?) throws -> Draws {
        var top = 0, left = 0
        let padding: Int
        let cropSize: (Int, Int)
        switch crop {
        case .none: padding = 0; cropSize = (prepared.height, prepared.width)
        case .centre(let height, let width): padding = 0; cropSize = (height, width)
        case .random(let height, let width, let pad): padding = pad; cropSize = (height, width)
        }
        let rowRange = prepared.height + 2 * padding - cropSize.0, columnRange = prepared.width + 2 * padding - cropSize.1
        guard rowRange >= 0, columnRange >= 0 else {
            throw ShapeError(operation: "ImagePipeline", argument: "image",
                             expected: "at least \(cropSize.0)x\(cropSize.1) (the crop) after padding by \(padding)",
                             actual: prepared.shape)
        }
        switch crop {
        case .none: break
        case .centre: (top, left) = (rowRange / 2, columnRange / 2)
        case .random: (top, left) = AugmentationRandom.cropOffset(seed: seed, epoch: epoch, index: index,
                                                                rowRange: rowRange, columnRange: columnRange)
        }
        let flip = horizontalFlip && AugmentationRandom.flips(seed: seed, epoch: epoch, index: index)
        var shift = [Double](repeating: 0, count: prepared.channels)
        if let pca = pcaColour, let statistics { shift = pca.shift(seed: seed, epoch: epoch, index: index, statistics: statistics) }
        return Draws(top: top, left: left, flip: flip, colourShift: shift)
    }

    /// Runs every step on one stored image.
    /// - Parameters:
    ///   - image: `[C, H, W]` as stored, 0...255.
    ///   - index: the example's index in its data set (keys its random numbers).
    /// - Returns: `[C', h, w]` (``outputSize(for:)`` of the prepared size).
    /// - Throws: ``ConfigurationError`` for statistics that do not fit, ``ShapeError`` for an image smaller than the crop.
    public func apply(_ image: Tensor<Float>, index: Int, epoch: Int, seed: UInt64,
                      statistics: DatasetStatistics?) throws -> Tensor<Float> {
        let prepared = prepare(image)
        let draws = try plan(prepared, index: index, epoch: epoch, seed: seed, statistics: statistics)
        var output = Tensor<Float>(shape: outputSize(for: ImageSize(of: prepared)).shape)
        output.withUnsafeMutableBufferPointer { render(prepared, draws: draws, statistics: statistics, into: $0.baseAddress!) }
        return output
    }

    /// Checks a prepared image against the settings and statistics and makes its random choices.
    /// - Throws: ``ConfigurationError`` for statistics that do not fit, ``ShapeError`` for an image smaller than the crop.
    func plan(_ prepared: Tensor<Float>, index: Int, epoch: Int, seed: UInt64, statistics: DatasetStatistics?) throws -> Draws {
        let size = ImageSize(of: prepared)
        try validate(statistics: statistics, preparedSize: size)
        return try draws(seed: seed, epoch: epoch, index: index, prepared: size, statistics: statistics)
    }

    /// Steps 2-6 on a prepared image whose ``plan(_:index:epoch:seed:statistics:)`` succeeded,
    /// written to `destination` (`[C, h, w]`, row-major; every element is written).
    ///
    /// Each output row is computed unflipped, `((x - mean) + shift) * scale` over
    /// the columns that fall inside the image (a loop the compiler vectorises)
    /// and `(0 + shift) * scale` over padding, then reversed in place when the
    /// image is flipped: the mirror of the padded crop.
    func render(_ prepared: Tensor<Float>, draws: Draws, statistics: DatasetStatistics?,
                into destination: UnsafeMutablePointer<Float>) {
        let size = ImageSize(of: prepared)
        let out = outputSize(for: size)
        var padding = 0
        if case .random(_, _, let pad) = crop { padding = pad }
        // Output columns [inside.lowerBound, inside.upperBound) read image columns from `firstColumn` on.
        let firstColumn = draws.left - padding
        let inside = max(0, -firstColumn)..<max(max(0, -firstColumn), min(out.width, size.width - firstColumn))
        let meanImage = meanSubtraction == .image ? statistics?.meanImage : nil
        prepared.withUnsafeBufferPointer { input in
            (meanImage ?? prepared).withUnsafeBufferPointer { means in
                for c in 0..<out.channels {
                    let shift = Float(draws.colourShift[c])
                    let padValue = (0 + shift) * scale
                    let channelMean = meanSubtraction == .perChannel ? Float(statistics!.channelMean[c]) : 0
                    for y in 0..<out.height {
                        let row = destination + (c * out.height + y) * out.width
                        let sourceY = draws.top + y - padding
                        guard sourceY >= 0 && sourceY < size.height else {
                            row.update(repeating: padValue, count: out.width)
                            continue
                        }
                        row.update(repeating: padValue, count: inside.lowerBound)
                        row.advanced(by: inside.upperBound).update(repeating: padValue, count: out.width - inside.upperBound)
                        let offset = (c * size.height + sourceY) * size.width + firstColumn
                        let source = input.baseAddress! + offset
                        if meanImage != nil {
                            let mean = means.baseAddress! + offset
                            for x in inside { row[x] = ((source[x] - mean[x]) + shift) * scale }
                        } else {
                            for x in inside { row[x] = ((source[x] - channelMean) + shift) * scale }
                        }
                        if draws.flip {
                            var mirrored = UnsafeMutableBufferPointer(start: row, count: out.width)
                            mirrored.reverse()
                        }
                    }
                }
            }
        }
    }
}
