import Kernels

// MARK: - Binary kernels

/// An elementwise binary function, specialised at compile time in the loops below.
protocol BinaryFunction { static func apply(_ a: Float, _ b: Float) -> Float }
enum AddFunction: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum SubFunction: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum MulFunction: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum DivFunction: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }

/// `out[i] = F.apply(a[i], b[i])` over `shape`, with `a` and `b` broadcast to it.
func broadcastBinary<F: BinaryFunction>(_ f: F.Type, _ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
    let out = Tensor.empty(shape)
    let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer
    if a.shape == shape && b.shape == shape {
        for i in 0..<out.count { po[i] = F.apply(pa[i], pb[i]) }
        return out
    }
    let loop = StridedLoop(shape: shape, strides: [broadcastStrides(a.shape, to: shape),
                                                   broadcastStrides(b.shape, to: shape),
                                                   broadcastStrides(shape, to: shape)])
    loop.forEachRun { offsets, n, strides in
        let x = pa + offsets[0], y = pb + offsets[1], z = po + offsets[2]
        switch (strides[0], strides[1]) {
        case (1, 1): for i in 0..<n { z[i] = F.apply(x[i], y[i]) }
        case (1, 0): let v = y[0]; for i in 0..<n { z[i] = F.apply(x[i], v) }
        case (0, 1): let v = x[0]; for i in 0..<n { z[i] = F.apply(v, y[i]) }
        case let (sx, sy): for i in 0..<n { z[i] = F.apply(x[i * sx], y[i * sy]) }
        }
    }
    return out
}

// MARK: - Arithmetic with backward

extension Tensor {
    /// `a + b` with broadcasting. Backward: the gradient, summed over broadcast dimensions.
    static func add(_ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
        broadcastBinary(AddFunction.self, a, b, shape: shape).recording("AddBackward0", inputs: [a, b]) { g in
            [a.requiresGrad ? g.sumToShape(a.shape) : nil, b.requiresGrad ? g.sumToShape(b.shape) : nil]
        }
    }

    /// `a - b`. Backward: `g` and `-g`.
    static func sub(_ a: Tensor, _ b: Tensor, shape: [Int], name: String = "SubBackward0") -> Tensor {
        broadcastBinary(SubFunction.self, a, b, shape: shape).recording(name, inputs: [a, b]) { g in
            [a.requiresGrad ? g.sumToShape(a.shape) : nil, b.requiresGrad ? (-g).sumToShape(b.shape) : nil]
        }
    }

    /// `a * b`. Backward: `g * b` and `g * a`.
    static func mul(_ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
        broadcastBinary(MulFunction.self, a, b, shape: shape).recording("MulBackward0", inputs: [a, b]) { g in
            [a.requiresGrad ? broadcastBinary(MulFunction.self, g, b, shape: g.shape).sumToShape(a.shape) : nil,
             b.requiresGrad ? broadcastBinary(MulFunction.self, g, a, shape: g.shape).sumToShape(b.shape) : nil]
        }
    }

    /// `a / b`. Backward: `g / b` and `-g * a / b²`.
    static func div(_ a: Tensor, _ b: Tensor, shape: [Int]) -> Tensor {
        broadcastBinary(DivFunction.self, a, b, shape: shape).recording("DivBackward0", inputs: [a, b]) { g in
            var ga: Tensor?, gb: Tensor?
            let gOverB = broadcastBinary(DivFunction.self, g, b, shape: g.shape)
            if a.requiresGrad { ga = gOverB.sumToShape(a.shape) }
            if b.requiresGrad {
                // -g * a / b² = -(g / b) * (a / b)
                let aOverB = broadcastBinary(DivFunction.self, a, b, shape: g.shape)
                gb = (-broadcastBinary(MulFunction.self, gOverB, aOverB, shape: g.shape)).sumToShape(b.shape)
            }
            return [ga, gb]
        }
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        add(a, b, shape: try broadcastShape(a.shape, b.shape, op: "add"))
    }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        sub(a, b, shape: try broadcastShape(a.shape, b.shape, op: "sub"))
    }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        mul(a, b, shape: try broadcastShape(a.shape, b.shape, op: "mul"))
    }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        div(a, b, shape: try broadcastShape(a.shape, b.shape, op: "div"))
    }

    // With a number: the number is a constant 0-d tensor, so the graph names match PyTorch's.
    public static func + (a: Tensor, b: Float) -> Tensor { add(a, Tensor(scalar: b), shape: a.shape) }
    public static func + (a: Float, b: Tensor) -> Tensor { add(Tensor(scalar: a), b, shape: b.shape) }
    public static func - (a: Tensor, b: Float) -> Tensor { sub(a, Tensor(scalar: b), shape: a.shape) }
    public static func - (a: Float, b: Tensor) -> Tensor {
        sub(Tensor(scalar: a), b, shape: b.shape, name: "RsubBackward1")
    }
    public static func * (a: Tensor, b: Float) -> Tensor { mul(a, Tensor(scalar: b), shape: a.shape) }
    public static func * (a: Float, b: Tensor) -> Tensor { mul(Tensor(scalar: a), b, shape: b.shape) }
    public static func / (a: Tensor, b: Float) -> Tensor { div(a, Tensor(scalar: b), shape: a.shape) }
    public static func / (a: Float, b: Tensor) -> Tensor { div(Tensor(scalar: a), b, shape: b.shape) }

    /// `-a`. Backward: `-g`.
    public static prefix func - (a: Tensor) -> Tensor {
        a.unary("NegBackward0", { -$0 }) { g, _, _ in -g }
    }
}

// MARK: - Unary functions with backward

extension Tensor {
    /// `out[i] = f(self[i])`, recording `name` whose backward is `vjp(g, input, output)`.
    /// Inlined so that `f` is too: the loop then vectorises.
    @inline(__always)
    func unary(
        _ name: String, _ f: (Float) -> Float,
        vjp: @escaping (_ g: Tensor, _ input: Tensor, _ output: Tensor) -> Tensor
    ) -> Tensor {
        let out = Tensor.empty(shape)
        let src = storage.pointer, dst = out.storage.pointer
        for i in 0..<count { dst[i] = f(src[i]) }
        return out.recording(name, inputs: [self]) { [unowned out] g in [vjp(g, self, out)] }
    }

    /// Elementwise `f(self[i], other[i])` into a new tensor of this shape (`other` has as
    /// many elements): the body of most backwards.
    @inline(__always)
    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let out = Tensor.empty(shape)
        let a = storage.pointer, b = other.storage.pointer, o = out.storage.pointer
        for i in 0..<count { o[i] = f(a[i], b[i]) }
        return out
    }

    /// `eˣ`. Backward: `g * eˣ`.
    public func exp() -> Tensor {
        unary("ExpBackward0", { Foundation_exp($0) }) { g, _, out in g.zipMap(out) { $0 * $1 } }
    }

    /// Natural logarithm. Backward: `g / x`.
    public func log() -> Tensor {
        unary("LogBackward0", { Foundation_log($0) }) { g, x, _ in g.zipMap(x) { $0 / $1 } }
    }

    /// `max(x, 0)`, NaN staying NaN. Backward: `g` where the output is > 0, else 0 (the
    /// kink at 0 gets 0, as PyTorch's).
    public func relu() -> Tensor {
        let out = Tensor.empty(shape)
        reluForward(storage.pointer, out.storage.pointer, count: count)
        return out.recording("ReluBackward0", inputs: [self]) { [unowned out] g in
            let gradInput = Tensor.empty(g.shape)
            reluBackward(g.storage.pointer, output: out.storage.pointer, gradInput.storage.pointer, count: g.count)
            return [gradInput]
        }
    }

    /// `xᵖ` for a constant exponent. Backward: `g * p * xᵖ⁻¹`.
    public func pow(_ exponent: Float) -> Tensor {
        let f: (Float) -> Float
        switch exponent {
        case 2: f = { $0 * $0 }
        case 1: f = { $0 }
        case 0: f = { _ in 1 }
        default: f = { Foundation_pow($0, exponent) }
        }
        return unary("PowBackward0", f) { g, x, _ in
            if exponent == 0 { return Tensor.full(g.shape, 0) }
            if exponent == 2 { return g.zipMap(x) { $0 * 2 * $1 } }
            return g.zipMap(x) { $0 * exponent * Foundation_pow($1, exponent - 1) }
        }
    }

    /// `√x`. Backward: `g / (2√x)`.
    public func sqrt() -> Tensor {
        unary("SqrtBackward0", { $0.squareRoot() }) { g, _, out in g.zipMap(out) { $0 / (2 * $1) } }
    }

    /// `1 / (1 + e⁻ˣ)`. Backward: `g * σ(1 − σ)`.
    public func sigmoid() -> Tensor {
        unary("SigmoidBackward0", { 1 / (1 + Foundation_exp(-$0)) }) { g, _, out in
            g.zipMap(out) { $0 * $1 * (1 - $1) }
        }
    }

    /// `tanh x`. Backward: `g * (1 − tanh²)`.
    public func tanh() -> Tensor {
        unary("TanhBackward0", { Foundation_tanh($0) }) { g, _, out in g.zipMap(out) { $0 * (1 - $1 * $1) } }
    }

    /// `x` where `x > 0`, else `slope · x`. Backward: `g` where `x > 0`, else `g · slope`
    /// (PyTorch's choice at 0).
    public func leakyRelu(negativeSlope slope: Float = 0.01) -> Tensor {
        unary("LeakyReluBackward0", { $0 > 0 ? $0 : $0 * slope }) { g, input, _ in
            g.zipMap(input) { gradient, x in x > 0 ? gradient : gradient * slope }
        }
    }

    /// `x · σ(x)` (SiLU, swish). Backward: `g · σ(x) · (1 + x · (1 − σ(x)))`.
    public func silu() -> Tensor {
        unary("SiluBackward0", { $0 / (1 + Foundation_exp(-$0)) }) { g, input, _ in
            g.zipMap(input) { gradient, x in
                let s = 1 / (1 + Foundation_exp(-x))
                return gradient * s * (1 + x * (1 - s))
            }
        }
    }

    /// GELU: `x · Φ(x)` with the normal CDF `Φ(x) = (1 + erf(x / √2)) / 2`; with
    /// `tanhApproximation`, `x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`, as PyTorch's
    /// `approximate='tanh'`. Backward: the derivative of the same formula.
    public func gelu(tanhApproximation: Bool = false) -> Tensor {
        let c: Float = 0.797_884_56  // √(2/π)
        if tanhApproximation {
            return unary("GeluBackward0", { x in 0.5 * x * (1 + Foundation_tanh(c * (x + 0.044715 * x * x * x))) }) { g, input, _ in
                g.zipMap(input) { gradient, x in
                    let t = Foundation_tanh(c * (x + 0.044715 * x * x * x))
                    return gradient * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x))
                }
            }
        }
        return unary("GeluBackward0", { x in 0.5 * x * (1 + Foundation_erf(x * 0.707_106_77)) }) { g, input, _ in
            g.zipMap(input) { gradient, x in
                let cdf = 0.5 * (1 + Foundation_erf(x * 0.707_106_77))
                let pdf = Foundation_exp(-0.5 * x * x) * 0.398_942_28  // 1/√(2π)
                return gradient * (cdf + x * pdf)
            }
        }
    }
}

precedencegroup ExponentiationPrecedence {
    associativity: right
    higherThan: MultiplicationPrecedence
}
infix operator ** : ExponentiationPrecedence

/// `x ** p`, as in the tutorial's `b**2`.
public func ** (base: Tensor, exponent: Float) -> Tensor { base.pow(exponent) }
