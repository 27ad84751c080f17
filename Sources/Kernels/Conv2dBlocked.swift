// MARK: - Direct convolution over chunks of 8 output pixels: forward, input gradient, and the
// weight gradient of many taps

// Every pass of an unstrided convolution (no groups, padding, stride or dilation) computed
// where the data lies, sums held in registers, over a list of 8-pixel chunks of the output
// plane (`DirectLayout`):
//
// - forward: `output[o, p] = bias[o] + Σ_t input[p + offset(t)] · weight[o, t]`, five output
//   channels × two chunks at a time (two input loads and five weight broadcasts per ten
//   fused multiply-adds); when the output channels are a multiple of 16 or 24 and there
//   are at least 32 taps (24 channels under a 2×2 pool: 25 in 8-lane builds), the
//   channel-lane kernel of Conv2dChannelLanes.swift instead, with the same sums;
// - input gradient: the same kernel, run on the output gradient padded by `k − 1` on every
//   side with the weight transposed (input ↔ output channels) and flipped;
// - weight gradient: `gradWeight[o, t] = Σ_p gradOutput[o, p] · input[p + offset(t)]`, four
//   output channels × three taps at a time, each sum eight lanes wide until the end.
//
// The chunks lie along each output row (`rows`: a last chunk of a row overlaps the one
// before it when the row is not a multiple of 8 wide), or along the plane as if every output
// row were as wide as the input (`wide`: the `k − 1` extra pixels per row are computed into
// scratch and dropped). The wide cut wastes fewer lanes on short rows: a 10-wide output of a
// 12-wide input uses 10 of 12 lanes instead of 10 of 16.
//
// Measured on mnist-best's layers (batch 128, 2 threads, Zen 3; best of 20 calls with the
// algorithms alternating in one process, through a switch not kept): against im2col + GEMM, conv2's (32 → 32 channels, 26 → 24 wide) input gradient 15.4 ms against 18.3
// and weight gradient 13.1 against 17.4; conv3's forward (32 → 64, 12 → 10 wide) 4.3 against
// 4.5 through the rows cut. The transposed convolution also multiplies the padding: conv3's
// and conv4's input gradients (12 and 10 wide, 1.44× and 1.56× the FLOPs) stay faster through
// GEMM (5.9 and 7.1 ms against 6.7 and 9.4), so `Conv2dPlan` sends them there.

/// How the 8-pixel chunks of a convolution's output plane lie.
@usableFromInline
struct DirectLayout {
    /// Chunks along a plane as wide as the input rows, written to scratch planes and copied
    /// out (`compactRows`); else chunks along each output row, written to the output.
    @usableFromInline var wide: Bool
    /// Floats between rows of the plane the kernel writes.
    @usableFromInline var rowStride: Int
    /// Floats of the plane the kernel writes.
    @usableFromInline var plane: Int
    /// Each chunk's first pixel: its offset in the input sample (tap `(0, 0, 0)`) and in the
    /// plane the kernel writes.
    @usableFromInline var chunks: [(input: Int, output: Int)]

    /// The cut of an output `outHeight × outWidth` of an input `inputWidth` wide: wide when
    /// rows are not a multiple of 8 wide, the wide plane wastes fewer lanes, and there are
    /// at least 32 taps (`wideWorthIt`) to pay for the copy out; else rows.
    @inlinable
    init(outHeight: Int, outWidth: Int, inputWidth: Int, wideWorthIt: Bool) {
        wide = wideWorthIt && Self.wideWastesLess(outHeight: outHeight, outWidth: outWidth, inputWidth: inputWidth)
        if wide {
            rowStride = inputWidth
            plane = outHeight * inputWidth
            chunks = stride(from: 0, to: plane - 7, by: 8).map { ($0, $0) }
            if plane % 8 != 0 { chunks.append((plane - 8, plane - 8)) }
        } else {
            rowStride = outWidth
            plane = outHeight * outWidth
            chunks = []
            for r in 0..<outHeight {
                for column in columnChunks(outWidth) { chunks.append((r * inputWidth + column, r * outWidth + column)) }
            }
        }
    }

    @inlinable
    static func wideWastesLess(outHeight: Int, outWidth: Int, inputWidth: Int) -> Bool {
        outWidth % 8 != 0 && inputWidth < (outWidth + 7) / 8 * 8 && outHeight * inputWidth >= 8
    }

    /// Whether a direct kernel takes an output `outHeight × outWidth` of an input `inputWidth`
    /// wide: rows at least 8 wide, or a wide plane.
    @inlinable
    static func fits(outHeight: Int, outWidth: Int, inputWidth: Int, wideWorthIt: Bool) -> Bool {
        outWidth >= 8 || (wideWorthIt && wideWastesLess(outHeight: outHeight, outWidth: outWidth, inputWidth: inputWidth))
    }

    /// Zero floats after a copy of the batch's last sample that keep every chunk's reads in
    /// bounds: wide chunks read up to `kernelWidth − 2` floats past a sample (forward and
    /// input gradient), `kernelWidth + 6` when the plane is rounded up to a multiple of 8
    /// (`WeightGradientLayout`).
    @inlinable static func slack(kernelWidth: Int) -> Int { kernelWidth + 8 }
}

/// Floats of a weight packed by `packBlockedWeight`: output channels rounded up to 5, × taps.
@inlinable
func packedBlockedWeightCount(outChannels: Int, taps: Int) -> Int { (outChannels + 4) / 5 * 5 * taps }

/// `weight(o, t)` laid out `(block of 5 channels, tap, 5)`, zero past the last channel: the
/// five weights `directConvolveSample` broadcasts per tap lie together (`packWeightGroups`).
@inlinable
func packBlockedWeight(
    outChannels: Int, taps: Int, into packed: UnsafeMutablePointer<Float>, weight: (_ o: Int, _ t: Int) -> Float
) {
    packWeightGroups(group: 5, outChannels: outChannels, taps: taps, into: packed, weight: weight)
}

/// Floats a thread of a per-call weight packing takes at least (`packWeightGroups`,
/// `packPatchWeight`): smaller packings stay on the calling thread.
@usableFromInline let weightPackingGrain = 2048

/// `weight(o, t)` laid out `(group of channels, tap, group)`, zero past the last channel: the
/// layouts of the direct kernels (`packBlockedWeight`, `packChannelLaneWeight`). Done once per
/// call, before the kernel's region, in a region of its own (at least 2,048 floats a thread):
/// on the calling thread alone, LeNet's conv2 (25,000 weights) took 36 µs of each training
/// step while the others waited.
@inlinable
func packWeightGroups(
    group: Int, outChannels: Int, taps: Int, into packed: UnsafeMutablePointer<Float>,
    weight: (_ o: Int, _ t: Int) -> Float
) {
    Parallelism.forEachRange((outChannels + group - 1) / group * taps, minimumPerChunk: max(1, weightPackingGrain / group)) { items in
        for item in items {
            let g = item / taps, t = item % taps
            for j in 0..<group {
                let o = g * group + j
                packed[(g * taps + t) * group + j] = o < outChannels ? weight(o, t) : 0
            }
        }
    }
}

/// `count` floats from `source` to `destination` (non-overlapping), eight at a time: rows
/// here are 8 to 30 floats, where a memmove call per row costs more than the copy. Past the
/// last whole eight, the last eight floats are copied again (one vector, not a scalar loop;
/// a row of 12: 8 + 8 overlapping) when there are at least eight.
@inlinable @inline(__always)
func copyFloats(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        store8(load8(source + i), destination + i)
        i += 8
    }
    if i < count && count >= 8 {
        store8(load8(source + count - 8), destination + count - 8)
        return
    }
    while i < count {
        destination[i] = source[i]
        i += 1
    }
}

/// One sample of a direct convolution:
/// `output[o · plane + chunk.output + i] = bias[o] + Σ_t input[chunk.input + offsets[t] + i] · w(o, t)`
/// for every chunk and lane `i < 8`. Each chunk's sums are held in registers over all taps
/// and stored once, so overlapping chunks store the same values twice.
///
/// - Parameters:
///   - offsets: `taps` offsets of the taps from a chunk's input position.
///   - packedWeight: `packBlockedWeight`'s layout of `w`.
///   - output: `(outChannels, plane)`.
@inlinable
func directConvolveSample(
    taps: Int, offsets: UnsafePointer<Int>, outChannels: Int, packedWeight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, input: UnsafePointer<Float>, chunks: UnsafeBufferPointer<(input: Int, output: Int)>,
    output: UnsafeMutablePointer<Float>, plane: Int
) {
    let last = chunks.count - 1
    for b in 0..<(outChannels + 4) / 5 {
        let valid = min(5, outChannels - b * 5)
        let start = fiveChannelStart(bias, block: b, valid: valid)
        let destination = output + b * 5 * plane
        var i = 0
        while i <= last {
            // An odd last chunk is computed twice.
            let c0 = chunks[i], c1 = chunks[min(i + 1, last)]
            let (a, e) = fiveChannelSums(taps: taps, offsets: offsets, weight: packedWeight + b * taps * 5, start: start,
                                         input0: input + c0.input, input1: input + c1.input)
            let out0 = destination + c0.output, out1 = destination + c1.output
            store8(a.0, out0); store8(e.0, out1)
            if valid > 1 { store8(a.1, out0 + plane); store8(e.1, out1 + plane) }
            if valid > 2 { store8(a.2, out0 + 2 * plane); store8(e.2, out1 + 2 * plane) }
            if valid > 3 { store8(a.3, out0 + 3 * plane); store8(e.3, out1 + 3 * plane) }
            if valid > 4 { store8(a.4, out0 + 4 * plane); store8(e.4, out1 + 4 * plane) }
            i += 2
        }
    }
}

/// Five channels' eight-lane sums of `directConvolveSample`.
@usableFromInline typealias FiveSums = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

/// The biases of channel block `b` (`valid` of its five channels; 0 past them or without a
/// bias), each broadcast.
@inlinable @inline(__always)
func fiveChannelStart(_ bias: UnsafePointer<Float>?, block b: Int, valid: Int) -> FiveSums {
    var start = SIMD8<Float>()
    if let bias { for j in 0..<valid { start[j] = bias[b * 5 + j] } }
    return (SIMD8(repeating: start[0]), SIMD8(repeating: start[1]), SIMD8(repeating: start[2]),
            SIMD8(repeating: start[3]), SIMD8(repeating: start[4]))
}

/// The sums of two 8-pixel chunks (at `input0` and `input1`) for the five channels whose
/// weights `weight` holds (`packBlockedWeight`'s block, five per tap): from `start`, one
/// fused multiply-add per tap in order; two input loads and five broadcasts per ten.
@inlinable @inline(__always)
func fiveChannelSums(
    taps: Int, offsets: UnsafePointer<Int>, weight: UnsafePointer<Float>, start: FiveSums,
    input0: UnsafePointer<Float>, input1: UnsafePointer<Float>
) -> (FiveSums, FiveSums) {
    var a0 = start.0, a1 = start.1, a2 = start.2, a3 = start.3, a4 = start.4
    var e0 = start.0, e1 = start.1, e2 = start.2, e3 = start.3, e4 = start.4
    for t in 0..<taps {
        let d = offsets[t]
        let u = load8(input0 + d), v = load8(input1 + d)
        let wt = weight + t * 5
        let w0 = SIMD8(repeating: wt[0]), w1 = SIMD8(repeating: wt[1])
        let w2 = SIMD8(repeating: wt[2]), w3 = SIMD8(repeating: wt[3])
        let w4 = SIMD8(repeating: wt[4])
        a0.addProduct(u, w0); e0.addProduct(v, w0)
        a1.addProduct(u, w1); e1.addProduct(v, w1)
        a2.addProduct(u, w2); e2.addProduct(v, w2)
        a3.addProduct(u, w3); e3.addProduct(v, w3)
        a4.addProduct(u, w4); e4.addProduct(v, w4)
    }
    return ((a0, a1, a2, a3, a4), (e0, e1, e2, e3, e4))
}

/// A chunk's four windows (`poolFourWindows` of its sums, `upper`, and the ones below,
/// `lower`), then ReLU when `relu`, stored at `output + destination`, the indices likewise
/// when `argmax` is given. A function of its own, not nested in `directConvolvePoolSample`:
/// nested, it was not inlined (2.1% of LeNet's step in an AVX2 build, `perf record` of
/// `mnist-bench --threads 2`).
@usableFromInline @_transparent
func storePooledFour(
    _ upper: SIMD8<Float>, _ lower: SIMD8<Float>, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?, at destination: Int, topLeft: Int32, rowStride: Int32, relu: Bool
) {
    var best: SIMD4<Float>
    if let argmax {
        let bestIndex: SIMD4<Int32>
        (best, bestIndex) = poolFourWindows(upper: upper, lower: lower, topLeft: topLeft, rowStride: rowStride)
        UnsafeMutableRawPointer(argmax + destination).storeBytes(of: bestIndex, as: SIMD4<Int32>.self)
    } else {
        best = poolFourWindows(upper: upper, lower: lower)
    }
    if relu { takeIfGreaterOrNaN(SIMD4<Float>(), best: &best) }  // 0 where greater: NaN and -0 kept
    UnsafeMutableRawPointer(output + destination).storeBytes(of: best, as: SIMD4<Float>.self)
}

#if MNIST_ISA_AVX512
/// Two channels' four windows each (`poolFourWindowsOfTwo` of `first` and `second`), then
/// ReLU when `relu`, stored at `output + destination` and `other` floats further (the
/// second channel's), the indices likewise when `argmax` is given.
@usableFromInline @_transparent
func storePooledTwo(
    _ first: SIMD16<Float>, _ second: SIMD16<Float>, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?, at destination: Int, other: Int, topLeft: Int32, rowStride: Int32, relu: Bool
) {
    var best: SIMD8<Float>
    if let argmax {
        let bestIndex: SIMD8<Int32>
        (best, bestIndex) = poolFourWindowsOfTwo(first, second, topLeft: topLeft, rowStride: rowStride)
        UnsafeMutableRawPointer(argmax + destination).storeBytes(of: bestIndex.lowHalf, as: SIMD4<Int32>.self)
        UnsafeMutableRawPointer(argmax + destination + other).storeBytes(of: bestIndex.highHalf, as: SIMD4<Int32>.self)
    } else {
        best = poolFourWindowsOfTwo(first, second)
    }
    if relu { takeIfGreaterOrNaN(SIMD8<Float>(), best: &best) }  // 0 where greater: NaN and -0 kept
    UnsafeMutableRawPointer(output + destination).storeBytes(of: best.lowHalf, as: SIMD4<Float>.self)
    UnsafeMutableRawPointer(output + destination + other).storeBytes(of: best.highHalf, as: SIMD4<Float>.self)
}
#endif

/// The first `valid` of five channels' four windows each, from a chunk's sums (`upper`) and
/// the ones below (`lower`) (`storePooledFour`), channel `j` stored `j` planes of
/// `pooledPlane` after `destination`. The 8-lane kernel's blocks, and the 16-lane one's
/// blocks after the ten-at-a-time ones (each 16-lane sum's halves).
@usableFromInline @_transparent
func storePooledFive(
    upper: FiveSums, lower: FiveSums, valid: Int, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?, at destination: Int, pooledPlane: Int, topLeft: Int32, rowStride: Int32,
    relu: Bool
) {
    storePooledFour(upper.0, lower.0, output: output, argmax: argmax, at: destination, topLeft: topLeft,
                    rowStride: rowStride, relu: relu)
    if valid > 1 {
        storePooledFour(upper.1, lower.1, output: output, argmax: argmax, at: destination + pooledPlane,
                        topLeft: topLeft, rowStride: rowStride, relu: relu)
    }
    if valid > 2 {
        storePooledFour(upper.2, lower.2, output: output, argmax: argmax, at: destination + 2 * pooledPlane,
                        topLeft: topLeft, rowStride: rowStride, relu: relu)
    }
    if valid > 3 {
        storePooledFour(upper.3, lower.3, output: output, argmax: argmax, at: destination + 3 * pooledPlane,
                        topLeft: topLeft, rowStride: rowStride, relu: relu)
    }
    if valid > 4 {
        storePooledFour(upper.4, lower.4, output: output, argmax: argmax, at: destination + 4 * pooledPlane,
                        topLeft: topLeft, rowStride: rowStride, relu: relu)
    }
}

#if MNIST_ISA_AVX512
/// `storePooledFive` of five 16-lane sums, each a chunk's eight sums (low half) and the
/// eight of the chunk below (high half).
@usableFromInline @_transparent
func storePooledFive(
    _ a: FiveSums16, valid: Int, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?,
    at destination: Int, pooledPlane: Int, topLeft: Int32, rowStride: Int32, relu: Bool
) {
    storePooledFive(upper: (a.0.lowHalf, a.1.lowHalf, a.2.lowHalf, a.3.lowHalf, a.4.lowHalf),
                    lower: (a.0.highHalf, a.1.highHalf, a.2.highHalf, a.3.highHalf, a.4.highHalf), valid: valid,
                    output: output, argmax: argmax, at: destination, pooledPlane: pooledPlane, topLeft: topLeft,
                    rowStride: rowStride, relu: relu)
}

/// Ten channels' four windows each, the sums of five (`a`) and of the five after them
/// (`a1`), channel `j` of each pooled together (`storePooledTwo`), channel `j` of `a` stored
/// `j` planes of `pooledPlane` after `destination`. A function of its own, not nested in
/// `directConvolvePoolSample`: the nested one taking the sums was not inlined (0.7% of
/// LeNet's step in `perf record` of `mnist-bench --threads 2`, with its own nested one).
@usableFromInline @_transparent
func storePooledTen(
    _ a: FiveSums16, _ a1: FiveSums16, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?,
    at destination: Int, pooledPlane: Int, topLeft: Int32, rowStride: Int32, relu: Bool
) {
    let other = 5 * pooledPlane
    storePooledTwo(a.0, a1.0, output: output, argmax: argmax, at: destination, other: other,
                   topLeft: topLeft, rowStride: rowStride, relu: relu)
    storePooledTwo(a.1, a1.1, output: output, argmax: argmax, at: destination + pooledPlane, other: other,
                   topLeft: topLeft, rowStride: rowStride, relu: relu)
    storePooledTwo(a.2, a1.2, output: output, argmax: argmax, at: destination + 2 * pooledPlane, other: other,
                   topLeft: topLeft, rowStride: rowStride, relu: relu)
    storePooledTwo(a.3, a1.3, output: output, argmax: argmax, at: destination + 3 * pooledPlane, other: other,
                   topLeft: topLeft, rowStride: rowStride, relu: relu)
    storePooledTwo(a.4, a1.4, output: output, argmax: argmax, at: destination + 4 * pooledPlane, other: other,
                   topLeft: topLeft, rowStride: rowStride, relu: relu)
}
#endif

/// Whether `conv2dMaxPool2dForward` pools the five-channel kernel's sums in registers
/// (`directConvolvePoolSample`): a direct convolution without channel lanes (`ChannelLaneBlock.of`
/// nor `.pooled`), under a 2×2, stride-2 pool (`isSimple2x2`), on output rows cut in 8-wide chunks (`forwardLayout` not
/// wide) of an even width, so that every chunk starts at a window's left column.
@inlinable
func poolsInRegisters(_ s: Conv2dShape, pool: Pool2dShape) -> Bool {
    !Conv2dPlan.fiveChannelForwardOnly && Conv2dPlan.choose(s) == .direct && ChannelLaneBlock.of(s) == nil
        && isSimple2x2(pool) && ChannelLaneBlock.pooled(s, pool: pool) == nil
        && !forwardLayout(s).wide && s.outWidth % 2 == 0
}

/// The chunk pairs of `directConvolvePoolSample`: for each pooled row `k` and column chunk
/// `c` of the convolution's rows (`columnChunks`), the chunk's offset in the input sample
/// (row `2k`; the pair's other chunk is the row below), its first window's index in the
/// pooled plane, and its top-left pixel's index in the convolution's output plane.
@inlinable
func pooledChunkPairs(_ s: Conv2dShape, pool: Pool2dShape) -> [(input: Int, output: Int, origin: Int32)] {
    var pairs: [(input: Int, output: Int, origin: Int32)] = []
    for k in 0..<pool.outHeight {
        for column in columnChunks(s.outWidth) {
            pairs.append((2 * k * s.width + column, k * pool.outWidth + column / 2,
                          Int32(truncatingIfNeeded: 2 * k * s.outWidth + column)))
        }
    }
    return pairs
}

/// One sample of a direct convolution followed by a 2×2, stride-2 max-pool
/// (`poolsInRegisters`), the pool taken on the sums in registers: each pair is a chunk and
/// the one below it, whose eight columns hold four windows (`poolFourWindows`, the rule of
/// `pool2x2Plane`), then ReLU when `relu`
/// (NaN kept). The convolution's output is never stored. Overlapping last chunks store the
/// same windows twice.
///
/// - Parameters:
///   - pairs: `pooledChunkPairs`.
///   - output, argmax: `(outChannels, pooledPlane)`; `argmax` the index within the
///     convolution's output plane (`outWidth` wide), nil for the values only.
@inlinable
func directConvolvePoolSample(
    taps: Int, offsets: UnsafePointer<Int>, outChannels: Int, packedWeight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, input: UnsafePointer<Float>, width: Int, outWidth: Int,
    pairs: UnsafeBufferPointer<(input: Int, output: Int, origin: Int32)>,
    output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?, pooledPlane: Int, relu: Bool
) {
    let down = Int32(truncatingIfNeeded: outWidth)
    let blocks = (outChannels + 4) / 5
    #if MNIST_ISA_AVX512
    // Two pairs at a time, each pair's chunk and the one below in one 16-lane vector (an
    // odd last pair is computed twice and stored once); ten channels (two blocks) at a time
    // while ten remain, so that each input vector's lane-crossing insert serves ten
    // multiply-adds instead of five.
    let last = pairs.count - 1
    var b = 0
    while b < blocks {
        let valid = min(5, outChannels - b * 5)
        let start = fiveChannelStart(bias, block: b, valid: valid)
        let weight = packedWeight + b * taps * 5
        var i = 0
        if outChannels - b * 5 >= 10 {
            let start1 = fiveChannelStart(bias, block: b + 1, valid: 5)
            while i <= last {
                let p0 = pairs[i], p1 = pairs[min(i + 1, last)]
                let (a, e, a1, e1) = tenChannelPairSums(
                    taps: taps, offsets: offsets, weight: weight, weight1: weight + taps * 5, start: start, start1: start1,
                    input0: input + p0.input, input1: input + p1.input, below: width)
                storePooledTen(a, a1, output: output, argmax: argmax, at: b * 5 * pooledPlane + p0.output,
                               pooledPlane: pooledPlane, topLeft: p0.origin, rowStride: down, relu: relu)
                if i < last {
                    storePooledTen(e, e1, output: output, argmax: argmax, at: b * 5 * pooledPlane + p1.output,
                                   pooledPlane: pooledPlane, topLeft: p1.origin, rowStride: down, relu: relu)
                }
                i += 2
            }
            b += 2
            continue
        }
        while i <= last {
            let p0 = pairs[i], p1 = pairs[min(i + 1, last)]
            let (a, e) = fiveChannelPairSums(taps: taps, offsets: offsets, weight: weight, start: start,
                                             input0: input + p0.input, input1: input + p1.input, below: width)
            storePooledFive(a, valid: valid, output: output, argmax: argmax, at: b * 5 * pooledPlane + p0.output,
                            pooledPlane: pooledPlane, topLeft: p0.origin, rowStride: down, relu: relu)
            if i < last {
                storePooledFive(e, valid: valid, output: output, argmax: argmax, at: b * 5 * pooledPlane + p1.output,
                                pooledPlane: pooledPlane, topLeft: p1.origin, rowStride: down, relu: relu)
            }
            i += 2
        }
        b += 1
    }
    #else
    for b in 0..<blocks {
        let valid = min(5, outChannels - b * 5)
        let start = fiveChannelStart(bias, block: b, valid: valid)
        for pair in pairs {
            let (a, e) = fiveChannelSums(taps: taps, offsets: offsets, weight: packedWeight + b * taps * 5, start: start,
                                         input0: input + pair.input, input1: input + pair.input + width)
            // Top-level `storePooledFive`: a nested function taking the sums was not inlined.
            storePooledFive(upper: a, lower: e, valid: valid, output: output, argmax: argmax,
                            at: b * 5 * pooledPlane + pair.output, pooledPlane: pooledPlane, topLeft: pair.origin,
                            rowStride: down, relu: relu)
        }
    }
    #endif
}

#if MNIST_ISA_AVX512
/// Five channels' sums of `fiveChannelPairSums`, 16 lanes: a chunk's eight in the low half,
/// the eight of the chunk below in the high half.
@usableFromInline typealias FiveSums16 = (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

/// `fiveChannelSums` for two pairs of chunks (AVX-512): the chunk at `input0` and the one
/// `below` floats under it in one 16-lane vector, likewise at `input1`; each lane's sum is
/// the one `fiveChannelSums` computes, the same fused multiply-adds in the same order.
@inlinable @inline(__always)
func fiveChannelPairSums(
    taps: Int, offsets: UnsafePointer<Int>, weight: UnsafePointer<Float>, start: FiveSums,
    input0: UnsafePointer<Float>, input1: UnsafePointer<Float>, below: Int
) -> (FiveSums16, FiveSums16) {
    @inline(__always) func both(_ v: SIMD8<Float>) -> SIMD16<Float> { SIMD16(lowHalf: v, highHalf: v) }
    var a0 = both(start.0), a1 = both(start.1), a2 = both(start.2), a3 = both(start.3), a4 = both(start.4)
    var e0 = a0, e1 = a1, e2 = a2, e3 = a3, e4 = a4
    for t in 0..<taps {
        let d = offsets[t]
        let u = SIMD16(lowHalf: load8(input0 + d), highHalf: load8(input0 + d + below))
        let v = SIMD16(lowHalf: load8(input1 + d), highHalf: load8(input1 + d + below))
        let wt = weight + t * 5
        let w0 = SIMD16(repeating: wt[0]), w1 = SIMD16(repeating: wt[1])
        let w2 = SIMD16(repeating: wt[2]), w3 = SIMD16(repeating: wt[3])
        let w4 = SIMD16(repeating: wt[4])
        a0.addProduct(u, w0); e0.addProduct(v, w0)
        a1.addProduct(u, w1); e1.addProduct(v, w1)
        a2.addProduct(u, w2); e2.addProduct(v, w2)
        a3.addProduct(u, w3); e3.addProduct(v, w3)
        a4.addProduct(u, w4); e4.addProduct(v, w4)
    }
    return ((a0, a1, a2, a3, a4), (e0, e1, e2, e3, e4))
}

/// `fiveChannelPairSums` for two blocks of five channels at once (`weight` and `weight1`,
/// starting from `start` and `start1`): twenty sums, each input vector loaded and its
/// halves joined once for ten channels. Each lane's sum is the one `fiveChannelSums`
/// computes.
@inlinable @inline(__always)
func tenChannelPairSums(
    taps: Int, offsets: UnsafePointer<Int>, weight: UnsafePointer<Float>, weight1: UnsafePointer<Float>,
    start: FiveSums, start1: FiveSums, input0: UnsafePointer<Float>, input1: UnsafePointer<Float>, below: Int
) -> (FiveSums16, FiveSums16, FiveSums16, FiveSums16) {
    @inline(__always) func both(_ v: SIMD8<Float>) -> SIMD16<Float> { SIMD16(lowHalf: v, highHalf: v) }
    var a0 = both(start.0), a1 = both(start.1), a2 = both(start.2), a3 = both(start.3), a4 = both(start.4)
    var e0 = a0, e1 = a1, e2 = a2, e3 = a3, e4 = a4
    var f0 = both(start1.0), f1 = both(start1.1), f2 = both(start1.2), f3 = both(start1.3), f4 = both(start1.4)
    var g0 = f0, g1 = f1, g2 = f2, g3 = f3, g4 = f4
    for t in 0..<taps {
        let d = offsets[t]
        let u = SIMD16(lowHalf: load8(input0 + d), highHalf: load8(input0 + d + below))
        let v = SIMD16(lowHalf: load8(input1 + d), highHalf: load8(input1 + d + below))
        let wt = weight + t * 5, vt = weight1 + t * 5
        var w = SIMD16<Float>(repeating: wt[0]); a0.addProduct(u, w); e0.addProduct(v, w)
        w = SIMD16(repeating: wt[1]); a1.addProduct(u, w); e1.addProduct(v, w)
        w = SIMD16(repeating: wt[2]); a2.addProduct(u, w); e2.addProduct(v, w)
        w = SIMD16(repeating: wt[3]); a3.addProduct(u, w); e3.addProduct(v, w)
        w = SIMD16(repeating: wt[4]); a4.addProduct(u, w); e4.addProduct(v, w)
        w = SIMD16(repeating: vt[0]); f0.addProduct(u, w); g0.addProduct(v, w)
        w = SIMD16(repeating: vt[1]); f1.addProduct(u, w); g1.addProduct(v, w)
        w = SIMD16(repeating: vt[2]); f2.addProduct(u, w); g2.addProduct(v, w)
        w = SIMD16(repeating: vt[3]); f3.addProduct(u, w); g3.addProduct(v, w)
        w = SIMD16(repeating: vt[4]); f4.addProduct(u, w); g4.addProduct(v, w)
    }
    return ((a0, a1, a2, a3, a4), (e0, e1, e2, e3, e4), (f0, f1, f2, f3, f4), (g0, g1, g2, g3, g4))
}
#endif

/// Copies `planes` planes of `height` rows `rowStride` floats apart (`planeStride` floats
/// between planes) into planes `height × width`, dropping what lies past `width` in a row.
@inlinable
func compactRows(
    _ source: UnsafePointer<Float>, planes: Int, planeStride: Int, height: Int, rowStride: Int, width: Int,
    into destination: UnsafeMutablePointer<Float>
) {
    for c in 0..<planes {
        for r in 0..<height {
            copyFloats(source + c * planeStride + r * rowStride, destination + (c * height + r) * width, width)
        }
    }
}

/// One sample through `layout`: `directConvolveSample` into `output` (`outChannels` planes
/// `outHeight × outWidth`) for the rows cut, or into `planes` and then copied out for the
/// wide cut.
@inlinable
func directConvolve(
    _ layout: DirectLayout, offsets: UnsafeBufferPointer<Int>, chunks: UnsafeBufferPointer<(input: Int, output: Int)>,
    outChannels: Int, packedWeight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, input: UnsafePointer<Float>,
    planes: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, outHeight: Int, outWidth: Int
) {
    directConvolveSample(
        taps: offsets.count, offsets: offsets.baseAddress!, outChannels: outChannels, packedWeight: packedWeight,
        bias: bias, input: input, chunks: chunks, output: layout.wide ? planes : output, plane: layout.plane)
    if layout.wide {
        compactRows(planes, planes: outChannels, planeStride: layout.plane, height: outHeight,
                    rowStride: layout.rowStride, width: outWidth, into: output)
    }
}

// MARK: Forward

/// The forward pass's cut of `s`'s output plane.
@inlinable
func forwardLayout(_ s: Conv2dShape) -> DirectLayout {
    DirectLayout(outHeight: s.outHeight, outWidth: s.outWidth, inputWidth: s.width, wideWorthIt: s.groupPatchSize >= 32)
}

/// Scratch floats `conv2dForwardDirect` needs per chunk of samples: in the wide layout, the
/// planes the kernel writes and one sample's input with slack.
@inlinable
func directForwardScratchCount(_ s: Conv2dShape) -> Int {
    if let block = ChannelLaneBlock.of(s) { return channelLaneTileCount(s, block) }
    let layout = forwardLayout(s)
    guard layout.wide else { return 0 }
    return s.outChannels * layout.plane + s.inChannels * s.height * s.width + DirectLayout.slack(kernelWidth: s.kernelWidth)
}

/// What a direct forward pass of a shape reads by, worked out once per call, before its
/// threads start (they then take a few samples at a time, `forEachSampleBlock`): the taps'
/// offsets, and the five-channel kernel's cut of the output plane or the channel-lane
/// block with its bands' pixel offsets.
@usableFromInline
struct DirectForward {
    @usableFromInline let shape: Conv2dShape
    /// The channel-lane block (`ChannelLaneBlock.of`), nil for the five-channel kernel.
    @usableFromInline let lanes: ChannelLaneBlock?
    /// The five-channel kernel's cut (`forwardLayout`); nil with lanes.
    @usableFromInline let layout: DirectLayout?
    /// Each tap's offset from a pixel's (or chunk's) input position (`tapOffsets`).
    @usableFromInline let offsets: [Int]
    /// With lanes, the pixel offsets of a band of `lanes.bandRows` rows and of the last band
    /// (`channelLanePixelOffsets`); empty otherwise.
    @usableFromInline let band: [Int], lastBand: [Int]

    @inlinable
    init(_ s: Conv2dShape) {
        shape = s
        lanes = ChannelLaneBlock.of(s)
        offsets = tapOffsets(s, multiple: 1)
        if let lanes {
            layout = nil
            band = channelLanePixelOffsets(s, lanes, rows: lanes.bandRows)
            lastBand = channelLanePixelOffsets(
                s, lanes, rows: s.outHeight - (s.outHeight - 1) / lanes.bandRows * lanes.bandRows)
        } else {
            layout = forwardLayout(s)
            band = []
            lastBand = []
        }
    }

    /// `weight (outChannels, taps)` packed for the kernel into `packed`: `packChannelLaneWeight`'s
    /// layout with lanes, else `packBlockedWeight`'s; both fit in
    /// `packedBlockedWeightCount(outChannels:taps:)` floats.
    @inlinable
    func packWeight(_ weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        let taps = shape.groupPatchSize
        if let lanes {
            packChannelLaneWeight(lanes, shape, weight: weight, into: packed)
        } else {
            packBlockedWeight(outChannels: shape.outChannels, taps: taps, into: packed) { o, t in weight[o * taps + t] }
        }
    }
}

/// `output = conv2d(input, weight) + bias` for `samples` (unstrided shapes), with the weight
/// packed by `DirectForward.packWeight`. In the wide layout each sample's output goes
/// through `scratch`, and the batch's last sample is first copied there with zero slack, so
/// that the chunks' reach past it stays in memory this call owns.
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - output: `(batch, outChannels, outHeight, outWidth)`; the samples' part overwritten.
///   - scratch: `directForwardScratchCount(s)` floats of this thread.
@inlinable
func conv2dForwardDirect(
    _ forward: DirectForward, samples: Range<Int>, input: UnsafePointer<Float>, packedWeight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
) {
    let outputSample = forward.shape.outChannels * forward.shape.outPlane
    conv2dForwardDirect(forward, samples: samples, input: input, packedWeight: packedWeight, bias: bias,
                        scratch: scratch, outputOf: { output + $0 * outputSample }, then: { _ in })
}

/// `conv2dForwardDirect` writing sample `n`'s output at `outputOf(n)` and calling `then(n)`
/// once it is there (`conv2dMaxPool2dForward` pools it while it is in cache).
@inlinable
func conv2dForwardDirect(
    _ forward: DirectForward, samples: Range<Int>, input: UnsafePointer<Float>, packedWeight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
    outputOf: (Int) -> UnsafeMutablePointer<Float>, then: (Int) -> Void
) {
    let s = forward.shape
    guard let layout = forward.layout else {
        conv2dForwardChannelLanes(forward, samples: samples, input: input, packedWeight: packedWeight, bias: bias,
                                  tile: scratch) { n, rows, tile in
            transposeRows(tile, rows: rows.count * s.outWidth, columns: s.outChannels, sourceStride: s.outChannels,
                          into: outputOf(n) + rows.lowerBound * s.outWidth, destinationStride: s.outPlane)
            if rows.upperBound == s.outHeight { then(n) }
        }
        return
    }
    let inputSample = s.inChannels * s.height * s.width
    let planes = scratch, lastInput = scratch + s.outChannels * layout.plane
    forward.offsets.withUnsafeBufferPointer { offsets in
        layout.chunks.withUnsafeBufferPointer { chunks in
            for n in samples {
                var x = input + n * inputSample
                if layout.wide && n == s.batch - 1 {
                    copyFloats(x, lastInput, inputSample)
                    (lastInput + inputSample).update(repeating: 0, count: DirectLayout.slack(kernelWidth: s.kernelWidth))
                    x = UnsafePointer(lastInput)
                }
                directConvolve(layout, offsets: offsets, chunks: chunks, outChannels: s.outChannels,
                               packedWeight: packedWeight, bias: bias, input: x, planes: planes,
                               output: outputOf(n), outHeight: s.outHeight, outWidth: s.outWidth)
                then(n)
            }
        }
    }
}

// MARK: Input gradient

/// The input of the convolution whose forward pass is `shape`'s input gradient: the output
/// gradient padded by `k − 1` on every side, `(outChannels, height + kH − 1, width + kW − 1)`.
@inlinable
func transposedPaddedSize(_ s: Conv2dShape) -> (height: Int, width: Int) {
    (s.height + s.kernelHeight - 1, s.width + s.kernelWidth - 1)
}

/// The input-gradient pass's cut of `s`'s input plane.
@inlinable
func backwardInputLayout(_ s: Conv2dShape) -> DirectLayout {
    DirectLayout(outHeight: s.height, outWidth: s.width, inputWidth: transposedPaddedSize(s).width,
                 wideWorthIt: s.outChannels * s.kernelHeight * s.kernelWidth >= 32)
}

/// Scratch floats `conv2dBackwardInputDirect` needs per chunk of samples: one sample's
/// padded output gradient with slack, and in the wide layout the planes the kernel writes.
@inlinable
func directBackwardInputScratchCount(_ s: Conv2dShape) -> Int {
    let padded = transposedPaddedSize(s), layout = backwardInputLayout(s)
    return s.outChannels * padded.height * padded.width + DirectLayout.slack(kernelWidth: s.kernelWidth)
        + (layout.wide ? s.inChannels * layout.plane : 0)
}

/// Packs `weight (outChannels, inChannels, kH, kW)` for `conv2dBackwardInputDirect`: as the
/// forward weight of the transposed convolution, `w'(c, (o, a, b)) = weight(o, c, kH−1−a, kW−1−b)`.
@inlinable
func packTransposedWeight(_ s: Conv2dShape, weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
    let kH = s.kernelHeight, kW = s.kernelWidth, kernel = kH * kW
    packBlockedWeight(outChannels: s.inChannels, taps: s.outChannels * kernel, into: packed) { c, t in
        let o = t / kernel, a = t % kernel / kW, b = t % kW
        return weight[((o * s.inChannels + c) * kH + (kH - 1 - a)) * kW + (kW - 1 - b)]
    }
}

/// `gradInput` for `samples` (unstrided shapes, dense gradient): each sample's output
/// gradient is padded into `scratch` and convolved with the transposed weight
/// (`packTransposedWeight`).
///
/// - Parameters:
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - gradInput: `(batch, inChannels, height, width)`; the samples' part overwritten.
///   - scratch: `directBackwardInputScratchCount(s)` floats of this chunk.
@inlinable
func conv2dBackwardInputDirect(
    _ s: Conv2dShape, samples: Range<Int>, gradOutput: UnsafePointer<Float>, packedWeight: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
) {
    let (paddedH, paddedW) = transposedPaddedSize(s)
    let layout = backwardInputLayout(s)
    let kH = s.kernelHeight, kW = s.kernelWidth
    var offsets: [Int] = []
    for o in 0..<s.outChannels {
        for a in 0..<kH { for b in 0..<kW { offsets.append((o * paddedH + a) * paddedW + b) } }
    }
    let paddedCount = s.outChannels * paddedH * paddedW + DirectLayout.slack(kernelWidth: kW)
    let padded = scratch, planes = scratch + paddedCount
    let outputSample = s.outChannels * s.outPlane, inputSample = s.inChannels * s.height * s.width
    padded.update(repeating: 0, count: paddedCount)
    offsets.withUnsafeBufferPointer { offsets in
        layout.chunks.withUnsafeBufferPointer { chunks in
            for n in samples {
                // The borders and slack stay zero; only the interior is rewritten per sample.
                let g = gradOutput + n * outputSample
                for o in 0..<s.outChannels {
                    for r in 0..<s.outHeight {
                        copyFloats(g + (o * s.outHeight + r) * s.outWidth,
                                   padded + (o * paddedH + r + kH - 1) * paddedW + kW - 1, s.outWidth)
                    }
                }
                directConvolve(layout, offsets: offsets, chunks: chunks, outChannels: s.inChannels,
                               packedWeight: packedWeight, bias: nil, input: padded, planes: planes,
                               output: gradInput + n * inputSample, outHeight: s.height, outWidth: s.width)
            }
        }
    }
}

// MARK: Weight gradient

/// The weight-gradient kernel's chunks, none overlapping so that each gradient counts once:
/// along each output row when rows are a multiple of 8 wide, else along a plane as wide as the
/// input (rounded up to a multiple of 8), with the gradient copied into that plane and zero
/// past each row's `outWidth`.
@usableFromInline
struct WeightGradientLayout {
    @usableFromInline var rowStride: Int
    @usableFromInline var plane: Int
    /// Each chunk's first pixel: its offset in the gradient plane and in the input sample.
    @usableFromInline var chunks: [(output: Int, input: Int)]

    @inlinable
    init(_ s: Conv2dShape) {
        if s.outWidth % 8 == 0 {
            rowStride = s.outWidth
            plane = s.outPlane
            chunks = []
            for r in 0..<s.outHeight {
                for column in stride(from: 0, to: s.outWidth, by: 8) { chunks.append((r * s.outWidth + column, r * s.width + column)) }
            }
        } else {
            rowStride = s.width
            plane = (s.outHeight * s.width + 7) / 8 * 8
            chunks = stride(from: 0, to: plane, by: 8).map { ($0, $0) }
        }
    }
}

/// Samples `conv2dBackwardWeightBlocked` sums in registers before it stores its sums: enough
/// for about 64 chunks.
@inlinable
func weightGradientSampleBlock(_ s: Conv2dShape) -> Int {
    max(1, min(s.batch, 64 / max(WeightGradientLayout(s).chunks.count, 1)))
}

/// Scratch floats `conv2dBackwardWeightBlocked` needs per chunk of samples: 8-lane partial
/// sums for every (output channel, tap) (channels rounded up to 4, taps to 3); four channels
/// of a block of samples' gradient in the layout's planes (zero past each row's `outWidth`);
/// and the batch's last sample with slack.
@inlinable
func blockedBackwardWeightScratchCount(_ s: Conv2dShape) -> Int {
    let layout = WeightGradientLayout(s)
    let partial = (s.outChannels + 3) / 4 * 4 * ((s.groupPatchSize + 2) / 3 * 3) * 8
    return partial + 4 * weightGradientSampleBlock(s) * layout.plane
        + s.inChannels * s.height * s.width + DirectLayout.slack(kernelWidth: s.kernelWidth)
}

/// The weight and bias gradients of `samples` (unstrided shapes), written (not added) to
/// `gradWeight` and `gradBias`.
///
/// For each block of samples (`weightGradientSampleBlock`), block of four output channels
/// and block of three taps, twelve 8-lane sums run over the samples' chunks in order and wait
/// in `scratch` between blocks; at the end each sum's lanes are added in lane order. The
/// gradient is first copied into the layout's planes, zero past each row's `outWidth`, so
/// that every lane of every chunk counts once. The order is fixed, so the result depends
/// only on the inputs and `samples`.
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - gradWeight: `(outChannels, inChannels, kernelHeight, kernelWidth)`, overwritten.
///   - gradBias: `(outChannels)`, overwritten; nil to skip it.
///   - scratch: `blockedBackwardWeightScratchCount(s)` floats of this chunk.
@inlinable
func conv2dBackwardWeightBlocked(
    _ s: Conv2dShape, samples: Range<Int>, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
    gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>
) {
    let taps = s.groupPatchSize, plane = s.outPlane, outW = s.outWidth
    let inputSample = s.inChannels * s.height * s.width, outputSample = s.outChannels * plane
    let layout = WeightGradientLayout(s)
    let offsets = tapOffsets(s, multiple: 3), paddedTaps = offsets.count
    let sampleBlock = weightGradientSampleBlock(s)
    let partialCount = (s.outChannels + 3) / 4 * 4 * paddedTaps * 8
    let partial = scratch, gradientPlanes = scratch + partialCount
    let lastInput = gradientPlanes + 4 * sampleBlock * layout.plane
    partial.update(repeating: 0, count: partialCount)
    gradientPlanes.update(repeating: 0, count: 4 * sampleBlock * layout.plane)
    var inputs = [UnsafePointer<Float>](repeating: input, count: sampleBlock)
    offsets.withUnsafeBufferPointer { offsets in
        layout.chunks.withUnsafeBufferPointer { chunks in
            for n0 in stride(from: samples.lowerBound, to: samples.upperBound, by: sampleBlock) {
                let block = n0..<min(n0 + sampleBlock, samples.upperBound)
                for (i, n) in block.enumerated() {
                    inputs[i] = input + n * inputSample
                    if n == s.batch - 1 {
                        copyFloats(inputs[i], lastInput, inputSample)
                        (lastInput + inputSample).update(repeating: 0, count: DirectLayout.slack(kernelWidth: s.kernelWidth))
                        inputs[i] = UnsafePointer(lastInput)
                    }
                }
                for b in 0..<(s.outChannels + 3) / 4 {
                    // Channels past the last repeat it; their sums land in the padding rows.
                    for (i, n) in block.enumerated() {
                        for j in 0..<4 {
                            let g = gradOutput + n * outputSample + min(b * 4 + j, s.outChannels - 1) * plane
                            let rows = gradientPlanes + (i * 4 + j) * layout.plane
                            for r in 0..<s.outHeight { copyFloats(g + r * outW, rows + r * layout.rowStride, outW) }
                        }
                    }
                    for t in stride(from: 0, to: paddedTaps, by: 3) {
                        let d0 = offsets[t], d1 = offsets[t + 1], d2 = offsets[t + 2]
                        let sums = partial + (b * 4 * paddedTaps + t) * 8, row = paddedTaps * 8
                        var a00 = load8(sums), a01 = load8(sums + 8), a02 = load8(sums + 16)
                        var a10 = load8(sums + row), a11 = load8(sums + row + 8), a12 = load8(sums + row + 16)
                        var a20 = load8(sums + 2 * row), a21 = load8(sums + 2 * row + 8), a22 = load8(sums + 2 * row + 16)
                        var a30 = load8(sums + 3 * row), a31 = load8(sums + 3 * row + 8), a32 = load8(sums + 3 * row + 16)
                        for i in 0..<block.count {
                            let x = inputs[i]
                            let g0 = UnsafePointer(gradientPlanes + i * 4 * layout.plane), p = layout.plane
                            for c in chunks {
                                let xc = x + c.input
                                let x0 = load8(xc + d0), x1 = load8(xc + d1), x2 = load8(xc + d2)
                                let gc = g0 + c.output
                                var v = load8(gc)
                                a00.addProduct(v, x0); a01.addProduct(v, x1); a02.addProduct(v, x2)
                                v = load8(gc + p)
                                a10.addProduct(v, x0); a11.addProduct(v, x1); a12.addProduct(v, x2)
                                v = load8(gc + 2 * p)
                                a20.addProduct(v, x0); a21.addProduct(v, x1); a22.addProduct(v, x2)
                                v = load8(gc + 3 * p)
                                a30.addProduct(v, x0); a31.addProduct(v, x1); a32.addProduct(v, x2)
                            }
                        }
                        store8(a00, sums); store8(a01, sums + 8); store8(a02, sums + 16)
                        store8(a10, sums + row); store8(a11, sums + row + 8); store8(a12, sums + row + 16)
                        store8(a20, sums + 2 * row); store8(a21, sums + 2 * row + 8); store8(a22, sums + 2 * row + 16)
                        store8(a30, sums + 3 * row); store8(a31, sums + 3 * row + 8); store8(a32, sums + 3 * row + 16)
                    }
                }
            }
        }
    }
    for o in 0..<s.outChannels {
        for t in 0..<taps { gradWeight[o * taps + t] = load8(partial + (o * paddedTaps + t) * 8).sum() }
    }
    if let gradBias {
        for o in 0..<s.outChannels {
            var sum: Float = 0
            for n in samples { sum += planeSum(gradOutput + n * outputSample + o * plane, count: plane) }
            gradBias[o] = sum
        }
    }
}
