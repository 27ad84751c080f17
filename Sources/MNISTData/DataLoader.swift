import Foundation
import Kernels
import Seeded

// MARK: - Batch

/// One mini-batch, as plain arrays: images `(count, channels, height, width)` and labels `(count)`.
public struct Batch: Sendable, Equatable {
    /// `count * channels * height * width` floats, NCHW row-major.
    public var images: [Float]
    /// `count` class indices.
    public var labels: [Int32]
    /// The dataset index of each sample, in batch order (`count` entries).
    public var indices: [Int]
    public var count: Int
    /// With a shard (data-parallel training): the whole batch's size over all ranks, of which
    /// this is `count` samples starting at `globalOffset`. Otherwise `count` and 0.
    public var globalCount: Int
    public var globalOffset: Int
    public var channels: Int
    public var height: Int
    public var width: Int

    /// `[count, channels, height, width]`, like `torch.Size([32, 1, 28, 28])`.
    public var imageShape: [Int] { [count, channels, height, width] }
    /// `[count]`, like `torch.Size([32])`.
    public var labelShape: [Int] { [count] }
}

// MARK: - DataLoader

/// Cuts a dataset into batches, optionally shuffled and augmented, deterministically.
///
/// The order of an epoch is a permutation drawn from `SeededGenerator(seed: seed, stream: epoch)`,
/// and the augmentation of a batch from a generator keyed by (seed, epoch, batch index): so any
/// batch depends only on (seed, epoch, batch index), resuming mid-epoch needs no saved random
/// state, and prefetching on a background thread cannot change the results.
public struct DataLoader: Sendable {
    public let dataset: Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Drop a last batch smaller than `batchSize` (otherwise it is returned as is).
    public let dropLast: Bool
    public let transform: Transform
    /// Prepare the next batch on a background thread while the current one is used, when a
    /// core is left over by the kernels' threads (`BatchSequence`; cores as this process sees
    /// them: the ranks of an unbound mpirun job on the same cores do not count).
    public let prefetch: Bool
    /// Data-parallel training: this process builds only its part of each batch, the
    /// positions `count * index / ranks ..< count * (index + 1) / ranks` (`Shard.range`), with
    /// the same order and the same augmentation draws as the whole batch would have.
    public let shard: Shard

    /// Part `index` of `count` equal parts (as equal as the batch allows).
    public struct Shard: Sendable, Hashable {
        public var index: Int
        public var count: Int
        public init(index: Int, count: Int) {
            self.index = index
            self.count = count
        }
        public static let whole = Shard(index: 0, count: 1)
        /// This shard's positions in a batch of `batchCount` samples.
        public func range(of batchCount: Int) -> Range<Int> {
            (batchCount * index / count)..<(batchCount * (index + 1) / count)
        }
    }

    public init(
        dataset: Dataset, batchSize: Int, shuffle: Bool, seed: UInt64, dropLast: Bool = false,
        transform: Transform = .mnist, prefetch: Bool = true, shard: Shard = .whole
    ) throws {
        guard batchSize > 0 else {
            throw DataError.invalidLoaderSetting("batch size must be at least 1, got \(batchSize)")
        }
        guard shard.count >= 1, (0..<shard.count).contains(shard.index) else {
            throw DataError.invalidLoaderSetting("shard \(shard.index) of \(shard.count) does not exist")
        }
        self.shard = shard
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.transform = transform
        self.prefetch = prefetch
    }

    /// Batches per epoch: `count / batchSize`, plus one for a partial batch unless `dropLast`.
    public var batchCount: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The dataset indices of an epoch, in order: a seeded permutation when shuffling.
    public func order(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<dataset.count) }
        var generator = SeededGenerator(seed: seed, stream: UInt64(truncatingIfNeeded: epoch))
        return generator.permutation(dataset.count)
    }

    /// The batches of `epoch` from `batchIndex` on (for resuming mid-epoch).
    public func batches(epoch: Int, startingAt batchIndex: Int = 0) -> BatchSequence {
        BatchSequence(loader: self, epoch: epoch, startIndex: max(0, batchIndex))
    }

    /// Builds batch `batchIndex` of an epoch whose order is `order` (`order(epoch:)`), on the
    /// calling thread and, with a thread count above one (`Parallelism`) and 32 images or more,
    /// the kernels' other threads, in blocks of at least 16 images (the same batch whatever
    /// the split: a block first makes the augmentation draws of the images before it in the
    /// whole batch, other ranks' shares included). The batches' sequence does this one batch
    /// after the other; a prefetched batch is built on the background thread alone (the
    /// thread count is task-local and not carried there); a caller with threads of its own
    /// may build different batches on each (`Evaluator`, at one thread each).
    public func makeBatch(order: [Int], epoch: Int, batchIndex: Int) -> Batch {
        let batchStart = batchIndex * batchSize
        let globalCount = max(0, min(batchStart + batchSize, order.count) - batchStart)
        let part = shard.range(of: globalCount)
        let start = batchStart + part.lowerBound
        let count = part.count
        let pixelsPerImage = dataset.pixelsPerImage
        let indices = Array(order[start..<(start + count)])
        let (dataset, transform) = (self.dataset, self.transform)
        let labels = indices.map { Int32(dataset.labels[$0]) }
        // Augmentation draws depend only on (seed, epoch, batch index, position in batch).
        let stream = UInt64(truncatingIfNeeded: epoch) << 32 | UInt64(truncatingIfNeeded: batchIndex)
        let seed = self.seed ^ 0xA5A5_5A5A_0F0F_F0F0
        let images = [Float](unsafeUninitializedCapacity: count * pixelsPerImage) { output, initialized in
            let destination = UncheckedSendable(output.baseAddress)
            Parallelism.forEachRange(count, minimumPerChunk: 16) { positions in
                guard let destination = destination.value else { return }
                var generator = SeededGenerator(seed: seed, stream: stream)
                for _ in 0..<(part.lowerBound + positions.lowerBound) { transform.skipDraws(generator: &generator) }
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: pixelsPerImage) { pixels in
                    guard let source = pixels.baseAddress else { return }
                    for position in positions {
                        dataset.decodeImage(indices[position], into: source)
                        transform.apply(
                            image: source, rows: dataset.rows, cols: dataset.cols,
                            into: destination + position * pixelsPerImage, generator: &generator)
                    }
                }
            }
            initialized = count * pixelsPerImage
        }
        return Batch(
            images: images, labels: labels, indices: indices, count: count, globalCount: globalCount,
            globalOffset: part.lowerBound, channels: 1,
            height: dataset.rows, width: dataset.cols)
    }
}

// MARK: - Batch sequence with prefetch

/// The batches of one epoch; with `prefetch` and fewer kernel threads than cores, batch i+1
/// is built on a background thread while batch i is in use; otherwise each batch is built
/// when it is asked for, split over the kernels' threads (`makeBatch`).
public struct BatchSequence: Sequence, Sendable {
    let loader: DataLoader
    let epoch: Int
    let startIndex: Int

    public func makeIterator() -> Iterator {
        Iterator(loader: loader, epoch: epoch, nextIndex: startIndex)
    }

    public final class Iterator: IteratorProtocol {
        private let loader: DataLoader
        private let epoch: Int
        private let order: [Int]
        private let endIndex: Int
        private var nextIndex: Int
        private var pending: PendingBatch?

        init(loader: DataLoader, epoch: Int, nextIndex: Int) {
            self.loader = loader
            self.epoch = epoch
            self.order = loader.order(epoch: epoch)
            self.endIndex = loader.batchCount
            self.nextIndex = nextIndex
        }

        public func next() -> Batch? {
            guard nextIndex < endIndex else { return nil }
            let batch = pending?.wait() ?? loader.makeBatch(order: order, epoch: epoch, batchIndex: nextIndex)
            pending = nil
            nextIndex += 1
            // A background thread needs a core of its own: when the kernels' threads take
            // every core it would stop one of them in the middle of a parallel region (the
            // others waiting at its end), so the batch is built then, on all of them.
            if loader.prefetch && nextIndex < endIndex && Parallelism.threadCount < Parallelism.coreCount {
                let pending = PendingBatch()
                let (loader, order, epoch, index) = (loader, order, epoch, nextIndex)
                DispatchQueue.global(qos: .userInitiated).async {
                    pending.fulfil(loader.makeBatch(order: order, epoch: epoch, batchIndex: index))
                }
                self.pending = pending
            }
            return batch
        }
    }
}

/// A batch being built on another thread: written once, read once, guarded by a condition.
private final class PendingBatch: @unchecked Sendable {
    private let condition = NSCondition()
    private var batch: Batch?

    func fulfil(_ batch: Batch) {
        condition.lock()
        self.batch = batch
        condition.broadcast()
        condition.unlock()
    }

    func wait() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while batch == nil { condition.wait() }
        return batch
    }
}
