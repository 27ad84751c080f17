// MARK: - Gradients from a sparse output gradient (a convolution followed by ReLU + max-pool)

// The shapes computed here are those `Conv2dPlan.allowsSparseGradient` accepts, when the
// gradient is sparse (`conv2dGradientIsSparse`). The sparse path visits only the nonzero
// gradients `g` at `(o, oh, ow)`: each adds `g · input[c, oh + kh, ow ..< ow + kW]` to the
// weight gradient and `g · weight[o, c, kh, :]` to the input gradient, for every `(c, kh)`,
// as one 8-lane fused multiply-add per row.

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

/// `p[0..<8]`, or as much of it as lies before `end` (zeros after).
@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>, before end: UnsafePointer<Float>) -> SIMD8<Float> {
    if p + 8 <= end { return load8(p) }
    var v = SIMD8<Float>()
    for lane in 0..<max(0, min(8, end - p)) { v[lane] = p[lane] }
    return v
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

/// The nonzero entries of one sample's output gradient, grouped by output pixel: for pixel
/// `p`, `channel[start[p] ..< start[p + 1]]` and `value[...]`, in channel order.
@inlinable
func nonzerosByPixel(
    _ g: UnsafePointer<Float>, channels: Int, plane: Int,
    start: UnsafeMutablePointer<Int32>, channel: UnsafeMutablePointer<Int32>, value: UnsafeMutablePointer<Float>
) {
    start.update(repeating: 0, count: plane + 1)
    for o in 0..<channels {
        for p in 0..<plane where g[o * plane + p] != 0 { start[p + 1] += 1 }
    }
    for p in 0..<plane { start[p + 1] += start[p] }
    // Fill with a running cursor per pixel (start[p] moves to start[p + 1], then restored).
    for o in 0..<channels {
        for p in 0..<plane where g[o * plane + p] != 0 {
            let slot = Int(start[p])
            channel[slot] = Int32(truncatingIfNeeded: o)
            value[slot] = g[o * plane + p]
            start[p] += 1
        }
    }
    for p in stride(from: plane, to: 0, by: -1) { start[p] = start[p - 1] }
    start[0] = 0
}

/// `gradInput` for `samples` from a sparse `gradOutput` (see `Conv2dPlan.allowsSparseGradient`).
///
/// For each output pixel with nonzero gradients, the column `Σ_o g[o] · weight[o, :]` is
/// summed four kernel rows at a time in registers, then added to the input gradient under
/// the pixel's window: the weight rows are read once per nonzero, the input gradient once
/// per pixel.
///
/// - Parameters:
///   - paddedWeight: `(outChannels, inChannels, kernelHeight, 8)`, the weight with each
///     kernel row padded with zeros to 8 floats.
///   - gradInput: `(batch, inChannels, height, width)`; the samples' part is overwritten.
@inlinable
func conv2dBackwardInputSparse(
    _ s: Conv2dShape, samples: Range<Int>,
    gradOutput: UnsafePointer<Float>, paddedWeight: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>
) {
    let plane = s.outPlane, outW = s.outWidth, outputSample = s.outChannels * plane
    let inputSample = s.inChannels * s.height * s.width
    let offsets = kernelRowOffsets(s), rows = offsets.count, weightStride = rows * 8
    withUnsafeTemporaryAllocation(of: Int32.self, capacity: plane + 1 + outputSample) { ints in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: outputSample) { values in
            let start = ints.baseAddress!, channel = start + plane + 1, value = values.baseAddress!
            offsets.withUnsafeBufferPointer { offsets in
                let offsets = offsets.baseAddress!
                for n in samples {
                    let sampleGradInput = gradInput + n * inputSample
                    sampleGradInput.update(repeating: 0, count: inputSample)
                    // 8-lane adds reach up to 8 - kW floats past a row: into the next row of the
                    // same sample (adding 0), but never past the sample's end.
                    let sampleEnd = sampleGradInput + inputSample
                    nonzerosByPixel(gradOutput + n * outputSample, channels: s.outChannels, plane: plane,
                                    start: start, channel: channel, value: value)
                    for p in 0..<plane where start[p] < start[p + 1] {
                        let origin = sampleGradInput + (p / outW) * s.width + p % outW
                        let entries = Int(start[p])..<Int(start[p + 1])
                        var j = 0
                        while j + 4 <= rows {
                            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                            for e in entries {
                                let g = SIMD8<Float>(repeating: value[e])
                                let w = paddedWeight + Int(channel[e]) * weightStride + j * 8
                                a0.addProduct(g, load8(w)); a1.addProduct(g, load8(w + 8))
                                a2.addProduct(g, load8(w + 16)); a3.addProduct(g, load8(w + 24))
                            }
                            add8(a0, to: origin + offsets[j], before: sampleEnd)
                            add8(a1, to: origin + offsets[j + 1], before: sampleEnd)
                            add8(a2, to: origin + offsets[j + 2], before: sampleEnd)
                            add8(a3, to: origin + offsets[j + 3], before: sampleEnd)
                            j += 4
                        }
                        while j < rows {
                            var a = SIMD8<Float>()
                            for e in entries {
                                a.addProduct(SIMD8(repeating: value[e]),
                                             load8(paddedWeight + Int(channel[e]) * weightStride + j * 8))
                            }
                            add8(a, to: origin + offsets[j], before: sampleEnd)
                            j += 1
                        }
                    }
                }
            }
        }
    }
}

/// The weight and bias gradients of `samples` from a sparse `gradOutput`, written (not
/// added) to the padded partial `paddedGradWeight` `(outChannels, inChannels, kernelHeight,
/// 8)` (lanes past `kernelWidth` hold junk) and `gradBias`.
///
/// For each output channel, four kernel rows of its gradient are summed at a time in
/// registers over every nonzero gradient of every sample (`g · input` under the pixel's
/// window), then stored once.
@inlinable
func conv2dBackwardWeightSparse(
    _ s: Conv2dShape, samples: Range<Int>,
    input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
    paddedGradWeight: UnsafeMutablePointer<Float>, gradBias: UnsafeMutablePointer<Float>?
) {
    let plane = s.outPlane, outW = s.outWidth, outputSample = s.outChannels * plane
    let inputSample = s.inChannels * s.height * s.width
    let offsets = kernelRowOffsets(s), rows = offsets.count
    // 8-lane loads reach up to 8 - kW floats past a row: harmless inside the input, but not
    // past its last float.
    let inputEnd = input + s.batch * inputSample
    // Nonzeros of (sample, channel) k: value and input offset at first[k] ..< first[k + 1].
    let pairs = samples.count * s.outChannels
    var first = [Int](repeating: 0, count: pairs + 1)
    var values: [Float] = [], pixels: [Int] = []
    values.reserveCapacity(samples.count * outputSample / 4)
    pixels.reserveCapacity(samples.count * outputSample / 4)
    for (i, n) in samples.enumerated() {
        for o in 0..<s.outChannels {
            let g = gradOutput + n * outputSample + o * plane
            for p in 0..<plane where g[p] != 0 {
                values.append(g[p])
                pixels.append(n * inputSample + (p / outW) * s.width + p % outW)
            }
            first[i * s.outChannels + o + 1] = values.count
        }
    }
    if let gradBias {
        for o in 0..<s.outChannels {
            var sum: Float = 0
            for n in samples { sum += planeSum(gradOutput + n * outputSample + o * plane, count: plane) }
            gradBias[o] = sum
        }
    }
    values.withUnsafeBufferPointer { values in
        pixels.withUnsafeBufferPointer { pixels in
            offsets.withUnsafeBufferPointer { offsets in
                for o in 0..<s.outChannels {
                    let sums = paddedGradWeight + o * rows * 8
                    var j = 0
                    while j < rows {
                        let width = min(4, rows - j)  // rows in this block; a short block repeats its last
                        let d0 = offsets[j], d1 = offsets[j + min(1, width - 1)]
                        let d2 = offsets[j + min(2, width - 1)], d3 = offsets[j + min(3, width - 1)]
                        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                        for i in 0..<samples.count {
                            let k = i * s.outChannels + o
                            for e in first[k]..<first[k + 1] {
                                let g = SIMD8<Float>(repeating: values[e])
                                let x = input + pixels[e]
                                if x + d3 + 8 <= inputEnd {
                                    a0.addProduct(g, load8(x + d0)); a1.addProduct(g, load8(x + d1))
                                    a2.addProduct(g, load8(x + d2)); a3.addProduct(g, load8(x + d3))
                                } else {
                                    a0.addProduct(g, load8(x + d0, before: inputEnd))
                                    a1.addProduct(g, load8(x + d1, before: inputEnd))
                                    a2.addProduct(g, load8(x + d2, before: inputEnd))
                                    a3.addProduct(g, load8(x + d3, before: inputEnd))
                                }
                            }
                        }
                        for (r, a) in [a0, a1, a2, a3].prefix(width).enumerated() { store8(a, sums + (j + r) * 8) }
                        j += width
                    }
                }
            }
        }
    }
}
