import Autograd
import Kernels

extension Functional {
    /// torchvision's `F.center_crop` for `(N, C, H, W)` → `(N, C, size)`: the window whose
    /// top-left corner is at `round((H - height) / 2)`, `round((W - width) / 2)`, rounded
    /// half to even as Python's `round` does. The gradient is zero outside the window
    /// (PyTorch's `SliceBackward0`). A size larger than the input is an error (torchvision
    /// would pad).
    public static func centerCrop(_ input: Tensor, size: Pair) throws -> Tensor {
        guard input.shape.count == 4, input.shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw NNError.shape(op: "center_crop", "expects an (N, C, H, W) input with C, H and W positive but gets \(input.shape)")
        }
        let (height, width) = (input.shape[2], input.shape[3])
        let (top, left) = try CenterCrop.origin(height: height, width: width, size: size)
        let planes = input.shape[0] * input.shape[1]
        let out = Tensor.empty([input.shape[0], input.shape[1], size.height, size.width])
        crop2dForward(planes: planes, height: height, width: width, top: top, left: left, outHeight: size.height,
                      outWidth: size.width, input: input.storage.pointer, output: out.storage.pointer)
        return out.recording("SliceBackward0", inputs: [input]) { g in
            let gi = Tensor.empty(input.shape)
            crop2dBackward(planes: planes, height: height, width: width, top: top, left: left, outHeight: size.height,
                           outWidth: size.width, gradOutput: g.storage.pointer, gradInput: gi.storage.pointer)
            return [gi]
        }
    }
}

/// torchvision's `transforms.CenterCrop(size)` as a layer: the central `size` window of each
/// plane. It makes the network smaller where the input's border carries little (MNIST's
/// digits sit in a 20×20 box centred by mass in 28×28).
public final class CenterCrop: Module {
    public let size: Pair

    public init(size: Pair) { self.size = size }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor { try F.centerCrop(input, size: size) }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 3, input.allSatisfy({ $0 > 0 }) else {
            throw NNError.shape(op: "center_crop", "expects a [channels, height, width] input but gets \(input)")
        }
        _ = try Self.origin(height: input[1], width: input[2], size: size)
        return [input[0], size.height, size.width]
    }

    /// torchvision's repr: `size=(24, 24)`.
    public override var extraDescription: String { "size=(\(size.height), \(size.width))" }

    /// The window's top-left corner in a `height × width` plane, or why it does not fit.
    public static func origin(height: Int, width: Int, size: Pair) throws -> (top: Int, left: Int) {
        guard size.height > 0, size.width > 0 else {
            throw NNError.shape(op: "center_crop", "size \(pairText(size)) must be positive")
        }
        guard size.height <= height, size.width <= width else {
            throw NNError.shape(op: "center_crop", "size \(size.height)x\(size.width) is larger than the \(height)x\(width) input")
        }
        func centred(_ extent: Int, _ window: Int) -> Int { Int((Double(extent - window) / 2).rounded(.toNearestOrEven)) }
        return (centred(height, size.height), centred(width, size.width))
    }
}
