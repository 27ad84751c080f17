import Foundation
import Seeded
@testable import SafeTensors

// MARK: - Building raw files by hand

/// A safetensors file assembled from a header string and data bytes. The length prefix is
/// the header's byte count unless `lengthPrefix` overrides it (to make it lie).
func rawFile(header: String, data: [UInt8] = [], lengthPrefix: UInt64? = nil) -> Data {
    let headerBytes = Array(header.utf8)
    var length = (lengthPrefix ?? UInt64(headerBytes.count)).littleEndian
    var file = Data()
    withUnsafeBytes(of: &length) { file.append(contentsOf: $0) }
    file.append(contentsOf: headerBytes)
    file.append(contentsOf: data)
    return file
}

/// The error thrown by `body`, or nil if it did not throw a `SafeTensorsError`.
func safeTensorsError(_ body: () throws -> Void) -> SafeTensorsError? {
    do {
        try body()
        return nil
    } catch let error as SafeTensorsError {
        return error
    } catch {
        return nil
    }
}

/// Parses `data` and returns the error (nil if parsing succeeded or failed differently).
func parseError(_ data: Data, source: String = "test.safetensors") -> SafeTensorsError? {
    safeTensorsError { _ = try SafeTensorsFile(parsing: data, source: source) }
}

// MARK: - Seeded randomness for the fuzz test

/// The project's seeded generator, so the mutation test is reproducible.
typealias SplitMix64 = SeededGenerator
