import Kernels
import TestSupport
import Testing

/// Max pooling: finite differences, PyTorch's first-maximum rule, NaN, overlapping windows.
@Suite struct MaxPool2dTests {
    struct Case: Sendable, CustomStringConvertible {
        var input: [Int]
        var kernel: (Int, Int), stride: (Int, Int), padding = (0, 0), dilation = (1, 1)
        var description: String { "input \(input) k\(kernel) s\(stride) p\(padding) d\(dilation)" }
    }

    @Test(arguments: [
        Case(input: [2, 3, 7, 7], kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
        Case(input: [1, 2, 9, 8], kernel: (2, 3), stride: (1, 2), padding: (1, 1), dilation: (2, 1)),
        Case(input: [2, 2, 6, 6], kernel: (3, 3), stride: (1, 1)),  // overlapping windows
        Case(input: [3, 4, 24, 24], kernel: (2, 2), stride: (2, 2)),  // LeNet's, fast path
        Case(input: [1, 1, 7, 5], kernel: (2, 2), stride: (2, 2)),  // odd sizes drop the edge
    ])
    func matchesDirectPoolingAndCentralDifferences(_ c: Case) throws {
        let s = try Pool2dShape(input: c.input, kernel: c.kernel, stride: c.stride,
                                padding: c.padding, dilation: c.dilation)
        var random = TestRandom(seed: 3)
        // Distinct values, at least 1e-2 apart, so a 1e-4 step never changes a window's winner.
        let count = c.input.reduce(1, *)
        var values = (0..<count).map { Float($0) * 0.01 }
        for i in stride(from: count - 1, to: 0, by: -1) {
            values.swapAt(i, Int(random.next() % UInt64(i + 1)))
        }
        let r = random.floats(s.outputShape.reduce(1, *))
        let (output, argmax) = poolForward(s, values)
        let xd = values.map(Double.init)
        if let m = compareClose(output, naivePool(s, xd), rtol: 0, atol: 0, label: "\(c) forward") { Issue.record(Comment(rawValue: m)) }
        let numeric = centralDifferences(xd, step: 1e-4) { dot(naivePool(s, $0), r.map(Double.init)) }
        let gradInput = poolBackward(s, r, argmax)
        if let m = compareClose(gradInput, numeric, rtol: 1e-4, atol: 1e-5, label: "\(c) grad input") { Issue.record(Comment(rawValue: m)) }
    }

    @Test func tiesGoToTheFirstMaximumInRowMajorOrder() throws {
        // One 3×3 window holding 5 four times: (0,1), (1,0), (1,2), (2,2); (0,1) comes first.
        let input: [Float] = [1, 5, 2,
                              5, 0, 5,
                              3, 4, 5]
        let s = try Pool2dShape(input: [1, 1, 3, 3], kernel: (3, 3))
        let (output, argmax) = poolForward(s, input)
        #expect(output == [5])
        #expect(argmax == [1])
        #expect(poolBackward(s, [2.5], argmax) == [0, 2.5, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func tiesAfterReluGoToTheFirstZero() throws {
        let s = try Pool2dShape(input: [1, 1, 2, 4], kernel: (2, 2))
        let (output, argmax) = poolForward(s, [0, 0, 0, 7,
                                               0, 0, 7, 7])
        #expect(output == [0, 7])
        #expect(argmax == [0, 3])
    }

    @Test func overlappingWindowsAccumulate() throws {
        // Stride 1: the centre 9 is the maximum of all four 2×2 windows.
        let s = try Pool2dShape(input: [1, 1, 3, 3], kernel: (2, 2), stride: (1, 1))
        let (output, argmax) = poolForward(s, [1, 2, 3, 4, 9, 5, 6, 7, 8])
        #expect(output == [9, 9, 9, 9])
        #expect(argmax == [4, 4, 4, 4])
        #expect(poolBackward(s, [1, 2, 3, 4], argmax) == [0, 0, 0, 0, 10, 0, 0, 0, 0])
    }

    @Test func nanPropagatesLikeTorch() throws {
        let s = try Pool2dShape(input: [1, 1, 2, 4], kernel: (2, 2))
        let (output, argmax) = poolForward(s, [1, .nan, 3, 4,
                                               9, 2, .nan, .nan])
        #expect(output[0].isNaN && output[1].isNaN)
        // A NaN always takes over, so the last NaN of a window is reported.
        #expect(argmax == [1, 7])
    }

    /// The 2×2 fast path handles four windows at once when a row has at least four; the same
    /// tie and NaN rules must hold in every lane and in the scalar remainder (10 = 4 + 1).
    @Test func fastPathKeepsTieAndNaNRules() throws {
        let s = try Pool2dShape(input: [1, 1, 2, 10], kernel: (2, 2))
        let nan = Float.nan
        let (output, argmax) = poolForward(s, [
            3, 3, 0, 1, nan, 2, 5, 6, 4, 4,
            3, 3, 1, 0, 9, nan, 6, 5, 4, 4,
        ])
        #expect(Array(output[0..<2]) == [3, 1])
        #expect(output[2].isNaN)
        #expect(Array(output[3...]) == [6, 4])
        // Ties: the first of four 3s; 1 at top-right before bottom-left; NaN: the last NaN;
        // 6 at top-right before bottom-left; the scalar window's first 4.
        #expect(argmax == [0, 3, 15, 7, 8])
    }

    /// The fused op against ReLU then pooling then both backward passes, PyTorch's rules
    /// (ReLU'(0) = 0), on data full of zeros and negative windows.
    @Test(arguments: [
        Case(input: [2, 3, 8, 12], kernel: (2, 2), stride: (2, 2)),
        Case(input: [1, 2, 7, 7], kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
    ])
    func fusedReluPoolMatchesReluThenPool(_ c: Case) throws {
        let s = try Pool2dShape(input: c.input, kernel: c.kernel, stride: c.stride,
                                padding: c.padding, dilation: c.dilation)
        var random = TestRandom(seed: 11)
        // A quarter positive, a quarter negative, half exact zeros: many all-non-positive windows.
        let x = random.floats(c.input.reduce(1, *)).map { $0 < 0 ? 0 : ($0 < 0.5 ? -$0 : $0) }
        let g = random.floats(s.outputShape.reduce(1, *))
        let relu = x.map { $0 > 0 ? $0 : 0 }
        let (expectedOutput, argmax) = poolForward(s, relu)
        let throughPool = poolBackward(s, g, argmax)
        let expectedGrad = zip(throughPool, x).map { $1 > 0 ? $0 : 0 }

        let count = s.outputShape.reduce(1, *)
        var output = [Float](repeating: .nan, count: count), fusedArgmax = [Int32](repeating: -1, count: count)
        var gradInput = [Float](repeating: .nan, count: x.count)
        reluMaxPool2dForward(s, input: x, output: &output, argmax: &fusedArgmax)
        reluMaxPool2dBackward(s, gradOutput: g, output: output, argmax: fusedArgmax, gradInput: &gradInput)
        #expect(output == expectedOutput)
        #expect(gradInput == expectedGrad)
        #expect(expectedGrad.contains { $0 != 0 } && output.contains(0))
    }

    @Test func paddingNeverWins() throws {
        let s = try Pool2dShape(input: [1, 1, 2, 2], kernel: (3, 3), stride: (1, 1), padding: (1, 1))
        let (output, argmax) = poolForward(s, [-5, -6, -7, -8])
        #expect(output == [-5, -5, -5, -5])
        #expect(argmax == [0, 0, 0, 0])
    }

    /// Without argmax (evaluation) the pools compute the same values bit for bit, NaN and
    /// ties included: the 2×2 path 8 windows at a time with its tail (output widths 14, 5
    /// and 20), the general loop, and the fused ReLU.
    @Test(arguments: [[2, 3, 28, 28], [1, 2, 10, 11], [2, 1, 40, 40], [1, 2, 7, 7]])
    func valuesWithoutArgmaxMatch(input: [Int]) throws {
        var random = TestRandom(seed: 5)
        let count = input.reduce(1, *)
        // Rounded to give ties and zeros; some NaN, some negative windows.
        var values = random.floats(count).map { ($0 * 4 - 2).rounded() / 2 }
        for i in stride(from: 3, to: count, by: 97) { values[i] = .nan }
        let kernels = input[3] == 7 ? [(3, 3)] : [(2, 2), (3, 3)]
        for kernel in kernels {
            let s = try Pool2dShape(input: input, kernel: kernel, stride: (2, 2))
            let n = s.outputShape.reduce(1, *)
            for relu in [false, true] {
                var withIndices = [Float](repeating: 1, count: n), valuesOnly = [Float](repeating: 2, count: n)
                var argmax = [Int32](repeating: 0, count: n)
                if relu {
                    reluMaxPool2dForward(s, input: values, output: &withIndices, argmax: &argmax)
                    reluMaxPool2dForward(s, input: values, output: &valuesOnly, argmax: nil)
                } else {
                    maxPool2dForward(s, input: values, output: &withIndices, argmax: &argmax)
                    maxPool2dForward(s, input: values, output: &valuesOnly, argmax: nil)
                }
                let same = withIndices.map(\.bitPattern) == valuesOnly.map(\.bitPattern)
                #expect(same, "\(input) kernel \(kernel) relu \(relu): the values-only pool differs")
                #expect(valuesOnly.contains { $0.isNaN } && valuesOnly.contains { !$0.isNaN })
            }
        }
    }

    @Test func lenetShapes() throws {
        #expect(try Pool2dShape(input: [64, 20, 24, 24], kernel: (2, 2)).outputShape == [64, 20, 12, 12])
        #expect(try Pool2dShape(input: [64, 50, 8, 8], kernel: (2, 2)).outputShape == [64, 50, 4, 4])
    }

    @Test func shapeErrors() {
        #expect(throws: KernelShapeError.poolPaddingTooLarge(operation: "max_pool2d", kernel: [2, 2], padding: [2, 0])) {
            try Pool2dShape(input: [1, 1, 8, 8], kernel: (2, 2), padding: (2, 0))
        }
        #expect {
            try Pool2dShape(input: [1, 1, 1, 8], kernel: (2, 2))
        } throws: { error in "\(error)".contains("[1, 1, 1, 8]") && "\(error)".contains("[2, 2]") }
        #expect(throws: KernelShapeError.planeTooLarge(operation: "max_pool2d", input: [1, 1, 65_536, 65_536])) {
            try Pool2dShape(input: [1, 1, 65_536, 65_536], kernel: (2, 2))
        }
        #expect(throws: KernelShapeError.nonPositive(operation: "max_pool2d", parameter: "strideW", value: 0)) {
            try Pool2dShape(input: [1, 1, 8, 8], kernel: (2, 2), stride: (2, 0))
        }
    }
}
