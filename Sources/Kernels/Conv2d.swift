import COpenBLAS
import Dispatch

// MARK: - Workspace

/// Floats of scratch memory the conv2d kernels need for `shape` at `threadCount` threads.
///
/// One size serves all three kernels (forward, backward-input, backward-weight): per chunk
/// of the batch, one im2col matrix or the weight gradient's staging area (several samples'
/// im2col matrices and output gradients side by side), whichever is larger, plus a private
/// weight- and bias-gradient partial sum for every chunk after the first. Allocate once
/// and reuse across steps; recompute it when the thread count changes (a kernel called
/// with too small a workspace stops with a precondition failure naming both sizes).
public func conv2dWorkspaceCount(_ shape: Conv2dShape, threadCount: Int = Parallelism.threadCount) -> Int {
    let chunks = chunkCount(shape.batch, threadCount: threadCount)
    let partials = shape.outChannels * shape.groupPatchSize + shape.outChannels
    return chunks * chunkScratchCount(shape) + (chunks - 1) * partials
}

/// Floats one sample's im2col matrix takes: `inChannels * kernelHeight * kernelWidth * outPlane`.
@inlinable
func columnsCount(_ s: Conv2dShape) -> Int { s.inChannels * s.kernelHeight * s.kernelWidth * s.outPlane }

/// How many samples the weight gradient puts side by side in one sgemm (their im2col
/// matrices and output gradients staged as one wide matrix), so that small planes still
/// give the sgemm a long inner dimension. Depends on the shape only.
@inlinable
func weightGradientSamplesPerGemm(_ s: Conv2dShape) -> Int {
    if isPointwise(s) { return 1 }
    let perSample = columnsCount(s) + s.outChannels * s.outPlane
    return max(1, min(s.batch, weightGradientStagingFloats / perSample))
}

/// Target size of the weight gradient's staging area, in floats (about half of L2).
@usableFromInline let weightGradientStagingFloats = 65_536

/// Scratch floats one chunk needs: the larger of one im2col matrix (forward, backward-input)
/// and the weight gradient's staging area.
@inlinable
func chunkScratchCount(_ s: Conv2dShape) -> Int {
    let samples = weightGradientSamplesPerGemm(s)
    return max(columnsCount(s), samples * (columnsCount(s) + s.outChannels * s.outPlane))
}

/// Chunks `Parallelism.forEachChunk` splits `count` items into (minimumPerChunk 1).
@inlinable
func chunkCount(_ count: Int, threadCount: Int) -> Int { max(1, min(threadCount, count)) }

/// Runs `body(chunk, samples)` over `0..<batch` split into `chunks` contiguous ranges, the
/// same boundaries as `Parallelism.forEachChunk` (`batch * i / chunks`). It takes the chunk
/// count from the caller, who read `Parallelism.threadCount` once and sized the workspace
/// with it, so a thread-count change from elsewhere cannot desynchronise the two.
/// With more than one chunk, OpenBLAS runs single-threaded inside them (our threads
/// already fill the cores) and gets the thread count back afterwards.
@inlinable
func forEachBatchChunk(
    _ batch: Int, chunks: Int, _ body: (_ chunk: Int, _ samples: Range<Int>) -> Void
) {
    if chunks <= 1 {
        body(0, 0..<batch)
        return
    }
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(Int32(Parallelism.threadCount)) }
    withoutActuallyEscaping(body) { escapable in
        // Each chunk touches disjoint samples of the caller's buffers and its own workspace.
        let shared = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            shared.value(i, (batch * i / chunks)..<(batch * (i + 1) / chunks))
        }
    }
}

/// Whether the im2col matrix of a sample is the sample itself (1×1 kernel, no stride,
/// no padding), so the copy can be skipped.
@inlinable
func isPointwise(_ s: Conv2dShape) -> Bool {
    s.kernelHeight == 1 && s.kernelWidth == 1 && s.strideH == 1 && s.strideW == 1
        && s.padH == 0 && s.padW == 0
}

/// How a conv2d kernel uses `Parallelism.threadCount` threads.
public enum Conv2dThreading: Sendable, Hashable {
    /// Split the batch into one contiguous chunk per thread; each thread runs its own
    /// im2col and single-threaded sgemms. The default: measured fastest for LeNet.
    case splitBatch
    /// One chunk; OpenBLAS threads each per-sample sgemm. Kept for measurement.
    case threadedBLAS
}

@inlinable
func checkWorkspace(
    _ s: Conv2dShape, _ workspace: UnsafeMutableBufferPointer<Float>, _ threading: Conv2dThreading
) -> Int {
    let threads = Parallelism.threadCount  // read once per kernel call
    let chunks = threading == .threadedBLAS ? 1 : chunkCount(s.batch, threadCount: threads)
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
    output: UnsafeMutablePointer<Float>, workspace: UnsafeMutableBufferPointer<Float>,
    threading: Conv2dThreading = .splitBatch
) {
    let s = shape
    let chunks = checkWorkspace(s, workspace, threading)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let scratchCount = chunkScratchCount(s)
    let workspaceBase = workspace.baseAddress!
    forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
        let columnBuffer = workspaceBase + chunk * scratchCount
        for n in samples {
            let sampleInput = input + n * inputSample
            let sampleOutput = output + n * s.outChannels * plane
            let columns: UnsafePointer<Float>
            if isPointwise(s) {
                columns = sampleInput
            } else {
                im2col(s, input: sampleInput, columns: columnBuffer)
                columns = UnsafePointer(columnBuffer)
            }
            for g in 0..<s.groups {
                sgemm(
                    m: groupOut, n: plane, k: patch,
                    a: weight + g * groupOut * patch,
                    b: columns + g * patch * plane,
                    c: sampleOutput + g * groupOut * plane)
            }
            if let bias {
                for o in 0..<s.outChannels {
                    let row = sampleOutput + o * plane
                    let value = bias[o]
                    for p in 0..<plane { row[p] += value }
                }
            }
        }
    }
}

// MARK: - Backward

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
    threading: Conv2dThreading = .splitBatch
) {
    let s = shape
    let chunks = checkWorkspace(s, workspace, threading)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let scratchCount = chunkScratchCount(s)
    let workspaceBase = workspace.baseAddress!
    forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
        let columnBuffer = workspaceBase + chunk * scratchCount
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
/// Each chunk of samples accumulates its own partial sums, a few samples per sgemm (their
/// im2col matrices staged side by side, see `weightGradientSamplesPerGemm`); the partials
/// are then added in chunk order. The result is bit-identical for a given
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
    threading: Conv2dThreading = .splitBatch
) {
    let s = shape
    let chunks = checkWorkspace(s, workspace, threading)
    let plane = s.outPlane, patch = s.groupPatchSize, groupOut = s.groupOutChannels
    let inputSample = s.inChannels * s.height * s.width
    let scratchCount = chunkScratchCount(s)
    let weightCount = s.outChannels * patch
    let workspaceBase = workspace.baseAddress!
    let partialBase = workspaceBase + chunks * scratchCount
    let samplesPerGemm = weightGradientSamplesPerGemm(s)
    // Chunk 0 writes straight into the outputs; chunk c > 0 into partial c - 1.
    func partialWeight(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        chunk == 0 ? gradWeight : partialBase + (chunk - 1) * (weightCount + s.outChannels)
    }
    func partialBias(_ chunk: Int) -> UnsafeMutablePointer<Float>? {
        guard let gradBias else { return nil }
        return chunk == 0 ? gradBias : partialWeight(chunk) + weightCount
    }
    forEachBatchChunk(s.batch, chunks: chunks) { chunk, samples in
        let scratch = workspaceBase + chunk * scratchCount
        let weightSum = partialWeight(chunk)
        let biasSum = partialBias(chunk)
        biasSum?.update(repeating: 0, count: s.outChannels)
        var first = samples.lowerBound
        while first < samples.upperBound {
            let count = min(samplesPerGemm, samples.upperBound - first)
            // gradOutput and columns as (outChannels, width) and (patch·groups, width)
            // matrices over `count` samples side by side.
            let width = count * plane
            let gradients: UnsafePointer<Float>, columns: UnsafePointer<Float>
            if count == 1 && isPointwise(s) {
                gradients = gradOutput + first * s.outChannels * plane
                columns = input + first * inputSample
            } else if count == 1 {
                gradients = gradOutput + first * s.outChannels * plane
                im2col(s, input: input + first * inputSample, columns: scratch)
                columns = UnsafePointer(scratch)
            } else {
                let stagedColumns = scratch
                let stagedGradients = scratch + count * columnsCount(s)
                for j in 0..<count {
                    let n = first + j
                    im2col(s, input: input + n * inputSample, columns: stagedColumns + j * plane, rowStride: width)
                    for o in 0..<s.outChannels {
                        (stagedGradients + o * width + j * plane)
                            .update(from: gradOutput + (n * s.outChannels + o) * plane, count: plane)
                    }
                }
                gradients = UnsafePointer(stagedGradients)
                columns = UnsafePointer(stagedColumns)
            }
            let beta: Float = first == samples.lowerBound ? 0 : 1
            for g in 0..<s.groups {
                // (groupOut, patch) += gradOutput_g (groupOut, width) · columns_gᵀ (width, patch)
                sgemm(
                    transposeB: true, m: groupOut, n: patch, k: width,
                    a: gradients + g * groupOut * width, lda: width,
                    b: columns + g * patch * width, ldb: width,
                    beta: beta,
                    c: weightSum + g * groupOut * patch)
            }
            if let biasSum {
                for o in 0..<s.outChannels {
                    let row = gradients + o * width
                    var sum: Float = 0
                    for p in 0..<width { sum += row[p] }
                    biasSum[o] += sum
                }
            }
            first += count
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
