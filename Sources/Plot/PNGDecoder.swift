import CZlib
import Foundation

/// The eight bytes every PNG file starts with.
let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// Why a file could not be read as an image; each case names the file.
public enum ImageFileError: Error, CustomStringConvertible, Equatable {
    case notAnImage(file: String)
    case corrupt(file: String, String)
    case tooLarge(file: String, width: Int, height: Int)
    case unsupported(file: String, String)

    public var description: String {
        switch self {
        case let .notAnImage(file):
            return "\(file): not a PNG or PGM image (the first bytes are neither the PNG signature nor P2/P5)"
        case let .corrupt(file, detail): return "\(file): corrupt image: \(detail)"
        case let .tooLarge(file, width, height):
            return "\(file): the image claims \(width)x\(height) pixels; at most \(DecodedImage.maximumSide) per side and "
                + "\(DecodedImage.maximumPixels) in all are read"
        case let .unsupported(file, detail): return "\(file): \(detail)"
        }
    }
}

/// An image as the predictor needs it: gray levels in `[0, 1]` (1 = white), alpha already
/// composited over white, row-major.
public struct DecodedImage: Sendable, Equatable {
    public static let maximumSide = 16_384
    public static let maximumPixels = 16 << 20

    public var width: Int
    public var height: Int
    /// `width * height` values in `[0, 1]`.
    public var gray: [Float]

    public init(width: Int, height: Int, gray: [Float]) {
        self.width = width
        self.height = height
        self.gray = gray
    }

    /// Reads a PNG (every colour type and bit depth, interlaced or not) or a PGM (P2, P5).
    public static func read(contentsOf url: URL) throws -> DecodedImage {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ImageFileError.corrupt(file: url.path, "cannot read the file: \(error.localizedDescription)")
        }
        return try decode([UInt8](data), file: url.path)
    }

    public static func decode(_ bytes: [UInt8], file: String) throws -> DecodedImage {
        if bytes.starts(with: pngSignature) { return try PNGDecoder.decode(bytes, file: file) }
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "2") {
            return try PGMDecoder.decode(bytes, file: file)
        }
        throw ImageFileError.notAnImage(file: file)
    }

    static func checkSize(_ width: Int, _ height: Int, file: String) throws {
        guard width >= 1, height >= 1 else { throw ImageFileError.corrupt(file: file, "the image is \(width)x\(height)") }
        guard width <= maximumSide, height <= maximumSide, width * height <= maximumPixels else {
            throw ImageFileError.tooLarge(file: file, width: width, height: height)
        }
    }
}

/// PNG (ISO/IEC 15948) to gray: colour types 0 (gray), 2 (RGB), 3 (palette), 4 (gray +
/// alpha), 6 (RGBA); bit depths 1, 2, 4, 8, 16 as each type allows; Adam7 interlacing;
/// `tRNS` transparency. Every chunk's CRC is checked; the image data is inflated into a
/// buffer of exactly the size the header implies (a stream that is longer or shorter is
/// an error), so a lying header cannot make it allocate more than its checked size.
/// Colour becomes gray as PIL's `convert("L")` does (`0.299 R + 0.587 G + 0.114 B`), and
/// transparency is composited over white.
enum PNGDecoder {
    struct Header {
        var width = 0, height = 0, bitDepth = 0, colorType = 0, interlaced = false
        var channels: Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType] ?? 1 }
        var bitsPerPixel: Int { channels * bitDepth }
        /// Bytes per complete pixel for filtering (at least 1).
        var filterStride: Int { max(1, bitsPerPixel / 8) }
        func rowBytes(_ width: Int) -> Int { (width * bitsPerPixel + 7) / 8 }
    }

    static func decode(_ bytes: [UInt8], file: String) throws -> DecodedImage {
        func corrupt(_ detail: String) -> ImageFileError { .corrupt(file: file, detail) }
        var position = 8
        var header: Header?
        var palette: [UInt8] = []
        var transparency: [UInt8] = []
        var compressed: [UInt8] = []
        var ended = false
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        while !ended {
            guard position + 12 <= bytes.count else { throw corrupt("the file ends inside a chunk (no IEND)") }
            let length = u32(position)
            guard length <= bytes.count - position - 12 else { throw corrupt("a chunk claims \(length) bytes past the end of the file") }
            let typeBytes = Array(bytes[(position + 4)..<(position + 8)])
            let type = String(decoding: typeBytes, as: UTF8.self)
            let body = Array(bytes[(position + 8)..<(position + 8 + length)])
            let stored = UInt32(u32(position + 8 + length))
            let crc = (typeBytes + body).withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard crc == stored else { throw corrupt("chunk \(type) has CRC \(String(stored, radix: 16)), its bytes give \(String(crc, radix: 16))") }
            position += 12 + length
            switch type {
            case "IHDR":
                guard length == 13, header == nil else { throw corrupt("IHDR must come first, once, with 13 bytes") }
                var h = Header()
                h.width = Int(UInt32(body[0]) << 24 | UInt32(body[1]) << 16 | UInt32(body[2]) << 8 | UInt32(body[3]))
                h.height = Int(UInt32(body[4]) << 24 | UInt32(body[5]) << 16 | UInt32(body[6]) << 8 | UInt32(body[7]))
                h.bitDepth = Int(body[8])
                h.colorType = Int(body[9])
                let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
                guard allowed[h.colorType]?.contains(h.bitDepth) == true else {
                    throw corrupt("colour type \(h.colorType) with bit depth \(h.bitDepth) is not a valid PNG combination")
                }
                guard body[10] == 0, body[11] == 0, body[12] <= 1 else {
                    throw corrupt("unknown compression, filter or interlace method (\(body[10]), \(body[11]), \(body[12]))")
                }
                h.interlaced = body[12] == 1
                try DecodedImage.checkSize(h.width, h.height, file: file)
                header = h
            case "PLTE":
                guard length % 3 == 0, length <= 768 else { throw corrupt("PLTE has \(length) bytes") }
                palette = body
            case "tRNS":
                transparency = body
            case "IDAT":
                guard header != nil else { throw corrupt("IDAT before IHDR") }
                compressed += body
            case "IEND":
                ended = true
            default:
                // Unknown critical chunks (upper-case first letter) cannot be skipped.
                if typeBytes[0] & 0x20 == 0 && !["IHDR", "PLTE", "IDAT", "IEND"].contains(type) {
                    throw ImageFileError.unsupported(file: file, "PNG critical chunk \(type) is not supported")
                }
            }
        }
        guard let h = header else { throw corrupt("no IHDR") }
        if h.colorType == 3 && palette.isEmpty { throw corrupt("a palette image without PLTE") }
        // Pass sizes (Adam7 or the whole image) and the inflated size they imply.
        let origins: [(x0: Int, y0: Int, dx: Int, dy: Int)] = h.interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)]
        let passes = origins.map { p in
            (x0: p.x0, y0: p.y0, dx: p.dx, dy: p.dy, w: (h.width - p.x0 + p.dx - 1) / p.dx, hh: (h.height - p.y0 + p.dy - 1) / p.dy)
        }.filter { $0.w > 0 && $0.hh > 0 }
        let expected = passes.reduce(0) { $0 + $1.hh * (1 + h.rowBytes($1.w)) }
        let raw = try inflate(compressed, expected: expected, file: file)
        // Samples per pixel at their own depth (palette indices for colour type 3).
        var samples = [UInt16](repeating: 0, count: h.width * h.height * h.channels)
        var offset = 0
        for p in passes {
            let w = p.w, hh = p.hh
            let rowBytes = h.rowBytes(w)
            var previous = [UInt8](repeating: 0, count: rowBytes)
            var row = [UInt8](repeating: 0, count: rowBytes)
            for y in 0..<hh {
                let filter = raw[offset]
                for i in 0..<rowBytes { row[i] = raw[offset + 1 + i] }
                offset += 1 + rowBytes
                try unfilter(&row, previous: previous, filter: filter, stride: h.filterStride, file: file)
                for x in 0..<w {
                    let pixel = ((p.y0 + y * p.dy) * h.width + p.x0 + x * p.dx) * h.channels
                    for c in 0..<h.channels { samples[pixel + c] = sample(row, index: x * h.channels + c, depth: h.bitDepth) }
                }
                swap(&previous, &row)
            }
        }
        return DecodedImage(width: h.width, height: h.height,
                            gray: try gray(samples, header: h, palette: palette, transparency: transparency, file: file))
    }

    /// Sample `index` of a row at `depth` bits, as an integer of that depth.
    static func sample(_ row: [UInt8], index: Int, depth: Int) -> UInt16 {
        switch depth {
        case 16: return UInt16(row[2 * index]) << 8 | UInt16(row[2 * index + 1])
        case 8: return UInt16(row[index])
        default:
            let bit = index * depth
            return UInt16((row[bit / 8] >> (8 - depth - bit % 8)) & UInt8((1 << depth) - 1))
        }
    }

    static func unfilter(_ row: inout [UInt8], previous: [UInt8], filter: UInt8, stride: Int, file: String) throws {
        switch filter {
        case 0: break
        case 1: for i in stride..<max(stride, row.count) { row[i] = row[i] &+ row[i - stride] }
        case 2: for i in 0..<row.count { row[i] = row[i] &+ previous[i] }
        case 3:
            for i in 0..<row.count {
                let left = i >= stride ? Int(row[i - stride]) : 0
                row[i] = row[i] &+ UInt8((left + Int(previous[i])) / 2)
            }
        case 4:
            for i in 0..<row.count {
                let a = i >= stride ? Int(row[i - stride]) : 0, b = Int(previous[i]), c = i >= stride ? Int(previous[i - stride]) : 0
                let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                row[i] = row[i] &+ UInt8(pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
            }
        default: throw ImageFileError.corrupt(file: file, "scanline filter type \(filter) (expected 0...4)")
        }
    }

    /// Gray in [0, 1], alpha over white.
    static func gray(_ samples: [UInt16], header h: Header, palette: [UInt8], transparency: [UInt8], file: String) throws -> [Float] {
        let maximum = Float((1 << h.bitDepth) - 1)
        let count = h.width * h.height
        var out = [Float](repeating: 1, count: count)
        /// Sample `i` of the tRNS colour key (gray: 1 sample, RGB: 3), 16 bits wide.
        func key(_ i: Int) -> UInt16 { UInt16(transparency[2 * i]) << 8 | UInt16(transparency[2 * i + 1]) }
        let hasKey = (h.colorType == 0 && transparency.count >= 2) || (h.colorType == 2 && transparency.count >= 6)
        for i in 0..<count {
            var value: Float, alpha: Float = 1
            switch h.colorType {
            case 0:
                let g = samples[i]
                value = Float(g) / maximum
                if hasKey && g == key(0) { alpha = 0 }
            case 2:
                let r = samples[3 * i], g = samples[3 * i + 1], b = samples[3 * i + 2]
                value = (0.299 * Float(r) + 0.587 * Float(g) + 0.114 * Float(b)) / maximum
                if hasKey && r == key(0) && g == key(1) && b == key(2) { alpha = 0 }
            case 3:
                let index = Int(samples[i])
                guard 3 * index + 2 < palette.count else {
                    throw ImageFileError.corrupt(file: file, "palette index \(index) beyond the \(palette.count / 3) colours of PLTE")
                }
                value = (0.299 * Float(palette[3 * index]) + 0.587 * Float(palette[3 * index + 1]) + 0.114 * Float(palette[3 * index + 2])) / 255
                if index < transparency.count { alpha = Float(transparency[index]) / 255 }
            case 4:
                value = Float(samples[2 * i]) / maximum
                alpha = Float(samples[2 * i + 1]) / maximum
            default:  // 6
                let r = samples[4 * i], g = samples[4 * i + 1], b = samples[4 * i + 2]
                value = (0.299 * Float(r) + 0.587 * Float(g) + 0.114 * Float(b)) / maximum
                alpha = Float(samples[4 * i + 3]) / maximum
            }
            out[i] = value * alpha + (1 - alpha)
        }
        return out
    }

    /// zlib-inflates `data` into exactly `expected` bytes.
    static func inflate(_ data: [UInt8], expected: Int, file: String) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: expected)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ImageFileError.corrupt(file: file, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var extra: UInt8 = 0
        let status: Int32 = data.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                var status = CZlib.inflate(&stream, Z_FINISH)
                if status == Z_BUF_ERROR && stream.avail_out == 0 {
                    // Output full: is there more?
                    withUnsafeMutablePointer(to: &extra) { one in
                        stream.next_out = one
                        stream.avail_out = 1
                        status = CZlib.inflate(&stream, Z_FINISH)
                        if stream.avail_out == 0 { status = Z_BUF_ERROR }  // more data than the header implies
                    }
                }
                return status
            }
        }
        guard status == Z_STREAM_END else {
            let produced = Int(stream.total_out)
            throw ImageFileError.corrupt(file: file, produced >= expected
                ? "the image data inflates to more than the \(expected) bytes its header implies"
                : "the image data inflates to \(produced) of the \(expected) bytes its header implies (zlib status \(status))")
        }
        guard Int(stream.total_out) == expected else {
            throw ImageFileError.corrupt(file: file, "the image data inflates to \(stream.total_out) of the \(expected) bytes its header implies")
        }
        return output
    }
}

/// Netpbm gray maps: binary (P5, 8 or 16 bits) and plain text (P2).
enum PGMDecoder {
    static func decode(_ bytes: [UInt8], file: String) throws -> DecodedImage {
        var position = 2
        func token() throws -> Int {
            while position < bytes.count {
                if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count && bytes[position] != 10 { position += 1 }
                } else if [9, 10, 13, 32].contains(bytes[position]) {
                    position += 1
                } else { break }
            }
            var value = 0, digits = 0
            while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57, digits < 9 {
                value = value * 10 + Int(bytes[position] - 48)
                position += 1
                digits += 1
            }
            guard digits > 0 else { throw ImageFileError.corrupt(file: file, "PGM header: expected a number at byte \(position)") }
            return value
        }
        let binary = bytes[1] == UInt8(ascii: "5")
        let width = try token(), height = try token(), maximum = try token()
        guard (1...65_535).contains(maximum) else { throw ImageFileError.corrupt(file: file, "PGM maximum value \(maximum)") }
        try DecodedImage.checkSize(width, height, file: file)
        let count = width * height
        var gray = [Float](repeating: 0, count: count)
        if binary {
            position += 1  // the single whitespace after the maximum
            let wide = maximum > 255
            guard bytes.count - position >= count * (wide ? 2 : 1) else {
                throw ImageFileError.corrupt(file: file, "PGM data: \(bytes.count - position) bytes for \(width)x\(height) pixels")
            }
            for i in 0..<count {
                let v = wide ? Int(bytes[position + 2 * i]) << 8 | Int(bytes[position + 2 * i + 1]) : Int(bytes[position + i])
                gray[i] = Float(min(v, maximum)) / Float(maximum)
            }
        } else {
            for i in 0..<count { gray[i] = Float(min(try token(), maximum)) / Float(maximum) }
        }
        return DecodedImage(width: width, height: height, gray: gray)
    }
}
