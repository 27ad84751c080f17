import Autograd
import Kernels

/// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay,
/// exactly PyTorch's `torch.optim.SGD`:
/// ```
/// g = grad + weight_decay · p
/// b = g                                   (first step)
/// b = momentum · b + (1 − dampening) · g  (later steps)
/// g = nesterov ? g + momentum · b : b
/// p = p − lr · g
/// ```
public final class SGD: Optimizer {
    public let parameters: [Tensor]
    public var learningRate: Float
    /// Changeable between steps (one-cycle schedules cycle it) when it began above 0.
    public var momentum: Float
    public let dampening: Float, weightDecay: Float, nesterov: Bool
    public var momentumTerm: Float {
        get { momentum }
        set { momentum = newValue }
    }
    private let buffers: ParameterBuffers
    private var steps = 0

    public init(
        parameters: [Tensor], learningRate: Float, momentum: Float = 0, dampening: Float = 0,
        weightDecay: Float = 0, nesterov: Bool = false
    ) throws {
        try check("SGD", "learning rate", learningRate, learningRate >= 0, ">= 0")
        try check("SGD", "momentum", momentum, momentum >= 0, ">= 0")
        try check("SGD", "weight decay", weightDecay, weightDecay >= 0, ">= 0")
        try check("SGD", "dampening", dampening, true, "a finite number")
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw OptimizerError.invalidHyperparameter(
                optimizer: "SGD", name: "nesterov with momentum/dampening", value: Double(momentum),
                expected: "Nesterov momentum requires a momentum > 0 and zero dampening")
        }
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = ParameterBuffers(names: momentum != 0 ? ["momentum_buffer"] : [], parameters: parameters)
    }

    public func step() throws {
        let lr = learningRate, mu = momentum, wd = weightDecay, damp = 1 - dampening
        let first = steps == 0
        for (i, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let w = p.storage.pointer, g = grad.storage.pointer
            let b = buffers.names.isEmpty || mu == 0 ? nil : buffers.pointer(0, i)
            // Element-wise, so the split over threads cannot change a result.
            Parallelism.forEachRange(p.count, minimumPerChunk: 32_768) { range in
                guard let b else {
                    for j in range { w[j] -= lr * (g[j] + wd * w[j]) }
                    return
                }
                // Separate loops for the loop-invariant cases keep each one branch-free.
                switch (first, nesterov) {
                case (true, false): for j in range { let d = g[j] + wd * w[j]; b[j] = d; w[j] -= lr * d }
                case (true, true): for j in range { let d = g[j] + wd * w[j]; b[j] = d; w[j] -= lr * (d + mu * d) }
                case (false, false):
                    for j in range { let d = g[j] + wd * w[j]; let v = mu * b[j] + damp * d; b[j] = v; w[j] -= lr * v }
                case (false, true):
                    for j in range {
                        let d = g[j] + wd * w[j]; let v = mu * b[j] + damp * d; b[j] = v; w[j] -= lr * (d + mu * v)
                    }
                }
            }
        }
        steps += 1
    }

    public func state() -> OptimizerState { buffers.state(step: steps) }

    public func loadState(_ state: OptimizerState) throws {
        try buffers.load(state)
        steps = state.step
    }
}
