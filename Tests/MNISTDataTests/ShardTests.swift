import Foundation
@testable import MNISTData
import Seeded
import Testing

/// Data-parallel shards: the ranks' parts of a batch, put side by side, are the whole
/// batch bit for bit (order, labels, augmentation draws), for any rank count.
@Suite struct ShardTests {
    @Test func shardsOfABatchAreTheWholeBatch() throws {
        let train = try realTrain.get().prefix(1000)
        // Every random step: shift, rotation, scaling and flips, each with its own draws.
        let transform = try Transform.mnist.withAugmentation(
            Augmentation(maxShift: 2, maxRotationDegrees: 10, scale: 0.9...1.1, horizontalFlip: true))
        let whole = try DataLoader(dataset: train, batchSize: 96, shuffle: true, seed: 5, transform: transform)
        for ranks in [2, 3, 4, 7] {
            let shards = try (0..<ranks).map {
                try DataLoader(dataset: train, batchSize: 96, shuffle: true, seed: 5, transform: transform,
                               shard: DataLoader.Shard(index: $0, count: ranks))
            }
            for epoch in 0..<2 {
                // 1000 = 10 × 96 + 40: the last batch is partial (40 over 7 ranks: 5 or 6 each).
                let full = Array(whole.batches(epoch: epoch))
                let parts = shards.map { Array($0.batches(epoch: epoch)) }
                #expect(full.count == 11 && parts.allSatisfy { $0.count == 11 })
                for (b, batch) in full.enumerated() {
                    let pieces = parts.map { $0[b] }
                    #expect(pieces.map(\.count).reduce(0, +) == batch.count)
                    #expect(pieces.allSatisfy { $0.globalCount == batch.count })
                    #expect(pieces.map(\.globalOffset) == (0..<ranks).map { batch.count * $0 / ranks })
                    #expect(pieces.flatMap(\.indices) == batch.indices, "ranks \(ranks) epoch \(epoch) batch \(b)")
                    #expect(pieces.flatMap(\.labels) == batch.labels)
                    #expect(pieces.flatMap(\.images) == batch.images, "augmented pixels differ: ranks \(ranks) batch \(b)")
                }
            }
        }
    }

    @Test func skipDrawsMakesTheDrawsOfApply() throws {
        let transform = try Transform.mnist.withAugmentation(
            Augmentation(maxShift: 3, maxRotationDegrees: 15, scale: 0.8...1.2, horizontalFlip: true))
        let image = [UInt8](repeating: 128, count: 784)
        var output = [Float](repeating: 0, count: 784)
        var applied = SeededGenerator(seed: 11), skipped = SeededGenerator(seed: 11)
        for _ in 0..<50 {
            image.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer {
                    transform.apply(image: source.baseAddress!, rows: 28, cols: 28, into: $0.baseAddress!, generator: &applied)
                }
            }
            transform.skipDraws(generator: &skipped)
        }
        #expect(applied.state == skipped.state)
        #expect(applied.state != SeededGenerator(seed: 11).state)
    }

    @Test func shardRangesAndRefusals() throws {
        #expect(DataLoader.Shard(index: 1, count: 4).range(of: 64) == 16..<32)
        #expect((0..<3).map { DataLoader.Shard(index: $0, count: 3).range(of: 10) } == [0..<3, 3..<6, 6..<10])
        let train = try realTrain.get().prefix(10)
        #expect(throws: DataError.self) {
            try DataLoader(dataset: train, batchSize: 4, shuffle: false, seed: 0, shard: DataLoader.Shard(index: 2, count: 2))
        }
    }

    @Test func samplesOfADataset() throws {
        let train = try realTrain.get().prefix(100)
        let part = try train.samples(30..<45)
        #expect(part.count == 15)
        #expect(part.labels == Array(train.labels[30..<45]))
        #expect(part.pixels(0..<part.count) == train.pixels(30..<45))
        #expect(try train.samples(90..<200).count == 10)
    }
}
