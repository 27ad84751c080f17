import Autograd
import NN
import Testing
import TestSupport

/// Every conv2d, max_pool2d, linear, nll_loss and cross_entropy case of torch_ops.json,
/// through the functional API and the graph: output and every gradient element by
/// element (rtol 1e-4, atol 1e-5).
struct ReferenceLayerTests {
    static let ops: Set<String> = ["conv2d", "max_pool2d", "linear", "nll_loss", "cross_entropy"]

    static func cases() throws -> [ReferenceCase] { try loadReferenceCases().filter { ops.contains($0.op) } }

    static func pair(_ c: ReferenceCase, _ key: String, default value: Int) -> Pair {
        guard let list = c.ints(key), list.count == 2 else { return Pair(value) }
        return Pair(list[0], list[1])
    }

    @Test func everyLayerOpIsCovered() throws {
        #expect(Set(try Self.cases().map(\.op)) == Self.ops)
    }

    @Test(arguments: try cases())
    func matchesPyTorch(_ c: ReferenceCase) throws {
        var inputs: [String: Tensor] = [:]
        for (name, a) in c.inputs {
            inputs[name] = try Tensor(shape: a.shape, data: a.data.map(Float.init), requiresGrad: true)
        }
        let output: Tensor
        switch c.op {
        case "conv2d":
            output = try F.conv2d(
                #require(inputs["input"]), weight: #require(inputs["weight"]), bias: inputs["bias"],
                stride: Self.pair(c, "stride", default: 1), padding: Self.pair(c, "padding", default: 0),
                dilation: Self.pair(c, "dilation", default: 1))
        case "max_pool2d":
            output = try F.maxPool2d(
                #require(inputs["input"]), kernelSize: Self.pair(c, "kernel_size", default: 2),
                stride: Self.pair(c, "stride", default: 2), padding: Self.pair(c, "padding", default: 0))
        case "linear":
            output = try F.linear(#require(inputs["input"]), weight: #require(inputs["weight"]), bias: inputs["bias"])
        case "nll_loss", "cross_entropy":
            let targets = try #require(c.ints("target")).map(Int32.init)
            let reduction = try #require(Reduction(rawValue: c.string("reduction") ?? "mean"))
            let a = try #require(inputs["a"])
            // The reference's nll_loss case feeds log_softmax(a), as a classifier does.
            output = c.op == "nll_loss"
                ? try F.nllLoss(a.logSoftmax(dim: 1), targets: targets, reduction: reduction)
                : try F.crossEntropy(a, targets: targets, reduction: reduction)
        default:
            Issue.record("unhandled op \(c.op)")
            return
        }
        let expected = try #require(c.output)
        #expect(output.count == expected.data.count, "\(c.name): output has \(output.shape), expected \(expected.shape)")
        if let message = compareClose(output.scalars, expected.data, label: "\(c.name) output") {
            Issue.record(Comment(rawValue: message))
        }
        let upstream = try #require(c.gradOutput)
        try output.backward(gradient: Tensor(shape: output.shape, data: upstream.data.map(Float.init)))
        for (name, expectedGrad) in c.grads {
            let grad = try #require(inputs[name]?.grad, "\(c.name): no gradient for \(name)")
            if let message = compareClose(grad.scalars, expectedGrad.data, label: "\(c.name) grad \(name)") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }
}
