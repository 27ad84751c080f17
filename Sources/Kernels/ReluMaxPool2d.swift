// MARK: - Fused ReLU + max pooling

/// `max_pool2d(relu(input))` in one pass over the input, with the same gradient PyTorch
/// gives for the two ops in sequence.
///
/// ReLU is monotone, so `max(relu(x)) = relu(max(x))`: the pool runs on the raw input and
/// only the (4× smaller) output is clamped. When the window's maximum is positive, its first
/// maximum is also the first maximum of `relu(x)`; when it is ≤ 0, PyTorch's gradient
/// through ReLU is 0 (ReLU'(0) = 0), and `reluMaxPool2dBackward` sends nothing. NaN
/// propagates (relu(NaN) = NaN, and its gradient passes, as in PyTorch).
///
/// - Parameters:
///   - input: `(batch, channels, height, width)`, before ReLU.
///   - output: `(batch, channels, outHeight, outWidth)`, overwritten.
///   - argmax: `(batch, channels, outHeight, outWidth)`, flat index within the input plane;
///     nil for the values only (evaluation).
public func reluMaxPool2dForward(
    _ shape: Pool2dShape,
    input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
    argmax: UnsafeMutablePointer<Int32>?
) {
    maxPool2dForward(shape, input: input, output: output, argmax: argmax, relu: true)
}

/// The gradient of `reluMaxPool2dForward` with respect to its input (before ReLU).
///
/// - Parameters:
///   - gradOutput: `(batch, channels, outHeight, outWidth)`.
///   - output: the forward's output; windows whose output is 0 pass no gradient.
///   - argmax: the forward's argmax.
///   - gradInput: `(batch, channels, height, width)`, overwritten (zeroed, then scatter-add).
public func reluMaxPool2dBackward(
    _ shape: Pool2dShape,
    gradOutput: UnsafePointer<Float>, output: UnsafePointer<Float>,
    argmax: UnsafePointer<Int32>, gradInput: UnsafeMutablePointer<Float>
) {
    scatterMaxPoolGradient(shape, gradOutput: gradOutput, argmax: argmax, gradInput: gradInput, reluOutput: output)
}
