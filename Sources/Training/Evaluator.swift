import Autograd
import Kernels
import MNISTData
import NN
import Synchronization

/// The result of evaluating a model on a dataset.
public struct Evaluation: Sendable {
    public var count: Int
    public var correct: Int
    /// Mean negative log-likelihood.
    public var loss: Double
    /// `classes × classes`, row = true label, column = prediction.
    public var confusion: [[Int]]
    public var predictions: [Int]
    /// The probability the model gave its prediction, and the true label's probability.
    public var confidences: [Float]
    public var trueClassProbabilities: [Float]
    public var labels: [Int]
    /// Every sample's log-probabilities, `count × classes` row-major (`mnist-eval --save-outputs`).
    public var logProbabilities: [Float] = []
    public var seconds: Double

    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : 0 }

    public struct ClassScores: Sendable { public var precision, recall, f1: Double; public var support: Int }

    /// Per-class precision, recall and F1.
    public var perClass: [ClassScores] {
        let k = confusion.count
        return (0..<k).map { c in
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<k).reduce(0) { $0 + confusion[$1][c] })
            let actual = Double(confusion[c].reduce(0, +))
            let p = predicted > 0 ? tp / predicted : 0, r = actual > 0 ? tp / actual : 0
            return ClassScores(precision: p, recall: r, f1: p + r > 0 ? 2 * p * r / (p + r) : 0, support: Int(actual))
        }
    }

    /// The `n` misclassified samples the model was most confident about (index, label, prediction, confidence).
    public func worstErrors(_ n: Int) -> [(index: Int, label: Int, prediction: Int, confidence: Float)] {
        (0..<count).filter { predictions[$0] != labels[$0] }
            .sorted { confidences[$0] > confidences[$1] || (confidences[$0] == confidences[$1] && $0 < $1) }
            .prefix(n).map { ($0, labels[$0], predictions[$0], confidences[$0]) }
    }
}

public enum Evaluator {
    /// Evaluates `model` (in eval mode, without grad) on every sample of `dataset`, in order.
    ///
    /// With `Parallelism.threadCount` threads, each thread evaluates whole batches of its own
    /// (the next batch not yet taken, whenever it is free), its kernels on one thread, and the
    /// batches' outputs are counted in batch order afterwards: no parallel region per layer, no thread
    /// waiting at the end of each for the other (`perf record` of `mnist-eval --split train`
    /// on a published-speedrun-net checkpoint at 2 threads, at e56ee2b: the second thread
    /// spent 5% of its samples waiting for the next region). Every sample's outputs
    /// are those of a one-thread evaluation, whatever the thread count, and the sums are
    /// taken in the same order.
    ///
    /// - Parameter logProbabilities: the model ends with log-softmax; otherwise its outputs
    ///   are logits and log-softmax is applied here.
    public static func evaluate(
        _ model: Module, dataset: Dataset, batchSize: Int, normalization: Normalization, logProbabilities: Bool
    ) throws -> Evaluation {
        let start = DispatchTimeNow()
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let transform = try Transform.normalized(normalization)
        let loader = try DataLoader(dataset: dataset, batchSize: batchSize, shuffle: false, seed: 0, transform: transform)
        let order = loader.order(epoch: 0), batchCount = loader.batchCount
        // One thread takes the batches from the sequence, which builds the next one on a
        // background thread meanwhile when a core is spare (prefetch); several lanes build
        // their own (`makeBatch`, at one thread each).
        let lanes = max(1, min(Parallelism.threadCount, batchCount))
        let classCount = dataset.classCount
        // Each batch's outputs, written by the thread that evaluated it (disjoint slots).
        let outputs = UnsafeMutableBufferPointer<BatchOutput?>.allocate(capacity: batchCount)
        outputs.initialize(repeating: nil)
        defer { outputs.deinitialize(); outputs.deallocate() }
        let failures = UnsafeMutableBufferPointer<Error?>.allocate(capacity: lanes)
        failures.initialize(repeating: nil)
        defer { failures.deinitialize(); failures.deallocate() }
        func evaluate(_ batch: Batch) throws -> BatchOutput {
            var out = try model(try Tensor(shape: batch.imageShape, data: batch.images))
            if !logProbabilities { out = try out.logSoftmax(dim: 1) }
            guard out.shape[1] == classCount else {
                throw TrainingError.data("the model has \(out.shape[1]) outputs but \(dataset.name) has \(classCount) classes")
            }
            return BatchOutput(
                labels: batch.labels, predictions: try predictedClasses(out),
                logProbabilities: Array(UnsafeBufferPointer(start: out.storage.pointer, count: batch.count * classCount)))
        }
        // Each lane takes the next batch when it is free, so that a lane slowed by the
        // machine's other work does not leave the other waiting at the end.
        let next = Atomic<Int>(0)
        func evaluateLane() throws {
            if lanes == 1 {
                for (b, batch) in loader.batches(epoch: 0).enumerated() { outputs[b] = try evaluate(batch) }
                return
            }
            while true {
                let b = next.add(1, ordering: .relaxed).oldValue
                if b >= batchCount { return }
                outputs[b] = try evaluate(loader.makeBatch(order: order, epoch: 0, batchIndex: b))
            }
        }
        runInParallel(lanes) { lane in
            do {
                // Each lane's kernels prepare a weight once for the whole pass (`FixedWeights`).
                try Parallelism.withThreadCount(1) {
                    try FixedWeights.whileFixed { try withNoGrad { try evaluateLane() } }
                }
            } catch {
                failures[lane] = error
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
        var result = Evaluation(
            count: 0, correct: 0, loss: 0,
            confusion: Array(repeating: Array(repeating: 0, count: classCount), count: classCount),
            predictions: [], confidences: [], trueClassProbabilities: [], labels: [], seconds: 0)
        var lossSum = 0.0
        for case let output? in outputs {
            result.logProbabilities.append(contentsOf: output.logProbabilities)
            for (i, best) in output.predictions.enumerated() {
                let row = i * classCount
                let label = Int(output.labels[i])
                lossSum -= Double(output.logProbabilities[row + label])
                result.predictions.append(best)
                result.confidences.append(Foundation_expf(output.logProbabilities[row + best]))
                result.trueClassProbabilities.append(Foundation_expf(output.logProbabilities[row + label]))
                result.labels.append(label)
                result.confusion[label][best] += 1
                if best == label { result.correct += 1 }
            }
            result.count += output.predictions.count
        }
        result.loss = result.count > 0 ? lossSum / Double(result.count) : 0
        result.seconds = DispatchTimeNow() - start
        return result
    }

    /// One batch's labels, predicted classes and log-probabilities (`count × classes`).
    private struct BatchOutput {
        var labels: [Int32]
        var predictions: [Int]
        var logProbabilities: [Float]
    }
}

/// The predicted class of each row of a `(batch, classes)` output: the first largest
/// value (`Tensor.argmax`). The trainer, the evaluator and the pictures all count with it.
func predictedClasses(_ output: Tensor) throws -> [Int] {
    try output.argmax(dim: 1).scalars.map { Int($0) }
}

#if canImport(Glibc)
import Glibc
#endif
import Dispatch

@inline(__always) func Foundation_expf(_ x: Float) -> Float { expf(x) }

/// Seconds on a monotonic clock.
func DispatchTimeNow() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
