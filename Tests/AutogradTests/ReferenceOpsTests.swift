import Autograd
import Testing
import TestSupport

/// Every case of torch_ops.json whose op the core covers: output and every input gradient
/// element by element (rtol 1e-4, atol 1e-5).
struct ReferenceOpsTests {
    static let coreOps: Set<String> = [
        "add", "sub", "mul", "div", "pow", "exp", "log", "relu", "sum", "mean", "matmul", "view",
        "softmax", "log_softmax",
    ]

    static func cases() throws -> [ReferenceCase] {
        try loadReferenceCases().filter { coreOps.contains($0.op) }
    }

    @Test func referenceFileCoversEveryCoreOp() throws {
        #expect(Set(try Self.cases().map(\.op)) == Self.coreOps)
    }

    @Test(arguments: try cases())
    func matchesPyTorch(_ c: ReferenceCase) throws {
        let names = c.inputs.keys.sorted()
        var inputs: [String: Tensor] = [:]
        for name in names {
            let a = try #require(c.inputs[name])
            inputs[name] = try Tensor(shape: a.shape, data: a.data.map(Float.init), requiresGrad: true)
        }
        let a = try #require(inputs["a"])
        let output: Tensor
        switch c.op {
        case "add": output = try a + #require(inputs["b"])
        case "sub": output = try a - #require(inputs["b"])
        case "mul": output = try a * #require(inputs["b"])
        case "div": output = try a / #require(inputs["b"])
        case "matmul": output = try a.matmul(#require(inputs["b"]))
        case "pow": output = a ** Float(try #require(c.int("exponent")))
        case "exp": output = a.exp()
        case "log": output = a.log()
        case "relu": output = a.relu()
        case "sum": output = try c.int("dim").map { try a.sum(dim: $0) } ?? a.sum()
        case "mean": output = try c.int("dim").map { try a.mean(dim: $0) } ?? a.mean()
        case "view": output = try a.view(#require(c.ints("shape")))
        case "softmax": output = try a.softmax(dim: #require(c.int("dim")))
        case "log_softmax": output = try a.logSoftmax(dim: #require(c.int("dim")))
        default: Issue.record("unhandled op \(c.op)"); return
        }
        let expected = try #require(c.output)
        #expect(output.shape == expected.shape, "\(c.name): output shape")
        if let message = compareClose(output.scalars, expected.data, label: "\(c.name) output") {
            Issue.record(Comment(rawValue: message))
        }
        let upstream = try #require(c.gradOutput)
        try output.backward(gradient: Tensor(shape: upstream.shape, data: upstream.data.map(Float.init)))
        for name in names {
            let expectedGrad = try #require(c.grads[name], "\(c.name): no reference grad for \(name)")
            let grad = try #require(inputs[name]?.grad, "\(c.name): no grad for \(name)")
            #expect(grad.shape == expectedGrad.shape || grad.count == expectedGrad.data.count)
            if let message = compareClose(grad.scalars, expectedGrad.data, label: "\(c.name) grad \(name)") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }
}
