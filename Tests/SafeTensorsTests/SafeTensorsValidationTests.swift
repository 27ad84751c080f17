import Foundation
import Testing
@testable import SafeTensors

// MARK: - Every validation error, with its message

@Suite struct SafeTensorsValidationTests {
    static let file = "test.safetensors"
    /// Four F32 bytes (1.0) and eight more (two floats), for two tensors a[1], b[2].
    static let twelveBytes: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40]

    static func tensor(_ name: String, _ dtype: String = "F32", shape: String, offsets: String) -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    @Test func validHandMadeFileParses() throws {
        let header = "{" + Self.tensor("a", shape: "[1]", offsets: "[0,4]") + ","
            + Self.tensor("b", shape: "[2]", offsets: "[4,12]") + "}"
        let parsed = try SafeTensorsFile(parsing: rawFile(header: header, data: Self.twelveBytes), source: Self.file)
        #expect(try parsed.floats(named: "a") == [1])
        #expect(try parsed.floats(named: "b") == [2, 3])
        // Data handed in as a slice with a non-zero start index parses the same.
        let padded = Data([9, 9, 9]) + rawFile(header: header, data: Self.twelveBytes)
        let slice = padded[3...]
        #expect(try SafeTensorsFile(parsing: slice, source: Self.file).tensors == parsed.tensors)
    }

    @Test func fileShorterThanPrefix() {
        let error = parseError(Data([1, 2, 3]))
        #expect(error == .fileTooShort(file: Self.file, size: 3))
        #expect(error?.description == "test.safetensors: file is 3 bytes, too short for the 8-byte header length prefix")
    }

    @Test func headerLengthBeyondFile() {
        let error = parseError(rawFile(header: "{}", lengthPrefix: 3))
        #expect(error == .headerBeyondFile(file: Self.file, headerLength: 3, bytesAfterPrefix: 2))
        #expect(error?.description == "test.safetensors: header length prefix says 3 bytes but only 2 bytes follow the 8-byte prefix")
    }

    @Test(arguments: [UInt64(1) << 63, UInt64.max, UInt64(Int.max), UInt64(1) << 40])
    func hugeHeaderLength(length: UInt64) {
        #expect(parseError(rawFile(header: "{}", lengthPrefix: length))
            == .headerBeyondFile(file: Self.file, headerLength: length, bytesAfterPrefix: 2))
    }

    @Test func headerAboveLimit() {
        let header = "{}" + String(repeating: " ", count: SafeTensorsFile.maximumHeaderLength)
        let error = parseError(rawFile(header: header))
        #expect(error == .headerTooLarge(file: Self.file, headerLength: 100_000_002, limit: 100_000_000))
        #expect(error?.description == "test.safetensors: header length 100000002 exceeds the 100000000-byte limit")
    }

    @Test func headerNotUTF8() {
        var data = rawFile(header: #"{"a\#u{FF}":1}"#)
        data[8 + 3] = 0xFF  // replace the first byte of ÿ's two-byte encoding: invalid lead byte
        #expect(parseError(data) == .headerNotUTF8(file: Self.file, byteOffset: 3))
    }

    @Test func headerNotJSON() {
        let error = parseError(rawFile(header: "{not json}"))
        #expect(error == .headerNotJSON(file: Self.file, byteOffset: 1, reason: "unexpected 'n', expected a string key"))
        #expect(error?.description == "test.safetensors: header is not valid JSON at header byte 1: unexpected 'n', expected a string key")
        #expect(parseError(rawFile(header: #"{"a":{}} x"#))
            == .headerNotJSON(file: Self.file, byteOffset: 9, reason: "unexpected 'x' after the top-level value"))
        #expect(parseError(rawFile(header: #"{"a":"#))
            == .headerNotJSON(file: Self.file, byteOffset: 5, reason: "unexpected end of header, expected a value"))
        #expect(parseError(rawFile(header: #"{"a\q":1}"#))
            == .headerNotJSON(file: Self.file, byteOffset: 4, reason: "invalid escape \\'q'"))
        #expect(parseError(rawFile(header: "{\"a\u{1}\":1}"))
            == .headerNotJSON(file: Self.file, byteOffset: 3, reason: "control byte 0x1 inside a string (must be escaped)"))
        #expect(parseError(rawFile(header: #"{"\ud800":1}"#))
            == .headerNotJSON(file: Self.file, byteOffset: 8, reason: "high surrogate \\ud800 without a low surrogate"))
        #expect(parseError(rawFile(header: #"{"a":01}"#))
            == .headerNotJSON(file: Self.file, byteOffset: 6, reason: "unexpected '1', expected ',' or '}'"))
    }

    @Test func deepNestingIsRejectedWithoutRecursionTrouble() {
        let header = #"{"a":"# + String(repeating: "[", count: 1_000_000)
        #expect(parseError(rawFile(header: header))
            == .headerNotJSON(file: Self.file, byteOffset: 36, reason: "nesting deeper than 32 levels"))
    }

    @Test func headerNotObject() {
        #expect(parseError(rawFile(header: "[]")) == .headerNotObject(file: Self.file))
        #expect(parseError(rawFile(header: "")) == .headerNotJSON(
            file: Self.file, byteOffset: 0, reason: "unexpected end of header, expected a value"))
    }

    @Test func duplicateKeys() {
        let header = "{" + Self.tensor("a", shape: "[1]", offsets: "[0,4]") + ","
            + Self.tensor("a", shape: "[1]", offsets: "[0,4]") + "}"
        let error = parseError(rawFile(header: header, data: [0, 0, 0, 0]))
        #expect(error == .duplicateKey(file: Self.file, key: "a"))
        #expect(error?.description == #"test.safetensors: header has key "a" more than once"#)
        // Duplicates inside an entry too.
        let inner = #"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        #expect(parseError(rawFile(header: inner, data: [0, 0, 0, 0])) == .duplicateKey(file: Self.file, key: "dtype"))
    }

    @Test func unknownDType() {
        let header = "{" + Self.tensor("w", "F8", shape: "[4]", offsets: "[0,4]") + "}"
        let error = parseError(rawFile(header: header, data: [0, 0, 0, 0]))
        #expect(error == .unknownDType(file: Self.file, tensor: "w", dtype: "F8"))
        #expect(error?.description.hasPrefix(#"test.safetensors: tensor "w": unknown dtype "F8" (expected one of F64, F32"#) == true)
    }

    @Test func malformedTensorFields() {
        func check(_ entry: String, _ expected: SafeTensorsError) {
            #expect(parseError(rawFile(header: #"{"w":"# + entry + "}", data: [0, 0, 0, 0])) == expected)
        }
        check("3", .invalidTensorInfo(file: Self.file, tensor: "w", field: "(entry)", reason: "is the number 3, expected an object"))
        check(#"{"shape":[1],"data_offsets":[0,4]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "dtype", reason: "is missing"))
        check(#"{"dtype":32,"shape":[1],"data_offsets":[0,4]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "dtype", reason: "is the number 32, expected a string"))
        check(#"{"dtype":"F32","data_offsets":[0,4]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "shape", reason: "is missing"))
        check(#"{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "shape",
                                 reason: "has the number -1, expected a non-negative integer that fits in Int"))
        check(#"{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "shape",
                                 reason: "has the number 1.0, expected a non-negative integer that fits in Int"))
        check(#"{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "shape",
                                 reason: "has the number 99999999999999999999, expected a non-negative integer that fits in Int"))
        check(#"{"dtype":"F32","shape":[1],"data_offsets":[0]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "data_offsets",
                                 reason: "is an array, expected an array of two integers [begin, end]"))
        check(#"{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}"#,
              .invalidTensorInfo(file: Self.file, tensor: "w", field: "data_offsets",
                                 reason: "has the number 0, a string; expected non-negative integers that fit in Int"))
        // Unknown extra fields are ignored, as by the reference implementation.
        #expect(parseError(rawFile(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":null}}"#,
                                   data: [0, 0, 0, 0])) == nil)
    }

    @Test func offsetsOutOfBounds() {
        let header = "{" + Self.tensor("a", shape: "[1]", offsets: "[0,4]") + ","
            + Self.tensor("b", shape: "[2]", offsets: "[4,12]") + "}"
        let error = parseError(rawFile(header: header, data: Array(Self.twelveBytes.prefix(10))))
        #expect(error == .offsetsOutOfBounds(file: Self.file, tensor: "b", begin: 4, end: 12, dataSize: 10))
        #expect(error?.description == #"test.safetensors: tensor "b": data_offsets [4, 12] reach beyond the 10-byte data section"#)
        let huge = "{" + Self.tensor("a", shape: "[1]", offsets: "[9223372036854775800,9223372036854775804]") + "}"
        #expect(parseError(rawFile(header: huge, data: [0, 0, 0, 0])) == .offsetsOutOfBounds(
            file: Self.file, tensor: "a", begin: 9_223_372_036_854_775_800, end: 9_223_372_036_854_775_804, dataSize: 4))
    }

    @Test func offsetsReversed() {
        let header = "{" + Self.tensor("a", shape: "[1]", offsets: "[4,0]") + "}"
        let error = parseError(rawFile(header: header, data: [0, 0, 0, 0]))
        #expect(error == .offsetsReversed(file: Self.file, tensor: "a", begin: 4, end: 0))
        #expect(error?.description == #"test.safetensors: tensor "a": data_offsets [4, 0] end before they begin"#)
    }

    @Test func wrongByteCount() {
        let header = "{" + Self.tensor("a", shape: "[2,2]", offsets: "[0,12]") + "}"
        let error = parseError(rawFile(header: header, data: Self.twelveBytes))
        #expect(error == .byteCountMismatch(file: Self.file, tensor: "a", dtype: .F32, shape: [2, 2], expected: 16, actual: 12))
        #expect(error?.description == #"test.safetensors: tensor "a": shape [2, 2] of F32 needs 16 bytes but data_offsets span 12 bytes"#)
    }

    @Test func hugeShapeOverflows() {
        let header = "{" + Self.tensor("a", shape: "[4294967296,4294967296]", offsets: "[0,4]") + "}"
        let error = parseError(rawFile(header: header, data: [0, 0, 0, 0]))
        #expect(error == .elementCountOverflow(file: Self.file, tensor: "a", shape: [4_294_967_296, 4_294_967_296]))
        let bytesOverflow = "{" + Self.tensor("a", "F64", shape: "[2305843009213693952]", offsets: "[0,4]") + "}"
        #expect(parseError(rawFile(header: bytesOverflow, data: [0, 0, 0, 0]))
            == .elementCountOverflow(file: Self.file, tensor: "a", shape: [2_305_843_009_213_693_952]))
    }

    @Test func overlappingTensors() {
        let header = "{" + Self.tensor("a", shape: "[2]", offsets: "[0,8]") + ","
            + Self.tensor("b", shape: "[2]", offsets: "[4,12]") + "}"
        let error = parseError(rawFile(header: header, data: Self.twelveBytes))
        #expect(error == .overlap(file: Self.file, tensor: "b", begin: 4, previous: "a", previousEnd: 8))
        #expect(error?.description == #"test.safetensors: tensor "b" begins at data offset 4, inside tensor "a" which ends at 8"#)
        // The same bytes claimed twice.
        let twice = "{" + Self.tensor("a", shape: "[1]", offsets: "[0,4]") + ","
            + Self.tensor("b", shape: "[1]", offsets: "[0,4]") + "}"
        #expect(parseError(rawFile(header: twice, data: [0, 0, 0, 0]))
            == .overlap(file: Self.file, tensor: "b", begin: 0, previous: "a", previousEnd: 4))
    }

    @Test func gapBetweenTensors() {
        let header = "{" + Self.tensor("a", shape: "[1]", offsets: "[0,4]") + ","
            + Self.tensor("b", shape: "[1]", offsets: "[8,12]") + "}"
        let error = parseError(rawFile(header: header, data: Self.twelveBytes))
        #expect(error == .gap(file: Self.file, tensor: "b", begin: 8, expectedBegin: 4, previous: "a"))
        #expect(error?.description == #"test.safetensors: tensor "b" begins at data offset 8 but the next byte after tensor "a" is 4: the gap is not covered by any tensor"#)
        let atStart = "{" + Self.tensor("a", shape: "[2]", offsets: "[4,12]") + "}"
        #expect(parseError(rawFile(header: atStart, data: Self.twelveBytes))
            == .gap(file: Self.file, tensor: "a", begin: 4, expectedBegin: 0, previous: nil))
    }

    @Test func trailingDataNotCovered() {
        let header = "{" + Self.tensor("a", shape: "[2]", offsets: "[0,8]") + "}"
        let error = parseError(rawFile(header: header, data: Self.twelveBytes))
        #expect(error == .dataNotCovered(file: Self.file, coveredEnd: 8, dataSize: 12))
        #expect(error?.description == "test.safetensors: tensors cover data bytes [0, 8) but the data section has 12 bytes: 4 trailing bytes belong to no tensor")
        #expect(parseError(rawFile(header: "{}", data: [0])) == .dataNotCovered(file: Self.file, coveredEnd: 0, dataSize: 1))
    }

    @Test func metadataMustBeStrings() {
        let error = parseError(rawFile(header: #"{"__metadata__":{"epoch":3}}"#))
        #expect(error == .invalidMetadata(file: Self.file, key: "epoch", reason: "is the number 3, expected a string"))
        #expect(error?.description == #"test.safetensors: __metadata__ entry "epoch" is the number 3, expected a string"#)
        #expect(parseError(rawFile(header: #"{"__metadata__":["a"]}"#)) == .invalidMetadata(
            file: Self.file, key: "__metadata__", reason: "is an array, expected an object of strings"))
        let parsed = try? SafeTensorsFile(parsing: rawFile(header: #"{"__metadata__":{"format":"pt","e":"\u00e9\n"}}"#), source: Self.file)
        #expect(parsed?.metadata == ["format": "pt", "e": "é\n"])
    }

    @Test func missingFileNamesThePath() {
        let path = "/nonexistent-dir-\(UUID().uuidString)/model.safetensors"
        let error = safeTensorsError { _ = try SafeTensorsFile.read(from: URL(fileURLWithPath: path)) }
        guard case .cannotRead(let file, _) = error else {
            Issue.record("expected cannotRead, got \(String(describing: error))")
            return
        }
        #expect(file == path)
        #expect(error?.description.hasPrefix("\(path): cannot read safetensors file:") == true)
    }
}
