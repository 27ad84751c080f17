import Dispatch
import Kernels

/// What a parallel region costs beyond its work, in seconds: the median over `regions`
/// regions of `threads` chunks that each spin for 50 µs, minus those 50 µs, through the
/// worker pool and through `DispatchQueue.concurrentPerform` (`mnist-bench --ops` prints
/// both: 0.6–0.9 µs and 68 µs on this machine).
public func measureParallelRegionOverhead(threads: Int, regions: Int = 200) -> (pool: Double, dispatch: Double) {
    let work = 50e-6
    @Sendable func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    @Sendable func spin() { let start = now(); while now() - start < work {} }
    func median(_ run: () -> Void) -> Double {
        var times: [Double] = []
        for _ in 0..<regions {
            let start = now()
            run()
            times.append(now() - start - work)
        }
        return times.sorted()[regions / 2]
    }
    let pool = median { runInParallel(threads) { _ in spin() } }
    let dispatch = median { DispatchQueue.concurrentPerform(iterations: threads) { _ in spin() } }
    return (pool, dispatch)
}
