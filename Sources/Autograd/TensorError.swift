/// What can go wrong when building or differentiating a graph. Messages name the shapes
/// and values involved and say what was expected.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, String)
    case notBroadcastable(op: String, [Int], [Int])
    case invalidShape(op: String, shape: [Int], count: Int)
    case invalidDimension(op: String, dim: Int, rank: Int)
    case invalidArgument(op: String, String)
    case backwardOnNonScalar(shape: [Int])
    case backwardWithoutGrad
    case backwardTwice(gradFn: String)
    case gradientShapeMismatch(expected: [Int], got: [Int])
    case notScalar(shape: [Int])

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail):
            return "\(op): \(detail)"
        case let .notBroadcastable(op, a, b):
            return "\(op): shapes \(a) and \(b) cannot be broadcast together "
                + "(trailing dimensions must be equal or 1)"
        case let .invalidShape(op, shape, count):
            return "\(op): shape \(shape) is invalid for input of size \(count)"
        case let .invalidDimension(op, dim, rank):
            return "\(op): dimension \(dim) is out of range for a tensor of rank \(rank) "
                + "(expected \(-max(rank, 1))...\(max(rank, 1) - 1))"
        case let .invalidArgument(op, detail):
            return "\(op): \(detail)"
        case let .backwardOnNonScalar(shape):
            return "backward(): grad can be implicitly created only for scalar outputs; "
                + "this tensor has shape \(shape): pass backward(gradient:) of that shape"
        case .backwardWithoutGrad:
            return "backward(): element 0 of tensors does not require grad and does not have a grad_fn"
        case let .backwardTwice(gradFn):
            return "backward(): trying to backward through the graph a second time "
                + "(through \(gradFn)); its saved values were freed after the first backward. "
                + "Pass retainGraph: true to the first backward if you need to backward twice"
        case let .gradientShapeMismatch(expected, got):
            return "backward(gradient:): gradient has shape \(got) but the tensor has shape \(expected)"
        case let .notScalar(shape):
            return "item(): a tensor with \(shape.reduce(1, *)) elements (shape \(shape)) "
                + "cannot be converted to a scalar"
        }
    }
}
