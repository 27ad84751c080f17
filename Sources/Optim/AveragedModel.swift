import Autograd
import NN

/// An exponential moving average of a model's weights and buffers: PyTorch's
/// `AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)`.
///
/// `average` is a module of the model's architecture (built separately, same names). The
/// first `update(from:)` copies every parameter and persistent buffer; each later one moves
/// float values toward the model's by `1 − decay` with PyTorch's `lerp` (the fused form,
/// `a + w·(b − a)` for `w < 0.5`, else `b − (1 − w)·(b − a)`), and integer buffers
/// (`num_batches_tracked`) to `trunc(a·decay + b·(1 − decay))` in float32, as PyTorch's
/// foreach fallback does. Non-persistent buffers (random generator states) are not averaged.
public final class AveragedModel {
    public let average: Module
    public let decay: Double
    /// How many updates the average has seen (PyTorch's `n_averaged`).
    public internal(set) var updates = 0

    /// - Throws: `NNError.stateDict` when `average` and `model` differ in names or shapes.
    public init(average: Module, of model: Module, decay: Double) throws {
        let ours = average.stateDict().map { "\($0.name) \($0.shape)" }
        let theirs = model.stateDict().map { "\($0.name) \($0.shape)" }
        guard ours == theirs else {
            throw NNError.stateDict("the averaged model's parameters and buffers (\(ours.count)) differ from the model's "
                + "(\(theirs.count)): \(Set(ours).symmetricDifference(theirs).sorted().prefix(4).joined(separator: ", "))")
        }
        self.average = average
        self.decay = decay
    }

    /// PyTorch's `update_parameters(model)`.
    public func update(from model: Module) {
        let first = updates == 0
        let weight = Float(1 - decay), keep = Float(decay)
        for ((_, a), (_, b)) in zip(average.namedParameters(), model.namedParameters()) {
            b.withUnsafeBufferPointer { source in
                a.withUnsafeMutableBufferPointer { target in
                    if first {
                        target.baseAddress!.update(from: source.baseAddress!, count: source.count)
                    } else {
                        lerp(target.baseAddress!, toward: source.baseAddress!, count: source.count, weight: weight)
                    }
                }
            }
        }
        for ((_, a), (_, b)) in zip(average.namedBuffers(), model.namedBuffers()) {
            switch (a.values, b.values) {
            case (.float32(var target), .float32(let source)):
                if first {
                    target = source
                } else {
                    target.withUnsafeMutableBufferPointer { t in
                        source.withUnsafeBufferPointer { s in lerp(t.baseAddress!, toward: s.baseAddress!, count: s.count, weight: weight) }
                    }
                }
                a.values = .float32(target)
            case (.int64(let target), .int64(let source)):
                a.values = .int64(first ? source : zip(target, source).map { Int64((Float($0) * keep + Float($1) * weight).rounded(.towardZero)) })
            default:
                a.values = b.values
            }
        }
        updates += 1
    }

    /// Restores the count of updates (a resumed run; the average's values are loaded into
    /// `average` through its state dict).
    public func restore(updates: Int) { self.updates = max(0, updates) }

    @inline(__always)
    private func lerp(_ a: UnsafeMutablePointer<Float>, toward b: UnsafePointer<Float>, count: Int, weight w: Float) {
        if abs(w) < 0.5 {
            for i in 0..<count { a[i] = a[i].addingProduct(w, b[i] - a[i]) }
        } else {
            let c = w - 1
            for i in 0..<count { a[i] = b[i].addingProduct(c, b[i] - a[i]) }
        }
    }
}
