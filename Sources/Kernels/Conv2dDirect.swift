// MARK: - Direct convolution (LeNet's conv1 and conv2)

// The shapes computed here, and why, are `Conv2dPlan.choose`'s: unstrided convolutions at
// least 8 outputs wide (forward), and with at most 32 taps (weight gradient).

/// Offsets, in floats from a sample's first input element, of each tap `(c, kh, kw)` in
/// weight order (`(c · kH + kh) · kW + kw`), padded with `0` up to a multiple of `multiple`.
@inlinable
func tapOffsets(_ s: Conv2dShape, multiple: Int) -> [Int] {
    var offsets: [Int] = []
    offsets.reserveCapacity(s.groupPatchSize + multiple)
    for c in 0..<s.inChannels {
        for kh in 0..<s.kernelHeight {
            for kw in 0..<s.kernelWidth { offsets.append((c * s.height + kh) * s.width + kw) }
        }
    }
    while offsets.count % multiple != 0 { offsets.append(0) }
    return offsets
}

/// The first column of each 8-wide chunk of an output row: `0, 8, 16, ...`, with a last
/// chunk ending at `outWidth` that overlaps the one before when `outWidth % 8 != 0`.
@inlinable
func columnChunks(_ outWidth: Int) -> [Int] {
    var starts = Array(stride(from: 0, to: outWidth - 7, by: 8))
    if outWidth % 8 != 0 { starts.append(outWidth - 8) }
    return starts
}

@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// Floats `packDirectWeight` writes: the output channels rounded up to blocks of 5, × taps.
@inlinable
func packedDirectWeightCount(_ s: Conv2dShape) -> Int { (s.outChannels + 4) / 5 * 5 * s.groupPatchSize }

/// `weight` `(outChannels, taps)` as `(block of 5 channels, tap, 5)`, zero for the channels
/// past the last: the five weights `conv2dForwardDirect` broadcasts per tap lie together.
/// Done once per call, before the threads start.
@inlinable
func packDirectWeight(_ s: Conv2dShape, weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
    let taps = s.groupPatchSize
    for b in 0..<(s.outChannels + 4) / 5 {
        for t in 0..<taps {
            for j in 0..<5 {
                let o = b * 5 + j
                packed[(b * taps + t) * 5 + j] = o < s.outChannels ? weight[o * taps + t] : 0
            }
        }
    }
}

/// `output = conv2d(input, weight) + bias` for `samples`, computed directly (see
/// `Conv2dPlan.choose`): five output channels at a time, and the output plane in
/// chunks of 8 pixels of a row, two chunks at a time, held in ten registers while every
/// tap is added with a fused multiply-add (two input loads and five weight broadcasts per
/// ten FMAs; an odd last chunk is computed twice).
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - packedWeight: the weight as `packDirectWeight` lays it out.
///   - bias: `(outChannels)` or nil.
///   - output: `(batch, outChannels, outHeight, outWidth)`; the rows of `samples` are overwritten.
@inlinable
func conv2dForwardDirect(
    _ s: Conv2dShape, samples: Range<Int>,
    input: UnsafePointer<Float>, packedWeight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>
) {
    let taps = s.groupPatchSize, outH = s.outHeight, outW = s.outWidth, plane = outH * outW
    let offsets = tapOffsets(s, multiple: 1)
    // Every 8-pixel chunk of the output plane: (offset in the input, offset in the output).
    var chunks: [(input: Int, output: Int)] = []
    for r in 0..<outH {
        for column in columnChunks(outW) { chunks.append((r * s.width + column, r * outW + column)) }
    }
    let blocks = (s.outChannels + 4) / 5
    let w = packedWeight
    offsets.withUnsafeBufferPointer { offsets in
        let offsets = offsets.baseAddress!
        for n in samples {
            let sample = input + n * s.inChannels * s.height * s.width
            for b in 0..<blocks {
                let wb = w + b * taps * 5
                let valid = min(5, s.outChannels - b * 5)
                var start = SIMD8<Float>()
                if let bias { for j in 0..<valid { start[j] = bias[b * 5 + j] } }
                let b0 = SIMD8(repeating: start[0]), b1 = SIMD8(repeating: start[1])
                let b2 = SIMD8(repeating: start[2]), b3 = SIMD8(repeating: start[3])
                let b4 = SIMD8(repeating: start[4])
                let destination = output + (n * s.outChannels + b * 5) * plane
                var i = 0
                while i < chunks.count {
                    let c0 = chunks[i], c1 = chunks[min(i + 1, chunks.count - 1)]
                    let x0 = sample + c0.input, x1 = sample + c1.input
                    var a0 = b0, a1 = b1, a2 = b2, a3 = b3, a4 = b4
                    var e0 = b0, e1 = b1, e2 = b2, e3 = b3, e4 = b4
                    for t in 0..<taps {
                        let u = load8(x0 + offsets[t]), v = load8(x1 + offsets[t])
                        let wt = wb + t * 5
                        let w0 = SIMD8(repeating: wt[0]), w1 = SIMD8(repeating: wt[1])
                        let w2 = SIMD8(repeating: wt[2]), w3 = SIMD8(repeating: wt[3])
                        let w4 = SIMD8(repeating: wt[4])
                        a0.addProduct(u, w0); e0.addProduct(v, w0)
                        a1.addProduct(u, w1); e1.addProduct(v, w1)
                        a2.addProduct(u, w2); e2.addProduct(v, w2)
                        a3.addProduct(u, w3); e3.addProduct(v, w3)
                        a4.addProduct(u, w4); e4.addProduct(v, w4)
                    }
                    let out0 = destination + c0.output, out1 = destination + c1.output
                    store8(a0, out0); store8(e0, out1)
                    if valid > 1 { store8(a1, out0 + plane); store8(e1, out1 + plane) }
                    if valid > 2 { store8(a2, out0 + 2 * plane); store8(e2, out1 + 2 * plane) }
                    if valid > 3 { store8(a3, out0 + 3 * plane); store8(e3, out1 + 3 * plane) }
                    if valid > 4 { store8(a4, out0 + 4 * plane); store8(e4, out1 + 4 * plane) }
                    i += 2
                }
            }
        }
    }
}

/// The weight and bias gradients of `samples`, computed directly (see
/// `Conv2dPlan.choose`) and written (not added) to `gradWeight` and `gradBias`.
///
/// Two output channels × four taps are summed at a time in eight registers of eight lanes,
/// over every sample, row and column chunk in that order; the lanes are then added in lane
/// order. The order is fixed, so the result depends only on the inputs and `samples`.
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - gradWeight: `(outChannels, inChannels, kernelHeight, kernelWidth)`, overwritten.
///   - gradBias: `(outChannels)`, overwritten; nil to skip it.
@inlinable
func conv2dBackwardWeightDirect(
    _ s: Conv2dShape, samples: Range<Int>,
    input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
    gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
) {
    let taps = s.groupPatchSize, outH = s.outHeight, outW = s.outWidth, plane = outH * outW
    let inputSample = s.inChannels * s.height * s.width, outputSample = s.outChannels * plane
    let offsets = tapOffsets(s, multiple: 4)
    let chunks = columnChunks(outW)
    // Lanes of the last chunk already counted by the one before it (when it overlaps).
    let overlap = outW % 8 == 0 ? 0 : 8 - outW % 8
    let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    let fresh = SIMD8<Float>(repeating: 1).replacing(with: 0, where: lane .< Int32(overlap))
    offsets.withUnsafeBufferPointer { offsets in
        for o0 in stride(from: 0, to: s.outChannels, by: 2) {
            let o1 = min(o0 + 1, s.outChannels - 1)  // an odd last channel is computed twice
            for t in stride(from: 0, to: offsets.count, by: 4) {
                let d0 = offsets[t], d1 = offsets[t + 1], d2 = offsets[t + 2], d3 = offsets[t + 3]
                var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
                var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
                for n in samples {
                    let x = input + n * inputSample
                    let g0 = gradOutput + n * outputSample + o0 * plane
                    let g1 = gradOutput + n * outputSample + o1 * plane
                    for r in 0..<outH {
                        for column in chunks {
                            var gv0 = load8(g0 + r * outW + column)
                            var gv1 = load8(g1 + r * outW + column)
                            if overlap > 0 && column == outW - 8 {
                                gv0 *= fresh
                                gv1 *= fresh
                            }
                            let origin = x + r * s.width + column
                            let x0 = load8(origin + d0), x1 = load8(origin + d1)
                            let x2 = load8(origin + d2), x3 = load8(origin + d3)
                            a00.addProduct(gv0, x0); a01.addProduct(gv0, x1)
                            a02.addProduct(gv0, x2); a03.addProduct(gv0, x3)
                            a10.addProduct(gv1, x0); a11.addProduct(gv1, x1)
                            a12.addProduct(gv1, x2); a13.addProduct(gv1, x3)
                        }
                    }
                }
                // Tap slots past the last tap (offset 0 padding) are dropped; o1 == o0 for an
                // odd last channel, whose two identical sums are then written twice.
                let row0 = gradWeight + o0 * taps + t, row1 = gradWeight + o1 * taps + t
                let count = min(4, taps - t)
                for (k, (sum0, sum1)) in [(a00, a10), (a01, a11), (a02, a12), (a03, a13)].prefix(count).enumerated() {
                    row0[k] = sum0.sum()
                    row1[k] = sum1.sum()
                }
            }
        }
    }
    if let gradBias {
        for o in 0..<s.outChannels {
            var sum = SIMD8<Float>()
            for n in samples {
                let g = gradOutput + n * outputSample + o * plane
                for r in 0..<outH {
                    for column in chunks {
                        let v = load8(g + r * outW + column)
                        sum += overlap > 0 && column == outW - 8 ? v * fresh : v
                    }
                }
            }
            gradBias[o] = sum.sum()
        }
    }
}
