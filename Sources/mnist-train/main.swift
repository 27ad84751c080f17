import ArgumentParser
import Foundation
import Training

@main
struct MNISTTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-train",
        abstract: "Train convolutional networks on MNIST with a small autograd engine.",
        discussion: "Without a subcommand, trains: `mnist-train --config configs/lenet.json`. "
            + "`mnist-train help train` lists the training options.",
        subcommands: [Train.self, Download.self],
        defaultSubcommand: Train.self)
}

/// `mnist-train download`: fetch and verify the four MNIST files.
struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch the four MNIST files into a directory and check their MD5 sums.",
        discussion: "Mirrors are tried in order: ../shared/data/mnist when it exists, then MNIST_MIRRORS "
            + "(comma-separated URLs or directories) if set, else torchvision's mirrors.")

    @Option(help: "Where to put the files.") var dataDir: String = "data/mnist"
    @Option(name: .customLong("mirror"), help: "A mirror (URL, directory or file:// URL); repeatable.") var mirrors: [String] = []

    func run() throws {
        do {
            let lines = try downloadMNIST(into: dataDir, mirrors: mirrors)
            for line in lines { print(line) }
        } catch {
            FileHandle.standardError.write("mnist-train download: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
    }
}

/// `mnist-train [train] --config FILE ...`: the training run.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network from a JSON config (the default subcommand).",
        discussion: "Exit codes: 0 success, 1 error, 3 non-finite loss, 130/143 interrupted (checkpoint saved).")

    @Option(help: "The run's JSON config (see configs/).") var config: String = "configs/lenet.json"
    @Option(help: "Number of epochs.") var epochs: Int?
    @Option(help: "Training batch size.") var batchSize: Int?
    @Option(help: "Learning rate.") var lr: Double?
    @Option(help: "SGD momentum.") var momentum: Double?
    @Option(help: "sgd, adam or adamw.") var optimizer: String?
    @Option(help: "Seed for initialisation, shuffling and dropout.") var seed: Int?
    @Option(help: "Threads for the kernels and OpenBLAS.") var threads: Int?
    @Option(help: "Directory holding the four IDX files.") var dataDir: String?
    @Option(help: "Run directory (default runs/<config name>-<timestamp>).") var out: String?
    @Option(help: "Continue the run in this directory exactly where it stopped.") var resume: String?
    @Option(help: "Start from these weights (safetensors with PyTorch names).") var initFrom: String?
    @Option(help: "Stop after this many optimizer steps, then save and evaluate.") var maxSteps: Int?
    @Flag(help: "Visit the training set in file order.") var noShuffle = false
    @Flag(help: "Print nothing but errors (and the --json summary).") var quiet = false
    @Flag(help: "Print a JSON summary on stdout (logs go to stderr).") var json = false

    func run() throws {
        do {
            // With --resume the run directory's saved config is used (only --epochs may
            // extend it); settings that would change the run are refused.
            var configuration = TrainingConfig()
            if resume != nil {
                let changing: [(String, Any?)] = [("--batch-size", batchSize), ("--lr", lr), ("--momentum", momentum),
                                                  ("--optimizer", optimizer), ("--seed", seed), ("--threads", threads)]
                if let given = changing.first(where: { $0.1 != nil }) {
                    throw ConfigError(file: "command line", path: given.0,
                                      message: "cannot be changed when resuming: the run continues with its saved config.json")
                }
            } else {
                configuration = try TrainingConfig.load(from: URL(fileURLWithPath: config))
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
                try overrides.apply(to: &configuration)
            }
            var options = RunOptions()
            options.outputDirectory = out.map { URL(fileURLWithPath: $0) }
            options.resumeDirectory = resume.map { URL(fileURLWithPath: $0) }
            options.initFrom = initFrom.map { URL(fileURLWithPath: $0) }
            if let maxSteps, maxSteps < 1 {
                throw ConfigError(file: "command line", path: "--max-steps", message: "got \(maxSteps); expected at least 1")
            }
            options.maxSteps = maxSteps
            if resume != nil {
                options.epochs = epochs
                options.dataDirectory = dataDir
            }
            options.quiet = quiet
            options.json = json
            let summary = try Trainer(config: configuration, options: options).run()
            if json { print(summary.json) }
        } catch let error as TrainingError {
            FileHandle.standardError.write("mnist-train: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(error.exitCode)
        } catch {
            FileHandle.standardError.write("mnist-train: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
    }
}
