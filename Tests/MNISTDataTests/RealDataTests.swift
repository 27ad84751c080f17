import Foundation
import MNISTData
import Testing
import TestSupport

/// The real MNIST files in `../shared/data/mnist`.
@Suite struct RealDataTests {
    @Test func countsShapesAndLabelCounts() throws {
        let train = try realTrain.get()
        let test = try realTest.get()
        #expect(train.count == 60000)
        #expect(test.count == 10000)
        #expect(train.rows == 28 && train.cols == 28 && test.rows == 28 && test.cols == 28)
        // Packed, the images decode to the file's bytes exactly, in a quarter of their size.
        let raw = try IDXReader.read(Shared.mnistDirectory.appendingPathComponent("train-images-idx3-ubyte.gz"),
                                     expectedMagic: IDXMagic.images)
        #expect(raw.dimensions == [60000, 28, 28])
        #expect(train.pixels(0..<train.count) == raw.bytes)
        #expect(train.packedImages.storedBytes < 13_000_000, "\(train.packedImages.storedBytes) bytes")
        #expect(train.labelCounts() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        #expect(test.labelCounts().reduce(0, +) == 10000)
        #expect(Array(train.labels.prefix(8)) == [5, 0, 4, 1, 9, 2, 1, 3])
    }

    @Test func meanPixelOfTrainingSet() throws {
        let mean = try realTrain.get().meanPixel()
        #expect(abs(mean - 0.1307) < 1e-4, "mean pixel \(mean)")
    }

    /// Prints the load + decompress time of the training split, wall clock and this thread's
    /// CPU time (the load is single-threaded, so CPU time is robust to a busy machine).
    /// No assertion: machines vary.
    @Test func timeTrainingSetLoad() throws {
        func threadCPUSeconds() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        var bestWall = Double.infinity
        var bestCPU = Double.infinity
        for _ in 0..<3 {
            let wallStart = Date()
            let cpuStart = threadCPUSeconds()
            let train = try Dataset.load(directory: Shared.mnistDirectory, split: .train)
            bestCPU = min(bestCPU, threadCPUSeconds() - cpuStart)
            bestWall = min(bestWall, Date().timeIntervalSince(wallStart))
            #expect(train.count == 60000)
        }
        print(String(format: "MNIST train load + decompress: best of 3 = %.3f s wall, %.3f s CPU", bestWall, bestCPU))
    }

    /// Fashion-MNIST as Debian's dataset-fashion-mnist installs it (skipped when absent).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist")))
    func fashionMNISTFromDebianPackage() throws {
        let directory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
        let train = try Dataset.load(directory: directory, split: .train, name: "fashion-mnist/train")
        let test = try Dataset.load(directory: directory, split: .test, name: "fashion-mnist/test")
        #expect(train.count == 60000 && test.count == 10000)
        #expect(train.rows == 28 && train.cols == 28)
        // Fashion-MNIST is balanced: 6000 per class in train, 1000 in test.
        #expect(train.labelCounts() == Array(repeating: 6000, count: 10))
        #expect(test.labelCounts() == Array(repeating: 1000, count: 10))
        // Half its pixels are ink: packed, its training images take 29 MB of their 47.
        #expect((28_500_000..<29_500_000).contains(train.packedImages.storedBytes), "\(train.packedImages.storedBytes) bytes")
    }
}
