import Foundation
import Kernels
import MNISTData
import NN
import Plot
import SafeTensors

// MARK: - Errors

/// Errors of `mnist-eval` and `mnist-viz`, each naming the file or option involved.
public enum EvalError: Error, CustomStringConvertible, LocalizedError {
    /// The checkpoint file does not exist.
    case checkpointNotFound(path: String)
    /// The checkpoint has no `mnist_train_config` metadata and no `--config` was given.
    case noConfig(checkpoint: String)
    /// The stored config could not be decoded.
    case storedConfig(checkpoint: String, detail: String)
    /// The checkpoint's tensor names or shapes do not fit the config's model.
    case weightsMismatch(checkpoint: String, configSource: String, detail: String)
    /// A command-line value is out of range.
    case option(name: String, value: String, expected: String)
    /// A run directory or its metrics file is missing or unusable.
    case metrics(file: String, detail: String)
    /// A layer asked for by name is absent or of the wrong kind.
    case layer(name: String, detail: String)

    public var description: String {
        switch self {
        case let .checkpointNotFound(path):
            return "\(path): no such checkpoint file (expected a .safetensors file, e.g. <run>/\(Checkpoint.modelFile))"
        case let .noConfig(checkpoint):
            return "\(checkpoint): the file has no \"mnist_train_config\" metadata, so the architecture is unknown; "
                + "pass the model's config with --config (e.g. configs/lenet.json)"
        case let .storedConfig(checkpoint, detail):
            return "\(checkpoint): the config stored in its \"mnist_train_config\" metadata is invalid: \(detail)"
        case let .weightsMismatch(checkpoint, configSource, detail):
            return "\(checkpoint): the weights do not fit the model of \(configSource): \(detail)"
        case let .option(name, value, expected):
            return "\(name) is \(value); expected \(expected)"
        case let .metrics(file, detail):
            return "\(file): \(detail)"
        case let .layer(name, detail):
            return "layer \"\(name)\": \(detail)"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - Loading a trained model

/// A network rebuilt from a checkpoint: its config (stored or given) and the loaded weights.
public struct LoadedModel {
    public var config: TrainingConfig
    public var model: Sequential
    /// Where the config came from: the checkpoint's metadata or a config file.
    public var configSource: String
    public var checkpoint: URL

    /// Reads `checkpoint`, takes the architecture from `configFile` when given (weights
    /// exported elsewhere, e.g. by PyTorch) and otherwise from the checkpoint's
    /// `mnist_train_config` metadata, builds the model and loads the weights strictly.
    public static func load(checkpoint: URL, configFile: URL? = nil) throws -> LoadedModel {
        guard FileManager.default.fileExists(atPath: checkpoint.path) else {
            throw EvalError.checkpointNotFound(path: checkpoint.path)
        }
        let file = try SafeTensorsFile.read(from: checkpoint)
        let config: TrainingConfig
        let source: String
        if let configFile {
            config = try TrainingConfig.load(from: configFile)
            source = configFile.path
        } else if let stored = file.metadata["mnist_train_config"] {
            do {
                config = try TrainingConfig.decode(Data(stored.utf8), file: "\(checkpoint.path) [mnist_train_config]")
            } catch {
                throw EvalError.storedConfig(checkpoint: checkpoint.path, detail: "\(error)")
            }
            source = "the config stored in the checkpoint"
        } else {
            throw EvalError.noConfig(checkpoint: checkpoint.path)
        }
        let model = try ModelBuilder.build(config, seed: config.seed)
        do {
            try Checkpoint.loadWeights(file, into: model)
        } catch let TrainingError.checkpoint(_, detail) {
            throw EvalError.weightsMismatch(checkpoint: checkpoint.path, configSource: source, detail: detail)
        }
        model.eval()
        return LoadedModel(config: config, model: model, configSource: source, checkpoint: checkpoint)
    }

    /// The data directory: the override when given, otherwise the config's.
    public func dataDirectory(override: URL?) -> URL {
        override ?? URL(fileURLWithPath: config.data.directory)
    }
}

// MARK: - Evaluation report

/// What `mnist-eval` was asked to do.
public struct EvalOptions: Sendable {
    public var checkpoint: URL
    /// A config for weights without a stored one (or to override it).
    public var configFile: URL?
    /// Overrides the config's data directory.
    public var dataDirectory: URL?
    /// `test` or `train`.
    public var split: Split = .test
    /// Overrides the config's `test_batch_size`.
    public var batchSize: Int?
    /// Overrides the config's `threads`.
    public var threads: Int?
    /// How many misclassified samples to list (most confident first).
    public var worstCount = 10
    /// Writes `confusion.png` and `worst.png` here when set.
    public var imagesDirectory: URL?
    /// Writes every sample's log-probabilities (`log_probabilities`, `[N, classes]`) and
    /// label (`labels`, int64 `[N]`) to this safetensors file when set.
    public var outputsFile: URL?

    public init(checkpoint: URL) { self.checkpoint = checkpoint }

    /// `test` or `train` from the command line.
    public static func split(named name: String) throws -> Split {
        guard let split = Split(rawValue: name) else {
            throw EvalError.option(name: "--split", value: "\"\(name)\"",
                                   expected: Split.allCases.map(\.rawValue).joined(separator: " or "))
        }
        return split
    }
}

/// One misclassified sample.
public struct MisclassifiedSample: Sendable, Equatable {
    /// Position in the split (0-based, file order).
    public var index: Int
    public var label: Int
    public var prediction: Int
    /// The probability the model gave its (wrong) prediction.
    public var confidence: Float
}

/// The result of `mnist-eval`: the evaluation plus what is needed to print it.
public struct EvalReport: Sendable {
    public var checkpoint: String
    public var configSource: String
    public var split: Split
    public var dataDirectory: String
    public var evaluation: Evaluation
    public var worst: [MisclassifiedSample]
    /// Pictures written with `--save-images`.
    public var imagesWritten: [String] = []

    // MARK: Running

    /// Loads the model and the split, evaluates every sample (no grad, batched) and, when
    /// asked, writes the confusion-matrix and worst-errors pictures. The whole split is
    /// used: the config's `train_limit` / `test_limit` are for training runs only.
    public static func run(_ options: EvalOptions) throws -> EvalReport {
        if let batchSize = options.batchSize, !(1...65_536).contains(batchSize) {
            throw EvalError.option(name: "--batch-size", value: "\(batchSize)", expected: "1...65536")
        }
        if let threads = options.threads, !(1...256).contains(threads) {
            throw EvalError.option(name: "--threads", value: "\(threads)", expected: "1...256")
        }
        guard options.worstCount >= 0 else {
            throw EvalError.option(name: "--worst", value: "\(options.worstCount)", expected: "0 or more")
        }
        let loaded = try LoadedModel.load(checkpoint: options.checkpoint, configFile: options.configFile)
        return try Parallelism.withThreadCount(options.threads ?? loaded.config.threads) {
            try evaluate(loaded, options)
        }
    }

    private static func evaluate(_ loaded: LoadedModel, _ options: EvalOptions) throws -> EvalReport {
        let directory = loaded.dataDirectory(override: options.dataDirectory)
        let dataset = try Dataset.load(directory: directory, split: options.split)
        let evaluation = try Evaluator.evaluate(
            loaded.model, dataset: dataset, batchSize: options.batchSize ?? loaded.config.testBatchSize,
            normalization: loaded.config.normalization,
            logProbabilities: ModelBuilder.endsWithLogSoftmax(loaded.model))
        let worst = evaluation.worstErrors(options.worstCount).map {
            MisclassifiedSample(index: $0.index, label: $0.label, prediction: $0.prediction, confidence: $0.confidence)
        }
        var report = EvalReport(
            checkpoint: options.checkpoint.path, configSource: loaded.configSource, split: options.split,
            dataDirectory: directory.path, evaluation: evaluation, worst: worst)
        if let imagesDirectory = options.imagesDirectory {
            report.imagesWritten = try report.writeImages(to: imagesDirectory, dataset: dataset)
        }
        if let outputsFile = options.outputsFile {
            let classes = evaluation.confusion.count
            let file = SafeTensorsFile(tensors: [
                "log_probabilities": try TensorEntry(floats: evaluation.logProbabilities, shape: [evaluation.count, classes]),
                "labels": try TensorEntry(int64s: evaluation.labels.map(Int64.init), shape: [evaluation.count]),
            ], metadata: ["checkpoint": options.checkpoint.path, "split": options.split.rawValue])
            try file.write(to: outputsFile)
            report.imagesWritten.append(outputsFile.path)
        }
        return report
    }

    // MARK: Pictures

    /// The confusion matrix as a picture (rows: true labels, columns: predictions).
    public func confusionImage() throws -> Image {
        // The figure appends the overall accuracy to the title.
        try Figures.confusionMatrix(
            counts: evaluation.confusion.flatMap { $0 }, classNames: (0..<evaluation.confusion.count).map(String.init),
            title: "Confusion matrix (\(split.rawValue))")
    }

    /// The worst errors as a digit grid, each captioned `p=<prediction> (<label>)` in red
    /// over its index in the split and the model's confidence (`#1234 97%`);
    /// `nil` when there is no error to show.
    public func worstImage(dataset: Dataset) throws -> Image? {
        guard !worst.isEmpty else { return nil }
        let pixels = worst.flatMap { dataset.pixels($0.index..<($0.index + 1)) }
        return try Figures.digitGrid(
            images: pixels, height: dataset.rows, width: dataset.cols, labels: worst.map(\.label),
            predictions: worst.map(\.prediction),
            notes: worst.map { String(format: "#%d %.0f%%", $0.index, 100 * $0.confidence) }, columns: min(10, worst.count),
            title: "Most confident errors (\(split.rawValue))")
    }

    /// Writes `confusion.png` and `worst.png` (if there are errors) into `directory`,
    /// creating it; returns the paths written.
    public func writeImages(to directory: URL, dataset: Dataset) throws -> [String] {
        try FileProblem.makeDirectories(directory, what: "--save-images")
        var written: [String] = []
        let confusionURL = directory.appendingPathComponent("confusion.png")
        try confusionImage().write(to: confusionURL)
        written.append(confusionURL.path)
        if let image = try worstImage(dataset: dataset) {
            let worstURL = directory.appendingPathComponent("worst.png")
            try image.write(to: worstURL)
            written.append(worstURL.path)
        }
        return written
    }

    // MARK: Output

    /// One JSON object: `accuracy`, `loss`, `count`, `correct`, `confusion_matrix`
    /// (rows = true labels), `per_class` and `worst`, plus where everything came from.
    public var json: String {
        let perClass = evaluation.perClass.enumerated().map { c, s in
            RawJSON(text: jsonObject(["class": c, "precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support]))
        }
        let worstJSON = worst.map {
            RawJSON(text: jsonObject(["index": $0.index, "label": $0.label, "prediction": $0.prediction,
                                      "confidence": Double($0.confidence)]))
        }
        return jsonObject([
            "checkpoint": checkpoint, "config": configSource, "split": split.rawValue, "data_dir": dataDirectory,
            "accuracy": evaluation.accuracy, "loss": evaluation.loss, "count": evaluation.count,
            "correct": evaluation.correct, "confusion_matrix": evaluation.confusion,
            "per_class": perClass as [Any], "worst": worstJSON as [Any], "images": imagesWritten as [Any],
            "seconds": evaluation.seconds,
        ])
    }

    /// The human-readable report: summary, aligned confusion table, per-class scores and
    /// the worst errors.
    public var text: String {
        var lines: [String] = []
        lines.append("Checkpoint: \(checkpoint) (architecture from \(configSource))")
        lines.append("Data: \(dataDirectory) [\(split.rawValue)], \(evaluation.count) images, "
            + String(format: "%.2f s", evaluation.seconds))
        lines.append(String(format: "Accuracy: %d/%d = %.2f%%   mean loss: %.4f", evaluation.correct, evaluation.count,
                            100 * evaluation.accuracy, evaluation.loss))
        lines.append("")
        lines.append("Confusion matrix (rows: true label, columns: prediction):")
        lines += confusionTable()
        lines.append("")
        lines.append("class  precision  recall      f1  support")
        for (c, s) in evaluation.perClass.enumerated() {
            lines.append(String(format: "%5d  %9.4f  %6.4f  %6.4f  %7d", c, s.precision, s.recall, s.f1, s.support))
        }
        if !worst.isEmpty {
            lines.append("")
            lines.append("Most confident errors:")
            lines.append(" index  label  prediction  confidence")
            for w in worst {
                lines.append(String(format: "%6d  %5d  %10d  %10.4f", w.index, w.label, w.prediction, Double(w.confidence)))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The confusion matrix with right-aligned columns wide enough for every count.
    func confusionTable() -> [String] {
        let confusion = evaluation.confusion
        let widest = confusion.flatMap { $0 }.map { String($0).count }.max() ?? 1
        let width = max(widest, String(confusion.count - 1).count, 3)
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var rows = ["true\\pred " + (0..<confusion.count).map { pad(String($0)) }.joined(separator: " ")]
        for (label, row) in confusion.enumerated() {
            rows.append(pad(String(label)).padding(toLength: 10, withPad: " ", startingAt: 0)
                + row.map { pad(String($0)) }.joined(separator: " "))
        }
        return rows
    }
}
