import Foundation
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// The trainer end to end on real MNIST: files, resume exactness, and PyTorch's numbers.
struct TrainerTests {
    static func smokeConfig() throws -> TrainingConfig {
        var config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/smoke.json"))
        config.data.directory = Shared.mnistDirectory.path
        config.data.download = false
        return config
    }

    static func run(_ config: TrainingConfig, out: URL, maxSteps: Int? = nil, resume: Bool = false,
                    initFrom: URL? = nil, removeMaxSteps: Bool = false) throws -> RunSummary {
        var options = RunOptions()
        options.removeMaxSteps = removeMaxSteps
        options.quiet = true
        options.maxSteps = maxSteps
        options.initFrom = initFrom
        if resume { options.resumeDirectory = out } else { options.outputDirectory = out }
        return try Trainer(config: config, options: options).run()
    }

    static func weights(_ url: URL) throws -> [String: [Float]] {
        try SafeTensorsFile.read(from: url).tensors.mapValues { try $0.floats() }
    }

    @Test func smokeRunWritesEveryFile() throws {
        let out = try makeTemporaryDirectory()
        let summary = try Self.run(Self.smokeConfig(), out: out)
        #expect(summary.epochsCompleted == 2 && summary.steps == 16)
        #expect(summary.testAccuracy > 0.3, "smoke accuracy \(summary.testAccuracy)")
        for file in ["config.json", "metrics.jsonl", "model.safetensors", "best.safetensors", "checkpoint.safetensors", "curves.png"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file) missing")
        }
        let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(records.filter { $0["kind"] as? String == "step" }.count == 4)  // log_interval 4, 8 steps an epoch
        let epochs = records.filter { $0["kind"] as? String == "epoch" }
        #expect(epochs.count == 2)
        for key in ["train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"] {
            #expect(epochs.allSatisfy { $0[key] is NSNumber }, "epoch record lacks \(key)")
        }
        let model = try SafeTensorsFile.read(from: out.appendingPathComponent("model.safetensors"))
        #expect(Set(model.tensors.keys) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        let stored = try TrainingConfig.decode(Data(try #require(model.metadata["mnist_train_config"]).utf8), file: "metadata")
        #expect(stored == (try Self.smokeConfig()))
        // A second run into the same directory is refused rather than overwriting it.
        let error = try #require(throws: TrainingError.self) { try Self.run(Self.smokeConfig(), out: out) }
        #expect("\(error)".contains("already holds a run; continue it with --resume"))
    }

    @Test func sameSeedGivesBitIdenticalWeights() throws {
        let a = try makeTemporaryDirectory(), b = try makeTemporaryDirectory()
        _ = try Self.run(Self.smokeConfig(), out: a, maxSteps: 5)
        _ = try Self.run(Self.smokeConfig(), out: b, maxSteps: 5)
        #expect(try Self.weights(a.appendingPathComponent("model.safetensors")) == Self.weights(b.appendingPathComponent("model.safetensors")))
    }

    @Test func resumedRunEndsBitIdenticalToUninterruptedRun() throws {
        var config = try Self.smokeConfig()
        config.data.augmentShift = 2  // the random augmentation must resume exactly too
        config.layers.insert(TrainingConfig.Layer(DropoutLayer(p: 0.2), name: "drop"), at: 8)
        let whole = try makeTemporaryDirectory(), parts = try makeTemporaryDirectory()
        let full = try Self.run(config, out: whole)
        _ = try Self.run(config, out: parts, maxSteps: 3)     // stop mid-epoch 1
        _ = try Self.run(config, out: parts, maxSteps: 11, resume: true)  // stop mid-epoch 2
        let resumed = try Self.run(config, out: parts, resume: true, removeMaxSteps: true)
        #expect(resumed.steps == full.steps)
        let expected = try Self.weights(whole.appendingPathComponent("model.safetensors"))
        #expect(try Self.weights(parts.appendingPathComponent("model.safetensors")) == expected)
        #expect(resumed.testAccuracy == full.testAccuracy)
        // The metrics of the resumed run hold each step once.
        let steps = try String(contentsOf: parts.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "epoch" }.map { $0["epoch"] as? Int }
        #expect(steps == [1, 2])
    }

    /// `--init-from lenet_init --max-steps 10 --no-shuffle --log-interval 1` reproduces
    /// PyTorch's losses, final weights and test accuracy (lenet_e2e.json).
    @Test(arguments: ["sgd", "adam"])
    func reproducesPyTorchReferenceRun(_ optimizer: String) throws {
        struct Reference: Decodable {
            struct Run: Decodable { var losses: [Double]; var final_test_acc: Double }
            var sgd: Run
            var adam: Run
        }
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: Shared.referenceDirectory.appendingPathComponent("lenet_e2e.json")))
        var config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/lenet.json"))
        config.data.directory = Shared.mnistDirectory.path
        config.data.download = false
        config.shuffle = false
        config.logInterval = 1
        config.optimizer = optimizer == "sgd"
            ? .init(type: "sgd", lr: 0.01, momentum: 0.9) : .init(type: "adam", lr: 0.001)
        let out = try makeTemporaryDirectory()
        let summary = try Self.run(config, out: out, maxSteps: 10,
                                   initFrom: Shared.referenceDirectory.appendingPathComponent("lenet_init.safetensors"))
        let losses = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "step" }.compactMap { ($0["loss"] as? NSNumber)?.doubleValue }
        let run = optimizer == "sgd" ? reference.sgd : reference.adam
        if let message = compareClose(losses, run.losses, rtol: 0, atol: 1e-3, label: "\(optimizer) losses") {
            Issue.record(Comment(rawValue: message))
        }
        #expect(abs(summary.testAccuracy - run.final_test_acc) <= 0.0005,
                "test accuracy \(summary.testAccuracy), PyTorch \(run.final_test_acc)")
        let final = try Self.weights(Shared.referenceDirectory.appendingPathComponent("lenet_\(optimizer)_final.safetensors"))
        let ours = try Self.weights(out.appendingPathComponent("model.safetensors"))
        for (name, expected) in final {
            if let message = compareClose(try #require(ours[name]), expected.map(Double.init), rtol: 0, atol: 1e-4, label: name) {
                Issue.record(Comment(rawValue: message))
            }
        }
    }

    @Test func nonFiniteLossStopsWithTheStepAndKeepsTheLastCheckpoint() throws {
        var config = try Self.smokeConfig()
        config.optimizer.lr = 1000
        config.checkpointEverySteps = 1
        let out = try makeTemporaryDirectory()
        let error = try #require(throws: TrainingError.self) { try Self.run(config, out: out) }
        guard case let .nonFiniteLoss(step, _, _, lr, checkpoint) = error else { Issue.record("got \(error)"); return }
        #expect(step > 1 && lr == 1000)
        #expect("\(error)".contains("at step \(step)") && "\(error)".contains("learning rate 1000.0 is likely too high"))
        #expect(checkpoint == out.appendingPathComponent("checkpoint.safetensors").path)
        #expect(error.exitCode == 3)
        // The checkpoint of the last good step is there and loads.
        let state = try SafeTensorsFile.read(from: out.appendingPathComponent("checkpoint.safetensors"))
        #expect(state.metadata["step"] == "\(step - 1)")
        #expect(try state.tensors.values.allSatisfy { try $0.floats().allSatisfy(\.isFinite) })
    }

    @Test func imagesThatDoNotFitTheModelAreAClearError() throws {
        var config = try Self.smokeConfig()
        config.inputShape = [1, 32, 32]
        let error = try #require(throws: TrainingError.self) { try Self.run(config, out: makeTemporaryDirectory()) }
        #expect("\(error)" == "\(Shared.mnistDirectory.path): images are 1x28x28 (test 1x28x28) but model.input_shape is [1, 32, 32]")
    }

    @Test func resumeOfSomethingElseIsAClearError() throws {
        let empty = try makeTemporaryDirectory()
        let error = try #require(throws: TrainingError.self) { try Self.run(Self.smokeConfig(), out: empty, resume: true) }
        #expect("\(error)" == "\(empty.path): not a run directory (no config.json); --resume takes the directory of an earlier run")
    }
}
