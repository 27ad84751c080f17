// MARK: - Broadcasting

/// The shape two operands broadcast to (NumPy/PyTorch rules: align trailing dimensions;
/// each pair must be equal or contain a 1).
public func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        guard da == db || da == 1 || db == 1 else { throw TensorError.notBroadcastable(op: op, a, b) }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Strides of `shape` (row-major) read in the index space of `target` (which `shape`
/// broadcasts to): 0 along broadcast dimensions.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let r = target.count
    var strides = [Int](repeating: 0, count: r)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let j = i + r - shape.count
        strides[j] = shape[i] == 1 && target[j] != 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// An iteration plan over `shape` for several operands with the given strides: adjacent
/// dimensions that are contiguous for every operand are merged, so that the common cases
/// (same shapes, a scalar, a bias row) run as one or two tight loops.
struct StridedLoop {
    var shape: [Int]
    var strides: [[Int]]

    init(shape: [Int], strides: [[Int]]) {
        var dims = shape.indices.filter { shape[$0] != 1 }
        if dims.isEmpty { self.shape = [1]; self.strides = strides.map { _ in [0] }; return }
        var outShape = [shape[dims[0]]]
        var outStrides = strides.map { [$0[dims[0]]] }
        dims.removeFirst()
        for d in dims {
            let mergeable = strides.indices.allSatisfy { k in
                outStrides[k][outStrides[k].count - 1] == strides[k][d] * shape[d]
            }
            if mergeable {
                outShape[outShape.count - 1] *= shape[d]
                for k in strides.indices { outStrides[k][outStrides[k].count - 1] = strides[k][d] }
            } else {
                outShape.append(shape[d])
                for k in strides.indices { outStrides[k].append(strides[k][d]) }
            }
        }
        self.shape = outShape
        self.strides = outStrides
    }

    /// Calls `body(offsets, innerCount, innerStrides)` for every run of the innermost
    /// dimension, with each operand's starting offset.
    func forEachRun(_ body: (_ offsets: [Int], _ count: Int, _ strides: [Int]) -> Void) {
        let r = shape.count
        let inner = shape[r - 1]
        let innerStrides = strides.map { $0[r - 1] }
        var index = [Int](repeating: 0, count: r)
        var offsets = [Int](repeating: 0, count: strides.count)
        let outer = shape.dropLast().reduce(1, *)
        for _ in 0..<outer {
            body(offsets, inner, innerStrides)
            // Advance the outer multi-index (odometer) and the operands' offsets.
            var d = r - 2
            while d >= 0 {
                index[d] += 1
                for k in offsets.indices { offsets[k] += strides[k][d] }
                if index[d] < shape[d] { break }
                for k in offsets.indices { offsets[k] -= strides[k][d] * shape[d] }
                index[d] = 0
                d -= 1
            }
        }
    }
}

extension Tensor {
    /// Sums `self` (of a broadcast shape) down to `target`, the shape of an operand that
    /// was broadcast: the backward of broadcasting.
    func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let out = Tensor.full(target, 0)
        let loop = StridedLoop(shape: shape, strides: [broadcastStrides(shape, to: shape),
                                                       broadcastStrides(target, to: shape)])
        let src = storage.pointer, dst = out.storage.pointer
        loop.forEachRun { offsets, n, strides in
            let s = src + offsets[0], d = dst + offsets[1]
            let ss = strides[0], ds = strides[1]
            if ds == 0 {
                var acc: Float = 0
                for i in 0..<n { acc += s[i * ss] }
                d[0] += acc
            } else {
                for i in 0..<n { d[i * ds] += s[i * ss] }
            }
        }
        return out
    }
}
