import Kernels
import Training

/// `mnist-bench --ops --config FILE`: every convolution and batch norm of a config timed on
/// its own at the config's batch size, each pass by the kernel training would pick for it:
/// behind a max-pool (with a ReLU before or after it, as `Sequential` fuses them), both
/// backward passes at once from the pool's gradient (`conv2dMaxPool2dBackward`, with about
/// half the windows passing a gradient, as in training); else the output gradient dense, as
/// behind batch norm. A forward pass not computed by the five-channel kernel storing its
/// output (`Conv2dPlan.directForwardKernel`) is also timed that way, the row marked
/// "5-ch stored" (`Conv2dPlan.fiveChannelForwardOnly`), and an evaluation pass computed by
/// Winograd F(2×2, 3×3) or F(2×2, 5×5) also by the direct kernel, the row marked "direct",
/// or where this CPU evaluates by the direct kernel (`Conv2dPlan.winogradPays`), also by
/// Winograd, the row marked "Winograd" (`Conv2dPlan.winogradEvaluation`): the kernel
/// choice's evidence. Where two convolution + pool groups follow each other and their
/// evaluation is computed together (`Conv2dPoolPair.applies`), that pass is timed both ways
/// too, the rows marked "paired" and "apart".
public enum ConvLayerOps {
    public static func run(config: TrainingConfig, threads: Int, batch: Int, repeats: Int = 20) throws -> [OpBenchmark.Row] {
        let plan = try ModelBuilder.plan(config)
        return try Parallelism.withThreadCount(threads) {
            var rows: [OpBenchmark.Row] = []
            // The last convolution + pool group: where it ends, its layer and its shapes.
            var group: (end: Int, stage: PairStage)?
            for (i, (layer, step)) in zip(config.layers, plan).enumerated() {
                if let conv = layer.kind as? Conv2dLayer {
                    // Training computes no input gradient for a convolution with no parameters before it.
                    let first = plan[..<i].allSatisfy { $0.parameterCount == 0 }
                    let shape = try convolutionShape(step, conv, batch: batch)
                    let after = poolAfter(i, in: config.layers)
                    let pool = try after.map { (shape: try poolShape(shape, $0.window), relu: $0.relu) }
                    rows += try convRows(step, conv, shape: shape, first: first, pool: pool, repeats: repeats)
                    guard let after, let pool else {
                        group = nil
                        continue
                    }
                    let stage = PairStage(name: step.name, shape: shape, pool: pool.shape, relu: pool.relu, bias: conv.bias)
                    if let previous = group, previous.end == i {
                        rows += pairRows(previous.stage, stage, repeats: repeats)
                    }
                    group = (i + after.layers, stage)
                } else if layer.type == "batch_norm2d" {
                    rows += batchNormRows(step, batch: batch, repeats: repeats)
                }
            }
            return rows
        }
    }

    /// The max-pool `Sequential` fuses with the convolution at `index` (right after it, or
    /// after a ReLU), whether a ReLU comes just before or after the pool, and how many layers
    /// the group takes from the convolution on (2 or 3).
    static func poolAfter(_ index: Int, in layers: [TrainingConfig.Layer]) -> (window: PoolWindow, relu: Bool, layers: Int)? {
        func layer(_ offset: Int) -> TrainingConfig.Layer? { index + offset < layers.count ? layers[index + offset] : nil }
        if let pool = layer(1)?.kind as? MaxPool2dLayer {
            return layer(2)?.type == "relu" ? (pool.window, true, 3) : (pool.window, false, 2)
        }
        if layer(1)?.type == "relu", let pool = layer(2)?.kind as? MaxPool2dLayer { return (pool.window, true, 3) }
        return nil
    }

    /// `count` floats in [-1, 1), 64-byte aligned as tensors' storage is (the sparse
    /// kernels' speed depends on where their scratch lies); freed with `release(_:)`.
    static func filled(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
        let b = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: count), count: count)
        for i in 0..<count { b[i] = Float((i &* 7919) % 201) / 100 - 1 }
        return b
    }

    static func release(_ b: UnsafeMutableBufferPointer<Float>) { UnsafeMutableRawPointer(b.baseAddress!).deallocate() }

    static func convRows(
        _ step: ModelBuilder.LayerPlan, _ conv: Conv2dLayer, shape: Conv2dShape, first: Bool,
        pool: (shape: Pool2dShape, relu: Bool)?, repeats: Int
    ) throws -> [OpBenchmark.Row] {
        let o = conv.outChannels
        let inCount = shape.inputShape.reduce(1, *), outCount = shape.outputShape.reduce(1, *)
        let weightCount = o * shape.groupPatchSize
        let x = filled(inCount), w = filled(weightCount), bias = filled(o), y = filled(outCount)
        let gy = filled(outCount), gx = filled(inCount), gw = filled(weightCount), gb = filled(o)
        // Sized for both forward kernels (their scratch differs).
        let workspace = filled(max(conv2dWorkspaceCount(shape),
                                   Conv2dPlan.$fiveChannelForwardOnly.withValue(true) { conv2dWorkspaceCount(shape) }))
        defer { [x, w, bias, y, gy, gx, gw, gb, workspace].forEach(release) }
        let flops = 2.0 * Double(outCount) * Double(shape.groupPatchSize)
        let name = step.name
        var rows: [OpBenchmark.Row] = []
        if let pool {
            let p = pool.shape
            let pooledCount = p.outputShape.reduce(1, *)
            let upstream = filled(pooledCount), pooled = filled(pooledCount)
            let argmax = UnsafeMutableBufferPointer<Int32>.allocate(capacity: pooledCount)
            let poolWorkspace = filled(max(
                conv2dMaxPool2dBackwardWorkspaceCount(shape, pool: p), conv2dMaxPool2dWorkspaceCount(shape, pool: p),
                Conv2dPlan.$fiveChannelForwardOnly.withValue(true) { conv2dMaxPool2dWorkspaceCount(shape, pool: p) },
                Conv2dPlan.$winogradEvaluation.withValue(!Conv2dPlan.winogradEvaluation) {
                    conv2dMaxPool2dWorkspaceCount(shape, pool: p)
                }))
            defer { [upstream, pooled, poolWorkspace].forEach(release); argmax.deallocate() }
            // Training's forward (with the argmax), then evaluation's (values only); each also
            // by the five-channel kernel storing its output when that is not the kernel.
            let baseline = Conv2dPlan.directForwardKernel(shape, pool: p).map { $0 != .fiveChannels } ?? false
            let byDefault = Conv2dPlan.winogradEvaluation
            let winograd = Conv2dPlan.$winogradEvaluation.withValue(true) { Conv2dPlan.evaluatesByWinograd(shape, pool: p) }
            for (label, indices) in [("", Optional(argmax.baseAddress!)), (", eval", nil)] {
                // (row suffix, fiveChannelForwardOnly, winogradEvaluation)
                var kernels = [("", false, byDefault)]
                if baseline { kernels.append((" (5-ch stored)", true, byDefault)) }
                if winograd && indices == nil {
                    kernels.append(byDefault ? (" (direct)", false, false) : (" (Winograd)", false, true))
                }
                for (kernel, fiveChannelOnly, byWinograd) in kernels {
                    rows.append(OpBenchmark.time("\(name) forward + pool\(label)\(kernel)", flops: flops, repeats: repeats) {
                        Conv2dPlan.$fiveChannelForwardOnly.withValue(fiveChannelOnly) {
                            Conv2dPlan.$winogradEvaluation.withValue(byWinograd) {
                                conv2dMaxPool2dForward(shape, pool: p, input: x.baseAddress!, weight: w.baseAddress!,
                                                       bias: conv.bias ? bias.baseAddress! : nil, output: pooled.baseAddress!,
                                                       argmax: indices, relu: pool.relu, workspace: poolWorkspace)
                            }
                        }
                    })
                }
            }
            conv2dForward(shape, input: x.baseAddress!, weight: w.baseAddress!, bias: conv.bias ? bias.baseAddress! : nil,
                          output: y.baseAddress!, workspace: workspace)
            let training = TrainingPool(p, convolved: y.baseAddress!, upstream: upstream.baseAddress!, relu: pool.relu)
            let passes = first ? "weight" : "input + weight"
            rows.append(OpBenchmark.time("\(name) backward \(passes) (from pool)", flops: first ? flops : 2 * flops,
                                         repeats: repeats) {
                conv2dMaxPool2dBackward(shape, pooledGradient: training.gradient, input: x.baseAddress!,
                                        weight: w.baseAddress!, gradInput: first ? nil : gx.baseAddress!,
                                        gradWeight: gw.baseAddress!, gradBias: conv.bias ? gb.baseAddress! : nil,
                                        workspace: poolWorkspace)
            })
            // The two passes apart, where both run.
            if !first {
                for (passName, input) in [("input", true), ("weight", false)] {
                    rows.append(OpBenchmark.time("\(name) backward \(passName) (from pool)", flops: flops, repeats: repeats) {
                        conv2dMaxPool2dBackward(shape, pooledGradient: training.gradient, input: x.baseAddress!,
                                                weight: w.baseAddress!, gradInput: input ? gx.baseAddress! : nil,
                                                gradWeight: input ? nil : gw.baseAddress!,
                                                gradBias: input || !conv.bias ? nil : gb.baseAddress!,
                                                workspace: poolWorkspace)
                    })
                }
            }
            return rows
        }
        let baseline = Conv2dPlan.directForwardKernel(shape).map { $0 != .fiveChannels } ?? false
        for fiveChannelOnly in baseline ? [false, true] : [false] {
            rows.append(OpBenchmark.time("\(name) forward\(fiveChannelOnly ? " (5-ch stored)" : "")", flops: flops,
                                         repeats: repeats) {
                Conv2dPlan.$fiveChannelForwardOnly.withValue(fiveChannelOnly) {
                    conv2dForward(shape, input: x.baseAddress!, weight: w.baseAddress!,
                                  bias: conv.bias ? bias.baseAddress! : nil, output: y.baseAddress!, workspace: workspace)
                }
            })
        }
        if !first {
            rows.append(OpBenchmark.time("\(name) backward input", flops: flops, repeats: repeats) {
                conv2dBackwardInput(shape, gradOutput: gy.baseAddress!, weight: w.baseAddress!, gradInput: gx.baseAddress!,
                                    workspace: workspace)
            })
        }
        rows.append(OpBenchmark.time("\(name) backward weight", flops: flops, repeats: repeats) {
            conv2dBackwardWeight(shape, input: x.baseAddress!, gradOutput: gy.baseAddress!, gradWeight: gw.baseAddress!,
                                 gradBias: conv.bias ? gb.baseAddress! : nil, workspace: workspace)
        })
        return rows
    }

    /// A convolution and the max-pool after it, as `pairRows` takes them.
    struct PairStage {
        let name: String, shape: Conv2dShape, pool: Pool2dShape, relu: Bool, bias: Bool
    }

    /// Where two convolution + pool groups follow each other and their evaluation pairs
    /// (`Conv2dPoolPair.applies`): the pair's evaluation (`conv2dMaxPool2dPairForward`) and
    /// the two stages' one after the other, the intermediate a batch tensor, timed alike.
    static func pairRows(_ a: PairStage, _ b: PairStage, repeats: Int) -> [OpBenchmark.Row] {
        guard Conv2dPoolPair.applies(first: a.shape, firstPool: a.pool, second: b.shape, secondPool: b.pool) else { return [] }
        let pair = Conv2dPoolPair(first: a.shape, firstPool: a.pool, second: b.shape, secondPool: b.pool)
        let x = filled(a.shape.inputShape.reduce(1, *)), between = filled(a.pool.outputShape.reduce(1, *))
        let y = filled(b.pool.outputShape.reduce(1, *))
        let wa = filled(a.shape.outChannels * a.shape.groupPatchSize), ba = filled(a.shape.outChannels)
        let wb = filled(b.shape.outChannels * b.shape.groupPatchSize), bb = filled(b.shape.outChannels)
        let workspace = filled(max(pair.workspaceCount(), conv2dMaxPool2dWorkspaceCount(a.shape, pool: a.pool),
                                   conv2dMaxPool2dWorkspaceCount(b.shape, pool: b.pool)))
        defer { [x, between, y, wa, ba, wb, bb, workspace].forEach(release) }
        let flops = 2.0 * Double(a.shape.outputShape.reduce(1, *) * a.shape.groupPatchSize
            + b.shape.outputShape.reduce(1, *) * b.shape.groupPatchSize)
        return [
            OpBenchmark.time("\(a.name)+\(b.name) + pools, eval (paired)", flops: flops, repeats: repeats) {
                conv2dMaxPool2dPairForward(
                    pair, input: x.baseAddress!, firstWeight: wa.baseAddress!, firstBias: a.bias ? ba.baseAddress! : nil,
                    firstRelu: a.relu, secondWeight: wb.baseAddress!, secondBias: b.bias ? bb.baseAddress! : nil,
                    secondRelu: b.relu, output: y.baseAddress!, workspace: workspace)
            },
            OpBenchmark.time("\(a.name)+\(b.name) + pools, eval (apart)", flops: flops, repeats: repeats) {
                conv2dMaxPool2dForward(a.shape, pool: a.pool, input: x.baseAddress!, weight: wa.baseAddress!,
                                       bias: a.bias ? ba.baseAddress! : nil, output: between.baseAddress!, argmax: nil,
                                       relu: a.relu, workspace: workspace)
                conv2dMaxPool2dForward(b.shape, pool: b.pool, input: between.baseAddress!, weight: wb.baseAddress!,
                                       bias: b.bias ? bb.baseAddress! : nil, output: y.baseAddress!, argmax: nil,
                                       relu: b.relu, workspace: workspace)
            },
        ]
    }

    /// The convolution of `conv` at `batch` samples of `step`'s input.
    static func convolutionShape(_ step: ModelBuilder.LayerPlan, _ conv: Conv2dLayer, batch: Int) throws -> Conv2dShape {
        let c = step.inputShape[0], o = conv.outChannels
        return try Conv2dShape(
            input: [batch] + step.inputShape, weight: [o, c / conv.groups, conv.kernelSize.height, conv.kernelSize.width],
            stride: (conv.stride.height, conv.stride.width), padding: (conv.padding.height, conv.padding.width),
            dilation: (conv.dilation.height, conv.dilation.width), groups: conv.groups)
    }

    /// The max-pool `window` on `shape`'s output.
    static func poolShape(_ shape: Conv2dShape, _ window: PoolWindow) throws -> Pool2dShape {
        try Pool2dShape(
            input: shape.outputShape, kernel: (window.kernelSize.height, window.kernelSize.width),
            stride: (window.stride.height, window.stride.width),
            padding: (window.padding.height, window.padding.width), ceilMode: window.ceilMode)
    }

    static func batchNormRows(_ step: ModelBuilder.LayerPlan, batch: Int, repeats: Int) -> [OpBenchmark.Row] {
        let c = step.inputShape[0], s = step.inputShape.dropFirst().reduce(1, *), count = batch * c * s
        let x = filled(count), y = filled(count), g = filled(count), gx = filled(count)
        let mean = filled(c), variance = filled(c), invstd = filled(c), weight = filled(c), gw = filled(c), gb = filled(c)
        defer { [x, y, g, gx, mean, variance, invstd, weight, gw, gb].forEach(release) }
        for i in 0..<c { invstd[i] = 1 }
        return [
            OpBenchmark.time("\(step.name) forward", flops: 0, repeats: repeats) {
                batchNormStatistics(input: x.baseAddress!, batch: batch, channels: c, spatial: s,
                                    mean: mean.baseAddress!, variance: variance.baseAddress!)
                batchNormApply(input: x.baseAddress!, batch: batch, channels: c, spatial: s, mean: mean.baseAddress!,
                               invstd: invstd.baseAddress!, weight: weight.baseAddress!, bias: gb.baseAddress!,
                               output: y.baseAddress!)
            },
            OpBenchmark.time("\(step.name) backward", flops: 0, repeats: repeats) {
                batchNormBackward(gradOutput: g.baseAddress!, input: x.baseAddress!, batch: batch, channels: c, spatial: s,
                                  mean: mean.baseAddress!, invstd: invstd.baseAddress!, weight: weight.baseAddress!,
                                  batchStatistics: true, gradInput: gx.baseAddress!, gradWeight: gw.baseAddress!,
                                  gradBias: gb.baseAddress!)
            },
        ]
    }
}
