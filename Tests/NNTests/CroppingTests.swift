import Autograd
import Foundation
import NN
import Testing

/// center_crop: the window torchvision's CenterCrop takes (offsets `round((H - h) / 2)`,
/// half to even like Python's `round`), its gradient, shapes and errors.
struct CroppingTests {
    /// `(planes, H, W)` values `plane·1000 + row·100 + column`, so each copied value names its origin.
    static func labelled(_ n: Int, _ c: Int, _ h: Int, _ w: Int) throws -> Tensor {
        var values: [Float] = []
        for plane in 0..<(n * c) { for row in 0..<h { for column in 0..<w { values.append(Float(plane * 1000 + row * 100 + column)) } } }
        return try Tensor(shape: [n, c, h, w], data: values, requiresGrad: true)
    }

    /// (input height, width, crop height, width) → the expected top-left corner, as
    /// torchvision computes it: `int(round((28 - 24) / 2.0)) == 2`, `round(1.5) == 2`,
    /// `round(0.5) == 0`, `round(2.5) == 2`.
    @Test(arguments: [(28, 28, 24, 24, 2, 2), (5, 6, 2, 3, 2, 2), (5, 6, 4, 5, 0, 0), (7, 6, 2, 6, 2, 0), (3, 3, 3, 3, 0, 0),
                      (28, 28, 25, 24, 2, 2)])
    func windowAndGradient(_ c: (Int, Int, Int, Int, Int, Int)) throws {
        let (h, w, ch, cw, top, left) = c
        let x = try Self.labelled(2, 3, h, w)
        let y = try F.centerCrop(x, size: Pair(ch, cw))
        #expect(y.shape == [2, 3, ch, cw])
        var expected: [Float] = []
        for plane in 0..<6 { for row in 0..<ch { for column in 0..<cw {
            expected.append(Float(plane * 1000 + (row + top) * 100 + column + left))
        } } }
        #expect(y.scalars == expected)
        #expect(y.gradFn?.name == "SliceBackward0")
        // The gradient is the output gradient inside the window and zero outside it.
        let g = (0..<y.scalars.count).map { Float($0 + 1) }
        try y.backward(gradient: try Tensor(shape: y.shape, data: g))
        let grad = try #require(x.grad).scalars
        var index = 0
        for plane in 0..<6 { for row in 0..<h { for column in 0..<w {
            let inside = (top..<(top + ch)).contains(row) && (left..<(left + cw)).contains(column)
            let want: Float = inside ? g[plane * ch * cw + (row - top) * cw + (column - left)] : 0
            #expect(grad[index] == want, "plane \(plane) row \(row) column \(column)")
            index += 1
        } } }
    }

    @Test func moduleShapeDescriptionAndErrors() throws {
        let crop = CenterCrop(size: Pair(24))
        #expect("\(crop)" == "CenterCrop(size=(24, 24))")
        #expect(try crop.outputShape(for: [1, 28, 28]) == [1, 24, 24])
        #expect(try crop(Tensor.zeros(shape: [3, 1, 28, 28])).shape == [3, 1, 24, 24])
        let tooSmall = try #require(throws: NNError.self) { try crop.outputShape(for: [1, 20, 28]) }
        #expect("\(tooSmall)".contains("24x24 is larger than the 20x28 input"), "\(tooSmall)")
        #expect(throws: NNError.self) { try crop.outputShape(for: [28, 28]) }
        #expect(throws: NNError.self) { try crop(Tensor.zeros(shape: [1, 1, 23, 28])) }
        #expect(throws: NNError.self) { try F.centerCrop(Tensor.zeros(shape: [1, 28, 28]), size: Pair(24)) }
        // An empty batch crops to an empty batch, as slicing does in PyTorch.
        #expect(try crop(Tensor.zeros(shape: [0, 1, 28, 28])).shape == [0, 1, 24, 24])
    }
}
