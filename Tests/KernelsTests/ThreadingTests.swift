import Foundation
import Kernels
import TestSupport
import Testing

/// Tests that change `Parallelism.threadCount`; serialized so they never overlap each other.
/// (Other tests size their workspaces for 8 threads, so a change cannot starve them.)
@Suite(.serialized) struct ThreadingTests {
    static func withThreads<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        try Parallelism.withThreadCount(count, body)
    }

    struct Results: Equatable {
        var output: [Float], gradInput: [Float], gradWeight: [Float], gradBias: [Float]
        var pooled: [Float], argmax: [Int32], poolGrad: [Float]
    }

    /// LeNet's conv2 and pool2 on 13 samples (odd, so chunks are uneven).
    static func run() throws -> Results {
        let s = try Conv2dShape(input: [13, 20, 12, 12], weight: [50, 20, 5, 5])
        let p = try Pool2dShape(input: s.outputShape, kernel: (2, 2))
        var random = TestRandom(seed: 99)
        let x = random.floats(s.inputShape.reduce(1, *)), w = random.floats(s.weightShape.reduce(1, *))
        let b = random.floats(s.outChannels), g = random.floats(s.outputShape.reduce(1, *))
        let output = convForward(s, x, w, b)
        let (weightGrad, biasGrad) = convBackwardWeight(s, x, g)
        let (pooled, argmax) = poolForward(p, output)
        return Results(
            output: output, gradInput: convBackwardInput(s, g, w), gradWeight: weightGrad,
            gradBias: biasGrad, pooled: pooled, argmax: argmax,
            poolGrad: poolBackward(p, random.floats(p.outputShape.reduce(1, *)), argmax))
    }

    @Test func sameThreadCountIsBitIdentical() throws {
        let one = try Self.withThreads(1) { (try Self.run(), try Self.run()) }
        #expect(one.0 == one.1)
        let two = try Self.withThreads(2) { (try Self.run(), try Self.run()) }
        #expect(two.0 == two.1)
        // Forward, input gradient and pooling do not depend on the thread count at all;
        // the weight and bias gradients differ only by the order of the batch reduction.
        #expect(one.0.output == two.0.output)
        #expect(one.0.gradInput == two.0.gradInput)
        #expect(one.0.pooled == two.0.pooled && one.0.argmax == two.0.argmax && one.0.poolGrad == two.0.poolGrad)
        if let m = compareClose(two.0.gradWeight, one.0.gradWeight.map(Double.init), label: "grad weight 2 vs 1 threads") { Issue.record(Comment(rawValue: m)) }
        if let m = compareClose(two.0.gradBias, one.0.gradBias.map(Double.init), label: "grad bias 2 vs 1 threads") { Issue.record(Comment(rawValue: m)) }
    }

    // MARK: - Benchmark (KERNELS_BENCH=1)

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
        var random = TestRandom(seed: 1)
        for threads in [1, 2] {
            Self.withThreads(threads) {
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
                        guard threads > 1 else { return }
                        Self.measure("\(name) forward, BLAS-threaded", multiplyAdds: s.multiplyAdds) {
                            conv2dForward(s, input: x, weight: w, bias: b, output: &output, workspace: ws,
                                          threading: .threadedBLAS)
                        }
                        Self.measure("\(name) bwd weight, BLAS-threaded", multiplyAdds: s.multiplyAdds) {
                            conv2dBackwardWeight(s, input: x, gradOutput: g, gradWeight: &gradWeight,
                                                 gradBias: &gradBias, workspace: ws, threading: .threadedBLAS)
                        }
                        Self.measure("\(name) bwd input, BLAS-threaded", multiplyAdds: s.multiplyAdds) {
                            conv2dBackwardInput(s, gradOutput: g, weight: w, gradInput: &gradInput, workspace: ws,
                                                threading: .threadedBLAS)
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
