import COpenBLAS
import Dispatch
import Synchronization

/// How many threads the kernels use: both our own loops over the batch and OpenBLAS.
///
/// The count is part of the result's identity: the same seed and the same thread count
/// give bit-identical results, so work is split by index ranges that depend only on it.
public enum Parallelism {
    private static let storage = Atomic<Int>(1)

    /// The number of threads kernels split work over (at least 1).
    public static var threadCount: Int {
        _ = blasIsSingleThreaded
        return storage.load(ordering: .relaxed)
    }

    /// Puts OpenBLAS in single-threaded mode once per process, before its first use.
    static let blasIsSingleThreaded: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Sets the thread count for our loops. OpenBLAS itself always runs single-threaded:
    /// the work is split by our own loops (`forEachChunk`, `parallelSgemm`), so results
    /// depend only on this count, and OpenBLAS is never re-entered while its own threads run.
    public static func setThreadCount(_ count: Int) {
        storage.store(max(1, count), ordering: .relaxed)
        openblas_set_num_threads(1)
    }

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
        withoutActuallyEscaping(body) { escapable in
            // The caller's closure typically captures raw buffers; each chunk touches a
            // disjoint range of them, which is what makes sharing it across threads safe.
            let shared = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { i in
                let lo = count * i / chunks
                let hi = count * (i + 1) / chunks
                shared.value(i, lo..<hi)
            }
        }
    }
}

/// Carries a value across a concurrency boundary whose safety the caller guarantees.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
