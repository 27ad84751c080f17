// MARK: - Workspace

/// Floats of scratch memory the conv2d kernels need for `shape` at `threadCount` threads.
///
/// One size serves all three kernels (forward, backward-input, backward-weight): one
/// im2col matrix per chunk of the batch, plus a private weight- and bias-gradient
/// partial sum for every chunk after the first; or what the sparse-gradient path or the
/// direct forward's packed weight need, if more (the layouts are `Conv2dPlan`'s). Allocate
/// once and reuse across steps; recompute it when the thread count changes (a kernel called
/// with too small a workspace stops with a precondition failure naming both sizes).
public func conv2dWorkspaceCount(_ shape: Conv2dShape, threadCount: Int = Parallelism.threadCount) -> Int {
    Conv2dPlan.workspaceCount(shape, chunks: Conv2dPlan.chunkCount(shape.batch, threadCount: threadCount))
}

/// Whether the im2col matrix of a sample is the sample itself (1×1 kernel, no stride,
/// no padding), so the copy can be skipped.
@inlinable
func isPointwise(_ s: Conv2dShape) -> Bool {
    s.kernelHeight == 1 && s.kernelWidth == 1 && s.strideH == 1 && s.strideW == 1
        && s.padH == 0 && s.padW == 0
}

/// One sample's im2col matrix `(inChannels·kH·kW, outH·outW)`: the input itself for a
/// pointwise convolution, else written into `buffer`.
@inlinable
func sampleColumns(
    _ s: Conv2dShape, input: UnsafePointer<Float>, buffer: UnsafeMutablePointer<Float>
) -> UnsafePointer<Float> {
    if isPointwise(s) { return input }
    im2col(s, input: input, columns: buffer)
    return UnsafePointer(buffer)
}

// MARK: - Forward

/// `output = conv2d(input, weight) + bias`, PyTorch semantics (cross-correlation).
///
/// Directly when `Conv2dPlan.choose(shape)` says so (`conv2dForwardDirect`); else per
/// sample im2col, then one sgemm per group. Samples are split over
/// `Parallelism.threadCount` threads; each output element is computed by one chunk
/// whatever the thread count, so results do not depend on it.
///
/// - Parameters:
///   - shape: validated sizes.
///   - input: `(batch, inChannels, height, width)`.
///   - weight: `(outChannels, inChannels / groups, kernelHeight, kernelWidth)`.
///   - bias: `(outChannels)` or nil.
///   - output: `(batch, outChannels, outHeight, outWidth)`, overwritten.
///   - workspace: at least `conv2dWorkspaceCount(shape)` floats.
public func conv2dForward(
    _ shape: Conv2dShape,
    input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, workspace: UnsafeMutableBufferPointer<Float>
) {
    let s = shape
    let plan = Conv2dPlan(s, workspace: workspace)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    if Conv2dPlan.choose(s) == .direct {
        let forward = DirectForward(s), packedWeight = plan.packedWeight
        forward.packWeight(weight, into: packedWeight)
        plan.forEachSampleBlock(grain: 4) { chunk, samples in
            conv2dForwardDirect(forward, samples: samples, input: input, packedWeight: packedWeight, bias: bias,
                                output: output, scratch: plan.forwardScratch(chunk))
        }
        return
    }
    plan.forEachChunk { chunk, samples in
        let columnBuffer = plan.columns(chunk)
        for n in samples {
            let sampleInput = input + n * inputSample
            let sampleOutput = output + n * s.outChannels * plane
            let columns = sampleColumns(s, input: sampleInput, buffer: columnBuffer)
            // The bias is written first and the product added to it (beta = 1): OpenBLAS
            // then skips its own pass over C, which beta = 0 costs as much as the bias.
            if let bias {
                for o in 0..<s.outChannels {
                    (sampleOutput + o * plane).update(repeating: bias[o], count: plane)
                }
            }
            for g in 0..<s.groups {
                sgemm(
                    m: groupOut, n: plane, k: patch,
                    a: weight + g * groupOut * patch,
                    b: columns + g * patch * plane,
                    beta: bias == nil ? 0 : 1,
                    c: sampleOutput + g * groupOut * plane)
            }
        }
    }
}

// MARK: - Backward

/// `values[0..<count]` summed in eight lanes, then across the lanes: a fixed order, without
/// the serial chain of a scalar loop (whose float adds the compiler may not reorder).
@inlinable
func planeSum(_ values: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        lanes += load8(values + i)
        i += 8
    }
    var sum = lanes.sum()
    while i < count {
        sum += values[i]
        i += 1
    }
    return sum
}

/// Floats of workspace `conv2dMaxPool2dForward` needs: for a direct convolution, the
/// convolution's and one sample's output per thread; else a slice's output
/// (`maxPoolSlice`) and the slice's convolution workspace; at least what an evaluation pass
/// by Winograd needs where it applies (`WinogradPool`).
public func conv2dMaxPool2dWorkspaceCount(
    _ shape: Conv2dShape, pool: Pool2dShape, threadCount: Int = Parallelism.threadCount
) -> Int {
    let evaluation = WinogradPool.applies(shape, pool: pool)
        ? WinogradPool(shape, pool: pool).workspaceCount(threadCount: threadCount) : 0
    let slice = maxPoolSlice(shape)
    let training = Conv2dPlan.choose(shape) == .direct
        ? Conv2dPlan.workspaceCount(shape, threadCount: threadCount, extraPerChunk: directPoolExtra(shape, pool: pool))
        : slice.batch * slice.outChannels * slice.outPlane + conv2dWorkspaceCount(slice, threadCount: threadCount)
    return max(evaluation, training)
}

/// Floats each thread of a direct `conv2dMaxPool2dForward` has for one sample: its
/// convolution's output, or the window-lane kernel's planes where it applies and they are more
/// (the pooled channel-lane kernel's pooled values and indices take half the first).
func directPoolExtra(_ s: Conv2dShape, pool: Pool2dShape) -> Int {
    #if MNIST_ISA_AVX512
    if WindowLanes.applies(s, pool: pool) { return max(s.outChannels * s.outPlane, WindowLanes.scratchCount(s, pool: pool)) }
    #endif
    return s.outChannels * s.outPlane
}

/// The slice of samples a convolution that is not direct is computed in before its pool:
/// at most about 2 MB of convolution output, the batch cut into equal slices.
func maxPoolSlice(_ s: Conv2dShape) -> Conv2dShape {
    let largest = max(1, (2 << 20) / MemoryLayout<Float>.size / max(1, s.outChannels * s.outPlane))
    let sliceCount = (s.batch + largest - 1) / largest
    var slice = s
    slice.batch = max(1, (s.batch + sliceCount - 1) / max(1, sliceCount))
    return slice
}

/// `max_pool2d(conv2d(input))`, with `relu` also ReLU, so that the batch's convolution
/// output never exists (28 MB for the published speedrun net at batch 500). A direct
/// convolution (`Conv2dPlan.choose(shape) == .direct`) has each thread convolve one sample
/// into its own buffer and pool it while it is in cache, in one parallel region (the
/// threads taking four samples at a time, `forEachSampleBlock`). Under a 2×2, stride-2 pool
/// the convolution's output is not even stored: the five-channel kernel pools its sums in
/// registers (`directConvolvePoolSample`), and so does a 24-channel channel-lane one
/// (`channelLane24PoolSample`), other channel-lane convolutions pool their channels-last
/// tile (`poolChannelLaneTile`), and in 16-lane builds one or two input channels take the
/// window lanes (`Conv2dWindowLanes.swift`). Any other
/// is convolved a slice of samples at a time (`maxPoolSlice`, about 2 MB of output) and the
/// slice pooled while it is still in cache. The values and the argmax are those of
/// `conv2dForward` followed by `maxPool2dForward`, bit for bit, except in an evaluation
/// pass (no argmax) of a 3×3 or 5×5 convolution that `WinogradPool.applies` to: Winograd
/// F(2×2, 3×3) or F(2×2, 5×5) computes it, to within rounding (`Conv2dWinograd.swift`).
///
/// - Parameters:
///   - shape: the convolution; `pool`: the pool on its output (the same batch).
///   - output, argmax: `pool`'s output shape; `argmax` (indices within a plane) nil
///     without a backward pass.
///   - workspace: at least `conv2dMaxPool2dWorkspaceCount(shape, pool: pool)` floats.
public func conv2dMaxPool2dForward(
    _ shape: Conv2dShape, pool: Pool2dShape,
    input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?, relu: Bool,
    workspace: UnsafeMutableBufferPointer<Float>
) {
    let s = shape
    precondition(
        [pool.batch, pool.channels, pool.height, pool.width] == s.outputShape,
        "conv2dMaxPool2dForward: the pool takes \([pool.batch, pool.channels, pool.height, pool.width]), the convolution gives \(s.outputShape)")
    guard s.batch > 0 else { return }
    if argmax == nil && WinogradPool.applies(s, pool: pool) {
        conv2dMaxPool2dForwardWinograd(WinogradPool(s, pool: pool), input: input, weight: weight, bias: bias,
                                       output: output, relu: relu, workspace: workspace)
        return
    }
    let sampleCount = s.outChannels * s.outPlane
    let pooledSample = pool.channels * pool.outHeight * pool.outWidth
    guard Conv2dPlan.choose(s) == .direct else {
        let inputSample = s.inChannels * s.height * s.width
        var sliceConv = maxPoolSlice(s), slicePool = pool
        let convolved = workspace.baseAddress!, sliceSamples = sliceConv.batch
        let convolution = UnsafeMutableBufferPointer(rebasing: workspace[(sliceSamples * sampleCount)...])
        for start in stride(from: 0, to: s.batch, by: sliceSamples) {
            sliceConv.batch = min(sliceSamples, s.batch - start)
            slicePool.batch = sliceConv.batch
            conv2dForward(sliceConv, input: input + start * inputSample, weight: weight, bias: bias, output: convolved,
                          workspace: convolution)
            maxPool2dForward(slicePool, input: convolved, output: output + start * pooledSample,
                             argmax: argmax.map { $0 + start * pooledSample }, relu: relu)
        }
        return
    }
    let plan = Conv2dPlan(s, workspace: workspace, extraPerChunk: directPoolExtra(s, pool: pool))
    // One choice of kernel, `directForwardKernel`'s (what `mnist-bench --ops` reports too).
    let kernel = Conv2dPlan.directForwardKernel(s, pool: pool)
    #if MNIST_ISA_AVX512
    if kernel == .windowLanes {
        let lanes = WindowLanes(s, pool: pool), inputSample = s.inChannels * s.height * s.width
        plan.forEachSampleBlock(grain: 4) { chunk, range in
            let planes = lanes.planes(in: plan.extra(chunk))
            for n in range {
                lanes.splitPlanes(input + n * inputSample, into: planes)
                lanes.convolvePoolSample(weight: weight, bias: bias, planes: planes, output: output + n * pooledSample,
                                         argmax: argmax.map { $0 + n * pooledSample }, relu: relu)
            }
        }
        return
    }
    #endif
    if kernel == .channelLanesPooledInRegisters {
        conv2dMaxPool2dForwardChannelLanes(plan, pool: pool, input: input, weight: weight, bias: bias,
                                           output: output, argmax: argmax, relu: relu)
        return
    }
    let forward = DirectForward(s), packedWeight = plan.packedWeight
    forward.packWeight(weight, into: packedWeight)
    let pooledPlane = pool.outHeight * pool.outWidth
    if kernel == .fiveChannelsPooledInRegisters {
        let pairs = pooledChunkPairs(s, pool: pool)
        let inputSample = s.inChannels * s.height * s.width
        forward.offsets.withUnsafeBufferPointer { offsets in
            pairs.withUnsafeBufferPointer { pairs in
                plan.forEachSampleBlock(grain: 4) { _, range in
                    for n in range {
                        directConvolvePoolSample(
                            taps: offsets.count, offsets: offsets.baseAddress!, outChannels: s.outChannels,
                            packedWeight: packedWeight, bias: bias, input: input + n * inputSample, width: s.width,
                            outWidth: s.outWidth, pairs: pairs, output: output + n * pooledSample,
                            argmax: argmax.map { $0 + n * pooledSample }, pooledPlane: pooledPlane, relu: relu)
                    }
                }
            }
        }
        return
    }
    if kernel == .channelLanes && isSimple2x2(pool) {
        poolWindowOrigins(pool).withUnsafeBufferPointer { windows in
            plan.forEachSampleBlock(grain: 4) { chunk, range in
                conv2dForwardChannelLanes(forward, samples: range, input: input, packedWeight: packedWeight,
                                          bias: bias, tile: plan.forwardScratch(chunk)) { n, rows, tile in
                    // The pooled rows whose windows lie in the band (its first row is even).
                    let pooledRows = rows.lowerBound / 2..<min(rows.upperBound / 2, pool.outHeight)
                    poolChannelLaneTile(pool, windows: windows,
                                        range: pooledRows.lowerBound * pool.outWidth..<pooledRows.upperBound * pool.outWidth,
                                        tile: tile - rows.lowerBound * s.outWidth * s.outChannels,
                                        outChannels: s.outChannels, output: output + n * pooledSample,
                                        argmax: argmax.map { $0 + n * pooledSample }, relu: relu)
                }
            }
        }
        return
    }
    plan.forEachSampleBlock(grain: 4) { chunk, range in
        let convolved = plan.extra(chunk)
        conv2dForwardDirect(forward, samples: range, input: input, packedWeight: packedWeight, bias: bias,
                            scratch: plan.forwardScratch(chunk), outputOf: { _ in convolved }) { n in
            maxPool2dPlanes(pool, planes: 0..<pool.channels, input: convolved, output: output + n * pooledSample,
                            argmax: argmax.map { $0 + n * pooledSample }, relu: relu)
        }
    }
}

/// `gradInput = conv_transpose(gradOutput, weight)`: the gradient with respect to the input.
/// From the nonzero gradients only when `Conv2dPlan.choose(shape, pass: .backwardInput, ...)`
/// says so (`conv2dBackwardSparse`); else per sample one sgemm per group into columns,
/// then col2im. Independent of thread count.
///
/// - Parameters:
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - weight: `(outChannels, inChannels / groups, kernelHeight, kernelWidth)`.
///   - gradInput: `(batch, inChannels, height, width)`, overwritten.
///   - workspace: at least `conv2dWorkspaceCount(shape)` floats.
///   - sparseGradient: whether `gradOutput` is sparse (`conv2dGradientIsSparse`); scanned
///     here when nil.
public func conv2dBackwardInput(
    _ shape: Conv2dShape,
    gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>, workspace: UnsafeMutableBufferPointer<Float>,
    sparseGradient: Bool? = nil
) {
    let s = shape
    let plan = Conv2dPlan(s, workspace: workspace)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let sparse = sparseGradient ?? conv2dGradientIsSparse(s, gradOutput: gradOutput)
    let algorithm = Conv2dPlan.choose(s, pass: .backwardInput, sparseGradient: sparse)
    if algorithm == .direct {
        let packedWeight = plan.packedWeight
        packTransposedWeight(s, weight: weight, into: packedWeight)
        plan.forEachChunk { chunk, samples in
            conv2dBackwardInputDirect(s, samples: samples, gradOutput: gradOutput, packedWeight: packedWeight,
                                      gradInput: gradInput, scratch: plan.backwardInputScratch(chunk))
        }
        return
    }
    if algorithm == .sparse {
        sparseBackward(plan, gradient: .dense(gradOutput), input: nil, weight: weight,
                       gradInput: gradInput, gradWeight: nil, gradBias: nil)
        return
    }
    plan.forEachChunk { chunk, samples in
        let columnBuffer = plan.columns(chunk)
        for n in samples {
            let sampleGradOutput = gradOutput + n * s.outChannels * plane
            let sampleGradInput = gradInput + n * inputSample
            let columns = isPointwise(s) ? sampleGradInput : columnBuffer
            for g in 0..<s.groups {
                // (patch, plane) = weight_gᵀ (patch, groupOut) · gradOutput_g (groupOut, plane)
                sgemm(
                    transposeA: true, m: patch, n: plane, k: groupOut,
                    a: weight + g * groupOut * patch,
                    b: sampleGradOutput + g * groupOut * plane,
                    c: columns + g * patch * plane)
            }
            if !isPointwise(s) {
                col2im(s, columns: columnBuffer, gradInput: sampleGradInput)
            }
        }
    }
}

/// The gradients with respect to the weight and the bias, summed over the batch, by the
/// algorithm `Conv2dPlan.choose(shape, pass: .backwardWeight, ...)` picks: from the nonzero
/// gradients only (`conv2dBackwardSparse`), directly (`conv2dBackwardWeightDirect` up to
/// 32 taps, `conv2dBackwardWeightBlocked` beyond), or per sample through im2col and one sgemm
/// per group.
///
/// Each chunk of samples accumulates its own partial sums (sample order within the chunk);
/// the partials are then added in chunk order. The result is bit-identical for a given
/// thread count; between different thread counts it differs by float rounding only.
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - gradWeight: `(outChannels, inChannels / groups, kernelHeight, kernelWidth)`, overwritten.
///   - gradBias: `(outChannels)`, overwritten; nil to skip it.
///   - workspace: at least `conv2dWorkspaceCount(shape)` floats.
///   - sparseGradient: whether `gradOutput` is sparse (`conv2dGradientIsSparse`); scanned
///     here when nil.
public func conv2dBackwardWeight(
    _ shape: Conv2dShape,
    input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
    gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?,
    workspace: UnsafeMutableBufferPointer<Float>,
    sparseGradient: Bool? = nil
) {
    let s = shape
    let plan = Conv2dPlan(s, workspace: workspace)
    let chunks = plan.chunks
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let weightCount = s.outChannels * patch
    // Chunk 0 writes straight into the outputs; chunk c > 0 into its partial.
    func partialWeight(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        chunk == 0 ? gradWeight : plan.weightPartial(chunk)
    }
    func partialBias(_ chunk: Int) -> UnsafeMutablePointer<Float>? {
        guard let gradBias else { return nil }
        return chunk == 0 ? gradBias : partialWeight(chunk) + weightCount
    }
    let sparse = sparseGradient ?? conv2dGradientIsSparse(s, gradOutput: gradOutput)
    let algorithm = Conv2dPlan.choose(s, pass: .backwardWeight, sparseGradient: sparse)
    if algorithm == .sparse {
        sparseBackward(plan, gradient: .dense(gradOutput), input: input, weight: nil,
                       gradInput: nil, gradWeight: gradWeight, gradBias: gradBias)
        return
    }
    plan.forEachChunk { chunk, samples in
        let columnBuffer = plan.columns(chunk)
        let weightSum = partialWeight(chunk)
        let biasSum = partialBias(chunk)
        if algorithm == .direct {
            if Conv2dPlan.usesDirectBackwardWeight(s) {
                conv2dBackwardWeightDirect(s, samples: samples, input: input, gradOutput: gradOutput,
                                           gradWeight: weightSum, gradBias: biasSum,
                                           scratch: plan.directBackwardWeightScratch(chunk))
            } else {
                conv2dBackwardWeightBlocked(s, samples: samples, input: input, gradOutput: gradOutput,
                                            gradWeight: weightSum, gradBias: biasSum, scratch: plan.backwardWeightScratch(chunk))
            }
            return
        }
        biasSum?.update(repeating: 0, count: s.outChannels)
        for n in samples {
            let sampleInput = input + n * inputSample
            let sampleGradOutput = gradOutput + n * s.outChannels * plane
            let columns = sampleColumns(s, input: sampleInput, buffer: columnBuffer)
            let beta: Float = n == samples.lowerBound ? 0 : 1
            for g in 0..<s.groups {
                // (groupOut, patch) += gradOutput_g (groupOut, plane) · columns_gᵀ (plane, patch)
                sgemm(
                    transposeB: true, m: groupOut, n: patch, k: plane,
                    a: sampleGradOutput + g * groupOut * plane,
                    b: columns + g * patch * plane,
                    beta: beta,
                    c: weightSum + g * groupOut * patch)
            }
            if let biasSum {
                for o in 0..<s.outChannels {
                    biasSum[o] += planeSum(sampleGradOutput + o * plane, count: plane)
                }
            }
        }
    }
    // Fixed-order reduction of the partial sums.
    for chunk in 1..<max(chunks, 1) {
        let weightPart = partialWeight(chunk)
        for i in 0..<weightCount { gradWeight[i] += weightPart[i] }
        if let gradBias, let biasPart = partialBias(chunk) {
            for o in 0..<s.outChannels { gradBias[o] += biasPart[o] }
        }
    }
}

// MARK: - Backward from a max-pool's gradient

/// Floats of workspace `conv2dMaxPool2dBackward` needs: the convolution's, and, unless the
/// gradient is read through the pool's argmax (`conv2dPooledGradientIsSparse`), a dense
/// gradient of the convolution's output size.
public func conv2dMaxPool2dBackwardWorkspaceCount(
    _ shape: Conv2dShape, pool: Pool2dShape, threadCount: Int = Parallelism.threadCount
) -> Int {
    let dense = conv2dPooledGradientIsSparse(shape, pool: pool) ? 0 : shape.batch * shape.outChannels * shape.outPlane
    return dense + conv2dWorkspaceCount(shape, threadCount: threadCount)
}

/// The backward pass of `conv2dMaxPool2dForward`: the convolution's input, weight and bias
/// gradients from the gradient of the pool's output (`PooledGradient`: with the pool's
/// argmax, and its output when a ReLU was fused).
///
/// Behind a pool whose windows step 2×2 or more (`conv2dPooledGradientIsSparse`), each
/// sample's nonzeros are listed straight from the pool's gradient and argmax, once for both
/// passes (`conv2dBackwardSparse`): no dense gradient is written or scanned. Behind any
/// other pool, the gradient is scattered into a dense block (`maxPool2dBackward`), then
/// `conv2dBackwardInput` and `conv2dBackwardWeight` run on it. Either way the values are those
/// of the scatter followed by the two passes, up to the order of the float additions.
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - weight: `(outChannels, inChannels, kernelHeight, kernelWidth)`.
///   - gradInput: `(batch, inChannels, height, width)`, overwritten; nil to skip it.
///   - gradWeight: `(outChannels, inChannels, kernelHeight, kernelWidth)`, overwritten; nil
///     to skip it (then also `gradBias`).
///   - gradBias: `(outChannels)`, overwritten; nil to skip it.
///   - workspace: at least `conv2dMaxPool2dBackwardWorkspaceCount(shape, pool:)` floats.
public func conv2dMaxPool2dBackward(
    _ shape: Conv2dShape, pooledGradient g: PooledGradient, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>?,
    gradBias: UnsafeMutablePointer<Float>?, workspace: UnsafeMutableBufferPointer<Float>
) {
    precondition(gradBias == nil || gradWeight != nil, "conv2d: a bias gradient comes with the weight gradient")
    if conv2dPooledGradientIsSparse(shape, pool: g.pool) {
        sparseBackward(Conv2dPlan(shape, workspace: workspace), gradient: .pooled(g), input: input,
                       weight: weight, gradInput: gradInput, gradWeight: gradWeight, gradBias: gradBias)
        return
    }
    let dense = workspace.baseAddress!, count = shape.batch * shape.outChannels * shape.outPlane
    let rest = UnsafeMutableBufferPointer(rebasing: workspace[count...])
    maxPool2dBackward(g.pool, gradOutput: g.gradient, argmax: g.argmax, gradInput: dense, reluOutput: g.reluOutput)
    // One scan of the gradient decides the path of both passes.
    let sparse = conv2dGradientIsSparse(shape, gradOutput: dense)
    if let gradInput {
        conv2dBackwardInput(shape, gradOutput: dense, weight: weight, gradInput: gradInput, workspace: rest,
                            sparseGradient: sparse)
    }
    if let gradWeight {
        conv2dBackwardWeight(shape, input: input, gradOutput: dense, gradWeight: gradWeight, gradBias: gradBias,
                             workspace: rest, sparseGradient: sparse)
    }
}

/// The sparse passes over the plan's chunks (`conv2dBackwardSparse`): the input gradient
/// when `gradInput` is given (from `weight`), the weight and bias gradients when `gradWeight`
/// or `gradBias` is (from `input`); each chunk's weight and bias partials reduced in chunk
/// order.
func sparseBackward(
    _ plan: Conv2dPlan, gradient: SparseGradient, input: UnsafePointer<Float>?, weight: UnsafePointer<Float>?,
    gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?
) {
    let s = plan.shape, chunks = plan.chunks
    let weights = gradWeight != nil || gradBias != nil
    precondition((gradInput == nil || weight != nil) && (!weights || input != nil), "conv2d: sparse backward without its operand")
    if gradInput != nil, let weight { packSparseWeight(s, weight: weight, packed: plan.packedSparseWeight) }
    let packedWeight = UnsafePointer(plan.packedSparseWeight)
    plan.forEachChunk { chunk, samples in
        conv2dBackwardSparse(s, samples: samples, gradient: gradient,
                             packedWeight: gradInput == nil ? nil : packedWeight, gradInput: gradInput,
                             input: input, gradWeight: weights ? plan.sparsePartial(chunk) : nil,
                             gradBias: gradBias == nil ? nil : plan.sparseBiasPartial(chunk),
                             scratch: plan.sparseScratch(chunk))
    }
    // Fixed-order reduction of the partials, dropping the lanes past the taps; output
    // channels split over the threads (on the calling thread alone, the worker waited).
    if let gradWeight {
        let kW = s.kernelWidth, rows = s.inChannels * s.kernelHeight, taps = rows * kW
        // Kernel row r's taps start at r · step in a partial's row.
        let rowLength = sparseRowLength(s), step = sparseUsesPatches(s) ? kW : 8
        let partials = plan.sparsePartial(0), partialCount = Conv2dPlan.sparsePartialCount(s)
        Parallelism.forEach(s.outChannels, chunks: chunks) { _, channels in
            for o in channels {
                let sum = gradWeight + o * taps
                for r in 0..<rows {
                    for kw in 0..<kW { sum[r * kW + kw] = partials[o * rowLength + r * step + kw] }
                }
                for chunk in 1..<max(chunks, 1) {
                    let partial = partials + chunk * partialCount + o * rowLength
                    for r in 0..<rows {
                        for kw in 0..<kW { sum[r * kW + kw] += partial[r * step + kw] }
                    }
                }
            }
        }
    }
    if let gradBias {
        for o in 0..<s.outChannels {
            var sum = plan.sparseBiasPartial(0)[o]
            for chunk in 1..<max(chunks, 1) { sum += plan.sparseBiasPartial(chunk)[o] }
            gradBias[o] = sum
        }
    }
}
