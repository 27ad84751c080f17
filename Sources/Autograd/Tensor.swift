import Seeded

/// A float32 n-dimensional array, contiguous and row-major (NCHW for image batches), that
/// records the operations applied to it so that `backward()` can compute gradients:
/// PyTorch's `torch.Tensor` with autograd.
///
/// Tensors are reference types, like PyTorch's: `grad` and `requiresGrad` belong to the
/// object, and views (`reshape`, `view`, `data`, `detach`) share its storage.
public final class Tensor {
    /// The size of each dimension; `[]` for a scalar.
    public let shape: [Int]
    /// The elements, shared with views.
    public let storage: Storage
    /// What the elements mean when printed and compared: PyTorch's dtype, reduced to the
    /// three kinds this engine needs. Arithmetic is always float32.
    public let kind: Kind
    /// Whether gradients are computed for this tensor.
    public private(set) var requiresGrad: Bool
    /// The gradient accumulated by `backward()` for a leaf (or a tensor that asked
    /// `retainGrad()`); `nil` until then.
    public var grad: Tensor?
    /// The function that created this tensor in the graph; `nil` for leaves.
    public internal(set) var gradFn: GradFn?
    /// Whether `backward()` keeps the gradient of this non-leaf tensor.
    public private(set) var retainsGrad = false

    public enum Kind: Sendable { case float, int, bool }

    // MARK: - Creation

    /// A tensor over existing storage (a view or a freshly computed result).
    public init(shape: [Int], storage: Storage, kind: Kind = .float, requiresGrad: Bool = false) {
        precondition(shape.reduce(1, *) <= storage.count, "storage too small for shape \(shape)")
        self.shape = shape
        self.storage = storage
        self.kind = kind
        self.requiresGrad = requiresGrad
        storage.noteTensor()
    }

    /// A tensor of the given shape holding a copy of `data` (row-major).
    public convenience init(shape: [Int], data: [Float], requiresGrad: Bool = false) throws {
        let n = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), n == data.count else {
            throw TensorError.invalidShape(op: "Tensor(shape:data:)", shape: shape, count: data.count)
        }
        self.init(shape: shape, storage: data.withUnsafeBufferPointer { Storage(copying: $0) },
                  requiresGrad: requiresGrad)
    }

    /// A 1-d tensor: `Tensor([3.0, 4.0], requiresGrad: true)`.
    public convenience init(_ values: [Float], requiresGrad: Bool = false) {
        self.init(shape: [values.count],
                  storage: values.withUnsafeBufferPointer { Storage(copying: $0) },
                  requiresGrad: requiresGrad)
    }

    /// A 2-d tensor from rows of equal length.
    public convenience init(_ rows: [[Float]], requiresGrad: Bool = false) throws {
        let cols = rows.first?.count ?? 0
        guard rows.allSatisfy({ $0.count == cols }) else {
            throw TensorError.invalidArgument(
                op: "Tensor(rows)", "rows have different lengths \(rows.map(\.count))")
        }
        try self.init(shape: [rows.count, cols], data: rows.flatMap { $0 }, requiresGrad: requiresGrad)
    }

    /// A 0-d (scalar) tensor.
    public convenience init(scalar: Float, requiresGrad: Bool = false) {
        self.init(shape: [], storage: Storage(count: 1, repeating: scalar), requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(count: shape.reduce(1, *), repeating: value),
               requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: Int..., requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }
    public static func zeros(shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }
    public static func ones(_ shape: Int..., requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }
    public static func ones(shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    /// The `n`×`n` identity matrix.
    public static func eye(_ n: Int, requiresGrad: Bool = false) -> Tensor {
        let t = full([n, n], 0, requiresGrad: requiresGrad)
        for i in 0..<n { t.storage.pointer[i * n + i] = 1 }
        return t
    }

    /// Uniform in [0, 1), drawn from `generator`.
    public static func rand(
        _ shape: [Int], using generator: inout SeededGenerator, requiresGrad: Bool = false
    ) -> Tensor {
        generated(shape, requiresGrad: requiresGrad) { generator.nextUniform() }
    }

    /// Uniform in [low, high), drawn from `generator`.
    public static func uniform(
        _ shape: [Int], low: Float, high: Float, using generator: inout SeededGenerator,
        requiresGrad: Bool = false
    ) -> Tensor {
        generated(shape, requiresGrad: requiresGrad) { generator.nextUniform(low, high) }
    }

    /// Standard normal, drawn from `generator`.
    public static func randn(
        _ shape: [Int], using generator: inout SeededGenerator, requiresGrad: Bool = false
    ) -> Tensor {
        generated(shape, requiresGrad: requiresGrad) { generator.nextNormal() }
    }

    /// A tensor whose elements are `next()`, called in row-major order.
    private static func generated(_ shape: [Int], requiresGrad: Bool, _ next: () -> Float) -> Tensor {
        let t = Tensor(shape: shape, storage: Storage(uninitializedCount: shape.reduce(1, *)),
                       requiresGrad: requiresGrad)
        for i in 0..<t.count { t.storage.pointer[i] = next() }
        return t
    }

    // MARK: - Reading

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// The number of dimensions.
    public var rank: Int { shape.count }
    /// PyTorch's `size()`.
    public func size() -> [Int] { shape }
    public func size(_ dim: Int) throws -> Int { shape[try normalize(dim: dim, op: "size")] }
    /// A tensor is a leaf when no recorded operation made it.
    public var isLeaf: Bool { gradFn == nil }

    /// The elements as a Swift array (a copy).
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// The single value of a one-element tensor.
    public func item() throws -> Float {
        guard count == 1 else { throw TensorError.notScalar(shape: shape) }
        return storage.pointer[0]
    }

    /// The same elements with no history and `requiresGrad == false` (PyTorch's `.data`).
    public var data: Tensor { Tensor(shape: shape, storage: storage, kind: kind) }

    /// A new leaf sharing this tensor's elements, with no history and no grad.
    public func detach() -> Tensor { Tensor(shape: shape, storage: storage, kind: kind) }

    /// A deep copy with no history.
    public func copy() -> Tensor {
        Tensor(shape: shape, storage: Storage(copying: UnsafeBufferPointer(start: storage.pointer, count: count)),
               kind: kind)
    }

    /// Read-only access to the elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// In-place access to the elements, outside the graph (for optimizers and loaders).
    public func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    // MARK: - Autograd flags

    /// Changes `requiresGrad` in place: the tutorial's `a.requires_grad_(True)`.
    /// Only leaves can change it.
    @discardableResult
    public func requiresGrad_(_ flag: Bool = true) throws -> Tensor {
        guard isLeaf else {
            throw TensorError.invalidArgument(
                op: "requiresGrad_", "you can only change requiresGrad flags of leaf tensors")
        }
        requiresGrad = flag
        return self
    }

    /// Asks `backward()` to keep this non-leaf tensor's gradient in `grad`.
    public func retainGrad() { if !isLeaf { retainsGrad = true } }

    /// Sets `grad` to nil (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() { grad = nil }

    /// Marks a result produced by an op: requires grad and records `gradFn` when grad mode
    /// is on and an input requires grad.
    func record(_ fn: GradFn) -> Tensor {
        requiresGrad = true
        gradFn = fn
        return self
    }

    func normalize(dim: Int, op: String) throws -> Int {
        let r = max(rank, 1)
        guard dim >= -r, dim < r else { throw TensorError.invalidDimension(op: op, dim: dim, rank: rank) }
        return dim < 0 ? dim + r : dim
    }
}

extension Tensor {
    /// A result tensor with fresh uninitialised storage, for ops that fill every element.
    public static func empty(_ shape: [Int], kind: Kind = .float) -> Tensor {
        Tensor(shape: shape, storage: Storage(uninitializedCount: shape.reduce(1, *)), kind: kind)
    }
}
