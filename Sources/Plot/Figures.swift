/// Ready-made pictures. Each returns an RGB `Image` on a white background; write it with
/// `Image.write(to:)`. Arguments with the wrong sizes throw `PlotError.invalidArgument`.
public enum Figures {
    /// Font scale of titles and of most labels.
    static let titleScale = 2
    static let labelScale = 2
    static let margin = 12

    // MARK: - Digit grid

    /// A grid of digits, `columns` per row, each with its label underneath.
    ///
    /// - Parameters:
    ///   - images: `count * height * width` values, image after image, row-major.
    ///   - labels: the true label of each image; `count` is `labels.count`.
    ///   - predictions: when given (same length as `labels`), wrong predictions get a red
    ///     frame and the caption `p=<prediction> (<label>)` in red.
    ///   - valueRange: maps to black...white; `nil` uses the smallest and largest value.
    ///   - scale: each image pixel becomes `scale × scale` pixels.
    ///   - notes: a second, smaller caption line per image (an index, a confidence).
    public static func digitGrid(
        images: [Float], height: Int = 28, width: Int = 28, labels: [Int], predictions: [Int]? = nil,
        notes: [String]? = nil, columns: Int = 10, valueRange: ClosedRange<Float>? = nil, scale: Int = 3, title: String? = nil
    ) throws -> Image {
        let function = "digitGrid"
        let count = labels.count
        try require(count >= 1, function, "labels", "\(count) labels", "at least one image")
        try require(height >= 1 && width >= 1, function, "height × width", "\(height) × \(width)", "positive sizes")
        try require(images.count == count * height * width, function, "images", "\(images.count) values",
                    "\(count) × \(height) × \(width) = \(count * height * width) values for \(count) labels")
        if let predictions {
            try require(predictions.count == count, function, "predictions", "\(predictions.count) values",
                        "one per label (\(count))")
        }
        try require(columns >= 1, function, "columns", "\(columns)", "at least 1")
        try require((1...16).contains(scale), function, "scale", "\(scale)", "1...16")

        if let notes {
            try require(notes.count == count, function, "notes", "\(notes.count) values", "one per label (\(count))")
        }
        let range = valueRange ?? finiteRange(images)
        let padding = 6
        let captionHeight = BitmapFont.lineHeight(scale: labelScale) + 4 + (notes == nil ? 0 : BitmapFont.lineHeight(scale: 1) + 4)
        // Wide enough for the longest caption (with 8 pixels to spare), so neighbours' captions never touch.
        let captionWidth = (0..<count).map { index -> Int in
            let caption = predictions.map { $0[index] == labels[index] ? "\(labels[index])" : "p=\($0[index]) (\(labels[index]))" }
                ?? "\(labels[index])"
            return max(BitmapFont.textWidth(caption, scale: labelScale), BitmapFont.textWidth(notes?[index] ?? "", scale: 1))
        }.max() ?? 0
        let cellWidth = max(width * scale + 2 * padding, captionWidth + 8)
        let cellHeight = height * scale + 2 * padding + captionHeight
        let titleHeight = title == nil ? 0 : BitmapFont.lineHeight(scale: titleScale) + margin
        let gridColumns = min(columns, count)
        let gridRows = (count + gridColumns - 1) / gridColumns
        var canvas = try Canvas(width: gridColumns * cellWidth + 2 * margin,
                                height: gridRows * cellHeight + 2 * margin + titleHeight)
        if let title { canvas.drawText(title, x: margin, y: margin, scale: titleScale) }

        for index in 0..<count {
            let left = margin + (index % gridColumns) * cellWidth + (cellWidth - width * scale) / 2
            let top = margin + titleHeight + (index / gridColumns) * cellHeight + padding
            let pixelsPerImage = height * width
            canvas.drawMatrix(images[(index * pixelsPerImage)..<((index + 1) * pixelsPerImage)],
                              rows: height, columns: width, x: left, y: top,
                              cellWidth: scale, cellHeight: scale, colormap: .gray, range: range)
            let label = labels[index]
            var caption = "\(label)"
            var captionColor = Color.black
            if let prediction = predictions?[index] {
                if prediction == label {
                    captionColor = .green
                } else {
                    caption = "p=\(prediction) (\(label))"
                    captionColor = .red
                    canvas.strokeRectangle(x: left - 4, y: top - 4, width: width * scale + 8,
                                           height: height * scale + 8, color: .red, thickness: 3)
                }
            }
            canvas.drawText(caption, centerX: left + width * scale / 2, y: top + height * scale + 6,
                            scale: labelScale, color: captionColor)
            if let note = notes?[index] {
                canvas.drawText(note, centerX: left + width * scale / 2,
                                y: top + height * scale + 10 + BitmapFont.lineHeight(scale: labelScale), scale: 1, color: .darkGray)
            }
        }
        return canvas.image
    }

    /// `digitGrid` for raw MNIST bytes (0 black ... 255 white).
    public static func digitGrid(
        images: [UInt8], height: Int = 28, width: Int = 28, labels: [Int], predictions: [Int]? = nil,
        notes: [String]? = nil, columns: Int = 10, scale: Int = 3, title: String? = nil
    ) throws -> Image {
        try digitGrid(images: images.map(Float.init), height: height, width: width, labels: labels,
                      predictions: predictions, notes: notes, columns: columns, valueRange: 0...255, scale: scale, title: title)
    }

    // MARK: - Heatmap

    /// A `rows × cols` row-major matrix as coloured cells (a weight matrix, one filter, a row of
    /// outputs), with a title above and optionally a colorbar on the right. Cells are stretched
    /// so that the matrix spans roughly 480 pixels each way, at most 48 pixels per cell.
    public static func heatmap(
        matrix: [Float], rows: Int, cols: Int, colormap: Colormap = .jet, title: String,
        colorbar: Bool = true, valueRange: ClosedRange<Float>? = nil
    ) throws -> Image {
        let function = "heatmap"
        try require(rows >= 1 && cols >= 1, function, "rows × cols", "\(rows) × \(cols)", "positive sizes")
        try require(rows <= 4096 && cols <= 4096, function, "rows × cols", "\(rows) × \(cols)", "at most 4096 each")
        try require(matrix.count == rows * cols, function, "matrix", "\(matrix.count) values",
                    "rows × cols = \(rows * cols)")
        let range = valueRange ?? finiteRange(matrix)
        let cellWidth = min(48, max(1, 480 / cols))
        let cellHeight = min(48, max(1, 480 / rows))
        let matrixWidth = cols * cellWidth, matrixHeight = rows * cellHeight
        let titleHeight = BitmapFont.lineHeight(scale: titleScale) + margin
        let shapeText = "\(rows) x \(cols)"
        let barHeight = max(matrixHeight, 100)
        let barWidth = colorbar ? margin + Colorbar.width(range: range, height: barHeight, scale: labelScale) : 0
        let contentWidth = max(matrixWidth + barWidth, BitmapFont.textWidth(title, scale: titleScale))
        let footerHeight = BitmapFont.lineHeight(scale: 1) + 8
        var canvas = try Canvas(width: contentWidth + 2 * margin,
                                height: titleHeight + max(matrixHeight, colorbar ? barHeight : 0) + footerHeight + 2 * margin)
        canvas.drawText(title, x: margin, y: margin, scale: titleScale)
        let top = margin + titleHeight
        canvas.drawMatrix(matrix[...], rows: rows, columns: cols, x: margin, y: top,
                          cellWidth: cellWidth, cellHeight: cellHeight, colormap: colormap, range: range)
        canvas.drawText(shapeText, x: margin, y: top + max(matrixHeight, colorbar ? barHeight : 0) + 6,
                        scale: 1, color: .darkGray)
        if colorbar {
            Colorbar.draw(on: &canvas, x: margin + matrixWidth + margin, y: top, height: barHeight,
                          colormap: colormap, range: range, scale: labelScale)
        }
        return canvas.image
    }

    // MARK: - Filter grid

    /// All filters of a layer side by side with one shared colour range and colorbar, like
    /// the tutorial's first-layer filters in `jet`.
    ///
    /// - Parameter weights: `count * height * width` values, filter after filter, row-major
    ///   (a Conv2d weight `(out, 1, kH, kW)`, or one input channel of it).
    public static func filterGrid(
        weights: [Float], count: Int, height: Int, width: Int, columns: Int = 10,
        colormap: Colormap = .jet, title: String
    ) throws -> Image {
        let function = "filterGrid"
        try require(count >= 1 && height >= 1 && width >= 1, function, "count × height × width",
                    "\(count) × \(height) × \(width)", "positive sizes")
        try require(weights.count == count * height * width, function, "weights", "\(weights.count) values",
                    "count × height × width = \(count * height * width)")
        try require(columns >= 1, function, "columns", "\(columns)", "at least 1")
        let range = finiteRange(weights)
        let scale = max(1, min(12, 72 / max(height, width)))
        let gap = 8
        let labelHeight = BitmapFont.lineHeight(scale: 1) + 3
        let tileWidth = width * scale, tileHeight = height * scale
        let gridColumns = min(columns, count)
        let gridRows = (count + gridColumns - 1) / gridColumns
        let gridWidth = gridColumns * (tileWidth + gap) - gap
        let gridHeight = gridRows * (tileHeight + labelHeight + gap) - gap
        let titleHeight = BitmapFont.lineHeight(scale: titleScale) + margin
        let barWidth = margin + Colorbar.width(range: range, height: gridHeight, scale: labelScale)
        var canvas = try Canvas(
            width: max(gridWidth + barWidth, BitmapFont.textWidth(title, scale: titleScale)) + 2 * margin,
            height: titleHeight + max(gridHeight, 100) + 2 * margin)
        canvas.drawText(title, x: margin, y: margin, scale: titleScale)
        let top = margin + titleHeight
        for index in 0..<count {
            let left = margin + (index % gridColumns) * (tileWidth + gap)
            let labelTop = top + (index / gridColumns) * (tileHeight + labelHeight + gap)
            canvas.drawText("\(index)", x: left, y: labelTop, scale: 1, color: .darkGray)
            let size = height * width
            canvas.drawMatrix(weights[(index * size)..<((index + 1) * size)], rows: height, columns: width,
                              x: left, y: labelTop + labelHeight, cellWidth: scale, cellHeight: scale,
                              colormap: colormap, range: range)
        }
        Colorbar.draw(on: &canvas, x: margin + gridWidth + margin, y: top, height: max(gridHeight, 100),
                      colormap: colormap, range: range, scale: labelScale)
        return canvas.image
    }

    // MARK: - Feature maps

    /// One stage of a network for `featureMapSequence`: `channels` maps of `height × width`,
    /// channel after channel, row-major (one image of a `(C, H, W)` activation).
    public struct FeatureMapPanel: Sendable {
        public var title: String
        public var data: [Float]
        public var channels: Int
        public var height: Int
        public var width: Int
        public var colormap: Colormap

        public init(title: String, data: [Float], channels: Int, height: Int, width: Int, colormap: Colormap = .jet) {
            self.title = title
            self.data = data
            self.channels = channels
            self.height = height
            self.width = width
            self.colormap = colormap
        }
    }

    /// The tutorial's walk through the network for one image (input, conv1, pool1, conv2,
    /// pool2, final outputs): one row per panel with its title, its first `maxChannels`
    /// channels (one colour range per panel) and a colorbar. A `1 × 10` output row is drawn
    /// like `plt.imshow(lin, 'jet'); plt.colorbar()`.
    public static func featureMapSequence(panels: [FeatureMapPanel], maxChannels: Int = 8) throws -> Image {
        let function = "featureMapSequence"
        try require(!panels.isEmpty, function, "panels", "empty", "at least one panel")
        try require(maxChannels >= 1, function, "maxChannels", "\(maxChannels)", "at least 1")
        for (index, panel) in panels.enumerated() {
            try require(panel.channels >= 1 && panel.height >= 1 && panel.width >= 1 && panel.width <= 4096,
                        function, "panels[\(index)] '\(panel.title)' shape",
                        "\(panel.channels) × \(panel.height) × \(panel.width)", "positive sizes, width ≤ 4096")
            try require(panel.data.count == panel.channels * panel.height * panel.width, function,
                        "panels[\(index)] '\(panel.title)' data", "\(panel.data.count) values",
                        "channels × height × width = \(panel.channels * panel.height * panel.width)")
        }

        struct Row {
            var title: String, shown: Int, scale: Int, tileWidth: Int, tileHeight: Int
            var range: ClosedRange<Float>, barHeight: Int, width: Int, height: Int
        }
        let gap = 8
        let titleHeight = BitmapFont.lineHeight(scale: titleScale) + 6
        let rows: [Row] = panels.map { panel in
            let shown = min(panel.channels, maxChannels)
            let scale = max(1, min(84 / panel.height, 480 / panel.width))
            let tileWidth = panel.width * scale, tileHeight = panel.height * scale
            let range = finiteRange(panel.data[0..<(shown * panel.height * panel.width)])
            let barHeight = max(tileHeight, 48)
            var title = "\(panel.title)  \(panel.channels)x\(panel.height)x\(panel.width)"
            if shown < panel.channels { title += "  (first \(shown) channels)" }
            let tilesWidth = shown * (tileWidth + gap) - gap
            let width = max(tilesWidth + margin + Colorbar.width(range: range, height: barHeight, scale: 1),
                            BitmapFont.textWidth(title, scale: titleScale))
            // A row of outputs (1 × classes) gets its column indices (the classes) underneath.
            let indexLabels = panel.height == 1 && panel.width <= 32 ? BitmapFont.lineHeight(scale: 1) + 6 : 0
            return Row(title: title, shown: shown, scale: scale, tileWidth: tileWidth, tileHeight: tileHeight,
                       range: range, barHeight: barHeight, width: width,
                       height: titleHeight + max(tileHeight + indexLabels, barHeight) + margin)
        }
        var canvas = try Canvas(width: (rows.map(\.width).max() ?? 0) + 2 * margin,
                                height: rows.reduce(0) { $0 + $1.height } + 2 * margin)
        var top = margin
        for (panel, row) in zip(panels, rows) {
            canvas.drawText(row.title, x: margin, y: top, scale: titleScale)
            let tilesTop = top + titleHeight
            let size = panel.height * panel.width
            for channel in 0..<row.shown {
                canvas.drawMatrix(panel.data[(channel * size)..<((channel + 1) * size)], rows: panel.height,
                                  columns: panel.width, x: margin + channel * (row.tileWidth + gap), y: tilesTop,
                                  cellWidth: row.scale, cellHeight: row.scale, colormap: panel.colormap,
                                  range: row.range)
                if panel.height == 1 && panel.width <= 32 {
                    for column in 0..<panel.width {
                        canvas.drawText("\(column)", centerX: margin + channel * (row.tileWidth + gap) + column * row.scale + row.scale / 2,
                                        y: tilesTop + row.tileHeight + 4, scale: 1)
                    }
                }
            }
            let barLeft = margin + row.shown * (row.tileWidth + gap) - gap + margin
            Colorbar.draw(on: &canvas, x: barLeft, y: tilesTop, height: row.barHeight, colormap: panel.colormap,
                          range: row.range, scale: 1)
            top += row.height
        }
        return canvas.image
    }

    // MARK: - Checks

    static func require(_ condition: Bool, _ function: String, _ argument: String, _ value: String,
                        _ expected: String) throws {
        if !condition {
            throw PlotError.invalidArgument(function: function, argument: argument, value: value, expected: expected)
        }
    }
}
