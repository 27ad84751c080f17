/// Command-line values that override a config's (nil = keep the config's).
public struct ConfigOverrides: Sendable {
    public var epochs: Int?
    public var batchSize: Int?
    public var learningRate: Double?
    public var momentum: Double?
    public var optimizer: String?
    public var seed: Int?
    public var threads: Int?
    public var dataDirectory: String?
    public var noShuffle = false
    public var targetAccuracy: Double?
    public var deterministicReduce = false
    public init() {}

    /// Applies the overrides, checking each like the config file's value.
    public func apply(to config: inout TrainingConfig) throws {
        func fail(_ option: String, _ value: Any, _ expected: String) -> ConfigError {
            ConfigError(file: "command line", path: option, message: "got \(value); expected \(expected)")
        }
        if let v = epochs { guard (1...10_000).contains(v) else { throw fail("--epochs", v, "1...10000") }; config.epochs = v }
        if let v = batchSize { guard (1...65_536).contains(v) else { throw fail("--batch-size", v, "1...65536") }; config.batchSize = v }
        if let v = optimizer {
            guard ["sgd", "adam", "adamw"].contains(v) else { throw fail("--optimizer", v, "sgd, adam or adamw") }
            if v != config.optimizer.type {
                config.optimizer.type = v
                if v == "adamw" && config.optimizer.weightDecay == 0 { config.optimizer.weightDecay = 0.01 }
                if v != "sgd" { config.optimizer.momentum = 0; config.optimizer.nesterov = false }
            }
        }
        if let v = learningRate { guard v.isFinite, v >= 0, v <= 10_000 else { throw fail("--lr", v, "a learning rate in 0...10000") }; config.optimizer.lr = v }
        if let v = momentum {
            guard v.isFinite, (0...1).contains(v) else { throw fail("--momentum", v, "0...1") }
            guard config.optimizer.type == "sgd" else { throw fail("--momentum", v, "only with --optimizer sgd") }
            config.optimizer.momentum = v
        }
        if let v = seed { guard v >= 0, v <= Int(Int32.max) else { throw fail("--seed", v, "0...\(Int32.max)") }; config.seed = UInt64(v) }
        if let v = threads { guard (1...256).contains(v) else { throw fail("--threads", v, "1...256") }; config.threads = v }
        if let v = dataDirectory { config.data.directory = v }
        if noShuffle { config.shuffle = false }
        if deterministicReduce { config.deterministicReduce = true }
        if let v = targetAccuracy {
            guard v.isFinite, v > 0, v <= 1 else { throw fail("--target-accuracy", v, "a fraction in (0, 1], e.g. 0.99 for 99%") }
            config.targetAccuracy = v
        }
    }
}
