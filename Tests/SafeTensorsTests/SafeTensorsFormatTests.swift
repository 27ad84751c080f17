import Foundation
import Testing
import TestSupport
@testable import SafeTensors

// MARK: - Writer and round trip

@Suite struct SafeTensorsFormatTests {
    /// The bytes `safetensors.torch.save` (safetensors 0.8.0) produces for
    /// {"weight": [1, -2] f32, "bias": [0.5] f32, "step": [3] i64}, metadata {"format": "pt"}.
    /// I64 comes first (wider dtypes first), then the F32 tensors by name; 205 header bytes
    /// padded with 3 spaces to 208 = 0xd0.
    @Test func writerMatchesReferenceBytes() throws {
        var stepBytes = Data(count: 8)
        stepBytes[0] = 3
        let file = SafeTensorsFile(
            tensors: [
                "weight": try TensorEntry(floats: [1, -2], shape: [2]),
                "bias": try TensorEntry(floats: [0.5], shape: [1]),
                "step": try TensorEntry(dtype: .I64, shape: [1], bytes: stepBytes),
            ],
            metadata: ["format": "pt"])
        let header = #"{"__metadata__":{"format":"pt"},"step":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"#
            + #""bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"#
            + #""weight":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}   "#
        var expected: [UInt8] = [0xd0, 0, 0, 0, 0, 0, 0, 0]
        expected += Array(header.utf8)
        expected += [3, 0, 0, 0, 0, 0, 0, 0]  // step = 3
        expected += [0x00, 0x00, 0x00, 0x3F]  // 0.5
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]  // 1, -2
        #expect(expected.count == 236)
        #expect(Array(try file.serialized()) == expected)
    }

    @Test func emptyFileIsBracesPaddedToEight() throws {
        let bytes = try SafeTensorsFile().serialized()
        #expect(Array(bytes) == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        let parsed = try SafeTensorsFile(parsing: bytes, source: "empty")
        #expect(parsed.tensors.isEmpty)
        #expect(parsed.metadata.isEmpty)
    }

    @Test func roundTripThroughDiskKeepsEverything() throws {
        let directory = try makeTemporaryDirectory("safetensors-roundtrip")
        defer { try? FileManager.default.removeItem(at: directory) }
        let weights = (0..<60).map { Float($0) * 0.25 - 7 }
        var halfBytes = Data()
        for bits: UInt16 in [0x3C00, 0xC000, 0x0001, 0x7C00] { halfBytes.append(contentsOf: [UInt8(bits & 0xFF), UInt8(bits >> 8)]) }
        let original = SafeTensorsFile(
            tensors: [
                "conv.weight": try TensorEntry(floats: weights, shape: [3, 1, 4, 5]),
                "scalar": try TensorEntry(floats: [42], shape: []),
                "empty": try TensorEntry(floats: [], shape: [0, 3]),
                "half": try TensorEntry(dtype: .F16, shape: [2, 2], bytes: halfBytes),
                "flags": try TensorEntry(dtype: .BOOL, shape: [3], bytes: Data([1, 0, 1])),
                "ünïcødé \"quoted\"\n": try TensorEntry(floats: [1, 2], shape: [2]),
            ],
            metadata: ["format": "pt", "note": "tab\there, quote \" and backslash \\", "": "empty key"])
        let url = directory.appendingPathComponent("model.safetensors")
        try original.write(to: url)
        let loaded = try SafeTensorsFile.read(from: url)
        #expect(loaded.tensors == original.tensors)
        #expect(loaded.metadata == original.metadata)
        #expect(loaded.source == url.path)
        #expect(try loaded.floats(named: "conv.weight", shape: [3, 1, 4, 5]) == weights)
        #expect(try loaded.floats(named: "scalar") == [42])
        #expect(try loaded.floats(named: "half") == [1, -2, Float(bitPattern: 0x3380_0000), .infinity])
        #expect(try loaded.tensor(named: "empty").elementCount == 0)
        // Writing what we read gives the same bytes again.
        #expect(try loaded.serialized() == (try original.serialized()))
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["model.safetensors"])
    }

    @Test func floatConversions() throws {
        var doubles = Data()
        for value in [1.5, -0.1, 1e300] {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { doubles.append(contentsOf: $0) }
        }
        let f64 = try TensorEntry(dtype: .F64, shape: [3], bytes: doubles)
        #expect(try f64.floats() == [1.5, Float(-0.1), .infinity])
        // BF16 0x3FC0 = 1.5, 0xC2F7 = -123.5
        let bf16 = try TensorEntry(dtype: .BF16, shape: [2], bytes: Data([0xC0, 0x3F, 0xF7, 0xC2]))
        #expect(try bf16.floats() == [1.5, -123.5])
        // F16 0x3555 ≈ 0.333251953125, 0x8400 = -2^-14 (smallest normal), 0x8200 = -2^-15 (subnormal)
        let f16 = try TensorEntry(dtype: .F16, shape: [3], bytes: Data([0x55, 0x35, 0x00, 0x84, 0x00, 0x82]))
        #expect(try f16.floats() == [0.333251953125, -0x1p-14, -0x1p-15])
        let nanHalf = try TensorEntry(dtype: .F16, shape: [], bytes: Data([0x01, 0x7E]))
        #expect(try nanHalf.floats()[0].isNaN)
        let integers = try TensorEntry(dtype: .I32, shape: [1], bytes: Data([1, 0, 0, 0]))
        let error = safeTensorsError { _ = try integers.floats() }
        #expect(error == .notFloatingPoint(tensor: nil, dtype: .I32))
        #expect(error?.description.contains("I32") == true)
    }

    @Test func entryInitializersRejectInconsistentInput() {
        #expect(safeTensorsError { _ = try TensorEntry(floats: [1, 2, 3], shape: [2, 2]) }
            == .valueCountMismatch(dtype: .F32, shape: [2, 2], expectedBytes: 16, actualBytes: 12))
        #expect(safeTensorsError { _ = try TensorEntry(floats: [], shape: [-1]) }
            == .invalidShape(shape: [-1], reason: "dimension -1 is negative"))
        #expect(safeTensorsError { _ = try TensorEntry(dtype: .U8, shape: [1 << 40, 1 << 40], bytes: Data()) }
            == .invalidShape(shape: [1 << 40, 1 << 40], reason: "element count overflows Int"))
        #expect(safeTensorsError { _ = try TensorEntry(dtype: .F64, shape: [1 << 61], bytes: Data()) }
            == .invalidShape(shape: [1 << 61], reason: "byte count overflows Int"))
        let file = SafeTensorsFile(tensors: ["__metadata__": try! TensorEntry(floats: [1], shape: [1])])
        #expect(safeTensorsError { _ = try file.serialized() } == .reservedTensorName(name: "__metadata__"))
    }

    @Test func lookupErrorsNameTheFileAndTensor() throws {
        let file = SafeTensorsFile(tensors: ["a": try TensorEntry(floats: [1, 2], shape: [2])], source: "ckpt.safetensors")
        let missing = safeTensorsError { _ = try file.tensor(named: "b") }
        #expect(missing == .missingTensor(file: "ckpt.safetensors", tensor: "b", available: ["a"]))
        #expect(missing?.description == #"ckpt.safetensors: no tensor named "b" (file has: a)"#)
        let wrongShape = safeTensorsError { _ = try file.floats(named: "a", shape: [1, 2]) }
        #expect(wrongShape?.description == #"ckpt.safetensors: tensor "a" has shape [2], expected [1, 2]"#)
    }

    // MARK: - Reference files written by PyTorch

    static let lenetShapes: [String: [Int]] = [
        "conv1.weight": [20, 1, 5, 5], "conv1.bias": [20],
        "conv2.weight": [50, 20, 5, 5], "conv2.bias": [50],
        "fc1.weight": [500, 800], "fc1.bias": [500],
        "fc2.weight": [10, 500], "fc2.bias": [10],
    ]

    @Test(arguments: ["lenet_init", "lenet_sgd_final", "lenet_adam_final"])
    func referenceFileLoads(name: String) throws {
        let url = Shared.referenceDirectory.appendingPathComponent("\(name).safetensors")
        let file = try SafeTensorsFile.read(from: url)
        #expect(file.tensors.count == 8)
        for (tensor, shape) in Self.lenetShapes {
            let entry = try file.tensor(named: tensor, shape: shape)
            #expect(entry.dtype == .F32)
            let values = try entry.floats()
            #expect(values.count == shape.reduce(1, *))
            #expect(values.allSatisfy { $0.isFinite }, "\(name) \(tensor) has non-finite values")
        }
        // Re-serializing gives back the reference file byte for byte.
        #expect(try file.serialized() == (try Data(contentsOf: url)))
    }

    /// PyTorch's default init draws from uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    @Test func lenetInitValuesLieInPyTorchInitBounds() throws {
        let file = try SafeTensorsFile.read(from: Shared.referenceDirectory.appendingPathComponent("lenet_init.safetensors"))
        let fanIn: [String: Int] = [
            "conv1.weight": 25, "conv1.bias": 25, "conv2.weight": 500, "conv2.bias": 500,
            "fc1.weight": 800, "fc1.bias": 800, "fc2.weight": 500, "fc2.bias": 500,
        ]
        for (tensor, fan) in fanIn {
            let values = try file.floats(named: tensor)
            let bound = 1 / Float(fan).squareRoot()
            let largest = values.map(abs).max() ?? 0
            #expect(largest <= bound, "\(tensor): max |value| \(largest) > 1/sqrt(\(fan)) = \(bound)")
            // Uniform draws fill the range: the largest of n draws is close to the bound.
            #expect(largest > bound * 0.8, "\(tensor): max |value| \(largest) suspiciously small for bound \(bound)")
        }
        let conv1 = try file.floats(named: "conv1.weight")
        #expect(conv1.count == 500)
        // First values as printed by safetensors.torch.load_file in PyTorch.
        #expect(Array(conv1.prefix(3)) == [-0.06811466068029404, -0.07396352291107178, 0.01704990863800049])
        #expect(Array(try file.floats(named: "fc2.bias").prefix(2)) == [0.03599405661225319, -0.04460517689585686])
        // The trained weights differ from the initial ones.
        let trained = try SafeTensorsFile.read(
            from: Shared.referenceDirectory.appendingPathComponent("lenet_sgd_final.safetensors"))
        #expect(try trained.floats(named: "fc2.weight") != (try file.floats(named: "fc2.weight")))
    }
}
