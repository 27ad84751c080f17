import Autograd
import Foundation
import Kernels
import Plot

/// A user's image made to look like an MNIST digit, the way MNIST was made (LeCun et al.):
/// gray, ink bright on black, cropped to the ink, scaled to fit 20×20 keeping the aspect
/// ratio (area averaging), and placed in 28×28 with its centre of mass in the middle.
public struct PreparedDigit: Sendable {
    /// `28 × 28` ink values in `[0, 1]` (MNIST's pixel / 255).
    public var pixels: [Float]
    /// The background was light (dark ink on paper), so the image was inverted.
    public var inverted: Bool
    /// The ink's bounding box in the original image: x, y, width, height.
    public var box: (x: Int, y: Int, width: Int, height: Int)

    public static let side = 28
    public static let fit = 20

    /// - Throws: `ImageFileError.unsupported` for an image without ink (blank or uniform).
    public init(_ image: DecodedImage, file: String) throws {
        let w = image.width, h = image.height
        // Background: the mean of the border; light means dark ink on paper.
        var border = 0.0, borderCount = 0
        for x in 0..<w { border += Double(image.gray[x]) + Double(image.gray[(h - 1) * w + x]); borderCount += 2 }
        for y in 0..<h { border += Double(image.gray[y * w]) + Double(image.gray[y * w + w - 1]); borderCount += 2 }
        let background = Float(border / Double(borderCount))
        inverted = background > 0.5
        var ink = inverted ? image.gray.map { 1 - $0 } : image.gray
        let paper = inverted ? 1 - background : background
        let strongest = ink.max() ?? 0
        guard strongest - paper > 0.1 else {
            throw ImageFileError.unsupported(file: file, "no digit found: the image is blank or uniform (ink contrast "
                + String(format: "%.2f", strongest - paper) + ")")
        }
        // Ink relative to the paper, in [0, 1].
        for i in ink.indices { ink[i] = max(0, ink[i] - paper) / (strongest - paper) }
        var left = w, right = -1, top = h, bottom = -1
        for y in 0..<h {
            for x in 0..<w where ink[y * w + x] > 0.1 {
                left = min(left, x); right = max(right, x); top = min(top, y); bottom = max(bottom, y)
            }
        }
        box = (left, top, right - left + 1, bottom - top + 1)
        // Scale the box to fit 20×20 (area averaging), keeping the aspect ratio.
        let scale = Double(Self.fit) / Double(max(box.width, box.height))
        let outW = max(1, min(Self.fit, Int((Double(box.width) * scale).rounded())))
        let outH = max(1, min(Self.fit, Int((Double(box.height) * scale).rounded())))
        var cropped = [Float](repeating: 0, count: box.width * box.height)
        for y in 0..<box.height {
            for x in 0..<box.width { cropped[y * box.width + x] = ink[(box.y + y) * w + box.x + x] }
        }
        let fitted = Self.areaResample(cropped, width: box.width, height: box.height, toWidth: outW, toHeight: outH)
        // Centre of mass (in pixel indices) to pixel (14, 14), where MNIST's digits have it
        // (their mean over the test set: 14.00, 13.99).
        var mass = 0.0, cx = 0.0, cy = 0.0
        for y in 0..<outH {
            for x in 0..<outW {
                let v = Double(fitted[y * outW + x])
                mass += v; cx += v * Double(x); cy += v * Double(y)
            }
        }
        let centre = Double(Self.side / 2)
        let dx = Int((centre - cx / max(mass, 1e-12)).rounded()), dy = Int((centre - cy / max(mass, 1e-12)).rounded())
        var pixels = [Float](repeating: 0, count: Self.side * Self.side)
        for y in 0..<outH {
            for x in 0..<outW {
                let tx = x + dx, ty = y + dy
                if tx >= 0, tx < Self.side, ty >= 0, ty < Self.side { pixels[ty * Self.side + tx] = fitted[y * outW + x] }
            }
        }
        self.pixels = pixels
    }

    /// Box-filter resampling: each output pixel is the mean of the input area it covers
    /// (fractional pixels weighted by their overlap), separably along x, then y.
    static func areaResample(_ input: [Float], width: Int, height: Int, toWidth: Int, toHeight: Int) -> [Float] {
        /// Weights of input samples 0..<n for output j of m: overlap of [j·n/m, (j+1)·n/m) with each.
        func resample1D(_ values: (Int) -> Float, _ n: Int, _ m: Int) -> [Float] {
            (0..<m).map { j in
                let start = Double(j) * Double(n) / Double(m), end = Double(j + 1) * Double(n) / Double(m)
                var sum = 0.0
                var i = Int(start.rounded(.down))
                while Double(i) < end && i < n {
                    let overlap = min(end, Double(i + 1)) - max(start, Double(i))
                    if overlap > 0 { sum += overlap * Double(values(i)) }
                    i += 1
                }
                return Float(sum / (end - start))
            }
        }
        var rows = [Float](repeating: 0, count: toWidth * height)
        for y in 0..<height {
            let row = resample1D({ input[y * width + $0] }, width, toWidth)
            for x in 0..<toWidth { rows[y * toWidth + x] = row[x] }
        }
        var out = [Float](repeating: 0, count: toWidth * toHeight)
        for x in 0..<toWidth {
            let column = resample1D({ rows[$0 * toWidth + x] }, height, toHeight)
            for y in 0..<toHeight { out[y * toWidth + x] = column[y] }
        }
        return out
    }
}

/// `mnist-predict`: what a trained model says about the user's own images.
public struct Prediction: Sendable {
    public var file: String
    public var prediction: Int
    /// Ten probabilities, summing to 1.
    public var probabilities: [Double]
    public var digit: PreparedDigit
    public var image: DecodedImage

    /// `{"file": ..., "prediction": 7, "probabilities": [...]}`.
    public var json: String {
        jsonObject([("file", file), ("prediction", prediction), ("probabilities", probabilities)])
    }

    /// `digit.png: 7 (98.1%); next 1 (1.2%)`.
    public var text: String {
        let ranked = probabilities.enumerated().sorted { $0.element > $1.element }
        return String(format: "%@: %d (%.1f%%); next %d (%.1f%%)%@", file, prediction, 100 * ranked[0].element,
                      ranked[1].offset, 100 * ranked[1].element, digit.inverted ? "; dark ink on a light background, inverted" : "")
    }
}

public enum Predictor {
    /// Classifies each file; a file that cannot be read or holds no digit gives its error
    /// in place of a prediction (the others are still classified).
    public static func predict(checkpoint: URL, configFile: URL? = nil, files: [String]) throws -> [Result<Prediction, Error>] {
        let loaded = try LoadedModel.load(checkpoint: checkpoint, configFile: configFile)
        guard loaded.config.inputShape == [1, PreparedDigit.side, PreparedDigit.side] else {
            throw EvalError.option(name: "--checkpoint", value: "\(checkpoint.path) (a model of \(loaded.config.inputShape) inputs)",
                                   expected: "a model of [1, 28, 28] inputs, the digits mnist-predict makes")
        }
        let mean = Float(loaded.config.data.mean), std = Float(loaded.config.data.std)
        let logProbabilities = ModelBuilder.endsWithLogSoftmax(loaded.model)
        return Parallelism.withThreadCount(loaded.config.threads) {
            files.map { file in
                Result {
                    let image = try DecodedImage.read(contentsOf: URL(fileURLWithPath: file))
                    let digit = try PreparedDigit(image, file: file)
                    let x = try Tensor(shape: [1, 1, 28, 28], data: digit.pixels.map { ($0 - mean) / std })
                    var out = try withNoGrad { try loaded.model(x) }
                    if !logProbabilities { out = try withNoGrad { try out.logSoftmax(dim: 1) } }
                    let probabilities = out.scalars.map { Double(expf($0)) }
                    let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0
                    return Prediction(file: file, prediction: best, probabilities: probabilities, digit: digit, image: image)
                }
            }
        }
    }

    /// One row per prediction: the original image (fitted into 112×112), the 28×28 the
    /// model saw (×4), and the answer.
    public static func figure(_ predictions: [Prediction]) throws -> Image {
        let cell = 112, gap = 16, margin = 12, textWidth = 260
        var canvas = try Canvas(width: 2 * margin + 2 * cell + 2 * gap + textWidth,
                                height: 2 * margin + predictions.count * (cell + gap) - gap)
        for (row, p) in predictions.enumerated() {
            let top = margin + row * (cell + gap)
            let side = max(p.image.width, p.image.height)
            let fw = max(1, p.image.width * cell / side), fh = max(1, p.image.height * cell / side)
            let fitted = PreparedDigit.areaResample(p.image.gray, width: p.image.width, height: p.image.height,
                                                    toWidth: fw, toHeight: fh)
            canvas.strokeRectangle(x: margin - 1, y: top - 1, width: cell + 2, height: cell + 2, color: .lightGray, thickness: 1)
            canvas.drawMatrix(fitted[...], rows: fh, columns: fw, x: margin + (cell - fw) / 2, y: top + (cell - fh) / 2,
                              cellWidth: 1, cellHeight: 1, colormap: .gray, range: 0...1)
            canvas.drawMatrix(p.digit.pixels[...], rows: 28, columns: 28, x: margin + cell + gap, y: top,
                              cellWidth: 4, cellHeight: 4, colormap: .gray, range: 0...1)
            let left = margin + 2 * cell + 2 * gap
            _ = canvas.drawText("predicted \(p.prediction)", x: left, y: top + 8, scale: 3)
            let ranked = p.probabilities.enumerated().sorted { $0.element > $1.element }.prefix(3)
            for (i, entry) in ranked.enumerated() {
                _ = canvas.drawText(String(format: "%d: %.1f%%", entry.offset, 100 * entry.element), x: left, y: top + 44 + 18 * i, scale: 2)
            }
            let name = URL(fileURLWithPath: p.file).lastPathComponent
            _ = canvas.drawText(String(name.prefix(40)), x: left, y: top + cell - 10, scale: 1, color: .darkGray)
        }
        return canvas.image
    }
}
