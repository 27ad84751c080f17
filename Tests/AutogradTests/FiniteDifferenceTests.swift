import Autograd
import Seeded
import Testing
import TestSupport

/// Central finite differences against backward for every op with a backward.
///
/// The function under test maps inputs to a tensor; we check the gradient of
/// `Σ w ⊙ f(x)` for fixed random weights `w`, so every output element matters. Float32
/// arithmetic limits the accuracy: the step is 1e-2 and the tolerance 2e-2 relative.
struct FiniteDifferenceTests {
    typealias Function = ([Tensor]) throws -> Tensor

    static func check(
        _ name: String, shapes: [[Int]], positive: Bool = false, avoidZero: Bool = false,
        _ f: Function
    ) throws {
        var generator = SeededGenerator(seed: 42)
        let inputs = shapes.map { shape -> Tensor in
            let t = Tensor.randn(shape, using: &generator)
            t.withUnsafeMutableBufferPointer { p in
                for i in p.indices {
                    if positive { p[i] = abs(p[i]) + 0.5 }
                    if avoidZero && abs(p[i]) < 0.2 { p[i] += p[i] < 0 ? -0.3 : 0.3 }
                }
            }
            try! t.requiresGrad_(true)
            return t
        }
        let output = try f(inputs)
        let weights = Tensor.randn(output.shape, using: &generator)
        try (output * weights).sum().backward()

        func objective() throws -> Double {
            let out = try withNoGrad { try f(inputs) }
            return zip(out.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        for (k, input) in inputs.enumerated() {
            let analytic = try #require(input.grad, "\(name): input \(k) has no grad").scalars
            var numeric = [Double](repeating: 0, count: input.count)
            for i in 0..<input.count {
                let original = input.storage.pointer[i]
                input.storage.pointer[i] = original + h
                let plus = try objective()
                input.storage.pointer[i] = original - h
                let minus = try objective()
                input.storage.pointer[i] = original
                numeric[i] = (plus - minus) / Double(2 * h)
            }
            if let message = compareClose(analytic, numeric, rtol: 2e-2, atol: 2e-2, label: "\(name) input \(k)") {
                Issue.record(Comment(rawValue: message))
            }
        }
    }

    @Test func add() throws { try Self.check("add", shapes: [[3, 4], [4]]) { try $0[0] + $0[1] } }
    @Test func sub() throws { try Self.check("sub", shapes: [[2, 3, 4], [3, 1]]) { try $0[0] - $0[1] } }
    @Test func mul() throws { try Self.check("mul", shapes: [[3, 4], [3, 4]]) { try $0[0] * $0[1] } }
    @Test func div() throws {
        try Self.check("div", shapes: [[3, 4], [1, 4]], avoidZero: true) { try $0[0] / $0[1] }
    }
    @Test func scalarArithmetic() throws {
        try Self.check("scalar", shapes: [[5]]) { (($0[0] * 3) - 1) / 2 + 4 }
        try Self.check("rsub", shapes: [[5]]) { 1 - $0[0] }
    }
    @Test func negation() throws { try Self.check("neg", shapes: [[4]]) { -$0[0] } }
    @Test func pow() throws {
        try Self.check("pow2", shapes: [[6]]) { $0[0] ** 2 }
        try Self.check("pow3", shapes: [[6]]) { $0[0] ** 3 }
        try Self.check("pow-0.5", shapes: [[6]], positive: true) { $0[0] ** -0.5 }
    }
    @Test func exp() throws { try Self.check("exp", shapes: [[6]]) { $0[0].exp() } }
    @Test func log() throws { try Self.check("log", shapes: [[6]], positive: true) { $0[0].log() } }
    @Test func relu() throws { try Self.check("relu", shapes: [[8]], avoidZero: true) { $0[0].relu() } }
    @Test func sqrtSigmoidTanh() throws {
        try Self.check("sqrt", shapes: [[5]], positive: true) { $0[0].sqrt() }
        try Self.check("sigmoid", shapes: [[5]]) { $0[0].sigmoid() }
        try Self.check("tanh", shapes: [[5]]) { $0[0].tanh() }
    }
    @Test func reductions() throws {
        try Self.check("sum", shapes: [[3, 4]]) { $0[0].sum() }
        try Self.check("mean", shapes: [[3, 4]]) { $0[0].mean() }
        try Self.check("sum dim", shapes: [[2, 3, 4]]) { try $0[0].sum(dim: 1) }
        try Self.check("mean dim keepdim", shapes: [[2, 3, 4]]) { try $0[0].mean(dim: -1, keepDim: true) }
    }
    @Test func matmul() throws { try Self.check("matmul", shapes: [[3, 5], [5, 2]]) { try $0[0].matmul($0[1]) } }
    @Test func views() throws {
        try Self.check("view", shapes: [[2, 6]]) { try $0[0].view(3, -1) * $0[0].view(3, 4) }
        try Self.check("flatten", shapes: [[2, 3, 2]]) { try $0[0].flatten(startDim: 1) }
        try Self.check("squeeze", shapes: [[3, 1]]) { try $0[0].squeeze(1).unsqueeze(0) }
        try Self.check("transpose", shapes: [[2, 3]]) { try $0[0].t() }
        try Self.check("select", shapes: [[3, 2]]) { try $0[0][1] }
    }
    @Test func softmaxes() throws {
        try Self.check("softmax", shapes: [[3, 5]]) { try $0[0].softmax(dim: 1) }
        try Self.check("softmax dim0", shapes: [[3, 2, 2]]) { try $0[0].softmax(dim: 0) }
        try Self.check("log_softmax", shapes: [[3, 5]]) { try $0[0].logSoftmax(dim: -1) }
    }
    @Test func composite() throws {
        // A value used twice: gradients from both uses accumulate.
        try Self.check("reuse", shapes: [[4]]) { x in try x[0] * x[0] + x[0].exp() }
    }
}
