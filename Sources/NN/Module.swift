import Autograd

/// A layer or a network: PyTorch's `nn.Module`.
///
/// Subclasses hold their hyperparameters, then their parameters (tensors that require
/// grad), then their children; they override `callAsFunction`, `namedChildren` and
/// `namedDirectParameters`, and `extraDescription` for printing.
open class Module: CustomStringConvertible {
    /// Training mode (dropout active) or evaluation mode.
    public private(set) var isTraining = true

    public init() {}

    /// The forward pass.
    open func callAsFunction(_ input: Tensor) throws -> Tensor { input }

    /// Sub-modules, with the names their parameters are prefixed by.
    open var namedChildren: [(name: String, module: Module)] { [] }

    /// This module's own parameters (not its children's), by name.
    open var namedDirectParameters: [(name: String, tensor: Tensor)] { [] }

    /// This module's own buffers (not its children's), by name: state that is saved but
    /// not trained (PyTorch's `register_buffer`).
    open var namedDirectBuffers: [(name: String, buffer: Buffer)] { [] }

    /// One sample's output shape for one sample's input shape (no batch dimension), or
    /// `NNError.shape` saying why this module cannot take that input. The default is the
    /// input shape (elementwise modules).
    open func outputShape(for input: [Int]) throws -> [Int] { input }

    /// PyTorch's `extra_repr`: the settings printed between the parentheses.
    open var extraDescription: String { "" }

    /// The type name printed by `description` (`Conv2d`, `Sequential`, …).
    open var typeName: String { String(describing: type(of: self)) }

    // MARK: - Derived

    /// Every parameter with its dotted path (`conv1.weight`), in registration order:
    /// PyTorch's `named_parameters()` and `state_dict()` keys.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        var result = namedDirectParameters
        for child in namedChildren {
            result += child.module.namedParameters().map { ("\(child.name).\($0.name)", $0.tensor) }
        }
        return result
    }

    public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

    /// Every buffer with its dotted path; non-persistent ones (PyTorch's
    /// `persistent=False`: random generator states) only when asked for.
    public func namedBuffers(includingNonPersistent: Bool = false) -> [(name: String, buffer: Buffer)] {
        var result = namedDirectBuffers.filter { includingNonPersistent || $0.buffer.persistent }
        for child in namedChildren {
            result += child.module.namedBuffers(includingNonPersistent: includingNonPersistent)
                .map { ("\(child.name).\($0.name)", $0.buffer) }
        }
        return result
    }

    /// The number of scalar parameters.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Every module below this one (depth first, this one first).
    public func modules() -> [Module] { [self] + namedChildren.flatMap { $0.module.modules() } }

    /// Sets training mode here and below (PyTorch's `train()`).
    public func train(_ on: Bool = true) {
        for module in modules() { module.isTraining = on }
    }

    /// Sets evaluation mode here and below (PyTorch's `eval()`).
    public func eval() { train(false) }

    /// Sets every parameter's `grad` to nil.
    public func zeroGrad() { for p in parameters() { p.zeroGrad() } }

    /// PyTorch's nested printing:
    /// ```
    /// Sequential(
    ///   (conv1): Conv2d(1, 20, kernel_size=(5, 5), stride=(1, 1))
    /// )
    /// ```
    public var description: String {
        let children = namedChildren
        if children.isEmpty { return "\(typeName)(\(extraDescription))" }
        var lines = ["\(typeName)(" + extraDescription]
        for child in children {
            let text = "\(child.module)".replacingOccurrences(of: "\n", with: "\n  ")
            lines.append("  (\(child.name)): \(text)")
        }
        return lines.joined(separator: "\n") + "\n)"
    }

    // MARK: - State

    /// Copies values into the parameters and persistent buffers by name, checking names,
    /// shapes and element types: PyTorch's `load_state_dict`.
    ///
    /// - Parameters:
    ///   - state: name → (shape, row-major values).
    ///   - strict: every entry must be present and nothing else (PyTorch's default).
    /// - Throws: `NNError.stateDict` listing missing and unexpected keys and shape or type
    ///   mismatches; nothing is changed unless everything fits.
    ///   - includingNonPersistent: non-persistent buffers too (a training checkpoint).
    public func loadStateDict(
        _ state: [String: (shape: [Int], values: Buffer.Values)], strict: Bool = true, includingNonPersistent: Bool = false
    ) throws {
        let params = namedParameters(), buffers = namedBuffers(includingNonPersistent: includingNonPersistent)
        let names = params.map(\.name) + buffers.map(\.name)
        var problems: [String] = []
        let missing = names.filter { state[$0] == nil }
        let unexpected = state.keys.filter { !Set(names).contains($0) }.sorted()
        if strict && !missing.isEmpty { problems.append("missing key(s): \(missing.joined(separator: ", "))") }
        if strict && !unexpected.isEmpty { problems.append("unexpected key(s): \(unexpected.joined(separator: ", "))") }
        for (name, tensor) in params {
            guard let entry = state[name] else { continue }
            if entry.shape != tensor.shape || entry.values.count != tensor.count {
                problems.append("size mismatch for \(name): copying a param with shape \(entry.shape), "
                    + "the shape in the current model is \(tensor.shape)")
            } else if case .float32 = entry.values {} else {
                problems.append("\(name) is a float32 parameter but the value given is \(entry.values.typeName)")
            }
        }
        for (name, buffer) in buffers {
            guard let entry = state[name] else { continue }
            if entry.shape != buffer.shape || entry.values.count != buffer.values.count {
                problems.append("size mismatch for \(name): copying a buffer with shape \(entry.shape), "
                    + "the shape in the current model is \(buffer.shape)")
            } else if entry.values.typeName != buffer.values.typeName {
                problems.append("\(name) is a \(buffer.values.typeName) buffer but the value given is \(entry.values.typeName)")
            } else if let problem = buffer.check?(entry.values) {
                problems.append("\(name): \(problem)")
            }
        }
        guard problems.isEmpty else { throw NNError.stateDict(problems.joined(separator: "; ")) }
        for (name, tensor) in params {
            guard case let .float32(values)? = state[name]?.values else { continue }
            tensor.withUnsafeMutableBufferPointer { dst in
                values.withUnsafeBufferPointer { src in dst.baseAddress!.update(from: src.baseAddress!, count: src.count) }
            }
        }
        for (name, buffer) in buffers {
            if let entry = state[name] { buffer.values = entry.values }
        }
    }

    /// Parameters only, as float32 values (the form of weights exported elsewhere).
    public func loadStateDict(_ state: [String: (shape: [Int], values: [Float])], strict: Bool = true) throws {
        try loadStateDict(state.mapValues { ($0.shape, Buffer.Values.float32($0.values)) }, strict: strict)
    }

    /// The parameters' and persistent buffers' values by name (a copy): PyTorch's `state_dict()`.
    public func stateDict() -> [(name: String, shape: [Int], values: Buffer.Values)] {
        namedParameters().map { ($0.name, $0.tensor.shape, Buffer.Values.float32($0.tensor.scalars)) }
            + namedBuffers().map { ($0.name, $0.buffer.shape, $0.buffer.values) }
    }
}

/// A buffer: state a module keeps and saves but does not train (PyTorch's buffers), such
/// as running statistics, counters (int64) or a random generator's state.
public final class Buffer {
    /// The values, row-major, in their element type.
    public enum Values: Sendable, Equatable {
        case float32([Float])
        case int64([Int64])
        case uint64([UInt64])

        public var count: Int {
            switch self {
            case let .float32(v): return v.count
            case let .int64(v): return v.count
            case let .uint64(v): return v.count
            }
        }

        /// `float32`, `int64` or `uint64`.
        public var typeName: String {
            switch self {
            case .float32: return "float32"
            case .int64: return "int64"
            case .uint64: return "uint64"
            }
        }
    }

    public var values: Values
    public let shape: [Int]
    /// Part of `stateDict()` (and model files); otherwise only of training checkpoints.
    public let persistent: Bool
    /// What `loadStateDict` checks besides shape and type: nil when `values` are usable,
    /// else why not.
    public let check: (@Sendable (Values) -> String?)?

    public init(_ values: Values, shape: [Int], persistent: Bool = true, check: (@Sendable (Values) -> String?)? = nil) {
        self.values = values
        self.shape = shape
        self.persistent = persistent
        self.check = check
    }
}
