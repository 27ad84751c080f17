@testable import Kernels
import TestSupport
import Testing

/// The direct convolution kernels (unpadded, unit stride: the forward pass, the input
/// gradient through the transposed convolution, the weight gradient of few taps and of many)
/// against a Double-precision direct convolution and exact Double gradients, at 1–3 threads.
@Suite struct Conv2dDirectTests {
    /// (input, weight): outputs 24, 8, 8, 11, 16, 8, 10, 9×11, 24 and 17×16 wide (the 11-wide
    /// one overlaps its last chunk; 3 rows of 8 make an odd number of chunks; 10 and 9×11 are
    /// cut wide, their last sample's chunks reaching past the batch); 20, 50, 7, 3, 5, 6, 7, 6,
    /// 5 and 4 output channels (not all multiples of 5, 4 or 2); 1 to 32 input channels, up to
    /// 500 taps; the 26×26 and 18×16 inputs take their dense input gradient directly.
    static let cases: [([Int], [Int])] = [
        ([3, 1, 28, 28], [20, 1, 5, 5]),
        ([3, 20, 12, 12], [50, 20, 5, 5]),  // LeNet's conv2 (500 taps)
        ([2, 2, 7, 10], [7, 2, 5, 3]),  // 3 rows of 8: an odd number of chunks
        ([2, 2, 12, 13], [3, 2, 3, 3]),
        ([5, 1, 9, 16], [5, 1, 2, 1]),
        ([4, 3, 10, 10], [6, 3, 3, 3]),
        ([3, 32, 12, 12], [7, 32, 3, 3]),  // mnist-best's conv3 in small: forward and weight gradient wide
        ([3, 4, 11, 13], [6, 4, 3, 3]),  // 36 taps: wide forward, wide weight gradient (plane 117 → 120)
        ([2, 6, 26, 26], [5, 6, 3, 3]),  // mnist-best's conv2 in small: input gradient direct and wide
        ([2, 3, 18, 16], [4, 3, 2, 1]),  // input gradient direct by rows (16 wide)
        ([2, 8, 7, 7], [3, 8, 2, 2]),  // 32 taps on a 6-wide output: forward cut wide, weight gradient blocked
        ([3, 24, 12, 12], [32, 24, 3, 3]),  // the published speedrun net's conv2: forward channels across lanes (16 × 6)
        ([2, 4, 10, 10], [24, 4, 3, 3]),  // 36 taps, 24 channels: forward channels across lanes (24 × 4)
    ]

    @Test func theDirectPassesAreChosenWhereTheyWin() throws {
        let shape = { (input: [Int], weight: [Int]) in try Conv2dShape(input: input, weight: weight) }
        // Input gradient: directly on 26×26 (17% more multiply-adds than the forward pass)
        // and 18×16, through GEMM on 12×12 (44% more).
        #expect(Conv2dPlan.choose(try shape([2, 6, 26, 26], [5, 6, 3, 3]), pass: .backwardInput) == .direct)
        #expect(Conv2dPlan.choose(try shape([2, 3, 18, 16], [4, 3, 2, 1]), pass: .backwardInput) == .direct)
        #expect(Conv2dPlan.choose(try shape([3, 32, 12, 12], [7, 32, 3, 3]), pass: .backwardInput) == .im2colGEMM)
        // Weight gradient of many taps: directly (blocked), and wide cuts where they save lanes.
        #expect(Conv2dPlan.choose(try shape([3, 32, 12, 12], [7, 32, 3, 3]), pass: .backwardWeight) == .direct)
        #expect(forwardLayout(try shape([3, 32, 12, 12], [7, 32, 3, 3])).wide)
        #expect(!forwardLayout(try shape([3, 1, 28, 28], [32, 1, 3, 3])).wide)  // 9 taps: rows
        #expect(!forwardLayout(try shape([3, 20, 12, 12], [50, 20, 5, 5])).wide)  // 8 wide: rows
        // Few taps but a 6-wide output: the direct weight gradient's 8-wide chunks would reach
        // before its rows, so the blocked kernel takes it.
        #expect(Conv2dPlan.usesDirectBackwardWeight(try shape([3, 1, 28, 28], [20, 1, 5, 5])))
        #expect(!Conv2dPlan.usesDirectBackwardWeight(try shape([2, 8, 7, 7], [3, 8, 2, 2])))
    }

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
            let (output, gradInput, gradients) = Parallelism.withThreadCount(threads) {
                (convForward(s, x, w, b), convBackwardInput(s, r, w), convBackwardWeight(s, x, r))
            }
            let label = "\(input) \(weight) at \(threads) threads"
            if let m = compareClose(output, expectedOutput, rtol: 1e-5, atol: 1e-5, label: "\(label) forward") {
                Issue.record(Comment(rawValue: m))
            }
            if let m = compareClose(gradInput, exact.input, rtol: 1e-5, atol: 1e-4, label: "\(label) grad input") {
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

    /// The direct weight gradient (at most 32 taps) sums in the order its doc comment gives,
    /// to the bit: each (channel, tap) in eight lanes over samples, rows and 8-wide column
    /// chunks (the last one, when it overlaps, with its counted lanes zeroed), the lanes
    /// added by `SIMD8.sum()`. Its loops may be reordered for speed, not its sums:
    /// checkpoints and the README's accuracies depend on them. At one thread (one chunk).
    @Test(arguments: [([3, 1, 28, 28], [20, 1, 5, 5]), ([2, 2, 12, 13], [3, 2, 3, 3]), ([2, 2, 7, 10], [7, 2, 5, 3])])
    func directWeightGradientSumsInItsStatedOrder(_ input: [Int], _ weight: [Int]) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        #expect(Conv2dPlan.usesDirectBackwardWeight(s))
        var random = TestRandom(seed: 11)
        let x = random.floats(input.reduce(1, *)), g = random.floats(s.outputShape.reduce(1, *))
        let (outH, outW, kH, kW) = (s.outHeight, s.outWidth, s.kernelHeight, s.kernelWidth)
        var columns = Array(stride(from: 0, to: outW - 7, by: 8))
        if outW % 8 != 0 { columns.append(outW - 8) }
        let overlap = outW % 8 == 0 ? 0 : 8 - outW % 8
        func gradient(_ n: Int, _ o: Int, _ r: Int, _ column: Int) -> SIMD8<Float> {
            var v = SIMD8<Float>()
            for lane in 0..<8 { v[lane] = g[((n * s.outChannels + o) * outH + r) * outW + column + lane] }
            if overlap > 0 && column == outW - 8 {
                var fresh = SIMD8<Float>(repeating: 1)
                for lane in 0..<overlap { fresh[lane] = 0 }
                v *= fresh
            }
            return v
        }
        var expectedWeight: [Float] = [], expectedBias: [Float] = []
        for o in 0..<s.outChannels {
            for c in 0..<s.inChannels {
                for kh in 0..<kH {
                    for kw in 0..<kW {
                        var sum = SIMD8<Float>()
                        for n in 0..<s.batch {
                            for r in 0..<outH {
                                for column in columns {
                                    var v = SIMD8<Float>()
                                    for lane in 0..<8 { v[lane] = x[((n * s.inChannels + c) * s.height + r + kh) * s.width + column + kw + lane] }
                                    sum.addProduct(gradient(n, o, r, column), v)
                                }
                            }
                        }
                        expectedWeight.append(sum.sum())
                    }
                }
            }
            var sum = SIMD8<Float>()
            for n in 0..<s.batch { for r in 0..<outH { for column in columns { sum += gradient(n, o, r, column) } } }
            expectedBias.append(sum.sum())
        }
        let computed = Parallelism.withThreadCount(1) { convBackwardWeight(s, x, g) }
        #expect(computed.weight == expectedWeight)
        #expect(computed.bias == expectedBias)
    }

    /// Every direct forward kernel computes each output as `bias` followed by one fused
    /// multiply-add per tap in weight order, so the five-channel kernel (`directConvolveSample`,
    /// rows or wide cut) and the channel-lane one (`channelLaneConvolveSample`, 16 × 6 and
    /// 24 × 4; the last in bands of 4 rows, the last band 1 row, and a 24 × 4 one in four
    /// bands of 6 rows, the convolution not pooled) give the same bits: compared
    /// here with that chain in scalar code, with and without a bias, at 1–3 threads.
    @Test(arguments: [([3, 1, 28, 28], [20, 1, 5, 5]), ([3, 4, 11, 13], [6, 4, 3, 3]), ([3, 24, 12, 12], [32, 24, 3, 3]),
                      ([2, 6, 12, 12], [16, 6, 5, 5]), ([2, 4, 10, 10], [24, 4, 3, 3]), ([1, 8, 10, 10], [48, 8, 3, 3]),
                      ([1, 4, 27, 27], [32, 4, 3, 3]), ([1, 4, 26, 26], [24, 4, 3, 3])])
    func forwardSumsEachOutputInTapOrder(_ input: [Int], _ weight: [Int]) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        #expect(Conv2dPlan.choose(s) == .direct)
        #expect((ChannelLaneBlock.of(s) != nil) == (s.outChannels % 16 == 0 || s.outChannels % 24 == 0))
        if input[2] == 27 { #expect(ChannelLaneBlock.of(s)?.bandRows == 4) }
        var random = TestRandom(seed: 13)
        let x = random.floats(input.reduce(1, *)), w = random.floats(weight.reduce(1, *)), b = random.floats(s.outChannels)
        let taps = s.groupPatchSize
        for bias in [b, nil] {
            var expected: [Float] = []
            for n in 0..<s.batch {
                for o in 0..<s.outChannels {
                    for r in 0..<s.outHeight {
                        for column in 0..<s.outWidth {
                            var sum: Float = bias?[o] ?? 0
                            for t in 0..<taps {
                                let (c, kh, kw) = (t / (s.kernelHeight * s.kernelWidth), t / s.kernelWidth % s.kernelHeight, t % s.kernelWidth)
                                let value = x[((n * s.inChannels + c) * s.height + r + kh) * s.width + column + kw]
                                sum = sum.addingProduct(value, w[o * taps + t])
                            }
                            expected.append(sum)
                        }
                    }
                }
            }
            for threads in 1...3 {
                let output = Parallelism.withThreadCount(threads) { convForward(s, x, w, bias) }
                let differing = zip(output, expected).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(output.count == expected.count && differing == 0,
                        "\(input) \(weight) bias \(bias != nil) at \(threads) threads: \(differing) outputs differ")
            }
        }
    }

    /// The fused convolution → max-pool gives `conv2dForward` then `maxPool2dForward` bit for
    /// bit, values and argmax, with and without ReLU, at 1–3 threads. Direct convolutions
    /// (each sample pooled as soon as it is convolved): LeNet's conv1 (rows), a wide cut (36
    /// taps, 11×13 output) under a 3×3 stride-2 ceil-mode pool, an odd batch; channel-lane
    /// convolutions pooled from their tile (`poolChannelLaneTile`): 25 windows (three groups
    /// of eight and one overlapping), 4 (fewer than eight, lane by lane), and one through a
    /// 3×3 pool (the tile transposed, then `maxPool2dPlanes`), one in bands of rows (25×25 in
    /// 4-row bands, the last row no window's), each band's windows pooled from it; 24 × 4
    /// channel lanes pooled in registers (`channelLane24PoolSample`): 16 windows, 24×24 outputs
    /// (144), an 11×13 output (the last row and column no window's), 72 channels (three
    /// groups), and in 8-lane builds from 25 taps the published speedrun net's conv1 and a
    /// 72-channel one (window lanes in 16-lane builds), a 24-channel one under a 3×3 pool
    /// stored and pooled after; five-channel convolutions under a 2×2 pool
    /// pooled in registers (`directConvolvePoolSample`): LeNet's conv1 (20 channels here),
    /// a 12-wide output (an overlapping last chunk) of 7 channels, and 13 rows (the last no
    /// window's), LeNet's conv2 (ten channels at a time), and 13 channels (in 16-lane builds
    /// ten at a time, then three, `storePooledFive`; five chunk pairs, the last alone); in 16-lane builds one or two
    /// input channels take the window-lane kernel instead (`Conv2dWindowLanes.swift`): LeNet's
    /// conv1 (144 windows, nine vectors), the 12-wide 2-channel output (25 windows: a vector
    /// and 9 lanes of the next), a 2×3 kernel (30), the speedrun's conv1 (100), a 38×39
    /// output (19×19 windows: planes split 16 columns and then 3), and a 4×4 kernel on 8×8;
    /// a NaN input in every direct case, which must reach the same windows. Padded
    /// ones (im2col, in slices of about 2 MB of output): one slice, and 100 samples of
    /// 16×28×28 outputs in slices of 34, 34 and 32.
    @Test(arguments: [([3, 1, 28, 28], [20, 1, 5, 5], 0, 2, 2, false), ([3, 4, 11, 13], [6, 4, 3, 3], 0, 3, 2, true),
                      ([5, 2, 12, 13], [3, 2, 3, 3], 0, 2, 2, false), ([3, 4, 11, 13], [6, 4, 3, 3], 1, 3, 2, true),
                      ([3, 24, 12, 12], [32, 24, 3, 3], 0, 2, 2, false), ([3, 4, 10, 10], [24, 4, 3, 3], 0, 2, 2, false),
                      ([2, 8, 4, 10], [16, 8, 3, 3], 0, 2, 2, false), ([3, 4, 11, 13], [16, 4, 3, 3], 0, 3, 2, true),
                      ([2, 4, 27, 27], [32, 4, 3, 3], 0, 2, 2, false), ([2, 4, 26, 26], [24, 4, 3, 3], 0, 2, 2, false),
                      ([3, 2, 14, 14], [7, 2, 3, 3], 0, 2, 2, false), ([2, 1, 14, 12], [6, 1, 2, 3], 0, 2, 2, false),
                      ([100, 1, 28, 28], [16, 1, 5, 5], 2, 2, 2, false), ([3, 1, 24, 24], [8, 1, 5, 5], 0, 2, 2, false),
                      ([2, 1, 40, 41], [6, 1, 3, 3], 0, 2, 2, false), ([2, 2, 11, 11], [5, 2, 4, 4], 0, 2, 2, false),
                      ([2, 20, 12, 12], [50, 20, 5, 5], 0, 2, 2, false), ([3, 1, 28, 28], [24, 1, 5, 5], 0, 2, 2, false),
                      ([2, 4, 13, 15], [24, 4, 3, 3], 0, 2, 2, false), ([2, 4, 10, 10], [72, 4, 3, 3], 0, 2, 2, false),
                      ([2, 1, 12, 12], [72, 1, 5, 5], 0, 2, 2, false), ([2, 4, 10, 10], [24, 4, 3, 3], 0, 3, 2, false),
                      ([3, 3, 12, 10], [13, 3, 3, 3], 0, 2, 2, false)])
    func fusedConvolutionPoolEqualsTheTwoKernels(_ c: ([Int], [Int], Int, Int, Int, Bool)) throws {
        let (input, weight, padding, kernel, stride, ceil) = c
        let s = try Conv2dShape(input: input, weight: weight, padding: (padding, padding))
        #expect((Conv2dPlan.choose(s) == .direct) == (padding == 0))
        if padding > 0 { #expect(maxPoolSlice(s).batch == (input[0] == 100 ? 34 : input[0])) }
        let p = Pool2dShape(batch: s.batch, channels: s.outChannels, height: s.outHeight, width: s.outWidth,
                            kernelH: kernel, kernelW: kernel, strideH: stride, strideW: stride, ceilMode: ceil)
        var random = TestRandom(seed: 5)
        // Rounded values make ties, which the first maximum must win in both.
        var x = random.floats(input.reduce(1, *)).map { ($0 * 4).rounded() / 4 }
        if padding == 0 { x[x.count / 2 + 3] = .nan }
        if Conv2dPlan.windowLanesAvailable && padding == 0 && kernel == 2 && input[1] <= 2 {
            #expect(Conv2dPlan.directForwardKernel(s, pool: p) == .windowLanes)
        }
        // 24 × 4 lanes (from 25 taps in 8-lane builds, 32 in 16-lane ones) under a 2×2 pool are
        // pooled in registers (`ChannelLaneBlock.pooled`).
        let pooledLanes = padding == 0 && kernel == 2 && s.outChannels % 24 == 0 && s.outChannels % 16 != 0
            && s.groupPatchSize >= (Conv2dPlan.windowLanesAvailable ? 32 : 25)
        #expect((ChannelLaneBlock.pooled(s, pool: p) != nil) == pooledLanes)
        if pooledLanes && !(Conv2dPlan.windowLanesAvailable && input[1] <= 2) {
            #expect(Conv2dPlan.directForwardKernel(s, pool: p) == .channelLanesPooledInRegisters)
        }
        #expect(poolsInRegisters(s, pool: p) == (padding == 0 && kernel == 2 && ChannelLaneBlock.of(s) == nil
                                                 && !pooledLanes && s.outWidth % 2 == 0 && !forwardLayout(s).wide))
        let w = random.floats(weight.reduce(1, *)).map { ($0 * 4).rounded() / 4 }, b = random.floats(s.outChannels)
        let pooledCount = p.outputShape.reduce(1, *)
        for threads in 1...3 {
            for relu in [false, true] {
                for withArgmax in [true, false] {
                    Conv2dPlan.$winogradEvaluation.withValue(false) { Parallelism.withThreadCount(threads) {
                        let convolved = convForward(s, x, w, b)
                        var expected = [Float](repeating: .nan, count: pooledCount)
                        var expectedIndices = [Int32](repeating: -1, count: pooledCount)
                        expected.withUnsafeMutableBufferPointer { out in
                            expectedIndices.withUnsafeMutableBufferPointer { ix in
                                maxPool2dForward(p, input: convolved, output: out.baseAddress!,
                                                 argmax: withArgmax ? ix.baseAddress! : nil, relu: relu)
                            }
                        }
                        var output = [Float](repeating: .nan, count: pooledCount)
                        var indices = [Int32](repeating: -1, count: pooledCount)
                        var scratch = [Float](repeating: .nan, count: conv2dMaxPool2dWorkspaceCount(s, pool: p))
                        scratch.withUnsafeMutableBufferPointer { ws in
                            output.withUnsafeMutableBufferPointer { out in
                                indices.withUnsafeMutableBufferPointer { ix in
                                    conv2dMaxPool2dForward(s, pool: p, input: x, weight: w, bias: b, output: out.baseAddress!,
                                                           argmax: withArgmax ? ix.baseAddress! : nil, relu: relu, workspace: ws)
                                }
                            }
                        }
                        let label = "\(input) \(weight) padding \(padding) pool \(kernel)/\(stride) relu \(relu) argmax \(withArgmax) at \(threads) threads"
                        #expect(output.elementsEqual(expected) { $0.bitPattern == $1.bitPattern }, "\(label): values")
                        #expect(indices == expectedIndices, "\(label): argmax")
                    } }
                }
            }
        }
    }

    /// `Conv2dPlan.fiveChannelForwardOnly` (what `mnist-bench --ops --config` times the
    /// previous kernel by) computes the same bits as the kernel chosen, values and argmax,
    /// with the workspace sized under it and its scratch found by the worker threads (which
    /// do not see the task-local) at the offsets the calling thread sized: at 1–3 threads,
    /// for a channel-lane convolution (the published net's conv2), a banded one and one
    /// pooled in registers (LeNet's conv1; by the window-lane kernel in 16-lane builds).
    @Test(arguments: [([5, 24, 12, 12], [32, 24, 3, 3], Conv2dPlan.ForwardKernel.channelLanes),
                      ([3, 4, 27, 27], [32, 4, 3, 3], .channelLanes),
                      ([5, 1, 28, 28], [6, 1, 5, 5], .fiveChannelsPooledInRegisters),
                      ([5, 4, 12, 12], [24, 4, 3, 3], .channelLanesPooledInRegisters)])
    func fiveChannelBaselineGivesTheSameBits(_ input: [Int], _ weight: [Int], _ kernel: Conv2dPlan.ForwardKernel) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        // One or two input channels under a 2×2 pool take the window-lane kernel where the build has it.
        let chosen = kernel == .fiveChannelsPooledInRegisters && Conv2dPlan.windowLanesAvailable ? .windowLanes : kernel
        #expect(Conv2dPlan.directForwardKernel(s, pool: p) == chosen)
        #expect(Conv2dPlan.$fiveChannelForwardOnly.withValue(true) { Conv2dPlan.directForwardKernel(s, pool: p) } == .fiveChannels)
        var random = TestRandom(seed: 17)
        let x = random.floats(input.reduce(1, *)), w = random.floats(weight.reduce(1, *)), b = random.floats(s.outChannels)
        let count = p.outputShape.reduce(1, *)
        for threads in 1...3 {
            let runs = [false, true].map { fiveChannelOnly in
                Conv2dPlan.$fiveChannelForwardOnly.withValue(fiveChannelOnly) {
                    Parallelism.withThreadCount(threads) {
                        var output = [Float](repeating: .nan, count: count), indices = [Int32](repeating: -1, count: count)
                        var scratch = [Float](repeating: .nan, count: conv2dMaxPool2dWorkspaceCount(s, pool: p))
                        scratch.withUnsafeMutableBufferPointer { ws in
                            output.withUnsafeMutableBufferPointer { out in
                                indices.withUnsafeMutableBufferPointer { ix in
                                    conv2dMaxPool2dForward(s, pool: p, input: x, weight: w, bias: b, output: out.baseAddress!,
                                                           argmax: ix.baseAddress!, relu: true, workspace: ws)
                                }
                            }
                        }
                        return (output, indices)
                    }
                }
            }
            let values = zip(runs[0].0, runs[1].0).filter { $0.bitPattern != $1.bitPattern }.count
            let indices = zip(runs[0].1, runs[1].1).filter { $0 != $1 }.count
            #expect(values == 0 && indices == 0,
                    "\(input) \(weight) at \(threads) threads: \(values) values and \(indices) indices differ")
        }
    }

    @Test func paddedStridedOrNarrowConvolutionsUseIm2col() throws {
        #expect(Conv2dPlan.choose(try Conv2dShape(input: [1, 1, 28, 28], weight: [6, 1, 5, 5], padding: (2, 2))) == .im2colGEMM)
        // conv2 runs forward directly; its dense input gradient (2.25× the multiply-adds
        // transposed) goes through GEMM.
        let conv2 = try Conv2dShape(input: [1, 20, 12, 12], weight: [50, 20, 5, 5])
        #expect(Conv2dPlan.choose(conv2) == .direct)
        #expect(Conv2dPlan.choose(conv2, pass: .backwardInput) == .im2colGEMM)
        #expect(Conv2dPlan.choose(try Conv2dShape(input: [1, 1, 28, 28], weight: [4, 1, 3, 3], stride: (2, 2))) == .im2colGEMM)
        #expect(Conv2dPlan.choose(try Conv2dShape(input: [1, 1, 10, 6], weight: [4, 1, 3, 3])) == .im2colGEMM)  // 4 wide
    }
}
