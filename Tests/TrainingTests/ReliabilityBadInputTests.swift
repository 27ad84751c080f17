import Foundation
import MNISTData
import SafeTensors
import Testing
import TestSupport
@testable import Training

// MARK: - Fixtures

/// A run on a tiny synthetic dataset (16 train / 8 test images of 28x28, uncompressed IDX)
/// with a one-layer model, so each test trains in milliseconds.
struct TinyRun {
    let root: URL
    var dataDirectory: URL { root.appendingPathComponent("data") }

    init() throws {
        root = try makeTemporaryDirectory("reliability-run")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        try write(idxImages(count: 16, rows: 28, cols: 28), "train-images-idx3-ubyte")
        try write(idxLabels((0..<16).map { UInt8($0 % 10) }), "train-labels-idx1-ubyte")
        try write(idxImages(count: 8, rows: 28, cols: 28), "t10k-images-idx3-ubyte")
        try write(idxLabels((0..<8).map { UInt8($0 % 10) }), "t10k-labels-idx1-ubyte")
    }

    func write(_ bytes: [UInt8], _ name: String) throws {
        try Data(bytes).write(to: dataDirectory.appendingPathComponent(name))
    }

    func config(epochs: Int = 2, lr: Double = 0.05, hidden: Bool = false, extra: String = "") throws -> TrainingConfig {
        let hiddenLayers = hidden ? #"{"type": "linear", "name": "hidden", "out_features": 16}, {"type": "relu"}, "# : ""
        let json = """
        {"name": "tiny", "data": {"directory": "\(dataDirectory.path)", "download": false, "verify": false},
         "model": {"layers": [{"type": "flatten", "name": "flatten"}, \(hiddenLayers){"type": "linear", "name": "fc", "out_features": 10},
                              {"type": "log_softmax", "name": "out"}]},
         "optimizer": {"type": "sgd", "lr": \(lr), "momentum": 0.9},
         "batch_size": 4, "test_batch_size": 8, "epochs": \(epochs), "seed": 3, "threads": 1, "log_interval": 1\(extra)}
        """
        return try TrainingConfig.decode(Data(json.utf8), file: "tiny.json")
    }

    func options(out: String? = "run", resume: String? = nil, initFrom: URL? = nil, maxSteps: Int? = nil,
                 removeMaxSteps: Bool = false) -> RunOptions {
        var o = RunOptions()
        o.removeMaxSteps = removeMaxSteps
        o.outputDirectory = out.map { root.appendingPathComponent($0) }
        o.resumeDirectory = resume.map { root.appendingPathComponent($0) }
        o.initFrom = initFrom
        o.maxSteps = maxSteps
        o.quiet = true
        return o
    }

    /// Runs and returns the error's description (nil when the run succeeds).
    func failure(_ config: TrainingConfig, _ options: RunOptions) -> String? {
        do { _ = try Trainer(config: config, options: options).run(); return nil } catch { return "\(error)" }
    }
}

func decodeError(_ json: String) -> ConfigError? {
    do { _ = try TrainingConfig.decode(Data(json.utf8), file: "bad.json"); return nil } catch {
        return error as? ConfigError
    }
}

let validConfigBody = #""model": {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]}"#

// MARK: - Config

@Suite("Reliability: bad configs")
struct ReliabilityConfigTests {
    @Test("unknown keys are rejected by their full path", arguments: [
        (#"{"batch_sise": 64, \#(validConfigBody)}"#, "batch_sise"),
        (#"{"optimizer": {"momentun": 0.9}, \#(validConfigBody)}"#, "optimizer.momentun"),
        (#"{"data": {"dir": "x"}, \#(validConfigBody)}"#, "data.dir"),
        (#"{"model": {"layers": [{"type": "linear", "out_features": 10, "out_feature": 10}]}}"#, "model.layers[0].out_feature"),
    ])
    func unknownKeys(json: String, path: String) throws {
        let error = try #require(decodeError(json))
        #expect(error.path == path)
        #expect(error.description.hasPrefix("bad.json: \(path): unknown key"))
    }

    @Test("impossible values name the key and the value", arguments: [
        (#"{"batch_size": 0, \#(validConfigBody)}"#, "batch_size", "0"),
        (#"{"epochs": -3, \#(validConfigBody)}"#, "epochs", "-3"),
        (#"{"threads": 1.5, \#(validConfigBody)}"#, "threads", "1.5"),
        (#"{"optimizer": {"lr": -0.1}, \#(validConfigBody)}"#, "optimizer.lr", "-0.1"),
        (#"{"optimizer": {"type": "adam", "betas": [0.9, 1.5]}, \#(validConfigBody)}"#, "optimizer.betas", "1.5"),
        (#"{"data": {"std": 0}, \#(validConfigBody)}"#, "data.std", "0"),
        (#"{"seed": 1e300, \#(validConfigBody)}"#, "seed", "1e+300"),
        (#"{"model": {"layers": []}}"#, "model.layers", "empty"),
        (#"{"model": {"input_shape": [1, 28], "layers": [{"type": "relu"}]}}"#, "model.input_shape", "an array"),
        (#"{"model": {"layers": [{"type": "conv3d"}]}}"#, "model.layers[0].type", "conv3d"),
    ])
    func impossibleValues(json: String, path: String, value: String) throws {
        let error = try #require(decodeError(json))
        #expect(error.path == path)
        #expect(error.message.contains(value), "\(error)")
    }

    @Test("a kernel larger than its input is rejected before training, naming the layer")
    func kernelLargerThanInput() throws {
        let config = try TrainingConfig.decode(Data(#"{"model": {"layers": [{"type": "conv2d", "name": "c1", "out_channels": 2, "kernel_size": 40}, {"type": "flatten"}]}}"#.utf8), file: "k.json")
        #expect(throws: ModelBuilder.BuildError.self) { try ModelBuilder.build(config, seed: 1) }
        do { _ = try ModelBuilder.build(config, seed: 1) } catch {
            #expect("\(error)".hasPrefix("model.layers[0] (c1, conv2d)"), "\(error)")
        }
    }

    @Test("not JSON, and not an object, each name the file")
    func notJSON() throws {
        #expect(decodeError("{\"epochs\": ")?.description.hasPrefix("bad.json: not valid JSON") == true)
        #expect(decodeError("[1, 2]")?.description == "bad.json: expected a JSON object at the top level")
    }
}

// MARK: - Data and directories

@Suite("Reliability: bad data, directories and weights")
struct ReliabilityRunInputTests {
    @Test("a missing data directory names the directory")
    func missingDataDirectory() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        try FileManager.default.removeItem(at: run.dataDirectory)
        let message = try #require(run.failure(try run.config(), run.options()))
        #expect(message.contains(run.dataDirectory.path), "\(message)")
        #expect(message.contains("train-images-idx3-ubyte"), "\(message)")
    }

    @Test("an output directory that cannot be created names it")
    func unwritableOutput() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        // A regular file where a directory is needed: fails even for root, unlike chmod.
        try Data("x".utf8).write(to: run.root.appendingPathComponent("blocker"))
        let message = try #require(run.failure(try run.config(), run.options(out: "blocker/run")))
        #expect(message.contains(run.root.appendingPathComponent("blocker/run").path), "\(message)")
        #expect(message.hasPrefix("--out \(run.root.appendingPathComponent("blocker/run").path): cannot create the directory: "
            + "\(run.root.appendingPathComponent("blocker").path) is a file, not a directory (ENOTDIR)"), "\(message)")
    }

    @Test("bad data files: each message names the file and the defect", arguments: [
        "truncated", "wrong magic", "count mismatch", "label out of range", "corrupt gzip", "trailing bytes",
    ])
    func badDataFile(defect: String) throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let images = run.dataDirectory.appendingPathComponent("train-images-idx3-ubyte")
        let labels = run.dataDirectory.appendingPathComponent("train-labels-idx1-ubyte")
        let target: URL, expected: String
        switch defect {
        case "truncated":
            try run.write(Array(idxImages(count: 16, rows: 28, cols: 28).prefix(5000)), images.lastPathComponent)
            (target, expected) = (images, "payload too short: 4984 bytes, the header's dimensions need 12544")
        case "wrong magic":
            try run.write(idxLabels(Array(repeating: 1, count: 16)), images.lastPathComponent)
            (target, expected) = (images, "wrong IDX magic number 0x00000801, expected 0x00000803")
        case "count mismatch":
            try run.write(idxLabels(Array(repeating: 1, count: 15)), labels.lastPathComponent)
            (target, expected) = (labels, "has 16 images but")
        case "label out of range":
            try run.write(idxLabels((0..<16).map { $0 == 7 ? 10 : 1 }), labels.lastPathComponent)
            (target, expected) = (labels, "label 10 at index 7 is outside 0..<10")
        case "corrupt gzip":
            try FileManager.default.removeItem(at: labels)
            var gz = try gzipped(idxLabels(Array(repeating: 1, count: 16)), in: run.root)
            gz[gz.count - 6] ^= 0xff  // in the CRC-32 trailer
            try run.write(gz, labels.lastPathComponent + ".gz")
            (target, expected) = (labels.appendingPathExtension("gz"), "gzip checksum mismatch")
        default:
            try run.write(idxLabels(Array(repeating: 1, count: 16)) + [0, 0], labels.lastPathComponent)
            (target, expected) = (labels, "payload too long: 2 extra bytes")
        }
        let message = try #require(run.failure(try run.config(), run.options()))
        #expect(message.contains(target.path), "\(message)")
        #expect(message.contains(expected), "\(message)")
    }

    @Test("--init-from with wrong shapes or names names the file and the tensors")
    func initFromWrongWeights() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let wrongShape = run.root.appendingPathComponent("wrong-shape.safetensors")
        try SafeTensorsFile(tensors: [
            "fc.weight": try TensorEntry(floats: Array(repeating: 0, count: 7840), shape: [784, 10]),
            "fc.bias": try TensorEntry(floats: Array(repeating: 0, count: 10), shape: [10]),
        ]).write(to: wrongShape)
        let shapeMessage = try #require(run.failure(try run.config(), run.options(initFrom: wrongShape)))
        #expect(shapeMessage.hasPrefix(wrongShape.path), "\(shapeMessage)")
        #expect(shapeMessage.contains("size mismatch for fc.weight: copying a param with shape [784, 10], the shape in the current model is [10, 784]"), "\(shapeMessage)")

        let wrongNames = run.root.appendingPathComponent("wrong-names.safetensors")
        try SafeTensorsFile(tensors: [
            "linear.weight": try TensorEntry(floats: Array(repeating: 0, count: 7840), shape: [10, 784]),
            "fc.bias": try TensorEntry(floats: Array(repeating: 0, count: 10), shape: [10]),
        ]).write(to: wrongNames)
        let nameMessage = try #require(run.failure(try run.config(), run.options(out: "run2", initFrom: wrongNames)))
        #expect(nameMessage.hasPrefix(wrongNames.path), "\(nameMessage)")
        #expect(nameMessage.contains("missing key(s): fc.weight") && nameMessage.contains("unexpected key(s): linear.weight"), "\(nameMessage)")
    }

    @Test("--init-from a file that is not safetensors names the file")
    func initFromGarbage() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let garbage = run.root.appendingPathComponent("garbage.safetensors")
        try Data("not a safetensors file at all".utf8).write(to: garbage)
        let message = try #require(run.failure(try run.config(), run.options(initFrom: garbage)))
        #expect(message.contains(garbage.path), "\(message)")
    }
}

// MARK: - Resume and checkpoints

@Suite("Reliability: checkpoints and resume")
struct ReliabilityResumeTests {
    @Test("stopped at any step and resumed: bit-identical weights", arguments: [1, 3, 4, 6])
    func resumeIsExact(stopAfter: Int) throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let config = try run.config(extra: #", "checkpoint": {"every_steps": 1}"#)
        _ = try Trainer(config: config, options: run.options(out: "whole")).run()
        _ = try Trainer(config: config, options: run.options(out: "parts", maxSteps: stopAfter)).run()
        _ = try Trainer(config: config, options: run.options(out: nil, resume: "parts", removeMaxSteps: true)).run()
        let whole = try Data(contentsOf: run.root.appendingPathComponent("whole/model.safetensors"))
        let parts = try Data(contentsOf: run.root.appendingPathComponent("parts/model.safetensors"))
        #expect(whole == parts)
    }

    @Test("resume without the original config keeps the run's own epoch count")
    func resumeKeepsSavedEpochs() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(epochs: 3), options: run.options(out: "run", maxSteps: 2)).run()
        // mnist-train --resume DIR passes TrainingConfig() (epochs 1); the saved config wins.
        let trainer = try Trainer(config: TrainingConfig(), options: run.options(out: nil, resume: "run"))
        #expect(trainer.config.epochs == 3)
        var extended = run.options(out: nil, resume: "run")
        extended.epochs = 5
        #expect(try Trainer(config: TrainingConfig(), options: extended).config.epochs == 5)
    }

    @Test("a truncated checkpoint is refused on resume, naming the file")
    func truncatedCheckpoint() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(), options: run.options(out: "run", maxSteps: 2)).run()
        let state = run.root.appendingPathComponent("run/checkpoint.safetensors")
        let bytes = try Data(contentsOf: state)
        try bytes.prefix(bytes.count / 2).write(to: state)
        let message = try #require(run.failure(try run.config(), run.options(out: nil, resume: "run")))
        #expect(message.contains(state.path), "\(message)")
    }

    @Test("a run directory without config.json is refused by --resume, naming it")
    func resumeNotARun() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let message = try #require(run.failure(try run.config(), run.options(out: nil, resume: "data")))
        #expect(message.hasPrefix("\(run.dataDirectory.path): not a run directory"), "\(message)")
    }

    @Test("a non-finite loss stops at its step, names the learning rate, keeps the checkpoint")
    func nonFiniteLoss() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        // The smoke LeNet on the first 512 real MNIST images, as scripts/reliability/nan_test.sh:
        // --lr 10 alone stays finite (dead ReLUs), std 1e-6 makes the first updates overflow.
        var config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/smoke.json"))
        config.data.directory = Shared.mnistDirectory.path
        config.data.download = false
        config.data.std = 1e-6
        config.optimizer.lr = 10
        config.checkpointEverySteps = 1
        config.threads = 1
        var failure: TrainingError?
        do { _ = try Trainer(config: config, options: run.options()).run() } catch let error as TrainingError { failure = error }
        let error = try #require(failure)
        guard case let .nonFiniteLoss(step, _, _, learningRate, _) = error else { Issue.record("got \(error)"); return }
        #expect(learningRate == 10)
        #expect(error.exitCode == 3)
        #expect(error.description.contains("at step \(step)") && error.description.contains("learning rate 10"))
        if step > 1 {
            let state = try SafeTensorsFile.read(from: run.root.appendingPathComponent("run/checkpoint.safetensors"))
            #expect(state.metadata["step"] == "\(step - 1)", "the kept checkpoint is the last good step")
        }
    }
}
