import Kernels

/// Per-kernel timings of one LeNet training step (`mnist-bench --ops`): each kernel at the
/// shapes a batch of LeNet gives it, run on its own, so the time of a step can be split into
/// its parts and compared with the FLOPs each part does.
public enum OpBenchmark {
    public struct Row: Sendable {
        public var name: String
        /// Seconds per call (the minimum over the repeats: the least disturbed run).
        public var seconds: Double
        public var flops: Double
        public var gflops: Double { flops / seconds / 1e9 }
    }

    /// What one parallel region costs beyond its work, through the worker pool and through
    /// Dispatch (`measureParallelRegionOverhead`), in seconds.
    public static func parallelRegionOverhead(threads: Int) -> (pool: Double, dispatch: Double) {
        measureParallelRegionOverhead(threads: threads)
    }

    /// Times every kernel of a LeNet step at `batch` samples with `threads` threads,
    /// `repeats` calls each after two warm-up calls.
    public static func run(threads: Int, batch: Int, repeats: Int = 50) throws -> [Row] {
        try Parallelism.withThreadCount(threads) { try measure(batch: batch, repeats: repeats) }
    }

    private static func measure(batch: Int, repeats: Int) throws -> [Row] {
        let conv1 = try Conv2dShape(input: [batch, 1, 28, 28], weight: [20, 1, 5, 5])
        let pool1 = try Pool2dShape(input: [batch, 20, 24, 24], kernel: (2, 2))
        let conv2 = try Conv2dShape(input: [batch, 20, 12, 12], weight: [50, 20, 5, 5])
        let pool2 = try Pool2dShape(input: [batch, 50, 8, 8], kernel: (2, 2))
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        defer { buffers.forEach(ConvLayerOps.release) }
        // 64-byte aligned, as tensors' storage is (16-lane loads then stay within a cache line).
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let b = ConvLayerOps.filled(count)
            buffers.append(b)
            return b.baseAddress!
        }
        let workspaceCount = max(conv2dMaxPool2dBackwardWorkspaceCount(conv1, pool: pool1),
                                 conv2dMaxPool2dBackwardWorkspaceCount(conv2, pool: pool2),
                                 conv2dMaxPool2dWorkspaceCount(conv1, pool: pool1), conv2dMaxPool2dWorkspaceCount(conv2, pool: pool2))
        // Aligned as training's workspace (a tensor's storage) is: with the malloc'd 16-byte
        // alignment this had before, conv2's sparse backward read its patch rows off 32-byte
        // boundaries and took 2.23-2.30 ms against 1.67-1.71 (1 thread, Zen 4; 38e46bb).
        let workspace = UnsafeMutableBufferPointer(start: buffer(workspaceCount), count: workspaceCount)
        workspace.update(repeating: 0)
        let argmax1 = UnsafeMutablePointer<Int32>.allocate(capacity: batch * 20 * 144)
        let argmax2 = UnsafeMutablePointer<Int32>.allocate(capacity: batch * 50 * 16)
        defer { argmax1.deallocate(); argmax2.deallocate() }

        let x = buffer(batch * 784), w1 = buffer(20 * 25), b1 = buffer(20)
        let y1 = buffer(batch * 20 * 576), p1 = buffer(batch * 20 * 144)
        let w2 = buffer(50 * 500), b2 = buffer(50), y2 = buffer(batch * 50 * 64), p2 = buffer(batch * 800)
        let wf1 = buffer(500 * 800), f1 = buffer(batch * 500)
        let gp1 = buffer(batch * 20 * 144), gp2 = buffer(batch * 800), gf1 = buffer(batch * 500)
        let gw1 = buffer(20 * 25), gb1 = buffer(20), gw2 = buffer(50 * 500), gb2 = buffer(50), gwf1 = buffer(500 * 800)
        // The backward rows' pools, of their own (the forward rows write p1, p2 and the
        // argmax, each before the next row reads it), and upstream gradients in [-1, 1)
        // (rewritten by the rows that compute them: dense).
        let training1 = TrainingPool(pool1, convolved: y1, upstream: gp1, relu: true)
        let training2 = TrainingPool(pool2, convolved: y2, upstream: gp2, relu: true)
        let pooled1 = training1.gradient, pooled2 = training2.gradient

        let b = Double(batch)
        let conv1MACs = 20.0 * 576 * 25, conv2MACs = 50.0 * 64 * 500, fc1MACs = 500.0 * 800
        let fcWorkspace = buffer(linearForwardWorkspaceCount(n: batch, k: 800))
        let fcBackwardWorkspace = buffer(linearBackwardWorkspaceCount(n: batch, k: 800, m: 500))
        // fc1's gradient behind its ReLU: zero where fc1's output is not positive (about half
        // here; 50-63% of it in training, `scripts/relu_sparsity.py`), as the backward
        // products see it in a step.
        linearForward(n: batch, k: 800, m: 500, input: p2, weight: wf1, bias: nil, output: f1, workspace: fcWorkspace)
        for i in 0..<(batch * 500) where f1[i] <= 0 { gf1[i] = 0 }
        let cases: [(String, Double, () -> Void)] = [
            // Each convolution with its ReLU and max-pool, one fused op as training runs it
            // (`Sequential`: the convolution's output never stored).
            ("conv1 + relu + pool1 forward", 2 * b * conv1MACs, {
                conv2dMaxPool2dForward(conv1, pool: pool1, input: x, weight: w1, bias: b1, output: p1, argmax: argmax1,
                                       relu: true, workspace: workspace) }),
            ("conv2 + relu + pool2 forward", 2 * b * conv2MACs, {
                conv2dMaxPool2dForward(conv2, pool: pool2, input: p1, weight: w2, bias: b2, output: p2, argmax: argmax2,
                                       relu: true, workspace: workspace) }),
            ("fc1 forward", 2 * b * fc1MACs, {
                linearForward(n: batch, k: 800, m: 500, input: p2, weight: wf1, bias: nil, output: f1, workspace: fcWorkspace) }),
            ("fc1 backward input", 2 * b * fc1MACs, {
                linearBackwardInput(n: batch, k: 800, m: 500, gradOutput: gf1, weight: wf1, gradInput: gp2,
                                    workspace: fcBackwardWorkspace) }),
            ("fc1 backward weight", 2 * b * fc1MACs, {
                linearBackwardWeight(n: batch, k: 800, m: 500, gradOutput: gf1, input: p2, gradWeight: gwf1,
                                     workspace: fcBackwardWorkspace) }),
            // The convolutions' gradients read through each ReLU + max-pool's argmax
            // (`PooledGradient`), as training runs them: no scatter into a dense gradient.
            ("conv2 backward input + weight", 4 * b * conv2MACs, {
                conv2dMaxPool2dBackward(conv2, pooledGradient: pooled2, input: p1, weight: w2, gradInput: gp1,
                                        gradWeight: gw2, gradBias: gb2, workspace: workspace) }),
            ("conv1 backward weight", 2 * b * conv1MACs, {
                conv2dMaxPool2dBackward(conv1, pooledGradient: pooled1, input: x, weight: w1, gradInput: nil,
                                        gradWeight: gw1, gradBias: gb1, workspace: workspace) }),
        ]
        return cases.map { name, flops, body in time(name, flops: flops, repeats: repeats, body) }
    }

    /// `body` timed on its own: the least disturbed of `repeats` calls, after two warm-up calls.
    static func time(_ name: String, flops: Double, repeats: Int, _ body: () -> Void) -> Row {
        body(); body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = monotonicSeconds()
            body()
            best = min(best, monotonicSeconds() - start)
        }
        return Row(name: name, seconds: best, flops: flops)
    }
}

/// A max-pool's output, argmax and gradient as a training step gives them to the backward
/// pass of the convolution before it (`conv2dMaxPool2dBackward`), for timing that pass: the
/// pool of a copy of the convolution's output moved to [-1.66, 0.34) (values in [-1, 1) as
/// the benchmarks fill them), so that about half of the 2×2 windows' maxima are positive
/// and pass a gradient behind a ReLU, as in training (13% of LeNet's conv2 output gradient
/// was nonzero in a run, a quarter at most behind a 2×2 pool).
final class TrainingPool {
    let gradient: PooledGradient
    private let shifted: UnsafeMutableBufferPointer<Float>
    private let pooled: UnsafeMutableBufferPointer<Float>
    private let argmax: UnsafeMutableBufferPointer<Int32>

    init(_ pool: Pool2dShape, convolved: UnsafePointer<Float>, upstream: UnsafePointer<Float>, relu: Bool) {
        let count = pool.batch * pool.channels * pool.height * pool.width, pooledCount = pool.outputShape.reduce(1, *)
        shifted = .allocate(capacity: count)
        for i in 0..<count { shifted[i] = convolved[i] - 0.66 }
        pooled = .allocate(capacity: pooledCount)
        argmax = .allocate(capacity: pooledCount)
        maxPool2dForward(pool, input: shifted.baseAddress!, output: pooled.baseAddress!, argmax: argmax.baseAddress!,
                         relu: relu)
        gradient = PooledGradient(pool: pool, gradient: upstream, argmax: argmax.baseAddress!,
                                  reluOutput: relu ? pooled.baseAddress! : nil)
    }

    deinit {
        shifted.deallocate()
        pooled.deallocate()
        argmax.deallocate()
    }
}
