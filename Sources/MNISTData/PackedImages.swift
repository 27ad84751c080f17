// MARK: - Packed images

/// Images of `UInt8` pixels kept with their runs of zero pixels squeezed out, decoded one
/// image at a time as batches are built.
///
/// MNIST is mostly background: 19% of its pixels are non-zero, so its 60,000 training images
/// take 12 MB here instead of 47 MB (Fashion-MNIST: 29 MB, its pixels are half non-zero).
/// Decoding an image costs about as much as copying it, next to the model's millions of
/// operations per image.
///
/// Each image is a sequence of tokens covering its `pixelsPerImage` pixels in order: a byte
/// `z` (that many zero pixels, 0...255), a byte `n` (that many pixels copied, 0...255), then
/// the `n` pixel bytes. The encoder is greedy (as many zeros as fit, then as many non-zero
/// pixels as fit), so equal images always pack to equal bytes. At worst (zeros and non-zero
/// pixels alternating) an image takes 1.5 times its raw size; with no zero pixels at all,
/// 2 bytes more per 255.
public struct PackedImages: Sendable, Equatable {
    /// Bytes per decoded image.
    public let pixelsPerImage: Int
    /// The tokens of every image, one after the other.
    private var bytes: [UInt8] = []
    /// `ends[i]`: where image `i`'s tokens end in `bytes` (image `i` starts at `ends[i - 1]`,
    /// or 0). 32 bits suffice: the IDX reader's 2 GiB payload packs into at most 3 GiB.
    private var ends: [UInt32] = []

    public init(pixelsPerImage: Int) {
        precondition(pixelsPerImage > 0, "images need at least one pixel")
        self.pixelsPerImage = pixelsPerImage
    }

    /// Packs `images.count / pixelsPerImage` whole images.
    public init(pixelsPerImage: Int, images: UnsafeBufferPointer<UInt8>) {
        self.init(pixelsPerImage: pixelsPerImage)
        append(images)
    }

    /// How many images.
    public var count: Int { ends.count }

    /// Bytes held (tokens and offsets), against `count * pixelsPerImage` unpacked.
    public var storedBytes: Int { bytes.count + ends.count * MemoryLayout<UInt32>.size }

    /// Packs and appends whole images: `images.count` must be a multiple of `pixelsPerImage`.
    public mutating func append(_ images: UnsafeBufferPointer<UInt8>) {
        precondition(images.count % pixelsPerImage == 0, "\(images.count) bytes are not whole images of \(pixelsPerImage)")
        guard let base = images.baseAddress, !images.isEmpty else { return }
        let imageCount = images.count / pixelsPerImage
        ends.reserveCapacity(ends.count + imageCount)
        // Encoded into a scratch buffer of the worst case (1.5 bytes per pixel, plus a token
        // for an image of one pixel), then appended in one copy.
        let worstCase = images.count + images.count / 2 + 2 * imageCount
        let offset = bytes.count
        let encoded = [UInt8](unsafeUninitializedCapacity: worstCase) { scratch, initialized in
            let first = scratch.baseAddress!
            var output = first
            for image in 0..<imageCount {
                output = Self.encode(base + image * pixelsPerImage, count: pixelsPerImage, into: output)
                precondition(offset + (output - first) <= Int(UInt32.max), "packed images exceed 4 GiB")
                ends.append(UInt32(offset + (output - first)))
            }
            initialized = output - first
        }
        bytes.append(contentsOf: encoded)
    }

    /// Writes the tokens of one image of `count` pixels at `output`; returns the end.
    /// Runs are measured 8 pixels at a time: a word's non-zero bytes as a mask, the run
    /// ending at the mask's first set (or clear) byte.
    @inline(__always)
    private static func encode(
        _ image: UnsafePointer<UInt8>, count: Int, into output: UnsafeMutablePointer<UInt8>
    ) -> UnsafeMutablePointer<UInt8> {
        let high: UInt64 = 0x8080_8080_8080_8080, low: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        /// The high bit of each byte of the 8 pixels at `position` set where the pixel is non-zero.
        @inline(__always) func inked(_ position: Int) -> UInt64 {
            let word = UInt64(littleEndian: UnsafeRawPointer(image + position).loadUnaligned(as: UInt64.self))
            return (((word & low) &+ low) | word) & high
        }
        /// From `start`, past the pixels that are zero (`zeros`) or non-zero, up to `limit`.
        @inline(__always) func run(from start: Int, limit: Int, zeros: Bool) -> Int {
            var position = start
            while position < limit {
                if position + 8 <= count {
                    let stops = zeros ? inked(position) : ~inked(position) & high
                    let length = stops == 0 ? 8 : stops.trailingZeroBitCount / 8
                    position = min(position + length, limit)
                    if length < 8 { break }
                } else {
                    if (image[position] == 0) != zeros { break }
                    position += 1
                }
            }
            return position
        }
        var output = output
        var position = 0
        while position < count {
            let literalStart = run(from: position, limit: min(count, position + 255), zeros: true)
            let end = run(from: literalStart, limit: min(count, literalStart + 255), zeros: false)
            output[0] = UInt8(literalStart - position)
            output[1] = UInt8(end - literalStart)
            (output + 2).update(from: image + literalStart, count: end - literalStart)
            output += 2 + end - literalStart
            position = end
        }
        return output
    }

    /// Writes image `index` (`pixelsPerImage` bytes, row-major) to `output`.
    public func decode(_ index: Int, into output: UnsafeMutablePointer<UInt8>) {
        precondition((0..<count).contains(index), "image \(index) of \(count)")
        var position = index == 0 ? 0 : Int(ends[index - 1])
        let end = Int(ends[index])
        bytes.withUnsafeBufferPointer { tokens in
            var written = 0
            while position < end {
                let zeros = Int(tokens[position]), literals = Int(tokens[position + 1])
                position += 2
                precondition(written + zeros + literals <= pixelsPerImage, "image \(index) decodes past its size")
                (output + written).update(repeating: 0, count: zeros)
                written += zeros
                (output + written).update(from: tokens.baseAddress! + position, count: literals)
                written += literals
                position += literals
            }
            precondition(written == pixelsPerImage, "image \(index) decodes to \(written) of \(pixelsPerImage) pixels")
        }
    }

    /// Images `range`, decoded, one after the other (`range.count * pixelsPerImage` bytes).
    public func unpacked(_ range: Range<Int>) -> [UInt8] {
        precondition(range.clamped(to: 0..<count) == range, "images \(range) of \(count)")
        return [UInt8](unsafeUninitializedCapacity: range.count * pixelsPerImage) { output, initialized in
            for (offset, index) in range.enumerated() {
                decode(index, into: output.baseAddress! + offset * pixelsPerImage)
            }
            initialized = range.count * pixelsPerImage
        }
    }

    /// Images `range`, still packed (no decoding: their tokens are copied).
    public func subrange(_ range: Range<Int>) -> PackedImages {
        precondition(range.clamped(to: 0..<count) == range, "images \(range) of \(count)")
        var result = PackedImages(pixelsPerImage: pixelsPerImage)
        guard !range.isEmpty else { return result }
        let start = range.lowerBound == 0 ? 0 : Int(ends[range.lowerBound - 1])
        result.bytes = Array(bytes[start..<Int(ends[range.upperBound - 1])])
        result.ends = ends[range].map { $0 - UInt32(start) }
        return result
    }

    /// Calls `body` with the packed tokens (for checksums: equal images have equal tokens).
    public func withPackedBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer(body)
    }

    /// The sum of every pixel of every image.
    public func pixelSum() -> UInt64 {
        var total: UInt64 = 0
        bytes.withUnsafeBufferPointer { tokens in
            var position = 0
            while position < tokens.count {
                let literals = Int(tokens[position + 1])
                position += 2
                for offset in 0..<literals { total &+= UInt64(tokens[position + offset]) }
                position += literals
            }
        }
        return total
    }
}
