import Dispatch
import Foundation
import Synchronization

/// Runs `body(0..<count)` on the calling thread and `count - 1` worker threads, and returns
/// when all have finished: the one way the kernels run chunks in parallel.
///
/// A training step hands about 20 short parallel regions (0.001 to 2 ms each) to the
/// workers (LeNet 19, the speedrun nets 24: `regions_per_step` of `mnist-bench --threads 2
/// --json`). `DispatchQueue.concurrentPerform` costs about 70 µs per region here beyond the
/// work, the pool under 1 µs (`measureParallelRegionOverhead` in the Benchmarks target,
/// printed by `mnist-bench --ops`); a dozen regions of 70 µs were about a tenth of a LeNet
/// step. The pool's workers spin for a while after each region, so the next one starts within
/// microseconds, then sleep on a semaphore when no work comes (between runs, say).
///
/// The pool serves one caller at a time, and at most one thread per core (more would spin on
/// the cores the others need). A second caller (another test, another run in the
/// same process) or a nested call falls back to `concurrentPerform`: same chunks, same
/// results, only slower.
///
/// Public for the measurements in the Benchmarks target (the FMA peak and the region
/// overhead), which must run on the same threads as the kernels.
public func runInParallel(_ count: Int, _ body: (Int) -> Void) {
    if count <= 1 {
        if count == 1 { body(0) }
        return
    }
    let owner = RegionClock.owner.load(ordering: .relaxed)
    guard owner != 0 && owner == RegionClock.currentThread else {
        runRegion(count, body)
        return
    }
    let start = DispatchTime.now().uptimeNanoseconds
    runRegion(count, body)
    RegionClock.nanoseconds.add(DispatchTime.now().uptimeNanoseconds - start, ordering: .relaxed)
    RegionClock.regions.add(1, ordering: .relaxed)
}

/// The wall time that the thread which started the clock spends in parallel regions
/// (`runInParallel` with two or more chunks), while it runs: what a benchmark subtracts from
/// a step's time to find the part of the step that runs on one thread alone. Off unless a
/// benchmark starts it (it costs two clock reads a region). Other threads' regions are not
/// counted; a region nested inside one of the thread's own would be counted in both (no
/// training step nests them).
public enum RegionClock {
    /// `pthread_self()` of the thread the clock counts, 0 when stopped.
    static let owner = Atomic<UInt>(0)
    static let nanoseconds = Atomic<UInt64>(0)
    static let regions = Atomic<Int>(0)

    static var currentThread: UInt { UInt(pthread_self()) }

    /// Starts the clock for the calling thread's regions, or stops it (the totals stay).
    public static func run(_ on: Bool) { owner.store(on ? currentThread : 0, ordering: .relaxed) }

    /// Seconds counted since the process started (only while running).
    public static var seconds: Double { Double(nanoseconds.load(ordering: .relaxed)) / 1e9 }
    /// Regions counted since the process started (only while running).
    public static var count: Int { regions.load(ordering: .relaxed) }
}

private func runRegion(_ count: Int, _ body: (Int) -> Void) {
    // More threads than cores: spinning threads would hold the cores the working ones need.
    if count <= WorkerPool.cores && WorkerPool.shared.run(count, body) { return }
    withoutActuallyEscaping(body) { escapable in
        let shared = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
    }
}

final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// How long an idle worker spins before it sleeps.
    static let spinNanoseconds: UInt64 = 2_000_000

    private final class Worker: Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    /// Held by the caller of `run` for the whole region.
    private let busy = Atomic<Bool>(false)
    /// Bumped once per region; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    /// Workers that have finished the current region.
    private let finished = Atomic<Int>(0)
    // Written only by the holder of `busy`, before `generation` is bumped (release), and
    // read by workers after they see the bump (acquire).
    private var job: ((Int) -> Void)?
    private var jobCount = 0
    private var workers: [Worker] = []

    /// Runs the region on the pool; false when another caller holds it.
    func run(_ count: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        while workers.count < count - 1 { startWorker(index: workers.count + 1) }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            jobCount = count
            finished.store(0, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            for worker in workers where worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                worker.wake.signal()
            }
            escapable(0)
            var spins = 0
            while finished.load(ordering: .acquiring) < workers.count {
                spins += 1
                // Now and then, let a preempted worker finish. Not more often: every yield is a
                // system call, and at every 1024 spins they were 4% of a speedrun's time.
                if spins & 16383 == 0 { sched_yield() }
            }
            job = nil
        }
        return true
    }

    private func startWorker(index: Int) {
        let worker = Worker()
        workers.append(worker)
        let seen = generation.load(ordering: .acquiring)
        let thread = Thread { [self] in work(index: index, worker: worker, seen: seen) }
        thread.name = "mnist-kernels-\(index)"
        thread.start()
    }

    private func work(index: Int, worker: Worker, seen initial: Int) {
        var seen = initial
        while true {
            seen = waitForRegion(after: seen, worker: worker)
            if index < jobCount { job?(index) }
            finished.add(1, ordering: .releasing)
        }
    }

    /// Spins, then sleeps, until `generation` moves past `seen`; returns the new value.
    private func waitForRegion(after seen: Int, worker: Worker) -> Int {
        var spinStart = DispatchTime.now().uptimeNanoseconds
        var spins = 0
        while true {
            let current = generation.load(ordering: .acquiring)
            if current != seen { return current }
            spins += 1
            if spins & 16383 != 0 { continue }
            sched_yield()
            if DispatchTime.now().uptimeNanoseconds - spinStart < Self.spinNanoseconds { continue }
            // Announce the sleep, then look once more: either this thread sees the bump, or
            // the caller sees `sleeping` and signals (both sides use sequential consistency).
            worker.sleeping.store(true, ordering: .sequentiallyConsistent)
            if generation.load(ordering: .sequentiallyConsistent) != seen {
                // The caller may have taken the flag already; then its signal must be consumed.
                if !worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) { worker.wake.wait() }
                continue
            }
            worker.wake.wait()
            spinStart = DispatchTime.now().uptimeNanoseconds
        }
    }
}
