import Autograd
import Distributed
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
    /// A new run's directory (default: a new `<output_dir>/<name>-<time>`).
    public var outputDirectory: URL?
    /// Continue the run in this directory.
    public var resumeDirectory: URL?
    public var initFrom: URL?
    /// Stop after this many optimizer steps in all. Saved with the run (`max_steps` in its
    /// config.json), so a resumed run stops there too; on resume it may be raised.
    public var maxSteps: Int?
    /// On resume: drop the run's saved `max_steps` and train to its epochs.
    public var removeMaxSteps = false
    /// On resume: train to this many epochs (at least those already begun); saved.
    public var epochs: Int?
    /// On resume: read the data from here (the data may have moved); saved.
    public var dataDirectory: String?
    /// Train on files whose MD5 is not the published one (`data.verify: false`, saved).
    public var allowUnverifiedData = false
    public var quiet = false
    public var json = false
    /// The memory this process may use (nil: the system's limits, `MemoryLimit.current()`).
    public var memoryLimit: MemoryLimit?
    /// The processes training together (mpirun); rank 0 owns the run directory and prints.
    public var group = ProcessGroup.single
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
    /// The averaged weights' test accuracy (with `ema`) and the validation accuracy (with
    /// `data.validation`) at the last evaluation.
    public var emaTestAccuracy: Double?
    public var validationAccuracy: Double?
    /// The best value of the selection metric, what it measured (`validation accuracy`
    /// or `test accuracy`, of the averaged weights with `ema`), and the test accuracy of
    /// those weights (best.safetensors).
    public var bestAccuracy: Double
    public var bestSelection: String
    public var bestTestAccuracy: Double
    /// Wall seconds of the whole run: setup, loading the data, training, evaluating, files.
    public var seconds: Double
    /// Wall seconds from the first training step to the end of the last evaluation: the
    /// training time with evaluation included, without the set-up, data loading and the
    /// files written after the last evaluation (this process's part, for a resumed run).
    public var trainingSeconds = 0.0
    public var samplesPerSecond: Double
    /// Why the run ended: `completed`, `max_steps`, `early_stopping`, `target_accuracy` or
    /// `already_complete`.
    public var stopReason: String
    /// Data-parallel runs: the processes, the seconds of training steps (rank 0's) and of
    /// them the seconds in the gradient all-reduce, and the bytes each step all-reduced.
    public var ranks = 1
    public var trainSeconds = 0.0
    public var allReduceSeconds = 0.0
    public var allReduceBytesPerStep = 0

    public var json: String {
        var fields: [(String, Any)] = [
            ("run_dir", runDirectory), ("epochs_completed", epochsCompleted), ("steps", steps),
            ("train_loss", trainLoss), ("train_accuracy", trainAccuracy), ("test_loss", testLoss),
            ("test_accuracy", testAccuracy),
        ]
        if let emaTestAccuracy { fields.append(("ema_test_accuracy", emaTestAccuracy)) }
        if let validationAccuracy { fields.append(("validation_accuracy", validationAccuracy)) }
        fields += [
            ("best_accuracy", bestAccuracy), ("best_selection", bestSelection), ("best_test_accuracy", bestTestAccuracy),
            ("seconds", seconds), ("training_seconds", trainingSeconds), ("samples_per_second", samplesPerSecond),
            ("stop_reason", stopReason),
            ("model", runDirectory + "/" + Checkpoint.modelFile),
        ]
        if emaTestAccuracy != nil { fields.append(("ema_model", runDirectory + "/" + Checkpoint.emaFile)) }
        if ranks > 1 {
            fields += [("ranks", ranks), ("train_seconds", trainSeconds), ("allreduce_seconds", allReduceSeconds),
                       ("allreduce_bytes_per_step", allReduceBytesPerStep)]
        }
        return jsonObject(fields)
    }
}

/// Trains a model as a config describes. The run goes through named steps:
/// `checkConfig` (nothing is touched before the config is known to work and fit in
/// memory), `openRunDirectory` (lock, resume policy), `TrainingSession.start` (model,
/// data, restored state), then `TrainingSession.trainStep` per batch, `endEpoch` after
/// each epoch and `stop` at the end, on `max_steps` or on a signal: every stop evaluates,
/// logs, saves the model, the best weights and the curves.
public final class Trainer {
    public private(set) var config: TrainingConfig
    public let options: RunOptions
    let console: Console
    /// A resumed run's config.json as it was read, before the resume-time changes.
    let savedConfig: TrainingConfig?

    /// Prepares a run. With `options.resumeDirectory` the run's saved config replaces
    /// `config`, with the resume-time changes of `options` applied (checked in `run`).
    public init(config: TrainingConfig, options: RunOptions) throws {
        var config = config
        if let resume = options.resumeDirectory, options.group.isRoot {
            config = try TrainingConfig.load(from: RunDirectory.savedConfig(of: resume))
            savedConfig = config
            if let epochs = options.epochs { config.epochs = epochs }
            if let directory = options.dataDirectory { config.data.directory = directory }
            if options.removeMaxSteps { config.maxSteps = nil }
        } else {
            savedConfig = nil
        }
        if let maxSteps = options.maxSteps { config.maxSteps = maxSteps }
        if options.allowUnverifiedData { config.data.verify = false }
        self.config = config
        self.options = options
        // Under mpirun only rank 0 prints (and writes); the others take its config in `run`.
        console = Console(quiet: options.quiet || !options.group.isRoot, jsonOnStdout: options.json)
    }

    var group: ProcessGroup { options.group }

    // MARK: - Run

    /// Trains, with `config.threads` threads for the kernels (per process under mpirun).
    public func run() throws -> RunSummary {
        if !group.isRoot { return try runFollower() }
        return try Parallelism.withThreadCount(config.threads) {
            let startTime = DispatchTimeNow()
            try checkConfig()
            let (directory, checkpoint) = try openRunDirectory()
            // From here on SIGINT/SIGTERM end the run cleanly (after the step in progress).
            let signals = StopSignals()
            defer { signals.stop() }
            do {
                let initFrom = try options.initFrom.map { try SafeTensorsFile.read(from: $0) }
                _ = try group.broadcast(Array((config.json + "\n" + directory.url.path).utf8))  // rank 0 sends; followers read it
                let session = try TrainingSession(trainer: self, directory: directory, runURL: directory.url,
                                                  checkpoint: checkpoint, initFrom: initFrom)
                return try session.run(startTime: startTime, signals: signals)
            } catch {
                // A new run that failed before its first checkpoint leaves nothing behind.
                if options.resumeDirectory == nil
                    && !FileManager.default.fileExists(atPath: directory.url.appendingPathComponent(Checkpoint.stateFile).path) {
                    directory.removeFailedRun(files: [Checkpoint.configFile, Checkpoint.metricsFile, Checkpoint.modelFile,
                                                      Checkpoint.bestFile, Checkpoint.emaFile, TrainingSession.curvesFile,
                                                      TensorBoardLog(directory: directory.url).url.lastPathComponent])
                }
                throw error
            }
        }
    }

    /// A rank other than 0 of an mpirun job: takes rank 0's config (after its resume-time
    /// changes) and run directory path, then trains its share. Rank 0's state reaches it in
    /// `TrainingSession.init`; it writes nothing and prints nothing.
    private func runFollower() throws -> RunSummary {
        let startTime = DispatchTimeNow()
        let text = String(decoding: try group.broadcast([]), as: UTF8.self)
        guard let newline = text.lastIndex(of: "\n") else {
            throw TrainingError.runDirectory("rank \(group.rank): rank 0 sent no config")
        }
        config = try TrainingConfig.decode(Data(text[..<newline].utf8), file: "rank 0's config")
        let runURL = URL(fileURLWithPath: String(text[text.index(after: newline)...]))
        return try Parallelism.withThreadCount(config.threads) {
            let signals = StopSignals()
            defer { signals.stop() }
            let session = try TrainingSession(trainer: self, directory: nil, runURL: runURL, checkpoint: nil, initFrom: nil)
            return try session.run(startTime: startTime, signals: signals)
        }
    }

    /// Refuses, before anything is written or allocated, a config that cannot train well
    /// or cannot fit: a softmax output under cross-entropy, fewer outputs than classes, a
    /// model whose estimated memory exceeds what the process may use.
    func checkConfig() throws {
        let plan = try ModelBuilder.plan(config)
        let last = plan[plan.count - 1]
        if last.type == "softmax" {
            throw ModelBuilder.BuildError(
                layerIndex: last.index, layerName: "\(last.name), softmax",
                message: "a network ending in softmax is trained with cross-entropy on probabilities, which cannot learn well; "
                    + "end with log_softmax (trained with NLL loss) or with the last linear layer (cross-entropy on logits)")
        }
        if case let .oneCycle(cycle) = config.schedule, cycle.cycleMomentum, config.optimizer.type == "sgd",
           config.optimizer.momentum == 0 {
            throw ConfigError(file: "config", path: "scheduler.cycle_momentum", message: "one_cycle cycles SGD's momentum, "
                + "but optimizer.momentum is 0; give optimizer.momentum > 0 or set cycle_momentum to false")
        }
        // (A resumed job is checked against its checkpoint's process count instead.)
        if group.isDistributed && options.resumeDirectory == nil && config.batchSize % group.size != 0 {
            throw ConfigError(file: "config", path: "batch_size", message: "is \(config.batchSize), which \(group.size) processes "
                + "cannot share equally; the global batch is split over the ranks of mpirun -np \(group.size): give a multiple "
                + "of \(group.size) (--batch-size) or another -np")
        }
        let classes = 10  // MNIST, Fashion-MNIST and KMNIST
        if let outputs = last.outputShape.first, outputs < classes {
            throw ModelBuilder.BuildError(
                layerIndex: last.index, layerName: "\(last.name), \(last.type)",
                message: "the network has \(outputs) outputs but \(config.data.dataset) has \(classes) classes; "
                    + "the last linear layer needs out_features \(classes)")
        }
        let estimate = MemoryEstimate(config: config, plan: plan)
        let limit = options.memoryLimit ?? MemoryLimit.current()
        if estimate.total > limit.bytes {
            var advice = "lower batch_size (\(config.batchSize))"
            if let layer = estimate.largestLayer {
                advice += " or the size of model.layers[\(layer.index)] (\(layer.name), \(layer.type)), whose output "
                    + "\(layer.outputShape) is \(layer.outputShape.reduce(1, *)) values per sample"
            }
            throw TrainingError.memory("the run needs \(estimate.summary), more than the "
                + "\(MemoryEstimate.format(limit.bytes)) this process may use (\(limit.source)); \(advice)")
        }
        console.line("Memory: the run needs \(estimate.summary); this process may use \(MemoryEstimate.format(limit.bytes)) "
            + "(\(limit.source))")
        if let available = MemoryLimit.availableNow(), estimate.total > available {
            console.line("Warning: the run needs \(estimate.summary), more than the \(MemoryEstimate.format(available)) "
                + "this machine has free now")
        }
    }

    /// Locks the run directory. A new run gets its own (refused when `--out` holds
    /// anything) with its config.json; a resumed one is checked against the resume-time
    /// changes, and its checkpoint (read once, here) is handed on to the session, which
    /// saves the changes once the run has loaded with them.
    func openRunDirectory() throws -> (RunDirectory, checkpoint: SafeTensorsFile?) {
        guard let resume = options.resumeDirectory else {
            let directory = try options.outputDirectory.map(RunDirectory.openForNewRun)
                ?? RunDirectory.createUnique(in: URL(fileURLWithPath: config.outputDirectory), name: config.name)
            do {
                try AtomicFile.write(Data((config.json + "\n").utf8), to: directory.url.appendingPathComponent(Checkpoint.configFile))
            } catch {
                directory.removeFailedRun(files: [])
                throw TrainingError.runDirectory("cannot write to the run directory \(directory.url.path): \(error)")
            }
            return (directory, nil)
        }
        let directory = try RunDirectory.openForResume(resume)
        directory.removeStaleTemporaries()
        let stateURL = resume.appendingPathComponent(Checkpoint.stateFile)
        guard FileManager.default.fileExists(atPath: stateURL.path) else { return (directory, nil) }
        let checkpoint = try SafeTensorsFile.read(from: stateURL)
        try checkResumeChanges(against: try Checkpoint.progress(of: checkpoint), in: resume)
        let ranks = Int(checkpoint.metadata[DataParallel.ranksKey] ?? "1") ?? 1
        if ranks != group.size {
            throw TrainingError.checkpoint(file: stateURL.path, "was written by a job of \(ranks) process(es) and this one has "
                + "\(group.size); each process's random state and share of the batch belong to that count, so resume with "
                + (ranks == 1 ? "mnist-train --resume without mpirun" : "mpirun -np \(ranks) mnist-train --resume ..."))
        }
        return (directory, checkpoint)
    }

    /// A resumed run may be extended, never cut below what it has already done.
    func checkResumeChanges(against progress: TrainingProgress, in directory: URL) throws {
        if let epochs = options.epochs {
            let begun = progress.epoch + (progress.batchIndex > 0 ? 1 : 0)
            if epochs < begun {
                throw ConfigError(file: "command line", path: "--epochs", message: "got \(epochs); the run in \(directory.path) has "
                    + "already \(progress.batchIndex > 0 ? "begun epoch \(begun)" : "trained \(progress.epoch) epoch(s)"), "
                    + "and a resumed run is only extended, never rewritten; give at least \(max(begun, 1)) or leave --epochs out")
            }
        }
        if let maxSteps = options.maxSteps, maxSteps < progress.step {
            throw ConfigError(file: "command line", path: "--max-steps", message: "got \(maxSteps); the run in \(directory.path) has "
                + "already taken \(progress.step) steps; give at least \(progress.step), or --no-max-steps to train all its epochs")
        }
    }

    /// Whether a run at `progress` has nothing left to do under `config`.
    static func isComplete(_ progress: TrainingProgress, _ config: TrainingConfig) -> Bool {
        progress.endedEarly != nil || progress.epoch >= config.epochs || config.maxSteps.map { progress.step >= $0 } == true
    }

    /// The training and test sets of the config, fetched when missing (MNIST) and
    /// checked against the published MD5s unless `data.verify` is false.
    func loadData() throws -> (train: Dataset, validation: Dataset?, test: Dataset) {
        let directory = URL(fileURLWithPath: config.data.directory)
        let names = Split.train.fileNames, testNames = Split.test.fileNames
        let required = [names.images, names.labels, testNames.images, testNames.labels]
        let present = required.allSatisfy { name in
            ["", ".gz"].contains { FileManager.default.fileExists(atPath: directory.appendingPathComponent(name + $0).path) }
        }
        if !present && config.data.download && config.data.dataset == "mnist" {
            for line in try downloadMNIST(into: config.data.directory, mirrors: config.data.mirrors) { console.line(line) }
        }
        // The MD5 check and the test set on one thread while the training set (the largest
        // file to inflate) loads on another; the check's verdict comes first, as if in order.
        let verdict = Box<Result<DatasetChecksums.Outcome, Error>>(.success(.unknownDataset))
        let testSet = Box<Result<Dataset, Error>>(.failure(CancellationError()))
        let dataset = config.data.dataset, verify = config.data.verify
        let side = DispatchGroup()
        DispatchQueue.global(qos: .userInitiated).async(group: side) {
            if verify { verdict.value = Result { try DatasetChecksums.verify(directory: directory, dataset: dataset) } }
            testSet.value = Result { try Dataset.load(directory: directory, split: .test) }
        }
        let trainSet = Result { try Dataset.load(directory: directory, split: .train) }
        side.wait()
        if verify {
            switch try verdict.value.get() {
            case .verified: break
            case .unknownDataset:
                console.line("Note: no published MD5 sums for \(config.data.dataset) are known here; its files are not verified")
            case let .mismatch(files):
                let file = files[0]
                throw TrainingError.data("\(file.path): MD5 \(file.md5) is not a published \(config.data.dataset) file "
                    + "(expected \(file.expected.joined(separator: " or ")))"
                    + (files.count > 1 ? " (and \(files.count - 1) more file(s))" : "")
                    + "; pass --allow-unverified-data (data.verify: false) to train on these files anyway")
            }
        }
        var train = try trainSet.get()
        var test = try testSet.value.get()
        guard [1, train.rows, train.cols] == config.inputShape, [1, test.rows, test.cols] == config.inputShape else {
            throw TrainingError.data("\(directory.path): images are 1x\(train.rows)x\(train.cols) (test 1x\(test.rows)x\(test.cols)) "
                + "but model.input_shape is \(config.inputShape)")
        }
        if let n = config.data.trainLimit { train = try train.prefix(n) }
        if let n = config.data.testLimit { test = try test.prefix(n) }
        guard config.data.validation > 0 else { return (train, nil, test) }
        guard config.data.validation < train.count else {
            throw ConfigError(file: "config", path: "data.validation", message: "got \(config.data.validation); the training set "
                + "has \(train.count) images, and some must remain to train on")
        }
        let split = try train.holdingOut(last: config.data.validation, as: "\(train.name) (validation)")
        return (split.kept, split.heldOut, test)
    }
}

/// One process's part of a run: the model, optimizer, data and progress, and the steps
/// that move them.
final class TrainingSession {
    static let curvesFile = "curves.png"

    let trainer: Trainer
    private(set) var config: TrainingConfig
    /// The locked run directory (rank 0; nil on the other ranks of an mpirun job, which
    /// write nothing) and its path.
    let directory: RunDirectory?
    let runURL: URL
    let console: Console
    let parallel: DataParallel
    /// Whether this process writes the run's files: rank 0.
    var writes: Bool { directory != nil }
    private(set) var configJSON: String
    let model: Sequential
    let optimizer: any Optimizer
    let train: Dataset, test: Dataset
    /// The held-out last `data.validation` training images.
    let validation: Dataset?
    /// The exponential moving average of the weights (`ema`).
    let average: AveragedModel?
    let loader: DataLoader
    let nllOutput: Bool
    let stateURL: URL
    var progress = TrainingProgress()
    var metrics: MetricsLog
    var events: TensorBoardLog
    /// The step the last evaluation was made at, and its result.
    var lastEvaluation: (step: Int, result: EvaluationRound)?
    /// Time spent in training steps by this process (no evaluation, no checkpoints).
    var trainSeconds = 0.0, trainSamples = 0
    /// When this process's first step started, and its last evaluation ended (`trainingSeconds`).
    var loopStart: Double?, lastEvaluationEnd: Double?
    /// mpirun: the signal that stops every rank after the current step (any rank's).
    var stopRequested: String?
    var epochStart = 0.0, windowStart = 0.0, windowSamples = 0

    /// Builds the model, loads the data and restores the run's state from `checkpoint` (or
    /// `initFrom`); then config.json takes what changed: a resumed run's resume-time
    /// options, a one-cycle schedule's resolved length. A run that fails to load saves nothing.
    /// Under mpirun rank 0 then hands its whole state to the other ranks.
    init(trainer: Trainer, directory: RunDirectory?, runURL: URL, checkpoint: SafeTensorsFile?,
         initFrom: SafeTensorsFile?) throws {
        self.trainer = trainer
        config = trainer.config
        self.directory = directory
        self.runURL = runURL
        console = trainer.console
        configJSON = config.json
        model = try ModelBuilder.build(config, seed: config.seed)
        parallel = DataParallel(group: trainer.group, deterministic: config.deterministicReduce, parameters: model.parameters())
        (train, validation, test) = try parallel.inTurn("load the data") { try trainer.loadData() }
        // Loading inflated and MD5-checked the files on two threads, whose freed buffers
        // stay resident in their heaps: give those pages back before training grows.
        Storage.releaseCachedBlocks()
        if let decay = config.emaDecay {
            average = try AveragedModel(average: try ModelBuilder.build(config, seed: config.seed), of: model, decay: decay)
        } else {
            average = nil
        }
        nllOutput = ModelBuilder.endsWithLogSoftmax(model)
        optimizer = try config.makeOptimizer(model.parameters())
        metrics = MetricsLog(url: runURL.appendingPathComponent(Checkpoint.metricsFile))
        events = TensorBoardLog(directory: runURL)
        stateURL = runURL.appendingPathComponent(Checkpoint.stateFile)
        let scale = config.data.augmentScale
        let augmentation = config.data.augmentShift > 0 || config.data.augmentRotation > 0 || scale != 1...1
            || config.data.augmentHorizontalFlip
            ? Augmentation(maxShift: config.data.augmentShift, maxRotationDegrees: Float(config.data.augmentRotation),
                           scale: Float(scale.lowerBound)...Float(scale.upperBound),
                           horizontalFlip: config.data.augmentHorizontalFlip) : nil
        let transform = try Transform.normalized(config.normalization).withAugmentation(augmentation)
        loader = try DataLoader(dataset: train, batchSize: config.batchSize, shuffle: config.shuffle,
                                seed: config.seed, transform: transform, shard: parallel.shard)
        try parallel.checkSameData([train, validation, test])
        try checkShares()
        resolveScheduleLength()
        if writes { try restore(from: checkpoint, initFrom: initFrom) }
        try shareState(checkpoint: checkpoint)
        if writes && config != trainer.savedConfig ?? trainer.config {
            do { try AtomicFile.write(Data((configJSON + "\n").utf8), to: runURL.appendingPathComponent(Checkpoint.configFile)) } catch {
                throw TrainingError.runDirectory("cannot write to the run directory \(runURL.path): \(error)")
            }
        }
    }

    /// mpirun: rank 0's state (the resumed checkpoint as read, else its state now: seeded or
    /// `--init-from` weights, step 0) is broadcast and restored on every other rank, with
    /// each rank's own dropout generators. Every rank starts from rank 0's weights. A
    /// failure on any rank ends every rank together (`DataParallel.agree`).
    private func shareState(checkpoint: SafeTensorsFile?) throws {
        guard parallel.isDistributed else { return }
        var bytes: [UInt8] = []
        var failure: Error?
        if writes {
            do {
                let file = try checkpoint ?? Checkpoint.stateFile(model: model, optimizer: optimizer, average: average,
                                                                  progress: progress, finished: false, configJSON: configJSON)
                bytes = Array(try file.serialized())
            } catch { failure = error }
        }
        try parallel.agree("prepare its state", failure: failure)
        bytes = try parallel.group.broadcast(bytes)
        if !writes {
            do {
                let file = try SafeTensorsFile(parsing: Data(bytes), source: stateURL.path)
                progress = try Checkpoint.restoreState(from: file, model: model, optimizer: optimizer, average: average)
                try parallel.restoreGenerators(of: model, from: file, seed: config.seed)
            } catch { failure = error }
        }
        try parallel.agree("restore rank 0's state", failure: failure)
    }

    /// mpirun with batch norm: every rank normalises its own share of a batch, which needs at
    /// least 2 samples, the last (partial) batch of an epoch included. Checked by every rank
    /// (rank 0 explains, the others stop with it).
    private func checkShares() throws {
        guard parallel.isDistributed,
              try ModelBuilder.plan(config).contains(where: { $0.type.hasPrefix("batch_norm") }) else { return }
        let ranks = parallel.group.size
        let last = train.count % config.batchSize == 0 ? config.batchSize : train.count % config.batchSize
        guard last / ranks < 2 else { return }
        guard writes else { throw TrainingError.peerFailed("rank 0 refused the batch split") }
        throw ConfigError(file: "config", path: "batch_size", message: "is \(config.batchSize); the last batch of each epoch "
            + "holds \(last) of the \(train.count) training images, which leaves \(last / ranks) for some of the \(ranks) "
            + "processes, and batch norm needs at least 2 per process; choose a batch_size (or data.train_limit, "
            + "data.validation) that leaves at least \(2 * ranks) images in the last batch, or fewer processes")
    }

    /// A one-cycle schedule without `total_steps` spans every batch of every epoch (not
    /// `max_steps`, which only stops the run), now that the data is known; config.json
    /// keeps the number, so a resumed or extended run follows the same schedule.
    private func resolveScheduleLength() {
        guard case var .oneCycle(cycle) = config.schedule, cycle.totalSteps == 0 else { return }
        cycle.totalSteps = config.epochs * loader.batchCount
        config.schedule = .oneCycle(cycle)
        configJSON = config.json
    }

    /// Restores a resumed run's state, or loads `--init-from` weights into a new one.
    private func restore(from checkpoint: SafeTensorsFile?, initFrom: SafeTensorsFile?) throws {
        let path = runURL.path
        if let checkpoint {
            progress = try Checkpoint.restoreState(from: checkpoint, model: model, optimizer: optimizer, average: average)
            try metrics.load(upToStep: progress.step)
            if !Trainer.isComplete(progress, config) {
                console.line("Resuming \(path) at epoch \(progress.epoch + 1), batch \(progress.batchIndex), step \(progress.step)")
            }
        } else if trainer.options.resumeDirectory != nil {
            console.line("No \(Checkpoint.stateFile) in \(path) yet: starting the run from step 0")
        } else if let initFrom {
            try Checkpoint.loadWeights(initFrom, into: model)
        }
    }

    // MARK: - The run

    func run(startTime: Double, signals: StopSignals) throws -> RunSummary {
        if trainer.options.resumeDirectory != nil && Trainer.isComplete(progress, config) {
            return try alreadyComplete(startTime: startTime)
        }
        console.line("Config \(config.name): \(indentedJSON(configJSON, objectDepth: 2))")
        console.line("\(model)")
        console.line("Parameters: \(model.parameterCount); training on \(train.count) images, "
            + (validation.map { "validating on \($0.count) (the last of the training set), " } ?? "")
            + "testing on \(test.count); \(config.threads) thread(s)"
            + (parallel.isDistributed ? " in each of \(parallel.group.size) processes (mpirun; batch \(config.batchSize) split "
                + "over them\(config.deterministicReduce ? ", gradients summed in rank order" : ""))" : "")
            + "; run directory \(runURL.path)")
        if config.emaDecay != nil || validation != nil {
            console.line("The best weights are chosen by \(EvaluationRound.selection(ema: average != nil, validation: validation != nil))")
        }
        loopStart = DispatchTimeNow()
        while !Trainer.isComplete(progress, config) {
            try trainEpoch(signals: signals)
        }
        let reason = progress.endedEarly ?? (progress.epoch >= config.epochs ? "completed" : "max_steps")
        try stop(reason: reason)
        return summary(startTime: startTime, reason: reason)
    }

    /// The batches of the epoch in progress, from where it stands; `endEpoch` when it is
    /// done. Returns early at `max_steps`; throws `interrupted` after stopping on a signal.
    private func trainEpoch(signals: StopSignals) throws {
        let epoch = progress.epoch
        let lr = config.schedule.learningRate(base: config.optimizer.lr, epoch: epoch)
        optimizer.learningRate = Float(lr)
        model.train()
        epochStart = DispatchTimeNow()
        windowStart = epochStart
        windowSamples = 0
        // The epoch's line reports the rate of its last step: one-cycle and warm-up change
        // it within the epoch.
        var lastRate = lr
        for batch in loader.batches(epoch: epoch, startingAt: progress.batchIndex) {
            // Under mpirun every rank stops at the same step: when any rank had a signal
            // at the last step's all-reduce.
            if let signal = parallel.isDistributed ? stopRequested : signals.pending {  // also one that came while the data loaded
                console.clearProgress()
                try stop(reason: signal)
                throw TrainingError.interrupted(signal: signal, runDirectory: runURL.path, step: progress.step,
                                                ranks: parallel.group.size)
            }
            if Trainer.isComplete(progress, config) { return }
            lastRate = try trainStep(batch, learningRate: lr, signals: signals)
            if config.evalEverySteps > 0 && progress.step % config.evalEverySteps == 0 && progress.batchIndex < loader.batchCount {
                try evaluateWithinEpoch()
            }
            if config.checkpointEverySteps > 0 && progress.step % config.checkpointEverySteps == 0 {
                try saveState()
            }
        }
        try endEpoch(learningRate: lastRate)
    }

    /// One optimizer step on one batch (this rank's share of it under mpirun), its
    /// bookkeeping and its log line. Returns the learning rate the step used.
    private func trainStep(_ batch: Batch, learningRate epochRate: Double, signals: StopSignals) throws -> Double {
        let stepStart = DispatchTimeNow()
        var lr = epochRate
        if case let .oneCycle(cycle) = config.schedule {
            let values = cycle.values(at: progress.step)
            lr = values.lr
            optimizer.learningRate = Float(lr)
            if cycle.cycleMomentum { optimizer.momentumTerm = Float(values.momentum) }
        } else if progress.step <= config.warmupSteps && config.warmupSteps > 0 {
            lr = epochRate * warmupFactor(step: progress.step, steps: config.warmupSteps, startFactor: config.warmupStartFactor)
            optimizer.learningRate = Float(lr)
        }
        optimizer.zeroGrad()
        var lossValue: Float = 0, correct = 0
        if batch.count > 0 {
            let x = try Tensor(shape: batch.imageShape, data: batch.images)
            let output = try model(x)
            let smoothing = Float(config.labelSmoothing)
            let loss = nllOutput ? try F.nllLoss(output, targets: batch.labels, labelSmoothing: smoothing)
                                 : try F.crossEntropy(output, targets: batch.labels, labelSmoothing: smoothing)
            lossValue = try loss.item()
            correct = try correctCount(output, batch.labels)
            // Under mpirun a non-finite loss is noticed by every rank after the all-reduce.
            if lossValue.isFinite || parallel.isDistributed { try loss.backward() }
        }
        if parallel.isDistributed {
            let reduced = try parallel.reduce(
                parameters: optimizer.parameters, share: Float(batch.count) / Float(batch.globalCount),
                lossSum: lossValue * Float(batch.count), correct: correct, stop: signals.pending != nil)
            lossValue = reduced.lossSum / Float(batch.globalCount)
            correct = reduced.correct
            if reduced.stop { stopRequested = signals.pending ?? "SIGTERM" }
        }
        guard lossValue.isFinite else {
            let saved = FileManager.default.fileExists(atPath: stateURL.path) ? stateURL.path : nil
            throw TrainingError.nonFiniteLoss(step: progress.step + 1, epoch: progress.epoch, loss: lossValue,
                                              learningRate: lr, lastCheckpoint: saved)
        }
        try optimizer.step()
        try parallel.broadcastBuffers(of: model)
        average?.update(from: model)

        progress.step += 1
        progress.batchIndex += 1
        progress.epochLossSum += Double(lossValue) * Double(batch.globalCount)
        progress.epochSeen += batch.globalCount
        progress.epochCorrect += correct
        let now = DispatchTimeNow()
        trainSeconds += now - stepStart
        trainSamples += batch.globalCount
        windowSamples += batch.globalCount

        let seen = min(progress.batchIndex * config.batchSize, train.count)
        if progress.step % config.logInterval == 0 || progress.batchIndex == loader.batchCount {
            let rate = Double(windowSamples) / max(now - windowStart, 1e-9)
            windowStart = now
            windowSamples = 0
            console.line(String(format: "Train Epoch: %d [%d/%d (%.0f%%)]\tLoss: %.6f", progress.epoch + 1, seen, train.count,
                                100 * Double(seen) / Double(train.count), lossValue))
            metrics.append(jsonObject(["kind": "step", "epoch": progress.epoch + 1, "step": progress.step, "loss": Double(lossValue),
                                       "lr": lr, "samples_per_second": rate]))
        }
        if console.isTerminal {
            let done = Double(progress.batchIndex) / Double(loader.batchCount)
            let rate = Double(progress.epochSeen) / max(now - epochStart, 1e-9)
            console.progress(progressBar(fraction: done, loss: lossValue,
                                         rate: rate, eta: rate > 0 ? Double(train.count - seen) / rate : .infinity))
        }
        return lr
    }

    /// After the last batch of an epoch: evaluate, log the epoch, keep the best weights,
    /// move on to the next epoch and save the state.
    private func endEpoch(learningRate lr: Double) throws {
        console.clearProgress()
        let seconds = DispatchTimeNow() - epochStart
        let evaluation = try evaluate()
        metrics.append(jsonObject([
            ("kind", "epoch"), ("epoch", progress.epoch + 1), ("step", progress.step), ("lr", lr),
            ("train_loss", progress.epochLossSum / Double(max(progress.epochSeen, 1))),
            ("train_accuracy", Double(progress.epochCorrect) / Double(max(progress.epochSeen, 1))),
        ] + evaluation.fields + [("seconds", seconds)]))
        try keepIfBest(evaluation)
        checkEarlyStopping(evaluation)
        checkTarget(evaluation)
        progress.epoch += 1
        progress.batchIndex = 0
        progress.epochLossSum = 0
        progress.epochSeen = 0
        progress.epochCorrect = 0
        try saveState()
    }

    /// Ends the run for `reason` (`completed`, `max_steps`, `SIGINT`, `SIGTERM`) with a
    /// complete record: an evaluation at this step (and its `stop` line in metrics.jsonl
    /// when the last epoch line is older), the best weights, the state, the model and the
    /// curves.
    private func stop(reason: String) throws {
        if parallel.isDistributed && reason.hasPrefix("SIG") {
            // mpirun kills its ranks about a second after forwarding a signal
            // (odls_base_sigkill_timeout): save the state before the evaluation.
            try saveState()
        }
        if lastEvaluation?.step != progress.step {
            let evaluation = try evaluate()
            metrics.append(jsonObject([("kind", "stop"), ("reason", reason)] + withinEpochFields() + evaluation.fields))
            try keepIfBest(evaluation)
        }
        try saveState()
        guard writes else { return }
        try Checkpoint.weightsFile(model, configJSON: configJSON).write(to: runURL.appendingPathComponent(Checkpoint.modelFile))
        if let average {
            try Checkpoint.weightsFile(average.average, configJSON: configJSON, extra: ["ema_decay": "\(average.decay)",
                "ema_updates": "\(average.updates)"]).write(to: runURL.appendingPathComponent(Checkpoint.emaFile))
        }
        if let curves = try drawCurves() {
            // The curves and the last evaluation's confusion matrix as images in TensorBoard
            // too, at the step the run stopped (the curves as curves.png's bytes).
            try events.appendImage(tag: "curves", image: curves.image, step: progress.step, png: curves.png)
        }
        if let test = lastEvaluation?.result.test {
            let confusion = try Figures.confusionMatrix(counts: test.confusion.flatMap { $0 },
                                                        classNames: (0..<test.confusion.count).map(String.init),
                                                        title: "Confusion matrix (test, step \(progress.step))")
            try events.appendImage(tag: "test/confusion_matrix", image: confusion, step: progress.step)
        }
    }

    /// A resumed run that has nothing left to do: evaluates its weights, writes nothing.
    private func alreadyComplete(startTime: Double) throws -> RunSummary {
        console.line("The run in \(runURL.path) is already complete (\(progress.epoch) epoch(s), \(progress.step) steps); "
            + "nothing was changed. To train further, resume with --epochs N (more than \(progress.epoch))"
            + (config.maxSteps != nil ? " or --max-steps N / --no-max-steps" : ""))
        _ = try evaluate()
        return summary(startTime: startTime, reason: "already_complete")
    }

    // MARK: - Pieces

    /// Evaluates the model (and the averaged weights) on the test set (and the validation
    /// split), printing a line for each.
    private func evaluate() throws -> EvaluationRound {
        func run(_ module: Module, _ dataset: Dataset, _ label: String) throws -> Evaluation {
            // Under mpirun each rank evaluates its share and the counts are summed.
            let evaluation = try parallel.reduce(
                try Evaluator.evaluate(module, dataset: try parallel.evaluationShare(of: dataset), batchSize: config.testBatchSize,
                                       normalization: config.normalization, logProbabilities: nllOutput))
            console.line(evaluationLine(evaluation, label: label))
            return evaluation
        }
        // Training's cached activation blocks are of other sizes than evaluation's: give them
        // back before the round, and the round's after it (the round's own evaluations share
        // their sizes, so they keep the cache between them). See `Storage.releaseCachedBlocks`.
        Storage.releaseCachedBlocks()
        defer { Storage.releaseCachedBlocks() }
        var round = EvaluationRound(test: try run(model, test, "Test set"))
        if let validation { round.validation = try run(model, validation, "Validation set") }
        if let average {
            round.emaTest = try run(average.average, test, "Test set (EMA weights)")
            if let validation { round.emaValidation = try run(average.average, validation, "Validation set (EMA weights)") }
        }
        lastEvaluation = (progress.step, round)
        lastEvaluationEnd = DispatchTimeNow()
        return round
    }

    /// `eval_every_steps` within an epoch: an `eval` line, the best weights, the target.
    private func evaluateWithinEpoch() throws {
        console.clearProgress()
        let evaluation = try evaluate()
        metrics.append(jsonObject([("kind", "eval")] + withinEpochFields() + evaluation.fields))
        try keepIfBest(evaluation)
        checkTarget(evaluation)
    }

    /// Where a run stands within its epoch, and the epoch's training loss and accuracy so far.
    private func withinEpochFields() -> [(String, Any)] {
        let seen = max(progress.epochSeen, 1)
        return [
            ("epoch", progress.epoch + 1), ("step", progress.step),
            ("epoch_fraction", Double(progress.batchIndex) / Double(max(loader.batchCount, 1))),
            ("train_loss", progress.epochSeen > 0 ? progress.epochLossSum / Double(seen) : Double.nan),
            ("train_accuracy", progress.epochSeen > 0 ? Double(progress.epochCorrect) / Double(seen) : Double.nan),
        ]
    }

    /// best.safetensors holds the weights of the best evaluation so far by the selection
    /// metric (`EvaluationRound.selected`), and its metadata what they reached.
    private func keepIfBest(_ round: EvaluationRound) throws {
        guard round.selected.accuracy > progress.bestAccuracy else { return }
        progress.bestAccuracy = round.selected.accuracy
        progress.bestTestAccuracy = round.selectedTest.accuracy
        guard writes else { return }
        var extra = ["epoch": "\(progress.epoch + 1)", "step": "\(progress.step)", "test_accuracy": "\(round.selectedTest.accuracy)",
                     "selected_by": round.selection]
        if let validation = round.emaValidation ?? round.validation { extra["validation_accuracy"] = "\(validation.accuracy)" }
        try Checkpoint.weightsFile(average?.average ?? model, configJSON: configJSON, extra: extra)
            .write(to: runURL.appendingPathComponent(Checkpoint.bestFile))
    }

    /// `early_stopping`, at epoch ends: counts the evaluations since the metric last
    /// improved by more than `min_delta`, and ends the run after `patience` of them.
    private func checkEarlyStopping(_ round: EvaluationRound) {
        guard let stopping = config.earlyStopping, progress.endedEarly == nil else { return }
        let value = stopping.metric == .accuracy ? round.selected.accuracy : round.selected.loss
        let improved = progress.stoppingBest.isNaN
            || (stopping.metric == .accuracy ? value > progress.stoppingBest + stopping.minDelta
                                             : value < progress.stoppingBest - stopping.minDelta)
        if improved {
            progress.stoppingBest = value
            progress.evaluationsWithoutImprovement = 0
            return
        }
        progress.evaluationsWithoutImprovement += 1
        if progress.evaluationsWithoutImprovement >= stopping.patience {
            progress.endedEarly = "early_stopping"
            console.line("Early stopping: \(round.selection.replacingOccurrences(of: "accuracy", with: stopping.metric.rawValue)) "
                + "has not improved by more than \(stopping.minDelta) for \(stopping.patience) epoch(s) (best "
                + String(format: stopping.metric == .accuracy ? "%.2f%%" : "%.4f",
                         stopping.metric == .accuracy ? 100 * progress.stoppingBest : progress.stoppingBest) + ")")
        }
    }

    /// `target_accuracy`: ends the run once the selection metric reaches it.
    private func checkTarget(_ round: EvaluationRound) {
        guard let target = config.targetAccuracy, progress.endedEarly == nil, round.selected.accuracy >= target else { return }
        progress.endedEarly = "target_accuracy"
        console.line(String(format: "Target reached: %@ %.2f%% >= %.2f%% after %d steps (%.2f s of training)", round.selection,
                            100 * round.selected.accuracy, 100 * target, progress.step, trainSeconds))
    }

    /// What the last `saveState` wrote: the progress and the number of metric lines.
    private var lastSave: (progress: TrainingProgress, lines: Int)?

    private func saveState() throws {
        // Nothing changed since the last save (a run that stops right after an epoch's end):
        // the files already hold this state. Every rank decides alike (same progress, same lines).
        if let lastSave, lastSave.progress.isSame(as: progress), lastSave.lines == metrics.lines.count { return }
        lastSave = (progress, metrics.lines.count)
        let rankEntries = try parallel.gatherGenerators(of: model)  // collective: every rank
        guard writes else { return }
        // Metrics first: a kill between the two leaves metrics ahead of the checkpoint,
        // which a resume trims, rather than behind it, which it could not mend.
        try metrics.write()
        try events.sync(metrics.lines)
        try Checkpoint.writeState(to: stateURL, model: model, optimizer: optimizer, average: average, progress: progress,
                                  finished: Trainer.isComplete(progress, config), configJSON: configJSON,
                                  ranks: parallel.group.size, rankEntries: rankEntries)
    }

    private func summary(startTime: Double, reason: String) -> RunSummary {
        let records = metrics.epochRecords()
        let last = metrics.records(kinds: ["epoch", "stop"]).last
        let evaluation = lastEvaluation?.result
        // This process's own training rate; a run that took no step here reports its epochs'.
        let epochSeconds = records.reduce(0) { $0 + ($1["seconds"] ?? 0) }
        let rate = trainSeconds > 0 ? Double(trainSamples) / trainSeconds
            : epochSeconds > 0 ? Double(records.count * train.count) / epochSeconds : 0
        return RunSummary(
            runDirectory: runURL.path, epochsCompleted: progress.epoch, steps: progress.step,
            trainLoss: last?["train_loss"] ?? .nan, trainAccuracy: last?["train_accuracy"] ?? .nan,
            testLoss: evaluation?.test.loss ?? .nan, testAccuracy: evaluation?.test.accuracy ?? .nan,
            emaTestAccuracy: evaluation?.emaTest?.accuracy, validationAccuracy: evaluation?.validation?.accuracy,
            bestAccuracy: progress.bestAccuracy,
            bestSelection: EvaluationRound.selection(ema: average != nil, validation: validation != nil),
            bestTestAccuracy: progress.bestTestAccuracy, seconds: DispatchTimeNow() - startTime,
            trainingSeconds: loopStart.map { (lastEvaluationEnd ?? DispatchTimeNow()) - $0 } ?? 0,
            samplesPerSecond: rate, stopReason: reason, ranks: parallel.group.size, trainSeconds: trainSeconds,
            allReduceSeconds: parallel.group.reduceSeconds,
            allReduceBytesPerStep: parallel.group.reduceCalls > 0 ? parallel.group.reducedBytes / parallel.group.reduceCalls : 0)
    }

    private func correctCount(_ output: Tensor, _ labels: [Int32]) throws -> Int {
        zip(try predictedClasses(output), labels).filter { $0 == Int($1) }.count
    }

    private func progressBar(fraction: Double, loss: Float, rate: Double, eta: Double) -> String {
        let width = 30
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        return String(format: "Epoch %d/%d %@ %3.0f%%  loss %.4f  %.0f img/s  ETA %@", progress.epoch + 1, config.epochs, bar,
                      100 * fraction, loss, rate, formatDuration(eta))
    }

    /// curves.png: one point per epoch, and the last stop's evaluation when the run ended
    /// between epochs (at its fractional epoch); the logged per-step loss as a thin line.
    @discardableResult
    private func drawCurves() throws -> (image: Plot.Image, png: Data)? {
        var points = metrics.epochRecords()
        if let last = metrics.records(kinds: ["epoch", "stop", "eval"]).last, ["stop", "eval"].contains(metrics.lastKind) {
            var point = last
            point["epoch"] = (last["epoch"] ?? 1) - 1 + (last["epoch_fraction"] ?? 0)
            points.append(point)
        }
        guard !points.isEmpty else { return nil }
        let steps = metrics.records(kinds: ["step"]).filter { $0["loss"] != nil && $0["step"] != nil }
        let perEpoch = Double(max(loader.batchCount, 1))
        let image = try Figures.trainingCurves(
            epochs: points.map { $0["epoch"] ?? 0 }, trainLoss: points.map { $0["train_loss"] ?? .nan },
            testLoss: points.map { $0["test_loss"] ?? .nan }, trainAccuracy: points.map { $0["train_accuracy"] ?? .nan },
            testAccuracy: points.map { $0["test_accuracy"] ?? .nan },
            stepEpochs: steps.map { $0["step"]! / perEpoch }, stepLoss: steps.map { $0["loss"]! }, title: config.name)
        return (image, try image.write(to: runURL.appendingPathComponent(Self.curvesFile)))
    }
}

/// The PyTorch example's line after each evaluation (`Test set`, or another label).
func evaluationLine(_ evaluation: Evaluation, label: String = "Test set") -> String {
    String(format: "\n%@: Average loss: %.4f, Accuracy: %d/%d (%.2f%%)\n", label, evaluation.loss,
           evaluation.correct, evaluation.count, 100 * evaluation.accuracy)
}

/// LinearLR's factor for the rate of optimizer step `step` (0 = the first): rises from
/// `startFactor` to 1 over `steps` steps, then stays 1.
func warmupFactor(step: Int, steps: Int, startFactor: Double) -> Double {
    guard steps > 0 else { return 1 }
    return startFactor + (1 - startFactor) * Double(min(step, steps)) / Double(steps)
}

/// One evaluation point: the model on the test set and the validation split, and the
/// averaged weights on both, as far as the run has them.
struct EvaluationRound {
    var test: Evaluation
    var validation: Evaluation?
    var emaTest: Evaluation?
    var emaValidation: Evaluation?

    init(test: Evaluation) { self.test = test }

    /// What selects the best weights, stops early and meets the target: the averaged
    /// weights' when there are any, on the validation split when there is one.
    var selected: Evaluation { emaTest != nil ? (emaValidation ?? emaTest!) : (validation ?? test) }
    /// The test evaluation of the selected weights.
    var selectedTest: Evaluation { emaTest ?? test }
    var selection: String { Self.selection(ema: emaTest != nil, validation: validation != nil) }

    /// `validation accuracy of the EMA weights`, `test accuracy`, …
    static func selection(ema: Bool, validation: Bool) -> String {
        (validation ? "validation accuracy" : "test accuracy") + (ema ? " of the EMA weights" : "")
    }

    /// The metrics.jsonl fields of this round.
    var fields: [(String, Any)] {
        var fields: [(String, Any)] = [("test_loss", test.loss), ("test_accuracy", test.accuracy)]
        if let validation { fields += [("validation_loss", validation.loss), ("validation_accuracy", validation.accuracy)] }
        if let emaTest { fields += [("ema_test_loss", emaTest.loss), ("ema_test_accuracy", emaTest.accuracy)] }
        if let emaValidation {
            fields += [("ema_validation_loss", emaValidation.loss), ("ema_validation_accuracy", emaValidation.accuracy)]
        }
        let seconds = [test, validation, emaTest, emaValidation].compactMap { $0?.seconds }.reduce(0, +)
        return fields + [("eval_seconds", seconds)]
    }
}

/// `metrics.jsonl`: one JSON object per line, kept in memory and rewritten atomically at
/// each checkpoint, so a crash never leaves a torn line.
struct MetricsLog {
    let url: URL
    private(set) var lines: [String] = []

    init(url: URL) { self.url = url }

    /// Appends a record, a JSON object, with the wall time (`time`, Unix seconds) in front.
    mutating func append(_ line: String) {
        lines.append("{\"time\": \(jsonValue((Date().timeIntervalSince1970 * 1000).rounded() / 1000)), " + line.dropFirst())
    }

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

    /// The records of these kinds, numbers only.
    func records(kinds: Set<String>) -> [[String: Double]] {
        lines.compactMap(parse).filter { kinds.contains($0["kind"] as? String ?? "") }.map { object in
            object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }

    /// The per-epoch records, numbers only.
    func epochRecords() -> [[String: Double]] { records(kinds: ["epoch"]) }

    /// The kind of the last record (`step`, `epoch`, `stop`).
    var lastKind: String? { lines.last.flatMap(parse)?["kind"] as? String }
}

/// A value written by one thread and read by another after a `DispatchGroup.wait()`, which
/// orders the two.
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

extension TrainingProgress {
    /// Equal, counting a NaN `stoppingBest` (no early stopping yet) equal to another NaN.
    func isSame(as other: TrainingProgress) -> Bool {
        var a = self, b = other
        if a.stoppingBest.isNaN && b.stoppingBest.isNaN { (a.stoppingBest, b.stoppingBest) = (0, 0) }
        return a == b
    }
}

extension TrainingConfig {
    /// The config's optimizer over `parameters` (the trainer's and `mnist-bench --config`'s).
    public func makeOptimizer(_ parameters: [Tensor]) throws -> any Optimizer {
        let o = optimizer
        switch o.type {
        case "adam", "adamw":
            return try Adam(parameters: parameters, learningRate: Float(o.lr), betas: (Float(o.betas[0]), Float(o.betas[1])),
                            epsilon: Float(o.eps), weightDecay: Float(o.weightDecay), decoupledWeightDecay: o.type == "adamw")
        default:
            return try SGD(parameters: parameters, learningRate: Float(o.lr), momentum: Float(o.momentum),
                           dampening: Float(o.dampening), weightDecay: Float(o.weightDecay), nesterov: o.nesterov)
        }
    }
}
