import Autograd
import Kernels

/// A pair of sizes for the height and width dimensions: `3` or `(3, 5)` in PyTorch.
public struct Pair: Sendable, Hashable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    public init(_ both: Int) { self.init(both, both) }
    public init(integerLiteral value: Int) { self.init(value) }
    var tuple: (Int, Int) { (height, width) }
    /// `(5, 5)`, as PyTorch prints it.
    public var description: String { "(\(height), \(width))" }
}

extension Functional {
    /// 2-d convolution (cross-correlation), PyTorch's `F.conv2d` (`ConvolutionBackward0`).
    ///
    /// - Parameters:
    ///   - input: `(N, C, H, W)`.
    ///   - weight: `(O, C / groups, kH, kW)`.
    ///   - bias: `(O)`.
    /// - Returns: `(N, O, OH, OW)` with `OH = (H + 2·padding − dilation·(kH − 1) − 1) / stride + 1`.
    /// - Throws: when the shapes do not fit; the message names both.
    public static func conv2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil,
        stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1, groups: Int = 1
    ) throws -> Tensor {
        let s = try Conv2dShape(input: input.shape, weight: weight.shape, stride: stride.tuple,
                                padding: padding.tuple, dilation: dilation.tuple, groups: groups)
        if let bias, bias.shape != [s.outChannels] {
            throw NNError.shape(op: "conv2d", "bias \(bias.shape) does not match weight \(weight.shape): expected [\(s.outChannels)]")
        }
        let out = Tensor.empty(s.outputShape)
        // Scratch memory comes from the tensors' caching allocator: the same sizes recur
        // every step, and malloc handed blocks this large back to the system each time.
        let scratch = Storage(uninitializedCount: conv2dWorkspaceCount(s))
        withExtendedLifetime(scratch) {
            conv2dForward(s, input: input.storage.pointer, weight: weight.storage.pointer,
                          bias: bias?.storage.pointer, output: out.storage.pointer,
                          workspace: UnsafeMutableBufferPointer(start: scratch.pointer, count: scratch.count))
        }
        let inputs = bias.map { [input, weight, $0] } ?? [input, weight]
        return out.recording("ConvolutionBackward0", inputs: inputs) { g in
            let scratch = Storage(uninitializedCount: conv2dWorkspaceCount(s))
            defer { withExtendedLifetime(scratch) {} }
            let workspace = UnsafeMutableBufferPointer(start: scratch.pointer, count: scratch.count)
            var gradInput: Tensor?, gradWeight: Tensor?, gradBias: Tensor?
            // One scan of the gradient decides the path of both kernels.
            let sparse = conv2dGradientIsSparse(s, gradOutput: g.storage.pointer)
            if input.requiresGrad {
                let gi = Tensor.empty(input.shape)
                conv2dBackwardInput(s, gradOutput: g.storage.pointer, weight: weight.storage.pointer,
                                    gradInput: gi.storage.pointer, workspace: workspace, sparseGradient: sparse)
                gradInput = gi
            }
            let needBias = bias?.requiresGrad == true
            if weight.requiresGrad || needBias {
                let gw = Tensor.empty(weight.shape)
                let gb = needBias ? Tensor.empty([s.outChannels]) : nil
                conv2dBackwardWeight(s, input: input.storage.pointer, gradOutput: g.storage.pointer,
                                     gradWeight: gw.storage.pointer, gradBias: gb?.storage.pointer,
                                     workspace: workspace, sparseGradient: sparse)
                gradWeight = weight.requiresGrad ? gw : nil
                gradBias = gb
            }
            return bias == nil ? [gradInput, gradWeight] : [gradInput, gradWeight, gradBias]
        }
    }

    /// 2-d max pooling, PyTorch's `F.max_pool2d` (`MaxPool2DWithIndicesBackward0`).
    /// The gradient of each window goes to its first maximum in row-major order.
    ///
    /// - Parameters:
    ///   - input: `(N, C, H, W)`.
    ///   - stride: defaults to `kernelSize`.
    /// - Returns: `(N, C, OH, OW)`.
    public static func maxPool2d(
        _ input: Tensor, kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, dilation: Pair = 1, ceilMode: Bool = false
    ) throws -> Tensor {
        try pool(input, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode, relu: false)
    }

    /// `max_pool2d(relu(input))` in one pass: the same values and gradients as the two ops
    /// in sequence (ReLU is monotone), without the intermediate ReLU tensor.
    /// `Sequential` uses it for a ReLU followed by a MaxPool2d.
    public static func reluMaxPool2d(
        _ input: Tensor, kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, dilation: Pair = 1, ceilMode: Bool = false
    ) throws -> Tensor {
        try pool(input, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode, relu: true)
    }

    private static func pool(
        _ input: Tensor, kernelSize: Pair, stride: Pair?, padding: Pair, dilation: Pair, ceilMode: Bool, relu: Bool
    ) throws -> Tensor {
        let s = try Pool2dShape(input: input.shape, kernel: kernelSize.tuple, stride: stride?.tuple,
                                padding: padding.tuple, dilation: dilation.tuple, ceilMode: ceilMode)
        let out = Tensor.empty(s.outputShape)
        let indices = IndexBuffer(count: out.count)
        let argmax = indices.pointer
        if relu {
            reluMaxPool2dForward(s, input: input.storage.pointer, output: out.storage.pointer, argmax: argmax)
        } else {
            maxPool2dForward(s, input: input.storage.pointer, output: out.storage.pointer, argmax: argmax)
        }
        return out.recording("MaxPool2DWithIndicesBackward0", inputs: [input]) { [unowned out] g in
            let gi = Tensor.empty(input.shape)
            if relu {
                reluMaxPool2dBackward(s, gradOutput: g.storage.pointer, output: out.storage.pointer,
                                      argmax: indices.pointer, gradInput: gi.storage.pointer)
            } else {
                maxPool2dBackward(s, gradOutput: g.storage.pointer, argmax: indices.pointer,
                                  gradInput: gi.storage.pointer)
            }
            return [gi]
        }
    }
}

/// Owns the argmax indices a max-pool saves for its backward; freed with the graph. The
/// memory is a `Storage` block (Int32 and Float have one size), so it is cached like the
/// activations.
final class IndexBuffer {
    private let storage: Storage
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) {
        storage = Storage(uninitializedCount: count)
        pointer = UnsafeMutableRawPointer(storage.pointer).bindMemory(to: Int32.self, capacity: max(1, count))
    }
}
