// MARK: - Weights prepared once for a pass in which they do not change (evaluation)

/// Weights a kernel lays out or transforms before it multiplies (Winograd's `U = G g Gᵀ`),
/// kept across the calls of a scope whose weights do not change, so that each is prepared
/// once per scope rather than once per batch: an evaluation (`Evaluator`), whose 100 batches
/// of LeNet each transformed conv2's weight again in Double (4.5–4.9% of the evaluation at 1
/// thread in an AVX2 build on the Xeon: `OPENBLAS_CORETYPE=Haswell perf record -F 5000 -e
/// cpu-clock mnist-bench --threads 1 --steps 1 --json`, three runs).
///
/// The scope promises that no weight a kernel reads within it changes, nor is freed and
/// another allocated in its place: entries are found by the weight's address and the
/// layout's size. One scope serves one thread (each evaluating lane opens its own); its
/// memory is freed when it ends.
public final class FixedWeights: @unchecked Sendable {
    /// The scope the calling code runs in, if any (`whileFixed`).
    @TaskLocal public static var current: FixedWeights?

    /// Runs `body` in a new scope: kernels it calls prepare each weight once.
    public static func whileFixed<R>(_ body: () throws -> R) rethrows -> R {
        try $current.withValue(FixedWeights()) { try body() }
    }

    private struct Key: Hashable {
        var weight: Int
        var layout: String
        var count: Int
    }

    private var entries: [Key: UnsafeMutableRawPointer] = [:]

    private init() {}

    /// Entries the scope holds.
    var preparedCount: Int { entries.count }

    deinit {
        for memory in entries.values { memory.deallocate() }
    }

    /// `count` floats (64-byte aligned) holding `weight` prepared by `fill` in the layout
    /// named `layout`: filled on the first call for this weight, layout and size in the
    /// scope, then returned as they are.
    func prepared(
        _ weight: UnsafePointer<Float>, layout: String, count: Int, fill: (UnsafeMutablePointer<Float>) -> Void
    ) -> UnsafePointer<Float> {
        let key = Key(weight: Int(bitPattern: weight), layout: layout, count: count)
        if let memory = entries[key] { return UnsafePointer(memory.assumingMemoryBound(to: Float.self)) }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        let floats = memory.bindMemory(to: Float.self, capacity: count)
        fill(floats)
        entries[key] = memory
        return UnsafePointer(floats)
    }
}
