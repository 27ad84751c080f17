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
        defer { buffers.forEach { $0.deallocate() } }
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            for i in 0..<count { b[i] = Float((i &* 7919) % 201) / 100 - 1 }
            buffers.append(b)
            return b.baseAddress!
        }
        let workspaceCount = max(conv2dWorkspaceCount(conv1), conv2dWorkspaceCount(conv2))
        let workspace = UnsafeMutableBufferPointer<Float>.allocate(capacity: workspaceCount)
        workspace.initialize(repeating: 0)
        defer { workspace.deallocate() }
        let argmax1 = UnsafeMutablePointer<Int32>.allocate(capacity: batch * 20 * 144)
        let argmax2 = UnsafeMutablePointer<Int32>.allocate(capacity: batch * 50 * 16)
        defer { argmax1.deallocate(); argmax2.deallocate() }

        let x = buffer(batch * 784), w1 = buffer(20 * 25), b1 = buffer(20)
        let y1 = buffer(batch * 20 * 576), p1 = buffer(batch * 20 * 144)
        let w2 = buffer(50 * 500), b2 = buffer(50), y2 = buffer(batch * 50 * 64), p2 = buffer(batch * 800)
        let wf1 = buffer(500 * 800), f1 = buffer(batch * 500)
        let gy1 = buffer(batch * 20 * 576), gp1 = buffer(batch * 20 * 144)
        let gy2 = buffer(batch * 50 * 64), gp2 = buffer(batch * 800), gf1 = buffer(batch * 500)
        let gw1 = buffer(20 * 25), gb1 = buffer(20), gw2 = buffer(50 * 500), gb2 = buffer(50), gwf1 = buffer(500 * 800)
        reluMaxPool2dForward(pool1, input: y1, output: p1, argmax: argmax1)
        reluMaxPool2dForward(pool2, input: y2, output: p2, argmax: argmax2)
        // The convolutions' output gradients as in training, behind ReLU + 2×2 max-pool:
        // one element in eight nonzero (13% was measured for conv2 in a LeNet run), on the
        // top-left of every other pooling window.
        func sparsified(_ dense: UnsafeMutablePointer<Float>, count: Int, width: Int) -> UnsafeMutablePointer<Float> {
            let sparse = buffer(count)
            for i in 0..<count {
                let (row, column) = ((i / width), i % width)
                let topLeft = row % 2 == 0 && column % 2 == 0
                sparse[i] = topLeft && (row / 2 + column / 2) % 2 == 0 ? dense[i] : 0
            }
            return sparse
        }
        let gy1Sparse = sparsified(gy1, count: batch * 20 * 576, width: 24)
        let gy2Sparse = sparsified(gy2, count: batch * 50 * 64, width: 8)

        let b = Double(batch)
        let conv1MACs = 20.0 * 576 * 25, conv2MACs = 50.0 * 64 * 500, fc1MACs = 500.0 * 800
        let cases: [(String, Double, () -> Void)] = [
            ("conv1 forward", 2 * b * conv1MACs, {
                conv2dForward(conv1, input: x, weight: w1, bias: b1, output: y1, workspace: workspace) }),
            ("relu+pool1 forward", 0, {
                reluMaxPool2dForward(pool1, input: y1, output: p1, argmax: argmax1) }),
            ("conv2 forward", 2 * b * conv2MACs, {
                conv2dForward(conv2, input: p1, weight: w2, bias: b2, output: y2, workspace: workspace) }),
            ("relu+pool2 forward", 0, {
                reluMaxPool2dForward(pool2, input: y2, output: p2, argmax: argmax2) }),
            ("fc1 forward", 2 * b * fc1MACs, {
                parallelSgemm(transposeB: true, m: batch, n: 500, k: 800, a: p2, b: wf1, c: f1) }),
            ("fc1 backward input", 2 * b * fc1MACs, {
                parallelSgemm(m: batch, n: 800, k: 500, a: gf1, b: wf1, c: gp2) }),
            ("fc1 backward weight", 2 * b * fc1MACs, {
                parallelSgemm(transposeA: true, m: 500, n: 800, k: batch, a: gf1, b: p2, c: gwf1) }),
            ("relu+pool2 backward", 0, {
                reluMaxPool2dBackward(pool2, gradOutput: gp2, output: p2, argmax: argmax2, gradInput: gy2) }),
            ("conv2 backward input", 2 * b * conv2MACs, {
                conv2dBackwardInput(conv2, gradOutput: gy2Sparse, weight: w2, gradInput: gp1, workspace: workspace) }),
            ("conv2 backward weight", 2 * b * conv2MACs, {
                conv2dBackwardWeight(conv2, input: p1, gradOutput: gy2Sparse, gradWeight: gw2, gradBias: gb2,
                                     workspace: workspace) }),
            ("relu+pool1 backward", 0, {
                reluMaxPool2dBackward(pool1, gradOutput: gp1, output: p1, argmax: argmax1, gradInput: gy1) }),
            ("conv1 backward weight", 2 * b * conv1MACs, {
                conv2dBackwardWeight(conv1, input: x, gradOutput: gy1Sparse, gradWeight: gw1, gradBias: gb1,
                                     workspace: workspace) }),
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
