import CCPU
import COpenBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The kernels OpenBLAS runs, and their repair where it took narrower ones than the CPU runs.
///
/// OpenBLAS's dynamic builds (Debian's 0.3.21) pick their kernels once, as the library
/// loads, from the CPU's family and model. A model newer than its tables can land on its
/// SSE3 kernels: Intel's Emerald Rapids (family 6 model 207) got "Prescott", whose GEMM is a
/// quarter as wide as the CPU's. The convolutions that go through im2col + GEMM (padded
/// ones: `configs/mnist-best.json`'s) then spent 12% of a run in `sgemm_kernel_PRESCOTT`
/// (`perf record -e cpu-clock mnist-bench --config configs/mnist-best.json --threads 1
/// --steps 10`). So before OpenBLAS's first call, when
/// the user has not named a core (`OPENBLAS_CORETYPE`), OpenBLAS took a core without AVX2
/// kernels, and the CPU and OS run AVX2 or AVX-512 (`cpu_openblas_core`, the checks OpenBLAS
/// makes), its choice is made again for that core ("Haswell" or "SkylakeX": OpenBLAS's own
/// `gotoblas_dynamic_quit` and `gotoblas_dynamic_init`, reading the name from the
/// environment, which is then restored). Builds without them (not dynamic) are left alone.
public enum BLASKernels {
    /// OpenBLAS's core names (lowercased) whose kernels use AVX2 or wider vectors.
    static let wideCores: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator"]

    /// The core OpenBLAS chose as it loaded, and the one it runs.
    public struct Choice: Sendable, Equatable {
        public let detected: String
        public let running: String
        /// Whether `running` replaced OpenBLAS's own choice.
        public var replaced: Bool { detected != running }
    }

    /// Made once, from `Parallelism.blasIsSingleThreaded`, before OpenBLAS's first call.
    static let chosen: Choice = {
        let detected = String(cString: openblas_get_corename())
        guard getenv("OPENBLAS_CORETYPE") == nil, !wideCores.contains(detected.lowercased()),
              let wanted = cpu_openblas_core(),
              let quit = dlsym(nil, "gotoblas_dynamic_quit"), let initialize = dlsym(nil, "gotoblas_dynamic_init")
        else { return Choice(detected: detected, running: detected) }
        typealias Call = @convention(c) () -> Void
        setenv("OPENBLAS_CORETYPE", wanted, 1)
        unsafeBitCast(quit, to: Call.self)()
        unsafeBitCast(initialize, to: Call.self)()
        unsetenv("OPENBLAS_CORETYPE")
        return Choice(detected: detected, running: String(cString: openblas_get_corename()))
    }()

    /// The choice, made first if it was not yet.
    public static var current: Choice {
        _ = Parallelism.blasIsSingleThreaded
        return chosen
    }
}

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
