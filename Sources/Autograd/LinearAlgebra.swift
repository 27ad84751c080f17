import Kernels

extension Tensor {
    /// The matrix product of `(m, k)` and `(k, n)` tensors through `cblas_sgemm`
    /// (`MmBackward0`). Backward: `g·bᵀ` and `aᵀ·g`.
    public func matmul(_ other: Tensor) throws -> Tensor {
        guard rank == 2, other.rank == 2, shape[1] == other.shape[0] else {
            throw TensorError.shapeMismatch(
                op: "matmul", "mat1 and mat2 shapes cannot be multiplied (\(shape) and \(other.shape)); "
                    + "expected (m, k) and (k, n)")
        }
        let a = self, b = other
        let m = shape[0], k = shape[1], n = other.shape[1]
        let out = Tensor.empty([m, n])
        parallelSgemm(m: m, n: n, k: k, a: a.storage.pointer, b: b.storage.pointer, c: out.storage.pointer)
        return out.recording("MmBackward0", inputs: [a, b]) { g in
            var ga: Tensor?, gb: Tensor?
            if a.requiresGrad {
                let t = Tensor.empty([m, k])
                parallelSgemm(transposeB: true, m: m, n: k, k: n, a: g.storage.pointer, b: b.storage.pointer,
                      c: t.storage.pointer)
                ga = t
            }
            if b.requiresGrad {
                let t = Tensor.empty([k, n])
                parallelSgemm(transposeA: true, m: k, n: n, k: m, a: a.storage.pointer, b: g.storage.pointer,
                      c: t.storage.pointer)
                gb = t
            }
            return [ga, gb]
        }
    }
}
