import CZlib
import Foundation
import MNISTData
import TestSupport

// MARK: - Building small IDX and gzip files

/// An IDX file of unsigned bytes: magic `00 00 08 rank`, big-endian dimensions, payload.
func idxBytes(magic: UInt32, dimensions: [Int], payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    func appendWord(_ word: UInt32) {
        bytes += [UInt8(word >> 24), UInt8((word >> 16) & 0xff), UInt8((word >> 8) & 0xff), UInt8(word & 0xff)]
    }
    appendWord(magic)
    for dimension in dimensions { appendWord(UInt32(dimension)) }
    return bytes + payload
}

/// `bytes` compressed as one gzip member (zlib's deflate with windowBits 31).
func gzip(_ bytes: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    let status = deflateInit2_(
        &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
        Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { return [] }
    defer { deflateEnd(&stream) }
    var input = bytes
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 64)
    let produced: Int = input.withUnsafeMutableBufferPointer { inputBuffer in
        output.withUnsafeMutableBufferPointer { outputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = UInt32(inputBuffer.count)
            stream.next_out = outputBuffer.baseAddress
            stream.avail_out = UInt32(outputBuffer.count)
            _ = deflate(&stream, Z_FINISH)
            return outputBuffer.count - Int(stream.avail_out)
        }
    }
    return Array(output.prefix(produced))
}

/// Writes `bytes` to `name` in `directory` and returns its URL.
@discardableResult
func write(_ bytes: [UInt8], named name: String, in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

/// A deterministic small dataset: `count` images of `rows`×`cols` with varied pixels.
func smallImages(count: Int, rows: Int = 4, cols: Int = 4) -> [UInt8] {
    (0..<(count * rows * cols)).map { UInt8(($0 * 37 + 11) % 256) }
}

/// Writes the four standard MNIST-named files of a tiny dataset into `directory`.
func writeTinyDataset(
    in directory: URL, trainCount: Int = 10, testCount: Int = 5, rows: Int = 4, cols: Int = 4,
    compressed: Bool = true
) throws {
    for (split, count) in [(Split.train, trainCount), (Split.test, testCount)] {
        let images = idxBytes(
            magic: IDXMagic.images, dimensions: [count, rows, cols],
            payload: smallImages(count: count, rows: rows, cols: cols))
        let labels = idxBytes(magic: IDXMagic.labels, dimensions: [count], payload: (0..<count).map { UInt8($0 % 10) })
        let suffix = compressed ? ".gz" : ""
        try write(compressed ? gzip(images) : images, named: split.fileNames.images + suffix, in: directory)
        try write(compressed ? gzip(labels) : labels, named: split.fileNames.labels + suffix, in: directory)
    }
}

// MARK: - Real data, loaded once

/// MNIST from `../shared/data/mnist`, loaded once for all tests.
let realTrain: Result<Dataset, any Error> = Result {
    try Dataset.load(directory: Shared.mnistDirectory, split: .train, name: "mnist/train")
}
let realTest: Result<Dataset, any Error> = Result {
    try Dataset.load(directory: Shared.mnistDirectory, split: .test, name: "mnist/test")
}
