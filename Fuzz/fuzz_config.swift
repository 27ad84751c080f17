import Foundation
import Training

// MARK: - libFuzzer entry point for the config decoder

/// Linked by `run-config.sh` against the Training module built with coverage. For every
/// input: decode it as a config; if it is accepted, its resolved JSON must decode to the
/// same config. Anything other than a `ConfigError` or a round-tripping config aborts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    do {
        let config = try TrainingConfig.decode(data, file: "fuzz-input")
        let again = try TrainingConfig.decode(Data(config.json.utf8), file: "fuzz-roundtrip")
        if again != config { fatalError("the resolved config does not round-trip:\n\(config.json)\n\(again.json)") }
    } catch is ConfigError {
        // Rejected with a typed error: the expected outcome for garbage.
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    return 0
}
