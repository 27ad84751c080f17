@testable import Kernels
import TestSupport
import Testing

/// The sparse-gradient backward kernels (taken when at most a fifth of the output gradient
/// is nonzero, as behind ReLU + max-pool) against Double-precision references, at 1–3
/// threads, and the choice between them and the GEMM path.
@Suite struct Conv2dSparseTests {
    /// (input, weight): LeNet's conv2; a kernel 8 wide; a 1-wide kernel; an input narrower
    /// than 8 (rows closer than one 8-lane add); on patches in 16-lane builds
    /// (`sparseUsesPatches`, 256 taps or more) besides LeNet's conv2, a kernel 8 wide and an
    /// input narrower than 8; by kernel rows, 3 and 7 kernel rows (`addShortRowBlock`'s
    /// counts that the other cases, here and in `pooledCases`, do not reach: they have 1, 2,
    /// 4, 5 and 6 past the last eight).
    static let cases: [([Int], [Int])] = [
        ([5, 20, 12, 12], [50, 20, 5, 5]),
        ([3, 3, 9, 11], [4, 3, 1, 8]),
        ([3, 7, 9, 11], [4, 7, 1, 8]),
        ([3, 3, 9, 11], [4, 3, 2, 8]),
        ([4, 9, 7, 9], [3, 9, 4, 1]),
        ([3, 6, 9, 6], [5, 6, 3, 3]),
        ([3, 12, 9, 11], [4, 12, 3, 8]),
        ([2, 40, 7, 7], [5, 40, 3, 3]),
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
        #expect(sparseUsesPatches(s) == (PatchVector.scalarCount == 16 && weight[1] * weight[2] * weight[3] >= 256))
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

    /// (input, weight, pool kernel, pool stride, ReLU, ceil mode): LeNet's conv2 and conv1
    /// (whose dense weight gradient is computed directly) behind ReLU + 2×2 pools; a
    /// kernel 8 wide behind a 3×3 pool; overlapping 3×3 windows at stride 2 with ceil mode,
    /// where two windows can pick one pixel; no ReLU; a 2×2 pool at stride 1, whose gradient
    /// goes through a dense block (`conv2dPooledGradientIsSparse` is false); on patches, an
    /// input narrower than 8 behind ReLU + a 2×2 pool.
    static let pooledCases: [([Int], [Int], Int, Int, Bool, Bool)] = [
        ([5, 20, 12, 12], [50, 20, 5, 5], 2, 2, true, false),
        ([3, 1, 28, 28], [20, 1, 5, 5], 2, 2, true, false),
        ([3, 3, 11, 15], [4, 3, 2, 8], 3, 3, true, false),
        ([4, 3, 12, 12], [5, 3, 3, 3], 3, 2, true, true),
        ([2, 6, 9, 10], [5, 6, 3, 3], 2, 2, false, true),
        ([2, 3, 8, 8], [4, 3, 3, 3], 2, 1, true, false),
        ([3, 40, 8, 7], [6, 40, 3, 3], 2, 2, true, false),
    ]

    /// `conv2dMaxPool2dBackward` from a max-pool's gradient and argmax (`PooledGradient`) against
    /// the Double-precision gradients of the dense gradient the pool's backward scatters
    /// (the fused conv + pool op's old path), at 1–3 threads, each thread count
    /// deterministic; and which pools take this path in training.
    /// `SparseGradient.channelNonzeros` (AVX-512's compress in 16-lane builds) against the
    /// rule it implements, element by element: a gradient is listed when it is not zero (NaN
    /// listed, -0 not) and, behind a ReLU, when the pool's output is not <= 0 (NaN listed,
    /// 0 and -0 not); dense lists give each nonzero's pixel, pooled ones the window's
    /// argmax. Planes of 15, 16, 25 and 37 (tails of 15, none, 9 and 5 lanes), two samples.
    @Test(arguments: [(3, 5), (4, 4), (5, 5), (1, 37)])
    func nonzeroListsFollowTheRule(_ height: Int, _ width: Int) throws {
        let channels = 3, batch = 2
        let s = try Conv2dShape(input: [batch, 1, height, width], weight: [channels, 1, 1, 1])
        let p = try Pool2dShape(input: [batch, channels, height, width], kernel: (1, 1))
        let plane = height * width, count = batch * channels * plane
        var random = TestRandom(seed: 11)
        let specials: [Float] = [0, -0.0, .nan, -1, 2, .infinity]
        let gradient = random.floats(count).enumerated().map { i, v in i % 3 == 0 ? specials[i / 3 % 6] : (v < 0 ? 0 : v) }
        let relu = random.floats(count).enumerated().map { i, v in i % 4 == 1 ? specials[(i / 4 + 1) % 6] : v }
        let argmax = (0..<count).map { Int32(truncatingIfNeeded: ($0 &* 7) % 1000) }
        for (kind, reluOutput) in [("dense", false), ("pooled", false), ("pooled + relu", true)] {
            for n in 0..<batch {
                var expectedFirst: [Int32] = [0], expectedPixel: [Int32] = [], expectedValue: [UInt32] = []
                for o in 0..<channels {
                    for q in 0..<plane {
                        let i = (n * channels + o) * plane + q
                        guard gradient[i] != 0, !reluOutput || !(relu[i] <= 0) else { continue }
                        expectedPixel.append(kind == "dense" ? Int32(q) : argmax[i])
                        expectedValue.append(gradient[i].bitPattern)
                    }
                    expectedFirst.append(Int32(expectedPixel.count))
                }
                var first = [Int32](repeating: -1, count: channels + 1)
                var pixel = [Int32](repeating: -1, count: channels * plane)
                var value = [Float](repeating: 7, count: channels * plane)
                gradient.withUnsafeBufferPointer { g in
                    relu.withUnsafeBufferPointer { r in
                        argmax.withUnsafeBufferPointer { a in
                            let source: SparseGradient = kind == "dense" ? .dense(g.baseAddress!) : .pooled(
                                PooledGradient(pool: p, gradient: g.baseAddress!, argmax: a.baseAddress!,
                                               reluOutput: reluOutput ? r.baseAddress! : nil))
                            source.channelNonzeros(s, sample: n, first: &first, pixel: &pixel, value: &value)
                        }
                    }
                }
                let listed = Int(first[channels])
                #expect(first == expectedFirst, "\(kind) \(height)x\(width) sample \(n)")
                #expect(Array(pixel[..<listed]) == expectedPixel, "\(kind) \(height)x\(width) sample \(n)")
                #expect(value[..<listed].map(\.bitPattern) == expectedValue, "\(kind) \(height)x\(width) sample \(n)")
                #expect(expectedPixel.count > 0 && expectedPixel.count < channels * plane)
            }
        }
    }

    @Test(arguments: pooledCases)
    func pooledGradientMatchesTheScatteredOne(
        _ input: [Int], _ weight: [Int], _ kernel: Int, _ stride: Int, _ relu: Bool, _ ceilMode: Bool
    ) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        let p = try Pool2dShape(input: s.outputShape, kernel: (kernel, kernel), stride: (stride, stride), ceilMode: ceilMode)
        #expect(conv2dPooledGradientIsSparse(s, pool: p) == (stride >= 2))
        var random = TestRandom(seed: 5)
        // Rounded to halves so that windows tie (ties go to the first maximum).
        let x = random.floats(input.reduce(1, *)).map { ($0 * 2).rounded() / 2 }, w = random.floats(weight.reduce(1, *))
        let convolved = convForward(s, x, w, nil)
        var pooled = [Float](repeating: .nan, count: p.outputShape.reduce(1, *))
        var argmax = [Int32](repeating: -1, count: pooled.count)
        pooled.withUnsafeMutableBufferPointer { out in
            argmax.withUnsafeMutableBufferPointer { idx in
                maxPool2dForward(p, input: convolved, output: out.baseAddress!, argmax: idx.baseAddress!, relu: relu)
            }
        }
        var upstream = random.floats(pooled.count)
        upstream[3] = 0  // a zero gradient passes nothing either
        var dense = [Float](repeating: .nan, count: convolved.count)
        dense.withUnsafeMutableBufferPointer { gi in
            maxPool2dBackward(p, gradOutput: upstream, argmax: argmax, gradInput: gi.baseAddress!,
                              reluOutput: relu ? pooled : nil)
        }
        #expect(dense.contains(0) && dense.contains { $0 != 0 })
        let expected = exactUnpaddedGradients(s, x, w, dense)
        var first: (input: [Float], weight: [Float], bias: [Float])?
        for threads in 1...3 {
            let result = Parallelism.withThreadCount(threads) {
                upstream.withUnsafeBufferPointer { g in
                    argmax.withUnsafeBufferPointer { idx in
                        pooled.withUnsafeBufferPointer { out in
                            let gradient = PooledGradient(pool: p, gradient: g.baseAddress!, argmax: idx.baseAddress!,
                                                          reluOutput: relu ? out.baseAddress! : nil)
                            return pooledBackward(s, x, w, gradient)
                        }
                    }
                }
            }
            let label = "\(input) \(weight) pool \(kernel)/\(stride) at \(threads) threads"
            for (name, actual, wanted) in [("grad input", result.input, expected.input),
                                           ("grad weight", result.weight, expected.weight),
                                           ("grad bias", result.bias, expected.bias)] {
                if let m = compareClose(actual, wanted, rtol: 1e-5, atol: 1e-5, label: "\(label) \(name)") {
                    Issue.record(Comment(rawValue: m))
                }
            }
            // The input gradient is per sample: the same at every thread count.
            if let first { #expect(result.input == first.input, "\(label): input gradient depends on the threads") }
            first = first ?? result
        }
    }

    /// `conv2dMaxPool2dBackward` from `gradient`, twice, checking that the second run is
    /// bit-identical, and the input gradient alone.
    func pooledBackward(_ s: Conv2dShape, _ x: [Float], _ w: [Float], _ gradient: PooledGradient)
        -> (input: [Float], weight: [Float], bias: [Float])
    {
        var runs: [(input: [Float], weight: [Float], bias: [Float])] = []
        for _ in 0..<2 {
            var gi = [Float](repeating: .nan, count: x.count), gw = [Float](repeating: .nan, count: w.count)
            var gb = [Float](repeating: .nan, count: s.outChannels)
            var scratch = [Float](repeating: 0, count: conv2dMaxPool2dBackwardWorkspaceCount(s, pool: gradient.pool, threadCount: 8))
            scratch.withUnsafeMutableBufferPointer { ws in
                gi.withUnsafeMutableBufferPointer { gi in
                    gw.withUnsafeMutableBufferPointer { gw in
                        gb.withUnsafeMutableBufferPointer { gb in
                            conv2dMaxPool2dBackward(s, pooledGradient: gradient, input: x, weight: w, gradInput: gi.baseAddress!,
                                           gradWeight: gw.baseAddress!, gradBias: gb.baseAddress!, workspace: ws)
                        }
                    }
                }
            }
            // Each pass on its own gives the same values.
            var alone = [Float](repeating: .nan, count: x.count)
            scratch.withUnsafeMutableBufferPointer { ws in
                alone.withUnsafeMutableBufferPointer {
                    conv2dMaxPool2dBackward(s, pooledGradient: gradient, input: x, weight: w, gradInput: $0.baseAddress!,
                                   gradWeight: nil, gradBias: nil, workspace: ws)
                }
            }
            #expect(alone == gi)
            runs.append((gi, gw, gb))
        }
        #expect(runs[0].input == runs[1].input && runs[0].weight == runs[1].weight && runs[0].bias == runs[1].bias)
        return runs[0]
    }
}
