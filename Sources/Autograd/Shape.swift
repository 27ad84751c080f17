// MARK: - Views: same elements, another shape

extension Tensor {
    /// A view with another shape over the same storage, recording nothing.
    func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, storage: storage, kind: kind)
    }

    /// The shape with one `-1` inferred from the element count.
    func resolve(_ newShape: [Int], op: String) throws -> [Int] {
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1, newShape.allSatisfy({ $0 >= -1 }) else {
            throw TensorError.invalidShape(op: op, shape: newShape, count: count)
        }
        var result = newShape
        if let i = inferred.first {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError.invalidShape(op: op, shape: newShape, count: count)
            }
            result[i] = count / known
        }
        guard result.reduce(1, *) == count else {
            throw TensorError.invalidShape(op: op, shape: newShape, count: count)
        }
        return result
    }

    /// A view of another shape with the same elements in the same order; one dimension may
    /// be `-1`. Backward: the gradient viewed back to this shape (`ViewBackward0`).
    public func view(_ newShape: [Int]) throws -> Tensor {
        try viewRecording(resolve(newShape, op: "view"), name: "ViewBackward0")
    }
    public func view(_ newShape: Int...) throws -> Tensor { try view(newShape) }

    /// The same as `view` (every tensor here is contiguous).
    public func reshape(_ newShape: [Int]) throws -> Tensor { try view(newShape) }
    public func reshape(_ newShape: Int...) throws -> Tensor { try view(newShape) }

    /// Merges dimensions `startDim...endDim` into one (PyTorch's `flatten`).
    public func flatten(startDim: Int = 0, endDim: Int = -1) throws -> Tensor {
        if rank == 0 { return try view([1]) }
        let s = try normalize(dim: startDim, op: "flatten"), e = try normalize(dim: endDim, op: "flatten")
        guard s <= e else {
            throw TensorError.invalidArgument(op: "flatten", "startDim \(startDim) comes after endDim \(endDim)")
        }
        if s == e { return self }
        let merged = shape[s...e].reduce(1, *)
        return try viewRecording(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]), name: "ViewBackward0")
    }

    /// Removes dimension `dim` if it has size 1 (`SqueezeBackward1`).
    public func squeeze(_ dim: Int) throws -> Tensor {
        let d = try normalize(dim: dim, op: "squeeze")
        guard rank > 0, shape[d] == 1 else { return self }
        var s = shape
        s.remove(at: d)
        return try viewRecording(s, name: "SqueezeBackward1")
    }

    /// Removes every dimension of size 1 (`SqueezeBackward0`).
    public func squeeze() throws -> Tensor {
        try viewRecording(shape.filter { $0 != 1 }, name: "SqueezeBackward0")
    }

    /// Inserts a dimension of size 1 at `dim` (`UnsqueezeBackward0`).
    public func unsqueeze(_ dim: Int) throws -> Tensor {
        let d = dim < 0 ? dim + rank + 1 : dim
        guard d >= 0, d <= rank else { throw TensorError.invalidDimension(op: "unsqueeze", dim: dim, rank: rank + 1) }
        var s = shape
        s.insert(1, at: d)
        return try viewRecording(s, name: "UnsqueezeBackward0")
    }

    private func viewRecording(_ newShape: [Int], name: String) throws -> Tensor {
        let inputShape = shape
        return reshaped(newShape).recording(name, inputs: [self]) { g in [g.reshaped(inputShape)] }
    }

    /// The transpose of a matrix, as a copy (`TBackward0`).
    public func t() throws -> Tensor {
        guard rank == 2 else {
            throw TensorError.invalidArgument(op: "t", "expects a 2-d tensor, got shape \(shape)")
        }
        return transposed2d().recording("TBackward0", inputs: [self]) { g in [g.transposed2d()] }
    }

    func transposed2d() -> Tensor {
        let r = shape[0], c = shape[1]
        let out = Tensor.empty([c, r])
        let src = storage.pointer, dst = out.storage.pointer
        for i in 0..<r { for j in 0..<c { dst[j * r + i] = src[i * c + j] } }
        return out
    }

    /// The `index`-th slice along the first dimension (`images[0]`), as a copy.
    public subscript(index: Int) -> Tensor {
        get throws {
            guard rank > 0 else { throw TensorError.invalidArgument(op: "subscript", "cannot index a 0-d tensor") }
            let i = index < 0 ? index + shape[0] : index
            guard i >= 0, i < shape[0] else {
                throw TensorError.invalidArgument(
                    op: "subscript", "index \(index) is out of bounds for dimension 0 with size \(shape[0])")
            }
            let inner = Array(shape.dropFirst())
            let n = inner.reduce(1, *)
            let out = Tensor(shape: inner,
                             storage: Storage(copying: UnsafeBufferPointer(start: storage.pointer + i * n, count: n)),
                             kind: kind)
            let outer = shape
            return out.recording("SelectBackward0", inputs: [self]) { g in
                let full = Tensor.full(outer, 0)
                (full.storage.pointer + i * n).update(from: g.storage.pointer, count: n)
                return [full]
            }
        }
    }
}
