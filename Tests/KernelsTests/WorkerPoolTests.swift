@testable import Kernels
import Testing

/// The spinning worker pool behind `Parallelism.forEachChunk` and the convolution kernels:
/// every chunk runs exactly once per region, also with concurrent and nested callers.
@Suite struct WorkerPoolTests {
    /// Runs `regions` regions of `chunks` chunks, each chunk adding its index + 1 to its own
    /// slot; returns the slots.
    static func run(regions: Int, chunks: Int) -> [Int] {
        var slots = [Int](repeating: 0, count: chunks)
        slots.withUnsafeMutableBufferPointer { slots in
            let base = slots.baseAddress!
            for _ in 0..<regions {
                runInParallel(chunks) { i in base[i] += i + 1 }
            }
        }
        return slots
    }

    /// Up to 2 chunks run on the pool on a 2-core machine; more go to Dispatch.
    @Test func everyChunkRunsOncePerRegion() {
        for chunks in 1...4 {
            #expect(Self.run(regions: 20_000, chunks: chunks) == (0..<chunks).map { 20_000 * ($0 + 1) })
        }
    }

    @Test func concurrentCallersEachGetTheirChunks() async {
        // Four callers at once: one holds the pool, the others fall back to Dispatch.
        let results = await withTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 { group.addTask { Self.run(regions: 5_000, chunks: 2) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 4)
        for slots in results { #expect(slots == [5_000, 10_000]) }
    }

    @Test func nestedRegionsRun() {
        var totals = [Int](repeating: 0, count: 6)
        totals.withUnsafeMutableBufferPointer { totals in
            let base = totals.baseAddress!
            for _ in 0..<1_000 {
                runInParallel(2) { outer in
                    runInParallel(3) { inner in base[outer * 3 + inner] += 1 }
                }
            }
        }
        #expect(totals == [Int](repeating: 1_000, count: 6))
    }
}
