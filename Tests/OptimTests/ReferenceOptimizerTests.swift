import Autograd
import Optim
import Testing
import TestSupport

/// Every optimizer case of torch_ops.json: parameters after each step within 1e-6.
struct ReferenceOptimizerTests {
    static func cases() throws -> [ReferenceCase] { try loadReferenceCases().filter { $0.op == "optimizer" } }

    /// The settings each case's name stands for (shared/README.md spells them out).
    static func makeOptimizer(_ name: String, _ p: Tensor) throws -> any Optimizer {
        switch name {
        case "sgd_lr0.1": return try SGD(parameters: [p], learningRate: 0.1)
        case "sgd_momentum0.9_lr0.05": return try SGD(parameters: [p], learningRate: 0.05, momentum: 0.9)
        case "sgd_nesterov_wd":
            return try SGD(parameters: [p], learningRate: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true)
        case "adam_lr0.01": return try Adam(parameters: [p], learningRate: 0.01)
        case "adam_wd_betas":
            return try Adam(parameters: [p], learningRate: 0.003, betas: (0.8, 0.99), epsilon: 1e-6, weightDecay: 0.1)
        case "adamw_lr0.01_wd0.05": return try Adam.adamW(parameters: [p], learningRate: 0.01, weightDecay: 0.05)
        default: throw ReferenceError.malformed("unknown optimizer case \(name)")
        }
    }

    @Test func sixOptimizerCases() throws { #expect(try Self.cases().count == 6) }

    @Test(arguments: try cases())
    func matchesPyTorch(_ c: ReferenceCase) throws {
        let initial = try #require(c.inputs["param"])
        let p = try Tensor(shape: initial.shape, data: initial.data.map(Float.init), requiresGrad: true)
        let optimizer = try Self.makeOptimizer(try #require(c.string("optimizer")), p)
        #expect(c.gradsPerStep.count == c.paramsAfterStep.count && !c.gradsPerStep.isEmpty)
        for (step, (grad, expected)) in zip(c.gradsPerStep, c.paramsAfterStep).enumerated() {
            optimizer.zeroGrad()
            p.grad = try Tensor(shape: p.shape, data: grad.map(Float.init))
            try optimizer.step()
            if let message = compareClose(p.scalars, expected, rtol: 0, atol: 1e-6, label: "\(c.name) step \(step + 1)") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }

    @Test func stateRoundTripContinuesIdentically() throws {
        let grads: [[Float]] = [[0.5, -1, 2], [0.1, 0.2, -0.3], [1, 1, 1], [-2, 0, 0.5]]
        func run(split: Bool) throws -> [Float] {
            var p = try Tensor(shape: [3], data: [1, 2, 3], requiresGrad: true)
            var optimizer = try Adam(parameters: [p], learningRate: 0.01, weightDecay: 0.1)
            for (i, g) in grads.enumerated() {
                if split && i == 2 {  // rebuild from saved state, as a resumed run does
                    let saved = optimizer.state()
                    p = try Tensor(shape: [3], data: p.scalars, requiresGrad: true)
                    optimizer = try Adam(parameters: [p], learningRate: 0.01, weightDecay: 0.1)
                    try optimizer.loadState(saved)
                }
                p.grad = Tensor(g)
                try optimizer.step()
            }
            return p.scalars
        }
        #expect(try run(split: false) == run(split: true))
        let optimizer = try SGD(parameters: [Tensor([1, 2])], learningRate: 0.1, momentum: 0.9)
        #expect(throws: OptimizerError.self) { try optimizer.loadState(OptimizerState(step: 1, buffers: ["0.momentum_buffer": [1]])) }
    }

    @Test func invalidHyperparametersAreRejected() {
        #expect(throws: OptimizerError.self) { try SGD(parameters: [], learningRate: -1) }
        #expect(throws: OptimizerError.self) { try SGD(parameters: [], learningRate: 0.1, nesterov: true) }
        #expect(throws: OptimizerError.self) { try Adam(parameters: [], betas: (1.0, 0.999)) }
        #expect(throws: OptimizerError.self) { try Adam(parameters: [], learningRate: .nan) }
    }

    @Test func schedules() {
        #expect(LearningRateSchedule.step(stepSize: 2, gamma: 0.1).learningRate(base: 1, epoch: 3) == 0.1)
        let cosine = LearningRateSchedule.cosine(tMax: 10, etaMin: 0)
        #expect(cosine.learningRate(base: 1, epoch: 0) == 1)
        #expect(abs(cosine.learningRate(base: 1, epoch: 5) - 0.5) < 1e-12)
        #expect(abs(cosine.learningRate(base: 1, epoch: 10)) < 1e-12)
        #expect(abs(LearningRateSchedule.exponential(gamma: 0.5).learningRate(base: 1, epoch: 2) - 0.25) < 1e-12)
    }
}
