import Foundation
import MNISTData
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// Issue 12: scripted, parallel and interrupted use never loses or mixes a run. Each test
/// is one of the defects that were seen, made impossible or refused with one line.
@Suite("Run safety")
struct RunSafetyTests {
    static func files(_ directory: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            result[name] = try Data(contentsOf: directory.appendingPathComponent(name))
        }
        return result
    }

    static func records(_ run: URL) throws -> [[String: Any]] {
        try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    // MARK: A run directory belongs to one process

    @Test("default run directories are unique, also for runs started in the same millisecond")
    func uniqueDefaultNames() throws {
        let parent = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: parent) }
        let date = Date(timeIntervalSince1970: 1_800_000_000.123)
        // Eight threads at once, the same name and the same timestamp.
        let made = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            if let directory = try? RunDirectory.createUnique(in: parent, name: "lenet", date: date) {
                made.withValue { $0.append(directory.url.lastPathComponent) }
            }
        }
        let names = made.withValue { $0 }.sorted()
        #expect(names.count == 8 && Set(names).count == 8, "\(names)")
        #expect(names.filter { $0.hasSuffix(".123") }.count == 1 && names.contains { $0.hasSuffix(".123-8") }, "\(names)")
    }

    @Test("two runs without --out started together both finish, each in its own directory")
    func parallelDefaultRuns() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        var shared = try run.config()
        shared.outputDirectory = run.root.appendingPathComponent("runs").path
        let config = shared
        let summaries = Locked<[RunSummary]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            var options = RunOptions()
            options.quiet = true
            if let summary = try? Trainer(config: config, options: options).run() { summaries.withValue { $0.append(summary) } }
        }
        let directories = summaries.withValue { $0.map(\.runDirectory) }
        #expect(directories.count == 2 && Set(directories).count == 2, "\(directories)")
        for directory in directories {
            #expect(FileManager.default.fileExists(atPath: directory + "/model.safetensors"))
        }
    }

    @Test("a locked run directory is refused to a second opener, with the holder's PID")
    func lockRefusesSecondProcess() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(), options: run.options(out: "run", maxSteps: 2)).run()
        let url = run.root.appendingPathComponent("run")
        var holder: RunDirectory? = try RunDirectory.openForResume(url)
        #expect(holder != nil)
        let message = try #require(run.failure(try run.config(), run.options(out: nil, resume: "run")))
        #expect(message.hasPrefix("--resume \(url.path): in use by another mnist-train process (pid \(getpid()), started "),
                "\(message)")
        #expect(message.hasSuffix("; wait for it to end or choose another directory"))
        let other = try #require(throws: TrainingError.self) { try RunDirectory.openForNewRun(url) }
        #expect("\(other)".contains("in use by another mnist-train process (pid \(getpid())"))
        holder = nil  // released: the run can be resumed now
        #expect(run.failure(try run.config(), run.options(out: nil, resume: "run", removeMaxSteps: true)) == nil)
    }

    @Test("--out on a directory holding other files is refused, naming them, and nothing in it changes")
    func outOnForeignDirectory() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let out = run.root.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("notes".utf8).write(to: out.appendingPathComponent("notes.txt"))
        try Data("weights".utf8).write(to: out.appendingPathComponent("model.safetensors"))
        let before = try Self.files(out)
        let message = try #require(run.failure(try run.config(), run.options(out: "mine")))
        #expect(message == "--out \(out.path): the directory is not empty (model.safetensors, notes.txt) and holds no run "
            + "of mnist-train; choose a new or empty directory")
        var after = try Self.files(out)
        after[RunDirectory.lockFile] = nil
        #expect(after == before)
    }

    @Test("--out on an earlier run is refused with the resume command; --out \"\" and --out on a file are refused")
    func outOnRunOrNothing() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(), options: run.options(out: "run", maxSteps: 1)).run()
        let url = run.root.appendingPathComponent("run")
        let before = try Self.files(url)
        let message = try #require(run.failure(try run.config(), run.options(out: "run")))
        #expect(message == "--out \(url.path): already holds a run; continue it with --resume \(url.path) or choose another --out")
        #expect(try Self.files(url) == before)
        var arguments = TrainArguments()
        arguments.out = ""
        arguments.config = "configs/smoke.json"
        #expect(throws: ConfigError(file: "command line", path: "--out", message: "the path is empty; give a directory for the run")) {
            try arguments.makeTrainer()
        }
        try Data().write(to: run.root.appendingPathComponent("plainfile"))
        let onFile = try #require(run.failure(try run.config(), run.options(out: "plainfile")))
        #expect(onFile.hasSuffix("plainfile: exists and is not a directory; give a directory for the run"), "\(onFile)")
    }

    // MARK: Everything that shapes a run is saved in it

    @Test("--max-steps is saved: the resume command stops where the run was told to")
    func maxStepsIsSaved() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let first = try Trainer(config: try run.config(epochs: 3), options: run.options(out: "run", maxSteps: 3)).run()
        #expect(first.steps == 3 && first.stopReason == "max_steps")
        let url = run.root.appendingPathComponent("run")
        let saved = try TrainingConfig.load(from: url.appendingPathComponent("config.json"))
        #expect(saved.maxSteps == 3)
        let state = try SafeTensorsFile.read(from: url.appendingPathComponent("checkpoint.safetensors"))
        let inCheckpoint = try TrainingConfig.decode(Data(try #require(state.metadata["mnist_train_config"]).utf8), file: "metadata")
        #expect(inCheckpoint.maxSteps == 3)
        // `mnist-train --resume DIR`, as the hint says: nothing left to do, nothing rewritten.
        let before = try Self.files(url)
        let again = try Trainer(config: TrainingConfig(), options: run.options(out: nil, resume: "run")).run()
        #expect(again.steps == 3 && again.stopReason == "already_complete")
        #expect(try Self.files(url).filter { $0.key != RunDirectory.lockFile } == before.filter { $0.key != RunDirectory.lockFile })
        // Raised on resume, and saved again.
        let raised = try Trainer(config: TrainingConfig(), options: run.options(out: nil, resume: "run", maxSteps: 6)).run()
        #expect(raised.steps == 6)
        #expect(try TrainingConfig.load(from: url.appendingPathComponent("config.json")).maxSteps == 6)
        // Lowered below what was done: refused.
        var arguments = TrainArguments()
        arguments.resume = url.path
        arguments.maxSteps = 4
        arguments.quiet = true
        let lowered = try #require(throws: ConfigError.self) { try arguments.makeTrainer().run() }
        #expect(lowered.description == "command line: --max-steps: got 4; the run in \(url.path) has already taken 6 steps; "
            + "give at least 6, or --no-max-steps to train all its epochs")
        // Dropped: trains all 3 epochs (12 steps of 4 batches).
        let whole = try Trainer(config: TrainingConfig(), options: run.options(out: nil, resume: "run", removeMaxSteps: true)).run()
        #expect(whole.steps == 12 && whole.epochsCompleted == 3 && whole.stopReason == "completed")
        #expect(try TrainingConfig.load(from: url.appendingPathComponent("config.json")).maxSteps == nil)
    }

    @Test("--resume --epochs N is saved, so a second resume keeps the extension")
    func epochExtensionIsSaved() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(epochs: 1), options: run.options(out: "run")).run()
        var extended = run.options(out: nil, resume: "run")
        extended.epochs = 3
        extended.maxSteps = 6  // stop inside the extension
        #expect(try Trainer(config: TrainingConfig(), options: extended).run().steps == 6)
        let url = run.root.appendingPathComponent("run")
        #expect(try TrainingConfig.load(from: url.appendingPathComponent("config.json")).epochs == 3)
        let finished = try Trainer(config: TrainingConfig(), options: run.options(out: nil, resume: "run", removeMaxSteps: true)).run()
        #expect(finished.epochsCompleted == 3 && finished.steps == 12)
    }

    @Test("a resume that fails (data moved to a wrong --data-dir) saves none of its changes")
    func failedResumeSavesNothing() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(), options: run.options(out: "run", maxSteps: 2)).run()
        let url = run.root.appendingPathComponent("run")
        let before = try Self.files(url).filter { $0.key != RunDirectory.lockFile }
        var options = run.options(out: nil, resume: "run", removeMaxSteps: true)
        options.dataDirectory = run.root.appendingPathComponent("nowhere").path
        options.epochs = 5
        let message = try #require(run.failure(TrainingConfig(), options))
        #expect(message.contains("nowhere"), "\(message)")
        #expect(try Self.files(url).filter { $0.key != RunDirectory.lockFile } == before)
    }

    @Test("a finished run resumed with fewer epochs is refused and not rewritten")
    func fewerEpochsRefused() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(epochs: 2), options: run.options(out: "run")).run()
        let url = run.root.appendingPathComponent("run")
        let before = try Self.files(url)
        var fewer = run.options(out: nil, resume: "run")
        fewer.epochs = 1
        let message = try #require(run.failure(TrainingConfig(), fewer))
        #expect(message == "command line: --epochs: got 1; the run in \(url.path) has already trained 2 epoch(s), and a resumed "
            + "run is only extended, never rewritten; give at least 2 or leave --epochs out")
        #expect(try Self.files(url).filter { $0.key != RunDirectory.lockFile } == before.filter { $0.key != RunDirectory.lockFile })
    }

    @Test("options that cannot apply to a resumed run are refused, each by name", arguments: [
        "--config", "--out", "--init-from", "--no-shuffle", "--batch-size", "--lr", "--momentum", "--optimizer", "--seed", "--threads",
    ])
    func resumeRefusesFixedOptions(option: String) throws {
        var arguments = TrainArguments()
        arguments.resume = "runs/x"
        switch option {
        case "--config": arguments.config = "configs/lenet.json"
        case "--out": arguments.out = "elsewhere"
        case "--init-from": arguments.initFrom = "w.safetensors"
        case "--no-shuffle": arguments.noShuffle = true
        case "--batch-size": arguments.batchSize = 32
        case "--lr": arguments.lr = 0.1
        case "--momentum": arguments.momentum = 0.5
        case "--optimizer": arguments.optimizer = "adam"
        case "--seed": arguments.seed = 2
        default: arguments.threads = 1
        }
        let error = try #require(throws: ConfigError.self) { try arguments.makeTrainer() }
        #expect(error.path == option)
        #expect(error.message.hasPrefix("cannot be used with --resume: the run continues with its saved config.json"))
    }

    @Test("negative and zero numbers name the option and the allowed range")
    func negativeNumbers() throws {
        var arguments = TrainArguments()
        arguments.config = Shared.packageRoot.appendingPathComponent("configs/smoke.json").path
        arguments.maxSteps = -1
        #expect(throws: ConfigError(file: "command line", path: "--max-steps", message: "got -1; expected at least 1")) {
            try arguments.makeTrainer()
        }
        arguments.maxSteps = nil
        arguments.lr = -1
        #expect(throws: ConfigError(file: "command line", path: "--lr", message: "got -1.0; expected a learning rate in 0...10000")) {
            try arguments.makeTrainer()
        }
        arguments.lr = nil
        arguments.epochs = 0
        #expect(throws: ConfigError(file: "command line", path: "--epochs", message: "got 0; expected 1...10000")) {
            try arguments.makeTrainer()
        }
    }

    // MARK: Every stop leaves a complete record

    @Test("a run stopped by max_steps mid-epoch: final evaluation in metrics, best weights, curves, throughput")
    func maxStepsStopIsComplete() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let summary = try Trainer(config: try run.config(epochs: 2), options: run.options(out: "run", maxSteps: 3)).run()
        let url = run.root.appendingPathComponent("run")
        let last = try #require(try Self.records(url).last)
        #expect(last["kind"] as? String == "stop" && last["reason"] as? String == "max_steps" && last["step"] as? Int == 3)
        #expect((last["test_accuracy"] as? NSNumber)?.doubleValue == summary.testAccuracy)
        #expect((last["epoch_fraction"] as? NSNumber)?.doubleValue == 0.75)
        let best = try SafeTensorsFile.read(from: url.appendingPathComponent("best.safetensors"))
        #expect(best.metadata["test_accuracy"] == "\(summary.bestTestAccuracy)" && best.metadata["step"] == "3")
        // The best file holds the weights that scored it.
        let report = try EvalReport.run(EvalOptions(checkpoint: url.appendingPathComponent("best.safetensors")))
        #expect(report.evaluation.accuracy == summary.bestTestAccuracy)
        #expect(FileManager.default.fileExists(atPath: url.appendingPathComponent("curves.png").path))
        #expect(summary.samplesPerSecond > 0)
    }

    @Test("a one-epoch run draws its curves; best.safetensors matches the summary's best")
    func oneEpochRunIsComplete() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let summary = try Trainer(config: try run.config(epochs: 1), options: run.options(out: "run")).run()
        let url = run.root.appendingPathComponent("run")
        #expect(FileManager.default.fileExists(atPath: url.appendingPathComponent("curves.png").path))
        let best = try SafeTensorsFile.read(from: url.appendingPathComponent("best.safetensors"))
        #expect(best.metadata["test_accuracy"] == "\(summary.bestTestAccuracy)")
        #expect(try Self.records(url).last?["kind"] as? String == "epoch")
        #expect(summary.samplesPerSecond > 0 && summary.stopReason == "completed")
    }

    // MARK: Checked before training

    @Test("a model that cannot fit in memory is refused with the estimate, before anything is written")
    func memoryIsCheckedFirst() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        var config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/smoke.json"))
        config.layers[0].kind = Conv2dLayer(outChannels: 65_536, kernelSize: 5)
        config.data.directory = run.dataDirectory.path
        var options = run.options(out: "big")
        options.memoryLimit = MemoryLimit(bytes: 24 << 30, source: "physical memory")
        let message = try #require(run.failure(config, options))
        #expect(message.hasPrefix("the run needs about "), "\(message)")
        #expect(message.contains("more than the 25.8 GB this process may use (physical memory); lower batch_size (64) or the size "
            + "of model.layers[0] (conv1, conv2d), whose output [65536, 24, 24] is 37748736 values per sample"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: run.root.appendingPathComponent("big").path))
        // The same check with the tiny model: it fits in 1 GB but not in 1 MB.
        options.memoryLimit = MemoryLimit(bytes: 1 << 30, source: "test")
        #expect(run.failure(try run.config(), options) == nil)
        options.outputDirectory = run.root.appendingPathComponent("small")
        options.memoryLimit = MemoryLimit(bytes: 1 << 20, source: "RLIMIT_AS (ulimit -v)")
        #expect(run.failure(try run.config(), options)?.contains("this process may use (RLIMIT_AS (ulimit -v))") == true)
    }

    @Test("the memory estimate of LeNet covers its measured peak without being absurd")
    func lenetEstimate() throws {
        let config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/lenet.json"))
        let estimate = MemoryEstimate(config: config, plan: try ModelBuilder.plan(config))
        // Peak resident memory of `mnist-train --config configs/lenet.json --max-steps 300`
        // (`/usr/bin/time -f %M`): 130,500 KB; the estimate must cover it, within a factor of 4.
        #expect(estimate.total > 130_500 * 1024 && estimate.total < 4 * 130_500 * 1024, "\(estimate.summary)")
        // Parameters: 431,080 floats x (weight, gradient, momentum, two checkpoint copies).
        #expect(estimate.parameters == 431_080 * 4 * 5)
    }

    @Test("a softmax output and too few outputs are refused when the config is checked")
    func modelChecks() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        var softmax = try run.config()
        softmax.layers[softmax.layers.count - 1].kind = SoftmaxLayer()
        let message = try #require(run.failure(softmax, run.options(out: "a")))
        #expect(message.hasPrefix("model.layers[2] (out, softmax): a network ending in softmax is trained with cross-entropy"))
        var five = try run.config()
        five.layers[1].kind = LinearLayer(outFeatures: 5)
        #expect(run.failure(five, run.options(out: "b")) == "model.layers[2] (out, log_softmax): the network has 5 outputs but "
            + "mnist has 10 classes; the last linear layer needs out_features 10")
        #expect(!FileManager.default.fileExists(atPath: run.root.appendingPathComponent("a").path))
    }

    @Test("data files whose MD5 is not the published one are refused unless allowed, and the choice is saved")
    func unverifiedData() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        var config = try run.config()
        config.data.verify = true
        let message = try #require(run.failure(config, run.options(out: "run")))
        #expect(message.hasPrefix("\(run.dataDirectory.path)/"), "\(message)")
        #expect(message.contains(" is not a published mnist file (expected "))
        #expect(message.hasSuffix("; pass --allow-unverified-data (data.verify: false) to train on these files anyway"))
        var options = run.options(out: "run")
        options.allowUnverifiedData = true
        #expect(run.failure(config, options) == nil)
        #expect(try TrainingConfig.load(from: run.root.appendingPathComponent("run/config.json")).data.verify == false)
        // The real files pass.
        #expect(try DatasetChecksums.verify(directory: Shared.mnistDirectory, dataset: "mnist") == .verified)
        #expect(try DatasetChecksums.verify(directory: Shared.mnistDirectory, dataset: "kmnist") == .unknownDataset)
    }

    @Test("a new run that fails before its first checkpoint leaves no directory behind")
    func failedRunLeavesNothing() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        try run.write(Array(idxLabels([1, 2, 3]).prefix(6)), "t10k-labels-idx1-ubyte")  // truncated
        #expect(run.failure(try run.config(), run.options(out: "new")) != nil)
        #expect(!FileManager.default.fileExists(atPath: run.root.appendingPathComponent("new").path))
        // An empty directory the user made stays, empty.
        let mine = run.root.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        #expect(run.failure(try run.config(), run.options(out: "mine")) != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: mine.path).filter { $0 != RunDirectory.lockFile } == [])
    }

    // MARK: File-system errors in one line

    @Test("a directory given as a file, and a file in the way of a directory, are named with the system's reason")
    func fileSystemErrors() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let configError = try #require(throws: ConfigError.self) { try TrainingConfig.load(from: run.root) }
        #expect(configError.description == "\(run.root.path): cannot read the config: is a directory (EISDIR); expected a file")
        let missing = try #require(throws: ConfigError.self) { try TrainingConfig.load(from: run.root.appendingPathComponent("no.json")) }
        #expect(missing.description.hasSuffix("no.json: cannot read the config: No such file or directory (ENOENT)"))
        let checkpoint = try #require(throws: SafeTensorsError.self) { try SafeTensorsFile.read(from: run.root) }
        #expect("\(checkpoint)" == "\(run.root.path): cannot read safetensors file: is a directory (EISDIR); expected a .safetensors file")
        // mnist-eval --save-images under a regular file.
        _ = try Trainer(config: try run.config(epochs: 1), options: run.options(out: "run")).run()
        try Data().write(to: run.root.appendingPathComponent("file"))
        var options = EvalOptions(checkpoint: run.root.appendingPathComponent("run/model.safetensors"))
        options.imagesDirectory = run.root.appendingPathComponent("file/images")
        let images = try #require(throws: TrainingError.self) { try EvalReport.run(options) }
        #expect("\(images)" == "--save-images \(run.root.path)/file/images: cannot create the directory: \(run.root.path)/file "
            + "is a file, not a directory (ENOTDIR)")
    }

    @Test("weights holding NaN are refused by evaluation and --init-from, naming the tensor")
    func nonFiniteWeights() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try run.config(epochs: 1), options: run.options(out: "run")).run()
        let model = run.root.appendingPathComponent("run/model.safetensors")
        var file = try SafeTensorsFile.read(from: model)
        var values = try file.tensors["fc.bias"]!.floats()
        values[3] = .nan
        file.tensors["fc.bias"] = try TensorEntry(floats: values, shape: [10])
        let broken = run.root.appendingPathComponent("nan.safetensors")
        try file.write(to: broken)
        let message = "\(broken.path): tensor \"fc.bias\" holds 1 non-finite value(s) (NaN or infinity) of 10; "
            + "these weights cannot be evaluated or trained"
        #expect(throws: Never.self) { try EvalReport.run(EvalOptions(checkpoint: model)) }
        let evalError = try #require(throws: TrainingError.self) { try EvalReport.run(EvalOptions(checkpoint: broken)) }
        #expect("\(evalError)" == message)
        #expect(run.failure(try run.config(), run.options(out: "init", initFrom: broken)) == message)
    }
}

/// A value shared between threads of a test.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withValue<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
