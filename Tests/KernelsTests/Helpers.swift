import Foundation
import Kernels
import Seeded

// MARK: - Deterministic test data

/// Seeded test data in [-1, 1).
struct TestRandom {
    var generator: SeededGenerator
    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }
    mutating func next() -> UInt64 { generator.next() }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { generator.nextUniform(-1, 1) }
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in uniform() } }
}

// MARK: - Kernel calls on arrays

/// Workspace sized for far more threads than any test uses, so a test that changes the
/// thread count concurrently cannot starve another.
func workspace(for shape: Conv2dShape) -> [Float] {
    [Float](repeating: 0, count: conv2dWorkspaceCount(shape, threadCount: 8))
}

func convForward(_ s: Conv2dShape, _ input: [Float], _ weight: [Float], _ bias: [Float]?) -> [Float] {
    var output = [Float](repeating: .nan, count: s.outputShape.reduce(1, *))
    var scratch = workspace(for: s)
    scratch.withUnsafeMutableBufferPointer { ws in
        output.withUnsafeMutableBufferPointer { out in
            if let bias {
                bias.withUnsafeBufferPointer { b in
                    conv2dForward(s, input: input, weight: weight, bias: b.baseAddress!,
                                  output: out.baseAddress!, workspace: ws)
                }
            } else {
                conv2dForward(s, input: input, weight: weight, bias: nil,
                              output: out.baseAddress!, workspace: ws)
            }
        }
    }
    return output
}

func convBackwardInput(_ s: Conv2dShape, _ gradOutput: [Float], _ weight: [Float]) -> [Float] {
    var gradInput = [Float](repeating: .nan, count: s.inputShape.reduce(1, *))
    var scratch = workspace(for: s)
    scratch.withUnsafeMutableBufferPointer { ws in
        gradInput.withUnsafeMutableBufferPointer { gi in
            conv2dBackwardInput(s, gradOutput: gradOutput, weight: weight,
                                gradInput: gi.baseAddress!, workspace: ws)
        }
    }
    return gradInput
}

func convBackwardWeight(
    _ s: Conv2dShape, _ input: [Float], _ gradOutput: [Float]
) -> (weight: [Float], bias: [Float]) {
    var gradWeight = [Float](repeating: .nan, count: s.weightShape.reduce(1, *))
    var gradBias = [Float](repeating: .nan, count: s.outChannels)
    var scratch = workspace(for: s)
    scratch.withUnsafeMutableBufferPointer { ws in
        gradWeight.withUnsafeMutableBufferPointer { gw in
            gradBias.withUnsafeMutableBufferPointer { gb in
                conv2dBackwardWeight(s, input: input, gradOutput: gradOutput,
                                     gradWeight: gw.baseAddress!, gradBias: gb.baseAddress!,
                                     workspace: ws)
            }
        }
    }
    return (gradWeight, gradBias)
}

func poolForward(_ s: Pool2dShape, _ input: [Float]) -> (output: [Float], argmax: [Int32]) {
    let count = s.outputShape.reduce(1, *)
    var output = [Float](repeating: .nan, count: count)
    var argmax = [Int32](repeating: -1, count: count)
    output.withUnsafeMutableBufferPointer { out in
        argmax.withUnsafeMutableBufferPointer { idx in
            maxPool2dForward(s, input: input, output: out.baseAddress!, argmax: idx.baseAddress!)
        }
    }
    return (output, argmax)
}

func poolBackward(_ s: Pool2dShape, _ gradOutput: [Float], _ argmax: [Int32]) -> [Float] {
    var gradInput = [Float](repeating: .nan, count: s.inputShape.reduce(1, *))
    gradInput.withUnsafeMutableBufferPointer { gi in
        maxPool2dBackward(s, gradOutput: gradOutput, argmax: argmax, gradInput: gi.baseAddress!)
    }
    return gradInput
}

// MARK: - Double-precision references

/// The input, weight and bias gradients of `Σ conv2d(x, w) · r` for an unpadded, unit-stride,
/// ungrouped convolution, summed exactly in Double.
func exactUnpaddedGradients(_ s: Conv2dShape, _ x: [Float], _ w: [Float], _ r: [Float])
    -> (input: [Double], weight: [Double], bias: [Double])
{
    var gi = [Double](repeating: 0, count: x.count), gw = [Double](repeating: 0, count: w.count)
    var gb = [Double](repeating: 0, count: s.outChannels)
    let (kH, kW) = (s.kernelHeight, s.kernelWidth)
    for n in 0..<s.batch {
        for o in 0..<s.outChannels {
            for y in 0..<s.outHeight {
                for xo in 0..<s.outWidth {
                    let g = Double(r[((n * s.outChannels + o) * s.outHeight + y) * s.outWidth + xo])
                    gb[o] += g
                    for c in 0..<s.inChannels {
                        for kh in 0..<kH {
                            for kw in 0..<kW {
                                let xi = ((n * s.inChannels + c) * s.height + y + kh) * s.width + xo + kw
                                let wi = ((o * s.inChannels + c) * kH + kh) * kW + kw
                                gw[wi] += g * Double(x[xi])
                                gi[xi] += g * Double(w[wi])
                            }
                        }
                    }
                }
            }
        }
    }
    return (gi, gw, gb)
}

/// Direct conv2d in Double: `(N, O, OH, OW)`.
func naiveConv(_ s: Conv2dShape, _ input: [Double], _ weight: [Double], _ bias: [Double]?) -> [Double] {
    let oh = s.outHeight, ow = s.outWidth, cg = s.groupInChannels, og = s.groupOutChannels
    var out = [Double](repeating: 0, count: s.batch * s.outChannels * oh * ow)
    for n in 0..<s.batch {
        for o in 0..<s.outChannels {
            let g = o / og
            for y in 0..<oh {
                for x in 0..<ow {
                    var sum = bias?[o] ?? 0
                    for ci in 0..<cg {
                        let c = g * cg + ci
                        for kh in 0..<s.kernelHeight {
                            let ih = y * s.strideH - s.padH + kh * s.dilationH
                            guard ih >= 0, ih < s.height else { continue }
                            for kw in 0..<s.kernelWidth {
                                let iw = x * s.strideW - s.padW + kw * s.dilationW
                                guard iw >= 0, iw < s.width else { continue }
                                sum += input[((n * s.inChannels + c) * s.height + ih) * s.width + iw]
                                    * weight[((o * cg + ci) * s.kernelHeight + kh) * s.kernelWidth + kw]
                            }
                        }
                    }
                    out[((n * s.outChannels + o) * oh + y) * ow + x] = sum
                }
            }
        }
    }
    return out
}

/// Direct max pooling in Double (padding is -inf).
func naivePool(_ s: Pool2dShape, _ input: [Double]) -> [Double] {
    let oh = s.outHeight, ow = s.outWidth
    var out = [Double](repeating: 0, count: s.batch * s.channels * oh * ow)
    for plane in 0..<(s.batch * s.channels) {
        for y in 0..<oh {
            for x in 0..<ow {
                var best = -Double.infinity
                for kh in 0..<s.kernelH {
                    let ih = y * s.strideH - s.padH + kh * s.dilationH
                    guard ih >= 0, ih < s.height else { continue }
                    for kw in 0..<s.kernelW {
                        let iw = x * s.strideW - s.padW + kw * s.dilationW
                        guard iw >= 0, iw < s.width else { continue }
                        best = max(best, input[(plane * s.height + ih) * s.width + iw])
                    }
                }
                out[(plane * oh + y) * ow + x] = best
            }
        }
    }
    return out
}

/// Central differences of a scalar `loss` with respect to every element of `values`.
func centralDifferences(
    _ values: [Double], step: Double = 1e-3, loss: ([Double]) -> Double
) -> [Double] {
    var probe = values
    return (0..<values.count).map { i in
        probe[i] = values[i] + step
        let plus = loss(probe)
        probe[i] = values[i] - step
        let minus = loss(probe)
        probe[i] = values[i]
        return (plus - minus) / (2 * step)
    }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
