import Autograd
import Kernels
import Foundation

/// Adam and AdamW, exactly PyTorch's `torch.optim.Adam` / `AdamW` (no amsgrad):
/// ```
/// t += 1
/// p = p · (1 − lr · wd)                 (AdamW: decoupled weight decay)
/// g = grad + wd · p                     (Adam: L2 weight decay)
/// m = β₁ m + (1 − β₁) g
/// v = β₂ v + (1 − β₂) g²
/// p = p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
public final class Adam: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    /// `beta1` changes between steps when a one-cycle schedule cycles it.
    public var beta1: Float
    public let beta2: Float, epsilon: Float, weightDecay: Float
    public var momentumTerm: Float {
        get { beta1 }
        set { beta1 = newValue }
    }
    /// AdamW's decoupled weight decay instead of Adam's L2 term.
    public let decoupledWeightDecay: Bool
    private let buffers: ParameterBuffers
    private var steps = 0

    public init(
        parameters: [Tensor], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
        epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false
    ) throws {
        let name = decoupledWeightDecay ? "AdamW" : "Adam"
        try check(name, "learning rate", learningRate, learningRate >= 0, ">= 0")
        try check(name, "beta1", betas.0, betas.0 >= 0 && betas.0 < 1, "in [0, 1)")
        try check(name, "beta2", betas.1, betas.1 >= 0 && betas.1 < 1, "in [0, 1)")
        try check(name, "epsilon", epsilon, epsilon >= 0, ">= 0")
        try check(name, "weight decay", weightDecay, weightDecay >= 0, ">= 0")
        self.parameters = parameters
        self.learningRate = learningRate
        beta1 = betas.0
        beta2 = betas.1
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        buffers = ParameterBuffers(names: ["exp_avg", "exp_avg_sq"], parameters: parameters)
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default 0.01).
    public static func adamW(
        parameters: [Tensor], learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999),
        epsilon: Float = 1e-8, weightDecay: Float = 0.01
    ) throws -> Adam {
        try Adam(parameters: parameters, learningRate: learningRate, betas: betas, epsilon: epsilon,
                 weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    public func step() throws {
        steps += 1
        let t = Double(steps)
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon, wd = weightDecay
        let stepSize = Float(Double(lr) / (1 - pow(Double(b1), t)))
        let correction2Sqrt = Float((1 - pow(Double(b2), t)).squareRoot())
        let decay: Float = decoupledWeightDecay ? 1 - lr * wd : 1
        let l2: Float = decoupledWeightDecay ? 0 : wd
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let n = p.count
            let w = p.storage.pointer, g = grad.storage.pointer
            // m follows PyTorch's lerp: m + (d − m)·(1 − β₁).
            adamUpdate(weight: w, gradient: g, expAvg: buffers.pointer(0, i), expAvgSq: buffers.pointer(1, i), count: n,
                       decay: decay, l2: l2, beta1: b1, beta2: b2, stepSize: stepSize, correction2Sqrt: correction2Sqrt,
                       epsilon: eps)
        }
    }

    public func state() -> OptimizerState { buffers.state(step: steps) }

    public func loadState(_ state: OptimizerState) throws {
        try buffers.load(state)
        steps = state.step
    }
}
