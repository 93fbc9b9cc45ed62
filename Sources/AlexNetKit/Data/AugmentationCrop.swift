import Foundation

/// Crops and mirror images of `[C, H, W]` images: the building blocks of the
/// paper's random 224 (here 227) crops, their horizontal reflections, and
/// ten-crop evaluation (section 4.1).
public enum Crop {
    /// The offset of a centred crop: `floor((size - crop) / 2)` (Caffe's
    /// rounding; torchvision rounds half to even, which differs only for odd
    /// `size - crop` when the half rounds up).
    public static func centreOffset(size: Int, crop: Int) -> Int { (size - crop) / 2 }

    /// The `height x width` window of `image` whose top-left corner is at
    /// (`top`, `left`) in the image padded by `padding` pixels of value
    /// `padValue` on every side.
    /// - Parameters:
    ///   - image: `[C, H, W]`.
    ///   - top: row in the padded image, `0...(H + 2 * padding - height)`.
    ///   - left: column in the padded image, `0...(W + 2 * padding - width)`.
    /// - Returns: `[C, height, width]`.
    /// - Throws: ``ShapeError`` when the window does not fit in the padded image.
    public static func window(_ image: Tensor<Float>, top: Int, left: Int, height: Int, width: Int,
                              padding: Int = 0, padValue: Float = 0) throws -> Tensor<Float> {
        let size = ImageSize(of: image)
        guard height >= 1, width >= 1, padding >= 0, top >= 0, left >= 0,
              top + height <= size.height + 2 * padding, left + width <= size.width + 2 * padding else {
            throw ShapeError(operation: "Crop.window", argument: "image",
                             expected: "a window of \(height)x\(width) at (\(top), \(left)) inside the image padded by \(padding)",
                             actual: image.shape)
        }
        var output = Tensor<Float>(shape: [size.channels, height, width], repeating: padValue)
        image.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                for c in 0..<size.channels {
                    for y in 0..<height {
                        let sourceY = top + y - padding
                        guard sourceY >= 0 && sourceY < size.height else { continue }
                        for x in 0..<width {
                            let sourceX = left + x - padding
                            guard sourceX >= 0 && sourceX < size.width else { continue }
                            out[(c * height + y) * width + x] = input[(c * size.height + sourceY) * size.width + sourceX]
                        }
                    }
                }
            }
        }
        return output
    }

    /// `image` mirrored left to right: `out[c, y, x] = in[c, y, W - 1 - x]`.
    public static func horizontalFlip(_ image: Tensor<Float>) -> Tensor<Float> {
        let size = ImageSize(of: image)
        var output = Tensor<Float>(shape: image.shape)
        image.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                for row in 0..<(size.channels * size.height) {
                    let base = row * size.width
                    for x in 0..<size.width { out[base + x] = input[base + size.width - 1 - x] }
                }
            }
        }
        return output
    }
}

/// Ten-crop evaluation (section 4.1): "the network makes a prediction by
/// extracting five 224x224 patches (the four corner patches and the center
/// patch) as well as their horizontal reflections ... and averaging the
/// predictions made by the network's softmax layer on the ten patches".
///
/// Crop order: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right,
/// 4 centre (offsets from ``Crop/centreOffset(size:crop:)``), then 5...9 the
/// horizontal flips of crops 0...4 in the same order (crop `k + 5` is crop `k`
/// mirrored). torchvision's `ten_crop` yields the same ten patches but crops
/// its flipped image, so its 6th patch is our 7th (flipped top-right) and
/// vice versa; averaged predictions do not depend on the order.
public enum TenCrop {
    /// The top-left corners (row, column) of the five unflipped crops, in crop order.
    public static func offsets(height: Int, width: Int, cropHeight: Int, cropWidth: Int) -> [(top: Int, left: Int)] {
        let bottom = height - cropHeight, right = width - cropWidth
        return [(0, 0), (0, right), (bottom, 0), (bottom, right),
                (Crop.centreOffset(size: height, crop: cropHeight), Crop.centreOffset(size: width, crop: cropWidth))]
    }

    /// The ten crops of one image.
    /// - Parameter image: `[C, H, W]`, at least `cropHeight x cropWidth`.
    /// - Returns: `[10, C, cropHeight, cropWidth]` in the documented crop order.
    /// - Throws: ``ShapeError`` when the image is smaller than the crop.
    public static func crops(_ image: Tensor<Float>, cropHeight: Int, cropWidth: Int) throws -> Tensor<Float> {
        let size = ImageSize(of: image)
        let cropCount = size.channels * cropHeight * cropWidth
        var output = Tensor<Float>(shape: [10, size.channels, cropHeight, cropWidth])
        for (k, corner) in offsets(height: size.height, width: size.width, cropHeight: cropHeight, cropWidth: cropWidth).enumerated() {
            let crop = try Crop.window(image, top: corner.top, left: corner.left, height: cropHeight, width: cropWidth)
            output.copyElements(of: crop, to: k * cropCount)
            output.copyElements(of: Crop.horizontalFlip(crop), to: (k + 5) * cropCount)
        }
        return output
    }

    /// Ten crops of every image of a batch, image-major: rows `10n ..< 10n + 10` are image `n`'s crops.
    /// - Parameter images: `[N, C, H, W]`.
    /// - Returns: `[10 N, C, cropHeight, cropWidth]`.
    public static func crops(batch images: Tensor<Float>, cropHeight: Int, cropWidth: Int) throws -> Tensor<Float> {
        try images.requireShape([nil, nil, nil, nil], operation: "TenCrop.crops", argument: "images")
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        var output = Tensor<Float>(shape: [10 * n, c, cropHeight, cropWidth])
        let perImage = 10 * c * cropHeight * cropWidth
        for i in 0..<n {
            let image = try Tensor<Float>(shape: [c, h, w], values: Array(images.storage[(i * c * h * w)..<((i + 1) * c * h * w)]))
            output.copyElements(of: try crops(image, cropHeight: cropHeight, cropWidth: cropWidth), to: i * perImage)
        }
        return output
    }

    /// Averages the softmax probabilities of each image's ten crops.
    ///
    /// Each row's softmax is `exp(z - max z) / sum exp(z - max z)` in `Double`;
    /// the ten probability vectors are added in crop order and divided by 10.
    /// - Parameter logits: `[10 N, K]`, image-major as ``crops(batch:cropHeight:cropWidth:)`` makes them.
    /// - Returns: `[N, K]` probabilities (each row sums to 1).
    /// - Throws: ``ShapeError`` when the row count is not a multiple of 10.
    public static func averagedProbabilities<T: TensorElement>(logits: Tensor<T>) throws -> Tensor<T> {
        try logits.requireShape([nil, nil], operation: "TenCrop.averagedProbabilities", argument: "logits")
        guard logits.shape[0] % 10 == 0 else {
            throw ShapeError(operation: "TenCrop.averagedProbabilities", argument: "logits",
                             expected: "[10 N, K] (ten crops per image)", actual: logits.shape)
        }
        let n = logits.shape[0] / 10, k = logits.shape[1]
        var output = Tensor<T>(shape: [n, k])
        logits.withUnsafeBufferPointer { z in
            output.withUnsafeMutableBufferPointer { out in
                var sum = [Double](repeating: 0, count: k)
                var row = [Double](repeating: 0, count: k)
                for image in 0..<n {
                    for j in 0..<k { sum[j] = 0 }
                    for crop in 0..<10 {
                        let base = (image * 10 + crop) * k
                        var largest = -Double.infinity
                        for j in 0..<k { largest = max(largest, Double(z[base + j])) }
                        var total = 0.0
                        for j in 0..<k { row[j] = exp(Double(z[base + j]) - largest); total += row[j] }
                        for j in 0..<k { sum[j] += row[j] / total }
                    }
                    for j in 0..<k { out[image * k + j] = T(sum[j] / 10) }
                }
            }
        }
        return output
    }
}
