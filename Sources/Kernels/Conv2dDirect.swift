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
