import Autograd
import Kernels
import NN
import Seeded

/// Builds the network a config's layer list describes, inferring each layer's input
/// channels or features from the shape that reaches it, and rejecting a list that cannot
/// work before any training starts.
public enum ModelBuilder {
    public struct BuildError: Error, CustomStringConvertible, Equatable {
        public var layerIndex: Int
        public var layerName: String
        public var message: String
        public var description: String { "model.layers[\(layerIndex)] (\(layerName)): \(message)" }
    }

    /// Limits that keep an impossible config from asking for more memory than a machine
    /// has: parameters in one layer, and values of one sample's activation.
    public static let maximumLayerParameters = 100_000_000
    public static let maximumActivationValues = 50_000_000

    /// One layer of a config as the builder resolves it: its name, the per-sample shapes
    /// that enter and leave it, and how many parameters it holds. Computed from the config
    /// alone, before any memory is allocated.
    public struct LayerPlan: Sendable, Equatable {
        public var index: Int
        public var name: String
        public var type: String
        public var inputShape: [Int]
        public var outputShape: [Int]
        public var parameterCount: Int
        /// Values of one sample's im2col matrix (convolutions), the largest scratch a layer asks for.
        public var scratchValues: Int
    }

    /// Checks the layer list against the input shape and infers every layer's shapes,
    /// without allocating anything: a list that cannot work fails here, naming the layer.
    public static func plan(_ config: TrainingConfig) throws -> [LayerPlan] {
        var shape = config.inputShape  // one sample: [C, H, W] or [F]
        var plans: [LayerPlan] = []
        var names: Set<String> = []
        for (i, layer) in config.layers.enumerated() {
            let name = layer.name ?? "\(i)"
            func fail(_ message: String) -> BuildError {
                BuildError(layerIndex: i, layerName: "\(name), \(layer.type)", message: message)
            }
            guard names.insert(name).inserted else { throw fail("the name \"\(name)\" is used twice") }
            let input = shape
            var parameters = 0, scratch = 0
            switch layer.type {
            case "conv2d":
                guard shape.count == 3 else {
                    throw fail("expects a [channels, height, width] input but gets \(shape)")
                }
                guard shape[0] % layer.groups == 0, layer.outChannels % layer.groups == 0 else {
                    throw fail("groups \(layer.groups) must divide input channels \(shape[0]) and out_channels \(layer.outChannels)")
                }
                let weights = layer.outChannels.multipliedReportingOverflow(
                    by: shape[0] / layer.groups * layer.kernelSize.0 * layer.kernelSize.1)
                guard !weights.overflow, weights.partialValue <= maximumLayerParameters else {
                    throw fail("\(layer.outChannels) filters of \(shape[0] / layer.groups)x\(layer.kernelSize.0)x\(layer.kernelSize.1) "
                        + "are more than \(maximumLayerParameters) parameters")
                }
                let s: Conv2dShape
                do {
                    s = try Conv2dShape(
                        input: [1] + shape,
                        weight: [layer.outChannels, shape[0] / layer.groups, layer.kernelSize.0, layer.kernelSize.1],
                        stride: layer.stride ?? (1, 1), padding: layer.padding, dilation: layer.dilation, groups: layer.groups)
                } catch { throw fail("input \(shape): \(error)") }
                parameters = weights.partialValue + (layer.bias ? layer.outChannels : 0)
                scratch = shape[0] * layer.kernelSize.0 * layer.kernelSize.1 * s.outHeight * s.outWidth
                shape = [s.outChannels, s.outHeight, s.outWidth]
            case "max_pool2d":
                guard shape.count == 3 else { throw fail("expects a [channels, height, width] input but gets \(shape)") }
                let s: Pool2dShape
                do {
                    s = try Pool2dShape(input: [1] + shape, kernel: layer.kernelSize, stride: layer.stride ?? layer.kernelSize,
                                        padding: layer.padding)
                } catch { throw fail("input \(shape): \(error)") }
                shape = [shape[0], s.outHeight, s.outWidth]
            case "linear":
                guard shape.count == 1 else {
                    throw fail("expects a flat [features] input but gets \(shape); add a flatten layer before it "
                        + "(it would have \(shape.reduce(1, *)) features)")
                }
                let weights = shape[0].multipliedReportingOverflow(by: layer.outFeatures)
                guard !weights.overflow, weights.partialValue <= maximumLayerParameters else {
                    throw fail("\(shape[0]) x \(layer.outFeatures) weights are more than \(maximumLayerParameters) parameters")
                }
                parameters = weights.partialValue + (layer.bias ? layer.outFeatures : 0)
                shape = [layer.outFeatures]
            case "flatten":
                shape = [shape.reduce(1, *)]
            case "relu", "dropout":
                break
            case "log_softmax", "softmax":
                guard shape.count == 1, layer.dim == 1 || layer.dim == -1 else {
                    throw fail("expects a flat [classes] input and dim 1 but gets \(shape), dim \(layer.dim)")
                }
            default:
                throw fail("unknown layer type")
            }
            guard shape.reduce(1, *) <= maximumActivationValues else {
                throw fail("its output \(shape) has more than \(maximumActivationValues) values per sample")
            }
            plans.append(LayerPlan(index: i, name: name, type: layer.type, inputShape: input, outputShape: shape,
                                   parameterCount: parameters, scratchValues: scratch))
        }
        guard shape.count == 1 else {
            throw BuildError(layerIndex: config.layers.count - 1, layerName: "output",
                             message: "the network ends with shape \(shape); expected a flat [classes] output (add flatten and linear layers)")
        }
        return plans
    }

    /// The network for `config`, with PyTorch's default initialisation drawn from `seed`.
    /// Layers without a name are named by their index, as in `nn.Sequential`.
    public static func build(_ config: TrainingConfig, seed: UInt64) throws -> Sequential {
        var generator = SeededGenerator(seed: seed, stream: 0x1417)
        var layers: [(name: String, module: Module)] = []
        for (layer, plan) in zip(config.layers, try self.plan(config)) {
            let module: Module
            switch layer.type {
            case "conv2d":
                let stride = layer.stride ?? (1, 1)
                module = Conv2d(inChannels: plan.inputShape[0], outChannels: layer.outChannels,
                                kernelSize: Pair(layer.kernelSize.0, layer.kernelSize.1),
                                stride: Pair(stride.0, stride.1), padding: Pair(layer.padding.0, layer.padding.1),
                                dilation: Pair(layer.dilation.0, layer.dilation.1), groups: layer.groups,
                                bias: layer.bias, generator: &generator)
            case "max_pool2d":
                let stride = layer.stride ?? layer.kernelSize
                module = MaxPool2d(kernelSize: Pair(layer.kernelSize.0, layer.kernelSize.1),
                                   stride: Pair(stride.0, stride.1), padding: Pair(layer.padding.0, layer.padding.1))
            case "linear":
                module = Linear(inFeatures: plan.inputShape[0], outFeatures: layer.outFeatures, bias: layer.bias,
                                generator: &generator)
            case "flatten":
                module = Flatten()
            case "relu":
                module = ReLU()
            case "dropout":
                module = Dropout(p: Float(layer.p), generator: SeededGenerator(seed: seed, stream: 0xD0 + UInt64(plan.index)))
            default:  // plan() admits no other type
                module = layer.type == "log_softmax" ? LogSoftmax(dim: layer.dim) : Softmax(dim: layer.dim)
            }
            layers.append((plan.name, module))
        }
        return Sequential(named: layers)
    }

    /// The per-sample output size of the built network (the number of classes).
    public static func outputFeatures(_ model: Sequential, inputShape: [Int]) throws -> Int {
        let probe = Tensor.zeros(shape: [1] + inputShape)
        return try withNoGrad { try model(probe).shape.last ?? 0 }
    }

    /// Whether the network already ends in log-probabilities (then the loss is NLL;
    /// otherwise cross-entropy on the logits).
    public static func endsWithLogSoftmax(_ model: Sequential) -> Bool {
        model.layers.last?.module is LogSoftmax
    }
}
