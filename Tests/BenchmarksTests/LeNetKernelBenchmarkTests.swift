import Foundation
import Kernels
import Seeded
import Testing

/// Timings of LeNet's kernels at batch 64 on 1 and 2 threads (wall and process CPU time),
/// printed, not checked: a report to read, run only with `KERNELS_BENCH=1`
/// (`KERNELS_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter BenchmarksTests`).
/// Serialized: its timings must not overlap each other.
@Suite(.serialized) struct LeNetKernelBenchmarkTests {
    /// CPU time of the whole process, in ms: far less disturbed than wall time on a machine
    /// shared with other builds; CPU / wall shows how many cores a kernel kept busy.
    static func processCPUTime() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) * 1e3 + Double(time.tv_nsec) / 1e6
    }

    static func measure(_ label: String, multiplyAdds: Int, repeats: Int = 30, _ body: () -> Void) {
        body()  // warm up
        var wall: [Double] = [], cpu: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            let cpuStart = processCPUTime()
            body()
            cpu.append(processCPUTime() - cpuStart)
            wall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        wall.sort()
        cpu.sort()
        let rate = multiplyAdds > 0
            ? String(format: "%6.1f GFLOP/s at min wall", 2 * Double(multiplyAdds) / wall[0] / 1e6) : ""
        print(String(
            format: "  %-27@ wall median %7.3f min %7.3f ms | process CPU min %7.3f ms | %@",
            label as NSString, wall[wall.count / 2], wall[0], cpu[0], rate as NSString))
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["KERNELS_BENCH"] == "1"))
    func benchmarkLeNet() throws {
        let conv1 = try Conv2dShape(input: [64, 1, 28, 28], weight: [20, 1, 5, 5])
        let conv2 = try Conv2dShape(input: [64, 20, 12, 12], weight: [50, 20, 5, 5])
        let pool1 = try Pool2dShape(input: conv1.outputShape, kernel: (2, 2))
        let pool2 = try Pool2dShape(input: conv2.outputShape, kernel: (2, 2))
        var random = SeededGenerator(seed: 1)
        for threads in [1, 2] {
            Parallelism.withThreadCount(threads) {
                print("LeNet kernels, batch 64, \(threads) thread(s):")
                for (name, s) in [("conv1", conv1), ("conv2", conv2)] {
                    let x = random.floats(s.inputShape.reduce(1, *)), w = random.floats(s.weightShape.reduce(1, *))
                    let b = random.floats(s.outChannels), g = random.floats(s.outputShape.reduce(1, *))
                    var output = [Float](repeating: 0, count: g.count), gradInput = [Float](repeating: 0, count: x.count)
                    var gradWeight = [Float](repeating: 0, count: w.count), gradBias = [Float](repeating: 0, count: b.count)
                    var scratch = [Float](repeating: 0, count: conv2dWorkspaceCount(s))
                    scratch.withUnsafeMutableBufferPointer { ws in
                        Self.measure("\(name) forward", multiplyAdds: s.multiplyAdds) {
                            conv2dForward(s, input: x, weight: w, bias: b, output: &output, workspace: ws)
                        }
                        Self.measure("\(name) backward weight+bias", multiplyAdds: s.multiplyAdds) {
                            conv2dBackwardWeight(s, input: x, gradOutput: g, gradWeight: &gradWeight,
                                                 gradBias: &gradBias, workspace: ws)
                        }
                        Self.measure("\(name) backward input", multiplyAdds: s.multiplyAdds) {
                            conv2dBackwardInput(s, gradOutput: g, weight: w, gradInput: &gradInput, workspace: ws)
                        }
                    }
                }
                // An fc1-sized sgemm (64×800 · 800×500, threaded by OpenBLAS at this thread
                // count) right before conv2: OpenBLAS's idle workers spin for a while after a
                // threaded call and may compete with our chunk threads.
                do {
                    let a = random.floats(64 * 800), b = random.floats(800 * 500)
                    var c = [Float](repeating: 0, count: 64 * 500)
                    Self.measure("fc1 sgemm alone", multiplyAdds: 64 * 800 * 500) {
                        sgemm(m: 64, n: 500, k: 800, a: a, b: b, c: &c)
                    }
                    let s = conv2
                    let x = random.floats(s.inputShape.reduce(1, *)), w = random.floats(s.weightShape.reduce(1, *))
                    var output = [Float](repeating: 0, count: s.outputShape.reduce(1, *))
                    var scratch = [Float](repeating: 0, count: conv2dWorkspaceCount(s))
                    scratch.withUnsafeMutableBufferPointer { ws in
                        Self.measure("fc1 sgemm then conv2 fwd", multiplyAdds: 64 * 800 * 500 + s.multiplyAdds) {
                            sgemm(m: 64, n: 500, k: 800, a: a, b: b, c: &c)
                            conv2dForward(s, input: x, weight: w, bias: nil, output: &output, workspace: ws)
                        }
                    }
                }
                for (name, p) in [("pool1", pool1), ("pool2", pool2)] {
                    let x = random.floats(p.inputShape.reduce(1, *)), g = random.floats(p.outputShape.reduce(1, *))
                    var output = [Float](repeating: 0, count: g.count), argmax = [Int32](repeating: 0, count: g.count)
                    var gradInput = [Float](repeating: 0, count: x.count)
                    Self.measure("\(name) forward", multiplyAdds: 0) {
                        maxPool2dForward(p, input: x, output: &output, argmax: &argmax)
                    }
                    Self.measure("\(name) backward", multiplyAdds: 0) {
                        maxPool2dBackward(p, gradOutput: g, argmax: argmax, gradInput: &gradInput)
                    }
                    // ReLU then pool, forward and backward, as separate passes...
                    var activated = x
                    activated.withUnsafeMutableBufferPointer { relu in
                        gradInput.withUnsafeMutableBufferPointer { gi in
                            let source = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
                            defer { source.deallocate() }
                            source.initialize(from: x, count: x.count)
                            // Branch-free loops on local pointers, so they vectorize.
                            let activation = relu.baseAddress!, gradient = gi.baseAddress!, count = relu.count
                            Self.measure("\(name) relu+pool separate f+b", multiplyAdds: 0) {
                                for i in 0..<count { activation[i] = max(source[i], 0) }
                                maxPool2dForward(p, input: activation, output: &output, argmax: &argmax)
                                maxPool2dBackward(p, gradOutput: g, argmax: argmax, gradInput: gradient)
                                for i in 0..<count {
                                    let value = gradient[i]  // load first: no branch, vectorizes
                                    gradient[i] = activation[i] > 0 ? value : 0
                                }
                            }
                        }
                    }
                    // ...and fused.
                    Self.measure("\(name) relu+pool fused f+b", multiplyAdds: 0) {
                        reluMaxPool2dForward(p, input: x, output: &output, argmax: &argmax)
                        reluMaxPool2dBackward(p, gradOutput: g, output: output, argmax: argmax, gradInput: &gradInput)
                    }
                }
            }
        }
    }
}

extension SeededGenerator {
    /// `count` floats uniform in [-1, 1).
    mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in nextUniform(-1, 1) } }
}
