import Autograd
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

    /// Why one layer cannot take its input; `plan` names the layer around it.
    public struct LayerProblem: Error {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    /// Checks the layer list against the input shape and infers every layer's shapes and
    /// parameter counts from the layer kinds, without allocating anything: a list that
    /// cannot work fails here, naming the layer.
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
            let input = shape, parameters: Int
            do {
                shape = try layer.kind.outputShape(for: input)
                parameters = try layer.kind.parameterCount(for: input)
            } catch let NNError.shape(_, message) {
                throw fail(message)
            } catch let problem as LayerProblem {
                throw fail(problem.message)
            }
            guard shape.reduce(1, *) <= maximumActivationValues else {
                throw fail("its output \(shape) has more than \(maximumActivationValues) values per sample")
            }
            plans.append(LayerPlan(index: i, name: name, type: layer.type, inputShape: input, outputShape: shape,
                                   parameterCount: parameters, scratchValues: layer.kind.scratchValues(for: input)))
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
        var context = LayerContext(generator: SeededGenerator(seed: seed, stream: 0x1417), seed: seed, index: 0)
        var layers: [(name: String, module: Module)] = []
        for (layer, plan) in zip(config.layers, try self.plan(config)) {
            context.index = plan.index
            layers.append((plan.name, layer.kind.makeModule(for: plan.inputShape, context: &context)))
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
