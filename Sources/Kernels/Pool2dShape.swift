/// Every size of a 2-D pooling, as PyTorch's `max_pool2d` defines it (floor or ceil mode), and the
/// name of the op it is for (`max_pool2d` unless given; another pooling op passes its own,
/// which its shape errors then name).
///
/// Layouts: input `(batch, channels, height, width)`, output and argmax
/// `(batch, channels, outHeight, outWidth)` with
/// `outHeight = (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1`.
public struct Pool2dShape: Sendable, Hashable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var kernelH: Int
    public var kernelW: Int
    public var strideH: Int
    public var strideW: Int
    public var padH: Int
    public var padW: Int
    public var dilationH: Int
    public var dilationW: Int
    /// The op these sizes are for, as its errors name it: `max_pool2d`, `avg_pool2d`...
    public var operation: String
    /// PyTorch's `ceil_mode`: round the output size up, keeping a last window that starts
    /// inside the input or its left padding (the kernels clip it at the edge).
    public var ceilMode: Bool = false

    /// Builds a shape from explicit sizes; call `validate()` before using it with a kernel.
    public init(
        batch: Int, channels: Int, height: Int, width: Int,
        kernelH: Int, kernelW: Int, strideH: Int, strideW: Int,
        padH: Int = 0, padW: Int = 0, dilationH: Int = 1, dilationW: Int = 1,
        operation: String = "max_pool2d", ceilMode: Bool = false
    ) {
        self.ceilMode = ceilMode
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH
        self.strideW = strideW
        self.padH = padH
        self.padW = padW
        self.dilationH = dilationH
        self.dilationW = dilationW
        self.operation = operation
    }

    /// Builds and validates a shape from the input's shape `[N, C, H, W]`; `stride`
    /// defaults to the kernel size, as in PyTorch.
    public init(
        input: [Int], kernel: (Int, Int), stride: (Int, Int)? = nil,
        padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), operation: String = "max_pool2d",
        ceilMode: Bool = false
    ) throws {
        guard input.count == 4 else {
            throw KernelShapeError.wrongRank(operation: operation, argument: "input", shape: input, expectedRank: 4)
        }
        let stride = stride ?? kernel
        self.init(
            batch: input[0], channels: input[1], height: input[2], width: input[3],
            kernelH: kernel.0, kernelW: kernel.1, strideH: stride.0, strideW: stride.1,
            padH: padding.0, padW: padding.1, dilationH: dilation.0, dilationW: dilation.1,
            operation: operation, ceilMode: ceilMode)
        try validate()
    }

    public var outHeight: Int { Self.outputSize(height, kernelH, strideH, padH, dilationH, ceilMode: ceilMode) }
    public var outWidth: Int { Self.outputSize(width, kernelW, strideW, padW, dilationW, ceilMode: ceilMode) }

    /// PyTorch's pooling output size: `(size + 2·pad − dilation·(kernel − 1) − 1) / stride + 1`,
    /// rounded down, or up with `ceilMode` unless the last window would start beyond the
    /// input and its left padding.
    static func outputSize(_ size: Int, _ kernel: Int, _ stride: Int, _ pad: Int, _ dilation: Int, ceilMode: Bool) -> Int {
        guard ceilMode else { return Conv2dShape.outputSize(size, kernel, stride, pad, dilation) }
        let span = size + 2 * pad - dilation * (kernel - 1) - 1
        guard span >= 0, stride > 0 else { return 0 }
        var out = (span + stride - 1) / stride + 1
        if (out - 1) * stride >= size + pad { out -= 1 }
        return out
    }
    /// `[batch, channels, height, width]`.
    public var inputShape: [Int] { [batch, channels, height, width] }
    /// `[batch, channels, outHeight, outWidth]`.
    public var outputShape: [Int] { [batch, channels, outHeight, outWidth] }

    /// Checks that every size is usable, padding is at most half the kernel and the
    /// output is at least 1×1.
    public func validate() throws {
        let op = operation
        for (name, value) in [
            ("batch", batch), ("channels", channels), ("height", height), ("width", width),
            ("kernelH", kernelH), ("kernelW", kernelW), ("strideH", strideH), ("strideW", strideW),
            ("dilationH", dilationH), ("dilationW", dilationW),
        ] where value <= 0 {
            throw KernelShapeError.nonPositive(operation: op, parameter: name, value: value)
        }
        guard padH >= 0, padW >= 0 else {
            throw KernelShapeError.negativePadding(operation: op, padding: [padH, padW])
        }
        guard width <= Int(Int32.max) / height else {  // height > 0 checked above
            throw KernelShapeError.planeTooLarge(operation: op, input: inputShape)
        }
        guard padH <= kernelH / 2, padW <= kernelW / 2 else {
            throw KernelShapeError.poolPaddingTooLarge(operation: op, kernel: [kernelH, kernelW], padding: [padH, padW])
        }
        guard outHeight >= 1, outWidth >= 1 else {
            throw KernelShapeError.kernelLargerThanInput(
                operation: op, input: inputShape, kernel: [kernelH, kernelW],
                padding: [padH, padW], dilation: [dilationH, dilationW])
        }
    }
}
