import Autograd
import Foundation
import NN
import Testing
import TestSupport

/// avg_pool2d (incl. count_include_pad false and ceil mode), adaptive_avg_pool2d and
/// max_pool2d in ceil mode against torch_layers.json: output and input gradient element by
/// element (rtol 1e-4, atol 1e-5), through the modules.
struct PoolingTests {
    static let ops: Set<String> = ["avg_pool2d", "adaptive_avg_pool2d", "max_pool2d"]

    static func cases() throws -> [ReferenceCase] { try loadLayerReferenceCases().filter { ops.contains($0.op) } }

    static func pair(_ c: ReferenceCase, _ key: String, default value: Int) -> Pair {
        guard let list = c.ints(key), list.count == 2 else { return Pair(value) }
        return Pair(list[0], list[1])
    }

    static func flag(_ c: ReferenceCase, _ key: String, default value: Bool) -> Bool {
        (c.params[key] as? NSNumber)?.boolValue ?? value
    }

    @Test func everyCaseIsHere() throws { #expect(try Self.cases().count == 8) }

    @Test(arguments: try cases())
    func matchesPyTorch(_ c: ReferenceCase) throws {
        let a = try #require(c.inputs["input"])
        let x = try Tensor(shape: a.shape, data: a.data.map(Float.init), requiresGrad: true)
        let kernel = Self.pair(c, "kernel_size", default: 2)
        let module: Module
        switch c.op {
        case "avg_pool2d":
            module = AvgPool2d(kernelSize: kernel, stride: Self.pair(c, "stride", default: kernel.height),
                               padding: Self.pair(c, "padding", default: 0), ceilMode: Self.flag(c, "ceil_mode", default: false),
                               countIncludePad: Self.flag(c, "count_include_pad", default: true))
        case "adaptive_avg_pool2d":
            module = AdaptiveAvgPool2d(outputSize: Self.pair(c, "output_size", default: 1))
        default:
            module = MaxPool2d(kernelSize: kernel, stride: Self.pair(c, "stride", default: kernel.height),
                               padding: Self.pair(c, "padding", default: 0), ceilMode: Self.flag(c, "ceil_mode", default: false))
        }
        let y = try module(x)
        let expected = try #require(c.output)
        #expect(y.shape == expected.shape, "\(c.name): \(y.shape) vs \(expected.shape)")
        #expect(try module.outputShape(for: Array(a.shape.dropFirst())) == Array(expected.shape.dropFirst()))
        if let message = compareClose(y.scalars, expected.data, label: "\(c.name) output") { Issue.record(Comment(rawValue: message)) }
        let g = try #require(c.gradOutput)
        try y.backward(gradient: Tensor(shape: y.shape, data: g.data.map(Float.init)))
        if let message = compareClose(try #require(x.grad).scalars, try #require(c.grads["input"]).data, label: "\(c.name) grad") {
            Issue.record(Comment(rawValue: message))
        }
    }

    @Test func descriptionsLikePyTorch() throws {
        #expect("\(AvgPool2d(kernelSize: 2))" == "AvgPool2d(kernel_size=2, stride=2, padding=0)")
        #expect("\(AdaptiveAvgPool2d(outputSize: 1))" == "AdaptiveAvgPool2d(output_size=1)")
        #expect("\(AdaptiveAvgPool2d(outputSize: Pair(3, 2)))" == "AdaptiveAvgPool2d(output_size=(3, 2))")
        #expect("\(MaxPool2d(kernelSize: 2, ceilMode: true))".hasSuffix("ceil_mode=True)"))
        let x = Tensor.zeros(shape: [1, 1, 4, 4], requiresGrad: true)
        #expect(try F.avgPool2d(x, kernelSize: 2).gradFn?.name == "AvgPool2DBackward0")
        #expect(try F.adaptiveAvgPool2d(x, outputSize: 1).gradFn?.name == "AdaptiveAvgPool2DBackward0")
    }
}
