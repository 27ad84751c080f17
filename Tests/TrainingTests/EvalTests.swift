import Foundation
import Kernels
import MNISTData
import NN
import Testing
import TestSupport
@testable import Training

// MARK: - Shared fixtures

/// The reference checkpoints of ../shared/reference with configs/lenet.json (PyTorch
/// weights carry no stored config), evaluated on ../shared/data/mnist.
enum Fixtures {
    static let lenetConfig = Shared.packageRoot.appendingPathComponent("configs/lenet.json")

    static func reference(_ name: String) -> URL {
        Shared.referenceDirectory.appendingPathComponent(name)
    }

    static func options(_ checkpoint: String, worst: Int = 12) -> EvalOptions {
        var options = EvalOptions(checkpoint: reference(checkpoint))
        options.configFile = lenetConfig
        options.dataDirectory = Shared.mnistDirectory
        options.worstCount = worst
        return options
    }

    static func loadedModel(_ checkpoint: String) throws -> LoadedModel {
        try LoadedModel.load(checkpoint: reference(checkpoint), configFile: lenetConfig)
    }

    /// Evaluated once and shared by the tests that only read it.
    static let adamReport: Result<EvalReport, any Error> = Result {
        try EvalReport.run(options("lenet_adam_final.safetensors"))
    }

    /// MNIST's test-set label counts, digit 0 to 9.
    static let testLabelCounts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
}

// MARK: - Evaluation

struct EvalTests {
    /// lenet_e2e.json's `final_test_acc`: PyTorch's accuracy of the same weights.
    @Test(arguments: [("lenet_sgd_final.safetensors", 4632), ("lenet_adam_final.safetensors", 7517)])
    func referenceCheckpointsReproducePyTorchAccuracy(checkpoint: String, expectedCorrect: Int) throws {
        let report = checkpoint.contains("adam")
            ? try Fixtures.adamReport.get() : try EvalReport.run(Fixtures.options(checkpoint))
        #expect(report.evaluation.count == 10_000)
        #expect(report.evaluation.correct == expectedCorrect)
        #expect(report.evaluation.accuracy == Double(expectedCorrect) / 10_000)
        #expect(report.evaluation.loss.isFinite && report.evaluation.loss > 0)
    }

    /// With several threads each evaluates whole batches of its own, counted in batch order
    /// afterwards; with one, the batches come one after the other from the prefetching
    /// sequence. Both give the same outputs, bit for bit: the same log-probabilities,
    /// predictions, confusion and loss at 1, 2 and 3 threads, on batches of 700 (15 batches,
    /// the last one of 200: the threads get different numbers of batches).
    @Test func evaluationIsTheSameAtEveryThreadCount() throws {
        let loaded = try Fixtures.loadedModel("lenet_adam_final.safetensors")
        let dataset = try Dataset.load(directory: Shared.mnistDirectory, split: .test)
        let evaluations = try (1...3).map { threads in
            try Parallelism.withThreadCount(threads) {
                try Evaluator.evaluate(loaded.model, dataset: dataset, batchSize: 700, normalization: loaded.config.normalization,
                                       logProbabilities: ModelBuilder.endsWithLogSoftmax(loaded.model))
            }
        }
        #expect(evaluations[0].correct == 7517 && evaluations[0].count == 10_000)
        #expect(evaluations[0].labels == (0..<10_000).map { Int(dataset.labels[$0]) })
        for (threads, evaluation) in zip(2..., evaluations.dropFirst()) {
            #expect(evaluation.logProbabilities.map(\.bitPattern) == evaluations[0].logProbabilities.map(\.bitPattern),
                    "log-probabilities at \(threads) threads")
            #expect(evaluation.predictions == evaluations[0].predictions, "predictions at \(threads) threads")
            #expect(evaluation.labels == evaluations[0].labels && evaluation.confusion == evaluations[0].confusion)
            #expect(evaluation.loss.bitPattern == evaluations[0].loss.bitPattern, "loss at \(threads) threads")
        }
    }

    @Test func initialWeightsLoadAndGuessAtChance() throws {
        var options = Fixtures.options("lenet_init.safetensors")
        options.batchSize = 500
        let report = try EvalReport.run(options)
        #expect(report.evaluation.count == 10_000)
        #expect((0.05...0.2).contains(report.evaluation.accuracy), "accuracy \(report.evaluation.accuracy)")
        // Untrained: close to uniform, so the NLL is close to ln 10.
        #expect(abs(report.evaluation.loss - log(10.0)) < 0.1, "loss \(report.evaluation.loss)")
    }

    @Test func confusionRowsSumToLabelCounts() throws {
        let evaluation = try Fixtures.adamReport.get().evaluation
        #expect(evaluation.confusion.count == 10)
        #expect(evaluation.confusion.map { $0.reduce(0, +) } == Fixtures.testLabelCounts)
        let diagonal = (0..<10).reduce(0) { $0 + evaluation.confusion[$1][$1] }
        #expect(diagonal == evaluation.correct)
    }

    @Test func perClassScoresAreConsistentWithTheConfusionMatrix() throws {
        let evaluation = try Fixtures.adamReport.get().evaluation
        let confusion = evaluation.confusion
        var weightedRecall = 0.0
        for (c, scores) in evaluation.perClass.enumerated() {
            let truePositives = Double(confusion[c][c])
            let predicted = Double((0..<10).reduce(0) { $0 + confusion[$1][c] })
            #expect(scores.support == Fixtures.testLabelCounts[c])
            #expect(abs(scores.recall - truePositives / Double(scores.support)) < 1e-12)
            #expect(abs(scores.precision - truePositives / predicted) < 1e-12)
            let f1 = 2 * scores.precision * scores.recall / (scores.precision + scores.recall)
            #expect(abs(scores.f1 - f1) < 1e-12)
            #expect((0...1).contains(scores.f1))
            weightedRecall += scores.recall * Double(scores.support)
        }
        // Recall weighted by support is the accuracy.
        #expect(abs(weightedRecall / 10_000 - evaluation.accuracy) < 1e-12)
    }

    @Test func worstErrorsAreTheMostConfidentMistakes() throws {
        let report = try Fixtures.adamReport.get()
        let evaluation = report.evaluation
        #expect(report.worst.count == 12)
        for sample in report.worst {
            #expect(sample.label != sample.prediction)
            #expect(evaluation.labels[sample.index] == sample.label)
            #expect(evaluation.predictions[sample.index] == sample.prediction)
            #expect(sample.confidence > 0 && sample.confidence <= 1)
        }
        #expect(report.worst.map(\.confidence) == report.worst.map(\.confidence).sorted(by: >))
        // No error outside the list is more confident than the last one listed.
        let last = try #require(report.worst.last).confidence
        let listed = Set(report.worst.map(\.index))
        let moreConfident = (0..<evaluation.count).filter {
            !listed.contains($0) && evaluation.predictions[$0] != evaluation.labels[$0] && evaluation.confidences[$0] > last
        }
        #expect(moreConfident.isEmpty)
    }

    @Test func jsonHasTheDocumentedKeysAndValues() throws {
        let report = try Fixtures.adamReport.get()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any])
        for key in ["accuracy", "loss", "count", "correct", "confusion_matrix", "per_class", "worst"] {
            #expect(object[key] != nil, "missing key \(key)")
        }
        #expect((object["accuracy"] as? NSNumber)?.doubleValue == 0.7517)
        #expect((object["correct"] as? NSNumber)?.intValue == 7517)
        #expect((object["count"] as? NSNumber)?.intValue == 10_000)
        // Foundation's JSON parser on Linux may lose the last bit of a double.
        let loss = try #require((object["loss"] as? NSNumber)?.doubleValue)
        #expect(abs(loss - report.evaluation.loss) < 1e-12)
        let matrix = try #require(object["confusion_matrix"] as? [[Int]])
        #expect(matrix == report.evaluation.confusion)
        let perClass = try #require(object["per_class"] as? [[String: Any]])
        #expect(perClass.count == 10)
        #expect(perClass.compactMap { ($0["support"] as? NSNumber)?.intValue } == Fixtures.testLabelCounts)
        #expect(perClass.compactMap { ($0["class"] as? NSNumber)?.intValue } == Array(0..<10))
        for entry in perClass {
            for key in ["precision", "recall", "f1"] { #expect(entry[key] is NSNumber, "per_class.\(key)") }
        }
        let worst = try #require(object["worst"] as? [[String: Any]])
        #expect(worst.count == 12)
        #expect(worst.first.flatMap { ($0["index"] as? NSNumber)?.intValue } == report.worst.first?.index)
        #expect(worst.allSatisfy { $0["label"] != nil && $0["prediction"] != nil && $0["confidence"] != nil })
    }

    @Test func textReportHasAnAlignedConfusionTable() throws {
        let report = try Fixtures.adamReport.get()
        let table = report.confusionTable()
        #expect(table.count == 11)
        #expect(Set(table.map(\.count)).count == 1, "rows of different widths:\n\(table.joined(separator: "\n"))")
        // The first data row holds the counts of label 0 in order.
        let numbers = table[1].split(separator: " ").compactMap { Int($0) }
        #expect(numbers == [0] + report.evaluation.confusion[0])
        #expect(report.text.contains("Accuracy: 7517/10000 = 75.17%"))
    }

    // MARK: Loading and errors

    @Test func storedConfigIsUsedWithoutConfigFile() throws {
        let reference = try Fixtures.loadedModel("lenet_adam_final.safetensors")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.weightsFile(reference.model, configJSON: reference.config.json).write(to: url)
        let loaded = try LoadedModel.load(checkpoint: url)
        // Compared as resolved JSON: `Layer ==` tells an omitted pool stride from the
        // explicit default that `json` writes back.
        #expect(loaded.config.json == reference.config.json)
        #expect(loaded.configSource.contains("stored"))
        for (a, b) in zip(loaded.model.namedParameters(), reference.model.namedParameters()) {
            #expect(a.name == b.name)
            #expect(a.tensor.scalars == b.tensor.scalars, "\(a.name)")
        }
    }

    @Test func checkpointWithoutStoredConfigNeedsConfigFile() throws {
        let path = Fixtures.reference("lenet_init.safetensors")
        let message = thrownMessage { try LoadedModel.load(checkpoint: path) }
        #expect(message.contains(path.path) && message.contains("mnist_train_config") && message.contains("--config"),
                "\(message)")
    }

    @Test func missingCheckpointIsNamed() throws {
        let path = URL(fileURLWithPath: "/nonexistent/dir/model.safetensors")
        let message = thrownMessage { try EvalReport.run(EvalOptions(checkpoint: path)) }
        #expect(message.contains("/nonexistent/dir/model.safetensors") && message.contains("no such checkpoint"),
                "\(message)")
    }

    /// A checkpoint written for a different architecture (conv1 with 16 filters, the last
    /// layer renamed) evaluated with configs/lenet.json: every bad key and shape is named.
    @Test func mismatchedCheckpointNamesTheBadKeysAndShapes() throws {
        var other = try TrainingConfig.load(from: Fixtures.lenetConfig)
        other.layers[0].kind = Conv2dLayer(outChannels: 16, kernelSize: 5)
        other.layers[9].name = "classifier"
        let model = try ModelBuilder.build(other, seed: 3)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("other.safetensors")
        try Checkpoint.weightsFile(model, configJSON: other.json).write(to: url)

        var options = EvalOptions(checkpoint: url)
        options.configFile = Fixtures.lenetConfig
        options.dataDirectory = Shared.mnistDirectory
        let error = try #require(throws: EvalError.self) { try EvalReport.run(options) }
        let message = error.description
        #expect(message.hasPrefix(url.path))
        #expect(message.contains(Fixtures.lenetConfig.path))
        for expected in ["missing key(s): fc2.weight, fc2.bias", "unexpected key(s): classifier.bias, classifier.weight",
                         "conv1.weight", "[16, 1, 5, 5]", "[20, 1, 5, 5]", "conv2.weight", "[50, 16, 5, 5]"] {
            #expect(message.contains(expected), "\(expected) not in: \(message)")
        }
        #expect(!message.contains("\n"))
        // The same checkpoint with its own stored config loads.
        #expect(try LoadedModel.load(checkpoint: url).model.namedParameters().count == 8)
    }

    @Test func badOptionsAreRejectedWithTheirNames() throws {
        var options = Fixtures.options("lenet_init.safetensors")
        options.batchSize = 0
        #expect(thrownMessage { try EvalReport.run(options) }.contains("--batch-size is 0"))
        #expect(thrownMessage { try EvalOptions.split(named: "validation") }.contains("\"validation\""))
    }

    // MARK: The executable

    /// Runs the built `mnist-eval` (beside the test bundle, or in .build/release or
    /// .build/debug) as a process.
    @Test func executablePrintsJSONAndFailsCleanly() throws {
        guard let executable = ExecutableLocator.find("mnist-eval") else {
            print("skipped executablePrintsJSONAndFailsCleanly: mnist-eval is not built "
                + "(swift build -c release --product mnist-eval)")
            return
        }
        let good = try ExecutableLocator.run(executable, [
            "--checkpoint", Fixtures.reference("lenet_sgd_final.safetensors").path,
            "--config", Fixtures.lenetConfig.path, "--data-dir", Shared.mnistDirectory.path, "--json", "--worst", "3",
        ])
        #expect(good.status == 0, "stderr: \(good.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(good.standardOutput.utf8)) as? [String: Any])
        #expect((object["correct"] as? NSNumber)?.intValue == 4632)
        #expect((object["worst"] as? [Any])?.count == 3)

        let missing = try ExecutableLocator.run(executable, ["--checkpoint", "/nonexistent/model.safetensors"])
        #expect(missing.status != 0)
        #expect(missing.standardOutput.isEmpty)
        let lines = missing.standardError.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(missing.standardError)")
        #expect(missing.standardError.contains("/nonexistent/model.safetensors"))
    }
}

// MARK: - Helpers

/// The description of the error `body` throws; records an issue (and returns "") when it
/// throws none.
func thrownMessage<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) -> String {
    do {
        _ = try body()
        Issue.record("expected an error, but none was thrown", sourceLocation: sourceLocation)
        return ""
    } catch {
        return "\(error)"
    }
}

// MARK: - Running built executables

enum ExecutableLocator {
    /// The executable next to the running test binary (same build configuration), else in
    /// `.build/release` or `.build/debug` of the package.
    static func find(_ name: String) -> URL? {
        var candidates: [URL] = []
        if let testBinary = Bundle.main.executableURL {
            candidates.append(testBinary.deletingLastPathComponent().appendingPathComponent(name))
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name))
        for configuration in ["release", "debug"] {
            candidates.append(Shared.packageRoot.appendingPathComponent(".build/\(configuration)/\(name)"))
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, standardOutput: String, standardError: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Read both pipes while the process runs so neither fills up.
        let errorData = LockedData()
        let reader = Thread { errorData.set(error.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errorData.isSet { Thread.sleep(forTimeInterval: 0.01) }
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self),
                String(decoding: errorData.get(), as: UTF8.self))
    }

    /// Data handed from the reader thread to the test.
    final class LockedData: @unchecked Sendable {
        private let lock = NSLock()
        private var data: Data?
        func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return data != nil }
        func get() -> Data { lock.lock(); defer { lock.unlock() }; return data ?? Data() }
    }
}
