import COpenBLAS

/// Row-major single-precision matrix product through OpenBLAS:
/// `C = alpha * op(A) * op(B) + beta * C`.
///
/// - Parameters:
///   - a: `(m, k)` or, with `transposeA`, `(k, m)`, row-major.
///   - b: `(k, n)` or, with `transposeB`, `(n, k)`, row-major.
///   - c: `(m, n)`, row-major; read only when `beta != 0`.
public func sgemm(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    guard m > 0, n > 0 else { return }
    _ = Parallelism.blasIsSingleThreaded
    if k == 0 {
        // BLAS leaves C alone with k == 0 only when beta == 1; make beta's meaning explicit.
        if beta == 0 { c.update(repeating: 0, count: m * n) } else if beta != 1 {
            for i in 0..<(m * n) { c[i] *= beta }
        }
        return
    }
    cblas_sgemm(
        CblasRowMajor,
        transposeA ? CblasTrans : CblasNoTrans,
        transposeB ? CblasTrans : CblasNoTrans,
        Int32(m), Int32(n), Int32(k), alpha,
        a, Int32(lda ?? (transposeA ? m : k)),
        b, Int32(ldb ?? (transposeB ? k : n)),
        beta, c, Int32(ldc ?? n))
}

/// `sgemm` split by rows of `C` over `Parallelism.threadCount` threads, each running a
/// single-threaded OpenBLAS call on its block. The split depends only on `m` and the
/// thread count, so results are deterministic; and OpenBLAS is never entered by several
/// threads while it runs threads of its own (which its pthreads build does not make safe).
public func parallelSgemm(
    transposeA: Bool = false, transposeB: Bool = false,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    let lda = lda ?? (transposeA ? m : k), ldc = ldc ?? n
    // Below ~1 MFLOP per thread the hand-off costs more than it saves.
    let minimumRows = max(8, 1_000_000 / max(1, n * k))
    Parallelism.forEachChunk(m, minimumPerChunk: minimumRows) { _, rows in
        guard !rows.isEmpty else { return }
        sgemm(transposeA: transposeA, transposeB: transposeB, m: rows.count, n: n, k: k, alpha: alpha,
              a: transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda, lda: lda,
              b: b, ldb: ldb, beta: beta, c: c + rows.lowerBound * ldc, ldc: ldc)
    }
}
