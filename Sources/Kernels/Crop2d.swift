/// Cropping a window out of each plane: the forward copies it, the backward puts the
/// gradient back in place and zeros around it.

/// Copies the `outHeight × outWidth` window at (`top`, `left`) of each plane.
/// - input: `(planes, height, width)`; output: `(planes, outHeight, outWidth)`, with
///   `top + outHeight <= height` and `left + outWidth <= width`.
public func crop2dForward(
    planes: Int, height: Int, width: Int, top: Int, left: Int, outHeight: Int, outWidth: Int,
    input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
) {
    checkWindow(height: height, width: width, top: top, left: left, outHeight: outHeight, outWidth: outWidth)
    for plane in 0..<planes {
        let source = input + plane * height * width + top * width + left
        let target = output + plane * outHeight * outWidth
        for row in 0..<outHeight {
            (target + row * outWidth).update(from: source + row * width, count: outWidth)
        }
    }
}

/// The gradient of `crop2dForward`: each plane of `gradInput` is zero outside the window
/// and `gradOutput` inside it.
/// - gradOutput: `(planes, outHeight, outWidth)`; gradInput: `(planes, height, width)`.
public func crop2dBackward(
    planes: Int, height: Int, width: Int, top: Int, left: Int, outHeight: Int, outWidth: Int,
    gradOutput: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>
) {
    checkWindow(height: height, width: width, top: top, left: left, outHeight: outHeight, outWidth: outWidth)
    gradInput.update(repeating: 0, count: planes * height * width)
    for plane in 0..<planes {
        let source = gradOutput + plane * outHeight * outWidth
        let target = gradInput + plane * height * width + top * width + left
        for row in 0..<outHeight {
            (target + row * width).update(from: source + row * outWidth, count: outWidth)
        }
    }
}

/// Stops with a message naming both sizes when the window is not inside the plane.
private func checkWindow(height: Int, width: Int, top: Int, left: Int, outHeight: Int, outWidth: Int) {
    precondition(top >= 0 && left >= 0 && top + outHeight <= height && left + outWidth <= width,
                 "crop2d: the \(outHeight)x\(outWidth) window at (\(top), \(left)) is not inside the \(height)x\(width) plane")
}
