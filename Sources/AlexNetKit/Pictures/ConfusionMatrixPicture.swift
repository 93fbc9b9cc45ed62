/// A confusion matrix: rows actual class, columns predicted; each cell shaded by its row-normalised
/// fraction (white 0 -> dark blue 1; text in white on dark cells), the count written in each cell,
/// class names on both axes, title.
///
/// Layout, for k classes, cell size c, and `L` the widest class name in pixels
/// (``RGBImage/textWidth(_:scale:)`` at scale 1), with margin m = 10:
/// - the title (scale 1) at `(m, m)`;
/// - row names right-aligned left of the grid, column names written upwards
///   above it (both L long at most, 6 pixels from the grid);
/// - the grid's top-left pixel at `gridLeft = m + L + 6`,
///   `gridTop = m + 7 + 8 + L + 6`; cell (actual a, predicted p) covers
///   `gridLeft + p * c ..< gridLeft + (p + 1) * c` by
///   `gridTop + a * c ..< gridTop + (a + 1) * c`, its first column and row
///   being grid lines, with one more grid line after the last cell;
/// - width `max(gridLeft + k * c + 1 + m, m + textWidth(title) + m)`,
///   height `gridTop + k * c + 1 + m`.
public enum ConfusionMatrixPicture {
    /// A cell whose row holds nothing of the actual class or none predicted as this one.
    public static let emptyColour = RGB.white
    /// A cell holding its whole row: every image of the class predicted as this one.
    public static let fullColour = RGB(8, 48, 107)
    /// The lines between cells.
    static let gridColour = RGB(190, 190, 190)

    /// counts: classes x classes row-major (counts[actual * classes + predicted]), classNames.count == classes.
    ///
    /// Cells are shaded by `count / (sum of the row)` (a row with no images is
    /// white); counts are centred in their cells, white where the fraction is
    /// above 0.5, at font scale 2 when the longest fits with 8 pixels to spare
    /// (and the cell is at least 28 pixels), else at scale 1 (clipped to the cell if too long).
    /// - Throws: ``ShapeError`` when `counts` is not `classes * classes` long;
    ///   ``ConfigurationError`` for no classes, a negative count or a cell
    ///   below 8 pixels.
    public static func render(counts: [Int], classNames: [String],
                              title: String = "Confusion matrix (rows: actual, columns: predicted)",
                              cell: Int = 44) throws -> RGBImage {
        let classes = classNames.count
        guard classes >= 1 else { throw ConfigurationError(component: "ConfusionMatrixPicture", problem: "no class names") }
        guard counts.count == classes * classes else {
            throw ShapeError(operation: "ConfusionMatrixPicture", argument: "counts",
                             expected: "[\(classes * classes)] (\(classes) x \(classes) for \(classes) class names)",
                             actual: Shape([counts.count]))
        }
        if let negative = counts.firstIndex(where: { $0 < 0 }) {
            throw ConfigurationError(component: "ConfusionMatrixPicture",
                                     problem: "count \(counts[negative]) at actual \(negative / classes), predicted \(negative % classes) is negative")
        }
        guard cell >= 8 else {
            throw ConfigurationError(component: "ConfusionMatrixPicture", problem: "cell \(cell) must be at least 8 pixels")
        }

        let margin = 10
        let nameWidth = classNames.map { RGBImage.textWidth($0) }.max() ?? 0
        let gridLeft = margin + nameWidth + 6
        let gridTop = margin + RGBImage.textHeight() + 8 + nameWidth + 6
        let gridSize = classes * cell + 1
        var image = RGBImage(width: max(gridLeft + gridSize + margin, margin + RGBImage.textWidth(title) + margin),
                             height: gridTop + gridSize + margin)
        image.text(title, x: margin, y: margin)

        for (i, name) in classNames.enumerated() {
            let middle = i * cell + cell / 2 - RGBImage.textHeight() / 2
            image.text(name, x: gridLeft - 6 - RGBImage.textWidth(name), y: gridTop + middle)
            image.verticalText(name, x: gridLeft + middle, y: gridTop - 6 - RGBImage.textWidth(name))
        }
        // One text size for every cell: 2 where the longest count fits with room to spare.
        let widest = counts.map { RGBImage.textWidth(String($0), scale: 2) }.max() ?? 0
        let textScale = widest <= cell - 8 && RGBImage.textHeight(scale: 2) <= cell / 2 ? 2 : 1
        for actual in 0..<classes {
            let row = counts[(actual * classes)..<((actual + 1) * classes)]
            let total = row.reduce(0) { clampedSum($0, $1) }
            for predicted in 0..<classes {
                let count = row[row.startIndex + predicted]
                let fraction = total > 0 ? Double(count) / Double(total) : 0
                image.draw(cellImage(count: count, fraction: fraction, size: cell, textScale: textScale),
                           x: gridLeft + predicted * cell, y: gridTop + actual * cell)
            }
        }
        // The closing lines right of the last column and under the last row.
        image.fill(x: gridLeft + classes * cell, y: gridTop, width: 1, height: gridSize, colour: gridColour)
        image.fill(x: gridLeft, y: gridTop + classes * cell, width: gridSize, height: 1, colour: gridColour)
        return image
    }

    /// The colour of a cell holding `fraction` of its row.
    public static func colour(fraction: Double) -> RGB {
        emptyColour.mixed(with: fullColour, fraction: fraction)
    }

    /// One cell, `size` x `size`: grid lines along its top and left, the
    /// shade, and the count centred (clipped to the cell by drawing it here).
    private static func cellImage(count: Int, fraction: Double, size: Int, textScale scale: Int) -> RGBImage {
        var image = RGBImage(width: size, height: size, background: colour(fraction: fraction))
        image.fill(x: 0, y: 0, width: size, height: 1, colour: gridColour)
        image.fill(x: 0, y: 0, width: 1, height: size, colour: gridColour)
        let text = String(count)
        image.text(text, x: 1 + (size - 1 - RGBImage.textWidth(text, scale: scale)) / 2,
                   y: 1 + (size - 1 - RGBImage.textHeight(scale: scale)) / 2,
                   colour: fraction > 0.5 ? .white : .black, scale: scale)
        return image
    }
}
