import Foundation
import Autograd
import NN
import Seeded
import Testing
import TestSupport
@testable import Training

/// The layer declarations: one per kind, read by the decoder, the encoder, the builder,
/// `--help` and the README.
@Suite("Layer registry")
struct LayerRegistryTests {
    /// A config for each kind, with every key given a non-default value where it has one.
    static let examples: [String: String] = [
        "conv2d": #"{"type": "conv2d", "name": "c", "out_channels": 6, "kernel_size": [3, 2], "stride": 2, "padding": [1, 0], "dilation": 1, "groups": 1, "bias": false}"#,
        "max_pool2d": #"{"type": "max_pool2d", "kernel_size": 3, "stride": [2, 1], "padding": 1, "ceil_mode": true}"#,
        "avg_pool2d": #"{"type": "avg_pool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true, "count_include_pad": false}"#,
        "adaptive_avg_pool2d": #"{"type": "adaptive_avg_pool2d", "output_size": [3, 2]}"#,
        "center_crop": #"{"type": "center_crop", "size": [7, 5]}"#,
        "relu": #"{"type": "relu"}"#,
        "flatten": #"{"type": "flatten"}"#,
        "linear": #"{"type": "linear", "out_features": 7, "bias": false}"#,
        "dropout": #"{"type": "dropout", "p": 0.25}"#,
        "log_softmax": #"{"type": "log_softmax", "dim": -1}"#,
        "softmax": #"{"type": "softmax", "dim": 1}"#,
        "tanh": #"{"type": "tanh"}"#,
        "sigmoid": #"{"type": "sigmoid"}"#,
        "leaky_relu": #"{"type": "leaky_relu", "negative_slope": 0.2}"#,
        "gelu": #"{"type": "gelu", "approximate": "tanh"}"#,
        "silu": #"{"type": "silu"}"#,
        "batch_norm2d": #"{"type": "batch_norm2d", "name": "bn", "eps": 0.001, "momentum": 0.3, "affine": true, "track_running_stats": true}"#,
        "batch_norm1d": #"{"type": "batch_norm1d", "affine": false, "track_running_stats": false}"#,
    ]

    static func layer(_ json: String) throws -> TrainingConfig.Layer {
        try TrainingConfig.decodeLayer(JSONObjectReader(file: "t.json", path: "model.layers[0]",
                                                        object: objectValue(json)))
    }

    static func objectValue(_ json: String) throws -> [String: JSONValue] {
        guard case let .object(object, _) = try StrictJSONParser.parse(Array(json.utf8), file: "t.json") else {
            throw ConfigError(file: "t.json", path: "", message: "not an object")
        }
        return object
    }

    @Test("every kind in the registry has an example here, and the decoder accepts exactly the registry's types")
    func registryIsComplete() throws {
        #expect(Set(LayerRegistry.types) == Set(Self.examples.keys))
        let unknown = try #require(throws: ConfigError.self) { try Self.layer(#"{"type": "conv3d"}"#) }
        #expect(unknown.message == "got \"conv3d\"; expected one of " + LayerRegistry.types.joined(separator: ", "))
    }

    @Test("each kind encodes back what it decoded, every default written out", arguments: Array(examples.keys).sorted())
    func roundTrip(type: String) throws {
        let layer = try Self.layer(try #require(Self.examples[type]))
        #expect(layer.type == type)
        let again = try Self.layer(layer.json)
        #expect(again == layer && again.json == layer.json)
        // Every key of the kind's table appears in its encoding.
        let keys = try Self.objectValue(layer.json).keys
        for key in try #require(LayerRegistry.kind(type)).keys {
            #expect(keys.contains(key.name), "\(type) does not encode \(key.name)")
        }
    }

    @Test("the shape a kind declares is the shape its module computes and produces", arguments: Array(examples.keys).sorted())
    func shapesAgree(type: String) throws {
        let layer = try Self.layer(try #require(Self.examples[type]))
        let input = ["linear", "log_softmax", "softmax", "batch_norm1d"].contains(type) ? [12] : [2, 9, 8]
        let declared = try layer.kind.outputShape(for: input)
        var context = LayerContext(generator: SeededGenerator(seed: 1, stream: 0x1417), seed: 1, index: 0)
        let module = layer.kind.makeModule(for: input, context: &context)
        #expect(try module.outputShape(for: input) == declared)
        let x = Tensor.zeros(shape: [3] + input)
        #expect(try module(x).shape == [3] + declared)
        #expect(try layer.kind.parameterCount(for: input) == module.parameterCount)
    }

    @Test("README's layer table is the registry's")
    func readmeTable() throws {
        let readme = try String(contentsOf: Shared.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(LayerRegistry.markdownTable), "README.md should hold:\n\(LayerRegistry.markdownTable)")
    }

    @Test("lenet.json's layers encode byte for byte as before the registry (config.json of a run at 717b0d0)")
    func lenetLayerJSON() throws {
        let config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/lenet.json"))
        #expect(config.layers.map(\.json) == [
            #"{"type": "conv2d", "name": "conv1", "out_channels": 20, "kernel_size": [5, 5], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1, "bias": true}"#,
            #"{"type": "relu", "name": "relu1"}"#,
            #"{"type": "max_pool2d", "name": "pool1", "kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0]}"#,
            #"{"type": "conv2d", "name": "conv2", "out_channels": 50, "kernel_size": [5, 5], "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1, "bias": true}"#,
            #"{"type": "relu", "name": "relu2"}"#,
            #"{"type": "max_pool2d", "name": "pool2", "kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0]}"#,
            #"{"type": "flatten", "name": "flatten"}"#,
            #"{"type": "linear", "name": "fc1", "out_features": 500, "bias": true}"#,
            #"{"type": "relu", "name": "relu3"}"#,
            #"{"type": "linear", "name": "fc2", "out_features": 10, "bias": true}"#,
            #"{"type": "log_softmax", "name": "log_softmax", "dim": 1}"#,
        ])
    }
}
