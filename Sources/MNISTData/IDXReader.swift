import CZlib
import Foundation

// MARK: - IDX arrays

/// A decoded IDX file of unsigned bytes: its dimensions and its payload in row-major order.
public struct IDXArray: Sendable, Equatable {
    /// Dimensions from the header, e.g. `[60000, 28, 28]` for MNIST training images.
    public var dimensions: [Int]
    /// `dimensions.reduce(1, *)` bytes, row-major.
    public var bytes: [UInt8]
}

/// Magic numbers of the IDX files we read: `00 00 08 rank` (unsigned bytes, `rank` dims).
public enum IDXMagic {
    public static let images: UInt32 = 0x0000_0803
    public static let labels: UInt32 = 0x0000_0801
}

/// Reads IDX files of unsigned bytes, gzip'd (through zlib's streaming inflate) or not.
///
/// The header is read first; the payload is then read into a buffer of exactly the size the
/// header declares, and the stream must end right there. Nothing larger than
/// `maximumPayloadBytes` is ever allocated.
public enum IDXReader {
    /// Refuse any file whose declared payload exceeds this (2 GiB): MNIST-like data is far smaller.
    public static let maximumPayloadBytes = 1 << 31

    /// How much of the payload is read (and allocated) at a time.
    static let payloadChunkBytes = 8 << 20

    /// Reads `url`, which must carry `expectedMagic` (see `IDXMagic`).
    public static func read(_ url: URL, expectedMagic: UInt32) throws -> IDXArray {
        var (source, dimensions, payloadCount) = try openPayload(url, expectedMagic: expectedMagic)
        // Reserved at once when the file could hold that much (a doubling array would copy
        // 32 MB into 64 MB on the way to MNIST's 47 MB); a header claiming more than the file
        // can yield gets chunked growth, so memory follows the data that arrives, not what a
        // header claims.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(payloadCount <= source.largestPossiblePayload ? payloadCount : min(payloadCount, payloadChunkBytes))
        var payloadRead = 0
        while payloadRead < payloadCount {
            let chunk = min(payloadChunkBytes, payloadCount - payloadRead)
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let got = try bytes.withUnsafeMutableBytes { all in
                try source.fill(UnsafeMutableRawBufferPointer(rebasing: all[payloadRead..<(payloadRead + chunk)]))
            }
            payloadRead += got
            if got < chunk { break }
        }
        try finishPayload(&source, file: url.path, read: payloadRead, expected: payloadCount)
        return IDXArray(dimensions: dimensions, bytes: bytes)
    }

    /// Reads `url` (which must carry `expectedMagic`) record by record without holding its
    /// payload: `header` gets the dimensions first, then `body` gets the payload in pieces of
    /// whole records (a record is one index of the first dimension: `dimensions[1...]`'s
    /// product bytes, e.g. one 28×28 image), at most about `chunkBytes` at a time, in order.
    /// Errors are those of `read`; a payload that ends early throws after `body` has seen the
    /// whole records before the end.
    public static func readRecords(
        _ url: URL, expectedMagic: UInt32, chunkBytes: Int = 1 << 20,
        header: ([Int]) throws -> Void, body: (UnsafeBufferPointer<UInt8>) throws -> Void
    ) throws {
        var (source, dimensions, payloadCount) = try openPayload(url, expectedMagic: expectedMagic)
        guard !dimensions.isEmpty else {
            throw DataError.invalidDimensions(file: url.path, dimensions: dimensions, reason: "records need a rank of at least 1")
        }
        try header(dimensions)
        let recordBytes = payloadCount / dimensions[0]
        let capacity = max(1, chunkBytes / recordBytes) * recordBytes
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var payloadRead = 0
        while payloadRead < payloadCount {
            let chunk = min(capacity, payloadCount - payloadRead)
            let got = try source.fill(UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[..<chunk]))
            payloadRead += got
            let whole = got / recordBytes * recordBytes
            if whole > 0 { try body(UnsafeBufferPointer(rebasing: buffer[..<whole])) }
            if got < chunk { break }
        }
        try finishPayload(&source, file: url.path, read: payloadRead, expected: payloadCount)
    }

    /// Opens `url` and reads its header: the source positioned at the payload, the
    /// dimensions, and the payload's size in bytes.
    private static func openPayload(_ url: URL, expectedMagic: UInt32) throws
        -> (source: ByteSource, dimensions: [Int], payloadCount: Int)
    {
        let file = url.path
        var source = try ByteSource(url: url)

        // Magic: 00 00 <type> <rank>.
        var magicBytes = [UInt8](repeating: 0, count: 4)
        let magicRead = try magicBytes.withUnsafeMutableBytes { try source.fill($0) }
        if source.isGzip == false, magicRead >= 2, magicBytes[0] != 0 || magicBytes[1] != 0 {
            let shown = magicBytes.prefix(magicRead).map { String(format: "%02x", $0) }
            throw DataError.notGzipOrIDX(file: file, firstBytes: shown.joined(separator: " "))
        }
        guard magicRead == 4 else {
            throw DataError.truncatedHeader(file: file, bytesRead: magicRead, bytesExpected: 4)
        }
        let magic = bigEndianWord(magicBytes, at: 0)
        guard magic == expectedMagic else {
            throw DataError.wrongMagic(file: file, found: magic, expected: expectedMagic)
        }

        // Dimensions: `rank` big-endian 32-bit words.
        let rank = Int(magicBytes[3])
        var dimensionBytes = [UInt8](repeating: 0, count: 4 * rank)
        let dimensionsRead = try dimensionBytes.withUnsafeMutableBytes { try source.fill($0) }
        guard dimensionsRead == 4 * rank else {
            throw DataError.truncatedHeader(
                file: file, bytesRead: 4 + dimensionsRead, bytesExpected: 4 + 4 * rank)
        }
        let dimensions = (0..<rank).map { Int(bigEndianWord(dimensionBytes, at: 4 * $0)) }
        var payloadCount = 1
        for dimension in dimensions {
            guard dimension > 0 else {
                throw DataError.invalidDimensions(
                    file: file, dimensions: dimensions, reason: "a dimension is zero")
            }
            let (product, overflow) = payloadCount.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= maximumPayloadBytes else {
                throw DataError.invalidDimensions(
                    file: file, dimensions: dimensions,
                    reason: "the payload would exceed \(maximumPayloadBytes) bytes")
            }
            payloadCount = product
        }
        return (source, dimensions, payloadCount)
    }

    /// The payload must be exactly `expected` bytes, then the end of the stream.
    private static func finishPayload(_ source: inout ByteSource, file: String, read: Int, expected: Int) throws {
        guard read == expected else {
            throw DataError.shortPayload(file: file, bytesRead: read, bytesExpected: expected)
        }
        let extra = try source.countRemainingBytes()
        guard extra == 0 else {
            throw DataError.longPayload(file: file, extraBytes: extra, bytesExpected: expected)
        }
    }

    private static func bigEndianWord(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }
}

// MARK: - Byte sources

/// The decompressed (or raw) bytes of a file, read in order.
private struct ByteSource {
    let isGzip: Bool
    private let raw: RawReader?
    private let gzip: GzipReader?

    /// The most bytes this file can yield: its size, or for gzip the size times deflate's
    /// largest expansion (1032:1).
    let largestPossiblePayload: Int

    init(url: URL) throws {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw DataError.cannotOpen(file: url.path, reason: describe(error))
        }
        // A file without a size (a pipe) gets chunked growth.
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        let first = try readChunk(handle, file: url.path)
        isGzip = first.count >= 2 && first[first.startIndex] == 0x1f && first[first.startIndex + 1] == 0x8b
        let (bound, overflow) = fileBytes.multipliedReportingOverflow(by: isGzip ? 1032 : 1)
        largestPossiblePayload = overflow ? Int.max : bound
        if isGzip {
            gzip = try GzipReader(handle: handle, file: url.path, initialInput: first)
            raw = nil
        } else {
            raw = RawReader(handle: handle, file: url.path, pending: first)
            gzip = nil
        }
    }

    /// Fills `buffer` completely unless the data ends first; returns the bytes written.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let gzip { return try gzip.fill(buffer) }
        if let raw { return try raw.fill(buffer) }
        return 0
    }

    /// Reads to the end, returning how many bytes were left (checking the gzip trailer).
    mutating func countRemainingBytes() throws -> Int {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let count = try scratch.withUnsafeMutableBytes { try fill($0) }
            total += count
            if count < scratch.count { return total }
        }
    }
}

/// Reads up to 1 MiB from `handle`.
private func readChunk(_ handle: FileHandle, file: String) throws -> Data {
    do {
        return try handle.read(upToCount: 1 << 20) ?? Data()
    } catch {
        throw DataError.cannotOpen(file: file, reason: describe(error))
    }
}

private func describe(_ error: Error) -> String {
    (error as NSError).localizedDescription
}

/// An uncompressed file.
private final class RawReader {
    private let handle: FileHandle
    private let file: String
    private var pending: Data
    private var atEnd = false

    init(handle: FileHandle, file: String, pending: Data) {
        self.handle = handle
        self.file = file
        self.pending = pending
    }

    deinit { try? handle.close() }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var written = 0
        while written < buffer.count {
            if pending.isEmpty {
                if atEnd { break }
                pending = try readChunk(handle, file: file)
                if pending.isEmpty { atEnd = true; break }
            }
            let count = min(pending.count, buffer.count - written)
            pending.copyBytes(
                to: UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + count)]),
                from: pending.startIndex..<(pending.startIndex + count))
            pending.removeFirst(count)
            written += count
        }
        return written
    }
}

/// A gzip file inflated by zlib as it is read (several concatenated members are accepted).
private final class GzipReader {
    private let handle: FileHandle
    private let file: String
    private let stream: UnsafeMutablePointer<z_stream>
    private let inputCapacity = 1 << 20
    private let input: UnsafeMutablePointer<UInt8>
    private var inputAtEnd = false
    private var memberEnded = false

    init(handle: FileHandle, file: String, initialInput: Data) throws {
        self.handle = handle
        self.file = file
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = .allocate(capacity: inputCapacity)
        // 15 + 32: maximum window, detect the gzip (or zlib) header automatically.
        let status = inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            input.deallocate()
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw DataError.corruptGzip(file: file, detail: "inflateInit2 failed with status \(status)")
        }
        load(initialInput)
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        input.deallocate()
        try? handle.close()
    }

    private func load(_ data: Data) {
        data.copyBytes(to: input, count: data.count)
        stream.pointee.next_in = input
        stream.pointee.avail_in = UInt32(data.count)
        if data.isEmpty { inputAtEnd = true }
    }

    private func refillIfEmpty() throws {
        if stream.pointee.avail_in == 0 && !inputAtEnd {
            load(try readChunk(handle, file: file))
        }
    }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        var written = 0
        while written < buffer.count {
            try refillIfEmpty()
            if memberEnded {
                // The end of a member: stop at the end of the file, else inflate the next member.
                if stream.pointee.avail_in == 0 { break }
                inflateReset(stream)
                memberEnded = false
            }
            // avail_out is 32-bit: fill large buffers in slices of at most 1 GiB.
            let slice = min(buffer.count - written, 1 << 30)
            stream.pointee.next_out = base.advanced(by: written).assumingMemoryBound(to: UInt8.self)
            stream.pointee.avail_out = UInt32(slice)
            let status = inflate(stream, Z_NO_FLUSH)
            written += slice - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                memberEnded = true
            case Z_BUF_ERROR:
                // No progress possible: the input is exhausted before the end of the stream.
                if stream.pointee.avail_in == 0 && inputAtEnd { throw DataError.truncatedGzip(file: file) }
                if stream.pointee.avail_in > 0 {
                    throw DataError.corruptGzip(file: file, detail: "inflate made no progress")
                }
            case Z_DATA_ERROR:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
                if message == "incorrect data check" || message == "incorrect length check" {
                    throw DataError.badChecksum(file: file, detail: message)
                }
                throw DataError.corruptGzip(file: file, detail: message)
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw DataError.corruptGzip(file: file, detail: message)
            }
        }
        return written
    }
}
