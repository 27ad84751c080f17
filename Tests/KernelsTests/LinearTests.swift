@testable import Kernels
import Testing

/// `linearForward`, `linearBackwardInput` and `linearBackwardWeight` against sums in Double,
/// on shapes that leave partial tiles (rows not a multiple of 6, columns not of 64 or 16);
/// and, where the kernels are our own (`linearUsesRowProduct`), against the exact chain of
/// fused multiply-adds each output is, at 1 and 2 threads. Each with a dense gradient and
/// with one that is 60% zeros, as behind ReLU (the sparse products of 16-lane builds).
@Suite(.serialized) struct LinearTests {
    /// (n samples, k inputs, m outputs); the last three take the sparse products with a
    /// sparse gradient (k a multiple of 16, n · m at least 4096): blocks of 8 + 2 vectors,
    /// 2 + 1, and LeNet's fc1 (8 · 6 + 2).
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (5, 7, 3), (13, 33, 17), (100, 500, 10), (7, 130, 70), (9, 160, 500), (70, 48, 100), (64, 800, 500),
    ]

    /// A gradient in [-1, 1), or with 60% of its entries zero.
    static func gradient(_ count: Int, sparse: Bool, _ random: inout TestRandom) -> [Float] {
        (0..<count).map { _ in
            let g = random.uniform()
            return sparse && random.uniform() < 0.2 ? 0 : g
        }
    }

    struct Products: Equatable { var output: [Float], gradInput: [Float], gradWeight: [Float] }

    static func run(_ n: Int, _ k: Int, _ m: Int, bias: Bool, x: [Float], w: [Float], b: [Float], g: [Float]) -> Products {
        var output = [Float](repeating: .nan, count: n * m)
        var gradInput = [Float](repeating: .nan, count: n * k), gradWeight = [Float](repeating: .nan, count: m * k)
        var workspace = [Float](repeating: .nan, count: linearForwardWorkspaceCount(n: n, k: k))
        b.withUnsafeBufferPointer { b in
            linearForward(n: n, k: k, m: m, input: x, weight: w, bias: bias ? b.baseAddress! : nil, output: &output,
                          workspace: &workspace)
        }
        var backward = [Float](repeating: .nan, count: max(1, linearBackwardWorkspaceCount(n: n, k: k, m: m)))
        linearBackwardInput(n: n, k: k, m: m, gradOutput: g, weight: w, gradInput: &gradInput, workspace: &backward)
        linearBackwardWeight(n: n, k: k, m: m, gradOutput: g, input: x, gradWeight: &gradWeight, workspace: &backward)
        return Products(output: output, gradInput: gradInput, gradWeight: gradWeight)
    }

    @Test("linear's three products match sums in Double within 1e-6 relative to the sum of magnitudes",
          arguments: [(false, false), (true, false), (true, true)])
    func matchesDouble(bias: Bool, sparse: Bool) {
        var random = TestRandom(seed: 41)
        for (n, k, m) in Self.shapes {
            let x = random.floats(n * k), w = random.floats(m * k), b = random.floats(m)
            let g = Self.gradient(n * m, sparse: sparse, &random)
            let p = Parallelism.withThreadCount(2) { Self.run(n, k, m, bias: bias, x: x, w: w, b: b, g: g) }
            func check(_ got: Float, _ terms: [(Float, Float)], start: Float, _ what: String) {
                let exact = terms.reduce(Double(start)) { $0 + Double($1.0) * Double($1.1) }
                let magnitude = terms.reduce(abs(Double(start))) { $0 + abs(Double($1.0) * Double($1.1)) }
                #expect(abs(Double(got) - exact) <= 1e-6 * (1 + magnitude), "\(what) \((n, k, m)): \(got) vs \(exact)")
            }
            for i in 0..<n {
                for j in 0..<m {
                    check(p.output[i * m + j], (0..<k).map { (x[i * k + $0], w[j * k + $0]) }, start: bias ? b[j] : 0, "output")
                }
                for j in 0..<k { check(p.gradInput[i * k + j], (0..<m).map { (g[i * m + $0], w[$0 * k + j]) }, start: 0, "gradInput") }
            }
            for i in 0..<m {
                for j in 0..<k { check(p.gradWeight[i * k + j], (0..<n).map { (g[$0 * m + i], x[$0 * k + j]) }, start: 0, "gradWeight") }
            }
        }
    }

    /// How many of `p`'s outputs differ from the chain of fused multiply-adds in order each
    /// should be: the forward product's (with `forward`) and the two gradients'.
    static func chainMismatches(_ p: Products, _ n: Int, _ k: Int, _ m: Int, forward: Bool,
                                x: [Float], w: [Float], b: [Float], g: [Float]) -> Int {
        func chain(_ start: Float, _ terms: [(Float, Float)]) -> Float {
            terms.reduce(start) { $0.addingProduct($1.0, $1.1) }
        }
        var mismatches = 0
        for i in 0..<n {
            if forward {
                for j in 0..<m where p.output[i * m + j] != chain(b[j], (0..<k).map { (x[i * k + $0], w[j * k + $0]) }) {
                    mismatches += 1
                }
            }
            for j in 0..<k where p.gradInput[i * k + j] != chain(0, (0..<m).map { (g[i * m + $0], w[$0 * k + j]) }) {
                mismatches += 1
            }
        }
        for i in 0..<m {
            for j in 0..<k where p.gradWeight[i * k + j] != chain(0, (0..<n).map { (g[$0 * m + i], x[$0 * k + j]) }) {
                mismatches += 1
            }
        }
        return mismatches
    }

    @Test("With our own kernels each output is its chain of fused multiply-adds in order, at 1 and 2 threads alike",
          .enabled(if: linearUsesRowProduct, "OpenBLAS computes linear in this build: nothing of ours to pin"),
          arguments: [false, true])
    func exactChainsAtEveryThreadCount(sparse: Bool) {
        var random = TestRandom(seed: 43)
        for (n, k, m) in Self.shapes {
            let x = random.floats(n * k), w = random.floats(m * k), b = random.floats(m)
            let g = Self.gradient(n * m, sparse: sparse, &random)
            let one = Parallelism.withThreadCount(1) { Self.run(n, k, m, bias: true, x: x, w: w, b: b, g: g) }
            let two = Parallelism.withThreadCount(2) { Self.run(n, k, m, bias: true, x: x, w: w, b: b, g: g) }
            #expect(one == two, "\((n, k, m)): the thread count changed the bits")
            let mismatches = Self.chainMismatches(one, n, k, m, forward: true, x: x, w: w, b: b, g: g)
            #expect(mismatches == 0, "\((n, k, m)): \(mismatches) outputs differ from their chains")
        }
    }

    /// In every build (OpenBLAS or not), the gradients of a sparse gradient are the chains
    /// too, from the sparse products: the shapes they take.
    @Test func sparseGradientsAreExactChainsInEveryBuild() {
        var random = TestRandom(seed: 46)
        for (n, k, m) in [(9, 160, 500), (70, 48, 100), (64, 800, 500)] {
            let x = random.floats(n * k), w = random.floats(m * k), b = random.floats(m)
            let g = Self.gradient(n * m, sparse: true, &random)
            #expect(linearGradientIsSparse(n: n, k: k, m: m, gradOutput: g), "\((n, k, m))")
            let one = Parallelism.withThreadCount(1) { Self.run(n, k, m, bias: true, x: x, w: w, b: b, g: g) }
            let two = Parallelism.withThreadCount(2) { Self.run(n, k, m, bias: true, x: x, w: w, b: b, g: g) }
            #expect(one.gradInput == two.gradInput && one.gradWeight == two.gradWeight, "\((n, k, m)): thread count")
            let mismatches = Self.chainMismatches(one, n, k, m, forward: false, x: x, w: w, b: b, g: g)
            #expect(mismatches == 0, "\((n, k, m)): \(mismatches) gradients differ from their chains")
        }
    }

    /// The sparse products run where they are meant to: LeNet's fc1 gradient behind ReLU,
    /// not a dense gradient, not a row that is not whole vectors, not a product too small to
    /// repay the listing.
    @Test func sparseGradientsTakeTheSparseProducts() {
        var random = TestRandom(seed: 45)
        let sparse = Self.gradient(64 * 500, sparse: true, &random), dense = Self.gradient(64 * 500, sparse: false, &random)
        #expect(nonzeroCount(sparse, count: sparse.count) == sparse.filter { $0 != 0 }.count)
        #expect(linearGradientIsSparse(n: 64, k: 800, m: 500, gradOutput: sparse))
        #expect(!linearGradientIsSparse(n: 64, k: 800, m: 500, gradOutput: dense))
        #expect(!linearGradientIsSparse(n: 64, k: 804, m: 500, gradOutput: sparse), "k not whole vectors")
        #expect(!linearGradientIsSparse(n: 8, k: 800, m: 500, gradOutput: sparse), "4,000 entries")
    }

    /// The bias gradient (`sumRows`): each column summed in row order from 0, the same bits
    /// at 1 and 2 threads (3,001 columns of 20 rows are split over the threads; 13 are not a
    /// whole vector).
    @Test func biasGradientIsEachColumnSummedInRowOrder() {
        var random = TestRandom(seed: 44)
        for (n, m) in [(1, 1), (64, 10), (64, 500), (20, 3_001)] {
            let g = random.floats(n * m)
            let expected = (0..<m).map { j in (0..<n).reduce(Float(0)) { $0 + g[$1 * m + j] } }
            for threads in [1, 2] {
                var gradBias = [Float](repeating: .nan, count: m)
                Parallelism.withThreadCount(threads) { sumRows(g, rowCount: n, columns: m, into: &gradBias) }
                #expect(gradBias == expected, "\((n, m)) at \(threads) threads")
            }
        }
    }
}
