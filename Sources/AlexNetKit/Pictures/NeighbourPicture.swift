/// Nearest neighbours like Figure 4: each row a query image then its neighbours (closest first), a gap
/// after the query; optional caption per row (e.g. the query's class) and per image (e.g. distance).
///
/// Layout, for R rows of at most n images, every image magnified `scale` s,
/// tiles `T_w = s * (widest W)` by `T_h = s * (tallest H)` (an image smaller
/// than the tile is centred in it), margin m = 6, gap g = 2 between
/// neighbours, gap q = 12 after the query (a light grey line in its middle),
/// 4 pixels between rows:
/// - `captionWidth` = widest row caption (scale 1) + 8, or 0 without row captions;
/// - `captionHeight` = 3 + 7 = 10 when any image has a caption, else 0 (the
///   caption goes under its image);
/// - image j of row i has its tile's top-left pixel at
///   `x = m + captionWidth + j * T_w + (j >= 1 ? q + (j - 1) * g : 0)`,
///   `y = m + i * (T_h + captionHeight + 4)`;
/// - width `2m + captionWidth + n * T_w + (n > 1 ? q + (n - 2) * g : 0)`,
///   height `2m + R * (T_h + captionHeight) + (R - 1) * 4`.
public enum NeighbourPicture {
    /// Blank border around the picture.
    public static let margin = 6
    /// Gap between neighbours in a row.
    public static let gap = 2
    /// Gap between the query and its first neighbour.
    public static let queryGap = 12
    /// Gap between rows.
    public static let rowGap = 4

    /// rows: per row the query then neighbours, each image a Tensor<Float> [C, H, W] (C 1 or 3) of display
    /// values in 0...255 (clamped), magnified `scale`.
    /// captions: one per row or none, written left of the row (e.g. the query's class).
    /// imageCaptions: per row, one per image (or none for that row), written
    /// under each image (e.g. the distance to the query); empty for none.
    ///
    /// Values are rounded to the nearest integer after clamping; grey images are drawn grey.
    /// - Throws: ``ShapeError`` for an image that is not `[1 or 3, H, W]` with
    ///   H, W >= 1; ``ConfigurationError`` for no rows, an empty row, caption
    ///   counts that do not match, or a scale below 1; ``NonFiniteError`` for a NaN.
    public static func render(rows: [[Tensor<Float>]], captions: [String] = [], imageCaptions: [[String]] = [],
                              scale: Int = 3) throws -> RGBImage {
        func fail(_ problem: String) -> ConfigurationError {
            ConfigurationError(component: "NeighbourPicture", problem: problem)
        }
        guard !rows.isEmpty else { throw fail("no rows") }
        if let empty = rows.firstIndex(where: \.isEmpty) { throw fail("row \(empty) has no images") }
        guard captions.isEmpty || captions.count == rows.count else {
            throw fail("\(captions.count) captions for \(rows.count) rows; give one per row or none")
        }
        guard imageCaptions.isEmpty || imageCaptions.count == rows.count else {
            throw fail("image captions for \(imageCaptions.count) rows, there are \(rows.count); give one list per row or none")
        }
        for (i, row) in imageCaptions.enumerated() where !row.isEmpty && row.count != rows[i].count {
            throw fail("row \(i) has \(rows[i].count) images and \(row.count) image captions")
        }
        guard scale >= 1 else { throw fail("scale \(scale) must be at least 1") }
        for (i, row) in rows.enumerated() {
            for (j, image) in row.enumerated() {
                let shape = image.shape
                guard shape.rank == 3, shape[0] == 1 || shape[0] == 3, shape[1] >= 1, shape[2] >= 1 else {
                    throw ShapeError(operation: "NeighbourPicture", argument: "rows[\(i)][\(j)]",
                                     expected: "[C, H, W] with C 1 or 3", actual: shape)
                }
                try image.checkFinite(name: "NeighbourPicture rows[\(i)][\(j)]")
            }
        }

        let images = rows.joined()
        let tileWidth = scale * (images.map { $0.shape[2] }.max() ?? 1)
        let tileHeight = scale * (images.map { $0.shape[1] }.max() ?? 1)
        let longest = rows.map(\.count).max() ?? 1
        let captionWidth = captions.isEmpty ? 0 : (captions.map { RGBImage.textWidth($0) }.max() ?? 0) + 8
        let captionHeight = imageCaptions.contains { !$0.isEmpty } ? 3 + RGBImage.textHeight() : 0
        let rowHeight = tileHeight + captionHeight
        let width = 2 * margin + captionWidth + longest * tileWidth + (longest > 1 ? queryGap + (longest - 2) * gap : 0)
        let height = 2 * margin + rows.count * rowHeight + (rows.count - 1) * rowGap
        var picture = RGBImage(width: width, height: height)

        for (i, row) in rows.enumerated() {
            let top = margin + i * (rowHeight + rowGap)
            if !captions.isEmpty {
                picture.text(captions[i], x: margin, y: top + (tileHeight - RGBImage.textHeight()) / 2)
            }
            if row.count > 1 {
                // A thin rule in the middle of the query gap sets the query apart.
                picture.fill(x: margin + captionWidth + tileWidth + queryGap / 2, y: top, width: 1, height: tileHeight,
                             colour: .lightGrey)
            }
            for (j, image) in row.enumerated() {
                let left = margin + captionWidth + j * tileWidth + (j >= 1 ? queryGap + (j - 1) * gap : 0)
                let magnified = magnify(image, scale: scale)
                picture.draw(magnified, x: left + (tileWidth - magnified.width) / 2,
                             y: top + (tileHeight - magnified.height) / 2)
                if !imageCaptions.isEmpty, !imageCaptions[i].isEmpty {
                    picture.text(imageCaptions[i][j], x: left, y: top + tileHeight + 3)
                }
            }
        }
        return picture
    }

    /// An image [C, H, W] of display values as pixels, each a `scale` x `scale` square.
    private static func magnify(_ image: Tensor<Float>, scale: Int) -> RGBImage {
        let channels = image.shape[0], height = image.shape[1], width = image.shape[2]
        let plane = height * width
        var result = RGBImage(width: width * scale, height: height * scale)
        func level(_ value: Float) -> UInt8 { UInt8(min(255, max(0, value)).rounded()) }
        for y in 0..<height {
            for x in 0..<width {
                let p = y * width + x
                let r = level(image.storage[p])
                let colour = channels == 3 ? RGB(r, level(image.storage[plane + p]), level(image.storage[2 * plane + p]))
                    : RGB(r, r, r)
                result.fill(x: x * scale, y: y * scale, width: scale, height: scale, colour: colour)
            }
        }
        return result
    }
}
