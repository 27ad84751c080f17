import Autograd
import Foundation
import NN
import Testing
import TestSupport

/// The activations of torch_layers.json (tanh, sigmoid, leaky_relu, gelu both forms,
/// silu) through their modules: output and input gradient element by element (rtol 1e-4,
/// atol 1e-5), PyTorch's printed descriptions, and grad_fn names.
struct ActivationTests {
    static let ops: Set<String> = ["tanh", "sigmoid", "leaky_relu", "gelu", "silu"]

    static func cases() throws -> [ReferenceCase] { try loadLayerReferenceCases().filter { ops.contains($0.op) } }

    static func module(for c: ReferenceCase) throws -> Module {
        switch c.op {
        case "tanh": return Tanh()
        case "sigmoid": return Sigmoid()
        case "leaky_relu": return LeakyReLU(negativeSlope: Float((c.params["negative_slope"] as? NSNumber)?.doubleValue ?? 0.01))
        case "gelu": return GELU(approximate: try #require(GELU.Approximation(rawValue: c.string("approximate") ?? "none")))
        default: return SiLU()
        }
    }

    @Test func everyActivationIsCovered() throws {
        #expect(Set(try Self.cases().map(\.op)) == Self.ops)
        #expect(try Self.cases().count == 6)  // gelu twice: none and tanh
    }

    @Test(arguments: try cases())
    func matchesPyTorch(_ c: ReferenceCase) throws {
        let a = try #require(c.inputs["input"])
        let x = try Tensor(shape: a.shape, data: a.data.map(Float.init), requiresGrad: true)
        let y = try Self.module(for: c)(x)
        if let message = compareClose(y.scalars, try #require(c.output).data, label: "\(c.name) output") {
            Issue.record(Comment(rawValue: message))
        }
        let g = try #require(c.gradOutput)
        try y.backward(gradient: Tensor(shape: y.shape, data: g.data.map(Float.init)))
        if let message = compareClose(try #require(x.grad).scalars, try #require(c.grads["input"]).data, label: "\(c.name) grad") {
            Issue.record(Comment(rawValue: message))
        }
    }

    @Test func descriptionsAndGradFnsLikePyTorch() throws {
        #expect("\(Tanh())" == "Tanh()" && "\(Sigmoid())" == "Sigmoid()" && "\(SiLU())" == "SiLU()")
        #expect("\(LeakyReLU())" == "LeakyReLU(negative_slope=0.01)")
        #expect("\(GELU())" == "GELU(approximate='none')" && "\(GELU(approximate: .tanh))" == "GELU(approximate='tanh')")
        let x = Tensor([-1.0, 0.5], requiresGrad: true)
        #expect(x.leakyRelu().gradFn?.name == "LeakyReluBackward0")
        #expect(x.gelu().gradFn?.name == "GeluBackward0" && x.silu().gradFn?.name == "SiluBackward0")
    }

    /// Central differences (step 1e-2) of Σ w·f(x), away from leaky_relu's kink at 0.
    @Test(arguments: ["leaky_relu", "gelu", "gelu_tanh", "silu"])
    func finiteDifferences(_ op: String) throws {
        let values: [Float] = [-2.1, -0.7, -0.3, 0.4, 0.9, 1.7, 3.2]
        let weights: [Float] = [0.3, -1.2, 0.8, 0.5, -0.4, 1.1, 0.7]
        func f(_ x: Tensor) -> Tensor {
            switch op {
            case "leaky_relu": return x.leakyRelu(negativeSlope: 0.2)
            case "gelu": return x.gelu()
            case "gelu_tanh": return x.gelu(tanhApproximation: true)
            default: return x.silu()
            }
        }
        let x = try Tensor(shape: [values.count], data: values, requiresGrad: true)
        try (f(x) * Tensor(shape: [weights.count], data: weights)).sum().backward()
        let analytic = try #require(x.grad).scalars
        let h: Float = 1e-2
        let numeric = values.indices.map { i -> Double in
            func at(_ v: Float) -> Double {
                var shifted = values
                shifted[i] = v
                return zip(f(try! Tensor(shape: [values.count], data: shifted)).scalars, weights).reduce(0) { $0 + Double($1.0 * $1.1) }
            }
            return (at(values[i] + h) - at(values[i] - h)) / Double(2 * h)
        }
        if let message = compareClose(analytic, numeric, rtol: 1e-2, atol: 1e-3, label: op) { Issue.record(Comment(rawValue: message)) }
    }
}
