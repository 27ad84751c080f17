/// Every size of a 2-D convolution, as PyTorch's `conv2d` defines it.
///
/// Layouts (row-major, contiguous):
/// - input  `(batch, inChannels, height, width)`
/// - weight `(outChannels, inChannels / groups, kernelHeight, kernelWidth)`
/// - bias   `(outChannels)`
/// - output `(batch, outChannels, outHeight, outWidth)` with
///   `outHeight = (height + 2 * padH - dilationH * (kernelHeight - 1) - 1) / strideH + 1`.
public struct Conv2dShape: Sendable, Hashable {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideH: Int
    public var strideW: Int
    public var padH: Int
    public var padW: Int
    public var dilationH: Int
    public var dilationW: Int
    public var groups: Int

    /// Builds a shape from explicit sizes; call `validate()` before using it with a kernel.
    public init(
        batch: Int, inChannels: Int, height: Int, width: Int,
        outChannels: Int, kernelHeight: Int, kernelWidth: Int,
        strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0,
        dilationH: Int = 1, dilationW: Int = 1, groups: Int = 1
    ) {
        self.batch = batch
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.outChannels = outChannels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideH = strideH
        self.strideW = strideW
        self.padH = padH
        self.padW = padW
        self.dilationH = dilationH
        self.dilationW = dilationW
        self.groups = groups
    }

    /// Builds and validates a shape from tensor shapes, as `torch.nn.functional.conv2d` does.
    ///
    /// - Parameters:
    ///   - input: `[N, C, H, W]`.
    ///   - weight: `[O, C / groups, kH, kW]`.
    ///   - stride, padding, dilation: `(h, w)` pairs.
    /// - Throws: `KernelShapeError` naming both shapes when they do not fit together.
    public init(
        input: [Int], weight: [Int],
        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
        dilation: (Int, Int) = (1, 1), groups: Int = 1
    ) throws {
        guard input.count == 4 else {
            throw KernelShapeError.wrongRank(operation: "conv2d", argument: "input", shape: input, expectedRank: 4)
        }
        guard weight.count == 4 else {
            throw KernelShapeError.wrongRank(operation: "conv2d", argument: "weight", shape: weight, expectedRank: 4)
        }
        guard groups > 0 else {
            throw KernelShapeError.nonPositive(operation: "conv2d", parameter: "groups", value: groups)
        }
        guard input[1] % groups == 0, weight[0] % groups == 0 else {
            throw KernelShapeError.groupsDoNotDivide(input: input, weight: weight, groups: groups)
        }
        guard input[1] == weight[1] * groups else {
            throw KernelShapeError.channelMismatch(input: input, weight: weight, groups: groups)
        }
        self.init(
            batch: input[0], inChannels: input[1], height: input[2], width: input[3],
            outChannels: weight[0], kernelHeight: weight[2], kernelWidth: weight[3],
            strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
            dilationH: dilation.0, dilationW: dilation.1, groups: groups)
        try validate()
    }

    /// Output rows: `(height + 2 * padH - dilationH * (kernelHeight - 1) - 1) / strideH + 1`.
    public var outHeight: Int { Self.outputSize(height, kernelHeight, strideH, padH, dilationH) }
    /// Output columns, like `outHeight`.
    public var outWidth: Int { Self.outputSize(width, kernelWidth, strideW, padW, dilationW) }

    /// `[batch, inChannels, height, width]`.
    public var inputShape: [Int] { [batch, inChannels, height, width] }
    /// `[outChannels, inChannels / groups, kernelHeight, kernelWidth]`.
    public var weightShape: [Int] { [outChannels, inChannels / max(groups, 1), kernelHeight, kernelWidth] }
    /// `[batch, outChannels, outHeight, outWidth]`.
    public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }

    /// Input channels per group.
    public var groupInChannels: Int { inChannels / groups }
    /// Output channels per group.
    public var groupOutChannels: Int { outChannels / groups }
    /// Rows of one group's im2col matrix: `groupInChannels * kernelHeight * kernelWidth`.
    public var groupPatchSize: Int { groupInChannels * kernelHeight * kernelWidth }
    /// Output pixels per sample and channel.
    public var outPlane: Int { outHeight * outWidth }

    /// Multiply-adds of the forward pass (the same count for each backward piece).
    public var multiplyAdds: Int { batch * outChannels * outPlane * groupPatchSize }

    /// Checks that every size is usable and the output is at least 1×1.
    public func validate() throws {
        let op = "conv2d"
        for (name, value) in [
            ("batch", batch), ("inChannels", inChannels), ("height", height), ("width", width),
            ("outChannels", outChannels), ("kernelHeight", kernelHeight), ("kernelWidth", kernelWidth),
            ("strideH", strideH), ("strideW", strideW), ("dilationH", dilationH),
            ("dilationW", dilationW), ("groups", groups),
        ] where value <= 0 {
            throw KernelShapeError.nonPositive(operation: op, parameter: name, value: value)
        }
        guard padH >= 0, padW >= 0 else {
            throw KernelShapeError.negativePadding(operation: op, padding: [padH, padW])
        }
        guard inChannels % groups == 0, outChannels % groups == 0 else {
            throw KernelShapeError.groupsDoNotDivide(input: inputShape, weight: weightShape, groups: groups)
        }
        guard height + 2 * padH >= dilationH * (kernelHeight - 1) + 1,
              width + 2 * padW >= dilationW * (kernelWidth - 1) + 1 else {
            throw KernelShapeError.kernelLargerThanInput(
                operation: op, input: inputShape, kernel: [kernelHeight, kernelWidth],
                padding: [padH, padW], dilation: [dilationH, dilationW])
        }
    }

    static func outputSize(_ size: Int, _ kernel: Int, _ stride: Int, _ pad: Int, _ dilation: Int) -> Int {
        let span = size + 2 * pad - dilation * (kernel - 1) - 1
        // Floor division, so a negative span gives a non-positive size that validate() rejects.
        return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1
    }
}
