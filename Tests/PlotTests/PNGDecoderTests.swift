import CZlib
import Foundation
import Testing
import TestSupport
@testable import Plot

/// The PNG and PGM decoder against files written by `make_pngs.py` (Python's zlib and struct
/// only): every colour type and bit depth, interlaced and not, palette and colour-key
/// transparency; and hostile files, each a one-line error naming the file.
struct PNGDecoderTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("make_pngs.py")

    @Test func everyColourTypeAndDepthMatchesTheIndependentWriter() throws {
        let directory = try makeTemporaryDirectory()
        let (status, output) = try PNGChecker.run(["python3", Self.script.path, directory.path])
        #expect(status == 0, "make_pngs.py: \(output)")
        let expected = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("expected.json")))
            as? [String: Any])
        let files = try #require(expected["files"] as? [String: [Double]])
        #expect(files.count == 34)
        for (name, values) in files.sorted(by: { $0.key < $1.key }) {
            let image = try DecodedImage.read(contentsOf: directory.appendingPathComponent(name))
            #expect(image.width == 13 && image.height == 9, "\(name)")
            if let problem = compareClose(image.gray, values, rtol: 0, atol: 1e-5, label: name) { Issue.record(Comment(rawValue: problem)) }
        }
    }

    @Test func ourOwnPNGsReadBack() throws {
        let pixels = (0..<(7 * 5 * 3)).map { UInt8(($0 * 37) % 256) }
        let image = try Image(width: 7, height: 5, channels: 3, pixels: pixels)
        let decoded = try DecodedImage.decode([UInt8](try PNGEncoder.encode(image)), file: "ours.png")
        let expected = stride(from: 0, to: pixels.count, by: 3).map { (i: Int) -> Double in
            let r = 0.299 * Double(pixels[i]), g = 0.587 * Double(pixels[i + 1]), b = 0.114 * Double(pixels[i + 2])
            return (r + g + b) / 255
        }
        #expect(compareClose(decoded.gray, expected, rtol: 0, atol: 1e-5) == nil)
    }

    @Test func hostileFilesAreOneLineErrors() throws {
        let image = try Image(width: 4, height: 4, channels: 1, pixels: Array(repeating: 200, count: 16))
        let good = [UInt8](try PNGEncoder.encode(image))
        func error(_ bytes: [UInt8]) -> String {
            do { _ = try DecodedImage.decode(bytes, file: "x.png"); return "decoded" } catch { return "\(error)" }
        }
        #expect(error(Array("hello".utf8)).contains("x.png: not a PNG or PGM image"))
        #expect(error(Array(good.prefix(40))).contains("x.png: corrupt image"))
        var badCRC = good
        badCRC[30] ^= 0xFF
        #expect(error(badCRC).contains("CRC"))
        // A header claiming 100000 x 100000 pixels (with a correct CRC) is refused before any allocation.
        var huge = good
        huge.replaceSubrange(16..<24, with: [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0])
        let crc = huge[12..<29].withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        huge.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)])
        #expect(error(huge).contains("claims 100000x100000 pixels"))
        #expect(error(Array("P5\n3 3\n255\n\u{1}".utf8)).contains("PGM data"))
        #expect(error(Array("P2\n0 3\n255\n".utf8)).contains("x.png: corrupt image: the image is 0x3"))
    }
}
