@testable import Kernels
import TestSupport
import Testing

/// The direct convolution kernels (unpadded, unit stride: LeNet's conv1 and conv2 forward,
/// conv1's weight gradient) against a Double-precision direct convolution and an exact
/// Double weight gradient, at 1–3 threads.
@Suite struct Conv2dDirectTests {
    /// (input, weight): outputs 24, 8, 8, 11, 16 and 8 wide (the 11-wide one overlaps its
    /// last chunk; 3 rows of 8 make an odd number of chunks); 20, 50, 7, 3, 5 and 6 output
    /// channels (not all multiples of 5, 4 or 2); 1 to 20 input channels, up to 500 taps.
    static let cases: [([Int], [Int])] = [
        ([3, 1, 28, 28], [20, 1, 5, 5]),
        ([3, 20, 12, 12], [50, 20, 5, 5]),  // conv2: forward only is direct (500 taps)
        ([2, 2, 7, 10], [7, 2, 5, 3]),  // 3 rows of 8: an odd number of chunks
        ([2, 2, 12, 13], [3, 2, 3, 3]),
        ([5, 1, 9, 16], [5, 1, 2, 1]),
        ([4, 3, 10, 10], [6, 3, 3, 3]),
    ]

    @Test(arguments: cases)
    func matchesDoublePrecisionAtEveryThreadCount(_ input: [Int], _ weight: [Int]) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        #expect(Conv2dPlan.choose(s) == .direct)
        // (The weight gradient of more than 32 taps goes through GEMM; it is checked all the same.)
        var random = TestRandom(seed: 7)
        let x = random.floats(input.reduce(1, *)), w = random.floats(weight.reduce(1, *))
        let b = random.floats(s.outChannels), r = random.floats(s.outputShape.reduce(1, *))
        let expectedOutput = naiveConv(s, x.map(Double.init), w.map(Double.init), b.map(Double.init))
        let exact = exactUnpaddedGradients(s, x, w, r)
        let (expectedWeight, expectedBias) = (exact.weight, exact.bias)
        for threads in 1...3 {
            let (output, gradients) = Parallelism.withThreadCount(threads) {
                (convForward(s, x, w, b), convBackwardWeight(s, x, r))
            }
            let label = "\(input) \(weight) at \(threads) threads"
            if let m = compareClose(output, expectedOutput, rtol: 1e-5, atol: 1e-5, label: "\(label) forward") {
                Issue.record(Comment(rawValue: m))
            }
            if let m = compareClose(gradients.weight, expectedWeight, rtol: 1e-5, atol: 1e-4, label: "\(label) grad weight") {
                Issue.record(Comment(rawValue: m))
            }
            if let m = compareClose(gradients.bias, expectedBias, rtol: 1e-5, atol: 1e-4, label: "\(label) grad bias") {
                Issue.record(Comment(rawValue: m))
            }
            // Same thread count, same bits.
            let again = Parallelism.withThreadCount(threads) { convBackwardWeight(s, x, r) }
            #expect(again.weight == gradients.weight && again.bias == gradients.bias)
        }
    }

    @Test func paddedStridedOrNarrowConvolutionsUseIm2col() throws {
        #expect(Conv2dPlan.choose(try Conv2dShape(input: [1, 1, 28, 28], weight: [6, 1, 5, 5], padding: (2, 2))) == .im2colGEMM)
        // conv2 runs forward directly; its dense weight gradient (500 taps) goes through GEMM.
        let conv2 = try Conv2dShape(input: [1, 20, 12, 12], weight: [50, 20, 5, 5])
        #expect(Conv2dPlan.choose(conv2) == .direct)
        #expect(Conv2dPlan.choose(conv2, pass: .backwardWeight) == .im2colGEMM)
        #expect(Conv2dPlan.choose(try Conv2dShape(input: [1, 1, 28, 28], weight: [4, 1, 3, 3], stride: (2, 2))) == .im2colGEMM)
        #expect(Conv2dPlan.choose(try Conv2dShape(input: [1, 1, 10, 6], weight: [4, 1, 3, 3])) == .im2colGEMM)  // 4 wide
    }
}
