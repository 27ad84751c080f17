import CCPU

// MARK: - Which kernel computes a conv2d pass

/// The three ways the conv2d kernels compute a pass.
public enum Conv2dAlgorithm: Sendable, Hashable {
    /// Reading the input where it is, sums held in registers (`Conv2dDirect.swift`).
    case direct
    /// Visiting only the nonzero output gradients (`Conv2dSparse.swift`); backward only.
    case sparse
    /// im2col (col2im for the input gradient), then one sgemm per sample and group
    /// (`Conv2d.swift`): every shape.
    case im2colGEMM
}

/// The setup the three conv2d kernels (`conv2dForward`, `conv2dBackwardInput`,
/// `conv2dBackwardWeight`) share: which algorithm computes each pass (`choose`), how many
/// batch chunks a call runs in parallel, and where each chunk's scratch lies in the
/// workspace (`conv2dWorkspaceCount` floats, sized by `workspaceCount`).
public struct Conv2dPlan {
    /// A pass of a convolution, each computed by its own kernel.
    public enum Pass: Sendable, Hashable { case forward, backwardInput, backwardWeight }

    /// The algorithm that computes `pass` of `shape`, the one place the kernels decide it:
    ///
    /// | pass             | `.sparse` when                                  | `.direct` when                          | else          |
    /// |------------------|-------------------------------------------------|-----------------------------------------|---------------|
    /// | forward          | never                                           | unstrided, output ≥ 8 wide              | `.im2colGEMM` |
    /// | backward input   | `sparseGradient` and `allowsSparseGradient`     | never                                   | `.im2colGEMM` |
    /// | backward weight  | `sparseGradient` and `allowsSparseGradient`     | forward is direct, ≤ 32 taps per output | `.im2colGEMM` |
    ///
    /// "Unstrided": no groups, padding, stride or dilation. Behind a max-pool the backward
    /// passes may skip this choice: `conv2dPooledGradientIsSparse` sends them to the sparse
    /// kernels through the pool's argmax (`conv2dMaxPool2dBackward`). Measured on LeNet
    /// (`mnist-bench --ops`, 2 threads, batch 64): the direct forward takes conv1 in 0.44 ms
    /// against 0.64 through im2col + GEMM (its 25 taps are too short a K for BLAS) and conv2
    /// in 1.27 ms against 2.07 (no 25× larger im2col matrix to write, no packing). The direct
    /// weight gradient only wins while the GEMM's K (`inChannels·kH·kW` taps) is short: with
    /// more than 32 taps, im2col + GEMM does better.
    ///
    /// - Parameter sparseGradient: whether the output gradient is sparse enough for the
    ///   sparse path (`conv2dGradientIsSparse`, decided from the whole batch); ignored for
    ///   the forward pass and for shapes the sparse kernels do not take.
    public static func choose(_ shape: Conv2dShape, pass: Pass = .forward, sparseGradient: Bool = false)
        -> Conv2dAlgorithm
    {
        switch pass {
        case .forward:
            return usesDirectForward(shape) ? .direct : .im2colGEMM
        case .backwardInput:
            if sparseGradient && allowsSparseGradient(shape) { return .sparse }
            return usesDirectBackwardInput(shape) ? .direct : .im2colGEMM
        case .backwardWeight:
            if sparseGradient && allowsSparseGradient(shape) { return .sparse }
            return usesDirectForward(shape) ? .direct : .im2colGEMM
        }
    }

    /// How a direct forward pass is computed (`directForwardKernel`).
    public enum ForwardKernel: Sendable, Hashable {
        /// Five output channels × two 8-pixel chunks in registers, the output stored
        /// (`directConvolveSample`), then pooled if a pool follows.
        case fiveChannels
        /// The same with each chunk paired with the one below it, a 2×2 pool taken on the
        /// sums in registers, the output never stored (`directConvolvePoolSample`).
        case fiveChannelsPooledInRegisters
        /// Output channels across the lanes, a channels-last tile (`Conv2dChannelLanes.swift`).
        case channelLanes
        /// Under a 2×2 pool, 24 output channels across three vectors × one window's four
        /// pixels, pooled on the sums in registers (`ChannelLaneBlock.pooled`).
        case channelLanesPooledInRegisters
        /// Under a 2×2 pool, one or two input channels: sixteen pool windows across the
        /// lanes, a window's four positions in four vectors (`Conv2dWindowLanes.swift`, AVX-512).
        case windowLanes
    }

    /// Whether this build has `.windowLanes` (16-lane builds, `MNIST_ISA_AVX512`).
    public static let windowLanesAvailable: Bool = {
        #if MNIST_ISA_AVX512
        return true
        #else
        return false
        #endif
    }()

    /// The kernel of the direct forward pass of `shape`, followed by `pool` when given
    /// (`conv2dMaxPool2dForward`); nil when the pass is not direct.
    public static func directForwardKernel(_ shape: Conv2dShape, pool: Pool2dShape? = nil) -> ForwardKernel? {
        guard choose(shape) == .direct else { return nil }
        #if MNIST_ISA_AVX512
        if let pool, WindowLanes.applies(shape, pool: pool) { return .windowLanes }
        #endif
        if let pool, ChannelLaneBlock.pooled(shape, pool: pool) != nil { return .channelLanesPooledInRegisters }
        if let pool, poolsInRegisters(shape, pool: pool) { return .fiveChannelsPooledInRegisters }
        return ChannelLaneBlock.of(shape) == nil ? .fiveChannels : .channelLanes
    }

    /// Set (task-local) to compute every direct forward pass by `.fiveChannels`, its output
    /// stored and then pooled, as before the channel-lane and in-register-pool kernels
    /// (d788162, 5df8420): `mnist-bench --ops --config FILE` times a convolution both ways
    /// with it, side by side in one process (the evidence for `ChannelLaneBlock.of` and
    /// `poolsInRegisters`; `ChannelLaneBlock.pooled`'s own evidence is against the
    /// five-channel kernel pooling in registers, a build of 1c6c5a6). A workspace must be
    /// sized under the same setting.
    @TaskLocal public static var fiveChannelForwardOnly = false

    /// Whether evaluation passes under a 2×2 pool (no argmax) are computed by Winograd
    /// F(2×2, 3×3) or F(2×2, 5×5) where it applies (`WinogradPool.applies`), or else by the
    /// direct kernels, bit for bit as training's forward pass. Set (task-local) to choose;
    /// a workspace must be sized under the same setting. `mnist-bench --ops --config FILE`
    /// times both (the "eval" row and a "direct" or "Winograd" one).
    ///
    /// By default, Winograd where it pays (`winogradPays`).
    @TaskLocal public static var winogradEvaluation = winogradPays

    /// Whether Winograd's evaluation beats the direct kernels on this CPU, as measured:
    /// Winograd's kernels are 8-lane, and take 2.25× (3×3) and 2.8× (5×5) fewer
    /// multiply-adds than the direct ones. In an AVX2 build, or an AVX-512 one on a CPU that
    /// runs 512-bit vectors as two 256-bit halves (AMD's Zen 4: `cpu_splits_512_bit_vectors`),
    /// the direct kernels' 16 lanes are no faster than 8, and Winograd wins (Zen 3 and Zen 4,
    /// `Conv2dWinograd.swift`). Where 512 bits run at once (Intel's AVX-512 cores, Zen 5)
    /// the direct kernels double their rate and win: on a 2-core Emerald Rapids Xeon,
    /// `mnist-bench --ops --config FILE --threads 1` (one process times both), LeNet's conv2
    /// 1.34–2.01 ms direct against 1.96–2.83 by Winograd (three runs; 0.91 against 1.22–1.49
    /// at 2 threads), `configs/speedrun.json`'s 0.85 against 1.36, the published speedrun
    /// net's 3.28 against 3.49; LeNet's whole evaluation (`mnist-bench --steps 5 --json`,
    /// eight alternating pairs) 0.47 s against 0.59 at 1 thread, 0.24 against 0.30 at 2.
    /// Fixed for the process: the same machine always evaluates the same way.
    public static let winogradPays: Bool = {
        #if MNIST_ISA_AVX512
        return cpu_splits_512_bit_vectors() != 0
        #else
        return true
        #endif
    }()

    /// Whether `conv2dMaxPool2dForward` computes an evaluation pass (no argmax) of `shape`
    /// under `pool` by Winograd (`WinogradPool.applies`).
    public static func evaluatesByWinograd(_ shape: Conv2dShape, pool: Pool2dShape) -> Bool {
        WinogradPool.applies(shape, pool: pool)
    }

    /// Unstrided, and an output plane `forwardLayout` can cut: rows at least 8 wide, or a
    /// wide plane (at least 32 taps).
    static func usesDirectForward(_ s: Conv2dShape) -> Bool {
        isUnstrided(s)
            && DirectLayout.fits(outHeight: s.outHeight, outWidth: s.outWidth, inputWidth: s.width,
                                 wideWorthIt: s.groupPatchSize >= 32)
    }

    /// Unstrided, an input plane `backwardInputLayout` can cut, and one the transposed
    /// convolution covers with at most 25% more multiply-adds than the forward pass (it
    /// multiplies the zero padding too: 17% for a 3×3 kernel on 26×26, but 56% on 10×10,
    /// where im2col + GEMM wins).
    static func usesDirectBackwardInput(_ s: Conv2dShape) -> Bool {
        isUnstrided(s) && s.height * s.width * 4 <= s.outPlane * 5
            && DirectLayout.fits(outHeight: s.height, outWidth: s.width, inputWidth: transposedPaddedSize(s).width,
                                 wideWorthIt: s.outChannels * s.kernelHeight * s.kernelWidth >= 32)
    }

    /// Whether the backward passes of `shape` may take the sparse path (when the gradient
    /// is sparse): unstrided, a kernel at most 8 wide (a kernel row is one 8-lane vector),
    /// and a weight gradient not computed directly (which beats both).
    ///
    /// Behind ReLU and a 2×2 max-pool at most a quarter of a convolution's output gradient is
    /// nonzero (about 13% for LeNet's conv2 in training), and a GEMM multiplies all the zeros.
    public static func allowsSparseGradient(_ shape: Conv2dShape) -> Bool {
        isUnstrided(shape) && shape.kernelWidth <= 8 && !usesDirectBackwardWeight(shape)
    }

    /// Whether the backward passes of `shape` may read the gradient a max-pool of its output
    /// passed back through the pool's argmax (`conv2dPooledGradientIsSparse`): the sparse
    /// kernels' shapes, including those whose dense weight gradient is computed directly,
    /// because the dense gradient is not written then. On LeNet's conv1 (batch 64, 2 threads,
    /// Zen 3; a build of 736444c's that timed both in `mnist-bench --ops`) the pooled weight
    /// gradient took 0.47–0.51 ms against 0.35–0.58 for the direct kernel plus 0.16 for the
    /// scatter before it: no slower, and one path for every convolution behind a 2×2 pool.
    public static func allowsPooledGradient(_ shape: Conv2dShape) -> Bool {
        isUnstrided(shape) && shape.kernelWidth <= 8
    }

    /// No groups, padding, stride or dilation: what the direct and sparse kernels assume.
    static func isUnstrided(_ s: Conv2dShape) -> Bool {
        s.groups == 1 && s.strideH == 1 && s.strideW == 1 && s.padH == 0 && s.padW == 0
            && s.dilationH == 1 && s.dilationW == 1
    }

    /// The dense weight gradient of a direct shape with at most 32 taps per output and
    /// output rows at least 8 wide (its 8-wide chunks stay within a row) is
    /// `conv2dBackwardWeightDirect`'s (which beats the sparse path); more taps, or a
    /// narrower output cut wide, go through `conv2dBackwardWeightBlocked`.
    static func usesDirectBackwardWeight(_ s: Conv2dShape) -> Bool {
        choose(s) == .direct && s.groupPatchSize <= 32 && s.outWidth >= 8
    }

    // MARK: - Chunks and workspace

    let shape: Conv2dShape
    /// Contiguous batch chunks a call splits its samples into, one per thread: each runs its
    /// own im2col and single-threaded sgemms (OpenBLAS always runs single-threaded, see
    /// `Parallelism`).
    let chunks: Int
    let workspace: UnsafeMutablePointer<Float>
    /// Floats each chunk has for its caller after the passes' workspace (`extra(_:)`).
    let extraPerChunk: Int
    /// Floats of each chunk's `forwardScratch` (`directForwardScratchCount`), and of the
    /// passes' workspace before the callers' extras (`workspaceCount(_:chunks:)`): read at
    /// `init`, on the calling thread, because both depend on the task-local
    /// `fiveChannelForwardOnly`, which the worker threads calling `forwardScratch` and
    /// `extra` do not see.
    let forwardScratchCount: Int, passesCount: Int

    /// Reads `Parallelism.threadCount` once and checks `workspace` against it. A workspace
    /// sized for fewer threads (the count changed since it was allocated) runs with as many
    /// chunks as it holds; one too small for a single chunk stops with a precondition
    /// failure naming both sizes. `extraPerChunk` floats per chunk follow the passes'
    /// workspace, for a caller's own per-thread buffer (`conv2dMaxPool2dForward`'s sample).
    init(_ shape: Conv2dShape, workspace: UnsafeMutableBufferPointer<Float>, extraPerChunk: Int = 0) {
        let chunks = Self.chunks(shape, workspace: workspace.count) {
            Self.workspaceCount(shape, chunks: $0, extraPerChunk: extraPerChunk)
        }
        self.shape = shape
        self.chunks = chunks
        self.workspace = workspace.baseAddress!
        self.extraPerChunk = extraPerChunk
        forwardScratchCount = directForwardScratchCount(shape)
        passesCount = Self.workspaceCount(shape, chunks: chunks)
    }

    /// The chunks a call on `shape` runs in: one per thread (`Parallelism.threadCount`,
    /// read once), fewer when `workspace` floats hold only `needed(chunks)` for fewer (the
    /// count changed since it was allocated); a precondition failure naming both sizes when
    /// it holds too little for one. Also the Winograd evaluation's (`WinogradPool`).
    static func chunks(_ shape: Conv2dShape, workspace: Int, needed: (_ chunks: Int) -> Int) -> Int {
        var chunks = chunkCount(shape.batch, threadCount: Parallelism.threadCount)
        while chunks > 1 && workspace < needed(chunks) { chunks -= 1 }
        precondition(
            workspace >= needed(chunks),
            "conv2d: workspace holds \(workspace) floats; \(needed(chunks)) needed for \(shape) at \(chunks) chunks")
        return chunks
    }

    /// Chunk `chunk`'s `extraPerChunk` floats, after every pass's workspace.
    func extra(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + passesCount + chunk * extraPerChunk
    }

    /// Floats of workspace a plan at `threadCount` threads needs with `extraPerChunk` floats
    /// per chunk for its caller: what `init` checks.
    static func workspaceCount(_ s: Conv2dShape, threadCount: Int, extraPerChunk: Int = 0) -> Int {
        workspaceCount(s, chunks: chunkCount(s.batch, threadCount: threadCount), extraPerChunk: extraPerChunk)
    }

    static func workspaceCount(_ s: Conv2dShape, chunks: Int, extraPerChunk: Int) -> Int {
        workspaceCount(s, chunks: chunks) + chunks * extraPerChunk
    }

    /// Chunks `Parallelism.forEachChunk` splits `count` items into (minimumPerChunk 1).
    static func chunkCount(_ count: Int, threadCount: Int) -> Int { max(1, min(threadCount, count)) }

    /// Floats of workspace every pass of `shape` fits in at `chunks` chunks: the largest of
    /// the three layouts below (each starts at the workspace's first float).
    static func workspaceCount(_ s: Conv2dShape, chunks: Int) -> Int {
        let columns = columnsCount(s)
        let partials = s.outChannels * s.groupPatchSize + s.outChannels
        // im2col matrices (every GEMM pass); the weight gradient's scratch and partial sums.
        let gemm = max(chunks * columns, chunks * weightScratchCount(s) + (chunks - 1) * partials)
        let sparse = allowsPooledGradient(s)
            ? sparseWeightCount(s) + chunks * (sparsePartialCount(s) + sparseScratchCount(s)) : 0
        var direct = 0
        if usesDirectForward(s) {
            direct = packedBlockedWeightCount(outChannels: s.outChannels, taps: s.groupPatchSize)
                + chunks * directForwardScratchCount(s)
        }
        if usesDirectBackwardInput(s) {
            let taps = s.outChannels * s.kernelHeight * s.kernelWidth
            direct = max(direct, packedBlockedWeightCount(outChannels: s.inChannels, taps: taps)
                + chunks * directBackwardInputScratchCount(s))
        }
        return max(gemm, sparse, direct)
    }

    /// Runs `body(chunk, samples)` over the batch split into `chunks` contiguous ranges, the
    /// same boundaries as `Parallelism.forEachChunk` (`batch * i / chunks`). The chunk count
    /// is the plan's, read once and checked against the workspace, so a thread-count change
    /// from elsewhere cannot desynchronise the two. Each chunk touches disjoint samples of
    /// the caller's buffers and its own part of the workspace.
    func forEachChunk(_ body: (_ chunk: Int, _ samples: Range<Int>) -> Void) {
        if chunks <= 1 {
            body(0, 0..<shape.batch)
            return
        }
        Parallelism.forEach(shape.batch, chunks: chunks, body)
    }

    /// Runs `body(chunk, samples)` on the plan's `chunks` threads, each taking the next
    /// `grain` samples until none are left (`Parallelism.forEachBlock`; the forward passes).
    func forEachSampleBlock(grain: Int, _ body: (_ chunk: Int, _ samples: Range<Int>) -> Void) {
        Parallelism.forEachBlock(shape.batch, chunks: chunks, grain: grain, body)
    }

    // im2col + GEMM (all passes): each chunk's im2col matrix, then a weight- and
    // bias-gradient partial sum for each chunk after the first (chunk 0 writes straight
    // into the outputs).

    /// Floats of one sample's im2col matrix `(inChannels·kH·kW, outH·outW)`.
    static func columnsCount(_ s: Conv2dShape) -> Int { s.inChannels * s.kernelHeight * s.kernelWidth * s.outPlane }
    var columnsCount: Int { Self.columnsCount(shape) }

    /// Floats of one chunk's scratch in the weight-gradient pass, before the partial sums:
    /// `conv2dBackwardWeightDirect`'s or `conv2dBackwardWeightBlocked`'s when one of them
    /// computes the pass, else an im2col matrix.
    static func weightScratchCount(_ s: Conv2dShape) -> Int {
        if usesDirectBackwardWeight(s) { return directBackwardWeightScratchCount(s) }
        return usesDirectForward(s) ? blockedBackwardWeightScratchCount(s) : columnsCount(s)
    }

    /// Chunk `chunk`'s im2col matrix.
    func columns(_ chunk: Int) -> UnsafeMutablePointer<Float> { workspace + chunk * columnsCount }

    /// The weight-gradient partial of chunk `chunk` ≥ 1 (im2col + GEMM and direct), followed
    /// by its bias-gradient partial: after every chunk's scratch (`weightScratchCount`).
    func weightPartial(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + chunks * Self.weightScratchCount(shape)
            + (chunk - 1) * (shape.outChannels * shape.groupPatchSize + shape.outChannels)
    }

    // Direct forward and input gradient: the weight packed by `packBlockedWeight` (or
    // `packTransposedWeight`), then each chunk's scratch.

    var packedWeight: UnsafeMutablePointer<Float> { workspace }

    /// Chunk `chunk`'s scratch for `conv2dForwardDirect`.
    func forwardScratch(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + packedBlockedWeightCount(outChannels: shape.outChannels, taps: shape.groupPatchSize)
            + chunk * forwardScratchCount
    }

    /// Chunk `chunk`'s scratch for `conv2dBackwardInputDirect`.
    func backwardInputScratch(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + packedBlockedWeightCount(outChannels: shape.inChannels,
                                             taps: shape.outChannels * shape.kernelHeight * shape.kernelWidth)
            + chunk * directBackwardInputScratchCount(shape)
    }

    /// Chunk `chunk`'s scratch for `conv2dBackwardWeightDirect`.
    func directBackwardWeightScratch(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + chunk * directBackwardWeightScratchCount(shape)
    }

    /// Chunk `chunk`'s scratch for `conv2dBackwardWeightBlocked`.
    func backwardWeightScratch(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + chunk * blockedBackwardWeightScratchCount(shape)
    }

    // Sparse (backward): the weight as the passes lay it out (`packSparseWeight`), then each chunk's
    // weight-gradient partial in the same layout followed by its bias-gradient partial, then
    // each chunk's scratch (`sparseScratchCount`). Every part starts on a whole vector and a
    // cache line, so that no two threads write one line (each writes its bias partial for
    // every sample).

    /// Floats of one chunk's partials: the weight gradient's `(outChannels, sparseRowLength)`,
    /// then the bias gradient's `outChannels`, rounded up to 16.
    static func sparsePartialCount(_ s: Conv2dShape) -> Int { sparseWeightCount(s) + (s.outChannels + 15) / 16 * 16 }

    var packedSparseWeight: UnsafeMutablePointer<Float> { workspace }

    /// Chunk `chunk`'s weight-gradient partial, `(outChannels, sparseRowLength)`.
    func sparsePartial(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + sparseWeightCount(shape) + chunk * Self.sparsePartialCount(shape)
    }

    /// Chunk `chunk`'s bias-gradient partial, `(outChannels)`.
    func sparseBiasPartial(_ chunk: Int) -> UnsafeMutablePointer<Float> { sparsePartial(chunk) + sparseWeightCount(shape) }

    /// Chunk `chunk`'s scratch (`sparseScratchCount`).
    func sparseScratch(_ chunk: Int) -> UnsafeMutablePointer<Float> {
        workspace + sparseWeightCount(shape) + chunks * Self.sparsePartialCount(shape) + chunk * sparseScratchCount(shape)
    }
}

