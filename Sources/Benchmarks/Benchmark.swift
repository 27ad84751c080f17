import Autograd
import Foundation
import Kernels
import MNISTData
import NN
import Optim
import Seeded
import Training

/// Throughput and memory of training and evaluation, measured on the real data with the
/// tutorial's LeNet (what `make bench` runs). Timing is wall-clock on a monotonic clock;
/// peak memory is the process's maximum resident set size.
public enum Benchmark {
    /// Forward + backward FLOPs of one LeNet training image: 2 × multiply-adds of the
    /// forward pass (2.3 M) × 3 (forward, input gradient, weight gradient) ≈ 13.2 MFLOP.
    public static let trainFLOPsPerImage = 13.2e6
    /// Forward FLOPs of one LeNet image (4.6 MFLOP).
    public static let forwardFLOPsPerImage = 4.6e6

    public struct Result: Sendable {
        public var threads: Int
        public var batchSize: Int
        public var steps: Int
        public var trainSeconds: Double
        public var samplesPerSecond: Double
        public var secondsPerEpoch: Double
        public var gflops: Double
        /// The FMA peak measured on this machine at this thread count (`measureFMAPeakGFLOPs`).
        public var peakGFLOPs: Double
        public var peakShare: Double
        public var evalSeconds: Double
        public var evalAccuracy: Double
        public var peakRSSMegabytes: Double
        /// `LeNet`, or the config's name (`mnist-bench --config`).
        public var model = "LeNet"
        /// The 10th percentile and the median of the timed steps' times, in seconds: a step
        /// is one batch's forward, backward and optimizer step. Less moved by a few slow
        /// steps on a shared machine than the total.
        public var stepSecondsP10 = Double.nan, stepSecondsMedian = Double.nan
        /// The mean time of a step spent outside parallel regions, on the calling thread alone
        /// (the batch's labels and tensor copy, and its images when they are built on one
        /// thread; graph bookkeeping; small ops), and the parallel regions a step enters
        /// (`RegionClock`): with 2 or more threads, the part the other threads wait through.
        public var serialSecondsPerStep = Double.nan, regionsPerStep = Double.nan

        /// One JSON object on one line (what `scripts/bench.sh` collects); a non-finite
        /// number is written as `null`.
        public var json: String {
            func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }
            let fields: [(String, String)] = [
                ("implementation", "\"mnist-train\""), ("model", "\"\(model)\""), ("threads", "\(threads)"), ("batch_size", "\(batchSize)"),
                ("steps", "\(steps)"), ("train_seconds", number(trainSeconds)),
                ("samples_per_second", number(samplesPerSecond)), ("seconds_per_epoch", number(secondsPerEpoch)),
                ("gflops", number(gflops)), ("peak_gflops", number(peakGFLOPs)), ("peak_share", number(peakShare)),
                ("eval_seconds", number(evalSeconds)), ("eval_accuracy", number(evalAccuracy)),
                ("peak_rss_mb", number(peakRSSMegabytes)), ("step_ms_p10", number(stepSecondsP10 * 1e3)),
                ("step_ms_p50", number(stepSecondsMedian * 1e3)), ("step_serial_ms", number(serialSecondsPerStep * 1e3)),
                ("regions_per_step", number(regionsPerStep)), ("blas_kernels", "\"\(BLASKernels.current.running)\""),
            ]
            return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
        }
    }

    /// Trains `steps` steps of batch `batchSize` (after `warmup` untimed ones) with SGD
    /// (lr 0.01, momentum 0.9) from a seeded LeNet on MNIST in file order, then evaluates
    /// the 10,000 test images in batches of `evalBatchSize`.
    public static func run(dataDirectory: URL, threads: Int, batchSize: Int = 64, steps: Int = 200,
                           warmup: Int = 10, evalBatchSize: Int = 100) throws -> Result {
        try Parallelism.withThreadCount(threads) {
            try measure(dataDirectory: dataDirectory, threads: threads, batchSize: batchSize, steps: steps,
                        warmup: warmup, evalBatchSize: evalBatchSize)
        }
    }

    private static func measure(dataDirectory: URL, threads: Int, batchSize: Int, steps: Int, warmup: Int,
                                evalBatchSize: Int) throws -> Result {
        let train = try Dataset.load(directory: dataDirectory, split: .train)
        let test = try Dataset.load(directory: dataDirectory, split: .test)
        var generator = SeededGenerator(seed: 1)
        let model = Models.lenet(generator: &generator)
        let optimizer = try SGD(parameters: model.parameters(), learningRate: 0.01, momentum: 0.9)
        let loader = try DataLoader(dataset: train, batchSize: batchSize, shuffle: true, seed: 1, dropLast: true)
        let timing = try timeTraining(model: model, optimizer: optimizer, loader: loader, logSoftmax: true, steps: steps,
                                      warmup: warmup)
        let seconds = timing.seconds
        let samplesPerSecond = Double(steps * batchSize) / seconds
        Storage.releaseCachedBlocks()  // training's blocks would sit beside evaluation's
        let evaluation = try Evaluator.evaluate(model, dataset: test, batchSize: evalBatchSize, normalization: .mnist,
                                                logProbabilities: true)
        let gflops = samplesPerSecond * trainFLOPsPerImage / 1e9
        let peak = measureFMAPeakGFLOPs(threads: threads)
        return Result(
            threads: threads, batchSize: batchSize, steps: steps, trainSeconds: seconds,
            samplesPerSecond: samplesPerSecond, secondsPerEpoch: Double(train.count) / samplesPerSecond,
            gflops: gflops, peakGFLOPs: peak, peakShare: gflops / peak,
            evalSeconds: evaluation.seconds, evalAccuracy: evaluation.accuracy, peakRSSMegabytes: peakRSSMegabytes()
        ).withStepTimes(timing)
    }

    /// The process's peak resident set size so far, in MB (10⁶ bytes).
    public static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) * 1024 / 1e6  // ru_maxrss is in KiB on Linux
    }
}

extension Benchmark.Result {
    /// This result with the step times of `timing`: the 10th percentile and the median step,
    /// and the part of a step outside parallel regions.
    func withStepTimes(_ timing: TrainingTiming) -> Self {
        var result = self
        result.stepSecondsP10 = timing.percentile(0.1)
        result.stepSecondsMedian = timing.percentile(0.5)
        result.serialSecondsPerStep = timing.serialSecondsPerStep
        result.regionsPerStep = timing.regionsPerStep
        return result
    }
}

/// The times of a run of training steps.
struct TrainingTiming {
    /// From the first timed step's start to the last one's end.
    var seconds: Double
    /// Each step's own time, sorted.
    var sortedStepSeconds: [Double]
    /// Of `seconds`, the time inside parallel regions, and their number (`RegionClock`).
    var regionSeconds = 0.0, regions = 0

    /// The mean time of a step outside parallel regions.
    var serialSecondsPerStep: Double { (seconds - regionSeconds) / Double(sortedStepSeconds.count) }
    /// The parallel regions of a step, on average.
    var regionsPerStep: Double { Double(regions) / Double(sortedStepSeconds.count) }

    /// The step time at quantile `q` in 0...1 (nearest rank).
    func percentile(_ q: Double) -> Double {
        sortedStepSeconds[Int((Double(sortedStepSeconds.count - 1) * q).rounded())]
    }
}

/// The times of `steps` training steps on `loader`'s batches (epoch after epoch), after
/// `warmup` untimed ones: NLL loss on log-probabilities, else cross-entropy on logits. A
/// step's time includes taking its batch from the loader.
func timeTraining(model: Module, optimizer: any Optimizer, loader: DataLoader, logSoftmax: Bool, steps: Int,
                  warmup: Int) throws -> TrainingTiming {
    var iterator = loader.batches(epoch: 0).makeIterator()
    var epoch = 0
    func step() throws {
        var next = iterator.next()
        if next == nil {
            epoch += 1
            iterator = loader.batches(epoch: epoch).makeIterator()
            next = iterator.next()
        }
        guard let batch = next else { return }
        let x = try Tensor(shape: batch.imageShape, data: batch.images)
        optimizer.zeroGrad()
        let output = try model(x)
        let loss = logSoftmax ? try F.nllLoss(output, targets: batch.labels) : try F.crossEntropy(output, targets: batch.labels)
        try loss.backward()
        try optimizer.step()
    }
    model.train()
    for _ in 0..<warmup { try step() }
    var stepSeconds = [Double](repeating: 0, count: steps)  // allocated before the clock starts
    RegionClock.run(true)
    defer { RegionClock.run(false) }
    let (regionStart, regionsBefore) = (RegionClock.seconds, RegionClock.count)
    let start = monotonicSeconds()
    var previous = start
    for i in 0..<steps {
        try step()
        let now = monotonicSeconds()
        stepSeconds[i] = now - previous
        previous = now
    }
    return TrainingTiming(seconds: previous - start, sortedStepSeconds: stepSeconds.sorted(),
                          regionSeconds: RegionClock.seconds - regionStart, regions: RegionClock.count - regionsBefore)
}

/// Seconds on a monotonic clock.
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
