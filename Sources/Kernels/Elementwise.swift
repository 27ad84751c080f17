// MARK: - Elementwise kernels of the training step: ReLU and the Adam update

// Each element is computed on its own, eight lanes at a time, the elements split over the
// threads in large contiguous ranges: the results are the same bits whatever the thread
// count, and the same as an element-by-element loop doing the same operations.

/// The minimum of elements a thread of an elementwise kernel takes (a parallel region costs a
/// microsecond or two, `mnist-bench --ops`; this many elements take several):
/// `Parallelism.forEachRange` splits a count of at least twice this over two threads, so
/// fewer than 32,768 stay on the calling thread. Also `Storage(copying:)`'s.
public let elementwiseGrain = 16384

/// ReLU of one float, `reluForward`'s rule: `v <= 0` becomes 0 (−0 too), NaN stays NaN.
@inlinable @inline(__always)
func reluValue(_ v: Float) -> Float { v <= 0 ? 0 : v }

/// `reluValue` of eight floats.
@inlinable @inline(__always)
func reluValue(_ v: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: 0, where: v .<= 0) }

/// ReLU's backward rule, `reluBackward`'s: the gradient `g` where the ReLU's output `y > 0`,
/// else 0 (a NaN output passes nothing), eight floats.
@inlinable @inline(__always)
func reluGradient(_ g: SIMD8<Float>, output y: SIMD8<Float>) -> SIMD8<Float> { g.replacing(with: 0, where: .!(y .> 0)) }

/// `reluGradient` of one float.
@inlinable @inline(__always)
func reluGradient(_ g: Float, output y: Float) -> Float { y > 0 ? g : 0 }

/// `output[i] = max(input[i], 0)`, NaN staying NaN (PyTorch's `relu`), for `count` floats.
public func reluForward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
    let x = UncheckedSendable(input), y = UncheckedSendable(output)
    Parallelism.forEachRange(count, minimumPerChunk: elementwiseGrain) { range in
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            store8(reluValue(load8(x.value + i)), y.value + i)
            i += 8
        }
        while i < range.upperBound {
            y.value[i] = reluValue(x.value[i])
            i += 1
        }
    }
}

/// `gradInput[i] = output[i] > 0 ? gradOutput[i] : 0`: ReLU's backward from its output.
public func reluBackward(
    _ gradOutput: UnsafePointer<Float>, output: UnsafePointer<Float>, _ gradInput: UnsafeMutablePointer<Float>, count: Int
) {
    let g = UncheckedSendable(gradOutput), y = UncheckedSendable(output), d = UncheckedSendable(gradInput)
    Parallelism.forEachRange(count, minimumPerChunk: elementwiseGrain) { range in
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            store8(reluGradient(load8(g.value + i), output: load8(y.value + i)), d.value + i)
            i += 8
        }
        while i < range.upperBound {
            d.value[i] = reluGradient(g.value[i], output: y.value[i])
            i += 1
        }
    }
}

/// One Adam (or AdamW) step over `count` parameters, PyTorch's formulas in its order:
/// ```
/// w = w · decay;  d = g + l2 · w
/// m = m + (d − m) · (1 − β₁);  v = β₂ · v + (1 − β₂) · d · d
/// w = w − stepSize · m / (√v / correction2Sqrt + ε)
/// ```
public func adamUpdate(
    weight: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, expAvg: UnsafeMutablePointer<Float>,
    expAvgSq: UnsafeMutablePointer<Float>, count: Int,
    decay: Float, l2: Float, beta1: Float, beta2: Float, stepSize: Float, correction2Sqrt: Float, epsilon: Float
) {
    let w = UncheckedSendable(weight), g = UncheckedSendable(gradient)
    let m = UncheckedSendable(expAvg), v = UncheckedSendable(expAvgSq)
    Parallelism.forEachRange(count, minimumPerChunk: elementwiseGrain) { range in
        let w = w.value, g = g.value, m = m.value, v = v.value
        let oneMinusB1 = 1 - beta1, oneMinusB2 = 1 - beta2
        let vDecay = SIMD8(repeating: decay), vL2 = SIMD8(repeating: l2), vB1 = SIMD8(repeating: oneMinusB1)
        let vB2 = SIMD8(repeating: beta2), vOneMinusB2 = SIMD8(repeating: oneMinusB2)
        let vStep = SIMD8(repeating: stepSize), vCorrection = SIMD8(repeating: correction2Sqrt)
        let vEps = SIMD8(repeating: epsilon)
        var j = range.lowerBound
        while j + 8 <= range.upperBound {
            let wj = load8(w + j) * vDecay
            let d = load8(g + j) + vL2 * wj
            var mj = load8(m + j)
            mj += (d - mj) * vB1
            let vj = vB2 * load8(v + j) + vOneMinusB2 * d * d
            store8(mj, m + j)
            store8(vj, v + j)
            store8(wj - vStep * mj / (vj.squareRoot() / vCorrection + vEps), w + j)
            j += 8
        }
        while j < range.upperBound {
            w[j] *= decay
            let d = g[j] + l2 * w[j]
            m[j] += (d - m[j]) * oneMinusB1
            v[j] = beta2 * v[j] + oneMinusB2 * d * d
            w[j] -= stepSize * m[j] / (v[j].squareRoot() / correction2Sqrt + epsilon)
            j += 1
        }
    }
}

/// `sums[j] = Σ_r rows[r · columns + j]` for `rows (rowCount, columns)`: each column summed in
/// row order from 0, the same bits as a scalar loop and at any thread count, eight columns
/// per vector and the columns split over the threads. Linear's bias gradient and
/// `Tensor.sum(dim:)`.
public func sumRows(_ rows: UnsafePointer<Float>, rowCount: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
    let g = UncheckedSendable(rows), b = UncheckedSendable(sums)
    // Half the elementwise grain a thread: at the grain LeNet's fc1 bias gradient (64 × 500,
    // under two grains) stayed on the calling thread (10 µs of a step). Each column is summed
    // by one thread in row order, whatever the split.
    Parallelism.forEachRange(columns, minimumPerChunk: max(1, elementwiseGrain / 2 / max(1, rowCount))) { range in
        let g = g.value, b = b.value
        var j = range.lowerBound
        while j + 8 <= range.upperBound {
            var sum = SIMD8<Float>()
            for row in 0..<rowCount { sum += load8(g + row * columns + j) }
            store8(sum, b + j)
            j += 8
        }
        while j < range.upperBound {
            var sum: Float = 0
            for row in 0..<rowCount { sum += g[row * columns + j] }
            b[j] = sum
            j += 1
        }
    }
}
