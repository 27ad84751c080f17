import Autograd
import Testing

/// When `backward()` takes a leaf's first gradient instead of copying it
/// (`accumulateGrad(taking:)`), and that a taken gradient is never shared.
struct GradientOwnershipTests {
    /// A one-input op whose backward returns a tensor over `storage`.
    func op(_ x: Tensor, returning storage: Storage) -> Tensor {
        Tensor(x.scalars).recording("CustomBackward", inputs: [x]) { _ in
            [Tensor(shape: x.shape, storage: storage)]
        }
    }

    @Test func aGradientNothingElseHoldsIsTaken() throws {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let made = Storage(count: 3, repeating: 5)
        try op(x, returning: made).backward(gradient: Tensor([1, 1, 1]))
        #expect(x.grad?.storage === made)
        #expect(x.grad?.scalars == [5, 5, 5])
        // The next backward adds into it.
        try (x * 2).sum().backward()
        #expect(x.grad?.scalars == [7, 7, 7])
    }

    @Test func aGradientOverAStorageWithViewsIsCopied() throws {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let made = Storage(count: 3, repeating: 5)
        let kept = Tensor(shape: [3], storage: made)  // a second tensor over the block
        try op(x, returning: made).backward(gradient: Tensor([1, 1, 1]))
        #expect(x.grad?.storage !== made)
        kept.withUnsafeMutableBufferPointer { $0[0] = -1 }
        #expect(x.grad?.scalars == [5, 5, 5])
    }

    @Test func oneGradientForTwoLeavesIsNotShared() throws {
        let a = Tensor([1, 2], requiresGrad: true), b = Tensor([3, 4], requiresGrad: true)
        try (a + b).sum().backward()
        #expect(a.grad?.storage !== b.grad?.storage)
        try (a * 3).sum().backward()
        #expect(a.grad?.scalars == [4, 4])
        #expect(b.grad?.scalars == [1, 1])
    }

    @Test func theCallersGradientIsNotTaken() throws {
        let x = Tensor([1, 2], requiresGrad: true), z = Tensor([1, 2], requiresGrad: true)
        let seed = Tensor([5, 6]), seed2 = try Tensor([[7], [8]])
        try x.backward(gradient: seed)  // a leaf: the seed is its gradient
        try z.view([2, 1]).backward(gradient: seed2)  // the view's backward returns a view of the seed
        #expect(x.grad?.storage !== seed.storage)
        #expect(z.grad?.storage !== seed2.storage)
        seed.withUnsafeMutableBufferPointer { $0[0] = 100 }
        seed2.withUnsafeMutableBufferPointer { $0[0] = 100 }
        #expect(x.grad?.scalars == [5, 6])
        #expect(z.grad?.scalars == [7, 8])
    }
}
