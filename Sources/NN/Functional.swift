import Autograd
import Kernels
import Seeded

/// PyTorch's `torch.nn.functional`: stateless operations whose weights are arguments.
/// `F.linear(x, weight: w, bias: b)`.
public enum Functional {}
/// The tutorial's `import torch.nn.functional as F`.
public typealias F = Functional

/// How a loss combines the per-sample values.
public enum Reduction: String, Sendable, Codable { case mean, sum, none }

/// Errors of the layers and losses, naming the shapes and values involved.
public enum NNError: Error, CustomStringConvertible, Equatable {
    case shape(op: String, String)
    case labelOutOfRange(op: String, index: Int, label: Int, classes: Int)
    case invalidArgument(op: String, String)
    case stateDict(String)

    public var description: String {
        switch self {
        case let .shape(op, detail): return "\(op): \(detail)"
        case let .labelOutOfRange(op, index, label, classes):
            return "\(op): target \(label) at position \(index) is out of bounds: "
                + "expected a class index in 0..<\(classes)"
        case let .invalidArgument(op, detail): return "\(op): \(detail)"
        case let .stateDict(detail): return "loadStateDict: \(detail)"
        }
    }
}

// MARK: - Linear, activations, shape

extension Functional {
    /// `input · weightᵀ + bias` (`AddmmBackward0`, or `MmBackward0` without bias), then
    /// ReLU when `relu` (`ReluBackward0`, as the ReLU's): `Sequential` passes it for a
    /// `Linear` followed by a `ReLU`; the product's output is not kept, the ReLU is taken as
    /// it is stored, and its backward is folded into the product's.
    ///
    /// - Parameters:
    ///   - input: `(N, in)`.
    ///   - weight: `(out, in)`, PyTorch's layout.
    ///   - bias: `(out)`.
    ///   - relu: ReLU on the output (`reluForward`'s rule: NaN stays NaN).
    /// - Returns: `(N, out)`.
    public static func linear(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, relu: Bool = false) throws -> Tensor {
        guard input.rank == 2, weight.rank == 2, input.shape[1] == weight.shape[1] else {
            throw NNError.shape(op: "linear",
                "input \(input.shape) and weight \(weight.shape) cannot be multiplied: "
                    + "expected input (N, \(weight.shape.count == 2 ? weight.shape[1] : -1)) and weight (out, in)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw NNError.shape(op: "linear", "bias \(bias.shape) does not match weight \(weight.shape): expected [\(weight.shape[0])]")
        }
        let n = input.shape[0], k = input.shape[1], m = weight.shape[0]
        let out = Tensor.empty([n, m])
        // From the tensors' block cache: the same sizes every step, no allocation (none at
        // all where OpenBLAS computes the product and needs no workspace).
        let workspaceCount = linearForwardWorkspaceCount(n: n, k: k)
        let workspace = workspaceCount > 0 ? Tensor.empty([workspaceCount]) : out
        linearForward(n: n, k: k, m: m, input: input.storage.pointer, weight: weight.storage.pointer,
                      bias: bias?.storage.pointer, output: out.storage.pointer, workspace: workspace.storage.pointer,
                      relu: relu)
        let inputs = bias.map { [input, weight, $0] } ?? [input, weight]
        let name = relu ? "ReluBackward0" : bias == nil ? "MmBackward0" : "AddmmBackward0"
        return out.recording(name, inputs: inputs) { [unowned out] g in
            // One scan of the gradient decides the path of both products (behind the ReLU,
            // the pass that applies its mask); the sparse one's lists go in a workspace from
            // the block cache.
            let masked = relu ? Tensor.empty([n, m]) : g, gp = masked.storage.pointer
            let sparse = relu
                ? linearReluGradient(n: n, k: k, m: m, gradOutput: g.storage.pointer, output: out.storage.pointer,
                                     masked: masked.storage.pointer) && (input.requiresGrad || weight.requiresGrad)
                : (input.requiresGrad || weight.requiresGrad) && linearGradientIsSparse(n: n, k: k, m: m, gradOutput: gp)
            let workspace = sparse ? Tensor.empty([linearBackwardWorkspaceCount(n: n, k: k, m: m)]) : g
            var grads: [Tensor?] = []
            if input.requiresGrad {  // g (N, out) · W (out, in)
                let gi = Tensor.empty([n, k])
                linearBackwardInput(n: n, k: k, m: m, gradOutput: gp, weight: weight.storage.pointer,
                                    gradInput: gi.storage.pointer, workspace: workspace.storage.pointer,
                                    sparseGradient: sparse)
                grads.append(gi)
            } else { grads.append(nil) }
            if weight.requiresGrad {  // gᵀ (out, N) · x (N, in)
                let gw = Tensor.empty([m, k])
                linearBackwardWeight(n: n, k: k, m: m, gradOutput: gp, input: input.storage.pointer,
                                     gradWeight: gw.storage.pointer, workspace: workspace.storage.pointer,
                                     sparseGradient: sparse)
                grads.append(gw)
            } else { grads.append(nil) }
            if let bias {
                if bias.requiresGrad {
                    let gb = Tensor.empty([m])
                    sumRows(gp, rowCount: n, columns: m, into: gb.storage.pointer)
                    grads.append(gb)
                } else { grads.append(nil) }
            }
            return grads
        }
    }

    public static func relu(_ input: Tensor) -> Tensor { input.relu() }
    public static func softmax(_ input: Tensor, dim: Int) throws -> Tensor { try input.softmax(dim: dim) }
    public static func logSoftmax(_ input: Tensor, dim: Int) throws -> Tensor { try input.logSoftmax(dim: dim) }
    public static func flatten(_ input: Tensor, startDim: Int = 1, endDim: Int = -1) throws -> Tensor {
        try input.flatten(startDim: startDim, endDim: endDim)
    }

    /// Zeroes each element with probability `p` and scales the rest by `1/(1-p)` while
    /// `training`; the identity otherwise. The mask comes from `generator`.
    public static func dropout(
        _ input: Tensor, p: Float = 0.5, training: Bool = true, generator: inout SeededGenerator
    ) throws -> Tensor {
        guard p >= 0, p <= 1 else {
            throw NNError.invalidArgument(op: "dropout", "probability has to be between 0 and 1, but got \(p)")
        }
        guard training, p > 0 else { return input }
        let mask = Tensor.empty(input.shape)
        let scale: Float = p == 1 ? 0 : 1 / (1 - p)
        let mp = mask.storage.pointer
        for i in 0..<mask.count { mp[i] = generator.nextUniform() < p ? 0 : scale }
        let out = input.zipMap(mask) { $0 * $1 }
        return out.recording("NativeDropoutBackward0", inputs: [input]) { g in [g.zipMap(mask) { $0 * $1 }] }
    }
}

// MARK: - Losses

extension Functional {
    /// The negative log-likelihood of `targets` under log-probabilities `input`
    /// (`NllLossBackward0`).
    ///
    /// - Parameters:
    ///   - input: `(N, C)` log-probabilities.
    ///   - targets: `N` class indices in `0..<C`.
    /// NLL of log-probabilities with PyTorch's label smoothing `ε` (as `cross_entropy`'s
    /// `label_smoothing` applies it to log-probabilities): per sample
    /// `(1 − ε) · (−log p_target) + ε · mean_c(−log p_c)`. `ε = 0` is `nllLoss`.
    public static func nllLoss(_ input: Tensor, targets: [Int32], reduction: Reduction = .mean, labelSmoothing ε: Float) throws -> Tensor {
        guard ε != 0 else { return try nllLoss(input, targets: targets, reduction: reduction) }
        guard (0...1).contains(ε) else { throw NNError.invalidArgument(op: "cross_entropy", "label_smoothing \(ε): expected 0...1") }
        let nll = try nllLoss(input, targets: targets, reduction: reduction)
        let classes = Float(input.shape[1])
        let uniform = try input.sum(dim: 1) * (-1 / classes)  // mean_c(−log p_c) per sample
        let smooth = reduction == .none ? uniform : reduction == .mean ? uniform.mean() : uniform.sum()
        return try nll * (1 - ε) + smooth * ε
    }

    public static func nllLoss(_ input: Tensor, targets: [Int32], reduction: Reduction = .mean) throws -> Tensor {
        guard input.rank == 2, input.shape[0] == targets.count else {
            throw NNError.shape(op: "nll_loss",
                "input \(input.shape) and \(targets.count) targets: expected input (N, C) with N = \(targets.count)")
        }
        let n = input.shape[0], c = input.shape[1]
        for (i, t) in targets.enumerated() where t < 0 || Int(t) >= c {
            throw NNError.labelOutOfRange(op: "nll_loss", index: i, label: Int(t), classes: c)
        }
        let x = input.storage.pointer
        let out: Tensor
        if reduction == .none {
            out = Tensor.empty([n])
            for i in 0..<n { out.storage.pointer[i] = -x[i * c + Int(targets[i])] }
        } else {
            var total = 0.0
            for i in 0..<n { total -= Double(x[i * c + Int(targets[i])]) }
            if reduction == .mean { total /= Double(max(n, 1)) }
            out = Tensor(scalar: Float(total))
        }
        return out.recording("NllLossBackward0", inputs: [input]) { g in
            let gi = Tensor.full([n, c], 0)
            let gp = gi.storage.pointer, up = g.storage.pointer
            for i in 0..<n {
                let scale: Float = reduction == .none ? up[i] : (reduction == .mean ? up[0] / Float(n) : up[0])
                gp[i * c + Int(targets[i])] = -scale
            }
            return [gi]
        }
    }

    /// `nll_loss(log_softmax(input, dim: 1), targets)`, with PyTorch's `label_smoothing`.
    public static func crossEntropy(
        _ input: Tensor, targets: [Int32], reduction: Reduction = .mean, labelSmoothing: Float = 0
    ) throws -> Tensor {
        guard input.rank == 2 else {
            throw NNError.shape(op: "cross_entropy", "input \(input.shape): expected (N, C) logits")
        }
        return try nllLoss(input.logSoftmax(dim: 1), targets: targets, reduction: reduction, labelSmoothing: labelSmoothing)
    }
}
