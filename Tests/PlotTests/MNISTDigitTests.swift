import CZlib
import Foundation
import Testing
import TestSupport
@testable import Plot

/// The first `count` test images and labels of the real MNIST files, read with zlib's gz*
/// functions (the MNISTData target has the real loader; this keeps the Plot tests standalone).
func firstMNISTTestDigits(count: Int) throws -> (images: [UInt8], labels: [Int]) {
    func read(_ name: String, skipping header: Int, bytes: Int) throws -> [UInt8] {
        let path = Shared.mnistDirectory.appendingPathComponent(name).path
        guard let file = gzopen(path, "rb") else { throw CheckerError.unreadableOutput("cannot open \(path)", status: -1) }
        defer { gzclose(file) }
        var buffer = [UInt8](repeating: 0, count: header + bytes)
        let read = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
        guard read == Int32(header + bytes) else {
            throw CheckerError.unreadableOutput("\(path): read \(read) of \(header + bytes) bytes", status: -1)
        }
        return Array(buffer[header...])
    }
    let images = try read("t10k-images-idx3-ubyte.gz", skipping: 16, bytes: count * 784)
    let labels = try read("t10k-labels-idx1-ubyte.gz", skipping: 8, bytes: count).map(Int.init)
    return (images, labels)
}

@Suite struct MNISTDigitTests {
    @Test func realDigitsKeepTheirBrightStrokes() throws {
        let count = 16
        let (images, labels) = try firstMNISTTestDigits(count: count)
        #expect(Array(labels.prefix(5)) == [7, 2, 1, 0, 4])   // the well-known start of t10k
        var predictions = labels
        predictions[0] = 1
        let image = try Figures.digitGrid(images: images, labels: labels, predictions: predictions, columns: 8)
        var probes: [(Int, Int)] = []
        var expected: [[Int]] = []
        for index in 0..<count {
            let digit = images[(index * 784)..<((index + 1) * 784)]
            // Brightest pixel of the digit and a pixel of the blank corner.
            guard let brightest = digit.indices.max(by: { digit[$0] < digit[$1] }) else { continue }
            let offset = brightest - index * 784
            let left = 12 + (index % 8) * 96 + 6, top = 12 + (index / 8) * (96 + 20) + 6
            probes.append((left + (offset % 28) * 3 + 1, top + (offset / 28) * 3 + 1))
            expected.append([Int(digit[brightest]), Int(digit[brightest]), Int(digit[brightest])])
            probes.append((left + 1, top + 1))
            expected.append([0, 0, 0])
        }
        let result = try writeAndCheck(image, name: "mnist", pixels: probes)
        for ((x, y), value) in zip(probes, expected) {
            #expect(result.pixel(x, y) == value, "pixel (\(x), \(y))")
        }
        #expect(stride(from: 0, to: expected.count, by: 2).allSatisfy { expected[$0][0] >= 200 }, "bright strokes")
        if let directory = ProcessInfo.processInfo.environment["PLOT_SAMPLE_DIRECTORY"] {
            try image.write(to: URL(fileURLWithPath: directory).appendingPathComponent("mnist-digits.png"))
        }
    }
}
