/// Builds an ONNX model (`onnx.proto`, IR version 8, the default opset 17) node by node and
/// encodes it as a `ModelProto`. Field numbers are those of onnx.proto
/// (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto).
public struct ONNXGraph: Sendable {
    /// `TensorProto.DataType`.
    public enum ElementType: Int, Sendable {
        case float = 1, int64 = 7
    }

    /// A node attribute (`AttributeProto`).
    public enum Attribute: Sendable {
        case int(String, Int)
        case ints(String, [Int])
        case float(String, Float)
        case string(String, String)

        func encoded() -> ProtobufWriter {
            var w = ProtobufWriter()
            switch self {
            case let .int(name, value):
                w.string(1, name); w.int(3, value); w.int(20, 2)
            case let .ints(name, values):
                w.string(1, name); for v in values { w.int(8, v) }; w.int(20, 7)
            case let .float(name, value):
                w.string(1, name); w.float(2, value); w.int(20, 1)
            case let .string(name, value):
                w.string(1, name); w.data(4, Array(value.utf8)); w.int(20, 3)
            }
            return w
        }
    }

    /// A graph input or output: its name, element type and dimensions (a `String` is a
    /// symbolic dimension such as `N`, an `Int` a fixed one).
    public struct Value: Sendable {
        public var name: String
        public var type: ElementType
        public var dimensions: [Dimension]
        public enum Dimension: Sendable { case fixed(Int), symbolic(String) }

        public init(name: String, type: ElementType = .float, dimensions: [Dimension]) {
            self.name = name
            self.type = type
            self.dimensions = dimensions
        }

        func encoded() -> ProtobufWriter {
            var w = ProtobufWriter()
            w.string(1, name)
            w.message(2) { typeProto in          // TypeProto
                typeProto.message(1) { tensor in  // TypeProto.Tensor
                    tensor.int(1, type.rawValue)
                    tensor.message(2) { shape in  // TensorShapeProto
                        for dimension in dimensions {
                            shape.message(1) { d in
                                switch dimension {
                                case let .fixed(n): d.int(1, n)
                                case let .symbolic(s): d.string(2, s)
                                }
                            }
                        }
                    }
                }
            }
            return w
        }
    }

    public var name: String
    private var nodes: [ProtobufWriter] = []
    private var initializers: [ProtobufWriter] = []
    private var usedNames: Set<String> = []
    /// The op types used, in order (for tests and messages).
    public private(set) var opTypes: [String] = []

    public init(name: String) { self.name = name }

    /// A fresh value name based on `base` (`conv1.out`, `conv1.out_2`, …).
    public mutating func uniqueName(_ base: String) -> String {
        var candidate = base, n = 2
        while usedNames.contains(candidate) {
            candidate = "\(base)_\(n)"
            n += 1
        }
        usedNames.insert(candidate)
        return candidate
    }

    /// A float32 initializer (a weight or a constant), stored little-endian as `raw_data`.
    @discardableResult
    public mutating func initializer(_ name: String, dimensions: [Int], floats: [Float]) -> String {
        initializer(name, dimensions: dimensions, words: floats.map(\.bitPattern), type: .float)
    }

    /// An int64 initializer (shapes, axes).
    @discardableResult
    public mutating func initializer(_ name: String, dimensions: [Int], int64s: [Int64]) -> String {
        initializer(name, dimensions: dimensions, words: int64s, type: .int64)
    }

    /// An initializer of `type` whose values are `words`, written little-endian.
    private mutating func initializer<Word: FixedWidthInteger>(
        _ name: String, dimensions: [Int], words: [Word], type: ElementType
    ) -> String {
        precondition(dimensions.reduce(1, *) == words.count, "\(name): \(words.count) values for \(dimensions)")
        let name = uniqueName(name)
        var raw = [UInt8]()
        raw.reserveCapacity(words.count * MemoryLayout<Word>.size)
        for word in words { withUnsafeBytes(of: word.littleEndian) { raw.append(contentsOf: $0) } }
        initializers.append(tensor(name: name, dimensions: dimensions, type: type, raw: raw))
        return name
    }

    private func tensor(name: String, dimensions: [Int], type: ElementType, raw: [UInt8]) -> ProtobufWriter {
        var w = ProtobufWriter()
        for d in dimensions { w.int(1, d) }
        w.int(2, type.rawValue)
        w.string(8, name)
        w.data(9, raw)
        return w
    }

    /// Appends a node; returns the name of its (single) output, made unique from `output`.
    @discardableResult
    public mutating func node(
        _ opType: String, name nodeName: String, inputs: [String], output: String, attributes: [Attribute] = []
    ) -> String {
        let outputName = uniqueName(output)
        var w = ProtobufWriter()
        for input in inputs { w.string(1, input) }
        w.string(2, outputName)
        w.string(3, uniqueName("node:" + nodeName))
        w.string(4, opType)
        for attribute in attributes { w.message(5, attribute.encoded()) }
        nodes.append(w)
        opTypes.append(opType)
        return outputName
    }

    /// The `ModelProto` bytes: IR version 8, opset `opset` of the default domain.
    public func model(
        inputs: [Value], outputs: [Value], opset: Int = 17, producer: String, producerVersion: String,
        documentation: String = "", metadata: [(String, String)] = []
    ) -> [UInt8] {
        var model = ProtobufWriter()
        model.int(1, 8)                        // ir_version
        model.string(2, producer)              // producer_name
        model.string(3, producerVersion)       // producer_version
        if !documentation.isEmpty { model.string(6, documentation) }
        model.message(7) { graph in            // GraphProto
            for node in nodes { graph.message(1, node) }
            graph.string(2, name)
            for initializer in initializers { graph.message(5, initializer) }
            for input in inputs { graph.message(11, input.encoded()) }
            for output in outputs { graph.message(12, output.encoded()) }
        }
        model.message(8) { opsetImport in      // OperatorSetIdProto, default domain ""
            opsetImport.int(2, opset)
        }
        for (key, value) in metadata {
            model.message(14) { entry in       // StringStringEntryProto
                entry.string(1, key)
                entry.string(2, value)
            }
        }
        return model.bytes
    }
}
