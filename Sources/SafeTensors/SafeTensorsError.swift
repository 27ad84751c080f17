import Foundation

// MARK: - SafeTensorsError

/// Everything that can be wrong with a safetensors file or with tensors handed to the writer.
///
/// `file` is the path (or the `source` label given to `SafeTensorsFile(parsing:source:)`);
/// `tensor` is the tensor's name in the header; offsets are relative to the data section
/// (the bytes after the 8-byte length prefix and the header), as in the format.
public enum SafeTensorsError: Error, CustomStringConvertible, LocalizedError, Equatable {
    // MARK: File and header framing
    case cannotRead(file: String, reason: String)
    case fileTooShort(file: String, size: Int)
    case headerBeyondFile(file: String, headerLength: UInt64, bytesAfterPrefix: Int)
    case headerTooLarge(file: String, headerLength: UInt64, limit: Int)
    case headerNotUTF8(file: String, byteOffset: Int)
    case headerNotJSON(file: String, byteOffset: Int, reason: String)
    case headerNotObject(file: String)
    case duplicateKey(file: String, key: String)

    // MARK: Tensor entries
    case invalidTensorInfo(file: String, tensor: String, field: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case elementCountOverflow(file: String, tensor: String, shape: [Int])
    case byteCountMismatch(file: String, tensor: String, dtype: DType, shape: [Int], expected: Int, actual: Int)
    case offsetsReversed(file: String, tensor: String, begin: Int, end: Int)
    case offsetsOutOfBounds(file: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlap(file: String, tensor: String, begin: Int, previous: String, previousEnd: Int)
    case gap(file: String, tensor: String, begin: Int, expectedBegin: Int, previous: String?)
    case dataNotCovered(file: String, coveredEnd: Int, dataSize: Int)

    // MARK: Metadata
    case invalidMetadata(file: String, key: String, reason: String)

    // MARK: Use of the in-memory values
    case missingTensor(file: String, tensor: String, available: [String])
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    case invalidShape(shape: [Int], reason: String)
    case valueCountMismatch(dtype: DType, shape: [Int], expectedBytes: Int, actualBytes: Int)
    case notFloatingPoint(tensor: String?, dtype: DType)
    case notInteger64(dtype: DType)
    case reservedTensorName(name: String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason):
            return "\(file): cannot read safetensors file: \(reason)"
        case let .fileTooShort(file, size):
            return "\(file): file is \(size) bytes, too short for the 8-byte header length prefix"
        case let .headerBeyondFile(file, length, available):
            return "\(file): header length prefix says \(length) bytes but only \(available) bytes "
                + "follow the 8-byte prefix"
        case let .headerTooLarge(file, length, limit):
            return "\(file): header length \(length) exceeds the \(limit)-byte limit"
        case let .headerNotUTF8(file, offset):
            return "\(file): header is not valid UTF-8 (at header byte \(offset))"
        case let .headerNotJSON(file, offset, reason):
            return "\(file): header is not valid JSON at header byte \(offset): \(reason)"
        case let .headerNotObject(file):
            return "\(file): header JSON is not an object mapping tensor names to entries"
        case let .duplicateKey(file, key):
            return "\(file): header has key \"\(key)\" more than once"
        case let .invalidTensorInfo(file, tensor, field, reason):
            return "\(file): tensor \"\(tensor)\": field \"\(field)\" \(reason)"
        case let .unknownDType(file, tensor, dtype):
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(file): tensor \"\(tensor)\": unknown dtype \"\(dtype)\" (expected one of \(known))"
        case let .elementCountOverflow(file, tensor, shape):
            return "\(file): tensor \"\(tensor)\": shape \(shape) has more elements than fit in memory"
        case let .byteCountMismatch(file, tensor, dtype, shape, expected, actual):
            return "\(file): tensor \"\(tensor)\": shape \(shape) of \(dtype.rawValue) needs \(expected) bytes "
                + "but data_offsets span \(actual) bytes"
        case let .offsetsReversed(file, tensor, begin, end):
            return "\(file): tensor \"\(tensor)\": data_offsets [\(begin), \(end)] end before they begin"
        case let .offsetsOutOfBounds(file, tensor, begin, end, dataSize):
            return "\(file): tensor \"\(tensor)\": data_offsets [\(begin), \(end)] reach beyond the "
                + "\(dataSize)-byte data section"
        case let .overlap(file, tensor, begin, previous, previousEnd):
            return "\(file): tensor \"\(tensor)\" begins at data offset \(begin), inside tensor "
                + "\"\(previous)\" which ends at \(previousEnd)"
        case let .gap(file, tensor, begin, expectedBegin, previous):
            let after = previous.map { "after tensor \"\($0)\"" } ?? "at the start of the data section"
            return "\(file): tensor \"\(tensor)\" begins at data offset \(begin) but the next byte "
                + "\(after) is \(expectedBegin): the gap is not covered by any tensor"
        case let .dataNotCovered(file, coveredEnd, dataSize):
            return "\(file): tensors cover data bytes [0, \(coveredEnd)) but the data section has "
                + "\(dataSize) bytes: \(dataSize - coveredEnd) trailing bytes belong to no tensor"
        case let .invalidMetadata(file, key, reason):
            return "\(file): __metadata__ entry \"\(key)\" \(reason)"
        case let .missingTensor(file, tensor, available):
            return "\(file): no tensor named \"\(tensor)\" (file has: \(available.joined(separator: ", ")))"
        case let .shapeMismatch(file, tensor, expected, actual):
            return "\(file): tensor \"\(tensor)\" has shape \(actual), expected \(expected)"
        case let .invalidShape(shape, reason):
            return "shape \(shape) is invalid: \(reason)"
        case let .valueCountMismatch(dtype, shape, expected, actual):
            return "shape \(shape) of \(dtype.rawValue) needs \(expected) bytes but \(actual) were given"
        case let .notInteger64(dtype):
            return "expected a 64-bit integer tensor (I64 or U64) but it is \(dtype.rawValue)"
        case let .notFloatingPoint(tensor, dtype):
            let name = tensor.map { "tensor \"\($0)\" " } ?? ""
            return "\(name)has dtype \(dtype.rawValue), which cannot be read as Float "
                + "(only F32, F64, F16 and BF16 can)"
        case let .reservedTensorName(name):
            return "a tensor cannot be named \"\(name)\": the name is reserved for metadata"
        }
    }

    public var errorDescription: String? { description }
}
