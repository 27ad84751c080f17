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
        let s = try convolutionShape(input, weight: weight, bias: bias, stride: stride, padding: padding,
                                     dilation: dilation, groups: groups)
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
            convolutionBackward(s, input: input, weight: weight, bias: bias, gradOutput: g.storage.pointer)
        }
    }

    /// The convolution's shape, with the bias checked against it.
    private static func convolutionShape(
        _ input: Tensor, weight: Tensor, bias: Tensor?, stride: Pair, padding: Pair, dilation: Pair, groups: Int
    ) throws -> Conv2dShape {
        try convolutionShape(input: input.shape, weight: weight, bias: bias, stride: stride, padding: padding,
                             dilation: dilation, groups: groups)
    }

    /// The convolution's shape for an input of shape `input`, with the bias checked against it.
    private static func convolutionShape(
        input: [Int], weight: Tensor, bias: Tensor?, stride: Pair, padding: Pair, dilation: Pair, groups: Int
    ) throws -> Conv2dShape {
        let s = try Conv2dShape(input: input, weight: weight.shape, stride: stride.tuple,
                                padding: padding.tuple, dilation: dilation.tuple, groups: groups)
        if let bias, bias.shape != [s.outChannels] {
            throw NNError.shape(op: "conv2d", "bias \(bias.shape) does not match weight \(weight.shape): expected [\(s.outChannels)]")
        }
        return s
    }

    /// The gradients of a convolution's input, weight and bias (those that require one; `nil`
    /// for the others, and no bias entry without a bias) from its output's gradient
    /// (`s.outputShape`).
    private static func convolutionBackward(
        _ s: Conv2dShape, input: Tensor, weight: Tensor, bias: Tensor?, gradOutput g: UnsafePointer<Float>
    ) -> [Tensor?] {
        convolutionGradients(s, input: input, weight: weight, bias: bias, workspaceCount: conv2dWorkspaceCount(s)) {
            gradInput, gradWeight, gradBias, workspace in
            // One scan of the gradient decides the path of both kernels.
            let sparse = conv2dGradientIsSparse(s, gradOutput: g)
            if let gradInput {
                conv2dBackwardInput(s, gradOutput: g, weight: weight.storage.pointer, gradInput: gradInput,
                                    workspace: workspace, sparseGradient: sparse)
            }
            if let gradWeight {
                conv2dBackwardWeight(s, input: input.storage.pointer, gradOutput: g, gradWeight: gradWeight,
                                     gradBias: gradBias, workspace: workspace, sparseGradient: sparse)
            }
        }
    }

    /// New tensors for the gradients that require one, written by `kernels` with one
    /// workspace of `workspaceCount` floats: the input's (nil when it needs none), the
    /// weight's whenever the weight or the bias needs one (the kernels compute the bias
    /// gradient with the weight's), the bias's.
    private static func convolutionGradients(
        _ s: Conv2dShape, input: Tensor, weight: Tensor, bias: Tensor?, workspaceCount: Int,
        kernels: (_ gradInput: UnsafeMutablePointer<Float>?, _ gradWeight: UnsafeMutablePointer<Float>?,
                  _ gradBias: UnsafeMutablePointer<Float>?, _ workspace: UnsafeMutableBufferPointer<Float>) -> Void
    ) -> [Tensor?] {
        let scratch = Storage(uninitializedCount: workspaceCount)
        defer { withExtendedLifetime(scratch) {} }
        let needBias = bias?.requiresGrad == true
        let gradInput = input.requiresGrad ? Tensor.empty(input.shape) : nil
        let gradWeight = weight.requiresGrad || needBias ? Tensor.empty(weight.shape) : nil
        let gradBias = needBias ? Tensor.empty([s.outChannels]) : nil
        kernels(gradInput?.storage.pointer, gradWeight?.storage.pointer, gradBias?.storage.pointer,
                UnsafeMutableBufferPointer(start: scratch.pointer, count: scratch.count))
        let weightGradient = weight.requiresGrad ? gradWeight : nil
        return bias == nil ? [gradInput, weightGradient] : [gradInput, weightGradient, gradBias]
    }

    /// `max_pool2d(conv2d(input))`, with `relu` also ReLU (before or after the pool: the same
    /// values and gradients, as in `reluMaxPool2d`), as one op: the same values and gradients
    /// as the ops in sequence (up to the order of float additions; without gradients, a
    /// 3×3 or 5×5 convolution may be computed by Winograd, to within rounding:
    /// `Kernels/Conv2dWinograd.swift`), but the convolution's
    /// output is a temporary, computed one sample (a direct convolution) or a few samples at
    /// a time (`conv2dMaxPool2dForward`), not a tensor the graph keeps until backward: the
    /// graph saves the pool's argmax. Backward is `conv2dMaxPool2dBackward`: through that
    /// argmax straight into the convolution's sparse kernels when the pool steps 2×2 or more,
    /// else through a dense gradient of the convolution's output size. For the speedrun net
    /// at batch 256 that is 14 MB less held per step.
    /// `Sequential` uses it for a Conv2d followed by a MaxPool2d, with or without a ReLU
    /// before or after the pool. The result's `grad_fn` is the last op's
    /// (`ReluBackward0` when the ReLU comes last, else `MaxPool2DWithIndicesBackward0`);
    /// its inputs are the convolution's (input, weight, bias).
    ///
    /// - Parameters:
    ///   - input: `(N, C, H, W)`; `weight`, `bias` and the convolution's settings as in `conv2d`.
    ///   - pool: the max-pool's settings, as in `maxPool2d`.
    /// - Returns: `(N, O, PH, PW)`, the pooled convolution.
    public static func conv2dMaxPool2d(
        _ input: Tensor, weight: Tensor, bias: Tensor? = nil,
        stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1, groups: Int = 1,
        pool: PoolSettings, relu: Bool, reluLast: Bool = false
    ) throws -> Tensor {
        let s = try convolutionShape(input, weight: weight, bias: bias, stride: stride, padding: padding,
                                     dilation: dilation, groups: groups)
        let p = try poolShape(after: s, pool)
        let out = Tensor.empty(p.outputShape)
        let inputs = bias.map { [input, weight, $0] } ?? [input, weight]
        let recording = GradMode.isEnabled && inputs.contains(where: \.requiresGrad)
        let indices = recording ? IndexBuffer(count: out.count) : nil
        let workspace = Storage(uninitializedCount: conv2dMaxPool2dWorkspaceCount(s, pool: p))
        withExtendedLifetime(workspace) {
            conv2dMaxPool2dForward(s, pool: p, input: input.storage.pointer, weight: weight.storage.pointer,
                                   bias: bias?.storage.pointer, output: out.storage.pointer, argmax: indices?.pointer,
                                   relu: relu, workspace: UnsafeMutableBufferPointer(start: workspace.pointer, count: workspace.count))
        }
        guard let indices else { return out }
        let name = relu && reluLast ? "ReluBackward0" : "MaxPool2DWithIndicesBackward0"
        return out.recording(name, inputs: inputs) { [unowned out] g in
            let pooled = PooledGradient(pool: p, gradient: g.storage.pointer, argmax: indices.pointer,
                                        reluOutput: relu ? UnsafePointer(out.storage.pointer) : nil)
            return convolutionGradients(s, input: input, weight: weight, bias: bias,
                                        workspaceCount: conv2dMaxPool2dBackwardWorkspaceCount(s, pool: p)) {
                gradInput, gradWeight, gradBias, workspace in
                conv2dMaxPool2dBackward(s, pooledGradient: pooled, input: input.storage.pointer,
                                        weight: weight.storage.pointer, gradInput: gradInput, gradWeight: gradWeight,
                                        gradBias: gradBias, workspace: workspace)
            }
        }
    }

    /// A max-pool's settings, as in `maxPool2d` (`conv2dMaxPool2d`'s pool).
    public typealias PoolSettings = (kernelSize: Pair, stride: Pair?, padding: Pair, dilation: Pair, ceilMode: Bool)

    /// The shape of `pool` on the output of the convolution `s`.
    private static func poolShape(after s: Conv2dShape, _ pool: PoolSettings) throws -> Pool2dShape {
        try Pool2dShape(input: s.outputShape, kernel: pool.kernelSize.tuple, stride: pool.stride?.tuple,
                        padding: pool.padding.tuple, dilation: pool.dilation.tuple, ceilMode: pool.ceilMode)
    }

    /// One stage of `conv2dMaxPool2dPair`: a convolution's weight, bias and settings, and
    /// the max-pool after it, with or without ReLU.
    public struct ConvPoolStage {
        public var weight: Tensor, bias: Tensor?
        public var stride: Pair, padding: Pair, dilation: Pair, groups: Int
        public var pool: PoolSettings
        public var relu: Bool

        public init(
            weight: Tensor, bias: Tensor?, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1, groups: Int = 1,
            pool: PoolSettings, relu: Bool
        ) {
            self.weight = weight
            self.bias = bias
            self.stride = stride
            self.padding = padding
            self.dilation = dilation
            self.groups = groups
            self.pool = pool
            self.relu = relu
        }
    }

    /// `conv2dMaxPool2d` twice, the second stage taking the first's output, computed a sample
    /// at a time through both (`Kernels.conv2dMaxPool2dPairForward`: the intermediate never
    /// exists as a tensor) in a pass that records no gradient, where the kernels pair
    /// (`Conv2dPoolPair.applies`: in 8-lane builds, a first convolution of 24 output channels
    /// pooled in registers and a second by Winograd). The same values as the two calls, bit for
    /// bit; nil where the pair is not computed together (the caller then makes the two calls).
    /// `Sequential` tries it for two Conv2d + MaxPool2d groups in a row.
    public static func conv2dMaxPool2dPair(_ input: Tensor, first: ConvPoolStage, second: ConvPoolStage) throws -> Tensor? {
        let tensors = [input, first.weight, second.weight] + [first.bias, second.bias].compactMap { $0 }
        guard !(GradMode.isEnabled && tensors.contains(where: \.requiresGrad)) else { return nil }
        let s1 = try convolutionShape(input, weight: first.weight, bias: first.bias, stride: first.stride,
                                      padding: first.padding, dilation: first.dilation, groups: first.groups)
        let p1 = try poolShape(after: s1, first.pool)
        let s2 = try convolutionShape(input: p1.outputShape, weight: second.weight, bias: second.bias, stride: second.stride,
                                      padding: second.padding, dilation: second.dilation, groups: second.groups)
        let p2 = try poolShape(after: s2, second.pool)
        guard Conv2dPoolPair.applies(first: s1, firstPool: p1, second: s2, secondPool: p2) else { return nil }
        let pair = Conv2dPoolPair(first: s1, firstPool: p1, second: s2, secondPool: p2)
        let out = Tensor.empty(p2.outputShape)
        let workspace = Storage(uninitializedCount: pair.workspaceCount())
        withExtendedLifetime(workspace) {
            conv2dMaxPool2dPairForward(
                pair, input: input.storage.pointer,
                firstWeight: first.weight.storage.pointer, firstBias: first.bias?.storage.pointer, firstRelu: first.relu,
                secondWeight: second.weight.storage.pointer, secondBias: second.bias?.storage.pointer,
                secondRelu: second.relu, output: out.storage.pointer,
                workspace: UnsafeMutableBufferPointer(start: workspace.pointer, count: workspace.count))
        }
        return out
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
        // Without a graph no backward follows: the values only, no argmax.
        let indices = GradMode.isEnabled && input.requiresGrad ? IndexBuffer(count: out.count) : nil
        maxPool2dForward(s, input: input.storage.pointer, output: out.storage.pointer, argmax: indices?.pointer, relu: relu)
        guard let indices else { return out }
        return out.recording("MaxPool2DWithIndicesBackward0", inputs: [input]) { [unowned out] g in
            let gi = Tensor.empty(input.shape)
            maxPool2dBackward(s, gradOutput: g.storage.pointer, argmax: indices.pointer, gradInput: gi.storage.pointer,
                              reluOutput: relu ? UnsafePointer(out.storage.pointer) : nil)
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
