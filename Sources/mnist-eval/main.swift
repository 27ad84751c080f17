import ArgumentParser
import Foundation
import Training

@main
struct MNISTEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-eval",
        abstract: "Evaluate a trained checkpoint: accuracy, loss, confusion matrix, per-class scores, worst errors.",
        discussion: """
            The architecture comes from the config stored in the checkpoint (mnist-train writes it) or, \
            for weights exported elsewhere (e.g. by PyTorch), from --config.
            """)

    @Option(help: "The weights (.safetensors), e.g. runs/<run>/model.safetensors.") var checkpoint: String
    @Option(help: "Config describing the model (needed when the checkpoint has none stored).") var config: String?
    @Option(help: "Directory holding the four IDX files (default: the config's).") var dataDir: String?
    @Option(help: "test or train.") var split: String = "test"
    @Option(help: "Evaluation batch size (default: the config's test_batch_size).") var batchSize: Int?
    @Option(help: "Threads for the kernels (default: the config's).") var threads: Int?
    @Option(help: "How many of the most confident errors to list.") var worst: Int = 10
    @Option(help: "Write confusion.png and worst.png into this directory.") var saveImages: String?
    @Option(help: "Write every sample's log-probabilities and label to this .safetensors file.") var saveOutputs: String?
    @Flag(help: "Print one JSON object on stdout instead of the text report.") var json = false

    func run() throws {
        do {
            var options = EvalOptions(checkpoint: URL(fileURLWithPath: checkpoint))
            options.configFile = config.map { URL(fileURLWithPath: $0) }
            options.dataDirectory = dataDir.map { URL(fileURLWithPath: $0) }
            options.split = try EvalOptions.split(named: split)
            options.batchSize = batchSize
            options.threads = threads
            options.worstCount = worst
            options.imagesDirectory = saveImages.map { URL(fileURLWithPath: $0) }
            options.outputsFile = saveOutputs.map { URL(fileURLWithPath: $0) }
            let report = try EvalReport.run(options)
            print(json ? report.json : report.text)
            if !json {
                for path in report.imagesWritten { print("Wrote \(path)") }
            }
        } catch {
            FileHandle.standardError.write("mnist-eval: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
    }
}
