import Foundation
import Dispatch
import Kernels

/// The machine's fused multiply-add peak in GFLOP/s on `threads` threads, measured: each
/// thread runs ten independent chains of 8-lane FMAs (enough to cover the FMA latency) for
/// about `seconds`. `mnist-bench` reports achieved FLOP rates as a share of it.
///
/// Compiled for the building CPU like the kernels, with the widest vectors it has
/// (`vectorISA`): 8 lanes with AVX2 + FMA (16 FLOP per instruction), 16 with AVX-512. On
/// the 2-core AMD EPYC (Zen 3) of the README it reads about 99 GFLOP/s per core.
public func measureFMAPeakGFLOPs(threads: Int, seconds: Double = 0.2) -> Double {
    let iterations = 1 << 20
    #if MNIST_ISA_AVX512
    // 16-lane chains: one zmm register each on a machine with AVX-512 (12 chains × 16 lanes × 2 FLOP).
    let probe = fmaChains16, flopsPerIteration = 384.0
    #else
    // 10 chains × 8 lanes × 2 FLOP per iteration.
    let probe = fmaChains, flopsPerIteration = 160.0
    #endif
    var rates = [Double](repeating: 0, count: threads)
    rates.withUnsafeMutableBufferPointer { rates in
        let rates = rates.baseAddress!
        runInParallel(threads) { thread in
            var best = 0.0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            while elapsed < seconds {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let sink = probe(iterations)
                let t1 = DispatchTime.now().uptimeNanoseconds
                if sink.isFinite { best = max(best, Double(iterations) * flopsPerIteration / Double(t1 - t0)) }
                elapsed = Double(t1 - start) / 1e9
            }
            rates[thread] = best
        }
    }
    return rates.reduce(0, +)
}

@inline(never)
func fmaChains(iterations: Int) -> Float {
    let b = SIMD8<Float>(repeating: 0.999_999), c = SIMD8<Float>(repeating: 1e-7)
    var a0 = SIMD8<Float>(repeating: 1), a1 = a0, a2 = a0, a3 = a0, a4 = a0
    var a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0
    for _ in 0..<iterations {
        // a = c + a · b: a chain per register, converging (no overflow to infinity).
        a0 = c.addingProduct(a0, b); a1 = c.addingProduct(a1, b); a2 = c.addingProduct(a2, b)
        a3 = c.addingProduct(a3, b); a4 = c.addingProduct(a4, b); a5 = c.addingProduct(a5, b)
        a6 = c.addingProduct(a6, b); a7 = c.addingProduct(a7, b); a8 = c.addingProduct(a8, b)
        a9 = c.addingProduct(a9, b)
    }
    return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9).sum()
}

/// Twelve chains of 16-lane FMAs: what an AVX-512 core needs in flight (two FMA units, four
/// cycles of latency) within its 32 vector registers.
@inline(never)
func fmaChains16(iterations: Int) -> Float {
    let b = SIMD16<Float>(repeating: 0.999_999), c = SIMD16<Float>(repeating: 1e-7)
    var a0 = SIMD16<Float>(repeating: 1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0
    var a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0
    for _ in 0..<iterations {
        a0 = c.addingProduct(a0, b); a1 = c.addingProduct(a1, b); a2 = c.addingProduct(a2, b)
        a3 = c.addingProduct(a3, b); a4 = c.addingProduct(a4, b); a5 = c.addingProduct(a5, b)
        a6 = c.addingProduct(a6, b); a7 = c.addingProduct(a7, b); a8 = c.addingProduct(a8, b)
        a9 = c.addingProduct(a9, b); a10 = c.addingProduct(a10, b); a11 = c.addingProduct(a11, b)
    }
    return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).sum()
}

/// The vector instructions this build of the numeric code may use, as mnist-bench prints it.
public var vectorISA: String {
    #if MNIST_TARGET_NAMED
    let built = "built for the CPU MNIST_TARGET_CPU names"
    #else
    let built = "built natively"
    #endif
    #if MNIST_ISA_AVX512
    return "AVX-512 (16 float lanes), \(built)"
    #elseif MNIST_ISA_AVX2
    return "AVX2 + FMA (8 float lanes), \(built)"
    #else
    return "the baseline or another target (\(built))"
    #endif
}

/// The OpenBLAS kernels the GEMM calls run, as mnist-bench prints them: the core's name, and
/// OpenBLAS's own choice where it was replaced (`BLASKernels`).
public var blasKernelsDescription: String {
    let choice = BLASKernels.current
    return choice.replaced ? "\(choice.running) (OpenBLAS chose \(choice.detected) for this CPU)" : choice.running
}

/// The CPU's model name (/proc/cpuinfo), or "unknown".
public var cpuModelName: String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let colon = line.firstIndex(of: ":") else { return "unknown" }
    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
}
