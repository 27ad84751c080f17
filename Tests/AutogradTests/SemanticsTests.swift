import Autograd
import Examples
import Seeded
import Testing

/// The tutorial's autograd behaviour: accumulation, leaves and non-leaves, errors,
/// no-grad scopes and detach.
struct SemanticsTests {
    @Test func gradientsAccumulateAcrossBackwardCalls() throws {
        let x = Tensor([3, 4], requiresGrad: true)
        try (x * 2).sum().backward()
        #expect(x.grad?.scalars == [2, 2])
        try (x * x).sum().backward()
        #expect(x.grad?.scalars == [8, 10])  // 2 + 2·3, 2 + 2·4
        x.zeroGrad()
        #expect(x.grad == nil)
    }

    @Test func nonLeafGradIsNilUnlessRetained() throws {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = x * 3
        let z = try y * y
        z.retainGrad()
        try z.sum().backward()
        #expect(y.grad == nil)
        #expect(z.grad?.scalars == [1, 1])
        #expect(x.grad?.scalars == [18, 36])  // d(9x²)/dx = 18x
        #expect(x.isLeaf && !y.isLeaf)
        #expect(x.gradFn == nil)
        #expect(y.gradFn?.name == "MulBackward0")
    }

    @Test func backwardErrors() throws {
        let x = Tensor([1, 2], requiresGrad: true)
        #expect(throws: TensorError.backwardOnNonScalar(shape: [2])) { try (x * 2).backward() }
        #expect(throws: TensorError.backwardWithoutGrad) { try Tensor([1, 2]).sum().backward() }
        #expect(throws: TensorError.gradientShapeMismatch(expected: [2], got: [3])) {
            try (x * 2).backward(gradient: Tensor([1, 1, 1]))
        }
        let message = "\(TensorError.backwardOnNonScalar(shape: [2]))"
        #expect(message.contains("[2]") && message.contains("backward(gradient:)"))
    }

    @Test func secondBackwardNeedsRetainGraph() throws {
        let x = Tensor([1, 2], requiresGrad: true)
        let out = (x ** 2).sum()
        try out.backward()
        #expect(throws: TensorError.backwardTwice(gradFn: "SumBackward0")) { try out.backward() }

        let y = Tensor([1, 2], requiresGrad: true)
        let kept = (y ** 2).sum()
        try kept.backward(retainGraph: true)
        try kept.backward()
        #expect(y.grad?.scalars == [4, 8])
    }

    @Test func noGradScopeNestsAndRestoresOnThrow() throws {
        let x = Tensor([1], requiresGrad: true)
        struct Boom: Error {}
        #expect(GradMode.isEnabled)
        withNoGrad {
            #expect(!(x * 2).requiresGrad)
            #expect((x * 2).gradFn == nil)
            withGrad { #expect((x * 2).requiresGrad) }
            withNoGrad { #expect(!(x * 2).requiresGrad) }
            #expect(!GradMode.isEnabled)
            #expect(Tensor([1], requiresGrad: true).requiresGrad)
        }
        #expect(throws: Boom.self) { try withNoGrad { throw Boom() } }
        #expect(GradMode.isEnabled)
        #expect((x * 2).requiresGrad)
    }

    @Test func noGradIsPerTask() async throws {
        // A no-grad scope in one task does not leak into another running meanwhile.
        let enabledElsewhere = await GradMode.$isEnabled.withValue(false) {
            await Task.detached { GradMode.isEnabled }.value
        }
        #expect(enabledElsewhere)
    }

    @Test func detachSharesValuesWithoutHistory() throws {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let y = (x * 2).detach()
        #expect(!y.requiresGrad && y.gradFn == nil)
        #expect(y.scalars == [2, 4, 6])
        let d = x.detach()
        #expect(try x.eq(d).all().item() == 1)
        #expect("\(try x.eq(d).all())" == "tensor(True)")
    }

    @Test func requiresGradInPlaceOnlyOnLeaves() throws {
        let a = Tensor([1, 2])
        #expect(!a.requiresGrad)
        try a.requiresGrad_(true)
        #expect(a.requiresGrad)
        #expect(throws: TensorError.self) { try (a * 2).requiresGrad_(false) }
    }

    @Test func broadcastingErrorsNameTheShapes() throws {
        #expect(throws: TensorError.notBroadcastable(op: "add", [2, 3], [2])) {
            try Tensor.zeros(2, 3) + Tensor.zeros(2)
        }
        #expect(throws: TensorError.self) { try Tensor.zeros(2, 3).matmul(Tensor.zeros(2, 3)) }
        #expect(throws: TensorError.invalidShape(op: "view", shape: [4, -1], count: 6)) {
            try Tensor.zeros(2, 3).view(4, -1)
        }
    }

    @Test func noArgumentReductionsAndQueries() throws {
        let t = try Tensor([[1, 5, 2], [7, 0, 7]])
        #expect(try t.argmax(dim: 1).scalars == [1, 0])  // first maximum on ties
        #expect("\(try t.argmax(dim: 1))" == "tensor([1, 0])")
        #expect(t.argmax().scalars == [3])
        #expect(try t.gt(Tensor([2])).scalars == [0, 1, 0, 1, 0, 1])
        #expect(abs(try Tensor([3, 4]).norm().item() - 5) < 1e-6)
        #expect(throws: TensorError.notScalar(shape: [2, 3])) { try t.item() }
    }

    @Test func creation() throws {
        #expect(Tensor.eye(2).scalars == [1, 0, 0, 1])
        #expect(Tensor.full([2], 7).scalars == [7, 7])
        var g1 = SeededGenerator(seed: 7), g2 = SeededGenerator(seed: 7)
        #expect(Tensor.randn([5], using: &g1).scalars == Tensor.randn([5], using: &g2).scalars)
        let r = Tensor.rand([1000], using: &g1).scalars
        #expect(r.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(abs(r.reduce(0, +) / 1000 - 0.5) < 0.05)
        #expect(throws: TensorError.self) { try Tensor(shape: [2, 2], data: [1, 2, 3]) }
    }
}

/// PyTorch's printed format.
struct PrintingTests {
    @Test func formats() throws {
        #expect("\(Tensor([0.5, 0.5]))" == "tensor([0.5000, 0.5000])")
        #expect("\(Tensor([0.5, 5, 500]))" == "tensor([  0.5000,   5.0000, 500.0000])")
        #expect("\(Tensor([204.8, 2048, 0.2048]))" == "tensor([2.0480e+02, 2.0480e+03, 2.0480e-01])")
        #expect("\(Tensor(scalar: 36))" == "tensor(36.)")
        #expect("\(Tensor.ones(2, 2, requiresGrad: true))" == "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)")
        #expect("\(Tensor([-1, 0, 2]))" == "tensor([-1.,  0.,  2.])")
        #expect("\(Tensor([0.00001, 1]))" == "tensor([1.0000e-05, 1.0000e+00])")
        #expect("\(Tensor([Float.nan, 1.5]))" == "tensor([   nan, 1.5000])")
        #expect("\(Tensor([Float]()))" == "tensor([])")
    }

    @Test func wrapsLongRowsLikePyTorch() throws {
        // The tutorial's Linear output: 8 elements of width 7 fit a line after the indent.
        let values: [Float] = [-0.0548, -0.7653, 0.5531, -0.4567, 0.6094, -0.4746, -0.6054, -0.1089, 0.2765, -0.4428]
        let t = try Tensor(shape: [1, 10], data: values)
        #expect("\(t)" == """
            tensor([[-0.0548, -0.7653,  0.5531, -0.4567,  0.6094, -0.4746, -0.6054, -0.1089,
                      0.2765, -0.4428]])
            """)
    }

    @Test func threeDimensionsAndSummaries() throws {
        let t = try Tensor(shape: [2, 1, 2], data: [1, 2, 3, 4])
        #expect("\(t)" == "tensor([[[1., 2.]],\n\n        [[3., 4.]]])")
        let big = try Tensor(shape: [2000], data: (1000..<3000).map(Float.init))
        #expect("\(big)" == "tensor([1000., 1001., 1002.,  ..., 2997., 2998., 2999.])")
        // Magnitudes spanning more than 1000x switch to scientific notation, as PyTorch does.
        let wide = try Tensor(shape: [2000], data: (0..<2000).map(Float.init))
        #expect("\(wide)".hasPrefix("tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"))
    }
}

/// The tour prints the tutorial's lines.
struct TourTests {
    @Test func printsTheTutorialsValues() throws {
        var lines: [String] = []
        try AutogradTour.run { lines.append(contentsOf: $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)) }
        let text = lines.joined(separator: "\n")
        let expectedFragments = [
            "tensor([4., 6.], grad_fn=<AddBackward0>)\n<AddBackward0 object>",
            "tensor(5., grad_fn=<MeanBackward0>)\n<MeanBackward0 object>",
            "tensor([0.5000, 0.5000])\ntensor([0.5000, 0.5000])\nNone",
            "True\nTrue\nTrue\nFalse",
            "tensor([[72., 72., 72.],\n        [72., 72., 72.],\n        [72., 72., 72.]], grad_fn=<MulBackward0>) tensor(72., grad_fn=<MeanBackward0>)",
            "False\nTrue\n<SumBackward0 object>",
            "tensor([[2.6667, 2.6667, 2.6667],\n        [2.6667, 2.6667, 2.6667],\n        [2.6667, 2.6667, 2.6667]])",
            "tensor([2.0480e+02, 2.0480e+03, 2.0480e-01])",
            "True\nFalse\ntensor(True)",
            "a.grad: tensor([[6., 6.],\n        [6., 6.]])\na.grad_fn None",
            "b.grad: None\nb.grad_fn <AddBackward0 object>",
            "c:data: tensor([[9., 9.],\n        [9., 9.]])\nc.grad: None\nc.grad_fn <PowBackward0 object>",
            "out:data: tensor(36.)\nout.grad: None\nout.grad_fn <SumBackward0 object>",
            "tensor(6., grad_fn=<SumBackward0>)",
            "x.grad: tensor([  0.5000,   5.0000, 500.0000])\nx.grad_fn None",
            "y.grad: None\ny.grad_fn <PowBackward0 object>",
            "z:data: tensor([2., 2., 2.])\nz.grad: None\nz.grad_fn <AddBackward0 object>",
        ]
        for fragment in expectedFragments {
            #expect(text.contains(fragment), "tour output lacks:\n\(fragment)")
        }
    }
}
