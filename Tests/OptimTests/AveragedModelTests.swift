import Autograd
import NN
import Optim
import Seeded
import Testing

/// `AveragedModel` against PyTorch's `AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay),
/// use_buffers=True)`: the first update copies, later ones `lerp` floats by `1 − decay` and move
/// integer counters to `trunc(a·decay + b·(1 − decay))`.
struct AveragedModelTests {
    static func model(seed: UInt64) -> Sequential {
        var generator = SeededGenerator(seed: seed)
        return Sequential(named: [("fc", Linear(inFeatures: 3, outFeatures: 2, generator: &generator)), ("bn", BatchNorm1d(2))])
    }

    static func floats(_ module: Module) -> [String: [Float]] {
        var result: [String: [Float]] = [:]
        for (name, _, values) in module.stateDict() { if case let .float32(v) = values { result[name] = v } }
        return result
    }

    static func counter(_ module: Module) -> Int64? {
        guard case let .int64(v)? = module.namedBuffers().first(where: { $0.name == "bn.num_batches_tracked" })?.buffer.values else {
            return nil
        }
        return v[0]
    }

    @Test func followsTheExponentialMovingAverageWithBuffers() throws {
        let model = Self.model(seed: 1)
        let average = try AveragedModel(average: Self.model(seed: 2), of: model, decay: 0.75)
        let x = try Tensor(shape: [4, 3], data: [0.5, -1, 2, 1, 0, -0.5, 0.25, 0.75, -2, -1, 1, 1])
        var expected: [String: [Double]] = [:]
        var counters: [Int64] = []
        for step in 0..<4 {
            // Move the weights and the running statistics as training would.
            _ = try model(x)
            for p in model.parameters() { p.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] += Float(step + 1) * 0.1 * Float(i + 1) } } }
            average.update(from: model)
            for (name, values) in Self.floats(model) {
                let v = values.map(Double.init)
                expected[name] = expected[name].map { old in zip(old, v).map { 0.75 * $0 + 0.25 * $1 } } ?? v
            }
            counters.append(try #require(Self.counter(average.average)))
        }
        #expect(average.updates == 4)
        let got = Self.floats(average.average)
        #expect(Set(got.keys) == ["fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"])
        for (name, values) in got {
            let reference = try #require(expected[name])
            for (a, b) in zip(values, reference) { #expect(abs(Double(a) - b) <= 1e-6 * max(1, abs(b)), "\(name): \(a) vs \(b)") }
        }
        // The model's counter is 1, 2, 3, 4: copied, then trunc(1·0.75 + 2·0.25) = 1,
        // trunc(1·0.75 + 3·0.25) = 1, trunc(1·0.75 + 4·0.25) = 1.
        #expect(Self.counter(model) == 4)
        #expect(counters == [1, 1, 1, 1])
    }

    @Test func counterMovesWhenTheStepIsLarge() throws {
        let model = Self.model(seed: 1)
        let average = try AveragedModel(average: Self.model(seed: 2), of: model, decay: 0.5)
        let x = try Tensor(shape: [2, 3], data: [1, 2, 3, -1, 0, 1])
        var counters: [Int64] = []
        for _ in 0..<4 {
            _ = try model(x)
            average.update(from: model)
            counters.append(try #require(Self.counter(average.average)))
        }
        // 1; trunc(0.5 + 1.0) = 1; trunc(0.5 + 1.5) = 2; trunc(1 + 2) = 3.
        #expect(counters == [1, 1, 2, 3])
    }

    @Test func lerpUsesPyTorchsTwoFormsExactly() throws {
        // weight < 0.5: a + w·(b − a) fused; weight ≥ 0.5: b − (1 − w)·(b − a) fused.
        for decay in [0.999, 0.25] {
            let model = Self.model(seed: 3)
            let average = try AveragedModel(average: Self.model(seed: 4), of: model, decay: decay)
            let before = Self.floats(Self.model(seed: 4))["fc.weight"]!
            average.update(from: Self.model(seed: 4))  // first update: a copy
            #expect(Self.floats(average.average)["fc.weight"] == before)
            average.update(from: model)
            let target = Self.floats(model)["fc.weight"]!
            let w = Float(1 - decay)
            let expected = zip(before, target).map { a, b in w < 0.5 ? a.addingProduct(w, b - a) : b.addingProduct(w - 1, b - a) }
            #expect(Self.floats(average.average)["fc.weight"] == expected)
        }
    }

    @Test func refusesADifferentArchitecture() {
        var generator = SeededGenerator(seed: 1)
        let other = Sequential(named: [("fc", Linear(inFeatures: 4, outFeatures: 2, generator: &generator))])
        #expect(throws: NNError.self) { try AveragedModel(average: other, of: Self.model(seed: 1), decay: 0.9) }
    }
}
