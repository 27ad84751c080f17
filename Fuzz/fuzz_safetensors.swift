import Foundation

// MARK: - libFuzzer entry point for the safetensors reader

/// Compiled together with Sources/SafeTensors/*.swift by `run-safetensors.sh` (so the
/// reader's internal types are in this module). For every input: parse it; if it is
/// accepted, check that every tensor is consistent, that the tensors fit in the input, and
/// that re-serializing and parsing again gives the same contents. Any other outcome than a
/// `SafeTensorsError` or a consistent file aborts, which libFuzzer reports as a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    do {
        let file = try SafeTensorsFile(parsing: data, source: "fuzz-input")
        var total = 0
        for (_, entry) in file.tensors {
            if entry.bytes.count != entry.elementCount * entry.dtype.byteSize { fatalError("inconsistent entry") }
            total += entry.bytes.count
        }
        if total > data.count { fatalError("tensors hold more bytes than the input") }
        let again = try SafeTensorsFile(parsing: file.serialized(), source: "fuzz-roundtrip")
        if again.tensors != file.tensors || again.metadata != file.metadata { fatalError("round trip differs") }
        for (_, entry) in file.tensors where [.F32, .F64, .F16, .BF16].contains(entry.dtype) {
            _ = try entry.floats()
        }
    } catch is SafeTensorsError {
        // Rejected with a typed error: the expected outcome for garbage.
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    return 0
}
