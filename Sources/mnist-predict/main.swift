import ArgumentParser
import Foundation
import Training

@main
struct MNISTPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-predict",
        abstract: "Classify your own images of digits (PNG of any kind, PGM) with a trained checkpoint.",
        discussion: """
            Each image is prepared the way MNIST was made: gray (transparency over white), inverted when \
            the background is light, cropped to the ink, scaled to fit 20x20 keeping its aspect ratio, and \
            centred by its centre of mass in 28x28. Exit status 1 when any file could not be classified.
            """)

    @Option(help: "The weights (.safetensors), e.g. runs/<run>/model.safetensors.") var checkpoint: String
    @Option(help: "Config describing the model (needed when the checkpoint has none stored).") var config: String?
    @Option(help: "Also draw each image beside the 28x28 the model saw, into this PNG file.") var show: String?
    @Flag(help: "One JSON object per line: file, prediction, probabilities.") var json = false
    @Argument(help: "Image files (.png, .pgm).") var images: [String]

    func run() throws {
        var failed = false
        do {
            let results = try Predictor.predict(checkpoint: URL(fileURLWithPath: checkpoint),
                                                configFile: config.map { URL(fileURLWithPath: $0) }, files: images)
            var shown: [Prediction] = []
            for result in results {
                switch result {
                case let .success(prediction):
                    print(json ? prediction.json : prediction.text)
                    shown.append(prediction)
                case let .failure(error):
                    failed = true
                    FileHandle.standardError.write("mnist-predict: error: \(error)\n".data(using: .utf8)!)
                }
            }
            if let show, !shown.isEmpty {
                try Predictor.figure(shown).write(to: URL(fileURLWithPath: show))
                if !json { print("Wrote \(show)") }
            }
        } catch {
            FileHandle.standardError.write("mnist-predict: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
        if failed { throw ExitCode(1) }
    }
}
