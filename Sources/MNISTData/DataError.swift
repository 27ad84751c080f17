import Foundation

// MARK: - Errors

/// Everything that can be wrong with a dataset file or directory. Every case names the
/// file and says what was found and what was expected.
public enum DataError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// The file does not exist or cannot be opened.
    case cannotOpen(file: String, reason: String)
    /// The first bytes are neither the gzip magic (1f 8b) nor an IDX magic (00 00 ..).
    case notGzipOrIDX(file: String, firstBytes: String)
    /// The gzip stream ends before its end marker and trailer.
    case truncatedGzip(file: String)
    /// The gzip trailer's CRC-32 or length does not match the decompressed data.
    case badChecksum(file: String, detail: String)
    /// zlib rejected the compressed data for another reason.
    case corruptGzip(file: String, detail: String)
    /// The data ends inside the IDX header.
    case truncatedHeader(file: String, bytesRead: Int, bytesExpected: Int)
    /// The IDX magic number is not the one expected for this file.
    case wrongMagic(file: String, found: UInt32, expected: UInt32)
    /// A dimension is zero, or the product of the dimensions is larger than we accept.
    case invalidDimensions(file: String, dimensions: [Int], reason: String)
    /// The payload has fewer bytes than the product of the dimensions.
    case shortPayload(file: String, bytesRead: Int, bytesExpected: Int)
    /// The payload has more bytes than the product of the dimensions.
    case longPayload(file: String, extraBytes: Int, bytesExpected: Int)
    /// The images file and the labels file disagree about the number of samples.
    case countMismatch(imagesFile: String, imageCount: Int, labelsFile: String, labelCount: Int)
    /// A label is not in `0..<classCount`.
    case badLabel(file: String, index: Int, value: Int, classCount: Int)
    /// The standard file for a split is in none of its accepted names.
    case missingFile(directory: String, candidates: [String])
    /// The transform steps do not form a valid pipeline.
    case invalidTransform(String)
    /// A data loader setting is out of range.
    case invalidLoaderSetting(String)

    public var description: String {
        switch self {
        case .cannotOpen(let file, let reason):
            return "\(file): cannot open: \(reason)"
        case .notGzipOrIDX(let file, let firstBytes):
            return "\(file): not a gzip or IDX file (first bytes \(firstBytes); "
                + "expected 1f 8b for gzip or 00 00 08 for IDX of unsigned bytes)"
        case .truncatedGzip(let file):
            return "\(file): truncated gzip stream (the compressed data ends before "
                + "the end of the stream and its CRC trailer)"
        case .badChecksum(let file, let detail):
            return "\(file): gzip checksum mismatch (\(detail)): the file is corrupted"
        case .corruptGzip(let file, let detail):
            return "\(file): corrupt gzip data (\(detail))"
        case .truncatedHeader(let file, let bytesRead, let bytesExpected):
            return "\(file): IDX header is truncated: \(bytesRead) bytes, expected \(bytesExpected)"
        case .wrongMagic(let file, let found, let expected):
            return "\(file): wrong IDX magic number \(hexWord(found)), expected \(hexWord(expected))"
        case .invalidDimensions(let file, let dimensions, let reason):
            return "\(file): invalid IDX dimensions \(dimensions): \(reason)"
        case .shortPayload(let file, let bytesRead, let bytesExpected):
            return "\(file): payload too short: \(bytesRead) bytes, "
                + "the header's dimensions need \(bytesExpected)"
        case .longPayload(let file, let extraBytes, let bytesExpected):
            return "\(file): payload too long: \(extraBytes) extra bytes after the "
                + "\(bytesExpected) the header's dimensions declare"
        case .countMismatch(let imagesFile, let imageCount, let labelsFile, let labelCount):
            return "\(imagesFile) has \(imageCount) images but \(labelsFile) has \(labelCount) labels"
        case .badLabel(let file, let index, let value, let classCount):
            return "\(file): label \(value) at index \(index) is outside 0..<\(classCount)"
        case .missingFile(let directory, let candidates):
            return "\(directory): none of \(candidates.joined(separator: ", ")) exists"
        case .invalidTransform(let reason):
            return "invalid transform: \(reason)"
        case .invalidLoaderSetting(let reason):
            return "invalid data loader setting: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// `0x00000803`-style rendering of an IDX magic number.
func hexWord(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
