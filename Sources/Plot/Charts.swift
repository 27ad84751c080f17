import Foundation

extension Figures {
    // MARK: - Line chart

    /// One line of a chart: `x[i], y[i]` pairs; points with a non-finite value break the line.
    public struct LineSeries: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Double]
        /// `nil` takes the next colour of `Color.palette`.
        public var color: Color?
        /// Line width in pixels.
        public var thickness: Double

        public init(name: String, x: [Double], y: [Double], color: Color? = nil, thickness: Double = 2.5) {
            self.name = name
            self.x = x
            self.y = y
            self.color = color
            self.thickness = thickness
        }
    }

    /// A line chart with a frame, grid, numeric ticks on both axes, axis labels and a legend
    /// in the corner that covers the fewest points. Series with no points are left out of
    /// the plot but still listed in the legend.
    public static func lineChart(
        series: [LineSeries], title: String, xLabel: String, yLabel: String,
        width: Int = 640, height: Int = 420
    ) throws -> Image {
        var canvas = try Canvas(width: width, height: height)
        try drawLineChart(on: &canvas, x: 0, y: 0, width: width, height: height, series: series,
                          title: title, xLabel: xLabel, yLabel: yLabel)
        return canvas.image
    }

    /// Training curves as two panels side by side: loss (train, test) and accuracy
    /// (train, test) per epoch. Any of the four arrays may be empty (that line is left out);
    /// the others must have one value per epoch. `stepEpochs`/`stepLoss` add the logged
    /// per-step training loss (at fractional epochs) as a thin line under the others. The
    /// epoch axis has whole-number ticks.
    public static func trainingCurves(
        epochs: [Double], trainLoss: [Double], testLoss: [Double], trainAccuracy: [Double],
        testAccuracy: [Double], stepEpochs: [Double] = [], stepLoss: [Double] = [], title: String? = nil
    ) throws -> Image {
        let function = "trainingCurves"
        try require(!epochs.isEmpty, function, "epochs", "empty", "at least one epoch")
        for (name, values) in [("trainLoss", trainLoss), ("testLoss", testLoss),
                               ("trainAccuracy", trainAccuracy), ("testAccuracy", testAccuracy)] {
            try require(values.isEmpty || values.count == epochs.count, function, name, "\(values.count) values",
                        "none or one per epoch (\(epochs.count))")
        }
        let panelWidth = 600, panelHeight = 420
        let header = title == nil ? 0 : BitmapFont.lineHeight(scale: titleScale) + margin
        var canvas = try Canvas(width: 2 * panelWidth, height: panelHeight + header)
        if let title { canvas.drawText(title, centerX: panelWidth, y: margin, scale: titleScale) }
        func line(_ name: String, _ values: [Double], _ color: Color) -> LineSeries {
            LineSeries(name: name, x: values.isEmpty ? [] : epochs, y: values, color: color)
        }
        try require(stepEpochs.count == stepLoss.count, function, "stepLoss", "\(stepLoss.count) values",
                    "one per entry of stepEpochs (\(stepEpochs.count))")
        var lossSeries: [LineSeries] = []
        if !stepLoss.isEmpty {
            lossSeries.append(LineSeries(name: "train (step)", x: stepEpochs, y: stepLoss, color: Color(hex: 0xAEC7E8), thickness: 1.5))
        }
        lossSeries += [line("train (epoch)", trainLoss, Color.palette[0]), line("test", testLoss, Color.palette[1])]
        try drawLineChart(on: &canvas, x: 0, y: header, width: panelWidth, height: panelHeight,
                          series: lossSeries, title: "loss", xLabel: "epoch", yLabel: "loss", integerX: true)
        try drawLineChart(on: &canvas, x: panelWidth, y: header, width: panelWidth, height: panelHeight,
                          series: [line("train", trainAccuracy, Color.palette[0]),
                                   line("test", testAccuracy, Color.palette[1])],
                          title: "accuracy", xLabel: "epoch", yLabel: "accuracy", integerX: true)
        return canvas.image
    }

    /// Draws a line chart into the rectangle at `(x, y)` of the canvas.
    static func drawLineChart(
        on canvas: inout Canvas, x originX: Int, y originY: Int, width: Int, height: Int,
        series: [LineSeries], title: String, xLabel: String, yLabel: String, integerX: Bool = false
    ) throws {
        let function = "lineChart"
        try require(!series.isEmpty, function, "series", "empty", "at least one series")
        for (index, line) in series.enumerated() {
            try require(line.x.count == line.y.count, function, "series[\(index)] '\(line.name)'",
                        "\(line.x.count) x values and \(line.y.count) y values", "as many x as y values")
        }
        let points = series.flatMap { zip($0.x, $0.y) }.filter { $0.0.isFinite && $0.1.isFinite }
        try require(!points.isEmpty, function, "series", "no finite (x, y) point", "at least one finite point")
        try require(width >= 200 && height >= 150, function, "width × height", "\(width) × \(height)",
                    "at least 200 × 150")

        // Data ranges, padded so lines do not sit on the frame.
        var xLow = points.map(\.0).min() ?? 0, xHigh = points.map(\.0).max() ?? 1
        var yLow = points.map(\.1).min() ?? 0, yHigh = points.map(\.1).max() ?? 1
        if xHigh == xLow { xLow -= 0.5; xHigh += 0.5 }
        if yHigh == yLow { yLow -= 0.5; yHigh += 0.5 }
        let yPadding = (yHigh - yLow) * 0.06
        yLow -= yPadding; yHigh += yPadding
        let xPadding = (xHigh - xLow) * 0.03
        xLow -= xPadding; xHigh += xPadding

        let scale = labelScale
        let textHeight = 7 * scale
        let xTicks = Ticks(lower: xLow, upper: xHigh, targetCount: 6, integers: integerX)
        let yTicks = Ticks(lower: yLow, upper: yHigh, targetCount: 5)
        let yLabelWidth = yTicks.labels.map { BitmapFont.textWidth($0, scale: scale) }.max() ?? 0

        // Plot area.
        let left = originX + margin + BitmapFont.lineHeight(scale: scale) + 8 + yLabelWidth + 6
        let right = originX + width - margin - 8
        let top = originY + margin + BitmapFont.lineHeight(scale: titleScale) + 10
        let bottom = originY + height - margin - 2 * BitmapFont.lineHeight(scale: scale) - 12
        try require(right - left >= 50 && bottom - top >= 50, function, "width × height", "\(width) × \(height)",
                    "room for a plot area after the labels")
        func pixelX(_ value: Double) -> Double { Double(left) + (value - xLow) / (xHigh - xLow) * Double(right - left) }
        func pixelY(_ value: Double) -> Double { Double(bottom) - (value - yLow) / (yHigh - yLow) * Double(bottom - top) }

        // Title, grid, ticks, labels.
        canvas.drawText(title, centerX: (left + right) / 2, y: originY + margin, scale: titleScale)
        for (value, label) in zip(xTicks.values, xTicks.labels) {
            let column = Int(pixelX(value))
            canvas.fill(x: column, y: top, width: 1, height: bottom - top, color: .lightGray)
            canvas.fill(x: column, y: bottom, width: 1, height: 5, color: .darkGray)
            canvas.drawText(label, centerX: column, y: bottom + 8, scale: scale)
        }
        for (value, label) in zip(yTicks.values, yTicks.labels) {
            let row = Int(pixelY(value))
            canvas.fill(x: left, y: row, width: right - left, height: 1, color: .lightGray)
            canvas.fill(x: left - 5, y: row, width: 5, height: 1, color: .darkGray)
            canvas.drawText(label, x: left - 8 - BitmapFont.textWidth(label, scale: scale),
                            y: row - textHeight / 2, scale: scale)
        }
        canvas.strokeRectangle(x: left, y: top, width: right - left + 1, height: bottom - top + 1, color: .darkGray)
        canvas.drawText(xLabel, centerX: (left + right) / 2,
                        y: bottom + 8 + BitmapFont.lineHeight(scale: scale) + 4, scale: scale)
        canvas.drawVerticalText(yLabel, x: originX + margin,
                                y: (top + bottom) / 2 - BitmapFont.textWidth(yLabel, scale: scale) / 2, scale: scale)

        // Lines and markers.
        let colors = series.enumerated().map { index, line in line.color ?? Color.palette[index % Color.palette.count] }
        for (line, color) in zip(series, colors) {
            var previous: (x: Double, y: Double)?
            for (xValue, yValue) in zip(line.x, line.y) {
                guard xValue.isFinite, yValue.isFinite else { previous = nil; continue }
                let point = (x: pixelX(xValue), y: pixelY(yValue))
                if let previous { canvas.drawLine(from: previous, to: point, color: color, thickness: line.thickness) }
                previous = point
            }
            if line.x.count <= 60 && line.thickness >= 2 {
                for (xValue, yValue) in zip(line.x, line.y) where xValue.isFinite && yValue.isFinite {
                    canvas.fill(x: Int(pixelX(xValue)) - 3, y: Int(pixelY(yValue)) - 3, width: 7, height: 7, color: color)
                }
            }
        }

        // Legend in the corner with the fewest points under it.
        let sample = 24
        let legendWidth = sample + 8 + (series.map { BitmapFont.textWidth($0.name, scale: scale) }.max() ?? 0) + 16
        let rowHeight = BitmapFont.lineHeight(scale: scale) + 6
        let legendHeight = series.count * rowHeight + 10
        let corners = [(right - legendWidth - 8, top + 8), (right - legendWidth - 8, bottom - legendHeight - 8),
                       (left + 8, top + 8), (left + 8, bottom - legendHeight - 8)]
        let pixelPoints = points.map { (pixelX($0.0), pixelY($0.1)) }
        let corner = corners.min { first, second in
            func covered(_ corner: (Int, Int)) -> Int {
                pixelPoints.filter { point in
                    point.0 >= Double(corner.0 - 10) && point.0 <= Double(corner.0 + legendWidth + 10)
                        && point.1 >= Double(corner.1 - 10) && point.1 <= Double(corner.1 + legendHeight + 10)
                }.count
            }
            return covered(first) < covered(second)
        } ?? corners[0]
        canvas.fill(x: corner.0, y: corner.1, width: legendWidth, height: legendHeight, color: .white)
        canvas.strokeRectangle(x: corner.0, y: corner.1, width: legendWidth, height: legendHeight, color: .darkGray)
        for (index, (line, color)) in zip(series, colors).enumerated() {
            let rowTop = corner.1 + 6 + index * rowHeight
            let middle = rowTop + textHeight / 2
            canvas.fill(x: corner.0 + 8, y: middle - 1, width: sample, height: 3, color: color)
            canvas.drawText(line.name, x: corner.0 + 8 + sample + 8, y: rowTop, scale: scale)
        }
    }

    // MARK: - Confusion matrix

    /// The confusion matrix as a heatmap: rows are true labels, columns predictions; each cell
    /// is coloured by its share of the row (`Blues`) and shows its count in black or white,
    /// whichever reads better on the cell. The title gives the overall accuracy.
    ///
    /// - Parameter counts: `n * n` counts, row-major, `n = classNames.count`.
    public static func confusionMatrix(counts: [Int], classNames: [String], title: String = "Confusion matrix") throws -> Image {
        let function = "confusionMatrix"
        let classCount = classNames.count
        try require(classCount >= 1 && classCount <= 100, function, "classNames", "\(classCount) names", "1...100 names")
        try require(counts.count == classCount * classCount, function, "counts", "\(counts.count) values",
                    "\(classCount) × \(classCount) = \(classCount * classCount) for \(classCount) class names")
        if let negative = counts.firstIndex(where: { $0 < 0 }) {
            try require(false, function, "counts[\(negative)]", "\(counts[negative])", "a count ≥ 0")
        }

        let total = counts.reduce(0, +)
        let correct = (0..<classCount).reduce(0) { $0 + counts[$1 * classCount + $1] }
        let accuracy = total > 0 ? 100 * Double(correct) / Double(total) : 0
        let heading = "\(title): accuracy " + String(format: "%.2f%%", accuracy) + " (\(correct)/\(total))"

        let largest = counts.max() ?? 0
        let cell = max(40, BitmapFont.textWidth(String(largest), scale: labelScale) + 10)
        let nameWidth = classNames.map { BitmapFont.textWidth($0, scale: labelScale) }.max() ?? 0
        let lineHeight = BitmapFont.lineHeight(scale: labelScale)
        let gridLeft = margin + lineHeight + 10 + nameWidth + 8
        let gridTop = margin + BitmapFont.lineHeight(scale: titleScale) + 16
        let gridSize = classCount * cell
        let barLeft = gridLeft + gridSize + margin
        let barLabel = "share of the true class"
        let barWidth = Colorbar.width(range: 0...1, height: gridSize, scale: labelScale) + 16 + lineHeight
        let width = max(barLeft + barWidth, margin + BitmapFont.textWidth(heading, scale: titleScale)) + margin
        let height = gridTop + gridSize + 8 + lineHeight + 8 + lineHeight + margin
        var canvas = try Canvas(width: width, height: height)
        canvas.drawText(heading, x: margin, y: margin, scale: titleScale)

        for row in 0..<classCount {
            let rowTotal = (0..<classCount).reduce(0) { $0 + counts[row * classCount + $1] }
            for column in 0..<classCount {
                let count = counts[row * classCount + column]
                let fraction = rowTotal > 0 ? Float(count) / Float(rowTotal) : 0
                let color = Colormap.blues.color(fraction)
                let left = gridLeft + column * cell, top = gridTop + row * cell
                canvas.fill(x: left, y: top, width: cell, height: cell, color: color)
                let textColor: Color = color.luminance > 0.5 ? .black : .white
                canvas.drawText("\(count)", centerX: left + cell / 2, y: top + (cell - 7 * labelScale) / 2,
                                scale: labelScale, color: textColor)
            }
            let name = classNames[row]
            canvas.drawText(name, x: gridLeft - 8 - BitmapFont.textWidth(name, scale: labelScale),
                            y: gridTop + row * cell + (cell - 7 * labelScale) / 2, scale: labelScale)
        }
        for column in 0..<classCount {
            canvas.drawText(classNames[column], centerX: gridLeft + column * cell + cell / 2,
                            y: gridTop + gridSize + 8, scale: labelScale)
        }
        canvas.strokeRectangle(x: gridLeft - 1, y: gridTop - 1, width: gridSize + 2, height: gridSize + 2, color: .darkGray)
        canvas.drawText("predicted", centerX: gridLeft + gridSize / 2, y: gridTop + gridSize + 8 + lineHeight + 8,
                        scale: labelScale)
        canvas.drawVerticalText("true", x: margin, y: gridTop + gridSize / 2 - BitmapFont.textWidth("true", scale: labelScale) / 2,
                                scale: labelScale)
        Colorbar.draw(on: &canvas, x: barLeft, y: gridTop, height: gridSize, colormap: .blues, range: 0...1,
                      scale: labelScale)
        canvas.drawVerticalText(barLabel, x: barLeft + barWidth - lineHeight,
                                y: gridTop + gridSize / 2 - BitmapFont.textWidth(barLabel, scale: labelScale) / 2, scale: labelScale)
        return canvas.image
    }
}
