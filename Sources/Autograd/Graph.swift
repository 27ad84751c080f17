import Kernels

/// A node of the backward graph: the function that made a tensor, PyTorch's `grad_fn`.
///
/// It holds the op's inputs and a closure from the output's gradient to the inputs'
/// gradients (forward and backward of each op are written side by side in the op's
/// file). After a `backward()` that does not retain the graph, the closure and inputs are
/// released, freeing the saved values.
public final class GradFn: CustomStringConvertible {
    /// PyTorch's name for the backward function, e.g. `AddBackward0`.
    public let name: String
    /// The inputs, in the order the closure returns their gradients.
    public private(set) var inputs: [Tensor]
    private var vjp: ((Tensor) throws -> [Tensor?])?

    init(name: String, inputs: [Tensor], vjp: @escaping (Tensor) throws -> [Tensor?]) {
        self.name = name
        self.inputs = inputs
        self.vjp = vjp
    }

    /// `<AddBackward0 object>` (PyTorch adds an address; we do not).
    public var description: String { "<\(name) object>" }

    /// The functions that produced this node's inputs (`next_functions`, minus leaves).
    public var nextFunctions: [GradFn] { inputs.compactMap(\.gradFn) }

    var isReleased: Bool { vjp == nil }

    func apply(_ gradient: Tensor) throws -> [Tensor?] {
        guard let vjp else { throw TensorError.backwardTwice(gradFn: name) }
        return try vjp(gradient)
    }

    func release() {
        vjp = nil
        inputs = []
    }
}

extension Tensor {
    /// Wraps an op's result: when grad mode is on and any input requires grad, the result
    /// requires grad and records `name` with `vjp` (output gradient → input gradients,
    /// `nil` for an input that needs none). This is how every op, here and in `NN`, joins
    /// the graph; `vjp` runs with grad mode off.
    public func recording(
        _ name: String, inputs: [Tensor], _ vjp: @escaping (Tensor) throws -> [Tensor?]
    ) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: \.requiresGrad) else { return self }
        return record(GradFn(name: name, inputs: inputs, vjp: vjp))
    }

    // MARK: - Backward

    /// Computes the gradient of this tensor with respect to every leaf that requires grad
    /// and accumulates it into the leaf's `grad`.
    ///
    /// - Parameters:
    ///   - gradient: the vector of the vector–Jacobian product, of this tensor's shape;
    ///     may be omitted only for a one-element tensor (then it is 1).
    ///   - retainGraph: keep the graph's saved values for another backward.
    public func backward(gradient: Tensor? = nil, retainGraph: Bool = false) throws {
        guard requiresGrad else { throw TensorError.backwardWithoutGrad }
        let seed: Tensor
        if let gradient {
            guard gradient.shape == shape || (gradient.count == count && gradient.count == 1) else {
                throw TensorError.gradientShapeMismatch(expected: shape, got: gradient.shape)
            }
            seed = gradient.shape == shape ? gradient : gradient.reshaped(shape)
        } else {
            guard count == 1 else { throw TensorError.backwardOnNonScalar(shape: shape) }
            seed = Tensor.full(shape, 1)
        }
        try withNoGrad {
            if isLeaf {
                accumulateGrad(seed)
                return
            }
            let order = try topologicalOrder()
            var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
            for tensor in order.reversed() {
                guard let g = pending.removeValue(forKey: ObjectIdentifier(tensor)),
                      let fn = tensor.gradFn else { continue }
                if tensor.retainsGrad { tensor.accumulateGrad(g) }
                var inputGrads = try fn.apply(g)
                for index in 0..<min(fn.inputs.count, inputGrads.count) {
                    let input = fn.inputs[index]
                    guard var inputGrad = inputGrads[index], input.requiresGrad else { continue }
                    inputGrads[index] = nil  // so that a gradient nothing else holds can be taken
                    if input.isLeaf {
                        input.accumulateGrad(taking: &inputGrad)
                    } else {
                        let key = ObjectIdentifier(input)
                        // Out of place: a gradient may be shared between several inputs.
                        pending[key] = try pending[key].map { try $0 + inputGrad } ?? inputGrad
                    }
                }
                if !retainGraph { fn.release() }
            }
        }
    }

    /// Non-leaf tensors reachable from this one, each after all of its inputs.
    private func topologicalOrder() throws -> [Tensor] {
        var order: [Tensor] = []
        var visited: Set<ObjectIdentifier> = []
        // Iterative depth-first search: deep graphs must not overflow the stack.
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded { order.append(tensor); continue }
            guard let fn = tensor.gradFn, visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            if fn.isReleased { throw TensorError.backwardTwice(gradFn: fn.name) }
            stack.append((tensor, true))
            for input in fn.inputs where input.gradFn != nil && input.requiresGrad {
                stack.append((input, false))
            }
        }
        return order
    }

    /// `accumulateGrad(g)`, but the first time `g` itself becomes `grad` when nothing else
    /// can reach its elements: `g` is the only reference to its tensor (not the caller's
    /// own, not a gradient returned for two inputs) and no other tensor was ever made over
    /// its storage (`Storage.hasHadViews`). PyTorch's AccumulateGrad takes a gradient
    /// likewise; the copy it saves is 1.7 MB a step for LeNet (`memmove`, about 2% of a
    /// 1-thread step in `perf`).
    func accumulateGrad(taking g: inout Tensor) {
        if grad == nil, g.shape == shape, g.kind == kind, !g.requiresGrad, g.gradFn == nil, g.grad == nil,
           isKnownUniquelyReferenced(&g), !g.storage.hasHadViews {
            grad = g
            return
        }
        accumulateGrad(g)
    }

    /// `grad += g` (split over the threads, element by element: the thread count cannot
    /// change a result), creating `grad` as a private copy the first time.
    func accumulateGrad(_ g: Tensor) {
        let g = g.shape == shape ? g : g.reshaped(shape)
        if let existing = grad, existing.shape == shape {
            let dst = UncheckedSendable(existing.storage.pointer), src = UncheckedSendable(UnsafePointer(g.storage.pointer))
            Parallelism.forEachRange(count, minimumPerChunk: 1 << 16) { range in
                for i in range { dst.value[i] += src.value[i] }
            }
        } else {
            grad = g.copy()
        }
    }
}
