import Foundation
import Interop
import NN
import SafeTensors

/// What a layer kind's `exportONNX` works on: the graph so far, the value entering the
/// layer (which the layer replaces with its output), one sample's input shape, the
/// layer's name and its parameters and buffers by their short names (`weight`,
/// `running_mean`).
public struct ONNXLayerExport {
    public var graph: ONNXGraph
    /// The layer's input value; after `exportONNX`, its output.
    public var value: String
    /// One sample's input shape (the graph's tensors have the batch dimension in front).
    public let inputShape: [Int]
    public let name: String
    let state: [String: (shape: [Int], values: Buffer.Values)]

    /// A float parameter or buffer as an initializer named `<layer>.<key>` (PyTorch's
    /// state_dict name), or nil when the layer has none of that name.
    mutating func weight(_ key: String) throws -> String? {
        guard let entry = state[key] else { return nil }
        guard case let .float32(values) = entry.values else {
            throw ExportError.unsupported(layer: name, "\(key) is \(entry.values.typeName), expected float32")
        }
        return graph.initializer("\(name).\(key)", dimensions: entry.shape, floats: values)
    }

    /// A constant float tensor named after the layer.
    mutating func constant(_ suffix: String, _ values: [Float], dimensions: [Int]? = nil) -> String {
        graph.initializer("\(name).\(suffix)", dimensions: dimensions ?? (values.count == 1 ? [] : [values.count]), floats: values)
    }

    /// Appends `op` on the current value (and `extra` inputs); the output becomes the value.
    mutating func apply(_ op: String, _ extra: [String] = [], attributes: [ONNXGraph.Attribute] = []) {
        value = node(op, [value] + extra, attributes: attributes)
    }

    /// Appends `op` on `inputs` and returns its output, without moving the value.
    mutating func node(_ op: String, _ inputs: [String], attributes: [ONNXGraph.Attribute] = []) -> String {
        graph.node(op, name: "\(name).\(op)", inputs: inputs, output: "\(name).\(op.lowercased())", attributes: attributes)
    }
}

/// Why a model cannot be exported.
public enum ExportError: Error, CustomStringConvertible {
    case unsupported(layer: String, String)
    case option(String)

    public var description: String {
        switch self {
        case let .unsupported(layer, detail): return "layer \(layer): \(detail)"
        case let .option(detail): return detail
        }
    }
}

/// `mnist-export`: a checkpoint's network as an ONNX model.
public enum ONNXExport {
    public static let inputName = "input"

    /// The ONNX model of `loaded` (its architecture from the config, its weights, batch
    /// norm in inference form): input `input` `[N, C, H, W]` of normalized images, output
    /// `log_probabilities` (a network ending in log_softmax) or `logits`; the
    /// normalization and the config in `metadata_props`.
    public static func model(_ loaded: LoadedModel, producerVersion: String = "1") throws -> (bytes: [UInt8], opTypes: [String]) {
        let config = loaded.config
        var state: [String: (shape: [Int], values: Buffer.Values)] = [:]
        for (name, shape, values) in loaded.model.stateDict() { state[name] = (shape, values) }
        var graph = ONNXGraph(name: config.name)
        _ = graph.uniqueName(inputName)
        var value = inputName
        let plans = try ModelBuilder.plan(config)
        for (layer, plan) in zip(config.layers, plans) {
            let prefix = plan.name + "."
            var own: [String: (shape: [Int], values: Buffer.Values)] = [:]
            for (key, entry) in state where key.hasPrefix(prefix) { own[String(key.dropFirst(prefix.count))] = entry }
            var export = ONNXLayerExport(graph: graph, value: value, inputShape: plan.inputShape, name: plan.name, state: own)
            try layer.kind.exportONNX(&export)
            graph = export.graph
            value = export.value
        }
        let outputName = ModelBuilder.endsWithLogSoftmax(loaded.model) ? "log_probabilities" : "logits"
        // The graph output gets its public name through an Identity node.
        _ = graph.node("Identity", name: "output", inputs: [value], output: outputName)
        let classes = plans.last?.outputShape.first ?? 10
        let input = ONNXGraph.Value(name: inputName, dimensions: [.symbolic("N")] + config.inputShape.map { .fixed($0) })
        let output = ONNXGraph.Value(name: outputName, dimensions: [.symbolic("N"), .fixed(classes)])
        let metadata: [(String, String)] = [
            ("normalization_mean", "\(config.data.mean)"), ("normalization_std", "\(config.data.std)"),
            ("input", "images (pixel / 255 - normalization_mean) / normalization_std, NCHW"),
            ("output", outputName), ("dataset", config.data.dataset), ("mnist_train_config", config.json),
        ]
        let bytes = graph.model(inputs: [input], outputs: [output], producer: "mnist-train", producerVersion: producerVersion,
                                documentation: "\(config.name): exported by mnist-export from \(loaded.checkpoint.lastPathComponent)",
                                metadata: metadata)
        return (bytes, graph.opTypes)
    }

    /// Exports `checkpoint` (its config from the metadata, or `configFile`) to `output`, atomically.
    public static func run(checkpoint: URL, configFile: URL?, output: URL) throws -> (bytes: Int, opTypes: [String]) {
        guard output.pathExtension == "onnx" else {
            throw ExportError.option("--out \(output.path): expected a file name ending in .onnx")
        }
        let loaded = try LoadedModel.load(checkpoint: checkpoint, configFile: configFile)
        let (bytes, opTypes) = try model(loaded)
        try AtomicFile.write(Data(bytes), to: output)
        return (bytes.count, opTypes)
    }
}

// MARK: - Each kind's nodes

extension Conv2dLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let w = try e.weight("weight")!
        let b = try e.weight("bias")
        e.apply("Conv", [w] + (b.map { [$0] } ?? []), attributes: [
            .ints("kernel_shape", kernelSize.list), .ints("strides", stride.list),
            .ints("pads", padding.list + padding.list), .ints("dilations", dilation.list), .int("group", groups),
        ])
    }
}

extension MaxPool2dLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        e.apply("MaxPool", attributes: [
            .ints("kernel_shape", window.kernelSize.list), .ints("strides", window.stride.list),
            .ints("pads", window.padding.list + window.padding.list), .int("ceil_mode", window.ceilMode ? 1 : 0),
        ])
    }
}

extension AvgPool2dLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        e.apply("AveragePool", attributes: [
            .ints("kernel_shape", window.kernelSize.list), .ints("strides", window.stride.list),
            .ints("pads", window.padding.list + window.padding.list), .int("ceil_mode", window.ceilMode ? 1 : 0),
            .int("count_include_pad", countIncludePad ? 1 : 0),
        ])
    }
}

extension AdaptiveAvgPool2dLayer {
    /// Even splits are one `AveragePool` (or `GlobalAveragePool`); uneven ones average
    /// each of PyTorch's windows (`Slice`, `ReduceMean`) and concatenate them.
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let (h, w) = (e.inputShape[1], e.inputShape[2]), (oh, ow) = (outputSize.height, outputSize.width)
        if oh == 1 && ow == 1 {
            e.apply("GlobalAveragePool")
        } else if h % oh == 0 && w % ow == 0 {
            e.apply("AveragePool", attributes: [.ints("kernel_shape", [h / oh, w / ow]), .ints("strides", [h / oh, w / ow])])
        } else {
            let input = e.value
            let axes = e.graph.initializer("\(e.name).axes", dimensions: [2], int64s: [2, 3])
            var rows: [String] = []
            for i in 0..<oh {
                var cells: [String] = []
                for j in 0..<ow {
                    let start = [Int64(i * h / oh), Int64(j * w / ow)]
                    let end = [Int64(((i + 1) * h + oh - 1) / oh), Int64(((j + 1) * w + ow - 1) / ow)]
                    let starts = e.graph.initializer("\(e.name).starts", dimensions: [2], int64s: start)
                    let ends = e.graph.initializer("\(e.name).ends", dimensions: [2], int64s: end)
                    let window = e.node("Slice", [input, starts, ends, axes])
                    cells.append(e.node("ReduceMean", [window], attributes: [.ints("axes", [2, 3]), .int("keepdims", 1)]))
                }
                rows.append(cells.count == 1 ? cells[0] : e.node("Concat", cells, attributes: [.int("axis", 3)]))
            }
            e.value = rows.count == 1 ? rows[0] : e.node("Concat", rows, attributes: [.int("axis", 2)])
        }
    }
}

extension LinearLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let w = try e.weight("weight")!
        let b = try e.weight("bias")
        e.apply("Gemm", [w] + (b.map { [$0] } ?? []), attributes: [.int("transB", 1)])
    }
}

extension CenterCropLayer {
    /// `Slice` of the height and width axes, at the layer's window.
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let shape = e.inputShape
        let (top, left) = try CenterCrop.origin(height: shape[1], width: shape[2], size: size)
        let starts = e.graph.initializer("\(e.name).starts", dimensions: [2], int64s: [Int64(top), Int64(left)])
        let ends = e.graph.initializer("\(e.name).ends", dimensions: [2],
                                       int64s: [Int64(top + size.height), Int64(left + size.width)])
        let axes = e.graph.initializer("\(e.name).axes", dimensions: [2], int64s: [2, 3])
        e.apply("Slice", [starts, ends, axes])
    }
}

extension ReLULayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws { e.apply("Relu") }
}

extension FlattenLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws { e.apply("Flatten", attributes: [.int("axis", 1)]) }
}

extension DropoutLayer {
    /// Inference: the identity, so no node.
    public func exportONNX(_ e: inout ONNXLayerExport) throws {}
}

extension LogSoftmaxLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws { e.apply("LogSoftmax", attributes: [.int("axis", dim)]) }
}

extension SoftmaxLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws { e.apply("Softmax", attributes: [.int("axis", dim)]) }
}

extension TanhLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws { e.apply("Tanh") }
}

extension SigmoidLayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws { e.apply("Sigmoid") }
}

extension LeakyReLULayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        e.apply("LeakyRelu", attributes: [.float("alpha", Float(negativeSlope))])
    }
}

extension GELULayer {
    /// Opset 17 has no `Gelu`: `x/2 · (1 + erf(x/√2))`, or with `tanh`,
    /// `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let x = e.value
        let halfConstant = e.constant("half", [0.5])
        let half = e.node("Mul", [x, halfConstant])
        let one = e.constant("one", [1])
        let inner: String
        switch approximate {
        case .none:
            let rsqrt2 = e.constant("rsqrt2", [Float(1 / 2.0.squareRoot())])
            let scaled = e.node("Mul", [x, rsqrt2])
            inner = e.node("Erf", [scaled])
        case .tanh:
            let square = e.node("Mul", [x, x])
            let cube = e.node("Mul", [square, x])
            let k = e.constant("k", [0.044715])
            let term = e.node("Mul", [cube, k])
            let sum = e.node("Add", [x, term])
            let sqrt2pi = e.constant("sqrt2pi", [Float((2 / Double.pi).squareRoot())])
            let scaled = e.node("Mul", [sum, sqrt2pi])
            inner = e.node("Tanh", [scaled])
        }
        let onePlus = e.node("Add", [one, inner])
        e.value = e.node("Mul", [half, onePlus])
    }
}

extension SiLULayer {
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let x = e.value
        let gate = e.node("Sigmoid", [x])
        e.value = e.node("Mul", [x, gate])
    }
}

extension BatchNormLayerKind {
    /// With running statistics: `BatchNormalization` in inference mode. Without them
    /// (evaluation normalizes with the batch's own statistics, as PyTorch does) the same
    /// formula from `ReduceMean`s over the batch and spatial axes.
    public func exportONNX(_ e: inout ONNXLayerExport) throws {
        let channels = e.inputShape[0]
        let scale = try e.weight("weight") ?? e.constant("scale", Array(repeating: 1, count: channels), dimensions: [channels])
        let bias = try e.weight("bias") ?? e.constant("shift", Array(repeating: 0, count: channels), dimensions: [channels])
        if let mean = try e.weight("running_mean"), let variance = try e.weight("running_var") {
            e.apply("BatchNormalization", [scale, bias, mean, variance], attributes: [
                .float("epsilon", Float(settings.eps)), .float("momentum", Float(1 - settings.momentum)),
            ])
            return
        }
        let axes = [0] + Array(2..<(e.inputShape.count + 1))
        let perChannel = [channels] + Array(repeating: 1, count: e.inputShape.count - 1)
        let x = e.value
        let mean = e.node("ReduceMean", [x], attributes: [.ints("axes", axes), .int("keepdims", 1)])
        let centered = e.node("Sub", [x, mean])
        let squares = e.node("Mul", [centered, centered])
        let variance = e.node("ReduceMean", [squares], attributes: [.ints("axes", axes), .int("keepdims", 1)])
        let eps = e.constant("eps", [Float(settings.eps)])
        let shifted = e.node("Add", [variance, eps])
        let std = e.node("Sqrt", [shifted])
        let normalized = e.node("Div", [centered, std])
        let shape = e.graph.initializer("\(e.name).channel_shape", dimensions: [perChannel.count], int64s: perChannel.map(Int64.init))
        let channelScale = e.node("Reshape", [scale, shape])
        let scaled = e.node("Mul", [normalized, channelScale])
        let channelBias = e.node("Reshape", [bias, shape])
        e.value = e.node("Add", [scaled, channelBias])
    }
}
