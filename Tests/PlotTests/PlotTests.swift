import Foundation
import Testing
import TestSupport
@testable import Plot

// MARK: - Fixtures

/// Deterministic pseudo-random bytes (a 64-bit LCG), so the tests need no other target.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

func pseudoRandomFloats(count: Int, seed: UInt64) -> [Float] {
    pseudoRandomBytes(count: count, seed: seed).map { Float($0) / 127.5 - 1 }
}

/// `count` synthetic 28×28 digits: black, with a bright vertical bar in column 14, rows 4...23.
func barDigits(count: Int) -> [Float] {
    var images = [Float](repeating: 0, count: count * 784)
    for index in 0..<count {
        for row in 4...23 { images[index * 784 + row * 28 + 14] = 1 }
        images[index * 784 + 27 * 28 + index % 28] = 0.5   // make each image a little different
    }
    return images
}

func colorTuple(_ color: Color) -> [Int] { [Int(color.red), Int(color.green), Int(color.blue)] }

/// Writes `image` and decodes it with the independent checker, asking for `pixels` and ~20
/// sample pixels spread over the image, which must equal what the encoder was given.
func writeAndCheck(_ image: Image, name: String, pixels: [(Int, Int)] = [],
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> PNGCheck {
    let directory = try makeTemporaryDirectory("plot-tests")
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("\(name).png")
    try image.write(to: file)
    let samples = (0..<20).map { index in
        ((index * 7919) % image.width, (index * 104_729) % image.height)
    }
    let result = try PNGChecker.check(file, pixels: pixels + samples)
    #expect(result.ok, "\(name): \(result.error ?? "")", sourceLocation: sourceLocation)
    #expect(result.width == image.width && result.height == image.height, "\(name) size", sourceLocation: sourceLocation)
    #expect(result.channels == image.channels, "\(name) channels", sourceLocation: sourceLocation)
    for (x, y) in samples {
        #expect(result.pixel(x, y) == image.pixel(x: x, y: y)?.map(Int.init),
                "\(name) pixel (\(x), \(y)) decodes differently", sourceLocation: sourceLocation)
    }
    return result
}

/// `nil` when the decoded bytes equal `expected`, else where and how they first differ.
func firstMismatch(_ decoded: [Int]?, _ expected: [UInt8]) -> String? {
    guard let decoded else { return "no decoded bytes" }
    guard decoded.count == expected.count else { return "decoded \(decoded.count) bytes, expected \(expected.count)" }
    let differing = decoded.indices.filter { decoded[$0] != Int(expected[$0]) }
    guard let index = differing.first else { return nil }
    return "byte \(index): decoded \(decoded[index]), expected \(expected[index]) (\(differing.count) bytes differ)"
}

/// How many pixels of the RGB `image` inside the rectangle have exactly `color`.
func countPixels(_ image: Image, _ color: Color, x: Int = 0, y: Int = 0, width: Int? = nil, height: Int? = nil) -> Int {
    let right = min(x + (width ?? image.width - x), image.width)
    let bottom = min(y + (height ?? image.height - y), image.height)
    var count = 0
    image.pixels.withUnsafeBufferPointer { pixels in
        for row in max(y, 0)..<bottom {
            for column in max(x, 0)..<right {
                let offset = (row * image.width + column) * 3
                if pixels[offset] == color.red && pixels[offset + 1] == color.green && pixels[offset + 2] == color.blue {
                    count += 1
                }
            }
        }
    }
    return count
}

// MARK: - PNG encoder

@Suite struct PNGEncoderTests {
    @Test func grayscaleRoundTripsThroughIndependentDecoder() throws {
        let pixels = pseudoRandomBytes(count: 7 * 5, seed: 1)
        let image = try Image(width: 7, height: 5, channels: 1, pixels: pixels)
        let directory = try makeTemporaryDirectory("plot-tests")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("gray.png")
        try image.write(to: file)
        let result = try PNGChecker.check(file, dump: true)
        #expect(result.ok, "\(result.error ?? "")")
        #expect(result.width == 7 && result.height == 5 && result.channels == 1)
        #expect(firstMismatch(result.raw, pixels) == nil)
    }

    @Test func rgbRoundTripsWithEveryFilterType() throws {
        // Smooth gradients favour Sub/Up/Average/Paeth, noise favours None: all five appear.
        let width = 40, height = 30
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let noise = pseudoRandomBytes(count: pixels.count, seed: 2)
        for y in 0..<height {
            for x in 0..<width {
                let offset = (y * width + x) * 3
                switch y % 5 {
                case 0: pixels[offset] = noise[offset]; pixels[offset + 1] = noise[offset + 1]; pixels[offset + 2] = noise[offset + 2]
                case 1: pixels[offset] = UInt8(x * 6); pixels[offset + 1] = 7; pixels[offset + 2] = UInt8(x * 3)
                case 2: pixels[offset] = UInt8(x * 6); pixels[offset + 1] = 7; pixels[offset + 2] = UInt8(x * 3)
                case 3: pixels[offset] = UInt8((x + y) * 3); pixels[offset + 1] = UInt8(y * 8); pixels[offset + 2] = UInt8(x * y % 256)
                default: pixels[offset] = UInt8(x * 5 + y); pixels[offset + 1] = UInt8(255 - x * 5); pixels[offset + 2] = UInt8(y * 7)
                }
            }
        }
        let image = try Image(width: width, height: height, channels: 3, pixels: pixels)
        let filtered = PNGEncoder.filterScanlines(image)
        let types = Set((0..<height).map { filtered[$0 * (width * 3 + 1)] })
        #expect(types.count >= 3, "filter types used: \(types.sorted())")

        let directory = try makeTemporaryDirectory("plot-tests")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("rgb.png")
        try image.write(to: file)
        let result = try PNGChecker.check(file, dump: true)
        #expect(result.ok, "\(result.error ?? "")")
        #expect(result.width == width && result.height == height && result.channels == 3)
        #expect(firstMismatch(result.raw, pixels) == nil)
    }

    @Test func checkerRejectsCorruptedFile() throws {
        let image = try Image(width: 4, height: 4, channels: 1, pixels: pseudoRandomBytes(count: 16, seed: 3))
        var data = try PNGEncoder.encode(image)
        #expect(Array(data.prefix(8)) == PNGEncoder.signature)
        data[8 + 12 + 13 + 8 + 2] ^= 0xFF   // a byte inside the IDAT data
        let directory = try makeTemporaryDirectory("plot-tests")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("corrupt.png")
        try data.write(to: file)
        let result = try PNGChecker.check(file)
        #expect(!result.ok)
        #expect(result.error?.contains("CRC mismatch") == true, "\(result.error ?? "")")
    }

    @Test func imageRejectsMismatchedBuffer() {
        #expect(throws: PlotError.self) { try Image(width: 3, height: 2, channels: 3, pixels: [UInt8](repeating: 0, count: 17)) }
        #expect(throws: PlotError.self) { try Image(width: 2, height: 2, channels: 2, pixels: [UInt8](repeating: 0, count: 8)) }
        #expect(throws: PlotError.self) { try Image(width: 0, height: 2, channels: 1, pixels: []) }
    }

    @Test func writeReplacesAtomicallyAndReportsMissingDirectory() throws {
        let directory = try makeTemporaryDirectory("plot-tests")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("picture.png")
        try Image(width: 2, height: 1, channels: 1, pixels: [0, 255]).write(to: file)
        try Image(width: 3, height: 1, channels: 1, pixels: [0, 128, 255]).write(to: file)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["picture.png"])
        #expect(try PNGChecker.check(file).width == 3)

        let missing = directory.appendingPathComponent("no/such/dir/picture.png")
        #expect {
            try Image(width: 1, height: 1, channels: 1, pixels: [0]).write(to: missing)
        } throws: { error in
            guard case let PlotError.writeFailed(path, _) = error else { return false }
            return path == missing.path
        }
    }
}

// MARK: - Colormaps, font, ticks

@Suite struct DrawingTests {
    @Test func jetMatchesMatplotlib() {
        // matplotlib: cm.jet(0.0) = (0, 0, 0.5), cm.jet(1.0) = (0.5, 0, 0),
        // cm.jet(0.5) = (0.490, 1.0, 0.478) → (125, 255, 122).
        #expect(colorTuple(Colormap.jet.color(0)) == [0, 0, 128])
        #expect(colorTuple(Colormap.jet.color(1)) == [128, 0, 0])
        #expect(colorTuple(Colormap.jet.color(0.5)) == [125, 255, 122])
        #expect(colorTuple(Colormap.jet.color(-3)) == [0, 0, 128])
        #expect(colorTuple(Colormap.jet.color(.nan)) == [0, 0, 128])
        #expect(colorTuple(Colormap.gray.color(0.5)) == [128, 128, 128])
        #expect(Colormap.blues.color(0).luminance > 0.9 && Colormap.blues.color(1).luminance < 0.25)
    }

    @Test func fontCoversPrintableASCIIWithDistinctGlyphs() {
        #expect(BitmapFont.drawings.count == 95)
        for (index, drawing) in BitmapFont.drawings.enumerated() {
            let character = Character(Unicode.Scalar(UInt8(index + 32)))
            #expect(drawing.count == 7 || drawing.count == 8, "glyph '\(character)' has \(drawing.count) rows")
            #expect(drawing.allSatisfy { $0.count == 5 && $0.allSatisfy { "#.".contains($0) } },
                    "glyph '\(character)' rows must be 5 characters of # and .")
            let ink = BitmapFont.glyphs[index].reduce(0) { $0 + $1.nonzeroBitCount }
            #expect(character == " " ? ink == 0 : ink > 0, "glyph '\(character)' ink \(ink)")
        }
        #expect(Set(BitmapFont.glyphs).count == 95, "two characters share a glyph")
        #expect(BitmapFont.textWidth("ab", scale: 2) == 22)
        #expect(BitmapFont.textWidth("", scale: 3) == 0)
    }

    @Test func drawTextPlacesGlyphPixels() throws {
        var canvas = try Canvas(width: 20, height: 20)
        let width = canvas.drawText("L", x: 2, y: 1, scale: 2, color: .black)
        #expect(width == 10)
        // Font pixel (column c, row r) covers x 2+2c...3+2c, y 1+2r...2+2r.
        // "L": column 0 inked in rows 0...6, row 6 inked in columns 0...4, the rest paper.
        #expect(canvas.color(x: 2, y: 1) == .black)    // (0, 0)
        #expect(canvas.color(x: 3, y: 2) == .black)    // (0, 0), other corner of the block
        #expect(canvas.color(x: 4, y: 1) == .white)    // (1, 0)
        #expect(canvas.color(x: 10, y: 11) == .white)  // (4, 5)
        #expect(canvas.color(x: 10, y: 13) == .black)  // (4, 6)
        #expect(canvas.color(x: 2, y: 15) == .white)   // (0, 7), the empty descender row
        #expect(canvas.color(x: 12, y: 13) == .white)  // the spacing column
    }

    @Test func ticksAreNiceAndInsideTheRange() {
        let unit = Ticks(lower: 0, upper: 1, targetCount: 5)
        #expect(unit.values.count == 6)
        #expect(unit.labels == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let epochs = Ticks(lower: 0.7, upper: 10.3, targetCount: 6)
        #expect(epochs.labels == ["2", "4", "6", "8", "10"])
        let accuracy = Ticks(lower: 0.9512, upper: 0.9934, targetCount: 5)
        #expect(accuracy.labels == ["0.96", "0.97", "0.98", "0.99"])
        #expect(Ticks(lower: 3, upper: 3, targetCount: 5).values == [3])
    }

    @Test func antiAliasedLineCoversItsPath() throws {
        var canvas = try Canvas(width: 30, height: 30)
        canvas.drawLine(from: (x: 2, y: 2), to: (x: 27, y: 27), color: .black, thickness: 2)
        #expect(canvas.color(x: 15, y: 15) == .black)
        #expect(canvas.color(x: 25, y: 4) == .white)
        let partial = canvas.color(x: 16, y: 14).map { $0.red } ?? 0
        #expect(partial > 0 && partial < 255, "edge pixel should be blended, got \(partial)")
    }
}
