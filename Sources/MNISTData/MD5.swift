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

    /// One 64-byte block: the 64 steps of RFC 1321 written out, with its round functions
    /// F, G, H, I, its constants floor(abs(sin(i + 1)) * 2^32) and its order of message words.
    private mutating func processBlock(_ block: UnsafeRawPointer) {
        @inline(__always) func word(_ index: Int) -> UInt32 {
            UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self))
        }
        let (m0, m1, m2, m3, m4, m5, m6, m7) = (word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7))
        let (m8, m9, m10, m11, m12, m13, m14, m15) = (word(8), word(9), word(10), word(11), word(12), word(13), word(14), word(15))
        @inline(__always) func f(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { (x & y) | (~x & z) }
        @inline(__always) func g(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { (x & z) | (y & ~z) }
        @inline(__always) func h(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { x ^ y ^ z }
        @inline(__always) func i(_ x: UInt32, _ y: UInt32, _ z: UInt32) -> UInt32 { y ^ (x | ~z) }
        @inline(__always) func rotate(_ x: UInt32, _ n: UInt32) -> UInt32 { x << n | x >> (32 - n) }
        var (a, b, c, d) = state
        a = b &+ rotate(a &+ f(b, c, d) &+ 0xd76aa478 &+ m0, 7)
        d = a &+ rotate(d &+ f(a, b, c) &+ 0xe8c7b756 &+ m1, 12)
        c = d &+ rotate(c &+ f(d, a, b) &+ 0x242070db &+ m2, 17)
        b = c &+ rotate(b &+ f(c, d, a) &+ 0xc1bdceee &+ m3, 22)
        a = b &+ rotate(a &+ f(b, c, d) &+ 0xf57c0faf &+ m4, 7)
        d = a &+ rotate(d &+ f(a, b, c) &+ 0x4787c62a &+ m5, 12)
        c = d &+ rotate(c &+ f(d, a, b) &+ 0xa8304613 &+ m6, 17)
        b = c &+ rotate(b &+ f(c, d, a) &+ 0xfd469501 &+ m7, 22)
        a = b &+ rotate(a &+ f(b, c, d) &+ 0x698098d8 &+ m8, 7)
        d = a &+ rotate(d &+ f(a, b, c) &+ 0x8b44f7af &+ m9, 12)
        c = d &+ rotate(c &+ f(d, a, b) &+ 0xffff5bb1 &+ m10, 17)
        b = c &+ rotate(b &+ f(c, d, a) &+ 0x895cd7be &+ m11, 22)
        a = b &+ rotate(a &+ f(b, c, d) &+ 0x6b901122 &+ m12, 7)
        d = a &+ rotate(d &+ f(a, b, c) &+ 0xfd987193 &+ m13, 12)
        c = d &+ rotate(c &+ f(d, a, b) &+ 0xa679438e &+ m14, 17)
        b = c &+ rotate(b &+ f(c, d, a) &+ 0x49b40821 &+ m15, 22)
        a = b &+ rotate(a &+ g(b, c, d) &+ 0xf61e2562 &+ m1, 5)
        d = a &+ rotate(d &+ g(a, b, c) &+ 0xc040b340 &+ m6, 9)
        c = d &+ rotate(c &+ g(d, a, b) &+ 0x265e5a51 &+ m11, 14)
        b = c &+ rotate(b &+ g(c, d, a) &+ 0xe9b6c7aa &+ m0, 20)
        a = b &+ rotate(a &+ g(b, c, d) &+ 0xd62f105d &+ m5, 5)
        d = a &+ rotate(d &+ g(a, b, c) &+ 0x02441453 &+ m10, 9)
        c = d &+ rotate(c &+ g(d, a, b) &+ 0xd8a1e681 &+ m15, 14)
        b = c &+ rotate(b &+ g(c, d, a) &+ 0xe7d3fbc8 &+ m4, 20)
        a = b &+ rotate(a &+ g(b, c, d) &+ 0x21e1cde6 &+ m9, 5)
        d = a &+ rotate(d &+ g(a, b, c) &+ 0xc33707d6 &+ m14, 9)
        c = d &+ rotate(c &+ g(d, a, b) &+ 0xf4d50d87 &+ m3, 14)
        b = c &+ rotate(b &+ g(c, d, a) &+ 0x455a14ed &+ m8, 20)
        a = b &+ rotate(a &+ g(b, c, d) &+ 0xa9e3e905 &+ m13, 5)
        d = a &+ rotate(d &+ g(a, b, c) &+ 0xfcefa3f8 &+ m2, 9)
        c = d &+ rotate(c &+ g(d, a, b) &+ 0x676f02d9 &+ m7, 14)
        b = c &+ rotate(b &+ g(c, d, a) &+ 0x8d2a4c8a &+ m12, 20)
        a = b &+ rotate(a &+ h(b, c, d) &+ 0xfffa3942 &+ m5, 4)
        d = a &+ rotate(d &+ h(a, b, c) &+ 0x8771f681 &+ m8, 11)
        c = d &+ rotate(c &+ h(d, a, b) &+ 0x6d9d6122 &+ m11, 16)
        b = c &+ rotate(b &+ h(c, d, a) &+ 0xfde5380c &+ m14, 23)
        a = b &+ rotate(a &+ h(b, c, d) &+ 0xa4beea44 &+ m1, 4)
        d = a &+ rotate(d &+ h(a, b, c) &+ 0x4bdecfa9 &+ m4, 11)
        c = d &+ rotate(c &+ h(d, a, b) &+ 0xf6bb4b60 &+ m7, 16)
        b = c &+ rotate(b &+ h(c, d, a) &+ 0xbebfbc70 &+ m10, 23)
        a = b &+ rotate(a &+ h(b, c, d) &+ 0x289b7ec6 &+ m13, 4)
        d = a &+ rotate(d &+ h(a, b, c) &+ 0xeaa127fa &+ m0, 11)
        c = d &+ rotate(c &+ h(d, a, b) &+ 0xd4ef3085 &+ m3, 16)
        b = c &+ rotate(b &+ h(c, d, a) &+ 0x04881d05 &+ m6, 23)
        a = b &+ rotate(a &+ h(b, c, d) &+ 0xd9d4d039 &+ m9, 4)
        d = a &+ rotate(d &+ h(a, b, c) &+ 0xe6db99e5 &+ m12, 11)
        c = d &+ rotate(c &+ h(d, a, b) &+ 0x1fa27cf8 &+ m15, 16)
        b = c &+ rotate(b &+ h(c, d, a) &+ 0xc4ac5665 &+ m2, 23)
        a = b &+ rotate(a &+ i(b, c, d) &+ 0xf4292244 &+ m0, 6)
        d = a &+ rotate(d &+ i(a, b, c) &+ 0x432aff97 &+ m7, 10)
        c = d &+ rotate(c &+ i(d, a, b) &+ 0xab9423a7 &+ m14, 15)
        b = c &+ rotate(b &+ i(c, d, a) &+ 0xfc93a039 &+ m5, 21)
        a = b &+ rotate(a &+ i(b, c, d) &+ 0x655b59c3 &+ m12, 6)
        d = a &+ rotate(d &+ i(a, b, c) &+ 0x8f0ccc92 &+ m3, 10)
        c = d &+ rotate(c &+ i(d, a, b) &+ 0xffeff47d &+ m10, 15)
        b = c &+ rotate(b &+ i(c, d, a) &+ 0x85845dd1 &+ m1, 21)
        a = b &+ rotate(a &+ i(b, c, d) &+ 0x6fa87e4f &+ m8, 6)
        d = a &+ rotate(d &+ i(a, b, c) &+ 0xfe2ce6e0 &+ m15, 10)
        c = d &+ rotate(c &+ i(d, a, b) &+ 0xa3014314 &+ m6, 15)
        b = c &+ rotate(b &+ i(c, d, a) &+ 0x4e0811a1 &+ m13, 21)
        a = b &+ rotate(a &+ i(b, c, d) &+ 0xf7537e82 &+ m4, 6)
        d = a &+ rotate(d &+ i(a, b, c) &+ 0xbd3af235 &+ m11, 10)
        c = d &+ rotate(c &+ i(d, a, b) &+ 0x2ad7d2bb &+ m2, 15)
        b = c &+ rotate(b &+ i(c, d, a) &+ 0xeb86d391 &+ m9, 21)
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
