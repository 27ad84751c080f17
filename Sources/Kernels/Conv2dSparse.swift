// MARK: - Gradients from a sparse output gradient (a convolution followed by ReLU + max-pool)

// The shapes computed here are those `Conv2dPlan.allowsSparseGradient` accepts when a dense
// gradient is sparse (`conv2dGradientIsSparse`), and those `allowsPooledGradient` accepts
// behind a max-pool (`conv2dPooledGradientIsSparse`). The sparse path visits only the
// nonzero gradients `g` at `(o, oh, ow)`: each adds `g · input[c, oh + kh, ow ..< ow + kW]`
// to the weight gradient and `g · weight[o, c, kh, :]` to the input gradient, for every
// `(c, kh)`, as one 8-lane fused multiply-add per row.
//
// The nonzeros come from a dense gradient (`SparseGradient.dense`, scanned) or straight from
// the max-pool that follows the convolution (`.pooled`: the pool's gradient and argmax,
// `conv2dMaxPool2dBackward`), which skips writing the dense gradient and
// scanning it again.
//
// Measured on LeNet at batch 64 (Zen 3, 2 threads, `mnist-bench`, alternating binaries):
// reading through the argmax, with the kernels below (one pass per sample listing its
// nonzeros once, the weight gradient's sums waiting in memory between samples so that each
// sample's input is read from the cache), took training from about 5,800 to 7,000 samples/s.

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
                let g = gradOutput + (n * s.outChannels + o) * plane
                for q in 0..<plane {
                    // Written always, kept when nonzero (no branch to mispredict).
                    value[Int(count)] = g[q]
                    pixel[Int(count)] = Int32(truncatingIfNeeded: q)
                    count &+= g[q] != 0 ? 1 : 0
                }
                first[o + 1] = count
            }
        case .pooled(let g):
            let windows = g.pool.outHeight * g.pool.outWidth
            for o in 0..<s.outChannels {
                let base = (n * s.outChannels + o) * windows
                let gradient = g.gradient + base, argmax = g.argmax + base
                if let relu = g.reluOutput.map({ $0 + base }) {
                    for w in 0..<windows {
                        value[Int(count)] = gradient[w]
                        pixel[Int(count)] = argmax[w]
                        // Kept when nonzero and the window's output is not <= 0 (`&`, not `&&`:
                        // no branch).
                        count &+= (gradient[w] != 0 ? 1 : 0) & (relu[w] <= 0 ? 0 : 1)
                    }
                } else {
                    for w in 0..<windows {
                        value[Int(count)] = gradient[w]
                        pixel[Int(count)] = argmax[w]
                        count &+= gradient[w] != 0 ? 1 : 0
                    }
                }
                first[o + 1] = count
            }
        }
    }
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
    // Counted in parallel ranges of whole vectors (an integer sum: the same at any thread count).
    let vectors = count / 8
    // One count per chunk, on the stack (this runs on every convolution's backward pass).
    var total = withUnsafeTemporaryAllocation(of: Int.self, capacity: Parallelism.threadCount) { counts in
        counts.initialize(repeating: 0)
        let g = UncheckedSendable(gradOutput), c = UncheckedSendable(counts.baseAddress!)
        Parallelism.forEachChunk(vectors, minimumPerChunk: 4096) { chunk, range in
            var nonzero = SIMD8<Int32>()
            for v in range {
                nonzero &-= unsafeBitCast(load8(g.value + 8 * v) .!= 0, to: SIMD8<Int32>.self)  // true is -1
            }
            c.value[chunk] = Int(nonzero.wrappedSum())
        }
        return counts.reduce(0, +)
    }
    for i in (8 * vectors)..<count where gradOutput[i] != 0 { total += 1 }
    return total * 5 <= count
}

/// `conv2dGradientIsSparse` for the gradient a max-pool passed back, decided from the
/// shapes alone (nothing to scan): `Conv2dPlan.allowsPooledGradient`'s convolutions, behind
/// a pool whose strides cover at least 4 pixels (a 2×2 step: at most a quarter of the
/// output has a gradient; behind ReLU about half of that in training).
public func conv2dPooledGradientIsSparse(_ s: Conv2dShape, pool: Pool2dShape) -> Bool {
    Conv2dPlan.allowsPooledGradient(s) && pool.strideH * pool.strideW >= 4
}

/// Floats of one weight-shaped buffer whose kernel rows are padded to 8 floats:
/// `(outChannels, inChannels, kernelHeight, 8)`.
@inlinable
func paddedWeightCount(_ s: Conv2dShape) -> Int { s.outChannels * s.inChannels * s.kernelHeight * 8 }

/// Copies `weight` `(outChannels, inChannels, kH, kW)` into `padded`
/// `(outChannels, inChannels, kH, 8)`, zero past `kW`.
@inlinable
func padKernelRows(_ s: Conv2dShape, weight: UnsafePointer<Float>, padded: UnsafeMutablePointer<Float>) {
    let kW = s.kernelWidth
    for row in 0..<(paddedWeightCount(s) / 8) {
        for lane in 0..<8 { padded[row * 8 + lane] = lane < kW ? weight[row * kW + lane] : 0 }
    }
}

/// Offsets of the kernel rows `(c, kh)`, in order, from a pixel of a sample's input:
/// `c · height · width + kh · width`.
@inlinable
func kernelRowOffsets(_ s: Conv2dShape) -> [Int] {
    (0..<s.inChannels).flatMap { c in (0..<s.kernelHeight).map { kh in (c * s.height + kh) * s.width } }
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

/// The input gradient and/or the weight and bias gradients of `samples` from the nonzeros
/// of `gradient` (see `Conv2dPlan.allowsSparseGradient` and `allowsPooledGradient`), sample
/// by sample: each sample's nonzeros are listed once for both (`addSparseInputGradient`,
/// `addSparseWeightGradient`).
///
/// - Parameters:
///   - paddedWeight: `(outChannels, inChannels, kernelHeight, 8)`, the weight with each
///     kernel row padded with zeros to 8 floats (`padKernelRows`); with `gradInput`.
///   - gradInput: `(batch, inChannels, height, width)`; the samples' part is overwritten;
///     nil to skip the input gradient.
///   - input: `(batch, inChannels, height, width)`; with `paddedGradWeight`.
///   - paddedGradWeight: `(outChannels, inChannels, kernelHeight, 8)`, written (not added);
///     lanes past `kernelWidth` hold junk; nil to skip the weight gradient.
///   - gradBias: `(outChannels)`, written; nil to skip it.
@inlinable
func conv2dBackwardSparse(
    _ s: Conv2dShape, samples: Range<Int>, gradient: SparseGradient,
    paddedWeight: UnsafePointer<Float>?, gradInput: UnsafeMutablePointer<Float>?,
    input: UnsafePointer<Float>?, paddedGradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?
) {
    let plane = s.outPlane, outW = s.outWidth, capacity = gradient.sampleCapacity(s)
    let inputSample = s.inChannels * s.height * s.width
    let offsets = kernelRowOffsets(s), rows = offsets.count
    paddedGradWeight?.update(repeating: 0, count: s.outChannels * rows * 8)
    // Summed below from each sample's nonzeros, in order.
    gradBias?.update(repeating: 0, count: s.outChannels)
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: s.outChannels + 2 + 2 * capacity + 3 * plane) { ints in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * capacity + inputSample + 8) { floats in
            // One sample's nonzeros of channel o: value and output pixel at first[o] ..< first[o + 1];
            // grouped by pixel for the input gradient (`start`, `channel`, `byPixel`).
            let first = ints.baseAddress!, pixel = first + s.outChannels + 1, channel = pixel + capacity
            let start = channel + capacity, columnMajor = start + plane + 1, inputOffset = columnMajor + plane
            let value = floats.baseAddress!, byPixel = value + capacity, lastInput = byPixel + capacity
            for q in 0..<plane {
                columnMajor[q] = Int32(truncatingIfNeeded: q % s.outHeight * outW + q / s.outHeight)
                inputOffset[q] = Int32(truncatingIfNeeded: q / outW * s.width + q % outW)
            }
            offsets.withUnsafeBufferPointer { offsets in
                let offsets = offsets.baseAddress!
                for n in samples {
                    gradient.channelNonzeros(s, sample: n, first: first, pixel: pixel, value: value)
                    if let gradInput, let paddedWeight {
                        nonzerosByPixel(channels: s.outChannels, plane: plane, first: first, pixel: pixel, value: value,
                                        start: start, channel: channel, byPixel: byPixel)
                        addSparseInputGradient(
                            s, offsets: offsets, paddedWeight: paddedWeight, start: start, channel: channel,
                            value: byPixel, columnMajor: columnMajor, inputOffset: inputOffset,
                            gradInput: gradInput + n * inputSample)
                    }
                    if let paddedGradWeight, let input {
                        if let gradBias {
                            for o in 0..<s.outChannels {
                                var sum = gradBias[o]
                                for e in Int(first[o])..<Int(first[o + 1]) { sum += value[e] }
                                gradBias[o] = sum
                            }
                        }
                        for e in 0..<Int(first[s.outChannels]) { pixel[e] = inputOffset[Int(pixel[e])] }
                        // 8-lane loads reach up to 8 - kW floats past the sample's last row: the
                        // batch's last sample is read from a copy followed by zeros.
                        var x = input + n * inputSample
                        if n == s.batch - 1 {
                            copyFloats(x, lastInput, inputSample)
                            (lastInput + inputSample).update(repeating: 0, count: 8)
                            x = UnsafePointer(lastInput)
                        }
                        addSparseWeightGradient(s, offsets: offsets, first: first, inputOffset: pixel, value: value,
                                                input: x, paddedGradWeight: paddedGradWeight)
                    }
                }
            }
        }
    }
}

/// One sample's input gradient, overwritten, from its nonzeros grouped by output pixel
/// (`nonzerosByPixel`: pixel `q`'s are `channel[start[q] ..< start[q + 1]]` and `value`).
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
func addSparseInputGradient(
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

/// Adds one sample's part of the weight gradient to `paddedGradWeight`
/// `(outChannels, inChannels, kernelHeight, 8)`: for each output channel, eight kernel rows
/// of its gradient at a time are loaded into registers, summed over the channel's nonzeros
/// (`value[first[o] ..< first[o + 1]]` · the input under the window at `inputOffset[...]`)
/// and stored back, so the sample's input is read from the cache for every channel. A short
/// block repeats its last row, whose extra sums are not stored.
///
/// - Parameter input: the sample's `(inChannels, height, width)`, readable 8 floats past its end.
@inlinable
func addSparseWeightGradient(
    _ s: Conv2dShape, offsets: UnsafePointer<Int>, first: UnsafePointer<Int32>, inputOffset: UnsafePointer<Int32>,
    value: UnsafePointer<Float>, input x: UnsafePointer<Float>, paddedGradWeight: UnsafeMutablePointer<Float>
) {
    let rows = s.inChannels * s.kernelHeight
    for o in 0..<s.outChannels where first[o] < first[o + 1] {
        let sums = paddedGradWeight + o * rows * 8
        let entries = Int(first[o])..<Int(first[o + 1])
        var j = 0
        while j < rows {
            let width = min(8, rows - j)
            @inline(__always) func d(_ k: Int) -> Int { offsets[j + min(k, width - 1)] }
            @inline(__always) func r(_ k: Int) -> UnsafeMutablePointer<Float> { sums + (j + min(k, width - 1)) * 8 }
            let d0 = d(0), d1 = d(1), d2 = d(2), d3 = d(3), d4 = d(4), d5 = d(5), d6 = d(6), d7 = d(7)
            var a0 = load8(r(0)), a1 = load8(r(1)), a2 = load8(r(2)), a3 = load8(r(3))
            var a4 = load8(r(4)), a5 = load8(r(5)), a6 = load8(r(6)), a7 = load8(r(7))
            for e in entries {
                let g = SIMD8<Float>(repeating: value[e])
                let xe = x + Int(inputOffset[e])
                a0.addProduct(g, load8(xe + d0)); a1.addProduct(g, load8(xe + d1))
                a2.addProduct(g, load8(xe + d2)); a3.addProduct(g, load8(xe + d3))
                a4.addProduct(g, load8(xe + d4)); a5.addProduct(g, load8(xe + d5))
                a6.addProduct(g, load8(xe + d6)); a7.addProduct(g, load8(xe + d7))
            }
            // Stored last to first: a repeated row's sums are stored by its first.
            store8(a7, r(7)); store8(a6, r(6)); store8(a5, r(5)); store8(a4, r(4))
            store8(a3, r(3)); store8(a2, r(2)); store8(a1, r(1)); store8(a0, r(0))
            j += width
        }
    }
}
