import CPrefetch

// MARK: - Winograd F(2×2, 3×3) forward convolution under a 2×2 max-pool, for evaluation

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
//
// The products are of transformed values, summed in another order than the direct
// kernels' `bias + Σ_t input · weight`: the outputs differ from theirs by rounding (at
// most 2.7e-7 of 1 + the sum of the terms' magnitudes in
// `winogradPoolMatchesTheDirectKernel`, which allows 5e-7), and, where an input is
// infinite, may be NaN where the direct sum is infinite (the transforms subtract inputs).
// So only passes that record no argmax take it: every training pass (which records one
// for its backward pass) stays the direct kernels', exact to PyTorch's formula, while
// evaluation, and any call without gradients (`mnist-predict`, a frozen layer), computes
// here.
//
// The products take 2.25× fewer multiply-adds than the direct kernel; the transforms and
// the channels-last copy give part of that back. `mnist-bench --ops --config FILE
// --threads N` times both ("eval" and "eval (direct)" rows; batch 256, Zen 3, two runs):
// the published speedrun net's conv2 (24 → 32 channels, 10×10) 2.11 ms against 2.70–2.75
// at 2 threads, 3.93–4.09 against 4.72–5.52 at 1; `configs/speedrun.json`'s (8 → 32)
// 0.51–0.53 against 0.59–0.61, and 1.10 against 1.21–1.23.

/// One evaluation pass's setup for `conv2dMaxPool2dForward` by Winograd F(2×2, 3×3): the
/// tiles (one per pool window) and the scratch's layout.
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

    /// Tiles the matrix product takes at a time, and output channels (two vectors).
    static let tileBlock = 6, channelBlock = 16

    /// Whether an evaluation pass (no argmax) of `shape` under `pool` is computed here: an
    /// unstrided 3×3 convolution (no padding, stride, dilation or groups) with at least 8
    /// input channels and output channels a multiple of 16, under a 2×2, stride-2 pool
    /// (`isSimple2x2`), unless `Conv2dPlan.winogradEvaluation` or
    /// `Conv2dPlan.fiveChannelForwardOnly` say otherwise. With fewer input channels, padded
    /// to 8, a window's 16 products per output channel take more multiply-adds (16 · 8) than
    /// its 36 · inChannels direct ones.
    static func applies(_ s: Conv2dShape, pool: Pool2dShape) -> Bool {
        Conv2dPlan.winogradEvaluation && !Conv2dPlan.fiveChannelForwardOnly
            && Conv2dPlan.isUnstrided(s) && s.kernelHeight == 3 && s.kernelWidth == 3 && s.inChannels >= 8
            && s.outChannels % channelBlock == 0 && isSimple2x2(pool) && pool.outHeight > 0 && pool.outWidth > 0
    }

    init(_ s: Conv2dShape, pool: Pool2dShape) {
        shape = s
        tileRows = pool.outHeight
        tileColumns = pool.outWidth
        channels = (s.inChannels + 7) / 8 * 8
    }

    /// Floats of the transformed weight, `(16, channels, outChannels)`.
    var weightCount: Int { 16 * channels * shape.outChannels }

    /// Floats of one thread's scratch: the sample channels-last `(height · width, channels)`,
    /// a block of transformed tiles `(16, tileBlock, channels)`, and their products
    /// `(16, tileBlock, channelBlock)`.
    var scratchCount: Int {
        shape.height * shape.width * channels + 16 * Self.tileBlock * channels + 16 * Self.tileBlock * Self.channelBlock
    }

    /// Floats of workspace a pass at `threadCount` threads needs.
    func workspaceCount(threadCount: Int) -> Int {
        workspaceCount(chunks: Conv2dPlan.chunkCount(shape.batch, threadCount: threadCount))
    }

    func workspaceCount(chunks: Int) -> Int { weightCount + chunks * scratchCount }

    /// `U_ξ[c][o] = (G g_oc Gᵀ)_ξ` for every kernel of `weight (outChannels, inChannels, 3, 3)`,
    /// into `packed (16, channels, outChannels)`, zero past the input channels.
    func transformWeight(_ weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        let inChannels = shape.inChannels, outChannels = shape.outChannels
        packed.initialize(repeating: 0, count: weightCount)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                let g = weight + (o * inChannels + c) * 9
                // G applied to a column of three: its four rows.
                @inline(__always) func transformed(_ a: Float, _ b: Float, _ c: Float) -> SIMD4<Float> {
                    SIMD4(a, (a + b + c) * 0.5, (a - b + c) * 0.5, c)
                }
                // The columns of G g (4 × 3), then of (G g) Gᵀ (4 × 4).
                let r0 = transformed(g[0], g[3], g[6]), r1 = transformed(g[1], g[4], g[7]), r2 = transformed(g[2], g[5], g[8])
                let u = (r0, (r0 + r1 + r2) * 0.5, (r0 - r1 + r2) * 0.5, r2)
                for i in 0..<4 {
                    let row = SIMD4<Float>(u.0[i], u.1[i], u.2[i], u.3[i])
                    for j in 0..<4 { packed[((4 * i + j) * channels + c) * outChannels + o] = row[j] }
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

    /// `V_ξ[t][c] = (Bᵀ d B)_ξ` of tiles `first ..< first + tileBlock` (the last tile again
    /// past the sample's) from the channels-last `copy`, eight channels at a time, into
    /// `block (16, tileBlock, channels)`: the tile's 4×4 pixels combined down (Bᵀ), then
    /// across (B).
    func transformTiles(from first: Int, copy: UnsafePointer<Float>, into block: UnsafeMutablePointer<Float>) {
        let width = shape.width, channels = channels, last = tileRows * tileColumns - 1
        let step = Self.tileBlock * channels
        for t in 0..<Self.tileBlock {
            let tile = min(first + t, last)
            let origin = copy + (2 * (tile / tileColumns) * width + 2 * (tile % tileColumns)) * channels
            for c in stride(from: 0, to: channels, by: 8) {
                // Bᵀ d for the tile's column k: its four pixels combined.
                @inline(__always) func down(_ k: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                    let pixel = origin + k * channels + c
                    let d0 = load8(pixel), d1 = load8(pixel + width * channels)
                    let d2 = load8(pixel + 2 * width * channels), d3 = load8(pixel + 3 * width * channels)
                    return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                }
                let k0 = down(0), k1 = down(1), k2 = down(2), k3 = down(3)
                let destination = block + t * channels + c
                // (Bᵀ d) B: each combination's four columns combined likewise.
                @inline(__always) func store(_ i: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ e: SIMD8<Float>, _ f: SIMD8<Float>) {
                    store8(a - e, destination + (4 * i) * step)
                    store8(b + e, destination + (4 * i + 1) * step)
                    store8(e - b, destination + (4 * i + 2) * step)
                    store8(b - f, destination + (4 * i + 3) * step)
                }
                store(0, k0.0, k1.0, k2.0, k3.0)
                store(1, k0.1, k1.1, k2.1, k3.1)
                store(2, k0.2, k1.2, k2.2, k3.2)
                store(3, k0.3, k1.3, k2.3, k3.3)
            }
        }
    }

    /// One sample: copied channels-last (`channelsLast`), then six tiles at a time
    /// transformed (`transformTiles`), and for each 16 output channels the 16 products
    /// `M_ξ = Σ_c V_ξ[c] · U_ξ[c]` (`winogradProduct16x6`: one fused multiply-add per
    /// input channel, in channel order), each tile transformed back (`Aᵀ M A + bias`), its
    /// four outputs pooled in row-major order (`poolWindow`, then ReLU when `relu`), and
    /// written to
    /// `output (outChannels, tiles)`.
    func convolvePoolSample(
        input: UnsafePointer<Float>, next: UnsafePointer<Float>?, packedWeight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, relu: Bool, scratch: UnsafeMutablePointer<Float>
    ) {
        let outChannels = shape.outChannels, tiles = tileRows * tileColumns, channels = channels
        let copy = scratch, block = copy + shape.height * shape.width * channels
        let products = block + 16 * Self.tileBlock * channels
        channelsLast(input, into: copy)
        // The next sample's input (`next`, nil for the batch's last), a share before each
        // block of tiles: without it, the copy's loads from memory were this kernel's largest
        // stall (`perf` of the published net's evaluation, in a build without the prefetch
        // that was not committed; no command here reproduces that number).
        let inputBytes = shape.inChannels * shape.height * shape.width * MemoryLayout<Float>.size
        let lines = next == nil ? 0 : (inputBytes + 63) / 64, blocks = (tiles + Self.tileBlock - 1) / Self.tileBlock
        let linesPerBlock = (lines + blocks - 1) / blocks
        for t0 in stride(from: 0, to: tiles, by: Self.tileBlock) {
            let first = t0 / Self.tileBlock * linesPerBlock
            for line in stride(from: first, to: min(first + linesPerBlock, lines), by: 1) {
                prefetch_to_l2(UnsafeRawPointer(next!) + 64 * line)
            }
            transformTiles(from: t0, copy: copy, into: block)
            for o0 in stride(from: 0, to: outChannels, by: Self.channelBlock) {
                let bias0 = bias.map { load8($0 + o0) } ?? SIMD8(), bias1 = bias.map { load8($0 + o0 + 8) } ?? SIMD8()
                for xi in 0..<16 {
                    winogradProduct16x6(channels: channels, weight: packedWeight + xi * channels * outChannels + o0,
                                        weightStride: outChannels, tiles: block + xi * Self.tileBlock * channels,
                                        products: products + xi * Self.tileBlock * Self.channelBlock)
                }
                for t in 0..<min(Self.tileBlock, tiles - t0) {
                    for half in 0..<2 {
                        @inline(__always) func m(_ xi: Int) -> SIMD8<Float> {
                            load8(products + (xi * Self.tileBlock + t) * Self.channelBlock + half * 8)
                        }
                        // Aᵀ M: rows 0 + 1 + 2 and 1 − 2 − 3, for each column j.
                        let p0 = m(0) + m(4) + m(8), q0 = m(4) - m(8) - m(12)
                        let p1 = m(1) + m(5) + m(9), q1 = m(5) - m(9) - m(13)
                        let p2 = m(2) + m(6) + m(10), q2 = m(6) - m(10) - m(14)
                        let p3 = m(3) + m(7) + m(11), q3 = m(7) - m(11) - m(15)
                        // (Aᵀ M) A: the window's four outputs, top-left first, pooled.
                        let b = half == 0 ? bias0 : bias1
                        let best = poolWindow(p0 + p1 + p2 + b, p1 - p2 - p3 + b, q0 + q1 + q2 + b, q1 - q2 - q3 + b,
                                              relu: relu)
                        let destination = output + (o0 + half * 8) * tiles + t0 + t
                        for lane in 0..<8 { destination[lane * tiles] = best[lane] }
                    }
                }
            }
        }
    }
}

/// `products[t][0..<16] = Σ_c tiles[t · channels + c] · weight[c · weightStride + 0..<16]`
/// for six tiles `t` and 16 output channels: twelve 8-lane sums, from zero, one fused
/// multiply-add per channel in order; two weight loads and six broadcasts per twelve.
///
/// - Parameters:
///   - weight: `(channels, weightStride)`, the block's 16 channels first in each row.
///   - tiles: `(6, channels)`.
///   - products: `(6, 16)`, overwritten.
@inline(__always)
func winogradProduct16x6(
    channels: Int, weight: UnsafePointer<Float>, weightStride: Int, tiles: UnsafePointer<Float>,
    products: UnsafeMutablePointer<Float>
) {
    var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
    var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
    var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
    let t1 = tiles + channels, t2 = t1 + channels, t3 = t2 + channels, t4 = t3 + channels, t5 = t4 + channels
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

/// `max_pool2d(conv2d(input))` (then ReLU when `relu`) of an evaluation pass by Winograd
/// F(2×2, 3×3) (`WinogradPool.applies`): the weight transformed once, then each thread
/// takes the next four samples until none are left, each sample's outputs computed the
/// same way whatever the split.
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
    winograd.transformWeight(weight, into: packed)
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
                                        packedWeight: packed, bias: bias,
                                        output: output + n * pooledSample, relu: relu, scratch: scratch)
        }
    }
}
