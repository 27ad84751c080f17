import Foundation
import NN
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// Module state in checkpoints: buffers are saved generically (Dropout's generator is one,
/// not persistent), model files keep PyTorch's state_dict keys only.
@Suite("Module state in checkpoints")
struct ModuleStateTests {
    static func dropoutConfig(_ run: TinyRun) throws -> TrainingConfig {
        var config = try run.config(epochs: 2, hidden: true, extra: #", "checkpoint": {"every_steps": 1}"#)
        config.layers.insert(TrainingConfig.Layer(DropoutLayer(p: 0.3), name: "drop"), at: 3)
        return config
    }

    @Test("the checkpoint holds Dropout's generator as a U64 tensor; model.safetensors holds parameters only")
    func dropoutStateIsABuffer() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        _ = try Trainer(config: try Self.dropoutConfig(run), options: run.options(out: "run", maxSteps: 3)).run()
        let state = try SafeTensorsFile.read(from: run.root.appendingPathComponent("run/checkpoint.safetensors"))
        let generator = try #require(state.tensors["drop.generator"])
        #expect(generator.dtype == .U64 && generator.shape == [4])
        #expect(state.metadata.keys.filter { $0.hasPrefix("rng.") }.isEmpty)
        let model = try SafeTensorsFile.read(from: run.root.appendingPathComponent("run/model.safetensors"))
        #expect(Set(model.tensors.keys) == ["hidden.weight", "hidden.bias", "fc.weight", "fc.bias"])
        // A checkpoint evaluates like a model file.
        #expect(throws: Never.self) { try EvalReport.run(EvalOptions(checkpoint: run.root.appendingPathComponent("run/checkpoint.safetensors"))) }
    }

    @Test("a checkpoint of the earlier format (generator in rng.* metadata) resumes bit-identically")
    func earlierCheckpointFormatResumes() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let config = try Self.dropoutConfig(run)
        _ = try Trainer(config: config, options: run.options(out: "whole")).run()
        _ = try Trainer(config: config, options: run.options(out: "parts", maxSteps: 3)).run()
        let url = run.root.appendingPathComponent("parts/checkpoint.safetensors")
        var file = try SafeTensorsFile.read(from: url)
        let words = try #require(file.tensors["drop.generator"]).words()
        file.tensors["drop.generator"] = nil
        file.metadata["rng.drop"] = words.map(String.init).joined(separator: ",")
        try file.write(to: url)
        _ = try Trainer(config: config, options: run.options(out: nil, resume: "parts", removeMaxSteps: true)).run()
        let whole = try SafeTensorsFile.read(from: run.root.appendingPathComponent("whole/model.safetensors"))
        let parts = try SafeTensorsFile.read(from: run.root.appendingPathComponent("parts/model.safetensors"))
        #expect(whole.tensors == parts.tensors)
    }

    @Test("a corrupt generator state in a checkpoint is refused, naming the buffer")
    func corruptGenerator() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let config = try Self.dropoutConfig(run)
        _ = try Trainer(config: config, options: run.options(out: "run", maxSteps: 2)).run()
        let url = run.root.appendingPathComponent("run/checkpoint.safetensors")
        var file = try SafeTensorsFile.read(from: url)
        file.tensors["drop.generator"] = try TensorEntry(uint64s: [0, 0, 0, 0], shape: [4])
        try file.write(to: url)
        let message = try #require(run.failure(config, run.options(out: nil, resume: "run", removeMaxSteps: true)))
        #expect(message.contains("drop.generator: not a valid xoshiro256** state"), "\(message)")
    }

    @Test("a batch-norm model stopped mid-epoch and resumed ends bit-identical, running statistics and counter included")
    func batchNormResumes() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        var config = try run.config(epochs: 2, hidden: true, extra: #", "checkpoint": {"every_steps": 1}"#)
        config.layers.insert(TrainingConfig.Layer(BatchNorm1dLayer(), name: "bn"), at: 2)
        _ = try Trainer(config: config, options: run.options(out: "whole")).run()
        _ = try Trainer(config: config, options: run.options(out: "parts", maxSteps: 3)).run()
        _ = try Trainer(config: config, options: run.options(out: nil, resume: "parts", removeMaxSteps: true)).run()
        let whole = try SafeTensorsFile.read(from: run.root.appendingPathComponent("whole/model.safetensors"))
        let parts = try SafeTensorsFile.read(from: run.root.appendingPathComponent("parts/model.safetensors"))
        #expect(whole.tensors == parts.tensors)
        #expect(try whole.tensors["bn.num_batches_tracked"]?.words() == [8])  // 2 epochs of 4 batches
        #expect(Set(whole.tensors.keys).isSuperset(of: ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]))
    }

    @Test("one_cycle sets each step's rate and momentum, resumes exactly, and refuses an SGD without momentum")
    func oneCycleRun() throws {
        let run = try TinyRun()
        defer { try? FileManager.default.removeItem(at: run.root) }
        let extra = #", "checkpoint": {"every_steps": 1}, "label_smoothing": 0.1, "scheduler": {"type": "one_cycle", "max_lr": 0.1}"#
        let config = try run.config(epochs: 2, extra: extra)
        _ = try Trainer(config: config, options: run.options(out: "whole")).run()
        let saved = try TrainingConfig.load(from: run.root.appendingPathComponent("whole/config.json"))
        guard case let .oneCycle(cycle) = saved.schedule else { Issue.record("not one_cycle"); return }
        #expect(cycle.totalSteps == 8)  // 2 epochs of 16 images in batches of 4, resolved and saved
        _ = try Trainer(config: config, options: run.options(out: "parts", maxSteps: 3)).run()
        _ = try Trainer(config: config, options: run.options(out: nil, resume: "parts", removeMaxSteps: true)).run()
        let whole = try SafeTensorsFile.read(from: run.root.appendingPathComponent("whole/model.safetensors"))
        let parts = try SafeTensorsFile.read(from: run.root.appendingPathComponent("parts/model.safetensors"))
        #expect(whole.tensors == parts.tensors)
        let lrs = try String(contentsOf: run.root.appendingPathComponent("whole/metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["kind"] as? String == "step" }.compactMap { ($0["lr"] as? NSNumber)?.doubleValue }
        // The same formula compiled into the test (for the generic CPU) may round the last bit differently.
        #expect(compareClose(lrs, (0..<8).map { cycle.values(at: $0).lr }, rtol: 1e-12, atol: 0) == nil)
        var still = try run.config(epochs: 1, lr: 0.05, extra: #", "scheduler": {"type": "one_cycle", "max_lr": 0.1}"#)
        still.optimizer.momentum = 0
        #expect(run.failure(still, run.options(out: "y"))?.contains("scheduler.cycle_momentum") == true)
    }
}
