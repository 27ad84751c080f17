import Autograd
import NN
import Testing
import TestSupport

/// `cross_entropy(label_smoothing=0.1)` of torch_layers.json: loss and input gradient
/// (rtol 1e-4, atol 1e-5); on log-probabilities, NLL with the same smoothing agrees.
struct LabelSmoothingTests {
    @Test func matchesPyTorch() throws {
        let c = try #require(try loadLayerReferenceCases().first { $0.op == "cross_entropy" })
        let a = try #require(c.inputs["input"])
        let targets = try #require(c.ints("target")).map(Int32.init)
        let x = try Tensor(shape: a.shape, data: a.data.map(Float.init), requiresGrad: true)
        let loss = try F.crossEntropy(x, targets: targets, labelSmoothing: 0.1)
        if let message = compareClose(loss.scalars, try #require(c.output).data, label: "loss") { Issue.record(Comment(rawValue: message)) }
        try loss.backward(gradient: Tensor(shape: [], data: try #require(c.gradOutput).data.map(Float.init)))
        if let message = compareClose(try #require(x.grad).scalars, try #require(c.grads["input"]).data, label: "grad") {
            Issue.record(Comment(rawValue: message))
        }
        // The same loss through log_softmax + NLL, as a network ending in log_softmax trains.
        let viaNLL = try F.nllLoss(x.logSoftmax(dim: 1), targets: targets, labelSmoothing: 0.1)
        if let message = compareClose(viaNLL.scalars, try #require(c.output).data, label: "nll") { Issue.record(Comment(rawValue: message)) }
        // ε = 0 is plain NLL, to the bit.
        #expect(try F.nllLoss(x.logSoftmax(dim: 1), targets: targets, labelSmoothing: 0).scalars
                == F.nllLoss(x.logSoftmax(dim: 1), targets: targets).scalars)
    }
}
