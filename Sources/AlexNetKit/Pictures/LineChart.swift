import Foundation

/// One line of a chart.
public struct ChartSeries: Sendable {
    /// The legend entry; series with the same name share one entry (and should
    /// share a colour), so ten seeds and their mean can be one item. An empty
    /// name keeps the series out of the legend.
    public var name: String
    /// The line's colour (``RGB/palette(_:)`` gives well-separated ones).
    public var colour: RGB
    /// The data, drawn in the order given; a NaN or infinite coordinate breaks
    /// the line there, and a finite point with no finite neighbour is drawn as a dot.
    public var points: [(x: Double, y: Double)]
    /// Thick (3 pixels at the default size) for the lines that matter, e.g. a
    /// mean; thin (1 pixel) for individual runs behind it. Thin lines are drawn first.
    public var thick: Bool

    /// A series; see the properties.
    public init(name: String, colour: RGB, points: [(x: Double, y: Double)], thick: Bool = true) {
        self.name = name
        self.colour = colour
        self.points = points
        self.thick = thick
    }
}

/// A line chart: title, axis labels, "nice" tick values with labels on both
/// axes, light grid lines, a legend listing each distinct series name once
/// (series that share a name share a legend entry; e.g. seeds drawn thin with
/// the same name/colour and a thick mean line), optional fixed y range,
/// optional horizontal reference lines (e.g. error thresholds) drawn dashed with a label.
///
/// Without a fixed range an axis spans the finite data (and, for y, the
/// reference lines) widened to whole tick steps; ticks are 1, 2 or 5 times a
/// power of ten, about five per axis. Text scales with the picture: the font
/// is magnified `max(1, min(width, height) / 500)` times (twice that for the
/// title and axis labels). The legend sits right of the plot.
public struct LineChart: Sendable {
    /// Above the plot; empty for none.
    public var title: String
    /// Under the x axis; empty for none.
    public var xLabel: String
    /// Beside the y axis, reading upwards; empty for none.
    public var yLabel: String
    /// The lines, drawn thin ones first, then thick ones, each group in order.
    public var series: [ChartSeries]
    /// A fixed y range (data outside it is clipped at the plot's edge); nil
    /// spans the data. Ignored unless both ends are finite.
    public var yRange: ClosedRange<Double>?
    /// A fixed x range, as ``yRange``.
    public var xRange: ClosedRange<Double>?
    /// Horizontal dashed lines at `y` with `label` written above their right
    /// end; lines outside a fixed y range are left out.
    public var referenceLines: [(y: Double, label: String)]

    /// A chart with no ranges fixed and no reference lines.
    public init(title: String, xLabel: String, yLabel: String, series: [ChartSeries] = []) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.yRange = nil
        self.xRange = nil
        self.referenceLines = []
    }

    /// Renders; empty series or all-NaN data still gives a valid image with axes (and "no data").
    /// Sides below 1 pixel are taken as 1.
    public func render(width: Int = 900, height: Int = 560) -> RGBImage {
        let layout = ChartLayout(self, width: width, height: height)
        var image = RGBImage(width: layout.width, height: layout.height)
        let s = layout.scale
        let plot = RGBImage.Clip(minX: layout.left, minY: layout.top, maxX: layout.right, maxY: layout.bottom)

        // Grid first, so everything else is drawn over it.
        for tick in layout.y.ticks {
            let y = Int(layout.pixelY(tick).rounded())
            image.fill(x: layout.left, y: y, width: layout.right - layout.left + 1, height: 1, colour: .lightGrey, clip: plot)
        }
        for tick in layout.x.ticks {
            let x = Int(layout.pixelX(tick).rounded())
            image.fill(x: x, y: layout.top, width: 1, height: layout.bottom - layout.top + 1, colour: .lightGrey, clip: plot)
        }
        let references = referenceLines.filter { $0.y.isFinite && layout.y.lower <= $0.y && $0.y <= layout.y.upper }
        for reference in references {
            image.dashedHorizontal(y: Int(layout.pixelY(reference.y).rounded()), from: layout.left, to: layout.right,
                                   colour: LineChart.referenceColour, dash: 6 * s, thickness: s)
        }

        for thick in [false, true] {
            for line in series where line.thick == thick {
                drawSeries(line, on: &image, layout: layout, clip: plot)
            }
        }
        if !layout.hasData {
            let message = "no data"
            image.text(message, x: (layout.left + layout.right - RGBImage.textWidth(message, scale: 2 * s)) / 2,
                       y: (layout.top + layout.bottom - RGBImage.textHeight(scale: 2 * s)) / 2, colour: .grey, scale: 2 * s)
        }
        for reference in references where !reference.label.isEmpty {
            // On a white patch: the label is read over whatever lines pass there.
            let y = Int(layout.pixelY(reference.y).rounded()) - 3 * s - RGBImage.textHeight(scale: s)
            let x = layout.right - 4 * s - RGBImage.textWidth(reference.label, scale: s)
            image.fill(x: x - s, y: y - s, width: RGBImage.textWidth(reference.label, scale: s) + 2 * s,
                       height: RGBImage.textHeight(scale: s) + 2 * s, colour: .white, clip: plot)
            image.text(reference.label, x: x, y: y, colour: LineChart.referenceColour, scale: s)
        }

        image.outline(x0: layout.left, y0: layout.top, x1: layout.right, y1: layout.bottom, colour: .black)
        drawTicks(on: &image, layout: layout)
        drawLabels(on: &image, layout: layout)
        drawLegend(on: &image, layout: layout)
        return image
    }

    /// The pixel position of a data point in a render of this size (so tests can check known pixels).
    /// Round both coordinates for the pixel a line through the point colours.
    public func pixel(x: Double, y: Double, width: Int = 900, height: Int = 560) -> (x: Double, y: Double) {
        let layout = ChartLayout(self, width: width, height: height)
        return (layout.pixelX(x), layout.pixelY(y))
    }

    /// Reference lines and their labels.
    static let referenceColour = RGB(90, 90, 90)

    /// The legend: each distinct non-empty name once, in order of first
    /// appearance, with the first such series' colour, thick if any is.
    var legendEntries: [(name: String, colour: RGB, thick: Bool)] {
        var entries: [(name: String, colour: RGB, thick: Bool)] = []
        for line in series where !line.name.isEmpty {
            if let i = entries.firstIndex(where: { $0.name == line.name }) {
                entries[i].thick = entries[i].thick || line.thick
            } else {
                entries.append((line.name, line.colour, line.thick))
            }
        }
        return entries
    }

    private func drawSeries(_ line: ChartSeries, on image: inout RGBImage, layout: ChartLayout, clip: RGBImage.Clip) {
        let thickness = line.thick ? 3 * layout.scale : layout.scale
        let positions = line.points.map { point -> (x: Double, y: Double)? in
            point.x.isFinite && point.y.isFinite ? (layout.pixelX(point.x), layout.pixelY(point.y)) : nil
        }
        for (i, position) in positions.enumerated() {
            guard let position else { continue }
            let next = i + 1 < positions.count ? positions[i + 1] : nil
            if let next {
                image.line(from: position, to: next, colour: line.colour, width: thickness, clip: clip)
            } else if i == 0 || positions[i - 1] == nil, abs(position.x) < 1e9, abs(position.y) < 1e9 {
                // A point on its own would otherwise not show at all. (One far
                // outside a fixed range is off the plot; the bounds keep Int() safe.)
                let size = thickness + 2
                image.fill(x: Int(position.x.rounded()) - size / 2, y: Int(position.y.rounded()) - size / 2,
                           width: size, height: size, colour: line.colour, clip: clip)
            }
        }
    }

    private func drawTicks(on image: inout RGBImage, layout: ChartLayout) {
        let s = layout.scale, tickLength = 4 * s
        for (tick, label) in zip(layout.x.ticks, layout.x.labels) {
            let x = Int(layout.pixelX(tick).rounded())
            image.fill(x: x, y: layout.bottom + 1, width: 1, height: tickLength, colour: .black)
            image.text(label, x: x - RGBImage.textWidth(label, scale: s) / 2, y: layout.bottom + 1 + tickLength + 3 * s,
                       scale: s)
        }
        for (tick, label) in zip(layout.y.ticks, layout.y.labels) {
            let y = Int(layout.pixelY(tick).rounded())
            image.fill(x: layout.left - tickLength, y: y, width: tickLength, height: 1, colour: .black)
            image.text(label, x: layout.left - tickLength - 3 * s - RGBImage.textWidth(label, scale: s),
                       y: y - RGBImage.textHeight(scale: s) / 2, scale: s)
        }
    }

    private func drawLabels(on image: inout RGBImage, layout: ChartLayout) {
        let big = 2 * layout.scale, middleX = (layout.left + layout.right) / 2
        if !title.isEmpty {
            image.text(title, x: middleX - RGBImage.textWidth(title, scale: big) / 2, y: layout.margin, scale: big)
        }
        if !xLabel.isEmpty {
            image.text(xLabel, x: middleX - RGBImage.textWidth(xLabel, scale: big) / 2,
                       y: layout.height - layout.margin - RGBImage.textHeight(scale: big), scale: big)
        }
        if !yLabel.isEmpty {
            image.verticalText(yLabel, x: layout.margin,
                               y: (layout.top + layout.bottom) / 2 - RGBImage.textWidth(yLabel, scale: big) / 2, scale: big)
        }
    }

    private func drawLegend(on image: inout RGBImage, layout: ChartLayout) {
        let entries = legendEntries
        guard !entries.isEmpty else { return }
        let s = layout.scale, rowHeight = RGBImage.textHeight(scale: s) + 6 * s
        let x = layout.right + layout.legendGap
        for (i, entry) in entries.enumerated() {
            let y = layout.top + 4 * s + i * rowHeight
            let middle = y + RGBImage.textHeight(scale: s) / 2
            let thickness = entry.thick ? 3 * s : s
            image.fill(x: x + 4 * s, y: middle - (thickness - 1) / 2, width: 20 * s, height: thickness, colour: entry.colour)
            image.text(entry.name, x: x + 30 * s, y: y, scale: s)
        }
        image.outline(x0: x, y0: layout.top, x1: x + layout.legendWidth - 1, y1: layout.top + 2 * s + entries.count * rowHeight,
                      colour: .lightGrey)
    }
}

/// Where a chart of a given size puts its plot, and its axes' ranges and
/// ticks: shared by ``LineChart/render(width:height:)`` and
/// ``LineChart/pixel(x:y:width:height:)`` so that the two always agree.
struct ChartLayout {
    var width: Int, height: Int
    /// The font's magnification for ticks and legend (titles use twice this).
    var scale: Int
    /// Blank border around everything.
    var margin: Int
    /// The plot frame, inclusive pixel positions.
    var left: Int, top: Int, right: Int, bottom: Int
    var x: ChartAxis, y: ChartAxis
    /// Whether any series has a finite point.
    var hasData: Bool
    /// Space between the plot and the legend, and the legend's width (0 without one).
    var legendGap: Int, legendWidth: Int

    init(_ chart: LineChart, width: Int, height: Int) {
        self.width = max(1, width)
        self.height = max(1, height)
        let s = max(1, min(self.width, self.height) / 500)
        scale = s
        margin = 10 * s

        var xs: [Double] = [], ys: [Double] = []
        for line in chart.series {
            for point in line.points where point.x.isFinite && point.y.isFinite {
                xs.append(point.x)
                ys.append(point.y)
            }
        }
        hasData = !xs.isEmpty
        ys += chart.referenceLines.map(\.y).filter(\.isFinite)
        x = ChartAxis(data: xs, fixed: chart.xRange)
        y = ChartAxis(data: ys, fixed: chart.yRange)

        let big = 2 * s, tickLength = 4 * s
        let entries = chart.legendEntries
        let widestName = entries.map { RGBImage.textWidth($0.name, scale: s) }.max() ?? 0
        legendGap = 10 * s
        legendWidth = entries.isEmpty ? 0 : min(30 * s + widestName + 6 * s, self.width / 3)
        let widestYTick = y.labels.map { RGBImage.textWidth($0, scale: s) }.max() ?? 0
        let lastXTick = x.labels.last.map { RGBImage.textWidth($0, scale: s) } ?? 0

        top = margin + (chart.title.isEmpty ? 0 : RGBImage.textHeight(scale: big) + 10 * s)
        bottom = self.height - 1 - margin - (chart.xLabel.isEmpty ? 0 : RGBImage.textHeight(scale: big) + 6 * s)
            - RGBImage.textHeight(scale: s) - 3 * s - tickLength
        left = margin + (chart.yLabel.isEmpty ? 0 : RGBImage.textHeight(scale: big) + 8 * s) + widestYTick + 3 * s + tickLength
        right = self.width - 1 - max(margin, lastXTick / 2 + 2 * s) - (legendWidth > 0 ? legendWidth + legendGap : 0)
        // A picture too small for its text still gets a (tiny) plot; the text is clipped.
        right = max(right, left + 1)
        bottom = max(bottom, top + 1)
    }

    /// The horizontal pixel position of data value `value`.
    func pixelX(_ value: Double) -> Double {
        Double(left) + (value - x.lower) / (x.upper - x.lower) * Double(right - left)
    }

    /// The vertical pixel position of data value `value` (larger values higher up).
    func pixelY(_ value: Double) -> Double {
        Double(bottom) - (value - y.lower) / (y.upper - y.lower) * Double(bottom - top)
    }
}

/// One axis: its range (`lower < upper`, both finite), tick values inside it and their labels.
struct ChartAxis {
    var lower: Double, upper: Double
    var ticks: [Double] = []
    var labels: [String] = []

    /// The range of `data` widened to whole tick steps, or `fixed` as given
    /// when both its ends are finite; 0...1 without either.
    init(data: [Double], fixed: ClosedRange<Double>?) {
        let isFixed = fixed.map { $0.lowerBound.isFinite && $0.upperBound.isFinite } ?? false
        if isFixed, let fixed {
            (lower, upper) = (fixed.lowerBound, fixed.upperBound)
        } else if let low = data.min(), let high = data.max() {
            (lower, upper) = (low, high)
        } else {
            (lower, upper) = (0, 1)
        }
        // Keep the span finite and positive, so positions and steps are numbers.
        let limit = Double.greatestFiniteMagnitude / 4
        lower = max(lower, -limit)
        upper = min(upper, limit)
        if upper <= lower {
            let pad = abs(lower) > 1e-100 ? abs(lower) * 0.1 : 1
            (lower, upper) = (lower - pad, upper + pad)
        }
        let step = ChartAxis.niceStep(upper - lower)
        if !isFixed {
            let (widenedLower, widenedUpper) = ((lower / step).rounded(.down) * step, (upper / step).rounded(.up) * step)
            if widenedLower.isFinite && widenedUpper.isFinite && widenedLower < widenedUpper {
                (lower, upper) = (widenedLower, widenedUpper)
            }
        }
        // Ticks as first + i * step (not a running sum, which drifts); at most
        // a few dozen whatever the numbers, since the step is about a fifth of the span.
        let tolerance = step * 1e-9
        let first = (lower / step - 1e-9).rounded(.up) * step
        for i in 0..<40 {
            let tick = first + Double(i) * step
            if tick > upper + tolerance { break }
            if tick >= lower - tolerance { ticks.append(abs(tick) < tolerance ? 0 : tick) }
        }
        labels = ticks.map { ChartAxis.format($0, step: step) }
    }

    /// 1, 2 or 5 times a power of ten, near a fifth of `span`.
    static func niceStep(_ span: Double) -> Double {
        let raw = span / 5
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / magnitude
        let nice: Double = fraction < 1.5 ? 1 : fraction < 3.5 ? 2 : fraction < 7.5 ? 5 : 10
        let step = nice * magnitude
        // A span near the smallest doubles has no power of ten below it: one tick step then.
        return step.isFinite && step > 0 ? step : span
    }

    /// `value` with as many decimals as the step needs (0.25 steps never
    /// occur: 0.2 needs 1, 0.05 needs 2); very large or small numbers in
    /// exponent form.
    static func format(_ value: Double, step: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 1e6 || step < 1e-5 { return String(format: "%.3g", value) }
        let decimals = max(0, Int(-(log10(step) + 1e-9).rounded(.down)))
        return String(format: "%.\(decimals)f", value)
    }
}
