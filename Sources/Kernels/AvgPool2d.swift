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

/// Visits every output of every plane with its input window and divisor (planes split
/// over the threads): the one loop the forward and backward passes of both poolings share.
@inline(__always)
func forEachAverageWindow(
    planes: Int, outHeight outH: Int, outWidth outW: Int,
    window: (_ oh: Int, _ ow: Int) -> (h: Range<Int>, w: Range<Int>, divisor: Float),
    _ body: (_ plane: Int, _ output: Int, _ rows: Range<Int>, _ cols: Range<Int>, _ divisor: Float) -> Void
) {
    Parallelism.forEachChunk(planes, minimumPerChunk: 16) { _, range in
        for plane in range {
            for oh in 0..<outH {
                for ow in 0..<outW {
                    let (rows, cols, divisor) = window(oh, ow)
                    body(plane, oh * outW + ow, rows, cols, divisor)
                }
            }
        }
    }
}

/// `output (N, C, OH, OW)` = the mean of each window of `input (N, C, H, W)` (dilation 1).
public func avgPool2dForward(
    _ s: Pool2dShape, countIncludePad: Bool, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
) {
    averageForward(planes: s.batch * s.channels, height: s.height, width: s.width, outHeight: s.outHeight,
                   outWidth: s.outWidth, input: input, output: output) { averageWindow(s, $0, $1, countIncludePad: countIncludePad) }
}

/// `gradInput (N, C, H, W)` (overwritten): each output's gradient divided by its window's
/// divisor, added to every input of the window.
public func avgPool2dBackward(
    _ s: Pool2dShape, countIncludePad: Bool, gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    averageBackward(planes: s.batch * s.channels, height: s.height, width: s.width, outHeight: s.outHeight,
                    outWidth: s.outWidth, gradOutput: gradOutput, gradInput: gradInput) {
        averageWindow(s, $0, $1, countIncludePad: countIncludePad)
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
    averageForward(planes: planes, height: height, width: width, outHeight: outH, outWidth: outW, input: input, output: output) {
        adaptiveRectangle($0, $1, height: height, width: width, outHeight: outH, outWidth: outW)
    }
}

/// `gradInput (planes, H, W)` (overwritten) of `adaptiveAvgPool2dForward`.
public func adaptiveAvgPool2dBackward(
    planes: Int, height: Int, width: Int, outHeight outH: Int, outWidth outW: Int,
    gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    averageBackward(planes: planes, height: height, width: width, outHeight: outH, outWidth: outW,
                    gradOutput: gradOutput, gradInput: gradInput) {
        adaptiveRectangle($0, $1, height: height, width: width, outHeight: outH, outWidth: outW)
    }
}

@inline(__always)
func adaptiveRectangle(_ oh: Int, _ ow: Int, height: Int, width: Int, outHeight: Int, outWidth: Int)
    -> (h: Range<Int>, w: Range<Int>, divisor: Float) {
    let rows = adaptiveWindow(oh, outSize: outHeight, inSize: height), cols = adaptiveWindow(ow, outSize: outWidth, inSize: width)
    return (rows, cols, Float(rows.count * cols.count))
}

/// Each output = the sum of its window of `input (planes, H, W)` over its divisor.
@inline(__always)
func averageForward(
    planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int, input: UnsafePointer<Float>,
    output: UnsafeMutablePointer<Float>, window: (Int, Int) -> (h: Range<Int>, w: Range<Int>, divisor: Float)
) {
    let x = UncheckedSendable(input), y = UncheckedSendable(output)
    forEachAverageWindow(planes: planes, outHeight: outHeight, outWidth: outWidth, window: window) { plane, o, rows, cols, divisor in
        let source = x.value + plane * height * width
        var sum: Float = 0
        for ih in rows { for iw in cols { sum += source[ih * width + iw] } }
        y.value[plane * outHeight * outWidth + o] = sum / divisor
    }
}

/// `gradInput` (overwritten): each output's gradient over its divisor, added to its window.
@inline(__always)
func averageBackward(
    planes: Int, height: Int, width: Int, outHeight: Int, outWidth: Int, gradOutput: UnsafePointer<Float>,
    gradInput: UnsafeMutablePointer<Float>, window: (Int, Int) -> (h: Range<Int>, w: Range<Int>, divisor: Float)
) {
    let g = UncheckedSendable(gradOutput), gi = UncheckedSendable(gradInput)
    gradInput.update(repeating: 0, count: planes * height * width)
    forEachAverageWindow(planes: planes, outHeight: outHeight, outWidth: outWidth, window: window) { plane, o, rows, cols, divisor in
        let destination = gi.value + plane * height * width
        let share = g.value[plane * outHeight * outWidth + o] / divisor
        for ih in rows { for iw in cols { destination[ih * width + iw] += share } }
    }
}
