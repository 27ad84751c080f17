import Foundation
import MNISTData
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// The recipe pieces of a modern small CNN on real MNIST: a linear warm-up, a validation
/// split with early stopping, a target accuracy, weight averaging (EMA) and random scaling.
struct ModernTrainingTests {
    static func records(_ url: URL) throws -> [[String: Any]] { try RunSafetyTests.records(url) }

    static func number(_ record: [String: Any], _ key: String) -> Double? { (record[key] as? NSNumber)?.doubleValue }

    @Test("warm-up follows LinearLR(start_factor, total_iters) per step, then the epoch's rate")
    func warmupIsLinearPerStep() throws {
        // LinearLR(start_factor=0.25, total_iters=4): 0.25, 0.4375, 0.625, 0.8125, 1, 1, …
        #expect((0..<6).map { warmupFactor(step: $0, steps: 4, startFactor: 0.25) } == [0.25, 0.4375, 0.625, 0.8125, 1, 1])
        var config = try TrainerTests.smokeConfig()
        config.logInterval = 1
        config.warmupSteps = 4
        config.warmupStartFactor = 0.25
        let out = try makeTemporaryDirectory()
        _ = try TrainerTests.run(config, out: out, maxSteps: 6)
        let lrs = try Self.records(out).filter { $0["kind"] as? String == "step" }.compactMap { Self.number($0, "lr") }
        #expect(lrs == [0.0025, 0.004375, 0.00625, 0.008125, 0.01, 0.01])
    }

    @Test("an epoch's line reports the rate of its last step, not the epoch schedule's, under a warm-up")
    func epochLineReportsTheLastStepsRate() throws {
        var config = try TrainerTests.smokeConfig()  // 512 images, batch 64: 8 steps an epoch
        config.logInterval = 1
        config.epochs = 1
        config.warmupSteps = 10  // still warming up when the epoch ends
        config.warmupStartFactor = 0.25
        let out = try makeTemporaryDirectory()
        _ = try TrainerTests.run(config, out: out)
        let records = try Self.records(out)
        let steps = records.filter { $0["kind"] as? String == "step" }.compactMap { Self.number($0, "lr") }
        let epochs = records.filter { $0["kind"] as? String == "epoch" }.compactMap { Self.number($0, "lr") }
        #expect(steps.count == 8 && epochs.count == 1)
        // Step 8 (index 7) of LinearLR(0.25, 10): 0.01 * (0.25 + 0.75 * 7 / 10).
        #expect(abs(steps[7] - 0.00775) < 1e-12)
        #expect(epochs == [steps[7]])
    }

    @Test("data.validation holds out the last images; early stopping ends the run and a resume finds it complete")
    func validationSplitAndEarlyStopping() throws {
        var config = try TrainerTests.smokeConfig()
        config.data.validation = 128
        config.optimizer.lr = 0  // nothing improves after the first epoch
        config.epochs = 6
        config.earlyStopping = .init(patience: 2, minDelta: 0, metric: .loss)
        let out = try makeTemporaryDirectory()
        let summary = try TrainerTests.run(config, out: out)
        #expect(summary.stopReason == "early_stopping")
        #expect(summary.epochsCompleted == 3 && summary.steps == 3 * 6)  // 384 training images, batch 64
        #expect(summary.bestSelection == "validation accuracy")
        let epochs = try Self.records(out).filter { $0["kind"] as? String == "epoch" }
        #expect(epochs.count == 3 && epochs.allSatisfy { Self.number($0, "validation_accuracy") != nil })
        // The validation images are the last 128 of the 512 used: evaluating them gives the same numbers.
        let train = try Dataset.load(directory: Shared.mnistDirectory, split: .train).prefix(512)
        let held = try train.holdingOut(last: 128, as: "validation").heldOut
        #expect(held.labels == Array(train.labels[384...]))
        let model = try ModelBuilder.build(config, seed: 1)
        try Checkpoint.loadWeights(SafeTensorsFile.read(from: out.appendingPathComponent("model.safetensors")), into: model)
        let evaluation = try Evaluator.evaluate(model, dataset: held, batchSize: 100, normalization: config.normalization,
                                                logProbabilities: true)
        #expect(evaluation.accuracy == Self.number(epochs[2], "validation_accuracy"))
        #expect(evaluation.accuracy == summary.validationAccuracy)
        let again = try TrainerTests.run(config, out: out, resume: true)
        #expect(again.stopReason == "already_complete" && again.steps == summary.steps)
    }

    @Test("target_accuracy with eval_every_steps stops within the epoch at the first evaluation that reaches it")
    func targetAccuracyStopsEarly() throws {
        var config = try TrainerTests.smokeConfig()
        config.targetAccuracy = 0.5
        config.evalEverySteps = 2
        config.epochs = 3
        let out = try makeTemporaryDirectory()
        let summary = try TrainerTests.run(config, out: out)
        #expect(summary.stopReason == "target_accuracy")
        #expect(summary.steps < 24 && summary.steps % 2 == 0, "stopped at step \(summary.steps)")
        #expect(summary.testAccuracy >= 0.5 && summary.bestAccuracy >= 0.5)
        let records = try Self.records(out)
        let evaluations = records.filter { ["eval", "epoch"].contains($0["kind"] as? String) }
        #expect(evaluations.last.flatMap { Self.number($0, "test_accuracy") }.map { $0 >= 0.5 } == true)
        #expect(evaluations.dropLast().allSatisfy { (Self.number($0, "test_accuracy") ?? 1) < 0.5 })
        #expect(evaluations.last.flatMap { $0["step"] as? Int } == summary.steps)
    }

    @Test("ema: the averaged weights are evaluated, chosen as best, saved, and resume bit-identically")
    func emaIsEvaluatedSavedAndResumable() throws {
        var config = try TrainerTests.smokeConfig()
        config.emaDecay = 0.9
        let whole = try makeTemporaryDirectory(), parts = try makeTemporaryDirectory()
        let full = try TrainerTests.run(config, out: whole)
        let emaTest = try #require(full.emaTestAccuracy)
        #expect(full.bestSelection == "test accuracy of the EMA weights")
        // ema.safetensors holds the averaged weights under the model's names; evaluating it gives their accuracy.
        let emaURL = whole.appendingPathComponent("ema.safetensors")
        let ema = try SafeTensorsFile.read(from: emaURL)
        #expect(Set(ema.tensors.keys) == Set(try SafeTensorsFile.read(from: whole.appendingPathComponent("model.safetensors")).tensors.keys))
        #expect(try TrainerTests.weights(emaURL) != TrainerTests.weights(whole.appendingPathComponent("model.safetensors")))
        #expect(ema.metadata["ema_updates"] == "16")
        /// The accuracy of a weights file on the run's 256 test images.
        func accuracy(_ url: URL) throws -> Double {
            let model = try ModelBuilder.build(config, seed: 1)
            try Checkpoint.loadWeights(SafeTensorsFile.read(from: url), into: model)
            let test = try Dataset.load(directory: Shared.mnistDirectory, split: .test).prefix(256)
            return try Evaluator.evaluate(model, dataset: test, batchSize: 100, normalization: config.normalization,
                                          logProbabilities: true).accuracy
        }
        #expect(try accuracy(emaURL) == emaTest)
        let best = try SafeTensorsFile.read(from: whole.appendingPathComponent("best.safetensors"))
        #expect(best.metadata["selected_by"] == "test accuracy of the EMA weights")
        #expect(try accuracy(whole.appendingPathComponent("best.safetensors")) == full.bestTestAccuracy)
        #expect(try Self.records(whole).filter { $0["kind"] as? String == "epoch" }.allSatisfy { Self.number($0, "ema_test_accuracy") != nil })
        // Stopped mid-epoch and resumed: the same averaged weights to the bit.
        _ = try TrainerTests.run(config, out: parts, maxSteps: 5)
        let resumed = try TrainerTests.run(config, out: parts, resume: true, removeMaxSteps: true)
        #expect(resumed.emaTestAccuracy == emaTest)
        #expect(try TrainerTests.weights(parts.appendingPathComponent("ema.safetensors")) == TrainerTests.weights(emaURL))
    }

    @Test("random scaling shrinks or grows the digit about the centre, in one resampling with the rotation")
    func randomScaleResamples() throws {
        let train = try Dataset.load(directory: Shared.mnistDirectory, split: .train).prefix(64)
        func ink(_ scale: ClosedRange<Float>) throws -> Int {
            let transform = try Transform.toTensorOnly.withAugmentation(Augmentation(maxShift: 0, maxRotationDegrees: 0, scale: scale))
            let loader = try DataLoader(dataset: train, batchSize: 64, shuffle: false, seed: 1, transform: transform)
            return try #require(loader.batches(epoch: 0).first { _ in true }).images.filter { $0 > 0.5 }.count
        }
        let plain = try ink(1...1), small = try ink(0.7...0.7), large = try ink(1.3...1.3)
        // Ink area scales with the square of the factor (bilinear blurs the edges a little).
        #expect(abs(Double(small) / Double(plain) - 0.49) < 0.1, "\(small) vs \(plain)")
        #expect(abs(Double(large) / Double(plain) - 1.69) < 0.2, "\(large) vs \(plain)")
        // Drawn per image: a range gives different factors within a batch, the same on every run.
        #expect(try ink(0.8...1.2) == ink(0.8...1.2))
    }

    @Test("horizontal_flip mirrors about half the images, the same ones on every run")
    func horizontalFlipMirrorsHalf() throws {
        let train = try Dataset.load(directory: Shared.mnistDirectory, split: .train).prefix(200)
        let transform = try Transform.toTensorOnly.withAugmentation(Augmentation(maxShift: 0, maxRotationDegrees: 0, horizontalFlip: true))
        let loader = try DataLoader(dataset: train, batchSize: 200, shuffle: false, seed: 1, transform: transform)
        let batch = try #require(loader.batches(epoch: 0).first { _ in true })
        var mirrored = 0, kept = 0
        for i in 0..<200 {
            let image: [Float] = Array(batch.images[(i * 784)..<((i + 1) * 784)])
            let original: [Float] = train.pixels(i..<(i + 1)).map { Float($0) / 255 }
            let flipped: [Float] = (0..<784).map { (p: Int) -> Float in
                let row = p / 28, column = p % 28
                return original[row * 28 + 27 - column]
            }
            if zip(image, flipped).allSatisfy({ abs($0 - $1) < 1e-5 }) { mirrored += 1 }
            if zip(image, original).allSatisfy({ abs($0 - $1) < 1e-5 }) { kept += 1 }
        }
        #expect(mirrored + kept == 200 && (70...130).contains(mirrored), "\(mirrored) mirrored, \(kept) kept")
        let again = try #require(loader.batches(epoch: 0).first { _ in true })
        #expect(again.images == batch.images)
    }

    @Test("the new keys read back from the resolved config, and wrong values are named")
    func configKeys() throws {
        var config = try TrainerTests.smokeConfig()
        config.data.validation = 5000
        config.data.augmentScale = 0.9...1.1
        config.data.augmentHorizontalFlip = true
        config.warmupSteps = 100
        config.emaDecay = 0.999
        config.earlyStopping = .init(patience: 3, minDelta: 0.001, metric: .accuracy)
        config.targetAccuracy = 0.99
        config.evalEverySteps = 50
        #expect(try TrainingConfig.decode(Data(config.json.utf8), file: "resolved") == config)
        func error(_ json: String) -> String {
            do { _ = try TrainingConfig.decode(Data(json.utf8), file: "c.json"); return "" } catch { return "\(error)" }
        }
        let model = ConfigTests.minimalModel
        #expect(error(#"{\#(model), "scheduler": {"type": "one_cycle", "max_lr": 0.1, "warmup_steps": 10}}"#)
            .contains("one_cycle has its own warm-up"))
        #expect(error(#"{\#(model), "ema": {"decay": 1}}"#).contains("ema.decay"))
        #expect(error(#"{\#(model), "target_accuracy": 99}"#).contains("e.g. 0.99 for 99%"))
        #expect(error(#"{\#(model), "early_stopping": {"patience": 2, "metric": "f1"}}"#).contains("early_stopping.metric"))
        #expect(error(#"{"model": {"layers": [{"type": "flatten", "name": "ema"}, {"type": "linear", "out_features": 10}]}}"#)
            .contains("is reserved"))
        #expect(error(#"{\#(model), "data": {"augmentation": {"scale": [1.2, 0.8]}}}"#).contains("data.augmentation.scale"))
    }
}
