import Foundation
import MNISTData
import Plot
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// `mnist-predict` on user-style files made from MNIST test digits: the preparation gives
/// back an MNIST-like digit, and the model answers as it does for the original.
struct PredictTests {
    static func correlation(_ a: [Float], _ b: [Float]) -> Double {
        let n = Double(a.count)
        let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
        var ab = 0.0, aa = 0.0, bb = 0.0
        for (x, y) in zip(a, b) {
            ab += (Double(x) - ma) * (Double(y) - mb); aa += (Double(x) - ma) * (Double(x) - ma); bb += (Double(y) - mb) * (Double(y) - mb)
        }
        return ab / (aa * bb).squareRoot()
    }

    /// Test digit `i` as a user might save it: dark ink on white, RGB, scaled up 4×, off centre.
    static func userStyle(_ test: Dataset, _ i: Int) throws -> Image {
        let side = 140, scale = 4, offset = 20
        var pixels = [UInt8](repeating: 255, count: side * side * 3)
        let digit = test.pixels(i..<(i + 1))
        for y in 0..<28 {
            for x in 0..<28 {
                let ink = digit[y * 28 + x]
                for dy in 0..<scale {
                    for dx in 0..<scale {
                        let p = ((offset + y * scale + dy) * side + 6 + x * scale + dx) * 3
                        pixels[p] = 255 - ink; pixels[p + 1] = 255 - ink; pixels[p + 2] = 255 - ink
                    }
                }
            }
        }
        return try Image(width: side, height: side, channels: 3, pixels: pixels)
    }

    @Test func preparingAnMNISTDigitGivesItBack() throws {
        let test = try Dataset.load(directory: Shared.mnistDirectory, split: .test).prefix(50)
        var worst = 1.0
        for i in 0..<50 {
            let original = test.pixels(i..<(i + 1)).map { Float($0) / 255 }
            let plain = try PreparedDigit(DecodedImage(width: 28, height: 28, gray: original), file: "digit")
            let user = try PreparedDigit(DecodedImage.decode([UInt8](try PNGEncoder.encode(Self.userStyle(test, i))), file: "user.png"),
                                         file: "user.png")
            #expect(!plain.inverted && user.inverted)
            worst = min(worst, Self.correlation(plain.pixels, original), Self.correlation(user.pixels, original))
        }
        // MNIST digits are already fitted to 20×20 and centred by mass: preparation nearly keeps them.
        #expect(worst > 0.8, "lowest correlation with the original \(worst)")
    }

    @Test func blankImagesAreRefused() throws {
        let error = #expect(throws: ImageFileError.self) {
            try PreparedDigit(DecodedImage(width: 10, height: 10, gray: Array(repeating: 1, count: 100)), file: "blank.png")
        }
        #expect("\(error!)".contains("blank.png: no digit found"))
    }

    @Test("mnist-predict answers for user-style PNGs as mnist-eval does for the originals")
    func predictionsMatchTheOriginals() throws {
        var config = try TrainerTests.smokeConfig()
        config.data.trainLimit = nil
        config.data.testLimit = 100
        config.epochs = 1
        let out = try makeTemporaryDirectory()
        _ = try TrainerTests.run(config, out: out, maxSteps: 150)
        let checkpoint = out.appendingPathComponent("model.safetensors")
        let test = try Dataset.load(directory: Shared.mnistDirectory, split: .test).prefix(40)
        let loaded = try LoadedModel.load(checkpoint: checkpoint)
        let reference = try Evaluator.evaluate(loaded.model, dataset: test, batchSize: 40, normalization: config.normalization,
                                               logProbabilities: true).predictions
        var files: [String] = []
        for i in 0..<40 {
            let url = out.appendingPathComponent("digit\(i).png")
            try Self.userStyle(test, i).write(to: url)
            files.append(url.path)
        }
        files.append(out.appendingPathComponent("missing.png").path)
        let results = try Predictor.predict(checkpoint: checkpoint, files: files)
        let predictions = results.dropLast().compactMap { try? $0.get().prediction }
        #expect(predictions.count == 40)
        let agree = zip(predictions, reference).filter { $0 == $1 }.count
        #expect(agree >= 37, "\(agree) of 40 agree with the originals' predictions")
        if case let .failure(error) = results.last! { #expect("\(error)".contains("missing.png")) } else { Issue.record("missing file classified") }
        let first = try results[0].get()
        #expect(abs(first.probabilities.reduce(0, +) - 1) < 1e-5)
        #expect(first.json.hasPrefix("{\"file\": ") && first.json.contains("\"probabilities\": ["))
        let figure = try Predictor.figure(Array(results.prefix(3).compactMap { try? $0.get() }))
        #expect(figure.height > 3 * 112)
    }
}
