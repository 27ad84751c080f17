// MARK: - softmax and log_softmax along a dimension

extension Tensor {
    /// `exp(x) / Σ exp(x)` along `dim` (`SoftmaxBackward0`), computed stably.
    /// Backward: `y ⊙ (g − Σ g⊙y)`.
    public func softmax(dim: Int) throws -> Tensor { try softmaxFamily(dim: dim, log: false) }

    /// `x − log Σ exp(x)` along `dim` (`LogSoftmaxBackward0`), computed stably.
    /// Backward: `g − exp(y) Σ g`.
    public func logSoftmax(dim: Int) throws -> Tensor { try softmaxFamily(dim: dim, log: true) }

    private func softmaxFamily(dim: Int, log: Bool) throws -> Tensor {
        let d = try normalize(dim: dim, op: log ? "log_softmax" : "softmax")
        let (outer, n, inner) = rank == 0 ? (1, 1, 1) : split(at: d)
        let out = Tensor.empty(shape)
        softmaxRows(outer: outer, n: n, inner: inner, src: storage.pointer, dst: out.storage.pointer, log: log)
        return out.recording(log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", inputs: [self]) { [unowned out] g in
            let gi = Tensor.empty(g.shape)
            let gp = g.storage.pointer, y = out.storage.pointer, r = gi.storage.pointer
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * n * inner + i
                    if log {
                        var total: Float = 0
                        for k in 0..<n { total += gp[base + k * inner] }
                        for k in 0..<n { let j = base + k * inner; r[j] = gp[j] - Foundation_exp(y[j]) * total }
                    } else {
                        var dot: Float = 0
                        for k in 0..<n { dot += gp[base + k * inner] * y[base + k * inner] }
                        for k in 0..<n { let j = base + k * inner; r[j] = y[j] * (gp[j] - dot) }
                    }
                }
            }
            return [gi]
        }
    }
}

/// Softmax (or log-softmax) of `src` viewed as `(outer, n, inner)` along `n`, into `dst`.
func softmaxRows(outer: Int, n: Int, inner: Int, src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>, log: Bool) {
    for o in 0..<outer {
        for i in 0..<inner {
            let base = o * n * inner + i
            var maxValue = -Float.infinity
            for k in 0..<n { maxValue = max(maxValue, src[base + k * inner]) }
            if maxValue == -.infinity { maxValue = 0 }
            var total: Float = 0
            for k in 0..<n { total += Foundation_exp(src[base + k * inner] - maxValue) }
            if log {
                let logTotal = Foundation_log(total) + maxValue
                for k in 0..<n { dst[base + k * inner] = src[base + k * inner] - logTotal }
            } else {
                for k in 0..<n { dst[base + k * inner] = Foundation_exp(src[base + k * inner] - maxValue) / total }
            }
        }
    }
}
