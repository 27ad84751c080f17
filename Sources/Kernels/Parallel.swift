import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// How many threads the kernels use.
///
/// The count is part of the result's identity: the same seed and the same thread count
/// give bit-identical results, so work is split by index ranges that depend only on it.
/// It is task-local, not global: a run sets it for the code it wraps
/// (`withThreadCount`), and two runs in one process (tests, say) cannot change each
/// other's. OpenBLAS itself always runs single-threaded: the work is split by our own loops
/// (`forEachChunk`, `parallelSgemm`, the convolution kernels), and OpenBLAS is never
/// re-entered while threads of its own run.
public enum Parallelism {
    /// The number of threads kernels split work over here (1 unless set).
    @TaskLocal public static var threadCount: Int = 1

    /// The cores this process may run on (`activeProcessorCount`).
    public static var coreCount: Int { WorkerPool.cores }

    /// Runs `body` with `count` threads (at least 1) for the kernels it calls.
    public static func withThreadCount<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        _ = blasIsSingleThreaded
        return try $threadCount.withValue(max(1, count)) { try body() }
    }

    /// Puts OpenBLAS in single-threaded mode once per process, before its first use, and
    /// stops the threads its pthread build started when it loaded: idle, they spin on
    /// `sched_yield` for about 2²⁸ cycles (a tenth of a second) before they sleep, on the
    /// cores the kernels' own threads need (on a 2-core machine, `perf record` of
    /// `mnist-bench --ops --threads 2` found such a thread in 15% of the samples).
    /// `blas_thread_shutdown_` is looked up at run time: OpenBLAS's serial and OpenMP builds
    /// have none, and need none. Then, with no thread of OpenBLAS's left, its kernels are
    /// chosen again where it took narrower ones than the CPU runs (`BLASKernels`).
    static let blasIsSingleThreaded: Bool = {
        openblas_set_num_threads(1)
        if let shutdown = dlsym(nil, "blas_thread_shutdown_") {  // nil: RTLD_DEFAULT
            _ = unsafeBitCast(shutdown, to: (@convention(c) () -> Int32).self)()
        }
        _ = BLASKernels.chosen
        return true
    }()

    /// Runs `body(chunk, range)` over `0..<count` split into `threadCount` contiguous
    /// chunks (fewer when `count` is small). Chunk boundaries depend only on `count` and
    /// the thread count, so results are deterministic.
    public static func forEachChunk(
        _ count: Int, minimumPerChunk: Int = 1,
        _ body: (_ chunk: Int, _ range: Range<Int>) -> Void
    ) {
        let chunks = max(1, min(threadCount, count / max(1, minimumPerChunk)))
        if chunks == 1 {
            body(0, 0..<count)
            return
        }
        forEach(count, chunks: chunks, body)
    }

    /// Runs `body(range)` over `0..<count` on as many threads as `forEachChunk` would, each
    /// taking the next range of about an eighth of a chunk (a multiple of 16 items) until none
    /// are left (`forEachBlock`): for element-wise work, whose every item comes out the same
    /// whatever the split. One core of a machine shared with other work can run a third slower
    /// than the other (seen here on the 2-core Xeon, pinned `mnist-bench --ops`); equal static
    /// chunks then leave the faster thread waiting for the slower one's second half.
    public static func forEachRange(_ count: Int, minimumPerChunk: Int = 1, _ body: (_ range: Range<Int>) -> Void) {
        let chunks = max(1, min(threadCount, count / max(1, minimumPerChunk)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        let grain = (max(16, count / (8 * chunks)) + 15) / 16 * 16
        forEachBlock(count, chunks: chunks, grain: grain) { _, range in body(range) }
    }

    /// Runs `body(chunk, range)` on `chunks` threads, each taking the next `grain` items of
    /// `0..<count` until none are left: for work whose every item is computed the same way
    /// whatever the split (the forward convolutions), so that a thread slowed by the
    /// machine's other work does not hold the others back at the end of the region (the
    /// split changes from run to run, the results do not). `chunk` is the thread's index,
    /// for its scratch.
    ///
    /// Two threads take blocks from the two ends: the calling thread from the front, the
    /// worker from the back, counting the blocks taken in one atomic so that they meet
    /// without overlapping. Each core then keeps about the same half of every region's items
    /// from one region to the next (the samples whose activations it wrote for the next layer,
    /// the rows of fc1's weight gradient it wrote for the SGD step) instead of every other
    /// block. Against 2518b06, with `sparseRowProduct`'s items in row order too, LeNet's
    /// step at 2 threads on the 2-core Xeon, `scripts/ab_steps.sh 10`: 4.325 → 4.188 ms and
    /// 4.802 → 4.613 (shorter in 15 of 20 rounds); against the row order alone, 5.047 → 4.781
    /// (9 of 10). More threads share one count of the next block, as before.
    @usableFromInline
    static func forEachBlock(_ count: Int, chunks: Int, grain: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        if chunks <= 1 {
            body(0, 0..<count)
            return
        }
        if chunks == 2 {
            let blocks = (count + grain - 1) / grain
            let taken = Atomic<Int>(0)
            runInParallel(2) { chunk in
                var own = 0
                while taken.add(1, ordering: .relaxed).oldValue < blocks {
                    let block = chunk == 0 ? own : blocks - 1 - own
                    own += 1
                    body(chunk, block * grain..<min(block * grain + grain, count))
                }
            }
            return
        }
        let next = Atomic<Int>(0)
        runInParallel(chunks) { chunk in
            while true {
                let start = next.add(grain, ordering: .relaxed).oldValue
                if start >= count { return }
                body(chunk, start..<min(start + grain, count))
            }
        }
    }

    /// Runs `body(chunk, range)` over `0..<count` split into exactly `chunks` contiguous
    /// ranges (`count * i / chunks ..< count * (i + 1) / chunks`), in parallel.
    @usableFromInline
    static func forEach(_ count: Int, chunks: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) {
        // The caller's closure typically captures raw buffers; each chunk touches a
        // disjoint range of them, which is what makes sharing it across threads safe.
        runInParallel(chunks) { i in body(i, (count * i / chunks)..<(count * (i + 1) / chunks)) }
    }
}

/// Carries a value across a concurrency boundary whose safety the caller guarantees.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
