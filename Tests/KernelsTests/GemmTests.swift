import CCPU
import Foundation
@testable import Kernels
import TestSupport
import Testing

/// The OpenBLAS GEMM the im2col paths call: the kernels it runs, and its products.
@Suite struct GemmTests {
    /// Where the CPU and OS run AVX2 or AVX-512 and no core was named in the environment,
    /// OpenBLAS runs kernels at least 8 lanes wide, whatever its own tables knew of the CPU:
    /// on the Emerald Rapids Xeon its choice ("Prescott", SSE3) is replaced by "SkylakeX".
    @Test func openBLASRunsKernelsAsWideAsTheCPU() {
        let choice = BLASKernels.current
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let wanted = cpu_openblas_core() else {
            return  // named by the user, or a CPU without AVX2: OpenBLAS's choice stands
        }
        #expect(BLASKernels.wideCores.contains(choice.running.lowercased()),
                "OpenBLAS runs \(choice.running) (it chose \(choice.detected)) on a CPU that runs \(String(cString: wanted))")
        if choice.replaced { #expect(choice.running == String(cString: wanted)) }
        // Asked again: the same choice, made once.
        #expect(BLASKernels.current == choice)
    }

    /// Products of every transpose combination against Double sums, with sizes that take
    /// OpenBLAS's blocked kernels and their edges (rows and columns not multiples of the
    /// kernels' tiles), through `parallelSgemm` at 1 and 2 threads: the kernels chosen again
    /// (`BLASKernels`) compute what the ones chosen at load would.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func productsMatchDoublePrecision(_ transposeA: Bool, _ transposeB: Bool) {
        let m = 67, n = 45, k = 129
        var random = TestRandom(seed: 23)
        let a = random.floats(m * k), b = random.floats(k * n), start = random.floats(m * n)
        func aAt(_ i: Int, _ p: Int) -> Double { Double(transposeA ? a[p * m + i] : a[i * k + p]) }
        func bAt(_ p: Int, _ j: Int) -> Double { Double(transposeB ? b[j * k + p] : b[p * n + j]) }
        var expected = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.5 * Double(start[i * n + j])
                for p in 0..<k { sum += 2 * aAt(i, p) * bAt(p, j) }
                expected[i * n + j] = sum
            }
        }
        for threads in [1, 2] {
            var c = start
            Parallelism.withThreadCount(threads) {
                c.withUnsafeMutableBufferPointer { c in
                    parallelSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 2, a: a, b: b,
                                  beta: 0.5, c: c.baseAddress!)
                }
            }
            if let message = compareClose(c, expected, rtol: 1e-5, atol: 1e-4,
                                          label: "A\(transposeA ? "ᵀ" : "") B\(transposeB ? "ᵀ" : "") at \(threads) threads") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }
}
