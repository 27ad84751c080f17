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

    /// Copies values into the parameters by name, checking names and shapes.
    ///
    /// - Parameters:
    ///   - state: name → (shape, row-major values).
    ///   - strict: every parameter must be present and nothing else (PyTorch's default).
    /// - Throws: `NNError.stateDict` listing missing and unexpected keys and shape
    ///   mismatches; nothing is changed unless everything fits.
    public func loadStateDict(_ state: [String: (shape: [Int], values: [Float])], strict: Bool = true) throws {
        let params = namedParameters()
        let names = Set(params.map(\.name))
        var problems: [String] = []
        let missing = params.map(\.name).filter { state[$0] == nil }
        let unexpected = state.keys.filter { !names.contains($0) }.sorted()
        if strict && !missing.isEmpty { problems.append("missing key(s): \(missing.joined(separator: ", "))") }
        if strict && !unexpected.isEmpty { problems.append("unexpected key(s): \(unexpected.joined(separator: ", "))") }
        for (name, tensor) in params {
            guard let entry = state[name] else { continue }
            if entry.shape != tensor.shape || entry.values.count != tensor.count {
                problems.append("size mismatch for \(name): copying a param with shape \(entry.shape), "
                    + "the shape in the current model is \(tensor.shape)")
            }
        }
        guard problems.isEmpty else { throw NNError.stateDict(problems.joined(separator: "; ")) }
        for (name, tensor) in params {
            guard let entry = state[name] else { continue }
            tensor.withUnsafeMutableBufferPointer { dst in
                entry.values.withUnsafeBufferPointer { src in dst.baseAddress!.update(from: src.baseAddress!, count: src.count) }
            }
        }
    }

    /// The parameters' values by name (a copy): PyTorch's `state_dict()`.
    public func stateDict() -> [(name: String, shape: [Int], values: [Float])] {
        namedParameters().map { ($0.name, $0.tensor.shape, $0.tensor.scalars) }
    }
}
