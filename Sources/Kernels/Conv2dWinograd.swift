import CPrefetch

// MARK: - Winograd F(2×2, 3×3) and F(2×2, 5×5) forward convolution under a 2×2 max-pool, for evaluation

// A 2×2 block of a 3×3 convolution's output, computed directly, takes 36 multiply-adds per
// pair of input and output channels. Winograd's minimal filtering algorithm F(2×2, 3×3)
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015) takes 16:
//
//     Y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
// where d_c is the 4×4 block of input channel c the 2×2 output block reads, g_oc the 3×3
// kernel, and
//
//     Bᵀ = | 1  0 -1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
//          | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 -1 -1 |
//          | 0 -1  1  0 |         | ½   -½    ½  |
//          | 0  1  0 -1 |         | 0    0    1  |
//
// The sum over input channels is then 16 small matrix products, one per element ξ of the
// 4×4 transformed block ("tile"): M_ξ[tile][o] = Σ_c V_ξ[tile][c] · U_ξ[c][o], with
// V = Bᵀ d B for every tile and U = G g Gᵀ for every kernel. Under a 2×2, stride-2 max-pool,
// the output blocks at even rows and columns are exactly the pool's windows: each tile's
// maximum is taken as it is transformed back, and the convolution's output never exists.
// A 5×5 kernel (LeNet's conv2) takes F(2×2, 5×5) the same way: 6×6 tiles, 36 products
// where the direct kernel takes 100 (`inputTransform6`, `outputTransform6`, `g5`).
//
// The products are of transformed values, summed in another order than the direct
// kernels' `bias + Σ_t input · weight`: the outputs differ from theirs by rounding (at
// most 2.7e-7 of 1 + the sum of the terms' magnitudes for 3×3 kernels and 4.9e-7 for 5×5
// in `winogradPoolMatchesTheDirectKernel`, which allows 5e-7 and 1e-6), and, where an input is
// infinite, may be NaN where the direct sum is infinite (the transforms subtract inputs).
// So only passes that record no argmax take it: every training pass (which records one
// for its backward pass) stays the direct kernels', exact to PyTorch's formula, while
// evaluation, and any call without gradients (`mnist-predict`, a frozen layer), computes
// here.
//
// The products take 2.25× (3×3) and 2.8× (5×5) fewer multiply-adds than the direct kernel;
// the transforms, the channels-last copy and the padding of the last tiles and channels
// give much of that back. `mnist-bench --ops --config FILE --threads N` times both ("eval"
// and "eval (direct)" rows; batch 256, Zen 3, two runs): the published speedrun net's conv2
// (24 → 32 channels, 10×10) 2.11 ms against 2.70–2.75 at 2 threads, 3.93–4.09 against
// 4.72–5.52 at 1; `configs/speedrun.json`'s (8 → 32) 0.51–0.53 against 0.59–0.61, and 1.10
// against 1.21–1.23. LeNet's conv2 (20 → 50, 12×12; 16 tiles in blocks of 6 + 6 + 4, 50
// output channels as 16 + 16 + 16 + 8) gains less against the 16-lane direct kernel of an
// AVX-512 build: the evaluation of the 10,000 test images (`mnist-bench --steps 10`, Zen 4,
// alternating with a build of the direct kernel, 8ce1403, three pairs) 0.48–0.55 s against
// 0.53–0.58 at one thread, 0.25–0.26 against 0.26–0.28 at two, before the last block of
// fewer than six tiles was computed as it is (which then took the median from 0.45 s to
// 0.41 at one thread, 0.24 to 0.21 at two, together with the 8-lane weight transform).
// `--ops --config configs/lenet.json --threads 1`, built for AVX2: 1.61–1.66 ms against
// the direct row's 1.89–1.92. These kernels are 8-lane: where the CPU runs 512-bit vectors
// at once, the direct kernels' 16 lanes win, and evaluation takes them
// (`Conv2dPlan.winogradPays`).

/// One evaluation pass's setup for `conv2dMaxPool2dForward` by Winograd F(2×2, 3×3) or
/// F(2×2, 5×5): the tiles (one per pool window) and the scratch's layout.
///
/// Each sample is first copied channels-last (`channelsLast`), so that the input transform
/// takes eight channels per vector with unit-stride loads; then six tiles at a time are
/// transformed (`transformTiles`, into 9 KB for the published speedrun net's conv2, which
/// stay in the level-1 cache), multiplied (`winogradProduct16x6`) and transformed back.
struct WinogradPool {
    let shape: Conv2dShape
    /// Tiles down and across a sample: the pool's output plane.
    let tileRows: Int, tileColumns: Int
    /// Input channels rounded up to a multiple of 8 (the channels past them zero).
    let channels: Int
    /// Output channels rounded up to a multiple of 8 (the transformed weight's past them zero).
    let outputs: Int
    /// The kernel's side (3 or 5), the tile's (kernel + 1), and the elements ξ of a
    /// transformed tile (side²).
    let kernel: Int, side: Int, points: Int

    /// Tiles the matrix product takes at a time, and output channels (two vectors).
    static let tileBlock = 6, channelBlock = 16

    /// Whether an evaluation pass (no argmax) of `shape` under `pool` is computed here: an
    /// unstrided 3×3 or 5×5 convolution (no padding, stride, dilation or groups) with at least
    /// 8 input and 16 output channels, under a 2×2, stride-2 pool (`isSimple2x2`), unless
    /// `Conv2dPlan.winogradEvaluation` or `Conv2dPlan.fiveChannelForwardOnly` say otherwise.
    /// With fewer input channels, padded to 8 in the input transform, the transforms cost
    /// more than the products save.
    static func applies(_ s: Conv2dShape, pool: Pool2dShape) -> Bool {
        Conv2dPlan.winogradEvaluation && !Conv2dPlan.fiveChannelForwardOnly
            && Conv2dPlan.isUnstrided(s) && (s.kernelHeight == 3 || s.kernelHeight == 5)
            && s.kernelWidth == s.kernelHeight && s.inChannels >= 8 && s.outChannels >= channelBlock
            && isSimple2x2(pool) && pool.outHeight > 0 && pool.outWidth > 0
    }

    init(_ s: Conv2dShape, pool: Pool2dShape) {
        shape = s
        tileRows = pool.outHeight
        tileColumns = pool.outWidth
        channels = (s.inChannels + 7) / 8 * 8
        outputs = (s.outChannels + 7) / 8 * 8
        kernel = s.kernelHeight
        side = kernel + 1
        points = side * side
    }

    /// Floats of the transformed weight, `(points, inChannels, outputs)`.
    var weightCount: Int { points * shape.inChannels * outputs }

    /// Floats of one thread's scratch: the sample channels-last `(height · width, channels)`,
    /// a block of transformed tiles `(points, tileBlock, channels)`, and their products
    /// `(points, tileBlock, channelBlock)`.
    var scratchCount: Int {
        shape.height * shape.width * channels + points * Self.tileBlock * (channels + Self.channelBlock)
    }

    /// Floats of workspace a pass at `threadCount` threads needs.
    func workspaceCount(threadCount: Int) -> Int {
        workspaceCount(chunks: Conv2dPlan.chunkCount(shape.batch, threadCount: threadCount))
    }

    func workspaceCount(chunks: Int) -> Int { weightCount + chunks * scratchCount }

    /// G, the kernel transform (`side × kernel`, row-major): F(2×2, 3×3)'s, or F(2×2, 5×5)'s
    /// (Toom-Cook at 0, ±1, ±2 and ∞).
    static let g3: [Double] = [1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1]
    static let g5: [Double] = {
        let sixth = 1.0 / 6, twelfth = 1.0 / 12, third = 1.0 / 3, quarter = 0.25, last = 1.0 / 24
        let rows: [[Double]] = [
            [quarter, 0, 0, 0, 0],
            [-sixth, -sixth, -sixth, -sixth, -sixth],
            [-sixth, sixth, -sixth, sixth, -sixth],
            [last, twelfth, sixth, third, 2 * third],
            [last, -twelfth, sixth, -third, 2 * third],
            [0, 0, 0, 0, 1],
        ]
        return rows.flatMap { $0 }
    }()

    /// `U_ξ[c][o] = (G g_oc Gᵀ)_ξ` for every kernel of `weight (outChannels, inChannels, k, k)`,
    /// computed in Double and rounded once, into `packed (points, inChannels, outputs)`, zero
    /// past the output channels: eight output channels at a time, one per lane (each lane
    /// the same sums as a scalar loop; the lanes' chains run side by side where one kernel's
    /// waited on each addition), the blocks of eight split over the threads.
    func transformWeight(_ weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        typealias Lanes = SIMD8<Double>
        let inChannels = shape.inChannels, outChannels = shape.outChannels, k = kernel, side = side, outputs = outputs
        let w = UncheckedSendable(weight), out = UncheckedSendable(packed)
        (k == 3 ? Self.g3 : Self.g5).withUnsafeBufferPointer { g in
            let g = UncheckedSendable(g.baseAddress!)
            Parallelism.forEachChunk(outputs / 8) { _, blocks in
                let g = g.value
                withUnsafeTemporaryAllocation(of: Lanes.self, capacity: k * k + side * k) { scratch in
                    let kernels = scratch.baseAddress!, left = kernels + k * k  // left: G · kernel, side × k
                    for o0 in stride(from: blocks.lowerBound * 8, to: blocks.upperBound * 8, by: 8) {
                        for c in 0..<inChannels {
                            for t in 0..<(k * k) {
                                var lanes = Lanes()
                                for lane in 0..<min(8, outChannels - o0) {
                                    lanes[lane] = Double(w.value[((o0 + lane) * inChannels + c) * k * k + t])
                                }
                                kernels[t] = lanes
                            }
                            for i in 0..<side {
                                for j in 0..<k {
                                    var sum = Lanes()
                                    for a in 0..<k { sum += g[i * k + a] * kernels[a * k + j] }
                                    left[i * k + j] = sum
                                }
                            }
                            for i in 0..<side {
                                for j in 0..<side {
                                    var sum = Lanes()
                                    for b in 0..<k { sum += left[i * k + b] * g[j * k + b] }
                                    store8(SIMD8<Float>(sum), out.value + ((i * side + j) * inChannels + c) * outputs + o0)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `sample (inChannels, height, width)` channels-last into `copy (height · width, channels)`
    /// (`transposeRows`); the channels past `inChannels` are left as they are (zero).
    func channelsLast(_ sample: UnsafePointer<Float>, into copy: UnsafeMutablePointer<Float>) {
        let plane = shape.height * shape.width
        transposeRows(sample, rows: shape.inChannels, columns: plane, sourceStride: plane, into: copy,
                      destinationStride: channels)
    }

    /// `V_ξ[t][c] = (Bᵀ d B)_ξ` of tiles `first ..< first + count` (`count` at most
    /// `tileBlock`) from the channels-last `copy`, eight channels at a time, into
    /// `block (points, tileBlock, channels)`: the tile's pixels combined down (Bᵀ), then
    /// across (B), by `inputTransform4` or `inputTransform6`.
    func transformTiles(from first: Int, count: Int, copy: UnsafePointer<Float>, into block: UnsafeMutablePointer<Float>) {
        let width = shape.width, channels = channels
        let step = Self.tileBlock * channels, row = width * channels
        for t in 0..<count {
            let tile = first + t
            let origin = copy + (2 * (tile / tileColumns) * width + 2 * (tile % tileColumns)) * channels
            for c in stride(from: 0, to: channels, by: 8) {
                let destination = block + t * channels + c
                if kernel == 3 {
                    @inline(__always) func down(_ k: Int) -> Four {
                        let pixel = origin + k * channels + c
                        return inputTransform4(load8(pixel), load8(pixel + row), load8(pixel + 2 * row), load8(pixel + 3 * row))
                    }
                    let k0 = down(0), k1 = down(1), k2 = down(2), k3 = down(3)
                    @inline(__always) func store(_ i: Int, _ v: Four) {
                        let p = destination + 4 * i * step
                        store8(v.0, p); store8(v.1, p + step); store8(v.2, p + 2 * step); store8(v.3, p + 3 * step)
                    }
                    store(0, inputTransform4(k0.0, k1.0, k2.0, k3.0))
                    store(1, inputTransform4(k0.1, k1.1, k2.1, k3.1))
                    store(2, inputTransform4(k0.2, k1.2, k2.2, k3.2))
                    store(3, inputTransform4(k0.3, k1.3, k2.3, k3.3))
                } else {
                    @inline(__always) func down(_ k: Int) -> Six {
                        let pixel = origin + k * channels + c
                        return inputTransform6(load8(pixel), load8(pixel + row), load8(pixel + 2 * row),
                                               load8(pixel + 3 * row), load8(pixel + 4 * row), load8(pixel + 5 * row))
                    }
                    let k0 = down(0), k1 = down(1), k2 = down(2), k3 = down(3), k4 = down(4), k5 = down(5)
                    @inline(__always) func store(_ i: Int, _ v: Six) {
                        let p = destination + 6 * i * step
                        store8(v.0, p); store8(v.1, p + step); store8(v.2, p + 2 * step)
                        store8(v.3, p + 3 * step); store8(v.4, p + 4 * step); store8(v.5, p + 5 * step)
                    }
                    store(0, inputTransform6(k0.0, k1.0, k2.0, k3.0, k4.0, k5.0))
                    store(1, inputTransform6(k0.1, k1.1, k2.1, k3.1, k4.1, k5.1))
                    store(2, inputTransform6(k0.2, k1.2, k2.2, k3.2, k4.2, k5.2))
                    store(3, inputTransform6(k0.3, k1.3, k2.3, k3.3, k4.3, k5.3))
                    store(4, inputTransform6(k0.4, k1.4, k2.4, k3.4, k4.4, k5.4))
                    store(5, inputTransform6(k0.5, k1.5, k2.5, k3.5, k4.5, k5.5))
                }
            }
        }
    }

    /// One sample: copied channels-last (`channelsLast`), then six tiles at a time
    /// transformed (`transformTiles`), and for each 16 output channels (8 for the last of
    /// a count not a multiple of 16) the products `M_ξ = Σ_c V_ξ[c] · U_ξ[c]`
    /// (`winogradProduct16x6`, `winogradProductBlock`: one fused multiply-add per input
    /// channel, in channel order), each tile transformed back (`Aᵀ M A + bias`, by
    /// `outputTransform4` or `outputTransform6`), its four outputs pooled in row-major order
    /// (`poolWindow`, then ReLU when `relu`), and written to `output (outChannels, tiles)`.
    func convolvePoolSample(
        input: UnsafePointer<Float>, next: UnsafePointer<Float>?, packedWeight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, relu: Bool, scratch: UnsafeMutablePointer<Float>
    ) {
        channelsLast(input, into: scratch)
        convolvePoolChannelsLast(
            next: next.map(UnsafeRawPointer.init), nextBytes: shape.inChannels * shape.height * shape.width * MemoryLayout<Float>.size,
            packedWeight: packedWeight, bias: bias, output: output, relu: relu, scratch: scratch)
    }

    /// `convolvePoolSample` from the sample already channels-last at the start of `scratch`
    /// (`(height · width, channels)`, the channels past `inChannels` zero), prefetching
    /// `nextBytes` bytes from `next` (the next sample's input, nil for none) meanwhile.
    func convolvePoolChannelsLast(
        next: UnsafeRawPointer?, nextBytes: Int, packedWeight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, relu: Bool, scratch: UnsafeMutablePointer<Float>
    ) {
        let outChannels = shape.outChannels, inChannels = shape.inChannels, outputs = outputs
        let tiles = tileRows * tileColumns, channels = channels, points = points
        let copy = scratch, block = copy + shape.height * shape.width * channels
        let products = block + points * Self.tileBlock * channels
        // The next sample's input (`next`, nil for the batch's last), a share before each
        // block of tiles: without it, the copy's loads from memory were this kernel's largest
        // stall (`perf` of the published net's evaluation, in a build without the prefetch
        // that was not committed; no command here reproduces that number).
        let lines = next == nil ? 0 : (nextBytes + 63) / 64, blocks = (tiles + Self.tileBlock - 1) / Self.tileBlock
        let linesPerBlock = (lines + blocks - 1) / blocks
        for t0 in stride(from: 0, to: tiles, by: Self.tileBlock) {
            let first = t0 / Self.tileBlock * linesPerBlock
            for line in stride(from: first, to: min(first + linesPerBlock, lines), by: 1) {
                prefetch_to_l2(next! + 64 * line)
            }
            let count = min(Self.tileBlock, tiles - t0)
            transformTiles(from: t0, count: count, copy: copy, into: block)
            for o0 in stride(from: 0, to: outputs, by: Self.channelBlock) {
                let halves = min(2, (outputs - o0) / 8)
                for xi in 0..<points {
                    let weight = packedWeight + xi * inChannels * outputs + o0
                    let transformed = block + xi * Self.tileBlock * channels
                    let product = products + xi * Self.tileBlock * Self.channelBlock
                    if count == Self.tileBlock && halves == 2 {
                        winogradProduct16x6(channels: inChannels, channelStride: channels, weight: weight,
                                            weightStride: outputs, tiles: transformed, products: product)
                    } else {
                        winogradProductBlock(tiles: count, halves: halves, channels: inChannels, channelStride: channels,
                                             weight: weight, weightStride: outputs, tileRows: transformed, products: product)
                    }
                }
                // The bias of the block's (one or two) vectors of output channels, zero past the last.
                @inline(__always) func biasVector(_ o: Int) -> SIMD8<Float> {
                    guard let bias, o < outChannels else { return SIMD8() }
                    var v = SIMD8<Float>()
                    for lane in 0..<min(8, outChannels - o) { v[lane] = bias[o + lane] }
                    return v
                }
                let biases = (biasVector(o0), biasVector(o0 + 8))
                for t in 0..<count {
                    for half in 0..<halves {
                        let o = o0 + half * 8
                        let m = products + t * Self.channelBlock + half * 8, step = Self.tileBlock * Self.channelBlock
                        let y = kernel == 3 ? outputTransform4(m, step: step) : outputTransform6(m, step: step)
                        // The window's four outputs, top-left first, pooled.
                        let b = half == 0 ? biases.0 : biases.1
                        let best = poolWindow(y.0 + b, y.1 + b, y.2 + b, y.3 + b, relu: relu)
                        let destination = output + o * tiles + t0 + t
                        for lane in 0..<min(8, outChannels - o) { destination[lane * tiles] = best[lane] }
                    }
                }
            }
        }
    }
}

typealias Four = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
typealias Six = (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)

/// Bᵀ d for four values of F(2×2, 3×3) (a column of a tile, or a row of Bᵀ d):
///
///     Bᵀ = | 1  0 -1  0 |
///          | 0  1  1  0 |
///          | 0 -1  1  0 |
///          | 0  1  0 -1 |
@inline(__always)
func inputTransform4(_ d0: SIMD8<Float>, _ d1: SIMD8<Float>, _ d2: SIMD8<Float>, _ d3: SIMD8<Float>) -> Four {
    (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
}

/// Bᵀ d for six values of F(2×2, 5×5) (Toom-Cook at 0, ±1, ±2 and ∞; the same Bᵀ as
/// F(4, 3)'s):
///
///     Bᵀ = | 4   0  -5   0  1  0 |
///          | 0  -4  -4   1  1  0 |
///          | 0   4  -4  -1  1  0 |
///          | 0  -2  -1   2  1  0 |
///          | 0   2  -1  -2  1  0 |
///          | 0   4   0  -5  0  1 |
@inline(__always)
func inputTransform6(
    _ d0: SIMD8<Float>, _ d1: SIMD8<Float>, _ d2: SIMD8<Float>, _ d3: SIMD8<Float>, _ d4: SIMD8<Float>, _ d5: SIMD8<Float>
) -> Six {
    let four = SIMD8<Float>(repeating: 4), five = SIMD8<Float>(repeating: 5), two = SIMD8<Float>(repeating: 2)
    let a = d4 - four * d2, b = d3 - four * d1  // rows 1 and 2: a ± b
    let c = d4 - d2, e = two * (d3 - d1)        // rows 3 and 4: c ± e
    return (four * d0 - five * d2 + d4, a + b, a - b, c + e, c - e, four * d1 - five * d3 + d5)
}

/// The window `Aᵀ M A` of F(2×2, 3×3) from the 16 products `m + ξ · step` (eight output
/// channels each), top-left, top-right, bottom-left, bottom-right:
///
///     Aᵀ = | 1  1  1  0 |
///          | 0  1 -1 -1 |
@inline(__always)
func outputTransform4(_ m: UnsafePointer<Float>, step: Int) -> Four {
    @inline(__always) func p(_ xi: Int) -> SIMD8<Float> { load8(m + xi * step) }
    // Aᵀ M: rows 0 + 1 + 2 and 1 − 2 − 3, for each column j.
    let p0 = p(0) + p(4) + p(8), q0 = p(4) - p(8) - p(12)
    let p1 = p(1) + p(5) + p(9), q1 = p(5) - p(9) - p(13)
    let p2 = p(2) + p(6) + p(10), q2 = p(6) - p(10) - p(14)
    let p3 = p(3) + p(7) + p(11), q3 = p(7) - p(11) - p(15)
    return (p0 + p1 + p2, p1 - p2 - p3, q0 + q1 + q2, q1 - q2 - q3)
}

/// The window `Aᵀ M A` of F(2×2, 5×5) from the 36 products `m + ξ · step`:
///
///     Aᵀ = | 1  1  1  1  1  0 |
///          | 0  1 -1  2 -2  1 |
@inline(__always)
func outputTransform6(_ m: UnsafePointer<Float>, step: Int) -> Four {
    @inline(__always) func p(_ xi: Int) -> SIMD8<Float> { load8(m + xi * step) }
    let two = SIMD8<Float>(repeating: 2)
    // Aᵀ M, column j: rows 0 + 1 + 2 + 3 + 4 and 1 − 2 + 2 (3 − 4) + 5.
    @inline(__always) func column(_ j: Int) -> (SIMD8<Float>, SIMD8<Float>) {
        let a = p(6 + j) + p(12 + j), b = p(6 + j) - p(12 + j), c = p(18 + j) + p(24 + j), d = p(18 + j) - p(24 + j)
        return (p(j) + a + c, b + two * d + p(30 + j))
    }
    let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3), c4 = column(4), c5 = column(5)
    // (Aᵀ M) A likewise across.
    @inline(__always) func across(
        _ x0: SIMD8<Float>, _ x1: SIMD8<Float>, _ x2: SIMD8<Float>, _ x3: SIMD8<Float>, _ x4: SIMD8<Float>, _ x5: SIMD8<Float>
    ) -> (SIMD8<Float>, SIMD8<Float>) {
        (x0 + x1 + x2 + x3 + x4, x1 - x2 + two * (x3 - x4) + x5)
    }
    let top = across(c0.0, c1.0, c2.0, c3.0, c4.0, c5.0), bottom = across(c0.1, c1.1, c2.1, c3.1, c4.1, c5.1)
    return (top.0, top.1, bottom.0, bottom.1)
}

/// `products[t][0..<16] = Σ_c tiles[t · channelStride + c] · weight[c · weightStride + 0..<16]`
/// for six tiles `t`, `c < channels` and 16 output channels: twelve 8-lane sums, from zero,
/// one fused multiply-add per channel in order; two weight loads and six broadcasts per twelve.
///
/// - Parameters:
///   - weight: `(channels, weightStride)`, the block's 16 channels first in each row.
///   - tiles: `(6, channelStride)`.
///   - products: `(6, 16)`, overwritten.
@inline(__always)
func winogradProduct16x6(
    channels: Int, channelStride: Int, weight: UnsafePointer<Float>, weightStride: Int, tiles: UnsafePointer<Float>,
    products: UnsafeMutablePointer<Float>
) {
    var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
    var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
    var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
    let t1 = tiles + channelStride, t2 = t1 + channelStride, t3 = t2 + channelStride
    let t4 = t3 + channelStride, t5 = t4 + channelStride
    var w = weight
    for c in 0..<channels {
        let w0 = load8(w), w1 = load8(w + 8)
        var x = SIMD8<Float>(repeating: tiles[c])
        a00.addProduct(x, w0); a01.addProduct(x, w1)
        x = SIMD8(repeating: t1[c])
        a10.addProduct(x, w0); a11.addProduct(x, w1)
        x = SIMD8(repeating: t2[c])
        a20.addProduct(x, w0); a21.addProduct(x, w1)
        x = SIMD8(repeating: t3[c])
        a30.addProduct(x, w0); a31.addProduct(x, w1)
        x = SIMD8(repeating: t4[c])
        a40.addProduct(x, w0); a41.addProduct(x, w1)
        x = SIMD8(repeating: t5[c])
        a50.addProduct(x, w0); a51.addProduct(x, w1)
        w += weightStride
    }
    store8(a00, products); store8(a01, products + 8)
    store8(a10, products + 16); store8(a11, products + 24)
    store8(a20, products + 32); store8(a21, products + 40)
    store8(a30, products + 48); store8(a31, products + 56)
    store8(a40, products + 64); store8(a41, products + 72)
    store8(a50, products + 80); store8(a51, products + 88)
}

/// `winogradProduct16x6` for the other blocks: `tiles` (1 to 6) tiles, a sample's last block
/// of fewer than six (four for LeNet's 16 windows) computed as it is, and `halves` (1 or 2)
/// vectors of 8 output channels (one for the last of a count not a multiple of 16); laid out
/// as `winogradProduct16x6`'s, the same sums. Specialised for each count (`FixedCount`).
/// The full blocks keep their own kernel: through this one (its sums in a temporary
/// array) the evaluation rows of `mnist-bench --ops --config FILE --threads 1` read 2.79–2.95
/// ms against 2.45–2.57 (one run 3.22) for the published speedrun net's conv2, and 1.68–1.72 against
/// 1.61–1.66 for LeNet's (Zen 4, six alternating runs at e4668c1).
@inline(__always)
func winogradProductBlock(
    tiles: Int, halves: Int, channels: Int, channelStride: Int, weight: UnsafePointer<Float>, weightStride: Int,
    tileRows: UnsafePointer<Float>, products: UnsafeMutablePointer<Float>
) {
    @inline(__always) func product<Tiles: FixedCount>(_: Tiles.Type, wide: Bool) {
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 2 * Tiles.count) { sums in
            let sums = sums.baseAddress!
            for i in 0..<(2 * Tiles.count) { sums[i] = SIMD8() }
            var w = weight, row = tileRows
            for _ in 0..<channels {
                let w0 = load8(w), w1 = wide ? load8(w + 8) : SIMD8()
                for t in 0..<Tiles.count {
                    let x = SIMD8<Float>(repeating: row[t &* channelStride])
                    sums[2 &* t].addProduct(x, w0)
                    if wide { sums[2 &* t &+ 1].addProduct(x, w1) }
                }
                w += weightStride
                row += 1
            }
            for t in 0..<Tiles.count {
                store8(sums[2 * t], products + 16 * t)
                if wide { store8(sums[2 * t + 1], products + 16 * t + 8) }
            }
        }
    }
    @inline(__always) func product(wide: Bool) {
        switch tiles {
        case 1: product(Count1.self, wide: wide)
        case 2: product(Count2.self, wide: wide)
        case 3: product(Count3.self, wide: wide)
        case 4: product(Count4.self, wide: wide)
        case 5: product(Count5.self, wide: wide)
        default: product(Count6.self, wide: wide)
        }
    }
    if halves == 2 { product(wide: true) } else { product(wide: false) }
}

/// `max_pool2d(conv2d(input))` (then ReLU when `relu`) of an evaluation pass by Winograd
/// F(2×2, 3×3) or F(2×2, 5×5) (`WinogradPool.applies`): the weight transformed once (once
/// per scope of `FixedWeights`, where there is one), then each thread takes the next four
/// samples until none are left, each sample's outputs computed the same way whatever the
/// split.
///
/// - Parameters:
///   - output: the pool's output `(batch, outChannels, pooled plane)`.
///   - workspace: at least `winograd.workspaceCount(threadCount:)` floats.
func conv2dMaxPool2dForwardWinograd(
    _ winograd: WinogradPool, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>, relu: Bool, workspace: UnsafeMutableBufferPointer<Float>
) {
    let s = winograd.shape
    let chunks = Conv2dPlan.chunks(s, workspace: workspace.count, needed: winograd.workspaceCount(chunks:))
    let packed = workspace.baseAddress!
    let transformed: UnsafePointer<Float>
    if let fixed = FixedWeights.current {
        transformed = fixed.prepared(weight, layout: "winograd", count: winograd.weightCount) {
            winograd.transformWeight(weight, into: $0)
        }
    } else {
        winograd.transformWeight(weight, into: packed)
        transformed = UnsafePointer(packed)
    }
    let inputSample = s.inChannels * s.height * s.width
    let pooledSample = s.outChannels * winograd.tileRows * winograd.tileColumns
    let scratchCount = winograd.scratchCount
    // Zeroed once: the channels past the input's in the channels-last copies, which no
    // sample writes.
    (packed + winograd.weightCount).initialize(repeating: 0, count: chunks * scratchCount)
    Parallelism.forEachBlock(s.batch, chunks: chunks, grain: 4) { chunk, samples in
        let scratch = packed + winograd.weightCount + chunk * scratchCount
        for n in samples {
            winograd.convolvePoolSample(input: input + n * inputSample,
                                        next: n + 1 < s.batch ? input + (n + 1) * inputSample : nil,
                                        packedWeight: transformed, bias: bias,
                                        output: output + n * pooledSample, relu: relu, scratch: scratch)
        }
    }
}
