import Distributed
import Foundation

/// The training command line as plain values (nil = not given), and the policy that turns
/// it into a run: which options a new run takes, which a resumed run takes (those that
/// extend it or move its data, each saved with the run), and which it refuses.
public struct TrainArguments: Sendable {
    public static let defaultConfig = "configs/lenet.json"

    public var config: String?
    public var epochs: Int?
    public var batchSize: Int?
    public var lr: Double?
    public var momentum: Double?
    public var optimizer: String?
    public var seed: Int?
    public var threads: Int?
    public var dataDir: String?
    public var out: String?
    public var resume: String?
    public var initFrom: String?
    public var maxSteps: Int?
    public var noMaxSteps = false
    public var noShuffle = false
    public var targetAccuracy: Double?
    public var deterministicReduce = false
    public var allowUnverifiedData = false
    public var quiet = false
    public var json = false
    /// The processes of the job (`ProcessGroup.current()`: all of mpirun's, or this one).
    public var group = ProcessGroup.single
    public init() {}

    /// Options that would change what a resumed run computes, or where it lives: refused
    /// with `--resume` (the run continues with its saved config.json).
    var fixedOnResume: [(String, Bool)] {
        [("--config", config != nil), ("--batch-size", batchSize != nil), ("--lr", lr != nil),
         ("--momentum", momentum != nil), ("--optimizer", optimizer != nil), ("--seed", seed != nil),
         ("--threads", threads != nil), ("--out", out != nil), ("--init-from", initFrom != nil),
         ("--no-shuffle", noShuffle), ("--target-accuracy", targetAccuracy != nil),
         ("--deterministic-reduce", deterministicReduce)]
    }

    /// The trainer for these arguments, or the one-line refusal.
    public func makeTrainer() throws -> Trainer {
        func fail(_ option: String, _ message: String) -> ConfigError {
            ConfigError(file: "command line", path: option, message: message)
        }
        if let v = maxSteps, v < 1 { throw fail("--max-steps", "got \(v); expected at least 1") }
        if maxSteps != nil && noMaxSteps { throw fail("--no-max-steps", "cannot be combined with --max-steps") }
        if let v = epochs, !(1...10_000).contains(v) { throw fail("--epochs", "got \(v); expected 1...10000") }
        var options = RunOptions()
        options.maxSteps = maxSteps
        options.quiet = quiet
        options.json = json
        var configuration = TrainingConfig()
        if let resume {
            if let given = fixedOnResume.first(where: \.1) {
                throw fail(given.0, "cannot be used with --resume: the run continues with its saved config.json "
                    + "(a resumed run takes only --epochs, --max-steps, --no-max-steps, --data-dir, --allow-unverified-data, "
                    + "--quiet and --json)")
            }
            options.resumeDirectory = URL(fileURLWithPath: resume)
            options.epochs = epochs
            options.dataDirectory = dataDir
            options.removeMaxSteps = noMaxSteps
        } else {
            if noMaxSteps { throw fail("--no-max-steps", "only applies with --resume (a new run has no step limit unless given one)") }
            if let out, out.isEmpty { throw fail("--out", "the path is empty; give a directory for the run") }
            // Under mpirun the other ranks take rank 0's config (`Trainer.run`): their hosts
            // need not have the file.
            if group.isRoot {
                configuration = try TrainingConfig.load(from: URL(fileURLWithPath: config ?? Self.defaultConfig))
            }
            var overrides = ConfigOverrides()
            overrides.epochs = epochs
            overrides.batchSize = batchSize
            overrides.learningRate = lr
            overrides.momentum = momentum
            overrides.optimizer = optimizer
            overrides.seed = seed
            overrides.threads = threads
            overrides.dataDirectory = dataDir
            overrides.noShuffle = noShuffle
            overrides.targetAccuracy = targetAccuracy
            overrides.deterministicReduce = deterministicReduce
            try overrides.apply(to: &configuration)
            options.outputDirectory = out.map { URL(fileURLWithPath: $0) }
            options.initFrom = initFrom.map { URL(fileURLWithPath: $0) }
        }
        options.allowUnverifiedData = allowUnverifiedData
        options.group = group
        return try Trainer(config: configuration, options: options)
    }
}
