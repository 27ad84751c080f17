// MARK: - Workspace

/// Floats of scratch memory the conv2d kernels need for `shape` at `threadCount` threads.
///
/// One size serves all three kernels (forward, backward-input, backward-weight): one
/// im2col matrix per chunk of the batch, plus a private weight- and bias-gradient
/// partial sum for every chunk after the first; or what the sparse-gradient path or the
/// direct forward's packed weight need, if more. Allocate once and reuse across steps;
/// recompute it when the thread count changes (a kernel called with too small a workspace
/// stops with a precondition failure naming both sizes).
public func conv2dWorkspaceCount(_ shape: Conv2dShape, threadCount: Int = Parallelism.threadCount) -> Int {
    let chunks = chunkCount(shape.batch, threadCount: threadCount)
    let columns = shape.inChannels * shape.kernelHeight * shape.kernelWidth * shape.outPlane
    let partials = shape.outChannels * shape.groupPatchSize + shape.outChannels
    return max(chunks * columns + (chunks - 1) * partials, sparseWorkspaceCount(shape, chunks: chunks),
               usesDirectConvolution(shape) ? packedDirectWeightCount(shape) : 0)
}

/// Chunks `Parallelism.forEachChunk` splits `count` items into (minimumPerChunk 1).
@inlinable
func chunkCount(_ count: Int, threadCount: Int) -> Int { max(1, min(threadCount, count)) }

/// Runs `body(chunk, samples)` over `0..<batch` split into `chunks` contiguous ranges, the
/// same boundaries as `Parallelism.forEachChunk` (`batch * i / chunks`). It takes the chunk
/// count from the caller, who read `Parallelism.threadCount` once and sized the workspace
/// with it, so a thread-count change from elsewhere cannot desynchronise the two.
/// OpenBLAS always runs single-threaded (see `Parallelism`): our threads
/// fill the cores.
@inlinable
func forEachBatchChunk(
    _ batch: Int, chunks: Int, _ body: (_ chunk: Int, _ samples: Range<Int>) -> Void
) {
    if chunks <= 1 {
        body(0, 0..<batch)
        return
    }
    // Each chunk touches disjoint samples of the caller's buffers and its own workspace.
    Parallelism.forEach(batch, chunks: chunks, body)
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

/// The number of batch chunks a kernel call splits its samples into: one per thread
/// (each running its own im2col and single-threaded sgemms), as many as `workspace` holds.
@inlinable
func checkWorkspace(_ s: Conv2dShape, _ workspace: UnsafeMutableBufferPointer<Float>) -> Int {
    let threads = Parallelism.threadCount  // read once per kernel call
    var chunks = chunkCount(s.batch, threadCount: threads)
    // A workspace sized for fewer threads (the count changed since it was allocated) runs
    // with as many chunks as it holds.
    while chunks > 1 && workspace.count < conv2dWorkspaceCount(s, threadCount: chunks) { chunks -= 1 }
    let needed = conv2dWorkspaceCount(s, threadCount: chunks)
    precondition(
        workspace.count >= needed,
        "conv2d: workspace holds \(workspace.count) floats; \(needed) needed for \(s) at \(chunks) chunks")
    return chunks
}

// MARK: - Forward

/// `output = conv2d(input, weight) + bias`, PyTorch semantics (cross-correlation).
///
/// Per sample: im2col, then one sgemm per group. Samples are split over
/// `Parallelism.threadCount` threads; each output element is computed by exactly one
/// sgemm whatever the thread count, so results do not depend on it.
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
    let chunks = checkWorkspace(s, workspace)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let columnsCount = s.inChannels * s.kernelHeight * s.kernelWidth * plane
    let workspaceBase = workspace.baseAddress!
    if usesDirectConvolution(s) {
        packDirectWeight(s, weight: weight, into: workspaceBase)
        forEachBatchChunk(s.batch, chunks: chunks) { _, samples in
            conv2dForwardDirect(s, samples: samples, input: input, packedWeight: workspaceBase, bias: bias,
                                output: output)
        }
        return
    }
    forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
        let columnBuffer = workspaceBase + chunk * columnsCount
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

/// `gradInput = conv_transpose(gradOutput, weight)`: the gradient with respect to the input.
/// Per sample: one sgemm per group into columns, then col2im. Independent of thread count.
///
/// - Parameters:
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - weight: `(outChannels, inChannels / groups, kernelHeight, kernelWidth)`.
///   - gradInput: `(batch, inChannels, height, width)`, overwritten.
///   - workspace: at least `conv2dWorkspaceCount(shape)` floats.
public func conv2dBackwardInput(
    _ shape: Conv2dShape,
    gradOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>, workspace: UnsafeMutableBufferPointer<Float>,
    sparseGradient: Bool? = nil
) {
    let s = shape
    let chunks = checkWorkspace(s, workspace)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let columnsCount = s.inChannels * s.kernelHeight * s.kernelWidth * plane
    let workspaceBase = workspace.baseAddress!
    if sparseGradient ?? conv2dGradientIsSparse(s, gradOutput: gradOutput) {
        padKernelRows(s, weight: weight, padded: workspaceBase)
        forEachBatchChunk(s.batch, chunks: chunks) { _, samples in
            conv2dBackwardInputSparse(s, samples: samples, gradOutput: gradOutput,
                                      paddedWeight: workspaceBase, gradInput: gradInput)
        }
        return
    }
    forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
        let columnBuffer = workspaceBase + chunk * columnsCount
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

/// The gradients with respect to the weight and the bias, summed over the batch.
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
public func conv2dBackwardWeight(
    _ shape: Conv2dShape,
    input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
    gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?,
    workspace: UnsafeMutableBufferPointer<Float>,
    sparseGradient: Bool? = nil
) {
    let s = shape
    let chunks = checkWorkspace(s, workspace)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let columnsCount = s.inChannels * s.kernelHeight * s.kernelWidth * plane
    let weightCount = s.outChannels * patch
    let workspaceBase = workspace.baseAddress!
    let partialBase = workspaceBase + chunks * columnsCount
    // Chunk 0 writes straight into the outputs; chunk c > 0 into partial c - 1.
    func partialWeight(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        chunk == 0 ? gradWeight : partialBase + (chunk - 1) * (weightCount + s.outChannels)
    }
    func partialBias(_ chunk: Int) -> UnsafeMutablePointer<Float>? {
        guard let gradBias else { return nil }
        return chunk == 0 ? gradBias : partialWeight(chunk) + weightCount
    }
    if sparseGradient ?? conv2dGradientIsSparse(s, gradOutput: gradOutput) {
        let padded = paddedWeightCount(s)
        let partial = { (chunk: Int) in workspaceBase + padded + chunk * (padded + s.outChannels) }
        forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
            conv2dBackwardWeightSparse(s, samples: samples, input: input, gradOutput: gradOutput,
                                       paddedGradWeight: partial(chunk),
                                       gradBias: gradBias == nil ? nil : partial(chunk) + padded)
        }
        // Fixed-order reduction of the partials, dropping the padding lanes.
        let kW = s.kernelWidth
        for row in 0..<(padded / 8) {
            for kw in 0..<kW {
                var sum = partial(0)[row * 8 + kw]
                for chunk in 1..<max(chunks, 1) { sum += partial(chunk)[row * 8 + kw] }
                gradWeight[row * kW + kw] = sum
            }
        }
        if let gradBias {
            for o in 0..<s.outChannels {
                var sum = partial(0)[padded + o]
                for chunk in 1..<max(chunks, 1) { sum += partial(chunk)[padded + o] }
                gradBias[o] = sum
            }
        }
        return
    }
    forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
        let columnBuffer = workspaceBase + chunk * columnsCount
        let weightSum = partialWeight(chunk)
        let biasSum = partialBias(chunk)
        if usesDirectBackwardWeight(s) {
            conv2dBackwardWeightDirect(s, samples: samples, input: input, gradOutput: gradOutput,
                                       gradWeight: weightSum, gradBias: biasSum)
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
