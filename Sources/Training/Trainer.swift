import Autograd
import Foundation
import Kernels
import MNISTData
import NN
import Optim
import Plot
import SafeTensors
import Seeded

/// What the command line adds to a config for one run.
public struct RunOptions: Sendable {
    public var outputDirectory: URL?
    public var resumeDirectory: URL?
    public var initFrom: URL?
    public var maxSteps: Int?
    /// With `resumeDirectory`: train to this many epochs instead of the saved config's,
    /// and read the data from here (the data may have moved; the run stays the same).
    public var epochs: Int?
    public var dataDirectory: String?
    public var quiet = false
    public var json = false
    public init() {}
}

/// The final numbers of a run (`--json` prints them).
public struct RunSummary: Sendable {
    public var runDirectory: String
    public var epochsCompleted: Int
    public var steps: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var bestTestAccuracy: Double
    public var seconds: Double
    public var samplesPerSecond: Double

    public var json: String {
        jsonObject([
            "run_dir": runDirectory, "epochs_completed": epochsCompleted, "steps": steps,
            "train_loss": trainLoss, "train_accuracy": trainAccuracy, "test_loss": testLoss,
            "test_accuracy": testAccuracy, "best_test_accuracy": bestTestAccuracy,
            "seconds": seconds, "samples_per_second": samplesPerSecond,
            "model": runDirectory + "/" + Checkpoint.modelFile,
        ])
    }
}

/// Trains a model as a config describes: the loop, logging, evaluation after each epoch,
/// checkpoints, resume, and clean stops on signals and non-finite losses.
public final class Trainer {
    public let config: TrainingConfig
    public let options: RunOptions
    public let runDirectory: URL
    let console: Console
    let configJSON: String

    /// Prepares a run: resolves the run directory (a new one, or the one to resume, whose
    /// saved config then replaces `config`; `options.epochs` may extend it).
    public init(config: TrainingConfig, options: RunOptions) throws {
        var config = config
        if let resume = options.resumeDirectory {
            let saved = resume.appendingPathComponent(Checkpoint.configFile)
            guard FileManager.default.fileExists(atPath: saved.path) else {
                throw TrainingError.runDirectory("\(resume.path): not a run directory (no \(Checkpoint.configFile)); "
                    + "--resume takes the directory of an earlier run")
            }
            config = try TrainingConfig.load(from: saved)
            if let epochs = options.epochs { config.epochs = epochs }
            if let directory = options.dataDirectory { config.data.directory = directory }
            runDirectory = resume
        } else if let out = options.outputDirectory {
            runDirectory = out
        } else {
            let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .current,
                                                    formatOptions: [.withYear, .withMonth, .withDay, .withTime])
            runDirectory = URL(fileURLWithPath: config.outputDirectory)
                .appendingPathComponent("\(config.name)-\(stamp.replacingOccurrences(of: ":", with: ""))")
        }
        self.config = config
        self.options = options
        console = Console(quiet: options.quiet, jsonOnStdout: options.json)
        configJSON = config.json
    }

    // MARK: - Run

    /// Trains, with `config.threads` threads for the kernels.
    public func run() throws -> RunSummary {
        try Parallelism.withThreadCount(config.threads) { try train() }
    }

    private func train() throws -> RunSummary {
        let startTime = DispatchTimeNow()
        // A network that cannot work fails before anything is written or loaded.
        let model = try ModelBuilder.build(config, seed: config.seed)
        try prepareRunDirectory()
        let (train, test) = try loadData()
        let nllOutput = ModelBuilder.endsWithLogSoftmax(model)
        let optimizer = try makeOptimizer(model.parameters())
        var progress = TrainingProgress()
        var metrics = MetricsLog(url: runDirectory.appendingPathComponent(Checkpoint.metricsFile))
        let stateURL = runDirectory.appendingPathComponent(Checkpoint.stateFile)

        if options.resumeDirectory != nil { removeStaleTemporaries() }
        if options.resumeDirectory != nil && !FileManager.default.fileExists(atPath: stateURL.path) {
            // Stopped before its first checkpoint: start over with the saved config.
            console.line("No \(Checkpoint.stateFile) in \(runDirectory.path) yet: starting the run from step 0")
        } else if options.resumeDirectory != nil {
            let restored = try Checkpoint.readState(from: stateURL, model: model, optimizer: optimizer)
            progress = restored.progress
            for (name, module) in model.layers {
                if let dropout = module as? Dropout, let words = restored.dropoutStates[name],
                   let g = SeededGenerator(state: words) { dropout.generator = g }
            }
            try metrics.load(upToStep: progress.step)
            if progress.finished && progress.epoch >= config.epochs {
                console.line("The run in \(runDirectory.path) is already complete (\(config.epochs) epochs).")
            } else {
                progress.finished = false
                console.line("Resuming \(runDirectory.path) at epoch \(progress.epoch + 1), batch \(progress.batchIndex), step \(progress.step)")
            }
        } else if let initFrom = options.initFrom {
            try Checkpoint.loadWeights(SafeTensorsFile.read(from: initFrom), into: model)
        }

        // Top-level members and those of data, model, optimizer... on their own lines; one
        // line per layer.
        console.line("Config \(config.name): \(indentedJSON(configJSON, objectDepth: 2))")
        console.line("\(model)")
        console.line("Parameters: \(model.parameterCount); training on \(train.count) images, testing on \(test.count); "
            + "\(config.threads) thread(s); run directory \(runDirectory.path)")

        let augmentation = config.data.augmentShift > 0 || config.data.augmentRotation > 0
            ? Augmentation(maxShift: config.data.augmentShift, maxRotationDegrees: Float(config.data.augmentRotation)) : nil
        let transform = try Transform([.toTensor, .normalize(config.normalization)]).withAugmentation(augmentation)
        let loader = try DataLoader(dataset: train, batchSize: config.batchSize, shuffle: config.shuffle,
                                    seed: config.seed, transform: transform)
        let signals = StopSignals()
        defer { signals.stop() }

        var lastEvaluation: Evaluation?
        var samplesTimed = 0, secondsTimed = 0.0
        func saveState() throws {
            // Metrics first: a kill between the two leaves metrics ahead of the checkpoint,
            // which a resume trims, rather than behind it, which it could not mend.
            try metrics.write()
            try Checkpoint.writeState(to: stateURL, model: model, optimizer: optimizer, progress: progress,
                                      dropoutStates: dropoutStates(model), configJSON: configJSON)
        }

        training: while progress.epoch < config.epochs && !progress.finished {
            let epoch = progress.epoch
            let lr = config.schedule.learningRate(base: config.optimizer.lr, epoch: epoch)
            optimizer.learningRate = Float(lr)
            model.train()
            let epochStart = DispatchTimeNow()
            var windowStart = epochStart, windowSamples = 0
            for batch in loader.batches(epoch: epoch, startingAt: progress.batchIndex) {
                if let limit = options.maxSteps, progress.step >= limit { break training }
                let x = try Tensor(shape: batch.imageShape, data: batch.images)
                optimizer.zeroGrad()
                let output = try model(x)
                let loss = nllOutput ? try F.nllLoss(output, targets: batch.labels)
                                     : try F.crossEntropy(output, targets: batch.labels)
                let lossValue = try loss.item()
                guard lossValue.isFinite else {
                    let saved = FileManager.default.fileExists(atPath: stateURL.path) ? stateURL.path : nil
                    throw TrainingError.nonFiniteLoss(step: progress.step + 1, epoch: epoch, loss: lossValue,
                                                      learningRate: lr, lastCheckpoint: saved)
                }
                try loss.backward()
                try optimizer.step()

                progress.step += 1
                progress.batchIndex += 1
                progress.epochLossSum += Double(lossValue) * Double(batch.count)
                progress.epochSeen += batch.count
                progress.epochCorrect += correctCount(output, batch.labels)
                windowSamples += batch.count

                let seen = min(progress.batchIndex * config.batchSize, train.count)
                if progress.step % config.logInterval == 0 || progress.batchIndex == loader.batchCount {
                    let now = DispatchTimeNow()
                    let rate = Double(windowSamples) / max(now - windowStart, 1e-9)
                    samplesTimed += windowSamples
                    secondsTimed += now - windowStart
                    windowStart = now
                    windowSamples = 0
                    console.line(String(format: "Train Epoch: %d [%d/%d (%.0f%%)]\tLoss: %.6f", epoch + 1, seen, train.count,
                                        100 * Double(seen) / Double(train.count), lossValue))
                    metrics.append(jsonObject(["kind": "step", "epoch": epoch + 1, "step": progress.step, "loss": Double(lossValue),
                                               "lr": lr, "samples_per_second": rate]))
                }
                if console.isTerminal {
                    let elapsed = DispatchTimeNow() - epochStart
                    let done = Double(progress.batchIndex) / Double(loader.batchCount)
                    let rate = Double(progress.epochSeen) / max(elapsed, 1e-9)
                    console.progress(progressBar(epoch: epoch, fraction: done, loss: lossValue, rate: rate,
                                                 eta: rate > 0 ? Double(train.count - seen) / rate : .infinity))
                }
                if config.checkpointEverySteps > 0 && progress.step % config.checkpointEverySteps == 0 {
                    try saveState()
                }
                if let signal = signals.pending {
                    try saveState()
                    console.clearProgress()
                    throw TrainingError.interrupted(signal: signal, runDirectory: runDirectory.path, step: progress.step)
                }
            }
            try finishEpoch()

            func finishEpoch() throws {
                console.clearProgress()
                let seconds = DispatchTimeNow() - epochStart
                let evaluation = try Evaluator.evaluate(model, dataset: test, batchSize: config.testBatchSize,
                                                        normalization: config.normalization, logProbabilities: nllOutput)
                lastEvaluation = evaluation
                console.line(String(format: "\nTest set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)\n", evaluation.loss,
                                    evaluation.correct, evaluation.count, 100 * evaluation.accuracy))
                let trainLoss = progress.epochLossSum / Double(max(progress.epochSeen, 1))
                let trainAccuracy = Double(progress.epochCorrect) / Double(max(progress.epochSeen, 1))
                metrics.append(jsonObject([
                    "kind": "epoch", "epoch": epoch + 1, "step": progress.step, "lr": lr,
                    "train_loss": trainLoss, "train_accuracy": trainAccuracy,
                    "test_loss": evaluation.loss, "test_accuracy": evaluation.accuracy,
                    "seconds": seconds, "eval_seconds": evaluation.seconds,
                ]))
                if evaluation.accuracy > progress.bestAccuracy {
                    progress.bestAccuracy = evaluation.accuracy
                    try Checkpoint.weightsFile(model, configJSON: configJSON, extra: ["epoch": "\(epoch + 1)", "test_accuracy": "\(evaluation.accuracy)"])
                        .write(to: runDirectory.appendingPathComponent(Checkpoint.bestFile))
                }
                progress.epoch += 1
                progress.batchIndex = 0
                progress.epochLossSum = 0
                progress.epochSeen = 0
                progress.epochCorrect = 0
                try saveState()
            }
        }

        // A run stopped by --max-steps mid-epoch still saves and evaluates.
        if lastEvaluation == nil || (options.maxSteps != nil && progress.batchIndex > 0) {
            let evaluation = try Evaluator.evaluate(model, dataset: test, batchSize: config.testBatchSize,
                                                    normalization: config.normalization, logProbabilities: nllOutput)
            lastEvaluation = evaluation
            console.line(String(format: "\nTest set: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)\n", evaluation.loss,
                                evaluation.correct, evaluation.count, 100 * evaluation.accuracy))
            if evaluation.accuracy > progress.bestAccuracy { progress.bestAccuracy = evaluation.accuracy }
        }
        progress.finished = progress.epoch >= config.epochs
        try saveState()
        try Checkpoint.weightsFile(model, configJSON: configJSON)
            .write(to: runDirectory.appendingPathComponent(Checkpoint.modelFile))
        try? drawCurves(metrics)
        let evaluation = lastEvaluation!
        let epochRecords = metrics.epochRecords()
        return RunSummary(
            runDirectory: runDirectory.path, epochsCompleted: progress.epoch, steps: progress.step,
            trainLoss: epochRecords.last?["train_loss"] ?? .nan, trainAccuracy: epochRecords.last?["train_accuracy"] ?? .nan,
            testLoss: evaluation.loss, testAccuracy: evaluation.accuracy, bestTestAccuracy: progress.bestAccuracy,
            seconds: DispatchTimeNow() - startTime,
            samplesPerSecond: secondsTimed > 0 ? Double(samplesTimed) / secondsTimed : 0)
    }

    // MARK: - Pieces

    func prepareRunDirectory() throws {
        let fm = FileManager.default
        do { try fm.createDirectory(at: runDirectory, withIntermediateDirectories: true) } catch {
            throw TrainingError.runDirectory("cannot create the run directory \(runDirectory.path): \(error.localizedDescription)")
        }
        if options.resumeDirectory == nil {
            let existing = runDirectory.appendingPathComponent(Checkpoint.stateFile)
            if fm.fileExists(atPath: existing.path) {
                throw TrainingError.runDirectory("\(runDirectory.path) already holds a run; continue it with --resume \(runDirectory.path) or choose another --out")
            }
            do {
                try AtomicFile.write(Data((configJSON + "\n").utf8), to: runDirectory.appendingPathComponent(Checkpoint.configFile))
            } catch {
                throw TrainingError.runDirectory("cannot write to the run directory \(runDirectory.path): \(error)")
            }
        }
    }

    /// Removes `.NAME.tmp-*` files that a killed process left behind in the run directory.
    func removeStaleTemporaries() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: runDirectory.path)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
            try? fm.removeItem(at: runDirectory.appendingPathComponent(name))
        }
    }

    func loadData() throws -> (train: Dataset, test: Dataset) {
        let directory = URL(fileURLWithPath: config.data.directory)
        let names = Split.train.fileNames, testNames = Split.test.fileNames
        let required = [names.images, names.labels, testNames.images, testNames.labels]
        let present = required.allSatisfy { name in
            ["", ".gz"].contains { FileManager.default.fileExists(atPath: directory.appendingPathComponent(name + $0).path) }
        }
        if !present && config.data.download && config.data.dataset == "mnist" {
            for line in try downloadMNIST(into: config.data.directory, mirrors: config.data.mirrors) { console.line(line) }
        }
        var train = try Dataset.load(directory: directory, split: .train)
        var test = try Dataset.load(directory: directory, split: .test)
        guard [1, train.rows, train.cols] == config.inputShape, [1, test.rows, test.cols] == config.inputShape else {
            throw TrainingError.data("\(directory.path): images are 1x\(train.rows)x\(train.cols) (test 1x\(test.rows)x\(test.cols)) "
                + "but model.input_shape is \(config.inputShape)")
        }
        if let n = config.data.trainLimit { train = try train.prefix(n) }
        if let n = config.data.testLimit { test = try test.prefix(n) }
        return (train, test)
    }

    func makeOptimizer(_ parameters: [Tensor]) throws -> any Optimizer {
        let o = config.optimizer
        switch o.type {
        case "adam", "adamw":
            return try Adam(parameters: parameters, learningRate: Float(o.lr), betas: (Float(o.betas[0]), Float(o.betas[1])),
                            epsilon: Float(o.eps), weightDecay: Float(o.weightDecay), decoupledWeightDecay: o.type == "adamw")
        default:
            return try SGD(parameters: parameters, learningRate: Float(o.lr), momentum: Float(o.momentum),
                           dampening: Float(o.dampening), weightDecay: Float(o.weightDecay), nesterov: o.nesterov)
        }
    }

    func dropoutStates(_ model: Sequential) -> [String: [UInt64]] {
        var states: [String: [UInt64]] = [:]
        for (name, module) in model.layers { if let d = module as? Dropout { states[name] = d.generator.state } }
        return states
    }

    func correctCount(_ output: Tensor, _ labels: [Int32]) -> Int {
        let classes = output.shape[1], p = output.storage.pointer
        var correct = 0
        for i in 0..<labels.count {
            let row = p + i * classes
            var best = 0
            for c in 1..<classes where row[c] > row[best] { best = c }
            if best == Int(labels[i]) { correct += 1 }
        }
        return correct
    }

    func progressBar(epoch: Int, fraction: Double, loss: Float, rate: Double, eta: Double) -> String {
        let width = 30
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        return String(format: "Epoch %d/%d %@ %3.0f%%  loss %.4f  %.0f img/s  ETA %@", epoch + 1, config.epochs, bar,
                      100 * fraction, loss, rate, formatDuration(eta))
    }

    func drawCurves(_ metrics: MetricsLog) throws {
        let records = metrics.epochRecords()
        guard !records.isEmpty else { return }
        let image = try Figures.trainingCurves(
            epochs: records.map { $0["epoch"] ?? 0 }, trainLoss: records.map { $0["train_loss"] ?? .nan },
            testLoss: records.map { $0["test_loss"] ?? .nan }, trainAccuracy: records.map { $0["train_accuracy"] ?? .nan },
            testAccuracy: records.map { $0["test_accuracy"] ?? .nan }, title: config.name)
        try image.write(to: runDirectory.appendingPathComponent("curves.png"))
    }
}

/// `metrics.jsonl`: one JSON object per line, kept in memory and rewritten atomically at
/// each checkpoint, so a crash never leaves a torn line.
struct MetricsLog {
    let url: URL
    private(set) var lines: [String] = []

    init(url: URL) { self.url = url }

    mutating func append(_ line: String) { lines.append(line) }

    /// Keeps the records of an earlier run up to the checkpoint's step (later ones are redone).
    mutating func load(upToStep step: Int) throws {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        lines = text.split(separator: "\n").map(String.init).filter { line in
            guard let object = parse(line), let s = object["step"] as? Int else { return false }
            return s <= step
        }
    }

    func write() throws {
        try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: url)
    }

    func parse(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// The per-epoch records, numbers only.
    func epochRecords() -> [[String: Double]] {
        lines.compactMap(parse).filter { $0["kind"] as? String == "epoch" }.map { object in
            object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }
}

extension Dataset {
    /// The first `n` samples.
    func prefix(_ n: Int) throws -> Dataset {
        let k = Swift.min(n, count)
        return try Dataset(name: name, images: Array(images.prefix(k * pixelsPerImage)), labels: Array(labels.prefix(k)),
                           rows: rows, cols: cols, classCount: classCount)
    }
}

/// Fetches the MNIST files into `directory` (a no-op when valid files are there); tries
/// `../shared/data/mnist` first when it exists, then `MNIST_MIRRORS`, `mirrors` or
/// torchvision's mirrors. Returns what was done, a line per file.
public func downloadMNIST(into directory: String, mirrors: [String] = []) throws -> [String] {
    let resolved = Downloader.resolveMirrors(configured: mirrors.isEmpty ? nil : mirrors,
                                             localDirectories: [URL(fileURLWithPath: "../shared/data/mnist")])
    return try Downloader(mirrors: resolved).ensure(directory: URL(fileURLWithPath: directory))
}
