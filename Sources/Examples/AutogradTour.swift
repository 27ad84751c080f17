import Autograd
import Seeded

/// The autograd examples of the tutorial (sections 1 and 2), in its order, printing what
/// it prints. `autograd-tour` runs it; the tests check its lines.
public enum AutogradTour {
    /// The seed for the tutorial's random inputs. With it, `x = rand(3)` needs eleven
    /// doublings to pass a norm of 1000, as in the tutorial, so `x.grad` is its
    /// `[204.8, 2048, 0.2048]`.
    public static let seed: UInt64 = 0

    /// Runs the tour, passing each printed line to `emit`.
    public static func run(_ emit: (String) -> Void) throws {
        func show(_ items: Any?...) {
            emit(items.map { item -> String in
                switch item {
                case nil: return "None"
                case let flag as Bool: return flag ? "True" : "False"  // Python's spelling
                case let value?: return "\(value)"
                }
            }.joined(separator: " "))
        }
        var generator = SeededGenerator(seed: seed)

        emit("## Example 1: requires_grad, grad_fn, backward")
        do {
            let x = Tensor([3.0, 4.0], requiresGrad: true)
            let y = Tensor([1.0, 2.0], requiresGrad: true)
            let z = try x + y
            show(z)
            show(z.gradFn)
            let out = z.mean()
            show(out)
            show(out.gradFn)
            try out.backward()
            show(x.grad)
            show(y.grad)
            show(z.grad)
        }

        emit("")
        emit("## requires_grad inside and outside no_grad")
        do {
            var temp = Tensor([3.0, 4.0], requiresGrad: true)
            show(temp.requiresGrad)
            show((temp ** 2).requiresGrad)
            withNoGrad {
                temp = Tensor([3.0, 4.0], requiresGrad: true)
                show(temp.requiresGrad)
                show((temp ** 2).requiresGrad)
            }
        }

        emit("")
        emit("## Example 2")
        let x = Tensor.ones(3, 3, requiresGrad: true)
        show(x)
        let y = x + 5
        show(y)
        show(y.gradFn)
        let z = try y * y * 2
        let out = z.mean()
        show(z, out)

        emit("")
        emit("## requires_grad_")
        do {
            var a = Tensor.randn([3, 3], using: &generator)
            a = try (a * 3) / (a - 1)
            show(a.requiresGrad)
            try a.requiresGrad_(true)
            show(a.requiresGrad)
            let b = try (a * a).sum()
            show(b.gradFn)
        }

        emit("")
        emit("## out.backward(): d(out)/dx")
        try out.backward()
        show(x.grad)

        emit("")
        emit("## Doubling until the norm passes 1000, then y.backward(v)")
        let x2 = Tensor.rand([3], using: &generator, requiresGrad: true)
        var y2 = x2 * 2
        while y2.data.norm() < 1000 {
            y2 = y2 * 2
        }
        show(y2)
        let v = Tensor([0.1, 1.0, 0.0001])
        try y2.backward(gradient: v)
        show(x2.grad)

        emit("")
        emit("## no_grad")
        show(x2.requiresGrad)
        show((x2 ** 2).requiresGrad)
        withNoGrad {
            show((x2 ** 2).requiresGrad)
        }

        emit("")
        emit("## detach")
        show(x2.requiresGrad)
        let detached = x2.detach()
        show(detached.requiresGrad)
        show(try x2.eq(detached).all())

        emit("")
        emit("## Flow (1): a -> b -> c -> out")
        do {
            let plain = Tensor.ones(2, 2)
            show(plain)
            let a = Tensor.ones(2, 2, requiresGrad: true)
            show(a)
            emit("a:data: \(a.data)")
            emit("a.grad: \(a.grad.map { "\($0)" } ?? "None")")
            emit("a.grad_fn \(a.gradFn.map { "\($0)" } ?? "None")")
            let b = a + 2
            show(b)
            let c = b ** 2
            show(c)
            let out = c.sum()
            show(out)
            try out.backward()
            for (name, t) in [("a", a), ("b", b), ("c", c), ("out", out)] {
                emit("\(name):data: \(t.data)")
                emit("\(name).grad: \(t.grad.map { "\($0)" } ?? "None")")
                emit("\(name).grad_fn \(t.gradFn.map { "\($0)" } ?? "None")")
            }
        }

        emit("")
        emit("## Flow (2): z.backward(grad)")
        do {
            let x = Tensor.ones(3, requiresGrad: true)
            let y = x ** 2
            let z = try y ** 2 + x
            let out = z.sum()
            show(out)
            let grad = Tensor([0.1, 1, 100])
            try z.backward(gradient: grad)
            for (name, t) in [("x", x), ("y", y), ("z", z)] {
                emit("\(name):data: \(t.data)")
                emit("\(name).grad: \(t.grad.map { "\($0)" } ?? "None")")
                emit("\(name).grad_fn \(t.gradFn.map { "\($0)" } ?? "None")")
            }
        }
    }
}
