/// Bilinear resizing of `[C, H, W]` images.
///
/// Sampling convention (pixel centres, "half-pixel"): output pixel `x` of a row
/// resized from `W` to `W'` samples the input at `s = (x + 0.5) * W / W' - 0.5`,
/// clamped below at 0; it blends `x0 = floor(s)` and `x1 = min(x0 + 1, W - 1)`
/// with weights `1 - f` and `f`, `f = s - x0`. Rows likewise, and the two
/// passes combine as `(1 - fy) * ((1 - fx) a + fx b) + fy * ((1 - fx) c + fx d)`.
/// This is PyTorch's `F.interpolate(mode="bilinear", align_corners=False,
/// antialias=False)` and OpenCV's `INTER_LINEAR` (which rounds its weights to
/// 11-bit fixed point for 8-bit images; we keep floats). There is no
/// antialiasing: downscaling by more than 2 skips input pixels, as those do.
/// Positions and weights are computed in `Double`, the blend in `Float`.
public enum Resize {
    /// Source indices and weights for one axis: output `i` blends `lower[i]` and `upper[i]` with `fraction[i]`.
    struct AxisSamples {
        var lower: [Int]
        var upper: [Int]
        var fraction: [Float]

        /// Samples for outputs `first..<first + count` of an axis resized from `input` to `output`.
        init(input: Int, output: Int, first: Int = 0, count: Int? = nil) {
            let count = count ?? output
            let scale = Double(input) / Double(output)
            lower = []; upper = []; fraction = []
            lower.reserveCapacity(count); upper.reserveCapacity(count); fraction.reserveCapacity(count)
            for i in first..<(first + count) {
                let source = max(0, (Double(i) + 0.5) * scale - 0.5)
                let low = min(Int(source), input - 1)
                lower.append(low)
                upper.append(min(low + 1, input - 1))
                fraction.append(low == input - 1 ? 0 : Float(source - Double(low)))
            }
        }
    }

    /// The size after rescaling so the shorter side is `side`: the longer side
    /// becomes `floor(long * side / short)` (torchvision's `Resize(int)` rounding);
    /// a square stays square.
    public static func shorterSideSize(height: Int, width: Int, side: Int) -> (height: Int, width: Int) {
        if height <= width { return (side, max(side, width * side / height)) }
        return (max(side, height * side / width), side)
    }

    /// `image` `[C, H, W]` resized to `[C, height, width]` (bilinear, see the type's notes).
    public static func bilinear(_ image: Tensor<Float>, height: Int, width: Int) -> Tensor<Float> {
        let size = ImageSize(of: image)
        return resample(image, rows: AxisSamples(input: size.height, output: height),
                        columns: AxisSamples(input: size.width, output: width))
    }

    /// The paper's preprocessing (section 2): rescale so the shorter side is
    /// `side` (``shorterSideSize(height:width:side:)``), then keep the central
    /// `side x side` square, whose offset on the longer axis is
    /// `floor((long - side) / 2)`. Only the kept pixels are computed. An image
    /// already `side x side` is returned unchanged.
    /// - Returns: `[C, side, side]`.
    public static func shorterSideThenCentreCrop(_ image: Tensor<Float>, side: Int) -> Tensor<Float> {
        let size = ImageSize(of: image)
        if size.height == side && size.width == side { return image }
        let scaled = shorterSideSize(height: size.height, width: size.width, side: side)
        let top = (scaled.height - side) / 2, left = (scaled.width - side) / 2
        return resample(image, rows: AxisSamples(input: size.height, output: scaled.height, first: top, count: side),
                        columns: AxisSamples(input: size.width, output: scaled.width, first: left, count: side))
    }

    /// Each output row blends two input rows: first horizontally (two columns
    /// each), then vertically, so every input row is read contiguously.
    private static func resample(_ image: Tensor<Float>, rows: AxisSamples, columns: AxisSamples) -> Tensor<Float> {
        let size = ImageSize(of: image)
        let outHeight = rows.lower.count, outWidth = columns.lower.count
        var output = Tensor<Float>(shape: [size.channels, outHeight, outWidth])
        var upperRow = [Float](repeating: 0, count: outWidth)
        var lowerRow = [Float](repeating: 0, count: outWidth)
        image.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                for c in 0..<size.channels {
                    let plane = input.baseAddress! + c * size.height * size.width
                    for y in 0..<outHeight {
                        let fy = rows.fraction[y]
                        blendRow(plane + rows.lower[y] * size.width, columns, into: &upperRow)
                        blendRow(plane + rows.upper[y] * size.width, columns, into: &lowerRow)
                        let destination = out.baseAddress! + (c * outHeight + y) * outWidth
                        for x in 0..<outWidth {
                            destination[x] = (1 - fy) * upperRow[x] + fy * lowerRow[x]
                        }
                    }
                }
            }
        }
        return output
    }

    @inline(__always)
    private static func blendRow(_ row: UnsafePointer<Float>, _ columns: AxisSamples, into result: inout [Float]) {
        for x in 0..<result.count {
            let fx = columns.fraction[x]
            result[x] = (1 - fx) * row[columns.lower[x]] + fx * row[columns.upper[x]]
        }
    }
}
