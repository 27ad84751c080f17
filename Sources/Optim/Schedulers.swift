import Foundation

/// A learning-rate schedule by epoch, in closed form so that a resumed run needs only the
/// epoch number. `learningRate(epoch:)` is the rate used during that (0-based) epoch.
public enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// PyTorch's `StepLR`: `base · γ^⌊epoch / stepSize⌋`.
    case step(stepSize: Int, gamma: Double)
    /// PyTorch's `ExponentialLR`: `base · γ^epoch`.
    case exponential(gamma: Double)
    /// PyTorch's `CosineAnnealingLR`: `η_min + (base − η_min)(1 + cos(π · epoch / T_max)) / 2`.
    case cosine(tMax: Int, etaMin: Double)

    public func learningRate(base: Double, epoch: Int) -> Double {
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma):
            return base * pow(gamma, Double(epoch / max(stepSize, 1)))
        case let .exponential(gamma):
            return base * pow(gamma, Double(epoch))
        case let .cosine(tMax, etaMin):
            let t = Double(min(epoch, tMax))
            return etaMin + (base - etaMin) * (1 + cos(Double.pi * t / Double(max(tMax, 1)))) / 2
        }
    }
}
