/// A protocol-buffers encoder for the few messages this project writes (ONNX's
/// `ModelProto`, TensorBoard's `Event`): fields are appended in the order given, each as
/// its tag then its value, in the wire format of https://protobuf.dev/programming-guides/encoding/.
///
/// Nested messages are built as their own `ProtobufWriter` and appended with
/// `message(_:_:)`. Repeated scalar fields are written unpacked (one tag per value), which
/// every parser accepts for proto2 and proto3 alike.
public struct ProtobufWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Wire types.
    enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    mutating func tag(_ field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | type.rawValue)
    }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// An `int64`/`int32`/`enum`/`uint64` field (negative values take ten bytes, as the
    /// format says).
    public mutating func int(_ field: Int, _ value: Int) {
        tag(field, .varint)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A `float` field (fixed32, little-endian).
    public mutating func float(_ field: Int, _ value: Float) {
        tag(field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `double` field (fixed64, little-endian).
    public mutating func double(_ field: Int, _ value: Double) {
        tag(field, .fixed64)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `bytes` field.
    public mutating func data(_ field: Int, _ value: [UInt8]) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A `string` field (UTF-8).
    public mutating func string(_ field: Int, _ value: String) { data(field, Array(value.utf8)) }

    /// An embedded message field.
    public mutating func message(_ field: Int, _ value: ProtobufWriter) { data(field, value.bytes) }

    /// Builds an embedded message in place.
    public mutating func message(_ field: Int, _ build: (inout ProtobufWriter) throws -> Void) rethrows {
        var inner = ProtobufWriter()
        try build(&inner)
        message(field, inner)
    }
}
