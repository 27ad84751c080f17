@testable import Kernels
import TestSupport
import Testing

/// The sparse-gradient backward kernels (taken when at most a fifth of the output gradient
/// is nonzero, as behind ReLU + max-pool) against Double-precision references, at 1–3
/// threads, and the choice between them and the GEMM path.
@Suite struct Conv2dSparseTests {
    /// (input, weight): LeNet's conv2; a kernel 8 wide; a 1-wide kernel; an input narrower
    /// than 8 (rows closer than one 8-lane add).
    static let cases: [([Int], [Int])] = [
        ([5, 20, 12, 12], [50, 20, 5, 5]),
        ([3, 3, 9, 11], [4, 3, 2, 8]),
        ([4, 9, 7, 9], [3, 9, 4, 1]),
        ([3, 6, 9, 6], [5, 6, 3, 3]),
    ]

    /// A gradient with about one element in ten nonzero, the last sample's last one included.
    static func sparseGradient(_ s: Conv2dShape, _ random: inout TestRandom) -> [Float] {
        var r = random.floats(s.outputShape.reduce(1, *)).map { abs($0) < 0.1 ? $0 * 10 : 0 }
        r[r.count - 1] = 0.75
        return r
    }

    @Test(arguments: cases)
    func matchesDoublePrecisionAtEveryThreadCount(_ input: [Int], _ weight: [Int]) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        var random = TestRandom(seed: 11)
        let x = random.floats(input.reduce(1, *)), w = random.floats(weight.reduce(1, *))
        let r = Self.sparseGradient(s, &random)
        #expect(Conv2dPlan.allowsSparseGradient(s))
        #expect(r.withUnsafeBufferPointer { conv2dGradientIsSparse(s, gradOutput: $0.baseAddress!) })
        let expected = exactUnpaddedGradients(s, x, w, r)
        for threads in 1...3 {
            let (gradInput, gradients) = Parallelism.withThreadCount(threads) {
                (convBackwardInput(s, r, w), convBackwardWeight(s, x, r))
            }
            let label = "\(input) \(weight) at \(threads) threads"
            for (name, actual, wanted) in [("grad input", gradInput, expected.input),
                                           ("grad weight", gradients.weight, expected.weight),
                                           ("grad bias", gradients.bias, expected.bias)] {
                if let m = compareClose(actual, wanted, rtol: 1e-5, atol: 1e-5, label: "\(label) \(name)") {
                    Issue.record(Comment(rawValue: m))
                }
            }
            let again = Parallelism.withThreadCount(threads) { convBackwardWeight(s, x, r) }
            #expect(again.weight == gradients.weight && again.bias == gradients.bias)
        }
    }

    @Test func denseGradientsAndOtherShapesUseTheGEMMPath() throws {
        let s = try Conv2dShape(input: [2, 20, 12, 12], weight: [50, 20, 5, 5])
        var random = TestRandom(seed: 3)
        let dense = random.floats(s.outputShape.reduce(1, *))
        #expect(!dense.withUnsafeBufferPointer { conv2dGradientIsSparse(s, gradOutput: $0.baseAddress!) })
        #expect(!Conv2dPlan.allowsSparseGradient(try Conv2dShape(input: [1, 2, 12, 12], weight: [3, 2, 5, 9])))
        #expect(!Conv2dPlan.allowsSparseGradient(try Conv2dShape(input: [1, 2, 12, 12], weight: [3, 2, 5, 5], padding: (1, 1))))
        #expect(!Conv2dPlan.allowsSparseGradient(try Conv2dShape(input: [1, 1, 28, 28], weight: [20, 1, 5, 5])))  // direct
    }
}
