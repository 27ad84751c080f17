import CZlib
import Foundation

// MARK: - Dataset

/// Which half of a dataset directory.
public enum Split: String, Sendable, CaseIterable, Codable {
    case train
    case test

    /// The standard IDX file names (without `.gz`) of this split.
    public var fileNames: (images: String, labels: String) {
        switch self {
        case .train: return ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
        case .test: return ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        }
    }
}

/// One split of an MNIST-format dataset (MNIST, Fashion-MNIST, KMNIST), kept as bytes.
///
/// Images stay `UInt8` in memory, packed (`PackedImages`: MNIST's 70,000 images take 14 MB
/// instead of 55 MB), and are decoded and converted to `Float` per batch by a `Transform`.
public struct Dataset: Sendable {
    /// A label for messages, e.g. "mnist/train".
    public var name: String
    /// `count` images of `rows * cols` pixels; 0 = background, 255 = ink.
    public private(set) var packedImages: PackedImages
    /// `count` labels, each in `0..<classCount`.
    public private(set) var labels: [UInt8]
    public let count: Int
    public let rows: Int
    public let cols: Int
    public let classCount: Int

    /// Pixels per image (`rows * cols`).
    public var pixelsPerImage: Int { rows * cols }

    /// A dataset from arrays already in memory; checks sizes and labels.
    ///
    /// - Parameters:
    ///   - images: `labels.count * rows * cols` pixels, sample-major then row-major.
    ///   - labels: one label per image, each in `0..<classCount`.
    public init(
        name: String, images: [UInt8], labels: [UInt8], rows: Int, cols: Int, classCount: Int = 10
    ) throws {
        guard rows > 0, cols > 0, images.count == labels.count * rows * cols else {
            throw DataError.countMismatch(
                imagesFile: "\(name) images (\(images.count) bytes of \(rows)x\(cols))",
                imageCount: rows > 0 && cols > 0 ? images.count / (rows * cols) : 0,
                labelsFile: "\(name) labels", labelCount: labels.count)
        }
        let packed = images.withUnsafeBufferPointer { PackedImages(pixelsPerImage: rows * cols, images: $0) }
        try self.init(name: name, packedImages: packed, labels: labels, rows: rows, cols: cols, classCount: classCount)
    }

    /// A dataset from images already packed; checks sizes and labels.
    public init(
        name: String, packedImages: PackedImages, labels: [UInt8], rows: Int, cols: Int, classCount: Int = 10
    ) throws {
        guard rows > 0, cols > 0, packedImages.pixelsPerImage == rows * cols, packedImages.count == labels.count else {
            throw DataError.countMismatch(
                imagesFile: "\(name) images (\(packedImages.count) of \(packedImages.pixelsPerImage) pixels, expected \(rows)x\(cols))",
                imageCount: packedImages.count, labelsFile: "\(name) labels", labelCount: labels.count)
        }
        try Dataset.checkLabels(labels, classCount: classCount, file: "\(name) labels")
        self.name = name
        self.packedImages = packedImages
        self.labels = labels
        self.count = labels.count
        self.rows = rows
        self.cols = cols
        self.classCount = classCount
    }

    /// Loads one split from a directory holding the standard files
    /// (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    /// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`); the `.gz` is preferred
    /// when both exist. Every header field is checked; see `DataError`. The images are packed
    /// as they are read, so the unpacked payload is never held whole.
    ///
    /// - Parameters:
    ///   - name: a label for messages; defaults to "<directory name>/<split>".
    ///   - classCount: labels must be in `0..<classCount` (10 for MNIST, Fashion-MNIST, KMNIST).
    public static func load(
        directory: URL, split: Split, name: String? = nil, classCount: Int = 10
    ) throws -> Dataset {
        let names = split.fileNames
        let imagesURL = try locate(names.images, in: directory)
        let labelsURL = try locate(names.labels, in: directory)

        let labels = try IDXReader.read(labelsURL, expectedMagic: IDXMagic.labels)
        try checkLabels(labels.bytes, classCount: classCount, file: labelsURL.path)
        var dimensions: [Int] = []
        var packed = PackedImages(pixelsPerImage: 1)
        try IDXReader.readRecords(imagesURL, expectedMagic: IDXMagic.images) { header in
            dimensions = header
            guard header.count == 3 else {
                throw DataError.invalidDimensions(
                    file: imagesURL.path, dimensions: header, reason: "images need 3 dimensions (count, rows, columns)")
            }
            guard header[0] == labels.dimensions[0] else {
                throw DataError.countMismatch(
                    imagesFile: imagesURL.path, imageCount: header[0],
                    labelsFile: labelsURL.path, labelCount: labels.dimensions[0])
            }
            packed = PackedImages(pixelsPerImage: header[1] * header[2])
        } body: { records in
            packed.append(records)
        }
        return try Dataset(
            name: name ?? "\(directory.lastPathComponent)/\(split.rawValue)",
            packedImages: packed, labels: labels.bytes,
            rows: dimensions[1], cols: dimensions[2], classCount: classCount)
    }

    /// Images `range`, decoded, one after the other: `range.count * rows * cols` bytes.
    public func pixels(_ range: Range<Int>) -> [UInt8] {
        packedImages.unpacked(range)
    }

    /// Writes image `index` (`rows * cols` bytes, row-major) to `output`.
    public func decodeImage(_ index: Int, into output: UnsafeMutablePointer<UInt8>) {
        packedImages.decode(index, into: output)
    }

    /// How many samples carry each label: `classCount` entries.
    public func labelCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }

    /// The mean pixel over all images after scaling to [0, 1].
    public func meanPixel() -> Double {
        guard count > 0 else { return 0 }
        return Double(packedImages.pixelSum()) / 255 / Double(count * pixelsPerImage)
    }

    // MARK: - Helpers

    private static func locate(_ baseName: String, in directory: URL) throws -> URL {
        let candidates = [baseName + ".gz", baseName]
        for candidate in candidates {
            let url = directory.appendingPathComponent(candidate)
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw DataError.missingFile(directory: directory.path, candidates: candidates)
    }

    private static func checkLabels(_ labels: [UInt8], classCount: Int, file: String) throws {
        let bad = labels.withUnsafeBufferPointer { values in
            values.firstIndex { Int($0) >= classCount }
        }
        if let index = bad {
            throw DataError.badLabel(
                file: file, index: index, value: Int(labels[index]), classCount: classCount)
        }
    }
}

extension Dataset {
    /// The first `n` samples (all of them when `n` is larger).
    public func prefix(_ n: Int) throws -> Dataset {
        let k = Swift.min(n, count)
        return try Dataset(name: name, packedImages: packedImages.subrange(0..<k), labels: Array(labels.prefix(k)),
                           rows: rows, cols: cols, classCount: classCount)
    }

    /// CRC-32 (zlib's) of the packed images, then the labels: whether two processes hold the
    /// same data (equal images pack to equal bytes).
    public func checksum() -> UInt32 {
        var crc = crc32(0, nil, 0)
        packedImages.withPackedBytes { crc = crc32_z(crc, $0.baseAddress, $0.count) }
        labels.withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, UInt32($0.count)) }
        return UInt32(crc)
    }

    /// Samples `range` (clamped to the dataset), under the same name: a data-parallel rank's
    /// share of an evaluation.
    public func samples(_ range: Range<Int>) throws -> Dataset {
        let r = range.clamped(to: 0..<count)
        return try Dataset(name: name, packedImages: packedImages.subrange(r),
                           labels: Array(labels[r]), rows: rows, cols: cols, classCount: classCount)
    }

    /// The first `count − n` samples, and the last `n` as a held-out split (the same
    /// images every run; PyTorch: `Subset(ds, range(len(ds) − n))` and
    /// `Subset(ds, range(len(ds) − n, len(ds)))`).
    public func holdingOut(last n: Int, as heldOutName: String) throws -> (kept: Dataset, heldOut: Dataset) {
        guard n > 0, n < count else {
            throw DataError.invalidLoaderSetting(
                "\(name): cannot hold out \(n) of its \(count) images; expected 1...\(count - 1)")
        }
        let k = count - n
        let kept = try Dataset(name: name, packedImages: packedImages.subrange(0..<k), labels: Array(labels[..<k]),
                               rows: rows, cols: cols, classCount: classCount)
        let heldOut = try Dataset(name: heldOutName, packedImages: packedImages.subrange(k..<count), labels: Array(labels[k...]),
                                  rows: rows, cols: cols, classCount: classCount)
        return (kept, heldOut)
    }
}
