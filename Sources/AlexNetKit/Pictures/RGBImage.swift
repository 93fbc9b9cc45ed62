/// 8-bit RGB colour.
public struct RGB: Equatable, Hashable, Sendable {
    /// Red, green and blue, 0 (none) to 255 (full).
    public var r, g, b: UInt8

    /// A colour from its red, green and blue components.
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// 255, 255, 255.
    public static let white = RGB(255, 255, 255)
    /// 0, 0, 0.
    public static let black = RGB(0, 0, 0)
    /// 128, 128, 128: frames and secondary text.
    public static let grey = RGB(128, 128, 128)
    /// 225, 225, 225: grid lines, faint enough that data drawn over them stands out.
    public static let lightGrey = RGB(225, 225, 225)

    /// The chart series colours: twelve hues far apart from each other and
    /// from the greys used for grid and frame, dark enough to read on white.
    static let paletteColours: [RGB] = [
        RGB(31, 119, 180),   // blue
        RGB(255, 127, 14),   // orange
        RGB(44, 160, 44),    // green
        RGB(214, 39, 40),    // red
        RGB(148, 103, 189),  // purple
        RGB(140, 86, 75),    // brown
        RGB(227, 119, 194),  // pink
        RGB(188, 189, 34),   // olive
        RGB(23, 190, 207),   // cyan
        RGB(57, 59, 121),    // navy
        RGB(0, 110, 80),     // dark teal
        RGB(170, 0, 90),     // crimson
    ]

    /// A fixed palette of 12 well-separated colours for chart series;
    /// `palette(i)` wraps around (negative indices too).
    public static func palette(_ index: Int) -> RGB {
        let count = paletteColours.count
        return paletteColours[((index % count) + count) % count]
    }

    /// The colour `fraction` of the way from `self` to `other` (clamped to 0...1).
    public func mixed(with other: RGB, fraction: Double) -> RGB {
        let t = fraction.isNaN ? 0 : min(1, max(0, fraction))
        func channel(_ a: UInt8, _ b: UInt8) -> UInt8 {
            UInt8((Double(a) + (Double(b) - Double(a)) * t).rounded())
        }
        return RGB(channel(r, other.r), channel(g, other.g), channel(b, other.b))
    }
}

/// A width x height RGB canvas, rows top to bottom, `pixels[(y * width + x) * 3 + c]`.
///
/// Coordinates: pixel `(x, y)` is column `x` from the left and row `y` from
/// the top; a fractional position `(x, y)` (lines) lands in the pixel whose
/// centre is nearest, i.e. `(x.rounded(), y.rounded())`. Every drawing call is
/// clipped to the canvas, so callers may draw partly or wholly outside it.
public struct RGBImage: Equatable, Sendable {
    /// Columns (at least 1).
    public let width: Int
    /// Rows (at least 1).
    public let height: Int
    /// `height * width * 3` bytes, row-major, R G B interleaved.
    public var pixels: [UInt8]

    /// A canvas filled with `background`. A PNG holds at least one pixel, so
    /// both sides must be at least 1.
    public init(width: Int, height: Int, background: RGB = .white) {
        precondition(width >= 1 && height >= 1, "RGBImage: \(width)x\(height) has no pixels")
        self.width = width
        self.height = height
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        if background != .black {
            for i in stride(from: 0, to: pixels.count, by: 3) {
                pixels[i] = background.r
                pixels[i + 1] = background.g
                pixels[i + 2] = background.b
            }
        }
        self.pixels = pixels
    }

    /// A canvas around existing bytes (`width * height * 3` of them, see ``pixels``).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 1 && height >= 1, "RGBImage: \(width)x\(height) has no pixels")
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The colour of pixel `(x, y)`, written `image[x, y]`; both must be inside the canvas.
    public subscript(x: Int, y: Int) -> RGB {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "RGBImage: (\(x), \(y)) outside \(width)x\(height)")
            let i = (y * width + x) * 3
            return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height, "RGBImage: (\(x), \(y)) outside \(width)x\(height)")
            let i = (y * width + x) * 3
            pixels[i] = newValue.r
            pixels[i + 1] = newValue.g
            pixels[i + 2] = newValue.b
        }
    }

    /// True when `(x, y)` is a pixel of the canvas.
    public func contains(x: Int, y: Int) -> Bool { x >= 0 && x < width && y >= 0 && y < height }

    /// Fills the rectangle whose top-left pixel is `(x, y)`, clipped to the canvas.
    public mutating func fill(x: Int, y: Int, width: Int, height: Int, colour: RGB) {
        fill(x: x, y: y, width: width, height: height, colour: colour, clip: bounds)
    }

    /// Draws a straight line between two points, `width` pixels thick (a
    /// `width` x `width` square stamped along it), clipped to the canvas. A
    /// line with a NaN or infinite end is skipped.
    public mutating func line(from: (x: Double, y: Double), to: (x: Double, y: Double), colour: RGB, width: Int = 1) {
        line(from: from, to: to, colour: colour, width: width, clip: bounds)
    }

    /// Writes `s` in ``BitmapFont`` with its top-left corner at `(x, y)`, each
    /// font pixel a `scale` x `scale` square, clipped to the canvas. Characters
    /// the font lacks are drawn as `?`.
    public mutating func text(_ s: String, x: Int, y: Int, colour: RGB = .black, scale: Int = 1) {
        let scale = max(1, scale)
        for (i, character) in s.enumerated() {
            let left = x + i * BitmapFont.advance * scale
            if left >= width { break }  // the rest is off the canvas
            let rows = BitmapFont.rows(for: character)
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (0b10000 >> column) != 0 {
                    fill(x: left + column * scale, y: y + row * scale, width: scale, height: scale, colour: colour)
                }
            }
        }
    }

    /// Writes `s` turned a quarter turn anticlockwise (reading bottom to top,
    /// as a y-axis label), inside the box whose top-left pixel is `(x, y)`:
    /// `7 * scale` wide and ``textWidth(_:scale:)`` tall.
    public mutating func verticalText(_ s: String, x: Int, y: Int, colour: RGB = .black, scale: Int = 1) {
        let scale = max(1, scale)
        let length = RGBImage.textWidth(s, scale: scale)
        for (i, character) in s.enumerated() {
            let along = i * BitmapFont.advance * scale  // distance from the text's start
            let rows = BitmapFont.rows(for: character)
            for (row, bits) in rows.enumerated() {
                for column in 0..<BitmapFont.glyphWidth where bits & (0b10000 >> column) != 0 {
                    // Horizontal (u, v) becomes (v, length - 1 - u): the glyph's top faces left.
                    let u = along + column * scale
                    fill(x: x + row * scale, y: y + length - u - scale, width: scale, height: scale, colour: colour)
                }
            }
        }
    }

    /// Width in pixels of `s` as ``text(_:x:y:colour:scale:)`` draws it: from
    /// the first glyph's left column to the last glyph's right column (0 when empty).
    public static func textWidth(_ s: String, scale: Int = 1) -> Int {
        BitmapFont.width(of: s, scale: scale)
    }

    /// Height in pixels of a line of text at `scale`.
    public static func textHeight(scale: Int = 1) -> Int { BitmapFont.glyphHeight * max(1, scale) }

    /// Copies `other` with its top-left pixel at `(x, y)`, clipped to this canvas.
    public mutating func draw(_ other: RGBImage, x: Int, y: Int) {
        let left = max(0, x), right = min(width, clampedSum(x, other.width))
        let top = max(0, y), bottom = min(height, clampedSum(y, other.height))
        guard left < right, top < bottom else { return }
        let rowBytes = (right - left) * 3
        for row in top..<bottom {
            let source = ((row - y) * other.width + (left - x)) * 3
            let target = (row * width + left) * 3
            pixels.replaceSubrange(target..<(target + rowBytes), with: other.pixels[source..<(source + rowBytes)])
        }
    }

    // MARK: Drawing inside a clip rectangle (charts keep lines inside the plot)

    /// An inclusive rectangle of pixels: `minX...maxX` by `minY...maxY`.
    struct Clip {
        var minX: Int, minY: Int, maxX: Int, maxY: Int
    }

    /// The whole canvas.
    var bounds: Clip { Clip(minX: 0, minY: 0, maxX: width - 1, maxY: height - 1) }

    /// ``fill(x:y:width:height:colour:)`` limited to `clip` (itself limited to the canvas).
    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, colour: RGB, clip: Clip) {
        guard w > 0, h > 0 else { return }
        let left = max(x, clip.minX, 0), right = min(clampedSum(x, w) - 1, clip.maxX, width - 1)
        let top = max(y, clip.minY, 0), bottom = min(clampedSum(y, h) - 1, clip.maxY, height - 1)
        guard left <= right, top <= bottom else { return }
        for row in top...bottom {
            var i = (row * width + left) * 3
            for _ in left...right {
                pixels[i] = colour.r
                pixels[i + 1] = colour.g
                pixels[i + 2] = colour.b
                i += 3
            }
        }
    }

    /// ``line(from:to:colour:width:)`` limited to `clip`.
    mutating func line(from a: (x: Double, y: Double), to b: (x: Double, y: Double), colour: RGB, width: Int,
                       clip: Clip) {
        guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return }
        let thickness = max(1, width)
        // Cut the segment to the clip box widened by the stamp, so that a line
        // from far away (1e300, say) costs no more steps than one on the canvas.
        let pad = Double(thickness) + 1
        guard let (p, q) = RGBImage.clipSegment(a, b, minX: Double(clip.minX) - pad, minY: Double(clip.minY) - pad,
                                                maxX: Double(clip.maxX) + pad, maxY: Double(clip.maxY) + pad)
        else { return }
        let steps = Int(max(abs(q.x - p.x), abs(q.y - p.y)).rounded(.up))
        let back = (thickness - 1) / 2  // the stamp's extent up/left of the point
        for step in 0...steps {
            let t = steps == 0 ? 0 : Double(step) / Double(steps)
            let x = Int((p.x + t * (q.x - p.x)).rounded()), y = Int((p.y + t * (q.y - p.y)).rounded())
            fill(x: x - back, y: y - back, width: thickness, height: thickness, colour: colour, clip: clip)
        }
    }

    /// A horizontal dashed line at row `y` from `x0` to `x1` (inclusive):
    /// `dash` pixels on, `dash` off, starting on.
    mutating func dashedHorizontal(y: Int, from x0: Int, to x1: Int, colour: RGB, dash: Int = 6, thickness: Int = 1) {
        guard x0 <= x1 else { return }
        var x = x0
        while x <= x1 {
            fill(x: x, y: y - (thickness - 1) / 2, width: min(dash, x1 - x + 1), height: thickness, colour: colour)
            x += 2 * max(1, dash)
        }
    }

    /// The 1-pixel outline of the rectangle whose corners are `(x0, y0)` and `(x1, y1)` (inclusive).
    mutating func outline(x0: Int, y0: Int, x1: Int, y1: Int, colour: RGB) {
        fill(x: x0, y: y0, width: x1 - x0 + 1, height: 1, colour: colour)
        fill(x: x0, y: y1, width: x1 - x0 + 1, height: 1, colour: colour)
        fill(x: x0, y: y0, width: 1, height: y1 - y0 + 1, colour: colour)
        fill(x: x1, y: y0, width: 1, height: y1 - y0 + 1, colour: colour)
    }

    /// The part of segment `a`-`b` inside the box, or nil if none is
    /// (Cohen-Sutherland: move an outside end onto the side it is beyond, until
    /// both are inside). A line along an axis keeps its other coordinate
    /// exactly, however far away its ends are.
    static func clipSegment(_ a: (x: Double, y: Double), _ b: (x: Double, y: Double),
                            minX: Double, minY: Double, maxX: Double, maxY: Double)
        -> ((x: Double, y: Double), (x: Double, y: Double))? {
        func outside(_ v: (x: Double, y: Double)) -> Int {
            (v.x < minX ? 1 : v.x > maxX ? 2 : 0) | (v.y < minY ? 4 : v.y > maxY ? 8 : 0)
        }
        // How far `target` lies from `from` towards `to`, as a fraction, in
        // halves so that ends near the largest doubles do not overflow.
        func fraction(_ target: Double, _ from: Double, _ to: Double) -> Double {
            (target / 2 - from / 2) / (to / 2 - from / 2)
        }
        var (p, q) = (a, b)
        var (codeP, codeQ) = (outside(p), outside(q))
        for _ in 0..<8 {  // each pass puts one end on a side: four per end at most
            if codeP | codeQ == 0 { return (p, q) }
            if codeP & codeQ != 0 { return nil }  // both beyond the same side
            let code = codeP != 0 ? codeP : codeQ
            let moved: (x: Double, y: Double)
            if code & 3 != 0 {
                let x = code & 1 != 0 ? minX : maxX, t = fraction(x, p.x, q.x)
                moved = (x, p.y == q.y ? p.y : (1 - t) * p.y + t * q.y)
            } else {
                let y = code & 4 != 0 ? minY : maxY, t = fraction(y, p.y, q.y)
                moved = (p.x == q.x ? p.x : (1 - t) * p.x + t * q.x, y)
            }
            guard moved.x.isFinite, moved.y.isFinite else { return nil }
            if code == codeP { (p, codeP) = (moved, outside(moved)) } else { (q, codeQ) = (moved, outside(moved)) }
        }
        return codeP | codeQ == 0 ? (p, q) : nil
    }
}

/// `a + b`, saturating at the ends of `Int` instead of trapping, for clip
/// arithmetic on caller-given positions and sizes.
func clampedSum(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b > 0 ? Int.max : Int.min) : sum
}
