import Foundation
import Kernels
@testable import MNISTData
import Seeded
import Testing
import TestSupport

/// Batching, shuffling, transforms and prefetching.
@Suite struct DataLoaderTests {
    @Test func shapesAndUnshuffledOrder() throws {
        let train = try realTrain.get()
        let loader = try DataLoader(dataset: train, batchSize: 32, shuffle: false, seed: 0)
        #expect(loader.batchCount == 1875)
        let iterator = loader.batches(epoch: 0).makeIterator()
        let batch = try #require(iterator.next())
        #expect(batch.imageShape == [32, 1, 28, 28])
        #expect(batch.labelShape == [32])
        #expect(batch.images.count == 32 * 784)
        #expect(batch.indices == Array(0..<32))
        #expect(Array(batch.labels.prefix(8)) == [5, 0, 4, 1, 9, 2, 1, 3])
        // Pixel values are (p / 255 - 0.1307) / 0.3081.
        let pixel = 7 * 28 + 14
        let expected = (Float(train.pixels(0..<1)[pixel]) / 255 - 0.1307) / 0.3081
        #expect(abs(batch.images[pixel] - expected) < 1e-5)
        #expect(abs(batch.images[0] - (-0.1307 / 0.3081)) < 1e-5)
    }

    @Test func toTensorGivesUnitRange() throws {
        let train = try realTrain.get()
        let loader = try DataLoader(dataset: train, batchSize: 100, shuffle: false, seed: 0, transform: .toTensorOnly)
        let iterator = loader.batches(epoch: 0).makeIterator()
        let batch = try #require(iterator.next())
        #expect(batch.images.min() == 0)
        #expect(batch.images.max() == 1)
        let expected = train.pixels(0..<100).map { Double($0) / 255 }
        let mismatch = compareClose(batch.images, expected, rtol: 0, atol: 1e-6, label: "toTensor")
        #expect(mismatch == nil, "\(mismatch ?? "")")
    }

    @Test func normalizedBatchStatistics() throws {
        let train = try realTrain.get()
        let loader = try DataLoader(dataset: train, batchSize: 1000, shuffle: true, seed: 7)
        var sum = 0.0
        var sumOfSquares = 0.0
        var count = 0
        for batch in loader.batches(epoch: 0).prefix(5) {
            for value in batch.images {
                sum += Double(value)
                sumOfSquares += Double(value) * Double(value)
            }
            count += batch.images.count
        }
        let mean = sum / Double(count)
        let std = (sumOfSquares / Double(count) - mean * mean).squareRoot()
        #expect(abs(mean) < 0.02, "mean \(mean)")
        #expect(abs(std - 1) < 0.02, "std \(std)")
    }

    @Test func sameSeedSameBatchesAndPrefetchChangesNothing() throws {
        let train = try realTrain.get()
        let augmented = try Transform.mnist.withAugmentation(Augmentation())
        let withPrefetch = try DataLoader(
            dataset: train, batchSize: 64, shuffle: true, seed: 42, transform: augmented, prefetch: true)
        let withoutPrefetch = try DataLoader(
            dataset: train, batchSize: 64, shuffle: true, seed: 42, transform: augmented, prefetch: false)
        let first = Array(withPrefetch.batches(epoch: 3).prefix(6))
        let second = Array(withoutPrefetch.batches(epoch: 3).prefix(6))
        let third = Array(withPrefetch.batches(epoch: 3).prefix(6))
        #expect(first.count == 6)
        // Compared as Bools so a failure does not print 300k floats.
        let prefetchMatches = first == second
        let rerunMatches = first == third
        #expect(prefetchMatches, "prefetching changed the batches")
        #expect(rerunMatches, "the same seed gave different batches")
        // The order is a fixed function of (seed, epoch): pin the start of it.
        var generator = SeededGenerator(seed: 42, stream: 3)
        #expect(withPrefetch.order(epoch: 3) == generator.permutation(60000))
    }

    /// At two threads a batch is built in parts, one per block of positions, each part
    /// starting its augmentation draws where the images before it left them: the same
    /// batches as one thread builds, with or without a shard.
    @Test func batchesBuiltOverTwoThreadsAreOneThreadsBatches() throws {
        let train = try realTrain.get()
        let augmented = try Transform.mnist.withAugmentation(Augmentation())
        for shard in [DataLoader.Shard.whole, DataLoader.Shard(index: 1, count: 3)] {
            let loader = try DataLoader(
                dataset: train, batchSize: 100, shuffle: true, seed: 11, transform: augmented, shard: shard)
            let one = Array(loader.batches(epoch: 1).prefix(4))
            let two = Parallelism.withThreadCount(2) { Array(loader.batches(epoch: 1).prefix(4)) }
            let order = loader.order(epoch: 1)
            let made = Parallelism.withThreadCount(2) { loader.makeBatch(order: order, epoch: 1, batchIndex: 2) }
            #expect(one.count == 4 && one[0].count == shard.range(of: 100).count)
            let matches = one == two && made == one[2]
            #expect(matches, "two threads built other batches than one (shard \(shard))")
        }
        // Without augmentation, position 37 of batch 0 (unshuffled) is image 37, normalized.
        let plain = try DataLoader(dataset: train, batchSize: 64, shuffle: false, seed: 0)
        let batch = Parallelism.withThreadCount(2) { plain.makeBatch(order: plain.order(epoch: 0), epoch: 0, batchIndex: 0) }
        let pixels = train.pixels(37..<38)
        let expected = pixels.map { (Float($0) / 255 - 0.1307) / 0.3081 }
        let got = batch.images[(37 * 784)..<(38 * 784)]
        #expect(zip(got, expected).allSatisfy { abs($0 - $1) < 1e-5 } && got.count == expected.count)
        #expect(batch.labels[37] == Int32(train.labels[37]) && batch.indices == Array(0..<64))
    }

    @Test func epochsAndSeedsChangeTheOrder() throws {
        let train = try realTrain.get()
        let loader = try DataLoader(dataset: train, batchSize: 32, shuffle: true, seed: 1)
        let other = try DataLoader(dataset: train, batchSize: 32, shuffle: true, seed: 2)
        let epoch0 = loader.order(epoch: 0)
        #expect(epoch0 != loader.order(epoch: 1))
        #expect(epoch0 != other.order(epoch: 0))
        #expect(epoch0.sorted() == Array(0..<60000))
        #expect(epoch0 != Array(0..<60000))
    }

    @Test func resumingMidEpochGivesTheSameBatches() throws {
        let train = try realTrain.get()
        let augmented = try Transform.mnist.withAugmentation(Augmentation(maxShift: 3, interpolation: .nearest))
        let loader = try DataLoader(dataset: train, batchSize: 50, shuffle: true, seed: 9, transform: augmented)
        let all = Array(loader.batches(epoch: 2).prefix(8))
        let resumed = Array(loader.batches(epoch: 2, startingAt: 5).prefix(3))
        let resumedMatches = resumed == Array(all[5..<8])
        #expect(resumedMatches, "batches 5..<8 differ when resuming at 5")
    }

    @Test func partialLastBatchAndDropLast() throws {
        let directory = try makeTemporaryDirectory("partial")
        try writeTinyDataset(in: directory, trainCount: 10)
        let dataset = try Dataset.load(directory: directory, split: .train)
        let keep = try DataLoader(dataset: dataset, batchSize: 4, shuffle: true, seed: 5, dropLast: false)
        let drop = try DataLoader(dataset: dataset, batchSize: 4, shuffle: true, seed: 5, dropLast: true)
        #expect(keep.batchCount == 3 && drop.batchCount == 2)
        let kept = Array(keep.batches(epoch: 0))
        #expect(kept.map(\.count) == [4, 4, 2])
        #expect(kept[2].imageShape == [2, 1, 4, 4])
        #expect(kept[2].images.count == 2 * 16)
        #expect(kept.flatMap(\.indices).sorted() == Array(0..<10))
        #expect(kept.flatMap(\.labels) == kept.flatMap(\.indices).map { Int32(dataset.labels[$0]) })
        #expect(Array(drop.batches(epoch: 0)).map(\.count) == [4, 4])
        #expect(throws: DataError.self) { try DataLoader(dataset: dataset, batchSize: 0, shuffle: false, seed: 0) }
    }

    @Test func augmentationMovesPixelsButKeepsIdentityWhenZero() throws {
        let train = try realTrain.get()
        let plain = try DataLoader(dataset: train, batchSize: 16, shuffle: false, seed: 3)
        let identity = try DataLoader(
            dataset: train, batchSize: 16, shuffle: false, seed: 3,
            transform: Transform.mnist.withAugmentation(Augmentation(maxShift: 0, maxRotationDegrees: 0)))
        let shifted = try DataLoader(
            dataset: train, batchSize: 16, shuffle: false, seed: 3,
            transform: Transform.mnist.withAugmentation(Augmentation(maxShift: 2, maxRotationDegrees: 10)))
        let reference = try #require(plain.batches(epoch: 0).first { _ in true })
        let same = try #require(identity.batches(epoch: 0).first { _ in true })
        let moved = try #require(shifted.batches(epoch: 0).first { _ in true })
        #expect(compareClose(same.images, reference.images.map(Double.init), rtol: 0, atol: 1e-5) == nil)
        let differs = moved.images != reference.images
        #expect(differs, "augmentation left the images unchanged")
        #expect(moved.labels == reference.labels)
        // Same range as the input: background stays at the normalized zero.
        let background = -0.1307 / 0.3081
        #expect(Double(moved.images.min() ?? 0) >= background - 1e-5)
    }

    @Test func pureShiftMovesTheImage() throws {
        // A single bright pixel at (1, 1) of a 5×5 image, shifted with no rotation.
        var image = [UInt8](repeating: 0, count: 25)
        image[1 * 5 + 1] = 200
        var output = [Float](repeating: -1, count: 25)
        var expected = [Float](repeating: 0, count: 25)
        expected[2 * 5 + 3] = 200
        for interpolation in [Augmentation.Interpolation.nearest, .bilinear] {
            image.withUnsafeBufferPointer { source in
                output.withUnsafeMutableBufferPointer { destination in
                    guard let source = source.baseAddress, let destination = destination.baseAddress else { return }
                    Transform.resample(
                        image: source, rows: 5, cols: 5, into: destination,
                        shiftX: 2, shiftY: 1, radians: 0, interpolation: interpolation)
                }
            }
            #expect(output == expected, "\(interpolation)")
        }
        // A half-turn maps (1, 1) to (3, 3) about the centre (2, 2).
        image.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                guard let source = source.baseAddress, let destination = destination.baseAddress else { return }
                Transform.resample(
                    image: source, rows: 5, cols: 5, into: destination,
                    shiftX: 0, shiftY: 0, radians: .pi, interpolation: .nearest)
            }
        }
        #expect(output[3 * 5 + 3] == 200)
        #expect(output.reduce(0, +) == 200)
    }

    @Test func transformRulesAreChecked() throws {
        #expect(throws: DataError.self) { try Transform([.normalize(.mnist), .toTensor]) }
        #expect(throws: DataError.self) { try Transform([.toTensor, .randomAffine(Augmentation())]) }
        #expect(throws: DataError.self) { try Transform([.normalize(.mnist)]) }
        #expect(throws: DataError.self) { try Transform([.toTensor, .normalize(Normalization(mean: 0, std: 0))]) }
        #expect(try Transform([.toTensor, .normalize(.mnist)]) == Transform.mnist)
    }
}
