// MARK: - Direct weight gradient of few taps (LeNet's conv1), and helpers of the direct kernels

// The shapes computed here, and why, are `Conv2dPlan.choose`'s: unstrided convolutions with
// at most 32 taps (weight gradient). The other direct kernels are in Conv2dBlocked.swift.

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

@inlinable @inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inlinable @inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Floats of scratch `conv2dBackwardWeightDirect` needs: eight 8-lane sums for each pair
/// of output channels and group of four taps, then one 8-lane sum per output channel.
@inlinable
func directBackwardWeightScratchCount(_ s: Conv2dShape) -> Int {
    (s.outChannels + 1) / 2 * ((s.groupPatchSize + 3) / 4) * 64 + s.outChannels * 8
}

/// The weight and bias gradients of `samples`, computed directly (see
/// `Conv2dPlan.choose`) and written (not added) to `gradWeight` and `gradBias`.
///
/// Two output channels × four taps are summed at a time in eight registers of eight lanes,
/// over every sample, row and column chunk in that order; the lanes are then added in lane
/// order. The order is fixed, so the result depends only on the inputs and `samples`.
/// The sample loop is the outermost: each block's sums wait in `scratch` between samples
/// (which leaves every sum's order as above), so one sample's output gradient is read from
/// the cache for all blocks instead of the whole batch's once per block from memory
/// (speedrun-published's conv1 at batch 256: 14 MB, read seven times).
///
/// - Parameters:
///   - input: `(batch, inChannels, height, width)`.
///   - gradOutput: `(batch, outChannels, outHeight, outWidth)`.
///   - gradWeight: `(outChannels, inChannels, kernelHeight, kernelWidth)`, overwritten.
///   - gradBias: `(outChannels)`, overwritten; nil to skip it.
///   - scratch: `directBackwardWeightScratchCount(s)` floats.
@inlinable
func conv2dBackwardWeightDirect(
    _ s: Conv2dShape, samples: Range<Int>,
    input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
    gradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?,
    scratch: UnsafeMutablePointer<Float>
) {
    let taps = s.groupPatchSize, outH = s.outHeight, outW = s.outWidth, plane = outH * outW
    let inputSample = s.inChannels * s.height * s.width, outputSample = s.outChannels * plane
    let offsets = tapOffsets(s, multiple: 4)
    let tapGroups = offsets.count / 4
    // Lanes of the last chunk already counted by the one before it (when it overlaps).
    let overlap = outW % 8 == 0 ? 0 : 8 - outW % 8
    let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
    let fresh = SIMD8<Float>(repeating: 1).replacing(with: 0, where: lane .< Int32(overlap))
    let biasSums = scratch + (s.outChannels + 1) / 2 * tapGroups * 64
    scratch.update(repeating: 0, count: directBackwardWeightScratchCount(s))
    offsets.withUnsafeBufferPointer { offsets in
        for n in samples {
            let x = input + n * inputSample
            for o0 in stride(from: 0, to: s.outChannels, by: 2) {
                let o1 = min(o0 + 1, s.outChannels - 1)  // an odd last channel is computed twice
                let g0 = gradOutput + n * outputSample + o0 * plane
                let g1 = gradOutput + n * outputSample + o1 * plane
                for t in stride(from: 0, to: offsets.count, by: 4) {
                    let d0 = offsets[t], d1 = offsets[t + 1], d2 = offsets[t + 2], d3 = offsets[t + 3]
                    let sums = scratch + (o0 / 2 * tapGroups + t / 4) * 64
                    var a00 = load8(sums), a01 = load8(sums + 8), a02 = load8(sums + 16), a03 = load8(sums + 24)
                    var a10 = load8(sums + 32), a11 = load8(sums + 40), a12 = load8(sums + 48), a13 = load8(sums + 56)
                    @inline(__always) func accumulate(_ gv0: SIMD8<Float>, _ gv1: SIMD8<Float>, _ origin: UnsafePointer<Float>) {
                        let x0 = load8(origin + d0), x1 = load8(origin + d1)
                        let x2 = load8(origin + d2), x3 = load8(origin + d3)
                        a00.addProduct(gv0, x0); a01.addProduct(gv0, x1)
                        a02.addProduct(gv0, x2); a03.addProduct(gv0, x3)
                        a10.addProduct(gv1, x0); a11.addProduct(gv1, x1)
                        a12.addProduct(gv1, x2); a13.addProduct(gv1, x3)
                    }
                    for r in 0..<outH {
                        let gr0 = g0 + r * outW, gr1 = g1 + r * outW, xr = x + r * s.width
                        // The whole chunks, then the overlapping last one with its counted lanes zeroed
                        // (`columnChunks`' order; no test inside the loop).
                        var column = 0
                        while column + 8 <= outW {
                            accumulate(load8(gr0 + column), load8(gr1 + column), xr + column)
                            column += 8
                        }
                        if overlap > 0 {
                            accumulate(load8(gr0 + outW - 8) * fresh, load8(gr1 + outW - 8) * fresh, xr + outW - 8)
                        }
                    }
                    store8(a00, sums); store8(a01, sums + 8); store8(a02, sums + 16); store8(a03, sums + 24)
                    store8(a10, sums + 32); store8(a11, sums + 40); store8(a12, sums + 48); store8(a13, sums + 56)
                }
            }
            if gradBias != nil {
                for o in 0..<s.outChannels {
                    let g = gradOutput + n * outputSample + o * plane
                    var sum = load8(biasSums + o * 8)
                    for r in 0..<outH {
                        var column = 0
                        while column + 8 <= outW {
                            sum += load8(g + r * outW + column)
                            column += 8
                        }
                        if overlap > 0 { sum += load8(g + r * outW + outW - 8) * fresh }
                    }
                    store8(sum, biasSums + o * 8)
                }
            }
        }
        // Tap slots past the last tap (offset 0 padding) are dropped; o1 == o0 for an odd
        // last channel, whose two identical sums are then written twice.
        for o0 in stride(from: 0, to: s.outChannels, by: 2) {
            let o1 = min(o0 + 1, s.outChannels - 1)
            for t in stride(from: 0, to: offsets.count, by: 4) {
                let sums = scratch + (o0 / 2 * tapGroups + t / 4) * 64
                let row0 = gradWeight + o0 * taps + t, row1 = gradWeight + o1 * taps + t
                for k in 0..<min(4, taps - t) {
                    row0[k] = load8(sums + 8 * k).sum()
                    row1[k] = load8(sums + 32 + 8 * k).sum()
                }
            }
        }
    }
    if let gradBias {
        for o in 0..<s.outChannels { gradBias[o] = load8(biasSums + o * 8).sum() }
    }
}
