import Autograd
import Foundation
import MNISTData
import NN
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// The batch-norm CNN of `../shared/reference/bncnn_*` (configs/bncnn.json) from PyTorch's
/// initial weights, 10 steps of batch 32 in file order, as `mnist-train --init-from
/// bncnn_init.safetensors --max-steps 10 --batch-size 32 --no-shuffle` runs them: the
/// per-step losses, the final weights and running statistics, `num_batches_tracked`, the
/// eval-mode log-probabilities of the first 8 test images and the test accuracy.
struct BatchNormRunTests {
    struct Reference: Decodable {
        struct Run: Decodable { var losses: [Double]; var final_test_acc: Double; var final_eval_logprobs_first8: [[Double]] }
        var sgd: Run
        var adam: Run
    }

    @Test(arguments: ["sgd", "adam"])
    func reproducesPyTorch(_ optimizer: String) throws {
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: Shared.referenceDirectory.appendingPathComponent("bncnn_e2e.json")))
        let run = optimizer == "sgd" ? reference.sgd : reference.adam
        var arguments = TrainArguments()
        arguments.config = Shared.packageRoot.appendingPathComponent("configs/bncnn.json").path
        arguments.dataDir = Shared.mnistDirectory.path
        arguments.initFrom = Shared.referenceDirectory.appendingPathComponent("bncnn_init.safetensors").path
        arguments.maxSteps = 10
        arguments.batchSize = 32
        arguments.noShuffle = true
        arguments.optimizer = optimizer
        arguments.lr = optimizer == "sgd" ? 0.02 : 0.002
        arguments.quiet = true
        let out = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        arguments.out = out.path
        let trainer = try arguments.makeTrainer()
        var config = trainer.config
        config.logInterval = 1
        let summary = try Trainer(config: config, options: trainer.options).run()

        let losses = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "step" }.compactMap { ($0["loss"] as? NSNumber)?.doubleValue }
        if let message = compareClose(losses, run.losses, rtol: 0, atol: 1e-4, label: "\(optimizer) losses") {
            Issue.record(Comment(rawValue: message))
        }
        let expected = try SafeTensorsFile.read(from: Shared.referenceDirectory.appendingPathComponent("bncnn_\(optimizer)_final.safetensors"))
        let ours = try SafeTensorsFile.read(from: out.appendingPathComponent("model.safetensors"))
        #expect(Set(ours.tensors.keys) == Set(expected.tensors.keys))
        for (name, entry) in expected.tensors {
            let mine = try #require(ours.tensors[name], "missing \(name)")
            if entry.dtype == .I64 {
                let words = try mine.words()
                #expect(mine.dtype == .I64 && words == [10], "\(name)")
            } else if let message = compareClose(try mine.floats(), try entry.floats().map(Double.init), rtol: 0, atol: 1e-4, label: name) {
                Issue.record(Comment(rawValue: message))
            }
        }
        // Eval mode: the first 8 test images through the saved model.
        let loaded = try LoadedModel.load(checkpoint: out.appendingPathComponent("model.safetensors"))
        let test = try Dataset.load(directory: Shared.mnistDirectory, split: .test).prefix(8)
        let pixels = try Transform.normalized(config.normalization).apply(images: test.pixels(0..<8), count: 8, rows: 28, cols: 28)
        let logProbabilities = try withNoGrad { try loaded.model(Tensor(shape: [8, 1, 28, 28], data: pixels)) }
        if let message = compareClose(logProbabilities.scalars, run.final_eval_logprobs_first8.flatMap { $0 }, rtol: 0, atol: 1e-4,
                                      label: "\(optimizer) eval log-probabilities") {
            Issue.record(Comment(rawValue: message))
        }
        #expect(abs(summary.testAccuracy - run.final_test_acc) < 0.5e-4, "test accuracy \(summary.testAccuracy), PyTorch \(run.final_test_acc)")
    }
}
