import Autograd
import Foundation
import NN
import Testing
import TestSupport

/// Batch norm against torch_layers.json: output, every gradient and the running
/// statistics after the call, element by element (rtol 1e-4, atol 1e-5).
struct BatchNormTests {
    static func cases() throws -> [ReferenceCase] { try loadLayerReferenceCases().filter { $0.op == "batch_norm" } }

    static func tensor(_ a: ReferenceCase.Array, requiresGrad: Bool = false) throws -> Tensor {
        try Tensor(shape: a.shape, data: a.data.map(Float.init), requiresGrad: requiresGrad)
    }

    @Test func everyCaseIsHere() throws { #expect(try Self.cases().count == 4) }

    @Test(arguments: try cases())
    func matchesPyTorch(_ c: ReferenceCase) throws {
        let x = try Self.tensor(try #require(c.inputs["input"]), requiresGrad: true)
        let channels = x.shape[1]
        let eps = (c.params["eps"] as? NSNumber)?.doubleValue ?? 1e-5
        let momentum = (c.params["momentum"] as? NSNumber)?.doubleValue ?? 0.1
        let bn: BatchNorm = x.rank == 4
            ? BatchNorm2d(channels, eps: eps, momentum: momentum) : BatchNorm1d(channels, eps: eps, momentum: momentum)
        let weight = try #require(bn.weight), bias = try #require(bn.bias)
        try weight.withUnsafeMutableBufferPointer { p in for (i, v) in try #require(c.inputs["weight"]).data.enumerated() { p[i] = Float(v) } }
        try bias.withUnsafeMutableBufferPointer { p in for (i, v) in try #require(c.inputs["bias"]).data.enumerated() { p[i] = Float(v) } }
        try bn.loadStateDict([
            "weight": ([channels], .float32(weight.scalars)), "bias": ([channels], .float32(bias.scalars)),
            "running_mean": ([channels], .float32(try #require(c.state["running_mean"]).data.map(Float.init))),
            "running_var": ([channels], .float32(try #require(c.state["running_var"]).data.map(Float.init))),
            "num_batches_tracked": ([], .int64([0])),
        ])
        let training = (c.params["training"] as? NSNumber)?.boolValue ?? true
        bn.train(training)
        let y = try bn(x)
        if let message = compareClose(y.scalars, try #require(c.output).data, label: "\(c.name) output") { Issue.record(Comment(rawValue: message)) }
        try y.backward(gradient: Self.tensor(try #require(c.gradOutput)))
        for (name, tensor) in [("input", x), ("weight", weight), ("bias", bias)] {
            let expected = try #require(c.grads[name])
            if let message = compareClose(try #require(tensor.grad).scalars, expected.data, label: "\(c.name) grad \(name)") {
                Issue.record(Comment(rawValue: message))
            }
        }
        for (name, buffer) in [("running_mean", bn.runningMean), ("running_var", bn.runningVar)] {
            guard case let .float32(values)? = buffer?.values else { Issue.record("\(name) is not float32"); continue }
            let expected = try #require(c.stateAfter[name] ?? c.state[name])
            if let message = compareClose(values, expected.data, label: "\(c.name) \(name) after") { Issue.record(Comment(rawValue: message)) }
        }
        #expect(bn.numBatchesTracked?.values == .int64([training ? 1 : 0]))
    }

    @Test func descriptionStateDictAndShapes() throws {
        let bn = BatchNorm2d(8)
        #expect("\(bn)" == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")
        #expect(bn.stateDict().map(\.name) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
        #expect(try bn.outputShape(for: [8, 5, 5]) == [8, 5, 5])
        #expect(throws: NNError.self) { try bn.outputShape(for: [7, 5, 5]) }
        #expect(throws: NNError.self) { try BatchNorm1d(4)(Tensor.zeros(1, 4)) }  // one value per channel in training
        let plain = BatchNorm1d(3, affine: false, trackRunningStats: false)
        #expect(plain.stateDict().isEmpty && "\(plain)".hasSuffix("affine=False, track_running_stats=False)"))
    }

    /// Central differences of Σ w·bn(x) in training mode (the batch statistics depend on x).
    @Test func finiteDifferences() throws {
        let values: [Float] = (0..<24).map { Float(($0 * 37) % 11) / 5 - 1 }
        let weights: [Float] = (0..<24).map { Float(($0 * 13) % 7) / 3 - 1 }
        let w = try Tensor(shape: [3, 2, 2, 2], data: weights)
        func objective(_ data: [Float]) throws -> Double {
            Double(try (try BatchNorm2d(2)(Tensor(shape: [3, 2, 2, 2], data: data)) * w).sum().item())
        }
        let x = try Tensor(shape: [3, 2, 2, 2], data: values, requiresGrad: true)
        try (try BatchNorm2d(2)(x) * w).sum().backward()
        let analytic = try #require(x.grad).scalars
        let h: Float = 1e-2
        let numeric = try values.indices.map { i -> Double in
            var plus = values, minus = values
            plus[i] += h
            minus[i] -= h
            return (try objective(plus) - objective(minus)) / Double(2 * h)
        }
        if let message = compareClose(analytic, numeric, rtol: 2e-2, atol: 2e-3, label: "batch_norm input") { Issue.record(Comment(rawValue: message)) }
    }
}
