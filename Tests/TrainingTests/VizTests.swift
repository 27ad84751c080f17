import Foundation
import Plot
import Testing
import TestSupport
@testable import Training

/// Every picture of `mnist-viz` is written, decodes as PNG (pngcheck when installed, and
/// always our own reading of the signature and IHDR) and has the expected size.
struct VizTests {
    // MARK: - PNG checks

    /// Writes `image` into a fresh directory, checks the file and returns its IHDR size.
    static func writeAndCheck(_ image: Image, name: String) throws -> (width: Int, height: Int) {
        let directory = try makeTemporaryDirectory("mnist-viz-test")
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("sub/\(name).png")
        try Visualize.write(image, to: url)
        let data = try Data(contentsOf: url)
        let bytes = [UInt8](data)
        try #require(bytes.count > 33, "\(name): only \(bytes.count) bytes")
        #expect(Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(name): PNG signature")
        #expect(String(decoding: bytes[12..<16], as: UTF8.self) == "IHDR", "\(name): first chunk")
        func bigEndian(_ offset: Int) -> Int {
            bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        let size = (width: bigEndian(16), height: bigEndian(20))
        #expect(size.width == image.width && size.height == image.height, "\(name): IHDR \(size)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/pngcheck") {
            let result = try ExecutableLocator.run(URL(fileURLWithPath: "/usr/bin/pngcheck"), [url.path])
            #expect(result.status == 0, "pngcheck \(name): \(result.standardOutput)")
        }
        return size
    }

    /// How many pixels have exactly this colour.
    static func count(_ rgb: [UInt8], in image: Image) -> Int {
        var found = 0
        image.pixels.withUnsafeBufferPointer { p in
            var i = 0
            while i + 2 < p.count {
                if p[i] == rgb[0] && p[i + 1] == rgb[1] && p[i + 2] == rgb[2] { found += 1 }
                i += 3
            }
        }
        return found
    }

    static let red: [UInt8] = [214, 39, 40]  // Plot's Color.red: frames of wrong predictions

    // MARK: - Digits

    @Test func digitsWithLabelsOnly() throws {
        let image = try Visualize.digits(model: nil, dataDirectory: Shared.mnistDirectory, count: 20, columns: 10)
        let size = try Self.writeAndCheck(image, name: "digits")
        // Ten cells of 28·3 + 2·6 pixels and a 12-pixel margin each side.
        #expect(size.width == 10 * 96 + 24)
        #expect(Self.count(Self.red, in: image) == 0)
    }

    @Test func digitsWithPredictionsMarkTheWrongOnes() throws {
        // The SGD reference model is right on 46% of the test set: the first 40 hold errors.
        let loaded = try Fixtures.loadedModel("lenet_sgd_final.safetensors")
        let image = try Visualize.digits(model: loaded, dataDirectory: Shared.mnistDirectory, count: 40)
        let size = try Self.writeAndCheck(image, name: "digits-predictions")
        #expect(size.width == 10 * 96 + 24)
        #expect(Self.count(Self.red, in: image) > 0)
        let good = try Visualize.digits(model: try Fixtures.loadedModel("lenet_adam_final.safetensors"),
                                        dataDirectory: Shared.mnistDirectory, count: 40)
        #expect(good.height == image.height)
    }

    @Test func digitsRejectARangeOutsideTheSplit() throws {
        let message = thrownMessage {
            try Visualize.digits(model: nil, dataDirectory: Shared.mnistDirectory, start: 9_990, count: 20)
        }
        #expect(message.contains("--start is 9990"), "\(message)")
    }

    // MARK: - Filters

    @Test func convFiltersAndLinearWeights() throws {
        let loaded = try Fixtures.loadedModel("lenet_adam_final.safetensors")
        let conv1 = try Visualize.filters(model: loaded, layer: nil)
        let conv1Size = try Self.writeAndCheck(conv1, name: "filters-conv1")
        // 10 columns of 5·12-pixel tiles with 8-pixel gaps, then the colorbar.
        #expect(conv1Size.width > 10 * 60 + 9 * 8)
        let conv2 = try Visualize.filters(model: loaded, layer: "conv2", inputChannel: 3)
        _ = try Self.writeAndCheck(conv2, name: "filters-conv2")
        // 50 filters in rows of 10 are taller than 20 filters.
        #expect(conv2.height > conv1.height)
        let fc2 = try Visualize.filters(model: loaded, layer: "fc2")
        _ = try Self.writeAndCheck(fc2, name: "weights-fc2")
        // 500 columns: one pixel each (480 / 500 rounds up to 1).
        #expect(fc2.width >= 500)
    }

    @Test func filtersOfAnUnknownLayerListTheLayers() throws {
        let loaded = try Fixtures.loadedModel("lenet_init.safetensors")
        let unknown = thrownMessage { try Visualize.filters(model: loaded, layer: "conv9") }
        #expect(unknown.contains("conv9") && unknown.contains("conv1, conv2, fc1, fc2"), "\(unknown)")
        #expect(thrownMessage { try Visualize.filters(model: loaded, layer: "relu1") }.contains("has no weights"))
        #expect(thrownMessage { try Visualize.filters(model: loaded, layer: "conv2", inputChannel: 20) }
            .contains("--input-channel is 20"))
    }

    // MARK: - Sequence

    @Test func featureMapSequenceOfOneImage() throws {
        let loaded = try Fixtures.loadedModel("lenet_adam_final.safetensors")
        let image = try Visualize.sequence(model: loaded, dataDirectory: Shared.mnistDirectory, index: 0)
        let size = try Self.writeAndCheck(image, name: "sequence")
        // Six rows (input, conv1, pool1, conv2, pool2, outputs), each at least 48 pixels tall.
        #expect(size.height > 6 * 48)
        #expect(thrownMessage { try Visualize.sequence(model: loaded, dataDirectory: Shared.mnistDirectory, index: 10_000) }
            .contains("--index is 10000"))
    }

    // MARK: - Curves

    @Test func curvesFromMetrics() throws {
        let run = try makeTemporaryDirectory("mnist-viz-run")
        defer { try? FileManager.default.removeItem(at: run) }
        var lines: [String] = []
        for epoch in 1...3 {
            lines.append(#"{"kind": "step", "epoch": \#(epoch), "step": \#(epoch * 100), "loss": 0.5, "lr": 0.01}"#)
            lines.append(#"{"kind": "epoch", "epoch": \#(epoch), "step": \#(epoch * 100), "train_loss": \#(1.0 / Double(epoch)), "#
                + #""train_accuracy": \#(0.8 + 0.05 * Double(epoch)), "test_loss": \#(1.1 / Double(epoch)), "#
                + #""test_accuracy": \#(0.78 + 0.05 * Double(epoch))}"#)
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: run.appendingPathComponent("metrics.jsonl"))
        let image = try Visualize.curves(runDirectory: run)
        let size = try Self.writeAndCheck(image, name: "curves")
        #expect(size.width == 1200)  // two 600-pixel panels
        #expect(size.height > 420)   // 420-pixel panels under a title
    }

    @Test func curvesErrorsNameTheFile() throws {
        let run = try makeTemporaryDirectory("mnist-viz-run")
        defer { try? FileManager.default.removeItem(at: run) }
        let metrics = run.appendingPathComponent("metrics.jsonl").path
        #expect(thrownMessage { try Visualize.curves(runDirectory: run) }.contains(metrics))
        try Data(#"{"kind": "step", "step": 1, "loss": 2.3}"#.utf8).write(to: URL(fileURLWithPath: metrics))
        let noEpochs = thrownMessage { try Visualize.curves(runDirectory: run) }
        #expect(noEpochs.contains(metrics) && noEpochs.contains("no {\"kind\": \"epoch\"} record"), "\(noEpochs)")
        try Data("not json\n".utf8).write(to: URL(fileURLWithPath: metrics))
        #expect(thrownMessage { try Visualize.curves(runDirectory: run) }.contains("line 1"))
    }

    // MARK: - Confusion

    @Test func confusionMatrixPicture() throws {
        let report = try Fixtures.adamReport.get()
        let image = try report.confusionImage()
        let size = try Self.writeAndCheck(image, name: "confusion")
        #expect(size.width > 200 && size.height > 200)
    }
}
