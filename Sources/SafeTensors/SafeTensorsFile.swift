import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - SafeTensorsFile

/// The contents of a safetensors file: named tensors and optional string metadata.
///
/// Layout of the format (all integers little-endian):
///
///     [8 bytes]  N = header length (UInt64)
///     [N bytes]  UTF-8 JSON: {"__metadata__": {String: String}?,
///                             "<name>": {"dtype": "F32", "shape": [d0, d1, ...],
///                                        "data_offsets": [begin, end]}, ...}
///     [rest]     data section; each tensor's bytes are data[begin..<end]
///
/// The reader checks every field before using it (see `init(parsing:source:)`) and copies
/// each tensor's bytes out of the file, so nothing it allocates exceeds the file's size.
/// The writer produces the same bytes as the reference implementation (`safetensors`
/// 0.4+, used by `safetensors.torch.save_file`).
public struct SafeTensorsFile: Sendable {
    /// The largest header the reader accepts, as in the reference implementation.
    public static let maximumHeaderLength = 100_000_000

    public var tensors: [String: TensorEntry]
    public var metadata: [String: String]
    /// Where the contents came from (a path, or a label): used in error messages.
    public var source: String

    public init(tensors: [String: TensorEntry] = [:], metadata: [String: String] = [:], source: String = "<memory>") {
        self.tensors = tensors
        self.metadata = metadata
        self.source = source
    }

    // MARK: - Reading

    /// Reads and validates the file at `url`.
    public static func read(from url: URL) throws -> SafeTensorsFile {
        // The system's reason, not Foundation's "operation could not be completed".
        var info = stat()
        guard stat(url.path, &info) == 0 else {
            throw SafeTensorsError.cannotRead(file: url.path, reason: AtomicFileError.explain(errno))
        }
        guard info.st_mode & S_IFMT != S_IFDIR else {
            throw SafeTensorsError.cannotRead(file: url.path, reason: "is a directory (EISDIR); expected a .safetensors file")
        }
        guard access(url.path, R_OK) == 0 else {
            throw SafeTensorsError.cannotRead(file: url.path, reason: AtomicFileError.explain(errno))
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafeTensorsError.cannotRead(file: url.path, reason: error.localizedDescription)
        }
        return try SafeTensorsFile(parsing: data, source: url.path)
    }

    /// Parses the bytes of a whole safetensors file. `source` names it in error messages.
    ///
    /// Checks, in order: the 8-byte prefix; header length within the file and below
    /// `maximumHeaderLength`; header is UTF-8 JSON (strict, no duplicate keys, depth-bounded)
    /// whose top level is an object; `__metadata__` maps strings to strings; each tensor has
    /// a known `dtype`, a `shape` of non-negative integers whose element count does not
    /// overflow, and `data_offsets` `[begin, end]` with `begin <= end <= data size` and
    /// `end - begin == elements * dtype size`; sorted by offset, tensors are contiguous
    /// from 0, never overlap, and cover the data section exactly (as the reference requires).
    public init(parsing data: Data, source: String) throws {
        let file = source
        let fileSize = data.count
        guard fileSize >= 8 else { throw SafeTensorsError.fileTooShort(file: file, size: fileSize) }

        // MARK: Header framing
        var headerLength: UInt64 = 0
        for index in 0..<8 {
            headerLength |= UInt64(data[data.startIndex + index]) << (8 * UInt64(index))
        }
        let afterPrefix = fileSize - 8
        guard headerLength <= UInt64(afterPrefix) else {
            throw SafeTensorsError.headerBeyondFile(file: file, headerLength: headerLength, bytesAfterPrefix: afterPrefix)
        }
        let headerSize = Int(headerLength)  // fits: it is at most the file size
        guard headerSize <= SafeTensorsFile.maximumHeaderLength else {
            throw SafeTensorsError.headerTooLarge(
                file: file, headerLength: headerLength, limit: SafeTensorsFile.maximumHeaderLength)
        }
        let headerStart = data.startIndex + 8
        let headerBytes = [UInt8](data[headerStart..<headerStart + headerSize])
        if let offset = firstInvalidUTF8Offset(headerBytes) {
            throw SafeTensorsError.headerNotUTF8(file: file, byteOffset: offset)
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(headerBytes)
        } catch {
            switch error {
            case .syntax(let offset, let reason):
                throw SafeTensorsError.headerNotJSON(file: file, byteOffset: offset, reason: reason)
            case .duplicateKey(let key):
                throw SafeTensorsError.duplicateKey(file: file, key: key)
            }
        }
        guard case .object(let members) = root else { throw SafeTensorsError.headerNotObject(file: file) }

        // MARK: Entries
        let dataStart = headerStart + headerSize
        let dataSize = fileSize - 8 - headerSize
        var metadata: [String: String] = [:]
        var entries: [ParsedEntry] = []
        entries.reserveCapacity(members.count)
        for member in members {
            let key = member.key, value = member.value
            if key == "__metadata__" {
                metadata = try SafeTensorsFile.parseMetadata(value, file: file)
            } else {
                entries.append(try SafeTensorsFile.parseEntry(name: key, value: value, dataSize: dataSize, file: file))
            }
        }

        // MARK: Coverage
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var coveredEnd = 0
        var previousName: String?
        for entry in entries {
            if entry.begin < coveredEnd, let previous = previousName {
                throw SafeTensorsError.overlap(
                    file: file, tensor: entry.name, begin: entry.begin, previous: previous, previousEnd: coveredEnd)
            }
            if entry.begin > coveredEnd {
                throw SafeTensorsError.gap(
                    file: file, tensor: entry.name, begin: entry.begin, expectedBegin: coveredEnd, previous: previousName)
            }
            coveredEnd = entry.end
            previousName = entry.name
        }
        guard coveredEnd == dataSize else {
            throw SafeTensorsError.dataNotCovered(file: file, coveredEnd: coveredEnd, dataSize: dataSize)
        }

        // MARK: Copy out
        var tensors: [String: TensorEntry] = [:]
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let bytes = Data(data[(dataStart + entry.begin)..<(dataStart + entry.end)])
            tensors[entry.name] = TensorEntry(
                validatedDType: entry.dtype, shape: entry.shape, elementCount: entry.elementCount, bytes: bytes)
        }
        self.init(tensors: tensors, metadata: metadata, source: source)
    }

    /// One header entry after its fields have been checked, before coverage is checked.
    private struct ParsedEntry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var elementCount: Int
        var begin: Int
        var end: Int
    }

    private static func parseMetadata(_ value: JSONValue, file: String) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw SafeTensorsError.invalidMetadata(
                file: file, key: "__metadata__", reason: "is \(value.kindName), expected an object of strings")
        }
        var metadata: [String: String] = [:]
        for member in members {
            let key = member.key, entry = member.value
            guard case .string(let text) = entry else {
                throw SafeTensorsError.invalidMetadata(
                    file: file, key: key, reason: "is \(entry.kindName), expected a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(name: String, value: JSONValue, dataSize: Int, file: String) throws -> ParsedEntry {
        guard case .object(let fields) = value else {
            throw SafeTensorsError.invalidTensorInfo(
                file: file, tensor: name, field: "(entry)", reason: "is \(value.kindName), expected an object")
        }
        func field(_ fieldName: String) throws -> JSONValue {
            guard let found = fields.first(where: { $0.key == fieldName }) else {
                throw SafeTensorsError.invalidTensorInfo(file: file, tensor: name, field: fieldName, reason: "is missing")
            }
            return found.value
        }
        // Other fields are ignored, as the reference implementation ignores them.

        let dtypeValue = try field("dtype")
        guard case .string(let dtypeName) = dtypeValue else {
            throw SafeTensorsError.invalidTensorInfo(
                file: file, tensor: name, field: "dtype", reason: "is \(dtypeValue.kindName), expected a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(file: file, tensor: name, dtype: dtypeName)
        }

        let shapeValue = try field("shape")
        guard case .array(let dimensions) = shapeValue else {
            throw SafeTensorsError.invalidTensorInfo(
                file: file, tensor: name, field: "shape", reason: "is \(shapeValue.kindName), expected an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensions.count)
        for dimension in dimensions {
            guard let size = dimension.nonNegativeInt else {
                throw SafeTensorsError.invalidTensorInfo(
                    file: file, tensor: name, field: "shape",
                    reason: "has \(dimension.kindName), expected a non-negative integer that fits in Int")
            }
            shape.append(size)
        }

        let offsetsValue = try field("data_offsets")
        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw SafeTensorsError.invalidTensorInfo(
                file: file, tensor: name, field: "data_offsets",
                reason: "is \(offsetsValue.kindName), expected an array of two integers [begin, end]")
        }
        guard let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt else {
            throw SafeTensorsError.invalidTensorInfo(
                file: file, tensor: name, field: "data_offsets",
                reason: "has \(offsets[0].kindName), \(offsets[1].kindName); expected non-negative integers that fit in Int")
        }
        guard begin <= end else {
            throw SafeTensorsError.offsetsReversed(file: file, tensor: name, begin: begin, end: end)
        }
        guard end <= dataSize else {
            throw SafeTensorsError.offsetsOutOfBounds(file: file, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }

        let elementCount: Int
        do {
            elementCount = try TensorEntry.checkedElementCount(shape)
        } catch {
            throw SafeTensorsError.elementCountOverflow(file: file, tensor: name, shape: shape)
        }
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow { throw SafeTensorsError.elementCountOverflow(file: file, tensor: name, shape: shape) }
        guard byteCount == end - begin else {
            throw SafeTensorsError.byteCountMismatch(
                file: file, tensor: name, dtype: dtype, shape: shape, expected: byteCount, actual: end - begin)
        }
        return ParsedEntry(name: name, dtype: dtype, shape: shape, elementCount: elementCount, begin: begin, end: end)
    }

    // MARK: - Lookup

    /// The tensor named `name`; if `shape` is given, also checks that it matches.
    public func tensor(named name: String, shape expected: [Int]? = nil) throws -> TensorEntry {
        guard let entry = tensors[name] else {
            throw SafeTensorsError.missingTensor(file: source, tensor: name, available: tensors.keys.sorted())
        }
        if let expected, expected != entry.shape {
            throw SafeTensorsError.shapeMismatch(file: source, tensor: name, expected: expected, actual: entry.shape)
        }
        return entry
    }

    /// The values of the tensor named `name` as Float (see `TensorEntry.floats()`).
    public func floats(named name: String, shape expected: [Int]? = nil) throws -> [Float] {
        let entry = try tensor(named: name, shape: expected)
        guard [.F32, .F64, .F16, .BF16].contains(entry.dtype) else {
            throw SafeTensorsError.notFloatingPoint(tensor: name, dtype: entry.dtype)
        }
        return try entry.floats()
    }

    // MARK: - Writing

    /// The file's bytes, identical to what the reference writer produces for the same
    /// tensors and metadata: tensors laid out by dtype (widest first, in the reference
    /// `Dtype` order) then by name (byte order), header entries in that same order after
    /// `__metadata__` (keys sorted; omitted when empty), header padded with spaces to a
    /// multiple of 8 bytes.
    public func serialized() throws -> Data {
        if tensors["__metadata__"] != nil {
            throw SafeTensorsError.reservedTensorName(name: "__metadata__")
        }
        let order = tensors.sorted { left, right in
            if left.value.dtype.referenceWriterRank != right.value.dtype.referenceWriterRank {
                return left.value.dtype.referenceWriterRank > right.value.dtype.referenceWriterRank
            }
            return left.key.utf8.lexicographicallyPrecedes(right.key.utf8)
        }

        var header: [UInt8] = []
        header.append(UInt8(ascii: "{"))
        var first = true
        func separator() {
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            appendJSONString("__metadata__", to: &header)
            header.append(contentsOf: Array(":{".utf8))
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if index > 0 { header.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key] ?? "", to: &header)
            }
            header.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for (name, entry) in order {
            separator()
            appendJSONString(name, to: &header)
            let shape = entry.shape.map(String.init).joined(separator: ",")
            let end = offset + entry.bytes.count
            let info = ":{\"dtype\":\"\(entry.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}"
            header.append(contentsOf: Array(info.utf8))
            offset = end
        }
        header.append(UInt8(ascii: "}"))
        let padding = (8 - header.count % 8) % 8
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))

        var output = Data(capacity: 8 + header.count + offset)
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { output.append(contentsOf: $0) }
        output.append(contentsOf: header)
        for (_, entry) in order { output.append(entry.bytes) }
        return output
    }

    /// Writes `serialized()` to `url` atomically (see `AtomicFile.write`).
    public func write(to url: URL) throws {
        try AtomicFile.write(try serialized(), to: url)
    }
}
