import Autograd
import Kernels

extension Functional {
    /// PyTorch's `F.avg_pool2d` for `(N, C, H, W)`: the mean of each window; `stride`
    /// defaults to the kernel size; `countIncludePad` divides by the window's size within
    /// the padded input (PyTorch's default), else by its size within the input.
    public static func avgPool2d(
        _ input: Tensor, kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, ceilMode: Bool = false,
        countIncludePad: Bool = true
    ) throws -> Tensor {
        let s = try Pool2dShape(input: input.shape, kernel: kernelSize.tuple, stride: stride?.tuple, padding: padding.tuple,
                                operation: "avg_pool2d", ceilMode: ceilMode)
        let out = Tensor.empty(s.outputShape)
        avgPool2dForward(s, countIncludePad: countIncludePad, input: input.storage.pointer, output: out.storage.pointer)
        return out.recording("AvgPool2DBackward0", inputs: [input]) { g in
            let gi = Tensor.empty(input.shape)
            avgPool2dBackward(s, countIncludePad: countIncludePad, gradOutput: g.storage.pointer, gradInput: gi.storage.pointer)
            return [gi]
        }
    }

    /// PyTorch's `F.adaptive_avg_pool2d` for `(N, C, H, W)` → `(N, C, outputSize)`: output
    /// `i` averages rows `floor(i·H/OH) ..< ceil((i+1)·H/OH)`, columns likewise.
    public static func adaptiveAvgPool2d(_ input: Tensor, outputSize: Pair) throws -> Tensor {
        let planes = try AdaptiveAvgPool2d.planes(of: input.shape)
        let (h, w) = (input.shape[2], input.shape[3])
        let out = Tensor.empty([input.shape[0], input.shape[1], outputSize.height, outputSize.width])
        adaptiveAvgPool2dForward(planes: planes, height: h, width: w, outHeight: outputSize.height, outWidth: outputSize.width,
                                 input: input.storage.pointer, output: out.storage.pointer)
        return out.recording("AdaptiveAvgPool2DBackward0", inputs: [input]) { g in
            let gi = Tensor.empty(input.shape)
            adaptiveAvgPool2dBackward(planes: planes, height: h, width: w, outHeight: outputSize.height,
                                      outWidth: outputSize.width, gradOutput: g.storage.pointer, gradInput: gi.storage.pointer)
            return [gi]
        }
    }
}

/// `nn.AvgPool2d`; `stride` defaults to the kernel size.
public final class AvgPool2d: Module {
    public let kernelSize: Pair, stride: Pair, padding: Pair
    public let ceilMode: Bool, countIncludePad: Bool

    public init(kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        try F.avgPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
                        countIncludePad: countIncludePad)
    }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        try MaxPool2d.outputShape(for: input, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode,
                                  operation: "avg_pool2d")
    }

    /// PyTorch's `AvgPool2d.extra_repr`: `kernel_size=2, stride=2, padding=0`.
    public override var extraDescription: String {
        "kernel_size=\(pairText(kernelSize)), stride=\(pairText(stride)), padding=\(pairText(padding))"
    }
}

/// `nn.AdaptiveAvgPool2d(output_size)`.
public final class AdaptiveAvgPool2d: Module {
    public let outputSize: Pair

    public init(outputSize: Pair) { self.outputSize = outputSize }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor { try F.adaptiveAvgPool2d(input, outputSize: outputSize) }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 3, input.allSatisfy({ $0 > 0 }) else {
            throw NNError.shape(op: "adaptive_avg_pool2d", "expects a [channels, height, width] input but gets \(input)")
        }
        guard outputSize.height > 0, outputSize.width > 0 else {
            throw NNError.shape(op: "adaptive_avg_pool2d", "output_size \(outputSize) must be positive")
        }
        return [input[0], outputSize.height, outputSize.width]
    }

    /// `output_size=1` or `output_size=(3, 2)`, as given.
    public override var extraDescription: String { "output_size=\(pairText(outputSize))" }

    /// `N·C` for an `(N, C, H, W)` input, or the shape error.
    static func planes(of shape: [Int]) throws -> Int {
        guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
            throw NNError.shape(op: "adaptive_avg_pool2d", "expects an (N, C, H, W) input but gets \(shape)")
        }
        return shape[0] * shape[1]
    }
}
