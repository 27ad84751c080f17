// Average pooling, fixed-size (`avg_pool2d`) and adaptive (`adaptive_avg_pool2d`), over
// planes of `(batch · channels)` images laid out `(N, C, H, W)`. Planes are split over the
// threads, so results do not depend on the thread count.

/// The window of output `(oh, ow)` of `avg_pool2d`, clipped to the input, and its divisor:
/// PyTorch's rule, where a window is first clipped to the padded input (its size then is
/// what `count_include_pad` divides by) and then to the input itself.
@inline(__always)
func averageWindow(_ s: Pool2dShape, _ oh: Int, _ ow: Int, countIncludePad: Bool) -> (h: Range<Int>, w: Range<Int>, divisor: Float) {
    var h0 = oh * s.strideH - s.padH, w0 = ow * s.strideW - s.padW
    var h1 = min(h0 + s.kernelH, s.height + s.padH), w1 = min(w0 + s.kernelW, s.width + s.padW)
    let padded = (h1 - h0) * (w1 - w0)
    h0 = max(h0, 0)
    w0 = max(w0, 0)
    h1 = min(h1, s.height)
    w1 = min(w1, s.width)
    let inside = max(h1 - h0, 0) * max(w1 - w0, 0)
    return (h0..<max(h1, h0), w0..<max(w1, w0), Float(max(countIncludePad ? padded : inside, 1)))
}

/// `output (N, C, OH, OW)` = the mean of each window of `input (N, C, H, W)` (dilation 1).
public func avgPool2dForward(
    _ s: Pool2dShape, countIncludePad: Bool, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
) {
    let x = UncheckedSendable(input), y = UncheckedSendable(output)
    let outH = s.outHeight, outW = s.outWidth
    Parallelism.forEachChunk(s.batch * s.channels, minimumPerChunk: 16) { _, planes in
        for plane in planes {
            let source = x.value + plane * s.height * s.width, destination = y.value + plane * outH * outW
            for oh in 0..<outH {
                for ow in 0..<outW {
                    let window = averageWindow(s, oh, ow, countIncludePad: countIncludePad)
                    var sum: Float = 0
                    for ih in window.h { for iw in window.w { sum += source[ih * s.width + iw] } }
                    destination[oh * outW + ow] = sum / window.divisor
                }
            }
        }
    }
}

/// `gradInput (N, C, H, W)` (overwritten): each output's gradient divided by its window's
/// divisor, added to every input of the window.
public func avgPool2dBackward(
    _ s: Pool2dShape, countIncludePad: Bool, gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    let g = UncheckedSendable(gradOutput), gi = UncheckedSendable(gradInput)
    let outH = s.outHeight, outW = s.outWidth
    Parallelism.forEachChunk(s.batch * s.channels, minimumPerChunk: 16) { _, planes in
        for plane in planes {
            let source = g.value + plane * outH * outW, destination = gi.value + plane * s.height * s.width
            destination.update(repeating: 0, count: s.height * s.width)
            for oh in 0..<outH {
                for ow in 0..<outW {
                    let window = averageWindow(s, oh, ow, countIncludePad: countIncludePad)
                    let share = source[oh * outW + ow] / window.divisor
                    for ih in window.h { for iw in window.w { destination[ih * s.width + iw] += share } }
                }
            }
        }
    }
}

/// PyTorch's adaptive windows: output `i` of `outSize` covers
/// `floor(i·inSize/outSize) ..< ceil((i+1)·inSize/outSize)`.
@inline(__always)
public func adaptiveWindow(_ i: Int, outSize: Int, inSize: Int) -> Range<Int> {
    (i * inSize / outSize)..<(((i + 1) * inSize + outSize - 1) / outSize)
}

/// `output (planes, outH, outW)` = the mean of each adaptive window of `input (planes, H, W)`.
public func adaptiveAvgPool2dForward(
    planes: Int, height: Int, width: Int, outHeight outH: Int, outWidth outW: Int,
    input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
) {
    let x = UncheckedSendable(input), y = UncheckedSendable(output)
    Parallelism.forEachChunk(planes, minimumPerChunk: 16) { _, range in
        for plane in range {
            let source = x.value + plane * height * width, destination = y.value + plane * outH * outW
            for oh in 0..<outH {
                let rows = adaptiveWindow(oh, outSize: outH, inSize: height)
                for ow in 0..<outW {
                    let cols = adaptiveWindow(ow, outSize: outW, inSize: width)
                    var sum: Float = 0
                    for ih in rows { for iw in cols { sum += source[ih * width + iw] } }
                    destination[oh * outW + ow] = sum / Float(rows.count * cols.count)
                }
            }
        }
    }
}

/// `gradInput (planes, H, W)` (overwritten) of `adaptiveAvgPool2dForward`.
public func adaptiveAvgPool2dBackward(
    planes: Int, height: Int, width: Int, outHeight outH: Int, outWidth outW: Int,
    gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    let g = UncheckedSendable(gradOutput), gi = UncheckedSendable(gradInput)
    Parallelism.forEachChunk(planes, minimumPerChunk: 16) { _, range in
        for plane in range {
            let source = g.value + plane * outH * outW, destination = gi.value + plane * height * width
            destination.update(repeating: 0, count: height * width)
            for oh in 0..<outH {
                let rows = adaptiveWindow(oh, outSize: outH, inSize: height)
                for ow in 0..<outW {
                    let cols = adaptiveWindow(ow, outSize: outW, inSize: width)
                    let share = source[oh * outW + ow] / Float(rows.count * cols.count)
                    for ih in rows { for iw in cols { destination[ih * width + iw] += share } }
                }
            }
        }
    }
}
