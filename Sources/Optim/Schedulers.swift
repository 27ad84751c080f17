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
    /// PyTorch's `OneCycleLR`, set per optimizer step (`OneCycle.values(at:)`); as an
    /// epoch rate it is the initial rate.
    case oneCycle(OneCycle)

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
        case let .oneCycle(cycle):
            return cycle.values(at: 0).lr
        }
    }
}

/// PyTorch's `OneCycleLR`, stepped once per optimizer step: the learning rate rises from
/// `maxLR / divFactor` to `maxLR` over the first `pctStart` of `totalSteps`, then anneals
/// to `maxLR / divFactor / finalDivFactor` (with `threePhase`, it first comes back down to
/// the initial rate, symmetrically, and anneals from there); the momentum (SGD's momentum,
/// Adam's beta1) moves the opposite way between `maxMomentum` and `baseMomentum` when
/// `cycleMomentum`. Phases end at PyTorch's (fractional) steps `pctStart·T − 1`,
/// `2·pctStart·T − 2` and `T − 1`.
public struct OneCycle: Sendable, Equatable {
    public enum Anneal: String, Sendable, CaseIterable { case cos, linear }

    public var maxLR: Double
    public var totalSteps: Int
    public var pctStart = 0.3
    public var anneal = Anneal.cos
    public var divFactor = 25.0
    public var finalDivFactor = 1e4
    public var threePhase = false
    public var cycleMomentum = true
    public var baseMomentum = 0.85
    public var maxMomentum = 0.95

    public init(maxLR: Double, totalSteps: Int) {
        self.maxLR = maxLR
        self.totalSteps = totalSteps
    }

    private struct Phase { var end: Double; var lr: (Double, Double); var momentum: (Double, Double) }

    private var phases: [Phase] {
        let initial = maxLR / divFactor, minimum = initial / finalDivFactor, t = Double(totalSteps)
        if threePhase {
            return [Phase(end: pctStart * t - 1, lr: (initial, maxLR), momentum: (maxMomentum, baseMomentum)),
                    Phase(end: 2 * pctStart * t - 2, lr: (maxLR, initial), momentum: (baseMomentum, maxMomentum)),
                    Phase(end: t - 1, lr: (initial, minimum), momentum: (maxMomentum, maxMomentum))]
        }
        return [Phase(end: pctStart * t - 1, lr: (initial, maxLR), momentum: (maxMomentum, baseMomentum)),
                Phase(end: t - 1, lr: (maxLR, minimum), momentum: (baseMomentum, maxMomentum))]
    }

    /// The learning rate and momentum for optimizer step `step` (0 = the first).
    public func values(at step: Int) -> (lr: Double, momentum: Double) {
        let phases = self.phases
        var start = 0.0
        for (i, phase) in phases.enumerated() {
            if Double(step) <= phase.end || i == phases.count - 1 {
                // Past `totalSteps` (PyTorch raises) the last phase's end value holds.
                let pct = min((Double(step) - start) / (phase.end - start), 1)
                return (interpolate(phase.lr, pct), interpolate(phase.momentum, pct))
            }
            start = phase.end
        }
        return (maxLR, maxMomentum)  // unreachable: the last phase always answers
    }

    private func interpolate(_ range: (Double, Double), _ pct: Double) -> Double {
        switch anneal {
        case .cos: return range.1 + (range.0 - range.1) / 2 * (cos(Double.pi * pct) + 1)
        case .linear: return (range.1 - range.0) * pct + range.0
        }
    }
}
