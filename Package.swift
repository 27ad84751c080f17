// swift-tools-version:6.0
import PackageDescription
import Foundation

/// Swift compiles for the baseline of its architecture unless told otherwise (on x86-64:
/// SSE2, no AVX, no FMA: `SIMD8<Float>.addingProduct` becomes eight calls to `fmaf`). The
/// numeric targets are compiled for the building machine's CPU instead, which gives the
/// kernels AVX2/FMA (or NEON) vector code. Set MNIST_TARGET_CPU to a CPU name (`haswell`,
/// `znver3`, ...) to build for another machine, or to `generic` for the baseline.
let targetCPU = ProcessInfo.processInfo.environment["MNIST_TARGET_CPU"] ?? "native"
let tuned: [SwiftSetting] = targetCPU == "generic" ? [] : [.unsafeFlags(["-target-cpu", targetCPU])]

/// The widest vectors a native build may use, for mnist-bench to report and to probe its
/// FMA peak with (`MNIST_ISA_AVX512`: 16 float lanes; `MNIST_ISA_AVX2`: 8), read from the
/// building machine's /proc/cpuinfo (for a named target CPU, from its name: below). The
/// kernels take their 16-lane paths under `MNIST_ISA_AVX512`.
let cpuFlags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
    .split(separator: "\n").first { $0.hasPrefix("flags") }.map { Set($0.split(separator: " ").map(String.init)) } ?? []
/// For a named target CPU (`MNIST_TARGET_CPU`) the same defines follow from its name, with
/// `MNIST_TARGET_NAMED` beside them: `haswell` on an AVX-512 machine builds the 8-lane
/// kernels, as an AVX2-only machine would run them.
let avx512CPUs: Set<String> = ["skylake-avx512", "cascadelake", "cooperlake", "icelake-server",
                                "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5"]
let avx2CPUs: Set<String> = ["haswell", "core-avx2", "broadwell", "skylake", "alderlake", "znver1", "znver2", "znver3"]
let isa: [SwiftSetting] = targetCPU != "native"
    ? (avx512CPUs.contains(targetCPU) ? [.define("MNIST_ISA_AVX512")]
        : avx2CPUs.contains(targetCPU) ? [.define("MNIST_ISA_AVX2")] : []) + [.define("MNIST_TARGET_NAMED")]
    : cpuFlags.contains("avx512f") ? [.define("MNIST_ISA_AVX512")]
    : cpuFlags.contains("avx2") && cpuFlags.contains("fma") ? [.define("MNIST_ISA_AVX2")] : []

/// Targets point one way: Kernels ← Autograd ← NN and Kernels ← Autograd ← Optim (Optim
/// needs tensors, not modules); SafeTensors, MNISTData, Plot and Distributed stand alone; Training
/// brings them together; Benchmarks measures them (for mnist-bench only); executables
/// only parse arguments.
let package = Package(
    name: "mnist-train",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mnist-train", targets: ["mnist-train"]),
        .executable(name: "mnist-eval", targets: ["mnist-eval"]),
        .executable(name: "mnist-viz", targets: ["mnist-viz"]),
        .executable(name: "autograd-tour", targets: ["autograd-tour"]),
        .executable(name: "mnist-bench", targets: ["mnist-bench"]),
        .executable(name: "mnist-export", targets: ["mnist-export"]),
        .executable(name: "mnist-predict", targets: ["mnist-predict"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        // Not a library: one inline C function (a prefetch) the kernels call.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        // Not a library either: AVX-512 compress, for listing a sparse gradient's nonzeros.
        .systemLibrary(name: "CCompress", path: "Sources/CCompress"),
        // Nor this: CPUID, for a kernel choice that depends on how the CPU runs 512-bit vectors.
        .systemLibrary(name: "CCPU", path: "Sources/CCPU"),
        // Open MPI (libopenmpi-dev): mpi.h lives under its own include directory.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),

        // MARK: - Libraries
        .target(name: "Seeded"),
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CPrefetch", "CCompress", "CCPU"], swiftSettings: tuned + isa),
        .target(name: "Autograd", dependencies: ["Kernels", "Seeded"], exclude: ["README.md"], swiftSettings: tuned),
        .target(name: "NN", dependencies: ["Autograd", "Kernels", "Seeded"], swiftSettings: tuned),
        .target(name: "Optim", dependencies: ["Autograd", "NN", "Kernels"], swiftSettings: tuned),
        .target(name: "SafeTensors"),
        // Encoders for other tools' formats: protocol buffers, ONNX models.
        .target(name: "Interop"),
        .target(name: "MNISTData", dependencies: ["CZlib", "Kernels", "Seeded"], swiftSettings: tuned),
        .target(name: "Plot", dependencies: ["CZlib", "SafeTensors"]),
        // Data-parallel training: the process group of an mpirun job and its collectives.
        .target(name: "Distributed", dependencies: ["CMPI"]),
        .target(
            name: "Training",
            dependencies: ["Autograd", "NN", "Optim", "SafeTensors", "MNISTData", "Plot", "Kernels", "Seeded", "Interop", "Distributed"]),
        // Measurement only (mnist-bench): throughput, per-kernel timings, the FMA peak and
        // parallel-region overhead probes. Compiled for the CPU like the kernels it measures.
        .target(
            name: "Benchmarks",
            dependencies: ["Training", "Autograd", "NN", "Optim", "MNISTData", "Kernels", "Seeded", "Distributed"],
            exclude: ["RESULTS.md"], swiftSettings: tuned + isa),
        .target(name: "TestSupport"),
        .target(name: "Examples", dependencies: ["Autograd", "Seeded"]),

        // MARK: - Executables (argument parsing only)
        .executableTarget(
            name: "mnist-train",
            dependencies: ["Training", "MNISTData", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "mnist-eval",
            dependencies: ["Training", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "mnist-viz",
            dependencies: ["Training", "Plot", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "mnist-export",
            dependencies: ["Training", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "mnist-predict",
            dependencies: ["Training", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "autograd-tour", dependencies: ["Examples"]),
        .executableTarget(
            name: "mnist-bench",
            dependencies: ["Benchmarks", "Distributed", "Training",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // MARK: - Tests
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Seeded", "TestSupport"]),
        .testTarget(name: "AutogradTests", dependencies: ["Autograd", "Examples", "Seeded", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Autograd", "Kernels", "Seeded", "TestSupport"]),
        .testTarget(
            name: "OptimTests",
            dependencies: ["Optim", "NN", "Autograd", "Seeded", "SafeTensors", "MNISTData", "TestSupport"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "Seeded", "TestSupport"]),
        .testTarget(name: "MNISTDataTests", dependencies: ["MNISTData", "CZlib", "Kernels", "Seeded", "TestSupport"]),
        .testTarget(name: "PlotTests", dependencies: ["Plot", "CZlib", "TestSupport"], exclude: ["check_png.py", "make_pngs.py"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Kernels", "Seeded"]),
        .testTarget(
            name: "TrainingTests",
            dependencies: [
                "Training", "Autograd", "NN", "Optim", "SafeTensors", "MNISTData", "Plot", "Seeded", "TestSupport",
                "Distributed",
            ],
            exclude: ["decode_interop.py"]),
    ]
)
