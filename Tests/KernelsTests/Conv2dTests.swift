import Kernels
import TestSupport
import Testing

/// Gradient checks against central differences of a Double-precision direct convolution,
/// the tutorial's shapes, and shape errors.
@Suite struct Conv2dTests {
    struct Case: Sendable, CustomStringConvertible {
        var input: [Int]
        var weight: [Int]
        var stride = (1, 1), padding = (0, 0), dilation = (1, 1), groups = 1
        var description: String { "input \(input) weight \(weight) s\(stride) p\(padding) d\(dilation) g\(groups)" }
    }

    static let gradientCases: [Case] = [
        Case(input: [2, 3, 7, 6], weight: [4, 3, 3, 3], stride: (2, 2), padding: (1, 1)),
        Case(input: [3, 2, 9, 8], weight: [3, 2, 3, 2], stride: (2, 1), padding: (2, 0), dilation: (2, 3)),
        Case(input: [2, 4, 6, 5], weight: [6, 2, 3, 3], padding: (1, 1), groups: 2),
        Case(input: [5, 3, 4, 4], weight: [2, 3, 1, 1]),
        Case(input: [3, 1, 8, 8], weight: [4, 1, 5, 5], stride: (1, 2), padding: (2, 1)),
    ]

    @Test(arguments: gradientCases)
    func gradientsMatchCentralDifferences(_ c: Case) throws {
        let s = try Conv2dShape(input: c.input, weight: c.weight, stride: c.stride,
                                padding: c.padding, dilation: c.dilation, groups: c.groups)
        var random = TestRandom(seed: 42)
        let x = random.floats(c.input.reduce(1, *))
        let w = random.floats(c.weight.reduce(1, *))
        let b = random.floats(s.outChannels)
        let r = random.floats(s.outputShape.reduce(1, *))  // gradOutput: loss = Σ output · r
        let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init), rd = r.map(Double.init)

        let output = convForward(s, x, w, b)
        if let m = compareClose(output, naiveConv(s, xd, wd, bd), label: "\(c) forward") { Issue.record(Comment(rawValue: m)) }

        let numericInput = centralDifferences(xd) { dot(naiveConv(s, $0, wd, bd), rd) }
        let numericWeight = centralDifferences(wd) { dot(naiveConv(s, xd, $0, bd), rd) }
        let numericBias = centralDifferences(bd) { dot(naiveConv(s, xd, wd, $0), rd) }
        let gradInput = convBackwardInput(s, r, w)
        let (gradWeight, gradBias) = convBackwardWeight(s, x, r)
        if let m = compareClose(gradInput, numericInput, rtol: 1e-4, atol: 1e-4, label: "\(c) grad input") { Issue.record(Comment(rawValue: m)) }
        if let m = compareClose(gradWeight, numericWeight, rtol: 1e-4, atol: 1e-4, label: "\(c) grad weight") { Issue.record(Comment(rawValue: m)) }
        if let m = compareClose(gradBias, numericBias, rtol: 1e-4, atol: 1e-4, label: "\(c) grad bias") { Issue.record(Comment(rawValue: m)) }
    }

    @Test func tutorialShapes() throws {
        let input = [20, 16, 50, 100]
        #expect(try Conv2dShape(input: input, weight: [33, 16, 3, 3], stride: (2, 2)).outputShape == [20, 33, 24, 49])
        #expect(try Conv2dShape(input: input, weight: [33, 16, 3, 5], stride: (2, 1), padding: (4, 2)).outputShape
                == [20, 33, 28, 100])
        #expect(try Conv2dShape(input: input, weight: [33, 16, 3, 5], stride: (2, 1), padding: (4, 2),
                                dilation: (3, 1)).outputShape == [20, 33, 26, 100])
        #expect(try Conv2dShape(input: [1, 4, 5, 5], weight: [8, 4, 3, 3], padding: (1, 1)).outputShape == [1, 8, 5, 5])
    }

    /// The tutorial's convolutions on one sample of the (20, 16, 50, 100) input, against the
    /// direct Double convolution.
    @Test(arguments: [
        Case(input: [1, 16, 50, 100], weight: [33, 16, 3, 3], stride: (2, 2)),
        Case(input: [1, 16, 50, 100], weight: [33, 16, 3, 5], stride: (2, 1), padding: (4, 2), dilation: (3, 1)),
    ])
    func tutorialValues(_ c: Case) throws {
        let s = try Conv2dShape(input: c.input, weight: c.weight, stride: c.stride,
                                padding: c.padding, dilation: c.dilation, groups: c.groups)
        var random = TestRandom(seed: 7)
        let x = random.floats(c.input.reduce(1, *)), w = random.floats(c.weight.reduce(1, *))
        let b = random.floats(s.outChannels)
        let expected = naiveConv(s, x.map(Double.init), w.map(Double.init), b.map(Double.init))
        if let m = compareClose(convForward(s, x, w, b), expected, label: "\(c)") { Issue.record(Comment(rawValue: m)) }
    }

    // MARK: - Errors

    @Test func channelMismatchNamesBothShapes() {
        #expect {
            try Conv2dShape(input: [1, 3, 8, 8], weight: [4, 2, 3, 3])
        } throws: { error in
            let text = "\(error)"
            return text.contains("[1, 3, 8, 8]") && text.contains("[4, 2, 3, 3]")
                && error as? KernelShapeError == .channelMismatch(input: [1, 3, 8, 8], weight: [4, 2, 3, 3], groups: 1)
        }
    }

    @Test func kernelLargerThanPaddedInputIsRejected() {
        #expect(throws: KernelShapeError.self) { try Conv2dShape(input: [1, 1, 4, 4], weight: [1, 1, 5, 5]) }
        // Padding makes it fit: (4 + 2 - 5) / 1 + 1 = 2.
        #expect((try? Conv2dShape(input: [1, 1, 4, 4], weight: [1, 1, 5, 5], padding: (1, 1)))?.outHeight == 2)
        // Dilation makes a 3-tap kernel span 7 > 6.
        #expect {
            try Conv2dShape(input: [1, 1, 6, 6], weight: [1, 1, 3, 3], dilation: (3, 3))
        } throws: { error in
            "\(error)".contains("[1, 1, 6, 6]") && "\(error)".contains("[7, 7]")
        }
    }

    @Test func invalidParametersAreRejected() {
        #expect(throws: KernelShapeError.nonPositive(operation: "conv2d", parameter: "strideH", value: 0)) {
            try Conv2dShape(input: [1, 1, 4, 4], weight: [1, 1, 3, 3], stride: (0, 1))
        }
        #expect(throws: KernelShapeError.negativePadding(operation: "conv2d", padding: [-1, 0])) {
            try Conv2dShape(input: [1, 1, 4, 4], weight: [1, 1, 3, 3], padding: (-1, 0))
        }
        #expect(throws: KernelShapeError.wrongRank(operation: "conv2d", argument: "input", shape: [1, 4, 4], expectedRank: 4)) {
            try Conv2dShape(input: [1, 4, 4], weight: [1, 1, 3, 3])
        }
        #expect(throws: KernelShapeError.groupsDoNotDivide(input: [1, 4, 4, 4], weight: [3, 2, 3, 3], groups: 2)) {
            try Conv2dShape(input: [1, 4, 4, 4], weight: [3, 2, 3, 3], groups: 2)
        }
        #expect(throws: KernelShapeError.nonPositive(operation: "conv2d", parameter: "batch", value: 0)) {
            try Conv2dShape(input: [0, 1, 4, 4], weight: [1, 1, 3, 3])
        }
    }
}
