import Foundation
import Interop
import SafeTensors
import Testing
import TestSupport
@testable import Training

/// The encoders for other tools, read back by `decode_interop.py` (Python's standard
/// library only); `make interop-check` runs the real consumers (onnx, onnxruntime,
/// TensorBoard).
struct InteropTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("decode_interop.py")

    static func decode(_ kind: String, _ file: URL) throws -> Any {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, kind, file.path]
        let pipe = Pipe(), errors = Pipe()
        process.standardOutput = pipe
        process.standardError = errors
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ExportError.option("decode_interop.py failed: \(String(decoding: message, as: UTF8.self))")
        }
        return try JSONSerialization.jsonObject(with: data)
    }

    @Test func protobufAndCRCEncodings() {
        var w = ProtobufWriter()
        w.int(1, 150)
        #expect(w.bytes == [0x08, 0x96, 0x01])  // the protobuf guide's example
        w = ProtobufWriter()
        w.int(2, -1)
        #expect(w.bytes == [0x10] + Array(repeating: 0xFF, count: 9) + [0x01])
        w = ProtobufWriter()
        w.string(2, "testing")
        #expect(w.bytes == [0x12, 0x07] + Array("testing".utf8))
        #expect(TensorBoardEvents.crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(TensorBoardEvents.crc32c([]) == 0)
    }

    @Test("mnist-export: every layer kind becomes ONNX nodes with the state_dict as initializers")
    func onnxModelOfEveryLayerKind() throws {
        var config = try TrainingConfig.load(from: Shared.packageRoot.appendingPathComponent("scripts/interop/all-layers.json"))
        config.data.directory = Shared.mnistDirectory.path
        #expect(Set(config.layers.map(\.type)) == Set(LayerRegistry.types.filter { $0 != "softmax" }))
        let model = try ModelBuilder.build(config, seed: 3)
        let loaded = LoadedModel(config: config, model: model, configSource: "test", checkpoint: URL(fileURLWithPath: "/x/model.safetensors"))
        let (bytes, _) = try ONNXExport.model(loaded)
        let file = try makeTemporaryDirectory().appendingPathComponent("all.onnx")
        try Data(bytes).write(to: file)
        let onnx = try #require(try Self.decode("onnx", file) as? [String: Any])
        #expect(onnx["ir_version"] as? Int == 8 && onnx["opset"] as? [Int] == [17])
        let inputs = try #require(onnx["inputs"] as? [[String: Any]])
        #expect(inputs.count == 1 && inputs[0]["name"] as? String == "input")
        let dims = try #require(inputs[0]["dims"] as? [Any])
        #expect(dims.count == 4 && dims[0] as? String == "N" && dims.dropFirst().compactMap { $0 as? Int } == [1, 28, 28])
        let outputs = try #require(onnx["outputs"] as? [[String: Any]])
        #expect(outputs.first?["name"] as? String == "log_probabilities")
        let metadata = try #require(onnx["metadata"] as? [String: String])
        #expect(metadata["normalization_mean"] == "0.1307" && metadata["normalization_std"] == "0.3081")
        #expect(try TrainingConfig.decode(Data(try #require(metadata["mnist_train_config"]).utf8), file: "m") == config)
        let ops = try #require(onnx["nodes"] as? [[String: Any]]).compactMap { $0["op"] as? String }
        for op in ["Conv", "BatchNormalization", "Relu", "MaxPool", "ReduceMean", "Erf", "AveragePool", "LeakyRelu", "Slice",
                   "Concat", "Tanh", "Flatten", "Gemm", "Sigmoid", "LogSoftmax", "Identity"] {
            #expect(ops.contains(op), "no \(op) node")
        }
        // Every float of the state_dict is an initializer of the same name, shape and values.
        let initializers = try #require(onnx["initializers"] as? [String: [String: Any]])
        for (name, shape, values) in model.stateDict() {
            guard case let .float32(floats) = values else { continue }
            let entry = try #require(initializers[name], "\(name) missing")
            #expect(entry["dims"] as? [Int] == shape, "\(name)")
            let sum = floats.reduce(0.0) { $0 + Double($1) }
            #expect(abs((entry["sum"] as? Double ?? .nan) - sum) <= 1e-4 * max(1, abs(sum)), "\(name)")
        }
        // Every node input is the graph input, an initializer or an earlier node's output.
        var known = Set(initializers.keys).union(["input"])
        for node in try #require(onnx["nodes"] as? [[String: Any]]) {
            for input in node["inputs"] as? [String] ?? [] { #expect(known.contains(input), "\(node["op"] ?? "") reads \(input) before it exists") }
            known.formUnion(node["outputs"] as? [String] ?? [])
        }
        #expect(known.contains("log_probabilities"))
    }

    @Test("TensorBoard: the event file holds metrics.jsonl's values, and each step once after a resume")
    func tensorBoardEventsEqualMetrics() throws {
        var config = try TrainerTests.smokeConfig()
        config.data.validation = 64
        let out = try makeTemporaryDirectory()
        _ = try TrainerTests.run(config, out: out, maxSteps: 3)
        _ = try TrainerTests.run(config, out: out, resume: true, removeMaxSteps: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(names.count == 1)
        let name = try #require(names.first)
        let events = try #require(try Self.decode("events", out.appendingPathComponent(name)) as? [[String: Any]])
        #expect(events.first?["file_version"] as? String == "brain.Event:2")
        let records = try ModernTrainingTests.records(out)
        func scalars(_ tag: String) -> [(Int, Double)] {
            events.compactMap { e in ((e["scalars"] as? [String: Double])?[tag]).map { (e["step"] as? Int ?? -1, $0) } }
        }
        func expected(_ key: String, kinds: Set<String>) -> [(Int, Double)] {
            records.filter { kinds.contains($0["kind"] as? String ?? "") }.compactMap { r in
                ModernTrainingTests.number(r, key).map { (r["step"] as? Int ?? -2, $0) }
            }
        }
        for (tag, key, kinds) in [("train/loss", "loss", Set(["step"])), ("lr", "lr", ["step"]),
                                  ("test/accuracy", "test_accuracy", ["epoch", "stop", "eval"]),
                                  ("validation/accuracy", "validation_accuracy", ["epoch", "stop", "eval"]),
                                  ("train/accuracy", "train_accuracy", ["epoch", "stop", "eval"])] {
            let got = scalars(tag), want = expected(key, kinds: kinds)
            #expect(!got.isEmpty && got.count == want.count, "\(tag): \(got.count) events, \(want.count) records")
            for ((s1, v1), (s2, v2)) in zip(got, want) {
                #expect(s1 == s2 && abs(v1 - v2) <= 1e-6 * max(1, abs(v2)), "\(tag) at step \(s1): \(v1) vs \(v2)")
            }
        }
        // The run stopped at step 3 and resumed: step 3's records appear once.
        #expect(scalars("train/loss").map(\.0) == scalars("train/loss").map(\.0).sorted())
        #expect(Set(scalars("train/loss").map(\.0)).count == scalars("train/loss").count)
    }
}
