/// What mean subtraction and PCA colour augmentation need to know about the
/// training set, computed over prepared images (``ImagePipeline/prepare(_:)``)
/// in 0...255 units.
///
/// - ``meanImage``: `[C, H, W]`, the mean of each pixel over the images.
/// - ``channelMean``: `[C]`, the mean of each channel over every pixel of every image.
/// - ``covariance``: `[C, C]` row-major, the population covariance (divided by
///   the pixel count, not one less) of the `C`-vectors of every pixel of every image.
/// - ``eigenvalues``: `[C]`, descending, and ``eigenvectors``: `[C, C]`
///   row-major with column `k` the unit eigenvector of `eigenvalues[k]` (its
///   largest component positive), from ``SymmetricEigen``.
///
/// Saved as an `.npz` (``write(to:)``) with arrays `mean_image` (float32
/// `[C, H, W]`), `channel_mean` (float64 `[C]`), `covariance` (float64 `[C, C]`),
/// `eigenvalues` (float64 `[C]`), `eigenvectors` (float64 `[C, C]`, columns)
/// and `image_count` (int64 `[1]`); numpy reads it with `numpy.load`.
public struct DatasetStatistics {
    /// How many images the statistics cover.
    public var imageCount: Int
    /// `[C, H, W]`: the mean prepared image.
    public var meanImage: Tensor<Float>
    /// `[C]`: each channel's mean.
    public var channelMean: [Double]
    /// `[C, C]` row-major: the covariance of pixel values.
    public var covariance: [Double]
    /// `[C]`: the covariance's eigenvalues, descending.
    public var eigenvalues: [Double]
    /// `[C, C]` row-major: column `k` is the eigenvector of `eigenvalues[k]`.
    public var eigenvectors: [Double]

    /// Number of channels.
    public var channels: Int { channelMean.count }

    /// Statistics from their parts; the eigen-decomposition is computed.
    /// - Throws: ``ConfigurationError`` when the parts disagree in channel count, or `C` is not 1 or 3.
    public init(imageCount: Int, meanImage: Tensor<Float>, channelMean: [Double], covariance: [Double]) throws {
        let c = channelMean.count
        guard c == 1 || c == 3, meanImage.shape.rank == 3, meanImage.shape[0] == c, covariance.count == c * c else {
            throw ConfigurationError(component: "DatasetStatistics",
                                     problem: "expected 1 or 3 channels with mean image [C, H, W] and covariance [C, C]; got "
                                     + "\(c) channel means, mean image \(meanImage.shape), \(covariance.count) covariance entries")
        }
        self.imageCount = imageCount
        self.meanImage = meanImage
        self.channelMean = channelMean
        self.covariance = covariance
        (eigenvalues, eigenvectors) = SymmetricEigen.decompose(covariance, n: c)
    }

    /// Computes the statistics of a data set's prepared images.
    ///
    /// The images are cut into 16 fixed chunks; each chunk adds its images in
    /// order in `Double` (pixel values less 128, which keeps the sums of squares
    /// small), and the chunks are added in chunk order, so the result does not
    /// depend on the thread count.
    /// - Parameters:
    ///   - pipeline: only its preparation (resize, grey to RGB) is used.
    ///   - limit: use only the first `limit` examples (all when nil).
    /// - Returns: the statistics, and the examples skipped (when the data set skips bad files).
    /// - Throws: ``DataError`` for an image that fails to load, or whose prepared size differs from the first one's.
    public static func compute(dataset: any ImageDataset, pipeline: ImagePipeline, threads: Int = 1,
                               limit: Int? = nil) throws -> (statistics: DatasetStatistics, skipped: [DataWarning]) {
        let count = min(dataset.count, limit ?? dataset.count)
        guard count > 0 else { throw DataError(file: dataset.location, problem: "no images to compute statistics over") }
        let chunks = Partition.ranges(count: count, parts: 16)
        var partials = [Accumulator?](repeating: nil, count: chunks.count)
        var failures = [Result<[DataWarning], Error>](repeating: .success([]), count: chunks.count)
        let pool = WorkerPool(workerCount: threads, label: "statistics")
        partials.withUnsafeMutableBufferPointer { partialSlots in
            failures.withUnsafeMutableBufferPointer { failureSlots in
                pool.parallelFor(chunks.count) { chunk, _ in
                    var accumulator: Accumulator?
                    var skipped: [DataWarning] = []
                    do {
                        for index in chunks[chunk] {
                            let image: Tensor<Float>
                            do {
                                image = pipeline.prepare(try dataset.image(at: index))
                            } catch let error as DataError where dataset.skipsBadFiles {
                                skipped.append(error)
                                continue
                            }
                            if accumulator == nil { accumulator = Accumulator(size: ImageSize(of: image), firstExample: index) }
                            try accumulator!.add(image, name: dataset.exampleName(at: index))
                        }
                        partialSlots[chunk] = accumulator
                        failureSlots[chunk] = .success(skipped)
                    } catch {
                        failureSlots[chunk] = .failure(error)
                    }
                }
            }
        }
        var skipped: [DataWarning] = []
        for failure in failures { skipped += try failure.get() }
        var total: Accumulator?
        for partial in partials.compactMap({ $0 }) {
            if total == nil { total = partial } else { try total!.merge(partial, name: dataset.exampleName(at: partial.firstExample)) }
        }
        guard let total else { throw DataError(file: dataset.location, problem: "every image failed to load") }
        return (try total.statistics(), skipped)
    }

    /// Running sums over images of one prepared size.
    struct Accumulator {
        static let offset: Double = 128
        var size: ImageSize
        /// The example that set ``size``, named if another chunk's size differs.
        var firstExample: Int
        var images = 0
        var pixelSum: [Double]
        var channelSum: [Double]
        var productSum: [Double]

        init(size: ImageSize, firstExample: Int) {
            self.size = size
            self.firstExample = firstExample
            pixelSum = [Double](repeating: 0, count: size.channels * size.height * size.width)
            channelSum = [Double](repeating: 0, count: size.channels)
            productSum = [Double](repeating: 0, count: size.channels * size.channels)
        }

        mutating func add(_ image: Tensor<Float>, name: String) throws {
            guard ImageSize(of: image) == size else {
                throw DataError(file: name, problem: "prepared image is \(ImageSize(of: image)), earlier images are \(size): "
                                + "statistics need one size (set a resize)")
            }
            let c = size.channels, plane = size.height * size.width
            var localChannel = [Double](repeating: 0, count: c)
            var localProduct = [Double](repeating: 0, count: c * c)
            var pixel = [Double](repeating: 0, count: c)
            image.withUnsafeBufferPointer { values in
                for i in 0..<(c * plane) { pixelSum[i] += Double(values[i]) }
                for p in 0..<plane {
                    for a in 0..<c { pixel[a] = Double(values[a * plane + p]) - Accumulator.offset }
                    for a in 0..<c {
                        localChannel[a] += pixel[a]
                        for b in a..<c { localProduct[a * c + b] += pixel[a] * pixel[b] }
                    }
                }
            }
            for a in 0..<c { channelSum[a] += localChannel[a] }
            for i in 0..<(c * c) { productSum[i] += localProduct[i] }
            images += 1
        }

        mutating func merge(_ other: Accumulator, name: String) throws {
            guard other.size == size else {
                throw DataError(file: name, problem: "prepared image is \(other.size), earlier images are \(size): "
                                + "statistics need one size (set a resize)")
            }
            images += other.images
            for i in pixelSum.indices { pixelSum[i] += other.pixelSum[i] }
            for i in channelSum.indices { channelSum[i] += other.channelSum[i] }
            for i in productSum.indices { productSum[i] += other.productSum[i] }
        }

        func statistics() throws -> DatasetStatistics {
            let c = size.channels
            let n = Double(images), pixels = Double(images * size.height * size.width)
            let mean = try Tensor<Float>(shape: size.shape, values: pixelSum.map { Float($0 / n) })
            let shiftedMean = channelSum.map { $0 / pixels }
            var covariance = [Double](repeating: 0, count: c * c)
            for a in 0..<c {
                for b in a..<c {
                    let value = productSum[a * c + b] / pixels - shiftedMean[a] * shiftedMean[b]
                    covariance[a * c + b] = value
                    covariance[b * c + a] = value
                }
            }
            return try DatasetStatistics(imageCount: images, meanImage: mean,
                                         channelMean: shiftedMean.map { $0 + Accumulator.offset }, covariance: covariance)
        }
    }

    // MARK: - Files

    /// The statistics as named arrays (see the type's notes).
    public func storedTensors() throws -> [StoredTensor] {
        let c = channels
        return [
            StoredTensor(name: "mean_image", tensor: meanImage),
            StoredTensor(name: "channel_mean", tensor: try Tensor<Double>(shape: [c], values: channelMean)),
            StoredTensor(name: "covariance", tensor: try Tensor<Double>(shape: [c, c], values: covariance)),
            StoredTensor(name: "eigenvalues", tensor: try Tensor<Double>(shape: [c], values: eigenvalues)),
            StoredTensor(name: "eigenvectors", tensor: try Tensor<Double>(shape: [c, c], values: eigenvectors)),
            try StoredTensor(name: "image_count", shape: [1], integers: [Int64(imageCount)]),
        ]
    }

    /// Writes the statistics as an `.npz` (atomically).
    /// - Throws: ``TensorFileError`` naming the path.
    public func write(to path: String) throws {
        try NPZ.write(storedTensors(), to: path)
    }

    /// Reads statistics written by ``write(to:)`` (or by numpy with the same
    /// names). The eigen-decomposition is recomputed from the covariance and
    /// must agree with the stored one within 1e-9 of the largest eigenvalue.
    /// - Throws: ``TensorFileError`` for a missing array, a wrong dtype, shape or inconsistent values.
    public static func read(path: String) throws -> DatasetStatistics {
        let tensors = try NPZ.read(path: path)
        func find(_ name: String) throws -> StoredTensor {
            guard let tensor = tensors.first(where: { $0.name == name }) else {
                throw TensorFileError(file: path, problem: "not a statistics file: no array '\(name)' (expected mean_image, "
                                      + "channel_mean, covariance, eigenvalues, eigenvectors, image_count)")
            }
            return tensor
        }
        let mean = try find("mean_image").floatTensor(as: Float.self)
        let channelMean = try find("channel_mean").floatTensor(as: Double.self)
        let covariance = try find("covariance").floatTensor(as: Double.self)
        let counts = try find("image_count").integers()
        let c = channelMean.count
        guard mean.shape.rank == 3, mean.shape[0] == c, covariance.shape == [c, c], counts.count == 1 else {
            throw TensorFileError(file: path, problem: "inconsistent statistics: mean_image \(mean.shape), channel_mean "
                                  + "\(channelMean.shape), covariance \(covariance.shape), image_count \(counts.count) value(s)")
        }
        let statistics: DatasetStatistics
        do {
            statistics = try DatasetStatistics(imageCount: Int(counts[0]), meanImage: mean, channelMean: channelMean.storage,
                                               covariance: covariance.storage)
        } catch let error as ConfigurationError {
            throw TensorFileError(file: path, problem: error.problem)
        }
        let storedValues = try find("eigenvalues").floatTensor(as: Double.self).storage
        let scale = max(1, statistics.eigenvalues.map(abs).max() ?? 1)
        guard storedValues.count == c, zip(storedValues, statistics.eigenvalues).allSatisfy({ abs($0 - $1) <= 1e-9 * scale }) else {
            throw TensorFileError(file: path, tensor: "eigenvalues",
                                  problem: "do not match the covariance's: stored \(storedValues), computed \(statistics.eigenvalues)")
        }
        return statistics
    }
}
