import Foundation
import Testing
import TestSupport
@testable import Training

/// Strict decoding: every error names the file, the key's path, the value and what is allowed.
struct ConfigTests {
    static func decode(_ json: String) throws -> TrainingConfig {
        try TrainingConfig.decode(Data(json.utf8), file: "test.json")
    }

    static let minimalModel = #""model": {"layers": [{"type": "flatten"}, {"type": "linear", "out_features": 10}]}"#

    @Test(arguments: ["lenet", "lenet-adam", "lenet5", "fashion", "smoke", "bncnn", "lenet5-classic", "mnist-best", "fashion-best"])
    func shippedConfigsDecodeAndBuild(_ name: String) throws {
        let config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/\(name).json"))
        #expect(config.name == name)
        let model = try ModelBuilder.build(config, seed: 1)
        #expect(try ModelBuilder.outputFeatures(model, inputShape: config.inputShape) == 10)
        // The resolved config reads back to the same values.
        #expect(try TrainingConfig.decode(Data(config.json.utf8), file: "resolved") == config)
    }

    @Test func lenetHasPyTorchNames() throws {
        let config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("configs/lenet.json"))
        let model = try ModelBuilder.build(config, seed: 1)
        #expect(model.namedParameters().map(\.name) == [
            "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
        ])
        #expect(model.namedParameters().map(\.tensor.shape) == [[20, 1, 5, 5], [20], [50, 20, 5, 5], [50], [500, 800], [500], [10, 500], [10]])
        #expect(config.optimizer.type == "sgd" && config.optimizer.lr == 0.01 && config.optimizer.momentum == 0.9)
        #expect(config.batchSize == 64 && config.epochs == 10)
    }

    @Test func unknownKeyNamesItsPathAndTheAllowedKeys() throws {
        let error = try #require(throws: ConfigError.self) {
            try Self.decode(#"{\#(Self.minimalModel), "optimizer": {"type": "sgd", "lrr": 0.1}}"#)
        }
        #expect(error.path == "optimizer.lrr")
        #expect("\(error)".hasPrefix("test.json: optimizer.lrr: unknown key; allowed keys here: "))
        #expect("\(error)".contains("lr") && "\(error)".contains("momentum"))
    }

    @Test func wrongTypesAndRanges() throws {
        let cases: [(String, String, String)] = [
            (#""batch_size": "64""#, "batch_size", #"got "64"; expected an integer"#),
            (#""batch_size": 0"#, "batch_size", "got 0; expected an integer in 1...65536"),
            (#""epochs": 1.5"#, "epochs", "got 1.5; expected an integer"),
            (#""optimizer": {"type": "rmsprop"}"#, "optimizer.type", #"got "rmsprop"; expected one of sgd, adam, adamw"#),
            (#""optimizer": {"type": "sgd", "lr": -1}"#, "optimizer.lr", "got -1; expected a learning rate in 0...10000"),
            (#""optimizer": {"type": "adam", "betas": [0.9, 1.0]}"#, "optimizer.betas", "beta2 is 1.0; expected values in [0, 1)"),
            (#""shuffle": 1"#, "shuffle", "got 1; expected true or false"),
            (#""data": {"std": 0}"#, "data.std", "got 0; expected a number > 0"),
        ]
        for (fragment, path, message) in cases {
            let error = try #require(throws: ConfigError.self) { try Self.decode("{\(Self.minimalModel), \(fragment)}") }
            #expect(error.path == path, "\(fragment)")
            #expect(error.message == message, "\(fragment): \(error.message)")
        }
        let layer = try #require(throws: ConfigError.self) {
            try Self.decode(#"{"model": {"layers": [{"type": "conv2d", "out_channels": 4, "kernel_size": [3, 0]}]}}"#)
        }
        #expect(layer.path == "model.layers[0].kernel_size")
        #expect(throws: ConfigError.self) { try Self.decode("{}") }
        #expect(throws: ConfigError.self) { try Self.decode("[1, 2]") }
        let notJSON = try #require(throws: ConfigError.self) { try Self.decode("{\"epochs\": ") }
        #expect("\(notJSON)".hasPrefix("test.json: not valid JSON"))
    }

    @Test func layerListsThatCannotWorkFailBeforeTrainingWithShapes() throws {
        func buildError(_ layers: String) throws -> String {
            let config = try Self.decode(#"{"model": {"layers": \#(layers)}}"#)
            return "\(try #require(throws: ModelBuilder.BuildError.self) { try ModelBuilder.build(config, seed: 1) })"
        }
        let noFlatten = try buildError(#"[{"type": "conv2d", "name": "conv1", "out_channels": 4, "kernel_size": 5}, {"type": "linear", "name": "fc", "out_features": 10}]"#)
        #expect(noFlatten == "model.layers[1] (fc, linear): expects a flat [features] input but gets [4, 24, 24]; add a flatten layer before it (it would have 2304 features)")
        let tooBig = try buildError(#"[{"type": "conv2d", "out_channels": 4, "kernel_size": 29}, {"type": "flatten"}]"#)
        #expect(tooBig.hasPrefix("model.layers[0] (0, conv2d): input [1, 28, 28]: ") && tooBig.contains("[29, 29]"), "\(tooBig)")
        let unflat = try buildError(#"[{"type": "relu"}]"#)
        #expect(unflat.contains("ends with shape [1, 28, 28]"))
        let huge = try buildError(#"[{"type": "conv2d", "out_channels": 65536, "kernel_size": 28}, {"type": "flatten"}, {"type": "linear", "out_features": 1000000}]"#)
        #expect(huge == "model.layers[2] (2, linear): 65536 x 1000000 weights are more than 100000000 parameters")
        let duplicate = try buildError(#"[{"type": "flatten", "name": "a"}, {"type": "relu", "name": "a"}]"#)
        #expect(duplicate.contains("\"a\" is used twice"))
    }

    @Test func commandLineOverrides() throws {
        var config = try Self.decode("{\(Self.minimalModel)}")
        var overrides = ConfigOverrides()
        overrides.epochs = 3
        overrides.learningRate = 0.5
        overrides.optimizer = "adamw"
        overrides.noShuffle = true
        try overrides.apply(to: &config)
        #expect(config.epochs == 3 && config.optimizer.lr == 0.5 && config.optimizer.type == "adamw")
        #expect(config.optimizer.weightDecay == 0.01 && !config.shuffle)
        var bad = ConfigOverrides()
        bad.momentum = 0.9
        let error = try #require(throws: ConfigError.self) { try bad.apply(to: &config) }
        #expect("\(error)" == "command line: --momentum: got 0.9; expected only with --optimizer sgd")
    }
}

/// The resolved config as printed at the start of a run: indented, and the same JSON.
@Suite struct IndentedConfigTests {
    @Test func indentsObjectsAndLayerListsAndKeepsTheJSON() throws {
        let compact = #"{"name": "a, b", "data": {"mirrors": [], "aug": {"shift": 0, "angle": 1.5}, "mean": 0.5}, "model": {"shape": [1, 28, 28], "layers": [{"type": "relu", "name": "r"}, {"type": "flatten"}]}, "q": "x\"}y"}"#
        let indented = indentedJSON(compact, objectDepth: 2)
        #expect(indented == """
            {
              "name": "a, b",
              "data": {
                "mirrors": [],
                "aug": {"shift": 0, "angle": 1.5},
                "mean": 0.5
              },
              "model": {
                "shape": [1, 28, 28],
                "layers": [
                  {"type": "relu", "name": "r"},
                  {"type": "flatten"}
                ]
              },
              "q": "x\\"}y"
            }
            """)
        let parse = { (text: String) in try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary }
        #expect(try parse(indented) == parse(compact))
    }
}
