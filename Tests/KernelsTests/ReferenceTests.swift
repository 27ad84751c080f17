import Kernels
import TestSupport
import Testing

/// Every conv2d and max_pool2d case of `reference/torch_ops.json`, element by element.
@Suite struct ReferenceTests {
    static func cases(_ op: String) throws -> [ReferenceCase] {
        try loadReferenceCases().filter { $0.op == op }
    }

    static func pair(_ c: ReferenceCase, _ key: String, default value: (Int, Int)) throws -> (Int, Int) {
        guard let list = c.ints(key) else { return value }
        try #require(list.count == 2, "\(c.name): params.\(key) = \(list); expected 2 values")
        return (list[0], list[1])
    }

    @Test func referenceHasConvAndPoolCases() throws {
        #expect(try Self.cases("conv2d").count >= 7)
        #expect(try Self.cases("max_pool2d").count >= 4)
    }

    @Test(arguments: try ReferenceTests.cases("conv2d").map(\.name))
    func conv2dMatchesTorch(name: String) throws {
        let c = try #require(try Self.cases("conv2d").first { $0.name == name })
        let input = try #require(c.inputs["input"], "\(name): inputs.input missing")
        let weight = try #require(c.inputs["weight"], "\(name): inputs.weight missing")
        let bias = c.inputs["bias"]
        let shape = try Conv2dShape(
            input: input.shape, weight: weight.shape,
            stride: try Self.pair(c, "stride", default: (1, 1)),
            padding: try Self.pair(c, "padding", default: (0, 0)),
            dilation: try Self.pair(c, "dilation", default: (1, 1)),
            groups: c.int("groups") ?? 1)
        let expected = try #require(c.output)
        #expect(shape.outputShape == expected.shape)

        let x = input.data.map(Float.init), w = weight.data.map(Float.init)
        let output = convForward(shape, x, w, bias?.data.map(Float.init))
        if let message = compareClose(output, expected.data, label: "\(name) output") { Issue.record(Comment(rawValue: message)) }

        let gradOutput = try #require(c.gradOutput).data.map(Float.init)
        let gradInput = convBackwardInput(shape, gradOutput, w)
        let expectedInput = try #require(c.grads["input"])
        if let message = compareClose(gradInput, expectedInput.data, label: "\(name) grad input") { Issue.record(Comment(rawValue: message)) }

        let (gradWeight, gradBias) = convBackwardWeight(shape, x, gradOutput)
        let expectedWeight = try #require(c.grads["weight"])
        if let message = compareClose(gradWeight, expectedWeight.data, label: "\(name) grad weight") { Issue.record(Comment(rawValue: message)) }
        if let expectedBias = c.grads["bias"] {
            if let message = compareClose(gradBias, expectedBias.data, label: "\(name) grad bias") { Issue.record(Comment(rawValue: message)) }
        }
    }

    @Test(arguments: try ReferenceTests.cases("max_pool2d").map(\.name))
    func maxPool2dMatchesTorch(name: String) throws {
        let c = try #require(try Self.cases("max_pool2d").first { $0.name == name })
        let input = try #require(c.inputs["input"], "\(name): inputs.input missing")
        let kernel = try Self.pair(c, "kernel_size", default: (0, 0))
        let shape = try Pool2dShape(
            input: input.shape, kernel: kernel,
            stride: try Self.pair(c, "stride", default: kernel),
            padding: try Self.pair(c, "padding", default: (0, 0)),
            dilation: try Self.pair(c, "dilation", default: (1, 1)))
        let expected = try #require(c.output)
        #expect(shape.outputShape == expected.shape)

        let (output, argmax) = poolForward(shape, input.data.map(Float.init))
        if let message = compareClose(output, expected.data, label: "\(name) output") { Issue.record(Comment(rawValue: message)) }
        let gradOutput = try #require(c.gradOutput).data.map(Float.init)
        let gradInput = poolBackward(shape, gradOutput, argmax)
        let expectedInput = try #require(c.grads["input"])
        if let message = compareClose(gradInput, expectedInput.data, label: "\(name) grad input") { Issue.record(Comment(rawValue: message)) }
    }
}
