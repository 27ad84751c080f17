import Foundation
import Testing
@testable import Kernels

/// Evaluation passes by Winograd F(2×2, 3×3) and F(2×2, 5×5) (`Conv2dWinograd.swift`).
@Suite struct Conv2dWinogradTests {
    /// `conv2dMaxPool2dForward` without an argmax, by Winograd, against the direct kernels
    /// (`Conv2dPlan.winogradEvaluation` false), with and without ReLU and a bias, at 1–3
    /// threads: every output within 5e-7 · (1 + Σ|input · weight| of its window's largest
    /// sum) for 3×3 kernels (at most 2.7e-7 measured; a 1e-5 error planted by hand in one
    /// transform coefficient gave 5e-6) and 1e-6 for 5×5 (at most 4.9e-7 measured; 1e-5
    /// planted in G's 1/24 gave 1.5e-5), bit for bit the same at every thread count and
    /// with a workspace sized for one thread (which runs on fewer), and nothing written past
    /// the output. Shapes: the
    /// published speedrun net's conv2 (24 → 32, 10×10: 25 tiles, four blocks of six and one
    /// tile) on 26 samples (blocks of four over three threads), `configs/speedrun.json`'s
    /// (8 → 32), 12 input channels (8 channels-last by transposes, 4 one by one) on an odd
    /// 9×11 output (the last row and column no window's), 20 on an odd 13×13, 16 → 16 on
    /// 24×24, a single row of windows, 24 outputs (a block of 16, then one of 8); LeNet's
    /// conv2 (20 → 50, 5×5: 16 tiles, blocks of 6 + 6 + 4, outputs 16 + 16 + 16 + 8 of which two
    /// are stored), 8 → 16 on an odd 9×7 output, and 9 → 40 on one row of windows; a NaN
    /// input, which must reach the windows that read it.
    @Test(arguments: [([26, 24, 12, 12], [32, 24, 3, 3]), ([3, 8, 12, 12], [32, 8, 3, 3]),
                      ([3, 12, 11, 13], [16, 12, 3, 3]), ([2, 20, 15, 15], [32, 20, 3, 3]),
                      ([2, 16, 26, 26], [16, 16, 3, 3]), ([2, 8, 4, 10], [16, 8, 3, 3]),
                      ([2, 12, 10, 10], [24, 12, 3, 3]), ([5, 20, 12, 12], [50, 20, 5, 5]),
                      ([3, 8, 13, 11], [16, 8, 5, 5]), ([2, 9, 6, 8], [40, 9, 5, 5])])
    func winogradPoolMatchesTheDirectKernel(_ input: [Int], _ weight: [Int]) throws {
        try Conv2dPlan.$winogradEvaluation.withValue(true) { try winogradAgainstDirect(input, weight) }
    }

    func winogradAgainstDirect(_ input: [Int], _ weight: [Int]) throws {
        let s = try Conv2dShape(input: input, weight: weight)
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        let tolerance: Float = s.kernelHeight == 3 ? 5e-7 : 1e-6
        #expect(Conv2dPlan.evaluatesByWinograd(s, pool: p))
        #expect(!Conv2dPlan.$winogradEvaluation.withValue(false) { Conv2dPlan.evaluatesByWinograd(s, pool: p) })
        var random = TestRandom(seed: 23)
        var x = random.floats(input.reduce(1, *))
        let nanAt = x.count - s.height * s.width / 2 - 3
        x[nanAt] = .nan
        let w = random.floats(weight.reduce(1, *)), b = random.floats(s.outChannels)
        let count = p.outputShape.reduce(1, *)
        // The scale of each window's sums: Σ|x·w| over its four outputs' terms, the largest.
        let magnitude = convForward(s, x.map { abs($0.isNaN ? 0 : $0) }, w.map(abs), b.map(abs))
        var scale = [Float](repeating: 0, count: count)
        magnitude.withUnsafeBufferPointer { m in
            scale.withUnsafeMutableBufferPointer { out in
                maxPool2dForward(p, input: m.baseAddress!, output: out.baseAddress!, argmax: nil, relu: false)
            }
        }
        for relu in [false, true] {
            for bias in [Optional(b), nil] {
                var firstRun: [Float]?
                for threads in 1...3 {
                    let (direct, winograd) = Parallelism.withThreadCount(threads) {
                        (Conv2dPlan.$winogradEvaluation.withValue(false) { pooledForward(s, p, x, w, bias, relu: relu) },
                         pooledForward(s, p, x, w, bias, relu: relu))
                    }
                    let label = "\(input) \(weight) relu \(relu) bias \(bias != nil) at \(threads) threads"
                    var worst: (index: Int, error: Float) = (0, 0)
                    for i in 0..<count where !direct[i].isNaN {
                        let error = abs(winograd[i] - direct[i]) / (1 + scale[i])
                        if !(error <= worst.error) { worst = (i, error) }
                    }
                    #expect(worst.error <= tolerance, "\(label): output \(worst.index) \(winograd[worst.index]) against \(direct[worst.index])")
                    let nans = zip(direct, winograd).filter { $0.isNaN != $1.isNaN }.count
                    #expect(nans == 0 && direct.contains(where: \.isNaN), "\(label): \(nans) outputs NaN in one only")
                    if let firstRun {
                        #expect(winograd.elementsEqual(firstRun) { $0.bitPattern == $1.bitPattern }, "\(label): not as at 1 thread")
                    } else {
                        firstRun = winograd
                    }
                    let oneThreadWorkspace = Parallelism.withThreadCount(threads) {
                        pooledForward(s, p, x, w, bias, relu: relu, workspaceThreads: 1)
                    }
                    #expect(oneThreadWorkspace.elementsEqual(winograd) { $0.bitPattern == $1.bitPattern },
                            "\(label): not the same with a workspace for one thread")
                }
            }
        }
    }

    /// Where Winograd does not apply, an evaluation pass stays the direct kernels' (the
    /// training forward's bits): 5×5 kernels, fewer than 8 input channels, output channels
    /// not a multiple of 16, a stride, padding, a 3×3 pool, and a training pass (an argmax)
    /// of a shape it takes.
    @Test func winogradAppliesOnlyToUnstrided3x3ConvolutionsUnderA2x2Pool() throws {
        try Conv2dPlan.$winogradEvaluation.withValue(true) { try winogradApplies() }
    }

    /// An evaluation pass takes Winograd by default exactly where this CPU gains by it
    /// (`Conv2dPlan.winogradPays`: in an AVX2 build, or on a CPU that splits 512-bit vectors):
    /// its output is bit for bit that of the kernel so chosen, and not the other's.
    @Test func evaluationTakesWinogradByDefaultWhereItPays() throws {
        let s = try Conv2dShape(input: [3, 20, 12, 12], weight: [50, 20, 5, 5])
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        var random = TestRandom(seed: 31)
        let x = random.floats(s.inputShape.reduce(1, *)), w = random.floats(s.weightShape.reduce(1, *))
        let b = random.floats(s.outChannels)
        let byDefault = pooledForward(s, p, x, w, b, relu: true)
        let winograd = Conv2dPlan.$winogradEvaluation.withValue(true) { pooledForward(s, p, x, w, b, relu: true) }
        let direct = Conv2dPlan.$winogradEvaluation.withValue(false) { pooledForward(s, p, x, w, b, relu: true) }
        let (chosen, other) = Conv2dPlan.winogradPays ? (winograd, direct) : (direct, winograd)
        #expect(Conv2dPlan.evaluatesByWinograd(s, pool: p) == Conv2dPlan.winogradPays)
        #expect(byDefault.elementsEqual(chosen) { $0.bitPattern == $1.bitPattern })
        #expect(!byDefault.elementsEqual(other) { $0.bitPattern == $1.bitPattern })
    }

    /// In a `FixedWeights` scope (an evaluation) the weight is transformed on the first call
    /// and reused after: the outputs are the same bits as a call outside any scope, and a
    /// weight changed within the scope (which the scope rules out) is not seen again.
    @Test func fixedWeightsAreTransformedOncePerScope() throws {
        let s = try Conv2dShape(input: [3, 20, 12, 12], weight: [50, 20, 5, 5])
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        var random = TestRandom(seed: 37)
        let x = random.floats(s.inputShape.reduce(1, *)), b = random.floats(s.outChannels)
        let w = UnsafeMutableBufferPointer<Float>.allocate(capacity: s.weightShape.reduce(1, *))
        defer { w.deallocate() }
        _ = w.initialize(from: random.floats(w.count))
        let other = random.floats(w.count)
        let workspace = UnsafeMutableBufferPointer<Float>.allocate(
            capacity: conv2dMaxPool2dWorkspaceCount(s, pool: p, threadCount: 2))
        defer { workspace.deallocate() }
        func forward() -> [Float] {
            var output = [Float](repeating: .nan, count: p.outputShape.reduce(1, *))
            output.withUnsafeMutableBufferPointer { out in
                conv2dMaxPool2dForward(s, pool: p, input: x, weight: w.baseAddress!, bias: b, output: out.baseAddress!,
                                       argmax: nil, relu: true, workspace: workspace)
            }
            return output
        }
        func same(_ a: [Float], _ b: [Float]) -> Bool { a.elementsEqual(b) { $0.bitPattern == $1.bitPattern } }
        Conv2dPlan.$winogradEvaluation.withValue(true) {
            Parallelism.withThreadCount(2) {
                let outside = forward()
                _ = w.update(fromContentsOf: other)
                let changed = forward()
                #expect(!same(outside, changed))
                FixedWeights.whileFixed {
                    #expect(same(forward(), changed))
                    #expect(same(forward(), changed))
                    // Not transformed again: the first call's weight stands for the scope.
                    w.update(repeating: 0)
                    #expect(same(forward(), changed))
                    #expect(FixedWeights.current?.preparedCount == 1)
                }
                // Outside the scope the weight is read again.
                #expect(!same(forward(), changed))
            }
        }
    }

    /// `FixedWeights.prepared` fills an entry once per weight, layout and size.
    @Test func fixedWeightsFillEachEntryOnce() {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 4), b = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { a.deallocate(); b.deallocate() }
        var fills = 0
        FixedWeights.whileFixed {
            let fixed = FixedWeights.current!
            let first = fixed.prepared(a, layout: "x", count: 4) { fills += 1; $0.update(repeating: 1, count: 4) }
            let again = fixed.prepared(a, layout: "x", count: 4) { fills += 1; $0.update(repeating: 2, count: 4) }
            #expect(first == again && fills == 1 && again[3] == 1)
            #expect(Int(bitPattern: first) % 64 == 0)
            _ = fixed.prepared(b, layout: "x", count: 4) { fills += 1; $0.update(repeating: 3, count: 4) }
            _ = fixed.prepared(a, layout: "y", count: 4) { fills += 1; $0.update(repeating: 4, count: 4) }
            _ = fixed.prepared(a, layout: "x", count: 8) { fills += 1; $0.update(repeating: 5, count: 8) }
            #expect(fills == 4 && fixed.preparedCount == 4)
        }
        #expect(FixedWeights.current == nil)
    }

    func winogradApplies() throws {
        func applies(_ input: [Int], _ weight: [Int], stride: Int = 1, padding: Int = 0, pool: Int = 2) throws -> Bool {
            let s = try Conv2dShape(input: input, weight: weight, stride: (stride, stride), padding: (padding, padding))
            return Conv2dPlan.evaluatesByWinograd(s, pool: try Pool2dShape(input: s.outputShape, kernel: (pool, pool)))
        }
        #expect(try applies([1, 24, 12, 12], [32, 24, 3, 3]))
        #expect(try !applies([1, 1, 28, 28], [32, 1, 5, 5]))
        #expect(try !applies([1, 1, 28, 28], [32, 1, 3, 3]))  // fewer than 8 input channels
        #expect(try !applies([1, 4, 12, 12], [32, 4, 3, 3]))
        #expect(try applies([1, 24, 12, 12], [24, 24, 3, 3]))  // 16 output channels, then 8
        #expect(try !applies([1, 24, 12, 12], [8, 24, 3, 3]))  // fewer than 16 output channels
        #expect(try applies([1, 20, 12, 12], [50, 20, 5, 5]))  // LeNet's conv2
        #expect(try !applies([1, 6, 14, 14], [16, 6, 5, 5]))  // LeNet-5's conv2: 6 input channels
        #expect(try !applies([1, 20, 12, 12], [50, 20, 5, 3]))
        #expect(try !applies([1, 20, 12, 12], [50, 20, 7, 7]))
        #expect(try !applies([1, 24, 12, 12], [32, 24, 3, 3], stride: 2))
        #expect(try !applies([1, 24, 12, 12], [32, 24, 3, 3], padding: 1))
        #expect(try !applies([1, 24, 12, 12], [32, 24, 3, 3], pool: 3))
        #expect(!Conv2dPlan.$fiveChannelForwardOnly.withValue(true) {
            Conv2dPlan.evaluatesByWinograd(try! Conv2dShape(input: [1, 24, 12, 12], weight: [32, 24, 3, 3]),
                                           pool: try! Pool2dShape(input: [1, 32, 10, 10], kernel: (2, 2)))
        })
        // With an argmax (training), the output is the direct kernels', bit for bit.
        let s = try Conv2dShape(input: [2, 24, 12, 12], weight: [32, 24, 3, 3])
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        var random = TestRandom(seed: 29)
        let x = random.floats(s.inputShape.reduce(1, *)), w = random.floats(s.weightShape.reduce(1, *))
        let direct = Conv2dPlan.$winogradEvaluation.withValue(false) { pooledForward(s, p, x, w, nil, relu: true) }
        #expect(pooledForward(s, p, x, w, nil, relu: true, argmax: true).elementsEqual(direct) { $0.bitPattern == $1.bitPattern })
        #expect(!pooledForward(s, p, x, w, nil, relu: true).elementsEqual(direct) { $0.bitPattern == $1.bitPattern })
    }
}

/// `conv2dMaxPool2dForward` on arrays, values only unless `argmax`, with a workspace for
/// `workspaceThreads` threads (the current count by default); expects nothing written past
/// the output.
func pooledForward(
    _ s: Conv2dShape, _ p: Pool2dShape, _ x: [Float], _ w: [Float], _ b: [Float]?, relu: Bool, argmax: Bool = false,
    workspaceThreads: Int? = nil
) -> [Float] {
    let count = p.outputShape.reduce(1, *), past = 64
    let sentinel = Float(bitPattern: 0x7fc0_1234)
    var output = [Float](repeating: sentinel, count: count + past), indices = [Int32](repeating: -1, count: count)
    let workspaceCount = conv2dMaxPool2dWorkspaceCount(s, pool: p, threadCount: workspaceThreads ?? Parallelism.threadCount)
    var scratch = [Float](repeating: .nan, count: workspaceCount)
    scratch.withUnsafeMutableBufferPointer { ws in
        output.withUnsafeMutableBufferPointer { out in
            indices.withUnsafeMutableBufferPointer { ix in
                if let b {
                    b.withUnsafeBufferPointer { bias in
                        conv2dMaxPool2dForward(s, pool: p, input: x, weight: w, bias: bias.baseAddress!, output: out.baseAddress!,
                                               argmax: argmax ? ix.baseAddress! : nil, relu: relu, workspace: ws)
                    }
                } else {
                    conv2dMaxPool2dForward(s, pool: p, input: x, weight: w, bias: nil, output: out.baseAddress!,
                                           argmax: argmax ? ix.baseAddress! : nil, relu: relu, workspace: ws)
                }
            }
        }
    }
    #expect(output[count...].allSatisfy { $0.bitPattern == sentinel.bitPattern }, "\(s): written past the output")
    return Array(output[..<count])
}
