import Autograd

/// The saved state of an optimizer: its step count and, per parameter (by index), its
/// named buffers (`momentum_buffer`, `exp_avg`, `exp_avg_sq`), as PyTorch names them.
public struct OptimizerState: Sendable, Equatable {
    public var step: Int
    /// `"<parameter index>.<buffer name>"` → values.
    public var buffers: [String: [Float]]
    public init(step: Int = 0, buffers: [String: [Float]] = [:]) {
        self.step = step
        self.buffers = buffers
    }
}

public enum OptimizerError: Error, CustomStringConvertible, Equatable {
    case invalidHyperparameter(optimizer: String, name: String, value: Double, expected: String)
    case stateMismatch(String)

    public var description: String {
        switch self {
        case let .invalidHyperparameter(optimizer, name, value, expected):
            return "\(optimizer): invalid \(name) \(value): expected \(expected)"
        case let .stateMismatch(detail):
            return "optimizer state: \(detail)"
        }
    }
}

/// Updates parameters from their gradients: PyTorch's `torch.optim.Optimizer`.
public protocol Optimizer: AnyObject {
    var parameters: [Tensor] { get }
    var learningRate: Float { get set }
    /// What a one-cycle schedule cycles: SGD's momentum, Adam's beta1.
    var momentumTerm: Float { get set }
    /// One update of every parameter that has a gradient.
    func step() throws
    func state() -> OptimizerState
    func loadState(_ state: OptimizerState) throws
}

extension Optimizer {
    /// Sets every parameter's gradient to nil (`zero_grad(set_to_none=True)`).
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Per-parameter buffers (momentum, moments), allocated once and updated in place through
/// raw pointers: no copy-on-write or exclusivity checks in the update loops.
final class ParameterBuffers {
    let names: [String]
    let counts: [Int]
    private let storage: [[UnsafeMutablePointer<Float>]]  // [buffer][parameter]

    init(names: [String], parameters: [Tensor]) {
        self.names = names
        counts = parameters.map(\.count)
        storage = names.map { _ in
            parameters.map { p in
                let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, p.count))
                pointer.initialize(repeating: 0, count: max(1, p.count))
                return pointer
            }
        }
    }

    deinit { for row in storage { for p in row { p.deallocate() } } }

    /// The elements of buffer `buffer` for parameter `parameter`.
    func pointer(_ buffer: Int, _ parameter: Int) -> UnsafeMutablePointer<Float> { storage[buffer][parameter] }

    func state(step: Int) -> OptimizerState {
        var buffers: [String: [Float]] = [:]
        for (b, name) in names.enumerated() {
            for (i, n) in counts.enumerated() {
                buffers["\(i).\(name)"] = Array(UnsafeBufferPointer(start: storage[b][i], count: n))
            }
        }
        return OptimizerState(step: step, buffers: buffers)
    }

    /// Copies a saved state in, after checking every buffer is present with the right size.
    func load(_ state: OptimizerState) throws {
        let expected = Set(names.flatMap { n in counts.indices.map { "\($0).\(n)" } })
        if let extra = state.buffers.keys.sorted().first(where: { !expected.contains($0) }) {
            throw OptimizerError.stateMismatch("unexpected buffer \(extra)")
        }
        for name in names {
            for (i, n) in counts.enumerated() {
                guard let v = state.buffers["\(i).\(name)"] else {
                    throw OptimizerError.stateMismatch("missing buffer \(i).\(name)")
                }
                guard v.count == n else {
                    throw OptimizerError.stateMismatch(
                        "buffer \(i).\(name) has \(v.count) values; parameter \(i) has \(n)")
                }
            }
        }
        for (b, name) in names.enumerated() {
            for i in counts.indices {
                state.buffers["\(i).\(name)"]!.withUnsafeBufferPointer { storage[b][i].update(from: $0.baseAddress!, count: $0.count) }
            }
        }
    }
}

func check(_ optimizer: String, _ name: String, _ value: Float, _ ok: Bool, _ expected: String) throws {
    guard ok, value.isFinite else {
        throw OptimizerError.invalidHyperparameter(optimizer: optimizer, name: name, value: Double(value), expected: expected)
    }
}
