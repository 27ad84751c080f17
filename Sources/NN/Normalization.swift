import Autograd
import Kernels

extension Functional {
    /// PyTorch's `F.batch_norm` for `input (N, C, *)`: normalizes each channel with the
    /// batch's mean and biased variance when `training` (or when there are no running
    /// statistics), else with `runningMean` / `runningVar`; then scales by `weight` and
    /// shifts by `bias` (each `(C)`, or nil). In training, the running statistics become
    /// `(1 − momentum)·old + momentum·batch`, with the unbiased variance, as PyTorch does.
    /// The graph op is `NativeBatchNormBackward0` over the input, weight and bias.
    public static func batchNorm(
        _ input: Tensor, runningMean: Buffer?, runningVar: Buffer?, weight: Tensor?, bias: Tensor?,
        training: Bool, momentum: Double, eps: Double
    ) throws -> Tensor {
        guard input.rank >= 2 else {
            throw NNError.shape(op: "batch_norm", "expects an (N, C, ...) input but gets \(input.shape)")
        }
        let n = input.shape[0], c = input.shape[1], s = input.shape.dropFirst(2).reduce(1, *)
        for (name, tensor) in [("weight", weight), ("bias", bias)] {
            if let tensor, tensor.shape != [c] {
                throw NNError.shape(op: "batch_norm", "\(name) \(tensor.shape) does not match the \(c) channels of \(input.shape)")
            }
        }
        let useBatch = training || runningMean == nil || runningVar == nil
        if useBatch && n * s <= 1 {
            throw NNError.shape(op: "batch_norm", "expected more than 1 value per channel when training, got input size \(input.shape)")
        }
        var mean = [Float](repeating: 0, count: c), invstd = [Float](repeating: 0, count: c)
        if useBatch {
            var variance = [Float](repeating: 0, count: c)
            batchNormStatistics(input: input.storage.pointer, batch: n, channels: c, spatial: s, mean: &mean, variance: &variance)
            for ch in 0..<c { invstd[ch] = 1 / (variance[ch] + Float(eps)).squareRoot() }
            if training, let runningMean, let runningVar {
                try updateRunning(runningMean, with: mean, momentum: momentum)
                let unbiased = Float(n * s) / Float(n * s - 1)
                try updateRunning(runningVar, with: variance.map { $0 * unbiased }, momentum: momentum)
            }
        } else if case let .float32(rm)? = runningMean?.values, case let .float32(rv)? = runningVar?.values,
                  rm.count == c, rv.count == c {
            mean = rm
            for ch in 0..<c { invstd[ch] = 1 / (rv[ch] + Float(eps)).squareRoot() }
        } else {
            throw NNError.shape(op: "batch_norm", "the running statistics do not hold \(c) float32 values")
        }
        let out = Tensor.empty(input.shape)
        let savedMean = mean, savedInvstd = invstd  // the values the backward uses
        batchNormApply(input: input.storage.pointer, batch: n, channels: c, spatial: s, mean: savedMean, invstd: savedInvstd,
                       weight: weight?.storage.pointer, bias: bias?.storage.pointer, output: out.storage.pointer)
        let inputs = [input] + [weight, bias].compactMap { $0 }
        return out.recording("NativeBatchNormBackward0", inputs: inputs) { g in
            let gi = input.requiresGrad ? Tensor.empty(input.shape) : nil
            let gw = weight?.requiresGrad == true ? Tensor.empty([c]) : nil
            let gb = bias?.requiresGrad == true ? Tensor.empty([c]) : nil
            batchNormBackward(gradOutput: g.storage.pointer, input: input.storage.pointer, batch: n, channels: c, spatial: s,
                              mean: savedMean, invstd: savedInvstd, weight: weight?.storage.pointer, batchStatistics: useBatch,
                              gradInput: gi?.storage.pointer, gradWeight: gw?.storage.pointer, gradBias: gb?.storage.pointer)
            return [gi] + (weight == nil ? [] : [gw]) + (bias == nil ? [] : [gb])
        }
    }

    private static func updateRunning(_ buffer: Buffer, with batch: [Float], momentum: Double) throws {
        guard case let .float32(old) = buffer.values, old.count == batch.count else {
            throw NNError.shape(op: "batch_norm", "a running statistic does not hold \(batch.count) float32 values")
        }
        let m = Float(momentum)
        buffer.values = .float32(zip(old, batch).map { (1 - m) * $0 + m * $1 })
    }
}

/// `nn.BatchNorm1d` and `nn.BatchNorm2d`: parameters `weight` (ones) and `bias` (zeros)
/// when `affine`; buffers `running_mean` (zeros), `running_var` (ones) and the int64
/// `num_batches_tracked` when `trackRunningStats`, all under PyTorch's names. Training mode
/// normalizes with the batch's statistics and updates the running ones; evaluation mode
/// uses the running ones.
public class BatchNorm: Module {
    public let numFeatures: Int
    public let eps: Double, momentum: Double
    public let weight: Tensor?, bias: Tensor?
    public let runningMean: Buffer?, runningVar: Buffer?, numBatchesTracked: Buffer?
    /// Per-sample input ranks this module takes: `[C, H, W]` for 2d; `[C]` or `[C, L]` for 1d.
    let sampleRanks: Set<Int>

    init(numFeatures: Int, eps: Double, momentum: Double, affine: Bool, trackRunningStats: Bool, sampleRanks: Set<Int>) {
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
        weight = affine ? Tensor.ones(shape: [numFeatures], requiresGrad: true) : nil
        bias = affine ? Tensor.zeros(shape: [numFeatures], requiresGrad: true) : nil
        runningMean = trackRunningStats ? Buffer(.float32(Array(repeating: 0, count: numFeatures)), shape: [numFeatures]) : nil
        runningVar = trackRunningStats ? Buffer(.float32(Array(repeating: 1, count: numFeatures)), shape: [numFeatures]) : nil
        numBatchesTracked = trackRunningStats ? Buffer(.int64([0]), shape: []) : nil
        self.sampleRanks = sampleRanks
    }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        if isTraining, let counter = numBatchesTracked, case let .int64(count) = counter.values {
            counter.values = .int64([count[0] + 1])
        }
        return try F.batchNorm(input, runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias,
                               training: isTraining, momentum: momentum, eps: eps)
    }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        guard sampleRanks.contains(input.count), input.first == numFeatures else {
            throw NNError.shape(op: "batch_norm", "\(typeName)(\(numFeatures)) expects a sample of \(numFeatures) channels "
                + "(\(sampleRanks.sorted().map { "\($0)-D" }.joined(separator: " or "))) but gets \(input)")
        }
        return input
    }

    public override var namedDirectParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight), ("bias", bias)].compactMap { name, tensor in tensor.map { (name, $0) } }
    }

    public override var namedDirectBuffers: [(name: String, buffer: Buffer)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", numBatchesTracked)]
            .compactMap { name, buffer in buffer.map { (name, $0) } }
    }

    /// `8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True`.
    public override var extraDescription: String {
        "\(numFeatures), eps=\(eps), momentum=\(momentum), affine=\(weight == nil ? "False" : "True"), "
            + "track_running_stats=\(runningMean == nil ? "False" : "True")"
    }
}

/// `nn.BatchNorm2d(num_features)`: input `(N, C, H, W)`.
public final class BatchNorm2d: BatchNorm {
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true, trackRunningStats: Bool = true) {
        super.init(numFeatures: numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats,
                   sampleRanks: [3])
    }
}

/// `nn.BatchNorm1d(num_features)`: input `(N, C)` or `(N, C, L)`.
public final class BatchNorm1d: BatchNorm {
    public init(_ numFeatures: Int, eps: Double = 1e-5, momentum: Double = 0.1, affine: Bool = true, trackRunningStats: Bool = true) {
        super.init(numFeatures: numFeatures, eps: eps, momentum: momentum, affine: affine, trackRunningStats: trackRunningStats,
                   sampleRanks: [1, 2])
    }
}
