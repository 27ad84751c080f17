import Foundation
import Testing
import TestSupport
@testable import Plot

/// Every figure kind with small synthetic inputs, by file name.
func sampleFigures() throws -> [(name: String, image: Image)] {
    let labels = Array(0..<12).map { $0 % 10 }
    var predictions = labels
    predictions[3] = 8
    var digitImages = barDigits(count: 12)
    for index in 0..<12 {   // a gray ramp along the top row, so the grid has many shades
        for column in 0..<28 { digitImages[index * 784 + column] = Float(index * 28 + column) / 336 }
    }
    let digits = try Figures.digitGrid(images: digitImages, labels: labels, predictions: predictions,
                                       columns: 6, title: "test digits")

    var filters = pseudoRandomFloats(count: 20 * 25, seed: 4).map { $0 * 0.3 }
    for index in 0..<25 { filters[index] = -1; filters[25 + index] = 1 }
    let filterGrid = try Figures.filterGrid(weights: filters, count: 20, height: 5, width: 5,
                                            title: "conv1 filters")
    let heatmap = try Figures.heatmap(matrix: (0..<24).map(Float.init), rows: 4, cols: 6, title: "ramp")

    let input = barDigits(count: 1)
    let sequence = try Figures.featureMapSequence(panels: [
        .init(title: "input", data: input, channels: 1, height: 28, width: 28, colormap: .gray),
        .init(title: "conv1", data: pseudoRandomFloats(count: 20 * 24 * 24, seed: 5), channels: 20, height: 24, width: 24),
        .init(title: "pool1", data: pseudoRandomFloats(count: 20 * 12 * 12, seed: 6), channels: 20, height: 12, width: 12),
        .init(title: "conv2", data: pseudoRandomFloats(count: 50 * 8 * 8, seed: 7), channels: 50, height: 8, width: 8),
        .init(title: "pool2", data: pseudoRandomFloats(count: 50 * 4 * 4, seed: 8), channels: 50, height: 4, width: 4),
        .init(title: "output", data: (0..<10).map { Float($0) - 4.5 }, channels: 1, height: 1, width: 10),
    ])

    let epochs = (1...10).map(Double.init)
    let curves = try Figures.trainingCurves(
        epochs: epochs, trainLoss: epochs.map { 2.3 / $0 }, testLoss: epochs.map { 2.0 / $0 + 0.05 },
        trainAccuracy: epochs.map { 1 - 0.5 / $0 }, testAccuracy: epochs.map { 0.98 - 0.4 / $0 },
        title: "run 2026-11-27")

    var counts = [Int](repeating: 0, count: 100)
    for label in 0..<10 {
        counts[label * 10 + label] = 950 + label * 20
        counts[label * 10 + (label + 3) % 10] = 7 * label
    }
    let confusion = try Figures.confusionMatrix(counts: counts, classNames: (0..<10).map(String.init))
    return [("digits", digits), ("filters", filterGrid), ("heatmap", heatmap), ("sequence", sequence),
            ("curves", curves), ("confusion", confusion)]
}

@Suite struct FigureTests {
    @Test func digitGridShowsStrokesAndMarksWrongPredictions() throws {
        let labels = [1, 2, 3, 4]
        let image = try Figures.digitGrid(images: barDigits(count: 4), labels: labels, predictions: [1, 2, 3, 9],
                                          columns: 4)
        // Layout: margin 12, padding 6, scale 3 → image k's left edge at 18 + 96 k, top at 18.
        let stroke = (18 + 14 * 3 + 1, 18 + 14 * 3)       // inside the bar of image 0
        let background = (18 + 3, 18 + 3)
        let wrongFrame = (18 + 3 * 96 - 3, 18 + 40)        // left edge of image 3's red frame
        let rightFrame = (18 - 3, 18 + 40)                  // same place next to image 0: no frame
        let result = try writeAndCheck(image, name: "digits", pixels: [stroke, background, wrongFrame, rightFrame])
        #expect(image.width == 4 * 96 + 24)
        #expect(result.pixel(stroke.0, stroke.1) == [255, 255, 255])
        #expect(result.pixel(background.0, background.1) == [0, 0, 0])
        #expect(result.pixel(wrongFrame.0, wrongFrame.1) == colorTuple(.red))
        #expect(result.pixel(rightFrame.0, rightFrame.1) == [255, 255, 255])
        #expect(countPixels(image, .red) > 300, "frame and caption of the wrong prediction")
        #expect(countPixels(image, .green) > 20, "captions of the right predictions")
    }

    @Test func digitGridAcceptsRawBytes() throws {
        let bytes = barDigits(count: 2).map { UInt8($0 * 255) }
        let image = try Figures.digitGrid(images: bytes, labels: [5, 6], columns: 2)
        #expect(image.pixel(x: 18 + 43, y: 60) == [255, 255, 255])
        #expect(image.pixel(x: 18 + 3, y: 21) == [0, 0, 0])
    }

    @Test func heatmapMapsExtremesToJetEnds() throws {
        let image = try Figures.heatmap(matrix: (0..<24).map(Float.init), rows: 4, cols: 6, title: "ramp")
        // Cells are 48 × 48; the matrix starts at (12, 40) below the title.
        let first = (12 + 24, 40 + 24), last = (12 + 5 * 48 + 24, 40 + 3 * 48 + 24)
        let result = try writeAndCheck(image, name: "heatmap", pixels: [first, last])
        #expect(result.pixel(first.0, first.1) == [0, 0, 128])
        #expect(result.pixel(last.0, last.1) == [128, 0, 0])
        #expect((result.distinct ?? 0) >= 24)
    }

    @Test func filterGridSharesOneColourRange() throws {
        var filters = pseudoRandomFloats(count: 20 * 25, seed: 4).map { $0 * 0.3 }
        for index in 0..<25 { filters[index] = -1; filters[25 + index] = 1 }
        let image = try Figures.filterGrid(weights: filters, count: 20, height: 5, width: 5, title: "conv1 filters")
        // Tiles are 60 × 60 with 8 pixels between them, below the title (40) and a label row (11).
        let minimum = (12 + 30, 51 + 30), maximum = (12 + 68 + 30, 51 + 30)
        let result = try writeAndCheck(image, name: "filters", pixels: [minimum, maximum])
        #expect(result.pixel(minimum.0, minimum.1) == [0, 0, 128])
        #expect(result.pixel(maximum.0, maximum.1) == [128, 0, 0])
        #expect((result.distinct ?? 0) >= 40)
    }

    @Test func featureMapSequenceDrawsTheOutputRowInJet() throws {
        let output = Figures.FeatureMapPanel(title: "output", data: (0..<10).map(Float.init), channels: 1,
                                             height: 1, width: 10)
        let image = try Figures.featureMapSequence(panels: [output])
        // One 1 × 10 row at 48 pixels per cell, below the title (12 + 22).
        let first = (12 + 24, 34 + 24), last = (12 + 9 * 48 + 24, 34 + 24)
        let result = try writeAndCheck(image, name: "output-row", pixels: [first, last])
        #expect(result.pixel(first.0, first.1) == [0, 0, 128])
        #expect(result.pixel(last.0, last.1) == [128, 0, 0])

        #expect(throws: PlotError.self) {
            try Figures.featureMapSequence(panels: [.init(title: "bad", data: [1, 2, 3], channels: 1, height: 2, width: 2)])
        }
    }

    @Test func trainingCurvesDrawBothSeriesInBothPanels() throws {
        let epochs = [1.0, 2, 3, 4, 5]
        let image = try Figures.trainingCurves(epochs: epochs, trainLoss: [0.5, 0.2, 0.1, 0.08, 0.06],
                                               testLoss: [0.3, 0.15, 0.1, 0.09, 0.09],
                                               trainAccuracy: [0.85, 0.94, 0.97, 0.98, 0.985],
                                               testAccuracy: [0.9, 0.95, 0.97, 0.975, 0.98])
        _ = try writeAndCheck(image, name: "curves")
        #expect(image.width == 1200 && image.height == 420)
        for left in [0, 600] {
            let train = countPixels(image, Color.palette[0], x: left, width: 600)
            let test = countPixels(image, Color.palette[1], x: left, width: 600)
            #expect(train > 5 * 30 && test > 5 * 30, "panel at \(left): train \(train), test \(test) pixels")
        }
        #expect(throws: PlotError.self) {
            try Figures.trainingCurves(epochs: epochs, trainLoss: [1, 2], testLoss: [], trainAccuracy: [], testAccuracy: [])
        }
    }

    @Test func lineChartPutsPointsWhereTheAxesSay() throws {
        let series = Figures.LineSeries(name: "y = x", x: [0, 10], y: [0, 10], color: .red)
        let image = try Figures.lineChart(series: [series], title: "identity", xLabel: "x", yLabel: "y")
        _ = try writeAndCheck(image, name: "line")
        // The diagonal runs from bottom-left to top-right: red in the lower-left and upper-right
        // quarters of the plot, none in the upper-left one (the legend sits elsewhere).
        let lowerLeft = countPixels(image, .red, x: 60, y: 260, width: 200, height: 120)
        let upperLeft = countPixels(image, .red, x: 100, y: 60, width: 120, height: 100)
        #expect(lowerLeft > 100, "lower-left red pixels: \(lowerLeft)")
        #expect(upperLeft == 0, "upper-left red pixels: \(upperLeft)")
        #expect(throws: PlotError.self) {
            try Figures.lineChart(series: [.init(name: "bad", x: [1, 2], y: [1])], title: "", xLabel: "", yLabel: "")
        }
    }

    @Test func confusionMatrixWritesCountsInContrastingColours() throws {
        var counts = [Int](repeating: 0, count: 100)
        for label in 0..<10 { counts[label * 10 + label] = 1000 + label }
        counts[1] = 12
        let image = try Figures.confusionMatrix(counts: counts, classNames: (0..<10).map(String.init))
        // Cells are 56 pixels; the grid starts at (56, 44).
        let diagonal = (56, 44, 56, 56), empty = (56 + 2 * 56, 44, 56, 56)
        let result = try writeAndCheck(image, name: "confusion", pixels: [(58, 46), (58 + 2 * 56, 46)])
        let dark = Colormap.blues.color(1), light = Colormap.blues.color(0)
        #expect(result.pixel(58, 46) == colorTuple(Colormap.blues.color(1000 / 1012)))
        #expect(result.pixel(58 + 2 * 56, 46) == colorTuple(light))
        #expect(dark.luminance < 0.5 && light.luminance > 0.5)
        #expect(countPixels(image, .white, x: diagonal.0, y: diagonal.1, width: diagonal.2, height: diagonal.3) > 40)
        #expect(countPixels(image, .black, x: diagonal.0, y: diagonal.1, width: diagonal.2, height: diagonal.3) == 0)
        #expect(countPixels(image, .black, x: empty.0, y: empty.1, width: empty.2, height: empty.3) > 10)
        #expect(countPixels(image, .white, x: empty.0, y: empty.1, width: empty.2, height: empty.3) == 0)
        #expect(throws: PlotError.self) {
            try Figures.confusionMatrix(counts: [1, 2, 3], classNames: ["a", "b"])
        }
    }

    @Test func everyFigureKindDecodesAndIsNotBlank() throws {
        let outputDirectory = ProcessInfo.processInfo.environment["PLOT_SAMPLE_DIRECTORY"].map(URL.init(fileURLWithPath:))
        for (name, image) in try sampleFigures() {
            let result = try writeAndCheck(image, name: name)
            #expect((result.distinct ?? 0) >= 20, "\(name) has only \(result.distinct ?? 0) colours")
            #expect(result.min == 0 || (result.min ?? 255) < 40, "\(name) has no dark pixels")
            #expect(result.max == 255, "\(name) has no white")
            if let outputDirectory { try image.write(to: outputDirectory.appendingPathComponent("\(name).png")) }
        }
    }

    @Test(.enabled(if: PNGChecker.pngcheckAvailable, "pngcheck is not installed (Debian package pngcheck)"))
    func pngcheckAcceptsEveryFigureKind() throws {
        let directory = try makeTemporaryDirectory("plot-tests")
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, image) in try sampleFigures() {
            let file = directory.appendingPathComponent("\(name).png")
            try image.write(to: file)
            let (status, output) = try PNGChecker.run(["pngcheck", "-v", file.path])
            #expect(status == 0, "pngcheck \(name): \(output)")
            #expect(output.contains("\(image.width) x \(image.height) image"), "pngcheck \(name): \(output)")
        }
    }
}
