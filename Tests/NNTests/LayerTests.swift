import Autograd
import Kernels
import NN
import Seeded
import Testing
import TestSupport

struct LayerTests {
    @Test func tutorialConvolutionShapes() throws {
        var g = SeededGenerator(seed: 1)
        let input = Tensor.randn([20, 16, 50, 100], using: &g)
        let m1 = Conv2d(16, 33, 3, stride: 2, generator: &g)
        let m2 = Conv2d(inChannels: 16, outChannels: 33, kernelSize: 3, stride: 2, generator: &g)
        let m3 = Conv2d(inChannels: 16, outChannels: 33, kernelSize: Pair(3, 5), stride: Pair(2, 1),
                        padding: Pair(4, 2), generator: &g)
        let m4 = Conv2d(inChannels: 16, outChannels: 33, kernelSize: Pair(3, 5), stride: Pair(2, 1),
                        padding: Pair(4, 2), dilation: Pair(3, 1), generator: &g)
        let shapes = try withNoGrad { () throws -> [[Int]] in
            [try m1(input).shape, try m2(input).shape, try m3(input).shape, try m4(input).shape]
        }
        #expect(shapes == [[20, 33, 24, 49], [20, 33, 24, 49], [20, 33, 28, 100], [20, 33, 26, 100]])
        let filters = Tensor.randn([8, 4, 3, 3], using: &g)
        let inputs = Tensor.randn([1, 4, 5, 5], using: &g)
        #expect(try F.conv2d(inputs, weight: filters, padding: 1).shape == [1, 8, 5, 5])
        let map = Tensor.randn([1, 20, 24, 24], using: &g)
        #expect(try F.maxPool2d(map, kernelSize: 2, stride: 2).shape == [1, 20, 12, 12])
        let relu = try F.relu(Conv2d(3, 20, 5, generator: &g)(Tensor.randn([4, 3, 28, 28], using: &g)))
        #expect(relu.shape == [4, 20, 24, 24])
        #expect(relu.gradFn?.name == "ReluBackward0")
    }

    @Test func shapeErrorsNameBothShapes() throws {
        var g = SeededGenerator(seed: 1)
        let conv = Conv2d(3, 8, 3, generator: &g)
        let error = try #require(throws: (any Error).self) { try conv(Tensor.zeros(1, 4, 10, 10)) }
        let text = "\(error)"
        #expect(text.contains("[1, 4, 10, 10]") && text.contains("[8, 3, 3, 3]"), "\(text)")
        let big = try #require(throws: (any Error).self) { try Conv2d(1, 1, 7, generator: &g)(Tensor.zeros(1, 1, 5, 5)) }
        #expect("\(big)".contains("[1, 1, 5, 5]") && "\(big)".contains("[7, 7]"), "\(big)")
        let linear = try #require(throws: NNError.self) { try Linear(800, 500, generator: &g)(Tensor.zeros(2, 799)) }
        #expect("\(linear)".contains("[2, 799]") && "\(linear)".contains("[500, 800]"))
    }

    @Test func descriptionsLikePyTorch() throws {
        var g = SeededGenerator(seed: 1)
        #expect("\(Conv2d(1, 20, 5, stride: 1, generator: &g))" == "Conv2d(1, 20, kernel_size=(5, 5), stride=(1, 1))")
        #expect("\(Conv2d(16, 33, Pair(3, 5), stride: Pair(2, 1), padding: Pair(4, 2), dilation: Pair(3, 1), generator: &g))"
            == "Conv2d(16, 33, kernel_size=(3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1))")
        #expect("\(Linear(784, 10, generator: &g))" == "Linear(in_features=784, out_features=10, bias=True)")
        #expect("\(MaxPool2d(kernelSize: 2))" == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)")
        #expect("\(ReLU())" == "ReLU()")
        let net = Models.lenet(generator: &g)
        #expect("\(net)".hasPrefix("Sequential(\n  (conv1): Conv2d(1, 20, kernel_size=(5, 5), stride=(1, 1))\n  (relu1): ReLU()\n"))
        #expect(net.namedParameters().map(\.name)
            == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        #expect(net.parameterCount == 20 * 25 + 20 + 50 * 500 + 50 + 800 * 500 + 500 + 500 * 10 + 10)
    }

    @Test func pyTorchDefaultInitialisationBounds() throws {
        var g = SeededGenerator(seed: 5)
        let conv = Conv2d(20, 50, 5, generator: &g)
        let bound = 1 / Float(500).squareRoot()
        let w = conv.weight.scalars
        #expect(w.allSatisfy { abs($0) <= bound })
        #expect(w.max()! > 0.9 * bound && w.min()! < -0.9 * bound)  // spans the range
        #expect(abs(w.reduce(0, +) / Float(w.count)) < 0.01 * bound * 10)
        #expect(conv.bias!.scalars.allSatisfy { abs($0) <= bound })
        let linear = Linear(800, 500, generator: &g)
        #expect(linear.weight.scalars.allSatisfy { abs($0) <= 1 / Float(800).squareRoot() })
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
        #expect(Models.lenet(generator: &g1).parameters().map(\.scalars) == Models.lenet(generator: &g2).parameters().map(\.scalars))
    }

    @Test func trainEvalModeAndDropout() throws {
        let dropout = Dropout(p: 0.5, generator: SeededGenerator(seed: 3))
        let net = Sequential([ReLU(), dropout])
        let x = Tensor.ones(1000)
        let y = try net(x).scalars
        let kept = y.filter { $0 != 0 }
        #expect(kept.allSatisfy { $0 == 2 })
        #expect(abs(Float(kept.count) / 1000 - 0.5) < 0.06)
        net.eval()
        #expect(!dropout.isTraining)
        #expect(try net(x).scalars == x.scalars)
        #expect(throws: NNError.self) {
            var g = SeededGenerator(seed: 1)
            _ = try F.dropout(x, p: 1.5, generator: &g)
        }
    }

    @Test func fusedReluMaxPoolEqualsTheTwoOps() throws {
        var g = SeededGenerator(seed: 11)
        let data = Tensor.randn([3, 4, 10, 10], using: &g).scalars.map { ($0 * 4).rounded() / 4 }  // many ties and zeros
        let a = try Tensor(shape: [3, 4, 10, 10], data: data, requiresGrad: true)
        let b = try Tensor(shape: [3, 4, 10, 10], data: data, requiresGrad: true)
        let fused = try Sequential([ReLU(), MaxPool2d(kernelSize: 2)])(a)
        let separate = try F.maxPool2d(b.relu(), kernelSize: 2)
        #expect(fused.scalars == separate.scalars)
        let upstream = Tensor.randn(fused.shape, using: &g)
        try fused.backward(gradient: upstream)
        try separate.backward(gradient: upstream)
        #expect(a.grad?.scalars == b.grad?.scalars)
        #expect(a.grad?.scalars.contains { $0 != 0 } == true)
    }

    /// Conv2d then MaxPool2d, with a ReLU before, after or nowhere, fused by `Sequential`:
    /// the same output, input gradient and parameter gradients (bit for bit, or to float
    /// rounding where the backward reads the pool's gradient directly) as the layers
    /// one at a time (`forward(observe:)` runs them unfused), with stride, ceil mode and ties
    /// from rounded inputs; padded (the convolution through im2col, in slices) and not (the
    /// direct convolution, each sample pooled as it is convolved).
    @Test(arguments: ["conv-pool", "conv-relu-pool", "conv-pool-relu"], [1, 0])
    func fusedConvolutionPoolEqualsTheLayers(pattern: String, padding: Int) throws {
        var g = SeededGenerator(seed: 12)
        let conv = Conv2d(inChannels: 3, outChannels: 5, kernelSize: 3, padding: Pair(padding), generator: &g)
        let pool = MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true)
        let layers: [Module] = switch pattern {
        case "conv-pool": [conv, pool]
        case "conv-relu-pool": [conv, ReLU(), pool]
        default: [conv, pool, ReLU()]
        }
        let net = Sequential(layers)
        let data = Tensor.randn([4, 3, 12, 12], using: &g).scalars.map { ($0 * 2).rounded() / 2 }
        let side = padding == 1 ? 6 : 5  // 12 → 12 or 10, then ceil((n - 3) / 2) + 1
        let upstreamValues = Tensor.randn([4, 5, side, side], using: &g).scalars
        var results: [(output: [Float], input: [Float], weight: [Float], bias: [Float])] = []
        for fused in [true, false] {
            conv.weight.grad = nil
            conv.bias?.grad = nil
            let x = try Tensor(shape: [4, 3, 12, 12], data: data, requiresGrad: true)
            let y = fused ? try net(x) : try net.forward(x) { _, _, _ in }
            #expect(y.shape == [4, 5, side, side])
            try y.backward(gradient: try Tensor(shape: y.shape, data: upstreamValues))
            results.append((y.scalars, x.grad?.scalars ?? [], conv.weight.grad?.scalars ?? [], conv.bias?.grad?.scalars ?? []))
            if fused {
                #expect(y.gradFn?.name == (pattern == "conv-pool-relu" ? "ReluBackward0" : "MaxPool2DWithIndicesBackward0"))
            }
        }
        let (fused, separate) = (results[0], results[1])
        #expect(fused.output == separate.output, "\(pattern): the fused output differs from the layers'")
        // Unpadded, the fused backward reads the gradient through the pool's argmax
        // (`conv2dPooledGradientIsSparse`) and adds in another order; padded, it runs the
        // same kernels as the layers.
        for (name, actual, wanted) in [("input gradient", fused.input, separate.input),
                                       ("weight gradient", fused.weight, separate.weight),
                                       ("bias gradient", fused.bias, separate.bias)] {
            if padding == 1 {
                #expect(actual == wanted, "\(pattern): the fused \(name) differs from the layers'")
            } else if let m = compareClose(actual, wanted.map(Double.init), rtol: 1e-5, atol: 1e-5,
                                           label: "\(pattern) fused \(name)") {
                Issue.record(Comment(rawValue: m))
            }
        }
        #expect(fused.input.contains { $0 != 0 } && fused.weight.count == 5 * 3 * 9)
        if pattern != "conv-pool" { #expect(fused.output.contains(0)) }
    }

    /// Two Conv2d + MaxPool2d groups in a row, in a pass without gradients, where their kernels
    /// pair (`Conv2dPoolPair.applies`, Winograd's evaluation on): `Sequential` computes them
    /// together (`F.conv2dMaxPool2dPair`), bit for bit as `F.conv2dMaxPool2d` twice, with
    /// the ReLU before one pool and after the other; with gradients recorded it does not
    /// (the output has the second group's `grad_fn`, and the same values).
    @Test func pairedConvolutionPoolsEqualTheTwoOps() throws {
        try Conv2dPlan.$winogradEvaluation.withValue(true) {
            var g = SeededGenerator(seed: 14)
            let conv1 = Conv2d(inChannels: 3, outChannels: 24, kernelSize: 5, generator: &g)
            let conv2 = Conv2d(inChannels: 24, outChannels: 16, kernelSize: 3, generator: &g)
            let net = Sequential([conv1, ReLU(), MaxPool2d(kernelSize: 2), conv2, MaxPool2d(kernelSize: 2), ReLU(), Flatten()])
            let x = Tensor.randn([5, 3, 20, 22], using: &g)
            let s1 = try Conv2dShape(input: x.shape, weight: conv1.weight.shape)
            let p1 = try Pool2dShape(input: s1.outputShape, kernel: (2, 2))
            let s2 = try Conv2dShape(input: p1.outputShape, weight: conv2.weight.shape)
            let p2 = try Pool2dShape(input: s2.outputShape, kernel: (2, 2))
            #expect(Conv2dPoolPair.applies(first: s1, firstPool: p1, second: s2, secondPool: p2))
            let pool = (kernelSize: Pair(2), stride: Pair?.none, padding: Pair(0), dilation: Pair(1), ceilMode: false)
            let (paired, twoOps) = try withNoGrad {
                (try net(x).scalars,
                 try F.conv2dMaxPool2d(F.conv2dMaxPool2d(x, weight: conv1.weight, bias: conv1.bias, pool: pool, relu: true),
                                       weight: conv2.weight, bias: conv2.bias, pool: pool, relu: true).scalars)
            }
            #expect(paired.count == 5 * 16 * 3 * 3 && paired.contains(0) && paired.contains { $0 > 0 })
            #expect(paired.map(\.bitPattern) == twoOps.map(\.bitPattern), "the paired stages differ from the two ops")
            let recorded = try net(x)
            #expect(recorded.gradFn != nil)
            #expect(try withNoGrad { try net(x).scalars } == paired)
        }
    }

    /// Linear then ReLU, fused by `Sequential` (`F.linear(..., relu: true)`): the same output,
    /// input, weight and bias gradients, bit for bit, as the two layers one at a time, with
    /// rounded inputs and weights (outputs exactly 0 and ties), a NaN input (its row stays
    /// NaN, a NaN output passes no gradient), at 1 and 2 threads; LeNet's fc1 shape with an
    /// upstream gradient zero in places (sparse products: at most 60% nonzero behind the mask)
    /// and everywhere nonzero with mostly positive outputs (dense ones), and a shape whose
    /// inputs are no whole vectors (the products' other path).
    @Test(arguments: [(64, 800, 500, true), (64, 800, 500, false), (5, 13, 7, false)], [1, 2])
    func fusedLinearReluEqualsTheLayers(_ c: (Int, Int, Int, Bool), threads: Int) throws {
        let (n, k, m, sparse) = c
        var g = SeededGenerator(seed: 13)
        let linear = Linear(inFeatures: k, outFeatures: m, generator: &g)
        linear.weight.storage.pointer.update(from: linear.weight.scalars.map { ($0 * 64).rounded() / 64 }, count: m * k)
        if !sparse, let bias = linear.bias { bias.storage.pointer.update(repeating: 1, count: m) }
        let net = Sequential([linear, ReLU()])
        var data = Tensor.randn([n, k], using: &g).scalars.map { ($0 * 4).rounded() / 4 }
        data[k + 3] = .nan
        let upstreamValues = Tensor.randn([n, m], using: &g).scalars.enumerated().map { i, v in sparse && i % 3 == 0 ? 0 : v }
        var results: [(output: [Float], input: [Float], weight: [Float], bias: [Float])] = []
        try Parallelism.withThreadCount(threads) {
            for fused in [true, false] {
                linear.weight.grad = nil
                linear.bias?.grad = nil
                let x = try Tensor(shape: [n, k], data: data, requiresGrad: true)
                let y = fused ? try net(x) : try net.forward(x) { _, _, _ in }
                #expect(y.gradFn?.name == "ReluBackward0")
                // Fused, one node straight onto the leaves; else the ReLU's onto the product's.
                #expect(y.gradFn?.nextFunctions.map(\.name) == (fused ? [] : ["AddmmBackward0"]))
                try y.backward(gradient: try Tensor(shape: y.shape, data: upstreamValues))
                results.append((y.scalars, x.grad?.scalars ?? [], linear.weight.grad?.scalars ?? [],
                                linear.bias?.grad?.scalars ?? []))
            }
        }
        let (fused, separate) = (results[0], results[1])
        for (name, a, b) in [("outputs", fused.output, separate.output), ("input gradients", fused.input, separate.input),
                             ("weight gradients", fused.weight, separate.weight), ("bias gradients", fused.bias, separate.bias)] {
            let differing = a.count == b.count ? zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count : -1
            #expect(differing == 0, "\(c) at \(threads) threads: \(differing) of the \(name) differ (-1: the counts)")
        }
        #expect(fused.output.contains(0) && fused.output[m].isNaN)
        #expect(fused.input.contains { $0 != 0 } && fused.bias.contains { $0 != 0 } && fused.weight.count == m * k)
        // The case's products are the sparse or the dense ones, as named.
        let masked = zip(fused.output, upstreamValues).map { $0 > 0 ? $1 : 0 }
        #expect(linearGradientIsSparse(n: n, k: k, m: m, gradOutput: masked) == sparse)
    }

    /// Without a graph the fused op convolves a slice of samples at a time (41 of these
    /// 16×28×28 outputs fit its 2 MB): 100 samples take slices of 34, 34 and 32, and give the
    /// layers' values bit for bit.
    @Test func fusedConvolutionPoolWithoutGradInSlices() throws {
        var g = SeededGenerator(seed: 13)
        let net = Sequential([Conv2d(inChannels: 1, outChannels: 16, kernelSize: 5, padding: 2, generator: &g),
                              MaxPool2d(kernelSize: 2), ReLU()])
        let x = Tensor.randn([100, 1, 28, 28], using: &g)
        let (fused, separate) = try withNoGrad { (try net(x), try net.forward(x) { _, _, _ in }) }
        #expect(fused.shape == [100, 16, 14, 14] && fused.gradFn == nil)
        let same = fused.scalars == separate.scalars
        #expect(same, "the sliced output differs from the layers'")
        #expect(fused.scalars.contains(0) && fused.scalars.contains { $0 > 0 })
        // An empty batch is refused as conv2d refuses it ("batch is 0").
        let empty = Tensor.randn([0, 1, 28, 28], using: &g)
        #expect(throws: (any Error).self) { try withNoGrad { try net(empty) } }
    }

    @Test func lossErrors() throws {
        let logits = Tensor.zeros(2, 10)
        #expect(throws: NNError.labelOutOfRange(op: "nll_loss", index: 1, label: 10, classes: 10)) {
            try F.crossEntropy(logits, targets: [3, 10])
        }
        #expect("\(NNError.labelOutOfRange(op: "nll_loss", index: 1, label: 10, classes: 10))".contains("0..<10"))
        #expect(throws: NNError.self) { try F.nllLoss(logits, targets: [1]) }
    }

    @Test func stateDictRoundTripAndStrictLoading() throws {
        var g = SeededGenerator(seed: 1)
        let a = Models.lenet(generator: &g), b = Models.lenet(generator: &g)
        var state: [String: (shape: [Int], values: Buffer.Values)] = [:]
        for entry in a.stateDict() { state[entry.name] = (entry.shape, entry.values) }
        try b.loadStateDict(state)
        #expect(a.parameters().map(\.scalars) == b.parameters().map(\.scalars))
        state["fc2.bias"] = ([11], .float32([Float](repeating: 0, count: 11)))
        state["extra"] = ([1], .float32([0]))
        state.removeValue(forKey: "conv1.weight")
        let error = try #require(throws: NNError.self) { try b.loadStateDict(state) }
        let text = "\(error)"
        #expect(text.contains("missing key(s): conv1.weight"))
        #expect(text.contains("unexpected key(s): extra"))
        #expect(text.contains("size mismatch for fc2.bias"))
        #expect(a.parameters().map(\.scalars) == b.parameters().map(\.scalars))  // unchanged
    }

    /// A module with an int64 counter (persistent) and a generator state (not persistent),
    /// as batch norm and dropout keep them.
    final class Counting: Module {
        let count = Buffer(.int64([0]), shape: [])
        let scratch = Buffer(.uint64([1, 2, 3, 4]), shape: [4], persistent: false) { values in
            values == .uint64([0, 0, 0, 0]) ? "all zero" : nil
        }
        override var namedDirectBuffers: [(name: String, buffer: Buffer)] { [("count", count), ("scratch", scratch)] }
    }

    @Test func buffersAreStateWithTheirTypesAndPersistence() throws {
        let net = Sequential(named: [("c", Counting()), ("d", Dropout(p: 0.5, generator: SeededGenerator(seed: 3)))])
        // stateDict: persistent buffers only, with PyTorch's dotted names.
        #expect(net.stateDict().map(\.name) == ["c.count"])
        #expect(net.namedBuffers(includingNonPersistent: true).map(\.name) == ["c.count", "c.scratch", "d.generator"])
        try net.loadStateDict(["c.count": ([], .int64([7]))])
        #expect(net.stateDict()[0].values == .int64([7]))
        // Types are checked, and so are the buffers' own rules; nothing changes on failure.
        let wrongType = try #require(throws: NNError.self) { try net.loadStateDict(["c.count": ([], .float32([7]))]) }
        #expect("\(wrongType)".contains("c.count is a int64 buffer but the value given is float32"))
        let zero: [String: (shape: [Int], values: Buffer.Values)] = [
            "c.count": ([], .int64([9])), "c.scratch": ([4], .uint64([0, 0, 0, 0])), "d.generator": ([4], .uint64([5, 6, 7, 8])),
        ]
        let invalid = try #require(throws: NNError.self) { try net.loadStateDict(zero, includingNonPersistent: true) }
        #expect("\(invalid)".contains("c.scratch: all zero"))
        #expect(net.stateDict()[0].values == .int64([7]))
        // Dropout draws its masks from its buffer: restoring the buffer restores the masks.
        let dropout = try #require(net.layers[1].module as? Dropout)
        let saved = dropout.generator.state
        let x = Tensor.ones(shape: [64])
        let first = try dropout(x).scalars
        try net.loadStateDict(["c.count": ([], .int64([7])), "c.scratch": ([4], .uint64([1, 2, 3, 4])),
                               "d.generator": ([4], .uint64(saved))], includingNonPersistent: true)
        #expect(try dropout(x).scalars == first)
    }
}
