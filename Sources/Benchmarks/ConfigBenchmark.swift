import Autograd
import Foundation
import Kernels
import MNISTData
import NN
import Optim
import Training

/// `mnist-bench --config FILE`: the throughput benchmark for any config's model, not only
/// LeNet: the model, optimizer, batch size and normalization of the config, trained on
/// MNIST in a seeded order (no augmentation, no scheduler: compute only), then evaluated.
public enum ConfigBenchmark {
    /// Multiply-adds of one sample's forward pass through the config's convolutions and
    /// linear layers (the other layers are a few per cent of the FLOPs and left out).
    public static func forwardMultiplyAdds(_ config: TrainingConfig) throws -> Int {
        let plan = try ModelBuilder.plan(config)
        var total = 0
        for (layer, step) in zip(config.layers, plan) {
            if let conv = layer.kind as? Conv2dLayer {
                let inChannels = step.inputShape[0]
                total += step.outputShape.reduce(1, *) * inChannels / conv.groups * conv.kernelSize.height * conv.kernelSize.width
            } else if let linear = layer.kind as? LinearLayer {
                total += step.inputShape.reduce(1, *) * linear.outFeatures
            }
        }
        return total
    }

    public static func run(config: TrainingConfig, dataDirectory: URL, threads: Int, batchSize: Int?, steps: Int,
                           warmup: Int = 10, evalBatchSize: Int?) throws -> Benchmark.Result {
        try Parallelism.withThreadCount(threads) {
            let batch = batchSize ?? config.batchSize
            let train = try Dataset.load(directory: dataDirectory, split: .train)
            let test = try Dataset.load(directory: dataDirectory, split: .test)
            let model = try ModelBuilder.build(config, seed: config.seed)
            let optimizer = try config.makeOptimizer(model.parameters())
            let logSoftmax = ModelBuilder.endsWithLogSoftmax(model)
            let loader = try DataLoader(dataset: train, batchSize: batch, shuffle: true, seed: config.seed, dropLast: true,
                                        transform: try Transform.normalized(config.normalization))
            let timing = try timeTraining(model: model, optimizer: optimizer, loader: loader, logSoftmax: logSoftmax,
                                          steps: steps, warmup: warmup)
            let seconds = timing.seconds
            let samplesPerSecond = Double(steps * batch) / seconds
            Storage.releaseCachedBlocks()  // training's blocks would sit beside evaluation's
            let evaluation = try Evaluator.evaluate(model, dataset: test, batchSize: evalBatchSize ?? config.testBatchSize,
                                                    normalization: config.normalization, logProbabilities: logSoftmax)
            // Forward, input gradient and weight gradient: three passes of 2 FLOP per multiply-add.
            let gflops = samplesPerSecond * Double(6 * (try forwardMultiplyAdds(config))) / 1e9
            let peak = measureFMAPeakGFLOPs(threads: threads)
            return Benchmark.Result(
                threads: threads, batchSize: batch, steps: steps, trainSeconds: seconds, samplesPerSecond: samplesPerSecond,
                secondsPerEpoch: Double(train.count) / samplesPerSecond, gflops: gflops, peakGFLOPs: peak,
                peakShare: gflops / peak, evalSeconds: evaluation.seconds, evalAccuracy: evaluation.accuracy,
                peakRSSMegabytes: Benchmark.peakRSSMegabytes(), model: config.name
            ).withStepTimes(timing)
        }
    }
}
