/// Why a convolution or pooling shape was rejected. Every message names the shapes
/// involved, the offending value and what was expected.
public enum KernelShapeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// An input or weight shape has the wrong number of dimensions.
    case wrongRank(operation: String, argument: String, shape: [Int], expectedRank: Int)
    /// A size that must be positive is not (channels, kernel, stride, dilation, groups).
    case nonPositive(operation: String, parameter: String, value: Int)
    /// Padding is negative.
    case negativePadding(operation: String, padding: [Int])
    /// The input's channels do not match `weight.shape[1] * groups`.
    case channelMismatch(input: [Int], weight: [Int], groups: Int)
    /// `groups` does not divide the input or output channels.
    case groupsDoNotDivide(input: [Int], weight: [Int], groups: Int)
    /// The dilated kernel is larger than the padded input.
    case kernelLargerThanInput(operation: String, input: [Int], kernel: [Int], padding: [Int], dilation: [Int])
    /// Pooling padding must be at most half the kernel size (as PyTorch requires).
    case poolPaddingTooLarge(operation: String, kernel: [Int], padding: [Int])
    /// An input plane too large for the Int32 argmax indices.
    case planeTooLarge(operation: String, input: [Int])

    public var description: String {
        switch self {
        case let .wrongRank(operation, argument, shape, expectedRank):
            return "\(operation): \(argument) has shape \(shape) (rank \(shape.count)); expected rank \(expectedRank)"
        case let .nonPositive(operation, parameter, value):
            return "\(operation): \(parameter) is \(value); expected a positive value"
        case let .negativePadding(operation, padding):
            return "\(operation): padding \(padding) is negative; expected values >= 0"
        case let .channelMismatch(input, weight, groups):
            return "conv2d: input \(input) has \(input.count > 1 ? input[1] : 0) channels but weight \(weight) "
                + "expects \(weight.count > 1 ? weight[1] : 0) x groups \(groups) = "
                + "\((weight.count > 1 ? weight[1] : 0) * groups) channels"
        case let .groupsDoNotDivide(input, weight, groups):
            return "conv2d: groups \(groups) must divide input channels of \(input) and output channels of weight \(weight)"
        case let .kernelLargerThanInput(operation, input, kernel, padding, dilation):
            return "\(operation): kernel \(kernel) with dilation \(dilation) spans "
                + "\(zip(kernel, dilation).map { ($0 - 1) * $1 + 1 }), larger than input \(input) "
                + "padded by \(padding); expected a kernel that fits, giving an output of at least 1x1"
        case let .poolPaddingTooLarge(operation, kernel, padding):
            return "\(operation): padding \(padding) must be at most half of kernel size \(kernel)"
        case let .planeTooLarge(operation, input):
            return "\(operation): input \(input) has planes of more than \(Int32.max) elements; "
                + "argmax indices are Int32"
        }
    }
}
