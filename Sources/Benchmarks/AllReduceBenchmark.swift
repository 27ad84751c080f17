import Distributed
import Foundation

/// The all-reduce of data-parallel training on its own: `MPI_Allreduce` (sum, in place) of
/// a float buffer the size of a model's gradients, as `mnist-train` calls it once per step.
public enum AllReduceBenchmark {
    public struct Result: Sendable {
        public var ranks: Int
        public var bytes: Int
        /// Median and best seconds of one call, over the timed calls.
        public var medianSeconds: Double
        public var bestSeconds: Double
        /// Bus bandwidth of the median call: a ring all-reduce moves 2(N−1)/N × bytes through
        /// each process's link, so this is comparable across process counts (NCCL's "busbw").
        public var busBytesPerSecond: Double { Double(bytes) * 2 * Double(ranks - 1) / Double(ranks) / medianSeconds }
    }

    /// Times `calls` all-reduces of `floats` floats after 10 untimed ones; every rank takes
    /// part, and the barrier before each call keeps one rank's lateness out of the next's time.
    public static func run(group: ProcessGroup, floats: Int, calls: Int) throws -> Result {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(floats, 1))
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1)
        var times: [Double] = []
        for call in 0..<(calls + 10) {
            try group.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            try group.allReduceSum(buffer)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if call >= 10 { times.append(seconds) }
        }
        // The slowest rank's time of each call, so that every rank reports the same numbers.
        var slowest = times
        try group.allReduceMax(&slowest)
        slowest.sort()
        return Result(ranks: group.size, bytes: floats * 4, medianSeconds: slowest[slowest.count / 2],
                      bestSeconds: slowest[0])
    }
}
