// MARK: - Forward

/// Max pooling with PyTorch's choice of index: scanning each window in row-major order, an
/// element replaces the running maximum when it is strictly greater or NaN, so the FIRST
/// maximum wins ties and NaN propagates. Padding never wins (it acts as -inf); a window of
/// all -inf reports its first in-image element.
///
/// - Parameters:
///   - input: `(batch, channels, height, width)`.
///   - output: `(batch, channels, outHeight, outWidth)`, overwritten.
///   - argmax: `(batch, channels, outHeight, outWidth)`, overwritten with the flat index
///     `ih * width + iw` of the chosen element within its input plane; nil when no backward
///     pass follows (evaluation), and only the values are computed.
///   - relu: clamp each plane's outputs at 0 (NaN kept) while they are in cache:
///     `reluMaxPool2dForward`.
public func maxPool2dForward(
    _ shape: Pool2dShape,
    input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?, relu: Bool = false
) {
    Parallelism.forEachRange(shape.batch * shape.channels, minimumPerChunk: 16) { planes in
        maxPool2dPlanes(shape, planes: planes, input: input, output: output, argmax: argmax, relu: relu)
    }
}

/// `maxPool2dForward` of the planes `planes` (plane `i` of all `batch · channels`), on the
/// calling thread: for the callers that split the work themselves (`conv2dMaxPool2dForward`).
@inlinable
func maxPool2dPlanes(
    _ s: Pool2dShape, planes: Range<Int>,
    input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?, relu: Bool
) {
    let inPlane = s.height * s.width
    let outH = s.outHeight, outW = s.outWidth, outPlane = outH * outW
    let simple2x2 = isSimple2x2(s)
    for plane in planes {
        let source = input + plane * inPlane
        let destination = output + plane * outPlane
        let indices = argmax.map { $0 + plane * outPlane }
        defer {
            if relu {
                for i in 0..<outPlane {
                    let value = destination[i]
                    destination[i] = value < 0 ? 0 : value  // keeps NaN
                }
            }
        }
        if simple2x2 {
            if let indices {
                pool2x2Plane(s, source: source, output: destination, argmax: indices)
            } else {
                pool2x2PlaneValues(s, source: source, output: destination)
            }
            continue
        }
        for oh in 0..<outH {
            var h0 = oh * s.strideH - s.padH
            let h1 = min(h0 + (s.kernelH - 1) * s.dilationH + 1, s.height)
            while h0 < 0 { h0 += s.dilationH }
            for ow in 0..<outW {
                var w0 = ow * s.strideW - s.padW
                let w1 = min(w0 + (s.kernelW - 1) * s.dilationW + 1, s.width)
                while w0 < 0 { w0 += s.dilationW }
                var best = -Float.infinity
                var bestIndex = h0 * s.width + w0
                var ih = h0
                while ih < h1 {
                    var iw = w0
                    while iw < w1 {
                        let index = ih * s.width + iw
                        let value = source[index]
                        if value > best || value.isNaN {
                            best = value
                            bestIndex = index
                        }
                        iw += s.dilationW
                    }
                    ih += s.dilationH
                }
                destination[oh * outW + ow] = best
                indices?[oh * outW + ow] = Int32(truncatingIfNeeded: bestIndex)
            }
        }
    }
}

/// The 2×2, stride 2 case (LeNet's), same rule as the general loop, four windows at a time:
/// eight contiguous floats of the top and of the bottom row split into even and odd
/// columns give the four taps of four neighbouring windows, combined with branch-free
/// selects (random activations made a branchy scalar loop mispredict on most windows).
@inlinable
func pool2x2Plane(
    _ s: Pool2dShape, source: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>
) {
    let outH = s.outHeight, outW = s.outWidth, width = s.width
    for oh in 0..<outH {
        let top = 2 * oh * width
        let rowOutput = output + oh * outW
        let rowArgmax = argmax + oh * outW
        var ow = 0
        while ow + 4 <= outW {
            let i0 = top + 2 * ow
            let (best, bestIndex) = poolFourWindows(
                upper: load8(source + i0), lower: load8(source + i0 + width), topLeft: Int32(truncatingIfNeeded: i0),
                rowStride: Int32(truncatingIfNeeded: width))
            UnsafeMutableRawPointer(rowOutput + ow).storeBytes(of: best, as: SIMD4<Float>.self)
            UnsafeMutableRawPointer(rowArgmax + ow).storeBytes(of: bestIndex, as: SIMD4<Int32>.self)
            ow += 4
        }
        while ow < outW {
            let i0 = top + 2 * ow
            // Starting at the first tap is the same as starting at -inf: it always wins.
            var best = source[i0]
            var bestIndex = i0
            for tap in 1..<4 {
                let index = i0 + (tap >> 1) * width + (tap & 1)
                let value = source[index]
                if value > best || value.isNaN {
                    best = value
                    bestIndex = index
                }
            }
            rowOutput[ow] = best
            rowArgmax[ow] = Int32(truncatingIfNeeded: bestIndex)
            ow += 1
        }
    }
}

/// `pool2x2Plane` without the argmax (evaluation): the same values, eight windows at a time,
/// then four, then one.
@inlinable
func pool2x2PlaneValues(_ s: Pool2dShape, source: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) {
    let outH = s.outHeight, outW = s.outWidth, width = s.width
    for oh in 0..<outH {
        let top = source + 2 * oh * width
        let rowOutput = output + oh * outW
        var ow = 0
        // Eight windows, then four, then one: written out per vector type, because a
        // generic helper over the width did not specialize and ran 2.7x slower (mnist-eval).
        while ow + 8 <= outW {
            let upper = UnsafeRawPointer(top + 2 * ow).loadUnaligned(as: SIMD16<Float>.self)
            let lower = UnsafeRawPointer(top + 2 * ow + width).loadUnaligned(as: SIMD16<Float>.self)
            var best = upper.evenHalf
            takeIfGreaterOrNaN(upper.oddHalf, best: &best)
            takeIfGreaterOrNaN(lower.evenHalf, best: &best)
            takeIfGreaterOrNaN(lower.oddHalf, best: &best)
            UnsafeMutableRawPointer(rowOutput + ow).storeBytes(of: best, as: SIMD8<Float>.self)
            ow += 8
        }
        while ow + 4 <= outW {
            let best = poolFourWindows(upper: load8(top + 2 * ow), lower: load8(top + 2 * ow + width))
            UnsafeMutableRawPointer(rowOutput + ow).storeBytes(of: best, as: SIMD4<Float>.self)
            ow += 4
        }
        while ow < outW {
            let i0 = 2 * ow
            var best = top[i0]
            for tap in 1..<4 {
                let value = top[i0 + (tap >> 1) * width + (tap & 1)]
                if value > best || value.isNaN { best = value }
            }
            rowOutput[ow] = best
            ow += 1
        }
    }
}

/// PyTorch's update rule on eight windows at once, values only.
@inlinable @inline(__always)
func takeIfGreaterOrNaN(_ value: SIMD8<Float>, best: inout SIMD8<Float>) {
    best.replace(with: value, where: (value .> best) .| (value .!= value))
}

/// Four neighbouring 2×2 windows by PyTorch's rule, taps in row-major order (top-left,
/// top-right, bottom-left, bottom-right; a tap strictly greater or NaN replaces the
/// maximum): `upper` and `lower` are the windows' eight columns in their top and bottom
/// rows; `topLeft` the first window's top-left index (the others' are 2, 4 and 6 after
/// it), `rowStride` the index step to the row below. Used by `pool2x2Plane` and by
/// `directConvolvePoolSample` on its sums.
@inlinable @inline(__always)
func poolFourWindows(
    upper: SIMD8<Float>, lower: SIMD8<Float>, topLeft: Int32, rowStride: Int32
) -> (SIMD4<Float>, SIMD4<Int32>) {
    let index0 = SIMD4<Int32>(repeating: topLeft) &+ SIMD4(0, 2, 4, 6), index2 = index0 &+ rowStride
    var best = upper.evenHalf
    var bestIndex = index0
    takeIfGreaterOrNaN(upper.oddHalf, index0 &+ 1, best: &best, bestIndex: &bestIndex)
    takeIfGreaterOrNaN(lower.evenHalf, index2, best: &best, bestIndex: &bestIndex)
    takeIfGreaterOrNaN(lower.oddHalf, index2 &+ 1, best: &best, bestIndex: &bestIndex)
    return (best, bestIndex)
}

/// One 2×2 window of eight channels by PyTorch's rule, its taps in row-major order (a tap
/// strictly greater or NaN replaces the maximum), then ReLU when `relu` (0 where greater:
/// NaN and -0 kept). A channel-lane tile's windows (`TileWindows`) and Winograd's output
/// tiles (`WinogradPool`).
@usableFromInline @_transparent
func poolWindow(
    _ topLeft: SIMD8<Float>, _ topRight: SIMD8<Float>, _ bottomLeft: SIMD8<Float>, _ bottomRight: SIMD8<Float>,
    relu: Bool
) -> SIMD8<Float> {
    var best = topLeft
    takeIfGreaterOrNaN(topRight, best: &best)
    takeIfGreaterOrNaN(bottomLeft, best: &best)
    takeIfGreaterOrNaN(bottomRight, best: &best)
    if relu { takeIfGreaterOrNaN(SIMD8(), best: &best) }
    return best
}

/// `poolWindow` with each maximum's index in the plane: `origin` the top-left tap's,
/// `rowStride` the step to the row below.
@usableFromInline @_transparent
func poolWindow(
    _ topLeft: SIMD8<Float>, _ topRight: SIMD8<Float>, _ bottomLeft: SIMD8<Float>, _ bottomRight: SIMD8<Float>,
    origin: Int32, rowStride down: Int32, relu: Bool
) -> (SIMD8<Float>, SIMD8<Int32>) {
    var best = topLeft, index = SIMD8<Int32>(repeating: origin)
    takeIfGreaterOrNaN(topRight, origin &+ 1, best: &best, bestIndex: &index)
    takeIfGreaterOrNaN(bottomLeft, origin &+ down, best: &best, bestIndex: &index)
    takeIfGreaterOrNaN(bottomRight, origin &+ down &+ 1, best: &best, bestIndex: &index)
    if relu { takeIfGreaterOrNaN(SIMD8(), best: &best) }  // 0 where greater: NaN and -0 kept
    return (best, index)
}

/// `poolFourWindows` without the indices (evaluation).
@inlinable @inline(__always)
func poolFourWindows(upper: SIMD8<Float>, lower: SIMD8<Float>) -> SIMD4<Float> {
    var best = upper.evenHalf
    takeIfGreaterOrNaN(upper.oddHalf, best: &best)
    takeIfGreaterOrNaN(lower.evenHalf, best: &best)
    takeIfGreaterOrNaN(lower.oddHalf, best: &best)
    return best
}

#if MNIST_ISA_AVX512
/// `poolFourWindows` for two channels at once in 16 lanes: `first` and `second` each hold a
/// chunk's eight sums (low half, the windows' top row) and the eight of the chunk below
/// (high half). Each window is taken as (top-left, top-right) against (bottom-left,
/// bottom-right), each pair by PyTorch's rule: that picks what the rule in row-major order
/// picks (the first maximum, or the last NaN), with the same index. Returns the first
/// channel's four windows in the low half, the second's in the high half.
@inlinable @inline(__always)
func poolFourWindowsOfTwo(
    _ first: SIMD16<Float>, _ second: SIMD16<Float>, topLeft: Int32, rowStride: Int32
) -> (SIMD8<Float>, SIMD8<Int32>) {
    var best = SIMD16(lowHalf: first.evenHalf, highHalf: second.evenHalf)  // left taps: top row, then bottom
    let right = SIMD16(lowHalf: first.oddHalf, highHalf: second.oddHalf)
    let top = SIMD4<Int32>(repeating: topLeft) &+ SIMD4(0, 2, 4, 6)
    let left = SIMD8(lowHalf: top, highHalf: top &+ rowStride)
    var bestIndex = SIMD16(lowHalf: left, highHalf: left)
    let take = (right .> best) .| (right .!= right)
    best.replace(with: right, where: take)
    bestIndex ^= (bestIndex ^ (bestIndex &+ 1)) & unsafeBitCast(take, to: SIMD16<Int32>.self)
    var upper = SIMD8(lowHalf: best.lowHalf.lowHalf, highHalf: best.highHalf.lowHalf)
    var upperIndex = SIMD8(lowHalf: bestIndex.lowHalf.lowHalf, highHalf: bestIndex.highHalf.lowHalf)
    let lower = SIMD8(lowHalf: best.lowHalf.highHalf, highHalf: best.highHalf.highHalf)
    let lowerIndex = SIMD8(lowHalf: bestIndex.lowHalf.highHalf, highHalf: bestIndex.highHalf.highHalf)
    let below = (lower .> upper) .| (lower .!= lower)
    upper.replace(with: lower, where: below)
    upperIndex ^= (upperIndex ^ lowerIndex) & unsafeBitCast(below, to: SIMD8<Int32>.self)
    return (upper, upperIndex)
}

/// `poolFourWindowsOfTwo` without the indices (evaluation).
@inlinable @inline(__always)
func poolFourWindowsOfTwo(_ first: SIMD16<Float>, _ second: SIMD16<Float>) -> SIMD8<Float> {
    var best = SIMD16(lowHalf: first.evenHalf, highHalf: second.evenHalf)
    let right = SIMD16(lowHalf: first.oddHalf, highHalf: second.oddHalf)
    best.replace(with: right, where: (right .> best) .| (right .!= right))
    var upper = SIMD8(lowHalf: best.lowHalf.lowHalf, highHalf: best.highHalf.lowHalf)
    let lower = SIMD8(lowHalf: best.lowHalf.highHalf, highHalf: best.highHalf.highHalf)
    upper.replace(with: lower, where: (lower .> upper) .| (lower .!= lower))
    return upper
}
#endif

/// PyTorch's update rule on four windows at once, values only.
@inlinable @inline(__always)
func takeIfGreaterOrNaN(_ value: SIMD4<Float>, best: inout SIMD4<Float>) {
    best.replace(with: value, where: (value .> best) .| (value .!= value))
}

/// PyTorch's update rule on eight channels of one window, with the tap's index.
@inlinable @inline(__always)
func takeIfGreaterOrNaN(_ value: SIMD8<Float>, _ index: Int32, best: inout SIMD8<Float>, bestIndex: inout SIMD8<Int32>) {
    let take = (value .> best) .| (value .!= value)
    best.replace(with: value, where: take)
    let bits = unsafeBitCast(take, to: SIMD8<Int32>.self)
    bestIndex = (bestIndex & ~bits) | (SIMD8(repeating: index) & bits)
}

/// PyTorch's update rule on four windows at once: replace where strictly greater or NaN.
@inlinable @inline(__always)
func takeIfGreaterOrNaN(
    _ value: SIMD4<Float>, _ index: SIMD4<Int32>,
    best: inout SIMD4<Float>, bestIndex: inout SIMD4<Int32>
) {
    let take = (value .> best) .| (value .!= value)
    best.replace(with: value, where: take)
    // `replace` on the Int32 lanes compiled to a branch per lane; blend with the mask's
    // bits instead (a Float mask is stored as Int32 lanes of all-ones or zero).
    let bits = unsafeBitCast(take, to: SIMD4<Int32>.self)
    bestIndex ^= (bestIndex ^ index) & bits
}

// MARK: - Backward

/// Routes each output gradient to the input element `argmax` chose; overlapping windows
/// that chose the same element add up.
///
/// - Parameters:
///   - gradOutput: `(batch, channels, outHeight, outWidth)`.
///   - argmax: from `maxPool2dForward`.
///   - gradInput: `(batch, channels, height, width)`, overwritten (zeroed, then scatter-add).
///   - reluOutput: the output of a forward pass with `relu`; windows whose output is 0 pass
///     no gradient (`reluMaxPool2dBackward`).
public func maxPool2dBackward(
    _ shape: Pool2dShape,
    gradOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
    gradInput: UnsafeMutablePointer<Float>, reluOutput: UnsafePointer<Float>? = nil
) {
    scatterMaxPoolGradient(shape, gradOutput: gradOutput, argmax: argmax, gradInput: gradInput, reluOutput: reluOutput)
}

/// The backward scatter of every max-pool op (`maxPool2dBackward`, `reluMaxPool2dBackward`):
/// `gradInput` zeroed, then each output gradient added to the input element `argmax` chose,
/// plane by plane over `Parallelism.threadCount` threads (planes are disjoint, and within a
/// plane the adds run in output order, so the result does not depend on the thread count).
///
/// - Parameter reluOutput: the fused ReLU + max-pool's output; where it is `<= 0` the window
///   passes no gradient (ReLU'(x) = 0 for x ≤ 0; NaN passes). nil for a plain max-pool.
func scatterMaxPoolGradient(
    _ s: Pool2dShape,
    gradOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
    gradInput: UnsafeMutablePointer<Float>, reluOutput: UnsafePointer<Float>?
) {
    let inPlane = s.height * s.width
    let outPlane = s.outHeight * s.outWidth
    Parallelism.forEachRange(s.batch * s.channels, minimumPerChunk: 16) { planes in
        for plane in planes {
            // Zeroed plane by plane, so the scatter below finds it in L1.
            let destination = gradInput + plane * inPlane
            destination.update(repeating: 0, count: inPlane)
            let gradients = gradOutput + plane * outPlane
            let indices = argmax + plane * outPlane
            if let reluOutput {
                let values = reluOutput + plane * outPlane
                for j in 0..<outPlane where !(values[j] <= 0) {
                    destination[Int(indices[j])] += gradients[j]
                }
            } else {
                for j in 0..<outPlane {
                    destination[Int(indices[j])] += gradients[j]
                }
            }
        }
    }
}
