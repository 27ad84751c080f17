// MARK: - Direct forward convolution with the output channels across the lanes

// `directConvolveSample` puts eight neighbouring output pixels in a vector and broadcasts
// five output channels' weights: it wastes lanes where output rows are not a multiple of 8
// wide (the published speedrun net's conv2: 10 wide, 100 of 120 lanes through the wide cut,
// and a duplicated odd chunk) and channel slots where the channels are not a multiple of 5
// (32 in 35 slots). This kernel puts eight output channels in a vector and broadcasts
// input pixels instead: with 16 output channels × 6 pixels (24 × 4) at a time, two (three)
// weight loads and six (four) broadcasts feed twelve fused multiply-adds, every lane
// useful, whatever the plane's shape. Its output is channels-last, one `outChannels` row per
// pixel (a tile in scratch), which the pool reads directly (`poolChannelLaneTile`) or
// which is transposed into NCHW (`transposeRows`); under a 2×2 pool, 24 channels take one
// window's four pixels at a time and pool them in registers (`channelLane24PoolSample`).
//
// Each output is `bias + Σ_t input · weight` in tap order, one fused multiply-add per tap,
// as in `directConvolveSample`: the two kernels give the same bits.

/// The register block of a channel-lane shape, `vectors` × 8 output channels × `pixels`,
/// and the output rows a tile holds (`bandRows`).
@usableFromInline
struct ChannelLaneBlock: Equatable {
    @usableFromInline var vectors: Int
    @usableFromInline var pixels: Int
    /// Output rows convolved into the tile at a time: the whole plane when its tile takes
    /// at most 16 KB, else the most rows, an even number (whole 2×2 pool windows), whose
    /// tile does (the published speedrun net's conv1: 6 of 24 rows, 13.5 KB instead of 54).
    /// A tile that stays in the level-1 cache while it is pooled.
    @usableFromInline var bandRows: Int

    @inlinable init(vectors: Int, pixels: Int, bandRows: Int) {
        self.vectors = vectors
        self.pixels = pixels
        self.bandRows = bandRows
    }

    /// 16 × 6 when the output channels are a multiple of 16, 24 × 4 when a multiple of 24,
    /// with at least 32 taps; nil otherwise (the five-channel kernel takes them, but see
    /// `pooled`), and under `Conv2dPlan.fiveChannelForwardOnly`. `mnist-bench --ops --config FILE` times each
    /// convolution both ways ("5-ch stored" rows). At f1aabb6 (batch 256, 2 threads, Zen 3,
    /// one run of each config): the published speedrun net's conv2 (24 → 32 channels, 10×10)
    /// forward and pool 2.72 ms against 3.93 (4.69 against 6.54 at 1 thread),
    /// `configs/speedrun.json`'s conv2 (8 → 32, 8×8) 0.60 against 0.74, mnist-best's conv3
    /// (32 → 64, 10×10) 3.5 against 3.8; where 8-wide rows already fill the five-channel
    /// kernel's lanes, about the same: LeNet's conv2 (6 → 16, 8×8) 2.28 against 2.32,
    /// mnist-best's conv2 (26 → 24 wide) 9.4–13.8 against 9.7–12.3 and conv4 (8×8)
    /// 3.9–5.0 against 4.1–4.6 over three runs. The 32-tap floor keeps first layers (25
    /// taps) on the five-channel kernel, which pools them in registers: lowered to 25, the
    /// published net's conv1 ran no faster in lanes pooled from the tile (rechecked in
    /// `pooled`, whose kernel pools in registers and does win in 8-lane builds).
    @inlinable
    static func of(_ s: Conv2dShape) -> ChannelLaneBlock? { of(s, minimumTaps: 32) }

    /// `of(_:)` with another floor of taps.
    @inlinable
    static func of(_ s: Conv2dShape, minimumTaps: Int) -> ChannelLaneBlock? {
        guard s.groupPatchSize >= minimumTaps && !Conv2dPlan.fiveChannelForwardOnly else { return nil }
        let rowBytes = s.outWidth * s.outChannels * MemoryLayout<Float>.size
        var bandRows = max(2, (16 << 10) / rowBytes / 2 * 2)
        if bandRows >= s.outHeight { bandRows = s.outHeight }
        #if MNIST_ISA_AVX512
        if s.outChannels % 32 == 0 { return ChannelLaneBlock(vectors: 4, pixels: 6, bandRows: bandRows) }
        if s.outChannels % 16 == 0 { return ChannelLaneBlock(vectors: 2, pixels: 8, bandRows: bandRows) }
        #else
        if s.outChannels % 16 == 0 { return ChannelLaneBlock(vectors: 2, pixels: 6, bandRows: bandRows) }
        #endif
        if s.outChannels % 24 == 0 { return ChannelLaneBlock(vectors: 3, pixels: 4, bandRows: bandRows) }
        return nil
    }

    /// The block of `conv2dMaxPool2dForwardChannelLanes` (each 2×2 window's four pixels one
    /// block, pooled in registers) for a direct convolution under `pool`: 24 × 4, where the
    /// shape's lanes are 24 × 4 (`of`) or, in 8-lane builds, would be but for the 32-tap
    /// floor, from 25 taps (the published speedrun net's conv1, 1 → 24 channels, 5×5), under
    /// a 2×2, stride-2 pool (`isSimple2x2`); nil otherwise. In 16-lane builds the floor stays
    /// (25 to 31 taps keep the 16-lane five-channel kernel; a first layer takes the window
    /// lanes, `Conv2dWindowLanes.swift`): the 8-lane kernel there is measured only where it
    /// replaces the tile, `configs/trials/speedrun-conv2-24.json`'s conv2 (8 → 24, 72 taps;
    /// `taskset -c 1 mnist-bench --ops --config FILE --threads 1`, best of three alternating
    /// runs against 1c6c5a6's build: training's pass 0.691 ms against 0.718, evaluation 0.670
    /// against 0.773). Pooled in registers, the 24 × 4 kernel beats the
    /// five-channel one on conv1 (which pools in registers too) in evaluation: `taskset -c 1
    /// mnist-bench --ops --config configs/trials/speedrun-published.json --threads 1`, AVX2
    /// builds (`MNIST_TARGET_CPU=haswell`) on the 2-core Emerald Rapids Xeon, alternating,
    /// 2.78, 3.33, 3.51 ms against 2.98, 3.74, 3.88 (the machine slowing between pairs); the
    /// whole evaluation of the 60,000 training images (`mnist-eval --split train --threads 2`)
    /// 1.12–1.27 s against 1.04–1.46, shorter in 5 of 6 pairs. Training's pass (with the
    /// argmax) about the same: 3.29, 4.41, 4.20 against 3.34, 4.42, 4.19. From the tile
    /// instead (the 32-tap floor lowered to 25), conv1's evaluation took 3.15–3.39 ms.
    @inlinable
    static func pooled(_ s: Conv2dShape, pool: Pool2dShape) -> ChannelLaneBlock? {
        #if MNIST_ISA_AVX512
        let minimumTaps = 32
        #else
        let minimumTaps = 25
        #endif
        guard isSimple2x2(pool), let block = of(s, minimumTaps: minimumTaps),
              block.vectors == 3 && block.pixels == 4 else { return nil }
        return block
    }

    /// Pixels of a tile of `rows` output rows `outWidth` wide: rounded up to a whole number
    /// of blocks (the last block repeats the last pixel).
    @inlinable
    func tilePixels(rows: Int, outWidth: Int) -> Int { (rows * outWidth + pixels - 1) / pixels * pixels }
}

/// Floats of one channel-lane tile, `(tilePixels, outChannels)` for `block.bandRows` rows.
@inlinable
func channelLaneTileCount(_ s: Conv2dShape, _ block: ChannelLaneBlock) -> Int {
    block.tilePixels(rows: block.bandRows, outWidth: s.outWidth) * s.outChannels
}

/// `weight(o, t)` laid out `(group, tap, block.vectors · 8)`: each group's channel vectors
/// for a tap lie together, and a group's taps one after another, read front to back
/// (`packWeightGroups`; `ChannelLaneBlock.of` takes only whole groups of channels).
@inlinable
func packChannelLaneWeight(
    _ block: ChannelLaneBlock, outChannels: Int, taps: Int, into packed: UnsafeMutablePointer<Float>,
    weight: (_ o: Int, _ t: Int) -> Float
) {
    packWeightGroups(group: block.vectors * 8, outChannels: outChannels, taps: taps, into: packed, weight: weight)
}

/// `weight (outChannels, taps)` of `s`, as stored, in `packChannelLaneWeight`'s layout.
@inlinable
func packChannelLaneWeight(
    _ block: ChannelLaneBlock, _ s: Conv2dShape, weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>
) {
    let taps = s.groupPatchSize
    packChannelLaneWeight(block, outChannels: s.outChannels, taps: taps, into: packed) { o, t in weight[o * taps + t] }
}

/// Each tile pixel's offset from its band's first input row, for a band of `rows` output
/// rows: pixel `p` at `(p / outWidth) · width + p % outWidth`, past the band the last pixel
/// again.
@inlinable
func channelLanePixelOffsets(_ s: Conv2dShape, _ block: ChannelLaneBlock, rows: Int) -> [Int] {
    let count = rows * s.outWidth
    return (0..<block.tilePixels(rows: rows, outWidth: s.outWidth)).map { p in
        let q = min(p, count - 1)
        return q / s.outWidth * s.width + q % s.outWidth
    }
}

/// One band of a sample of a direct convolution, output channels across the lanes:
/// `tile[p · outChannels + o] = bias[o] + Σ_t input[pixelOffsets[p] + offsets[t]] · w(o, t)`
/// (`input` at the band's first input row).
///
/// - Parameters:
///   - offsets: `taps` offsets of the taps from a pixel's input position (`tapOffsets`).
///   - packedWeight: `packChannelLaneWeight`'s layout of `w`.
///   - pixelOffsets: the band's `channelLanePixelOffsets`, a multiple of `block.pixels`.
///   - tile: `(pixelOffsets.count, outChannels)`, overwritten.
@inlinable
func channelLaneConvolveSample(
    _ block: ChannelLaneBlock, taps: Int, offsets: UnsafePointer<Int>, outChannels: Int,
    packedWeight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, input: UnsafePointer<Float>,
    pixelOffsets: UnsafeBufferPointer<Int>, tile: UnsafeMutablePointer<Float>
) {
    let group = block.vectors * 8
    @inline(__always) func start(_ o: Int) -> SIMD8<Float> { bias.map { load8($0 + o) } ?? SIMD8() }
    @inline(__always) func start16(_ o: Int) -> SIMD16<Float> { bias.map { load16($0 + o) } ?? SIMD16() }
    for o0 in stride(from: 0, to: outChannels, by: group) {
        if block.vectors == 4 {
            channelLaneTwoVectors(taps: taps, offsets: offsets, stride: outChannels, weight: packedWeight + o0 * taps,
                                  start: (start16(o0), start16(o0 + 16)), input: input, pixelOffsets: pixelOffsets,
                                  tile: tile + o0)
        } else if block.pixels == 8 {
            channelLane16x8(taps: taps, offsets: offsets, stride: outChannels, weight: packedWeight + o0 * taps,
                            start: start16(o0), input: input, pixelOffsets: pixelOffsets, tile: tile + o0)
        } else if block.vectors == 2 {
            channelLaneTwoVectors(taps: taps, offsets: offsets, stride: outChannels, weight: packedWeight + o0 * taps,
                                  start: (start(o0), start(o0 + 8)), input: input, pixelOffsets: pixelOffsets,
                                  tile: tile + o0)
        } else {
            channelLane24x4(taps: taps, offsets: offsets, stride: outChannels, weight: packedWeight + o0 * taps,
                            start: (start(o0), start(o0 + 8), start(o0 + 16)), input: input,
                            pixelOffsets: pixelOffsets, tile: tile + o0)
        }
    }
}

/// Two vectors of channels × 6 pixels at a time, twelve sums in registers over all taps:
/// 16 channels with 8-lane vectors (`SIMD8`), 32 with 16-lane ones (`SIMD16`, AVX-512).
/// `weight` is the group's packed weight, two vectors per tap; `tile` starts at the group's
/// first channel, its rows `stride` floats apart.
@inlinable
func channelLaneTwoVectors<V: SIMD>(
    taps: Int, offsets: UnsafePointer<Int>, stride rowStride: Int, weight: UnsafePointer<Float>,
    start: (V, V), input: UnsafePointer<Float>,
    pixelOffsets: UnsafeBufferPointer<Int>, tile: UnsafeMutablePointer<Float>
) where V.Scalar == Float {
    let lanes = V.scalarCount
    @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }
    var p = 0
    while p < pixelOffsets.count {
        let x0 = input + pixelOffsets[p], x1 = input + pixelOffsets[p + 1], x2 = input + pixelOffsets[p + 2]
        let x3 = input + pixelOffsets[p + 3], x4 = input + pixelOffsets[p + 4], x5 = input + pixelOffsets[p + 5]
        var a0 = start.0, b0 = start.1, a1 = start.0, b1 = start.1, a2 = start.0, b2 = start.1
        var a3 = start.0, b3 = start.1, a4 = start.0, b4 = start.1, a5 = start.0, b5 = start.1
        var w = weight
        for t in 0..<taps {
            let d = offsets[t]
            let u = load(w), v = load(w + lanes)
            var x = V(repeating: x0[d]); a0.addProduct(x, u); b0.addProduct(x, v)
            x = V(repeating: x1[d]); a1.addProduct(x, u); b1.addProduct(x, v)
            x = V(repeating: x2[d]); a2.addProduct(x, u); b2.addProduct(x, v)
            x = V(repeating: x3[d]); a3.addProduct(x, u); b3.addProduct(x, v)
            x = V(repeating: x4[d]); a4.addProduct(x, u); b4.addProduct(x, v)
            x = V(repeating: x5[d]); a5.addProduct(x, u); b5.addProduct(x, v)
            w += 2 * lanes
        }
        let row = tile + p * rowStride
        store(a0, row); store(b0, row + lanes)
        store(a1, row + rowStride); store(b1, row + rowStride + lanes)
        store(a2, row + 2 * rowStride); store(b2, row + 2 * rowStride + lanes)
        store(a3, row + 3 * rowStride); store(b3, row + 3 * rowStride + lanes)
        store(a4, row + 4 * rowStride); store(b4, row + 4 * rowStride + lanes)
        store(a5, row + 5 * rowStride); store(b5, row + 5 * rowStride + lanes)
        p += 6
    }
}

/// 16 channels (one 16-lane vector, AVX-512) × 8 pixels at a time: eight sums in registers
/// over all taps, each input pixel broadcast from memory into its fused multiply-add.
@inlinable
func channelLane16x8(
    taps: Int, offsets: UnsafePointer<Int>, stride rowStride: Int, weight: UnsafePointer<Float>,
    start: SIMD16<Float>, input: UnsafePointer<Float>,
    pixelOffsets: UnsafeBufferPointer<Int>, tile: UnsafeMutablePointer<Float>
) {
    var p = 0
    while p < pixelOffsets.count {
        let x0 = input + pixelOffsets[p], x1 = input + pixelOffsets[p + 1], x2 = input + pixelOffsets[p + 2]
        let x3 = input + pixelOffsets[p + 3], x4 = input + pixelOffsets[p + 4], x5 = input + pixelOffsets[p + 5]
        let x6 = input + pixelOffsets[p + 6], x7 = input + pixelOffsets[p + 7]
        var a0 = start, a1 = start, a2 = start, a3 = start, a4 = start, a5 = start, a6 = start, a7 = start
        var w = weight
        for t in 0..<taps {
            let d = offsets[t]
            let u = load16(w)
            a0.addProduct(SIMD16(repeating: x0[d]), u); a1.addProduct(SIMD16(repeating: x1[d]), u)
            a2.addProduct(SIMD16(repeating: x2[d]), u); a3.addProduct(SIMD16(repeating: x3[d]), u)
            a4.addProduct(SIMD16(repeating: x4[d]), u); a5.addProduct(SIMD16(repeating: x5[d]), u)
            a6.addProduct(SIMD16(repeating: x6[d]), u); a7.addProduct(SIMD16(repeating: x7[d]), u)
            w += 16
        }
        let row = tile + p * rowStride
        store16(a0, row); store16(a1, row + rowStride); store16(a2, row + 2 * rowStride)
        store16(a3, row + 3 * rowStride); store16(a4, row + 4 * rowStride); store16(a5, row + 5 * rowStride)
        store16(a6, row + 6 * rowStride); store16(a7, row + 7 * rowStride)
        p += 8
    }
}

/// Four pixels' 24 channels (three vectors each), `start` plus one fused multiply-add per
/// tap in tap order: twelve sums in registers over all taps, `weight` the group's packed
/// weight (24 floats a tap), each pixel's input at `x0 ... x3`. `channelLane24x4`'s and
/// `channelLane24PoolSample`'s, so that the two give the same bits.
@usableFromInline @_transparent
func channelLane24Sums(
    taps: Int, offsets: UnsafePointer<Int>, weight: UnsafePointer<Float>,
    start: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>),
    _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>
) -> (ThreeVectors, ThreeVectors, ThreeVectors, ThreeVectors) {
    var a0 = start.0, b0 = start.1, c0 = start.2, a1 = start.0, b1 = start.1, c1 = start.2
    var a2 = start.0, b2 = start.1, c2 = start.2, a3 = start.0, b3 = start.1, c3 = start.2
    var w = weight
    for t in 0..<taps {
        let d = offsets[t]
        let u = load8(w), v = load8(w + 8), z = load8(w + 16)
        var x = SIMD8<Float>(repeating: x0[d]); a0.addProduct(x, u); b0.addProduct(x, v); c0.addProduct(x, z)
        x = SIMD8(repeating: x1[d]); a1.addProduct(x, u); b1.addProduct(x, v); c1.addProduct(x, z)
        x = SIMD8(repeating: x2[d]); a2.addProduct(x, u); b2.addProduct(x, v); c2.addProduct(x, z)
        x = SIMD8(repeating: x3[d]); a3.addProduct(x, u); b3.addProduct(x, v); c3.addProduct(x, z)
        w += 24
    }
    return ((a0, b0, c0), (a1, b1, c1), (a2, b2, c2), (a3, b3, c3))
}

/// Three vectors of eight channels.
@usableFromInline typealias ThreeVectors = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

/// 24 channels (three vectors) × 4 pixels at a time: twelve sums in registers over all taps
/// (`channelLane24Sums`).
@inlinable
func channelLane24x4(
    taps: Int, offsets: UnsafePointer<Int>, stride rowStride: Int, weight: UnsafePointer<Float>,
    start: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), input: UnsafePointer<Float>,
    pixelOffsets: UnsafeBufferPointer<Int>, tile: UnsafeMutablePointer<Float>
) {
    var p = 0
    while p < pixelOffsets.count {
        let ((a0, b0, c0), (a1, b1, c1), (a2, b2, c2), (a3, b3, c3)) = channelLane24Sums(
            taps: taps, offsets: offsets, weight: weight, start: start,
            input + pixelOffsets[p], input + pixelOffsets[p + 1], input + pixelOffsets[p + 2], input + pixelOffsets[p + 3])
        let row = tile + p * rowStride
        store8(a0, row); store8(b0, row + 8); store8(c0, row + 16)
        store8(a1, row + rowStride); store8(b1, row + rowStride + 8); store8(c1, row + rowStride + 16)
        store8(a2, row + 2 * rowStride); store8(b2, row + 2 * rowStride + 8); store8(c2, row + 2 * rowStride + 16)
        store8(a3, row + 3 * rowStride); store8(b3, row + 3 * rowStride + 8); store8(c3, row + 3 * rowStride + 16)
        p += 4
    }
}

/// `destination[c · destinationStride + r] = source[r · sourceStride + c]` for `r < rows`
/// and `c < columns`: eight rows × eight columns at a time through `transpose8x8`, the rest
/// one float at a time. A channel-lane tile's band into NCHW (rows the band's pixels,
/// columns the channels), and a sample into channels-last for Winograd (rows the
/// channels, columns the pixels).
@inlinable
func transposeRows(
    _ source: UnsafePointer<Float>, rows: Int, columns: Int, sourceStride: Int,
    into destination: UnsafeMutablePointer<Float>, destinationStride: Int
) {
    let fullRows = rows / 8 * 8, fullColumns = columns / 8 * 8
    for r0 in stride(from: 0, to: fullRows, by: 8) {
        let top = source + r0 * sourceStride
        for c0 in stride(from: 0, to: fullColumns, by: 8) {
            var v0 = load8(top + c0), v1 = load8(top + sourceStride + c0)
            var v2 = load8(top + 2 * sourceStride + c0), v3 = load8(top + 3 * sourceStride + c0)
            var v4 = load8(top + 4 * sourceStride + c0), v5 = load8(top + 5 * sourceStride + c0)
            var v6 = load8(top + 6 * sourceStride + c0), v7 = load8(top + 7 * sourceStride + c0)
            transpose8x8(&v0, &v1, &v2, &v3, &v4, &v5, &v6, &v7)
            storeRows(v0, v1, v2, v3, v4, v5, v6, v7, to: destination + c0 * destinationStride + r0,
                      stride: destinationStride)
        }
        for c in fullColumns..<columns {
            for r in r0..<(r0 + 8) { destination[c * destinationStride + r] = source[r * sourceStride + c] }
        }
    }
    for r in fullRows..<rows {
        for c in 0..<columns { destination[c * destinationStride + r] = source[r * sourceStride + c] }
    }
}

/// `v0 ... v7` stored as eight rows `stride` floats apart from `destination`.
@inlinable @inline(__always)
func storeRows(
    _ v0: SIMD8<Float>, _ v1: SIMD8<Float>, _ v2: SIMD8<Float>, _ v3: SIMD8<Float>,
    _ v4: SIMD8<Float>, _ v5: SIMD8<Float>, _ v6: SIMD8<Float>, _ v7: SIMD8<Float>,
    to destination: UnsafeMutablePointer<Float>, stride: Int
) {
    store8(v0, destination); store8(v1, destination + stride)
    store8(v2, destination + 2 * stride); store8(v3, destination + 3 * stride)
    store8(v4, destination + 4 * stride); store8(v5, destination + 5 * stride)
    store8(v6, destination + 6 * stride); store8(v7, destination + 7 * stride)
}

/// Whether `pool` is the 2×2, stride-2 pool without padding, dilation or a partial last
/// window (ceil mode): LeNet's, which `pool2x2Plane` and `poolChannelLaneTile` compute.
@inlinable
func isSimple2x2(_ s: Pool2dShape) -> Bool {
    s.kernelH == 2 && s.kernelW == 2 && s.strideH == 2 && s.strideW == 2
        && s.padH == 0 && s.padW == 0 && s.dilationH == 1 && s.dilationW == 1
        && s.outHeight == s.height / 2 && s.outWidth == s.width / 2
}

/// The 2×2, stride-2 max-pool (`isSimple2x2`) of the windows `range` of a sample whose
/// rows lie in a channel-lane tile, with `maxPool2dPlanes`' rule (the first maximum in
/// row-major order wins, NaN propagates), written in NCHW: `output[o · pooledPlane + q]`,
/// `argmax` likewise (the index within the convolution's output plane), then ReLU when
/// `relu` (NaN kept).
///
/// Eight windows × eight channels at a time are pooled into eight vectors (one per window)
/// and transposed in registers (`transpose8x8`), so that each channel's eight windows are
/// stored as one vector; fewer than 8 windows are stored lane by lane. When the windows are
/// not a multiple of 8, the last eight overlap the ones before and store the same values
/// again.
///
/// - Parameters:
///   - windows: each window's top-left index in the convolution's output plane,
///     `pooledPlane` of them (`poolWindowOrigins`).
///   - tile: where pixel 0 of the plane would lie in the tile (the tile minus its band's
///     first pixel), so that `tile + windows[q] · outChannels` is window `q`'s first pixel.
@inlinable
func poolChannelLaneTile(
    _ s: Pool2dShape, windows: UnsafeBufferPointer<Int32>, range: Range<Int>, tile: UnsafePointer<Float>,
    outChannels: Int, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>?, relu: Bool
) {
    let pooledPlane = windows.count
    let pool = TileWindows(tile: tile, windows: windows, width: s.width, outChannels: outChannels,
                           indexed: argmax != nil, relu: relu)
    guard range.count >= 8 else {
        for q in range {
            for o in stride(from: 0, to: outChannels, by: 8) {
                let (best, index) = pool[q, o]
                for lane in 0..<8 {
                    output[(o + lane) * pooledPlane + q] = best[lane]
                    argmax?[(o + lane) * pooledPlane + q] = index[lane]
                }
            }
        }
        return
    }
    var q0 = range.lowerBound
    while q0 < range.upperBound {
        q0 = min(q0, range.upperBound - 8)
        for o in stride(from: 0, to: outChannels, by: 8) {
            var (v0, i0) = pool[q0, o], (v1, i1) = pool[q0 + 1, o], (v2, i2) = pool[q0 + 2, o], (v3, i3) = pool[q0 + 3, o]
            var (v4, i4) = pool[q0 + 4, o], (v5, i5) = pool[q0 + 5, o], (v6, i6) = pool[q0 + 6, o], (v7, i7) = pool[q0 + 7, o]
            transpose8x8(&v0, &v1, &v2, &v3, &v4, &v5, &v6, &v7)
            storeRows(v0, v1, v2, v3, v4, v5, v6, v7, to: output + o * pooledPlane + q0, stride: pooledPlane)
            if let argmax {
                var f0 = floatBits(i0), f1 = floatBits(i1), f2 = floatBits(i2), f3 = floatBits(i3)
                var f4 = floatBits(i4), f5 = floatBits(i5), f6 = floatBits(i6), f7 = floatBits(i7)
                transpose8x8(&f0, &f1, &f2, &f3, &f4, &f5, &f6, &f7)
                let indices = UnsafeMutableRawPointer(argmax + o * pooledPlane + q0)
                    .assumingMemoryBound(to: Float.self)  // the bits of the Int32 indices
                storeRows(f0, f1, f2, f3, f4, f5, f6, f7, to: indices, stride: pooledPlane)
            }
        }
        q0 += 8
    }
}

/// The 2×2 windows of a channel-lane tile, pooled by `maxPool2dPlanes`' rule:
/// `self[q, o]` is window `q`'s maximum over channels `o ..< o + 8` and, when `indexed`, their
/// indices in the convolution's output plane; ReLU after when `relu` (NaN kept).
@usableFromInline
struct TileWindows {
    @usableFromInline let tile: UnsafePointer<Float>
    @usableFromInline let windows: UnsafeBufferPointer<Int32>
    @usableFromInline let width: Int, outChannels: Int
    @usableFromInline let indexed: Bool, relu: Bool

    @inlinable
    init(tile: UnsafePointer<Float>, windows: UnsafeBufferPointer<Int32>, width: Int, outChannels: Int,
         indexed: Bool, relu: Bool) {
        (self.tile, self.windows, self.width, self.outChannels, self.indexed, self.relu) =
            (tile, windows, width, outChannels, indexed, relu)
    }

    @inlinable
    subscript(q: Int, o: Int) -> (SIMD8<Float>, SIMD8<Int32>) {
        @_transparent get {
            let origin = windows[q]
            let top = tile + Int(origin) * outChannels + o, bottom = top + width * outChannels
            guard indexed else {
                return (poolWindow(load8(top), load8(top + outChannels), load8(bottom), load8(bottom + outChannels),
                                   relu: relu), SIMD8(repeating: origin))
            }
            return poolWindow(load8(top), load8(top + outChannels), load8(bottom), load8(bottom + outChannels),
                              origin: origin, rowStride: Int32(truncatingIfNeeded: width), relu: relu)
        }
    }
}

/// The bits of eight Int32 lanes as floats (for `transpose8x8`).
@inlinable @inline(__always)
func floatBits(_ i: SIMD8<Int32>) -> SIMD8<Float> { unsafeBitCast(i, to: SIMD8<Float>.self) }

/// Each window's top-left index in the input plane of a 2×2, stride-2 pool, in output order.
@inlinable
func poolWindowOrigins(_ s: Pool2dShape) -> [Int32] {
    (0..<s.outHeight * s.outWidth).map { q in
        Int32(truncatingIfNeeded: 2 * (q / s.outWidth) * s.width + 2 * (q % s.outWidth))
    }
}

/// Transposes the 8 × 8 matrix whose rows are `v0 ... v7`: afterwards `vk[j]` is what
/// `vj[k]` was. Three rounds of splitting each pair of rows into its even and odd lanes
/// (each round moves the lowest bit of an element's row-major index to the top; three move
/// the column bits above the row bits).
@inlinable @inline(__always)
func transpose8x8(
    _ v0: inout SIMD8<Float>, _ v1: inout SIMD8<Float>, _ v2: inout SIMD8<Float>, _ v3: inout SIMD8<Float>,
    _ v4: inout SIMD8<Float>, _ v5: inout SIMD8<Float>, _ v6: inout SIMD8<Float>, _ v7: inout SIMD8<Float>
) {
    for _ in 0..<3 {
        let p0 = SIMD16(lowHalf: v0, highHalf: v1), p1 = SIMD16(lowHalf: v2, highHalf: v3)
        let p2 = SIMD16(lowHalf: v4, highHalf: v5), p3 = SIMD16(lowHalf: v6, highHalf: v7)
        v0 = p0.evenHalf; v1 = p1.evenHalf; v2 = p2.evenHalf; v3 = p3.evenHalf
        v4 = p0.oddHalf; v5 = p1.oddHalf; v6 = p2.oddHalf; v7 = p3.oddHalf
    }
}

/// `conv2dForwardDirect` for a channel-lane shape (`forward.lanes`): each sample of
/// `samples` is convolved `bandRows` output rows at a time into `tile`
/// (`channelLaneTileCount` floats), each band then handed to `then(n, rows, tile)`.
@inlinable
func conv2dForwardChannelLanes(
    _ forward: DirectForward, samples: Range<Int>, input: UnsafePointer<Float>,
    packedWeight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, tile: UnsafeMutablePointer<Float>,
    then: (_ n: Int, _ rows: Range<Int>, _ tile: UnsafePointer<Float>) -> Void
) {
    let s = forward.shape, block = forward.lanes!
    let inputSample = s.inChannels * s.height * s.width
    forward.offsets.withUnsafeBufferPointer { offsets in
        forward.band.withUnsafeBufferPointer { band in
            forward.lastBand.withUnsafeBufferPointer { lastBand in
                for n in samples {
                    for r0 in stride(from: 0, to: s.outHeight, by: block.bandRows) {
                        let r1 = min(r0 + block.bandRows, s.outHeight)
                        channelLaneConvolveSample(
                            block, taps: offsets.count, offsets: offsets.baseAddress!, outChannels: s.outChannels,
                            packedWeight: packedWeight, bias: bias, input: input + n * inputSample + r0 * s.width,
                            pixelOffsets: r1 == s.outHeight ? lastBand : band, tile: tile)
                        then(n, r0..<r1, tile)
                    }
                }
            }
        }
    }
}

/// `conv2dMaxPool2dForward` by the 24 × 4 channel-lane kernel pooled in registers
/// (`ChannelLaneBlock.pooled`, which must apply): each sample's windows into a channels-last tile in this
/// thread's `extra` (`channelLane24PoolSample`), then transposed into NCHW (`transposeRows`),
/// the argmax's bits likewise. The same bits as convolving (`channelLane24x4`) and then
/// pooling (`maxPool2dForward`).
///
/// - Parameters:
///   - output, argmax: `(batch, outChannels, pool.outHeight, pool.outWidth)`.
///   - plan: its `packedWeight` and, per chunk, `extra` of at least
///     `2 · outChannels · pool.outHeight · pool.outWidth` floats (`directPoolExtra`).
func conv2dMaxPool2dForwardChannelLanes(
    _ plan: Conv2dPlan, pool: Pool2dShape, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?, relu: Bool
) {
    let s = plan.shape, taps = s.groupPatchSize
    guard let block = ChannelLaneBlock.pooled(s, pool: pool) else {
        preconditionFailure("conv2dMaxPool2dForwardChannelLanes: \(s) under \(pool) has no pooled channel lanes")
    }
    let packedWeight = plan.packedWeight
    packChannelLaneWeight(block, s, weight: weight, into: packedWeight)
    let pooledPlane = pool.outHeight * pool.outWidth, pooledSample = s.outChannels * pooledPlane
    let inputSample = s.inChannels * s.height * s.width
    assert(plan.extraPerChunk >= 2 * pooledSample, "conv2dMaxPool2dForwardChannelLanes: \(plan.extraPerChunk) floats a chunk")
    tapOffsets(s, multiple: 1).withUnsafeBufferPointer { offsets in
        plan.forEachSampleBlock(grain: 4) { chunk, samples in
            let pooled = plan.extra(chunk), indices = pooled + pooledSample
            let indexTile = argmax == nil ? nil : UnsafeMutableRawPointer(indices)  // Int32 bits, moved as floats
            for n in samples {
                channelLane24PoolSample(
                    taps: taps, offsets: offsets.baseAddress!, outChannels: s.outChannels, packedWeight: packedWeight,
                    bias: bias, input: input + n * inputSample, width: s.width, outWidth: s.outWidth, pool: pool,
                    pooled: pooled, indices: indexTile, relu: relu)
                transposeRows(pooled, rows: pooledPlane, columns: s.outChannels, sourceStride: s.outChannels,
                              into: output + n * pooledSample, destinationStride: pooledPlane)
                if let argmax {  // the Int32 indices' bits, moved as floats
                    transposeRows(indices, rows: pooledPlane, columns: s.outChannels, sourceStride: s.outChannels,
                                  into: UnsafeMutableRawPointer(argmax + n * pooledSample).assumingMemoryBound(to: Float.self),
                                  destinationStride: pooledPlane)
                }
            }
        }
    }
}

/// One sample of a direct convolution with 24 output channels a group (three vectors)
/// followed by a 2×2, stride-2 max-pool (`isSimple2x2`), the pool taken on the sums in
/// registers: each block of four pixels is one window, so its twelve sums (`channelLane24Sums`,
/// as `channelLane24x4`'s) are pooled lane by lane, no shuffle, by `maxPool2dPlanes`' rule (the first
/// maximum in row-major order wins, NaN propagates), then ReLU when `relu` (NaN kept). The
/// convolution's output is never stored.
///
/// - Parameters:
///   - offsets: `taps` offsets of the taps from a pixel's input position (`tapOffsets`).
///   - packedWeight: `packChannelLaneWeight`'s layout for the 24 × 4 block.
///   - input: the sample, its rows `width` long; `outWidth` the convolution's output width.
///   - pooled: `(pool.outHeight · pool.outWidth, outChannels)`, channels-last, overwritten.
///   - indices: likewise, each maximum's index in the convolution's output plane; nil for
///     the values only.
@inlinable
func channelLane24PoolSample(
    taps: Int, offsets: UnsafePointer<Int>, outChannels: Int, packedWeight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, input: UnsafePointer<Float>, width: Int, outWidth: Int, pool: Pool2dShape,
    pooled: UnsafeMutablePointer<Float>, indices: UnsafeMutableRawPointer?, relu: Bool
) {
    @inline(__always) func biasVector(_ o: Int) -> SIMD8<Float> { bias.map { load8($0 + o) } ?? SIMD8() }
    let down = Int32(truncatingIfNeeded: outWidth)
    for o0 in stride(from: 0, to: outChannels, by: 24) {
        let weight = packedWeight + o0 * taps
        let start = (biasVector(o0), biasVector(o0 + 8), biasVector(o0 + 16))
        var q = 0
        for py in 0..<pool.outHeight {
            for px in 0..<pool.outWidth {
                let x0 = input + 2 * py * width + 2 * px, x2 = x0 + width
                let ((a0, b0, c0), (a1, b1, c1), (a2, b2, c2), (a3, b3, c3)) = channelLane24Sums(
                    taps: taps, offsets: offsets, weight: weight, start: start, x0, x0 + 1, x2, x2 + 1)
                let row = pooled + q * outChannels + o0
                if let indices {
                    // Written out three times: a nested function taking the sums was not inlined.
                    let origin = Int32(truncatingIfNeeded: 2 * py * outWidth + 2 * px)
                    let indexRow = indices + (q * outChannels + o0) * MemoryLayout<Int32>.stride
                    var (best, index) = poolWindow(a0, a1, a2, a3, origin: origin, rowStride: down, relu: relu)
                    store8(best, row)
                    indexRow.storeBytes(of: index, as: SIMD8<Int32>.self)
                    (best, index) = poolWindow(b0, b1, b2, b3, origin: origin, rowStride: down, relu: relu)
                    store8(best, row + 8)
                    indexRow.storeBytes(of: index, toByteOffset: 32, as: SIMD8<Int32>.self)
                    (best, index) = poolWindow(c0, c1, c2, c3, origin: origin, rowStride: down, relu: relu)
                    store8(best, row + 16)
                    indexRow.storeBytes(of: index, toByteOffset: 64, as: SIMD8<Int32>.self)
                } else {
                    store8(poolWindow(a0, a1, a2, a3, relu: relu), row)
                    store8(poolWindow(b0, b1, b2, b3, relu: relu), row + 8)
                    store8(poolWindow(c0, c1, c2, c3, relu: relu), row + 16)
                }
                q += 1
            }
        }
    }
}
