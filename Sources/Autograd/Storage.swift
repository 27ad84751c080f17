import Foundation
import Kernels
import Synchronization

/// A block of `count` floats owned by one or more tensors (views share it).
///
/// Plain manual memory: kernels get raw pointers with no copy-on-write, bounds checks or
/// retain/release in their loops. The block is 64-byte aligned for vector loads, and comes
/// from `BlockCache`, so the same sizes allocated step after step reuse the same memory.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Tensors created over this block so far (never decremented): more than one means a
    /// view exists or existed, and a gradient over it is copied, not taken
    /// (`Tensor.accumulateGrad(taking:)`). Atomic, since `Storage` is `Sendable`: tensors over
    /// one storage may be made on several threads.
    private let tensors = Atomic<Int>(0)

    /// Counts a tensor created over this block (`Tensor.init`).
    func noteTensor() { tensors.add(1, ordering: .relaxed) }

    /// Whether a second tensor was ever created over this block (a view: `reshaped`,
    /// `data`, `detach`).
    var hasHadViews: Bool { tensors.load(ordering: .relaxed) > 1 }

    /// Uninitialised storage; the caller fills every element.
    public init(uninitializedCount count: Int) {
        self.count = count
        pointer = BlockCache.shared.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride)
            .bindMemory(to: Float.self, capacity: max(1, count))
    }

    /// Storage filled with `value`.
    public convenience init(count: Int, repeating value: Float) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: value, count: count)
    }

    /// Storage holding a copy of `values`, split over the threads when large: until b46b4e9
    /// each step copied every parameter's gradient here (`accumulateGrad`, 1.7 MB for
    /// LeNet; now taken when nothing else holds it), which on the calling thread alone
    /// left the others waiting (`perf`: memmove in 1.7% of a 2-thread LeNet run's samples);
    /// each step's batch of images is copied here too (LeNet's 64: 200 KB).
    public convenience init(copying values: UnsafeBufferPointer<Float>) {
        self.init(uninitializedCount: values.count)
        guard let base = values.baseAddress else { return }
        let source = UncheckedSendable(base), destination = UncheckedSendable(pointer)
        Parallelism.forEachRange(values.count, minimumPerChunk: elementwiseGrain) { range in
            (destination.value + range.lowerBound).initialize(from: source.value + range.lowerBound, count: range.count)
        }
    }

    deinit {
        BlockCache.shared.deallocate(UnsafeMutableRawPointer(pointer), byteCount: max(1, count) * MemoryLayout<Float>.stride)
    }

    /// Returns every cached free block to the system, and the C heap's free pages with it.
    ///
    /// The cache serves one phase's sizes: training's batch keeps reusing its blocks. When
    /// the phase changes (evaluation, with another batch size, or training again after it),
    /// the old phase's blocks would only sit beside the new ones. The trainer calls this
    /// around each round of evaluations (and after loading the data, for the C heaps), the
    /// benchmarks before evaluating: the peak is the larger phase, not the sum of both.
    public static func releaseCachedBlocks() {
        BlockCache.shared.releaseAll()
    }
}

/// A caching allocator keyed by size, for the large blocks of activations and gradients.
///
/// A training step allocates the same sizes in the same order every time; returning freed
/// blocks to the system and asking for them again costs page faults and zeroing (several
/// milliseconds a step for LeNet). Freed blocks of at least `minimumBytes` are kept per
/// size, up to `limitBytes` in all, and handed out again. Guarded by an `NSLock` (a
/// pthread mutex, which ThreadSanitizer understands; `Synchronization.Mutex` it does not).
final class BlockCache: @unchecked Sendable {
    static let shared = BlockCache()
    static let minimumBytes = 16 * 1024
    static let limitBytes = 128 * 1024 * 1024
    static let alignment = 64

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]  // guarded by `lock`
    private var cachedBytes = 0  // guarded by `lock`

    /// Bytes held in free blocks, ready to be handed out again.
    var cachedByteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return cachedBytes
    }

    func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount >= Self.minimumBytes {
            lock.lock()
            let reused = free[byteCount]?.popLast()
            if reused != nil { cachedBytes -= byteCount }
            lock.unlock()
            if let reused { return reused }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: Self.alignment)
    }

    func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= Self.minimumBytes {
            lock.lock()
            let keep = cachedBytes + byteCount <= Self.limitBytes
            if keep {
                free[byteCount, default: []].append(pointer)
                cachedBytes += byteCount
            }
            lock.unlock()
            if keep { return }
        }
        pointer.deallocate()
    }

    /// Frees every cached block, then asks the C allocator to give back the free pages of
    /// its heap (blocks below glibc's mmap threshold live there, and freeing them alone
    /// leaves their pages resident).
    func releaseAll() {
        lock.lock()
        let pointers = Array(free.values.joined())
        free.removeAll()
        cachedBytes = 0
        lock.unlock()
        for pointer in pointers { pointer.deallocate() }
        #if canImport(Glibc)
        _ = glibcMallocTrim(0)
        #endif
    }
}

#if canImport(Glibc)
/// glibc's `int malloc_trim(size_t pad)` (declared in `<malloc.h>`, which Swift's Glibc
/// module does not export).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
