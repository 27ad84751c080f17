import Foundation
import MNISTData
import Testing
import TestSupport

/// Every way an IDX file can be wrong gives its own typed error naming the file.
@Suite struct IDXReaderTests {
    let directory: URL
    let images = idxBytes(magic: IDXMagic.images, dimensions: [3, 4, 4], payload: smallImages(count: 3))

    init() throws { directory = try makeTemporaryDirectory("idx-reader") }

    /// Reads `bytes` written to a file and returns the error, if any.
    func readError(_ bytes: [UInt8], magic: UInt32 = IDXMagic.images, name: String = "file.gz") throws -> DataError? {
        let url = try write(bytes, named: name, in: directory)
        do {
            _ = try IDXReader.read(url, expectedMagic: magic)
            return nil
        } catch let error as DataError {
            #expect(error.description.contains(url.path), "message names the file: \(error)")
            return error
        }
    }

    @Test func readsGzipAndUncompressedAlike() throws {
        let gzURL = try write(gzip(images), named: "a.gz", in: directory)
        let rawURL = try write(images, named: "a", in: directory)
        let fromGzip = try IDXReader.read(gzURL, expectedMagic: IDXMagic.images)
        let fromRaw = try IDXReader.read(rawURL, expectedMagic: IDXMagic.images)
        #expect(fromGzip.dimensions == [3, 4, 4])
        #expect(fromGzip.bytes == smallImages(count: 3))
        #expect(fromRaw == fromGzip)
    }

    @Test func acceptsConcatenatedGzipMembers() throws {
        let half = images.count / 2
        let twoMembers = gzip(Array(images[..<half])) + gzip(Array(images[half...]))
        let url = try write(twoMembers, named: "two.gz", in: directory)
        #expect(try IDXReader.read(url, expectedMagic: IDXMagic.images).bytes == smallImages(count: 3))
    }

    @Test func notGzipNorIDX() throws {
        let error = try readError(Array("hello, this is text".utf8))
        guard case .notGzipOrIDX(_, let firstBytes) = error else {
            Issue.record("expected notGzipOrIDX, got \(String(describing: error))"); return
        }
        #expect(firstBytes == "68 65 6c 6c")
    }

    @Test func truncatedGzip() throws {
        let compressed = gzip(images)
        let error = try readError(Array(compressed.prefix(compressed.count - 12)))
        #expect(error == .truncatedGzip(file: directory.appendingPathComponent("file.gz").path))
        // Cut inside the 8-byte trailer: the payload is complete but the stream is not.
        let trailerCut = try readError(Array(compressed.prefix(compressed.count - 3)))
        #expect(trailerCut == .truncatedGzip(file: directory.appendingPathComponent("file.gz").path))
    }

    @Test func badCRC() throws {
        var compressed = gzip(images)
        compressed[compressed.count - 8] ^= 0xff  // first byte of the CRC-32 trailer
        let error = try readError(compressed)
        guard case .badChecksum(_, let detail) = error else {
            Issue.record("expected badChecksum, got \(String(describing: error))"); return
        }
        #expect(detail == "incorrect data check")
    }

    @Test func corruptDeflateData() throws {
        var compressed = gzip(images)
        for index in 10..<min(20, compressed.count - 8) { compressed[index] = 0xff }
        let error = try readError(compressed)
        switch error {
        case .corruptGzip, .badChecksum: break
        default: Issue.record("expected corruptGzip or badChecksum, got \(String(describing: error))")
        }
    }

    @Test func wrongMagic() throws {
        let labels = idxBytes(magic: IDXMagic.labels, dimensions: [3], payload: [1, 2, 3])
        let error = try readError(gzip(labels), magic: IDXMagic.images)
        #expect(error == .wrongMagic(
            file: directory.appendingPathComponent("file.gz").path, found: 0x801, expected: 0x803))
        #expect(error?.description.contains("0x00000801") == true)
    }

    @Test func truncatedHeader() throws {
        let error = try readError(gzip(Array(images.prefix(10))))
        #expect(error == .truncatedHeader(
            file: directory.appendingPathComponent("file.gz").path, bytesRead: 10, bytesExpected: 16))
    }

    @Test func shortPayload() throws {
        let error = try readError(gzip(Array(images.dropLast(5))))
        #expect(error == .shortPayload(
            file: directory.appendingPathComponent("file.gz").path, bytesRead: 43, bytesExpected: 48))
        let rawError = try readError(Array(images.dropLast(1)), name: "raw")
        #expect(rawError == .shortPayload(
            file: directory.appendingPathComponent("raw").path, bytesRead: 47, bytesExpected: 48))
    }

    @Test func longPayload() throws {
        let error = try readError(gzip(images + [1, 2, 3]))
        #expect(error == .longPayload(
            file: directory.appendingPathComponent("file.gz").path, extraBytes: 3, bytesExpected: 48))
        let rawError = try readError(images + [9], name: "raw")
        #expect(rawError == .longPayload(
            file: directory.appendingPathComponent("raw").path, extraBytes: 1, bytesExpected: 48))
    }

    @Test func absurdOrZeroDimensionsAreRefusedBeforeAllocating() throws {
        let huge = idxBytes(magic: IDXMagic.images, dimensions: [0xFFFF_FFFF, 0xFFFF, 0xFFFF], payload: [])
        guard case .invalidDimensions = try readError(gzip(huge)) else {
            Issue.record("expected invalidDimensions for a huge header"); return
        }
        let zero = idxBytes(magic: IDXMagic.images, dimensions: [0, 28, 28], payload: [])
        guard case .invalidDimensions = try readError(zero, name: "zero") else {
            Issue.record("expected invalidDimensions for a zero dimension"); return
        }
    }

    @Test func missingFileIsTyped() throws {
        let url = directory.appendingPathComponent("nope.gz")
        #expect(throws: DataError.self) { try IDXReader.read(url, expectedMagic: IDXMagic.images) }
    }
}

/// Dataset-level checks: counts agree, labels are in range, file names are found.
@Suite struct DatasetFileTests {
    @Test func loadsTinyDatasetCompressedAndNot() throws {
        for compressed in [true, false] {
            let directory = try makeTemporaryDirectory("tiny")
            try writeTinyDataset(in: directory, compressed: compressed)
            let train = try Dataset.load(directory: directory, split: .train)
            let test = try Dataset.load(directory: directory, split: .test)
            #expect(train.count == 10 && test.count == 5)
            #expect(train.rows == 4 && train.cols == 4)
            #expect(train.pixels(0..<train.count) == smallImages(count: 10))
            #expect(train.labels == (0..<10).map { UInt8($0) })
            #expect(train.name == "\(directory.lastPathComponent)/train")
        }
    }

    @Test func countMismatch() throws {
        let directory = try makeTemporaryDirectory("mismatch")
        try writeTinyDataset(in: directory)
        let labels = idxBytes(magic: IDXMagic.labels, dimensions: [9], payload: Array(repeating: 1, count: 9))
        try write(gzip(labels), named: "train-labels-idx1-ubyte.gz", in: directory)
        #expect(throws: DataError.countMismatch(
            imagesFile: directory.appendingPathComponent("train-images-idx3-ubyte.gz").path, imageCount: 10,
            labelsFile: directory.appendingPathComponent("train-labels-idx1-ubyte.gz").path, labelCount: 9)
        ) { try Dataset.load(directory: directory, split: .train) }
    }

    @Test func labelOutOfRange() throws {
        let directory = try makeTemporaryDirectory("badlabel")
        try writeTinyDataset(in: directory)
        var payload = (0..<10).map { UInt8($0) }
        payload[7] = 10
        let labels = idxBytes(magic: IDXMagic.labels, dimensions: [10], payload: payload)
        try write(gzip(labels), named: "train-labels-idx1-ubyte.gz", in: directory)
        let file = directory.appendingPathComponent("train-labels-idx1-ubyte.gz").path
        #expect(throws: DataError.badLabel(file: file, index: 7, value: 10, classCount: 10)) {
            try Dataset.load(directory: directory, split: .train)
        }
        // The same file is fine with more classes.
        #expect(try Dataset.load(directory: directory, split: .train, classCount: 11).count == 10)
    }

    @Test func missingFilesNameTheCandidates() throws {
        let directory = try makeTemporaryDirectory("empty")
        #expect(throws: DataError.missingFile(
            directory: directory.path, candidates: ["t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"])
        ) { try Dataset.load(directory: directory, split: .test) }
    }
}
