import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a training run will hold in memory at its peak, estimated from the layer shapes
/// (`ModelBuilder.plan`) before anything is allocated, so that a config that cannot fit is
/// refused with the numbers instead of dying in the allocator.
///
/// The parts, in bytes (float32 everywhere):
/// - parameters: weights, their gradients, the optimizer's buffers (SGD momentum: 1,
///   Adam: 2 per weight), the averaged weights (`ema`: 1, and 1 more in each checkpoint
///   copy) and the two copies a checkpoint write makes;
/// - training: for one batch, the input, every layer's output (kept for backward) and the
///   gradient of each (the allocator caches freed blocks by size), max-pool indices, and
///   two more input batches: the loader's array of the batch in use and, when a core is
///   left for prefetching (`BatchSequence`), the next one being built (one batch too many
///   when the kernels' threads take every core);
/// - scratch: a convolution's per-sample im2col matrix, forward and backward, per thread;
/// - evaluation: one evaluation batch through every layer (without gradients);
/// - data: the images as bytes (packed, at most about their raw size; MNIST packs to a
///   quarter), and the copies a train or test limit makes;
/// - base: the runtime, OpenBLAS and the allocator's cache, measured (about 60 MB).
public struct MemoryEstimate: Sendable, Equatable {
    public var parameters = 0
    public var training = 0
    public var scratch = 0
    public var evaluation = 0
    public var data = 0
    public var base = 64 << 20
    /// The layer with the largest output per sample (where a smaller size helps most).
    public var largestLayer: ModelBuilder.LayerPlan?

    /// Training and evaluation do not overlap: the peak is the larger of the two.
    public var total: Int { base + data + parameters + max(training + scratch, evaluation) }

    public init(config: TrainingConfig, plan: [ModelBuilder.LayerPlan], trainImages: Int = 60_000, testImages: Int = 10_000) {
        let f = MemoryLayout<Float>.size
        let parameterCount = plan.reduce(0) { $0 + $1.parameterCount }
        let optimizerBuffers = config.optimizer.type == "sgd" ? (config.optimizer.momentum > 0 ? 1 : 0) : 2
        let averaged = config.emaDecay != nil ? 3 : 0
        parameters = parameterCount * f * (2 + optimizerBuffers + 2 + averaged)
        let input = config.inputShape.reduce(1, *)
        var perSample = input
        var poolIndices = 0
        for layer in plan {
            let values = layer.outputShape.reduce(1, *)
            perSample += 2 * values
            if layer.type == "max_pool2d" { poolIndices += values }
        }
        training = config.batchSize * f * (perSample + poolIndices + 2 * input)
        let largestScratch = plan.map(\.scratchValues).max() ?? 0
        scratch = 2 * config.threads * largestScratch * f
        evaluation = config.testBatchSize * f * (input + plan.reduce(0) { $0 + $1.outputShape.reduce(1, *) })
        let trainCount = min(trainImages, config.data.trainLimit ?? trainImages)
        let testCount = min(testImages, config.data.testLimit ?? testImages)
        data = input * (trainImages + testImages + trainCount + testCount)
        largestLayer = plan.max { $0.outputShape.reduce(1, *) < $1.outputShape.reduce(1, *) }
    }

    /// "1.2 GB", "340 MB", "12 KB".
    public static func format(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        if b >= 1e6 { return String(format: "%.0f MB", b / 1e6) }
        return String(format: "%.0f KB", b / 1e3)
    }

    /// One line: the total and its largest parts.
    public var summary: String {
        let parts = [("activations and gradients of a batch", training), ("parameters, gradients and optimizer state", parameters),
                     ("evaluation batch", evaluation), ("convolution scratch", scratch), ("images", data)]
            .filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }.prefix(3)
            .map { "\($0.0) \(Self.format($0.1))" }.joined(separator: ", ")
        return "about \(Self.format(total)) (\(parts))"
    }
}

/// How much memory this process may use: the least of physical memory, the cgroup's
/// limit, and what `RLIMIT_AS` / `RLIMIT_DATA` leave beyond what is mapped already.
public struct MemoryLimit: Sendable, Equatable {
    public var bytes: Int
    /// Which limit it is, for the message: "physical memory", "the cgroup limit
    /// (/sys/fs/cgroup/memory.max)", "RLIMIT_AS (ulimit -v)", ...
    public var source: String

    public init(bytes: Int, source: String) {
        self.bytes = bytes
        self.source = source
    }

    /// The limits in force for this process now.
    public static func current() -> MemoryLimit {
        var limits: [MemoryLimit] = []
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0 && pageSize > 0 { limits.append(MemoryLimit(bytes: pages * pageSize, source: "physical memory")) }
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), value < 1 << 60 {
                limits.append(MemoryLimit(bytes: value, source: "the cgroup limit (\(file))"))
            }
        }
        for (resource, name, key) in [(RLIMIT_AS, "RLIMIT_AS (ulimit -v)", "VmSize"), (RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)", "VmData")] {
            var limit = rlimit()
            #if canImport(Glibc)
            let got = getrlimit(__rlimit_resource_t(resource.rawValue), &limit)
            #else
            let got = getrlimit(resource, &limit)
            #endif
            if got == 0 && limit.rlim_cur < UInt64(1) << 60 {  // RLIM_INFINITY is all ones
                // What is mapped already stays mapped; the run needs room beyond it.
                let mapped = procBytes("/proc/self/status", key) ?? 0
                limits.append(MemoryLimit(bytes: max(0, Int(limit.rlim_cur) - mapped), source: name))
            }
        }
        return limits.min { $0.bytes < $1.bytes } ?? MemoryLimit(bytes: .max, source: "no limit")
    }

    /// `MemAvailable` of /proc/meminfo: what the machine has free now (nil if unknown).
    public static func availableNow() -> Int? { procBytes("/proc/meminfo", "MemAvailable") }

    /// A `Key:   1234 kB` line of a /proc file, in bytes (nil if absent).
    static func procBytes(_ file: String, _ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return Int(line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
                .map { $0 * 1024 }
        }
        return nil
    }
}
