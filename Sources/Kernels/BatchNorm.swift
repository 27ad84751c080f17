// Batch normalization over an input laid out `(N, C, S)`: `N` samples, `C` channels and
// `S` values per channel and sample (`H·W` for `(N, C, H, W)`, 1 for `(N, C)`, `L` for
// `(N, C, L)`). Channels are independent, so every kernel splits the channels over the
// threads; within a channel the sums run in one fixed order, in Double, so results do
// not depend on the thread count.

/// Per-channel mean and biased variance of `input (N, C, S)` into `mean (C)` and
/// `variance (C)`.
public func batchNormStatistics(
    input: UnsafePointer<Float>, batch n: Int, channels c: Int, spatial s: Int,
    mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
) {
    let x = UncheckedSendable(input), m = UncheckedSendable(mean), v = UncheckedSendable(variance)
    let count = Double(n * s)
    Parallelism.forEachChunk(c) { _, channels in
        for ch in channels {
            var sum = 0.0
            for i in 0..<n {
                let row = x.value + (i * c + ch) * s
                for j in 0..<s { sum += Double(row[j]) }
            }
            let mu = sum / count
            var squares = 0.0
            for i in 0..<n {
                let row = x.value + (i * c + ch) * s
                for j in 0..<s {
                    let d = Double(row[j]) - mu
                    squares += d * d
                }
            }
            m.value[ch] = Float(mu)
            v.value[ch] = Float(squares / count)
        }
    }
}

/// `output = (input − mean) · invstd · weight + bias` per channel, for `input (N, C, S)`;
/// `mean`, `invstd`, `weight` and `bias` are `(C)` (`weight` 1 and `bias` 0 when nil).
public func batchNormApply(
    input: UnsafePointer<Float>, batch n: Int, channels c: Int, spatial s: Int,
    mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
    output: UnsafeMutablePointer<Float>
) {
    let x = UncheckedSendable(input), y = UncheckedSendable(output)
    let m = UncheckedSendable(mean), r = UncheckedSendable(invstd), w = UncheckedSendable(weight), b = UncheckedSendable(bias)
    Parallelism.forEachChunk(c) { _, channels in
        for ch in channels {
            let scale = r.value[ch] * (w.value?[ch] ?? 1)
            let shift = (b.value?[ch] ?? 0) - m.value[ch] * scale
            for i in 0..<n {
                let offset = (i * c + ch) * s
                let src = x.value + offset, dst = y.value + offset
                for j in 0..<s { dst[j] = src[j] * scale + shift }
            }
        }
    }
}

/// The gradients of `batchNormApply` for `gradOutput (N, C, S)`.
///
/// - `batchStatistics`: the mean and invstd were the batch's own (training mode), so the
///   input gradient includes their dependence on the input:
///   `dx = w·invstd/M · (M·g − Σg − x̂·Σ(g·x̂))` with `x̂ = (x − mean)·invstd`, `M = N·S`;
///   otherwise (running statistics, evaluation mode) `dx = g·w·invstd`.
/// - `gradWeight = Σ g·x̂` and `gradBias = Σ g` per channel, each written when not nil.
public func batchNormBackward(
    gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, batch n: Int, channels c: Int, spatial s: Int,
    mean: UnsafePointer<Float>, invstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?, batchStatistics: Bool,
    gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>?, gradBias: UnsafeMutablePointer<Float>?
) {
    let g = UncheckedSendable(gradOutput), x = UncheckedSendable(input)
    let m = UncheckedSendable(mean), r = UncheckedSendable(invstd), w = UncheckedSendable(weight)
    let gi = UncheckedSendable(gradInput), gw = UncheckedSendable(gradWeight), gb = UncheckedSendable(gradBias)
    let count = Double(n * s)
    Parallelism.forEachChunk(c) { _, channels in
        for ch in channels {
            let mu = Double(m.value[ch]), rstd = Double(r.value[ch])
            var sumG = 0.0, sumGX = 0.0
            for i in 0..<n {
                let offset = (i * c + ch) * s
                for j in 0..<s {
                    let gradient = Double(g.value[offset + j])
                    sumG += gradient
                    sumGX += gradient * (Double(x.value[offset + j]) - mu) * rstd
                }
            }
            gw.value?[ch] = Float(sumGX)
            gb.value?[ch] = Float(sumG)
            guard let dx = gi.value else { continue }
            let scale = rstd * Double(w.value?[ch] ?? 1)
            for i in 0..<n {
                let offset = (i * c + ch) * s
                for j in 0..<s {
                    let gradient = Double(g.value[offset + j])
                    if batchStatistics {
                        let xhat = (Double(x.value[offset + j]) - mu) * rstd
                        dx[offset + j] = Float(scale * (gradient - sumG / count - xhat * sumGX / count))
                    } else {
                        dx[offset + j] = Float(scale * gradient)
                    }
                }
            }
        }
    }
}
