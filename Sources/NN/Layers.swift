import Autograd
import Kernels
import Seeded

// MARK: - Initialisation

/// PyTorch's default initialisation of Conv2d and Linear: weights
/// `kaiming_uniform_(a: √5)`, i.e. uniform in ±1/√fan_in, and biases uniform in ±1/√fan_in.
public enum Initializer {
    public static func uniform(_ shape: [Int], fanIn: Int, using generator: inout SeededGenerator) -> Tensor {
        let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        return Tensor.uniform(shape, low: -bound, high: bound, using: &generator, requiresGrad: true)
    }
}

// MARK: - Layers with parameters

/// `nn.Conv2d`: `(N, in, H, W)` → `(N, out, OH, OW)`; weight `(out, in/groups, kH, kW)`.
public final class Conv2d: Module {
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Pair, stride: Pair, padding: Pair, dilation: Pair
    public let groups: Int
    public let weight: Tensor
    public let bias: Tensor?

    public init(
        inChannels: Int, outChannels: Int, kernelSize: Pair, stride: Pair = 1, padding: Pair = 0,
        dilation: Pair = 1, groups: Int = 1, bias: Bool = true, generator: inout SeededGenerator
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let fanIn = inChannels / max(groups, 1) * kernelSize.height * kernelSize.width
        weight = Initializer.uniform([outChannels, inChannels / max(groups, 1), kernelSize.height, kernelSize.width],
                                     fanIn: fanIn, using: &generator)
        self.bias = bias ? Initializer.uniform([outChannels], fanIn: fanIn, using: &generator) : nil
    }

    /// The tutorial's positional form: `Conv2d(16, 33, 3, stride: 2)`.
    public convenience init(
        _ inChannels: Int, _ outChannels: Int, _ kernelSize: Pair, stride: Pair = 1, padding: Pair = 0,
        dilation: Pair = 1, groups: Int = 1, bias: Bool = true, generator: inout SeededGenerator
    ) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                  padding: padding, dilation: dilation, groups: groups, bias: bias, generator: &generator)
    }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        try F.conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding,
                     dilation: dilation, groups: groups)
    }

    /// One sample's `[in, H, W]` → `[out, OH, OW]` for these settings, without a module.
    public static func outputShape(
        for input: [Int], outChannels: Int, kernelSize: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: Int
    ) throws -> [Int] {
        guard input.count == 3 else {
            throw NNError.shape(op: "conv2d", "expects a [channels, height, width] input but gets \(input)")
        }
        guard input[0] % groups == 0, outChannels % groups == 0 else {
            throw NNError.shape(op: "conv2d", "groups \(groups) must divide input channels \(input[0]) and out_channels \(outChannels)")
        }
        do {
            let s = try Conv2dShape(input: [1] + input, weight: [outChannels, input[0] / groups, kernelSize.height, kernelSize.width],
                                    stride: stride.tuple, padding: padding.tuple, dilation: dilation.tuple, groups: groups)
            return [s.outChannels, s.outHeight, s.outWidth]
        } catch {
            throw NNError.shape(op: "conv2d", "input \(input): \(error)")
        }
    }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        guard input.first == inChannels || input.count != 3 else {
            throw NNError.shape(op: "conv2d", "expects \(inChannels) input channels but gets \(input)")
        }
        return try Self.outputShape(for: input, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
                                    padding: padding, dilation: dilation, groups: groups)
    }

    public override var namedDirectParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// `1, 20, kernel_size=(5, 5), stride=(1, 1)`: stride always, the rest when not default.
    public override var extraDescription: String {
        var s = "\(inChannels), \(outChannels), kernel_size=\(kernelSize), stride=\(stride)"
        if padding != 0 { s += ", padding=\(padding)" }
        if dilation != 1 { s += ", dilation=\(dilation)" }
        if groups != 1 { s += ", groups=\(groups)" }
        if bias == nil { s += ", bias=False" }
        return s
    }
}

/// `nn.Linear`: `(N, in)` → `(N, out)`; weight `(out, in)`.
public final class Linear: Module {
    public let inFeatures: Int, outFeatures: Int
    public let weight: Tensor
    public let bias: Tensor?

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, generator: inout SeededGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Initializer.uniform([outFeatures, inFeatures], fanIn: inFeatures, using: &generator)
        self.bias = bias ? Initializer.uniform([outFeatures], fanIn: inFeatures, using: &generator) : nil
    }

    public convenience init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout SeededGenerator) {
        self.init(inFeatures: inFeatures, outFeatures: outFeatures, bias: bias, generator: &generator)
    }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        try F.linear(input, weight: weight, bias: bias)
    }

    /// One sample's `[in]` → `[out]`, without a module.
    public static func outputShape(for input: [Int], outFeatures: Int) throws -> [Int] {
        guard input.count == 1 else {
            throw NNError.shape(op: "linear", "expects a flat [features] input but gets \(input); add a flatten layer before it "
                + "(it would have \(input.reduce(1, *)) features)")
        }
        return [outFeatures]
    }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count != 1 || input[0] == inFeatures else {
            throw NNError.shape(op: "linear", "expects \(inFeatures) features but gets \(input)")
        }
        return try Self.outputShape(for: input, outFeatures: outFeatures)
    }

    public override var namedDirectParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(bias == nil ? "False" : "True")"
    }
}

// MARK: - Layers without parameters

/// `nn.MaxPool2d`; `stride` defaults to the kernel size.
public final class MaxPool2d: Module {
    public let kernelSize: Pair, stride: Pair, padding: Pair, dilation: Pair
    public let ceilMode: Bool

    public init(kernelSize: Pair, stride: Pair? = nil, padding: Pair = 0, dilation: Pair = 1, ceilMode: Bool = false) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.dilation = dilation
        self.ceilMode = ceilMode
    }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        try F.maxPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }

    /// One sample's `[C, H, W]` → `[C, OH, OW]` for these settings, without a module
    /// (average pooling shares it, naming its own op in errors).
    public static func outputShape(
        for input: [Int], kernelSize: Pair, stride: Pair, padding: Pair, dilation: Pair = 1, ceilMode: Bool = false,
        operation: String = "max_pool2d"
    ) throws -> [Int] {
        guard input.count == 3 else {
            throw NNError.shape(op: operation, "expects a [channels, height, width] input but gets \(input)")
        }
        do {
            let s = try Pool2dShape(input: [1] + input, kernel: kernelSize.tuple, stride: stride.tuple, padding: padding.tuple,
                                    dilation: dilation.tuple, operation: operation, ceilMode: ceilMode)
            return [input[0], s.outHeight, s.outWidth]
        } catch {
            throw NNError.shape(op: operation, "input \(input): \(error)")
        }
    }

    public override func outputShape(for input: [Int]) throws -> [Int] {
        try Self.outputShape(for: input, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation,
                             ceilMode: ceilMode)
    }

    /// PyTorch prints the sizes as given; square ones as a single number.
    public override var extraDescription: String {
        "kernel_size=\(pairText(kernelSize)), stride=\(pairText(stride)), padding=\(pairText(padding)), "
            + "dilation=\(pairText(dilation)), ceil_mode=\(ceilMode ? "True" : "False")"
    }
}

/// A size as PyTorch prints a pooling argument: `2` when square, else `(2, 3)`.
func pairText(_ p: Pair) -> String { p.height == p.width ? "\(p.height)" : "\(p)" }

/// `nn.ReLU`.
public final class ReLU: Module {
    public override init() {}
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { input.relu() }
}

/// `nn.Flatten`: merges dimensions `startDim...endDim` (default: all but the batch).
public final class Flatten: Module {
    public let startDim: Int, endDim: Int
    public init(startDim: Int = 1, endDim: Int = -1) { self.startDim = startDim; self.endDim = endDim }
    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        try input.flatten(startDim: startDim, endDim: endDim)
    }
    /// With the default dimensions: one sample's shape becomes `[product]`.
    public override func outputShape(for input: [Int]) throws -> [Int] {
        guard startDim == 1 && (endDim == -1 || endDim == input.count) else {
            throw NNError.shape(op: "flatten", "per-sample shapes are known for start_dim=1, end_dim=-1 only")
        }
        return [input.reduce(1, *)]
    }
    public override var extraDescription: String { "start_dim=\(startDim), end_dim=\(endDim)" }
}

/// `nn.LogSoftmax`.
public final class LogSoftmax: Module {
    public let dim: Int
    public init(dim: Int = 1) { self.dim = dim }
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { try input.logSoftmax(dim: dim) }
    public override func outputShape(for input: [Int]) throws -> [Int] { try classShape(input, dim: dim, op: "log_softmax") }
    public override var extraDescription: String { "dim=\(dim)" }
}

/// Softmax and log-softmax over the classes of a flat `[classes]` sample.
func classShape(_ input: [Int], dim: Int, op: String) throws -> [Int] {
    guard input.count == 1, dim == 1 || dim == -1 else {
        throw NNError.shape(op: op, "expects a flat [classes] input and dim 1 but gets \(input), dim \(dim)")
    }
    return input
}

/// `nn.Softmax`.
public final class Softmax: Module {
    public let dim: Int
    public init(dim: Int = 1) { self.dim = dim }
    public override func callAsFunction(_ input: Tensor) throws -> Tensor { try input.softmax(dim: dim) }
    public override func outputShape(for input: [Int]) throws -> [Int] { try classShape(input, dim: dim, op: "softmax") }
    public override var extraDescription: String { "dim=\(dim)" }
}

/// `nn.Dropout`: active in training mode only. Its mask generator's state is a
/// non-persistent buffer (`generator`: four 64-bit words): saved in training checkpoints,
/// so a resumed run draws the same masks, and left out of `stateDict()`, as PyTorch's
/// Dropout has no state.
public final class Dropout: Module {
    public let p: Float
    private let state: Buffer

    public init(p: Float = 0.5, generator: SeededGenerator) {
        self.p = p
        state = Buffer(.uint64(generator.state), shape: [4], persistent: false) { values in
            guard case let .uint64(words) = values, SeededGenerator(state: words) != nil else {
                return "not a valid xoshiro256** state (four 64-bit words, not all zero)"
            }
            return nil
        }
    }

    /// The mask generator, as the next forward pass will use it.
    public var generator: SeededGenerator {
        get {
            guard case let .uint64(words) = state.values, let generator = SeededGenerator(state: words) else {
                preconditionFailure("Dropout's generator buffer holds \(state.values.typeName) values")
            }
            return generator
        }
        set { state.values = .uint64(newValue.state) }
    }

    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        var g = generator
        defer { generator = g }
        return try F.dropout(input, p: p, training: isTraining, generator: &g)
    }

    public override var namedDirectBuffers: [(name: String, buffer: Buffer)] { [("generator", state)] }
    public override var extraDescription: String { "p=\(p), inplace=False" }
}

/// `nn.Sequential`: children applied in order; each has a name (`"0"`, `"1"`, … by
/// default, or given, like an `OrderedDict`), which prefixes its parameters' names.
public final class Sequential: Module {
    public private(set) var layers: [(name: String, module: Module)]

    public init(_ layers: [Module]) {
        self.layers = layers.enumerated().map { ("\($0.offset)", $0.element) }
    }

    public init(named layers: [(name: String, module: Module)]) {
        self.layers = layers
    }

    /// Runs the layers in order, fusing three patterns into one op each (the same values and
    /// gradients as the layers in sequence):
    /// - a Conv2d followed by a MaxPool2d, with or without a ReLU just before or after the
    ///   pool (`F.conv2dMaxPool2d`: the convolution's output is not kept for backward); in a
    ///   pass without gradients, two such groups in a row where their kernels pair
    ///   (`F.conv2dMaxPool2dPair`: a sample at a time through both, the same values);
    /// - otherwise a ReLU followed by a MaxPool2d (`F.reluMaxPool2d`: one pass less);
    /// - a Linear followed by a ReLU (`F.linear(..., relu: true)`: a pass less each way).
    public override func callAsFunction(_ input: Tensor) throws -> Tensor {
        var x = input
        var i = 0
        while i < layers.count {
            if let conv = layers[i].module as? Conv2d, let (pool, relu, reluLast, used) = poolAfterConvolution(at: i) {
                if let next = layers[(i + used)...].first?.module as? Conv2d,
                   let (nextPool, nextRelu, _, nextUsed) = poolAfterConvolution(at: i + used),
                   let y = try F.conv2dMaxPool2dPair(x, first: stage(conv, pool, relu: relu),
                                                     second: stage(next, nextPool, relu: nextRelu)) {
                    x = y
                    i += used + nextUsed
                    continue
                }
                x = try F.conv2dMaxPool2d(
                    x, weight: conv.weight, bias: conv.bias, stride: conv.stride, padding: conv.padding,
                    dilation: conv.dilation, groups: conv.groups,
                    pool: (pool.kernelSize, pool.stride, pool.padding, pool.dilation, pool.ceilMode),
                    relu: relu, reluLast: reluLast)
                i += used
            } else if layers[i].module is ReLU, i + 1 < layers.count, let pool = layers[i + 1].module as? MaxPool2d {
                x = try F.reluMaxPool2d(x, kernelSize: pool.kernelSize, stride: pool.stride, padding: pool.padding,
                                        dilation: pool.dilation, ceilMode: pool.ceilMode)
                i += 2
            } else if let linear = layers[i].module as? Linear, i + 1 < layers.count, layers[i + 1].module is ReLU {
                x = try F.linear(x, weight: linear.weight, bias: linear.bias, relu: true)
                i += 2
            } else {
                x = try layers[i].module(x)
                i += 1
            }
        }
        return x
    }

    /// A Conv2d and the MaxPool2d after it, as one stage of `F.conv2dMaxPool2dPair`.
    private func stage(_ conv: Conv2d, _ pool: MaxPool2d, relu: Bool) -> F.ConvPoolStage {
        F.ConvPoolStage(weight: conv.weight, bias: conv.bias, stride: conv.stride, padding: conv.padding,
                        dilation: conv.dilation, groups: conv.groups,
                        pool: (pool.kernelSize, pool.stride, pool.padding, pool.dilation, pool.ceilMode), relu: relu)
    }

    /// The MaxPool2d that follows the Conv2d at `index` (directly, or with a ReLU between
    /// them), whether a ReLU comes just before or after it, and how many layers that is
    /// from the convolution on (2 or 3).
    private func poolAfterConvolution(at index: Int) -> (pool: MaxPool2d, relu: Bool, reluLast: Bool, layers: Int)? {
        func module(_ offset: Int) -> Module? { index + offset < layers.count ? layers[index + offset].module : nil }
        if let pool = module(1) as? MaxPool2d {
            return module(2) is ReLU ? (pool, true, true, 3) : (pool, false, false, 2)
        }
        if module(1) is ReLU, let pool = module(2) as? MaxPool2d { return (pool, true, false, 3) }
        return nil
    }

    /// Runs the layers one at a time, passing each output (with its layer's name) to
    /// `observe`: for pictures of the intermediate feature maps.
    public func forward(_ input: Tensor, observe: (String, Module, Tensor) -> Void) throws -> Tensor {
        try layers.reduce(input) { x, layer in
            let y = try layer.module(x)
            observe(layer.name, layer.module, y)
            return y
        }
    }

    public override var namedChildren: [(name: String, module: Module)] { layers }

    /// Each layer's output shape feeds the next.
    public override func outputShape(for input: [Int]) throws -> [Int] {
        try layers.reduce(input) { try $1.module.outputShape(for: $0) }
    }
}
