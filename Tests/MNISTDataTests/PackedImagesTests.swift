import Foundation
import MNISTData
import Testing
import TestSupport

/// Packed images decode to exactly the bytes that went in, whatever their runs of zeros.
@Suite struct PackedImagesTests {
    /// Images of 600 pixels (runs longer than a token's 255) chosen to reach every branch of
    /// the encoder: all background, all ink, alternating, long runs of both, ink at the edges.
    static func awkwardImages() -> [[UInt8]] {
        let n = 600
        return [
            [UInt8](repeating: 0, count: n),
            [UInt8](repeating: 255, count: n),
            (0..<n).map { $0 % 2 == 0 ? 0 : UInt8($0 % 255 + 1) },
            (0..<n).map { $0 % 2 == 1 ? 0 : 7 },
            (0..<n).map { $0 < 300 ? 0 : 9 },
            (0..<n).map { $0 < 520 ? 3 : 0 },
            (0..<n).map { $0 == 0 || $0 == n - 1 ? 200 : 0 },
            (0..<n).map { i in
                let hash = (i &* 2_654_435_761) >> 7  // scattered runs of every length
                return hash % 3 == 0 ? 0 : UInt8(truncatingIfNeeded: hash)
            },
        ]
    }

    @Test func roundTripsAwkwardImages() {
        let images = Self.awkwardImages()
        let flat = images.flatMap { $0 }
        let packed = flat.withUnsafeBufferPointer { PackedImages(pixelsPerImage: 600, images: $0) }
        #expect(packed.count == images.count)
        #expect(packed.unpacked(0..<packed.count) == flat)
        for (index, image) in images.enumerated() {
            var decoded = [UInt8](repeating: 1, count: 600)
            decoded.withUnsafeMutableBufferPointer { packed.decode(index, into: $0.baseAddress!) }
            #expect(decoded == image, "image \(index)")
        }
        #expect(packed.pixelSum() == flat.reduce(0) { $0 + UInt64($1) })
        // Sizes: 600 zeros are 3 tokens (255 + 255 + 90), 600 non-zero pixels 3 tokens and the pixels.
        let zeros = [UInt8](repeating: 0, count: 600), ink = [UInt8](repeating: 1, count: 600)
        #expect(zeros.withUnsafeBufferPointer { PackedImages(pixelsPerImage: 600, images: $0) }.storedBytes == 6 + 4)
        #expect(ink.withUnsafeBufferPointer { PackedImages(pixelsPerImage: 600, images: $0) }.storedBytes == 606 + 4)
    }

    @Test func subrangesAndAppendsMatchPackingAtOnce() {
        let flat = Self.awkwardImages().flatMap { $0 }
        let whole = flat.withUnsafeBufferPointer { PackedImages(pixelsPerImage: 600, images: $0) }
        var pieces = PackedImages(pixelsPerImage: 600)
        flat.withUnsafeBufferPointer { all in
            pieces.append(UnsafeBufferPointer(rebasing: all[..<1800]))
            pieces.append(UnsafeBufferPointer(rebasing: all[1800...]))
        }
        #expect(pieces == whole)
        let middle = whole.subrange(2..<5)
        #expect(middle.count == 3)
        #expect(middle.unpacked(0..<3) == Array(flat[1200..<3000]))
        #expect(middle == Array(flat[1200..<3000]).withUnsafeBufferPointer { PackedImages(pixelsPerImage: 600, images: $0) })
        #expect(whole.subrange(3..<3).count == 0)
    }

    @Test func datasetChecksumFollowsTheImages() throws {
        let images = smallImages(count: 6)
        let labels: [UInt8] = [0, 1, 2, 3, 4, 5]
        let a = try Dataset(name: "a", images: images, labels: labels, rows: 4, cols: 4)
        let b = try Dataset(name: "b", images: images, labels: labels, rows: 4, cols: 4)
        var changed = images
        changed[20] = changed[20] == 0 ? 1 : 0
        let c = try Dataset(name: "c", images: changed, labels: labels, rows: 4, cols: 4)
        #expect(a.checksum() == b.checksum())
        #expect(a.checksum() != c.checksum())
        #expect(try a.samples(2..<5).pixels(0..<3) == Array(images[32..<80]))
    }

    @Test func readsRecordsInWholeChunks() throws {
        let directory = try makeTemporaryDirectory("packed-records")
        defer { try? FileManager.default.removeItem(at: directory) }
        let payload = smallImages(count: 7)
        let url = try write(gzip(idxBytes(magic: IDXMagic.images, dimensions: [7, 4, 4], payload: payload)),
                            named: "images.gz", in: directory)
        var dimensions: [Int] = []
        var pieces: [[UInt8]] = []
        try IDXReader.readRecords(url, expectedMagic: IDXMagic.images, chunkBytes: 40) { dimensions = $0 } body: {
            pieces.append(Array($0))
        }
        #expect(dimensions == [7, 4, 4])
        // 40 bytes hold two 16-byte records: pieces of 32, 32, 32 and 16 bytes.
        #expect(pieces.map(\.count) == [32, 32, 32, 16])
        #expect(pieces.flatMap { $0 } == payload)

        // A payload cut short throws after the whole records before the cut.
        let short = try write(gzip(idxBytes(magic: IDXMagic.images, dimensions: [7, 4, 4], payload: Array(payload[..<100]))),
                              named: "short.gz", in: directory)
        var seen = 0
        #expect(throws: DataError.self) {
            try IDXReader.readRecords(short, expectedMagic: IDXMagic.images, chunkBytes: 40) { _ in } body: { seen += $0.count }
        }
        #expect(seen == 96)
    }
}
