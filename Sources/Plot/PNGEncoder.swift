import CZlib
import Foundation

/// A PNG writer for 8-bit grayscale and 8-bit RGB images (PNG specification, ISO/IEC 15948).
///
/// Layout: signature, `IHDR`, one `IDAT` holding the zlib stream of the filtered scanlines,
/// `IEND`. Each scanline picks the filter (None, Sub, Up, Average, Paeth) with the smallest
/// sum of absolute signed residuals, the heuristic the specification recommends.
public enum PNGEncoder {
    /// The eight bytes every PNG file starts with.
    public static let signature = pngSignature

    /// The complete PNG file for `image`.
    public static func encode(_ image: Image) throws -> Data {
        var header: [UInt8] = []
        appendBigEndian(UInt32(image.width), to: &header)
        appendBigEndian(UInt32(image.height), to: &header)
        header.append(8)                              // bit depth
        header.append(image.channels == 1 ? 0 : 2)   // colour type: 0 grayscale, 2 RGB
        header.append(0)                              // compression method: deflate
        header.append(0)                              // filter method: adaptive
        header.append(0)                              // interlace: none

        let filtered = filterScanlines(image)
        let compressed = try deflate(filtered)

        var file = signature
        appendChunk(type: "IHDR", data: header, to: &file)
        appendChunk(type: "IDAT", data: compressed, to: &file)
        appendChunk(type: "IEND", data: [], to: &file)
        return Data(file)
    }

    // MARK: - Filtering

    /// Each scanline as one filter-type byte followed by the filtered bytes:
    /// `height * (1 + width * channels)` bytes.
    static func filterScanlines(_ image: Image) -> [UInt8] {
        let stride = image.width * image.channels
        let bytesPerPixel = image.channels
        var output = [UInt8](repeating: 0, count: image.height * (stride + 1))
        var candidate = [UInt8](repeating: 0, count: stride)
        var best = [UInt8](repeating: 0, count: stride)
        let zeroRow = [UInt8](repeating: 0, count: stride)

        image.pixels.withUnsafeBufferPointer { pixels in
            zeroRow.withUnsafeBufferPointer { zeros in
                for y in 0..<image.height {
                    let row = UnsafeBufferPointer(rebasing: pixels[(y * stride)..<((y + 1) * stride)])
                    let above = y == 0 ? zeros : UnsafeBufferPointer(rebasing: pixels[((y - 1) * stride)..<(y * stride)])
                    var bestType: UInt8 = 0
                    var bestCost = Int.max
                    for filterType in UInt8(0)...4 {
                        let cost = candidate.withUnsafeMutableBufferPointer { out in
                            applyFilter(filterType, row: row, above: above, bytesPerPixel: bytesPerPixel, into: out)
                        }
                        if cost < bestCost {
                            bestCost = cost
                            bestType = filterType
                            swap(&best, &candidate)
                        }
                    }
                    let start = y * (stride + 1)
                    output[start] = bestType
                    output.replaceSubrange((start + 1)...(start + stride), with: best)
                }
            }
        }
        return output
    }

    /// Writes the filtered row into `out` and returns the sum of absolute signed residuals.
    /// One loop per filter type, the first pixel (no left neighbour) apart: the encoder
    /// tries all five on every row, and a run's pictures are written within its `seconds`.
    private static func applyFilter(
        _ filterType: UInt8, row: UnsafeBufferPointer<UInt8>, above: UnsafeBufferPointer<UInt8>,
        bytesPerPixel: Int, into out: UnsafeMutableBufferPointer<UInt8>
    ) -> Int {
        guard let r = row.baseAddress, let a = above.baseAddress, let o = out.baseAddress else { return 0 }
        let n = row.count, first = min(bytesPerPixel, n), bpp = bytesPerPixel
        var cost = 0
        @inline(__always) func emit(_ index: Int, _ predictor: UInt8) {
            let residual = r[index] &- predictor
            o[index] = residual
            cost += Int(Int8(bitPattern: residual).magnitude)
        }
        switch filterType {
        case 0:
            for i in 0..<n { emit(i, 0) }
        case 1:
            for i in 0..<first { emit(i, 0) }
            for i in first..<n { emit(i, r[i - bpp]) }
        case 2:
            for i in 0..<n { emit(i, a[i]) }
        case 3:
            for i in 0..<first { emit(i, a[i] / 2) }
            for i in first..<n { emit(i, UInt8((Int(r[i - bpp]) + Int(a[i])) / 2)) }
        default:
            for i in 0..<first { emit(i, paeth(left: 0, up: a[i], upLeft: 0)) }
            for i in first..<n { emit(i, paeth(left: r[i - bpp], up: a[i], upLeft: a[i - bpp])) }
        }
        return cost
    }

    /// The Paeth predictor: whichever neighbour is closest to `left + up - upLeft`.
    static func paeth(left: UInt8, up: UInt8, upLeft: UInt8) -> UInt8 {
        let estimate = Int(left) + Int(up) - Int(upLeft)
        let distanceLeft = abs(estimate - Int(left))
        let distanceUp = abs(estimate - Int(up))
        let distanceUpLeft = abs(estimate - Int(upLeft))
        if distanceLeft <= distanceUp && distanceLeft <= distanceUpLeft { return left }
        if distanceUp <= distanceUpLeft { return up }
        return upLeft
    }

    // MARK: - zlib and chunks

    /// The zlib stream (RFC 1950) of `bytes`, at zlib's default level 6: a run's pictures
    /// within a few per cent of level 9's size in a fraction of its time (a run writes them
    /// when it stops, and that time counts in the run's `seconds`).
    static func deflate(_ bytes: [UInt8]) throws -> [UInt8] {
        var capacity = compressBound(uLong(bytes.count))
        var output = [UInt8](repeating: 0, count: Int(capacity))
        let code = output.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { input in
                compress2(out.baseAddress, &capacity, input.baseAddress, uLong(input.count), 6)
            }
        }
        guard code == Z_OK else { throw PlotError.compressionFailed(code: code) }
        output.removeSubrange(Int(capacity)...)
        return output
    }

    /// Appends length, type, data and the CRC-32 of type and data.
    private static func appendChunk(type: String, data: [UInt8], to file: inout [UInt8]) {
        appendBigEndian(UInt32(data.count), to: &file)
        let typeAndData = Array(type.utf8) + data
        file.append(contentsOf: typeAndData)
        let checksum = typeAndData.withUnsafeBufferPointer { buffer in
            crc32(0, buffer.baseAddress, uInt(buffer.count))
        }
        appendBigEndian(UInt32(checksum), to: &file)
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }
}
