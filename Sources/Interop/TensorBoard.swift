/// TensorBoard event files: TFRecord framing (`uint64 length`, masked CRC-32C of the
/// length, the bytes, masked CRC-32C of the bytes; all little-endian) around `Event`
/// protobufs (tensorflow/core/util/event.proto, summary.proto).
public enum TensorBoardEvents {
    /// One scalar or image of an event.
    public enum Value: Sendable {
        case scalar(tag: String, value: Float)
        /// A PNG (`encoded_image_string`) with its size and channels (1 gray, 3 RGB, 4 RGBA).
        case image(tag: String, png: [UInt8], width: Int, height: Int, channels: Int)
    }

    /// The first record of every event file: `file_version: "brain.Event:2"`.
    public static func fileVersionRecord(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)      // wall_time
        event.int(2, 0)                // step
        event.string(3, "brain.Event:2")
        return record(event.bytes)
    }

    /// An `Event` at `step` holding `values` in its `Summary`, framed as a record.
    public static func record(wallTime: Double, step: Int, values: [Value]) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.int(2, step)
        event.message(5) { summary in
            for value in values {
                summary.message(1) { v in
                    switch value {
                    case let .scalar(tag, x):
                        v.string(1, tag)
                        v.float(2, x)           // simple_value
                    case let .image(tag, png, width, height, channels):
                        v.string(1, tag)
                        v.message(4) { image in // Summary.Image
                            image.int(1, height)
                            image.int(2, width)
                            image.int(3, channels)  // colorspace
                            image.data(4, png)
                        }
                    }
                }
            }
        }
        return record(event.bytes)
    }

    /// TFRecord framing of `data`.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(data.count + 16)
        let length = UInt64(data.count)
        let lengthBytes = withUnsafeBytes(of: length.littleEndian) { Array($0) }
        out += lengthBytes
        withUnsafeBytes(of: maskedCRC32C(lengthBytes).littleEndian) { out += $0 }
        out += data
        withUnsafeBytes(of: maskedCRC32C(data).littleEndian) { out += $0 }
        return out
    }

    /// TFRecord's masked CRC: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
    public static func maskedCRC32C(_ bytes: [UInt8]) -> UInt32 {
        let crc = crc32c(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): `crc32c("123456789") = 0xE3069283`.
    public static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }

    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}
