import Autograd
import MNISTData
import NN

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
        var result = Evaluation(
            count: 0, correct: 0, loss: 0,
            confusion: Array(repeating: Array(repeating: 0, count: dataset.classCount), count: dataset.classCount),
            predictions: [], confidences: [], trueClassProbabilities: [], labels: [], seconds: 0)
        var lossSum = 0.0
        try withNoGrad {
            for batch in loader.batches(epoch: 0) {
                let x = try Tensor(shape: batch.imageShape, data: batch.images)
                var out = try model(x)
                if !logProbabilities { out = try out.logSoftmax(dim: 1) }
                let classes = out.shape[1]
                guard classes == dataset.classCount else {
                    throw TrainingError.data("the model has \(classes) outputs but \(dataset.name) has \(dataset.classCount) classes")
                }
                let p = out.storage.pointer
                result.logProbabilities.append(contentsOf: UnsafeBufferPointer(start: p, count: batch.count * classes))
                for (i, best) in try predictedClasses(out).enumerated() {
                    let row = p + i * classes
                    let label = Int(batch.labels[i])
                    lossSum -= Double(row[label])
                    result.predictions.append(best)
                    result.confidences.append(Foundation_expf(row[best]))
                    result.trueClassProbabilities.append(Foundation_expf(row[label]))
                    result.labels.append(label)
                    result.confusion[label][best] += 1
                    if best == label { result.correct += 1 }
                }
                result.count += batch.count
            }
        }
        result.loss = result.count > 0 ? lossSum / Double(result.count) : 0
        result.seconds = DispatchTimeNow() - start
        return result
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
