import Foundation
import MNISTData
import NN
import Optim

/// A training run's whole configuration, decoded strictly from JSON (see `configs/`).
/// Values are plain data; `json` writes the resolved configuration back out.
public struct TrainingConfig: Sendable, Equatable {
    public struct DataSection: Sendable, Equatable {
        /// `mnist`, `fashion-mnist` or `kmnist`: the same file format.
        public var dataset = "mnist"
        /// Where the four IDX files are (relative paths are relative to the working directory).
        public var directory = "data/mnist"
        public var mean = 0.1307
        public var std = 0.3081
        /// Fetch missing files from the mirrors before training.
        public var download = true
        public var mirrors: [String] = []
        /// Random affine augmentation of training images, in one resampling: shifts
        /// (whole pixels), rotations (degrees) and scalings (a factor drawn from
        /// `augmentScale`); 0 and 1...1 = off.
        public var augmentShift = 0
        public var augmentRotation = 0.0
        public var augmentScale: ClosedRange<Double> = 1...1
        public var augmentHorizontalFlip = false
        /// Hold out the last N training images as a validation split (0 = none): the
        /// same images every run, never trained on, evaluated like the test set.
        public var validation = 0
        /// Use only the first N training / test images (nil = all).
        public var trainLimit: Int?
        public var testLimit: Int?
        /// Check the files' MD5 against the published ones before training (false:
        /// `--allow-unverified-data`).
        public var verify = true
    }

    /// One entry of `model.layers`: its name (which prefixes its parameters) and its
    /// kind's settings (`LayerKinds.swift`).
    public struct Layer: Sendable, Equatable {
        public var name: String?
        public var kind: any LayerKind

        public init(_ kind: any LayerKind, name: String? = nil) {
            self.kind = kind
            self.name = name
        }

        /// The config's `type`.
        public var type: String { Swift.type(of: kind).type }

        /// The layer's JSON object: `type`, `name`, then the kind's keys.
        var json: String {
            var fields: [(String, Any)] = [("type", type)]
            if let name { fields.append(("name", name)) }
            fields += kind.fields
            return jsonObject(fields)
        }

        public static func == (a: Layer, b: Layer) -> Bool { a.json == b.json }
    }

    public struct OptimizerSection: Sendable, Equatable {
        public var type = "sgd"
        public var lr = 0.01
        public var momentum = 0.0
        public var dampening = 0.0
        public var nesterov = false
        public var weightDecay = 0.0
        public var betas = [0.9, 0.999]
        public var eps = 1e-8
    }

    public var name = "run"
    public var data = DataSection()
    /// The input of one sample: `[channels, height, width]`.
    public var inputShape = [1, 28, 28]
    public var layers: [Layer] = []
    /// `early_stopping`: stop when the selection metric has not improved by more than
    /// `minDelta` for `patience` evaluations at epoch ends.
    public struct EarlyStopping: Sendable, Equatable {
        public enum Metric: String, Sendable, CaseIterable { case accuracy, loss }
        public var patience: Int
        public var minDelta = 0.0
        public var metric = Metric.accuracy
    }

    public var optimizer = OptimizerSection()
    public var schedule: LearningRateSchedule = .constant
    /// A linear warm-up in front of the schedule: the rate is multiplied by a factor that
    /// rises from `warmupStartFactor` to 1 over the first `warmupSteps` optimizer steps
    /// (PyTorch's `LinearLR(start_factor, total_iters)` stepped per batch, chained).
    public var warmupSteps = 0
    public var warmupStartFactor = 1.0 / 3
    /// Keep an exponential moving average of the weights and buffers with this decay
    /// (PyTorch's `AveragedModel` with `get_ema_multi_avg_fn(decay)`, `use_buffers=True`),
    /// updated after every step; nil = none.
    public var emaDecay: Double?
    public var earlyStopping: EarlyStopping?
    /// Stop once the validation (else test) accuracy reaches this fraction.
    public var targetAccuracy: Double?
    /// Also evaluate every N steps (0: only at the end of each epoch).
    public var evalEverySteps = 0
    public var batchSize = 64
    public var testBatchSize = 100
    public var epochs = 1
    /// Stop after this many optimizer steps in all (nil: train all `epochs`); saved with
    /// the run so that a resumed run stops at the same step.
    public var maxSteps: Int?
    /// PyTorch's `label_smoothing` of the loss (0: none).
    public var labelSmoothing = 0.0
    public var seed: UInt64 = 1
    public var threads = 2
    public var outputDirectory = "runs"
    /// Also write the training state every N steps (0: only at the end of each epoch).
    public var checkpointEverySteps = 0
    public var logInterval = 100
    public var shuffle = true
    /// Data-parallel training (mpirun): sum the gradients in rank order (an all-gather and
    /// a fixed-order sum) instead of `MPI_Allreduce`, so that two jobs with the same number
    /// of processes are bit-identical whatever algorithm Open MPI picks. Ignored without mpirun.
    public var deterministicReduce = false

    public init() {}
}

// MARK: - Decoding

extension TrainingConfig {

    /// Reads and checks a config file.
    public static func load(from url: URL) throws -> TrainingConfig {
        let data: Data
        do { data = try FileProblem.read(url) } catch {
            throw ConfigError(file: url.path, path: "", message: "cannot read the config: \(error.reason)")
        }
        // A config without a "name" is named after its file.
        return try decode(data, file: url.path, defaultName: url.deletingPathExtension().lastPathComponent)
    }

    /// Decodes a config from JSON; `file` names it in errors.
    public static func decode(_ data: Data, file: String, defaultName: String = "run") throws -> TrainingConfig {
        let root = try JSONObjectReader.parse(data, file: file)
        var c = TrainingConfig()
        c.name = try root.string("name", default: defaultName)
        if let d = try root.object("data") {
            c.data.dataset = try d.string("dataset", default: "mnist", oneOf: ["mnist", "fashion-mnist", "kmnist"])
            c.data.directory = try d.string("directory", default: c.data.dataset == "mnist" ? "data/mnist" : "data/\(c.data.dataset)")
            c.data.mean = try d.double("mean", default: 0.1307, -1e6...1e6)
            c.data.std = try d.double("std", default: 0.3081, 1e-12...1e6, allowed: "a number > 0")
            c.data.download = try d.bool("download", default: true)
            c.data.mirrors = try d.strings("mirrors") ?? []
            if let a = try d.object("augmentation") {
                c.data.augmentShift = try a.int("max_shift", default: 0, 0...8)
                c.data.augmentRotation = try a.double("max_rotation_degrees", default: 0, 0...45)
                let scale = try a.doubles("scale", count: 2, default: [1, 1])
                guard scale[0] > 0, scale[0] <= scale[1], scale[1] <= 4 else {
                    throw a.error("scale", "is \(scale); expected [min, max] with 0 < min <= max <= 4")
                }
                c.data.augmentScale = scale[0]...scale[1]
                c.data.augmentHorizontalFlip = try a.bool("horizontal_flip", default: false)
                try a.finish()
            }
            c.data.trainLimit = try d.optionalInt("train_limit", 1...10_000_000)
            c.data.testLimit = try d.optionalInt("test_limit", 1...10_000_000)
            c.data.validation = try d.int("validation", default: 0, 0...10_000_000)
            c.data.verify = try d.bool("verify", default: true)
            try d.finish()
        }
        if let m = try root.object("model") {
            c.inputShape = m.has("input_shape") ? try m.ints("input_shape", count: 3) : { _ = try? m.optionalString("input_shape"); return c.inputShape }()
            c.layers = try m.objects("layers").map(decodeLayer)
            guard !c.layers.isEmpty else { throw m.error("layers", "is empty; expected at least one layer") }
            try m.finish()
        } else {
            throw ConfigError(file: file, path: "model", message: "missing; expected an object with \"layers\"")
        }
        if let o = try root.object("optimizer") {
            c.optimizer.type = try o.string("type", default: "sgd", oneOf: ["sgd", "adam", "adamw"])
            c.optimizer.lr = try o.double("lr", default: c.optimizer.type == "sgd" ? 0.01 : 0.001, 0...10_000, allowed: "a learning rate in 0...10000")
            if c.optimizer.type == "sgd" {
                c.optimizer.momentum = try o.double("momentum", default: 0, 0...1)
                c.optimizer.dampening = try o.double("dampening", default: 0, 0...1)
                c.optimizer.nesterov = try o.bool("nesterov", default: false)
                if c.optimizer.nesterov && (c.optimizer.momentum <= 0 || c.optimizer.dampening != 0) {
                    throw o.error("nesterov", "requires momentum > 0 and dampening 0")
                }
            } else {
                c.optimizer.betas = try o.doubles("betas", count: 2, default: [0.9, 0.999])
                for (i, b) in c.optimizer.betas.enumerated() where !(0..<1).contains(b) {
                    throw o.error("betas", "beta\(i + 1) is \(b); expected values in [0, 1)")
                }
                c.optimizer.eps = try o.double("eps", default: 1e-8, 0...1)
            }
            c.optimizer.weightDecay = try o.double("weight_decay", default: c.optimizer.type == "adamw" ? 0.01 : 0, 0...1)
            try o.finish()
        }
        if let s = try root.object("scheduler") {
            switch try s.string("type", oneOf: ["constant", "step", "exponential", "cosine", "one_cycle"]) {
            case "one_cycle": c.schedule = .oneCycle(try decodeOneCycle(s))
            case "step": c.schedule = .step(stepSize: try s.int("step_size", default: 1, 1...100_000), gamma: try s.double("gamma", default: 0.1, 0...1))
            case "exponential": c.schedule = .exponential(gamma: try s.double("gamma", 0...1))
            case "cosine": c.schedule = .cosine(tMax: try s.int("t_max", 1...100_000), etaMin: try s.double("eta_min", default: 0, 0...10))
            default: c.schedule = .constant
            }
            c.warmupSteps = try s.int("warmup_steps", default: 0, 0...1_000_000_000)
            c.warmupStartFactor = try s.double("warmup_start_factor", default: 1.0 / 3, 0...1)
            if c.warmupSteps > 0, case .oneCycle = c.schedule {
                throw s.error("warmup_steps", "is \(c.warmupSteps), but one_cycle has its own warm-up (pct_start); "
                    + "leave warmup_steps out or use another schedule")
            }
            try s.finish()
        }
        c.batchSize = try root.int("batch_size", default: 64, 1...65_536)
        c.testBatchSize = try root.int("test_batch_size", default: 100, 1...65_536)
        c.epochs = try root.int("epochs", default: 1, 1...10_000)
        c.maxSteps = try root.optionalInt("max_steps", 1...1_000_000_000)
        c.labelSmoothing = try root.double("label_smoothing", default: 0, 0...1)
        if let e = try root.object("ema") {
            c.emaDecay = try e.double("decay", 0...1, allowed: "a decay in [0, 1), e.g. 0.999")
            if c.emaDecay == 1 { throw e.error("decay", "is 1, which would never move the average; expected a value in [0, 1)") }
            try e.finish()
        }
        if let e = try root.object("early_stopping") {
            var stopping = EarlyStopping(patience: try e.int("patience", 1...100_000))
            stopping.minDelta = try e.double("min_delta", default: 0, 0...1_000)
            stopping.metric = EarlyStopping.Metric(rawValue: try e.string("metric", default: "accuracy", oneOf: ["accuracy", "loss"])) ?? .accuracy
            try e.finish()
            c.earlyStopping = stopping
        }
        c.targetAccuracy = try root.optionalDouble("target_accuracy", 0...1, allowed: "a fraction in (0, 1], e.g. 0.99 for 99%")
        if c.targetAccuracy == 0 { throw root.error("target_accuracy", "is 0; expected a fraction in (0, 1], e.g. 0.99 for 99%") }
        c.evalEverySteps = try root.int("eval_every_steps", default: 0, 0...1_000_000_000)
        c.seed = UInt64(try root.int("seed", default: 1, 0...Int(Int32.max)))
        c.threads = try root.int("threads", default: 2, 1...256)
        c.outputDirectory = try root.string("output_dir", default: "runs")
        if let k = try root.object("checkpoint") {
            c.checkpointEverySteps = try k.int("every_steps", default: 0, 0...10_000_000)
            try k.finish()
        }
        c.logInterval = try root.int("log_interval", default: 100, 1...10_000_000)
        c.shuffle = try root.bool("shuffle", default: true)
        c.deterministicReduce = try root.bool("deterministic_reduce", default: false)
        try root.finish()
        return c
    }

    /// `one_cycle`: OneCycleLR's arguments; `total_steps` 0 or absent = the run's steps
    /// (resolved by the trainer and saved).
    static func decodeOneCycle(_ s: JSONObjectReader) throws -> OneCycle {
        var cycle = OneCycle(maxLR: try s.double("max_lr", 0...10_000), totalSteps: try s.int("total_steps", default: 0, 0...1_000_000_000))
        cycle.pctStart = try s.double("pct_start", default: 0.3, 0...1)
        cycle.anneal = OneCycle.Anneal(rawValue: try s.string("anneal_strategy", default: "cos", oneOf: ["cos", "linear"])) ?? .cos
        cycle.divFactor = try s.double("div_factor", default: 25, 1e-6...1e12)
        cycle.finalDivFactor = try s.double("final_div_factor", default: 1e4, 1e-6...1e12)
        cycle.threePhase = try s.bool("three_phase", default: false)
        cycle.cycleMomentum = try s.bool("cycle_momentum", default: true)
        cycle.baseMomentum = try s.double("base_momentum", default: 0.85, 0...1)
        cycle.maxMomentum = try s.double("max_momentum", default: 0.95, 0...1)
        return cycle
    }

    static func decodeLayer(_ r: JSONObjectReader) throws -> Layer {
        let type = try r.string("type", oneOf: LayerRegistry.types)
        let name = try r.optionalString("name")
        if let name, name.isEmpty || name.contains(".") {
            throw r.error("name", "\"\(name)\" is not a valid layer name (non-empty, no dots)")
        }
        if let name, ["optimizer", "ema", "ranks"].contains(name) {
            throw r.error("name", "\"\(name)\" is reserved (training checkpoints keep the optimizer's state, the averaged "
                + "weights and other processes' random states under it); choose another name")
        }
        let kind = try LayerRegistry.kind(type)!.init(reading: r)
        try r.finish()
        return Layer(kind, name: name)
    }

    /// The training images as the DataLoader sees them.
    public var normalization: Normalization { Normalization(mean: Float(data.mean), std: Float(data.std)) }
}


// MARK: - Encoding

extension TrainingConfig {
    /// The resolved configuration as JSON in the same schema `decode` reads (one line).
    public var json: String {
        let layerJSON: [RawJSON] = layers.map { RawJSON(text: $0.json) }
        var dataFields: [(String, Any)] = [
            ("dataset", data.dataset), ("directory", data.directory), ("mean", data.mean), ("std", data.std),
            ("download", data.download), ("mirrors", RawJSON(text: "[" + data.mirrors.map(jsonString).joined(separator: ", ") + "]")),
            ("augmentation", RawJSON(text: jsonObject(["max_shift": data.augmentShift, "max_rotation_degrees": data.augmentRotation,
                                                       "scale": [data.augmentScale.lowerBound, data.augmentScale.upperBound],
                                                       "horizontal_flip": data.augmentHorizontalFlip]))),
        ]
        if data.validation > 0 { dataFields.append(("validation", data.validation)) }
        if let n = data.trainLimit { dataFields.append(("train_limit", n)) }
        if let n = data.testLimit { dataFields.append(("test_limit", n)) }
        if !data.verify { dataFields.append(("verify", false)) }
        var optimizerFields: [(String, Any)] = [("type", optimizer.type), ("lr", optimizer.lr)]
        if optimizer.type == "sgd" {
            optimizerFields += [("momentum", optimizer.momentum), ("dampening", optimizer.dampening), ("nesterov", optimizer.nesterov)]
        } else {
            optimizerFields += [("betas", optimizer.betas), ("eps", optimizer.eps)]
        }
        optimizerFields.append(("weight_decay", optimizer.weightDecay))
        var scheduleJSON: String
        switch schedule {
        case .constant: scheduleJSON = jsonObject(["type": "constant"])
        case let .step(s, g): scheduleJSON = jsonObject(["type": "step", "step_size": s, "gamma": g])
        case let .exponential(g): scheduleJSON = jsonObject(["type": "exponential", "gamma": g])
        case let .cosine(t, e): scheduleJSON = jsonObject(["type": "cosine", "t_max": t, "eta_min": e])
        case let .oneCycle(c):
            scheduleJSON = jsonObject([
                "type": "one_cycle", "max_lr": c.maxLR, "total_steps": c.totalSteps, "pct_start": c.pctStart,
                "anneal_strategy": c.anneal.rawValue, "div_factor": c.divFactor, "final_div_factor": c.finalDivFactor,
                "three_phase": c.threePhase, "cycle_momentum": c.cycleMomentum, "base_momentum": c.baseMomentum,
                "max_momentum": c.maxMomentum,
            ])
        }
        if warmupSteps > 0 {
            scheduleJSON = String(scheduleJSON.dropLast()) + ", \"warmup_steps\": \(jsonValue(warmupSteps)), "
                + "\"warmup_start_factor\": \(jsonValue(warmupStartFactor))}"
        }
        func object(_ fields: [(String, Any)]) -> RawJSON { RawJSON(text: jsonObject(fields)) }
        var topFields: [(String, Any)] = [
            ("name", name), ("data", object(dataFields)),
            ("model", object([("input_shape", inputShape), ("layers", layerJSON as [Any])])),
            ("optimizer", object(optimizerFields)), ("scheduler", RawJSON(text: scheduleJSON)),
            ("batch_size", batchSize), ("test_batch_size", testBatchSize), ("epochs", epochs),
        ]
        if let maxSteps { topFields.append(("max_steps", maxSteps)) }
        if labelSmoothing != 0 { topFields.append(("label_smoothing", labelSmoothing)) }
        if let emaDecay { topFields.append(("ema", RawJSON(text: jsonObject(["decay": emaDecay])))) }
        if let e = earlyStopping {
            topFields.append(("early_stopping", object([("patience", e.patience), ("min_delta", e.minDelta), ("metric", e.metric.rawValue)])))
        }
        if let targetAccuracy { topFields.append(("target_accuracy", targetAccuracy)) }
        if evalEverySteps > 0 { topFields.append(("eval_every_steps", evalEverySteps)) }
        topFields += [
            ("seed", Int(seed)), ("threads", threads), ("output_dir", outputDirectory),
            ("checkpoint", RawJSON(text: jsonObject(["every_steps": checkpointEverySteps]))),
            ("log_interval", logInterval), ("shuffle", shuffle),
        ]
        if deterministicReduce { topFields.append(("deterministic_reduce", true)) }
        return object(topFields).text
    }
}
