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
        guard let base = images.baseAddress else { return }
        ends.reserveCapacity(ends.count + images.count / pixelsPerImage)
        for start in stride(from: 0, to: images.count, by: pixelsPerImage) {
            let image = base + start
            var position = 0
            while position < pixelsPerImage {
                var zeros = 0
                while zeros < 255, position < pixelsPerImage, image[position] == 0 {
                    zeros += 1
                    position += 1
                }
                let literalStart = position
                while position - literalStart < 255, position < pixelsPerImage, image[position] != 0 {
                    position += 1
                }
                bytes.append(UInt8(zeros))
                bytes.append(UInt8(position - literalStart))
                bytes.append(contentsOf: UnsafeBufferPointer(start: image + literalStart, count: position - literalStart))
            }
            precondition(bytes.count <= Int(UInt32.max), "packed images exceed 4 GiB")
            ends.append(UInt32(bytes.count))
        }
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
