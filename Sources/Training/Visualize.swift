import Autograd
import Foundation
import MNISTData
import NN
import Plot

/// The pictures of `mnist-viz`. Each function returns the `Image`; `write(_:to:)` saves it
/// as PNG. Data directories default to the checkpoint's config (or to the default config's
/// `data/mnist` when there is no checkpoint).
public enum Visualize {
    // MARK: - Digits

    /// `count` images of a split starting at `start`, captioned with their labels; with a
    /// model, also with its predictions (wrong ones framed and captioned in red).
    public static func digits(
        model loaded: LoadedModel?, dataDirectory: URL?, split: Split = .test, start: Int = 0, count: Int = 40,
        columns: Int = 10
    ) throws -> Image {
        let directory = dataDirectory ?? loaded?.dataDirectory(override: nil) ?? URL(fileURLWithPath: TrainingConfig().data.directory)
        let dataset = try Dataset.load(directory: directory, split: split)
        guard (1...1000).contains(count) else {
            throw EvalError.option(name: "--count", value: "\(count)", expected: "1...1000")
        }
        guard start >= 0, start + count <= dataset.count else {
            throw EvalError.option(name: "--start", value: "\(start)",
                                   expected: "0...\(dataset.count - count) so that \(count) images fit in the \(dataset.count) of \(dataset.name)")
        }
        let pixels = dataset.pixels(start..<(start + count))
        let labels = dataset.labels[start..<(start + count)].map(Int.init)
        var predictions: [Int]?
        var title = "\(dataset.name) #\(start)-\(start + count - 1)"
        if let loaded {
            let output = try withNoGrad {
                try loaded.model(try inputTensor(pixels, count: count, dataset: dataset, config: loaded.config))
            }
            let predicted = try predictedClasses(output)
            predictions = predicted
            let correct = zip(predicted, labels).filter { $0 == $1 }.count
            title += ": \(correct)/\(count) correct"
        }
        return try Figures.digitGrid(images: pixels, height: dataset.rows, width: dataset.cols, labels: labels,
                                     predictions: predictions, columns: columns, title: title)
    }

    // MARK: - Filters

    /// A layer's weights: a conv layer's filters in `jet` with a colorbar (for a layer with
    /// several input channels, the filters applied to `inputChannel`); a linear layer's
    /// `(out, in)` weight matrix as a heatmap. `layer` nil picks the first conv layer.
    public static func filters(model loaded: LoadedModel, layer: String?, inputChannel: Int = 0) throws -> Image {
        let withWeights = loaded.model.layers.filter { $0.module is Conv2d || $0.module is Linear }
        let available = withWeights.map(\.name).joined(separator: ", ")
        guard let name = layer ?? withWeights.first(where: { $0.module is Conv2d })?.name ?? withWeights.first?.name else {
            throw EvalError.layer(name: "(none)", detail: "the model has no conv2d or linear layer")
        }
        guard let module = loaded.model.layers.first(where: { $0.name == name })?.module else {
            throw EvalError.layer(name: name, detail: "not in the model; layers with weights: \(available)")
        }
        if let conv = module as? Conv2d {
            let shape = conv.weight.shape  // (out, in/groups, kH, kW)
            let (outChannels, inChannels, height, width) = (shape[0], shape[1], shape[2], shape[3])
            guard (0..<inChannels).contains(inputChannel) else {
                throw EvalError.option(name: "--input-channel", value: "\(inputChannel)", expected: "0..<\(inChannels) for \(name)")
            }
            let all = conv.weight.scalars
            var selected: [Float] = []
            selected.reserveCapacity(outChannels * height * width)
            let size = height * width
            for o in 0..<outChannels {
                let start = (o * inChannels + inputChannel) * size
                selected += all[start..<(start + size)]
            }
            var title = "\(name) filters \(shape)"
            if inChannels > 1 { title += ", input channel \(inputChannel)" }
            return try Figures.filterGrid(weights: selected, count: outChannels, height: height, width: width,
                                          columns: 10, colormap: .jet, title: title)
        }
        if let linear = module as? Linear {
            let shape = linear.weight.shape  // (out, in)
            return try Figures.heatmap(matrix: linear.weight.scalars, rows: shape[0], cols: shape[1], colormap: .jet,
                                       title: "\(name) weight \(shape)")
        }
        throw EvalError.layer(name: name, detail: "has no weights (\(module.typeName)); layers with weights: \(available)")
    }

    // MARK: - Feature-map sequence

    /// The tutorial's walk through the network for test image `index`: the input, the
    /// output of every conv and pool layer, and the final outputs (as probabilities when
    /// the network ends with log-softmax).
    public static func sequence(model loaded: LoadedModel, dataDirectory: URL?, split: Split = .test, index: Int) throws -> Image {
        let dataset = try Dataset.load(directory: loaded.dataDirectory(override: dataDirectory), split: split)
        guard (0..<dataset.count).contains(index) else {
            throw EvalError.option(name: "--index", value: "\(index)", expected: "0..<\(dataset.count) (\(dataset.name))")
        }
        let pixels = dataset.pixels(index..<(index + 1))
        let input = try inputTensor(pixels, count: 1, dataset: dataset, config: loaded.config)
        let label = Int(dataset.labels[index])
        var panels = [Figures.FeatureMapPanel(title: "input (label \(label))", data: input.scalars, channels: 1,
                                              height: dataset.rows, width: dataset.cols, colormap: .gray)]
        let output = try withNoGrad {
            try loaded.model.forward(input) { name, module, y in
                guard module is Conv2d || module is MaxPool2d, y.shape.count == 4 else { return }
                panels.append(Figures.FeatureMapPanel(title: "\(name) output", data: y.scalars, channels: y.shape[1],
                                                      height: y.shape[2], width: y.shape[3]))
            }
        }
        let logProbabilities = ModelBuilder.endsWithLogSoftmax(loaded.model)
        let values = logProbabilities ? output.scalars.map { Foundation.exp($0) } : output.scalars
        let prediction = try predictedClasses(output).first ?? 0
        panels.append(Figures.FeatureMapPanel(
            title: "\(logProbabilities ? "probabilities" : "outputs") (prediction \(prediction))", data: values,
            channels: 1, height: 1, width: values.count))
        return try Figures.featureMapSequence(panels: panels)
    }

    // MARK: - Training curves

    /// Loss and accuracy per epoch from `<run>/metrics.jsonl` (train and test).
    public static func curves(runDirectory: URL) throws -> Image {
        let url = runDirectory.appendingPathComponent(Checkpoint.metricsFile)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw EvalError.metrics(file: url.path, detail: "cannot be read; --run takes a run directory written by mnist-train")
        }
        var epochs: [Double] = [], trainLoss: [Double] = [], testLoss: [Double] = []
        var trainAccuracy: [Double] = [], testAccuracy: [Double] = []
        var stepNumbers: [Double] = [], stepLoss: [Double] = [], stepsPerEpoch: Double?
        for (lineNumber, line) in text.split(separator: "\n").enumerated() {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw EvalError.metrics(file: url.path, detail: "line \(lineNumber + 1) is not a JSON object")
            }
            if object["kind"] as? String == "step", let step = (object["step"] as? NSNumber)?.doubleValue,
               let loss = (object["loss"] as? NSNumber)?.doubleValue {
                stepNumbers.append(step)
                stepLoss.append(loss)
            }
            guard object["kind"] as? String == "epoch" else { continue }
            if stepsPerEpoch == nil, let step = (object["step"] as? NSNumber)?.doubleValue,
               let epoch = (object["epoch"] as? NSNumber)?.doubleValue, epoch > 0 {
                stepsPerEpoch = step / epoch
            }
            func number(_ key: String) throws -> Double {
                guard let value = (object[key] as? NSNumber)?.doubleValue else {
                    throw EvalError.metrics(file: url.path, detail: "line \(lineNumber + 1): epoch record without a number \"\(key)\"")
                }
                return value
            }
            epochs.append(try number("epoch"))
            trainLoss.append(try number("train_loss"))
            testLoss.append(try number("test_loss"))
            trainAccuracy.append(try number("train_accuracy"))
            testAccuracy.append(try number("test_accuracy"))
        }
        guard !epochs.isEmpty else {
            throw EvalError.metrics(file: url.path, detail: "has no {\"kind\": \"epoch\"} record yet (no epoch finished)")
        }
        let perEpoch = max(stepsPerEpoch ?? 1, 1)
        return try Figures.trainingCurves(epochs: epochs, trainLoss: trainLoss, testLoss: testLoss,
                                          trainAccuracy: trainAccuracy, testAccuracy: testAccuracy,
                                          stepEpochs: stepNumbers.map { $0 / perEpoch }, stepLoss: stepLoss,
                                          title: runDirectory.lastPathComponent)
    }

    // MARK: - Confusion matrix

    /// The confusion matrix of the model on a split.
    public static func confusion(checkpoint: URL, configFile: URL?, dataDirectory: URL?, split: Split = .test) throws -> Image {
        var options = EvalOptions(checkpoint: checkpoint)
        options.configFile = configFile
        options.dataDirectory = dataDirectory
        options.split = split
        options.worstCount = 0
        return try EvalReport.run(options).confusionImage()
    }

    // MARK: - Writing

    /// Writes `image` as PNG, creating the parent directory.
    public static func write(_ image: Image, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try image.write(to: url)
    }

    // MARK: - Helpers

    /// Raw bytes → the normalized `(count, 1, rows, cols)` tensor the model was trained on.
    static func inputTensor(_ pixels: [UInt8], count: Int, dataset: Dataset, config: TrainingConfig) throws -> Tensor {
        let values = try Transform.normalized(config.normalization)
            .apply(images: pixels, count: count, rows: dataset.rows, cols: dataset.cols)
        return try Tensor(shape: [count, 1, dataset.rows, dataset.cols], data: values)
    }
}
