@testable import Autograd
import Testing

/// The caching allocator behind `Storage`: freed blocks come back for the same size, and
/// `releaseAll` (what `Storage.releaseCachedBlocks` calls between training and
/// evaluation) empties it. A private cache, so other tests' tensors do not interfere.
struct BlockCacheTests {
    @Test func reusesFreedBlocksOfTheSameSizeAndReleasesThemAll() {
        let cache = BlockCache()
        let size = 1 << 20
        let first = cache.allocate(byteCount: size)
        #expect(Int(bitPattern: first) % BlockCache.alignment == 0)
        cache.deallocate(first, byteCount: size)
        #expect(cache.cachedByteCount == size)

        // The same size gets the same block back; another size does not.
        let again = cache.allocate(byteCount: size)
        #expect(again == first)
        #expect(cache.cachedByteCount == 0)
        let other = cache.allocate(byteCount: size / 2)
        #expect(other != first)
        cache.deallocate(again, byteCount: size)
        cache.deallocate(other, byteCount: size / 2)
        #expect(cache.cachedByteCount == size + size / 2)

        cache.releaseAll()
        #expect(cache.cachedByteCount == 0)
        // Blocks below the minimum are never cached.
        let small = cache.allocate(byteCount: BlockCache.minimumBytes - 64)
        cache.deallocate(small, byteCount: BlockCache.minimumBytes - 64)
        #expect(cache.cachedByteCount == 0)
        // After a release, allocation works as before (writable, aligned).
        let fresh = cache.allocate(byteCount: size)
        fresh.storeBytes(of: 1.5 as Float, toByteOffset: size - 4, as: Float.self)
        #expect(fresh.load(fromByteOffset: size - 4, as: Float.self) == 1.5)
        cache.deallocate(fresh, byteCount: size)
        cache.releaseAll()
    }
}
