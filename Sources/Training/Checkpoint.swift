import Autograd
import Foundation
import NN
import Optim
import SafeTensors

/// Where training stands, saved with the weights so that `--resume` continues exactly.
public struct TrainingProgress: Sendable, Equatable {
    /// 0-based epoch in progress and the next batch index within it.
    public var epoch = 0
    public var batchIndex = 0
    /// Optimizer steps taken so far.
    public var step = 0
    /// Running sums of the epoch in progress (for its mean loss and accuracy).
    public var epochLossSum = 0.0
    public var epochCorrect = 0
    public var epochSeen = 0
    /// The best value of the selection metric (validation accuracy when there is a
    /// validation split, else test accuracy; of the averaged weights when there are any).
    public var bestAccuracy = -1.0
    /// The test accuracy of the weights in best.safetensors.
    public var bestTestAccuracy = -1.0
    /// Early stopping: the best value of its metric so far and the epoch-end evaluations
    /// since it last improved.
    public var stoppingBest = Double.nan
    public var evaluationsWithoutImprovement = 0
    /// Set when the run ended before its epochs for a reason of its own
    /// (`early_stopping`, `target_accuracy`): the run is complete.
    public var endedEarly: String?
    public init() {}
}

/// Checkpoint files: `model.safetensors` / `best.safetensors` hold the weights with
/// PyTorch's names and layouts (PyTorch loads them with `load_state_dict(strict=True)`)
/// and the resolved config in `__metadata__`; `checkpoint.safetensors` adds the
/// optimizer's buffers (`optimizer.<param>.<buffer>`), the progress and random states.
public enum Checkpoint {
    public static let modelFile = "model.safetensors"
    public static let bestFile = "best.safetensors"
    /// The averaged weights (`ema`), in the model's names.
    public static let emaFile = "ema.safetensors"
    public static let stateFile = "checkpoint.safetensors"
    public static let configFile = "config.json"
    public static let metricsFile = "metrics.jsonl"

    /// The model's state (parameters and persistent buffers, PyTorch's `state_dict()`) as a
    /// safetensors file with the config in its metadata.
    public static func weightsFile(_ model: Module, configJSON: String, extra: [String: String] = [:]) throws -> SafeTensorsFile {
        var tensors: [String: TensorEntry] = [:]
        for (name, shape, values) in model.stateDict() { tensors[name] = try entry(values, shape: shape) }
        var metadata = extra
        metadata["format"] = "pt"
        metadata["mnist_train_config"] = configJSON
        return SafeTensorsFile(tensors: tensors, metadata: metadata)
    }

    /// Loads parameters and buffers by name into `model` (strict: the same names, shapes and
    /// element types; finite values). `includingNonPersistent`: also the buffers only a
    /// training checkpoint holds (random generator states); otherwise entries naming them
    /// are skipped, so a checkpoint evaluates like a model file.
    /// `prefix`: load the entries under it (`ema.` for the averaged weights of a training
    /// checkpoint); otherwise those of the optimizer and of the average are skipped.
    public static func loadWeights(
        _ file: SafeTensorsFile, into model: Module, includingNonPersistent: Bool = false, prefix: String? = nil
    ) throws {
        let nonPersistent = Set(model.namedBuffers(includingNonPersistent: true).filter { !$0.buffer.persistent }.map(\.name))
        var state: [String: (shape: [Int], values: Buffer.Values)] = [:]
        // In name order, so that the first non-finite tensor named is the same every time.
        for (key, entry) in file.tensors.sorted(by: { $0.key < $1.key }) {
            let name: String
            if let prefix {
                guard key.hasPrefix(prefix) else { continue }
                name = String(key.dropFirst(prefix.count))
            } else {
                guard !reservedPrefixes.contains(where: key.hasPrefix) else { continue }
                name = key
            }
            guard includingNonPersistent || !nonPersistent.contains(name) else { continue }
            let values = try values(of: entry)
            if case let .float32(floats) = values {
                let bad = floats.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
                guard bad == 0 else {
                    throw TrainingError.nonFiniteWeights(file: file.source, tensor: name, count: bad, of: floats.count)
                }
            }
            state[name] = (entry.shape, values)
        }
        if includingNonPersistent && prefix == nil {
            // Checkpoints written before module buffers kept Dropout's generator in metadata.
            for (key, value) in file.metadata where key.hasPrefix("rng.") {
                let words = value.split(separator: ",").compactMap { UInt64($0) }
                let name = "\(key.dropFirst(4)).generator"
                if state[name] == nil && words.count == 4 { state[name] = ([4], .uint64(words)) }
            }
        }
        do { try model.loadStateDict(state, includingNonPersistent: includingNonPersistent) } catch {
            throw TrainingError.checkpoint(file: file.source, "\(error)")
        }
    }

    /// Entries of a training checkpoint that are not the model's: the optimizer's buffers
    /// and the averaged weights (layer names `optimizer`, `ema` and `ranks` are refused).
    /// Also the dropout generators of a data-parallel job's other ranks (`ranks.<r>.`).
    static let reservedPrefixes = ["optimizer.", "ema.", "ranks."]

    static func entry(_ values: Buffer.Values, shape: [Int]) throws -> TensorEntry {
        switch values {
        case let .float32(v): return try TensorEntry(floats: v, shape: shape)
        case let .int64(v): return try TensorEntry(int64s: v, shape: shape)
        case let .uint64(v): return try TensorEntry(uint64s: v, shape: shape)
        }
    }

    static func values(of entry: TensorEntry) throws -> Buffer.Values {
        switch entry.dtype {
        case .I64: return .int64(try entry.words().map { Int64(bitPattern: $0) })
        case .U64: return .uint64(try entry.words())
        default: return .float32(try entry.floats())
        }
    }

    /// Writes the full training state atomically. `finished` (the run has nothing left to
    /// do) goes into the metadata for people and scripts; resume derives it from the
    /// progress and the config (`Trainer.isComplete`).
    static func writeState(
        to url: URL, model: Module, optimizer: any Optimizer, average: AveragedModel? = nil, progress: TrainingProgress,
        finished: Bool, configJSON: String, ranks: Int = 1, rankEntries: [String: TensorEntry] = [:]
    ) throws {
        var file = try stateFile(model: model, optimizer: optimizer, average: average, progress: progress, finished: finished,
                                 configJSON: configJSON)
        if ranks > 1 {
            file.metadata[DataParallel.ranksKey] = "\(ranks)"
            file.tensors.merge(rankEntries) { $1 }
        }
        try file.write(to: url)
    }

    /// The full training state `writeState` writes, in memory.
    static func stateFile(
        model: Module, optimizer: any Optimizer, average: AveragedModel? = nil, progress: TrainingProgress,
        finished: Bool, configJSON: String
    ) throws -> SafeTensorsFile {
        var file = try weightsFile(model, configJSON: configJSON)
        if let average {
            for (name, shape, values) in average.average.stateDict() { file.tensors["ema.\(name)"] = try entry(values, shape: shape) }
            file.metadata["ema_updates"] = "\(average.updates)"
        }
        for (name, buffer) in model.namedBuffers(includingNonPersistent: true) where !buffer.persistent {
            file.tensors[name] = try entry(buffer.values, shape: buffer.shape)
        }
        let state = optimizer.state()
        for (key, values) in state.buffers {
            file.tensors["optimizer.\(key)"] = try TensorEntry(floats: values, shape: [values.count])
        }
        file.metadata["optimizer_step"] = "\(state.step)"
        file.metadata["epoch"] = "\(progress.epoch)"
        file.metadata["batch_index"] = "\(progress.batchIndex)"
        file.metadata["step"] = "\(progress.step)"
        file.metadata["epoch_loss_sum"] = "\(progress.epochLossSum)"
        file.metadata["epoch_correct"] = "\(progress.epochCorrect)"
        file.metadata["epoch_seen"] = "\(progress.epochSeen)"
        file.metadata["best_accuracy"] = "\(progress.bestAccuracy)"
        file.metadata["best_test_accuracy"] = "\(progress.bestTestAccuracy)"
        file.metadata["stopping_best"] = "\(progress.stoppingBest)"
        file.metadata["evaluations_without_improvement"] = "\(progress.evaluationsWithoutImprovement)"
        if let reason = progress.endedEarly { file.metadata["ended_early"] = reason }
        file.metadata["finished"] = finished ? "true" : "false"
        return file
    }

    /// The progress recorded in a checkpoint written by `writeState`.
    static func progress(of file: SafeTensorsFile) throws -> TrainingProgress {
        let url = URL(fileURLWithPath: file.source)
        func meta(_ key: String) throws -> String {
            guard let v = file.metadata[key] else {
                throw TrainingError.checkpoint(file: url.path, "metadata key \"\(key)\" is missing; is this a checkpoint.safetensors written by mnist-train?")
            }
            return v
        }
        func int(_ key: String) throws -> Int {
            guard let v = Int(try meta(key)), v >= 0 else {
                throw TrainingError.checkpoint(file: url.path, "metadata \"\(key)\" is \"\(try meta(key))\"; expected a non-negative integer")
            }
            return v
        }
        func double(_ key: String) throws -> Double {
            guard let v = Double(try meta(key)) else {
                throw TrainingError.checkpoint(file: url.path, "metadata \"\(key)\" is \"\(try meta(key))\"; expected a number")
            }
            return v
        }
        var p = TrainingProgress()
        p.epoch = try int("epoch")
        p.batchIndex = try int("batch_index")
        p.step = try int("step")
        p.epochLossSum = try double("epoch_loss_sum")
        p.epochCorrect = try int("epoch_correct")
        p.epochSeen = try int("epoch_seen")
        p.bestAccuracy = try double("best_accuracy")
        // Checkpoints written before validation splits and early stopping lack these.
        p.bestTestAccuracy = file.metadata["best_test_accuracy"] == nil ? p.bestAccuracy : try double("best_test_accuracy")
        p.stoppingBest = file.metadata["stopping_best"] == nil ? .nan : try double("stopping_best")
        p.evaluationsWithoutImprovement = file.metadata["evaluations_without_improvement"] == nil
            ? 0 : try int("evaluations_without_improvement")
        p.endedEarly = file.metadata["ended_early"]
        _ = try int("optimizer_step")
        return p
    }

    /// Restores a training state written by `writeState` into `model` (parameters and every
    /// buffer) and `optimizer`.
    static func restoreState(
        from file: SafeTensorsFile, model: Module, optimizer: any Optimizer, average: AveragedModel? = nil
    ) throws -> TrainingProgress {
        let url = URL(fileURLWithPath: file.source)
        try loadWeights(file, into: model, includingNonPersistent: true)
        if let average {
            guard let updates = file.metadata["ema_updates"].flatMap(Int.init) else {
                throw TrainingError.checkpoint(file: url.path, "metadata \"ema_updates\" is missing or not an integer; "
                    + "the config has ema but this checkpoint holds no averaged weights")
            }
            if updates > 0 { try loadWeights(file, into: average.average, prefix: "ema.") }
            average.restore(updates: updates)
        }
        let p = try progress(of: file)
        var buffers: [String: [Float]] = [:]
        for (name, entry) in file.tensors where name.hasPrefix("optimizer.") {
            buffers[String(name.dropFirst("optimizer.".count))] = try entry.floats()
        }
        let optimizerStep = Int(file.metadata["optimizer_step"] ?? "") ?? 0
        do { try optimizer.loadState(OptimizerState(step: optimizerStep, buffers: buffers)) } catch {
            throw TrainingError.checkpoint(file: url.path, "\(error)")
        }
        return p
    }
}

/// Errors of a training or evaluation run, each naming the file or setting involved.
public enum TrainingError: Error, CustomStringConvertible {
    case checkpoint(file: String, String)
    /// Weights holding NaN or infinity: `count` of the tensor's `of` values.
    case nonFiniteWeights(file: String, tensor: String, count: Int, of: Int)
    case nonFiniteLoss(step: Int, epoch: Int, loss: Float, learningRate: Double, lastCheckpoint: String?)
    /// `ranks`: the processes of an mpirun job (resumed with as many).
    case interrupted(signal: String, runDirectory: String, step: Int, ranks: Int = 1)
    case runDirectory(String)
    case data(String)
    /// The run would need more memory than the process may use.
    case memory(String)
    /// mpirun: this rank's own failure, which every rank learned of together, so that the
    /// job ends in order (printed by this rank only).
    case rankFailed(rank: Int, ranks: Int, host: String, String)
    /// mpirun: another rank failed (it printed why); printed by rank 0.
    case peerFailed(String)

    public var description: String {
        switch self {
        case let .checkpoint(file, detail):
            return "\(file): \(detail)"
        case let .nonFiniteWeights(file, tensor, count, total):
            return "\(file): tensor \"\(tensor)\" holds \(count) non-finite value(s) (NaN or infinity) of \(total); "
                + "these weights cannot be evaluated or trained"
        case let .nonFiniteLoss(step, epoch, loss, lr, checkpoint):
            return "the loss became \(loss.isNaN ? "NaN" : "\(loss)") at step \(step) (epoch \(epoch + 1)); training stopped. "
                + "The learning rate \(lr) is likely too high: lower it (--lr) and train again. "
                + (checkpoint.map { "The last good checkpoint is kept: \($0)" } ?? "No checkpoint had been written yet.")
        case let .interrupted(signal, dir, step, ranks):
            return "\(signal) received: stopped after step \(step) and saved the training state. "
                + "Resume with: \(ranks > 1 ? "mpirun -np \(ranks) " : "")mnist-train --resume \(shellQuoted(dir))"
        case let .runDirectory(detail):
            return detail
        case let .data(detail), let .memory(detail), let .peerFailed(detail):
            return detail
        case let .rankFailed(rank, ranks, host, detail):
            return "rank \(rank) of \(ranks) on \(host): \(detail)"
        }
    }

    /// The process exit code for this error.
    public var exitCode: Int32 {
        switch self {
        case let .interrupted(signal, _, _, _): return signal == "SIGTERM" ? 143 : 130
        case .nonFiniteLoss: return 3
        default: return 1
        }
    }
}

/// `path` as one shell word: as is when it holds only safe characters, else in single quotes.
func shellQuoted(_ path: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%")
    if !path.isEmpty && path.allSatisfy(safe.contains) { return path }
    return "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
