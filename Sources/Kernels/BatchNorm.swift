// Batch normalization over an input laid out `(N, C, S)`: `N` samples, `C` channels and
// `S` values per channel and sample (`H·W` for `(N, C, H, W)`, 1 for `(N, C)`, `L` for
// `(N, C, L)`). Channels are independent, so every kernel splits the channels over the
// threads. Within a channel each row of `S` values is summed in Float, eight lanes at a
// time, and the rows' sums are added in Double in sample order: a fixed order, so results
// do not depend on the thread count.

/// The sum of `count` floats: eight-lane partial sums, then the lanes, then the tail.
@inline(__always)
private func rowSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var j = 0
    while j + 16 <= count {
        acc0 += load8(p + j)
        acc1 += load8(p + j + 8)
        j += 16
    }
    if j + 8 <= count {
        acc0 += load8(p + j)
        j += 8
    }
    var sum = (acc0 + acc1).sum()
    while j < count {
        sum += p[j]
        j += 1
    }
    return sum
}

/// `Σ (p[j] − shift)²` over `count` floats.
@inline(__always)
private func rowSquaredDeviation(_ p: UnsafePointer<Float>, _ count: Int, from shift: Float) -> Float {
    let center = SIMD8<Float>(repeating: shift)
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var j = 0
    while j + 16 <= count {
        let d0 = load8(p + j) - center, d1 = load8(p + j + 8) - center
        acc0.addProduct(d0, d0)
        acc1.addProduct(d1, d1)
        j += 16
    }
    if j + 8 <= count {
        let d0 = load8(p + j) - center
        acc0.addProduct(d0, d0)
        j += 8
    }
    var sum = (acc0 + acc1).sum()
    while j < count {
        let d = p[j] - shift
        sum += d * d
        j += 1
    }
    return sum
}

/// `(Σ g[j], Σ g[j]·(x[j] − shift))` over `count` pairs.
@inline(__always)
private func rowGradientSums(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, from shift: Float)
    -> (Float, Float)
{
    let center = SIMD8<Float>(repeating: shift)
    var sumG = SIMD8<Float>(), sumGX = SIMD8<Float>()
    var j = 0
    while j + 8 <= count {
        let gradient = load8(g + j)
        sumG += gradient
        sumGX.addProduct(gradient, load8(x + j) - center)
        j += 8
    }
    var a = sumG.sum(), b = sumGX.sum()
    while j < count {
        a += g[j]
        b += g[j] * (x[j] - shift)
        j += 1
    }
    return (a, b)
}

/// `out[j] = a·u[j] + b·(v[j] − vShift) + c` (`v` nil: `a·u[j] + c`) over `count` floats.
@inline(__always)
private func rowAffine(
    _ u: UnsafePointer<Float>, _ a: Float, _ v: UnsafePointer<Float>?, _ b: Float, minus vShift: Float, _ c: Float,
    _ out: UnsafeMutablePointer<Float>, _ count: Int
) {
    let va = SIMD8<Float>(repeating: a), vb = SIMD8<Float>(repeating: b), vc = SIMD8<Float>(repeating: c)
    let vs = SIMD8<Float>(repeating: vShift)
    var j = 0
    if let v {
        while j + 8 <= count {
            let r = (load8(u + j) * va + vc).addingProduct(load8(v + j) - vs, vb)
            UnsafeMutableRawPointer(out + j).storeBytes(of: r, as: SIMD8<Float>.self)
            j += 8
        }
        while j < count {
            out[j] = u[j] * a + (v[j] - vShift) * b + c
            j += 1
        }
    } else {
        while j + 8 <= count {
            let r = load8(u + j) * va + vc
            UnsafeMutableRawPointer(out + j).storeBytes(of: r, as: SIMD8<Float>.self)
            j += 8
        }
        while j < count {
            out[j] = u[j] * a + c
            j += 1
        }
    }
}

/// Per-channel mean and biased variance of `input (N, C, S)` into `mean (C)` and
/// `variance (C)` (two passes: the mean, then the squared deviations from it).
public func batchNormStatistics(
    input: UnsafePointer<Float>, batch n: Int, channels c: Int, spatial s: Int,
    mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>
) {
    let x = UncheckedSendable(input), m = UncheckedSendable(mean), v = UncheckedSendable(variance)
    let count = Double(n * s)
    Parallelism.forEachChunk(c) { _, channels in
        for ch in channels {
            var sum = 0.0
            for i in 0..<n { sum += Double(rowSum(x.value + (i * c + ch) * s, s)) }
            let mu = Float(sum / count)
            var squares = 0.0
            for i in 0..<n { squares += Double(rowSquaredDeviation(x.value + (i * c + ch) * s, s, from: mu)) }
            m.value[ch] = mu
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
                rowAffine(x.value + offset, scale, nil, 0, minus: 0, shift, y.value + offset, s)
            }
        }
    }
}

/// The gradients of `batchNormApply` for `gradOutput (N, C, S)`.
///
/// - `batchStatistics`: the mean and invstd were the batch's own (training mode), so the
///   input gradient includes their dependence on the input:
///   `dx = w·invstd/M · (M·g − Σg − x̂·Σ(g·x̂))` with `x̂ = (x − mean)·invstd`, `M = N·S`,
///   computed as `dx = k·g + k'·(x − mean) + k''` per channel; otherwise (running statistics,
///   evaluation mode) `dx = g·w·invstd`.
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
            let mu = m.value[ch], rstd = Double(r.value[ch])
            var sumG = 0.0, sumGD = 0.0  // Σg and Σg·(x − mean)
            for i in 0..<n {
                let offset = (i * c + ch) * s
                let (a, b) = rowGradientSums(g.value + offset, x.value + offset, s, from: mu)
                sumG += Double(a)
                sumGD += Double(b)
            }
            let sumGX = sumGD * rstd  // Σ g·x̂
            gw.value?[ch] = Float(sumGX)
            gb.value?[ch] = Float(sumG)
            guard let dx = gi.value else { continue }
            let scale = rstd * Double(w.value?[ch] ?? 1)
            // dx = scale·(g − Σg/M − (x − mean)·invstd·Σg·x̂/M) = k·g + k'·(x − mean) + k''
            let kG = Float(scale)
            let kX = batchStatistics ? Float(-scale * rstd * sumGX / count) : 0
            let k0 = batchStatistics ? Float(-scale * sumG / count) : 0
            for i in 0..<n {
                let offset = (i * c + ch) * s
                rowAffine(g.value + offset, kG, batchStatistics ? x.value + offset : nil, kX, minus: mu, k0, dx + offset, s)
            }
        }
    }
}
