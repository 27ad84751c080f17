/// An RGB drawing surface with the primitives the figures need: rectangles, anti-aliased
/// lines, scaled matrices through a colormap, other images, and bitmap text.
///
/// Coordinates are pixels, origin at the top-left, x to the right, y down. Everything is
/// clipped to the canvas, so callers may draw partly outside it.
public struct Canvas: Sendable {
    public let width: Int
    public let height: Int
    /// Row-major RGB bytes, `(y * width + x) * 3 + channel`.
    public private(set) var pixels: [UInt8]

    /// A canvas filled with `background`.
    public init(width: Int, height: Int, background: Color = .white) throws {
        guard width >= 1, height >= 1, width <= 1 << 14, height <= 1 << 14 else {
            throw PlotError.invalidArgument(function: "Canvas", argument: "width × height",
                                            value: "\(width) × \(height)", expected: "1...16384 each")
        }
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, width: width, height: height, color: background)
    }

    /// The finished picture.
    public var image: Image {
        // `init` checked the size and `pixels` always holds width * height * 3 bytes.
        Image(validatedWidth: width, height: height, channels: 3, pixels: pixels)
    }

    /// The colour at `(x, y)`, or `nil` outside the canvas.
    public func color(x: Int, y: Int) -> Color? {
        guard x >= 0, y >= 0, x < width, y < height else { return nil }
        let offset = (y * width + x) * 3
        return Color(red: pixels[offset], green: pixels[offset + 1], blue: pixels[offset + 2])
    }

    // MARK: - Rectangles

    /// Fills the rectangle with top-left `(x, y)`, clipped to the canvas.
    public mutating func fill(x: Int, y: Int, width rectWidth: Int, height rectHeight: Int, color: Color) {
        let left = max(x, 0), right = min(x + rectWidth, width)
        let top = max(y, 0), bottom = min(y + rectHeight, height)
        guard left < right, top < bottom else { return }
        let canvasWidth = width
        pixels.withUnsafeMutableBufferPointer { buffer in
            for row in top..<bottom {
                var offset = (row * canvasWidth + left) * 3
                for _ in left..<right {
                    buffer[offset] = color.red
                    buffer[offset + 1] = color.green
                    buffer[offset + 2] = color.blue
                    offset += 3
                }
            }
        }
    }

    /// Draws the outline of a rectangle, `thickness` pixels wide, inside its bounds.
    public mutating func strokeRectangle(x: Int, y: Int, width rectWidth: Int, height rectHeight: Int,
                                         color: Color, thickness: Int = 1) {
        fill(x: x, y: y, width: rectWidth, height: thickness, color: color)
        fill(x: x, y: y + rectHeight - thickness, width: rectWidth, height: thickness, color: color)
        fill(x: x, y: y, width: thickness, height: rectHeight, color: color)
        fill(x: x + rectWidth - thickness, y: y, width: thickness, height: rectHeight, color: color)
    }

    // MARK: - Lines

    /// An anti-aliased line segment of `thickness` pixels between two points (pixel centres are
    /// at integer + 0.5). Each pixel near the segment is blended by its coverage, estimated
    /// from its distance to the segment.
    public mutating func drawLine(from start: (x: Double, y: Double), to end: (x: Double, y: Double),
                                  color: Color, thickness: Double = 1.5) {
        guard start.x.isFinite, start.y.isFinite, end.x.isFinite, end.y.isFinite else { return }
        let halfWidth = thickness / 2
        let left = max(Int((min(start.x, end.x) - halfWidth - 1).rounded(.down)), 0)
        let right = min(Int((max(start.x, end.x) + halfWidth + 1).rounded(.up)), width - 1)
        let top = max(Int((min(start.y, end.y) - halfWidth - 1).rounded(.down)), 0)
        let bottom = min(Int((max(start.y, end.y) + halfWidth + 1).rounded(.up)), height - 1)
        guard left <= right, top <= bottom else { return }

        let deltaX = end.x - start.x, deltaY = end.y - start.y
        let lengthSquared = deltaX * deltaX + deltaY * deltaY
        for row in top...bottom {
            for column in left...right {
                let pointX = Double(column) + 0.5, pointY = Double(row) + 0.5
                var along = 0.0
                if lengthSquared > 0 {
                    along = ((pointX - start.x) * deltaX + (pointY - start.y) * deltaY) / lengthSquared
                    along = min(max(along, 0), 1)
                }
                let nearestX = start.x + along * deltaX, nearestY = start.y + along * deltaY
                let distance = ((pointX - nearestX) * (pointX - nearestX)
                    + (pointY - nearestY) * (pointY - nearestY)).squareRoot()
                let coverage = min(max(halfWidth + 0.5 - distance, 0), 1)
                if coverage > 0 { blend(x: column, y: row, color: color, alpha: coverage) }
            }
        }
    }

    /// Mixes `color` into the pixel with weight `alpha` in [0, 1].
    public mutating func blend(x: Int, y: Int, color: Color, alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let offset = (y * width + x) * 3
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Double(old) * (1 - alpha) + Double(new) * alpha).rounded())
        }
        pixels[offset] = mix(pixels[offset], color.red)
        pixels[offset + 1] = mix(pixels[offset + 1], color.green)
        pixels[offset + 2] = mix(pixels[offset + 2], color.blue)
    }

    // MARK: - Matrices and images

    /// Draws a `rows × cols` row-major matrix with its top-left at `(x, y)`, each entry as a
    /// `cellWidth × cellHeight` block (nearest-neighbour upscaling). Values are mapped linearly
    /// from `range` to [0, 1] and coloured by `colormap`; NaN draws as the colour of 0.
    public mutating func drawMatrix(_ values: ArraySlice<Float>, rows: Int, columns: Int, x: Int, y: Int,
                                    cellWidth: Int, cellHeight: Int, colormap: Colormap,
                                    range: ClosedRange<Float>) {
        guard rows > 0, columns > 0, cellWidth > 0, cellHeight > 0, values.count >= rows * columns else { return }
        let table = colormap.table
        let low = range.lowerBound
        let span = range.upperBound - range.lowerBound
        let scale: Float = span > 0 ? 255 / span : 0
        let canvasWidth = width, canvasHeight = height
        pixels.withUnsafeMutableBufferPointer { buffer in
            values.withUnsafeBufferPointer { source in
                table.withUnsafeBufferPointer { colors in
                    for matrixRow in 0..<rows {
                        for matrixColumn in 0..<columns {
                            let value = source[matrixRow * columns + matrixColumn]
                            var level = (value - low) * scale
                            if !(level >= 0) { level = 0 }   // also catches NaN
                            if level > 255 { level = 255 }
                            let color = colors[Int(level + 0.5)]
                            let top = y + matrixRow * cellHeight, left = x + matrixColumn * cellWidth
                            for row in max(top, 0)..<min(top + cellHeight, canvasHeight) {
                                let start = max(left, 0), end = min(left + cellWidth, canvasWidth)
                                guard start < end else { continue }
                                var offset = (row * canvasWidth + start) * 3
                                for _ in start..<end {
                                    buffer[offset] = color.red
                                    buffer[offset + 1] = color.green
                                    buffer[offset + 2] = color.blue
                                    offset += 3
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Copies `image` (grayscale or RGB) with its top-left at `(x, y)`, clipped to the canvas.
    public mutating func draw(_ image: Image, x: Int, y: Int) {
        for row in 0..<image.height where y + row >= 0 && y + row < height {
            for column in 0..<image.width where x + column >= 0 && x + column < width {
                let source = (row * image.width + column) * image.channels
                let target = ((y + row) * width + x + column) * 3
                if image.channels == 1 {
                    let gray = image.pixels[source]
                    pixels[target] = gray; pixels[target + 1] = gray; pixels[target + 2] = gray
                } else {
                    pixels[target] = image.pixels[source]
                    pixels[target + 1] = image.pixels[source + 1]
                    pixels[target + 2] = image.pixels[source + 2]
                }
            }
        }
    }

    // MARK: - Text

    /// Draws one line of `text` with its top-left at `(x, y)`; each font pixel becomes a
    /// `scale × scale` block. Returns the width drawn.
    @discardableResult
    public mutating func drawText(_ text: String, x: Int, y: Int, scale: Int = 1, color: Color = .black) -> Int {
        let scale = max(scale, 1)
        var penX = x
        for scalar in text.unicodeScalars {
            let rows = BitmapFont.rows(for: scalar)
            for (rowIndex, bits) in rows.enumerated() where bits != 0 {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    fill(x: penX + column * scale, y: y + rowIndex * scale, width: scale, height: scale, color: color)
                }
            }
            penX += BitmapFont.advance * scale
        }
        return BitmapFont.textWidth(text, scale: scale)
    }

    /// Draws `text` rotated 90° counter-clockwise (reading bottom to top), for vertical axis
    /// labels. `(x, y)` is the top-left of the rotated text's bounding box, which is
    /// `lineHeight` wide and `textWidth` tall.
    public mutating func drawVerticalText(_ text: String, x: Int, y: Int, scale: Int = 1, color: Color = .black) {
        let scale = max(scale, 1)
        let total = BitmapFont.textWidth(text, scale: scale)
        var penAlong = 0   // distance along the text from its start, which is at the bottom
        for scalar in text.unicodeScalars {
            let rows = BitmapFont.rows(for: scalar)
            for (rowIndex, bits) in rows.enumerated() where bits != 0 {
                for column in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - column)) != 0 {
                    let along = penAlong + column * scale
                    fill(x: x + rowIndex * scale, y: y + total - along - scale,
                         width: scale, height: scale, color: color)
                }
            }
            penAlong += BitmapFont.advance * scale
        }
    }

    /// Draws `text` horizontally centred on `centerX`.
    public mutating func drawText(_ text: String, centerX: Int, y: Int, scale: Int = 1, color: Color = .black) {
        drawText(text, x: centerX - BitmapFont.textWidth(text, scale: scale) / 2, y: y, scale: scale, color: color)
    }
}
