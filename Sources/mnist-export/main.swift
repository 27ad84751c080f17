import ArgumentParser
import Foundation
import Training

@main
struct MNISTExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-export",
        abstract: "Export a checkpoint's network to ONNX (opset 17): input [N, 1, 28, 28] of normalized images.",
        discussion: """
            The architecture comes from the config stored in the checkpoint (or --config). Batch norm is \
            exported in inference form, dropout as the identity; the normalization and the config go into \
            the model's metadata_props.
            """)

    @Option(help: "The weights (.safetensors), e.g. runs/<run>/model.safetensors.") var checkpoint: String
    @Option(help: "Config describing the model (needed when the checkpoint has none stored).") var config: String?
    @Option(help: "The ONNX file to write (.onnx).") var out: String

    func run() throws {
        do {
            let result = try ONNXExport.run(checkpoint: URL(fileURLWithPath: checkpoint), configFile: config.map { URL(fileURLWithPath: $0) },
                                            output: URL(fileURLWithPath: out))
            print("Wrote \(out) (\(result.bytes) bytes; nodes: \(result.opTypes.joined(separator: ", ")))")
        } catch {
            FileHandle.standardError.write("mnist-export: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
    }
}
