import Foundation
import Testing
import TestSupport
@testable import SafeTensors

// MARK: - Seeded mutation fuzzing

/// Mutates valid files many ways and checks the reader's contract on every variant: it either
/// throws a `SafeTensorsError` whose message names the file, or returns tensors that are
/// consistent (bytes = elements × dtype size) and whose bytes together fit in the file's data
/// section — the reader copies tensor bytes out of the file and allocates nothing sized by an
/// unchecked header field, so nothing it returns can exceed the file. Whatever it accepts
/// must also re-serialize and parse back to the same tensors.
@Suite struct SafeTensorsFuzzTests {
    static let source = "fuzz.safetensors"

    /// A small valid file with several dtypes, a scalar, an empty tensor and metadata.
    static func smallFile() throws -> Data {
        try SafeTensorsFile(
            tensors: [
                "w": try TensorEntry(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3]),
                "s": try TensorEntry(floats: [7], shape: []),
                "e": try TensorEntry(floats: [], shape: [0]),
                "i": try TensorEntry(dtype: .I64, shape: [2], bytes: Data(repeating: 1, count: 16)),
                "h": try TensorEntry(dtype: .F16, shape: [3], bytes: Data([0, 0x3C, 0, 0x40, 0xFF, 0x7F])),
            ],
            metadata: ["format": "pt"]
        ).serialized()
    }

    struct Outcome {
        var accepted = 0
        var rejected = 0
    }

    /// Parses one variant and checks the contract; returns whether it was accepted.
    static func check(_ variant: Data, label: String) -> Bool {
        do {
            let parsed = try SafeTensorsFile(parsing: variant, source: source)
            var total = 0
            for (name, entry) in parsed.tensors {
                #expect(entry.bytes.count == entry.elementCount * entry.dtype.byteSize, "\(label): \(name) inconsistent")
                total += entry.bytes.count
            }
            #expect(total <= variant.count, "\(label): tensors hold \(total) bytes, file has \(variant.count)")
            let again = try SafeTensorsFile(parsing: parsed.serialized(), source: source)
            #expect(again.tensors == parsed.tensors && again.metadata == parsed.metadata, "\(label): round trip differs")
            return true
        } catch let error as SafeTensorsError {
            let message = error.description
            #expect(message.hasPrefix(source + ": "), "\(label): message does not name the file: \(message)")
            return false
        } catch {
            Issue.record("\(label): unexpected error type \(type(of: error)): \(error)")
            return false
        }
    }

    /// One random mutation of `original`, whose header is `headerLength` bytes long.
    static func mutate(_ original: Data, headerLength: Int, using random: inout SplitMix64) -> Data {
        var bytes = [UInt8](original)
        let headerEnd = 8 + headerLength
        func headerPosition() -> Int { Int.random(in: 8..<headerEnd, using: &random) }
        switch Int.random(in: 0..<8, using: &random) {
        case 0:  // bit flips, mostly in the header
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let position = Bool.random(using: &random) ? headerPosition() : Int.random(in: 0..<bytes.count, using: &random)
                bytes[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            }
        case 1:  // truncation
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
        case 2:  // header length lies
            let lies: [UInt64] = [
                0, 1, 7, UInt64(headerLength) - 1, UInt64(headerLength) + 1, UInt64(headerLength) + 8,
                UInt64(bytes.count), 1 << 63, UInt64.max, UInt64(Int.max), UInt64.random(in: 0...UInt64.max, using: &random),
                UInt64.random(in: 0...UInt64(bytes.count * 2), using: &random),
            ]
            let lie = lies[Int.random(in: 0..<lies.count, using: &random)]
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: lie >> (8 * UInt64(index))) }
        case 3, 4:  // replace a number in the header by a hostile one, keeping the prefix honest
            let digits = (8..<headerEnd).filter { bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") }
            guard let start = digits.randomElement(using: &random) else { break }
            var end = start
            while end < headerEnd, bytes[end] >= UInt8(ascii: "0"), bytes[end] <= UInt8(ascii: "9") { end += 1 }
            let hostile = [
                "18446744073709551615", "9223372036854775807", "9223372036854775808", "4611686018427387904",
                "4294967296", "-1", "1e30", "1.5", "0", "00", "1", "2147483647", "99999999999999999999999",
                String(Int.random(in: 0...100_000, using: &random)), "null", "\"4\"", "[]",
            ]
            let replacement = Array(hostile[Int.random(in: 0..<hostile.count, using: &random)].utf8)
            bytes.replaceSubrange(start..<end, with: replacement)
            let newLength = UInt64(headerLength - (end - start) + replacement.count)
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: newLength >> (8 * UInt64(index))) }
        case 5:  // JSON garbage inserted into the header, prefix updated
            let garbage = ["{", "}", "[", "]", "\"", "\\", "\\u", "\\ud800", ",", ":", "null", "\u{0}", "\u{FF}",
                           "\"dtype\":\"F32\"", "\"__metadata__\":", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", " "]
            var inserted = Array(garbage[Int.random(in: 0..<garbage.count, using: &random)].utf8)
            if Int.random(in: 0..<10, using: &random) == 0 { inserted = (0..<Int.random(in: 1...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } }
            bytes.insert(contentsOf: inserted, at: headerPosition())
            let newLength = UInt64(headerLength + inserted.count)
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: newLength >> (8 * UInt64(index))) }
        case 6:  // delete or duplicate a range of the header, prefix updated
            let start = headerPosition()
            let end = min(headerEnd, start + Int.random(in: 1...40, using: &random))
            var delta = -(end - start)
            if Bool.random(using: &random) {
                bytes.removeSubrange(start..<end)
            } else {
                bytes.insert(contentsOf: Array(bytes[start..<end]), at: end)
                delta = end - start
            }
            let newLength = UInt64(headerLength + delta)
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: newLength >> (8 * UInt64(index))) }
        default:  // swap two header bytes and flip a data byte
            let first = headerPosition(), second = headerPosition()
            bytes.swapAt(first, second)
            if bytes.count > headerEnd { bytes[Int.random(in: headerEnd..<bytes.count, using: &random)] ^= 0xFF }
        }
        return Data(bytes)
    }

    static func headerLength(of data: Data) -> Int {
        (0..<8).reduce(0) { $0 | Int(data[$1]) << (8 * $1) }
    }

    static func run(_ original: Data, variants: Int, seed: UInt64, label: String) -> Outcome {
        var random = SplitMix64(seed: seed)
        var outcome = Outcome()
        let length = headerLength(of: original)
        for index in 0..<variants {
            let variant = mutate(original, headerLength: length, using: &random)
            if check(variant, label: "\(label) variant \(index)") { outcome.accepted += 1 } else { outcome.rejected += 1 }
        }
        return outcome
    }

    @Test func mutatedSmallFilesNeverCrash() throws {
        let original = try Self.smallFile()
        #expect(Self.check(original, label: "small original"))
        let outcome = Self.run(original, variants: 15_000, seed: 0x5AFE_7E45, label: "small")
        print("fuzz small file: \(outcome.accepted) accepted, \(outcome.rejected) rejected")
        #expect(outcome.rejected > outcome.accepted)  // the mutations really do break files
    }

    /// The whole real lenet_init file (its header's offsets need all 1.7 MB of data); most
    /// mutations hit the 600-byte header and are rejected before any data is copied.
    @Test func mutatedLenetHeadersNeverCrash() throws {
        let original = try Data(contentsOf: Shared.referenceDirectory.appendingPathComponent("lenet_init.safetensors"))
        #expect(Self.check(original, label: "lenet original"))
        let outcome = Self.run(original, variants: 5_000, seed: 0x1E7E_7001, label: "lenet")
        print("fuzz lenet_init: \(outcome.accepted) accepted, \(outcome.rejected) rejected")
        #expect(outcome.rejected > outcome.accepted)
    }
}
