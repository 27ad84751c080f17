import Foundation

// MARK: - libFuzzer entry point for the IDX / gzip reader

/// Compiled together with Sources/MNISTData/IDXReader.swift and DataError.swift by
/// `run-idx.sh` (so the reader's internal types are in this module). The reader takes a
/// URL, so every input is written to one scratch file (in /dev/shm when there is one) and
/// read back with both magic numbers. Accepted input must decode to exactly the bytes its
/// dimensions declare, no more than the input could hold (raw: the input itself; gzip:
/// deflate's 1032:1 limit); anything other than an accepted file or a `DataError` aborts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    let url = FuzzScratch.url
    do { try data.write(to: url) } catch { fatalError("cannot write the scratch file \(url.path): \(error)") }
    for magic in [IDXMagic.images, IDXMagic.labels] {
        do {
            let array = try IDXReader.read(url, expectedMagic: magic)
            let declared = array.dimensions.reduce(1, *)
            if array.dimensions.contains(where: { $0 <= 0 }) { fatalError("accepted a zero dimension") }
            if array.bytes.count != declared { fatalError("payload \(array.bytes.count) != declared \(declared)") }
            let isGzip = data.count >= 2 && data[0] == 0x1f && data[1] == 0x8b
            let limit = isGzip ? data.count * 1032 : data.count
            if declared > limit { fatalError("decoded \(declared) bytes from a \(data.count)-byte input") }
        } catch is DataError {
            // Rejected with a typed error: the expected outcome for garbage.
        } catch {
            fatalError("unexpected error type: \(error)")
        }
    }
    return 0
}

/// One scratch file per fuzzing process.
enum FuzzScratch {
    static let url: URL = {
        let directory = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return URL(fileURLWithPath: directory).appendingPathComponent("fuzz-idx-\(getpid()).bin")
    }()
}
