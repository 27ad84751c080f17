import Foundation
import Testing
@testable import Kernels

/// Two convolution + pool stages of an evaluation pass a sample at a time
/// (`Conv2dPoolPair.swift`).
@Suite struct Conv2dPoolPairTests {
    /// `conv2dMaxPool2dPairForward` against `conv2dMaxPool2dForward` twice (the first stage's
    /// output an NCHW tensor), with Winograd's evaluation on: bit for bit the same, with and
    /// without ReLU after either pool and biases, at 1–3 threads, inside a `FixedWeights`
    /// scope and outside it, and nothing written past the output. Shapes: the published
    /// speedrun net's conv1 and conv2 (1 → 24, 5×5, then 24 → 32, 3×3; the first paired only in
    /// 8-lane builds, whose pooled channel lanes start at 25 taps) on 9 samples; 3 → 24 (75
    /// taps) then 24 → 16, 5×5, on an odd 20×22 input (each pool drops a row or a column); and
    /// 4 → 72 (three groups of 24, 36 taps) then 72 → 32, 3×3. A NaN input must reach the
    /// outputs that read it in both.
    @Test(arguments: [([9, 1, 28, 28], [24, 1, 5, 5], [32, 24, 3, 3]), ([6, 3, 20, 22], [24, 3, 5, 5], [16, 24, 5, 5]),
                      ([5, 4, 19, 17], [72, 4, 3, 3], [32, 72, 3, 3])])
    func pairGivesTheBitsOfTheTwoStages(_ input: [Int], _ firstWeight: [Int], _ secondWeight: [Int]) throws {
        try Conv2dPlan.$winogradEvaluation.withValue(true) {
            let s1 = try Conv2dShape(input: input, weight: firstWeight)
            let p1 = try Pool2dShape(input: s1.outputShape, kernel: (2, 2))
            let s2 = try Conv2dShape(input: p1.outputShape, weight: secondWeight)
            let p2 = try Pool2dShape(input: s2.outputShape, kernel: (2, 2))
            let expected = !(Conv2dPlan.windowLanesAvailable && s1.groupPatchSize < 32)
            #expect(Conv2dPoolPair.applies(first: s1, firstPool: p1, second: s2, secondPool: p2) == expected)
            guard expected else { return }
            var random = TestRandom(seed: 41)
            var x = random.floats(input.reduce(1, *))
            x[x.count / 2 + 5] = .nan
            let w1 = random.floats(firstWeight.reduce(1, *)), b1 = random.floats(s1.outChannels)
            let w2 = random.floats(secondWeight.reduce(1, *)), b2 = random.floats(s2.outChannels)
            for (firstRelu, secondRelu) in [(true, true), (false, false), (true, false)] {
                for biases in [true, false] {
                    let bias1 = biases ? b1 : nil, bias2 = biases ? b2 : nil
                    let between = pooledForward(s1, p1, x, w1, bias1, relu: firstRelu)
                    let stages = pooledForward(s2, p2, between, w2, bias2, relu: secondRelu)
                    #expect(stages.contains(where: \.isNaN) && stages.contains(where: { !$0.isNaN }))
                    for threads in 1...3 {
                        for fixed in [false, true] {
                            let pair = Parallelism.withThreadCount(threads) {
                                let run = {
                                    pairForward(Conv2dPoolPair(first: s1, firstPool: p1, second: s2, secondPool: p2),
                                                x, w1, bias1, firstRelu, w2, bias2, secondRelu)
                                }
                                return fixed ? FixedWeights.whileFixed { run() } : run()
                            }
                            let label = "\(input) \(firstWeight) \(secondWeight) relu \(firstRelu) \(secondRelu) biases \(biases) at \(threads) threads, fixed \(fixed)"
                            let differing = zip(pair, stages).filter { $0.bitPattern != $1.bitPattern }.count
                            #expect(differing == 0, "\(label): \(differing) of \(stages.count) outputs differ")
                        }
                    }
                }
            }
        }
    }

    /// The pair is not taken where a stage would not be computed by its kernel: Winograd's
    /// evaluation off, LeNet's conv1 (20 output channels, not a group of 24) before its conv2,
    /// a first stage under a 3×3 pool, and a second convolution whose input is not the first
    /// pool's output.
    @Test func pairAppliesOnlyToChainedChannelLaneAndWinogradStages() throws {
        let s1 = try Conv2dShape(input: [4, 3, 20, 22], weight: [24, 3, 5, 5])
        let p1 = try Pool2dShape(input: s1.outputShape, kernel: (2, 2))
        let s2 = try Conv2dShape(input: p1.outputShape, weight: [16, 24, 5, 5])
        let p2 = try Pool2dShape(input: s2.outputShape, kernel: (2, 2))
        Conv2dPlan.$winogradEvaluation.withValue(true) {
            #expect(Conv2dPoolPair.applies(first: s1, firstPool: p1, second: s2, secondPool: p2))
        }
        Conv2dPlan.$winogradEvaluation.withValue(false) {
            #expect(!Conv2dPoolPair.applies(first: s1, firstPool: p1, second: s2, secondPool: p2))
        }
        try Conv2dPlan.$winogradEvaluation.withValue(true) {
            let lenet1 = try Conv2dShape(input: [4, 1, 28, 28], weight: [20, 1, 5, 5])
            let lenetPool1 = try Pool2dShape(input: lenet1.outputShape, kernel: (2, 2))
            let lenet2 = try Conv2dShape(input: lenetPool1.outputShape, weight: [50, 20, 5, 5])
            let lenetPool2 = try Pool2dShape(input: lenet2.outputShape, kernel: (2, 2))
            #expect(!Conv2dPoolPair.applies(first: lenet1, firstPool: lenetPool1, second: lenet2, secondPool: lenetPool2))
            let wide = try Pool2dShape(input: s1.outputShape, kernel: (3, 3), stride: (2, 2))
            let afterWide = try Conv2dShape(input: wide.outputShape, weight: [16, 24, 3, 3])
            let afterWidePool = try Pool2dShape(input: afterWide.outputShape, kernel: (2, 2))
            #expect(!Conv2dPoolPair.applies(first: s1, firstPool: wide, second: afterWide, secondPool: afterWidePool))
            let unchained = try Conv2dShape(input: [4, 24, 12, 12], weight: [16, 24, 5, 5])
            let unchainedPool = try Pool2dShape(input: unchained.outputShape, kernel: (2, 2))
            #expect(!Conv2dPoolPair.applies(first: s1, firstPool: p1, second: unchained, secondPool: unchainedPool))
        }
    }
}

/// `conv2dMaxPool2dPairForward` of `x` into a fresh output (NaN-filled workspace), checking
/// that nothing past the output was written.
func pairForward(
    _ pair: Conv2dPoolPair, _ x: [Float], _ w1: [Float], _ b1: [Float]?, _ relu1: Bool, _ w2: [Float], _ b2: [Float]?,
    _ relu2: Bool
) -> [Float] {
    let p = pair.secondPool, count = p.outputShape.reduce(1, *), past = 64
    let sentinel = Float(bitPattern: 0x7fc0_1234)
    var output = [Float](repeating: sentinel, count: count + past)
    var scratch = [Float](repeating: .nan, count: pair.workspaceCount())
    func optional(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        if let values { values.withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
    }
    scratch.withUnsafeMutableBufferPointer { ws in
        output.withUnsafeMutableBufferPointer { out in
            optional(b1) { bias1 in
                optional(b2) { bias2 in
                    conv2dMaxPool2dPairForward(pair, input: x, firstWeight: w1, firstBias: bias1, firstRelu: relu1,
                                               secondWeight: w2, secondBias: bias2, secondRelu: relu2,
                                               output: out.baseAddress!, workspace: ws)
                }
            }
        }
    }
    #expect(output[count...].allSatisfy { $0.bitPattern == sentinel.bitPattern }, "\(pair.second): written past the output")
    return Array(output[..<count])
}
