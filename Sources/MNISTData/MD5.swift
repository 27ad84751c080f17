import Foundation

// MARK: - MD5

/// MD5 (RFC 1321), only to check downloads against the published digests: Foundation on
/// Linux has no CommonCrypto. Feed bytes with `update`, then read `hexDigest()`.
public struct MD5: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
    /// Bytes of an incomplete 64-byte block.
    private var buffer: [UInt8] = []
    private var byteCount: UInt64 = 0

    public init() {}

    /// The hex digest of `data`.
    public static func hex(_ data: Data) -> String {
        var md5 = MD5()
        md5.update(data)
        return md5.hexDigest()
    }

    /// The hex digest of a file's contents, read in 1 MiB chunks.
    public static func hex(fileAt url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var md5 = MD5()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            md5.update(chunk)
        }
        return md5.hexDigest()
    }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(UnsafeRawBufferPointer($0)) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        byteCount &+= UInt64(bytes.count)
        var offset = 0
        if !buffer.isEmpty {
            let take = min(64 - buffer.count, bytes.count)
            buffer.append(contentsOf: bytes[0..<take])
            offset = take
            if buffer.count == 64 {
                buffer.withUnsafeBytes { block in
                    if let start = block.baseAddress { processBlock(start) }
                }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        guard let base = bytes.baseAddress else { return }
        while bytes.count - offset >= 64 {
            processBlock(base + offset)
            offset += 64
        }
        if offset < bytes.count { buffer.append(contentsOf: bytes[offset...]) }
    }

    /// The digest as 32 lowercase hex digits. Does not change `self`.
    public func hexDigest() -> String {
        var copy = self
        let bitLength = byteCount &* 8
        var padding: [UInt8] = [0x80]
        let paddedLength = (buffer.count + 1) % 64
        padding += [UInt8](repeating: 0, count: paddedLength <= 56 ? 56 - paddedLength : 120 - paddedLength)
        for shift in stride(from: 0, to: 64, by: 8) { padding.append(UInt8(truncatingIfNeeded: bitLength >> shift)) }
        padding.withUnsafeBytes { copy.update($0) }
        let words = [copy.state.0, copy.state.1, copy.state.2, copy.state.3]
        return words.map { word in
            (0..<4).map { String(format: "%02x", (word >> (8 * $0)) & 0xff) }.joined()
        }.joined()
    }

    private static let shifts: [UInt32] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ]

    /// floor(abs(sin(i + 1)) * 2^32).
    private static let constants: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }

    private mutating func processBlock(_ block: UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { message in
            for index in 0..<16 {
                message[index] = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
            }
            compress(message)
        }
    }

    /// The 64 rounds over one block of 16 little-endian words.
    private mutating func compress(_ message: UnsafeMutableBufferPointer<UInt32>) {
        var (a, b, c, d) = state
        for round in 0..<64 {
            var f: UInt32
            var g: Int
            switch round {
            case 0..<16: f = (b & c) | (~b & d); g = round
            case 16..<32: f = (d & b) | (~d & c); g = (5 * round + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * round + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * round) % 16
            }
            f = f &+ a &+ MD5.constants[round] &+ message[g]
            a = d
            d = c
            c = b
            let shift = MD5.shifts[round]
            b = b &+ (f << shift | f >> (32 - shift))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
