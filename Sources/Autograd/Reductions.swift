import Kernels

// MARK: - Sums and means

extension Tensor {
    /// Views this tensor as `(outer, n, inner)` around dimension `dim`.
    func split(at dim: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<dim].reduce(1, *), shape[dim], shape[(dim + 1)...].reduce(1, *))
    }

    /// The sum of all elements (`SumBackward0`). Accumulated in double precision.
    public func sum() -> Tensor {
        var acc = 0.0
        let p = storage.pointer
        for i in 0..<count { acc += Double(p[i]) }
        let inputShape = shape
        return Tensor(scalar: Float(acc)).recording("SumBackward0", inputs: [self]) { g in
            [Tensor.full(inputShape, g.storage.pointer[0])]
        }
    }

    /// The mean of all elements (`MeanBackward0`).
    public func mean() -> Tensor {
        var acc = 0.0
        let p = storage.pointer
        for i in 0..<count { acc += Double(p[i]) }
        let n = count, inputShape = shape
        return Tensor(scalar: Float(acc / Double(max(n, 1)))).recording("MeanBackward0", inputs: [self]) { g in
            [Tensor.full(inputShape, g.storage.pointer[0] / Float(n))]
        }
    }

    /// Sums along `dim` (`SumBackward1`), keeping it as size 1 when `keepDim`.
    public func sum(dim: Int, keepDim: Bool = false) throws -> Tensor {
        try reduce(dim: dim, keepDim: keepDim, scale: 1, name: "SumBackward1", op: "sum")
    }

    /// Averages along `dim` (`MeanBackward1`).
    public func mean(dim: Int, keepDim: Bool = false) throws -> Tensor {
        let d = try normalize(dim: dim, op: "mean")
        let n = rank == 0 ? 1 : shape[d]
        return try reduce(dim: dim, keepDim: keepDim, scale: 1 / Float(n), name: "MeanBackward1", op: "mean")
    }

    private func reduce(dim: Int, keepDim: Bool, scale: Float, name: String, op: String) throws -> Tensor {
        let d = try normalize(dim: dim, op: op)
        if rank == 0 { return self * scale }
        let (outer, n, inner) = split(at: d)
        var outShape = shape
        if keepDim { outShape[d] = 1 } else { outShape.remove(at: d) }
        let out = Tensor.empty(outShape)
        let src = storage.pointer, dst = out.storage.pointer
        for o in 0..<outer { sumRows(src + o * n * inner, rowCount: n, columns: inner, into: dst + o * inner) }
        if scale != 1 { for i in 0..<out.count { dst[i] *= scale } }
        let inputShape = shape
        return out.recording(name, inputs: [self]) { g in
            let gi = Tensor.empty(inputShape)
            let gs = g.storage.pointer, gd = gi.storage.pointer
            for o in 0..<outer {
                for k in 0..<n {
                    let row = gd + (o * n + k) * inner, src = gs + o * inner
                    for i in 0..<inner { row[i] = src[i] * scale }
                }
            }
            return [gi]
        }
    }
}

// MARK: - Without backward: argmax, comparisons, norm

extension Tensor {
    /// The index of the largest element along `dim` (the first one on ties), as an
    /// integer tensor; no gradient.
    public func argmax(dim: Int, keepDim: Bool = false) throws -> Tensor {
        let d = try normalize(dim: dim, op: "argmax")
        let (outer, n, inner) = rank == 0 ? (1, 1, 1) : split(at: d)
        var outShape = shape
        if rank > 0 { if keepDim { outShape[d] = 1 } else { outShape.remove(at: d) } }
        let out = Tensor.empty(outShape, kind: .int)
        let src = storage.pointer, dst = out.storage.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                var bestValue = src[o * n * inner + i]
                for k in 1..<max(n, 1) {
                    let v = src[(o * n + k) * inner + i]
                    if v > bestValue || (v.isNaN && !bestValue.isNaN) { best = k; bestValue = v }
                }
                dst[o * inner + i] = Float(best)
            }
        }
        return out
    }

    /// The index of the largest element of the flattened tensor.
    public func argmax() -> Tensor {
        let flat = reshaped([count])
        return (try? flat.argmax(dim: 0)) ?? Tensor(scalar: 0)
    }

    private func compare(_ other: Tensor, op: String, _ f: (Float, Float) -> Bool) throws -> Tensor {
        let s = try broadcastShape(shape, other.shape, op: op)
        let out = Tensor.empty(s, kind: .bool)
        let loop = StridedLoop(shape: s, strides: [broadcastStrides(shape, to: s),
                                                   broadcastStrides(other.shape, to: s),
                                                   broadcastStrides(s, to: s)])
        let a = storage.pointer, b = other.storage.pointer, o = out.storage.pointer
        loop.forEachRun { offsets, n, strides in
            for i in 0..<n {
                o[offsets[2] + i * strides[2]] =
                    f(a[offsets[0] + i * strides[0]], b[offsets[1] + i * strides[1]]) ? 1 : 0
            }
        }
        return out
    }

    /// Elementwise equality, as a boolean tensor (`x.eq(y)`).
    public func eq(_ other: Tensor) throws -> Tensor { try compare(other, op: "eq", ==) }
    public func ne(_ other: Tensor) throws -> Tensor { try compare(other, op: "ne", !=) }
    public func gt(_ other: Tensor) throws -> Tensor { try compare(other, op: "gt", >) }
    public func lt(_ other: Tensor) throws -> Tensor { try compare(other, op: "lt", <) }
    public func ge(_ other: Tensor) throws -> Tensor { try compare(other, op: "ge", >=) }
    public func le(_ other: Tensor) throws -> Tensor { try compare(other, op: "le", <=) }
    public func eq(_ value: Float) -> Tensor { (try? compare(Tensor(scalar: value), op: "eq", ==))! }
    public func gt(_ value: Float) -> Tensor { (try? compare(Tensor(scalar: value), op: "gt", >))! }
    public func lt(_ value: Float) -> Tensor { (try? compare(Tensor(scalar: value), op: "lt", <))! }

    /// Whether every element is non-zero, as a 0-d boolean tensor (`tensor(True)`).
    public func all() -> Tensor {
        let p = storage.pointer
        var result: Float = 1
        for i in 0..<count where p[i] == 0 { result = 0; break }
        return Tensor(shape: [], storage: Storage(count: 1, repeating: result), kind: .bool)
    }

    /// Whether any element is non-zero, as a 0-d boolean tensor.
    public func any() -> Tensor {
        let p = storage.pointer
        var result: Float = 0
        for i in 0..<count where p[i] != 0 { result = 1; break }
        return Tensor(shape: [], storage: Storage(count: 1, repeating: result), kind: .bool)
    }

    /// The Euclidean (L2) norm of all elements, as a 0-d tensor; no gradient.
    public func norm() -> Tensor {
        var acc = 0.0
        let p = storage.pointer
        for i in 0..<count { acc += Double(p[i]) * Double(p[i]) }
        return Tensor(scalar: Float(acc.squareRoot()))
    }

    /// Whether all elements are finite.
    public var isFinite: Bool {
        let p = storage.pointer
        for i in 0..<count where !p[i].isFinite { return false }
        return true
    }
}

extension Tensor {
    /// Compares the value of a one-element tensor with a number: the tutorial's
    /// `while y.data.norm() < 1000`.
    public static func < (a: Tensor, b: Float) -> Bool { a.storage.pointer[0] < b }
    public static func > (a: Tensor, b: Float) -> Bool { a.storage.pointer[0] > b }
}
