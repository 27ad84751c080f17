import Foundation
import MNISTData
import Seeded
import Testing
import TestSupport
@testable import Training

// MARK: - Seeded mutation tests of the readers
//
// Bounded, deterministic stand-ins for the libFuzzer runs (Fuzz/run-idx.sh,
// Fuzz/run-config.sh): a few thousand mutants of small valid inputs, each of which must be
// either accepted consistently or rejected with the reader's typed error, never crash and
// never hang (the whole batch has a time budget).

/// Mutates `bytes` in one of six ways, drawn from `generator`.
func mutate(_ bytes: [UInt8], _ generator: inout SeededGenerator) -> [UInt8] {
    var out = bytes
    let rounds = 1 + generator.nextInt(below: 3)
    for _ in 0..<rounds {
        let kind = generator.nextInt(below: 6)
        let index = out.isEmpty ? 0 : generator.nextInt(below: out.count)
        switch kind {
        case 0 where !out.isEmpty:  // flip one bit
            out[index] ^= UInt8(1) << UInt8(generator.nextInt(below: 8))
        case 1 where !out.isEmpty:  // set a byte to an interesting value
            out[index] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x03][generator.nextInt(below: 7)]
        case 2:  // truncate
            out = Array(out.prefix(out.isEmpty ? 0 : generator.nextInt(below: out.count)))
        case 3:  // insert random bytes
            let extra = (0..<(1 + generator.nextInt(below: 8))).map { _ in UInt8(generator.nextInt(below: 256)) }
            out.insert(contentsOf: extra, at: index)
        case 4 where out.count > 1:  // delete a range
            let end = min(out.count, index + 1 + generator.nextInt(below: 16))
            out.removeSubrange(index..<end)
        default:  // duplicate a chunk at the end
            out += out[index...].prefix(32)
        }
    }
    return out
}

/// The payload size a raw IDX header declares (nil when the header is not a valid one).
func declaredPayload(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, bytes[2] == 8 else { return nil }
    let rank = Int(bytes[3])
    guard bytes.count >= 4 + 4 * rank else { return nil }
    var product = 1
    for d in 0..<rank {
        let o = 4 + 4 * d
        let value = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
        let (p, overflow) = product.multipliedReportingOverflow(by: value)
        if overflow { return Int.max }
        product = p
    }
    return product
}

func idxImages(count: Int, rows: Int, cols: Int) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, 8, 3]
    for v in [count, rows, cols] { bytes += [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    bytes += (0..<(count * rows * cols)).map { UInt8(($0 * 37) & 255) }
    return bytes
}

func idxLabels(_ labels: [UInt8]) -> [UInt8] {
    let n = labels.count
    return [0, 0, 8, 1, UInt8(n >> 24 & 255), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] + labels
}

/// gzip of `bytes` via the system's gzip, so the reader sees a real gzip stream.
func gzipped(_ bytes: [UInt8], in directory: URL) throws -> [UInt8] {
    let url = directory.appendingPathComponent("seed-\(UUID().uuidString)")
    try Data(bytes).write(to: url)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["gzip", "-n", "-f", url.path]
    try process.run()
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "gzip failed")
    return Array(try Data(contentsOf: url.appendingPathExtension("gz")))
}

@Suite("Reliability: seeded mutation of the readers")
struct ReliabilityMutationTests {
    @Test("3000 IDX/gzip mutants: accepted consistently or rejected with a DataError naming the file")
    func idxMutants() throws {
        let directory = try makeTemporaryDirectory("reliability-idx")
        defer { try? FileManager.default.removeItem(at: directory) }
        let images = idxImages(count: 3, rows: 5, cols: 4)
        let labels = idxLabels([0, 9, 3])
        let seeds: [(bytes: [UInt8], magic: UInt32)] = [
            (images, IDXMagic.images), (labels, IDXMagic.labels),
            (try gzipped(images, in: directory), IDXMagic.images), (try gzipped(labels, in: directory), IDXMagic.labels),
        ]
        var generator = SeededGenerator(seed: 2024)
        let file = directory.appendingPathComponent("mutant-idx3-ubyte")
        var accepted = 0, rejected = 0, skippedLarge = 0
        var kinds: Set<String> = []
        let start = Date()
        for trial in 0..<3000 {
            let seed = seeds[trial % seeds.count]
            let bytes = mutate(seed.bytes, &generator)
            // Headers that claim a huge payload cost at most one 8 MiB chunk each now
            // (`idxHeaderClaimsBoundAllocation`); still counted, to keep this loop cheap.
            if let declared = declaredPayload(bytes), declared > 64 << 20, declared <= 1 << 31 { skippedLarge += 1; continue }
            try Data(bytes).write(to: file)
            do {
                let array = try IDXReader.read(file, expectedMagic: seed.magic)
                #expect(array.bytes.count == array.dimensions.reduce(1, *), "trial \(trial): inconsistent payload")
                #expect(array.dimensions.allSatisfy { $0 > 0 })
                accepted += 1
            } catch let error as DataError {
                #expect(error.description.contains(file.path), "trial \(trial): message does not name the file: \(error)")
                kinds.insert(String(describing: error).components(separatedBy: ":").dropFirst().first ?? "")
                rejected += 1
            }
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 60, "3000 mutants took \(seconds) s: a hang?")
        #expect(rejected > 1000, "only \(rejected) mutants rejected: the mutator is too gentle")
        #expect(accepted > 10, "only \(accepted) mutants accepted")
        #expect(skippedLarge < 300)
    }

    @Test("IDX header claiming 256 MiB in a 16-byte file: rejected without a 256 MiB allocation")
    func idxHeaderClaimsBoundAllocation() throws {
        let directory = try makeTemporaryDirectory("reliability-idx-claim")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("claims-idx3-ubyte")
        try Data(idxImages(count: 1, rows: 0, cols: 0).prefix(4) + [0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]).write(to: file)
        let before = peakResidentBytes()
        #expect(throws: DataError.self) { try IDXReader.read(file, expectedMagic: IDXMagic.images) }
        let growth = peakResidentBytes() - before
        // ru_maxrss is a process-wide peak: a test running in parallel that already peaked
        // higher can only hide growth, never invent it. The firm guard is the malloc limit
        // of Fuzz/run-idx.sh.
        #expect(growth < 64 << 20, "peak RSS grew by \(growth >> 20) MiB reading a 16-byte file")
    }

    @Test("3000 config mutants: decoded and round-tripped, or rejected with a ConfigError naming the file")
    func configMutants() throws {
        let names = ["smoke.json", "lenet.json", "lenet-adam.json", "lenet5.json"]
        let seeds = try names.map { try Data(contentsOf: Shared.packageRoot.appendingPathComponent("configs/\($0)")) }
        var generator = SeededGenerator(seed: 7)
        var accepted = 0, rejected = 0
        var paths: Set<String> = []
        let start = Date()
        for trial in 0..<3000 {
            let seed = seeds[trial % seeds.count]
            let data: Data
            if trial % 2 == 0 {
                data = Data(mutate(Array(seed), &generator))
            } else {
                data = try structuralMutant(seed, &generator)
            }
            do {
                let config = try TrainingConfig.decode(data, file: "mutant-\(trial).json")
                // The resolved JSON spells out defaults (a pool's stride), so compare it, not the
                // structs: decoding it must give the same resolved JSON again.
                let again = try TrainingConfig.decode(Data(config.json.utf8), file: "round-trip")
                #expect(again.json == config.json, "trial \(trial): the resolved config does not round-trip")
                accepted += 1
            } catch let error as ConfigError {
                #expect(error.file == "mutant-\(trial).json")
                #expect(!error.message.isEmpty)
                paths.insert(error.path)
                rejected += 1
            }
        }
        let seconds = Date().timeIntervalSince(start)
        #expect(seconds < 60, "3000 mutants took \(seconds) s: a hang?")
        #expect(accepted > 100 && rejected > 1000, "accepted \(accepted), rejected \(rejected)")
        #expect(paths.count > 20, "errors named only \(paths.count) distinct key paths")
    }

    /// Parses `seed`, changes one value at a random key path (or deletes it, or adds an
    /// unknown key next to it), and serializes again.
    func structuralMutant(_ seed: Data, _ generator: inout SeededGenerator) throws -> Data {
        var root = try #require(try JSONSerialization.jsonObject(with: seed) as? [String: Any])
        let replacements: [Any] = [NSNull(), -1, 0, 1, 2.5, 1e300, -1e300, 4_294_967_296, "x", "", true, false,
                                   [Any](), [1, 2], [1, 2, 3], [String: Any](), ["type": "relu"], 65_537, 1e-300]
        func edit(_ value: Any, depth: Int) -> Any? {
            if var object = value as? [String: Any], !object.isEmpty, depth < 4, generator.nextInt(below: 4) != 0 {
                let keys = object.keys.sorted()
                let key = keys[generator.nextInt(below: keys.count)]
                switch generator.nextInt(below: 8) {
                case 0: object[key] = nil
                case 1: object[key + "_typo"] = object[key]
                default: object[key] = edit(object[key] as Any, depth: depth + 1)
                }
                return object
            }
            if var list = value as? [Any], !list.isEmpty, depth < 4, generator.nextInt(below: 3) != 0 {
                let i = generator.nextInt(below: list.count)
                list[i] = edit(list[i], depth: depth + 1) ?? NSNull()
                return list
            }
            return replacements[generator.nextInt(below: replacements.count)]
        }
        root = edit(root, depth: 0) as? [String: Any] ?? root
        return try JSONSerialization.data(withJSONObject: root)
    }
}

/// The process's peak resident set size in bytes (ru_maxrss is in KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Int(usage.ru_maxrss) * 1024
}
