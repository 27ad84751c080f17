import ArgumentParser
import Benchmarks
import Distributed
import Foundation
import Training

@main
struct MNISTBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-bench",
        abstract: "Measure training and evaluation throughput and peak memory of LeNet or any config (release build).",
        discussion: "scripts/bench.sh (make bench) runs it for 1 and 2 threads and, when PyTorch is importable, "
            + "the same model on the same data in PyTorch, and prints both with their ratio.")

    @Option(help: "Directory holding the four MNIST files.") var dataDir: String = "data/mnist"
    @Option(help: "Threads.") var threads: Int = 2
    @Option(help: "Batch size (default 64, or the config's).") var batchSize: Int?
    @Option(help: "Benchmark this config's model, optimizer and batch size instead of the tutorial's LeNet.")
    var config: String?
    @Option(help: "Timed training steps (after 10 warm-up steps).") var steps: Int = 200
    @Option(help: "Evaluation batch size (default 100, or the config's test_batch_size).") var evalBatchSize: Int?
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Time each kernel of a training step on its own instead (no data needed); with --config, each convolution and batch norm of that model.") var ops = false
    @Option(help: "Under mpirun: time MPI_Allreduce of this many bytes of floats instead (e.g. 1724332, LeNet's gradients).")
    var allreduceBytes: Int?
    @Option(help: "Timed all-reduce calls (with --allreduce-bytes).") var calls: Int = 200

    func run() throws {
        guard threads >= 1, batchSize ?? 1 >= 1, steps >= 1, evalBatchSize ?? 1 >= 1 else {
            throw ValidationError("--threads, --batch-size, --steps and --eval-batch-size must be at least 1")
        }
        do {
            if ops { return try printOps() }
            if let allreduceBytes { return try printAllReduce(bytes: allreduceBytes) }
            let data = URL(fileURLWithPath: dataDir)
            let r: Benchmark.Result
            if let config {
                let loaded = try TrainingConfig.load(from: URL(fileURLWithPath: config))
                r = try ConfigBenchmark.run(config: loaded, dataDirectory: data, threads: threads, batchSize: batchSize,
                                            steps: steps, evalBatchSize: evalBatchSize)
            } else {
                r = try Benchmark.run(dataDirectory: data, threads: threads, batchSize: batchSize ?? 64, steps: steps,
                                      evalBatchSize: evalBatchSize ?? 100)
            }
            if json { print(r.json); return }
            print("CPU: \(cpuModelName), \(ProcessInfo.processInfo.activeProcessorCount) cores; kernels built for \(vectorISA); "
                  + "OpenBLAS kernels \(blasKernelsDescription)")
            let serial = r.threads > 1
                ? String(format: "\n              %.3f ms of it (mean) outside its %.0f parallel regions, on one thread alone",
                         r.serialSecondsPerStep * 1e3, r.regionsPerStep)
                : ""
            print(String(format: """
                mnist-train, %@, %d thread(s), batch %d, %d steps
                  training:   %.0f samples/s, %.1f s per epoch, %.1f GFLOP/s (%.0f%% of the FMA peak measured here, %.0f GFLOP/s)
                              a step takes %.2f ms (median; 10th percentile %.2f ms)%@
                  evaluation: 10,000 test images in %.2f s (accuracy %.2f%%)
                  peak RSS:   %.0f MB
                """, r.model, r.threads, r.batchSize, r.steps, r.samplesPerSecond, r.secondsPerEpoch, r.gflops,
                100 * r.peakShare, r.peakGFLOPs, r.stepSecondsMedian * 1e3, r.stepSecondsP10 * 1e3, serial, r.evalSeconds,
                100 * r.evalAccuracy, r.peakRSSMegabytes))
        } catch {
            FileHandle.standardError.write("mnist-bench: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode(1)
        }
    }

    func printAllReduce(bytes: Int) throws {
        guard bytes >= 4, calls >= 1 else { throw ValidationError("--allreduce-bytes must be at least 4 and --calls at least 1") }
        let group = try ProcessGroup.current()
        defer { group.finalize() }
        guard group.isDistributed else {
            throw ValidationError("--allreduce-bytes measures a collective: run it under mpirun -np N with N >= 2")
        }
        let r = try AllReduceBenchmark.run(group: group, floats: bytes / 4, calls: calls)
        guard group.isRoot else { return }
        if json {
            print(#"{"ranks": \#(r.ranks), "bytes": \#(r.bytes), "median_seconds": \#(r.medianSeconds), "#
                + #""best_seconds": \#(r.bestSeconds), "bus_bytes_per_second": \#(r.busBytesPerSecond)}"#)
        } else {
            print(String(format: "MPI_Allreduce of %d bytes over %d processes: median %.3f ms, best %.3f ms, bus bandwidth %.2f GB/s",
                         r.bytes, r.ranks, r.medianSeconds * 1e3, r.bestSeconds * 1e3, r.busBytesPerSecond / 1e9))
        }
    }

    func printOps() throws {
        let rows: [OpBenchmark.Row]
        if let config {
            let loaded = try TrainingConfig.load(from: URL(fileURLWithPath: config))
            let batch = batchSize ?? loaded.batchSize
            rows = try ConvLayerOps.run(config: loaded, threads: threads, batch: batch)
            print("convolutions and batch norms of \(loaded.name), batch \(batch), \(threads) thread(s) (best of 20 calls each)")
        } else {
            rows = try OpBenchmark.run(threads: threads, batch: batchSize ?? 64)
            print("kernels of one LeNet training step, batch \(batchSize ?? 64), \(threads) thread(s) (best of 50 calls each)")
        }
        let total = rows.reduce(0) { $0 + $1.seconds }
        for row in rows {
            let rate = row.flops > 0 ? String(format: "%6.1f GFLOP/s", row.gflops) : ""
            print("  " + padded(row.name) + String(format: "%8.3f ms  %5.1f%%  ", row.seconds * 1e3,
                                                    100 * row.seconds / total) + rate)
        }
        print("  " + padded("sum") + String(format: "%8.3f ms", total * 1e3))
        if threads > 1 {
            let overhead = OpBenchmark.parallelRegionOverhead(threads: threads)
            print(String(format: "overhead of one parallel region (median of 200, 50 µs of work per thread): "
                + "worker pool %.1f µs, DispatchQueue.concurrentPerform %.1f µs",
                overhead.pool * 1e6, overhead.dispatch * 1e6))
        }
    }

    private func padded(_ name: String) -> String { name.padding(toLength: 42, withPad: " ", startingAt: 0) }
}
