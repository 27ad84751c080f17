import NN
import Seeded

/// One layer kind of a config's `model.layers`, declared once: its config keys (read with
/// path-named errors and written back in the same order), their defaults, the shapes and
/// parameters it has for an input shape, and the module it builds. The config decoder and
/// encoder, `ModelBuilder`, `mnist-train --help` and the README's layer table all read
/// `LayerRegistry.kinds`; no other code switches over layer names.
/// `docs/ADDING_A_LAYER.md` is the recipe for a new kind.
public protocol LayerKind: Sendable {
    /// The config's `type`.
    static var type: String { get }
    /// What it is, for the layer table: `nn.Conv2d: 2-D convolution`.
    static var summary: String { get }
    /// Its keys (besides `type` and `name`) with their defaults, for the layer table.
    static var keys: [LayerKey] { get }
    /// Reads the layer's own keys from its JSON object (the reader names the path in errors).
    init(reading r: JSONObjectReader) throws
    /// The keys back, in the order `init(reading:)` reads them, every default written out.
    var fields: [(String, Any)] { get }
    /// One sample's output shape for one sample's input shape (the module's shape rule,
    /// without building it), or `NNError.shape` saying why the input does not fit.
    func outputShape(for input: [Int]) throws -> [Int]
    /// How many parameters the layer has for this input; throws when that is more than
    /// `ModelBuilder.maximumLayerParameters` (before anything is allocated).
    func parameterCount(for input: [Int]) throws -> Int
    /// Values of the largest per-sample scratch buffer its kernels use (for the memory estimate).
    func scratchValues(for input: [Int]) -> Int
    /// The module, with PyTorch's initialisation drawn from `context`.
    func makeModule(for input: [Int], context: inout LayerContext) -> Module
    /// The layer's ONNX nodes in inference mode (`ONNXExport.swift`), from `e.value` to a
    /// new `e.value`; its weights become initializers under their state_dict names.
    func exportONNX(_ e: inout ONNXLayerExport) throws
}

extension LayerKind {
    public func parameterCount(for input: [Int]) throws -> Int { 0 }
    public func scratchValues(for input: [Int]) -> Int { 0 }
}

/// A kind without keys whose output has its input's shape (activations, `flatten` aside):
/// it declares only its type, summary and module.
public protocol ElementwiseLayerKind: LayerKind {
    init()
}

extension ElementwiseLayerKind {
    public static var keys: [LayerKey] { [] }
    public init(reading r: JSONObjectReader) throws { self.init() }
    public var fields: [(String, Any)] { [] }
    public func outputShape(for input: [Int]) throws -> [Int] { input }
}

/// A key of a layer kind, for the layer table.
public struct LayerKey: Sendable {
    public var name: String
    public var defaultValue: String
    public init(_ name: String, _ defaultValue: String) {
        self.name = name
        self.defaultValue = defaultValue
    }
}

/// What building a module may draw on: the initialisation generator shared by all layers
/// (in layer order, as PyTorch draws them), the run's seed and the layer's index.
public struct LayerContext {
    public var generator: SeededGenerator
    public let seed: UInt64
    public var index: Int
}

/// Every layer kind a config may use, in the order errors and tables list them.
public enum LayerRegistry {
    public static let kinds: [any LayerKind.Type] = [
        Conv2dLayer.self, MaxPool2dLayer.self, ReLULayer.self, FlattenLayer.self, LinearLayer.self, DropoutLayer.self,
        LogSoftmaxLayer.self, SoftmaxLayer.self, TanhLayer.self, SigmoidLayer.self, LeakyReLULayer.self, GELULayer.self,
        SiLULayer.self, BatchNorm2dLayer.self, BatchNorm1dLayer.self, AvgPool2dLayer.self, AdaptiveAvgPool2dLayer.self,
        CenterCropLayer.self,
    ]

    public static var types: [String] { kinds.map { $0.type } }

    public static func kind(_ type: String) -> (any LayerKind.Type)? { kinds.first { $0.type == type } }

    /// The Markdown table of the README's Configs section: type, keys with defaults, what it is.
    public static var markdownTable: String {
        var lines = ["| `type` | keys (default) | what |", "| --- | --- | --- |"]
        for kind in kinds {
            let keys = kind.keys.map { "`\($0.name)` (\($0.defaultValue))" }.joined(separator: ", ")
            lines.append("| `\(kind.type)` | \(keys.isEmpty ? "none" : keys) | \(kind.summary) |")
        }
        return lines.joined(separator: "\n")
    }

    /// One line per kind, for `mnist-train --help`.
    public static var helpText: String {
        kinds.map { kind in
            "\(kind.type)" + (kind.keys.isEmpty ? "" : " (" + kind.keys.map(\.name).joined(separator: ", ") + ")")
        }.joined(separator: "; ")
    }
}

/// Multiplies sizes, refusing a layer with more than `ModelBuilder.maximumLayerParameters`.
func checkedParameters(_ factors: [Int], bias: Int, describe: String) throws -> Int {
    var product = 1
    for factor in factors {
        let (value, overflow) = product.multipliedReportingOverflow(by: factor)
        guard !overflow, value <= ModelBuilder.maximumLayerParameters else {
            throw ModelBuilder.LayerProblem("\(describe) are more than \(ModelBuilder.maximumLayerParameters) parameters")
        }
        product = value
    }
    return product + bias
}

// MARK: - The kinds

/// `conv2d`: `nn.Conv2d`; input channels come from the shape that reaches it.
public struct Conv2dLayer: LayerKind {
    public static let type = "conv2d"
    public static let summary = "`nn.Conv2d`: 2-D convolution; each size an int or `[h, w]`"
    public static let keys = [LayerKey("out_channels", "required"), LayerKey("kernel_size", "required"), LayerKey("stride", "1"),
                              LayerKey("padding", "0"), LayerKey("dilation", "1"), LayerKey("groups", "1"),
                              LayerKey("bias", "true")]
    public var outChannels: Int
    public var kernelSize: Pair
    public var stride = Pair(1), padding = Pair(0), dilation = Pair(1)
    public var groups = 1
    public var bias = true

    public init(outChannels: Int, kernelSize: Pair) {
        self.outChannels = outChannels
        self.kernelSize = kernelSize
    }

    public init(reading r: JSONObjectReader) throws {
        outChannels = try r.int("out_channels", 1...65_536)
        kernelSize = Pair(try r.pair("kernel_size", 1...1024))
        stride = Pair(try r.pair("stride", default: (1, 1), 1...1024))
        padding = Pair(try r.pair("padding", default: (0, 0), 0...1024))
        dilation = Pair(try r.pair("dilation", default: (1, 1), 1...1024))
        groups = try r.int("groups", default: 1, 1...65_536)
        bias = try r.bool("bias", default: true)
    }

    public var fields: [(String, Any)] {
        [("out_channels", outChannels), ("kernel_size", kernelSize.list), ("stride", stride.list), ("padding", padding.list),
         ("dilation", dilation.list), ("groups", groups), ("bias", bias)]
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try Conv2d.outputShape(for: input, outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
                               dilation: dilation, groups: groups)
    }

    public func parameterCount(for input: [Int]) throws -> Int {
        let perGroup = input[0] / groups
        return try checkedParameters([outChannels, perGroup, kernelSize.height, kernelSize.width], bias: bias ? outChannels : 0,
                                     describe: "\(outChannels) filters of \(perGroup)x\(kernelSize.height)x\(kernelSize.width)")
    }

    public func scratchValues(for input: [Int]) -> Int {
        let output = (try? outputShape(for: input)) ?? [0, 0, 0]
        return input[0] * kernelSize.height * kernelSize.width * output[1] * output[2]
    }

    public func makeModule(for input: [Int], context: inout LayerContext) -> Module {
        Conv2d(inChannels: input[0], outChannels: outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
               dilation: dilation, groups: groups, bias: bias, generator: &context.generator)
    }
}

/// `max_pool2d`: `nn.MaxPool2d`; the stride defaults to the kernel size, as in PyTorch.
public struct MaxPool2dLayer: LayerKind {
    public static let type = "max_pool2d"
    public static let summary = "`nn.MaxPool2d`: the maximum of each window"
    public static let keys = [LayerKey("kernel_size", "required"), LayerKey("stride", "kernel_size"), LayerKey("padding", "0"),
                              LayerKey("ceil_mode", "false")]
    public var window: PoolWindow

    public init(kernelSize: Pair, stride: Pair? = nil) { window = PoolWindow(kernelSize: kernelSize, stride: stride) }
    public init(reading r: JSONObjectReader) throws { window = try PoolWindow(reading: r) }
    /// `ceil_mode` is written only when set, so configs of the first wave encode as before.
    public var fields: [(String, Any)] { window.fields(ceilModeAlways: false) }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try MaxPool2d.outputShape(for: input, kernelSize: window.kernelSize, stride: window.stride, padding: window.padding,
                                  ceilMode: window.ceilMode)
    }

    public func makeModule(for input: [Int], context: inout LayerContext) -> Module {
        MaxPool2d(kernelSize: window.kernelSize, stride: window.stride, padding: window.padding, ceilMode: window.ceilMode)
    }
}

/// The window keys pooling layers share: `kernel_size`, `stride` (default: the kernel
/// size), `padding`, `ceil_mode`.
public struct PoolWindow: Sendable, Equatable {
    public var kernelSize: Pair
    public var stride: Pair
    public var padding = Pair(0)
    public var ceilMode = false

    public init(kernelSize: Pair, stride: Pair? = nil) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    init(reading r: JSONObjectReader) throws {
        let kernel = try r.pair("kernel_size", 1...1024)
        kernelSize = Pair(kernel)
        stride = Pair(try r.pair("stride", default: kernel, 1...1024))
        padding = Pair(try r.pair("padding", default: (0, 0), 0...1024))
        ceilMode = try r.bool("ceil_mode", default: false)
    }

    func fields(ceilModeAlways: Bool) -> [(String, Any)] {
        [("kernel_size", kernelSize.list), ("stride", stride.list), ("padding", padding.list)]
            + (ceilMode || ceilModeAlways ? [("ceil_mode", ceilMode)] : [])
    }
}

/// `avg_pool2d`: `nn.AvgPool2d`.
public struct AvgPool2dLayer: LayerKind {
    public static let type = "avg_pool2d"
    public static let summary = "`nn.AvgPool2d`: the mean of each window"
    public static let keys = [LayerKey("kernel_size", "required"), LayerKey("stride", "kernel_size"), LayerKey("padding", "0"),
                              LayerKey("ceil_mode", "false"), LayerKey("count_include_pad", "true")]
    public var window: PoolWindow
    public var countIncludePad = true

    public init(kernelSize: Pair, stride: Pair? = nil) { window = PoolWindow(kernelSize: kernelSize, stride: stride) }
    public init(reading r: JSONObjectReader) throws {
        window = try PoolWindow(reading: r)
        countIncludePad = try r.bool("count_include_pad", default: true)
    }
    public var fields: [(String, Any)] { window.fields(ceilModeAlways: true) + [("count_include_pad", countIncludePad)] }

    public func outputShape(for input: [Int]) throws -> [Int] { try module.outputShape(for: input) }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { module }
    var module: AvgPool2d {
        AvgPool2d(kernelSize: window.kernelSize, stride: window.stride, padding: window.padding, ceilMode: window.ceilMode,
                  countIncludePad: countIncludePad)
    }
}

/// `adaptive_avg_pool2d`: `nn.AdaptiveAvgPool2d`: any input size to `output_size`.
public struct AdaptiveAvgPool2dLayer: LayerKind {
    public static let type = "adaptive_avg_pool2d"
    public static let summary = "`nn.AdaptiveAvgPool2d`: averages any `[C, H, W]` down to `[C, output_size]`"
    public static let keys = [LayerKey("output_size", "required")]
    public var outputSize: Pair

    public init(outputSize: Pair) { self.outputSize = outputSize }
    public init(reading r: JSONObjectReader) throws { outputSize = Pair(try r.pair("output_size", 1...1024)) }
    public var fields: [(String, Any)] { [("output_size", outputSize.list)] }
    public func outputShape(for input: [Int]) throws -> [Int] { try AdaptiveAvgPool2d(outputSize: outputSize).outputShape(for: input) }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { AdaptiveAvgPool2d(outputSize: outputSize) }
}

/// `center_crop`: torchvision's `transforms.CenterCrop` as a layer, so that evaluation,
/// prediction and export crop as training did.
public struct CenterCropLayer: LayerKind {
    public static let type = "center_crop"
    public static let summary = "`transforms.CenterCrop`: the central `[h, w]` window of each `[C, H, W]` input (no parameters)"
    public static let keys = [LayerKey("size", "required")]
    public var size: Pair

    public init(size: Pair) { self.size = size }
    public init(reading r: JSONObjectReader) throws { size = Pair(try r.pair("size", 1...1024)) }
    public var fields: [(String, Any)] { [("size", size.list)] }
    public func outputShape(for input: [Int]) throws -> [Int] { try CenterCrop(size: size).outputShape(for: input) }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { CenterCrop(size: size) }
}

/// `linear`: `nn.Linear`; input features come from the shape that reaches it.
public struct LinearLayer: LayerKind {
    public static let type = "linear"
    public static let summary = "`nn.Linear`: a fully connected layer on a flat input"
    public static let keys = [LayerKey("out_features", "required"), LayerKey("bias", "true")]
    public var outFeatures: Int
    public var bias = true

    public init(outFeatures: Int) { self.outFeatures = outFeatures }

    public init(reading r: JSONObjectReader) throws {
        outFeatures = try r.int("out_features", 1...1_000_000)
        bias = try r.bool("bias", default: true)
    }

    public var fields: [(String, Any)] { [("out_features", outFeatures), ("bias", bias)] }

    public func outputShape(for input: [Int]) throws -> [Int] { try Linear.outputShape(for: input, outFeatures: outFeatures) }

    public func parameterCount(for input: [Int]) throws -> Int {
        try checkedParameters([input[0], outFeatures], bias: bias ? outFeatures : 0, describe: "\(input[0]) x \(outFeatures) weights")
    }

    public func makeModule(for input: [Int], context: inout LayerContext) -> Module {
        Linear(inFeatures: input[0], outFeatures: outFeatures, bias: bias, generator: &context.generator)
    }
}

/// `relu`: `nn.ReLU`.
public struct ReLULayer: ElementwiseLayerKind {
    public static let type = "relu"
    public static let summary = "`nn.ReLU`; before a `max_pool2d` the two run as one fused op"
    public init() {}
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { ReLU() }
}

/// `flatten`: `nn.Flatten()`: one sample becomes `[features]`.
public struct FlattenLayer: LayerKind {
    public static let type = "flatten"
    public static let summary = "`nn.Flatten`: one sample becomes a flat vector"
    public static let keys: [LayerKey] = []
    public init() {}
    public init(reading r: JSONObjectReader) throws {}
    public var fields: [(String, Any)] { [] }
    public func outputShape(for input: [Int]) throws -> [Int] { [input.reduce(1, *)] }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { Flatten() }
}

/// `dropout`: `nn.Dropout`; its mask generator is seeded from the run's seed and the
/// layer's index, and saved with the training state.
public struct DropoutLayer: LayerKind {
    public static let type = "dropout"
    public static let summary = "`nn.Dropout`: zeroes inputs with probability `p` in training"
    public static let keys = [LayerKey("p", "0.5")]
    public var p = 0.5

    public init(p: Double = 0.5) { self.p = p }
    public init(reading r: JSONObjectReader) throws { p = try r.double("p", default: 0.5, 0...1) }
    public var fields: [(String, Any)] { [("p", p)] }
    public func outputShape(for input: [Int]) throws -> [Int] { input }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module {
        Dropout(p: Float(p), generator: SeededGenerator(seed: context.seed, stream: 0xD0 + UInt64(context.index)))
    }
}

/// `log_softmax`: `nn.LogSoftmax`; a network ending in it is trained with NLL loss.
public struct LogSoftmaxLayer: LayerKind {
    public static let type = "log_softmax"
    public static let summary = "`nn.LogSoftmax` over the classes; the network is then trained with NLL loss"
    public static let keys = [LayerKey("dim", "1")]
    public var dim = 1
    public init(dim: Int = 1) { self.dim = dim }
    public init(reading r: JSONObjectReader) throws { dim = try r.int("dim", default: 1, -2...1) }
    public var fields: [(String, Any)] { [("dim", dim)] }
    public func outputShape(for input: [Int]) throws -> [Int] { try LogSoftmax(dim: dim).outputShape(for: input) }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { LogSoftmax(dim: dim) }
}

/// `softmax`: `nn.Softmax`; for evaluation configs only (training refuses it at the end).
public struct SoftmaxLayer: LayerKind {
    public static let type = "softmax"
    public static let summary = "`nn.Softmax` over the classes (evaluation only: training refuses a softmax output)"
    public static let keys = [LayerKey("dim", "1")]
    public var dim = 1
    public init(dim: Int = 1) { self.dim = dim }
    public init(reading r: JSONObjectReader) throws { dim = try r.int("dim", default: 1, -2...1) }
    public var fields: [(String, Any)] { [("dim", dim)] }
    public func outputShape(for input: [Int]) throws -> [Int] { try Softmax(dim: dim).outputShape(for: input) }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { Softmax(dim: dim) }
}

/// `tanh`: `nn.Tanh`.
public struct TanhLayer: ElementwiseLayerKind {
    public static let type = "tanh"
    public static let summary = "`nn.Tanh`"
    public init() {}
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { Tanh() }
}

/// `sigmoid`: `nn.Sigmoid`.
public struct SigmoidLayer: ElementwiseLayerKind {
    public static let type = "sigmoid"
    public static let summary = "`nn.Sigmoid`"
    public init() {}
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { Sigmoid() }
}

/// `leaky_relu`: `nn.LeakyReLU`.
public struct LeakyReLULayer: LayerKind {
    public static let type = "leaky_relu"
    public static let summary = "`nn.LeakyReLU`: `x`, or `negative_slope · x` below 0"
    public static let keys = [LayerKey("negative_slope", "0.01")]
    public var negativeSlope = 0.01
    public init(negativeSlope: Double = 0.01) { self.negativeSlope = negativeSlope }
    public init(reading r: JSONObjectReader) throws { negativeSlope = try r.double("negative_slope", default: 0.01, -1e6...1e6) }
    public var fields: [(String, Any)] { [("negative_slope", negativeSlope)] }
    public func outputShape(for input: [Int]) throws -> [Int] { input }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { LeakyReLU(negativeSlope: Float(negativeSlope)) }
}

/// `gelu`: `nn.GELU`, exact (`approximate: "none"`) or with PyTorch's tanh approximation.
public struct GELULayer: LayerKind {
    public static let type = "gelu"
    public static let summary = "`nn.GELU`: `x · Φ(x)`; `approximate` is `none` or `tanh`"
    public static let keys = [LayerKey("approximate", "none")]
    public var approximate = GELU.Approximation.none
    public init(approximate: GELU.Approximation = .none) { self.approximate = approximate }
    public init(reading r: JSONObjectReader) throws {
        let name = try r.string("approximate", default: "none", oneOf: GELU.Approximation.allCases.map(\.rawValue))
        approximate = GELU.Approximation(rawValue: name) ?? .none
    }
    public var fields: [(String, Any)] { [("approximate", approximate.rawValue)] }
    public func outputShape(for input: [Int]) throws -> [Int] { input }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { GELU(approximate: approximate) }
}

/// `silu`: `nn.SiLU` (swish).
public struct SiLULayer: ElementwiseLayerKind {
    public static let type = "silu"
    public static let summary = "`nn.SiLU`: `x · σ(x)`"
    public init() {}
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { SiLU() }
}

/// The keys of `batch_norm1d` and `batch_norm2d`, as PyTorch names its arguments.
public struct BatchNormSettings: Sendable, Equatable {
    public var eps = 1e-5
    public var momentum = 0.1
    public var affine = true
    public var trackRunningStats = true

    public init() {}

    static let keys = [LayerKey("eps", "1e-05"), LayerKey("momentum", "0.1"), LayerKey("affine", "true"),
                       LayerKey("track_running_stats", "true")]

    init(reading r: JSONObjectReader) throws {
        eps = try r.double("eps", default: 1e-5, 1e-12...1, allowed: "a number in 1e-12...1")
        momentum = try r.double("momentum", default: 0.1, 0...1)
        affine = try r.bool("affine", default: true)
        trackRunningStats = try r.bool("track_running_stats", default: true)
    }

    var fields: [(String, Any)] {
        [("eps", eps), ("momentum", momentum), ("affine", affine), ("track_running_stats", trackRunningStats)]
    }
}

/// `batch_norm1d` and `batch_norm2d` share their keys, parameters and shape rule; each
/// declares its type, summary and module.
public protocol BatchNormLayerKind: LayerKind {
    var settings: BatchNormSettings { get }
    init(_ settings: BatchNormSettings)
    func module(for input: [Int]) -> BatchNorm
}

extension BatchNormLayerKind {
    public static var keys: [LayerKey] { BatchNormSettings.keys }
    public init(reading r: JSONObjectReader) throws { self.init(try BatchNormSettings(reading: r)) }
    public var fields: [(String, Any)] { settings.fields }
    public func outputShape(for input: [Int]) throws -> [Int] { try module(for: input).outputShape(for: input) }
    public func parameterCount(for input: [Int]) throws -> Int { settings.affine ? 2 * (input.first ?? 0) : 0 }
    public func makeModule(for input: [Int], context: inout LayerContext) -> Module { module(for: input) }
}

/// `batch_norm2d`: `nn.BatchNorm2d`; `num_features` comes from the channels that reach it.
public struct BatchNorm2dLayer: BatchNormLayerKind {
    public static let type = "batch_norm2d"
    public static let summary = "`nn.BatchNorm2d`: per-channel normalization of `[C, H, W]`, running statistics for evaluation"
    public var settings: BatchNormSettings
    public init(_ settings: BatchNormSettings = BatchNormSettings()) { self.settings = settings }
    public func module(for input: [Int]) -> BatchNorm {
        BatchNorm2d(input.first ?? 0, eps: settings.eps, momentum: settings.momentum, affine: settings.affine,
                    trackRunningStats: settings.trackRunningStats)
    }
}

/// `batch_norm1d`: `nn.BatchNorm1d` on `[C]` (after flatten or linear) or `[C, L]`.
public struct BatchNorm1dLayer: BatchNormLayerKind {
    public static let type = "batch_norm1d"
    public static let summary = "`nn.BatchNorm1d`: per-feature normalization of `[C]` or `[C, L]`"
    public var settings: BatchNormSettings
    public init(_ settings: BatchNormSettings = BatchNormSettings()) { self.settings = settings }
    public func module(for input: [Int]) -> BatchNorm {
        BatchNorm1d(input.first ?? 0, eps: settings.eps, momentum: settings.momentum, affine: settings.affine,
                    trackRunningStats: settings.trackRunningStats)
    }
}

extension Pair {
    init(_ pair: (Int, Int)) { self.init(pair.0, pair.1) }
    /// `[h, w]`, as configs write sizes.
    var list: [Int] { [height, width] }
}
