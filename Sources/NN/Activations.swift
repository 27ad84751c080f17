import Autograd

// Activation functions beyond ReLU: `nn.functional`'s forms and their modules. Each is
// one graph op with its backward (`Sources/Autograd/Elementwise.swift`).

extension Functional {
    public static func tanh(_ input: Tensor) -> Tensor { input.tanh() }
    public static func sigmoid(_ input: Tensor) -> Tensor { input.sigmoid() }
    public static func leakyRelu(_ input: Tensor, negativeSlope: Float = 0.01) -> Tensor { input.leakyRelu(negativeSlope: negativeSlope) }
    public static func silu(_ input: Tensor) -> Tensor { input.silu() }

    /// `approximate`: `.none` (the exact erf form) or `.tanh`, as PyTorch names them.
    public static func gelu(_ input: Tensor, approximate: GELU.Approximation = .none) -> Tensor {
        input.gelu(tanhApproximation: approximate == .tanh)
    }
}

/// `nn.Tanh`.
public final class Tanh: Module {
    public override init() {}
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { input.tanh() }
}

/// `nn.Sigmoid`.
public final class Sigmoid: Module {
    public override init() {}
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { input.sigmoid() }
}

/// `nn.LeakyReLU(negative_slope)`.
public final class LeakyReLU: Module {
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { input.leakyRelu(negativeSlope: negativeSlope) }
    public override var extraDescription: String { "negative_slope=\(negativeSlope)" }
}

/// `nn.GELU(approximate)`.
public final class GELU: Module {
    /// PyTorch's `approximate` argument: `'none'` (erf) or `'tanh'`.
    public enum Approximation: String, Sendable, CaseIterable {
        case none, tanh
    }

    public let approximate: Approximation
    public init(approximate: Approximation = .none) { self.approximate = approximate }
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { F.gelu(input, approximate: approximate) }
    public override var extraDescription: String { "approximate='\(approximate.rawValue)'" }
}

/// `nn.SiLU`.
public final class SiLU: Module {
    public override init() {}
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { input.silu() }
}
