import ArgumentParser
import Distributed
import Foundation
import MNISTData
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

/// `mnist-train [train] --config FILE ...`: the training run. Numbers are parsed
/// `.unconditional`ly so that `--lr -1` reaches the range check (and its message) instead
/// of being taken for an option.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network from a JSON config (the default subcommand).",
        discussion: "Exit codes: 0 success, 1 error, 3 non-finite loss, 130/143 interrupted (checkpoint saved). "
            + "With --resume only --epochs, --max-steps, --no-max-steps, --data-dir, --allow-unverified-data, --quiet "
            + "and --json may be given; they are saved with the run. Layer types of model.layers: "
            + LayerRegistry.helpText + ".")

    @Option(help: "The run's JSON config (default \(TrainArguments.defaultConfig)).") var config: String?
    @Option(parsing: .unconditional, help: "Number of epochs (with --resume: extend the run to this many).") var epochs: Int?
    @Option(parsing: .unconditional, help: "Training batch size.") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Learning rate.") var lr: Double?
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Double?
    @Option(help: "sgd, adam or adamw.") var optimizer: String?
    @Option(parsing: .unconditional, help: "Seed for initialisation, shuffling and dropout.") var seed: Int?
    @Option(parsing: .unconditional, help: "Threads for the kernels and OpenBLAS.") var threads: Int?
    @Option(help: "Directory holding the four IDX files.") var dataDir: String?
    @Option(help: "Run directory: new or empty (default output_dir/<config name>-<time>).") var out: String?
    @Option(help: "Continue the run in this directory exactly where it stopped.") var resume: String?
    @Option(help: "Start from these weights (safetensors with PyTorch names).") var initFrom: String?
    @Option(parsing: .unconditional, help: "Stop after this many optimizer steps in all (saved with the run).") var maxSteps: Int?
    @Flag(help: "With --resume: drop the run's saved --max-steps and train all its epochs.") var noMaxSteps = false
    @Flag(help: "Visit the training set in file order.") var noShuffle = false
    @Option(parsing: .unconditional, help: "Stop once the validation (else test) accuracy reaches this fraction, e.g. 0.99.")
    var targetAccuracy: Double?
    @Flag(help: "Train on data files whose MD5 is not the published one.") var allowUnverifiedData = false
    @Flag(help: "Print nothing but errors (and the --json summary).") var quiet = false
    @Flag(help: "Print a JSON summary on stdout (logs go to stderr).") var json = false
    @Flag(help: "Under mpirun: sum the gradients in rank order, so that two jobs of the same size are bit-identical.")
    var deterministicReduce = false

    func run() throws {
        var arguments = TrainArguments()
        arguments.config = config
        arguments.epochs = epochs
        arguments.batchSize = batchSize
        arguments.lr = lr
        arguments.momentum = momentum
        arguments.optimizer = optimizer
        arguments.seed = seed
        arguments.threads = threads
        arguments.dataDir = dataDir
        arguments.out = out
        arguments.resume = resume
        arguments.initFrom = initFrom
        arguments.maxSteps = maxSteps
        arguments.noMaxSteps = noMaxSteps
        arguments.noShuffle = noShuffle
        arguments.targetAccuracy = targetAccuracy
        arguments.allowUnverifiedData = allowUnverifiedData
        arguments.quiet = quiet
        arguments.json = json
        arguments.deterministicReduce = deterministicReduce
        let group: ProcessGroup
        do { group = try ProcessGroup.current() } catch {
            FileHandle.standardError.write("mnist-train: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
        arguments.group = group
        do {
            let summary = try arguments.makeTrainer().run()
            if json && group.isRoot { print(summary.json) }
            group.finalize()
        } catch {
            throw ExitCode(JobFailure.report(error, group: group, tool: "mnist-train"))
        }
    }
}
