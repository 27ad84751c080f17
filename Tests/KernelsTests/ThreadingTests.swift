import Foundation
@testable import Kernels
import TestSupport
import Testing

/// Tests that change `Parallelism.threadCount`; serialized so they never overlap each other.
/// (Other tests size their workspaces for 8 threads, so a change cannot starve them.)
@Suite(.serialized) struct ThreadingTests {
    static func withThreads<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        try Parallelism.withThreadCount(count, body)
    }

    struct Results: Equatable {
        var output: [Float], gradInput: [Float], gradWeight: [Float], gradBias: [Float]
        var pooled: [Float], argmax: [Int32], poolGrad: [Float]
    }

    /// LeNet's conv2 and pool2 on 13 samples (odd, so chunks are uneven).
    static func run() throws -> Results {
        let s = try Conv2dShape(input: [13, 20, 12, 12], weight: [50, 20, 5, 5])
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        var random = TestRandom(seed: 99)
        let x = random.floats(s.inputShape.reduce(1, *)), w = random.floats(s.weightShape.reduce(1, *))
        let b = random.floats(s.outChannels), g = random.floats(s.outputShape.reduce(1, *))
        let output = convForward(s, x, w, b)
        let (weightGrad, biasGrad) = convBackwardWeight(s, x, g)
        let (pooled, argmax) = poolForward(p, output)
        return Results(
            output: output, gradInput: convBackwardInput(s, g, w), gradWeight: weightGrad,
            gradBias: biasGrad, pooled: pooled, argmax: argmax,
            poolGrad: poolBackward(p, random.floats(p.outputShape.reduce(1, *)), argmax))
    }

    /// With two threads `forEachBlock` hands the calling thread blocks from the front and the
    /// worker blocks from the back: each takes a contiguous run of blocks (in increasing and
    /// decreasing order), and together they take every block once.
    @Test func twoThreadsTakeBlocksFromTheTwoEnds() {
        Self.withThreads(2) {
            for (count, grain) in [(64, 4), (65, 4), (1, 1), (7, 3), (1000, 16)] {
                var taken: [[Range<Int>]] = [[], []]
                let lock = NSLock()
                Parallelism.forEachBlock(count, chunks: 2, grain: grain) { chunk, range in
                    lock.lock()
                    taken[chunk].append(range)
                    lock.unlock()
                }
                let front = taken[0], back = taken[1]
                #expect(front.first.map { $0.lowerBound == 0 } ?? true, "count \(count)")
                #expect(back.first.map { $0.upperBound == count } ?? true, "count \(count)")
                #expect(zip(front, front.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "count \(count)")
                #expect(zip(back, back.dropFirst()).allSatisfy { $1.upperBound == $0.lowerBound }, "count \(count)")
                #expect((front.last?.upperBound ?? 0) == (back.last?.lowerBound ?? count), "count \(count)")
                #expect(front.reduce(0) { $0 + $1.count } + back.reduce(0) { $0 + $1.count } == count)
            }
        }
    }

    /// `forEachRange` hands out every item exactly once, in ranges that start on a multiple of
    /// 16 (whole 8-lane vectors for the element-wise kernels), on 1 to 4 threads.
    @Test func forEachRangeCoversEachItemOnce() {
        for threads in 1...4 {
            Self.withThreads(threads) {
                for count in [0, 1, 15, 16, 17, 1000, 16_384, 32_000, 100_003] {
                    var hits = [Int32](repeating: 0, count: count)
                    var starts = [Int](repeating: -1, count: count)
                    hits.withUnsafeMutableBufferPointer { hits in
                        starts.withUnsafeMutableBufferPointer { starts in
                            let h = UncheckedSendable(hits.baseAddress), s = UncheckedSendable(starts.baseAddress)
                            Parallelism.forEachRange(count, minimumPerChunk: 1000) { range in
                                s.value![range.lowerBound] = range.lowerBound
                                for i in range { h.value![i] += 1 }
                            }
                        }
                    }
                    #expect(hits.allSatisfy { $0 == 1 }, "count \(count), \(threads) threads")
                    #expect(starts.allSatisfy { $0 < 0 || $0 % 16 == 0 }, "count \(count), \(threads) threads")
                }
            }
        }
    }

    @Test func sameThreadCountIsBitIdentical() throws {
        let one = try Self.withThreads(1) { (try Self.run(), try Self.run()) }
        #expect(one.0 == one.1)
        let two = try Self.withThreads(2) { (try Self.run(), try Self.run()) }
        #expect(two.0 == two.1)
        // Forward, input gradient and pooling do not depend on the thread count at all;
        // the weight and bias gradients differ only by the order of the batch reduction.
        #expect(one.0.output == two.0.output)
        #expect(one.0.gradInput == two.0.gradInput)
        #expect(one.0.pooled == two.0.pooled && one.0.argmax == two.0.argmax && one.0.poolGrad == two.0.poolGrad)
        if let m = compareClose(two.0.gradWeight, one.0.gradWeight.map(Double.init), label: "grad weight 2 vs 1 threads") { Issue.record(Comment(rawValue: m)) }
        if let m = compareClose(two.0.gradBias, one.0.gradBias.map(Double.init), label: "grad bias 2 vs 1 threads") { Issue.record(Comment(rawValue: m)) }
    }
}
