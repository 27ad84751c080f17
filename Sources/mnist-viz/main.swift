import ArgumentParser
import Foundation
import Plot
import Training

@main
struct MNISTViz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-viz",
        abstract: "Pictures of MNIST digits, trained filters, feature maps, training curves and confusion matrices.",
        subcommands: [Digits.self, Filters.self, SequenceCommand.self, Curves.self, Confusion.self])
}

/// Options shared by the subcommands that read a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "Config describing the model (for weights without a stored config).") var config: String?
    @Option(help: "Directory holding the four IDX files (default: the checkpoint's config).") var dataDir: String?
    @Option(help: "test or train.") var split: String = "test"

    var configURL: URL? { config.map { URL(fileURLWithPath: $0) } }
    var dataURL: URL? { dataDir.map { URL(fileURLWithPath: $0) } }
}

/// Runs `body`, printing the written path, or one error line on stderr with exit code 1.
func draw(to out: String, _ body: () throws -> Image) throws {
    do {
        let url = URL(fileURLWithPath: out)
        try Visualize.write(try body(), to: url)
        print("Wrote \(url.path)")
    } catch {
        FileHandle.standardError.write("mnist-viz: error: \(error)\n".data(using: .utf8)!)
        throw ExitCode(1)
    }
}

extension MNISTViz {
    struct Digits: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A grid of digits with their labels; with --checkpoint also the predictions (wrong ones in red).")
        @Option(help: "Weights to predict with (optional).") var checkpoint: String?
        @OptionGroup var model: ModelOptions
        @Option(help: "How many images.") var count: Int = 40
        @Option(help: "Index of the first image.") var start: Int = 0
        @Option(help: "Output PNG file.") var out: String

        func run() throws {
            try draw(to: out) {
                let loaded = try checkpoint.map {
                    try LoadedModel.load(checkpoint: URL(fileURLWithPath: $0), configFile: model.configURL)
                }
                return try Visualize.digits(model: loaded, dataDirectory: model.dataURL,
                                            split: try EvalOptions.split(named: model.split), start: start, count: count)
            }
        }
    }

    struct Filters: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A conv layer's filters in jet with a colorbar, or a linear layer's weight matrix as a heatmap.")
        @Option(help: "Trained weights.") var checkpoint: String
        @Option(help: "Config describing the model (for weights without a stored config).") var config: String?
        @Option(help: "Layer name (default: the first conv layer).") var layer: String?
        @Option(help: "For a conv layer with several input channels: which one.") var inputChannel: Int = 0
        @Option(help: "Output PNG file.") var out: String

        func run() throws {
            try draw(to: out) {
                let loaded = try LoadedModel.load(checkpoint: URL(fileURLWithPath: checkpoint),
                                                  configFile: config.map { URL(fileURLWithPath: $0) })
                return try Visualize.filters(model: loaded, layer: layer, inputChannel: inputChannel)
            }
        }
    }

    struct SequenceCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sequence",
            abstract: "One image through the network: input, conv and pool outputs, final outputs.")
        @Option(help: "Trained weights.") var checkpoint: String
        @OptionGroup var model: ModelOptions
        @Option(help: "Index of the image in the split.") var index: Int = 0
        @Option(help: "Output PNG file.") var out: String

        func run() throws {
            try draw(to: out) {
                let loaded = try LoadedModel.load(checkpoint: URL(fileURLWithPath: checkpoint), configFile: model.configURL)
                return try Visualize.sequence(model: loaded, dataDirectory: model.dataURL,
                                              split: try EvalOptions.split(named: model.split), index: index)
            }
        }
    }

    struct Curves: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Loss and accuracy per epoch from a run directory's metrics.jsonl.")
        @Option(name: .customLong("run"), help: "Run directory written by mnist-train.") var runDirectory: String
        @Option(help: "Output PNG file.") var out: String

        func run() throws {
            try draw(to: out) { try Visualize.curves(runDirectory: URL(fileURLWithPath: runDirectory)) }
        }
    }

    struct Confusion: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The confusion matrix of a checkpoint on a split.")
        @Option(help: "Trained weights.") var checkpoint: String
        @OptionGroup var model: ModelOptions
        @Option(help: "Output PNG file.") var out: String

        func run() throws {
            try draw(to: out) {
                try Visualize.confusion(checkpoint: URL(fileURLWithPath: checkpoint), configFile: model.configURL,
                                        dataDirectory: model.dataURL, split: try EvalOptions.split(named: model.split))
            }
        }
    }
}
