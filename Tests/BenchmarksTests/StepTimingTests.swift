@testable import Benchmarks
import Kernels
import Foundation
import Testing

/// The step-time percentiles `mnist-bench` reports and `scripts/bench_table.py` compares.
struct StepTimingTests {
    @Test func percentilesAreNearestRankOfTheSortedSteps() {
        let timing = TrainingTiming(seconds: 55, sortedStepSeconds: (1...10).map(Double.init))
        #expect(timing.percentile(0) == 1)
        #expect(timing.percentile(0.1) == 2)  // rank 0.9 → 1
        #expect(timing.percentile(0.5) == 6)  // rank 4.5 → 5, as bench_torch.py's int(x + 0.5)
        #expect(timing.percentile(1) == 10)
        #expect(TrainingTiming(seconds: 3, sortedStepSeconds: [3]).percentile(0.5) == 3)
    }

    @Test func serialTimeIsWhatTheRegionsLeaveOfTheSteps() {
        let timing = TrainingTiming(seconds: 0.05, sortedStepSeconds: Array(repeating: 0.005, count: 10),
                                    regionSeconds: 0.045, regions: 160)
        #expect(abs(timing.serialSecondsPerStep - 0.0005) < 1e-12)
        #expect(timing.regionsPerStep == 16)
    }

    /// The clock counts the wall time of regions of two or more chunks that the thread which
    /// started it enters while it runs, and nothing while stopped, for a region of one chunk
    /// (which runs inline) or for another thread's regions (other tests run beside this one).
    @Test func regionClockCountsOnlyParallelRegionsWhileRunning() {
        let (seconds, count) = (RegionClock.seconds, RegionClock.count)
        runInParallel(2) { _ in usleep(2_000) }
        #expect(RegionClock.count == count && RegionClock.seconds == seconds)
        RegionClock.run(true)
        runInParallel(2) { _ in usleep(2_000) }
        runInParallel(1) { _ in usleep(2_000) }
        let other = Thread { runInParallel(2) { _ in usleep(2_000) } }
        other.start()
        while !other.isFinished { usleep(1_000) }
        RegionClock.run(false)
        #expect(RegionClock.count == count + 1)
        #expect(RegionClock.seconds - seconds >= 0.002)
    }

    @Test func jsonCarriesTheStepTimesInMilliseconds() throws {
        var result = Benchmark.Result(
            threads: 2, batchSize: 64, steps: 10, trainSeconds: 0.05, samplesPerSecond: 12_800, secondsPerEpoch: 4.7,
            gflops: 169, peakGFLOPs: 235, peakShare: 0.72, evalSeconds: 0.2, evalAccuracy: 0.97, peakRSSMegabytes: 60)
        result.stepSecondsP10 = 0.004
        result.stepSecondsMedian = 0.0045
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
        #expect(object["step_ms_p10"] as? Double == 4)
        #expect(object["step_ms_p50"] as? Double == 4.5)
        #expect(object["samples_per_second"] as? Double == 12_800)
        result.serialSecondsPerStep = 0.0003
        result.regionsPerStep = 16
        let withSerial = try #require(
            try JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
        #expect(abs((withSerial["step_serial_ms"] as? Double ?? 0) - 0.3) < 1e-9)
        #expect(withSerial["regions_per_step"] as? Double == 16)
        // Not measured (a Result built by hand): null, not NaN, which JSON cannot hold.
        result.stepSecondsMedian = .nan
        let unmeasured = try #require(
            try JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
        #expect(unmeasured["step_ms_p50"] is NSNull)
    }
}
