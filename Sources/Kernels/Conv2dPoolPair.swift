// MARK: - Two convolution + pool stages of an evaluation pass, one sample at a time

// The published speedrun net's evaluation in an 8-lane build runs conv1 (1 → 24, 5×5, pooled
// in registers by `channelLane24PoolSample`) and then conv2 (24 → 32, 3×3, by Winograd). Each
// by itself, conv1 wrote its pooled output channels-last into a tile, transposed it into the
// NCHW tensor (6.9 MB at batch 500, past the level-2 cache), and Winograd read it back and
// transposed it channels-last again: two transposes and a round trip through memory of an
// intermediate neither needs. `perf record -F 10000 -e cpu-clock mnist-eval --threads 2`
// (AVX2 build, the published net's checkpoint) put `transposeRows` at 8% of the evaluation.
// Here each thread takes a sample through both stages: conv1's pooled values go straight into
// Winograd's channels-last copy (24 channels, the copy's own width), which stays in the
// level-1 cache, and only conv2's pooled output is written. The values are the two stages'
// bit for bit (the same kernels, the same sums; the transposes only moved them).

/// A convolution under a 2×2 pool followed by another under a 2×2 pool, in a pass that
/// records no argmax, where the first is computed by the 24 × 4 channel-lane kernel pooled in
/// registers (`Conv2dPlan.ForwardKernel.channelLanesPooledInRegisters`) and the second by
/// Winograd (`WinogradPool.applies`): `conv2dMaxPool2dPairForward` computes both a sample at a
/// time (`Sequential` in a pass without gradients, through `F.conv2dMaxPool2dPair`).
public struct Conv2dPoolPair: Sendable {
    public let first: Conv2dShape, firstPool: Pool2dShape
    public let second: Conv2dShape, secondPool: Pool2dShape

    /// Whether the pair is computed together (`conv2dMaxPool2dPairForward`): each stage's
    /// pool takes its convolution's output, the first pool's output is the second
    /// convolution's input, the first stage takes the pooled channel-lane kernel and the
    /// second Winograd, and Winograd's channels-last copy is as wide as the first's output
    /// (a multiple of 24 channels is a multiple of 8).
    public static func applies(first: Conv2dShape, firstPool: Pool2dShape, second: Conv2dShape, secondPool: Pool2dShape) -> Bool {
        [firstPool.batch, firstPool.channels, firstPool.height, firstPool.width] == first.outputShape
            && [secondPool.batch, secondPool.channels, secondPool.height, secondPool.width] == second.outputShape
            && [first.batch, first.outChannels, firstPool.outHeight, firstPool.outWidth]
                == [second.batch, second.inChannels, second.height, second.width]
            && Conv2dPlan.directForwardKernel(first, pool: firstPool) == .channelLanesPooledInRegisters
            && WinogradPool.applies(second, pool: secondPool)
            && WinogradPool(second, pool: secondPool).channels == first.outChannels
    }

    public init(first: Conv2dShape, firstPool: Pool2dShape, second: Conv2dShape, secondPool: Pool2dShape) {
        self.first = first
        self.firstPool = firstPool
        self.second = second
        self.secondPool = secondPool
    }

    var winograd: WinogradPool { WinogradPool(second, pool: secondPool) }

    /// Floats of the first stage's packed weight (`packChannelLaneWeight`: whole groups of 24).
    var firstWeightCount: Int { first.outChannels * first.groupPatchSize }

    /// Floats of workspace `conv2dMaxPool2dPairForward` needs at `threadCount` threads: both
    /// packed weights and each chunk's Winograd scratch (whose start holds the sample
    /// between the stages).
    public func workspaceCount(threadCount: Int = Parallelism.threadCount) -> Int {
        firstWeightCount + winograd.workspaceCount(threadCount: threadCount)
    }
}

/// `max_pool2d(conv2d(max_pool2d(conv2d(input))))`, each pool followed by ReLU where
/// `firstRelu`, `secondRelu`, in an evaluation pass (`Conv2dPoolPair.applies`, which must
/// hold): each thread takes four samples at a time through both stages, the first's pooled
/// output (`channelLane24PoolSample`) written channels-last straight into the start of the
/// thread's Winograd scratch, which `WinogradPool.convolvePoolChannelsLast` then takes. The
/// same bits as `conv2dMaxPool2dForward` twice.
///
/// - Parameters:
///   - input: `(batch, first.inChannels, first.height, first.width)`.
///   - output: `(batch, second.outChannels, secondPool.outHeight, secondPool.outWidth)`.
///   - workspace: at least `pair.workspaceCount()` floats.
public func conv2dMaxPool2dPairForward(
    _ pair: Conv2dPoolPair, input: UnsafePointer<Float>,
    firstWeight: UnsafePointer<Float>, firstBias: UnsafePointer<Float>?, firstRelu: Bool,
    secondWeight: UnsafePointer<Float>, secondBias: UnsafePointer<Float>?, secondRelu: Bool,
    output: UnsafeMutablePointer<Float>, workspace: UnsafeMutableBufferPointer<Float>
) {
    precondition(
        Conv2dPoolPair.applies(first: pair.first, firstPool: pair.firstPool, second: pair.second, secondPool: pair.secondPool),
        "conv2dMaxPool2dPairForward: \(pair.first) under \(pair.firstPool), then \(pair.second) under \(pair.secondPool), is not a pair")
    let s = pair.first, winograd = pair.winograd, taps = s.groupPatchSize
    guard s.batch > 0 else { return }
    let block = ChannelLaneBlock.pooled(s, pool: pair.firstPool)!
    let chunks = Conv2dPlan.chunks(pair.second, workspace: workspace.count - pair.firstWeightCount,
                                   needed: winograd.workspaceCount(chunks:))
    let base = workspace.baseAddress!
    let firstPacked: UnsafePointer<Float>, secondTransformed: UnsafePointer<Float>
    let pack = { (into: UnsafeMutablePointer<Float>) in packChannelLaneWeight(block, s, weight: firstWeight, into: into) }
    if let fixed = FixedWeights.current {
        firstPacked = fixed.prepared(firstWeight, layout: "channelLanes", count: pair.firstWeightCount, fill: pack)
        secondTransformed = fixed.prepared(secondWeight, layout: "winograd", count: winograd.weightCount) {
            winograd.transformWeight(secondWeight, into: $0)
        }
    } else {
        pack(base)
        winograd.transformWeight(secondWeight, into: base + pair.firstWeightCount)
        firstPacked = UnsafePointer(base)
        secondTransformed = UnsafePointer(base + pair.firstWeightCount)
    }
    let scratches = base + pair.firstWeightCount + winograd.weightCount, scratchCount = winograd.scratchCount
    let inputSample = s.inChannels * s.height * s.width, inputBytes = inputSample * MemoryLayout<Float>.size
    let pooledSample = pair.second.outChannels * winograd.tileRows * winograd.tileColumns
    tapOffsets(s, multiple: 1).withUnsafeBufferPointer { offsets in
        Parallelism.forEachBlock(s.batch, chunks: chunks, grain: 4) { chunk, samples in
            let scratch = scratches + chunk * scratchCount
            for n in samples {
                channelLane24PoolSample(
                    taps: taps, offsets: offsets.baseAddress!, outChannels: s.outChannels, packedWeight: firstPacked,
                    bias: firstBias, input: input + n * inputSample, width: s.width, outWidth: s.outWidth,
                    pool: pair.firstPool, pooled: scratch, indices: nil, relu: firstRelu)
                winograd.convolvePoolChannelsLast(
                    next: n + 1 < s.batch ? UnsafeRawPointer(input + (n + 1) * inputSample) : nil, nextBytes: inputBytes,
                    packedWeight: secondTransformed, bias: secondBias, output: output + n * pooledSample,
                    relu: secondRelu, scratch: scratch)
            }
        }
    }
}
