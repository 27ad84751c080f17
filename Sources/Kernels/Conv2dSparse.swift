#if MNIST_ISA_AVX512
import CCompress
#endif

// MARK: - Gradients from a sparse output gradient (a convolution followed by ReLU + max-pool)

// The shapes computed here are those `Conv2dPlan.allowsSparseGradient` accepts when a dense
// gradient is sparse (`conv2dGradientIsSparse`), and those `allowsPooledGradient` accepts
// behind a max-pool (`conv2dPooledGradientIsSparse`). The sparse path visits only the
// nonzero gradients `g` at `(o, q)`, `q = (oh, ow)` an output pixel, and multiplies whole
// vectors (16 lanes with AVX-512, else 8) along a patch row: the `inChannels · kH · kW`
// taps of one pixel's window, or of one output channel's weights.
// - Weight gradient: `dW[o, :] += g · patch(q)`, from the sample's patches (im2col with a
//   pixel's taps contiguous), built a block of vectors at a time (`buildPatchBlock`).
// - Input gradient: each pixel's column `Σ_o g · weight[o, :]`, then its kernel rows added
//   into the input gradient under the pixel's window.
//
// The nonzeros come from a dense gradient (`SparseGradient.dense`, scanned) or straight from
// the max-pool that follows the convolution (`.pooled`: the pool's gradient and argmax,
// `conv2dMaxPool2dBackward`), which skips writing the dense gradient and
// scanning it again.
//
// Measured on LeNet's conv2 at batch 64 (AVX-512 Xeon, 1 thread, `mnist-bench --ops
// --config configs/lenet.json`, best of six runs alternating eee57e3 with 02362ff): both
// passes took 2.37 ms, against 4.19 for the previous kernels, which read the input and
// weight where they lie, one 8-lane fused multiply-add per kernel row (5 of its 8 lanes
// used) for every nonzero; at eee57e3 the input gradient 1.22 ms, the weight gradient 1.19.

/// The output gradient of a convolution that a max-pool of the output passed back: the
/// pool's gradient `(batch, outChannels, pool.outHeight, pool.outWidth)`, the argmax of its
/// forward pass (a flat index into the convolution's output plane), and, for a fused ReLU,
/// the pool's output (windows whose output is `<= 0` pass nothing, as in
/// `scatterMaxPoolGradient`). The dense gradient is what `maxPool2dBackward` would write.
public struct PooledGradient {
    public var pool: Pool2dShape
    public var gradient: UnsafePointer<Float>
    public var argmax: UnsafePointer<Int32>
    public var reluOutput: UnsafePointer<Float>?

    public init(pool: Pool2dShape, gradient: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
                reluOutput: UnsafePointer<Float>?) {
        self.pool = pool
        self.gradient = gradient
        self.argmax = argmax
        self.reluOutput = reluOutput
    }
}

/// Where the sparse kernels find a convolution's nonzero output gradients.
@usableFromInline
enum SparseGradient {
    /// `(batch, outChannels, outHeight, outWidth)`, mostly zeros.
    case dense(UnsafePointer<Float>)
    case pooled(PooledGradient)

    /// The most nonzeros one sample can have.
    @inlinable
    func sampleCapacity(_ s: Conv2dShape) -> Int {
        switch self {
        case .dense: return s.outChannels * s.outPlane
        case .pooled(let g): return s.outChannels * g.pool.outHeight * g.pool.outWidth
        }
    }

    /// Sample `n`'s nonzero gradients, channel by channel: channel `o`'s are
    /// `value[first[o] ..< first[o + 1]]` at output pixels `pixel[...]` (flat in the output
    /// plane), in pixel order (dense) or window order (pooled). `first` holds
    /// `outChannels + 1` entries, `pixel` and `value` `sampleCapacity(s)` each (Int32 counts:
    /// a sample's output has fewer than 2³¹ floats).
    @inlinable @inline(never)  // its own registers: inlined, its pointers were reloaded per element
    func channelNonzeros(
        _ s: Conv2dShape, sample n: Int,
        first: UnsafeMutablePointer<Int32>, pixel: UnsafeMutablePointer<Int32>, value: UnsafeMutablePointer<Float>
    ) {
        var count: Int32 = 0
        first[0] = 0
        switch self {
        case .dense(let gradOutput):
            let plane = s.outPlane
            for o in 0..<s.outChannels {
                count += appendNonzeros(gradOutput + (n * s.outChannels + o) * plane, indices: nil, keepWhere: nil,
                                        count: plane, value: value + Int(count), index: pixel + Int(count))
                first[o + 1] = count
            }
        case .pooled(let g):
            let windows = g.pool.outHeight * g.pool.outWidth
            for o in 0..<s.outChannels {
                let base = (n * s.outChannels + o) * windows
                count += appendNonzeros(g.gradient + base, indices: g.argmax + base,
                                        keepWhere: g.reluOutput.map { $0 + base }, count: windows,
                                        value: value + Int(count), index: pixel + Int(count))
                first[o + 1] = count
            }
        }
    }
}

/// One channel's part of `SparseGradient.channelNonzeros`: appends to `value` and `index`,
/// in order, the entries `w < count` whose `gradient[w]` is not zero (NaN kept) and, with
/// `keepWhere`, whose `keepWhere[w]` is not <= 0 (a ReLU'd pool's output; NaN kept): the
/// gradient and `indices[w]`, or `w` without `indices`. Returns how many it appended. With
/// AVX-512, sixteen at a time by the compress instructions (`compress_nonzeros`,
/// `Sources/CCompress`: only `value[0 ..< returned]` and `index[...]` written); else one at
/// a time, each entry written and kept when it counts (no branch to mispredict: one entry
/// past the kept ones is written, within the sample's capacity).
@inlinable @inline(__always)
func appendNonzeros(
    _ gradient: UnsafePointer<Float>, indices: UnsafePointer<Int32>?, keepWhere: UnsafePointer<Float>?, count: Int,
    value: UnsafeMutablePointer<Float>, index: UnsafeMutablePointer<Int32>
) -> Int32 {
    #if MNIST_ISA_AVX512
    return compress_nonzeros(gradient, indices, keepWhere, Int32(count), value, index)
    #else
    var kept: Int32 = 0
    switch (indices, keepWhere) {
    case (let indices?, let keep?):
        for w in 0..<count {
            value[Int(kept)] = gradient[w]
            index[Int(kept)] = indices[w]
            kept &+= (gradient[w] != 0 ? 1 : 0) & (keep[w] <= 0 ? 0 : 1)  // `&`, not `&&`: no branch
        }
    case (let indices?, nil):
        for w in 0..<count {
            value[Int(kept)] = gradient[w]
            index[Int(kept)] = indices[w]
            kept &+= gradient[w] != 0 ? 1 : 0
        }
    case (nil, let keep):
        for w in 0..<count {
            value[Int(kept)] = gradient[w]
            index[Int(kept)] = Int32(truncatingIfNeeded: w)
            kept &+= (gradient[w] != 0 ? 1 : 0) & (keep.map { $0[w] <= 0 ? 0 : 1 } ?? 1)
        }
    }
    return kept
    #endif
}

/// Whether `gradOutput` is sparse enough for the sparse path to win: at most a fifth of it
/// nonzero. Measured on LeNet's conv2 at batch 64 and 12.5% nonzero (`mnist-bench --ops`):
/// 1.0 ms (input) and 1.4 ms (weight) against 1.9 and 2.0 ms through im2col + GEMM, so
/// the break-even lies near a quarter. Decided from the whole batch, so the choice does not
/// depend on the thread count; `conv2dBackwardInput` and `conv2dBackwardWeight` decide it
/// themselves unless given it (the caller of both scans the gradient once).
public func conv2dGradientIsSparse(_ s: Conv2dShape, gradOutput: UnsafePointer<Float>) -> Bool {
    guard Conv2dPlan.allowsSparseGradient(s) else { return false }
    let count = s.batch * s.outChannels * s.outPlane
    return nonzeroCount(gradOutput, count: count) * 5 <= count
}

/// Nonzero floats of `p[0 ..< count]` (`nonzeroCount(_:minimumVectorsPerChunk:vector:element:)`).
func nonzeroCount(_ p: UnsafePointer<Float>, count: Int) -> Int {
    nonzeroCount(count, minimumVectorsPerChunk: 4096, vector: { load8(p + 8 * $0) }, element: { p[$0] })
}

/// Nonzeros among `count` floats, the `v`-th eight given by `vector(v)` and the tail's by
/// `element(i)` (which may also write them: `linearReluGradient`), counted in parallel
/// ranges of whole vectors (an integer sum: the same at any thread count), then the tail.
@inlinable @inline(__always)
func nonzeroCount(
    _ count: Int, minimumVectorsPerChunk: Int, vector: (_ v: Int) -> SIMD8<Float>, element: (_ i: Int) -> Float
) -> Int {
    let vectors = count / 8
    // One count per chunk, on the stack (this runs on every sparse-eligible backward pass).
    var total = withUnsafeTemporaryAllocation(of: Int.self, capacity: Parallelism.threadCount) { counts in
        counts.initialize(repeating: 0)
        let c = UncheckedSendable(counts.baseAddress!)
        Parallelism.forEachChunk(vectors, minimumPerChunk: minimumVectorsPerChunk) { chunk, range in
            var nonzero = SIMD8<Int32>()
            for v in range {
                nonzero &-= unsafeBitCast(vector(v) .!= 0, to: SIMD8<Int32>.self)  // true is -1
            }
            c.value[chunk] = Int(nonzero.wrappedSum())
        }
        return counts.reduce(0, +)
    }
    for i in (8 * vectors)..<count where element(i) != 0 { total += 1 }
    return total
}

/// `conv2dGradientIsSparse` for the gradient a max-pool passed back, decided from the
/// shapes alone (nothing to scan): `Conv2dPlan.allowsPooledGradient`'s convolutions, behind
/// a pool whose strides cover at least 4 pixels (a 2×2 step: at most a quarter of the
/// output has a gradient; behind ReLU about half of that in training).
public func conv2dPooledGradientIsSparse(_ s: Conv2dShape, pool: Pool2dShape) -> Bool {
    Conv2dPlan.allowsPooledGradient(s) && pool.strideH * pool.strideW >= 4
}

/// `Σ p[0 ..< count]`, in eight interleaved sums (a chain of scalar adds waited on each
/// add's latency: LeNet's conv1 sums about 1,400 nonzeros per sample), then those added
/// pairwise, then the tail.
@inlinable
func sumFloats(_ p: UnsafePointer<Float>, count: Int) -> Float {
    var sums = SIMD8<Float>(), i = 0
    while i + 8 <= count {
        sums += load8(p + i)
        i += 8
    }
    var total = ((sums[0] + sums[4]) + (sums[2] + sums[6])) + ((sums[1] + sums[5]) + (sums[3] + sums[7]))
    while i < count {
        total += p[i]
        i += 1
    }
    return total
}

/// `p[0..<8] += v`, or only the part of it before `end`.
@inlinable @inline(__always)
func add8(_ v: SIMD8<Float>, to p: UnsafeMutablePointer<Float>, before end: UnsafeMutablePointer<Float>) {
    if p + 8 <= end {
        store8(load8(p) + v, p)
    } else {
        for lane in 0..<max(0, min(8, end - p)) { p[lane] += v[lane] }
    }
}

/// One sample's nonzeros (`SparseGradient.channelNonzeros`' lists, `first`, `pixel` and
/// `value`) grouped by output pixel: pixel `q`'s are `channel[start[q] ..< start[q + 1]]`
/// and `byPixel[...]`, in channel order (then list order). `start` holds `plane + 1` entries.
@inlinable
func nonzerosByPixel(
    channels: Int, plane: Int,
    first: UnsafePointer<Int32>, pixel: UnsafePointer<Int32>, value: UnsafePointer<Float>,
    start: UnsafeMutablePointer<Int32>, channel: UnsafeMutablePointer<Int32>, byPixel: UnsafeMutablePointer<Float>
) {
    let count = Int(first[channels])
    start.update(repeating: 0, count: plane + 1)
    for e in 0..<count { start[Int(pixel[e]) + 1] += 1 }
    for q in 0..<plane { start[q + 1] += start[q] }
    // Fill with a running cursor per pixel (start[q] moves to start[q + 1], then restored).
    for o in 0..<channels {
        for e in Int(first[o])..<Int(first[o + 1]) {
            let q = Int(pixel[e]), slot = Int(start[q])
            channel[slot] = Int32(truncatingIfNeeded: o)
            byPixel[slot] = value[e]
            start[q] += 1
        }
    }
    for q in stride(from: plane, to: 0, by: -1) { start[q] = start[q - 1] }
    start[0] = 0
}

/// The vector the sparse kernels multiply in: one register of the widest kind the build has
/// (16 lanes with AVX-512, else 8).
#if MNIST_ISA_AVX512
@usableFromInline typealias PatchVector = SIMD16<Float>
#else
@usableFromInline typealias PatchVector = SIMD8<Float>
#endif

@inlinable @inline(__always)
func loadPatchVector(_ p: UnsafePointer<Float>) -> PatchVector {
    UnsafeRawPointer(p).loadUnaligned(as: PatchVector.self)
}

@inlinable @inline(__always)
func storePatchVector(_ v: PatchVector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: PatchVector.self)
}

/// Floats of one patch row: a sample's `inChannels · kH · kW` taps under one output pixel
/// (or one output channel's weights), rounded up to whole vectors (the lanes past the taps:
/// zeros in the packed weight, junk in the weight gradient's partials). Long rows take an
/// odd number of vectors: at a power-of-two stride (LeNet's conv2: 512 floats) every row's
/// block fell into the same few sets of the L1 cache.
@inlinable
func patchStride(_ s: Conv2dShape) -> Int {
    let lanes = PatchVector.scalarCount
    let vectors = (s.inChannels * s.kernelHeight * s.kernelWidth + lanes - 1) / lanes
    return (vectors >= 8 && vectors % 2 == 0 ? vectors + 1 : vectors) * lanes
}

/// Whether the sparse passes of `s` multiply along patch rows (`addSparseInputGradient`,
/// `addSparseWeightGradient`), or by kernel rows, one 8-lane vector each read where it lies
/// (`...ByRows`): patches for kernels of at least 256 taps, with 16-lane vectors. Building
/// a sample's patches costs a copy per kernel row and output pixel, which many taps per
/// nonzero in few wide vectors repay: LeNet's conv2 (500 taps) took 2.37 ms against 4.19 by
/// rows (`mnist-bench --ops`, 1 thread, AVX-512, eee57e3 against 02362ff). On patches at
/// eee57e3, the published net's conv2 (216 taps, 3 wide) trained slower (10,700 samples/s
/// against 12,500 at 1 thread, best of four 200-step runs; most of the difference in
/// building the patches, in `perf`), LeNet's conv1 weight gradient took 0.83 ms against
/// 0.73, and LeNet's conv2 with 8-lane vectors 5.13 ms against 4.81 (haswell builds).
@inlinable
func sparseUsesPatches(_ s: Conv2dShape) -> Bool {
    PatchVector.scalarCount == 16 && s.inChannels * s.kernelHeight * s.kernelWidth >= 256
}

/// Floats of one weight-shaped row of the sparse passes: a patch row (`patchStride`), or
/// the kernel rows padded to 8 floats (`inChannels · kH · 8`).
@inlinable
func sparseRowLength(_ s: Conv2dShape) -> Int {
    sparseUsesPatches(s) ? patchStride(s) : s.inChannels * s.kernelHeight * 8
}

/// Floats of the weight as the sparse passes lay it out, `(outChannels, sparseRowLength)`:
/// the input gradient's operand (`packSparseWeight`), and the shape of each chunk's
/// weight-gradient partial.
@inlinable
func sparseWeightCount(_ s: Conv2dShape) -> Int { s.outChannels * sparseRowLength(s) }

/// `weight` laid out for the sparse passes: `packPatchWeight` or `padKernelRows`.
@inlinable
func packSparseWeight(_ s: Conv2dShape, weight: UnsafePointer<Float>, packed: UnsafeMutablePointer<Float>) {
    if sparseUsesPatches(s) {
        packPatchWeight(s, weight: weight, packed: packed)
    } else {
        padKernelRows(s, weight: weight, padded: packed)
    }
}

/// Floats of one chunk's scratch in the sparse passes. On patches: one sample's columns
/// `(outPlane, patchStride)` (`addSparseInputGradient`), or its patches a block at a time
/// (`addSparseWeightGradient`, less); 16 more that 8-lane loads of the last row may reach;
/// then the input gradient with padded rows (`paddedInputWidth`). By kernel rows: a copy of
/// the batch's last sample followed by the zeros its 8-lane loads may reach.
@inlinable
func sparseScratchCount(_ s: Conv2dShape) -> Int {
    guard sparseUsesPatches(s) else { return (s.inChannels * s.height * s.width + 8 + 15) / 16 * 16 }
    return s.outPlane * patchStride(s) + 16 + s.inChannels * s.height * paddedInputWidth(s)
}

/// The row width of the sparse input gradient's scratch, `(inChannels, height,
/// paddedInputWidth)`: room for an 8-lane add at every window's column (no bound to check),
/// rounded up to 16 floats so that rows start on cache lines (LeNet's conv2: 16, and no add
/// crosses a line).
@inlinable
func paddedInputWidth(_ s: Conv2dShape) -> Int { (s.width - s.kernelWidth + 8 + 15) / 16 * 16 }

/// Copies `weight` `(outChannels, taps)` into patch rows `(outChannels, patchStride)`, zero
/// past the taps; the channels split over the threads (LeNet's conv2: 100 KB a step).
@inlinable
func packPatchWeight(_ s: Conv2dShape, weight: UnsafePointer<Float>, packed: UnsafeMutablePointer<Float>) {
    let taps = s.inChannels * s.kernelHeight * s.kernelWidth, stride = patchStride(s)
    Parallelism.forEachRange(s.outChannels, minimumPerChunk: max(1, weightPackingGrain / stride)) { channels in
        for o in channels {
            (packed + o * stride).update(from: weight + o * taps, count: taps)
            (packed + o * stride + taps).update(repeating: 0, count: stride - taps)
        }
    }
}

/// Offsets of the kernel rows `(c, kh)`, in order, from a pixel of a sample's input:
/// `c · height · width + kh · width`.
@inlinable
func kernelRowOffsets(_ s: Conv2dShape) -> [Int] {
    (0..<s.inChannels).flatMap { c in (0..<s.kernelHeight).map { kh in (c * s.height + kh) * s.width } }
}

/// Counts fixed at compile time, one register per unit: the vectors of `addScaledRows`'
/// blocks of sums (1, 2, 4, 8) and the kernel rows of `addShortRowBlock` (1 to 7).
@usableFromInline protocol FixedCount { static var count: Int { get } }
@usableFromInline enum Count1: FixedCount { @inlinable static var count: Int { 1 } }
@usableFromInline enum Count2: FixedCount { @inlinable static var count: Int { 2 } }
@usableFromInline enum Count3: FixedCount { @inlinable static var count: Int { 3 } }
@usableFromInline enum Count4: FixedCount { @inlinable static var count: Int { 4 } }
@usableFromInline enum Count5: FixedCount { @inlinable static var count: Int { 5 } }
@usableFromInline enum Count6: FixedCount { @inlinable static var count: Int { 6 } }
@usableFromInline enum Count7: FixedCount { @inlinable static var count: Int { 7 } }
@usableFromInline enum Count8: FixedCount { @inlinable static var count: Int { 8 } }

/// `sums[0 ..< B.count · L] (+)= Σ_e scale[e] · rows[row[e] · rowStride ..< + B.count · L]`
/// over `entries`, L lanes per vector: the sums start at zero (`fromZero`) or at what `sums`
/// holds, and each lane is one chain of fused multiply-adds in entry order.
@inlinable @inline(__always)
func addScaledRows<B: FixedCount>(
    _: B.Type, sums: UnsafeMutablePointer<Float>, fromZero: Bool, entries: Range<Int>,
    scale: UnsafePointer<Float>, row: UnsafePointer<Int32>, rows: UnsafePointer<Float>, rowStride: Int
) {
    let l = PatchVector.scalarCount
    @inline(__always) func start(_ k: Int) -> PatchVector {
        B.count > k && !fromZero ? loadPatchVector(sums + k * l) : PatchVector()
    }
    var a0 = start(0), a1 = start(1), a2 = start(2), a3 = start(3)
    var a4 = start(4), a5 = start(5), a6 = start(6), a7 = start(7)
    for e in entries {
        let g = PatchVector(repeating: scale[e]), r = rows + Int(row[e]) &* rowStride
        a0.addProduct(g, loadPatchVector(r))
        if B.count > 1 { a1.addProduct(g, loadPatchVector(r + l)) }
        if B.count > 2 { a2.addProduct(g, loadPatchVector(r + 2 * l)); a3.addProduct(g, loadPatchVector(r + 3 * l)) }
        if B.count > 4 {
            a4.addProduct(g, loadPatchVector(r + 4 * l)); a5.addProduct(g, loadPatchVector(r + 5 * l))
            a6.addProduct(g, loadPatchVector(r + 6 * l)); a7.addProduct(g, loadPatchVector(r + 7 * l))
        }
    }
    storePatchVector(a0, sums)
    if B.count > 1 { storePatchVector(a1, sums + l) }
    if B.count > 2 { storePatchVector(a2, sums + 2 * l); storePatchVector(a3, sums + 3 * l) }
    if B.count > 4 {
        storePatchVector(a4, sums + 4 * l); storePatchVector(a5, sums + 5 * l)
        storePatchVector(a6, sums + 6 * l); storePatchVector(a7, sums + 7 * l)
    }
}

/// Runs `body(blockVectors, firstVector)` over the vectors that hold a patch row's taps, in
/// blocks of eight, then one of four, two and one as needed (14 vectors: 8 + 4 + 2).
@inlinable @inline(__always)
func forEachPatchBlock(_ s: Conv2dShape, _ body: (_ blockVectors: Int, _ firstVector: Int) -> Void) {
    let lanes = PatchVector.scalarCount
    forEachVectorBlock((s.inChannels * s.kernelHeight * s.kernelWidth + lanes - 1) / lanes, body)
}

/// Runs `body(blockVectors, firstVector)` over `vectors` vectors in blocks of eight, then
/// one of four, two and one as needed: the block widths `addScaledRows` takes.
@inlinable @inline(__always)
func forEachVectorBlock(_ vectors: Int, _ body: (_ blockVectors: Int, _ firstVector: Int) -> Void) {
    var v = 0
    while v + 8 <= vectors {
        body(8, v)
        v += 8
    }
    for width in [4, 2, 1] where v + width <= vectors {
        body(width, v)
        v += width
    }
}

/// `addScaledRows` with the block width `forEachPatchBlock` chose.
@inlinable @inline(__always)
func addScaledRows(
    blockVectors: Int, sums: UnsafeMutablePointer<Float>, fromZero: Bool, entries: Range<Int>,
    scale: UnsafePointer<Float>, row: UnsafePointer<Int32>, rows: UnsafePointer<Float>, rowStride: Int
) {
    switch blockVectors {
    case 8:
        addScaledRows(Count8.self, sums: sums, fromZero: fromZero, entries: entries,
                      scale: scale, row: row, rows: rows, rowStride: rowStride)
    case 4:
        addScaledRows(Count4.self, sums: sums, fromZero: fromZero, entries: entries,
                      scale: scale, row: row, rows: rows, rowStride: rowStride)
    case 2:
        addScaledRows(Count2.self, sums: sums, fromZero: fromZero, entries: entries,
                      scale: scale, row: row, rows: rows, rowStride: rowStride)
    default:
        addScaledRows(Count1.self, sums: sums, fromZero: fromZero, entries: entries,
                      scale: scale, row: row, rows: rows, rowStride: rowStride)
    }
}

/// The input gradient and/or the weight and bias gradients of `samples` from the nonzeros
/// of `gradient` (see `Conv2dPlan.allowsSparseGradient` and `allowsPooledGradient`), sample
/// by sample: each sample's nonzeros are listed once for both, then multiplied along patch
/// rows or by kernel rows (`sparseUsesPatches`).
///
/// - Parameters:
///   - packedWeight: `(outChannels, sparseRowLength)`, the weight laid out by
///     `packSparseWeight`; with `gradInput`.
///   - gradInput: `(batch, inChannels, height, width)`; the samples' part is overwritten;
///     nil to skip the input gradient.
///   - input: `(batch, inChannels, height, width)`; with `gradWeight`.
///   - gradWeight: `(outChannels, sparseRowLength)`, written (not added) in `packedWeight`'s
///     layout; the lanes past the taps hold junk; nil to skip the weight gradient.
///   - gradBias: `(outChannels)`, written; nil to skip it.
///   - scratch: `sparseScratchCount(s)` floats; zeroed once per call, so that the lanes no
///     pass writes hold no stray NaNs or subnormals.
@inlinable
func conv2dBackwardSparse(
    _ s: Conv2dShape, samples: Range<Int>, gradient: SparseGradient,
    packedWeight: UnsafePointer<Float>?, gradInput: UnsafeMutablePointer<Float>?,
    input: UnsafePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?,
    scratch: UnsafeMutablePointer<Float>
) {
    let plane = s.outPlane, outW = s.outWidth, capacity = gradient.sampleCapacity(s), patches = sparseUsesPatches(s)
    let inputSample = s.inChannels * s.height * s.width
    // The kernel rows' offsets in a sample's input (`kernelRowOffsets`), then in the input
    // gradient's padded rows (`paddedInputWidth`, patches only).
    let rowOffsets = kernelRowOffsets(s), offsets = rowOffsets + rowOffsets.map { $0 / s.width * paddedInputWidth(s) }
    gradWeight?.update(repeating: 0, count: sparseWeightCount(s))
    scratch.update(repeating: 0, count: sparseScratchCount(s))
    // Summed below from each sample's nonzeros, in order.
    gradBias?.update(repeating: 0, count: s.outChannels)
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: s.outChannels + 2 + 2 * capacity + 3 * plane) { ints in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * capacity) { floats in
            // One sample's nonzeros of channel o: value and output pixel at first[o] ..< first[o + 1];
            // grouped by pixel for the input gradient (`start`, `channel`, `byPixel`). By
            // kernel rows: the pixels column by column and each pixel's window in the input.
            let first = ints.baseAddress!, pixel = first + s.outChannels + 1, channel = pixel + capacity
            let start = channel + capacity, columnMajor = start + plane + 1, inputOffset = columnMajor + plane
            let value = floats.baseAddress!, byPixel = value + capacity
            for q in 0..<plane {
                columnMajor[q] = Int32(truncatingIfNeeded: q % s.outHeight * outW + q / s.outHeight)
                inputOffset[q] = Int32(truncatingIfNeeded: q / outW * s.width + q % outW)
            }
            offsets.withUnsafeBufferPointer { offsets in
                let offsets = offsets.baseAddress!, paddedOffsets = offsets + rowOffsets.count
                for n in samples {
                    gradient.channelNonzeros(s, sample: n, first: first, pixel: pixel, value: value)
                    if let gradInput, let packedWeight {
                        nonzerosByPixel(channels: s.outChannels, plane: plane, first: first, pixel: pixel, value: value,
                                        start: start, channel: channel, byPixel: byPixel)
                        if patches {
                            addSparseInputGradient(
                                s, packedWeight: packedWeight, start: start, channel: channel,
                                value: byPixel, paddedOffsets: paddedOffsets, columns: scratch,
                                gradInput: gradInput + n * inputSample)
                        } else {
                            addSparseInputGradientByRows(
                                s, offsets: offsets, paddedWeight: packedWeight, start: start, channel: channel,
                                value: byPixel, columnMajor: columnMajor, inputOffset: inputOffset,
                                gradInput: gradInput + n * inputSample)
                        }
                    }
                    if let gradWeight, let input {
                        if let gradBias {
                            for o in 0..<s.outChannels {
                                gradBias[o] += sumFloats(value + Int(first[o]), count: Int(first[o + 1] - first[o]))
                            }
                        }
                        if patches {
                            addSparseWeightGradient(s, offsets: offsets, x: input + n * inputSample,
                                                    end: input + s.batch * inputSample, first: first, pixel: pixel,
                                                    value: value, blocks: scratch, gradWeight: gradWeight)
                            continue
                        }
                        for e in 0..<Int(first[s.outChannels]) { pixel[e] = inputOffset[Int(pixel[e])] }
                        // 8-lane loads reach up to 8 - kW floats past the sample's last row: the
                        // batch's last sample is read from a copy followed by zeros.
                        var x = input + n * inputSample
                        if n == s.batch - 1 {
                            copyFloats(x, scratch, inputSample)
                            x = UnsafePointer(scratch)
                        }
                        addSparseWeightGradientByRows(s, offsets: offsets, first: first, inputOffset: pixel, value: value,
                                                      input: x, paddedGradWeight: gradWeight)
                    }
                }
            }
        }
    }
}

/// One sample's input gradient, overwritten, from its nonzeros grouped by output pixel
/// (`nonzerosByPixel`: pixel `q`'s are `channel[start[q] ..< start[q + 1]]` and `value`).
///
/// For each block of vectors of the weight's patch rows (which then stays in the cache),
/// each pixel's column `Σ_o g[o] · weight[o, :]` is summed in registers (`addScaledRows`)
/// and stored into `columns`; then each column's kernel rows are added to the input gradient
/// under the pixel's window, one 8-lane add each (lanes past the kernel width add zero).
///
/// - Parameters:
///   - paddedOffsets: the kernel rows' offsets in the padded rows (`kernelRowOffsets(s)`
///     with rows `paddedInputWidth` wide).
///   - columns: `sparseScratchCount(s)` floats of scratch, `(outPlane, patchStride)`: the rows
///     of pixels with nonzeros are overwritten (the lanes past the taps with zeros).
///   - gradInput: `(inChannels, height, width)`, one sample's.
@inlinable
func addSparseInputGradient(
    _ s: Conv2dShape, packedWeight: UnsafePointer<Float>,
    start: UnsafePointer<Int32>, channel: UnsafePointer<Int32>, value: UnsafePointer<Float>,
    paddedOffsets: UnsafePointer<Int>, columns: UnsafeMutablePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    let kW = s.kernelWidth, rows = s.inChannels * s.kernelHeight, stride = patchStride(s)
    addScaledRowGroups(s, groups: s.outPlane, bounds: start, sums: columns, fromZero: true, scale: value, row: channel,
                       rows: packedWeight)
    // Added into rows `paddedInputWidth` wide, then copied out.
    let width = paddedInputWidth(s), padded = columns + s.outPlane * stride + 16
    padded.update(repeating: 0, count: s.inChannels * s.height * width)
    let kernelRow = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< Int32(kW)
    // Column by column: the adds of two pixels side by side share all but one float, and a
    // load that partly overlaps an earlier store still in flight waits for it; one pixel
    // below, a kernel row's add lands exactly where the row below it landed, which forwards.
    for i in 0..<s.outPlane {
        let oh = i % s.outHeight, ow = i / s.outHeight, p = oh * s.outWidth + ow
        guard start[p] < start[p + 1] else { continue }
        let origin = padded + (oh * width + ow), column = columns + p * stride
        for r in 0..<rows {
            let to = origin + paddedOffsets[r]
            store8(load8(to) + load8(column + r &* kW).replacing(with: 0, where: .!kernelRow), to)
        }
    }
    for row in 0..<(s.inChannels * s.height) {
        copyFloats(padded + row * width, gradInput + row * s.width, s.width)
    }
}

/// Adds one sample's part of the weight gradient to `gradWeight` `(outChannels,
/// patchStride)`: each output channel's sums plus its nonzeros (`value[first[o] ..<
/// first[o + 1]]`) times the patches of their pixels (`pixel[...]`), a block of vectors at
/// a time (`forEachPatchBlock`): the block's part of every pixel's patch is built
/// (`buildPatchBlock`), then every channel's sums of the block run over it (`addScaledRows`).
/// Built a block at a time, the patches stay in a 48 KB L1 cache (LeNet's conv2: 64 pixels ×
/// 144 floats, 37 KB; the Xeon's); a sample's whole patches (135 KB) were written to L2 and
/// read back. A 32 KB L1 (Zen 4) holds blocks of four vectors, which measured no faster there
/// (LeNet's conv2 weight gradient 1.35 ms against 1.30 with blocks of eight, `mnist-bench
/// --ops --config configs/lenet.json --threads 1`, five alternating pairs of one build of
/// bf8eceb whose block width an uncommitted environment switch chose).
///
/// - Parameters:
///   - offsets: `kernelRowOffsets(s)`.
///   - x: the sample's `(inChannels, height, width)`; nothing at or past `end` is read.
///   - blocks: scratch for `outPlane · patchBlockStride + 16` floats (within
///     `sparseScratchCount(s)`: patch rows are longer than 144 floats).
@inlinable
func addSparseWeightGradient(
    _ s: Conv2dShape, offsets: UnsafePointer<Int>, x: UnsafePointer<Float>, end: UnsafePointer<Float>,
    first: UnsafePointer<Int32>, pixel: UnsafePointer<Int32>, value: UnsafePointer<Float>,
    blocks: UnsafeMutablePointer<Float>, gradWeight: UnsafeMutablePointer<Float>
) {
    let stride = patchStride(s), blockStride = patchBlockStride, rows = blocks + 8
    forEachPatchBlock(s) { block, v in
        let lo = v * PatchVector.scalarCount
        buildPatchBlock(s, offsets: offsets, x: x, end: end, taps: lo..<(lo + block * PatchVector.scalarCount),
                        rows: rows)
        for o in 0..<s.outChannels where first[o] < first[o + 1] {
            addScaledRows(blockVectors: block, sums: gradWeight + o * stride + lo, fromZero: false,
                          entries: Int(first[o])..<Int(first[o + 1]), scale: value, row: pixel, rows: rows,
                          rowStride: blockStride)
        }
    }
}

/// Floats between pixels in `buildPatchBlock`'s rows: a block of eight 16-lane vectors, 8
/// floats before it and 8 after (a kernel row's 8-float copy may start up to `kW - 1`
/// floats before the block and end up to 7 past it): 144, nine cache lines (at a power of
/// two, every pixel's row would fall into the same sets of the L1 cache).
@inlinable var patchBlockStride: Int { 8 * 16 + 16 }

/// Taps `taps` of every output pixel's patch (im2col with a pixel's taps contiguous: tap
/// `(c · kH + kh) · kW + kw` of pixel `q = (oh, ow)` is `x[c, oh + kh, ow + kw]`), pixel
/// `q`'s at `rows[q · patchBlockStride ..< + taps.count]`. The kernel rows that meet the
/// block are copied 8 floats at a time, in order, each overwriting the extra floats of the
/// one before; the first may start up to `kW - 1` floats before the block, and the last's
/// extra floats land past it (`rows` must have 8 floats before and after each row).
///
/// - Parameters:
///   - offsets: `kernelRowOffsets(s)`.
///   - x: the sample's `(inChannels, height, width)`; nothing at or past `end` is read.
@inlinable
func buildPatchBlock(
    _ s: Conv2dShape, offsets: UnsafePointer<Int>, x: UnsafePointer<Float>, end: UnsafePointer<Float>,
    taps: Range<Int>, rows: UnsafeMutablePointer<Float>
) {
    let kW = s.kernelWidth, kernelRows = s.inChannels * s.kernelHeight
    let firstRow = taps.lowerBound / kW, lastRow = min(kernelRows, (taps.upperBound + kW - 1) / kW)
    let start = firstRow * kW - taps.lowerBound
    for q in 0..<s.outPlane {
        let source = x + (q / s.outWidth * s.width + q % s.outWidth), row = rows + q &* patchBlockStride + start
        if source + offsets[lastRow - 1] + 8 <= end {  // every 8-float load before `end` (all but a batch's last pixels)
            var to = row  // stepped: no multiply, overflow check or spilled pointer per copy
            for r in firstRow..<lastRow {
                store8(load8(source + offsets[r]), to)
                to += kW
            }
        } else {
            for r in firstRow..<lastRow {
                let from = source + offsets[r], to = row + (r - firstRow) &* kW
                if from + 8 <= end {
                    store8(load8(from), to)
                } else {
                    for kw in 0..<kW { to[kw] = from[kw] }
                }
            }
        }
    }
}

/// For each group `g < groups` with entries (`bounds[g] ..< bounds[g + 1]`), the patch row
/// `sums[g · patchStride ...]` (+)= Σ_e `scale[e]` · the patch row `rows[row[e] · patchStride
/// ...]` (`addScaledRows`), a block of vectors at a time over every group, so that the block
/// of every row the entries read stays in the cache: the weight gradient's channels over
/// patches, the input gradient's pixels over the packed weight.
@inlinable @inline(__always)
func addScaledRowGroups(
    _ s: Conv2dShape, groups: Int, bounds: UnsafePointer<Int32>, sums: UnsafeMutablePointer<Float>, fromZero: Bool,
    scale: UnsafePointer<Float>, row: UnsafePointer<Int32>, rows: UnsafePointer<Float>
) {
    let stride = patchStride(s)
    forEachPatchBlock(s) { block, v in
        let offset = v * PatchVector.scalarCount
        for g in 0..<groups where bounds[g] < bounds[g + 1] {
            addScaledRows(blockVectors: block, sums: sums + g * stride + offset, fromZero: fromZero,
                          entries: Int(bounds[g])..<Int(bounds[g + 1]), scale: scale, row: row,
                          rows: rows + offset, rowStride: stride)
        }
    }
}

// MARK: By kernel rows

/// Copies `weight` `(outChannels, inChannels, kH, kW)` into `padded`
/// `(outChannels, inChannels, kH, 8)`, zero past `kW`.
@inlinable
func padKernelRows(_ s: Conv2dShape, weight: UnsafePointer<Float>, padded: UnsafeMutablePointer<Float>) {
    let kW = s.kernelWidth
    for row in 0..<(s.outChannels * s.inChannels * s.kernelHeight) {
        for lane in 0..<8 { padded[row * 8 + lane] = lane < kW ? weight[row * kW + lane] : 0 }
    }
}

/// `addSparseInputGradient` by kernel rows (`sparseUsesPatches` false): the weight's rows
/// padded to 8 floats (`padKernelRows`), one 8-lane vector per kernel row.
///
/// For each pixel with nonzeros, the column `Σ_o g[o] · weight[o, :]` is summed in registers,
/// eight (then four) kernel rows at a time for every pixel, so that those rows of the weight
/// (every channel's) stay in L1 while the sample's pixels use them; then it is added to the
/// input gradient under the pixel's window. Pixels are visited column by column
/// (`columnMajor`), so that consecutive pixels' 8-lane adds do not partly overlap (the adds
/// of two pixels in a row share all but one float, and a load that partly overlaps an
/// earlier store waits for it); `mnist-bench --ops` measured it no different from row by
/// row on LeNet's conv2.
///
/// - Parameters:
///   - offsets: `kernelRowOffsets(s)`.
///   - inputOffset: each output pixel's window's offset in the sample's input.
///   - gradInput: `(inChannels, height, width)`, one sample's.
@inlinable
func addSparseInputGradientByRows(
    _ s: Conv2dShape, offsets: UnsafePointer<Int>, paddedWeight: UnsafePointer<Float>,
    start: UnsafePointer<Int32>, channel: UnsafePointer<Int32>, value: UnsafePointer<Float>,
    columnMajor: UnsafePointer<Int32>, inputOffset: UnsafePointer<Int32>, gradInput: UnsafeMutablePointer<Float>
) {
    let plane = s.outPlane, rows = s.inChannels * s.kernelHeight, weightStride = rows * 8
    let inputSample = s.inChannels * s.height * s.width
    gradInput.update(repeating: 0, count: inputSample)
    // 8-lane adds reach up to 8 - kW floats past a row: into the next row of the same sample
    // (adding 0), but never past the sample's end.
    let sampleEnd = gradInput + inputSample
    var j = 0
    while j + 8 <= rows {
        let w = paddedWeight + j * 8
        for i in 0..<plane {
            let p = Int(columnMajor[i])
            guard start[p] < start[p + 1] else { continue }
            let origin = gradInput + Int(inputOffset[p])
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
            for e in Int(start[p])..<Int(start[p + 1]) {
                let g = SIMD8<Float>(repeating: value[e])
                let wc = w + Int(channel[e]) * weightStride  // eight consecutive padded rows
                a0.addProduct(g, load8(wc)); a1.addProduct(g, load8(wc + 8))
                a2.addProduct(g, load8(wc + 16)); a3.addProduct(g, load8(wc + 24))
                a4.addProduct(g, load8(wc + 32)); a5.addProduct(g, load8(wc + 40))
                a6.addProduct(g, load8(wc + 48)); a7.addProduct(g, load8(wc + 56))
            }
            add8(a0, to: origin + offsets[j], before: sampleEnd)
            add8(a1, to: origin + offsets[j + 1], before: sampleEnd)
            add8(a2, to: origin + offsets[j + 2], before: sampleEnd)
            add8(a3, to: origin + offsets[j + 3], before: sampleEnd)
            add8(a4, to: origin + offsets[j + 4], before: sampleEnd)
            add8(a5, to: origin + offsets[j + 5], before: sampleEnd)
            add8(a6, to: origin + offsets[j + 6], before: sampleEnd)
            add8(a7, to: origin + offsets[j + 7], before: sampleEnd)
        }
        j += 8
    }
    while j < rows {
        let width = min(4, rows - j)  // rows in this block; a short block repeats its last
        let d0 = offsets[j], d1 = offsets[j + min(1, width - 1)]
        let d2 = offsets[j + min(2, width - 1)], d3 = offsets[j + min(3, width - 1)]
        let w0 = paddedWeight + j * 8, w1 = w0 + 8 * min(1, width - 1)
        let w2 = w0 + 8 * min(2, width - 1), w3 = w0 + 8 * min(3, width - 1)
        for i in 0..<plane {
            let p = Int(columnMajor[i])
            guard start[p] < start[p + 1] else { continue }
            let origin = gradInput + Int(inputOffset[p])
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for e in Int(start[p])..<Int(start[p + 1]) {
                let g = SIMD8<Float>(repeating: value[e])
                let c = Int(channel[e]) * weightStride
                a0.addProduct(g, load8(w0 + c)); a1.addProduct(g, load8(w1 + c))
                a2.addProduct(g, load8(w2 + c)); a3.addProduct(g, load8(w3 + c))
            }
            add8(a0, to: origin + d0, before: sampleEnd)
            if width > 1 { add8(a1, to: origin + d1, before: sampleEnd) }
            if width > 2 { add8(a2, to: origin + d2, before: sampleEnd) }
            if width > 3 { add8(a3, to: origin + d3, before: sampleEnd) }
        }
        j += width
    }
}

/// `addSparseWeightGradient` by kernel rows (`sparseUsesPatches` false), reading the input
/// where it lies: adds one sample's part of the weight gradient to `paddedGradWeight`
/// `(outChannels, inChannels, kernelHeight, 8)`: for each output channel, eight kernel rows
/// of its gradient at a time are loaded into registers, summed over the channel's nonzeros
/// (`value[first[o] ..< first[o + 1]]` · the input under the window at `inputOffset[...]`)
/// and stored back, so the sample's input is read from the cache for every channel. The
/// rows past the last eight go through `addShortRowBlock`.
///
/// - Parameter input: the sample's `(inChannels, height, width)`, readable 8 floats past its end.
@inlinable
func addSparseWeightGradientByRows(
    _ s: Conv2dShape, offsets: UnsafePointer<Int>, first: UnsafePointer<Int32>, inputOffset: UnsafePointer<Int32>,
    value: UnsafePointer<Float>, input x: UnsafePointer<Float>, paddedGradWeight: UnsafeMutablePointer<Float>
) {
    let rows = s.inChannels * s.kernelHeight
    for o in 0..<s.outChannels where first[o] < first[o + 1] {
        let sums = paddedGradWeight + o * rows * 8
        let entries = Int(first[o])..<Int(first[o + 1])
        var j = 0
        while j + 8 <= rows {
            let r = sums + j * 8, d = offsets + j
            let d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3], d4 = d[4], d5 = d[5], d6 = d[6], d7 = d[7]
            var a0 = load8(r), a1 = load8(r + 8), a2 = load8(r + 16), a3 = load8(r + 24)
            var a4 = load8(r + 32), a5 = load8(r + 40), a6 = load8(r + 48), a7 = load8(r + 56)
            for e in entries {
                let g = SIMD8<Float>(repeating: value[e])
                let xe = x + Int(inputOffset[e])
                a0.addProduct(g, load8(xe + d0)); a1.addProduct(g, load8(xe + d1))
                a2.addProduct(g, load8(xe + d2)); a3.addProduct(g, load8(xe + d3))
                a4.addProduct(g, load8(xe + d4)); a5.addProduct(g, load8(xe + d5))
                a6.addProduct(g, load8(xe + d6)); a7.addProduct(g, load8(xe + d7))
            }
            store8(a0, r); store8(a1, r + 8); store8(a2, r + 16); store8(a3, r + 24)
            store8(a4, r + 32); store8(a5, r + 40); store8(a6, r + 48); store8(a7, r + 56)
            j += 8
        }
        let block = (sums: sums + j * 8, offsets: offsets + j)
        switch rows - j {
        case 0: break
        case 1: addShortRowBlock(Count1.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        case 2: addShortRowBlock(Count2.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        case 3: addShortRowBlock(Count3.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        case 4: addShortRowBlock(Count4.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        case 5: addShortRowBlock(Count5.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        case 6: addShortRowBlock(Count6.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        default: addShortRowBlock(Count7.self, block, entries: entries, inputOffset: inputOffset, value: value, input: x)
        }
    }
}

/// The last `R.count` (< 8) kernel rows of `addSparseWeightGradientByRows`, exactly that
/// many (LeNet's conv1 has 5 in all; a block of eight repeating the last row spent 3 of
/// every 8 multiply-adds on repeats), in two sets of sums: even entries into the sums
/// `block.sums` holds, odd ones into sums from zero, added at the end, so that consecutive
/// nonzeros do not wait on each other's multiply-adds.
@inlinable @inline(__always)
func addShortRowBlock<R: FixedCount>(
    _: R.Type, _ block: (sums: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>), entries: Range<Int>,
    inputOffset: UnsafePointer<Int32>, value: UnsafePointer<Float>, input x: UnsafePointer<Float>
) {
    let w = R.count, r = block.sums
    @inline(__always) func start(_ k: Int) -> SIMD8<Float> { w > k ? load8(r + 8 * k) : SIMD8() }
    @inline(__always) func offset(_ k: Int) -> Int { w > k ? block.offsets[k] : 0 }
    let d0 = offset(0), d1 = offset(1), d2 = offset(2), d3 = offset(3), d4 = offset(4), d5 = offset(5)
    let d6 = offset(6)
    var a0 = start(0), a1 = start(1), a2 = start(2), a3 = start(3), a4 = start(4), a5 = start(5), a6 = start(6)
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
    var b4 = SIMD8<Float>(), b5 = SIMD8<Float>(), b6 = SIMD8<Float>()
    var e = entries.lowerBound
    while e + 1 < entries.upperBound {
        let g = SIMD8<Float>(repeating: value[e]), xe = x + Int(inputOffset[e])
        let h = SIMD8<Float>(repeating: value[e + 1]), xf = x + Int(inputOffset[e + 1])
        a0.addProduct(g, load8(xe + d0)); b0.addProduct(h, load8(xf + d0))
        if w > 1 { a1.addProduct(g, load8(xe + d1)); b1.addProduct(h, load8(xf + d1)) }
        if w > 2 { a2.addProduct(g, load8(xe + d2)); b2.addProduct(h, load8(xf + d2)) }
        if w > 3 { a3.addProduct(g, load8(xe + d3)); b3.addProduct(h, load8(xf + d3)) }
        if w > 4 { a4.addProduct(g, load8(xe + d4)); b4.addProduct(h, load8(xf + d4)) }
        if w > 5 { a5.addProduct(g, load8(xe + d5)); b5.addProduct(h, load8(xf + d5)) }
        if w > 6 { a6.addProduct(g, load8(xe + d6)); b6.addProduct(h, load8(xf + d6)) }
        e += 2
    }
    if e < entries.upperBound {
        let g = SIMD8<Float>(repeating: value[e]), xe = x + Int(inputOffset[e])
        a0.addProduct(g, load8(xe + d0))
        if w > 1 { a1.addProduct(g, load8(xe + d1)) }
        if w > 2 { a2.addProduct(g, load8(xe + d2)) }
        if w > 3 { a3.addProduct(g, load8(xe + d3)) }
        if w > 4 { a4.addProduct(g, load8(xe + d4)) }
        if w > 5 { a5.addProduct(g, load8(xe + d5)) }
        if w > 6 { a6.addProduct(g, load8(xe + d6)) }
    }
    store8(a0 + b0, r)
    if w > 1 { store8(a1 + b1, r + 8) }
    if w > 2 { store8(a2 + b2, r + 16) }
    if w > 3 { store8(a3 + b3, r + 24) }
    if w > 4 { store8(a4 + b4, r + 32) }
    if w > 5 { store8(a5 + b5, r + 40) }
    if w > 6 { store8(a6 + b6, r + 48) }
}
